#ifndef RINGLET_FUTURE_H
#define RINGLET_FUTURE_H

#include "common.h"

RLT_EXTERN_C_BEGIN

/*
 * A future is a one-shot value: one side sets it (a result or an error),
 * one task awaits it. asyncio's Future, for one awaiter at a time.
 *
 * Threads: rlt_future_set()/rlt_future_fail() may be called from any task
 * on any worker and from any thread, including threads that are not ringlet
 * workers; the awaiting task is woken on its own worker exactly once.
 *
 * Lifetime: a future is reference counted. rlt_future_new() returns one
 * reference; give each party that may still touch the future its own with
 * rlt_future_retain(), and have each drop it with rlt_future_release().
 * (Typical use: the creator awaits and releases, the setter gets a retained
 * reference and releases it after setting. Then an await that times out
 * never leaves the late setter with a dangling pointer.)
 */

/* A new, unset future holding one reference, or NULL with errno ENOMEM.
 * May be called from any thread. */
RLT_API rlt_future *rlt_future_new(void);

/* Take another reference. Returns f. */
RLT_API rlt_future *rlt_future_retain(rlt_future *f);

/* Drop a reference; the last one frees the future. NULL is ignored.
 * Freeing a future while a task awaits it is a bug (it aborts). */
RLT_API void rlt_future_release(rlt_future *f);

/* Complete the future with a value. Never suspends.
 * Returns 0, -EINVAL (f is NULL) or -EALREADY (already completed). */
RLT_API int rlt_future_set(rlt_future *f, void *value);

/*
 * Complete the future with an error, a negative errno as everywhere in
 * ringlet (as rlt_fail takes): rlt_future_fail(f, -ECONNRESET) makes the
 * awaiter's rlt_future_await() return -ECONNRESET. Never suspends.
 * Deprecated, for this release only: a positive errno (the convention of
 * ringlet 0.1.0) is taken as its negative, so rlt_future_fail(f, EIO) still
 * fails f with -EIO.
 * Returns 0, -EINVAL (f NULL or err 0) or -EALREADY (already completed).
 */
RLT_API int rlt_future_fail(rlt_future *f, int err);

/* True once set or failed. */
RLT_API bool rlt_future_done(const rlt_future *f);

/*
 * Wait until f is completed, at most timeout_ns nanoseconds (a negative
 * timeout waits forever; 0 only checks). On success stores the value in
 * *value (if value is not NULL) and returns 0. Suspends.
 * Returns -err for a future failed with err, or:
 *   -ETIMEDOUT  the timeout passed first, or a deadline scope of the task
 *               expired (the future stays usable: it can still be set, and
 *               awaited again)
 *   -ECANCELED  the task was cancelled (rlt_cancel); the future stays usable
 *   -EBUSY      another task is already awaiting f
 *   -EPERM      not called from a task
 *   -EINVAL     f is NULL
 *   -ENOMEM     a timeout was given and the timer heap could not grow
 */
RLT_API int rlt_future_await(rlt_future *f, void **value, int64_t timeout_ns);

RLT_EXTERN_C_END

#endif
