/* The I/O operations: describe one rlt_op, hand it to the worker's loop
 * policy, suspend until it completes. */
#include "ringlet/io.h"

#include "ringlet/time.h"

#include "io/ops.h"
#include "io/policy.h"
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "runtime/oneshot.h"
#include "sched/worker.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/stat.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* Linux's MAX_RW_COUNT: larger transfers are clamped (and come back short). */
#define RLT_MAX_RW ((size_t)INT_MAX & ~(size_t)4095)

static inline size_t clamp_len(size_t len)
{
	return len > RLT_MAX_RW ? RLT_MAX_RW : len;
}

/* Begin an operation of the calling task. */
#define OP_BEGIN(t, op, opcode, fd_)                                                               \
	rlt_task *t = rlt__task_self();                                                            \
	if (!t)                                                                                    \
		return -EPERM;                                                                     \
	rlt_op op;                                                                                 \
	op.code = (opcode);                                                                        \
	op.hint = 0;                                                                               \
	op.fd = (fd_)

/* An operation's wait, on the task's stack. Its cancel hook (rlt_cancel,
 * run on the worker the op was submitted to, which is where it completes)
 * and its deadline timer both ask the policy to cancel the op; the op then
 * completes, with -ECANCELED unless it won the race, and only that
 * completion wakes the task: the kernel is done with the op's buffers by
 * then. The timer is used for a deadline (a scope's, or the task's I/O
 * timeout) only under policies that cannot carry one themselves
 * (RLT_POLICY_DEADLINES: io_uring links a timeout to the op). */
typedef struct op_wait {
	rlt__wait wt;
	rlt__timer tm;
	rlt_op *op;
	rlt_loop *loop;
	/* -ECANCELED, -ETIMEDOUT or -EBADF (rlt_close of the fd by another
	 * task) once something asked for a cancel */
	int cause;
} op_wait;

static bool op_cancel(rlt__worker *w, rlt__wait *wt)
{
	(void)w;
	op_wait *ow = (op_wait *)wt;
	if (ow->op->state_ == RLT__OP_DONE)
		return false;
	bool asked = ow->cause != 0; /* the deadline did already */
	ow->cause = -ECANCELED;
	if (!asked && ow->loop->policy->cancel(ow->loop, ow->op) < 0) {
		ow->cause = 0;
		return false;
	}
	return true;
}

static void op_deadline_fire(rlt__timer *tm)
{
	op_wait *ow = (op_wait *)((char *)tm - offsetof(op_wait, tm));
	if (ow->cause)
		return;
	ow->cause = -ETIMEDOUT;
	ow->loop->policy->cancel(ow->loop, ow->op);
}

/* What a finished op returns, when something asked it to stop. */
static __attribute__((noinline)) int op_outcome(rlt_task *t, op_wait *ow)
{
	int res = ow->op->res_;
	/* An op the kernel was running in an io-wq thread (a splice) ends
	 * interrupted rather than -ECANCELED when cancelled, and 6.18 lets
	 * -ERESTARTSYS (512) out: it moved nothing, and it is ours (an -EINTR
	 * with no cancel asked and no deadline passed is the op's own). */
	if ((res == -EINTR || res == -512) &&
	    (ow->cause || (ow->op->deadline && rlt_now() >= ow->op->deadline)))
		res = -ECANCELED;
	if (res == -ECANCELED) {
		if (ow->cause == -ECANCELED) {
			t->c.ncancel++;
			return -ECANCELED;
		}
		if (ow->cause == -ETIMEDOUT || ow->op->deadline)
			return -ETIMEDOUT; /* our timer, or the linked timeout */
		if (ow->cause == -EBADF)
			return -EBADF; /* the fd was closed under us */
		return res;
	}
	if (ow->cause == -ECANCELED)
		rlt__cancel_repend(t); /* the op won the race: deliver it next time */
	return res;
}

/* Bytes moved by a successful op, for the worker's counters: 1 reads,
 * 2 writes, 0 neither. */
