/*
 * Task synchronisation (include/ringlet/sync.h).
 *
 *   sync.mutex.uncontended  ns per rlt_mutex_lock + rlt_mutex_unlock, one
 *                           task on 1 worker: the fast path (a CAS each).
 *                           Target <= 10 ns.
 *   sync.mutex.contended    ns per lock + unlock (a counter increment in
 *                           between) of 4 tasks hammering one mutex on 2
 *                           workers: spins, queueing, hand-offs, wake-ups.
 *   sync.sem.uncontended    ns per rlt_sem_acquire + rlt_sem_release, one
 *                           task on 1 worker.
 *   sync.event.pingpong     us per round trip between two tasks pinned on
 *                           workers 0 and 1, each setting an event the
 *                           other waits for (mean over the rounds).
 *   base.pthread.mutex      ns per pthread_mutex_lock + unlock on one
 *                           thread: this machine's price of the same fast
 *                           path (bench/run.sh shows it beside
 *                           sync.mutex.uncontended).
 */
#include "bench_rt.h"
#include <ringlet.h>

#include <errno.h>
#include <pthread.h>

static void run(unsigned workers, rlt_task_fn fn, void *arg)
{
	bench_run(workers, fn, arg);
}

typedef struct job {
	const bench_opts *o;
	bench_series *s;
	long n;
} job;

/* ---- mutex ---- */

/* counter NULL: an empty critical section (the uncontended metric). */
static void lock_loop(rlt_mutex *m, long n, long *counter)
{
	for (long i = 0; i < n; i++) {
		if (rlt_mutex_lock(m) < 0)
			die("rlt_mutex_lock", EINVAL);
		if (counter)
			(*counter)++;
		rlt_mutex_unlock(m);
	}
}

static void *mutex_uncontended(void *arg)
{
	job *j = arg;
	rlt_mutex *m = rlt_mutex_new();
	if (!m)
		die("rlt_mutex_new", errno);
	lock_loop(m, j->n / 10, NULL);
	for (int r = 0; r < j->o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		lock_loop(m, j->n, NULL);
		bench_record(j->s, (double)(bench_wall_ns() - t0) / (double)j->n);
	}
	rlt_mutex_free(m);
	return NULL;
}

typedef struct contended {
	rlt_mutex *m;
	long n;
	long counter;
} contended;

static void *contender(void *arg)
{
	contended *c = arg;
	lock_loop(c->m, c->n, &c->counter);
	return NULL;
}

#define CONTENDERS 4

static void *mutex_contended(void *arg)
{
	job *j = arg;
	contended c = {.m = rlt_mutex_new(), .n = j->n / CONTENDERS, .counter = 0};
	if (!c.m)
		die("rlt_mutex_new", errno);
	for (int r = 0; r < j->o->reps + 1; r++) {
		rlt_task *t[CONTENDERS];
		uint64_t t0 = bench_wall_ns();
		for (int i = 0; i < CONTENDERS; i++)
			if (!(t[i] = rlt_spawn(contender, &c, NULL)))
				die("rlt_spawn", errno);
		for (int i = 0; i < CONTENDERS; i++)
			rlt_join(t[i], NULL);
		double ns = (double)(bench_wall_ns() - t0) / (double)(c.n * CONTENDERS);
		if (r > 0) /* the first round warms up */
			bench_record(j->s, ns);
	}
	if (c.counter != (long)(j->o->reps + 1) * c.n * CONTENDERS)
		die("mutex_contended: lost an increment", EINVAL);
	rlt_mutex_free(c.m);
	return NULL;
}

/* ---- semaphore ---- */

static void sem_loop(rlt_sem *s, long n)
{
	for (long i = 0; i < n; i++) {
		if (rlt_sem_acquire(s) < 0)
			die("rlt_sem_acquire", EINVAL);
		rlt_sem_release(s);
	}
}

