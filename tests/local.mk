## tests/local.mk - the Check suites run by `make check`.
## One suite per concept; stress suites are separate programs.  Each group
## of suites has its own fragment.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LDADD = $(LDADD_CSP) $(CHECK_LIBS)
EXTRA_DIST += tests/testutil.h tests/sanitized.h

include $(srcdir)/tests/chan.mk
include $(srcdir)/tests/sync.mk
include $(srcdir)/tests/io.mk
include $(srcdir)/tests/docs.mk
include $(srcdir)/tests/fuzz.mk
include $(srcdir)/tests/soak.mk

# Short scenarios for the slow paths; `make check-chaos` runs them under
# many chaos seeds (tests/chaos-loop.sh).
if HAVE_CHECK
check_PROGRAMS += tests/check_chaos
TESTS += tests/check_chaos
endif
tests_check_chaos_SOURCES = tests/check_chaos.c tests/testutil.h
tests_check_chaos_CFLAGS = $(TEST_CFLAGS)
tests_check_chaos_LDADD = $(TEST_LDADD)
EXTRA_DIST += tests/chaos-loop.sh

check_PROGRAMS += tests/check_version
TESTS += tests/check_version
tests_check_version_LDADD = $(LDADD_CSP)

# The allocation-failure walk.
check_PROGRAMS += tests/allocfail_helper
tests_allocfail_helper_LDADD = $(LDADD_CSP)
TESTS += tests/check_allocfail.sh
EXTRA_DIST += tests/check_allocfail.sh
