/*
 * check_select.c - csp_select as API.md states it: return values and
 * errors, NULL and negative-fd cases, n == 0, exactly one case takes
 * effect, closed channels, fairness (closed cases included, and a parked
 * select offered two cases on one channel), two non-blocking sides that
 * never meet, the same channel in several cases, large case arrays.
 * (Ports of Go's own select tests are in check_goport_chan.c.)
 *
 * Loop tests run their body as the main task of csp_run (_i == 0) or on
 * the test's plain thread (_i == 1).  Fairness bounds are chi-square
 * critical values at p = 1e-6, so a fair select fails one in a million
 * runs while a biased one fails at once.
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
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */


/* Pearson's statistic for counts that should be uniform. */
static double chi_square(const long *cnt, int k)
{
    long total = 0;
    for (int i = 0; i < k; i++)
        total += cnt[i];
    double e = (double)total / k, x = 0;
    for (int i = 0; i < k; i++)
        x += (cnt[i] - e) * (cnt[i] - e) / e;
    return x;
}

/* Critical values of chi-square at p = 1e-6 by degrees of freedom. */
static double chi_crit(int df)
{
    switch (df) {
    case 1: return 23.93;
    case 2: return 27.63;
    case 3: return 30.66;
    case 4: return 33.38;
    case 11: return 48.87;
    default: ck_abort_msg("no critical value for %d degrees of freedom", df);
    }
    return 0;
}

static csp_chan *closed_chan(size_t elem, size_t cap)
{
    csp_chan *c = csp_chan_make(elem, cap);
    ck_assert_int_eq(csp_close(c), 0);
    return c;
}

/* ---- return values -------------------------------------------------------- */

/* The one ready case is chosen, whatever the deadline, and performed;
 * the receive buffers of the other cases are not written. */
static void ready_case_body(void *arg)
{
    (void)arg;
    const int64_t dls[] = { CSP_NOWAIT, 1, INT64_MIN, CSP_FOREVER, INT64_MAX };
    csp_chan *unbuf = csp_chan_make(sizeof(int), 0);
    csp_chan *empty = csp_chan_make(sizeof(int), 2);
    csp_chan *full = csp_chan_make(sizeof(int), 1);
    csp_chan *ready = csp_chan_make(sizeof(int), 1);
    int one = 1;
    ck_assert_int_eq(csp_send(full, &one), 0);
    for (size_t d = 0; d < NELEM(dls); d++) {
        int v = 40 + (int)d;
        ck_assert_int_eq(csp_send(ready, &v), 0);
        int r0 = -1, r1 = -1, r3 = -1, r4 = -1, s = 5;
        csp_case cs[] = {
            CSP_RECV(NULL, &r0), CSP_RECV(unbuf, &r1), CSP_SEND(unbuf, &s),
            CSP_RECV(empty, &r3), CSP_RECV(ready, &r4), CSP_SEND(full, &s),
            CSP_SEND(NULL, &s),
        };
        ck_assert_int_eq(csp_select(cs, NELEM(cs), dls[d]), 4);
        ck_assert_int_eq(cs[4].err, 0);
        ck_assert_int_eq(r4, 40 + (int)d);
        ck_assert_int_eq(r0, -1);
        ck_assert_int_eq(r1, -1);
        ck_assert_int_eq(r3, -1);
        ck_assert_uint_eq(csp_chan_len(ready), 0);
        ck_assert_uint_eq(csp_chan_len(full), 1);
        ck_assert_uint_eq(csp_chan_len(empty), 0);
    }
    csp_chan_release(unbuf);
    csp_chan_release(empty);
    csp_chan_release(full);
    csp_chan_release(ready);
}

START_TEST(test_ready_case_chosen)
{
    run_mode(ready_case_body, _i);
}
END_TEST

/* Nothing ready: -EAGAIN for CSP_NOWAIT, -ETIMEDOUT for any other past
 * deadline and for a deadline that passes while waiting (never early);
 * no receive buffer is written and nothing is sent. */
static void nothing_ready_body(void *arg)
{
    (void)arg;
    csp_chan *unbuf = csp_chan_make(sizeof(int), 0);
    csp_chan *empty = csp_chan_make(sizeof(int), 3);
    csp_chan *full = csp_chan_make(sizeof(int), 1);
    int x = 9;
    ck_assert_int_eq(csp_send(full, &x), 0);
    int r1 = -1, r2 = -1, s = 5;
    csp_case cs[] = { CSP_RECV(unbuf, &r1), CSP_SEND(unbuf, &s), CSP_RECV(empty, &r2),
                      CSP_SEND(full, &s), CSP_RECV(NULL, &r1), CSP_SEND(NULL, &s) };
    ck_assert_int_eq(csp_select(cs, NELEM(cs), CSP_NOWAIT), -EAGAIN);
    const int64_t past[] = { 1, 2, -2, INT64_MIN, csp_now() };
    for (size_t k = 0; k < NELEM(past); k++)
        ck_assert_int_eq(csp_select(cs, NELEM(cs), past[k]), -ETIMEDOUT);
    for (int ms = 1; ms <= 16; ms *= 4) {
        int64_t dl = csp_deadline(MS(ms));
        ck_assert_int_eq(csp_select(cs, NELEM(cs), dl), -ETIMEDOUT);
        ck_assert_int_ge(csp_now(), dl);
    }
    ck_assert_int_eq(r1, -1);
    ck_assert_int_eq(r2, -1);
    ck_assert_uint_eq(csp_chan_len(empty), 0);
    ck_assert_uint_eq(csp_chan_len(full), 1);
    csp_chan_release(unbuf);
    csp_chan_release(empty);
    csp_chan_release(full);
}

