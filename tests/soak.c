/*
 * soak.c - a long mixed workload that must neither lose a value nor grow.
 *
 * What it exercises.  Eight loops run side by side as tasks for the whole
 * run (SOAK_SECONDS, default 600; --seconds=N), each repeating rounds of
 * one kind of traffic with freshly made objects:
 *
 *   pipeline (two loops)  a producer, 1-5 forwarding stages and a sink
 *                         joined by unbuffered and buffered channels (the
 *                         capacities drawn per hop); the producer sends
 *                         through csp_select with the root context's done
 *                         channel now and then.
 *   fan                   1-4 producers into one work channel, 1-6 worker
 *                         tasks (and now and then a plain thread, the
 *                         "fan thread") into one results channel, one
 *                         collector; workers wait with csp_recv_until.
 *   select                2-5 paced sources each sending through a select
 *                         of {send, done} with a short deadline (or
 *                         CSP_NOWAIT); one hub, Go's select loop with a
 *                         queue, selecting over receives from the inputs,
 *                         a csp_after timer and a send of its queue's head
 *                         to a drain task, with deadlines of 20 us-1.5 ms,
 *                         many of which expire; cases are disabled with
 *                         Go's nil-channel idiom (closed input, full or
 *                         empty queue).
 *   lock                  4-12 tasks and a plain thread (the "lock thread",
 *                         for the whole run) lock a csp_mutex and a
 *                         csp_rwlock (blocking and try forms, some holders
 *                         yielding or sleeping inside).
 *   timer                 csp_after received and abandoned, csp_tick read
 *                         and stopped, csp_sleep.
 *   context               a cancel context under the root with children
 *                         and grandchildren (cancel, timeout and deadline
 *                         kinds), a waiter task per child, the parent
 *                         cancelled at a random moment.
 *   churn                 batches of up to 256 short-lived tasks, half by
 *                         csp_go, half by csp_go_copy with environments of
 *                         16-240 bytes, some spawning a grandchild, all
 *                         racing through one csp_once.
 *
 * The run ends by cancelling the root context: every loop finishes its
 * round, its tasks are waited for with WaitGroups, the plain threads exit,
 * csp_run returns.  A plain thread samples the resident set size once a
 * second throughout (/proc/self/statm; getrusage's peak where /proc is
 * missing, as on FreeBSD or macOS) and doubles as a watchdog.
 *
 * What it checks, and exits non-zero on.  Every value is a 64-bit
 * id = producer << 32 | sequence number, carried with mix(id): each
 * receiver checks the pair (a torn or stale copy fails), and each round
 * compares the count, the sum and the xor of what its producers sent
 * (counting only sends that returned 0) with what its final receivers got:
 * a value lost, duplicated or delivered by a send that reported failure
 * changes the count or, when a loss and a duplicate cancel out in the
 * count, the sum and the xor.  Where a path is a single chain (pipelines)
 * the sink also checks that it sees every sequence number in order.  The
 * same totals are accumulated over the whole run and reconciled after
 * shutdown.  Beyond values: a mutex never has two holders and its plain
 * counter equals the number of successful locks (tasks' and the thread's);
 * an rwlock writer is alone and readers never see a half-done write; a
 * select writes no element but that of the case it returns; timers never
 * fire early; contexts report the right error (ECANCELED, or ETIMEDOUT
 * only once their deadline has passed), children of cancelled parents are
 * born cancelled, deadlines are inherited; every spawned task runs, with
 * its copied environment intact, and a once runs once.  The watchdog
 * declares a hang (printing csp_dump) when a loop completes no round for
 * 60 s, or when shutdown takes more than 120 s.
 *
 * The RSS plateau criterion, and why it is sound.  The workload is
 * stationary: every loop repeats the same randomly drawn round shapes
 * forever, and everything alive at once is bounded (tasks per round,
 * channel capacities, timers, contexts, the per-round messages).  So the
 * memory a correct library needs is bounded by a function of those
 * bounds, not of elapsed time: its caches (task stack slots, which it
 * never unmaps, free lists, per-worker caches) follow high-water marks of
 * concurrency, which the uniform, narrow distributions reach within the
 * first seconds.  A leak instead grows the RSS linearly with the work
 * done.  The criterion: drop the first 10% of the samples as warm-up
 * (first touches of stacks and allocator arenas), cut the rest into
 * thirds, and require
 *
 *     max(last third) <= max(first third) * 1.05 + 4 MiB.
 *
 * Maxima over windows, not single samples, because the allocator's RSS
 * saw-tooths (arenas grow and are trimmed) and one sample may catch a
 * burst; the constant 4 MiB absorbs bounded late growth (a malloc arena
 * of another worker thread filling up, stack slots touched a page deeper,
 * together a few hundred KiB in the runs recorded in tests/README, where
 * the whole process stays near 4 MiB), the 5% the allocator's
 * fragmentation drift.  The windows are 0.6 T apart (T the run), so a
 * leak of r bytes/s shows as about 0.6 T r of growth: over 600 s anything
 * above ~12 KiB/s is caught (each run prints its threshold).  The loops
 * make some 10,000 channels, contexts and timers and two million tasks a
 * second, so even one leaked 16-byte block per object made, or one lost
 * stack page per hundred tasks, is far above it.  A bounded growth (a
 * cache filling) is not a leak and may pass; a leak slower than the
 * threshold needs a longer run.  With getrusage's peak RSS the series
 * never falls and the criterion reads "the peak stopped rising", equally
 * sound.  Runs shorter than 30 s have too few samples for thirds; they
 * only check that the peak RSS stays under --max-rss-mib (default 256).
 * Sanitizer builds report both checks without enforcing them, unless
 * --rss-check=on: ASan's quarantine holds up to 256 MiB of freed memory
 * and fills for minutes (with ASAN_OPTIONS=quarantine_size_mb=4 the
 * plateau holds), ThreadSanitizer's runtime keeps memory for every fiber
 * ever created (one per task), and LeakSanitizer judges leaks there.
 *
 * Usage: soak [--seconds=N] [--workers=N] [--seed=N] [--rss-check=auto|on|off]
 *             [--max-rss-mib=N] [--quiet] [--inject=lose|dup|leak] [--only=LOOP,...]
 * --inject tests the soak itself: a pipeline stage drops or doubles one
 * value per round, or each context round leaks 1 KiB; the run must fail.
 * --only runs only the named loops (to tell which traffic a leak or a hang
 * comes with); the lock thread and the fan thread always run.
 * Environment: SOAK_SECONDS, SOAK_WORKERS (flags win).  The last line is
 *   soak: seconds=... values=... messages=... tasks=... selects=... timeouts=...
 *         polls=... lockops=... timers=... contexts=... peak_rss_kib=...
 *         end_rss_kib=... PASS|FAIL
 * values: values reconciled end to end; messages: channel transfers of
 * values (every hop); tasks: tasks spawned; polls: non-blocking selects
 * that found nothing; lockops: locks taken; timers: timer events seen.
 */
#include <csp.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define US 1000LL
#define MS 1000000LL
#define SEC 1000000000LL

#include "sanitized.h"

/* ---- options ------------------------------------------------------------- */

static struct {
    long seconds;
    unsigned workers;
    uint64_t seed;
    int rss_check;          /* -1 auto, 0 off, 1 on */
    long max_rss_mib;
    bool quiet;
    const char *only;       /* comma-separated loop names, NULL = all */
    enum { INJECT_NONE, INJECT_LOSE, INJECT_DUP, INJECT_LEAK } inject;
} opt = { 600, 4, 0, -1, 256, false, NULL, INJECT_NONE };

/* ---- failures ------------------------------------------------------------- */

