/* The "fault" loop policy: the same seed gives the same faults on one
 * worker, injected errors are the documented errnos where the table says,
 * short transfers are survived by the stream helpers, delays delay, nothing
 * leaks or hangs under a mix of everything, and bad options are -EINVAL.
 *
 * Every run names its policy in rlt_config and is strict; RINGLET_POLICY and
 * RINGLET_WORKERS (which would override that) are unset in main(). */
#include "tests/rlt_test.h"

#include "io/policy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int run_policy(const char *spec, unsigned workers, rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = workers, .policy = spec, .policy_strict = true};
	return rlt_run(fn, arg, &cfg, NULL);
}

static void must_run(const char *spec, unsigned workers, rlt_task_fn fn, void *arg)
{
	int rc = run_policy(spec, workers, fn, arg);
	if (rc != 0)
		fail_msg("rlt_run under \"%s\": %d", spec, rc);
}

static int tmpfile_fd(void)
{
	char path[] = "/tmp/ringlet-fault-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 151u + seed * 13u + (i >> 10)) & 0xff);
}

static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* ---- (a) determinism ---- */

enum { ROUNDS = 100, MAX_RESULTS = 5 * ROUNDS + 2 };

typedef struct trace {
	long long r[MAX_RESULTS];
	size_t n;
} trace;

static void rec(trace *t, long long r)
{
	assert_true(t->n < MAX_RESULTS);
	t->r[t->n++] = r;
}

/* One task, so the ops reach the policy in a fixed order; nothing here can
 * block for ever whatever is injected (recv only when bytes are pending). */
static void *workload(void *arg)
{
	trace *t = arg;
	int fd = tmpfile_fd();
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	char buf[64];
	memset(buf, 'x', sizeof(buf));
	size_t pending = 0;
	for (int i = 0; i < ROUNDS; i++) {
		rec(t, rlt_write(fd, buf, sizeof(buf), (off_t)i * 64));
		rec(t, rlt_read(fd, buf, sizeof(buf), (off_t)(i / 2) * 64));
		ssize_t n = rlt_send(s[0], buf, 32, 0);
		rec(t, n);
		if (n > 0)
			pending += (size_t)n;
		n = pending ? rlt_recv(s[1], buf, 32, 0) : -99999;
		rec(t, n);
		if (n > 0)
			pending -= (size_t)n;
		rec(t, rlt_fsync(fd, RLT_FSYNC_DATASYNC));
	}
	rec(t, rlt_close(fd));
	rec(t, rlt_close(s[0]));
	close(s[1]);
	return NULL;
}

static void trace_of(unsigned seed, trace *t)
{
	char spec[128];
	snprintf(spec, sizeof(spec), "fault:seed=%u,rate=0.5,delay_us=50", seed);
	memset(t, 0, sizeof(*t));
	must_run(spec, 1, workload, t);
}

static void test_same_seed_gives_same_results_and_another_seed_others(void **state)
{
	static trace a, b, c;
	trace_of(7, &a);
	trace_of(7, &b);
	trace_of(8, &c);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.r, b.r, a.n * sizeof(a.r[0]));
	assert_true(a.n != c.n || memcmp(a.r, c.r, a.n * sizeof(a.r[0])) != 0);
	/* Faults did happen: errors, and short counts of the 64-byte ops. */
	unsigned errors = 0, shorts = 0;
	for (size_t i = 0; i < a.n; i++) {
		errors += a.r[i] < 0 && a.r[i] != -99999;
		shorts += a.r[i] > 0 && a.r[i] < 32;
	}
	assert_true(errors > 10);
	assert_true(shorts > 5);
	/* Closes are never faulted. */
	assert_int_equal(a.r[a.n - 2], 0);
	assert_int_equal(a.r[a.n - 1], 0);
}

/* ---- (b) injected errors, where the table says ---- */

