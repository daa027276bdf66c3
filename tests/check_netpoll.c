/*
 * check_netpoll.c - I/O that parks: csp_read, csp_write, csp_accept,
 * csp_connect, csp_fd_wait, csp_fd_close and the CSP_READABLE /
 * CSP_WRITABLE select cases, from tasks and plain threads.
 *
 * Timing: deadlines are checked strictly from below (a call never returns
 * ETIMEDOUT before its deadline) and loosely from above (seconds).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A passing Check assertion reports its location through a pipe under a
 * global lock: a system call per assertion in hot loops, and added
 * synchronisation that would hide races from ThreadSanitizer.  Passing
 * assertions do nothing here; failing ones still report and end the test. */
#define _mark_point(file, line) ((void)0)

#define MS(x) ((int64_t)(x) * 1000000)
#define SEC(x) ((int64_t)(x) * 1000000000)

/* errno as the calling thread sees it now.  A task may resume on another
 * worker after a call that parks, and glibc declares __errno_location()
 * const, so a compiler may read a plain `errno` after such a call through
 * the address it computed before it: the previous thread's errno.  The
 * tests read errno through this after every call that may park. */
__attribute__((noinline)) static int errno_now(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

/* ---- helpers ------------------------------------------------------------ */

static void sockpair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Shrinks the socket buffers so that writes block early. */
static void small_buffers(int sv[2])
{
    int sz = 4096;
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
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

/* A loopback address on which nobody listens. */
static struct sockaddr_in closed_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);           /* bound, never listened: connecting is refused */
    return a;
}

/* Raises RLIMIT_NOFILE's soft limit to its hard limit (and the hard limit
 * too when privileged); returns how many descriptors may be open. */
static rlim_t raise_nofile(rlim_t want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        struct rlimit up = { want, want };
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return want;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

static unsigned stress_scale(void)
{
    const char *s = getenv("CSP_STRESS_SCALE");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 1 ? (unsigned)v : 1;
}

/* Reads exactly n bytes (a loop of csp_read). */
static ssize_t read_full(int fd, void *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = csp_read(fd, (char *)buf + got, n - got, deadline);
        if (r <= 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

/* ---- a blocked read does not block the worker ----------------------------- */

struct park_env {
    int rd[2], acc, wr[2], sel[2];
    _Atomic int ran, io_done;
    csp_waitgroup others, io;
};

static void pk_reader(void *arg)
{
    struct park_env *e = arg;
    char c = 0;
    ck_assert_int_eq(csp_read(e->rd[0], &c, 1, CSP_FOREVER), 1);
    ck_assert_int_eq(c, 'r');
    atomic_fetch_add(&e->io_done, 1);
    csp_wg_done(&e->io);
}

static void pk_acceptor(void *arg)
{
    struct park_env *e = arg;
    int c = csp_accept(e->acc, NULL, NULL, CSP_FOREVER);
    ck_assert_int_ge(c, 0);
    csp_fd_close(c);
    atomic_fetch_add(&e->io_done, 1);
    csp_wg_done(&e->io);
}

static void pk_writer(void *arg)
{
    struct park_env *e = arg;
    static char big[256 * 1024];
    ck_assert_int_eq(csp_write(e->wr[0], big, sizeof big, CSP_FOREVER), (ssize_t)sizeof big);
    atomic_fetch_add(&e->io_done, 1);
    csp_wg_done(&e->io);
}

static void pk_selector(void *arg)
{
    struct park_env *e = arg;
    csp_case k[1] = { CSP_READABLE(e->sel[0]) };
    ck_assert_int_eq(csp_select(k, 1, CSP_FOREVER), 0);
    ck_assert_int_eq(k[0].err, 0);
    atomic_fetch_add(&e->io_done, 1);
    csp_wg_done(&e->io);
}

static void pk_other(void *arg)
{
    struct park_env *e = arg;
    csp_yield();
    csp_sleep(MS(1));
    atomic_fetch_add(&e->ran, 1);
    csp_wg_done(&e->others);
}

static void *pk_drain(void *arg)
{
    struct park_env *e = arg;
    static char buf[64 * 1024];
    size_t total = 0;
    while (total < 256 * 1024) {
        ssize_t r = read(e->wr[1], buf, sizeof buf);
        ck_assert_int_gt(r, 0);
        total += (size_t)r;
    }
    return NULL;
}

static void park_main(void *arg)
{
    struct park_env *e = arg;
    struct sockaddr_in a;
    sockpair(e->rd);
    sockpair(e->wr);
    sockpair(e->sel);
    small_buffers(e->wr);
    e->acc = listen_tcp(&a);
    csp_wg_add(&e->io, 4);
    ck_assert_int_eq(csp_go(pk_reader, e), 0);
    ck_assert_int_eq(csp_go(pk_acceptor, e), 0);
    ck_assert_int_eq(csp_go(pk_writer, e), 0);
    ck_assert_int_eq(csp_go(pk_selector, e), 0);
    csp_sleep(MS(20));      /* the four are parked (or would be blocking) */
    csp_wg_add(&e->others, 100);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(csp_go(pk_other, e), 0);
    ck_assert_int_eq(csp_wg_wait(&e->others), 0);
    ck_assert_int_eq(atomic_load(&e->ran), 100);
    ck_assert_int_eq(atomic_load(&e->io_done), 0);
    /* Now release the four, from outside and inside the runtime. */
    ck_assert_int_eq(write(e->rd[1], "r", 1), 1);
    ck_assert_int_eq(write(e->sel[1], "s", 1), 1);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(csp_connect(c, (struct sockaddr *)&a, sizeof a, csp_deadline(SEC(10))), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pk_drain, e), 0);
    ck_assert_int_eq(csp_wg_wait(&e->io), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&e->io_done), 4);
    csp_fd_close(c);
    int fds[] = { e->rd[0], e->rd[1], e->wr[0], e->wr[1], e->sel[0], e->sel[1], e->acc };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        ck_assert_int_eq(csp_fd_close(fds[i]), 0);
}

/* With one worker, tasks parked in read, accept, write and a fd select
 * leave the worker free: 100 other tasks all run meanwhile. */
START_TEST(test_blocked_io_frees_worker)
{
    struct park_env e = { 0 };
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 1 }), 0);
    RUN_MAIN(park_main, &e);
}
END_TEST

/* ---- many connections ---------------------------------------------------- */

struct echo_env {
    int lfd;
    struct sockaddr_in addr;
    unsigned msgs;
    _Atomic unsigned ok, served;
    csp_waitgroup clients, conns;
};

struct echo_conn_env {
    struct echo_env *e;
    int fd;
};

static void echo_conn(void *arg)
{
    struct echo_conn_env *c = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = csp_read(c->fd, buf, sizeof buf, CSP_FOREVER);
        if (n <= 0)
            break;
        if (csp_write(c->fd, buf, (size_t)n, CSP_FOREVER) != n)
            break;
    }
    csp_fd_close(c->fd);
    atomic_fetch_add(&c->e->served, 1);
    csp_wg_done(&c->e->conns);
}