START_TEST(test_nothing_ready)
{
    run_mode(nothing_ready_body, _i);
}
END_TEST

/* Cases with a NULL channel, and READABLE/WRITABLE cases with a negative
 * descriptor, never fire: alone they time out, next to a ready case they
 * are never chosen. */
static void null_cases_body(void *arg)
{
    (void)arg;
    int r = -1, s = 3;
    csp_case nul[] = { CSP_RECV(NULL, &r), CSP_SEND(NULL, &s), CSP_READABLE(-1),
                       CSP_WRITABLE(-1), CSP_RECV(NULL, NULL) };
    ck_assert_int_eq(csp_select(nul, NELEM(nul), CSP_NOWAIT), -EAGAIN);
    ck_assert_int_eq(csp_select(nul, NELEM(nul), 1), -ETIMEDOUT);
    int64_t dl = csp_deadline(MS(10));
    ck_assert_int_eq(csp_select(nul, NELEM(nul), dl), -ETIMEDOUT);
    ck_assert_int_ge(csp_now(), dl);
    ck_assert_int_eq(r, -1);

    csp_chan *c = csp_chan_make(sizeof(int), 1);
    for (int i = 0; i < 300; i++) {
        csp_case cs[] = { CSP_RECV(NULL, &r), CSP_SEND(NULL, &s), CSP_READABLE(-1),
                          CSP_SEND(c, &i), CSP_WRITABLE(-5), CSP_RECV(NULL, &r) };
        ck_assert_int_eq(csp_select(cs, NELEM(cs), i % 2 ? CSP_NOWAIT : CSP_FOREVER), 3);
        int v = -1;
        ck_assert_int_eq(csp_try_recv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(r, -1);
    csp_chan_release(c);
}

START_TEST(test_null_cases_never_fire)
{
    run_mode(null_cases_body, _i);
}
END_TEST

/* n == 0 waits until the deadline: -EAGAIN for CSP_NOWAIT, -ETIMEDOUT for
 * past deadlines and after a future one has passed. */
static void n_zero_body(void *arg)
{
    (void)arg;
    csp_case dummy = CSP_RECV(NULL, NULL);
    ck_assert_int_eq(csp_select(NULL, 0, CSP_NOWAIT), -EAGAIN);
    ck_assert_int_eq(csp_select(&dummy, 0, CSP_NOWAIT), -EAGAIN);
    ck_assert_int_eq(csp_select(NULL, 0, 1), -ETIMEDOUT);
    ck_assert_int_eq(csp_select(NULL, 0, INT64_MIN), -ETIMEDOUT);
    for (int ms = 1; ms <= 25; ms *= 5) {
        int64_t dl = csp_deadline(MS(ms));
        ck_assert_int_eq(csp_select(ms % 2 ? NULL : &dummy, 0, dl), -ETIMEDOUT);
        ck_assert_int_ge(csp_now(), dl);
    }
}

START_TEST(test_n_zero)
{
    run_mode(n_zero_body, _i);
}
END_TEST

static void empty_select_forever(void *arg)
{
    (void)arg;
    csp_select(NULL, 0, CSP_FOREVER);
    ck_abort_msg("select {} returned");
}

static void null_select_forever(void *arg)
{
    (void)arg;
    int v;
    csp_case cs[] = { CSP_RECV(NULL, &v), CSP_SEND(NULL, &v) };
    csp_select(cs, 2, CSP_FOREVER);
    ck_abort_msg("a select on NULL channels returned");
}

/* Go's empty `select {}` (and one on NULL channels only) blocks forever,
 * and deadlock detection reports it like any other parked task. */
START_TEST(test_select_forever_deadlock)
{
    ck_assert_int_eq(csp_run(empty_select_forever, NULL), EDEADLK);
    ck_assert_int_eq(csp_run(null_select_forever, NULL), EDEADLK);
}
END_TEST

/* Bad arguments give -EINVAL and perform no case: not even a ready one. */
START_TEST(test_einval)
{
    ck_assert_int_eq(csp_select(NULL, 1, CSP_NOWAIT), -EINVAL);
    ck_assert_int_eq(csp_select(NULL, 3, CSP_FOREVER), -EINVAL);
    csp_chan *c = csp_chan_make(sizeof(int), 2);
    csp_chan *d = csp_chan_make(sizeof(int), 2);
    int v = 8;
    ck_assert_int_eq(csp_send(c, &v), 0);
    const int bad_ops[] = { 0, 5, -1, 99, INT_MIN };
    for (size_t k = 0; k < NELEM(bad_ops); k++) {
        int r = -1, s = 1;
        csp_case cs[] = { CSP_RECV(c, &r), CSP_SEND(d, &s), CSP_RECV(c, &r) };
        cs[2].op = bad_ops[k];
        ck_assert_int_eq(csp_select(cs, 3, CSP_FOREVER), -EINVAL);
        ck_assert_int_eq(csp_select(cs, 3, CSP_NOWAIT), -EINVAL);
        ck_assert_int_eq(r, -1);
        ck_assert_uint_eq(csp_chan_len(c), 1);
        ck_assert_uint_eq(csp_chan_len(d), 0);
    }
    /* A send case without a value on a channel that carries one. */
    int r = -1;
    csp_case cs[] = { CSP_RECV(c, &r), CSP_SEND(d, NULL) };
    ck_assert_int_eq(csp_select(cs, 2, CSP_NOWAIT), -EINVAL);
    ck_assert_int_eq(r, -1);
    ck_assert_uint_eq(csp_chan_len(c), 1);
    ck_assert_uint_eq(csp_chan_len(d), 0);
    csp_chan_release(c);
    csp_chan_release(d);
}
END_TEST

/* ---- exactly one case ------------------------------------------------------- */

/* With every case ready, exactly one takes effect: one value leaves (or
 * enters) one channel, the other receive buffers keep their contents. */
static void exactly_one_ready_body(void *arg)
{
    (void)arg;
    enum { K = 4 };
    csp_chan *in[K], *out[K];
    for (int k = 0; k < K; k++) {
        in[k] = csp_chan_make(sizeof(long), 1);
        out[k] = csp_chan_make(sizeof(long), 1);
    }
    long hits[2 * K] = { 0 };
    for (int round = 0; round < 400; round++) {
        long r[K], s[K];
        for (int k = 0; k < K; k++) {
            long v = round * 10 + k;
            if (csp_chan_len(in[k]) == 0)
                ck_assert_int_eq(csp_send(in[k], &v), 0);
            r[k] = -7;
            s[k] = 1000 + k;
            long junk;
            while (csp_try_recv(out[k], &junk) == 0)
                ;
        }
        size_t lens[K];
        for (int k = 0; k < K; k++)
            lens[k] = csp_chan_len(in[k]);
        csp_case cs[2 * K];
        for (int k = 0; k < K; k++) {
            cs[2 * k] = CSP_RECV(in[k], &r[k]);
            cs[2 * k + 1] = CSP_SEND(out[k], &s[k]);
        }
        int i = csp_select(cs, 2 * K, round % 2 ? CSP_NOWAIT : CSP_FOREVER);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, 2 * K);
        hits[i]++;
        for (int k = 0; k < K; k++) {
            if (i == 2 * k) {
                ck_assert_int_eq(r[k] % 10, k);
                ck_assert_uint_eq(csp_chan_len(in[k]), lens[k] - 1);
            } else {
                ck_assert_int_eq(r[k], -7);
                ck_assert_uint_eq(csp_chan_len(in[k]), lens[k]);
            }
            ck_assert_uint_eq(csp_chan_len(out[k]), i == 2 * k + 1 ? 1 : 0);
        }
    }
    for (int k = 0; k < 2 * K; k++)
        ck_assert_int_gt(hits[k], 0);
    for (int k = 0; k < K; k++) {
        csp_chan_release(in[k]);
        csp_chan_release(out[k]);
    }
}

START_TEST(test_exactly_one_ready)
{
    run_mode(exactly_one_ready_body, _i);
}
END_TEST

struct one_peer {
    csp_chan *c;
    long value;      /* to send, or received */
    int rc;
};

static void peer_send(void *p)
{
    struct one_peer *o = p;
    o->rc = csp_send(o->c, &o->value);
}

static void peer_recv(void *p)
{
    struct one_peer *o = p;
    o->rc = csp_recv(o->c, &o->value);
}

/* A parked select with three receive cases meets three senders that come
 * at once: one value goes to the select, the other two senders stay
 * blocked until someone else receives; buffers of unfired cases keep
 * their contents.  Then the same with three send cases and receivers. */
static void exactly_one_parked_body(void *arg)
{
    (void)arg;
    enum { K = 3 };
    for (int round = 0; round < 60; round++) {
        int thread = round % 2;
        csp_chan *c[K];
        struct one_peer p[K];
        struct group g = { 0 };
        for (int k = 0; k < K; k++) {
            c[k] = csp_chan_make(sizeof(long), 0);
            p[k] = (struct one_peer){ c[k], 500 + k, -1 };
        }
        long r[K] = { -7, -7, -7 };
        csp_case cs[K];
        for (int k = 0; k < K; k++)
            cs[k] = CSP_RECV(c[k], &r[k]);
        for (int k = 0; k < K; k++)
            group_go(&g, thread, peer_send, &p[k]);
        int i = csp_select(cs, K, CSP_FOREVER);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, K);
        ck_assert_int_eq(cs[i].err, 0);
        for (int k = 0; k < K; k++) {
            if (k == i) {
                ck_assert_int_eq(r[k], 500 + k);
                continue;
            }
            ck_assert_int_eq(r[k], -7);
            long v = -1;
            ck_assert_int_eq(csp_recv(c[k], &v), 0);   /* still there */
            ck_assert_int_eq(v, 500 + k);
        }
        group_wait(&g);
        for (int k = 0; k < K; k++) {
            ck_assert_int_eq(p[k].rc, 0);
            ck_assert_int_eq(csp_try_recv(c[k], &(long){ 0 }), EAGAIN);
        }

        /* Send cases. */
        long s[K];
        for (int k = 0; k < K; k++) {
            p[k] = (struct one_peer){ c[k], -1, -1 };
            s[k] = 100 + k;
            cs[k] = CSP_SEND(c[k], &s[k]);
        }
        for (int k = 0; k < K; k++)
            group_go(&g, thread, peer_recv, &p[k]);
        i = csp_select(cs, K, CSP_FOREVER);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, K);
        for (int k = 0; k < K; k++)
            if (k != i) {
                long v = 200 + k;
                ck_assert_int_eq(csp_send(c[k], &v), 0);
            }
        group_wait(&g);
        for (int k = 0; k < K; k++) {
            ck_assert_int_eq(p[k].rc, 0);
            ck_assert_int_eq(p[k].value, (k == i ? 100 : 200) + k);
            csp_chan_release(c[k]);
        }
    }
}

