/*
 * check_deadlock.c - csp_run's deadlock detection, both directions.
 *
 * Reported ("csp: all tasks are asleep - deadlock!" on stderr, then the
 * task dump, and EDEADLK): every task parked on a library object with no
 * timer, no I/O wait and no other thread that could wake one.  Never
 * reported while a plain thread (created before or during csp_run, even
 * one that has not called the library yet), a timer, an I/O wait or a
 * sleeping task can still make progress.
 *
 * Every scenario runs in the test's own process (Check forks one per test)
 * with stderr captured in a temporary file; a missed report shows as a
 * Check timeout.  (Not in a further forked child: under ThreadSanitizer a
 * grandchild of the runner carries two sanitizer threads, which the
 * library's thread count does not discount.)
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL
#define DEADLOCK_MSG "csp: all tasks are asleep - deadlock!"

/* Exit codes of a scenario child. */
enum { CX_OK = 0, CX_DEADLOCK = 10, CX_OTHER = 20, CX_BAD = 30 };

/* ---- helpers ------------------------------------------------------------- */

/* In a child: a failed expectation exits with CX_BAD and a message. */
#define EXPECT(x) do { \
        if (!(x)) { \
            fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__, __LINE__, #x); \
            _exit(CX_BAD); \
        } \
    } while (0)

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int run_result(int r)
{
    return r == EDEADLK ? CX_DEADLOCK : r == 0 ? CX_OK : CX_OTHER;
}

struct child_out {
    int result;             /* CX_* from the scenario */
    char err[16384];
};

/* Runs the scenario with stderr going to a temporary file. */
static void run_child(int (*fn)(void), struct child_out *o)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(tmp), 2), 2);
    o->result = fn();
    fflush(stderr);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(o->err, 1, sizeof o->err - 1, tmp);
    o->err[n] = 0;
    fclose(tmp);
}

static void expect_deadlock(int (*fn)(void))
{
    static struct child_out o;
    run_child(fn, &o);
    ck_assert_msg(o.result == CX_DEADLOCK, "result %d, not EDEADLK; stderr: %.500s",
                  o.result, o.err);
    ck_assert_msg(strstr(o.err, DEADLOCK_MSG) != NULL, "no deadlock message; stderr: %.500s",
                  o.err);
}

static void expect_no_deadlock(int (*fn)(void))
{
    static struct child_out o;
    run_child(fn, &o);
    ck_assert_msg(strstr(o.err, DEADLOCK_MSG) == NULL, "false deadlock report: %.500s", o.err);
    ck_assert_msg(o.result == CX_OK, "result %d; stderr: %.500s", o.result, o.err);
}

/* ---- reported -------------------------------------------------------------- */

static csp_chan *chan_a, *chan_b;

static void recv_forever_main(void *arg)
{
    (void)arg;
    int v;
    csp_recv(chan_a, &v);
    _exit(CX_BAD);           /* never returns */
}

static int child_recv_nobody_sends(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    return (run_result(csp_run(recv_forever_main, NULL)));
}

/* The main task receives on a channel nobody sends to: EDEADLK, the
 * message, and the dump names the parked receive. */
START_TEST(test_main_blocked_on_channel)
{
    static struct child_out o;
    run_child(child_recv_nobody_sends, &o);
    ck_assert_msg(o.result == CX_DEADLOCK, "result %d; stderr: %.500s", o.result, o.err);
    char *m = strstr(o.err, DEADLOCK_MSG);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strstr(m, "chan receive") != NULL, "dump after the message lacks "
                  "the parked receive: %.500s", o.err);
}
END_TEST

static csp_waitgroup cycle_wg;

static void cycle_a(void *arg)
{
    (void)arg;
    int v = 0;
    if (csp_recv(chan_a, &v) == 0)
        csp_send(chan_b, &v);
    csp_wg_done(&cycle_wg);
}

static void cycle_b(void *arg)
{
    (void)arg;
    int v = 0;
    if (csp_recv(chan_b, &v) == 0)
        csp_send(chan_a, &v);
    csp_wg_done(&cycle_wg);
}

