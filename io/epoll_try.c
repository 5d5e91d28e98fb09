/*
 * The epoll policy's non-blocking attempts (io/epoll_try.h): one try of an
 * operation, through the system call io_uring would have made, without
 * blocking.
 */
#include "io/epoll_try.h"
#include "io/fdgen.h"
#include "io/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- O_NONBLOCK for the length of one call ----
 *
 * O_NONBLOCK belongs to the open file description, which every worker
 * shares: two workers trying an accept on one blocking listener at once
 * used to race. A read F_GETFL (blocking), set O_NONBLOCK, tried; B read
 * F_GETFL (non-blocking: A's), so would restore nothing; A restored
 * blocking; B's accept4 then blocked its worker until a connection came,
 * for ever at the end of a run (test_io_socket's 200 pairs under the epoll
 * policy hung so, ~1 run in 400 with faults injected, at shutdown).
 *
 * So the fds made non-blocking here are counted, under a mutex: the first
 * user sets O_NONBLOCK, later ones borrow it, the last restores the flags.
 * An fd that is non-blocking of its own (ringlet's usual case) takes the
 * fast path, one F_GETFL as before, once it is sure that no toggle of ours
 * was active meanwhile (nb_active, nb_epoch); otherwise the lock decides. */

typedef struct nb_ent {
	int fd;
	int fl; /* the flags to restore */
	unsigned users;
} nb_ent;

static pthread_mutex_t nb_lock = PTHREAD_MUTEX_INITIALIZER;
static nb_ent *nb_tab; /* under nb_lock; at most one entry per thread at a time */
static unsigned nb_len, nb_cap;
static atomic_uint nb_active; /* nb_len, readable without the lock */
static atomic_uint nb_epoch;  /* bumped by every toggle and restore */

static nb_ent *nb_find(int fd)
{
	for (unsigned i = 0; i < nb_len; i++)
		if (nb_tab[i].fd == fd)
			return &nb_tab[i];
	return NULL;
}

/* Returns the flags to hand to nb_end, or a negative errno. */
static int nb_begin(int fd)
{
	unsigned e = atomic_load_explicit(&nb_epoch, memory_order_seq_cst);
	unsigned act = atomic_load_explicit(&nb_active, memory_order_seq_cst);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	/* Non-blocking, and no toggle of ours began or ended meanwhile: the
	 * fd's own flag. */
	if ((fl & O_NONBLOCK) && act == 0 &&
	    atomic_load_explicit(&nb_epoch, memory_order_seq_cst) == e)
		return fl;
	pthread_mutex_lock(&nb_lock);
	nb_ent *ent = nb_find(fd);
	if (ent) {
		ent->users++; /* another thread's toggle: borrowed */
		fl = ent->fl;
		pthread_mutex_unlock(&nb_lock);
		return fl;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_NONBLOCK)) {
		int rc = fl < 0 ? -errno : fl;
		pthread_mutex_unlock(&nb_lock);
		return rc;
	}
	if (nb_len == nb_cap) {
		unsigned cap = nb_cap ? nb_cap * 2 : 16;
		nb_ent *t = realloc(nb_tab, cap * sizeof(*t));
		if (!t) {
			pthread_mutex_unlock(&nb_lock);
			return -ENOMEM;
		}
		nb_tab = t;
		nb_cap = cap;
	}
	/* Counted before the flag changes: a fast path that sees our
	 * O_NONBLOCK (the kernel orders the two fcntl calls) sees the count. */
	nb_tab[nb_len++] = (nb_ent){.fd = fd, .fl = fl, .users = 1};
	atomic_store_explicit(&nb_active, nb_len, memory_order_seq_cst);
	atomic_fetch_add_explicit(&nb_epoch, 1, memory_order_seq_cst);
	if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int rc = -errno;
		nb_len--;
		atomic_store_explicit(&nb_active, nb_len, memory_order_seq_cst);
		pthread_mutex_unlock(&nb_lock);
		return rc;
	}
	pthread_mutex_unlock(&nb_lock);
	return fl;
}

