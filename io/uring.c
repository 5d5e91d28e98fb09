#include "io/uring.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif

/* Best first. DEFER_TASKRUN runs completions only when we enter the kernel
 * to ask for them, on our thread, in a batch: no IPIs, no surprise work.
 * TASKRUN_FLAG makes the kernel say (IORING_SQ_TASKRUN) when such work is
 * waiting, so a busy loop skips io_uring_enter when there is nothing. */
static const unsigned setup_flags[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	0,
};

static void arm_wake(rlt__worker *w)
{
	struct io_uring_sqe *sqe = rlt__io_sqe(w);
	io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof(w->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, RLT__UD_WAKE);
	w->wake_armed = true;
	w->inflight++;
}

int rlt__io_init(rlt__worker *w, unsigned entries)
{
	int rc = -EINVAL;
	w->wake_fd = -1;
	for (size_t i = 0; i < sizeof(setup_flags) / sizeof(setup_flags[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = setup_flags[i];
		rc = io_uring_queue_init_params(entries, &w->ring, &p);
		if (rc == 0) {
			w->taskrun_flag = (setup_flags[i] & IORING_SETUP_TASKRUN_FLAG) != 0;
			break;
		}
		/* Only an unknown flag is worth a retry; EPERM, ENOMEM, ENOSYS
		 * are the kernel saying no to io_uring itself. */
		if (rc != -EINVAL)
			return rc;
	}
	if (rc < 0)
		return rc;
	w->ring_ready = true;
	w->ring_fd = w->ring.ring_fd;
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0) {
		rc = -errno;
		io_uring_queue_exit(&w->ring);
		w->ring_ready = false;
		return rc;
	}
	arm_wake(w);
	return 0;
}

void rlt__io_fini(rlt__worker *w)
{
	/* In-flight operations were cancelled by the owning thread
	 * (rlt__io_cancel_all); this may run on another thread. */
	if (w->ring_ready)
		io_uring_queue_exit(&w->ring);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	w->wake_fd = -1;
	w->ring_ready = false;
}

/* Reap every CQE that is ready: the hot path of completions. */
static void reap(rlt__worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	io_uring_for_each_cqe(&w->ring, head, cqe)
	{
		uint64_t ud = cqe->user_data;
		n++;
		if (ud > RLT__UD_MAX) {
			rlt__op *op = (rlt__op *)(uintptr_t)ud;
			op->res = cqe->res;
			w->inflight--;
			rlt__task_wake(op->task);
		} else if (ud == RLT__UD_WAKE) {
			w->inflight--;
			w->wake_armed = false;
		}
	}
	io_uring_cq_advance(&w->ring, n);
	if (!w->wake_armed && !w->no_rearm)
		arm_wake(w);
}

void rlt__io_poll(rlt__worker *w)
{
	bool must_enter = io_uring_sq_ready(&w->ring) > 0;
	if (!must_enter && w->inflight) {
		/* Completions can be waiting in the kernel (deferred task work);
		 * with TASKRUN_FLAG the kernel tells us, without that, ask. */
		must_enter = !w->taskrun_flag ||
			     (IO_URING_READ_ONCE(*w->ring.sq.kflags) & IORING_SQ_TASKRUN);
	}
	if (must_enter)
		io_uring_submit_and_get_events(&w->ring);
	else if (!io_uring_cq_ready(&w->ring))
		return; /* the common case of a busy turn: nothing to do */
	reap(w);
}

void rlt__io_wait(rlt__worker *w, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	if (timeout_ns >= 0) {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ns / 1000000000,
			.tv_nsec = timeout_ns % 1000000000,
		};
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_wait(&w->ring, 1);
	}
	reap(w);
}

void rlt__io_kick(rlt__worker *w)
{
	uint64_t one = 1;
	ssize_t n;
	do
		n = write(w->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN means the counter is already non-zero: a wake-up is pending. */
}

void rlt__io_msg_ring(rlt__worker *self, rlt__worker *target)
{
	struct io_uring_sqe *sqe = rlt__io_sqe(self);
	io_uring_prep_msg_ring(sqe, target->ring_fd, 0, RLT__UD_MSG, 0);
	/* No CQE here on success; a failure CQE has user_data 0: ignored. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	io_uring_sqe_set_data64(sqe, 0);
	/* Now, not at the end of the turn: the target is asleep. */
	io_uring_submit(&self->ring);
}

bool rlt__io_has_msg_ring(rlt__worker *w)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&w->ring);
	if (!p)
		return false;
	bool ok = io_uring_opcode_supported(p, IORING_OP_MSG_RING);
	io_uring_free_probe(p);
	return ok;
}

void rlt__io_cancel_all(rlt__worker *w)
{
	if (!w->inflight)
		return;
	struct io_uring_sqe *sqe = rlt__io_sqe(w);
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, 0);
	w->no_rearm = true;
	while (w->inflight) {
		io_uring_submit_and_wait(&w->ring, 1);
		reap(w);
	}
}
