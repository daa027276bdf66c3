#!/bin/sh
# check_abi.sh - the shared library exports only csp_* symbols (the rest
# is hidden by -fvisibility=hidden), and it exports every function of the
# public contract.  Skipped (77) when no shared library was built.
lib=lib/.libs/libcsp.so
if test ! -f "$lib"; then
  echo "check_abi: $lib not built (--disable-shared?): skipped"
  exit 77
fi
NM=${NM:-nm}
if ! $NM -D --defined-only "$lib" >/dev/null 2>&1; then
  echo "check_abi: $NM -D does not work here: skipped"
  exit 77
fi
syms=$($NM -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
# Symbols some linkers define in every shared object; not ours.
linker='^(_init|_fini|_edata|_end|__bss_start)$'
stray=$(printf '%s\n' "$syms" | grep -v '^csp_' | grep -Ev "$linker")
status=0
if test -n "$stray"; then
  echo "check_abi: exported symbols outside the csp_ namespace:"
  printf '  %s\n' $stray
  status=1
fi
# Every function of the contract (API.md) must be there.
for f in csp_version csp_now csp_deadline csp_start csp_go csp_go_copy \
    csp_yield csp_sleep csp_run csp_stop csp_chan_make csp_chan_retain \
    csp_chan_release csp_send csp_recv csp_try_send csp_try_recv \
    csp_send_until csp_recv_until csp_close csp_chan_len csp_chan_cap \
    csp_chan_elem_size csp_select csp_read csp_write csp_accept csp_connect \
    csp_fd_wait csp_fd_close csp_ctx_background csp_ctx_with_cancel \
    csp_ctx_with_deadline csp_ctx_with_timeout csp_ctx_cancel csp_ctx_err \
    csp_ctx_done csp_ctx_deadline csp_ctx_retain csp_ctx_release csp_dump \
    csp_after csp_tick csp_tick_stop csp_wg_add csp_wg_done csp_wg_wait \
    csp_once_do csp_mutex_lock csp_mutex_trylock csp_mutex_unlock \
    csp_rwlock_rdlock csp_rwlock_tryrdlock csp_rwlock_rdunlock \
    csp_rwlock_wrlock csp_rwlock_trywrlock csp_rwlock_wrunlock; do
  if ! printf '%s\n' "$syms" | grep -qx "$f"; then
    echo "check_abi: $f is not exported"
    status=1
  fi
done
test $status = 0 && echo "check_abi: $(printf '%s\n' "$syms" | grep -c '^csp_') csp_* symbols, nothing else"
exit $status
