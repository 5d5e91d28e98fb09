/* rlt_recv_idle: rlt_recv for a socket expected to be empty (io_uring arms
 * the poll before the first attempt). Its result must be rlt_recv's under
 * every policy: data already there, data that comes later, end of stream,
 * a cancel or a deadline while it waits (nothing lost after), bad
 * arguments, and a ping-pong of many messages over TCP with every byte
 * checked. */
#include "tests/rlt_test.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void unix_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- data already there: returned at once ---- */

static void *root_ready(void *arg)
{
	(void)arg;
	int sv[2];
	unix_pair(sv);
	assert_int_equal(send(sv[1], "hello", 5, 0), 5);
	char buf[16];
	assert_int_equal(rlt_recv_idle(sv[0], buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	/* MSG_PEEK goes through: the bytes stay. */
	assert_int_equal(send(sv[1], "again", 5, 0), 5);
	assert_int_equal(rlt_recv_idle(sv[0], buf, sizeof(buf), MSG_PEEK), 5);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "again", 5);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_returns_data_already_there(void **state)
{
	(void)state;
	rlt_test_run(root_ready, NULL);
}

/* ---- nothing there: waits for the peer, then returns its bytes ---- */

static char events[16];
static size_t nevents;

static void log_event(char c)
{
	assert_true(nevents < sizeof(events) - 1);
	events[nevents++] = c;
	events[nevents] = '\0';
}

typedef struct idle_arg {
	int fd;
	ssize_t res;
	char buf[64];
} idle_arg;

static void *idle_reader(void *arg)
{
	idle_arg *a = arg;
	log_event('r');
	a->res = rlt_recv_idle(a->fd, a->buf, sizeof(a->buf), 0);
	log_event('R');
	return NULL;
}

static void *root_waits(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	nevents = 0;
	idle_arg a = {.fd = sv[0]};
	rlt_task *r = rlt_spawn(idle_reader, &a, NULL);
	assert_non_null(r);
	for (int i = 0; i < 5; i++)
		rlt_yield(); /* every chance to return early (it must not) */
	log_event('w');
	assert_int_equal(rlt_send(sv[1], "ping!", 5, 0), 5);
	assert_int_equal(rlt_join(r, NULL), 0);
	rlt_test_fault_ends(a.res); /* (fault mode: it may fail at once) */
	assert_string_equal(events, "rwR");
	assert_int_equal(a.res, 5);
	assert_memory_equal(a.buf, "ping!", 5);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_waits_for_the_peer(void **state)
{
	(void)state;
	rlt_test_run1(root_waits, NULL);
}

/* ---- end of stream, waiting or not ---- */

static void *root_eof(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	idle_arg a = {.fd = sv[0]};
	rlt_task *r = rlt_spawn(idle_reader, &a, NULL);
	assert_non_null(r);
	rlt_yield();
	assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
	assert_int_equal(rlt_join(r, NULL), 0);
	assert_int_equal(a.res, 0);
	/* And once more, with the end already known. */
	char b[4];
	assert_int_equal(rlt_recv_idle(sv[0], b, sizeof(b), 0), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_sees_end_of_stream(void **state)
{
	(void)state;
	nevents = 0;
	rlt_test_run(root_eof, NULL);
}

/* ---- cancelled or timed out while waiting: nothing lost after ---- */

static void *root_cancel(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	nevents = 0;
	idle_arg a = {.fd = sv[0]};
	rlt_task *r = rlt_spawn(idle_reader, &a, NULL);
	assert_non_null(r);
	for (int i = 0; i < 3; i++)
		rlt_yield();
	int c = rlt_cancel(r);
	if (c == -EALREADY) { /* (fault mode: it failed before the cancel) */
		assert_int_equal(rlt_join(r, NULL), 0);
		rlt_test_fault_ends(a.res);
	}
	assert_int_equal(c, 0);
	assert_int_equal(rlt_join(r, NULL), -ECANCELED);
	assert_string_equal(events, "rR");
	assert_int_equal(a.res, -ECANCELED);

	/* A deadline: the I/O timeout of the calling task. */
	char b[32];
	assert_int_equal(rlt_set_io_timeout(20 * RLT_NSEC_PER_MSEC), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_recv_idle(sv[0], b, sizeof(b), 0), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 20 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_set_io_timeout(0), 0);

	/* The bytes sent after both still arrive, whole and once. */
	assert_int_equal(rlt_send(sv[1], "after", 5, 0), 5);
	assert_int_equal(rlt_recv_idle(sv[0], b, sizeof(b), 0), 5);
	assert_memory_equal(b, "after", 5);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_cancel_and_deadline_lose_nothing(void **state)
{
	(void)state;
	rlt_test_run1(root_cancel, NULL);
}

/* ---- arguments ---- */

static void *root_args(void *arg)
{
	(void)arg;
	int sv[2];
	unix_pair(sv);
	assert_int_equal(rlt_recv_idle(sv[0], NULL, 4, 0), -EINVAL);
	char b[4];
	assert_int_equal(rlt_recv_idle(-1, b, sizeof(b), 0), -EBADF);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_bad_arguments(void **state)
{
	(void)state;
	char b[4];
	assert_int_equal(rlt_recv_idle(0, b, sizeof(b), 0), -EPERM); /* not in a task */
	rlt_test_run(root_args, NULL);
}

/* ---- a request/response ping-pong, as the HTTP server runs it ---- */

enum { PINGS = 2000 };

static void *echo_side(void *arg)
{
	int fd = *(int *)arg;
	unsigned char buf[256];
	for (unsigned i = 0; i < PINGS; i++) {
		size_t want = 1 + i % 200, got = 0;
		while (got < want) {
			ssize_t n = rlt_recv_idle(fd, buf + got, sizeof(buf) - got, 0);
			rlt_test_assert_pos(n);
			got += (size_t)n;
		}
		assert_int_equal(got, want);
		for (size_t k = 0; k < want; k++)
			assert_int_equal(buf[k], (unsigned char)(i + k));
		assert_int_equal(rlt_send_all(fd, buf, want, 0), (ssize_t)want);
	}
	return NULL;
}

static void *root_pingpong(void *arg)
{
	(void)arg;
	int sv[2];
	rlt_test_tcp_pair(sv);
	rlt_task *e = rlt_spawn(echo_side, &sv[1], NULL);
	assert_non_null(e);
	unsigned char out[256], in[256];
	for (unsigned i = 0; i < PINGS; i++) {
		size_t want = 1 + i % 200, got = 0;
		for (size_t k = 0; k < want; k++)
			out[k] = (unsigned char)(i + k);
		assert_int_equal(rlt_send_all(sv[0], out, want, 0), (ssize_t)want);
		while (got < want) {
			ssize_t n = rlt_recv_idle(sv[0], in + got, sizeof(in) - got, 0);
			rlt_test_assert_pos(n);
			got += (size_t)n;
		}
		assert_int_equal(got, want);
		assert_memory_equal(in, out, want);
	}
	assert_int_equal(rlt_join(e, NULL), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_idle_ping_pong_every_byte(void **state)
{
	(void)state;
	rlt_test_run(root_pingpong, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recv_idle_returns_data_already_there),
	    cmocka_unit_test(test_recv_idle_waits_for_the_peer),
	    cmocka_unit_test(test_recv_idle_sees_end_of_stream),
	    cmocka_unit_test(test_recv_idle_cancel_and_deadline_lose_nothing),
	    cmocka_unit_test(test_recv_idle_bad_arguments),
	    cmocka_unit_test(test_recv_idle_ping_pong_every_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
