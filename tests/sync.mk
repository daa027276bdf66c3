## tests/sync.mk - sync primitives, tasks and scheduler, errors, deadlock.
if HAVE_CHECK
check_PROGRAMS += tests/check_sync tests/check_task tests/check_deadlock \
	tests/check_errors tests/stress_sync
TESTS += tests/check_sync tests/check_task tests/check_deadlock \
	tests/check_errors tests/stress_sync
endif
tests_check_sync_SOURCES = tests/check_sync.c tests/testutil.h
tests_check_sync_CFLAGS = $(TEST_CFLAGS)
tests_check_sync_LDADD = $(TEST_LDADD)
tests_check_task_SOURCES = tests/check_task.c tests/testutil.h
tests_check_task_CFLAGS = $(TEST_CFLAGS)
tests_check_task_LDADD = $(TEST_LDADD) -lm
tests_check_deadlock_SOURCES = tests/check_deadlock.c tests/testutil.h
tests_check_deadlock_CFLAGS = $(TEST_CFLAGS)
tests_check_deadlock_LDADD = $(TEST_LDADD)
tests_check_errors_SOURCES = tests/check_errors.c tests/testutil.h
tests_check_errors_CFLAGS = $(TEST_CFLAGS)
tests_check_errors_LDADD = $(TEST_LDADD)
tests_stress_sync_SOURCES = tests/stress_sync.c tests/testutil.h
tests_stress_sync_CFLAGS = $(TEST_CFLAGS)
tests_stress_sync_LDADD = $(TEST_LDADD)

# The shared library exports nothing but csp_* (skipped without it).
TESTS += tests/check_abi.sh
EXTRA_DIST += tests/check_abi.sh
