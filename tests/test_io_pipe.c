/* Pipes: read/write between tasks, suspension order, large transfers with
 * short reads, EPIPE and EOF, and rlt_poll readiness. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

static void make_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

/* An event log shared by the tasks of one test (one worker: no races). */
static char events[64];
static size_t nevents;

/* The tests that log events check their order: they run on one worker. */
static void log_event(char c)
{
	assert_true(nevents < sizeof(events) - 1);
	events[nevents++] = c;
	events[nevents] = '\0';
}

/* ---- reader waits for writer ---- */

typedef struct pipe_arg {
	int fd;
	ssize_t res;
	char buf[64];
} pipe_arg;

static void *pipe_reader(void *arg)
{
	pipe_arg *a = arg;
	log_event('r'); /* about to read: the pipe is empty */
	a->res = rlt_read(a->fd, a->buf, sizeof(a->buf), -1);
	log_event('R'); /* read returned */
	return NULL;
}

static void *pipe_writer(void *arg)
{
	pipe_arg *a = arg;
	/* Give the reader every chance to (wrongly) return first. */
	for (int i = 0; i < 5; i++)
		rlt_yield();
	log_event('w');
	a->res = rlt_write(a->fd, "ping!", 5, -1);
	log_event('W');
	return NULL;
}

static void *root_reader_waits(void *arg)
{
	int p[2];
	make_pipe(p);
	nevents = 0;
	pipe_arg ra = {.fd = p[0]}, wa = {.fd = p[1]};
	rlt_task *r = rlt_spawn(pipe_reader, &ra, NULL);
	rlt_task *w = rlt_spawn(pipe_writer, &wa, NULL);
	assert_non_null(r);
	assert_non_null(w);
	assert_int_equal(rlt_join(w, NULL), 0);
	/* Fault mode: a write that failed leaves the reader waiting for what
	 * will not come: it is cancelled. */
	if (rlt_test_injected(wa.res))
		rlt_cancel(r);
	int jr = rlt_join(r, NULL);
	if (!rlt_test_injected(wa.res) || jr != -ECANCELED)
		assert_int_equal(jr, 0);
	/* The reader started, suspended in the read, and returned only after
	 * the writer wrote. */
	rlt_test_fault_ends(wa.res);
	rlt_test_fault_ends(ra.res);
	if (strcmp(events, "rwWR") != 0)
		rlt_test_faulted("a fault (an -EAGAIN retried) changed the order");
	assert_string_equal(events, "rwWR");
	assert_int_equal(wa.res, 5);
	assert_int_equal(ra.res, 5);
	assert_memory_equal(ra.buf, "ping!", 5);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_pipe_reader_suspends_until_writer_writes(void **state)
{
	rlt_test_run1(root_reader_waits, NULL);
}

/* ---- ping-pong through two pipes ---- */

enum { ROUNDS = 500 };

typedef struct pong_arg {
	int in, out;
} pong_arg;

static void *ponger(void *arg)
{
	pong_arg *a = arg;
	for (unsigned i = 0; i < ROUNDS; i++) {
		unsigned v = 0;
		/* readv/writev on a pipe, at the current position (-1). */
		struct iovec iv = {&v, sizeof(v)};
		assert_int_equal(rlt_readv(a->in, &iv, 1, -1), (ssize_t)sizeof(v));
		assert_int_equal(v, i * 2);
		v++;
		assert_int_equal(rlt_writev(a->out, &iv, 1, -1), (ssize_t)sizeof(v));
	}
	return NULL;
}

static void *root_ping_pong(void *arg)
{
	int to[2], from[2];
	make_pipe(to);
	make_pipe(from);
	pong_arg pa = {.in = to[0], .out = from[1]};
	rlt_task *t = rlt_spawn(ponger, &pa, NULL);
	assert_non_null(t);
	for (unsigned i = 0; i < ROUNDS; i++) {
		unsigned v = i * 2;
		assert_int_equal(rlt_write(to[1], &v, sizeof(v), -1), (ssize_t)sizeof(v));
		assert_int_equal(rlt_read(from[0], &v, sizeof(v), -1), (ssize_t)sizeof(v));
		assert_int_equal(v, i * 2 + 1);
	}
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(rlt_close(to[0]), 0);
	assert_int_equal(rlt_close(to[1]), 0);
	assert_int_equal(rlt_close(from[0]), 0);
	assert_int_equal(rlt_close(from[1]), 0);
	return NULL;
}

static void test_pipe_ping_pong_between_two_tasks(void **state)
{
	rlt_test_run(root_ping_pong, NULL);
}

/* ---- a large transfer ---- */

enum { BIG = 4 << 20, READ_ASK = 256 << 10 };

typedef struct big_arg {
	int fd;
	unsigned char *buf;
	size_t done;
	unsigned calls, short_calls;
} big_arg;

static void *big_writer(void *arg)
{
	big_arg *a = arg;
	/* Chunks of irregular sizes, up to 1 MiB: far more than the pipe holds. */
	static const size_t sizes[] = {1, 4095, 70000, 1 << 20, 12345, 300000, 65536};
	size_t k = 0;
	while (a->done < BIG) {
		size_t n = sizes[k++ % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > BIG - a->done)
			n = BIG - a->done;
		ssize_t w = rlt_write(a->fd, a->buf + a->done, n, -1);
		rlt_test_fault_ends(w);
		assert_true(w > 0 && (size_t)w <= n);
		a->done += (size_t)w;
		a->calls++;
		if ((size_t)w < n)
			a->short_calls++;
	}
	/* EOF for the reader. */
	assert_int_equal(rlt_close(a->fd), 0);
	return NULL;
}

static void *big_reader(void *arg)
{
	big_arg *a = arg;
	for (;;) {
		ssize_t r = rlt_read(a->fd, a->buf + a->done, READ_ASK, -1);
		rlt_test_assert_ok(r);
		if (r == 0)
			break;
		assert_true((size_t)r <= READ_ASK && a->done + (size_t)r <= BIG);
		a->done += (size_t)r;
		a->calls++;
		if (r < READ_ASK)
			a->short_calls++;
	}
	return NULL;
}

static void *root_big(void *arg)
{
	int p[2];
	make_pipe(p);
	big_arg wa = {.fd = p[1], .buf = malloc(BIG)};
	/* Room for one extra READ_ASK, so a read past BIG would be caught by
	 * the count check rather than by memory corruption. */
	big_arg ra = {.fd = p[0], .buf = malloc(BIG + READ_ASK)};
	assert_non_null(wa.buf);
	assert_non_null(ra.buf);
	for (size_t i = 0; i < BIG; i++)
		wa.buf[i] = pat(7, i);
	rlt_task *r = rlt_spawn(big_reader, &ra, NULL);
	rlt_task *w = rlt_spawn(big_writer, &wa, NULL);
	assert_non_null(r);
	assert_non_null(w);
	assert_int_equal(rlt_join(w, NULL), 0);
	assert_int_equal(rlt_join(r, NULL), 0);
	assert_int_equal(wa.done, BIG);
	assert_int_equal(ra.done, BIG);
	/* A pipe holds far less than READ_ASK: every read came back short. */
	assert_true(ra.calls >= BIG / READ_ASK);
	assert_int_equal(ra.short_calls, ra.calls);
	for (size_t i = 0; i < BIG; i++) {
		if (ra.buf[i] != pat(7, i))
			fail_msg("byte %zu: got %u, want %u", i, ra.buf[i], pat(7, i));
	}
	assert_int_equal(rlt_close(p[0]), 0);
	free(wa.buf);
	free(ra.buf);
	return NULL;
}

static void test_pipe_large_transfer_arrives_intact_through_partial_reads(void **state)
{
	rlt_test_run(root_big, NULL);
}

/* ---- closed ends ---- */

static void *root_epipe(void *arg)
{
	int p[2];
	make_pipe(p);
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_write(p[1], "x", 1, -1), -EPIPE);
	struct iovec v = {"yz", 2};
	assert_int_equal(rlt_writev(p[1], &v, 1, -1), -EPIPE);
	/* The write end still polls as an error/hangup, not as writable. */
	int ev = rlt_poll(p[1], POLLOUT);
	rlt_test_assert_pos(ev);
	assert_true(ev & POLLERR);
	assert_int_equal(rlt_close(p[1]), 0);
	return NULL;
}

