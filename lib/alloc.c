/*
 * alloc.c - the library's allocation wrappers, fatal errors and the
 * per-thread random numbers.
 *
 * CSP_FAIL_ALLOC=n (environment) makes the n-th allocation made through
 * these wrappers fail, for the allocation-failure walk in tests/: every
 * public call must then report ENOMEM and leave nothing half done.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic long fail_at = -1;     /* -1: not read yet; 0: never */
static _Atomic long alloc_count;

static bool should_fail(void)
{
    long f = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (unlikely(f < 0)) {
        const char *s = getenv("CSP_FAIL_ALLOC");
        f = s ? atol(s) : 0;
        if (f < 0)
            f = 0;
        atomic_store(&fail_at, f);
    }
    if (likely(f == 0))
        return false;
    return atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1 == f;
}

void *csp_malloc(size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(n);
}

void *csp_calloc(size_t n, size_t m)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(n, m);
}

void *csp_aligned_alloc(size_t n)
{
    if (should_fail()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, CACHELINE, n) != 0)
        return NULL;
    return p;
}

void csp_free(void *p)
{
    free(p);
}

void csp_fatal(const char *fmt, ...)
{
    /* One write for the whole line: another thread may be about to kill
     * the process (the same corruption that brought us here), and a line
     * cut after its prefix tells the user nothing. */
    static const char pre[] = "csp: ";
    char buf[512];
    memcpy(buf, pre, sizeof pre - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + sizeof pre - 1, sizeof buf - sizeof pre, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t len = sizeof pre - 1 + (size_t)n;
    if (len > sizeof buf - 1)
        len = sizeof buf - 1;
    buf[len++] = '\n';
    if (write(2, buf, len) < 0) {
        /* nothing more we can do */
    }
    abort();
}

static __thread uint64_t rng;

uint32_t csp_rand32(void)
{
    uint64_t x = rng;
    if (unlikely(x == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)(uintptr_t)&rng ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
        x |= 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

CSP_API const char *csp_version(void)
{
    return PACKAGE_VERSION;
}
