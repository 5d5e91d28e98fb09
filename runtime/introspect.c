/*
 * Introspection: what each live task is doing (rlt_task_state,
 * rlt_dump_tasks, and the dump on SIGQUIT in debug mode, as Go prints its
 * goroutines).
 *
 * Every task is in the list of its owner (the worker that first ran it),
 * and only the owner's thread links or unlinks it. So each worker lists its
 * own tasks, on its own thread: rlt_dump_tasks posts a message to every
 * other worker and waits for their parts. What a task is doing is read
 * with relaxed atomic loads (state, wait kind): a snapshot, exact for
 * tasks that are waiting, approximate for ones that move.
 */
#include "ringlet/task.h"

#include "ringlet/policy.h"
#include "ringlet/time.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[RLT__WK_COUNT] = {
    [RLT__WK_NONE] = "?",
    [RLT__WK_IO] = "io",
    [RLT__WK_SLEEP] = "sleep",
    [RLT__WK_FUTURE] = "future",
    [RLT__WK_JOIN] = "join",
    [RLT__WK_TASKS] = "tasks",
    [RLT__WK_MUTEX] = "mutex",
    [RLT__WK_EVENT] = "event",
    [RLT__WK_SEM] = "semaphore",
    [RLT__WK_COND] = "condition",
    [RLT__WK_WAITGROUP] = "waitgroup",
    [RLT__WK_CHAN_SEND] = "channel send",
    [RLT__WK_CHAN_RECV] = "channel recv",
    [RLT__WK_JOB] = "pool job",
    [RLT__WK_GEN] = "generator",
};

static int state_of(const rlt_task *t, char *what, size_t len)
{
	uint8_t st = rlt__tstate(t);
	/* Done means what rlt_cancel and rlt_join see: the done oneshot set
	 * (the state turns DONE a moment before). */
	if (rlt__oneshot_is_set(&t->done))
		st = RLT__T_DONE;
	else if (st == RLT__T_DONE)
		st = RLT__T_RUNNING;
	int out;
	switch (st) {
	case RLT__T_RUNNING:
		out = RLT_TASK_RUNNING;
		break;
	case RLT__T_WAITING:
		out = RLT_TASK_WAITING;
		break;
	case RLT__T_DONE:
		out = RLT_TASK_DONE;
		break;
	default:
		out = RLT_TASK_RUNNABLE;
		break;
	}
	if (what && len) {
		what[0] = '\0';
		if (out == RLT_TASK_WAITING) {
			unsigned k =
			    atomic_load_explicit(&((rlt_task *)t)->wait_kind, memory_order_relaxed);
			unsigned kind = k & 0xff;
			if (kind == RLT__WK_IO)
				snprintf(what, len, "io %s", rlt_op_name(k >> 8));
			else
				snprintf(what, len, "%s",
					 kind_names[kind < RLT__WK_COUNT ? kind : 0]);
		}
	}
	return out;
}

int rlt_task_state(const rlt_task *t, char *what, size_t len)
{
	if (!t)
		return -EINVAL;
	return state_of(t, what, len);
}

static const char *state_name(int st)
{
	switch (st) {
	case RLT_TASK_RUNNING:
		return "running";
	case RLT_TASK_WAITING:
		return "waiting";
	case RLT_TASK_DONE:
		return "done";
	default:
		return "runnable";
	}
}

/* w's tasks, on w's thread. */
static void list_worker(rlt__worker *w, FILE *out, uint64_t now, const rlt_task *asker)
{
	unsigned n = 0;
	for (rlt_task *t = w->all; t; t = t->all_next)
		n++;
	fprintf(out, "worker %u: %u task%s\n", w->index, n, n == 1 ? "" : "s");
	for (rlt_task *t = w->all; t; t = t->all_next) {
		char what[48] = "";
		/* The task asking for the dump waits for it: it is the one
		 * running, as far as its reader is concerned. */
		int st = t == asker ? RLT_TASK_RUNNING : state_of(t, what, sizeof(what));
		double age = now > t->born ? (double)(now - t->born) / 1e9 : 0.0;
		fprintf(out, "  %-20s id %-6llu %-8s %-18s age %.3f s\n", rlt__task_name(t),
			(unsigned long long)t->id, state_name(st), what, age);
	}
}

