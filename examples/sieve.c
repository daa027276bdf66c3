/*
 * sieve.c - Go's concurrent prime sieve, one task per prime.
 *
 *   func generate(ch chan<- int) { for i := 2; ; i++ { ch <- i } }
 *   func filter(in <-chan int, out chan<- int, prime int) {
 *       for { i := <-in; if i%prime != 0 { out <- i } }
 *   }
 *
 * Usage: sieve [N]   prints the first N primes (default 20), one per line.
 * Every stage owns a reference to the channels it uses; closing the
 * generator's output makes the whole chain unwind, so the program ends
 * with no task left.
 */
#include <csp.h>
#include <stdio.h>
#include <stdlib.h>

struct filter_env {
    csp_chan *in, *out;
    int prime;
};

static void generate(void *arg)
{
    csp_chan *ch = arg;
    for (int i = 2;; i++)
        if (csp_send(ch, &i) != 0)
            break;                  /* the consumer closed: stop */
    csp_chan_release(ch);
}

static void filter(void *arg)
{
    struct filter_env *e = arg;
    int i;
    while (csp_recv(e->in, &i) == 0) {
        if (i % e->prime != 0 && csp_send(e->out, &i) != 0)
            break;
    }
    /* Tell upstream to stop, downstream that nothing more comes. */
    csp_close(e->in);
    csp_close(e->out);
    csp_chan_release(e->in);
    csp_chan_release(e->out);
}

static void sieve_main(void *arg)
{
    int n = *(int *)arg;
    csp_chan *ch = csp_chan_make(sizeof(int), 0);
    csp_go(generate, csp_chan_retain(ch));
    for (int k = 0; k < n; k++) {
        int prime;
        if (csp_recv(ch, &prime) != 0)
            break;
        printf("%d\n", prime);
        csp_chan *next = csp_chan_make(sizeof(int), 0);
        struct filter_env e = { csp_chan_retain(ch), csp_chan_retain(next), prime };
        csp_go_copy(filter, &e, sizeof e);
        csp_chan_release(ch);
        ch = next;
    }
    csp_close(ch);                  /* unwinds the chain from the end */
    csp_chan_release(ch);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    if (n < 1) {
        fprintf(stderr, "usage: sieve [N>0]\n");
        return 2;
    }
    return csp_run(sieve_main, &n) == 0 ? 0 : 1;
}
