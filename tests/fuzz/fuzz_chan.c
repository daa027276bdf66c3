/*
 * fuzz_chan.c - a libFuzzer target: an interpreter of channel operations,
 * checked against a model.
 *
 * What it does
 *
 *   Each input is a small program.  Its header makes one to four channels
 *   (capacity 0..4, element size 0, 4, 8, 24 or 64 bytes); then up to 64
 *   operations run on this thread (the "interpreter", a plain thread of the
 *   runtime, which is started once with two workers): sends and receives in
 *   every waiting flavour, selects, close, len/cap, and csp_go of tasks that
 *   each do one to four blocking sends, receives or two-case selects in a
 *   row (at most 16 tasks per input).  Every value sent is distinct: its bytes spell a value
 *   number and a pattern derived from it, so a receiver can tell which send
 *   it came from and whether it arrived whole.  At the end every channel is
 *   closed (blocked tasks wake: senders with EPIPE, their values then count
 *   as not sent), every task is waited for with a csp_waitgroup, every
 *   channel is drained and released.  Nothing outlives an input, so
 *   libFuzzer's leak check holds per input.
 *
 * Input encoding (bytes are read in order; a missing byte reads as 0)
 *
 *   header   n = 1 + b % 4 channels; then per channel one byte b:
 *            cap = b % 5, element size = {8, 0, 4, 24, 64}[(b / 5) % 5]
 *   ops      until the input ends or 64 ops ran; opcode = b % 12:
 *     0 SEND c w         c: channel c % n; bit (c / n) & 1: pass a NULL
 *     1 RECV c w            element pointer (for element size 0 only)
 *                        w: wait mode w % 6 -- 0 csp_try_*, 1 *_until
 *                           CSP_NOWAIT, 2 *_until(1) (long past), 3 *_until
 *                           (csp_now()), 4 *_until 10..80 us ahead
 *                           ((w / 6) % 8), 5 csp_send/csp_recv (blocking
 *                           forever, used only when the model proves the
 *                           call completes at once; otherwise mode 4)
 *     2 SELECT h k...    n = h % 5 cases, wait mode (h / 5) % 6 as above
 *                        (0 and 1 both CSP_NOWAIT), short wait (h / 30) % 8;
 *                        each case byte k: channel k % (n + 1) (n: a NULL
 *                        channel, a case that never fires), send if
 *                        (k / (n + 1)) & 1 else receive, bit 1 of
 *                        k / (n + 1): NULL element pointer (size 0 only)
 *     3 GO_SEND c t      a task: csp_send of fresh values on c
 *     4 GO_RECV c t      a task: csp_recv on c
 *     5 GO_SELECT a b t  a task: select { send on a, receive on b }
 *                        t: 1 + (t >> 5) % 4 times in a row; bit 0 set =
 *                        each waits 20..320 us ((t >> 1) % 16), not forever
 *     6 CLOSE c
 *     7 LEN c            csp_chan_len, csp_chan_cap, csp_chan_elem_size
 *     8 QUIESCE          act as the partner of every pending task until
 *                        all of them have finished
 *     9 PAUSE p          csp_yield, or sleep 10..80 us (lets tasks run)
 *    10 BADARGS c k      invalid arguments (k % 5 picks which)
 *    11 NBRACE x y d     Go's TestNonblockSelectRace, when the model says x
 *                        holds a value and y has room: a task does a
 *                        non-blocking select receiving from x or y while
 *                        the interpreter sends to y, then receives from x;
 *                        both start together, then spin 16 * (d & 15)
 *                        (task) and 16 * (d >> 4) (interpreter) loops
 *
 * What the model checks, and why each check is sound
 *
 *   The interpreter is the only thread that closes channels, so "closed"
 *   is known exactly: every send on a closed channel must fail with EPIPE,
 *   a second close must fail with EPIPE, a receive on a closed channel may
 *   never report EAGAIN or ETIMEDOUT (it gets a buffered value or EPIPE
 *   with a zero-filled element), and a receive or send on an open channel
 *   may never report EPIPE.  EINVAL for bad arguments is deterministic too,
 *   and the argument checks must have no effect.
 *
 *   A channel is EXACT while no unfinished task uses it (a finished task
 *   counts once the interpreter has seen its done flag, which it reads with
 *   acquire ordering after the task stored its results).  Then nobody but
 *   the interpreter can touch it, and everything is deterministic: the
 *   model holds the buffered values in order, and every operation's result
 *   is predicted exactly -- 0 or the would-block code (EAGAIN for the try
 *   forms and CSP_NOWAIT, ETIMEDOUT for any other deadline, even one that
 *   has already passed), the value received (FIFO), csp_chan_len.  An
 *   unbuffered channel with no task on it can never complete a send or a
 *   receive (two non-blocking sides never meet; a select cannot meet
 *   itself).  A select over EXACT channels must return one of the cases
 *   the model says are ready -- which one is random, so any ready one is
 *   accepted and then applied to the model -- and may fail (-EAGAIN or
 *   -ETIMEDOUT) only if none is ready.  A case on a closed channel is
 *   always ready.  Giving up must be linearizable: in NBRACE one of the
 *   two channels holds a value at every instant (y is filled before x is
 *   emptied, and only the select itself takes from y), so the task's
 *   non-blocking select must fire whatever the interleaving.  The receive buffers of the cases that did not fire must
 *   not be written (they are filled with a sentinel), and no byte past an
 *   element may ever be written.
 *
 *   A channel used by an unfinished task is SHARED: who gets a value, and
 *   whether a try or timed operation finds a partner, depends on the
 *   schedule, so only what holds under every schedule is checked:
 *     - conservation: every value a receiver gets must be one that was
 *       sent on that channel, whole, not yet received by anyone, and whose
 *       send did not fail; at the end, every value whose send returned 0
 *       has been received exactly once and every value whose send failed
 *       never was.  A task's results are seen late, so "received twice" and
 *       "received although the send failed" are also checked when a task's
 *       result arrives;
 *     - FIFO per sender: the sends of one party (the interpreter, or one
 *       task) are sequential, and so are the receives of one party, so any
 *       receiver must get one sender's values from a channel in the order
 *       they were sent (a value sent after another was queued behind it,
 *       or - unbuffered - handed over only after it was taken); and the
 *       values that were buffered when the channel became shared were
 *       queued before any later send, so the interpreter may not receive
 *       one of them after a later value, or out of their order;
 *     - csp_chan_len <= cap.
 *   When the last task using a channel has finished, the channel is EXACT
 *   again and its buffer is rebuilt from the facts: the values whose sends
 *   succeeded and that nobody received.  Their order is partly known: what
 *   was buffered before the channel was shared and is still there must be
 *   what remains of that queue after removing from its head, and it comes
 *   first; the rest came from concurrent senders, so any order among them
 *   is accepted (one "rank": a receive must take a value of the lowest rank
 *   present).  csp_chan_len must then equal the number rebuilt, and must
 *   fit the capacity.
 *
 *   Channels of element size 0 carry no identity, so for them the check is
 *   by count: successful receives never exceed successful sends, and
 *   exactly match them once the channel is drained.
 *
 *   Liveness: the quiesce op and the end of every input wait for tasks
 *   that have partners on offer (or a closed channel); a lost wake-up shows
 *   as a quiesce that does not finish within 5 s, or as a timeout of the
 *   whole input (libFuzzer's -timeout; FUZZ_INPUT_TIMEOUT, 60 s, in the
 *   standalone build) on the final csp_wg_wait.  Time itself is never
 *   checked: a loaded machine may take milliseconds to run a new task.
 *
 * On a violation it prints what differed and the trace of the operations
 * that led there, then aborts (libFuzzer saves the input).  Built with
 * -DFUZZ_STANDALONE it has a main() instead, that runs every file or
 * directory named on the command line and then pseudo-random inputs from a
 * fixed seed (FUZZ_RANDOM_RUNS, default 1000; FUZZ_SEED): that is the make
 * check run.  It saves a failing input as $FUZZ_SAVE; FUZZ_TRACE=1 prints
 * every input's trace, FUZZ_ONLY=n runs only the n-th pseudo-random input.
 */
