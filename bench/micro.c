/*
 * micro.c - micro-benchmarks that explain the workloads of csp_bench.
 *
 * Usage: micro [--quick] [--workers=N] [NAME ...]     (default: all)
 *   Same output line as csp_bench:  NAME ns_per_op=<float> ops=<int> wall_s=<float>
 *   CSP_BENCH_SCALE=<factor> scales the iteration counts, --quick is tiny;
 *   --workers=N sets the pool of the runs that use the default (all but
 *   ctx_switch and spawn_exit, which use one worker, and wake_remote*).
 *
 *   ctx_switch          two tasks csp_yield to each other on one worker
 *                       (workers=1); per yield = one task->task switch
 *                       (through the worker's scheduler loop)
 *   spawn_exit          csp_go of an empty task and its exit, one worker
 *   mutex_uncontended   csp_mutex_lock + csp_mutex_unlock, one task
 *   select_ready1/2/4/8 csp_select over 1/2/4/8 buffered channels that all
 *                       hold values (every case ready), one task
 *   try_send_full       csp_try_send on a full buffered channel (EAGAIN)
 *   try_recv_empty      csp_try_recv on an empty buffered channel (EAGAIN)
 *   try_recv_empty_unbuf csp_try_recv on an unbuffered channel, no sender
 *   wake_handoff        latency from a csp_send to a task parked in csp_recv
 *                       until it runs, when the sender then parks (the woken
 *                       task runs next on the sender's worker)
 *   wake_remote         the same, but the sender keeps its worker busy, so
 *                       another worker must take the woken task; if none
 *                       does within 1 ms the sender yields (stuck_1ms=
 *                       counts those rounds)
 *   wake_remote_idle    wake_remote after a 1 ms pause, so the other worker
 *                       has gone to sleep (futex wake-up included)
 *   ctx_cancel          csp_ctx_with_cancel + csp_ctx_cancel + release
 *   ctx_child_cancel    the same under a live cancellable parent
 *
 * Each checks what it did (counts, return codes) and exits 1 if wrong.
 */
