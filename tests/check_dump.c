/*
 * check_dump.c - the task dump: csp_dump's lines (number, state, parked
 * time with unit, entry function), its errors, the dump in csp_run's
 * deadlock report, and the CSP_DUMP_SIGNAL handler.
 *
 * The entry functions of the tasks below are not static and the program
 * is linked with -export-dynamic, so that dladdr can name them.
 */
#include "config.h"
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define _mark_point(file, line) ((void)0)   /* see check_chan.c */

#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif

#define MS(x) ((int64_t)(x) * 1000000)
#define SEC(x) ((int64_t)(x) * 1000000000)

/* ---- parsing a dump ----------------------------------------------------------- */

static const char *const states[] = {
    "chan receive", "chan send", "select", "mutex", "rwlock", "waitgroup",
    "once", "sleep", "io", "runnable", "running",
};

struct dline {
    unsigned long long id;
    char state[32];
    bool has_dur;
    int64_t dur_ns;
    char entry[256];
};

/* Parses one task line; false for a line that is not one (a header). */
static bool parse_line(const char *s, struct dline *d)
{
    memset(d, 0, sizeof *d);
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    d->id = strtoull(s, &end, 10);
    ck_assert_msg(*end == ' ', "no space after the task number: %s", s);
    s = end + 1;
    size_t n = 0;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        size_t k = strlen(states[i]);
        if (strncmp(s, states[i], k) == 0 && (s[k] == ' ' || s[k] == '\0') && k > n) {
            n = k;
            snprintf(d->state, sizeof d->state, "%s", states[i]);
        }
    }
    ck_assert_msg(n > 0, "no state word: %s", s);
    s += n;
    while (*s == ' ')
        s++;
    /* Optional for running/runnable, required when parked: "<n> <unit>". */
    size_t digits = strspn(s, "0123456789.");
    if (digits > 0 && s[digits] == ' ') {       /* not "0x...", an address */
        double v = strtod(s, &end);
        ck_assert_msg(*end == ' ', "duration without a unit: %s", s);
        s = end + 1;
        static const struct { const char *u; double ns; } units[] = {
            { "ns", 1 }, { "us", 1e3 }, { "\xc2\xb5s", 1e3 }, { "ms", 1e6 },
            { "s", 1e9 }, { "min", 60e9 }, { "m", 60e9 }, { "h", 3600e9 },
        };
        bool found = false;
        for (size_t i = 0; i < sizeof units / sizeof units[0] && !found; i++) {
            size_t k = strlen(units[i].u);
            if (strncmp(s, units[i].u, k) == 0 && (s[k] == ' ' || s[k] == '\0' || s[k] == '\n')) {
                d->dur_ns = (int64_t)(v * units[i].ns);
                d->has_dur = found = true;
                s += k;
            }
        }
        ck_assert_msg(found, "unknown duration unit: %s", s);
    }
    bool parked = strcmp(d->state, "running") != 0 && strcmp(d->state, "runnable") != 0;
    if (parked)
        ck_assert_msg(d->has_dur, "parked task without a duration: %s", d->state);
    /* The entry function: the last word of the line. */
    const char *last = strrchr(s, ' ');
    snprintf(d->entry, sizeof d->entry, "%s", last ? last + 1 : s);
    size_t len = strlen(d->entry);
    while (len && (d->entry[len - 1] == '\n' || d->entry[len - 1] == ' '))
        d->entry[--len] = '\0';
    ck_assert_msg(len > 0, "no entry function");
    return true;
}

/* Splits a dump into task lines; returns their number. */
static int parse_dump(const char *text, struct dline *out, int max)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        if (parse_line(line, &out[n])) {
            for (int i = 0; i < n; i++)
                ck_assert_msg(out[i].id != out[n].id, "task number %llu twice", out[n].id);
            ck_assert_int_lt(++n, max);
        }
        p += len + (nl ? 1 : 0);
    }
    return n;
}