#include <csp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHANS 4
#define MAX_CAP 4
#define MAX_OPS 64
#define MAX_TASKS 16
#define MAX_CASES 4
#define MAX_VALUES 16384
#define MAX_ELEM 64
#define BUF_BYTES (MAX_ELEM + 16)   /* an element and a guard tail */
#define SENTINEL 0xEE
#define QUIESCE_LIMIT_NS (5 * INT64_C(1000000000))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t esizes[5] = { 8, 0, 4, 24, 64 };

enum { V_PENDING = 1, V_SENT, V_FAILED };

struct value {
    uint8_t chan;
    uint8_t state;
    uint8_t nrecv;
    int8_t sender;       /* -1: the interpreter, else a task number */
    int8_t receiver;
    uint32_t seq;        /* 1, 2, ... per sender and channel */
};

struct entry {
    uint32_t id;         /* 0 for element size 0 */
    uint32_t rank;       /* a receive takes an entry of the lowest rank */
};

struct mchan {
    csp_chan *c;
    size_t cap, esize;
    bool closed;
    int pending;         /* unfinished (unseen) tasks using the channel */
    /* EXACT: the buffer, in queue order (ranks never decrease). */
    struct entry buf[MAX_CAP];
    int n;
    uint32_t next_rank;
    /* SHARED: what was buffered when it became shared. */
    struct entry old[MAX_CAP];
    int nold;
    bool saw_new;
    uint32_t last_old_rank;
    uint32_t interp_seq;     /* last seq given to an interpreter send */
    long nrecv_anon;         /* element size 0: successful receives */
};

enum { T_SEND, T_RECV, T_SELECT, T_NBSELECT };

/* A task does `steps` operations of one kind in a row, so that its own
 * sends and receives are ordered (per-sender FIFO across threads). */
#define MAX_STEPS 4

struct task {
    int kind;
    int steps;
    bool timed;
    int64_t timeout_ns;
    int ca, cb, cc;                  /* send / receive / 2nd receive, or -1 */
    csp_chan *a, *b, *c;             /* the task's own references */
    bool snull, rnull, cnull;        /* pass NULL elements (size 0) */
    uint32_t id[MAX_STEPS];          /* the values it sends */
    unsigned char sbuf[MAX_STEPS][BUF_BYTES];
    /* Results, written by the task before it sets done. */
    int rc[MAX_STEPS], err[MAX_STEPS];
    unsigned char rbuf[MAX_STEPS][BUF_BYTES];
    atomic_int started;
    atomic_int done;
    bool seen;
    int spin;                        /* NBSELECT: delay after `started` */
};

static struct {
    const uint8_t *in;
    size_t len, pos;
    int nchan;
    struct mchan ch[MAX_CHANS];
    struct value val[MAX_VALUES];
    uint32_t nval;               /* value numbers 1 .. nval-1 are in use */
    struct task task[MAX_TASKS];
    int ntask;
    int op;
    /* The last seq each receiver (interpreter, tasks) got from each
     * sender on each channel. */
    uint32_t last_seq[MAX_TASKS + 1][MAX_CHANS][MAX_TASKS + 1];
} S;

static csp_waitgroup wg;

/* ---- failure reports ------------------------------------------------------ */

/* The trace of the current input: a failure prints its first and its last
 * lines (a quiesce can add thousands in between). */
#define TRACE_HEAD 100
#define TRACE_TAIL 200
static char trace_lines[TRACE_HEAD + TRACE_TAIL][120];
static unsigned trace_n;

static char *trace_line(unsigned i)
{
    return trace_lines[i < TRACE_HEAD ? i : TRACE_HEAD + (i - TRACE_HEAD) % TRACE_TAIL];
}

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

static void trace(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void trace(const char *fmt, ...)
{
    char *line = trace_line(trace_n++);
    int k = snprintf(line, sizeof trace_lines[0], "op %2d: ", S.op);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof trace_lines[0] - (size_t)k, fmt, ap);
    va_end(ap);
}

#ifdef FUZZ_STANDALONE
static void save_input(void);
#endif

static void print_trace(void)
{
    fprintf(stderr, "fuzz_chan: the trace of the input (%u lines):\n", trace_n);
    for (unsigned i = 0; i < trace_n; i++) {
        if (i == TRACE_HEAD && trace_n > TRACE_HEAD + TRACE_TAIL) {
            fprintf(stderr, "  ... (%u lines)\n", trace_n - TRACE_HEAD - TRACE_TAIL);
            i = trace_n - TRACE_TAIL;
        }
        fprintf(stderr, "  %s\n", trace_line(i));
    }
}

static NORETURN void fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void fail(const char *fmt, ...)
{
    print_trace();
    fprintf(stderr, "fuzz_chan: MODEL VIOLATION at op %d: ", S.op);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
#ifdef FUZZ_STANDALONE
    save_input();
#endif
    abort();
}

static const char *who_name(int who, char *buf, size_t size)
{
    if (who < 0)
        snprintf(buf, size, "the interpreter");
    else
        snprintf(buf, size, "task %d", who);
    return buf;
}

/* ---- values ---------------------------------------------------------------- */

static unsigned char pattern(uint32_t id, size_t i)
{
    return i < 4 ? (unsigned char)(id >> (8 * i)) : (unsigned char)(id * 131u + i * 7u + 0x5Au);
}

static void encode(unsigned char *buf, size_t esize, uint32_t id)
{
    memset(buf, SENTINEL, BUF_BYTES);
    for (size_t i = 0; i < esize; i++)
        buf[i] = pattern(id, i);
}

/* The value number spelled by buf, or 0 if it is not a whole value. */
static uint32_t decode(const unsigned char *buf, size_t esize)
{
    uint32_t id = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 24;
    if (id == 0 || id >= S.nval)
        return 0;
    for (size_t i = 4; i < esize; i++)
        if (buf[i] != pattern(id, i))
            return 0;
    return id;
}

static const char *hex(const unsigned char *buf, size_t n)
{
    static char out[3 * BUF_BYTES + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && i < BUF_BYTES; i++)
        k += (size_t)snprintf(out + k, sizeof out - k, "%02x", buf[i]);
    out[k] = 0;
    return out;
}