static const uint8_t op_dir[RLT_OP_COUNT] = {
    [RLT_OP_READ] = 1,	[RLT_OP_READV] = 1,  [RLT_OP_RECV] = 1, [RLT_OP_RECVMSG] = 1,
    [RLT_OP_WRITE] = 2, [RLT_OP_WRITEV] = 2, [RLT_OP_SEND] = 2, [RLT_OP_SENDMSG] = 2,
};

static inline int op_count(rlt_task *t, rlt_op *op, int res)
{
	RLT__TRACE(t->worker, RLT__TEV_IO_DONE, (uint64_t)(int64_t)res, NULL, op->code);
	if (res > 0 && op_dir[op->code]) {
		/* t->worker: the task may have been stolen since it submitted. */
		rlt__wstats *st = &t->worker->st;
		if (op_dir[op->code] == 1)
			RLT__STAT_ADD(st->bytes_read, (uint64_t)res);
		else
			RLT__STAT_ADD(st->bytes_written, (uint64_t)res);
	}
	return res;
}

/* Hand op to the worker's loop and wait. The policy may complete it inside
 * submit (epoll, when the socket is ready): then the task does not suspend.
 * The SQE-style batching is the policy's: nothing reaches the kernel before
 * the loop's next poll. deadline: when the op must end (0: never). */
static int op_submit_wait(rlt_task *t, rlt_op *op, uint64_t deadline)
{
	rlt__worker *w = t->worker;
	op_wait ow;
	ow.wt.cancel = op_cancel;
	ow.op = op;
	ow.loop = &w->loop;
	ow.cause = 0;
	op->task_ = t;
	op->deadline = 0;
	/* Published before the submit: a cancel message can only run once we
	 * have suspended, and then the op is in flight. */
	int rc = rlt__wait_enter(t, &ow.wt, RLT__WK_IO | (unsigned)op->code << 8);
	if (rc)
		return rc;
	if (__builtin_expect(deadline != 0, 0)) {
		/* Not a splice: io_uring runs it in an io-wq thread, and a
		 * timeout linked to it is cancelled as soon as it is armed
		 * (Linux 6.18: its CQE says -ECANCELED at once, and a splice
		 * blocked on a full socket goes on), so its deadline is our
		 * timer's, which cancels it like rlt_cancel does. */
		if ((w->loop.policy->flags & RLT_POLICY_DEADLINES) && op->code != RLT_OP_SPLICE) {
			op->deadline = deadline;
		} else {
			/* Armed before the submit (sched/sched.h, rule 1). No
			 * room for it: the op fails before it starts, as every
			 * timed wait does. */
			int arm = rlt__wait_timer_arm(t, &ow.tm, op_deadline_fire, deadline);
			if (arm < 0) {
				rlt__wait_abandon(t);
				return arm;
			}
		}
	}
	if (op->code == RLT_OP_SEND && !rlt__worker_has_local_work(w))
		op->hint |= RLT_OP_HINT_ALONE;
	op->state_ = RLT__OP_SUBMITTING;
	RLT__STAT_INC(w->st.io_ops);
	RLT__TRACE(w, RLT__TEV_IO_SUB, (uint64_t)(int64_t)op->fd, NULL, op->code);
	RLT__POL_SUBMIT(&w->loop, op);
	if (op->state_ == RLT__OP_DONE) {
		rlt__wait_abandon(t);
		rlt__wait_timer_disarm(t);
		return op_count(t, op, op->res_);
	}
	op->state_ = RLT__OP_WAITING;
	/* Listed until it completes, for an rlt_close of its fd. */
	rlt__fdwait_link(&w->fdwaits, op);
	rlt__task_suspend(t);
	if (__builtin_expect(ow.cause != 0 || (op->deadline && op->res_ == -ECANCELED), 0))
		return op_outcome(t, &ow);
	return op_count(t, op, op->res_);
}

/* The op's deadline: the nearest of the task's scopes and its I/O timeout.
 * 0 when there is none; 1 when it has passed. */
