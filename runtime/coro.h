/*
 * Coroutines: a saved stack pointer plus the bookkeeping that makes
 * AddressSanitizer, ThreadSanitizer and valgrind understand stack switches.
 *
 * The only portable boundary is rlt__ctx_switch()/rlt__ctx_boot(), written
 * in assembly per architecture (ctx_<arch>.S); rlt__coro_init() lays out the
 * first frame that rlt__ctx_switch() will "return" into.
 */
#ifndef RLT_RUNTIME_CORO_H
#define RLT_RUNTIME_CORO_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define RLT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RLT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RLT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RLT_TSAN 1
#endif
#endif

#ifdef RLT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
				     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef RLT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

typedef struct rlt__ctx {
	void *sp;
} rlt__ctx;

typedef struct rlt__coro {
	rlt__ctx ctx;
	const void *stack_lo; /* lowest usable byte of the stack */
	size_t stack_size;
#ifdef RLT_ASAN
	void *asan_fake_stack;
#endif
#ifdef RLT_TSAN
	void *tsan_fiber;
#endif
} rlt__coro;

void rlt__ctx_switch(rlt__ctx *from, rlt__ctx *to);
void rlt__ctx_boot(void);

/* Prepare co so that the first switch to it calls entry(arg) on the stack
 * [lo, lo + size). entry must never return. */
void rlt__coro_init(rlt__coro *co, void *lo, size_t size, void (*entry)(void *), void *arg);
/* Describe the running thread's own stack as a coroutine (the scheduler). */
void rlt__coro_init_thread(rlt__coro *co);
/* Release what rlt__coro_init() took (the TSan fiber). Not on co itself. */
void rlt__coro_fini(rlt__coro *co);

/*
 * Switch from `from` (the running coroutine) to `to`. When from_exits is
 * true, `from` will never be resumed, and ASan may drop its fake stack.
 * Returns when something switches back to `from`.
 */
static inline void rlt__coro_switch(rlt__coro *from, rlt__coro *to, int from_exits)
{
#ifdef RLT_ASAN
	__sanitizer_start_switch_fiber(from_exits ? NULL : &from->asan_fake_stack, to->stack_lo,
				       to->stack_size);
#else
	(void)from_exits;
#endif
#ifdef RLT_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	rlt__ctx_switch(&from->ctx, &to->ctx);
#ifdef RLT_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#endif
}

/* To be called first thing on a new coroutine's stack (ASan bookkeeping of
 * the switch that started it). */
static inline void rlt__coro_started(rlt__coro *self)
{
#ifdef RLT_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#else
	(void)self;
#endif
}

#endif
