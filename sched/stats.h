/*
 * Per-worker counters (include/ringlet/stats.h is the public side).
 *
 * Each worker owns one rlt__wstats, in the private half of its struct, on
 * cache lines no other thread writes. Only the worker's own thread writes
 * it, so an increment needs no read-modify-write: RLT__STAT_ADD is a
 * relaxed load and a relaxed store (on x86-64 and arm64 a plain load, add,
 * store: the cost of `x++` on a variable that lives in memory). A reader on
 * another thread (rlt_runtime_stats) loads each field with a relaxed load:
 * it sees each counter whole (64-bit loads do not tear), but the fields of
 * one snapshot are not a consistent cut of the worker's life (polled may be
 * one ahead of completed, and so on). The atomics are there for the C
 * memory model (and ThreadSanitizer), not for ordering.
 *
 * The loop policies reach their worker's counters through
 * rlt__loop_stats(), once, at init; a loop that belongs to no worker (a
 * pool thread's ring) counts into a private sink nobody reads.
 */
#ifndef RLT_SCHED_STATS_H
#define RLT_SCHED_STATS_H

#include "ringlet/executor.h"
#include "ringlet/policy.h"
#include "ringlet/runtime.h"
#include "ringlet/stats.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

typedef _Atomic uint64_t rlt__ctr;

#define RLT__STAT_ADD(c, n)                                                                        \
	atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),        \
			      memory_order_relaxed)
#define RLT__STAT_INC(c)    RLT__STAT_ADD(c, 1)
#define RLT__STAT_GET(c)    atomic_load_explicit(&(c), memory_order_relaxed)
#define RLT__STAT_SET(c, v) atomic_store_explicit(&(c), (v), memory_order_relaxed)

/* What a loop policy counts (io/policy_uring.c, io/policy_epoll.c). */
typedef struct rlt__iostats {
	rlt__ctr sqes;	       /* SQEs queued (ops, linked timeouts, wake reads, MSG_RINGs) */
	rlt__ctr enters;       /* io_uring_enter / epoll_wait system calls */
	rlt__ctr cqes;	       /* completions (CQEs, epoll events) reaped */
	rlt__ctr cq_overflows; /* the kernel's CQ overflow count, as last seen */
} rlt__iostats;

typedef struct rlt__wstats {
	rlt__ctr spawned;   /* tasks spawned by tasks running here */
	rlt__ctr polls;	    /* switches into a task */
	rlt__ctr completed; /* tasks whose function returned here */
	rlt__ctr stolen_in; /* tasks taken from other workers' queues */
	rlt__ctr steals;    /* steal operations that took something */
	rlt__ctr remote_in; /* tasks received through the inbox */
	rlt__ctr parks;	    /* sleeps in the kernel */
	rlt__ctr unparks;   /* wake-ups this worker sent to parked workers */
	rlt__ctr turns;	    /* loop turns */
	rlt__ctr io_ops;    /* I/O operations handed to the policy */
	rlt__ctr bytes_read, bytes_written;
	rlt__ctr parked_ns;  /* time asleep in the kernel, completed sleeps */
	rlt__ctr park_since; /* when the current sleep began (0: awake) */
	rlt__ctr spin_ns;    /* time spent spinning for work before parking */
	rlt__ctr poll_ns;    /* time inside tasks (RINGLET_TIMING) */
	rlt__ctr started_ns; /* when the worker's loop started */
	rlt__iostats io;
	rlt__ctr hist[RLT_STATS_HIST_BUCKETS]; /* task poll durations (RINGLET_TIMING) */
	/* Tasks this worker stole, by victim: the victim's stolen_out is the
	 * sum of its column over all thieves (each thief writes its own row). */
	rlt__ctr stolen_from[RLT_MAX_WORKERS];
	/* Tasks this worker pushed into other workers' inboxes, by target:
	 * a target's inbox depth is its column (plus what threads that are
	 * not workers pushed, counted on the target) minus its remote_in. */
	rlt__ctr remote_sent[RLT_MAX_WORKERS];
} rlt__wstats;

/* The counters of loop's worker, or a sink private to the caller's
 * storage (a loop of no worker): never NULL. sched/worker.c. */
rlt__iostats *rlt__loop_stats(rlt_loop *loop, rlt__iostats *sink);

/* s as a JSON string (quoted, escaped) on f: the formats', the console's
 * and the trace's (sched/stats.c). */
void rlt__json_fputs(FILE *f, const char *s);

/* The default pool's counters, if it was ever made (runtime/executor.c):
 * 0, or -ENOENT. */
int rlt__default_pool_stats(rlt_pool_stats *out);

/* The histogram's bucket for a duration of ns nanoseconds (log-linear:
 * four buckets per power of two from 64 ns, bucket 0 below). */
static inline unsigned rlt__hist_bucket(uint64_t ns)
{
	if (ns < 64)
		return 0;
	unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 6 */
	unsigned b = 1u + (e - 6u) * 4u + (unsigned)((ns >> (e - 2u)) & 3u);
	return b < RLT_STATS_HIST_BUCKETS ? b : RLT_STATS_HIST_BUCKETS - 1u;
}

/* Tick source for task timing (RINGLET_TIMING): the TSC on x86-64
 * (~20 ns a read on this VM against ~50 for clock_gettime), else
 * CLOCK_MONOTONIC. rlt__ticks_to_ns converts with a factor measured once
 * per process by rlt__ticks_calibrate (2 ms, only when timing is on). */
extern uint64_t rlt__tick_mult; /* ns per tick, << 32 */
void rlt__ticks_calibrate(void);

#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t rlt__ticks(void)
{
	return __rdtsc();
}
#else
#include "runtime/cpu.h"
static inline uint64_t rlt__ticks(void)
{
	return rlt__mono_ns();
}
#endif

static inline uint64_t rlt__ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * rlt__tick_mult) >> 32);
}

#endif
