/*
 * httpd.c - a small HTTP/1.1 server: one task per connection, keep-alive,
 * pipelining, and no trust in the client.
 *
 *   GET / (or HEAD /)   200 "Hello, World!\n"
 *   anything else       404
 *
 * It parses only what it needs (the request line, Connection,
 * Content-Length, Transfer-Encoding, Host) and answers a bad request and
 * closes, never crashes or hangs:
 *   400  malformed request line or header, missing Host in HTTP/1.1
 *   408  the request head did not arrive within --header-ms (slowloris)
 *   413  a body larger than 1 MiB
 *   431  a request head larger than 8 KiB
 *   501  Transfer-Encoding (chunked bodies are not supported)
 *   505  an HTTP version other than 1.0 and 1.1
 * An idle keep-alive connection is closed after --idle-ms.  SIGINT stops
 * accepting, lets requests in progress finish, closes idle connections,
 * and the program ends.
 *
 * Usage: httpd [--port N] [--idle-ms MS] [--header-ms MS]
 *        httpd --selftest    (server and test clients in one process)
 */
#include <csp.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MS(x) ((int64_t)(x) * 1000000)
#define MAX_HEAD 8192
#define MAX_BODY (1 << 20)

static const char HELLO[] = "Hello, World!\n";

/* errno after a call that may park (see examples/echo.c). */
__attribute__((noinline)) static int task_errno(void)
{
    __asm__ volatile("" ::: "memory");
    return errno;
}

struct conn;

struct server {
    int lfd;
    struct sockaddr_in addr;
    int64_t idle_ns, header_ns;
    csp_ctx *ctx;                 /* cancelled at shutdown          */
    int sig_pipe[2];
    bool quiet;
    csp_waitgroup tasks;
    _Atomic long conns, requests, errors;
    /* The open connections, so that the shutdown can end the idle ones
     * (see close_idle). */
    csp_mutex conns_mu;
    struct conn *open_conns;
    _Atomic bool closing;         /* set by close_idle                */
};

static struct server *the_server;

/* ---- responses ------------------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

/* The usual answer, ready made: 200 to a keep-alive HTTP/1.1 GET /. */
static const char OK_KEEP_ALIVE[] = "HTTP/1.1 200 OK\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n"
                                    "Content-Length: 14\r\n"
                                    "\r\n"
                                    "Hello, World!\n";

/* Writes one response; false if the connection failed. */
static bool respond(int fd, int status, bool head_only, bool keep_alive, bool http10)
{
    if (status == 200 && !head_only && keep_alive && !http10) {
        size_t n = sizeof OK_KEEP_ALIVE - 1;
        return csp_write(fd, OK_KEEP_ALIVE, n, csp_deadline(MS(10000))) == (ssize_t)n;
    }
    const char *body = status == 200 ? HELLO : reason(status);
    char bodybuf[64];
    if (status != 200) {
        snprintf(bodybuf, sizeof bodybuf, "%d %s\n", status, reason(status));
        body = bodybuf;
    }
    size_t blen = strlen(body);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "\r\n",
                     status, reason(status), blen,
                     !keep_alive ? "Connection: close\r\n"
                                 : http10 ? "Connection: keep-alive\r\n" : "");
    char out[512];
    memcpy(out, head, (size_t)n);
    size_t len = (size_t)n;
    if (!head_only) {
        memcpy(out + len, body, blen);
        len += blen;
    }
    return csp_write(fd, out, len, csp_deadline(MS(10000))) == (ssize_t)len;
}

/* ---- parsing ---------------------------------------------------------------------- */

struct request {
    int status;             /* 0 while fine, else the error to answer */
    bool head_only, keep_alive, http10, is_root, is_get;
    long content_length;
};

