#!/bin/sh
# check_allocfail.sh - the allocation-failure walk: for each public call
# sequence in tests/allocfail_helper.c, make the 1st, 2nd, 3rd, ...
# allocation inside the library fail (CSP_FAIL_ALLOC=n) until the sequence
# runs with no failure left to inject.  Each run must report ENOMEM cleanly
# and keep working (exit 3) - never crash, hang or return another error.
# In the ASan build LeakSanitizer turns any leak on those paths into a
# failure.
helper=${ALLOCFAIL_HELPER:-tests/allocfail_helper}
status=0
for seq in chan select go timers ctx; do
  n=1
  while :; do
    CSP_FAIL_ALLOC=$n timeout 60 $LOG_RUNNER "$helper" "$seq"
    rc=$?
    if [ $rc = 0 ]; then
      echo "PASS: $seq: every one of its $((n - 1)) allocations failed cleanly in turn"
      break
    elif [ $rc != 3 ]; then
      echo "FAIL: $seq with allocation $n failing: exit $rc"
      status=1
      break
    fi
    n=$((n + 1))
    if [ $n -gt 500 ]; then
      echo "FAIL: $seq: more than 500 allocations?"
      status=1
      break
    fi
  done
done
[ $status = 0 ] && echo "5 passed, 0 failed"
exit $status