static bool all_bytes(const unsigned char *buf, size_t from, size_t to, unsigned char b)
{
    for (size_t i = from; i < to; i++)
        if (buf[i] != b)
            return false;
    return true;
}

/* Nothing past the element may be written. */
static void check_guard(const unsigned char *buf, size_t esize, const char *what)
{
    if (!all_bytes(buf, esize, BUF_BYTES, SENTINEL))
        fail("%s wrote past its %zu-byte element: %s", what, esize, hex(buf, BUF_BYTES));
}

static void check_zero(const unsigned char *buf, size_t esize, const char *what)
{
    if (!all_bytes(buf, 0, esize, 0))
        fail("%s reported EPIPE without zero-filling the element: %s", what, hex(buf, esize));
}

static void check_untouched(const unsigned char *buf, const char *what)
{
    if (!all_bytes(buf, 0, BUF_BYTES, SENTINEL))
        fail("%s wrote the element of a receive that did not happen: %s", what,
             hex(buf, BUF_BYTES));
}

static uint32_t new_value(int ci, int sender)
{
    if (S.nval >= MAX_VALUES)
        return 0;
    uint32_t id = S.nval++;
    struct value *v = &S.val[id];
    *v = (struct value){ .chan = (uint8_t)ci, .state = V_PENDING, .sender = (int8_t)sender,
                         .receiver = -2 };
    if (sender < 0)
        v->seq = ++S.ch[ci].interp_seq;
    return id;
}

/* A send of value id returned: ok says whether it delivered. */
static void settle_send(uint32_t id, bool ok)
{
    struct value *v = &S.val[id];
    v->state = ok ? V_SENT : V_FAILED;
    if (!ok && v->nrecv) {
        char who[32];
        fail("value %" PRIu32 " on c%d was received by %s although its send failed", id, v->chan,
             who_name(v->receiver, who, sizeof who));
    }
}

/* A value came out of channel ci into buf; who: -1 interpreter, else task. */
static void received(int ci, const unsigned char *buf, int who)
{
    struct mchan *ch = &S.ch[ci];
    char w1[32], w2[32];
    if (ch->esize == 0) {
        ch->nrecv_anon++;
        return;
    }
    uint32_t id = decode(buf, ch->esize);
    if (id == 0)
        fail("%s received bytes nobody sent on c%d: %s", who_name(who, w1, sizeof w1), ci,
             hex(buf, ch->esize));
    struct value *v = &S.val[id];
    if (v->chan != ci)
        fail("%s received value %" PRIu32 " on c%d, but it was sent on c%d",
             who_name(who, w1, sizeof w1), id, ci, v->chan);
    if (v->state == V_FAILED)
        fail("%s received value %" PRIu32 " on c%d, whose send failed",
             who_name(who, w1, sizeof w1), id, ci);
    if (v->nrecv)
        fail("value %" PRIu32 " on c%d was received twice: by %s and by %s", id, ci,
             who_name(v->receiver, w1, sizeof w1), who_name(who, w2, sizeof w2));
    v->nrecv = 1;
    v->receiver = (int8_t)who;
    /* A sender's sends are sequential, and so are a receiver's receives:
     * through a FIFO channel it gets that sender's values in order. */
    uint32_t *last = &S.last_seq[who + 1][ci][v->sender + 1];
    if (v->seq <= *last)
        fail("FIFO: %s received the send #%" PRIu32 " of %s on c%d after its send #%" PRIu32,
             who_name(who, w1, sizeof w1), v->seq, who_name(v->sender, w2, sizeof w2), ci, *last);
    *last = v->seq;
}

/* ---- the model of one channel ------------------------------------------------ */

static bool is_exact(int ci) { return S.ch[ci].pending == 0; }

static void exact_push(int ci, uint32_t id)
{
    struct mchan *ch = &S.ch[ci];
    ch->buf[ch->n++] = (struct entry){ id, ch->next_rank++ };
}

/* An EXACT receive got buf: it must be an entry of the lowest rank. */
static void exact_take(int ci, const unsigned char *buf, const char *what)
{
    struct mchan *ch = &S.ch[ci];
    int j = 0;
    if (ch->esize) {
        uint32_t id = decode(buf, ch->esize);
        for (j = 0; j < ch->n && ch->buf[j].rank == ch->buf[0].rank; j++)
            if (ch->buf[j].id == id)
                break;
        if (j == ch->n || ch->buf[j].rank != ch->buf[0].rank || id == 0) {
            char exp[128];
            size_t k = 0;
            exp[0] = 0;
            for (int i = 0; i < ch->n && k < sizeof exp - 24; i++)
                k += (size_t)snprintf(exp + k, sizeof exp - k, " %" PRIu32 "/r%" PRIu32,
                                      ch->buf[i].id, ch->buf[i].rank);
            fail("%s on c%d got %s (value %" PRIu32 "), the model's queue (value/rank) is:%s",
                 what, ci, hex(buf, ch->esize), id, exp);
        }
    }
    memmove(&ch->buf[j], &ch->buf[j + 1], (size_t)(ch->n - j - 1) * sizeof ch->buf[0]);
    ch->n--;
    received(ci, buf, -1);
}

static void check_len(int ci, const char *when)
{
    struct mchan *ch = &S.ch[ci];
    size_t len = csp_chan_len(ch->c);
    if (len > ch->cap)
        fail("c%d %s: csp_chan_len %zu > cap %zu", ci, when, len, ch->cap);
    if (is_exact(ci) && len != (size_t)ch->n)
        fail("c%d %s: csp_chan_len %zu, the model holds %d", ci, when, len, ch->n);
}

/* The channel becomes SHARED: remember its queue for the FIFO checks. */
static void share(int ci)
{
    struct mchan *ch = &S.ch[ci];
    if (ch->pending++ == 0) {
        memcpy(ch->old, ch->buf, sizeof ch->buf);
        ch->nold = ch->esize ? ch->n : 0;
        ch->saw_new = false;
        ch->last_old_rank = 0;
    }
}

/* The interpreter received value id from a SHARED channel. */
static void shared_order(int ci, const unsigned char *buf)
{
    struct mchan *ch = &S.ch[ci];
    if (!ch->esize)
        return;
    uint32_t id = decode(buf, ch->esize);
    for (int j = 0; j < ch->nold; j++) {
        if (ch->old[j].id != id)
            continue;
        if (ch->saw_new)
            fail("FIFO: c%d gave the interpreter value %" PRIu32 ", buffered when tasks started "
                 "using it, after a value sent later", ci, id);
        if (ch->old[j].rank < ch->last_old_rank)
            fail("FIFO: c%d gave the interpreter value %" PRIu32 " (rank %" PRIu32 ") after one of "
                 "rank %" PRIu32, ci, id, ch->old[j].rank, ch->last_old_rank);
        ch->last_old_rank = ch->old[j].rank;
        return;
    }
    ch->saw_new = true;
}

/* The last task using the channel is done: it is EXACT again.  Rebuild its
 * buffer from the sends that succeeded and the receives that happened. */