static void *root_eio(void *arg)
{
	int fd = tmpfile_fd();
	char buf[16] = "0123456789abcdef";
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(rlt_read(fd, buf, sizeof(buf), 0), -EIO);
	assert_int_equal(rlt_write(fd, buf, sizeof(buf), 0), -EIO);
	struct iovec v = {buf, sizeof(buf)};
	assert_int_equal(rlt_readv(fd, &v, 1, 0), -EIO);
	assert_int_equal(rlt_fsync(fd, 0), -EIO);
	assert_int_equal(rlt_read_full(fd, buf, sizeof(buf), 0), -EIO);
	/* EIO does not apply to these: they pass. */
	struct statx stx;
	assert_int_equal(rlt_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx), 0);
	assert_int_equal(stx.stx_size, sizeof(buf));
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	assert_int_equal(rlt_send(s[0], "hi", 2, 0), 2);
	assert_int_equal(rlt_recv(s[1], buf, sizeof(buf), 0), 2);
	/* Close is never faulted, and really closes. */
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(s[0]), 0);
	assert_int_equal(rlt_close(s[1]), 0);
	assert_true(fd_closed(fd) && fd_closed(s[0]) && fd_closed(s[1]));
	return NULL;
}

static void *root_econnreset(void *arg)
{
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	char buf[16];
	assert_int_equal(send(s[0], "hi", 2, 0), 2);
	assert_int_equal(rlt_recv(s[1], buf, sizeof(buf), 0), -ECONNRESET);
	assert_int_equal(rlt_send(s[0], "hi", 2, 0), -ECONNRESET);
	assert_int_equal(rlt_recv_exact(s[1], buf, 2, 0), -ECONNRESET);
	assert_int_equal(rlt_send_all(s[1], buf, 2, 0), -ECONNRESET);
	/* Not for files, nor for read(2) on a socket. */
	assert_int_equal(rlt_read(s[1], buf, sizeof(buf), -1), 2);
	assert_memory_equal(buf, "hi", 2);
	int fd = tmpfile_fd();
	assert_int_equal(rlt_write(fd, "abc", 3, 0), 3);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(s[0]), 0);
	assert_int_equal(rlt_close(s[1]), 0);
	return NULL;
}

static void *root_eintr(void *arg)
{
	assert_int_equal(rlt_openat(AT_FDCWD, "/dev/null", O_RDONLY, 0), -EINTR);
	struct statx stx;
	assert_int_equal(rlt_statx(AT_FDCWD, "/", 0, STATX_MODE, &stx), -EINTR);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(rlt_poll(p[1], POLLOUT), -EINTR);
	assert_int_equal(rlt_shutdown(p[0], SHUT_RD), -EINTR);
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	assert_true(fd_closed(p[0]) && fd_closed(p[1]));
	return NULL;
}

static void *root_eagain_enomem(void *arg)
{
	/* EAGAIN: read/write/recv/send/accept only; ENOMEM: anything. */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	unsigned eagain = 0, enomem = 0;
	for (int i = 0; i < 50; i++) {
		ssize_t r = rlt_write(p[1], "x", 1, -1);
		assert_true(r == -EAGAIN || r == -ENOMEM);
		eagain += r == -EAGAIN;
		enomem += r == -ENOMEM;
		assert_int_equal(rlt_fsync(p[1], 0), -ENOMEM);
	}
	assert_true(eagain > 0 && enomem > 0);
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	return NULL;
}

static void test_injected_errors_are_the_documented_errnos_where_they_apply(void **state)
{
	must_run("fault:rate=1,errors=EIO,short=0", 0, root_eio, NULL);
	must_run("fault:rate=1,errors=ECONNRESET,short=0", 0, root_econnreset, NULL);
	must_run("fault:rate=1,errors=EINTR,short=0", 0, root_eintr, NULL);
	must_run("fault:rate=1,errors=EAGAIN+ENOMEM,short=0", 1, root_eagain_enomem, NULL);
}

/* A helper whose loop meets an error after some bytes returns the error,
 * not a short count: short counts mean EOF only. */
