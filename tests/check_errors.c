/*
 * check_errors.c - every function of the contract (API.md) with every bad
 * input the contract names, table driven: each row is one call sequence
 * and the error it must report.  Each row runs as its own forked test
 * (a loop test over the table), so a crash names the row.
 *
 * A row's function returns the observed error in one number:
 *   - functions returning 0/errno: that value;
 *   - constructors: 0 for a pointer, errno for NULL;
 *   - csp_select: its (negative) result;
 *   - POSIX-style I/O: errno when it returned -1, else 0;
 *   - anything else that went wrong: BAD (never expected).
 * Misuse that aborts (negative WaitGroup counter, releasing a channel
 * somebody waits on) is checked by signal tests at the end.
 */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS 1000000LL
#define BAD 9999

/* ---- fixtures ---------------------------------------------------------------- */

static csp_chan *closed_chan(size_t elem, size_t cap, int fill)
{
    csp_chan *c = csp_chan_make(elem, cap);
    if (!c)
        return NULL;
    int v = 1;
    for (int i = 0; i < fill; i++)
        csp_send(c, &v);
    csp_close(c);
    return c;
}

static csp_chan *full_chan(void)
{
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    int v = 1;
    csp_send(c, &v);
    return c;
}

static int ctor(void *p)
{
    return p ? 0 : errno;
}

static int posix(ssize_t r)
{
    return r < 0 ? errno : 0;
}

static int closed_fd(void)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    close(p[0]);
    close(p[1]);
    return p[0];
}

static void nop(void *arg) { (void)arg; }

/* Runs fn(arg) as a task (csp_run) and returns what it stored in *res. */
static int in_task(void (*fn)(void *), int *res)
{
    *res = BAD;
    int r = csp_run(fn, res);
    return r ? BAD : *res;
}

/* ---- runtime ---------------------------------------------------------------- */

static int e_start_guard2(void) { return csp_start(&(csp_config){ 1, 0, 2 }); }
static int e_start_guard_neg(void) { return csp_start(&(csp_config){ 1, 0, -1 }); }
static int e_start_twice(void)
{
    if (csp_start(NULL) != 0)
        return BAD;
    int r = csp_start(NULL);
    return csp_stop() ? BAD : r;
}
static int e_start_twice_cfg(void)
{
    if (csp_start(&(csp_config){ 2, 0, 0 }) != 0)
        return BAD;
    int r = csp_start(&(csp_config){ 1, 0, 0 });
    return csp_stop() ? BAD : r;
}
static int e_go_null(void) { return csp_go(NULL, NULL); }
static int e_go_copy_null_fn(void) { int x = 1; return csp_go_copy(NULL, &x, sizeof x); }
static int e_go_copy_null_env(void) { return csp_go_copy(nop, NULL, 8); }
static int e_sleep_neg(void) { return csp_sleep(-1); }
static int e_run_null(void) { return csp_run(NULL, NULL); }
static void run_inside(void *arg) { *(int *)arg = csp_run(nop, NULL); }
static int e_run_in_task(void) { int r; return in_task(run_inside, &r); }
static void stop_inside(void *arg) { *(int *)arg = csp_stop(); }
static int e_stop_in_task(void) { int r; return in_task(stop_inside, &r); }
static int e_stop_not_running(void) { return csp_stop(); }
static int e_deadline_forever(void) { return csp_deadline(CSP_FOREVER) == CSP_FOREVER ? 0 : BAD; }
static int e_deadline_saturates(void)
{
    return csp_deadline(INT64_MAX) == INT64_MAX && csp_deadline(INT64_MAX - 5) == INT64_MAX
               ? 0 : BAD;
}
static int e_use_after_restart(void)
{
    /* Objects made before csp_stop work after a restart. */
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    if (csp_start(NULL) || csp_stop() || csp_start(NULL))
        return BAD;
    int v = 5, r = csp_send(c, &v) || csp_recv(c, &v) || v != 5 || csp_go(nop, NULL);
    r |= csp_stop() != 0;
    csp_chan_release(c);
    return r ? BAD : 0;
}

/* ---- channels ---------------------------------------------------------------- */

static int e_make_huge_cap(void) { return ctor(csp_chan_make(sizeof(int), SIZE_MAX)); }
static int e_make_overflow(void) { return ctor(csp_chan_make(SIZE_MAX / 2, 4)); }
static int e_send_null(void) { int v = 1; return csp_send(NULL, &v); }
static int e_recv_null(void) { int v; return csp_recv(NULL, &v); }
static int e_try_send_null(void) { int v = 1; return csp_try_send(NULL, &v); }
static int e_try_recv_null(void) { int v; return csp_try_recv(NULL, &v); }
static int e_send_until_null(void) { int v = 1; return csp_send_until(NULL, &v, CSP_FOREVER); }
static int e_recv_until_null(void) { int v; return csp_recv_until(NULL, &v, CSP_FOREVER); }
static int e_close_null(void) { return csp_close(NULL); }

