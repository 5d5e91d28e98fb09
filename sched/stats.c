/*
 * rlt_runtime_stats and its formats (include/ringlet/stats.h); the tick
 * source's calibration (sched/stats.h).
 *
 * A snapshot reads every worker's counters with relaxed loads from
 * whatever thread asks: no message to the workers, no lock, so it works on
 * a worker that is stuck in a task, and costs the workers nothing.
 */
#include "ringlet/executor.h"
#include "ringlet/stats.h"

#include "runtime/cpu.h"
#include "sched/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- ticks ---- */

uint64_t rlt__tick_mult = 1ull << 32; /* 1 ns per tick until calibrated */
static pthread_once_t calib_once = PTHREAD_ONCE_INIT;

static void calibrate(void)
{
#if defined(__x86_64__)
	/* Two points 2 ms apart on both clocks; a constant TSC (every x86-64
	 * CPU of the last decade, and this VM: constant_tsc, nonstop_tsc)
	 * ticks at one rate, so the ratio is good for the process's life. */
	uint64_t m0 = rlt__mono_ns(), c0 = rlt__ticks();
	uint64_t m1;
	while ((m1 = rlt__mono_ns()) - m0 < 2000000u)
		rlt__cpu_relax();
	uint64_t c1 = rlt__ticks();
	if (c1 > c0)
		rlt__tick_mult = (uint64_t)(((unsigned __int128)(m1 - m0) << 32) / (c1 - c0));
#endif
}

void rlt__ticks_calibrate(void)
{
	pthread_once(&calib_once, calibrate);
}

/* ---- the snapshot ---- */

uint64_t rlt_stats_bucket_upper(unsigned b)
{
	if (b == 0)
		return 64;
	if (b >= RLT_STATS_HIST_BUCKETS)
		b = RLT_STATS_HIST_BUCKETS - 1;
	unsigned e = 6 + (b - 1) / 4, sub = (b - 1) % 4;
	return (uint64_t)(4 + sub + 1) << (e - 2);
}

