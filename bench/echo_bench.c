/*
 * echo_bench.c - TCP echo round trips over loopback with libcsp tasks:
 * N client connections (one task each) against an echo server (one task
 * per connection), for N = 1, 100 and 10,000.  bench/peers/echo.go is the
 * same program in Go (a goroutine per connection, package net); the two
 * print the same lines and bench/compare-io runs them side by side.
 *
 * Usage: echo_bench [--conns=1,100,10000] [--secs=S] [--warmup=S] [--size=B]
 *                   [--port=P] [--inproc] [--quick]
 *        echo_bench --server [--buf=B]  listen on 127.0.0.1 (a free port),
 *                                       print "port N", serve until killed
 *                                       (reading into B bytes, default 4096)
 *        echo_bench --idle=N --port=P [--http] [--hold=S]
 *
 *   For each N it starts a fresh server process (this program with
 *   --server; or uses the one listening on --port=P; or, with --inproc,
 *   serves from the same process), opens N connections, and lets every
 *   connection do round trips for a warm-up (default 1 s) and then for a
 *   measured period (default 5 s): write a SIZE-byte message (default 64),
 *   read the SIZE-byte echo, compare it byte for byte with what was sent.
 *   Durations are multiplied by CSP_BENCH_SCALE (e.g. 0.2 for a quick
 *   run).  One line per N:
 *
 *     echo conns=N size=B secs=S round_trips=R rtt_per_s=X p50_us=A p99_us=B
 *          cpu_us_per_rt=C
 *
 *   (one line), where C is the CPU time (user + system) that the client
 *   and server processes used during the measured period, per round
 *   trip, from /proc/PID/stat: what a round trip costs, whatever else
 *   runs on the machine.
 *   A wrong byte, a short read or a failed call is an error: the program
 *   prints it and exits 1, so a broken run cannot print a number.
 *   --quick is the tiny in-process run of `make check` (N=10, 0.2 s; the
 *   default of bench/echo_bench_quick, built with -DCSP_BENCH_QUICK): it
 *   checks the content, never the speed.
 *
 *   --idle=N opens N connections to --port=P, does one round trip on each
 *   (an echo, or with --http one "GET /" keep-alive request), prints
 *   "ready N" and keeps them open until killed (at most --hold seconds,
 *   default 120): bench/compare-io reads the server's VmRSS before and
 *   after to get the resident memory per idle connection.
 *
 * Why the comparison with echo.go is fair: the same protocol and message,
 * the same connection and task structure on both sides (one task or
 * goroutine per connection, client and server each in its own process so
 * that 10,000 connections fit in the descriptor limit of each), TCP_NODELAY
 * on every connection (Go sets it by default), the soft descriptor limit
 * raised to the hard one (Go 1.19 does that at start-up), at most 64
 * connects in flight, the same latency histogram (log-linear buckets of
 * 1/32 of a power of two, updated with one atomic add), and the same
 * clocks (one monotonic clock read before the write and one after the
 * read).  Both use as many worker threads as CPUs (GOMAXPROCS).
 */
#define _GNU_SOURCE
#include <csp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SIZE 4096
#define CONNECTS_IN_FLIGHT 64
#define SEC(x) ((int64_t)((x) * 1e9))

/* errno after a call that may park (see csp_errno in csp.h). */
#define ERRNO csp_errno()

static void die(const char *fmt, const char *arg, int err)
{
    fprintf(stderr, "echo_bench: ");
    fprintf(stderr, fmt, arg);
    if (err)
        fprintf(stderr, ": %s", strerror(err));
    fputc('\n', stderr);
    exit(1);
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- the latency histogram ------------------------------------------------- */

/* Values below 64 ns have their own bucket; above, each power of two is
 * split into 32 buckets (3% wide). */
#define SUB 32
#define NBUCKETS (SUB * 64)

static _Atomic uint64_t hist[NBUCKETS];

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 5;                /* v >> shift is in [32, 64) */
    return SUB * shift + (unsigned)(v >> shift);
}

