#include "runtime/task.h"

#include "ringlet/runtime.h"

#include "ringlet/cancel.h"
#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void task_entry(void *arg);

enum { NAME_UNSET, NAME_BUSY, NAME_READY };

/* fn_name is what rlt_spawn's macro saw as its fn argument: a function's
 * name only if it is a plain identifier (not "(rlt_task_fn)f", "t->fn"). */
static bool is_identifier(const char *s)
{
	if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* "<fn>-<id>", or "task-<id>" without a usable function name: formatted on
 * demand (rlt__task_name), not at spawn, where it would be a tenth of the
 * cost; async-signal-safe (the overflow report uses it). The function's
 * name is cut so that the id always fits. */
static void default_name(char *out, uint64_t id, const char *fn_name)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + id % 10);
		id /= 10;
	} while (id);
	const char *prefix = is_identifier(fn_name) ? fn_name : "task";
	size_t room = RLT_TASK_NAME_MAX - 1 - n, k = 0;
	char *p = out;
	while (prefix[k] && k < room)
		*p++ = prefix[k++];
	*p++ = '-';
	while (n > 0)
		*p++ = digits[--n];
	*p = '\0';
}

/* ---- handle misuse (debug mode) ----
 *
 * Joining a task twice, joining after detaching it, cancelling it after it
 * was joined: the handle's memory may be gone (or be another task's) by
 * then. In debug mode (any runtime of the process with rlt_config.debug or
 * RINGLET_DEBUG=1, and always in debug builds) every handle records what
 * became of it, freed tasks are quarantined instead of reused (the last
 * QUARANTINE of them stay readable), and those calls abort with a report
 * naming the task and the call, as a stack overflow does. Outside debug
 * mode they cost one predictable branch. */
#ifdef RLT_DEBUG_BUILD
#define HANDLE_CHECKS_DEFAULT true
#else
#define HANDLE_CHECKS_DEFAULT false
#endif
static atomic_bool handle_checks = HANDLE_CHECKS_DEFAULT;

#define QUARANTINE 4096u
static pthread_mutex_t quarantine_lock = PTHREAD_MUTEX_INITIALIZER;
static rlt_task *quarantine[QUARANTINE];
static unsigned quarantine_next;

static inline bool checking(void)
{
	return __builtin_expect(atomic_load_explicit(&handle_checks, memory_order_relaxed), 0);
}

/* Keep t readable for later misuse checks; free the oldest kept. */
static void quarantine_put(rlt_task *t)
{
	atomic_fetch_or_explicit(&t->handle, RLT__H_FREED, memory_order_relaxed);
	pthread_mutex_lock(&quarantine_lock);
	rlt_task *old = quarantine[quarantine_next];
	quarantine[quarantine_next] = t;
	quarantine_next = (quarantine_next + 1) % QUARANTINE;
	pthread_mutex_unlock(&quarantine_lock);
	rlt__free(old);
}

static void quarantine_drain(void)
{
	pthread_mutex_lock(&quarantine_lock);
	for (unsigned i = 0; i < QUARANTINE; i++) {
		rlt__free(quarantine[i]);
		quarantine[i] = NULL;
	}
	pthread_mutex_unlock(&quarantine_lock);
}

static __attribute__((noreturn, cold)) void handle_misuse(rlt_task *t, const char *call,
							  const char *what)
{
	fprintf(stderr,
		"ringlet: %s(task '%s', id %llu): %s; a handle is joined or detached once, and "
		"not used after (ringlet/task.h, rlt_join)\n",
		call, rlt__task_name(t), (unsigned long long)t->id, what);
	fflush(stderr);
	abort();
}

/* Before call (rlt_join, rlt_detach, rlt_cancel) acts on t's handle. */
static inline void handle_check(rlt_task *t, const char *call, bool cancel)
{
	if (!checking())
		return;
	unsigned h = atomic_load_explicit(&t->handle, memory_order_relaxed);
	if ((h & RLT__H_HOW) == RLT__H_JOINED)
		handle_misuse(t, call, "the task was already joined");
	/* rlt_cancel of a detached task is caught once the task is gone (a
	 * cancel would take a reference on a freed task); before, it races
	 * with the task's end and may or may not be seen. */
	if ((h & RLT__H_HOW) == RLT__H_DETACHED && (!cancel || (h & RLT__H_FREED)))
		handle_misuse(t, call,
			      cancel ? "the task was detached and has ended"
				     : "the task was detached");
}

