/*
 * check_timer.c - time and timers: csp_now, csp_deadline, csp_sleep,
 * csp_after, csp_tick, csp_tick_stop, and deadlines of the _until calls
 * and of csp_select.
 *
 * Timing assertions are lower bounds only ("never early"), plus upper
 * bounds so loose (seconds) that only a lost timer trips them.  Loop tests
 * run their body as the main task (_i == 0) or on a plain thread (_i == 1).
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* A passing Check assertion reports its location through a pipe under a
 * global lock (a system call and a lock each time).  In hot loops and in
 * concurrent code that would slow the test down and add synchronisation
 * that hides races from ThreadSanitizer, so passing assertions do nothing
 * here; failing ones still report and end the test. */
#define _mark_point(file, line) ((void)0)

#define MS(x) ((int64_t)(x) * 1000000)
#define US(x) ((int64_t)(x) * 1000)
#define LOOSE MS(20000)    /* an upper bound only a lost wake-up exceeds */

/* ---- helpers ------------------------------------------------------------ */


static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* ---- csp_now, csp_deadline ------------------------------------------------- */

static void now_reader(void *p)
{
    (void)p;
    int64_t prev = csp_now();
    ck_assert_int_gt(prev, 0);
    for (int i = 0; i < 200000; i++) {
        int64_t t = csp_now();
        ck_assert_int_ge(t, prev);
        prev = t;
        if (i % 1000 == 0)
            csp_yield();      /* tasks may move between workers */
    }
}

/* csp_now is positive and never goes backwards, in threads and in tasks
 * that migrate between workers. */
START_TEST(test_now_monotonic)
{
    struct group g = { 0 };
    for (int i = 0; i < 4; i++)
        group_go(&g, i & 1, now_reader, NULL);
    now_reader(NULL);
    group_wait(&g);
    /* It advances. */
    int64_t t0 = csp_now();
    ck_assert_int_eq(csp_sleep(MS(2)), 0);
    ck_assert_int_ge(csp_now() - t0, MS(2));
    ck_assert_int_eq(csp_stop(), 0);
}
END_TEST

/* csp_deadline adds to csp_now, saturates at INT64_MAX and keeps
 * CSP_FOREVER. */
START_TEST(test_deadline)
{
    ck_assert_int_eq(csp_deadline(CSP_FOREVER), CSP_FOREVER);
    ck_assert_int_eq(csp_deadline(INT64_MAX), INT64_MAX);
    ck_assert_int_eq(csp_deadline(INT64_MAX - 1), INT64_MAX);
    ck_assert_int_eq(csp_deadline(INT64_MAX - csp_now() + 5), INT64_MAX);
    for (int64_t ns = 0; ns <= MS(1000); ns = ns * 10 + 1) {
        int64_t before = csp_now();
        int64_t d = csp_deadline(ns);
        int64_t after = csp_now();
        ck_assert_int_ge(d, before + ns);
        ck_assert_int_le(d, after + ns);
    }
    /* Negative offsets give past deadlines: never CSP_FOREVER (unless the
     * offset is -1, which is CSP_FOREVER itself) and never CSP_NOWAIT, so
     * a call that cannot complete fails with ETIMEDOUT, not EAGAIN. */
    csp_chan *c = csp_chan_make(sizeof(int), 0);
    int v;
    int64_t now = csp_now();
    const int64_t neg[] = { -MS(5), -2, INT64_MIN, INT64_MIN + 1, -now, -now - 1, -now - 2 };
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++) {
        int64_t d = csp_deadline(neg[i]);
        ck_assert_int_ne(d, CSP_FOREVER);
        ck_assert_int_ne(d, CSP_NOWAIT);
        ck_assert_int_le(d, csp_now());
        ck_assert_int_eq(csp_recv_until(c, &v, d), ETIMEDOUT);
    }
    csp_chan_release(c);
}
END_TEST

/* ---- csp_sleep ------------------------------------------------------------------ */

/* csp_sleep waits at least the time asked, from tasks and threads; 0 is a
 * yield; a negative time is EINVAL. */