static void echo_acceptor(void *arg)
{
    struct echo_env *e = arg;
    for (;;) {
        int fd = csp_accept(e->lfd, NULL, NULL, CSP_FOREVER);
        if (fd < 0) {
            ck_assert_int_eq(errno_now(), EBADF);   /* csp_fd_close(lfd) */
            break;
        }
        csp_wg_add(&e->conns, 1);
        struct echo_conn_env c = { e, fd };
        ck_assert_int_eq(csp_go_copy(echo_conn, &c, sizeof c), 0);
    }
    csp_wg_done(&e->conns);
}

struct echo_client_env {
    struct echo_env *e;
    unsigned id;
};

static void echo_client(void *arg)
{
    struct echo_client_env *c = arg;
    struct echo_env *e = c->e;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_msg(csp_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                              csp_deadline(SEC(60))) == 0,
                  "connect: %s", strerror(errno_now()));
    unsigned char out[256], in[256];
    bool good = true;
    for (unsigned i = 0; i < e->msgs && good; i++) {
        size_t len = 1 + (c->id * 7u + i * 13u) % 200;
        for (size_t j = 0; j < len; j++)
            out[j] = (unsigned char)(c->id ^ (i * 31u) ^ (j * 17u));
        good = csp_write(fd, out, len, csp_deadline(SEC(60))) == (ssize_t)len &&
               read_full(fd, in, len, csp_deadline(SEC(60))) == (ssize_t)len &&
               memcmp(in, out, len) == 0;
    }
    ck_assert_msg(good, "client %u: echo mismatch or error", c->id);
    ck_assert_int_eq(csp_fd_close(fd), 0);
    atomic_fetch_add(&e->ok, 1);
    csp_wg_done(&e->clients);
}

struct scale_arg {
    unsigned n, msgs;
};

static void echo_scale_main(void *arg)
{
    struct scale_arg *s = arg;
    struct echo_env *e = calloc(1, sizeof *e);
    e->msgs = s->msgs;
    e->lfd = listen_tcp(&e->addr);
    csp_wg_add(&e->conns, 1);
    ck_assert_int_eq(csp_go(echo_acceptor, e), 0);
    csp_wg_add(&e->clients, s->n);
    for (unsigned i = 0; i < s->n; i++) {
        struct echo_client_env c = { e, i };
        ck_assert_int_eq(csp_go_copy(echo_client, &c, sizeof c), 0);
    }
    ck_assert_int_eq(csp_wg_wait(&e->clients), 0);
    ck_assert_uint_eq(atomic_load(&e->ok), s->n);
    ck_assert_int_eq(csp_fd_close(e->lfd), 0);       /* stops the acceptor */
    ck_assert_int_eq(csp_wg_wait(&e->conns), 0);
    ck_assert_uint_eq(atomic_load(&e->served), s->n);
    free(e);
}

static void echo_scale(unsigned n, unsigned msgs)
{
    rlim_t lim = raise_nofile((rlim_t)n * 2 + 256);
    if (lim < (rlim_t)n * 2 + 64) {
        unsigned fit = (unsigned)((lim - 64) / 2);
        fprintf(stderr, "check_netpoll: RLIMIT_NOFILE %llu: %u connections instead of %u\n",
                (unsigned long long)lim, fit, n);
        n = fit;
    }
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    struct scale_arg s = { n, msgs };
    RUN_MAIN(echo_scale_main, &s);
}

/* 1,000 concurrent loopback connections on 2 workers each echo 100
 * messages, content verified (10,000 with CSP_STRESS_SCALE >= 10). */
START_TEST(test_echo_many_connections)
{
    unsigned scale = stress_scale();
    echo_scale(scale >= 10 ? 10000 : 1000, 100);
}
END_TEST

/* ---- a reader and a writer on one socket ----------------------------------- */

struct duplex {
    int fd;
    unsigned seed_out, seed_in;
    size_t n;
    csp_waitgroup *wg;
};

static void duplex_writer(void *arg)
{
    struct duplex *d = arg;
    unsigned char *buf = malloc(d->n);
    for (size_t i = 0; i < d->n; i++)
        buf[i] = pattern(i, d->seed_out);
    /* Several calls of odd sizes: the writer parks many times. */
    size_t off = 0;
    while (off < d->n) {
        size_t k = d->n - off < 70000 ? d->n - off : 70000;
        ck_assert_int_eq(csp_write(d->fd, buf + off, k, csp_deadline(SEC(60))), (ssize_t)k);
        off += k;
    }
    free(buf);
    csp_wg_done(d->wg);
}

static void duplex_reader(void *arg)
{
    struct duplex *d = arg;
    unsigned char buf[3000];
    size_t got = 0;
    while (got < d->n) {
        ssize_t r = csp_read(d->fd, buf, sizeof buf, csp_deadline(SEC(60)));
        ck_assert_int_gt(r, 0);
        for (ssize_t j = 0; j < r; j++)
            ck_assert_int_eq(buf[j], pattern(got + (size_t)j, d->seed_in));
        got += (size_t)r;
    }
    csp_wg_done(d->wg);
}

struct rw_env {
    int sv[2];
    _Atomic int rdone, wdone;
    csp_waitgroup wg;
};

static void rw_read_one(void *arg)
{
    struct rw_env *e = arg;
    char c;
    ck_assert_int_eq(csp_read(e->sv[0], &c, 1, csp_deadline(SEC(30))), 1);
    ck_assert_int_eq(c, 'k');
    atomic_store(&e->rdone, 1);
    csp_wg_done(&e->wg);
}

static void rw_write_big(void *arg)
{
    struct rw_env *e = arg;
    size_t n = 1 << 20;
    char *buf = calloc(1, n);
    ck_assert_int_eq(csp_write(e->sv[0], buf, n, csp_deadline(SEC(30))), (ssize_t)n);
    free(buf);
    atomic_store(&e->wdone, 1);
    csp_wg_done(&e->wg);
}

