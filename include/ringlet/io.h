#ifndef RINGLET_IO_H
#define RINGLET_IO_H

#include "common.h"

#include <signal.h>
/* siginfo_t (rlt_waitid) is POSIX: <signal.h> declares it only with a
 * feature macro (_POSIX_C_SOURCE, _GNU_SOURCE...), which a strict C11
 * program (-std=c11) does not define. glibc keeps it in a header of its own
 * that needs none. */
#if defined(__has_include)
#if __has_include(<bits/types/siginfo_t.h>)
#include <bits/types/siginfo_t.h>
#endif
#endif
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

RLT_EXTERN_C_BEGIN

/*
 * I/O operations. Each one is handed to the calling worker's loop policy:
 * under io_uring (the default) it becomes an SQE, batched with the other
 * tasks' submissions into one io_uring_enter per loop turn; under epoll it
 * is tried at once without blocking and parked on the fd's readiness if it
 * would block (docs/POLICIES.md). Either way it suspends only the calling
 * task, and returns what the kernel returned: a byte count (or fd, or 0) on success, a negative
 * errno on failure (-EBADF, -ECONNREFUSED, -EAGAIN, ...). Buffers may live on the task's stack: the
 * task does not resume until the kernel is done with them.
 *
 * Every call returns -EPERM when made outside of a ringlet task, and
 * -EINVAL for an argument the kernel would reject before trying (a NULL
 * buffer with a non-zero length, a negative iovec count, ...).
 *
 * Every call is a cancellation point (include/ringlet/cancel.h): it returns
 * -ECANCELED when the task is cancelled before or while it waits (the
 * operation is then cancelled in the kernel and has not transferred
 * anything), and -ETIMEDOUT when a deadline scope of the task (or its I/O
 * timeout, rlt_set_io_timeout) expires first. An operation that completed
 * anyway returns its real result; the cancellation then comes at the next
 * suspension point. Under a deadline, an operation whose timer cannot be
 * armed (no memory to grow the worker's timer heap) fails with -ENOMEM
 * before it starts, as every timed wait does (rlt_sleep, timed joins).
 *
 * Lengths above 2 GiB - 4 KiB are clamped to it, like Linux read(2) does;
 * expect a short count.
 *
 * "offset" is a file offset; -1 means the file's current position (and
 * advances it), as for read(2)/write(2) on pipes and sockets.
 */

/* read(2)/pread(2). */
RLT_API ssize_t rlt_read(int fd, void *buf, size_t len, off_t offset);
/* write(2)/pwrite(2). */
RLT_API ssize_t rlt_write(int fd, const void *buf, size_t len, off_t offset);
/* preadv(2). iov must stay valid until the call returns (it may be on the stack). */
RLT_API ssize_t rlt_readv(int fd, const struct iovec *iov, int iovcnt, off_t offset);
/* pwritev(2). */
RLT_API ssize_t rlt_writev(int fd, const struct iovec *iov, int iovcnt, off_t offset);

/* openat(2): returns the new fd. Use AT_FDCWD for dfd. */
RLT_API int rlt_openat(int dfd, const char *path, int flags, mode_t mode);
/*
 * close(2). Other tasks waiting on fd in an I/O call (rlt_recv, rlt_send,
 * rlt_accept, rlt_connect, rlt_poll, rlt_read, ...), on any worker, are
 * woken first, the same under every loop policy: their operations are
 * cancelled in the kernel and return -EBADF (or their real result, if
 * they completed first), as if fd had been closed before they started.
 * When such waiters are on other workers the call suspends until each of
 * those workers has asked for their cancellation (microseconds); an
 * operation started while rlt_close runs is a race of the program's, as
 * with close(2). An rlt_acceptor's armed accept is not such a wait: close
 * the acceptor before its listener.
 */
RLT_API int rlt_close(int fd);
/* fsync(2); flags RLT_FSYNC_DATASYNC gives fdatasync(2). */
#define RLT_FSYNC_DATASYNC 1u
RLT_API int rlt_fsync(int fd, unsigned flags);
/* statx(2). */
struct statx;
RLT_API int rlt_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *out);

