#include "sched/timer.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <string.h>

/* Heap invariant: h[i]->deadline <= h[4i+1..4i+4]->deadline, and
 * h[i]->idx == i for every armed timer. */

void rlt__timer_heap_init(rlt__timer_heap *th) { memset(th, 0, sizeof(*th)); }

void rlt__timer_heap_destroy(rlt__timer_heap *th)
{
	for (uint32_t i = 0; i < th->n; i++)
		th->h[i]->idx = RLT__TIMER_IDLE;
	rlt__free(th->h);
	memset(th, 0, sizeof(*th));
}

static inline void place(rlt__timer_heap *th, uint32_t i, rlt__timer *tm)
{
	th->h[i] = tm;
	tm->idx = i;
}

static void sift_up(rlt__timer_heap *th, uint32_t i, rlt__timer *tm)
{
	uint64_t d = tm->deadline;
	while (i > 0) {
		uint32_t parent = (i - 1) / 4;
		rlt__timer *p = th->h[parent];
		if (p->deadline <= d)
			break;
		place(th, i, p);
		i = parent;
	}
	place(th, i, tm);
}

static void sift_down(rlt__timer_heap *th, uint32_t i, rlt__timer *tm)
{
	uint64_t d = tm->deadline;
	uint32_t n = th->n;
	for (;;) {
		uint32_t c = 4 * i + 1;
		if (c >= n)
			break;
		uint32_t end = c + 4 < n ? c + 4 : n;
		uint32_t best = c;
		uint64_t bd = th->h[c]->deadline;
		for (uint32_t k = c + 1; k < end; k++) {
			if (th->h[k]->deadline < bd) {
				bd = th->h[k]->deadline;
				best = k;
			}
		}
		if (bd >= d)
			break;
		place(th, i, th->h[best]);
		i = best;
	}
	place(th, i, tm);
}

int rlt__timer_add(rlt__timer_heap *th, rlt__timer *tm)
{
	if (th->n == th->cap) {
		uint32_t cap = th->cap ? th->cap * 2 : 256;
		rlt__timer **h = rlt__realloc(th->h, (size_t)cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		th->h = h;
		th->cap = cap;
	}
	sift_up(th, th->n++, tm);
	return 0;
}

void rlt__timer_del(rlt__timer_heap *th, rlt__timer *tm)
{
	uint32_t i = tm->idx;
	tm->idx = RLT__TIMER_IDLE;
	rlt__timer *last = th->h[--th->n];
	if (i == th->n)
		return;
	/* Move the last timer into the hole, then restore order either way. */
	if (i > 0 && last->deadline < th->h[(i - 1) / 4]->deadline)
		sift_up(th, i, last);
	else
		sift_down(th, i, last);
}

unsigned rlt__timer_run(rlt__timer_heap *th, uint64_t now)
{
	unsigned ran = 0;
	while (th->n && th->h[0]->deadline <= now) {
		rlt__timer *tm = th->h[0];
		rlt__timer_del(th, tm);
		tm->fn(tm); /* may arm new timers (which go after this one) */
		ran++;
	}
	return ran;
}
