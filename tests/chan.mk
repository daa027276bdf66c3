## tests/chan.mk - channels, select, timers, Go channel-test ports, stress.
## stress_chan scales its iteration counts by $CSP_STRESS_SCALE (default 1)
## for soak runs, e.g. `CSP_STRESS_SCALE=50 tests/stress_chan`.
if HAVE_CHECK
check_PROGRAMS += tests/check_chan tests/check_select tests/check_timer \
	tests/check_goport_chan tests/stress_chan
TESTS += tests/check_chan tests/check_select tests/check_timer \
	tests/check_goport_chan tests/stress_chan
endif
tests_check_chan_SOURCES = tests/check_chan.c tests/testutil.h
tests_check_chan_CFLAGS = $(TEST_CFLAGS)
tests_check_chan_LDADD = $(TEST_LDADD)
tests_check_select_SOURCES = tests/check_select.c tests/testutil.h
tests_check_select_CFLAGS = $(TEST_CFLAGS)
tests_check_select_LDADD = $(TEST_LDADD)
tests_check_timer_SOURCES = tests/check_timer.c tests/testutil.h
tests_check_timer_CFLAGS = $(TEST_CFLAGS)
tests_check_timer_LDADD = $(TEST_LDADD)
tests_check_goport_chan_SOURCES = tests/check_goport_chan.c tests/testutil.h
tests_check_goport_chan_CFLAGS = $(TEST_CFLAGS)
tests_check_goport_chan_LDADD = $(TEST_LDADD)
tests_stress_chan_SOURCES = tests/stress_chan.c tests/testutil.h
tests_stress_chan_CFLAGS = $(TEST_CFLAGS)
tests_stress_chan_LDADD = $(TEST_LDADD)