static int with_chan(int (*op)(csp_chan *), csp_chan *c)
{
    if (!c)
        return BAD;
    int r = op(c);
    csp_chan_release(c);
    return r;
}

static int op_send_nullelem(csp_chan *c) { return csp_send(c, NULL); }
static int op_recv_nullelem(csp_chan *c) { return csp_recv(c, NULL); }
static int op_try_send_nullelem(csp_chan *c) { return csp_try_send(c, NULL); }
static int op_try_recv_nullelem(csp_chan *c) { return csp_try_recv(c, NULL); }
static int op_send_until_nullelem(csp_chan *c) { return csp_send_until(c, NULL, CSP_NOWAIT); }
static int op_recv_until_nullelem(csp_chan *c) { return csp_recv_until(c, NULL, CSP_NOWAIT); }
static int op_close(csp_chan *c) { return csp_close(c); }
static int op_send(csp_chan *c) { int v = 2; return csp_send(c, &v); }
static int op_try_send(csp_chan *c) { int v = 2; return csp_try_send(c, &v); }
static int op_send_until(csp_chan *c) { int v = 2; return csp_send_until(c, &v, csp_deadline(MS)); }
static int op_send_until_nowait(csp_chan *c) { int v = 2; return csp_send_until(c, &v, CSP_NOWAIT); }
static int op_send_until_past(csp_chan *c) { int v = 2; return csp_send_until(c, &v, 1); }
static int op_recv_zeroed(csp_chan *c)
{
    int v = 77, r = csp_recv(c, &v);
    return v == 0 ? r : BAD;
}
static int op_try_recv_zeroed(csp_chan *c)
{
    int v = 77, r = csp_try_recv(c, &v);
    return v == 0 ? r : BAD;
}
static int op_recv_until_zeroed(csp_chan *c)
{
    int v = 77, r = csp_recv_until(c, &v, csp_deadline(MS));
    return v == 0 ? r : BAD;
}
static int op_try_recv(csp_chan *c) { int v; return csp_try_recv(c, &v); }
static int op_recv_until_nowait(csp_chan *c) { int v; return csp_recv_until(c, &v, CSP_NOWAIT); }
static int op_recv_until_past(csp_chan *c) { int v; return csp_recv_until(c, &v, 1); }
static int op_recv_until_soon(csp_chan *c) { int v; return csp_recv_until(c, &v, csp_deadline(2 * MS)); }
static int op_drain_then_closed(csp_chan *c)
{
    int v = 0;
    if (csp_recv(c, &v) != 0 || v != 1 || csp_recv(c, &v) != 0 || v != 1)
        return BAD;
    return csp_recv(c, &v);
}
static int op_zero_size_null_elem(csp_chan *c)
{
    return csp_send(c, NULL) || csp_recv(c, NULL) || csp_try_recv(c, NULL) != EAGAIN ? BAD : 0;
}

