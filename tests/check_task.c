/*
 * check_task.c - tasks and the scheduler: csp_go and csp_go_copy, yield,
 * parking on every kind of blocking call, tasks and plain threads on one
 * channel, a 10,000-stage prime sieve, 100,000 parked tasks, work
 * spreading over the workers, csp_start/csp_stop/csp_config, stacks
 * (size, guard pages, overflow), csp_run waiting for every task and the
 * happens-before edges of spawn and exit.
 */
#include "testutil.h"

#include <fenv.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


#define MS 1000000LL

/* Check's ck_assert_* report every passing check to the parent process (a
 * write(2) each), which is slow in hot loops and serializes threads; these
 * cost nothing when they pass and fail the test the same way. */
#define REQUIRE_MSG(x, ...) \
    do { if (!(x)) ck_abort_msg(__VA_ARGS__); } while (0)
#define REQUIRE(x) REQUIRE_MSG((x), "%s:%d: failed: %s", __FILE__, __LINE__, #x)
#define REQUIRE_OP_(a, op, b) do { \
        long long a_ = (long long)(a), b_ = (long long)(b); \
        if (!(a_ op b_)) \
            ck_abort_msg("%s:%d: failed: %s %s %s (%lld vs %lld)", __FILE__, __LINE__, \
                         #a, #op, #b, a_, b_); \
    } while (0)
#define REQUIRE_EQ(a, b) REQUIRE_OP_(a, ==, b)
#define REQUIRE_GE(a, b) REQUIRE_OP_(a, >=, b)
#define REQUIRE_GT(a, b) REQUIRE_OP_(a, >, b)
#define REQUIRE_LE(a, b) REQUIRE_OP_(a, <=, b)
#define NOINLINE_ATTR __attribute__((noinline))

/* ---- helpers ------------------------------------------------------------- */

static void start_cfg(unsigned workers, size_t stack, int guard)
{
    csp_config cfg = { workers, stack, guard };
    REQUIRE_EQ(csp_start(&cfg), 0);
}

static pthread_t thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t th;
    REQUIRE_EQ(pthread_create(&th, NULL, fn, arg), 0);
    return th;
}

static void thread_join(pthread_t th)
{
    REQUIRE_EQ(pthread_join(th, NULL), 0);
}

static void busy_ns(int64_t ns)
{
    int64_t end = csp_now() + ns;
    while (csp_now() < end)
        ;
}

/* ---- csp_go, csp_go_copy ------------------------------------------------- */

struct small_env {
    int id;
    double d;
    char name[20];
    csp_chan *out;
    csp_waitgroup *wg;
};

static void small_fn(void *arg)
{
    REQUIRE_EQ((uintptr_t)arg % alignof(max_align_t), 0);
    struct small_env *e = arg;
    char want[20];
    snprintf(want, sizeof want, "task-%d", e->id);
    REQUIRE(strcmp(e->name, want) == 0);
    REQUIRE(e->d == e->id * 0.5);
    REQUIRE_EQ(csp_send(e->out, &e->id), 0);
    csp_wg_done(e->wg);
}

struct big_env {
    csp_chan *out;
    csp_waitgroup *wg;
    size_t n;
    unsigned char bytes[];
};

static void big_fn(void *arg)
{
    REQUIRE_EQ((uintptr_t)arg % alignof(max_align_t), 0);
    struct big_env *e = arg;
    for (size_t i = 0; i < e->n; i++)
        REQUIRE_MSG(e->bytes[i] == (unsigned char)(i * 7 + e->n), "byte %zu", i);
    csp_sleep(MS);          /* the copy survives a park */
    for (size_t i = 0; i < e->n; i += 4096)
        REQUIRE(e->bytes[i] == (unsigned char)(i * 7 + e->n));
    int ok = 1;
    REQUIRE_EQ(csp_send(e->out, &ok), 0);
    csp_wg_done(e->wg);
}

static void arg_fn(void *arg)
{
    atomic_int *p = arg;
    atomic_fetch_add(p, 1);
}

static void go_copy_body(void)
{
    enum { N = 200 };
    csp_chan *out = csp_chan_make(sizeof(int), 0);
    csp_waitgroup wg = CSP_WAITGROUP_INIT;     /* senders done with `out` */
    int seen[N] = { 0 };
    for (int i = 0; i < N; i++) {
        csp_wg_add(&wg, 1);
        struct small_env e = { i, i * 0.5, "", out, &wg };
        snprintf(e.name, sizeof e.name, "task-%d", i);
        REQUIRE_EQ(csp_go_copy(small_fn, &e, sizeof e), 0);
        memset(&e, 0xEE, sizeof e);     /* the caller's env changes at once */
    }
    for (int i = 0; i < N; i++) {
        int id;
        REQUIRE_EQ(csp_recv(out, &id), 0);
        REQUIRE(id >= 0 && id < N);
        REQUIRE_EQ(seen[id]++, 0);
    }
    /* Sizes below, around and far above what fits next to the stack. */
    static const size_t sizes[] = { 1, 100, 4000, 16384, 70000, 1 << 20, 3 << 20 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        struct big_env *e = malloc(sizeof *e + n);
        REQUIRE(e);
        e->out = out;
        e->wg = &wg;
        csp_wg_add(&wg, 1);
        e->n = n;
        for (size_t i = 0; i < n; i++)
            e->bytes[i] = (unsigned char)(i * 7 + n);
        REQUIRE_EQ(csp_go_copy(big_fn, e, sizeof *e + n), 0);
        memset(e, 0, sizeof *e + n);
        free(e);
        int ok;
        REQUIRE_EQ(csp_recv(out, &ok), 0);
    }
    /* csp_go passes its argument through untouched. */
    static atomic_int hits;
    for (int i = 0; i < 10; i++)
        REQUIRE_EQ(csp_go(arg_fn, &hits), 0);
    while (atomic_load(&hits) < 10)
        csp_sleep(MS / 10);
    atomic_store(&hits, 0);
    REQUIRE_EQ(csp_wg_wait(&wg), 0);
    csp_chan_release(out);
}

