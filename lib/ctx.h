/*
 * ctx.h - the machine context of a task: just enough to leave one stack
 * and resume another.
 *
 * ctx_switch(from, to) saves the callee-saved registers (and the floating
 * point control words the ABI says survive a call) on the current stack,
 * stores the stack pointer in *from and resumes *to.  Everything else is
 * caller-saved, so the C compiler has already spilled it.  Implementations:
 * ctx_x86_64.S, ctx_aarch64.S, ctx_ucontext.c (portable fallback chosen by
 * configure --with-context=ucontext or for other CPUs).
 */
#ifndef CSP_CTX_H
#define CSP_CTX_H

#include <stddef.h>

#ifdef CSP_CTX_UCONTEXT
#include <ucontext.h>
typedef struct ctx { ucontext_t uc; } ctx_t;
#else
typedef struct ctx { void *sp; } ctx_t;
#endif

/* Prepares c so that the first ctx_switch to it calls entry() on the stack
 * [lo, lo+size).  entry must never return. */
void ctx_make(ctx_t *c, void *lo, size_t size, void (*entry)(void))
    __attribute__((visibility("hidden")));
void ctx_switch(ctx_t *from, ctx_t *to) __attribute__((visibility("hidden")));

#endif