static __attribute__((noinline)) uint64_t op_deadline(rlt_task *t)
{
	uint64_t now = rlt_now();
	uint64_t d = t->deadline;
	if (t->io_timeout > 0 && now + (uint64_t)t->io_timeout < d)
		d = now + (uint64_t)t->io_timeout;
	return d <= now ? 1 : d;
}

static inline int op_run(rlt_task *t, rlt_op *op)
{
	uint64_t deadline = 0;
	if (__builtin_expect(t->io_timeout > 0 || t->deadline != UINT64_MAX, 0)) {
		deadline = op_deadline(t);
		if (deadline == 1)
			return rlt__cancel_point(t) ? -ECANCELED : -ETIMEDOUT;
	}
	return op_submit_wait(t, op, deadline);
}

ssize_t rlt_read(int fd, void *buf, size_t len, off_t offset)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_READ, fd);
	op.u.rw.buf = buf;
	op.u.rw.len = clamp_len(len);
	op.u.rw.off = offset;
	return op_run(t, &op);
}

ssize_t rlt_write(int fd, const void *buf, size_t len, off_t offset)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_WRITE, fd);
	op.u.rw.buf = (void *)buf;
	op.u.rw.len = clamp_len(len);
	op.u.rw.off = offset;
	return op_run(t, &op);
}

ssize_t rlt_readv(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if ((!iov && iovcnt) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_READV, fd);
	op.u.vec.iov = iov;
	op.u.vec.iovcnt = iovcnt;
	op.u.vec.off = offset;
	return op_run(t, &op);
}

ssize_t rlt_writev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if ((!iov && iovcnt) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_WRITEV, fd);
	op.u.vec.iov = iov;
	op.u.vec.iovcnt = iovcnt;
	op.u.vec.off = offset;
	return op_run(t, &op);
}

int rlt_openat(int dfd, const char *path, int flags, mode_t mode)
{
	if (!path)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_OPENAT, dfd);
	op.u.open.path = path;
	op.u.open.flags = flags;
	op.u.open.mode = mode;
	return op_run(t, &op);
}

/* ---- rlt_close and the tasks waiting on the fd ---- */

/* On w's thread: end the waits of w's tasks on fd with -EBADF. Each op is
 * cancelled through the policy, like a deadline does: its task resumes
 * when the op completes (the kernel is done with its buffers), and an op
 * that completed first keeps its result. */
static void end_waits_local(rlt__worker *w, int fd)
{
	rlt_op *op = rlt__fdwait_first(&w->fdwaits, fd);
	while (op) {
		rlt_op *next = op->fdnext_; /* cancel may complete op at once */
		/* op's task is suspended in this op, on w: its wait record is
		 * the op_wait (runtime/cancel.h's argument for cancel hooks). */
		op_wait *ow = (op_wait *)((rlt_task *)op->task_)->wait;
		if (ow->cause == 0) {
			ow->cause = -EBADF;
			if (w->loop.policy->cancel(&w->loop, op) < 0)
				ow->cause = 0;
		}
		op = next;
	}
}

typedef struct close_req {
	atomic_uint left;
	rlt__oneshot done;
	int fd;
} close_req;

typedef struct close_part {
	rlt__msg m;
	close_req *req;
	unsigned worker;
} close_part;

static void close_part_run(rlt__worker *w, rlt__msg *m)
{
	close_req *req = ((close_part *)m)->req;
	end_waits_local(w, req->fd);
	/* The last part wakes the closer; after that, req may be gone. */
	if (atomic_fetch_sub_explicit(&req->left, 1, memory_order_acq_rel) == 1)
		rlt__oneshot_fire(&req->done);
}

/* Before t closes fd: end every other task's wait on it, on every worker.
 * The other workers are asked by message, and t waits (not cancellable:
 * a close must happen) until each has asked its policy to cancel: then no
 * wait on the old file is left to be mistaken for one on a new file that
 * gets the number. Costs one load per worker when nobody waits. */
