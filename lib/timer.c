/*
 * timer.c - the timer heap and the timer thread (see timer.h), plus
 * csp_now, csp_deadline, csp_sleep, csp_after, csp_tick, csp_tick_stop.
 *
 * Why a thread and not the workers: a parked program must use no CPU, and
 * the workers sleep on futexes that a deadline must be able to interrupt;
 * one thread sleeping until the earliest deadline does both with no
 * polling.  (The netpoller will fold this sleep into epoll_wait.)
 */
#include "timer.h"
#include "chan.h"
#include "futex.h"
#include "lock.h"
#include "sched.h"
#include "waiter.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

static lock_t tlock = LOCK_INIT;
static struct timer *troot;                 /* heap root (tlock)           */
static _Atomic uint32_t tword;              /* bumped when the root moves  */
static pthread_t tthread;
static bool trunning;                       /* tlock                       */
static bool tstop;                          /* tlock                       */
static TLS_IE bool tls_on_timer;
static TLS_IE bool tls_in_callback;   /* timer lock already held */
_Atomic int csp_dump_requested;      /* set by the dump signal handler */
void dump_write_tasks(int fd) __attribute__((visibility("hidden")));

CSP_API int64_t csp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

CSP_API int64_t csp_deadline(int64_t ns)
{
    if (ns == CSP_FOREVER)
        return CSP_FOREVER;
    int64_t now = csp_now();
    if (ns > 0 && now > INT64_MAX - ns)
        return INT64_MAX;
    /* A negative span is a deadline in the past; never let it wrap to
     * CSP_FOREVER or CSP_NOWAIT. */
    if (ns < 0 && now + ns <= 0)
        return 1;
    return now + ns;
}

/* ---- pairing heap ---------------------------------------------------- */

static struct timer *meld(struct timer *a, struct timer *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (b->when < a->when) {
        struct timer *x = a;
        a = b;
        b = x;
    }
    b->prev = a;
    b->sibling = a->child;
    if (a->child)
        a->child->prev = b;
    a->child = b;
    return a;
}

static struct timer *merge_pairs(struct timer *h)
{
    struct timer *acc = NULL;
    while (h) {
        struct timer *a = h, *b = h->sibling;
        if (!b) {
            a->prev = NULL;
            a->sibling = acc;
            acc = a;
            break;
        }
        h = b->sibling;
        a->sibling = b->sibling = NULL;
        a->prev = b->prev = NULL;
        struct timer *m = meld(a, b);
        m->sibling = acc;
        acc = m;
    }
    struct timer *r = NULL;
    while (acc) {
        struct timer *n = acc->sibling;
        acc->sibling = NULL;
        r = meld(r, acc);
        acc = n;
    }
    return r;
}

static void heap_insert(struct timer *t)
{
    t->child = t->sibling = t->prev = NULL;
    troot = meld(troot, t);
    t->pending = 1;
}

static void heap_remove(struct timer *t)
{
    if (t == troot) {
        troot = merge_pairs(t->child);
    } else {
        if (t->prev->child == t)
            t->prev->child = t->sibling;
        else
            t->prev->sibling = t->sibling;
        if (t->sibling)
            t->sibling->prev = t->prev;
        struct timer *sub = merge_pairs(t->child);
        troot = meld(troot, sub);
    }
    if (troot)
        troot->prev = NULL;
    t->child = t->sibling = t->prev = NULL;
    t->pending = 0;
}

/* ---- arming ------------------------------------------------------------ */

void timer_start(struct timer *t)
{
    if (tls_in_callback) {
        heap_insert(t);
        return;
    }
    lock_acquire(&tlock);
    heap_insert(t);
    bool first = troot == t;
    if (first)
        atomic_fetch_add_explicit(&tword, 1, memory_order_release);
    lock_release(&tlock);
    /* Only a new earliest deadline shortens the timer thread's sleep. */
    if (first)
        futex_wake(&tword, 1);
}

bool timer_stop(struct timer *t)
{
    if (tls_in_callback) {
        bool was = t->pending;
        if (was)
            heap_remove(t);
        return was;
    }
    lock_acquire(&tlock);
    bool was = t->pending;
    if (was)
        heap_remove(t);
    lock_release(&tlock);
    return was;
}

bool timers_pending(void)
{
    lock_acquire(&tlock);
    bool p = troot != NULL;
    lock_release(&tlock);
    return p;
}

bool on_timer_thread(void) { return tls_on_timer; }

/* Async-signal-safe: wakes the timer thread (the dump signal uses it). */
void timer_kick(void) __attribute__((visibility("hidden")));
void timer_kick(void)
{
    atomic_fetch_add_explicit(&tword, 1, memory_order_release);
    futex_wake(&tword, 1);
}

int timer_thread_count(void)
{
    lock_acquire(&tlock);
    int n = trunning ? 1 : 0;
    lock_release(&tlock);
    return n;
}

