/*
 * sched.c - the M:N scheduler: a fixed pool of worker threads running
 * tasks, csp_start/csp_stop/csp_run/csp_go/csp_yield, and deadlock
 * detection.
 *
 * Run queues (Go's design).  Each worker owns
 *   - runnext: one task readied by the task running on this worker; it runs
 *     next, so a ping-pong pair stays on one core with hot caches;
 *   - rq: a bounded ring; the owner pushes at the tail and pops at the
 *     head, thieves take half from the head with one CAS.
 * A global queue (lock + list) takes overflow, spawns from plain threads
 * and tasks woken by plain threads or the timer thread.
 *
 * Idle workers spin briefly (stealing), then sleep on a futex in their own
 * record.  The lost-wake-up rule: a worker about to sleep first registers
 * as idle, then (after a seq_cst fence) re-checks every queue; a producer
 * first publishes work, then (after a seq_cst fence) looks for idle
 * workers.  One of the two always sees the other.  At most one sleeper is
 * woken per burst of work: a woken worker counts as spinning, and no one
 * wakes another while someone spins (Go's wakep); a spinner that finds
 * work wakes the next one in its turn.
 *
 * Counters for deadlock detection: ntasks (live tasks) and nparked
 * (tasks parked for good, i.e. PARKED).  They are exact whenever every
 * worker is idle, which is the only time sched_check_deadlock trusts them.
 *
 * Lock order: rt_mu (start/stop) > timer lock > channel locks > gq_lock >
 * idle_lock.
 */
#include "sched.h"
#include "futex.h"
#include "lock.h"
#include "timer.h"
#include "netpoll.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>
#include <sys/syscall.h>

#ifdef CSP_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef CSP_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define RQ_SIZE      256
#define SPIN_ROUNDS  64   /* looks for work before an idle worker sleeps */
#define SPIN_PAUSES  32   /* pauses between two looks */

struct worker {
    /* Owner-mostly fields. */
    unsigned id;
    bool spinning;                 /* counted in rt.nspinning             */
    uint32_t tick;                 /* schedules done, for global fairness */
    struct task *current;          /* the task on this worker, or NULL    */
    ctx_t sched_ctx;               /* the worker's own stack              */
    pthread_t thread;
#ifdef CSP_ASAN
    void *asan_fake;
    const void *stack_bottom;
    size_t stack_size;
#endif
#ifdef CSP_TSAN
    void *tsan_fiber;
#endif
    /* Idle list (rt.idle_lock). */
    struct worker *idle_next;
    bool idle;
    /* 1 once a waker has chosen this sleeper; the futex word. */
    _Atomic uint32_t sleep_word ALIGNED_CL;
    /* Shared with thieves. */
    _Atomic(struct task *) runnext ALIGNED_CL;
    _Atomic uint32_t rq_head ALIGNED_CL;
    _Atomic uint32_t rq_tail ALIGNED_CL;
    _Atomic(struct task *) rq[RQ_SIZE];
};

static struct runtime {
    _Atomic int running;           /* workers exist                       */
    unsigned nworkers;             /* workers' view (set before they start) */
    _Atomic unsigned nworkers_a;   /* the same, for other threads' checks  */
    size_t stack_size;
    int guard;
    struct worker *workers;
    _Atomic bool stopping;         /* workers exit when idle              */

    lock_t gq_lock;
    struct task *gq_head, *gq_tail;
    _Atomic uint32_t gq_len ALIGNED_CL;

    lock_t idle_lock;
    struct worker *idle_head;
    _Atomic uint32_t nidle ALIGNED_CL;
    _Atomic uint32_t nspinning;

    _Atomic int64_t ntasks ALIGNED_CL;
    _Atomic int64_t nparked;
    _Atomic uint64_t next_id;

    /* csp_run / csp_stop waiting for the end or a deadlock. */
    _Atomic uint32_t run_word ALIGNED_CL;
    _Atomic bool waiting;          /* someone waits: detection is armed   */
    _Atomic bool deadlock;         /* detected                            */
    _Atomic bool foreign;          /* a plain thread used the library     */
} rt;

static pthread_mutex_t rt_mu = PTHREAD_MUTEX_INITIALIZER;
static TLS_IE struct worker *tls_worker;
static TLS_IE bool tls_run_caller;    /* the thread inside csp_run/stop */
static TLS_IE bool tls_lib_thread;    /* a worker, the timer or the poller */

/* ---- small helpers ------------------------------------------------------ */

NOINLINE struct task *sched_current(void)
{
    /* The empty asm keeps the compiler from treating this as a pure
     * function and merging two calls around a context switch. */
    __asm__ __volatile__("" ::: "memory");
    struct worker *w = tls_worker;
    return w ? w->current : NULL;
}

NOINLINE static struct worker *current_worker(void)
{
    __asm__ __volatile__("" ::: "memory");
    return tls_worker;
}

int64_t sched_stamp(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#else
    return csp_now();
#endif
}

