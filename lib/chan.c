/*
 * chan.c - channels.
 *
 * A channel is a lock, two wait queues (receivers, senders), a closed flag
 * and, when buffered, a lock-free ring (ring.h).
 *
 * Buffered channels.  The fast path never takes the lock: a push or pop on
 * the ring, then one load of the opposite queue's count.  A party that
 * must wait takes the lock, registers (count++, seq_cst), then tries the
 * ring once more before parking; a party that changed the ring checks the
 * count after its seq_cst CAS.  One of the two sees the other (ring.h),
 * so no wake-up is lost.  The party that finds waiters "pumps" under the
 * lock: for a waiting receiver it claims the waiter (W_BUSY), pops a value
 * straight into the receiver's buffer and wakes it; if the value was
 * taken meanwhile by a fast-path receiver it hands the waiter back
 * (W_WAITING).  Waiting senders are served the same way (their value is
 * pushed for them).  One value wakes one receiver; one free slot wakes one
 * sender.
 *
 * Unbuffered channels work under the lock, as Go's do: a sender that finds
 * a waiting receiver copies its value straight into the receiver's buffer
 * and wakes it (and vice versa); otherwise it registers and parks.
 *
 * Close sets the flag (and the ring's mark bit, so no push can slip in
 * after it), then wakes every waiter: receivers first get any value still
 * buffered, then EPIPE with a zero-filled buffer; senders get EPIPE and
 * their value is not delivered.
 *
 * Invariants (under c->lock): every entry in recvq/sendq is linked exactly
 * once and counted in nrecv/nsend; an entry whose waiter was claimed
 * elsewhere may linger until its owner or the next scan unlinks it.
 */
#include "chan.h"
#include "sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool is_past(int64_t deadline)
{
    return deadline != CSP_FOREVER && (deadline == CSP_NOWAIT || deadline <= csp_now());
}

static inline int would_block(int64_t deadline)
{
    return deadline == CSP_NOWAIT ? EAGAIN : ETIMEDOUT;
}

CSP_API csp_chan *csp_chan_make(size_t elem_size, size_t cap)
{
    if (cap > ((size_t)1 << 40) || elem_size > ((size_t)1 << 30)) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = cap ? sizeof(struct csp_chan) : offsetof(struct csp_chan, ring);
    size_t slot = (sizeof(struct ring_slot) + elem_size + 7) & ~(size_t)7;
    if (cap && slot > (SIZE_MAX - size) / cap) {
        errno = ENOMEM;
        return NULL;
    }
    csp_chan *c = csp_aligned_alloc(size + (cap ? slot * cap : 0));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, offsetof(struct csp_chan, ring));
    atomic_init(&c->refs, 1);
    c->elem_size = elem_size;
    c->cap = cap;
    if (cap)
        ring_init(&c->ring, cap, elem_size, (unsigned char *)c + size);
    return c;
}

