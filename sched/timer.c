#include "sched/timer.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <string.h>

/* Heap invariant: h[i].deadline <= h[4i+1 .. 4i+4].deadline, h[i].deadline
 * == h[i].tm->deadline, and h[i].tm->idx == i for every armed timer.
 *
 * Layout: h = base + 3 slots, with base 64-byte aligned, so the children of
 * node i (slots 4i+1 .. 4i+4, i.e. base slots 4i+4 .. 4i+7) fill exactly one
 * cache line. */

void rlt__timer_heap_init(rlt__timer_heap *th) { memset(th, 0, sizeof(*th)); }

void rlt__timer_heap_destroy(rlt__timer_heap *th)
{
	for (uint32_t i = 0; i < th->n; i++)
		th->h[i].tm->idx = RLT__TIMER_IDLE;
	rlt__free(th->mem);
	memset(th, 0, sizeof(*th));
}

static inline void place(rlt__timer_heap *th, uint32_t i, uint64_t d, rlt__timer *tm)
{
	th->h[i].deadline = d;
	th->h[i].tm = tm;
	tm->idx = i;
}

static void sift_up(rlt__timer_heap *th, uint32_t i, rlt__timer *tm)
{
	uint64_t d = tm->deadline;
	while (i > 0) {
		uint32_t parent = (i - 1) / 4;
		if (th->h[parent].deadline <= d)
			break;
		place(th, i, th->h[parent].deadline, th->h[parent].tm);
		i = parent;
	}
	place(th, i, d, tm);
}

/* Index of the earliest of the children c .. min(c + 4, n) - 1. */
static inline uint32_t min_child(const rlt__timer_slot *h, uint32_t c, uint32_t n)
{
	if (c + 4 <= n) {
		/* A full line: pairwise selects, which compile to cmov rather
		 * than branches that mispredict on random deadlines. */
		uint32_t a = h[c + 1].deadline < h[c].deadline ? c + 1 : c;
		uint32_t b = h[c + 3].deadline < h[c + 2].deadline ? c + 3 : c + 2;
		return h[b].deadline < h[a].deadline ? b : a;
	}
	uint32_t best = c;
	for (uint32_t k = c + 1; k < n; k++)
		if (h[k].deadline < h[best].deadline)
			best = k;
	return best;
}

static void sift_down(rlt__timer_heap *th, uint32_t i, rlt__timer *tm)
{
	uint64_t d = tm->deadline;
	uint32_t n = th->n;
	for (;;) {
		uint32_t c = 4 * i + 1;
		if (c >= n)
			break;
		uint32_t best = min_child(th->h, c, n);
		if (th->h[best].deadline >= d)
			break;
		place(th, i, th->h[best].deadline, th->h[best].tm);
		i = best;
	}
	place(th, i, d, tm);
}

static int grow(rlt__timer_heap *th)
{
	uint32_t cap = th->cap ? th->cap * 2 : 256;
	void *mem = rlt__malloc((size_t)(cap + 3) * sizeof(rlt__timer_slot) + 64);
	if (!mem)
		return -ENOMEM;
	uintptr_t base = ((uintptr_t)mem + 63) & ~(uintptr_t)63;
	rlt__timer_slot *h = (rlt__timer_slot *)base + 3;
	if (th->n)
		memcpy(h, th->h, th->n * sizeof(*h));
	rlt__free(th->mem);
	th->mem = mem;
	th->h = h;
	th->cap = cap;
	return 0;
}

int rlt__timer_add(rlt__timer_heap *th, rlt__timer *tm)
{
	if (th->n == th->cap && grow(th) < 0)
		return -ENOMEM;
	sift_up(th, th->n++, tm);
	return 0;
}

void rlt__timer_del(rlt__timer_heap *th, rlt__timer *tm)
{
	uint32_t i = tm->idx;
	tm->idx = RLT__TIMER_IDLE;
	rlt__timer *last = th->h[--th->n].tm;
	if (i == th->n)
		return;
	/* Move the last timer into the hole, then restore order either way. */
	if (i > 0 && last->deadline < th->h[(i - 1) / 4].deadline)
		sift_up(th, i, last);
	else
		sift_down(th, i, last);
}

unsigned rlt__timer_run(rlt__timer_heap *th, uint64_t now)
{
	unsigned ran = 0;
	while (th->n && th->h[0].deadline <= now) {
		rlt__timer *tm = th->h[0].tm;
		rlt__timer_del(th, tm);
		tm->fn(tm); /* may arm new timers (which go after this one) */
		ran++;
	}
	return ran;
}
