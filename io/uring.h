/*
 * The io_uring side of a worker: ring setup, submission, completion reaping,
 * waiting, and the eventfd that lets other threads wake a sleeping worker.
 *
 * user_data of every SQE ringlet submits is one of:
 *   0                 fire-and-forget (cancel requests): CQE ignored
 *   RLT__UD_WAKE      the eventfd read armed for remote wake-ups
 *   RLT__UD_MSG       a wake-up posted by another worker's MSG_RING
 *   an rlt__op *      the operation a task is suspended on: the CQE's res
 *                     is stored in it and its task is woken
 */
#ifndef RLT_IO_URING_H
#define RLT_IO_URING_H

#include "sched/worker.h"

#include <liburing.h>

#define RLT__UD_WAKE ((uint64_t)1)
#define RLT__UD_MSG ((uint64_t)2)
#define RLT__UD_MAX RLT__UD_MSG

typedef struct rlt__op {
	rlt_task *task;
	int32_t res;
} rlt__op;

int rlt__io_init(rlt__worker *w, unsigned entries);
void rlt__io_fini(rlt__worker *w);
/* Submit what is queued and reap what completed, without blocking. */
void rlt__io_poll(rlt__worker *w);
/* Submit, then sleep until a completion, a remote wake-up or timeout_ns
 * passes (< 0: no limit); reap. */
void rlt__io_wait(rlt__worker *w, int64_t timeout_ns);
/* Wake w from another thread through its eventfd. */
void rlt__io_kick(rlt__worker *w);
/* Wake target from worker self's ring: IORING_OP_MSG_RING, submitted now. */
void rlt__io_msg_ring(rlt__worker *self, rlt__worker *target);
/* Does this kernel have IORING_OP_MSG_RING? (Asks a ring of w's.) */
bool rlt__io_has_msg_ring(rlt__worker *w);
/* Cancel every in-flight operation and reap until none is left. */
void rlt__io_cancel_all(rlt__worker *w);

/* A free SQE, submitting the queued ones first if the SQ is full. */
static inline struct io_uring_sqe *rlt__io_sqe(rlt__worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	while (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

#endif
