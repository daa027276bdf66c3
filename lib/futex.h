/*
 * futex.h - sleep on a 32-bit word until it changes or a deadline passes.
 *
 * Linux: the futex system call (private, absolute CLOCK_MONOTONIC deadline
 * through FUTEX_WAIT_BITSET).  Elsewhere: a hashed table of mutex+condvar
 * pairs with the same semantics.  Spurious returns are allowed; callers
 * always re-check their condition.
 */
#ifndef CSP_FUTEX_H
#define CSP_FUTEX_H

#include "internal.h"

/* Sleeps while *addr == expect, until woken or csp_now() >= deadline
 * (CSP_FOREVER: no deadline).  Returns 0 or ETIMEDOUT. */
int  futex_wait(_Atomic uint32_t *addr, uint32_t expect, int64_t deadline)
    __attribute__((visibility("hidden")));
/* Wakes up to n sleepers on addr (INT32_MAX: all). */
void futex_wake(_Atomic uint32_t *addr, int n) __attribute__((visibility("hidden")));

#endif
