#ifndef RINGLET_CANCEL_H
#define RINGLET_CANCEL_H

#include "common.h"

RLT_EXTERN_C_BEGIN

/*
 * Cancellation, deadlines and cleanup: asyncio's Task.cancel(),
 * asyncio.timeout(), asyncio.shield() and `async with`, for C.
 *
 * Suspension points. Every call that may suspend is one: the I/O calls
 * (always, even when the operation would complete at once), rlt_sleep*,
 * rlt_yield, rlt_future_await, rlt_join, the pool calls, and the waits of
 * the sync primitives and channels when they do wait (a mutex that is free,
 * a channel with a value ready, return at once, as in asyncio).
 */

/*
 * Ask task t to stop: its current suspension point, or its next one, returns
 * -ECANCELED, once (asyncio's edge-triggered cancel; a task that handles
 * -ECANCELED and goes on is not cancelled again unless asked again). A task
 * cancelled before it first ran never runs its function.
 *
 * If t is inside an I/O operation, the operation is cancelled in the kernel
 * (on the ring that owns it, whichever worker the caller is on), and t
 * resumes only once the kernel has let go of its buffers. If the operation
 * completed anyway (it won the race), t gets its real result and the
 * cancellation is delivered at its next suspension point instead.
 *
 * t's joiner learns that it was cancelled: rlt_join() returns -ECANCELED
 * for a task that received a cancellation, unless the task called
 * rlt_uncancel(). Any thread may call this (t must be a handle the caller
 * still owns, or otherwise known to be alive). Does not suspend; costs a
 * system call (membarrier(2), the price that keeps every suspension free of
 * a locked instruction), so gather and task groups cancel their tasks
 * together, for one.
 * Returns 0, -EINVAL (t NULL), -EALREADY (t has finished).
 */
RLT_API int rlt_cancel(rlt_task *t);

/* For a task that handled its cancellation and goes on as if it had not
 * been cancelled (asyncio's Task.uncancel()): forget the cancellations
 * delivered so far and any still pending. Returns how many were delivered,
 * or -EPERM outside a task. */
RLT_API int rlt_uncancel(void);

/* Whether the calling task was cancelled: 1 if a cancellation was delivered
 * or is pending, 0 if not, -EPERM outside a task. */
RLT_API int rlt_cancelled(void);

/*
 * Scopes, on the caller's stack: deadlines (asyncio.timeout(), Trio's
 * cancel scopes) and shields (asyncio.shield()).
 *
 * A deadline scope makes every suspension point inside it fail with
 * -ETIMEDOUT once its deadline has passed (and cuts short the one waiting
 * when it passes). Scopes nest: the nearest deadline wins. Under io_uring,
 * an I/O operation carries the deadline as a linked timeout
 * (IOSQE_IO_LINK + IORING_OP_LINK_TIMEOUT); elsewhere a worker timer
 * cancels it.
 *
 * A shield defers cancellation (rlt_cancel) until it is left, and hides
 * the deadlines of the scopes around it (scopes opened inside it still
 * apply): what cleanup code that must finish wraps itself in.
 *
 * Leave scopes in the reverse order of entering them, before the function
 * that holds the rlt_scope returns.
 */
typedef struct rlt_scope {
	/* private */
	struct rlt_scope *prev_;
	uint64_t deadline_;
	uint64_t saved_deadline_;
	unsigned flags_;
	void *task_;
} rlt_scope;

/* Enter a scope whose deadline is timeout_ns from now (negative: no
 * deadline). Returns 0, -EPERM (not in a task), -EINVAL (sc NULL). */
RLT_API int rlt_scope_enter(rlt_scope *sc, int64_t timeout_ns);
/* The same with an absolute deadline (rlt_now() time). */
RLT_API int rlt_scope_enter_at(rlt_scope *sc, uint64_t deadline_ns);
/* Enter a shield. Returns 0, -EPERM, -EINVAL. */
RLT_API int rlt_shield_enter(rlt_scope *sc);
/* Leave the innermost scope, sc. Returns 0, -ETIMEDOUT if sc's deadline
 * has passed (the work inside it was cut short, or would have been),
 * -EINVAL if sc is not the innermost scope of the calling task, -EPERM.
 * Leaving a shield delivers a deferred cancellation at the next
 * suspension point. */
RLT_API int rlt_scope_leave(rlt_scope *sc);
/* Whether sc's deadline has passed. */
RLT_API bool rlt_scope_expired(const rlt_scope *sc);

/*
 * Cleanup (`async with`, Go's defer): push fn(arg) on the calling task's
 * cleanup stack. It runs when the task returns (also when it returns
 * because it was cancelled), or earlier when rlt_defer_run() unwinds past
 * it. Cleanup runs in reverse order, inside a shield, and may suspend
 * (closing a connection politely): a cancellation or an outer deadline
 * does not cut it short; give it a deadline scope of its own if it needs
 * one. Returns 0, -EPERM (not in a task), -EINVAL (fn NULL), -ENOMEM.
 */
RLT_API int rlt_defer(void (*fn)(void *arg), void *arg);
/* The depth of the calling task's cleanup stack: a mark to unwind to. */
RLT_API size_t rlt_defer_mark(void);
/* Run (and pop) the cleanup pushed since mark, newest first: leaving an
 * `async with` block. Returns how many ran, or -EPERM. Suspends if the
 * cleanup does. */
RLT_API int rlt_defer_run(size_t mark);

RLT_EXTERN_C_END

#endif