bool sched_may_spin(void)
{
    struct worker *w = current_worker();
    if (!w || !w->current)
        return true;
    return rt.nworkers > 1;
}

void sched_note_foreign(void)
{
    /* The library's own threads (the poller waking a task whose
     * descriptor became ready, the timer) are not outside help: counting
     * them would switch deadlock detection off for the rest of the run. */
    if (tls_run_caller || tls_worker || tls_lib_thread)
        return;
    if (!atomic_load_explicit(&rt.foreign, memory_order_relaxed))
        atomic_store_explicit(&rt.foreign, true, memory_order_seq_cst);
}

static void run_notify(void)
{
    atomic_fetch_add_explicit(&rt.run_word, 1, memory_order_release);
    futex_wake(&rt.run_word, INT32_MAX);
}

/* ---- global queue -------------------------------------------------------- */

static void gq_put_list(struct task *head, struct task *tail, uint32_t n)
{
    tail->next = NULL;
    lock_acquire(&rt.gq_lock);
    if (rt.gq_tail)
        rt.gq_tail->next = head;
    else
        rt.gq_head = head;
    rt.gq_tail = tail;
    atomic_fetch_add_explicit(&rt.gq_len, n, memory_order_relaxed);
    lock_release(&rt.gq_lock);
}

static struct task *gq_get(struct worker *w, uint32_t max)
{
    if (atomic_load_explicit(&rt.gq_len, memory_order_relaxed) == 0)
        return NULL;
    lock_acquire(&rt.gq_lock);
    struct task *t = rt.gq_head;
    if (!t) {
        lock_release(&rt.gq_lock);
        return NULL;
    }
    rt.gq_head = t->next;
    uint32_t n = 1;
    /* Take a share of the rest onto our own queue. */
    uint32_t len = atomic_load_explicit(&rt.gq_len, memory_order_relaxed);
    uint32_t want = len / rt.nworkers;
    if (want > max)
        want = max;
    while (want-- > 1 && rt.gq_head) {
        struct task *x = rt.gq_head;
        rt.gq_head = x->next;
        uint32_t tl = atomic_load_explicit(&w->rq_tail, memory_order_relaxed);
        atomic_store_explicit(&w->rq[tl % RQ_SIZE], x, memory_order_relaxed);
        atomic_store_explicit(&w->rq_tail, tl + 1, memory_order_release);
        n++;
    }
    if (!rt.gq_head)
        rt.gq_tail = NULL;
    atomic_fetch_sub_explicit(&rt.gq_len, n, memory_order_relaxed);
    lock_release(&rt.gq_lock);
    return t;
}

/* ---- local run queue ------------------------------------------------------- */

/* Owner only.  Release on rq_tail publishes the slot (and the task's saved
 * context and fields) to a thief's acquire load of rq_tail. */
static void rq_put(struct worker *w, struct task *t)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->rq_head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->rq_tail, memory_order_relaxed);
        if (tl - h < RQ_SIZE) {
            atomic_store_explicit(&w->rq[tl % RQ_SIZE], t, memory_order_relaxed);
            atomic_store_explicit(&w->rq_tail, tl + 1, memory_order_release);
            return;
        }
        /* Full: move half of it and t to the global queue in one batch. */
        uint32_t n = (tl - h) / 2;
        struct task *batch[RQ_SIZE / 2];
        for (uint32_t i = 0; i < n; i++)
            batch[i] = atomic_load_explicit(&w->rq[(h + i) % RQ_SIZE], memory_order_relaxed);
        if (!atomic_compare_exchange_strong_explicit(&w->rq_head, &h, h + n,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;   /* a thief took some: there is room now */
        for (uint32_t i = 0; i + 1 < n; i++)
            batch[i]->next = batch[i + 1];
        batch[n - 1]->next = t;
        gq_put_list(batch[0], t, n + 1);
        return;
    }
}

static struct task *rq_get(struct worker *w)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&w->rq_head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&w->rq_tail, memory_order_relaxed);
        if (h == tl)
            return NULL;
        struct task *t = atomic_load_explicit(&w->rq[h % RQ_SIZE], memory_order_relaxed);
        /* The CAS arbitrates against thieves taking the same slot. */
        if (atomic_compare_exchange_weak_explicit(&w->rq_head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return t;
    }
}

