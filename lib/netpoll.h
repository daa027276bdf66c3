/*
 * netpoll.h - I/O readiness for parked tasks and threads (Go's netpoller).
 */
#ifndef CSP_NETPOLL_H
#define CSP_NETPOLL_H

#include "internal.h"
#include "waiter.h"

struct netpoll_sel;

/* Select support: descriptor cases of one select, registered while it is
 * parked.  new() allocates (NULL: ENOMEM) and reads each descriptor's
 * event counters: the caller must look at the descriptors' readiness
 * (netpoll_ready_now) after new() and before arm(), so that an event
 * between that look and arm() is not lost (netpoll.c, at the top).
 * arm() registers and completes the select at once if an event came since
 * new() (called as the select becomes wakeable); disarm() unregisters;
 * free() releases. */
struct netpoll_sel *netpoll_sel_new(struct waiter *w, csp_case *cases, size_t n)
    __attribute__((visibility("hidden")));
void netpoll_sel_arm(struct netpoll_sel *s) __attribute__((visibility("hidden")));
void netpoll_sel_disarm(struct netpoll_sel *s) __attribute__((visibility("hidden")));
void netpoll_sel_free(struct netpoll_sel *s) __attribute__((visibility("hidden")));

/* True if fd is ready for `events` right now (poll with zero timeout); a
 * descriptor that is not open counts as ready with *err = EBADF. */
bool netpoll_ready_now(int fd, int events, int *err) __attribute__((visibility("hidden")));

/* Makes sure the poller exists before a call touches the caller's
 * descriptor: 0 or an errno value. */
int  netpoll_enter(void) __attribute__((visibility("hidden")));

/* Number of parties waiting for I/O (deadlock detection). */
long netpoll_waiting(void) __attribute__((visibility("hidden")));
/* Library threads it runs (0 or 1), and stopping them when unused. */
int  netpoll_thread_count(void) __attribute__((visibility("hidden")));
void netpoll_stop_if_idle(void) __attribute__((visibility("hidden")));

#endif