static double bucket_mid(unsigned b)
{
    if (b < 2 * SUB)
        return b;
    unsigned shift = b / SUB - 1;
    uint64_t lo = (uint64_t)(b % SUB + SUB) << shift;
    return (double)lo + (double)(((uint64_t)1 << shift) - 1) / 2.0;
}

/* The q-quantile (0 < q < 1) in microseconds; total is the count. */
static double quantile_us(uint64_t total, double q)
{
    uint64_t rank = (uint64_t)((double)total * q), seen = 0;
    for (unsigned b = 0; b < NBUCKETS; b++) {
        seen += atomic_load_explicit(&hist[b], memory_order_relaxed);
        if (seen > rank)
            return bucket_mid(b) / 1000.0;
    }
    return 0;
}

/* ---- CPU time ------------------------------------------------------------------ */

/* User + system CPU seconds a process has used so far (/proc/PID/stat,
 * fields 14 and 15, in clock ticks); pid 0 is this process. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the server ------------------------------------------------------------ */

static size_t server_buf = MAX_SIZE;    /* --buf: the server's read buffer */

static void echo_conn(void *arg)
{
    int fd = *(int *)arg;
    char buf[server_buf];           /* on the task's stack (Go's is on its heap) */
    for (;;) {
        ssize_t n = csp_read(fd, buf, sizeof buf, CSP_FOREVER);
        if (n <= 0 || csp_write(fd, buf, (size_t)n, CSP_FOREVER) != n)
            break;
    }
    csp_fd_close(fd);
}

static void acceptor(void *arg)
{
    int lfd = *(int *)arg;
    for (;;) {
        int fd = csp_accept(lfd, NULL, NULL, CSP_FOREVER);
        if (fd < 0) {
            int e = ERRNO;
            if (e == EBADF || e == EINVAL)
                return;                     /* closed: --inproc is done */
            csp_sleep(SEC(0.01));           /* EMFILE and the like */
            continue;
        }
        nodelay(fd);
        if (csp_go_copy(echo_conn, &fd, sizeof fd) != 0)
            csp_fd_close(fd);
    }
}

static int listen_any(int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("%s", "socket", errno);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        die("%s", "listen", errno);
    *port = ntohs(a.sin_port);
    return lfd;
}

static void server_main(void *arg)
{
    (void)arg;
    int port;
    int lfd = listen_any(&port);
    printf("port %d\n", port);
    fflush(stdout);
    acceptor(&lfd);
}

/* Starts `self --server`; returns its pid and the port it listens on. */
static pid_t spawn_server(int *port)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        die("%s", "pipe", errno);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("%s", "fork", errno);
    if (pid == 0) {
        /* The server dies with us, whatever happens to us. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dup2(p[1], 1);
        char *args[] = { "echo_bench", "--server", NULL };
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(p[1]);
    char line[64];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t n = csp_read(p[0], line + len, sizeof line - 1 - len, csp_deadline(SEC(10)));
        if (n <= 0)
            die("%s", "the server did not start", n < 0 ? ERRNO : 0);
        len += (size_t)n;
        line[len] = '\0';
        if (strchr(line, '\n'))
            break;
    }
    csp_fd_close(p[0]);
    if (sscanf(line, "port %d", port) != 1)
        die("the server said \"%s\"", line, 0);
    return pid;
}

/* ---- the clients ------------------------------------------------------------- */

enum { WARMUP, MEASURE, STOP };

static struct {
    int port;
    size_t size;
    bool http;                   /* --idle: an HTTP request, not an echo */
    csp_chan *tokens;            /* connects in flight                   */
    csp_chan *start;             /* closed when every client is connected */
    csp_waitgroup connected, finished;
    _Atomic int phase;
    _Atomic long errors;
} B;

static void fail(long id, const char *what, int err)
{
    if (atomic_fetch_add(&B.errors, 1) < 5)
        fprintf(stderr, "echo_bench: connection %ld: %s%s%s\n", id, what, err ? ": " : "",
                err ? strerror(err) : "");
}

static int dial(long id)
{
    char tok = 0;
    csp_send(B.tokens, &tok);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(id, "socket", errno);
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)B.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        if (csp_connect(fd, (struct sockaddr *)&a, sizeof a, csp_deadline(SEC(30))) != 0) {
            fail(id, "connect", ERRNO);
            csp_fd_close(fd);
            fd = -1;
        } else {
            nodelay(fd);
        }
    }
    csp_recv(B.tokens, &tok);
    return fd;
}

