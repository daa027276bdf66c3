## tests/docs.mk - documentation, typed channels, examples, install story.
## Included from tests/local.mk.

# The shell tests read the build's settings from this generated file (they
# run from the top build directory, where it lives).
tests/docs-env.sh: Makefile
	$(AM_V_GEN)$(MKDIR_P) tests && { \
	  echo "CC='$(CC)'"; \
	  echo "MAKE='$(MAKE)'"; \
	  echo "PKG_CONFIG='$(PKG_CONFIG)'"; \
	  echo "CFLAGS='$(CFLAGS)'"; \
	  echo "LDFLAGS='$(LDFLAGS)'"; \
	  echo "EXEEXT='$(EXEEXT)'"; \
	  echo "prefix='$(prefix)'"; \
	  echo "libdir='$(libdir)'"; \
	  echo "includedir='$(includedir)'"; \
	  echo "mandir='$(mandir)'"; \
	  echo "abs_top_builddir='$(abs_top_builddir)'"; \
	  echo "abs_top_srcdir='$(abs_top_srcdir)'"; \
	  echo ': "$${srcdir:=$(srcdir)}"'; \
	} > $@-t && mv $@-t $@
check_SCRIPTS += tests/docs-env.sh
CLEANFILES += tests/docs-env.sh tests/docs-env.sh-t

# Typed channels: the suite, the compile-fail test, the header check.
if HAVE_CHECK
check_PROGRAMS += tests/check_typed
TESTS += tests/check_typed
endif
tests_check_typed_SOURCES = tests/check_typed.c tests/testutil.h
tests_check_typed_CFLAGS = $(TEST_CFLAGS)
tests_check_typed_LDADD = $(TEST_LDADD)

TESTS += tests/check_typed_fail.sh tests/check_header.sh
EXTRA_DIST += tests/check_typed_fail.sh tests/check_header.sh tests/typed_fail.c

# Every example, run with its output checked.
TESTS += tests/check_examples.sh
EXTRA_DIST += tests/check_examples.sh

# The manual: lint-clean, complete, every function documented.
TESTS += tests/check_man.sh
EXTRA_DIST += tests/check_man.sh

# make install into a DESTDIR, then build and run an example against it
# with pkg-config alone.
TESTS += tests/check_install.sh
EXTRA_DIST += tests/check_install.sh
