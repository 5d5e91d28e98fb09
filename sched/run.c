/*
 * rlt_run(): build a runtime around the calling thread (worker 0) and
 * workers-1 more threads, run the root task, tear everything down, in four
 * steps: rt_alloc (settings, configuration, policy, memory), rt_start (the
 * workers and their rings), rt_run_main (the root task on worker 0), and
 * rt_teardown.
 *
 * Shutdown, as asyncio.run() does it: when the root task returns, every
 * task still alive is cancelled (drain_msg_run on each worker, for the
 * tasks it owns) and the workers keep running until those have finished,
 * cleanup included, or RINGLET_SHUTDOWN_MS has passed
 * (rlt__runtime_drain_check); then `stopping` is set and every worker is
 * kicked. Each leaves its loop at its next turn (a task that never suspends
 * delays this), cancels its own in-flight operations (only a ring's own
 * thread may submit to it) and waits for the kernel to let go of every
 * buffer, then exits. Worker 0 joins the threads, then frees whatever tasks
 * are left (abandoned: reported on stderr), the rings, and the stacks.
 */
#include "ringlet/cancel.h"
#include "ringlet/runtime.h"
#include "ringlet/stats.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/config.h"
#include "runtime/cpu.h"
#include "runtime/stack.h"
#include "sched/worker.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rlt_config_init(rlt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->stack_size = RLT_DEFAULT_STACK_SIZE;
	cfg->ring_entries = 256;
	cfg->workers = 0;
	cfg->stack_cache = 256;
}

static int allowed_cpus(rlt__runtime *rt)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	unsigned n = (unsigned)CPU_COUNT(&set);
	if (n == 0)
		n = 1;
	rt->cpus = rlt__calloc(n, sizeof(int));
	if (!rt->cpus)
		return -ENOMEM;
	for (int c = 0; c < CPU_SETSIZE && rt->ncpus < n; c++)
		if (CPU_ISSET(c, &set))
			rt->cpus[rt->ncpus++] = c;
	if (rt->ncpus == 0)
		rt->cpus[rt->ncpus++] = 0;
	return 0;
}