/* The message of round trip `seq` on connection `id`. */
static void fill(unsigned char *m, size_t n, long id, uint64_t seq)
{
    uint64_t x = ((uint64_t)id << 32) ^ seq ^ 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m[i] = (unsigned char)x;
    }
}

/* Reads exactly n bytes; false on error or end of file. */
static bool read_full(int fd, unsigned char *buf, size_t n, long id)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = csp_read(fd, buf + got, n - got, csp_deadline(SEC(60)));
        if (k <= 0) {
            fail(id, k == 0 ? "end of file in the middle of an echo" : "read", k ? ERRNO : 0);
            return false;
        }
        got += (size_t)k;
    }
    return true;
}

static void client(void *arg)
{
    long id = *(long *)arg;
    unsigned char out[MAX_SIZE], in[MAX_SIZE];
    int fd = dial(id);
    csp_wg_done(&B.connected);
    if (fd < 0) {
        csp_wg_done(&B.finished);
        return;
    }
    csp_recv(B.start, NULL);                /* EPIPE once closed: go */
    /* At least one round trip each, however late the task ran: the quick
     * run of make check checks every connection, even on a loaded machine. */
    for (uint64_t seq = 0; seq == 0 || atomic_load_explicit(&B.phase, memory_order_relaxed) != STOP;
         seq++) {
        fill(out, B.size, id, seq);
        int64_t t0 = csp_now();
        if (csp_write(fd, out, B.size, csp_deadline(SEC(60))) != (ssize_t)B.size) {
            fail(id, "write", ERRNO);
            break;
        }
        if (!read_full(fd, in, B.size, id))
            break;
        int64_t t1 = csp_now();
        if (memcmp(in, out, B.size) != 0) {
            fail(id, "the echo differs from the message", 0);
            break;
        }
        if (atomic_load_explicit(&B.phase, memory_order_relaxed) == MEASURE)
            atomic_fetch_add_explicit(&hist[bucket_of((uint64_t)(t1 - t0))], 1,
                                      memory_order_relaxed);
    }
    csp_fd_close(fd);
    csp_wg_done(&B.finished);
}

struct run {
    long conns;
    double secs, warmup;
    bool inproc;
    bool quick;         /* checks content only: no minimum of round trips */
};