static int e_send_nullelem(void) { return with_chan(op_send_nullelem, csp_chan_make(4, 1)); }
static int e_recv_nullelem(void) { return with_chan(op_recv_nullelem, full_chan()); }
static int e_try_send_nullelem(void) { return with_chan(op_try_send_nullelem, csp_chan_make(4, 1)); }
static int e_try_recv_nullelem(void) { return with_chan(op_try_recv_nullelem, full_chan()); }
static int e_send_until_nullelem(void) { return with_chan(op_send_until_nullelem, csp_chan_make(4, 1)); }
static int e_recv_until_nullelem(void) { return with_chan(op_recv_until_nullelem, full_chan()); }
static int e_close_twice(void) { return with_chan(op_close, closed_chan(4, 0, 0)); }
static int e_send_closed(void) { return with_chan(op_send, closed_chan(4, 0, 0)); }
static int e_send_closed_buffered(void) { return with_chan(op_send, closed_chan(4, 4, 1)); }
static int e_try_send_closed(void) { return with_chan(op_try_send, closed_chan(4, 4, 0)); }
static int e_try_send_closed_full(void) { return with_chan(op_try_send, closed_chan(4, 1, 1)); }
static int e_send_until_closed(void) { return with_chan(op_send_until, closed_chan(4, 0, 0)); }
static int e_recv_closed(void) { return with_chan(op_recv_zeroed, closed_chan(4, 0, 0)); }
static int e_try_recv_closed(void) { return with_chan(op_try_recv_zeroed, closed_chan(4, 2, 0)); }
static int e_recv_until_closed(void) { return with_chan(op_recv_until_zeroed, closed_chan(4, 0, 0)); }
static int e_drain_then_closed(void) { return with_chan(op_drain_then_closed, closed_chan(4, 3, 2)); }
static int e_try_send_full(void) { return with_chan(op_try_send, full_chan()); }
static int e_try_send_unbuffered(void) { return with_chan(op_try_send, csp_chan_make(4, 0)); }
static int e_try_recv_empty(void) { return with_chan(op_try_recv, csp_chan_make(4, 3)); }
static int e_try_recv_unbuffered(void) { return with_chan(op_try_recv, csp_chan_make(4, 0)); }
static int e_send_until_nowait(void) { return with_chan(op_send_until_nowait, full_chan()); }
static int e_send_until_past(void) { return with_chan(op_send_until_past, full_chan()); }
static int e_send_until_soon(void) { return with_chan(op_send_until, full_chan()); }
static int e_recv_until_nowait(void) { return with_chan(op_recv_until_nowait, csp_chan_make(4, 1)); }
static int e_recv_until_past(void) { return with_chan(op_recv_until_past, csp_chan_make(4, 1)); }
static int e_recv_until_soon(void) { return with_chan(op_recv_until_soon, csp_chan_make(4, 0)); }
static int e_zero_size_null_elem(void) { return with_chan(op_zero_size_null_elem, csp_chan_make(0, 1)); }

/* ---- select ----------------------------------------------------------------- */

static int e_select_null_cases(void) { return csp_select(NULL, 2, CSP_NOWAIT); }
static int e_select_null_cases_forever(void) { return csp_select(NULL, 1, CSP_FOREVER); }
static int select_bad_op(int op)
{
    csp_chan *c = full_chan();
    int v = 0;
    csp_case cs[2] = { CSP_RECV(c, &v), CSP_RECV(c, &v) };
    cs[1].op = op;
    int r = csp_select(cs, 2, CSP_NOWAIT);
    /* Nothing happened: the value is still buffered, v untouched. */
    if (csp_chan_len(c) != 1 || v != 0)
        r = BAD;
    csp_chan_release(c);
    return r;
}
static int e_select_op0(void) { return select_bad_op(0); }
static int e_select_op5(void) { return select_bad_op(5); }
static int e_select_op_neg(void) { return select_bad_op(-1); }
static int e_select_n0_nowait(void) { return csp_select(NULL, 0, CSP_NOWAIT); }
static int e_select_n0_past(void) { return csp_select(NULL, 0, 1); }
static int e_select_n0_soon(void) { return csp_select(NULL, 0, csp_deadline(2 * MS)); }
static int e_select_nil_chans(void)
{
    int v;
    csp_case cs[2] = { CSP_RECV(NULL, &v), CSP_SEND(NULL, &v) };
    return csp_select(cs, 2, CSP_NOWAIT);
}
static int e_select_nil_chans_soon(void)
{
    int v;
    csp_case cs[2] = { CSP_RECV(NULL, &v), CSP_SEND(NULL, &v) };
    return csp_select(cs, 2, csp_deadline(2 * MS));
}
static int e_select_negative_fd(void)
{
    csp_case cs[2] = { CSP_READABLE(-1), CSP_WRITABLE(-1) };
    return csp_select(cs, 2, CSP_NOWAIT);
}
static int e_select_closed_recv(void)
{
    csp_chan *c = closed_chan(4, 0, 0);
    int v = 9;
    csp_case cs[1] = { CSP_RECV(c, &v) };
    int r = csp_select(cs, 1, CSP_NOWAIT);
    r = r == 0 && v == 0 ? cs[0].err : BAD;
    csp_chan_release(c);
    return r;
}
static int e_select_closed_send(void)
{
    csp_chan *c = closed_chan(4, 0, 0);
    int v = 9;
    csp_case cs[1] = { CSP_SEND(c, &v) };
    int r = csp_select(cs, 1, CSP_FOREVER);
    r = r == 0 ? cs[0].err : BAD;
    csp_chan_release(c);
    return r;
}

/* ---- I/O --------------------------------------------------------------------- */

