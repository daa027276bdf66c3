/*
 * ctx_aarch64.S - task context switch for the AAPCS64 ABI.
 *
 * Callee-saved: x19-x28, the frame pointer x29, the link register x30 (our
 * resume address), sp, and the low 64 bits of v8-v15 (d8-d15).  FPCR is
 * saved too so that a task's rounding mode travels with it.
 * Frame (176 bytes): x19..x30 at 0..95, d8..d15 at 96..159, fpcr at 160.
 */
        .text
        .globl  ctx_switch
        .hidden ctx_switch
        .type   ctx_switch, %function
        .p2align 4
/* void ctx_switch(ctx_t *from (x0), ctx_t *to (x1)) */
ctx_switch:
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        ldr     x9, [x1]
        mov     sp, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        add     sp, sp, #176
        ret
        .size   ctx_switch, .-ctx_switch

        .globl  ctx_make
        .hidden ctx_make
        .type   ctx_make, %function
        .p2align 4
/* void ctx_make(ctx_t *c (x0), void *lo (x1), size_t size (x2),
 *               void (*entry)(void) (x3))
 * A zeroed frame whose x30 is entry, 16-byte aligned below the top. */
ctx_make:
        add     x9, x1, x2
        and     x9, x9, #~15
        sub     x9, x9, #176
        mov     x10, #0
        mov     x11, #0
1:      str     x10, [x9, x11]
        add     x11, x11, #8
        cmp     x11, #176
        b.ne    1b
        str     x3, [x9, #88]           /* x30: where ctx_switch returns */
        str     x9, [x0]
        ret
        .size   ctx_make, .-ctx_make

        .section .note.GNU-stack,"",%progbits
