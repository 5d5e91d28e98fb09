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

#endif
