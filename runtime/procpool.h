/*
 * The process pool's wire format and the registry shared by the pool
 * (runtime/procpool.c) and the worker side (runtime/procpool_child.c).
 *
 * One Unix stream socket per worker, fd 3 in the worker. A request is a
 * header, the job's name (name_len bytes, no NUL) and len bytes of input;
 * a response is a header and len bytes of output. Integers are in the
 * host's byte order: both ends are the same program on the same machine.
 */
#ifndef RLT_RUNTIME_PROCPOOL_H
#define RLT_RUNTIME_PROCPOOL_H

#include "ringlet/procpool.h"

#include <stdbool.h>
#include <stdint.h>

#define RLT__PP_ENV	 "RINGLET_PROCPOOL_WORKER"
#define RLT__PP_FD	 3
#define RLT__PP_REQ	 0x524c5451u /* "RLTQ" */
#define RLT__PP_RSP	 0x524c5452u /* "RLTR" */
#define RLT__PP_MAX_NAME 255
#define RLT__PP_MAX_LEN	 (UINT64_C(1) << 30)

typedef struct rlt__pp_hdr {
	uint32_t magic;
	int32_t arg;  /* request: the name's length; response: 0 or a negative errno */
	uint64_t len; /* the bytes that follow (after the name, in a request) */
} rlt__pp_hdr;

/* Whether rlt_procpool_child_main() ran (and returned) in this process. */
bool rlt__procpool_parent_ready(void);
/* The argv it was given (NULL-terminated, main's own). */
char **rlt__procpool_argv(void);

#endif
