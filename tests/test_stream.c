/* Stream helpers (rlt_read_full, rlt_write_all, rlt_recv_exact,
 * rlt_send_all) on pipes, socket pairs and files: whole transfers through
 * short counts, EOF part-way, -EAGAIN through poll, and errors.
 *
 * Fault mode (rlt_test_faulty: the fault policy injects errors): a
 * scenario whose operation gets an injected error ends there, cleanly; what
 * must hold is that nothing hangs (a transfer's other side is cancelled),
 * every error is a negative errno, and every byte delivered is right. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

static unsigned char *patterned(size_t len, unsigned seed)
{
	unsigned char *b = malloc(len);
	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = pat(seed, i);
	return b;
}

static void check(const unsigned char *b, size_t len, unsigned seed, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(seed, from + i))
			fail_msg("byte %zu: got %u, want %u", from + i, b[i], pat(seed, from + i));
}

/* ---- a large transfer between two tasks ---- */

enum { BIG = 4 << 20 };

typedef struct xfer {
	int fd;
	bool sock;
	int flags;
	size_t len;
	unsigned char *buf;
	ssize_t res;
	size_t done; /* the reader's: bytes received whole */
} xfer;

/* A side that failed fails its task: rlt_gather then cancels the other
 * (a writer blocked on a full pipe, a reader waiting for more). */
static void *writer(void *arg)
{
	xfer *x = arg;
	x->res = x->sock ? rlt_send_all(x->fd, x->buf, x->len, x->flags)
			 : rlt_write_all(x->fd, x->buf, x->len, -1);
	return x->res < 0 ? rlt_fail((int)x->res) : NULL;
}

/* Reads in irregular pieces, each of them whole. */
static void *reader(void *arg)
{
	xfer *x = arg;
	static const size_t sizes[] = {1, 4095, 70000, 1 << 20, 12345, 300000, 65536};
	size_t done = 0, k = 0;
	while (done < x->len) {
		size_t n = sizes[k++ % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > x->len - done)
			n = x->len - done;
		ssize_t r = x->sock ? rlt_recv_exact(x->fd, x->buf + done, n, x->flags)
				    : rlt_read_full(x->fd, x->buf + done, n, -1);
		if (r != (ssize_t)n) {
			x->res = r;
			return r < 0 ? rlt_fail((int)r) : NULL;
		}
		done += n;
		x->done = done;
	}
	x->res = (ssize_t)done;
	return NULL;
}

/* A side's error in a faulty run: injected, or the cancellation that
 * followed the other side's. */
static void check_fault_result(ssize_t res)
{
	if (res < 0 && !rlt_test_injected(res) && res != -ECANCELED)
		fail_msg("transfer: %zd (%s), not an injected fault", res, strerror((int)-res));
}

static void big_transfer(int rfd, int wfd, bool sock, int flags)
{
	xfer w = {.fd = wfd, .sock = sock, .flags = flags, .len = BIG, .buf = patterned(BIG, 3)};
	xfer r = {.fd = rfd, .sock = sock, .flags = flags, .len = BIG, .buf = malloc(BIG)};
	assert_non_null(r.buf);
	rlt_task *ts[2] = {rlt_spawn(reader, &r, NULL), rlt_spawn(writer, &w, NULL)};
	assert_non_null(ts[0]);
	assert_non_null(ts[1]);
	int rc = rlt_gather(ts, 2, NULL, NULL, 0);
	if (rlt_test_faulty() && rc < 0) {
		check_fault_result(w.res);
		check_fault_result(r.res);
		assert_true(w.res < 0 || r.res < 0);
		check(r.buf, r.done, 3, 0); /* what arrived is right */
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(w.res, BIG);
		assert_int_equal(r.res, BIG);
		check(r.buf, BIG, 3, 0);
	}
	free(w.buf);
	free(r.buf);
}

