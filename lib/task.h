/*
 * task.h - a task (goroutine): its record, its stack, its life cycle.
 *
 * Ownership: task.c owns stacks and records (carving, pooling, the
 * overflow canary); sched.c owns the state transitions of a live task and
 * the run queues; park.c is the only code that moves a task between
 * RUNNING and PARKED.
 *
 * Memory layout of one stack slot, low to high addresses:
 *     [guard page, if csp_config.guard_pages] [stack ...] [go_copy env] [record]
 * The record sits at the top of its own stack, so a parked task touches one
 * page in all (its top frames and its record share it) and spawning needs
 * no allocation once the pool is warm.
 *
 * State word (t->state), the park protocol (see park.c):
 *   RUNNABLE -> RUNNING            a worker switches to it
 *   RUNNING  -> RUNNABLE           csp_yield; the worker requeues it
 *   RUNNING  -> PARKING            the task is about to switch out and may
 *                                  already be registered as a waiter
 *   PARKING  -> WOKEN              a waker came before the switch finished;
 *                                  the worker runs the task again at once
 *   PARKING  -> PARKED             the worker, after the switch: registers
 *                                  are saved, a waker may now queue it
 *   PARKED   -> RUNNABLE           task_ready(): queued on a run queue
 *   RUNNING  -> DEAD               fn returned; the worker recycles the slot
 */
#ifndef CSP_TASK_H
#define CSP_TASK_H

#include "internal.h"
#include "ctx.h"

enum task_state {
    TASK_FREE = 0, TASK_RUNNABLE, TASK_RUNNING, TASK_PARKING, TASK_WOKEN,
    TASK_PARKED, TASK_DEAD, TASK_ABANDONED
};

/* What a parked task waits on, for csp_dump. */
enum wait_reason {
    WAIT_NONE = 0, WAIT_CHAN_RECV, WAIT_CHAN_SEND, WAIT_SELECT, WAIT_MUTEX,
    WAIT_RWLOCK, WAIT_WAITGROUP, WAIT_ONCE, WAIT_SLEEP, WAIT_IO
};

struct stack_chunk;

struct task {
    ctx_t ctx;                    /* saved registers while not running      */
    struct task *next;            /* global run queue / free list link      */
    _Atomic uint32_t state;       /* enum task_state; see the protocol above */
    uint8_t wait_reason;          /* enum wait_reason while parked          */
    uint8_t guarded;              /* slot has a PROT_NONE guard page        */
    uint8_t switches;             /* switches since the last canary check   */
    int64_t park_since;           /* csp_now() when it parked, for the dump */
    void (*fn)(void *arg);
    void *arg;
    void *env_heap;               /* go_copy env too big for the stack      */
    size_t env_reserved;          /* bytes of go_copy env below the record  */
    char *stack_lo;               /* lowest usable stack byte (canary here) */
    char *slot_lo;                /* start of the whole slot                */
    size_t slot_size;
    uint64_t id;                  /* unique among live tasks                */
#ifdef CSP_ASAN
    void *asan_fake_stack;
#endif
#ifdef CSP_TSAN
    void *tsan_fiber;
#endif
};

/* A task slot of the given stack size, from the pool (NULL: ENOMEM). */
struct task *task_alloc(size_t stack_size, int guard, size_t env_size)
    __attribute__((visibility("hidden")));
/* Returns a dead task's slot to the pool. */
void task_free(struct task *t) __attribute__((visibility("hidden")));
/* Prepares t to start fn(arg) on its stack; env (if any) already copied. */
void task_prepare(struct task *t, void (*entry)(void)) __attribute__((visibility("hidden")));
/* Aborts with "csp: task stack overflow" if t overflowed its stack: the
 * saved stack pointer at every call, the canary word every 16th call and
 * whenever `full`. */
void task_check_stack(struct task *t, bool full) __attribute__((visibility("hidden")));
/* Calls f(t, arg) for every task slot ever carved (for dump and abandon). */
void task_foreach(void (*f)(struct task *t, void *arg), void *arg)
    __attribute__((visibility("hidden")));
/* Where go_copy's env lives inside t's slot (below the record). */
void *task_env_area(struct task *t, size_t env_size) __attribute__((visibility("hidden")));
/* Installs the SIGSEGV handler for guard-page overflows (once). */
void task_guard_handler_install(void) __attribute__((visibility("hidden")));
/* Per-thread alternate signal stack for that handler. */
void task_altstack_setup(void) __attribute__((visibility("hidden")));
void task_altstack_teardown(void) __attribute__((visibility("hidden")));

#define TASK_DEFAULT_STACK (64 * 1024)
#define TASK_MIN_STACK     (16 * 1024)

#endif
