/*
 * pubsub.c - publish/subscribe fan-out where a slow subscriber cannot slow
 * down the publisher: each delivery is a select with a default branch, and
 * a subscriber whose inbox is full is dropped (its channel is closed, so it
 * learns that it was dropped once it has read what it got).
 *
 *   for _, s := range subs {
 *       select {
 *       case s.inbox <- msg:
 *       default:                       // inbox full: too slow, drop it
 *           close(s.inbox)
 *           delete(subs, s)
 *       }
 *   }
 *
 * Usage: pubsub [NMSG]   (default 10)
 * Three subscribers: "alice" and "bob" (who pauses 1 ms per message) keep
 * up, as their inboxes have room for every message (so the output is the
 * same on every run); "carol" is stuck until the publisher has finished,
 * so her inbox of 3 fills and she is dropped at message 4.  Prints what the publisher did, then what each
 * subscriber received, in a fixed order.
 */
#include <csp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct msg { int seq; };

struct sub {
    const char *name;
    csp_chan *inbox;                      /* chan msg, buffered */
    csp_chan *gate;                       /* closed when it may start reading */
    int pause_ms;                         /* a pause after each message */
    /* filled in by the subscriber task: */
    int received, first, last;
    int in_order;
};

/* ---- a subscriber ---------------------------------------------------------- */

static csp_waitgroup subs_done = CSP_WAITGROUP_INIT;

static void subscriber(void *arg)
{
    struct sub *s = arg;
    if (s->gate)
        csp_recv(s->gate, NULL);          /* stuck until the gate opens */
    struct msg m;
    s->in_order = 1;
    CSP_RANGE(s->inbox, m) {              /* until the publisher closes it */
        if (s->received == 0)
            s->first = m.seq;
        else if (m.seq != s->last + 1)
            s->in_order = 0;
        s->last = m.seq;
        s->received++;
        if (s->pause_ms)
            csp_sleep(s->pause_ms * 1000000LL);
    }
    csp_chan_release(s->inbox);
    csp_chan_release(s->gate);
    csp_wg_done(&subs_done);
}

/* ---- the publisher --------------------------------------------------------- */

struct pub_env {
    struct sub **subs;                    /* each entry holds an inbox reference */
    int nsubs, nmsg;
};

static void publisher(void *arg)
{
    struct pub_env *e = arg;
    int live = e->nsubs;
    for (int seq = 1; seq <= e->nmsg; seq++) {
        struct msg m = { seq };
        for (int i = 0; i < e->nsubs; i++) {
            struct sub *s = e->subs[i];
            if (!s)
                continue;
            csp_case c = CSP_SEND(s->inbox, &m);
            if (csp_select(&c, 1, CSP_NOWAIT) == -EAGAIN) {   /* default: */
                printf("publisher: %s is too slow, dropped at message %d\n", s->name, seq);
                csp_close(s->inbox);
                csp_chan_release(s->inbox);
                e->subs[i] = NULL;
                live--;
            }
        }
    }
    printf("publisher: %d messages published, %d of %d subscribers kept up\n", e->nmsg, live,
           e->nsubs);
    for (int i = 0; i < e->nsubs; i++) {
        if (e->subs[i]) {
            csp_close(e->subs[i]->inbox);  /* no more messages */
            csp_chan_release(e->subs[i]->inbox);
        }
    }
}

static void pubsub_main(void *arg)
{
    int nmsg = *(int *)arg;
    csp_chan *gate = csp_chan_make(0, 0);
    struct sub subs[3] = {
        { "alice", csp_chan_make(sizeof(struct msg), (size_t)nmsg), NULL, 0, 0, 0, 0, 0 },
        { "bob", csp_chan_make(sizeof(struct msg), (size_t)nmsg), NULL, 1, 0, 0, 0, 0 },
        { "carol", csp_chan_make(sizeof(struct msg), 3), gate, 0, 0, 0, 0, 0 },
    };
    struct sub *table[3];
    for (int i = 0; i < 3; i++) {
        if (!subs[i].inbox || !gate) {
            fprintf(stderr, "pubsub: out of memory\n");
            exit(1);
        }
        csp_chan_retain(subs[i].inbox);   /* the subscriber's reference */
        csp_chan_retain(subs[i].gate);    /* NULL: no-op */
        csp_wg_add(&subs_done, 1);
        csp_go(subscriber, &subs[i]);
        table[i] = &subs[i];              /* keeps our first reference:  */
    }                                     /* the publisher will drop it  */

    struct pub_env pe = { table, 3, nmsg };
    publisher(&pe);                       /* here, to know when it is done */

    csp_close(gate);                      /* carol wakes up at last */
    csp_chan_release(gate);
    csp_wg_wait(&subs_done);
    for (int i = 0; i < 3; i++) {
        struct sub *s = &subs[i];
        if (s->received)
            printf("%s: received %d messages (%d..%d%s), then the inbox was closed\n",
                   s->name, s->received, s->first, s->last, s->in_order ? ", in order" : "");
        else
            printf("%s: received nothing\n", s->name);
    }
}

int main(int argc, char **argv)
{
    int nmsg = argc > 1 ? atoi(argv[1]) : 10;
    if (nmsg < 4 || nmsg > 100000) {
        fprintf(stderr, "usage: pubsub [NMSG 4..100000]\n");
        return 2;
    }
    return csp_run(pubsub_main, &nmsg) == 0 ? 0 : 1;
}
