/*
 * Runtime statistics: per-worker counters, read while the runtime runs
 * (tokio's RuntimeMetrics, Go's runtime/metrics), and their export as text,
 * JSON or the Prometheus text format. docs/OBSERVABILITY.md says what each
 * counter means and what it costs.
 *
 * The counters are always on: each worker writes its own, on cache lines
 * no other thread writes, with plain stores (no atomic read-modify-write,
 * no lock). A snapshot reads them racily: every counter is read whole, but
 * the fields of one snapshot are not taken at one instant (a task may show
 * as polled and not yet completed). Counters only grow, so rates computed
 * from two snapshots are exact over the interval, give or take the tasks
 * in flight at either end.
 *
 * Task timing (the poll-duration histogram, poll_ns, each task's time held)
 * costs two reads of the TSC per task run, so it is off unless asked for:
 * RINGLET_TIMING=1, or RINGLET_STATS=1 (its exit report), or the console's
 * first `top` request (RINGLET_CONTROL), and never with RINGLET_TIMING=0.
 * timing_on says whether it is on now; what ran before it was turned on is
 * not in poll_ns and the histogram.
 */
#ifndef RINGLET_STATS_H
#define RINGLET_STATS_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/* The layout below; bumped when a field is added (always at the end of a
 * struct: a newer library fills an older program's struct up to its
 * size). */
#define RLT_STATS_VERSION 1
/* Buckets of the poll-duration histogram: bucket 0 holds durations under
 * 64 ns; then four buckets per power of two, bucket b >= 1 holding
 * [lo, hi) with rlt_stats_bucket_upper(b - 1) <= lo and hi =
 * rlt_stats_bucket_upper(b); the last bucket also holds everything longer
 * (its upper bound is about 137 s). */
#define RLT_STATS_HIST_BUCKETS 125

typedef struct rlt_worker_stats {
	/* Tasks */
	uint64_t spawned;    /* tasks spawned by tasks running on this worker */
	uint64_t polled;     /* times a task was resumed (switched into) here */
	uint64_t completed;  /* tasks whose function returned here */
	uint64_t stolen_in;  /* tasks this worker took from others' queues */
	uint64_t stolen_out; /* tasks others took from this worker's queue */
	uint64_t steals;     /* steal operations that took something (a batch each) */
	uint64_t remote_in;  /* tasks woken or spawned here by other threads */
	/* Queues, as read (gauges) */
	uint64_t local_depth;	/* the stealable local queue */
	uint64_t private_depth; /* the private FIFO (pinned tasks) */
	uint64_t remote_depth;	/* the inbox: woken or spawned here by other threads, not
				 * yet taken into the queues */
	/* Sleep */
	uint64_t parks;	    /* times the worker slept in the kernel */
	uint64_t unparks;   /* wake-ups this worker sent to parked workers */
	uint64_t turns;	    /* loop turns */
	uint64_t uptime_ns; /* since the worker's loop started */
	uint64_t parked_ns; /* of which asleep in the kernel (the current sleep included) */
	uint64_t spin_ns;   /* of which spinning for work before parking */
	uint64_t busy_ns;   /* uptime_ns - parked_ns - spin_ns */
	uint64_t poll_ns;   /* time inside tasks (0 unless timing_on) */
	/* I/O */
	uint64_t io_ops;	/* I/O operations handed to the loop policy */
	uint64_t sqes;		/* io_uring SQEs queued (0 under epoll) */
	uint64_t enters;	/* io_uring_enter calls (epoll_wait calls under epoll) */
	uint64_t cqes;		/* completions reaped (epoll: events) */
	uint64_t cq_overflows;	/* completions the kernel could not post (io_uring) */
	uint64_t bytes_read;	/* by read, readv, recv, recvmsg */
	uint64_t bytes_written; /* by write, writev, send, sendmsg */
	/* Timers */
	uint64_t timers_armed; /* sleeps, timeouts and deadlines armed here */
	uint64_t timers_fired; /* of which expired (the others were cancelled) */
	uint64_t timers_pending;
	/* How long tasks ran before they suspended (0s unless timing_on). */
	uint64_t poll_hist[RLT_STATS_HIST_BUCKETS];
} rlt_worker_stats;

typedef struct rlt_stats {
	uint32_t version;     /* RLT_STATS_VERSION of the library that filled it */
	uint32_t size;	      /* sizeof(rlt_stats) of that library */
	uint32_t worker_size; /* sizeof(rlt_worker_stats) of that library */
	uint32_t timing_on;   /* task timing is on: poll_ns, poll_hist mean something */
	uint64_t pid;
	uint64_t uptime_ns;    /* since rlt_run started */
	char policy[64];       /* the loop policy, as chosen ("io_uring", "epoll", ...) */
	uint64_t global_depth; /* tasks in the global (injection) queue */
	/* The default blocking pool (rlt_run_blocking(NULL, ...)); zeros if it
	 * was never used. */
	uint64_t pool_threads, pool_idle, pool_queued, pool_completed;
	uint64_t pool_running;	  /* pool jobs of this runtime's tasks not finished (any pool) */
	uint64_t spawned_foreign; /* tasks spawned from threads that are not rt's workers */
	uint32_t nworkers;
	uint32_t reserved_;
	rlt_worker_stats *workers; /* nworkers of them, owned by the snapshot */
} rlt_stats;

/*
 * Take a snapshot of rt's counters (NULL: the runtime of the calling
 * thread) into *out, allocating out->workers; release it with
 * rlt_stats_release. Does not suspend; any thread, while rt runs (a thread
 * that is not rt's must know rt is alive: the runtime's own tasks and the
 * threads they wait for do). 0, -EINVAL (no runtime), -ENOMEM.
 */
RLT_API int rlt_runtime_stats(rlt_runtime *rt, rlt_stats *out);

/* Free what rlt_runtime_stats allocated (out->workers); out may be reused. */
RLT_API void rlt_stats_release(rlt_stats *out);

/* The totals of every worker's counters in snap (gauges summed too). */
RLT_API void rlt_stats_total(const rlt_stats *snap, rlt_worker_stats *out);

/* The exclusive upper bound in ns of histogram bucket b. */
RLT_API uint64_t rlt_stats_bucket_upper(unsigned b);

/* The duration (ns) below which a fraction q (0..1) of the polls recorded
 * in hist fell, to the bucket's upper bound; 0 when hist is empty. */
RLT_API uint64_t rlt_stats_quantile(const uint64_t hist[RLT_STATS_HIST_BUCKETS], double q);

enum rlt_stats_fmt {
	RLT_STATS_TEXT,	      /* a table for people (what RINGLET_STATS=1 prints at exit) */
	RLT_STATS_JSON,	      /* one JSON object, on one line (the control socket's) */
	RLT_STATS_PROMETHEUS, /* the Prometheus text exposition format 0.0.4 */
};

/*
 * Format snap as fmt into buf (len bytes, NUL-terminated when len > 0), as
 * snprintf does: returns the length the whole text needs (not counting
 * the NUL), which may be len or more (then buf holds a truncated text:
 * call again with a larger buffer), or -EINVAL (bad fmt or NULL snap).
 * Any thread; does not suspend.
 */
RLT_API ssize_t rlt_stats_format(const rlt_stats *snap, int fmt, char *buf, size_t len);

RLT_EXTERN_C_END

#endif
