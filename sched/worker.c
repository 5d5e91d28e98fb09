/*
 * Workers: the loop, queues of runnable tasks, stealing, parking, wakes.
 *
 * One turn of the loop:
 *   1. run a batch of runnable tasks (at most what was runnable when the
 *      turn began, capped at 128): the LIFO slot, then pinned and local
 *      tasks, with a look at the global queue every 61 tasks;
 *   2. move remotely woken tasks from the inbox to the queues, free tasks
 *      that other threads released, fire due timers;
 *   3. if there is local work: submit and reap I/O without blocking (one
 *      io_uring_enter at most, skipped when the kernel has nothing for us);
 *      otherwise take from the global queue, then steal, then park.
 *
 * Where a runnable task waits:
 *
 *        other threads                 this worker's thread
 *   ------------------------      --------------------------------------
 *   wake/spawn -> inbox (CAS) ---> drain ---+
 *   inject ----> global queue --------------+--> lifo slot  (owner only)
 *                     ^                     +--> pinned FIFO (owner only)
 *                     | overflow (half)     +--> local queue (owner pushes,
 *                     +------------------------   thieves take half)
 *
 * Parking (see sched/idle.h for who searches and who is woken):
 *   worker: park in idle -> parked = 1 -> re-check inbox, global, own queue
 *           -> sleep in io_uring_enter (until a CQE, a MSG_RING, the eventfd,
 *           or the next timer) -> parked = 0 -> leave idle.
 *   remote waker: push on inbox (seq_cst), then if exchange(parked, 0) was 1,
 *           kick: IORING_OP_MSG_RING from the waker's own ring if it is a
 *           worker, else a write to the target's eventfd.
 * The store of `parked` and the re-check on one side, the push and the
 * exchange on the other, are all seq_cst: one side always sees the other,
 * so no wake-up is lost. A notifier (new work, idle workers) takes a sleeper
 * off the idle list under its lock and kicks it unconditionally; the kick
 * stays pending in the ring (or eventfd) even if it arrives before the sleep.
 */
#include "sched/worker.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/cpu.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Tasks run per loop turn before the loop looks at completions and timers
 * again: tokio's coop budget (128). At ~100-200 ns a switch, a turn stays
 * well under the 50 us timer slack, so completions are not held back. */
#define TURN_BUDGET 128u
/* Every 61st pick looks at the global queue first, so a worker with a full
 * local queue cannot starve what others injected (tokio's
 * global_queue_interval; prime, so it does not beat with the turn budget). */
#define GLOBAL_EVERY 61u
/* Hand-offs through the LIFO slot in a row (a task waking another runs it
 * next, for message-passing locality): two tasks ping-ponging through it
 * would otherwise keep every other runnable task of the worker waiting
 * for as long as they talk. The bound is tokio's MAX_LIFO_POLLS_PER_TICK
 * (3), for the same reason: a producer-consumer pair keeps its cache-warm
 * hand-offs (a channel message needs two), and the fourth goes to the back
 * of the queue. */
#define LIFO_MAX_RUNS 3u

/* The adaptive spin's policy (sched/spin.h) keeps a moving average of what
 * a sleep costs this thread in CPU: it times one sleep in this many with
 * the thread CPU clock (two ~340 ns system calls on this VM, so ~10 ns a
 * sleep at 64; at 16 it was ~40 ns, close to 1% of a small echo's CPU). */
#define PARK_MEASURE_EVERY 64u

static __thread rlt__worker *tls_worker;

__attribute__((noinline)) rlt__worker *rlt__worker_self(void)
{
	rlt__worker *w = tls_worker;
	__asm__ volatile("" ::: "memory");
	return w;
}

__attribute__((noinline)) rlt_task *rlt__task_self(void)
{
	rlt__worker *w = tls_worker;
	return w ? w->current : NULL;
}

void rlt__worker_set_self(rlt__worker *w)
{
	tls_worker = w;
}

rlt__iostats *rlt__loop_stats(rlt_loop *loop, rlt__iostats *sink)
{
	rlt__worker *w = loop ? loop->runtime_ : NULL;
	return w ? &w->st.io : sink;
}

/* Declared in io/policy.h. */
static rlt__settings loop_defaults;
static pthread_once_t loop_defaults_once = PTHREAD_ONCE_INIT;

static void loop_defaults_init(void)
{
	rlt__settings_defaults(&loop_defaults);
}

const rlt__settings *rlt__loop_settings(const rlt_loop *loop)
{
	const rlt__worker *w = loop ? loop->runtime_ : NULL;
	if (w)
		return &w->rt->settings;
	pthread_once(&loop_defaults_once, loop_defaults_init);
	return &loop_defaults;
}

rlt_loop *rlt__loop_peer(rlt_loop *loop, unsigned index)
{
	rlt__worker *w = loop ? loop->runtime_ : NULL;
	if (!w || index >= w->rt->nworkers)
		return NULL;
	rlt__worker *peer = &w->rt->workers[index];
	return peer->loop_ready ? &peer->loop : NULL;
}

