/*
 * rlt_sendfile: a file's bytes to a socket (or a pipe) without copying
 * them through user space.
 *
 * Under a policy that carries RLT_OP_SPLICE (io_uring, io_uring-sqpoll),
 * each chunk is two splices through a pipe: file -> pipe (the page
 * cache's pages are referenced, not copied), then pipe -> output, the
 * latter repeated until the pipe is empty. The kernel runs both in its
 * io-wq threads: the worker only submits and reaps. The pipe is the
 * task's for the length of the call: taken from its worker's cache (or
 * made) and given back, empty, to the cache of whichever worker the task
 * is on by then. A call that fails may leave bytes in it (an error or a
 * cancellation between the two splices): that pipe is closed instead.
 *
 * Elsewhere (a policy without RLT_OP_SPLICE in its native_ops, like
 * epoll, or one that answers the first splice with -EOPNOTSUPP before
 * anything moved): sendfile(2) with O_NONBLOCK set on the output for the
 * length of each call (restored at once; as the epoll policy does for
 * accept and connect) and SIGPIPE blocked in the thread (sendfile has no
 * MSG_NOSIGNAL), and rlt_poll(POLLOUT) when the output is full. The
 * file side is read synchronously, from the page cache or the disk, as
 * epoll does for every regular-file read.
 */
#include "ringlet/io.h"

#include "io/fdgen.h"
#include "io/ops.h"
#include "runtime/cancel.h"
#include "sched/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The pipe's size, and so the largest chunk: one file -> pipe splice and
 * one pipe -> socket splice per this many bytes. Linux's default pipe
 * (64 KiB) takes four round trips through io-wq for a 256 KiB file: 19.9k
 * files/s (19.4-20.4k) against 29.5k (28.0-30.6k) with 1 MiB
 * (bench_sendfile -q -p io_uring, 4 connections, noisy 2-core VM). 1 MiB
 * is fs.pipe-max-size's default, the most an unprivileged process may ask. Where the kernel refuses
 * (a user over fs.pipe-user-pages-soft), the pipe keeps the size it has. */
#define SENDFILE_PIPE (1024 * 1024)

/* A pipe for the calling task: from its worker's cache, or a new one. */
static int pipe_get(rlt__pipe *p)
{
	rlt__worker *w = rlt__worker_self();
	if (w->npipes) {
		*p = w->pipes[--w->npipes];
		return 0;
	}
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	p->r = rlt__fd_new(fds[0]);
	p->w = rlt__fd_new(fds[1]);
	int cap = fcntl(p->w, F_SETPIPE_SZ, SENDFILE_PIPE);
	if (cap < 0)
		cap = fcntl(p->w, F_GETPIPE_SZ);
	p->cap = cap > 0 ? (unsigned)cap : 65536u;
	return 0;
}

/* Give p back: to the cache of the worker the task is on now if it is
 * empty (clean), else close it. */
static void pipe_put(rlt__pipe *p, bool clean)
{
	rlt__worker *w = rlt__worker_self();
	if (clean && w && w->npipes < RLT__PIPE_CACHE) {
		w->pipes[w->npipes++] = *p;
		return;
	}
	rlt__close_fd(p->r);
	rlt__close_fd(p->w);
}

void rlt__sendfile_worker_fini(rlt__worker *w)
{
	while (w->npipes) {
		rlt__pipe *p = &w->pipes[--w->npipes];
		rlt__close_fd(p->r);
		rlt__close_fd(p->w);
	}
}

/* An interrupted splice moved nothing (the kernel returns the count when
 * something did): try again; a cancellation behind it is delivered by the
 * next suspension point. -ERESTARTSYS can leak out of an io-wq thread
 * that was signalled to stop. */
static inline bool interrupted(ssize_t n)
{
	return n == -EINTR || n == -512 /* ERESTARTSYS */;
}

/* The splice path. Returns the bytes sent, or a negative errno; *fallback
 * when the policy cannot splice (nothing moved). */