/* accept4(2): returns the new fd. addr/addrlen may be NULL. */
RLT_API int rlt_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
/* connect(2) on a socket created by the caller (blocking or not). */
RLT_API int rlt_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
/* recv(2). Returns 0 at end of stream. */
RLT_API ssize_t rlt_recv(int fd, void *buf, size_t len, int flags);
/*
 * rlt_recv for a socket that has most likely received nothing yet: a
 * server that has just answered a request and waits for the next one, a
 * client that has just sent one. The result is rlt_recv's, under every
 * policy; only the way there differs: io_uring waits for the socket to
 * be readable before it tries (IORING_RECVSEND_POLL_FIRST) instead of
 * trying, failing and then arming the wait; epoll already knows whether
 * the socket was drained. Where data is already there, it costs a poll
 * that finds it ready: use rlt_recv when unsure. A kernel whose io_uring
 * refuses the flag (before 5.19) makes the first call's recv fail with
 * -EINVAL: it is then done as rlt_recv, as is every later call. Suspends
 * the calling task like rlt_recv; any thread's task; same errors.
 */
RLT_API ssize_t rlt_recv_idle(int fd, void *buf, size_t len, int flags);
/* send(2). MSG_NOSIGNAL is always added: a closed peer gives -EPIPE, not SIGPIPE. */
RLT_API ssize_t rlt_send(int fd, const void *buf, size_t len, int flags);
/* sendmsg(2) (MSG_NOSIGNAL added, as for rlt_send) and recvmsg(2): for
 * datagrams with addresses (msg_name), ancillary data, scatter/gather.
 * msg and everything it points to must stay valid until the call returns
 * (they may be on the stack). recvmsg fills msg_namelen, msg_controllen
 * and msg_flags (MSG_TRUNC: the datagram was longer than the buffers).
 * -EINVAL for a NULL msg or a NULL msg_iov with a non-zero msg_iovlen. */
RLT_API ssize_t rlt_sendmsg(int fd, const struct msghdr *msg, int flags);
RLT_API ssize_t rlt_recvmsg(int fd, struct msghdr *msg, int flags);
/* shutdown(2); how is SHUT_RD, SHUT_WR or SHUT_RDWR. */
RLT_API int rlt_shutdown(int fd, int how);

/* Wait until fd is ready for the poll(2) events in mask (POLLIN, POLLOUT,
 * ...); returns the ready events (> 0) or a negative errno. For libraries
 * that hand you a socket to wait on. */
RLT_API int rlt_poll(int fd, unsigned mask);

/* waitid(2) as an operation: suspends the task until the child (idtype
 * P_PIDFD with a pidfd, or P_PID, ...) changes state as options asks
 * (WEXITED, ...; WNOHANG is -EINVAL: just call waitid(2)), and fills *info.
 * Returns 0, a negative errno, or -EOPNOTSUPP where the loop policy cannot
 * wait for children (epoll; io_uring before Linux 6.7 says -EINVAL): wait
 * for the pidfd to be readable with rlt_poll() then. rlt_process_wait()
 * does all that. */
RLT_API int rlt_waitid(int idtype, unsigned id, siginfo_t *info, int options);

/*
 * A time limit for each I/O operation the calling task starts from now on
 * (asyncio's wait_for around every await, or SO_RCVTIMEO for all calls):
 * an operation still waiting after timeout_ns is cancelled through the loop
 * policy and returns -ETIMEDOUT (or its real result, if it completed in the
 * meantime). 0 or a negative value removes the limit (the default). The
 * limit is the task's own: tasks it spawns start without one.
 * Returns 0, or -EPERM outside a task.
 *
 * A cancelled operation did not happen, with one exception the kernel
 * imposes: a regular-file read or write already running in a kernel worker
 * cannot be interrupted and completes normally.
 */
