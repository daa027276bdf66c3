/*
 * internal.h - what every file in lib/ shares: export and branch macros,
 * cache-line size, CPU relax, abort-with-message, and the chaos hooks.
 *
 * Only functions marked CSP_API are exported from the shared library; the
 * library is compiled with -fvisibility=hidden and tests/check_abi checks
 * `nm -D` for stray symbols.
 */
#ifndef CSP_INTERNAL_H
#define CSP_INTERNAL_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "csp.h"

#define CSP_API __attribute__((visibility("default")))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CACHELINE 64
#define ALIGNED_CL __attribute__((aligned(CACHELINE)))
#define NOINLINE __attribute__((noinline))
#define UNUSED __attribute__((unused))
#define TLS_IE __thread __attribute__((tls_model("initial-exec")))

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Waiting for another thread to finish a step of a few instructions (a
 * push whose stamp is not yet written): pause, and after a while give the
 * CPU away in case that thread was preempted in the middle. */
int sched_yield(void);
static inline void spin_wait(int spins)
{
    if (spins > 100)
        sched_yield();
    else
        cpu_relax();
}

/* Prints "csp: <msg>" on stderr and aborts: for misuse the contract says
 * cannot be reported by a return value (negative WaitGroup counter,
 * releasing a channel somebody waits on, task stack overflow). */
_Noreturn void csp_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2))) __attribute__((visibility("hidden")));

/* Allocation goes through here so that the allocation-failure walk
 * (CSP_FAIL_ALLOC=n) can make the n-th one fail. */
void *csp_malloc(size_t n) __attribute__((visibility("hidden")));
void *csp_calloc(size_t n, size_t m) __attribute__((visibility("hidden")));
void *csp_aligned_alloc(size_t n) __attribute__((visibility("hidden")));
void  csp_free(void *p) __attribute__((visibility("hidden")));

/* Chaos points: compiled in with --enable-chaos, nothing otherwise. */
#ifdef CSP_CHAOS
void chaos_point(void) __attribute__((visibility("hidden")));
unsigned chaos_pick(unsigned n) __attribute__((visibility("hidden")));
#define CHAOS() chaos_point()
/* A seeded choice in [0, n) where the scheduler may pick freely (which
 * idle worker wakes, where a woken task is queued); 0 without chaos, so
 * the normal choice is the one taken. */
#define CHAOS_PICK(n) chaos_pick(n)
#else
#define CHAOS() ((void)0)
#define CHAOS_PICK(n) 0u
#endif

/* Sanitizer detection, for the fiber annotations and thread counting. */
#if defined(__SANITIZE_ADDRESS__)
#define CSP_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CSP_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CSP_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CSP_TSAN 1
#endif
#endif

/* A small fast PRNG (xorshift64*) per thread, for select's poll order and
 * for picking steal victims.  Not for anything security related. */
uint32_t csp_rand32(void) __attribute__((visibility("hidden")));
static inline uint32_t csp_rand_n(uint32_t n)
{
    return (uint32_t)(((uint64_t)csp_rand32() * n) >> 32);
}

#endif