static ssize_t via_pipe(int out_fd, int in_fd, int64_t off, size_t len, bool *fallback)
{
	rlt__pipe p = {-1, -1, 0};
	int rc = pipe_get(&p);
	if (rc < 0)
		return rc;
	size_t sent = 0;
	ssize_t err = 0;
	while (sent < len) {
		size_t chunk = len - sent < p.cap ? len - sent : p.cap;
		ssize_t n = rlt__splice(in_fd, off < 0 ? -1 : off + (int64_t)sent, p.w, -1, chunk,
					SPLICE_F_NONBLOCK);
		if (n == 0)
			break; /* the file ended */
		if (n < 0) {
			if (interrupted(n))
				continue;
			if (sent == 0 && (n == -EOPNOTSUPP || n == -EINVAL)) {
				*fallback = true; /* the pipe is still empty */
				pipe_put(&p, true);
				return 0;
			}
			err = n;
			break;
		}
		/* Now n bytes wait in the pipe. More to come: SPLICE_F_MORE,
		 * MSG_MORE for the socket (never on the last chunk: TCP would
		 * hold it back). */
		size_t in_pipe = (size_t)n;
		unsigned more = sent + in_pipe < len ? SPLICE_F_MORE : 0;
		while (in_pipe) {
			ssize_t m = rlt__splice(p.r, -1, out_fd, -1, in_pipe, more);
			if (m > 0) {
				in_pipe -= (size_t)m;
				sent += (size_t)m;
				continue;
			}
			if (interrupted(m))
				continue;
			if (m == -EAGAIN) {
				/* An O_NONBLOCK output that is full. */
				int ev = rlt_poll(out_fd, POLLOUT);
				if (ev >= 0 || interrupted(ev))
					continue;
				m = ev;
			}
			err = m == 0 ? -EIO : m; /* 0: no progress, it would spin */
			break;
		}
		if (err)
			break;
	}
	pipe_put(&p, err == 0);
	return err ? err : (ssize_t)sent;
}

/* One sendfile(2) that neither blocks nor raises SIGPIPE: O_NONBLOCK on
 * the output and SIGPIPE blocked in this thread, both for the length of
 * the call (sendfile has no MSG_NOSIGNAL); a SIGPIPE it queued for the
 * thread is taken before the mask is restored. Returns the count or a
 * negative errno. */
static ssize_t sendfile_nb(int out_fd, int in_fd, off_t *off, size_t len)
{
	int fl = fcntl(out_fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(out_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t n = sendfile(out_fd, in_fd, off, len);
	int e = n < 0 ? errno : 0;
	if (e == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!(fl & O_NONBLOCK))
		fcntl(out_fd, F_SETFL, fl);
	return n < 0 ? -e : n;
}

/* The sendfile(2) path, for policies that cannot splice. */
static ssize_t via_sendfile(rlt_task *t, int out_fd, int in_fd, int64_t off, size_t len)
{
	size_t sent = 0;
	while (sent < len) {
		int rc = rlt__cancel_point(t);
		if (rc < 0)
			return rc;
		off_t o = (off_t)off + (off_t)sent;
		ssize_t n = sendfile_nb(out_fd, in_fd, off < 0 ? NULL : &o, len - sent);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* the file ended */
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN)
			return n;
		int ev = rlt_poll(out_fd, POLLOUT);
		if (ev < 0 && !interrupted(ev))
			return ev;
	}
	return (ssize_t)sent;
}

ssize_t rlt_sendfile(int out_fd, int in_fd, off_t offset, size_t len)
{
	rlt_task *t = rlt__task_self();
	if (!t)
		return -EPERM;
	if (offset < -1 || len > SSIZE_MAX)
		return -EINVAL;
	struct stat st;
	if (fstat(in_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	if (S_ISREG(st.st_mode)) {
		/* Up to the end of the file as it is now: no splice is spent
		 * finding the end. */
		off_t at = offset;
		if (at < 0 && (at = lseek(in_fd, 0, SEEK_CUR)) < 0)
			return -errno;
		size_t left = st.st_size > at ? (size_t)(st.st_size - at) : 0;
		if (len > left)
			len = left;
	}
	if (len == 0)
		return 0;
	/* A policy that does not list splice among its native ops (epoll)
	 * is not asked: no pipe, no op that fails. One that lists it and
	 * answers -EOPNOTSUPP anyway (fault wrapping epoll) falls back too. */
	bool fallback = !rlt__op_native(t, RLT_OP_SPLICE);
	ssize_t n = 0;
	if (!fallback)
		n = via_pipe(out_fd, in_fd, offset, len, &fallback);
	if (fallback)
		n = via_sendfile(t, out_fd, in_fd, offset, len);
	return n;
}