START_TEST(test_exactly_one_parked)
{
    run_mode(exactly_one_parked_body, _i);
}
END_TEST

/* The same channel in several cases: one of them fires, once. */
static void duplicate_cases_body(void *arg)
{
    (void)arg;
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    long hits[3] = { 0 };
    for (int round = 0; round < 300; round++) {
        int v = round, r[3] = { -1, -1, -1 };
        ck_assert_int_eq(csp_send(c, &v), 0);
        csp_case cs[] = { CSP_RECV(c, &r[0]), CSP_RECV(c, &r[1]), CSP_RECV(c, &r[2]) };
        int i = csp_select(cs, 3, CSP_NOWAIT);
        ck_assert_int_ge(i, 0);
        hits[i]++;
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(r[k], k == i ? round : -1);
        ck_assert_uint_eq(csp_chan_len(c), 0);

        int s[3] = { 10, 11, 12 };
        csp_case ss[] = { CSP_SEND(c, &s[0]), CSP_SEND(c, &s[1]), CSP_SEND(c, &s[2]) };
        i = csp_select(ss, 3, CSP_FOREVER);
        ck_assert_int_ge(i, 0);
        ck_assert_uint_eq(csp_chan_len(c), 1);
        ck_assert_int_eq(csp_recv(c, &v), 0);
        ck_assert_int_eq(v, 10 + i);
    }
    ck_assert(hits[0] && hits[1] && hits[2]);
    csp_chan_release(c);
}

