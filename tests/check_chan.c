/*
 * check_chan.c - channels: buffered and unbuffered send/receive, close,
 * try/until forms, len/cap, element sizes, reference counts, tasks and
 * plain threads on one channel, and the memory-model edges of API.md.
 *
 * Many tests run twice (a loop test): _i == 0 runs the body as the main
 * task of csp_run, _i == 1 runs it on the test's own plain thread (tasks it
 * starts are then waited for by csp_stop).  No test asserts an upper bound
 * on time; "X did not happen yet" checks only wait, so a slow machine can
 * make them miss a bug but never fail a correct library.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* A passing Check assertion reports its location through a pipe under a
 * global lock (a system call and a lock each time).  In hot loops and in
 * concurrent code that would slow the test down and add synchronisation
 * that hides races from ThreadSanitizer, so passing assertions do nothing
 * here; failing ones still report and end the test. */
#define _mark_point(file, line) ((void)0)

#define MS(x) ((int64_t)(x) * 1000000)

/* ---- helpers ------------------------------------------------------------ */


/* ---- basic FIFO, try/until ---------------------------------------------- */

/* Buffered channels keep FIFO order and report len/cap. */
START_TEST(test_buffered_fifo)
{
    csp_chan *c = csp_chan_make(sizeof(int), 4);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(csp_chan_cap(c), 4);
    ck_assert_uint_eq(csp_chan_elem_size(c), sizeof(int));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(csp_send(c, &i), 0);
    ck_assert_uint_eq(csp_chan_len(c), 4);
    int v = 99;
    ck_assert_int_eq(csp_try_send(c, &v), EAGAIN);
    ck_assert_int_eq(csp_send_until(c, &v, csp_deadline(1000000)), ETIMEDOUT);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(csp_recv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(csp_try_recv(c, &v), EAGAIN);
    ck_assert_int_eq(csp_recv_until(c, &v, 0), EAGAIN);
    ck_assert_int_eq(csp_recv_until(c, &v, 1), ETIMEDOUT);
    csp_chan_release(c);
}
END_TEST

/* FIFO holds across many wrap-arounds of the ring for several capacities. */
START_TEST(test_buffered_fifo_wraps)
{
    static const size_t caps[] = { 1, 2, 3, 5, 8, 17, 64 };
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        csp_chan *c = csp_chan_make(sizeof(long), caps[k]);
        ck_assert_ptr_nonnull(c);
        long next_in = 0, next_out = 0;
        for (int round = 0; round < 200; round++) {
            /* Fill a varying amount, then drain a varying amount. */
            size_t fill = (size_t)(round * 7 + 3) % (caps[k] + 1);
            for (size_t i = 0; i < fill && csp_chan_len(c) < caps[k]; i++, next_in++)
                ck_assert_int_eq(csp_try_send(c, &next_in), 0);
            size_t drain = (size_t)(round * 5 + 1) % (caps[k] + 1);
            for (size_t i = 0; i < drain && next_out < next_in; i++, next_out++) {
                long v = -1;
                ck_assert_int_eq(csp_try_recv(c, &v), 0);
                ck_assert_int_eq(v, next_out);
            }
            ck_assert_uint_eq(csp_chan_len(c), (size_t)(next_in - next_out));
        }
        csp_chan_release(c);
    }
}
END_TEST

/* len and cap: unbuffered len is always 0; buffered len counts values. */
START_TEST(test_len_cap)
{
    static const size_t caps[] = { 0, 1, 7, 1000 };
    static const size_t sizes[] = { 0, 1, 3, 8, 100 };
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 5; j++) {
            csp_chan *c = csp_chan_make(sizes[j], caps[i]);
            ck_assert_ptr_nonnull(c);
            ck_assert_uint_eq(csp_chan_cap(c), caps[i]);
            ck_assert_uint_eq(csp_chan_elem_size(c), sizes[j]);
            ck_assert_uint_eq(csp_chan_len(c), 0);
            unsigned char buf[100] = { 0 };
            for (size_t k = 0; k < caps[i]; k++) {
                ck_assert_int_eq(csp_try_send(c, buf), 0);
                ck_assert_uint_eq(csp_chan_len(c), k + 1);
            }
            ck_assert_int_eq(csp_try_send(c, buf), EAGAIN);
            ck_assert_uint_eq(csp_chan_len(c), caps[i]);
            if (caps[i]) {
                ck_assert_int_eq(csp_try_recv(c, buf), 0);
                ck_assert_uint_eq(csp_chan_len(c), caps[i] - 1);
            }
            ck_assert_int_eq(csp_close(c), 0);
            ck_assert_uint_eq(csp_chan_cap(c), caps[i]);
            ck_assert_uint_eq(csp_chan_len(c), caps[i] ? caps[i] - 1 : 0);
            csp_chan_release(c);
        }
}
END_TEST

/* The error of a call that cannot complete depends only on the deadline
 * value: CSP_NOWAIT gives EAGAIN, any other past deadline ETIMEDOUT. */
