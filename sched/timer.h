/*
 * Per-worker timers: a one-level wheel of ~1 ms slots in front of an
 * intrusive 4-ary min-heap ordered by deadline.
 *
 * A timer due within the wheel's span (256 slots of 2^20 ns, ~268 ms) is
 * pushed on its slot's list: O(1), touching only the timer and the slot
 * head. When the clock reaches a slot, its timers move into the heap, which
 * therefore only holds what is due within about a millisecond (plus timers
 * beyond the span, which go to the heap directly). Deadlines stay exact
 * nanoseconds: the wheel only defers the heap insertion, it never rounds a
 * deadline (the sleep-accuracy target needs that), and the worker's wait is
 * bounded by the earlier of the heap's minimum and the next non-empty
 * slot's start.
 *
 * Why: with 100k live timers a plain heap is ~17 levels of binary (8 of
 * 4-ary) cache-missing moves per fire, each also writing the moved timer's
 * index into a different task stack; the heap here stays a few thousand
 * entries deep and L2-resident (bench/bench_timer.c, timer.heap).
 *
 * Owned by one worker: only that worker's thread touches it.
 */
#ifndef RLT_SCHED_TIMER_H
#define RLT_SCHED_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RLT__TIMER_IDLE	      UINT32_MAX
#define RLT__TIMER_WHEEL      0x80000000u /* idx flag: on a wheel slot, at idx & ~flag */
#define RLT__TIMER_SLOT_SHIFT 20u	  /* slot width: 2^20 ns */
#define RLT__TIMER_SLOTS      256u

typedef struct rlt__timer rlt__timer;
typedef void (*rlt__timer_fn)(rlt__timer *tm);

struct rlt__timer {
	uint64_t deadline; /* CLOCK_MONOTONIC ns */
	uint32_t idx;	   /* heap slot, RLT__TIMER_WHEEL | position, or RLT__TIMER_IDLE */
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

/* A wheel slot: an unordered array of (deadline, timer), so moving a slot
 * into the heap reads memory in order instead of chasing list links. */
typedef struct rlt__timer_bucket {
	rlt__timer_slot *v;
	uint32_t n, cap;
} rlt__timer_bucket;

typedef struct rlt__timer_heap {
	rlt__timer_slot *h; /* h[0] is the root; children of i: 4i+1 .. 4i+4 */
	void *mem;	    /* allocation behind h (h is offset for alignment) */
	uint32_t n, cap;    /* cap also covers the wheel's timers: moving one into the
			     * heap never allocates */
	uint32_t wheel_n;
	/* Absolute slot (deadline >> SHIFT) the wheel starts at: every timer
	 * with a deadline before cursor << SHIFT is in the heap, every wheel
	 * timer's slot is in [cursor, cursor + SLOTS). */
	uint64_t cursor;
	uint64_t bits[RLT__TIMER_SLOTS / 64]; /* non-empty wheel slots */
	/* Counters (sched/stats.h's rules: the owner writes, others read
	 * racily): timers added, fired, and taken off (fired or cancelled). */
	_Atomic uint64_t armed, fired, removed;
	rlt__timer_bucket wheel[RLT__TIMER_SLOTS];
} rlt__timer_heap;

static inline void rlt__timer_init(rlt__timer *tm, rlt__timer_fn fn)
{
	tm->idx = RLT__TIMER_IDLE;
	tm->fn = fn;
	tm->deadline = 0;
}

static inline bool rlt__timer_armed(const rlt__timer *tm)
{
	return tm->idx != RLT__TIMER_IDLE;
}

void rlt__timer_heap_init(rlt__timer_heap *th);
void rlt__timer_heap_destroy(rlt__timer_heap *th);
/* Arm tm at tm->deadline. Returns 0 or -ENOMEM (heap growth). */
int rlt__timer_add(rlt__timer_heap *th, rlt__timer *tm);
/* Disarm an armed timer. */
void rlt__timer_del(rlt__timer_heap *th, rlt__timer *tm);

static inline uint32_t rlt__timer_count(const rlt__timer_heap *th)
{
	return th->n + th->wheel_n;
}

/* When the worker must look at its timers next: the earliest heap deadline
 * or the start of the next non-empty wheel slot; UINT64_MAX when none is
 * armed. Never later than the earliest deadline. */
uint64_t rlt__timer_next(const rlt__timer_heap *th);

/* Pop and run every timer whose deadline is <= now. Returns how many ran. */
unsigned rlt__timer_run(rlt__timer_heap *th, uint64_t now);

#endif