START_TEST(test_duplicate_cases)
{
    run_mode(duplicate_cases_body, _i);
}
END_TEST

/* A send case copies the value when it fires: changing the source after
 * the select returns does not change what the receiver gets. */
START_TEST(test_send_copies_value)
{
    csp_chan *c = csp_chan_make(sizeof(long[4]), 2);
    long a[4] = { 1, 2, 3, 4 };
    csp_case cs[] = { CSP_SEND(c, a) };
    ck_assert_int_eq(csp_select(cs, 1, CSP_NOWAIT), 0);
    a[0] = a[1] = a[2] = a[3] = -1;
    long b[4];
    ck_assert_int_eq(csp_recv(c, b), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(b[i], i + 1);
    csp_chan_release(c);
}
END_TEST

/* Signal channels (elem_size 0) in select: NULL elems, nothing written. */
static void elem_zero_body(void *arg)
{
    (void)arg;
    csp_chan *c = csp_chan_make(0, 2);
    int guard = 42;
    csp_case s[] = { CSP_SEND(c, NULL), CSP_SEND(c, &guard) };
    ck_assert_int_ge(csp_select(s, 2, CSP_NOWAIT), 0);
    ck_assert_int_ge(csp_select(s, 2, CSP_NOWAIT), 0);
    ck_assert_int_eq(csp_select(s, 2, CSP_NOWAIT), -EAGAIN);
    csp_case r[] = { CSP_RECV(c, NULL), CSP_RECV(c, &guard) };
    ck_assert_int_ge(csp_select(r, 2, CSP_NOWAIT), 0);
    ck_assert_int_ge(csp_select(r, 2, CSP_NOWAIT), 0);
    ck_assert_int_eq(csp_select(r, 2, CSP_NOWAIT), -EAGAIN);
    ck_assert_int_eq(csp_close(c), 0);
    int i = csp_select(r, 2, CSP_FOREVER);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(r[i].err, EPIPE);
    ck_assert_int_eq(guard, 42);
    csp_chan_release(c);
}

START_TEST(test_elem_size_zero)
{
    run_mode(elem_zero_body, _i);
}
END_TEST

/* ---- closed channels -------------------------------------------------------- */

/* On a closed channel a receive case fires with EPIPE and a zeroed value
 * once drained (the buffered values first, with err 0) and a send case
 * fires with EPIPE and delivers nothing. */
static void closed_cases_body(void *arg)
{
    (void)arg;
    csp_chan *c = csp_chan_make(sizeof(long[3]), 2);
    long v[3] = { 7, 8, 9 };
    ck_assert_int_eq(csp_send(c, v), 0);
    ck_assert_int_eq(csp_close(c), 0);
    long r[3] = { -1, -1, -1 };
    csp_case cs[] = { CSP_RECV(c, r) };
    ck_assert_int_eq(csp_select(cs, 1, CSP_NOWAIT), 0);
    ck_assert_int_eq(cs[0].err, 0);
    ck_assert_int_eq(r[0], 7);
    ck_assert_int_eq(r[2], 9);
    for (int k = 0; k < 3; k++) {
        r[0] = r[1] = r[2] = -1;
        ck_assert_int_eq(csp_select(cs, 1, k == 0 ? CSP_NOWAIT : k == 1 ? 1 : CSP_FOREVER), 0);
        ck_assert_int_eq(cs[0].err, EPIPE);
        ck_assert_int_eq(r[0], 0);
        ck_assert_int_eq(r[1], 0);
        ck_assert_int_eq(r[2], 0);
    }
    csp_case ss[] = { CSP_SEND(c, v) };
    ck_assert_int_eq(csp_select(ss, 1, CSP_NOWAIT), 0);
    ck_assert_int_eq(ss[0].err, EPIPE);
    ck_assert_uint_eq(csp_chan_len(c), 0);
    ck_assert_int_eq(csp_recv(c, r), EPIPE);
    csp_chan_release(c);

    csp_chan *u = closed_chan(sizeof(int), 0);
    int x = 5;
    csp_case us[] = { CSP_SEND(u, &x), CSP_RECV(u, &x) };
    for (int k = 0; k < 20; k++) {
        x = 5;
        int i = csp_select(us, 2, CSP_FOREVER);
        ck_assert_int_eq(us[i].err, EPIPE);
        ck_assert_int_eq(x, i == 1 ? 0 : 5);
    }
    csp_chan_release(u);
}

START_TEST(test_closed_cases)
{
    run_mode(closed_cases_body, _i);
}
END_TEST

struct closer {
    csp_chan *c;
};

static void close_later(void *p)
{
    csp_sleep(MS(10));
    ck_assert_int_eq(csp_close(((struct closer *)p)->c), 0);
}

/* A close wakes a parked select: its receive case fires with EPIPE and a
 * zeroed value, or its send case with EPIPE; other buffers untouched. */
static void close_wakes_select_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++)
        for (size_t cap = 0; cap < 2; cap++) {
            csp_chan *a = csp_chan_make(sizeof(int), 0);
            csp_chan *b = csp_chan_make(sizeof(int), cap);
            struct group g = { 0 };
            struct closer cl = { b };
            group_go(&g, thread, close_later, &cl);
            int ra = -1, rb = -1;
            csp_case cs[] = { CSP_RECV(a, &ra), CSP_RECV(b, &rb) };
            ck_assert_int_eq(csp_select(cs, 2, CSP_FOREVER), 1);
            ck_assert_int_eq(cs[1].err, EPIPE);
            ck_assert_int_eq(rb, 0);
            ck_assert_int_eq(ra, -1);
            group_wait(&g);
            csp_chan_release(b);

            /* Send case: a full (or unbuffered) channel, then closed. */
            b = csp_chan_make(sizeof(int), cap);
            int one = 1;
            if (cap)
                ck_assert_int_eq(csp_send(b, &one), 0);
            cl.c = b;
            group_go(&g, thread, close_later, &cl);
            int s = 77;
            csp_case ss[] = { CSP_RECV(a, &ra), CSP_SEND(b, &s) };
            ck_assert_int_eq(csp_select(ss, 2, CSP_FOREVER), 1);
            ck_assert_int_eq(ss[1].err, EPIPE);
            ck_assert_int_eq(ra, -1);
            group_wait(&g);
            int v = -1;
            if (cap) {
                ck_assert_int_eq(csp_recv(b, &v), 0);
                ck_assert_int_eq(v, 1);
            }
            ck_assert_int_eq(csp_recv(b, &v), EPIPE);   /* 77 never went in */
            csp_chan_release(a);
            csp_chan_release(b);
        }
}

