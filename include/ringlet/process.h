#ifndef RINGLET_PROCESS_H
#define RINGLET_PROCESS_H

#include "common.h"

#include <stddef.h>
#include <stdint.h>

RLT_EXTERN_C_BEGIN

/*
 * Child processes: asyncio's create_subprocess_exec.
 *
 *	const char *argv[] = {"sort", NULL};
 *	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
 *	    .argv = argv, .stdin_mode = RLT_PROC_PIPE, .stdout_mode = RLT_PROC_PIPE});
 *	rlt_write_all(rlt_process_stdin_fd(p), "b\na\n", 4, -1);
 *	rlt_process_close_stdin(p);
 *	n = rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf), -1);
 *	rlt_process_wait(p, -1, &status);     // suspends this task only
 *	rlt_process_free(p);
 *
 * The child is started with posix_spawnp() (a vfork-style clone: the
 * calling thread is held only until the child has called execve) and is
 * then tracked through a pidfd, so its pid cannot be recycled under us.
 * Its exit is awaited with IORING_OP_WAITID (WNOWAIT) where the loop has it
 * (io_uring, Linux 6.7), else with rlt_poll() on the pidfd (every loop
 * policy), and reaped with waitid(P_PIDFD, WNOHANG): no SIGCHLD handler, no
 * blocking wait on a live child. Requires Linux 5.4.
 *
 * Pipes are the parent's ends, close-on-exec, in blocking mode; read and
 * write them with rlt_read()/rlt_write()/rlt_read_full()/rlt_write_all(),
 * which suspend only the calling task. The child gets plain fds 0, 1 and 2
 * and inherits none of ringlet's.
 *
 * The child starts with an empty signal mask, and SIGPIPE and SIGXFSZ at
 * their default action even if this process ignores them (as Python's
 * subprocess does): a child writing to a closed pipe dies as it would from
 * a shell.
 *
 * Threads: a handle belongs to one task at a time, with two exceptions:
 * rlt_process_kill() may be called from any task or thread while another
 * task waits, and the pipe fds may be used by different tasks at once
 * (a writer task on stdin and a reader task on stdout, the usual way to
 * avoid a pipe deadlock). Several tasks may wait for the child at once
 * (rlt_process_wait): each gets its exit status.
 *
 * Do not set SIGCHLD to SIG_IGN: the kernel would then reap the children
 * itself, and waits would fail with -ECHILD.
 */

typedef struct rlt_process rlt_process;

/* What a child's stdin, stdout or stderr is connected to. */
typedef enum rlt_proc_stdio {
	RLT_PROC_INHERIT = 0, /* this process's own fd 0/1/2 (the default) */
	RLT_PROC_PIPE,	      /* a pipe; the parent's end is rlt_process_*_fd() */
	RLT_PROC_DEVNULL,     /* /dev/null */
	RLT_PROC_STDOUT,      /* stderr only: wherever the child's stdout goes */
} rlt_proc_stdio;

typedef struct rlt_process_opts {
	/* The program and its arguments, NULL-terminated; argv[0] is looked
	 * up in PATH as execvp() does unless it contains a '/' (this
	 * process's PATH, not envp's). Required. */
	const char *const *argv;
	/* The environment, NULL-terminated; NULL inherits this process's. */
	const char *const *envp;
	/* The child's working directory; NULL inherits ours. A relative
	 * argv[0] with a '/' is resolved from there. */
	const char *cwd;
	/* Zero (RLT_PROC_INHERIT) for all three inherits them, like asyncio. */
	rlt_proc_stdio stdin_mode;
	rlt_proc_stdio stdout_mode;
	rlt_proc_stdio stderr_mode;
} rlt_process_opts;

/*
 * Start a child. Never suspends; may be called from any thread, in a task
 * or not. The calling thread is held until the child has exec'd (or
 * failed to): typically a few hundred microseconds.
 *
 * Returns the handle, or NULL with errno:
 *   EINVAL   opts or opts->argv or argv[0] NULL, a mode out of range, or
 *            RLT_PROC_STDOUT for stdin or stdout
 *   ENOENT   the program is not found (in PATH), or cwd does not exist
 *   EACCES, ENOEXEC, E2BIG, ...   what execve() or chdir() said
 *   EMFILE, ENFILE, ENOMEM, EAGAIN   no fd, memory or process to spare
 *   ENOSYS   the kernel has no pidfd_open (older than 5.3)
 * On failure nothing is left behind: no fd, no child, no zombie.
 */
RLT_API rlt_process *rlt_process_spawn(const rlt_process_opts *opts);

/* The child's pid (stays valid after it is reaped, for messages). */
RLT_API int rlt_process_pid(const rlt_process *p);

/* The parent's end of the child's stdin (write to it), stdout or stderr
 * (read from them), or -1 if that stream is not RLT_PROC_PIPE (or stdin
 * was closed). The handle owns these fds: close stdin with
 * rlt_process_close_stdin(), never with close(). */
