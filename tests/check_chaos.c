/*
 * check_chaos.c - short scenarios for the slow paths, built to be run under
 * many chaos seeds.
 *
 * `make check` runs this suite once, like any other.  `make check-chaos`
 * builds the library with --enable-chaos (random yields and spins before
 * and after every step of registration, claim, wake, close, steal and park;
 * a random choice of which idle worker wakes and of where a woken task is
 * queued) and runs this suite under CHAOS_SEEDS seeds (200 by default), one
 * process per seed, so each scenario meets 200 families of interleavings.
 * A failure prints the seed; `CSP_CHAOS_SEED=<seed> tests/check_chaos`
 * replays its family.
 *
 * Each scenario is small (tens of milliseconds without chaos) and checks
 * its complete result, not just that it finished: every value delivered
 * exactly once (count, sum and xor), per-producer order where the contract
 * promises it, both sides of a timed-out rendezvous agreeing, counters
 * under locks exact.  Tasks and plain threads are mixed wherever the
 * contract lets them meet, since the two park differently.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define MS 1000000LL

/* More workers than cores: more preemption points between workers. */
static void start3(void)
{
    csp_config cfg = { 3, 0, 0 };
    ck_assert_int_eq(csp_start(&cfg), 0);
}

static void finish(void)
{
    ck_assert_int_eq(csp_stop(), 0);
}

/* A value names its producer and its sequence number, so a consumer can
 * check per-producer order and the totals can be checked exactly. */
static uint64_t val(int producer, int seq)
{
    return ((uint64_t)(producer + 1) << 32) | (uint32_t)seq;
}

struct tally {
    _Atomic uint64_t count, sum, xor_;
};

static void tally_add(struct tally *t, uint64_t v)
{
    atomic_fetch_add(&t->count, 1);
    atomic_fetch_add(&t->sum, v);
    atomic_fetch_xor(&t->xor_, v);
}

static void tally_expect(struct tally *got, struct tally *want)
{
    ck_assert_uint_eq(atomic_load(&got->count), atomic_load(&want->count));
    ck_assert_uint_eq(atomic_load(&got->sum), atomic_load(&want->sum));
    ck_assert_uint_eq(atomic_load(&got->xor_), atomic_load(&want->xor_));
}

/* ---- many producers, many consumers on one channel ----------------------- */

enum { NPROD = 4, NCONS = 4, PER_PROD = 300 };

struct mpmc {
    csp_chan *c;
    struct tally sent, got;
    csp_waitgroup producers;
    _Atomic int next_id;
};

static void mpmc_producer(void *arg)
{
    struct mpmc *m = arg;
    int id = atomic_fetch_add(&m->next_id, 1);
    for (int i = 0; i < PER_PROD; i++) {
        uint64_t v = val(id, i);
        ck_assert_int_eq(csp_send(m->c, &v), 0);
        tally_add(&m->sent, v);
    }
    csp_wg_done(&m->producers);
}

static void mpmc_consumer(void *arg)
{
    struct mpmc *m = arg;
    int last[NPROD];
    for (int i = 0; i < NPROD; i++)
        last[i] = -1;
    uint64_t v;
    while (csp_recv(m->c, &v) == 0) {
        int p = (int)(v >> 32) - 1;
        int seq = (int)(uint32_t)v;
        ck_assert(p >= 0 && p < NPROD);
        /* One consumer sees each producer's values in the order sent. */
        ck_assert_int_gt(seq, last[p]);
        last[p] = seq;
        tally_add(&m->got, v);
    }
}

static void mpmc_closer(void *arg)
{
    struct mpmc *m = arg;
    ck_assert_int_eq(csp_wg_wait(&m->producers), 0);
    ck_assert_int_eq(csp_close(m->c), 0);
}

static void mpmc_run(size_t cap)
{
    start3();
    struct mpmc m = { .c = csp_chan_make(sizeof(uint64_t), cap) };
    struct group g = { 0 };
    csp_wg_add(&m.producers, NPROD);
    /* Half tasks, half plain threads, on both sides. */
    for (int i = 0; i < NPROD; i++)
        group_go(&g, i % 2, mpmc_producer, &m);
    for (int i = 0; i < NCONS; i++)
        group_go(&g, (i + 1) % 2, mpmc_consumer, &m);
    group_go(&g, 0, mpmc_closer, &m);
    group_wait(&g);
    ck_assert_uint_eq(atomic_load(&m.sent.count), NPROD * PER_PROD);
    tally_expect(&m.got, &m.sent);
    csp_chan_release(m.c);
    finish();
}