static void *root_error_after_progress(void *arg)
{
	enum { LEN = 64 << 10 };
	int fd = tmpfile_fd();
	unsigned char *data = malloc(LEN), *back = malloc(LEN);
	assert_non_null(data);
	assert_non_null(back);
	for (size_t i = 0; i < LEN; i++)
		data[i] = pat(1, i);
	assert_int_equal(pwrite(fd, data, LEN, 0), LEN);
	unsigned whole = 0, failed = 0;
	for (int i = 0; i < 50; i++) {
		memset(back, 0, LEN);
		ssize_t r = rlt_read_full(fd, back, LEN, 0);
		if (r == -EIO) {
			failed++;
			continue;
		}
		assert_int_equal(r, LEN);
		assert_memory_equal(back, data, LEN);
		whole++;
	}
	/* One worker, fixed seed: the same mix every run. */
	assert_true(whole > 0 && failed > 0);
	assert_int_equal(rlt_close(fd), 0);
	free(data);
	free(back);
	return NULL;
}

static void test_stream_helper_returns_error_met_after_progress(void **state)
{
	must_run("fault:seed=3,rate=0.3,errors=EIO,short=1", 1, root_error_after_progress, NULL);
}

/* ---- (c) short transfers ---- */

static void *root_short_counts(void *arg)
{
	int fd = tmpfile_fd();
	char buf[100];
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(pwrite(fd, buf, sizeof(buf), 0), 100);
	for (int i = 0; i < 20; i++) {
		ssize_t r = rlt_read(fd, buf, sizeof(buf), 0);
		assert_true(r >= 1 && r <= 99);
		r = rlt_write(fd, buf, sizeof(buf), 0);
		assert_true(r >= 1 && r <= 99);
	}
	/* One byte cannot be cut. */
	assert_int_equal(rlt_read(fd, buf, 1, 0), 1);
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	ssize_t n = rlt_send(s[0], buf, sizeof(buf), 0);
	assert_true(n >= 1 && n <= 99);
	ssize_t m = rlt_recv(s[1], buf, sizeof(buf), 0);
	assert_true(m >= 1 && m <= n);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(s[0]), 0);
	assert_int_equal(rlt_close(s[1]), 0);
	return NULL;
}

enum { MIB = 1 << 20 };

typedef struct side {
	int fd;
	bool sock;
	unsigned char *buf;
	ssize_t res;
} side;

static void *send_side(void *arg)
{
	side *s = arg;
	s->res =
	    s->sock ? rlt_send_all(s->fd, s->buf, MIB, 0) : rlt_write_all(s->fd, s->buf, MIB, -1);
	return NULL;
}

static void *recv_side(void *arg)
{
	side *s = arg;
	s->res =
	    s->sock ? rlt_recv_exact(s->fd, s->buf, MIB, 0) : rlt_read_full(s->fd, s->buf, MIB, -1);
	return NULL;
}

static uint64_t fnv(const unsigned char *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void mib_through(int rfd, int wfd, bool sock)
{
	side w = {.fd = wfd, .sock = sock, .buf = malloc(MIB)};
	side r = {.fd = rfd, .sock = sock, .buf = malloc(MIB)};
	assert_non_null(w.buf);
	assert_non_null(r.buf);
	for (size_t i = 0; i < MIB; i++)
		w.buf[i] = pat(4, i);
	rlt_task *rt = rlt_spawn(recv_side, &r, NULL);
	rlt_task *wt = rlt_spawn(send_side, &w, NULL);
	assert_non_null(rt);
	assert_non_null(wt);
	assert_int_equal(rlt_join(wt, NULL), 0);
	assert_int_equal(rlt_join(rt, NULL), 0);
	assert_int_equal(w.res, MIB);
	assert_int_equal(r.res, MIB);
	assert_true(fnv(r.buf, MIB) == fnv(w.buf, MIB));
	free(w.buf);
	free(r.buf);
}

static void *root_short_streams(void *arg)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	mib_through(p[0], p[1], false);
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	mib_through(s[0], s[1], true);
	assert_int_equal(rlt_close(s[0]), 0);
	assert_int_equal(rlt_close(s[1]), 0);
	return NULL;
}

static void test_short_transfers_come_back_short_and_helpers_move_everything(void **state)
{
	must_run("fault:rate=1,errors=none,short=1", 0, root_short_counts, NULL);
	must_run("fault:seed=5,rate=1,errors=none,short=1", 0, root_short_streams, NULL);
	must_run("fault:seed=6,rate=0.5,errors=none,short=1,delay_us=20", 0, root_short_streams,
		 NULL);
}

