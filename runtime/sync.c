/*
 * Task synchronisation: mutex, event, semaphore, condition variable, wait
 * group. Each is a spinlock and a wait queue (runtime/waitq.h) plus the
 * state that has a lock-free fast path (the mutex word, the permit count,
 * the event flag, the wait group's count).
 */
#include "ringlet/sync.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sched/sched.h"

#include <limits.h>

/* Pop every waiter (lock held) into a chain through ->next, to be woken
 * once the lock is dropped. A popped waiter stays put until woken: its
 * task is suspended, or (timed out) waits for the hand-off it was promised. */
static rlt__waiter *drain(rlt__waitq *q, int result)
{
	rlt__waiter *chain = NULL, **tail = &chain;
	rlt__waiter *w;
	while ((w = rlt__waitq_pop(q))) {
		w->result = result;
		*tail = w;
		tail = &w->next;
	}
	return chain;
}

static void wake_chain(rlt__waiter *w)
{
	while (w) {
		rlt__waiter *next = w->next; /* read before the wake: w may vanish */
		rlt__waiter_wake(w);
		w = next;
	}
}

/* ---- mutex ----
 *
 * state: 0 (unlocked), or the owning task's address, with bit 0 (WAITERS)
 * set while tasks may be queued. Tasks are 16-byte aligned.
 *   lock (fast):   CAS 0 -> self
 *   unlock (fast): CAS self -> 0; fails when WAITERS is set: slow path
 *   queueing:      under the spinlock, set WAITERS, then push
 *   unlock (slow): under the spinlock, pop the first waiter and store its
 *                  task as the owner (WAITERS kept if more wait): a direct
 *                  hand-off, so the mutex is never free while tasks queue
 *                  and nobody barges past them.
 * While WAITERS is set, only the spinlock holder changes state (the fast
 * paths' CASes cannot succeed), which is what the slow paths rely on. */

#define MUTEX_WAITERS ((uintptr_t)1)
/* Rounds of the spin before queueing: about a microsecond (a pause is
 * ~30 ns on the EPYC VMs we measure on), the length of a short critical
 * section on another worker, and well under a parked worker's wake-up. */
#define MUTEX_SPIN 32

struct rlt_mutex {
	_Atomic uintptr_t state;
	rlt__spin lock;
	rlt__waitq q;
};

rlt_mutex *rlt_mutex_new(void)
{
	rlt_mutex *m = rlt__malloc(sizeof(*m));
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&m->state, 0);
	rlt__spin_init(&m->lock);
	rlt__waitq_init(&m->q);
	return m;
}

int rlt_mutex_free(rlt_mutex *m)
{
	if (!m)
		return 0;
	if (atomic_load_explicit(&m->state, memory_order_acquire) != 0)
		return -EBUSY;
	rlt__free(m);
	return 0;
}

static bool mutex_cas(rlt_mutex *m, uintptr_t from, uintptr_t to)
{
	/* Acquire on success: the critical section starts here. */
	return atomic_compare_exchange_strong_explicit(&m->state, &from, to, memory_order_acquire,
						       memory_order_relaxed);
}

__attribute__((noinline)) static int mutex_lock_slow(rlt_mutex *m, uintptr_t me, int64_t timeout_ns,
						     unsigned kind)
{
	for (int i = 0; i < MUTEX_SPIN; i++) {
		uintptr_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s == 0 && mutex_cas(m, 0, me))
			return 0;
		if ((s & ~MUTEX_WAITERS) == me)
			return -EDEADLK;
		if (s & MUTEX_WAITERS)
			break; /* a queue has formed: it is served first */
		rlt__cpu_relax();
	}
	rlt__waiter w;
	rlt__waiter_init(&w);
	w.data = (void *)me; /* the unlocker makes this task the owner */
	rlt__spin_lock(&m->lock);
	for (;;) {
		uintptr_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s == 0) {
			if (mutex_cas(m, 0, me)) {
				rlt__spin_unlock(&m->lock);
				return 0;
			}
			continue;
		}
		if ((s & ~MUTEX_WAITERS) == me) {
			rlt__spin_unlock(&m->lock);
			return -EDEADLK;
		}
		if (timeout_ns == 0) {
			rlt__spin_unlock(&m->lock);
			return -ETIMEDOUT;
		}
		if ((s & MUTEX_WAITERS) || mutex_cas(m, s, s | MUTEX_WAITERS))
			break;
	}
	rlt__waitq_push(&m->q, &w);
	int rc = rlt__waitq_wait(&m->lock, &m->q, &w, timeout_ns, kind);
	if (rc == 0)
		return 0; /* the unlocker made us the owner (acquire: the oneshot) */
	/* Timed out and left the queue: if it is now empty, the owner's
	 * unlock may take the fast path again. */
	rlt__spin_lock(&m->lock);
	if (rlt__waitq_empty(&m->q)) {
		uintptr_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
		if (s & MUTEX_WAITERS)
			mutex_cas(m, s, s & ~MUTEX_WAITERS);
	}
	rlt__spin_unlock(&m->lock);
	return rc;
}

