#!/bin/sh
# sanitized-check.sh DISTDIR BUILDDIR CC CFLAGS LDFLAGS [CONFIGURE-ARGS...]
# Builds the distribution tree DISTDIR in BUILDDIR with the given compiler
# and flags and runs `make check` there.  On failure, prints the test logs.
set -e
distdir=$1 build=$2 cc=$3 cflags=$4 ldflags=$5
shift 5
rm -rf "$build"
mkdir -p "$build"
mv "$distdir" "$build/src"
cd "$build"
mkdir obj
cd obj
../src/configure -q --disable-shared CC="$cc" CFLAGS="$cflags" LDFLAGS="$ldflags" "$@"
if make check; then
  grep -h "Checks:" tests/*.log 2>/dev/null || true
else
  for f in tests/*.log; do echo "==== $f"; tail -n 60 "$f"; done
  exit 1
fi