static void go_copy_main(void *arg)
{
    (void)arg;
    go_copy_body();
}

/* csp_go_copy copies env (small, medium, several MiB) so the caller may
 * overwrite or free it at once, the copy is aligned and survives a park;
 * csp_go passes arg as is; both work from a task and a plain thread. */
START_TEST(test_go_copy)
{
    RUN_MAIN(go_copy_main, NULL);
    go_copy_body();         /* from a plain thread */
    REQUIRE_EQ(csp_stop(), 0);
}
END_TEST

/* ---- csp_yield ------------------------------------------------------------ */

struct yield_log {
    char log[512];
    atomic_int pos;
    csp_waitgroup wg;
};

static void yielder(struct yield_log *y, char id)
{
    for (int i = 0; i < 100; i++) {
        y->log[atomic_fetch_add(&y->pos, 1)] = id;
        csp_yield();
    }
    csp_wg_done(&y->wg);
}

static void yield_a(void *arg) { yielder(arg, 'A'); }
static void yield_b(void *arg) { yielder(arg, 'B'); }

static void yield_main(void *arg)
{
    struct yield_log *y = arg;
    csp_wg_add(&y->wg, 2);
    REQUIRE_EQ(csp_go(yield_a, y), 0);
    REQUIRE_EQ(csp_go(yield_b, y), 0);
    REQUIRE_EQ(csp_wg_wait(&y->wg), 0);
}

/* On one worker, two tasks that yield in a loop interleave (each yield
 * lets the other run); csp_yield from a plain thread returns. */
START_TEST(test_yield)
{
    static struct yield_log y;
    start_cfg(1, 0, 0);
    RUN_MAIN(yield_main, &y);
    REQUIRE_EQ(atomic_load(&y.pos), 200);
    int switches = 0;
    for (int i = 1; i < 200; i++)
        switches += y.log[i] != y.log[i - 1];
    REQUIRE_MSG(switches >= 20, "only %d switches: yield did not let the other run",
                  switches);
    csp_yield();
}
END_TEST

/* ---- every blocking call parks the task, not its worker -------------------- */

enum {
    B_RECV, B_SEND, B_SELECT, B_MUTEX, B_RDLOCK, B_WRLOCK, B_WG, B_ONCE, B_SLEEP,
    B_RECV_UNTIL, B_SEND_UNTIL, B_FD_WAIT, B_COUNT
};

static const char *const bnames[B_COUNT] = {
    "chan recv", "chan send", "select", "mutex", "rdlock", "wrlock", "waitgroup",
    "once", "sleep", "recv_until", "send_until", "fd_wait",
};

struct blk {
    int kind;
    csp_chan *c, *c2, *gate;
    csp_mutex m;
    csp_rwlock l;
    csp_waitgroup wg;
    csp_once once;
    int fds[2];
    atomic_int started, finished, once_started;
    int64_t sleep_until;
};

static void once_blocking_fn(void *arg)
{
    struct blk *b = arg;
    atomic_store(&b->once_started, 1);
    REQUIRE_EQ(csp_recv(b->gate, NULL), 0);
}

static void once_runner(void *arg)
{
    struct blk *b = arg;
    REQUIRE_EQ(csp_once_do(&b->once, once_blocking_fn, b), 0);
}

static void blocker(void *arg)
{
    struct blk *b = arg;
    int v = 0;
    atomic_store(&b->started, 1);
    switch (b->kind) {
    case B_RECV:
        REQUIRE_EQ(csp_recv(b->c, &v), 0);
        REQUIRE_EQ(v, 7);
        break;
    case B_SEND:
        v = 7;
        REQUIRE_EQ(csp_send(b->c, &v), 0);
        break;
    case B_SELECT: {
        csp_case cs[2] = { CSP_RECV(b->c2, &v), CSP_RECV(b->c, &v) };
        REQUIRE_EQ(csp_select(cs, 2, CSP_FOREVER), 1);
        REQUIRE_EQ(v, 7);
        break;
    }
    case B_MUTEX:
        REQUIRE_EQ(csp_mutex_lock(&b->m), 0);
        REQUIRE_EQ(csp_mutex_unlock(&b->m), 0);
        break;
    case B_RDLOCK:
        REQUIRE_EQ(csp_rwlock_rdlock(&b->l), 0);
        REQUIRE_EQ(csp_rwlock_rdunlock(&b->l), 0);
        break;
    case B_WRLOCK:
        REQUIRE_EQ(csp_rwlock_wrlock(&b->l), 0);
        REQUIRE_EQ(csp_rwlock_wrunlock(&b->l), 0);
        break;
    case B_WG:
        REQUIRE_EQ(csp_wg_wait(&b->wg), 0);
        break;
    case B_ONCE:
        REQUIRE_EQ(csp_once_do(&b->once, once_blocking_fn, b), 0);
        break;
    case B_SLEEP:
        REQUIRE_EQ(csp_sleep(200 * MS), 0);
        REQUIRE_GE(csp_now(), b->sleep_until);
        break;
    case B_RECV_UNTIL:
        REQUIRE_EQ(csp_recv_until(b->c, &v, csp_deadline(30000 * MS)), 0);
        REQUIRE_EQ(v, 7);
        break;
    case B_SEND_UNTIL:
        v = 7;
        REQUIRE_EQ(csp_send_until(b->c, &v, csp_deadline(30000 * MS)), 0);
        break;
    case B_FD_WAIT:
        REQUIRE_EQ(csp_fd_wait(b->fds[0], CSP_IO_READ, CSP_FOREVER), 0);
        break;
    }
    atomic_store(&b->finished, 1);
}