bool rlt__current_stack_info(const void **lo, size_t *size, const char **name)
{
	rlt__worker *w = tls_worker;
	if (!w || !w->current)
		return false;
	*lo = w->current->stack.lo;
	*size = w->current->stack.size;
	*name = rlt__task_name(w->current);
	return true;
}

int rlt__worker_init(rlt__worker *w, rlt__runtime *rt, unsigned index)
{
	/* Called on the worker's own thread: the ring's single issuer. */
	w->rt = rt;
	w->index = index;
	w->rng = 0x9e3779b9u * (index + 1);
	rlt__timer_heap_init(&w->timers);
	rlt__spinpol_init(&w->spin, rt->spin_ns);
	rlt__spineco_init(&w->eco);
	rlt__stack_pool_init(&w->stacks, rt->stack_cache, rt->stack_guard);
	w->loop.state = NULL;
	w->loop.policy = rt->policy.policy;
	w->loop.options = rt->policy.options;
	w->loop.index = index;
	w->loop.nworkers = rt->nworkers;
	w->loop.queue_depth = rt->ring_entries;
	w->loop.runtime_ = w;
	int rc = w->loop.policy->init(&w->loop);
	if (rc < 0)
		return rc;
	w->loop_ready = true;
	rc = rlt__altstack_enter(&w->altstack);
	if (rc < 0)
		return rc;
	rlt__coro_init_thread(&w->sched);
	w->now = rlt__mono_ns();
	tls_worker = w;
	return 0;
}

void rlt__worker_fini(rlt__worker *w)
{
	/* In-flight operations were cancelled by the owning thread
	 * (cancel_all); this may run on another thread. */
	if (w->loop_ready)
		w->loop.policy->fini(&w->loop);
	w->loop_ready = false;
	rlt__timer_heap_destroy(&w->timers);
	/* (The stack pool is destroyed by the caller once every worker is
	 * finished: this heap may hold the timer of a task whose stack came
	 * from another worker's slab.) */
	rlt__task_cache_drain(w);
	rlt__sendfile_worker_fini(w);
	rlt__fdwait_free(&w->fdwaits);
	if (tls_worker == w) {
		rlt__altstack_leave(w->altstack);
		tls_worker = NULL;
	}
	w->altstack = NULL;
}

/* ---- suspend ---- */

void rlt__task_suspend(rlt_task *t)
{
	rlt__worker *w = t->worker;
	rlt__tstate_set(t, RLT__T_WAITING);
	rlt__coro_switch(&t->coro, &w->sched, 0);
}

/* ---- wait timers (sched/sched.h's rules) ---- */

int rlt__wait_timer_arm(rlt_task *t, rlt__timer *tm, rlt__timer_fn fire, uint64_t deadline)
{
	rlt__timer_init(tm, fire);
	tm->deadline = deadline;
	int rc = rlt__timer_add(&t->worker->timers, tm);
	if (rc < 0)
		return rc;
	t->wait_timer = tm;
	return 0;
}

void rlt__wait_timer_del(rlt_task *t, rlt__timer *tm)
{
	rlt__timer_del(&t->worker->timers, tm);
}

rlt__runtime *rlt__runtime_job_begin(rlt_task *t)
{
	rlt__runtime *rt = t->worker->rt;
	atomic_fetch_add_explicit(&rt->jobs_waiting, 1, memory_order_relaxed);
	return rt;
}

void rlt__runtime_job_end(rlt__runtime *rt)
{
	/* release: the runtime's teardown (rlt__runtime_jobs_drain) must see
	 * everything the job did to the runtime's tasks. */
	atomic_fetch_sub_explicit(&rt->jobs_waiting, 1, memory_order_release);
}

