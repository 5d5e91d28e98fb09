/*
 * Per-worker timers: an intrusive 4-ary min-heap ordered by deadline.
 *
 * Why a heap and not a wheel: deadlines are exact nanoseconds (no tick
 * rounding, which the sleep-accuracy target needs), insert and delete are
 * O(log4 n) with a few cache lines touched (4 children share one line),
 * and with 100k live timers an insert+fire costs well under the 200 ns
 * budget (bench/bench_timer.c). A wheel's O(1) would matter past a few
 * million timers, at the price of cascading and granularity.
 *
 * Owned by one worker: only that worker's thread touches its heap.
 */
#ifndef RLT_SCHED_TIMER_H
#define RLT_SCHED_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RLT__TIMER_IDLE UINT32_MAX

typedef struct rlt__timer rlt__timer;
typedef void (*rlt__timer_fn)(rlt__timer *tm);

struct rlt__timer {
	uint64_t deadline; /* CLOCK_MONOTONIC ns */
	uint32_t idx;      /* slot in the heap, RLT__TIMER_IDLE when not armed */
	rlt__timer_fn fn;
};

/* A heap slot keeps the deadline next to the pointer: comparisons never
 * chase the pointer (timers live on task stacks, one page apart, so that
 * would be a cache and TLB miss per level), and a node's four children
 * share one 64-byte line. */
typedef struct rlt__timer_slot {
	uint64_t deadline;
	rlt__timer *tm;
} rlt__timer_slot;

typedef struct rlt__timer_heap {
	rlt__timer_slot *h; /* h[0] is the root; children of i: 4i+1 .. 4i+4 */
	void *mem;          /* allocation behind h (h is offset for alignment) */
	uint32_t n, cap;
} rlt__timer_heap;

static inline void rlt__timer_init(rlt__timer *tm, rlt__timer_fn fn)
{
	tm->idx = RLT__TIMER_IDLE;
	tm->fn = fn;
	tm->deadline = 0;
}

static inline bool rlt__timer_armed(const rlt__timer *tm) { return tm->idx != RLT__TIMER_IDLE; }

void rlt__timer_heap_init(rlt__timer_heap *th);
void rlt__timer_heap_destroy(rlt__timer_heap *th);
/* Arm tm at tm->deadline. Returns 0 or -ENOMEM (heap growth). */
int rlt__timer_add(rlt__timer_heap *th, rlt__timer *tm);
/* Disarm an armed timer. */
void rlt__timer_del(rlt__timer_heap *th, rlt__timer *tm);

static inline rlt__timer *rlt__timer_first(const rlt__timer_heap *th)
{
	return th->n ? th->h[0].tm : NULL;
}

/* Pop and run every timer whose deadline is <= now. Returns how many ran. */
unsigned rlt__timer_run(rlt__timer_heap *th, uint64_t now);

#endif
