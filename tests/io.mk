## tests/io.mk - netpoller, contexts, task dump.
if HAVE_CHECK
check_PROGRAMS += tests/check_netpoll tests/check_context tests/check_dump tests/stress_io
TESTS += tests/check_netpoll tests/check_context tests/check_dump tests/stress_io
endif
tests_check_netpoll_SOURCES = tests/check_netpoll.c tests/testutil.h
tests_check_netpoll_CFLAGS = $(TEST_CFLAGS)
tests_check_netpoll_LDADD = $(TEST_LDADD)
tests_check_context_SOURCES = tests/check_context.c tests/testutil.h
tests_check_context_CFLAGS = $(TEST_CFLAGS)
tests_check_context_LDADD = $(TEST_LDADD)
## The dump names entry functions through dladdr: export the test's own.
tests_check_dump_SOURCES = tests/check_dump.c tests/testutil.h
tests_check_dump_CFLAGS = $(TEST_CFLAGS)
tests_check_dump_LDADD = $(TEST_LDADD)
tests_check_dump_LDFLAGS = -export-dynamic
tests_stress_io_SOURCES = tests/stress_io.c tests/testutil.h
tests_stress_io_CFLAGS = $(TEST_CFLAGS)
tests_stress_io_LDADD = $(TEST_LDADD)

## The examples' self-tests (echo, httpd, timeout), built by `make`.
TESTS += tests/check_io_examples.sh
EXTRA_DIST += tests/check_io_examples.sh
