/*
 * lock.h - the short internal lock that guards channel wait queues,
 * parking-lot buckets, the timer heap and the global run queue.
 *
 * A three-state futex mutex (0 free, 1 held, 2 held with sleepers) that
 * spins briefly first: critical sections are a few dozen instructions and
 * a futex sleep costs microseconds here.  Nobody ever parks a task while
 * holding one (park releases it first), so a worker never sleeps on a lock
 * held by a task that is not running.
 */
#ifndef CSP_LOCK_H
#define CSP_LOCK_H

#include "futex.h"

typedef struct { _Atomic uint32_t word; } lock_t;
#define LOCK_INIT { 0 }

void lock_slow(lock_t *l) __attribute__((visibility("hidden")));

static inline void lock_acquire(lock_t *l)
{
    uint32_t zero = 0;
    /* acquire: everything done under the previous holder happens before
     * what we do under the lock. */
    if (likely(atomic_compare_exchange_weak_explicit(&l->word, &zero, 1,
                                                     memory_order_acquire,
                                                     memory_order_relaxed)))
        return;
    lock_slow(l);
}

static inline bool lock_try(lock_t *l)
{
    uint32_t zero = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &zero, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void lock_release(lock_t *l)
{
    /* release: publishes the critical section to the next holder. */
    if (unlikely(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2))
        futex_wake(&l->word, 1);
}

#endif