typedef struct dump_req {
	atomic_uint left;
	rlt__oneshot done;
	uint64_t now;
	const rlt_task *asker;
	bool infos; /* rlt__task_infos: records, not text */
} dump_req;

typedef struct dump_part {
	rlt__msg m;
	dump_req *req;
	char *buf; /* text: open_memstream's; infos: an rlt__task_info array */
	size_t len;
} dump_part;

static void part_fill(rlt__worker *w, dump_part *p, uint64_t now, const rlt_task *asker)
{
	p->buf = NULL;
	p->len = 0;
	FILE *f = open_memstream(&p->buf, &p->len);
	if (!f)
		return;
	list_worker(w, f, now, asker);
	fclose(f);
}

/* w's tasks as records, on w's thread (p->len: how many). */
static void part_infos(rlt__worker *w, dump_part *p, uint64_t now, const rlt_task *asker)
{
	size_t n = 0;
	for (rlt_task *t = w->all; t; t = t->all_next)
		n++;
	p->len = 0;
	p->buf = n ? rlt__calloc(n, sizeof(rlt__task_info)) : NULL;
	if (!p->buf)
		return;
	rlt__task_info *ti = (rlt__task_info *)(void *)p->buf;
	for (rlt_task *t = w->all; t && p->len < n; t = t->all_next) {
		rlt__task_info *o = &ti[p->len++];
		o->id = t->id;
		o->worker = w->index;
		o->state = t == asker ? RLT_TASK_RUNNING : state_of(t, o->what, sizeof(o->what));
		o->state_name = state_name(o->state);
		o->age_ns = now > t->born ? now - t->born : 0;
		o->held_ns = rlt__ticks_to_ns(atomic_load_explicit(&t->held, memory_order_relaxed));
		snprintf(o->name, sizeof(o->name), "%s", rlt__task_name(t));
	}
}

static void part_run(rlt__worker *w, rlt__msg *m)
{
	dump_part *p = (dump_part *)m;
	dump_req *req = p->req;
	if (req->infos)
		part_infos(w, p, req->now, req->asker);
	else
		part_fill(w, p, req->now, req->asker);
	/* The last part wakes the requester; after that, p and req may be gone. */
	if (atomic_fetch_sub_explicit(&req->left, 1, memory_order_acq_rel) == 1) {
		rlt__oneshot_fire(&req->done);
	}
}

/* Every worker's part, each made on its worker's thread; the caller (a
 * task) waits for them. NULL (errno set) on failure. */
static dump_part *collect(bool infos)
{
	rlt__worker *self = rlt__worker_self();
	rlt_task *t = rlt__task_self();
	rlt__runtime *rt = self->rt;
	unsigned n = rt->nworkers;
	dump_part *parts = rlt__calloc(n, sizeof(*parts));
	if (!parts) {
		errno = ENOMEM;
		return NULL;
	}
	dump_req req;
	req.now = rlt_now();
	req.asker = t;
	req.infos = infos;
	rlt__oneshot_init(&req.done);
	atomic_init(&req.left, n);
	for (unsigned i = 0; i < n; i++) {
		parts[i].req = &req;
		parts[i].m.fn = part_run;
	}
	/* Our own worker's part now (we are on its thread, its list cannot
	 * change under us); the others', on their threads. */
	unsigned mine = self->index;
	for (unsigned i = 0; i < n; i++)
		if (i != mine)
			rlt__worker_post(&rt->workers[i], &parts[i].m);
	part_run(self, &parts[mine].m);
	rlt__oneshot_wait_k(&req.done, -1, RLT__WK_NONE | RLT__WAIT_NOCANCEL);
	return parts;
}