static void rebuild(int ci)
{
    struct mchan *ch = &S.ch[ci];
    long sent = 0;
    for (uint32_t id = 1; id < S.nval; id++) {
        struct value *v = &S.val[id];
        if (v->chan != ci)
            continue;
        if (v->state == V_PENDING)
            fail("internal: value %" PRIu32 " on c%d unsettled after its tasks finished", id, ci);
        sent += v->state == V_SENT;
    }
    ch->n = 0;
    if (ch->esize == 0) {
        long n = sent - ch->nrecv_anon;
        if (n < 0)
            fail("c%d (element size 0): %ld values received, only %ld sent", ci, ch->nrecv_anon,
                 sent);
        if ((size_t)n > ch->cap)
            fail("c%d (element size 0): %ld values sent and not received, cap is %zu (lost?)", ci,
                 n, ch->cap);
        for (; ch->n < n; ch->n++)
            ch->buf[ch->n] = (struct entry){ 0, 0 };
    } else {
        /* Receivers take from the head: what is left of the old queue is
         * a tail of it (up to the order within a rank). */
        uint32_t max_consumed = 0;
        for (int j = 0; j < ch->nold; j++)
            if (S.val[ch->old[j].id].nrecv && ch->old[j].rank > max_consumed)
                max_consumed = ch->old[j].rank;
        for (int j = 0; j < ch->nold; j++) {
            struct entry e = ch->old[j];
            if (S.val[e.id].nrecv)
                continue;
            if (e.rank < max_consumed)
                fail("FIFO: c%d: value %" PRIu32 " is still buffered but a value queued behind "
                     "it was received", ci, e.id);
            ch->buf[ch->n++] = e;
        }
        uint32_t rank = ch->next_rank++;
        for (uint32_t id = 1; id < S.nval; id++) {
            struct value *v = &S.val[id];
            if (v->chan != ci || v->state != V_SENT || v->nrecv)
                continue;
            bool was_old = false;
            for (int j = 0; j < ch->nold; j++)
                was_old |= ch->old[j].id == id;
            if (was_old)
                continue;
            if ((size_t)ch->n >= ch->cap)
                fail("c%d: value %" PRIu32 " was sent and never received, and the %zu-slot "
                     "buffer is already accounted for (lost?)", ci, id, ch->cap);
            ch->buf[ch->n++] = (struct entry){ id, rank };
        }
    }
    ch->nold = 0;
    check_len(ci, "after its tasks finished");
}

/* ---- tasks ------------------------------------------------------------------- */

static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

static void task_main(void *arg)
{
    struct task *t = arg;
    for (int i = 0; i < t->steps; i++) {
        int64_t dl = t->timed ? csp_deadline(t->timeout_ns) : CSP_FOREVER;
        void *sp = t->snull ? NULL : t->sbuf[i], *rp = t->rnull ? NULL : t->rbuf[i];
        switch (t->kind) {
        case T_SEND:
            t->rc[i] = t->timed ? csp_send_until(t->a, sp, dl) : csp_send(t->a, sp);
            break;
        case T_RECV:
            t->rc[i] = t->timed ? csp_recv_until(t->b, rp, dl) : csp_recv(t->b, rp);
            break;
        case T_SELECT: {
            csp_case cs[2] = { CSP_SEND(t->a, sp), CSP_RECV(t->b, rp) };
            t->rc[i] = csp_select(cs, 2, dl);
            t->err[i] = t->rc[i] >= 0 && t->rc[i] < 2 ? cs[t->rc[i]].err : 0;
            break;
        }
        default: {
            /* Line up with the interpreter, so that the race is real. */
            atomic_store_explicit(&t->started, 1, memory_order_release);
            spin(t->spin);
            /* Both receive into rbuf: only the case that fires writes. */
            csp_case cs[2] = { CSP_RECV(t->b, rp), CSP_RECV(t->c, t->cnull ? NULL : t->rbuf[i]) };
            t->rc[i] = csp_select(cs, 2, CSP_NOWAIT);
            t->err[i] = t->rc[i] >= 0 && t->rc[i] < 2 ? cs[t->rc[i]].err : 0;
            break;
        }
        }
    }
    csp_chan_release(t->a);
    csp_chan_release(t->b);
    csp_chan_release(t->c);
    atomic_store_explicit(&t->done, 1, memory_order_release);
    csp_wg_done(&wg);
}

static void spawn(int kind, int ca, int cb, int cc, uint8_t tb)
{
    if (S.ntask >= MAX_TASKS || S.nval + MAX_STEPS > MAX_VALUES)
        return;
    int ti = S.ntask;
    struct task *t = &S.task[ti];
    memset(t, 0, offsetof(struct task, started));
    atomic_store_explicit(&t->started, 0, memory_order_relaxed);
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    t->seen = false;
    t->kind = kind;
    t->ca = ca;
    t->cb = cb;
    t->cc = cc;
    t->timed = tb & 1;
    t->timeout_ns = 20000 * (1 + (tb >> 1) % 16);
    t->steps = 1 + (tb >> 5) % MAX_STEPS;
    char ids[64] = "";
    if (ca >= 0) {
        size_t k = 0;
        for (int i = 0; i < t->steps; i++) {
            t->id[i] = new_value(ca, ti);
            S.val[t->id[i]].seq = (uint32_t)i + 1;
            encode(t->sbuf[i], S.ch[ca].esize, t->id[i]);
            k += (size_t)snprintf(ids + k, sizeof ids - k, " %" PRIu32, t->id[i]);
        }
        t->snull = S.ch[ca].esize == 0;
        t->a = csp_chan_retain(S.ch[ca].c);
        share(ca);
    }
    memset(t->rbuf, SENTINEL, sizeof t->rbuf);
    if (cb >= 0) {
        t->rnull = S.ch[cb].esize == 0;
        t->b = csp_chan_retain(S.ch[cb].c);
        share(cb);
    }
    if (cc >= 0) {
        t->cnull = S.ch[cc].esize == 0;
        t->c = csp_chan_retain(S.ch[cc].c);
        share(cc);
    }
    if (kind == T_NBSELECT)
        trace("go task %d: non-blocking select recv c%d / recv c%d", ti, cb, cc);
    else if (kind == T_SELECT)
        trace("go task %d: %d x select send c%d / recv c%d%s (values%s)", ti, t->steps, ca, cb,
              t->timed ? " timed" : "", ids);
    else if (kind == T_SEND)
        trace("go task %d: %d x send c%d%s (values%s)", ti, t->steps, ca, t->timed ? " timed" : "",
              ids);
    else
        trace("go task %d: %d x recv c%d%s", ti, t->steps, cb, t->timed ? " timed" : "");
    S.ntask++;
    csp_wg_add(&wg, 1);
    int rc = csp_go(task_main, t);
    if (rc)
        fail("csp_go: %s", strerror(rc));
}

static void unshare(int ci)
{
    if (--S.ch[ci].pending == 0)
        rebuild(ci);
}