/* Unbuffered: every transfer is a direct hand-off between a parked party
 * and the arriving one. */
START_TEST(mpmc_unbuffered)
{
    mpmc_run(0);
}
END_TEST

/* Capacity 1: the ring is full or empty after nearly every operation, so
 * most operations take the register/re-check/park path. */
START_TEST(mpmc_cap1)
{
    mpmc_run(1);
}
END_TEST

/* Capacity 3: wrap-around of the ring under contention. */
START_TEST(mpmc_cap3)
{
    mpmc_run(3);
}
END_TEST

/* ---- close against blocked parties --------------------------------------- */

struct closing {
    csp_chan *c;
    struct tally sent, got;
    _Atomic int send_epipe, recv_closed;
    _Atomic int next_id;
};

static void closing_sender(void *arg)
{
    struct closing *s = arg;
    int id = atomic_fetch_add(&s->next_id, 1);
    for (int i = 0;; i++) {
        uint64_t v = val(id, i);
        int r = csp_send(s->c, &v);
        if (r == EPIPE) {
            atomic_fetch_add(&s->send_epipe, 1);
            return;
        }
        ck_assert_int_eq(r, 0);
        tally_add(&s->sent, v);
    }
}

static void closing_receiver(void *arg)
{
    struct closing *s = arg;
    uint64_t v;
    int r;
    while ((r = csp_recv(s->c, &v)) == 0)
        tally_add(&s->got, v);
    ck_assert_int_eq(r, EPIPE);
    atomic_fetch_add(&s->recv_closed, 1);
}

/* Closing a channel in mid-traffic wakes every blocked sender with EPIPE
 * (its value not delivered) and every receiver once the buffer is empty;
 * each value whose send returned 0 is received exactly once. */
static void closing_run(size_t cap)
{
    start3();
    struct closing s = { .c = csp_chan_make(sizeof(uint64_t), cap) };
    struct group g = { 0 };
    for (int i = 0; i < 3; i++)
        group_go(&g, i == 2, closing_sender, &s);
    for (int i = 0; i < 2; i++)
        group_go(&g, i == 1, closing_receiver, &s);
    csp_sleep(2 * MS);
    ck_assert_int_eq(csp_close(s.c), 0);
    ck_assert_int_eq(csp_close(s.c), EPIPE);
    group_wait(&g);
    ck_assert_int_eq(atomic_load(&s.send_epipe), 3);
    ck_assert_int_eq(atomic_load(&s.recv_closed), 2);
    tally_expect(&s.got, &s.sent);
    csp_chan_release(s.c);
    finish();
}

START_TEST(close_midflight_unbuffered)
{
    closing_run(0);
}
END_TEST

START_TEST(close_midflight_cap2)
{
    closing_run(2);
}
END_TEST

/* ---- select ------------------------------------------------------------------ */

enum { NSEL = 4, PER_SEL = 200 };

struct fanin {
    csp_chan *in[NSEL];
    struct tally sent, got;
};

struct fanin_prod {
    struct fanin *f;
    int id;
};

static void fanin_producer(void *arg)
{
    struct fanin_prod *p = arg;
    for (int i = 0; i < PER_SEL; i++) {
        uint64_t v = val(p->id, i);
        ck_assert_int_eq(csp_send(p->f->in[p->id], &v), 0);
        tally_add(&p->f->sent, v);
    }
    ck_assert_int_eq(csp_close(p->f->in[p->id]), 0);
}

static void fanin_consumer(void *arg)
{
    struct fanin *f = arg;
    uint64_t v[NSEL];
    int open = NSEL, last[NSEL];
    csp_case k[NSEL];
    for (int i = 0; i < NSEL; i++) {
        k[i] = CSP_RECV(f->in[i], &v[i]);
        last[i] = -1;
    }
    while (open) {
        int i = csp_select(k, NSEL, CSP_FOREVER);
        ck_assert(i >= 0 && i < NSEL);
        if (k[i].err == EPIPE) {
            k[i].chan = NULL;       /* a closed input never fires again */
            open--;
            continue;
        }
        ck_assert_int_eq(k[i].err, 0);
        ck_assert_int_eq((int)(v[i] >> 32) - 1, i);
        ck_assert_int_gt((int)(uint32_t)v[i], last[i]);
        last[i] = (int)(uint32_t)v[i];
        tally_add(&f->got, v[i]);
    }
}

