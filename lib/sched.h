/*
 * sched.h - the worker pool: run queues, stealing, idle sleep, csp_run's
 * deadlock detection.  sched.c owns the `rt` runtime record, every worker,
 * and the transitions of t->state outside park.c.
 */
#ifndef CSP_SCHED_H
#define CSP_SCHED_H

#include "internal.h"
#include "task.h"

/* The task running on this thread, or NULL on a plain thread.  Never
 * inlined and never cached by the caller across a park: a task may resume
 * on another worker, where the thread-local variables differ. */
struct task *sched_current(void) __attribute__((visibility("hidden")));

/* Switches the current task (state already TASK_PARKING) out; returns when
 * a waker made it runnable again. */
void sched_park(struct task *t) __attribute__((visibility("hidden")));

/* Makes a parked task runnable (any thread).  See the protocol in task.h. */
void task_ready(struct task *t) __attribute__((visibility("hidden")));

/* Records that a plain thread used the library (deadlock detection must
 * then assume it may act again). */
void sched_note_foreign(void) __attribute__((visibility("hidden")));

/* Reports a deadlock to a waiting csp_run/csp_stop if every condition of
 * the contract holds; cheap when it does not. */
void sched_check_deadlock(void) __attribute__((visibility("hidden")));

/* A library thread (worker, timer, poller) starts (true) or ends. */
void sched_lib_thread(bool enter) __attribute__((visibility("hidden")));

/* Starts the runtime with defaults if it is not running. */
int sched_ensure_started(void) __attribute__((visibility("hidden")));

/* Cheap monotonic time stamp for the dump (coarse where available). */
int64_t sched_stamp(void) __attribute__((visibility("hidden")));

/* Whether spinning for a lock can pay here: on a plain thread, or on a
 * task when another worker exists to run the holder.  (Go's canSpin also
 * requires an empty local run queue; measured on B8 here, spinning
 * briefly anyway was faster: 8.5-11 ns per increment against 14-17.) */
bool sched_may_spin(void) __attribute__((visibility("hidden")));

#endif