static csp_ctx *root;       /* cancelled at the end of the run, or on failure */
static atomic_int failures;

static void failf(int line, const char *fmt, ...)
{
    /* The first failures tell the story; later ones are usually echoes. */
    if (atomic_fetch_add(&failures, 1) < 20) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        fprintf(stderr, "soak: FAIL at soak.c:%d: %s\n", line, buf);
    }
    /* Stop early: every further round would only add noise. */
    csp_ctx_cancel(root);
}

#define CHECKF(cond, ...) do { if (!(cond)) failf(__LINE__, __VA_ARGS__); } while (0)
#define CHECK(cond) CHECKF((cond), "%s", #cond)
/* A library call that must succeed. */
#define OK(call) do { \
        int ok_e_ = (call); \
        CHECKF(ok_e_ == 0, "%s returned %d (%s)", #call, ok_e_, strerror(ok_e_)); \
    } while (0)

static bool stopping(void)
{
    return csp_ctx_err(root) != 0;
}

/* ---- randomness and values ------------------------------------------------- */

static uint64_t mix(uint64_t z)     /* splitmix64's finaliser: a bijection */
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Per-task generator state, never thread-local: a task may resume on
 * another worker after any call that parks. */
struct rng { uint64_t s; };
static _Atomic uint64_t rng_streams;

static void rng_init(struct rng *r)
{
    r->s = mix(opt.seed ^ mix(atomic_fetch_add(&rng_streams, 1) + 1));
}

static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix(r->s);
}

static unsigned below(struct rng *r, unsigned n)
{
    return (unsigned)(rng_next(r) % n);
}

