/*
 * Who waits on an fd: per worker, the I/O operations its tasks are
 * suspended in, listed by fd, so that rlt_close() can end the waits of
 * other tasks on the fd it closes (on every worker, under every policy)
 * instead of leaving them to the kernel, which holds the file open for an
 * operation in flight (io_uring) or is not told at all (epoll on another
 * worker).
 *
 * A worker's table is written only by its own thread: an op is linked when
 * its task suspends in it (io/ops.c) and unlinked when it completes
 * (rlt__op_complete, on that same thread by the policy contract). Other
 * threads only ask whether a list is empty (one acquire load for the chunk,
 * one relaxed load for the head): a closer that sees a list posts a message
 * to the owner, which walks it on its own thread. An op that starts waiting
 * while rlt_close() runs may be missed: using an fd while another task
 * closes it is a race in the program, as with close(2). The heads and
 * chunk pointers are plain pointers accessed with __atomic builtins where
 * another thread may read them (rlt_op, a public type, has no _Atomic).
 *
 * Cost, counted by bench/hotpath.sh (callgrind): a read that suspends went
 * from 497.6 to 523.6 instructions (link and unlink, plain loads and
 * stores on the worker's own lines); one that completes at once pays
 * nothing; rlt_close pays one load per worker when nobody waits.
 *
 * Heads live in chunks of RLT__FDWAIT_CHUNK fds, allocated when a wait on
 * an fd of the chunk first happens and kept until the worker ends. fds
 * beyond RLT__FDWAIT_MAX (Linux's default fs.nr_open), or a chunk that
 * could not be allocated, go unlisted: a close does not end their waits.
 */
#ifndef RLT_IO_FDWAIT_H
#define RLT_IO_FDWAIT_H

#include "ringlet/policy.h"

#include <stdbool.h>

#define RLT__FDWAIT_CHUNK 4096
#define RLT__FDWAIT_MAX	  (1 << 20)

typedef struct rlt__fdwait {
	rlt_op **chunk[RLT__FDWAIT_MAX / RLT__FDWAIT_CHUNK];
} rlt__fdwait;

/* (owner) The slow side of rlt__fdwait_link: op's chunk does not exist. */
void rlt__fdwait_link_new_chunk(rlt__fdwait *tab, rlt_op *op);

/* (owner) List op, whose task is about to suspend in it, under op->fd.
 * Inlined into the I/O path: a handful of loads and stores. */
static inline void rlt__fdwait_link(rlt__fdwait *tab, rlt_op *op)
{
	unsigned fd = (unsigned)op->fd; /* a negative fd is out of range too */
	op->fdpprev_ = NULL;
	if (fd >= RLT__FDWAIT_MAX)
		return;
	rlt_op **c = tab->chunk[fd / RLT__FDWAIT_CHUNK];
	if (__builtin_expect(!c, 0)) {
		rlt__fdwait_link_new_chunk(tab, op);
		return;
	}
	rlt_op **head = &c[fd % RLT__FDWAIT_CHUNK];
	rlt_op *first = *head;
	op->fdnext_ = first;
	op->fdpprev_ = head;
	if (first)
		first->fdpprev_ = &op->fdnext_;
	__atomic_store_n(head, op, __ATOMIC_RELAXED); /* read by closers elsewhere */
}

/* (owner) op completed: take it off its list, if it is on one. Inlined
 * into completion: one test when it is not. An hlist: fdpprev_ points at
 * whatever points at op (the head, or the previous op's fdnext_). */
static inline void rlt__fdwait_unlink(rlt_op *op)
{
	rlt_op **pprev = (rlt_op **)op->fdpprev_;
	if (!pprev)
		return;
	rlt_op *next = (rlt_op *)op->fdnext_;
	__atomic_store_n(pprev, next, __ATOMIC_RELAXED); /* maybe a head: read elsewhere */
	if (next)
		next->fdpprev_ = pprev;
	op->fdpprev_ = NULL;
}

/* (any thread) Whether some op of tab's worker may wait on fd. */
bool rlt__fdwait_any(rlt__fdwait *tab, int fd);

/* (owner) The first op waiting on fd, or NULL; then op->fdnext_. */
rlt_op *rlt__fdwait_first(rlt__fdwait *tab, int fd);

/* Free the chunks (the worker has ended; nothing waits). */
void rlt__fdwait_free(rlt__fdwait *tab);

#endif