static int e_fd_wait_neg(void) { return csp_fd_wait(-1, CSP_IO_READ, CSP_NOWAIT); }
static int e_fd_wait_closed(void) { return csp_fd_wait(closed_fd(), CSP_IO_READ, CSP_NOWAIT); }
static int fd_wait_pipe(int events, int64_t deadline)
{
    int p[2];
    if (pipe(p) != 0)
        return BAD;
    int r = csp_fd_wait(p[0], events, deadline);
    close(p[0]);
    close(p[1]);
    return r;
}
static int e_fd_wait_events0(void) { return fd_wait_pipe(0, CSP_NOWAIT); }
static int e_fd_wait_events_unknown(void) { return fd_wait_pipe(8, CSP_NOWAIT); }
static int e_fd_wait_events_mixed(void) { return fd_wait_pipe(CSP_IO_READ | 16, CSP_NOWAIT); }
static int e_fd_wait_nowait(void) { return fd_wait_pipe(CSP_IO_READ, CSP_NOWAIT); }
static int e_fd_wait_past(void) { return fd_wait_pipe(CSP_IO_READ, 1); }
static int e_fd_wait_soon(void) { return fd_wait_pipe(CSP_IO_READ, csp_deadline(2 * MS)); }
static int e_fd_close_neg(void) { return csp_fd_close(-1); }
static int e_fd_close_closed(void) { return csp_fd_close(closed_fd()); }
static int e_read_neg(void) { char b; return posix(csp_read(-1, &b, 1, CSP_NOWAIT)); }
static int e_write_neg(void) { return posix(csp_write(-1, "x", 1, CSP_NOWAIT)); }
static int e_accept_neg(void) { return posix(csp_accept(-1, NULL, NULL, CSP_NOWAIT)); }
static int e_connect_neg(void)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    return posix(csp_connect(-1, (struct sockaddr *)&ss, sizeof ss, CSP_NOWAIT));
}
static int read_pipe(int64_t deadline)
{
    int p[2];
    if (pipe(p) != 0)
        return BAD;
    char b;
    int r = posix(csp_read(p[0], &b, 1, deadline));
    close(p[0]);
    close(p[1]);
    return r;
}
static int e_read_nowait(void) { return read_pipe(CSP_NOWAIT); }
static int e_read_past(void) { return read_pipe(1); }
static int e_read_soon(void) { return read_pipe(csp_deadline(2 * MS)); }
static int e_write_closed_peer(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return BAD;
    close(sv[1]);
    /* A socket never raises SIGPIPE here: the call fails with EPIPE. */
    int r = posix(csp_write(sv[0], "hello", 5, csp_deadline(100 * MS)));
    close(sv[0]);
    return r;
}

/* ---- contexts ------------------------------------------------------------- */

static int e_ctx_cancel_null_parent(void) { return ctor(csp_ctx_with_cancel(NULL)); }
static int e_ctx_deadline_null_parent(void) { return ctor(csp_ctx_with_deadline(NULL, csp_deadline(MS))); }
static int e_ctx_timeout_null_parent(void) { return ctor(csp_ctx_with_timeout(NULL, MS)); }
static int e_ctx_null_noops(void)
{
    csp_ctx_cancel(NULL);
    csp_ctx_release(NULL);
    if (csp_ctx_retain(NULL) != NULL)
        return BAD;
    return csp_ctx_err(NULL);
}
static int e_ctx_background_noops(void)
{
    csp_ctx *bg = csp_ctx_background();
    if (!bg)
        return BAD;
    csp_ctx_cancel(bg);
    csp_ctx_release(bg);
    csp_ctx_release(bg);
    if (csp_ctx_retain(bg) != bg || csp_ctx_deadline(bg) != CSP_FOREVER)
        return BAD;
    csp_case cs[1] = { CSP_RECV(csp_ctx_done(bg), NULL) };
    if (csp_select(cs, 1, CSP_NOWAIT) != -EAGAIN)
        return BAD;
    return csp_ctx_err(bg);
}

/* ---- dump -------------------------------------------------------------------- */

static int e_dump_neg(void) { return csp_dump(-1); }
static int e_dump_closed(void) { return csp_dump(closed_fd()); }
static int e_dump_readonly(void)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
        return BAD;
    int r = csp_dump(fd);
    close(fd);
    return r;
}

/* ---- timers -------------------------------------------------------------------- */

static int e_tick_zero(void) { return ctor(csp_tick(0)); }
static int e_tick_neg(void) { return ctor(csp_tick(-MS)); }
static int e_tick_stop_null(void) { return csp_tick_stop(NULL); }
static int e_tick_stop_plain(void) { return with_chan(csp_tick_stop, csp_chan_make(sizeof(int64_t), 1)); }
static int e_tick_stop_after(void)
{
    csp_chan *c = csp_after(MS);
    if (!c)
        return BAD;
    int r = csp_tick_stop(c);   /* not a ticker */
    csp_chan_release(c);
    return r;
}

