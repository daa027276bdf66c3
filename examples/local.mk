## examples/local.mk - example programs, built by `make`.
## Each is also run by tests/check_examples.sh, which checks its output.
noinst_PROGRAMS += examples/sieve examples/pipeline examples/workers \
	examples/hashdir examples/ratelimit examples/pubsub
examples_sieve_LDADD = $(LDADD_CSP)
examples_pipeline_LDADD = $(LDADD_CSP)
examples_workers_LDADD = $(LDADD_CSP)
examples_hashdir_LDADD = $(LDADD_CSP)
examples_ratelimit_LDADD = $(LDADD_CSP)
examples_pubsub_LDADD = $(LDADD_CSP)
include $(srcdir)/examples/io.mk
