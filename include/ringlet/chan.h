#ifndef RINGLET_CHAN_H
#define RINGLET_CHAN_H

#include "common.h"

RLT_EXTERN_C_BEGIN

/*
 * A channel is a bounded FIFO of `void *` values between tasks, with any
 * number of senders and receivers: asyncio.Queue (with close) or Go's chan.
 * The `async for` loop over a channel is
 *
 *     void *v;
 *     while (rlt_chan_recv(ch, &v) == 0)
 *             use(v);               // ends with -EPIPE: closed and drained
 *
 * Capacity: up to `capacity` values wait in the channel. Capacity 0 makes a
 * rendezvous channel: a send completes only when a receiver takes the value.
 * Values are delivered in the order they were sent (one sender's values in
 * its order; waiting senders and receivers are served first come, first
 * served), each exactly once, also when timeouts race the hand-off.
 *
 * Close: rlt_chan_close() stops further sends. Receivers still get every
 * value that was in the channel, then -EPIPE. Senders blocked at close get
 * -EPIPE: their values were not sent and still belong to them.
 *
 * Threads: every call may be made from any task on any worker. The calls
 * that never suspend (try_send, try_recv, close, len, cap) may also be made
 * from threads that are not ringlet workers, so a plain thread can feed a
 * channel (or drain one) while tasks wait on the other side.
 *
 * Cancellation: a send or receive that waits returns -ECANCELED when the
 * task is cancelled and -ETIMEDOUT when its deadline scope expires
 * (include/ringlet/cancel.h); the value was then neither sent nor taken.
 *
 * Lifetime: the creator owns the channel and frees it with rlt_chan_free()
 * once no task or thread can still be inside a call on it (typically: after
 * joining the tasks that used it). The channel does not own the values:
 * values still in it when it is freed are dropped without a look.
 */

typedef struct rlt_chan rlt_chan;

/* A new, open, empty channel holding up to capacity values (0: rendezvous).
 * Does not suspend; any thread. Returns NULL with errno ENOMEM (no memory,
 * or a capacity too large to allocate). */
RLT_API rlt_chan *rlt_chan_new(size_t capacity);

/*
 * Free ch. Does not suspend. Returns 0, or -EBUSY (a task is waiting in a
 * send or a receive: nothing is freed). NULL is ignored (returns 0).
 * Calls that are still running on ch when it is freed are a bug that
 * -EBUSY cannot always catch (see Lifetime above).
 */
RLT_API int rlt_chan_free(rlt_chan *ch);

/*
 * Send v: hand it to a waiting receiver, or put it in the buffer, or
 * suspend until one of those is possible. Suspends (only while the channel
 * is full; a send to a waiting receiver runs the receiver next on the same
 * worker). Returns 0, or:
 *   -EPIPE   the channel is closed (or was closed while we waited): v was
 *            not sent
 *   -EPERM   not called from a task
 *   -EINVAL  ch is NULL
 */
RLT_API int rlt_chan_send(rlt_chan *ch, void *v);

/* rlt_chan_send(), waiting at most timeout_ns (negative: forever; 0: only
 * if it completes at once). Also returns -ETIMEDOUT (v was not sent) or
 * -ENOMEM (a timeout was given and the timer heap could not grow). */
RLT_API int rlt_chan_send_timeout(rlt_chan *ch, void *v, int64_t timeout_ns);

/* Send v only if that needs no wait: a receiver is waiting or the buffer
 * has room. Never suspends; any thread. Returns 0, -EAGAIN (full; for
 * capacity 0: no receiver waiting), -EPIPE (closed) or -EINVAL. */
RLT_API int rlt_chan_try_send(rlt_chan *ch, void *v);

/*
 * Receive the oldest value into *v: from the buffer, or from a waiting
 * sender, or suspend until one arrives. Values sent before the close are
 * still delivered after it. Suspends (only while the channel is empty).
 * Returns 0, or:
 *   -EPIPE   the channel is closed and drained: nothing more will come
 *   -EPERM   not called from a task
 *   -EINVAL  ch or v is NULL
 * *v is written only on success.
 */
RLT_API int rlt_chan_recv(rlt_chan *ch, void **v);

/* rlt_chan_recv(), waiting at most timeout_ns (negative: forever; 0: only
 * if a value is there). Also returns -ETIMEDOUT (nothing was taken) or
 * -ENOMEM (a timeout was given and the timer heap could not grow). */
RLT_API int rlt_chan_recv_timeout(rlt_chan *ch, void **v, int64_t timeout_ns);

/* Receive only if a value is there (buffered, or a sender waiting). Never
 * suspends; any thread. Returns 0, -EAGAIN (empty), -EPIPE (closed and
 * drained) or -EINVAL. */
RLT_API int rlt_chan_try_recv(rlt_chan *ch, void **v);

/* Close ch: later sends fail with -EPIPE; every waiting sender is woken with
 * -EPIPE and every waiting receiver with -EPIPE (a receiver waits only when
 * nothing is buffered). Never suspends; any thread. Returns 0, -EALREADY
 * (already closed: nothing changes) or -EINVAL. */
RLT_API int rlt_chan_close(rlt_chan *ch);

/* True once rlt_chan_close() was called (values may still be buffered).
 * Any thread. */
RLT_API bool rlt_chan_closed(rlt_chan *ch);

/* Values buffered now (a snapshot: 0 for capacity 0, whose values pass
 * straight from sender to receiver). Any thread; 0 for NULL. */
RLT_API size_t rlt_chan_len(rlt_chan *ch);

/* The capacity given to rlt_chan_new(); 0 for NULL. */
RLT_API size_t rlt_chan_cap(const rlt_chan *ch);

RLT_EXTERN_C_END

#endif