/* Steals half of victim's queue into w's (empty) queue; returns one task. */
static struct task *rq_steal(struct worker *w, struct worker *v, bool take_runnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&v->rq_head, memory_order_acquire);
        uint32_t tl = atomic_load_explicit(&v->rq_tail, memory_order_acquire);
        uint32_t n = tl - h;
        n -= n / 2;
        if (n == 0) {
            if (!take_runnext)
                return NULL;
            struct task *t = atomic_load_explicit(&v->runnext, memory_order_acquire);
            if (!t)
                return NULL;
            /* Grace period: a task readied by a task that is about to park
             * (a ping-pong partner) is normally picked up by its own worker
             * within a microsecond; only one that sits there longer is
             * worth moving to another core. */
            for (int i = 0; i < 2000; i++) {
                cpu_relax();
                if (atomic_load_explicit(&v->runnext, memory_order_relaxed) != t)
                    return NULL;
            }
            if (atomic_compare_exchange_strong_explicit(&v->runnext, &t, NULL,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed))
                return t;
            return NULL;
        }
        if (n > RQ_SIZE / 2)
            continue;   /* read head and tail at different times: retry */
        uint32_t mytl = atomic_load_explicit(&w->rq_tail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++) {
            struct task *x = atomic_load_explicit(&v->rq[(h + i) % RQ_SIZE], memory_order_relaxed);
            atomic_store_explicit(&w->rq[(mytl + i) % RQ_SIZE], x, memory_order_relaxed);
        }
        /* acq_rel: we own the copied tasks only if the CAS wins; acquire
         * pairs with the owner's release publication of the slots. */
        if (!atomic_compare_exchange_strong_explicit(&v->rq_head, &h, h + n,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        struct task *t = atomic_load_explicit(&w->rq[(mytl + n - 1) % RQ_SIZE],
                                              memory_order_relaxed);
        if (n > 1)
            atomic_store_explicit(&w->rq_tail, mytl + n - 1, memory_order_release);
        return t;
    }
}

static struct task *steal_any(struct worker *w, bool take_runnext)
{
    CHAOS();
    unsigned n = rt.nworkers;
    unsigned start = csp_rand_n(n);
    for (unsigned i = 0; i < n; i++) {
        struct worker *v = &rt.workers[(start + i) % n];
        if (v == w)
            continue;
        struct task *t = rq_steal(w, v, take_runnext);
        if (t)
            return t;
    }
    return NULL;
}

static bool work_visible(void)
{
    if (atomic_load_explicit(&rt.gq_len, memory_order_relaxed))
        return true;
    for (unsigned i = 0; i < rt.nworkers; i++) {
        struct worker *v = &rt.workers[i];
        if (atomic_load_explicit(&v->rq_tail, memory_order_relaxed) !=
                atomic_load_explicit(&v->rq_head, memory_order_relaxed) ||
            atomic_load_explicit(&v->runnext, memory_order_relaxed))
            return true;
    }
    return false;
}

/* ---- waking idle workers ------------------------------------------------ */

static void wake_idle(void)
{
    /* Callers published work and then issued a seq_cst fence (or a
     * seq_cst RMW); see the lost-wake-up rule at the top. */
    if (atomic_load_explicit(&rt.nspinning, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&rt.nidle, memory_order_relaxed) == 0)
        return;
    uint32_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&rt.nspinning, &zero, 1,
                                                 memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    lock_acquire(&rt.idle_lock);
    /* Chaos builds wake some other sleeper than the first. */
    struct worker **pp = &rt.idle_head;
    for (unsigned k = CHAOS_PICK(rt.nworkers); k && *pp && (*pp)->idle_next; k--)
        pp = &(*pp)->idle_next;
    struct worker *w = *pp;
    if (w) {
        *pp = w->idle_next;
        w->idle = false;
        atomic_fetch_sub_explicit(&rt.nidle, 1, memory_order_relaxed);
    }
    lock_release(&rt.idle_lock);
    if (!w) {
        atomic_fetch_sub_explicit(&rt.nspinning, 1, memory_order_relaxed);
        return;
    }
    /* The sleeper becomes a spinner (we counted it above). */
    atomic_store_explicit(&w->sleep_word, 1, memory_order_release);
    futex_wake(&w->sleep_word, 1);
}

static void wake_all_idle(void)
{
    lock_acquire(&rt.idle_lock);
    struct worker *list = rt.idle_head;
    rt.idle_head = NULL;
    for (struct worker *w = list; w; w = w->idle_next) {
        w->idle = false;
        atomic_fetch_sub_explicit(&rt.nidle, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&rt.nspinning, 1, memory_order_relaxed);
    }
    lock_release(&rt.idle_lock);
    while (list) {
        struct worker *n = list->idle_next;
        atomic_store_explicit(&list->sleep_word, 1, memory_order_release);
        futex_wake(&list->sleep_word, 1);
        list = n;
    }
}

/* Queues a runnable task where it will run soonest. */
static void enqueue(struct task *t, bool from_ready)
{
    struct worker *w = current_worker();
    if (!w) {
        gq_put_list(t, t, 1);
        atomic_thread_fence(memory_order_seq_cst);
        wake_idle();
        return;
    }
    /* Chaos builds sometimes queue a woken task behind the others. */
    if (from_ready && CHAOS_PICK(4) == 1)
        from_ready = false;
    if (from_ready) {
        /* A task woken by the running task runs next on this worker; the
         * one it displaces goes to the queue where thieves can see it.
         * An idle worker is still woken (Go's ready -> wakep): if the
         * waker keeps running instead of parking, that worker steals the
         * task from runnext after a grace period (rq_steal). */
        struct task *old = atomic_exchange_explicit(&w->runnext, t, memory_order_acq_rel);
        if (!old) {
            atomic_thread_fence(memory_order_seq_cst);
            wake_idle();
            return;
        }
        t = old;
    }
    rq_put(w, t);
    atomic_thread_fence(memory_order_seq_cst);
    wake_idle();
}

