/*
 * ratelimit.c - rate limiting with a ticker, as in "Go by Example: Rate
 * Limiting": first one request per tick, then a limiter that allows
 * bursts of up to three requests while keeping the same average rate.
 *
 *   limiter := time.Tick(20 * time.Millisecond)
 *   for req := range requests {
 *       <-limiter
 *       fmt.Println("request", req)
 *   }
 *
 *   burstyLimiter := make(chan time.Time, 3)
 *   for i := 0; i < 3; i++ { burstyLimiter <- time.Now() }
 *   go func() {
 *       for t := range time.Tick(20 * time.Millisecond) { burstyLimiter <- t }
 *   }()
 *   for req := range burstyRequests {
 *       <-burstyLimiter
 *       fmt.Println("request", req)
 *   }
 *
 * Usage: ratelimit [PERIOD_MS]   (default 20)
 * Prints each request as it is served and checks the limiter's promise,
 * that n requests never take less than the ticks they must wait for
 * (a lower bound only: a busy machine may always be slower).
 */
#include <csp.h>
#include <stdio.h>
#include <stdlib.h>

#define MS 1000000LL
#define NREQ 5
#define BURST 3

static int64_t period;

/* requests := make(chan int, NREQ), filled and closed. */
static csp_chan *make_requests(void)
{
    csp_chan *requests = csp_chan_make(sizeof(int), NREQ);
    if (!requests)
        exit(1);
    for (int i = 1; i <= NREQ; i++)
        csp_send(requests, &i);
    csp_close(requests);
    return requests;
}

static void report(const char *what, int64_t start, int waits)
{
    int64_t took = csp_now() - start;
    printf("%s: %d requests, none served before its tick: %s\n", what, NREQ,
           took >= waits * period ? "ok" : "TOO FAST");
}

/* Refills the bursty limiter from a ticker until quit is closed. */
struct refill_env {
    csp_chan *ticker, *limiter, *quit;
};

static void refill(void *arg)
{
    struct refill_env *e = arg;
    for (;;) {
        int64_t t;
        csp_case tick[2] = { CSP_RECV(e->ticker, &t), CSP_RECV(e->quit, NULL) };
        if (csp_select(tick, 2, CSP_FOREVER) != 0)
            break;
        csp_case put[2] = { CSP_SEND(e->limiter, &t), CSP_RECV(e->quit, NULL) };
        if (csp_select(put, 2, CSP_FOREVER) != 0)
            break;
    }
    csp_tick_stop(e->ticker);             /* this task owns the ticker */
    csp_chan_release(e->ticker);
    csp_chan_release(e->limiter);
    csp_chan_release(e->quit);
}

static void ratelimit_main(void *arg)
{
    (void)arg;
    int req;

    /* 1. One request per tick. */
    csp_chan *requests = make_requests();
    int64_t start = csp_now();            /* before the ticker starts */
    csp_chan *limiter = csp_tick(period);
    if (!limiter)
        exit(1);
    CSP_RANGE(requests, req) {
        int64_t t;
        csp_recv(limiter, &t);            /* <-limiter */
        printf("request %d\n", req);
    }
    report("steady", start, NREQ);
    csp_tick_stop(limiter);
    csp_chan_release(limiter);
    csp_chan_release(requests);

    /* 2. Bursts of up to BURST, then one per tick. */
    csp_chan *bursty = csp_chan_make(sizeof(int64_t), BURST);
    csp_chan *quit = csp_chan_make(0, 0);
    if (!bursty || !quit)
        exit(1);
    for (int i = 0; i < BURST; i++) {
        int64_t now = csp_now();
        csp_send(bursty, &now);
    }
    requests = make_requests();
    start = csp_now();
    struct refill_env e = { csp_tick(period), csp_chan_retain(bursty), csp_chan_retain(quit) };
    if (!e.ticker)
        exit(1);
    csp_go_copy(refill, &e, sizeof e);    /* e's references move to the task */
    CSP_RANGE(requests, req) {
        int64_t t;
        csp_recv(bursty, &t);             /* <-burstyLimiter */
        printf("bursty request %d\n", req);
    }
    report("bursty", start, NREQ - BURST);
    csp_close(quit);                      /* stop the refiller */
    csp_chan_release(quit);
    csp_chan_release(bursty);
    csp_chan_release(requests);
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 20;
    if (ms < 1 || ms > 10000) {
        fprintf(stderr, "usage: ratelimit [PERIOD_MS 1..10000]\n");
        return 2;
    }
    period = ms * MS;
    return csp_run(ratelimit_main, NULL) == 0 ? 0 : 1;
}
