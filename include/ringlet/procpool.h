#ifndef RINGLET_PROCPOOL_H
#define RINGLET_PROCPOOL_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

RLT_EXTERN_C_BEGIN

/*
 * Process pools: concurrent.futures.ProcessPoolExecutor, for code that
 * must not share the process (it crashes, leaks, is not thread-safe, or
 * holds a lock of its own for seconds). Jobs are registered by name and
 * run on byte buffers in worker processes; a task waits for one as for
 * I/O:
 *
 *	static int resize(const void *in, size_t len, void **out, size_t *out_len)
 *	{ ...; *out = malloc(n); ...; *out_len = n; return 0; }
 *
 *	int main(int argc, char **argv)
 *	{
 *		rlt_procpool_register("resize", resize);
 *		rlt_procpool_child_main(argc, argv); // a worker never gets past this
 *		return rlt_run(main_task, NULL, NULL, NULL) == 0 ? 0 : 1;
 *	}
 *
 *	// in a task:
 *	rlt_procpool *pool = rlt_procpool_create(&(rlt_procpool_config){.processes = 2});
 *	void *out; size_t out_len;
 *	int rc = rlt_procpool_run(pool, "resize", img, img_len, &out, &out_len);
 *	...; free(out);
 *	rlt_procpool_free(pool);
 *
 * Workers start the way Python's "spawn" start method does, never by
 * fork(2)ing the multi-threaded runtime: posix_spawn (a vfork-style clone,
 * then execve) of this very program (/proc/self/exe, with the argv given
 * to rlt_procpool_child_main), marked by the environment variable
 * RINGLET_PROCPOOL_WORKER, which rlt_procpool_child_main recognises at the
 * top of main: it then serves jobs and never returns. So the job table is
 * the one main() builds before that call, in both processes. A worker is a
 * plain single-threaded process: a job is ordinary blocking C (it may call
 * rlt_run itself).
 *
 * Each worker talks to the pool over a Unix socket pair, in length-prefixed
 * frames (a 16-byte header, the job's name, the bytes), read and written by
 * the calling task with ringlet's I/O: the call suspends only that task,
 * under every loop policy. A worker runs one job at a time; calls beyond
 * the number of processes wait for a free one, first come first served.
 *
 * Failures stay in the worker: a job that crashes its process (a signal,
 * exit(), abort()) fails with -ECHILD, and a new process replaces the dead
 * one before the call returns. Cancelling the calling task, or a deadline
 * scope of it expiring, kills the job's process (SIGKILL) and replaces it
 * too: the call returns -ECANCELED or -ETIMEDOUT. A worker that died while
 * idle is replaced when it is next picked, without failing a job. A
 * replacement is a posix_spawn made by the calling task's worker thread,
 * which it holds until the new process has exec'd (about a millisecond).
 *
 * Workers stay in this process's process group (a shell's Ctrl-C reaches
 * them) but ignore SIGINT: the parent decides when they end (see
 * rlt_cancel_on_signal in signal.h). A worker ends by itself when its
 * socket reports end of file, so none outlives this process for long
 * unless a job is stuck in a loop.
 */

typedef struct rlt_procpool rlt_procpool;

/*
 * A job, run in a worker process: in/in_len are the caller's bytes (in is
 * never NULL; in_len may be 0). On success the job stores its result in
 * *out, a buffer from malloc() that the worker frees after sending it (or
 * NULL with *out_len 0 for no bytes), and returns 0. Or it returns a
 * negative errno of its own choosing (positive values are made negative),
 * which rlt_procpool_run returns to the caller; *out is then ignored.
 */
typedef int (*rlt_procpool_fn)(const void *in, size_t in_len, void **out, size_t *out_len);

/* Register fn under name (at most 255 bytes), in every process that will
 * be a pool or a worker: call it in main() before rlt_procpool_child_main.
 * Any thread; never suspends. Returns 0, -EINVAL (name or fn NULL, name
 * empty or too long), -EEXIST (name taken), -ENOMEM. */
RLT_API int rlt_procpool_register(const char *name, rlt_procpool_fn fn);

/*
 * Call at the top of main(), after the registrations and before anything
 * else (before rlt_run, threads, or output): in a worker process it serves
 * jobs until the pool goes away and then exits the process (status 0); in
 * any other process it records argc/argv (a worker is started with the same
 * arguments) and returns 0 at once. A pool of this program (no
 * rlt_procpool_config.program) can only be created after it was called.
 */
