/*
 * Thread pools for blocking work (include/ringlet/executor.h).
 *
 * A pool is a FIFO of jobs under one mutex, and threads that take jobs from
 * it: started on demand when a job finds no idle thread (up to
 * max_threads), parked on a condition variable when there is none, gone
 * after keep_alive of idleness. The mutex is taken once per submission and
 * once per job taken: a few tens of nanoseconds uncontended, and a pool
 * thread's own cost (a wake-up when it slept) dwarfs it.
 *
 * A job and its waiter:
 *
 *   task                                  pool thread
 *   ----                                  -----------
 *   job = {fn, arg, refs = 2}
 *   submit (queue it)  ------------>      take it, result = fn(arg)
 *   oneshot_wait(&job->done)              waiter = oneshot_complete(&job->done)
 *     (suspends, or sees it set)          if waiter: wake it (inbox + kick)
 *   read result                           drop ref
 *   drop ref
 *
 * The oneshot decides who handles the waiter exactly once (see
 * runtime/oneshot.h): the completer wakes a registered task; a task that
 * timed out withdrew first, so the completer sees nobody, and the job's
 * last reference runs discard(arg, result).
 *
 * Runtime shutdown: a task's worker and runtime must outlive any pool
 * thread that may still wake it. Each runtime counts the jobs its tasks
 * submitted that have not finished (jobs_waiting, atomic); the completer
 * decrements it as its very last touch of the runtime, and rlt_run's
 * teardown waits for zero before freeing anything (polling: it is the rare
 * case of a runtime ending with jobs still running, and a lock or futex
 * after the decrement would be a touch too many). (Jobs whose task timed out are counted too:
 * simpler, and a discard callback may still want the program's state.)
 */
#include "ringlet/executor.h"
#include "ringlet/future.h"

#include "io/policy.h"
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/config.h"
#include "runtime/cpu.h"
#include "runtime/oneshot.h"
#include "runtime/task.h"
#include "sched/sched.h"
#include "sched/stats.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_THREADS   512u
#define DEFAULT_KEEP_ALIVE_MS 10000u

typedef struct job {
	struct job *next;
	rlt_job_fn fn;
	void *arg;
	void *result;
	void (*discard)(void *arg, void *result);
	rlt_future *future;	 /* rlt_pool_submit: set it instead of waking */
	struct rlt__runtime *rt; /* the waiter's runtime (NULL for futures) */
	rlt__oneshot done;
	int err;       /* -ECANCELED when dropped by a shutdown */
	bool consumed; /* the waiter took the outcome: no discard */
	atomic_uint refs;
} job;

struct rlt_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;	 /* idle threads wait here */
	pthread_cond_t exited;	 /* shutdown waits here for the last thread */
	pthread_cond_t starving; /* the monitor waits here */
	job *head, *tail;
	size_t max_queue;
	atomic_size_t queued; /* written under lock; spinners read it without */
	unsigned threads, idle, spinning, max_threads;
	uint64_t keep_alive_ns;
	uint64_t completed;
	uint64_t taken;	     /* jobs taken off the queue: the monitor's progress mark */
	bool monitor;	     /* the monitor thread is alive */
	bool monitor_wanted; /* a job waits with no thread free: look again soon */
	unsigned serial;     /* thread names */
	bool shutting_down;
	bool is_default;
	bool wake_eventfd; /* RINGLET_POOL_WAKE=eventfd */
	char name[11];
};

static __thread rlt_pool *tls_pool; /* the pool of the calling pool thread */

/* ---- jobs ---- */

/* The last reference runs discard when nobody took the outcome (the task
 * timed out): the pool thread if the job ended after, the task if before. */
static void job_unref(job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (!j->consumed && j->discard)
		j->discard(j->arg, j->result);
	rlt__free(j);
}

/* The job has a result (or was dropped): hand it over. Runs on a pool
 * thread, or on the thread shutting the pool down. */
