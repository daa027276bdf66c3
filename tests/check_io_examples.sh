#!/bin/sh
# check_io_examples.sh - runs the self-tests of the I/O and cancellation
# examples (examples/echo, examples/httpd, examples/timeout) in make check:
# each starts its server or searches in-process, checks what it claims
# and exits 0.  Run from the build directory (as `make check` does).
set -u
top=${top_builddir:-.}
status=0
for ex in echo httpd timeout; do
  prog=$top/examples/$ex
  if [ ! -x "$prog" ]; then
    echo "FAIL: $prog not built"
    status=1
    continue
  fi
  out=$(timeout 120 "$prog" --selftest 2>&1)
  rc=$?
  printf '%s\n' "$out"
  if [ $rc -ne 0 ]; then
    echo "FAIL: $ex --selftest exited with $rc"
    status=1
  elif ! printf '%s\n' "$out" | grep -q "^$ex selftest: ok\$"; then
    echo "FAIL: $ex --selftest did not report ok"
    status=1
  else
    echo "PASS: $ex --selftest"
  fi
done
exit $status
