#!/bin/sh
# check_install.sh - the install story: `make install DESTDIR=<tmp>` puts
# the header, the libraries, csp.pc and the manual in place, and a program
# (examples/sieve.c) builds against that installed copy using nothing but
# `pkg-config --cflags --libs csp`, then runs.
#
# The build's own CFLAGS and LDFLAGS are passed along (a sanitizer build
# must link its programs with the sanitizer), but no -I or -L: those come
# from pkg-config alone, which is pointed into DESTDIR with
# PKG_CONFIG_LIBDIR (so no system copy is found) and PKG_CONFIG_SYSROOT_DIR
# (so the paths in csp.pc get the DESTDIR prefix).
# Skipped (77) without pkg-config.

. ./tests/docs-env.sh || exit 99
: "${PKG_CONFIG:=pkg-config}"
if ! command -v "${PKG_CONFIG%% *}" >/dev/null 2>&1; then
    echo "SKIP: no pkg-config"
    exit 77
fi
tmp=$abs_top_builddir/tests/install-check.$$
dest=$tmp/dest
mkdir -p "$tmp" || exit 99
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT HUP INT TERM
fail=0

# ---- make install into DESTDIR -------------------------------------------------
# A fresh make: the jobserver of the make that runs the tests is not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL
if ! (cd "$abs_top_builddir" && $MAKE install DESTDIR="$dest") >"$tmp/install.log" 2>&1; then
    echo "FAIL: make install DESTDIR=$dest"
    tail -n 30 "$tmp/install.log"
    exit 1
fi
echo "ok: make install DESTDIR=..."

# ---- what must be there --------------------------------------------------------
check_file() {
    if [ -f "$1" ]; then
        echo "ok: installed ${1#"$dest"}"
    else
        echo "FAIL: not installed: ${1#"$dest"}"
        fail=1
    fi
}
check_file "$dest$includedir/csp.h"
check_file "$dest$libdir/pkgconfig/csp.pc"
check_file "$dest$mandir/man7/csp.7"
for p in csp_select csp_send csp_recv csp_chan_make csp_go csp_run csp_after \
         csp_waitgroup csp_mutex csp_rwlock csp_once csp_read csp_ctx csp_dump \
         CSP_CHAN_TYPE; do
    check_file "$dest$mandir/man3/$p.3"
done
if ls "$dest$libdir"/libcsp.so* >/dev/null 2>&1 || ls "$dest$libdir"/libcsp*.dylib >/dev/null 2>&1; then
    echo "ok: shared library installed"
    shared=yes
else
    echo "note: no shared library installed (--disable-shared?)"
    shared=no
fi
if [ -f "$dest$libdir/libcsp.a" ]; then
    echo "ok: static library installed"
elif [ $shared = no ]; then
    echo "FAIL: neither a shared nor a static library was installed"
    fail=1
fi

# `man csp_select` finds the installed page (when man-db is here).
if command -v man >/dev/null 2>&1; then
    if found=$(man -M "$dest$mandir" -w csp_recv 2>/dev/null) && [ -n "$found" ]; then
        echo "ok: man -w csp_recv -> ${found#"$dest"}"
    else
        echo "FAIL: man -M ... -w csp_recv finds nothing"
        fail=1
    fi
fi

# ---- build sieve.c against the installed copy ----------------------------------
PKG_CONFIG_LIBDIR=$dest$libdir/pkgconfig
PKG_CONFIG_PATH=
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
if ! flags=$($PKG_CONFIG --cflags --libs csp); then
    echo "FAIL: pkg-config --cflags --libs csp"
    exit 1
fi
echo "ok: pkg-config --cflags --libs csp: $flags"
case $flags in
*"$dest"*) ;;
*) echo "FAIL: the flags do not point into DESTDIR"; fail=1 ;;
esac
version=$($PKG_CONFIG --modversion csp)
echo "ok: pkg-config --modversion csp: $version"

# shellcheck disable=SC2086
if ! $CC $CFLAGS -o "$tmp/sieve$EXEEXT" "$srcdir/examples/sieve.c" $flags $LDFLAGS \
        >"$tmp/cc.log" 2>&1; then
    echo "FAIL: cannot build examples/sieve.c with: $CC $CFLAGS ... $flags $LDFLAGS"
    cat "$tmp/cc.log"
    exit 1
fi
echo "ok: built examples/sieve.c against the installed copy"

# Run it on the installed library only (the build tree's is not on any path).
LD_LIBRARY_PATH=$dest$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
DYLD_LIBRARY_PATH=$dest$libdir
export LD_LIBRARY_PATH DYLD_LIBRARY_PATH
out=$("$tmp/sieve$EXEEXT" 10 | tr '\n' ' ')
if [ "$out" = "2 3 5 7 11 13 17 19 23 29 " ]; then
    echo "ok: the installed sieve prints the first 10 primes"
else
    echo "FAIL: the installed sieve printed: $out"
    fail=1
fi
if command -v ldd >/dev/null 2>&1 && [ $shared = yes ]; then
    if ldd "$tmp/sieve$EXEEXT" | grep libcsp | grep -q "$dest"; then
        echo "ok: it ran against $(ldd "$tmp/sieve$EXEEXT" | grep libcsp | sed 's/.*=> *//; s/ (.*//')"
    else
        echo "FAIL: it did not use the installed libcsp:"
        ldd "$tmp/sieve$EXEEXT"
        fail=1
    fi
fi

exit $fail