static void rw_main(void *arg)
{
    (void)arg;
    /* Both parked at once on sv[0], then both released. */
    struct rw_env e = { 0 };
    sockpair(e.sv);
    small_buffers(e.sv);
    csp_wg_add(&e.wg, 2);
    csp_go(rw_read_one, &e);
    csp_go(rw_write_big, &e);
    csp_sleep(MS(50));
    ck_assert_int_eq(atomic_load(&e.rdone), 0);
    ck_assert_int_eq(atomic_load(&e.wdone), 0);
    char *sink = malloc(1 << 20);
    ck_assert_int_eq(read_full(e.sv[1], sink, 1 << 20, csp_deadline(SEC(30))), 1 << 20);
    free(sink);
    ck_assert_int_eq(csp_write(e.sv[1], "k", 1, CSP_FOREVER), 1);
    ck_assert_int_eq(csp_wg_wait(&e.wg), 0);
    csp_fd_close(e.sv[0]);
    csp_fd_close(e.sv[1]);

    /* Full duplex: a reader and a writer task on each end, 4 MiB each way. */
    int sv[2];
    sockpair(sv);
    small_buffers(sv);
    csp_waitgroup wg = CSP_WAITGROUP_INIT;
    size_t n = 4u << 20;
    struct duplex d[4] = {
        { sv[0], 1, 2, n, &wg }, { sv[0], 1, 2, n, &wg },
        { sv[1], 2, 1, n, &wg }, { sv[1], 2, 1, n, &wg },
    };
    csp_wg_add(&wg, 4);
    csp_go(duplex_writer, &d[0]);
    csp_go(duplex_reader, &d[1]);
    csp_go(duplex_writer, &d[2]);
    csp_go(duplex_reader, &d[3]);
    ck_assert_int_eq(csp_wg_wait(&wg), 0);
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);
}

/* One task reads and another writes the same socket at the same time:
 * both park on the descriptor together and both complete; full duplex
 * transfers keep their content. */
START_TEST(test_reader_and_writer_on_one_socket)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(rw_main, NULL);
}
END_TEST

/* ---- deadlines ------------------------------------------------------------- */

#define EXPECT_TIMEOUT(call, dl)                                                   \
    do {                                                                          \
        int64_t start_ = csp_now();                                               \
        ck_assert_int_eq((call), -1);                                             \
        ck_assert_int_eq(errno_now(), ETIMEDOUT);                                       \
        int64_t end_ = csp_now();                                                 \
        ck_assert_msg(end_ >= (dl), "returned %lld ns before its deadline",       \
                      (long long)((dl) - end_));                                  \
        ck_assert_msg(end_ - start_ < SEC(10), "took %lld ms",                    \
                      (long long)((end_ - start_) / 1000000));                    \
    } while (0)

static void deadline_checks(void)
{
    int sv[2];
    sockpair(sv);
    small_buffers(sv);
    char c;
    int64_t dl = csp_deadline(MS(50));
    EXPECT_TIMEOUT(csp_read(sv[0], &c, 1, dl), dl);
    /* The same deadline, now in the past: ETIMEDOUT again, at once. */
    EXPECT_TIMEOUT(csp_read(sv[0], &c, 1, dl), dl);
    EXPECT_TIMEOUT(csp_read(sv[0], &c, 1, 1), 1);
    ck_assert_int_eq(csp_read(sv[0], &c, 1, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EAGAIN);

    dl = csp_deadline(MS(30));
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ, dl), ETIMEDOUT);
    ck_assert_int_ge(csp_now(), dl);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ, CSP_NOWAIT), EAGAIN);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ, 1), ETIMEDOUT);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_WRITE, CSP_NOWAIT), 0);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ | CSP_IO_WRITE, CSP_NOWAIT), 0);

    /* Fill the send side; then writing times out with nothing written. */
    static char junk[1 << 16];
    ssize_t w;
    while ((w = csp_write(sv[0], junk, sizeof junk, CSP_NOWAIT)) > 0)
        ;
    ck_assert_int_eq(w, -1);
    ck_assert_int_eq(errno_now(), EAGAIN);
    ck_assert_int_eq(csp_write(sv[0], junk, sizeof junk, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EAGAIN);
    dl = csp_deadline(MS(40));
    EXPECT_TIMEOUT(csp_write(sv[0], junk, sizeof junk, dl), dl);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_WRITE, CSP_NOWAIT), EAGAIN);

    struct sockaddr_in a;
    int l = listen_tcp(&a);
    dl = csp_deadline(MS(30));
    EXPECT_TIMEOUT(csp_accept(l, NULL, NULL, dl), dl);
    ck_assert_int_eq(csp_accept(l, NULL, NULL, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EAGAIN);

    csp_case k[1] = { CSP_READABLE(sv[0]) };
    dl = csp_deadline(MS(30));
    ck_assert_int_eq(csp_select(k, 1, dl), -ETIMEDOUT);
    ck_assert_int_ge(csp_now(), dl);
    ck_assert_int_eq(csp_select(k, 1, CSP_NOWAIT), -EAGAIN);

    csp_fd_close(l);
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);
}

static void deadline_main(void *arg)
{
    (void)arg;
    deadline_checks();
}

/* Deadlines: ETIMEDOUT never before the deadline (strict), not much after
 * (loose); CSP_NOWAIT gives EAGAIN; from a task. */
START_TEST(test_deadlines_task)
{
    RUN_MAIN(deadline_main, NULL);
}
END_TEST

/* The same deadline rules from a plain thread (main, no runtime). */
START_TEST(test_deadlines_thread)
{
    deadline_checks();
}
END_TEST

/* ---- csp_fd_close wakes waiters ------------------------------------------- */

struct close_env {
    int rd[2], wr[2], sel[2], th[2];
    ssize_t rres, wres, tres;
    int rerr, werr, terr, sidx, serr;
    csp_waitgroup wg;
};

static void cl_reader(void *arg)
{
    struct close_env *e = arg;
    char c;
    e->rres = csp_read(e->rd[0], &c, 1, csp_deadline(SEC(30)));
    e->rerr = errno_now();
    csp_wg_done(&e->wg);
}

static void cl_writer(void *arg)
{
    struct close_env *e = arg;
    static char big[1 << 20];
    e->wres = csp_write(e->wr[0], big, sizeof big, csp_deadline(SEC(30)));
    e->werr = errno_now();
    csp_wg_done(&e->wg);
}

static void cl_selector(void *arg)
{
    struct close_env *e = arg;
    csp_chan *never = csp_chan_make(sizeof(int), 0);
    int v;
    csp_case k[2] = { CSP_RECV(never, &v), CSP_READABLE(e->sel[0]) };
    e->sidx = csp_select(k, 2, csp_deadline(SEC(30)));
    e->serr = e->sidx >= 0 ? k[e->sidx].err : 0;
    csp_chan_release(never);
    csp_wg_done(&e->wg);
}

static void *cl_thread(void *arg)
{
    struct close_env *e = arg;
    char c;
    e->tres = csp_read(e->th[0], &c, 1, csp_deadline(SEC(30)));
    e->terr = errno_now();
    return NULL;
}