static void sleep_body(void *arg)
{
    (void)arg;
    const int64_t d[] = { 1, 1000, US(100), MS(1), MS(10), MS(30) };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        int64_t t0 = csp_now();
        ck_assert_int_eq(csp_sleep(d[i]), 0);
        int64_t el = csp_now() - t0;
        ck_assert_int_ge(el, d[i]);
        ck_assert_int_lt(el, d[i] + LOOSE);
    }
    ck_assert_int_eq(csp_sleep(0), 0);
    ck_assert_int_eq(csp_sleep(-1), EINVAL);
    ck_assert_int_eq(csp_sleep(INT64_MIN), EINVAL);
}

START_TEST(test_sleep)
{
    run_mode(sleep_body, _i);
}
END_TEST

struct sleeper {
    int64_t ns;
};

static void random_sleeper(void *p)
{
    struct sleeper *s = p;
    int64_t t0 = csp_now();
    ck_assert_int_eq(csp_sleep(s->ns), 0);
    ck_assert_int_ge(csp_now() - t0, s->ns);
}

/* Many tasks sleeping different times at once each wake no earlier than
 * asked (one timer facility serving them all). */
static void many_sleepers_main(void *arg)
{
    (void)arg;
    enum { N = 300 };
    static struct sleeper s[N];
    uint32_t seed = 7;
    struct group g = { 0 };
    for (int i = 0; i < N; i++) {
        s[i].ns = (int64_t)(rnd(&seed) % 20000) * 1000;
        group_go(&g, 0, random_sleeper, &s[i]);
    }
    group_wait(&g);
}

START_TEST(test_many_sleepers)
{
    RUN_MAIN(many_sleepers_main, NULL);
}
END_TEST

/* ---- parking with one worker ------------------------------------------------- */

struct park_probe {
    atomic_int stop;
    atomic_long spins;
    int kind;
};

static void spinner(void *p)
{
    struct park_probe *pp = p;
    while (!atomic_load(&pp->stop)) {
        atomic_fetch_add(&pp->spins, 1);
        csp_yield();
    }
}

static void blocker(void *p)
{
    struct park_probe *pp = p;
    ck_assert_int_eq(csp_go(spinner, pp), 0);
    long before = atomic_load(&pp->spins);
    int64_t t0 = csp_now();
    csp_chan *c = csp_chan_make(sizeof(int64_t), 0);
    int64_t v;
    switch (pp->kind) {
    case 0:
        ck_assert_int_eq(csp_sleep(MS(50)), 0);
        break;
    case 1:
        ck_assert_int_eq(csp_recv_until(c, &v, csp_deadline(MS(50))), ETIMEDOUT);
        break;
    case 2: {
        csp_case cs[] = { CSP_RECV(c, &v) };
        ck_assert_int_eq(csp_select(cs, 1, csp_deadline(MS(50))), -ETIMEDOUT);
        break;
    }
    case 3: {
        csp_chan *a = csp_after(MS(50));
        ck_assert_int_eq(csp_recv(a, &v), 0);
        csp_chan_release(a);
        break;
    }
    default: {
        csp_chan *t = csp_tick(MS(25));
        ck_assert_int_eq(csp_recv(t, &v), 0);
        ck_assert_int_eq(csp_recv(t, &v), 0);
        ck_assert_int_eq(csp_tick_stop(t), 0);
        csp_chan_release(t);
        break;
    }
    }
    ck_assert_int_ge(csp_now() - t0, MS(50));
    long after = atomic_load(&pp->spins);
    atomic_store(&pp->stop, 1);
    csp_chan_release(c);
    /* With one worker, the spinner ran only if we parked. */
    ck_assert_msg(after > before, "kind %d: the other task did not run while we waited",
                  pp->kind);
}

/* With a single worker, a task waiting in csp_sleep, recv_until, a select
 * deadline, on csp_after or on csp_tick parks: another task on the same
 * worker runs meanwhile. */
