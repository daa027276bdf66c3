/*
 * stress_sync.c - the sync primitives hammered by tasks and plain threads
 * together for a fixed time, counting: mutex, rwlock, waitgroup churn,
 * once churn, and all of them mixed with channels and task churn.
 *
 * Each test runs for about 1 s (CSP_STRESS_SCALE=n: n seconds) on more
 * workers than cores, so that tasks are preempted inside critical
 * sections and park and wake in every order.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MS 1000000LL

/* Check's ck_assert_* report every passing check to the parent process (a
 * write(2) each); hot loops use these, which cost nothing when they pass. */
#define REQUIRE_MSG(x, ...) \
    do { if (!(x)) ck_abort_msg(__VA_ARGS__); } while (0)
#define REQUIRE(x) REQUIRE_MSG((x), "%s:%d: failed: %s", __FILE__, __LINE__, #x)
#define REQUIRE_EQ(a, b) do { \
        long long a_ = (long long)(a), b_ = (long long)(b); \
        if (a_ != b_) \
            ck_abort_msg("%s:%d: failed: %s == %s (%lld vs %lld)", __FILE__, __LINE__, \
                         #a, #b, a_, b_); \
    } while (0)

/* ---- helpers ------------------------------------------------------------- */

static int64_t run_ns(void)
{
    const char *s = getenv("CSP_STRESS_SCALE");
    int v = s ? atoi(s) : 1;
    return (v > 0 ? v : 1) * 1000 * MS;
}

static int64_t end_time;

static bool running(void)
{
    return csp_now() < end_time;
}

static void start_workers(unsigned n)
{
    csp_config cfg = { n, 0, 0 };
    ck_assert_int_eq(csp_start(&cfg), 0);
    end_time = csp_now() + run_ns();
}