static void all_link(rlt__worker *w, rlt_task *t)
{
	t->all_prev = NULL;
	t->all_next = w->all;
	if (w->all)
		w->all->all_prev = t;
	w->all = t;
}

static void all_unlink(rlt__worker *w, rlt_task *t)
{
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		w->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
}

/* Task ids: workers take them from the shared counter 256 at a time, so a
 * spawn does not bounce that cache line between cores. */
#define ID_BATCH 256

static uint64_t next_id(rlt__runtime *rt, rlt__worker *w)
{
	if (!w || w->rt != rt)
		return atomic_fetch_add_explicit(&rt->next_id, 1, memory_order_relaxed);
	if (w->id_next == w->id_end) {
		w->id_next =
		    atomic_fetch_add_explicit(&rt->next_id, ID_BATCH, memory_order_relaxed);
		w->id_end = w->id_next + ID_BATCH;
	}
	return w->id_next++;
}

/* Freed task structs are kept by their owner for its next spawns (up to
 * TASK_CACHE of them): a spawn then costs no allocator call. Not in
 * sanitizer builds, where reuse would hide a use-after-free from ASan. */
#if defined(RLT_ASAN) || defined(RLT_TSAN)
#define TASK_CACHE_ON 0
#else
#define TASK_CACHE_ON 1
#endif
#define TASK_CACHE 256u

static inline rlt_task *task_alloc(rlt__runtime *rt, rlt__worker *w)
{
	if (TASK_CACHE_ON && w && w->rt == rt && w->task_cache) {
		rlt_task *t = w->task_cache;
		w->task_cache = t->next;
		w->task_cache_len--;
		return t;
	}
	return rlt__malloc(sizeof(rlt_task));
}

void rlt__task_cache_drain(rlt__worker *w)
{
	if (checking())
		quarantine_drain();
	while (w->task_cache) {
		rlt_task *t = w->task_cache;
		w->task_cache = t->next;
		rlt__free(t);
	}
	w->task_cache_len = 0;
}

rlt_task *rlt__task_create(rlt__runtime *rt, rlt__worker *self, rlt_task_fn fn, void *arg,
			   const rlt_spawn_opts *opts)
{
	size_t size = rt->stack_size;
	if (opts && opts->stack_size) {
		size = rlt__stack_round(opts->stack_size);
		if (!size) {
			errno = EINVAL;
			return NULL;
		}
	}
	/* The stack now, not when the task first runs: a spawn that cannot
	 * have one fails here, where the caller can act on it (before, the
	 * task was queued, never ran, and only its join said -ENOMEM). From
	 * the calling worker's cache: the common case costs a pop, as it did
	 * in rlt__task_start. A thread that is no worker of rt has no cache
	 * it may touch: the stack is mapped for the task alone (one mmap, and
	 * the guard's madvise; such spawns are rare: rlt_runtime_spawn from
	 * another thread), and unmapped by the worker that reaps it. */
	rlt__stack stack;
	bool own = self && self->rt == rt;
	int rc = own ? rlt__stack_get(&self->stacks, size, &stack)
		     : rlt__stack_map(size, rt->stack_guard, &stack);
	if (__builtin_expect(rc < 0, 0)) {
		errno = -rc;
		return NULL;
	}
	rlt_task *t = task_alloc(rt, self);
	if (!t) {
		if (own)
			rlt__stack_put(&self->stacks, &stack);
		else
			rlt__stack_unmap(&stack, rt->stack_guard);
		errno = ENOMEM;
		return NULL;
	}
	t->next = NULL;
	t->worker = NULL;
	t->owner = NULL;
	t->wait_timer = NULL;
	t->io_timeout = 0;
	t->fn = fn;
	t->arg = arg;
	t->result = NULL;
	t->stack = stack;
	bool detached = opts && (opts->flags & RLT_SPAWN_DETACHED);
	atomic_init(&t->refs, detached ? 1u : 2u);
	atomic_init(&t->handle, detached ? RLT__H_DETACHED : RLT__H_HELD);
	rlt__tstate_set(t, RLT__T_RUNNABLE);
	t->flags = (opts && (opts->flags & RLT_SPAWN_PINNED)) ? RLT__TF_PINNED : 0;
	rlt__oneshot_init(&t->done);
	/* (wait and wait_kind are set by every wait before anyone reads them) */
	atomic_init(&t->cancel, 0);
	t->shield = 0;
	atomic_init(&t->wait_on, NULL);
	t->deadline = UINT64_MAX;
	memset(&t->c, 0, sizeof(t->c));
	/* The worker's cached clock (refreshed by its timers and when it wakes
	 * up): close enough for the dump's age, and no clock read here. */
	t->born = self && self->rt == rt ? self->now : rlt_now();
	t->id = next_id(rt, self);
	atomic_store_explicit(&t->held, 0, memory_order_relaxed);
	t->fn_name = NULL; /* spawn() sets it */
	if (opts && opts->name) {
		strncpy(t->name, opts->name, RLT_TASK_NAME_MAX);
		t->name[RLT_TASK_NAME_MAX] = '\0';
		atomic_init(&t->name_state, NAME_READY);
	} else {
		atomic_init(&t->name_state, NAME_UNSET); /* "<fn>-<id>" when asked */
	}
	return t;
}

