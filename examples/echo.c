/*
 * echo.c - a TCP echo server: one task per connection, straight-line code.
 *
 *   func handle(ctx context.Context, c net.Conn) {
 *       defer c.Close()
 *       for {
 *           c.SetReadDeadline(time.Now().Add(idle))
 *           n, err := c.Read(buf)
 *           if err != nil { return }           // EOF, idle timeout, ...
 *           c.Write(buf[:n])
 *       }
 *   }
 *
 * Usage: echo [--port N] [--idle-ms MS] [--grace-ms MS]
 *        echo --selftest
 *
 * The server listens on 127.0.0.1:N (default 7007; 0 picks a free port).
 * A connection that stays silent for --idle-ms (default 30000) is closed.
 * SIGINT shuts the server down cleanly: it stops accepting at once, lets
 * open connections go on until their client closes them, they go idle, or
 * --grace-ms (default 5000) have passed, and then csp_run returns.
 *
 * How the pieces meet: the signal handler writes one byte into a pipe
 * (the only thing it may do); a task waits for that byte in a select and
 * cancels the server's context; the accept loop and every connection
 * select on their socket *and* the context's done channel, which Go's
 * select cannot do with a net.Conn.
 *
 * --selftest starts the server on a free port together with client tasks
 * that check the echoes, the idle timeout and the shutdown (a connection
 * open at SIGINT keeps working, new ones are refused), then exits 0.
 */
#include <csp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS(x) ((int64_t)(x) * 1000000)

/* errno after a call that may park.  A task can resume on another worker
 * thread, and the C library lets the compiler reuse errno's address from
 * before the call (that is, the previous thread's errno); reading it
 * through a function that is not inlined avoids that. */