static int64_t between(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

struct msg {
    uint64_t id;            /* producer << 32 | sequence number */
    uint64_t v;             /* mix(id) */
    uint32_t hops;          /* channels crossed */
    uint32_t pad;
};
CSP_CHAN_TYPE(msg_chan, struct msg);

static _Atomic uint64_t producer_ids;

static uint64_t new_producer(void)
{
    return atomic_fetch_add(&producer_ids, 1) + 1;
}

static struct msg make_msg(uint64_t producer, uint64_t seq)
{
    uint64_t id = producer << 32 | seq;
    return (struct msg){ id, mix(id), 0, 0 };
}

/* Count, sum and xor of a multiset of values. */
struct tally { uint64_t n, sum, x; };
struct atally { _Atomic uint64_t n, sum, x; };

static void tally_add(struct tally *t, uint64_t v)
{
    t->n++;
    t->sum += v;
    t->x ^= v;
}

static void atally_merge(struct atally *a, const struct tally *t)
{
    atomic_fetch_add(&a->n, t->n);
    atomic_fetch_add(&a->sum, t->sum);
    atomic_fetch_xor(&a->x, t->x);
}

static struct tally atally_get(struct atally *a)
{
    return (struct tally){ atomic_load(&a->n), atomic_load(&a->sum), atomic_load(&a->x) };
}

static bool tally_eq(struct tally a, struct tally b)
{
    return a.n == b.n && a.sum == b.sum && a.x == b.x;
}

#define TALLY_FMT "sent n=%" PRIu64 " sum=%016" PRIx64 " xor=%016" PRIx64 \
    ", got n=%" PRIu64 " sum=%016" PRIx64 " xor=%016" PRIx64
#define TALLY_ARGS(s, g) (s).n, (s).sum, (s).x, (g).n, (g).sum, (g).x

static void check_msg(const struct msg *m, uint32_t hops)
{
    CHECKF(m->v == mix(m->id), "value %016" PRIx64 " carries %016" PRIx64 " (torn copy?)",
           m->id, m->v);
    CHECKF(m->hops == hops, "value %016" PRIx64 " crossed %u channels, expected %u",
           m->id, m->hops, hops);
}

/* ---- figures ---------------------------------------------------------------- */

static struct {
    struct atally sent, got;                /* every value, whole run */
    _Atomic uint64_t messages;              /* channel transfers of values */
    _Atomic uint64_t spawned;               /* tasks started by the loops */
    _Atomic uint64_t selects, timeouts, polls;
    _Atomic uint64_t lockops;
    _Atomic uint64_t timers, contexts;
} F;

/* Per-task counts, flushed once per task (a shared atomic per message
 * would make the workload a benchmark of one cache line). */
struct counts { uint64_t messages, selects, timeouts, polls, lockops, timers; };

static void counts_flush(const struct counts *c)
{
    atomic_fetch_add(&F.messages, c->messages);
    atomic_fetch_add(&F.selects, c->selects);
    atomic_fetch_add(&F.timeouts, c->timeouts);
    atomic_fetch_add(&F.polls, c->polls);
    atomic_fetch_add(&F.lockops, c->lockops);
    atomic_fetch_add(&F.timers, c->timers);
}

/* A spawn that fails leaves a WaitGroup count nobody will drop: report
 * it and leave at once rather than hang. */
static void spawned(int err, const char *how)
{
    if (err) {
        fprintf(stderr, "soak: FAIL: %s: %s\n", how, strerror(err));
        fflush(NULL);
        _exit(1);
    }
    atomic_fetch_add(&F.spawned, 1);
}

static void go(void (*fn)(void *), void *arg)
{
    spawned(csp_go(fn, arg), "csp_go");
}

static void go_copy(void (*fn)(void *), const void *env, size_t size)
{
    spawned(csp_go_copy(fn, env, size), "csp_go_copy");
}

/* Channel capacities drawn per hop: unbuffered half of the time. */
static size_t pick_cap(struct rng *r)
{
    static const size_t caps[] = { 0, 0, 0, 1, 4, 64 };
    return caps[below(r, sizeof caps / sizeof caps[0])];
}

static void plain_sleep(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / SEC), (long)(ns % SEC) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the loops ---------------------------------------------------------------- */

struct loop {
    const char *name;
    void (*round)(struct loop *);
    struct rng rng;
    _Atomic uint64_t rounds;                /* the watchdog's heartbeat */
    bool off;                               /* left out by --only */
};

/* ---- pipeline ---- */

enum { PIPE_MAX_STAGES = 5 };

struct pipe_round {
    int nstages;
    msg_chan *ch[PIPE_MAX_STAGES + 1];      /* ch[0] producer -> ... -> sink */
    uint64_t limit;
    int64_t deadline;
    struct tally sent, got;
    csp_waitgroup wg;
};

static void pipe_producer(void *arg)
{
    struct pipe_round *r = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    uint64_t p = new_producer();
    csp_chan *done = csp_ctx_done(root);
    for (uint64_t seq = 0; seq < r->limit; seq++) {
        if (seq % 64 == 0 && (stopping() || csp_now() > r->deadline))
            break;
        struct msg m = make_msg(p, seq);
        if (below(&rng, 8) == 0) {
            csp_case cs[2] = { msg_chan_case_send(r->ch[0], &m), CSP_RECV(done, NULL) };
            int k = csp_select(cs, 2, CSP_FOREVER);
            c.selects++;
            if (k == 1)
                break;
            CHECKF(k == 0 && cs[0].err == 0, "producer select: %d err %d", k, cs[0].err);
        } else {
            OK(msg_chan_send(r->ch[0], m));
        }
        tally_add(&r->sent, m.v);
    }
    OK(msg_chan_close(r->ch[0]));
    counts_flush(&c);
    csp_wg_done(&r->wg);
}

struct stage_env { struct pipe_round *r; int k; };

static void pipe_stage(void *arg)
{
    struct stage_env *e = arg;
    struct pipe_round *r = e->r;
    msg_chan *in = r->ch[e->k], *out = r->ch[e->k + 1];
    struct counts c = { 0 };
    struct msg m;
    int err;
    while ((err = msg_chan_recv(in, &m)) == 0) {
        c.messages++;
        m.hops++;
        /* --inject: the faults a broken channel would cause, to show that
         * the checks see them. */
        if (opt.inject == INJECT_LOSE && (m.id & 0xffffffffu) == 1000)
            continue;
        if (opt.inject == INJECT_DUP && (m.id & 0xffffffffu) == 1000)
            OK(msg_chan_send(out, m));
        OK(msg_chan_send(out, m));
    }
    CHECKF(err == EPIPE, "stage recv: %d", err);
    OK(msg_chan_close(out));
    counts_flush(&c);
    csp_wg_done(&r->wg);
}

static void pipe_sink(void *arg)
{
    struct pipe_round *r = arg;
    struct counts c = { 0 };
    msg_chan *in = r->ch[r->nstages];
    uint64_t expect = 0;
    bool first = true, disordered = false;
    struct msg m;
    CSP_RANGE_OF(msg_chan, in, m) {
        c.messages++;
        check_msg(&m, (uint32_t)r->nstages);
        /* One chain, FIFO at every hop: the sequence numbers arrive in
         * order, none missing, none twice. */
        if (!disordered && !(first ? (m.id & 0xffffffffu) == 0 : m.id == expect)) {
            failf(__LINE__, "pipeline sink got %016" PRIx64 ", expected %016" PRIx64, m.id,
                  expect);
            disordered = true;      /* once per round: the rest are echoes */
        }
        first = false;
        expect = m.id + 1;
        tally_add(&r->got, m.v);
    }
    counts_flush(&c);
    csp_wg_done(&r->wg);
}

static void pipe_round(struct loop *l)
{
    struct pipe_round r = { 0 };
    r.nstages = 1 + (int)below(&l->rng, PIPE_MAX_STAGES);
    r.limit = 1 + below(&l->rng, 20000);
    r.deadline = csp_deadline(between(&l->rng, 10, 150) * MS);
    for (int i = 0; i <= r.nstages; i++) {
        r.ch[i] = msg_chan_make(pick_cap(&l->rng));
        CHECK(r.ch[i] != NULL);
        if (!r.ch[i]) {
            while (i-- > 0)
                msg_chan_release(r.ch[i]);
            return;
        }
    }
    csp_wg_add(&r.wg, r.nstages + 2);
    go(pipe_sink, &r);
    for (int k = 0; k < r.nstages; k++) {
        struct stage_env e = { &r, k };
        go_copy(pipe_stage, &e, sizeof e);
    }
    go(pipe_producer, &r);
    OK(csp_wg_wait(&r.wg));
    CHECKF(tally_eq(r.sent, r.got), "pipeline (%d stages): " TALLY_FMT, r.nstages,
           TALLY_ARGS(r.sent, r.got));
    atally_merge(&F.sent, &r.sent);
    atally_merge(&F.got, &r.got);
    for (int i = 0; i <= r.nstages; i++)
        msg_chan_release(r.ch[i]);
}

/* ---- fan-out / fan-in ---- */

struct fan_round {
    msg_chan *work, *results;
    uint64_t limit;
    int64_t deadline;
    struct atally sent;
    struct tally got;
    csp_waitgroup producers, workers, collector;
};

static void fan_producer(void *arg)
{
    struct fan_round *r = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    struct tally t = { 0 };
    uint64_t p = new_producer();
    for (uint64_t seq = 0; seq < r->limit; seq++) {
        if (seq % 32 == 0 && (stopping() || csp_now() > r->deadline))
            break;
        struct msg m = make_msg(p, seq);
        if (below(&rng, 4) == 0) {
            /* A send that timed out delivered nothing: retrying the same
             * value must not make a duplicate. */
            int err;
            while ((err = msg_chan_send_until(r->work, m, csp_deadline(between(&rng, 5, 500) * US)))
                   == ETIMEDOUT)
                c.timeouts++;
            OK(err);
        } else {
            OK(msg_chan_send(r->work, m));
        }
        tally_add(&t, m.v);
    }
    atally_merge(&r->sent, &t);
    counts_flush(&c);
    csp_wg_done(&r->producers);
}

/* The workers' loop, for tasks and for the fan thread alike. */
static void fan_work(struct fan_round *r, struct rng *rng)
{
    struct counts c = { 0 };
    struct msg m;
    for (;;) {
        int err = msg_chan_recv_until(r->work, &m, csp_deadline(between(rng, 20, 2000) * US));
        if (err == ETIMEDOUT) {
            c.timeouts++;
            continue;
        }
        if (err == EPIPE)
            break;
        OK(err);
        if (err)
            break;
        c.messages++;
        check_msg(&m, 0);
        m.hops++;
        OK(msg_chan_send(r->results, m));
    }
    counts_flush(&c);
}

static void fan_worker(void *arg)
{
    struct fan_round *r = arg;
    struct rng rng;
    rng_init(&rng);
    fan_work(r, &rng);
    csp_wg_done(&r->workers);
}

static void fan_collector(void *arg)
{
    struct fan_round *r = arg;
    struct counts c = { 0 };
    struct msg m;
    CSP_RANGE_OF(msg_chan, r->results, m) {
        c.messages++;
        check_msg(&m, 1);
        tally_add(&r->got, m.v);
    }
    counts_flush(&c);
    csp_wg_done(&r->collector);
}

/* The fan thread: a plain thread that serves as one more worker in the
 * rounds it is handed, so that tasks and a thread meet on the channels. */
static csp_chan *fan_jobs;                  /* of struct fan_round * */

static void *fan_thread(void *arg)
{
    (void)arg;
    struct rng rng;
    rng_init(&rng);
    struct fan_round *r;
    while (csp_recv(fan_jobs, &r) == 0) {
        fan_work(r, &rng);
        /* Our own references, taken for us by the round (the idiom of
         * API.md: each party that may still call holds one). */
        msg_chan_release(r->work);
        msg_chan_release(r->results);
        csp_wg_done(&r->workers);
    }
    return NULL;
}

static void fan_round(struct loop *l)
{
    struct fan_round r = { 0 };
    int np = 1 + (int)below(&l->rng, 4), nw = 1 + (int)below(&l->rng, 6);
    bool thread = below(&l->rng, 4) == 0;
    r.limit = 1 + below(&l->rng, 5000);
    r.deadline = csp_deadline(between(&l->rng, 10, 150) * MS);
    r.work = msg_chan_make(pick_cap(&l->rng));
    r.results = msg_chan_make(pick_cap(&l->rng));
    CHECK(r.work && r.results);
    if (!r.work || !r.results) {
        msg_chan_release(r.work);
        msg_chan_release(r.results);
        return;
    }
    csp_wg_add(&r.producers, np);
    csp_wg_add(&r.workers, nw + thread);
    csp_wg_add(&r.collector, 1);
    go(fan_collector, &r);
    for (int i = 0; i < nw; i++)
        go(fan_worker, &r);
    if (thread) {
        msg_chan_retain(r.work);
        msg_chan_retain(r.results);
        struct fan_round *rp = &r;
        OK(csp_send(fan_jobs, &rp));
    }
    for (int i = 0; i < np; i++)
        go(fan_producer, &r);
    OK(csp_wg_wait(&r.producers));
    OK(msg_chan_close(r.work));
    OK(csp_wg_wait(&r.workers));
    OK(msg_chan_close(r.results));
    OK(csp_wg_wait(&r.collector));
    struct tally sent = atally_get(&r.sent);
    CHECKF(tally_eq(sent, r.got), "fan (%d producers, %d workers%s): " TALLY_FMT, np, nw,
           thread ? " + thread" : "", TALLY_ARGS(sent, r.got));
    atally_merge(&F.sent, &sent);
    atally_merge(&F.got, &r.got);
    msg_chan_release(r.work);
    msg_chan_release(r.results);
}

/* ---- select with deadlines ---- */

enum { SEL_MAX_IN = 5, HUB_QUEUE = 16 };

struct sel_round {
    csp_chan *in[SEL_MAX_IN];   /* sources -> hub */
    csp_chan *out;              /* hub -> drain */
    uint64_t limit;
    int64_t deadline;
    struct atally sent;
    struct tally got;           /* the drain's */
    csp_waitgroup sources, drained;
};

struct source_env { struct sel_round *r; int i; };

static void sel_source(void *arg)
{
    struct source_env *e = arg;
    struct sel_round *r = e->r;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    struct tally t = { 0 };
    uint64_t p = new_producer();
    csp_chan *done = csp_ctx_done(root);
    for (uint64_t seq = 0; seq < r->limit; seq++) {
        if (stopping() || csp_now() > r->deadline)
            break;
        /* Pauses longer than many of the hub's deadlines. */
        if (below(&rng, 8) == 0)
            OK(csp_sleep(between(&rng, 0, 3000) * US));
        struct msg m = make_msg(p, seq);
        for (;;) {
            csp_case cs[2] = { CSP_SEND(r->in[e->i], &m), CSP_RECV(done, NULL) };
            int64_t dl = below(&rng, 4) == 0 ? CSP_NOWAIT : csp_deadline(between(&rng, 5, 2000) * US);
            int k = csp_select(cs, 2, dl);
            c.selects++;
            if (k == 0) {
                CHECKF(cs[0].err == 0, "source send case fired with %d", cs[0].err);
                tally_add(&t, m.v);
                break;
            }
            if (k == 1)
                goto out;
            if (k == -ETIMEDOUT) {
                c.timeouts++;
            } else if (k == -EAGAIN) {
                c.polls++;
                csp_yield();
            } else {
                failf(__LINE__, "source select returned %d", k);
                goto out;
            }
        }
    }
out:
    OK(csp_close(r->in[e->i]));
    atally_merge(&r->sent, &t);
    counts_flush(&c);
    csp_wg_done(&r->sources);
}

static void sel_drain(void *arg)
{
    struct sel_round *r = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    struct msg m;
    for (;;) {
        int err;
        if (below(&rng, 4) == 0) {
            err = csp_recv_until(r->out, &m, csp_deadline(between(&rng, 5, 500) * US));
            if (err == ETIMEDOUT) {
                c.timeouts++;
                continue;
            }
        } else {
            err = csp_recv(r->out, &m);
        }
        if (err == EPIPE)
            break;
        OK(err);
        if (err)
            break;
        c.messages++;
        check_msg(&m, 1);
        tally_add(&r->got, m.v);
        if (below(&rng, 64) == 0)
            OK(csp_sleep(between(&rng, 0, 500) * US));  /* the hub's queue fills */
    }
    counts_flush(&c);
    csp_wg_done(&r->drained);
}

static void sel_round(struct loop *l)
{
    struct sel_round r = { 0 };
    int k = 2 + (int)below(&l->rng, SEL_MAX_IN - 1);
    r.limit = 1 + below(&l->rng, 3000);
    r.deadline = csp_deadline(between(&l->rng, 10, 150) * MS);
    r.out = csp_chan_make(sizeof(struct msg), pick_cap(&l->rng) % 5);
    CHECK(r.out != NULL);
    if (!r.out)
        return;
    for (int i = 0; i < k; i++) {
        r.in[i] = csp_chan_make(sizeof(struct msg), pick_cap(&l->rng) % 5);
        CHECK(r.in[i] != NULL);
        if (!r.in[i]) {
            while (i-- > 0)
                csp_chan_release(r.in[i]);
            csp_chan_release(r.out);
            return;
        }
    }
    csp_wg_add(&r.sources, k);
    csp_wg_add(&r.drained, 1);
    go(sel_drain, &r);
    for (int i = 0; i < k; i++) {
        struct source_env e = { &r, i };
        go_copy(sel_source, &e, sizeof e);
    }

    /* The hub, Go's select loop with a queue: receive cases for the open
     * inputs (while the queue has room), a timer, and a send case for the
     * head of the queue (while it has one); disabled cases are NULL
     * channels.  Each iteration takes exactly one of them or times out. */
    struct counts c = { 0 };
    struct msg buf[SEL_MAX_IN], q[HUB_QUEUE];
    unsigned qh = 0, qn = 0;
    bool open_in[SEL_MAX_IN];
    int open = k;
    int64_t tv = 0, t_due = 0;
    csp_chan *timer = NULL;
    csp_case cs[SEL_MAX_IN + 2];
    static const struct msg poison = { UINT64_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX };
    for (int i = 0; i < k; i++)
        open_in[i] = true;
    while (open > 0 || qn > 0) {
        if (!timer && below(&l->rng, 8) == 0) {
            int64_t d = between(&l->rng, 0, 2000) * US;
            t_due = csp_now() + d;
            timer = csp_after(d);
            CHECK(timer != NULL);
        }
        for (int i = 0; i < k; i++) {
            buf[i] = poison;
            cs[i] = CSP_RECV(open_in[i] && qn < HUB_QUEUE ? r.in[i] : NULL, &buf[i]);
        }
        cs[k] = CSP_RECV(timer, &tv);
        cs[k + 1] = CSP_SEND(qn ? r.out : NULL, &q[qh]);
        int64_t dl = below(&l->rng, 8) == 0 ? CSP_NOWAIT
                                           : csp_deadline(between(&l->rng, 20, 1500) * US);
        int rr = csp_select(cs, (size_t)k + 2, dl);
        c.selects++;
        if (rr == -ETIMEDOUT) {
            c.timeouts++;
        } else if (rr == -EAGAIN) {
            c.polls++;
        } else if (rr >= 0 && rr < k) {
            if (cs[rr].err == EPIPE) {
                open_in[rr] = false;
                open--;
            } else {
                CHECKF(cs[rr].err == 0, "hub receive case fired with %d", cs[rr].err);
                c.messages++;
                check_msg(&buf[rr], 0);
                buf[rr].hops++;
                q[(qh + qn++) % HUB_QUEUE] = buf[rr];
            }
        } else if (rr == k) {
            CHECKF(tv >= t_due, "csp_after fired %" PRId64 " ns early", t_due - tv);
            CHECK(tv <= csp_now());
            csp_chan_release(timer);
            timer = NULL;
            c.timers++;
        } else if (rr == k + 1) {
            CHECKF(cs[rr].err == 0, "hub send case fired with %d", cs[rr].err);
            qh = (qh + 1) % HUB_QUEUE;
            qn--;
        } else {
            failf(__LINE__, "hub select returned %d", rr);
            break;
        }
        for (int i = 0; i < k; i++)
            CHECKF(i == rr || memcmp(&buf[i], &poison, sizeof poison) == 0,
                   "select returned case %d but wrote the element of case %d", rr, i);
    }
    /* An abandoned timer: it holds its own reference and fires into a
     * channel nobody reads. */
    csp_chan_release(timer);
    OK(csp_close(r.out));
    OK(csp_wg_wait(&r.drained));
    OK(csp_wg_wait(&r.sources));
    struct tally sent = atally_get(&r.sent);
    CHECKF(tally_eq(sent, r.got), "select hub (%d inputs): " TALLY_FMT, k,
           TALLY_ARGS(sent, r.got));
    atally_merge(&F.sent, &sent);
    atally_merge(&F.got, &r.got);
    counts_flush(&c);
    for (int i = 0; i < k; i++)
        csp_chan_release(r.in[i]);
    csp_chan_release(r.out);
}

/* ---- mutex and rwlock ---- */

static struct {
    csp_mutex mu;
    uint64_t counter, task_locks, thread_locks;     /* under mu */
    atomic_int holders;
    csp_rwlock rw;
    uint64_t a, b, task_writes, thread_writes;      /* under rw, written by writers */
    atomic_int activity;                            /* readers + 10000 * writers */
} L;

/* One lock operation of a random kind; returns whether a lock was taken. */
static bool lock_op(struct rng *rng, bool thread)
{
    unsigned r = below(rng, 20);
    if (r < 10) {
        if (r < 3) {
            int e = csp_mutex_trylock(&L.mu);
            if (e == EBUSY)
                return false;
            OK(e);
        } else {
            OK(csp_mutex_lock(&L.mu));
        }
        CHECK(atomic_fetch_add(&L.holders, 1) == 0);
        L.counter++;
        if (thread)
            L.thread_locks++;
        else
            L.task_locks++;
        if (r == 9)
            csp_yield();
        else if (r == 8 && !thread && below(rng, 8) == 0)
            OK(csp_sleep(between(rng, 1, 50) * US));    /* waiters park */
        CHECK(atomic_fetch_sub(&L.holders, 1) == 1);
        OK(csp_mutex_unlock(&L.mu));
    } else if (r < 17) {
        if (r < 12) {
            int e = csp_rwlock_tryrdlock(&L.rw);
            if (e == EBUSY)
                return false;
            OK(e);
        } else {
            OK(csp_rwlock_rdlock(&L.rw));
        }
        int act = atomic_fetch_add(&L.activity, 1) + 1;
        CHECKF(act >= 1 && act < 10000, "reader beside a writer (activity %d)", act);
        CHECKF(L.a == L.b, "reader saw a half-done write (%" PRIu64 " vs %" PRIu64 ")", L.a, L.b);
        if (r == 16)
            csp_yield();
        atomic_fetch_sub(&L.activity, 1);
        OK(csp_rwlock_rdunlock(&L.rw));
    } else {
        if (r == 17) {
            int e = csp_rwlock_trywrlock(&L.rw);
            if (e == EBUSY)
                return false;
            OK(e);
        } else {
            OK(csp_rwlock_wrlock(&L.rw));
        }
        int act = atomic_fetch_add(&L.activity, 10000) + 10000;
        CHECKF(act == 10000, "writer not alone (activity %d)", act);
        L.a++;
        if (r == 19)
            csp_yield();
        L.b++;
        if (thread)
            L.thread_writes++;
        else
            L.task_writes++;
        atomic_fetch_sub(&L.activity, 10000);
        OK(csp_rwlock_wrunlock(&L.rw));
    }
    return true;
}

struct locker_env { csp_waitgroup *wg; unsigned ops; };

static void locker(void *arg)
{
    struct locker_env *e = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    for (unsigned i = 0; i < e->ops; i++)
        c.lockops += lock_op(&rng, false);
    counts_flush(&c);
    csp_wg_done(e->wg);
}

/* The lock thread: lock traffic from a plain thread for the whole run. */
static void *lock_thread(void *arg)
{
    (void)arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    while (!stopping()) {
        for (int i = 0; i < 64; i++)
            c.lockops += lock_op(&rng, true);
        plain_sleep(between(&rng, 50, 500) * US);   /* leave the cores to the tasks */
    }
    counts_flush(&c);
    return NULL;
}

static void lock_check(void)
{
    OK(csp_mutex_lock(&L.mu));
    CHECKF(L.counter == L.task_locks + L.thread_locks,
           "mutex counter %" PRIu64 " != %" PRIu64 " locks", L.counter,
           L.task_locks + L.thread_locks);
    OK(csp_mutex_unlock(&L.mu));
    OK(csp_rwlock_rdlock(&L.rw));
    CHECKF(L.a == L.b && L.a == L.task_writes + L.thread_writes,
           "rwlock pair %" PRIu64 "/%" PRIu64 " after %" PRIu64 " writes", L.a, L.b,
           L.task_writes + L.thread_writes);
    OK(csp_rwlock_rdunlock(&L.rw));
}

static void lock_round(struct loop *l)
{
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    int n = 4 + (int)below(&l->rng, 9);
    csp_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        struct locker_env e = { &wg, 50 + below(&l->rng, 500) };
        go_copy(locker, &e, sizeof e);
    }
    OK(csp_wg_wait(&wg));
    lock_check();
}