static void *root_pipe_big(void *arg)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	big_transfer(p[0], p[1], false, 0);
	close(p[0]);
	close(p[1]);
	/* O_NONBLOCK: the kernel may fail a call with -EAGAIN (older kernels
	 * do for io_uring reads); the helpers then wait in rlt_poll. */
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	big_transfer(p[0], p[1], false, 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_pipe_4mib_moves_whole_through_write_all_and_read_full(void **state)
{
	rlt_test_run(root_pipe_big, NULL);
}

static void *root_socket_big(void *arg)
{
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	big_transfer(s[0], s[1], true, 0);
	/* MSG_DONTWAIT: -EAGAIN whenever the other side lags; the helpers
	 * poll and go on. */
	big_transfer(s[1], s[0], true, MSG_DONTWAIT);
	close(s[0]);
	close(s[1]);
	return NULL;
}

static void test_socketpair_4mib_moves_whole_through_send_all_and_recv_exact(void **state)
{
	rlt_test_run(root_socket_big, NULL);
}

/* ---- EOF part-way ---- */

static void *root_eof(void *arg)
{
	unsigned char *data = patterned(1000, 5);
	unsigned char buf[4096];

	ssize_t r;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r = rlt_write_all(p[1], data, 1000, -1);
	rlt_test_on_fault(r, pipe_done);
	assert_int_equal(r, 1000);
	assert_int_equal(rlt_close(p[1]), 0);
	p[1] = -1;
	r = rlt_read_full(p[0], buf, sizeof(buf), -1);
	rlt_test_on_fault(r, pipe_done);
	assert_int_equal(r, 1000);
	check(buf, 1000, 5, 0);
	r = rlt_read_full(p[0], buf, sizeof(buf), -1);
	rlt_test_on_fault(r, pipe_done);
	assert_int_equal(r, 0);
pipe_done:
	if (p[1] >= 0)
		assert_int_equal(rlt_close(p[1]), 0);
	assert_int_equal(rlt_close(p[0]), 0);

	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	r = rlt_send_all(s[0], data, 600, 0);
	rlt_test_on_fault(r, sock_done);
	assert_int_equal(r, 600);
	r = rlt_shutdown(s[0], SHUT_WR);
	rlt_test_on_fault(r, sock_done);
	assert_int_equal(r, 0);
	r = rlt_recv_exact(s[1], buf, 400, 0);
	rlt_test_on_fault(r, sock_done);
	assert_int_equal(r, 400);
	r = rlt_recv_exact(s[1], buf + 400, 400, 0);
	rlt_test_on_fault(r, sock_done);
	assert_int_equal(r, 200);
	check(buf, 600, 5, 0);
	r = rlt_recv_exact(s[1], buf, 400, 0);
	rlt_test_on_fault(r, sock_done);
	assert_int_equal(r, 0);
sock_done:
	assert_int_equal(rlt_close(s[0]), 0);
	assert_int_equal(rlt_close(s[1]), 0);
	free(data);
	return NULL;
}

static void test_read_full_and_recv_exact_return_short_count_only_at_eof(void **state)
{
	rlt_test_run(root_eof, NULL);
}

/* ---- -EAGAIN: wait in rlt_poll, then go on ---- */

static void *late_sender(void *arg)
{
	int fd = *(int *)arg;
	for (int i = 0; i < 5; i++)
		rlt_yield();
	ssize_t r = rlt_send_all(fd, "hello", 5, 0);
	rlt_test_on_fault(r, failed);
	assert_int_equal(r, 5);
	for (int i = 0; i < 5; i++)
		rlt_yield();
	r = rlt_send_all(fd, " world", 6, 0);
	rlt_test_on_fault(r, failed);
	assert_int_equal(r, 6);
	return NULL;
failed: /* the receiver waits for what will not come: the end says so */
	shutdown(fd, SHUT_WR);
	return rlt_fail((int)r);
}

static void *root_eagain(void *arg)
{
	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	/* Nothing there yet: MSG_DONTWAIT recvs fail with -EAGAIN, and
	 * rlt_recv_exact waits for POLLIN instead of returning it. */
	char buf[16];
	ssize_t r = rlt_recv(s[1], buf, sizeof(buf), MSG_DONTWAIT);
	if (!rlt_test_injected(r))
		assert_int_equal(r, -EAGAIN);
	rlt_task *t = rlt_spawn(late_sender, &s[0], NULL);
	assert_non_null(t);
	r = rlt_recv_exact(s[1], buf, 11, MSG_DONTWAIT);
	if (rlt_test_faulty()) {
		/* An injected error here, or the sender's: a short count at
		 * its shutdown; what came is right. */
		assert_true(r >= 0 || rlt_test_injected(r));
		if (r > 0)
			assert_memory_equal(buf, "hello world", (size_t)r);
		int jr = rlt_join(t, NULL);
		assert_true(jr == 0 || rlt_test_injected(jr));
	} else {
		assert_int_equal(r, 11);
		assert_memory_equal(buf, "hello world", 11);
		assert_int_equal(rlt_join(t, NULL), 0);
	}
	close(s[0]);
	close(s[1]);
	return NULL;
}

static void test_recv_exact_with_msg_dontwait_waits_for_data_in_poll(void **state)
{
	rlt_test_run(root_eagain, NULL);
}

/* ---- files ---- */

enum { FILE_LEN = 3 << 20 };

static void *root_file(void *arg)
{
	char path[] = "/tmp/ringlet-stream-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	unsigned char *data = patterned(FILE_LEN, 9);
	unsigned char *back = malloc(FILE_LEN + 100);
	assert_non_null(back);

	ssize_t r;
	/* At offsets, in two pieces, the second first. */
	r = rlt_write_all(fd, data + 1000, FILE_LEN - 1000, 1000);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, FILE_LEN - 1000);
	r = rlt_write_all(fd, data, 1000, 0);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, 1000);
	r = rlt_read_full(fd, back, FILE_LEN, 0);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, FILE_LEN);
	check(back, FILE_LEN, 9, 0);
	/* Straddling the end, and past it. */
	r = rlt_read_full(fd, back, 100, FILE_LEN - 40);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, 40);
	check(back, 40, 9, FILE_LEN - 40);
	r = rlt_read_full(fd, back, 100, FILE_LEN + 5);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, 0);

	/* At the current position (-1), which each call advances. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	r = rlt_read_full(fd, back, 70000, -1);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, 70000);
	/* Asks for 100 bytes more than are left (all that back can hold). */
	r = rlt_read_full(fd, back + 70000, FILE_LEN - 70000 + 100, -1);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, FILE_LEN - 70000);
	check(back, FILE_LEN, 9, 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), FILE_LEN);
	r = rlt_write_all(fd, data, 10, -1);
	rlt_test_on_fault(r, out);
	assert_int_equal(r, 10);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), FILE_LEN + 10);

