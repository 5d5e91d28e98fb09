/*
 * Process pools, the pool's side (the worker's is procpool_child.c, the
 * wire format runtime/procpool.h).
 *
 * Each worker process is a slot: its socket, pid and pidfd. Free slots
 * wait in a channel (capacity: the pool's size), so a call takes one with
 * rlt_chan_recv, which queues callers first come first served and is a
 * suspension point (cancel, deadlines) like any other. A slot is owned by
 * the one call that took it until it is sent back: only that call touches
 * its fields, so the slots need no lock.
 *
 * Everything that leaves a slot's stream in an unknown state (the worker
 * died, the call was cancelled or timed out mid-job, a bad frame) ends in
 * replace(): SIGKILL through the pidfd, wait for the pidfd to be readable
 * (inside a shield, so the very cancellation that brought us here does not
 * cut the wait short), reap, and posix_spawn a new worker into the slot.
 * A slot whose spawn failed (pid -1) is spawned again when next taken.
 */
#include "runtime/procpool.h"

#include "ringlet/cancel.h"
#include "ringlet/chan.h"
#include "ringlet/io.h"
#include "ringlet/task.h"
#include "ringlet/time.h"

#include "io/fdgen.h"
#include "runtime/alloc.h"
#include "sched/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_PROCESSES	     1024
#define DEFAULT_SHUTDOWN_NS  ((int64_t)RLT_NSEC_PER_SEC)
#define SPAWN_CHILD_FD_FLOOR 10 /* the child's end is dup2'd to 3: keep it off 0..3 */

typedef struct slot {
	int fd;	   /* our end of the socket; -1: no process */
	int pidfd; /* -1: no process */
	pid_t pid;
} slot;

struct rlt_procpool {
	unsigned n;
	slot *slots;
	rlt_chan *idle; /* free slots */
	char *program;	/* NULL: this program */
	int64_t shutdown_ns;
	atomic_uint busy; /* calls running: rlt_procpool_free refuses while > 0 */
	atomic_uint_fast64_t jobs, crashed, killed, spawned;
};

/* ---- starting and ending workers ---- */

/* The environment of a worker: ours plus the marker. */
static char **worker_env(void)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = rlt__malloc((n + 2) * sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	static char marker[] = RLT__PP_ENV "=3";
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], RLT__PP_ENV "=", sizeof(RLT__PP_ENV)) != 0)
			env[k++] = environ[i];
	env[k++] = marker;
	env[k] = NULL;
	return env;
}

/* Start a worker in s. Returns 0 or a negative errno; s is unchanged on
 * failure (no process). */
static int spawn_worker(rlt_procpool *p, slot *s)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Both ends close-on-exec: a child spawned by another thread meanwhile
	 * inherits neither (it would hold the socket open). */
	int child = fcntl(sv[1], F_DUPFD_CLOEXEC, SPAWN_CHILD_FD_FLOOR);
	int err = errno;
	close(sv[1]);
	if (child < 0) {
		close(sv[0]);
		return -err;
	}
	char **env = worker_env();
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc = env ? 0 : ENOMEM;
	bool fa_ok = false, attr_ok = false;
	if (!rc)
		fa_ok = !(rc = posix_spawn_file_actions_init(&fa));
	if (!rc)
		attr_ok = !(rc = posix_spawnattr_init(&attr));
	if (!rc)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc) /* dup2 clears close-on-exec on the copy */
		rc = posix_spawn_file_actions_adddup2(&fa, child, RLT__PP_FD);
	if (!rc) {
		/* SIGINT blocked until the worker ignores it (child_main); the
		 * rest as for any child: empty mask, SIGPIPE/SIGXFSZ default. */
		sigset_t mask, dfl;
		sigemptyset(&mask);
		sigaddset(&mask, SIGINT);
		sigemptyset(&dfl);
		sigaddset(&dfl, SIGPIPE);
		sigaddset(&dfl, SIGXFSZ);
		rc = posix_spawnattr_setsigmask(&attr, &mask);
		if (!rc)
			rc = posix_spawnattr_setsigdefault(&attr, &dfl);
		if (!rc)
			rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
								 POSIX_SPAWN_SETSIGDEF);
	}
	pid_t pid = -1;
	if (!rc) {
		char **argv = rlt__procpool_argv();
		char *self_argv[2] = {p->program, NULL};
		const char *path = p->program ? p->program : "/proc/self/exe";
		rc = posix_spawn(&pid, path, &fa, &attr, p->program || !argv ? self_argv : argv,
				 env);
	}
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	rlt__free(env);
	close(child);
	if (rc) {
		close(sv[0]);
		return -rc;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		err = errno;
		kill(pid, SIGKILL); /* ours and unreaped: the pid is still its own */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(sv[0]);
		return -err;
	}
	s->fd = rlt__fd_new(sv[0]);
	s->pidfd = rlt__fd_new(pidfd);
	s->pid = pid;
	atomic_fetch_add_explicit(&p->spawned, 1, memory_order_relaxed);
	return 0;
}

