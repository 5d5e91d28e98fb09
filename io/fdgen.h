/*
 * Close generations: one counter per fd number, process-wide, bumped each
 * time ringlet closes that number (rlt_close under any loop, and ringlet's
 * own close(2) calls on fds a task may have waited on) and each time it
 * makes a new fd with that number (accept and open under the epoll policy,
 * the sockets of net.c, the pipes and pidfds of process.c): then only a
 * file both closed and made behind ringlet's back goes unseen.
 *
 * A readiness loop (the epoll policy) keeps an fd registered after its
 * waiters leave, and it trusts that registration on the next park instead
 * of re-arming it with a system call. A registration dies with the file,
 * and the number may come back as another file, possibly on another worker
 * than the one that closed it. Each loop notes the generation an fd had
 * when it registered it; a different one now means the number was closed
 * in between, so the registration is stale and must be made again.
 *
 * Reads are one acquire load, on the park path; bumps are on close paths.
 * Counters live in chunks allocated on first bump and kept for the life of
 * the process; numbers past RLT__FDGEN_MAX, or a chunk that could not be
 * allocated, report "unknown" (never trusted).
 */
#ifndef RLT_IO_FDGEN_H
#define RLT_IO_FDGEN_H

#include <stdbool.h>
#include <stdint.h>

#define RLT__FDGEN_MAX (1 << 20) /* Linux's default fs.nr_open */

/* The generation of fd, or RLT__FDGEN_UNKNOWN. */
#define RLT__FDGEN_UNKNOWN UINT32_MAX
uint32_t rlt__fdgen(int fd);

/* fd is being closed by ringlet: call before close(2). */
void rlt__fdgen_bump(int fd);

/* close(2) that bumps first: for ringlet's own closes outside a loop. */
int rlt__close_fd(int fd);

/* fd was just made by ringlet (accept, open, socket, pipe): any
 * registration of its number is of an older file, even one closed with a
 * plain close(2) ringlet never saw. Bumps (if fd >= 0) and returns fd. */
static inline int rlt__fd_new(int fd)
{
	if (fd >= 0)
		rlt__fdgen_bump(fd);
	return fd;
}

#endif