static bool is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Parses the head in buf[0..len) (ending with CRLF CRLF). */
static void parse(const char *buf, size_t len, struct request *r)
{
    memset(r, 0, sizeof *r);
    const char *p = buf, *end = buf + len;
    /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    const char *m = p;
    while (p < end && is_tchar((unsigned char)*p))
        p++;
    size_t mlen = (size_t)(p - m);
    if (mlen == 0 || mlen > 16 || p >= end || *p != ' ') {
        r->status = 400;
        return;
    }
    const char *target = ++p;
    while (p < end && *p > ' ' && *p < 0x7f)
        p++;
    size_t tlen = (size_t)(p - target);
    if (tlen == 0 || p >= end || *p != ' ') {
        r->status = 400;
        return;
    }
    const char *ver = ++p;
    while (p < end && *p != '\r')
        p++;
    if (p + 1 >= end || p[1] != '\n') {
        r->status = 400;
        return;
    }
    size_t vlen = (size_t)(p - ver);
    p += 2;
    if (vlen == 8 && !memcmp(ver, "HTTP/1.1", 8)) {
        r->keep_alive = true;
    } else if (vlen == 8 && !memcmp(ver, "HTTP/1.0", 8)) {
        r->http10 = true;
    } else if (vlen == 8 && !memcmp(ver, "HTTP/", 5) && isdigit((unsigned char)ver[5]) &&
               ver[6] == '.' && isdigit((unsigned char)ver[7])) {
        r->status = 505;
        return;
    } else {
        r->status = 400;
        return;
    }
    r->is_get = mlen == 3 && !memcmp(m, "GET", 3);
    r->head_only = mlen == 4 && !memcmp(m, "HEAD", 4);
    r->is_root = tlen == 1 && target[0] == '/';

    /* Header fields: NAME ":" OWS VALUE OWS CRLF, until an empty line. */
    bool host = false;
    r->content_length = 0;
    bool have_cl = false;
    for (;;) {
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
            break;                          /* the empty line */
        const char *name = p;
        while (p < end && is_tchar((unsigned char)*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (nlen == 0 || p >= end || *p != ':') {
            r->status = 400;                /* includes "Name :" and obs-fold */
            return;
        }
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *val = p;
        while (p < end && *p != '\r') {
            if ((unsigned char)*p < 0x20 && *p != '\t') {
                r->status = 400;            /* control bytes in a value */
                return;
            }
            p++;
        }
        if (p + 1 >= end || p[1] != '\n') {
            r->status = 400;
            return;
        }
        size_t vl = (size_t)(p - val);
        while (vl && (val[vl - 1] == ' ' || val[vl - 1] == '\t'))
            vl--;
        p += 2;
        if (nlen == 4 && !strncasecmp(name, "Host", 4)) {
            host = true;
        } else if (nlen == 10 && !strncasecmp(name, "Connection", 10)) {
            if (vl == 5 && !strncasecmp(val, "close", 5))
                r->keep_alive = false;
            else if (vl == 10 && !strncasecmp(val, "keep-alive", 10))
                r->keep_alive = true;
        } else if (nlen == 14 && !strncasecmp(name, "Content-Length", 14)) {
            long v = 0;
            if (vl == 0 || vl > 9) {
                r->status = vl > 9 ? 413 : 400;
                return;
            }
            for (size_t i = 0; i < vl; i++) {
                if (!isdigit((unsigned char)val[i])) {
                    r->status = 400;
                    return;
                }
                v = v * 10 + (val[i] - '0');
            }
            if (have_cl && v != r->content_length) {
                r->status = 400;            /* conflicting lengths: smuggling */
                return;
            }
            have_cl = true;
            r->content_length = v;
        } else if (nlen == 17 && !strncasecmp(name, "Transfer-Encoding", 17)) {
            r->status = 501;
            return;
        }
    }
    if (!r->http10 && !host) {
        r->status = 400;
        return;
    }
    if (r->content_length > MAX_BODY)
        r->status = 413;
}

/* ---- one connection ------------------------------------------------------------------ */

struct conn {
    struct server *s;
    int fd;
    /* In s->open_conns (under s->conns_mu) while fd is open. */
    struct conn *next, *prev;
    _Atomic bool idle;            /* waiting for a request's first byte */
};

/* Registers c, or returns false if the shutdown has begun. */
static bool conn_register(struct conn *c)
{
    struct server *s = c->s;
    csp_mutex_lock(&s->conns_mu);
    bool ok = !atomic_load(&s->closing);
    if (ok) {
        c->prev = NULL;
        c->next = s->open_conns;
        if (c->next)
            c->next->prev = c;
        s->open_conns = c;
    }
    csp_mutex_unlock(&s->conns_mu);
    return ok;
}

/* Before c->fd is closed: close_idle must not touch it any more. */
static void conn_unregister(struct conn *c)
{
    struct server *s = c->s;
    csp_mutex_lock(&s->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->open_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    csp_mutex_unlock(&s->conns_mu);
}

/* At shutdown: every connection that waits for a new request reads end
 * of file and closes; the others finish the request they are serving and
 * then close (they see the context cancelled).  Dekker on two seq_cst
 * flags: a connection sets its idle flag and then looks at `closing`,
 * this sets `closing` and then looks at the idle flags, so one of the two
 * sees the other.  The descriptors are valid here: a connection leaves
 * the list before it closes its socket. */
static void close_idle(struct server *s)
{
    csp_mutex_lock(&s->conns_mu);
    atomic_store(&s->closing, true);
    for (struct conn *c = s->open_conns; c; c = c->next)
        if (atomic_load(&c->idle))
            shutdown(c->fd, SHUT_RD);
    csp_mutex_unlock(&s->conns_mu);
}

/* Closes after an error response without losing it: if the client is
 * still sending, closing at once would send a reset that can destroy the
 * response in flight.  So: send our FIN, read and drop what still comes
 * (for a bounded time and amount), then close. */
static void linger_close(int fd)
{
    shutdown(fd, SHUT_WR);
    int64_t dl = csp_deadline(MS(2000));
    char sink[4096];
    for (size_t total = 0; total < (1u << 20);) {
        ssize_t n = csp_read(fd, sink, sizeof sink, dl);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

static const char *find_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return buf + i + 1;
    return NULL;
}

static void handle(void *arg)
{
    struct conn *c = arg;             /* ours until we return (csp_go_copy) */
    struct server *s = c->s;
    char *buf = malloc(MAX_HEAD);
    size_t len = 0;               /* bytes in buf (pipelined requests too) */
    bool open = buf != NULL && conn_register(c);
    bool registered = open;
    bool failed = false;          /* answered with an error: linger */
    while (open) {
        /* Wait for a complete head: the idle timeout (and the shutdown)
         * before its first byte, the header timeout after it. */
        int64_t head_dl = CSP_FOREVER;
        const char *end;
        while (!(end = find_end(buf, len))) {
            if (len == MAX_HEAD) {
                respond(c->fd, 431, false, false, false);
                open = false;
                failed = true;
                break;
            }
            int64_t dl = head_dl;
            if (len == 0) {
                atomic_store(&c->idle, true);
                if (atomic_load(&s->closing)) {
                    open = false;           /* shutting down (close_idle) */
                    break;
                }
                dl = csp_deadline(s->idle_ns);
            }
            ssize_t n = csp_read(c->fd, buf + len, MAX_HEAD - len, dl);
            int err = n < 0 ? task_errno() : 0;
            atomic_store_explicit(&c->idle, false, memory_order_relaxed);
            if (n < 0 && err == ETIMEDOUT && len > 0) {
                respond(c->fd, 408, false, false, false);
                open = false;
                failed = true;
                break;
            }
            if (n <= 0) {
                open = false;       /* idle, closed by the client, shut down, an error */
                break;
            }
            if (len == 0)
                head_dl = csp_deadline(s->header_ns);
            len += (size_t)n;
        }
    if (!open)
            break;
        size_t head_len = (size_t)(end - buf);
        struct request r;
        parse(buf, head_len, &r);
        if (r.status) {
            atomic_fetch_add(&s->errors, 1);
            respond(c->fd, r.status, false, false, false);
            failed = true;
            break;
        }
        /* Skip the body (a GET has none worth reading). */
        size_t body = (size_t)r.content_length;
        size_t have = len - head_len;
        size_t skip = have < body ? have : body;
        memmove(buf, buf + head_len + skip, len - head_len - skip);
        len -= head_len + skip;
        body -= skip;
        while (body > 0 && open) {
            char sink[4096];
            ssize_t n = csp_read(c->fd, sink, body < sizeof sink ? body : sizeof sink,
                                 csp_deadline(s->header_ns));
            if (n <= 0)
                open = false;
            else
                body -= (size_t)n;
        }
        if (!open)
            break;
        /* Answer; after the shutdown began, this is the last one. */
        bool keep = r.keep_alive && csp_ctx_err(s->ctx) == 0;
        int status = r.is_root && (r.is_get || r.head_only) ? 200 : 404;
        atomic_fetch_add(&s->requests, 1);
        if (!respond(c->fd, status, r.head_only, keep, r.http10) || !keep)
            break;
    }
    free(buf);
    if (failed)
        linger_close(c->fd);
    if (registered)
        conn_unregister(c);
    csp_fd_close(c->fd);
    csp_ctx_release(s->ctx);
    csp_wg_done(&s->tasks);
}

/* ---- accepting, shutdown ---------------------------------------------------------------- */

static void acceptor(void *arg)
{
    struct server *s = arg;
    csp_chan *done = csp_ctx_done(s->ctx);
    for (;;) {
        csp_case k[2] = { CSP_READABLE(s->lfd), CSP_RECV(done, NULL) };
        if (csp_select(k, 2, CSP_FOREVER) == 1)
            break;
        int fd = csp_accept(s->lfd, NULL, NULL, CSP_NOWAIT);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->conns, 1);
        struct conn c = { .s = s, .fd = fd };
        csp_ctx_retain(s->ctx);
        csp_wg_add(&s->tasks, 1);
        if (csp_go_copy(handle, &c, sizeof c) != 0) {
            csp_fd_close(fd);
            csp_ctx_release(s->ctx);
            csp_wg_done(&s->tasks);
        }
    }
    csp_fd_close(s->lfd);
    csp_wg_done(&s->tasks);
}

static void on_sigint(int sig)
{
    (void)sig;
    int saved = errno;
    if (the_server && write(the_server->sig_pipe[1], "", 1) < 0) {
        /* full: a shutdown is already under way */
    }
    errno = saved;
}

static void signal_watcher(void *arg)
{
    struct server *s = arg;
    csp_case k[2] = { CSP_READABLE(s->sig_pipe[0]), CSP_RECV(csp_ctx_done(s->ctx), NULL) };
    if (csp_select(k, 2, CSP_FOREVER) == 0) {
        if (!s->quiet)
            printf("httpd: SIGINT, shutting down\n");
        csp_ctx_cancel(s->ctx);
    }
    close_idle(s);
    csp_wg_done(&s->tasks);
}

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
    socklen_t alen = sizeof s->addr;
    if (bind(s->lfd, (struct sockaddr *)&s->addr, sizeof s->addr) != 0 ||
        listen(s->lfd, 1024) != 0 || getsockname(s->lfd, (struct sockaddr *)&s->addr, &alen) != 0)
        return errno;
    if (pipe(s->sig_pipe) != 0)
        return errno;
    fcntl(s->sig_pipe[1], F_SETFL, O_NONBLOCK);
    if (!(s->ctx = csp_ctx_with_cancel(csp_ctx_background())))
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

struct options {
    int port;
    int64_t idle_ns, header_ns;
    bool selftest;
    int status;
};

static void serve_main(void *arg)
{
    struct options *o = arg;
    struct server *s = calloc(1, sizeof *s);
    s->idle_ns = o->idle_ns;
    s->header_ns = o->header_ns;
    int err = server_start(s, o->port);
    if (err) {
        fprintf(stderr, "httpd: cannot listen on port %d: %s\n", o->port, strerror(err));
        o->status = 1;
        free(s);
        return;
    }
    printf("httpd: listening on http://127.0.0.1:%d/\n", ntohs(s->addr.sin_port));
    fflush(stdout);
    csp_wg_wait(&s->tasks);
    printf("httpd: %ld connection(s), %ld request(s), %ld bad request(s)\n",
           atomic_load(&s->conns), atomic_load(&s->requests), atomic_load(&s->errors));
    server_finish(s);
    free(s);
}

/* ---- --selftest ------------------------------------------------------------------------ */

struct test {
    struct server *s;
    _Atomic int failures, checks;
    csp_waitgroup wg;
};

#define CHECK(t, cond, ...)                                                    \
    do {                                                                       \
        atomic_fetch_add(&(t)->checks, 1);                                     \
        if (!(cond)) {                                                         \
            fprintf(stderr, "httpd selftest: FAILED: " __VA_ARGS__);           \
            fputc('\n', stderr);                                               \
            atomic_fetch_add(&(t)->failures, 1);                               \
        }                                                                      \
    } while (0)

static int dial(struct test *t)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && csp_connect(fd, (struct sockaddr *)&t->s->addr, sizeof t->s->addr,
                               csp_deadline(MS(10000))) != 0) {
        csp_fd_close(fd);
        fd = -1;
    }
    return fd;
}

static bool send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    return csp_write(fd, s, n, csp_deadline(MS(10000))) == (ssize_t)n;
}

