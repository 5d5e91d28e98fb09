#ifndef RINGLET_DEFER_H
#define RINGLET_DEFER_H

#include "common.h"

#include "bufstream.h"
#include "executor.h"
#include "sync.h"

RLT_EXTERN_C_BEGIN

/*
 * Ready cleanups: Python's `async with resource:` in one line. Each call
 * pushes the usual way of letting go of one kind of resource on the
 * calling task's cleanup stack (rlt_defer, include/ringlet/cancel.h): it
 * runs when the task returns or is cancelled out of its function, or when
 * rlt_defer_run() unwinds past it, newest first, shielded (a cancellation
 * does not cut it short).
 *
 *	size_t mark = rlt_defer_mark();          // async with ... :
 *	int fd = rlt_net_dial("example.com:80", -1, 0);
 *	if (fd < 0 || rlt_defer_close(fd) < 0) ...
 *	rlt_defer_lock(m);                       // async with lock:
 *	...
 *	rlt_defer_run(mark);                     // the block's end: unlock, close
 *
 * None suspends but rlt_defer_lock and rlt_defer_acquire (which take the
 * lock or permit first, as `async with` does). Each returns 0, or
 *   -EPERM   not called from a task
 *   -EINVAL  a NULL handle or a negative fd
 *   -ENOMEM  no room on the cleanup stack: nothing was deferred, the
 *            resource is still the caller's (and, for the lock and permit,
 *            not held: they were given back)
 * and rlt_defer_lock / rlt_defer_acquire also return the errors of the
 * lock or acquire, with nothing held or deferred.
 *
 * A cleanup's own result is lost (as __aexit__'s exceptions would be
 * swallowed): where it matters (the writer's final flush), call the
 * function yourself before the block ends.
 */

/* rlt_close(fd) at cleanup. */
RLT_API int rlt_defer_close(int fd);

/* rlt_reader_free(r) at cleanup. */
RLT_API int rlt_defer_reader_free(rlt_reader *r);

/* rlt_writer_close(w) at cleanup: flush what is buffered, free w (the fd
 * stays open: defer its close first, so that it runs after). */
RLT_API int rlt_defer_writer_close(rlt_writer *w);

/* `async with lock:` lock m now (rlt_mutex_lock: suspends while it is
 * held), rlt_mutex_unlock(m) at cleanup. */
RLT_API int rlt_defer_lock(rlt_mutex *m);

/* rlt_mutex_unlock(m) at cleanup, for a mutex the task holds already. */
RLT_API int rlt_defer_unlock(rlt_mutex *m);

/* `async with sem:` take a permit now (rlt_sem_acquire: suspends while
 * there is none), rlt_sem_release(s) at cleanup. */
RLT_API int rlt_defer_acquire(rlt_sem *s);

/* rlt_sem_release(s) at cleanup, for a permit the task holds already. */
RLT_API int rlt_defer_release(rlt_sem *s);

/* rlt_future_release(f) at cleanup: a future of the task's own, or a pool
 * job's (rlt_pool_submit). */
RLT_API int rlt_defer_future_release(rlt_future *f);

/* `with ThreadPoolExecutor() as pool:` rlt_pool_shutdown(p, true) at
 * cleanup: the jobs queued still run, and the cleanup waits for them. */
RLT_API int rlt_defer_pool_shutdown(rlt_pool *p);

/* free(p) at cleanup (NULL: nothing deferred, 0 returned). */
RLT_API int rlt_defer_free(void *p);

RLT_EXTERN_C_END

#endif
