/* Task synchronisation: mutex, event, semaphore, condition variable, wait
 * group; on one worker (order), across two workers, from foreign threads,
 * and timeouts racing hand-offs. */
#include "tests/rlt_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* Two workers: wakers and waiters end up on different threads. */
static void *run2(rlt_task_fn fn, void *arg)
{
	void *res = NULL;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, &res), 0);
	return res;
}

static rlt_task *spawn(rlt_task_fn fn, void *arg)
{
	rlt_task *t = rlt_spawn(fn, arg, NULL);
	assert_non_null(t);
	return t;
}

static intptr_t join(rlt_task *t)
{
	void *r = NULL;
	assert_int_equal(rlt_join(t, &r), 0);
	return (intptr_t)r;
}

/* valgrind's big lock starves other threads (see test_future.c). */
static int threads_unusable(void)
{
	return getenv("RLT_TEST_NO_FOREIGN_THREADS") != NULL;
}

#define MS RLT_NSEC_PER_MSEC

/* ================= mutex ================= */

static void *root_mutex_errors(void *arg)
{
	rlt_mutex *m = rlt_mutex_new();
	assert_non_null(m);
	assert_int_equal(rlt_mutex_unlock(m), -EPERM); /* not held */
	assert_int_equal(rlt_mutex_lock(m), 0);
	assert_int_equal(rlt_mutex_trylock(m), -EBUSY);
	assert_int_equal(rlt_mutex_lock(m), -EDEADLK);
	assert_int_equal(rlt_mutex_lock_timeout(m, 1 * MS), -EDEADLK);
	assert_int_equal(rlt_mutex_free(m), -EBUSY);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(rlt_mutex_unlock(m), -EPERM);
	assert_int_equal(rlt_mutex_trylock(m), 0);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(rlt_mutex_lock_timeout(m, 0), 0);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(rlt_mutex_free(m), 0);
	assert_int_equal(rlt_mutex_free(NULL), 0);
	return NULL;
}

static void test_mutex_lock_unlock_and_errors(void **state)
{
	rlt_test_run(root_mutex_errors, NULL);
	/* Outside a task there is no owner: every mutex call is refused. */
	rlt_mutex *m = rlt_mutex_new();
	assert_int_equal(rlt_mutex_lock(m), -EPERM);
	assert_int_equal(rlt_mutex_trylock(m), -EPERM);
	assert_int_equal(rlt_mutex_lock_timeout(m, 0), -EPERM);
	assert_int_equal(rlt_mutex_unlock(m), -EPERM);
	assert_int_equal(rlt_mutex_free(m), 0);
}

typedef struct counter_ctx {
	rlt_mutex *m;
	long count; /* guarded by m, deliberately not atomic */
	long iters;
} counter_ctx;

static void *counter_task(void *arg)
{
	counter_ctx *c = arg;
	for (long i = 0; i < c->iters; i++) {
		assert_int_equal(rlt_mutex_lock(c->m), 0);
		long v = c->count;
		if (i % 64 == 0)
			rlt_yield(); /* suspended while holding it: others queue */
		c->count = v + 1;
		assert_int_equal(rlt_mutex_unlock(c->m), 0);
	}
	return NULL;
}

static void *root_mutex_counter(void *arg)
{
	counter_ctx c = {.m = rlt_mutex_new(), .count = 0, .iters = RLT_TEST_SCALE(10000)};
	rlt_task *t[8];
	for (int i = 0; i < 8; i++)
		t[i] = spawn(counter_task, &c);
	for (int i = 0; i < 8; i++)
		join(t[i]);
	assert_int_equal(c.count, 8 * c.iters);
	assert_int_equal(rlt_mutex_free(c.m), 0);
	return NULL;
}

static void test_mutex_counter_exact_across_two_workers(void **state)
{
	run2(root_mutex_counter, NULL);
}

typedef struct fifo_ctx {
	rlt_mutex *m;
	rlt_sem *s;
	int started[8];
	int order[8];
	int n;
} fifo_ctx;

typedef struct fifo_arg {
	fifo_ctx *c;
	int i;
} fifo_arg;

