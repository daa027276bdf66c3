## bench/local.mk - the benchmark suite (issue 4).
##   bench/csp_bench  the workloads B1-B10 of the peer programs (Go,
##                    crossbeam, flume), same output lines
##   bench/micro      micro-benchmarks that explain them
##   make bench       builds both (-O2, libcsp linked statically) and runs them
##   bench/compare    runs libcsp and the peers side by side (see BENCHMARKS.md)
## make check runs a tiny build of each (bench/*_quick): it checks that every
## workload computes the right result, never how fast.

BENCH_OPT = $(AM_CFLAGS) -O2
# -static: libtool links libcsp.a into the program (as the peers link their
# runtimes), so calls into the library do not go through the PLT.
BENCH_LINK = -static

EXTRA_PROGRAMS += bench/csp_bench bench/micro
bench_csp_bench_SOURCES = bench/csp_bench.c
bench_csp_bench_CFLAGS = $(BENCH_OPT)
bench_csp_bench_LDFLAGS = $(BENCH_LINK)
bench_csp_bench_LDADD = $(LDADD_CSP)
bench_micro_SOURCES = bench/micro.c
bench_micro_CFLAGS = $(BENCH_OPT)
bench_micro_LDFLAGS = $(BENCH_LINK)
bench_micro_LDADD = $(LDADD_CSP)

check_PROGRAMS += bench/csp_bench_quick bench/micro_quick
TESTS += bench/csp_bench_quick bench/micro_quick
bench_csp_bench_quick_SOURCES = bench/csp_bench.c
bench_csp_bench_quick_CPPFLAGS = $(AM_CPPFLAGS) -DCSP_BENCH_QUICK
bench_csp_bench_quick_LDADD = $(LDADD_CSP)
bench_micro_quick_SOURCES = bench/micro.c
bench_micro_quick_CPPFLAGS = $(AM_CPPFLAGS) -DCSP_BENCH_QUICK
bench_micro_quick_LDADD = $(LDADD_CSP)

CLEANFILES += bench/csp_bench$(EXEEXT) bench/micro$(EXEEXT)
EXTRA_DIST += bench/compare

bench: bench/csp_bench$(EXEEXT) bench/micro$(EXEEXT)
	@case " $(CFLAGS) " in *" -O0 "*|*" -O0"*) \
	  echo "bench: warning: libcsp was configured with CFLAGS='$(CFLAGS)'; configure with -O2 for real numbers" >&2;; esac
	bench/csp_bench$(EXEEXT)
	bench/micro$(EXEEXT)

.PHONY: bench