static void test_short_transfers_over_the_epoll_policy(void **state)
{
	if (!rlt_policy_find("epoll")) {
		print_message("no \"epoll\" policy in this build: inner=epoll not tested\n");
		skip();
	}
	must_run("fault:inner=epoll,rate=1,errors=none,short=1", 0, root_short_counts, NULL);
	must_run("fault:inner=epoll,seed=5,rate=0.5,errors=none,short=1,delay_us=20", 0,
		 root_short_streams, NULL);
	must_run("fault:inner=epoll,rate=1,errors=EIO,short=0", 0, root_eio, NULL);
}

/* ---- (d) delays ---- */

static void *root_delay(void *arg)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = rlt_now();
		assert_int_equal(rlt_write(p[1], "x", 1, -1), 1);
		uint64_t t1 = rlt_now();
		char c;
		assert_int_equal(rlt_read(p[0], &c, 1, -1), 1);
		uint64_t t2 = rlt_now();
		assert_true(t1 - t0 >= 2 * RLT_NSEC_PER_MSEC);
		assert_true(t2 - t1 >= 2 * RLT_NSEC_PER_MSEC);
	}
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	return NULL;
}

static void test_delayed_ops_take_at_least_the_delay(void **state)
{
	/* Nothing else to do: the worker sleeps in poll, which must wake up
	 * for the delayed op (a hang otherwise). */
	must_run("fault:rate=1,errors=none,short=0,delay_us=2000", 1, root_delay, NULL);
	must_run("fault:rate=1,errors=none,short=0,delay_us=2000", 2, root_delay, NULL);
}

/* Cancel, through the vtable on a hand-made loop (ringlet itself cancels
 * only at shutdown): a delayed op completes with -ECANCELED at once, an op
 * handed over is cancelled by the inner policy. No task: nothing is woken
 * (the ops never reach the WAITING state). */
static void test_cancel_completes_delayed_ops_with_ecanceled(void **state)
{
	const rlt_policy *p = rlt_policy_find("fault");
	assert_non_null(p);
	rlt_loop loop = {.policy = p,
			 .options = "rate=1,errors=none,short=0,delay_us=1000000",
			 .nworkers = 1,
			 .queue_depth = 8};
	assert_int_equal(p->init(&loop), 0);
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	char buf[4];
	rlt_op op[3];
	for (int i = 0; i < 3; i++) {
		memset(&op[i], 0, sizeof(op[i]));
		op[i].code = RLT_OP_READ;
		op[i].fd = fds[0];
		op[i].u.rw.buf = buf;
		op[i].u.rw.len = sizeof(buf);
		op[i].u.rw.off = -1;
		p->submit(&loop, &op[i]);
		assert_int_not_equal(op[i].state_, RLT__OP_DONE);
	}
	assert_int_equal(p->poll(&loop, 0), 0); /* a second away: still held */
	/* The middle one, then the head. */
	assert_int_equal(p->cancel(&loop, &op[1]), 0);
	assert_int_equal(op[1].state_, RLT__OP_DONE);
	assert_int_equal(op[1].res_, -ECANCELED);
	assert_int_equal(p->cancel(&loop, &op[1]), -ENOENT);
	assert_int_equal(p->cancel(&loop, &op[0]), 0);
	assert_int_equal(op[0].res_, -ECANCELED);
	/* The last by cancel_all. */
	p->cancel_all(&loop);
	assert_int_equal(op[2].state_, RLT__OP_DONE);
	assert_int_equal(op[2].res_, -ECANCELED);
	p->fini(&loop);

	/* Passed through (rate 0): the read waits in the kernel on the empty
	 * pipe until the inner policy cancels it. */
	loop = (rlt_loop){.policy = p, .options = "rate=0", .nworkers = 1, .queue_depth = 8};
	assert_int_equal(p->init(&loop), 0);
	memset(&op[0], 0, sizeof(op[0]));
	op[0].code = RLT_OP_READ;
	op[0].fd = fds[0];
	op[0].u.rw.buf = buf;
	op[0].u.rw.len = sizeof(buf);
	op[0].u.rw.off = -1;
	p->submit(&loop, &op[0]);
	p->poll(&loop, 0);
	assert_int_not_equal(op[0].state_, RLT__OP_DONE);
	assert_int_equal(p->cancel(&loop, &op[0]), 0);
	for (int i = 0; i < 100 && op[0].state_ != RLT__OP_DONE; i++)
		p->poll(&loop, 10 * RLT_NSEC_PER_MSEC);
	assert_int_equal(op[0].state_, RLT__OP_DONE);
	assert_int_equal(op[0].res_, -ECANCELED);
	p->cancel_all(&loop);
	p->fini(&loop);
	close(fds[0]);
	close(fds[1]);
}

