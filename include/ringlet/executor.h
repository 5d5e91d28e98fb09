#ifndef RINGLET_EXECUTOR_H
#define RINGLET_EXECUTOR_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

RLT_EXTERN_C_BEGIN

/*
 * Blocking work: thread pools that run a plain function for a task, which
 * suspends meanwhile (asyncio's run_in_executor / to_thread). For calls
 * that block (legacy libraries, getaddrinfo, a CPU-heavy step): the worker
 * goes on running other tasks.
 *
 * The default pool (pool argument NULL) is the process's, created on first
 * use: up to RINGLET_BLOCKING_THREADS threads (default 512, tokio's
 * ceiling: blocking jobs mostly wait, so the limit is about not exhausting
 * the machine, not about cores), started on demand, each exiting after 10 s
 * idle. User pools (rlt_pool_create) have their own limits, as
 * ThreadPoolExecutor(max_workers=n) does.
 *
 * A job's result wakes its task through the task's worker: an inbox push
 * and, only if the worker sleeps, a wake-up through its loop policy. Many
 * completions arriving in one loop turn cost one wake-up.
 *
 * rlt_run() returns only once every job its tasks are waiting for has
 * returned (a job cannot be interrupted; a task left waiting at shutdown
 * keeps its stack, and so the job's arguments, until then).
 */

typedef void *(*rlt_job_fn)(void *arg);
typedef struct rlt_pool rlt_pool;

typedef struct rlt_pool_config {
	/* At most this many threads (0: 512, or RINGLET_BLOCKING_THREADS for
	 * the default pool). */
	unsigned max_threads;
	/* An idle thread exits after this long (0: 10000 ms). */
	unsigned keep_alive_ms;
	/* At most this many jobs waiting for a thread; more are refused with
	 * -EAGAIN (0: no limit). */
	size_t max_queue;
	/* Thread name prefix, up to 10 characters (NULL: "rlt-pool"). */
	const char *name;
} rlt_pool_config;

/* A new pool (no thread starts until the first job), or NULL with errno
 * EINVAL or ENOMEM. Any thread. */
RLT_API rlt_pool *rlt_pool_create(const rlt_pool_config *cfg);

/*
 * Stop pool p and free it. wait: jobs already queued still run; !wait:
 * queued jobs are dropped (a task awaiting one gets -ECANCELED, a future
 * fails with -ECANCELED, their discard callbacks run). Either way the jobs
 * running finish first, and no job can be submitted meanwhile (-ESHUTDOWN).
 * From a task, it suspends (the waiting happens in the default pool); from
 * any other thread, it blocks. Returns 0, -EINVAL (p NULL: the default
 * pool cannot be shut down; or called from one of p's own threads).
 */
RLT_API int rlt_pool_shutdown(rlt_pool *p, bool wait);

/*
 * Run fn(arg) on a thread of pool (NULL: the default pool) and suspend the
 * calling task until it returns; store its return value in *result (if
 * result is not NULL). Returns 0, or
 *   -EPERM      not called from a task
 *   -EINVAL     fn is NULL
 *   -EAGAIN     the pool's queue is full (max_queue)
 *   -ESHUTDOWN  the pool is shutting down
 *   -ECANCELED  the job was dropped by rlt_pool_shutdown(p, false)
 *   -ENOMEM     no memory for the job, or no thread could be started and
 *               none is running
 * arg may point into the task's stack: the task does not resume before fn
 * has returned. For the same reason this is not a cancellation point:
 * rlt_cancel() and deadline scopes wait until the job has returned (use
 * rlt_run_blocking_timeout(), with a timeout of -1 if need be, to await a
 * job cancellably).
 */
RLT_API int rlt_run_blocking(rlt_pool *pool, rlt_job_fn fn, void *arg, void **result);

/*
 * The same with a time limit (timeout_ns < 0: none), and cancellable: on
 * -ETIMEDOUT, and on -ECANCELED when the task is cancelled (rlt_cancel) or
 * its deadline scope expires (-ETIMEDOUT), the task resumes at once and the
 * job goes on to its end on its thread (a thread cannot be interrupted):
 * arg must then outlive the job, so it must not point into the task's
 * stack. Once the job has ended and the task has left, discard(arg,
 * result) is called (if not NULL) by whichever of the two lets go last (the
 * pool thread, or the task as it returns): that is where a heap arg and a
 * heap result are freed. On any other return, discard is not called and
 * arg and *result are the caller's.
 */
RLT_API int rlt_run_blocking_timeout(rlt_pool *pool, rlt_job_fn fn, void *arg, void **result,
				     int64_t timeout_ns, void (*discard)(void *arg, void *result));

/*
 * Submit fn(arg) from any thread, task or not; returns a future (one
 * reference, the caller's: rlt_future_release it) that is set to fn's
 * return value, or failed with -ECANCELED (dropped by a shutdown). Any task
 * may await it. NULL with errno EINVAL, EAGAIN, ESHUTDOWN or ENOMEM.
 */
RLT_API rlt_future *rlt_pool_submit(rlt_pool *pool, rlt_job_fn fn, void *arg);

typedef struct rlt_pool_stats {
	unsigned threads;   /* alive */
	unsigned idle;	    /* alive and waiting for a job */
	size_t queued;	    /* jobs waiting for a thread */
	uint64_t completed; /* jobs run to their end, since the pool was made */
} rlt_pool_stats;

/* A snapshot of pool's counters (NULL: the default pool). 0 or -EINVAL. */
RLT_API int rlt_pool_get_stats(rlt_pool *pool, rlt_pool_stats *out);

RLT_EXTERN_C_END

#endif
