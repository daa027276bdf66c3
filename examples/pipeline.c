/*
 * pipeline.c - Go's "Pipelines and cancellation": gen -> sq (fanned out to
 * two tasks) -> merge (fan-in), stopped early by closing a done channel
 * (part 1) or by cancelling a context whose done channel the stages watch
 * (part 2).
 *
 *   func gen(done <-chan struct{}, nums ...int) <-chan int
 *   func sq(done <-chan struct{}, in <-chan int) <-chan int {
 *       out := make(chan int)
 *       go func() {
 *           defer close(out)
 *           for n := range in {
 *               select {
 *               case out <- n * n:
 *               case <-done:
 *                   return
 *               }
 *           }
 *       }()
 *       return out
 *   }
 *   func merge(done <-chan struct{}, cs ...<-chan int) <-chan int
 *
 * Usage: pipeline [N]   (default 100)
 * Prints the sum of the squares of 1..N computed by the full pipeline, then
 * runs a pipeline over a practically endless input, takes three values,
 * closes done and shows that every stage task has exited.
 *
 * Channel lifetime: every function that starts a task retains each channel
 * the task will use, and the task releases them when it returns; a
 * function that returns a channel hands its own reference to the caller.
 */
#include <csp.h>
#include <stdio.h>
#include <stdlib.h>

CSP_CHAN_TYPE(num_chan, long long);   /* chan int64 */

/* Counts the stage tasks still alive, to show that cancellation stops
 * all of them. */
static csp_waitgroup stages = CSP_WAITGROUP_INIT;

/* out <- v, unless done is closed first.  0 if sent. */
static int send_or_done(num_chan *out, long long v, csp_chan *done)
{
    csp_case cs[2] = { num_chan_case_send(out, &v), CSP_RECV(done, NULL) };
    int i = csp_select(cs, 2, CSP_FOREVER);
    return i == 0 && cs[0].err == 0 ? 0 : -1;
}

/* ---- gen ------------------------------------------------------------------ */

struct gen_env {
    csp_chan *done;
    num_chan *out;
    long long from, to;
};

static void gen_task(void *arg)
{
    struct gen_env *e = arg;
    for (long long n = e->from; n <= e->to; n++)
        if (send_or_done(e->out, n, e->done) != 0)
            break;
    num_chan_close(e->out);               /* defer close(out) */
    num_chan_release(e->out);
    csp_chan_release(e->done);
    csp_wg_done(&stages);
}

static num_chan *gen(csp_chan *done, long long from, long long to)
{
    num_chan *out = num_chan_make(0);
    if (!out)
        return NULL;
    struct gen_env e = { csp_chan_retain(done), num_chan_retain(out), from, to };
    csp_wg_add(&stages, 1);
    csp_go_copy(gen_task, &e, sizeof e);
    return out;                           /* the caller's reference */
}

/* ---- sq ------------------------------------------------------------------- */

struct sq_env {
    csp_chan *done;
    num_chan *in, *out;
};

static void sq_task(void *arg)
{
    struct sq_env *e = arg;
    long long n;
    CSP_RANGE_OF(num_chan, e->in, n)      /* for n := range in */
        if (send_or_done(e->out, n * n, e->done) != 0)
            break;
    num_chan_close(e->out);
    num_chan_release(e->in);
    num_chan_release(e->out);
    csp_chan_release(e->done);
    csp_wg_done(&stages);
}

static num_chan *sq(csp_chan *done, num_chan *in)
{
    num_chan *out = num_chan_make(0);
    if (!out)
        return NULL;
    struct sq_env e = { csp_chan_retain(done), num_chan_retain(in), num_chan_retain(out) };
    csp_wg_add(&stages, 1);
    csp_go_copy(sq_task, &e, sizeof e);
    return out;
}

/* ---- merge ---------------------------------------------------------------- */

/* Shared by merge's tasks; freed by the closer, the last one to use it. */
struct merge_state {
    csp_waitgroup wg;
    num_chan *out;
    csp_chan *done;
};