__attribute__((noinline)) static int task_errno(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

struct server {
    int lfd;
    struct sockaddr_in addr;
    int64_t idle_ns, grace_ns;
    csp_ctx *ctx;                 /* cancelled at shutdown                */
    _Atomic int64_t shutdown_at;  /* when; set before the cancel          */
    int sig_pipe[2];              /* SIGINT handler -> watcher task       */
    bool quiet;
    csp_waitgroup tasks;          /* the server's tasks, for --selftest   */
    _Atomic long conns, open, bytes, idle_closed;
};

static struct server *the_server;  /* for the signal handler only */

static void log_line(const struct server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_line(const struct server *s, const char *fmt, ...)
{
    if (s->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- one connection ------------------------------------------------------------ */

struct conn {
    struct server *s;
    int fd;
    long id;
};

static void handle(void *arg)
{
    struct conn *c = arg;
    struct server *s = c->s;
    csp_chan *done = csp_ctx_done(s->ctx);  /* valid: we hold a reference */
    int64_t hard = CSP_FOREVER;             /* set once shutdown begins   */
    const char *why = "closed by the client";
    char buf[4096];
    for (;;) {
        int64_t dl = csp_deadline(s->idle_ns);
        if (hard != CSP_FOREVER && hard < dl)
            dl = hard;
        /* Wait for data or for the shutdown, whichever comes first; a
         * NULL channel disables the done case once we have seen it. */
        csp_case k[2] = { CSP_READABLE(c->fd),
                          CSP_RECV(hard == CSP_FOREVER ? done : NULL, NULL) };
        int i = csp_select(k, 2, dl);
        if (i == -ETIMEDOUT) {
            if (hard != CSP_FOREVER && csp_now() >= hard) {
                why = "grace period over";
            } else {
                why = "idle";
                atomic_fetch_add(&s->idle_closed, 1);
            }
            break;
        }
        if (i == 1) {
            /* Shutdown: finish what the client is doing, within grace. */
            hard = atomic_load(&s->shutdown_at) + s->grace_ns;
            continue;
        }
        ssize_t n = csp_read(c->fd, buf, sizeof buf, CSP_NOWAIT);
        if (n == 0)
            break;
        if (n < 0) {
            int e = task_errno();
            if (e == EAGAIN)
                continue;
            why = strerror(e);
            break;
        }
        if (csp_write(c->fd, buf, (size_t)n, csp_deadline(s->idle_ns)) != n) {
            why = "write failed";
            break;
        }
        atomic_fetch_add(&s->bytes, n);
    }
    csp_fd_close(c->fd);
    atomic_fetch_sub(&s->open, 1);
    log_line(s, "echo: connection %ld ended (%s)", c->id, why);
    csp_ctx_release(s->ctx);
    csp_wg_done(&s->tasks);
}

/* ---- accepting, and the shutdown signal ------------------------------------------- */

static void acceptor(void *arg)
{
    struct server *s = arg;
    csp_chan *done = csp_ctx_done(s->ctx);
    for (;;) {
        csp_case k[2] = { CSP_READABLE(s->lfd), CSP_RECV(done, NULL) };
        if (csp_select(k, 2, CSP_FOREVER) == 1)
            break;                          /* shutdown: stop accepting */
        int fd = csp_accept(s->lfd, NULL, NULL, CSP_NOWAIT);
        if (fd < 0)
            continue;                       /* another accept took it, or an error */
        struct conn c = { s, fd, atomic_fetch_add(&s->conns, 1) + 1 };
        atomic_fetch_add(&s->open, 1);
        csp_ctx_retain(s->ctx);             /* the connection's reference */
        csp_wg_add(&s->tasks, 1);
        if (csp_go_copy(handle, &c, sizeof c) != 0) {
            csp_fd_close(fd);
            atomic_fetch_sub(&s->open, 1);
            csp_ctx_release(s->ctx);
            csp_wg_done(&s->tasks);
        }
    }
    csp_fd_close(s->lfd);
    log_line(s, "echo: no longer accepting; %ld connection(s) still open",
             atomic_load(&s->open));
    csp_wg_done(&s->tasks);
}

static void on_sigint(int sig)
{
    (void)sig;
    int saved = errno;
    if (the_server && write(the_server->sig_pipe[1], "", 1) < 0) {
        /* the pipe is full: a shutdown is already under way */
    }
    errno = saved;
}

/* Starts the shutdown (from the signal watcher, or directly). */
static void server_shutdown(struct server *s)
{
    int64_t zero = 0;
    if (atomic_compare_exchange_strong(&s->shutdown_at, &zero, csp_now()))
        csp_ctx_cancel(s->ctx);
}

static void signal_watcher(void *arg)
{
    struct server *s = arg;
    csp_case k[2] = { CSP_READABLE(s->sig_pipe[0]), CSP_RECV(csp_ctx_done(s->ctx), NULL) };
    if (csp_select(k, 2, CSP_FOREVER) == 0) {
        log_line(s, "echo: SIGINT, shutting down");
        server_shutdown(s);
    }
    csp_wg_done(&s->tasks);
}

/* Binds, installs the SIGINT handler, starts the server's tasks. */
static int server_start(struct server *s, int port)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->lfd < 0)
        return errno;
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    s->addr = (struct sockaddr_in){ .sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof s->addr;
    if (bind(s->lfd, (struct sockaddr *)&s->addr, sizeof s->addr) != 0 ||
        listen(s->lfd, 1024) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&s->addr, &len) != 0)
        return errno;
    if (pipe(s->sig_pipe) != 0)
        return errno;
    fcntl(s->sig_pipe[1], F_SETFL, O_NONBLOCK);
    s->ctx = csp_ctx_with_cancel(csp_ctx_background());
    if (!s->ctx)
        return errno;
    the_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    csp_wg_add(&s->tasks, 2);
    csp_go(signal_watcher, s);
    csp_go(acceptor, s);
    log_line(s, "echo: listening on 127.0.0.1:%d", ntohs(s->addr.sin_port));
    return 0;
}

static void server_finish(struct server *s)
{
    signal(SIGINT, SIG_DFL);
    the_server = NULL;
    csp_fd_close(s->sig_pipe[0]);
    close(s->sig_pipe[1]);
    csp_ctx_release(s->ctx);
}

/* ---- the program ---------------------------------------------------------------- */

struct options {
    int port;
    int64_t idle_ns, grace_ns;
    bool selftest;
    int status;
};

static void serve_main(void *arg)
{
    struct options *o = arg;
    struct server *s = calloc(1, sizeof *s);
    s->idle_ns = o->idle_ns;
    s->grace_ns = o->grace_ns;
    int err = server_start(s, o->port);
    if (err) {
        fprintf(stderr, "echo: cannot listen on port %d: %s\n", o->port, strerror(err));
        o->status = 1;
        free(s);
        return;
    }
    csp_wg_wait(&s->tasks);
    printf("echo: %ld connection(s), %ld byte(s) echoed\n", atomic_load(&s->conns),
           atomic_load(&s->bytes));
    server_finish(s);
    free(s);
}

/* ---- --selftest -------------------------------------------------------------------- */

struct test {
    struct server *s;
    _Atomic int failures;
    csp_waitgroup clients;
    csp_chan *shutdown_seen;     /* the long client waits on it */
    csp_chan *long_ready;        /* closed once the long client is served */
};

#define CHECK(t, cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "echo selftest: FAILED: " __VA_ARGS__);            \
            fputc('\n', stderr);                                               \
            atomic_fetch_add(&(t)->failures, 1);                               \
        }                                                                      \
    } while (0)

