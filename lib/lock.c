/* lock.c - the contended path of lock_t (see lock.h). */
#include "lock.h"

#include <sched.h>

void lock_slow(lock_t *l)
{
    /* Read the word between growing pauses: contending cores that retry
     * at once only trade its cache line (B4, 4x4 tasks on an unbuffered
     * channel: 380-455 -> 204-222 ns per message here). */
    for (int i = 0, pause = 1; i < 40; i++) {
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 && lock_try(l))
            return;
        for (int k = 0; k < pause; k++)
            cpu_relax();
        if (pause < 32)
            pause <<= 1;
    }
    /* Mark the lock contended (2) so the holder's release wakes us; if the
     * exchange finds it free we own it (still marked 2: one extra wake at
     * worst, never a lost one). */
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
        futex_wait(&l->word, 2, CSP_FOREVER);
}
