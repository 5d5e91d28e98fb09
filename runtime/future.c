#include "ringlet/future.h"
#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/future.h"
#include "runtime/oneshot.h"
#include "runtime/task.h"
#include "sched/sched.h"

#include <stdio.h>
#include <stdlib.h>

struct rlt_future {
	rlt__oneshot os;
	atomic_int claimed; /* first setter wins; later ones get -EALREADY */
	atomic_uint refs;
	int err;
	void *value;
};

/* A oneshot wait, on the waiting task's stack: its timer (a timeout or a
 * scope deadline) and its cancel hook cut it the same way, with their own
 * cause. */
typedef struct oneshot_waiter {
	rlt__wait wt;
	rlt__timer tm;
	rlt__oneshot *os;
	rlt_task *task;
	int cause;
} oneshot_waiter;

/* On the task's worker. If we take the task back from the oneshot, the
 * wake is ours; otherwise a completer has it. */
static bool waiter_cut(oneshot_waiter *ow, int cause)
{
	if (!rlt__oneshot_withdraw(ow->os, ow->task))
		return false;
	ow->cause = cause;
	rlt__task_wake(ow->task);
	return true;
}

static void waiter_timeout(rlt__timer *tm)
{
	waiter_cut((oneshot_waiter *)((char *)tm - offsetof(oneshot_waiter, tm)), -ETIMEDOUT);
}

static bool waiter_cancel(struct rlt__worker *w, rlt__wait *wt)
{
	(void)w;
	return waiter_cut((oneshot_waiter *)wt, -ECANCELED);
}

/* Register on o and suspend, with a timer at deadline (UINT64_MAX: none),
 * published for rlt_cancel unless not cancellable. Inlined twice, so that
 * the common wait (no timer, cancellable) is compiled without the rest. */
static inline __attribute__((always_inline)) int
wait_on_oneshot(rlt_task *t, rlt__oneshot *o, unsigned kind, uint64_t deadline, bool cancellable)
{
	oneshot_waiter ow;
	ow.wt.cancel = waiter_cancel;
	ow.os = o;
	ow.task = t;
	ow.cause = 0;
	bool timed = deadline != UINT64_MAX;
	if (timed) {
		/* Armed before registering (sched/sched.h, rule 1). */
		int rc = rlt__wait_timer_arm(t, &ow.tm, waiter_timeout, deadline);
		if (rc < 0)
			return rc;
	}
	int rc;
	if (cancellable) {
		rc = rlt__wait_enter(t, &ow.wt, kind);
		if (rc) {
			if (timed)
				rlt__wait_timer_disarm(t);
			return rc;
		}
	} else {
		rlt__wait_kind(t, kind);
	}
	rc = rlt__oneshot_register(o, t);
	if (rc != 0) {
		if (cancellable)
			rlt__wait_abandon(t);
		if (timed)
			rlt__wait_timer_disarm(t);
		return rc > 0 ? 0 : rc;
	}
	rlt__task_suspend(t);
	/* The waker disarmed the timer (or it fired) before we became runnable. */
	if (__builtin_expect(ow.cause != 0, 0)) {
		if (ow.cause == -ECANCELED)
			t->c.ncancel++;
		return ow.cause;
	}
	return 0;
}

/* The wait with a timeout or a deadline scope, or not cancellable. */
static __attribute__((noinline)) int oneshot_wait_slow(rlt_task *t, rlt__oneshot *o,
						       int64_t timeout_ns, unsigned kind)
{
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	bool cancellable = !(kind & RLT__WAIT_NOCANCEL);
	kind &= ~RLT__WAIT_NOCANCEL;
	uint64_t deadline = UINT64_MAX;
	if (timeout_ns > 0 || (cancellable && t->deadline != UINT64_MAX)) {
		uint64_t now = rlt_now();
		if (timeout_ns > 0)
			deadline = now + (uint64_t)timeout_ns;
		if (cancellable && t->deadline < deadline) {
			if (t->deadline <= now)
				return -ETIMEDOUT; /* the scope has expired */
			deadline = t->deadline;
		}
	}
	return wait_on_oneshot(t, o, kind, deadline, cancellable);
}

int rlt__oneshot_wait_k(rlt__oneshot *o, int64_t timeout_ns, unsigned kind)
{
	return rlt__oneshot_wait_t(rlt__task_self(), o, timeout_ns, kind);
}

int rlt__oneshot_wait_t(rlt_task *t, rlt__oneshot *o, int64_t timeout_ns, unsigned kind)
{
	if (rlt__oneshot_is_set(o))
		return 0;
	if (__builtin_expect(
		timeout_ns >= 0 || t->deadline != UINT64_MAX || (kind & RLT__WAIT_NOCANCEL), 0))
		return oneshot_wait_slow(t, o, timeout_ns, kind);
	return wait_on_oneshot(t, o, kind, UINT64_MAX, true);
}

rlt_future *rlt_future_new(void)
{
	rlt_future *f = rlt__malloc(sizeof(*f));
	if (!f) {
		errno = ENOMEM;
		return NULL;
	}
	rlt__oneshot_init(&f->os);
	atomic_init(&f->claimed, 0);
	atomic_init(&f->refs, 1);
	f->err = 0;
	f->value = NULL;
	return f;
}

rlt_future *rlt_future_retain(rlt_future *f)
{
	if (f)
		atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void rlt_future_release(rlt_future *f)
{
	if (!f)
		return;
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	uintptr_t st = atomic_load_explicit(&f->os.state, memory_order_acquire);
	if (st > RLT__ONESHOT_SET) {
		fprintf(stderr, "ringlet: future %p freed while task '%s' awaits it\n", (void *)f,
			((rlt_task *)st)->name);
		abort();
	}
	rlt__free(f);
}

static int complete(rlt_future *f, void *value, int err)
{
	if (atomic_exchange_explicit(&f->claimed, 1, memory_order_relaxed))
		return -EALREADY;
	f->value = value;
	f->err = err;
	rlt__oneshot_fire(&f->os); /* release: publishes value/err */
	return 0;
}

int rlt_future_set(rlt_future *f, void *value)
{
	if (!f)
		return -EINVAL;
	return complete(f, value, 0);
}

int rlt_future_fail(rlt_future *f, int err)
{
	if (!f || err == 0)
		return -EINVAL;
	/* Negative, like every errno in the API; a positive one is the 0.1.0
	 * convention, still taken for one release (future.h). f->err keeps
	 * the positive value the await negates. */
	return complete(f, NULL, err < 0 ? -err : err);
}

bool rlt_future_done(const rlt_future *f)
{
	return f && rlt__oneshot_is_set(&f->os);
}

int rlt_future_await(rlt_future *f, void **value, int64_t timeout_ns)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!f)
		return -EINVAL;
	int rc = rlt__oneshot_wait_k(&f->os, timeout_ns, RLT__WK_FUTURE);
	if (rc < 0)
		return rc;
	if (f->err)
		return -f->err;
	if (value)
		*value = f->value;
	return 0;
}

rlt__oneshot *rlt__future_oneshot(rlt_future *f)
{
	return &f->os;
}

int rlt__future_outcome(const rlt_future *f, void **value)
{
	if (f->err)
		return -f->err;
	if (value)
		*value = f->value;
	return 0;
}
