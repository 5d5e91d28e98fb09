#ifndef RINGLET_GEN_H
#define RINGLET_GEN_H

#include "common.h"
#include "task.h"

RLT_EXTERN_C_BEGIN

/*
 * Generators and async iterators: a producer that hands values to its
 * consumer one at a time and runs only when asked for the next one, like
 * a Python `async def` with `yield` driven by `async for`. The producer is
 * a task of its own (stackful, so it may yield from deep inside its calls,
 * and await I/O between values):
 *
 *	static void *count(rlt_gen *g, void *arg)
 *	{
 *		for (uintptr_t i = 0; i < 100; i++)
 *			if (rlt_gen_yield(g, (void *)i) < 0)
 *				break;          // closed early: clean up, return
 *		return NULL;
 *	}
 *
 *	rlt_gen *g = rlt_gen_new(count, NULL, NULL);
 *	void *v;
 *	while (rlt_gen_next(g, &v) == 0)        // async for v in count()
 *		use(v);
 *	rlt_gen_close(g);
 *
 * One consumer task at a time; the producer and the consumer may run on
 * different workers.
 */
typedef struct rlt_gen rlt_gen;
typedef void *(*rlt_gen_fn)(rlt_gen *g, void *arg);

/* A generator running fn(g, arg) from the first rlt_gen_next() on. opts as
 * for rlt_spawn (the producer task's name, stack size, flags but
 * RLT_SPAWN_DETACHED). NULL with errno EPERM (not in a task), EINVAL,
 * ENOMEM. */
RLT_API rlt_gen *rlt_gen_new(rlt_gen_fn fn, void *arg, const rlt_spawn_opts *opts);

/*
 * The next value (asyncio's __anext__): runs the producer until its next
 * rlt_gen_yield(), and stores what it yielded in *value. Suspends.
 * Returns 0 with a value; -EPIPE when the producer has returned
 * (StopAsyncIteration); the producer's rlt_fail() error if it failed;
 * -ECANCELED / -ETIMEDOUT when the consumer is cancelled or its deadline
 * scope expires while waiting (the value being produced is kept for the
 * next call); -EPERM, -EINVAL.
 */
RLT_API int rlt_gen_next(rlt_gen *g, void **value);

/*
 * In the producer: hand value to the consumer and wait until it asks for
 * the next one. Returns 0 then, or -ECANCELED when the generator is being
 * closed (or the producer cancelled): the producer should clean up and
 * return. Suspends. -EPERM when not called from g's producer.
 */
RLT_API int rlt_gen_yield(rlt_gen *g, void *value);

/*
 * Close g (aclose()): if its producer is still running, it is cancelled
 * (its pending rlt_gen_yield returns -ECANCELED) and waited for, so its
 * cleanup has run when this returns; then g is freed. Returns 0, or the
 * producer's rlt_fail() error. Suspends. -EINVAL (g NULL), -EPERM.
 */
RLT_API int rlt_gen_close(rlt_gen *g);

RLT_EXTERN_C_END

#endif