static void nb_end(int fd, int fl)
{
	if (fl & O_NONBLOCK)
		return; /* the fd's own flag: nothing was changed */
	int saved = errno;
	pthread_mutex_lock(&nb_lock);
	nb_ent *ent = nb_find(fd);
	if (ent && --ent->users == 0) {
		/* Restored, then uncounted: a fast path that still saw our
		 * O_NONBLOCK saw the count (or sees the epoch move). */
		atomic_fetch_add_explicit(&nb_epoch, 1, memory_order_seq_cst);
		fcntl(fd, F_SETFL, ent->fl);
		*ent = nb_tab[--nb_len];
		atomic_store_explicit(&nb_active, nb_len, memory_order_seq_cst);
	}
	pthread_mutex_unlock(&nb_lock);
	errno = saved;
}

/* ---- the attempts: a result, or NOT_YET ---- */

static inline int neg(ssize_t n)
{
	return n >= 0 ? (int)n : -errno;
}

/* A non-blocking call's result: EAGAIN means wait. */
static inline int nb_res(ssize_t n)
{
	if (n >= 0)
		return (int)n;
	return errno == EAGAIN ? NOT_YET : -errno;
}

/* The op's buffers as an iovec array (one, on the caller's stack, for
 * read/write). */
static inline const struct iovec *op_iov(rlt_op *op, struct iovec *one, int *cnt, off_t *off)
{
	if (op->code == RLT_OP_READ || op->code == RLT_OP_WRITE) {
		one->iov_base = op->u.rw.buf;
		one->iov_len = op->u.rw.len;
		*cnt = 1;
		*off = (off_t)op->u.rw.off;
		return one;
	}
	*cnt = op->u.vec.iovcnt;
	*off = (off_t)op->u.vec.off;
	return op->u.vec.iov;
}

/* A read or write that may block: regular files, or fds epoll refuses. */
int rlt__ep_rw_sync(rlt_op *op)
{
	struct iovec one;
	int cnt;
	off_t off;
	const struct iovec *iov = op_iov(op, &one, &cnt, &off);
	if (OP_FLAGS(op) & F_STREAM)
		off = -1;
	ssize_t n;
	do
		n = rlt__ep_is_write(op) ? pwritev2(op->fd, iov, cnt, off, 0)
					 : preadv2(op->fd, iov, cnt, off, 0);
	while (n < 0 && errno == EINTR);
	return neg(n);
}

static int rw_try(rlt_op *op)
{
	struct iovec one;
	int cnt;
	off_t off;
	const struct iovec *iov = op_iov(op, &one, &cnt, &off);
	uintptr_t f = OP_FLAGS(op);
	if (f & F_STREAM)
		off = -1;
	bool wr = rlt__ep_is_write(op);
	ssize_t n;
	if (!(f & F_FCNTL)) {
		n = wr ? pwritev2(op->fd, iov, cnt, off, RWF_NOWAIT)
		       : preadv2(op->fd, iov, cnt, off, RWF_NOWAIT);
		if (n >= 0 || errno != EOPNOTSUPP)
			return nb_res(n);
		/* This file (or kernel) knows no RWF_NOWAIT: remember. */
		add_flags(op, F_FCNTL);
	}
	int fl = nb_begin(op->fd);
	if (fl < 0)
		return fl;
	n = wr ? pwritev2(op->fd, iov, cnt, off, 0) : preadv2(op->fd, iov, cnt, off, 0);
	nb_end(op->fd, fl);
	return nb_res(n);
}

/* recv/send. MSG_WAITALL on a stream socket: keep going until all of it,
 * like io_uring, which returns what it has on an error or end of stream.
 * A caller's own MSG_DONTWAIT gets -EAGAIN, never a wait. */