static void cycle_main(void *arg)
{
    (void)arg;
    csp_wg_add(&cycle_wg, 2);
    csp_go(cycle_a, NULL);
    csp_go(cycle_b, NULL);
    csp_wg_wait(&cycle_wg);
}

static int child_cycle(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    chan_b = csp_chan_make(sizeof(int), 0);
    csp_config cfg = { 2, 0, 0 };
    EXPECT(csp_start(&cfg) == 0);
    return (run_result(csp_run(cycle_main, NULL)));
}

/* Two tasks each wait for the other (and main waits for both): EDEADLK. */
START_TEST(test_cycle)
{
    expect_deadlock(child_cycle);
}
END_TEST

static void empty_select_main(void *arg)
{
    (void)arg;
    csp_select(NULL, 0, CSP_FOREVER);
    _exit(CX_BAD);
}

static int child_empty_select(void)
{
    return (run_result(csp_run(empty_select_main, NULL)));
}

/* select {} (no cases, CSP_FOREVER) parks for good and is reported. */
START_TEST(test_empty_select)
{
    expect_deadlock(child_empty_select);
}
END_TEST

static csp_mutex held_mu;

static void lock_and_leave(void *arg)
{
    (void)arg;
    csp_mutex_lock(&held_mu);
}

static void mutex_forever_main(void *arg)
{
    (void)arg;
    csp_go(lock_and_leave, NULL);
    while (csp_mutex_trylock(&held_mu) == 0) {   /* until the task holds it */
        csp_mutex_unlock(&held_mu);
        csp_sleep(MS);
    }
    csp_mutex_lock(&held_mu);   /* held forever by a task that ended */
    _exit(CX_BAD);
}

static int child_mutex_forever(void)
{
    return (run_result(csp_run(mutex_forever_main, NULL)));
}

/* A mutex held forever (its holder ended) parks its waiter for good. */
START_TEST(test_mutex_held_forever)
{
    expect_deadlock(child_mutex_forever);
}
END_TEST

static csp_rwlock many_rw;
static csp_once many_once;
static csp_waitgroup many_wg;

static void park_rdlock(void *arg) { (void)arg; csp_rwlock_rdlock(&many_rw); }
static void park_send(void *arg) { (void)arg; int v = 1; csp_send(chan_b, &v); }
static void park_wg(void *arg) { (void)arg; csp_wg_wait(&many_wg); }
static void once_stuck(void *arg) { (void)arg; csp_recv(chan_a, NULL); }
static void park_once(void *arg) { (void)arg; csp_once_do(&many_once, once_stuck, NULL); }

static void many_main(void *arg)
{
    (void)arg;
    csp_wg_add(&many_wg, 1);
    csp_rwlock_wrlock(&many_rw);
    for (int i = 0; i < 100; i++) {
        csp_go(park_rdlock, NULL);
        csp_go(park_send, NULL);
        csp_go(park_wg, NULL);
        csp_go(park_once, NULL);
    }
    csp_sleep(20 * MS);
    csp_wg_wait(&many_wg);
}

static int child_many_kinds(void)
{
    chan_a = csp_chan_make(0, 0);
    chan_b = csp_chan_make(sizeof(int), 0);
    csp_config cfg = { 2, 0, 0 };
    EXPECT(csp_start(&cfg) == 0);
    return (run_result(csp_run(many_main, NULL)));
}

/* 400 tasks parked for good on an rwlock, a send, a waitgroup and a once
 * (whose fn waits on a channel), after a sleep ended: EDEADLK. */
START_TEST(test_many_parked_kinds)
{
    expect_deadlock(child_many_kinds);
}
END_TEST

static void after_timers_main(void *arg)
{
    (void)arg;
    csp_sleep(30 * MS);
    csp_chan *t = csp_after(10 * MS);
    int64_t when;
    EXPECT(csp_recv(t, &when) == 0);
    csp_chan_release(t);
    EXPECT(csp_recv_until(chan_a, NULL, csp_deadline(10 * MS)) == ETIMEDOUT);
    csp_recv(chan_a, NULL);     /* no timer left: for good */
    _exit(CX_BAD);
}

