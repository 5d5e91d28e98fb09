/* The epoll loop policy's own paths: ops that park on an fd and complete
 * when epoll reports it ready, several tasks on one fd, end of stream and
 * resets, blocking sockets left blocking, poll, close of an fd others wait
 * on, synchronous regular-file I/O, wake-ups from foreign threads, two
 * workers. Every run is forced onto "epoll" (strict, and RINGLET_POLICY is
 * cleared in main): the rest of the suite runs under whatever policy the
 * environment picks. */
#include "tests/rlt_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* ---- running under epoll ---- */

static void *epoll_run_spec(const char *spec, rlt_task_fn fn, void *arg, unsigned workers)
{
	rlt_config cfg = {.workers = workers, .policy = spec, .policy_strict = true};
	void *res = NULL;
	assert_int_equal(rlt_run(fn, arg, &cfg, &res), 0);
	return res;
}

static void *epoll_run(rlt_task_fn fn, void *arg, unsigned workers)
{
	return epoll_run_spec("epoll", fn, arg, workers);
}

/* The policy never looks at a trusted registration again: an op that
 * wrongly trusts one (or wrongly thinks its fd is not ready) then waits
 * until its I/O timeout instead of being rescued a millisecond later. */
#define EPOLL_NO_VERIFY "epoll:verify_us=0"

static void assert_epoll(void)
{
	assert_memory_equal(rlt_runtime_policy(rlt_runtime_self()), "epoll", 5);
}

static void yield_n(int n)
{
	for (int i = 0; i < n; i++)
		rlt_yield();
}

static bool is_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0);
	return fl & O_NONBLOCK;
}

static void unix_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A loopback TCP listener (blocking, as socket(2) makes it); its address
 * in *sin. */
static int tcp_listener(struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 64), 0);
	socklen_t len = sizeof(*sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

/* A connected loopback TCP pair: *client and *server. */
static void tcp_pair(int *client, int *server)
{
	struct sockaddr_in sin;
	int lfd = tcp_listener(&sin);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(*client >= 0);
	assert_int_equal(rlt_connect(*client, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*server = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*server >= 0);
	assert_int_equal(rlt_close(lfd), 0);
}

/* ---- task bodies ---- */

typedef struct io_arg {
	int fd;
	unsigned mask; /* poller */
	ssize_t res;
	bool done;
	char buf[64];
} io_arg;

static void *receiver(void *arg)
{
	io_arg *a = arg;
	a->res = rlt_recv(a->fd, a->buf, sizeof(a->buf), 0);
	a->done = true;
	return NULL;
}

static void *reader(void *arg)
{
	io_arg *a = arg;
	a->res = rlt_read(a->fd, a->buf, sizeof(a->buf), -1);
	a->done = true;
	return NULL;
}

static void *poller(void *arg)
{
	io_arg *a = arg;
	a->res = rlt_poll(a->fd, a->mask);
	a->done = true;
	return NULL;
}

static void *acceptor(void *arg)
{
	io_arg *a = arg;
	a->res = rlt_accept(a->fd, NULL, NULL, SOCK_CLOEXEC);
	a->done = true;
	return NULL;
}

static bool ran;

static void *marker(void *arg)
{
	ran = true;
	return NULL;
}

/* ---- a recv parks until the peer sends ---- */

static void *root_recv_parks(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	io_arg a = {.fd = sv[0], .res = -1};
	rlt_task *t = rlt_spawn(receiver, &a, NULL);
	assert_non_null(t);
	yield_n(5);
	assert_false(a.done);
	assert_int_equal(rlt_send(sv[1], "hello", 5, 0), 5);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 5);
	assert_memory_equal(a.buf, "hello", 5);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_recv_parks_until_peer_sends(void **state)
{
	epoll_run(root_recv_parks, NULL, 1);
}

/* ---- reads known not to be ready park without trying ---- */

/* After a short receive (the socket was drained) the next one parks
 * without trying, on the registration already in place. Data that is
 * already there when it comes must still be found (its arrival was an
 * edge epoll reports), and so must data that comes later; every byte, in
 * order. */
static void *root_skip_first_attempt(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	for (int round = 0; round < 40; round++) {
		io_arg a = {.fd = sv[0], .res = -1};
		bool waiting = round % 3 != 2; /* every third: the data is there first */
		char msg[16];
		int len = snprintf(msg, sizeof(msg), "msg %d", round);
		if (!waiting)
			assert_int_equal(rlt_send(sv[1], msg, (size_t)len, 0), len);
		rlt_task *t = rlt_spawn(receiver, &a, NULL);
		assert_non_null(t);
		yield_n(3);
		if (waiting) {
			assert_false(a.done);
			assert_int_equal(rlt_send(sv[1], msg, (size_t)len, 0), len);
		}
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, len);
		assert_memory_equal(a.buf, msg, (size_t)len);
	}
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_reads_that_keep_waiting_still_find_data_already_there(void **state)
{
	epoll_run_spec(EPOLL_NO_VERIFY, root_skip_first_attempt, NULL, 1);
}

/* ---- what a short transfer does and does not say ---- */

#define GUARD (2 * (int64_t)RLT_NSEC_PER_SEC) /* a wrong wait ends here, as a failure */

/* Data and end of stream reported by one event: the receive that takes
 * the data is short, and the next must still see the end (no edge will
 * come for it). Then the end coming by itself, after a short receive. */
static void *root_short_then_eof(void *arg)
{
	assert_epoll();
	assert_int_equal(rlt_set_io_timeout(GUARD), 0);
	for (int kind = 0; kind < 2; kind++) {
		int sv[2];
		if (kind == 0)
			unix_pair(sv);
		else
			tcp_pair(&sv[1], &sv[0]);
		/* Both arrive while the receiver waits. */
		io_arg a = {.fd = sv[0], .res = -1};
		rlt_task *t = rlt_spawn(receiver, &a, NULL);
		yield_n(3);
		assert_false(a.done);
		assert_int_equal(rlt_send(sv[1], "abc", 3, 0), 3);
		assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, 3);
		char buf[64];
		assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 0);
		assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 0);
		assert_int_equal(rlt_close(sv[0]), 0);
		assert_int_equal(rlt_close(sv[1]), 0);

		/* A short receive first; the end later, alone. */
		if (kind == 0)
			unix_pair(sv);
		else
			tcp_pair(&sv[1], &sv[0]);
		a = (io_arg){.fd = sv[0], .res = -1};
		t = rlt_spawn(receiver, &a, NULL);
		yield_n(3);
		assert_int_equal(rlt_send(sv[1], "x", 1, 0), 1);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, 1);
		a = (io_arg){.fd = sv[0], .res = -1};
		t = rlt_spawn(receiver, &a, NULL);
		yield_n(3);
		assert_false(a.done);
		assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, 0);
		assert_int_equal(rlt_close(sv[0]), 0);
		assert_int_equal(rlt_close(sv[1]), 0);
	}
	return NULL;
}