/* Free t; the caller's thread is t's owner (or every thread has stopped). */
void rlt__task_free_owned(rlt__worker *w, rlt_task *t)
{
	all_unlink(w, t);
	if (checking()) {
		quarantine_put(t);
		return;
	}
	if (TASK_CACHE_ON && w->task_cache_len < TASK_CACHE) {
		t->next = w->task_cache;
		w->task_cache = t;
		w->task_cache_len++;
		return;
	}
	rlt__free(t);
}

void rlt__task_free(rlt_task *t)
{
	rlt__worker *self = rlt__worker_self();
	rlt__worker *owner = t->owner;
	if (owner == self) {
		rlt__task_free_owned(owner, t);
		return;
	}
	/* The owner's list is the owner's: hand it the corpse. */
	rlt_task *head = atomic_load_explicit(&owner->zombies, memory_order_relaxed);
	do
		t->next = head;
	while (!atomic_compare_exchange_weak_explicit(&owner->zombies, &head, t,
						      memory_order_release, memory_order_relaxed));
}

/* The task is over (returned, or never started): wake its joiner, and if
 * it is the root, stop the runtime. */
static inline __attribute__((always_inline)) void task_finished(rlt__worker *w, rlt_task *t)
{
	t->c.ended_cancelled = t->c.ncancel > 0;
	rlt__tstate_set(t, RLT__T_DONE);
	/* Counted before its joiner can see it done: N joined is N counted. */
	RLT__STAT_INC(w->st.completed);
	/* After this, t may be freed by its joiner at any moment. */
	uintptr_t waiter = rlt__oneshot_complete_raw(&t->done);
	if (waiter)
		rlt__oneshot_notify(waiter, t);
	if (t == w->rt->root)
		rlt__runtime_root_done(w->rt);
}

bool rlt__task_start(rlt__worker *w, rlt_task *t)
{
	t->owner = w;
	t->worker = w;
	all_link(w, t);
	/* Spawned while the runtime shuts down: cancelled before it starts. */
	if (__builtin_expect(atomic_load_explicit(&w->rt->draining, memory_order_relaxed), 0))
		atomic_fetch_or_explicit(&t->cancel, RLT__C_PENDING, memory_order_relaxed);
	if (__builtin_expect(rlt__stack_prepare(&w->stacks, &t->stack) < 0, 0)) {
		/* Its guard could not be installed (no memory for a page
		 * table): it does not run unguarded; its joiner sees -ENOMEM. */
		rlt__stack_put(&w->stacks, &t->stack);
		t->stack.lo = NULL;
		t->c.fail = -ENOMEM;
		task_finished(w, t);
		rlt__task_unref(t); /* the reference of the run that never was */
		return false;
	}
	rlt__coro_init(&t->coro, t->stack.lo, t->stack.size, task_entry, t);
#ifdef RLT_TSAN
	__tsan_set_fiber_name(t->coro.tsan_fiber, rlt__task_name(t));
#endif
	return true;
}

static void task_entry(void *arg)
{
	rlt_task *t = arg;
	rlt__coro_started(&t->coro);
	/* Cancelled before it ever ran (or started while the runtime shuts
	 * down: rlt__task_start): it does not run at all (asyncio). */
	if (__builtin_expect(
		atomic_load_explicit(&t->cancel, memory_order_acquire) & RLT__C_PENDING, 0) &&
	    rlt__cancel_take(t))
		t->result = NULL;
	else
		t->result = t->fn(t->arg);
	if (t->c.defers)
		rlt__defer_unwind(t, 0);
	/* t->worker, not the worker that started us: we may have moved. */
	rlt__worker *w = t->worker;
	task_finished(w, t);
	rlt__coro_switch(&t->coro, &w->sched, 1);
	__builtin_unreachable();
}

