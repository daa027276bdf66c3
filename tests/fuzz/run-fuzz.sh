#!/bin/sh
# run-fuzz.sh - the libFuzzer side of tests/fuzz/fuzz_chan.c (make fuzz,
# make fuzz-merge).
#
#   run-fuzz.sh fuzz DISTDIR BUILDDIR CC SECONDS [CONFIGURE-ARGS...]
#     Builds the distribution tree DISTDIR in BUILDDIR/obj as a static
#     library instrumented for libFuzzer, ASan and UBSan, links the fuzz
#     target against it and fuzzes for SECONDS seconds, starting from the
#     committed seeds.  New inputs go to the scratch corpus BUILDDIR/corpus,
#     which is kept across runs.  Exits non-zero, naming the saved input and
#     the commands that replay it, if libFuzzer finds a crash, a model
#     violation (an abort), a leak or a timeout.  CONFIGURE-ARGS go to
#     configure (--enable-chaos widens the interleavings explored).
#
#   run-fuzz.sh merge CORPUS BUILDDIR
#     Adds to CORPUS (the source tree's tests/fuzz/corpus) the inputs of
#     the scratch corpus that reach code the seeds do not (then commit them).
set -e
mode=$1

case $mode in
fuzz)
  distdir=$2 build=$3 cc=$4 seconds=$5
  shift 5
  # Fail early, and say why, where the compiler has no libFuzzer.
  probe=${TMPDIR:-/tmp}/run-fuzz-probe.$$
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$probe.c"
  if ! $cc -fsanitize=fuzzer,address "$probe.c" -o "$probe" >"$probe.log" 2>&1; then
    cat "$probe.log"
    rm -f "$probe" "$probe.c" "$probe.log"
    echo "run-fuzz: $cc cannot link -fsanitize=fuzzer (Debian: apt-get install clang libclang-rt-dev)" >&2
    exit 1
  fi
  rm -f "$probe" "$probe.c" "$probe.log"
  # The scratch corpus survives a rebuild.
  if test -d "$build/corpus"; then
    rm -rf "$build.corpus.keep"
    mv "$build/corpus" "$build.corpus.keep"
  fi
  rm -rf "$build"
  mkdir -p "$build"
  mv "$distdir" "$build/src"
  if test -d "$build.corpus.keep"; then
    mv "$build.corpus.keep" "$build/corpus"
  else
    mkdir "$build/corpus"
  fi
  cd "$build"
  top=$(pwd)
  mkdir obj artifacts
  cd obj
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  echo "run-fuzz: building libcsp for libFuzzer in $top/obj"
  ../src/configure -q --disable-shared CC="$cc" \
    CFLAGS="-O1 -g -fno-omit-frame-pointer $san -fsanitize=fuzzer-no-link" LDFLAGS="$san" "$@"
  make -s lib/libcsp.la >/dev/null
  # The flags configure settled on (-std=gnu11, -pthread) and its LIBS.
  cflags=$(sed -n 's/^CFLAGS = //p' Makefile)
  libs=$(sed -n 's/^LIBS = //p' Makefile)
  $cc $cflags -fsanitize=fuzzer -I../src/include ../src/tests/fuzz/fuzz_chan.c \
    lib/.libs/libcsp.a $libs -o fuzz_chan
  echo "run-fuzz: fuzzing for $seconds s (log: $top/fuzz.log)"
  set +e
  ./fuzz_chan -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$top/artifacts/" \
    "$top/corpus" ../src/tests/fuzz/corpus >"$top/fuzz.log" 2>&1
  rc=$?
  set -e
  found=$(ls "$top/artifacts")
  if test $rc = 0 && test -z "$found"; then
    grep -E '^(#[0-9]+[[:space:]]*DONE|stat::)' "$top/fuzz.log" || tail -n 5 "$top/fuzz.log"
    echo "run-fuzz: no crash, model violation, leak or timeout in $seconds s;" \
      "$(ls "$top/corpus" | wc -l) inputs in the scratch corpus $top/corpus"
    exit 0
  fi
  echo "==== the end of $top/fuzz.log"
  tail -n 150 "$top/fuzz.log"
  echo "===="
  echo "run-fuzz: FAILED (libFuzzer exit $rc)"
  for f in $found; do
    echo "run-fuzz: saved input: $top/artifacts/$f"
    echo "  replay with libFuzzer:   $top/obj/fuzz_chan $top/artifacts/$f"
    echo "  replay without it:       tests/fuzz/fuzz_chan $top/artifacts/$f  (in any build dir)"
    echo "  minimize it:             $top/obj/fuzz_chan -minimize_crash=1 -runs=2000 $top/artifacts/$f"
  done
  exit 1
  ;;
merge)
  corpus=$2 build=$3
  if ! test -x "$build/obj/fuzz_chan" || ! test -d "$build/corpus"; then
    echo "run-fuzz: no $build/obj/fuzz_chan or $build/corpus: run make fuzz first" >&2
    exit 1
  fi
  before=$(ls "$corpus" | wc -l)
  # Edges only (not hit counts), and the largest inputs first: each of
  # those reaches more, so fewer files cover the same code.
  rm -rf "$build/merge-large"
  mkdir "$build/merge-large"
  ls -S "$build/corpus" | head -n 100 | while read -r f; do
    cp "$build/corpus/$f" "$build/merge-large/"
  done
  for from in "$build/merge-large" "$build/corpus"; do
    "$build/obj/fuzz_chan" -merge=1 -use_counters=0 -timeout=10 -rss_limit_mb=2048 \
      "$corpus" "$from" >>"$build/merge.log" 2>&1 || { tail -n 50 "$build/merge.log"; exit 1; }
  done
  rm -rf "$build/merge-large"
  echo "run-fuzz: $corpus: $before inputs, now $(ls "$corpus" | wc -l)" \
    "($(cat "$corpus"/* | wc -c) bytes); commit the new ones"
  ;;
*)
  echo "usage: run-fuzz.sh fuzz DISTDIR BUILDDIR CC SECONDS [CONFIGURE-ARGS...]" >&2
  echo "       run-fuzz.sh merge CORPUS BUILDDIR" >&2
  exit 2
  ;;
esac
