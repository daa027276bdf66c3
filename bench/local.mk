## bench/local.mk - the benchmark suite (issue 4).
##   bench/csp_bench  the workloads B1-B10 of the peer programs (Go,
##                    crossbeam, flume), same output lines
##   bench/micro      micro-benchmarks that explain them
##   make bench       builds both (-O2, libcsp linked statically) and runs them
##   make bench-instr instructions per operation (callgrind), no timing noise
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
EXTRA_DIST += bench/compare bench/compare-ctx bench/peers/context.go

bench: bench/csp_bench$(EXEEXT) bench/micro$(EXEEXT)
	@case " $(CFLAGS) " in *" -O0 "*|*" -O0"*) \
	  echo "bench: warning: libcsp was configured with CFLAGS='$(CFLAGS)'; configure with -O2 for real numbers" >&2;; esac
	bench/csp_bench$(EXEEXT)
	bench/micro$(EXEEXT)

.PHONY: bench

# Instructions per operation from callgrind, without timing noise: each
# benchmark runs at two sizes (one worker) and the difference of the
# instruction totals is divided by the difference of the operation counts,
# so start-up and set-up cancel out (select_ready* counts only its loop,
# not the filling of its channels).  sieve is counted per channel message.
BENCH_INSTR_MICRO = ctx_switch spawn_exit mutex_uncontended select_ready1 select_ready2 \
	select_ready4 select_ready8 try_send_full try_recv_empty try_recv_empty_unbuf \
	wake_handoff ctx_cancel
BENCH_INSTR_MAIN = B1 B2 B3 B4 B5 B6 B7 B8 B10
BENCH_INSTR_SCALES = 0.005 0.01

bench-instr: bench/csp_bench$(EXEEXT) bench/micro$(EXEEXT)
	@command -v valgrind >/dev/null || { echo "bench-instr: needs valgrind" >&2; exit 1; }
	@printf '%-22s %12s\n' benchmark instr/op; \
	for spec in $(BENCH_INSTR_MICRO:%=micro:%) $(BENCH_INSTR_MAIN:%=csp_bench:%); do \
	  prog=$${spec%%:*}; name=$${spec#*:}; ir1=; ops1=; \
	  case $$name in B7) scales="0.1 0.2";; *) scales="$(BENCH_INSTR_SCALES)";; esac; \
	  case $$name in select_ready*) only=--toggle-collect=select_loop;; *) only=;; esac; \
	  for s in $$scales; do \
	    out=`CSP_BENCH_SCALE=$$s valgrind --tool=callgrind --callgrind-out-file=/dev/null $$only \
	         bench/$$prog$(EXEEXT) --workers=1 $$name 2>&1` || { echo "$$out" >&2; exit 1; }; \
	    ir=`echo "$$out" | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'`; \
	    label=`echo "$$out" | sed -n 's/^\([a-z_0-9]*\) ns_per_op=.*/\1/p'`; \
	    ops=`echo "$$out" | sed -n 's/.* msgs=\([0-9]*\).*/\1/p'`; \
	    test -n "$$ops" || ops=`echo "$$out" | sed -n 's/.* ops=\([0-9]*\).*/\1/p'`; \
	    if test -n "$$ir1"; then \
	      awk -v n="$$label" -v a="$$ir1" -v b="$$ir" -v x="$$ops1" -v y="$$ops" \
	        'BEGIN { printf "%-22s %12.1f\n", n, (b - a) / (y - x) }'; \
	    fi; ir1=$$ir; ops1=$$ops; \
	  done; \
	done

.PHONY: bench-instr

include $(srcdir)/bench/io.mk
