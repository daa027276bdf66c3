/*
 * timeout.c - Go's "Google Search 3.0" (Rob Pike, "Go Concurrency
 * Patterns", 2012) with contexts: fan a query out to replicated backends,
 * take the first answer, cancel the rest, and never wait past a deadline.
 *
 *   func First(ctx context.Context, query string, replicas ...Search) Result {
 *       ctx, cancel := context.WithTimeout(ctx, perRequest)
 *       defer cancel()                       // the losers stop at once
 *       c := make(chan Result, len(replicas))
 *       for _, r := range replicas { go func(r Search) { c <- r(ctx, query) }(r) }
 *       select {
 *       case r := <-c:     return r
 *       case <-ctx.Done(): return Result{timedOut}
 *       }
 *   }
 *
 *   ctx, cancel := context.WithTimeout(context.Background(), overall)
 *   web, image, video := First(ctx, q, Web1, Web2, Web3), ...   // in parallel
 *
 * Each fake backend "works" for a random time, or stops early when its
 * context is cancelled.  The program prints, per kind, which replica
 * answered and which were cancelled (and why: another one won, or the
 * deadline passed).
 *
 * Usage: timeout [--seed N] [--rounds N] [--max-latency-ms MS]
 *                [--timeout-ms MS] [--deadline-ms MS] [query]
 *        timeout --selftest
 */
#include <csp.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS(x) ((int64_t)(x) * 1000000)
#define KINDS 3
#define REPLICAS 3

static const char *const kind_name[KINDS] = { "web", "image", "video" };

enum outcome { PENDING, ANSWERED, LATE, CANCELLED };

struct replica {
    int kind, index;
    int64_t latency;        /* how long this backend would take          */
    enum outcome outcome;
    int why;                /* for CANCELLED: ECANCELED or ETIMEDOUT      */
};

struct result {
    int replica;            /* -1: no answer in time                     */
    int64_t took;
    int64_t deadline;       /* the request's deadline                    */
    int64_t gave_up;        /* when First stopped waiting, if it did     */
    char text[96];
};

struct fanout {
    const char *query;
    csp_ctx *ctx;           /* per-request context                       */
    csp_chan *results;      /* struct result, one slot per replica       */
    struct replica *rep;
    int64_t start;
    csp_waitgroup wg;
};

struct backend_arg {
    struct fanout *f;
    struct replica *r;
};

/* A fake backend: works for r->latency unless the context ends first. */
static void backend(void *arg)
{
    struct backend_arg *a = arg;
    struct fanout *f = a->f;
    struct replica *r = a->r;
    if (csp_ctx_err(f->ctx)) {
        /* Dead on arrival: a real backend would not start the work. */
        r->outcome = CANCELLED;
        r->why = csp_ctx_err(f->ctx);
        csp_ctx_release(f->ctx);
        csp_wg_done(&f->wg);
        return;
    }
    csp_chan *work = csp_after(r->latency);
    int64_t now;
    csp_case k[2] = { CSP_RECV(work, &now), CSP_RECV(csp_ctx_done(f->ctx), NULL) };
    if (csp_select(k, 2, CSP_FOREVER) == 0) {
        struct result res = { .replica = r->index, .took = now - f->start };
        snprintf(res.text, sizeof res.text, "%s result for \"%s\"", kind_name[r->kind],
                 f->query);
        /* Never blocks: one slot per replica.  Whether it is used is
         * decided by First; we only learn it afterwards. */
        csp_send(f->results, &res);
        r->outcome = LATE;
    } else {
        r->outcome = CANCELLED;
        r->why = csp_ctx_err(f->ctx);
    }
    csp_chan_release(work);
    csp_ctx_release(f->ctx);        /* this task's reference */
    csp_wg_done(&f->wg);
}

/* Go's First: the first replica to answer wins; the others are cancelled.
 * Waits for every replica task to stop, so their outcomes can be shown. */
static struct result first(csp_ctx *parent, const char *query, struct replica *rep,
                           int64_t per_request)
{
    struct fanout f = { .query = query, .rep = rep, .start = csp_now() };
    f.ctx = csp_ctx_with_timeout(parent, per_request);
    f.results = csp_chan_make(sizeof(struct result), REPLICAS);
    csp_wg_add(&f.wg, REPLICAS);
    for (int i = 0; i < REPLICAS; i++) {
        struct backend_arg a = { &f, &rep[i] };
        csp_ctx_retain(f.ctx);
        csp_go_copy(backend, &a, sizeof a);
    }
    struct result res = { .replica = -1 };
    csp_case k[2] = { CSP_RECV(f.results, &res), CSP_RECV(csp_ctx_done(f.ctx), NULL) };
    if (csp_select(k, 2, CSP_FOREVER) == 1) {
        res.replica = -1;
        res.gave_up = csp_now();
        res.took = res.gave_up - f.start;
        snprintf(res.text, sizeof res.text, "%s",
                 csp_ctx_err(f.ctx) == ETIMEDOUT ? "timed out" : "cancelled");
    }
    res.deadline = csp_ctx_deadline(f.ctx);
    csp_ctx_cancel(f.ctx);          /* defer cancel(): stop the losers */
    csp_wg_wait(&f.wg);
    if (res.replica >= 0)
        rep[res.replica].outcome = ANSWERED;
    csp_chan_release(f.results);
    csp_ctx_release(f.ctx);
    return res;
}