static void errors_by_deadline_body(void *arg)
{
    (void)arg;
    const int64_t past[] = { 1, 2, -2, INT64_MIN, csp_now() - 1, csp_now() };
    for (size_t cap = 0; cap < 2; cap++) {
        csp_chan *e = csp_chan_make(sizeof(int), cap); /* empty: recv blocks */
        csp_chan *f = csp_chan_make(sizeof(int), cap); /* full: send blocks */
        int v = 1;
        if (cap)
            ck_assert_int_eq(csp_send(f, &v), 0);
        ck_assert_int_eq(csp_try_recv(e, &v), EAGAIN);
        ck_assert_int_eq(csp_try_send(f, &v), EAGAIN);
        ck_assert_int_eq(csp_recv_until(e, &v, CSP_NOWAIT), EAGAIN);
        ck_assert_int_eq(csp_send_until(f, &v, CSP_NOWAIT), EAGAIN);
        for (size_t k = 0; k < sizeof past / sizeof past[0]; k++) {
            ck_assert_int_eq(csp_recv_until(e, &v, past[k]), ETIMEDOUT);
            ck_assert_int_eq(csp_send_until(f, &v, past[k]), ETIMEDOUT);
        }
        /* A deadline that passes while waiting: ETIMEDOUT, never early. */
        int64_t dl = csp_deadline(MS(5));
        ck_assert_int_eq(csp_recv_until(e, &v, dl), ETIMEDOUT);
        ck_assert_int_ge(csp_now(), dl);
        dl = csp_deadline(MS(5));
        ck_assert_int_eq(csp_send_until(f, &v, dl), ETIMEDOUT);
        ck_assert_int_ge(csp_now(), dl);
        /* A loop that reuses one deadline ends on ETIMEDOUT alone. */
        dl = csp_deadline(MS(2));
        int r;
        while ((r = csp_recv_until(e, &v, dl)) == 0)
            ;
        ck_assert_int_eq(r, ETIMEDOUT);
        ck_assert_int_eq(csp_recv_until(e, &v, dl), ETIMEDOUT);
        /* Nothing was delivered by the failed sends. */
        if (cap) {
            ck_assert_uint_eq(csp_chan_len(f), 1);
            ck_assert_int_eq(csp_try_recv(f, &v), 0);
            ck_assert_int_eq(csp_try_recv(f, &v), EAGAIN);
        }
        csp_chan_release(e);
        csp_chan_release(f);
    }
}

START_TEST(test_errors_by_deadline)
{
    run_mode(errors_by_deadline_body, _i);
}
END_TEST

/* A ready operation succeeds whatever its deadline, past ones included. */
static void ready_past_deadline_body(void *arg)
{
    (void)arg;
    const int64_t dls[] = { CSP_NOWAIT, 1, -2, INT64_MIN, CSP_FOREVER, INT64_MAX };
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    for (size_t k = 0; k < sizeof dls / sizeof dls[0]; k++) {
        int v = (int)k + 10, w = -1;
        ck_assert_int_eq(csp_send_until(c, &v, dls[k]), 0);
        ck_assert_int_eq(csp_recv_until(c, &w, dls[k]), 0);
        ck_assert_int_eq(w, v);
    }
    csp_chan_release(c);
}

START_TEST(test_ready_past_deadline)
{
    run_mode(ready_past_deadline_body, _i);
}
END_TEST

/* ---- rendezvous ------------------------------------------------------------ */

struct rv {
    csp_chan *c;
    atomic_int done;
    int value;
};

static void rv_sender(void *p)
{
    struct rv *r = p;
    int v = r->value;
    ck_assert_int_eq(csp_send(r->c, &v), 0);
    atomic_store(&r->done, 1);
}

static void rv_receiver(void *p)
{
    struct rv *r = p;
    int v = -1;
    ck_assert_int_eq(csp_recv(r->c, &v), 0);
    ck_assert_int_eq(v, r->value);
    atomic_store(&r->done, 1);
}

/* Unbuffered: a send completes only when a receiver takes the value, and a
 * receive only when a sender comes, for task and thread peers alike. */
static void rendezvous_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++) {
        struct group g = { 0 };
        struct rv r = { csp_chan_make(sizeof(int), 0), 0, 4242 };
        group_go(&g, thread, rv_sender, &r);
        csp_sleep(MS(20));
        ck_assert_int_eq(atomic_load(&r.done), 0);      /* still blocked */
        int v = 0;
        ck_assert_int_eq(csp_recv(r.c, &v), 0);
        ck_assert_int_eq(v, 4242);
        group_wait(&g);
        ck_assert_int_eq(atomic_load(&r.done), 1);

        atomic_store(&r.done, 0);
        r.value = 777;
        group_go(&g, thread, rv_receiver, &r);
        csp_sleep(MS(20));
        ck_assert_int_eq(atomic_load(&r.done), 0);
        v = 777;
        ck_assert_int_eq(csp_send(r.c, &v), 0);
        group_wait(&g);
        ck_assert_int_eq(atomic_load(&r.done), 1);
        csp_chan_release(r.c);
    }
}

START_TEST(test_unbuffered_rendezvous)
{
    run_mode(rendezvous_body, _i);
}
END_TEST

