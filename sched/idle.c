#include "sched/idle.h"

#include "runtime/alloc.h"

#include <errno.h>

#define SEARCHING 1u
#define UNPARKED  (1u << 16)

int rlt__idle_init(rlt__idle *id, unsigned nworkers)
{
	id->nworkers = nworkers;
	atomic_init(&id->state, nworkers * UNPARKED);
	id->sleepers = rlt__calloc(nworkers, sizeof(unsigned));
	id->nsleepers = 0;
	if (!id->sleepers)
		return -ENOMEM;
	pthread_mutex_init(&id->lock, NULL);
	return 0;
}

void rlt__idle_destroy(rlt__idle *id)
{
	pthread_mutex_destroy(&id->lock);
	rlt__free(id->sleepers);
	id->sleepers = NULL;
}

bool rlt__idle_try_search(rlt__idle *id)
{
	unsigned s = atomic_load_explicit(&id->state, memory_order_seq_cst);
	if (2 * (s & 0xffffu) >= id->nworkers)
		return false;
	atomic_fetch_add_explicit(&id->state, SEARCHING, memory_order_seq_cst);
	return true;
}

bool rlt__idle_stop_search(rlt__idle *id)
{
	unsigned prev = atomic_fetch_sub_explicit(&id->state, SEARCHING, memory_order_seq_cst);
	return (prev & 0xffffu) == 1;
}

bool rlt__idle_park(rlt__idle *id, unsigned worker, bool searching)
{
	pthread_mutex_lock(&id->lock);
	unsigned dec = UNPARKED + (searching ? SEARCHING : 0);
	unsigned prev = atomic_fetch_sub_explicit(&id->state, dec, memory_order_seq_cst);
	id->sleepers[id->nsleepers++] = worker;
	pthread_mutex_unlock(&id->lock);
	return searching && (prev & 0xffffu) == 1;
}

bool rlt__idle_unpark_self(rlt__idle *id, unsigned worker)
{
	bool found = false;
	pthread_mutex_lock(&id->lock);
	for (unsigned i = 0; i < id->nsleepers; i++) {
		if (id->sleepers[i] == worker) {
			id->sleepers[i] = id->sleepers[--id->nsleepers];
			atomic_fetch_add_explicit(&id->state, UNPARKED, memory_order_seq_cst);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&id->lock);
	return found;
}

int rlt__idle_pick(rlt__idle *id)
{
	if (!rlt__idle_should_notify(id))
		return -1;
	pthread_mutex_lock(&id->lock);
	int w = -1;
	/* Check again under the lock: another notifier may have been first. */
	if (rlt__idle_should_notify(id) && id->nsleepers) {
		w = (int)id->sleepers[--id->nsleepers];
		atomic_fetch_add_explicit(&id->state, UNPARKED + SEARCHING, memory_order_seq_cst);
	}
	pthread_mutex_unlock(&id->lock);
	return w;
}
