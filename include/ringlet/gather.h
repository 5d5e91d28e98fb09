#ifndef RINGLET_GATHER_H
#define RINGLET_GATHER_H

#include "common.h"
#include "task.h"

RLT_EXTERN_C_BEGIN

/*
 * Waiting for several tasks: asyncio.gather, asyncio.wait,
 * asyncio.wait_for and asyncio.TaskGroup. They work on tasks of any worker.
 *
 * A task "fails" when it returned rlt_fail(err) (its outcome is err); a
 * task that was cancelled has the outcome -ECANCELED. These are the values rlt_join() returns.
 */

/* rlt_gather() flags */
#define RLT_GATHER_SETTLE                                                                          \
	(1u << 0) /* wait for every task; each outcome in errs[] (return_exceptions=True) */

/*
 * Wait for tasks[0..n) and collect results[i] (if results is not NULL) in
 * order. Always consumes the n handles (joins them), except for the
 * argument errors.
 *
 * Default: the first task to fail makes gather cancel the others, wait for
 * them to end, and return that task's error (asyncio.gather's default, minus
 * the tasks left running: nothing outlives the call here).
 * RLT_GATHER_SETTLE: wait for all; errs[i] (if errs is not NULL) gets each
 * outcome (0 or a negative errno); return 0.
 * If the caller is cancelled or its deadline scope expires, every task is
 * cancelled and waited for, and gather returns -ECANCELED / -ETIMEDOUT.
 * Suspends. Other errors: -EPERM (not in a task), -EINVAL (tasks NULL with
 * n > 0, or a NULL task), -EBUSY (a task is already being joined or
 * waited for), -ENOMEM.
 */
RLT_API int rlt_gather(rlt_task *const *tasks, size_t n, void **results, int *errs, unsigned flags);

/* rlt_wait() modes */
#define RLT_FIRST_COMPLETED 0
#define RLT_FIRST_EXCEPTION 1 /* the first failure, or all done */
#define RLT_ALL_COMPLETED   2

/*
 * asyncio.wait: wait until how is met or timeout_ns passes (negative: no
 * timeout), then reorder tasks[] so that the done ones come first, each
 * group in its original order, and return how many are done (the rest are
 * pending, still running, still the caller's). No handle is consumed: join
 * the done ones (which does not suspend) for their results. A timeout is
 * not an error: it returns the done count, possibly 0. Suspends.
 * Returns the count, or -ECANCELED (the caller was cancelled; the tasks
 * are left as they are), -ETIMEDOUT (an enclosing deadline scope expired),
 * -EPERM, -EINVAL (a NULL task, an unknown how), -EBUSY, -ENOMEM.
 */
RLT_API int rlt_wait(rlt_task **tasks, size_t n, int how, int64_t timeout_ns);

/*
 * Awaiting anything together (asyncio.gather and asyncio.wait take
 * coroutines, tasks and futures alike): an rlt_awaitable is a task or a
 * future (rlt_future_new(), or an executor job from rlt_pool_submit()),
 * made with rlt_aw_task() / rlt_aw_future(). rlt_gatherv() and rlt_waitv()
 * are rlt_gather() and rlt_wait() over such an array, with these
 * differences for futures:
 *   - a future's outcome is 0 (its value goes to results[i]) or -err for
 *     one failed with err; one failed with ECANCELED (a job dropped by a
 *     pool's shutdown) counts as cancelled, not as a failure, as a task;
 *   - a future is not consumed: the caller keeps its reference (release
 *     it after), and it may be awaited again;
 *   - a future cannot be cancelled: when gather ends early (a failure in
 *     the default mode, the caller cancelled or out of time), the tasks
 *     are cancelled and waited for, the futures not yet done are left as
 *     they are, with results[i] NULL and errs[i] -EINPROGRESS;
 *   - a future already awaited by a task (or in another gather) is -EBUSY.
 * Exactly one of task and future must be set in each: -EINVAL otherwise.
 */
typedef struct rlt_awaitable {
	rlt_task *task;
	rlt_future *future;
} rlt_awaitable;