void task_ready(struct task *t)
{
    CHAOS();
    uint32_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    for (;;) {
        if (s == TASK_PARKING) {
            /* Still switching out: leave a note; its worker resumes it. */
            if (atomic_compare_exchange_weak_explicit(&t->state, &s, TASK_WOKEN,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                return;
        } else if (s == TASK_PARKED) {
            if (atomic_compare_exchange_weak_explicit(&t->state, &s, TASK_RUNNABLE,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire))
                break;
        } else if (s == TASK_ABANDONED) {
            return;     /* a deadlock report gave it up for good */
        } else {
            csp_fatal("internal error: waking task %llu in state %u",
                      (unsigned long long)t->id, s);
        }
    }
    if (!tls_worker && !tls_lib_thread)
        sched_note_foreign();
    atomic_fetch_sub_explicit(&rt.nparked, 1, memory_order_relaxed);
    enqueue(t, true);
}

/* ---- switching ------------------------------------------------------------ */

static void switch_to_task(struct worker *w, struct task *t)
{
#ifdef CSP_ASAN
    __sanitizer_start_switch_fiber(&w->asan_fake, t->stack_lo,
                                   (size_t)((char *)t - t->stack_lo));
#endif
#ifdef CSP_TSAN
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
    ctx_switch(&w->sched_ctx, &t->ctx);
#ifdef CSP_ASAN
    __sanitizer_finish_switch_fiber(w->asan_fake, NULL, NULL);
#endif
}

static void switch_to_sched(struct task *t, bool dying)
{
    struct worker *w = current_worker();
#ifdef CSP_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &t->asan_fake_stack, w->stack_bottom,
                                   w->stack_size);
#else
    (void)dying;
#endif
#ifdef CSP_TSAN
    __tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
    ctx_switch(&t->ctx, &w->sched_ctx);
#ifdef CSP_ASAN
    __sanitizer_finish_switch_fiber(t->asan_fake_stack, NULL, NULL);
#endif
}

void sched_park(struct task *t)
{
    switch_to_sched(t, false);
}

static void task_entry(void)
{
    struct task *t = sched_current();
#ifdef CSP_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    t->fn(t->arg);
    t = sched_current();
    atomic_store_explicit(&t->state, TASK_DEAD, memory_order_relaxed);
    switch_to_sched(t, true);
    __builtin_unreachable();
}

/* Runs t until it parks, yields or ends; back on the worker's stack. */
static void run_task(struct worker *w, struct task *t)
{
again:
    w->current = t;
    atomic_store_explicit(&t->state, TASK_RUNNING, memory_order_relaxed);
    switch_to_task(w, t);
    w->current = NULL;
    CHAOS();
    /* acquire: a waker that already moved PARKING to WOKEN wrote into the
     * task's buffers first (its CAS is a release). */
    switch (atomic_load_explicit(&t->state, memory_order_acquire)) {
    case TASK_PARKING: {
        task_check_stack(t, false);
        atomic_fetch_add_explicit(&rt.nparked, 1, memory_order_relaxed);
        uint32_t s = TASK_PARKING;
        /* release: the saved context is complete before a waker that
         * sees PARKED can queue the task for another worker. */
        if (atomic_compare_exchange_strong_explicit(&t->state, &s, TASK_PARKED,
                                                    memory_order_release,
                                                    memory_order_acquire))
            return;
        /* WOKEN during the switch: run it again right away. */
        atomic_fetch_sub_explicit(&rt.nparked, 1, memory_order_relaxed);
        goto again;
    }
    case TASK_WOKEN:
        /* Woken before we even looked (the load above was acquire). */
        task_check_stack(t, false);
        goto again;
    case TASK_RUNNABLE:        /* csp_yield */
        task_check_stack(t, false);
        rq_put(w, t);
        return;
    case TASK_DEAD:
        task_check_stack(t, true);
#ifdef CSP_TSAN
        __tsan_destroy_fiber(t->tsan_fiber);
#endif
        if (t->env_heap)
            csp_free(t->env_heap);
        task_free(t);
        /* release: the task's effects happen before the csp_run/csp_stop
         * that sees the count reach zero (acquire). */
        if (atomic_fetch_sub_explicit(&rt.ntasks, 1, memory_order_release) == 1)
            run_notify();
        return;
    default:
        csp_fatal("internal error: task %llu switched out in state %u",
                  (unsigned long long)t->id, atomic_load(&t->state));
    }
}

/* ---- the worker loop -------------------------------------------------- */

static void stop_spinning(struct worker *w)
{
    w->spinning = false;
    /* The last spinner to find work wakes another, so a burst of work
     * spreads over the idle workers one at a time. */
    if (atomic_fetch_sub_explicit(&rt.nspinning, 1, memory_order_seq_cst) == 1)
        wake_idle();
}

static struct task *find_runnable(struct worker *w)
{
    struct task *t;
    for (;;) {
        if ((++w->tick % 61) == 0 && (t = gq_get(w, 1)))
            goto found;
        if ((t = atomic_exchange_explicit(&w->runnext, NULL, memory_order_acq_rel)))
            goto found;
        if ((t = rq_get(w)))
            goto found;
        if ((t = gq_get(w, RQ_SIZE / 2)))
            goto found;
        if (atomic_load_explicit(&rt.stopping, memory_order_acquire))
            return NULL;

        if (!w->spinning && rt.nworkers > 1) {
            uint32_t sp = atomic_load_explicit(&rt.nspinning, memory_order_relaxed);
            uint32_t idle = atomic_load_explicit(&rt.nidle, memory_order_relaxed);
            if (2 * sp < rt.nworkers - idle) {
                w->spinning = true;
                atomic_fetch_add_explicit(&rt.nspinning, 1, memory_order_relaxed);
            }
        }
        if (w->spinning) {
            /* Short, even pauses between looks: a task made runnable by
             * the poller or the timer waits at most one pause for us
             * (growing pauses once left it waiting ~300 us), and the
             * whole spin stays ~80 us (shorter spins made B2's wakers pay
             * a futex wake per hand-off).  Another worker's runnext is
             * taken only in the second half, after a grace period in
             * which its owner may still run it (as Go's stealing waits
             * on a running victim's runnext). */
            for (int r = 0; r < SPIN_ROUNDS; r++) {
                if ((t = steal_any(w, r >= SPIN_ROUNDS / 2)))
                    goto found;
                if ((t = gq_get(w, RQ_SIZE / 2)))
                    goto found;
                for (int k = 0; k < SPIN_PAUSES; k++)
                    cpu_relax();
            }
            w->spinning = false;
            atomic_fetch_sub_explicit(&rt.nspinning, 1, memory_order_seq_cst);
        }

        /* Sleep: register as idle, then re-check (see the top comment). */
        lock_acquire(&rt.idle_lock);
        w->idle = true;
        w->idle_next = rt.idle_head;
        rt.idle_head = w;
        atomic_fetch_add_explicit(&rt.nidle, 1, memory_order_relaxed);
        lock_release(&rt.idle_lock);
        atomic_thread_fence(memory_order_seq_cst);
        if (work_visible() || atomic_load_explicit(&rt.stopping, memory_order_acquire)) {
            lock_acquire(&rt.idle_lock);
            bool still = w->idle;
            if (still) {
                struct worker **pp = &rt.idle_head;
                while (*pp != w)
                    pp = &(*pp)->idle_next;
                *pp = w->idle_next;
                w->idle = false;
                atomic_fetch_sub_explicit(&rt.nidle, 1, memory_order_relaxed);
            }
            lock_release(&rt.idle_lock);
            if (still)
                continue;
            /* A waker chose us already and counted us as spinning. */
        } else {
            sched_check_deadlock();
        }
        while (!atomic_load_explicit(&w->sleep_word, memory_order_acquire))
            futex_wait(&w->sleep_word, 0, CSP_FOREVER);
        atomic_store_explicit(&w->sleep_word, 0, memory_order_relaxed);
        w->spinning = true;
        continue;
    found:
        if (w->spinning)
            stop_spinning(w);
        return t;
    }
}

void task_cache_enable(size_t stack_size, int guard) __attribute__((visibility("hidden")));
void task_cache_flush(void) __attribute__((visibility("hidden")));

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tls_worker = w;
    sched_lib_thread(true);
    task_cache_enable(rt.stack_size, rt.guard);
    if (rt.guard)
        task_altstack_setup();
#ifdef CSP_TSAN
    w->tsan_fiber = __tsan_get_current_fiber();
#endif
#ifdef CSP_ASAN
    {
        pthread_attr_t a;
        void *lo;
        size_t sz;
        pthread_getattr_np(pthread_self(), &a);
        pthread_attr_getstack(&a, &lo, &sz);
        pthread_attr_destroy(&a);
        w->stack_bottom = lo;
        w->stack_size = sz;
    }
#endif
    struct task *t;
    while ((t = find_runnable(w)))
        run_task(w, t);
    task_cache_flush();
    if (rt.guard)
        task_altstack_teardown();
    sched_lib_thread(false);
    tls_worker = NULL;
    return NULL;
}