/* ---- one search: the three kinds in parallel ------------------------------------------ */

struct search {
    const char *query;
    int64_t per_request, overall;
    unsigned seed;
    struct replica rep[KINDS][REPLICAS];
    struct result res[KINDS];
    csp_ctx *ctx;
    csp_waitgroup wg;
};

struct kind_arg {
    struct search *s;
    int kind;
};

static void search_kind(void *arg)
{
    struct kind_arg *a = arg;
    struct search *s = a->s;
    s->res[a->kind] = first(s->ctx, s->query, s->rep[a->kind], s->per_request);
    csp_wg_done(&s->wg);
}

static unsigned next_rand(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 8) & 0xffffff;
}

/* Runs one search; latencies drawn uniformly from [0, max_latency). */
static void google(struct search *s, int64_t max_latency)
{
    for (int k = 0; k < KINDS; k++)
        for (int i = 0; i < REPLICAS; i++)
            s->rep[k][i] = (struct replica){
                .kind = k, .index = i,
                .latency = max_latency >= 1000
                               ? (int64_t)(next_rand(&s->seed) % (unsigned)(max_latency / 1000)) * 1000
                               : 0,
            };
    s->ctx = csp_ctx_with_timeout(csp_ctx_background(), s->overall);
    csp_wg_add(&s->wg, KINDS);
    for (int k = 0; k < KINDS; k++) {
        struct kind_arg a = { s, k };
        csp_go_copy(search_kind, &a, sizeof a);
    }
    csp_wg_wait(&s->wg);
    csp_ctx_release(s->ctx);
}

static void print_search(const struct search *s)
{
    for (int k = 0; k < KINDS; k++) {
        const struct result *r = &s->res[k];
        if (r->replica >= 0)
            printf("  %-5s replica %d answered in %lld ms: %s\n", kind_name[k], r->replica,
                   (long long)(r->took / 1000000), r->text);
        else
            printf("  %-5s no answer: %s after %lld ms\n", kind_name[k], r->text,
                   (long long)(r->took / 1000000));
        for (int i = 0; i < REPLICAS; i++) {
            const struct replica *p = &s->rep[k][i];
            if (p->outcome == ANSWERED)
                continue;
            printf("        replica %d (would take %3lld ms): %s\n", i,
                   (long long)(p->latency / 1000000),
                   p->outcome == LATE ? "answered, too late"
                   : p->why == ETIMEDOUT ? "cancelled: deadline passed"
                                         : "cancelled: another replica won");
        }
    }
}

/* ---- the program --------------------------------------------------------------------------- */

struct options {
    unsigned seed;
    int rounds;
    int64_t max_latency, per_request, overall;
    const char *query;
    int status;
};

static void demo_main(void *arg)
{
    struct options *o = arg;
    for (int round = 0; round < o->rounds; round++) {
        unsigned seed = o->seed + (unsigned)round;
        struct search s = { .query = o->query, .per_request = o->per_request,
                            .overall = o->overall, .seed = seed };
        int64_t t0 = csp_now();
        google(&s, o->max_latency);
        printf("search \"%s\" (seed %u) took %lld ms:\n", s.query, seed,
               (long long)((csp_now() - t0) / 1000000));
        print_search(&s);
    }
}

/* ---- --selftest ------------------------------------------------------------------------------ */

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "timeout selftest: FAILED: " __VA_ARGS__);         \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* Invariants that hold whatever the timing. */
static void check_search(const struct search *s, int64_t elapsed)
{
    for (int k = 0; k < KINDS; k++) {
        const struct result *r = &s->res[k];
        int answered = 0;
        for (int i = 0; i < REPLICAS; i++) {
            const struct replica *p = &s->rep[k][i];
            CHECK(p->outcome != PENDING, "%s replica %d never finished", kind_name[k], i);
            answered += p->outcome == ANSWERED;
            if (p->outcome == CANCELLED)
                CHECK(p->why == ECANCELED || p->why == ETIMEDOUT, "cancelled with err %d",
                      p->why);
        }
        if (r->replica >= 0) {
            CHECK(answered == 1, "%s: %d winners", kind_name[k], answered);
            /* A winner only comes from a replica that finished working. */
            CHECK(r->took >= s->rep[k][r->replica].latency, "%s: answer before its latency",
                  kind_name[k]);
        } else {
            CHECK(answered == 0, "%s: a winner without an answer", kind_name[k]);
            /* No answer: the deadline passed, never a plain cancel. */
            for (int i = 0; i < REPLICAS; i++)
                if (s->rep[k][i].outcome == CANCELLED)
                    CHECK(s->rep[k][i].why == ETIMEDOUT, "%s: no answer but ECANCELED",
                          kind_name[k]);
            CHECK(r->gave_up >= r->deadline, "%s: gave up %lld ns before its deadline",
                  kind_name[k], (long long)(r->deadline - r->gave_up));
        }
    }
    CHECK(elapsed < s->overall + MS(5000), "the search overran its deadline by far");
}

