/*
 * stress_io.c - I/O that parks under churn and races: connections opened
 * and closed by the thousand (descriptor numbers reused all the time),
 * csp_fd_close racing a parked reader or select, deadlines racing data,
 * and a context's cancellation reaching tasks blocked in I/O.
 *
 * CSP_STRESS_SCALE=k multiplies the iteration counts.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define _mark_point(file, line) ((void)0)   /* see check_chan.c */

#define MS(x) ((int64_t)(x) * 1000000)
#define SEC(x) ((int64_t)(x) * 1000000000)

#include "sanitized.h"

/* errno after a call that may park: see check_netpoll.c. */
__attribute__((noinline)) static int errno_now(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

static int scaled(int n)
{
    const char *s = getenv("CSP_STRESS_SCALE");
    long k = s ? strtol(s, NULL, 10) : 1;
    if (k < 1)
        k = 1;
    return (int)((SANITIZED ? n / 4 : n) * k);
}

static unsigned xorshift(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int listen_tcp(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *addr = (struct sockaddr_in){ .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    ck_assert_int_eq(listen(fd, 4096), 0);
    socklen_t len = sizeof *addr;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- connection churn ------------------------------------------------------------ */

struct churn_env {
    int lfd;
    struct sockaddr_in addr;
    int per_client;
    _Atomic int done_ok, served;
    csp_waitgroup clients, server;
};

struct conn {
    struct churn_env *e;
    int fd;
};

static void churn_serve(void *arg)
{
    struct conn *c = arg;
    char buf[512];
    ssize_t n;
    while ((n = csp_read(c->fd, buf, sizeof buf, csp_deadline(SEC(30)))) > 0)
        if (csp_write(c->fd, buf, (size_t)n, csp_deadline(SEC(30))) != n)
            break;
    csp_fd_close(c->fd);
    atomic_fetch_add(&c->e->served, 1);
    csp_wg_done(&c->e->server);
}

static void churn_accept(void *arg)
{
    struct churn_env *e = arg;
    for (;;) {
        int fd = csp_accept(e->lfd, NULL, NULL, CSP_FOREVER);
        if (fd < 0)
            break;
        csp_wg_add(&e->server, 1);
        struct conn c = { e, fd };
        csp_go_copy(churn_serve, &c, sizeof c);
    }
    csp_wg_done(&e->server);
}

static void churn_client(void *arg)
{
    struct conn *c = arg;
    struct churn_env *e = c->e;
    unsigned seed = (unsigned)c->fd * 2654435761u + 1;
    for (int i = 0; i < e->per_client; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_msg(csp_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                                  csp_deadline(SEC(30))) == 0,
                      "connect: %s", strerror(errno_now()));
        int rounds = 1 + (int)(xorshift(&seed) % 4);
        for (int r = 0; r < rounds; r++) {
            char out[64], in[64];
            int len = snprintf(out, sizeof out, "%d/%d/%d", c->fd, i, r);
            ck_assert_int_eq(csp_write(fd, out, (size_t)len, csp_deadline(SEC(30))), len);
            int got = 0;
            while (got < len) {
                ssize_t k = csp_read(fd, in + got, (size_t)(len - got), csp_deadline(SEC(30)));
                ck_assert_msg(k > 0, "read %zd: %s", k, strerror(errno_now()));
                got += (int)k;
            }
            ck_assert_int_eq(memcmp(in, out, (size_t)len), 0);
        }
        ck_assert_int_eq(csp_fd_close(fd), 0);
        atomic_fetch_add(&e->done_ok, 1);
    }
    csp_wg_done(&e->clients);
}

static void churn_main(void *arg)
{
    (void)arg;
    struct churn_env *e = calloc(1, sizeof *e);
    e->lfd = listen_tcp(&e->addr);
    int clients = 50;
    e->per_client = scaled(200);
    csp_wg_add(&e->server, 1);
    csp_go(churn_accept, e);
    csp_wg_add(&e->clients, clients);
    for (int i = 0; i < clients; i++) {
        struct conn c = { e, i };
        csp_go_copy(churn_client, &c, sizeof c);
    }
    csp_wg_wait(&e->clients);
    ck_assert_int_eq(atomic_load(&e->done_ok), clients * e->per_client);
    csp_fd_close(e->lfd);
    csp_wg_wait(&e->server);
    ck_assert_int_eq(atomic_load(&e->served), clients * e->per_client);
    free(e);
}

/* 50 clients open, use and close 10,000 short connections against a
 * task-per-connection server: descriptor numbers are reused constantly,
 * every echo arrives. */
START_TEST(test_connection_churn)
{
    raise_nofile();
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(churn_main, NULL);
}
END_TEST

/* ---- close racing a parked reader / select ------------------------------------------ */

struct close_race {
    int sv[2];
    int mode;
    ssize_t res;
    int err;
    csp_waitgroup wg;
};

static void close_race_reader(void *arg)
{
    struct close_race *r = arg;
    char c;
    if (r->mode == 0) {
        r->res = csp_read(r->sv[0], &c, 1, csp_deadline(SEC(20)));
        r->err = r->res < 0 ? errno_now() : 0;
    } else if (r->mode == 1) {
        csp_chan *never = csp_chan_make(0, 0);
        csp_case k[2] = { CSP_RECV(never, NULL), CSP_READABLE(r->sv[0]) };
        int i = csp_select(k, 2, csp_deadline(SEC(20)));
        r->res = i;
        r->err = i == 1 ? k[1].err : -i;
        csp_chan_release(never);
    } else {
        r->err = csp_fd_wait(r->sv[0], CSP_IO_READ, csp_deadline(SEC(20)));
        r->res = 0;
    }
    csp_wg_done(&r->wg);
}

static void close_race_main(void *arg)
{
    (void)arg;
    int iters = scaled(3000);
    unsigned seed = 12345;
    for (int i = 0; i < iters; i++) {
        struct close_race r = { .mode = i % 3 };
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, r.sv), 0);
        csp_wg_add(&r.wg, 1);
        csp_go(close_race_reader, &r);
        /* Close before, while or after the reader parks. */
        unsigned d = xorshift(&seed) % 3;
        if (d == 1)
            csp_yield();
        else if (d == 2)
            csp_sleep(1000 * (xorshift(&seed) % 50));
        int64_t t0 = csp_now();
        ck_assert_int_eq(csp_fd_close(r.sv[0]), 0);
        csp_wg_wait(&r.wg);
        ck_assert_msg(csp_now() - t0 < SEC(10), "iteration %d: the close did not wake it", i);
        if (r.mode == 0)
            ck_assert_msg(r.res == -1 && r.err == EBADF, "read %zd errno %d", r.res, r.err);
        else if (r.mode == 1)
            ck_assert_msg(r.res == 1 && r.err == EBADF, "select %zd err %d", r.res, r.err);
        else
            ck_assert_int_eq(r.err, EBADF);
        csp_fd_close(r.sv[1]);
    }
}

/* csp_fd_close racing a reader, a select and a csp_fd_wait at every stage
 * of parking (before, during, after): each wakes with EBADF, none hangs. */
START_TEST(test_close_race)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(close_race_main, NULL);
}
END_TEST

