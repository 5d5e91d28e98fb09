/*
 * A worker: one thread, one io_uring, one run queue, one timer heap, one
 * stack pool. Everything in it is touched only by its own thread, except
 * `inbox` and `parked` (the remote wake-up path, see worker.c).
 */
#ifndef RLT_SCHED_WORKER_H
#define RLT_SCHED_WORKER_H

#include "runtime/coro.h"
#include "runtime/stack.h"
#include "runtime/task.h"
#include "sched/timer.h"

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct rlt__runtime rlt__runtime;

typedef struct rlt__worker {
	rlt__runtime *rt;
	unsigned index;
	rlt__coro sched;   /* the thread's own stack: where the loop runs */
	rlt_task *current; /* running task, NULL in the loop */

	/* Local run queue: FIFO, intrusive through task->next. */
	rlt_task *rq_head, *rq_tail;
	uint32_t rq_len;

	/* Remote wake-ups: a Treiber stack of tasks (through task->next) pushed
	 * by other threads, drained by this worker between tasks. */
	_Atomic(rlt_task *) inbox;
	/* 1 while the worker sleeps (or is about to) in the kernel; a remote
	 * waker that swaps it 1 -> 0 must kick the eventfd. */
	atomic_int parked;

	rlt__timer_heap timers;
	rlt__stack_pool stacks;
	uint64_t now; /* cached CLOCK_MONOTONIC of the current loop turn */

	/* io_uring */
	struct io_uring ring;
	bool ring_ready;
	bool taskrun_flag;   /* kernel flags deferred completions in sq.kflags */
	unsigned inflight;   /* SQEs whose CQE has not been reaped */
	int wake_fd;         /* eventfd for wake-ups from other threads */
	uint64_t wake_buf;
	bool wake_armed;

	rlt_task *all; /* every task of this worker not yet freed */
	void *altstack;
	bool stop;
} rlt__worker;

struct rlt__runtime {
	rlt__worker *workers;
	unsigned nworkers;
	size_t stack_size;
	unsigned ring_entries;
	unsigned stack_cache;
	bool stack_guard;
	atomic_uint_fast64_t next_id;
	rlt_task *root;
};

/* The worker running on this thread, or NULL. Not inlined: a task may move
 * between threads across a suspension, and the compiler must not reuse a
 * thread-local address computed before one. */
rlt__worker *rlt__worker_self(void);
rlt_task *rlt__task_self(void);

int rlt__worker_init(rlt__worker *w, rlt__runtime *rt, unsigned index);
void rlt__worker_fini(rlt__worker *w);
/* Run the loop until w->stop. */
void rlt__worker_loop(rlt__worker *w);
/* Abandon every task left on w (shutdown); returns how many there were. */
unsigned rlt__worker_drop_tasks(rlt__worker *w);

static inline void rlt__runq_push(rlt__worker *w, rlt_task *t)
{
	t->next = NULL;
	if (w->rq_tail)
		w->rq_tail->next = t;
	else
		w->rq_head = t;
	w->rq_tail = t;
	w->rq_len++;
}

static inline rlt_task *rlt__runq_pop(rlt__worker *w)
{
	rlt_task *t = w->rq_head;
	if (t) {
		w->rq_head = t->next;
		if (!w->rq_head)
			w->rq_tail = NULL;
		w->rq_len--;
	}
	return t;
}

#endif