/* cfg (NULL: defaults) under the environment's settings, which win. */
static int resolve_config(const rlt_config *in, const rlt__settings *env, rlt__runtime *rt)
{
	rlt_config cfg;
	rlt_config_init(&cfg);
	if (in) {
		if (in->stack_size)
			cfg.stack_size = in->stack_size;
		if (in->ring_entries)
			cfg.ring_entries = in->ring_entries;
		cfg.workers = in->workers;
		if (in->stack_cache)
			cfg.stack_cache = in->stack_cache;
		cfg.no_stack_guard = in->no_stack_guard;
		cfg.pin = in->pin;
		cfg.no_steal = in->no_steal;
		cfg.spin_us = in->spin_us;
		cfg.debug = in->debug;
		cfg.slow_ms = in->slow_ms;
		cfg.shutdown_ms = in->shutdown_ms;
	}
#define GIVEN(id) rlt__settings_given(env, RLT__CFG_##id)
#define VAL(id)	  env->v[RLT__CFG_##id]
	if (GIVEN(STACK_SIZE))
		cfg.stack_size = (size_t)VAL(STACK_SIZE);
	if (GIVEN(WORKERS))
		cfg.workers = (unsigned)VAL(WORKERS);
	if (GIVEN(PIN))
		cfg.pin = VAL(PIN) != 0;
	if (GIVEN(STACK_CACHE))
		cfg.stack_cache = (unsigned)VAL(STACK_CACHE);
	if (GIVEN(STEAL))
		cfg.no_steal = VAL(STEAL) == 0;
	if (GIVEN(DEBUG))
		cfg.debug = VAL(DEBUG) != 0;

	if (cfg.spin_us > 1000000)
		return -EINVAL;
	uint64_t spin_ns = cfg.spin_us == 0  ? VAL(SPIN_US) /* the default */
			   : cfg.spin_us < 0 ? 0
					     : (uint64_t)cfg.spin_us * 1000u;
	if (GIVEN(SPIN_US))
		spin_ns = VAL(SPIN_US);
	rt->spin_ns = spin_ns;
	rt->spin_fixed = VAL(SPIN) == 1;

	uint64_t slow_ns = cfg.slow_ms ? (uint64_t)cfg.slow_ms * 1000000u : VAL(SLOW_MS);
	if (GIVEN(SLOW_MS))
		slow_ns = VAL(SLOW_MS);
	rt->slow_ns = cfg.debug ? slow_ns : 0;
	rt->watch_ns = slow_ns; /* the watchdog's, always on */
	if (cfg.debug)
		rlt__task_debug_checks(); /* handle misuse aborts (runtime/task.c) */

	uint64_t grace_ns = cfg.shutdown_ms == 0  ? VAL(SHUTDOWN_MS)
			    : cfg.shutdown_ms < 0 ? 0
						  : (uint64_t)cfg.shutdown_ms * 1000000u;
	if (GIVEN(SHUTDOWN_MS))
		grace_ns = VAL(SHUTDOWN_MS);
	rt->drain_ns = grace_ns;

	/* Task timing: asked for, or implied by the exit report (its poll
	 * histogram), unless refused; debug mode's slow-task report uses it.
	 * The console turns it on at its first `top` (runtime/control.c): no
	 * cost until somebody looks. The tick factor is measured now, not
	 * then, so that the first look does not hold a worker for it. */
	uint64_t timing = VAL(TIMING); /* auto | 1 | 0 */
	rt->timing_allowed = timing != 2;
	bool timed = rt->slow_ns || timing == 1 || (timing == 0 && VAL(STATS));
	atomic_init(&rt->observe, timed ? RLT__OBS_TIMING : 0u);
	if (timed || (rt->timing_allowed && GIVEN(CONTROL)))
		rlt__ticks_calibrate();
#undef GIVEN
#undef VAL

	rt->stack_size = rlt__stack_round(cfg.stack_size);
	if (!rt->stack_size)
		return -EINVAL;
	if (cfg.ring_entries > 32768 || (cfg.ring_entries & (cfg.ring_entries - 1)))
		return -EINVAL;
	if (cfg.workers > RLT_MAX_WORKERS)
		return -EINVAL;
	int rc = allowed_cpus(rt);
	if (rc < 0)
		return rc;
	rt->nworkers = cfg.workers ? cfg.workers : rt->ncpus;
	rt->ring_entries = cfg.ring_entries;
	rt->stack_cache = cfg.stack_cache;
	rt->stack_guard = !cfg.no_stack_guard;
	rt->steal = !cfg.no_steal;
	rt->pin = cfg.pin;
	return 0;
}

static void pin_self(rlt__runtime *rt, unsigned index)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(rt->cpus[index % rt->ncpus], &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* On each worker: cancel every task it owns that is still alive. Its
 * list is its own, so this runs there. */
static void drain_msg_run(rlt__worker *w, rlt__msg *m)
{
	(void)m;
	bool any = false;
	for (rlt_task *t = w->all; t; t = t->all_next)
		if (rlt__tstate(t) != RLT__T_DONE)
			any |= rlt__cancel_mark(t);
	if (any) {
		rlt__cancel_fence();
		for (rlt_task *t = w->all; t; t = t->all_next)
			if (rlt__tstate(t) != RLT__T_DONE)
				rlt__cancel_route(t);
	}
	w->drain_counted = 0;
	rlt__runtime_drain_check(w);
}

void rlt__runtime_root_done(rlt__runtime *rt)
{
	if (!rt->drain_ns) {
		rlt__runtime_stop(rt);
		return;
	}
	atomic_store_explicit(&rt->drain_deadline, rlt__mono_ns() + rt->drain_ns,
			      memory_order_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++)
		atomic_store_explicit(&rt->workers[i].live, 1, memory_order_relaxed);
	/* Published before the messages (their CAS is a release). */
	atomic_store_explicit(&rt->draining, true, memory_order_release);
	atomic_fetch_or_explicit(&rt->attn, RLT__ATTN_DRAIN, memory_order_release);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rlt__worker *w = &rt->workers[i];
		w->drain_msg.fn = drain_msg_run;
		rlt__worker_post(w, &w->drain_msg);
	}
}

