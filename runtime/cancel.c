/* Cancellation, deadline scopes, shields and cleanup: see runtime/cancel.h
 * for the protocol, include/ringlet/cancel.h for the behaviour. */
#include "ringlet/cancel.h"

#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/sched.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int rlt__cancel_take(rlt_task *t)
{
	uint32_t old = atomic_fetch_and_explicit(&t->cancel, ~RLT__C_PENDING, memory_order_acq_rel);
	if (!(old & RLT__C_PENDING))
		return 0;
	t->c.ncancel++;
	return -ECANCELED;
}

void rlt__cancel_repend(rlt_task *t)
{
	atomic_fetch_or_explicit(&t->cancel, RLT__C_PENDING, memory_order_seq_cst);
}

static void post_cancel(struct rlt__worker *w, rlt_task *t)
{
	t->c.cancel_msg.fn = rlt__cancel_msg_run;
	rlt__worker_post(w, &t->c.cancel_msg);
}

void rlt__cancel_msg_run(struct rlt__worker *w, rlt__msg *m)
{
	rlt_task *t = (rlt_task *)((char *)m - offsetof(rlt_task, c.cancel_msg));
	/* Cleared first: a cancel that comes after this posts again. */
	atomic_fetch_and_explicit(&t->cancel, ~RLT__C_QUEUED, memory_order_seq_cst);
	struct rlt__worker *on = atomic_load_explicit(&t->wait_on, memory_order_seq_cst);
	uint32_t c = atomic_load_explicit(&t->cancel, memory_order_seq_cst);
	if (on == w) {
		/* t waits here and cannot be woken behind our back (cancel.h). */
		if ((c & RLT__C_PENDING) && !t->shield && t->wait->cancel(w, t->wait))
			atomic_fetch_and_explicit(&t->cancel, ~RLT__C_PENDING,
						  memory_order_acq_rel);
	} else if (on && (c & RLT__C_PENDING)) {
		/* t moved on and waits elsewhere now: follow it, keeping the
		 * reference the message holds. */
		if (!(atomic_fetch_or_explicit(&t->cancel, RLT__C_QUEUED, memory_order_seq_cst) &
		      RLT__C_QUEUED)) {
			post_cancel(on, t);
			return;
		}
	}
	/* else t runs, or is queued: it sees PENDING at its next suspension. */
	rlt__task_unref(t);
}

/* ---- the canceller's side of the barrier ---- */

bool rlt__cancel_fence_cheap;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static atomic_bool setup_xchg; /* the first rlt__cancel_setup's wish */

static void setup(void)
{
	/* RINGLET_CANCEL_FENCE=xchg forces the fallback (the tests run both). */
	if (atomic_load_explicit(&setup_xchg, memory_order_relaxed))
		return;
	/* Registering is what makes the expedited command usable later. */
	rlt__cancel_fence_cheap =
	    syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void rlt__cancel_setup(bool xchg)
{
	/* Read once, by the first call's setup: later wishes change nothing
	 * (every rlt_run reads the same environment). */
	atomic_store_explicit(&setup_xchg, xchg, memory_order_relaxed);
	pthread_once(&setup_once, setup);
}

void rlt__cancel_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (rlt__cancel_fence_cheap)
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

bool rlt__cancel_mark(rlt_task *t)
{
	if (rlt__oneshot_is_set(&t->done))
		return false;
	atomic_fetch_or_explicit(&t->cancel, RLT__C_PENDING, memory_order_seq_cst);
	return true;
}

void rlt__cancel_route(rlt_task *t)
{
	struct rlt__worker *w = atomic_load_explicit(&t->wait_on, memory_order_seq_cst);
	if (w && !(atomic_fetch_or_explicit(&t->cancel, RLT__C_QUEUED, memory_order_seq_cst) &
		   RLT__C_QUEUED)) {
		/* The message holds a reference: the handle may be released
		 * before the worker gets to it. */
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
		post_cancel(w, t);
	}
}

int rlt_cancel(rlt_task *t)
{
	if (!t)
		return -EINVAL;
	rlt__task_handle_check_cancel(t);
	if (!rlt__cancel_mark(t))
		return -EALREADY;
	rlt__cancel_fence();
	rlt__cancel_route(t);
	return 0;
}

int rlt_uncancel(void)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	atomic_fetch_and_explicit(&t->cancel, ~RLT__C_PENDING, memory_order_acq_rel);
	int n = (int)t->c.ncancel;
	t->c.ncancel = 0;
	return n;
}

