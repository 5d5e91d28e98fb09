/*
 * Run queues.
 *
 * Local queue: a bounded single-producer, multi-consumer ring of 256 task
 * pointers per worker (the algorithm of tokio's multi-thread scheduler).
 * Only the owner pushes, at `tail`, with a plain store-release: no
 * read-modify-write. The owner pops at the head and thieves steal from it,
 * both by CAS on `head`, which packs two 32-bit indices:
 *
 *     head = (steal << 32) | real
 *
 * `real` is the next task to take. `steal` trails it while a thief is
 * copying tasks out (real has moved past them, steal has not yet): the owner
 * must not overwrite those slots, and a second thief backs off. When no
 * steal is in progress, steal == real.
 *
 * Thieves take half of the victim's queue in one batch. A push that finds the
 * queue full moves half of it, plus the new task, to the global queue in one
 * lock acquisition.
 *
 * Global (injection) queue: a mutex-protected FIFO for tasks spawned or woken
 * from outside a worker and for local overflow. Its length is mirrored in an
 * atomic so that the common "is it empty?" check takes no lock.
 */
#ifndef RLT_SCHED_RUNQ_H
#define RLT_SCHED_RUNQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rlt_task rlt_task;

#define RLT__LQ_CAP  256u
#define RLT__LQ_MASK (RLT__LQ_CAP - 1)

typedef struct rlt__global_q {
	pthread_mutex_t lock;
	rlt_task *head, *tail; /* through task->next */
	atomic_size_t len;
} rlt__global_q;

typedef struct rlt__local_q {
	_Alignas(64) _Atomic uint64_t head; /* (steal << 32) | real */
	_Alignas(64) _Atomic uint32_t tail; /* written by the owner only */
	_Atomic(rlt_task *) buf[RLT__LQ_CAP];
} rlt__local_q;

void rlt__global_q_init(rlt__global_q *g);
void rlt__global_q_destroy(rlt__global_q *g);
/* Push one task, or a chain first..last of n tasks linked through ->next. */
void rlt__global_q_push_batch(rlt__global_q *g, rlt_task *first, rlt_task *last, size_t n);
static inline void rlt__global_q_push(rlt__global_q *g, rlt_task *t);
/* Pop up to max tasks into the local queue q (owner side); returns one of
 * them to run now, or NULL when the global queue was empty. */
rlt_task *rlt__global_q_pop_into(rlt__global_q *g, rlt__local_q *q, unsigned max);
static inline bool rlt__global_q_empty(rlt__global_q *g)
{
	return atomic_load_explicit(&g->len, memory_order_acquire) == 0;
}

void rlt__local_q_init(rlt__local_q *q);
/* Owner: append t; on overflow moves half the queue and t to g. */
void rlt__local_q_push(rlt__local_q *q, rlt_task *t, rlt__global_q *g);
/* Owner: take the oldest task, or NULL. */
rlt_task *rlt__local_q_pop(rlt__local_q *q);
/* Thief: move about half of src into dst (the thief's own, empty queue) and
 * return one of them to run now; NULL when there was nothing to take. */
rlt_task *rlt__local_q_steal(rlt__local_q *src, rlt__local_q *dst);
/* Tasks in the queue (exact for the owner, a hint for others). */
static inline uint32_t rlt__local_q_len(rlt__local_q *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
	return t - (uint32_t)h;
}

static inline void rlt__global_q_push(rlt__global_q *g, rlt_task *t)
{
	rlt__global_q_push_batch(g, t, t, 1);
}

#endif