static void close_main(void *arg)
{
    (void)arg;
    struct close_env e = { 0 };
    sockpair(e.rd);
    sockpair(e.wr);
    sockpair(e.sel);
    sockpair(e.th);
    small_buffers(e.wr);
    csp_wg_add(&e.wg, 3);
    csp_go(cl_reader, &e);
    csp_go(cl_writer, &e);
    csp_go(cl_selector, &e);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, cl_thread, &e), 0);
    csp_sleep(MS(100));     /* let all four park */
    int64_t t0 = csp_now();
    ck_assert_int_eq(csp_fd_close(e.rd[0]), 0);
    ck_assert_int_eq(csp_fd_close(e.wr[0]), 0);
    ck_assert_int_eq(csp_fd_close(e.sel[0]), 0);
    ck_assert_int_eq(csp_fd_close(e.th[0]), 0);
    ck_assert_int_eq(csp_wg_wait(&e.wg), 0);
    pthread_join(th, NULL);
    ck_assert_int_lt(csp_now() - t0, SEC(10));   /* woken, not timed out */
    ck_assert_int_eq(e.rres, -1);
    ck_assert_int_eq(e.rerr, EBADF);
    /* The writer may have written a first part before it parked. */
    ck_assert_int_lt(e.wres, 1 << 20);
    ck_assert_int_eq(e.werr, EBADF);
    ck_assert_int_eq(e.sidx, 1);
    ck_assert_int_eq(e.serr, EBADF);
    ck_assert_int_eq(e.tres, -1);
    ck_assert_int_eq(e.terr, EBADF);
    /* Closed: a second close and a wait report EBADF. */
    ck_assert_int_eq(csp_fd_close(e.rd[0]), EBADF);
    ck_assert_int_eq(csp_fd_wait(e.rd[0], CSP_IO_READ, CSP_NOWAIT), EBADF);
    csp_fd_close(e.rd[1]);
    csp_fd_close(e.wr[1]);
    csp_fd_close(e.sel[1]);
    csp_fd_close(e.th[1]);
}

/* csp_fd_close wakes a parked reader, a parked writer, a select waiting on
 * CSP_READABLE and a plain thread, all with EBADF. */
START_TEST(test_close_wakes_waiters)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 2 }), 0);
    RUN_MAIN(close_main, NULL);
}
END_TEST

/* ---- a readiness edge just before park is not lost ---------------------------- */

enum { EDGE_READ, EDGE_WAIT, EDGE_SELECT, EDGE_WRITE };

struct edge_env {
    int sv[2];
    int mode;
    int iters;
    _Atomic int armed;
    _Atomic int fail;
    char why[128];
};

static void *edge_peer(void *arg)
{
    struct edge_env *e = arg;
    static char drain[1 << 16];
    unsigned spin = 1;
    for (int i = 1; i <= e->iters && !atomic_load(&e->fail); i++) {
        while (atomic_load_explicit(&e->armed, memory_order_acquire) < i) {
            if (atomic_load(&e->fail))
                return NULL;
        }
        /* A varying delay moves the edge across the park window. */
        spin = spin * 1103515245u + 12345u;
        for (volatile unsigned k = (spin >> 16) % 400; k > 0; k--)
            ;
        if (e->mode == EDGE_WRITE) {
            /* Drain everything the writer queued so far. */
            while (read(e->sv[1], drain, sizeof drain) > 0)
                ;
        } else {
            char c = (char)i;
            ck_assert_int_eq(write(e->sv[1], &c, 1), 1);
        }
    }
    return NULL;
}

static void edge_run(struct edge_env *e)
{
    static char fill[1 << 16];
    for (int i = 1; i <= e->iters; i++) {
        int64_t dl = csp_deadline(SEC(10));
        char c = 0;
        ssize_t r = 0;
        int w = 0;
        if (e->mode == EDGE_WRITE) {
            /* Fill the buffer, then park in a write the peer unblocks. */
            while (csp_write(e->sv[0], fill, sizeof fill, CSP_NOWAIT) > 0)
                ;
            atomic_store_explicit(&e->armed, i, memory_order_release);
            r = csp_write(e->sv[0], fill, 1, dl);
            c = (char)i;
        } else {
            atomic_store_explicit(&e->armed, i, memory_order_release);
            if (e->mode == EDGE_READ) {
                r = csp_read(e->sv[0], &c, 1, dl);
            } else if (e->mode == EDGE_WAIT) {
                w = csp_fd_wait(e->sv[0], CSP_IO_READ, dl);
                r = csp_read(e->sv[0], &c, 1, CSP_NOWAIT);
            } else {
                csp_case k[1] = { CSP_READABLE(e->sv[0]) };
                w = csp_select(k, 1, dl);
                w = w == 0 ? k[0].err : w;
                r = csp_read(e->sv[0], &c, 1, CSP_NOWAIT);
            }
        }
        if (w != 0 || r != 1 || c != (char)i) {
            /* A wait that returned "ready" with nothing to read was woken
             * spuriously; a read that timed out lost the edge. */
            snprintf(e->why, sizeof e->why, "wait %d, then read %zd (errno %d) after %lld ms",
                     w, r, r < 0 ? errno_now() : 0,
                     (long long)((csp_now() - (dl - SEC(10))) / 1000000));
            atomic_store(&e->fail, i);
            return;
        }
    }
}

static void edge_main(void *arg)
{
    edge_run(arg);
}

static void edge_loop(int mode, int iters, bool from_task)
{
    struct edge_env e = { .mode = mode, .iters = iters };
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, e.sv), 0);
    if (mode == EDGE_WRITE)
        small_buffers(e.sv);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, edge_peer, &e), 0);
    if (from_task)
        RUN_MAIN(edge_main, &e);
    else
        edge_run(&e);
    if (atomic_load(&e.fail))
        atomic_store(&e.armed, iters + 1);   /* release the peer */
    pthread_join(th, NULL);
    ck_assert_msg(atomic_load(&e.fail) == 0, "mode %d, iteration %d: %s", mode,
                  atomic_load(&e.fail), e.why);
    csp_fd_close(e.sv[0]);
    csp_fd_close(e.sv[1]);
}

/* A byte written right as the reader parks (csp_read, csp_fd_wait, select)
 * is never lost: thousands of iterations, each must wake well before its
 * 10 s deadline. */
START_TEST(test_edge_before_park_read)
{
    edge_loop(EDGE_READ, 5000, true);
    edge_loop(EDGE_WAIT, 3000, true);
    edge_loop(EDGE_SELECT, 3000, true);
    edge_loop(EDGE_READ, 2000, false);
}
END_TEST

/* Writability that comes back right as a writer parks is not lost. */
START_TEST(test_edge_before_park_write)
{
    edge_loop(EDGE_WRITE, 2000, true);
    edge_loop(EDGE_WRITE, 1000, false);
}
END_TEST

/* ---- EPIPE, never SIGPIPE -------------------------------------------------- */

struct pipe_env {
    int fd;
    csp_waitgroup wg;
};

static void early_closer(void *arg)
{
    struct pipe_env *e = arg;
    char buf[1000];
    ck_assert_int_eq(read_full(e->fd, buf, sizeof buf, csp_deadline(SEC(30))), (ssize_t)sizeof buf);
    ck_assert_int_eq(csp_fd_close(e->fd), 0);
    csp_wg_done(&e->wg);
}