/* ---- deadlines racing data ----------------------------------------------------------- */

struct dl_race {
    int sv[2];
    size_t total;
    _Atomic int writer_done;
};

static void *dl_writer(void *arg)
{
    struct dl_race *r = arg;
    unsigned seed = 99;
    for (size_t i = 0; i < r->total; i++) {
        unsigned char b = (unsigned char)i;
        ck_assert_int_eq(write(r->sv[1], &b, 1), 1);
        if (xorshift(&seed) % 4 == 0) {
            struct timespec ts = { 0, (long)(xorshift(&seed) % 100000) };
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&r->writer_done, 1);
    return NULL;
}

static void dl_race_main(void *arg)
{
    struct dl_race *r = arg;
    unsigned seed = 7;
    size_t got = 0;
    long timeouts = 0;
    while (got < r->total) {
        unsigned char buf[64];
        int64_t dl = csp_deadline((int64_t)(xorshift(&seed) % 100000));
        ssize_t k = csp_read(r->sv[0], buf, sizeof buf, dl);
        if (k < 0) {
            int e = errno_now();
            ck_assert_msg(e == ETIMEDOUT || (e == EAGAIN && dl == 0), "errno %d", e);
            timeouts++;
            continue;
        }
        ck_assert_int_gt(k, 0);
        for (ssize_t j = 0; j < k; j++)
            ck_assert_int_eq(buf[j], (unsigned char)(got + (size_t)j));
        got += (size_t)k;
    }
    ck_assert_uint_eq(got, r->total);
    (void)timeouts;
}

/* Reads with deadlines of 0-100 us racing a writer that trickles bytes:
 * each read returns data or ETIMEDOUT, no byte is lost or reordered. */
START_TEST(test_deadline_race)
{
    struct dl_race r = { .total = (size_t)scaled(20000) };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, r.sv), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, dl_writer, &r), 0);
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(dl_race_main, &r);
    pthread_join(th, NULL);
    csp_fd_close(r.sv[0]);
    csp_fd_close(r.sv[1]);
}
END_TEST