static void blocking_main(void *arg)
{
    struct blk *b = arg;
    int v = 0;
    b->c = csp_chan_make(sizeof(int), 0);
    b->c2 = csp_chan_make(sizeof(int), 0);
    b->gate = csp_chan_make(0, 0);
    REQUIRE_EQ(pipe(b->fds), 0);
    switch (b->kind) {
    case B_MUTEX: REQUIRE_EQ(csp_mutex_lock(&b->m), 0); break;
    case B_RDLOCK: REQUIRE_EQ(csp_rwlock_wrlock(&b->l), 0); break;
    case B_WRLOCK: REQUIRE_EQ(csp_rwlock_rdlock(&b->l), 0); break;
    case B_WG: csp_wg_add(&b->wg, 1); break;
    case B_ONCE:
        /* Another task runs the once's fn and parks inside it. */
        REQUIRE_EQ(csp_go(once_runner, b), 0);
        while (!atomic_load(&b->once_started))
            csp_yield();
        break;
    case B_SLEEP: b->sleep_until = csp_deadline(200 * MS); break;
    default: break;
    }
    REQUIRE_EQ(csp_go(blocker, b), 0);
    /* One worker: whenever this task runs, the blocker is not holding it. */
    while (!atomic_load(&b->started))
        csp_yield();
    for (int i = 0; i < 20; i++)
        csp_yield();
    REQUIRE_MSG(!atomic_load(&b->finished) ||
                      (b->kind == B_SLEEP && csp_now() >= b->sleep_until),
                  "%s did not block", bnames[b->kind]);
    /* Release it. */
    switch (b->kind) {
    case B_RECV: case B_SELECT: case B_RECV_UNTIL:
        v = 7;
        REQUIRE_EQ(csp_send(b->c, &v), 0);
        break;
    case B_SEND: case B_SEND_UNTIL:
        REQUIRE_EQ(csp_recv(b->c, &v), 0);
        REQUIRE_EQ(v, 7);
        break;
    case B_MUTEX: REQUIRE_EQ(csp_mutex_unlock(&b->m), 0); break;
    case B_RDLOCK: REQUIRE_EQ(csp_rwlock_wrunlock(&b->l), 0); break;
    case B_WRLOCK: REQUIRE_EQ(csp_rwlock_rdunlock(&b->l), 0); break;
    case B_WG: csp_wg_done(&b->wg); break;
    case B_ONCE: REQUIRE_EQ(csp_send(b->gate, NULL), 0); break;
    case B_FD_WAIT: REQUIRE_EQ(write(b->fds[1], "x", 1), 1); break;
    default: break;
    }
    while (!atomic_load(&b->finished))
        csp_sleep(MS / 10);
    /* Channels and fds are released by the test after csp_run: the
     * tasks' calls may still be returning now. */
}

/* With a single worker, a task blocked in each kind of blocking call
 * (chan recv/send, select, mutex, rdlock, wrlock, waitgroup, once, sleep,
 * recv_until, send_until, fd_wait) parks: the other task keeps running on
 * the same worker and can release it. */
START_TEST(test_blocking_call_parks)
{
    static struct blk b;
    b.kind = _i;
    start_cfg(1, 0, 0);
    RUN_MAIN(blocking_main, &b);
    csp_chan_release(b.c);
    csp_chan_release(b.c2);
    csp_chan_release(b.gate);
    close(b.fds[0]);
    close(b.fds[1]);
}
END_TEST

/* ---- tasks and plain threads on one channel ---------------------------------- */

enum { MIX_PER = 5000, MIX_PT = 3, MIX_PTH = 2, MIX_CT = 2, MIX_CTH = 2 };

struct mix {
    csp_chan *c;
    csp_waitgroup producers;
    atomic_llong sum, count, xr;
};

struct mix_p { struct mix *m; int id; };

static void mix_produce(struct mix_p *p)
{
    for (int i = 0; i < MIX_PER; i++) {
        long long v = (long long)p->id * MIX_PER + i + 1;
        REQUIRE_EQ(csp_send(p->m->c, &v), 0);
    }
    csp_wg_done(&p->m->producers);
}

static void mix_consume(struct mix *m)
{
    long long v, s = 0, n = 0, x = 0;
    while (csp_recv(m->c, &v) == 0) {
        s += v;
        x ^= v;
        n++;
    }
    REQUIRE_EQ(v, 0);
    atomic_fetch_add(&m->sum, s);
    atomic_fetch_add(&m->count, n);
    atomic_fetch_xor(&m->xr, x);
}