int rlt__task_infos(rlt__task_info **out, size_t *count)
{
	if (!rlt__task_self())
		return -EPERM;
	dump_part *parts = collect(true);
	if (!parts)
		return -ENOMEM;
	rlt__runtime *rt = rlt__worker_self()->rt;
	size_t total = 0;
	for (unsigned i = 0; i < rt->nworkers; i++)
		total += parts[i].len;
	rlt__task_info *all = rlt__calloc(total ? total : 1, sizeof(*all));
	size_t k = 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		if (all && parts[i].len)
			memcpy(all + k, parts[i].buf, parts[i].len * sizeof(*all));
		k += parts[i].len;
		rlt__free(parts[i].buf);
	}
	rlt__free(parts);
	if (!all)
		return -ENOMEM;
	*out = all;
	*count = total;
	return 0;
}

int rlt_dump_tasks(FILE *out)
{
	rlt__worker *self = rlt__worker_self();
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (!out)
		return -EINVAL;
	rlt__runtime *rt = self->rt;
	unsigned n = rt->nworkers;
	dump_part *parts = collect(false);
	if (!parts)
		return -ENOMEM;
	fprintf(out, "ringlet: %u worker%s, policy %s\n", n, n == 1 ? "" : "s", rt->policy.spec);
	for (unsigned i = 0; i < n; i++) {
		if (parts[i].buf)
			fwrite(parts[i].buf, 1, parts[i].len, out);
		free(parts[i].buf); /* open_memstream's: the C library's malloc */
	}
	fflush(out);
	rlt__free(parts);
	return 0;
}

/* ---- SIGQUIT (debug mode) ---- */

static _Atomic(rlt__runtime *) sig_rt;
static struct sigaction sig_old;

static void on_sigquit(int sig)
{
	(void)sig;
	rlt__runtime *rt = atomic_load_explicit(&sig_rt, memory_order_acquire);
	if (!rt)
		return;
	if (rt->watchdog_on) {
		/* The watchdog prints the header and each worker's running task
		 * (a stuck worker's too), then asks the workers for their lists. */
		atomic_store_explicit(&rt->dump_asked, true, memory_order_release);
		return;
	}
	atomic_fetch_add_explicit(&rt->dump_gen, 1, memory_order_release);
	atomic_fetch_or_explicit(&rt->attn, RLT__ATTN_DUMP, memory_order_release);
	int saved = errno;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rlt__worker *w = &rt->workers[i];
		if (w->loop_ready)
			w->loop.policy->wake(&w->loop, NULL); /* an eventfd write */
	}
	errno = saved;
}

void rlt__dump_signal_install(rlt__runtime *rt)
{
	rlt__runtime *none = NULL;
	if (!atomic_compare_exchange_strong(&sig_rt, &none, rt))
		return; /* another runtime of the process has it */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigquit;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGQUIT, &sa, &sig_old);
}

void rlt__dump_signal_remove(rlt__runtime *rt)
{
	rlt__runtime *mine = rt;
	if (atomic_load(&sig_rt) != rt)
		return;
	sigaction(SIGQUIT, &sig_old, NULL);
	atomic_compare_exchange_strong(&sig_rt, &mine, NULL);
}

void rlt__dump_worker(rlt__worker *w, unsigned gen)
{
	w->dump_seen = gen;
	/* One worker's list at a time on stderr, whole. */
	flockfile(stderr);
	if (w->index == 0 && !w->rt->watchdog_on) /* else the watchdog printed it */
		fprintf(stderr, "ringlet: SIGQUIT: tasks of %u worker%s, policy %s\n",
			w->rt->nworkers, w->rt->nworkers == 1 ? "" : "s", w->rt->policy.spec);
	list_worker(w, stderr, rlt_now(), NULL);
	funlockfile(stderr);
}
