#include "sched/runq.h"

#include "runtime/task.h"

#include <string.h>

static inline uint32_t h_real(uint64_t h)
{
	return (uint32_t)h;
}
static inline uint32_t h_steal(uint64_t h)
{
	return (uint32_t)(h >> 32);
}
static inline uint64_t h_pack(uint32_t steal, uint32_t real)
{
	return ((uint64_t)steal << 32) | real;
}

/* ---- global queue ---- */

void rlt__global_q_init(rlt__global_q *g)
{
	pthread_mutex_init(&g->lock, NULL);
	g->head = g->tail = NULL;
	atomic_init(&g->len, 0);
}

void rlt__global_q_destroy(rlt__global_q *g)
{
	pthread_mutex_destroy(&g->lock);
}

void rlt__global_q_push_batch(rlt__global_q *g, rlt_task *first, rlt_task *last, size_t n)
{
	last->next = NULL;
	pthread_mutex_lock(&g->lock);
	if (g->tail)
		g->tail->next = first;
	else
		g->head = first;
	g->tail = last;
	atomic_store_explicit(&g->len, atomic_load_explicit(&g->len, memory_order_relaxed) + n,
			      memory_order_release);
	pthread_mutex_unlock(&g->lock);
}

rlt_task *rlt__global_q_pop_into(rlt__global_q *g, rlt__local_q *q, unsigned max)
{
	if (rlt__global_q_empty(g))
		return NULL;
	/* Room in the local queue: only the owner pushes, so this stays true. */
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint32_t steal = h_steal(atomic_load_explicit(&q->head, memory_order_acquire));
	uint32_t room = RLT__LQ_CAP - (tail - steal);
	if (max > room + 1)
		max = room + 1;
	pthread_mutex_lock(&g->lock);
	rlt_task *first = g->head;
	if (!first) {
		pthread_mutex_unlock(&g->lock);
		return NULL;
	}
	size_t len = atomic_load_explicit(&g->len, memory_order_relaxed);
	size_t n = len / 2 + 1; /* a fair share, not everything */
	if (n > max)
		n = max;
	rlt_task *last = first;
	for (size_t i = 1; i < n; i++)
		last = last->next;
	g->head = last->next;
	if (!g->head)
		g->tail = NULL;
	atomic_store_explicit(&g->len, len - n, memory_order_release);
	pthread_mutex_unlock(&g->lock);

	rlt_task *run = first;
	rlt_task *t = first->next;
	for (size_t i = 1; i < n; i++) {
		rlt_task *next = t->next;
		atomic_store_explicit(&q->buf[tail & RLT__LQ_MASK], t, memory_order_relaxed);
		tail++;
		t = next;
	}
	atomic_store_explicit(&q->tail, tail, memory_order_release);
	return run;
}

/* ---- local queue ---- */

void rlt__local_q_init(rlt__local_q *q)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (unsigned i = 0; i < RLT__LQ_CAP; i++)
		atomic_init(&q->buf[i], NULL);
}

/* The queue is full and no thief is active: move half of it, then t, to the
 * global queue. Fails (returns false) if a thief got in first. */
static bool push_overflow(rlt__local_q *q, rlt_task *t, uint32_t head, uint32_t tail,
			  rlt__global_q *g)
{
	const uint32_t n = RLT__LQ_CAP / 2;
	uint64_t prev = h_pack(head, head);
	/* Claim the n oldest tasks. */
	if (!atomic_compare_exchange_strong_explicit(&q->head, &prev, h_pack(head + n, head + n),
						     memory_order_release, memory_order_relaxed))
		return false;
	rlt_task *first = atomic_load_explicit(&q->buf[head & RLT__LQ_MASK], memory_order_relaxed);
	rlt_task *last = first;
	for (uint32_t i = 1; i < n; i++) {
		rlt_task *x =
		    atomic_load_explicit(&q->buf[(head + i) & RLT__LQ_MASK], memory_order_relaxed);
		last->next = x;
		last = x;
	}
	last->next = t;
	(void)tail;
	rlt__global_q_push_batch(g, first, t, n + 1);
	return true;
}

void rlt__local_q_push(rlt__local_q *q, rlt_task *t, rlt__global_q *g)
{
	for (;;) {
		uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
		uint32_t steal = h_steal(h), real = h_real(h);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (tail - steal < RLT__LQ_CAP) {
			atomic_store_explicit(&q->buf[tail & RLT__LQ_MASK], t,
					      memory_order_relaxed);
			/* release: a thief that reads the new tail sees the slot. */
			atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
			return;
		}
		if (steal != real) {
			/* A thief is emptying us right now: don't wait for it. */
			rlt__global_q_push(g, t);
			return;
		}
		if (push_overflow(q, t, real, tail, g))
			return;
		/* A thief took some tasks meanwhile: there is room now. */
	}
}

rlt_task *rlt__local_q_pop(rlt__local_q *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	for (;;) {
		uint32_t steal = h_steal(h), real = h_real(h);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (real == tail)
			return NULL;
		uint32_t next_real = real + 1;
		uint64_t next =
		    steal == real ? h_pack(next_real, next_real) : h_pack(steal, next_real);
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, next, memory_order_acq_rel,
							  memory_order_acquire))
			return atomic_load_explicit(&q->buf[real & RLT__LQ_MASK],
						    memory_order_relaxed);
	}
}

rlt_task *rlt__local_q_steal(rlt__local_q *src, rlt__local_q *dst)
{
	uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
	{
		/* Only steal into an at most half-full queue: it must have room. */
		uint32_t dst_steal =
		    h_steal(atomic_load_explicit(&dst->head, memory_order_acquire));
		if (dst_tail - dst_steal > RLT__LQ_CAP / 2)
			return NULL;
	}
	uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
	uint64_t next;
	uint32_t n, first;
	for (;;) {
		uint32_t steal = h_steal(prev), real = h_real(prev);
		if (steal != real)
			return NULL; /* another thief is at work */
		uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
		n = tail - real;
		n -= n / 2;
		if (n == 0)
			return NULL;
		first = real;
		/* Claim [real, real + n): move real, leave steal behind. */
		next = h_pack(steal, real + n);
		if (atomic_compare_exchange_weak_explicit(
			&src->head, &prev, next, memory_order_acq_rel, memory_order_acquire))
			break;
	}
	for (uint32_t i = 0; i < n; i++) {
		rlt_task *t = atomic_load_explicit(&src->buf[(first + i) & RLT__LQ_MASK],
						   memory_order_relaxed);
		atomic_store_explicit(&dst->buf[(dst_tail + i) & RLT__LQ_MASK], t,
				      memory_order_relaxed);
	}
	/* Done copying: let steal catch up with real, so the owner may reuse
	 * those slots and other thieves may come. */
	prev = next;
	for (;;) {
		uint32_t real = h_real(prev);
		if (atomic_compare_exchange_weak_explicit(&src->head, &prev, h_pack(real, real),
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	n--;
	rlt_task *run =
	    atomic_load_explicit(&dst->buf[(dst_tail + n) & RLT__LQ_MASK], memory_order_relaxed);
	if (n)
		atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
	return run;
}