void rlt__runtime_drain_check(rlt__worker *w)
{
	rlt__runtime *rt = w->rt;
	uint64_t now = rlt__mono_ns();
	/* Our tasks may finish on other workers without telling us: recount
	 * at most every 100 us (the loop wakes at least every ms meanwhile). */
	if (now - w->drain_counted >= 100000u) {
		w->drain_counted = now;
		unsigned n = 0;
		for (rlt_task *t = w->all; t; t = t->all_next)
			n += rlt__tstate(t) != RLT__T_DONE;
		atomic_store_explicit(&w->live, n, memory_order_relaxed);
	}
	unsigned live = 0;
	for (unsigned i = 0; i < rt->nworkers; i++)
		live += atomic_load_explicit(&rt->workers[i].live, memory_order_relaxed);
	/* (acquire: draining was read with acquire by our caller, the message,
	 * so the deadline stored before it is visible) */
	if (live == 0 || now >= atomic_load_explicit(&rt->drain_deadline, memory_order_acquire))
		rlt__runtime_stop(rt);
}

void rlt__runtime_stop(rlt__runtime *rt)
{
	atomic_store_explicit(&rt->stopping, true, memory_order_seq_cst);
	rlt__worker *self = rlt__worker_self();
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (&rt->workers[i] != self)
			rlt__worker_kick(&rt->workers[i]);
}

/* A worker thread leaves: cancel what its ring still has in flight. */
static void worker_quiesce(rlt__worker *w)
{
	if (w->loop_ready)
		w->loop.policy->cancel_all(&w->loop);
}

static void *worker_main(void *arg)
{
	rlt__worker *w = arg;
	rlt__runtime *rt = w->rt;
	if (rt->pin)
		pin_self(rt, w->index);
	int rc = rlt__worker_init(w, rt, w->index);
	pthread_mutex_lock(&rt->start_lock);
	w->init_rc = rc;
	rt->started++;
	pthread_cond_broadcast(&rt->start_cond);
	/* Wait until every worker is up (or start-up failed). */
	while (rt->started != rt->nworkers + 1 && !atomic_load(&rt->stopping))
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	pthread_mutex_unlock(&rt->start_lock);
	if (rc == 0 && !atomic_load(&rt->stopping))
		rlt__worker_loop(w);
	worker_quiesce(w);
	if (rc == 0) {
		rlt__altstack_leave(w->altstack);
		w->altstack = NULL;
	}
	rlt__worker_set_self(NULL);
	return NULL;
}

static void teardown(rlt__runtime *rt, unsigned nthreads, unsigned *dropped)
{
	/* Pool threads may still wake tasks of ours: let them finish. */
	rlt__runtime_jobs_drain(rt);
	/* Every worker thread has exited: this thread may touch everything. */
	unsigned n = 0;
	rlt_task *t;
	while ((t = rlt__global_q_pop_into(&rt->global, &rt->workers[0].lq, RLT__LQ_CAP / 2)) !=
	       NULL) {
		if (!t->owner) {
			rlt__task_free_unstarted(&rt->workers[0], t);
			n++;
		}
	}
	/* Every queue first: a started task in one worker's queue may belong
	 * to another, whose list frees it (found by the fault matrix under
	 * ASan: a use after free at shutdown with live tasks). */
	for (unsigned i = 0; i < nthreads; i++)
		n += rlt__worker_drop_queued(&rt->workers[i]);
	for (unsigned i = 0; i < nthreads; i++)
		n += rlt__worker_drop_tasks(&rt->workers[i]);
	for (unsigned i = 0; i < nthreads; i++)
		rlt__worker_fini(&rt->workers[i]);
	/* The slabs last: a task is spawned with a stack from its spawner's
	 * pool and may wait on another worker, whose timer heap (destroyed
	 * above) links the wait's timer on that stack (found by ASan and TSan
	 * once stacks were taken at spawn: worker 1's heap written after
	 * worker 0's slabs were unmapped). */
	for (unsigned i = 0; i < nthreads; i++)
		rlt__stack_pool_destroy(&rt->workers[i].stacks);
	if (dropped)
		*dropped = n;
}

rlt_runtime *rlt_runtime_self(void)
{
	rlt__worker *w = rlt__worker_self();
	return w ? w->rt : NULL;
}

unsigned rlt_runtime_workers(const rlt_runtime *rt)
{
	return rt ? rt->nworkers : 0;
}

const char *rlt_runtime_policy(const rlt_runtime *rt)
{
	return rt ? rt->policy.spec : NULL;
}

int rlt_worker_index(void)
{
	rlt__worker *w = rlt__worker_self();
	return w ? (int)w->index : -1;
}

/* ---- rlt_run: allocate, start the workers, run the main task, tear down ---- */