/* ---- deadlock detection ------------------------------------------------- */

/* Linux: every thread of the process must be one of the library's, the
 * waiting caller, or one the environment made for itself: threads that
 * existed before main or, in a forked child, at the fork (a sanitizer's
 * runtime thread, an emulator's helper), and - in ThreadSanitizer builds -
 * TSan's background thread (is_sanitizer_thread).  Threads are told apart
 * by kernel thread id. */
#define MAX_TIDS 4200     /* csp_config.workers is at most 4096 */
static lock_t tid_lock = LOCK_INIT;
static long lib_tids[MAX_TIDS];     /* workers, timer, poller (tid_lock)  */
static long env_tids[MAX_TIDS];     /* the environment's (tid_lock)       */
static int nlib, nenv;
static TLS_IE long tls_tid;

static long my_tid(void)
{
#ifdef __linux__
    if (!tls_tid)
        tls_tid = syscall(SYS_gettid);
    return tls_tid;
#else
    return 0;
#endif
}

void sched_lib_thread(bool enter)
{
    tls_lib_thread = enter;
    long t = my_tid();
    lock_acquire(&tid_lock);
    if (enter) {
        if (nlib < MAX_TIDS)
            lib_tids[nlib++] = t;
    } else {
        for (int i = 0; i < nlib; i++)
            if (lib_tids[i] == t) {
                lib_tids[i] = lib_tids[--nlib];
                break;
            }
    }
    lock_release(&tid_lock);
}

