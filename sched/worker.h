/*
 * A worker: one thread, one io_uring, one local run queue, one timer heap,
 * one stack pool. What other threads may touch is marked; the rest belongs
 * to the worker's own thread.
 */
#ifndef RLT_SCHED_WORKER_H
#define RLT_SCHED_WORKER_H

#include "runtime/coro.h"
#include "runtime/stack.h"
#include "runtime/task.h"
#include "sched/idle.h"
#include "sched/runq.h"
#include "sched/spin.h"
#include "sched/stats.h"
#include "sched/trace.h"
#include "sched/timer.h"

#include "io/policy.h"
#include "sched/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct rlt__runtime rlt__runtime;

/* An empty pipe kept for rlt_sendfile (io/sendfile.c). */
typedef struct rlt__pipe {
	int r, w;
	unsigned cap; /* bytes it holds (F_GETPIPE_SZ) */
} rlt__pipe;
#define RLT__PIPE_CACHE 4

/* rlt__runtime.observe */
#define RLT__OBS_TIMING 1u
#define RLT__OBS_TRACE	2u

/* rlt__runtime.attn */
#define RLT__ATTN_DUMP	1u /* SIGQUIT asked for a dump (debug mode) */
#define RLT__ATTN_DRAIN 2u /* the root returned: shutdown drain */

typedef struct rlt__worker {
	/* Shared with other threads (thieves, wakers). */
	rlt__local_q lq;	     /* stealable runnable tasks */
	_Atomic(rlt_task *) inbox;   /* remote wakes/spawns: Treiber stack via ->next */
	_Atomic(rlt_task *) zombies; /* tasks of ours freed elsewhere: unlink+free */
	_Atomic(rlt__msg *) msgs;    /* messages for the loop (rlt__worker_post) */
	atomic_int parked;	     /* 1 while (about to be) asleep in the kernel */
	/* Tasks pushed into inbox by threads that are not this runtime's
	 * workers (pool threads, foreign wakers): their only shared counter. */
	_Atomic uint64_t remote_foreign;
	/* Tasks the watchdog took out of inbox while this worker was stuck
	 * (rlt__worker_move_inbox): drained, but not by us. */
	_Atomic uint64_t remote_moved;
	/* For the watchdog (sched/watchdog.c), written by the worker only:
	 * turn is odd while a task runs (bumped with a release store before
	 * and after each switch), running is that task. A turn that stays the
	 * same odd number across the watchdog's checks is a stuck worker. */
	_Atomic uint32_t turn;
	_Atomic(rlt_task *) running;
	/* Set by the watchdog while it reads the running task's name: the
	 * worker, having ended the turn, waits for it to clear before the task
	 * can be reaped (sched/watchdog.c). */
	atomic_int wd_peek;
	/* The loop policy's instance: its wake may be called from any thread
	 * (reading what init set up); the rest is the worker's. */
	rlt_loop loop;

	/* The worker's own. */
	_Alignas(64) rlt__runtime *rt;
	rlt__tring *trace; /* RINGLET_TRACE's ring (sched/trace.h), or NULL */
	unsigned index;
	rlt__coro sched;   /* the thread's own stack: where the loop runs */
	rlt_task *current; /* running task, NULL in the loop */
	rlt_task *lifo;	   /* the task woken last by a running task: runs next */
	unsigned lifo_runs;
	rlt_task *pin_head,
	    *pin_tail; /* private FIFO, never stolen: pinned tasks (all with no_steal) */
	/* Written by the owner only (relaxed load and store, a plain add),
	 * read by rlt_runtime_stats. */
	_Atomic uint32_t pin_len;
	uint32_t tick;
	uint32_t rng;		  /* xorshift state for victim order */
	uint64_t id_next, id_end; /* task ids reserved by this worker */
	bool searching;
	rlt__spinpol spin; /* adaptive spinning (sched/spin.h) */
	uint32_t parks;	   /* parks since the last measured one (PARK_MEASURE_EVERY) */
	uint64_t idles;	   /* times the worker ran dry (spun or parked) */
	uint64_t spins;	   /* of which it spun first */
	uint64_t woke_ns;  /* when the last sleep in the kernel ended (bench_wake) */
	rlt__spineco eco;  /* spin or not, by measured CPU per run (sched/spin.h) */
	uint64_t eco_t0, eco_cpu0, eco_spun; /* the epoch's start, thread CPU then, ns spun */
	uint32_t eco_turn0;		     /* w->turn at the epoch's start */

	rlt__timer_heap timers;
	rlt__stack_pool stacks;
	uint64_t now; /* cached CLOCK_MONOTONIC of the current loop turn */

	bool loop_ready;	/* loop.policy->init succeeded */
	unsigned dump_seen;	/* the SIGQUIT dump generation last printed */
	rlt__msg drain_msg;	/* shutdown: cancel the tasks we own */
	uint64_t drain_counted; /* when we last counted our live tasks */
	atomic_uint live;	/* shutdown: our tasks not finished, as last counted */

	rlt_task *all;	      /* tasks whose owner is this worker, not yet freed */
	rlt_task *task_cache; /* freed task structs kept for reuse, via ->next */
	unsigned task_cache_len;
	rlt__pipe pipes[RLT__PIPE_CACHE]; /* rlt_sendfile's, empty, for reuse */
	unsigned npipes;
	/* Our tasks' I/O waits by fd (io/fdwait.h): others read, for rlt_close. */
	rlt__fdwait fdwaits;
	void *altstack;
	pthread_t thread;
	int init_rc;
	/* Counters (sched/stats.h): written by this worker only, read racily
	 * by rlt_runtime_stats. Their own lines: the hot ones first. */
	_Alignas(64) rlt__wstats st;
} rlt__worker;

