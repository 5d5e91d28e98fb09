/* Ready cleanups on top of rlt_defer (include/ringlet/defer.h): each one
 * is rlt_defer with the right function, and the argument checks. */
#include "ringlet/defer.h"

#include "ringlet/cancel.h"
#include "ringlet/future.h"
#include "ringlet/io.h"

#include "sched/sched.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static void close_fd(void *arg)
{
	rlt_close((int)(intptr_t)arg);
}

static void reader_free(void *arg)
{
	rlt_reader_free(arg);
}

static void writer_close(void *arg)
{
	rlt_writer_close(arg);
}

static void mutex_unlock(void *arg)
{
	rlt_mutex_unlock(arg);
}

static void sem_release(void *arg)
{
	rlt_sem_release(arg);
}

static void future_release(void *arg)
{
	rlt_future_release(arg);
}

static void pool_shutdown(void *arg)
{
	rlt_pool_shutdown(arg, true);
}

/* rlt_defer(fn, arg) for a handle that must not be NULL. */
static int defer_handle(void (*fn)(void *), void *arg)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!arg)
		return -EINVAL;
	return rlt_defer(fn, arg);
}

int rlt_defer_close(int fd)
{
	if (!rlt__task_self())
		return -EPERM;
	if (fd < 0)
		return -EINVAL;
	return rlt_defer(close_fd, (void *)(intptr_t)fd);
}

int rlt_defer_reader_free(rlt_reader *r)
{
	return defer_handle(reader_free, r);
}

int rlt_defer_writer_close(rlt_writer *w)
{
	return defer_handle(writer_close, w);
}

int rlt_defer_unlock(rlt_mutex *m)
{
	return defer_handle(mutex_unlock, m);
}

int rlt_defer_lock(rlt_mutex *m)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!m)
		return -EINVAL;
	int rc = rlt_mutex_lock(m);
	if (rc < 0)
		return rc;
	rc = rlt_defer(mutex_unlock, m);
	if (rc < 0)
		rlt_mutex_unlock(m); /* nothing held, nothing deferred */
	return rc;
}

int rlt_defer_release(rlt_sem *s)
{
	return defer_handle(sem_release, s);
}

int rlt_defer_acquire(rlt_sem *s)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!s)
		return -EINVAL;
	int rc = rlt_sem_acquire(s);
	if (rc < 0)
		return rc;
	rc = rlt_defer(sem_release, s);
	if (rc < 0)
		rlt_sem_release(s);
	return rc;
}

int rlt_defer_future_release(rlt_future *f)
{
	return defer_handle(future_release, f);
}

int rlt_defer_pool_shutdown(rlt_pool *p)
{
	return defer_handle(pool_shutdown, p);
}

int rlt_defer_free(void *p)
{
	if (!rlt__task_self())
		return -EPERM;
	return p ? rlt_defer(free, p) : 0;
}
