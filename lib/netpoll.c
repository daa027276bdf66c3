/*
 * netpoll.c - waiting for descriptors: csp_fd_wait, csp_fd_close,
 * csp_read, csp_write, csp_accept, csp_connect, and select's
 * CSP_READABLE/CSP_WRITABLE cases.
 *
 * Design.  One readiness source for the process: an edge-triggered epoll
 * instance on Linux (a poll(2) loop elsewhere), watched by one poller
 * thread that sleeps in it.  Each descriptor that somebody waits on has a
 * record (indexed by descriptor number, created on first use, reused when
 * the number is reused) holding a lock, the list of waiters, and two event
 * counters, seq[READ] and seq[WRITE].
 *
 * The poller, for every event, takes the record's lock, adds one to the
 * counter of each direction the event reports, and completes the waiters
 * of those directions.  A call that is about to wait has read the counter
 * of its direction *before* its last look at the descriptor (the read(2)
 * that failed with EAGAIN, or select's poll(2)); under the record's lock
 * it links its waiter, makes sure the descriptor is in the epoll set, and
 * compares the counter with what it read.  Both sides hold the lock, so
 * one of them sees the other: an event the poller handled after the look
 * either finds the waiter linked (and wakes it) or has moved the counter
 * (and the waiter wakes itself); an event before the look was seen by the
 * look itself.  A moved counter may be stale (the data was consumed by
 * somebody else since): the caller retries its I/O and waits again, which
 * costs a loop, never a lost wake-up; counters that moved for the file
 * that had the number before are stale in the same harmless way.  So a
 * wait costs the failed I/O call and one epoll_ctl, without any poll(2).
 *
 * Memory orders.  The counters are only added to under the record's lock
 * (relaxed RMW: the lock's release/acquire orders them with the waiter
 * list), and read relaxed: the snapshot outside the lock, the comparison
 * under it.  That is enough because (1) the counter's modification order
 * is total and a thread's later read never returns an older value than
 * its earlier one (read-read coherence), so the comparison sees at least
 * the snapshot; (2) the lock decides which of the poller's critical
 * section and the waiter's comes first, and the later one sees the
 * earlier one's writes; (3) the snapshot cannot already contain an
 * increment for an event that came after the look: that event is caused
 * by something after the look's system call returned, and the snapshot
 * was read before that call (a system call is a full barrier).  Callers
 * without a snapshot (none today) fall back to a poll(2) re-check after
 * arming.
 *
 * The winner of the waiter's claim word (waiter.h) wakes it: the poller,
 * the waiter itself (counter moved, or a file epoll cannot watch), the
 * deadline timer, or csp_fd_close (which completes every waiter with
 * EBADF before it closes the number).  Both tasks and plain threads wait
 * this way (a thread's sleep is a futex in its waiter), so csp_fd_close
 * reaches every waiter of either kind.
 *
 * Descriptor numbers are reused behind our back: a user may close(2) a
 * descriptor nobody waits on and get the same number for a new file.  So
 * nothing cached in a record is trusted for correctness.  The epoll
 * registration is (re)added every time a waiter arms: EEXIST means this
 * very file is registered (epoll keys on the file and the number), and a
 * successful add means a new file (or the first wait), whose O_NONBLOCK is
 * then set and whose present readiness the kernel reports at once (the
 * kernel drops closed files from the set by itself).  A file epoll
 * refuses with EPERM (a regular file) is always ready: the wait ends at
 * once; any other failure to register (EBADF, ENOMEM, ENOSPC) ends it
 * with that error rather than waiting for an event that cannot come.
 * csp_fd_wait and csp_connect, which must not answer from a stale event,
 * confirm a wake-up with poll(2) and wait again.  Socket I/O passes
 * MSG_DONTWAIT, so it never blocks whatever the file's flags; other files
 * get their O_NONBLOCK checked on every call.  The record's is_socket is
 * only a hint for which call to try first, and the counters only ever
 * cause an extra retry.
 *
 * The table of records grows by doubling and is read without a lock: a
 * grown table is a copy published with a release store (the old ones stay
 * allocated, chained from the new, since a reader may still hold one), and
 * a record is published into a slot with a release store after it is
 * initialised.  A reader that finds no record in its (possibly old) table
 * looks again under the table lock.  Records are never freed.
 *
 * The portable backend (no epoll) rebuilds its poll(2) set from the
 * waiters nobody has completed yet; a waiter that arms and csp_fd_close
 * wake it through its pipe (a poll in progress holds a reference to each
 * file in its set, so a socket closed under it would not even send its
 * FIN until that poll returned).
 */