/* A client-side reader of responses, with its own buffer. */
struct reader {
    int fd;
    char buf[16384];
    size_t len;
};

/* Reads one response: its status, body and whether the server said
 * "Connection: close".  Returns the status, 0 at end of file, -1 on
 * error or a malformed response. */
static int read_response(struct reader *rd, bool head_only, char *body, size_t bodycap,
                         bool *closing)
{
    const char *end;
    while (!(end = find_end(rd->buf, rd->len))) {
        if (rd->len == sizeof rd->buf)
            return -1;
        ssize_t n = csp_read(rd->fd, rd->buf + rd->len, sizeof rd->buf - rd->len,
                             csp_deadline(MS(10000)));
        if (n <= 0)
            return n == 0 && rd->len == 0 ? 0 : -1;
        rd->len += (size_t)n;
    }
    int status = 0;
    if (sscanf(rd->buf, "HTTP/1.1 %d ", &status) != 1)
        return -1;
    size_t head = (size_t)(end - rd->buf);
    long cl = -1;
    *closing = false;
    for (const char *p = rd->buf; p < end; p = strchr(p, '\n') + 1) {
        if (!strncasecmp(p, "Content-Length:", 15))
            cl = strtol(p + 15, NULL, 10);
        if (!strncasecmp(p, "Connection: close", 17))
            *closing = true;
    }
    if (cl < 0)
        return -1;
    size_t blen = head_only ? 0 : (size_t)cl;
    while (rd->len < head + blen) {
        ssize_t n = csp_read(rd->fd, rd->buf + rd->len, sizeof rd->buf - rd->len,
                             csp_deadline(MS(10000)));
        if (n <= 0)
            return -1;
        rd->len += (size_t)n;
    }
    if (body) {
        size_t k = blen < bodycap - 1 ? blen : bodycap - 1;
        memcpy(body, rd->buf + head, k);
        body[k] = '\0';
    }
    memmove(rd->buf, rd->buf + head + blen, rd->len - head - blen);
    rd->len -= head + blen;
    return status;
}