RLT_API int rlt_process_stdin_fd(const rlt_process *p);
RLT_API int rlt_process_stdout_fd(const rlt_process *p);
RLT_API int rlt_process_stderr_fd(const rlt_process *p);

/* Close the child's stdin pipe, so that it reads end of file (asyncio's
 * proc.stdin.close()). Never suspends. Returns 0 (also when there is no
 * stdin pipe or it is already closed) or a negative errno from close(2). */
RLT_API int rlt_process_close_stdin(rlt_process *p);

/*
 * Wait until the child exits, at most timeout_ns nanoseconds (a negative
 * timeout waits forever; 0 only checks), and reap it. Suspends the calling
 * task only. On success stores the exit status in *status (if status is
 * not NULL) in waitpid(2)'s form: test it with WIFEXITED/WEXITSTATUS,
 * WIFSIGNALED/WTERMSIG/WCOREDUMP. Once reaped, later calls return 0 and
 * the same status at once. Several tasks may wait at once, on any
 * workers: one of them reaps, and every one returns 0 and the status,
 * under every loop policy (the kernel is asked with WNOWAIT, and the reap
 * is ringlet's).
 *
 * The task's I/O timeout (rlt_set_io_timeout) does not apply: timeout_ns
 * does, and the task's own setting is left as it was.
 *
 * Returns 0, or:
 *   -ETIMEDOUT  timeout_ns passed first, or the task's deadline scope
 *               expired; the child is still running and can be waited
 *               for again (or killed)
 *   -ECANCELED  the task was cancelled; likewise
 *   -EPERM      not called from a task (and timeout_ns is not 0)
 *   -EINVAL     p is NULL
 *   -ECHILD     the child was reaped behind our back (SIGCHLD set to
 *               SIG_IGN, or a waitpid(-1) elsewhere in the program)
 *   -ENOMEM     the loop could not wait (and any other error of
 *               rlt_poll() but -EINTR and -EAGAIN, which are retried)
 */
RLT_API int rlt_process_wait(rlt_process *p, int64_t timeout_ns, int *status);

/* Send sig to the child (pidfd_send_signal(2)); never suspends, any thread.
 * Only the child: processes it started itself are not signalled.
 * Returns 0, or -EINVAL (p NULL, bad signal), -ESRCH (already exited and
 * reaped; a child that exited but is not reaped yet takes the signal
 * silently), -EPERM. */
RLT_API int rlt_process_kill(rlt_process *p, int sig);

/*
 * Release the handle: close the pipes and the pidfd and free it. NULL is
 * ignored. A child not reaped yet is killed with SIGKILL and reaped, so no
 * zombie is left: from a task, the task suspends (rlt_poll on the pidfd,
 * without the task's I/O timeout) until the killed child is gone, then
 * reaps it; outside a task, the thread blocks in waitid() until the
 * killed child has exited (a killed child exits at once unless it is in
 * an uninterruptible kernel wait). Wait first if the exit status matters.
 * Join the tasks that use the pipe fds first: they are closed here.
 */
RLT_API void rlt_process_free(rlt_process *p);

/*
 * Run argv (as rlt_process_spawn, stdin from /dev/null, stderr inherited),
 * collect its stdout and wait for it: subprocess.run(capture_output) in
 * one call. Suspends the calling task.
 *
 * The first *outlen bytes of stdout go to out (not NUL-terminated); the
 * rest is read and discarded, so a chatty child never blocks on a full
 * pipe. *outlen is set to the number of bytes stored. out and outlen may
 * both be NULL: stdout then goes to /dev/null.
 *
 * timeout_ns (negative: none; 0 expires at once) bounds the whole run.
 * When it passes, the child is killed with SIGKILL and reaped, *status
 * says so, *outlen holds what came before, and the call returns
 * -ETIMEDOUT. Reading ends at end of file on stdout: a grandchild that
 * keeps the pipe open keeps the call waiting, up to the timeout. Only the
 * child is killed; a grandchild gets SIGPIPE if it writes to stdout after
 * that (the pipe is closed).
 *
 * Returns 0 (the status, whatever the exit code, is in *status, which may
 * be NULL), -ETIMEDOUT (also when the task's deadline scope expires),
 * -ECANCELED (the task was cancelled; the child is killed and reaped as
 * for a timeout), -EINVAL (argv NULL or empty, out NULL with outlen
 * not NULL or the reverse), -EPERM outside a task, the errors of
 * rlt_process_spawn() as negative errnos, or a read error from the pipe
 * (then the child is killed and reaped too).
 */
RLT_API int rlt_process_run(const char *const argv[], char *out, size_t *outlen, int64_t timeout_ns,
			    int *status);

RLT_EXTERN_C_END

#endif
