## bench/io.mk - the I/O benchmarks (issue 8, "I/O that parks", section 3).
##   bench/echo_bench  TCP echo round trips over loopback, N = 1, 100 and
##                     10,000 connections (bench/peers/echo.go is its Go twin)
##   make bench-io     builds it (-O2, libcsp linked statically) and
##                     examples/httpd, and runs bench/compare-io: echo and
##                     HTTP (wrk) against Go, and memory per idle connection
## make check runs bench/echo_bench_quick: 10 connections for 0.2 s in one
## process, checking every echoed byte, never the speed.

EXTRA_PROGRAMS += bench/echo_bench
bench_echo_bench_SOURCES = bench/echo_bench.c
bench_echo_bench_CFLAGS = $(BENCH_OPT)
bench_echo_bench_LDFLAGS = $(BENCH_LINK)
bench_echo_bench_LDADD = $(LDADD_CSP)

check_PROGRAMS += bench/echo_bench_quick
TESTS += bench/echo_bench_quick
bench_echo_bench_quick_SOURCES = bench/echo_bench.c
bench_echo_bench_quick_CPPFLAGS = $(AM_CPPFLAGS) -DCSP_BENCH_QUICK
bench_echo_bench_quick_LDADD = $(LDADD_CSP)

CLEANFILES += bench/echo_bench$(EXEEXT)
EXTRA_DIST += bench/compare-io bench/peers/echo.go bench/peers/http.go

# Runs from the build directory; compare-io builds the Go peers itself.
# COMPARE_IO_ARGS passes options, e.g. make bench-io COMPARE_IO_ARGS="-n 1".
bench-io: bench/echo_bench$(EXEEXT) examples/httpd$(EXEEXT)
	@case " $(CFLAGS) " in *" -O0 "*|*" -O0"*) \
	  echo "bench-io: warning: libcsp was configured with CFLAGS='$(CFLAGS)'; configure with -O2 for real numbers" >&2;; esac
	bash $(srcdir)/bench/compare-io --bin-dir . $(COMPARE_IO_ARGS)

.PHONY: bench-io
