#ifndef RINGLET_RUNTIME_H
#define RINGLET_RUNTIME_H

#include "common.h"
#include "task.h"

RLT_EXTERN_C_BEGIN

/*
 * Default stack size of a task: 256 KiB of address space. Stacks are mapped
 * with MAP_NORESERVE and only the pages a task touches become resident, so
 * the default is a ceiling, not a cost: an idle task typically holds 4-8 KiB.
 * 256 KiB runs ordinary C library code (stdio, getaddrinfo, regex, most
 * third-party libraries) without surprises; choose 16-64 KiB per task when
 * you run hundreds of thousands of small tasks (see docs/ARCHITECTURE.md).
 */
#define RLT_DEFAULT_STACK_SIZE (256u * 1024u)
/* Smallest stack a task may ask for. */
#define RLT_MIN_STACK_SIZE (8u * 1024u)
/* Largest: 1 GiB. */
#define RLT_MAX_STACK_SIZE (1024u * 1024u * 1024u)
/* The inaccessible region below every task stack (unless
 * rlt_config.no_stack_guard): address space only, no memory. A frame that
 * runs off its stack by up to this much faults there and is reported as
 * that task's overflow; a frame larger than this is caught only if it
 * probes its pages in order (-fstack-clash-protection, which ringlet.pc
 * and the CMake package add to your compile flags). docs/ARCHITECTURE.md,
 * "Overflow", says what remains uncaught. */
#define RLT_STACK_GUARD_SIZE (64u * 1024u)
#define RLT_DEFAULT_SPIN_US  20

/* Runtime configuration. Zero means "default" for every field, so
 * `rlt_config cfg = {0};` or passing NULL to rlt_run() are both valid. */
typedef struct rlt_config {
	/* Default stack size of tasks spawned without one (bytes, rounded up
	 * to the page size). Env RINGLET_STACK_SIZE overrides. */
	size_t stack_size;
	/* Submission queue entries per worker ring (power of two, default 256). */
	unsigned ring_entries;
	/* Worker threads, each with its own io_uring and run queue. 0 = one
	 * per CPU the process may run on (sched_getaffinity). Env
	 * RINGLET_WORKERS overrides. The thread calling rlt_run() is worker 0. */
	unsigned workers;
	/* Pin worker i to the i-th allowed CPU. Env RINGLET_PIN=1 sets it. */
	bool pin;
	/* Never move runnable tasks between workers (thread-per-core): a task
	 * runs where it was spawned (see RLT_SPAWN_ON_WORKER). Env
	 * RINGLET_STEAL=0 sets it. */
	bool no_steal;
	/* Do not put a guard page under task stacks. Only useful on kernels
	 * older than 6.13 (no MADV_GUARD_INSTALL), where every guard page costs
	 * a memory mapping and vm.max_map_count (default 65530) caps the number
	 * of live tasks at about 32k. Stack overflows then go undetected. */
	bool no_stack_guard;
	/* Free stacks kept resident per worker and size (default 256; 0 here
	 * means the default, RINGLET_STACK_CACHE=0 keeps none). When a worker
	 * goes idle, the pages of its free stacks beyond that are returned to
	 * the kernel at once (MADV_DONTNEED: RSS falls, unlike MADV_FREE's
	 * lazily freed pages, which stay counted until memory runs short); the
	 * address ranges stay for reuse. RINGLET_STACK_CACHE overrides. */
	unsigned stack_cache;
	/* The loop policy, "name" or "name:options" (see ringlet/policy.h):
	 * "io_uring" (NULL: the default), "io_uring-sqpoll", "epoll",
	 * "fault:...", or one registered with rlt_policy_register(). Env
	 * RINGLET_POLICY overrides, so an operator can swap the loop without a
	 * rebuild. If the policy cannot start here (io_uring disabled by
	 * seccomp or sysctl, say), ringlet says so once on stderr and uses
	 * "epoll" instead... */
	const char *policy;
	/* The longest, in microseconds, a worker that runs out of work keeps
	 * looking (its inbox, its I/O, the other workers) before it sleeps in
	 * the kernel. A wake-up within the window skips a kernel sleep and
	 * wake-up (~5 us each on a VM, less on bare metal) and costs the waker
	 * no system call; the price is the CPU spent looking. By default
	 * (RINGLET_SPIN=adaptive) a worker spins only while its recent idle
	 * gaps were mostly shorter than about two of its measured sleeps'
	 * cost, for about twice the typical gap, never when the process has
	 * fewer CPUs than workers, or than the workers not parked plus running
	 * pool jobs, and at most half the CPUs at once (docs/LOWCPU.md); RINGLET_SPIN=fixed spins
	 * the whole window every time, and is the default under io_uring-sqpoll, whose cross-worker
	 * hand-offs the adaptive policy made far slower. 0: the default (RLT_DEFAULT_SPIN_US);
	 * negative: never spin. Env RINGLET_SPIN_US overrides (0 there means never). */
	int spin_us;
	/* Debug mode (asyncio's debug=True): report on stderr every task that
	 * ran longer than slow_ms (0: 100) without suspending, with its name
	 * and how long, when it finally switches away. Costs two clock reads
	 * per task switch. Env RINGLET_DEBUG=1 and RINGLET_SLOW_MS=n set them. */
	bool debug;
	unsigned slow_ms;
	/* ...unless this is set (or env RINGLET_POLICY_STRICT=1): then
	 * rlt_run() fails with the policy's error and a message naming it. */
	bool policy_strict;
	/* When the root task returns, the tasks still alive are cancelled and
	 * given this long to finish (their cleanup runs) before the runtime
	 * stops and abandons the rest. 0: the default, 1000 ms; negative:
	 * abandon at once. Env RINGLET_SHUTDOWN_MS overrides (0 there means
	 * at once). */
	int shutdown_ms;
} rlt_config;

