/*
 * gather, wait and task groups (include/ringlet/gather.h).
 *
 * One task can wait for many through a watch (runtime/oneshot.h): a
 * record registered in each task's `done` oneshot in place of a joining
 * task, notified by the finishing task on its own thread. For gather and
 * wait the watch is on the heap and reference counted (the waiter's
 * reference, plus one per task it is registered with): a late notify may
 * still be running when the waiter has given up (a timeout) and returned.
 * A group is the watch of its own tasks; it is freed by rlt_group_wait only
 * once every task has notified it.
 */
#include "ringlet/gather.h"

#include "ringlet/cancel.h"
#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/future.h"
#include "runtime/waitq.h"
#include "sched/sched.h"

#include <string.h>

/* The outcome that counts as a failure (a cancelled task is not one). */
static inline bool failed(int outcome)
{
	return outcome != 0 && outcome != -ECANCELED;
}

/* ---- what is waited for: tasks, or awaitables (tasks and futures) ---- */

/* One of the two arrays the calls take, seen the same way. */
typedef struct items {
	rlt_task *const *tasks;	  /* rlt_gather, rlt_wait */
	const rlt_awaitable *aws; /* rlt_gatherv, rlt_waitv */
	size_t n;
} items;

static inline rlt_task *item_task(const items *v, size_t i)
{
	return v->tasks ? v->tasks[i] : v->aws[i].task;
}

static inline rlt_future *item_future(const items *v, size_t i)
{
	return v->tasks ? NULL : v->aws[i].future;
}

static inline rlt__oneshot *item_oneshot(const items *v, size_t i)
{
	rlt_task *t = item_task(v, i);
	return t ? &t->done : rlt__future_oneshot(item_future(v, i));
}

/* A done item's outcome: rlt_join's value for a task, 0 or -err for a
 * future (one failed with ECANCELED counts as cancelled, as a task). */
static inline int item_outcome(const items *v, size_t i)
{
	rlt_task *t = item_task(v, i);
	return t ? rlt__task_outcome(t) : rlt__future_outcome(item_future(v, i), NULL);
}

/* ---- a watch over n items ---- */

typedef struct tasks_watch tasks_watch;

/* A future's oneshot notifies with no subject: each future gets a watch of
 * its own that knows it, inside the tasks_watch's allocation. */
typedef struct fut_watch {
	rlt__watch wa;
	tasks_watch *tw;
	rlt_future *f;
} fut_watch;

struct tasks_watch {
	rlt__watch wa;
	atomic_uint refs;
	atomic_uint done;      /* items finished */
	atomic_bool fired;     /* os completed (once) */
	atomic_int first_fail; /* the first failure's outcome, 0 if none yet */
	unsigned need;	       /* fire when done reaches it... */
	bool on_fail;	       /* ...or on the first failure */
	rlt__oneshot os;       /* the waiter's */
	fut_watch fw[];	       /* one per future, in the items' order */
};

static void watch_unref(tasks_watch *tw)
{
	if (atomic_fetch_sub_explicit(&tw->refs, 1, memory_order_acq_rel) == 1)
		rlt__free(tw);
}

static void watch_fire(tasks_watch *tw)
{
	if (!atomic_exchange_explicit(&tw->fired, true, memory_order_acq_rel)) {
		rlt__oneshot_fire(&tw->os);
	}
}

/* n more items are done, fail of them failed (first: one's outcome). */
static void watch_count(tasks_watch *tw, unsigned n, int fail)
{
	if (fail) {
		int zero = 0;
		atomic_compare_exchange_strong_explicit(&tw->first_fail, &zero, fail,
							memory_order_acq_rel, memory_order_relaxed);
	}
	unsigned done = atomic_fetch_add_explicit(&tw->done, n, memory_order_acq_rel) + n;
	if (done >= tw->need || (fail && tw->on_fail))
		watch_fire(tw);
}

