/*
 * csp_bench.c - the workloads B1-B10 of ../shared/peers/README.md with
 * libcsp tasks, side by side with the Go, crossbeam and flume programs.
 *
 * Usage: csp_bench [--quick] [--workers=N] [B1 B2 ...]
 *   Default: every workload, B9 first (so its RSS delta sees a fresh heap).
 *   Each prints   NAME ns_per_op=<float> ops=<int> wall_s=<float>
 *   (parked_memory adds bytes_per_task=<int>), the format of the peers;
 *   sieve adds msgs=<int>, the channel messages it moved.
 *   Sizes are the peers' unless scaled: --quick (a tiny run for `make
 *   check`) or CSP_BENCH_SCALE=<factor> (e.g. 0.1).  --workers=N starts the
 *   runtime with N workers instead of the default (one per CPU).
 *
 * Every workload checks its result (sums, the n-th prime, counters) and the
 * program exits 1 on a wrong one, so a broken run cannot print a number.
 * Each workload is one csp_run: its main function is a task, as Go's is.
 */
#include <csp.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double scale = 1.0;
static unsigned nworkers;          /* 0: the library default */

/* ---- helpers ---------------------------------------------------------- */

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "csp_bench: FAILED %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define OK(call) CHECK((call) == 0, "%s", #call)