void rlt__runtime_jobs_drain(rlt__runtime *rt)
{
	while (atomic_load_explicit(&rt->jobs_waiting, memory_order_acquire) > 0) {
		struct timespec ts = {0, 100 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* ---- queues ---- */

static inline bool stealing(const rlt__runtime *rt)
{
	return rt->steal && rt->nworkers > 1;
}

/* New work exists somewhere: wake one parked worker if nobody is looking. */
static void notify_idle(rlt__runtime *rt)
{
	if (rt->nworkers == 1 || !rlt__idle_should_notify(&rt->idle))
		return;
	int i = rlt__idle_pick(&rt->idle);
	if (i >= 0)
		rlt__worker_kick(&rt->workers[i]);
}

static inline uint32_t pin_len(rlt__worker *w)
{
	return atomic_load_explicit(&w->pin_len, memory_order_relaxed);
}

static inline void pin_push(rlt__worker *w, rlt_task *t)
{
	t->next = NULL;
	if (w->pin_tail)
		w->pin_tail->next = t;
	else
		w->pin_head = t;
	w->pin_tail = t;
	atomic_store_explicit(&w->pin_len, pin_len(w) + 1, memory_order_relaxed);
}

static inline rlt_task *pin_pop(rlt__worker *w)
{
	rlt_task *t = w->pin_head;
	if (t) {
		w->pin_head = t->next;
		if (!w->pin_head)
			w->pin_tail = NULL;
		atomic_store_explicit(&w->pin_len, pin_len(w) - 1, memory_order_relaxed);
	}
	return t;
}

void rlt__sched_push(rlt__worker *w, rlt_task *t, bool lifo)
{
	rlt__tstate_set(t, RLT__T_RUNNABLE);
	if (lifo) {
		/* The LIFO slot is the owner's alone: fine for pinned tasks too. */
		rlt_task *prev = w->lifo;
		w->lifo = t;
		if (!prev)
			return;
		t = prev;
	}
	/* Pinned tasks, and every task when nobody can steal (stealing off,
	 * or a single worker), stay in the worker's private FIFO: no atomics,
	 * and no overflow into the global queue, where any worker takes them. */
	if ((t->flags & RLT__TF_PINNED) || !stealing(w->rt)) {
		pin_push(w, t);
		return;
	}
	rlt__local_q_push(&w->lq, t, &w->rt->global);
	/* Wake an idle worker only when this one has more queued than it will
	 * run next: a spawn followed by a join, or a single wake-up, would
	 * otherwise cost a cross-thread kick for a task that runs here anyway. */
	if (rlt__local_q_len(&w->lq) > 1)
		notify_idle(w->rt);
}

static inline bool has_local_work(rlt__worker *w)
{
	return rlt__worker_has_local_work(w);
}
/* On t's own worker: disarm its wait timer, queue it. */
static inline void wake_local(rlt__worker *w, rlt_task *t)
{
	/* No longer waiting here: a cancel message must not touch its wait
	 * record any more (runtime/cancel.h). Before t can be queued. */
	atomic_store_explicit(&t->wait_on, NULL, memory_order_relaxed);
	rlt__wait_timer_disarm(t);
	/* A task waking another hands off to it (message-passing locality);
	 * completions reaped by the loop queue in order. */
	rlt__sched_push(w, t, w->current != NULL);
}

/* After making work visible to w (its inbox, its messages, the global
 * queue): if w was parked, or about to park, end its sleep. park() re-reads
 * all three after setting parked, so one side always sees the other. */
static inline void kick_if_parked(rlt__worker *w)
{
	if (atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst))
		rlt__worker_kick(w);
}

void rlt__sched_push_remote(rlt__worker *w, rlt_task *t)
{
	/* Counted before the push: the owner counts it drained (remote_in)
	 * only after, so sent - drained is never short. */
	rlt__worker *self = tls_worker;
	if (self && self->rt == w->rt)
		RLT__STAT_INC(self->st.remote_sent[w->index]);
	else
		atomic_fetch_add_explicit(&w->remote_foreign, 1, memory_order_relaxed);
	rlt_task *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
	do
		t->next = head;
	while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, t, memory_order_seq_cst,
						      memory_order_relaxed));
	kick_if_parked(w);
}

void rlt__worker_post(rlt__worker *w, rlt__msg *m)
{
	rlt__msg *head = atomic_load_explicit(&w->msgs, memory_order_relaxed);
	do
		m->next = head;
	while (!atomic_compare_exchange_weak_explicit(&w->msgs, &head, m, memory_order_seq_cst,
						      memory_order_relaxed));
	kick_if_parked(w);
}

static void drain_msgs(rlt__worker *w)
{
	rlt__msg *m = atomic_exchange_explicit(&w->msgs, NULL, memory_order_acquire);
	rlt__msg *fifo = NULL;
	while (m) {
		rlt__msg *next = m->next;
		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		rlt__msg *next = fifo->next; /* fn may post m again */
		fifo->fn(w, fifo);
		fifo = next;
	}
}

void rlt__sched_inject(rlt__runtime *rt, rlt_task *t)
{
	rlt__tstate_set(t, RLT__T_RUNNABLE);
	rlt__global_q_push(&rt->global, t);
	if (rt->nworkers == 1) {
		/* The only worker may be asleep; it is not on the idle list
		 * bookkeeping's radar with one worker, so kick it directly. */
		kick_if_parked(&rt->workers[0]);
		return;
	}
	notify_idle(rt);
}

void rlt__task_wake(rlt_task *t)
{
	rlt__worker *w = t->worker;
	if (w == tls_worker)
		wake_local(w, t);
	else
		rlt__sched_push_remote(w, t);
}

/* A thread that is not a worker may own a loop of its own just to wake
 * workers through it (a pool thread's ring, for MSG_RING). */
static __thread rlt_loop *tls_foreign_loop;

void rlt__set_foreign_loop(rlt_loop *loop)
{
	tls_foreign_loop = loop;
}

void rlt__worker_kick(rlt__worker *w)
{
	rlt__worker *self = tls_worker;
	rlt_loop *from =
	    self && self != w && self->rt == w->rt && self->loop_ready ? &self->loop : NULL;
	if (!self && tls_foreign_loop && tls_foreign_loop->policy == w->loop.policy)
		from = tls_foreign_loop;
	if (self)
		RLT__STAT_INC(self->st.unparks);
	w->loop.policy->wake(&w->loop, from);
}

