/*
 * mutex.c - csp_mutex: one 32-bit word plus the parking lot.
 *
 * State bits (compare Go's sync.Mutex):
 *   LOCKED    held.
 *   PARKED    some waiter is queued in the parking lot for this address;
 *             set and cleared only under the bucket lock, so the bit and
 *             the queue agree whenever the lock is free.
 *   WOKEN     one would-be owner is already on its way: a waiter that an
 *             unlock woke, or a locker spinning for it.  While it is set,
 *             unlock only clears LOCKED and wakes nobody, so a stream of
 *             unlocks under contention makes one wake-up, not one each.
 *             Whoever set it clears it: the spinner or woken waiter, when
 *             it takes the lock or parks again.
 *   STARVING  a waiter has waited more than 1 ms.  Newcomers neither take
 *             the lock nor spin; unlock hands the lock to the head waiter
 *             directly (LOCKED stays set).  The woken owner leaves the
 *             mode when it is the last waiter or waited less than 1 ms.
 *
 * Normal mode favours throughput: unlock releases the lock and wakes the
 * head waiter, which competes with running lockers (a running task
 * re-takes a lock without a switch); a waiter that loses queues again at
 * the front, keeping its first enqueue time.  Starvation mode bounds
 * every wait.
 *
 * Lifetime (sema.h): after the CAS that clears LOCKED, an unlock touches
 * the word again only under the bucket lock with a waiter for this address
 * found in the queue.  It set WOKEN in the same CAS, and while WOKEN is
 * set nobody else dequeues in normal mode; a waiter that could set
 * STARVING would have to be awake, and an awake ex-waiter owns WOKEN, so
 * the queue cannot empty before this unlock dequeues its waiter.
 *
 * Memory order: lock is acquire, unlock is release (the CAS that clears
 * LOCKED, or the hand-off CAS): unlock n happens before lock n+1.  A
 * waiter given the lock by hand-off reads no word: it acquires through
 * the wake (the claim CAS and the park protocol, park.c), which the
 * unlocker performs after its critical section.  The
 * other bit changes are relaxed: they carry no data; the bucket lock
 * orders the queue.
 */
#include "sema.h"
#include "sched.h"

#include <errno.h>

#define M_LOCKED 1u
#define M_PARKED 2u
#define M_WOKEN 4u
#define M_STARVING 8u
#define STARVE_NS 1000000
#define SPIN_ROUNDS 4     /* Go's active_spin */
#define SPIN_PAUSES 30    /* Go's active_spin_cnt */

static inline _Atomic uint32_t *word(csp_mutex *m)
{
    return (_Atomic uint32_t *)&m->csp_private_state;
}