RLT_API int rlt_procpool_child_main(int argc, char **argv);

typedef struct rlt_procpool_config {
	/* Worker processes (default 0: one per CPU this process may use). */
	unsigned processes;
	/* Another program to start as the worker, e.g. a small helper that
	 * registers the jobs and calls rlt_procpool_child_main first thing
	 * (as posix_spawn of a helper, not a re-execution of this program).
	 * NULL: this program, /proc/self/exe. argv[0] is the path, no other
	 * argument. */
	const char *program;
	/* rlt_procpool_free(): how long workers get to exit by themselves
	 * after their socket closes before they are killed (default 0: 1 s;
	 * negative: kill at once). */
	int64_t shutdown_timeout_ns;
} rlt_procpool_config;

/*
 * Start a pool (cfg may be NULL: the defaults). All its processes are
 * started now; this holds the calling thread until each has exec'd (a
 * millisecond or so each) and never suspends. Any thread.
 * Returns the pool, or NULL with errno:
 *   ENOEXEC  no program given and rlt_procpool_child_main() was not called
 *            in this process (a worker would run main() as the parent and
 *            start pools of its own), or this process is itself a worker
 *   EINVAL   processes above 1024
 *   ENOENT, EACCES, ...   the program could not be executed
 *   EMFILE, ENFILE, ENOMEM, EAGAIN   no fd, memory or process to spare
 * On failure no process is left behind.
 */
RLT_API rlt_procpool *rlt_procpool_create(const rlt_procpool_config *cfg);

/*
 * Run the job registered as name on in/in_len in a worker process and
 * wait for its result: suspends the calling task only (also while it
 * waits for a free worker). On success *out is a buffer from malloc() with
 * the job's *out_len bytes (free it with free(); NULL when there are none);
 * out and out_len may both be NULL to drop the result.
 *
 * Returns 0, or:
 *   (the job's error)  the negative errno the job returned
 *   -ENOENT     no job of that name is registered in the worker
 *   -ECHILD     the worker process died during the job (a crash, a signal,
 *               exit()); it has been replaced
 *   -ECANCELED  the calling task was cancelled; if the job had started, its
 *               process was killed and replaced
 *   -ETIMEDOUT  a deadline scope of the task expired; likewise
 *   -EMSGSIZE   in_len or the result above 1 GiB, or name longer than 255
 *   -EPROTO     the worker broke the frame protocol (a job that wrote to or
 *               closed its fd 3?); it was killed and replaced
 *   -ENOMEM, -EIO, -ECONNRESET, ...  an I/O error on the socket (what the
 *               fault loop policy injects): if part of the request had gone,
 *               the worker was killed and replaced; if none, it is untouched
 *   -EINVAL     pool or name NULL, in NULL with in_len > 0, or only one of
 *               out and out_len NULL
 *   -EPERM      not called from a task
 *   an error of posix_spawn (-EAGAIN, -ENOMEM, ...) when a worker could
 *               not be replaced (the next call tries again)
 */
RLT_API int rlt_procpool_run(rlt_procpool *pool, const char *name, const void *in, size_t in_len,
			     void **out, size_t *out_len);

typedef struct rlt_procpool_stats {
	unsigned processes; /* the pool's size */
	uint64_t jobs;	    /* jobs that returned a result (0 or the job's error) */
	uint64_t crashed;   /* jobs whose process died (-ECHILD) */
	uint64_t killed;    /* jobs whose process was killed (cancel, deadline, protocol) */
	uint64_t spawned;   /* processes started, the first ones included */
} rlt_procpool_stats;

/* A snapshot of the pool's counters. Any thread. Returns 0 or -EINVAL. */
RLT_API int rlt_procpool_get_stats(const rlt_procpool *pool, rlt_procpool_stats *out);

/*
 * Stop the pool and free it; NULL is ignored. No call may be running on it
 * (join those tasks first). The sockets are closed, so idle workers exit;
 * each gets shutdown_timeout_ns to do so, then is killed, and all are
 * reaped: no zombie is left. From a task, the task suspends meanwhile;
 * elsewhere the thread blocks. Returns 0, or -EBUSY (a call is running:
 * nothing is done).
 */
RLT_API int rlt_procpool_free(rlt_procpool *pool);

RLT_EXTERN_C_END

#endif