/* One step of a task: check its result against what it could have seen. */
static void settle_step(int ti, int i)
{
    struct task *t = &S.task[ti];
    char what[64];
    snprintf(what, sizeof what, "task %d step %d", ti, i);
    const unsigned char *rbuf = t->rbuf[i];
    int rc = t->rc[i], err = t->err[i];
    bool sent = false;
    switch (t->kind) {
    case T_SEND:
        trace("task %d: send c%d value %" PRIu32 " -> %d", ti, t->ca, t->id[i], rc);
        if (rc == EPIPE ? !S.ch[t->ca].closed : rc == ETIMEDOUT ? !t->timed : rc != 0)
            fail("%s: send on c%d (%s, %s) returned %d", what, t->ca,
                 S.ch[t->ca].closed ? "closed" : "open", t->timed ? "timed" : "blocking", rc);
        sent = rc == 0;
        break;
    case T_RECV:
        trace("task %d: recv c%d -> %d %s", ti, t->cb, rc, hex(rbuf, S.ch[t->cb].esize));
        check_guard(rbuf, S.ch[t->cb].esize, what);
        if (rc == 0)
            received(t->cb, rbuf, ti);
        else if (rc == EPIPE && S.ch[t->cb].closed)
            check_zero(rbuf, S.ch[t->cb].esize, what);
        else if (rc != ETIMEDOUT || !t->timed)
            fail("%s: recv on c%d (%s, %s) returned %d", what, t->cb,
                 S.ch[t->cb].closed ? "closed" : "open", t->timed ? "timed" : "blocking", rc);
        break;
    case T_NBSELECT: {
        /* The channel of the case that fired (for the element check). */
        int ci = rc == 1 ? t->cc : t->cb;
        trace("task %d: non-blocking select recv c%d / recv c%d -> %d err %d %s", ti, t->cb, t->cc,
              rc, err, hex(rbuf, S.ch[ci].esize));
        if (rc == -EAGAIN)
            fail("%s: a non-blocking select on c%d and c%d found no case ready, but one of them "
                 "held a value at every instant (not linearizable)", what, t->cb, t->cc);
        if ((rc != 0 && rc != 1) || err != 0)
            fail("%s: non-blocking select returned %d, err %d", what, rc, err);
        check_guard(rbuf, S.ch[ci].esize, what);
        received(ci, rbuf, ti);
        break;
    }
    default:
        trace("task %d: select send c%d value %" PRIu32 " / recv c%d -> %d err %d %s", ti, t->ca,
              t->id[i], t->cb, rc, err, hex(rbuf, S.ch[t->cb].esize));
        check_guard(rbuf, S.ch[t->cb].esize, what);
        if (rc != 1)
            check_untouched(rbuf, what);
        if (rc == 0 && (err == 0 || (err == EPIPE && S.ch[t->ca].closed))) {
            sent = err == 0;
        } else if (rc == 1 && err == 0) {
            received(t->cb, rbuf, ti);
        } else if (rc == 1 && err == EPIPE && S.ch[t->cb].closed) {
            check_zero(rbuf, S.ch[t->cb].esize, what);
        } else if (rc != -ETIMEDOUT || !t->timed) {
            fail("%s: select {send c%d (%s), recv c%d (%s)} %s returned %d, err %d", what, t->ca,
                 S.ch[t->ca].closed ? "closed" : "open", t->cb,
                 S.ch[t->cb].closed ? "closed" : "open", t->timed ? "timed" : "blocking", rc, err);
        }
        break;
    }
    if (t->ca >= 0)
        settle_send(t->id[i], sent);
}

static void settle_task(int ti)
{
    struct task *t = &S.task[ti];
    t->seen = true;
    for (int i = 0; i < t->steps; i++)
        settle_step(ti, i);
    if (t->ca >= 0)
        unshare(t->ca);
    if (t->cb >= 0)
        unshare(t->cb);
    if (t->cc >= 0)
        unshare(t->cc);
}

static int poll_tasks(void)
{
    int left = 0;
    for (int i = 0; i < S.ntask; i++) {
        struct task *t = &S.task[i];
        if (t->seen)
            continue;
        if (atomic_load_explicit(&t->done, memory_order_acquire))
            settle_task(i);
        else
            left++;
    }
    return left;
}

/* ---- the interpreter's operations ------------------------------------------------- */

enum { W_TRY, W_NOWAIT, W_PAST, W_NOW, W_SHORT, W_FOREVER };
static const char *const wait_names[] = { "try", "nowait", "past", "now", "short", "forever" };

static int64_t deadline_for(int mode, int64_t short_ns)
{
    switch (mode) {
    case W_TRY:
    case W_NOWAIT:
        return CSP_NOWAIT;
    case W_PAST:
        return 1;
    case W_NOW:
        return csp_now();
    case W_SHORT:
        return csp_deadline(short_ns);
    default:
        return CSP_FOREVER;
    }
}

static int block_code(int mode) { return mode == W_TRY || mode == W_NOWAIT ? EAGAIN : ETIMEDOUT; }

static int op_send(int ci, int mode, int64_t short_ns, bool null_elem)
{
    struct mchan *ch = &S.ch[ci];
    bool exact = is_exact(ci);
    bool ready = ch->closed || (exact && ch->n < (int)ch->cap);
    if (mode == W_FOREVER && !ready)
        mode = W_SHORT;
    uint32_t id = new_value(ci, -1);
    if (!id)
        return -1;
    unsigned char buf[BUF_BYTES];
    encode(buf, ch->esize, id);
    const void *p = null_elem && ch->esize == 0 ? NULL : buf;
    int64_t dl = deadline_for(mode, short_ns);
    int rc = mode == W_TRY       ? csp_try_send(ch->c, p)
             : mode == W_FOREVER ? csp_send(ch->c, p)
                                 : csp_send_until(ch->c, p, dl);
    trace("send c%d %s value %" PRIu32 " -> %d", ci, wait_names[mode], id, rc);
    int want = ch->closed ? EPIPE : ready ? 0 : block_code(mode);
    if (exact || ch->closed ? rc != want : rc != 0 && rc != want)
        fail("send (%s) on %s %s c%d (cap %zu, model holds %d) returned %d, expected %d%s", wait_names[mode],
             exact ? "EXACT" : "SHARED", ch->closed ? "closed" : "open", ci, ch->cap, ch->n, rc,
             want, exact || ch->closed ? "" : " or 0");
    settle_send(id, rc == 0);
    if (rc == 0 && exact)
        exact_push(ci, id);
    return rc;
}

static void op_recv(int ci, int mode, int64_t short_ns, bool null_elem)
{
    struct mchan *ch = &S.ch[ci];
    bool exact = is_exact(ci);
    bool ready = ch->closed || (exact && ch->n > 0);
    if (mode == W_FOREVER && !ready)
        mode = W_SHORT;
    unsigned char buf[BUF_BYTES];
    memset(buf, SENTINEL, sizeof buf);
    void *p = null_elem && ch->esize == 0 ? NULL : buf;
    int64_t dl = deadline_for(mode, short_ns);
    int rc = mode == W_TRY       ? csp_try_recv(ch->c, p)
             : mode == W_FOREVER ? csp_recv(ch->c, p)
                                 : csp_recv_until(ch->c, p, dl);
    trace("recv c%d %s -> %d %s", ci, wait_names[mode], rc, hex(buf, ch->esize));
    check_guard(buf, ch->esize, "recv");
    if (exact) {
        int want = ch->n > 0 ? 0 : ch->closed ? EPIPE : block_code(mode);
        if (rc != want)
            fail("recv (%s) on EXACT %s c%d (cap %zu, model holds %d) returned %d, expected %d",
                 wait_names[mode], ch->closed ? "closed" : "open", ci, ch->cap, ch->n, rc, want);
        if (rc == 0)
            exact_take(ci, buf, "recv");
    } else if (rc == 0) {
        shared_order(ci, buf);
        received(ci, buf, -1);
    } else if (ch->closed ? rc != EPIPE : rc != block_code(mode)) {
        fail("recv (%s) on SHARED %s c%d returned %d", wait_names[mode],
             ch->closed ? "closed" : "open", ci, rc);
    }
    if (rc == EPIPE)
        check_zero(buf, ch->esize, "recv");
}

