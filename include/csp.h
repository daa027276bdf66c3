/*
 * csp.h - Go's concurrency for C: tasks, channels, select, timers, sync.
 *
 * This is the only public header of libcsp.  It is the contract: every
 * function below says what it does, what it returns and which errors it
 * reports.  Link with `pkg-config --cflags --libs csp` (-lcsp -lpthread).
 *
 * Conventions
 *   - Functions that can fail return 0 or a positive errno value (as
 *     pthreads does).  Constructors return a pointer, or NULL with errno.
 *     csp_select returns a case index or a negative errno value.
 *   - Time is int64_t nanoseconds on the monotonic clock (csp_now()).
 *     A deadline is an absolute csp_now() value.  CSP_FOREVER never
 *     expires; CSP_NOWAIT (0), or any deadline <= csp_now(), means "do not
 *     block".  A call that cannot complete at once fails with EAGAIN when
 *     given CSP_NOWAIT and with ETIMEDOUT for any other deadline.
 *   - Every blocking call works from a task (started by csp_go: it parks,
 *     and its worker thread runs other tasks) and from a plain thread (it
 *     sleeps in the kernel).  Both can meet on the same object.
 *   - An all-zero csp_mutex, csp_rwlock, csp_waitgroup or csp_once is ready
 *     to use; there is no init or destroy call.
 *
 * Memory model: the same guarantees as Go's (a send happens before the
 * matching receive completes, an unlock before the next lock, ...); see
 * csp(7) and README.
 */
#ifndef CSP_H
#define CSP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#define CSP_VERSION_MAJOR 0
#define CSP_VERSION_MINOR 1
#define CSP_VERSION_PATCH 0

#if defined(__GNUC__) && !defined(CSP_NO_ATTRIBUTES)
#define CSP_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define CSP_WARN_UNUSED
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* "0.1.0": the version of the library actually linked. */
const char *csp_version(void);

/* ------------------------------------------------------------------ */
/* Time                                                               */
/* ------------------------------------------------------------------ */

#define CSP_FOREVER ((int64_t)-1)   /* a deadline that never expires        */
#define CSP_NOWAIT  ((int64_t)0)    /* "do not block": the try form (EAGAIN) */

/* Nanoseconds on the monotonic clock. */
int64_t csp_now(void);
/* csp_now() + ns, saturating at INT64_MAX; CSP_FOREVER stays CSP_FOREVER. */
int64_t csp_deadline(int64_t ns_from_now);

/* ------------------------------------------------------------------ */
/* Runtime and tasks                                                  */
/* ------------------------------------------------------------------ */

typedef struct csp_config {
    unsigned workers;    /* worker threads; 0 = number of online CPUs       */
    size_t   stack_size; /* per-task stack bytes; 0 = default (64 KiB)      */
    int      guard_pages;/* 1 = a PROT_NONE page below every stack          */
} csp_config;

/* Starts the worker pool.  Optional: csp_go starts it with defaults.
 * EBUSY if already running, EINVAL for a bad config, ENOMEM, EAGAIN. */
int csp_start(const csp_config *cfg);

/* Starts fn(arg) as a task (a goroutine).  0, EINVAL (fn NULL), ENOMEM. */
int csp_go(void (*fn)(void *arg), void *arg);

/* The closure form: copies size bytes of env into storage owned by the
 * task and calls fn(copy).  The copy is valid until fn returns. */
int csp_go_copy(void (*fn)(void *arg), const void *env, size_t size);

/* Lets other runnable tasks run (sched_yield from a plain thread). */
void csp_yield(void);

/* Sleeps ns nanoseconds (a task parks).  0, or EINVAL for ns < 0. */
int csp_sleep(int64_t ns);

/* Go's main: runs main_fn(arg) as a task, waits for it and for every other
 * task, stops the runtime, returns 0.  If every task is parked with nothing
 * that could ever wake one, prints "csp: all tasks are asleep - deadlock!"
 * and a task dump to stderr and returns EDEADLK (the parked tasks are
 * abandoned).  EINVAL if main_fn is NULL or if called from a task. */
int csp_run(void (*main_fn)(void *arg), void *arg);

/* Waits for every task to finish, joins the workers and frees the runtime;
 * it may be started again afterwards.  0; EDEADLK if called from a task or
 * if the remaining tasks can never finish (they are abandoned). */
int csp_stop(void);

/* ------------------------------------------------------------------ */
/* Channels                                                           */
/* ------------------------------------------------------------------ */

typedef struct csp_chan csp_chan;

/* A channel of elem_size-byte values; cap 0 is unbuffered (rendezvous).
 * The caller holds one reference.  NULL with errno EINVAL or ENOMEM. */