static void watch_notify(rlt__watch *wa, void *subject)
{
	tasks_watch *tw = (tasks_watch *)wa;
	rlt_task *t = subject;
	int o = t ? rlt__task_outcome(t) : 0;
	watch_count(tw, 1, failed(o) ? o : 0);
	watch_unref(tw);
}

static void fut_notify(rlt__watch *wa, void *subject)
{
	(void)subject;
	fut_watch *fw = (fut_watch *)wa;
	tasks_watch *tw = fw->tw;
	int o = rlt__future_outcome(fw->f, NULL); /* published before the notify */
	watch_count(tw, 1, failed(o) ? o : 0);
	watch_unref(tw);
}

/*
 * Wait until need of the items are done (or one failed, with on_fail), at
 * most timeout_ns, cancellably unless nocancel. tasks_only: the futures
 * are left out (need counts tasks). Returns 0 (the condition holds),
 * -ETIMEDOUT, -ECANCELED, or an argument error. *first_fail gets the first
 * failure seen (0 if none).
 */
static int wait_items(const items *v, unsigned need, bool on_fail, bool tasks_only,
		      int64_t timeout_ns, bool nocancel, int *first_fail)
{
	*first_fail = 0;
	size_t n = v->n, nf = 0;
	for (size_t i = 0; i < n && !tasks_only; i++)
		nf += item_future(v, i) != NULL;
	if (n == 0 || need == 0)
		return 0;
	tasks_watch *tw = rlt__malloc(sizeof(*tw) + nf * sizeof(fut_watch));
	if (!tw)
		return -ENOMEM;
	tw->wa.notify = watch_notify;
	atomic_init(&tw->refs, 1);
	atomic_init(&tw->done, 0);
	atomic_init(&tw->fired, false);
	atomic_init(&tw->first_fail, 0);
	tw->need = need;
	tw->on_fail = on_fail;
	rlt__oneshot_init(&tw->os);
	/* Register with every item; those already done are counted here. */
	unsigned pre = 0;
	int pre_fail = 0, rc = 0;
	size_t reg = 0, k = 0;
	for (; reg < n; reg++) {
		rlt_task *t = item_task(v, reg);
		if (!t && tasks_only)
			continue;
		rlt__watch *wa = &tw->wa;
		if (!t) {
			fut_watch *fw = &tw->fw[k++];
			fw->wa.notify = fut_notify;
			fw->tw = tw;
			fw->f = item_future(v, reg);
			wa = &fw->wa;
		}
		atomic_fetch_add_explicit(&tw->refs, 1, memory_order_relaxed);
		int r = rlt__oneshot_watch(item_oneshot(v, reg), wa);
		if (r == 0)
			continue;
		atomic_fetch_sub_explicit(&tw->refs, 1, memory_order_relaxed);
		if (r < 0) {
			rc = r; /* -EBUSY: someone joins or waits for it */
			break;
		}
		pre++;
		int o = item_outcome(v, reg);
		if (failed(o) && !pre_fail)
			pre_fail = o;
	}
	if (rc == 0) {
		if (pre || pre_fail)
			watch_count(tw, pre, pre_fail);
		rc = rlt__oneshot_wait_k(&tw->os, timeout_ns,
					 RLT__WK_TASKS | (nocancel ? RLT__WAIT_NOCANCEL : 0));
	}
	/* Take the watches back from the items still pending; one that
	 * finished meanwhile notifies (and drops its reference) itself. */
	k = 0;
	for (size_t i = 0; i < reg; i++) {
		rlt_task *t = item_task(v, i);
		if (!t && tasks_only)
			continue;
		rlt__watch *wa = t ? &tw->wa : &tw->fw[k++].wa;
		if (rlt__oneshot_unwatch(item_oneshot(v, i), wa))
			watch_unref(tw);
	}
	*first_fail = atomic_load_explicit(&tw->first_fail, memory_order_acquire);
	watch_unref(tw);
	return rc;
}

