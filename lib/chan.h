/*
 * chan.h - channel internals shared by chan.c, select.c and timer.c.
 */
#ifndef CSP_CHAN_H
#define CSP_CHAN_H

#include "internal.h"
#include "lock.h"
#include "ring.h"
#include "waiter.h"

struct csp_chan {
    lock_t lock;                 /* guards recvq, sendq, closing          */
    _Atomic uint32_t closed;     /* 1 once closed; set under lock         */
    _Atomic uint32_t nrecv;      /* entries in recvq (lock to write)      */
    _Atomic uint32_t nsend;      /* entries in sendq (lock to write)      */
    _Atomic long refs;
    size_t elem_size;
    size_t cap;
    struct wq recvq, sendq;
    void *timer;                 /* ticker feeding it (timer lock)        */
    struct ring ring;            /* cap > 0 only: not allocated otherwise */
};

/* Results of the internal try operations. */
enum { CHAN_OK = 0, CHAN_CLOSED = 1, CHAN_BLOCK = 2 };

/* With c->lock held: completes a send/receive if it can without waiting.
 * `self` (may be NULL) is the caller's own waiter, whose entries in the
 * queues must not be taken as partners (a select on both ends of one
 * channel).  Wakes the partner it completes with. */
int chan_send_locked(csp_chan *c, const void *elem, struct waiter *self)
    __attribute__((visibility("hidden")));
int chan_recv_locked(csp_chan *c, void *elem, struct waiter *self)
    __attribute__((visibility("hidden")));
/* Without the lock (it takes it only if it must). */
int chan_send_nowait(csp_chan *c, const void *elem) __attribute__((visibility("hidden")));
int chan_recv_nowait(csp_chan *c, void *elem) __attribute__((visibility("hidden")));

/* Queue registration, with c->lock held. */
void chan_enqueue(csp_chan *c, struct wq_entry *e, bool send) __attribute__((visibility("hidden")));
void chan_dequeue(csp_chan *c, struct wq_entry *e, bool send) __attribute__((visibility("hidden")));

/* For the ticker (called with the timer lock held). */
long  chan_refs(const csp_chan *c) __attribute__((visibility("hidden")));
void  chan_set_timer(csp_chan *c, void *t) __attribute__((visibility("hidden")));
void *chan_get_timer(csp_chan *c) __attribute__((visibility("hidden")));

/* A position stamp that changes whenever a buffered channel's content
 * does (head + tail; both only grow).  Unbuffered: 0. */
static inline uint64_t chan_version(const csp_chan *c)
{
    if (!c->cap)
        return 0;
    return atomic_load_explicit(&c->ring.head, memory_order_seq_cst) +
           atomic_load_explicit(&c->ring.tail, memory_order_seq_cst);
}

#endif
