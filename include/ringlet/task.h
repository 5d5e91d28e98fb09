#ifndef RINGLET_TASK_H
#define RINGLET_TASK_H

#include "common.h"

#include <stdio.h>

RLT_EXTERN_C_BEGIN

/* Longest task name kept (longer names are truncated), without the NUL. */
#define RLT_TASK_NAME_MAX 31

/* rlt_spawn_opts.flags */
#define RLT_SPAWN_DETACHED  (1u << 0) /* as if rlt_detach() were called at once */
#define RLT_SPAWN_PINNED    (1u << 1) /* never stolen: runs only on its first worker */
#define RLT_SPAWN_ON_WORKER (1u << 2) /* start on worker opts->worker, not the caller's */

typedef struct rlt_spawn_opts {
	const char *name;  /* copied; NULL: named after the function (below) */
	size_t stack_size; /* 0 = the runtime default */
	unsigned flags;	   /* RLT_SPAWN_* */
	unsigned worker;   /* with RLT_SPAWN_ON_WORKER: the worker's index */
} rlt_spawn_opts;

/*
 * Create a task that runs fn(arg) and make it runnable. Does not suspend:
 * the new task first runs when the caller next suspends or yields, or at
 * once on another worker that steals it. Must be called from a task (see
 * rlt_runtime_spawn() for other threads). opts may be NULL.
 *
 * The stack is taken here, by rlt_spawn(): from the calling worker's pool of
 * free stacks (no system call when one is free), else from a new mapping.
 * If none can be had (RLIMIT_AS or vm.max_map_count reached, out of
 * memory), rlt_spawn() returns NULL with ENOMEM and no task exists; the
 * runtime and every other task go on. (rlt_runtime_spawn() from a thread
 * that is not one of the runtime's workers maps a stack for the task alone.)
 *
 * Stack overflow: below each stack lies a guard region (RLT_STACK_GUARD_SIZE,
 * 64 KiB; unless rlt_config.no_stack_guard). A task that runs into it is
 * reported on stderr ("ringlet: task 'NAME' overflowed its stack of N KiB")
 * and the process aborts. Code built with -fstack-clash-protection (ringlet
 * itself, and yours through ringlet.pc or the CMake package) probes every
 * large frame page by page and is always caught. Not caught: a frame that
 * overruns the stack by more than the guard in code built without that flag
 * (a library compiled otherwise): it may write into the stack below, which
 * is another task's. Give tasks that run such code a larger stack_size.
 *
 * The returned handle is owned by the caller, who must either rlt_join() it
 * or rlt_detach() it exactly once (unless RLT_SPAWN_DETACHED was given, in
 * which case the handle must not be used at all: the task may already be
 * gone). A finished task's memory is released when both it has returned and
 * its handle was joined or detached.
 *
 * Returns NULL with errno set to:
 *   EPERM   not called from a ringlet task
 *   EINVAL  fn is NULL, stack_size is outside [RLT_MIN_STACK_SIZE, RLT_MAX_STACK_SIZE],
 *           or RLT_SPAWN_ON_WORKER names no worker
 *   ENOMEM  no stack could be had for the task (its mapping was refused:
 *           RLIMIT_AS, vm.max_map_count, out of memory), or no memory for
 *           the task itself
 */
RLT_API rlt_task *rlt_spawn(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts);

/*
 * Default names. A task spawned without opts->name is named after its
 * function and id, "<fn>-<id>" ("worker-12", the function name cut to fit
 * RLT_TASK_NAME_MAX), so that failure reports, the stack-overflow report
 * and rlt_dump_tasks() point at code. rlt_spawn(), rlt_runtime_spawn() and
 * rlt_group_spawn() are macros that pass the source text of their fn
 * argument (#fn) to the *_named function below; where that text is not a
 * plain identifier (a cast, a function pointer expression) the name is
 * "task-<id>", as it is when the function itself is called, (rlt_spawn)(...)
 * or through a pointer to it (the ABI keeps the three functions).
 *
 * rlt_spawn_named() is rlt_spawn() with fn_name (NULL, or a string that
 * outlives the task: a literal) as the function's name for the default.
 * The name is formatted only if someone asks for it. Same errors.
 */
RLT_API rlt_task *rlt_spawn_named(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts,
				  const char *fn_name);
/* (arg, opts) pass through __VA_ARGS__: a compound literal's commas,
 * &(rlt_spawn_opts){.name = "a", .stack_size = 16384}, must not split the
 * macro's arguments.) */
#define rlt_spawn(fn, ...) rlt_spawn_named((fn), __VA_ARGS__, #fn)