/* Calls f(tid) for every thread of the process; false if it cannot. */
static bool for_each_tid(bool (*f)(long tid, void *arg), void *arg)
{
#ifdef __linux__
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return false;
    struct dirent *e;
    bool ok = true;
    while ((e = readdir(d)) && ok) {
        if (e->d_name[0] == '.')
            continue;
        ok = f(strtol(e->d_name, NULL, 10), arg);
    }
    closedir(d);
    return true;
#else
    (void)f;
    (void)arg;
    return false;
#endif
}

static bool add_env(long tid, void *self)
{
    if (tid != *(long *)self && nenv < MAX_TIDS)
        env_tids[nenv++] = tid;
    return true;
}

/* Before main, and in a forked child: every other thread is the
 * environment's. */
static void snapshot_env(void)
{
    tls_tid = 0;
    long self = my_tid();
    lock_acquire(&tid_lock);
    nenv = 0;
    nlib = 0;
    for_each_tid(add_env, &self);
    lock_release(&tid_lock);
}

__attribute__((constructor)) static void env_threads_init(void)
{
    snapshot_env();
    pthread_atfork(NULL, NULL, snapshot_env);
}


#ifdef CSP_TSAN
/* ThreadSanitizer starts its background thread with every signal blocked
 * (it is not made by pthread_create); user threads do not block SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2, SIGALRM and SIGCHLD all at once.
 * Used in TSan builds only, to discount that thread. */
static bool is_sanitizer_thread(long tid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    unsigned long long mask = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "SigBlk:", 7) == 0) {
            mask = strtoull(line + 7, NULL, 16);
            found = true;
            break;
        }
    fclose(f);
    const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCHLD };
    for (size_t i = 0; found && i < sizeof sigs / sizeof sigs[0]; i++)
        if (!(mask & (1ull << (sigs[i] - 1))))
            return false;
    return found;
}
#endif

static bool known_tid(long tid, void *caller)
{
    if (tid == *(long *)caller)
        return true;
    for (int i = 0; i < nlib; i++)
        if (lib_tids[i] == tid)
            return true;
    for (int i = 0; i < nenv; i++)
        if (env_tids[i] == tid)
            return true;
#ifdef CSP_TSAN
    if (is_sanitizer_thread(tid))
        return true;
#endif
    return false;     /* a thread that could still call the library */
}

/* The check runs on whatever thread went idle last; the caller of
 * csp_run/csp_stop is recorded here (tid_lock). */
static long caller_tid_for_check;

static bool check_tid(long tid, void *arg)
{
    bool *ok = arg;
    if (!known_tid(tid, &caller_tid_for_check))
        *ok = false;
    return *ok;
}

static bool only_our_threads(void)
{
    bool ok = true;
    lock_acquire(&tid_lock);
    bool counted = for_each_tid(check_tid, &ok);
    lock_release(&tid_lock);
    return counted ? ok : true;   /* cannot count: the other conditions suffice */
}

void sched_check_deadlock(void)
{
    if (!atomic_load_explicit(&rt.waiting, memory_order_acquire) ||
        atomic_load_explicit(&rt.deadlock, memory_order_relaxed))
        return;
    unsigned nw = atomic_load_explicit(&rt.nworkers_a, memory_order_seq_cst);
    if (nw == 0 || atomic_load_explicit(&rt.nidle, memory_order_seq_cst) != nw)
        return;
    int64_t live = atomic_load_explicit(&rt.ntasks, memory_order_seq_cst);
    if (live <= 0 || atomic_load_explicit(&rt.nparked, memory_order_seq_cst) != live)
        return;
    if (atomic_load_explicit(&rt.foreign, memory_order_seq_cst))
        return;
    /* timers_pending takes the timer lock, so a callback that was about
     * to wake a task has finished (and changed the counters) by now. */
    if (netpoll_waiting() > 0 || timers_pending() || !only_our_threads())
        return;
    if (atomic_load_explicit(&rt.nidle, memory_order_seq_cst) != nw ||
        atomic_load_explicit(&rt.ntasks, memory_order_seq_cst) != live ||
        atomic_load_explicit(&rt.nparked, memory_order_seq_cst) != live ||
        atomic_load_explicit(&rt.foreign, memory_order_seq_cst))
        return;
    atomic_store_explicit(&rt.deadlock, true, memory_order_seq_cst);
    run_notify();
}