int rlt__ep_msg_try(rlt_op *op)
{
	size_t done = (size_t)(uintptr_t)op->policy_data[3];
	int flags = op->u.msg.flags | MSG_DONTWAIT;
	for (;;) {
		char *buf = (char *)op->u.msg.buf + done;
		size_t len = op->u.msg.len - done;
		ssize_t n = op->code == RLT_OP_RECV ? rlt__sys_recv(op->fd, buf, len, flags)
						    : rlt__sys_send(op->fd, buf, len, flags);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !(op->u.msg.flags & MSG_DONTWAIT)) {
				op->policy_data[3] = (void *)(uintptr_t)done;
				return NOT_YET;
			}
			return done ? (int)done : -errno;
		}
		done += (size_t)n;
		if (!(OP_FLAGS(op) & F_WAITALL) || n == 0 || done == op->u.msg.len)
			return (int)done;
	}
}

static int accept_try(rlt_op *op)
{
	int fl = nb_begin(op->fd);
	if (fl < 0)
		return fl;
	int fd = rlt__fd_new(
	    accept4(op->fd, op->u.accept.addr, op->u.accept.addrlen, op->u.accept.flags));
	nb_end(op->fd, fl);
	return nb_res(fd);
}

/* A look at fd's readiness without waiting: the ready events (> 0),
 * NOT_YET, or -EBADF / another negative errno. */
static int poll_now(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r = poll(&p, 1, 0);
	if (r < 0)
		return errno == EINTR ? NOT_YET : -errno;
	if (r == 0)
		return NOT_YET;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return (unsigned short)p.revents;
}

/* The first call starts the connection; once it is in progress, the
 * socket's writability says it is over, and SO_ERROR how it went. */
int rlt__ep_connect_try(rlt_op *op)
{
	if (OP_FLAGS(op) & F_CONNECTING) {
		int r = poll_now(op->fd, POLLOUT);
		if (r < 0) /* NOT_YET, or an error */
			return r;
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
	int fl = nb_begin(op->fd);
	if (fl < 0)
		return fl;
	int rc = connect(op->fd, op->u.connect.addr, op->u.connect.addrlen);
	nb_end(op->fd, fl);
	if (rc == 0)
		return 0;
	if (errno == EINPROGRESS) {
		add_flags(op, F_CONNECTING);
		return NOT_YET;
	}
	/* EAGAIN (a Unix listener's backlog is full) is the answer, as for a
	 * non-blocking connect: nothing would wake a waiter when it drains. */
	return -errno;
}

static int poll_try(rlt_op *op)
{
	return poll_now(op->fd, (short)op->u.poll.events);
}

/* sendmsg/recvmsg: one attempt (they carry datagrams, mostly; MSG_WAITALL
 * is not looped on, unlike recv/send). A caller's MSG_DONTWAIT gets
 * -EAGAIN, never a wait. */
int rlt__ep_mhdr_try(rlt_op *op)
{
	struct msghdr *m = op->u.msg.buf;
	int flags = op->u.msg.flags | MSG_DONTWAIT;
	ssize_t n;
	do
		n = op->code == RLT_OP_RECVMSG ? rlt__sys_recvmsg(op->fd, m, flags)
					       : rlt__sys_sendmsg(op->fd, m, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN && !(op->u.msg.flags & MSG_DONTWAIT))
		return NOT_YET;
	return neg(n);
}

/* One non-blocking attempt of a parkable op. */
int rlt__ep_attempt(rlt_op *op)
{
	switch ((rlt_opcode)op->code) {
	case RLT_OP_READ:
	case RLT_OP_WRITE:
	case RLT_OP_READV:
	case RLT_OP_WRITEV:
		return rw_try(op);
	case RLT_OP_RECV:
	case RLT_OP_SEND:
		return rlt__ep_msg_try(op);
	case RLT_OP_ACCEPT:
		return accept_try(op);
	case RLT_OP_CONNECT:
		return rlt__ep_connect_try(op);
	case RLT_OP_POLL:
		return poll_try(op);
	case RLT_OP_SENDMSG:
	case RLT_OP_RECVMSG:
		return rlt__ep_mhdr_try(op);
	default:
		return -EINVAL;
	}
}
