/*
 * rlt_run(): build a runtime around the calling thread (worker 0) and
 * workers-1 more threads, run the root task, tear everything down.
 *
 * Shutdown: when the root task returns, `stopping` is set and every worker
 * is kicked. Each leaves its loop at its next turn (a task that never
 * suspends delays this), cancels its own in-flight operations (only a ring's
 * own thread may submit to it) and waits for the kernel to let go of every
 * buffer, then exits. Worker 0 joins the threads, then frees whatever tasks
 * are left (reported on stderr), the rings, and the stacks.
 */
#include "ringlet/cancel.h"
#include "ringlet/runtime.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
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

/* Parse a size like "65536", "64k", "1m". 0 on error. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	return *end ? 0 : (size_t)v;
}

/* A 0/1 environment switch: 1, 0, or -1 when unset; -2 when malformed. */
static int env_bool(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return -1;
	if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true"))
		return 1;
	if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false"))
		return 0;
	fprintf(stderr, "ringlet: %s=%s is not 0 or 1\n", name, v);
	return -2;
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

static int resolve_config(const rlt_config *in, rlt__runtime *rt)
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
	const char *env = getenv("RINGLET_STACK_SIZE");
	if (env && *env) {
		size_t v = parse_size(env);
		if (!v || !rlt__stack_round(v)) {
			fprintf(stderr,
				"ringlet: RINGLET_STACK_SIZE=%s is not a size in [8k, 1g]\n", env);
			return -EINVAL;
		}
		cfg.stack_size = v;
	}
	env = getenv("RINGLET_WORKERS");
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (*end || v < 1 || v > RLT_MAX_WORKERS) {
			fprintf(stderr, "ringlet: RINGLET_WORKERS=%s is not a number in [1, %d]\n",
				env, RLT_MAX_WORKERS);
			return -EINVAL;
		}
		cfg.workers = (unsigned)v;
	}
	int b = env_bool("RINGLET_PIN");
	if (b == -2)
		return -EINVAL;
	if (b >= 0)
		cfg.pin = b;
	b = env_bool("RINGLET_STEAL");
	if (b == -2)
		return -EINVAL;
	if (b >= 0)
		cfg.no_steal = !b;

	long spin = cfg.spin_us == 0 ? RLT_DEFAULT_SPIN_US : cfg.spin_us < 0 ? 0 : cfg.spin_us;
	env = getenv("RINGLET_SPIN_US");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (*end || v < 0 || v > 1000000) {
			fprintf(stderr,
				"ringlet: RINGLET_SPIN_US=%s is not a number in [0, 1000000]\n",
				env);
			return -EINVAL;
		}
		spin = v;
	}
	if (spin > 1000000)
		return -EINVAL;
	rt->spin_ns = (uint64_t)spin * 1000u;

	b = env_bool("RINGLET_DEBUG");
	if (b == -2)
		return -EINVAL;
	if (b >= 0)
		cfg.debug = b;
	env = getenv("RINGLET_SLOW_MS");
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (*end || v < 1 || v > 3600000) {
			fprintf(stderr,
				"ringlet: RINGLET_SLOW_MS=%s is not a number in [1, 3600000]\n",
				env);
			return -EINVAL;
		}
		cfg.slow_ms = (unsigned)v;
	}
	rt->slow_ns = cfg.debug ? (uint64_t)(cfg.slow_ms ? cfg.slow_ms : 100) * 1000000u : 0;
	rt->debug = cfg.debug;

	long grace = cfg.shutdown_ms == 0 ? 1000 : cfg.shutdown_ms < 0 ? 0 : cfg.shutdown_ms;
	env = getenv("RINGLET_SHUTDOWN_MS");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (*end || v < 0 || v > 3600000) {
			fprintf(stderr,
				"ringlet: RINGLET_SHUTDOWN_MS=%s is not a number in [0, 3600000]\n",
				env);
			return -EINVAL;
		}
		grace = v;
	}
	rt->drain_ns = (uint64_t)grace * 1000000u;

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
			rlt__free(t);
			n++;
		}
	}
	for (unsigned i = 0; i < nthreads; i++)
		n += rlt__worker_drop_tasks(&rt->workers[i]);
	for (unsigned i = 0; i < nthreads; i++)
		rlt__worker_fini(&rt->workers[i]);
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