#include "netpoll.h"
#include "lock.h"
#include "sched.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef CSP_USE_EPOLL
#include <sys/epoll.h>
#endif

enum { DIR_READ = 0, DIR_WRITE = 1 };

struct fd_waiter {
    struct fd_waiter *next, *prev;
    struct waiter *w;
    uint32_t idx;
    int events;
    int fd;
    bool linked;
    bool has_snap;       /* snap[] holds seq[] read before the last look */
    uint32_t snap[2];
};

struct fd_rec {
    lock_t lock;
    _Atomic int8_t is_socket; /* hint: -1 unknown, 0 no, 1 yes        */
    _Atomic bool closing;     /* csp_fd_close between wake and close(2) */
    _Atomic int users;        /* calls inside a read/write/accept now   */
    _Atomic uint32_t seq[2];  /* events seen per direction (see the top) */
    struct fd_waiter *head;
};

/* Reads the counters before a look at the descriptor; relaxed: see the
 * top. */
static void seq_snap(struct fd_rec *r, uint32_t snap[2])
{
    snap[DIR_READ] = atomic_load_explicit(&r->seq[DIR_READ], memory_order_relaxed);
    snap[DIR_WRITE] = atomic_load_explicit(&r->seq[DIR_WRITE], memory_order_relaxed);
}

/* With r locked: did an event of x's directions come since its snapshot? */
static bool seq_moved(struct fd_rec *r, const struct fd_waiter *x)
{
    return ((x->events & CSP_IO_READ) &&
            atomic_load_explicit(&r->seq[DIR_READ], memory_order_relaxed) != x->snap[DIR_READ]) ||
           ((x->events & CSP_IO_WRITE) &&
            atomic_load_explicit(&r->seq[DIR_WRITE], memory_order_relaxed) != x->snap[DIR_WRITE]);
}

/* errno after a park.  A task may resume on another worker thread, and
 * glibc declares __errno_location() const, so a compiler may keep the
 * address of the old thread's errno across the call that parked.  Every
 * errno access in this file that can follow a park goes through these
 * two, which are never inlined and so compute the address afresh. */
NOINLINE static int get_errno(void)
{
    __asm__ __volatile__("" ::: "memory");
    return errno;
}

NOINLINE static void set_errno(int e)
{
    __asm__ __volatile__("" ::: "memory");
    errno = e;
}

CSP_API int csp_errno(void)
{
    return get_errno();
}

/* The table of records, tab->slot[fd] (see the top). */
struct fd_tab {
    size_t len;
    struct fd_tab *older;      /* kept: a reader may still be using it */
    _Atomic(struct fd_rec *) slot[];
};

static lock_t tab_lock = LOCK_INIT;   /* growing, and filling a slot */
static _Atomic(struct fd_tab *) tab;
static _Atomic long nwaiting;

static pthread_mutex_t poller_mu = PTHREAD_MUTEX_INITIALIZER;
static bool poller_running;
static _Atomic bool poller_up;       /* poller_running, readable lock-free */
static pthread_t poller_thread;
/* Written under poller_mu (release), read anywhere (acquire): a reader that
 * sees the descriptor sees it created. */
static _Atomic int epfd = -1;
static int wake_pipe[2] = { -1, -1 };
static _Atomic bool poller_quit;     /* netpoll_stop_if_idle: the poller ends */

/* The record of fd in the current table, without a lock; NULL if the
 * number is beyond it or has no record (yet, or in this table). */
static struct fd_rec *rec_fast(int fd)
{
    struct fd_tab *t = atomic_load_explicit(&tab, memory_order_acquire);
    if (likely(t && (size_t)fd < t->len))
        return atomic_load_explicit(&t->slot[fd], memory_order_acquire);
    return NULL;
}