/* A send to a full buffered channel blocks until a slot frees. */
static void full_blocks_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++) {
        struct group g = { 0 };
        struct rv r = { csp_chan_make(sizeof(int), 2), 0, 3 };
        int v = 1;
        ck_assert_int_eq(csp_send(r.c, &v), 0);
        v = 2;
        ck_assert_int_eq(csp_send(r.c, &v), 0);
        group_go(&g, thread, rv_sender, &r);
        csp_sleep(MS(20));
        ck_assert_int_eq(atomic_load(&r.done), 0);
        ck_assert_uint_eq(csp_chan_len(r.c), 2);
        for (int i = 1; i <= 3; i++) {
            ck_assert_int_eq(csp_recv(r.c, &v), 0);
            ck_assert_int_eq(v, i);
        }
        group_wait(&g);
        ck_assert_int_eq(atomic_load(&r.done), 1);
        csp_chan_release(r.c);
    }
}

START_TEST(test_full_send_blocks)
{
    run_mode(full_blocks_body, _i);
}
END_TEST

/* A try on an unbuffered channel succeeds when the peer is already parked. */
static void try_meets_parked_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++) {
        struct group g = { 0 };
        struct rv r = { csp_chan_make(sizeof(int), 0), 0, 55 };
        group_go(&g, thread, rv_receiver, &r);
        int v = 55, rc;
        int64_t give_up = csp_deadline(MS(20000));
        while ((rc = csp_try_send(r.c, &v)) == EAGAIN && csp_now() < give_up)
            csp_sleep(MS(1));
        ck_assert_int_eq(rc, 0);
        group_wait(&g);

        atomic_store(&r.done, 0);
        r.value = 66;
        group_go(&g, thread, rv_sender, &r);
        v = 0;
        while ((rc = csp_recv_until(r.c, &v, 1)) == ETIMEDOUT && csp_now() < give_up)
            csp_sleep(MS(1));
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(v, 66);
        group_wait(&g);
        csp_chan_release(r.c);
    }
}

START_TEST(test_try_meets_parked_peer)
{
    run_mode(try_meets_parked_body, _i);
}
END_TEST

/* Unbuffered ping-pong between two tasks delivers every value once. */
static void pinger(void *arg)
{
    csp_chan **ch = arg;
    int v;
    while (csp_recv(ch[0], &v) == 0) {
        v++;
        csp_send(ch[1], &v);
    }
}

static void pingpong_main(void *arg)
{
    (void)arg;
    csp_chan *ch[2] = { csp_chan_make(sizeof(int), 0), csp_chan_make(sizeof(int), 0) };
    struct group g = { 0 };
    group_go(&g, 0, pinger, ch);
    int v = 0;
    for (int i = 0; i < 10000; i++) {
        ck_assert_int_eq(csp_send(ch[0], &v), 0);
        ck_assert_int_eq(csp_recv(ch[1], &v), 0);
    }
    ck_assert_int_eq(v, 10000);
    csp_close(ch[0]);
    group_wait(&g);      /* the pinger's calls have returned */
    csp_chan_release(ch[0]);
    csp_chan_release(ch[1]);
}

START_TEST(test_unbuffered_pingpong)
{
    RUN_MAIN(pingpong_main, NULL);
}
END_TEST

/* ---- FIFO with several senders -------------------------------------------- */

struct fifo_prod {
    csp_chan *c;
    int id, n;
    pthread_mutex_t *mu;
    long *ticket;
};

static void fifo_producer(void *p)
{
    struct fifo_prod *f = p;
    for (int i = 0; i < f->n; i++) {
        long v = ((long)f->id << 32) | i;
        ck_assert_int_eq(csp_send(f->c, &v), 0);
        if (i % 64 == 0)
            csp_yield();
    }
}

/* Per-sender FIFO: with four senders (two tasks, two threads) and a small
 * buffer, each sender's values arrive in the order it sent them. */
static void fifo_per_sender_body(void *arg)
{
    (void)arg;
    enum { P = 4, N = 1500 };
    static const size_t caps[] = { 0, 1, 3, 16 };
    for (size_t k = 0; k < 4; k++) {
        csp_chan *c = csp_chan_make(sizeof(long), caps[k]);
        struct group g = { 0 };
        struct fifo_prod fp[P];
        for (int p = 0; p < P; p++) {
            fp[p] = (struct fifo_prod){ c, p, N, NULL, NULL };
            group_go(&g, p & 1, fifo_producer, &fp[p]);
        }
        int next[P] = { 0 };
        for (int i = 0; i < P * N; i++) {
            long v;
            ck_assert_int_eq(csp_recv(c, &v), 0);
            int id = (int)(v >> 32), seq = (int)(v & 0xffffffff);
            ck_assert_int_ge(id, 0);
            ck_assert_int_lt(id, P);
            ck_assert_int_eq(seq, next[id]);
            next[id]++;
        }
        group_wait(&g);
        ck_assert_int_eq(csp_try_recv(c, &(long){ 0 }), EAGAIN);
        csp_chan_release(c);
    }
}

START_TEST(test_fifo_per_sender)
{
    run_mode(fifo_per_sender_body, _i);
}
END_TEST

static void fifo_ticket_producer(void *p)
{
    struct fifo_prod *f = p;
    for (int i = 0; i < f->n; i++) {
        /* The buffer never fills, so the send completes under the lock:
         * the order of tickets is the order of the sends. */
        pthread_mutex_lock(f->mu);
        long v = (*f->ticket)++;
        int r = csp_send(f->c, &v);
        pthread_mutex_unlock(f->mu);
        ck_assert_int_eq(r, 0);
    }
}

