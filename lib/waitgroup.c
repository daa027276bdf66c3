/*
 * waitgroup.c - csp_waitgroup: a 64-bit word (counter in the high half,
 * parked waiters in the low half) plus the parking lot.
 *
 * A waiter increments the waiter count only under the bucket lock and
 * only while the counter is non-zero, then parks (releasing the lock).
 * The csp_wg_add that brings the counter to zero sees the waiter count in
 * the same atomic; if it is non-zero it takes the bucket lock (so every
 * counted waiter is queued by then), unlinks them, subtracts them from the
 * word, and only then wakes them: after the first wake a waiter may
 * return and free the WaitGroup, so the word must not be touched again.
 *
 * Memory order: the add is acq_rel, the waiter's load acquire; a parked
 * waiter is ordered by the wake.  So every done that brought the counter
 * to zero happens before the wait that returns because of it.
 */
#include "sema.h"

#include <errno.h>

static inline _Atomic uint64_t *word(csp_waitgroup *wg)
{
    return (_Atomic uint64_t *)&wg->csp_private_state;
}

CSP_API void csp_wg_add(csp_waitgroup *wg, int64_t delta)
{
    if (!wg)
        csp_fatal("csp_wg_add: NULL WaitGroup");
    if (delta > INT32_MAX || delta < -(int64_t)INT32_MAX)
        csp_fatal("csp_wg_add: delta %lld out of range", (long long)delta);
    uint64_t s = atomic_fetch_add_explicit(word(wg), (uint64_t)delta << 32,
                                           memory_order_acq_rel);
    int64_t v = (int64_t)(int32_t)(uint32_t)(s >> 32) + delta;
    if (v < 0)
        csp_fatal("sync: negative WaitGroup counter");
    if (v > INT32_MAX)
        csp_fatal("sync: WaitGroup counter overflow");
    if (v > 0 || (uint32_t)s == 0)
        return;
    struct sema_bucket *b = sema_lock(wg);
    struct sema_entry *list = NULL, *e;
    uint32_t n = 0;
    while ((e = sema_find(b, wg, NULL))) {
        sema_dequeue(b, e);
        e->next = list;
        list = e;
        n++;
    }
    if (n)
        atomic_fetch_sub_explicit(word(wg), n, memory_order_relaxed);
    while (list) {
        e = list;
        list = e->next;
        sema_wake(e);
    }
    sema_unlock(b);
}

CSP_API void csp_wg_done(csp_waitgroup *wg)
{
    csp_wg_add(wg, -1);
}

CSP_API int csp_wg_wait(csp_waitgroup *wg)
{
    if (!wg)
        return EINVAL;
    _Atomic uint64_t *st = word(wg);
    uint64_t s = atomic_load_explicit(st, memory_order_acquire);
    if ((s >> 32) == 0)
        return 0;
    struct sema_bucket *b = sema_lock(wg);
    s = atomic_load_explicit(st, memory_order_acquire);
    for (;;) {
        if ((s >> 32) == 0) {
            sema_unlock(b);
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(st, &s, s + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    struct sema_entry e;
    sema_enqueue(b, &e, wg, false);
    sema_park(b, &e, WAIT_WAITGROUP);
    return 0;
}
