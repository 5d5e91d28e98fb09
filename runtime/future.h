/* A future's insides, for the code that waits on several things at once
 * (runtime/gather.c): its oneshot, to register a watch in, and its outcome
 * once it is done. */
#ifndef RLT_RUNTIME_FUTURE_H
#define RLT_RUNTIME_FUTURE_H

#include "ringlet/future.h"

#include "runtime/oneshot.h"

/* f's completion: fired by rlt_future_set / rlt_future_fail, which publish
 * the value and error before it (release). */
rlt__oneshot *rlt__future_oneshot(rlt_future *f);

/* Once f is done: 0 and its value in *value (if not NULL), or -err for a
 * future failed with err. */
int rlt__future_outcome(const rlt_future *f, void **value);

#endif