/* The record of fd, created if needed; NULL only when out of memory. */
static struct fd_rec *rec_get(int fd)
{
    struct fd_rec *r = rec_fast(fd);
    if (likely(r))
        return r;
    lock_acquire(&tab_lock);
    struct fd_tab *t = atomic_load_explicit(&tab, memory_order_relaxed);
    size_t len = t ? t->len : 0;
    if ((size_t)fd >= len) {
        size_t nl = len ? len : 64;
        while (nl <= (size_t)fd)
            nl *= 2;
        struct fd_tab *nt = calloc(1, sizeof *nt + nl * sizeof nt->slot[0]);
        if (!nt) {
            lock_release(&tab_lock);
            return NULL;
        }
        nt->len = nl;
        nt->older = t;
        for (size_t i = 0; i < len; i++)
            atomic_init(&nt->slot[i], atomic_load_explicit(&t->slot[i], memory_order_relaxed));
        /* release: the copied slots (and the records they point to) are
         * visible to a reader that finds the new table. */
        atomic_store_explicit(&tab, nt, memory_order_release);
        t = nt;
    }
    r = atomic_load_explicit(&t->slot[fd], memory_order_relaxed);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (r) {
            atomic_init(&r->is_socket, -1);
            /* release: the record is initialised before it is found. */
            atomic_store_explicit(&t->slot[fd], r, memory_order_release);
        }
    }
    lock_release(&tab_lock);
    return r;
}

/* The record of fd if it has one. */
static struct fd_rec *rec_peek(int fd)
{
    if (fd < 0)
        return NULL;
    struct fd_rec *r = rec_fast(fd);
    if (likely(r))
        return r;
    /* Maybe created in a table grown after the one we read. */
    lock_acquire(&tab_lock);
    struct fd_tab *t = atomic_load_explicit(&tab, memory_order_relaxed);
    if (t && (size_t)fd < t->len)
        r = atomic_load_explicit(&t->slot[fd], memory_order_relaxed);
    lock_release(&tab_lock);
    return r;
}

static short poll_events(int events)
{
    return (short)(((events & CSP_IO_READ) ? POLLIN : 0) | ((events & CSP_IO_WRITE) ? POLLOUT : 0));
}

bool netpoll_ready_now(int fd, int events, int *err)
{
    struct pollfd p = { .fd = fd, .events = poll_events(events) };
    int r;
    do
        r = poll(&p, 1, 0);
    while (r < 0 && get_errno() == EINTR);
    if (r <= 0)
        return false;
    if (p.revents & POLLNVAL) {
        if (err)
            *err = EBADF;
        return true;
    }
    return p.revents != 0;
}

/* ---- the poller thread ------------------------------------------------- */

static void fire_fd(int fd, int ready)
{
    struct fd_rec *r = rec_peek(fd);
    if (!r)
        return;
    lock_acquire(&r->lock);
    /* Under the lock, before looking for waiters: see the top. */
    if (ready & CSP_IO_READ)
        atomic_fetch_add_explicit(&r->seq[DIR_READ], 1, memory_order_relaxed);
    if (ready & CSP_IO_WRITE)
        atomic_fetch_add_explicit(&r->seq[DIR_WRITE], 1, memory_order_relaxed);
    for (struct fd_waiter *x = r->head, *n; x; x = n) {
        n = x->next;
        if (!(x->events & ready))
            continue;
        if (waiter_claim(x->w, W_FIRED + x->idx)) {
            x->w->err = 0;
            waiter_wake(x->w);
        }
    }
    lock_release(&r->lock);
}

/* The wake pipe was readable: empties it; true when told to quit. */
static bool poller_woken(void)
{
    char b[64];
    while (read(wake_pipe[0], b, sizeof b) == (ssize_t)sizeof b)
        ;
    return atomic_load_explicit(&poller_quit, memory_order_acquire);
}

static void *poller_main(void *arg)
{
    (void)arg;
    sched_lib_thread(true);
#ifdef CSP_USE_EPOLL
    struct epoll_event ev[128];
    for (;;) {
        int n = epoll_wait(atomic_load_explicit(&epfd, memory_order_acquire), ev, 128, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == wake_pipe[0]) {
                if (poller_woken()) {
                    sched_lib_thread(false);
                    return NULL;
                }
                continue;
            }
            uint32_t e = ev[i].events;
            int ready = 0;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                ready |= CSP_IO_READ;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                ready |= CSP_IO_WRITE;
            fire_fd(fd, ready);
        }
    }
