#ifndef RINGLET_RXQ_H
#define RINGLET_RXQ_H

#include "common.h"

#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/*
 * Receive queues: the receive side of a connected stream socket, owned.
 *
 * Under a loop policy that can (RLT_POLICY_MULTISHOT_RECV: io_uring and
 * io_uring-sqpoll), one multishot receive stays armed in the kernel on the
 * worker the reading task ran on when it armed it: each chunk the peer
 * sends costs one completion and no submission, lands in a buffer the
 * worker provides, and is copied at once into the queue's byte FIFO, from
 * which rlt_rxq_recv copies into the caller's buffer (on any worker: the
 * reading task may move between workers while the receive stays armed
 * where it was). Up to 64 KiB wait in the queue; beyond that the receive
 * is stopped (the socket's buffer, then TCP's window, hold the rest) and
 * armed again once the reader has taken half. Elsewhere (epoll, fault,
 * policies without the flag) rlt_rxq_recv is rlt_recv, with the same
 * results.
 *
 * Why a queue rather than a flag on rlt_recv: an armed multishot receive
 * holds the socket's file in the kernel, so a plain close(2) would not end
 * the connection. Close the queue (rlt_rxq_close), then the socket.
 *
 * One reading task at a time; the queue itself may be handed between
 * tasks and workers between calls.
 */
typedef struct rlt_rxq rlt_rxq;

/*
 * A receive queue on fd (a connected stream socket; it stays the caller's:
 * closing the queue does not close it). Nothing is armed before the first
 * rlt_rxq_recv. From a task; does not suspend. Returns NULL with errno
 * EPERM (not called from a task), EBADF (fd < 0) or ENOMEM.
 */
RLT_API rlt_rxq *rlt_rxq_open(int fd);

/*
 * Up to len bytes of what the peer sent, in order, into buf. Bytes already
 * queued are returned at once; otherwise suspends the calling task until
 * some arrive, the stream ends or fails. From a task on any worker, one at
 * a time. A cancellation point like rlt_recv: a pending cancel or an
 * expired deadline scope is reported first, even with bytes queued, and
 * the task's I/O time limit (rlt_set_io_timeout) bounds each wait; bytes
 * are never lost to either (they wait for the next call). Returns the
 * count (> 0; 0 only for len 0), or:
 *   0            the peer closed its side, after every byte before it
 *   -ECANCELED   the task was cancelled
 *   -ETIMEDOUT   its deadline scope or I/O time limit passed
 *   -EBUSY       another task is in rlt_rxq_recv or rlt_rxq_close
 *   -EPERM       not called from a task
 *   -EINVAL      q is NULL, or buf is NULL with len > 0
 *   -ENOMEM      no memory for the queued bytes (the receive is stopped)
 *   what recv(2) says (-ECONNRESET, -EBADF, -ENOTCONN, ...), after the
 *   bytes that came before it; reported once, the next call receives again
 */
RLT_API ssize_t rlt_rxq_recv(rlt_rxq *q, void *buf, size_t len);

/*
 * Stop receiving and free q (its fd stays open: close it after). When a
 * receive is armed, waits (not cancellable) until the kernel has ended it:
 * then, and only then, may the fd be closed. Bytes still queued are
 * dropped. From a task when a receive is armed. Returns 0, -EBUSY (a task
 * is in rlt_rxq_recv: cancel it first; nothing changed) or -EPERM (armed,
 * and not called from a task; nothing changed). NULL: 0.
 */
RLT_API int rlt_rxq_close(rlt_rxq *q);

/*
 * Whether q receives through a multishot receive (the loop policy can,
 * and RINGLET_RXQ is not 0: tools/ringlet config), rather than one
 * rlt_recv per call. May turn false after the first receive if the loop
 * could not set up its buffers. Any thread; does not suspend. NULL: false.
 */
RLT_API bool rlt_rxq_multishot(const rlt_rxq *q);

RLT_EXTERN_C_END

#endif