/* Global FIFO: values leave a buffered channel in the order in which the
 * sends took effect, across senders. */
START_TEST(test_fifo_global)
{
    enum { P = 4, N = 3000 };
    csp_chan *c = csp_chan_make(sizeof(long), P * N);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    long ticket = 0;
    struct group g = { 0 };
    struct fifo_prod fp[P];
    for (int p = 0; p < P; p++) {
        fp[p] = (struct fifo_prod){ c, p, N, &mu, &ticket };
        group_go(&g, p & 1, fifo_ticket_producer, &fp[p]);
    }
    for (long i = 0; i < P * N; i++) {
        long v;
        ck_assert_int_eq(csp_recv(c, &v), 0);
        ck_assert_int_eq(v, i);
    }
    group_wait(&g);
    csp_chan_release(c);
    ck_assert_int_eq(csp_stop(), 0);
}
END_TEST

/* ---- close ---------------------------------------------------------------- */

/* After close, buffered values drain, then EPIPE with a zeroed value. */
START_TEST(test_close_drains)
{
    csp_chan *c = csp_chan_make(sizeof(int), 2);
    int v = 7;
    ck_assert_int_eq(csp_send(c, &v), 0);
    ck_assert_int_eq(csp_close(c), 0);
    ck_assert_int_eq(csp_close(c), EPIPE);
    ck_assert_int_eq(csp_send(c, &v), EPIPE);
    v = 0;
    ck_assert_int_eq(csp_recv(c, &v), 0);
    ck_assert_int_eq(v, 7);
    v = 5;
    ck_assert_int_eq(csp_recv(c, &v), EPIPE);
    ck_assert_int_eq(v, 0);
    csp_chan_release(c);
}
END_TEST

/* Every form of send and receive on a closed channel: sends fail with EPIPE
 * (not EAGAIN or ETIMEDOUT, even when the buffer is full), buffered values
 * still come out in order, and then every receive form reports EPIPE and
 * zero-fills the whole element, again and again. */
START_TEST(test_close_all_forms)
{
    struct big { long a[5]; char tail[3]; };
    for (size_t cap = 0; cap < 4; cap++) {
        csp_chan *c = csp_chan_make(sizeof(struct big), cap);
        struct big b;
        for (size_t i = 0; i < cap; i++) {
            memset(&b, (int)(i + 1), sizeof b);
            ck_assert_int_eq(csp_send(c, &b), 0);
        }
        ck_assert_int_eq(csp_close(c), 0);
        ck_assert_int_eq(csp_close(c), EPIPE);
        ck_assert_int_eq(csp_send(c, &b), EPIPE);
        ck_assert_int_eq(csp_try_send(c, &b), EPIPE);
        ck_assert_int_eq(csp_send_until(c, &b, 1), EPIPE);
        ck_assert_int_eq(csp_send_until(c, &b, csp_deadline(MS(1))), EPIPE);
        ck_assert_uint_eq(csp_chan_len(c), cap);
        for (size_t i = 0; i < cap; i++) {
            memset(&b, 0, sizeof b);
            ck_assert_int_eq(i % 2 ? csp_try_recv(c, &b) : csp_recv(c, &b), 0);
            for (size_t j = 0; j < sizeof b; j++)
                ck_assert_int_eq(((unsigned char *)&b)[j], (int)(i + 1));
        }
        for (int round = 0; round < 3; round++) {
            int r[4];
            struct big out[4];
            memset(out, 0xAA, sizeof out);
            r[0] = csp_recv(c, &out[0]);
            r[1] = csp_try_recv(c, &out[1]);
            r[2] = csp_recv_until(c, &out[2], 1);
            r[3] = csp_recv_until(c, &out[3], csp_deadline(MS(50)));
            for (int k = 0; k < 4; k++) {
                ck_assert_int_eq(r[k], EPIPE);
                for (size_t j = 0; j < sizeof out[k]; j++)
                    ck_assert_int_eq(((unsigned char *)&out[k])[j], 0);
            }
        }
        csp_chan_release(c);
    }
}
END_TEST

struct closer_arg {
    csp_chan *c;
    int result;
    unsigned char buf[24];
};

static void blocked_receiver(void *p)
{
    struct closer_arg *a = p;
    memset(a->buf, 0xAA, sizeof a->buf);
    a->result = csp_recv(a->c, a->buf);
}

static void blocked_sender(void *p)
{
    struct closer_arg *a = p;
    memset(a->buf, 0x55, sizeof a->buf);
    a->result = csp_send(a->c, a->buf);
}

/* close wakes every blocked receiver (tasks and threads) with EPIPE and a
 * zero-filled element. */
static void close_wakes_receivers_body(void *arg)
{
    (void)arg;
    enum { N = 8 };
    for (size_t cap = 0; cap < 3; cap++) {
        csp_chan *c = csp_chan_make(24, cap);
        struct closer_arg a[N];
        struct group g = { 0 };
        for (int i = 0; i < N; i++) {
            a[i].c = c;
            a[i].result = -1;
            group_go(&g, i & 1, blocked_receiver, &a[i]);
        }
        csp_sleep(MS(20));
        ck_assert_int_eq(csp_close(c), 0);
        group_wait(&g);
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(a[i].result, EPIPE);
            for (int j = 0; j < 24; j++)
                ck_assert_int_eq(a[i].buf[j], 0);
        }
        csp_chan_release(c);
    }
}