int rlt_cancelled(void)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	return t->c.ncancel > 0 ||
	       (atomic_load_explicit(&t->cancel, memory_order_relaxed) & RLT__C_PENDING);
}

/* ---- scopes ---- */

#define SCOPE_SHIELD 1u

static int scope_push(rlt_scope *sc, uint64_t deadline, unsigned flags)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (!sc)
		return -EINVAL;
	sc->prev_ = t->c.scope;
	sc->deadline_ = deadline;
	sc->saved_deadline_ = t->deadline;
	sc->flags_ = flags;
	sc->task_ = t;
	t->c.scope = sc;
	if (flags & SCOPE_SHIELD) {
		t->shield++;
		t->deadline = UINT64_MAX; /* the outer deadlines stop here */
	} else if (deadline < t->deadline) {
		t->deadline = deadline;
	}
	return 0;
}

int rlt_scope_enter_at(rlt_scope *sc, uint64_t deadline_ns)
{
	return scope_push(sc, deadline_ns ? deadline_ns : 1, 0);
}

int rlt_scope_enter(rlt_scope *sc, int64_t timeout_ns)
{
	return scope_push(sc, timeout_ns < 0 ? UINT64_MAX : rlt_now() + (uint64_t)timeout_ns, 0);
}

int rlt_shield_enter(rlt_scope *sc)
{
	return scope_push(sc, UINT64_MAX, SCOPE_SHIELD);
}

int rlt_scope_leave(rlt_scope *sc)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (!sc || t->c.scope != sc || sc->task_ != t)
		return -EINVAL;
	t->c.scope = sc->prev_;
	t->deadline = sc->saved_deadline_;
	if (sc->flags_ & SCOPE_SHIELD) {
		t->shield--;
		return 0;
	}
	return rlt_scope_expired(sc) ? -ETIMEDOUT : 0;
}

bool rlt_scope_expired(const rlt_scope *sc)
{
	return sc && !(sc->flags_ & SCOPE_SHIELD) && sc->deadline_ != UINT64_MAX &&
	       rlt_now() >= sc->deadline_;
}

/* ---- cleanup ---- */

typedef struct rlt__defer {
	struct rlt__defer *next;
	void (*fn)(void *arg);
	void *arg;
} rlt__defer;

int rlt_defer(void (*fn)(void *arg), void *arg)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	rlt__defer *d = rlt__malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->arg = arg;
	d->next = t->c.defers;
	t->c.defers = d;
	t->c.ndefers++;
	return 0;
}

size_t rlt_defer_mark(void)
{
	rlt_task *t = rlt__task_self();
	return t ? t->c.ndefers : 0;
}

int rlt__defer_unwind(rlt_task *t, size_t mark)
{
	int n = 0;
	if (t->c.ndefers <= mark)
		return 0;
	rlt_scope shield;
	scope_push(&shield, UINT64_MAX, SCOPE_SHIELD);
	while (t->c.ndefers > mark) {
		rlt__defer *d = t->c.defers;
		t->c.defers = d->next;
		t->c.ndefers--;
		void (*fn)(void *) = d->fn;
		void *arg = d->arg;
		rlt__free(d);
		fn(arg); /* may defer more: those run too, before the older ones */
		n++;
	}
	rlt_scope_leave(&shield);
	return n;
}

int rlt_defer_run(size_t mark)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	return rlt__defer_unwind(t, mark);
}
