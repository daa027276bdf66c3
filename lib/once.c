/*
 * once.c - csp_once: a 32-bit word (NEW, RUNNING, RUNNING with waiters,
 * DONE) plus the parking lot.
 *
 * The first caller moves NEW -> RUNNING and runs fn; later callers see
 * DONE (acquire) and return, or register under the bucket lock (setting
 * RUNNING -> WAITERS) and park.  The runner publishes DONE with one
 * exchange (release: fn's effects happen before every return); if it saw
 * WAITERS it wakes them from the bucket without touching the object again.
 */
#include "sema.h"

#include <errno.h>

enum { O_NEW = 0, O_RUNNING = 1, O_WAITERS = 2, O_DONE = 3 };

CSP_API int csp_once_do(csp_once *once, void (*fn)(void *), void *arg)
{
    if (!once || !fn)
        return EINVAL;
    _Atomic uint32_t *st = (_Atomic uint32_t *)&once->csp_private_state;
    uint32_t s = atomic_load_explicit(st, memory_order_acquire);
    if (likely(s == O_DONE))
        return 0;
    s = O_NEW;
    if (atomic_compare_exchange_strong_explicit(st, &s, O_RUNNING, memory_order_acquire,
                                                memory_order_acquire)) {
        fn(arg);
        uint32_t old = atomic_exchange_explicit(st, O_DONE, memory_order_acq_rel);
        if (old == O_WAITERS) {
            struct sema_bucket *b = sema_lock(once);
            struct sema_entry *list = NULL, *e;
            while ((e = sema_find(b, once, NULL))) {
                sema_dequeue(b, e);
                e->next = list;
                list = e;
            }
            while (list) {
                e = list;
                list = e->next;
                sema_wake(e);
            }
            sema_unlock(b);
        }
        return 0;
    }
    struct sema_bucket *b = sema_lock(once);
    s = atomic_load_explicit(st, memory_order_acquire);
    for (;;) {
        if (s == O_DONE) {
            sema_unlock(b);
            return 0;
        }
        if (s == O_WAITERS ||
            atomic_compare_exchange_weak_explicit(st, &s, O_WAITERS, memory_order_acquire,
                                                  memory_order_acquire))
            break;
    }
    struct sema_entry e;
    sema_enqueue(b, &e, once, false);
    sema_park(b, &e, WAIT_ONCE);
    atomic_thread_fence(memory_order_acquire);
    return 0;
}