/* A connected socket, or -errno. */
static int dial(struct test *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -task_errno();
    if (csp_connect(fd, (struct sockaddr *)&t->s->addr, sizeof t->s->addr,
                    csp_deadline(MS(10000))) != 0) {
        int e = task_errno();
        csp_fd_close(fd);
        return -e;
    }
    return fd;
}

/* One round trip of `len` bytes; true if the echo matches. */
static bool round_trip(int fd, const char *out, size_t len)
{
    char in[512];
    if (len > sizeof in || csp_write(fd, out, len, csp_deadline(MS(10000))) != (ssize_t)len)
        return false;
    size_t got = 0;
    while (got < len) {
        ssize_t n = csp_read(fd, in + got, len - got, csp_deadline(MS(10000)));
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return memcmp(in, out, len) == 0;
}

struct client_arg {
    struct test *t;
    int id;
};

static void echo_client(void *arg)
{
    struct client_arg *a = arg;
    struct test *t = a->t;
    int fd = dial(t);
    CHECK(t, fd >= 0, "client %d: connect: %s", a->id, strerror(-fd));
    for (int i = 0; fd >= 0 && i < 50; i++) {
        char msg[128];
        int len = snprintf(msg, sizeof msg, "client %d says hello for the %d. time", a->id, i);
        bool ok = round_trip(fd, msg, (size_t)len);
        CHECK(t, ok, "client %d: echo %d wrong", a->id, i);
        if (!ok)
            break;
    }
    if (fd >= 0)
        csp_fd_close(fd);
    csp_wg_done(&t->clients);
}

static void idle_client(void *arg)
{
    struct test *t = arg;
    int fd = dial(t);
    CHECK(t, fd >= 0, "idle client: connect");
    if (fd >= 0) {
        int64_t t0 = csp_now();
        char c;
        ssize_t n = csp_read(fd, &c, 1, csp_deadline(MS(10000)));
        int64_t waited = csp_now() - t0;
        CHECK(t, n == 0, "idle client: expected end of file, got %zd", n);
        CHECK(t, waited >= t->s->idle_ns - MS(5), "idle client: closed after %lld ms only",
              (long long)(waited / 1000000));
        printf("echo selftest: an idle connection was closed after %lld ms\n",
               (long long)(waited / 1000000));
        csp_fd_close(fd);
    }
    csp_wg_done(&t->clients);
}

/* Connected before the shutdown, keeps talking after it, then leaves. */
static void long_client(void *arg)
{
    struct test *t = arg;
    int fd = dial(t);
    CHECK(t, fd >= 0, "long client: connect");
    /* One echo before the signal, so the server has surely accepted us. */
    if (fd >= 0)
        CHECK(t, round_trip(fd, "hello", 5), "long client: first echo");
    csp_close(t->long_ready);
    if (fd >= 0) {
        /* Keep the connection busy until the shutdown has begun (the
         * channel is closed then), and go on talking after it. */
        int pings = 0;
        for (;;) {
            csp_case k[1] = { CSP_RECV(t->shutdown_seen, NULL) };
            if (csp_select(k, 1, csp_deadline(MS(20))) == 0)
                break;
            CHECK(t, round_trip(fd, "before", 6), "long client: echo %d before shutdown", pings);
            pings++;
        }
        for (int i = 0; i < 10; i++) {
            csp_sleep(MS(10));
            CHECK(t, round_trip(fd, "after the signal", 16),
                  "long client: echo %d after shutdown", i);
        }
        csp_fd_close(fd);
    }
    csp_wg_done(&t->clients);
}

static void selftest_main(void *arg)
{
    struct options *o = arg;
    struct test t = { 0 };
    struct server *s = calloc(1, sizeof *s);
    s->idle_ns = MS(300);
    s->grace_ns = MS(5000);
    s->quiet = true;
    t.s = s;
    t.shutdown_seen = csp_chan_make(0, 0);
    if (server_start(s, 0) != 0) {
        fprintf(stderr, "echo selftest: cannot listen\n");
        o->status = 1;
        return;
    }
    printf("echo selftest: server on 127.0.0.1:%d\n", ntohs(s->addr.sin_port));

    /* 1. Echoes, with an idle connection beside them. */
    enum { CLIENTS = 20 };
    csp_wg_add(&t.clients, CLIENTS + 1);
    csp_go(idle_client, &t);
    for (int i = 0; i < CLIENTS; i++) {
        struct client_arg a = { &t, i };
        csp_go_copy(echo_client, &a, sizeof a);
    }
    csp_wg_wait(&t.clients);
    printf("echo selftest: %d clients x 50 echoes verified\n", CLIENTS);

    /* 2. SIGINT with a connection open. */
    csp_wg_add(&t.clients, 1);
    t.long_ready = csp_chan_make(0, 0);
    csp_go(long_client, &t);
    /* Signal only once the long client's connection is being served (a
     * fixed sleep here failed on a machine busy enough to delay it). */
    csp_recv(t.long_ready, NULL);
    raise(SIGINT);
    /* The accept loop stops: a new connection is refused soon. */
    int refused = 0;
    for (int i = 0; i < 500 && refused != ECONNREFUSED; i++) {
        int fd = dial(&t);
        /* A connection that reached the backlog just before the listener
         * closed is reset (ECONNRESET): the shutdown is still under way. */
        if (fd < 0)
            refused = -fd;
        else
            csp_fd_close(fd);
        if (refused != ECONNREFUSED)
            csp_sleep(MS(10));
    }
    CHECK(&t, refused == ECONNREFUSED, "after SIGINT, a new connection gave %s",
          refused ? strerror(refused) : "success");
    csp_close(t.shutdown_seen);
    csp_wg_wait(&t.clients);
    /* Every server task ends by itself once its connection is closed. */
    csp_wg_wait(&s->tasks);
    CHECK(&t, atomic_load(&s->open) == 0, "%ld connection(s) still open", atomic_load(&s->open));
    CHECK(&t, atomic_load(&s->idle_closed) >= 1, "the idle connection was not closed");
    printf("echo selftest: shutdown stopped accepting; the open connection finished\n");
    server_finish(s);
    csp_chan_release(t.shutdown_seen);
    csp_chan_release(t.long_ready);
    free(s);
    o->status = atomic_load(&t.failures) ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo [--port N] [--idle-ms MS] [--grace-ms MS] | --selftest\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct options o = { .port = 7007, .idle_ns = MS(30000), .grace_ns = MS(5000) };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--selftest"))
            o.selftest = true;
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            o.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            o.idle_ns = MS(atol(argv[++i]));
        else if (!strcmp(argv[i], "--grace-ms") && i + 1 < argc)
            o.grace_ns = MS(atol(argv[++i]));
        else
            usage();
    }
    /* The shell or CI runner that started us may have blocked SIGINT;
     * unblock it here, before csp_run starts the worker threads, so
     * that every thread inherits the mask and the signal arrives. */
    sigset_t intr;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &intr, NULL);
    int r = csp_run(o.selftest ? selftest_main : serve_main, &o);
    if (r != 0) {
        fprintf(stderr, "echo: csp_run: %s\n", strerror(r));
        return 1;
    }
    if (o.selftest && o.status == 0)
        printf("echo selftest: ok\n");
    return o.status;
}