START_TEST(test_timers_park_tasks)
{
    csp_config cfg = { .workers = 1 };
    ck_assert_int_eq(csp_start(&cfg), 0);
    struct park_probe pp = { .kind = _i };
    RUN_MAIN(blocker, &pp);
}
END_TEST

/* ---- csp_after -------------------------------------------------------------- */

/* csp_after delivers csp_now() once, not before its time: the value and the
 * receive are both at least ns after the call; nothing follows. */
static void after_body(void *arg)
{
    (void)arg;
    const int64_t d[] = { 0, US(50), MS(1), MS(20) };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        int64_t t0 = csp_now();
        csp_chan *c = csp_after(d[i]);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(csp_chan_elem_size(c), sizeof(int64_t));
        int64_t v = -1;
        ck_assert_int_eq(csp_recv(c, &v), 0);
        int64_t t1 = csp_now();
        ck_assert_int_ge(v, t0 + d[i]);
        ck_assert_int_le(v, t1);
        ck_assert_int_lt(t1 - t0, d[i] + LOOSE);
        ck_assert_int_eq(csp_recv_until(c, &v, csp_deadline(MS(30))), ETIMEDOUT);
        csp_chan_release(c);
    }
    /* Go's timeout idiom: a select on a silent channel and csp_after. */
    csp_chan *never = csp_chan_make(sizeof(int), 0);
    int64_t t0 = csp_now();
    csp_chan *to = csp_after(MS(15));
    int x;
    int64_t when;
    csp_case cs[] = { CSP_RECV(never, &x), CSP_RECV(to, &when) };
    ck_assert_int_eq(csp_select(cs, 2, CSP_FOREVER), 1);
    ck_assert_int_ge(csp_now() - t0, MS(15));
    ck_assert_int_ge(when - t0, MS(15));
    csp_chan_release(to);
    csp_chan_release(never);
}

START_TEST(test_after)
{
    run_mode(after_body, _i);
}
END_TEST

/* Many csp_after timers at once each fire once, no earlier than asked;
 * timers whose channel was released before they fired are harmless. */
static void many_after_body(void *arg)
{
    (void)arg;
    enum { N = 200 };
    csp_chan *c[N];
    int64_t due[N];
    uint32_t seed = 99;
    for (int i = 0; i < N; i++) {
        int64_t ns = (int64_t)(rnd(&seed) % 30000) * 1000;
        due[i] = csp_deadline(ns);
        c[i] = csp_after(ns);
        ck_assert_ptr_nonnull(c[i]);
        csp_chan_release(csp_after(ns));     /* nobody listens */
    }
    for (int i = 0; i < N; i++) {
        int64_t v;
        ck_assert_int_eq(csp_recv(c[i], &v), 0);
        ck_assert_int_ge(v, due[i]);
        ck_assert_int_ge(csp_now(), due[i]);
    }
    csp_sleep(MS(5));
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(csp_try_recv(c[i], &(int64_t){ 0 }), EAGAIN);
        csp_chan_release(c[i]);
    }
}

START_TEST(test_many_after)
{
    run_mode(many_after_body, _i);
}
END_TEST

/* ---- csp_tick ------------------------------------------------------------------ */

/* A ticker is a capacity-1 channel of int64_t whose k-th tick is no
 * earlier than k periods after csp_tick; received values increase. */
static void tick_body(void *arg)
{
    (void)arg;
    const int64_t period = MS(4);
    int64_t t0 = csp_now();
    csp_chan *t = csp_tick(period);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(csp_chan_cap(t), 1);
    ck_assert_uint_eq(csp_chan_elem_size(t), sizeof(int64_t));
    int64_t prev = 0;
    for (int k = 1; k <= 12; k++) {
        int64_t v;
        ck_assert_int_eq(csp_recv(t, &v), 0);
        ck_assert_int_ge(v, t0 + k * period);
        ck_assert_int_gt(v, prev);
        ck_assert_int_le(v, csp_now());
        prev = v;
        ck_assert_uint_le(csp_chan_len(t), 1);
    }
    ck_assert_int_eq(csp_tick_stop(t), 0);
    csp_chan_release(t);
}

