/*
 * rwlock.c - csp_rwlock: one 32-bit word plus the parking lot.
 *
 * State: WRITER (a writer holds it), WWAIT (a writer is queued: new
 * readers, tryrdlock included, must wait, so writers do not starve),
 * RWAIT (readers are queued), and the count of active readers in the bits
 * above.  Uncontended rdlock/rdunlock and wrlock/wrunlock are one CAS or
 * one atomic add each.
 *
 * Hand-off: a queued party never has to compete once woken; the unlocker
 * grants the lock before waking it.  A write unlock grants every queued
 * reader at once (if any), otherwise the next writer; the last read
 * unlock grants the next queued writer.  Readers that queued during a
 * write therefore get in before the next writer, and a waiting writer
 * gets in before readers that arrive later: neither side starves.
 *
 * Memory order: acquiring is acquire, releasing is release, including the
 * grant stores; a read unlock (release) happens before the next write
 * lock (acquire on the word, or via the grant).
 */
#include "sema.h"

#include <errno.h>

#define RW_WRITER 1u
#define RW_WWAIT  2u
#define RW_RWAIT  4u
#define RW_READER 8u
#define RW_READERS(s) ((s) >> 3)

enum { K_READ = 1, K_WRITE = 2 };

static inline _Atomic uint32_t *word(csp_rwlock *l)
{
    return (_Atomic uint32_t *)&l->csp_private_state;
}

static struct sema_entry *find_kind(struct sema_bucket *b, const void *key, int kind,
                                    struct sema_entry *from)
{
    struct sema_entry *e = from;
    while ((e = sema_find(b, key, e)))
        if (e->kind == kind)
            return e;
    return NULL;
}

CSP_API int csp_rwlock_tryrdlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    _Atomic uint32_t *st = word(l);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    while (!(s & (RW_WRITER | RW_WWAIT))) {
        if (atomic_compare_exchange_weak_explicit(st, &s, s + RW_READER, memory_order_acquire,
                                                  memory_order_relaxed))
            return 0;
    }
    return EBUSY;
}

CSP_API int csp_rwlock_rdlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    if (csp_rwlock_tryrdlock(l) == 0)
        return 0;
    _Atomic uint32_t *st = word(l);
    struct sema_bucket *b = sema_lock(l);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (!(s & (RW_WRITER | RW_WWAIT))) {
            if (atomic_compare_exchange_weak_explicit(st, &s, s + RW_READER,
                                                      memory_order_acquire,
                                                      memory_order_relaxed)) {
                sema_unlock(b);
                return 0;
            }
            continue;
        }
        if ((s & RW_RWAIT) ||
            atomic_compare_exchange_weak_explicit(st, &s, s | RW_RWAIT, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    struct sema_entry e;
    sema_enqueue(b, &e, l, false);
    e.kind = K_READ;
    sema_park(b, &e, WAIT_RWLOCK);
    return 0;   /* granted by the unlocker */
}

/* Grants the lock to the next queued writer, if any.  Bucket locked, the
 * lock free of readers and writer.  Returns true if it granted. */
static bool grant_writer(struct sema_bucket *b, csp_rwlock *l, uint32_t keep)
{
    struct sema_entry *e = find_kind(b, l, K_WRITE, NULL);
    if (!e)
        return false;
    sema_dequeue(b, e);
    bool more = find_kind(b, l, K_WRITE, NULL) != NULL;
    e->handoff = 1;
    atomic_store_explicit(word(l), RW_WRITER | (more ? RW_WWAIT : 0) | keep,
                          memory_order_release);
    sema_wake(e);
    return true;
}

CSP_API int csp_rwlock_rdunlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    _Atomic uint32_t *st = word(l);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (RW_READERS(s) == 0)
            return EPERM;
        /* acq_rel, not just release: the reader that turns out last must
         * acquire every earlier reader's unlock, so that the writer it
         * grants the lock to is ordered after all of them ("a read unlock
         * happens before the next write lock"). */
        if (atomic_compare_exchange_weak_explicit(st, &s, s - RW_READER, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    s -= RW_READER;
    if (RW_READERS(s) != 0 || !(s & RW_WWAIT))
        return 0;
    /* Last reader out with a writer waiting: grant it. */
    struct sema_bucket *b = sema_lock(l);
    s = atomic_load_explicit(st, memory_order_relaxed);
    if (RW_READERS(s) == 0 && !(s & RW_WRITER) && (s & RW_WWAIT)) {
        if (!grant_writer(b, l, s & RW_RWAIT))
            atomic_store_explicit(st, s & ~RW_WWAIT, memory_order_release);
    }
    sema_unlock(b);
    return 0;
}

CSP_API int csp_rwlock_trywrlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong_explicit(word(l), &zero, RW_WRITER, memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    return EBUSY;
}

CSP_API int csp_rwlock_wrlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    if (csp_rwlock_trywrlock(l) == 0)
        return 0;
    _Atomic uint32_t *st = word(l);
    struct sema_bucket *b = sema_lock(l);
    uint32_t s = atomic_load_explicit(st, memory_order_relaxed);
    for (;;) {
        if (!(s & RW_WRITER) && RW_READERS(s) == 0) {
            if (atomic_compare_exchange_weak_explicit(st, &s, s | RW_WRITER,
                                                      memory_order_acquire,
                                                      memory_order_relaxed)) {
                sema_unlock(b);
                return 0;
            }
            continue;
        }
        if ((s & RW_WWAIT) ||
            atomic_compare_exchange_weak_explicit(st, &s, s | RW_WWAIT, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    struct sema_entry e;
    sema_enqueue(b, &e, l, false);
    e.kind = K_WRITE;
    sema_park(b, &e, WAIT_RWLOCK);
    return 0;   /* granted by the unlocker */
}

CSP_API int csp_rwlock_wrunlock(csp_rwlock *l)
{
    if (!l)
        return EINVAL;
    _Atomic uint32_t *st = word(l);
    uint32_t s = RW_WRITER;
    if (atomic_compare_exchange_strong_explicit(st, &s, 0, memory_order_release,
                                                memory_order_relaxed))
        return 0;
    if (!(s & RW_WRITER))
        return EPERM;
    struct sema_bucket *b = sema_lock(l);
    s = atomic_load_explicit(st, memory_order_relaxed);
    if (!(s & RW_WRITER)) {
        sema_unlock(b);
        return EPERM;
    }
    if (s & RW_RWAIT) {
        /* Grant every queued reader; a queued writer waits behind them. */
        uint32_t n = 0;
        struct sema_entry *list = NULL, *e;
        while ((e = find_kind(b, l, K_READ, NULL))) {
            sema_dequeue(b, e);
            e->handoff = 1;
            e->next = list;
            list = e;
            n++;
        }
        bool writers = find_kind(b, l, K_WRITE, NULL) != NULL;
        atomic_store_explicit(st, n * RW_READER | (writers ? RW_WWAIT : 0), memory_order_release);
        while (list) {
            e = list;
            list = e->next;
            sema_wake(e);
        }
    } else if (!grant_writer(b, l, 0)) {
        atomic_store_explicit(st, 0, memory_order_release);
    }
    sema_unlock(b);
    return 0;
}
