/*
 * The watchdog: one thread per runtime that looks at every worker each
 * ~100 ms, so a task that blocks its worker (a plain sleep(2), a loop that
 * never yields) is reported while it does, by name, instead of never (or,
 * in debug mode, only once it is over).
 *
 * Each worker bumps its turn before and after running a task (odd while
 * one runs; two plain-cost release stores per switch, on a line only it
 * writes). A worker whose turn is the same odd number at two checks has
 * been in the same task since the first: once that lasts RINGLET_SLOW_MS,
 * the watchdog prints the task's name, id and how long, then keeps the
 * worker's runnable tasks moving: the tasks in its stealable queue are
 * taken by the other workers, which it wakes (a worker queues a single
 * runnable task without waking anyone, as it expects to run it next), and
 * the tasks other threads woke or spawned into its inbox go to the global
 * queue (rlt__worker_move_inbox, sched/worker.c). What still waits for the
 * stuck worker: its pinned tasks and LIFO slot, inbox tasks whose wait had
 * a timer (in its heap), its timers and the completions on its own ring
 * (docs/RELIABILITY.md).
 *
 * The SIGQUIT dump (debug mode) goes through here too: the handler only
 * raises a flag; the watchdog prints the header and every worker's running
 * task, in worker order, then asks the workers for their task lists. So a
 * stuck worker's running task shows, even though its list cannot.
 *
 * The watchdog reads a task's name and id only while that task holds its
 * worker, and the worker does not reap it until the read is over (the peek
 * flag, running_task()).
 */
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WATCH_PERIOD_NS 100000000ull

typedef struct seen {
	uint32_t turn;
	uint64_t since; /* when the watchdog first saw this turn */
	bool reported;
} seen;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The task holding w at turn, copied out; false if w has moved on. The
 * peek flag keeps the task from being reaped while we read it: w ends a
 * turn with a store of turn + 2 and then a load of wd_peek; we store
 * wd_peek and then load turn, with a full barrier on every CPU between
 * (rlt__cancel_fence: membarrier). So if we still see turn, w will see the
 * flag and wait for us; its wait ends with an acquire of our release. */
static bool peek_begin(rlt__worker *w, uint32_t turn)
{
	atomic_store_explicit(&w->wd_peek, 1, memory_order_seq_cst);
	rlt__cancel_fence();
	return atomic_load_explicit(&w->turn, memory_order_seq_cst) == turn;
}

static void peek_end(rlt__worker *w)
{
	atomic_store_explicit(&w->wd_peek, 0, memory_order_release);
}

static bool running_task(rlt__worker *w, uint32_t turn, char *name, size_t len, uint64_t *id)
{
	bool ok = false;
	if (peek_begin(w, turn)) {
		rlt_task *t = atomic_load_explicit(&w->running, memory_order_acquire);
		if (t) {
			snprintf(name, len, "%s", rlt__task_name(t));
			*id = t->id;
			ok = true;
		}
	}
	peek_end(w);
	return ok;
}

/* The stuck worker's runnable tasks. Its stealable queue: wake an idle
 * worker to take them. Its inbox (tasks other threads woke or spawned onto
 * it): moved to the global queue here, while the peek holds the worker
 * inside the turn it is stuck in (rlt__worker_move_inbox says why that
 * matters, and which tasks stay). */
static unsigned move_runnable(rlt__runtime *rt, rlt__worker *w, uint32_t turn)
{
	if (!rt->steal || rt->nworkers < 2)
		return 0;
	unsigned n = 0;
	if (atomic_load_explicit(&w->inbox, memory_order_relaxed)) {
		if (peek_begin(w, turn))
			n += rlt__worker_move_inbox(w); /* wakes a worker for them */
		peek_end(w);
	}
	unsigned q = rlt__local_q_len(&w->lq);
	if (q) {
		int i = rlt__idle_pick(&rt->idle); /* a sleeper: never the stuck one */
		if (i >= 0)
			rlt__worker_kick(&rt->workers[i]);
	}
	return n + q;
}

