/*
 * Socket system calls for the policies' hot paths, without libc's
 * cancellation wrapper.
 *
 * glibc's send/recv/sendmsg/recvmsg are cancellation points: in a
 * multi-threaded process each call turns asynchronous cancellation on
 * and off around the system call (two atomic read-modify-writes on the
 * thread's cancel state). ringlet's workers are never cancelled with
 * pthread_cancel, so the policies make the system call itself. Under
 * ASan and TSan they keep libc's calls: the sanitizers' interceptors
 * check the buffers and (TSan) order the threads on either end of a
 * socket.
 *
 * Each returns what the libc call would: the count, or -1 with errno set.
 */
#ifndef RLT_IO_SYS_H
#define RLT_IO_SYS_H

#include "runtime/coro.h" /* RLT_ASAN, RLT_TSAN */

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(RLT_ASAN) || defined(RLT_TSAN)
#define RLT__SYS_VIA_LIBC 1
#endif

static inline ssize_t rlt__sys_send(int fd, const void *buf, size_t len, int flags)
{
#ifdef RLT__SYS_VIA_LIBC
	return send(fd, buf, len, flags);
#else
	return (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
#endif
}

static inline ssize_t rlt__sys_recv(int fd, void *buf, size_t len, int flags)
{
#ifdef RLT__SYS_VIA_LIBC
	return recv(fd, buf, len, flags);
#else
	return (ssize_t)syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
#endif
}

static inline ssize_t rlt__sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
#ifdef RLT__SYS_VIA_LIBC
	return sendmsg(fd, m, flags);
#else
	return (ssize_t)syscall(SYS_sendmsg, fd, m, flags);
#endif
}

static inline ssize_t rlt__sys_recvmsg(int fd, struct msghdr *m, int flags)
{
#ifdef RLT__SYS_VIA_LIBC
	return recvmsg(fd, m, flags);
#else
	return (ssize_t)syscall(SYS_recvmsg, fd, m, flags);
#endif
}

#endif
