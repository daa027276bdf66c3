/*
 * futex.c - the kernel sleep under every blocking path of a plain thread
 * and under idle workers.  See futex.h.
 */
#include "futex.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

#ifdef HAVE_LINUX_FUTEX_H
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CSP_FOREVER) {
        if (deadline <= csp_now())
            return ETIMEDOUT;
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a
     * spurious wake-up and re-wait never stretches the deadline. */
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                     expect, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return ETIMEDOUT;
    return 0;
}

void futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

#else /* portable fallback: hashed condition variables */
#include <pthread.h>

#define FUTEX_BUCKETS 64
static struct fbucket {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} fbuckets[FUTEX_BUCKETS];
static pthread_once_t fonce = PTHREAD_ONCE_INIT;

static void fbuckets_init(void)
{
    for (int i = 0; i < FUTEX_BUCKETS; i++) {
        pthread_mutex_init(&fbuckets[i].mu, NULL);
        pthread_cond_init(&fbuckets[i].cv, NULL);
    }
}

static struct fbucket *fbucket_of(const void *addr)
{
    pthread_once(&fonce, fbuckets_init);
    uintptr_t h = (uintptr_t)addr;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return &fbuckets[(h >> 32) % FUTEX_BUCKETS];
}

int futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t deadline)
{
    struct fbucket *b = fbucket_of(addr);
    int r = 0;
    pthread_mutex_lock(&b->mu);
    /* The waker changes *addr before taking b->mu, so reading it under
     * b->mu and then waiting on the condvar cannot miss its broadcast. */
    if (atomic_load(addr) == expect) {
        if (deadline == CSP_FOREVER) {
            pthread_cond_wait(&b->cv, &b->mu);
        } else {
            int64_t left = deadline - csp_now();
            if (left <= 0) {
                r = ETIMEDOUT;
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + left;
                ts.tv_sec = t / 1000000000;
                ts.tv_nsec = t % 1000000000;
                if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT &&
                    csp_now() >= deadline)
                    r = ETIMEDOUT;
            }
        }
    }
    pthread_mutex_unlock(&b->mu);
    return r;
}

void futex_wake(_Atomic uint32_t *addr, int n)
{
    (void)n;
    struct fbucket *b = fbucket_of(addr);
    pthread_mutex_lock(&b->mu);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}
#endif
