/*
 * workers.c - a worker pool: jobs and results channels, a WaitGroup that
 * closes results when the last worker is done, and a timeout with
 * csp_after (Go's time.After) that gives up on a job that hangs.
 *
 *   func worker(id int, jobs <-chan int, results chan<- int, quit <-chan struct{}) {
 *       for j := range jobs {
 *           select {
 *           case results <- work(j):
 *           case <-quit:
 *               return
 *           }
 *       }
 *   }
 *   ...
 *   select {
 *   case r := <-results:
 *   case <-time.After(100 * time.Millisecond):
 *       fmt.Println("timed out")
 *   }
 *
 * Usage: workers [NWORKERS [NJOBS]]   (default 3 workers, 9 jobs)
 * Prints each job's result in job order, then submits a job that never
 * finishes, times out waiting for it, cancels the pool and shows that
 * every worker stopped.
 */
#include <csp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define MS 1000000LL                      /* nanoseconds */
#define HANG (-1)                         /* a job that never finishes */

struct job { int id, n; };
struct result { int id; long long value; };

struct worker_env {
    int id;
    csp_chan *jobs, *results, *quit;
    csp_waitgroup *wg;
};

/* The "work": the n-th Fibonacci number, slowly, plus a short nap. */
static long long fib(int n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void worker(void *arg)
{
    struct worker_env *e = arg;
    struct job j;
    CSP_RANGE(e->jobs, j) {
        struct result r = { j.id, 0 };
        if (j.n == HANG) {
            /* Stuck until the pool is cancelled (or an hour passes). */
            csp_chan *never = csp_after(3600 * 1000 * MS);
            csp_case wait[2] = { CSP_RECV(never, NULL), CSP_RECV(e->quit, NULL) };
            int i = csp_select(wait, 2, CSP_FOREVER);
            csp_chan_release(never);
            if (i == 1)
                break;
        } else {
            csp_sleep(2 * MS);
            r.value = fib(j.n);
        }
        csp_case out[2] = { CSP_SEND(e->results, &r), CSP_RECV(e->quit, NULL) };
        if (csp_select(out, 2, CSP_FOREVER) != 0 || out[0].err)
            break;
    }
    csp_chan_release(e->jobs);
    csp_chan_release(e->results);
    csp_chan_release(e->quit);
    csp_wg_done(e->wg);
}

struct closer_env {
    csp_waitgroup *wg;
    csp_chan *results;
};

/* Closes results once every worker has returned. */
static void closer(void *arg)
{
    struct closer_env *e = arg;
    csp_wg_wait(e->wg);
    csp_close(e->results);
    csp_chan_release(e->results);
}

/* r := <-results, or ETIMEDOUT after ms milliseconds, or EPIPE. */
static int result_within(csp_chan *results, struct result *r, long long ms)
{
    csp_chan *timeout = csp_after(ms * MS);
    if (!timeout)
        return ENOMEM;
    csp_case cs[2] = { CSP_RECV(results, r), CSP_RECV(timeout, NULL) };
    int i = csp_select(cs, 2, CSP_FOREVER);
    csp_chan_release(timeout);            /* fired or not: ours to drop */
    if (i == 0)
        return cs[0].err;                 /* 0, or EPIPE: no more results */
    return ETIMEDOUT;
}

struct params { int nworkers, njobs; };

static void workers_main(void *arg)
{
    struct params *p = arg;
    csp_chan *jobs = csp_chan_make(sizeof(struct job), (size_t)p->njobs + 1);
    csp_chan *results = csp_chan_make(sizeof(struct result), (size_t)p->njobs);
    csp_chan *quit = csp_chan_make(0, 0);
    csp_waitgroup *wg = calloc(1, sizeof *wg);
    long long *value = calloc((size_t)p->njobs + 1, sizeof *value);
    if (!jobs || !results || !quit || !wg || !value) {
        fprintf(stderr, "workers: out of memory\n");
        exit(1);
    }

    for (int w = 1; w <= p->nworkers; w++) {
        struct worker_env e = { w, csp_chan_retain(jobs), csp_chan_retain(results),
                                csp_chan_retain(quit), wg };
        csp_wg_add(wg, 1);
        csp_go_copy(worker, &e, sizeof e);
    }
    struct closer_env ce = { wg, csp_chan_retain(results) };
    csp_go_copy(closer, &ce, sizeof ce);

    /* 1. Every job finishes: collect one result per job. */
    for (int id = 1; id <= p->njobs; id++) {
        struct job j = { id, 10 + id % 15 };
        csp_send(jobs, &j);
    }
    int got = 0;
    while (got < p->njobs) {
        struct result r;
        int err = result_within(results, &r, 10000);
        if (err) {
            printf("pool: stopped waiting after %d results (%s)\n", got,
                   err == ETIMEDOUT ? "timeout" : "closed");
            break;
        }
        value[r.id] = r.value;
        got++;
    }
    for (int id = 1; id <= got; id++)
        printf("job %d: fib(%d) = %lld\n", id, 10 + id % 15, value[id]);
    printf("pool: %d jobs done by %d workers\n", got, p->nworkers);

    /* 2. A job that hangs: time out, then cancel the whole pool. */
    struct job stuck = { p->njobs + 1, HANG };
    csp_send(jobs, &stuck);
    struct result r;
    if (result_within(results, &r, 100) == ETIMEDOUT)
        printf("job %d: no result within 100 ms, cancelling the pool\n", stuck.id);
    csp_close(quit);                      /* every worker sees it */
    csp_close(jobs);
    csp_wg_wait(wg);
    printf("pool: all %d workers stopped\n", p->nworkers);

    /* The closer closes results after the wait above too; draining to the
     * close means it has finished with the WaitGroup, so it can be freed. */
    while (csp_recv(results, &r) == 0)
        ;
    csp_chan_release(jobs);
    csp_chan_release(results);
    csp_chan_release(quit);
    free(value);
    free(wg);
}

int main(int argc, char **argv)
{
    struct params p = { argc > 1 ? atoi(argv[1]) : 3, argc > 2 ? atoi(argv[2]) : 9 };
    if (p.nworkers < 1 || p.njobs < 1 || p.njobs > 100000) {
        fprintf(stderr, "usage: workers [NWORKERS>0 [NJOBS 1..100000]]\n");
        return 2;
    }
    return csp_run(workers_main, &p) == 0 ? 0 : 1;
}