START_TEST(test_close_wakes_select)
{
    run_mode(close_wakes_select_body, _i);
}
END_TEST

/* ---- fairness ----------------------------------------------------------------- */

/* Closed-channel cases count like any other ready case: two closed
 * receive cases and two receive cases with values are chosen uniformly;
 * so are a closed send case and a ready send case. */
static void fair_closed_body(void *arg)
{
    (void)arg;
    enum { T = 8000 };
    csp_chan *cl1 = closed_chan(sizeof(int), 0), *cl2 = closed_chan(sizeof(int), 3);
    csp_chan *b1 = csp_chan_make(sizeof(int), T), *b2 = csp_chan_make(sizeof(int), T);
    csp_chan *never = csp_chan_make(sizeof(int), 0);
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(csp_send(b1, &i), 0);
        ck_assert_int_eq(csp_send(b2, &i), 0);
    }
    long cnt[4] = { 0 };
    for (int i = 0; i < T; i++) {
        int r[5];
        csp_case cs[] = { CSP_RECV(cl1, &r[0]), CSP_RECV(b1, &r[1]), CSP_RECV(never, &r[4]),
                          CSP_RECV(cl2, &r[2]), CSP_RECV(b2, &r[3]) };
        int k = csp_select(cs, 5, CSP_FOREVER);
        ck_assert(k >= 0 && k != 2);
        cnt[k < 2 ? k : k - 1]++;
    }
    double x = chi_square(cnt, 4);
    ck_assert_msg(x < chi_crit(3), "unfair: %ld %ld %ld %ld (chi2 %.1f)", cnt[0], cnt[1],
                  cnt[2], cnt[3], x);

    csp_chan *room = csp_chan_make(sizeof(int), 1);
    long sc[2] = { 0 };
    for (int i = 0; i < T; i++) {
        int s = i;
        csp_case cs[] = { CSP_SEND(cl1, &s), CSP_SEND(room, &s), CSP_SEND(never, &s) };
        int k = csp_select(cs, 3, CSP_NOWAIT);
        ck_assert(k == 0 || k == 1);
        sc[k]++;
        if (k == 1)
            ck_assert_int_eq(csp_recv(room, &s), 0);
        else
            ck_assert_int_eq(cs[0].err, EPIPE);
    }
    x = chi_square(sc, 2);
    ck_assert_msg(x < chi_crit(1), "unfair: %ld %ld (chi2 %.1f)", sc[0], sc[1], x);
    csp_chan_release(cl1);
    csp_chan_release(cl2);
    csp_chan_release(b1);
    csp_chan_release(b2);
    csp_chan_release(never);
    csp_chan_release(room);
}