/* A workload size: n scaled, at least lo, rounded down to a multiple of m. */
static long size_of(long n, long lo, long m)
{
    long s = (long)((double)n * scale);
    if (s < lo)
        s = lo;
    s -= s % m;
    return s < m ? m : s;
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

static void run(void (*main_fn)(void *), void *arg)
{
    if (nworkers) {
        csp_config cfg = { .workers = nworkers };
        OK(csp_start(&cfg));
    }
    int err = csp_run(main_fn, arg);
    CHECK(err == 0, "csp_run: %s", strerror(err));
}

/* ---- B1 spsc_buffered --------------------------------------------------- */

struct b1 {
    csp_chan *ch;
    long n;
    int64_t sum, ns;
};

static void b1_producer(void *arg)
{
    struct b1 *b = arg;
    for (int64_t i = 0; i < b->n; i++)
        OK(csp_send(b->ch, &i));
    csp_chan_release(b->ch);
}

static void b1_main(void *arg)
{
    struct b1 *b = arg;
    b->ch = chan_make(sizeof(int64_t), 1024);
    csp_chan_retain(b->ch);      /* the producer's reference */
    int64_t start = csp_now();
    go(b1_producer, b);
    int64_t sum = 0, v;
    for (long i = 0; i < b->n; i++) {
        OK(csp_recv(b->ch, &v));
        sum += v;
    }
    b->ns = csp_now() - start;
    b->sum = sum;
    csp_chan_release(b->ch);
}

static void bench_b1(void)
{
    struct b1 b = { .n = size_of(10000000, 1000, 1) };
    run(b1_main, &b);
    CHECK(b.sum == (int64_t)b.n * (b.n - 1) / 2, "spsc sum %lld", (long long)b.sum);
    report("spsc_buffered", b.n, b.ns, NULL);
}

/* ---- B2 pingpong_unbuffered ------------------------------------------------- */

struct b2 {
    csp_chan *ping, *pong;
    long n;
    int64_t v, ns;
};

static void b2_echo(void *arg)
{
    struct b2 *b = arg;
    int64_t v;
    for (long i = 0; i < b->n; i++) {
        OK(csp_recv(b->ping, &v));
        v++;
        OK(csp_send(b->pong, &v));
    }
    csp_chan_release(b->ping);
    csp_chan_release(b->pong);
}

static void b2_main(void *arg)
{
    struct b2 *b = arg;
    b->ping = chan_make(sizeof(int64_t), 0);
    b->pong = chan_make(sizeof(int64_t), 0);
    csp_chan_retain(b->ping);
    csp_chan_retain(b->pong);
    int64_t start = csp_now();
    go(b2_echo, b);
    int64_t v = 0;
    for (long i = 0; i < b->n; i++) {
        OK(csp_send(b->ping, &v));
        OK(csp_recv(b->pong, &v));
    }
    b->ns = csp_now() - start;
    b->v = v;
    csp_chan_release(b->ping);
    csp_chan_release(b->pong);
}

static void bench_b2(void)
{
    struct b2 b = { .n = size_of(1000000, 100, 1) };
    run(b2_main, &b);
    CHECK(b.v == b.n, "pingpong value %lld, want %ld", (long long)b.v, b.n);
    report("pingpong_unbuffered", b.n, b.ns, NULL);
}

/* ---- B3/B4 mpmc -------------------------------------------------------------- */

#define MP 4
#define MC 4

struct mpmc {
    csp_chan *ch;
    long total;
    size_t cap;
    csp_waitgroup pw, cw;
    int64_t sums[MC * 8];          /* one cache line apart, as Go's */
    int64_t ns;
};

struct mpmc_arg {
    struct mpmc *m;
    int id;
};

static void mpmc_producer(void *arg)
{
    struct mpmc_arg *a = arg;
    struct mpmc *m = a->m;
    long per = m->total / MP;
    int64_t base = (int64_t)a->id * per;
    for (long k = 0; k < per; k++) {
        int64_t v = base + k;
        OK(csp_send(m->ch, &v));
    }
    csp_wg_done(&m->pw);
}

static void mpmc_consumer(void *arg)
{
    struct mpmc_arg *a = arg;
    struct mpmc *m = a->m;
    int64_t s = 0, v;
    int err;
    while ((err = csp_recv(m->ch, &v)) == 0)
        s += v;
    CHECK(err == EPIPE, "mpmc recv: %s", strerror(err));
    m->sums[a->id * 8] = s;
    csp_wg_done(&m->cw);
}

static void mpmc_main(void *arg)
{
    struct mpmc *m = arg;
    struct mpmc_arg pa[MP], ca[MC];
    m->ch = chan_make(sizeof(int64_t), m->cap);
    int64_t start = csp_now();
    for (int i = 0; i < MP; i++) {
        pa[i] = (struct mpmc_arg){ m, i };
        csp_wg_add(&m->pw, 1);
        go(mpmc_producer, &pa[i]);
    }
    for (int i = 0; i < MC; i++) {
        ca[i] = (struct mpmc_arg){ m, i };
        csp_wg_add(&m->cw, 1);
        go(mpmc_consumer, &ca[i]);
    }
    OK(csp_wg_wait(&m->pw));
    OK(csp_close(m->ch));
    OK(csp_wg_wait(&m->cw));
    m->ns = csp_now() - start;
    csp_chan_release(m->ch);
}

static void bench_mpmc(const char *name, size_t cap, long total)
{
    struct mpmc m;
    memset(&m, 0, sizeof m);
    m.cap = cap;
    m.total = size_of(total, 400, MP);
    run(mpmc_main, &m);
    int64_t s = 0;
    for (int i = 0; i < MC; i++)
        s += m.sums[i * 8];
    CHECK(s == (int64_t)m.total * (m.total - 1) / 2, "%s sum %lld", name, (long long)s);
    report(name, m.total, m.ns, NULL);
}

static void bench_b3(void) { bench_mpmc("mpmc_buffered", 1024, 10000000); }
static void bench_b4(void) { bench_mpmc("mpmc_unbuffered", 0, 1000000); }

/* ---- B5 select_recv4 ------------------------------------------------------------ */

struct b5 {
    csp_chan *chs[4];
    long per;
    int64_t sum, ns;
};

struct b5_arg {
    csp_chan *ch;
    long per;
};

static void b5_producer(void *arg)
{
    struct b5_arg *a = arg;
    for (int64_t k = 0; k < a->per; k++)
        OK(csp_send(a->ch, &k));
    csp_chan_release(a->ch);
}

static void b5_main(void *arg)
{
    struct b5 *b = arg;
    struct b5_arg pa[4];
    int64_t v[4];
    csp_case cases[4];
    for (int i = 0; i < 4; i++) {
        b->chs[i] = chan_make(sizeof(int64_t), 1024);
        cases[i] = CSP_RECV(b->chs[i], &v[i]);
    }
    int64_t start = csp_now();
    for (int i = 0; i < 4; i++) {
        pa[i] = (struct b5_arg){ csp_chan_retain(b->chs[i]), b->per };
        go(b5_producer, &pa[i]);
    }
    int64_t sum = 0;
    long total = 4 * b->per;
    for (long i = 0; i < total; i++) {
        int k = csp_select(cases, 4, CSP_FOREVER);
        CHECK(k >= 0 && k < 4, "select returned %d", k);
        CHECK(cases[k].err == 0, "select case err %d", cases[k].err);
        sum += v[k];
    }
    b->ns = csp_now() - start;
    b->sum = sum;
    for (int i = 0; i < 4; i++)
        csp_chan_release(b->chs[i]);
}

static void bench_b5(void)
{
    struct b5 b = { .per = size_of(1000000, 100, 1) };
    run(b5_main, &b);
    CHECK(b.sum == 4 * (int64_t)b.per * (b.per - 1) / 2, "select sum %lld", (long long)b.sum);
    report("select_recv4", 4 * b.per, b.ns, NULL);
}

/* ---- B6 spawn_wait ----------------------------------------------------------------- */

static csp_waitgroup b6_wg;

static void b6_task(void *arg)
{
    *(unsigned char *)arg = 1;      /* proof that this very task ran */
    csp_wg_done(&b6_wg);
}

struct b6 {
    long n;
    unsigned char *ran;
    int64_t ns;
};

static void b6_main(void *arg)
{
    struct b6 *b = arg;
    int64_t start = csp_now();
    for (long i = 0; i < b->n; i++) {
        csp_wg_add(&b6_wg, 1);
        go(b6_task, &b->ran[i]);
    }
    OK(csp_wg_wait(&b6_wg));
    b->ns = csp_now() - start;
}

static void bench_b6(void)
{
    struct b6 b = { .n = size_of(1000000, 100, 1) };
    b.ran = malloc((size_t)b.n);
    CHECK(b.ran != NULL, "out of memory");
    memset(b.ran, 0, (size_t)b.n);           /* touched before the clock starts */
    run(b6_main, &b);
    for (long i = 0; i < b.n; i++)
        CHECK(b.ran[i] == 1, "spawn_wait: task %ld did not run", i);
    free(b.ran);
    report("spawn_wait", b.n, b.ns, NULL);
}

/* ---- B7 sieve -------------------------------------------------------------------------- */

struct filter_env {
    csp_chan *in, *out;
    int prime;
};

static void sieve_generate(void *arg)
{
    csp_chan *ch = arg;
    for (int i = 2;; i++)
        if (csp_send(ch, &i) != 0)
            break;                  /* the chain is unwinding */
    csp_chan_release(ch);
}

static void sieve_filter(void *arg)
{
    struct filter_env *e = arg;
    int i;
    while (csp_recv(e->in, &i) == 0) {
        if (i % e->prime != 0 && csp_send(e->out, &i) != 0)
            break;
    }
    /* Unwind (not timed): upstream's next send and downstream's receive
     * fail, so no task is left parked when csp_run waits for them all. */
    csp_close(e->in);
    csp_close(e->out);
    csp_chan_release(e->in);
    csp_chan_release(e->out);
}

struct b7 {
    int n, last;
    int64_t ns;
};

static void b7_main(void *arg)
{
    struct b7 *b = arg;
    int64_t start = csp_now();
    csp_chan *ch = chan_make(sizeof(int), 0);
    go(sieve_generate, csp_chan_retain(ch));
    int last = 0;
    for (int k = 0; k < b->n; k++) {
        int prime;
        OK(csp_recv(ch, &prime));
        last = prime;
        csp_chan *next = chan_make(sizeof(int), 0);
        struct filter_env e = { ch, csp_chan_retain(next), prime };
        int err = csp_go_copy(sieve_filter, &e, sizeof e);   /* takes our ref of ch */
        CHECK(err == 0, "csp_go_copy: %s", strerror(err));
        ch = next;
    }
    b->ns = csp_now() - start;
    b->last = last;
    csp_close(ch);
    csp_chan_release(ch);
}

static int nth_prime(int n)
{
    int count = 0;
    for (int p = 2;; p++) {
        int prime = 1;
        for (int d = 2; d * d <= p; d++)
            if (p % d == 0) {
                prime = 0;
                break;
            }
        if (prime && ++count == n)
            return p;
    }
}

/* Channel messages the sieve moved to find the primes up to `last`: m goes
 * from the generator through the filters of the primes below its smallest
 * prime factor p, so it is sent index(p) times (12,639,016 for 5000). */
static long sieve_messages(int last)
{
    int *index = calloc((size_t)last + 1, sizeof *index);   /* of the smallest factor */
    CHECK(index != NULL, "out of memory");
    long msgs = 0;
    int nprimes = 0;
    for (int m = 2; m <= last; m++) {
        if (index[m] == 0) {
            index[m] = ++nprimes;
            for (long k = (long)m * m; k <= last; k += m)
                if (index[k] == 0)
                    index[k] = nprimes;
        }
        msgs += index[m];
    }
    free(index);
    return msgs;
}

static void bench_b7(void)
{
    struct b7 b = { .n = (int)size_of(5000, 50, 1) };
    int want = nth_prime(b.n);
    CHECK(b.n != 5000 || want == 48611, "nth_prime(5000) = %d", want);
    run(b7_main, &b);
    CHECK(b.last == want, "sieve: prime %d is %d, want %d", b.n, b.last, want);
    char extra[64];
    snprintf(extra, sizeof extra, " msgs=%ld", sieve_messages(want));
    report("sieve", b.n, b.ns, extra);
}

/* ---- B8 mutex_contended ----------------------------------------------------------------- */

struct b8 {
    csp_mutex mu;
    int64_t counter;
    long per;
    csp_waitgroup wg;
    int64_t ns;
};

static void b8_task(void *arg)
{
    struct b8 *b = arg;
    for (long k = 0; k < b->per; k++) {
        OK(csp_mutex_lock(&b->mu));
        b->counter++;
        OK(csp_mutex_unlock(&b->mu));
    }
    csp_wg_done(&b->wg);
}

static void b8_main(void *arg)
{
    struct b8 *b = arg;
    int64_t start = csp_now();
    for (int i = 0; i < 4; i++) {
        csp_wg_add(&b->wg, 1);
        go(b8_task, b);
    }
    OK(csp_wg_wait(&b->wg));
    b->ns = csp_now() - start;
}

static void bench_b8(void)
{
    struct b8 b;
    memset(&b, 0, sizeof b);
    b.per = size_of(1000000, 100, 1);
    run(b8_main, &b);
    CHECK(b.counter == 4 * (int64_t)b.per, "mutex counter %lld, want %lld",
          (long long)b.counter, 4 * (long long)b.per);
    report("mutex_contended", 4 * b.per, b.ns, NULL);
}

/* ---- B9 parked_memory ----------------------------------------------------------------------- */

static long vm_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

struct b9 {
    long n;
    csp_chan **chs;
    csp_waitgroup started, done;
    _Atomic int64_t sum;
    long before, after;
    int64_t ns;
};

struct b9_arg {
    struct b9 *b;
    csp_chan *ch;
};

static void b9_task(void *arg)
{
    struct b9_arg a = *(struct b9_arg *)arg;
    int64_t v;
    csp_wg_done(&a.b->started);
    OK(csp_recv(a.ch, &v));
    atomic_fetch_add_explicit(&a.b->sum, v, memory_order_relaxed);
    csp_chan_release(a.ch);
    csp_wg_done(&a.b->done);
}

static void b9_main(void *arg)
{
    struct b9 *b = arg;
    b->before = vm_rss_bytes();
    int64_t start = csp_now();
    b->chs = malloc((size_t)b->n * sizeof *b->chs);
    CHECK(b->chs != NULL, "out of memory");
    csp_wg_add(&b->started, b->n);
    csp_wg_add(&b->done, b->n);
    for (long i = 0; i < b->n; i++) {
        csp_chan *ch = chan_make(sizeof(int64_t), 0);
        b->chs[i] = ch;
        struct b9_arg a = { b, csp_chan_retain(ch) };
        int err = csp_go_copy(b9_task, &a, sizeof a);
        CHECK(err == 0, "csp_go_copy: %s", strerror(err));
    }
    OK(csp_wg_wait(&b->started));
    /* give the last ones a moment to actually park */
    for (int i = 0; i < 10; i++)
        csp_yield();
    b->after = vm_rss_bytes();
    for (long i = 0; i < b->n; i++) {
        int64_t v = i;
        OK(csp_send(b->chs[i], &v));
        csp_chan_release(b->chs[i]);
    }
    OK(csp_wg_wait(&b->done));
    b->ns = csp_now() - start;
    free(b->chs);
}

static void bench_b9(void)
{
    struct b9 b;
    memset(&b, 0, sizeof b);
    b.n = size_of(100000, 100, 1);
    run(b9_main, &b);
    int64_t sum = atomic_load(&b.sum);
    CHECK(sum == (int64_t)b.n * (b.n - 1) / 2, "parked_memory sum %lld", (long long)sum);
    CHECK(b.before > 0 && b.after > 0, "cannot read VmRSS");
    char extra[64];
    snprintf(extra, sizeof extra, " bytes_per_task=%ld", (b.after - b.before) / b.n);
    report("parked_memory", b.n, b.ns, extra);
}

/* ---- B10 uncontended_buffered --------------------------------------------------------------- */

struct b10 {
    long total;
    int64_t sum, ns;
};

static void b10_main(void *arg)
{
    struct b10 *b = arg;
    csp_chan *ch = chan_make(sizeof(int64_t), 100);
    int64_t sum = 0, v;
    int64_t start = csp_now();
    for (long r = 0; r < b->total / 100; r++) {
        for (int64_t k = 0; k < 100; k++)
            OK(csp_send(ch, &k));
        for (int k = 0; k < 100; k++) {
            OK(csp_recv(ch, &v));
            sum += v;
        }
    }
    b->ns = csp_now() - start;
    b->sum = sum;
    csp_chan_release(ch);
}

static void bench_b10(void)
{
    struct b10 b = { .total = size_of(10000000, 1000, 100) };
    run(b10_main, &b);
    CHECK(b.sum == (int64_t)(b.total / 100) * 4950, "uncontended sum %lld", (long long)b.sum);
    report("uncontended_buffered", b.total, b.ns, NULL);
}

/* ---- main -------------------------------------------------------------------------------------- */

static const struct {
    const char *id, *name;
    void (*fn)(void);
} workloads[] = {
    { "B9", "parked_memory", bench_b9 },  /* first: a fresh heap for its RSS delta */
    { "B1", "spsc_buffered", bench_b1 },
    { "B2", "pingpong_unbuffered", bench_b2 },
    { "B3", "mpmc_buffered", bench_b3 },
    { "B4", "mpmc_unbuffered", bench_b4 },
    { "B5", "select_recv4", bench_b5 },
    { "B6", "spawn_wait", bench_b6 },
    { "B7", "sieve", bench_b7 },
    { "B8", "mutex_contended", bench_b8 },
    { "B10", "uncontended_buffered", bench_b10 },
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static void usage(void)
{
    fprintf(stderr, "usage: csp_bench [--quick] [--workers=N] [B1 ... B10 | NAME ...]\n"
                    "  env CSP_BENCH_SCALE=<factor> scales every size (default 1)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *env = getenv("CSP_BENCH_SCALE");
    if (env && *env) {
        scale = strtod(env, NULL);
        if (!(scale > 0))
            usage();
    }
#ifdef CSP_BENCH_QUICK
    scale = 0.001;           /* the make-check build: correctness only */
#endif
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--quick") == 0)
            scale = 0.001;
        else if (strncmp(argv[first], "--workers=", 10) == 0)
            nworkers = (unsigned)strtoul(argv[first] + 10, NULL, 10);
        else
            usage();
    }
    if (first == argc) {
        for (size_t i = 0; i < NWORKLOADS; i++)
            workloads[i].fn();
        return 0;
    }
    for (int a = first; a < argc; a++) {
        size_t i;
        for (i = 0; i < NWORKLOADS; i++)
            if (strcasecmp(argv[a], workloads[i].id) == 0 ||
                strcmp(argv[a], workloads[i].name) == 0)
                break;
        if (i == NWORKLOADS) {
            fprintf(stderr, "unknown workload %s\n", argv[a]);
            return 2;
        }
        workloads[i].fn();
    }
    return 0;
}
