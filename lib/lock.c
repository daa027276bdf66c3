/* lock.c - the contended path of lock_t (see lock.h). */
#include "lock.h"

#include <sched.h>

void lock_slow(lock_t *l)
{
    for (int i = 0; i < 200; i++) {
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 && lock_try(l))
            return;
        cpu_relax();
    }
    /* Mark the lock contended (2) so the holder's release wakes us; if the
     * exchange finds it free we own it (still marked 2: one extra wake at
     * worst, never a lost one). */
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
        futex_wait(&l->word, 2, CSP_FOREVER);
}