static void *fifo_mutex_task(void *arg)
{
	fifo_arg *a = arg;
	a->c->started[a->i] = 1;
	assert_int_equal(rlt_mutex_lock(a->c->m), 0);
	a->c->order[a->c->n++] = a->i;
	assert_int_equal(rlt_mutex_unlock(a->c->m), 0);
	return NULL;
}

static void *root_mutex_fifo(void *arg)
{
	fifo_ctx c = {.m = rlt_mutex_new(), .n = 0};
	fifo_arg a[8];
	rlt_task *t[8];
	assert_int_equal(rlt_mutex_lock(c.m), 0);
	/* One worker: once a task has started, it has queued (nothing else
	 * runs between its start and its suspension in lock). */
	for (int i = 0; i < 8; i++) {
		a[i] = (fifo_arg){&c, i};
		t[i] = spawn(fifo_mutex_task, &a[i]);
		while (!c.started[i])
			rlt_yield();
	}
	/* A newcomer that tries now must not overtake the queue. */
	assert_int_equal(rlt_mutex_unlock(c.m), 0);
	assert_int_equal(rlt_mutex_trylock(c.m), -EBUSY);
	for (int i = 0; i < 8; i++)
		join(t[i]);
	for (int i = 0; i < 8; i++)
		assert_int_equal(c.order[i], i);
	assert_int_equal(rlt_mutex_free(c.m), 0);
	return NULL;
}

static void test_mutex_hands_off_in_fifo_order(void **state)
{
	rlt_test_run1(root_mutex_fifo, NULL);
}

typedef struct timeout_ctx {
	rlt_mutex *m;
	rlt_event *first_done; /* set when the first wait has timed out */
} timeout_ctx;

static void *lock_with_timeout(void *arg)
{
	timeout_ctx *c = arg;
	rlt_mutex *m = c->m;
	uint64_t t0 = rlt_now();
	int rc = rlt_mutex_lock_timeout(m, 5 * MS);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * MS);
	assert_int_equal(rlt_event_set(c->first_done), 0);
	/* Held by the root, which lets it go well within 10 s. */
	t0 = rlt_now();
	rc = rlt_mutex_lock_timeout(m, 10 * RLT_NSEC_PER_SEC);
	assert_int_equal(rc, 0);
	assert_true(rlt_now() - t0 < 5 * RLT_NSEC_PER_SEC);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	return (void *)1;
}

static void *root_mutex_timeout(void *arg)
{
	rlt_mutex *m = rlt_mutex_new();
	timeout_ctx c = {.m = m, .first_done = rlt_event_new()};
	assert_non_null(c.first_done);
	assert_int_equal(rlt_mutex_lock(m), 0);
	rlt_task *t = spawn(lock_with_timeout, &c);
	/* Hold it until the child's first (5 ms) wait has timed out, however
	 * late the child starts, then release it (during or before its second
	 * one: either way it gets the lock). */
	assert_int_equal(rlt_event_wait(c.first_done), 0);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(join(t), 1);
	assert_int_equal(rlt_mutex_trylock(m), 0);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(rlt_mutex_free(m), 0);
	assert_int_equal(rlt_event_free(c.first_done), 0);
	return NULL;
}

static void test_mutex_lock_timeout_fires_and_not_when_unlocked(void **state)
{
	run2(root_mutex_timeout, NULL);
}

typedef struct race_ctx {
	rlt_mutex *m;
	atomic_int holders;
	atomic_long acquired;
	long guarded; /* incremented under m only */
	int rounds;
} race_ctx;