START_TEST(test_close_wakes_receivers)
{
    run_mode(close_wakes_receivers_body, _i);
}
END_TEST

/* close wakes every blocked sender with EPIPE and delivers none of their
 * values: a receiver afterwards gets only what was buffered before. */
static void close_fails_senders_body(void *arg)
{
    (void)arg;
    enum { N = 8 };
    for (size_t cap = 0; cap < 3; cap++) {
        csp_chan *c = csp_chan_make(24, cap);
        unsigned char pre[24];
        for (size_t i = 0; i < cap; i++) {
            memset(pre, (int)(i + 1), sizeof pre);
            ck_assert_int_eq(csp_send(c, pre), 0);
        }
        struct closer_arg a[N];
        struct group g = { 0 };
        for (int i = 0; i < N; i++) {
            a[i].c = c;
            a[i].result = -1;
            group_go(&g, i & 1, blocked_sender, &a[i]);
        }
        csp_sleep(MS(20));
        ck_assert_int_eq(csp_close(c), 0);
        group_wait(&g);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(a[i].result, EPIPE);
        for (size_t i = 0; i < cap; i++) {
            ck_assert_int_eq(csp_recv(c, pre), 0);
            ck_assert_int_eq(pre[0], (int)(i + 1));
            ck_assert_int_eq(pre[23], (int)(i + 1));
        }
        memset(pre, 0x55, sizeof pre);
        ck_assert_int_eq(csp_recv(c, pre), EPIPE);
        ck_assert_int_eq(pre[0], 0);
        csp_chan_release(c);
    }
}

START_TEST(test_close_fails_senders)
{
    run_mode(close_fails_senders_body, _i);
}
END_TEST

struct close_race {
    csp_chan *c;
    atomic_long sent, sent_sum;
};

static void close_race_sender(void *p)
{
    struct close_race *r = p;
    for (long i = 1;; i++) {
        int e = csp_send(r->c, &i);
        if (e == EPIPE)
            return;
        ck_assert_int_eq(e, 0);
        atomic_fetch_add(&r->sent, 1);
        atomic_fetch_add(&r->sent_sum, i);
    }
}

/* close racing senders that are blocked or about to block: every send
 * that returned 0 is received exactly once, the others delivered nothing. */
static void close_race_body(void *arg)
{
    (void)arg;
    for (int round = 0; round < 40; round++) {
        size_t cap = (size_t)round % 4;
        struct close_race r = { csp_chan_make(sizeof(long), cap), 0, 0 };
        struct group g = { 0 };
        for (int i = 0; i < 4; i++)
            group_go(&g, i & 1, close_race_sender, &r);
        long got = 0, sum = 0, v;
        for (int i = 0; i < 50 + round * 10; i++) {
            ck_assert_int_eq(csp_recv(r.c, &v), 0);
            got++;
            sum += v;
        }
        ck_assert_int_eq(csp_close(r.c), 0);
        int e;
        while ((e = csp_recv(r.c, &v)) == 0) {
            got++;
            sum += v;
        }
        ck_assert_int_eq(e, EPIPE);
        group_wait(&g);
        ck_assert_int_eq(got, atomic_load(&r.sent));
        ck_assert_int_eq(sum, atomic_load(&r.sent_sum));
        csp_chan_release(r.c);
    }
}

START_TEST(test_close_races_senders)
{
    run_mode(close_race_body, _i);
}
END_TEST

/* ---- element sizes -------------------------------------------------------- */

/* elem_size 0: a signal channel; elem may be NULL and a non-NULL elem is
 * never written, buffered or not, open or closed. */
static void elem_zero_body(void *arg)
{
    (void)arg;
    for (size_t cap = 0; cap < 4; cap += 3) {
        csp_chan *c = csp_chan_make(0, cap);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(csp_chan_elem_size(c), 0);
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(csp_send(c, NULL), 0);
        ck_assert_uint_eq(csp_chan_len(c), cap);
        ck_assert_int_eq(csp_try_send(c, NULL), EAGAIN);
        int guard = 12345;
        for (size_t i = 0; i < cap; i++)
            ck_assert_int_eq(csp_recv(c, i % 2 ? &guard : NULL), 0);
        ck_assert_int_eq(guard, 12345);
        ck_assert_int_eq(csp_try_recv(c, NULL), EAGAIN);
        /* Through a peer. */
        struct group g = { 0 };
        struct closer_arg a = { .c = c, .result = -1 };
        group_go(&g, 1, blocked_sender, &a);
        ck_assert_int_eq(csp_recv(c, &guard), 0);
        group_wait(&g);
        ck_assert_int_eq(a.result, 0);
        ck_assert_int_eq(guard, 12345);
        ck_assert_int_eq(csp_close(c), 0);
        ck_assert_int_eq(csp_recv(c, NULL), EPIPE);
        ck_assert_int_eq(csp_recv(c, &guard), EPIPE);
        ck_assert_int_eq(guard, 12345);
        ck_assert_int_eq(csp_send(c, NULL), EPIPE);
        csp_chan_release(c);
    }
}

