/*
 * A one-shot completion with at most one waiting task: the core of futures
 * and joins. Lock-free, safe to complete from any thread.
 *
 * state is EMPTY, SET, the address of the waiting task (tasks are at least
 * 16-byte aligned, so no task address is 0 or 1), or the address of a
 * watch tagged with WATCH (a waiter that is not a task: gather, wait and
 * task groups watch several tasks' completions at once).
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
#define RLT__ONESHOT_SET   ((uintptr_t)1)
#define RLT__ONESHOT_WATCH ((uintptr_t)2)

/* sched/sched.h's, declared here too: task.h includes this file, and
 * sched.h includes task.h. */
struct rlt_task;
void rlt__task_wake(struct rlt_task *t);

/* A waiter that is not a task: notify runs on the completer's thread, with
 * what the completer passes (a task that finished). Aligned to 4 at least. */
typedef struct rlt__watch {
	void (*notify)(struct rlt__watch *wa, void *subject);
} rlt__watch;

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

/* Mark set; returns the waiter (task or tagged watch) or 0. */
static inline uintptr_t rlt__oneshot_complete_raw(rlt__oneshot *o)
{
	uintptr_t old = atomic_exchange_explicit(&o->state, RLT__ONESHOT_SET, memory_order_acq_rel);
	return old > RLT__ONESHOT_SET ? old : 0;
}

/* Tell a waiter returned by rlt__oneshot_complete_raw(). */
static inline void rlt__oneshot_notify(uintptr_t waiter, void *subject)
{
	if (waiter & RLT__ONESHOT_WATCH) {
		rlt__watch *wa = (rlt__watch *)(waiter & ~(uintptr_t)3);
		wa->notify(wa, subject);
	} else {
		rlt__task_wake((struct rlt_task *)waiter);
	}
}

/* Mark set; returns the task to wake, if one was waiting (a watch is
 * notified here, with no subject). */
static inline struct rlt_task *rlt__oneshot_complete(rlt__oneshot *o)
{
	uintptr_t old = rlt__oneshot_complete_raw(o);
	if (old & RLT__ONESHOT_WATCH) {
		rlt__oneshot_notify(old, NULL);
		return NULL;
	}
	return (struct rlt_task *)old;
}

/* Complete o and wake (or notify) whoever waits: the usual completer. */
static inline void rlt__oneshot_fire(rlt__oneshot *o)
{
	uintptr_t w = rlt__oneshot_complete_raw(o);
	if (w)
		rlt__oneshot_notify(w, NULL);
}

/* Register a watch: 0, 1 when already set, -EBUSY when another waits. */
static inline int rlt__oneshot_watch(rlt__oneshot *o, rlt__watch *wa)
{
	uintptr_t exp = RLT__ONESHOT_EMPTY;
	if (atomic_compare_exchange_strong_explicit(&o->state, &exp,
						    (uintptr_t)wa | RLT__ONESHOT_WATCH,
						    memory_order_acq_rel, memory_order_acquire))
		return 0;
	return exp == RLT__ONESHOT_SET ? 1 : -EBUSY;
}

/* Take a watch back: true when it worked (it will not be notified). */
static inline bool rlt__oneshot_unwatch(rlt__oneshot *o, rlt__watch *wa)
{
	uintptr_t exp = (uintptr_t)wa | RLT__ONESHOT_WATCH;
	return atomic_compare_exchange_strong_explicit(&o->state, &exp, RLT__ONESHOT_EMPTY,
						       memory_order_acq_rel, memory_order_acquire);
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
 * check), within the task's deadline scopes. kind is an rlt__wait_kind for
 * the dump, or'ed with RLT__WAIT_NOCANCEL for a wait that must not be cut
 * short (by a cancel or a scope). Returns 0 when set, -ETIMEDOUT,
 * -ECANCELED, -EBUSY or -ENOMEM. Suspends. */
int rlt__oneshot_wait_k(rlt__oneshot *o, int64_t timeout_ns, unsigned kind);
/* The same for a caller that has its task at hand (t is the calling task). */
int rlt__oneshot_wait_t(struct rlt_task *t, rlt__oneshot *o, int64_t timeout_ns, unsigned kind);

#endif