static void epipe_main(void *arg)
{
    (void)arg;
    size_t n = 8u << 20;
    char *big = calloc(1, n);

    /* A Unix socket whose peer reads a little and closes mid-write. */
    int sv[2];
    sockpair(sv);
    small_buffers(sv);
    struct pipe_env e = { .fd = sv[1] };
    csp_wg_add(&e.wg, 1);
    csp_go(early_closer, &e);
    ssize_t r = csp_write(sv[0], big, n, csp_deadline(SEC(30)));
    ck_assert_int_ge(r, 1000);     /* the count written before the error */
    ck_assert_int_lt(r, (ssize_t)n);
    ck_assert_int_eq(errno_now(), EPIPE);
    ck_assert_int_eq(csp_write(sv[0], big, 10, csp_deadline(SEC(30))), -1);
    ck_assert_int_eq(errno_now(), EPIPE);
    csp_wg_wait(&e.wg);
    csp_fd_close(sv[0]);

    /* TCP: the peer closes; writes fail with EPIPE (or ECONNRESET first,
     * when the peer's close sent a reset), never with a signal. */
    struct sockaddr_in a;
    int l = listen_tcp(&a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(csp_connect(c, (struct sockaddr *)&a, sizeof a, csp_deadline(SEC(10))), 0);
    int s = csp_accept(l, NULL, NULL, csp_deadline(SEC(10)));
    ck_assert_int_ge(s, 0);
    e.fd = s;
    csp_wg_add(&e.wg, 1);
    csp_go(early_closer, &e);
    int err = 0;
    for (int i = 0; i < 1000 && !err; i++) {
        r = csp_write(c, big, n, csp_deadline(SEC(30)));
        if (r != (ssize_t)n)
            err = errno_now();
    }
    ck_assert_msg(err == EPIPE || err == ECONNRESET, "errno %d (%s)", err, strerror(err));
    ck_assert_int_eq(csp_write(c, big, 10, csp_deadline(SEC(30))), -1);
    ck_assert_int_eq(errno_now(), EPIPE);
    csp_wg_wait(&e.wg);
    csp_fd_close(c);
    csp_fd_close(l);
    free(big);
}

/* The peer closing mid-write gives EPIPE and no SIGPIPE, with SIGPIPE at
 * its default disposition (which would kill the test). */
START_TEST(test_epipe_no_sigpipe)
{
    signal(SIGPIPE, SIG_DFL);
    RUN_MAIN(epipe_main, NULL);
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    ck_assert_ptr_eq((void *)sa.sa_handler, (void *)SIG_DFL);  /* still default */
}
END_TEST

/* ---- connect and accept ------------------------------------------------------ */

static void connect_main(void *arg)
{
    (void)arg;
    struct sockaddr_in a = closed_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(csp_connect(fd, (struct sockaddr *)&a, sizeof a, csp_deadline(SEC(10))), -1);
    ck_assert_int_eq(errno_now(), ECONNREFUSED);
    csp_fd_close(fd);

    /* CSP_NOWAIT: EAGAIN, the connect goes on; fd_wait + SO_ERROR tell. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    int r = csp_connect(fd, (struct sockaddr *)&a, sizeof a, CSP_NOWAIT);
    ck_assert_int_eq(r, -1);
#ifdef __linux__
    ck_assert_int_eq(errno_now(), EAGAIN);   /* Linux: loopback connects are in progress */
#else
    ck_assert(errno_now() == EAGAIN || errno_now() == ECONNREFUSED);
#endif
    if (errno_now() == EAGAIN) {
        ck_assert_int_eq(csp_fd_wait(fd, CSP_IO_WRITE, csp_deadline(SEC(10))), 0);
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
        ck_assert_int_eq(soerr, ECONNREFUSED);
    }
    csp_fd_close(fd);

    /* A listener: NOWAIT then wait gives success; accept returns a
     * non-blocking close-on-exec descriptor and the peer's address. */
    struct sockaddr_in la;
    int l = listen_tcp(&la);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    r = csp_connect(fd, (struct sockaddr *)&la, sizeof la, CSP_NOWAIT);
    if (r != 0) {
        ck_assert_int_eq(errno_now(), EAGAIN);
        ck_assert_int_eq(csp_fd_wait(fd, CSP_IO_WRITE, csp_deadline(SEC(10))), 0);
        int soerr = -1;
        socklen_t len = sizeof soerr;
        ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
        ck_assert_int_eq(soerr, 0);
    }
    struct sockaddr_in peer = { 0 }, mine = { 0 };
    socklen_t plen = sizeof peer, mlen = sizeof mine;
    int s = csp_accept(l, (struct sockaddr *)&peer, &plen, csp_deadline(SEC(10)));
    ck_assert_int_ge(s, 0);
    ck_assert_int_ne(fcntl(s, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(s, F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_uint_eq(plen, sizeof peer);
    ck_assert_int_eq(peer.sin_family, AF_INET);
    getsockname(fd, (struct sockaddr *)&mine, &mlen);
    ck_assert_int_eq(peer.sin_port, mine.sin_port);
    /* The calls made the caller's descriptors non-blocking too. */
    ck_assert_int_ne(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_ne(fcntl(l, F_GETFL) & O_NONBLOCK, 0);
    ck_assert_int_eq(csp_write(fd, "hi", 2, csp_deadline(SEC(10))), 2);
    char buf[2];
    ck_assert_int_eq(read_full(s, buf, 2, csp_deadline(SEC(10))), 2);
    ck_assert_int_eq(memcmp(buf, "hi", 2), 0);
    csp_fd_close(s);
    csp_fd_close(fd);
    csp_fd_close(l);
}

/* csp_connect to a closed port gives ECONNREFUSED; with CSP_NOWAIT it
 * gives EAGAIN and csp_fd_wait + SO_ERROR report the refusal; csp_accept
 * returns a non-blocking close-on-exec descriptor. */
START_TEST(test_connect_and_accept)
{
    RUN_MAIN(connect_main, NULL);
}
END_TEST

struct refused_env {
    struct sockaddr_in addr;
    _Atomic int right, wrong, connected, last_errno;
    csp_waitgroup wg;
};

static void refused_client(void *arg)
{
    struct refused_env *e = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int r = csp_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr, csp_deadline(SEC(20)));
    int err = errno_now();
    if (r == 0) {
        atomic_fetch_add(&e->connected, 1);   /* the handshake won the race */
    } else if (r == -1 && err == ECONNREFUSED) {
        atomic_fetch_add(&e->right, 1);
    } else {
        atomic_fetch_add(&e->wrong, 1);
        atomic_store(&e->last_errno, err);
    }
    csp_fd_close(fd);
    csp_wg_done(&e->wg);
}

static void refused_parked_main(void *arg)
{
    (void)arg;
    /* A listener with a full accept queue drops new SYNs: the connects
     * park.  Closing it makes the retransmitted SYNs (about 1 s later) meet
     * a reset, so the refusal arrives while the tasks are parked (and they
     * may resume on another worker). */
    struct refused_env *e = calloc(1, sizeof *e);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    e->addr = (struct sockaddr_in){ .sin_family = AF_INET,
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(l, (struct sockaddr *)&e->addr, sizeof e->addr), 0);
    socklen_t len = sizeof e->addr;
    getsockname(l, (struct sockaddr *)&e->addr, &len);
    ck_assert_int_eq(listen(l, 0), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&e->addr, sizeof e->addr);
    }
    csp_sleep(MS(100));
    csp_wg_add(&e->wg, 64);
    for (int i = 0; i < 64; i++)
        csp_go(refused_client, e);
    csp_sleep(MS(300));
    ck_assert_int_eq(csp_fd_close(l), 0);
    csp_wg_wait(&e->wg);
    for (int i = 0; i < 4; i++)
        csp_fd_close(fill[i]);
    ck_assert_msg(atomic_load(&e->wrong) == 0,
                  "%d of 64 failed connects did not report ECONNREFUSED (e.g. errno %d: %s)",
                  atomic_load(&e->wrong), atomic_load(&e->last_errno),
                  strerror(atomic_load(&e->last_errno)));
    ck_assert_int_eq(atomic_load(&e->right) + atomic_load(&e->connected), 64);
    if (atomic_load(&e->right) == 0)
        fprintf(stderr, "test_connect_refused_while_parked: no refusal happened\n");
    free(e);
}

/* A refusal that arrives while csp_connect is parked is reported as -1
 * with errno ECONNREFUSED, on whichever worker the task resumes (64 tasks,
 * 4 workers). */
START_TEST(test_connect_refused_while_parked)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 4 }), 0);
    RUN_MAIN(refused_parked_main, NULL);
}
END_TEST