/* True when the server closed the connection (end of file, or a reset). */
static bool server_closed(struct reader *rd)
{
    if (rd->len)
        return false;
    char c;
    ssize_t n = csp_read(rd->fd, &c, 1, csp_deadline(MS(10000)));
    return n == 0 || (n < 0 && task_errno() == ECONNRESET);
}

/* Sends `req` on a new connection; expects `status` and then, if
 * `then_closed`, that the server closes. */
static void expect_once(struct test *t, const char *what, const char *req, int status,
                        bool then_closed)
{
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    CHECK(t, rd->fd >= 0, "%s: connect", what);
    if (rd->fd >= 0) {
        CHECK(t, send_str(rd->fd, req), "%s: send", what);
        bool closing;
        int st = read_response(rd, false, NULL, 0, &closing);
        CHECK(t, st == status, "%s: status %d, want %d", what, st, status);
        if (then_closed) {
            CHECK(t, closing, "%s: no Connection: close", what);
            CHECK(t, server_closed(rd), "%s: connection left open", what);
        }
        csp_fd_close(rd->fd);
    }
    free(rd);
}

static void t_keepalive(void *arg)
{
    struct test *t = arg;
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    CHECK(t, rd->fd >= 0, "keep-alive: connect");
    for (int i = 0; rd->fd >= 0 && i < 100; i++) {
        bool closing;
        char body[64];
        bool ok = send_str(rd->fd, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
        int st = read_response(rd, false, body, sizeof body, &closing);
        ok = ok && st == 200 && !strcmp(body, HELLO) && !closing;
        CHECK(t, ok, "keep-alive: request %d: status %d", i, st);
        if (!ok)
            break;
    }
    /* 404 keeps the connection; HEAD has no body. */
    bool closing;
    CHECK(t, send_str(rd->fd, "GET /nope HTTP/1.1\r\nHost: test\r\n\r\n"), "404: send");
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 404 && !closing, "404");
    CHECK(t, send_str(rd->fd, "HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"), "HEAD: send");
    CHECK(t, read_response(rd, true, NULL, 0, &closing) == 200, "HEAD /");
    CHECK(t, send_str(rd->fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                              "GET / HTTP/1.1\r\nHost: t\r\n\r\n"),
          "body: send");
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 404, "POST with a body");
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 200, "request after a body");
    csp_fd_close(rd->fd);
    free(rd);
    csp_wg_done(&t->wg);
}

