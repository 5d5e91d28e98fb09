/*
 * The worker loop.
 *
 * One turn:
 *   1. run the tasks that were runnable when the turn began (a task that
 *      yields goes to the back and runs next turn: nobody starves);
 *   2. move remotely woken tasks from the inbox to the run queue;
 *   3. fire due timers;
 *   4. if tasks are runnable: submit and reap I/O without blocking (one
 *      io_uring_enter at most, skipped when the kernel has nothing for us);
 *      otherwise park: sleep in io_uring_enter until a completion, a remote
 *      wake-up or the nearest timer deadline.
 *
 * Remote wake-ups (another thread makes one of our tasks runnable):
 *   waker:  push task on `inbox` (seq_cst), then if exchange(parked, 0)
 *           returned 1, write the eventfd (a read is always armed on it).
 *   worker: store parked = 1 (seq_cst), then look at `inbox` once more
 *           before sleeping; after waking, exchange(parked, 0).
 * Both sides do store-then-load on the two words with seq_cst, so at least
 * one of them sees the other's store: either the worker sees the task and
 * does not sleep, or the waker sees parked == 1 and kicks. No lost wake-up.
 */
#include "sched/worker.h"

#include "io/uring.h"
#include "runtime/alloc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static __thread rlt__worker *tls_worker;

__attribute__((noinline)) rlt__worker *rlt__worker_self(void)
{
	rlt__worker *w = tls_worker;
	__asm__ volatile("" ::: "memory");
	return w;
}

__attribute__((noinline)) rlt_task *rlt__task_self(void)
{
	rlt__worker *w = tls_worker;
	return w ? w->current : NULL;
}

bool rlt__current_stack_info(const void **lo, size_t *size, const char **name)
{
	rlt__worker *w = tls_worker;
	if (!w || !w->current)
		return false;
	*lo = w->current->stack.lo;
	*size = w->current->stack.size;
	*name = w->current->name;
	return true;
}

static inline uint64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rlt__worker_init(rlt__worker *w, rlt__runtime *rt, unsigned index)
{
	memset(w, 0, sizeof(*w));
	w->rt = rt;
	w->index = index;
	w->wake_fd = -1;
	atomic_init(&w->inbox, NULL);
	atomic_init(&w->parked, 0);
	rlt__timer_heap_init(&w->timers);
	rlt__stack_pool_init(&w->stacks, rt->stack_cache, rt->stack_guard);
	int rc = rlt__io_init(w, rt->ring_entries);
	if (rc < 0) {
		rlt__stack_pool_destroy(&w->stacks);
		return rc;
	}
	rc = rlt__altstack_enter(&w->altstack);
	if (rc < 0) {
		rlt__io_fini(w);
		rlt__stack_pool_destroy(&w->stacks);
		return rc;
	}
	rlt__coro_init_thread(&w->sched);
	w->now = mono_now();
	tls_worker = w;
	return 0;
}

void rlt__worker_fini(rlt__worker *w)
{
	rlt__io_fini(w);
	rlt__timer_heap_destroy(&w->timers);
	rlt__stack_pool_destroy(&w->stacks);
	rlt__altstack_leave(w->altstack);
	w->altstack = NULL;
	if (tls_worker == w)
		tls_worker = NULL;
}

/* ---- suspend and wake ---- */

void rlt__task_suspend(rlt_task *t)
{
	rlt__worker *w = t->worker;
	t->state = RLT__T_WAITING;
	rlt__coro_switch(&t->coro, &w->sched, 0);
}

/* On t's own worker: disarm its wait timer, queue it. */
static inline void wake_local(rlt__worker *w, rlt_task *t)
{
	if (t->wait_timer) {
		if (rlt__timer_armed(t->wait_timer))
			rlt__timer_del(&w->timers, t->wait_timer);
		t->wait_timer = NULL;
	}
	t->state = RLT__T_RUNNABLE;
	rlt__runq_push(w, t);
}

void rlt__task_wake(rlt_task *t)
{
	rlt__worker *w = t->worker;
	if (w == tls_worker) {
		wake_local(w, t);
		return;
	}
	/* Remote: see the protocol at the top of this file. */
	rlt_task *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
	do
		t->next = head;
	while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, t, memory_order_seq_cst,
						      memory_order_relaxed));
	if (atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst))
		rlt__io_kick(w);
}

static void drain_inbox(rlt__worker *w)
{
	rlt_task *t = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
	/* The stack is newest-first; reverse it to wake in arrival order. */
	rlt_task *fifo = NULL;
	while (t) {
		rlt_task *next = t->next;
		t->next = fifo;
		fifo = t;
		t = next;
	}
	while (fifo) {
		rlt_task *next = fifo->next;
		wake_local(w, fifo);
		fifo = next;
	}
}

/* ---- the loop ---- */

static inline void run_task(rlt__worker *w, rlt_task *t)
{
	w->current = t;
	t->worker = w;
	t->state = RLT__T_RUNNING;
	rlt__coro_switch(&w->sched, &t->coro, 0);
	w->current = NULL;
	if (t->state == RLT__T_DONE)
		rlt__task_reap(w, t);
}

void rlt__worker_loop(rlt__worker *w)
{
	while (!w->stop) {
		for (uint32_t n = w->rq_len; n > 0 && !w->stop; n--)
			run_task(w, rlt__runq_pop(w));
		if (w->stop)
			break;
		if (atomic_load_explicit(&w->inbox, memory_order_relaxed))
			drain_inbox(w);
		w->now = mono_now();
		if (w->timers.n)
			rlt__timer_run(&w->timers, w->now);
		if (w->rq_len) {
			rlt__io_poll(w);
			continue;
		}
		/* Nothing to run: park. */
		atomic_store_explicit(&w->parked, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&w->inbox, memory_order_seq_cst)) {
			atomic_store_explicit(&w->parked, 0, memory_order_relaxed);
			continue;
		}
		int64_t timeout = -1;
		rlt__timer *first = rlt__timer_first(&w->timers);
		if (first)
			timeout = first->deadline > w->now ? (int64_t)(first->deadline - w->now) : 0;
		rlt__io_wait(w, timeout);
		atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst);
	}
}

unsigned rlt__worker_drop_tasks(rlt__worker *w)
{
	/* Let the kernel let go of every buffer first: tasks' stacks are
	 * about to be unmapped. */
	rlt__io_cancel_all(w);
	w->rq_head = w->rq_tail = NULL;
	w->rq_len = 0;
	drain_inbox(w);
	w->rq_head = w->rq_tail = NULL;
	w->rq_len = 0;
	unsigned dropped = 0;
	while (w->all) {
		if (w->all->state != RLT__T_DONE)
			dropped++;
		rlt__task_drop(w, w->all);
	}
	return dropped;
}
