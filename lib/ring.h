/*
 * ring.h - the lock-free bounded MPMC buffer of a buffered channel
 * (Vyukov's array queue with per-slot stamps, as crossbeam's array flavour
 * lays it out).
 *
 * Positions are 64-bit and only grow: pos = lap | index, where index <
 * cap and lap is a multiple of one_lap = 2 * mark_bit.  mark_bit (the
 * smallest power of two > cap) is set in `tail` when the channel closes, so
 * the CAS of a racing push fails instead of slipping a value in after
 * close.  A slot's stamp says whose turn it is: stamp == pos means "free
 * for the push at pos", stamp == pos + 1 means "holds the value pushed at
 * pos, ready for the pop at pos".
 *
 * Memory orders
 *   - head/tail CAS: seq_cst.  They are one half of the Dekker pattern with
 *     the channel's waiter counts (chan.c): a pusher CASes tail then loads
 *     nrecv; a receiver registering stores nrecv then loads tail.  With
 *     both sides seq_cst one of them sees the other (no lost wake-up).  On
 *     x86 a seq_cst CAS is the same LOCK CMPXCHG as a relaxed one.
 *   - stamp store: release, after the value copy; stamp load: acquire,
 *     before the value copy.  This is the edge "a send happens before the
 *     receive that gets its value", and "the k-th receive happens before
 *     the (k+C)-th send completes" (the pop's release store of the next
 *     lap's stamp is what that push acquires).
 * Because positions never repeat, a reader that sees the same head and
 * tail twice knows no operation happened in between (select's
 * linearizable "nothing ready").
 */
#ifndef CSP_RING_H
#define CSP_RING_H

#include "internal.h"
#include <string.h>

struct ring {
    _Atomic uint64_t head ALIGNED_CL;   /* next pop position                  */
    _Atomic uint64_t tail ALIGNED_CL;   /* next push position | mark_bit      */
    uint64_t mark_bit ALIGNED_CL;
    uint64_t one_lap;
    size_t cap;
    size_t elem_size;
    size_t slot_size;                   /* stamp + element, 8-aligned         */
    unsigned char *slots;
};

struct ring_slot {
    _Atomic uint64_t stamp;
    unsigned char data[];
};

enum { RING_OK = 0, RING_EMPTY, RING_FULL, RING_CLOSED };

/* memcpy with the common element sizes inlined (the call and its size
 * dispatch cost more than the copy for an int64 channel). */
static inline void ring_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 8: memcpy(dst, src, 8); break;
    case 4: memcpy(dst, src, 4); break;
    case 16: memcpy(dst, src, 16); break;
    case 0: break;
    default: memcpy(dst, src, n); break;
    }
}

/* Exponential backoff after a lost CAS (as crossbeam's Backoff::spin):
 * 1, 2, 4, ... up to 64 pauses. */
static inline void ring_backoff(int step)
{
    for (int i = 0, n = 1 << (step < 6 ? step : 6); i < n; i++)
        cpu_relax();
}

static inline struct ring_slot *ring_slot(const struct ring *r, uint64_t index)
{
    return (struct ring_slot *)(r->slots + index * r->slot_size);
}

static inline void ring_init(struct ring *r, size_t cap, size_t elem_size, unsigned char *slots)
{
    uint64_t m = 1;
    while (m <= cap)
        m <<= 1;
    r->mark_bit = m;
    r->one_lap = m << 1;
    r->cap = cap;
    r->elem_size = elem_size;
    r->slot_size = (sizeof(struct ring_slot) + elem_size + 7) & ~(size_t)7;
    r->slots = slots;
    for (size_t i = 0; i < cap; i++)
        atomic_init(&ring_slot(r, i)->stamp, i);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

static inline uint64_t ring_next(const struct ring *r, uint64_t pos)
{
    uint64_t index = pos & (r->mark_bit - 1);
    uint64_t lap = pos & ~(r->one_lap - 1);
    return index + 1 < r->cap ? pos + 1 : lap + r->one_lap;
}

/* Pushes *elem.  RING_OK, RING_FULL or RING_CLOSED. */
static inline int ring_push(struct ring *r, const void *elem)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (int spins = 0;; spins++) {
        if (unlikely(tail & r->mark_bit))
            return RING_CLOSED;
        struct ring_slot *s = ring_slot(r, tail & (r->mark_bit - 1));
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == tail) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &tail, ring_next(r, tail),
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                ring_copy(s->data, elem, r->elem_size);
                atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
                return RING_OK;
            }
            /* Lost the slot to another producer: back off before the
             * next try, so contending cores stop trading the line. */
            ring_backoff(spins);
        } else if (stamp + r->one_lap == tail + 1) {
            /* The slot still holds last lap's value: full, unless a pop is
             * in flight (head moved but the stamp not yet). */
            uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
            if (head + r->one_lap == (tail & ~r->mark_bit))
                return RING_FULL;
            spin_wait(spins);
            tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        } else {
            spin_wait(spins);
            tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

/* Pops into *elem (elem may be NULL to discard).  RING_OK, RING_EMPTY, or
 * RING_CLOSED (closed and drained). */
static inline int ring_pop(struct ring *r, void *elem)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (int spins = 0;; spins++) {
        struct ring_slot *s = ring_slot(r, head & (r->mark_bit - 1));
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == head + 1) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &head, ring_next(r, head),
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                if (elem)
                    ring_copy(elem, s->data, r->elem_size);
                atomic_store_explicit(&s->stamp, head + r->one_lap, memory_order_release);
                return RING_OK;
            }
            ring_backoff(spins);
        } else if (stamp == head) {
            /* Nothing pushed here this lap: empty, unless a push is in
             * flight (tail moved but the stamp not yet). */
            uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
            if ((tail & ~r->mark_bit) == head)
                return (tail & r->mark_bit) ? RING_CLOSED : RING_EMPTY;
            spin_wait(spins);
            head = atomic_load_explicit(&r->head, memory_order_relaxed);
        } else {
            spin_wait(spins);
            head = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

/* Sets the mark bit; returns false if it was already set. */
static inline bool ring_close(struct ring *r)
{
    uint64_t old = atomic_fetch_or_explicit(&r->tail, r->mark_bit, memory_order_seq_cst);
    return !(old & r->mark_bit);
}

static inline size_t ring_len(const struct ring *r)
{
    for (;;) {
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_seq_cst);
        if (atomic_load_explicit(&r->tail, memory_order_seq_cst) != tail)
            continue;
        uint64_t hix = head & (r->mark_bit - 1);
        uint64_t tix = tail & (r->mark_bit - 1);
        if (hix < tix)
            return tix - hix;
        if (hix > tix)
            return r->cap - hix + tix;
        return (tail & ~r->mark_bit) == head ? 0 : r->cap;
    }
}

#endif
