/*
 * A one-shot completion with at most one waiting task: the core of futures
 * and joins. Lock-free, safe to complete from any thread.
 *
 * state is EMPTY, SET, or the address of the waiting task (tasks are at
 * least 16-byte aligned, so no task address is 0 or 1).
 *
 *   waiter:    EMPTY --CAS--> task        (register, then suspend once)
 *   completer: any   --XCHG-> SET         (if it saw a task: wake it)
 *   timeout:   task  --CAS--> EMPTY       (if it won: it wakes the task)
 *
 * Exactly one of the completer and the timeout sees the task pointer and
 * wakes it, so a waiter is woken exactly once per registration.
 *
 * Ordering: the completer writes the result, then XCHG with release, so a
 * waiter that reads SET with acquire sees the result. The waiter's CAS is a
 * release, so a completer that reads the task pointer (acquire) also sees
 * the fields the waiter wrote before (its worker, its wait state).
 */
#ifndef RLT_RUNTIME_ONESHOT_H
#define RLT_RUNTIME_ONESHOT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RLT__ONESHOT_EMPTY ((uintptr_t)0)
#define RLT__ONESHOT_SET ((uintptr_t)1)

struct rlt_task;

typedef struct rlt__oneshot {
	_Atomic uintptr_t state;
} rlt__oneshot;

static inline void rlt__oneshot_init(rlt__oneshot *o)
{
	atomic_init(&o->state, RLT__ONESHOT_EMPTY);
}

static inline bool rlt__oneshot_is_set(const rlt__oneshot *o)
{
	return atomic_load_explicit(&((rlt__oneshot *)o)->state, memory_order_acquire) ==
	       RLT__ONESHOT_SET;
}

/* Returns 0 when t is now the waiter (it must suspend), 1 when already set,
 * -EBUSY when another task waits. */
static inline int rlt__oneshot_register(rlt__oneshot *o, struct rlt_task *t)
{
	uintptr_t exp = RLT__ONESHOT_EMPTY;
	if (atomic_compare_exchange_strong_explicit(&o->state, &exp, (uintptr_t)t,
						    memory_order_acq_rel, memory_order_acquire))
		return 0;
	return exp == RLT__ONESHOT_SET ? 1 : -EBUSY;
}

/* Mark set; returns the task to wake, if one was waiting. */
static inline struct rlt_task *rlt__oneshot_complete(rlt__oneshot *o)
{
	uintptr_t old = atomic_exchange_explicit(&o->state, RLT__ONESHOT_SET, memory_order_acq_rel);
	return old > RLT__ONESHOT_SET ? (struct rlt_task *)old : NULL;
}

/* Take t back out (timeout). True when it worked: the caller now owns
 * waking t. False: a completer got there first and will wake t. */
static inline bool rlt__oneshot_withdraw(rlt__oneshot *o, struct rlt_task *t)
{
	uintptr_t exp = (uintptr_t)t;
	return atomic_compare_exchange_strong_explicit(&o->state, &exp, RLT__ONESHOT_EMPTY,
						       memory_order_acq_rel, memory_order_acquire);
}

/* Wait for o from the calling task, up to timeout_ns (< 0: forever; 0: just
 * check). Returns 0 when set, -ETIMEDOUT, -EBUSY or -ENOMEM. Suspends. */
int rlt__oneshot_wait(rlt__oneshot *o, int64_t timeout_ns);

#endif