static void *race_task(void *arg)
{
	race_ctx *c = arg;
	long timeouts = 0;
	for (int i = 0; i < c->rounds; i++) {
		int rc = rlt_mutex_lock_timeout(c->m, (int64_t)(1 + i % 20) * RLT_NSEC_PER_USEC);
		if (rc == -ETIMEDOUT) {
			timeouts++;
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(atomic_fetch_add(&c->holders, 1), 0);
		c->guarded++;
		for (int k = 0; k < (i % 7) * 20; k++)
			__asm__ volatile("" ::: "memory");
		if (i % 5 == 0)
			rlt_yield();
		assert_int_equal(atomic_fetch_sub(&c->holders, 1), 1);
		atomic_fetch_add(&c->acquired, 1);
		assert_int_equal(rlt_mutex_unlock(c->m), 0);
	}
	return (void *)timeouts;
}

static void *root_mutex_race(void *arg)
{
	race_ctx c = {.m = rlt_mutex_new(), .guarded = 0, .rounds = RLT_TEST_SCALE(5000)};
	atomic_init(&c.holders, 0);
	atomic_init(&c.acquired, 0);
	rlt_task *t[4];
	for (int i = 0; i < 4; i++)
		t[i] = spawn(race_task, &c);
	long timeouts = 0;
	for (int i = 0; i < 4; i++)
		timeouts += join(t[i]);
	assert_int_equal(c.guarded, atomic_load(&c.acquired));
	assert_int_equal(c.guarded + timeouts, 4L * c.rounds);
	/* Not lost: free, and nobody queued. */
	assert_int_equal(rlt_mutex_trylock(c.m), 0);
	assert_int_equal(rlt_mutex_unlock(c.m), 0);
	assert_int_equal(rlt_mutex_free(c.m), 0);
	return NULL;
}

static void test_mutex_timeout_racing_handoff_never_loses_or_doubles(void **state)
{
	run2(root_mutex_race, NULL);
}

/* ================= event ================= */

static void *root_event_basics(void *arg)
{
	rlt_event *e = rlt_event_new();
	assert_false(rlt_event_is_set(e));
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_event_wait_timeout(e, 5 * MS), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * MS);
	assert_int_equal(rlt_event_wait_timeout(e, 0), -ETIMEDOUT);
	assert_int_equal(rlt_event_set(e), 0);
	assert_true(rlt_event_is_set(e));
	assert_int_equal(rlt_event_wait(e), 0);
	assert_int_equal(rlt_event_wait_timeout(e, 0), 0);
	assert_int_equal(rlt_event_clear(e), 0);
	assert_false(rlt_event_is_set(e));
	assert_int_equal(rlt_event_free(e), 0);
	return NULL;
}

static void test_event_set_clear_wait_and_timeout(void **state)
{
	rlt_test_run(root_event_basics, NULL);
	rlt_event *e = rlt_event_new();
	assert_int_equal(rlt_event_wait(e), -EPERM);
	assert_int_equal(rlt_event_set(e), 0); /* any thread */
	assert_int_equal(rlt_event_free(e), 0);
}

typedef struct ev_ctx {
	rlt_event *e;
	atomic_int waiting, woken;
} ev_ctx;

static void *ev_waiter(void *arg)
{
	ev_ctx *c = arg;
	atomic_fetch_add(&c->waiting, 1);
	int rc = rlt_event_wait_timeout(c->e, 10 * RLT_NSEC_PER_SEC);
	assert_int_equal(rc, 0);
	atomic_fetch_add(&c->woken, 1);
	return NULL;
}

static void *root_event_many(void *arg)
{
	ev_ctx c = {.e = rlt_event_new()};
	atomic_init(&c.waiting, 0);
	atomic_init(&c.woken, 0);
	rlt_task *t[100];
	for (int i = 0; i < 100; i++)
		t[i] = spawn(ev_waiter, &c);
	while (atomic_load(&c.waiting) < 100)
		rlt_yield();
	assert_int_equal(rlt_event_set(c.e), 0);
	for (int i = 0; i < 100; i++)
		join(t[i]);
	assert_int_equal(atomic_load(&c.woken), 100);
	assert_int_equal(rlt_event_free(c.e), 0);
	return NULL;
}

static void test_event_set_wakes_100_waiters_across_workers(void **state)
{
	run2(root_event_many, NULL);
}

static void *setter_thread(void *arg)
{
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL); /* usually parked by now: either order must work */
	rlt_event_set(arg);
	return NULL;
}

static void *root_event_foreign(void *arg)
{
	for (int i = 0; i < 10; i++) {
		rlt_event *e = rlt_event_new();
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, setter_thread, e), 0);
		assert_int_equal(rlt_event_wait_timeout(e, 10 * RLT_NSEC_PER_SEC), 0);
		pthread_join(th, NULL);
		assert_int_equal(rlt_event_free(e), 0);
	}
	return NULL;
}