START_TEST(test_tick)
{
    run_mode(tick_body, _i);
}
END_TEST

/* A slow reader loses ticks instead of queueing them: after sleeping 20
 * periods it finds at most one stale tick, and the tick after it was made
 * after the reader came back (a queue would hold ticks from the start of
 * the sleep; the margin of 5 periods only absorbs a preempted timer). */
static void tick_drop_body(void *arg)
{
    (void)arg;
    const int64_t period = MS(4);
    csp_chan *t = csp_tick(period);
    ck_assert_ptr_nonnull(t);
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(csp_sleep(20 * period), 0);
        ck_assert_uint_le(csp_chan_len(t), 1);
        int64_t before = csp_now();
        int64_t r1, r2;
        ck_assert_int_eq(csp_recv(t, &r1), 0);
        ck_assert_int_eq(csp_recv(t, &r2), 0);
        ck_assert_int_gt(r2, r1);
        ck_assert_msg(r2 > before - 5 * period, "round %d: a second stale tick was queued",
                      round);
    }
    ck_assert_int_eq(csp_tick_stop(t), 0);
    csp_chan_release(t);
}

START_TEST(test_tick_drops)
{
    run_mode(tick_drop_body, _i);
}
END_TEST

struct stop_arg {
    csp_chan *t;
    int rc;
};

static void stop_ticker_later(void *p)
{
    struct stop_arg *s = p;
    csp_sleep(MS(12));
    s->rc = csp_tick_stop(s->t);
}

/* After csp_tick_stop returns no tick is sent any more (at most one already
 * buffered); a stop from another task or thread while someone receives
 * leaves the receiver to its deadline; a second stop is EINVAL. */
static void tick_stop_body(void *arg)
{
    (void)arg;
    const int64_t period = MS(3);
    for (int round = 0; round < 4; round++) {
        csp_chan *t = csp_tick(period);
        int64_t v;
        ck_assert_int_eq(csp_recv(t, &v), 0);
        if (round % 2)
            csp_sleep(2 * period);
        ck_assert_int_eq(csp_tick_stop(t), 0);
        int64_t stopped = csp_now();
        if (csp_try_recv(t, &v) == 0)
            ck_assert_int_le(v, stopped);
        ck_assert_int_eq(csp_recv_until(t, &v, csp_deadline(5 * period)), ETIMEDOUT);
        ck_assert_int_eq(csp_tick_stop(t), EINVAL);
        csp_chan_release(t);
    }
    for (int thread = 0; thread < 2; thread++) {
        struct stop_arg s = { csp_tick(MS(1000)), -1 };
        struct group g = { 0 };
        group_go(&g, thread, stop_ticker_later, &s);
        int64_t v, dl = csp_deadline(MS(60));
        ck_assert_int_eq(csp_recv_until(s.t, &v, dl), ETIMEDOUT);
        ck_assert_int_ge(csp_now(), dl);
        group_wait(&g);
        ck_assert_int_eq(s.rc, 0);
        csp_chan_release(s.t);
    }
}

START_TEST(test_tick_stop)
{
    run_mode(tick_stop_body, _i);
}
END_TEST

/* csp_tick rejects a period <= 0; csp_tick_stop rejects NULL, plain
 * channels, csp_after channels and stopped tickers. */
