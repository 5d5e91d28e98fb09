#include "runtime/coro.h"

#include <pthread.h>
#include <string.h>

void rlt__coro_init(rlt__coro *co, void *lo, size_t size, void (*entry)(void *), void *arg)
{
	/* First frame, read by rlt__ctx_switch's pops (lowest address first). */
	uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
	void **sp;
#if defined(__x86_64__)
	/* After the 6 pops and `ret`, rsp = top, 16-byte aligned, as the
	 * `call` in rlt__ctx_boot needs. Layout: r15 r14 r13 r12 rbx rbp ret. */
	sp = (void **)(top - 7 * 8);
	sp[0] = NULL;	       /* r15 */
	sp[1] = NULL;	       /* r14 */
	sp[2] = arg;	       /* r13 */
	sp[3] = (void *)entry; /* r12 */
	sp[4] = NULL;	       /* rbx */
	sp[5] = NULL;	       /* rbp: ends the frame chain */
	sp[6] = (void *)rlt__ctx_boot;
#elif defined(__aarch64__)
	/* 176-byte frame: x19..x30 at [0, 96), d8..d15 at [96, 160). */
	sp = (void **)(top - 176);
	memset(sp, 0, 176);
	sp[0] = (void *)entry;		/* x19 */
	sp[1] = arg;			/* x20 */
	sp[11] = (void *)rlt__ctx_boot; /* x30 */
#else
#error "ringlet: no context switch for this architecture"
#endif
	co->ctx.sp = sp;
	co->stack_lo = lo;
	co->stack_size = size;
#ifdef RLT_ASAN
	co->asan_fake_stack = NULL;
#endif
#ifdef RLT_TSAN
	co->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void rlt__coro_init_thread(rlt__coro *co)
{
	memset(co, 0, sizeof(*co));
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *addr;
		size_t size;
		if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
			co->stack_lo = addr;
			co->stack_size = size;
		}
		pthread_attr_destroy(&attr);
	}
#ifdef RLT_TSAN
	co->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void rlt__coro_fini(rlt__coro *co)
{
#ifdef RLT_TSAN
	if (co->tsan_fiber)
		__tsan_destroy_fiber(co->tsan_fiber);
	co->tsan_fiber = NULL;
#else
	(void)co;
#endif
}