#else
    /* Portable backend: poll(2) over every descriptor with waiters. */
    for (;;) {
        struct fd_tab *t = atomic_load_explicit(&tab, memory_order_acquire);
        size_t len = t ? t->len : 0;
        struct pollfd *p = malloc((len + 1) * sizeof *p);
        if (!p) {
            usleep(1000);
            continue;
        }
        size_t k = 0;
        p[k++] = (struct pollfd){ .fd = wake_pipe[0], .events = POLLIN };
        for (size_t fd = 0; fd < len; fd++) {
            struct fd_rec *r = rec_peek((int)fd);
            if (!r)
                continue;
            int ev = 0;
            lock_acquire(&r->lock);
            /* Only waiters nobody completed yet: level-triggered poll(2)
             * would report a woken waiter's descriptor again and again
             * until the waiter runs and unlinks itself. */
            for (struct fd_waiter *x = r->head; x; x = x->next)
                if (atomic_load_explicit(&x->w->claim, memory_order_relaxed) == W_WAITING)
                    ev |= x->events;
            lock_release(&r->lock);
            if (ev)
                p[k++] = (struct pollfd){ .fd = (int)fd, .events = poll_events(ev) };
        }
        int n = poll(p, (nfds_t)k, -1);
        if (n > 0) {
            if (p[0].revents && poller_woken()) {
                free(p);
                sched_lib_thread(false);
                return NULL;
            }
            for (size_t i = 1; i < k; i++) {
                short e = p[i].revents;
                int ready = 0;
                if (e & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
                    ready |= CSP_IO_READ;
                if (e & (POLLOUT | POLLHUP | POLLERR | POLLNVAL))
                    ready |= CSP_IO_WRITE;
                if (ready)
                    fire_fd(p[i].fd, ready);
            }
        }
        free(p);
    }
#endif
    return NULL;
}

/* Wakes the poller thread (to quit, or to rebuild its poll(2) set).  A
 * full pipe already wakes it: the write may fail. */
static void poller_kick(void)
{
    ssize_t r = write(wake_pipe[1], "k", 1);
    (void)r;
}

/* Moves one of our own descriptors above the numbers programs usually
 * hold, so that making the poller does not keep the number of a
 * descriptor the user just closed (a later call on that number must see
 * EBADF, not our pipe).  Falls back to the original on failure. */
static int fd_high(int fd)
{
#ifdef F_DUPFD_CLOEXEC
    if (fd < 0)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 256);
    if (h >= 0) {
        close(fd);
        return h;
    }
#endif
    return fd;
}

static int poller_ensure(void)
{
    pthread_mutex_lock(&poller_mu);
    int err = 0;
    if (!poller_running) {
        if (pipe(wake_pipe) != 0) {
            err = errno;
            goto out;
        }
        wake_pipe[0] = fd_high(wake_pipe[0]);
        wake_pipe[1] = fd_high(wake_pipe[1]);
        fcntl(wake_pipe[0], F_SETFD, FD_CLOEXEC);
        fcntl(wake_pipe[1], F_SETFD, FD_CLOEXEC);
        fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
        fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
#ifdef CSP_USE_EPOLL
        int ep = fd_high(epoll_create1(EPOLL_CLOEXEC));
        if (ep < 0) {
            err = errno;
            goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = wake_pipe[0] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, wake_pipe[0], &ev) != 0) {
            err = errno;
            close(ep);
            goto fail;
        }
        atomic_store_explicit(&epfd, ep, memory_order_release);
#endif
        err = pthread_create(&poller_thread, NULL, poller_main, NULL);
        if (err)
            goto fail;
        poller_running = true;
        atomic_store_explicit(&poller_up, true, memory_order_release);
    }
    goto out;
fail:
    if (atomic_load(&epfd) >= 0)
        close(atomic_exchange(&epfd, -1));
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
out:
    pthread_mutex_unlock(&poller_mu);
    return err;
}

/* Every descriptor call starts here, before it looks at the caller's
 * descriptor: the poller's own descriptors (epoll, wake pipe) are made
 * now if they do not exist yet, never in the middle of a call, where they
 * could take the number of a descriptor csp_fd_close just closed under a
 * waiter's feet (the waiter's re-check would then watch our pipe). */
int netpoll_enter(void)
{
    if (likely(atomic_load_explicit(&poller_up, memory_order_acquire)))
        return 0;
    return poller_ensure();
}

int netpoll_thread_count(void)
{
    pthread_mutex_lock(&poller_mu);
    int n = poller_running ? 1 : 0;
    pthread_mutex_unlock(&poller_mu);
    return n;
}

