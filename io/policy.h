/*
 * The scheduler's side of loop policies (the public side is
 * include/ringlet/policy.h): the registry, start-up selection, and the
 * macros through which the hot path calls the running policy.
 *
 * Hot path: a worker calls its policy's submit once per I/O operation and
 * poll once per loop turn, through loop->policy (one load, one indirect
 * call that always goes to the same place, so it predicts). Built with
 * -DRINGLET_POLICY_DIRECT=ON, the calls go straight to the io_uring
 * policy instead: that build exists to measure what the indirection costs
 * (bench/policies.sh) and refuses any other policy.
 */
#ifndef RLT_IO_POLICY_H
#define RLT_IO_POLICY_H

#include "ringlet/policy.h"
#include "ringlet/runtime.h"

#include "io/fdwait.h"
#include "runtime/config.h"
#include "sched/sched.h"

#include <stdbool.h>

/* rlt_op.state_. MULTI: a multishot op, whose task_ is an rlt__op_sink
 * rather than a task. */
enum { RLT__OP_SUBMITTING, RLT__OP_WAITING, RLT__OP_DONE, RLT__OP_MULTI };

/* Who hears a multishot op's results, on the thread of the loop it was
 * submitted to: more is true for each rlt_op_deliver(), false for the one
 * rlt_op_complete() that ends it. */
typedef struct rlt__op_sink {
	void (*result)(struct rlt__op_sink *s, rlt_op *op, int32_t res, bool more);
} rlt__op_sink;

/* rlt_op_complete, inlined into the shipped policies. */
static inline void rlt__op_complete(rlt_op *op, int32_t res)
{
	uint8_t st = op->state_;
	op->res_ = res;
	op->state_ = RLT__OP_DONE;
	/* Completed inside submit: the task has not suspended, it will see
	 * DONE and carry on. Otherwise it waits for exactly this wake. */
	if (st == RLT__OP_WAITING) {
		rlt__fdwait_unlink(op);
		rlt__task_wake((struct rlt_task *)op->task_);
	} else if (__builtin_expect(st == RLT__OP_MULTI, 0))
		((rlt__op_sink *)op->task_)->result((rlt__op_sink *)op->task_, op, res, false);
}

/* rlt_op_deliver: a result of a multishot op that goes on. */
static inline void rlt__op_deliver(rlt_op *op, int32_t res)
{
	if (op->state_ == RLT__OP_MULTI)
		((rlt__op_sink *)op->task_)->result((rlt__op_sink *)op->task_, op, res, true);
}

/* The shipped policies. */
extern const rlt_policy rlt__policy_uring;
extern const rlt_policy rlt__policy_sqpoll;
extern const rlt_policy rlt__policy_epoll;
extern const rlt_policy rlt__policy_fault;

/* The loop of worker index of loop's runtime, once its init has run (or
 * NULL): for policies that share something between their loops, as
 * sqpoll's ATTACH_WQ does. sched/worker.c. */
rlt_loop *rlt__loop_peer(rlt_loop *loop, unsigned index);

void rlt__uring_submit(rlt_loop *loop, rlt_op *op);
int rlt__uring_poll(rlt_loop *loop, int64_t timeout_ns);

#ifdef RLT_POLICY_DIRECT
#define RLT__POL_SUBMIT(loop, op)    rlt__uring_submit((loop), (op))
#define RLT__POL_POLL(loop, timeout) rlt__uring_poll((loop), (timeout))
#else
#define RLT__POL_SUBMIT(loop, op)    (loop)->policy->submit((loop), (op))
#define RLT__POL_POLL(loop, timeout) (loop)->policy->poll((loop), (timeout))
#endif

/* What rlt_run() will use, decided before any worker starts. */
typedef struct rlt__policy_choice {
	const rlt_policy *policy;
	char options[128];
	char spec[160]; /* "name" or "name:options", as reported */
	bool fell_back;
} rlt__policy_choice;

/* Pick the policy from RINGLET_POLICY (env, wins), cfg->policy, or the
 * default; probe it; fall back to epoll when it cannot start unless strict
 * (RINGLET_POLICY_STRICT or cfg). Prints the reason on stderr when it falls
 * back or fails. 0 or a negative errno. */
int rlt__policy_choose(const rlt_config *cfg, const rlt__settings *env, rlt__policy_choice *out);

/* The settings of the runtime that loop belongs to (the defaults for a
 * loop outside any runtime, as a pool thread's ring). sched/worker.c. */
const rlt__settings *rlt__loop_settings(const rlt_loop *loop);

/* Faults injected so far by the process's fault loops (io/policy_fault.c),
 * for the test harness. */
uint64_t rlt__fault_injected(void);

#endif
