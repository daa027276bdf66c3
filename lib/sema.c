/* sema.c - the parking lot (see sema.h). */
#include "sema.h"
#include "sched.h"

#define SEMA_BUCKETS 251

static struct sema_bucket buckets[SEMA_BUCKETS];

struct sema_bucket *sema_lock(const void *key)
{
    uintptr_t h = (uintptr_t)key;
    h ^= h >> 15;
    h *= 0x9E3779B97F4A7C15ull;
    struct sema_bucket *b = &buckets[(h >> 20) % SEMA_BUCKETS];
    CHAOS();
    lock_acquire(&b->lock);
    return b;
}

void sema_unlock(struct sema_bucket *b)
{
    CHAOS();
    lock_release(&b->lock);
}

void sema_enqueue(struct sema_bucket *b, struct sema_entry *e, const void *key, bool front)
{
    e->key = key;
    e->handoff = 0;
    waiter_init(&e->w);
    if (front) {
        e->prev = NULL;
        e->next = b->head;
        if (b->head)
            b->head->prev = e;
        else
            b->tail = e;
        b->head = e;
    } else {
        e->next = NULL;
        e->prev = b->tail;
        if (b->tail)
            b->tail->next = e;
        else
            b->head = e;
        b->tail = e;
    }
}

void sema_dequeue(struct sema_bucket *b, struct sema_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        b->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        b->tail = e->prev;
    e->next = e->prev = NULL;
}

struct sema_entry *sema_find(struct sema_bucket *b, const void *key, struct sema_entry *from)
{
    for (struct sema_entry *e = from ? from->next : b->head; e; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

static void unlock_bucket(void *arg)
{
    lock_release(&((struct sema_bucket *)arg)->lock);
}

void sema_park(struct sema_bucket *b, struct sema_entry *e, int reason)
{
    CHAOS();
    waiter_park(&e->w, CSP_FOREVER, reason, unlock_bucket, b);
}

void sema_wake(struct sema_entry *e)
{
    /* No deadlines here, so the claim always succeeds; it still orders
     * (acq_rel) what the waker did before this point with the woken. */
    if (waiter_claim(&e->w, W_FIRED))
        waiter_wake(&e->w);
}
