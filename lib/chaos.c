/*
 * chaos.c - randomized perturbation points (./configure --enable-chaos).
 *
 * CHAOS() stands before and after the atomic steps of the slow paths
 * (registration, claim, wake, close, steal, park).  With chaos compiled
 * in, each point draws from a per-thread PRNG seeded from CSP_CHAOS_SEED
 * (or the clock) and sometimes yields the CPU or spins a random while, so
 * repeated runs explore interleavings a quiet machine never produces.
 * The seed is printed once per process ("csp: chaos seed N") so a failing
 * run's family of schedules can be replayed.  Without --enable-chaos,
 * CHAOS() is an empty macro and this file compiles to nothing.
 */
#include "internal.h"

#ifdef CSP_CHAOS
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static _Atomic uint64_t chaos_seed;     /* 0: not chosen yet */
static _Atomic uint64_t chaos_threads;
static __thread uint64_t chaos_state;

static uint64_t seed_get(void)
{
    uint64_t s = atomic_load(&chaos_seed);
    if (s)
        return s;
    const char *e = getenv("CSP_CHAOS_SEED");
    uint64_t want;
    if (e && *e) {
        want = strtoull(e, NULL, 10);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        want = ((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)getpid()) % 1000000007u;
    }
    if (!want)
        want = 1;
    uint64_t zero = 0;
    if (atomic_compare_exchange_strong(&chaos_seed, &zero, want)) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "csp: chaos seed %llu\n", (unsigned long long)want);
        if (write(2, buf, (size_t)n) < 0) { /* ignore */ }
        return want;
    }
    return zero;
}

/* xorshift64*: a per-thread stream derived from the seed and the order in
 * which threads first reach a chaos point. */
static uint32_t chaos_next(void)
{
    uint64_t x = chaos_state;
    if (!x) {
        x = seed_get() * 0x9E3779B97F4A7C15ull + atomic_fetch_add(&chaos_threads, 1) + 1;
        x |= 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    chaos_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

unsigned chaos_pick(unsigned n)
{
    return n > 1 ? chaos_next() % n : 0;
}

void chaos_point(void)
{
    uint32_t r = chaos_next() >> 8;
    switch (r % 16) {
    case 0:
        sched_yield();
        break;
    case 1:
    case 2:
        for (uint32_t i = 0, n = (r >> 4) % 2000; i < n; i++)
            cpu_relax();
        break;
    default:
        break;
    }
}
#else
typedef int chaos_disabled_translation_unit;
#endif