long netpoll_waiting(void)
{
    return atomic_load_explicit(&nwaiting, memory_order_seq_cst);
}

void netpoll_stop_if_idle(void)
{
    pthread_mutex_lock(&poller_mu);
    if (poller_running && atomic_load(&nwaiting) == 0) {
        atomic_store(&poller_up, false);
        atomic_store_explicit(&poller_quit, true, memory_order_release);
        poller_kick();
        pthread_join(poller_thread, NULL);
        atomic_store_explicit(&poller_quit, false, memory_order_relaxed);
        poller_running = false;
        close(atomic_exchange(&epfd, -1));
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    pthread_mutex_unlock(&poller_mu);
}

static void set_nonblock(int fd);

/* Makes sure fd is in the readiness set (see the top: never cached).
 * Returns 0 when it was added (a new file, or the first wait: the kernel
 * reports its present readiness to the poller), EEXIST when this file was
 * there already, or epoll_ctl's error: EPERM for a file epoll cannot
 * watch (a regular file, always ready), EBADF for a closed number. */
static int rec_register_locked(int fd)
{
#ifdef CSP_USE_EPOLL
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.fd = fd };
    int saved = get_errno();
    int rc = 0;
    if (epoll_ctl(atomic_load_explicit(&epfd, memory_order_acquire), EPOLL_CTL_ADD, fd, &ev) != 0)
        rc = get_errno();
    set_errno(saved);
    return rc;
#else
    /* The poll(2) loop builds its set from the waiters; arm_rec wakes it
     * once the waiter is linked, and it sees the present readiness (as a
     * new epoll entry does). */
    (void)fd;
    return 0;
#endif
}

static void waiter_link(struct fd_rec *r, struct fd_waiter *x)
{
    x->prev = NULL;
    x->next = r->head;
    if (r->head)
        r->head->prev = x;
    r->head = x;
    x->linked = true;
    atomic_fetch_add_explicit(&nwaiting, 1, memory_order_seq_cst);
}

static void waiter_unlink(struct fd_rec *r, struct fd_waiter *x)
{
    if (!x->linked)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        r->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->linked = false;
    atomic_fetch_sub_explicit(&nwaiting, 1, memory_order_seq_cst);
}

/* What arming found: wait, ask poll(2), or complete at once with the
 * error code (>= 0) returned. */
enum { ARM_WAIT = -1, ARM_RECHECK = -2 };

/* Links x into r and registers the descriptor (see the top); set_nb: the
 * caller is an I/O call, which makes a new file non-blocking.  While a
 * csp_fd_close is between waking the waiters and close(2) returning, it
 * waits for it to finish: afterwards the registration fails with EBADF,
 * or, if the number was already reused for a new file, adds that file,
 * which is the new owner's. */
static int arm_rec(struct fd_rec *r, struct fd_waiter *x, bool set_nb)
{
    for (int spins = 0;; spins++) {
        lock_acquire(&r->lock);
        if (!atomic_load(&r->closing))
            break;
        lock_release(&r->lock);
        spin_wait(spins);
    }
    int reg = rec_register_locked(x->fd);
    waiter_link(r, x);
#ifndef CSP_USE_EPOLL
    poller_kick();
#endif
    int verdict = ARM_WAIT;
    if (reg == 0) {
        if (set_nb)
            set_nonblock(x->fd);
    } else if (reg == EEXIST) {
        if (!x->has_snap)
            verdict = ARM_RECHECK;
        else if (seq_moved(r, x))
            verdict = 0;
    } else if (reg == EPERM) {
        verdict = 0;                /* never "becomes" ready: it is */
    } else {
        verdict = reg;              /* EBADF; ENOMEM, ENOSPC: no wait could end */
    }
    lock_release(&r->lock);
    return verdict;
}

/* Completes x's waiter now (if nobody did) with err. */
static void fire_self(struct fd_waiter *x, int err)
{
    if (waiter_claim(x->w, W_FIRED + x->idx)) {
        x->w->err = err;
        waiter_wake(x->w);
    }
}

/* Arms every waiter of one wait, then completes it if one of them found
 * the descriptor ready (or failed). */
