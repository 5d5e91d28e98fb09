#include "ringlet/time.h"

#include "runtime/cpu.h"
#include "runtime/task.h"
#include "sched/worker.h"

#include <time.h>

uint64_t rlt_now(void) { return rlt__mono_ns(); }

typedef struct sleeper {
	rlt__timer tm;
	rlt_task *task;
} sleeper;

static void sleeper_fire(rlt__timer *tm) { rlt__task_wake(((sleeper *)tm)->task); }

int rlt_sleep_until(uint64_t deadline_ns)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	rlt__worker *w = t->worker;
	if (deadline_ns <= rlt_now())
		return rlt_yield();
	sleeper s;
	rlt__timer_init(&s.tm, sleeper_fire);
	s.tm.deadline = deadline_ns;
	s.task = t;
	if (rlt__timer_add(&w->timers, &s.tm) < 0)
		return -ENOMEM;
	t->wait_timer = &s.tm;
	rlt__task_suspend(t);
	return 0;
}

int rlt_sleep(uint64_t ns)
{
	if (ns == 0)
		return rlt_yield();
	return rlt_sleep_until(rlt_now() + ns);
}