/* ---- timers ---- */

static void timer_task(void *arg)
{
    csp_waitgroup *wg = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    csp_chan *done = csp_ctx_done(root);
    int64_t t0 = csp_now(), v = 0;
    switch (below(&rng, 4)) {
    case 0: {           /* after, received */
        int64_t d = between(&rng, 0, 3000) * US;
        csp_chan *t = csp_after(d);
        CHECK(t != NULL);
        if (!t)
            break;
        OK(csp_recv(t, &v));
        CHECKF(v >= t0 + d, "csp_after(%" PRId64 ") fired %" PRId64 " ns early", d, t0 + d - v);
        CHECK(v <= csp_now());
        c.timers++;
        csp_chan_release(t);
        break;
    }
    case 1: {           /* after, abandoned when a shorter deadline passes first */
        int64_t d = between(&rng, 0, 3000) * US;
        csp_chan *t = csp_after(d);
        CHECK(t != NULL);
        csp_case cs[2] = { CSP_RECV(t, &v), CSP_RECV(done, NULL) };
        int k = csp_select(cs, 2, csp_deadline(between(&rng, 0, 3000) * US));
        c.selects++;
        if (k == -ETIMEDOUT)
            c.timeouts++;
        else if (k == 0) {
            c.timers++;
            CHECK(v >= t0 + d);
        } else
            CHECKF(k == 1, "timer select returned %d", k);
        csp_chan_release(t);
        break;
    }
    case 2: {           /* ticker, read (slowly now and then) and stopped */
        int64_t p = between(&rng, 200, 2000) * US, prev = t0 + p - 1;
        csp_chan *t = csp_tick(p);
        CHECK(t != NULL);
        if (!t)
            break;
        for (int n = 2 + (int)below(&rng, 5); n > 0; n--) {
            csp_case cs[2] = { CSP_RECV(t, &v), CSP_RECV(done, NULL) };
            int k = csp_select(cs, 2, CSP_FOREVER);
            c.selects++;
            if (k != 0)
                break;
            CHECKF(v > prev, "tick at %" PRId64 " after %" PRId64, v, prev);
            prev = v;
            c.timers++;
            if (below(&rng, 4) == 0)
                OK(csp_sleep(2 * p));   /* ticks are dropped, not queued */
        }
        OK(csp_tick_stop(t));
        CHECK(csp_tick_stop(t) == EINVAL);
        csp_chan_release(t);
        break;
    }
    default: {          /* sleep */
        int64_t d = between(&rng, 0, 2000) * US;
        OK(csp_sleep(d));
        CHECKF(csp_now() - t0 >= d, "csp_sleep(%" PRId64 ") returned early", d);
        c.timers++;
        break;
    }
    }
    counts_flush(&c);
    csp_wg_done(wg);
}

