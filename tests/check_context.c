/*
 * check_context.c - cancellation contexts (Go's context): background,
 * with_cancel / with_deadline / with_timeout, cancel, err, done,
 * deadline, retain / release, trees, deadlines, races, memory.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A passing Check assertion reports its location through a pipe under a
 * global lock: a system call per assertion in hot loops, and added
 * synchronisation that would hide races from ThreadSanitizer.  Passing
 * assertions do nothing here; failing ones still report and end the test. */
#define _mark_point(file, line) ((void)0)

#define MS(x) ((int64_t)(x) * 1000000)
#define SEC(x) ((int64_t)(x) * 1000000000)


/* Iterations of the race loops: fewer under a sanitizer (each is slower),
 * more with CSP_STRESS_SCALE. */
static int race_iters(int n)
{
    const char *s = getenv("CSP_STRESS_SCALE");
    long k = s ? strtol(s, NULL, 10) : 1;
    if (k < 1)
        k = 1;
    return (int)(SANITIZED ? n / 4 * k : n * k);
}

/* True when the done channel of c is closed (a receive gives EPIPE at
 * once); false when it would block. */
static bool done_closed(csp_ctx *c)
{
    csp_chan *d = csp_ctx_done(c);
    ck_assert_ptr_nonnull(d);
    int r = csp_try_recv(d, NULL);
    ck_assert(r == EPIPE || r == EAGAIN);
    return r == EPIPE;
}

/* ---- background, NULL, constructors ------------------------------------------ */

/* The background context is never cancelled: err 0, no deadline, its done
 * is NULL or never ready, and cancel/retain/release on it (and on NULL)
 * are no-ops. */
START_TEST(test_background)
{
    csp_ctx *bg = csp_ctx_background();
    ck_assert_ptr_nonnull(bg);
    ck_assert_ptr_eq(csp_ctx_background(), bg);
    ck_assert_int_eq(csp_ctx_err(bg), 0);
    ck_assert_int_eq(csp_ctx_deadline(bg), CSP_FOREVER);
    csp_chan *d = csp_ctx_done(bg);
    if (d)
        ck_assert_int_eq(csp_try_recv(d, NULL), EAGAIN);
    csp_ctx_cancel(bg);
    ck_assert_ptr_eq(csp_ctx_retain(bg), bg);
    csp_ctx_release(bg);
    csp_ctx_release(bg);
    csp_ctx_release(bg);
    ck_assert_int_eq(csp_ctx_err(bg), 0);
    if (d)
        ck_assert_int_eq(csp_try_recv(d, NULL), EAGAIN);

    /* NULL: no-ops, err 0. */
    csp_ctx_cancel(NULL);
    csp_ctx_release(NULL);
    ck_assert_ptr_null(csp_ctx_retain(NULL));
    ck_assert_int_eq(csp_ctx_err(NULL), 0);

    /* In a select, the background's done is a case that never fires. */
    csp_chan *tm = csp_after(MS(20));
    int64_t tv;
    csp_case k[2] = { CSP_RECV(csp_ctx_done(bg), NULL), CSP_RECV(tm, &tv) };
    ck_assert_int_eq(csp_select(k, 2, csp_deadline(SEC(10))), 1);
    ck_assert_int_eq(csp_select(k, 1, CSP_NOWAIT), -EAGAIN);
    csp_chan_release(tm);
}
END_TEST

