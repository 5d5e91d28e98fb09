/*
 * Context switch for x86_64 (System V ABI).
 *
 * void rlt__ctx_switch(rlt__ctx *from, rlt__ctx *to)
 *   Saves the callee-saved registers on the current stack, stores the stack
 *   pointer in from->sp, loads to->sp, pops the registers saved there and
 *   jumps to the return address saved there.
 *   Caller-saved registers need no saving: the call itself clobbers them.
 *   MXCSR and the x87 control word are not saved: ringlet assumes tasks do
 *   not change the floating-point environment across a suspension
 *   (documented in docs/ARCHITECTURE.md). No signal mask, no syscall.
 *
 * void rlt__ctx_boot(void)
 *   First "return address" of a new context: calls r12(r13) with a 16-byte
 *   aligned stack. The entry function must never return.
 */
#if defined(__x86_64__)
	.text
	.globl rlt__ctx_switch
	.hidden rlt__ctx_switch
	.type rlt__ctx_switch, @function
	.p2align 4
rlt__ctx_switch:
	.cfi_startproc
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq (%rsi), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	/* Not `ret`: a switch returns to another coroutine than the one that
	 * called it, so the return-stack predictor would miss every time (about
	 * 10 ns). An indirect jump is predicted from its history instead. rcx
	 * is caller-saved: free to clobber. */
	popq %rcx
	jmpq *%rcx
	.cfi_endproc
	.size rlt__ctx_switch, .-rlt__ctx_switch

	.globl rlt__ctx_boot
	.hidden rlt__ctx_boot
	.type rlt__ctx_boot, @function
	.p2align 4
rlt__ctx_boot:
	.cfi_startproc
	.cfi_undefined rip	/* end of the call chain for unwinders and gdb */
	movq %r13, %rdi
	callq *%r12
	ud2
	.cfi_endproc
	.size rlt__ctx_boot, .-rlt__ctx_boot
#endif
	.section .note.GNU-stack,"",@progbits