static void mix_p_task(void *arg) { mix_produce(arg); }
static void *mix_p_thread(void *arg) { mix_produce(arg); return NULL; }
static void mix_c_task(void *arg) { mix_consume(arg); }
static void *mix_c_thread(void *arg) { mix_consume(arg); return NULL; }

static size_t mix_cap;
static struct mix mix_state;

static void mix_main(void *arg)
{
    (void)arg;
    static struct mix_p ps[MIX_PT + MIX_PTH];
    struct mix *m = &mix_state;
    m->c = csp_chan_make(sizeof(long long), mix_cap);
    pthread_t pth[MIX_PTH], cth[MIX_CTH];
    csp_wg_add(&m->producers, MIX_PT + MIX_PTH);
    for (int i = 0; i < MIX_CT; i++)
        REQUIRE_EQ(csp_go(mix_c_task, m), 0);
    for (int i = 0; i < MIX_CTH; i++)
        cth[i] = thread_start(mix_c_thread, m);
    for (int i = 0; i < MIX_PT + MIX_PTH; i++) {
        ps[i].m = m;
        ps[i].id = i;
        if (i < MIX_PT)
            REQUIRE_EQ(csp_go(mix_p_task, &ps[i]), 0);
        else
            pth[i - MIX_PT] = thread_start(mix_p_thread, &ps[i]);
    }
    REQUIRE_EQ(csp_wg_wait(&m->producers), 0);
    REQUIRE_EQ(csp_close(m->c), 0);
    for (int i = 0; i < MIX_PTH; i++)
        thread_join(pth[i]);
    for (int i = 0; i < MIX_CTH; i++)
        thread_join(cth[i]);
    /* Consumer tasks finish before csp_run returns: checked there. */
}

/* Producer and consumer tasks and plain threads share one unbuffered (then
 * buffered) channel: every value arrives exactly once (count, sum, xor). */
START_TEST(test_tasks_and_threads_one_channel)
{
    mix_cap = _i ? 16 : 0;
    start_cfg(2, 0, 0);
    RUN_MAIN(mix_main, NULL);
    long long n = (long long)MIX_PER * (MIX_PT + MIX_PTH), x = 0;
    for (long long v = 1; v <= n; v++)
        x ^= v;
    REQUIRE_EQ(atomic_load(&mix_state.count), n);
    REQUIRE_EQ(atomic_load(&mix_state.sum), n * (n + 1) / 2);
    REQUIRE_EQ(atomic_load(&mix_state.xr), x);
    csp_chan_release(mix_state.c);
}
END_TEST

/* ---- Go's prime sieve, one task per prime ------------------------------------ */

struct filter_env {
    csp_chan *in, *out;
    int prime;
};

static void sieve_generate(void *arg)
{
    csp_chan *ch = arg;
    for (int i = 2;; i++)
        if (csp_send(ch, &i) != 0)
            break;
    csp_chan_release(ch);
}

static void sieve_filter(void *arg)
{
    struct filter_env *e = arg;
    int i;
    while (csp_recv(e->in, &i) == 0)
        if (i % e->prime != 0 && csp_send(e->out, &i) != 0)
            break;
    csp_close(e->in);       /* upstream stops */
    csp_close(e->out);      /* downstream ends */
    csp_chan_release(e->in);
    csp_chan_release(e->out);
}

static int sieve_n, sieve_last;

static void sieve_main(void *arg)
{
    (void)arg;
    csp_chan *ch = csp_chan_make(sizeof(int), 0);
    REQUIRE_EQ(csp_go(sieve_generate, csp_chan_retain(ch)), 0);
    for (int k = 0; k < sieve_n; k++) {
        int prime;
        REQUIRE_EQ(csp_recv(ch, &prime), 0);
        if (k == 0)
            REQUIRE_EQ(prime, 2);
        if (k == 999)
            REQUIRE_EQ(prime, 7919);
        sieve_last = prime;
        csp_chan *next = csp_chan_make(sizeof(int), 0);
        REQUIRE(next);
        struct filter_env e = { csp_chan_retain(ch), csp_chan_retain(next), prime };
        REQUIRE_EQ(csp_go_copy(sieve_filter, &e, sizeof e), 0);
        csp_chan_release(ch);
        ch = next;
    }
    csp_close(ch);          /* the chain unwinds; csp_run waits for it */
    csp_chan_release(ch);
}

/* Go's concurrent prime sieve (one task per prime, unbuffered channels)
 * on 2 workers finds the right primes and unwinds: 2,000 stages (1,000
 * under a sanitizer); the full 10,000 stages, ~50 million channel hops,
 * with CSP_STRESS_SCALE>=2 (6 s or more on 2 cores, too long by default). */
START_TEST(test_sieve)
{
    const char *sc = getenv("CSP_STRESS_SCALE");
    int big = sc && atoi(sc) >= 2;
    sieve_n = big ? 10000 : SANITIZED ? 1000 : 2000;
    start_cfg(2, 0, 0);
    RUN_MAIN(sieve_main, NULL);
    REQUIRE_EQ(sieve_last, sieve_n == 10000 ? 104729 : sieve_n == 2000 ? 17389 : 7919);
}
END_TEST

/* ---- 10,000-stage daisy chain (Pike's "whispers") -------------------------------- */