/* A NULL parent gives NULL with errno EINVAL for every constructor. */
START_TEST(test_null_parent)
{
    errno = 0;
    ck_assert_ptr_null(csp_ctx_with_cancel(NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(csp_ctx_with_deadline(NULL, csp_deadline(SEC(1))));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(csp_ctx_with_timeout(NULL, SEC(1)));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- with_cancel ---------------------------------------------------------------- */

struct cancel_env {
    csp_ctx *ctx;
    int payload;            /* written before cancel, read after done */
    int seen;
    int recv_err;
    csp_waitgroup wg;
};

static void done_waiter(void *arg)
{
    struct cancel_env *e = arg;
    e->recv_err = csp_recv(csp_ctx_done(e->ctx), NULL);
    e->seen = e->payload;   /* cancel happens before this (memory model) */
    csp_wg_done(&e->wg);
}

static void with_cancel_main(void *arg)
{
    (void)arg;
    csp_ctx *c = csp_ctx_with_cancel(csp_ctx_background());
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(csp_ctx_err(c), 0);
    ck_assert_int_eq(csp_ctx_deadline(c), CSP_FOREVER);
    ck_assert(!done_closed(c));
    ck_assert_ptr_eq(csp_ctx_done(c), csp_ctx_done(c));   /* one channel */
    ck_assert_uint_eq(csp_chan_elem_size(csp_ctx_done(c)), 0);

    struct cancel_env e = { .ctx = c };
    csp_wg_add(&e.wg, 1);
    csp_go(done_waiter, &e);
    csp_sleep(MS(20));
    e.payload = 42;
    csp_ctx_cancel(c);
    ck_assert_int_eq(csp_ctx_err(c), ECANCELED);
    csp_wg_wait(&e.wg);
    ck_assert_int_eq(e.recv_err, EPIPE);
    ck_assert_int_eq(e.seen, 42);
    ck_assert(done_closed(c));
    csp_ctx_cancel(c);                  /* again: nothing changes */
    ck_assert_int_eq(csp_ctx_err(c), ECANCELED);
    ck_assert(done_closed(c));
    csp_ctx_release(c);
}

/* with_cancel: err 0 and an open done channel until cancel; then err
 * ECANCELED, done closed (a parked receiver wakes with EPIPE and sees what
 * was written before the cancel); cancelling again changes nothing. */
START_TEST(test_with_cancel)
{
    RUN_MAIN(with_cancel_main, NULL);
}
END_TEST

/* ---- deadlines ---------------------------------------------------------------- */

static void with_deadline_main(void *arg)
{
    (void)arg;
    csp_ctx *bg = csp_ctx_background();
    int64_t dl = csp_deadline(MS(50));
    csp_ctx *c = csp_ctx_with_deadline(bg, dl);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(csp_ctx_deadline(c), dl);
    ck_assert_int_eq(csp_ctx_err(c), 0);
    ck_assert_int_eq(csp_recv(csp_ctx_done(c), NULL), EPIPE);
    int64_t now = csp_now();
    ck_assert_int_ge(now, dl);                /* not before its time */
    ck_assert_int_lt(now - dl, SEC(5));
    ck_assert_int_eq(csp_ctx_err(c), ETIMEDOUT);
    csp_ctx_cancel(c);                        /* the first reason stays */
    ck_assert_int_eq(csp_ctx_err(c), ETIMEDOUT);
    csp_ctx_release(c);

    /* Cancelled before its deadline: ECANCELED, and it stays so. */
    c = csp_ctx_with_deadline(bg, csp_deadline(MS(30)));
    csp_ctx_cancel(c);
    ck_assert_int_eq(csp_ctx_err(c), ECANCELED);
    csp_sleep(MS(60));
    ck_assert_int_eq(csp_ctx_err(c), ECANCELED);
    csp_ctx_release(c);

    /* A deadline already past: born timed out. */
    int64_t past[] = { csp_now() - 1, 1, CSP_NOWAIT };
    for (size_t i = 0; i < 3; i++) {
        c = csp_ctx_with_deadline(bg, past[i]);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(csp_ctx_err(c), ETIMEDOUT);
        ck_assert(done_closed(c));
        csp_ctx_release(c);
    }
    /* CSP_FOREVER: no deadline at all. */
    c = csp_ctx_with_deadline(bg, CSP_FOREVER);
    ck_assert_int_eq(csp_ctx_deadline(c), CSP_FOREVER);
    ck_assert_int_eq(csp_ctx_err(c), 0);
    csp_ctx_release(c);

    /* with_timeout: deadline = now + ns, measured around the call. */
    int64_t t0 = csp_now();
    c = csp_ctx_with_timeout(bg, MS(40));
    int64_t t1 = csp_now();
    ck_assert_int_ge(csp_ctx_deadline(c), t0 + MS(40));
    ck_assert_int_le(csp_ctx_deadline(c), t1 + MS(40));
    ck_assert_int_eq(csp_recv(csp_ctx_done(c), NULL), EPIPE);
    ck_assert_int_ge(csp_now(), t0 + MS(40));
    ck_assert_int_eq(csp_ctx_err(c), ETIMEDOUT);
    csp_ctx_release(c);
    c = csp_ctx_with_timeout(bg, 0);
    ck_assert_int_eq(csp_ctx_err(c), ETIMEDOUT);
    csp_ctx_release(c);
}

/* with_deadline / with_timeout: deadline() reports it; done closes not
 * before it with err ETIMEDOUT; a cancel first gives ECANCELED for good;
 * a past deadline is born timed out. */
START_TEST(test_with_deadline)
{
    RUN_MAIN(with_deadline_main, NULL);
}
END_TEST

/* The same from a plain thread, without a runtime. */
START_TEST(test_with_deadline_thread)
{
    with_deadline_main(NULL);
}
END_TEST

struct dl_env {
    csp_ctx *ctx;
    int64_t woke;
    int err;
    csp_waitgroup *wg;
};

static void dl_waiter(void *arg)
{
    struct dl_env *e = arg;
    csp_case k[1] = { CSP_RECV(csp_ctx_done(e->ctx), NULL) };
    ck_assert_int_eq(csp_select(k, 1, CSP_FOREVER), 0);
    ck_assert_int_eq(k[0].err, EPIPE);
    e->woke = csp_now();
    e->err = csp_ctx_err(e->ctx);
    csp_wg_done(e->wg);
}

static void many_deadlines_main(void *arg)
{
    (void)arg;
    enum { N = 40 };
    struct dl_env e[N];
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    csp_wg_add(&wg, N);
    for (int i = 0; i < N; i++) {
        e[i] = (struct dl_env){ .ctx = csp_ctx_with_timeout(csp_ctx_background(),
                                                            MS(5) * (N - i - 1) / 2 + 1),
                                .wg = &wg };
        csp_go(dl_waiter, &e[i]);
    }
    csp_wg_wait(&wg);
    for (int i = 0; i < N; i++) {
        ck_assert_int_ge(e[i].woke, csp_ctx_deadline(e[i].ctx));
        ck_assert_int_lt(e[i].woke - csp_ctx_deadline(e[i].ctx), SEC(5));
        ck_assert_int_eq(e[i].err, ETIMEDOUT);
        csp_ctx_release(e[i].ctx);
    }
}

/* Forty deadlines from 1 ns to 100 ms: each done fires not before its
 * deadline, with ETIMEDOUT. */
START_TEST(test_deadlines_not_early)
{
    RUN_MAIN(many_deadlines_main, NULL);
}
END_TEST

static void child_deadline_main(void *arg)
{
    (void)arg;
    csp_ctx *bg = csp_ctx_background();
    int64_t pd = csp_deadline(MS(80));
    csp_ctx *p = csp_ctx_with_deadline(bg, pd);
    csp_ctx *later = csp_ctx_with_deadline(p, csp_deadline(SEC(100)));
    int64_t own = csp_deadline(MS(20));
    csp_ctx *earlier = csp_ctx_with_deadline(p, own);
    csp_ctx *plain = csp_ctx_with_cancel(p);
    csp_ctx *tmo = csp_ctx_with_timeout(p, SEC(3600));
    csp_ctx *grand = csp_ctx_with_cancel(plain);
    ck_assert_int_eq(csp_ctx_deadline(later), pd);
    ck_assert_int_eq(csp_ctx_deadline(earlier), own);
    ck_assert_int_eq(csp_ctx_deadline(plain), pd);
    ck_assert_int_eq(csp_ctx_deadline(tmo), pd);
    ck_assert_int_eq(csp_ctx_deadline(grand), pd);

    /* The earlier child times out alone; the parent's deadline then
     * reaches every other descendant, with ETIMEDOUT. */
    ck_assert_int_eq(csp_recv(csp_ctx_done(earlier), NULL), EPIPE);
    ck_assert_int_ge(csp_now(), own);
    ck_assert_int_eq(csp_ctx_err(earlier), ETIMEDOUT);
    ck_assert_int_eq(csp_ctx_err(p), 0);
    ck_assert_int_eq(csp_ctx_err(later), 0);
    ck_assert_int_eq(csp_recv(csp_ctx_done(grand), NULL), EPIPE);
    ck_assert_int_ge(csp_now(), pd);
    csp_ctx *all[] = { p, later, plain, tmo, grand };
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(csp_ctx_err(all[i]), ETIMEDOUT);
        ck_assert(done_closed(all[i]));
    }
    /* Born under a timed-out parent: timed out too. */
    csp_ctx *late = csp_ctx_with_cancel(p);
    ck_assert_int_eq(csp_ctx_err(late), ETIMEDOUT);
    csp_ctx_release(late);
    for (size_t i = 0; i < 5; i++)
        csp_ctx_release(all[i]);
    csp_ctx_release(earlier);
}

/* A child's deadline is the earlier of its own and its parent's; a
 * parent's deadline cancels every descendant with ETIMEDOUT. */
START_TEST(test_child_deadline_is_min)
{
    RUN_MAIN(child_deadline_main, NULL);
}
END_TEST

/* ---- trees --------------------------------------------------------------------- */

static void chain_main(void *arg)
{
    int depth = *(int *)arg;
    csp_ctx **c = malloc((size_t)depth * sizeof *c);
    c[0] = csp_ctx_with_cancel(csp_ctx_background());
    for (int i = 1; i < depth; i++) {
        c[i] = i == depth - 1 ? csp_ctx_with_timeout(c[i - 1], MS(50))
                              : csp_ctx_with_cancel(c[i - 1]);
        ck_assert_ptr_nonnull(c[i]);
        if (i % 3 == 0)
            csp_ctx_done(c[i]);                 /* some with a channel */
    }
    /* Cancel the middle: the upper half is untouched. */
    csp_ctx_cancel(c[depth / 2]);
    for (int i = 0; i < depth; i++)
        ck_assert_int_eq(csp_ctx_err(c[i]), i < depth / 2 ? 0 : ECANCELED);
    csp_ctx_cancel(c[0]);
    for (int i = 0; i < depth; i++) {
        ck_assert_int_eq(csp_ctx_err(c[i]), ECANCELED);
        ck_assert(done_closed(c[i]));
    }
    /* Once: the leaf's deadline passing later does not change it. */
    csp_sleep(MS(80));
    ck_assert_int_eq(csp_ctx_err(c[depth - 1]), ECANCELED);
    for (int i = depth; i-- > 0;)
        csp_ctx_release(c[i]);
    free(c);
}

/* Cancelling a parent cancels a 1,000-deep chain below it, once, with
 * ECANCELED, inside a task's stack; cancelling the middle leaves the upper
 * half alone. */
START_TEST(test_chain_1000)
{
    int depth = 1000;
    RUN_MAIN(chain_main, &depth);
}
END_TEST

/* Same, 10,000 deep. */
START_TEST(test_chain_10000)
{
    int depth = 10000;
    RUN_MAIN(chain_main, &depth);
}
END_TEST

static void chain_release_main(void *arg)
{
    int depth = *(int *)arg;
    /* Hold only the leaf: every ancestor lives through its child. */
    csp_ctx *c = csp_ctx_with_cancel(csp_ctx_background());
    csp_ctx *root = c;
    csp_chan *root_done = csp_chan_retain(csp_ctx_done(root));
    for (int i = 1; i < depth; i++) {
        csp_ctx *k = csp_ctx_with_cancel(c);
        ck_assert_ptr_nonnull(k);
        csp_ctx_release(c);
        c = k;
    }
    ck_assert_int_eq(csp_try_recv(root_done, NULL), EAGAIN);  /* root alive */
    csp_ctx_release(c);            /* frees the whole chain */
    ck_assert_int_eq(csp_try_recv(root_done, NULL), EPIPE);   /* freed: cancelled */
    csp_chan_release(root_done);
}

/* Releasing the leaf of a 1,000-deep chain whose ancestors are held only by
 * their children frees the whole chain, inside a task's stack. */
START_TEST(test_chain_release_1000)
{
    int depth = 1000;
    RUN_MAIN(chain_release_main, &depth);
}
END_TEST

/* Same, 10,000 deep. */
START_TEST(test_chain_release_10000)
{
    int depth = 10000;
    RUN_MAIN(chain_release_main, &depth);
}
END_TEST

struct fan_waiter_env {
    csp_ctx *ctx;
    _Atomic int *woken;
    csp_waitgroup *wg;
};

static void fan_waiter(void *arg)
{
    struct fan_waiter_env *e = arg;
    ck_assert_int_eq(csp_recv(csp_ctx_done(e->ctx), NULL), EPIPE);
    ck_assert_int_eq(csp_ctx_err(e->ctx), ECANCELED);
    atomic_fetch_add(e->woken, 1);
    csp_wg_done(e->wg);
}

static void fan_main(void *arg)
{
    (void)arg;
    enum { N = 10000 };
    csp_ctx *p = csp_ctx_with_cancel(csp_ctx_background());
    csp_ctx **c = malloc(N * sizeof *c);
    for (int i = 0; i < N; i++) {
        c[i] = i % 2 ? csp_ctx_with_cancel(p) : csp_ctx_with_deadline(p, csp_deadline(SEC(3600)));
        ck_assert_ptr_nonnull(c[i]);
        csp_ctx_done(c[i]);
    }
    /* Some children are released before the cancel: they must not be
     * visited after they are gone. */
    for (int i = 0; i < N; i += 10) {
        csp_ctx_release(c[i]);
        c[i] = NULL;
    }
    _Atomic int woken = 0;
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    struct fan_waiter_env we[100];
    csp_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++) {
        we[i] = (struct fan_waiter_env){ c[i * 100 + 1], &woken, &wg };   /* kept */
        csp_go(fan_waiter, &we[i]);
    }
    csp_sleep(MS(20));
    ck_assert_int_eq(atomic_load(&woken), 0);
    csp_ctx_cancel(p);
    for (int i = 0; i < N; i++) {
        if (!c[i])
            continue;
        ck_assert_int_eq(csp_ctx_err(c[i]), ECANCELED);
        ck_assert(done_closed(c[i]));
    }
    csp_wg_wait(&wg);
    ck_assert_int_eq(atomic_load(&woken), 100);
    csp_ctx_release(p);                 /* before the children: allowed */
    for (int i = 0; i < N; i++)
        csp_ctx_release(c[i]);
    free(c);
}

/* Cancelling a parent cancels a 10,000-wide fan of children (with
 * deadlines or without, some released before), wakes their waiters. */
START_TEST(test_fan_10000)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(fan_main, NULL);
}
END_TEST