static void timer_round(struct loop *l)
{
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    int n = 2 + (int)below(&l->rng, 15);
    csp_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        go(timer_task, &wg);
    OK(csp_wg_wait(&wg));
}

/* ---- contexts ---- */

enum { CTX_MAX = 8 };
enum { K_CANCEL, K_TIMEOUT, K_DEADLINE };

struct ctx_waiter { csp_ctx *c; csp_waitgroup *wg; };

static void ctx_waiter(void *arg)
{
    struct ctx_waiter *w = arg;
    struct rng rng;
    rng_init(&rng);
    struct counts c = { 0 };
    csp_chan *done = csp_ctx_done(w->c);
    CHECK(done != NULL);
    for (;;) {
        /* Poll with short deadlines of our own now and then, as a task
         * that does other work between looks at done would. */
        csp_case cs[1] = { CSP_RECV(done, NULL) };
        int64_t dl = below(&rng, 2) ? CSP_FOREVER : csp_deadline(between(&rng, 10, 1000) * US);
        int k = csp_select(cs, 1, dl);
        c.selects++;
        if (k == 0) {
            CHECK(cs[0].err == EPIPE);
            CHECK(csp_ctx_err(w->c) != 0);  /* cancel happens before done closes */
            break;
        }
        CHECKF(k == -ETIMEDOUT, "done select returned %d", k);
        if (k != -ETIMEDOUT)
            break;
        c.timeouts++;
    }
    csp_ctx_release(w->c);
    counts_flush(&c);
    csp_wg_done(w->wg);
}

