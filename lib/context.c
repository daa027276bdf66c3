/*
 * context.c - cancellation contexts (Go's context package).
 *
 * A context is a node in a tree: it holds a reference on its parent, and
 * the parent lists it (under the parent's lock) until it is cancelled or
 * released.  Cancelling sets err once (under the context's own lock),
 * takes its list of children, stops its deadline timer, closes its done
 * channel (if anyone ever asked for it: the channel is made lazily), and
 * then cancels the children it took.  That walk uses an explicit work list
 * (a 1,000-deep chain must not use 1,000 stack frames of a 64 KiB task
 * stack) and holds a reference on each child while it works on it: a
 * child released concurrently cannot be freed under our feet, and a child
 * whose count already reached zero is skipped (its own release is
 * cancelling it).
 *
 * Lock order: parent before child; the timer lock before any context lock
 * (a deadline callback cancels with the timer lock held).
 *
 * Memory order: err is stored with release and read with acquire; the
 * done channel is closed after err is set, so "cancel happens before a
 * receive on done returns EPIPE and before csp_ctx_err returns non-zero".
 */
#include "chan.h"
#include "lock.h"
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct csp_ctx {
    _Atomic long refs;
    lock_t lock;                 /* err transition, done, children       */
    _Atomic int err;
    struct csp_ctx *parent;
    struct csp_ctx *children;    /* guarded by this->lock                */
    struct csp_ctx *sib_next, *sib_prev;  /* guarded by parent->lock     */
    bool listed;                 /* in parent's list (parent->lock)      */
    csp_chan *done;              /* lazily made (lock)                   */
    int64_t deadline;
    struct timer timer;
    _Atomic bool timer_armed;    /* set once, by the creator             */
    struct csp_ctx *work_next;   /* cancel work list                     */
    struct csp_ctx *close_next;  /* cancel's second pass                 */
    bool background;
};

static struct csp_ctx background = { .background = true, .deadline = CSP_FOREVER };

CSP_API csp_ctx *csp_ctx_background(void)
{
    return &background;
}

static bool is_static(const csp_ctx *c)
{
    return !c || c->background;
}