static void job_finish(job *j)
{
	if (j->future) {
		struct rlt__runtime *frt = j->rt;
		if (j->err)
			rlt_future_fail(j->future, j->err); /* j->err: a negative errno */
		else
			rlt_future_set(j->future, j->result);
		rlt_future_release(j->future);
		job_unref(j);
		/* Submitted from a task: setting the future may have woken a
		 * task of that runtime; only now may its teardown go on. */
		if (frt)
			rlt__runtime_job_end(frt);
		return;
	}
	struct rlt__runtime *rt = j->rt;
	/* The oneshot's release publishes result and err to the waiter. */
	rlt__oneshot_fire(&j->done);
	job_unref(j);
	/* Done with the task, its worker and its runtime. This is our last
	 * touch of the runtime: once it reads zero, it may go away. */
	rlt__runtime_job_end(rt);
}

/* ---- pool threads ---- */

/* A thread out of jobs watches the queue this long before it sleeps on the
 * condition variable: a job submitted meanwhile costs no futex wake-up on
 * either side (~5 us each on a VM). At most SPINNERS threads do it at once,
 * so a big pool does not burn the machine. */
#define SPIN_NS	 50000u
#define SPINNERS 1u

static bool spin_for_job(rlt_pool *p, bool one_cpu)
{
	uint64_t until = rlt__mono_ns() + SPIN_NS;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&p->queued, memory_order_relaxed))
			return true;
		if ((i & 63) == 0) {
			if (rlt__mono_ns() >= until)
				return false;
			/* A thread that may run on one CPU only shares it with
			 * whoever submits the next job (a pinned worker's pool
			 * threads inherit its pin): let that run. Elsewhere no
			 * yield: under EEVDF a yield while anything else is
			 * runnable on this CPU, even a SCHED_IDLE batch job,
			 * pushes this thread's virtual deadline a slice on, and
			 * after many its next wake-up waits milliseconds to run
			 * (sched/worker.c's spin). */
			if (one_cpu)
				sched_yield();
		}
		rlt__cpu_relax();
	}
}

/* How a pool thread wakes a parked worker of an io_uring runtime:
 * IORING_OP_MSG_RING from a small ring of the pool thread's own, or a
 * write to the worker's eventfd (which has a read armed on its ring).
 * Measured on this 2-core VM, round trip of an empty job with the worker
 * parked (bench_executor, RINGLET_SPIN_US=0), p50 of 3 runs: MSG_RING 8.0
 * us, eventfd 9.6 us. So MSG_RING, unless no ring can be had (io_uring
 * refused: the eventfd it is) or RINGLET_POOL_WAKE=eventfd (read when
 * the pool is made). Workers of other policies are woken their own way
 * (the loop's wake). */

static void *pool_thread(void *arg)
{
	rlt_pool *p = arg;
	tls_pool = p;
	rlt_loop ring = {.policy = &rlt__policy_uring, .options = "", .queue_depth = 8};
	bool have_ring = !p->wake_eventfd && rlt__policy_uring.init(&ring) == 0;
	if (have_ring)
		rlt__set_foreign_loop(&ring);
	cpu_set_t cpus;
	bool one_cpu = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) == 1;
	bool spun = false;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (!p->head) {
			if (p->shutting_down)
				break;
			if (!spun && p->spinning < SPINNERS) {
				p->spinning++;
				pthread_mutex_unlock(&p->lock);
				spin_for_job(p, one_cpu);
				pthread_mutex_lock(&p->lock);
				p->spinning--;
				spun = true;
				continue;
			}
			/* Idle: wait for a job, at most keep_alive. */
			struct timespec until;
			uint64_t deadline = rlt__mono_ns() + p->keep_alive_ns;
			until.tv_sec = (time_t)(deadline / 1000000000ull);
			until.tv_nsec = (long)(deadline % 1000000000ull);
			p->idle++;
			int rc = pthread_cond_timedwait(&p->work, &p->lock, &until);
			p->idle--;
			spun = false;
			if (rc == ETIMEDOUT && !p->head && !p->shutting_down)
				break;
			continue;
		}
		job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->taken++;
		atomic_store_explicit(&p->queued,
				      atomic_load_explicit(&p->queued, memory_order_relaxed) - 1,
				      memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);

		j->result = j->fn(j->arg);
		job_finish(j);
		spun = false;

		pthread_mutex_lock(&p->lock);
		p->completed++;
	}
	p->threads--;
	if (p->threads == 0 && !p->monitor)
		pthread_cond_broadcast(&p->exited);
	pthread_mutex_unlock(&p->lock);
	if (have_ring) {
		rlt__set_foreign_loop(NULL);
		rlt__policy_uring.fini(&ring);
	}
	return NULL;
}

