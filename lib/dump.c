/*
 * dump.c - csp_dump: Go's goroutine dump for C, and the optional dump
 * signal (CSP_DUMP_SIGNAL=QUIT or USR1).
 *
 * It walks every task slot ever carved (task.c keeps them in chunks, so
 * no registry has to be maintained on the spawn path) and prints the live
 * ones: number, state or what it waits on, how long, entry function.  The
 * walk reads state words racily (relaxed): a dump is a snapshot for a
 * human, not a synchronisation point.
 *
 * The signal handler only sets a flag and kicks the timer thread, which
 * writes the dump from a normal context.
 */
#include "sched.h"
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_DLFCN_H
#include <dlfcn.h>
#endif

static const char *reason_name(int r)
{
    switch (r) {
    case WAIT_CHAN_RECV: return "chan receive";
    case WAIT_CHAN_SEND: return "chan send";
    case WAIT_SELECT:    return "select";
    case WAIT_MUTEX:     return "mutex";
    case WAIT_RWLOCK:    return "rwlock";
    case WAIT_WAITGROUP: return "waitgroup";
    case WAIT_ONCE:      return "once";
    case WAIT_SLEEP:     return "sleep";
    case WAIT_IO:        return "io";
    default:             return "parked";
    }
}

struct dump_ctx {
    int fd;
    int64_t now;
    int err;
    long n;
};

static void write_all(struct dump_ctx *d, const char *s, size_t n)
{
    while (n && !d->err) {
        ssize_t k = write(d->fd, s, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            d->err = errno;
            return;
        }
        s += k;
        n -= (size_t)k;
    }
}

static void fn_name(void (*fn)(void *), char *buf, size_t len)
{
#if defined(HAVE_DLADDR) && defined(HAVE_DLFCN_H)
    Dl_info info;
    if (dladdr((void *)(uintptr_t)fn, &info) && info.dli_sname &&
        info.dli_saddr == (void *)(uintptr_t)fn) {
        snprintf(buf, len, "%s", info.dli_sname);
        return;
    }
#endif
    snprintf(buf, len, "%p", (void *)(uintptr_t)fn);
}

static void dump_one(struct task *t, void *arg)
{
    struct dump_ctx *d = arg;
    uint32_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    const char *state;
    bool parked = false;
    switch (s) {
    case TASK_RUNNABLE: state = "runnable"; break;
    case TASK_RUNNING:
    case TASK_WOKEN:    state = "running"; break;
    case TASK_PARKING:
    case TASK_PARKED:   state = NULL; parked = true; break;
    default:            return;   /* free, dead or abandoned: not live */
    }
    char name[256], line[512];
    /* Racy by design (a snapshot for a human): relaxed atomic reads. */
    void (*fn)(void *) = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
    unsigned long long id = __atomic_load_n(&t->id, __ATOMIC_RELAXED);
    int reason = __atomic_load_n(&t->wait_reason, __ATOMIC_RELAXED);
    int64_t since = __atomic_load_n(&t->park_since, __ATOMIC_RELAXED);
    fn_name(fn, name, sizeof name);
    int n;
    if (parked) {
        state = reason_name(reason);
        int64_t ms = (d->now - since) / 1000000;
        if (ms < 0)
            ms = 0;
        n = snprintf(line, sizeof line, "%llu %s %lld ms %s\n", id, state, (long long)ms, name);
    } else {
        n = snprintf(line, sizeof line, "%llu %s %s\n", id, state, name);
    }
    if (n > 0)
        write_all(d, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    d->n++;
}

void dump_write_tasks(int fd) __attribute__((visibility("hidden")));
void dump_write_tasks(int fd)
{
    struct dump_ctx d = { .fd = fd, .now = sched_stamp() };
    static const char hdr[] = "csp: task dump (number, state, parked for, entry)\n";
    write_all(&d, hdr, sizeof hdr - 1);
    task_foreach(dump_one, &d);
}

CSP_API int csp_dump(int fd)
{
    if (fd < 0 || fcntl(fd, F_GETFL) == -1)
        return EBADF;
    struct dump_ctx d = { .fd = fd, .now = sched_stamp() };
    static const char hdr[] = "csp: task dump (number, state, parked for, entry)\n";
    write_all(&d, hdr, sizeof hdr - 1);
    task_foreach(dump_one, &d);
    return d.err;
}

/* ---- the dump signal ------------------------------------------------------ */

extern _Atomic int csp_dump_requested;
void timer_kick(void) __attribute__((visibility("hidden")));

static void dump_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&csp_dump_requested, 1);
    timer_kick();
    errno = saved;
}

void dump_signal_install(void) __attribute__((visibility("hidden")));
void dump_signal_install(void)
{
    static _Atomic int done;
    const char *v = getenv("CSP_DUMP_SIGNAL");
    if (!v || atomic_exchange(&done, 1))
        return;
    int sig = 0;
    if (!strcmp(v, "QUIT") || !strcmp(v, "SIGQUIT"))
        sig = SIGQUIT;
    else if (!strcmp(v, "USR1") || !strcmp(v, "SIGUSR1"))
        sig = SIGUSR1;
    if (!sig)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    /* The user asked for the dump by name, so make sure the signal can
     * arrive: a shell or CI runner may have started us with it blocked.
     * csp_start calls this before it makes the workers, which inherit the
     * unblocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}