RLT_API int rlt_set_io_timeout(int64_t timeout_ns);
/* The calling task's I/O time limit in ns (0: none). */
RLT_API int64_t rlt_io_timeout(void);

/*
 * Stream helpers: loops over the calls above until the whole buffer has
 * moved, so callers need not handle short counts (a pipe or socket that
 * takes part of a write, a read that returns what has arrived so far, or
 * the "fault" policy's short transfers). Each may suspend the calling task
 * many times.
 *
 * They retry -EINTR at once, and -EAGAIN (an O_NONBLOCK fd, MSG_DONTWAIT)
 * after rlt_poll() says the fd is ready (POLLIN to read, POLLOUT to write).
 *
 * They return len; for the reading ones, fewer (possibly 0) only at end of
 * file or stream. Any other error is returned as a negative errno, even if
 * some bytes moved before it: a positive count short of len always means
 * EOF, never a hidden error. The bytes before the error are in buf (reads)
 * or were written (writes), but how many is not said: on a stream, treat
 * the connection as broken. A write that returns 0 for a non-empty buffer
 * (no progress) fails with -EIO.
 *
 * Errors: those of the underlying call (-EBADF, -EPIPE, -ECONNRESET, ...),
 * -EINVAL for a NULL buffer with len > 0, len > SSIZE_MAX, or MSG_PEEK in
 * rlt_recv_exact's flags, and -EPERM outside a task. len 0 returns 0 at
 * once, without a system call.
 */

/* rlt_read() until len bytes or EOF. offset -1 reads at the file's current
 * position (pipes, sockets); otherwise from offset on, advancing it. */
RLT_API ssize_t rlt_read_full(int fd, void *buf, size_t len, off_t offset);
/* rlt_write() until all len bytes are written; offset as for rlt_read_full. */
RLT_API ssize_t rlt_write_all(int fd, const void *buf, size_t len, off_t offset);
/* rlt_recv() until len bytes or the peer's end of stream. */
RLT_API ssize_t rlt_recv_exact(int fd, void *buf, size_t len, int flags);
/* rlt_send() until all len bytes are sent. */
RLT_API ssize_t rlt_send_all(int fd, const void *buf, size_t len, int flags);

/*
 * Send up to len bytes of the file in_fd, from offset on, to out_fd (a
 * socket, TCP or Unix, or a pipe) without copying them through the task:
 * sendfile(2), as a server hands a file to a client. Suspends only the
 * calling task, as often as it takes, until all of it has gone (like
 * rlt_send_all). offset -1 starts at in_fd's current position and
 * advances it; otherwise the position is neither used nor changed.
 *
 * How, per loop policy: io_uring and io_uring-sqpoll splice the file into
 * a pipe and the pipe into out_fd (IORING_OP_SPLICE, run by the kernel's
 * io-wq threads; the pipe is the worker's, 1 MiB, reused); epoll and
 * policies without RLT_OP_SPLICE call sendfile(2) with out_fd made
 * non-blocking for each call, and wait for it with rlt_poll(POLLOUT), the
 * file being read synchronously (the page cache, or the disk) as for every
 * regular-file read under epoll.
 *
 * Returns the bytes sent: len, or fewer only when the file ends first (its
 * size when the call starts; 0 when offset is at or past it). An error is
 * returned as a negative errno even if some bytes were sent before it (how
 * many is not said: treat the connection as broken), as for the stream
 * helpers above. Errors: -EBADF, -EINVAL (in_fd not a regular file or a
 * block device, offset < -1, len > SSIZE_MAX), -EPIPE / -ECONNRESET (the
 * peer went away), -ECANCELED, -ETIMEDOUT (a deadline scope, the I/O
 * timeout: each splice or wait is one operation), -EPERM outside a task,
 * -ENFILE / -EMFILE (no pipe could be made).
 */
RLT_API ssize_t rlt_sendfile(int out_fd, int in_fd, off_t offset, size_t len);

RLT_EXTERN_C_END

#endif