out:
	assert_int_equal(rlt_close(fd), 0);
	free(data);
	free(back);
	return NULL;
}

static void test_file_write_all_and_read_full_at_offsets_and_current_position(void **state)
{
	rlt_test_run(root_file, NULL);
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	char buf[16] = "0123456789abcdef";
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	rlt_test_assert_io(rlt_read_full(p[0], buf, sizeof(buf), -1), -EBADF);
	rlt_test_assert_io(rlt_write_all(p[1], buf, sizeof(buf), -1), -EBADF);
	rlt_test_assert_io(rlt_recv_exact(p[0], buf, sizeof(buf), 0), -EBADF);
	rlt_test_assert_io(rlt_send_all(p[1], buf, sizeof(buf), 0), -EBADF);

	/* Nothing to move: no call at all, even on a bad fd. */
	assert_int_equal(rlt_read_full(p[0], buf, 0, -1), 0);
	assert_int_equal(rlt_send_all(p[1], buf, 0, 0), 0);

	assert_int_equal(rlt_read_full(0, NULL, 1, -1), -EINVAL);
	assert_int_equal(rlt_write_all(1, NULL, 1, -1), -EINVAL);
	assert_int_equal(rlt_recv_exact(0, buf, sizeof(buf), MSG_PEEK), -EINVAL);
	assert_int_equal(rlt_read_full(0, buf, (size_t)SSIZE_MAX + 1, -1), -EINVAL);

	/* The reader is gone. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	rlt_test_assert_io(rlt_write_all(p[1], buf, sizeof(buf), -1), -EPIPE);
	close(p[1]);

	int s[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	close(s[1]);
	rlt_test_assert_io(rlt_send_all(s[0], buf, sizeof(buf), 0), -EPIPE);
	close(s[0]);
	return NULL;
}

static void test_errors_come_back_as_negative_errno(void **state)
{
	rlt_test_run(root_errors, NULL);
}

static void test_helpers_outside_a_task_give_eperm(void **state)
{
	char c = 0;
	assert_int_equal(rlt_read_full(0, &c, 1, -1), -EPERM);
	assert_int_equal(rlt_write_all(1, &c, 1, -1), -EPERM);
	assert_int_equal(rlt_recv_exact(0, &c, 1, 0), -EPERM);
	assert_int_equal(rlt_send_all(1, &c, 1, 0), -EPERM);
}

int main(void)
{
	/* Writes to a pipe without readers: only the return value is tested. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipe_4mib_moves_whole_through_write_all_and_read_full),
	    cmocka_unit_test(test_socketpair_4mib_moves_whole_through_send_all_and_recv_exact),
	    cmocka_unit_test(test_read_full_and_recv_exact_return_short_count_only_at_eof),
	    cmocka_unit_test(test_recv_exact_with_msg_dontwait_waits_for_data_in_poll),
	    cmocka_unit_test(test_file_write_all_and_read_full_at_offsets_and_current_position),
	    cmocka_unit_test(test_errors_come_back_as_negative_errno),
	    cmocka_unit_test(test_helpers_outside_a_task_give_eperm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