static void *sem_uncontended(void *arg)
{
	job *j = arg;
	rlt_sem *s = rlt_sem_new(1);
	if (!s)
		die("rlt_sem_new", errno);
	sem_loop(s, j->n / 10);
	for (int r = 0; r < j->o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		sem_loop(s, j->n);
		bench_record(j->s, (double)(bench_wall_ns() - t0) / (double)j->n);
	}
	rlt_sem_free(s);
	return NULL;
}

/* ---- event ping-pong ---- */

typedef struct pp {
	rlt_event *ping, *pong;
	long rounds;
} pp;

/* Each side clears the event it waited for before setting the other's, so
 * a set is never cleared before it was seen. */
static void *pp_a(void *arg)
{
	pp *p = arg;
	for (long i = 0; i < p->rounds; i++) {
		rlt_event_set(p->ping);
		rlt_event_wait(p->pong);
		rlt_event_clear(p->pong);
	}
	return NULL;
}

static void *pp_b(void *arg)
{
	pp *p = arg;
	for (long i = 0; i < p->rounds; i++) {
		rlt_event_wait(p->ping);
		rlt_event_clear(p->ping);
		rlt_event_set(p->pong);
	}
	return NULL;
}

static void *event_pingpong(void *arg)
{
	job *j = arg;
	pp p = {.ping = rlt_event_new(), .pong = rlt_event_new(), .rounds = j->n};
	if (!p.ping || !p.pong)
		die("rlt_event_new", errno);
	rlt_spawn_opts oa = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = 0};
	rlt_spawn_opts ob = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = 1};
	for (int r = 0; r < j->o->reps + 1; r++) {
		uint64_t t0 = bench_wall_ns();
		rlt_task *b = rlt_spawn(pp_b, &p, &ob);
		rlt_task *a = rlt_spawn(pp_a, &p, &oa);
		if (!a || !b)
			die("rlt_spawn", errno);
		rlt_join(a, NULL);
		rlt_join(b, NULL);
		double us = (double)(bench_wall_ns() - t0) / 1e3 / (double)p.rounds;
		if (r > 0)
			bench_record(j->s, us);
	}
	rlt_event_free(p.ping);
	rlt_event_free(p.pong);
	return NULL;
}

static void bench(const bench_opts *o, const char *name, const char *unit, unsigned workers,
		  rlt_task_fn fn, long n)
{
	if (!bench_want(o, name))
		return;
	bench_series s;
	bench_series_init(&s, name, unit);
	printf("# %s: %ld operations per measurement, %u worker(s)\n", name, n, workers);
	job j = {.o = o, .s = &s, .n = n};
	run(workers, fn, &j);
	bench_print_median(&s);
}

static void *noop_thread(void *arg)
{
	return arg;
}

static void pthread_baseline(const bench_opts *o, long n)
{
	if (!bench_want(o, "base.pthread.mutex"))
		return;
	bench_series s;
	bench_series_init(&s, "base.pthread.mutex", "ns_per_op");
	printf("# base.pthread.mutex: %ld operations per measurement\n", n);
	/* Once a second thread has existed, glibc takes its multi-threaded
	 * (atomic) paths for good, as in a program running a runtime. */
	pthread_t th;
	if (pthread_create(&th, NULL, noop_thread, NULL) != 0 || pthread_join(th, NULL) != 0)
		die("pthread_create", EAGAIN);
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	for (int r = 0; r < o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		for (long i = 0; i < n; i++) {
			pthread_mutex_lock(&m);
			BENCH_KEEP(&m);
			pthread_mutex_unlock(&m);
		}
		bench_record(&s, (double)(bench_wall_ns() - t0) / (double)n);
	}
	bench_print_median(&s);
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	long k = o.quick ? 1 : 5;
	pthread_baseline(&o, k * 4000000);
	bench(&o, "sync.mutex.uncontended", "ns_per_op", 1, mutex_uncontended, k * 4000000);
	bench(&o, "sync.mutex.contended", "ns_per_op", 2, mutex_contended, k * 400000);
	bench(&o, "sync.sem.uncontended", "ns_per_op", 1, sem_uncontended, k * 4000000);
	bench(&o, "sync.event.pingpong", "us_per_rtt", 2, event_pingpong, k * 20000);
	return 0;
}
