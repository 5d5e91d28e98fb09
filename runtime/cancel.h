/*
 * Cancellation: how rlt_cancel() reaches a task that waits, on whatever
 * worker it waits, without touching a task that is running or moving.
 *
 * Every wait that can be cut short (an I/O operation, a sleep, a future, a
 * join, a lock, a channel...) is a record on the waiting task's stack that
 * starts with an rlt__wait. Before it suspends, the task publishes it:
 *
 *   task (on worker W)                  canceller (any thread)
 *   t->wait = record                    cancel |= PENDING      (seq_cst RMW)
 *   wait_on := W          (seq_cst)     w = wait_on            (seq_cst)
 *   if cancel & PENDING: deliver now    if w: post cancel_msg to w
 *   else: register, suspend
 *
 * At least one side must see the other: either the task finds PENDING
 * before it suspends and returns -ECANCELED itself, or the canceller finds
 * wait_on and posts a message to W. That needs a full barrier between each
 * side's store and its load. The task suspends all the time and is
 * cancelled rarely, so the barrier is made asymmetric: the task's side is a
 * plain store and load (with only the compiler kept from reordering them),
 * and the canceller, after its store, calls membarrier(2)
 * (MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on every
 * CPU running one of our threads: any task whose store came before that
 * point is seen by the canceller's load, and any task whose load comes
 * after it sees PENDING. Where membarrier is refused (old kernels, seccomp),
 * the task side uses a seq_cst exchange instead (rlt__cancel_fence_cheap
 * false), at the price of one locked instruction per suspension.
 *
 * W runs the message in its loop, on its own thread, and there:
 *
 *   wait_on == W  means t is suspended on W in the wait that t->wait
 *   describes, and will stay so while W runs the message: every wake of t
 *   ends in wake_local() on W's thread (remote wakes go through W's inbox,
 *   which only W drains), and wake_local() clears wait_on before t can be
 *   queued, stolen or run. So W may call t->wait->cancel() on a record that
 *   lives on t's stack.
 *
 * The hook cuts the wait the way its timeout would (withdraw from the
 * oneshot, delete the timer, ask the loop policy to cancel the op), with
 * -ECANCELED as the cause, and wakes t; an I/O operation wakes t only when
 * the kernel has completed it, so a buffer on t's stack is never written
 * after t has moved on. If the wait had already ended (the hook lost the
 * race to a completion), PENDING stays and t's next suspension point
 * delivers it. A message that finds t waiting on another worker follows
 * it there; one that finds t running is dropped (t will see PENDING).
 *
 * Cancellation is edge-triggered, as in asyncio: one rlt_cancel() makes
 * one suspension point return -ECANCELED (the current one, or the next).
 * A shield (rlt_shield_enter) defers it. Deadline scopes are level-
 * triggered: every wait inside an expired scope fails with -ETIMEDOUT.
 */
#ifndef RLT_RUNTIME_CANCEL_H
#define RLT_RUNTIME_CANCEL_H

#include "ringlet/time.h"

#include "runtime/task.h"

#include <stdatomic.h>

struct rlt__worker;

typedef struct rlt__wait {
	/* On the worker the task waits on, task still suspended: cut the wait
	 * short with -ECANCELED. True when the task is (or will be) woken for
	 * it; false when the wait has already ended. */
	bool (*cancel)(struct rlt__worker *w, struct rlt__wait *wt);
} rlt__wait;

/* Wait flag for rlt__oneshot_wait_k: not a cancellation point, no scope
 * deadline (hand-offs that must complete). */
#define RLT__WAIT_NOCANCEL 0x8000u

/* Deliver a pending cancellation (the task's own thread): -ECANCELED if
 * there was one to take, 0 if it was taken by someone else meanwhile. */
int rlt__cancel_take(rlt_task *t);

/* The wait ended normally though a cancellation had been taken for it
 * (the operation won the race): deliver at the next suspension point. */
void rlt__cancel_repend(rlt_task *t);

/* A cancellation point that is not a wait (yield, I/O entry). */
static inline int rlt__cancel_point(rlt_task *t)
{
	if (__builtin_expect(
		!(atomic_load_explicit(&t->cancel, memory_order_relaxed) & RLT__C_PENDING), 1) ||
	    t->shield)
		return 0;
	return rlt__cancel_take(t);
}

/* membarrier(2) is ours: the cancellers pay for the barrier (above). Set
 * once, before the first runtime starts. */
extern bool rlt__cancel_fence_cheap;

/* Publish wt as t's current wait on its worker (see the top). 0: go on and
 * suspend; -ECANCELED: a cancel came first and is delivered, do not
 * suspend (wait_on is cleared again). */
static inline int rlt__wait_enter(rlt_task *t, rlt__wait *wt, unsigned kind)
{
	t->wait = wt;
	atomic_store_explicit(&t->wait_kind, (uint16_t)kind, memory_order_relaxed);
	if (__builtin_expect(rlt__cancel_fence_cheap, 1)) {
		atomic_store_explicit(&t->wait_on, t->worker, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst); /* the compiler only */
	} else {
		atomic_exchange_explicit(&t->wait_on, t->worker, memory_order_seq_cst);
	}
	if (__builtin_expect(
		!(atomic_load_explicit(&t->cancel, memory_order_seq_cst) & RLT__C_PENDING), 1) ||
	    t->shield)
		return 0;
	int rc = rlt__cancel_take(t);
	if (rc)
		atomic_store_explicit(&t->wait_on, NULL, memory_order_relaxed);
	return rc;
}

/* The wait was published but the task does not suspend after all. */
static inline void rlt__wait_abandon(rlt_task *t)
{
	atomic_store_explicit(&t->wait_on, NULL, memory_order_relaxed);
}

/* Set the dump's view of a wait that is not published (NOCANCEL). */
static inline void rlt__wait_kind(rlt_task *t, unsigned kind)
{
	atomic_store_explicit(&t->wait_kind, (uint16_t)kind, memory_order_relaxed);
}

/* A -ETIMEDOUT that t got was its deadline scope's (not a call's own time
 * limit, which a caller may retry or report as it likes): the scope has
 * expired, and every wait inside it fails at once from now on. */
static inline bool rlt__scope_expired(const rlt_task *t)
{
	return t->deadline != UINT64_MAX && rlt_now() >= t->deadline;
}

/* Worker side: run a posted cancel_msg. */
void rlt__cancel_msg_run(struct rlt__worker *w, rlt__msg *m);

/* Decide, once per process, whether membarrier(2) can be used (xchg:
 * RINGLET_CANCEL_FENCE=xchg, never). */
void rlt__cancel_setup(bool xchg);

/* Cancel many tasks at the cost of one barrier: rlt__cancel_mark() each
 * (false: finished, skip), rlt__cancel_fence() once, then
 * rlt__cancel_route() each marked one. */
bool rlt__cancel_mark(rlt_task *t);
void rlt__cancel_fence(void);
void rlt__cancel_route(rlt_task *t);

#endif