static int check_items(const items *v, size_t *ntasks)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	if (v->n && !v->tasks && !v->aws)
		return -EINVAL;
	*ntasks = 0;
	for (size_t i = 0; i < v->n; i++) {
		rlt_task *t = item_task(v, i);
		if (!t == !item_future(v, i)) /* exactly one of the two */
			return -EINVAL;
		if (t == self)
			return -EDEADLK;
		*ntasks += t != NULL;
	}
	return 0;
}

/* Cancel all the tasks, with one barrier (runtime/cancel.h). */
static void cancel_items(const items *v)
{
	bool any = false;
	for (size_t i = 0; i < v->n; i++) {
		rlt_task *t = item_task(v, i);
		any |= t && rlt__cancel_mark(t);
	}
	if (!any)
		return;
	rlt__cancel_fence();
	for (size_t i = 0; i < v->n; i++)
		if (item_task(v, i))
			rlt__cancel_route(item_task(v, i)); /* a finished one has no wait_on */
}

static void cancel_all(rlt_task *const *tasks, size_t n)
{
	items v = {tasks, NULL, n};
	cancel_items(&v);
}

static int gather(const items *v, void **results, int *errs, unsigned flags)
{
	size_t ntasks;
	int rc = check_items(v, &ntasks);
	if (rc < 0)
		return rc;
	if (flags & ~RLT_GATHER_SETTLE)
		return -EINVAL;
	bool settle = flags & RLT_GATHER_SETTLE;
	size_t n = v->n;
	int first = 0;
	rc = wait_items(v, (unsigned)n, !settle, false, -1, false, &first);
	if (rc == -EBUSY || rc == -ENOMEM)
		return rc;
	if (rc < 0 || (!settle && first)) {
		/* Cancelled, out of time, or (default mode) something failed:
		 * the tasks are cancelled, and waited for (futures are not: a
		 * future cannot be cancelled, it stays the caller's). */
		cancel_items(v);
		int ignored;
		if (wait_items(v, (unsigned)ntasks, false, true, -1, true, &ignored) == -ENOMEM)
			for (size_t i = 0; i < n; i++) /* no memory for a watch: one by one */
				if (item_task(v, i))
					rlt__oneshot_wait_k(&item_task(v, i)->done, -1,
							    RLT__WK_JOIN | RLT__WAIT_NOCANCEL);
	}
	for (size_t i = 0; i < n; i++) {
		void *res = NULL;
		int o;
		rlt_task *t = item_task(v, i);
		if (t)
			o = rlt_join(t, &res); /* done: does not suspend */
		else if (rlt__oneshot_is_set(item_oneshot(v, i)))
			o = rlt__future_outcome(item_future(v, i), &res);
		else
			o = -EINPROGRESS; /* left pending by a failure or a cancel */
		if (results)
			results[i] = res;
		if (errs)
			errs[i] = o;
	}
	if (rc < 0)
		return rc;
	return settle ? 0 : first;
}

int rlt_gather(rlt_task *const *tasks, size_t n, void **results, int *errs, unsigned flags)
{
	if (n && !tasks)
		return rlt__task_self() ? -EINVAL : -EPERM;
	items v = {tasks, NULL, n};
	return gather(&v, results, errs, flags);
}

int rlt_gatherv(const rlt_awaitable *aws, size_t n, void **results, int *errs, unsigned flags)
{
	if (n && !aws)
		return rlt__task_self() ? -EINVAL : -EPERM;
	items v = {NULL, aws, n};
	return gather(&v, results, errs, flags);
}

/* asyncio.wait over v; *done_first reorders (elem: the array's element
 * size). */