static void t_pipelined(void *arg)
{
    struct test *t = arg;
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    CHECK(t, send_str(rd->fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
          "pipelined: send");
    bool closing;
    int a = read_response(rd, false, NULL, 0, &closing);
    int b = read_response(rd, false, NULL, 0, &closing);
    int c = read_response(rd, false, NULL, 0, &closing);
    CHECK(t, a == 200 && b == 404 && c == 200 && closing, "pipelined: %d %d %d", a, b, c);
    CHECK(t, server_closed(rd), "pipelined: not closed after Connection: close");
    csp_fd_close(rd->fd);
    free(rd);
    csp_wg_done(&t->wg);
}

static void t_slow(void *arg)
{
    struct test *t = arg;
    /* Byte by byte, but within the header timeout: answered. */
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    const char *req = "GET / HTTP/1.1\r\nHost: slow\r\n\r\n";
    for (const char *p = req; *p; p++) {
        CHECK(t, csp_write(rd->fd, p, 1, csp_deadline(MS(10000))) == 1, "slow: send");
        csp_sleep(MS(1));
    }
    bool closing;
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 200, "slow request");
    csp_fd_close(rd->fd);

    /* Slowloris: a head that never ends gets 408 and a close. */
    memset(rd, 0, sizeof *rd);
    rd->fd = dial(t);
    int64_t t0 = csp_now();
    CHECK(t, send_str(rd->fd, "GET / HTTP/1.1\r\nHost: slow\r\nX-Wait: "), "slowloris: send");
    int st = read_response(rd, false, NULL, 0, &closing);
    CHECK(t, st == 408 && closing, "slowloris: status %d", st);
    CHECK(t, server_closed(rd), "slowloris: left open");
    CHECK(t, csp_now() - t0 >= t->s->header_ns, "slowloris: cut before the header timeout");
    csp_fd_close(rd->fd);

    /* An idle keep-alive connection is closed after the idle timeout. */
    memset(rd, 0, sizeof *rd);
    rd->fd = dial(t);
    CHECK(t, send_str(rd->fd, "GET / HTTP/1.1\r\nHost: idle\r\n\r\n"), "idle: send");
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 200, "idle: first request");
    t0 = csp_now();
    CHECK(t, server_closed(rd), "idle: left open");
    CHECK(t, csp_now() - t0 >= t->s->idle_ns - MS(5), "idle: closed too early");
    csp_fd_close(rd->fd);
    free(rd);
    csp_wg_done(&t->wg);
}

