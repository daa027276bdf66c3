/*
 * park.c - the one way anything in the library waits: waiter_park() and
 * waiter_wake().
 *
 * A task parks its coroutine (its worker goes on running other tasks); a
 * plain thread sleeps on a futex in its waiter.  Both are woken the same
 * way, by whoever claimed their waiter (waiter.h), so tasks and threads
 * meet on every object.
 *
 * The race this file exists to close is trap 2 of DESIGN.md: a waker that
 * finds the waiter registered must not run the task before its registers
 * are saved.  The task sets TASK_PARKING *before* it releases the locks
 * that make it findable; a waker that comes during the switch turns
 * PARKING into WOKEN and the worker, once off the task's stack, resumes it
 * instead of parking it (sched.c).  A waker that comes later sees PARKED
 * and queues it.
 */
#include "waiter.h"
#include "futex.h"
#include "sched.h"

#include <errno.h>

bool in_task(void)
{
    return sched_current() != NULL;
}

void waiter_init(struct waiter *w)
{
    atomic_init(&w->claim, W_WAITING);
    atomic_init(&w->wake, 0);
    w->task = sched_current();
    w->err = 0;
    w->timer.pending = 0;
}

static bool waiter_timeout(struct timer *tm)
{
    struct waiter *w = container_of(tm, struct waiter, timer);
    if (waiter_claim(w, W_TIMEOUT))
        waiter_wake(w);
    return false;
}

uint32_t waiter_park(struct waiter *w, int64_t deadline, int reason,
                     void (*unlock)(void *arg), void *arg)
{
    struct task *t = w->task;
    if (t) {
        /* Relaxed is enough: wakers find w only through the queues that
         * unlock() publishes (release) or through the timer armed below
         * (its lock publishes), and both come after this store. */
        atomic_store_explicit(&t->state, TASK_PARKING, memory_order_relaxed);
        /* Relaxed atomics: csp_dump reads these from other threads. */
        __atomic_store_n(&t->wait_reason, (uint8_t)reason, __ATOMIC_RELAXED);
        __atomic_store_n(&t->park_since, sched_stamp(), __ATOMIC_RELAXED);
        CHAOS();
        if (unlock)
            unlock(arg);
        CHAOS();
        if (deadline != CSP_FOREVER) {
            w->timer.when = deadline;
            w->timer.period = 0;
            w->timer.fn = waiter_timeout;
            timer_start(&w->timer);
        }
        sched_park(t);
        /* Resumed: the claim is decided.  Disarm the timer; timer_stop
         * waits out a callback that is running (it holds the timer lock),
         * so nothing touches w after this. */
        if (deadline != CSP_FOREVER)
            timer_stop(&w->timer);
        __atomic_store_n(&t->wait_reason, (uint8_t)WAIT_NONE, __ATOMIC_RELAXED);
        return atomic_load_explicit(&w->claim, memory_order_acquire);
    }

    sched_note_foreign();
    if (unlock)
        unlock(arg);
    int64_t dl = deadline;
    /* A partner on another core often answers within a microsecond, and a
     * futex sleep plus wake costs several: look a little before sleeping. */
    for (int i = 0; i < 256 && !atomic_load_explicit(&w->wake, memory_order_acquire); i++)
        cpu_relax();
    /* acquire on wake pairs with the waker's release store: what it wrote
     * into our buffers and w->err is visible once we see 1. */
    while (!atomic_load_explicit(&w->wake, memory_order_acquire)) {
        if (futex_wait(&w->wake, 0, dl) == ETIMEDOUT) {
            if (waiter_claim(w, W_TIMEOUT))
                return W_TIMEOUT;
            /* A peer claimed us just in time: it will wake us. */
            dl = CSP_FOREVER;
        }
    }
    return atomic_load_explicit(&w->claim, memory_order_acquire);
}

void waiter_wake(struct waiter *w)
{
    CHAOS();
    struct task *t = w->task;
    if (t) {
        task_ready(t);
        return;
    }
    /* After this store the owner may return and its stack frame (and w)
     * disappear; futex_wake on a dead address is harmless (at worst a
     * spurious wake-up of an unrelated futex, which every waiter
     * tolerates). */
    atomic_store_explicit(&w->wake, 1, memory_order_release);
    futex_wake(&w->wake, 1);
}
