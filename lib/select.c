/*
 * select.c - csp_select: wait on many channel (and descriptor) cases at
 * once and perform exactly one.
 *
 * The algorithm, in three passes (compare Go's selectgo):
 *
 *   1. Poll.  In a random order, try every case without waiting (lock-free
 *      for buffered channels).  The first that can proceed is performed.
 *   2. Lock all the channels (in address order, each once), register one
 *      entry per case, all pointing at one waiter, and then poll again
 *      under the locks (skipping our own entries).  Registering before the
 *      re-poll closes the lost-wake-up window for buffered channels, whose
 *      fast paths do not take the lock (chan.c).  Nobody can claim our
 *      waiter while we hold every lock and have armed no timer.
 *   3. Park.  The locks are released as we become wakeable.  A peer that
 *      completes one of our cases claims the waiter with one CAS
 *      (waiter.h), moves the value and wakes us; every other peer's CAS
 *      fails and it moves on.  Back awake, we lock the channels again to
 *      unlink the entries that did not fire.
 *
 * Non-blocking select must be linearizable ("nothing was ready at one
 * instant", Go's TestNonblockSelectRace).  Under the locks an unbuffered
 * channel cannot change, but a buffered one can (its fast paths are
 * lock-free); so the failing answer is given only after a second look at
 * every buffered channel's head+tail finds them unchanged (they only grow,
 * so "unchanged" means no operation happened between the two looks).
 *
 * Fairness: the poll order and the registration order are both a fresh
 * random permutation, so no ready case starves another, including two
 * cases on one channel that one arriving partner could complete.
 */
#include "chan.h"
#include "netpoll.h"
#include "sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SELECT_STACK_CASES 16

struct sel_state {
    csp_case *cases;
    size_t n;
    uint32_t *order;         /* random permutation of case indices     */
    csp_chan **locks;        /* distinct channels, sorted by address   */
    size_t nlocks;
    struct wq_entry *entries;
    struct netpoll_sel *io;  /* descriptor cases, if any               */
};

static bool is_chan_case(const csp_case *k)
{
    return (k->op == CSP_OP_RECV || k->op == CSP_OP_SEND) && k->chan;
}

static bool is_fd_case(const csp_case *k)
{
    return (k->op == CSP_OP_READABLE || k->op == CSP_OP_WRITABLE) && k->fd >= 0;
}

static void lock_all(struct sel_state *s)
{
    for (size_t i = 0; i < s->nlocks; i++)
        lock_acquire(&s->locks[i]->lock);
}

static void unlock_all(void *arg)
{
    struct sel_state *s = arg;
    for (size_t i = s->nlocks; i-- > 0;)
        lock_release(&s->locks[i]->lock);
    if (s->io)
        netpoll_sel_arm(s->io);
}

static void zero_elem(csp_case *k)
{
    if (k->op == CSP_OP_RECV && k->elem && k->chan->elem_size)
        memset(k->elem, 0, k->chan->elem_size);
}

/* Tries case i without waiting; with `locked`, its channel lock is held. */
static int try_case(struct sel_state *s, uint32_t i, bool locked, struct waiter *self)
{
    csp_case *k = &s->cases[i];
    if (is_fd_case(k))
        return netpoll_ready_now(k->fd, k->op == CSP_OP_READABLE ? CSP_IO_READ : CSP_IO_WRITE,
                                 &k->err)
                   ? CHAN_OK
                   : CHAN_BLOCK;
    if (!is_chan_case(k))
        return CHAN_BLOCK;
    int r;
    if (k->op == CSP_OP_SEND)
        r = locked ? chan_send_locked(k->chan, k->elem, self) : chan_send_nowait(k->chan, k->elem);
    else
        r = locked ? chan_recv_locked(k->chan, k->elem, self) : chan_recv_nowait(k->chan, k->elem);
    if (r == CHAN_CLOSED) {
        k->err = EPIPE;
        zero_elem(k);
        return CHAN_OK;
    }
    return r;
}

static int poll_all(struct sel_state *s, bool locked, struct waiter *self)
{
    for (size_t j = 0; j < s->n; j++) {
        uint32_t i = s->order[j];
        if (try_case(s, i, locked, self) == CHAN_OK)
            return (int)i;
    }
    return -1;
}

/* Insertion sort by address: selects are small, and qsort's indirect
 * comparisons cost more than the sort itself. */