static int mutex_lock(rlt_mutex *m, int64_t timeout_ns, unsigned kind)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	uintptr_t me = (uintptr_t)self;
	if (mutex_cas(m, 0, me))
		return 0;
	return mutex_lock_slow(m, me, timeout_ns, kind);
}

int rlt_mutex_lock(rlt_mutex *m)
{
	return mutex_lock(m, -1, RLT__WK_MUTEX);
}

int rlt_mutex_lock_timeout(rlt_mutex *m, int64_t timeout_ns)
{
	return mutex_lock(m, timeout_ns, RLT__WK_MUTEX);
}

int rlt_mutex_trylock(rlt_mutex *m)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	return mutex_cas(m, 0, (uintptr_t)self) ? 0 : -EBUSY;
}

__attribute__((noinline)) static void mutex_unlock_slow(rlt_mutex *m)
{
	rlt__spin_lock(&m->lock);
	rlt__waiter *w = rlt__waitq_pop(&m->q);
	uintptr_t next = 0;
	if (w)
		next = (uintptr_t)w->data | (rlt__waitq_empty(&m->q) ? 0 : MUTEX_WAITERS);
	/* Release: our critical section happens before the next owner's (for
	 * a hand-off, the oneshot's release/acquire carries it too). */
	atomic_store_explicit(&m->state, next, memory_order_release);
	rlt__spin_unlock(&m->lock);
	if (w)
		rlt__waiter_wake(w);
}

int rlt_mutex_unlock(rlt_mutex *m)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	uintptr_t me = (uintptr_t)self, s = me;
	if (atomic_compare_exchange_strong_explicit(&m->state, &s, 0, memory_order_release,
						    memory_order_relaxed))
		return 0;
	if (s != (me | MUTEX_WAITERS))
		return -EPERM;
	mutex_unlock_slow(m);
	return 0;
}

/* ---- event ----
 *
 * set writes the flag, then drains the queue under the lock; a waiter
 * checks the flag under the same lock before queueing. Either the waiter's
 * check comes after the setter's lock (and sees the flag), or the setter's
 * drain comes after the push: no waiter is missed. */

struct rlt_event {
	atomic_bool set;
	rlt__spin lock;
	rlt__waitq q;
};

rlt_event *rlt_event_new(void)
{
	rlt_event *e = rlt__malloc(sizeof(*e));
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&e->set, false);
	rlt__spin_init(&e->lock);
	rlt__waitq_init(&e->q);
	return e;
}

/* Whether tasks are queued on lock/q (for the frees). */
static bool has_waiters(rlt__spin *lock, rlt__waitq *q)
{
	rlt__spin_lock(lock);
	bool busy = !rlt__waitq_empty(q);
	rlt__spin_unlock(lock);
	return busy;
}

int rlt_event_free(rlt_event *e)
{
	if (!e)
		return 0;
	if (has_waiters(&e->lock, &e->q))
		return -EBUSY;
	rlt__free(e);
	return 0;
}

int rlt_event_set(rlt_event *e)
{
	atomic_store_explicit(&e->set, true, memory_order_release);
	rlt__spin_lock(&e->lock);
	rlt__waiter *chain = drain(&e->q, 0);
	rlt__spin_unlock(&e->lock);
	wake_chain(chain);
	return 0;
}

int rlt_event_clear(rlt_event *e)
{
	atomic_store_explicit(&e->set, false, memory_order_relaxed);
	return 0;
}

bool rlt_event_is_set(const rlt_event *e)
{
	return atomic_load_explicit(&((rlt_event *)e)->set, memory_order_acquire);
}