static void rt_free(rlt__runtime *rt)
{
	if (rt->workers_mem) {
		rlt__idle_destroy(&rt->idle);
		rlt__global_q_destroy(&rt->global);
		pthread_cond_destroy(&rt->start_cond);
		pthread_mutex_destroy(&rt->start_lock);
		rlt__free(rt->workers_mem);
	}
	rlt__free(rt->cpus);
	rlt__free(rt);
}

/* The runtime's memory and choices: settings, configuration, the loop
 * policy, the workers' structs. No thread and no ring yet. */
static int rt_alloc(const rlt_config *cfg, rlt__runtime **out)
{
	rlt__runtime *rt = rlt__calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	atomic_init(&rt->next_id, 1);
	atomic_init(&rt->stopping, false);
	rt->started_ns = rlt__mono_ns();
	int rc = rlt__settings_load(&rt->settings);
	if (rc == 0) {
		rlt__cancel_setup(rt->settings.v[RLT__CFG_CANCEL_FENCE] == 1);
		rc = resolve_config(cfg, &rt->settings, rt);
	}
	if (rc == 0)
		rc = rlt__policy_choose(cfg, &rt->settings, &rt->policy);
	/* Under io_uring-sqpoll the fixed window stays the default: adaptive
	 * spinning made test_chan's cross-worker hand-offs with microsecond
	 * timeouts 29x slower there (15.6 s against 0.54 s, 30 s of system
	 * time: every hand-off a park and a wake through the SQ thread). */
	if (rc == 0 && rt->policy.policy == &rlt__policy_sqpoll &&
	    !rlt__settings_given(&rt->settings, RLT__CFG_SPIN))
		rt->spin_fixed = true;
	if (rc == 0)
		rc = rlt__overflow_handler_install();
	if (rc < 0) {
		rt_free(rt);
		return rc;
	}
	/* Workers are cache-line aligned (their shared and private halves must
	 * not share a line); aligned by hand so that any allocator will do. */
	rt->workers_mem = rlt__calloc(1, rt->nworkers * sizeof(rlt__worker) + 63);
	if (!rt->workers_mem) {
		rt_free(rt);
		return -ENOMEM;
	}
	rt->workers = (rlt__worker *)(((uintptr_t)rt->workers_mem + 63) & ~(uintptr_t)63);
	rlt__global_q_init(&rt->global);
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);
	rc = rlt__idle_init(&rt->idle, rt->nworkers);
	if (rc < 0) {
		rlt__global_q_destroy(&rt->global);
		pthread_cond_destroy(&rt->start_cond);
		pthread_mutex_destroy(&rt->start_lock);
		rlt__free(rt->workers_mem);
		rt->workers_mem = NULL;
		rt_free(rt);
		return rc;
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rlt__worker *w = &rt->workers[i];
		w->rt = rt;
		w->index = i;
		rlt__local_q_init(&w->lq);
		atomic_init(&w->inbox, NULL);
		atomic_init(&w->zombies, NULL);
		atomic_init(&w->msgs, NULL);
		atomic_init(&w->parked, 0);
	}
	rc = rlt__trace_init(rt);
	if (rc < 0) {
		fprintf(stderr, "ringlet: RINGLET_TRACE: %s: no trace\n", strerror(-rc));
		rc = 0;
	}
	*out = rt;
	return 0;
}

/* Worker 0 on the calling thread, then the others, each setting up its own
 * ring on its own thread; returns once all are up (or one failed: then
 * stopping is set). *nthreads: the threads that exist, worker 0 included. */
static int rt_start(rlt__runtime *rt, unsigned *nthreads)
{
	if (rt->pin)
		pin_self(rt, 0);
	int rc = rlt__worker_init(&rt->workers[0], rt, 0);
	unsigned n = 1;
	pthread_mutex_lock(&rt->start_lock);
	rt->started = rc == 0 ? 1 : 0;
	pthread_mutex_unlock(&rt->start_lock);
	if (rc == 0) {
		for (; n < rt->nworkers; n++) {
			rlt__worker *w = &rt->workers[n];
			int e = pthread_create(&w->thread, NULL, worker_main, w);
			if (e) {
				rc = -e;
				break;
			}
		}
	}
	pthread_mutex_lock(&rt->start_lock);
	if (rc < 0)
		atomic_store(&rt->stopping, true);
	while (rt->started < n)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	for (unsigned i = 1; i < n && rc == 0; i++)
		if (rt->workers[i].init_rc < 0)
			rc = rt->workers[i].init_rc;
	if (rc < 0)
		atomic_store(&rt->stopping, true);
	else
		rt->started++; /* the go signal: started == nworkers + 1 */
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);
	*nthreads = n;
	return rc;
}