static void t_bad(void *arg)
{
    struct test *t = arg;
    static char big[MAX_HEAD * 2 + 64];
    strcpy(big, "GET / HTTP/1.1\r\nHost: big\r\nX-Big: ");
    memset(big + strlen(big), 'a', MAX_HEAD * 2 - strlen(big));
    strcpy(big + MAX_HEAD * 2, "\r\n\r\n");
    static const struct {
        const char *what, *req;
        int status;
    } cases[] = {
        { "garbage", "GARBAGE\r\n\r\n", 400 },
        { "no version", "GET /\r\n\r\n", 400 },
        { "no host", "GET / HTTP/1.1\r\n\r\n", 400 },
        { "header without colon", "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400 },
        { "space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
        { "bare LF", "GET / HTTP/1.1\nHost: x\n\r\n\r\n", 400 },
        { "control byte", "GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n", 400 },
        { "bad length", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400 },
        { "two lengths", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
        { "huge body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413 },
        { "chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
        { "HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
        { "HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 200 },
        { "Connection: close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_once(t, cases[i].what, cases[i].req, cases[i].status, true);
    expect_once(t, "oversized head", big, 431, true);
    /* Binary junk with NUL bytes. */
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    char junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 37);
    memcpy(junk + 60, "\r\n\r\n", 4);
    CHECK(t, csp_write(rd->fd, junk, sizeof junk, csp_deadline(MS(10000))) == sizeof junk,
          "junk: send");
    bool closing;
    CHECK(t, read_response(rd, false, NULL, 0, &closing) == 400, "binary junk");
    csp_fd_close(rd->fd);
    /* A client that vanishes mid-request does not disturb the server. */
    rd->fd = dial(t);
    send_str(rd->fd, "GET / HTTP/1.1\r\nHo");
    csp_fd_close(rd->fd);
    free(rd);
    csp_wg_done(&t->wg);
}

static void t_many(void *arg)
{
    struct test *t = arg;
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(t);
    CHECK(t, rd->fd >= 0, "many: connect");
    for (int i = 0; rd->fd >= 0 && i < 20; i++) {
        bool closing;
        if (!send_str(rd->fd, "GET / HTTP/1.1\r\nHost: many\r\n\r\n") ||
            read_response(rd, false, NULL, 0, &closing) != 200) {
            CHECK(t, false, "many: request %d", i);
            break;
        }
    }
    if (rd->fd >= 0)
        csp_fd_close(rd->fd);
    free(rd);
    csp_wg_done(&t->wg);
}

static void selftest_main(void *arg)
{
    struct options *o = arg;
    struct test t = { 0 };
    struct server *s = calloc(1, sizeof *s);
    s->idle_ns = MS(1000);
    s->header_ns = MS(1000);
    s->quiet = true;
    t.s = s;
    if (server_start(s, 0) != 0) {
        fprintf(stderr, "httpd selftest: cannot listen\n");
        o->status = 1;
        return;
    }
    printf("httpd selftest: server on 127.0.0.1:%d\n", ntohs(s->addr.sin_port));
    csp_wg_add(&t.wg, 4 + 100);
    csp_go(t_keepalive, &t);
    csp_go(t_pipelined, &t);
    csp_go(t_slow, &t);
    csp_go(t_bad, &t);
    for (int i = 0; i < 100; i++)
        csp_go(t_many, &t);
    csp_wg_wait(&t.wg);
    printf("httpd selftest: keep-alive, pipelining, slow, bad and 100 concurrent clients "
           "done (%d checks)\n", atomic_load(&t.checks));

    /* Shutdown: an idle keep-alive connection is closed, the server ends. */
    struct reader *rd = calloc(1, sizeof *rd);
    rd->fd = dial(&t);
    bool closing;
    CHECK(&t, send_str(rd->fd, "GET / HTTP/1.1\r\nHost: end\r\n\r\n") &&
                  read_response(rd, false, NULL, 0, &closing) == 200,
          "before shutdown");
    raise(SIGINT);
    CHECK(&t, server_closed(rd), "idle connection not closed at shutdown");
    csp_fd_close(rd->fd);
    free(rd);
    csp_wg_wait(&s->tasks);
    printf("httpd selftest: %ld request(s) served, %ld bad request(s) refused\n",
           atomic_load(&s->requests), atomic_load(&s->errors));
    server_finish(s);
    free(s);
    o->status = atomic_load(&t.failures) ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o = { .port = 8080, .idle_ns = MS(30000), .header_ns = MS(10000) };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--selftest"))
            o.selftest = true;
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            o.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--idle-ms") && i + 1 < argc)
            o.idle_ns = MS(atol(argv[++i]));
        else if (!strcmp(argv[i], "--header-ms") && i + 1 < argc)
            o.header_ns = MS(atol(argv[++i]));
        else {
            fprintf(stderr, "usage: httpd [--port N] [--idle-ms MS] [--header-ms MS] | --selftest\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);   /* csp_write never raises it; plain writes might */
    /* The shell or CI runner that started us may have blocked SIGINT;
     * unblock it here, before csp_run starts the worker threads, so
     * that every thread inherits the mask and the signal arrives. */
    sigset_t intr;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &intr, NULL);
    int r = csp_run(o.selftest ? selftest_main : serve_main, &o);
    if (r != 0) {
        fprintf(stderr, "httpd: csp_run: %s\n", strerror(r));
        return 1;
    }
    if (o.selftest && o.status == 0)
        printf("httpd selftest: ok\n");
    return o.status;
}