static void test_event_set_from_foreign_thread(void **state)
{
	if (threads_unusable())
		skip();
	run2(root_event_foreign, NULL);
}

/* ================= semaphore ================= */

static void *sem_release_later(void *arg)
{
	assert_int_equal(rlt_sleep(2 * MS), 0);
	assert_int_equal(rlt_sem_release(arg), 0);
	return NULL;
}

static void *root_sem_basics(void *arg)
{
	rlt_sem *s = rlt_sem_new(2);
	assert_int_equal(rlt_sem_value(s), 2);
	assert_int_equal(rlt_sem_try(s), 0);
	assert_int_equal(rlt_sem_acquire(s), 0);
	assert_int_equal(rlt_sem_try(s), -EBUSY);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_sem_acquire_timeout(s, 5 * MS), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * MS);
	assert_int_equal(rlt_sem_acquire_timeout(s, 0), -ETIMEDOUT);
	rlt_task *t = spawn(sem_release_later, s);
	t0 = rlt_now();
	assert_int_equal(rlt_sem_acquire_timeout(s, 10 * RLT_NSEC_PER_SEC), 0);
	assert_true(rlt_now() - t0 < 5 * RLT_NSEC_PER_SEC);
	join(t);
	assert_int_equal(rlt_sem_value(s), 0);
	assert_int_equal(rlt_sem_release(s), 0);
	assert_int_equal(rlt_sem_release(s), 0);
	assert_int_equal(rlt_sem_value(s), 2);
	assert_int_equal(rlt_sem_free(s), 0);
	return NULL;
}

static void test_sem_acquire_try_release_and_timeout(void **state)
{
	run2(root_sem_basics, NULL);
	errno = 0;
	assert_null(rlt_sem_new(-1));
	assert_int_equal(errno, EINVAL);
	rlt_sem *s = rlt_sem_new(1);
	assert_int_equal(rlt_sem_acquire(s), -EPERM);
	assert_int_equal(rlt_sem_try(s), 0); /* any thread */
	assert_int_equal(rlt_sem_release(s), 0);
	assert_int_equal(rlt_sem_free(s), 0);
}

typedef struct lim_ctx {
	rlt_sem *s;
	atomic_int inflight, max;
	int rounds;
} lim_ctx;

static void *lim_task(void *arg)
{
	lim_ctx *c = arg;
	for (int i = 0; i < c->rounds; i++) {
		assert_int_equal(rlt_sem_acquire(c->s), 0);
		int n = atomic_fetch_add(&c->inflight, 1) + 1;
		int m = atomic_load(&c->max);
		while (n > m && !atomic_compare_exchange_weak(&c->max, &m, n))
			;
		rlt_yield();
		atomic_fetch_sub(&c->inflight, 1);
		assert_int_equal(rlt_sem_release(c->s), 0);
	}
	return NULL;
}

static void *root_sem_limit(void *arg)
{
	lim_ctx c = {.s = rlt_sem_new(3), .rounds = RLT_TEST_SCALE(2000)};
	atomic_init(&c.inflight, 0);
	atomic_init(&c.max, 0);
	rlt_task *t[16];
	for (int i = 0; i < 16; i++)
		t[i] = spawn(lim_task, &c);
	for (int i = 0; i < 16; i++)
		join(t[i]);
	assert_int_equal(atomic_load(&c.max), 3);
	assert_int_equal(rlt_sem_value(c.s), 3);
	assert_int_equal(rlt_sem_free(c.s), 0);
	return NULL;
}

static void test_sem_limits_concurrency_to_n(void **state)
{
	run2(root_sem_limit, NULL);
}

static void *fifo_sem_task(void *arg)
{
	fifo_arg *a = arg;
	a->c->started[a->i] = 1;
	assert_int_equal(rlt_sem_acquire(a->c->s), 0);
	a->c->order[a->c->n++] = a->i;
	return NULL;
}