/* Run fn(arg) as the root task on worker 0 (this thread) until the runtime
 * stops. */
static int rt_run_main(rlt__runtime *rt, rlt_task_fn fn, void *arg)
{
	rlt__worker *w0 = &rt->workers[0];
	if (rt->slow_ns)
		rlt__dump_signal_install(rt);
	rlt_spawn_opts opts = {.name = "main"};
	rlt__control_start(rt, w0); /* reported; the run goes on without */
	rlt_task *root = rlt__task_create(rt, w0, fn, arg, &opts);
	if (!root) {
		rlt__runtime_stop(rt);
		return -errno;
	}
	rt->root = root;
	root->fn_name = "main"; /* what traces call it */
	root->worker = w0;
	rlt__sched_push(w0, root, false);
	rlt__worker_loop(w0);
	return 0;
}

/* RINGLET_STATS=1: the counters' table on stderr, as the run ends. */
static void print_stats(rlt__runtime *rt)
{
	rlt_stats snap;
	if (rlt_runtime_stats(rt, &snap) < 0)
		return;
	ssize_t n = rlt_stats_format(&snap, RLT_STATS_TEXT, NULL, 0);
	char *buf = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (buf) {
		rlt_stats_format(&snap, RLT_STATS_TEXT, buf, (size_t)n + 1);
		fputs(buf, stderr);
		free(buf);
	}
	rlt_stats_release(&snap);
}

/* Stop and join the other workers, collect the root's outcome (rc == 0:
 * it ran), free the tasks left, the rings, the stacks and the runtime. */
static int rt_teardown(rlt__runtime *rt, unsigned nthreads, int rc, void **result)
{
	rlt__worker *w0 = &rt->workers[0];
	rlt__runtime_stop(rt);
	rlt__watchdog_stop(rt);
	rlt__dump_signal_remove(rt);
	for (unsigned i = 1; i < nthreads; i++)
		pthread_join(rt->workers[i].thread, NULL);
	if (rc == 0 || w0->loop_ready)
		worker_quiesce(w0);
	if (rt->settings.v[RLT__CFG_STATS])
		print_stats(rt);
	rlt__trace_fini(rt);
	if (rc == 0) {
		/* What asyncio.run raises: the main task's failure (rlt_fail),
		 * or -ECANCELED if it ended cancelled. (A root that could not
		 * have a stack was never created: rt_run_main said -ENOMEM.) */
		rc = rlt__task_outcome(rt->root);
		if (result)
			*result = rt->root->result;
	}
	unsigned dropped = 0;
	teardown(rt, nthreads, &dropped);
	rlt__control_free(rt);
	if (w0->altstack)
		rlt__altstack_leave(w0->altstack);
	rlt__worker_set_self(NULL);
	if (dropped)
		fprintf(
		    stderr,
		    "ringlet: %u task%s still running when the root task returned %s abandoned\n",
		    dropped, dropped == 1 ? "" : "s", dropped == 1 ? "was" : "were");
	rt_free(rt);
	return rc;
}

int rlt_run(rlt_task_fn fn, void *arg, const rlt_config *cfg, void **result)
{
	if (!fn)
		return -EINVAL;
	if (rlt__worker_self())
		return -EBUSY;
	rlt__runtime *rt;
	int rc = rt_alloc(cfg, &rt);
	if (rc < 0)
		return rc;
	cpu_set_t saved_affinity;
	bool restore_affinity =
	    rt->pin && sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity) == 0;
	unsigned nthreads;
	rc = rt_start(rt, &nthreads);
	if (rc == 0) {
		int e = rlt__watchdog_start(rt);
		if (e < 0)
			fprintf(stderr,
				"ringlet: no watchdog thread (%s): stuck workers go unreported\n",
				strerror(-e));
	}
	if (rc == 0)
		rc = rt_run_main(rt, fn, arg);
	rc = rt_teardown(rt, nthreads, rc, result);
	if (restore_affinity)
		sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
	return rc;
}