/* A child created under a cancelled parent is born cancelled, whatever its
 * kind, and its done channel is closed. */
START_TEST(test_born_cancelled)
{
    csp_ctx *p = csp_ctx_with_cancel(csp_ctx_background());
    csp_ctx_cancel(p);
    csp_ctx *k[3] = { csp_ctx_with_cancel(p), csp_ctx_with_deadline(p, csp_deadline(SEC(100))),
                      csp_ctx_with_timeout(p, SEC(100)) };
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(k[i]);
        ck_assert_int_eq(csp_ctx_err(k[i]), ECANCELED);
        ck_assert(done_closed(k[i]));
        csp_ctx *g = csp_ctx_with_cancel(k[i]);
        ck_assert_int_eq(csp_ctx_err(g), ECANCELED);
        csp_ctx_release(g);
        csp_ctx_release(k[i]);
    }
    csp_ctx_release(p);
}
END_TEST

/* ---- retain, release ----------------------------------------------------------- */

/* retain adds a reference (the context outlives one release); releasing
 * the last reference cancels the context (a retained done channel closes)
 * and detaches it: its parent goes on, and a parent released first lives
 * on through its child. */
START_TEST(test_retain_release)
{
    csp_ctx *bg = csp_ctx_background();
    csp_ctx *c = csp_ctx_with_cancel(bg);
    ck_assert_ptr_eq(csp_ctx_retain(c), c);
    csp_ctx_release(c);
    ck_assert_int_eq(csp_ctx_err(c), 0);      /* still alive, still ours */
    csp_chan *d = csp_chan_retain(csp_ctx_done(c));
    ck_assert_int_eq(csp_try_recv(d, NULL), EAGAIN);
    csp_ctx_release(c);                       /* last: cancelled, freed */
    ck_assert_int_eq(csp_try_recv(d, NULL), EPIPE);
    csp_chan_release(d);

    /* A released child detaches; cancelling its parent later is fine. */
    csp_ctx *p = csp_ctx_with_cancel(bg);
    csp_ctx *k = csp_ctx_with_deadline(p, csp_deadline(SEC(100)));
    d = csp_chan_retain(csp_ctx_done(k));
    csp_ctx_release(k);
    ck_assert_int_eq(csp_try_recv(d, NULL), EPIPE);
    ck_assert_int_eq(csp_ctx_err(p), 0);
    csp_ctx_cancel(p);
    ck_assert_int_eq(csp_ctx_err(p), ECANCELED);
    csp_ctx_release(p);
    csp_chan_release(d);

    /* The parent released first lives through its child; not cancelled. */
    p = csp_ctx_with_timeout(bg, SEC(100));
    int64_t pd = csp_ctx_deadline(p);
    k = csp_ctx_with_cancel(p);
    csp_ctx_release(p);
    ck_assert_int_eq(csp_ctx_err(k), 0);
    ck_assert_int_eq(csp_ctx_deadline(k), pd);
    csp_ctx *g = csp_ctx_with_cancel(k);
    csp_ctx_cancel(k);
    ck_assert_int_eq(csp_ctx_err(g), ECANCELED);
    csp_ctx_release(g);
    csp_ctx_release(k);
}
END_TEST

