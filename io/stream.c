/* The stream helpers: rlt_read_full, rlt_write_all, rlt_recv_exact,
 * rlt_send_all. One loop, parameterised by the call it repeats. */
#include "ringlet/io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

enum kind { K_READ, K_WRITE, K_RECV, K_SEND };

static inline ssize_t once(enum kind k, int fd, unsigned char *p, size_t len, off_t off, int flags)
{
	switch (k) {
	case K_READ:
		return rlt_read(fd, p, len, off);
	case K_WRITE:
		return rlt_write(fd, p, len, off);
	case K_RECV:
		return rlt_recv(fd, p, len, flags);
	case K_SEND:
		break;
	}
	return rlt_send(fd, p, len, flags);
}

static ssize_t transfer(enum kind k, int fd, unsigned char *buf, size_t len, off_t off, int flags)
{
	bool reading = k == K_READ || k == K_RECV;
	/* MSG_PEEK would read the same bytes again and again. */
	if ((!buf && len) || len > SSIZE_MAX || (k == K_RECV && (flags & MSG_PEEK)))
		return -EINVAL;
	size_t done = 0;
	while (done < len) {
		ssize_t n = once(k, fd, buf + done, len - done, off, flags);
		if (n > 0) {
			done += (size_t)n;
			if (off >= 0)
				off += n;
			continue;
		}
		if (n == 0)
			/* EOF for a read; a write that made no progress would loop
			 * for ever. */
			return reading ? (ssize_t)done : -EIO;
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN)
			return n;
		/* Not ready (O_NONBLOCK, MSG_DONTWAIT): wait until it is. A poll
		 * error other than an interruption is the answer; readiness
		 * with POLLERR/POLLHUP is left to the next call to report. */
		int ev = rlt_poll(fd, reading ? POLLIN : POLLOUT);
		if (ev < 0 && ev != -EINTR && ev != -EAGAIN)
			return ev;
	}
	return (ssize_t)done;
}

ssize_t rlt_read_full(int fd, void *buf, size_t len, off_t offset)
{
	return transfer(K_READ, fd, buf, len, offset, 0);
}

ssize_t rlt_write_all(int fd, const void *buf, size_t len, off_t offset)
{
	return transfer(K_WRITE, fd, (unsigned char *)buf, len, offset, 0);
}

ssize_t rlt_recv_exact(int fd, void *buf, size_t len, int flags)
{
	return transfer(K_RECV, fd, buf, len, -1, flags);
}

ssize_t rlt_send_all(int fd, const void *buf, size_t len, int flags)
{
	return transfer(K_SEND, fd, (unsigned char *)buf, len, -1, flags);
}
