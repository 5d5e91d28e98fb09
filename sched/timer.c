#include "sched/timer.h"
#include "sched/stats.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <string.h>

/* Heap invariant: h[i].deadline <= h[4i+1 .. 4i+4].deadline, h[i].deadline
 * == h[i].tm->deadline, and h[i].tm->idx == i for every armed timer.
 *
 * Layout: h = base + 3 slots, with base 64-byte aligned, so the children of
 * node i (slots 4i+1 .. 4i+4, i.e. base slots 4i+4 .. 4i+7) fill exactly one
 * cache line. */

void rlt__timer_heap_init(rlt__timer_heap *th)
{
	memset(th, 0, sizeof(*th));
}

#define SLOT_MASK (RLT__TIMER_SLOTS - 1)

void rlt__timer_heap_destroy(rlt__timer_heap *th)
{
	for (uint32_t i = 0; i < th->n; i++)
		th->h[i].tm->idx = RLT__TIMER_IDLE;
	for (unsigned k = 0; k < RLT__TIMER_SLOTS; k++) {
		for (uint32_t i = 0; i < th->wheel[k].n; i++)
			th->wheel[k].v[i].tm->idx = RLT__TIMER_IDLE;
		rlt__free(th->wheel[k].v);
	}
	rlt__free(th->mem);
	memset(th, 0, sizeof(*th));
}

static inline void place(rlt__timer_heap *th, uint32_t i, uint64_t d, rlt__timer *tm)
{
	th->h[i].deadline = d;
	th->h[i].tm = tm;
	tm->idx = i;
}

static void sift_up(rlt__timer_heap *th, uint32_t i, uint64_t d, rlt__timer *tm)
{
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

static void sift_down(rlt__timer_heap *th, uint32_t i, uint64_t d, rlt__timer *tm)
{
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
	/* (the wheel's timers need no copy: cap only reserves room for them) */
	rlt__free(th->mem);
	th->mem = mem;
	th->h = h;
	th->cap = cap;
	return 0;
}

/* ---- wheel ---- */

static inline int wheel_push(rlt__timer_heap *th, rlt__timer *tm, unsigned k)
{
	rlt__timer_bucket *b = &th->wheel[k];
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		rlt__timer_slot *v = rlt__realloc(b->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	tm->idx = RLT__TIMER_WHEEL | b->n;
	b->v[b->n].deadline = tm->deadline;
	b->v[b->n].tm = tm;
	if (b->n++ == 0)
		th->bits[k >> 6] |= 1ull << (k & 63);
	th->wheel_n++;
	return 0;
}

static inline void wheel_unlink(rlt__timer_heap *th, rlt__timer *tm)
{
	unsigned k = (unsigned)(tm->deadline >> RLT__TIMER_SLOT_SHIFT) & SLOT_MASK;
	rlt__timer_bucket *b = &th->wheel[k];
	uint32_t i = tm->idx & ~RLT__TIMER_WHEEL;
	if (i != --b->n) {
		b->v[i] = b->v[b->n];
		b->v[i].tm->idx = RLT__TIMER_WHEEL | i;
	}
	if (b->n == 0)
		th->bits[k >> 6] &= ~(1ull << (k & 63));
	th->wheel_n--;
}

/* Absolute slot of the first non-empty wheel slot (wheel_n > 0): scan the
 * bitmap from the cursor, wrapping once. */
static uint64_t wheel_next(const rlt__timer_heap *th)
{
	unsigned k0 = (unsigned)th->cursor & SLOT_MASK;
	unsigned w0 = k0 >> 6, b0 = k0 & 63;
	for (unsigned i = 0; i <= RLT__TIMER_SLOTS / 64; i++) {
		unsigned wi = (w0 + i) & (RLT__TIMER_SLOTS / 64 - 1);
		uint64_t m = th->bits[wi];
		if (i == 0)
			m &= ~0ull << b0;
		else if (i == RLT__TIMER_SLOTS / 64)
			m &= b0 ? (1ull << b0) - 1 : 0;
		if (m) {
			unsigned k = wi * 64 + (unsigned)__builtin_ctzll(m);
			return th->cursor + ((k - k0) & SLOT_MASK);
		}
	}
	return UINT64_MAX;
}

/* Move every wheel slot that now has reached into the heap. */
static void advance(rlt__timer_heap *th, uint64_t now)
{
	uint64_t ns = now >> RLT__TIMER_SLOT_SHIFT;
	while (th->wheel_n) {
		uint64_t s = wheel_next(th);
		if (s > ns)
			break;
		unsigned k = (unsigned)s & SLOT_MASK;
		rlt__timer_bucket *b = &th->wheel[k];
		for (uint32_t i = 0; i < b->n; i++) /* cap covers them: see add */
			sift_up(th, th->n++, b->v[i].deadline, b->v[i].tm);
		th->wheel_n -= b->n;
		b->n = 0;
		th->bits[k >> 6] &= ~(1ull << (k & 63));
		th->cursor = s + 1;
	}
	if (th->cursor <= ns)
		th->cursor = ns + 1;
}

uint64_t rlt__timer_next(const rlt__timer_heap *th)
{
	uint64_t d = th->n ? th->h[0].deadline : UINT64_MAX;
	if (th->wheel_n) {
		uint64_t s = wheel_next(th) << RLT__TIMER_SLOT_SHIFT;
		if (s < d)
			d = s;
	}
	return d;
}

int rlt__timer_add(rlt__timer_heap *th, rlt__timer *tm)
{
	if (th->n + th->wheel_n == th->cap && grow(th) < 0)
		return -ENOMEM;
	RLT__STAT_INC(th->armed);
	uint64_t s = tm->deadline >> RLT__TIMER_SLOT_SHIFT;
	if (s - th->cursor < RLT__TIMER_SLOTS) /* also false when s < cursor */
		return wheel_push(th, tm, (unsigned)s & SLOT_MASK);
	sift_up(th, th->n++, tm->deadline, tm);
	return 0;
}

void rlt__timer_del(rlt__timer_heap *th, rlt__timer *tm)
{
	uint32_t i = tm->idx;
	RLT__STAT_INC(th->removed);
	if (i & RLT__TIMER_WHEEL) {
		wheel_unlink(th, tm);
		tm->idx = RLT__TIMER_IDLE;
		return;
	}
	tm->idx = RLT__TIMER_IDLE;
	rlt__timer_slot last = th->h[--th->n];
	if (i == th->n)
		return;
	/* Move the last timer into the hole, then restore order either way. */
	if (i > 0 && last.deadline < th->h[(i - 1) / 4].deadline)
		sift_up(th, i, last.deadline, last.tm);
	else
		sift_down(th, i, last.deadline, last.tm);
}

unsigned rlt__timer_run(rlt__timer_heap *th, uint64_t now)
{
	unsigned ran = 0;
	advance(th, now);
	while (th->n && th->h[0].deadline <= now) {
		rlt__timer *tm = th->h[0].tm;
		rlt__timer_del(th, tm);
		RLT__STAT_INC(th->fired);
		tm->fn(tm); /* may arm new timers (which go after this one) */
		ran++;
	}
	return ran;
}
