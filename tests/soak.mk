## tests/soak.mk - the long mixed workload behind `make soak` (issue 5).
##   make soak                  runs tests/soak for $SOAK_SECONDS (default 600)
##   SOAK_SECONDS=120 make soak a bounded run (CI)
## tests/soak is a plain program (no Check), so it builds everywhere;
## make check runs it for 3 s through tests/soak-smoke.sh so that it
## never rots.  Its figures on a reference machine are in tests/README.
check_PROGRAMS += tests/soak
tests_soak_SOURCES = tests/soak.c
tests_soak_LDADD = $(LDADD_CSP)

TESTS += tests/soak-smoke.sh
EXTRA_DIST += tests/soak-smoke.sh tests/README

soak: tests/soak$(EXEEXT)
	tests/soak$(EXEEXT)

.PHONY: soak
