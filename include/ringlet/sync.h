#ifndef RINGLET_SYNC_H
#define RINGLET_SYNC_H

#include "common.h"

RLT_EXTERN_C_BEGIN

/*
 * Synchronisation between tasks: asyncio's Lock, Event, Semaphore and
 * Condition, and Go's WaitGroup. A wait suspends the calling task, never
 * its worker thread, and works whichever worker the waker runs on.
 *
 * Objects are opaque, created with rlt_<kind>_new() (NULL with errno ENOMEM
 * when out of memory; any thread) and freed with rlt_<kind>_free(), which
 * returns -EBUSY (and frees nothing) while tasks are queued on the object.
 * Free an object only once no task or thread can still call into it: a task
 * whose wait just ended may still be leaving it.
 *
 * Waits are FIFO: whoever waited first is served first, and what is given
 * (the mutex, a permit) is handed to that waiter directly, so a newcomer
 * cannot overtake it. Timeouts are in nanoseconds: < 0 waits without limit,
 * 0 only tries. A wait that times out never loses what was handed to it:
 * if the hand-off raced with the timeout, the wait returns success.
 *
 * Calls that may suspend return -EPERM outside of a task. Waits with a
 * timeout may also return -ENOMEM (the worker's timer heap could not grow:
 * nothing was waited for). A wait that actually waits is a cancellation
 * point (include/ringlet/cancel.h): -ECANCELED when the task is cancelled,
 * -ETIMEDOUT when a deadline scope expires; the task then holds nothing it
 * waited for (rlt_cond_wait still re-locks the mutex before it returns).
 */

typedef struct rlt_mutex rlt_mutex;
typedef struct rlt_event rlt_event;
typedef struct rlt_sem rlt_sem;
typedef struct rlt_cond rlt_cond;
typedef struct rlt_waitgroup rlt_waitgroup;

/* ---- rlt_mutex: a task mutex (asyncio.Lock) ----
 *
 * Owned by the task that locked it: only that task may unlock it, and it
 * may hold it across suspensions (I/O, sleeps) and worker migrations. Not
 * recursive. Uncontended lock and unlock are one atomic operation each;
 * a contended lock spins briefly, then queues. Ownership is the task's
 * address: a task must unlock what it holds before it returns. */

/* An unlocked mutex, or NULL (errno ENOMEM). Any thread. */
RLT_API rlt_mutex *rlt_mutex_new(void);

/* Free m. Returns 0, or -EBUSY when m is locked or tasks wait for it.
 * NULL is ignored (returns 0). */
RLT_API int rlt_mutex_free(rlt_mutex *m);

/* Lock m, waiting as long as it takes. Suspends.
 * Returns 0, -EPERM (not in a task), -EDEADLK (the caller holds m). */
RLT_API int rlt_mutex_lock(rlt_mutex *m);

/* Lock m if it is free. Never suspends. Returns 0, -EBUSY (held, by anyone
 * including the caller), -EPERM (not in a task: there is no one to own it). */
RLT_API int rlt_mutex_trylock(rlt_mutex *m);

/* Lock m, waiting at most timeout_ns. Suspends. Returns 0, -ETIMEDOUT,
 * -EPERM, -EDEADLK, -ENOMEM. */
RLT_API int rlt_mutex_lock_timeout(rlt_mutex *m, int64_t timeout_ns);

/* Unlock m; the first waiting task, if any, now owns it and is woken.
 * Never suspends. Returns 0, or -EPERM (the caller is not a task holding m). */
RLT_API int rlt_mutex_unlock(rlt_mutex *m);

/* ---- rlt_event: a flag tasks can wait for (asyncio.Event) ---- */

/* A new, clear event, or NULL (errno ENOMEM). Any thread. */
RLT_API rlt_event *rlt_event_new(void);

/* Free e. Returns 0 or -EBUSY (tasks wait on it). NULL is ignored. */
RLT_API int rlt_event_free(rlt_event *e);

/* Set the flag and wake every waiting task. Never suspends; any thread,
 * including threads that are not ringlet workers. Returns 0. */
RLT_API int rlt_event_set(rlt_event *e);

/* Clear the flag (tasks already woken by a set still return 0). Any thread.
 * Returns 0. */
RLT_API int rlt_event_clear(rlt_event *e);

/* Whether the flag is set. Any thread. */
RLT_API bool rlt_event_is_set(const rlt_event *e);

/* Wait until the flag is set (returns at once if it is). Suspends.
 * Returns 0 or -EPERM. */
RLT_API int rlt_event_wait(rlt_event *e);