/*
 * Run fn(arg) as the root task of a new runtime, on the calling thread (it
 * becomes worker 0), until the root task returns. Its return value is stored
 * in *result when result is not NULL. The asyncio.run() of ringlet.
 *
 * Tasks still alive when the root task returns are cancelled, as
 * asyncio.run() does, and the runtime runs until they have finished (their
 * rlt_defer cleanup included) or shutdown_ms has passed. Tasks spawned
 * from then on never start. Those still alive after that are abandoned:
 * their pending kernel operations are cancelled and drained, their stacks
 * are freed, and a line on stderr says how many there were. Join what you
 * spawn.
 *
 * Returns what rlt_join() would say of the root task, as asyncio.run()
 * re-raises the main coroutine's exception: 0, the error it returned with
 * rlt_fail() (return rlt_fail(-ECONNREFUSED) makes rlt_run return
 * -ECONNREFUSED, and *result is then rlt_fail's NULL), -ECANCELED if it
 * ended cancelled (*result still holds what it returned). So `return
 * rlt_run(...) < 0;` in main() gives the exit code. Or, when the runtime
 * could not start (the root never ran):
 *   -EINVAL  a config field or RINGLET_* variable is out of range (a bad
 *            variable is named on stderr with what it accepts;
 *            `tools/ringlet config` lists them all)
 *   -EBUSY   the calling thread is already running a ringlet runtime
 *   -ENOMEM  out of memory for the runtime, its ring or the root stack
 *   other    the negative errno of io_uring_setup (e.g. -EPERM where
 *            io_uring is disabled) or of a failed thread-level setup call
 */
RLT_API int rlt_run(rlt_task_fn fn, void *arg, const rlt_config *cfg, void **result);

/* Fill *cfg with the defaults (the environment is applied by rlt_run,
 * which reads every RINGLET_* variable once, at its start). */
RLT_API void rlt_config_init(rlt_config *cfg);

/* The maximum number of workers. */
#define RLT_MAX_WORKERS 256

/* The runtime the calling thread works for, or NULL on other threads. */
RLT_API rlt_runtime *rlt_runtime_self(void);

/* How many workers rt has. */
RLT_API unsigned rlt_runtime_workers(const rlt_runtime *rt);

/*
 * rlt_spawn() for any thread, including threads that are not workers of rt
 * (pass them the pointer from rlt_runtime_self()). The task goes to the
 * global queue (or to opts->worker with RLT_SPAWN_ON_WORKER) and a parked
 * worker is woken for it. The handle rules are rlt_spawn()'s; a thread that
 * is not a task cannot rlt_join(), but may rlt_detach() or hand the handle
 * to a task. Must not be called once the root task has returned.
 * The stack is taken at once, as by rlt_spawn(): from the calling worker's
 * pool on a worker of rt, else mapped for the task alone.
 * Returns NULL with errno EINVAL (rt or fn NULL, bad options) or ENOMEM (no
 * stack could be had: RLIMIT_AS, vm.max_map_count; or no memory).
 */
RLT_API rlt_task *rlt_runtime_spawn(rlt_runtime *rt, rlt_task_fn fn, void *arg,
				    const rlt_spawn_opts *opts);
/* The same with fn_name for the default task name (task.h: rlt_spawn_named);
 * rlt_runtime_spawn is a macro passing #fn. */
RLT_API rlt_task *rlt_runtime_spawn_named(rlt_runtime *rt, rlt_task_fn fn, void *arg,
					  const rlt_spawn_opts *opts, const char *fn_name);
#define rlt_runtime_spawn(rt, fn, ...) rlt_runtime_spawn_named((rt), (fn), __VA_ARGS__, #fn)

/* Index of the worker running the calling task (0 .. workers-1), or -1
 * outside of a runtime. Can change across a suspension when stealing is on. */
RLT_API int rlt_worker_index(void);

/* The loop policy rt runs ("name" or "name:options"; after a fallback, the
 * one actually used), or NULL if rt is NULL. */
RLT_API const char *rlt_runtime_policy(const rlt_runtime *rt);

RLT_EXTERN_C_END

#endif
