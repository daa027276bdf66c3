#!/bin/sh
# chaos-loop.sh SEEDS PROGRAM...
#
# Runs every PROGRAM (a test built with --enable-chaos) once per seed, for
# SEEDS consecutive seeds starting at $CHAOS_SEED_BASE (default: taken
# from the clock, so each run explores new families of interleavings), two
# processes at a time ($CHAOS_JOBS).  A failing run's seed, the tail of its
# output and the command that replays it are printed; the script exits 1
# if any run failed.  `make check-chaos` calls it (Makefile.am).
set -u
seeds=$1
shift
base=${CHAOS_SEED_BASE:-$(( $(date +%s) % 1000000 * 1000 ))}
jobs=${CHAOS_JOBS:-2}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chaos.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for prog in "$@"; do
  name=$(basename "$prog")
  start=$(date +%s)
  last=$((base + seeds - 1))
  # One line per seed: the seed and the exit status of its run.
  seq "$base" "$last" | xargs -P "$jobs" -I{} sh -c '
    CSP_CHAOS_SEED={} timeout 300 "$1" >"$2/$3.{}.log" 2>&1
    echo "{} $?" >>"$2/$3.status"' sh "$prog" "$tmp" "$name"
  runs=$(wc -l <"$tmp/$name.status")
  failed=$(awk '$2 != 0 { print $1 }' "$tmp/$name.status" | sort -n)
  secs=$(( $(date +%s) - start ))
  if [ "$runs" -ne "$seeds" ]; then
    echo "chaos: $name: only $runs of $seeds runs reported" >&2
    status=1
  fi
  if [ -n "$failed" ]; then
    status=1
    for s in $failed; do
      echo "==== chaos: $name FAILED with seed $s; replay: CSP_CHAOS_SEED=$s $prog"
      tail -n 30 "$tmp/$name.$s.log"
    done
  fi
  nfail=$(printf '%s\n' "$failed" | grep -c .)
  echo "chaos: $name: $seeds seeds ($base..$last), $nfail failed, ${secs}s"
done
exit $status