static int child_after_timers(void)
{
    chan_a = csp_chan_make(0, 0);
    return (run_result(csp_run(after_timers_main, NULL)));
}

/* Once the last timer has fired (sleep, after, a recv deadline), a task
 * parked for good is reported. */
START_TEST(test_reported_after_timers)
{
    expect_deadlock(child_after_timers);
}
END_TEST

static void *send_then_exit(void *arg)
{
    (void)arg;
    int v = 1;
    csp_send(chan_b, &v);       /* buffered: does not block */
    return NULL;
}

static void exited_thread_main(void *arg)
{
    (void)arg;
    int v;
    EXPECT(csp_recv(chan_b, &v) == 0);
    csp_recv(chan_a, &v);       /* the thread is gone: for good */
    _exit(CX_BAD);
}

static int child_exited_thread(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    chan_b = csp_chan_make(sizeof(int), 1);
    pthread_t th;
    EXPECT(pthread_create(&th, NULL, send_then_exit, NULL) == 0);
    EXPECT(pthread_join(th, NULL) == 0);
    return (run_result(csp_run(exited_thread_main, NULL)));
}

/* A plain thread that used the library before csp_run and has exited
 * cannot wake anyone: still reported. */
START_TEST(test_reported_after_thread_exit)
{
    expect_deadlock(child_exited_thread);
}
END_TEST

static void ok_main(void *arg)
{
    (void)arg;
    csp_chan *c = csp_chan_make(sizeof(int), 1);
    int v = 3;
    EXPECT(csp_send(c, &v) == 0 && csp_recv(c, &v) == 0 && v == 3);
    csp_chan_release(c);
}

static int child_restart_after_report(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    EXPECT(csp_run(recv_forever_main, NULL) == EDEADLK);
    /* The runtime is stopped and can run again; the abandoned task is
     * gone from the dump. */
    EXPECT(csp_run(ok_main, NULL) == 0);
    EXPECT(csp_run(recv_forever_main, NULL) == EDEADLK);
    return CX_OK;
}

/* After a report the runtime runs again: csp_run works, and a second
 * deadlock is reported again. */
START_TEST(test_run_again_after_report)
{
    static struct child_out o;
    run_child(child_restart_after_report, &o);
    ck_assert_msg(o.result == CX_OK, "result %d; stderr: %.500s", o.result, o.err);
    char *first = strstr(o.err, DEADLOCK_MSG);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(strstr(first + 1, DEADLOCK_MSG));
}
END_TEST

static void stop_blocked(void *arg)
{
    (void)arg;
    csp_recv(chan_a, NULL);
}

static int child_stop_deadlock(void)
{
    chan_a = csp_chan_make(0, 0);
    csp_config cfg = { 2, 0, 0 };
    EXPECT(csp_start(&cfg) == 0);
    EXPECT(csp_go(stop_blocked, NULL) == 0);
    return (run_result(csp_stop()));
}

/* csp_stop with a task that can never finish returns EDEADLK (csp.h) with
 * the report, rather than waiting forever. */
START_TEST(test_stop_reports_deadlock)
{
    expect_deadlock(child_stop_deadlock);
}
END_TEST

static void stop_in_task(void *arg)
{
    int *r = arg;
    *r = csp_stop();
}

/* csp_stop called from a task cannot wait for itself: EDEADLK at once. */
START_TEST(test_stop_from_task)
{
    int r = -1;
    RUN_MAIN(stop_in_task, &r);
    ck_assert_int_eq(r, EDEADLK);
}
END_TEST

/* ---- not reported ------------------------------------------------------------ */

static void *late_sender(void *arg)
{
    long ms = (long)(intptr_t)arg;
    sleep_ms(ms);               /* first library call comes late */
    int v = 42;
    EXPECT(csp_send(chan_a, &v) == 0);
    return NULL;
}

static void recv_42_main(void *arg)
{
    (void)arg;
    int v = 0;
    EXPECT(csp_recv(chan_a, &v) == 0 && v == 42);
}