/* The same, at most timeout_ns. Returns 0, -ETIMEDOUT, -EPERM, -ENOMEM. */
RLT_API int rlt_event_wait_timeout(rlt_event *e, int64_t timeout_ns);

/* ---- rlt_sem: a counting semaphore (asyncio.Semaphore) ---- */

/* A semaphore holding n permits, or NULL with errno EINVAL (n < 0) or
 * ENOMEM. Any thread. */
RLT_API rlt_sem *rlt_sem_new(long n);

/* Free s. Returns 0 or -EBUSY (tasks wait on it). NULL is ignored. */
RLT_API int rlt_sem_free(rlt_sem *s);

/* Take a permit, waiting for one as long as it takes. Suspends.
 * Returns 0 or -EPERM. */
RLT_API int rlt_sem_acquire(rlt_sem *s);

/* Take a permit if one is free. Never suspends; any thread.
 * Returns 0 or -EBUSY. */
RLT_API int rlt_sem_try(rlt_sem *s);

/* Take a permit, waiting at most timeout_ns. Suspends.
 * Returns 0, -ETIMEDOUT, -EPERM, -ENOMEM. */
RLT_API int rlt_sem_acquire_timeout(rlt_sem *s, int64_t timeout_ns);

/* Give a permit back: to the first waiting task if there is one, else to
 * the pool. Never suspends; any thread. Returns 0, or -EOVERFLOW (the count
 * is at LONG_MAX). */
RLT_API int rlt_sem_release(rlt_sem *s);

/* The free permits now (0 while tasks wait). Any thread. */
RLT_API long rlt_sem_value(const rlt_sem *s);

/* ---- rlt_cond: a condition variable used with an rlt_mutex
 * (asyncio.Condition) ----
 *
 * There are no spurious wake-ups, but another task may have changed the
 * state between the signal and the moment the waiter holds the mutex
 * again: wait in a loop that re-checks the predicate. */

/* A new condition variable, or NULL (errno ENOMEM). Any thread. */
RLT_API rlt_cond *rlt_cond_new(void);

/* Free c. Returns 0 or -EBUSY (tasks wait on it). NULL is ignored. */
RLT_API int rlt_cond_free(rlt_cond *c);

/* Release m (which the caller must hold), wait for a signal or broadcast,
 * then lock m again before returning, also on error (except -EPERM).
 * Suspends. Returns 0 or -EPERM (not in a task, or m not held by it). */
RLT_API int rlt_cond_wait(rlt_cond *c, rlt_mutex *m);

/* The same, waiting at most timeout_ns for the signal (locking m again
 * afterwards is not limited). Returns 0, -ETIMEDOUT, -EPERM, -ENOMEM; m is
 * held again on every return but -EPERM. */
RLT_API int rlt_cond_wait_timeout(rlt_cond *c, rlt_mutex *m, int64_t timeout_ns);

/* Wake the first waiting task, if any. Never suspends; any thread (holding
 * the mutex is not required, but is how the predicate stays consistent).
 * Returns 0. */
RLT_API int rlt_cond_signal(rlt_cond *c);

/* Wake every waiting task. Never suspends; any thread. Returns 0. */
RLT_API int rlt_cond_broadcast(rlt_cond *c);

/* ---- rlt_waitgroup: wait for a set of tasks to finish (Go's WaitGroup) ---- */

/* A wait group with a count of 0, or NULL (errno ENOMEM). Any thread. */
RLT_API rlt_waitgroup *rlt_waitgroup_new(void);

/* Free wg. Returns 0 or -EBUSY (tasks wait on it). NULL is ignored. */
RLT_API int rlt_waitgroup_free(rlt_waitgroup *wg);

/* Add n (may be negative) to the count; when it reaches 0, wake every
 * waiting task. Never suspends; any thread. Returns 0, or -EINVAL when the
 * count would go below 0 (it is left unchanged). */
RLT_API int rlt_waitgroup_add(rlt_waitgroup *wg, long n);

/* rlt_waitgroup_add(wg, -1). */
RLT_API int rlt_waitgroup_done(rlt_waitgroup *wg);

/* Wait until the count is 0 (returns at once if it is). Suspends.
 * Returns 0 or -EPERM. */
RLT_API int rlt_waitgroup_wait(rlt_waitgroup *wg);

/* The same, at most timeout_ns. Returns 0, -ETIMEDOUT, -EPERM, -ENOMEM. */
RLT_API int rlt_waitgroup_wait_timeout(rlt_waitgroup *wg, int64_t timeout_ns);

RLT_EXTERN_C_END

#endif