/* Reachable (not leaked) after the deadlock report abandons the task; the
 * channels stay allocated (an abandoned task is still queued on them). */
static csp_ctx *stuck_ctx;
static csp_chan *stuck_chan[2];

static void stuck_main(void *arg)
{
    int mode = *(int *)arg;
    csp_ctx *c = csp_ctx_with_timeout(csp_ctx_background(), SEC(3600));
    if (mode == 0) {
        csp_ctx_cancel(c);
        stuck_ctx = c;
    } else {
        csp_ctx_release(c);
    }
    stuck_chan[mode] = csp_chan_make(0, 0);
    csp_recv(stuck_chan[mode], NULL);   /* nothing can wake us */
}

static void timeout_wait_main(void *arg)
{
    (void)arg;
    csp_ctx *c = csp_ctx_with_timeout(csp_ctx_background(), MS(100));
    ck_assert_int_eq(csp_recv(csp_ctx_done(c), NULL), EPIPE);
    csp_ctx_release(c);
}

/* Cancelling or releasing a context stops its deadline timer: with every
 * task stuck, csp_run reports the deadlock at once instead of waiting an
 * hour; a pending deadline is not a deadlock. */
START_TEST(test_cancel_stops_timer)
{
    for (int mode = 0; mode < 2; mode++) {
        int64_t t0 = csp_now();
        ck_assert_int_eq(csp_run(stuck_main, &mode), EDEADLK);
        ck_assert_int_lt(csp_now() - t0, SEC(20));
        csp_ctx_release(stuck_ctx);
        stuck_ctx = NULL;
    }
    RUN_MAIN(timeout_wait_main, NULL);
}
END_TEST

