## tests/fuzz.mk - the libFuzzer target and `make fuzz` (issue 5).
## tests/fuzz/fuzz_chan.c interprets channel/select/close/go programs and
## checks them against a model.  make check runs it, built without
## libFuzzer, over the committed corpus and pseudo-random inputs;
## `make fuzz` fuzzes it with libFuzzer for FUZZ_SECONDS in a clang
## ASan+UBSan build of a copy of the distribution (in $(FUZZ_BUILD);
## FUZZ_CONFIGURE_ARGS=--enable-chaos for more interleavings); `make
## fuzz-merge` then adds the new inputs that reach new code to the source
## tree's corpus, to be committed.
check_PROGRAMS += tests/fuzz/fuzz_chan
tests_fuzz_fuzz_chan_SOURCES = tests/fuzz/fuzz_chan.c
tests_fuzz_fuzz_chan_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_STANDALONE
tests_fuzz_fuzz_chan_CFLAGS = $(AM_CFLAGS)
tests_fuzz_fuzz_chan_LDADD = $(LDADD_CSP)
TESTS += tests/fuzz/check_corpus.sh
EXTRA_DIST += tests/fuzz/check_corpus.sh tests/fuzz/run-fuzz.sh tests/fuzz/corpus
CLEANFILES += tests/fuzz/fuzz_chan-failure.bin

FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_BUILD = build-fuzz
FUZZ_CONFIGURE_ARGS =

fuzz: distdir
	$(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh fuzz $(distdir) $(FUZZ_BUILD) "$(FUZZ_CC)" "$(FUZZ_SECONDS)" \
	  $(FUZZ_CONFIGURE_ARGS)

fuzz-merge:
	$(SHELL) $(srcdir)/tests/fuzz/run-fuzz.sh merge $(srcdir)/tests/fuzz/corpus $(FUZZ_BUILD)

.PHONY: fuzz fuzz-merge