static int child_thread_before_run(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    pthread_t th;
    EXPECT(pthread_create(&th, NULL, late_sender, (void *)(intptr_t)300) == 0);
    int r = csp_run(recv_42_main, NULL);
    EXPECT(pthread_join(th, NULL) == 0);
    return (run_result(r));
}

/* A plain thread created before csp_run, which makes its first library
 * call (a send) only after 300 ms, is waited for: no report. */
START_TEST(test_not_reported_thread_before_run)
{
    expect_no_deadlock(child_thread_before_run);
}
END_TEST

static pthread_t during_thread;

static void spawn_thread_main(void *arg)
{
    (void)arg;
    EXPECT(pthread_create(&during_thread, NULL, late_sender, (void *)(intptr_t)300) == 0);
    recv_42_main(NULL);
}

static int child_thread_during_run(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    int r = csp_run(spawn_thread_main, NULL);
    EXPECT(pthread_join(during_thread, NULL) == 0);
    return (run_result(r));
}

/* A plain thread created by a task during csp_run that sends after 300 ms:
 * no report. */
START_TEST(test_not_reported_thread_during_run)
{
    expect_no_deadlock(child_thread_during_run);
}
END_TEST

static csp_mutex late_mu;

static void *late_unlocker(void *arg)
{
    (void)arg;
    sleep_ms(300);
    EXPECT(csp_mutex_unlock(&late_mu) == 0);
    return NULL;
}

static void lock_late_main(void *arg)
{
    (void)arg;
    EXPECT(csp_mutex_lock(&late_mu) == 0);
    EXPECT(csp_mutex_unlock(&late_mu) == 0);
}

static int child_thread_unlocks_late(void)
{
    EXPECT(csp_mutex_lock(&late_mu) == 0);
    pthread_t th;
    EXPECT(pthread_create(&th, NULL, late_unlocker, NULL) == 0);
    int r = csp_run(lock_late_main, NULL);
    EXPECT(pthread_join(th, NULL) == 0);
    return (run_result(r));
}

/* A task parked on a mutex that a plain thread holds and will unlock
 * after 300 ms: no report. */
START_TEST(test_not_reported_mutex_thread)
{
    expect_no_deadlock(child_thread_unlocks_late);
}
END_TEST

static void timers_main(void *arg)
{
    (void)arg;
    EXPECT(csp_sleep(100 * MS) == 0);
    csp_chan *t = csp_after(100 * MS);
    int64_t when = 0;
    EXPECT(csp_recv(t, &when) == 0 && when > 0);
    csp_chan_release(t);
    EXPECT(csp_recv_until(chan_a, NULL, csp_deadline(100 * MS)) == ETIMEDOUT);
    EXPECT(csp_send_until(chan_a, NULL, csp_deadline(50 * MS)) == ETIMEDOUT);
    csp_case cs[1] = { CSP_RECV(chan_a, NULL) };
    EXPECT(csp_select(cs, 1, csp_deadline(50 * MS)) == -ETIMEDOUT);
    EXPECT(csp_select(NULL, 0, csp_deadline(50 * MS)) == -ETIMEDOUT);
    csp_chan *tk = csp_tick(20 * MS);
    EXPECT(csp_recv(tk, &when) == 0);
    EXPECT(csp_tick_stop(tk) == 0);
    csp_chan_release(tk);
}

static int child_timers(void)
{
    chan_a = csp_chan_make(0, 0);
    return (run_result(csp_run(timers_main, NULL)));
}

/* The only task waits on timers (sleep, after, recv/send deadlines,
 * select with a deadline, select {} with one, a ticker): no report. */
START_TEST(test_not_reported_timers)
{
    expect_no_deadlock(child_timers);
}
END_TEST

static void sleeper_sends(void *arg)
{
    (void)arg;
    csp_sleep(200 * MS);
    int v = 42;
    EXPECT(csp_send(chan_a, &v) == 0);
}

static void sleeping_task_main(void *arg)
{
    (void)arg;
    EXPECT(csp_go(sleeper_sends, NULL) == 0);
    recv_42_main(NULL);
}