/* Whether s's process exits within ms (0: has exited; -1: no limit),
 * with poll(2) on its pidfd: the thread blocks. */
static bool exited_within(const slot *s, int ms)
{
	struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

/* Wait up to timeout_ns (negative: no limit) for s's process to exit:
 * from a task with rlt_poll (the task suspends), else with poll(2).
 * Returns true if it did. Only the time running out says "alive": a poll
 * that failed otherwise (out of memory for the op, a fault the loop
 * policy injected) is asked again within the time, after a look at the
 * pidfd that does not wait, which also has the last word: a dead worker
 * must not be taken for a live one that broke the protocol. */
static bool wait_exit(const slot *s, int64_t timeout_ns)
{
	if (rlt__task_self()) {
		int64_t saved = rlt_io_timeout();
		uint64_t end = timeout_ns < 0 ? UINT64_MAX : rlt_now() + (uint64_t)timeout_ns;
		int ev;
		for (;;) {
			uint64_t now = rlt_now();
			if (now >= end) {
				ev = -ETIMEDOUT;
				break;
			}
			rlt_set_io_timeout(end == UINT64_MAX ? 0 : (int64_t)(end - now));
			ev = rlt_poll(s->pidfd, POLLIN);
			if (ev > 0)
				break;
			if (ev != -EINTR && ev != -EAGAIN) {
				if (exited_within(s, 0)) {
					ev = 1;
					break;
				}
				rlt_yield(); /* a failed op: not a tight loop */
			}
		}
		rlt_set_io_timeout(saved);
		return ev > 0 || exited_within(s, 0);
	}
	return exited_within(s, timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000));
}

/* End s's process: after grace_ns (negative: none) for it to exit by
 * itself, SIGKILL; then reap it and close its fds. In a task, inside a
 * shield: the wait for a killed process always completes. */