void rlt__task_exit(void *result)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return;
	t->flags |= RLT__TF_ABANDONED;
	t->result = result;
	if (t->c.defers)
		rlt__defer_unwind(t, 0);
	rlt__worker *w = t->worker;
	task_finished(w, t);
	rlt__coro_switch(&t->coro, &w->sched, 1);
	__builtin_unreachable();
}

int rlt__task_cancel_root(void)
{
	rlt__worker *w = rlt__worker_self();
	if (!w || !w->current)
		return -EPERM;
	rlt_task *root = w->rt->root;
	return root && root != w->current ? rlt_cancel(root) : 0;
}

void rlt__task_reap(rlt__worker *w, rlt_task *t)
{
	/* We are back on the worker's own stack: t's stack is free to reuse. */
#ifdef RLT_ASAN
	/* Ended by rlt__task_exit: the redzones of the frames it left would
	 * trip the next task on this stack. */
	if (__builtin_expect(t->flags & RLT__TF_ABANDONED, 0))
		__asan_unpoison_memory_region(t->stack.lo, t->stack.size);
#endif
	rlt__stack_put(&w->stacks, &t->stack);
	t->stack.lo = NULL;
	rlt__coro_fini(&t->coro);
	rlt__task_unref(t);
}

void rlt__task_free_unstarted(rlt__worker *w, rlt_task *t)
{
	rlt__stack_put(&w->stacks, &t->stack);
	rlt__free(t);
}

void rlt__task_drop(rlt__worker *w, rlt_task *t)
{
	if (rlt__tstate(t) != RLT__T_DONE && t->stack.lo) {
#ifdef RLT_ASAN
		/* Its frames never returned: their redzones would outlive the
		 * mapping and trip whatever is mapped there next. */
		__asan_unpoison_memory_region(t->stack.lo, t->stack.size);
#endif
		rlt__stack_put(&w->stacks, &t->stack);
		rlt__coro_fini(&t->coro);
	}
	rlt__task_free_owned(w, t);
}

/* ---- public ---- */

static rlt_task *spawn(rlt__runtime *rt, rlt__worker *self, rlt_task_fn fn, void *arg,
		       const rlt_spawn_opts *opts, rlt__watch *wa, const char *fn_name)
{
	if (!fn) {
		errno = EINVAL;
		return NULL;
	}
	rlt__worker *target = self;
	if (opts && (opts->flags & RLT_SPAWN_ON_WORKER)) {
		if (opts->worker >= rt->nworkers) {
			errno = EINVAL;
			return NULL;
		}
		target = &rt->workers[opts->worker];
	}
	rlt_task *t = rlt__task_create(rt, self, fn, arg, opts);
	if (!t)
		return NULL;
	if (self) {
		RLT__STAT_INC(self->st.spawned);
		RLT__TRACE(self, RLT__TEV_SPAWN, t->id, fn_name, 0);
	} else {
		/* From a thread that is not one of rt's workers: rare. */
		atomic_fetch_add_explicit(&rt->spawned_foreign, 1, memory_order_relaxed);
	}
	t->fn_name = fn_name;
	if (wa)
		rlt__oneshot_watch(&t->done, wa); /* a new task: cannot fail */
	/* The handle may be joined (or the task freed, if detached) as soon as
	 * it is queued: read nothing of t after this. */
	if (!target) {
		rlt__sched_inject(rt, t);
	} else {
		t->worker = target;
		if (target == self)
			rlt__sched_push(self, t, false);
		else
			rlt__sched_push_remote(target, t);
	}
	return t;
}

rlt_task *rlt_spawn_named(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts,
			  const char *fn_name)
{
	rlt__worker *w = rlt__worker_self();
	if (!w || !w->current) {
		errno = EPERM;
		return NULL;
	}
	return spawn(w->rt, w, fn, arg, opts, NULL, fn_name);
}

/* The functions behind the macros (task.h), for the ABI and for callers
 * through a pointer: no function name. */
rlt_task *(rlt_spawn)(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts)
{
	return rlt_spawn_named(fn, arg, opts, NULL);
}

rlt_task *rlt__spawn_watched(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts, rlt__watch *wa,
			     const char *fn_name)
{
	rlt__worker *w = rlt__worker_self();
	if (!w || !w->current) {
		errno = EPERM;
		return NULL;
	}
	return spawn(w->rt, w, fn, arg, opts, wa, fn_name);
}