struct rlt__runtime {
	rlt__worker *workers; /* 64-byte aligned, inside workers_mem */
	void *workers_mem;
	unsigned nworkers;
	size_t stack_size;
	unsigned ring_entries;
	unsigned stack_cache;
	bool stack_guard;
	bool steal;
	bool pin;
	uint64_t spin_ns;      /* look for work this long before parking (adaptive: at most) */
	bool spin_fixed;       /* RINGLET_SPIN=fixed: always the whole spin_ns */
	atomic_uint nspinning; /* workers spinning now (adaptive) */
	uint64_t slow_ns;      /* debug: report tasks running longer (0: off) */
	/* RLT__OBS_* bits: what every task switch must also do, read with one
	 * relaxed load (a plain one on x86-64) and one branch. TIMING: time
	 * each task run (RINGLET_TIMING; debug's slow_ns; or the console's
	 * first `top`, if timing_allowed). TRACE: record runs in the trace. */
	atomic_uint observe;
	bool timing_allowed;
	_Atomic uint64_t spawned_foreign; /* spawns from threads not ours */
	uint64_t started_ns;		  /* when rlt_run started (rlt_runtime_stats) */
	rlt__policy_choice policy;
	rlt__settings settings; /* the RINGLET_* variables, read by rlt_run */
	atomic_bool stopping;
	atomic_uint attn;     /* RLT__ATTN_* once asked: the loop looks at dump_gen
			       * and draining only when non-zero */
	atomic_uint dump_gen; /* bumped by SIGQUIT in debug mode */
	atomic_bool draining; /* the root returned: the others are cancelled */
	uint64_t drain_ns;    /* how long they get (0: none) */
	_Atomic uint64_t drain_deadline;
	atomic_uint_fast64_t next_id;
	rlt_task *root;
	rlt__global_q global;
	rlt__idle idle;
	/* Start-up: workers 1..n-1 report their init here. */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned started;
	/* Pool jobs submitted by this runtime's tasks and not finished: the
	 * runtime outlives them (runtime/executor.c). */
	atomic_uint jobs_waiting;
	int *cpus; /* allowed CPUs, for pinning */
	unsigned ncpus;
	/* The watchdog (sched/watchdog.c): a thread that looks at each
	 * worker's turn every ~100 ms. */
	uint64_t watch_ns;	/* report a worker stuck this long (RINGLET_SLOW_MS) */
	atomic_bool dump_asked; /* SIGQUIT: the watchdog prints the running tasks first */
	pthread_t watchdog;
	bool watchdog_on;
	pthread_mutex_t wd_lock;
	pthread_cond_t wd_cond;
	bool wd_stop;
	struct rlt__control *control; /* RINGLET_CONTROL (runtime/control.c) */
	struct rlt__trace *trace;     /* RINGLET_TRACE (sched/trace.c) */
};

/* Start and stop the watchdog thread (sched/run.c, around the workers'
 * life). Start returns 0 or a negative errno (the runtime runs without). */