/* ---- sync ---------------------------------------------------------------------- */

static int e_mutex_lock_null(void) { return csp_mutex_lock(NULL); }
static int e_mutex_trylock_null(void) { return csp_mutex_trylock(NULL); }
static int e_mutex_unlock_null(void) { return csp_mutex_unlock(NULL); }
static int e_rd_lock_null(void) { return csp_rwlock_rdlock(NULL); }
static int e_rd_trylock_null(void) { return csp_rwlock_tryrdlock(NULL); }
static int e_rd_unlock_null(void) { return csp_rwlock_rdunlock(NULL); }
static int e_wr_lock_null(void) { return csp_rwlock_wrlock(NULL); }
static int e_wr_trylock_null(void) { return csp_rwlock_trywrlock(NULL); }
static int e_wr_unlock_null(void) { return csp_rwlock_wrunlock(NULL); }
static int e_wg_wait_null(void) { return csp_wg_wait(NULL); }
static int e_once_null(void) { return csp_once_do(NULL, nop, NULL); }
static int e_once_null_fn(void) { csp_once o = CSP_ONCE_INIT; return csp_once_do(&o, NULL, NULL); }
static int e_mutex_trylock_held(void)
{
    csp_mutex m = CSP_MUTEX_INIT;
    csp_mutex_lock(&m);
    return csp_mutex_trylock(&m);
}
static int e_mutex_unlock_unlocked(void) { csp_mutex m = CSP_MUTEX_INIT; return csp_mutex_unlock(&m); }
static int e_mutex_unlock_twice(void)
{
    csp_mutex m = CSP_MUTEX_INIT;
    csp_mutex_lock(&m);
    csp_mutex_unlock(&m);
    return csp_mutex_unlock(&m);
}
static int e_tryrd_under_writer(void)
{
    csp_rwlock l = CSP_RWLOCK_INIT;
    csp_rwlock_wrlock(&l);
    return csp_rwlock_tryrdlock(&l);
}
static int e_trywr_under_reader(void)
{
    csp_rwlock l = CSP_RWLOCK_INIT;
    csp_rwlock_rdlock(&l);
    return csp_rwlock_trywrlock(&l);
}
static int e_trywr_under_writer(void)
{
    csp_rwlock l = CSP_RWLOCK_INIT;
    csp_rwlock_wrlock(&l);
    return csp_rwlock_trywrlock(&l);
}
static int e_rdunlock_unlocked(void) { csp_rwlock l = CSP_RWLOCK_INIT; return csp_rwlock_rdunlock(&l); }
static int e_wrunlock_unlocked(void) { csp_rwlock l = CSP_RWLOCK_INIT; return csp_rwlock_wrunlock(&l); }
static int e_rdunlock_twice(void)
{
    csp_rwlock l = CSP_RWLOCK_INIT;
    csp_rwlock_rdlock(&l);
    csp_rwlock_rdunlock(&l);
    return csp_rwlock_rdunlock(&l);
}
static int e_wrunlock_twice(void)
{
    csp_rwlock l = CSP_RWLOCK_INIT;
    csp_rwlock_wrlock(&l);
    csp_rwlock_wrunlock(&l);
    return csp_rwlock_wrunlock(&l);
}

/* ---- the table ------------------------------------------------------------------- */

struct row {
    const char *what;
    int (*fn)(void);
    int want, alt;          /* alt: a second acceptable result, or 0 */
};

#define ROW(fn, want, what) { what, fn, want, 0 }
#define ROW2(fn, want, alt, what) { what, fn, want, alt }