/* One select collects from four channels of mixed capacity while their
 * producers close them: every value arrives once and in order per input,
 * and each close is seen exactly once. */
START_TEST(select_fanin)
{
    start3();
    struct fanin f;
    memset(&f, 0, sizeof f);
    for (int i = 0; i < NSEL; i++)
        f.in[i] = csp_chan_make(sizeof(uint64_t), (size_t)(i % 3));
    struct group g = { 0 };
    struct fanin_prod p[NSEL];
    for (int i = 0; i < NSEL; i++) {
        p[i] = (struct fanin_prod){ &f, i };
        group_go(&g, i == 3, fanin_producer, &p[i]);
    }
    group_go(&g, 0, fanin_consumer, &f);
    group_wait(&g);
    ck_assert_uint_eq(atomic_load(&f.got.count), NSEL * PER_SEL);
    tally_expect(&f.got, &f.sent);
    for (int i = 0; i < NSEL; i++)
        csp_chan_release(f.in[i]);
    finish();
}
END_TEST

enum { MIXED_TARGET = 600 };

struct mixed {
    csp_chan *a, *b;
    struct tally sent, got;
    _Atomic int next_id;
};

/* Each party offers to send on one channel and to receive on the other in
 * a single select: parties meet each other in both directions, and a
 * select can meet another select.  Nobody leaves before MIXED_TARGET
 * values have moved, so every party always has partners on both sides. */
static void mixed_party(void *arg)
{
    struct mixed *m = arg;
    int id = atomic_fetch_add(&m->next_id, 1);
    int seq = 0;
    uint64_t out = val(id, seq), in;
    csp_chan *tx = id % 2 ? m->a : m->b, *rx = id % 2 ? m->b : m->a;
    while (atomic_load(&m->sent.count) < MIXED_TARGET) {
        csp_case k[2] = { CSP_SEND(tx, &out), CSP_RECV(rx, &in) };
        int i = csp_select(k, 2, csp_deadline(2 * MS));
        if (i < 0) {
            ck_assert_int_eq(i, -ETIMEDOUT);
            continue;
        }
        ck_assert_int_eq(k[i].err, 0);
        if (i == 0) {
            tally_add(&m->sent, out);
            out = val(id, ++seq);
        } else {
            tally_add(&m->got, in);
        }
    }
}

static void mixed_run(size_t cap)
{
    start3();
    struct mixed m = { .a = csp_chan_make(sizeof(uint64_t), cap),
                       .b = csp_chan_make(sizeof(uint64_t), cap) };
    struct group g = { 0 };
    for (int i = 0; i < 6; i++)
        group_go(&g, i >= 4, mixed_party, &m);
    group_wait(&g);
    /* What is still buffered was sent and not yet received. */
    uint64_t v;
    while (csp_try_recv(m.a, &v) == 0 || csp_try_recv(m.b, &v) == 0)
        tally_add(&m.got, v);
    tally_expect(&m.got, &m.sent);
    csp_chan_release(m.a);
    csp_chan_release(m.b);
    finish();
}

START_TEST(select_send_recv_unbuffered)
{
    mixed_run(0);
}
END_TEST

START_TEST(select_send_recv_cap1)
{
    mixed_run(1);
}
END_TEST

/* ---- timeouts racing with a rendezvous ----------------------------------- */

enum { RACES = 60 };

struct race {
    csp_chan *c;
    _Atomic int sent_ok[RACES], got_ok[RACES];
};

static void race_sender(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACES; i++) {
        uint64_t v = (uint64_t)i;
        int e = csp_send_until(r->c, &v, csp_deadline((i % 5) * 100000));
        ck_assert(e == 0 || e == ETIMEDOUT);
        atomic_store(&r->sent_ok[i], e == 0);
        /* Rounds stay apart: both sides finish round i before i+1. */
        while (atomic_load(&r->got_ok[i]) == -1)
            csp_yield();
    }
}

