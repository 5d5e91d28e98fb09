/*
 * Generators (include/ringlet/gen.h): a producer task and its consumer
 * take turns through two one-shots, re-armed by the side that waits on
 * each:
 *
 *   consumer: next()                     producer: yield(v)
 *     init(have); complete(want) --->      (wakes) ... value = v
 *     wait(have)                  <---     init(want); complete(have)
 *     read value                           wait(want)
 *
 * Each one-shot is re-armed by its waiter before the other side can
 * complete it again (that side only gets to it after the waiter's own
 * complete of the other one-shot), and the release/acquire of the one-shot
 * publishes value and finished. The first next() spawns the producer
 * instead of completing want.
 */
#include "ringlet/gen.h"

#include "ringlet/cancel.h"

#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/sched.h"

#include <string.h>

struct rlt_gen {
	rlt__oneshot want; /* consumer -> producer: go on */
	rlt__oneshot have; /* producer -> consumer: a value, or the end */
	void *value;
	bool finished;	    /* the producer returned (published by have) */
	int err;	    /* its rlt_fail() error */
	bool asked;	    /* consumer: want completed, have not yet taken */
	rlt_task *producer; /* the consumer's handle: only the consumer reads it */
	/* The producer task, as the producer itself knows it: set by gen_main
	 * before fn runs. Not g->producer, which the consumer stores only once
	 * rlt_spawn() returns: on another worker, the producer may be yielding
	 * by then. */
	rlt_task *self;
	rlt_gen_fn fn;
	void *arg;
	rlt_spawn_opts opts;
	char name[RLT_TASK_NAME_MAX + 1];
};

static void *gen_main(void *arg)
{
	rlt_gen *g = arg;
	rlt_task *self = rlt__task_self();
	g->self = self;
	g->fn(g, g->arg);
	g->err = self->c.fail;
	g->finished = true;
	/* The consumer asked (we only run when asked): tell it we are done. */
	rlt__oneshot_fire(&g->have);
	return NULL;
}

rlt_gen *rlt_gen_new(rlt_gen_fn fn, void *arg, const rlt_spawn_opts *opts)
{
	if (!rlt__task_self()) {
		errno = EPERM;
		return NULL;
	}
	if (!fn || (opts && (opts->flags & RLT_SPAWN_DETACHED))) {
		errno = EINVAL;
		return NULL;
	}
	rlt_gen *g = rlt__calloc(1, sizeof(*g));
	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	rlt__oneshot_init(&g->want);
	rlt__oneshot_init(&g->have);
	g->fn = fn;
	g->arg = arg;
	if (opts) {
		g->opts = *opts;
		if (opts->name) {
			strncpy(g->name, opts->name, RLT_TASK_NAME_MAX);
			g->opts.name = g->name;
		}
	}
	return g;
}

int rlt_gen_next(rlt_gen *g, void **value)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!g)
		return -EINVAL;
	if (g->finished && !g->asked)
		return g->err ? g->err : -EPIPE;
	if (!g->asked) {
		rlt__oneshot_init(&g->have);
		g->asked = true;
		if (!g->producer) {
			g->producer = (rlt_spawn)(gen_main, g, &g->opts); /* not "gen_main-<id>" */
			if (!g->producer) {
				g->asked = false;
				return -errno;
			}
		} else {
			rlt__oneshot_fire(&g->want);
		}
	}
	/* Cancelled here, we keep asked: the value on its way is the next
	 * call's. */
	int rc = rlt__oneshot_wait_k(&g->have, -1, RLT__WK_GEN);
	if (rc < 0)
		return rc;
	g->asked = false;
	if (g->finished)
		return g->err ? g->err : -EPIPE;
	if (value)
		*value = g->value;
	return 0;
}

int rlt_gen_yield(rlt_gen *g, void *value)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	if (!g || g->self != self)
		return g ? -EPERM : -EINVAL;
	g->value = value;
	rlt__oneshot_init(&g->want);
	rlt__oneshot_fire(&g->have);
	return rlt__oneshot_wait_k(&g->want, -1, RLT__WK_GEN);
}

int rlt_gen_close(rlt_gen *g)
{
	if (!rlt__task_self())
		return -EPERM;
	if (!g)
		return -EINVAL;
	int rc = 0;
	if (g->producer) {
		rlt_cancel(g->producer);
		rlt_scope shield; /* closing must finish: the producer is waited for */
		rlt_shield_enter(&shield);
		rc = rlt_join(g->producer, NULL);
		rlt_scope_leave(&shield);
		if (rc == -ECANCELED)
			rc = 0; /* we cancelled it */
	}
	rlt__free(g);
	return rc;
}