/*
 * Wait for task t to return, store its return value in *result (if result
 * is not NULL) and release the handle. Suspends.
 * Returns 0 when t returned a result, or:
 *   e           t failed: it returned rlt_fail(e)
 *   -ECANCELED  t was cancelled (it received a cancellation and did not
 *               rlt_uncancel()), or the caller was cancelled while joining:
 *               as in asyncio, t is then cancelled too, and waited for
 *   -ETIMEDOUT  a deadline scope of the caller expired while joining: t is
 *               cancelled and waited for
 * In all of those the handle is released and *result set. Errors that
 * leave the handle alone: -EPERM (not in a task), -EINVAL (t is NULL),
 * -EDEADLK (t is the calling task), -EBUSY (another task is already joining
 * t, or it is in a wait/gather/group).
 *
 * The rule: a handle is consumed exactly once, by rlt_join() (or
 * rlt_wait_for(), rlt_gather(), the task's group) or by rlt_detach(); after
 * that the handle is dead, as a freed pointer is: joining it again, joining
 * it after rlt_detach() (or RLT_SPAWN_DETACHED), detaching it twice, or
 * rlt_cancel() after the join or the detach are bugs (the task's memory may
 * be gone or be another task's). In debug mode (RINGLET_DEBUG=1,
 * rlt_config.debug, and always in debug builds) they are caught (a cancel
 * after a detach once the task has ended): the process aborts with
 *   ringlet: rlt_join(task 'worker-12', id 12): the task was already joined; ...
 * (freed tasks are then kept aside, the last 4096, instead of reused).
 */
RLT_API int rlt_join(rlt_task *t, void **result);

/*
 * Mark the calling task as failed with err (a negative errno), for its
 * joiner: rlt_join() returns err, and gather, wait (FIRST_EXCEPTION) and
 * task groups treat the task as failed. Returns NULL, so that a task fails
 * with `return rlt_fail(-EIO);`. A later call replaces err. Outside a task,
 * or with err >= 0, does nothing.
 */
RLT_API void *rlt_fail(int err);

/* Give up the handle: the task's memory is freed when it returns.
 * Does not suspend. Returns 0 or -EINVAL (t is NULL). */
RLT_API int rlt_detach(rlt_task *t);

/* Let every other runnable task run once, then resume. Suspends.
 * Returns 0, -ECANCELED or -EPERM (not in a task). A cancellation point
 * (ringlet/cancel.h), as asyncio.sleep(0) is: a cancellation that arrives
 * while the task is queued here, or was pending, is delivered by this
 * call, once. Ignoring the result drops it: the task's next wait is not
 * cancelled. (A test that did so hung: its task, cancelled at a yield by
 * the join of a cancelled root, went on into a recv nobody answered.) */
RLT_API int rlt_yield(void);

/* The calling task, or NULL outside of a task. */
RLT_API rlt_task *rlt_current(void);

/* The task's name: opts->name, or the default ("<fn>-<id>", see
 * rlt_spawn_named). t NULL means the calling task; outside of a task
 * (t NULL) returns NULL. The string lives as long as the task handle. */
RLT_API const char *rlt_task_name(const rlt_task *t);

/* A number unique to the task within its runtime (the root task is 1). */
RLT_API uint64_t rlt_task_id(const rlt_task *t);

/* ---- introspection ---- */

/* rlt_task_state() */
#define RLT_TASK_RUNNABLE 0 /* queued, or spawned and not started */
#define RLT_TASK_RUNNING  1
#define RLT_TASK_WAITING  2 /* suspended: what says on what */
#define RLT_TASK_DONE	  3

/*
 * What t is doing now: one of RLT_TASK_*. If what is not NULL, it receives
 * (NUL-terminated, truncated to len) what a waiting task waits on: "io
 * read", "io accept", "sleep", "future", "join", "tasks" (gather, wait,
 * group), "mutex", "event", "semaphore", "condition", "waitgroup", "channel
 * send", "channel recv", "pool job", "generator"; "" otherwise. A snapshot:
 * t may have moved on by the time it is read. Any thread; t must be alive.
 * Returns the state or -EINVAL (t NULL).
 */
RLT_API int rlt_task_state(const rlt_task *t, char *what, size_t len);

/*
 * Print every live task of the calling task's runtime to out, worker by
 * worker (the worker that first ran it): name, id, state, what it waits
 * on, age. Suspends briefly (each worker lists its own tasks, on its own
 * thread). Returns 0, -EPERM (not in a task), -EINVAL (out NULL),
 * -ENOMEM. In debug mode (RINGLET_DEBUG=1, rlt_config.debug) the same
 * listing goes to stderr on SIGQUIT (Ctrl-\), as Go's goroutine dump.
 */
RLT_API int rlt_dump_tasks(FILE *out);

RLT_EXTERN_C_END

#endif