START_TEST(test_fair_with_closed)
{
    run_mode(fair_closed_body, _i);
}
END_TEST

struct pair_partner {
    csp_chan *c, *done;
    int n, send;
};

static void pair_partner_fn(void *p)
{
    struct pair_partner *pp = p;
    for (int i = 0; i < pp->n; i++) {
        /* Give the select time to park (if it does not, the test still
         * checks fairness, only through the other path). */
        csp_sleep(MS(1));
        int v = i;
        if (pp->send)
            ck_assert_int_eq(csp_send(pp->c, &v), 0);
        else
            ck_assert_int_eq(csp_recv(pp->c, &v), 0);
        ck_assert_int_eq(csp_recv(pp->done, NULL), 0);
    }
}

/* A parked select offered two cases on one channel by one arriving
 * partner does not always pick the same one: over 120 rounds each case
 * gets at least 10 % (for two receive cases and for two send cases). */
static void parked_pair_body(void *arg)
{
    (void)arg;
    enum { N = 120 };
    for (int send = 0; send < 2; send++)
        for (int thread = 0; thread < 2; thread++) {
            struct pair_partner pp = { csp_chan_make(sizeof(int), 0), csp_chan_make(0, 0), N,
                                       !send };
            struct group g = { 0 };
            group_go(&g, thread, pair_partner_fn, &pp);
            long cnt[2] = { 0 };
            for (int i = 0; i < N; i++) {
                int r0 = -1, r1 = -1, s0 = 0, s1 = 1;
                csp_case cs[2];
                if (send) {
                    cs[0] = CSP_SEND(pp.c, &s0);
                    cs[1] = CSP_SEND(pp.c, &s1);
                } else {
                    cs[0] = CSP_RECV(pp.c, &r0);
                    cs[1] = CSP_RECV(pp.c, &r1);
                }
                int k = csp_select(cs, 2, CSP_FOREVER);
                ck_assert(k == 0 || k == 1);
                if (!send)
                    ck_assert_int_eq(k == 0 ? r1 : r0, -1);
                cnt[k]++;
                ck_assert_int_eq(csp_send(pp.done, NULL), 0);
            }
            group_wait(&g);
            ck_assert_msg(cnt[0] >= N / 10 && cnt[1] >= N / 10, "%s pair, %s: %ld / %ld",
                          send ? "send" : "recv", thread ? "thread" : "task", cnt[0], cnt[1]);
            csp_chan_release(pp.c);
            csp_chan_release(pp.done);
        }
}

START_TEST(test_parked_pair_fair)
{
    run_mode(parked_pair_body, _i);
}
END_TEST

/* ---- non-blocking sides ------------------------------------------------------- */

struct nowait_side {
    csp_chan *c;
    int kind;              /* 0 try_send, 1 try_recv, 2 select send, 3 select recv */
    int n;
    atomic_int *start;
    long hits;
};

static void nowait_side_fn(void *p)
{
    struct nowait_side *s = p;
    atomic_fetch_add(s->start, 1);
    while (atomic_load(s->start) < 2)
        csp_yield();
    int v = 1, d = -1;
    for (int i = 0; i < s->n; i++) {
        int r;
        switch (s->kind) {
        case 0: r = csp_try_send(s->c, &v); break;
        case 1: r = csp_try_recv(s->c, &v); break;
        case 2: {
            csp_case cs[] = { CSP_SEND(s->c, &v), CSP_RECV(NULL, &d) };
            r = csp_select(cs, 2, CSP_NOWAIT);
            r = r == -EAGAIN ? EAGAIN : r;
            break;
        }
        default: {
            csp_case cs[] = { CSP_RECV(s->c, &v), CSP_SEND(NULL, &d) };
            r = csp_select(cs, 2, i % 2 ? CSP_NOWAIT : 1);
            r = r == -EAGAIN || r == -ETIMEDOUT ? EAGAIN : r;
            break;
        }
        }
        if (r != EAGAIN)
            s->hits++;
    }
}

/* Two non-blocking sides never meet on an unbuffered channel: a try (or
 * CSP_NOWAIT select) send and a try receive, neither parked, both fail,
 * however long they hammer at the same time (tasks and threads). */
START_TEST(test_two_nowait_never_meet)
{
    static const int kinds[][2] = { { 0, 1 }, { 2, 3 }, { 0, 3 }, { 2, 1 } };
    for (size_t k = 0; k < NELEM(kinds); k++)
        for (int thread = 0; thread < 2; thread++) {
            csp_chan *c = csp_chan_make(sizeof(int), 0);
            atomic_int start = 0;
            struct nowait_side a = { c, kinds[k][0], 100000, &start, 0 };
            struct nowait_side b = { c, kinds[k][1], 100000, &start, 0 };
            struct group g = { 0 };
            group_go(&g, thread, nowait_side_fn, &a);
            group_go(&g, thread, nowait_side_fn, &b);
            group_wait(&g);
            ck_assert_msg(a.hits == 0 && b.hits == 0, "kinds %d/%d met %ld/%ld times",
                          kinds[k][0], kinds[k][1], a.hits, b.hits);
            csp_chan_release(c);
        }
    ck_assert_int_eq(csp_stop(), 0);
}
END_TEST

/* A select with a send and a receive case on one channel never meets
 * itself: unbuffered it times out; with one slot, the send fires while
 * the slot is free and the receive once it is full. */
