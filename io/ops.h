/* The operations layer's internal calls, for the other io/ files. */
#ifndef RLT_IO_OPS_H
#define RLT_IO_OPS_H

#include <stdint.h>
#include <sys/types.h>

/* RLT_OP_SPLICE (include/ringlet/policy.h) from the calling task: splice(2)
 * of at most len bytes from fd_in to fd_out, offsets -1 for "the fd's
 * position" (always for a pipe). The same contract as the io.h calls:
 * suspends the task, -EPERM outside one, -ECANCELED / -ETIMEDOUT;
 * -EOPNOTSUPP where the policy cannot splice without blocking (epoll). */
ssize_t rlt__splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out, size_t len,
		    unsigned flags);

#endif
