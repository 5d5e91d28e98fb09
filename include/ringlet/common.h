#ifndef RINGLET_COMMON_H
#define RINGLET_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define RLT_EXTERN_C_BEGIN extern "C" {
#define RLT_EXTERN_C_END   }
#else
#define RLT_EXTERN_C_BEGIN
#define RLT_EXTERN_C_END
#endif

#define RLT_API __attribute__((visibility("default")))

#define RLT_VERSION_MAJOR 0
#define RLT_VERSION_MINOR 1
#define RLT_VERSION_PATCH 0

#define RLT_NSEC_PER_USEC 1000ull
#define RLT_NSEC_PER_MSEC 1000000ull
#define RLT_NSEC_PER_SEC  1000000000ull

/* Opaque handles. */
typedef struct rlt_task rlt_task;
typedef struct rlt_future rlt_future;
typedef struct rlt__runtime rlt_runtime;

/* The body of a task: takes the argument given at spawn, returns its result. */
typedef void *(*rlt_task_fn)(void *arg);

/*
 * errno in a task. A task may resume on another worker's thread after any
 * call that suspends (work stealing moves it). errno is per thread, and
 * ringlet sets it on the thread the task runs on when the call returns; but
 * glibc declares __errno_location() const, so a compiler may compute
 * errno's address once per function and reuse it after the call: GCC and
 * Clang do, at -O2, when the function touched errno before the call. Such
 * code then reads the old thread's errno (another task's, or a stale one):
 *
 *     errno = 0;
 *     rlt_redis *r = rlt_redis_connect(&opts);  (suspends, may migrate)
 *     if (!r) use(errno);                       (may read the old thread's)
 *
 * rlt_errno is errno read (or written) through an address computed anew
 * each time: use it for errno after a call that suspends. Defining
 * RLT_TASK_ERRNO before the first ringlet header makes `errno` itself mean
 * rlt_errno for the rest of the file (ringlet builds its own code, tests
 * and tools that way). It costs an indirect call per access of errno, not
 * a system call. Tasks spawned with RLT_SPAWN_PINNED never migrate.
 */
static inline int *rlt_errno_location(void)
{
	/* Through a volatile pointer: the call is never merged with another. */
	int *(*volatile loc)(void) = __errno_location;
	return loc();
}
#define rlt_errno (*rlt_errno_location())

#ifdef RLT_TASK_ERRNO
#undef errno
#define errno rlt_errno
#endif

#endif