static void op_select(uint8_t h)
{
    int n = h % 5, mode = (h / 5) % 6;
    int64_t short_ns = 10000 * (1 + (h / 30) % 8);
    csp_case cs[MAX_CASES];
    int chan[MAX_CASES];
    uint32_t ids[MAX_CASES] = { 0 };
    bool ready[MAX_CASES], exact[MAX_CASES];
    unsigned char bufs[MAX_CASES][BUF_BYTES];
    bool any_ready = false;
    if (S.nval + MAX_CASES > MAX_VALUES)
        return;
    char desc[96];
    size_t k = 0;
    desc[0] = 0;
    for (int i = 0; i < n; i++) {
        uint8_t b = S.pos < S.len ? S.in[S.pos++] : 0;
        int ci = b % (S.nchan + 1);
        bool send = (b / (S.nchan + 1)) & 1;
        bool null_elem = (b / (S.nchan + 1)) & 2;
        memset(bufs[i], SENTINEL, BUF_BYTES);
        chan[i] = ci < S.nchan ? ci : -1;
        ready[i] = exact[i] = false;
        if (chan[i] < 0) {
            cs[i] = send ? CSP_SEND(NULL, bufs[i]) : CSP_RECV(NULL, bufs[i]);
            k += (size_t)snprintf(desc + k, sizeof desc - k, " %s(nil)", send ? "send" : "recv");
            continue;
        }
        struct mchan *ch = &S.ch[ci];
        exact[i] = is_exact(ci);
        if (send) {
            ids[i] = new_value(ci, -1);
            encode(bufs[i], ch->esize, ids[i]);
            ready[i] = ch->closed || (exact[i] && ch->n < (int)ch->cap);
        } else {
            ready[i] = ch->closed || (exact[i] && ch->n > 0);
        }
        void *p = null_elem && ch->esize == 0 ? NULL : bufs[i];
        cs[i] = send ? CSP_SEND(ch->c, p) : CSP_RECV(ch->c, p);
        any_ready |= ready[i];
        k += (size_t)snprintf(desc + k, sizeof desc - k, " %s(c%d)", send ? "send" : "recv", ci);
    }
    if (mode == W_FOREVER && !any_ready)
        mode = W_SHORT;
    int rc = csp_select(n ? cs : NULL, (size_t)n, deadline_for(mode, short_ns));
    trace("select%s %s -> %d err %d", desc, wait_names[mode], rc, rc >= 0 && rc < n ? cs[rc].err : 0);
    if (rc < 0) {
        int want = -block_code(mode);
        if (rc != want || any_ready)
            fail("select%s (%s) returned %d; expected %s", desc, wait_names[mode], rc,
                 any_ready ? "a ready case to fire" : want == -EAGAIN ? "-EAGAIN" : "-ETIMEDOUT");
    } else if (rc >= n || chan[rc] < 0) {
        fail("select%s returned %d, not a case that can fire", desc, rc);
    }
    for (int i = 0; i < n; i++) {
        if (cs[i].op == CSP_OP_RECV && i != rc)
            check_untouched(bufs[i], "select");
        if (cs[i].op == CSP_OP_SEND && ids[i] && i != rc)
            settle_send(ids[i], false);
    }
    if (rc < 0)
        return;
    int ci = chan[rc];
    struct mchan *ch = &S.ch[ci];
    int err = cs[rc].err;
    if (exact[rc] && !ready[rc])
        fail("select%s fired case %d on EXACT c%d, which the model says cannot proceed", desc, rc, ci);
    if (cs[rc].op == CSP_OP_SEND) {
        if (err != (ch->closed ? EPIPE : 0))
            fail("select%s: send case %d on %s c%d fired with err %d", desc, rc,
                 ch->closed ? "closed" : "open", ci, err);
        settle_send(ids[rc], err == 0);
        if (err == 0 && exact[rc])
            exact_push(ci, ids[rc]);
        return;
    }
    check_guard(bufs[rc], ch->esize, "select");
    if (exact[rc]) {
        int want = ch->n > 0 ? 0 : EPIPE;
        if (err != want)
            fail("select%s: receive case %d on EXACT c%d (model holds %d) fired with err %d", desc,
                 rc, ci, ch->n, err);
        if (err == 0)
            exact_take(ci, bufs[rc], "select");
    } else if (err == 0) {
        shared_order(ci, bufs[rc]);
        received(ci, bufs[rc], -1);
    } else if (err != EPIPE || !ch->closed) {
        fail("select%s: receive case %d on SHARED %s c%d fired with err %d", desc, rc,
             ch->closed ? "closed" : "open", ci, err);
    }
    if (err == EPIPE)
        check_zero(bufs[rc], ch->esize, "select");
}

static void op_close(int ci)
{
    struct mchan *ch = &S.ch[ci];
    int rc = csp_close(ch->c);
    trace("close c%d -> %d", ci, rc);
    if (rc != (ch->closed ? EPIPE : 0))
        fail("close of %s c%d returned %d", ch->closed ? "closed" : "open", ci, rc);
    ch->closed = true;
}

static void op_len(int ci)
{
    struct mchan *ch = &S.ch[ci];
    trace("len c%d -> %zu", ci, csp_chan_len(ch->c));
    if (csp_chan_cap(ch->c) != ch->cap || csp_chan_elem_size(ch->c) != ch->esize)
        fail("c%d: csp_chan_cap %zu, csp_chan_elem_size %zu; made with %zu, %zu", ci,
             csp_chan_cap(ch->c), csp_chan_elem_size(ch->c), ch->cap, ch->esize);
    check_len(ci, "len op");
}

