## examples/local.mk - example programs, built by `make`.
noinst_PROGRAMS += examples/sieve
examples_sieve_LDADD = $(LDADD_CSP)
include $(srcdir)/examples/io.mk