static const struct row rows[] = {
    ROW(e_start_guard2, EINVAL, "csp_start guard_pages=2"),
    ROW(e_start_guard_neg, EINVAL, "csp_start guard_pages=-1"),
    ROW(e_start_twice, EBUSY, "csp_start twice"),
    ROW(e_start_twice_cfg, EBUSY, "csp_start twice with configs"),
    ROW(e_go_null, EINVAL, "csp_go fn NULL"),
    ROW(e_go_copy_null_fn, EINVAL, "csp_go_copy fn NULL"),
    ROW(e_go_copy_null_env, EINVAL, "csp_go_copy env NULL, size 8"),
    ROW(e_sleep_neg, EINVAL, "csp_sleep(-1)"),
    ROW(e_run_null, EINVAL, "csp_run(NULL)"),
    ROW(e_run_in_task, EINVAL, "csp_run from a task"),
    ROW(e_stop_in_task, EDEADLK, "csp_stop from a task"),
    ROW(e_stop_not_running, 0, "csp_stop without a runtime"),
    ROW(e_deadline_forever, 0, "csp_deadline(CSP_FOREVER) stays CSP_FOREVER"),
    ROW(e_deadline_saturates, 0, "csp_deadline saturates at INT64_MAX"),
    ROW(e_use_after_restart, 0, "a channel and csp_go after csp_stop and restart"),

    ROW2(e_make_huge_cap, EINVAL, ENOMEM, "csp_chan_make cap SIZE_MAX"),
    ROW2(e_make_overflow, EINVAL, ENOMEM, "csp_chan_make size*cap overflows"),
    ROW(e_send_null, EINVAL, "csp_send NULL channel"),
    ROW(e_recv_null, EINVAL, "csp_recv NULL channel"),
    ROW(e_try_send_null, EINVAL, "csp_try_send NULL channel"),
    ROW(e_try_recv_null, EINVAL, "csp_try_recv NULL channel"),
    ROW(e_send_until_null, EINVAL, "csp_send_until NULL channel"),
    ROW(e_recv_until_null, EINVAL, "csp_recv_until NULL channel"),
    ROW(e_close_null, EINVAL, "csp_close NULL"),
    ROW(e_send_nullelem, EINVAL, "csp_send elem NULL, elem_size 4"),
    ROW(e_recv_nullelem, EINVAL, "csp_recv elem NULL, elem_size 4"),
    ROW(e_try_send_nullelem, EINVAL, "csp_try_send elem NULL, elem_size 4"),
    ROW(e_try_recv_nullelem, EINVAL, "csp_try_recv elem NULL, elem_size 4"),
    ROW(e_send_until_nullelem, EINVAL, "csp_send_until elem NULL, elem_size 4"),
    ROW(e_recv_until_nullelem, EINVAL, "csp_recv_until elem NULL, elem_size 4"),
    ROW(e_zero_size_null_elem, 0, "elem_size 0: elem NULL is fine"),
    ROW(e_close_twice, EPIPE, "csp_close twice"),
    ROW(e_send_closed, EPIPE, "csp_send on a closed channel"),
    ROW(e_send_closed_buffered, EPIPE, "csp_send on a closed buffered channel with room"),
    ROW(e_try_send_closed, EPIPE, "csp_try_send on a closed channel"),
    ROW(e_try_send_closed_full, EPIPE, "csp_try_send on a closed full channel"),
    ROW(e_send_until_closed, EPIPE, "csp_send_until on a closed channel"),
    ROW(e_recv_closed, EPIPE, "csp_recv on a closed channel zero-fills"),
    ROW(e_try_recv_closed, EPIPE, "csp_try_recv on a closed drained channel"),
    ROW(e_recv_until_closed, EPIPE, "csp_recv_until on a closed channel"),
    ROW(e_drain_then_closed, EPIPE, "buffered values drain, then EPIPE"),
    ROW(e_try_send_full, EAGAIN, "csp_try_send on a full channel"),
    ROW(e_try_send_unbuffered, EAGAIN, "csp_try_send, unbuffered, no receiver"),
    ROW(e_try_recv_empty, EAGAIN, "csp_try_recv on an empty channel"),
    ROW(e_try_recv_unbuffered, EAGAIN, "csp_try_recv, unbuffered, no sender"),
    ROW(e_send_until_nowait, EAGAIN, "csp_send_until CSP_NOWAIT, full"),
    ROW(e_send_until_past, ETIMEDOUT, "csp_send_until past deadline, full"),
    ROW(e_send_until_soon, ETIMEDOUT, "csp_send_until 1 ms, full"),
    ROW(e_recv_until_nowait, EAGAIN, "csp_recv_until CSP_NOWAIT, empty"),
    ROW(e_recv_until_past, ETIMEDOUT, "csp_recv_until past deadline, empty"),
    ROW(e_recv_until_soon, ETIMEDOUT, "csp_recv_until 2 ms, unbuffered"),

    ROW(e_select_null_cases, -EINVAL, "csp_select cases NULL, n 2"),
    ROW(e_select_null_cases_forever, -EINVAL, "csp_select cases NULL, n 1, CSP_FOREVER"),
    ROW(e_select_op0, -EINVAL, "csp_select op 0 (nothing consumed)"),
    ROW(e_select_op5, -EINVAL, "csp_select op 5 (nothing consumed)"),
    ROW(e_select_op_neg, -EINVAL, "csp_select op -1 (nothing consumed)"),
    ROW(e_select_n0_nowait, -EAGAIN, "csp_select n 0, CSP_NOWAIT"),
    ROW(e_select_n0_past, -ETIMEDOUT, "csp_select n 0, past deadline"),
    ROW(e_select_n0_soon, -ETIMEDOUT, "csp_select n 0, 2 ms"),
    ROW(e_select_nil_chans, -EAGAIN, "csp_select NULL channels, CSP_NOWAIT"),
    ROW(e_select_nil_chans_soon, -ETIMEDOUT, "csp_select NULL channels, 2 ms"),
    ROW(e_select_negative_fd, -EAGAIN, "csp_select READABLE/WRITABLE fd -1"),
    ROW(e_select_closed_recv, EPIPE, "csp_select recv on closed: fires, err EPIPE"),
    ROW(e_select_closed_send, EPIPE, "csp_select send on closed: fires, err EPIPE"),

    ROW(e_fd_wait_neg, EBADF, "csp_fd_wait fd -1"),
    ROW(e_fd_wait_closed, EBADF, "csp_fd_wait closed fd"),
    ROW(e_fd_wait_events0, EINVAL, "csp_fd_wait events 0"),
    ROW(e_fd_wait_events_unknown, EINVAL, "csp_fd_wait events 8"),
    ROW(e_fd_wait_events_mixed, EINVAL, "csp_fd_wait events READ|16"),
    ROW(e_fd_wait_nowait, EAGAIN, "csp_fd_wait empty pipe, CSP_NOWAIT"),
    ROW(e_fd_wait_past, ETIMEDOUT, "csp_fd_wait empty pipe, past deadline"),
    ROW(e_fd_wait_soon, ETIMEDOUT, "csp_fd_wait empty pipe, 2 ms"),
    ROW(e_fd_close_neg, EBADF, "csp_fd_close -1"),
    ROW(e_fd_close_closed, EBADF, "csp_fd_close closed fd"),
    ROW(e_read_neg, EBADF, "csp_read fd -1"),
    ROW(e_write_neg, EBADF, "csp_write fd -1"),
    ROW(e_accept_neg, EBADF, "csp_accept fd -1"),
    ROW(e_connect_neg, EBADF, "csp_connect fd -1"),
    ROW(e_read_nowait, EAGAIN, "csp_read empty pipe, CSP_NOWAIT"),
    ROW(e_read_past, ETIMEDOUT, "csp_read empty pipe, past deadline"),
    ROW(e_read_soon, ETIMEDOUT, "csp_read empty pipe, 2 ms"),
    ROW(e_write_closed_peer, EPIPE, "csp_write to a socket whose peer closed"),

    ROW(e_ctx_cancel_null_parent, EINVAL, "csp_ctx_with_cancel(NULL)"),
    ROW(e_ctx_deadline_null_parent, EINVAL, "csp_ctx_with_deadline(NULL, ...)"),
    ROW(e_ctx_timeout_null_parent, EINVAL, "csp_ctx_with_timeout(NULL, ...)"),
    ROW(e_ctx_null_noops, 0, "csp_ctx_* on NULL are no-ops, err 0"),
    ROW(e_ctx_background_noops, 0, "background: cancel/retain/release no-ops"),

    ROW(e_dump_neg, EBADF, "csp_dump(-1)"),
    ROW(e_dump_closed, EBADF, "csp_dump(closed fd)"),
    ROW(e_dump_readonly, EBADF, "csp_dump(read-only fd)"),

    ROW(e_tick_zero, EINVAL, "csp_tick(0)"),
    ROW(e_tick_neg, EINVAL, "csp_tick(-1 ms)"),
    ROW(e_tick_stop_null, EINVAL, "csp_tick_stop(NULL)"),
    ROW(e_tick_stop_plain, EINVAL, "csp_tick_stop(plain channel)"),
    ROW(e_tick_stop_after, EINVAL, "csp_tick_stop(csp_after channel)"),

    ROW(e_mutex_lock_null, EINVAL, "csp_mutex_lock(NULL)"),
    ROW(e_mutex_trylock_null, EINVAL, "csp_mutex_trylock(NULL)"),
    ROW(e_mutex_unlock_null, EINVAL, "csp_mutex_unlock(NULL)"),
    ROW(e_rd_lock_null, EINVAL, "csp_rwlock_rdlock(NULL)"),
    ROW(e_rd_trylock_null, EINVAL, "csp_rwlock_tryrdlock(NULL)"),
    ROW(e_rd_unlock_null, EINVAL, "csp_rwlock_rdunlock(NULL)"),
    ROW(e_wr_lock_null, EINVAL, "csp_rwlock_wrlock(NULL)"),
    ROW(e_wr_trylock_null, EINVAL, "csp_rwlock_trywrlock(NULL)"),
    ROW(e_wr_unlock_null, EINVAL, "csp_rwlock_wrunlock(NULL)"),
    ROW(e_wg_wait_null, EINVAL, "csp_wg_wait(NULL)"),
    ROW(e_once_null, EINVAL, "csp_once_do(NULL, fn)"),
    ROW(e_once_null_fn, EINVAL, "csp_once_do(once, NULL)"),
    ROW(e_mutex_trylock_held, EBUSY, "csp_mutex_trylock on a held mutex"),
    ROW(e_mutex_unlock_unlocked, EPERM, "csp_mutex_unlock unlocked"),
    ROW(e_mutex_unlock_twice, EPERM, "csp_mutex_unlock twice"),
    ROW(e_tryrd_under_writer, EBUSY, "csp_rwlock_tryrdlock under a writer"),
    ROW(e_trywr_under_reader, EBUSY, "csp_rwlock_trywrlock under a reader"),
    ROW(e_trywr_under_writer, EBUSY, "csp_rwlock_trywrlock under a writer"),
    ROW(e_rdunlock_unlocked, EPERM, "csp_rwlock_rdunlock unlocked"),
    ROW(e_wrunlock_unlocked, EPERM, "csp_rwlock_wrunlock unlocked"),
    ROW(e_rdunlock_twice, EPERM, "csp_rwlock_rdunlock twice"),
    ROW(e_wrunlock_twice, EPERM, "csp_rwlock_wrunlock twice"),
};