static void end_waits(rlt_task *t, int fd)
{
	rlt__worker *self = t->worker;
	rlt__runtime *rt = self->rt;
	unsigned n = rt->nworkers, others = 0;
	for (unsigned i = 0; i < n; i++)
		if (i != self->index && rlt__fdwait_any(&rt->workers[i].fdwaits, fd))
			others++;
	end_waits_local(self, fd);
	if (__builtin_expect(!others, 1))
		return;
	close_part stack_parts[4];
	close_part *parts = others <= 4 ? stack_parts : rlt__calloc(others, sizeof(*parts));
	if (!parts)
		return; /* no memory: their waits go on, as before */
	close_req req;
	req.fd = fd;
	rlt__oneshot_init(&req.done);
	atomic_init(&req.left, others);
	/* The same workers again (a list that emptied meanwhile costs its
	 * worker an empty walk; one that filled is a race of the program's). */
	unsigned k = 0;
	for (unsigned i = 0; i < n && k < others; i++)
		if (i != self->index && rlt__fdwait_any(&rt->workers[i].fdwaits, fd))
			parts[k++].worker = i;
	for (unsigned j = 0; j < k; j++) {
		parts[j].m.fn = close_part_run;
		parts[j].req = &req;
		rlt__worker_post(&rt->workers[parts[j].worker], &parts[j].m);
	}
	/* Those whose list emptied between the two looks count as done. */
	if (k < others &&
	    atomic_fetch_sub_explicit(&req.left, others - k, memory_order_acq_rel) == others - k)
		rlt__oneshot_fire(&req.done);
	rlt__oneshot_wait_k(&req.done, -1, RLT__WK_IO | RLT_OP_CLOSE << 8 | RLT__WAIT_NOCANCEL);
	if (parts != stack_parts)
		rlt__free(parts);
}

int rlt_close(int fd)
{
	OP_BEGIN(t, op, RLT_OP_CLOSE, fd);
	end_waits(t, fd);
	return op_run(t, &op);
}

int rlt_fsync(int fd, unsigned flags)
{
	if (flags & ~RLT_FSYNC_DATASYNC)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_FSYNC, fd);
	op.u.fsync.datasync = (flags & RLT_FSYNC_DATASYNC) != 0;
	return op_run(t, &op);
}

int rlt_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *out)
{
	if (!path || !out)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_STATX, dfd);
	op.u.statx.path = path;
	op.u.statx.flags = flags;
	op.u.statx.mask = mask;
	op.u.statx.out = out;
	return op_run(t, &op);
}

int rlt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (addr && !addrlen)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_ACCEPT, fd);
	op.u.accept.addr = addr;
	op.u.accept.addrlen = addrlen;
	op.u.accept.flags = flags;
	return op_run(t, &op);
}

int rlt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	if (!addr)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_CONNECT, fd);
	op.u.connect.addr = addr;
	op.u.connect.addrlen = addrlen;
	return op_run(t, &op);
}

ssize_t rlt_recv(int fd, void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_RECV, fd);
	op.u.msg.buf = buf;
	op.u.msg.len = clamp_len(len);
	op.u.msg.flags = flags;
	return op_run(t, &op);
}

/* Set once a recv with the hint failed with -EINVAL: a kernel whose
 * io_uring refuses IORING_RECVSEND_POLL_FIRST (5.18 rejects any ioprio on
 * a recv; 5.19 has the flag). Plain recvs from then on: the hint is only
 * worth a failed attempt per call. */
static atomic_bool recv_hint_refused;