START_TEST(test_elem_size_zero)
{
    run_mode(elem_zero_body, _i);
}
END_TEST

struct big_xfer {
    csp_chan *c;
    size_t size;
    int n;
};

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
}

static void big_sender(void *p)
{
    struct big_xfer *b = p;
    unsigned char *buf = malloc(b->size);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < b->n; i++) {
        fill_pattern(buf, b->size, (unsigned)i);
        ck_assert_int_eq(csp_send(b->c, buf), 0);
    }
    free(buf);
}

/* Elements of odd and large sizes are copied byte for byte, buffered and
 * unbuffered, between tasks and threads (the buffers live on the heap:
 * task stacks are small). */
static void big_elems_body(void *arg)
{
    (void)arg;
    static const size_t sizes[] = { 1, 3, 7, 13, 64, 4095, 65536 + 5, (size_t)1 << 20 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (size_t cap = 0; cap < 4; cap += 3)
            for (int thread = 0; thread < 2; thread++) {
                struct big_xfer b = { csp_chan_make(sizes[k], cap), sizes[k], 6 };
                ck_assert_ptr_nonnull(b.c);
                struct group g = { 0 };
                group_go(&g, thread, big_sender, &b);
                unsigned char *got = malloc(sizes[k]), *want = malloc(sizes[k]);
                for (int i = 0; i < b.n; i++) {
                    ck_assert_int_eq(csp_recv(b.c, got), 0);
                    fill_pattern(want, sizes[k], (unsigned)i);
                    ck_assert(memcmp(got, want, sizes[k]) == 0);
                }
                group_wait(&g);
                ck_assert_int_eq(csp_close(b.c), 0);
                memset(got, 0x77, sizes[k]);
                ck_assert_int_eq(csp_recv(b.c, got), EPIPE);
                memset(want, 0, sizes[k]);
                ck_assert(memcmp(got, want, sizes[k]) == 0);
                free(got);
                free(want);
                csp_chan_release(b.c);
            }
}

START_TEST(test_large_elems)
{
    run_mode(big_elems_body, _i);
}
END_TEST

/* ---- references ------------------------------------------------------------- */

struct reply_req {
    csp_chan *reply;   /* the server holds its own reference */
    int x;
};

static void server(void *p)
{
    csp_chan *reqs = p;
    struct reply_req r;
    while (csp_recv(reqs, &r) == 0) {
        int y = r.x * 2;
        ck_assert_int_eq(csp_send(r.reply, &y), 0);
        csp_chan_release(r.reply);       /* after its last call */
    }
    csp_chan_release(reqs);
}

/* The retain/release idiom: a reply channel handed to a server with its
 * own reference may be released by either side first; the channel lives
 * until the last release (ASan catches a use after free). */
static void retain_body(void *arg)
{
    (void)arg;
    csp_chan *reqs = csp_chan_make(sizeof(struct reply_req), 0);
    ck_assert_ptr_eq(csp_chan_retain(reqs), reqs);
    ck_assert_int_eq(csp_go(server, reqs), 0);
    for (int i = 0; i < 200; i++) {
        csp_chan *reply = csp_chan_make(sizeof(int), (size_t)i % 2);
        struct reply_req r = { csp_chan_retain(reply), i };
        ck_assert_int_eq(csp_send(reqs, &r), 0);
        int y = -1;
        ck_assert_int_eq(csp_recv(reply, &y), 0);
        ck_assert_int_eq(y, 2 * i);
        csp_chan_release(reply);         /* maybe before the server's */
    }
    ck_assert_int_eq(csp_close(reqs), 0);
    csp_chan_release(reqs);
    /* Many references, released in any order. */
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    for (int i = 0; i < 100; i++)
        ck_assert_ptr_eq(csp_chan_retain(c), c);
    for (int i = 0; i < 100; i++) {
        int v = i;
        ck_assert_int_eq(csp_send(c, &v), 0);
        ck_assert_int_eq(csp_recv(c, &v), 0);
        csp_chan_release(c);
    }
    ck_assert_uint_eq(csp_chan_cap(c), 1);
    csp_chan_release(c);
    csp_chan_release(NULL);
}

START_TEST(test_retain_release)
{
    run_mode(retain_body, _i);
}
END_TEST

static void *release_victim(void *p)
{
    int v;
    csp_recv(p, &v);   /* never returns: the channel is released under it */
    return NULL;
}

/* Releasing the last reference while a thread is blocked on the channel
 * is detected: the process aborts with a message. */
START_TEST(test_release_while_blocked_aborts)
{
    csp_chan *c = csp_chan_make(sizeof(int), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_victim, c), 0);
    struct timespec ts = { 0, 50 * 1000000 };
    nanosleep(&ts, NULL);
    csp_chan_release(c);
    /* Not reached. */
}
END_TEST