static void race_receiver(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACES; i++) {
        uint64_t v = 0;
        csp_case k[1] = { CSP_RECV(r->c, &v) };
        int e = csp_select(k, 1, csp_deadline((i % 7) * 70000));
        if (e == 0)
            ck_assert_uint_eq(v, (uint64_t)i);
        atomic_store(&r->got_ok[i], e == 0);
        while (atomic_load(&r->sent_ok[i]) == -1)
            csp_yield();
    }
}

/* An unbuffered send with a deadline against a select with a deadline:
 * the hand-off happens on both sides or on neither.  A timeout that fires
 * while the other side is completing must not leave one side believing the
 * value moved. */
START_TEST(rendezvous_vs_timeout)
{
    start3();
    struct race r = { .c = csp_chan_make(sizeof(uint64_t), 0) };
    for (int i = 0; i < RACES; i++) {
        atomic_store(&r.sent_ok[i], -1);
        atomic_store(&r.got_ok[i], -1);
    }
    struct group g = { 0 };
    group_go(&g, 0, race_sender, &r);
    group_go(&g, 1, race_receiver, &r);
    group_wait(&g);
    int met = 0;
    for (int i = 0; i < RACES; i++) {
        ck_assert_msg(atomic_load(&r.sent_ok[i]) == atomic_load(&r.got_ok[i]),
                      "round %d: sender %d, receiver %d", i, atomic_load(&r.sent_ok[i]),
                      atomic_load(&r.got_ok[i]));
        met += atomic_load(&r.sent_ok[i]);
    }
    (void)met;      /* how many met is up to the schedule */
    uint64_t v;
    ck_assert_int_eq(csp_try_recv(r.c, &v), EAGAIN);
    csp_chan_release(r.c);
    finish();
}
END_TEST

/* ---- locks and the other sync primitives --------------------------------- */

struct locked {
    csp_mutex mu;
    csp_rwlock rw;
    uint64_t a, b;            /* a == b whenever no writer holds rw */
    uint64_t counter;         /* under mu */
    _Atomic int bad_reads;
};

static void mutex_adder(void *arg)
{
    struct locked *l = arg;
    for (int i = 0; i < 400; i++) {
        ck_assert_int_eq(csp_mutex_lock(&l->mu), 0);
        uint64_t c = l->counter;
        if (i % 50 == 0)
            csp_yield();        /* hold the lock across a yield sometimes */
        l->counter = c + 1;
        ck_assert_int_eq(csp_mutex_unlock(&l->mu), 0);
    }
}

/* Tasks and plain threads incrementing under one mutex lose no update,
 * also when a holder yields and waiters park, hand off and spin. */
START_TEST(mutex_counter)
{
    start3();
    struct locked l = { 0 };
    struct group g = { 0 };
    for (int i = 0; i < 6; i++)
        group_go(&g, i >= 4, mutex_adder, &l);
    group_wait(&g);
    ck_assert_uint_eq(l.counter, 6 * 400);
    ck_assert_int_eq(csp_mutex_trylock(&l.mu), 0);
    ck_assert_int_eq(csp_mutex_unlock(&l.mu), 0);
    finish();
}
END_TEST

static void rw_writer(void *arg)
{
    struct locked *l = arg;
    for (int i = 0; i < 150; i++) {
        ck_assert_int_eq(csp_rwlock_wrlock(&l->rw), 0);
        l->a++;
        if (i % 16 == 0)
            csp_yield();
        l->b++;
        ck_assert_int_eq(csp_rwlock_wrunlock(&l->rw), 0);
    }
}

static void rw_reader(void *arg)
{
    struct locked *l = arg;
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(csp_rwlock_rdlock(&l->rw), 0);
        if (l->a != l->b)
            atomic_fetch_add(&l->bad_reads, 1);
        if (i % 32 == 0)
            csp_yield();
        ck_assert_int_eq(csp_rwlock_rdunlock(&l->rw), 0);
    }
}

/* Readers never see a writer's half-done update; writers lose nothing. */
START_TEST(rwlock_consistency)
{
    start3();
    struct locked l = { 0 };
    struct group g = { 0 };
    for (int i = 0; i < 2; i++)
        group_go(&g, i == 1, rw_writer, &l);
    for (int i = 0; i < 4; i++)
        group_go(&g, i == 3, rw_reader, &l);
    group_wait(&g);
    ck_assert_int_eq(atomic_load(&l.bad_reads), 0);
    ck_assert_uint_eq(l.a, 2 * 150);
    ck_assert_uint_eq(l.b, 2 * 150);
    ck_assert_int_eq(csp_rwlock_trywrlock(&l.rw), 0);
    ck_assert_int_eq(csp_rwlock_wrunlock(&l.rw), 0);
    finish();
}
END_TEST