static void whisper(void *arg)
{
    csp_chan **c = arg;     /* c[0] left (towards main), c[1] right */
    int v;
    while (csp_recv(c[1], &v) == 0)
        if (csp_send(c[0], &(int){ v + 1 }) != 0)
            break;
    csp_close(c[0]);
    csp_chan_release(c[0]);
    csp_chan_release(c[1]);
}

enum { CHAIN = 10000, CHAIN_ROUNDS = 20 };

static void chain_main(void *arg)
{
    (void)arg;
    csp_chan *leftmost = csp_chan_make(sizeof(int), 0), *left = csp_chan_retain(leftmost);
    for (int i = 0; i < CHAIN; i++) {
        csp_chan *right = csp_chan_make(sizeof(int), 0);
        REQUIRE(right);
        csp_chan *pair[2] = { left, csp_chan_retain(right) };
        REQUIRE_EQ(csp_go_copy(whisper, pair, sizeof pair), 0);
        left = right;
    }
    for (int r = 0; r < CHAIN_ROUNDS; r++) {
        int v = r;
        REQUIRE_EQ(csp_send(left, &v), 0);
        REQUIRE_EQ(csp_recv(leftmost, &v), 0);
        REQUIRE_EQ(v, r + CHAIN);
    }
    csp_close(left);        /* unwinds the chain */
    csp_chan_release(left);
    int v = 1;
    REQUIRE_EQ(csp_recv(leftmost, &v), EPIPE);
    csp_chan_release(leftmost);
}

/* 10,000 tasks chained by unbuffered channels on 2 workers pass a value
 * end to end 20 times (each stage parks in between) and unwind. */
START_TEST(test_daisy_chain_10k)
{
    start_cfg(2, 0, 0);
    RUN_MAIN(chain_main, NULL);
}
END_TEST

/* ---- 100,000 parked tasks, one close -------------------------------------------- */

struct herd {
    csp_chan *c;
    atomic_int arrived, released;
    csp_waitgroup wg;
};

static void herd_member(void *arg)
{
    struct herd *h = arg;
    atomic_fetch_add(&h->arrived, 1);
    int v = 5;
    REQUIRE_EQ(csp_recv(h->c, &v), EPIPE);
    REQUIRE_EQ(v, 0);
    atomic_fetch_add(&h->released, 1);
    csp_wg_done(&h->wg);
}

static int herd_n;

static void herd_main(void *arg)
{
    struct herd *h = arg;
    h->c = csp_chan_make(sizeof(int), 0);
    csp_wg_add(&h->wg, herd_n);
    for (int i = 0; i < herd_n; i++)
        REQUIRE_EQ(csp_go(herd_member, h), 0);
    while (atomic_load(&h->arrived) < herd_n)
        csp_sleep(MS);
    csp_sleep(20 * MS);     /* let the last ones park */
    REQUIRE_EQ(atomic_load(&h->released), 0);
    REQUIRE_EQ(csp_close(h->c), 0);
    REQUIRE_EQ(csp_wg_wait(&h->wg), 0);
    REQUIRE_EQ(atomic_load(&h->released), herd_n);
    csp_chan_release(h->c);
}

/* 100,000 tasks parked on one channel (10,000 under a sanitizer) are all
 * released, with EPIPE and a zeroed value, by one close. */
START_TEST(test_100k_parked_one_close)
{
    static struct herd h;
    herd_n = SANITIZED ? 10000 : 100000;
    start_cfg(2, 0, 0);
    RUN_MAIN(herd_main, &h);
}
END_TEST

/* ---- a burst of spawns spreads over every worker --------------------------------- */

enum { SPREAD_TASKS = 400, SPREAD_MAX_WORKERS = 8 };

struct spread {
    pthread_t who[SPREAD_TASKS];
    atomic_int next;
    csp_waitgroup wg;
};

static void spread_task(void *arg)
{
    struct spread *s = arg;
    busy_ns(100000);
    csp_yield();
    busy_ns(100000);
    s->who[atomic_fetch_add(&s->next, 1)] = pthread_self();
    csp_wg_done(&s->wg);
}

static int distinct_threads(struct spread *s)
{
    pthread_t seen[SPREAD_MAX_WORKERS + 1];
    int n = 0;
    for (int i = 0; i < SPREAD_TASKS; i++) {
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = pthread_equal(seen[k], s->who[i]);
        if (!found) {
            REQUIRE_LE(n, SPREAD_MAX_WORKERS);
            seen[n++] = s->who[i];
        }
    }
    return n;
}

static void spread_burst(struct spread *s)
{
    atomic_store(&s->next, 0);
    csp_wg_add(&s->wg, SPREAD_TASKS);
    for (int i = 0; i < SPREAD_TASKS; i++)
        REQUIRE_EQ(csp_go(spread_task, s), 0);
    REQUIRE_EQ(csp_wg_wait(&s->wg), 0);
}

static void spread_main(void *arg)
{
    spread_burst(arg);
}

static const unsigned spread_workers[] = { 2, 4 };

/* A burst of 400 spawns from one task (then from a plain thread) runs on
 * every one of the 2 (then 4) workers: idle workers steal. */
START_TEST(test_spawn_spreads_over_workers)
{
    static struct spread s;
    unsigned nw = spread_workers[_i];
    start_cfg(nw, 0, 0);
    RUN_MAIN(spread_main, &s);
    REQUIRE_EQ(distinct_threads(&s), (int)nw);
    start_cfg(nw, 0, 0);
    spread_burst(&s);       /* from a plain thread: the global queue */
    REQUIRE_EQ(distinct_threads(&s), (int)nw);
    REQUIRE_EQ(csp_stop(), 0);
}
END_TEST

