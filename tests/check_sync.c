/*
 * check_sync.c - csp_mutex, csp_rwlock, csp_waitgroup and csp_once: ports
 * of Go's sync tests (TestMutex, TestRWMutex, TestParallelReaders,
 * TestOnce, TestWaitGroup, TestWaitGroupMisuse, TestMutexFairness), the
 * library's own rules (zero value, try forms, EPERM, unlock by another
 * party, writer preference) and the lifetime rule of API.md (an object
 * may be freed as soon as the owner's own last call returned).
 *
 * Every primitive is exercised from tasks and from plain threads at once.
 * CSP_STRESS_SCALE=n multiplies the iteration counts.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
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

/* ---- helpers ------------------------------------------------------------- */

static int scale(void)
{
    const char *s = getenv("CSP_STRESS_SCALE");
    int v = s ? atoi(s) : 1;
    return v > 0 ? v : 1;
}

/* n iterations in a plain build, fewer under a sanitizer, times the scale. */
static int iters(int n)
{
    if (SANITIZED)
        n /= 8;
    if (n < 1)
        n = 1;
    return n * scale();
}

static void start_workers(unsigned n)
{
    csp_config cfg = { n, 0, 0 };
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

/* Channels that tasks may still be returning from when main_fn ends
 * (they borrow main's reference): released by the test once csp_run has
 * returned, i.e. once every task has ended. */
static csp_chan *later[64];
static int nlater;

static csp_chan *release_later(csp_chan *c)
{
    REQUIRE(nlater < 64);
    later[nlater++] = c;
    return c;
}

static void release_now(void)
{
    while (nlater > 0)
        csp_chan_release(later[--nlater]);
}

static void spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

/* A cheap per-thread PRNG for random small delays. */
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

/* ---- zero value, *_INIT, try forms, EPERM --------------------------------- */

static csp_mutex s_mu;
static csp_rwlock s_rw;
static csp_waitgroup s_wg;
static csp_once s_once;
static int once_hits;

static void count_once(void *arg)
{
    (void)arg;
    once_hits++;
}

static void exercise_mutex(csp_mutex *m)
{
    REQUIRE_EQ(csp_mutex_unlock(m), EPERM);
    REQUIRE_EQ(csp_mutex_trylock(m), 0);
    REQUIRE_EQ(csp_mutex_trylock(m), EBUSY);
    REQUIRE_EQ(csp_mutex_unlock(m), 0);
    REQUIRE_EQ(csp_mutex_unlock(m), EPERM);
    REQUIRE_EQ(csp_mutex_lock(m), 0);
    REQUIRE_EQ(csp_mutex_trylock(m), EBUSY);
    REQUIRE_EQ(csp_mutex_unlock(m), 0);
    REQUIRE_EQ(csp_mutex_trylock(m), 0);
    REQUIRE_EQ(csp_mutex_unlock(m), 0);
}

static void exercise_rwlock(csp_rwlock *l)
{
    REQUIRE_EQ(csp_rwlock_rdunlock(l), EPERM);
    REQUIRE_EQ(csp_rwlock_wrunlock(l), EPERM);
    REQUIRE_EQ(csp_rwlock_tryrdlock(l), 0);
    REQUIRE_EQ(csp_rwlock_rdlock(l), 0);
    REQUIRE_EQ(csp_rwlock_trywrlock(l), EBUSY);
    REQUIRE_EQ(csp_rwlock_rdunlock(l), 0);
    REQUIRE_EQ(csp_rwlock_rdunlock(l), 0);
    REQUIRE_EQ(csp_rwlock_rdunlock(l), EPERM);
    REQUIRE_EQ(csp_rwlock_trywrlock(l), 0);
    REQUIRE_EQ(csp_rwlock_tryrdlock(l), EBUSY);
    REQUIRE_EQ(csp_rwlock_trywrlock(l), EBUSY);
    REQUIRE_EQ(csp_rwlock_wrunlock(l), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(l), EPERM);
    REQUIRE_EQ(csp_rwlock_wrlock(l), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(l), 0);
    REQUIRE_EQ(csp_rwlock_rdlock(l), 0);
    REQUIRE_EQ(csp_rwlock_rdunlock(l), 0);
}

static void exercise_all(void)
{
    /* Static storage, = {0}, the *_INIT macros and calloc: all ready. */
    csp_mutex m1 = CSP_MUTEX_INIT, m2 = { 0 };
    csp_rwlock l1 = CSP_RWLOCK_INIT, l2 = { 0 };
    csp_waitgroup g1 = CSP_WAITGROUP_INIT;
    csp_once o1 = CSP_ONCE_INIT;
    static const csp_mutex zm;
    static const csp_rwlock zl;
    static const csp_waitgroup zg;
    static const csp_once zo;
    REQUIRE(memcmp(&m1, &zm, sizeof zm) == 0);
    REQUIRE(memcmp(&l1, &zl, sizeof zl) == 0);
    REQUIRE(memcmp(&g1, &zg, sizeof zg) == 0);
    REQUIRE(memcmp(&o1, &zo, sizeof zo) == 0);
    csp_mutex *mh = calloc(1, sizeof *mh);
    csp_rwlock *lh = calloc(1, sizeof *lh);
    csp_waitgroup *gh = calloc(1, sizeof *gh);
    csp_once *oh = calloc(1, sizeof *oh);
    REQUIRE(mh && lh && gh && oh);

    exercise_mutex(&s_mu);
    exercise_mutex(&m1);
    exercise_mutex(&m2);
    exercise_mutex(mh);
    exercise_rwlock(&s_rw);
    exercise_rwlock(&l1);
    exercise_rwlock(&l2);
    exercise_rwlock(lh);

    REQUIRE_EQ(csp_wg_wait(&s_wg), 0);
    REQUIRE_EQ(csp_wg_wait(&g1), 0);
    REQUIRE_EQ(csp_wg_wait(gh), 0);
    csp_wg_add(gh, 3);
    csp_wg_add(gh, -3);
    csp_wg_add(gh, 0);
    REQUIRE_EQ(csp_wg_wait(gh), 0);

    once_hits = 0;
    REQUIRE_EQ(csp_once_do(&s_once, count_once, NULL), 0);
    REQUIRE_EQ(csp_once_do(&s_once, count_once, NULL), 0);
    REQUIRE_EQ(csp_once_do(&o1, count_once, NULL), 0);
    REQUIRE_EQ(csp_once_do(oh, count_once, NULL), 0);
    REQUIRE_EQ(csp_once_do(oh, count_once, NULL), 0);
    REQUIRE_EQ(once_hits, 3);
    free(mh);
    free(lh);
    free(gh);
    free(oh);
}

static void zero_value_main(void *arg)
{
    (void)arg;
    memset(&s_once, 0, sizeof s_once);
    exercise_all();
}

/* Zero-value and *_INIT objects work at once, from a plain thread (no
 * runtime) and from a task; try forms say EBUSY, unlocking an unlocked
 * mutex or rwlock says EPERM and leaves it usable. */
START_TEST(test_zero_value)
{
    exercise_all();
    RUN_MAIN(zero_value_main, NULL);
}
END_TEST

/* ---- try forms against a holder on another task/thread --------------------- */

struct holder {
    csp_mutex *m;
    csp_rwlock *l;
    int mode;               /* 0 mutex, 1 read, 2 write */
    csp_chan *locked, *release;
};

static void hold_lock(struct holder *h)
{
    if (h->mode == 0)
        REQUIRE_EQ(csp_mutex_lock(h->m), 0);
    else if (h->mode == 1)
        REQUIRE_EQ(csp_rwlock_rdlock(h->l), 0);
    else
        REQUIRE_EQ(csp_rwlock_wrlock(h->l), 0);
    REQUIRE_EQ(csp_send(h->locked, NULL), 0);
    REQUIRE_EQ(csp_recv(h->release, NULL), 0);
    if (h->mode == 0)
        REQUIRE_EQ(csp_mutex_unlock(h->m), 0);
    else if (h->mode == 1)
        REQUIRE_EQ(csp_rwlock_rdunlock(h->l), 0);
    else
        REQUIRE_EQ(csp_rwlock_wrunlock(h->l), 0);
    REQUIRE_EQ(csp_send(h->locked, NULL), 0);
}

static void hold_task(void *arg) { hold_lock(arg); }
static void *hold_thread(void *arg) { hold_lock(arg); return NULL; }

static void try_forms_main(void *arg)
{
    (void)arg;
    csp_mutex m = CSP_MUTEX_INIT;
    csp_rwlock l = CSP_RWLOCK_INIT;
    for (int by_thread = 0; by_thread < 2; by_thread++) {
        for (int mode = 0; mode < 3; mode++) {
            struct holder h = { &m, &l, mode, release_later(csp_chan_make(0, 0)),
                                release_later(csp_chan_make(0, 0)) };
            pthread_t th;
            if (by_thread)
                th = thread_start(hold_thread, &h);
            else
                REQUIRE_EQ(csp_go(hold_task, &h), 0);
            REQUIRE_EQ(csp_recv(h.locked, NULL), 0);
            if (mode == 0) {
                REQUIRE_EQ(csp_mutex_trylock(&m), EBUSY);
            } else if (mode == 1) {
                REQUIRE_EQ(csp_rwlock_trywrlock(&l), EBUSY);
                REQUIRE_EQ(csp_rwlock_tryrdlock(&l), 0);
                REQUIRE_EQ(csp_rwlock_rdunlock(&l), 0);
            } else {
                REQUIRE_EQ(csp_rwlock_trywrlock(&l), EBUSY);
                REQUIRE_EQ(csp_rwlock_tryrdlock(&l), EBUSY);
            }
            REQUIRE_EQ(csp_send(h.release, NULL), 0);
            REQUIRE_EQ(csp_recv(h.locked, NULL), 0);
            if (by_thread)
                thread_join(th);
            if (mode == 0) {
                REQUIRE_EQ(csp_mutex_trylock(&m), 0);
                REQUIRE_EQ(csp_mutex_unlock(&m), 0);
            } else {
                REQUIRE_EQ(csp_rwlock_trywrlock(&l), 0);
                REQUIRE_EQ(csp_rwlock_wrunlock(&l), 0);
            }
        }
    }
}

/* trylock/tryrdlock/trywrlock fail with EBUSY while another task or plain
 * thread holds the lock (shared read locks excepted) and succeed after. */
START_TEST(test_try_forms)
{
    start_workers(2);
    RUN_MAIN(try_forms_main, NULL);
    release_now();
}
END_TEST

/* ---- unlock by a different task or thread ---------------------------------- */

struct handover {
    csp_mutex m;
    csp_rwlock l;
    csp_chan *c;
};

static void lock_and_hand(void *arg)
{
    struct handover *h = arg;
    REQUIRE_EQ(csp_mutex_lock(&h->m), 0);
    REQUIRE_EQ(csp_rwlock_wrlock(&h->l), 0);
    REQUIRE_EQ(csp_send(h->c, NULL), 0);
}

static void *lock_and_hand_thread(void *arg)
{
    lock_and_hand(arg);
    return NULL;
}

static void unlock_by_other_main(void *arg)
{
    (void)arg;
    struct handover h = { CSP_MUTEX_INIT, CSP_RWLOCK_INIT, release_later(csp_chan_make(0, 0)) };
    /* Locked by a task, unlocked by this task. */
    REQUIRE_EQ(csp_go(lock_and_hand, &h), 0);
    REQUIRE_EQ(csp_recv(h.c, NULL), 0);
    REQUIRE_EQ(csp_mutex_trylock(&h.m), EBUSY);
    REQUIRE_EQ(csp_mutex_unlock(&h.m), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(&h.l), 0);
    REQUIRE_EQ(csp_mutex_trylock(&h.m), 0);
    REQUIRE_EQ(csp_mutex_unlock(&h.m), 0);
    /* Locked by a plain thread, unlocked by this task. */
    pthread_t th = thread_start(lock_and_hand_thread, &h);
    REQUIRE_EQ(csp_recv(h.c, NULL), 0);
    thread_join(th);
    REQUIRE_EQ(csp_mutex_unlock(&h.m), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(&h.l), 0);
    /* Read lock taken here, released by another task while a writer
     * waits: the writer gets in. */
    REQUIRE_EQ(csp_rwlock_rdlock(&h.l), 0);
    REQUIRE_EQ(csp_go(lock_and_hand, &h), 0);     /* parks in wrlock */
    csp_sleep(5 * MS);
    REQUIRE_EQ(csp_rwlock_rdunlock(&h.l), 0);
    REQUIRE_EQ(csp_recv(h.c, NULL), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(&h.l), 0);
    REQUIRE_EQ(csp_mutex_unlock(&h.m), 0);
}

static void *unlock_from_thread(void *arg)
{
    struct handover *h = arg;
    REQUIRE_EQ(csp_mutex_unlock(&h->m), 0);
    REQUIRE_EQ(csp_rwlock_wrunlock(&h->l), 0);
    return NULL;
}

/* A mutex or rwlock may be unlocked by a task or plain thread other than
 * the one that locked it (Go semantics), and a parked waiter then gets it. */
START_TEST(test_unlock_by_other)
{
    start_workers(2);
    RUN_MAIN(unlock_by_other_main, NULL);
    release_now();
    /* Locked by this plain thread, unlocked by another plain thread. */
    struct handover h = { CSP_MUTEX_INIT, CSP_RWLOCK_INIT, NULL };
    REQUIRE_EQ(csp_mutex_lock(&h.m), 0);
    REQUIRE_EQ(csp_rwlock_wrlock(&h.l), 0);
    thread_join(thread_start(unlock_from_thread, &h));
    REQUIRE_EQ(csp_mutex_trylock(&h.m), 0);
    REQUIRE_EQ(csp_rwlock_tryrdlock(&h.l), 0);
}
END_TEST

/* ---- Mutex hammer (Go's TestMutex / HammerMutex) --------------------------- */

struct hammer {
    csp_mutex mu;
    atomic_int inside;
    long counter;            /* plain: the mutex must order it */
    atomic_long locks;
    int loops;
    csp_waitgroup wg;
};

static void hammer_mutex(struct hammer *h)
{
    long mine = 0;
    for (int i = 0; i < h->loops; i++) {
        if (i % 3 == 0) {
            if (csp_mutex_trylock(&h->mu) != 0)
                continue;
        } else {
            REQUIRE_EQ(csp_mutex_lock(&h->mu), 0);
        }
        REQUIRE_EQ(atomic_fetch_add(&h->inside, 1), 0);
        h->counter++;
        mine++;
        if (i % 64 == 0)
            csp_yield();        /* hold it across a switch: others park */
        REQUIRE_EQ(atomic_fetch_sub(&h->inside, 1), 1);
        REQUIRE_EQ(csp_mutex_unlock(&h->mu), 0);
    }
    atomic_fetch_add(&h->locks, mine);
    csp_wg_done(&h->wg);
}

static void hammer_mutex_task(void *arg) { hammer_mutex(arg); }
static void *hammer_mutex_thread(void *arg) { hammer_mutex(arg); return NULL; }

static void mutex_hammer_main(void *arg)
{
    struct hammer *h = arg;
    enum { TASKS = 10, THREADS = 2 };
    pthread_t th[THREADS];
    csp_wg_add(&h->wg, TASKS + THREADS);
    for (int i = 0; i < TASKS; i++)
        REQUIRE_EQ(csp_go(hammer_mutex_task, h), 0);
    for (int i = 0; i < THREADS; i++)
        th[i] = thread_start(hammer_mutex_thread, h);
    REQUIRE_EQ(csp_wg_wait(&h->wg), 0);
    for (int i = 0; i < THREADS; i++)
        thread_join(th[i]);
}

/* Go's TestMutex: 10 tasks and 2 plain threads lock/unlock (every third
 * try a trylock) on 4 workers; never two holders at once, and the plain
 * counter the mutex guards equals the number of successful locks. */
START_TEST(test_mutex_hammer)
{
    static struct hammer h;
    h.loops = iters(20000);
    start_workers(4);
    RUN_MAIN(mutex_hammer_main, &h);
    REQUIRE_EQ(h.counter, atomic_load(&h.locks));
    REQUIRE_GE(h.counter, (long)h.loops * 12 / 3);
    REQUIRE_EQ(csp_mutex_trylock(&h.mu), 0);
}
END_TEST

/* ---- RWMutex hammer (Go's TestRWMutex / HammerRWMutex) --------------------- */

struct rwhammer {
    csp_rwlock rw;
    atomic_int activity;
    long data;               /* written by writers, read by readers */
    int loops;
    csp_waitgroup wg;
};

static void rw_reader(struct rwhammer *h)
{
    for (int i = 0; i < h->loops; i++) {
        if (i % 5 == 0) {
            if (csp_rwlock_tryrdlock(&h->rw) != 0)
                continue;
        } else {
            REQUIRE_EQ(csp_rwlock_rdlock(&h->rw), 0);
        }
        int n = atomic_fetch_add(&h->activity, 1) + 1;
        REQUIRE_MSG(n >= 1 && n < 10000, "reader sees activity %d", n);
        long d = h->data;
        spin(100);
        REQUIRE_EQ(h->data, d);
        if (i % 50 == 0)
            csp_yield();
        atomic_fetch_sub(&h->activity, 1);
        REQUIRE_EQ(csp_rwlock_rdunlock(&h->rw), 0);
    }
    csp_wg_done(&h->wg);
}

static void rw_writer(struct rwhammer *h)
{
    for (int i = 0; i < h->loops; i++) {
        if (i % 5 == 0) {
            if (csp_rwlock_trywrlock(&h->rw) != 0)
                continue;
        } else {
            REQUIRE_EQ(csp_rwlock_wrlock(&h->rw), 0);
        }
        int n = atomic_fetch_add(&h->activity, 10000) + 10000;
        REQUIRE_MSG(n == 10000, "writer sees activity %d", n);
        h->data++;
        spin(100);
        if (i % 50 == 0)
            csp_yield();
        atomic_fetch_sub(&h->activity, 10000);
        REQUIRE_EQ(csp_rwlock_wrunlock(&h->rw), 0);
    }
    csp_wg_done(&h->wg);
}

static void rw_reader_task(void *arg) { rw_reader(arg); }
static void rw_writer_task(void *arg) { rw_writer(arg); }
static void *rw_reader_thread(void *arg) { rw_reader(arg); return NULL; }
static void *rw_writer_thread(void *arg) { rw_writer(arg); return NULL; }

struct rwcfg { unsigned workers; int readers; };
static const struct rwcfg rw_cfgs[] = {
    { 1, 1 }, { 1, 3 }, { 1, 10 }, { 4, 1 }, { 4, 3 }, { 4, 10 },
    { 10, 1 }, { 10, 3 }, { 10, 10 }, { 10, 5 },
};

static int rw_readers;

static void rw_hammer_main(void *arg)
{
    struct rwhammer *h = arg;
    /* As in Go: a writer, half the readers, a writer, the other half;
     * plus one plain-thread reader and one plain-thread writer. */
    csp_wg_add(&h->wg, 2 + rw_readers + 2);
    REQUIRE_EQ(csp_go(rw_writer_task, h), 0);
    int i;
    for (i = 0; i < rw_readers / 2; i++)
        REQUIRE_EQ(csp_go(rw_reader_task, h), 0);
    REQUIRE_EQ(csp_go(rw_writer_task, h), 0);
    for (; i < rw_readers; i++)
        REQUIRE_EQ(csp_go(rw_reader_task, h), 0);
    pthread_t r = thread_start(rw_reader_thread, h);
    pthread_t w = thread_start(rw_writer_thread, h);
    REQUIRE_EQ(csp_wg_wait(&h->wg), 0);
    thread_join(r);
    thread_join(w);
}

/* Go's TestRWMutex: writers and readers on 1, 4 and 10 workers keep the
 * activity counter consistent (a writer is alone, readers only share with
 * readers) and readers never see a write in progress. */
START_TEST(test_rwmutex_hammer)
{
    static struct rwhammer h;
    h.loops = iters(2000);
    rw_readers = rw_cfgs[_i].readers;
    start_workers(rw_cfgs[_i].workers);
    RUN_MAIN(rw_hammer_main, &h);
    REQUIRE_EQ(atomic_load(&h.activity), 0);
    REQUIRE_GE(h.data, 1);
    REQUIRE_EQ(csp_rwlock_trywrlock(&h.rw), 0);
}
END_TEST

/* ---- Go's TestParallelReaders --------------------------------------------------- */

struct preaders {
    csp_rwlock rw;
    csp_chan *locked, *unlock, *done;
};

static void parallel_reader(struct preaders *p)
{
    REQUIRE_EQ(csp_rwlock_rdlock(&p->rw), 0);
    REQUIRE_EQ(csp_send(p->locked, NULL), 0);
    REQUIRE_EQ(csp_recv(p->unlock, NULL), 0);
    REQUIRE_EQ(csp_rwlock_rdunlock(&p->rw), 0);
    REQUIRE_EQ(csp_send(p->done, NULL), 0);
}

static void parallel_reader_task(void *arg) { parallel_reader(arg); }
static void *parallel_reader_thread(void *arg) { parallel_reader(arg); return NULL; }

static void parallel_readers_main(void *arg)
{
    (void)arg;
    enum { TASKS = 8, THREADS = 2 };
    struct preaders p = { CSP_RWLOCK_INIT, release_later(csp_chan_make(0, 0)),
                          release_later(csp_chan_make(0, 0)), release_later(csp_chan_make(0, 0)) };
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS; i++)
        REQUIRE_EQ(csp_go(parallel_reader_task, &p), 0);
    for (int i = 0; i < THREADS; i++)
        th[i] = thread_start(parallel_reader_thread, &p);
    /* All of them hold the read lock at the same time. */
    for (int i = 0; i < TASKS + THREADS; i++)
        REQUIRE_EQ(csp_recv(p.locked, NULL), 0);
    REQUIRE_EQ(csp_rwlock_trywrlock(&p.rw), EBUSY);
    for (int i = 0; i < TASKS + THREADS; i++)
        REQUIRE_EQ(csp_send(p.unlock, NULL), 0);
    for (int i = 0; i < TASKS + THREADS; i++)
        REQUIRE_EQ(csp_recv(p.done, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        thread_join(th[i]);
    REQUIRE_EQ(csp_rwlock_trywrlock(&p.rw), 0);
}

/* Go's TestParallelReaders: 8 tasks (on one worker) and 2 plain threads
 * hold the read lock at once. */
START_TEST(test_parallel_readers)
{
    start_workers(1);
    RUN_MAIN(parallel_readers_main, NULL);
    release_now();
}
END_TEST

/* ---- a waiting writer blocks new readers ---------------------------------------- */

struct starve {
    csp_rwlock rw;
    atomic_int seq;
    atomic_int w_seq, r_seq[2];
    csp_waitgroup wg;
};

static void starve_writer(struct starve *s)
{
    REQUIRE_EQ(csp_rwlock_wrlock(&s->rw), 0);
    atomic_store(&s->w_seq, atomic_fetch_add(&s->seq, 1));
    csp_sleep(2 * MS);
    REQUIRE_EQ(csp_rwlock_wrunlock(&s->rw), 0);
    csp_wg_done(&s->wg);
}

static void starve_reader(struct starve *s, int k)
{
    REQUIRE_EQ(csp_rwlock_rdlock(&s->rw), 0);
    atomic_store(&s->r_seq[k], atomic_fetch_add(&s->seq, 1));
    REQUIRE_EQ(csp_rwlock_rdunlock(&s->rw), 0);
    csp_wg_done(&s->wg);
}

static void starve_writer_task(void *arg) { starve_writer(arg); }
static void *starve_writer_thread(void *arg) { starve_writer(arg); return NULL; }
static void starve_reader_task(void *arg) { starve_reader(arg, 0); }
static void *starve_reader_thread(void *arg) { starve_reader(arg, 1); return NULL; }

static int starve_writer_is_thread;

static void writer_blocks_readers_main(void *arg)
{
    (void)arg;
    struct starve s = { .rw = CSP_RWLOCK_INIT, .seq = 1 };
    pthread_t wth = 0, rth;
    csp_wg_add(&s.wg, 3);
    REQUIRE_EQ(csp_rwlock_rdlock(&s.rw), 0);
    if (starve_writer_is_thread)
        wth = thread_start(starve_writer_thread, &s);
    else
        REQUIRE_EQ(csp_go(starve_writer_task, &s), 0);
    /* Until the writer queues, tryrdlock may still succeed (drop it
     * again); once it says EBUSY with only our read lock held, the only
     * reason is the waiting writer. */
    int64_t give_up = csp_deadline(10000 * MS);
    for (;;) {
        int r = csp_rwlock_tryrdlock(&s.rw);
        if (r == EBUSY)
            break;
        REQUIRE_EQ(r, 0);
        REQUIRE_EQ(csp_rwlock_rdunlock(&s.rw), 0);
        REQUIRE_MSG(csp_now() < give_up, "writer never queued");
        csp_sleep(MS / 2);
    }
    REQUIRE_EQ(csp_rwlock_tryrdlock(&s.rw), EBUSY);
    REQUIRE_EQ(csp_go(starve_reader_task, &s), 0);
    rth = thread_start(starve_reader_thread, &s);
    csp_sleep(30 * MS);
    /* Neither the writer (we read) nor the new readers (a writer waits). */
    REQUIRE_EQ(atomic_load(&s.w_seq), 0);
    REQUIRE_EQ(atomic_load(&s.r_seq[0]), 0);
    REQUIRE_EQ(atomic_load(&s.r_seq[1]), 0);
    REQUIRE_EQ(csp_rwlock_tryrdlock(&s.rw), EBUSY);
    REQUIRE_EQ(csp_rwlock_rdunlock(&s.rw), 0);
    REQUIRE_EQ(csp_wg_wait(&s.wg), 0);
    thread_join(rth);
    if (starve_writer_is_thread)
        thread_join(wth);
    int w = atomic_load(&s.w_seq);
    REQUIRE_GT(w, 0);
    REQUIRE_GT(atomic_load(&s.r_seq[0]), w);
    REQUIRE_GT(atomic_load(&s.r_seq[1]), w);
}

/* While a writer (task, or plain thread in the second run) waits for a
 * read lock to go, new readers - tryrdlock included - are refused or
 * wait, and get in only after the writer: writers do not starve. */
START_TEST(test_writer_blocks_new_readers)
{
    starve_writer_is_thread = _i;
    start_workers(2);
    RUN_MAIN(writer_blocks_readers_main, NULL);
}
END_TEST

/* ---- read unlock happens before the next write lock ------------------------ */

struct rdhb {
    csp_rwlock rw;
    long data;              /* plain */
    csp_waitgroup locked, done;
    csp_chan *go[2];
};

static void rdhb_reader(struct rdhb *h, int k)
{
    REQUIRE_EQ(csp_rwlock_rdlock(&h->rw), 0);
    csp_wg_done(&h->locked);
    REQUIRE_EQ(csp_recv(h->go[k], NULL), 0);
    volatile long v = h->data;      /* read under the read lock */
    (void)v;
    REQUIRE_EQ(csp_rwlock_rdunlock(&h->rw), 0);
    csp_wg_done(&h->done);
}

static void *rdhb_reader0(void *arg) { rdhb_reader(arg, 0); return NULL; }
static void *rdhb_reader1(void *arg) { rdhb_reader(arg, 1); return NULL; }

static void *rdhb_writer(void *arg)
{
    struct rdhb *h = arg;
    REQUIRE_EQ(csp_rwlock_wrlock(&h->rw), 0);
    h->data = 42;                   /* must not race with either read */
    REQUIRE_EQ(csp_rwlock_wrunlock(&h->rw), 0);
    csp_wg_done(&h->done);
    return NULL;
}

/* Memory model: every read unlock (not only the last one) happens before
 * the write lock that follows, also when the writer was queued and the
 * lock handed to it.  Checked by ThreadSanitizer (a plain build only runs
 * it), on plain threads: tasks sharing a worker are ordered by their
 * switches, which would hide a missing edge from the sanitizer. */
START_TEST(test_rwlock_read_unlock_hb)
{
    static struct rdhb h;
    h.go[0] = csp_chan_make(0, 1);
    h.go[1] = csp_chan_make(0, 1);
    csp_wg_add(&h.locked, 2);
    csp_wg_add(&h.done, 3);
    pthread_t r0 = thread_start(rdhb_reader0, &h);
    pthread_t r1 = thread_start(rdhb_reader1, &h);
    REQUIRE_EQ(csp_wg_wait(&h.locked), 0);
    pthread_t w = thread_start(rdhb_writer, &h);
    while (csp_rwlock_tryrdlock(&h.rw) == 0) {      /* until the writer queues */
        REQUIRE_EQ(csp_rwlock_rdunlock(&h.rw), 0);
        csp_sleep(MS / 2);
    }
    /* The first reader reads and leaves (not last), then the last one,
     * whose unlock grants the writer; nothing else orders the first read
     * before the write. */
    REQUIRE_EQ(csp_send(h.go[0], NULL), 0);
    csp_sleep(20 * MS);
    REQUIRE_EQ(csp_send(h.go[1], NULL), 0);
    REQUIRE_EQ(csp_wg_wait(&h.done), 0);
    thread_join(w);
    thread_join(r0);
    thread_join(r1);
    REQUIRE_EQ(h.data, 42);
    csp_chan_release(h.go[0]);
    csp_chan_release(h.go[1]);
}
END_TEST

/* ---- Once (Go's TestOnce) ------------------------------------------------------- */

struct oncetest {
    csp_once once;
    int value;               /* plain: written by fn, read after do */
    atomic_int runs;
    csp_waitgroup wg;
};

static void once_fn(void *arg)
{
    struct oncetest *o = arg;
    atomic_fetch_add(&o->runs, 1);
    csp_sleep(20 * MS);      /* long enough that the others must wait */
    o->value = 42;
}

static void once_other_fn(void *arg)
{
    struct oncetest *o = arg;
    atomic_fetch_add(&o->runs, 100);
}

static void once_caller(struct oncetest *o, int k)
{
    REQUIRE_EQ(csp_once_do(&o->once, k % 2 ? once_other_fn : once_fn, o), 0);
    /* Returned only after fn finished: its write is visible. */
    REQUIRE_EQ(o->value, 42);
    REQUIRE_EQ(atomic_load(&o->runs), 1);
    csp_wg_done(&o->wg);
}

struct once_arg { struct oncetest *o; int k; };

static void once_task(void *arg)
{
    struct once_arg *a = arg;
    once_caller(a->o, a->k);
}

static void *once_thread(void *arg)
{
    struct once_arg *a = arg;
    once_caller(a->o, a->k);
    return NULL;
}

static void once_main(void *arg)
{
    struct oncetest *o = arg;
    enum { TASKS = 10, THREADS = 3 };
    struct once_arg a[TASKS + THREADS];
    pthread_t th[THREADS];
    csp_wg_add(&o->wg, TASKS + THREADS);
    for (int i = 0; i < TASKS + THREADS; i++) {
        /* The first caller carries once_fn; others may carry another fn,
         * which must never run. */
        a[i].o = o;
        a[i].k = i == 0 ? 0 : i;
    }
    REQUIRE_EQ(csp_go(once_task, &a[0]), 0);
    while (atomic_load(&o->runs) == 0)      /* fn has started */
        csp_sleep(MS / 10);
    for (int i = 1; i < TASKS; i++)
        REQUIRE_EQ(csp_go(once_task, &a[i]), 0);
    for (int i = 0; i < THREADS; i++)
        th[i] = thread_start(once_thread, &a[TASKS + i]);
    REQUIRE_EQ(csp_wg_wait(&o->wg), 0);
    for (int i = 0; i < THREADS; i++)
        thread_join(th[i]);
}

/* Go's TestOnce: fn runs exactly once however many tasks and threads call
 * once_do concurrently (even with another fn), and every caller returns
 * only after fn finished (sees its plain write). */
START_TEST(test_once)
{
    static struct oncetest o;   /* zero value */
    start_workers(2);
    RUN_MAIN(once_main, &o);
    REQUIRE_EQ(atomic_load(&o.runs), 1);
    REQUIRE_EQ(o.value, 42);
    REQUIRE_EQ(csp_once_do(&o.once, once_other_fn, &o), 0);
    REQUIRE_EQ(atomic_load(&o.runs), 1);
}
END_TEST

/* ---- WaitGroup (Go's TestWaitGroup) --------------------------------------------- */

enum { WG_N = 16 };

struct wgtest {
    csp_waitgroup wg1, wg2;
    csp_chan *exited;
};

static void wg_worker(struct wgtest *t)
{
    csp_wg_done(&t->wg1);
    REQUIRE_EQ(csp_wg_wait(&t->wg2), 0);
    REQUIRE_EQ(csp_send(t->exited, NULL), 0);
}

static void wg_worker_task(void *arg) { wg_worker(arg); }
static void *wg_worker_thread(void *arg) { wg_worker(arg); return NULL; }

static void test_wg_round(struct wgtest *t)
{
    pthread_t th[2];
    csp_wg_add(&t->wg1, WG_N);
    csp_wg_add(&t->wg2, WG_N);
    for (int i = 0; i < WG_N; i++) {
        if (i < 2)
            th[i] = thread_start(wg_worker_thread, t);
        else
            REQUIRE_EQ(csp_go(wg_worker_task, t), 0);
    }
    REQUIRE_EQ(csp_wg_wait(&t->wg1), 0);
    for (int i = 0; i < WG_N; i++)
        REQUIRE_MSG(csp_try_recv(t->exited, NULL) == EAGAIN,
                      "WaitGroup released group too soon");
    csp_sleep(MS);
    REQUIRE_EQ(csp_try_recv(t->exited, NULL), EAGAIN);
    for (int i = 0; i < WG_N; i++)
        csp_wg_done(&t->wg2);
    for (int i = 0; i < WG_N; i++)
        REQUIRE_EQ(csp_recv(t->exited, NULL), 0);
    thread_join(th[0]);
    thread_join(th[1]);
}

static void waitgroup_main(void *arg)
{
    (void)arg;
    struct wgtest t = { CSP_WAITGROUP_INIT, CSP_WAITGROUP_INIT,
                        release_later(csp_chan_make(0, WG_N)) };
    /* Run the same WaitGroups twice, to check they are reusable. */
    test_wg_round(&t);
    test_wg_round(&t);
}

/* Go's TestWaitGroup: wait releases nobody before the counter reaches 0,
 * then everyone (14 tasks, 2 plain threads); the groups are reusable. */
START_TEST(test_waitgroup)
{
    start_workers(2);
    RUN_MAIN(waitgroup_main, NULL);
    release_now();
}
END_TEST

struct wgmulti {
    csp_waitgroup wg;
    atomic_int released;
    int payload;             /* plain: written before the last done */
    csp_waitgroup all;
};

static void wg_multi_waiter(struct wgmulti *m)
{
    REQUIRE_EQ(csp_wg_wait(&m->wg), 0);
    REQUIRE_EQ(m->payload, 7);
    atomic_fetch_add(&m->released, 1);
    csp_wg_done(&m->all);
}

static void wg_multi_task(void *arg) { wg_multi_waiter(arg); }
static void *wg_multi_thread(void *arg) { wg_multi_waiter(arg); return NULL; }

static void wg_zero_main(void *arg)
{
    (void)arg;
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    REQUIRE_EQ(csp_wg_wait(&wg), 0);     /* zero: at once */
    csp_wg_add(&wg, 2);
    csp_wg_done(&wg);
    csp_wg_done(&wg);
    REQUIRE_EQ(csp_wg_wait(&wg), 0);

    static struct wgmulti m;
    csp_wg_add(&m.wg, 1);
    csp_wg_add(&m.all, 7);
    pthread_t th[2];
    for (int i = 0; i < 5; i++)
        REQUIRE_EQ(csp_go(wg_multi_task, &m), 0);
    for (int i = 0; i < 2; i++)
        th[i] = thread_start(wg_multi_thread, &m);
    csp_sleep(10 * MS);
    REQUIRE_EQ(atomic_load(&m.released), 0);
    m.payload = 7;
    csp_wg_done(&m.wg);
    REQUIRE_EQ(csp_wg_wait(&m.all), 0);
    REQUIRE_EQ(atomic_load(&m.released), 7);
    for (int i = 0; i < 2; i++)
        thread_join(th[i]);
}

/* wait on a zero counter returns at once (from a thread and a task); one
 * done releases every waiting task and thread, and the writes before it
 * are visible to all of them. */
START_TEST(test_waitgroup_zero_and_many_waiters)
{
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    REQUIRE_EQ(csp_wg_wait(&wg), 0);
    start_workers(2);
    RUN_MAIN(wg_zero_main, NULL);
}
END_TEST

/* ---- negative WaitGroup counter aborts (Go's TestWaitGroupMisuse) ---------- */

static void wg_misuse_plain(void)
{
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    csp_wg_add(&wg, 1);
    csp_wg_done(&wg);
    csp_wg_done(&wg);       /* must not return */
    _exit(0);
}

static void wg_misuse_task_main(void *arg)
{
    (void)arg;
    static csp_waitgroup wg;
    csp_wg_add(&wg, -1);    /* must not return */
}

static void wg_misuse_task(void)
{
    csp_run(wg_misuse_task_main, NULL);
    _exit(0);
}

/* A WaitGroup counter going negative aborts the process with a message
 * naming the negative counter, from a plain thread and from a task. */
START_TEST(test_waitgroup_negative_aborts)
{
    static char err[8192];
    int st = run_child_stderr(_i ? wg_misuse_task : wg_misuse_plain, err, sizeof err);
    REQUIRE_MSG(!(WIFEXITED(st) && WEXITSTATUS(st) == 0),
                  "negative counter did not abort");
    REQUIRE_MSG(strstr(err, "negative") && strstr(err, "WaitGroup"),
                  "no message on stderr: \"%s\"", err);
}
END_TEST

/* ---- Mutex fairness (Go's TestMutexFairness) --------------------------------- */

struct fair {
    csp_mutex mu;
    atomic_bool stop;
    int tight;               /* hog does not sleep while holding */
    int rounds;
    csp_chan *done;
};

static void fair_hog(struct fair *f)
{
    while (!atomic_load(&f->stop)) {
        REQUIRE_EQ(csp_mutex_lock(&f->mu), 0);
        if (f->tight)
            spin(200);
        else
            csp_sleep(100000);
        REQUIRE_EQ(csp_mutex_unlock(&f->mu), 0);
    }
}

static void fair_waiter(struct fair *f)
{
    for (int i = 0; i < f->rounds; i++) {
        if (!f->tight)
            csp_sleep(100000);
        REQUIRE_EQ(csp_mutex_lock(&f->mu), 0);
        REQUIRE_EQ(csp_mutex_unlock(&f->mu), 0);
    }
    REQUIRE_EQ(csp_send(f->done, NULL), 0);
}

static void fair_hog_task(void *arg) { fair_hog(arg); }
static void *fair_hog_thread(void *arg) { fair_hog(arg); return NULL; }
static void fair_waiter_task(void *arg) { fair_waiter(arg); }
static void *fair_waiter_thread(void *arg) { fair_waiter(arg); return NULL; }

static int fair_variant;
static csp_chan *fair_done;

static void fairness_main(void *arg)
{
    (void)arg;
    /* variant: bit 0 tight hog, bit 1 hog is a plain thread, bit 2 waiter
     * is a plain thread. */
    static struct fair f;   /* outlives this task: the hog ends later */
    f = (struct fair){ .mu = CSP_MUTEX_INIT, .tight = fair_variant & 1,
                       .rounds = (fair_variant & 1) ? 100 : 10, .done = csp_chan_make(0, 1) };
    pthread_t hog = 0, wt = 0;
    if (fair_variant & 2)
        hog = thread_start(fair_hog_thread, &f);
    else
        REQUIRE_EQ(csp_go(fair_hog_task, &f), 0);
    if (fair_variant & 4)
        wt = thread_start(fair_waiter_thread, &f);
    else
        REQUIRE_EQ(csp_go(fair_waiter_task, &f), 0);
    csp_chan *timeout = csp_after(10000 * MS);
    csp_case cs[2] = { CSP_RECV(f.done, NULL), CSP_RECV(timeout, NULL) };
    int r = csp_select(cs, 2, CSP_FOREVER);
    atomic_store(&f.stop, true);
    REQUIRE_MSG(r == 0, "can't acquire Mutex in 10 seconds");
    if (hog)
        thread_join(hog);
    if (wt)
        thread_join(wt);
    csp_chan_release(timeout);
    /* f.done is released by the test once every task has ended. */
    fair_done = f.done;
}

/* Go's TestMutexFairness: a task (or thread) that wants the mutex gets it
 * within bounded time while another one loops lock/unlock - holding it
 * across a sleep, or in a tight loop that never parks. */
START_TEST(test_mutex_fairness)
{
    fair_variant = _i;
    start_workers(2);
    RUN_MAIN(fairness_main, NULL);
    csp_chan_release(fair_done);
}
END_TEST

/* ---- lifetime: free right after the owner's own last call ---------------------- */

/* Doers: tasks and plain threads that receive a WaitGroup pointer and call
 * done on it after a short random delay (so the waiter is often parked). */
static void wg_doer(csp_chan *c)
{
    csp_waitgroup *wg;
    while (csp_recv(c, &wg) == 0) {
        spin(rnd() % 2000);
        csp_wg_done(wg);
    }
    csp_chan_release(c);    /* each doer holds its own reference */
}

static void wg_doer_task(void *arg) { wg_doer(arg); }
static void *wg_doer_thread(void *arg) { wg_doer(arg); return NULL; }

static int lifetime_reuse;

static void wg_lifetime_main(void *arg)
{
    (void)arg;
    enum { TASKS = 2, THREADS = 2 };
    csp_chan *c = csp_chan_make(sizeof(csp_waitgroup *), 0);
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS; i++)
        REQUIRE_EQ(csp_go(wg_doer_task, csp_chan_retain(c)), 0);
    for (int i = 0; i < THREADS; i++)
        th[i] = thread_start(wg_doer_thread, csp_chan_retain(c));
    int n = iters(20000);
    csp_waitgroup *reused = calloc(1, sizeof *reused);
    for (int i = 0; i < n; i++) {
        csp_waitgroup *wg = lifetime_reuse ? reused : calloc(1, sizeof *wg);
        REQUIRE(wg);
        memset(wg, 0, sizeof *wg);
        csp_wg_add(wg, 2);
        REQUIRE_EQ(csp_send(c, &wg), 0);
        REQUIRE_EQ(csp_send(c, &wg), 0);
        REQUIRE_EQ(csp_wg_wait(wg), 0);
        /* Free (ASan sees any later touch) or reuse at once (a late
         * write corrupts the next round). */
        if (!lifetime_reuse) {
            memset(wg, 0xA5, sizeof *wg);
            free(wg);
        }
    }
    csp_close(c);
    for (int i = 0; i < THREADS; i++)
        thread_join(th[i]);
    csp_chan_release(c);
    free(reused);
}

/* A WaitGroup may be freed (or reused) as soon as wait returns, while the
 * last done is still returning in another task or thread. */
START_TEST(test_waitgroup_lifetime)
{
    lifetime_reuse = _i;
    start_workers(2);
    RUN_MAIN(wg_lifetime_main, NULL);
}
END_TEST

/* A helper takes the object, waits for it (parks), then holds the last
 * lock, unlocks and frees it while our unlock may still be returning. */
struct lt_msg {
    int kind;                /* 0 mutex, 1 rwlock: we write, it reads;
                              * 2 rwlock: we read, it writes; 3 once */
    void *obj;
};

static void once_slow(void *arg)
{
    csp_chan *started = arg;
    REQUIRE_EQ(csp_send(started, NULL), 0);
    spin(rnd() % 20000);
}

static void once_never(void *arg)
{
    (void)arg;
    ck_abort_msg("second once fn ran");
}

struct lt_ctx {
    csp_chan *req, *ack, *started;
};

static void lt_helper(struct lt_ctx *c)
{
    struct lt_msg m;
    while (csp_recv(c->req, &m) == 0) {
        switch (m.kind) {
        case 0:
            REQUIRE_EQ(csp_send(c->started, NULL), 0);
            REQUIRE_EQ(csp_mutex_lock(m.obj), 0);
            REQUIRE_EQ(csp_mutex_unlock(m.obj), 0);
            break;
        case 1:
            REQUIRE_EQ(csp_send(c->started, NULL), 0);
            REQUIRE_EQ(csp_rwlock_rdlock(m.obj), 0);
            REQUIRE_EQ(csp_rwlock_rdunlock(m.obj), 0);
            break;
        case 2:
            REQUIRE_EQ(csp_send(c->started, NULL), 0);
            REQUIRE_EQ(csp_rwlock_wrlock(m.obj), 0);
            REQUIRE_EQ(csp_rwlock_wrunlock(m.obj), 0);
            break;
        case 3:
            REQUIRE_EQ(csp_recv(c->started, NULL), 0);
            REQUIRE_EQ(csp_once_do(m.obj, once_never, NULL), 0);
            break;
        }
        memset(m.obj, 0xA5, 4);
        free(m.obj);
        REQUIRE_EQ(csp_send(c->ack, NULL), 0);
    }
    /* c holds this helper's own references (the API's idiom). */
    csp_chan_release(c->req);
    csp_chan_release(c->ack);
    csp_chan_release(c->started);
    free(c);
}

static struct lt_ctx *lt_own(struct lt_ctx *c)
{
    struct lt_ctx *o = malloc(sizeof *o);
    REQUIRE(o);
    *o = (struct lt_ctx){ csp_chan_retain(c->req), csp_chan_retain(c->ack),
                          csp_chan_retain(c->started) };
    return o;
}

static void lt_helper_task(void *arg) { lt_helper(arg); }
static void *lt_helper_thread(void *arg) { lt_helper(arg); return NULL; }

static void *lt_once_runner(void *arg)
{
    void **a = arg;
    REQUIRE_EQ(csp_once_do(a[0], once_slow, a[1]), 0);
    return NULL;
}

static void lock_lifetime_main(void *arg)
{
    (void)arg;
    struct lt_ctx c = { csp_chan_make(sizeof(struct lt_msg), 0), csp_chan_make(0, 0),
                        csp_chan_make(0, 0) };
    REQUIRE_EQ(csp_go(lt_helper_task, lt_own(&c)), 0);
    pthread_t th = thread_start(lt_helper_thread, lt_own(&c));
    int n = iters(4000);
    for (int i = 0; i < n; i++) {
        struct lt_msg m = { i % 4, NULL };
        m.obj = calloc(1, 64);
        REQUIRE(m.obj);
        switch (m.kind) {
        case 0: REQUIRE_EQ(csp_mutex_lock(m.obj), 0); break;
        case 1: REQUIRE_EQ(csp_rwlock_wrlock(m.obj), 0); break;
        case 2: REQUIRE_EQ(csp_rwlock_rdlock(m.obj), 0); break;
        default: break;
        }
        REQUIRE_EQ(csp_send(c.req, &m), 0);
        if (m.kind == 3) {
            /* The runner holds once_do in fn while the helper parks in its
             * once_do; the helper frees it as soon as its call returns. */
            void *a[2] = { m.obj, c.started };
            if (i % 8 == 3) {
                pthread_t r = thread_start(lt_once_runner, a);
                REQUIRE_EQ(csp_recv(c.ack, NULL), 0);
                thread_join(r);
            } else {
                REQUIRE_EQ(csp_once_do(m.obj, once_slow, c.started), 0);
                REQUIRE_EQ(csp_recv(c.ack, NULL), 0);
            }
            continue;
        }
        REQUIRE_EQ(csp_recv(c.started, NULL), 0);
        /* Give the helper time to park (not required for correctness). */
        for (unsigned k = rnd() % 4; k > 0; k--)
            csp_yield();
        spin(rnd() % 5000);
        switch (m.kind) {
        case 0: REQUIRE_EQ(csp_mutex_unlock(m.obj), 0); break;
        case 1: REQUIRE_EQ(csp_rwlock_wrunlock(m.obj), 0); break;
        case 2: REQUIRE_EQ(csp_rwlock_rdunlock(m.obj), 0); break;
        }
        /* From here on the object is the helper's; we never touch it. */
        REQUIRE_EQ(csp_recv(c.ack, NULL), 0);
    }
    csp_close(c.req);
    thread_join(th);
    csp_chan_release(c.req);
    csp_chan_release(c.ack);
    csp_chan_release(c.started);
}

/* The last holder of a mutex or rwlock may free it right after its unlock
 * while the unlock that woke it is still returning; the waiter of a once
 * may free it while the runner's once_do is still returning. */
START_TEST(test_lock_lifetime)
{
    start_workers(2);
    RUN_MAIN(lock_lifetime_main, NULL);
}
END_TEST

/* ---- plain threads only, no runtime ---------------------------------------------- */

static void *plain_mutex_thread(void *arg)
{
    hammer_mutex(arg);
    return NULL;
}

/* The primitives work between plain threads alone, without the runtime
 * ever started (contended waiters sleep in the kernel). */
START_TEST(test_plain_threads_only)
{
    static struct hammer h;
    h.loops = iters(20000);
    enum { N = 4 };
    pthread_t th[N];
    csp_wg_add(&h.wg, N);
    for (int i = 0; i < N; i++)
        th[i] = thread_start(plain_mutex_thread, &h);
    REQUIRE_EQ(csp_wg_wait(&h.wg), 0);
    for (int i = 0; i < N; i++)
        thread_join(th[i]);
    REQUIRE_EQ(h.counter, atomic_load(&h.locks));

    static struct rwhammer rh;
    rh.loops = iters(2000);
    pthread_t rt[N];
    csp_wg_add(&rh.wg, N);
    for (int i = 0; i < N; i++)
        rt[i] = thread_start(i % 2 ? rw_writer_thread : rw_reader_thread, &rh);
    REQUIRE_EQ(csp_wg_wait(&rh.wg), 0);
    for (int i = 0; i < N; i++)
        thread_join(rt[i]);
    REQUIRE_EQ(atomic_load(&rh.activity), 0);
}
END_TEST

static Suite *sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("basic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zero_value);
    tcase_add_test(tc, test_try_forms);
    tcase_add_test(tc, test_unlock_by_other);
    tcase_add_loop_test(tc, test_waitgroup_negative_aborts, 0, 2);
    suite_add_tcase(s, tc);

    TCase *go = tcase_create("go-ports");
    tcase_set_timeout(go, 120);
    tcase_add_test(go, test_mutex_hammer);
    tcase_add_loop_test(go, test_rwmutex_hammer, 0,
                        (int)(sizeof rw_cfgs / sizeof rw_cfgs[0]));
    tcase_add_test(go, test_parallel_readers);
    tcase_add_loop_test(go, test_writer_blocks_new_readers, 0, 2);
    tcase_add_test(go, test_rwlock_read_unlock_hb);
    tcase_add_test(go, test_once);
    tcase_add_test(go, test_waitgroup);
    tcase_add_test(go, test_waitgroup_zero_and_many_waiters);
    tcase_add_loop_test(go, test_mutex_fairness, 0, 8);
    tcase_add_test(go, test_plain_threads_only);
    suite_add_tcase(s, go);

    TCase *lt = tcase_create("lifetime");
    tcase_set_timeout(lt, 120);
    tcase_add_loop_test(lt, test_waitgroup_lifetime, 0, 2);
    tcase_add_test(lt, test_lock_lifetime);
    suite_add_tcase(s, lt);
    return s;
}

int main(void)
{
    return run_suite(sync_suite());
}