struct phases {
    csp_waitgroup wg;
    _Atomic int arrived[20];
};

struct phase_worker {
    struct phases *p;
    int round;
};

static void phase_task(void *arg)
{
    struct phase_worker *w = arg;
    atomic_fetch_add(&w->p->arrived[w->round], 1);
    csp_wg_done(&w->p->wg);
}

/* A WaitGroup reused for 20 rounds: Wait returns only after all of its
 * round's Done calls, never early because of a previous round. */
START_TEST(waitgroup_rounds)
{
    start3();
    struct phases p;
    memset(&p, 0, sizeof p);
    for (int r = 0; r < 20; r++) {
        csp_wg_add(&p.wg, 8);
        for (int i = 0; i < 8; i++) {
            struct phase_worker w = { &p, r };
            ck_assert_int_eq(csp_go_copy(phase_task, &w, sizeof w), 0);
        }
        ck_assert_int_eq(csp_wg_wait(&p.wg), 0);
        ck_assert_int_eq(atomic_load(&p.arrived[r]), 8);
    }
    finish();
}
END_TEST

struct onceful {
    csp_once once;
    _Atomic int runs;
    int value;              /* written inside the once, read after it */
    _Atomic int bad;
};

static void once_body(void *arg)
{
    struct onceful *o = arg;
    atomic_fetch_add(&o->runs, 1);
    csp_yield();
    o->value = 42;
}

static void once_caller(void *arg)
{
    struct onceful *o = arg;
    ck_assert_int_eq(csp_once_do(&o->once, once_body, o), 0);
    if (o->value != 42)
        atomic_fetch_add(&o->bad, 1);
}

/* Many callers race into one Once: the body runs once and every caller,
 * parked or not, sees what it wrote. */
START_TEST(once_race)
{
    start3();
    for (int round = 0; round < 10; round++) {
        struct onceful o = { 0 };
        struct group g = { 0 };
        for (int i = 0; i < 6; i++)
            group_go(&g, i == 5, once_caller, &o);
        group_wait(&g);
        ck_assert_int_eq(atomic_load(&o.runs), 1);
        ck_assert_int_eq(atomic_load(&o.bad), 0);
    }
    finish();
}
END_TEST

/* ---- contexts ------------------------------------------------------------- */

struct ctxwait {
    csp_ctx *ctx;
    _Atomic int woke;
};

static void ctx_waiter(void *arg)
{
    struct ctxwait *c = arg;
    uint64_t never;
    csp_chan *idle = csp_chan_make(sizeof never, 0);
    csp_case k[2] = { CSP_RECV(csp_ctx_done(c->ctx), NULL), CSP_RECV(idle, &never) };
    ck_assert_int_eq(csp_select(k, 2, CSP_FOREVER), 0);
    ck_assert_int_eq(csp_ctx_err(c->ctx), ECANCELED);
    atomic_fetch_add(&c->woke, 1);
    csp_chan_release(idle);
    csp_ctx_release(c->ctx);
}

/* A cancel racing with waiters registering on the done channels of a
 * small tree: every waiter, on every level, wakes with ECANCELED. */
START_TEST(ctx_cancel_tree)
{
    start3();
    csp_ctx *root = csp_ctx_with_cancel(csp_ctx_background());
    ck_assert_ptr_nonnull(root);
    struct group g = { 0 };
    enum { N = 12 };
    struct ctxwait w[N];
    csp_ctx *mid[3];
    for (int i = 0; i < 3; i++)
        mid[i] = csp_ctx_with_cancel(root);
    for (int i = 0; i < N; i++) {
        csp_ctx *parent = i < 3 ? root : mid[i % 3];
        w[i].ctx = i % 2 ? csp_ctx_with_cancel(parent) : csp_ctx_retain(parent);
        atomic_store(&w[i].woke, 0);
        group_go(&g, i % 4 == 3, ctx_waiter, &w[i]);
    }
    csp_yield();
    csp_ctx_cancel(root);
    group_wait(&g);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&w[i].woke), 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(csp_ctx_err(mid[i]), ECANCELED);
        csp_ctx_release(mid[i]);
    }
    csp_ctx_release(root);
    finish();
}
END_TEST