#define NROWS ((int)(sizeof rows / sizeof rows[0]))

/* Row _i of the table: the call reports exactly the documented error
 * (from a plain thread: every function works from one). */
START_TEST(test_bad_input)
{
    const struct row *r = &rows[_i];
    errno = 0;
    int got = r->fn();
    ck_assert_msg(got == r->want || (r->alt && got == r->alt),
                  "%s: got %d (%s), want %d (%s)", r->what, got,
                  got > 0 && got < BAD ? strerror(got) : got < 0 ? strerror(-got) : "-",
                  r->want, r->want > 0 ? strerror(r->want) : r->want < 0 ? strerror(-r->want) : "0");
}
END_TEST

static void row_in_task(void *arg)
{
    const struct row *r = arg;
    int got = r->fn();
    ck_assert_msg(got == r->want || (r->alt && got == r->alt),
                  "%s (in a task): got %d, want %d", r->what, got, r->want);
}

/* The rows that need no runtime of their own, again from inside a task. */
START_TEST(test_bad_input_in_task)
{
    const struct row *r = &rows[_i];
    /* Rows that start, stop or run the runtime only make sense outside. */
    if (r->fn == e_start_guard2 || r->fn == e_start_guard_neg || r->fn == e_start_twice ||
        r->fn == e_start_twice_cfg || r->fn == e_run_in_task || r->fn == e_stop_in_task ||
        r->fn == e_stop_not_running || r->fn == e_use_after_restart)
        return;
    RUN_MAIN(row_in_task, (void *)r);
}
END_TEST