static int wait_(const items *v, void *array, size_t elem, int how, int64_t timeout_ns)
{
	size_t ntasks;
	int rc = check_items(v, &ntasks);
	if (rc < 0)
		return rc;
	size_t n = v->n;
	unsigned need;
	bool on_fail = false;
	switch (how) {
	case RLT_FIRST_COMPLETED:
		need = n ? 1 : 0;
		break;
	case RLT_FIRST_EXCEPTION:
		need = (unsigned)n;
		on_fail = true;
		break;
	case RLT_ALL_COMPLETED:
		need = (unsigned)n;
		break;
	default:
		return -EINVAL;
	}
	int first;
	rc = wait_items(v, need, on_fail, false, timeout_ns < 0 ? -1 : timeout_ns, false, &first);
	if (rc == -ETIMEDOUT) {
		/* Our own timeout is not an error; an enclosing scope's is. */
		if (rlt__scope_expired(rlt__task_self()))
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	/* Done ones first, stably: a small in-place pass per group. Whether an
	 * item is done is read once, before it moves. */
	size_t k = 0;
	char tmp[sizeof(rlt_awaitable)];
	char *a = array;
	for (size_t i = 0; i < n; i++) {
		if (rlt__oneshot_is_set(item_oneshot(v, i))) {
			memcpy(tmp, a + i * elem, elem);
			memmove(a + (k + 1) * elem, a + k * elem, (i - k) * elem);
			memcpy(a + k * elem, tmp, elem);
			k++;
		}
	}
	return (int)k;
}

int rlt_wait(rlt_task **tasks, size_t n, int how, int64_t timeout_ns)
{
	if (n && !tasks)
		return rlt__task_self() ? -EINVAL : -EPERM;
	items v = {tasks, NULL, n};
	return wait_(&v, tasks, sizeof(*tasks), how, timeout_ns);
}

int rlt_waitv(rlt_awaitable *aws, size_t n, int how, int64_t timeout_ns)
{
	if (n && !aws)
		return rlt__task_self() ? -EINVAL : -EPERM;
	items v = {NULL, aws, n};
	return wait_(&v, aws, sizeof(*aws), how, timeout_ns);
}

int rlt_wait_for(rlt_task *t, int64_t timeout_ns, void **result)
{
	return rlt__join(t, result, timeout_ns < 0 ? -1 : timeout_ns);
}

/* ---- groups ---- */

struct rlt_group {
	rlt__watch wa;
	rlt__spin lock;
	rlt_task *owner;
	rlt_task **tasks;
	size_t n, cap;
	size_t finished;
	size_t failed;
	int first_err;
	uint64_t first_id;
	char first_name[RLT_TASK_NAME_MAX + 1];
	bool shutting_down;   /* a failure or rlt_group_cancel: cancel new tasks */
	bool owner_waiting;   /* in rlt_group_wait */
	bool owner_cancelled; /* we cancelled the owner: take it back */
	rlt__oneshot os;      /* the owner waits here for finished == n */
};

/* Lock held. */
static void group_cancel_locked(rlt_group *g)
{
	g->shutting_down = true;
	cancel_all(g->tasks, g->n);
}

static void group_notify(rlt__watch *wa, void *subject)
{
	rlt_group *g = (rlt_group *)wa;
	rlt_task *t = subject;
	int o = t ? rlt__task_outcome(t) : 0;
	rlt__spin_lock(&g->lock);
	g->finished++;
	if (failed(o) && g->failed++ == 0) {
		g->first_err = o;
		g->first_id = t->id;
		strncpy(g->first_name, rlt__task_name(t), RLT_TASK_NAME_MAX);
		g->first_name[RLT_TASK_NAME_MAX] = '\0';
		group_cancel_locked(g);
		if (!g->owner_waiting) {
			g->owner_cancelled = true;
			rlt_cancel(g->owner);
		}
	}
	bool wake = g->owner_waiting && g->finished == g->n;
	rlt__spin_unlock(&g->lock);
	/* Our last touch of g: once the owner is woken it frees g. */
	if (wake)
		rlt__oneshot_fire(&g->os);
}

rlt_group *rlt_group_new(void)
{
	rlt_task *self = rlt__task_self();
	if (!self) {
		errno = EPERM;
		return NULL;
	}
	rlt_group *g = rlt__calloc(1, sizeof(*g));
	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	g->wa.notify = group_notify;
	rlt__spin_init(&g->lock);
	g->owner = self;
	rlt__oneshot_init(&g->os);
	return g;
}

rlt_task *rlt_group_spawn_named(rlt_group *g, rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts,
				const char *fn_name)
{
	if (!g || !fn || (opts && (opts->flags & RLT_SPAWN_DETACHED))) {
		errno = EINVAL;
		return NULL;
	}
	rlt__spin_lock(&g->lock);
	if (g->shutting_down) {
		rlt__spin_unlock(&g->lock);
		errno = ECANCELED;
		return NULL;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		rlt_task **v = rlt__realloc(g->tasks, cap * sizeof(*v));
		if (!v) {
			rlt__spin_unlock(&g->lock);
			errno = ENOMEM;
			return NULL;
		}
		g->tasks = v;
		g->cap = cap;
	}
	/* Counted before it exists: its notify must find it counted. */
	size_t slot = g->n++;
	g->tasks[slot] = NULL;
	rlt__spin_unlock(&g->lock);
	rlt_task *t = rlt__spawn_watched(fn, arg, opts, &g->wa, fn_name);
	int err = errno;
	rlt__spin_lock(&g->lock);
	if (!t) {
		/* Nobody else can have taken a later slot's place: move the
		 * last one here. */
		g->tasks[slot] = g->tasks[g->n - 1];
		g->n--;
	} else {
		g->tasks[slot] = t;
		if (g->shutting_down)
			rlt_cancel(t); /* it does not even start */
	}
	bool wake = g->owner_waiting && g->finished == g->n;
	rlt__spin_unlock(&g->lock);
	if (wake)
		rlt__oneshot_fire(&g->os);
	if (!t)
		errno = err;
	return t;
}

int rlt_group_cancel(rlt_group *g)
{
	if (!g)
		return -EINVAL;
	rlt__spin_lock(&g->lock);
	group_cancel_locked(g);
	rlt__spin_unlock(&g->lock);
	return 0;
}

int rlt_group_wait(rlt_group *g, rlt_group_report *report)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	if (!g || g->owner != self)
		return -EINVAL;
	rlt__spin_lock(&g->lock);
	g->owner_waiting = true;
	if (g->owner_cancelled) {
		/* The failure cancelled us to bring us here: take it back. */
		uint32_t old =
		    atomic_fetch_and_explicit(&self->cancel, ~RLT__C_PENDING, memory_order_acq_rel);
		if (!(old & RLT__C_PENDING) && self->c.ncancel)
			self->c.ncancel--;
		g->owner_cancelled = false;
	}
	bool done = g->finished == g->n;
	rlt__spin_unlock(&g->lock);
	int rc = 0;
	if (!done) {
		rc = rlt__oneshot_wait_k(&g->os, -1, RLT__WK_TASKS);
		if (rc < 0) {
			/* We were cancelled or ran out of time: so are our tasks. */
			rlt_group_cancel(g);
			rlt__oneshot_wait_k(&g->os, -1, RLT__WK_TASKS | RLT__WAIT_NOCANCEL);
		}
	}
	/* Every task has notified: nobody touches g but us now. */
	for (size_t i = 0; i < g->n; i++)
		rlt_join(g->tasks[i], NULL);
	if (report) {
		report->err = g->first_err;
		report->failed = g->failed;
		report->tasks = g->n;
		report->task_id = g->first_id;
		memcpy(report->task_name, g->first_name, sizeof(report->task_name));
	}
	int err = g->first_err ? g->first_err : rc;
	rlt__free(g->tasks);
	rlt__free(g);
	return err;
}

/* Behind the macro (gather.h), for the ABI: no function name. */
rlt_task *(rlt_group_spawn)(rlt_group *g, rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts)
{
	return rlt_group_spawn_named(g, fn, arg, opts, NULL);
}