ssize_t rlt_recv_idle(int fd, void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	if (atomic_load_explicit(&recv_hint_refused, memory_order_relaxed))
		return rlt_recv(fd, buf, len, flags);
	OP_BEGIN(t, op, RLT_OP_RECV, fd);
	op.hint = RLT_OP_HINT_POLL_FIRST;
	op.u.msg.buf = buf;
	op.u.msg.len = clamp_len(len);
	op.u.msg.flags = flags;
	ssize_t n = op_run(t, &op);
	if (__builtin_expect(n == -EINVAL, 0)) {
		/* The hint's fault, or the caller's (then rlt_recv says so
		 * again, and the hint is given up for nothing worse than a
		 * failed attempt per call). */
		atomic_store_explicit(&recv_hint_refused, true, memory_order_relaxed);
		return rlt_recv(fd, buf, len, flags);
	}
	return n;
}

ssize_t rlt_send(int fd, const void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_SEND, fd);
	op.u.msg.buf = (void *)buf;
	op.u.msg.len = clamp_len(len);
	op.u.msg.flags = flags | MSG_NOSIGNAL;
	return op_run(t, &op);
}

int rlt_shutdown(int fd, int how)
{
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_SHUTDOWN, fd);
	op.u.shutdown.how = how;
	return op_run(t, &op);
}

int rlt_waitid(int idtype, unsigned id, siginfo_t *info, int options)
{
	if (!info || (options & WNOHANG))
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_WAITID, -1);
	op.u.waitid.idtype = idtype;
	op.u.waitid.id = id;
	op.u.waitid.info = info;
	op.u.waitid.options = options;
	return op_run(t, &op);
}

int rlt_set_io_timeout(int64_t timeout_ns)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	t->io_timeout = timeout_ns > 0 ? timeout_ns : 0;
	return 0;
}

int64_t rlt_io_timeout(void)
{
	rlt_task *t = rlt__task_self();
	return t ? t->io_timeout : 0;
}

int rlt_poll(int fd, unsigned mask)
{
	OP_BEGIN(t, op, RLT_OP_POLL, fd);
	op.u.poll.events = mask;
	return op_run(t, &op);
}

ssize_t rlt_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!msg || (!msg->msg_iov && msg->msg_iovlen))
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_SENDMSG, fd);
	op.u.msg.buf = (void *)msg;
	op.u.msg.len = 0;
	op.u.msg.flags = flags | MSG_NOSIGNAL;
	return op_run(t, &op);
}

ssize_t rlt_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!msg || (!msg->msg_iov && msg->msg_iovlen))
		return -EINVAL;
	OP_BEGIN(t, op, RLT_OP_RECVMSG, fd);
	op.u.msg.buf = msg;
	op.u.msg.len = 0;
	op.u.msg.flags = flags;
	return op_run(t, &op);
}

/* ---- multishot ops (io/ops.h) ---- */

unsigned rlt__op_policy_flags(rlt_task *t)
{
	return t->worker->loop.policy->flags;
}

bool rlt__op_rxq_multishot(rlt_task *t)
{
	return (t->worker->loop.policy->flags & RLT_POLICY_MULTISHOT_RECV) &&
	       t->worker->rt->settings.v[RLT__CFG_RXQ];
}

void rlt__op_submit_multi(rlt_task *t, rlt_op *op, rlt__op_sink *sink, rlt__worker **owner)
{
	rlt__worker *w = t->worker;
	*owner = w;
	op->task_ = sink;
	op->state_ = RLT__OP_MULTI;
	RLT__POL_SUBMIT(&w->loop, op);
}

void rlt__op_cancel_multi(rlt__worker *owner, rlt_op *op)
{
	owner->loop.policy->cancel(&owner->loop, op);
}

bool rlt__op_native(rlt_task *t, unsigned opcode)
{
	return (t->worker->loop.policy->native_ops & RLT_OP_BIT(opcode)) != 0;
}

ssize_t rlt__splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
		    unsigned flags)
{
	OP_BEGIN(t, op, RLT_OP_SPLICE, fd_out);
	op.u.splice.fd_in = fd_in;
	op.u.splice.off_in = off_in;
	op.u.splice.off_out = off_out;
	op.u.splice.len = (unsigned)clamp_len(len);
	op.u.splice.flags = flags;
	return op_run(t, &op);
}
