/* Wait queues: see runtime/waitq.h for the hand-off protocol. */
#include "runtime/waitq.h"

#include "runtime/cancel.h"
#include "runtime/task.h"
#include "sched/sched.h"

void rlt__waiter_wake(rlt__waiter *w)
{
	/* The oneshot's release publishes what the waker wrote into w. After
	 * the exchange, w may be gone: only the task pointer is used. */
	rlt__oneshot_fire(&w->os);
}

int rlt__waitq_wait(rlt__spin *lock, rlt__waitq *q, rlt__waiter *w, int64_t timeout_ns,
		    unsigned kind)
{
	rlt__spin_unlock(lock);
	int rc = rlt__oneshot_wait_k(&w->os, timeout_ns, kind);
	if (rc == 0)
		return 0;
	/* Timed out, cancelled (or no timer could be armed): leave, unless a
	 * waker has already taken us out of the queue, in which case its
	 * hand-off is on its way and must not be lost. */
	rlt__spin_lock(lock);
	if (w->queued) {
		rlt__waitq_remove(q, w);
		rlt__spin_unlock(lock);
		return rc;
	}
	rlt__spin_unlock(lock);
	rlt__oneshot_wait_k(&w->os, -1, kind | RLT__WAIT_NOCANCEL);
	if (rc == -ECANCELED) {
		/* The hand-off won: we return it, so the cancellation was not
		 * delivered here after all. The next suspension point gets it. */
		rlt_task *t = rlt__task_self();
		t->c.ncancel--;
		rlt__cancel_repend(t);
	}
	return 0;
}