csp_chan *csp_chan_make(size_t elem_size, size_t cap);
/* Adds a reference (for another party that will call on c); returns c. */
csp_chan *csp_chan_retain(csp_chan *c);
/* Drops a reference; the channel is freed at zero.  NULL is a no-op.
 * Releasing the last reference while someone is blocked on the channel is
 * a usage error: it is reported on stderr and the process aborts. */
void      csp_chan_release(csp_chan *c);

/* Blocking send/receive: 0, EPIPE (closed; a failed send delivered
 * nothing, a receive on a closed drained channel zero-fills *elem),
 * EINVAL (c NULL, or elem NULL with elem_size > 0). */
int csp_send(csp_chan *c, const void *elem);
int csp_recv(csp_chan *c, void *elem);
/* Non-blocking: as above, or EAGAIN when it would block. */
int csp_try_send(csp_chan *c, const void *elem);
int csp_try_recv(csp_chan *c, void *elem);
/* With a deadline: as above, or ETIMEDOUT (EAGAIN for CSP_NOWAIT). */
int csp_send_until(csp_chan *c, const void *elem, int64_t deadline);
int csp_recv_until(csp_chan *c, void *elem, int64_t deadline);
/* Closes c: buffered values stay receivable; every blocked party wakes.
 * 0, EPIPE if already closed, EINVAL for NULL. */
int csp_close(csp_chan *c);

size_t csp_chan_len(const csp_chan *c);       /* values buffered now  */
size_t csp_chan_cap(const csp_chan *c);
size_t csp_chan_elem_size(const csp_chan *c);

/* ------------------------------------------------------------------ */
/* Select                                                             */
/* ------------------------------------------------------------------ */

enum { CSP_OP_RECV = 1, CSP_OP_SEND = 2, CSP_OP_READABLE = 3, CSP_OP_WRITABLE = 4 };

typedef struct csp_case {
    csp_chan *chan;  /* RECV/SEND: NULL means the case never fires        */
    int       op;    /* CSP_OP_RECV, _SEND, _READABLE or _WRITABLE        */
    void     *elem;  /* value to send / where to store the received value */
    int       err;   /* out: 0, or EPIPE if it fired on a closed channel  */
    int       fd;    /* READABLE/WRITABLE: the file descriptor            */
} csp_case;

#ifdef __cplusplus
#define CSP_CASE_(ch, op, ptr, fd) csp_case{ (ch), (op), (void *)(ptr), 0, (fd) }
#else
#define CSP_CASE_(ch, op, ptr, fd) ((csp_case){ (ch), (op), (void *)(ptr), 0, (fd) })
#endif
#define CSP_RECV(ch, ptr) CSP_CASE_((ch), CSP_OP_RECV, (ptr), -1)
#define CSP_SEND(ch, ptr) CSP_CASE_((ch), CSP_OP_SEND, (ptr), -1)
#define CSP_READABLE(fd)  CSP_CASE_(NULL, CSP_OP_READABLE, NULL, (fd))
#define CSP_WRITABLE(fd)  CSP_CASE_(NULL, CSP_OP_WRITABLE, NULL, (fd))

/* Waits until a case can proceed, performs exactly one (chosen uniformly
 * at random among the ready ones) and returns its index.  -EAGAIN
 * (CSP_NOWAIT, nothing ready), -ETIMEDOUT, -EINVAL, -ENOMEM. */
int csp_select(csp_case *cases, size_t n, int64_t deadline);

/* ------------------------------------------------------------------ */
/* I/O that parks                                                     */
/* ------------------------------------------------------------------ */

enum { CSP_IO_READ = 1, CSP_IO_WRITE = 2 };

/* POSIX-style: the result of read(2)/write(2)/accept(2)/connect(2), or -1
 * with errno (ETIMEDOUT when the deadline passed, EAGAIN for CSP_NOWAIT,
 * EBADF when csp_fd_close closed the descriptor while waiting). */
ssize_t csp_read(int fd, void *buf, size_t n, int64_t deadline);
ssize_t csp_write(int fd, const void *buf, size_t n, int64_t deadline);
int     csp_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline);
int     csp_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline);
/* 0, EBADF, EINVAL (bad events), ETIMEDOUT, EAGAIN. */
int     csp_fd_wait(int fd, int events, int64_t deadline);

/* errno of the calling thread, read afresh.  A task may resume on another
 * worker thread after any call that parks, and compilers may keep the
 * address of the previous thread's errno (glibc declares it const): in a
 * task, read the errno of csp_read & co. through csp_errno(). */
