/*
 * netpoll.c - waiting for descriptors: csp_fd_wait, csp_fd_close,
 * csp_read, csp_write, csp_accept, csp_connect, and select's
 * CSP_READABLE/CSP_WRITABLE cases.
 *
 * Design.  One readiness source for the process: an edge-triggered epoll
 * instance on Linux (a poll(2) loop elsewhere), watched by one poller
 * thread that sleeps in it.  Each descriptor that somebody waits on has a
 * record (indexed by descriptor number, created on first use, reused when
 * the number is reused) holding a lock and the list of waiters.  A waiter
 * registers in the record, becomes wakeable, and only then asks poll(2)
 * whether the descriptor is already ready: an edge that came before the
 * registration is not lost, because the readiness it announced is still
 * there for poll(2) to see; an edge that comes after finds the waiter.
 * The winner of the waiter's claim word (waiter.h) wakes it: the poller,
 * the waiter itself (already ready), the deadline timer, or csp_fd_close
 * (which completes every waiter with EBADF before it closes the number).
 *
 * Both tasks and plain threads wait this way (a thread's sleep is a futex
 * in its waiter), so csp_fd_close reaches every waiter of either kind.
 *
 * Descriptor numbers are reused behind our back: a user may close(2) a
 * descriptor nobody waits on and get the same number for a new file.  So
 * nothing cached in a record is trusted for correctness: the epoll
 * registration is (re)added every time a waiter arms (EEXIST is fine; the
 * kernel drops closed files from the set by itself), socket I/O passes
 * MSG_DONTWAIT so it never blocks whatever the file's flags, and other
 * files get their O_NONBLOCK checked on every call.  The record's
 * is_socket is only a hint for which call to try first.
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

struct fd_waiter {
    struct fd_waiter *next, *prev;
    struct waiter *w;
    uint32_t idx;
    int events;
    int fd;
    bool linked;
};

struct fd_rec {
    lock_t lock;
    _Atomic int8_t is_socket; /* hint: -1 unknown, 0 no, 1 yes        */
    _Atomic bool closing;     /* csp_fd_close between wake and close(2) */
    _Atomic int users;        /* calls inside a read/write/accept now   */
    struct fd_waiter *head;
};

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

static lock_t tab_lock = LOCK_INIT;
static struct fd_rec **tab;       /* tab[fd], grown under tab_lock        */
static _Atomic size_t tab_len;
static _Atomic long nwaiting;

static pthread_mutex_t poller_mu = PTHREAD_MUTEX_INITIALIZER;
static bool poller_running;
static _Atomic bool poller_up;       /* poller_running, readable lock-free */
static pthread_t poller_thread;
/* Written under poller_mu (release), read anywhere (acquire): a reader that
 * sees the descriptor sees it created. */
static _Atomic int epfd = -1;
static int wake_pipe[2] = { -1, -1 };

static struct fd_rec *rec_get(int fd)
{
    size_t len = atomic_load_explicit(&tab_len, memory_order_acquire);
    if ((size_t)fd < len) {
        lock_acquire(&tab_lock);
        struct fd_rec *r = tab[fd];
        lock_release(&tab_lock);
        if (r)
            return r;
    }
    lock_acquire(&tab_lock);
    len = atomic_load_explicit(&tab_len, memory_order_relaxed);
    if ((size_t)fd >= len) {
        size_t nl = len ? len : 64;
        while (nl <= (size_t)fd)
            nl *= 2;
        struct fd_rec **nt = realloc(tab, nl * sizeof *nt);
        if (!nt) {
            lock_release(&tab_lock);
            return NULL;
        }
        memset(nt + len, 0, (nl - len) * sizeof *nt);
        tab = nt;
        atomic_store_explicit(&tab_len, nl, memory_order_release);
    }
    if (!tab[fd]) {
        struct fd_rec *r = calloc(1, sizeof *r);
        if (r)
            atomic_init(&r->is_socket, -1);
        tab[fd] = r;
    }
    struct fd_rec *r = tab[fd];
    lock_release(&tab_lock);
    return r;
}

