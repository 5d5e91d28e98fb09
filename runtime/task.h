/* Internal view of a task. */
#ifndef RLT_RUNTIME_TASK_H
#define RLT_RUNTIME_TASK_H

#include "ringlet/task.h"
#include "runtime/coro.h"
#include "runtime/oneshot.h"
#include "runtime/stack.h"
#include "sched/timer.h"

#include <stdatomic.h>

struct rlt__worker;
struct rlt__runtime;

#define RLT__TF_PINNED 1u

enum rlt__task_state {
	RLT__T_RUNNABLE, /* in a run queue or an inbox */
	RLT__T_RUNNING,
	RLT__T_WAITING, /* suspended until something wakes it */
	RLT__T_DONE,    /* returned; stack given back */
	RLT__T_YIELDED, /* switched away to be queued again at once */
};

struct rlt_task {
	rlt__coro coro;
	/* Link in exactly one of: a run queue, a worker's remote inbox. */
	rlt_task *next;
	/* The worker running the task, or the one it suspended on. Wakes are
	 * delivered there, so that worker can disarm wait_timer (its heap)
	 * before the task becomes runnable again. */
	struct rlt__worker *worker;
	/* Timer armed for the current wait, if any; lives on the task's stack. */
	rlt__timer *wait_timer;
	/* rlt_set_io_timeout(): each I/O operation's limit, ns (0: none). */
	int64_t io_timeout;

	rlt_task_fn fn;
	void *arg;
	void *result;
	rlt__stack stack;

	/* One for the running task, one for the handle (unless detached). */
	atomic_uint refs;
	uint8_t state;
	uint8_t flags; /* RLT__TF_* */
	int16_t start_err; /* -ENOMEM when no stack could be had: never ran */
	rlt__oneshot done; /* set when fn returned; the joiner waits here */

	/* All tasks not yet freed, in the list of their owner (the worker that
	 * first ran them): what shutdown reclaims. NULL owner: never ran yet. */
	struct rlt__worker *owner;
	rlt_task *all_prev, *all_next;

	uint64_t id;
	_Atomic uint8_t name_state; /* the default name is formatted lazily */
	char name[RLT_TASK_NAME_MAX + 1];
} __attribute__((aligned(16)));

/* t's name, formatting the default "task-<id>" on first use. */
const char *rlt__task_name(rlt_task *t);
/* Park the running task t until someone calls rlt__task_wake(t). */
void rlt__task_suspend(rlt_task *t);
/* Make a suspended task runnable, from any thread. Must be called exactly
 * once per suspension (the oneshot and timer protocols guarantee that). */
void rlt__task_wake(rlt_task *t);
/* Run by the scheduler after a task switched away in state DONE. */
void rlt__task_reap(struct rlt__worker *w, rlt_task *t);
/* Free t on the thread of its owner w. */
void rlt__task_free_owned(struct rlt__worker *w, rlt_task *t);
/* Free a task that never ran to completion (shutdown). */
void rlt__task_drop(struct rlt__worker *w, rlt_task *t);
/* Create a task of runtime rt (used for the root task too). Its stack is
 * allocated when it first runs (rlt__task_start). */
rlt_task *rlt__task_create(struct rlt__runtime *rt, struct rlt__worker *self, rlt_task_fn fn,
			   void *arg, const rlt_spawn_opts *opts);
/* Free the task structs w keeps for reuse (worker teardown). */
void rlt__task_cache_drain(struct rlt__worker *w);
/* On the worker about to run t for the first time: take a stack, join the
 * worker's task list. Returns false if no stack could be had (t is then
 * finished with start_err = -ENOMEM). */
bool rlt__task_start(struct rlt__worker *w, rlt_task *t);

#endif
