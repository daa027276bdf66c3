/*
 * mutex.c - csp_mutex: one 32-bit word plus the parking lot.
 *
 * State bits: LOCKED, and PARKED (some waiter is queued in the parking
 * lot for this address).  Lock and unlock without waiters are one CAS
 * each.  PARKED is set and cleared only under the bucket lock, by which
 * time the queue and the bit agree.
 *
 * Fairness (Go's starvation mode).  Normally an unlock releases the lock
 * and wakes the first waiter, which competes with newcomers (throughput:
 * a running task can re-take a lock without a switch).  A waiter that
 * loses goes back to the *front* of the queue keeping its first enqueue
 * time; once the head waiter has waited more than 1 ms, unlock hands the
 * lock over directly (LOCKED stays set, the waiter wakes as owner), so no
 * waiter starves however hard others loop on lock/unlock.
 *
 * Memory order: lock is acquire, unlock is release (the store or CAS that
 * clears LOCKED, or the hand-off store): unlock n happens before lock n+1.
 */
#include "sema.h"

#include <errno.h>

#define M_LOCKED 1u
#define M_PARKED 2u
#define STARVE_NS 1000000
#define SPINS 64

static inline _Atomic uint32_t *word(csp_mutex *m)
{
    return (_Atomic uint32_t *)&m->csp_private_state;
}

static int mutex_lock_slow(csp_mutex *m)
{
    _Atomic uint32_t *st = word(m);
    int64_t since = 0;
    bool front = false;
    for (;;) {
        for (int i = 0; i < SPINS; i++) {
            uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
            if (!(s & M_LOCKED) &&
                atomic_compare_exchange_weak_explicit(st, &s, s | M_LOCKED, memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            cpu_relax();
        }
        struct sema_bucket *b = sema_lock(m);
        uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
        for (;;) {
            if (!(s & M_LOCKED)) {
                if (atomic_compare_exchange_weak_explicit(st, &s, s | M_LOCKED,
                                                          memory_order_acquire,
                                                          memory_order_relaxed)) {
                    sema_unlock(b);
                    return 0;
                }
                continue;
            }
            if (s & M_PARKED)
                break;
            if (atomic_compare_exchange_weak_explicit(st, &s, s | M_PARKED,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        }
        struct sema_entry e;
        sema_enqueue(b, &e, m, front);
        e.since = since ? since : csp_now();
        sema_park(b, &e, WAIT_MUTEX);
        if (e.handoff)
            return 0;       /* ownership passed to us with LOCKED kept set */
        since = e.since;
        front = true;
    }
}

CSP_API int csp_mutex_lock(csp_mutex *m)
{
    if (!m)
        return EINVAL;
    uint32_t zero = 0;
    if (likely(atomic_compare_exchange_weak_explicit(word(m), &zero, M_LOCKED,
                                                     memory_order_acquire, memory_order_relaxed)))
        return 0;
    return mutex_lock_slow(m);
}

CSP_API int csp_mutex_trylock(csp_mutex *m)
{
    if (!m)
        return EINVAL;
    uint32_t s = atomic_load_explicit(word(m), memory_order_relaxed);
    while (!(s & M_LOCKED)) {
        if (atomic_compare_exchange_weak_explicit(word(m), &s, s | M_LOCKED, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
    return EBUSY;
}

static int mutex_unlock_slow(csp_mutex *m)
{
    _Atomic uint32_t *st = word(m);
    struct sema_bucket *b = sema_lock(m);
    /* Under the bucket lock with LOCKED set only we change the word:
     * lockers CAS only from an unlocked word, parkers need this lock. */
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    if (!(s & M_LOCKED)) {
        sema_unlock(b);
        return EPERM;
    }
    struct sema_entry *e = sema_find(b, m, NULL);
    if (!e) {
        atomic_store_explicit(st, 0, memory_order_release);
        sema_unlock(b);
        return 0;
    }
    sema_dequeue(b, e);
    bool more = sema_find(b, m, NULL) != NULL;
    if (csp_now() - e->since > STARVE_NS) {
        e->handoff = 1;
        atomic_store_explicit(st, M_LOCKED | (more ? M_PARKED : 0), memory_order_release);
    } else {
        atomic_store_explicit(st, more ? M_PARKED : 0, memory_order_release);
    }
    sema_wake(e);
    sema_unlock(b);
    return 0;
}

CSP_API int csp_mutex_unlock(csp_mutex *m)
{
    if (!m)
        return EINVAL;
    uint32_t s = M_LOCKED;
    if (likely(atomic_compare_exchange_strong_explicit(word(m), &s, 0, memory_order_release,
                                                       memory_order_relaxed)))
        return 0;
    if (!(s & M_LOCKED))
        return EPERM;
    return mutex_unlock_slow(m);
}
