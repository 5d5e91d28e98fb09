/*
 * Context switch for aarch64 (AAPCS64). Same contract as ctx_x86_64.S:
 * saves x19-x29, x30 (lr) and d8-d15 on the current stack, swaps sp.
 * FPCR is not saved (see ctx_x86_64.S).
 */
#if defined(__aarch64__)
	.text
	.globl rlt__ctx_switch
	.hidden rlt__ctx_switch
	.type rlt__ctx_switch, %function
	.p2align 4
rlt__ctx_switch:
	sub sp, sp, #176
	stp x19, x20, [sp, #0]
	stp x21, x22, [sp, #16]
	stp x23, x24, [sp, #32]
	stp x25, x26, [sp, #48]
	stp x27, x28, [sp, #64]
	stp x29, x30, [sp, #80]
	stp d8, d9, [sp, #96]
	stp d10, d11, [sp, #112]
	stp d12, d13, [sp, #128]
	stp d14, d15, [sp, #144]
	mov x2, sp
	str x2, [x0]
	ldr x2, [x1]
	mov sp, x2
	ldp x19, x20, [sp, #0]
	ldp x21, x22, [sp, #16]
	ldp x23, x24, [sp, #32]
	ldp x25, x26, [sp, #48]
	ldp x27, x28, [sp, #64]
	ldp x29, x30, [sp, #80]
	ldp d8, d9, [sp, #96]
	ldp d10, d11, [sp, #112]
	ldp d12, d13, [sp, #128]
	ldp d14, d15, [sp, #144]
	add sp, sp, #176
	ret
	.size rlt__ctx_switch, .-rlt__ctx_switch

	.globl rlt__ctx_boot
	.hidden rlt__ctx_boot
	.type rlt__ctx_boot, %function
	.p2align 4
rlt__ctx_boot:
	mov x29, #0		/* end of the frame chain */
	mov x0, x20
	blr x19
	brk #0
	.size rlt__ctx_boot, .-rlt__ctx_boot
#endif
	.section .note.GNU-stack,"",%progbits