static void *timer_main(void *arg)
{
    (void)arg;
    tls_on_timer = true;
    sched_lib_thread(true);
    lock_acquire(&tlock);
    while (!tstop) {
        int64_t now = csp_now();
        bool fired = false;
        while (troot && troot->when <= now) {
            struct timer *t = troot;
            heap_remove(t);
            fired = true;
            /* A ticker re-arms itself for the next multiple of its period
             * after now (ticks a slow reader missed are dropped). */
            tls_in_callback = true;
            CHAOS();
            bool again = t->fn(t);
            tls_in_callback = false;
            if (again) {
                int64_t next = t->when + t->period;
                if (next <= now)
                    next = now + t->period - (now - t->when) % t->period;
                t->when = next;
                heap_insert(t);
            }
        }
        int64_t next = troot ? troot->when : CSP_FOREVER;
        uint32_t seen = atomic_load_explicit(&tword, memory_order_acquire);
        bool empty = troot == NULL;
        lock_release(&tlock);
        if (atomic_exchange(&csp_dump_requested, 0))
            dump_write_tasks(2);
        /* Firing the last timer may leave every task parked for good. */
        if (fired && empty)
            sched_check_deadlock();
        futex_wait(&tword, seen, next);
        lock_acquire(&tlock);
    }
    lock_release(&tlock);
    sched_lib_thread(false);
    return NULL;
}

int timer_thread_ensure(void)
{
    lock_acquire(&tlock);
    int err = 0;
    if (!trunning) {
        tstop = false;
        /* Created with the timer lock held: the new thread blocks on it
         * until we are done. */
        err = pthread_create(&tthread, NULL, timer_main, NULL);
        if (err == 0)
            trunning = true;
    }
    lock_release(&tlock);
    return err;
}

void timer_thread_stop_if_idle(void)
{
    lock_acquire(&tlock);
    if (!trunning || troot) {
        lock_release(&tlock);
        return;
    }
    tstop = true;
    trunning = false;
    atomic_fetch_add_explicit(&tword, 1, memory_order_release);
    pthread_t th = tthread;
    lock_release(&tlock);
    futex_wake(&tword, 1);
    pthread_join(th, NULL);
}

/* ---- csp_sleep ---------------------------------------------------------- */

CSP_API int csp_sleep(int64_t ns)
{
    if (ns < 0)
        return EINVAL;
    if (ns == 0) {
        csp_yield();
        return 0;
    }
    int64_t deadline = csp_deadline(ns);
    struct waiter w;
    waiter_init(&w);
    /* Nobody else knows this waiter: only the deadline can claim it. */
    waiter_park(&w, deadline, WAIT_SLEEP, NULL, NULL);
    return 0;
}

/* ---- csp_after, csp_tick -------------------------------------------------- */

/* A timer that sends csp_now() on its channel.  It holds a reference to
 * the channel while armed.  A ticker whose channel nobody else references
 * stops itself (nobody can receive or stop it any more). */
struct chan_timer {
    struct timer t;
    csp_chan *c;
};

static bool after_fire(struct timer *t)
{
    struct chan_timer *ct = (struct chan_timer *)t;
    int64_t now = csp_now();
    csp_chan *c = ct->c;
    if (ct->t.period > 0 && chan_refs(c) == 1) {
        /* Orphaned ticker: stop it (the pending flag stays clear so the
         * timer thread does not re-arm it). */
        ct->t.period = 0;
    } else {
        csp_try_send(c, &now);
    }
    if (ct->t.period > 0)
        return true;
    chan_set_timer(c, NULL);
    csp_free(ct);
    csp_chan_release(c);
    return false;
}

static csp_chan *chan_timer_new(int64_t ns, int64_t period)
{
    int err = timer_thread_ensure();
    if (err) {
        errno = err;
        return NULL;
    }
    csp_chan *c = csp_chan_make(sizeof(int64_t), 1);
    if (!c)
        return NULL;
    struct chan_timer *ct = csp_calloc(1, sizeof *ct);
    if (!ct) {
        csp_chan_release(c);
        errno = ENOMEM;
        return NULL;
    }
    ct->c = csp_chan_retain(c);          /* the timer's own reference */
    ct->t.fn = after_fire;
    ct->t.period = period;
    ct->t.when = csp_deadline(ns < 0 ? 0 : ns);
    if (period > 0)
        chan_set_timer(c, ct);
    timer_start(&ct->t);
    return c;
}

CSP_API csp_chan *csp_after(int64_t ns)
{
    return chan_timer_new(ns, 0);
}

CSP_API csp_chan *csp_tick(int64_t period_ns)
{
    if (period_ns <= 0) {
        errno = EINVAL;
        return NULL;
    }
    return chan_timer_new(period_ns, period_ns);
}

CSP_API int csp_tick_stop(csp_chan *c)
{
    if (!c)
        return EINVAL;
    lock_acquire(&tlock);
    struct chan_timer *ct = chan_get_timer(c);
    if (!ct) {
        lock_release(&tlock);
        return EINVAL;
    }
    if (ct->t.pending)
        heap_remove(&ct->t);
    chan_set_timer(c, NULL);
    lock_release(&tlock);
    csp_free(ct);
    csp_chan_release(c);                 /* the timer's reference */
    return 0;
}