/* ---- csp_write: all bytes, or a partial count ---------------------------------- */

struct slow_env {
    int fd;
    size_t n;
    csp_waitgroup wg;
};

static void slow_reader(void *arg)
{
    struct slow_env *e = arg;
    unsigned char buf[700];
    size_t got = 0;
    for (int k = 0; got < e->n; k++) {
        ssize_t r = csp_read(e->fd, buf, sizeof buf, csp_deadline(SEC(30)));
        ck_assert_int_gt(r, 0);
        for (ssize_t j = 0; j < r; j++)
            ck_assert_int_eq(buf[j], pattern(got + (size_t)j, 9));
        got += (size_t)r;
        if (k % 64 == 0)
            csp_sleep(MS(1));
    }
    csp_wg_done(&e->wg);
}

static void write_all_main(void *arg)
{
    (void)arg;
    int sv[2];
    sockpair(sv);
    small_buffers(sv);
    size_t n = 1 << 20;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(i, 9);
    struct slow_env e = { .fd = sv[1], .n = n };
    csp_wg_add(&e.wg, 1);
    csp_go(slow_reader, &e);
    ck_assert_int_eq(csp_write(sv[0], buf, n, csp_deadline(SEC(60))), (ssize_t)n);
    csp_wg_wait(&e.wg);
    free(buf);
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);
}

/* csp_write writes every byte through a small socket buffer while a slow
 * reader drains it, content intact. */
START_TEST(test_write_all_slow_reader)
{
    RUN_MAIN(write_all_main, NULL);
}
END_TEST

static size_t drain_count(int fd, unsigned seed)
{
    unsigned char buf[4096];
    size_t got = 0;
    ssize_t r;
    while ((r = csp_read(fd, buf, sizeof buf, CSP_NOWAIT)) > 0) {
        for (ssize_t j = 0; j < r; j++)
            ck_assert_int_eq(buf[j], pattern(got + (size_t)j, seed));
        got += (size_t)r;
    }
    return got;
}

static void partial_checks(void)
{
    size_t n = 2u << 20;
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(i, 5);
    int sv[2];
    sockpair(sv);
    small_buffers(sv);
    int64_t dl = csp_deadline(MS(100));
    ssize_t r = csp_write(sv[0], buf, n, dl);
    ck_assert_int_ge(csp_now(), dl);
    ck_assert_int_gt(r, 0);
    ck_assert_int_lt(r, (ssize_t)n);
    ck_assert_int_eq(errno_now(), ETIMEDOUT);
    ck_assert_uint_eq(drain_count(sv[1], 5), (size_t)r);   /* the count is exact */
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);

    sockpair(sv);
    small_buffers(sv);
    r = csp_write(sv[0], buf, n, CSP_NOWAIT);
    ck_assert_int_gt(r, 0);
    ck_assert_int_lt(r, (ssize_t)n);
    ck_assert_int_eq(errno_now(), EAGAIN);
    ck_assert_uint_eq(drain_count(sv[1], 5), (size_t)r);
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);
    free(buf);
}

static void partial_main(void *arg)
{
    (void)arg;
    partial_checks();
}

/* A deadline (or CSP_NOWAIT) that stops csp_write after some bytes returns
 * exactly the count written, with errno ETIMEDOUT (EAGAIN). */
START_TEST(test_write_partial_count)
{
    RUN_MAIN(partial_main, NULL);
    partial_checks();
}
END_TEST

/* ---- plain threads ----------------------------------------------------------- */

struct thr_env {
    int lfd;
    struct sockaddr_in addr;
    int rounds;
};

static void *thr_server(void *arg)
{
    struct thr_env *e = arg;
    int c = csp_accept(e->lfd, NULL, NULL, csp_deadline(SEC(30)));
    ck_assert_int_ge(c, 0);
    char buf[512];
    for (;;) {
        ssize_t r = csp_read(c, buf, sizeof buf, csp_deadline(SEC(30)));
        ck_assert_int_ge(r, 0);
        if (r == 0)
            break;
        ck_assert_int_eq(csp_write(c, buf, (size_t)r, csp_deadline(SEC(30))), r);
    }
    csp_fd_close(c);
    return NULL;
}

static void thr_client(struct thr_env *e)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(csp_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                                 csp_deadline(SEC(30))), 0);
    for (int i = 0; i < e->rounds; i++) {
        char out[64], in[64];
        int len = snprintf(out, sizeof out, "message %d from a thread", i);
        ck_assert_int_eq(csp_write(fd, out, (size_t)len, csp_deadline(SEC(30))), len);
        ck_assert_int_eq(read_full(fd, in, (size_t)len, csp_deadline(SEC(30))), len);
        ck_assert_int_eq(memcmp(in, out, (size_t)len), 0);
    }
    csp_fd_close(fd);
}

static void thr_client_task(void *arg)
{
    thr_client(arg);
}

/* Plain threads use the same calls: a thread server echoes to a thread
 * client (no runtime), then to a task client. */