CSP_API csp_chan *csp_chan_retain(csp_chan *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

CSP_API void csp_chan_release(csp_chan *c)
{
    if (!c)
        return;
    /* acq_rel: every holder's use happens before the free. */
    long old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
    if (old > 1)
        return;
    if (old < 1)
        csp_fatal("csp_chan_release: channel %p released more often than retained", (void *)c);
    lock_acquire(&c->lock);
    bool waiters = c->recvq.head || c->sendq.head;
    lock_release(&c->lock);
    if (waiters)
        csp_fatal("csp_chan_release: channel %p freed while tasks are blocked on it", (void *)c);
    csp_free(c);
}

CSP_API size_t csp_chan_len(const csp_chan *c)
{
    return c && c->cap ? ring_len(&c->ring) : 0;
}

CSP_API size_t csp_chan_cap(const csp_chan *c) { return c ? c->cap : 0; }
CSP_API size_t csp_chan_elem_size(const csp_chan *c) { return c ? c->elem_size : 0; }

long chan_refs(const csp_chan *c) { return atomic_load(&c->refs); }
void chan_set_timer(csp_chan *c, void *t) { c->timer = t; }
void *chan_get_timer(csp_chan *c) { return c->timer; }

/* ---- queues ------------------------------------------------------------- */

void chan_enqueue(csp_chan *c, struct wq_entry *e, bool send)
{
    CHAOS();
    wq_push(send ? &c->sendq : &c->recvq, e);
    /* seq_cst: the registration half of the Dekker pattern (ring.h). */
    atomic_fetch_add_explicit(send ? &c->nsend : &c->nrecv, 1, memory_order_seq_cst);
}

void chan_dequeue(csp_chan *c, struct wq_entry *e, bool send)
{
    if (!e->linked)
        return;
    wq_remove(send ? &c->sendq : &c->recvq, e);
    atomic_fetch_sub_explicit(send ? &c->nsend : &c->nrecv, 1, memory_order_relaxed);
}

static void zero_fill(csp_chan *c, void *elem)
{
    if (elem && c->elem_size)
        memset(elem, 0, c->elem_size);
}

/* Completes a claimed waiter: record the result, publish the claim
 * (release: the buffers we filled are visible to the owner), wake it. */
static void finish(struct wq_entry *e, int err)
{
    struct waiter *w = e->w;
    CHAOS();
    w->err = err;
    atomic_store_explicit(&w->claim, W_FIRED + e->idx, memory_order_release);
    waiter_wake(w);
}

/* Buffered: serve waiting receivers and senders while the ring allows.
 * c->lock held.  Entries of `self` (the caller's own waiter, registered
 * while it retries) are never served: the caller is running, not parked. */
static bool pump_one(csp_chan *c, bool send, struct waiter *self)
{
    struct wq *q = send ? &c->sendq : &c->recvq;
    struct wq_entry *e = q->head;
    while (e) {
        struct wq_entry *next = e->next;
        struct waiter *w = e->w;
        if (w == self) {
            e = next;
            continue;
        }
        if (!waiter_claim(w, W_BUSY)) {
            chan_dequeue(c, e, send);       /* fired elsewhere / timed out */
            e = next;
            continue;
        }
        int r = send ? ring_push(&c->ring, e->elem) : ring_pop(&c->ring, e->elem);
        if (r == (send ? RING_FULL : RING_EMPTY)) {
            /* The slot or value went to a fast-path party: hand it back. */
            atomic_store_explicit(&w->claim, W_WAITING, memory_order_release);
            return false;
        }
        chan_dequeue(c, e, send);
        if (r == RING_CLOSED && !send)
            zero_fill(c, e->elem);
        finish(e, r == RING_OK ? 0 : EPIPE);
        return true;
    }
    return false;
}

static void pump_locked(csp_chan *c, struct waiter *self)
{
    bool progress = true;
    while (progress) {
        progress = false;
        if (c->recvq.head && pump_one(c, false, self))
            progress = true;
        if (c->sendq.head && pump_one(c, true, self))
            progress = true;
    }
}

static void pump(csp_chan *c)
{
    lock_acquire(&c->lock);
    pump_locked(c, NULL);
    lock_release(&c->lock);
}

/* ---- the try operations ----------------------------------------------------- */

int chan_send_locked(csp_chan *c, const void *elem, struct waiter *self)
{
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return CHAN_CLOSED;
    if (c->cap) {
        int r = ring_push(&c->ring, elem);
        if (r == RING_OK) {
            pump_locked(c, self);
            return CHAN_OK;
        }
        return r == RING_CLOSED ? CHAN_CLOSED : CHAN_BLOCK;
    }
    struct wq_entry *e = c->recvq.head;
    while (e) {
        struct wq_entry *next = e->next;
        if (e->w != self) {
            if (waiter_claim(e->w, W_FIRED + e->idx)) {
                chan_dequeue(c, e, false);
                if (c->elem_size && e->elem)
                    ring_copy(e->elem, elem, c->elem_size);
                e->w->err = 0;
                waiter_wake(e->w);
                return CHAN_OK;
            }
            chan_dequeue(c, e, false);
        }
        e = next;
    }
    return CHAN_BLOCK;
}

int chan_recv_locked(csp_chan *c, void *elem, struct waiter *self)
{
    if (c->cap) {
        int r = ring_pop(&c->ring, elem);
        if (r == RING_OK) {
            pump_locked(c, self);
            return CHAN_OK;
        }
        return r == RING_CLOSED ? CHAN_CLOSED : CHAN_BLOCK;
    }
    struct wq_entry *e = c->sendq.head;
    while (e) {
        struct wq_entry *next = e->next;
        if (e->w != self) {
            if (waiter_claim(e->w, W_FIRED + e->idx)) {
                chan_dequeue(c, e, true);
                if (c->elem_size && elem)
                    ring_copy(elem, e->elem, c->elem_size);
                e->w->err = 0;
                waiter_wake(e->w);
                return CHAN_OK;
            }
            chan_dequeue(c, e, true);
        }
        e = next;
    }
    if (atomic_load_explicit(&c->closed, memory_order_relaxed))
        return CHAN_CLOSED;
    return CHAN_BLOCK;
}

int chan_send_nowait(csp_chan *c, const void *elem)
{
    if (c->cap) {
        int r = ring_push(&c->ring, elem);
        if (r == RING_OK) {
            CHAOS();
            if (atomic_load_explicit(&c->nrecv, memory_order_seq_cst))
                pump(c);
            return CHAN_OK;
        }
        return r == RING_CLOSED ? CHAN_CLOSED : CHAN_BLOCK;
    }
    /* Lock-free "not ready" (Go's reasoning): no receiver waits, and then
     * the channel is still open; closed never reverts, so at the instant
     * of the first load the send could not proceed. */
    if (atomic_load_explicit(&c->nrecv, memory_order_seq_cst) == 0 &&
        !atomic_load_explicit(&c->closed, memory_order_seq_cst))
        return CHAN_BLOCK;
    lock_acquire(&c->lock);
    int r = chan_send_locked(c, elem, NULL);
    lock_release(&c->lock);
    return r;
}

int chan_recv_nowait(csp_chan *c, void *elem)
{
    if (c->cap) {
        int r = ring_pop(&c->ring, elem);
        if (r == RING_OK) {
            CHAOS();
            if (atomic_load_explicit(&c->nsend, memory_order_seq_cst))
                pump(c);
            return CHAN_OK;
        }
        return r == RING_CLOSED ? CHAN_CLOSED : CHAN_BLOCK;
    }
    if (atomic_load_explicit(&c->nsend, memory_order_seq_cst) == 0 &&
        !atomic_load_explicit(&c->closed, memory_order_seq_cst))
        return CHAN_BLOCK;
    lock_acquire(&c->lock);
    int r = chan_recv_locked(c, elem, NULL);
    lock_release(&c->lock);
    return r;
}

/* ---- blocking operations ------------------------------------------------------ */

static void unlock_chan(void *arg)
{
    lock_release(&((csp_chan *)arg)->lock);
}

static int chan_block(csp_chan *c, void *elem, bool send, int64_t deadline)
{
    struct waiter w;
    struct wq_entry e = { .w = &w, .elem = elem, .idx = 0 };
    waiter_init(&w);
    lock_acquire(&c->lock);
    /* Register first, then try once more (no lost wake-up). */
    chan_enqueue(c, &e, send);
    int r = send ? chan_send_locked(c, elem, &w) : chan_recv_locked(c, elem, &w);
    if (r != CHAN_BLOCK) {
        chan_dequeue(c, &e, send);
        lock_release(&c->lock);
        if (r == CHAN_CLOSED) {
            if (!send)
                zero_fill(c, elem);
            return EPIPE;
        }
        return 0;
    }
    uint32_t claim = waiter_park(&w, deadline, send ? WAIT_CHAN_SEND : WAIT_CHAN_RECV,
                                 unlock_chan, c);
    if (claim == W_TIMEOUT) {
        lock_acquire(&c->lock);
        chan_dequeue(c, &e, send);
        lock_release(&c->lock);
        return ETIMEDOUT;
    }
    return w.err;
}

static int chan_send(csp_chan *c, const void *elem, int64_t deadline)
{
    if (unlikely(!c || (!elem && c->elem_size)))
        return EINVAL;
    int r = chan_send_nowait(c, elem);
    if (likely(r == CHAN_OK))
        return 0;
    if (r == CHAN_CLOSED)
        return EPIPE;
    if (is_past(deadline))
        return would_block(deadline);
    return chan_block(c, (void *)elem, true, deadline);
}

static int chan_recv(csp_chan *c, void *elem, int64_t deadline)
{
    if (unlikely(!c || (!elem && c->elem_size)))
        return EINVAL;
    int r = chan_recv_nowait(c, elem);
    if (likely(r == CHAN_OK))
        return 0;
    if (r == CHAN_CLOSED) {
        zero_fill(c, elem);
        return EPIPE;
    }
    if (is_past(deadline))
        return would_block(deadline);
    return chan_block(c, elem, false, deadline);
}

CSP_API int csp_send(csp_chan *c, const void *elem) { return chan_send(c, elem, CSP_FOREVER); }
CSP_API int csp_recv(csp_chan *c, void *elem) { return chan_recv(c, elem, CSP_FOREVER); }
CSP_API int csp_try_send(csp_chan *c, const void *elem) { return chan_send(c, elem, CSP_NOWAIT); }
CSP_API int csp_try_recv(csp_chan *c, void *elem) { return chan_recv(c, elem, CSP_NOWAIT); }
CSP_API int csp_send_until(csp_chan *c, const void *elem, int64_t deadline)
{
    return chan_send(c, elem, deadline);
}
CSP_API int csp_recv_until(csp_chan *c, void *elem, int64_t deadline)
{
    return chan_recv(c, elem, deadline);
}

CSP_API int csp_close(csp_chan *c)
{
    if (!c)
        return EINVAL;
    lock_acquire(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        lock_release(&c->lock);
        return EPIPE;
    }
    /* seq_cst: pairs with the lock-free "closed?" loads of the try paths;
     * the close happens before any receive that reports EPIPE. */
    atomic_store_explicit(&c->closed, 1, memory_order_seq_cst);
    if (c->cap)
        ring_close(&c->ring);
    CHAOS();
    struct wq_entry *e;
    while ((e = c->recvq.head)) {
        chan_dequeue(c, e, false);
        if (!waiter_claim(e->w, W_BUSY))
            continue;
        int r = c->cap ? ring_pop(&c->ring, e->elem) : RING_CLOSED;
        if (r != RING_OK)
            zero_fill(c, e->elem);
        finish(e, r == RING_OK ? 0 : EPIPE);
    }
    while ((e = c->sendq.head)) {
        chan_dequeue(c, e, true);
        if (!waiter_claim(e->w, W_FIRED + e->idx))
            continue;
        e->w->err = EPIPE;
        waiter_wake(e->w);
    }
    lock_release(&c->lock);
    return 0;
}
