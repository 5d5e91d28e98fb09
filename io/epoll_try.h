/*
 * The epoll policy's non-blocking attempts (io/epoll_try.c): each tries an
 * operation once without blocking and returns its result, or NOT_YET when
 * it would block. The policy (io/policy_epoll.c) keeps the fd table and
 * decides when to try, park, retry and verify; the attempts know nothing of
 * it but the flags below, as libuv's stream.c knows nothing of linux.c's
 * poller.
 */
#ifndef RLT_IO_EPOLL_TRY_H
#define RLT_IO_EPOLL_TRY_H

#include "ringlet/policy.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/* What an attempt returns when the op would block: no result looks like it. */
#define NOT_YET INT_MIN

/* Flags in policy_data[2], above the low 2 bits (the policy's list). */
#define F_FCNTL	     4u	 /* read/write: no RWF_NOWAIT here, O_NONBLOCK around the call */
#define F_STREAM     8u	 /* read/write: a pipe or socket, the offset is ignored */
#define F_CONNECTING 16u /* connect: EINPROGRESS seen, the result is SO_ERROR */
#define F_WAITALL    32u /* recv/send: MSG_WAITALL on a stream, wait for all of it */

#define OP_FLAGS(op) ((uintptr_t)(op)->policy_data[2] & ~(uintptr_t)3u)

static inline void add_flags(rlt_op *op, uintptr_t f)
{
	op->policy_data[2] = (void *)((uintptr_t)op->policy_data[2] | f);
}

static inline bool rlt__ep_is_write(const rlt_op *op)
{
	return op->code == RLT_OP_WRITE || op->code == RLT_OP_WRITEV;
}

/* One attempt at op, of whatever kind: a result or NOT_YET. */
int rlt__ep_attempt(rlt_op *op);
/* A read or write done synchronously (regular files, block devices, fds
 * epoll refuses): always a result. */
int rlt__ep_rw_sync(rlt_op *op);
/* The attempts the policy also calls directly. */
int rlt__ep_msg_try(rlt_op *op);
int rlt__ep_connect_try(rlt_op *op);
int rlt__ep_mhdr_try(rlt_op *op);

#endif