static void test_a_short_receive_still_sees_the_end_of_stream(void **state)
{
	epoll_run_spec(EPOLL_NO_VERIFY, root_short_then_eof, NULL, 1);
}

/* Get fd registered in this worker's epoll: a receive that has to wait
 * for the peer's two bytes. */
static void register_by_waiting(int fd, int peer)
{
	io_arg a = {.fd = fd, .res = -1};
	rlt_task *t = rlt_spawn(receiver, &a, NULL);
	yield_n(3);
	assert_false(a.done);
	assert_int_equal(rlt_send(peer, "go", 2, 0), 2);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 2);
}

/* A peek consumes nothing, and a datagram is one per call: neither says
 * the socket is empty when it returns less than asked. */
static void *root_peek_and_datagrams(void *arg)
{
	assert_epoll();
	assert_int_equal(rlt_set_io_timeout(GUARD), 0);
	int sv[2];
	unix_pair(sv);
	char buf[64];
	/* The registration first, so the policy's knowledge is what decides. */
	register_by_waiting(sv[0], sv[1]);
	assert_int_equal(rlt_send(sv[1], "abc", 3, 0), 3);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), MSG_PEEK), 3);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	register_by_waiting(sv[0], sv[1]);
	assert_int_equal(rlt_send(sv[1], "a", 1, 0), 1);
	assert_int_equal(rlt_send(sv[1], "bb", 2, 0), 2);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 1);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "bb", 2);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_peeks_and_datagrams_do_not_mark_the_socket_empty(void **state)
{
	epoll_run_spec(EPOLL_NO_VERIFY, root_peek_and_datagrams, NULL, 1);
}

/* ---- a registration made stale by a close on another worker ---- */

static void *guarded_receiver(void *arg)
{
	assert_int_equal(rlt_set_io_timeout(GUARD), 0);
	return receiver(arg);
}

