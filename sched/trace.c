/*
 * Traces: per-worker event rings, written out as Chrome trace event JSON
 * (sched/trace.h has the recording side).
 *
 * The file: {"displayTimeUnit":"ns","traceEvents":[...]} with one thread
 * per worker (tid = worker index). A task's run is a B/E pair named after
 * the task's function, a sleep in the kernel a "park" pair; spawns,
 * steals, I/O submissions and completions are instant events ("ph":"i").
 * The rings keep the last events only: a pair whose B was overwritten is
 * dropped, and a pair still open when the trace is written is closed at
 * the worker's last event, so every B has its E.
 */
#include "sched/trace.h"

#include "ringlet/executor.h"
#include "ringlet/policy.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/config.h"
#include "runtime/oneshot.h"
#include "sched/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct rlt__trace {
	uint64_t base; /* ticks at start: time 0 of the file */
	char path[256];
	rlt__tring *rings; /* one per worker */
} rlt__trace;

int rlt__trace_init(rlt__runtime *rt)
{
	if (!rlt__settings_given(&rt->settings, RLT__CFG_TRACE) || !rt->settings.trace[0])
		return 0;
	rlt__ticks_calibrate();
	uint64_t bytes = rt->settings.v[RLT__CFG_TRACE_SIZE];
	uint64_t cap = 1;
	while (cap * 2 * sizeof(rlt__tev) <= bytes)
		cap *= 2;
	rlt__trace *tr = rlt__calloc(1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	tr->rings = rlt__calloc(rt->nworkers, sizeof(*tr->rings));
	if (!tr->rings) {
		rlt__free(tr);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		/* Address space now, pages as the ring fills (calloc of this
		 * size maps fresh zero pages). */
		tr->rings[i].ev = rlt__calloc(cap, sizeof(rlt__tev));
		if (!tr->rings[i].ev) {
			for (unsigned j = 0; j < i; j++)
				rlt__free(tr->rings[j].ev);
			rlt__free(tr->rings);
			rlt__free(tr);
			return -ENOMEM;
		}
		tr->rings[i].mask = cap - 1;
		rt->workers[i].trace = &tr->rings[i];
	}
	snprintf(tr->path, sizeof(tr->path), "%s", rt->settings.trace);
	tr->base = rlt__ticks();
	rt->trace = tr;
	atomic_fetch_or_explicit(&rt->observe, RLT__OBS_TRACE, memory_order_relaxed);
	return 0;
}

/* ---- writing ---- */

static const char *left_as(uint32_t st)
{
	switch (st) {
	case RLT__T_WAITING:
		return "waiting";
	case RLT__T_YIELDED:
		return "yielded";
	case RLT__T_DONE:
		return "done";
	default:
		return "runnable";
	}
}

static void ts(FILE *f, uint64_t base, uint64_t ticks)
{
	uint64_t ns = ticks > base ? rlt__ticks_to_ns(ticks - base) : 0;
	fprintf(f, "%" PRIu64 ".%03u", ns / 1000u, (unsigned)(ns % 1000u));
}

/* One worker's events, oldest first (ev[0..n)), balanced. Returns the
 * events written. */
static uint64_t write_worker(FILE *f, unsigned w, long pid, uint64_t base, const rlt__tev *ev,
			     uint64_t n, bool *first)
{
	uint64_t out = 0;
	unsigned depth = 0;
	const char *open_cat = NULL;
	uint64_t last = base;
	for (uint64_t i = 0; i < n; i++) {
		const rlt__tev *e = &ev[i];
		last = e->ticks;
		bool is_b = e->kind == RLT__TEV_RUN_B || e->kind == RLT__TEV_PARK_B;
		bool is_e = e->kind == RLT__TEV_RUN_E || e->kind == RLT__TEV_PARK_E;
		if (is_e && depth == 0)
			continue; /* its B was overwritten */
		if (is_b && depth > 0) {
			/* Cannot happen (runs and parks do not nest); close it
			 * rather than write an unbalanced file. */
			fprintf(f, ",\n{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":", pid, w);
			ts(f, base, e->ticks);
			fputc('}', f);
			depth--;
		}
		fputs(*first ? "\n" : ",\n", f);
		*first = false;
		out++;
		switch (e->kind) {
		case RLT__TEV_RUN_B:
			fputs("{\"name\":", f);
			rlt__json_fputs(f, e->name ? e->name : "task");
			fprintf(f, ",\"cat\":\"task\",\"ph\":\"B\",\"args\":{\"id\":%" PRIu64 "}",
				e->id);
			open_cat = "task";
			depth++;
			break;
		case RLT__TEV_RUN_E:
			fprintf(f, "{\"ph\":\"E\",\"args\":{\"left\":\"%s\"}", left_as(e->arg));
			depth--;
			break;
		case RLT__TEV_PARK_B:
			fputs("{\"name\":\"park\",\"cat\":\"sched\",\"ph\":\"B\"", f);
			open_cat = "sched";
			depth++;
			break;
		case RLT__TEV_PARK_E:
			fputs("{\"ph\":\"E\"", f);
			depth--;
			break;
		case RLT__TEV_SPAWN:
			fprintf(f,
				"{\"name\":\"spawn\",\"cat\":\"task\",\"ph\":\"i\",\"s\":\"t\","
				"\"args\":{\"task\":%" PRIu64 ",\"fn\":",
				e->id);
			rlt__json_fputs(f, e->name ? e->name : "");
			fputc('}', f);
			break;
		case RLT__TEV_STEAL:
			fprintf(f,
				"{\"name\":\"steal\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\","
				"\"args\":{\"from\":%" PRIu64 ",\"tasks\":%u}",
				e->id, e->arg);
			break;
		case RLT__TEV_IO_SUB:
		case RLT__TEV_IO_DONE: {
			bool sub = e->kind == RLT__TEV_IO_SUB;
			fprintf(f,
				"{\"name\":\"%s %s\",\"cat\":\"io\",\"ph\":\"i\",\"s\":\"t\","
				"\"args\":{\"%s\":%" PRId64 "}",
				sub ? "submit" : "done", rlt_op_name(e->arg), sub ? "fd" : "res",
				(int64_t)e->id);
			break;
		}
		default:
			fputs("{\"name\":\"?\",\"ph\":\"i\",\"s\":\"t\"", f);
			break;
		}
		fprintf(f, ",\"pid\":%ld,\"tid\":%u,\"ts\":", pid, w);
		ts(f, base, e->ticks);
		fputc('}', f);
	}
	(void)open_cat;
	while (depth > 0) { /* still running (or asleep) when written */
		fprintf(f, ",\n{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":", pid, w);
		ts(f, base, last);
		fputc('}', f);
		depth--;
	}
	return out;
}

/* A worker's ring, oldest first, copied (on its thread, or once it has
 * stopped). */
typedef struct copy {
	rlt__tev *ev;
	uint64_t n;
} copy;

static void ring_copy(const rlt__tring *r, copy *c)
{
	uint64_t cap = r->mask + 1;
	uint64_t n = r->n < cap ? r->n : cap;
	c->n = 0;
	c->ev = n ? malloc(n * sizeof(rlt__tev)) : NULL;
	if (!c->ev)
		return;
	uint64_t start = r->n - n;
	for (uint64_t i = 0; i < n; i++)
		c->ev[i] = r->ev[(start + i) & r->mask];
	c->n = n;
}

static int write_file(const char *path, uint64_t base, copy *parts, unsigned nw, uint64_t *events)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	long pid = (long)getpid();
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
	fprintf(f,
		"\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%ld,\"args\":{\"name\":"
		"\"ringlet\"}}",
		pid);
	for (unsigned w = 0; w < nw; w++)
		fprintf(f,
			",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%ld,\"tid\":%u,"
			"\"args\":{\"name\":\"worker %u\"}}",
			pid, w, w);
	bool first = false;
	uint64_t total = 0;
	for (unsigned w = 0; w < nw; w++)
		total += write_worker(f, w, pid, base, parts[w].ev, parts[w].n, &first);
	fprintf(f, "\n]}\n");
	int rc = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (events)
		*events = total;
	return rc;
}

void rlt__trace_fini(rlt__runtime *rt)
{
	rlt__trace *tr = rt->trace;
	if (!tr)
		return;
	copy *parts = calloc(rt->nworkers, sizeof(*parts));
	if (parts) {
		for (unsigned i = 0; i < rt->nworkers; i++)
			ring_copy(&tr->rings[i], &parts[i]);
		int rc = write_file(tr->path, tr->base, parts, rt->nworkers, NULL);
		if (rc < 0)
			fprintf(stderr, "ringlet: RINGLET_TRACE=%s: %s\n", tr->path, strerror(-rc));
		for (unsigned i = 0; i < rt->nworkers; i++)
			free(parts[i].ev);
		free(parts);
	}
	for (unsigned i = 0; i < rt->nworkers; i++) {
		rt->workers[i].trace = NULL;
		rlt__free(tr->rings[i].ev);
	}
	rlt__free(tr->rings);
	rlt__free(tr);
	rt->trace = NULL;
}

/* ---- a flush while running (the console's `trace`) ---- */

typedef struct flush_req {
	atomic_uint left;
	rlt__oneshot done;
	rlt__trace *tr;
	copy *parts;
} flush_req;

typedef struct flush_part {
	rlt__msg m;
	flush_req *req;
} flush_part;

static void part_run(rlt__worker *w, rlt__msg *m)
{
	flush_part *p = (flush_part *)m;
	flush_req *req = p->req;
	ring_copy(&req->tr->rings[w->index], &req->parts[w->index]);
	if (atomic_fetch_sub_explicit(&req->left, 1, memory_order_acq_rel) == 1)
		rlt__oneshot_fire(&req->done);
}

typedef struct write_job {
	const char *path;
	uint64_t base;
	copy *parts;
	unsigned nw;
	uint64_t events;
	int rc;
} write_job;

static void *write_job_run(void *arg)
{
	write_job *j = arg;
	j->rc = write_file(j->path, j->base, j->parts, j->nw, &j->events);
	return NULL;
}

int rlt__trace_flush(rlt__runtime *rt, char *path, size_t len, uint64_t *events)
{
	rlt__trace *tr = rt->trace;
	if (!tr)
		return -ENOENT;
	rlt__worker *self = rlt__worker_self();
	if (!self || !rlt__task_self())
		return -EPERM;
	unsigned n = rt->nworkers;
	copy *parts = calloc(n, sizeof(*parts));
	flush_part *msgs = calloc(n, sizeof(*msgs));
	if (!parts || !msgs) {
		free(parts);
		free(msgs);
		return -ENOMEM;
	}
	flush_req req;
	req.tr = tr;
	req.parts = parts;
	rlt__oneshot_init(&req.done);
	atomic_init(&req.left, n);
	unsigned mine = self->index;
	for (unsigned i = 0; i < n; i++) {
		msgs[i].req = &req;
		msgs[i].m.fn = part_run;
		if (i != mine)
			rlt__worker_post(&rt->workers[i], &msgs[i].m);
	}
	part_run(self, &msgs[mine].m);
	rlt__oneshot_wait_k(&req.done, -1, RLT__WK_NONE | RLT__WAIT_NOCANCEL);
	/* Megabytes of JSON: on a pool thread, not on the worker. */
	write_job j = {tr->path, tr->base, parts, n, 0, 0};
	int rc = rlt_run_blocking(NULL, write_job_run, &j, NULL);
	if (rc == 0)
		rc = j.rc;
	for (unsigned i = 0; i < n; i++)
		free(parts[i].ev);
	free(parts);
	free(msgs);
	snprintf(path, len, "%s", tr->path);
	if (events)
		*events = j.events;
	return rc;
}
