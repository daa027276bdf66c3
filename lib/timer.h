/*
 * timer.h - the one timer facility: deadlines of parked tasks, csp_sleep,
 * csp_after, csp_tick and context deadlines all use it.
 *
 * Timers are intrusive (no allocation to arm one) and kept in a pairing
 * heap ordered by `when`, guarded by one lock.  A single timer thread,
 * started with the runtime or on first use, sleeps until the earliest
 * deadline and runs expired callbacks *with the timer lock held*: once
 * timer_stop() returns, the callback is neither running nor going to run,
 * so its owner may free the timer.  Lock order: timer lock, then channel
 * and scheduler locks (a callback may send on a channel or ready a task).
 */
#ifndef CSP_TIMER_H
#define CSP_TIMER_H

#include "internal.h"

struct timer {
    int64_t when;                 /* absolute csp_now() deadline            */
    int64_t period;               /* the re-arm interval of a ticker        */
    /* Runs on the timer thread with the timer lock held; returns true to
     * be re-armed one period later (t must stay valid), false otherwise
     * (then t may already be freed by fn). */
    bool (*fn)(struct timer *t);
    struct timer *child, *sibling, *prev;   /* pairing-heap links         */
    uint8_t pending;              /* in the heap (guarded by the timer lock) */
};

/* Arms t (t->when, t->fn, t->period set by the caller). */
void timer_start(struct timer *t) __attribute__((visibility("hidden")));
/* Disarms t; true if it was pending (so it will not fire). */
bool timer_stop(struct timer *t) __attribute__((visibility("hidden")));
/* True if any timer is armed (deadlock detection). */
bool timers_pending(void) __attribute__((visibility("hidden")));
/* Starts the timer thread if it is not running: 0 or an errno value. */
int  timer_thread_ensure(void) __attribute__((visibility("hidden")));
/* Stops and joins the timer thread if no timer is armed. */
void timer_thread_stop_if_idle(void) __attribute__((visibility("hidden")));
/* True on the timer thread. */
bool on_timer_thread(void) __attribute__((visibility("hidden")));
/* Number of library threads besides the workers (0 or 1). */
int  timer_thread_count(void) __attribute__((visibility("hidden")));

#endif