int     csp_errno(void);
/* Wakes every waiter on fd with EBADF, forgets it, closes it.  0 or EBADF. */
int     csp_fd_close(int fd);

/* ------------------------------------------------------------------ */
/* Cancellation (Go's context)                                        */
/* ------------------------------------------------------------------ */

typedef struct csp_ctx csp_ctx;

csp_ctx  *csp_ctx_background(void);
csp_ctx  *csp_ctx_with_cancel(csp_ctx *parent);
csp_ctx  *csp_ctx_with_deadline(csp_ctx *parent, int64_t deadline);
csp_ctx  *csp_ctx_with_timeout(csp_ctx *parent, int64_t ns);
void      csp_ctx_cancel(csp_ctx *ctx);
int       csp_ctx_err(const csp_ctx *ctx);     /* 0, ECANCELED or ETIMEDOUT */
csp_chan *csp_ctx_done(csp_ctx *ctx);          /* borrowed; closed on cancel */
int64_t   csp_ctx_deadline(const csp_ctx *ctx);
csp_ctx  *csp_ctx_retain(csp_ctx *ctx);
void      csp_ctx_release(csp_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Introspection                                                      */
/* ------------------------------------------------------------------ */

/* One line per live task: number, state, parked time, entry function.
 * 0 or EBADF. */
int csp_dump(int fd);

/* ------------------------------------------------------------------ */
/* Timers                                                             */
/* ------------------------------------------------------------------ */

/* A channel of int64_t that receives csp_now() once, ns from now. */
csp_chan *csp_after(int64_t ns);
/* A channel of int64_t (cap 1) that receives csp_now() every period_ns;
 * ticks are dropped for slow readers.  Stop it with csp_tick_stop. */
csp_chan *csp_tick(int64_t period_ns);
/* 0, or EINVAL if ticker is not a live ticker. */
int       csp_tick_stop(csp_chan *ticker);

/* ------------------------------------------------------------------ */
/* Synchronisation                                                    */
/* ------------------------------------------------------------------ */
/* The members are private; they are declared so that the objects can be
 * embedded by value.  All-zero is the ready state. */

typedef struct csp_waitgroup { uint64_t csp_private_state; } csp_waitgroup;
typedef struct csp_once      { uint32_t csp_private_state; } csp_once;
typedef struct csp_mutex     { uint32_t csp_private_state; } csp_mutex;
typedef struct csp_rwlock    { uint32_t csp_private_state; } csp_rwlock;

#define CSP_WAITGROUP_INIT {0}
#define CSP_ONCE_INIT      {0}
#define CSP_MUTEX_INIT     {0}
#define CSP_RWLOCK_INIT    {0}

/* Adds delta to the counter; a counter below zero aborts with a message. */
void csp_wg_add(csp_waitgroup *wg, int64_t delta);
void csp_wg_done(csp_waitgroup *wg);                  /* csp_wg_add(wg, -1) */
int  csp_wg_wait(csp_waitgroup *wg);                  /* 0 or EINVAL */

/* Runs fn(arg) exactly once per csp_once; every caller returns after it
 * finished.  0 or EINVAL. */
int  csp_once_do(csp_once *once, void (*fn)(void *arg), void *arg);

/* Any task or thread may unlock (Go semantics).  EINVAL for NULL; EPERM
 * for unlocking an unlocked lock; EBUSY from the try forms. */
int  csp_mutex_lock(csp_mutex *m);
int  csp_mutex_trylock(csp_mutex *m);
int  csp_mutex_unlock(csp_mutex *m);

int  csp_rwlock_rdlock(csp_rwlock *l);
int  csp_rwlock_tryrdlock(csp_rwlock *l);
int  csp_rwlock_rdunlock(csp_rwlock *l);
int  csp_rwlock_wrlock(csp_rwlock *l);
int  csp_rwlock_trywrlock(csp_rwlock *l);
int  csp_rwlock_wrunlock(csp_rwlock *l);

/* ---- Typed channels ---- */
/*
 * CSP_CHAN_TYPE(name, T) declares a channel type whose element type the
 * compiler checks: `name *` is a csp_chan underneath (no extra memory, no
 * extra call: every function below is a static inline one-liner over the
 * untyped API above).  Use it at file scope, followed by a semicolon:
 *
 *     CSP_CHAN_TYPE(int_chan, int);
 *
 *     int_chan *c = int_chan_make(8);       // chan int, cap 8
 *     int_chan_send(c, 42);                 // c <- 42
 *     int v; int_chan_recv(c, &v);          // v := <-c
 *     int_chan_send(c, "x");                // compile error
 *
 * declares the incomplete type `name` and, for a value type T:
 *
 *     name     *name_make(size_t cap);                 NULL + errno
 *     name     *name_retain(name *c);
 *     void      name_release(name *c);
 *     int       name_send(name *c, T v);
 *     int       name_recv(name *c, T *v);
 *     int       name_try_send(name *c, T v);
 *     int       name_try_recv(name *c, T *v);
 *     int       name_send_until(name *c, T v, int64_t deadline);
 *     int       name_recv_until(name *c, T *v, int64_t deadline);
 *     int       name_close(name *c);
 *     size_t    name_len(const name *c);
 *     size_t    name_cap(const name *c);
 *     csp_chan *name_chan(name *c);                    the untyped channel
 *     name     *name_from(csp_chan *c);                NULL unless the
 *                                                      element size is sizeof(T)
 *     csp_case  name_case_recv(name *c, T *v);         for csp_select
 *     csp_case  name_case_send(name *c, const T *v);   for csp_select
 *
 * Return values and errors are those of the untyped functions.  T must be
 * a type name that `T v;` and `T *p;` accept (use a typedef for arrays and
 * function pointers).
 */
#if defined(__GNUC__) && !defined(CSP_NO_ATTRIBUTES)
#define CSP_TYPED_FN_ static inline __attribute__((unused))
#else
#define CSP_TYPED_FN_ static inline
#endif
#define CSP_CHAN_TYPE(name, T)                                                 \
    typedef struct name name;                                                  \
    CSP_TYPED_FN_ name *name##_make(size_t cap)                                \
    { return (name *)csp_chan_make(sizeof(T), cap); }                          \
    CSP_TYPED_FN_ csp_chan *name##_chan(name *c) { return (csp_chan *)c; }     \
    CSP_TYPED_FN_ name *name##_from(csp_chan *c)                               \
    { return c && csp_chan_elem_size(c) == sizeof(T) ? (name *)c : NULL; }     \
    CSP_TYPED_FN_ name *name##_retain(name *c)                                 \
    { return (name *)csp_chan_retain((csp_chan *)c); }                         \
    CSP_TYPED_FN_ void name##_release(name *c)                                 \
    { csp_chan_release((csp_chan *)c); }                                       \
    CSP_TYPED_FN_ int name##_send(name *c, T v)                                \
    { return csp_send((csp_chan *)c, &v); }                                    \
    CSP_TYPED_FN_ int name##_recv(name *c, T *v)                               \
    { return csp_recv((csp_chan *)c, v); }                                     \
    CSP_TYPED_FN_ int name##_try_send(name *c, T v)                            \
    { return csp_try_send((csp_chan *)c, &v); }                                \
    CSP_TYPED_FN_ int name##_try_recv(name *c, T *v)                           \
    { return csp_try_recv((csp_chan *)c, v); }                                 \
    CSP_TYPED_FN_ int name##_send_until(name *c, T v, int64_t deadline)        \
    { return csp_send_until((csp_chan *)c, &v, deadline); }                    \
    CSP_TYPED_FN_ int name##_recv_until(name *c, T *v, int64_t deadline)       \
    { return csp_recv_until((csp_chan *)c, v, deadline); }                     \
    CSP_TYPED_FN_ int name##_close(name *c)                                    \
    { return csp_close((csp_chan *)c); }                                       \
    CSP_TYPED_FN_ size_t name##_len(const name *c)                             \
    { return csp_chan_len((const csp_chan *)c); }                              \
    CSP_TYPED_FN_ size_t name##_cap(const name *c)                             \
    { return csp_chan_cap((const csp_chan *)c); }                              \
    CSP_TYPED_FN_ csp_case name##_case_recv(name *c, T *v)                     \
    { return CSP_RECV((csp_chan *)c, v); }                                     \
    CSP_TYPED_FN_ csp_case name##_case_send(name *c, const T *v)               \
    { return CSP_SEND((csp_chan *)c, v); }                                     \
    struct name /* the caller's semicolon ends this declaration */

/*
 * Go's `for v := range ch`: receives into the lvalue v until the channel
 * is closed and drained (or a receive fails), running the body for each
 * value.  `break` leaves the loop as in Go.
 *
 *     int v;
 *     CSP_RANGE(ch, v)              // ch is a csp_chan * of int
 *         printf("%d\n", v);
 *
 * CSP_RANGE_OF(name, ch, v) is the checked form for a CSP_CHAN_TYPE
 * channel: v must be a T.
 */
#define CSP_RANGE(ch, v) for (; csp_recv((ch), &(v)) == 0;)
#define CSP_RANGE_OF(name, ch, v) for (; name##_recv((ch), &(v)) == 0;)

#ifdef __cplusplus
}
#endif

#endif /* CSP_H */