/* ---- misuse that aborts ---------------------------------------------------------- */

/* A WaitGroup counter below zero aborts (SIGABRT). */
START_TEST(test_wg_negative_aborts)
{
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    csp_wg_done(&wg);
}
END_TEST

static csp_chan *abandoned;

static void wait_on_abandoned(void *arg)
{
    (void)arg;
    int v;
    csp_recv(abandoned, &v);
}

/* Releasing the last reference of a channel somebody is blocked on is
 * reported and aborts (csp.h), rather than corrupting memory. */
START_TEST(test_release_with_waiter_aborts)
{
    abandoned = csp_chan_make(sizeof(int), 0);
    ck_assert_int_eq(csp_go(wait_on_abandoned, NULL), 0);
    csp_sleep(50 * MS);     /* let it park */
    csp_chan_release(abandoned);
    csp_sleep(1000 * MS);   /* not reached if it aborted */
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_bad_input, 0, NROWS);
    tcase_add_loop_test(tc, test_bad_input_in_task, 0, NROWS);
    suite_add_tcase(s, tc);

    TCase *ab = tcase_create("aborts");
    tcase_set_timeout(ab, 30);
    tcase_add_test_raise_signal(ab, test_wg_negative_aborts, SIGABRT);
    tcase_add_test_raise_signal(ab, test_release_with_waiter_aborts, SIGABRT);
    suite_add_tcase(s, ab);
    return s;
}

int main(void)
{
    return run_suite(errors_suite());
}
