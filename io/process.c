/*
 * Child processes: posix_spawnp() for the start, a pidfd for the rest.
 *
 * Why a pidfd: a plain pid may be reaped and recycled by the time we signal
 * or wait for it; the pidfd names this one process for as long as we hold
 * it. It also gives the loop something to wait on: it turns readable when
 * the child exits, so rlt_poll() suspends a waiting task under any loop
 * policy, and waitid(P_PIDFD, WNOHANG) then reaps without blocking. No
 * SIGCHLD handler, no reaper thread.
 *
 * The pid is known only after posix_spawnp() returns and the pidfd is taken
 * right after. Nothing can reap the child in between (it is ours and we have
 * not waited), so the pid cannot have been recycled yet: pidfd_open() finds
 * this child, exited or not. (Unless the program reaps children it does not
 * own, with SIGCHLD at SIG_IGN or waitpid(-1); process.h says not to.)
 *
 * Every fd this file makes is close-on-exec, so a child spawned by another
 * thread at the same moment inherits none of them: an inherited write end
 * would hold a pipe open and its reader would never see end of file.
 */
#include "ringlet/process.h"

#include "ringlet/cancel.h"
#include "ringlet/io.h"
#include "ringlet/time.h"

#include "io/fdgen.h"
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/sched.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* rlt_process.reap: who has collected the child. Several tasks may wait
 * at once; exactly one of them reaps (the one that moves LIVE to BUSY) and
 * publishes the status with DONE (release); the others see DONE (acquire)
 * and return the same status. */
enum { R_LIVE, R_BUSY, R_DONE };

struct rlt_process {
	int pid;
	int pidfd;
	int fd[3];	 /* the parent's ends: stdin (write), stdout, stderr (read); -1: none */
	int status;	 /* waitpid(2)-style, valid once reap is R_DONE */
	atomic_int reap; /* R_*: DONE once waitid() has collected the child */
};

/* ---- spawning ---- */

/* A close-on-exec pipe whose ends are both >= 3. A process started with fd
 * 0, 1 or 2 closed would otherwise get a pipe end there, and the child's
 * dup2() onto 0/1/2 could overwrite one pipe with another before using it. */
static int pipe_above_stdio(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 3)
			continue;
		int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
		int err = errno;
		close(p[i]);
		p[i] = fd;
		if (fd < 0) {
			if (p[!i] >= 0)
				close(p[!i]);
			return -err;
		}
	}
	rlt__fd_new(p[0]);
	rlt__fd_new(p[1]);
	return 0;
}

/* Through rlt__close_fd: a loop may have registered the fd (io/fdgen.h). */
static void close_fd(int *fd)
{
	if (*fd >= 0)
		rlt__close_fd(*fd);
	*fd = -1;
}

/* Undo a child we could not get a pidfd for: it is ours and unreaped, so
 * its pid is still its own; SIGKILL then a blocking waitpid of a child
 * that is already dying. */