/* ---- (e) a mixed workload: it ends, and every fd is closed ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

enum { CHUNK = 16 << 10, CHUNKS = 8 };

/* Each end closes its fd whatever happened: the peer then sees EOF or
 * EPIPE, so nobody waits for ever. */
/* arg: fd * 2 + 1 for a socket (send/recv), fd * 2 for a pipe (write/read). */
static void *mix_writer(void *arg)
{
	int fd = (int)(intptr_t)arg / 2;
	bool sock = (intptr_t)arg & 1;
	unsigned char buf[CHUNK];
	memset(buf, 'w', sizeof(buf));
	for (int i = 0; i < CHUNKS; i++)
		if ((sock ? rlt_send_all(fd, buf, sizeof(buf), 0)
			  : rlt_write_all(fd, buf, sizeof(buf), -1)) < 0)
			break;
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void *mix_reader(void *arg)
{
	int fd = (int)(intptr_t)arg / 2;
	bool sock = (intptr_t)arg & 1;
	unsigned char buf[CHUNK];
	while ((sock ? rlt_recv_exact(fd, buf, sizeof(buf), 0)
		     : rlt_read_full(fd, buf, sizeof(buf), -1)) == (ssize_t)sizeof(buf))
		;
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void *mix_files(void *arg)
{
	(void)arg;
	char path[] = "/tmp/ringlet-fault-mix-XXXXXX";
	int tmp = mkstemp(path);
	assert_true(tmp >= 0);
	close(tmp);
	int fd = -EINTR;
	for (int i = 0; i < 1000 && fd < 0; i++)
		fd = rlt_openat(AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
	unlink(path);
	assert_true(fd >= 0);
	char buf[4096];
	memset(buf, 'f', sizeof(buf));
	for (int i = 0; i < 16; i++) {
		rlt_write_all(fd, buf, sizeof(buf), (off_t)i * 4096);
		rlt_read_full(fd, buf, sizeof(buf), (off_t)i * 4096);
		rlt_fsync(fd, RLT_FSYNC_DATASYNC);
	}
	assert_int_equal(rlt_close(fd), 0);
	return NULL;
}

static void *root_mix(void *arg)
{
	int pairs = RLT_TEST_SCALE(100);
	rlt_task **t = calloc((size_t)pairs * 3, sizeof(*t));
	assert_non_null(t);
	for (int i = 0; i < pairs; i++) {
		int fd[2];
		if (i % 2)
			assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
		else
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0);
		intptr_t sock = i % 2 == 0;
		t[3 * i] = rlt_spawn(mix_reader, (void *)(fd[0] * (intptr_t)2 + sock), NULL);
		t[3 * i + 1] = rlt_spawn(mix_writer, (void *)(fd[1] * (intptr_t)2 + sock), NULL);
		t[3 * i + 2] = rlt_spawn(mix_files, NULL, NULL);
	}
	for (int i = 0; i < pairs * 3; i++) {
		assert_non_null(t[i]);
		assert_int_equal(rlt_join(t[i], NULL), 0);
	}
	free(t);
	return NULL;
}

static void test_mixed_faults_at_rate_0_2_finish_and_close_every_fd(void **state)
{
	int before = count_fds();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	must_run("fault:seed=11,rate=0.2,delay_us=100", 0, root_mix, NULL);
	must_run("fault:seed=12,rate=0.2", 1, root_mix, NULL);
	if (rlt_policy_find("epoll"))
		must_run("fault:inner=epoll,seed=13,rate=0.2,delay_us=100", 0, root_mix, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(count_fds(), before);
	assert_true(t1.tv_sec - t0.tv_sec < 60);
}

/* ---- (f) options ---- */

static void *root_nothing(void *arg)
{
	return arg;
}

static void test_bad_options_fail_with_einval(void **state)
{
	static const char *const bad[] = {
	    "fault:bogus=1",	  "fault:rate=2",	"fault:rate=-0.1",
	    "fault:rate=nan",	  "fault:rate=",	"fault:seed=x",
	    "fault:seed=-1",	  "fault:short=2",	"fault:delay_us=-5",
	    "fault:delay_us=1e3", "fault:errors=EPERM", "fault:errors=EIO+",
	    "fault:inner=fault",  "fault:inner=nosuch", "fault:inner=io_uring:x",
	    "fault:inner=",	  "fault:seed=1,",	"fault:,seed=1",
	    "fault:seed",	  "fault:rate=0.5x",	"fault:delay_us=99999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (rlt_policy_probe(bad[i]) != -EINVAL)
			fail_msg("probe of \"%s\": %d, want -EINVAL", bad[i],
				 rlt_policy_probe(bad[i]));
		assert_int_equal(run_policy(bad[i], 1, root_nothing, NULL), -EINVAL);
	}
	static const char *const good[] = {
	    "fault",
	    "fault:",
	    "fault:seed=7,rate=0.1,inner=io_uring,errors=EINTR+EAGAIN+ENOMEM+ECONNRESET+EIO,short="
	    "1,"
	    "delay_us=200",
	    "fault:errors=none",
	    "fault:errors=",
	    "fault:errors=eio+eintr,rate=0,seed=0x10",
	    "fault:inner=io_uring-sqpoll",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (rlt_policy_probe(good[i]) != 0)
			fail_msg("probe of \"%s\": %d, want 0", good[i], rlt_policy_probe(good[i]));
		must_run(good[i], 1, root_nothing, NULL);
	}
}

/* ---- the report ---- */

static void *root_one_read(void *arg)
{
	char c;
	assert_int_equal(rlt_read(0, &c, 1, 0), -EIO);
	return NULL;
}

static void test_report_prints_injected_counts_per_worker(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[1], 2), 2);
	setenv("RINGLET_FAULT_REPORT", "1", 1);
	int rc = run_policy("fault:rate=1,errors=EIO,short=0", 1, root_one_read, NULL);
	unsetenv("RINGLET_FAULT_REPORT");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	char out[1024];
	ssize_t n = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	assert_int_equal(rc, 0);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "ringlet: fault worker 0: 1 ops"));
	assert_non_null(strstr(out, " EIO=1 "));
	assert_non_null(strstr(out, " EINTR=0 "));
}

int main(void)
{
	/* These tests choose their policy and worker count themselves. */
	unsetenv("RINGLET_POLICY");
	unsetenv("RINGLET_WORKERS");
	unsetenv("RINGLET_FAULT_REPORT");
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_seed_gives_same_results_and_another_seed_others),
	    cmocka_unit_test(test_injected_errors_are_the_documented_errnos_where_they_apply),
	    cmocka_unit_test(test_stream_helper_returns_error_met_after_progress),
	    cmocka_unit_test(test_short_transfers_come_back_short_and_helpers_move_everything),
	    cmocka_unit_test(test_short_transfers_over_the_epoll_policy),
	    cmocka_unit_test(test_delayed_ops_take_at_least_the_delay),
	    cmocka_unit_test(test_cancel_completes_delayed_ops_with_ecanceled),
	    cmocka_unit_test(test_mixed_faults_at_rate_0_2_finish_and_close_every_fd),
	    cmocka_unit_test(test_bad_options_fail_with_einval),
	    cmocka_unit_test(test_report_prints_injected_counts_per_worker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