static void *root_sem_fifo(void *arg)
{
	fifo_ctx c = {.s = rlt_sem_new(0), .n = 0};
	fifo_arg a[8];
	rlt_task *t[8];
	for (int i = 0; i < 8; i++) {
		a[i] = (fifo_arg){&c, i};
		t[i] = spawn(fifo_sem_task, &a[i]);
		while (!c.started[i])
			rlt_yield();
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(rlt_sem_release(c.s), 0);
		/* handed to the waiter, not counted: no one can overtake it */
		assert_int_equal(rlt_sem_try(c.s), -EBUSY);
		while (c.n < i + 1)
			rlt_yield();
		assert_int_equal(c.order[i], i);
	}
	for (int i = 0; i < 8; i++)
		join(t[i]);
	assert_int_equal(rlt_sem_free(c.s), 0);
	return NULL;
}

static void test_sem_serves_waiters_in_fifo_order(void **state)
{
	rlt_test_run1(root_sem_fifo, NULL);
}

typedef struct sem_race {
	rlt_sem *s;
	atomic_int holders;
	int rounds;
} sem_race;

static void *sem_race_task(void *arg)
{
	sem_race *c = arg;
	long got = 0;
	for (int i = 0; i < c->rounds; i++) {
		int rc = rlt_sem_acquire_timeout(c->s, (int64_t)(1 + i % 20) * RLT_NSEC_PER_USEC);
		if (rc == -ETIMEDOUT)
			continue;
		assert_int_equal(rc, 0);
		assert_int_equal(atomic_fetch_add(&c->holders, 1), 0);
		if (i % 3 == 0)
			rlt_yield();
		assert_int_equal(atomic_fetch_sub(&c->holders, 1), 1);
		got++;
		assert_int_equal(rlt_sem_release(c->s), 0);
	}
	return (void *)got;
}

static void *root_sem_race(void *arg)
{
	sem_race c = {.s = rlt_sem_new(1), .rounds = RLT_TEST_SCALE(5000)};
	atomic_init(&c.holders, 0);
	rlt_task *t[4];
	for (int i = 0; i < 4; i++)
		t[i] = spawn(sem_race_task, &c);
	for (int i = 0; i < 4; i++)
		join(t[i]);
	/* The one permit was neither lost to a leaving waiter nor doubled. */
	assert_int_equal(rlt_sem_value(c.s), 1);
	assert_int_equal(rlt_sem_free(c.s), 0);
	return NULL;
}

static void test_sem_timeout_racing_release_never_loses_a_permit(void **state)
{
	run2(root_sem_race, NULL);
}

/* ================= freeing ================= */

static void *wait_event(void *arg)
{
	return (void *)(intptr_t)rlt_event_wait(arg);
}
static void *acquire_sem(void *arg)
{
	return (void *)(intptr_t)rlt_sem_acquire(arg);
}
static void *wait_wg(void *arg)
{
	return (void *)(intptr_t)rlt_waitgroup_wait(arg);
}

static void *root_free_busy(void *arg)
{
	/* One worker: after a yield, each spawned task has queued. */
	rlt_event *e = rlt_event_new();
	rlt_sem *s = rlt_sem_new(0);
	rlt_waitgroup *wg = rlt_waitgroup_new();
	rlt_waitgroup_add(wg, 1);
	rlt_task *t[3] = {spawn(wait_event, e), spawn(acquire_sem, s), spawn(wait_wg, wg)};
	rlt_yield();
	assert_int_equal(rlt_event_free(e), -EBUSY);
	assert_int_equal(rlt_sem_free(s), -EBUSY);
	assert_int_equal(rlt_waitgroup_free(wg), -EBUSY);
	rlt_event_set(e);
	rlt_sem_release(s);
	rlt_waitgroup_done(wg);
	for (int i = 0; i < 3; i++)
		assert_int_equal(join(t[i]), 0);
	assert_int_equal(rlt_event_free(e), 0);
	assert_int_equal(rlt_sem_free(s), 0);
	assert_int_equal(rlt_waitgroup_free(wg), 0);
	return NULL;
}

static void test_free_with_waiters_gives_ebusy(void **state)
{
	rlt_test_run1(root_free_busy, NULL);
}

/* ================= condition variable ================= */

#define QCAP 4

