/*
 * io/ops.c's internal side: the one place that hands operations to a loop
 * policy. Besides the public one-shot operations (include/ringlet/io.h), it
 * runs multishot ones for io/acceptor.c: submitted once, each result heard
 * by a sink on the thread of the worker whose loop owns the op.
 */
#ifndef RLT_IO_OPS_H
#define RLT_IO_OPS_H

#include "io/policy.h"
#include "runtime/task.h"

struct rlt__worker;

/* RLT_POLICY_* flags of the loop policy of t's worker. */
unsigned rlt__op_policy_flags(rlt_task *t);
/* Whether t's receive queues take the multishot path: the policy can
 * (RLT_POLICY_MULTISHOT_RECV) and RINGLET_RXQ is not 0. */
bool rlt__op_rxq_multishot(rlt_task *t);

/* Submit op (code, fd and arguments filled in) as a multishot op on the loop
 * of t's worker, where every result goes to sink (rlt__op_sink). *owner is
 * set to that worker before the submit (the sink may need it at once): the
 * only thread on which the op may be cancelled. Never suspends. */
void rlt__op_submit_multi(rlt_task *t, rlt_op *op, rlt__op_sink *sink, struct rlt__worker **owner);

/* On owner's thread (a message posted to it): ask its loop to end a
 * multishot op; the sink hears the end. */
void rlt__op_cancel_multi(struct rlt__worker *owner, rlt_op *op);

/* Whether the loop policy of t's worker carries opcode without blocking
 * (rlt_policy.native_ops). */
bool rlt__op_native(rlt_task *t, unsigned opcode);

/* RLT_OP_SPLICE (include/ringlet/policy.h) from the calling task: splice(2)
 * of at most len bytes from fd_in to fd_out, offsets -1 for "the fd's
 * position" (always for a pipe). The same contract as the io.h calls:
 * suspends the task, -EPERM outside one, -ECANCELED / -ETIMEDOUT;
 * -EOPNOTSUPP where the policy cannot splice without blocking (epoll). */
ssize_t rlt__splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
		    unsigned flags);

#endif