/* ---- csp_start, csp_stop, csp_config -------------------------------------------- */

static void ping_task(void *arg)
{
    csp_chan *c = arg;
    int v;
    while (csp_recv(c, &v) == 0)
        ;
}

static void ping_some(csp_chan *c)
{
    for (int i = 0; i < 100; i++)
        REQUIRE_EQ(csp_send(c, &i), 0);
}

/* csp_start twice says EBUSY; csp_stop then csp_start works again (other
 * worker counts and stack sizes), with a channel that outlives restarts;
 * csp_stop without a runtime returns 0. */
START_TEST(test_start_stop_restart)
{
    REQUIRE_EQ(csp_stop(), 0);
    REQUIRE_EQ(csp_start(NULL), 0);
    REQUIRE_EQ(csp_start(NULL), EBUSY);
    csp_config cfg = { 3, 128 * 1024, 0 };
    REQUIRE_EQ(csp_start(&cfg), EBUSY);
    csp_chan *c = csp_chan_make(sizeof(int), 0);
    for (unsigned round = 1; round <= 4; round++) {
        REQUIRE_EQ(csp_go(ping_task, c), 0);
        ping_some(c);
        REQUIRE_EQ(csp_close(c), 0);
        REQUIRE_EQ(csp_stop(), 0);
        REQUIRE_EQ(csp_stop(), 0);
        csp_chan_release(c);
        c = csp_chan_make(sizeof(int), 0);
        csp_config next = { round, round * 32 * 1024, (int)(round % 2) };
        REQUIRE_EQ(csp_start(&next), 0);
        REQUIRE_EQ(csp_start(&next), EBUSY);
    }
    REQUIRE_EQ(csp_stop(), 0);
    /* csp_go starts the runtime with defaults when it is not running. */
    REQUIRE_EQ(csp_go(ping_task, c), 0);
    REQUIRE_EQ(csp_start(NULL), EBUSY);
    ping_some(c);
    REQUIRE_EQ(csp_close(c), 0);
    REQUIRE_EQ(csp_stop(), 0);
    csp_chan_release(c);
}
END_TEST

static bool start_fails(csp_config cfg)
{
    int err = csp_start(&cfg);
    if (err == 0)
        csp_stop();
    return err == EINVAL || err == ENOMEM || err == EAGAIN;
}

/* csp_config validation: guard_pages other than 0/1 is EINVAL; absurd
 * worker counts and stack sizes fail; nothing is left half-started, so a
 * valid csp_start works afterwards. */
START_TEST(test_config_validation)
{
    csp_config bad_guard = { 1, 0, 2 };
    REQUIRE_EQ(csp_start(&bad_guard), EINVAL);
    bad_guard.guard_pages = -1;
    REQUIRE_EQ(csp_start(&bad_guard), EINVAL);
    REQUIRE(start_fails((csp_config){ UINT_MAX, 0, 0 }));
    REQUIRE(start_fails((csp_config){ 1, SIZE_MAX, 0 }));
    REQUIRE(start_fails((csp_config){ 1, SIZE_MAX / 2, 1 }));
    REQUIRE_EQ(csp_start(NULL), 0);
    csp_chan *c = csp_chan_make(sizeof(int), 0);
    REQUIRE_EQ(csp_go(ping_task, c), 0);
    ping_some(c);
    csp_close(c);
    REQUIRE_EQ(csp_stop(), 0);
    csp_chan_release(c);
}
END_TEST

/* ---- stacks ---------------------------------------------------------------------- */

/* Uses about depth KiB of stack, touching all of it. */
/* The empty asm makes the compiler keep and fill the whole buffer. */
#define TOUCH(buf) __asm__ __volatile__("" : : "r"(buf) : "memory")

static NOINLINE_ATTR int deep(int depth)
{
    char buf[1000];
    memset(buf, depth & 0x7f, sizeof buf);
    TOUCH(buf);
    if (depth <= 1)
        return buf[10];
    int r = deep(depth - 1) + buf[999];
    TOUCH(buf);
    return r;
}

/* As deep(), but yields at the deepest point (a switch checks the stack). */
static NOINLINE_ATTR int deep_yield(int depth)
{
    char buf[1000];
    memset(buf, depth & 0x7f, sizeof buf);
    TOUCH(buf);
    if (depth <= 1) {
        csp_yield();
        return buf[10];
    }
    int r = deep_yield(depth - 1) + buf[999];
    TOUCH(buf);
    return r;
}

static int expect_deep(int depth)
{
    int s = 1;              /* deep(1) returns 1 & 0x7f */
    for (int d = 2; d <= depth; d++)
        s += d & 0x7f;
    return s;
}

struct deep_req {
    int depth;
    atomic_int done;
};

static void deep_task(void *arg)
{
    struct deep_req *r = arg;
    REQUIRE_EQ(deep_yield(r->depth), expect_deep(r->depth));
    atomic_fetch_add(&r->done, 1);
}