#include <csp.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double scale = 1.0;
static unsigned workers_opt;       /* --workers=N: for the default-pool runs */

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "micro: FAILED %s:%d: ", __FILE__, __LINE__);  \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define OK(call) CHECK((call) == 0, "%s", #call)

static long size_of(long n, long lo)
{
    long s = (long)((double)n * scale);
    return s < lo ? lo : s;
}

static void report(const char *name, long ops, int64_t ns, const char *extra)
{
    printf("%s ns_per_op=%.2f ops=%ld wall_s=%.6f%s\n", name, (double)ns / (double)ops, ops,
           (double)ns / 1e9, extra ? extra : "");
    fflush(stdout);
}

static csp_chan *chan_make(size_t elem, size_t cap)
{
    csp_chan *c = csp_chan_make(elem, cap);
    CHECK(c != NULL, "csp_chan_make: %s", strerror(errno));
    return c;
}

static void go(void (*fn)(void *), void *arg)
{
    int err = csp_go(fn, arg);
    CHECK(err == 0, "csp_go: %s", strerror(err));
}

/* workers 0: the library default, or --workers=N. */
static void run(unsigned workers, void (*main_fn)(void *), void *arg)
{
    if (!workers)
        workers = workers_opt;
    if (workers) {
        csp_config cfg = { .workers = workers };
        OK(csp_start(&cfg));
    }
    int err = csp_run(main_fn, arg);
    CHECK(err == 0, "csp_run: %s", strerror(err));
}

struct common {
    long n;
    int64_t ns;
    long count;
};

/* ---- context switch ------------------------------------------------------ */

struct yielder {
    struct common *c;
    long count;
    csp_waitgroup *wg;
};

static void yield_task(void *arg)
{
    struct yielder *y = arg;
    for (long i = 0; i < y->c->n; i++) {
        csp_yield();
        y->count++;
    }
    csp_wg_done(y->wg);
}

static void ctx_switch_main(void *arg)
{
    struct common *c = arg;
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    struct yielder a = { c, 0, &wg }, b = { c, 0, &wg };
    csp_wg_add(&wg, 2);
    int64_t start = csp_now();
    go(yield_task, &a);
    go(yield_task, &b);
    OK(csp_wg_wait(&wg));      /* parked: only the two yielders take turns */
    c->ns = csp_now() - start;
    c->count = a.count + b.count;
}

static void m_ctx_switch(void)
{
    struct common c = { .n = size_of(5000000, 1000) };
    run(1, ctx_switch_main, &c);
    CHECK(c.count == 2 * c.n, "yield count %ld", c.count);
    /* ops = every yield: one switch from a task to the other, through the
     * worker's scheduler loop (two register swaps). */
    report("ctx_switch", 2 * c.n, c.ns, NULL);
}

/* ---- spawn + exit ---------------------------------------------------------- */

static void empty_task(void *arg)
{
    (*(long *)arg)++;      /* one worker: no data race */
}

static void spawn_main(void *arg)
{
    struct common *c = arg;
    long ran = 0;
    int64_t start = csp_now();
    for (long i = 0; i < c->n; i++) {
        go(empty_task, &ran);
        if ((i & 63) == 63)
            csp_yield();   /* the 64 new tasks run and exit */
    }
    while (ran < c->n)
        csp_yield();
    c->ns = csp_now() - start;
    c->count = ran;
}

static void m_spawn_exit(void)
{
    struct common c = { .n = size_of(2000000, 1000) };
    run(1, spawn_main, &c);
    CHECK(c.count == c.n, "spawned %ld ran %ld", c.n, c.count);
    report("spawn_exit", c.n, c.ns, NULL);
}

/* ---- uncontended mutex ---------------------------------------------------- */

static void mutex_main(void *arg)
{
    struct common *c = arg;
    csp_mutex mu = CSP_MUTEX_INIT;
    long count = 0;
    int64_t start = csp_now();
    for (long i = 0; i < c->n; i++) {
        OK(csp_mutex_lock(&mu));
        count++;
        OK(csp_mutex_unlock(&mu));
    }
    c->ns = csp_now() - start;
    c->count = count;
    CHECK(csp_mutex_trylock(&mu) == 0, "mutex left locked");
}

static void m_mutex(void)
{
    struct common c = { .n = size_of(20000000, 1000) };
    run(0, mutex_main, &c);
    CHECK(c.count == c.n, "count %ld", c.count);
    report("mutex_uncontended", c.n, c.ns, NULL);
}

/* ---- select with k ready cases ----------------------------------------------- */

struct sel {
    struct common c;
    int k;
};

/* Out of line so that `make bench-instr` can count this loop alone
 * (callgrind --toggle-collect), without the filling of the channels. */
__attribute__((noinline)) static int64_t select_loop(csp_case *cases, int k, long n, long *hits,
                                                     const int64_t *v)
{
    int64_t sum = 0;
    for (long i = 0; i < n; i++) {
        int r = csp_select(cases, (size_t)k, CSP_FOREVER);
        CHECK(r >= 0 && r < k, "select returned %d", r);
        hits[r]++;
        sum += *v;
    }
    return sum;
}

static void select_main(void *arg)
{
    struct sel *s = arg;
    long n = s->c.n;
    csp_chan *chs[8];
    csp_case cases[8];
    int64_t v = -1;
    /* Every channel holds n values: no case can run dry during the loop. */
    for (int i = 0; i < s->k; i++) {
        chs[i] = chan_make(sizeof(int64_t), (size_t)n);
        for (int64_t j = 0; j < n; j++)
            OK(csp_try_send(chs[i], &j));
        cases[i] = CSP_RECV(chs[i], &v);
    }
    long hits[8] = { 0 };
    int64_t start = csp_now();
    int64_t sum = select_loop(cases, s->k, n, hits, &v);
    s->c.ns = csp_now() - start;
    /* Each channel yields its values in order: check the sum. */
    int64_t want = 0;
    for (int i = 0; i < s->k; i++) {
        want += hits[i] * (hits[i] - 1) / 2;
        CHECK(csp_chan_len(chs[i]) == (size_t)(n - hits[i]), "chan len");
        csp_chan_release(chs[i]);
    }
    CHECK(sum == want, "select sum %lld want %lld", (long long)sum, (long long)want);
    s->c.count = n;
}

static void m_select(int k)
{
    struct sel s = { .c = { .n = size_of(1000000 / (k > 2 ? k / 2 : 1), 1000) }, .k = k };
    run(0, select_main, &s);
    char name[32];
    snprintf(name, sizeof name, "select_ready%d", k);
    report(name, s.c.n, s.c.ns, NULL);
}

static void m_select1(void) { m_select(1); }
static void m_select2(void) { m_select(2); }
static void m_select4(void) { m_select(4); }
static void m_select8(void) { m_select(8); }

/* ---- try on full / empty ------------------------------------------------------ */

static void try_main(void *arg)
{
    struct common *c = arg;     /* count: 0 send-full, 1 recv-empty, 2 unbuffered recv */
    int mode = (int)c->count;
    csp_chan *ch = chan_make(sizeof(int64_t), mode == 2 ? 0 : 1);
    int64_t v = 7;
    if (mode == 0)
        OK(csp_try_send(ch, &v));
    long eagain = 0;
    int64_t start = csp_now();
    if (mode == 0) {
        for (long i = 0; i < c->n; i++)
            eagain += csp_try_send(ch, &v) == EAGAIN;
    } else {
        for (long i = 0; i < c->n; i++)
            eagain += csp_try_recv(ch, &v) == EAGAIN;
    }
    c->ns = csp_now() - start;
    c->count = eagain;
    csp_chan_release(ch);
}

static void m_try(int mode, const char *name)
{
    struct common c = { .n = size_of(20000000, 1000), .count = mode };
    run(0, try_main, &c);
    CHECK(c.count == c.n, "%s: %ld of %ld gave EAGAIN", name, c.count, c.n);
    report(name, c.n, c.ns, NULL);
}

static void m_try_send_full(void) { m_try(0, "try_send_full"); }
static void m_try_recv_empty(void) { m_try(1, "try_recv_empty"); }
static void m_try_recv_empty_unbuf(void) { m_try(2, "try_recv_empty_unbuf"); }

/* ---- wake-up latency ------------------------------------------------------------ */

enum { WAKE_HANDOFF, WAKE_REMOTE, WAKE_REMOTE_IDLE };
#define WAKE_STUCK_NS 1000000      /* waker gives its worker up after 1 ms */

struct wake {
    struct common c;
    int mode;
    csp_chan *ch, *ack;
    _Atomic long seen;           /* iterations the parked task finished     */
    _Atomic int64_t woke_at;     /* csp_now() when the woken task ran       */
    int64_t *lat;
    long stuck;                  /* iterations the woken task waited > 1 ms */
    csp_waitgroup wg;
};

static void wake_sleeper(void *arg)
{
    struct wake *w = arg;
    int64_t t0;
    for (long i = 0; i < w->c.n; i++) {
        OK(csp_recv(w->ch, &t0));
        atomic_store_explicit(&w->woke_at, csp_now(), memory_order_relaxed);
        atomic_store_explicit(&w->seen, i + 1, memory_order_release);
        if (w->mode == WAKE_HANDOFF)
            OK(csp_send(w->ack, &t0));
    }
    csp_wg_done(&w->wg);
}

static void wake_waker(void *arg)
{
    struct wake *w = arg;
    for (long i = 0; i < w->c.n; i++) {
        if (w->mode == WAKE_REMOTE_IDLE)
            OK(csp_sleep(1000000));   /* every worker has gone to sleep */
        /* The sleeper must be parked in csp_recv before we send.  With
         * the hand-off it is (it parked before we were resumed); else it
         * finished the previous round (seen == i): give it 5 us to get
         * back into csp_recv and park. */
        int64_t t0 = csp_now();
        if (w->mode != WAKE_HANDOFF) {
            while (csp_now() - t0 < 5000)
                ;
            t0 = csp_now();
        }
        OK(csp_send(w->ch, &t0));
        if (w->mode == WAKE_HANDOFF) {
            int64_t x;
            OK(csp_recv(w->ack, &x));     /* we park: it runs here next */
        } else {
            /* Keep this worker busy: the sleeper must run elsewhere.  If
             * no other worker takes it within 1 ms, count it and yield. */
            while (atomic_load_explicit(&w->seen, memory_order_acquire) < i + 1) {
                if (csp_now() - t0 > WAKE_STUCK_NS) {
                    w->stuck++;
                    while (atomic_load_explicit(&w->seen, memory_order_acquire) < i + 1)
                        csp_yield();
                    break;
                }
            }
        }
        CHECK(atomic_load_explicit(&w->seen, memory_order_acquire) == i + 1, "wake: lost");
        w->lat[i] = atomic_load_explicit(&w->woke_at, memory_order_relaxed) - t0;
    }
    csp_wg_done(&w->wg);
}

static void wake_main(void *arg)
{
    struct wake *w = arg;
    w->ch = chan_make(sizeof(int64_t), 0);
    w->ack = chan_make(sizeof(int64_t), 0);
    csp_wg_add(&w->wg, 2);
    int64_t start = csp_now();
    go(wake_sleeper, w);
    go(wake_waker, w);
    OK(csp_wg_wait(&w->wg));
    w->c.ns = csp_now() - start;
    csp_chan_release(w->ch);
    csp_chan_release(w->ack);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void m_wake(int mode, long n, const char *name)
{
    struct wake w;
    memset(&w, 0, sizeof w);
    w.c.n = size_of(n, 100);
    w.mode = mode;
    w.lat = calloc((size_t)w.c.n, sizeof *w.lat);
    CHECK(w.lat != NULL, "out of memory");
    /* Two workers (even on one CPU) for the remote kinds. */
    run(mode == WAKE_HANDOFF ? 0 : 2, wake_main, &w);
    CHECK(atomic_load(&w.seen) == w.c.n, "wake: %ld of %ld", atomic_load(&w.seen), w.c.n);
    int64_t sum = 0;
    for (long i = 0; i < w.c.n; i++) {
        CHECK(w.lat[i] >= 0, "negative latency");
        sum += w.lat[i];
    }
    qsort(w.lat, (size_t)w.c.n, sizeof *w.lat, cmp_i64);
    char extra[128];
    snprintf(extra, sizeof extra, " p50_ns=%lld p99_ns=%lld stuck_1ms=%ld",
             (long long)w.lat[w.c.n / 2], (long long)w.lat[w.c.n * 99 / 100], w.stuck);
    /* ns_per_op is the mean latency (not the wall time per iteration). */
    printf("%s ns_per_op=%.2f ops=%ld wall_s=%.6f%s\n", name, (double)sum / (double)w.c.n,
           w.c.n, (double)w.c.ns / 1e9, extra);
    fflush(stdout);
    free(w.lat);
}

static void m_wake_handoff(void) { m_wake(WAKE_HANDOFF, 200000, "wake_handoff"); }
static void m_wake_remote(void) { m_wake(WAKE_REMOTE, 5000, "wake_remote"); }
static void m_wake_remote_idle(void) { m_wake(WAKE_REMOTE_IDLE, 1000, "wake_remote_idle"); }

/* ---- context create + cancel ---------------------------------------------------- */

/* Creates and cancels c->n children of parent. */
static void cancel_loop(struct common *c, csp_ctx *parent)
{
    long cancelled = 0;
    int64_t start = csp_now();
    for (long i = 0; i < c->n; i++) {
        csp_ctx *ctx = csp_ctx_with_cancel(parent);
        CHECK(ctx != NULL, "csp_ctx_with_cancel: %s", strerror(errno));
        csp_ctx_cancel(ctx);
        cancelled += csp_ctx_err(ctx) == ECANCELED;
        csp_ctx_release(ctx);
    }
    c->ns = csp_now() - start;
    c->count = cancelled;
}

static void ctx_main(void *arg)
{
    cancel_loop(arg, csp_ctx_background());
}

static void m_ctx_cancel(void)
{
    struct common c = { .n = size_of(2000000, 1000) };
    run(0, ctx_main, &c);
    CHECK(c.count == c.n, "cancelled %ld of %ld", c.count, c.n);
    report("ctx_cancel", c.n, c.ns, NULL);
}

/* A child of a live cancellable parent: linked into the parent's list on
 * creation and unlinked on release (Go's WithCancel(parent) + cancel()). */
static void ctx_child_main(void *arg)
{
    csp_ctx *parent = csp_ctx_with_cancel(csp_ctx_background());
    CHECK(parent != NULL, "csp_ctx_with_cancel: %s", strerror(errno));
    cancel_loop(arg, parent);
    csp_ctx_release(parent);
}

static void m_ctx_child_cancel(void)
{
    struct common c = { .n = size_of(2000000, 1000) };
    run(0, ctx_child_main, &c);
    CHECK(c.count == c.n, "cancelled %ld of %ld", c.count, c.n);
    report("ctx_child_cancel", c.n, c.ns, NULL);
}

/* ---- main ---------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} micros[] = {
    { "ctx_switch", m_ctx_switch },
    { "spawn_exit", m_spawn_exit },
    { "mutex_uncontended", m_mutex },
    { "select_ready1", m_select1 },
    { "select_ready2", m_select2 },
    { "select_ready4", m_select4 },
    { "select_ready8", m_select8 },
    { "try_send_full", m_try_send_full },
    { "try_recv_empty", m_try_recv_empty },
    { "try_recv_empty_unbuf", m_try_recv_empty_unbuf },
    { "wake_handoff", m_wake_handoff },
    { "wake_remote", m_wake_remote },
    { "wake_remote_idle", m_wake_remote_idle },
    { "ctx_cancel", m_ctx_cancel },
    { "ctx_child_cancel", m_ctx_child_cancel },
};
#define NMICROS (sizeof micros / sizeof micros[0])

int main(int argc, char **argv)
{
    const char *env = getenv("CSP_BENCH_SCALE");
    if (env && *env)
        scale = strtod(env, NULL);
#ifdef CSP_BENCH_QUICK
    scale = 0.001;
#endif
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--quick") == 0)
            scale = 0.001;
        else if (strncmp(argv[first], "--workers=", 10) == 0)
            workers_opt = (unsigned)strtoul(argv[first] + 10, NULL, 10);
        else {
            fprintf(stderr, "usage: micro [--quick] [--workers=N] [NAME ...]\n");
            return 2;
        }
    }
    if (!(scale > 0)) {
        fprintf(stderr, "micro: bad CSP_BENCH_SCALE\n");
        return 2;
    }
    if (first == argc) {
        for (size_t i = 0; i < NMICROS; i++)
            micros[i].fn();
        return 0;
    }
    for (int a = first; a < argc; a++) {
        size_t i;
        for (i = 0; i < NMICROS; i++)
            if (strcmp(argv[a], micros[i].name) == 0)
                break;
        if (i == NMICROS) {
            fprintf(stderr, "unknown micro-benchmark %s\n", argv[a]);
            return 2;
        }
        micros[i].fn();
    }
    return 0;
}
