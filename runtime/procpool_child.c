/*
 * The process pool's worker side, and the job registry.
 *
 * A worker is this program started again with RINGLET_PROCPOOL_WORKER in
 * its environment and its end of the pool's socket on fd 3. Its main()
 * registers the jobs and calls rlt_procpool_child_main(), which finds the
 * variable and serves: read a request, run the job, write the response,
 * with plain blocking system calls (a worker is single-threaded and runs
 * one job at a time; no runtime is started). End of file on the socket
 * means the pool is gone: the worker exits.
 */
#include "runtime/procpool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the registry (plain malloc: the worker side has no runtime) ---- */

typedef struct job {
	char name[RLT__PP_MAX_NAME + 1];
	size_t name_len;
	rlt_procpool_fn fn;
} job;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static job *jobs; /* under reg_lock */
static size_t njobs, cap;

static atomic_bool parent_ready;
static char **saved_argv;

int rlt_procpool_register(const char *name, rlt_procpool_fn fn)
{
	if (!name || !fn)
		return -EINVAL;
	size_t len = strlen(name);
	if (len == 0 || len > RLT__PP_MAX_NAME)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < njobs && !rc; i++)
		if (jobs[i].name_len == len && memcmp(jobs[i].name, name, len) == 0)
			rc = -EEXIST;
	if (!rc && njobs == cap) {
		size_t ncap = cap ? 2 * cap : 16;
		job *n = realloc(jobs, ncap * sizeof(*n));
		if (n) {
			jobs = n;
			cap = ncap;
		} else {
			rc = -ENOMEM;
		}
	}
	if (!rc) {
		memcpy(jobs[njobs].name, name, len + 1);
		jobs[njobs].name_len = len;
		jobs[njobs].fn = fn;
		njobs++;
	}
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

static rlt_procpool_fn lookup(const char *name, size_t len)
{
	rlt_procpool_fn fn = NULL;
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < njobs && !fn; i++)
		if (jobs[i].name_len == len && memcmp(jobs[i].name, name, len) == 0)
			fn = jobs[i].fn;
	pthread_mutex_unlock(&reg_lock);
	return fn;
}

bool rlt__procpool_parent_ready(void)
{
	return atomic_load(&parent_ready);
}

char **rlt__procpool_argv(void)
{
	return saved_argv;
}

/* ---- serving ---- */

/* Read exactly len bytes: 1, 0 at end of file before any byte, -1 on an
 * error or end of file inside the record. */
static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

static int write_all(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
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

static void serve(int fd)
{
	for (;;) {
		rlt__pp_hdr h;
		int r = read_all(fd, &h, sizeof(h));
		if (r == 0)
			return; /* the pool closed the socket */
		if (r < 0 || h.magic != RLT__PP_REQ || h.arg <= 0 || h.arg > RLT__PP_MAX_NAME ||
		    h.len > RLT__PP_MAX_LEN)
			exit(2); /* not our pool: the parent sees -ECHILD */
		char name[RLT__PP_MAX_NAME];
		void *in = malloc(h.len ? h.len : 1);
		if (!in)
			exit(3);
		if (read_all(fd, name, (size_t)h.arg) != 1 || read_all(fd, in, h.len) != 1)
			exit(2);
		rlt_procpool_fn fn = lookup(name, (size_t)h.arg);
		void *out = NULL;
		size_t out_len = 0;
		int rc = -ENOENT;
		if (fn) {
			rc = fn(in, h.len, &out, &out_len);
			if (rc > 0)
				rc = -rc;
		}
		free(in);
		if (rc == 0 && out_len > RLT__PP_MAX_LEN)
			rc = -EMSGSIZE;
		if (rc == 0 && out_len && !out)
			rc = -EFAULT;
		if (rc < 0)
			out_len = 0;
		rlt__pp_hdr resp = {.magic = RLT__PP_RSP, .arg = rc, .len = out_len};
		struct iovec iov[2] = {{&resp, sizeof(resp)}, {out, out_len}};
		int w = write_all(fd, iov, out_len ? 2 : 1);
		free(out);
		if (w < 0)
			return; /* the pool went away meanwhile */
	}
}

int rlt_procpool_child_main(int argc, char **argv)
{
	(void)argc;
	const char *marker = getenv(RLT__PP_ENV);
	if (!marker) {
		saved_argv = argv;
		atomic_store(&parent_ready, true);
		return 0;
	}
	/* Children of a job (if it spawns the same program) are no workers. */
	unsetenv(RLT__PP_ENV);
	if (fcntl(RLT__PP_FD, F_GETFD) < 0)
		exit(2); /* started by hand with the variable set */
	/* A terminal's Ctrl-C goes to the whole process group: the parent
	 * decides when workers end. The pool started us with SIGINT blocked,
	 * so one that came during start-up is dropped here, not fatal. */
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN); /* a vanished pool: EPIPE, then exit */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	serve(RLT__PP_FD);
	exit(0);
}