static void op_badargs(int ci, uint8_t k)
{
    struct mchan *ch = &S.ch[ci];
    unsigned char buf[BUF_BYTES];
    memset(buf, SENTINEL, sizeof buf);
    trace("badargs %d on c%d", k % 5, ci);
    switch (k % 5) {
    case 0:
        if (csp_send(NULL, buf) != EINVAL || csp_recv(NULL, buf) != EINVAL ||
            csp_try_send(NULL, buf) != EINVAL || csp_try_recv(NULL, buf) != EINVAL ||
            csp_send_until(NULL, buf, 1) != EINVAL || csp_recv_until(NULL, buf, 1) != EINVAL)
            fail("a send or receive on a NULL channel did not return EINVAL");
        check_untouched(buf, "recv on NULL");
        break;
    case 1:
        if (csp_close(NULL) != EINVAL)
            fail("csp_close(NULL) did not return EINVAL");
        break;
    case 2:
        /* A NULL element is valid only for element size 0. */
        if (ch->esize == 0)
            break;
        if (csp_send(ch->c, NULL) != EINVAL || csp_recv(ch->c, NULL) != EINVAL ||
            csp_try_send(ch->c, NULL) != EINVAL || csp_try_recv(ch->c, NULL) != EINVAL ||
            csp_send_until(ch->c, NULL, CSP_FOREVER) != EINVAL ||
            csp_recv_until(ch->c, NULL, CSP_FOREVER) != EINVAL)
            fail("a NULL element on c%d (element size %zu) did not return EINVAL", ci, ch->esize);
        break;
    case 3:
        if (csp_select(NULL, 1, CSP_NOWAIT) != -EINVAL)
            fail("csp_select(NULL, 1) did not return -EINVAL");
        if (csp_select(NULL, 0, CSP_NOWAIT) != -EAGAIN)
            fail("csp_select(NULL, 0, CSP_NOWAIT) did not return -EAGAIN");
        break;
    default: {
        /* A bad case rejects the whole select before any case runs: the
         * send case's value must not be delivered. */
        uint32_t id = new_value(ci, -1);
        if (!id)
            break;
        encode(buf, ch->esize, id);
        csp_case cs[2] = { CSP_SEND(ch->c, buf), CSP_RECV(ch->c, buf) };
        cs[1].op = (k / 5) & 1 ? 0 : 5;
        int rc = csp_select(cs, 2, CSP_NOWAIT);
        if (rc != -EINVAL)
            fail("select with a case of op %d returned %d, not -EINVAL", cs[1].op, rc);
        settle_send(id, false);
        break;
    }
    }
}

static void pause_briefly(int64_t ns)
{
    struct timespec ts = { 0, (long)ns };
    nanosleep(&ts, NULL);
}

/* Go's TestNonblockSelectRace: a task's non-blocking select receives from
 * x or y while the interpreter fills y and then empties x.  At every
 * instant one of them holds a value, so the select may not fail. */
static void op_nbrace(int x, int y, uint8_t d)
{
    struct mchan *cx = &S.ch[x], *cy = &S.ch[y];
    if (x == y || !is_exact(x) || !is_exact(y) || cx->closed || cy->closed || cx->n == 0 ||
        cy->n >= (int)cy->cap || S.ntask >= MAX_TASKS || S.nval + MAX_STEPS + 1 >= MAX_VALUES) {
        trace("nbrace c%d c%d: not applicable", x, y);
        return;
    }
    int ti = S.ntask;
    S.task[ti].spin = 16 * (d & 15);
    spawn(T_NBSELECT, -1, x, y, 0);
    int64_t start = csp_now();
    while (!atomic_load_explicit(&S.task[ti].started, memory_order_acquire)) {
        if (csp_now() - start > QUIESCE_LIMIT_NS)
            fail("nbrace: task %d did not start in 5 s", ti);
        csp_yield();
    }
    spin(16 * (d >> 4));
    /* Only the task's receive competes with us: the send must find room. */
    int rc = op_send(y, W_TRY, 0, false);
    if (rc != 0)
        fail("nbrace: try_send on c%d with room (only a receiver competing) returned %d", y, rc);
    op_recv(x, W_TRY, 0, false);
    start = csp_now();
    while (!atomic_load_explicit(&S.task[ti].done, memory_order_acquire)) {
        if (csp_now() - start > QUIESCE_LIMIT_NS)
            fail("nbrace: the non-blocking select of task %d did not return in 5 s", ti);
        pause_briefly(10000);
    }
    poll_tasks();
}

/* Be the partner of every pending task until none is left: receive where
 * senders wait on a full buffer, send where receivers wait on an empty one.
 * Between rounds the tasks get time to run, more of it while no task
 * finishes (a freshly spawned task may wait milliseconds for a worker on
 * a loaded machine, and acting too eagerly would only trade values with
 * ourselves). */
static void quiesce(void)
{
    int64_t start = csp_now(), pause = 10000;
    int left, before = MAX_TASKS + 1;
    trace("quiesce");
    while ((left = poll_tasks())) {
        if (left < before) {
            before = left;
            pause = 10000;
            pause_briefly(pause);
            continue;
        }
        if (csp_now() - start > QUIESCE_LIMIT_NS) {
            char who[160];
            size_t k = 0;
            who[0] = 0;
            for (int i = 0; i < S.ntask && k < sizeof who - 16; i++)
                if (!S.task[i].seen)
                    k += (size_t)snprintf(who + k, sizeof who - k, " %d", i);
            fprintf(stderr, "fuzz_chan: the runtime's tasks:\n");
            csp_dump(2);
            fail("quiesce: tasks%s still unfinished after 5 s with partners on offer (lost "
                 "wake-up?)%s", who, S.nval < MAX_VALUES ? "" : "; the values ran out");
        }
        for (int ci = 0; ci < S.nchan; ci++) {
            struct mchan *ch = &S.ch[ci];
            if (!ch->pending || ch->closed)
                continue;
            int senders = 0, receivers = 0;
            for (int i = 0; i < S.ntask; i++) {
                struct task *t = &S.task[i];
                if (t->seen)
                    continue;
                senders += t->ca == ci;
                receivers += t->cb == ci || t->cc == ci;
            }
            size_t len = csp_chan_len(ch->c);
            if (senders && len == ch->cap)
                op_recv(ci, W_SHORT, 1000000, false);
            else if (receivers && len == 0 && S.nval < MAX_VALUES)
                op_send(ci, W_SHORT, 1000000, false);
        }
        pause_briefly(pause);
        if (pause < 2000000)
            pause *= 2;
    }
}

/* ---- one input --------------------------------------------------------------------- */

static uint8_t next_byte(void) { return S.pos < S.len ? S.in[S.pos++] : 0; }

static void start_runtime(void)
{
    static bool started;
    if (started)
        return;
    int rc = csp_start(&(csp_config){ .workers = 2 });
    if (rc && rc != EBUSY) {
        fprintf(stderr, "fuzz_chan: csp_start: %s\n", strerror(rc));
        abort();
    }
    started = true;
}

static void run_ops(void)
{
    for (S.op = 0; S.op < MAX_OPS && S.pos < S.len; S.op++) {
        poll_tasks();
        uint8_t op = next_byte() % 12;
        switch (op) {
        case 0:
        case 1: {
            uint8_t c = next_byte(), w = next_byte();
            int ci = c % S.nchan;
            bool null_elem = (c / S.nchan) & 1;
            int64_t short_ns = 10000 * (1 + (w / 6) % 8);
            if (op == 0)
                op_send(ci, w % 6, short_ns, null_elem);
            else
                op_recv(ci, w % 6, short_ns, null_elem);
            break;
        }
        case 2:
            op_select(next_byte());
            break;
        case 3:
        case 4: {
            int ci = next_byte() % S.nchan;
            uint8_t t = next_byte();
            spawn(op == 3 ? T_SEND : T_RECV, op == 3 ? ci : -1, op == 3 ? -1 : ci, -1, t);
            break;
        }
        case 5: {
            int a = next_byte() % S.nchan, b = next_byte() % S.nchan;
            spawn(T_SELECT, a, b, -1, next_byte());
            break;
        }
        case 6:
            op_close(next_byte() % S.nchan);
            break;
        case 7:
            op_len(next_byte() % S.nchan);
            break;
        case 8:
            quiesce();
            break;
        case 9: {
            uint8_t p = next_byte();
            trace("pause %d", p);
            if (p & 1)
                pause_briefly(10000 * (1 + (p / 2) % 8));
            else
                csp_yield();
            break;
        }
        case 10: {
            int ci = next_byte() % S.nchan;
            op_badargs(ci, next_byte());
            break;
        }
        default: {
            int x = next_byte() % S.nchan, y = next_byte() % S.nchan;
            op_nbrace(x, y, next_byte());
            break;
        }
        }
    }
}