static void arm_all(struct fd_waiter *xs, size_t n, bool set_nb)
{
    int first = -1, verdict = ARM_WAIT;
    bool recheck = false;
    for (size_t i = 0; i < n; i++) {
        int v = arm_rec(rec_get(xs[i].fd), &xs[i], set_nb);
        if (v >= 0 && first < 0) {
            first = (int)i;
            verdict = v;
        }
        recheck |= v == ARM_RECHECK;
    }
    if (first >= 0) {
        fire_self(&xs[first], verdict);
        return;
    }
    for (size_t i = 0; recheck && i < n; i++) {
        int err = 0;
        if (netpoll_ready_now(xs[i].fd, xs[i].events, &err)) {
            fire_self(&xs[i], err);
            return;
        }
    }
}

/* ---- select support --------------------------------------------------------- */

struct netpoll_sel {
    size_t n;
    struct fd_waiter x[];
};

struct netpoll_sel *netpoll_sel_new(struct waiter *w, csp_case *cases, size_t n)
{
    if (netpoll_enter())
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((cases[i].op == CSP_OP_READABLE || cases[i].op == CSP_OP_WRITABLE) && cases[i].fd >= 0)
            k++;
    struct netpoll_sel *s = csp_calloc(1, sizeof *s + k * sizeof s->x[0]);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        csp_case *c = &cases[i];
        if ((c->op != CSP_OP_READABLE && c->op != CSP_OP_WRITABLE) || c->fd < 0)
            continue;
        struct fd_waiter *x = &s->x[s->n++];
        *x = (struct fd_waiter){ .w = w, .idx = (uint32_t)i, .fd = c->fd, .has_snap = true,
                                 .events = c->op == CSP_OP_READABLE ? CSP_IO_READ : CSP_IO_WRITE };
        struct fd_rec *r = rec_get(c->fd);
        if (!r) {
            csp_free(s);
            return NULL;
        }
        /* The caller looks at readiness after this (netpoll.h). */
        seq_snap(r, x->snap);
    }
    return s;
}

void netpoll_sel_arm(struct netpoll_sel *s)
{
    arm_all(s->x, s->n, false);
}

void netpoll_sel_disarm(struct netpoll_sel *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct fd_rec *r = rec_get(s->x[i].fd);
        lock_acquire(&r->lock);
        waiter_unlink(r, &s->x[i]);
        lock_release(&r->lock);
    }
}

void netpoll_sel_free(struct netpoll_sel *s)
{
    csp_free(s);
}

/* ---- csp_fd_wait / csp_fd_close ------------------------------------------------ */

struct arm_one {
    struct fd_waiter *x;
    bool set_nb;
};

