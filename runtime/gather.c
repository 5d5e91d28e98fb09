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
#include "runtime/waitq.h"
#include "sched/sched.h"

#include <string.h>

/* The outcome that counts as a failure (a cancelled task is not one). */
static inline bool failed(int outcome)
{
	return outcome != 0 && outcome != -ECANCELED;
}

/* ---- a watch over n tasks ---- */

typedef struct tasks_watch {
	rlt__watch wa;
	atomic_uint refs;
	atomic_uint done;      /* tasks finished */
	atomic_bool fired;     /* os completed (once) */
	atomic_int first_fail; /* the first failure's outcome, 0 if none yet */
	unsigned need;	       /* fire when done reaches it... */
	bool on_fail;	       /* ...or on the first failure */
	rlt__oneshot os;       /* the waiter's */
} tasks_watch;

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

/* n more tasks are done, fail of them failed (first: one's outcome). */
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

/*
 * Wait until need of tasks[] are done (or one failed, with on_fail), at
 * most timeout_ns, cancellably unless nocancel. Returns 0 (the condition
 * holds), -ETIMEDOUT, -ECANCELED, or an argument error. *first_fail gets
 * the first failure seen (0 if none).
 */
static int wait_tasks(rlt_task *const *tasks, size_t n, unsigned need, bool on_fail,
		      int64_t timeout_ns, bool nocancel, int *first_fail)
{
	*first_fail = 0;
	if (n == 0)
		return 0;
	tasks_watch *tw = rlt__malloc(sizeof(*tw));
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
	/* Register with every task; those already done are counted here. */
	unsigned pre = 0;
	int pre_fail = 0, rc = 0;
	size_t reg = 0;
	for (; reg < n; reg++) {
		atomic_fetch_add_explicit(&tw->refs, 1, memory_order_relaxed);
		int r = rlt__oneshot_watch(&tasks[reg]->done, &tw->wa);
		if (r == 0)
			continue;
		atomic_fetch_sub_explicit(&tw->refs, 1, memory_order_relaxed);
		if (r < 0) {
			rc = r; /* -EBUSY: someone joins or waits for it */
			break;
		}
		pre++;
		int o = rlt__task_outcome(tasks[reg]);
		if (failed(o) && !pre_fail)
			pre_fail = o;
	}
	if (rc == 0) {
		if (pre || pre_fail)
			watch_count(tw, pre, pre_fail);
		rc = rlt__oneshot_wait_k(&tw->os, timeout_ns,
					 RLT__WK_TASKS | (nocancel ? RLT__WAIT_NOCANCEL : 0));
	}
	/* Take the watch back from the tasks still running; a task that
	 * finished meanwhile notifies (and drops its reference) itself. */
	for (size_t i = 0; i < reg; i++)
		if (rlt__oneshot_unwatch(&tasks[i]->done, &tw->wa))
			watch_unref(tw);
	*first_fail = atomic_load_explicit(&tw->first_fail, memory_order_acquire);
	watch_unref(tw);
	return rc;
}

static int check_tasks(rlt_task *const *tasks, size_t n)
{
	if (!rlt__task_self())
		return -EPERM;
	if (n && !tasks)
		return -EINVAL;
	rlt_task *self = rlt__task_self();
	for (size_t i = 0; i < n; i++)
		if (!tasks[i] || tasks[i] == self)
			return tasks[i] ? -EDEADLK : -EINVAL;
	return 0;
}

/* Cancel them all, with one barrier (runtime/cancel.h). */
static void cancel_all(rlt_task *const *tasks, size_t n)
{
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= tasks[i] && rlt__cancel_mark(tasks[i]);
	if (!any)
		return;
	rlt__cancel_fence();
	for (size_t i = 0; i < n; i++)
		if (tasks[i])
			rlt__cancel_route(tasks[i]); /* a finished one has no wait_on */
}

int rlt_gather(rlt_task *const *tasks, size_t n, void **results, int *errs, unsigned flags)
{
	int rc = check_tasks(tasks, n);
	if (rc < 0)
		return rc;
	if (flags & ~RLT_GATHER_SETTLE)
		return -EINVAL;
	bool settle = flags & RLT_GATHER_SETTLE;
	int first = 0;
	rc = wait_tasks(tasks, n, (unsigned)n, !settle, -1, false, &first);
	if (rc == -EBUSY || rc == -ENOMEM)
		return rc;
	if (rc < 0 || (!settle && first)) {
		/* Cancelled, out of time, or (default mode) a task failed: the
		 * others are cancelled, and everything is waited for. */
		cancel_all(tasks, n);
		int ignored;
		if (wait_tasks(tasks, n, (unsigned)n, false, -1, true, &ignored) == -ENOMEM)
			for (size_t i = 0; i < n; i++) /* no memory for a watch: one by one */
				rlt__oneshot_wait_k(&tasks[i]->done, -1,
						    RLT__WK_JOIN | RLT__WAIT_NOCANCEL);
	}
	for (size_t i = 0; i < n; i++) {
		/* Every task is done: rlt_join does not suspend. */
		void *res = NULL;
		int o = rlt_join(tasks[i], &res);
		if (results)
			results[i] = res;
		if (errs)
			errs[i] = o;
	}
	if (rc < 0)
		return rc;
	return settle ? 0 : first;
}

int rlt_wait(rlt_task **tasks, size_t n, int how, int64_t timeout_ns)
{
	int rc = check_tasks(tasks, n);
	if (rc < 0)
		return rc;
	unsigned need;
	bool on_fail = false;
	switch (how) {
	case RLT_FIRST_COMPLETED:
		need = 1;
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
	rc = wait_tasks(tasks, n, need, on_fail, timeout_ns < 0 ? -1 : timeout_ns, false, &first);
	if (rc == -ETIMEDOUT) {
		/* Our own timeout is not an error; an enclosing scope's is. */
		if (rlt__scope_expired(rlt__task_self()))
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	/* Done ones first, stably: a small in-place pass per group. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (rlt__oneshot_is_set(&tasks[i]->done)) {
			rlt_task *t = tasks[i];
			memmove(&tasks[k + 1], &tasks[k], (i - k) * sizeof(*tasks));
			tasks[k++] = t;
		}
	}
	return (int)k;
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

rlt_task *rlt_group_spawn(rlt_group *g, rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts)
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
	rlt_task *t = rlt__spawn_watched(fn, arg, opts, &g->wa);
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