/* ---- done in select ------------------------------------------------------------- */

struct sel_env {
    csp_ctx *ctx;
};

static void late_cancel(void *arg)
{
    struct sel_env *e = arg;
    csp_sleep(MS(30));
    csp_ctx_cancel(e->ctx);
}

static void done_select_main(void *arg)
{
    (void)arg;
    csp_ctx *c = csp_ctx_with_cancel(csp_ctx_background());
    csp_chan *never = csp_chan_make(sizeof(int), 0);
    csp_chan *tm = csp_after(SEC(10));
    int v = 5;
    int64_t tv;
    csp_case k[3] = { CSP_RECV(never, &v), CSP_RECV(csp_ctx_done(c), NULL), CSP_RECV(tm, &tv) };
    ck_assert_int_eq(csp_select(k, 3, CSP_NOWAIT), -EAGAIN);
    struct sel_env e = { c };
    csp_go(late_cancel, &e);
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 1);
    ck_assert_int_eq(k[1].err, EPIPE);
    ck_assert_int_eq(v, 5);                 /* no other case took effect */
    ck_assert_int_eq(csp_ctx_err(c), ECANCELED);
    /* Closed: fires at once, every time. */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(csp_select(k, 3, CSP_NOWAIT), 1);
        ck_assert_int_eq(k[1].err, EPIPE);
    }
    csp_chan_release(tm);
    csp_chan_release(never);
    csp_ctx_release(c);
}

