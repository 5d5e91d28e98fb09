/* The I/O operations: prepare one SQE, suspend until its CQE. */
#include "ringlet/io.h"

#include "io/uring.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/stat.h>
#include <poll.h>

/* Linux's MAX_RW_COUNT: larger transfers are clamped (and come back short). */
#define RLT_MAX_RW ((size_t)INT_MAX & ~(size_t)4095)

static inline size_t clamp_len(size_t len) { return len > RLT_MAX_RW ? RLT_MAX_RW : len; }

/* Begin an operation: the calling task and a fresh SQE on its worker. */
#define OP_BEGIN(t, sqe)                                                                           \
	rlt_task *t = rlt__task_self();                                                            \
	if (!t)                                                                                    \
		return -EPERM;                                                                     \
	struct io_uring_sqe *sqe = rlt__io_sqe(t->worker)

/* Submit (lazily: the loop batches all SQEs of a turn) and wait. */
static inline int op_wait(rlt_task *t, struct io_uring_sqe *sqe)
{
	rlt__op op = {.task = t, .res = 0};
	io_uring_sqe_set_data(sqe, &op);
	t->worker->inflight++;
	rlt__task_suspend(t);
	return op.res;
}

ssize_t rlt_read(int fd, void *buf, size_t len, off_t offset)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_read(sqe, fd, buf, (unsigned)clamp_len(len), (__u64)offset);
	return op_wait(t, sqe);
}

ssize_t rlt_write(int fd, const void *buf, size_t len, off_t offset)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_write(sqe, fd, buf, (unsigned)clamp_len(len), (__u64)offset);
	return op_wait(t, sqe);
}

ssize_t rlt_readv(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if ((!iov && iovcnt) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, (__u64)offset);
	return op_wait(t, sqe);
}

ssize_t rlt_writev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
	if ((!iov && iovcnt) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, (__u64)offset);
	return op_wait(t, sqe);
}

int rlt_openat(int dfd, const char *path, int flags, mode_t mode)
{
	if (!path)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_openat(sqe, dfd, path, flags, mode);
	return op_wait(t, sqe);
}

int rlt_close(int fd)
{
	OP_BEGIN(t, sqe);
	io_uring_prep_close(sqe, fd);
	return op_wait(t, sqe);
}

int rlt_fsync(int fd, unsigned flags)
{
	if (flags & ~RLT_FSYNC_DATASYNC)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_fsync(sqe, fd, (flags & RLT_FSYNC_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
	return op_wait(t, sqe);
}

int rlt_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *out)
{
	if (!path || !out)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_statx(sqe, dfd, path, flags, mask, out);
	return op_wait(t, sqe);
}

int rlt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	if (addr && !addrlen)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
	return op_wait(t, sqe);
}

int rlt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	if (!addr)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_connect(sqe, fd, addr, addrlen);
	return op_wait(t, sqe);
}

ssize_t rlt_recv(int fd, void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_recv(sqe, fd, buf, clamp_len(len), flags);
	return op_wait(t, sqe);
}

ssize_t rlt_send(int fd, const void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_send(sqe, fd, buf, clamp_len(len), flags | MSG_NOSIGNAL);
	return op_wait(t, sqe);
}

int rlt_shutdown(int fd, int how)
{
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	OP_BEGIN(t, sqe);
	io_uring_prep_shutdown(sqe, fd, how);
	return op_wait(t, sqe);
}

int rlt_poll(int fd, unsigned mask)
{
	OP_BEGIN(t, sqe);
	io_uring_prep_poll_add(sqe, fd, mask);
	return op_wait(t, sqe);
}
