/*
 * waiter.h - one blocked operation (Go's sudog), and the claim word that
 * decides who completes it.
 *
 * A waiter is created on the blocked party's stack.  It is registered in
 * one or more wait queues (a channel's send or receive queue, several for a
 * select, a parking-lot bucket for the sync primitives) through wq_entry
 * records that point back to it.
 *
 * The claim word is the single point of decision:
 *     W_WAITING  registered, nobody has completed it yet
 *     W_BUSY     a buffered-channel waker is trying to complete it (it owns
 *                the waiter, but may still hand it back as W_WAITING if
 *                the value it hoped for was taken); everybody else spins
 *     W_TIMEOUT  its deadline passed first (set by the owner or its timer)
 *     W_FIRED+i  completed through case i (0 for single operations)
 * Only the party whose compare-and-swap moves the word away from W_WAITING
 * may touch the waiter's buffers; it fills them, stores the result in
 * `err`, and calls waiter_wake().  After waiter_wake() it must not touch
 * the waiter again: the owner may return and its stack frame vanish.
 */
#ifndef CSP_WAITER_H
#define CSP_WAITER_H

#include "internal.h"
#include "timer.h"

struct task;

enum { W_WAITING = 0, W_BUSY = 1, W_TIMEOUT = 2, W_FIRED = 3 };

struct waiter {
    _Atomic uint32_t claim;     /* see above                                */
    _Atomic uint32_t wake;      /* plain thread: futex word, 1 once woken   */
    struct task *task;          /* the parked task, or NULL (plain thread)  */
    int err;                    /* result written by the claimer            */
    struct timer timer;         /* deadline timer of a parked task          */
};

/* One registration of a waiter in one queue. */
struct wq_entry {
    struct wq_entry *next, *prev;
    struct waiter *w;
    void *elem;                 /* where the value goes / comes from        */
    uint32_t idx;               /* the select case (0 for single ops)       */
    uint8_t linked;             /* still in its queue (guarded by its lock) */
};

/* A doubly linked FIFO of entries, guarded by its owner's lock. */
struct wq {
    struct wq_entry *head, *tail;
};

static inline void wq_push(struct wq *q, struct wq_entry *e)
{
    e->next = NULL;
    e->prev = q->tail;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    e->linked = 1;
}

static inline void wq_remove(struct wq *q, struct wq_entry *e)
{
    if (!e->linked)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        q->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        q->tail = e->prev;
    e->next = e->prev = NULL;
    e->linked = 0;
}

/* Initializes w for the calling task or thread. */
void waiter_init(struct waiter *w) __attribute__((visibility("hidden")));

/* Tries to take w from W_WAITING to `to`; spins while another party holds
 * it W_BUSY.  acq_rel: the claimer's later writes into the waiter's buffers
 * are ordered after the owner's registration, and a claimer that loses
 * sees the winner's decision. */
static inline bool waiter_claim(struct waiter *w, uint32_t to)
{
    CHAOS();
    for (;;) {
        uint32_t s = W_WAITING;
        if (atomic_compare_exchange_strong_explicit(&w->claim, &s, to, memory_order_acq_rel,
                                                    memory_order_acquire))
            return true;
        if (s != W_BUSY)
            return false;
        cpu_relax();
    }
}

/* Parks the caller until w is claimed and woken, or the deadline passes.
 * `unlock(arg)` releases the locks that guard the queues w is registered
 * in; it runs after the caller has become wakeable (so no wake-up is lost)
 * and before it sleeps.  Returns the final claim word (W_TIMEOUT or
 * W_FIRED+i); on W_TIMEOUT the caller still has to unregister. */
uint32_t waiter_park(struct waiter *w, int64_t deadline, int reason,
                     void (*unlock)(void *arg), void *arg) __attribute__((visibility("hidden")));

/* Wakes the owner of a waiter the caller has claimed. */
void waiter_wake(struct waiter *w) __attribute__((visibility("hidden")));

/* True when the caller is a task (not a plain thread). */
bool in_task(void) __attribute__((visibility("hidden")));

#endif
