/*
 * task.c - stacks and task records.
 *
 * Stacks are carved from large mmap'ed chunks (MAP_NORESERVE: the kernel
 * commits a page on first touch), one slot per task with its record at the
 * top (see task.h).  A dead task's slot goes back to a free list: a
 * per-worker cache first (no lock), then a global list under pool_lock.
 * Nothing is ever unmapped: a touched stack page is a cost paid once, and a
 * fresh page costs ~10 us on the machines we measure on.
 *
 * Overflow detection without guard pages: at every switch away from a task
 * its saved stack pointer must lie above the canary zone, and the lowest
 * word of the stack (never written by a task that stayed within bounds,
 * and zero from the kernel) must still be zero.  Reading that word maps
 * the shared zero page, so it costs no resident memory, but it is a cold
 * cache line (and, the first time, a page fault): so the word is read at
 * every 16th switch of a task and when it ends, the stack pointer at every
 * switch.  A task that overflowed is caught at most 16 switches later.  With guard pages
 * a PROT_NONE page below each stack turns overflow into SIGSEGV, which a
 * handler on an alternate signal stack reports with the same message.
 */
#include "task.h"
#include "lock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

#define CHUNK_BYTES   (32u << 20)   /* bytes mapped at a time            */
#define CACHE_MAX     64            /* slots a worker keeps for itself   */
#define CANARY_ZONE   256           /* saved sp must stay this far above */

struct stack_chunk {
    struct stack_chunk *next;
    char *base;
    size_t slot_size;
    size_t nslots;
    _Atomic size_t ncarved;         /* slots handed out so far            */
    int guard;
};

static lock_t pool_lock = LOCK_INIT;
static struct stack_chunk *chunks;   /* every chunk ever mapped (pool_lock) */
static struct stack_chunk *cur;      /* the chunk we carve from            */
static struct task *free_list;       /* global free slots of the current size */
static size_t pool_slot_size;
static int pool_guard;
static _Atomic size_t page_size;

/* Worker-local cache of free slots; only workers enable it (plain threads
 * may exit at any time and would strand their cache). */
static TLS_IE struct task *tls_cache;
static TLS_IE unsigned tls_cache_n;
static TLS_IE size_t tls_cache_slot;

static size_t pagesz(void)
{
    size_t p = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (unlikely(!p)) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page_size, p, memory_order_relaxed);
    }
    return p;
}

static struct task *record_of(char *slot_lo, size_t slot_size)
{
    uintptr_t top = (uintptr_t)slot_lo + slot_size;
    return (struct task *)((top - sizeof(struct task)) & ~(uintptr_t)(CACHELINE - 1));
}

/* Carves a new slot; called with pool_lock held. */
static struct task *carve_locked(void)
{
    size_t slot = pool_slot_size;
    if (!cur || atomic_load_explicit(&cur->ncarved, memory_order_relaxed) == cur->nslots) {
        size_t n = CHUNK_BYTES / slot;
        if (n == 0)
            n = 1;
        struct stack_chunk *c = csp_malloc(sizeof *c);
        if (!c)
            return NULL;
        void *p = mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (p == MAP_FAILED) {
            csp_free(c);
            return NULL;
        }
        c->base = p;
        c->slot_size = slot;
        c->nslots = n;
        atomic_init(&c->ncarved, 0);
        c->guard = pool_guard;
        c->next = chunks;
        chunks = c;
        cur = c;
    }
    size_t i = atomic_load_explicit(&cur->ncarved, memory_order_relaxed);
    char *lo = cur->base + i * slot;
    if (cur->guard && mprotect(lo, pagesz(), PROT_NONE) != 0)
        return NULL;
    struct task *t = record_of(lo, slot);
    memset(t, 0, sizeof *t);
    t->slot_lo = lo;
    t->slot_size = slot;
    t->guarded = (uint8_t)cur->guard;
    t->stack_lo = lo + (cur->guard ? pagesz() : 0);
    /* release: task_foreach reads records up to ncarved without pool_lock. */
    atomic_store_explicit(&cur->ncarved, i + 1, memory_order_release);
    return t;
}

struct task *task_alloc(size_t stack_size, int guard, size_t env_size)
{
    (void)env_size;
    size_t slot = (stack_size + sizeof(struct task) + pagesz() - 1) & ~(pagesz() - 1);
    if (guard)
        slot += pagesz();
    struct task *t = NULL;
    if (tls_cache && tls_cache_slot == slot) {
        t = tls_cache;
        tls_cache = t->next;
        tls_cache_n--;
    } else {
        lock_acquire(&pool_lock);
        if (pool_slot_size != slot || pool_guard != guard) {
            /* The configuration changed (a restart with another stack
             * size): old slots stay mapped but are not reused. */
            pool_slot_size = slot;
            pool_guard = guard;
            free_list = NULL;
            cur = NULL;
        }
        if (free_list) {
            t = free_list;
            free_list = t->next;
        } else {
            t = carve_locked();
        }
        lock_release(&pool_lock);
        if (!t)
            return NULL;
    }
    t->next = NULL;
    t->env_heap = NULL;
    t->env_reserved = 0;
    t->switches = 0;
    __atomic_store_n(&t->wait_reason, (uint8_t)WAIT_NONE, __ATOMIC_RELAXED);
    return t;
}