uint64_t rlt_stats_quantile(const uint64_t hist[RLT_STATS_HIST_BUCKETS], double q)
{
	uint64_t total = 0;
	for (unsigned b = 0; b < RLT_STATS_HIST_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	double want = q * (double)total;
	uint64_t seen = 0;
	for (unsigned b = 0; b < RLT_STATS_HIST_BUCKETS; b++) {
		seen += hist[b];
		if ((double)seen >= want && hist[b])
			return rlt_stats_bucket_upper(b);
	}
	return rlt_stats_bucket_upper(RLT_STATS_HIST_BUCKETS - 1);
}

#define G(c) RLT__STAT_GET(c)

static void worker_snap(rlt__worker *w, rlt_worker_stats *o, uint64_t now)
{
	const rlt__wstats *s = &w->st;
	o->spawned = G(s->spawned);
	o->polled = G(s->polls);
	o->completed = G(s->completed);
	o->stolen_in = G(s->stolen_in);
	o->steals = G(s->steals);
	o->remote_in = G(s->remote_in);
	/* The inbox's depth: what was pushed (the senders' rows, read after
	 * remote_in, and the foreign count) minus what was drained. */
	uint64_t drained =
	    o->remote_in + atomic_load_explicit(&w->remote_moved, memory_order_relaxed);
	uint64_t pushed = atomic_load_explicit(&w->remote_foreign, memory_order_relaxed);
	for (unsigned i = 0; i < w->rt->nworkers; i++)
		pushed += G(w->rt->workers[i].st.remote_sent[w->index]);
	o->remote_depth = pushed > drained ? pushed - drained : 0;
	o->local_depth = rlt__local_q_len(&w->lq);
	o->private_depth = atomic_load_explicit(&w->pin_len, memory_order_relaxed);
	o->parks = G(s->parks);
	o->unparks = G(s->unparks);
	o->turns = G(s->turns);
	uint64_t started = G(s->started_ns);
	o->uptime_ns = started && now > started ? now - started : 0;
	uint64_t parked = G(s->parked_ns);
	uint64_t since = G(s->park_since);
	if (since && now > since)
		parked += now - since; /* asleep now: the sleep so far */
	o->parked_ns = parked;
	o->spin_ns = G(s->spin_ns);
	uint64_t idle = parked + o->spin_ns;
	o->busy_ns = o->uptime_ns > idle ? o->uptime_ns - idle : 0;
	o->poll_ns = G(s->poll_ns);
	o->io_ops = G(s->io_ops);
	o->sqes = G(s->io.sqes);
	o->enters = G(s->io.enters);
	o->cqes = G(s->io.cqes);
	o->cq_overflows = G(s->io.cq_overflows);
	o->bytes_read = G(s->bytes_read);
	o->bytes_written = G(s->bytes_written);
	o->timers_armed = G(w->timers.armed);
	o->timers_fired = G(w->timers.fired);
	uint64_t removed = G(w->timers.removed);
	o->timers_pending = o->timers_armed > removed ? o->timers_armed - removed : 0;
	for (unsigned b = 0; b < RLT_STATS_HIST_BUCKETS; b++)
		o->poll_hist[b] = G(s->hist[b]);
}

int rlt_runtime_stats(rlt_runtime *rt, rlt_stats *out)
{
	if (!rt)
		rt = rlt_runtime_self();
	if (!rt || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	unsigned n = rt->nworkers;
	/* The C library's calloc: the caller may free with rlt_stats_release
	 * from anywhere, allocator of ours or not. */
	rlt_worker_stats *ws = calloc(n, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	out->version = RLT_STATS_VERSION;
	out->size = sizeof(rlt_stats);
	out->worker_size = sizeof(rlt_worker_stats);
	out->timing_on =
	    (atomic_load_explicit(&rt->observe, memory_order_relaxed) & RLT__OBS_TIMING) != 0;
	out->pid = (uint64_t)getpid();
	uint64_t now = rlt__mono_ns();
	out->uptime_ns = now > rt->started_ns ? now - rt->started_ns : 0;
	snprintf(out->policy, sizeof(out->policy), "%s",
		 rt->policy.policy ? rt->policy.policy->name : "?");
	out->global_depth = atomic_load_explicit(&rt->global.len, memory_order_relaxed);
	rlt_pool_stats ps;
	if (rlt__default_pool_stats(&ps) == 0) {
		out->pool_threads = ps.threads;
		out->pool_idle = ps.idle;
		out->pool_queued = ps.queued;
		out->pool_completed = ps.completed;
	}
	out->pool_running = atomic_load_explicit(&rt->jobs_waiting, memory_order_relaxed);
	out->spawned_foreign = atomic_load_explicit(&rt->spawned_foreign, memory_order_relaxed);
	out->nworkers = n;
	out->workers = ws;
	for (unsigned i = 0; i < n; i++)
		worker_snap(&rt->workers[i], &ws[i], now);
	/* A victim's stolen_out: its column of the thieves' rows. */
	for (unsigned i = 0; i < n; i++)
		for (unsigned v = 0; v < n; v++)
			ws[v].stolen_out += G(rt->workers[i].st.stolen_from[v]);
	return 0;
}

void rlt_stats_release(rlt_stats *out)
{
	if (!out)
		return;
	free(out->workers);
	out->workers = NULL;
	out->nworkers = 0;
}

void rlt_stats_total(const rlt_stats *snap, rlt_worker_stats *o)
{
	memset(o, 0, sizeof(*o));
	if (!snap)
		return;
	/* Every field is a uint64_t: sum them as an array. */
	_Static_assert(sizeof(rlt_worker_stats) % sizeof(uint64_t) == 0, "all uint64_t");
	uint64_t *dst = (uint64_t *)o;
	for (unsigned i = 0; i < snap->nworkers; i++) {
		const uint64_t *src = (const uint64_t *)&snap->workers[i];
		for (size_t k = 0; k < sizeof(*o) / sizeof(uint64_t); k++)
			dst[k] += src[k];
	}
}

/* ---- formats ---- */

typedef struct outbuf {
	char *buf;
	size_t len, n; /* n: what the whole text needs */
} outbuf;

static __attribute__((format(printf, 2, 3))) void put(outbuf *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->n < o->len ? o->len - o->n : 0;
	int k = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->n += (size_t)k;
}

/* The counters every format lists: name, help, Prometheus type, offset. */
typedef struct field {
	const char *name;
	const char *help;
	bool gauge;
	size_t off;
} field;

#define F(n, g, h)                                                                                 \
	{                                                                                          \
#n, h, g, offsetof(rlt_worker_stats, n)                                            \
	}
static const field fields[] = {
    F(spawned, false, "Tasks spawned by tasks running on the worker."),
    F(polled, false, "Times a task was resumed on the worker."),
    F(completed, false, "Tasks whose function returned on the worker."),
    F(stolen_in, false, "Tasks the worker stole from other workers."),
    F(stolen_out, false, "Tasks other workers stole from the worker."),
    F(steals, false, "Steal operations of the worker that took something."),
    F(remote_in, false, "Tasks woken or spawned on the worker by other threads."),
    F(local_depth, true, "Tasks in the worker's stealable local queue."),
    F(private_depth, true, "Tasks in the worker's private (pinned) queue."),
    F(remote_depth, true, "Tasks in the worker's inbox (woken by other threads)."),
    F(parks, false, "Times the worker slept in the kernel."),
    F(unparks, false, "Wake-ups the worker sent to parked workers."),
    F(turns, false, "Loop turns of the worker."),
    F(uptime_ns, false, "Nanoseconds since the worker's loop started."),
    F(parked_ns, false, "Nanoseconds the worker slept in the kernel."),
    F(spin_ns, false, "Nanoseconds the worker spun looking for work."),
    F(busy_ns, false, "Nanoseconds the worker was neither parked nor spinning."),
    F(poll_ns, false, "Nanoseconds spent inside tasks (task timing on)."),
    F(io_ops, false, "I/O operations handed to the loop policy."),
    F(sqes, false, "io_uring submission queue entries queued."),
    F(enters, false, "io_uring_enter (or epoll_wait) system calls."),
    F(cqes, false, "Completions (or epoll events) reaped."),
    F(cq_overflows, false, "Completions the kernel could not post (CQ overflow)."),
    F(bytes_read, false, "Bytes received by read, readv, recv and recvmsg."),
    F(bytes_written, false, "Bytes sent by write, writev, send and sendmsg."),
    F(timers_armed, false, "Timers armed (sleeps, timeouts, deadlines)."),
    F(timers_fired, false, "Timers that expired."),
    F(timers_pending, true, "Timers armed and not yet expired or cancelled."),
};
#undef F
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static inline uint64_t fval(const rlt_worker_stats *w, const field *f)
{
	return *(const uint64_t *)(const void *)((const char *)w + f->off);
}

void rlt__json_fputs(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_str(outbuf *o, const char *s)
{
	char q[6 * sizeof(((rlt_stats *)0)->policy) + 3] = "\"\"";
	FILE *m = fmemopen(q, sizeof(q), "w");
	if (m) {
		rlt__json_fputs(m, s);
		fclose(m);
	}
	put(o, "%s", q);
}

static void fmt_json(outbuf *o, const rlt_stats *s)
{
	put(o,
	    "{\"version\":%u,\"pid\":%" PRIu64 ",\"uptime_ns\":%" PRIu64 ",\"policy\":", s->version,
	    s->pid, s->uptime_ns);
	json_str(o, s->policy);
	put(o,
	    ",\"timing\":%s,\"global_depth\":%" PRIu64 ",\"pool\":{\"threads\":%" PRIu64
	    ",\"idle\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"completed\":%" PRIu64
	    ",\"running\":%" PRIu64 "},\"spawned_foreign\":%" PRIu64 ",\"workers\":[",
	    s->timing_on ? "true" : "false", s->global_depth, s->pool_threads, s->pool_idle,
	    s->pool_queued, s->pool_completed, s->pool_running, s->spawned_foreign);
	for (unsigned i = 0; i < s->nworkers; i++) {
		const rlt_worker_stats *w = &s->workers[i];
		put(o, "%s{\"worker\":%u", i ? "," : "", i);
		for (size_t k = 0; k < NFIELDS; k++)
			put(o, ",\"%s\":%" PRIu64, fields[k].name, fval(w, &fields[k]));
		/* The histogram as [upper_ns, count] pairs of its non-empty
		 * buckets: short, and exact. */
		put(o, ",\"poll_hist\":[");
		bool first = true;
		for (unsigned b = 0; b < RLT_STATS_HIST_BUCKETS; b++) {
			if (!w->poll_hist[b])
				continue;
			put(o, "%s[%" PRIu64 ",%" PRIu64 "]", first ? "" : ",",
			    rlt_stats_bucket_upper(b), w->poll_hist[b]);
			first = false;
		}
		put(o, "]}");
	}
	put(o, "]}");
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void fmt_text(outbuf *o, const rlt_stats *s)
{
	rlt_worker_stats t;
	rlt_stats_total(s, &t);
	put(o,
	    "ringlet stats: pid %" PRIu64 ", %u worker%s, policy %s, up %.3f s, task timing %s\n",
	    s->pid, s->nworkers, s->nworkers == 1 ? "" : "s", s->policy, (double)s->uptime_ns / 1e9,
	    s->timing_on ? "on" : "off");
	put(o, "%-16s", "");
	for (unsigned i = 0; i < s->nworkers; i++) {
		char h[24];
		snprintf(h, sizeof(h), "worker %u", i);
		put(o, " %14s", h);
	}
	put(o, " %14s\n", "total");
	for (size_t k = 0; k < NFIELDS; k++) {
		put(o, "%-16s", fields[k].name);
		for (unsigned i = 0; i < s->nworkers; i++)
			put(o, " %14" PRIu64, fval(&s->workers[i], &fields[k]));
		put(o, " %14" PRIu64 "\n", fval(&t, &fields[k]));
	}
	put(o, "%-16s", "busy %");
	for (unsigned i = 0; i < s->nworkers; i++)
		put(o, " %14.1f", pct(s->workers[i].busy_ns, s->workers[i].uptime_ns));
	put(o, " %14.1f\n", pct(t.busy_ns, t.uptime_ns));
	if (s->timing_on) {
		put(o, "%-16s", "poll p50/p99 us");
		for (unsigned i = 0; i < s->nworkers; i++) {
			char q[64];
			snprintf(q, sizeof(q), "%.1f/%.1f",
				 (double)rlt_stats_quantile(s->workers[i].poll_hist, 0.5) / 1e3,
				 (double)rlt_stats_quantile(s->workers[i].poll_hist, 0.99) / 1e3);
			put(o, " %14s", q);
		}
		char q[64];
		snprintf(q, sizeof(q), "%.1f/%.1f",
			 (double)rlt_stats_quantile(t.poll_hist, 0.5) / 1e3,
			 (double)rlt_stats_quantile(t.poll_hist, 0.99) / 1e3);
		put(o, " %14s\n", q);
	}
	put(o,
	    "global queue %" PRIu64 "; blocking pool: %" PRIu64 " threads (%" PRIu64
	    " idle), %" PRIu64 " queued, %" PRIu64 " completed; pool jobs of this runtime "
	    "running %" PRIu64 "; spawned from other threads %" PRIu64 "\n",
	    s->global_depth, s->pool_threads, s->pool_idle, s->pool_queued, s->pool_completed,
	    s->pool_running, s->spawned_foreign);
}

/* Prometheus text format 0.0.4: counters end in _total; nanosecond
 * counters are exported in seconds, as Prometheus's base unit is. */
static void fmt_prom(outbuf *o, const rlt_stats *s)
{
	for (size_t k = 0; k < NFIELDS; k++) {
		const field *f = &fields[k];
		size_t nl = strlen(f->name);
		bool ns = nl > 3 && !strcmp(f->name + nl - 3, "_ns");
		char name[80];
		snprintf(name, sizeof(name), "ringlet_worker_%.*s%s%s", (int)(ns ? nl - 3 : nl),
			 f->name, ns ? "_seconds" : "", f->gauge ? "" : "_total");
		put(o, "# HELP %s %s\n# TYPE %s %s\n", name, f->help, name,
		    f->gauge ? "gauge" : "counter");
		for (unsigned i = 0; i < s->nworkers; i++) {
			uint64_t v = fval(&s->workers[i], f);
			if (ns)
				put(o, "%s{worker=\"%u\"} %.9f\n", name, i, (double)v / 1e9);
			else
				put(o, "%s{worker=\"%u\"} %" PRIu64 "\n", name, i, v);
		}
	}
	put(o, "# HELP ringlet_workers Worker threads of the runtime.\n# TYPE ringlet_workers "
	       "gauge\n");
	put(o, "ringlet_workers %u\n", s->nworkers);
	put(o, "# HELP ringlet_uptime_seconds Seconds since rlt_run started.\n# TYPE "
	       "ringlet_uptime_seconds gauge\n");
	put(o, "ringlet_uptime_seconds %.9f\n", (double)s->uptime_ns / 1e9);
	put(o, "# HELP ringlet_global_queue_depth Tasks in the global queue.\n# TYPE "
	       "ringlet_global_queue_depth gauge\n");
	put(o, "ringlet_global_queue_depth %" PRIu64 "\n", s->global_depth);
	static const struct {
		const char *name, *help;
		bool gauge;
		size_t off;
	} pool[] = {
	    {"ringlet_pool_threads", "Threads of the default blocking pool.", true,
	     offsetof(rlt_stats, pool_threads)},
	    {"ringlet_pool_idle_threads", "Idle threads of the default blocking pool.", true,
	     offsetof(rlt_stats, pool_idle)},
	    {"ringlet_pool_queued_jobs", "Jobs waiting for a thread of the default pool.", true,
	     offsetof(rlt_stats, pool_queued)},
	    {"ringlet_pool_completed_jobs_total", "Jobs the default pool ran to their end.", false,
	     offsetof(rlt_stats, pool_completed)},
	    {"ringlet_pool_running_jobs", "Pool jobs of this runtime's tasks not finished.", true,
	     offsetof(rlt_stats, pool_running)},
	    {"ringlet_spawned_foreign_total", "Tasks spawned from threads that are not workers.",
	     false, offsetof(rlt_stats, spawned_foreign)},
	};
	for (size_t k = 0; k < sizeof(pool) / sizeof(pool[0]); k++) {
		uint64_t v = *(const uint64_t *)(const void *)((const char *)s + pool[k].off);
		put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", pool[k].name, pool[k].help,
		    pool[k].name, pool[k].gauge ? "gauge" : "counter", pool[k].name, v);
	}
	if (!s->timing_on)
		return;
	/* The histogram, all workers together, at the powers of two (every
	 * fourth bound: cumulative counts there are exact). */
	rlt_worker_stats t;
	rlt_stats_total(s, &t);
	const char *h = "ringlet_task_poll_duration_seconds";
	put(o, "# HELP %s How long tasks ran before they suspended.\n# TYPE %s histogram\n", h, h);
	uint64_t cum = 0;
	for (unsigned b = 0; b < RLT_STATS_HIST_BUCKETS; b++) {
		cum += t.poll_hist[b];
		if (b % 4 == 0)
			put(o, "%s_bucket{le=\"%.9g\"} %" PRIu64 "\n", h,
			    (double)rlt_stats_bucket_upper(b) / 1e9, cum);
	}
	put(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h, cum);
	put(o, "%s_sum %.9f\n%s_count %" PRIu64 "\n", h, (double)t.poll_ns / 1e9, h, cum);
}

ssize_t rlt_stats_format(const rlt_stats *snap, int fmt, char *buf, size_t len)
{
	if (!snap || (!buf && len))
		return -EINVAL;
	outbuf o = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	switch (fmt) {
	case RLT_STATS_TEXT:
		fmt_text(&o, snap);
		break;
	case RLT_STATS_JSON:
		fmt_json(&o, snap);
		break;
	case RLT_STATS_PROMETHEUS:
		fmt_prom(&o, snap);
		break;
	default:
		return -EINVAL;
	}
	return (ssize_t)o.n;
}