int rlt__watchdog_start(rlt__runtime *rt);
void rlt__watchdog_stop(rlt__runtime *rt);

/* The worker running on this thread, or NULL. Not inlined, as
 * rlt__task_self (sched/sched.h). */
rlt__worker *rlt__worker_self(void);
void rlt__worker_set_self(rlt__worker *w);

int rlt__worker_init(rlt__worker *w, rlt__runtime *rt, unsigned index);
/* Free what w holds but its stack pool, which the caller destroys once
 * every worker is finished (timers on stacks of other workers' slabs). */
void rlt__worker_fini(rlt__worker *w);
/* Close the pipes rlt_sendfile kept on w (io/sendfile.c). */
void rlt__sendfile_worker_fini(rlt__worker *w);
/* Run the loop until the runtime stops. */
void rlt__worker_loop(rlt__worker *w);
/* Abandon every task left on w (shutdown, all threads stopped): first
 * every worker's queues (drop_queued), then every worker's tasks
 * (drop_tasks); each returns how many had not finished. */
unsigned rlt__worker_drop_queued(rlt__worker *w);
unsigned rlt__worker_drop_tasks(rlt__worker *w);

/* Queue a runnable task on its worker w (the calling thread is w's).
 * lifo: the caller is a task handing off to t (run t next). */
void rlt__sched_push(rlt__worker *w, rlt_task *t, bool lifo);
/* Hand t to worker w from any thread (inbox + wake-up). */
void rlt__sched_push_remote(rlt__worker *w, rlt_task *t);
/* The watchdog, while it holds w's peek at a turn w is stuck in (so w is
 * inside one task run, not in its loop): move the tasks in w's inbox that
 * may run elsewhere to the global queue, and wake a worker for them.
 * Returns how many moved (sched/worker.c says which stay). */
unsigned rlt__worker_move_inbox(rlt__worker *w);
/* Queue a new task from a thread that is not a worker (global queue). */
void rlt__sched_inject(rlt__runtime *rt, rlt_task *t);
/* Wake parked worker w (it was parked, or about to be). */
void rlt__worker_kick(rlt__worker *w);
/* Wait until no pool job of rt's tasks is running (teardown). */
void rlt__runtime_jobs_drain(rlt__runtime *rt);
/* Debug mode's SIGQUIT dump (runtime/introspect.c). */
void rlt__dump_signal_install(rlt__runtime *rt);
void rlt__dump_signal_remove(rlt__runtime *rt);
void rlt__dump_worker(rlt__worker *w, unsigned gen);
/* One live task, as the console lists it (runtime/introspect.c). */
typedef struct rlt__task_info {
	uint64_t id;
	uint64_t age_ns;
	uint64_t held_ns; /* time it ran (0 unless task timing is on) */
	unsigned worker;  /* its owner: the worker that first ran it */
	int state;	  /* RLT_TASK_* */
	const char *state_name;
	char what[48]; /* what it waits for */
	char name[RLT_TASK_NAME_MAX + 1];
} rlt__task_info;
/* Every live task of the caller's runtime, each listed by its owner on its
 * thread (suspends the calling task until all have answered). *out:
 * rlt__free it. 0, -EPERM (not in a task), -ENOMEM. */
int rlt__task_infos(rlt__task_info **out, size_t *count);
/* The console's socket (RINGLET_CONTROL, runtime/control.c): open it and
 * queue its task on w (before the root task); 0, or a negative errno
 * (reported; the runtime runs without). Free closes what is left. */
int rlt__control_start(rlt__runtime *rt, rlt__worker *w);
void rlt__control_free(rlt__runtime *rt);
/* The root task returned: cancel the other tasks and let them finish
 * (rt->drain_ns), or stop at once. */
void rlt__runtime_root_done(rlt__runtime *rt);
/* While draining: recount, and stop once nothing is left or time is up. */
void rlt__runtime_drain_check(rlt__worker *w);
/* Make every worker leave its loop. */
void rlt__runtime_stop(rlt__runtime *rt);

/* The worker has a task queued to run after the current one (its own
 * queue, its pinned list, the hand-off slot). On its own thread only. */
static inline bool rlt__worker_has_local_work(rlt__worker *w)
{
	return w->lifo || atomic_load_explicit(&w->pin_len, memory_order_relaxed) ||
	       rlt__local_q_len(&w->lq);
}

#endif