void task_free(struct task *t)
{
    atomic_store_explicit(&t->state, TASK_FREE, memory_order_release);
    if (tls_cache_slot == t->slot_size && tls_cache_n < CACHE_MAX) {
        t->next = tls_cache;
        tls_cache = t;
        tls_cache_n++;
        return;
    }
    lock_acquire(&pool_lock);
    if (t->slot_size == pool_slot_size && t->guarded == pool_guard) {
        t->next = free_list;
        free_list = t;
    }
    lock_release(&pool_lock);
}

/* Worker threads call these around their life to use the cache. */
void task_cache_enable(size_t stack_size, int guard) __attribute__((visibility("hidden")));
void task_cache_flush(void) __attribute__((visibility("hidden")));

void task_cache_enable(size_t stack_size, int guard)
{
    size_t slot = (stack_size + sizeof(struct task) + pagesz() - 1) & ~(pagesz() - 1);
    tls_cache_slot = slot + (guard ? pagesz() : 0);
}

void task_cache_flush(void)
{
    struct task *t = tls_cache;
    tls_cache = NULL;
    tls_cache_n = 0;
    tls_cache_slot = 0;
    while (t) {
        struct task *n = t->next;
        task_free(t);
        t = n;
    }
}

void *task_env_area(struct task *t, size_t env_size)
{
    t->env_reserved = (env_size + 15) & ~(size_t)15;
    return (char *)t - t->env_reserved;
}

void task_prepare(struct task *t, void (*entry)(void))
{
    /* The stack ends below the record and below any go_copy env. */
    char *top = (char *)t - t->env_reserved;
    top = (char *)((uintptr_t)top & ~(uintptr_t)15);
    ctx_make(&t->ctx, t->stack_lo, (size_t)(top - t->stack_lo), entry);
}

void task_check_stack(struct task *t, bool full)
{
#ifndef CSP_CTX_UCONTEXT
    if (unlikely((char *)t->ctx.sp < t->stack_lo + CANARY_ZONE))
        csp_fatal("task stack overflow (task %llu; stack size %zu bytes)",
                  (unsigned long long)t->id, t->slot_size);
#endif
#ifndef CSP_CTX_UCONTEXT
    /* (ucontext builds have no saved stack pointer to check: they read
     * the canary at every switch.) */
    if (!full && (++t->switches & 15) != 0)
        return;
#else
    (void)full;
#endif
    if (unlikely(*(volatile uint64_t *)t->stack_lo != 0))
        csp_fatal("task stack overflow (task %llu; stack size %zu bytes)",
                  (unsigned long long)t->id, t->slot_size);
}

void task_foreach(void (*f)(struct task *t, void *arg), void *arg)
{
    lock_acquire(&pool_lock);
    struct stack_chunk *c = chunks;
    lock_release(&pool_lock);
    /* Chunks are only ever prepended, so walking from a snapshot of the
     * head is safe without the lock. */
    for (; c; c = c->next) {
        size_t n = atomic_load_explicit(&c->ncarved, memory_order_acquire);
        for (size_t i = 0; i < n; i++)
            f(record_of(c->base + i * c->slot_size, c->slot_size), arg);
    }
}

/* ---- guard pages: SIGSEGV on an alternate stack --------------------- */

static struct sigaction old_segv;
static _Atomic int guard_installed;

static int addr_in_guard(void *addr)
{
    int hit = 0;
    for (struct stack_chunk *c = chunks; c && !hit; c = c->next) {
        if (!c->guard)
            continue;
        char *a = addr;
        if (a < c->base || a >= c->base + c->nslots * c->slot_size)
            continue;
        size_t off = (size_t)(a - c->base) % c->slot_size;
        hit = off < pagesz();
    }
    return hit;
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (addr_in_guard(si->si_addr)) {
        static const char msg[] = "csp: task stack overflow\n";
        if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */ }
        abort();
    }
    /* Not ours: let the previous disposition handle it. */
    sigaction(sig, &old_segv, NULL);
    raise(sig);
}

void task_guard_handler_install(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&guard_installed, &expect, 1))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

static TLS_IE void *tls_altstack;

void task_altstack_setup(void)
{
    size_t sz = 64 * 1024;
    void *p = malloc(sz);
    if (!p)
        return;
    stack_t ss = { .ss_sp = p, .ss_size = sz, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) == 0)
        tls_altstack = p;
    else
        free(p);
}

void task_altstack_teardown(void)
{
    if (!tls_altstack)
        return;
    stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    sigaltstack(&ss, NULL);
    free(tls_altstack);
    tls_altstack = NULL;
}