/* ---- start, stop, run ------------------------------------------------------ */

void dump_write_tasks(int fd) __attribute__((visibility("hidden")));
void dump_signal_install(void) __attribute__((visibility("hidden")));

static int start_locked(const csp_config *cfg)
{
    unsigned n = cfg && cfg->workers ? cfg->workers : 0;
    size_t stack = cfg && cfg->stack_size ? cfg->stack_size : TASK_DEFAULT_STACK;
    int guard = cfg ? cfg->guard_pages : 0;
    if (n > 4096 || stack > ((size_t)1 << 30) || (guard != 0 && guard != 1))
        return EINVAL;
    if (stack < TASK_MIN_STACK)
        stack = TASK_MIN_STACK;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (unsigned)c : 1;
    }
    int err = timer_thread_ensure();
    if (err)
        return err;
    struct worker *ws = csp_aligned_alloc(n * sizeof *ws);
    if (!ws)
        return ENOMEM;
    memset(ws, 0, n * sizeof *ws);
    rt.workers = ws;
    rt.nworkers = n;
    atomic_store(&rt.nworkers_a, n);
    rt.stack_size = stack;
    rt.guard = guard;
    atomic_store(&rt.stopping, false);
    atomic_store(&rt.deadlock, false);
    atomic_store(&rt.nidle, 0);
    atomic_store(&rt.nspinning, 0);
    rt.idle_head = NULL;
    if (guard)
        task_guard_handler_install();
    dump_signal_install();
    for (unsigned i = 0; i < n; i++) {
        ws[i].id = i;
        err = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (err) {
            atomic_store(&rt.stopping, true);
            wake_all_idle();
            for (unsigned j = 0; j < i; j++) {
                /* Workers may not have gone idle yet: keep waking. */
                while (pthread_tryjoin_np(ws[j].thread, NULL) != 0) {
                    wake_all_idle();
                    sched_yield();
                }
            }
            csp_free(ws);
            rt.workers = NULL;
            return err;
        }
    }
    atomic_store_explicit(&rt.running, 1, memory_order_release);
    return 0;
}

CSP_API int csp_start(const csp_config *cfg)
{
    /* Checked before the lock too: csp_run holds rt_mu while it waits. */
    if (atomic_load_explicit(&rt.running, memory_order_acquire))
        return EBUSY;
    pthread_mutex_lock(&rt_mu);
    int err = atomic_load(&rt.running) ? EBUSY : start_locked(cfg);
    pthread_mutex_unlock(&rt_mu);
    return err;
}

int sched_ensure_started(void)
{
    if (likely(atomic_load_explicit(&rt.running, memory_order_acquire)))
        return 0;
    pthread_mutex_lock(&rt_mu);
    int err = atomic_load(&rt.running) ? 0 : start_locked(NULL);
    pthread_mutex_unlock(&rt_mu);
    return err;
}


static void abandon_one(struct task *t, void *arg)
{
    int64_t *n = arg;
    uint32_t s = TASK_PARKED;
    if (atomic_compare_exchange_strong(&t->state, &s, TASK_ABANDONED))
        (*n)++;
}

/* Waits until no task is left or a deadlock is detected (then reports it
 * and abandons the parked tasks).  Called with rt_mu held. */
static int wait_tasks_locked(void)
{
    tls_run_caller = true;
    lock_acquire(&tid_lock);
    caller_tid_for_check = my_tid();
    lock_release(&tid_lock);
    atomic_store_explicit(&rt.waiting, true, memory_order_seq_cst);
    sched_check_deadlock();
    /* The check runs when the last worker goes idle or the last timer
     * fires.  A condition that clears later with no such event (a thread
     * of ours still listed for a moment after it was joined, as under
     * qemu-user) would leave a real deadlock unreported: so the waiting
     * caller also re-checks now and then, backing off to once a second. */
    int64_t nap = 10000000;
    for (;;) {
        uint32_t seen = atomic_load_explicit(&rt.run_word, memory_order_acquire);
        if (atomic_load_explicit(&rt.ntasks, memory_order_acquire) == 0)
            break;
        if (atomic_load_explicit(&rt.deadlock, memory_order_acquire))
            break;
        if (futex_wait(&rt.run_word, seen, csp_deadline(nap)) == ETIMEDOUT) {
            sched_check_deadlock();
            if (nap < 1000000000)
                nap *= 2;
        }
    }
    atomic_store_explicit(&rt.waiting, false, memory_order_seq_cst);
    tls_run_caller = false;
    if (!atomic_load(&rt.deadlock))
        return 0;
    static const char msg[] = "csp: all tasks are asleep - deadlock!\n\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* stderr gone: nothing to do */ }
    dump_write_tasks(2);
    int64_t n = 0;
    task_foreach(abandon_one, &n);
    atomic_fetch_sub(&rt.nparked, n);
    atomic_fetch_sub(&rt.ntasks, n);
    return EDEADLK;
}