static int count_live_tasks(void)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    csp_dump(p[1]);
    close(p[1]);
    char buf[8192];
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    int lines = 0;
    for (char *q = buf; *q; q = strchr(q, '\n') ? strchr(q, '\n') + 1 : q + strlen(q))
        if (*q >= '0' && *q <= '9')
            lines++;
    return lines;
}

static void selftest_main(void *arg)
{
    struct options *o = arg;
    int answered = 0, timedout = 0, cancelled = 0, late = 0;
    /* Random rounds: latencies 0-100 ms, 60 ms per request, 80 overall. */
    for (int round = 0; round < 40; round++) {
        struct search s = { .query = "golang", .per_request = MS(60), .overall = MS(80),
                            .seed = 1000u + (unsigned)round };
        int64_t t0 = csp_now();
        google(&s, MS(100));
        check_search(&s, csp_now() - t0);
        if (round == 0) {
            printf("timeout selftest: a sample search:\n");
            print_search(&s);
        }
        for (int k = 0; k < KINDS; k++) {
            answered += s.res[k].replica >= 0;
            timedout += s.res[k].replica < 0;
            for (int i = 0; i < REPLICAS; i++) {
                cancelled += s.rep[k][i].outcome == CANCELLED;
                late += s.rep[k][i].outcome == LATE;
            }
        }
    }
    /* Generous deadlines: every kind is answered, the others cancelled
     * because another replica won. */
    struct search s = { .query = "easy", .per_request = MS(10000), .overall = MS(20000), .seed = 7 };
    google(&s, MS(20));
    check_search(&s, 0);
    for (int k = 0; k < KINDS; k++) {
        CHECK(s.res[k].replica >= 0, "easy search: %s not answered", kind_name[k]);
        for (int i = 0; i < REPLICAS; i++)
            if (s.rep[k][i].outcome == CANCELLED)
                CHECK(s.rep[k][i].why == ECANCELED, "easy search: cancelled with %d",
                      s.rep[k][i].why);
    }
    /* An overall deadline already past: nothing answers, all cancelled. */
    s = (struct search){ .query = "late", .per_request = MS(10000), .overall = 0, .seed = 9 };
    google(&s, MS(50));
    check_search(&s, 0);
    for (int k = 0; k < KINDS; k++) {
        CHECK(s.res[k].replica < 0, "expired search: %s answered", kind_name[k]);
        for (int i = 0; i < REPLICAS; i++)
            CHECK(s.rep[k][i].outcome == CANCELLED && s.rep[k][i].why == ETIMEDOUT,
                  "expired search: %s replica %d not cancelled by the deadline", kind_name[k], i);
    }
    /* Every replica task has exited: the dump shows only this task.  (A
     * replica that has just said it is done may still be returning from
     * its function: give stragglers a moment.) */
    int live = count_live_tasks();
    for (int i = 0; i < 100 && live != 1; i++) {
        csp_sleep(MS(10));
        live = count_live_tasks();
    }
    CHECK(live == 1, "%d live tasks after the searches, want 1", live);
    printf("timeout selftest: 42 searches: %d answers, %d timeouts, %d replicas cancelled, "
           "%d answered too late\n", answered, timedout, cancelled, late);
    CHECK(answered > 0 && timedout > 0, "the random rounds never answered or never timed out");
    o->status = failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o = { .seed = (unsigned)getpid(), .rounds = 1, .max_latency = MS(100),
                         .per_request = MS(60), .overall = MS(80), .query = "golang" };
    bool selftest = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--selftest"))
            selftest = true;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            o.seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            o.rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-latency-ms") && i + 1 < argc)
            o.max_latency = MS(atol(argv[++i]));
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            o.per_request = MS(atol(argv[++i]));
        else if (!strcmp(argv[i], "--deadline-ms") && i + 1 < argc)
            o.overall = MS(atol(argv[++i]));
        else if (argv[i][0] != '-')
            o.query = argv[i];
        else {
            fprintf(stderr, "usage: timeout [--seed N] [--rounds N] [--max-latency-ms MS] "
                            "[--timeout-ms MS] [--deadline-ms MS] [query] | --selftest\n");
            return 2;
        }
    }
    int r = csp_run(selftest ? selftest_main : demo_main, &o);
    if (r != 0) {
        fprintf(stderr, "timeout: csp_run: %s\n", strerror(r));
        return 1;
    }
    if (selftest && o.status == 0)
        printf("timeout selftest: ok\n");
    return o.status;
}