static void drain_inbox(rlt__worker *w)
{
	rlt_task *t = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
	/* The stack is newest-first; reverse it to queue in arrival order. */
	rlt_task *fifo = NULL;
	while (t) {
		rlt_task *next = t->next;
		t->next = fifo;
		fifo = t;
		t = next;
	}
	uint64_t n = 0;
	while (fifo) {
		rlt_task *next = fifo->next;
		wake_local(w, fifo);
		fifo = next;
		n++;
	}
	RLT__STAT_ADD(w->st.remote_in, n);
}

/*
 * The watchdog's share of a stuck worker's inbox. Called on the watchdog's
 * thread while it holds w's peek at the odd turn w has been stuck in
 * (sched/watchdog.c): w cannot end that turn until the peek is released,
 * so it is not in its loop. That matters for the cancellation protocol
 * (runtime/cancel.h), which relies on "wait_on == W stays true while W runs
 * a cancel message, because only W drains W's inbox": W runs messages only
 * in its loop, so while we hold the peek no message of W's can be looking
 * at a task we take, and a message W runs later finds wait_on cleared
 * (below) and drops itself, as for any task that moved on.
 *
 * Which tasks move:
 *   - not pinned (RLT__TF_PINNED: it runs only on its first worker);
 *   - no wait timer armed (t->wait_timer NULL). A timed wait (a future or
 *     an event waited for with a timeout, a timed join, an I/O time limit)
 *     left its timer in w's heap, and the timer lives on the task's own
 *     stack: only w may take it off its heap (wake_local does, when w
 *     drains its inbox). Run elsewhere, the task would return from its
 *     wait and reuse that stack while w's heap still links the timer.
 *     Such tasks stay for w, in the inbox.
 * The rest (a task woken from another thread without a time limit, a task
 * spawned onto w with RLT_SPAWN_ON_WORKER) are woken as wake_local would
 * (wait_on cleared first, so no cancel message of w's touches the wait
 * record any more) and queued on the global queue, which the idle workers
 * are woken to take. The LIFO slot and the pinned queue are w's alone
 * (plain fields, no atomics on the hot path): they wait for w.
 */
unsigned rlt__worker_move_inbox(rlt__worker *w)
{
	rlt_task *t = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
	if (!t)
		return 0;
	rlt_task *fifo = NULL;
	while (t) {
		rlt_task *next = t->next;
		t->next = fifo;
		fifo = t;
		t = next;
	}
	rlt_task *kept = NULL, *kept_last = NULL; /* newest first, as the inbox */
	unsigned moved = 0;
	while (fifo) {
		rlt_task *next = fifo->next;
		if ((fifo->flags & RLT__TF_PINNED) || fifo->wait_timer) {
			fifo->next = kept;
			if (!kept)
				kept_last = fifo;
			kept = fifo;
		} else {
			atomic_store_explicit(&fifo->wait_on, NULL, memory_order_relaxed);
			rlt__sched_inject(w->rt, fifo);
			moved++;
		}
		fifo = next;
	}
	if (moved)
		atomic_fetch_add_explicit(&w->remote_moved, moved, memory_order_relaxed);
	if (kept) {
		/* Back on top of whatever was pushed meanwhile (remote wakes
		 * from different threads have no order to keep). */
		rlt_task *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
		do
			kept_last->next = head;
		while (!atomic_compare_exchange_weak_explicit(
		    &w->inbox, &head, kept, memory_order_seq_cst, memory_order_relaxed));
		kick_if_parked(w);
	}
	return moved;
}

static void drain_zombies(rlt__worker *w)
{
	rlt_task *t = atomic_exchange_explicit(&w->zombies, NULL, memory_order_acquire);
	while (t) {
		rlt_task *next = t->next;
		rlt__task_free_owned(w, t);
		t = next;
	}
}

static inline rlt_task *next_task(rlt__worker *w)
{
	rlt_task *t;
	if (w->lifo) {
		t = w->lifo;
		w->lifo = NULL;
		if (w->lifo_runs < LIFO_MAX_RUNS) {
			w->lifo_runs++;
			return t;
		}
		/* Two tasks handing off to each other: let the others run. */
		rlt__sched_push(w, t, false);
	}
	w->lifo_runs = 0;
	w->tick++;
	if (w->tick % GLOBAL_EVERY == 0 && !rlt__global_q_empty(&w->rt->global)) {
		t = rlt__global_q_pop_into(&w->rt->global, &w->lq, TURN_BUDGET);
		if (t)
			return t;
	}
	if (pin_len(w) && (w->tick & 1))
		return pin_pop(w);
	t = rlt__local_q_pop(&w->lq);
	if (t)
		return t;
	return pin_pop(w);
}

/* Something observes task runs (rt->observe): the trace records the run's
 * begin and end; task timing runs t between two reads of the tick counter,
 * records how long it ran in the histogram, its poll time and the task's
 * time held, and reports it if it held the worker too long (asyncio
 * reports a slow callback the same way: once it is over). */