/* Bad arguments are reported, never crash. */
START_TEST(test_bad_args)
{
    int v = 0;
    ck_assert_int_eq(csp_send(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_recv(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_try_send(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_try_recv(NULL, &v), EINVAL);
    ck_assert_int_eq(csp_send_until(NULL, &v, 1), EINVAL);
    ck_assert_int_eq(csp_recv_until(NULL, &v, CSP_NOWAIT), EINVAL);
    ck_assert_int_eq(csp_close(NULL), EINVAL);
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    ck_assert_int_eq(csp_send(c, NULL), EINVAL);
    ck_assert_int_eq(csp_try_send(c, NULL), EINVAL);
    ck_assert_uint_eq(csp_chan_len(c), 0);
    ck_assert_int_eq(csp_send(c, &v), 0);
    ck_assert_int_eq(csp_recv(c, NULL), EINVAL);
    ck_assert_int_eq(csp_try_recv(c, NULL), EINVAL);
    ck_assert_uint_eq(csp_chan_len(c), 1);    /* nothing consumed */
    csp_chan_release(c);
    csp_chan_release(NULL);
    csp_chan *z = csp_chan_make(0, 1);
    ck_assert_int_eq(csp_send(z, NULL), 0);
    ck_assert_int_eq(csp_recv(z, NULL), 0);
    csp_chan_release(z);
    /* Sizes out of range: NULL with errno EINVAL or ENOMEM, no crash. */
    const size_t bad[][2] = { { SIZE_MAX, 0 }, { SIZE_MAX, 1 }, { 8, SIZE_MAX },
                              { SIZE_MAX / 2, 4 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_ptr_null(csp_chan_make(bad[i][0], bad[i][1]));
        ck_assert(errno == EINVAL || errno == ENOMEM);
    }
}
END_TEST

/* ---- tasks and threads ------------------------------------------------------- */

struct mix {
    csp_chan *c;
    int n;
    atomic_long sum, count;
};

static void mix_producer(void *p)
{
    struct mix *m = p;
    for (int i = 1; i <= m->n; i++)
        ck_assert_int_eq(csp_send(m->c, &i), 0);
}

static void mix_consumer(void *p)
{
    struct mix *m = p;
    int v;
    long s = 0, n = 0;
    while (csp_recv(m->c, &v) == 0) {
        s += v;
        n++;
    }
    atomic_fetch_add(&m->sum, s);
    atomic_fetch_add(&m->count, n);
}

/* Tasks and plain threads send and receive on one channel together
 * (unbuffered and buffered); every value arrives once. */
static void mixed_body(void *arg)
{
    (void)arg;
    enum { N = 3000 };
    for (size_t cap = 0; cap < 10; cap += 3) {
        struct mix m = { csp_chan_make(sizeof(int), cap), N, 0, 0 };
        struct group prod = { 0 }, cons = { 0 };
        for (int i = 0; i < 4; i++) {
            group_go(&prod, i & 1, mix_producer, &m);
            group_go(&cons, i & 1, mix_consumer, &m);
        }
        group_wait(&prod);
        ck_assert_int_eq(csp_close(m.c), 0);
        group_wait(&cons);
        ck_assert_int_eq(atomic_load(&m.count), 4L * N);
        ck_assert_int_eq(atomic_load(&m.sum), 4L * N * (N + 1) / 2);
        csp_chan_release(m.c);
    }
}

START_TEST(test_tasks_and_threads_mixed)
{
    run_mode(mixed_body, _i);
}
END_TEST

/* ---- memory model ------------------------------------------------------------ */
/* These pass data through plain (non-atomic) memory and rely on the
 * channel alone for ordering; ThreadSanitizer reports a race if the
 * library does not provide the edge. */

struct payload {
    long words[16];
};

static void mm_consumer(void *p)
{
    csp_chan *c = p;
    struct payload *q;
    while (csp_recv(c, &q) == 0) {
        for (int i = 0; i < 16; i++)
            ck_assert_int_eq(q->words[i], q->words[0] + i);
        free(q);
    }
}

/* A send happens before the matching receive completes: data written
 * before a pointer is sent is seen by its receiver. */
static void mm_send_body(void *arg)
{
    (void)arg;
    for (size_t cap = 0; cap < 5; cap += 4)
        for (int thread = 0; thread < 2; thread++) {
            csp_chan *c = csp_chan_make(sizeof(struct payload *), cap);
            struct group g = { 0 };
            group_go(&g, thread, mm_consumer, c);
            for (long i = 0; i < 2000; i++) {
                struct payload *q = malloc(sizeof *q);
                for (int k = 0; k < 16; k++)
                    q->words[k] = i * 100 + k;
                ck_assert_int_eq(csp_send(c, &q), 0);
            }
            ck_assert_int_eq(csp_close(c), 0);
            group_wait(&g);
            csp_chan_release(c);
        }
}

START_TEST(test_mm_send_before_recv)
{
    run_mode(mm_send_body, _i);
}
END_TEST

struct mm_sync {
    csp_chan *c;
    long data;
};

static void mm_unbuf_receiver(void *p)
{
    struct mm_sync *m = p;
    for (long i = 0; i < 1000; i++) {
        m->data = i;                       /* written before the receive */
        ck_assert_int_eq(csp_recv(m->c, NULL), 0);
        ck_assert_int_eq(csp_recv(m->c, NULL), 0);
    }
}

/* A receive from an unbuffered channel happens before the matching send
 * completes: the sender sees what the receiver wrote before receiving. */
static void mm_unbuf_body(void *arg)
{
    (void)arg;
    for (int thread = 0; thread < 2; thread++) {
        struct mm_sync m = { csp_chan_make(0, 0), -1 };
        struct group g = { 0 };
        group_go(&g, thread, mm_unbuf_receiver, &m);
        for (long i = 0; i < 1000; i++) {
            ck_assert_int_eq(csp_send(m.c, NULL), 0);
            ck_assert_int_eq(m.data, i);
            /* The second rendezvous keeps the receiver from writing the
             * next value before we have read this one. */
            ck_assert_int_eq(csp_send(m.c, NULL), 0);
        }
        group_wait(&g);
        csp_chan_release(m.c);
    }
}

START_TEST(test_mm_unbuffered_recv_before_send)
{
    run_mode(mm_unbuf_body, _i);
}
END_TEST

struct mm_sem {
    csp_chan *sem;
    long counter;       /* plain memory guarded by the channel */
    long per;
};

static void mm_sem_worker(void *p)
{
    struct mm_sem *s = p;
    for (long i = 0; i < s->per; i++) {
        ck_assert_int_eq(csp_send(s->sem, NULL), 0);  /* acquire */
        s->counter++;
        ck_assert_int_eq(csp_recv(s->sem, NULL), 0);  /* release */
    }
}

/* The k-th receive on a channel of capacity C happens before the (k+C)-th
 * send completes: a capacity-1 channel works as a mutex. */
static void mm_sem_body(void *arg)
{
    (void)arg;
    struct mm_sem s = { csp_chan_make(0, 1), 0, 2000 };
    struct group g = { 0 };
    for (int i = 0; i < 4; i++)
        group_go(&g, i & 1, mm_sem_worker, &s);
    group_wait(&g);
    ck_assert_int_eq(s.counter, 4 * 2000);
    csp_chan_release(s.sem);
}

START_TEST(test_mm_buffered_semaphore)
{
    run_mode(mm_sem_body, _i);
}
END_TEST

struct mm_close {
    csp_chan *c;
    long data[8];
};

static void mm_close_waiter(void *p)
{
    struct mm_close *m = p;
    ck_assert_int_eq(csp_recv(m->c, NULL), EPIPE);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(m->data[i], 1000 + i);
}

/* Closing a channel happens before a receive that returns EPIPE because
 * of it, for waiters already parked and for later receivers. */
static void mm_close_body(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++) {
        struct mm_close m = { .c = csp_chan_make(0, (size_t)round % 2) };
        struct group g = { 0 };
        for (int i = 0; i < 4; i++)
            group_go(&g, i & 1, mm_close_waiter, &m);
        for (int i = 0; i < 8; i++)
            m.data[i] = 1000 + i;
        ck_assert_int_eq(csp_close(m.c), 0);
        group_wait(&g);
        csp_chan_release(m.c);
    }
}

START_TEST(test_mm_close_before_epipe)
{
    run_mode(mm_close_body, _i);
}
END_TEST

/* csp_go happens before the task starts; a task's return happens before
 * csp_stop returns. */
static void mm_go_task(void *p)
{
    long *x = p;
    ck_assert_int_eq(x[0], 17);
    x[1] = 34;
}

START_TEST(test_mm_go_and_stop)
{
    long x[64][2];
    for (int i = 0; i < 64; i++) {
        x[i][0] = 17;
        x[i][1] = 0;
        ck_assert_int_eq(csp_go(mm_go_task, x[i]), 0);
    }
    ck_assert_int_eq(csp_stop(), 0);
    for (int i = 0; i < 64; i++)
        ck_assert_int_eq(x[i][1], 34);
}
END_TEST

static Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_buffered_fifo);
    tcase_add_test(tc, test_buffered_fifo_wraps);
    tcase_add_test(tc, test_len_cap);
    tcase_add_loop_test(tc, test_errors_by_deadline, 0, 2);
    tcase_add_loop_test(tc, test_ready_past_deadline, 0, 2);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test_raise_signal(tc, test_release_while_blocked_aborts, SIGABRT);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocking");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_unbuffered_rendezvous, 0, 2);
    tcase_add_loop_test(tc, test_full_send_blocks, 0, 2);
    tcase_add_loop_test(tc, test_try_meets_parked_peer, 0, 2);
    tcase_add_test(tc, test_unbuffered_pingpong);
    tcase_add_loop_test(tc, test_fifo_per_sender, 0, 2);
    tcase_add_test(tc, test_fifo_global);
    tcase_add_loop_test(tc, test_tasks_and_threads_mixed, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("close");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_close_drains);
    tcase_add_test(tc, test_close_all_forms);
    tcase_add_loop_test(tc, test_close_wakes_receivers, 0, 2);
    tcase_add_loop_test(tc, test_close_fails_senders, 0, 2);
    tcase_add_loop_test(tc, test_close_races_senders, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("elements");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_elem_size_zero, 0, 2);
    tcase_add_loop_test(tc, test_large_elems, 0, 2);
    tcase_add_loop_test(tc, test_retain_release, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory-model");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_mm_send_before_recv, 0, 2);
    tcase_add_loop_test(tc, test_mm_unbuffered_recv_before_send, 0, 2);
    tcase_add_loop_test(tc, test_mm_buffered_semaphore, 0, 2);
    tcase_add_loop_test(tc, test_mm_close_before_epipe, 0, 2);
    tcase_add_test(tc, test_mm_go_and_stop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(chan_suite());
}
