#!/bin/sh
# check_header.sh - <csp.h> (typed channel macros included) compiles
# without a single warning as ISO C11 with -pedantic under gcc and clang,
# and as C++ under g++ and clang++ (-x c++).  Compilers that are not
# installed are skipped; with none at all the test is skipped (77).

. ./tests/docs-env.sh || exit 99
inc=$srcdir/include
tmp=${TMPDIR:-/tmp}/csp-header.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

printf '#include <csp.h>\nint csp_header_only;\n' > "$tmp/bare.c"
# The control case of typed_fail.c instantiates and calls typed channels.
typed=$srcdir/tests/typed_fail.c

fail=0
tested=0
have() { command -v "$1" >/dev/null 2>&1; }

# try LABEL COMPILER-AND-FLAGS...
try() {
    label=$1
    shift
    tested=$((tested + 1))
    for f in "$tmp/bare.c" "$typed"; do
        if "$@" -I"$inc" -DTYPED_FAIL_CASE=0 -c "$f" -o "$tmp/out.o" 2>"$tmp/err"; then
            echo "ok: $label: $(basename "$f")"
        else
            echo "FAIL: $label: $(basename "$f"):"
            cat "$tmp/err"
            fail=1
        fi
    done
}

strict='-pedantic -Wall -Wextra -Werror'
# shellcheck disable=SC2086
try "\$CC ($CC) -std=c11" $CC -std=c11 $strict
for c in gcc clang; do
    have $c && try "$c -std=c11" $c -std=c11 $strict
done
for cxx in g++ clang++; do
    have $cxx && try "$cxx -x c++" $cxx -x c++ -std=c++11 $strict
done

[ $tested -gt 0 ] || exit 77
exit $fail