rlt_task *rlt_runtime_spawn_named(rlt_runtime *rt, rlt_task_fn fn, void *arg,
				  const rlt_spawn_opts *opts, const char *fn_name)
{
	if (!rt) {
		errno = EINVAL;
		return NULL;
	}
	rlt__worker *w = rlt__worker_self();
	return spawn(rt, (w && w->rt == rt) ? w : NULL, fn, arg, opts, NULL, fn_name);
}

rlt_task *(rlt_runtime_spawn)(rlt_runtime *rt, rlt_task_fn fn, void *arg,
			      const rlt_spawn_opts *opts)
{
	return rlt_runtime_spawn_named(rt, fn, arg, opts, NULL);
}

int rlt__join(rlt_task *t, void **result, int64_t timeout_ns)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	if (!t)
		return -EINVAL;
	if (t == self)
		return -EDEADLK;
	handle_check(t, "rlt_join", false);
	int rc = rlt__oneshot_wait_t(self, &t->done, timeout_ns, RLT__WK_JOIN);
	if (rc < 0) {
		if (rc != -ECANCELED && rc != -ETIMEDOUT)
			return rc;
		/* We were cancelled, or our time is up, while joining: as in
		 * asyncio, the task we wait for is cancelled too. Wait for it to
		 * finish, so the handle is consumed either way. */
		rlt_cancel(t);
		rlt__oneshot_wait_k(&t->done, -1, RLT__WK_JOIN | RLT__WAIT_NOCANCEL);
	}
	int err = rlt__task_outcome(t);
	if (result)
		*result = t->result;
	atomic_store_explicit(&t->handle, RLT__H_JOINED, memory_order_relaxed);
	rlt__task_unref(t);
	if (rc == -ETIMEDOUT && err != -ECANCELED)
		return err; /* it finished on its own meanwhile: its outcome */
	return rc < 0 ? rc : err;
}

int rlt_join(rlt_task *t, void **result)
{
	return rlt__join(t, result, -1);
}

void *rlt_fail(int err)
{
	rlt_task *t = rlt__task_self();
	if (t && err < 0)
		t->c.fail = err;
	return NULL;
}

int rlt_detach(rlt_task *t)
{
	if (!t)
		return -EINVAL;
	handle_check(t, "rlt_detach", false);
	atomic_store_explicit(&t->handle, RLT__H_DETACHED, memory_order_relaxed);
	rlt__task_unref(t);
	return 0;
}

int rlt_yield(void)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	int rc = rlt__cancel_point(t);
	if (rc)
		return rc;
	/* Queued by the loop once we are off this stack (run_task): queued
	 * now, a thief could start running us on another thread first. */
	rlt__tstate_set(t, RLT__T_YIELDED);
	rlt__coro_switch(&t->coro, &t->worker->sched, 0);
	return 0;
}

rlt_task *rlt_current(void)
{
	return rlt__task_self();
}

const char *rlt__task_name(rlt_task *t)
{
	/* Several threads may ask at once: the first to claim the name formats
	 * it, the others wait the few nanoseconds that takes. */
	uint8_t st = atomic_load_explicit(&t->name_state, memory_order_acquire);
	if (__builtin_expect(st == NAME_READY, 1))
		return t->name;
	if (st == NAME_UNSET &&
	    atomic_compare_exchange_strong_explicit(&t->name_state, &st, NAME_BUSY,
						    memory_order_acquire, memory_order_acquire)) {
		default_name(t->name, t->id, t->fn_name);
		atomic_store_explicit(&t->name_state, NAME_READY, memory_order_release);
		return t->name;
	}
	while (atomic_load_explicit(&t->name_state, memory_order_acquire) != NAME_READY)
		;
	return t->name;
}

const char *rlt_task_name(const rlt_task *t)
{
	if (!t)
		t = rlt__task_self();
	return t ? rlt__task_name((rlt_task *)t) : NULL;
}

uint64_t rlt_task_id(const rlt_task *t)
{
	if (!t)
		t = rlt__task_self();
	return t ? t->id : 0;
}

void rlt__task_handle_check_cancel(rlt_task *t)
{
	handle_check(t, "rlt_cancel", true);
}

void rlt__task_debug_checks(void)
{
	atomic_store_explicit(&handle_checks, true, memory_order_relaxed);
}