static void one_run(const struct run *r, int ext_port)
{
    pid_t server = 0;
    int lfd = -1;
    if (ext_port > 0) {
        B.port = ext_port;
    } else if (r->inproc) {
        lfd = listen_any(&B.port);
        csp_go_copy(acceptor, &lfd, sizeof lfd);
    } else {
        server = spawn_server(&B.port);
    }
    for (unsigned b = 0; b < NBUCKETS; b++)
        atomic_store_explicit(&hist[b], 0, memory_order_relaxed);
    atomic_store(&B.phase, WARMUP);
    B.tokens = csp_chan_make(1, CONNECTS_IN_FLIGHT);
    B.start = csp_chan_make(0, 0);
    if (!B.tokens || !B.start)
        die("%s", "csp_chan_make", errno);
    csp_wg_add(&B.connected, r->conns);
    csp_wg_add(&B.finished, r->conns);
    for (long i = 0; i < r->conns; i++)
        if (csp_go_copy(client, &i, sizeof i) != 0)
            die("%s", "csp_go", ENOMEM);
    csp_wg_wait(&B.connected);
    if (atomic_load(&B.errors))
        exit(1);
    csp_close(B.start);
    csp_sleep(SEC(r->warmup));
    double cpu0 = cpu_seconds(0) + (server ? cpu_seconds(server) : 0);
    int64_t t0 = csp_now();
    atomic_store(&B.phase, MEASURE);
    csp_sleep(SEC(r->secs));
    atomic_store(&B.phase, STOP);
    int64_t t1 = csp_now();
    double cpu1 = cpu_seconds(0) + (server ? cpu_seconds(server) : 0);
    csp_wg_wait(&B.finished);
    csp_chan_release(B.tokens);
    csp_chan_release(B.start);
    if (server) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    if (lfd >= 0)
        csp_fd_close(lfd);                  /* the acceptor returns */
    if (atomic_load(&B.errors)) {
        fprintf(stderr, "echo_bench: %ld error(s) with %ld connections\n",
                atomic_load(&B.errors), r->conns);
        exit(1);
    }
    uint64_t total = 0;
    for (unsigned b = 0; b < NBUCKETS; b++)
        total += atomic_load(&hist[b]);
    if (total == 0 && !r->quick) {
        fprintf(stderr, "echo_bench: no round trip completed with %ld connections\n", r->conns);
        exit(1);
    }
    double wall = (double)(t1 - t0) / 1e9;
    printf("echo conns=%ld size=%zu secs=%.3f round_trips=%llu rtt_per_s=%.0f p50_us=%.1f "
           "p99_us=%.1f cpu_us_per_rt=%.2f\n",
           r->conns, B.size, wall, (unsigned long long)total, (double)total / wall,
           quantile_us(total, 0.50), quantile_us(total, 0.99),
           total ? (cpu1 - cpu0) * 1e6 / (double)total : 0.0);
    fflush(stdout);
}

/* ---- --idle: connections that stay open ---------------------------------------- */