int rlt_event_wait_timeout(rlt_event *e, int64_t timeout_ns)
{
	if (!rlt__task_self())
		return -EPERM;
	if (atomic_load_explicit(&e->set, memory_order_acquire))
		return 0;
	rlt__waiter w;
	rlt__waiter_init(&w);
	rlt__spin_lock(&e->lock);
	if (atomic_load_explicit(&e->set, memory_order_acquire)) {
		rlt__spin_unlock(&e->lock);
		return 0;
	}
	rlt__waitq_push(&e->q, &w);
	return rlt__waitq_wait(&e->lock, &e->q, &w, timeout_ns, RLT__WK_EVENT);
}

int rlt_event_wait(rlt_event *e)
{
	return rlt_event_wait_timeout(e, -1);
}

/* ---- semaphore ----
 *
 * Invariant: tasks queue only while count is 0, and a release with tasks
 * queued hands its permit to the first of them instead of counting it. So
 * count stays 0 while the queue is not empty, and the lock-free take
 * (count > 0) can never overtake a queued task. count only grows under the
 * lock; it shrinks by CAS anywhere. */

struct rlt_sem {
	atomic_long count;
	rlt__spin lock;
	rlt__waitq q;
};

rlt_sem *rlt_sem_new(long n)
{
	if (n < 0) {
		errno = EINVAL;
		return NULL;
	}
	rlt_sem *s = rlt__malloc(sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&s->count, n);
	rlt__spin_init(&s->lock);
	rlt__waitq_init(&s->q);
	return s;
}

int rlt_sem_free(rlt_sem *s)
{
	if (!s)
		return 0;
	if (has_waiters(&s->lock, &s->q))
		return -EBUSY;
	rlt__free(s);
	return 0;
}

