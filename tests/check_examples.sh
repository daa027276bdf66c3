#!/bin/sh
# check_examples.sh - runs every example program and checks its output:
# what a person reading the example would check by eye, checked here by
# diff.  An example must also exit 0, which for a csp_run program means
# that every task finished (a leaked, forever-parked task is reported as
# a deadlock and makes it fail), and within a time limit.

. ./tests/docs-env.sh || exit 99
ex=./examples
tmp=${TMPDIR:-/tmp}/csp-examples.$$
mkdir -p "$tmp" || exit 99
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT HUP INT TERM

limit=
command -v timeout >/dev/null 2>&1 && limit="timeout 120"
fail=0

# run NAME EXPECTED-STATUS EXPECTED-FILE COMMAND...   (stdout is compared)
run() {
    name=$1 want_rc=$2 want=$3
    shift 3
    $limit "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne "$want_rc" ]; then
        echo "FAIL: $name: exit status $rc, expected $want_rc"
        cat "$tmp/err"
        fail=1
    elif ! diff -u "$want" "$tmp/out" >"$tmp/diff"; then
        echo "FAIL: $name: unexpected output"
        cat "$tmp/diff"
        fail=1
    else
        echo "ok: $name"
    fi
}

# ---- sieve: the first 10 primes ----------------------------------------------
printf '%s\n' 2 3 5 7 11 13 17 19 23 29 > "$tmp/want"
run "sieve 10" 0 "$tmp/want" $ex/sieve$EXEEXT 10

# ---- pipeline ------------------------------------------------------------------
cat > "$tmp/want" <<'END'
pipeline: 100 squares received, sum of squares 1..100 = 338350
cancel: took 3 values, closing done
cancel: every stage task has exited
END
run "pipeline" 0 "$tmp/want" $ex/pipeline$EXEEXT
sed 's/100 squares/10000 squares/; s/1\.\.100 = 338350/1..10000 = 333383335000/' \
    "$tmp/want" > "$tmp/want2"
run "pipeline 10000" 0 "$tmp/want2" $ex/pipeline$EXEEXT 10000

# ---- workers -------------------------------------------------------------------
cat > "$tmp/want" <<'END'
job 1: fib(11) = 89
job 2: fib(12) = 144
job 3: fib(13) = 233
job 4: fib(14) = 377
job 5: fib(15) = 610
job 6: fib(16) = 987
job 7: fib(17) = 1597
job 8: fib(18) = 2584
job 9: fib(19) = 4181
pool: 9 jobs done by 3 workers
job 10: no result within 100 ms, cancelling the pool
pool: all 3 workers stopped
END
run "workers" 0 "$tmp/want" $ex/workers$EXEEXT
$limit $ex/workers$EXEEXT 16 200 > "$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -qx 'pool: 200 jobs done by 16 workers' "$tmp/out" &&
   grep -qx 'job 200: fib(15) = 610' "$tmp/out" &&
   grep -qx 'pool: all 16 workers stopped' "$tmp/out"; then
    echo "ok: workers 16 200"
else
    echo "FAIL: workers 16 200"; cat "$tmp/out"; fail=1
fi

# ---- hashdir: a tree with known FNV-1a 64 digests ------------------------------
tree=$tmp/tree
mkdir -p "$tree/sub/deeper" "$tree/empty-dir" || exit 99
printf 'hello\n' > "$tree/a.txt"
: > "$tree/empty.txt"
printf 'abc' > "$tree/sub/b"
# 200000 zero bytes: more than one read buffer
dd if=/dev/zero of="$tree/sub/deeper/zeros" bs=1000 count=200 2>/dev/null
ln -s a.txt "$tree/link-is-skipped" 2>/dev/null
cat > "$tmp/want" <<'END'
a9bc80cca21f28b3  a.txt
cbf29ce484222325  empty.txt
e71fa2190541574b  sub/b
219fb3ca72598c25  sub/deeper/zeros
4 files, 200009 bytes, 4 digesters
END
run "hashdir" 0 "$tmp/want" $ex/hashdir$EXEEXT "$tree/"
sed 's/4 digesters/1 digesters/' "$tmp/want" > "$tmp/want2"
run "hashdir -j 1" 0 "$tmp/want2" $ex/hashdir$EXEEXT -j 1 "$tree"
# Many files, more than the digesters, and an error that cancels it all.
i=0
while [ $i -lt 300 ]; do echo $i > "$tree/sub/f$i"; i=$((i + 1)); done
$limit $ex/hashdir$EXEEXT -j 3 "$tree" > "$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -qx '304 files, 201099 bytes, 3 digesters' "$tmp/out"; then
    echo "ok: hashdir, 304 files"
else
    echo "FAIL: hashdir, 304 files"; tail -n 3 "$tmp/out"; fail=1
fi
: > "$tmp/empty"
run "hashdir, missing directory" 1 "$tmp/empty" $ex/hashdir$EXEEXT "$tmp/no-such-dir"
if [ "$(id -u)" != 0 ]; then
    chmod 000 "$tree/sub/f150"
    run "hashdir, unreadable file" 1 "$tmp/empty" $ex/hashdir$EXEEXT -j 2 "$tree"
    grep -q 'f150' "$tmp/err" || { echo "FAIL: no error message for f150"; fail=1; }
    chmod 644 "$tree/sub/f150"
fi

# ---- ratelimit -------------------------------------------------------------------
cat > "$tmp/want" <<'END'
request 1
request 2
request 3
request 4
request 5
steady: 5 requests, none served before its tick: ok
bursty request 1
bursty request 2
bursty request 3
bursty request 4
bursty request 5
bursty: 5 requests, none served before its tick: ok
END
run "ratelimit" 0 "$tmp/want" $ex/ratelimit$EXEEXT
run "ratelimit 1" 0 "$tmp/want" $ex/ratelimit$EXEEXT 1

# ---- pubsub ------------------------------------------------------------------------
cat > "$tmp/want" <<'END'
publisher: carol is too slow, dropped at message 4
publisher: 10 messages published, 2 of 3 subscribers kept up
alice: received 10 messages (1..10, in order), then the inbox was closed
bob: received 10 messages (1..10, in order), then the inbox was closed
carol: received 3 messages (1..3, in order), then the inbox was closed
END
run "pubsub" 0 "$tmp/want" $ex/pubsub$EXEEXT

# ---- usage errors exit 2 ------------------------------------------------------------
for p in "sieve 0" "pipeline 0" "workers 0" "hashdir" "ratelimit 0" "pubsub 1"; do
    set -- $p
    prog=$1
    shift
    run "$p (usage)" 2 "$tmp/empty" $ex/$prog$EXEEXT "$@"
done

exit $fail