/* ---- cancellation reaching blocked I/O ---------------------------------------------- */

struct cancel_io {
    csp_ctx *ctx;
    int lfd;
    struct sockaddr_in addr;
    _Atomic int handlers, stopped, connected;
    csp_waitgroup wg;
};

struct cio_conn {
    struct cancel_io *e;
    int fd;
};

/* Go's pattern: a connection task selects on its socket and on ctx.Done();
 * when done fires it closes the connection and leaves. */
static void cio_handler(void *arg)
{
    struct cio_conn *c = arg;
    csp_ctx *ctx = c->e->ctx;
    char buf[256];
    for (;;) {
        csp_case k[2] = { CSP_READABLE(c->fd), CSP_RECV(csp_ctx_done(ctx), NULL) };
        int i = csp_select(k, 2, CSP_FOREVER);
        if (i == 1)
            break;
        ssize_t n = csp_read(c->fd, buf, sizeof buf, CSP_NOWAIT);
        if (n == 0 || (n < 0 && errno_now() != EAGAIN))
            break;
        if (n > 0 && csp_write(c->fd, buf, (size_t)n, csp_deadline(SEC(10))) != n)
            break;
    }
    csp_fd_close(c->fd);
    atomic_fetch_add(&c->e->stopped, 1);
    csp_ctx_release(ctx);
    csp_wg_done(&c->e->wg);
}

/* A client that keeps its connection open until the server closes it. */
static void cio_client(void *arg)
{
    struct cancel_io *e = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(csp_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                                 csp_deadline(SEC(30))), 0);
    atomic_fetch_add(&e->connected, 1);
    ck_assert_int_eq(csp_write(fd, "ping", 4, csp_deadline(SEC(30))), 4);
    char buf[8];
    ssize_t n;
    size_t got = 0;
    while ((n = csp_read(fd, buf, sizeof buf, csp_deadline(SEC(30)))) > 0)
        got += (size_t)n;
    ck_assert_int_eq(n, 0);             /* the server closed it */
    ck_assert_uint_eq(got, 4);
    csp_fd_close(fd);
    csp_wg_done(&e->wg);
}

static void cio_acceptor(void *arg)
{
    struct cancel_io *e = arg;
    for (;;) {
        csp_case k[2] = { CSP_READABLE(e->lfd), CSP_RECV(csp_ctx_done(e->ctx), NULL) };
        if (csp_select(k, 2, CSP_FOREVER) == 1)
            break;
        int fd = csp_accept(e->lfd, NULL, NULL, CSP_NOWAIT);
        if (fd < 0)
            continue;
        atomic_fetch_add(&e->handlers, 1);
        csp_wg_add(&e->wg, 1);
        struct cio_conn c = { e, fd };
        csp_ctx_retain(e->ctx);
        csp_go_copy(cio_handler, &c, sizeof c);
    }
    csp_fd_close(e->lfd);
    csp_wg_done(&e->wg);
}

static void cancel_io_main(void *arg)
{
    (void)arg;
    int n = scaled(1000);
    struct cancel_io *e = calloc(1, sizeof *e);
    e->ctx = csp_ctx_with_cancel(csp_ctx_background());
    e->lfd = listen_tcp(&e->addr);
    csp_wg_add(&e->wg, 1 + n);
    csp_go(cio_acceptor, e);
    for (int i = 0; i < n; i++)
        csp_go(cio_client, e);
    while (atomic_load(&e->handlers) < n)
        csp_sleep(MS(5));
    csp_sleep(MS(50));
    ck_assert_int_eq(atomic_load(&e->stopped), 0);
    csp_ctx_cancel(e->ctx);             /* everybody goes home */
    ck_assert_int_eq(csp_wg_wait(&e->wg), 0);
    ck_assert_int_eq(atomic_load(&e->stopped), n);
    csp_ctx_release(e->ctx);
    free(e);
}

/* One cancel stops an accept loop and 1,000 connection tasks parked in
 * selects on their sockets and the context's done channel; each closes
 * its socket, every client sees end of file, every task exits. */
START_TEST(test_cancel_reaches_io)
{
    raise_nofile();
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(cancel_io_main, NULL);
}
END_TEST

static Suite *stress_suite(void)
{
    Suite *s = suite_create("stress_io");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_connection_churn);
    tcase_add_test(tc, test_close_race);
    tcase_add_test(tc, test_deadline_race);
    tcase_add_test(tc, test_cancel_reaches_io);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(stress_suite());
}