/* ---- timers ---------------------------------------------------------------- */

/* csp_after and a ticker in one select with a data channel: the data all
 * arrives, the after channel fires once, the ticker keeps ticking and
 * stops when told. */
START_TEST(timers_in_select)
{
    start3();
    csp_chan *data = csp_chan_make(sizeof(int), 1);
    csp_chan *after = csp_after(3 * MS);
    csp_chan *tick = csp_tick(MS / 2);
    ck_assert_ptr_nonnull(after);
    ck_assert_ptr_nonnull(tick);
    int sent = 0, got = 0, afters = 0, ticks = 0, x = 0, in;
    int64_t stamp;
    while (afters == 0 || got < 50) {
        csp_case k[4] = { CSP_RECV(data, &in), CSP_RECV(after, &stamp),
                          CSP_RECV(tick, &stamp), CSP_SEND(sent < 50 ? data : NULL, &x) };
        int i = csp_select(k, 4, csp_deadline(1000 * MS));
        ck_assert_int_ge(i, 0);
        switch (i) {
        case 0:
            ck_assert_int_eq(in, got);
            got++;
            break;
        case 1:
            afters++;
            break;
        case 2:
            ticks++;
            break;
        case 3:
            x = ++sent;
            break;
        }
    }
    ck_assert_int_eq(afters, 1);
    ck_assert_int_eq(csp_try_recv(after, &stamp), EAGAIN);
    ck_assert_int_eq(csp_tick_stop(tick), 0);
    csp_chan_release(after);
    csp_chan_release(tick);
    csp_chan_release(data);
    finish();
}
END_TEST

/* ---- task churn ------------------------------------------------------------ */

struct churn {
    csp_waitgroup wg;
    _Atomic uint64_t sum;
};

struct churn_arg {
    struct churn *c;
    int depth, n;
};

static void churn_task(void *arg)
{
    struct churn_arg a = *(struct churn_arg *)arg;
    atomic_fetch_add(&a.c->sum, (uint64_t)a.n);
    if (a.depth > 0) {
        for (int i = 0; i < 3; i++) {
            struct churn_arg b = { a.c, a.depth - 1, a.n * 3 + i };
            csp_wg_add(&a.c->wg, 1);
            ck_assert_int_eq(csp_go_copy(churn_task, &b, sizeof b), 0);
        }
    }
    if (a.n % 5 == 0)
        csp_yield();
    csp_wg_done(&a.c->wg);
}

/* Tasks spawning tasks (a tree of 364) while others are stolen and woken:
 * each runs exactly once. */
START_TEST(spawn_tree)
{
    start3();
    struct churn c = { 0 };
    csp_wg_add(&c.wg, 1);
    struct churn_arg a = { &c, 5, 1 };
    ck_assert_int_eq(csp_go_copy(churn_task, &a, sizeof a), 0);
    ck_assert_int_eq(csp_wg_wait(&c.wg), 0);
    /* Node n at depth d has children 3n, 3n+1, 3n+2: sum over the tree. */
    uint64_t want = 0, lo = 1, hi = 1;
    for (int d = 0; d <= 5; d++) {
        for (uint64_t n = lo; n <= hi; n++)
            want += n;
        lo = lo * 3;
        hi = hi * 3 + 2;
    }
    ck_assert_uint_eq(atomic_load(&c.sum), want);
    finish();
}
END_TEST

Suite *chaos_suite(void)
{
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("scenarios");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mpmc_unbuffered);
    tcase_add_test(tc, mpmc_cap1);
    tcase_add_test(tc, mpmc_cap3);
    tcase_add_test(tc, close_midflight_unbuffered);
    tcase_add_test(tc, close_midflight_cap2);
    tcase_add_test(tc, select_fanin);
    tcase_add_test(tc, select_send_recv_unbuffered);
    tcase_add_test(tc, select_send_recv_cap1);
    tcase_add_test(tc, rendezvous_vs_timeout);
    tcase_add_test(tc, mutex_counter);
    tcase_add_test(tc, rwlock_consistency);
    tcase_add_test(tc, waitgroup_rounds);
    tcase_add_test(tc, once_race);
    tcase_add_test(tc, ctx_cancel_tree);
    tcase_add_test(tc, timers_in_select);
    tcase_add_test(tc, spawn_tree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(chaos_suite());
}