/* refs++ unless it already reached zero. */
static bool try_retain(csp_ctx *c)
{
    long r = atomic_load_explicit(&c->refs, memory_order_relaxed);
    while (r > 0)
        if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

static csp_ctx *ctx_free(csp_ctx *c);

/* Drops a reference; freeing a context drops the one it held on its
 * parent, iteratively (a 10,000-deep chain must not recurse). */
static void put(csp_ctx *c)
{
    while (!is_static(c) && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        c = ctx_free(c);
}

/* The second half of cancelling c: stop its timer, close its done. */
static void close_done(csp_ctx *c)
{
    if (atomic_load_explicit(&c->timer_armed, memory_order_relaxed))
        timer_stop(&c->timer);
    lock_acquire(&c->lock);
    csp_chan *done = c->done;
    lock_release(&c->lock);
    if (done)
        csp_close(done);    /* EPIPE if csp_ctx_done made it closed: fine */
}

/* Cancels c and its subtree with err (ECANCELED or ETIMEDOUT), in two
 * passes: first every context of the subtree gets its err (so whoever is
 * woken by a done channel sees the whole subtree cancelled), then the
 * timers stop and the done channels close.  The work-list links
 * (work_next, close_next) of the children are ours alone: a child enters a
 * walk only by being taken off its parent's list under the parent's lock,
 * which happens once.  The root never enters a list (another thread may be
 * walking from the same root). */
static void cancel_tree(csp_ctx *root, int err)
{
    csp_ctx *work = NULL, *closing = NULL;
    bool root_cancelled = false;
    csp_ctx *c = root;          /* the caller keeps root alive */
    for (; c; c = work, work = work ? work->work_next : NULL) {
        CHAOS();
        lock_acquire(&c->lock);
        if (atomic_load_explicit(&c->err, memory_order_relaxed)) {
            lock_release(&c->lock);
            if (c != root)
                put(c);
            continue;
        }
        atomic_store_explicit(&c->err, err, memory_order_release);
        /* Take the children while holding our lock: a child being
         * released needs this lock to unlink itself, so none can be freed
         * before we hold a reference on it (or skip it at count zero). */
        for (csp_ctx *k = c->children, *n; k; k = n) {
            n = k->sib_next;
            k->listed = false;
            k->sib_next = k->sib_prev = NULL;
            if (try_retain(k)) {
                k->work_next = work;
                work = k;
            }
        }
        c->children = NULL;
        lock_release(&c->lock);
        if (c == root) {
            root_cancelled = true;
        } else {
            c->close_next = closing;    /* keeps our reference until then */
            closing = c;
        }
    }
    CHAOS();
    if (root_cancelled)
        close_done(root);
    while (closing) {
        c = closing;
        closing = c->close_next;
        close_done(c);
        put(c);
    }
}

static bool deadline_fire(struct timer *t)
{
    csp_ctx *c = container_of(t, csp_ctx, timer);
    /* The context is alive: release stops this timer (waiting for us)
     * before it frees anything. */
    cancel_tree(c, ETIMEDOUT);
    return false;
}

static csp_ctx *ctx_new(csp_ctx *parent, int64_t deadline)
{
    if (!parent) {
        errno = EINVAL;
        return NULL;
    }
    if (deadline != CSP_FOREVER && timer_thread_ensure() != 0) {
        errno = EAGAIN;
        return NULL;
    }
    csp_ctx *c = csp_calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&c->refs, 1);
    /* A deadline no earlier than the parent's is the parent's: no timer of
     * our own (the parent's cancels the whole subtree at once, as Go's
     * WithDeadline does). */
    int64_t pd = parent->deadline;
    bool own_timer = deadline != CSP_FOREVER && (pd == CSP_FOREVER || deadline < pd);
    if (!own_timer)
        deadline = pd;
    c->deadline = deadline;
    c->timer.fn = deadline_fire;
    if (!is_static(parent)) {
        atomic_fetch_add_explicit(&parent->refs, 1, memory_order_relaxed);
        c->parent = parent;
        lock_acquire(&parent->lock);
        int perr = atomic_load_explicit(&parent->err, memory_order_relaxed);
        if (perr) {
            atomic_store_explicit(&c->err, perr, memory_order_release);
        } else {
            c->sib_next = parent->children;
            if (parent->children)
                parent->children->sib_prev = c;
            parent->children = c;
            c->listed = true;
        }
        lock_release(&parent->lock);
    }
    if (!atomic_load(&c->err) && own_timer) {
        if (deadline <= csp_now()) {
            cancel_tree(c, ETIMEDOUT);
        } else {
            c->timer.when = deadline;
            atomic_store_explicit(&c->timer_armed, true, memory_order_relaxed);
            timer_start(&c->timer);
        }
    }
    return c;
}

CSP_API csp_ctx *csp_ctx_with_cancel(csp_ctx *parent)
{
    return ctx_new(parent, CSP_FOREVER);
}

CSP_API csp_ctx *csp_ctx_with_deadline(csp_ctx *parent, int64_t deadline)
{
    if (deadline < 0 && deadline != CSP_FOREVER)
        deadline = 0;
    return ctx_new(parent, deadline);
}

CSP_API csp_ctx *csp_ctx_with_timeout(csp_ctx *parent, int64_t ns)
{
    return ctx_new(parent, ns == CSP_FOREVER ? CSP_FOREVER : csp_deadline(ns < 0 ? 0 : ns));
}

CSP_API void csp_ctx_cancel(csp_ctx *c)
{
    if (is_static(c))
        return;
    cancel_tree(c, ECANCELED);
}

CSP_API int csp_ctx_err(const csp_ctx *c)
{
    if (is_static(c))
        return 0;
    return atomic_load_explicit(&c->err, memory_order_acquire);
}

CSP_API int64_t csp_ctx_deadline(const csp_ctx *c)
{
    return c ? c->deadline : CSP_FOREVER;
}

CSP_API csp_chan *csp_ctx_done(csp_ctx *c)
{
    if (is_static(c))
        return NULL;
    lock_acquire(&c->lock);
    if (!c->done) {
        c->done = csp_chan_make(0, 0);
        if (c->done && atomic_load_explicit(&c->err, memory_order_relaxed))
            csp_close(c->done);
    }
    csp_chan *d = c->done;
    lock_release(&c->lock);
    return d;
}

CSP_API csp_ctx *csp_ctx_retain(csp_ctx *c)
{
    if (!is_static(c))
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

CSP_API void csp_ctx_release(csp_ctx *c)
{
    put(c);
}

/* Frees c (count zero); returns the parent whose reference it held. */
static csp_ctx *ctx_free(csp_ctx *c)
{
    /* Count is zero: nobody else can reach c except a cancel walk of the
     * parent (which skips zero-count children) or its own timer. */
    cancel_tree(c, ECANCELED);
    if (atomic_load_explicit(&c->timer_armed, memory_order_relaxed))
        timer_stop(&c->timer);
    csp_ctx *p = c->parent;
    if (p) {
        lock_acquire(&p->lock);
        if (c->listed) {
            if (c->sib_prev)
                c->sib_prev->sib_next = c->sib_next;
            else
                p->children = c->sib_next;
            if (c->sib_next)
                c->sib_next->sib_prev = c->sib_prev;
            c->listed = false;
        }
        lock_release(&p->lock);
    }
    csp_chan_release(c->done);
    csp_free(c);
    return p;
}
