/*
 * Wait queues for task-level synchronisation (mutexes, semaphores, events,
 * channels): a FIFO of waiters, each a record on the waiting task's stack,
 * guarded by the primitive's own spinlock, with timeouts.
 *
 * The hand-off protocol:
 *   waiter: lock; push w; rlt__waitq_wait() (unlocks, suspends on w->os)
 *   waker:  lock; w = rlt__waitq_pop(); fill w (w->result, w->data...);
 *           unlock; rlt__waiter_wake(w)
 * A waker never touches w after rlt__waiter_wake(): w lives on the waiter's
 * stack, and the waiter may return at once.
 *
 * Timeouts: a waiter whose time runs out locks again; if it is still in the
 * queue, it leaves it and the timeout stands. If a waker popped it first,
 * the hand-off is under way: the waiter waits (without a limit, briefly)
 * for it, and returns success. So a waker's hand-off (a lock, a value) is
 * never lost to a waiter that is leaving.
 *
 * The spinlock is held for a few list operations only, never across a
 * suspension: a spinning worker waits for another worker's short critical
 * section, not for a task.
 */
#ifndef RLT_RUNTIME_WAITQ_H
#define RLT_RUNTIME_WAITQ_H

#include "runtime/cpu.h"
#include "runtime/oneshot.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- a small test-and-test-and-set spinlock ---- */

typedef struct rlt__spin {
	atomic_bool locked;
} rlt__spin;

static inline void rlt__spin_init(rlt__spin *s)
{
	atomic_init(&s->locked, false);
}

static inline bool rlt__spin_trylock(rlt__spin *s)
{
	return !atomic_load_explicit(&s->locked, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&s->locked, true, memory_order_acquire);
}

static inline void rlt__spin_lock(rlt__spin *s)
{
	for (unsigned n = 0; !rlt__spin_trylock(s); n++) {
		rlt__cpu_relax();
		/* The holder may have been preempted (more threads than
		 * CPUs): after a while, give it the CPU. */
		if ((n & 255) == 255)
			sched_yield();
	}
}

static inline void rlt__spin_unlock(rlt__spin *s)
{
	atomic_store_explicit(&s->locked, false, memory_order_release);
}

/* ---- waiters ---- */

typedef struct rlt__waiter {
	struct rlt__waiter *next, *prev;
	rlt__oneshot os; /* completed by the waker: the hand-off */
	bool queued;	 /* in the queue (guarded by the primitive's lock) */
	int result;	 /* for the primitive: what the waker handed over */
	void *data;	 /* for the primitive: e.g. where a channel value goes */
} rlt__waiter;

typedef struct rlt__waitq {
	rlt__waiter *head, *tail;
} rlt__waitq;

static inline void rlt__waitq_init(rlt__waitq *q)
{
	q->head = q->tail = NULL;
}

static inline bool rlt__waitq_empty(const rlt__waitq *q)
{
	return q->head == NULL;
}

static inline void rlt__waiter_init(rlt__waiter *w)
{
	w->next = w->prev = NULL;
	rlt__oneshot_init(&w->os);
	w->queued = false;
	w->result = 0;
	w->data = NULL;
}

/* Lock held. */
static inline void rlt__waitq_push(rlt__waitq *q, rlt__waiter *w)
{
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	w->queued = true;
}

/* Lock held. */
static inline void rlt__waitq_remove(rlt__waitq *q, rlt__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->next = w->prev = NULL;
	w->queued = false;
}

/* Lock held: the first waiter, out of the queue, or NULL. */
static inline rlt__waiter *rlt__waitq_pop(rlt__waitq *q)
{
	rlt__waiter *w = q->head;
	if (w)
		rlt__waitq_remove(q, w);
	return w;
}

/* Lock NOT held: complete the hand-off to a popped waiter. */
void rlt__waiter_wake(rlt__waiter *w);

/* Lock held, w pushed: unlock and wait for a waker's hand-off, at most
 * timeout_ns (< 0: no limit; 0: do not wait). kind: the rlt__wait_kind the
 * dump shows. Returns 0 when handed off, -ETIMEDOUT, -ECANCELED, or -ENOMEM
 * (no room for the timer: nothing was waited). Must be called from a task. */
int rlt__waitq_wait(rlt__spin *lock, rlt__waitq *q, rlt__waiter *w, int64_t timeout_ns,
		    unsigned kind);

#endif