static void kill_and_reap_pid(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static bool mode_ok(rlt_proc_stdio m, int stream)
{
	switch (m) {
	case RLT_PROC_INHERIT:
	case RLT_PROC_PIPE:
	case RLT_PROC_DEVNULL:
		return true;
	case RLT_PROC_STDOUT:
		return stream == 2;
	}
	return false;
}

/* Fill the file actions for one of the child's fds 0/1/2; a pipe's child
 * end goes to *child (closed by the caller after the spawn), its parent's
 * end to p->fd[stream]. Returns 0 or a positive errno (posix_spawn style). */
static int plan_stream(posix_spawn_file_actions_t *fa, rlt_process *p, int stream,
		       rlt_proc_stdio mode, int *child)
{
	switch (mode) {
	case RLT_PROC_INHERIT:
		return 0;
	case RLT_PROC_PIPE: {
		int pp[2];
		int rc = pipe_above_stdio(pp);
		if (rc < 0)
			return -rc;
		/* stdin: the child reads pp[0], we write pp[1]; the others the reverse */
		*child = stream == 0 ? pp[0] : pp[1];
		p->fd[stream] = stream == 0 ? pp[1] : pp[0];
		/* dup2 clears close-on-exec on the copy: the child keeps only it */
		return posix_spawn_file_actions_adddup2(fa, *child, stream);
	}
	case RLT_PROC_DEVNULL:
		return posix_spawn_file_actions_addopen(fa, stream, "/dev/null",
							stream == 0 ? O_RDONLY : O_WRONLY, 0);
	case RLT_PROC_STDOUT:
		/* after fd 1's own action: the actions run in order */
		return posix_spawn_file_actions_adddup2(fa, 1, 2);
	}
	return EINVAL;
}

/* The child's signals: an empty mask (a worker's mask is not the child's
 * business), and SIGPIPE/SIGXFSZ back to their default even if we ignore
 * them (ignored signals survive execve). Python's restore_signals does
 * the same. */
static int plan_signals(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	int rc = posix_spawnattr_setsigmask(attr, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(attr, &dfl);
	if (!rc)
		rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	return rc;
}

rlt_process *rlt_process_spawn(const rlt_process_opts *o)
{
	if (!o || !o->argv || !o->argv[0] || !mode_ok(o->stdin_mode, 0) ||
	    !mode_ok(o->stdout_mode, 1) || !mode_ok(o->stderr_mode, 2)) {
		errno = EINVAL;
		return NULL;
	}
	rlt_process *p = rlt__calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->pid = -1;
	p->pidfd = -1;
	p->fd[0] = p->fd[1] = p->fd[2] = -1;
	int child[3] = {-1, -1, -1};

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc)
		goto out_free;
	rc = posix_spawnattr_init(&attr);
	if (rc)
		goto out_fa;
	rc = plan_signals(&attr);
	if (!rc && o->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
	const rlt_proc_stdio modes[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
	for (int i = 0; i < 3 && !rc; i++)
		rc = plan_stream(&fa, p, i, modes[i], &child[i]);

	pid_t pid = -1;
	if (!rc) {
		/* glibc's posix_spawnp is clone(CLONE_VM | CLONE_VFORK): it
		 * returns once the child has exec'd, and reports exec's error
		 * (ENOENT for a missing program) itself. */
		rc = posix_spawnp(&pid, o->argv[0], &fa, &attr, (char *const *)o->argv,
				  o->envp ? (char *const *)o->envp : environ);
	}
	for (int i = 0; i < 3; i++)
		close_fd(&child[i]);
	posix_spawnattr_destroy(&attr);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		goto out_free;

	p->pid = pid;
	p->pidfd = rlt__fd_new((int)syscall(SYS_pidfd_open, pid, 0)); /* close-on-exec by default */
	if (p->pidfd < 0) {
		rc = errno;
		kill_and_reap_pid(pid);
		goto out_free;
	}
	return p;

out_free:
	for (int i = 0; i < 3; i++)
		close_fd(&p->fd[i]);
	rlt__free(p);
	errno = rc;
	return NULL;
}

/* ---- accessors ---- */

int rlt_process_pid(const rlt_process *p)
{
	return p ? p->pid : -1;
}
int rlt_process_stdin_fd(const rlt_process *p)
{
	return p ? p->fd[0] : -1;
}
int rlt_process_stdout_fd(const rlt_process *p)
{
	return p ? p->fd[1] : -1;
}
int rlt_process_stderr_fd(const rlt_process *p)
{
	return p ? p->fd[2] : -1;
}

/* A plain close(): closing a pipe end never blocks, and it works outside a
 * task too. (rlt_close would go through the loop policy for nothing.) */
int rlt_process_close_stdin(rlt_process *p)
{
	if (!p || p->fd[0] < 0)
		return 0;
	int fd = p->fd[0];
	p->fd[0] = -1;
	/* Linux frees the fd even when close reports an error: never retry */
	return rlt__close_fd(fd);
}

int rlt_process_kill(rlt_process *p, int sig)
{
	if (!p)
		return -EINVAL;
	/* Reads only pidfd, which is constant while the handle lives: safe
	 * while another task waits. After the reap, the kernel says ESRCH. */
	return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* ---- waiting ---- */

/* waitid's siginfo as a waitpid status, so the W* macros apply. */
static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return W_EXITCODE(si->si_status & 0xff, 0);
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | WCOREFLAG;
	default: /* CLD_KILLED: WEXITED reports nothing else */
		return si->si_status & 0x7f;
	}
}

/* Reap the child if it has exited. flags: WNOHANG, or 0 for a child known
 * to be dead. Returns 1 (reaped, by us or by another waiter: p->status is
 * valid), 0 (still running), 2 (another task is reaping it right now: ask
 * again after a yield) or a negative errno (-ECHILD: reaped behind our
 * back). */
static int reap(rlt_process *p, int flags)
{
	int st = atomic_load_explicit(&p->reap, memory_order_acquire);
	if (st == R_DONE)
		return 1;
	if (st == R_BUSY || !atomic_compare_exchange_strong_explicit(
				&p->reap, &st, R_BUSY, memory_order_acquire, memory_order_acquire))
		return st == R_DONE ? 1 : 2;
	siginfo_t si;
	int rc = 1;
	for (;;) {
		si.si_pid = 0; /* WNOHANG with nothing to report leaves si alone */
		if (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | flags) == 0)
			break;
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	if (rc == 1 && si.si_pid == 0)
		rc = 0;
	if (rc == 1)
		p->status = wait_status(&si);
	atomic_store_explicit(&p->reap, rc == 1 ? R_DONE : R_LIVE, memory_order_release);
	return rc;
}

static inline bool reaped(rlt_process *p)
{
	return atomic_load_explicit(&p->reap, memory_order_acquire) == R_DONE;
}

/* An error of a wait that the loops here go round on: a fault policy's
 * -EINTR/-EAGAIN, and the -ETIMEDOUT of the I/O timeout they set to their
 * own deadline. Not the -ETIMEDOUT of an expired deadline scope (it would
 * come back at once, forever) nor -ECANCELED. */
static bool retry_wait(int err)
{
	return err == -EINTR || err == -EAGAIN ||
	       (err == -ETIMEDOUT && !rlt__scope_expired(rlt__task_self()));
}

/* reap(), with another waiter's reap in progress waited out (a system
 * call's length: yield until it is done). */
static int reap_now(rlt_process *p)
{
	int rc;
	while ((rc = reap(p, WNOHANG)) == 2)
		if (!rlt__task_self() || rlt_yield() == -ECANCELED)
			return rlt__task_self() ? -ECANCELED : 0;
	return rc;
}

int rlt_process_wait(rlt_process *p, int64_t timeout_ns, int *status)
{
	if (!p)
		return -EINVAL;
	int rc = reap_now(p);
	if (rc == 0 && timeout_ns == 0)
		rc = -ETIMEDOUT;
	else if (rc == 0 && !rlt__task_self())
		rc = -EPERM;
	if (rc != 0)
		goto out;

	/* The timeout is carried by rlt_poll's I/O timeout, set to what is left
	 * before each poll; the task's own setting comes back afterwards. */
	uint64_t deadline = timeout_ns > 0 ? rlt_now() + (uint64_t)timeout_ns : 0;
	int64_t saved = rlt_io_timeout();
	/* Where the loop can (io_uring, Linux 6.7: IORING_OP_WAITID), the
	 * kernel wakes us when the child exits; elsewhere (epoll: -EOPNOTSUPP;
	 * older kernels: -EINVAL) we wait for the pidfd to be readable. Either
	 * way the kernel only tells (WNOWAIT): the reap is reap()'s, so that of
	 * several tasks waiting for the child one reaps and all get its status,
	 * under every policy. */
	bool by_waitid = true;
	for (;;) {
		int64_t left = 0; /* 0: no limit */
		if (deadline) {
			uint64_t now = rlt_now();
			if (now >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			left = (int64_t)(deadline - now);
		}
		rlt_set_io_timeout(left);
		int ev;
		if (by_waitid) {
			siginfo_t si;
			si.si_pid = 0;
			ev = rlt_waitid(P_PIDFD, (unsigned)p->pidfd, &si, WEXITED | WNOWAIT);
			if (ev == -EOPNOTSUPP || ev == -EINVAL) {
				by_waitid = false;
				continue;
			}
			if (ev == -ECHILD)
				ev = 0; /* reaped already: reap() says by whom */
			else if (ev == 0)
				ev = si.si_pid ? 1 : 0;
		} else {
			ev = rlt_poll(p->pidfd, POLLIN);
		}
		/* -EINTR/-EAGAIN (a fault policy), -ETIMEDOUT of our own limit:
		 * look, then go round */
		if (ev < 0 && !retry_wait(ev)) {
			rc = ev;
			break;
		}
		rc = reap_now(p);
		if (rc != 0)
			break;
		/* Ready yet nothing to reap would make this loop spin on the
		 * worker; no kernel we support does that, but do not trust it. */
		if (ev > 0)
			rlt_sleep(RLT_NSEC_PER_MSEC);
	}
	rlt_set_io_timeout(saved);
out:
	if (rc < 0)
		return rc;
	if (status)
		*status = p->status;
	return 0;
}

/* ---- freeing ---- */

void rlt_process_free(rlt_process *p)
{
	if (!p)
		return;
	for (int i = 0; i < 3; i++)
		close_fd(&p->fd[i]);
	if (!reaped(p) && reap(p, WNOHANG) == 0) {
		/* The reap below blocks: the child must be dying. An unreaped
		 * child keeps its pid, so kill() is a safe second try. */
		if (rlt_process_kill(p, SIGKILL) < 0)
			kill(p->pid, SIGKILL);
		if (rlt__task_self()) {
			/* Let the worker run other tasks while the child dies. */
			int64_t saved = rlt_io_timeout();
			rlt_set_io_timeout(0);
			int ev;
			do
				ev = rlt_poll(p->pidfd, POLLIN);
			while (ev == -EINTR || ev == -EAGAIN);
			rlt_set_io_timeout(saved);
		}
		/* Dead or dying: this blocks only until SIGKILL has done its work
		 * (at once, after a successful poll). */
		reap(p, 0);
	}
	close_fd(&p->pidfd);
	rlt__free(p);
}

/* ---- run ---- */

/* Time left before deadline (0: none), as a timeout: -1 none, 0 passed. */
static int64_t time_left(uint64_t deadline)
{
	if (!deadline)
		return -1;
	uint64_t now = rlt_now();
	return now >= deadline ? 0 : (int64_t)(deadline - now);
}

/* Read stdout to end of file, keeping the first cap bytes in out; *got is
 * what was kept. Returns 0 at end of file or a negative errno. */
static int collect(int fd, char *out, size_t cap, size_t *got, uint64_t deadline)
{
	char scratch[4096]; /* the overflow, dropped */
	int64_t saved = rlt_io_timeout();
	int rc;
	for (;;) {
		int64_t left = time_left(deadline);
		if (left == 0) {
			rc = -ETIMEDOUT;
			break;
		}
		rlt_set_io_timeout(left > 0 ? left : 0);
		bool keep = *got < cap;
		ssize_t n = keep ? rlt_read(fd, out + *got, cap - *got, -1)
				 : rlt_read(fd, scratch, sizeof(scratch), -1);
		if (n == 0) {
			rc = 0;
			break;
		}
		if (n < 0) {
			/* our own -ETIMEDOUT comes with the deadline, seen at the top */
			if (retry_wait((int)n))
				continue;
			rc = (int)n;
			break;
		}
		if (keep)
			*got += (size_t)n;
	}
	rlt_set_io_timeout(saved);
	return rc;
}

int rlt_process_run(const char *const argv[], char *out, size_t *outlen, int64_t timeout_ns,
		    int *status)
{
	if (!argv || !argv[0] || !out != !outlen)
		return -EINVAL;
	if (!rlt__task_self())
		return -EPERM;
	uint64_t deadline = 0;
	if (timeout_ns >= 0) {
		deadline = rlt_now() + (uint64_t)timeout_ns;
		deadline += !deadline; /* 0 means none */
	}
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv,
	    .stdin_mode = RLT_PROC_DEVNULL,
	    .stdout_mode = out ? RLT_PROC_PIPE : RLT_PROC_DEVNULL,
	});
	if (!p)
		return -errno;

	size_t got = 0;
	int rc = out ? collect(p->fd[1], out, *outlen, &got, deadline) : 0;
	if (outlen)
		*outlen = got;
	close_fd(&p->fd[1]);
	int st = 0;
	if (rc == 0)
		rc = rlt_process_wait(p, time_left(deadline), &st);
	if (rc < 0) {
		/* timed out, cancelled or failed: no child outlives the call. A
		 * shield, so that the wait for the killed child is not cut short
		 * by the very cancel or deadline that brought us here. */
		rlt_process_kill(p, SIGKILL);
		rlt_scope sh;
		rlt_shield_enter(&sh);
		/* A wait that fails (out of memory for the op, a fault the loop
		 * policy injected) must not leave a status the child did not
		 * have: it is dying of SIGKILL, so wait again (the wait's first
		 * step is a reap that does not wait). Only a reap that fails
		 * for good (-ECHILD: not ours) ends the loop without one. */
		while (rlt_process_wait(p, -1, &st) < 0) {
			if (reap_now(p) < 0) {
				st = 0; /* rlt_process_free says */
				break;
			}
			rlt_yield();
		}
		rlt_scope_leave(&sh);
	}
	if (status)
		*status = st;
	rlt_process_free(p);
	return rc;
}