static __attribute__((noinline)) void run_observed(rlt__worker *w, rlt_task *t, unsigned obs)
{
	if (obs & RLT__OBS_TRACE)
		RLT__TRACE(w, RLT__TEV_RUN_B, t->id, t->fn_name, 0);
	if (!(obs & RLT__OBS_TIMING)) {
		rlt__coro_switch(&w->sched, &t->coro, 0);
	} else {
		uint64_t t0 = rlt__ticks();
		rlt__coro_switch(&w->sched, &t->coro, 0);
		uint64_t ticks = rlt__ticks() - t0;
		uint64_t dt = rlt__ticks_to_ns(ticks);
		RLT__STAT_INC(w->st.hist[rlt__hist_bucket(dt)]);
		RLT__STAT_ADD(w->st.poll_ns, dt);
		RLT__STAT_ADD(t->held, ticks);
		if (w->rt->slow_ns && dt > w->rt->slow_ns)
			fprintf(stderr,
				"ringlet: task \"%s\" (id %llu) ran %.1f ms on worker %u without "
				"suspending (slow_ms %llu): a blocking call? run it with "
				"rlt_run_blocking()\n",
				rlt__task_name(t), (unsigned long long)t->id, (double)dt / 1e6,
				w->index, (unsigned long long)(w->rt->slow_ns / 1000000u));
	}
	if (obs & RLT__OBS_TRACE)
		RLT__TRACE(w, RLT__TEV_RUN_E, t->id, NULL, rlt__tstate(t));
}

/* A searcher that found work, wherever (stolen, its own queues, its inbox,
 * the global queue), stops counting as one. While it counts, no other
 * worker may search and new work wakes nobody, so it must not go on
 * counting while it runs tasks. The last searcher to stop wakes another
 * worker: where there was work to find, there may be more. */
static void end_search(rlt__worker *w)
{
	w->searching = false;
	if (rlt__idle_stop_search(&w->rt->idle))
		notify_idle(w->rt);
}