static inline rlt_awaitable rlt_aw_task(rlt_task *t)
{
	rlt_awaitable a;
	a.task = t;
	a.future = NULL;
	return a;
}

static inline rlt_awaitable rlt_aw_future(rlt_future *f)
{
	rlt_awaitable a;
	a.task = NULL;
	a.future = f;
	return a;
}

/* rlt_gather() over tasks and futures (above). Suspends. */
RLT_API int rlt_gatherv(const rlt_awaitable *aws, size_t n, void **results, int *errs,
			unsigned flags);

/* rlt_wait() over tasks and futures: aws[] is reordered, done ones first.
 * Suspends. */
RLT_API int rlt_waitv(rlt_awaitable *aws, size_t n, int how, int64_t timeout_ns);

/*
 * asyncio.wait_for on one task: rlt_join() with a timeout (negative: none).
 * When it passes, t is cancelled and waited for, and the call returns
 * -ETIMEDOUT (or t's own outcome, if it finished before the cancellation
 * reached it). The handle is consumed in every case but -EPERM, -EINVAL,
 * -EDEADLK and -EBUSY. Suspends.
 */
RLT_API int rlt_wait_for(rlt_task *t, int64_t timeout_ns, void **result);

/*
 * Task groups (structured concurrency, asyncio.TaskGroup): tasks spawned
 * into a group are waited for by rlt_group_wait(), which the task that
 * created the group must call before it returns (the `async with` block's
 * end). The first task to fail cancels the others and, if it is not yet in
 * rlt_group_wait(), the group's owner too, so that it gets there quickly
 * (that cancellation is taken back when it arrives). A task that ends
 * cancelled is not a failure.
 */
typedef struct rlt_group rlt_group;

typedef struct rlt_group_report {
	int err;	  /* the first failure's outcome, or 0 */
	size_t failed;	  /* how many tasks failed */
	size_t tasks;	  /* how many were spawned */
	uint64_t task_id; /* the first failed task's id and name */
	char task_name[RLT_TASK_NAME_MAX + 1];
} rlt_group_report;

/* A new group owned by the calling task, or NULL with errno EPERM (not in
 * a task) or ENOMEM. */
RLT_API rlt_group *rlt_group_new(void);

/* Spawn fn(arg) into g (opts as for rlt_spawn; RLT_SPAWN_DETACHED is not
 * allowed). The handle stays the group's: it may be given to rlt_cancel()
 * or rlt_task_state() until rlt_group_wait() returns, never joined. NULL
 * with errno EINVAL, EPERM, ENOMEM (no stack or memory for the task, as
 * rlt_spawn(): g is unchanged), or ECANCELED (the group is shutting down
 * after a failure or rlt_group_cancel()). */
RLT_API rlt_task *rlt_group_spawn(rlt_group *g, rlt_task_fn fn, void *arg,
				  const rlt_spawn_opts *opts);
/* The same with fn_name for the default task name (task.h: rlt_spawn_named);
 * rlt_group_spawn is a macro passing #fn. */
RLT_API rlt_task *rlt_group_spawn_named(rlt_group *g, rlt_task_fn fn, void *arg,
					const rlt_spawn_opts *opts, const char *fn_name);
#define rlt_group_spawn(g, fn, ...) rlt_group_spawn_named((g), (fn), __VA_ARGS__, #fn)

/* Cancel every task of g (asyncio: leaving the block with an exception).
 * Any thread. Returns 0 or -EINVAL. */
RLT_API int rlt_group_cancel(rlt_group *g);

/*
 * Wait for every task of g, then free g. report (may be NULL) says what
 * happened. Returns 0 when no task failed; the first failure's outcome;
 * -ECANCELED / -ETIMEDOUT when the owner was cancelled or its deadline
 * scope expired while waiting (the tasks are then cancelled and waited
 * for: g is freed in every case but -EPERM / -EINVAL). Must be called by
 * the task that created g. Suspends.
 */
RLT_API int rlt_group_wait(rlt_group *g, rlt_group_report *report);

RLT_EXTERN_C_END

#endif