static int child_sleeping_task(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    csp_config cfg = { 2, 0, 0 };
    EXPECT(csp_start(&cfg) == 0);
    return (run_result(csp_run(sleeping_task_main, NULL)));
}

/* main waits on a channel that a sleeping task will send on: no report. */
START_TEST(test_not_reported_sleeping_task)
{
    expect_no_deadlock(child_sleeping_task);
}
END_TEST

static int io_fds[2];

static void io_main(void *arg)
{
    (void)arg;
    char c = 0;
    EXPECT(csp_read(io_fds[0], &c, 1, CSP_FOREVER) == 1 && c == 'z');
}

static int child_io_wait(void)
{
    EXPECT(pipe(io_fds) == 0);
    pid_t pid = fork();         /* no threads yet: fine */
    EXPECT(pid >= 0);
    if (pid == 0) {
        sleep_ms(200);
        EXPECT(write(io_fds[1], "z", 1) == 1);
        _exit(0);
    }
    close(io_fds[1]);
    int r = csp_run(io_main, NULL);
    waitpid(pid, NULL, 0);
    return (run_result(r));
}

/* The only task waits for I/O (a pipe another process writes after
 * 200 ms): a pending I/O wait is not a deadlock. */
START_TEST(test_not_reported_io_wait)
{
    expect_no_deadlock(child_io_wait);
}
END_TEST

/* ---- reported after the poller woke a task ------------------------------------ */

static int io_pipe[2];

static void pipe_writer(void *arg)
{
    (void)arg;
    csp_sleep(20 * 1000000LL);
    char c = 'x';
    EXPECT(csp_write(io_pipe[1], &c, 1, CSP_FOREVER) == 1);
}

static void io_then_stuck_main(void *arg)
{
    (void)arg;
    EXPECT(csp_go(pipe_writer, NULL) == 0);
    char c;
    /* Parks until the poller sees the byte and wakes us. */
    EXPECT(csp_read(io_pipe[0], &c, 1, CSP_FOREVER) == 1);
    int v;
    csp_recv(chan_a, &v);       /* nobody sends: for good */
    _exit(CX_BAD);
}

static int child_io_then_stuck(void)
{
    chan_a = csp_chan_make(sizeof(int), 0);
    EXPECT(pipe(io_pipe) == 0);
    return (run_result(csp_run(io_then_stuck_main, NULL)));
}

/* A task woken by the poller (its descriptor became readable) is woken by
 * the library, not by an outside thread: once it then parks for good,
 * the deadlock is still reported. */
START_TEST(test_reported_after_io_wake)
{
    expect_deadlock(child_io_then_stuck);
}
END_TEST

static Suite *deadlock_suite(void)
{
    Suite *s = suite_create("deadlock");
    TCase *tc = tcase_create("reported");
    tcase_set_timeout(tc, 10);     /* a missed report is a timeout */
    tcase_add_test(tc, test_main_blocked_on_channel);
    tcase_add_test(tc, test_cycle);
    tcase_add_test(tc, test_empty_select);
    tcase_add_test(tc, test_mutex_held_forever);
    tcase_add_test(tc, test_many_parked_kinds);
    tcase_add_test(tc, test_reported_after_timers);
    tcase_add_test(tc, test_reported_after_thread_exit);
    tcase_add_test(tc, test_run_again_after_report);
    tcase_add_test(tc, test_stop_reports_deadlock);
    tcase_add_test(tc, test_stop_from_task);
    tcase_add_test(tc, test_reported_after_io_wake);
    suite_add_tcase(s, tc);

    TCase *no = tcase_create("not-reported");
    tcase_set_timeout(no, 60);
    tcase_add_test(no, test_not_reported_thread_before_run);
    tcase_add_test(no, test_not_reported_thread_during_run);
    tcase_add_test(no, test_not_reported_mutex_thread);
    tcase_add_test(no, test_not_reported_timers);
    tcase_add_test(no, test_not_reported_sleeping_task);
    tcase_add_test(no, test_not_reported_io_wait);
    suite_add_tcase(s, no);
    return s;
}

int main(void)
{
    return run_suite(deadlock_suite());
}