static struct fd_rec *rec_peek(int fd)
{
    if (fd < 0 || (size_t)fd >= atomic_load_explicit(&tab_len, memory_order_acquire))
        return NULL;
    lock_acquire(&tab_lock);
    struct fd_rec *r = tab[fd];
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
                char b;
                if (read(wake_pipe[0], &b, 1) == 1 && b == 'q') {
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
        size_t len = atomic_load(&tab_len);
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
            for (struct fd_waiter *x = r->head; x; x = x->next)
                ev |= x->events;
            lock_release(&r->lock);
            if (ev)
                p[k++] = (struct pollfd){ .fd = (int)fd, .events = poll_events(ev) };
        }
        int n = poll(p, (nfds_t)k, -1);
        if (n > 0) {
            if (p[0].revents) {
                char b;
                if (read(wake_pipe[0], &b, 1) == 1 && b == 'q') {
                    free(p);
                    return NULL;
                }
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

static void poller_kick(char what)
{
    if (wake_pipe[1] >= 0) {
        ssize_t r = write(wake_pipe[1], &what, 1);
        (void)r;
    }
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
        poller_kick('q');
        pthread_join(poller_thread, NULL);
        poller_running = false;
        close(atomic_exchange(&epfd, -1));
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
    }
    pthread_mutex_unlock(&poller_mu);
}

/* Makes sure fd is in the readiness set (see the top: never cached).
 * EEXIST means it is; EPERM (a regular file) means it never "becomes"
 * ready, and the poll(2) re-check at arm time reports it ready at once. */
static void rec_register_locked(struct fd_rec *r, int fd)
{
    (void)r;
#ifdef CSP_USE_EPOLL
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.fd = fd };
    int saved = get_errno();
    if (epoll_ctl(atomic_load_explicit(&epfd, memory_order_acquire), EPOLL_CTL_ADD, fd, &ev) != 0)
        set_errno(saved);
#else
    (void)fd;
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

/* After registering: fire at once if already ready (see the top). */
static void recheck(struct fd_waiter *xs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int err = 0;
        if (netpoll_ready_now(xs[i].fd, xs[i].events, &err)) {
            if (waiter_claim(xs[i].w, W_FIRED + xs[i].idx)) {
                xs[i].w->err = err;
                waiter_wake(xs[i].w);
            }
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
    if (poller_ensure())
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
        s->x[s->n++] = (struct fd_waiter){ .w = w, .idx = (uint32_t)i, .fd = c->fd,
                                           .events = c->op == CSP_OP_READABLE ? CSP_IO_READ
                                                                               : CSP_IO_WRITE };
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!rec_get(s->x[i].fd)) {
            csp_free(s);
            return NULL;
        }
    }
    return s;
}

/* Links x into r.  While a csp_fd_close is between waking the waiters
 * and close(2) returning, wait for it to finish: afterwards the re-check
 * with poll(2) sees the descriptor closed (EBADF) - or, if the number was
 * already reused for a new file, that file, which is the new owner's. */
static void arm_rec(struct fd_rec *r, struct fd_waiter *x)
{
    for (int spins = 0;; spins++) {
        lock_acquire(&r->lock);
        if (!atomic_load(&r->closing))
            break;
        lock_release(&r->lock);
        spin_wait(spins);
    }
    rec_register_locked(r, x->fd);
    waiter_link(r, x);
    lock_release(&r->lock);
}

void netpoll_sel_arm(struct netpoll_sel *s)
{
    for (size_t i = 0; i < s->n; i++)
        arm_rec(rec_get(s->x[i].fd), &s->x[i]);
    recheck(s->x, s->n);
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
    struct fd_rec *r;
    struct fd_waiter *x;
};

static void arm_one(void *arg)
{
    struct arm_one *a = arg;
    arm_rec(a->r, a->x);
    recheck(a->x, 1);
}

static bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Waits once for readiness; the answer may be stale (an edge the poller
 * reported after the data it announced was consumed), which callers that
 * retry their I/O do not mind. */
static int fd_wait_once(int fd, int events, int64_t deadline)
{
    int err = 0;
    if (netpoll_ready_now(fd, events, &err))
        return err;
    if (deadline != CSP_FOREVER && (deadline == CSP_NOWAIT || deadline <= csp_now()))
        return deadline == CSP_NOWAIT ? EAGAIN : ETIMEDOUT;
    if ((err = poller_ensure()))
        return err;
    struct fd_rec *r = rec_get(fd);
    if (!r)
        return ENOMEM;
    struct waiter w;
    waiter_init(&w);
    struct fd_waiter x = { .w = &w, .idx = 0, .events = events, .fd = fd };
    struct arm_one a = { r, &x };
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
    /* The answer must be true when we give it: confirm a wake-up with
     * poll(2) and wait again if the edge was stale. */
    for (;;) {
        int err = fd_wait_once(fd, events, deadline);
        if (err || netpoll_ready_now(fd, events, &err))
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

/* Waits for fd; on failure sets errno and returns false. */
static bool wait_io(int fd, int ev, int64_t deadline)
{
    if (deadline != CSP_FOREVER && (deadline == CSP_NOWAIT || deadline <= csp_now())) {
        set_errno(deadline == CSP_NOWAIT ? EAGAIN : ETIMEDOUT);
        return false;
    }
    /* About to park: make sure the descriptor is non-blocking, as the
     * contract says (sockets are driven with MSG_DONTWAIT anyway). */
    set_nonblock(fd);
    int e = fd_wait_once(fd, ev, deadline);
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
 * Dekker with csp_fd_close's closing flag). */
static ssize_t io_once(int fd, void *buf, size_t n, bool wr)
{
    struct fd_rec *r = rec_get(fd);
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

CSP_API ssize_t csp_read(int fd, void *buf, size_t n, int64_t deadline)
{
    if (fd < 0) {
        set_errno(EBADF);
        return -1;
    }
    int pe = netpoll_enter();
    if (pe) {
        set_errno(pe);
        return -1;
    }
    for (;;) {
        ssize_t r = io_once(fd, buf, n, false);
        if (r >= 0)
            return r;
        if (get_errno() == EINTR)
            continue;
        if (!would_block_errno(get_errno()))
            return -1;
        if (!wait_io(fd, CSP_IO_READ, deadline))
            return -1;
    }
}

CSP_API ssize_t csp_write(int fd, const void *buf, size_t n, int64_t deadline)
{
    if (fd < 0) {
        set_errno(EBADF);
        return -1;
    }
    int pe = netpoll_enter();
    if (pe) {
        set_errno(pe);
        return -1;
    }
    size_t done = 0;
    char *p = (char *)buf;
    for (;;) {
        ssize_t k = io_once(fd, p + done, n - done, true);
        if (k >= 0) {
            done += (size_t)k;
            if (done == n)
                return (ssize_t)done;
            continue;
        }
        if (get_errno() == EINTR)
            continue;
        if (!would_block_errno(get_errno()) || !wait_io(fd, CSP_IO_WRITE, deadline))
            return done ? (ssize_t)done : -1;   /* errno says why */
    }
}

CSP_API int csp_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int64_t deadline)
{
    if (fd < 0) {
        set_errno(EBADF);
        return -1;
    }
    int pe = netpoll_enter();
    if (pe) {
        set_errno(pe);
        return -1;
    }
    set_nonblock(fd);
    for (;;) {
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
            struct fd_rec *r = rec_get(c);
            if (r)
                atomic_store_explicit(&r->is_socket, 1, memory_order_relaxed);
            return c;
        }
        if (get_errno() == EINTR || get_errno() == ECONNABORTED)
            continue;
        if (!would_block_errno(get_errno()))
            return -1;
        if (!wait_io(fd, CSP_IO_READ, deadline))
            return -1;
    }
}

CSP_API int csp_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
    if (fd < 0) {
        set_errno(EBADF);
        return -1;
    }
    int pe = netpoll_enter();
    if (pe) {
        set_errno(pe);
        return -1;
    }
    set_nonblock(fd);
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    int e0 = get_errno();
    if (e0 != EINPROGRESS && e0 != EINTR)
        return -1;
    if (!wait_io(fd, CSP_IO_WRITE, deadline))
        return -1;
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