static bool sem_take(rlt_sem *s)
{
	long c = atomic_load_explicit(&s->count, memory_order_relaxed);
	while (c > 0)
		if (atomic_compare_exchange_weak_explicit(
			&s->count, &c, c - 1, memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

int rlt_sem_try(rlt_sem *s)
{
	return sem_take(s) ? 0 : -EBUSY;
}

int rlt_sem_acquire_timeout(rlt_sem *s, int64_t timeout_ns)
{
	if (!rlt__task_self())
		return -EPERM;
	if (sem_take(s))
		return 0;
	rlt__waiter w;
	rlt__waiter_init(&w);
	rlt__spin_lock(&s->lock);
	if (sem_take(s)) {
		rlt__spin_unlock(&s->lock);
		return 0;
	}
	if (timeout_ns == 0) {
		rlt__spin_unlock(&s->lock);
		return -ETIMEDOUT;
	}
	rlt__waitq_push(&s->q, &w);
	return rlt__waitq_wait(&s->lock, &s->q, &w, timeout_ns, RLT__WK_SEM);
}

int rlt_sem_acquire(rlt_sem *s)
{
	return rlt_sem_acquire_timeout(s, -1);
}

int rlt_sem_release(rlt_sem *s)
{
	rlt__spin_lock(&s->lock);
	rlt__waiter *w = rlt__waitq_pop(&s->q);
	if (!w) {
		if (atomic_load_explicit(&s->count, memory_order_relaxed) == LONG_MAX) {
			rlt__spin_unlock(&s->lock);
			return -EOVERFLOW;
		}
		/* Release: what we did before is seen by the task that takes it. */
		atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
	}
	rlt__spin_unlock(&s->lock);
	if (w)
		rlt__waiter_wake(w);
	return 0;
}

long rlt_sem_value(const rlt_sem *s)
{
	return atomic_load_explicit(&((rlt_sem *)s)->count, memory_order_relaxed);
}

/* ---- condition variable ----
 *
 * The waiter queues before it unlocks the mutex, so a signal sent by the
 * next holder of the mutex always finds it. */

struct rlt_cond {
	rlt__spin lock;
	rlt__waitq q;
};

rlt_cond *rlt_cond_new(void)
{
	rlt_cond *c = rlt__malloc(sizeof(*c));
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	rlt__spin_init(&c->lock);
	rlt__waitq_init(&c->q);
	return c;
}

int rlt_cond_free(rlt_cond *c)
{
	if (!c)
		return 0;
	if (has_waiters(&c->lock, &c->q))
		return -EBUSY;
	rlt__free(c);
	return 0;
}

int rlt_cond_wait_timeout(rlt_cond *c, rlt_mutex *m, int64_t timeout_ns)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	uintptr_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
	if ((s & ~MUTEX_WAITERS) != (uintptr_t)self)
		return -EPERM;
	rlt__waiter w;
	rlt__waiter_init(&w);
	rlt__spin_lock(&c->lock);
	rlt__waitq_push(&c->q, &w);
	rlt__spin_unlock(&c->lock);
	rlt_mutex_unlock(m); /* cannot fail: we hold it */
	/* A signal between the push and here has already completed w: the
	 * wait then returns at once. */
	rlt__spin_lock(&c->lock);
	int rc = rlt__waitq_wait(&c->lock, &c->q, &w, timeout_ns, RLT__WK_COND);
	/* Not cut short by a cancel or a deadline: the caller must get the
	 * mutex back, whatever the wait's outcome (as pthread_cond_wait). */
	mutex_lock(m, -1, RLT__WK_MUTEX | RLT__WAIT_NOCANCEL);
	return rc;
}

int rlt_cond_wait(rlt_cond *c, rlt_mutex *m)
{
	return rlt_cond_wait_timeout(c, m, -1);
}

int rlt_cond_signal(rlt_cond *c)
{
	rlt__spin_lock(&c->lock);
	rlt__waiter *w = rlt__waitq_pop(&c->q);
	rlt__spin_unlock(&c->lock);
	if (w)
		rlt__waiter_wake(w);
	return 0;
}

int rlt_cond_broadcast(rlt_cond *c)
{
	rlt__spin_lock(&c->lock);
	rlt__waiter *chain = drain(&c->q, 0);
	rlt__spin_unlock(&c->lock);
	wake_chain(chain);
	return 0;
}

/* ---- wait group ----
 *
 * The count changes by CAS; the change that makes it 0 drains the queue
 * under the lock, and waiters check the count under the same lock before
 * queueing (the event's argument). */

struct rlt_waitgroup {
	atomic_long count;
	rlt__spin lock;
	rlt__waitq q;
};

rlt_waitgroup *rlt_waitgroup_new(void)
{
	rlt_waitgroup *wg = rlt__malloc(sizeof(*wg));
	if (!wg) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&wg->count, 0);
	rlt__spin_init(&wg->lock);
	rlt__waitq_init(&wg->q);
	return wg;
}

int rlt_waitgroup_free(rlt_waitgroup *wg)
{
	if (!wg)
		return 0;
	if (has_waiters(&wg->lock, &wg->q))
		return -EBUSY;
	rlt__free(wg);
	return 0;
}

int rlt_waitgroup_add(rlt_waitgroup *wg, long n)
{
	long c = atomic_load_explicit(&wg->count, memory_order_relaxed), next;
	do {
		if ((n < 0 && c + n < 0) || (n > 0 && c > LONG_MAX - n))
			return -EINVAL;
		next = c + n;
		/* acq_rel: the work done before each done() is seen by the
		 * waiters, through the last one. */
	} while (!atomic_compare_exchange_weak_explicit(&wg->count, &c, next, memory_order_acq_rel,
							memory_order_relaxed));
	if (next == 0 && n != 0) {
		rlt__spin_lock(&wg->lock);
		rlt__waiter *chain = drain(&wg->q, 0);
		rlt__spin_unlock(&wg->lock);
		wake_chain(chain);
	}
	return 0;
}

int rlt_waitgroup_done(rlt_waitgroup *wg)
{
	return rlt_waitgroup_add(wg, -1);
}

int rlt_waitgroup_wait_timeout(rlt_waitgroup *wg, int64_t timeout_ns)
{
	if (!rlt__task_self())
		return -EPERM;
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0)
		return 0;
	rlt__waiter w;
	rlt__waiter_init(&w);
	rlt__spin_lock(&wg->lock);
	if (atomic_load_explicit(&wg->count, memory_order_acquire) == 0) {
		rlt__spin_unlock(&wg->lock);
		return 0;
	}
	rlt__waitq_push(&wg->q, &w);
	return rlt__waitq_wait(&wg->lock, &wg->q, &w, timeout_ns, RLT__WK_WAITGROUP);
}

int rlt_waitgroup_wait(rlt_waitgroup *wg)
{
	return rlt_waitgroup_wait_timeout(wg, -1);
}