static void self_body(void *arg)
{
    (void)arg;
    csp_chan *u = csp_chan_make(sizeof(int), 0);
    int s = 1, r = -1;
    csp_case cs[] = { CSP_SEND(u, &s), CSP_RECV(u, &r) };
    ck_assert_int_eq(csp_select(cs, 2, CSP_NOWAIT), -EAGAIN);
    int64_t dl = csp_deadline(MS(10));
    ck_assert_int_eq(csp_select(cs, 2, dl), -ETIMEDOUT);
    ck_assert_int_ge(csp_now(), dl);
    ck_assert_int_eq(r, -1);
    csp_chan_release(u);

    csp_chan *b = csp_chan_make(sizeof(int), 1);
    for (int i = 0; i < 100; i++) {
        s = i;
        r = -1;
        csp_case bs[] = { CSP_RECV(b, &r), CSP_SEND(b, &s) };
        ck_assert_int_eq(csp_select(bs, 2, CSP_FOREVER), 1);
        ck_assert_int_eq(r, -1);
        ck_assert_int_eq(csp_select(bs, 2, CSP_FOREVER), 0);
        ck_assert_int_eq(r, i);
    }
    csp_chan_release(b);
}

START_TEST(test_self_select)
{
    run_mode(self_body, _i);
}
END_TEST

/* ---- linearizable non-blocking select ------------------------------------------- */

enum { LIN_K = 16 };

struct lin {
    csp_chan *c[LIN_K];
    int send;              /* select on send cases instead of receive cases */
    long rounds;
    atomic_int stop;
    long failures;
};

/* Moves one token (or one free slot) around a ring of capacity-1
 * channels: it makes the next one ready before it takes the current one
 * away, so at every instant at least one channel is ready. */
static void lin_mover(void *p)
{
    struct lin *l = p;
    int tok = 1;
    for (int k = 0; !atomic_load_explicit(&l->stop, memory_order_relaxed); k = (k + 1) % LIN_K) {
        int n = (k + 1) % LIN_K;
        if (!l->send) {
            ck_assert_int_eq(csp_send(l->c[n], &tok), 0);
            ck_assert_int_eq(csp_recv(l->c[k], &tok), 0);
        } else {
            ck_assert_int_eq(csp_recv(l->c[n], &tok), 0);
            ck_assert_int_eq(csp_send(l->c[k], &tok), 0);
        }
    }
}

/* Non-blocking selects over the whole ring must always find the ready
 * channel; each success is undone at once, so the mover's invariant
 * holds whenever the selector is inside csp_select. */
static void lin_selector(void *p)
{
    struct lin *l = p;
    int v = 1;
    for (long i = 0; i < l->rounds; i++) {
        csp_case cs[LIN_K];
        for (int k = 0; k < LIN_K; k++)
            cs[k] = l->send ? CSP_SEND(l->c[k], &v) : CSP_RECV(l->c[k], &v);
        int r = csp_select(cs, LIN_K, i % 2 ? CSP_NOWAIT : 1);
        if (r < 0) {
            l->failures++;
            continue;
        }
        if (l->send)
            ck_assert_int_eq(csp_recv(l->c[r], &v), 0);
        else
            ck_assert_int_eq(csp_send(l->c[r], &v), 0);
    }
    atomic_store(&l->stop, 1);
}

/* A non-blocking select fails only if at one instant no case could
 * proceed (API.md; Go's TestNonblockSelectRace, made sharper): a mover
 * keeps at least one of 16 channels ready at every instant while the
 * select scans them, for receive and for send cases, tasks and threads. */
START_TEST(test_nowait_linearizable)
{
    for (int send = 0; send < 2; send++)
        for (int thread = 0; thread < 2; thread++) {
            static struct lin l;
            memset(&l, 0, sizeof l);
            l.send = send;
            l.rounds = 100000;
            int tok = 1;
            for (int k = 0; k < LIN_K; k++) {
                l.c[k] = csp_chan_make(sizeof(int), 1);
                if (send ? k != 0 : k == 0)
                    ck_assert_int_eq(csp_send(l.c[k], &tok), 0);
            }
            struct group g = { 0 };
            group_go(&g, thread, lin_mover, &l);
            group_go(&g, thread, lin_selector, &l);
            group_wait(&g);
            ck_assert_msg(l.failures == 0, "%s cases, %s: %ld of %ld non-blocking selects "
                          "found nothing ready", send ? "send" : "receive",
                          thread ? "threads" : "tasks", l.failures, l.rounds);
            for (int k = 0; k < LIN_K; k++)
                csp_chan_release(l.c[k]);
        }
    ck_assert_int_eq(csp_stop(), 0);
}
END_TEST

/* ---- many cases ------------------------------------------------------------------ */

static void send_on(void *p)
{
    struct one_peer *o = p;
    csp_sleep(MS(5));
    o->rc = csp_send(o->c, &o->value);
}

/* Selects larger than any fixed-size scratch area: the one ready case of
 * 100 is found, a parked select on 40 channels is completed by a sender
 * on one of them, and 12 ready cases among 24 are chosen uniformly. */
