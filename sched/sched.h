/*
 * The contract between tasks and the scheduler: everything runtime/ and io/
 * need to suspend a task, wake it, hand work to a worker and bound a wait
 * with a timer, without seeing a worker's insides (sched/worker.h).
 * tokio keeps its tasks ignorant of the scheduler behind a small trait
 * (schedule, release, yield); this header is that trait in C: direct calls,
 * no vtable, so a wake costs no indirect call.
 *
 * The rules every wait follows (runtime/cancel.h has the cancellation half):
 *   1. Arm the wait's timer, if any (rlt__wait_timer_arm), before the wait
 *      is visible to any waker: a waker on another thread may wake the task
 *      at once, and the wake path disarms whatever timer is recorded.
 *   2. Suspend with rlt__task_suspend. Exactly one rlt__task_wake resumes
 *      the task; it runs on the worker the task suspended on, which disarms
 *      the timer before the task can run again.
 *   3. A wait that ends without suspending (the op completed inside its
 *      submit, registering failed) disarms the timer itself
 *      (rlt__wait_timer_disarm).
 */
#ifndef RLT_SCHED_SCHED_H
#define RLT_SCHED_SCHED_H

#include "ringlet/policy.h"
#include "runtime/task.h"
#include "sched/timer.h"

#include <stdint.h>

struct rlt__worker;
struct rlt__runtime;

/* The task running on this thread, or NULL outside a task. Not inlined: a
 * task may move between threads across a suspension, and the compiler must
 * not reuse a thread-local address computed before one. */
rlt_task *rlt__task_self(void);

/* Park the running task t until someone calls rlt__task_wake(t). */
void rlt__task_suspend(rlt_task *t);

/* Make a suspended task runnable, from any thread. Exactly once per
 * suspension (the oneshot and timer protocols guarantee it). */
void rlt__task_wake(rlt_task *t);

/* Have m->fn run on w's thread, in its loop, from any thread. m must stay
 * valid until then. */
void rlt__worker_post(struct rlt__worker *w, rlt__msg *m);

/*
 * Bound the running task t's next wait: arm tm to call fire at deadline
 * (CLOCK_MONOTONIC ns) on t's worker, and record it as the wait's timer.
 * Returns 0, or -ENOMEM when the worker's timer heap cannot grow: the wait
 * must then fail with -ENOMEM before it starts (every timed wait answers
 * the same: sleeps, timed joins and futures, I/O under a deadline).
 */
int rlt__wait_timer_arm(rlt_task *t, rlt__timer *tm, rlt__timer_fn fire, uint64_t deadline);

/* Out of line: take t's armed wait timer tm off its worker's heap. */
void rlt__wait_timer_del(rlt_task *t, rlt__timer *tm);

/* The wait ended without a wake (rule 3), or the wake path runs: disarm
 * t's wait timer if one is still armed. Harmless when there is none, and
 * then costs a load: inline, since every wake passes here. */
static inline void rlt__wait_timer_disarm(rlt_task *t)
{
	rlt__timer *tm = t->wait_timer;
	if (tm) {
		if (rlt__timer_armed(tm))
			rlt__wait_timer_del(t, tm);
		t->wait_timer = NULL;
	}
}

/* Pool jobs a task of t's runtime waits for: the runtime outlives them
 * (runtime/executor.c). begin returns the runtime to pass to end, which
 * may run on any thread. */
struct rlt__runtime *rlt__runtime_job_begin(rlt_task *t);
void rlt__runtime_job_end(struct rlt__runtime *rt);

/* Let the calling thread, which is not a worker (a pool thread), wake
 * workers through loop, a ring of its own (NULL: through their eventfds). */
void rlt__set_foreign_loop(rlt_loop *loop);

#endif