static void end_worker(slot *s, int64_t grace_ns)
{
	if (s->pid < 0)
		return;
	rlt_scope sh;
	bool shielded = rlt__task_self() && rlt_shield_enter(&sh) == 0;
	if (grace_ns < 0 || !wait_exit(s, grace_ns)) {
		syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
		wait_exit(s, -1);
	}
	if (shielded)
		rlt_scope_leave(&sh);
	siginfo_t si;
	while (waitid(P_PIDFD, (id_t)s->pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	if (s->fd >= 0)
		rlt__close_fd(s->fd);
	rlt__close_fd(s->pidfd);
	s->fd = s->pidfd = -1;
	s->pid = -1;
}

/* Whether s's process has died, once its end of the socket is gone: it
 * exits microseconds after its files are closed, so a short wait (shielded:
 * the answer decides what to tell the caller) tells a crash from a worker
 * that only closed fd 3, or from an error injected by a fault policy. */
#define DIED_WAIT_NS ((int64_t)RLT_NSEC_PER_SEC)
static bool died(const slot *s)
{
	rlt_scope sh;
	bool shielded = rlt_shield_enter(&sh) == 0;
	bool gone = wait_exit(s, DIED_WAIT_NS);
	if (shielded)
		rlt_scope_leave(&sh);
	return gone;
}

/* Kill s's process and start another in its place. Returns 0 or the
 * spawn's negative errno (s is then empty, spawned again when next taken). */
static int replace(rlt_procpool *p, slot *s)
{
	end_worker(s, -1);
	return spawn_worker(p, s);
}

/* ---- the pool ---- */

static unsigned default_processes(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static void destroy(rlt_procpool *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		slot *s = &p->slots[i];
		if (s->pid < 0)
			continue;
		/* the socket first: a worker reads end of file and exits */
		rlt__close_fd(s->fd);
		s->fd = -1;
	}
	for (unsigned i = 0; i < p->n; i++) {
		slot *s = &p->slots[i];
		if (s->pid < 0)
			continue;
		end_worker(s, p->shutdown_ns);
	}
	if (p->idle)
		rlt_chan_free(p->idle);
	rlt__free(p->slots);
	free(p->program);
	rlt__free(p);
}

rlt_procpool *rlt_procpool_create(const rlt_procpool_config *cfg)
{
	rlt_procpool_config c = cfg ? *cfg : (rlt_procpool_config){0};
	if (getenv(RLT__PP_ENV) || (!c.program && !rlt__procpool_parent_ready())) {
		errno = ENOEXEC;
		return NULL;
	}
	if (c.processes > MAX_PROCESSES) {
		errno = EINVAL;
		return NULL;
	}
	rlt_procpool *p = rlt__calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->n = c.processes ? c.processes : default_processes();
	p->shutdown_ns = c.shutdown_timeout_ns == 0  ? DEFAULT_SHUTDOWN_NS
			 : c.shutdown_timeout_ns < 0 ? -1
						     : c.shutdown_timeout_ns;
	atomic_init(&p->busy, 0);
	atomic_init(&p->jobs, 0);
	atomic_init(&p->crashed, 0);
	atomic_init(&p->killed, 0);
	atomic_init(&p->spawned, 0);
	p->slots = rlt__calloc(p->n, sizeof(slot));
	p->idle = rlt_chan_new(p->n);
	p->program = c.program ? strdup(c.program) : NULL;
	int err = ENOMEM;
	if (!p->slots || !p->idle || (c.program && !p->program))
		goto fail;
	for (unsigned i = 0; i < p->n; i++)
		p->slots[i] = (slot){.fd = -1, .pidfd = -1, .pid = -1};
	for (unsigned i = 0; i < p->n; i++) {
		int rc = spawn_worker(p, &p->slots[i]);
		if (rc < 0) {
			err = -rc;
			goto fail;
		}
		rlt_chan_try_send(p->idle, &p->slots[i]); /* room for all n */
	}
	return p;
fail:
	if (p->slots)
		destroy(p);
	else {
		rlt_chan_free(p->idle);
		free(p->program);
		rlt__free(p);
	}
	errno = err;
	return NULL;
}

/* sendmsg until all of iov has gone (MSG_NOSIGNAL: a dead worker is
 * -EPIPE, not SIGPIPE). iov is consumed. *sent: whether any byte went. */
static int send_all(int fd, struct iovec *iov, int cnt, bool *sent)
{
	*sent = false;
	while (cnt > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t n = rlt_sendmsg(fd, &m, 0);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE;
		*sent = true;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* rlt_recv_exact, with end of stream (a worker that died) as -ECHILD. */
static int recv_all(int fd, void *buf, size_t len)
{
	ssize_t n = rlt_recv_exact(fd, buf, len, 0);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -ECHILD;
}

/* An error that says the worker's end of the socket is gone: end of
 * stream (-ECHILD from recv_all), EPIPE, ECONNRESET. */
static bool peer_gone(int err)
{
	return err == -ECHILD || err == -EPIPE || err == -ECONNRESET;
}

/* One job on slot s. Returns 0 or the job's error (the stream is intact),
 * 1 with *err set when the slot must be replaced, or 2 (*err set) when the
 * first send said the worker's end is gone before any byte of the request
 * went: if it died while idle (killed from outside, out of memory), the
 * job may go to a new process. That is how idle deaths are found, at no
 * cost to a healthy worker: a Unix stream socket whose peer is closed
 * refuses the first send with EPIPE. */
static int exchange(slot *s, const char *name, size_t name_len, const void *in, size_t in_len,
		    void **out, size_t *out_len, int *err)
{
	rlt__pp_hdr h = {.magic = RLT__PP_REQ, .arg = (int32_t)name_len, .len = in_len};
	struct iovec iov[3] = {{&h, sizeof(h)}, {(void *)name, name_len}, {(void *)in, in_len}};
	bool sent;
	int rc = send_all(s->fd, iov, in_len ? 3 : 2, &sent);
	if (rc < 0 && !sent) {
		*err = rc;
		/* nothing went: the stream is intact (cancelled, timed out, out
		 * of memory), unless the worker is gone */
		return peer_gone(rc) ? 2 : rc;
	}
	if (rc == 0)
		rc = recv_all(s->fd, &h, sizeof(h));
	if (rc == 0 && (h.magic != RLT__PP_RSP || h.arg > 0 || h.len > RLT__PP_MAX_LEN ||
			(h.arg < 0 && h.len)))
		rc = -EPROTO;
	if (rc < 0) {
		*err = rc;
		return 1;
	}
	if (h.arg < 0)
		return h.arg; /* the job's error (or -ENOENT): nothing follows */
	void *buf = NULL;
	if (h.len) {
		buf = malloc(h.len); /* the caller's, freed with free() */
		if (!buf) {
			*err = -ENOMEM; /* the bytes are unread: the stream is lost */
			return 1;
		}
		rc = recv_all(s->fd, buf, h.len);
		if (rc < 0) {
			free(buf);
			*err = rc;
			return 1;
		}
	}
	if (out) {
		*out = buf;
		*out_len = h.len;
	} else {
		free(buf);
	}
	return 0;
}

int rlt_procpool_run(rlt_procpool *p, const char *name, const void *in, size_t in_len, void **out,
		     size_t *out_len)
{
	if (!p || !name || (!in && in_len) || !out != !out_len)
		return -EINVAL;
	size_t name_len = strlen(name);
	if (name_len == 0)
		return -EINVAL;
	if (name_len > RLT__PP_MAX_NAME || in_len > RLT__PP_MAX_LEN)
		return -EMSGSIZE;
	if (!rlt__task_self())
		return -EPERM;
	if (out) {
		*out = NULL;
		*out_len = 0;
	}
	atomic_fetch_add(&p->busy, 1);
	slot *s;
	int rc = rlt_chan_recv(p->idle, (void **)&s);
	if (rc < 0) {
		atomic_fetch_sub(&p->busy, 1);
		return rc;
	}
	/* The job's time is bounded by the task's deadline scopes, not by its
	 * per-operation I/O timeout (a job may compute for minutes). */
	int64_t saved = rlt_io_timeout();
	rlt_set_io_timeout(0);
	if (s->pid < 0) /* its last spawn failed */
		rc = spawn_worker(p, s);
	if (rc == 0) {
		int err = 0;
		rc = exchange(s, name, name_len, in, in_len, out, out_len, &err);
		if (rc == 2 && died(s)) { /* while idle: once more on a new process */
			int sr = replace(p, s);
			rc = sr < 0 ? 3
				    : exchange(s, name, name_len, in, in_len, out, out_len, &err);
			err = sr < 0 ? sr : err;
			rc = rc == 2 ? 1 : rc;
		} else if (rc == 2) {
			rc = err; /* alive (an injected fault?), and nothing was sent */
		}
		if (rc == 3) {
			rc = err; /* no new process: the slot is spawned again next time */
		} else if (rc == 1) {
			/* The stream is in doubt. A crash is told from an I/O error
			 * by the process: gone, or alive (and killed now). */
			if (peer_gone(err))
				err = died(s) ? -ECHILD : err == -ECHILD ? -EPROTO : err;
			atomic_fetch_add_explicit(err == -ECHILD ? &p->crashed : &p->killed, 1,
						  memory_order_relaxed);
			replace(p, s); /* a failed spawn is tried again next time */
			rc = err;
		} else {
			atomic_fetch_add_explicit(&p->jobs, 1, memory_order_relaxed);
		}
	}
	rlt_set_io_timeout(saved);
	rlt_chan_try_send(p->idle, s); /* never full: n slots, n places */
	atomic_fetch_sub(&p->busy, 1);
	return rc;
}

int rlt_procpool_get_stats(const rlt_procpool *p, rlt_procpool_stats *out)
{
	if (!p || !out)
		return -EINVAL;
	rlt_procpool *m = (rlt_procpool *)p;
	out->processes = p->n;
	out->jobs = atomic_load_explicit(&m->jobs, memory_order_relaxed);
	out->crashed = atomic_load_explicit(&m->crashed, memory_order_relaxed);
	out->killed = atomic_load_explicit(&m->killed, memory_order_relaxed);
	out->spawned = atomic_load_explicit(&m->spawned, memory_order_relaxed);
	return 0;
}

int rlt_procpool_free(rlt_procpool *p)
{
	if (!p)
		return 0;
	if (atomic_load(&p->busy))
		return -EBUSY;
	destroy(p);
	return 0;
}
