/*
 * ringlet: an io_uring task runtime for C.
 *
 * Tasks are stackful coroutines: a task calls rlt_read(), rlt_sleep() or
 * rlt_future_await() like a plain function, the call suspends only that
 * task, and its worker runs another one meanwhile.
 *
 * Conventions, for every header below:
 *   - Calls that return int return 0 (or a count) on success and a negative
 *     errno on failure, as liburing does. Calls that return a pointer return
 *     NULL and set errno; after a call that suspends, read it as rlt_errno
 *     (a task may have moved to another worker's thread: common.h).
 *   - "Suspends" means the call may switch away from the calling task; such
 *     calls must be made from inside a task and return -EPERM otherwise.
 *   - Times are nanoseconds on CLOCK_MONOTONIC.
 */
#ifndef RINGLET_H
#define RINGLET_H

#include "ringlet/common.h"
#include "ringlet/runtime.h"
#include "ringlet/task.h"
#include "ringlet/future.h"
#include "ringlet/chan.h"
#include "ringlet/time.h"
#include "ringlet/io.h"
#include "ringlet/net.h"
#include "ringlet/rxq.h"
#include "ringlet/bufstream.h"
#include "ringlet/process.h"
#include "ringlet/signal.h"
#include "ringlet/procpool.h"
#include "ringlet/policy.h"
#include "ringlet/executor.h"
#include "ringlet/sync.h"
#include "ringlet/cancel.h"
#include "ringlet/gather.h"
#include "ringlet/gen.h"
#include "ringlet/defer.h"
#include "ringlet/stats.h"

#endif
