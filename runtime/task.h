/* Internal view of a task. */
#ifndef RLT_RUNTIME_TASK_H
#define RLT_RUNTIME_TASK_H

#include "ringlet/task.h"
#include "runtime/coro.h"
#include "runtime/oneshot.h"
#include "runtime/stack.h"
#include "sched/timer.h"

#include <stdatomic.h>

struct rlt__worker;
struct rlt__runtime;
struct rlt__wait;
struct rlt__defer;
struct rlt_scope;

/* A message for a worker's loop (rlt__worker_post): fn runs on the
 * worker's thread, between tasks. */
typedef struct rlt__msg {
	struct rlt__msg *next;
	void (*fn)(struct rlt__worker *w, struct rlt__msg *m);
} rlt__msg;

/* rlt_task.cancel bits */
#define RLT__C_PENDING 1u /* rlt_cancel() asked; not delivered yet */
#define RLT__C_QUEUED  2u /* cancel_msg is posted to a worker */

#define RLT__TF_PINNED	  1u
#define RLT__TF_ABANDONED 2u /* ended by rlt__task_exit: frames left on its stack */

/* rlt_task.handle: what its owner did with the handle, for the misuse
 * checks of debug mode (runtime/task.c: handle_misuse). */
#define RLT__H_HELD	0u /* the spawner's, to join or detach */
#define RLT__H_JOINED	1u /* consumed by rlt_join (or gather, a group...) */
#define RLT__H_DETACHED 2u /* given up: rlt_detach or RLT_SPAWN_DETACHED */
#define RLT__H_HOW	3u /* the bits above */
#define RLT__H_FREED	4u /* or-ed in: freed (kept in the debug quarantine) */

enum rlt__task_state {
	RLT__T_RUNNABLE, /* in a run queue or an inbox */
	RLT__T_RUNNING,
	RLT__T_WAITING, /* suspended until something wakes it */
	RLT__T_DONE,	/* returned; stack given back */
	RLT__T_YIELDED, /* switched away to be queued again at once */
};

/* What a waiting task waits for (introspection: rlt_dump_tasks). */
enum rlt__wait_kind {
	RLT__WK_NONE,
	RLT__WK_IO, /* an I/O operation; wait_kind's high byte holds the opcode */
	RLT__WK_SLEEP,
	RLT__WK_FUTURE,
	RLT__WK_JOIN,
	RLT__WK_TASKS, /* gather, wait, a task group */
	RLT__WK_MUTEX,
	RLT__WK_EVENT,
	RLT__WK_SEM,
	RLT__WK_COND,
	RLT__WK_WAITGROUP,
	RLT__WK_CHAN_SEND,
	RLT__WK_CHAN_RECV,
	RLT__WK_JOB, /* a pool job (rlt_run_blocking) */
	RLT__WK_GEN, /* a generator hand-off */
	RLT__WK_COUNT
};

/* The state as other threads may read it (the dump): relaxed, a plain
 * move on the machines ringlet runs on. */
#define rlt__tstate(t)	      atomic_load_explicit(&(t)->state, memory_order_relaxed)
#define rlt__tstate_set(t, s) atomic_store_explicit(&(t)->state, (uint8_t)(s), memory_order_relaxed)

struct rlt_task {
	rlt__coro coro;
	/* Link in exactly one of: a run queue, a worker's remote inbox. */
	rlt_task *next;
	/* The worker running the task, or the one it suspended on. Wakes are
	 * delivered there, so that worker can disarm wait_timer (its heap)
	 * before the task becomes runnable again. */
	struct rlt__worker *worker;
	/* Timer armed for the current wait, if any; lives on the task's stack. */
	rlt__timer *wait_timer;
	/* rlt_set_io_timeout(): each I/O operation's limit, ns (0: none). */
	int64_t io_timeout;

	rlt_task_fn fn;
	void *arg;
	void *result;
	rlt__stack stack;

	/* One for the running task, one for the handle (unless detached), one
	 * for a posted cancel_msg. */
	atomic_uint refs;
	_Atomic uint8_t state;
	uint8_t flags;	   /* RLT__TF_* */
	rlt__oneshot done; /* set when fn returned; the joiner waits here */

	/* All tasks not yet freed, in the list of their owner (the worker that
	 * first ran them): what shutdown reclaims. NULL owner: never ran yet. */
	struct rlt__worker *owner;
	rlt_task *all_prev, *all_next;