int rlt_run(rlt_task_fn fn, void *arg, const rlt_config *cfg, void **result)
{
	if (!fn)
		return -EINVAL;
	if (rlt__worker_self())
		return -EBUSY;
	rlt__cancel_setup();
	rlt__runtime *rt = rlt__calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	atomic_init(&rt->next_id, 1);
	atomic_init(&rt->stopping, false);
	int rc = resolve_config(cfg, rt);
	if (rc < 0)
		goto out_rt;
	rc = rlt__policy_choose(cfg, &rt->policy);
	if (rc < 0)
		goto out_rt;
	rc = rlt__overflow_handler_install();
	if (rc < 0)
		goto out_rt;
	/* Workers are cache-line aligned (their shared and private halves must
	 * not share a line); aligned by hand so that any allocator will do. */
	rt->workers_mem = rlt__calloc(1, rt->nworkers * sizeof(rlt__worker) + 63);
	if (!rt->workers_mem) {
		rc = -ENOMEM;
		goto out_rt;
	}
	rt->workers = (rlt__worker *)(((uintptr_t)rt->workers_mem + 63) & ~(uintptr_t)63);
	rlt__global_q_init(&rt->global);
	rc = rlt__idle_init(&rt->idle, rt->nworkers);
	if (rc < 0)
		goto out_workers;
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);

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

	cpu_set_t saved_affinity;
	bool restore_affinity =
	    rt->pin && sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity) == 0;
	if (rt->pin)
		pin_self(rt, 0);
	rlt__worker *w0 = &rt->workers[0];
	rc = rlt__worker_init(w0, rt, 0);

	/* The other workers, each initialising its own ring on its thread. */
	unsigned nthreads = 1;
	pthread_mutex_lock(&rt->start_lock);
	rt->started = rc == 0 ? 1 : 0;
	pthread_mutex_unlock(&rt->start_lock);
	if (rc == 0) {
		for (; nthreads < rt->nworkers; nthreads++) {
			rlt__worker *w = &rt->workers[nthreads];
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
	while (rt->started < nthreads)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	for (unsigned i = 1; i < nthreads && rc == 0; i++)
		if (rt->workers[i].init_rc < 0)
			rc = rt->workers[i].init_rc;
	if (rc < 0)
		atomic_store(&rt->stopping, true);
	else
		rt->started++; /* the go signal: started == nworkers + 1 */
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);

	unsigned dropped = 0;
	if (rc == 0 && rt->slow_ns)
		rlt__dump_signal_install(rt);
	if (rc == 0) {
		rlt_spawn_opts opts = {.name = "main"};
		rlt_task *root = rlt__task_create(rt, rlt__worker_self(), fn, arg, &opts);
		if (!root) {
			rc = -errno;
			rlt__runtime_stop(rt);
		} else {
			rt->root = root;
			root->worker = w0;
			rlt__sched_push(w0, root, false);
			rlt__worker_loop(w0);
		}
	}
	/* Stop and collect the other workers. */
	rlt__runtime_stop(rt);
	rlt__dump_signal_remove(rt);
	for (unsigned i = 1; i < nthreads; i++)
		pthread_join(rt->workers[i].thread, NULL);
	if (rc == 0 || w0->loop_ready)
		worker_quiesce(w0);
	if (rc == 0) {
		rlt_task *root = rt->root;
		if (root->start_err)
			rc = root->start_err;
		else if (result)
			*result = root->result;
	}
	teardown(rt, nthreads, &dropped);
	if (w0->altstack)
		rlt__altstack_leave(w0->altstack);
	rlt__worker_set_self(NULL);
	if (dropped)
		fprintf(
		    stderr,
		    "ringlet: %u task%s still running when the root task returned %s abandoned\n",
		    dropped, dropped == 1 ? "" : "s", dropped == 1 ? "was" : "were");
	if (restore_affinity)
		sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
	pthread_cond_destroy(&rt->start_cond);
	pthread_mutex_destroy(&rt->start_lock);

	rlt__idle_destroy(&rt->idle);
out_workers:
	rlt__global_q_destroy(&rt->global);
	rlt__free(rt->workers_mem);
out_rt:
	rlt__free(rt->cpus);
	rlt__free(rt);
	return rc;
}