static inline void run_task(rlt__worker *w, rlt_task *t)
{
	if (__builtin_expect(w->searching, 0))
		end_search(w);
	if (__builtin_expect(t->owner == NULL, 0) && !rlt__task_start(w, t))
		return;
	w->current = t;
	t->worker = w;
	rlt__tstate_set(t, RLT__T_RUNNING);
	/* For the watchdog: odd while t runs (release: running is set first). */
	uint32_t turn = atomic_load_explicit(&w->turn, memory_order_relaxed);
	atomic_store_explicit(&w->running, t, memory_order_relaxed);
	atomic_store_explicit(&w->turn, turn + 1, memory_order_release);
	RLT__STAT_INC(w->st.polls);
	unsigned obs = atomic_load_explicit(&w->rt->observe, memory_order_relaxed);
	if (__builtin_expect(obs != 0, 0)) {
		run_observed(w, t, obs);
	} else {
		rlt__coro_switch(&w->sched, &t->coro, 0);
	}
	/* The turn's end against the watchdog's peek, Dekker-style with the
	 * barrier on the watchdog's side (membarrier, as for cancellation:
	 * runtime/cancel.h): either it sees the new turn, or we see its peek
	 * and wait the few ns its copy of t's name takes. t is reaped below. */
	if (__builtin_expect(rlt__cancel_fence_cheap, 1)) {
		atomic_store_explicit(&w->turn, turn + 2, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_exchange_explicit(&w->turn, turn + 2, memory_order_seq_cst);
	}
	while (__builtin_expect(atomic_load_explicit(&w->wd_peek, memory_order_seq_cst), 0))
		rlt__cpu_relax();
	atomic_store_explicit(&w->running, NULL, memory_order_relaxed);
	w->current = NULL;
	if (rlt__tstate(t) == RLT__T_YIELDED)
		rlt__sched_push(w, t, false);
	else if (rlt__tstate(t) == RLT__T_DONE)
		rlt__task_reap(w, t);
}

/* ---- stealing and parking ---- */

static inline uint32_t next_rand(rlt__worker *w)
{
	uint32_t x = w->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return w->rng = x;
}

static rlt_task *steal_work(rlt__worker *w)
{
	rlt__runtime *rt = w->rt;
	if (!w->searching) {
		if (!rlt__idle_try_search(&rt->idle))
			return NULL;
		w->searching = true;
	}
	rlt_task *t = NULL;
	unsigned n = rt->nworkers;
	unsigned start = next_rand(w) % n;
	for (unsigned i = 0; i < n && !t; i++) {
		unsigned v = (start + i) % n;
		if (v != w->index) {
			t = rlt__local_q_steal(&rt->workers[v].lq, &w->lq);
			if (t) {
				/* The thief's queue was empty: all it holds now came
				 * with t. */
				uint64_t got = 1u + rlt__local_q_len(&w->lq);
				RLT__STAT_INC(w->st.steals);
				RLT__STAT_ADD(w->st.stolen_in, got);
				RLT__STAT_ADD(w->st.stolen_from[v], got);
				RLT__TRACE(w, RLT__TEV_STEAL, v, NULL, (uint32_t)got);
			}
		}
	}
	if (!t)
		t = rlt__global_q_pop_into(&rt->global, &w->lq, TURN_BUDGET);
	/* Found: run_task ends the search. */
	return t;
}

static bool work_pending(rlt__runtime *rt)
{
	if (!rlt__global_q_empty(&rt->global))
		return true;
	if (rt->steal)
		for (unsigned i = 0; i < rt->nworkers; i++)
			if (rlt__local_q_len(&rt->workers[i].lq))
				return true;
	return false;
}

/* SIGQUIT in debug mode asked for a dump this worker has not printed. */
static inline bool dump_asked(rlt__worker *w)
{
	return atomic_load_explicit(&w->rt->dump_gen, memory_order_relaxed) != w->dump_seen;
}

static inline bool stopping(rlt__worker *w)
{
	return atomic_load_explicit(&w->rt->stopping, memory_order_acquire);
}

/* Before parking, keep looking for work until deadline: a wake-up that
 * comes within the window costs the waker no system call (we are not
 * marked parked, so it only pushes on our inbox) and us no sleep and wake
 * in the kernel (~5 us each on a VM). The price is that CPU time; how long
 * to spin is spin_window's choice. Returns true when there is something to
 * do. */
static bool spin_for_work(rlt__worker *w, uint64_t deadline, bool *first)
{
	rlt__runtime *rt = w->rt;
	/* The first look polls (the loop may have left this turn's SQEs for
	 * here); *first says the work was found then. */
	RLT__POL_POLL(&w->loop, 0);
	*first = true;
	if (has_local_work(w))
		return true;
	for (unsigned i = 0;; i++) {
		if (i == 1)
			*first = false;
		if (atomic_load_explicit(&w->inbox, memory_order_acquire) ||
		    atomic_load_explicit(&w->msgs, memory_order_acquire) ||
		    !rlt__global_q_empty(&rt->global) || stopping(w) || dump_asked(w))
			return true;
		if ((i & 15) == 0 && i) {
			/* Every few hundred ns: completions, timers, the clock, and
			 * work another worker could give us. */
			RLT__POL_POLL(&w->loop, 0);
			if (has_local_work(w) || (stealing(rt) && work_pending(rt)))
				return true;
			uint64_t now = rlt__mono_ns();
			if (rlt__timer_next(&w->timers) <= now || now >= deadline)
				return now < deadline || rlt__timer_next(&w->timers) <= now;
			/* No sched_yield here. Under EEVDF (Linux 6.6+) a yield
			 * while anything else is runnable on this CPU, even a
			 * SCHED_IDLE batch job, pushes the thread's virtual
			 * deadline a slice on (newer kernels: its vruntime too);
			 * after a spin's many yields its next wake-up waited
			 * milliseconds to run (echo at 25% load beside a
			 * SCHED_IDLE busy loop: p50 1.1 ms with the yield, 62 us
			 * without; docs/LOWCPU.md). A waker queued behind us on
			 * this CPU waits at most the window, which the policy
			 * shortens or closes when spins keep ending in a park. */
		}
		rlt__cpu_relax();
	}
}

/* How long to spin now (0: park at once). Fixed: the whole RINGLET_SPIN_US.
 * Adaptive: the per-worker policy's window (sched/spin.h), only while
 * rlt__spin_cpus_ok finds a CPU for the spinner, and while fewer than half
 * the CPUs (at least one) spin at once, as Go bounds its spinning Ms.
 * Counted in rt->nspinning until spin_done. */
static uint64_t spin_window(rlt__worker *w)
{
	rlt__runtime *rt = w->rt;
	if (rt->spin_fixed)
		return rt->spin_ns;
	uint64_t win = rlt__spinpol_window(&w->spin);
	if (!win)
		return 0;
	unsigned jobs = atomic_load_explicit(&rt->jobs_waiting, memory_order_relaxed);
	if (!rlt__spin_cpus_ok(rt->nworkers, rlt__idle_awake(&rt->idle), jobs, rt->ncpus))
		return 0;
	unsigned most = rt->ncpus / 2 ? rt->ncpus / 2 : 1;
	if (atomic_fetch_add_explicit(&rt->nspinning, 1, memory_order_relaxed) >= most) {
		atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_relaxed);
		return 0;
	}
	return win;
}

static inline void spin_done(rlt__worker *w)
{
	if (!w->rt->spin_fixed)
		atomic_fetch_sub_explicit(&w->rt->nspinning, 1, memory_order_relaxed);
}