/* A context's done channel in a select fires (err EPIPE) when the context
 * is cancelled, and only then. */
START_TEST(test_done_in_select)
{
    RUN_MAIN(done_select_main, NULL);
}
END_TEST

struct mass_env {
    csp_ctx *ctx;
    csp_chan *never;
    _Atomic int started, released, wrong;
    csp_waitgroup wg;
};

static void mass_waiter(void *arg)
{
    struct mass_env *e = arg;
    int v;
    csp_case k[2] = { CSP_RECV(e->never, &v), CSP_RECV(csp_ctx_done(e->ctx), NULL) };
    atomic_fetch_add(&e->started, 1);
    int r = csp_select(k, 2, CSP_FOREVER);
    if (r == 1 && k[1].err == EPIPE)
        atomic_fetch_add(&e->released, 1);
    else
        atomic_fetch_add(&e->wrong, 1);
    csp_wg_done(&e->wg);
}

static void mass_main(void *arg)
{
    int n = *(int *)arg;
    struct mass_env *e = calloc(1, sizeof *e);
    e->ctx = csp_ctx_with_cancel(csp_ctx_background());
    e->never = csp_chan_make(sizeof(int), 0);
    csp_wg_add(&e->wg, n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(csp_go(mass_waiter, e), 0);
    while (atomic_load(&e->started) < n)
        csp_sleep(MS(5));
    csp_sleep(MS(50));
    ck_assert_int_eq(atomic_load(&e->released), 0);
    csp_ctx_cancel(e->ctx);
    ck_assert_int_eq(csp_wg_wait(&e->wg), 0);
    ck_assert_int_eq(atomic_load(&e->released), n);
    ck_assert_int_eq(atomic_load(&e->wrong), 0);
    csp_chan_release(e->never);
    csp_ctx_release(e->ctx);
    free(e);
}

/* 100,000 tasks parked in selects on one context's done channel are all
 * released by one cancel. */
START_TEST(test_100k_selects_one_cancel)
{
    int n = 100000;
#if defined(__SANITIZE_THREAD__)
    n = 10000;      /* TSan's per-fiber shadow runs out of address space */
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    n = 10000;
#endif
#endif
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2, .stack_size = 32 * 1024 }), 0);
    RUN_MAIN(mass_main, &n);
}
END_TEST

/* ---- races ---------------------------------------------------------------------- */

/* Two parties act at once, many times: this thread runs a(), a helper
 * thread runs b(), both released by one store; then check(). */
struct duo {
    _Atomic int go, done;
    int iters;
    void (*b)(void *);
    void *arg;
};

static void spin_until(_Atomic int *w, int v)
{
    /* Spin hard (both parties must be on a CPU when `go` flips); yield
     * only when the other one is clearly descheduled. */
    for (int k = 0; atomic_load_explicit(w, memory_order_acquire) < v; k++)
        if (k % 100000 == 99999)
            sched_yield();
}

static void *duo_thread(void *p)
{
    struct duo *d = p;
    for (int i = 1; i <= d->iters; i++) {
        spin_until(&d->go, i);
        d->b(d->arg);
        atomic_store_explicit(&d->done, i, memory_order_release);
    }
    return NULL;
}

static void duo_run(int iters, void (*setup)(void *), void (*a)(void *), void (*b)(void *),
                    void (*check)(void *), void *arg)
{
    struct duo d = { .iters = iters, .b = b, .arg = arg };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, duo_thread, &d), 0);
    for (int i = 1; i <= iters; i++) {
        setup(arg);
        atomic_store_explicit(&d.go, i, memory_order_release);
        a(arg);
        spin_until(&d.done, i);
        check(arg);
    }
    pthread_join(th, NULL);
}

struct race_env {
    csp_ctx *p, *c[4];
    csp_chan *d;
    unsigned iter;
};

/* cancel vs cancel on one context */
static void rc_setup_same(void *arg)
{
    struct race_env *e = arg;
    e->p = csp_ctx_with_cancel(csp_ctx_background());
    e->c[0] = csp_ctx_with_cancel(e->p);
    if (e->iter++ % 2)
        csp_ctx_done(e->p);
}
static void rc_cancel_p(void *arg) { csp_ctx_cancel(((struct race_env *)arg)->p); }
static void rc_check_same(void *arg)
{
    struct race_env *e = arg;
    ck_assert_int_eq(csp_ctx_err(e->p), ECANCELED);
    ck_assert_int_eq(csp_ctx_err(e->c[0]), ECANCELED);
    ck_assert(done_closed(e->p));
    ck_assert(done_closed(e->c[0]));
    csp_ctx_release(e->c[0]);
    csp_ctx_release(e->p);
}

