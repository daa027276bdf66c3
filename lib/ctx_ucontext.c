/*
 * ctx_ucontext.c - portable task context switch on <ucontext.h>, for CPUs
 * without a hand-written switch.  Slower (swapcontext saves the signal
 * mask with a system call on most systems) but correct everywhere POSIX
 * still ships ucontext.
 */
#include "internal.h"
#include "ctx.h"

#ifdef CSP_CTX_UCONTEXT
#include <stdlib.h>

void ctx_make(ctx_t *c, void *lo, size_t size, void (*entry)(void))
{
    if (getcontext(&c->uc) != 0)
        abort();
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, entry, 0);
}

void ctx_switch(ctx_t *from, ctx_t *to)
{
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort();
}
#endif
