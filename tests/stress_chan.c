/*
 * stress_chan.c - 4 producers x 4 consumers hammering channels: buffered
 * (capacities 1, 4, 64) and unbuffered, directly and through csp_select
 * over two channels, with the channels closed either after the producers
 * finished or concurrently while values are in flight; participants are
 * tasks, plain threads, or half of each.
 *
 * Every value is unique (producer number and sequence number).  Each
 * producer tallies what it sent successfully (count, sum, xor), each
 * consumer what it received; the totals must match: nothing lost, nothing
 * duplicated, and a send that failed delivered nothing.  Without select,
 * each consumer also sees each producer's values in increasing order
 * (FIFO).
 *
 * Each configuration is one loop iteration (a forked child).  The default
 * size keeps each under a few seconds on two cores; CSP_STRESS_SCALE=n
 * multiplies the number of values for soak runs.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Passing Check assertions would take a lock and write to a pipe each
 * time (hiding races from ThreadSanitizer); here they do nothing. */
#define _mark_point(file, line) ((void)0)

#define P 4                 /* producers */
#define C 4                 /* consumers */
#define BASE_N 25000        /* values per producer at scale 1 */

static const size_t caps[] = { 0, 1, 4, 64 };
enum { NCAPS = 4 };
enum { KIND_TASKS, KIND_THREADS, KIND_MIXED, NKINDS };

struct tally {
    uint64_t count, sum, xr;
};

static void tally_add(struct tally *t, uint64_t v)
{
    t->count++;
    t->sum += v;
    t->xr ^= v;
}

struct stress {
    csp_chan *a, *b;           /* b is used by the select variant only  */
    int sel;                   /* through csp_select over a and b       */
    long n;                    /* values per producer                   */
    int early;                 /* close while values are in flight      */
    atomic_long received;      /* progress, for the early close         */
    csp_chan *half;            /* signalled when half has been received */
    csp_waitgroup producers;
};

struct part {
    struct stress *s;
    int id;
    struct tally t;
    long last[P];              /* consumer: last sequence per producer  */
    int stopped_early;         /* producer: saw EPIPE before the end    */
};

static uint64_t value_of(int producer, long seq)
{
    return ((uint64_t)(producer + 1) << 40) | (uint64_t)seq;
}

static void producer(void *arg)
{
    struct part *p = arg;
    struct stress *s = p->s;
    csp_chan *open[2] = { s->a, s->b };
    for (long i = 0; i < s->n; i++) {
        uint64_t v = value_of(p->id, i);
        if (!s->sel) {
            int r = csp_send(s->a, &v);
            if (r == EPIPE) {
                p->stopped_early = 1;
                break;
            }
            if (r != 0)
                ck_abort_msg("send: %d", r);
            tally_add(&p->t, v);
            continue;
        }
        if (!open[0] && !open[1]) {
            p->stopped_early = 1;
            break;
        }
        csp_case cs[] = { CSP_SEND(open[0], &v), CSP_SEND(open[1], &v) };
        int k = csp_select(cs, 2, CSP_FOREVER);
        if (k < 0 || k > 1)
            ck_abort_msg("select send: %d", k);
        if (cs[k].err == EPIPE) {
            open[k] = NULL;       /* closed: this value was not delivered */
            i--;
            continue;
        }
        if (cs[k].err != 0)
            ck_abort_msg("select send err %d", cs[k].err);
        tally_add(&p->t, v);
    }
    csp_wg_done(&s->producers);
}

static void note_progress(struct stress *s)
{
    long total = atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed) + 1;
    if (total == (long)P * s->n / 2)
        csp_try_send(s->half, NULL);
}

static void check_order(struct part *p, uint64_t v)
{
    int prod = (int)(v >> 40) - 1;
    long seq = (long)(v & (((uint64_t)1 << 40) - 1));
    if (prod < 0 || prod >= P || seq >= p->s->n)
        ck_abort_msg("bad value %llx", (unsigned long long)v);
    if (!p->s->sel && seq <= p->last[prod])
        ck_abort_msg("consumer %d: producer %d's value %ld after %ld", p->id, prod, seq,
                     p->last[prod]);
    p->last[prod] = seq;
}

static void consumer(void *arg)
{
    struct part *p = arg;
    struct stress *s = p->s;
    for (int i = 0; i < P; i++)
        p->last[i] = -1;
    csp_chan *open[2] = { s->a, s->sel ? s->b : NULL };
    while (open[0] || open[1]) {
        uint64_t v = 0;
        if (!s->sel) {
            int r = csp_recv(s->a, &v);
            if (r == EPIPE) {
                if (v != 0)
                    ck_abort_msg("EPIPE without a zeroed value");
                break;
            }
            if (r != 0)
                ck_abort_msg("recv: %d", r);
        } else {
            uint64_t v0 = 0, v1 = 0;
            csp_case cs[] = { CSP_RECV(open[0], &v0), CSP_RECV(open[1], &v1) };
            int k = csp_select(cs, 2, CSP_FOREVER);
            if (k < 0 || k > 1)
                ck_abort_msg("select recv: %d", k);
            if ((k == 0 ? v1 : v0) != 0)
                ck_abort_msg("a case that did not fire wrote its buffer");
            if (cs[k].err == EPIPE) {
                open[k] = NULL;
                continue;
            }
            v = k == 0 ? v0 : v1;
        }
        check_order(p, v);
        tally_add(&p->t, v);
        note_progress(s);
    }
}