/* Close everything, wait for every task, drain, check conservation. */
static void finish(void)
{
    S.op = -1;
    for (int ci = 0; ci < S.nchan; ci++)
        if (!S.ch[ci].closed)
            op_close(ci);
    if (csp_wg_wait(&wg) != 0)
        fail("csp_wg_wait failed");
    for (int i = 0; i < S.ntask; i++)
        if (!S.task[i].seen && !atomic_load_explicit(&S.task[i].done, memory_order_acquire))
            fail("task %d had not finished when csp_wg_wait returned", i);
    poll_tasks();
    for (int ci = 0; ci < S.nchan; ci++) {
        struct mchan *ch = &S.ch[ci];
        check_len(ci, "at the end");
        for (int left = ch->n; left >= 0; left--)
            op_recv(ci, W_TRY, 0, false);
    }
    for (uint32_t id = 1; id < S.nval; id++) {
        struct value *v = &S.val[id];
        char who[32];
        if (v->state == V_SENT && v->nrecv != 1 && S.ch[v->chan].esize)
            fail("value %" PRIu32 " was sent on c%d by %s and never received (lost)", id, v->chan,
                 who_name(v->sender, who, sizeof who));
    }
    for (int ci = 0; ci < S.nchan; ci++) {
        struct mchan *ch = &S.ch[ci];
        if (ch->esize)
            continue;
        long sent = 0;
        for (uint32_t id = 1; id < S.nval; id++)
            sent += S.val[id].chan == ci && S.val[id].state == V_SENT;
        if (sent != ch->nrecv_anon)
            fail("c%d (element size 0): %ld sends succeeded, %ld receives", ci, sent,
                 ch->nrecv_anon);
    }
    for (int ci = 0; ci < S.nchan; ci++)
        csp_chan_release(S.ch[ci].c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    start_runtime();
    memset(S.ch, 0, sizeof S.ch);
    memset(S.last_seq, 0, sizeof S.last_seq);
    S.in = data;
    S.len = size;
    S.pos = 0;
    S.nval = 1;
    S.ntask = 0;
    S.op = -1;
    trace_n = 0;
    S.nchan = 1 + next_byte() % MAX_CHANS;
    for (int ci = 0; ci < S.nchan; ci++) {
        uint8_t b = next_byte();
        struct mchan *ch = &S.ch[ci];
        ch->cap = b % (MAX_CAP + 1);
        ch->esize = esizes[(b / (MAX_CAP + 1)) % 5];
        ch->c = csp_chan_make(ch->esize, ch->cap);
        if (!ch->c)
            fail("csp_chan_make(%zu, %zu): %s", ch->esize, ch->cap, strerror(errno));
        trace("make c%d: cap %zu, element size %zu", ci, ch->cap, ch->esize);
    }
    run_ops();
    finish();
    return 0;
}

/* ---- the regression driver -------------------------------------------------------- */

#ifdef FUZZ_STANDALONE
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *current_input = "";
static int64_t slowest_ns;
static char slowest[4096];

/* A hung input (a lost wake-up at the final csp_wg_wait) must fail make
 * check rather than stall it: what libFuzzer's -timeout does for make fuzz.
 * Not async-signal-safe, but the process is dying anyway. */
static void on_alarm(int sig)
{
    (void)sig;
    fprintf(stderr, "fuzz_chan: %s did not finish in %s s (a lost wake-up?)\n", current_input,
            getenv("FUZZ_INPUT_TIMEOUT") ? getenv("FUZZ_INPUT_TIMEOUT") : "60");
    fprintf(stderr, "fuzz_chan: the runtime's tasks:\n");
    csp_dump(2);
    print_trace();
    save_input();
    abort();
}

/* FUZZ_TRACE=1 prints every input's trace; FUZZ_ONLY=n runs only the n-th
 * pseudo-random input (to look at one). */
static void run_one(const uint8_t *data, size_t size)
{
    const char *e = getenv("FUZZ_INPUT_TIMEOUT");
    int64_t t0 = csp_now();
    alarm(e ? (unsigned)atoi(e) : 60);
    LLVMFuzzerTestOneInput(data, size);
    alarm(0);
    int64_t ns = csp_now() - t0;
    if (getenv("FUZZ_TRACE")) {
        fprintf(stderr, "fuzz_chan: %s took %.3f ms\n", current_input, ns / 1e6);
        print_trace();
    }
    if (ns > slowest_ns) {
        slowest_ns = ns;
        snprintf(slowest, sizeof slowest, "%s", current_input);
    }
}

/* Keeps the failing input, so the failure can be replayed alone. */
static void save_input(void)
{
    const char *path = getenv("FUZZ_SAVE");
    if (!path)
        path = "fuzz_chan-failure.bin";
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(S.in, 1, S.len, f);
        fclose(f);
    }
    fprintf(stderr, "fuzz_chan: the input was %s; saved as %s (replay: tests/fuzz/fuzz_chan %s)\n",
            current_input, path, path);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_chan: %s: %s\n", path, strerror(errno));
        return -1;
    }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    current_input = path;
    run_one(buf, n);
    return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of the directory, in name order; -1 on errors. */
static int run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, name_cmp);
    if (n < 0) {
        fprintf(stderr, "fuzz_chan: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

#include "../sanitized.h"

int main(int argc, char **argv)
{
    int files = 0;
    signal(SIGALRM, on_alarm);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_chan: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
        if (n < 0)
            return 1;
        files += S_ISDIR(st.st_mode) ? n : 1;
    }
    const char *e = getenv("FUZZ_RANDOM_RUNS");
    long runs = e ? atol(e) : SANITIZED ? 300 : 1000;
    e = getenv("FUZZ_SEED");
    rng_state = e ? strtoull(e, NULL, 0) : UINT64_C(0x5eed5eed5eed5eed);
    if (rng_state == 0)
        rng_state = 1;
    static uint8_t buf[256];
    char name[64];
    const char *only = getenv("FUZZ_ONLY");
    for (long r = 0; r < runs; r++) {
        size_t n = 1 + rng() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rng();
        if (only && r != atol(only))
            continue;
        snprintf(name, sizeof name, "pseudo-random input #%ld", r);
        current_input = name;
        run_one(buf, n);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("fuzz_chan: %d corpus inputs and %ld pseudo-random inputs ran without a model "
           "violation; the slowest took %.1f ms (%s); max RSS %ld KiB\n", files, runs,
           slowest_ns / 1e6, slowest, ru.ru_maxrss);
    return 0;
}
#endif
