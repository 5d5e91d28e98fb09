#ifndef RINGLET_TIME_H
#define RINGLET_TIME_H

#include "common.h"

RLT_EXTERN_C_BEGIN

/* Now, in nanoseconds on CLOCK_MONOTONIC. Any thread. */
RLT_API uint64_t rlt_now(void);

/* Suspend the calling task for ns nanoseconds (0 just yields).
 * Timers are kept per worker: a wheel of ~1 ms slots in front of a 4-ary
 * min-heap that holds only what is due within about a millisecond (deadlines
 * stay exact to the nanosecond; sched/timer.h). The loop's wait is bounded
 * by the nearest deadline, so the wake-up lateness is the kernel's timer
 * slack (50 us by default) plus scheduling.
 * Returns 0, -ECANCELED (the task was cancelled: rlt_cancel), -ETIMEDOUT
 * (a deadline scope of the task expired first: rlt_scope_enter), -EPERM
 * (not in a task) or -ENOMEM (the timer heap could not grow). */
RLT_API int rlt_sleep(uint64_t ns);

/* Suspend until rlt_now() >= deadline_ns. A deadline in the past yields.
 * Returns as rlt_sleep(). */
RLT_API int rlt_sleep_until(uint64_t deadline_ns);

RLT_EXTERN_C_END

#endif
