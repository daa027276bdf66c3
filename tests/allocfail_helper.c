/*
 * allocfail_helper.c - one public call sequence, run with CSP_FAIL_ALLOC=n
 * set by tests/check_allocfail.sh so that the n-th allocation inside the
 * library fails.  Every call must then report ENOMEM (or NULL with errno
 * ENOMEM) and leave the library usable: the helper retries the call that
 * failed and it must succeed (only the n-th allocation fails).  Under
 * LeakSanitizer any leak on those paths fails the run.
 *
 * Exit: 0 the sequence ran with no allocation failing (n is past its
 * last allocation), 3 an allocation failed and was reported cleanly,
 * 1 anything else (a wrong error, a crash, a failed retry).
 */
#include <csp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int saw_enomem;

static void bad(const char *what, int err)
{
    fprintf(stderr, "allocfail: %s: %s\n", what, strerror(err));
    exit(1);
}

/* err-returning call: on ENOMEM, retry once and require success. */
#define TRY(expr)                                                           \
    do {                                                                    \
        int e_ = (expr);                                                    \
        if (e_ == ENOMEM) {                                                 \
            saw_enomem = 1;                                                 \
            e_ = (expr);                                                    \
        }                                                                   \
        if (e_)                                                             \
            bad(#expr, e_);                                                 \
    } while (0)

/* pointer-returning call: NULL + ENOMEM, retry once.  errno is read with
 * csp_errno(): in a task that parked earlier in this function, plain
 * errno may name the errno of the worker thread it ran on before. */
#define TRYP(var, expr)                                                     \
    do {                                                                    \
        var = (expr);                                                       \
        if (!var && csp_errno() == ENOMEM) {                                \
            saw_enomem = 1;                                                 \
            var = (expr);                                                   \
        }                                                                   \
        if (!var)                                                           \
            bad(#expr, csp_errno());                                        \
    } while (0)

static csp_waitgroup wg;
static void nop(void *arg) { (void)arg; csp_wg_done(&wg); }

static void seq_chan(void)
{
    csp_chan *c;
    TRYP(c, csp_chan_make(sizeof(long), 16));
    long v = 1;
    for (int i = 0; i < 16; i++)
        TRY(csp_send(c, &v));
    TRY(csp_try_send(c, &v) == EAGAIN ? 0 : EINVAL);
    for (int i = 0; i < 16; i++)
        TRY(csp_recv(c, &v));
    csp_chan_release(c);
}

static void seq_select(void)
{
    enum { N = 40 };   /* more cases than fit the stack buffers */
    csp_chan *c[N];
    csp_case k[N];
    long v;
    for (int i = 0; i < N; i++) {
        TRYP(c[i], csp_chan_make(sizeof(long), 1));
        k[i] = CSP_RECV(c[i], &v);
    }
    int r = csp_select(k, N, CSP_NOWAIT);
    if (r == -ENOMEM) {
        saw_enomem = 1;
        r = csp_select(k, N, CSP_NOWAIT);
    }
    if (r != -EAGAIN)
        bad("csp_select", r < 0 ? -r : 0);
    for (int i = 0; i < N; i++)
        csp_chan_release(c[i]);
}

static void seq_go(void)
{
    char big[64 * 1024];        /* larger than a quarter stack: heap copy */
    memset(big, 7, sizeof big);
    csp_wg_add(&wg, 3);
    TRY(csp_go(nop, NULL));
    TRY(csp_go_copy(nop, big, 16));
    TRY(csp_go_copy(nop, big, sizeof big));
    TRY(csp_wg_wait(&wg));
}

static void seq_timers(void)
{
    csp_chan *a, *t;
    TRYP(a, csp_after(1000000));
    int64_t when;
    TRY(csp_recv(a, &when));
    csp_chan_release(a);
    TRYP(t, csp_tick(1000000));
    TRY(csp_recv(t, &when));
    TRY(csp_tick_stop(t));
    csp_chan_release(t);
}

static void seq_ctx(void)
{
    csp_ctx *p, *c, *d;
    TRYP(p, csp_ctx_with_cancel(csp_ctx_background()));
    TRYP(c, csp_ctx_with_cancel(p));
    TRYP(d, csp_ctx_with_timeout(c, 1000000000));
    csp_chan *done;
    TRYP(done, csp_ctx_done(d));
    csp_ctx_cancel(p);
    TRY(csp_recv(done, NULL) == EPIPE ? 0 : EINVAL);
    csp_ctx_release(d);
    csp_ctx_release(c);
    csp_ctx_release(p);
}

static void (*seq)(void);
static void main_task(void *arg) { (void)arg; seq(); }

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *s = argv[1];
    seq = !strcmp(s, "chan") ? seq_chan : !strcmp(s, "select") ? seq_select
        : !strcmp(s, "go") ? seq_go : !strcmp(s, "timers") ? seq_timers
        : !strcmp(s, "ctx") ? seq_ctx : NULL;
    if (!seq)
        return 2;
    /* From a plain thread first (no runtime), then as a task. */
    if (seq != seq_go)
        seq();
    int r = csp_start(NULL);
    if (r == ENOMEM) {
        saw_enomem = 1;
        r = csp_start(NULL);
    }
    if (r)
        bad("csp_start", r);
    r = csp_run(main_task, NULL);
    if (r == ENOMEM) {
        saw_enomem = 1;
        r = csp_run(main_task, NULL);
    }
    if (r)
        bad("csp_run", r);
    return saw_enomem ? 3 : 0;
}