static void stop_locked(void)
{
    atomic_store_explicit(&rt.stopping, true, memory_order_seq_cst);
    wake_all_idle();
    for (unsigned i = 0; i < rt.nworkers; i++) {
        /* A worker between its re-check and its sleep would miss a single
         * wake: keep waking until it has left. */
        for (;;) {
#ifdef __linux__
            if (pthread_tryjoin_np(rt.workers[i].thread, NULL) == 0)
                break;
#else
            /* Elsewhere: stopping is re-checked after registering idle. */
            pthread_join(rt.workers[i].thread, NULL);
            break;
#endif
            wake_all_idle();
            struct timespec ts = { 0, 100000 };
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&rt.nworkers_a, 0);
    csp_free(rt.workers);
    rt.workers = NULL;
    atomic_store(&rt.foreign, false);
    atomic_store(&rt.deadlock, false);
    atomic_store_explicit(&rt.running, 0, memory_order_release);
    timer_thread_stop_if_idle();
    /* The poller stays: plain threads may be inside csp_fd_close or a
     * wait right now, and any of them may use it again (Go's netpoller
     * also lives as long as the process). */
}

CSP_API int csp_stop(void)
{
    if ((sched_current() != NULL))
        return EDEADLK;
    pthread_mutex_lock(&rt_mu);
    if (!atomic_load(&rt.running)) {
        pthread_mutex_unlock(&rt_mu);
        return 0;
    }
    /* As for csp_run: what plain threads did before this call cannot wake
     * anyone unless the thread still exists, which the thread count sees. */
    atomic_store(&rt.foreign, false);
    int err = wait_tasks_locked();
    stop_locked();
    pthread_mutex_unlock(&rt_mu);
    return err;
}

CSP_API int csp_run(void (*main_fn)(void *), void *arg)
{
    if (!main_fn || (sched_current() != NULL))
        return EINVAL;
    pthread_mutex_lock(&rt_mu);
    if (!atomic_load(&rt.running)) {
        int err = start_locked(NULL);
        if (err) {
            pthread_mutex_unlock(&rt_mu);
            return err;
        }
    }
    atomic_store(&rt.foreign, false);
    tls_run_caller = true;
    int err = csp_go(main_fn, arg);
    if (err) {
        tls_run_caller = false;
        pthread_mutex_unlock(&rt_mu);
        return err;
    }
    err = wait_tasks_locked();
    stop_locked();
    pthread_mutex_unlock(&rt_mu);
    return err;
}

/* ---- spawning ---------------------------------------------------------------- */

static int spawn(void (*fn)(void *), void *arg, const void *env, size_t size)
{
    if (!fn)
        return EINVAL;
    int err = sched_ensure_started();
    if (err)
        return err;
    struct task *t = task_alloc(rt.stack_size, rt.guard, size);
    if (!t)
        return ENOMEM;
    if (env) {
        if (size <= rt.stack_size / 4) {
            arg = task_env_area(t, size);
        } else {
            arg = t->env_heap = csp_malloc(size);
            if (!arg) {
                task_free(t);
                return ENOMEM;
            }
        }
        memcpy(arg, env, size);
    }
    /* fn and id are read by csp_dump from other threads: relaxed atomics. */
    __atomic_store_n(&t->fn, fn, __ATOMIC_RELAXED);
    t->arg = arg;
    __atomic_store_n(&t->id, atomic_fetch_add_explicit(&rt.next_id, 1, memory_order_relaxed) + 1,
                     __ATOMIC_RELAXED);
    task_prepare(t, task_entry);
#ifdef CSP_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    atomic_fetch_add_explicit(&rt.ntasks, 1, memory_order_relaxed);
    atomic_store_explicit(&t->state, TASK_RUNNABLE, memory_order_relaxed);
    if (!tls_worker)
        sched_note_foreign();
    /* The queue's release publishes fn, arg and the env copy: "csp_go
     * happens before the task starts". */
    enqueue(t, false);
    /* A task that spawns in a loop would otherwise pile up children (each
     * holding a touched stack) faster than anyone runs them: with half a
     * local queue waiting, let them run first. */
    struct worker *w = tls_worker;
    if (w && w->current &&
        atomic_load_explicit(&w->rq_tail, memory_order_relaxed) -
                atomic_load_explicit(&w->rq_head, memory_order_relaxed) >= RQ_SIZE / 2)
        csp_yield();
    return 0;
}

CSP_API int csp_go(void (*fn)(void *), void *arg)
{
    return spawn(fn, arg, NULL, 0);
}

CSP_API int csp_go_copy(void (*fn)(void *), const void *env, size_t size)
{
    if (!env && size)
        return EINVAL;
    if (!env)
        return spawn(fn, NULL, NULL, 0);
    return spawn(fn, NULL, env, size);
}

CSP_API void csp_yield(void)
{
    struct task *t = sched_current();
    if (!t) {
        sched_yield();
        return;
    }
    atomic_store_explicit(&t->state, TASK_RUNNABLE, memory_order_relaxed);
    switch_to_sched(t, false);
}