static inline uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* At an idle point at least RLT__ECO_EPOCH_NS into the economy epoch
 * (sched/spin.h): the epoch ends once it holds enough runs to judge (a
 * parked epoch at one connection's pace may hold fewer), or at
 * RLT__ECO_EPOCH_MAX_NS (then the load is light, and it is not judged);
 * then judge it and start the next. One thread CPU clock read (a system
 * call) per epoch. */
static void eco_epoch(rlt__worker *w, uint64_t now)
{
	uint32_t turn = atomic_load_explicit(&w->turn, memory_order_relaxed);
	uint32_t runs = (turn - w->eco_turn0) / 2u;
	if (runs < RLT__ECO_MIN_RUNS && now - w->eco_t0 < RLT__ECO_EPOCH_MAX_NS)
		return;
	uint64_t cpu = thread_cpu_ns();
	if (w->eco_t0)
		rlt__spineco_epoch(&w->eco, now - w->eco_t0, cpu - w->eco_cpu0, runs, w->eco_spun);
	w->eco_t0 = now;
	w->eco_cpu0 = cpu;
	w->eco_turn0 = turn;
	w->eco_spun = 0;
}

/* Sleep until something happens. now: the clock as the caller last read it
 * (just before; the sleep's start). *cpu_ns: the CPU time the sleeping poll
 * cost this thread, measured on every PARK_MEASURE_EVERY-th sleep (0
 * otherwise). On return w->now is the clock after the sleep (now itself
 * when there was none). Clock reads here are per message at low load (a
 * vDSO read is ~46 ns on this VM, a thread CPU clock read a ~340 ns system
 * call, against ~5 us of CPU per 64 B echo): one after a sleep, none
 * before it. */
static void park(rlt__worker *w, uint64_t now, uint64_t *cpu_ns)
{
	rlt__runtime *rt = w->rt;
	w->now = now;
	bool measure = !rt->spin_fixed && ++w->parks >= PARK_MEASURE_EVERY;
	if (measure) {
		/* A measured sleep must cost only the sleep: submit what the turn
		 * left (which the sleeping enter would otherwise carry) first. */
		RLT__POL_POLL(&w->loop, 0);
		if (has_local_work(w))
			return;
	}
	bool multi = rt->nworkers > 1;
	if (multi) {
		bool last = rlt__idle_park(&rt->idle, w->index, w->searching);
		w->searching = false;
		if (last && work_pending(rt))
			notify_idle(rt);
	}
	atomic_store_explicit(&w->parked, 1, memory_order_seq_cst);
	bool sleep = !atomic_load_explicit(&w->inbox, memory_order_seq_cst) &&
		     !atomic_load_explicit(&w->msgs, memory_order_seq_cst) && !dump_asked(w) &&
		     rlt__global_q_empty(&rt->global) && !has_local_work(w) &&
		     !atomic_load_explicit(&rt->stopping, memory_order_seq_cst);
	if (!sleep) {
		/* Work arrived meanwhile: still submit what the turn left, or a
		 * worker kept busy by remote wake-ups would hold its SQEs. */
		RLT__POL_POLL(&w->loop, 0);
	} else {
		int64_t timeout = -1;
		uint64_t next = rlt__timer_next(&w->timers);
		/* Shutting down: look again every millisecond (recount, deadline). */
		if (atomic_load_explicit(&rt->draining, memory_order_relaxed)) {
			uint64_t soon = now + 1000000u;
			if (soon < next)
				next = soon;
		}
		if (next != UINT64_MAX)
			timeout = next > now ? (int64_t)(next - now) : 0;
		rlt__stack_trim(&w->stacks);
		uint64_t c0 = measure ? thread_cpu_ns() : 0;
		/* The sleep is timed for the counters (parked_ns) from the
		 * caller's read, taken just before. */
		RLT__STAT_INC(w->st.parks);
		RLT__STAT_SET(w->st.park_since, now);
		RLT__TRACE(w, RLT__TEV_PARK_B, 0, NULL, 0);
		RLT__POL_POLL(&w->loop, timeout);
		RLT__TRACE(w, RLT__TEV_PARK_E, 0, NULL, 0);
		if (measure) {
			*cpu_ns = thread_cpu_ns() - c0;
			w->parks = 0;
		}
		w->now = rlt__mono_ns(); /* after a sleep, the cached clock is stale */
		w->woke_ns = w->now;
		/* Added before the mark is cleared: a snapshot in between counts
		 * the sleep twice (busy time dips) rather than not at all. */
		RLT__STAT_ADD(w->st.parked_ns, w->now - now);
		RLT__STAT_SET(w->st.park_since, 0);
	}
	atomic_exchange_explicit(&w->parked, 0, memory_order_seq_cst);
	if (multi && !rlt__idle_unpark_self(&rt->idle, w->index))
		w->searching = true; /* a notifier woke us to look for work */
}

void rlt__worker_loop(rlt__worker *w)
{
	rlt__runtime *rt = w->rt;
	RLT__STAT_SET(w->st.started_ns, rlt__mono_ns());
	while (!stopping(w)) {
		RLT__STAT_INC(w->st.turns);
		uint32_t budget = rlt__local_q_len(&w->lq) + pin_len(w) + (w->lifo != NULL);
		if (budget > TURN_BUDGET)
			budget = TURN_BUDGET;
		rlt_task *t;
		while (budget-- > 0 && (t = next_task(w)) != NULL) {
			run_task(w, t);
			/* A hand-off (the task just woken by the one that ran) runs at
			 * once, within the same turn, up to LIFO_MAX_RUNS times. */
			while (w->lifo && w->lifo_runs < LIFO_MAX_RUNS) {
				t = w->lifo;
				w->lifo = NULL;
				w->lifo_runs++;
				run_task(w, t);
			}
			if (stopping(w))
				return;
		}
		if (atomic_load_explicit(&w->inbox, memory_order_relaxed))
			drain_inbox(w);
		if (atomic_load_explicit(&w->msgs, memory_order_relaxed))
			drain_msgs(w);
		if (atomic_load_explicit(&w->zombies, memory_order_relaxed))
			drain_zombies(w);
		/* One load for the rare requests: a dump (SIGQUIT), shutdown. */
		if (__builtin_expect(atomic_load_explicit(&rt->attn, memory_order_acquire) != 0,
				     0)) {
			if (dump_asked(w))
				rlt__dump_worker(
				    w, atomic_load_explicit(&rt->dump_gen, memory_order_relaxed));
			if (atomic_load_explicit(&rt->draining, memory_order_acquire)) {
				rlt__runtime_drain_check(w);
				if (stopping(w))
					return;
			}
		}
		if (rlt__timer_count(&w->timers)) {
			/* The clock costs ~20 ns: read it only when it matters. */
			w->now = rlt__mono_ns();
			rlt__timer_run(&w->timers, w->now);
		}
		/* Submit this turn's SQEs and reap, unless the turn leaves nothing
		 * to run: then the worker is about to spin (whose first look polls)
		 * or sleep (whose io_uring_enter submits and waits in one system
		 * call), and a separate submit would be one system call more per
		 * message at low load (the recv a task queued before it ran dry).
		 * RINGLET_SPIN=fixed keeps the old order. */
		bool polled = has_local_work(w) || rt->spin_fixed;
		if (polled) {
			RLT__POL_POLL(&w->loop, 0);
			if (has_local_work(w))
				continue;
		}
		t = rlt__global_q_pop_into(&rt->global, &w->lq, TURN_BUDGET);
		if (!t && stealing(rt))
			t = steal_work(w);
		if (t) {
			/* Not idle after all: this turn's SQEs go out now, or a
			 * worker that keeps finding work elsewhere would hold them. */
			if (!polled)
				RLT__POL_POLL(&w->loop, 0);
			run_task(w, t);
			continue;
		}
		w->idles++;
		/* The clock as the worker ran dry: the spin's start, the sleep's
		 * start when there is no spin, the gap's start. Read once; the
		 * end of a spin is the start of the sleep after it, and the
		 * wake-up the end of the gap (park leaves it in w->now). */
		uint64_t t0 = rlt__mono_ns();
		if (!rt->spin_ns) {
			uint64_t cpu = 0;
			park(w, t0, &cpu);
			continue;
		}
		if (!rt->spin_fixed && t0 - w->eco_t0 >= RLT__ECO_EPOCH_NS)
			eco_epoch(w, t0);
		uint64_t win = w->eco.spin ? spin_window(w) : 0;
		bool found = false, first = false;
		uint64_t t1 = t0;
		if (win) {
			w->spins++;
			found = spin_for_work(w, t0 + win, &first);
			spin_done(w);
			t1 = rlt__mono_ns();
			w->eco_spun += t1 - t0;
			RLT__STAT_ADD(w->st.spin_ns, t1 - t0);
		}
		uint64_t cpu = 0;
		if (found)
			w->now = t1;
		else
			park(w, t1, &cpu);
		if (rt->spin_fixed)
			continue;
		/* Work that the first look of the spin, or a sleep that ended
		 * sooner than a sleep costs, found was made by this turn's own
		 * submissions (a send that completed at once): the worker was not
		 * idle waiting for an event, and the policy must not learn from it
		 * that events come back-to-back. */
		uint64_t gap = w->now - t0;
		if (found ? !first : gap >= w->spin.park_cost)
			rlt__spinpol_record(&w->spin, win, found, gap, cpu);
	}
}

/* Free every task in a chain that never started (no owner, in no list);
 * returns how many. */
static unsigned drop_unstarted(rlt__worker *w, rlt_task *t)
{
	unsigned n = 0;
	while (t) {
		rlt_task *next = t->next;
		if (!t->owner) {
			rlt__task_free_unstarted(w, t);
			n++;
		}
		t = next;
	}
	return n;
}

unsigned rlt__worker_drop_queued(rlt__worker *w)
{
	/* Called with every worker thread stopped, for every worker before
	 * any rlt__worker_drop_tasks: a started task queued here may be owned
	 * (and freed) by another worker. Tasks that never started are only in
	 * queues: freed here; the others are in their owner's list. */
	unsigned dropped = drop_unstarted(w, atomic_exchange(&w->inbox, NULL));
	rlt_task *t;
	rlt_task *chain = NULL;
	while ((t = rlt__local_q_pop(&w->lq)) != NULL) {
		t->next = chain;
		chain = t;
	}
	if (w->lifo) {
		w->lifo->next = chain;
		chain = w->lifo;
		w->lifo = NULL;
	}
	dropped += drop_unstarted(w, chain);
	dropped += drop_unstarted(w, w->pin_head);
	w->pin_head = w->pin_tail = NULL;
	atomic_store_explicit(&w->pin_len, 0, memory_order_relaxed);
	return dropped;
}

unsigned rlt__worker_drop_tasks(rlt__worker *w)
{
	unsigned dropped = 0;
	drain_zombies(w);
	while (w->all) {
		if (rlt__tstate(w->all) != RLT__T_DONE)
			dropped++;
		rlt__task_drop(w, w->all);
	}
	return dropped;
}
