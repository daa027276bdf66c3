/*
 * sema.h - the parking lot: wait queues for the sync primitives, kept
 * outside the objects, in a fixed table of buckets hashed by address
 * (Go's semtable, WebKit's ParkingLot).
 *
 * Why outside: a csp_mutex, csp_rwlock, csp_waitgroup or csp_once is one
 * word that users embed and free at will.  The contract lets a user free
 * it as soon as its own last call returns, even while the call that woke
 * it is still returning in another thread.  So a waker touches the object
 * only through the atomic that releases it, or while holding the bucket
 * lock *and* having found a waiter parked on that address (which proves
 * the object is still alive); everything else it needs lives in the
 * bucket and in the waiters' entries.
 */
#ifndef CSP_SEMA_H
#define CSP_SEMA_H

#include "internal.h"
#include "lock.h"
#include "waiter.h"
#include "task.h"

struct sema_entry {
    struct sema_entry *next, *prev;
    const void *key;           /* the object's address                 */
    struct waiter w;
    int64_t since;             /* enqueue time (mutex starvation)      */
    uint8_t kind;              /* object specific (rwlock: reader/writer) */
    uint8_t handoff;           /* the waker passed ownership to us     */
};

struct sema_bucket {
    lock_t lock;
    struct sema_entry *head, *tail;
} ALIGNED_CL;

struct sema_bucket *sema_lock(const void *key) __attribute__((visibility("hidden")));
void sema_unlock(struct sema_bucket *b) __attribute__((visibility("hidden")));
/* With the bucket locked: queue e (initialized here) for key. */
void sema_enqueue(struct sema_bucket *b, struct sema_entry *e, const void *key, bool front)
    __attribute__((visibility("hidden")));
void sema_dequeue(struct sema_bucket *b, struct sema_entry *e) __attribute__((visibility("hidden")));
/* The first entry for key after `from` (NULL: from the head), or NULL. */
struct sema_entry *sema_find(struct sema_bucket *b, const void *key, struct sema_entry *from)
    __attribute__((visibility("hidden")));
/* Parks on e, releasing the bucket lock once wakeable. */
void sema_park(struct sema_bucket *b, struct sema_entry *e, int reason)
    __attribute__((visibility("hidden")));
/* Wakes the owner of a dequeued entry; e must not be touched afterwards. */
void sema_wake(struct sema_entry *e) __attribute__((visibility("hidden")));

#endif