/*
 * When to add a thread. Not whenever a job finds every thread busy: with
 * short jobs, the busy threads are about to be free, and each extra thread
 * only adds context switches (on 2 cores, 512 threads ran 1M empty jobs at
 * 97k/s where 1 thread ran 3.5M/s). So a job that finds no free thread
 * wakes the pool's monitor, which looks again STARVE_NS later: if no job
 * left the queue meanwhile (every thread is stuck in something long), it
 * adds a thread, and looks again. Go's sysmon takes a processor back from a
 * blocked system call the same way, after 20 us.
 */
#define STARVE_NS 100000u

static int start_thread(rlt_pool *p);

static void *monitor_thread(void *arg)
{
	rlt_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->shutting_down) {
		if (!p->monitor_wanted) {
			pthread_cond_wait(&p->starving, &p->lock);
			continue;
		}
		uint64_t mark = p->taken;
		uint64_t deadline = rlt__mono_ns() + STARVE_NS;
		struct timespec until = {(time_t)(deadline / 1000000000ull),
					 (long)(deadline % 1000000000ull)};
		while (rlt__mono_ns() < deadline && !p->shutting_down)
			pthread_cond_timedwait(&p->starving, &p->lock, &until);
		size_t queued = atomic_load_explicit(&p->queued, memory_order_relaxed);
		if (!queued || p->idle + p->spinning >= queued) {
			p->monitor_wanted = false;
		} else if (p->taken == mark && p->threads < p->max_threads) {
			start_thread(p); /* on failure, look again later */
		}
	}
	p->monitor = false;
	if (p->threads == 0)
		pthread_cond_broadcast(&p->exited);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Called with p->lock held. */
static void want_monitor(rlt_pool *p)
{
	if (p->monitor_wanted)
		return;
	p->monitor_wanted = true;
	if (p->monitor) {
		pthread_cond_signal(&p->starving);
		return;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t th;
	if (pthread_create(&th, &attr, monitor_thread, p) == 0) {
		p->monitor = true;
		char tname[16];
		snprintf(tname, sizeof(tname), "%s-mon", p->name);
		pthread_setname_np(th, tname);
	} else {
		p->monitor_wanted = false; /* the next job that waits retries */
	}
	pthread_attr_destroy(&attr);
}

/* Called with p->lock held: start one more thread. */
static int start_thread(rlt_pool *p)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Blocking libraries may want deep stacks: the glibc default (8 MiB
	 * of address space, touched only as used) is kept. */
	pthread_t th;
	int e = pthread_create(&th, &attr, pool_thread, p);
	pthread_attr_destroy(&attr);
	if (e)
		return -e;
	p->threads++;
	char tname[16];
	snprintf(tname, sizeof(tname), "%s-%u", p->name, p->serial++ % 10000);
	pthread_setname_np(th, tname);
	return 0;
}