static void ctx_round(struct loop *l)
{
    csp_ctx *parent = csp_ctx_with_cancel(root);
    CHECK(parent != NULL);
    if (!parent)
        return;
    CHECK(csp_ctx_deadline(parent) == CSP_FOREVER);
    csp_ctx *kids[CTX_MAX], *mid[CTX_MAX];
    int kind[CTX_MAX];
    int64_t want[CTX_MAX];
    int n = 2 + (int)below(&l->rng, CTX_MAX - 1);
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    csp_wg_add(&wg, n);
    uint64_t made = 1;
    for (int i = 0; i < n; i++) {
        kind[i] = (int)below(&l->rng, 3);
        mid[i] = NULL;
        int64_t ns = between(&l->rng, 0, 4000) * US;
        int64_t before = csp_now();
        switch (kind[i]) {
        case K_CANCEL:
            kids[i] = csp_ctx_with_cancel(parent);
            want[i] = CSP_FOREVER;
            break;
        case K_TIMEOUT:
            kids[i] = csp_ctx_with_timeout(parent, ns);
            want[i] = before + ns;
            break;
        default: {
            /* A grandchild whose deadline may lie beyond its parent's: it
             * inherits the earlier one. */
            int64_t pd = csp_deadline(ns);
            mid[i] = csp_ctx_with_deadline(parent, pd);
            CHECK(mid[i] != NULL);
            int64_t own = csp_deadline(between(&l->rng, 0, 4000) * US);
            kids[i] = mid[i] ? csp_ctx_with_deadline(mid[i], own) : NULL;
            want[i] = own < pd ? own : pd;
            made++;
            break;
        }
        }
        made++;
        CHECK(kids[i] != NULL);
        if (!kids[i]) {
            csp_ctx_release(mid[i]);
            csp_wg_done(&wg);
            continue;
        }
        int64_t dl = csp_ctx_deadline(kids[i]);
        if (kind[i] == K_CANCEL)
            CHECK(dl == CSP_FOREVER);
        else if (kind[i] == K_TIMEOUT)
            CHECKF(dl >= want[i] && dl <= csp_now() + ns, "timeout context deadline off by %" PRId64,
                   dl - want[i]);
        else
            CHECKF(dl == want[i], "deadline context: %" PRId64 " instead of %" PRId64, dl, want[i]);
        struct ctx_waiter w = { csp_ctx_retain(kids[i]), &wg };
        go_copy(ctx_waiter, &w, sizeof w);
        if (below(&l->rng, 6) == 0)
            csp_ctx_cancel(kids[i]);    /* some go before their parent */
    }
    OK(csp_sleep(between(&l->rng, 0, 3000) * US));
    csp_ctx_cancel(parent);
    csp_ctx *late = csp_ctx_with_cancel(parent);
    CHECK(late != NULL);
    CHECKF(csp_ctx_err(late) == ECANCELED, "child of a cancelled parent: err %d",
           csp_ctx_err(late));
    csp_ctx_release(late);
    OK(csp_wg_wait(&wg));
    int64_t now = csp_now();
    for (int i = 0; i < n; i++) {
        if (!kids[i])
            continue;
        int err = csp_ctx_err(kids[i]);
        if (kind[i] == K_CANCEL)
            CHECKF(err == ECANCELED, "cancel context: err %d", err);
        else
            CHECKF(err == ECANCELED || (err == ETIMEDOUT && csp_ctx_deadline(kids[i]) <= now),
                   "deadline context (kind %d): err %d, deadline in %" PRId64 " ns", kind[i], err,
                   csp_ctx_deadline(kids[i]) - now);
        csp_ctx_release(kids[i]);
        csp_ctx_release(mid[i]);
    }
    CHECK(csp_ctx_err(parent) == ECANCELED);
    csp_ctx_release(parent);
    if (opt.inject == INJECT_LEAK) {
        char *leak = malloc(1024);
        if (leak)
            memset(leak, 1, 1024);
    }
    atomic_fetch_add(&F.contexts, made + 1);
}

/* ---- task churn ---- */

struct churn_round {
    csp_waitgroup wg;
    atomic_uint ran, once_runs, nested;
    csp_once once;
};

struct churn_env {
    struct churn_round *r;
    uint32_t len, seed;
    unsigned char data[224];
};

static void churn_once(void *arg)
{
    struct churn_round *r = arg;
    atomic_fetch_add(&r->once_runs, 1);
}

static void churn_plain(void *arg)
{
    struct churn_round *r = arg;
    OK(csp_once_do(&r->once, churn_once, r));
    CHECK(atomic_load(&r->once_runs) == 1);
    atomic_fetch_add(&r->ran, 1);
    csp_wg_done(&r->wg);
}

static void churn_copy(void *arg)
{
    struct churn_env *e = arg;
    struct churn_round *r = e->r;
    for (uint32_t i = 0; i < e->len; i++)
        if (e->data[i] != (unsigned char)(e->seed + i * 7)) {
            failf(__LINE__, "csp_go_copy environment byte %u of %u corrupted", i, e->len);
            break;
        }
    if (e->seed % 8 == 0)
        csp_yield();
    if (e->seed % 16 == 1) {
        /* A grandchild, added while we still hold our count. */
        csp_wg_add(&r->wg, 1);
        atomic_fetch_add(&r->nested, 1);
        go(churn_plain, r);
    }
    churn_plain(r);
}

static void churn_round(struct loop *l)
{
    struct churn_round *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    if (!r)
        return;
    unsigned n = 1 + below(&l->rng, 256);
    csp_wg_add(&r->wg, n);
    for (unsigned i = 0; i < n; i++) {
        if (i % 2) {
            go(churn_plain, r);
            continue;
        }
        struct churn_env e;
        e.r = r;
        e.len = below(&l->rng, sizeof e.data + 1);
        e.seed = (uint32_t)rng_next(&l->rng);
        for (uint32_t j = 0; j < e.len; j++)
            e.data[j] = (unsigned char)(e.seed + j * 7);
        go_copy(churn_copy, &e, offsetof(struct churn_env, data) + e.len);
        memset(&e, 0xEE, sizeof e);     /* the task has its own copy */
    }
    OK(csp_wg_wait(&r->wg));
    CHECKF(atomic_load(&r->ran) == n + atomic_load(&r->nested), "churn: %u of %u tasks ran",
           atomic_load(&r->ran), n + atomic_load(&r->nested));
    CHECK(atomic_load(&r->once_runs) == 1);
    free(r);
}

/* ---- the loops and the main task ---- */

static struct loop loops[] = {
    { "pipeline", pipe_round, { 0 }, 0, false },
    { "pipeline", pipe_round, { 0 }, 0, false },
    { "fan", fan_round, { 0 }, 0, false },
    { "select", sel_round, { 0 }, 0, false },
    { "lock", lock_round, { 0 }, 0, false },
    { "timer", timer_round, { 0 }, 0, false },
    { "context", ctx_round, { 0 }, 0, false },
    { "churn", churn_round, { 0 }, 0, false },
};
enum { NLOOPS = sizeof loops / sizeof loops[0] };