/* cancel of a parent vs cancel of its children */
static void rc_setup_tree(void *arg)
{
    struct race_env *e = arg;
    e->p = csp_ctx_with_cancel(csp_ctx_background());
    for (int i = 0; i < 4; i++) {
        e->c[i] = csp_ctx_with_cancel(e->p);
        if (e->iter % 4)
            csp_ctx_done(e->c[i]);      /* closing them widens the window */
    }
    e->iter++;
}
static void rc_cancel_children(void *arg)
{
    struct race_env *e = arg;
    csp_ctx_cancel(e->c[0]);
    csp_ctx_cancel(e->c[2]);
}
static void rc_check_tree(void *arg)
{
    struct race_env *e = arg;
    ck_assert_int_eq(csp_ctx_err(e->p), ECANCELED);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(csp_ctx_err(e->c[i]) == ECANCELED, "child %d missed (iteration %u)", i,
                      e->iter);
        ck_assert(done_closed(e->c[i]));
    }
    for (int i = 0; i < 4; i++)
        csp_ctx_release(e->c[i]);
    csp_ctx_release(e->p);
}

/* cancel vs creation of a child */
static void rc_setup_p(void *arg)
{
    struct race_env *e = arg;
    e->p = csp_ctx_with_cancel(csp_ctx_background());
    e->c[0] = NULL;
    e->iter++;
}
static void rc_create_child(void *arg)
{
    struct race_env *e = arg;
    e->c[0] = e->iter % 2 ? csp_ctx_with_cancel(e->p)
                          : csp_ctx_with_deadline(e->p, csp_deadline(SEC(3600)));
    if (e->iter % 3 == 0)
        csp_ctx_done(e->c[0]);
}
static void rc_check_child(void *arg)
{
    struct race_env *e = arg;
    ck_assert_ptr_nonnull(e->c[0]);
    ck_assert_int_eq(csp_ctx_err(e->c[0]), ECANCELED);   /* never missed */
    ck_assert(done_closed(e->c[0]));
    csp_ctx_release(e->c[0]);
    csp_ctx_release(e->p);
}

/* release (from the other thread) vs cancel */
static void rc_setup_shared(void *arg)
{
    struct race_env *e = arg;
    e->p = csp_ctx_with_cancel(csp_ctx_background());
    e->c[0] = csp_ctx_with_cancel(e->p);
    e->c[1] = csp_ctx_with_deadline(e->p, csp_deadline(SEC(3600)));
    csp_ctx_done(e->c[0]);
    csp_ctx_retain(e->p);               /* the other thread's reference */
    e->d = csp_chan_retain(csp_ctx_done(e->c[1]));
    e->iter++;
}
static void rc_release_all_but_p(void *arg)
{
    struct race_env *e = arg;
    csp_ctx_release(e->c[0]);
    csp_ctx_release(e->c[1]);
    csp_ctx_release(e->p);              /* its own reference */
}
static void rc_check_shared(void *arg)
{
    struct race_env *e = arg;
    ck_assert_int_eq(csp_ctx_err(e->p), ECANCELED);
    ck_assert_int_eq(csp_try_recv(e->d, NULL), EPIPE);
    csp_chan_release(e->d);
    csp_ctx_release(e->p);
}

/* a deadline firing while the context is released */
static void rc_setup_deadline(void *arg)
{
    struct race_env *e = arg;
    e->iter++;
    e->p = csp_ctx_with_timeout(csp_ctx_background(), (int64_t)(e->iter % 50) * 1000);
    e->c[0] = csp_ctx_with_cancel(e->p);
    if (e->iter % 2)
        csp_ctx_done(e->c[0]);
}
static void rc_spin_release_p(void *arg)
{
    struct race_env *e = arg;
    for (volatile unsigned k = (e->iter * 37) % 2000; k > 0; k--)
        ;
    csp_ctx_release(e->p);
}
static void rc_release_child(void *arg)
{
    struct race_env *e = arg;
    csp_ctx_release(e->c[0]);
}
static void rc_check_nothing(void *arg) { (void)arg; }

/* cancel vs the lazy creation of done */
static void rc_setup_lazy(void *arg)
{
    struct race_env *e = arg;
    e->p = csp_ctx_with_cancel(csp_ctx_background());
    e->d = NULL;
}
static void rc_get_done(void *arg)
{
    struct race_env *e = arg;
    e->d = csp_ctx_done(e->p);
}
static void rc_check_lazy(void *arg)
{
    struct race_env *e = arg;
    ck_assert_ptr_eq(e->d, csp_ctx_done(e->p));
    ck_assert_int_eq(csp_recv_until(e->d, NULL, csp_deadline(SEC(5))), EPIPE);
    csp_ctx_release(e->p);
}

/* Cancel racing cancel of the same context from two threads, looped: the
 * context and its child end cancelled, done closed, nothing freed twice. */
START_TEST(test_race_cancel_cancel)
{
    struct race_env e = { 0 };
    duo_run(race_iters(20000), rc_setup_same, rc_cancel_p, rc_cancel_p, rc_check_same, &e);
}
END_TEST

/* A parent cancelled on one thread while some of its children are
 * cancelled on another: every child ends cancelled, references balance. */