	/* Cancellation (runtime/cancel.h has the protocol). Any thread: */
	_Atomic uint32_t cancel;	       /* RLT__C_* */
	_Atomic uint16_t wait_kind;	       /* for the dump: rlt__wait_kind | opcode << 8 */
	uint16_t shield;		       /* shields entered: cancellation deferred */
	_Atomic(struct rlt__worker *) wait_on; /* suspended there in a cancellable wait */
	/* The task's own (and wait_on's worker's while it waits there): */
	struct rlt__wait *wait; /* the current wait's record, on the task's stack */
	uint64_t deadline;	/* the nearest scope deadline (UINT64_MAX: none) */
	uint64_t born;		/* for the dump's age */
	_Atomic uint64_t held;	/* ticks spent running (RINGLET_TIMING), for the console */
	/* Rarely used; zeroed in one go by rlt__task_create (keep together). */
	struct rlt__task_cold {
		rlt__msg cancel_msg;	   /* routes a cancel to wait_on */
		struct rlt_scope *scope;   /* innermost deadline scope or shield */
		struct rlt__defer *defers; /* cleanup to run (LIFO), runtime/cancel.c */
		uint32_t ndefers;
		uint16_t ncancel;     /* cancellations delivered (-ECANCELED returned) */
		bool ended_cancelled; /* finished with ncancel > 0: its joiner sees it */
		int fail;	      /* rlt_fail(): the task's error, for its joiner */
	} c;

	uint64_t id;
	const char *fn_name;	    /* #fn from rlt_spawn's macro, for the default name */
	_Atomic uint8_t name_state; /* the default name is formatted lazily */
	_Atomic uint8_t handle;	    /* RLT__H_*: what became of the handle (debug checks) */
	char name[RLT_TASK_NAME_MAX + 1];
} __attribute__((aligned(16)));

/* rlt_spawn, with wa watching the task's completion from the start. */
rlt_task *rlt__spawn_watched(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts, rlt__watch *wa,
			     const char *fn_name);
/* rlt_join with a timeout (rlt_wait_for). */
int rlt__join(rlt_task *t, void **result, int64_t timeout_ns);
/* Free t (on its owner's thread, or handed to it). */
void rlt__task_free(rlt_task *t);
/* rlt_cancel's check of t's handle (aborts on misuse in debug mode). */
void rlt__task_handle_check_cancel(rlt_task *t);
/* Debug mode from now on, for the process: handles are checked and freed
 * tasks quarantined (called by rlt_run when its configuration asks). */
void rlt__task_debug_checks(void);

/* Drop a reference; the last frees t. */
static inline void rlt__task_unref(rlt_task *t)
{
	/* acq_rel: the last owner must see every write of the others (the
	 * result, the state) before it frees. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		rlt__task_free(t);
}

/* A finished task's outcome, as rlt_join reports it: 0, its rlt_fail()
 * error or -ECANCELED. */
static inline int rlt__task_outcome(const rlt_task *t)
{
	if (t->c.fail)
		return t->c.fail;
	return t->c.ended_cancelled ? -ECANCELED : 0;
}
/* For the test harness (tests/rlt_test.h) only: end the calling task at
 * once, as if its function had returned result (its defers run), from any
 * depth of its stack. The frames above are abandoned, never returned from:
 * what they held (memory, descriptors, locks) stays held. Outside a task,
 * returns. */
void rlt__task_exit(void *result);
/* For the test harness: cancel the root task of the calling task's runtime
 * (rlt_cancel), so that a failed test ends. 0, or -EPERM outside a task. */
int rlt__task_cancel_root(void);
/* Run t's cleanup down to depth mark (runtime/cancel.c). */
int rlt__defer_unwind(rlt_task *t, size_t mark);

/* t's name, formatting the default "<fn>-<id>" on first use. */
const char *rlt__task_name(rlt_task *t);
/* Suspending and waking: sched/sched.h, the task-scheduler contract. */
/* Run by the scheduler after a task switched away in state DONE. */
void rlt__task_reap(struct rlt__worker *w, rlt_task *t);
/* Free t on the thread of its owner w. */
void rlt__task_free_owned(struct rlt__worker *w, rlt_task *t);
/* Free a task that never ran to completion (shutdown). */
void rlt__task_drop(struct rlt__worker *w, rlt_task *t);
/* Free a task that never started (no owner, in no list: shutdown), and
 * its stack into w's pool; w's thread, or every thread stopped. */
void rlt__task_free_unstarted(struct rlt__worker *w, rlt_task *t);
/* Create a task of runtime rt (used for the root task too), with its
 * stack: from self's pool when self is a worker of rt, else mapped for it
 * alone. NULL with errno EINVAL (stack size) or ENOMEM (no stack, no
 * memory). */
rlt_task *rlt__task_create(struct rlt__runtime *rt, struct rlt__worker *self, rlt_task_fn fn,
			   void *arg, const rlt_spawn_opts *opts);
/* Free the task structs w keeps for reuse (worker teardown). */
void rlt__task_cache_drain(struct rlt__worker *w);
/* On the worker about to run t for the first time: join the worker's task
 * list, make its stack ready (rlt__stack_prepare: a warm one of w's may
 * take its place) and lay out the first frame. Returns false if the stack's
 * guard could not be installed (the kernel had no memory for a page
 * table): t is then finished without running, its joiner sees -ENOMEM. */
bool rlt__task_start(struct rlt__worker *w, rlt_task *t);

#endif
