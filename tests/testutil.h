/*
 * testutil.h - shared helpers for the Check suites.
 *
 * Every suite runs each test in a forked child (Check's default), so each
 * test starts its own runtime and a crash or hang fails only that test.
 */
#ifndef CSP_TESTUTIL_H
#define CSP_TESTUTIL_H

#include <check.h>
#include <csp.h>
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn(arg) as the main task of a fresh runtime and checks it ended
 * cleanly (no deadlock). */
#define RUN_MAIN(fn, arg) ck_assert_int_eq(csp_run((fn), (arg)), 0)

/* Runs the suite and exits with its result; CK_TIMEOUT_MULTIPLIER scales
 * timeouts for slow (sanitizer, emulated) runs. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Built with a sanitizer?  (SANITIZED: see sanitized.h.) */
#include "sanitized.h"

/* ---- tasks and plain threads, waited for together ----------------------- */

/* Runs fn as the main task (mode 0) or on this plain thread (mode 1). */
static inline void run_mode(void (*fn)(void *), int mode)
{
    if (mode == 0) {
        RUN_MAIN(fn, NULL);
    } else {
        fn(NULL);
        ck_assert_int_eq(csp_stop(), 0);
    }
}

/* A group of tasks and plain threads that can be waited for together. */
#define GROUP_MAX_THREADS 64
struct group {
    csp_waitgroup wg;
    pthread_t th[GROUP_MAX_THREADS];
    int nth;
};

struct tramp {
    void (*fn)(void *);
    void *arg;
    struct group *g;
};

static inline void task_tramp(void *p)
{
    struct tramp t = *(struct tramp *)p;
    t.fn(t.arg);
    csp_wg_done(&t.g->wg);
}

static inline void *thread_tramp(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    t.fn(t.arg);
    csp_wg_done(&t.g->wg);
    return NULL;
}

/* Starts fn(arg) as a task (thread == 0) or as a plain thread. */
static inline void group_go(struct group *g, int thread, void (*fn)(void *), void *arg)
{
    csp_wg_add(&g->wg, 1);
    struct tramp t = { fn, arg, g };
    if (!thread) {
        ck_assert_int_eq(csp_go_copy(task_tramp, &t, sizeof t), 0);
        return;
    }
    ck_assert_int_lt(g->nth, GROUP_MAX_THREADS);
    struct tramp *h = malloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    *h = t;
    ck_assert_int_eq(pthread_create(&g->th[g->nth++], NULL, thread_tramp, h), 0);
}

static inline void group_wait(struct group *g)
{
    ck_assert_int_eq(csp_wg_wait(&g->wg), 0);
    for (int i = 0; i < g->nth; i++)
        pthread_join(g->th[i], NULL);
    g->nth = 0;
}

/* ---- a child process with its stderr captured ---------------------------- */

/* Runs fn() in a forked child with its stderr captured into err (NUL-
 * terminated, truncated to errsz); returns the child's wait status. */
static inline int run_child_stderr(void (*fn)(void), char *err, size_t errsz)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        close(p[1]);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    for (;;) {
        char scratch[256];
        char *dst = n + 1 < errsz ? err + n : scratch;
        size_t room = n + 1 < errsz ? errsz - 1 - n : sizeof scratch;
        ssize_t k = read(p[0], dst, room);
        if (k <= 0)
            break;
        if (dst != scratch)
            n += (size_t)k;
    }
    err[n] = 0;
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

#endif