START_TEST(test_race_cancel_parent_and_children)
{
    struct race_env e = { 0 };
    duo_run(race_iters(50000), rc_setup_tree, rc_cancel_p, rc_cancel_children, rc_check_tree, &e);
}
END_TEST

/* Cancel racing the creation of a child: the child is born cancelled or
 * gets cancelled, never missed. */
START_TEST(test_race_cancel_vs_child_creation)
{
    struct race_env e = { 0 };
    duo_run(race_iters(20000), rc_setup_p, rc_cancel_p, rc_create_child, rc_check_child, &e);
}
END_TEST

/* Releases on one thread racing a cancel on another. */
START_TEST(test_race_release_vs_cancel)
{
    struct race_env e = { 0 };
    duo_run(race_iters(20000), rc_setup_shared, rc_cancel_p, rc_release_all_but_p,
            rc_check_shared, &e);
}
END_TEST

/* A deadline firing (0-49 us) while the context and its child are being
 * released on two threads: no crash, no use after free. */
START_TEST(test_race_deadline_vs_release)
{
    struct race_env e = { 0 };
    duo_run(race_iters(20000), rc_setup_deadline, rc_spin_release_p, rc_release_child,
            rc_check_nothing, &e);
}
END_TEST

/* Cancel racing the first csp_ctx_done: the channel comes out closed. */
START_TEST(test_race_cancel_vs_done)
{
    struct race_env e = { 0 };
    duo_run(race_iters(20000), rc_setup_lazy, rc_cancel_p, rc_get_done, rc_check_lazy, &e);
}
END_TEST

/* ---- memory ---------------------------------------------------------------------- */

static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void churn(csp_ctx *p, int from, int to)
{
    for (int i = from; i < to; i++) {
        csp_ctx *c = i % 3 == 0 ? csp_ctx_with_timeout(p, SEC(3600)) : csp_ctx_with_cancel(p);
        ck_assert_ptr_nonnull(c);
        if (i % 2 == 0)
            csp_ctx_done(c);
        if (i % 5 == 0)
            csp_ctx_cancel(c);
        if (i % 7 == 0) {
            csp_ctx *g = csp_ctx_with_cancel(c);
            csp_ctx_release(c);         /* parent first: lives via g */
            c = g;
        }
        csp_ctx_release(c);
    }
}

static void memory_main(void *arg)
{
    (void)arg;
    csp_ctx *p = csp_ctx_with_cancel(csp_ctx_background());
    churn(p, 0, 100000);                /* warm up the allocator */
    long before = vm_rss_kb();
    churn(p, 100000, 1000000);
    long after = vm_rss_kb();
    ck_assert_int_eq(csp_ctx_err(p), 0);
    csp_ctx_release(p);
    if (before < 0 || after < 0)
        return;                         /* no /proc: nothing to measure */
    fprintf(stderr, "contexts: VmRSS %ld kB -> %ld kB over 900,000 contexts\n", before, after);
#if !SANITIZED
    /* A leak of even 64 bytes per context would be 57 MB. */
    ck_assert_msg(after - before < 16 * 1024, "VmRSS grew by %ld kB", after - before);
#endif
}

/* Memory stays flat while 1,000,000 contexts (with deadlines, done
 * channels, cancels, grandchildren) are created and released. */
START_TEST(test_memory_flat)
{
    RUN_MAIN(memory_main, NULL);
}
END_TEST

static Suite *context_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_background);
    tcase_add_test(tc, test_null_parent);
    tcase_add_test(tc, test_with_cancel);
    tcase_add_test(tc, test_with_deadline);
    tcase_add_test(tc, test_with_deadline_thread);
    tcase_add_test(tc, test_deadlines_not_early);
    tcase_add_test(tc, test_child_deadline_is_min);
    tcase_add_test(tc, test_born_cancelled);
    tcase_add_test(tc, test_retain_release);
    tcase_add_test(tc, test_cancel_stops_timer);
    tcase_add_test(tc, test_done_in_select);
    suite_add_tcase(s, tc);

    TCase *tt = tcase_create("trees");
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, test_chain_1000);
    tcase_add_test(tt, test_chain_10000);
    tcase_add_test(tt, test_chain_release_1000);
    tcase_add_test(tt, test_chain_release_10000);
    tcase_add_test(tt, test_fan_10000);
    tcase_add_test(tt, test_100k_selects_one_cancel);
    tcase_add_test(tt, test_memory_flat);
    suite_add_tcase(s, tt);

    TCase *tr = tcase_create("races");
    tcase_set_timeout(tr, 180);
    tcase_add_test(tr, test_race_cancel_cancel);
    tcase_add_test(tr, test_race_cancel_parent_and_children);
    tcase_add_test(tr, test_race_cancel_vs_child_creation);
    tcase_add_test(tr, test_race_release_vs_cancel);
    tcase_add_test(tr, test_race_deadline_vs_release);
    tcase_add_test(tr, test_race_cancel_vs_done);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    return run_suite(context_suite());
}