static csp_waitgroup loops_wg;

static void loop_task(void *arg)
{
    struct loop *l = arg;
    rng_init(&l->rng);
    while (!stopping()) {
        l->round(l);
        atomic_fetch_add(&l->rounds, 1);
    }
    csp_wg_done(&loops_wg);
}

/* ---- RSS sampling and the watchdog (a plain thread) ---- */

static struct {
    pthread_t th;
    atomic_bool stop;
    atomic_bool finished;       /* the workload is over: only shutdown left */
    int64_t t0, end;
    pthread_mutex_t mu;         /* guards the series against the final read */
    long long *kib;
    size_t n, cap;
    const char *source;
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

static long long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long long size, res;
        int ok = fscanf(f, "%lld %lld", &size, &res) == 2;
        fclose(f);
        if (ok) {
            R.source = "/proc/self/statm";
            return res * (sysconf(_SC_PAGESIZE) / 1024);
        }
    }
    /* No /proc: the peak so far, which serves the plateau test as well. */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    R.source = "getrusage ru_maxrss (peak)";
#ifdef __APPLE__
    return (long long)ru.ru_maxrss / 1024;     /* bytes there */
#else
    return (long long)ru.ru_maxrss;            /* KiB */
#endif
}

static void rss_record(long long v)
{
    pthread_mutex_lock(&R.mu);
    if (R.n == R.cap) {
        size_t cap = R.cap ? 2 * R.cap : 1024;
        long long *p = realloc(R.kib, cap * sizeof *p);
        if (p) {
            R.kib = p;
            R.cap = cap;
        }
    }
    if (R.n < R.cap)
        R.kib[R.n++] = v;
    pthread_mutex_unlock(&R.mu);
}

static void rss_print_series(FILE *f)
{
    fprintf(f, "soak: rss series (MiB, one sample a second from the start):\n");
    for (size_t i = 0; i < R.n; i++)
        fprintf(f, "%.1f%s", (double)R.kib[i] / 1024, (i + 1) % 20 == 0 || i + 1 == R.n ? "\n" : " ");
}

static void hang(const char *why)
{
    fprintf(stderr, "soak: FAIL: %s; the tasks:\n", why);
    csp_dump(2);
    pthread_mutex_lock(&R.mu);
    rss_print_series(stderr);
    pthread_mutex_unlock(&R.mu);
    fflush(NULL);
    _exit(3);
}

enum { STALL_S = 60, SHUTDOWN_GRACE_S = 120 };

static void *sampler(void *arg)
{
    (void)arg;
    uint64_t seen[NLOOPS] = { 0 };
    int64_t moved[NLOOPS];
    int64_t next = R.t0 + SEC;      /* main took the sample of second 0 */
    for (int i = 0; i < NLOOPS; i++)
        moved[i] = R.t0;
    while (!atomic_load(&R.stop)) {
        int64_t now = csp_now();
        if (now < next) {
            plain_sleep(next - now < 20 * MS ? next - now : 20 * MS);
            continue;
        }
        next += SEC;
        rss_record(rss_kib());
        if (!atomic_load(&R.finished)) {
            for (int i = 0; i < NLOOPS; i++) {
                uint64_t r = atomic_load(&loops[i].rounds);
                if (loops[i].off || r != seen[i]) {
                    seen[i] = r;
                    moved[i] = now;
                } else if (now - moved[i] > STALL_S * SEC && now < R.end) {
                    char why[128];
                    snprintf(why, sizeof why, "the %s loop finished no round in %d s",
                             loops[i].name, STALL_S);
                    hang(why);
                }
            }
        }
        if (now > R.end + SHUTDOWN_GRACE_S * SEC)
            hang("shutdown has not finished 120 s after the end of the run");
    }
    return NULL;
}

/* ---- main ---- */

static pthread_t lock_th, fan_th;
static csp_waitgroup threads_wg;

static void *lock_thread_main(void *arg)
{
    lock_thread(arg);
    csp_wg_done(&threads_wg);
    return NULL;
}

static void *fan_thread_main(void *arg)
{
    fan_thread(arg);
    csp_wg_done(&threads_wg);
    return NULL;
}

static void progress(int64_t now)
{
    long long kib = 0;
    pthread_mutex_lock(&R.mu);
    if (R.n)
        kib = R.kib[R.n - 1];
    pthread_mutex_unlock(&R.mu);
    printf("soak: t=%" PRId64 "s values=%" PRIu64 " messages=%" PRIu64 " tasks=%" PRIu64
           " selects=%" PRIu64 " lockops=%" PRIu64 " rss=%.1fMiB\n",
           (int64_t)((now - R.t0) / SEC), atomic_load(&F.got.n), atomic_load(&F.messages),
           atomic_load(&F.spawned), atomic_load(&F.selects), atomic_load(&F.lockops),
           (double)kib / 1024);
    fflush(stdout);
}

static void soak_main(void *arg)
{
    (void)arg;
    fan_jobs = csp_chan_make(sizeof(struct fan_round *), 0);
    CHECK(fan_jobs != NULL);
    csp_wg_add(&threads_wg, 2);
    if (pthread_create(&lock_th, NULL, lock_thread_main, NULL) != 0 ||
        pthread_create(&fan_th, NULL, fan_thread_main, NULL) != 0) {
        fprintf(stderr, "soak: pthread_create failed\n");
        exit(2);
    }
    for (int i = 0; i < NLOOPS; i++)
        if (!loops[i].off) {
            csp_wg_add(&loops_wg, 1);
            go(loop_task, &loops[i]);
        }

    /* Wait for the end, waking once a second on a ticker. */
    csp_chan *tick = csp_tick(SEC);
    CHECK(tick != NULL);
    csp_chan *done = csp_ctx_done(root);
    int64_t every = (opt.seconds >= 100 ? opt.seconds / 10 : 10) * SEC, next = R.t0 + every;
    for (;;) {
        int64_t t;
        csp_case cs[2] = { CSP_RECV(tick, &t), CSP_RECV(done, NULL) };
        int k = csp_select(cs, 2, R.end);
        if (k != 0)
            break;                  /* the end, or a failure cancelled root */
        if (!opt.quiet && t >= next) {
            progress(t);
            next += every;
        }
    }
    OK(csp_tick_stop(tick));
    csp_chan_release(tick);

    atomic_store(&R.finished, true);
    csp_ctx_cancel(root);
    OK(csp_wg_wait(&loops_wg));
    OK(csp_close(fan_jobs));
    OK(csp_wg_wait(&threads_wg));
    pthread_join(lock_th, NULL);
    pthread_join(fan_th, NULL);
    csp_chan_release(fan_jobs);
    lock_check();
}

static long parse_num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "soak: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: soak [--seconds=N] [--workers=N] [--seed=N] [--rss-check=auto|on|off]\n"
               "            [--max-rss-mib=N] [--quiet] [--inject=lose|dup|leak]\n"
               "            [--only=LOOP,...]  (pipeline fan select lock timer context churn)\n"
               "environment: SOAK_SECONDS (default 600), SOAK_WORKERS (default 4)\n");
}