static int pool_push(rlt_pool *p, job *j)
{
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (p->shutting_down) {
		rc = -ESHUTDOWN;
	} else if (p->max_queue &&
		   atomic_load_explicit(&p->queued, memory_order_relaxed) >= p->max_queue) {
		rc = -EAGAIN;
	} else {
		size_t queued = atomic_load_explicit(&p->queued, memory_order_relaxed);
		if (p->idle + p->spinning <= queued && p->threads < p->max_threads) {
			/* No thread will be free for it. The first thread starts
			 * now; more only if the busy ones turn out to be stuck
			 * (see the monitor). */
			if (p->threads == 0) {
				int e = start_thread(p);
				if (e < 0)
					rc = -ENOMEM;
			} else {
				want_monitor(p);
			}
		}
		if (rc == 0) {
			j->next = NULL;
			if (p->tail)
				p->tail->next = j;
			else
				p->head = j;
			p->tail = j;
			atomic_store_explicit(&p->queued, queued + 1, memory_order_relaxed);
			/* A spinner takes it without help; otherwise wake a sleeper. */
			if (p->idle && queued + 1 > p->spinning)
				pthread_cond_signal(&p->work);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

/* ---- pools ---- */

static int pool_init(rlt_pool *p, const rlt_pool_config *cfg)
{
	memset(p, 0, sizeof(*p));
	rlt__settings env;
	int rc = rlt__settings_load(&env);
	if (rc < 0)
		return rc;
	p->wake_eventfd = env.v[RLT__CFG_POOL_WAKE] == 1;
	p->max_threads = cfg && cfg->max_threads ? cfg->max_threads : DEFAULT_MAX_THREADS;
	unsigned ka = cfg && cfg->keep_alive_ms ? cfg->keep_alive_ms : DEFAULT_KEEP_ALIVE_MS;
	p->keep_alive_ns = (uint64_t)ka * 1000000ull;
	p->max_queue = cfg ? cfg->max_queue : 0;
	const char *name = cfg && cfg->name ? cfg->name : "rlt-pool";
	if (strlen(name) >= sizeof(p->name))
		return -EINVAL;
	strcpy(p->name, name);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, &ca);
	pthread_cond_init(&p->exited, NULL);
	pthread_cond_init(&p->starving, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

rlt_pool *rlt_pool_create(const rlt_pool_config *cfg)
{
	rlt_pool *p = rlt__malloc(sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	int rc = pool_init(p, cfg);
	if (rc < 0) {
		rlt__free(p);
		errno = -rc;
		return NULL;
	}
	return p;
}

static rlt_pool default_pool;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_rc;
static atomic_bool default_ready; /* made, for rlt__default_pool_stats */

static void default_init(void)
{
	rlt_pool_config cfg = {.name = "rlt-block"};
	rlt__settings env;
	/* A bad value fails the pool (rlt_run has refused it already). */
	default_rc = rlt__settings_load(&env);
	if (default_rc < 0)
		return;
	cfg.max_threads = (unsigned)env.v[RLT__CFG_BLOCKING_THREADS];
	default_rc = pool_init(&default_pool, &cfg);
	default_pool.is_default = true;
	atomic_store_explicit(&default_ready, default_rc == 0, memory_order_release);
}

int rlt__default_pool_stats(rlt_pool_stats *out)
{
	/* Without making the pool: a runtime that never used it has none. */
	if (!atomic_load_explicit(&default_ready, memory_order_acquire))
		return -ENOENT;
	return rlt_pool_get_stats(&default_pool, out);
}

static rlt_pool *resolve(rlt_pool *p)
{
	if (p)
		return p;
	pthread_once(&default_once, default_init);
	return default_rc == 0 ? &default_pool : NULL;
}

/* Drop every queued job (shutdown without waiting). */
static void drop_queued(rlt_pool *p)
{
	pthread_mutex_lock(&p->lock);
	job *j = p->head;
	p->head = p->tail = NULL;
	atomic_store_explicit(&p->queued, 0, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	while (j) {
		job *next = j->next;
		j->err = -ECANCELED;
		j->result = NULL;
		job_finish(j);
		j = next;
	}
}

static void *shutdown_wait(void *arg)
{
	rlt_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	while (p->threads > 0 || p->monitor)
		pthread_cond_wait(&p->exited, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int rlt_pool_shutdown(rlt_pool *p, bool wait)
{
	if (!p || p->is_default || tls_pool == p)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	p->shutting_down = true;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->starving);
	pthread_mutex_unlock(&p->lock);
	if (!wait)
		drop_queued(p);
	/* Threads run what is queued (if anything still is), then exit. */
	if (rlt__task_self()) {
		int rc = rlt_run_blocking(NULL, shutdown_wait, p, NULL);
		if (rc < 0)
			return rc;
	} else {
		shutdown_wait(p);
	}
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->exited);
	pthread_cond_destroy(&p->starving);
	pthread_mutex_destroy(&p->lock);
	rlt__free(p);
	return 0;
}

int rlt_pool_get_stats(rlt_pool *p, rlt_pool_stats *out)
{
	p = resolve(p);
	if (!p || !out)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	out->threads = p->threads;
	out->idle = p->idle;
	out->queued = atomic_load_explicit(&p->queued, memory_order_relaxed);
	out->completed = p->completed;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* ---- running jobs ---- */

static int run_job(rlt_pool *pool, rlt_job_fn fn, void *arg, void **result, int64_t timeout_ns,
		   void (*discard)(void *arg, void *result), unsigned kind)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	rlt_pool *p = resolve(pool);
	if (!p)
		return -ENOMEM;
	job *j = rlt__malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->result = NULL;
	j->discard = discard;
	j->future = NULL;
	j->err = 0;
	j->consumed = false;
	rlt__oneshot_init(&j->done);
	atomic_init(&j->refs, 2);
	/* Counted before anyone can complete it: see the top of the file. */
	j->rt = rlt__runtime_job_begin(t);
	int rc = pool_push(p, j);
	if (rc < 0) {
		rlt__runtime_job_end(j->rt);
		rlt__free(j);
		return rc;
	}
	rc = rlt__oneshot_wait_k(&j->done, timeout_ns < 0 ? -1 : timeout_ns, kind);
	if (rc == 0) {
		j->consumed = true;
		if (result && !j->err)
			*result = j->result;
		rc = j->err;
	}
	job_unref(j);
	return rc;
}

int rlt_run_blocking_timeout(rlt_pool *pool, rlt_job_fn fn, void *arg, void **result,
			     int64_t timeout_ns, void (*discard)(void *arg, void *result))
{
	return run_job(pool, fn, arg, result, timeout_ns, discard, RLT__WK_JOB);
}

int rlt_run_blocking(rlt_pool *pool, rlt_job_fn fn, void *arg, void **result)
{
	/* Not cut short by a cancel or a deadline: arg may be on our stack. */
	return run_job(pool, fn, arg, result, -1, NULL, RLT__WK_JOB | RLT__WAIT_NOCANCEL);
}

rlt_future *rlt_pool_submit(rlt_pool *pool, rlt_job_fn fn, void *arg)
{
	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	rlt_pool *p = resolve(pool);
	job *j = p ? rlt__malloc(sizeof(*j)) : NULL;
	rlt_future *f = j ? rlt_future_new() : NULL;
	if (!f) {
		rlt__free(j);
		errno = ENOMEM;
		return NULL;
	}
	j->fn = fn;
	j->arg = arg;
	j->result = NULL;
	j->discard = NULL;
	j->future = rlt_future_retain(f); /* the pool's reference */
	/* From a task, the runtime waits for the job at teardown, as for
	 * run_job: the future's waker may be the last to touch a worker. */
	rlt_task *t = rlt__task_self();
	j->rt = t ? rlt__runtime_job_begin(t) : NULL;
	j->err = 0;
	j->consumed = true;
	rlt__oneshot_init(&j->done);
	atomic_init(&j->refs, 1);
	int rc = pool_push(p, j);
	if (rc < 0) {
		if (j->rt)
			rlt__runtime_job_end(j->rt);
		rlt_future_release(f);
		rlt_future_release(f);
		rlt__free(j);
		errno = -rc;
		return NULL;
	}
	return f;
}