/* ---- running participants as tasks or threads ------------------------- */

struct runner {
    void (*fn)(void *);
    void *arg;
    csp_waitgroup *wg;
};

static void run_task(void *arg)
{
    struct runner *r = arg;
    r->fn(r->arg);
    csp_wg_done(r->wg);
}

static void *run_thread(void *arg)
{
    run_task(arg);
    return NULL;
}

struct closer_arg {
    struct stress *s;
};

/* Closes the channels: mid-stream (once half the values arrived) or after
 * every producer finished. */
static void closer(void *arg)
{
    struct stress *s = ((struct closer_arg *)arg)->s;
    if (s->early)
        ck_assert_int_eq(csp_recv(s->half, NULL), 0);
    else
        ck_assert_int_eq(csp_wg_wait(&s->producers), 0);
    ck_assert_int_eq(csp_close(s->a), 0);
    if (s->sel)
        ck_assert_int_eq(csp_close(s->b), 0);
}

static long scale(void)
{
    const char *e = getenv("CSP_STRESS_SCALE");
    long v = e ? strtol(e, NULL, 10) : 1;
    return v > 0 ? v : 1;
}

struct config {
    size_t cap;
    int sel, kind, early;
};

static struct config config_of(int i)
{
    struct config c;
    c.cap = caps[i % NCAPS];
    c.sel = (i / NCAPS) % 2;
    c.kind = (i / (NCAPS * 2)) % NKINDS;
    c.early = i / (NCAPS * 2 * NKINDS);
    return c;
}

static void stress_run(const struct config *cfg)
{
    static struct stress s;
    static struct part prod[P], cons[C];
    memset(&s, 0, sizeof s);
    memset(prod, 0, sizeof prod);
    memset(cons, 0, sizeof cons);
    s.a = csp_chan_make(sizeof(uint64_t), cfg->cap);
    s.b = cfg->sel ? csp_chan_make(sizeof(uint64_t), cfg->cap) : NULL;
    s.half = csp_chan_make(0, 1);
    s.sel = cfg->sel;
    s.early = cfg->early;
    s.n = BASE_N * scale();
    csp_wg_add(&s.producers, P);

    csp_waitgroup all = CSP_WAITGROUP_INIT;
    struct runner r[P + C + 1];
    pthread_t th[P + C + 1];
    int nth = 0, nr = 0;
    struct closer_arg ca = { &s };
    for (int i = 0; i < P + C + 1; i++) {
        struct runner *x = &r[nr++];
        if (i < P) {
            prod[i] = (struct part){ .s = &s, .id = i };
            *x = (struct runner){ producer, &prod[i], &all };
        } else if (i < P + C) {
            cons[i - P] = (struct part){ .s = &s, .id = i - P };
            *x = (struct runner){ consumer, &cons[i - P], &all };
        } else {
            *x = (struct runner){ closer, &ca, &all };
        }
        int thread = cfg->kind == KIND_THREADS || (cfg->kind == KIND_MIXED && (i & 1));
        csp_wg_add(&all, 1);
        if (thread)
            ck_assert_int_eq(pthread_create(&th[nth++], NULL, run_thread, x), 0);
        else
            ck_assert_int_eq(csp_go(run_task, x), 0);
    }
    ck_assert_int_eq(csp_wg_wait(&all), 0);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);

    struct tally sent = { 0 }, got = { 0 };
    int stopped = 0;
    for (int i = 0; i < P; i++) {
        sent.count += prod[i].t.count;
        sent.sum += prod[i].t.sum;
        sent.xr ^= prod[i].t.xr;
        stopped += prod[i].stopped_early;
    }
    for (int i = 0; i < C; i++) {
        got.count += cons[i].t.count;
        got.sum += cons[i].t.sum;
        got.xr ^= cons[i].t.xr;
    }
    ck_assert_msg(sent.count == got.count && sent.sum == got.sum && sent.xr == got.xr,
                  "cap %zu sel %d kind %d early %d: sent %llu values (sum %llx xor %llx), "
                  "received %llu (sum %llx xor %llx)",
                  cfg->cap, cfg->sel, cfg->kind, cfg->early, (unsigned long long)sent.count,
                  (unsigned long long)sent.sum, (unsigned long long)sent.xr,
                  (unsigned long long)got.count, (unsigned long long)got.sum,
                  (unsigned long long)got.xr);
    if (!cfg->early) {
        ck_assert_int_eq(stopped, 0);
        ck_assert_uint_eq(got.count, (uint64_t)P * (uint64_t)s.n);
    }
    ck_assert_uint_ge(got.count, (uint64_t)P * (uint64_t)s.n / 2);
    uint64_t v;
    ck_assert_int_eq(csp_try_recv(s.a, &v), EPIPE);
    csp_chan_release(s.a);
    csp_chan_release(s.b);
    csp_chan_release(s.half);
    ck_assert_int_eq(csp_stop(), 0);
}

/* Four producers and four consumers (tasks, threads or both) on one
 * channel or, through select, on two: count, sum and xor of everything
 * sent successfully equal those of everything received, with the close
 * after the producers or racing them. */
START_TEST(test_stress)
{
    struct config cfg = config_of(_i);
    stress_run(&cfg);
}
END_TEST

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress_chan");
    TCase *tc = tcase_create("producers-consumers");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_stress, 0, NCAPS * 2 * NKINDS * 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(stress_suite());
}