static void sort_chans(csp_chan **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        csp_chan *x = v[i];
        size_t j = i;
        for (; j > 0 && (uintptr_t)v[j - 1] > (uintptr_t)x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

static void unregister_all(struct sel_state *s)
{
    for (size_t i = 0; i < s->n; i++) {
        csp_case *k = &s->cases[i];
        if (is_chan_case(k))
            chan_dequeue(k->chan, &s->entries[i], k->op == CSP_OP_SEND);
    }
}

static void sleep_forever_unlock(void *arg) { (void)arg; }

static int select_once(csp_case *cases, size_t n, int64_t deadline)
{
    if (!cases && n)
        return -EINVAL;
    if (n > (1u << 20))
        return -EINVAL;
    bool has_io = false;
    for (size_t i = 0; i < n; i++) {
        csp_case *k = &cases[i];
        if (k->op < CSP_OP_RECV || k->op > CSP_OP_WRITABLE)
            return -EINVAL;
        if (k->op == CSP_OP_SEND && k->chan && !k->elem && k->chan->elem_size)
            return -EINVAL;
        k->err = 0;
        if (is_fd_case(k))
            has_io = true;
    }
    bool nowait = deadline != CSP_FOREVER && (deadline == CSP_NOWAIT || deadline <= csp_now());
    int timeout_rc = deadline == CSP_NOWAIT ? -EAGAIN : -ETIMEDOUT;
    if (has_io && netpoll_enter() != 0)
        return -ENOMEM;

    if (n == 0) {
        if (nowait)
            return timeout_rc;
        struct waiter w;
        waiter_init(&w);
        waiter_park(&w, deadline, WAIT_SELECT, sleep_forever_unlock, NULL);
        return -ETIMEDOUT;
    }

    /* Scratch space: on the stack for small selects. */
    uint32_t order_buf[SELECT_STACK_CASES];
    csp_chan *locks_buf[SELECT_STACK_CASES];
    struct wq_entry entries_buf[SELECT_STACK_CASES];
    struct sel_state s = { .cases = cases, .n = n };
    void *heap = NULL;
    if (n <= SELECT_STACK_CASES) {
        s.order = order_buf;
        s.locks = locks_buf;
        s.entries = entries_buf;
    } else {
        heap = csp_malloc(n * (sizeof(uint32_t) + sizeof(csp_chan *) + sizeof(struct wq_entry)));
        if (!heap)
            return -ENOMEM;
        s.entries = heap;
        s.locks = (csp_chan **)(s.entries + n);
        s.order = (uint32_t *)(s.locks + n);
    }

    /* A fresh random permutation (Fisher-Yates, inside-out). */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = csp_rand_n(i + 1);
        s.order[i] = s.order[j];
        s.order[j] = i;
    }

    int rc = poll_all(&s, false, NULL);
    if (rc >= 0)
        goto out;

    /* Distinct channels in address order: the global lock order. */
    for (size_t i = 0; i < n; i++)
        if (is_chan_case(&cases[i]))
            s.locks[s.nlocks++] = cases[i].chan;
    sort_chans(s.locks, s.nlocks);
    size_t m = 0;
    for (size_t i = 0; i < s.nlocks; i++)
        if (m == 0 || s.locks[m - 1] != s.locks[i])
            s.locks[m++] = s.locks[i];
    s.nlocks = m;

    if (nowait) {
        /* Linearizable failure: see the top of the file. */
        uint64_t vers_buf[SELECT_STACK_CASES], *vers = vers_buf;
        if (s.nlocks > SELECT_STACK_CASES && !(vers = csp_malloc(s.nlocks * sizeof *vers))) {
            rc = -ENOMEM;
            goto out;
        }
        lock_all(&s);
        for (;;) {
            for (size_t i = 0; i < s.nlocks; i++)
                vers[i] = chan_version(s.locks[i]);
            rc = poll_all(&s, true, NULL);
            if (rc >= 0)
                break;
            bool same = true;
            for (size_t i = 0; i < s.nlocks && same; i++)
                same = vers[i] == chan_version(s.locks[i]);
            if (same) {
                rc = timeout_rc;
                break;
            }
        }
        unlock_all(&(struct sel_state){ .locks = s.locks, .nlocks = s.nlocks });
        if (vers != vers_buf)
            csp_free(vers);
        goto out;
    }

    struct waiter w;
    waiter_init(&w);
    if (has_io) {
        s.io = netpoll_sel_new(&w, cases, n);
        if (!s.io) {
            rc = -ENOMEM;
            goto out;
        }
    }
    lock_all(&s);
    for (size_t j = 0; j < n; j++) {
        uint32_t i = s.order[j];
        csp_case *k = &cases[i];
        if (!is_chan_case(k))
            continue;
        s.entries[i] = (struct wq_entry){ .w = &w, .elem = k->elem, .idx = i };
        chan_enqueue(k->chan, &s.entries[i], k->op == CSP_OP_SEND);
    }
    CHAOS();
    rc = poll_all(&s, true, &w);
    if (rc >= 0) {
        unregister_all(&s);
        struct netpoll_sel *io = s.io;
        s.io = NULL;
        unlock_all(&s);
        if (io)
            netpoll_sel_free(io);
        goto out;
    }

    uint32_t claim = waiter_park(&w, deadline, WAIT_SELECT, unlock_all, &s);
    lock_all(&s);
    unregister_all(&s);
    for (size_t i = s.nlocks; i-- > 0;)
        lock_release(&s.locks[i]->lock);
    if (s.io)
        netpoll_sel_disarm(s.io);
    if (claim == W_TIMEOUT) {
        rc = -ETIMEDOUT;
    } else {
        rc = (int)(claim - W_FIRED);
        cases[rc].err = w.err;
    }
    if (s.io)
        netpoll_sel_free(s.io);
out:
    if (heap)
        csp_free(heap);
    return rc;
}

CSP_API int csp_select(csp_case *cases, size_t n, int64_t deadline)
{
    for (;;) {
        int rc = select_once(cases, n, deadline);
        if (rc < 0)
            return rc;
        /* A descriptor case woken by a stale edge (the readiness it
         * announced was consumed before we looked) did not really fire:
         * confirm it, and wait again if it was not true. */
        csp_case *k = &cases[rc];
        if ((k->op != CSP_OP_READABLE && k->op != CSP_OP_WRITABLE) || k->err)
            return rc;
        if (netpoll_ready_now(k->fd, k->op == CSP_OP_READABLE ? CSP_IO_READ : CSP_IO_WRITE, &k->err))
            return rc;
    }
}
