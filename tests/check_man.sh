#!/bin/sh
# check_man.sh - the manual pages are lint-clean and complete.
#   - every page under doc/ passes `mandoc -T lint` (warnings and worse),
#     or, without mandoc, `man --warnings -l`, or else `groff -ww`;
#   - every .so page points at a page that exists;
#   - every full section-3 page has the usual sections, an ERRORS section
#     and an example;
#   - every csp_* function declared in include/csp.h has a page, so that
#     `man <function>` works once installed.
# Skipped (77) when no formatter is installed; nothing is installed here.

: "${srcdir:=.}"
doc=$srcdir/doc
hdr=$srcdir/include/csp.h
tmp=${TMPDIR:-/tmp}/csp-man.$$
mkdir -p "$tmp" || exit 99
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# CSP_MAN_LINT=mandoc|man|groff forces one tool.
if [ -n "$CSP_MAN_LINT" ]; then
    tool=$CSP_MAN_LINT
elif command -v mandoc >/dev/null 2>&1; then
    tool=mandoc
elif command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- --warnings; then
    tool=man
elif command -v groff >/dev/null 2>&1; then
    tool=groff
else
    echo "SKIP: neither mandoc, man-db nor groff is installed"
    exit 77
fi
echo "linting with $tool"

fail=0
pages=$(cd "$doc" && ls man3/*.3 man7/*.7) || exit 99
for p in $pages; do
    first=$(sed -n 1p "$doc/$p")
    case $first in
    .so\ *)
        target=${first#.so }
        if [ ! -f "$doc/$target" ]; then
            echo "FAIL: $p: .so target $target does not exist"
            fail=1
        fi
        continue ;;
    esac
    # Lint from doc/ so that .so requests resolve as they will once installed.
    case $tool in
    mandoc) (cd "$doc" && mandoc -T lint -W warning "$p") >"$tmp/lint" 2>&1 ;;
    man) (cd "$doc" && MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$p") \
            2>"$tmp/lint" >/dev/null ;;
    groff) (cd "$doc" && groff -s -t -man -ww -z "$p") >"$tmp/lint" 2>&1 ;;
    esac
    if [ -s "$tmp/lint" ]; then
        echo "FAIL: $p:"
        cat "$tmp/lint"
        fail=1
    fi
    case $p in
    man3/*) need="NAME SYNOPSIS DESCRIPTION RETURN.VALUE ERRORS EXAMPLES SEE.ALSO" ;;
    *) need="NAME SYNOPSIS DESCRIPTION EXAMPLES SEE.ALSO" ;;
    esac
    for s in $need; do
        if ! grep -q "^\.SH $s\$" "$doc/$p" && ! grep -q "^\.SH \"$s\"\$" "$doc/$p"; then
            echo "FAIL: $p: no $s section"
            fail=1
        fi
    done
    grep -q '^\.EX' "$doc/$p" || { echo "FAIL: $p: no example (.EX)"; fail=1; }
done

# Every function of the header has a page of its own name.
funcs=$(grep -o 'csp_[a-z_0-9]*(' "$hdr" | tr -d '(' | sort -u)
[ -n "$funcs" ] || { echo "FAIL: no functions found in $hdr"; exit 1; }
for f in $funcs; do
    if [ ! -f "$doc/man3/$f.3" ]; then
        echo "FAIL: $f is declared in csp.h but has no page doc/man3/$f.3"
        fail=1
    fi
done

# And every page is in the distribution and installed (doc/local.mk).
for p in $pages; do
    grep -q "doc/$p\\b" "$doc/local.mk" || { echo "FAIL: $p is not listed in doc/local.mk"; fail=1; }
done

[ $fail -eq 0 ] && echo "ok: $(echo $pages | wc -w) pages"
exit $fail