static void run_deep(size_t stack, int guard, int depth, int ntasks)
{
    static struct deep_req r;
    r.depth = depth;
    atomic_store(&r.done, 0);
    start_cfg(2, stack, guard);
    for (int i = 0; i < ntasks; i++)
        REQUIRE_EQ(csp_go(deep_task, &r), 0);
    REQUIRE_EQ(csp_stop(), 0);
    REQUIRE_EQ(atomic_load(&r.done), ntasks);
}

/* Tasks can use the stack they were configured with: ~40 KiB of the
 * default 64 KiB, ~700 KiB of 1 MiB, ~200 KiB of 256 KiB with guard pages. */
START_TEST(test_stack_size)
{
    run_deep(0, 0, 40, 50);
    run_deep(1 << 20, 0, 700, 20);
    run_deep(256 << 10, 1, 200, 20);
}
END_TEST

static void guarded_pinger(void *arg)
{
    csp_chan **c = arg;
    int v;
    REQUIRE_EQ(deep(20), expect_deep(20));
    while (csp_recv(c[0], &v) == 0) {
        v++;
        if (csp_send(c[1], &v) != 0)
            break;
    }
}

/* guard_pages=1 runs 2,000 tasks that use their stacks and talk over
 * channels, then stops cleanly. */
START_TEST(test_guard_pages_run)
{
    start_cfg(2, 0, 1);
    csp_chan *c[2] = { csp_chan_make(sizeof(int), 0), csp_chan_make(sizeof(int), 0) };
    for (int i = 0; i < 2000; i++)
        REQUIRE_EQ(csp_go(guarded_pinger, c), 0);
    for (int i = 0; i < 2000; i++) {
        int v = i;
        REQUIRE_EQ(csp_send(c[0], &v), 0);
        REQUIRE_EQ(csp_recv(c[1], &v), 0);
        REQUIRE_EQ(v, i + 1);
    }
    REQUIRE_EQ(csp_close(c[0]), 0);
    REQUIRE_EQ(csp_stop(), 0);
    csp_chan_release(c[0]);
    csp_chan_release(c[1]);
}
END_TEST

/* ---- stack overflow ------------------------------------------------------------- */

static int overflow_guard;
static csp_waitgroup overflow_wg;

static void overflow_task(void *arg)
{
    (void)arg;
    /* Canary: go ~16 KiB past the 64 KiB stack (into the slot below,
     * which is mapped) and switch there.  Guard page: run into it. */
    deep_yield(overflow_guard ? 100000 : 80);
    csp_wg_done(&overflow_wg);
}

static void overflow_main(void *arg)
{
    (void)arg;
    csp_wg_add(&overflow_wg, 1);
    /* Not the first slot: the stack below this task's one is ours. */
    csp_go(overflow_task, NULL);
    csp_wg_wait(&overflow_wg);
}

static void overflow_child(void)
{
    csp_config cfg = { 2, 64 * 1024, overflow_guard };
    if (csp_start(&cfg) != 0)
        _exit(3);
    csp_run(overflow_main, NULL);
    _exit(0);
}

/* A task that overflows its stack is reported as "csp: task stack
 * overflow" and the process dies: by the canary at the next switch
 * (default), and by the guard page (guard_pages=1). */
START_TEST(test_stack_overflow)
{
    static char err[1 << 20];  /* a sanitizer may report the overflow at length */
    overflow_guard = _i;
    int st = run_child_stderr(overflow_child, err, sizeof err);
    REQUIRE_MSG(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "overflow went unnoticed; stderr: \"%.500s\"", err);
    REQUIRE_MSG(!WIFEXITED(st) || WEXITSTATUS(st) != 3, "csp_start failed");
    /* Without guard pages the overflow has already written into the slot
     * below before the check at the next switch can see it; a crash from
     * that corruption may come first (seen once under qemu-user).  Dying
     * is still noticing; only the guard page promises the message. */
    if (!overflow_guard && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV)
        return;
    REQUIRE_MSG(strstr(err, "csp: task stack overflow") != NULL,
                  "no overflow message; stderr: \"%.500s\"", err);
}
END_TEST

/* ---- csp_run waits for every task; happens-before --------------------------------- */

enum { HB_N = 50 };
static int hb_input[HB_N], hb_child[HB_N], hb_grand[HB_N];

static void hb_grandchild(void *arg)
{
    int i = *(int *)arg;
    csp_sleep(5 * MS);
    hb_grand[i] = i + 100;
}

static void hb_task(void *arg)
{
    int i = (int)(intptr_t)arg;
    /* csp_go happened before this task started. */
    REQUIRE_EQ(hb_input[i], i * 3);
    csp_sleep((i % 10) * MS);
    hb_child[i] = i + 1;
    REQUIRE_EQ(csp_go_copy(hb_grandchild, &i, sizeof i), 0);
}

static void hb_main(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < HB_N; i++) {
        hb_input[i] = (int)i * 3;
        REQUIRE_EQ(csp_go(hb_task, (void *)i), 0);
    }
    /* Returns at once: csp_run must still wait for all of them. */
}

/* csp_run returns 0 only after every task (children and grandchildren
 * that main_fn did not wait for) has ended, and their plain writes are
 * visible to its caller; likewise csp_stop. */