static void arm_one(void *arg)
{
    struct arm_one *a = arg;
    arm_all(a->x, 1, a->set_nb);
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Waits once for readiness of r's descriptor.  snap: the counters read
 * before the caller's last look at the descriptor (see the top); set_nb:
 * the caller is an I/O call.  The answer may be stale (the data an event
 * announced was consumed since), which callers that retry do not mind. */
static int fd_wait_once(struct fd_rec *r, int fd, int events, int64_t deadline,
                        const uint32_t snap[2], bool set_nb)
{
    if (deadline != CSP_FOREVER && (deadline == CSP_NOWAIT || deadline <= csp_now()))
        return deadline == CSP_NOWAIT ? EAGAIN : ETIMEDOUT;
    struct waiter w;
    waiter_init(&w);
    struct fd_waiter x = { .w = &w, .idx = 0, .events = events, .fd = fd, .has_snap = true,
                           .snap = { snap[0], snap[1] } };
    struct arm_one a = { &x, set_nb };
    uint32_t claim = waiter_park(&w, deadline, WAIT_IO, arm_one, &a);
    lock_acquire(&r->lock);
    waiter_unlink(r, &x);
    lock_release(&r->lock);
    return claim == W_TIMEOUT ? ETIMEDOUT : w.err;
}

CSP_API int csp_fd_wait(int fd, int events, int64_t deadline)
{
    if (fd < 0)
        return EBADF;
    if (events == 0 || (events & ~(CSP_IO_READ | CSP_IO_WRITE)))
        return EINVAL;
    int e0 = netpoll_enter();
    if (e0)
        return e0;
    if (!fd_is_open(fd))
        return EBADF;
    struct fd_rec *r = rec_get(fd);
    if (!r)
        return ENOMEM;
    /* The answer must be true when we give it: confirm a wake-up with
     * poll(2) and wait again if the edge was stale. */
    for (;;) {
        uint32_t snap[2];
        seq_snap(r, snap);
        int err = 0;
        if (netpoll_ready_now(fd, events, &err))
            return err;
        if ((err = fd_wait_once(r, fd, events, deadline, snap, false)))
            return err;
    }
}

CSP_API int csp_fd_close(int fd)
{
    if (fd < 0)
        return EBADF;
    struct fd_rec *r = rec_peek(fd);
    if (r) {
        lock_acquire(&r->lock);
        atomic_store(&r->closing, true);
        for (struct fd_waiter *x = r->head, *n; x; x = n) {
            n = x->next;
            waiter_unlink(r, x);
            if (waiter_claim(x->w, W_FIRED + x->idx)) {
                x->w->err = EBADF;
                waiter_wake(x->w);
            }
        }
#ifdef CSP_USE_EPOLL
        int ep = atomic_load_explicit(&epfd, memory_order_acquire);
        if (ep >= 0)
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
#endif
        atomic_store(&r->is_socket, -1);
        lock_release(&r->lock);
        /* Go's fdMutex in miniature: a call already inside read(2) or
         * write(2) on this descriptor finishes before the number is
         * released (new calls see closing and fail with EBADF). */
        for (int spins = 0; atomic_load(&r->users) != 0; spins++)
            spin_wait(spins);
    }
    int err = close(fd) == 0 || errno == EINTR ? 0 : errno;
    if (r) {
        /* Waiters that armed in the window got EBADF; the number may now
         * be reused for a new file. */
        lock_acquire(&r->lock);
        atomic_store(&r->closing, false);
        lock_release(&r->lock);
    }
#ifndef CSP_USE_EPOLL
    /* A poll(2) in progress holds a reference to every file in its set,
     * so the file is not really closed (a socket sends no FIN) until
     * the poller's poll returns: make it return. */
    if (atomic_load_explicit(&poller_up, memory_order_acquire))
        poller_kick();
#endif
    return err;
}

/* ---- the calls --------------------------------------------------------------- */

/* Sets O_NONBLOCK if it is not set (checked every time: see the top). */
static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool would_block_errno(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/* Waits for r's descriptor (fd) after an I/O call that would block;
 * snap: the counters read before that call.  On failure sets errno and
 * returns false. */
static bool wait_io(struct fd_rec *r, int fd, int ev, int64_t deadline, const uint32_t snap[2])
{
    int e = r ? fd_wait_once(r, fd, ev, deadline, snap, true) : ENOMEM;
    if (e) {
        set_errno(e);
        return false;
    }
    return true;
}

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef MSG_DONTWAIT
#define MSG_DONTWAIT 0
#endif

/* One non-blocking read or write attempt.  Sockets: recv/send with
 * MSG_DONTWAIT (and MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE);
 * the first use of a socket also sets O_NONBLOCK, as the contract says.
 * Anything else: O_NONBLOCK, then read/write. */
static ssize_t io_once_raw(struct fd_rec *r, int fd, void *buf, size_t n, bool wr);

/* Brackets one I/O system call with the record's user count (seq_cst:
 * Dekker with csp_fd_close's closing flag).  r may be NULL (no memory
 * for a record): then the call is made as it is. */
static ssize_t io_once(struct fd_rec *r, int fd, void *buf, size_t n, bool wr)
{
    if (!r)
        return io_once_raw(NULL, fd, buf, n, wr);
    /* While a csp_fd_close of this number finishes, wait: afterwards the
     * call either fails with EBADF from the kernel (it was our descriptor
     * being closed) or works on the new file the number now names. */
    for (int spins = 0;; spins++) {
        atomic_fetch_add(&r->users, 1);
        if (!atomic_load(&r->closing))
            break;
        atomic_fetch_sub(&r->users, 1);
        spin_wait(spins);
    }
    ssize_t k = io_once_raw(r, fd, buf, n, wr);
    int e = get_errno();
    atomic_fetch_sub(&r->users, 1);
    set_errno(e);
    return k;
}

static ssize_t io_once_raw(struct fd_rec *r, int fd, void *buf, size_t n, bool wr)
{
    int8_t sock = r ? atomic_load_explicit(&r->is_socket, memory_order_relaxed) : 0;
    if (sock != 0 && MSG_DONTWAIT != 0) {
        ssize_t k = wr ? send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                       : recv(fd, buf, n, MSG_DONTWAIT);
        if (k >= 0 || get_errno() != ENOTSOCK) {
            if (sock < 0 && r) {
                set_nonblock(fd);
                atomic_store_explicit(&r->is_socket, 1, memory_order_relaxed);
            }
            return k;
        }
        if (r)
            atomic_store_explicit(&r->is_socket, 0, memory_order_relaxed);
    }
    set_nonblock(fd);
    return wr ? write(fd, buf, n) : read(fd, buf, n);
}

/* The record of an I/O call's descriptor, and zero counters without one. */
static struct fd_rec *io_rec(int fd, uint32_t snap[2])
{
    snap[0] = snap[1] = 0;
    return rec_get(fd);
}

/* The start of every I/O call: a valid number and a running poller;
 * false with errno set otherwise. */
static bool io_begin(int fd)
{
    int e = fd < 0 ? EBADF : netpoll_enter();
    if (e)
        set_errno(e);
    return e == 0;
}

CSP_API ssize_t csp_read(int fd, void *buf, size_t n, int64_t deadline)
{
    if (!io_begin(fd))
        return -1;
    uint32_t snap[2];
    struct fd_rec *r = io_rec(fd, snap);
    for (;;) {
        if (r)
            seq_snap(r, snap);
        ssize_t k = io_once(r, fd, buf, n, false);
        if (k >= 0)
            return k;
        if (get_errno() == EINTR)
            continue;
        if (!would_block_errno(get_errno()))
            return -1;
        if (!wait_io(r, fd, CSP_IO_READ, deadline, snap))
            return -1;
    }
}

CSP_API ssize_t csp_write(int fd, const void *buf, size_t n, int64_t deadline)
{
    if (!io_begin(fd))
        return -1;
    uint32_t snap[2];
    struct fd_rec *r = io_rec(fd, snap);
    size_t done = 0;
    char *p = (char *)buf;
    for (;;) {
        if (r)
            seq_snap(r, snap);
        ssize_t k = io_once(r, fd, p + done, n - done, true);
        if (k >= 0) {
            done += (size_t)k;
            if (done == n)
                return (ssize_t)done;
            continue;
        }
        if (get_errno() == EINTR)
            continue;
        if (!would_block_errno(get_errno()) || !wait_io(r, fd, CSP_IO_WRITE, deadline, snap))
            return done ? (ssize_t)done : -1;   /* errno says why */
    }
}

CSP_API int csp_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline)
{
    if (!io_begin(fd))
        return -1;
    /* Every time: accept4 would block on a blocking listener (see the top). */
    set_nonblock(fd);
    uint32_t snap[2];
    struct fd_rec *r = io_rec(fd, snap);
    for (;;) {
        if (r)
            seq_snap(r, snap);
#ifdef HAVE_ACCEPT4
        int c = accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int c = accept(fd, addr, addrlen);
        if (c >= 0) {
            fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
            fcntl(c, F_SETFD, FD_CLOEXEC);
        }
#endif
        if (c >= 0) {
            struct fd_rec *cr = rec_get(c);
            if (cr)
                atomic_store_explicit(&cr->is_socket, 1, memory_order_relaxed);
            return c;
        }
        if (get_errno() == EINTR || get_errno() == ECONNABORTED)
            continue;
        if (!would_block_errno(get_errno()))
            return -1;
        if (!wait_io(r, fd, CSP_IO_READ, deadline, snap))
            return -1;
    }
}

CSP_API int csp_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    if (!io_begin(fd))
        return -1;
    set_nonblock(fd);
    uint32_t snap[2];
    struct fd_rec *r = io_rec(fd, snap);
    if (r)
        seq_snap(r, snap);
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    int e0 = get_errno();
    if (e0 != EINPROGRESS && e0 != EINTR)
        return -1;
    /* Writable once the handshake is over, either way; a wake-up by an
     * older event is confirmed with poll(2). */
    for (;;) {
        if (!wait_io(r, fd, CSP_IO_WRITE, deadline, snap))
            return -1;
        seq_snap(r, snap);
        if (netpoll_ready_now(fd, CSP_IO_WRITE, NULL))
            break;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -1;
    if (soerr) {
        set_errno(soerr);
        return -1;
    }
    return 0;
}