static unsigned rnd(void)
{
    static _Thread_local unsigned s;
    if (!s)
        s = (unsigned)(uintptr_t)&s | 1u;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

static void spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

/* Runs fn(arg) in `tasks` tasks and `threads` plain threads, waits. */
struct crowd {
    void (*fn)(void *);
    void *arg;
    csp_waitgroup wg;
};

static void crowd_task(void *arg)
{
    struct crowd *c = arg;
    c->fn(c->arg);
    csp_wg_done(&c->wg);
}

static void *crowd_thread(void *arg)
{
    crowd_task(arg);
    return NULL;
}

static void crowd_run(void (*fn)(void *), void *arg, int tasks, int threads)
{
    struct crowd c = { fn, arg, CSP_WAITGROUP_INIT };
    pthread_t th[16];
    ck_assert_int_le(threads, 16);
    csp_wg_add(&c.wg, tasks + threads);
    for (int i = 0; i < tasks; i++)
        ck_assert_int_eq(csp_go(crowd_task, &c), 0);
    for (int i = 0; i < threads; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, crowd_thread, &c), 0);
    ck_assert_int_eq(csp_wg_wait(&c.wg), 0);
    for (int i = 0; i < threads; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
}

/* ---- mutex ---------------------------------------------------------------- */

static struct {
    csp_mutex mu;
    atomic_int inside;
    long counter;
    atomic_long locks;
} M;

static void mutex_worker(void *arg)
{
    (void)arg;
    long mine = 0;
    while (running()) {
        for (int i = 0; i < 100; i++) {
            unsigned r = rnd();
            if (r % 4 == 0) {
                if (csp_mutex_trylock(&M.mu) != 0)
                    continue;
            } else {
                REQUIRE_EQ(csp_mutex_lock(&M.mu), 0);
            }
            REQUIRE_EQ(atomic_fetch_add_explicit(&M.inside, 1, memory_order_relaxed), 0);
            M.counter++;
            mine++;
            if (r % 32 == 1)
                csp_yield();
            else if (r % 32 == 2)
                spin(r % 500);
            REQUIRE_EQ(atomic_fetch_sub_explicit(&M.inside, 1, memory_order_relaxed), 1);
            REQUIRE_EQ(csp_mutex_unlock(&M.mu), 0);
        }
    }
    atomic_fetch_add(&M.locks, mine);
}

static void mutex_main(void *arg)
{
    (void)arg;
    crowd_run(mutex_worker, NULL, 12, 3);
}

/* Mutex: 12 tasks and 3 threads lock (or trylock) for ~1 s; never two
 * holders, and the guarded plain counter equals the successful locks. */
START_TEST(stress_mutex)
{
    start_workers(4);
    RUN_MAIN(mutex_main, NULL);
    ck_assert_int_eq(M.counter, atomic_load(&M.locks));
    ck_assert_int_gt(M.counter, 1000);
    printf("stress_mutex: %ld locks\n", M.counter);
}
END_TEST

/* ---- rwlock --------------------------------------------------------------- */

static struct {
    csp_rwlock rw;
    atomic_int activity;
    long a, b;              /* writers keep a == b; readers check */
    atomic_long reads, writes;
} R;

static void rw_reader(void *arg)
{
    (void)arg;
    long n = 0;
    while (running()) {
        unsigned r = rnd();
        if (r % 5 == 0) {
            if (csp_rwlock_tryrdlock(&R.rw) != 0)
                continue;
        } else {
            REQUIRE_EQ(csp_rwlock_rdlock(&R.rw), 0);
        }
        int act = atomic_fetch_add(&R.activity, 1) + 1;
        REQUIRE_MSG(act >= 1 && act < 10000, "reader with activity %d", act);
        REQUIRE_EQ(R.a, R.b);
        if (r % 64 == 1)
            csp_yield();
        atomic_fetch_sub(&R.activity, 1);
        REQUIRE_EQ(csp_rwlock_rdunlock(&R.rw), 0);
        n++;
    }
    atomic_fetch_add(&R.reads, n);
}

static void rw_writer(void *arg)
{
    (void)arg;
    long n = 0;
    while (running()) {
        unsigned r = rnd();
        if (r % 5 == 0) {
            if (csp_rwlock_trywrlock(&R.rw) != 0)
                continue;
        } else {
            REQUIRE_EQ(csp_rwlock_wrlock(&R.rw), 0);
        }
        REQUIRE_EQ(atomic_fetch_add(&R.activity, 10000) + 10000, 10000);
        R.a++;
        if (r % 16 == 1)
            csp_yield();
        R.b++;
        atomic_fetch_sub(&R.activity, 10000);
        REQUIRE_EQ(csp_rwlock_wrunlock(&R.rw), 0);
        n++;
        spin(r % 2000);     /* leave room for the readers */
    }
    atomic_fetch_add(&R.writes, n);
}

static void rw_mixed(void *arg)
{
    (rnd() % 4 == 0 ? rw_writer : rw_reader)(arg);
}

static void rwlock_main(void *arg)
{
    (void)arg;
    crowd_run(rw_mixed, NULL, 12, 4);
}

/* RwLock: 16 tasks and threads, a quarter of them writers, for ~1 s; a
 * writer is always alone, readers never see a half-done write, and both
 * sides make progress. */
START_TEST(stress_rwlock)
{
    start_workers(4);
    RUN_MAIN(rwlock_main, NULL);
    ck_assert_int_eq(R.a, R.b);
    ck_assert_int_eq(R.a, atomic_load(&R.writes));
    ck_assert_int_gt(atomic_load(&R.reads), 0);
    printf("stress_rwlock: %ld reads, %ld writes\n", atomic_load(&R.reads),
           atomic_load(&R.writes));
}
END_TEST

/* ---- waitgroup churn --------------------------------------------------------- */

struct wg_job {
    csp_waitgroup *wg;
    atomic_int *hits;
    int extra;              /* add more work to the group before done */
};

static csp_chan *wg_jobs;   /* to the plain-thread pool */

static void wg_job_run(struct wg_job *j)
{
    if (j->extra) {
        /* Adding while the counter is > 0 is legal (we hold a count). */
        csp_wg_add(j->wg, 1);
        struct wg_job k = { j->wg, j->hits, 0 };
        if (rnd() % 2)
            REQUIRE_EQ(csp_send(wg_jobs, &k), 0);
        else
            wg_job_run(&k);
    }
    spin(rnd() % 1000);
    atomic_fetch_add(j->hits, 1);
    csp_wg_done(j->wg);
}

static void wg_job_task(void *arg) { wg_job_run(arg); }

static void *wg_pool_thread(void *arg)
{
    (void)arg;
    struct wg_job j;
    while (csp_recv(wg_jobs, &j) == 0)
        wg_job_run(&j);
    return NULL;
}

static long wg_rounds;

static void wg_main(void *arg)
{
    (void)arg;
    enum { POOL = 3, MAXJ = 24 };
    wg_jobs = csp_chan_make(sizeof(struct wg_job), 64);
    pthread_t pool[POOL];
    for (int i = 0; i < POOL; i++)
        ck_assert_int_eq(pthread_create(&pool[i], NULL, wg_pool_thread, NULL), 0);
    while (running()) {
        csp_waitgroup *wg = calloc(1, sizeof *wg);
        atomic_int hits = 0;
        int n = 1 + (int)(rnd() % MAXJ), extra = 0;
        struct wg_job jobs[MAXJ];
        csp_wg_add(wg, n);
        for (int i = 0; i < n; i++) {
            jobs[i] = (struct wg_job){ wg, &hits, (int)(rnd() % 4 == 0) };
            extra += jobs[i].extra;
            if (i % 3 == 0)
                REQUIRE_EQ(csp_send(wg_jobs, &jobs[i]), 0);
            else
                REQUIRE_EQ(csp_go_copy(wg_job_task, &jobs[i], sizeof jobs[i]), 0);
        }
        REQUIRE_EQ(csp_wg_wait(wg), 0);
        REQUIRE_EQ(atomic_load(&hits), n + extra);
        memset(wg, 0xA5, sizeof *wg);   /* freed at once: lifetime rule */
        free(wg);
        wg_rounds++;
    }
    csp_close(wg_jobs);
    for (int i = 0; i < POOL; i++)
        ck_assert_int_eq(pthread_join(pool[i], NULL), 0);
    csp_chan_release(wg_jobs);
}

/* WaitGroup churn for ~1 s: a fresh group per round, done by tasks and
 * pooled threads, some of which add more work first; wait returns only
 * when all of it is done, and the group is freed right away. */
START_TEST(stress_waitgroup)
{
    start_workers(4);
    RUN_MAIN(wg_main, NULL);
    ck_assert_int_gt(wg_rounds, 10);
    printf("stress_waitgroup: %ld rounds\n", wg_rounds);
}
END_TEST

/* ---- once churn ------------------------------------------------------------ */

struct once_round {
    csp_once once;
    atomic_int runs;
    int value;
};

static void once_body(void *arg)
{
    struct once_round *o = arg;
    atomic_fetch_add(&o->runs, 1);
    if (rnd() % 2)
        csp_yield();
    spin(rnd() % 3000);
    o->value = 1234;
}

static atomic_long once_calls;

static void once_caller(void *arg)
{
    struct once_round *o = arg;
    REQUIRE_EQ(csp_once_do(&o->once, once_body, o), 0);
    REQUIRE_EQ(o->value, 1234);
    REQUIRE_EQ(atomic_load(&o->runs), 1);
    atomic_fetch_add(&once_calls, 1);
}

static long once_rounds;

static void once_main(void *arg)
{
    (void)arg;
    while (running()) {
        struct once_round *o = calloc(1, sizeof *o);
        crowd_run(once_caller, o, 8, (once_rounds % 16 == 0) ? 2 : 0);
        REQUIRE_EQ(atomic_load(&o->runs), 1);
        free(o);
        once_rounds++;
    }
}

/* Once churn for ~1 s: per round a fresh once, 8 tasks (and now and then
 * 2 threads) race; fn runs exactly once and everyone sees its result. */
START_TEST(stress_once)
{
    start_workers(4);
    RUN_MAIN(once_main, NULL);
    ck_assert_int_gt(once_rounds, 10);
    printf("stress_once: %ld rounds, %ld calls\n", once_rounds, atomic_load(&once_calls));
}
END_TEST

/* ---- everything at once --------------------------------------------------------- */

static struct {
    csp_mutex mu;
    csp_rwlock rw;
    long total;             /* under mu */
    long snapshot;          /* under rw (write) */
    csp_chan *c;
    atomic_long sent, recvd, spawned;
} X;

static void mixed_child(void *arg)
{
    long v = (long)(intptr_t)arg;
    REQUIRE_EQ(csp_mutex_lock(&X.mu), 0);
    X.total += v;
    REQUIRE_EQ(csp_mutex_unlock(&X.mu), 0);
}

static void mixed_worker(void *arg)
{
    (void)arg;
    while (running()) {
        unsigned r = rnd();
        switch (r % 4) {
        case 0: {
            long v = 1;
            if (csp_send_until(X.c, &v, csp_deadline(MS)) == 0)
                atomic_fetch_add(&X.sent, 1);
            break;
        }
        case 1: {
            long v;
            if (csp_recv_until(X.c, &v, csp_deadline(MS)) == 0) {
                REQUIRE_EQ(v, 1);
                atomic_fetch_add(&X.recvd, 1);
            }
            break;
        }
        case 2:
            REQUIRE_EQ(csp_rwlock_wrlock(&X.rw), 0);
            REQUIRE_EQ(csp_mutex_lock(&X.mu), 0);
            X.snapshot = X.total;
            REQUIRE_EQ(csp_mutex_unlock(&X.mu), 0);
            REQUIRE_EQ(csp_rwlock_wrunlock(&X.rw), 0);
            break;
        case 3:
            REQUIRE_EQ(csp_rwlock_rdlock(&X.rw), 0);
            REQUIRE(X.snapshot >= 0);
            REQUIRE_EQ(csp_rwlock_rdunlock(&X.rw), 0);
            if (csp_go(mixed_child, (void *)(intptr_t)(r % 7)) == 0)
                atomic_fetch_add(&X.spawned, 1);
            break;
        }
    }
}

static void mixed_main(void *arg)
{
    (void)arg;
    X.c = csp_chan_make(sizeof(long), 4);
    crowd_run(mixed_worker, NULL, 16, 3);
    long v;
    while (csp_try_recv(X.c, &v) == 0)
        atomic_fetch_add(&X.recvd, 1);
}

/* Mutex, rwlock (taken in a fixed order), a buffered channel with
 * deadlines and task churn together for ~1 s: no deadlock, every sent
 * value received once, every spawned task ran. */
START_TEST(stress_mixed)
{
    start_workers(3);
    RUN_MAIN(mixed_main, NULL);
    ck_assert_int_eq(atomic_load(&X.sent), atomic_load(&X.recvd));
    ck_assert_int_gt(atomic_load(&X.spawned), 0);
    ck_assert_int_ge(X.total, X.snapshot);
    csp_chan_release(X.c);
    printf("stress_mixed: %ld messages, %ld tasks spawned\n", atomic_load(&X.sent),
           atomic_load(&X.spawned));
}
END_TEST

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress_sync");
    TCase *tc = tcase_create("stress");
    /* ~1 s each at scale 1; generous for sanitizers and loaded machines. */
    tcase_set_timeout(tc, 120 + 3 * (double)run_ns() / 1e9);
    tcase_add_test(tc, stress_mutex);
    tcase_add_test(tc, stress_rwlock);
    tcase_add_test(tc, stress_waitgroup);
    tcase_add_test(tc, stress_once);
    tcase_add_test(tc, stress_mixed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(stress_suite());
}