START_TEST(test_tick_einval)
{
    errno = 0;
    ck_assert_ptr_null(csp_tick(0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(csp_tick(-5));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(csp_tick(INT64_MIN));
    ck_assert_int_eq(csp_tick_stop(NULL), EINVAL);
    csp_chan *c = csp_chan_make(sizeof(int64_t), 1);
    ck_assert_int_eq(csp_tick_stop(c), EINVAL);
    csp_chan_release(c);
    csp_chan *a = csp_after(MS(500));
    ck_assert_int_eq(csp_tick_stop(a), EINVAL);
    csp_chan_release(a);
    a = csp_after(0);
    int64_t v;
    ck_assert_int_eq(csp_recv(a, &v), 0);
    ck_assert_int_eq(csp_tick_stop(a), EINVAL);
    csp_chan_release(a);
    csp_chan *t = csp_tick(MS(1));
    ck_assert_int_eq(csp_tick_stop(t), 0);
    ck_assert_int_eq(csp_tick_stop(t), EINVAL);
    csp_chan_release(t);
}
END_TEST

/* Releasing a running ticker's last user reference without stopping it is
 * safe (the library may stop it); so is a ticker shared by two holders. */
START_TEST(test_tick_release_running)
{
    for (int i = 0; i < 20; i++)
        csp_chan_release(csp_tick(US(200 + i * 10)));
    csp_chan *t = csp_tick(US(500));
    csp_chan *u = csp_chan_retain(t);
    int64_t v;
    ck_assert_int_eq(csp_recv(u, &v), 0);
    csp_chan_release(t);
    ck_assert_int_eq(csp_recv(u, &v), 0);
    ck_assert_int_eq(csp_tick_stop(u), 0);
    csp_chan_release(u);
    ck_assert_int_eq(csp_sleep(MS(20)), 0);
}
END_TEST

/* ---- deadlines ----------------------------------------------------------------- */

struct early {
    int64_t ns;
    int what;
};

static void never_early_one(void *p)
{
    struct early *e = p;
    csp_chan *u = csp_chan_make(sizeof(int), 0);
    csp_chan *full = csp_chan_make(sizeof(int), 1);
    int v = 0;
    ck_assert_int_eq(csp_send(full, &v), 0);
    int64_t dl = csp_deadline(e->ns);
    switch (e->what) {
    case 0: ck_assert_int_eq(csp_recv_until(u, &v, dl), ETIMEDOUT); break;
    case 1: ck_assert_int_eq(csp_send_until(u, &v, dl), ETIMEDOUT); break;
    case 2: ck_assert_int_eq(csp_send_until(full, &v, dl), ETIMEDOUT); break;
    case 3: {
        csp_case cs[] = { CSP_RECV(u, &v), CSP_SEND(full, &v), CSP_RECV(NULL, &v) };
        ck_assert_int_eq(csp_select(cs, 3, dl), -ETIMEDOUT);
        break;
    }
    default: ck_assert_int_eq(csp_select(NULL, 0, dl), -ETIMEDOUT); break;
    }
    int64_t now = csp_now();
    ck_assert_msg(now >= dl, "woke %lld ns early", (long long)(dl - now));
    ck_assert_int_lt(now - dl, LOOSE);
    csp_chan_release(u);
    csp_chan_release(full);
}

/* Deadlines of recv_until, send_until and csp_select never fire early,
 * for many concurrent waiters (tasks and threads) with different
 * deadlines. */
static void never_early_body(void *arg)
{
    (void)arg;
    enum { N = 100 };
    static struct early e[N];
    uint32_t seed = 1234;
    struct group g = { 0 };
    for (int i = 0; i < N; i++) {
        e[i].ns = (int64_t)(rnd(&seed) % 15000) * 1000 + 1;
        e[i].what = i % 5;
        group_go(&g, i % 10 == 0, never_early_one, &e[i]);
    }
    for (int i = 0; i < 10; i++) {
        struct early mine = { US(100) * (i + 1), i % 5 };
        never_early_one(&mine);
    }
    group_wait(&g);
}

START_TEST(test_deadlines_never_early)
{
    run_mode(never_early_body, _i);
}
END_TEST

static void late_sender(void *p)
{
    csp_sleep(MS(10));
    int v = 31;
    ck_assert_int_eq(csp_send(p, &v), 0);
}

/* A far deadline (INT64_MAX) is not "past": the call waits and succeeds. */
static void far_deadline_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++) {
        csp_chan *c = csp_chan_make(sizeof(int), 0);
        struct group g = { 0 };
        group_go(&g, thread, late_sender, c);
        int v = 0;
        ck_assert_int_eq(csp_recv_until(c, &v, INT64_MAX), 0);
        ck_assert_int_eq(v, 31);
        group_wait(&g);
        group_go(&g, thread, late_sender, c);
        csp_case cs[] = { CSP_RECV(c, &v) };
        v = 0;
        ck_assert_int_eq(csp_select(cs, 1, INT64_MAX - 1), 0);
        ck_assert_int_eq(v, 31);
        group_wait(&g);
        csp_chan_release(c);
    }
}