/* Until t waits (on worker 0, for its receive): bounded, no sleep. */
static void until_waiting(rlt_task *t)
{
	uint64_t end = rlt_now() + GUARD;
	while (rlt_task_state(t, NULL, 0) != RLT_TASK_WAITING) {
		assert_true(rlt_now() < end);
		rlt_yield();
	}
}

static void *close_it(void *arg)
{
	assert_int_equal(rlt_worker_index(), 1);
	assert_int_equal(rlt_close(*(int *)arg), 0);
	return NULL;
}

/* Worker 0's epoll registers an fd; a task on worker 1 closes it with
 * rlt_close (worker 1's loop: worker 0's table is not told); the number
 * comes back as a new socket, which a task on worker 0 waits on. The old
 * registration died with its file: the close generation must make worker
 * 0 register the new one (the look-again pass is off here). */
static void *root_stale_other_worker(void *arg)
{
	assert_epoll();
	for (int round = 0; round < 3; round++) {
		int sv[2];
		unix_pair(sv);
		io_arg a = {.fd = sv[0], .res = -1};
		rlt_task *t = rlt_test_spawn_on(guarded_receiver, &a, 0);
		until_waiting(t); /* parked: registered in worker 0's epoll */
		assert_int_equal(rlt_send(sv[1], "1", 1, 0), 1);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, 1);
		int num = sv[0];
		assert_int_equal(rlt_join(rlt_test_spawn_on(close_it, &num, 1), NULL), 0);
		int nv[2];
		unix_pair(nv);
		assert_int_equal(nv[0], num);
		a = (io_arg){.fd = nv[0], .res = -1};
		t = rlt_test_spawn_on(guarded_receiver, &a, 0);
		until_waiting(t); /* a is the task's until it is joined */
		assert_int_equal(rlt_send(nv[1], "new", 3, 0), 3);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_int_equal(a.res, 3); /* not -ETIMEDOUT */
		assert_memory_equal(a.buf, "new", 3);
		assert_int_equal(rlt_close(sv[1]), 0);
		assert_int_equal(rlt_close(nv[0]), 0);
		assert_int_equal(rlt_close(nv[1]), 0);
	}
	return NULL;
}

static void test_a_close_on_another_worker_makes_the_number_register_again(void **state)
{
	epoll_run_spec(EPOLL_NO_VERIFY, root_stale_other_worker, NULL, 2);
}

/* ---- options ---- */

static void *nothing_here(void *arg)
{
	return arg;
}

static void test_verify_option_is_checked(void **state)
{
	const char *bad[] = {"epoll:verify_us=", "epoll:verify_us=x", "epoll:verify_us=-1",
			     "epoll:verify_us=99999999999", "epoll:bogus"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rlt_config cfg = {.workers = 1, .policy = bad[i]};
		assert_int_equal(rlt_run(nothing_here, NULL, &cfg, NULL), -EINVAL);
	}
	epoll_run_spec("epoll:verify_us=250", nothing_here, NULL, 1);
}

/* ---- ready operations complete inside submit ---- */