static void test_write_to_pipe_with_closed_read_end_gives_epipe(void **state)
{
	rlt_test_run(root_epipe, NULL);
}

static void *eof_reader(void *arg)
{
	pipe_arg *a = arg;
	a->res = rlt_read(a->fd, a->buf, sizeof(a->buf), -1);
	return NULL;
}

static void *root_eof(void *arg)
{
	int p[2];
	make_pipe(p);
	/* Data, then the writer closes: the reader gets the data, then 0. */
	assert_int_equal(rlt_write(p[1], "abc", 3, -1), 3);
	assert_int_equal(rlt_close(p[1]), 0);
	char buf[16];
	assert_int_equal(rlt_read(p[0], buf, sizeof(buf), -1), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(rlt_read(p[0], buf, sizeof(buf), -1), 0);
	assert_int_equal(rlt_close(p[0]), 0);

	/* A reader already suspended on the empty pipe wakes with 0 when the
	 * last write end closes. */
	make_pipe(p);
	pipe_arg a = {.fd = p[0], .res = -1};
	rlt_task *t = rlt_spawn(eof_reader, &a, NULL);
	assert_non_null(t);
	for (int i = 0; i < 3; i++)
		rlt_yield();
	assert_int_equal(a.res, -1); /* still waiting */
	assert_int_equal(rlt_close(p[1]), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(a.res, 0);
	assert_int_equal(rlt_close(p[0]), 0);
	return NULL;
}

static void test_read_from_pipe_with_closed_write_end_gives_zero(void **state)
{
	rlt_test_run1(root_eof, NULL); /* peeks at a suspended task: one worker */
}

static void *nonblock_reader(void *arg)
{
	pipe_arg *a = arg;
	a->res = rlt_read(a->fd, a->buf, sizeof(a->buf), -1);
	log_event('R');
	return NULL;
}

static void *root_nonblock(void *arg)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	nevents = 0;
	/* Kernels differ: older ones honour O_NONBLOCK and fail the read with
	 * -EAGAIN at once; newer ones (6.x, for files that support NOWAIT
	 * such as pipes) wait for data through poll like a blocking read.
	 * Either is fine; a hang or a wrong count is not. */
	pipe_arg a = {.fd = p[0], .res = 12345};
	rlt_task *t = rlt_spawn(nonblock_reader, &a, NULL);
	assert_non_null(t);
	for (int i = 0; i < 3; i++)
		rlt_yield();
	log_event('w');
	assert_int_equal(rlt_write(p[1], "q", 1, -1), 1);
	assert_int_equal(rlt_join(t, NULL), 0);
	if (a.res != -EAGAIN)
		rlt_test_fault_ends(a.res);
	if (a.res == -EAGAIN) {
		if (strcmp(events, "Rw") != 0)
			rlt_test_faulted("an injected -EAGAIN");
		assert_string_equal(events, "Rw");
		char c;
		assert_int_equal(rlt_read(p[0], &c, 1, -1), 1);
		assert_int_equal(c, 'q');
	} else {
		assert_string_equal(events, "wR");
		assert_int_equal(a.res, 1);
		assert_int_equal(a.buf[0], 'q');
	}
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	return NULL;
}

static void test_read_on_empty_nonblocking_pipe_gives_eagain_or_waits_for_data(void **state)
{
	rlt_test_run1(root_nonblock, NULL);
}

/* ---- poll ---- */

typedef struct poll_arg {
	int fd;
	unsigned mask;
	int res;
	bool done;
} poll_arg;

static void *poller(void *arg)
{
	poll_arg *a = arg;
	a->res = rlt_poll(a->fd, a->mask);
	a->done = true;
	log_event('P');
	return NULL;
}

static void *root_poll(void *arg)
{
	int p[2];
	make_pipe(p);
	nevents = 0;
	/* The write end of an empty pipe is writable at once. */
	int ev = rlt_poll(p[1], POLLOUT);
	rlt_test_assert_pos(ev);
	assert_true(ev & POLLOUT);

	for (int round = 0; round < 3; round++) {
		poll_arg a = {.fd = p[0], .mask = POLLIN, .res = -1};
		rlt_task *t = rlt_spawn(poller, &a, NULL);
		assert_non_null(t);
		for (int i = 0; i < 5; i++)
			rlt_yield();
		if (a.done)
			rlt_test_fault_ends(a.res);
		assert_false(a.done); /* nothing to read yet */
		log_event('w');
		assert_int_equal(rlt_write(p[1], "d", 1, -1), 1);
		assert_int_equal(rlt_join(t, NULL), 0);
		assert_true(a.done);
		assert_true(a.res > 0);
		assert_true(a.res & POLLIN);
		assert_false(a.res & (POLLERR | POLLHUP | POLLNVAL));
		/* Poll does not consume: the byte is still there. */
		char c;
		assert_int_equal(rlt_read(p[0], &c, 1, -1), 1);
		assert_int_equal(c, 'd');
	}
	assert_string_equal(events, "wPwPwP");

	/* Data already there: poll returns at once. */
	assert_int_equal(rlt_write(p[1], "e", 1, -1), 1);
	ev = rlt_poll(p[0], POLLIN);
	rlt_test_assert_pos(ev);
	assert_true(ev & POLLIN);

	/* The write end closing wakes a poller with POLLHUP. */
	char c;
	assert_int_equal(rlt_read(p[0], &c, 1, -1), 1);
	poll_arg a = {.fd = p[0], .mask = POLLIN, .res = -1};
	rlt_task *t = rlt_spawn(poller, &a, NULL);
	assert_non_null(t);
	for (int i = 0; i < 3; i++)
		rlt_yield();
	if (a.done)
		rlt_test_fault_ends(a.res);
	assert_false(a.done);
	assert_int_equal(rlt_close(p[1]), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_true(a.res > 0);
	assert_true(a.res & POLLHUP);
	assert_int_equal(rlt_close(p[0]), 0);
	return NULL;
}

static void test_poll_on_read_end_reports_pollin_only_after_data_arrives(void **state)
{
	rlt_test_run1(root_poll, NULL);
}

static void *root_poll_bad_fd(void *arg)
{
	int p[2];
	make_pipe(p);
	close(p[0]);
	close(p[1]);
	assert_int_equal(rlt_poll(p[0], POLLIN), -EBADF);
	return NULL;
}

static void test_poll_on_closed_fd_gives_ebadf(void **state)
{
	rlt_test_run(root_poll_bad_fd, NULL);
}

int main(void)
{
	/* A write to a pipe without readers raises SIGPIPE as well as
	 * returning EPIPE; only the return value is under test. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipe_reader_suspends_until_writer_writes),
	    cmocka_unit_test(test_pipe_ping_pong_between_two_tasks),
	    cmocka_unit_test(test_pipe_large_transfer_arrives_intact_through_partial_reads),
	    cmocka_unit_test(test_write_to_pipe_with_closed_read_end_gives_epipe),
	    cmocka_unit_test(test_read_from_pipe_with_closed_write_end_gives_zero),
	    cmocka_unit_test(test_read_on_empty_nonblocking_pipe_gives_eagain_or_waits_for_data),
	    cmocka_unit_test(test_poll_on_read_end_reports_pollin_only_after_data_arrives),
	    cmocka_unit_test(test_poll_on_closed_fd_gives_ebadf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
