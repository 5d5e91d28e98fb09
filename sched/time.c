#include "ringlet/time.h"

#include "runtime/cancel.h"
#include "runtime/cpu.h"
#include "runtime/task.h"
#include "sched/sched.h"

#include <time.h>

uint64_t rlt_now(void)
{
	return rlt__mono_ns();
}

typedef struct sleeper {
	rlt__wait wt;
	rlt__timer tm;
	rlt_task *task;
	int cause;	/* what the sleep returns */
	int fire_cause; /* 0, or -ETIMEDOUT when the timer is a scope's deadline */
} sleeper;

static void sleeper_fire(rlt__timer *tm)
{
	sleeper *s = (sleeper *)((char *)tm - offsetof(sleeper, tm));
	s->cause = s->fire_cause;
	rlt__task_wake(s->task);
}

static bool sleeper_cancel(struct rlt__worker *w, rlt__wait *wt)
{
	(void)w;
	sleeper *s = (sleeper *)wt;
	s->cause = -ECANCELED;
	rlt__task_wake(s->task); /* on our worker: disarms the timer */
	return true;
}

int rlt_sleep_until(uint64_t deadline_ns)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	uint64_t now = rlt_now();
	sleeper s;
	s.fire_cause = 0;
	if (t->deadline < deadline_ns) {
		if (t->deadline <= now)
			return -ETIMEDOUT; /* inside an expired scope */
		deadline_ns = t->deadline;
		s.fire_cause = -ETIMEDOUT;
	}
	if (deadline_ns <= now)
		return rlt_yield();
	s.task = t;
	s.cause = 0;
	s.wt.cancel = sleeper_cancel;
	int rc = rlt__wait_timer_arm(t, &s.tm, sleeper_fire, deadline_ns);
	if (rc < 0)
		return rc;
	rc = rlt__wait_enter(t, &s.wt, RLT__WK_SLEEP);
	if (rc) {
		rlt__wait_timer_disarm(t);
		return rc;
	}
	rlt__task_suspend(t);
	if (s.cause == -ECANCELED)
		t->c.ncancel++;
	return s.cause;
}

int rlt_sleep(uint64_t ns)
{
	if (ns == 0)
		return rlt_yield();
	return rlt_sleep_until(rlt_now() + ns);
}
