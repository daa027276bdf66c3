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

#endif