static void print_dump_header(rlt__runtime *rt, const seen *s, uint64_t now)
{
	flockfile(stderr);
	fprintf(stderr, "ringlet: SIGQUIT: tasks of %u worker%s, policy %s\n", rt->nworkers,
		rt->nworkers == 1 ? "" : "s", rt->policy.spec);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rlt__worker *w = &rt->workers[i];
		uint32_t turn = atomic_load_explicit(&w->turn, memory_order_acquire);
		char name[64];
		uint64_t id;
		if ((turn & 1) && running_task(w, turn, name, sizeof(name), &id)) {
			uint64_t held =
			    s[i].turn == turn && now > s[i].since ? now - s[i].since : 0;
			fprintf(stderr,
				"worker %u: running \"%s\" (id %llu), holding it %s%.0f ms\n", i,
				name, (unsigned long long)id, held ? "for at least " : "for ",
				(double)held / 1e6);
		} else {
			fprintf(stderr, "worker %u: in its loop\n", i);
		}
	}
	funlockfile(stderr);
}

static void check(rlt__runtime *rt, seen *s)
{
	uint64_t now = mono_ns();
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rlt__worker *w = &rt->workers[i];
		uint32_t turn = atomic_load_explicit(&w->turn, memory_order_acquire);
		if (turn != s[i].turn || !(turn & 1)) {
			if (s[i].reported)
				fprintf(stderr, "ringlet: worker %u runs again after %.0f ms\n", i,
					(double)(now - s[i].since) / 1e6);
			s[i] = (seen){.turn = turn, .since = now};
			continue;
		}
		uint64_t held = now - s[i].since;
		if (held < rt->watch_ns)
			continue;
		unsigned moved = move_runnable(rt, w, turn);
		if (s[i].reported)
			continue;
		char name[64];
		uint64_t id;
		if (!running_task(w, turn, name, sizeof(name), &id))
			continue;
		s[i].reported = true;
		fprintf(
		    stderr,
		    "ringlet: worker %u stuck for %.0f ms in task \"%s\" (id %llu), which does not "
		    "suspend (RINGLET_SLOW_MS %llu): a blocking call? run it with "
		    "rlt_run_blocking(); %u runnable task%s handed to the other workers\n",
		    i, (double)held / 1e6, name, (unsigned long long)id,
		    (unsigned long long)(rt->watch_ns / 1000000u), moved, moved == 1 ? "" : "s");
	}
	if (atomic_exchange_explicit(&rt->dump_asked, false, memory_order_acq_rel)) {
		print_dump_header(rt, s, now);
		/* Now the workers' own lists, after the header. */
		atomic_fetch_add_explicit(&rt->dump_gen, 1, memory_order_release);
		atomic_fetch_or_explicit(&rt->attn, RLT__ATTN_DUMP, memory_order_release);
		for (unsigned i = 0; i < rt->nworkers; i++) {
			rlt__worker *w = &rt->workers[i];
			if (w->loop_ready)
				w->loop.policy->wake(&w->loop, NULL);
		}
	}
}

static void *watchdog_main(void *arg)
{
	rlt__runtime *rt = arg;
	seen *s = rlt__calloc(rt->nworkers, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_lock(&rt->wd_lock);
	while (!rt->wd_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)WATCH_PERIOD_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&rt->wd_cond, &rt->wd_lock, &ts);
		if (rt->wd_stop)
			break;
		pthread_mutex_unlock(&rt->wd_lock);
		check(rt, s);
		pthread_mutex_lock(&rt->wd_lock);
	}
	pthread_mutex_unlock(&rt->wd_lock);
	rlt__free(s);
	return NULL;
}

int rlt__watchdog_start(rlt__runtime *rt)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&rt->wd_lock, NULL);
	pthread_cond_init(&rt->wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	rt->wd_stop = false;
	int e = pthread_create(&rt->watchdog, NULL, watchdog_main, rt);
	if (e) {
		pthread_cond_destroy(&rt->wd_cond);
		pthread_mutex_destroy(&rt->wd_lock);
		return -e;
	}
	rt->watchdog_on = true;
	return 0;
}

void rlt__watchdog_stop(rlt__runtime *rt)
{
	if (!rt->watchdog_on)
		return;
	pthread_mutex_lock(&rt->wd_lock);
	rt->wd_stop = true;
	pthread_cond_signal(&rt->wd_cond);
	pthread_mutex_unlock(&rt->wd_lock);
	pthread_join(rt->watchdog, NULL);
	pthread_cond_destroy(&rt->wd_cond);
	pthread_mutex_destroy(&rt->wd_lock);
	rt->watchdog_on = false;
}
