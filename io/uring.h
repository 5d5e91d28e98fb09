/*
 * The io_uring side of a worker: ring setup, submission, completion reaping,
 * waiting, and the eventfd that lets other threads wake a sleeping worker.
 *
 * user_data of every SQE ringlet submits is one of:
 *   0                 fire-and-forget (cancel requests): CQE ignored
 *   RLT__UD_WAKE      the eventfd read armed for remote wake-ups
 *   an rlt__op *      the operation a task is suspended on: the CQE's res
 *                     is stored in it and its task is woken
 */
#ifndef RLT_IO_URING_H
#define RLT_IO_URING_H

#include "sched/worker.h"

#include <liburing.h>

#define RLT__UD_WAKE ((uint64_t)1)

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
/* Wake w from another thread (w->parked was 1). */
void rlt__io_kick(rlt__worker *w);
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