static void many_cases_body(void *arg)
{
    (void)arg;
    enum { N = 100 };
    csp_chan *c[N];
    csp_case cs[N];
    long r[N];
    for (int i = 0; i < N; i++) {
        c[i] = csp_chan_make(sizeof(long), i % 2);
        r[i] = -1;
        cs[i] = CSP_RECV(c[i], &r[i]);
    }
    long v = 12345;
    ck_assert_int_eq(csp_send(c[77], &v), 0);
    ck_assert_int_eq(csp_select(cs, N, CSP_NOWAIT), 77);
    ck_assert_int_eq(r[77], 12345);
    ck_assert_int_eq(csp_select(cs, N, CSP_NOWAIT), -EAGAIN);

    for (int thread = 0; thread < 2; thread++) {
        struct one_peer o = { c[32], 999, -1 };
        struct group g = { 0 };
        group_go(&g, thread, send_on, &o);
        r[32] = -1;
        ck_assert_int_eq(csp_select(cs, 40, CSP_FOREVER), 32);
        ck_assert_int_eq(r[32], 999);
        group_wait(&g);
        ck_assert_int_eq(o.rc, 0);
    }
    for (int i = 0; i < N; i++)
        if (i != 77 && i != 32)
            ck_assert_int_eq(r[i], -1);

    enum { T = 6000 };
    csp_chan *full[12];
    for (int k = 0; k < 12; k++) {
        full[k] = csp_chan_make(0, T);
        for (int i = 0; i < T; i++)
            ck_assert_int_eq(csp_send(full[k], NULL), 0);
    }
    long cnt[12] = { 0 };
    for (int i = 0; i < T; i++) {
        csp_case big[24];
        long sink[12];
        for (int k = 0; k < 12; k++) {
            big[2 * k] = CSP_RECV(full[k], NULL);
            big[2 * k + 1] = CSP_RECV(c[2 * k], &sink[k]);   /* unbuffered, idle */
        }
        int k = csp_select(big, 24, i % 2 ? CSP_NOWAIT : CSP_FOREVER);
        ck_assert_int_ge(k, 0);
        ck_assert_int_eq(k % 2, 0);
        cnt[k / 2]++;
    }
    double x = chi_square(cnt, 12);
    ck_assert_msg(x < chi_crit(11), "unfair over 12 ready cases: chi2 %.1f", x);
    for (int k = 0; k < 12; k++)
        csp_chan_release(full[k]);
    for (int i = 0; i < N; i++)
        csp_chan_release(c[i]);
}

START_TEST(test_many_cases)
{
    run_mode(many_cases_body, _i);
}
END_TEST

/* ---- memory model ------------------------------------------------------------------ */

struct mm_sel {
    csp_chan *a, *b;
};

static void mm_sel_consumer(void *p)
{
    struct mm_sel *m = p;
    for (;;) {
        long *q1 = NULL, *q2 = NULL;
        csp_case cs[] = { CSP_RECV(m->a, &q1), CSP_RECV(m->b, &q2) };
        int i = csp_select(cs, 2, CSP_FOREVER);
        ck_assert_int_ge(i, 0);
        if (cs[i].err == EPIPE) {
            long *rest;
            while (csp_try_recv(m->b, &rest) == 0)
                free(rest);
            return;
        }
        long *q = i == 0 ? q1 : q2;
        for (int k = 1; k < 8; k++)
            ck_assert_int_eq(q[k], q[0] + k);
        free(q);
    }
}

/* A select case that fires carries the edge of its send or receive: data
 * written before a pointer is sent through a select send case is visible
 * after a select receive case gets it (ThreadSanitizer checks). */
static void mm_select_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++)
        for (size_t cap = 0; cap < 3; cap += 2) {
            struct mm_sel m = { csp_chan_make(sizeof(long *), cap),
                                csp_chan_make(sizeof(long *), cap) };
            struct group g = { 0 };
            group_go(&g, thread, mm_sel_consumer, &m);
            for (long i = 0; i < 2000; i++) {
                long *q = malloc(8 * sizeof *q);
                for (int k = 0; k < 8; k++)
                    q[k] = i * 10 + k;
                csp_case cs[] = { CSP_SEND(m.a, &q), CSP_SEND(m.b, &q) };
                int k = csp_select(cs, 2, CSP_FOREVER);
                ck_assert_int_ge(k, 0);
                ck_assert_int_eq(cs[k].err, 0);
            }
            ck_assert_int_eq(csp_close(m.a), 0);
            group_wait(&g);
            csp_chan_release(m.a);
            csp_chan_release(m.b);
        }
}

START_TEST(test_mm_select)
{
    run_mode(mm_select_body, _i);
}
END_TEST

static Suite *select_suite(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("semantics");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ready_case_chosen, 0, 2);
    tcase_add_loop_test(tc, test_nothing_ready, 0, 2);
    tcase_add_loop_test(tc, test_null_cases_never_fire, 0, 2);
    tcase_add_loop_test(tc, test_n_zero, 0, 2);
    tcase_add_test(tc, test_select_forever_deadlock);
    tcase_add_test(tc, test_einval);
    tcase_add_loop_test(tc, test_self_select, 0, 2);
    tcase_add_loop_test(tc, test_elem_size_zero, 0, 2);
    tcase_add_test(tc, test_send_copies_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("exactly-one");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_exactly_one_ready, 0, 2);
    tcase_add_loop_test(tc, test_exactly_one_parked, 0, 2);
    tcase_add_loop_test(tc, test_duplicate_cases, 0, 2);
    tcase_add_loop_test(tc, test_many_cases, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("closed");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_closed_cases, 0, 2);
    tcase_add_loop_test(tc, test_close_wakes_select, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("fairness");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fair_with_closed, 0, 2);
    tcase_add_loop_test(tc, test_parked_pair_fair, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("nonblocking");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_two_nowait_never_meet);
    tcase_add_test(tc, test_nowait_linearizable);
    tcase_add_loop_test(tc, test_mm_select, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(select_suite());
}