typedef struct pc_ctx {
	rlt_mutex *m;
	rlt_cond *not_empty, *not_full;
	long buf[QCAP];
	int head, len;
	long items; /* per producer */
	long consumed_sum;
	long consumed;
	int producers_left;
} pc_ctx;

static void *producer(void *arg)
{
	pc_ctx *c = arg;
	for (long i = 1; i <= c->items; i++) {
		assert_int_equal(rlt_mutex_lock(c->m), 0);
		while (c->len == QCAP)
			assert_int_equal(rlt_cond_wait(c->not_full, c->m), 0);
		c->buf[(c->head + c->len++) % QCAP] = i;
		rlt_cond_signal(c->not_empty);
		assert_int_equal(rlt_mutex_unlock(c->m), 0);
	}
	assert_int_equal(rlt_mutex_lock(c->m), 0);
	if (--c->producers_left == 0)
		rlt_cond_broadcast(c->not_empty);
	assert_int_equal(rlt_mutex_unlock(c->m), 0);
	return NULL;
}

static void *consumer(void *arg)
{
	pc_ctx *c = arg;
	for (;;) {
		assert_int_equal(rlt_mutex_lock(c->m), 0);
		while (c->len == 0 && c->producers_left > 0)
			assert_int_equal(rlt_cond_wait(c->not_empty, c->m), 0);
		if (c->len == 0) {
			assert_int_equal(rlt_mutex_unlock(c->m), 0);
			return NULL;
		}
		long v = c->buf[c->head];
		c->head = (c->head + 1) % QCAP;
		c->len--;
		c->consumed_sum += v;
		c->consumed++;
		rlt_cond_signal(c->not_full);
		assert_int_equal(rlt_mutex_unlock(c->m), 0);
	}
}

static void *root_cond_pc(void *arg)
{
	pc_ctx c = {.m = rlt_mutex_new(),
		    .not_empty = rlt_cond_new(),
		    .not_full = rlt_cond_new(),
		    .items = RLT_TEST_SCALE(5000),
		    .producers_left = 2};
	rlt_task *t[4];
	t[0] = spawn(producer, &c);
	t[1] = spawn(consumer, &c);
	t[2] = spawn(producer, &c);
	t[3] = spawn(consumer, &c);
	for (int i = 0; i < 4; i++)
		join(t[i]);
	assert_int_equal(c.consumed, 2 * c.items);
	assert_int_equal(c.consumed_sum, c.items * (c.items + 1));
	assert_int_equal(rlt_cond_free(c.not_empty), 0);
	assert_int_equal(rlt_cond_free(c.not_full), 0);
	assert_int_equal(rlt_mutex_free(c.m), 0);
	return NULL;
}

static void test_cond_producer_consumer_across_workers(void **state)
{
	run2(root_cond_pc, NULL);
}

typedef struct cv_ctx {
	rlt_mutex *m;
	rlt_cond *c;
	int flag;
} cv_ctx;

static void *cv_signaller(void *arg)
{
	cv_ctx *c = arg;
	assert_int_equal(rlt_mutex_lock(c->m), 0);
	c->flag = 1;
	rlt_cond_signal(c->c);
	assert_int_equal(rlt_mutex_unlock(c->m), 0);
	return NULL;
}

static void *root_cond_timeout(void *arg)
{
	cv_ctx c = {.m = rlt_mutex_new(), .c = rlt_cond_new(), .flag = 0};
	assert_int_equal(rlt_cond_wait(c.c, c.m), -EPERM); /* m not held */
	assert_int_equal(rlt_mutex_lock(c.m), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cond_wait_timeout(c.c, c.m, 5 * MS), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * MS);
	assert_int_equal(rlt_mutex_trylock(c.m), -EBUSY); /* held again */
	rlt_task *t = spawn(cv_signaller, &c);
	t0 = rlt_now();
	while (!c.flag)
		assert_int_equal(rlt_cond_wait_timeout(c.c, c.m, 10 * RLT_NSEC_PER_SEC), 0);
	assert_true(rlt_now() - t0 < 5 * RLT_NSEC_PER_SEC);
	assert_int_equal(rlt_mutex_unlock(c.m), 0);
	join(t);
	assert_int_equal(rlt_cond_free(c.c), 0);
	assert_int_equal(rlt_mutex_free(c.m), 0);
	return NULL;
}