START_TEST(test_plain_threads)
{
    struct thr_env e = { .rounds = 200 };
    e.lfd = listen_tcp(&e.addr);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thr_server, &e), 0);
    thr_client(&e);
    pthread_join(th, NULL);

    ck_assert_int_eq(pthread_create(&th, NULL, thr_server, &e), 0);
    RUN_MAIN(thr_client_task, &e);
    pthread_join(th, NULL);
    csp_fd_close(e.lfd);
}
END_TEST

/* ---- argument errors --------------------------------------------------------- */

/* EBADF for negative and closed descriptors, EINVAL for bad events. */
START_TEST(test_bad_descriptors)
{
    int sv[2];
    sockpair(sv);
    ck_assert_int_eq(csp_fd_wait(-1, CSP_IO_READ, CSP_NOWAIT), EBADF);
    ck_assert_int_eq(csp_fd_wait(-5, CSP_IO_WRITE, csp_deadline(MS(10))), EBADF);
    ck_assert_int_eq(csp_fd_close(-1), EBADF);
    ck_assert_int_eq(csp_fd_wait(sv[0], 0, CSP_NOWAIT), EINVAL);
    ck_assert_int_eq(csp_fd_wait(sv[0], 4, CSP_NOWAIT), EINVAL);
    ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ | 8, CSP_FOREVER), EINVAL);
    char c;
    ck_assert_int_eq(csp_read(-1, &c, 1, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EBADF);
    ck_assert_int_eq(csp_write(-1, &c, 1, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EBADF);
    ck_assert_int_eq(csp_accept(-1, NULL, NULL, CSP_NOWAIT), -1);
    ck_assert_int_eq(errno_now(), EBADF);
    ck_assert_int_eq(csp_fd_close(sv[1]), 0);
    /* sv[1] is closed now. */
    ck_assert_int_eq(csp_fd_wait(sv[1], CSP_IO_READ, CSP_FOREVER), EBADF);
    ck_assert_int_eq(csp_fd_wait(sv[1], CSP_IO_WRITE, CSP_NOWAIT), EBADF);
    ck_assert_int_eq(csp_fd_close(sv[1]), EBADF);
    ck_assert_int_eq(csp_read(sv[1], &c, 1, csp_deadline(MS(10))), -1);
    ck_assert_int_eq(errno_now(), EBADF);
    /* Reading the other end: end of file, 0. */
    ck_assert_int_eq(csp_read(sv[0], &c, 1, csp_deadline(SEC(1))), 0);
    ck_assert_int_eq(csp_fd_close(sv[0]), 0);
    /* A READABLE case with a negative fd never fires. */
    csp_case k[1] = { CSP_READABLE(-1) };
    ck_assert_int_eq(csp_select(k, 1, CSP_NOWAIT), -EAGAIN);
    int64_t dl = csp_deadline(MS(20));
    ck_assert_int_eq(csp_select(k, 1, dl), -ETIMEDOUT);
    ck_assert_int_ge(csp_now(), dl);
}
END_TEST

/* ---- select mixing kinds -------------------------------------------------------- */

struct mix_env {
    int fd;
    csp_chan *ch;
};

static void late_write(void *arg)
{
    struct mix_env *e = arg;
    csp_sleep(MS(30));
    ck_assert_int_eq(csp_write(e->fd, "w", 1, CSP_FOREVER), 1);
}

static void late_send(void *arg)
{
    struct mix_env *e = arg;
    csp_sleep(MS(30));
    int v = 42;
    ck_assert_int_eq(csp_send(e->ch, &v), 0);
}

static void select_mix_main(void *arg)
{
    (void)arg;
    int sv[2];
    sockpair(sv);
    csp_chan *ch = csp_chan_make(sizeof(int), 1);
    int v = 0;
    int64_t tv = 0;
    char c;

    /* Only the descriptor is ready: it fires and consumes nothing. */
    ck_assert_int_eq(write(sv[1], "a", 1), 1);
    csp_chan *tm = csp_after(SEC(10));
    csp_case k[3] = { CSP_RECV(ch, &v), CSP_RECV(tm, &tv), CSP_READABLE(sv[0]) };
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 2);
    ck_assert_int_eq(k[2].err, 0);
    ck_assert_int_eq(csp_read(sv[0], &c, 1, CSP_NOWAIT), 1);
    ck_assert_int_eq(c, 'a');
    csp_chan_release(tm);

    /* Only the channel is ready. */
    v = 7;
    ck_assert_int_eq(csp_send(ch, &v), 0);
    v = 0;
    tm = csp_after(SEC(10));
    k[0] = CSP_RECV(ch, &v);
    k[1] = CSP_RECV(tm, &tv);
    k[2] = CSP_READABLE(sv[0]);
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 0);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(csp_chan_len(ch), 0);
    csp_chan_release(tm);

    /* Nothing ready: the timer fires, not before its time. */
    int64_t t0 = csp_now();
    tm = csp_after(MS(40));
    k[0] = CSP_RECV(ch, &v);
    k[1] = CSP_RECV(tm, &tv);
    k[2] = CSP_READABLE(sv[0]);
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 1);
    ck_assert_int_ge(tv, t0 + MS(40));
    ck_assert_int_ge(csp_now(), t0 + MS(40));
    csp_chan_release(tm);

    /* Parked, then woken by the descriptor; then by the channel. */
    struct mix_env me = { sv[1], ch };
    csp_go(late_write, &me);
    tm = csp_after(SEC(10));
    k[0] = CSP_RECV(ch, &v);
    k[1] = CSP_RECV(tm, &tv);
    k[2] = CSP_READABLE(sv[0]);
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 2);
    ck_assert_int_eq(csp_read(sv[0], &c, 1, CSP_NOWAIT), 1);
    csp_go(late_send, &me);
    k[0] = CSP_RECV(ch, &v);
    k[1] = CSP_RECV(tm, &tv);
    k[2] = CSP_READABLE(sv[0]);
    ck_assert_int_eq(csp_select(k, 3, csp_deadline(SEC(10))), 0);
    ck_assert_int_eq(v, 42);
    csp_chan_release(tm);

    /* All three ready: exactly one case takes effect, each kind wins
     * sometimes (fairness across kinds, loose bound). */
    int wins[3] = { 0 };
    ck_assert_int_eq(write(sv[1], "r", 1), 1);
    tm = NULL;
    const int rounds = 3000;
    for (int i = 0; i < rounds; i++) {
        if (!tm) {
            tm = csp_after(0);
            while (csp_chan_len(tm) == 0)
                csp_sleep(MS(1) / 10);
        }
        if (csp_chan_len(ch) == 0) {
            v = 1;
            ck_assert_int_eq(csp_send(ch, &v), 0);
        }
        v = 0;
        k[0] = CSP_RECV(ch, &v);
        k[1] = CSP_RECV(tm, &tv);
        k[2] = CSP_READABLE(sv[0]);
        int r = csp_select(k, 3, CSP_NOWAIT);
        ck_assert_int_ge(r, 0);
        ck_assert_int_lt(r, 3);
        wins[r]++;
        /* Exactly one took effect. */
        ck_assert_uint_eq(csp_chan_len(ch), r == 0 ? 0 : 1);
        ck_assert_int_eq(v, r == 0 ? 1 : 0);
        ck_assert_uint_eq(csp_chan_len(tm), r == 1 ? 0 : 1);
        ck_assert_int_eq(csp_fd_wait(sv[0], CSP_IO_READ, CSP_NOWAIT), 0);  /* not consumed */
        if (r == 1) {
            csp_chan_release(tm);
            tm = NULL;
        }
    }
    for (int i = 0; i < 3; i++)
        ck_assert_msg(wins[i] > rounds / 10, "case %d won %d of %d", i, wins[i], rounds);
    csp_chan_release(tm);

    /* A WRITABLE case on a socket with room fires at once. */
    csp_case w[2] = { CSP_RECV(ch, &v), CSP_WRITABLE(sv[0]) };
    csp_try_recv(ch, &v);
    ck_assert_int_eq(csp_select(w, 2, CSP_NOWAIT), 1);
    ck_assert_int_eq(w[1].err, 0);

    csp_chan_release(ch);
    csp_fd_close(sv[0]);
    csp_fd_close(sv[1]);
}