START_TEST(test_far_deadline)
{
    run_mode(far_deadline_body, _i);
}
END_TEST

struct race_side {
    csp_chan *c;
    int n, send, sel;
    uint32_t seed;
    char *ok;           /* per round: 1 if the operation succeeded */
    csp_chan *sync;
};

static void race_side_fn(void *p)
{
    struct race_side *s = p;
    for (int i = 0; i < s->n; i++) {
        /* Line up with the other side, then race a short deadline. */
        if (s->send)
            ck_assert_int_eq(csp_send(s->sync, NULL), 0);
        else
            ck_assert_int_eq(csp_recv(s->sync, NULL), 0);
        int64_t dl = csp_deadline((int64_t)(rnd(&s->seed) % 60) * 1000);
        int v = i, r;
        if (s->sel) {
            csp_case cs[] = { s->send ? CSP_SEND(s->c, &v) : CSP_RECV(s->c, &v) };
            r = csp_select(cs, 1, dl);
            r = r == 0 ? 0 : -r;
        } else {
            r = s->send ? csp_send_until(s->c, &v, dl) : csp_recv_until(s->c, &v, dl);
        }
        ck_assert(r == 0 || r == ETIMEDOUT);
        s->ok[i] = r == 0;
        if (r == 0 && !s->send)
            ck_assert_int_eq(v, i);
    }
}

/* A deadline racing a completion is decided once: on an unbuffered
 * channel a timed send succeeds exactly when the timed receive it races
 * does, and a receiver that timed out got nothing. */
static void deadline_race_body(void *arg)
{
    (void)arg;
    enum { N = 600 };
    for (int mode = 0; mode < 8; mode++) {
        csp_chan *c = csp_chan_make(sizeof(int), 0);
        csp_chan *sync = csp_chan_make(0, 0);
        static char oks[2][N];
        struct race_side a = { c, N, 1, mode & 1, 17, oks[0], sync };
        struct race_side b = { c, N, 0, (mode >> 1) & 1, 23, oks[1], sync };
        struct group g = { 0 };
        group_go(&g, (mode >> 2) & 1, race_side_fn, &a);
        group_go(&g, ((mode >> 1) ^ (mode >> 2)) & 1, race_side_fn, &b);
        group_wait(&g);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(oks[0][i] == oks[1][i], "mode %d round %d: send %s, receive %s", mode,
                          i, oks[0][i] ? "succeeded" : "timed out",
                          oks[1][i] ? "succeeded" : "timed out");
        }
        ck_assert_int_eq(csp_try_recv(c, &(int){ 0 }), EAGAIN);
        csp_chan_release(c);
        csp_chan_release(sync);
    }
}

START_TEST(test_deadline_races_completion)
{
    run_mode(deadline_race_body, _i);
}
END_TEST

static Suite *timer_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("clock");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_now_monotonic);
    tcase_add_test(tc, test_deadline);
    tcase_add_loop_test(tc, test_sleep, 0, 2);
    tcase_add_test(tc, test_many_sleepers);
    tcase_add_loop_test(tc, test_timers_park_tasks, 0, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("after-tick");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_after, 0, 2);
    tcase_add_loop_test(tc, test_many_after, 0, 2);
    tcase_add_loop_test(tc, test_tick, 0, 2);
    tcase_add_loop_test(tc, test_tick_drops, 0, 2);
    tcase_add_loop_test(tc, test_tick_stop, 0, 2);
    tcase_add_test(tc, test_tick_einval);
    tcase_add_test(tc, test_tick_release_running);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_deadlines_never_early, 0, 2);
    tcase_add_loop_test(tc, test_far_deadline, 0, 2);
    tcase_add_loop_test(tc, test_deadline_races_completion, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(timer_suite());
}
