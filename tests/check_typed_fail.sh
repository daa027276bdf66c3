#!/bin/sh
# check_typed_fail.sh - a typed channel used with the wrong element type
# must not compile.  tests/typed_fail.c holds one misuse per case; each
# must be rejected, by every C compiler at hand with incompatible pointer
# types made a hard error, and by every C++ compiler at hand, while case 0
# (the same file used correctly) compiles cleanly with the same flags, so
# the failures come from the misuse and nothing else.
# Exit: 0 pass, 1 fail, 77 skip (no compiler).

. ./tests/docs-env.sh || exit 99
src=$srcdir/tests/typed_fail.c
inc=$srcdir/include
tmp=${TMPDIR:-/tmp}/csp-typed-fail.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

ncases=6
fail=0
tested=0

have() { command -v "$1" >/dev/null 2>&1; }

# check LABEL PATTERN COMPILER-AND-FLAGS...
check() {
    label=$1 pattern=$2
    shift 2
    echo 'int x;' > "$tmp/probe.c"
    if ! "$@" -c "$tmp/probe.c" -o "$tmp/probe.o" >/dev/null 2>&1; then
        echo "SKIP: $label: compiler or flags not usable"
        return
    fi
    tested=$((tested + 1))
    if ! "$@" -I"$inc" -DTYPED_FAIL_CASE=0 -c "$src" -o "$tmp/ok.o" 2>"$tmp/err"; then
        echo "FAIL: $label: the correct control case does not compile:"
        cat "$tmp/err"
        fail=1
        return
    fi
    i=1
    while [ $i -le $ncases ]; do
        if "$@" -I"$inc" -DTYPED_FAIL_CASE=$i -c "$src" -o "$tmp/bad.o" 2>"$tmp/err"; then
            echo "FAIL: $label: case $i compiled but must not"
            fail=1
        elif ! grep -Ei "$pattern" "$tmp/err" >/dev/null; then
            echo "FAIL: $label: case $i was rejected for another reason:"
            cat "$tmp/err"
            fail=1
        else
            echo "ok: $label: case $i rejected: $(grep -Ei "$pattern" "$tmp/err" | head -n 1)"
        fi
        i=$((i + 1))
    done
}

cpat='incompatible.pointer.type'
xpat='cannot convert|cannot initiali[sz]e|invalid conversion|no known conversion|incompatible pointer'
cflags='-std=c11 -pedantic -Wall -Werror=incompatible-pointer-types'
# shellcheck disable=SC2086
check "\$CC ($CC)" "$cpat" $CC $cflags
for c in gcc clang; do
    have $c && check "$c" "$cpat" $c $cflags
done
for cxx in g++ clang++; do
    have $cxx && check "$cxx -x c++" "$xpat" $cxx -x c++ -pedantic -Wall
done

[ $tested -gt 0 ] || exit 77
exit $fail