static void *root_ready_no_suspend(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	ran = false;
	rlt_task *t = rlt_spawn(marker, NULL, NULL);
	assert_non_null(t);
	/* None of these has to wait: the task never suspends, so the task
	 * queued behind it on this single worker does not run. */
	assert_int_equal(rlt_send(sv[0], "abc", 3, 0), 3);
	assert_int_equal(rlt_poll(sv[1], POLLIN) & POLLIN, POLLIN);
	char buf[8];
	assert_int_equal(rlt_recv(sv[1], buf, sizeof(buf), 0), 3);
	assert_int_equal(rlt_write(sv[1], "de", 2, -1), 2);
	assert_int_equal(rlt_read(sv[0], buf, sizeof(buf), -1), 2);
	assert_memory_equal(buf, "de", 2);
	/* A caller's MSG_DONTWAIT: -EAGAIN, not a wait. */
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	assert_false(ran);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_true(ran);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_ready_socket_ops_complete_without_suspending(void **state)
{
	epoll_run(root_ready_no_suspend, NULL, 1);
}

/* ---- regular files: synchronous, with io_uring's results ---- */

static void *root_file(void *arg)
{
	assert_epoll();
	char path[] = "/tmp/rlt-epoll-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	ran = false;
	rlt_task *t = rlt_spawn(marker, NULL, NULL);
	assert_non_null(t);

	char buf[32];
	assert_int_equal(rlt_write(fd, "abcdef", 6, 0), 6);
	assert_int_equal(rlt_write(fd, "XY", 2, 2), 2);
	assert_int_equal(rlt_read(fd, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "abXYef", 6);
	/* -1: the file position, which those did not move. */
	assert_int_equal(rlt_write(fd, "123", 3, -1), 3);
	assert_int_equal(rlt_read(fd, buf, sizeof(buf), -1), 3);
	assert_memory_equal(buf, "Yef", 3);
	assert_int_equal(rlt_read(fd, buf, sizeof(buf), -1), 0);
	struct iovec w[2] = {{"hello ", 6}, {"world", 5}};
	assert_int_equal(rlt_writev(fd, w, 2, 10), 11);
	char a[4], b[16];
	struct iovec r[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	assert_int_equal(rlt_readv(fd, r, 2, 8), 13);
	assert_memory_equal(a, "\0\0he", 4);
	assert_memory_equal(b, "llo world", 9);
	assert_int_equal(rlt_fsync(fd, 0), 0);
	assert_int_equal(rlt_fsync(fd, RLT_FSYNC_DATASYNC), 0);
	struct statx stx;
	assert_int_equal(rlt_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx), 0);
	assert_int_equal(stx.stx_size, 21);
	int dfd = rlt_openat(AT_FDCWD, "/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	assert_true(dfd >= 0);
	assert_int_equal(rlt_read(dfd, buf, sizeof(buf), 0), -EISDIR);
	assert_int_equal(rlt_close(dfd), 0);
	assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(fd), -EBADF);
	assert_int_equal(rlt_read(fd, buf, sizeof(buf), 0), -EBADF);
	/* All of it ran inside submit: no suspension. */
	assert_false(ran);
	assert_int_equal(rlt_join(t, NULL), 0);
	return NULL;
}

static void test_regular_file_io_completes_synchronously_with_io_uring_results(void **state)
{
	epoll_run(root_file, NULL, 1);
}

/* ---- a reader and a writer parked on one socket at once ---- */

enum { BULK = 4 << 20 };

typedef struct bulk_arg {
	int fd;
	size_t sent;
	ssize_t err; /* the failing send's result, or 0 */
	bool done;
	unsigned char *buf;
	size_t len;
} bulk_arg;

static void *bulk_writer(void *arg)
{
	bulk_arg *a = arg;
	while (a->sent < a->len) {
		ssize_t n = rlt_send(a->fd, a->buf + a->sent, a->len - a->sent, 0);
		if (n <= 0) {
			a->err = n;
			break;
		}
		a->sent += (size_t)n;
	}
	a->done = true;
	return NULL;
}

static void *root_two_on_one_fd(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	unsigned char *out = malloc(BULK), *in = malloc(BULK);
	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < BULK; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 12));
	io_arg r = {.fd = sv[0], .res = -1};
	bulk_arg w = {.fd = sv[0], .buf = out, .len = BULK};
	rlt_task *tr = rlt_spawn(receiver, &r, NULL);
	rlt_task *tw = rlt_spawn(bulk_writer, &w, NULL);
	assert_non_null(tr);
	assert_non_null(tw);
	yield_n(5);
	/* Both wait on sv[0]: the reader for data, the writer for room. */
	assert_false(r.done);
	assert_false(w.done);
	assert_true(w.sent > 0 && w.sent < BULK);
	size_t got = 0;
	while (got < BULK) {
		ssize_t n = rlt_recv(sv[1], in + got, BULK - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(rlt_join(tw, NULL), 0);
	assert_int_equal(w.sent, BULK);
	assert_memory_equal(in, out, BULK);
	assert_false(r.done); /* the writer's wake-ups were not the reader's */
	assert_int_equal(rlt_send(sv[1], "g", 1, 0), 1);
	assert_int_equal(rlt_join(tr, NULL), 0);
	assert_int_equal(r.res, 1);
	assert_int_equal(r.buf[0], 'g');
	free(out);
	free(in);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_reader_and_writer_parked_on_one_socket_both_complete(void **state)
{
	epoll_run(root_two_on_one_fd, NULL, 1);
}

/* ---- end of stream and resets reach parked ops ---- */

static void *root_eof_reset(void *arg)
{
	assert_epoll();
	/* End of stream: a parked recv returns 0. */
	int sv[2];
	unix_pair(sv);
	io_arg a = {.fd = sv[0], .res = -1};
	rlt_task *t = rlt_spawn(receiver, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done);
	assert_int_equal(rlt_close(sv[1]), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 0);
	assert_int_equal(rlt_close(sv[0]), 0);

	/* A reset: the server closes with unread data, the kernel sends RST,
	 * and the client's parked recv gets -ECONNRESET. */
	int c, s;
	tcp_pair(&c, &s);
	assert_int_equal(rlt_send(c, "unread", 6, 0), 6);
	a = (io_arg){.fd = c, .res = -1};
	t = rlt_spawn(receiver, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done);
	assert_int_equal(rlt_close(s), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, -ECONNRESET);
	ssize_t n = rlt_send(c, "x", 1, 0);
	assert_true(n == -EPIPE || n == -ECONNRESET);
	assert_int_equal(rlt_close(c), 0);

	/* A writer parked on a full send buffer gets the reset. */
	tcp_pair(&c, &s);
	int small = 16 << 10;
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	unsigned char *buf = calloc(1, BULK);
	assert_non_null(buf);
	bulk_arg w = {.fd = c, .buf = buf, .len = BULK};
	t = rlt_spawn(bulk_writer, &w, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(w.done);
	assert_true(w.sent > 0);
	assert_int_equal(rlt_close(s), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	if (w.err != -EPIPE && w.err != -ECONNRESET)
		fail_msg("parked send after reset: %zd after %zu bytes", w.err, w.sent);
	free(buf);
	assert_int_equal(rlt_close(c), 0);
	return NULL;
}

static void test_eof_and_reset_surface_as_zero_and_econnreset_or_epipe(void **state)
{
	epoll_run(root_eof_reset, NULL, 1);
}

/* ---- blocking sockets stay blocking ---- */

static void *root_blocking(void *arg)
{
	assert_epoll();
	struct sockaddr_in sin;
	int lfd = tcp_listener(&sin);
	assert_false(is_nonblocking(lfd));
	io_arg a = {.fd = lfd, .res = -1};
	rlt_task *t = rlt_spawn(acceptor, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done); /* parked, not blocking the worker */
	assert_false(is_nonblocking(lfd));
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(rlt_connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_false(is_nonblocking(cfd));
	assert_int_equal(rlt_join(t, NULL), 0);
	int afd = (int)a.res;
	assert_true(afd >= 0);
	assert_false(is_nonblocking(lfd));
	assert_false(is_nonblocking(afd));
	assert_int_equal(rlt_send(cfd, "hi", 2, 0), 2);
	char buf[4];
	assert_int_equal(rlt_recv(afd, buf, sizeof(buf), 0), 2);
	assert_int_equal(rlt_close(afd), 0);

	/* A listener that was non-blocking stays so. */
	int fl = fcntl(lfd, F_GETFL);
	assert_int_equal(fcntl(lfd, F_SETFL, fl | O_NONBLOCK), 0);
	int cfd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd2 >= 0);
	assert_int_equal(rlt_connect(cfd2, (struct sockaddr *)&sin, sizeof(sin)), 0);
	afd = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	assert_true(is_nonblocking(lfd));
	assert_int_equal(rlt_close(afd), 0);
	assert_int_equal(rlt_close(cfd2), 0);
	assert_int_equal(rlt_close(lfd), 0);

	/* A refused connect on a blocking socket: the error, flag unchanged. */
	int rfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(rfd >= 0);
	assert_int_equal(rlt_connect(rfd, (struct sockaddr *)&sin, sizeof(sin)), -ECONNREFUSED);
	assert_false(is_nonblocking(rfd));
	assert_int_equal(rlt_close(rfd), 0);
	assert_int_equal(rlt_close(cfd), 0);

	/* A blocking pipe: the read parks, the flag is unchanged. */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	a = (io_arg){.fd = p[0], .res = -1};
	t = rlt_spawn(reader, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done);
	assert_int_equal(rlt_write(p[1], "pp", 2, -1), 2);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 2);
	assert_false(is_nonblocking(p[0]));
	assert_false(is_nonblocking(p[1]));
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	return NULL;
}

static void test_accept_connect_and_pipe_read_leave_blocking_fds_blocking(void **state)
{
	epoll_run(root_blocking, NULL, 1);
}

/* A terminal knows no RWF_NOWAIT: the read goes through a temporary
 * O_NONBLOCK, which must be gone afterwards. */
static void *root_tty(void *arg)
{
	int m = *(int *)arg;
	int sfd = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(sfd >= 0);
	struct termios tio;
	assert_int_equal(tcgetattr(sfd, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(sfd, TCSANOW, &tio), 0);
	io_arg a = {.fd = m, .res = -1};
	rlt_task *t = rlt_spawn(reader, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done);
	assert_false(is_nonblocking(m));
	assert_int_equal(rlt_write(sfd, "tty", 3, -1), 3);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 3);
	assert_memory_equal(a.buf, "tty", 3);
	assert_false(is_nonblocking(m));
	assert_false(is_nonblocking(sfd));
	assert_int_equal(rlt_close(sfd), 0);
	return NULL;
}

static void test_tty_read_parks_and_leaves_the_fd_blocking(void **state)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
		if (m >= 0)
			close(m);
		skip();
	}
	epoll_run(root_tty, &m, 1);
	close(m);
}

/* ---- poll ---- */

static void *root_poll(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	io_arg p = {.fd = sv[0], .mask = POLLIN, .res = -1};
	rlt_task *t = rlt_spawn(poller, &p, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(p.done);
	assert_int_equal(rlt_send(sv[1], "!", 1, 0), 1);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_true(p.res & POLLIN);
	assert_false(p.res & (POLLOUT | POLLERR | POLLHUP | POLLNVAL));
	char c;
	assert_int_equal(rlt_recv(sv[0], &c, 1, 0), 1); /* poll did not consume */
	assert_int_equal(c, '!');

	/* Writable at once. */
	int ev = rlt_poll(sv[0], POLLIN | POLLOUT);
	assert_int_equal(ev, POLLOUT);

	/* A poller and a reader on one fd: one byte completes both. */
	p = (io_arg){.fd = sv[0], .mask = POLLIN, .res = -1};
	io_arg r = {.fd = sv[0], .res = -1};
	rlt_task *tr = rlt_spawn(receiver, &r, NULL);
	t = rlt_spawn(poller, &p, NULL);
	assert_non_null(tr);
	assert_non_null(t);
	yield_n(3);
	assert_false(p.done);
	assert_false(r.done);
	assert_int_equal(rlt_send(sv[1], "?", 1, 0), 1);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(rlt_join(tr, NULL), 0);
	assert_true(p.res & POLLIN);
	assert_int_equal(r.res, 1);
	assert_int_equal(r.buf[0], '?');

	/* The peer going away: POLLIN|POLLHUP, and POLLRDHUP when asked. */
	p = (io_arg){.fd = sv[0], .mask = POLLIN | POLLRDHUP, .res = -1};
	t = rlt_spawn(poller, &p, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(p.done);
	assert_int_equal(rlt_close(sv[1]), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_true(p.res & POLLIN);
	assert_true(p.res & POLLRDHUP);
	assert_true(p.res & POLLHUP);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_poll(sv[0], POLLIN), -EBADF);
	assert_int_equal(rlt_poll(-1, POLLIN), -EBADF); /* poll(2) would ignore it */
	return NULL;
}

static void test_poll_parks_for_pollin_and_reports_poll_events(void **state)
{
	epoll_run(root_poll, NULL, 1);
}

/* ---- closing an fd others wait on ---- */

static void *root_close_parked(void *arg)
{
	assert_epoll();
	int sv[2];
	unix_pair(sv);
	io_arg r = {.fd = sv[0], .res = -1};
	io_arg p = {.fd = sv[0], .mask = POLLIN, .res = -1};
	rlt_task *tr = rlt_spawn(receiver, &r, NULL);
	rlt_task *tp = rlt_spawn(poller, &p, NULL);
	assert_non_null(tr);
	assert_non_null(tp);
	yield_n(3);
	assert_false(r.done);
	assert_false(p.done);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_join(tr, NULL), 0);
	assert_int_equal(rlt_join(tp, NULL), 0);
	assert_int_equal(r.res, -EBADF);
	assert_int_equal(p.res, -EBADF);
	/* The fd number is free again, and works for a new socket. */
	int sv2[2];
	unix_pair(sv2);
	r = (io_arg){.fd = sv2[0], .res = -1};
	tr = rlt_spawn(receiver, &r, NULL);
	assert_non_null(tr);
	yield_n(3);
	assert_false(r.done);
	assert_int_equal(rlt_send(sv2[1], "n", 1, 0), 1);
	assert_int_equal(rlt_join(tr, NULL), 0);
	assert_int_equal(r.res, 1);
	assert_int_equal(rlt_close(sv2[0]), 0);
	assert_int_equal(rlt_close(sv2[1]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_close_completes_ops_parked_on_the_fd_with_ebadf(void **state)
{
	epoll_run(root_close_parked, NULL, 1);
}

/* ---- an fd closed behind the policy's back ---- */

static void *root_stale(void *arg)
{
	assert_epoll();
	/* Park on a pipe's read end (registering it), then close it with
	 * close(2) while a dup keeps the old pipe open: the old registration
	 * lives on under the old number. */
	int old[2];
	assert_int_equal(pipe2(old, O_CLOEXEC), 0);
	int keep = dup(old[0]);
	assert_true(keep >= 0);
	io_arg a = {.fd = old[0], .res = -1};
	rlt_task *t = rlt_spawn(reader, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_int_equal(rlt_write(old[1], "o", 1, -1), 1);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 1);
	int num = old[0];
	close(old[0]);
	/* A new pipe gets the number back. */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(p[0], num);
	a = (io_arg){.fd = p[0], .res = -1};
	t = rlt_spawn(reader, &a, NULL);
	assert_non_null(t);
	yield_n(3);
	assert_false(a.done);
	/* Events of the old pipe, under the same number, wake nobody wrongly. */
	assert_int_equal(rlt_write(old[1], "x", 1, -1), 1);
	yield_n(3);
	assert_false(a.done);
	/* The new pipe's data reaches the reader. */
	assert_int_equal(rlt_write(p[1], "new", 3, -1), 3);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 3);
	assert_memory_equal(a.buf, "new", 3);
	close(p[0]);
	close(p[1]);
	close(old[1]);
	close(keep);
	return NULL;
}

static void test_fd_number_reused_after_plain_close_still_gets_its_events(void **state)
{
	epoll_run(root_stale, NULL, 1);
}

/* ---- wake-ups from a thread that is not a worker ---- */

enum { WAKE_ROUNDS = 200 };

typedef struct foreign {
	rlt_runtime *rt;
	rlt_future *f[WAKE_ROUNDS];
	atomic_int go; /* the round the root waits in, +1 */
} foreign;

static void *setter(void *arg)
{
	rlt_future *f = arg;
	assert_int_equal(rlt_future_set(f, (void *)1), 0);
	rlt_future_release(f);
	return NULL;
}

static void *foreign_main(void *arg)
{
	foreign *fo = arg;
	for (int i = 0; i < WAKE_ROUNDS; i++) {
		/* No sleep: spin until the root is about to wait (it may or
		 * may not be asleep yet when the wake comes: both must work). */
		while (atomic_load(&fo->go) <= i)
			sched_yield();
		if (i % 2 == 0) {
			/* A spawn, which has to wake the idle worker. */
			rlt_spawn_opts o = {.flags = RLT_SPAWN_DETACHED};
			assert_non_null(rlt_runtime_spawn(fo->rt, setter, fo->f[i], &o));
		} else {
			/* A future set from here wakes its awaiter directly. */
			assert_int_equal(rlt_future_set(fo->f[i], (void *)1), 0);
			rlt_future_release(fo->f[i]);
		}
	}
	return NULL;
}

static void *root_foreign(void *arg)
{
	assert_epoll();
	foreign fo = {.rt = rlt_runtime_self()};
	for (int i = 0; i < WAKE_ROUNDS; i++) {
		fo.f[i] = rlt_future_new();
		assert_non_null(fo.f[i]);
		rlt_future_retain(fo.f[i]);
	}
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_main, &fo), 0);
	for (int i = 0; i < WAKE_ROUNDS; i++) {
		atomic_store(&fo.go, i + 1);
		/* A lost wake-up would show as a timeout, not as a hang. */
		void *v = NULL;
		assert_int_equal(rlt_future_await(fo.f[i], &v, 10 * (int64_t)RLT_NSEC_PER_SEC), 0);
		assert_ptr_equal(v, (void *)1);
		rlt_future_release(fo.f[i]);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	return NULL;
}

static void test_wake_from_foreign_thread_is_not_lost_one_worker(void **state)
{
	epoll_run(root_foreign, NULL, 1);
}

static void test_wake_from_foreign_thread_is_not_lost_two_workers(void **state)
{
	epoll_run(root_foreign, NULL, 2);
}

/* ---- two workers, one socket pair ---- */

enum { PING_ROUNDS = 2000 };

typedef struct pp_arg {
	int fd;
	bool first;
	int worker;
	bool moved;
} pp_arg;

static void *ping_ponger(void *arg)
{
	pp_arg *a = arg;
	a->worker = rlt_worker_index();
	for (uint32_t i = 0; i < PING_ROUNDS; i++) {
		uint32_t v;
		if (a->first) {
			v = 2 * i;
			assert_int_equal(rlt_send(a->fd, &v, sizeof(v), 0), (ssize_t)sizeof(v));
			assert_int_equal(rlt_recv(a->fd, &v, sizeof(v), MSG_WAITALL),
					 (ssize_t)sizeof(v));
			assert_int_equal(v, 2 * i + 1);
		} else {
			assert_int_equal(rlt_recv(a->fd, &v, sizeof(v), MSG_WAITALL),
					 (ssize_t)sizeof(v));
			assert_int_equal(v, 2 * i);
			v++;
			assert_int_equal(rlt_send(a->fd, &v, sizeof(v), 0), (ssize_t)sizeof(v));
		}
		if (rlt_worker_index() != a->worker)
			a->moved = true;
	}
	return NULL;
}

static void *root_two_workers(void *arg)
{
	assert_epoll();
	assert_int_equal(rlt_runtime_workers(rlt_runtime_self()), 2);
	int sv[2];
	unix_pair(sv);
	pp_arg a = {.fd = sv[0], .first = true}, b = {.fd = sv[1]};
	rlt_spawn_opts oa = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = 0};
	rlt_spawn_opts ob = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = 1};
	rlt_task *ta = rlt_spawn(ping_ponger, &a, &oa);
	rlt_task *tb = rlt_spawn(ping_ponger, &b, &ob);
	assert_non_null(ta);
	assert_non_null(tb);
	assert_int_equal(rlt_join(ta, NULL), 0);
	assert_int_equal(rlt_join(tb, NULL), 0);
	/* Each side parked and completed on its own worker's epoll. */
	assert_int_equal(a.worker, 0);
	assert_int_equal(b.worker, 1);
	assert_false(a.moved);
	assert_false(b.moved);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_two_workers_ping_pong_over_a_socketpair(void **state)
{
	epoll_run(root_two_workers, NULL, 2);
}

/* ---- shutdown with an op still parked ---- */

static int leftover[2] = {-1, -1};

static void *root_shutdown_parked(void *arg)
{
	assert_epoll();
	unix_pair(leftover);
	static io_arg a;
	a = (io_arg){.fd = leftover[0], .res = -1};
	rlt_spawn_opts o = {.flags = RLT_SPAWN_DETACHED};
	assert_non_null(rlt_spawn(receiver, &a, &o));
	yield_n(3);
	assert_false(a.done);
	/* Return with the receiver parked: cancel_all must let it go. */
	return NULL;
}

static void test_runtime_ends_with_an_op_still_parked(void **state)
{
	epoll_run(root_shutdown_parked, NULL, 1);
	close(leftover[0]);
	close(leftover[1]);
}

int main(void)
{
	/* This file tests the epoll policy on the worker counts it names,
	 * whatever the suite runs under (the environment would win). */
	unsetenv("RINGLET_POLICY");
	unsetenv("RINGLET_WORKERS");
	unsetenv("RINGLET_STEAL");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recv_parks_until_peer_sends),
	    cmocka_unit_test(test_reads_that_keep_waiting_still_find_data_already_there),
	    cmocka_unit_test(test_a_short_receive_still_sees_the_end_of_stream),
	    cmocka_unit_test(test_peeks_and_datagrams_do_not_mark_the_socket_empty),
	    cmocka_unit_test(test_a_close_on_another_worker_makes_the_number_register_again),
	    cmocka_unit_test(test_verify_option_is_checked),
	    cmocka_unit_test(test_ready_socket_ops_complete_without_suspending),
	    cmocka_unit_test(test_regular_file_io_completes_synchronously_with_io_uring_results),
	    cmocka_unit_test(test_reader_and_writer_parked_on_one_socket_both_complete),
	    cmocka_unit_test(test_eof_and_reset_surface_as_zero_and_econnreset_or_epipe),
	    cmocka_unit_test(test_accept_connect_and_pipe_read_leave_blocking_fds_blocking),
	    cmocka_unit_test(test_tty_read_parks_and_leaves_the_fd_blocking),
	    cmocka_unit_test(test_poll_parks_for_pollin_and_reports_poll_events),
	    cmocka_unit_test(test_close_completes_ops_parked_on_the_fd_with_ebadf),
	    cmocka_unit_test(test_fd_number_reused_after_plain_close_still_gets_its_events),
	    cmocka_unit_test(test_wake_from_foreign_thread_is_not_lost_one_worker),
	    cmocka_unit_test(test_wake_from_foreign_thread_is_not_lost_two_workers),
	    cmocka_unit_test(test_two_workers_ping_pong_over_a_socketpair),
	    cmocka_unit_test(test_runtime_ends_with_an_op_still_parked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