static void test_cond_wait_timeout_fires_and_not_when_signalled(void **state)
{
	run2(root_cond_timeout, NULL);
}

/* ================= wait group ================= */

typedef struct wg_ctx {
	rlt_waitgroup *wg;
	atomic_int finished;
} wg_ctx;

static void *wg_task(void *arg)
{
	wg_ctx *c = arg;
	if (atomic_fetch_add(&c->finished, 1) % 3 == 0)
		rlt_yield();
	assert_int_equal(rlt_waitgroup_done(c->wg), 0);
	return NULL;
}

static void *root_wg(void *arg)
{
	int n = RLT_TEST_SCALE(1000);
	wg_ctx c = {.wg = rlt_waitgroup_new()};
	atomic_init(&c.finished, 0);
	assert_int_equal(rlt_waitgroup_wait(c.wg), 0); /* count 0: at once */
	assert_int_equal(rlt_waitgroup_add(c.wg, n), 0);
	for (int i = 0; i < n; i++)
		assert_non_null(
		    rlt_spawn(wg_task, &c, &(rlt_spawn_opts){.flags = RLT_SPAWN_DETACHED}));
	assert_int_equal(rlt_waitgroup_wait(c.wg), 0);
	assert_int_equal(atomic_load(&c.finished), n);
	assert_int_equal(rlt_waitgroup_done(c.wg), -EINVAL);
	assert_int_equal(rlt_waitgroup_free(c.wg), 0);
	return NULL;
}

static void test_waitgroup_of_1000_tasks(void **state)
{
	run2(root_wg, NULL);
}

static void *done_thread(void *arg)
{
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL);
	rlt_waitgroup_done(arg);
	return NULL;
}

static void *root_wg_timeout(void *arg)
{
	rlt_waitgroup *wg = rlt_waitgroup_new();
	assert_int_equal(rlt_waitgroup_add(wg, 1), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_waitgroup_wait_timeout(wg, 5 * MS), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * MS);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, done_thread, wg), 0);
	assert_int_equal(rlt_waitgroup_wait_timeout(wg, 10 * RLT_NSEC_PER_SEC), 0);
	pthread_join(th, NULL);
	assert_int_equal(rlt_waitgroup_free(wg), 0);
	return NULL;
}

static void test_waitgroup_timeout_and_done_from_foreign_thread(void **state)
{
	if (threads_unusable())
		skip();
	run2(root_wg_timeout, NULL);
	rlt_waitgroup *wg = rlt_waitgroup_new();
	assert_int_equal(rlt_waitgroup_wait(wg), -EPERM);
	assert_int_equal(rlt_waitgroup_add(wg, -1), -EINVAL);
	assert_int_equal(rlt_waitgroup_free(wg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mutex_lock_unlock_and_errors),
	    cmocka_unit_test(test_mutex_counter_exact_across_two_workers),
	    cmocka_unit_test(test_mutex_hands_off_in_fifo_order),
	    cmocka_unit_test(test_mutex_lock_timeout_fires_and_not_when_unlocked),
	    cmocka_unit_test(test_mutex_timeout_racing_handoff_never_loses_or_doubles),
	    cmocka_unit_test(test_event_set_clear_wait_and_timeout),
	    cmocka_unit_test(test_event_set_wakes_100_waiters_across_workers),
	    cmocka_unit_test(test_event_set_from_foreign_thread),
	    cmocka_unit_test(test_sem_acquire_try_release_and_timeout),
	    cmocka_unit_test(test_sem_limits_concurrency_to_n),
	    cmocka_unit_test(test_sem_serves_waiters_in_fifo_order),
	    cmocka_unit_test(test_sem_timeout_racing_release_never_loses_a_permit),
	    cmocka_unit_test(test_free_with_waiters_gives_ebusy),
	    cmocka_unit_test(test_cond_producer_consumer_across_workers),
	    cmocka_unit_test(test_cond_wait_timeout_fires_and_not_when_signalled),
	    cmocka_unit_test(test_waitgroup_of_1000_tasks),
	    cmocka_unit_test(test_waitgroup_timeout_and_done_from_foreign_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
