/* Wait queues: see runtime/waitq.h for the hand-off protocol. */
#include "runtime/waitq.h"

#include "runtime/task.h"

void rlt__waiter_wake(rlt__waiter *w)
{
	/* The oneshot's release publishes what the waker wrote into w. After
	 * the exchange, w may be gone: only the task pointer is used. */
	rlt_task *t = rlt__oneshot_complete(&w->os);
	if (t)
		rlt__task_wake(t);
}

int rlt__waitq_wait(rlt__spin *lock, rlt__waitq *q, rlt__waiter *w, int64_t timeout_ns)
{
	rlt__spin_unlock(lock);
	int rc = rlt__oneshot_wait(&w->os, timeout_ns);
	if (rc == 0)
		return 0;
	/* Timed out (or no timer could be armed): leave, unless a waker has
	 * already taken us out of the queue, in which case its hand-off is
	 * on its way and must not be lost. */
	rlt__spin_lock(lock);
	if (w->queued) {
		rlt__waitq_remove(q, w);
		rlt__spin_unlock(lock);
		return rc;
	}
	rlt__spin_unlock(lock);
	return rlt__oneshot_wait(&w->os, -1);
}