START_TEST(test_run_waits_for_all)
{
    RUN_MAIN(hb_main, NULL);
    for (int i = 0; i < HB_N; i++) {
        REQUIRE_EQ(hb_child[i], i + 1);
        REQUIRE_EQ(hb_grand[i], i + 100);
    }
    memset(hb_child, 0, sizeof hb_child);
    memset(hb_grand, 0, sizeof hb_grand);
    start_cfg(2, 0, 0);
    for (intptr_t i = 0; i < HB_N; i++) {
        hb_input[i] = (int)i * 3;       /* plain write before csp_go */
        REQUIRE_EQ(csp_go(hb_task, (void *)i), 0);
    }
    REQUIRE_EQ(csp_stop(), 0);
    for (int i = 0; i < HB_N; i++) {
        REQUIRE_EQ(hb_child[i], i + 1);
        REQUIRE_EQ(hb_grand[i], i + 100);
    }
}
END_TEST

/* ---- a woken task does not wait behind a task that keeps running --------------- */

struct wake_idle {
    csp_chan *c;
    atomic_int ran;
    int64_t waited;
};

static void wi_consumer(void *arg)
{
    struct wake_idle *w = arg;
    REQUIRE_EQ(csp_recv(w->c, NULL), 0);
    atomic_store(&w->ran, 1);
}

static void wi_producer(void *arg)
{
    struct wake_idle *w = arg;
    busy_ns(5 * MS);        /* the other worker has gone idle by now */
    int64_t t0 = csp_now();
    REQUIRE_EQ(csp_send(w->c, NULL), 0);    /* readies the consumer */
    while (!atomic_load(&w->ran) && csp_now() - t0 < 3000 * MS)
        ;                   /* CPU-bound, never parks */
    w->waited = csp_now() - t0;
}

static void wake_idle_main(void *arg)
{
    struct wake_idle *w = arg;
    w->c = csp_chan_make(0, 0);
    REQUIRE_EQ(csp_go(wi_consumer, w), 0);
    csp_sleep(10 * MS);     /* the consumer parks */
    REQUIRE_EQ(csp_go(wi_producer, w), 0);
}

/* A task woken by a task that then runs on without parking is run by the
 * other, idle worker (within 3 s; it takes microseconds): work made
 * runnable is never stranded behind a busy worker while another sleeps. */
START_TEST(test_woken_task_runs_on_idle_worker)
{
    static struct wake_idle w;
    start_cfg(2, 0, 0);
    RUN_MAIN(wake_idle_main, &w);
    REQUIRE_MSG(w.waited < 3000 * MS, "woken task did not run for %lld ms while a worker idled",
                (long long)(w.waited / MS));
    csp_chan_release(w.c);
}
END_TEST

/* ---- floating-point control state ------------------------------------------------ */

struct fpmode {
    int mode;               /* the rounding mode this task runs with */
    _Atomic int *bad;
};

static void fpmode_task(void *arg)
{
    struct fpmode *f = arg;
    ck_assert_int_eq(fesetround(f->mode), 0);
    for (int i = 0; i < 2000; i++) {
        csp_yield();
        /* An inexact division sets MXCSR's sticky flags; the switch must
         * still carry the rounding mode, flags or not. */
        volatile double x = 1.0, y = 3.0;
        volatile double q = x / y;
        (void)q;
        if (fegetround() != f->mode)
            atomic_fetch_add(f->bad, 1);
    }
    fesetround(FE_TONEAREST);
}

/* The rounding mode is part of a task's context (callee-saved in both
 * ABIs): tasks with different modes sharing one worker, switching at every
 * yield, each keep their own.  Also the case the switch optimizes: equal
 * control words on both sides. */
START_TEST(test_fp_rounding_mode_per_task)
{
    csp_config cfg = { 1, 0, 0 };
    ck_assert_int_eq(csp_start(&cfg), 0);
    _Atomic int bad = 0;
    struct fpmode f[4] = { { FE_DOWNWARD, &bad }, { FE_TONEAREST, &bad },
                           { FE_UPWARD, &bad }, { FE_TONEAREST, &bad } };
    struct group g = { 0 };
    for (int i = 0; i < 4; i++)
        group_go(&g, 0, fpmode_task, &f[i]);
    group_wait(&g);
    ck_assert_int_eq(atomic_load(&bad), 0);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    ck_assert_int_eq(csp_stop(), 0);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------- */

static Suite *task_suite(void)
{
    Suite *s = suite_create("task");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_go_copy);
    tcase_add_test(tc, test_yield);
    tcase_add_test(tc, test_fp_rounding_mode_per_task);
    tcase_add_loop_test(tc, test_blocking_call_parks, 0, B_COUNT);
    tcase_add_loop_test(tc, test_tasks_and_threads_one_channel, 0, 2);
    tcase_add_test(tc, test_start_stop_restart);
    tcase_add_test(tc, test_config_validation);
    tcase_add_test(tc, test_stack_size);
    tcase_add_test(tc, test_guard_pages_run);
    tcase_add_loop_test(tc, test_stack_overflow, 0, 2);
    tcase_add_test(tc, test_run_waits_for_all);
    tcase_add_test(tc, test_woken_task_runs_on_idle_worker);
    suite_add_tcase(s, tc);

    TCase *big = tcase_create("scale");
    tcase_set_timeout(big, 240);
    tcase_add_test(big, test_sieve);
    tcase_add_test(big, test_daisy_chain_10k);
    tcase_add_test(big, test_100k_parked_one_close);
    tcase_add_loop_test(big, test_spawn_spreads_over_workers, 0, 2);
    suite_add_tcase(s, big);
    return s;
}

int main(void)
{
    return run_suite(task_suite());
}