struct output_env {
    struct merge_state *m;
    num_chan *in, *out;
    csp_chan *done;
};

static void output_task(void *arg)
{
    struct output_env *e = arg;
    long long n;
    CSP_RANGE_OF(num_chan, e->in, n)
        if (send_or_done(e->out, n, e->done) != 0)
            break;
    num_chan_release(e->in);
    num_chan_release(e->out);
    csp_chan_release(e->done);
    csp_wg_done(&e->m->wg);               /* last use of m by this task */
    csp_wg_done(&stages);
}

static void closer_task(void *arg)
{
    struct merge_state *m = arg;
    csp_wg_wait(&m->wg);                  /* every output task finished */
    num_chan_close(m->out);
    num_chan_release(m->out);
    csp_chan_release(m->done);
    free(m);
    csp_wg_done(&stages);
}

static num_chan *merge(csp_chan *done, num_chan **cs, int n)
{
    struct merge_state *m = calloc(1, sizeof *m);
    num_chan *out = num_chan_make(0);
    if (!m || !out) {
        free(m);
        num_chan_release(out);
        return NULL;
    }
    m->out = num_chan_retain(out);
    m->done = csp_chan_retain(done);
    csp_wg_add(&m->wg, n);
    for (int i = 0; i < n; i++) {
        struct output_env e = { m, num_chan_retain(cs[i]), num_chan_retain(out),
                                csp_chan_retain(done) };
        csp_wg_add(&stages, 1);
        csp_go_copy(output_task, &e, sizeof e);
    }
    csp_wg_add(&stages, 1);
    csp_go(closer_task, m);
    return out;
}

/* gen -> two sq -> merge.  The caller keeps done and the result. */
static num_chan *build(csp_chan *done, long long from, long long to)
{
    num_chan *in = gen(done, from, to);
    num_chan *sqs[2] = { sq(done, in), sq(done, in) };   /* fan-out */
    num_chan *out = merge(done, sqs, 2);                  /* fan-in  */
    /* The stages hold their own references: ours can go now. */
    num_chan_release(in);
    num_chan_release(sqs[0]);
    num_chan_release(sqs[1]);
    return out;
}

static void pipeline_main(void *arg)
{
    int n = *(int *)arg;

    /* 1. Run to completion: the sum does not depend on the order in
     *    which the two squarers deliver. */
    csp_chan *done = csp_chan_make(0, 0);
    num_chan *out = build(done, 1, n);
    long long sum = 0, v;
    int count = 0;
    CSP_RANGE_OF(num_chan, out, v) {
        sum += v;
        count++;
    }
    printf("pipeline: %d squares received, sum of squares 1..%d = %lld\n", count, n, sum);
    csp_close(done);
    csp_chan_release(done);
    num_chan_release(out);
    csp_wg_wait(&stages);

    /* 2. Take three values from an endless pipeline, then cancel - with a
     *    context this time: ctx, cancel := context.WithCancel(...); the
     *    stages select on ctx.Done() (each retains the channel). */
    csp_ctx *ctx = csp_ctx_with_cancel(csp_ctx_background());
    done = csp_chan_retain(csp_ctx_done(ctx));
    out = build(done, 1, 1000000000);
    int taken = 0;
    for (; taken < 3; taken++)
        if (num_chan_recv(out, &v) != 0)
            break;
    printf("cancel: took %d values, closing done\n", taken);
    csp_ctx_cancel(ctx);                  /* defer cancel(): closes done */
    csp_wg_wait(&stages);                 /* returns once all have exited */
    csp_ctx_release(ctx);
    printf("cancel: every stage task has exited\n");
    csp_chan_release(done);
    num_chan_release(out);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100;
    if (n < 1 || n > 1000000) {
        fprintf(stderr, "usage: pipeline [N, 1..1000000]\n");
        return 2;
    }
    return csp_run(pipeline_main, &n) == 0 ? 0 : 1;
}