static int mutex_lock_slow(csp_mutex *m)
{
    _Atomic uint32_t *st = word(m);
    int64_t since = 0;
    bool awoke = false;     /* we own WOKEN (set it spinning, or were woken) */
    for (;;) {
        /* Spin a little while the holder is likely to let go soon, as Go
         * does: a few rounds of pauses, reading the word between them
         * (not hammering its cache line, which would slow the holder's
         * own unlock), and only where the holder can be running
         * (sched_may_spin). */
        bool spin = sched_may_spin();
        for (int r = 0; spin && r <= SPIN_ROUNDS; r++) {
            uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
            if (s & M_STARVING)
                break;
            if (!(s & M_LOCKED)) {
                uint32_t to = (s | M_LOCKED) & ~(awoke ? M_WOKEN : 0u);
                if (atomic_compare_exchange_weak_explicit(st, &s, to, memory_order_acquire,
                                                          memory_order_relaxed))
                    return 0;
                continue;
            }
            if (r == SPIN_ROUNDS)
                break;
            /* Tell unlock not to wake anybody: we will take the lock. */
            if (!awoke && (s & M_PARKED) && !(s & M_WOKEN) &&
                atomic_compare_exchange_weak_explicit(st, &s, s | M_WOKEN, memory_order_relaxed,
                                                      memory_order_relaxed))
                awoke = true;
            for (int i = 0; i < SPIN_PAUSES; i++)
                cpu_relax();
        }
        CHAOS();
        struct sema_bucket *b = sema_lock(m);
        uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
        bool starving = since && csp_now() - since > STARVE_NS;
        for (;;) {
            if (!(s & (M_LOCKED | M_STARVING))) {
                uint32_t to = (s | M_LOCKED) & ~(awoke ? M_WOKEN : 0u);
                if (atomic_compare_exchange_weak_explicit(st, &s, to, memory_order_acquire,
                                                          memory_order_relaxed)) {
                    sema_unlock(b);
                    return 0;
                }
                continue;
            }
            /* Park: the queue will be non-empty, we give up WOKEN, and a
             * waiter that has starved switches the mutex to hand-offs. */
            uint32_t to = (s | M_PARKED | (starving ? M_STARVING : 0u)) & ~(awoke ? M_WOKEN : 0u);
            if (atomic_compare_exchange_weak_explicit(st, &s, to, memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        }
        struct sema_entry e;
        /* A waiter that was woken and lost goes back to the front. */
        sema_enqueue(b, &e, m, since != 0);
        e.since = since ? since : csp_now();
        sema_park(b, &e, WAIT_MUTEX);
        if (e.handoff)
            return 0;       /* ownership passed to us with LOCKED kept set */
        since = e.since;
        awoke = true;       /* the unlock that woke us set WOKEN for us */
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
    /* In starvation mode the lock belongs to the queue, as in Go. */
    while (!(s & (M_LOCKED | M_STARVING))) {
        if (atomic_compare_exchange_weak_explicit(word(m), &s, s | M_LOCKED, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
    return EBUSY;
}

/* Clears `bits` in the word (other parties may change other bits). */
static void clear_bits(_Atomic uint32_t *st, uint32_t bits)
{
    atomic_fetch_and_explicit(st, ~bits, memory_order_relaxed);
}

static int mutex_unlock_slow(csp_mutex *m)
{
    _Atomic uint32_t *st = word(m);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (!(s & M_LOCKED))
            return EPERM;
        if (s & M_STARVING)
            break;
        uint32_t to = s & ~M_LOCKED;
        bool wake = (s & M_PARKED) && !(s & M_WOKEN);
        if (wake)
            to |= M_WOKEN;
        if (atomic_compare_exchange_weak_explicit(st, &s, to, memory_order_release,
                                                  memory_order_relaxed)) {
            if (!wake)
                return 0;
            /* Wake the head waiter; it owns the WOKEN we just set. */
            struct sema_bucket *b = sema_lock(m);
            struct sema_entry *e = sema_find(b, m, NULL);
            if (!e) {
                /* Cannot happen (see the top of the file); never leave
                 * WOKEN set with nobody to clear it. */
                clear_bits(st, M_WOKEN);
                sema_unlock(b);
                return 0;
            }
            sema_dequeue(b, e);
            if (!sema_find(b, m, NULL))
                clear_bits(st, M_PARKED);
            sema_wake(e);
            sema_unlock(b);
            return 0;
        }
    }

    /* Starvation mode: hand the lock to the head waiter.  We still hold
     * it, so only PARKED (ours to change under the bucket lock) and WOKEN
     * (a spinner's) can move under us. */
    struct sema_bucket *b = sema_lock(m);
    struct sema_entry *e = sema_find(b, m, NULL);
    if (!e) {
        /* The mode outlived its waiters: release normally. */
        s = atomic_load_explicit(st, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(st, &s, s & ~(M_LOCKED | M_STARVING | M_PARKED),
                                                      memory_order_release, memory_order_relaxed))
            ;
        sema_unlock(b);
        return 0;
    }
    sema_dequeue(b, e);
    bool more = sema_find(b, m, NULL) != NULL;
    bool starved = csp_now() - e->since > STARVE_NS;
    e->handoff = 1;
    s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        uint32_t to = s;
        if (!more)
            to &= ~M_PARKED;
        if (!more || !starved)
            to &= ~M_STARVING;
        /* release: our critical section happens before the new owner's. */
        if (atomic_compare_exchange_weak_explicit(st, &s, to, memory_order_release,
                                                  memory_order_relaxed))
            break;
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