static void parse_args(int argc, char **argv)
{
    const char *s;
    if ((s = getenv("SOAK_SECONDS")) && *s)
        opt.seconds = parse_num(s, "SOAK_SECONDS");
    if ((s = getenv("SOAK_WORKERS")) && *s)
        opt.workers = (unsigned)parse_num(s, "SOAK_WORKERS");
    opt.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--seconds=", 10))
            opt.seconds = parse_num(a + 10, "--seconds");
        else if (!strncmp(a, "--workers=", 10))
            opt.workers = (unsigned)parse_num(a + 10, "--workers");
        else if (!strncmp(a, "--seed=", 7))
            opt.seed = (uint64_t)parse_num(a + 7, "--seed");
        else if (!strncmp(a, "--max-rss-mib=", 14))
            opt.max_rss_mib = parse_num(a + 14, "--max-rss-mib");
        else if (!strcmp(a, "--rss-check=auto"))
            opt.rss_check = -1;
        else if (!strcmp(a, "--rss-check=on"))
            opt.rss_check = 1;
        else if (!strcmp(a, "--rss-check=off"))
            opt.rss_check = 0;
        else if (!strcmp(a, "--inject=lose"))
            opt.inject = INJECT_LOSE;
        else if (!strcmp(a, "--inject=dup"))
            opt.inject = INJECT_DUP;
        else if (!strcmp(a, "--inject=leak"))
            opt.inject = INJECT_LEAK;
        else if (!strncmp(a, "--only=", 7))
            opt.only = a + 7;
        else if (!strcmp(a, "--quiet"))
            opt.quiet = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (opt.seconds < 1)
        opt.seconds = 1;
    if (opt.only) {
        /* To find which traffic a leak or a hang comes with. */
        bool any = false;
        for (int i = 0; i < NLOOPS; i++) {
            size_t len = strlen(loops[i].name);
            const char *p = opt.only;
            loops[i].off = true;
            while (p && *p) {
                if (!strncmp(p, loops[i].name, len) && (p[len] == ',' || !p[len]))
                    loops[i].off = false;
                p = strchr(p, ',');
                p = p ? p + 1 : NULL;
            }
            any |= !loops[i].off;
        }
        if (!any) {
            fprintf(stderr, "soak: --only=%s names no loop\n", opt.only);
            exit(2);
        }
    }
}

/* The plateau verdict (see the comment at the top); returns true if the
 * series passes, printing what it compared. */
static bool rss_verdict(bool enforce, long long *peak)
{
    size_t n = 0;           /* samples inside the run window */
    *peak = 0;
    for (size_t i = 0; i < R.n; i++) {
        if (R.kib[i] > *peak)
            *peak = R.kib[i];
        if ((int64_t)i <= opt.seconds)
            n = i + 1;
    }
    bool ok = true;
    long long limit_kib = opt.max_rss_mib * 1024;
    if (opt.max_rss_mib > 0 && *peak > limit_kib) {
        printf("soak: peak RSS %.1f MiB is above --max-rss-mib=%ld%s\n", (double)*peak / 1024,
               opt.max_rss_mib, enforce ? "" : " (not enforced)");
        ok = !enforce;
    }
    size_t warm = (n + 9) / 10, third = (n - warm) / 3;
    if (opt.seconds < 30 || third < 3) {
        printf("soak: run too short for the plateau test (%zu samples); peak RSS %.1f MiB\n", n,
               (double)*peak / 1024);
        return ok;
    }
    long long first = 0, last = 0;
    for (size_t i = warm; i < warm + third; i++)
        first = R.kib[i] > first ? R.kib[i] : first;
    for (size_t i = n - third; i < n; i++)
        last = R.kib[i] > last ? R.kib[i] : last;
    long long allowed = first + first / 20 + 4096;
    double span = (double)(n - third - warm);   /* seconds between the windows */
    printf("soak: rss plateau: warm-up %zu s, max of s %zu-%zu %.1f MiB, max of s %zu-%zu %.1f MiB,"
           " allowed %.1f MiB (detects leaks above ~%.0f KiB/s)%s\n",
           warm, warm, warm + third - 1, (double)first / 1024, n - third, n - 1,
           (double)last / 1024, (double)allowed / 1024, (double)(allowed - first) / span,
           enforce ? "" : " (not enforced)");
    /* A summary for the record: the maximum of each tenth of the run. */
    printf("soak: rss max by tenth (MiB):");
    for (int t = 0; t < 10; t++) {
        long long m = 0;
        for (size_t i = n * t / 10; i < n * (t + 1) / 10; i++)
            m = R.kib[i] > m ? R.kib[i] : m;
        printf(" %.1f", (double)m / 1024);
    }
    printf("\n");
    if (last > allowed) {
        printf("soak: RSS still growing: %.1f MiB > %.1f MiB allowed%s\n", (double)last / 1024,
               (double)allowed / 1024, enforce ? "" : " (not enforced)");
        if (enforce) {
            rss_print_series(stdout);
            ok = false;
        }
    }
    return ok;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    bool enforce = opt.rss_check == 1 || (opt.rss_check == -1 && !SANITIZED);
    /* Nothing but our own output on stdout; a pipe to a log must not hold
     * back the progress lines. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    R.t0 = csp_now();
    R.end = R.t0 + opt.seconds * SEC;
    rss_record(rss_kib());
    printf("soak: %ld s, %u workers, seed %" PRIu64 ", RSS from %s, checks %s\n", opt.seconds,
           opt.workers, opt.seed, R.source ? R.source : "nowhere",
           enforce ? "enforced" : "reported only");
    if (pthread_create(&R.th, NULL, sampler, NULL) != 0) {
        fprintf(stderr, "soak: pthread_create failed\n");
        return 2;
    }

    csp_config cfg = { opt.workers, 0, 0 };
    int err = csp_start(&cfg);
    if (err) {
        fprintf(stderr, "soak: csp_start: %s\n", strerror(err));
        return 2;
    }
    root = csp_ctx_with_cancel(csp_ctx_background());
    if (!root) {
        fprintf(stderr, "soak: csp_ctx_with_cancel: %s\n", strerror(errno));
        return 2;
    }
    err = csp_run(soak_main, NULL);
    CHECKF(err == 0, "csp_run returned %d", err);
    int64_t t_end = csp_now();
    csp_ctx_release(root);
    root = NULL;

    atomic_store(&R.stop, true);
    pthread_join(R.th, NULL);
    long long end_kib = rss_kib();

    /* Every value sent, over the whole run, was received exactly once. */
    struct tally sent = atally_get(&F.sent), got = atally_get(&F.got);
    CHECKF(tally_eq(sent, got), "whole run: " TALLY_FMT, TALLY_ARGS(sent, got));

    long long peak;
    pthread_mutex_lock(&R.mu);
    bool rss_ok = rss_verdict(enforce, &peak);
    pthread_mutex_unlock(&R.mu);
    if (end_kib > peak)
        peak = end_kib;
    bool pass = rss_ok && atomic_load(&failures) == 0;
    printf("soak: rounds:");
    for (int i = 0; i < NLOOPS; i++)
        printf(" %s=%" PRIu64, loops[i].name, atomic_load(&loops[i].rounds));
    printf("\n");
    printf("soak: seconds=%.1f values=%" PRIu64 " messages=%" PRIu64 " tasks=%" PRIu64
           " selects=%" PRIu64 " timeouts=%" PRIu64 " polls=%" PRIu64 " lockops=%" PRIu64
           " timers=%" PRIu64 " contexts=%" PRIu64 " peak_rss_kib=%lld end_rss_kib=%lld %s\n",
           (double)(t_end - R.t0) / SEC, got.n, atomic_load(&F.messages),
           atomic_load(&F.spawned), atomic_load(&F.selects), atomic_load(&F.timeouts),
           atomic_load(&F.polls), atomic_load(&F.lockops), atomic_load(&F.timers),
           atomic_load(&F.contexts), peak, end_kib, pass ? "PASS" : "FAIL");
    free(R.kib);
    return pass ? 0 : 1;
}