static const char GET[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/* One HTTP request; true once a whole response (head and body) came. */
static bool http_once(int fd, long id)
{
    size_t n = sizeof GET - 1;
    if (csp_write(fd, GET, n, csp_deadline(SEC(60))) != (ssize_t)n) {
        fail(id, "write", ERRNO);
        return false;
    }
    char buf[1024];
    size_t len = 0;
    for (;;) {
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (end && cl && len >= (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10))
            return strncmp(buf, "HTTP/1.1 200", 12) == 0 || (fail(id, "not 200", 0), false);
        if (len == sizeof buf - 1) {
            fail(id, "response too long", 0);
            return false;
        }
        ssize_t k = csp_read(fd, buf + len, sizeof buf - 1 - len, csp_deadline(SEC(60)));
        if (k <= 0) {
            fail(id, "read", k ? ERRNO : 0);
            return false;
        }
        len += (size_t)k;
    }
}

static void idle_client(void *arg)
{
    long id = *(long *)arg;
    int fd = dial(id);
    if (fd >= 0) {
        if (B.http) {
            http_once(fd, id);
        } else {
            unsigned char out[64], in[64];
            fill(out, sizeof out, id, 0);
            if (csp_write(fd, out, sizeof out, csp_deadline(SEC(60))) != (ssize_t)sizeof out)
                fail(id, "write", ERRNO);
            else if (read_full(fd, in, sizeof in, id) && memcmp(in, out, sizeof in) != 0)
                fail(id, "the echo differs from the message", 0);
        }
    }
    /* The descriptor stays open until the process ends. */
    csp_wg_done(&B.connected);
}

struct idle {
    long conns;
    double hold;
};

static void idle_main(void *arg)
{
    struct idle *o = arg;
    B.tokens = csp_chan_make(1, CONNECTS_IN_FLIGHT);
    if (!B.tokens)
        die("%s", "csp_chan_make", errno);
    csp_wg_add(&B.connected, o->conns);
    for (long i = 0; i < o->conns; i++)
        if (csp_go_copy(idle_client, &i, sizeof i) != 0)
            die("%s", "csp_go", ENOMEM);
    csp_wg_wait(&B.connected);
    if (atomic_load(&B.errors))
        exit(1);
    printf("ready %ld\n", o->conns);
    fflush(stdout);
    csp_sleep(SEC(o->hold));
    exit(0);
}

/* ---- options ----------------------------------------------------------------------- */

struct main_args {
    long conns[16];
    int nconns;
    struct run r;
    int port;
};

static void bench_main(void *arg)
{
    struct main_args *m = arg;
    for (int i = 0; i < m->nconns; i++) {
        m->r.conns = m->conns[i];
        one_run(&m->r, m->port);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: echo_bench [--conns=1,100,10000] [--secs=S] [--warmup=S] [--size=B]\n"
            "                  [--port=P] [--inproc] [--quick]\n"
            "       echo_bench --server [--buf=B]\n"
            "       echo_bench --idle=N --port=P [--http] [--hold=S]\n"
            "  env CSP_BENCH_SCALE=<factor> scales the durations (default 1)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct main_args m = { .conns = { 1, 100, 10000 }, .nconns = 3,
                           .r = { .secs = 5, .warmup = 1 } };
    bool server = false;
#ifdef CSP_BENCH_QUICK
    bool quick = true;      /* bench/echo_bench_quick, for make check */
#else
    bool quick = false;
#endif
    struct idle idle = { 0, 120 };
    B.size = 64;
    const char *env = getenv("CSP_BENCH_SCALE");
    double scale = env ? atof(env) : 1.0;
    if (!(scale > 0))
        scale = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--server")) {
            server = true;
        } else if (!strcmp(a, "--inproc")) {
            m.r.inproc = true;
        } else if (!strcmp(a, "--http")) {
            B.http = true;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (!strncmp(a, "--conns=", 8)) {
            m.nconns = 0;
            for (char *p = (char *)a + 8; *p && m.nconns < 16;) {
                m.conns[m.nconns] = strtol(p, &p, 10);
                if (m.conns[m.nconns++] <= 0)
                    usage();
                if (*p == ',')
                    p++;
                else if (*p)
                    usage();
            }
        } else if (!strncmp(a, "--secs=", 7)) {
            m.r.secs = atof(a + 7);
        } else if (!strncmp(a, "--warmup=", 9)) {
            m.r.warmup = atof(a + 9);
        } else if (!strncmp(a, "--size=", 7)) {
            B.size = (size_t)atol(a + 7);
            if (B.size == 0 || B.size > MAX_SIZE)
                usage();
        } else if (!strncmp(a, "--buf=", 6)) {
            server_buf = (size_t)atol(a + 6);
            if (server_buf == 0 || server_buf > MAX_SIZE)
                usage();
        } else if (!strncmp(a, "--port=", 7)) {
            m.port = atoi(a + 7);
        } else if (!strncmp(a, "--idle=", 7)) {
            idle.conns = atol(a + 7);
        } else if (!strncmp(a, "--hold=", 7)) {
            idle.hold = atof(a + 7);
        } else {
            usage();
        }
    }
    if (quick) {
        m.conns[0] = 10;
        m.nconns = 1;
        m.r.secs = 0.2;
        m.r.warmup = 0.05;
        m.r.inproc = true;
        m.r.quick = true;
        scale = 1;
    }
    m.r.secs *= scale;
    m.r.warmup *= scale;
    if (m.r.secs <= 0 || m.r.warmup < 0)
        usage();

    /* As Go 1.19 does at start-up. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    int err;
    if (server) {
        err = csp_run(server_main, NULL);
    } else if (idle.conns > 0) {
        if (m.port <= 0)
            usage();
        B.port = m.port;
        err = csp_run(idle_main, &idle);
    } else {
        err = csp_run(bench_main, &m);
    }
    if (err) {
        fprintf(stderr, "echo_bench: csp_run: %s\n", strerror(err));
        return 1;
    }
    return 0;
}