/* A select mixing a channel, a timer (csp_after) and a descriptor fires
 * exactly one case, consuming only that one's value, whichever is ready
 * (and each kind when all are). */
START_TEST(test_select_mixed_kinds)
{
    RUN_MAIN(select_mix_main, NULL);
}
END_TEST

struct pipe_sel_env {
    int p[2];
};

static void pipe_writer(void *arg)
{
    struct pipe_sel_env *e = arg;
    csp_sleep(MS(20));
    ck_assert_int_eq(csp_write(e->p[1], "p", 1, CSP_FOREVER), 1);
}

static void pipe_drainer(void *arg)
{
    struct pipe_sel_env *e = arg;
    csp_sleep(MS(20));
    char buf[4096];
    ck_assert_int_gt(csp_read(e->p[0], buf, sizeof buf, CSP_FOREVER), 0);
}

static void select_pipe_main(void *arg)
{
    (void)arg;
    struct pipe_sel_env e;
    ck_assert_int_eq(pipe(e.p), 0);
    csp_case k[1] = { CSP_READABLE(e.p[0]) };
    ck_assert_int_eq(csp_select(k, 1, CSP_NOWAIT), -EAGAIN);
    csp_go(pipe_writer, &e);
    ck_assert_int_eq(csp_select(k, 1, csp_deadline(SEC(10))), 0);
    char c;
    ck_assert_int_eq(csp_read(e.p[0], &c, 1, CSP_NOWAIT), 1);
    ck_assert_int_eq(c, 'p');

    /* Fill the pipe; WRITABLE parks until a reader makes room. */
    static char fill[4096];
    while (csp_write(e.p[1], fill, sizeof fill, CSP_NOWAIT) > 0)
        ;
    csp_case w[1] = { CSP_WRITABLE(e.p[1]) };
    ck_assert_int_eq(csp_select(w, 1, CSP_NOWAIT), -EAGAIN);
    csp_go(pipe_drainer, &e);
    ck_assert_int_eq(csp_select(w, 1, csp_deadline(SEC(10))), 0);
    csp_fd_close(e.p[0]);
    csp_fd_close(e.p[1]);
}

/* Select's descriptor cases work on a pipe, both directions. */
START_TEST(test_select_on_pipe)
{
    RUN_MAIN(select_pipe_main, NULL);
}
END_TEST

/* ---- descriptor numbers reused after a plain close(2) --------------------------- */

struct reuse_env {
    int fd;
    int64_t delay;
};

static void *reuse_late_writer(void *arg)
{
    struct reuse_env *e = arg;
    struct timespec ts = { 0, (long)e->delay };
    nanosleep(&ts, NULL);
    if (write(e->fd, "x", 1) != 1)
        abort();
    return NULL;
}

/* A read that has to park, with the byte written by a thread later. */
static ssize_t parked_read(int sv[2])
{
    struct reuse_env e = { sv[1], MS(30) };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, reuse_late_writer, &e), 0);
    char c;
    ssize_t r = csp_read(sv[0], &c, 1, csp_deadline(SEC(5)));
    pthread_join(th, NULL);
    return r;
}

static void reuse_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 4; round++) {
        int sv[2];
        /* Alternate blocking and already non-blocking sockets. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | (round & 1 ? SOCK_NONBLOCK : 0), 0, sv), 0);
        ssize_t r = parked_read(sv);
        ck_assert_msg(r == 1, "round %d (fd %d): read %zd, %s", round, sv[0], r, strerror(errno_now()));
        ck_assert_msg(fcntl(sv[0], F_GETFL) & O_NONBLOCK, "round %d: fd %d left blocking", round,
                      sv[0]);
        /* Nobody waits on the descriptors: a plain close is allowed. */
        close(sv[0]);
        close(sv[1]);
    }
}

/* A descriptor closed with plain close(2) while nobody waits on it, whose
 * number is then reused, is made non-blocking again and its waiters are
 * woken (the per-descriptor record must not outlive the descriptor). */
START_TEST(test_fd_number_reuse_after_plain_close)
{
    RUN_MAIN(reuse_main, NULL);
}
END_TEST

static Suite *netpoll_suite(void)
{
    Suite *s = suite_create("netpoll");
    TCase *tc = tcase_create("calls");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_blocked_io_frees_worker);
    tcase_add_test(tc, test_reader_and_writer_on_one_socket);
    tcase_add_test(tc, test_deadlines_task);
    tcase_add_test(tc, test_deadlines_thread);
    tcase_add_test(tc, test_close_wakes_waiters);
    tcase_add_test(tc, test_epipe_no_sigpipe);
    tcase_add_test(tc, test_connect_and_accept);
    tcase_add_test(tc, test_connect_refused_while_parked);
    tcase_add_test(tc, test_write_all_slow_reader);
    tcase_add_test(tc, test_write_partial_count);
    tcase_add_test(tc, test_plain_threads);
    tcase_add_test(tc, test_bad_descriptors);
    tcase_add_test(tc, test_select_mixed_kinds);
    tcase_add_test(tc, test_select_on_pipe);
    tcase_add_test(tc, test_fd_number_reuse_after_plain_close);
    suite_add_tcase(s, tc);

    TCase *tr = tcase_create("races");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_edge_before_park_read);
    tcase_add_test(tr, test_edge_before_park_write);
    suite_add_tcase(s, tr);

    TCase *ts = tcase_create("scale");
    tcase_set_timeout(ts, 300);
    tcase_add_test(ts, test_echo_many_connections);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    return run_suite(netpoll_suite());
}
