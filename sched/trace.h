/*
 * Traces (RINGLET_TRACE=/path/trace.json): each worker records what it
 * does into a ring of its own (the last RINGLET_TRACE_SIZE bytes of
 * events, 32 bytes each), with no lock and no system call; the rings are
 * written out as Chrome trace event JSON (Perfetto, chrome://tracing) when
 * rlt_run ends, or on the console's `trace` command (sched/trace.c).
 *
 * Off (the default), each hook costs a load of w->trace and a branch not
 * taken.
 */
#ifndef RLT_SCHED_TRACE_H
#define RLT_SCHED_TRACE_H

#include "sched/stats.h"

#include <stdint.h>

/* Event kinds. B/E pairs nest on a worker's timeline: a task's run inside
 * nothing, a park inside nothing. */
enum rlt__tev_kind {
	RLT__TEV_RUN_B,	  /* a task resumed (name: its function, id) */
	RLT__TEV_RUN_E,	  /* it switched back; arg: rlt__task_state it left in */
	RLT__TEV_PARK_B,  /* the worker went to sleep in the kernel */
	RLT__TEV_PARK_E,  /* it woke */
	RLT__TEV_SPAWN,	  /* a task spawned one (id: the new task's) */
	RLT__TEV_STEAL,	  /* arg: tasks taken, id: the victim worker */
	RLT__TEV_IO_SUB,  /* an op submitted; arg: opcode, id: fd */
	RLT__TEV_IO_DONE, /* an op's result reached its task; arg: opcode, id: result */
};

typedef struct rlt__tev {
	uint64_t ticks;	  /* rlt__ticks() */
	uint64_t id;	  /* task id, or as the kind says */
	const char *name; /* a string that lives as long as the process (or NULL) */
	uint32_t kind;
	uint32_t arg;
} rlt__tev;

typedef struct rlt__tring {
	rlt__tev *ev;
	uint64_t mask; /* capacity - 1 (a power of two) */
	/* Events ever written (the owner's; the flush reads it on the owner's
	 * thread or after the owner stopped). */
	uint64_t n;
} rlt__tring;

static inline void rlt__tring_put(rlt__tring *r, uint32_t kind, uint64_t id, const char *name,
				  uint32_t arg)
{
	rlt__tev *e = &r->ev[r->n++ & r->mask];
	e->ticks = rlt__ticks();
	e->id = id;
	e->name = name;
	e->kind = kind;
	e->arg = arg;
}

/* The hook: w->trace is NULL unless tracing. */
#define RLT__TRACE(w, kind, id, name, arg)                                                         \
	do {                                                                                       \
		if (__builtin_expect((w)->trace != NULL, 0))                                       \
			rlt__tring_put((w)->trace, (kind), (id), (name), (arg));                   \
	} while (0)

struct rlt__runtime;
struct rlt__worker;

/* Set up the rings (rt->settings: RINGLET_TRACE, RINGLET_TRACE_SIZE), before
 * the workers start; 0 or -ENOMEM. */
int rlt__trace_init(struct rlt__runtime *rt);
/* Write the trace file (every thread stopped) and free the rings. */
void rlt__trace_fini(struct rlt__runtime *rt);
/* From a task while the runtime runs: each worker copies its ring on its
 * thread, then the file is written. The path written and the events in
 * it; -ENOENT when tracing is off. */
int rlt__trace_flush(struct rlt__runtime *rt, char *path, size_t len, uint64_t *events);

#endif
