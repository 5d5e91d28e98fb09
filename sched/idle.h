/*
 * Which workers are parked, and how many are searching for work.
 *
 * `state` packs (unparked << 16) | searching. A worker that runs out of work
 * may search (steal) only while fewer than half the workers search, so an
 * idle machine does not burn its cores looking at empty queues. New work
 * wakes a parked worker only when nobody is searching and someone is parked:
 * one at a time, never a herd. The last searcher to give up re-checks every
 * queue before sleeping, so work pushed while it searched is not stranded.
 * A searcher that finds work anywhere (stolen, its own queues, its inbox)
 * stops counting before it runs it; one that went on counting would keep
 * every other worker from searching and from being woken.
 *
 * The list of sleepers is under a mutex: it is touched only on the way into
 * and out of a park, never per task.
 */
#ifndef RLT_SCHED_IDLE_H
#define RLT_SCHED_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct rlt__idle {
	atomic_uint state;
	unsigned nworkers;
	pthread_mutex_t lock;
	unsigned *sleepers;
	unsigned nsleepers;
} rlt__idle;

int rlt__idle_init(rlt__idle *id, unsigned nworkers);
void rlt__idle_destroy(rlt__idle *id);

/* May this worker start searching? (It then counts as a searcher.) */
bool rlt__idle_try_search(rlt__idle *id);
/* A searcher found work or gives up. True if it was the last searcher. */
bool rlt__idle_stop_search(rlt__idle *id);
/* Going to sleep. True if it was the last searcher. */
bool rlt__idle_park(rlt__idle *id, unsigned worker, bool searching);
/* Woken up by anything. True if it was still on the sleepers list (woken by
 * its own I/O or timer, not searching); false if a notifier had taken it off
 * (it now counts as a searcher). */
bool rlt__idle_unpark_self(rlt__idle *id, unsigned worker);
/* New work exists: the worker to wake, or -1 when none should be. The
 * chosen worker is off the sleepers list and counted as searching. */
int rlt__idle_pick(rlt__idle *id);

/* Cheap test for the hot path: might a worker need waking? */
static inline bool rlt__idle_should_notify(rlt__idle *id)
{
	unsigned s = atomic_load_explicit(&id->state, memory_order_seq_cst);
	return (s & 0xffffu) == 0 && (s >> 16) < id->nworkers;
}

/* How many workers are not parked (the caller included, if a worker):
 * a hint, read without ordering. */
static inline unsigned rlt__idle_awake(rlt__idle *id)
{
	return atomic_load_explicit(&id->state, memory_order_relaxed) >> 16;
}
#endif