static const struct dline *find_entry(const struct dline *d, int n, const char *name)
{
    const struct dline *hit = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(d[i].entry, name) == 0) {
            ck_assert_msg(!hit, "%s listed twice", name);
            hit = &d[i];
        }
    }
    return hit;
}

/* How the dump names fn: its symbol when dladdr can tell, else its address. */
static void expect_name(char *buf, size_t len, const char *sym, void (*fn)(void *))
{
#if defined(HAVE_DLADDR) && defined(HAVE_DLFCN_H)
    (void)fn;
    snprintf(buf, len, "%s", sym);
#else
    (void)sym;
    snprintf(buf, len, "%p", (void *)(uintptr_t)fn);
#endif
}

static char *read_all_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

/* The whole content of f from its start (pread: the file offset, which a
 * writer may share, is left alone). */
static char *read_file(FILE *f)
{
    fflush(f);
    int fd = fileno(f);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = pread(fd, buf + n, cap - n - 1, (off_t)n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- a known set of parked tasks ------------------------------------------------- */

struct known {
    csp_chan *ch, *s1, *s2, *sendto, *gate;
    csp_mutex mu;
    csp_rwlock rw;
    csp_waitgroup hold;          /* count 1 until the end */
    csp_once once;
    int sv[2];
    csp_waitgroup wg;
};

void dump_entry_recv(void *arg);
void dump_entry_mutex(void *arg);
void dump_entry_sleep(void *arg);
void dump_entry_select(void *arg);
void dump_entry_io(void *arg);
void dump_entry_runnable(void *arg);
void dump_entry_send(void *arg);
void dump_entry_rwlock(void *arg);
void dump_entry_waitgroup(void *arg);
void dump_entry_once_first(void *arg);
void dump_entry_once(void *arg);
void dump_entry_main(void *arg);

void dump_entry_send(void *arg)
{
    struct known *k = arg;
    int v = 5;
    ck_assert_int_eq(csp_send(k->sendto, &v), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_rwlock(void *arg)
{
    struct known *k = arg;
    ck_assert_int_eq(csp_rwlock_rdlock(&k->rw), 0);
    ck_assert_int_eq(csp_rwlock_rdunlock(&k->rw), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_waitgroup(void *arg)
{
    struct known *k = arg;
    ck_assert_int_eq(csp_wg_wait(&k->hold), 0);
    csp_wg_done(&k->wg);
}

static void once_body(void *arg)
{
    struct known *k = arg;
    csp_recv(k->gate, NULL);    /* the first caller stays inside */
}

void dump_entry_once_first(void *arg)
{
    struct known *k = arg;
    ck_assert_int_eq(csp_once_do(&k->once, once_body, k), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_once(void *arg)
{
    struct known *k = arg;
    ck_assert_int_eq(csp_once_do(&k->once, once_body, k), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_recv(void *arg)
{
    struct known *k = arg;
    int v;
    ck_assert_int_eq(csp_recv(k->ch, &v), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_mutex(void *arg)
{
    struct known *k = arg;
    ck_assert_int_eq(csp_mutex_lock(&k->mu), 0);
    ck_assert_int_eq(csp_mutex_unlock(&k->mu), 0);
    csp_wg_done(&k->wg);
}

void dump_entry_sleep(void *arg)
{
    struct known *k = arg;
    csp_sleep(MS(400));
    csp_wg_done(&k->wg);
}

void dump_entry_select(void *arg)
{
    struct known *k = arg;
    int a, b;
    csp_case c[2] = { CSP_RECV(k->s1, &a), CSP_RECV(k->s2, &b) };
    ck_assert_int_eq(csp_select(c, 2, CSP_FOREVER), 1);
    csp_wg_done(&k->wg);
}

void dump_entry_io(void *arg)
{
    struct known *k = arg;
    char c;
    ck_assert_int_eq(csp_read(k->sv[0], &c, 1, CSP_FOREVER), 1);
    csp_wg_done(&k->wg);
}

void dump_entry_runnable(void *arg)
{
    struct known *k = arg;
    csp_wg_done(&k->wg);
}

void dump_entry_main(void *arg)
{
    (void)arg;
    struct known k = { 0 };
    k.ch = csp_chan_make(sizeof(int), 0);
    k.s1 = csp_chan_make(sizeof(int), 0);
    k.s2 = csp_chan_make(sizeof(int), 0);
    k.sendto = csp_chan_make(sizeof(int), 0);
    k.gate = csp_chan_make(0, 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, k.sv), 0);
    csp_mutex_lock(&k.mu);
    csp_rwlock_wrlock(&k.rw);
    csp_wg_add(&k.hold, 1);
    int64_t t0 = csp_now();
    csp_wg_add(&k.wg, 11);
    csp_go(dump_entry_recv, &k);
    csp_go(dump_entry_mutex, &k);
    csp_go(dump_entry_sleep, &k);
    csp_go(dump_entry_select, &k);
    csp_go(dump_entry_io, &k);
    csp_go(dump_entry_send, &k);
    csp_go(dump_entry_rwlock, &k);
    csp_go(dump_entry_waitgroup, &k);
    csp_go(dump_entry_once_first, &k);
    csp_sleep(MS(10));          /* the first one is inside the once */
    csp_go(dump_entry_once, &k);
    csp_sleep(MS(100));
    /* One worker, and it runs us: a task started now stays runnable. */
    csp_go(dump_entry_runnable, &k);
    FILE *f = tmpfile();
    ck_assert_int_eq(csp_dump(fileno(f)), 0);
    int64_t elapsed = csp_now() - t0;
    char *text = read_file(f);
    fclose(f);

    struct dline d[64];
    int n = parse_dump(text, d, 64);
    ck_assert_msg(n >= 12, "only %d task lines in:\n%s", n, text);
    static const struct {
        const char *sym;
        void (*fn)(void *);
        const char *state;
    } want[] = {
        { "dump_entry_recv", dump_entry_recv, "chan receive" },
        { "dump_entry_mutex", dump_entry_mutex, "mutex" },
        { "dump_entry_sleep", dump_entry_sleep, "sleep" },
        { "dump_entry_select", dump_entry_select, "select" },
        { "dump_entry_io", dump_entry_io, "io" },
        { "dump_entry_runnable", dump_entry_runnable, "runnable" },
        { "dump_entry_send", dump_entry_send, "chan send" },
        { "dump_entry_rwlock", dump_entry_rwlock, "rwlock" },
        { "dump_entry_waitgroup", dump_entry_waitgroup, "waitgroup" },
        { "dump_entry_once_first", dump_entry_once_first, "chan receive" },
        { "dump_entry_once", dump_entry_once, "once" },
        { "dump_entry_main", dump_entry_main, "running" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char name[64];
        expect_name(name, sizeof name, want[i].sym, want[i].fn);
        const struct dline *l = find_entry(d, n, name);
        ck_assert_msg(l, "no line for %s in:\n%s", name, text);
        ck_assert_msg(strcmp(l->state, want[i].state) == 0, "%s: state '%s', want '%s'", name,
                      l->state, want[i].state);
        if (strcmp(want[i].state, "running") && strcmp(want[i].state, "runnable")) {
            /* Parked for about 100 ms: loose bounds either side. */
            ck_assert_msg(l->dur_ns >= MS(50) && l->dur_ns <= elapsed + MS(20),
                          "%s: parked for %lld ns, %lld ns since start", name,
                          (long long)l->dur_ns, (long long)elapsed);
        }
    }
    free(text);

    /* Release everybody. */
    int v = 1;
    csp_recv(k.sendto, &v);
    csp_rwlock_wrunlock(&k.rw);
    csp_wg_done(&k.hold);
    csp_close(k.gate);
    csp_send(k.ch, &v);
    csp_mutex_unlock(&k.mu);
    csp_send(k.s2, &v);
    ck_assert_int_eq(write(k.sv[1], "x", 1), 1);
    csp_wg_wait(&k.wg);
    csp_chan_release(k.ch);
    csp_chan_release(k.s1);
    csp_chan_release(k.s2);
    csp_chan_release(k.sendto);
    csp_chan_release(k.gate);
    csp_fd_close(k.sv[0]);
    csp_fd_close(k.sv[1]);
}

/* csp_dump lists a known set of tasks, one line each: a unique number
 * first, the state words of API.md (chan receive, chan send, mutex,
 * rwlock, waitgroup, once, sleep, select, io, runnable, running), a parked
 * time with its unit, and the entry function by name. */
START_TEST(test_dump_known_tasks)
{
    ck_assert_int_eq(csp_start(&(csp_config){ .workers = 1 }), 0);
    RUN_MAIN(dump_entry_main, NULL);
}
END_TEST

void dump_entry_short(void *arg);
void dump_entry_short(void *arg)
{
    csp_chan *ch = arg;
    csp_recv(ch, NULL);
}

static void short_main(void *arg)
{
    (void)arg;
    csp_chan *ch = csp_chan_make(0, 0);
    csp_go(dump_entry_short, ch);
    csp_yield();
    csp_sleep(MS(1));
    FILE *f = tmpfile();
    ck_assert_int_eq(csp_dump(fileno(f)), 0);
    char *text = read_file(f);
    fclose(f);
    struct dline d[16];
    int n = parse_dump(text, d, 16);
    char name[64];
    expect_name(name, sizeof name, "dump_entry_short", dump_entry_short);
    const struct dline *l = find_entry(d, n, name);
    ck_assert_msg(l && l->has_dur, "no parked line for %s in:\n%s", name, text);
    ck_assert_str_eq(l->state, "chan receive");
    ck_assert_int_lt(l->dur_ns, SEC(5));
    free(text);
    csp_close(ch);
    csp_chan_release(ch);
}

/* A task parked for a very short time still shows a duration with its
 * unit. */
START_TEST(test_dump_short_duration)
{
    RUN_MAIN(short_main, NULL);
}
END_TEST

/* csp_dump reports EBADF for a negative, a closed and a read-only
 * descriptor; with no runtime it writes no task line. */
START_TEST(test_dump_bad_fd)
{
    ck_assert_int_eq(csp_dump(-1), EBADF);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(csp_dump(p[0]), EBADF);      /* read end */
    ck_assert_int_eq(csp_dump(p[1]), 0);
    close(p[1]);
    ck_assert_int_eq(csp_dump(p[1]), EBADF);      /* closed */
    char *text = read_all_fd(p[0]);
    close(p[0]);
    struct dline d[4];
    ck_assert_int_eq(parse_dump(text, d, 4), 0);
    free(text);
}
END_TEST

/* ---- in a forked child ------------------------------------------------------------ */

/* Runs body() in a child whose stderr and stdout go to the returned
 * strings; returns its wait status. */
static int run_child(int (*body)(void), char **err_out, char **out_out)
{
    FILE *ef = tmpfile(), *of = tmpfile();
    /* Appending: the child's writers never overwrite each other. */
    fcntl(fileno(ef), F_SETFL, O_APPEND);
    fcntl(fileno(of), F_SETFL, O_APPEND);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fileno(ef), 2);
        dup2(fileno(of), 1);
        alarm(60);                      /* never hang the suite */
        int code = body();
        fflush(stdout);
        _exit(code);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    *err_out = read_file(ef);
    *out_out = read_file(of);
    fclose(ef);
    fclose(of);
    return status;
}

struct dl_env {
    csp_chan *ch;
    csp_mutex mu;
};

void deadlock_entry_recv(void *arg);
void deadlock_entry_mutex(void *arg);
void deadlock_entry_main(void *arg);

void deadlock_entry_recv(void *arg)
{
    struct dl_env *e = arg;
    csp_recv(e->ch, NULL);
}

void deadlock_entry_mutex(void *arg)
{
    struct dl_env *e = arg;
    csp_mutex_lock(&e->mu);
}

void deadlock_entry_main(void *arg)
{
    struct dl_env *e = arg;
    csp_mutex_lock(&e->mu);
    csp_go(deadlock_entry_recv, e);
    csp_go(deadlock_entry_mutex, e);
    csp_chan *never = csp_chan_make(0, 0);
    csp_case k[1] = { CSP_RECV(never, NULL) };
    csp_select(k, 1, CSP_FOREVER);
}

static int deadlock_child(void)
{
    static struct dl_env e;
    e.ch = csp_chan_make(0, 0);
    int r = csp_run(deadlock_entry_main, &e);
    /* Abandoned tasks are no longer live: the dump lists none. */
    csp_dump(1);
    return r == EDEADLK ? 0 : 10 + r;
}

/* csp_run's deadlock report (forked child, stderr captured) is the message
 * followed by the dump of the stuck tasks; afterwards the abandoned tasks
 * are gone from the dump. */
START_TEST(test_deadlock_report_has_dump)
{
    char *err, *out;
    int st = run_child(deadlock_child, &err, &out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x, stderr:\n%s", st,
                  err);
    const char *msg = strstr(err, "csp: all tasks are asleep - deadlock!");
    ck_assert_msg(msg, "no deadlock message in:\n%s", err);
    struct dline d[16];
    int n = parse_dump(msg, d, 16);
    ck_assert_int_eq(n, 3);
    static const struct {
        const char *sym;
        void (*fn)(void *);
        const char *state;
    } want[] = {
        { "deadlock_entry_recv", deadlock_entry_recv, "chan receive" },
        { "deadlock_entry_mutex", deadlock_entry_mutex, "mutex" },
        { "deadlock_entry_main", deadlock_entry_main, "select" },
    };
    for (size_t i = 0; i < 3; i++) {
        char name[64];
        expect_name(name, sizeof name, want[i].sym, want[i].fn);
        const struct dline *l = find_entry(d, n, name);
        ck_assert_msg(l, "no line for %s in:\n%s", name, err);
        ck_assert_str_eq(l->state, want[i].state);
    }
    ck_assert_msg(parse_dump(out, d, 16) == 0, "abandoned tasks still listed:\n%s", out);
    free(err);
    free(out);
}
END_TEST

/* ---- the dump signal --------------------------------------------------------------- */

static int dump_sig;
static const char *dump_sig_name;

void signal_entry_stuck(void *arg);
void signal_entry_stuck(void *arg)
{
    csp_chan *ch = arg;
    csp_recv(ch, NULL);
}

static void signal_main(void *arg)
{
    (void)arg;
    csp_chan *ch = csp_chan_make(0, 0);
    csp_go(signal_entry_stuck, ch);
    csp_sleep(MS(20));
#ifdef TSAN_BUILD
    /* ThreadSanitizer runs an asynchronous signal's handler only when the
     * receiving thread next enters one of its interceptors; a library
     * thread asleep in a raw futex system call may never do so.  Signal
     * this (running) thread instead. */
    raise(dump_sig);
#else
    kill(getpid(), dump_sig);
#endif
    /* The dump is written from a normal context, soon: wait for it in
     * our own stderr. */
    char name[64];
    expect_name(name, sizeof name, "signal_entry_stuck", signal_entry_stuck);
    bool seen = false;
    for (int i = 0; i < 1000 && !seen; i++) {
        csp_sleep(MS(10));
        char *text = read_file(stderr);
        seen = strstr(text, name) != NULL;
        free(text);
    }
    fprintf(stderr, "%s\n", seen ? "dump seen" : "no dump");
    csp_close(ch);
    csp_chan_release(ch);
}

static int signal_child(void)
{
    setenv("CSP_DUMP_SIGNAL", dump_sig_name, 1);
    int r = csp_run(signal_main, NULL);
    fprintf(stderr, "csp_run returned %d\n", r);
    return r;
}

static void signal_case(int sig, const char *name)
{
    dump_sig = sig;
    dump_sig_name = name;
    char *err, *out;
    int st = run_child(signal_child, &err, &out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "CSP_DUMP_SIGNAL=%s: child status %#x, stderr:\n%s", name, st, err);
    ck_assert_msg(strstr(err, "dump seen"), "no dump on stderr:\n%s", err);
    ck_assert_msg(strstr(err, "csp_run returned 0"), "the program did not go on:\n%s", err);
    struct dline d[16];
    int n = parse_dump(err, d, 16);
    char ename[64];
    expect_name(ename, sizeof ename, "signal_entry_stuck", signal_entry_stuck);
    const struct dline *l = find_entry(d, n, ename);
    ck_assert_msg(l, "no line for the stuck task in:\n%s", err);
    ck_assert_str_eq(l->state, "chan receive");
    free(err);
    free(out);
}

/* With CSP_DUMP_SIGNAL=QUIT set before the runtime starts, SIGQUIT prints
 * the dump to stderr and the program goes on (forked child). */
START_TEST(test_dump_signal_quit)
{
    signal_case(SIGQUIT, "QUIT");
}
END_TEST

/* Same with CSP_DUMP_SIGNAL=USR1 and SIGUSR1. */
START_TEST(test_dump_signal_usr1)
{
    signal_case(SIGUSR1, "USR1");
}
END_TEST

static bool is_default(int sig)
{
    struct sigaction sa;
    ck_assert_int_eq(sigaction(sig, NULL, &sa), 0);
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Without CSP_DUMP_SIGNAL (or with a value it does not know) the runtime
 * installs no signal handler. */
START_TEST(test_no_variable_no_handler)
{
    unsetenv("CSP_DUMP_SIGNAL");
    /* Whoever started us may have left these ignored (a background job
     * ignores SIGQUIT): start from the default, then see that it stays. */
    signal(SIGQUIT, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    ck_assert(is_default(SIGQUIT) && is_default(SIGUSR1));
    RUN_MAIN(nothing, NULL);
    ck_assert_int_eq(csp_start(NULL), 0);
    ck_assert_msg(is_default(SIGQUIT), "a SIGQUIT handler was installed");
    ck_assert_msg(is_default(SIGUSR1), "a SIGUSR1 handler was installed");
    ck_assert_int_eq(csp_stop(), 0);
    setenv("CSP_DUMP_SIGNAL", "BOGUS", 1);
    RUN_MAIN(nothing, NULL);
    ck_assert(is_default(SIGQUIT) && is_default(SIGUSR1));
}
END_TEST

/* With CSP_DUMP_SIGNAL=QUIT the runtime does install its handler (the test
 * above can fail). */
START_TEST(test_variable_installs_handler)
{
    setenv("CSP_DUMP_SIGNAL", "QUIT", 1);
    RUN_MAIN(nothing, NULL);
    ck_assert(!is_default(SIGQUIT));
    ck_assert(is_default(SIGUSR1));
}
END_TEST

static Suite *dump_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("dump");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dump_known_tasks);
    tcase_add_test(tc, test_dump_short_duration);
    tcase_add_test(tc, test_dump_bad_fd);
    tcase_add_test(tc, test_deadlock_report_has_dump);
    tcase_add_test(tc, test_dump_signal_quit);
    tcase_add_test(tc, test_dump_signal_usr1);
    tcase_add_test(tc, test_no_variable_no_handler);
    tcase_add_test(tc, test_variable_installs_handler);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(dump_suite());
}
