/* Per-task I/O time limits (rlt_set_io_timeout): operations cancelled
 * through the loop policy come back -ETIMEDOUT; operations that finish in
 * time are untouched; the fd stays usable. Runs under every policy. */
#include "tests/rlt_test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS RLT_NSEC_PER_MSEC

static void *recv_times_out_then_works(void *arg)
{
	(void)arg;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(rlt_io_timeout(), 0);
	assert_int_equal(rlt_set_io_timeout(20 * MS), 0);
	assert_int_equal(rlt_io_timeout(), 20 * MS);
	char buf[16];
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	uint64_t dt = rlt_now() - t0;
	assert_true(dt >= 20 * MS);
	assert_true(dt < 500 * MS);
	/* Nothing was consumed or broken: the socket still works. */
	assert_int_equal(rlt_send(sv[1], "hello", 5, 0), 5);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "hello", 5);
	/* Writes that complete at once are not affected. */
	assert_int_equal(rlt_send(sv[0], "x", 1, 0), 1);
	assert_int_equal(rlt_set_io_timeout(0), 0);
	assert_int_equal(rlt_io_timeout(), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_recv_times_out_and_the_socket_stays_usable(void **state)
{
	(void)state;
	rlt_test_run(recv_times_out_then_works, NULL);
}

typedef struct late {
	int fd;
	uint64_t delay;
} late;

static void *send_later(void *arg)
{
	late *l = arg;
	rlt_sleep(l->delay);
	assert_int_equal(rlt_send(l->fd, "late", 4, 0), 4);
	return NULL;
}

static void *completes_in_time(void *arg)
{
	(void)arg;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	late l = {.fd = sv[1], .delay = 5 * MS};
	rlt_task *t = rlt_spawn(send_later, &l, NULL);
	assert_non_null(t);
	assert_int_equal(rlt_set_io_timeout(5000 * MS), 0);
	char buf[8];
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 4);
	assert_true(rlt_now() - t0 < 4000 * MS);
	assert_int_equal(rlt_join(t, NULL), 0);
	/* The timer of that wait is gone: a sleep past its deadline is quiet,
	 * and a later wait gets its own full limit. */
	assert_int_equal(rlt_set_io_timeout(30 * MS), 0);
	t0 = rlt_now();
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 30 * MS);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_an_operation_done_in_time_is_untouched(void **state)
{
	(void)state;
	rlt_test_run(completes_in_time, NULL);
}

static void *poll_and_accept_time_out(void *arg)
{
	(void)arg;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(rlt_set_io_timeout(15 * MS), 0);
	assert_int_equal(rlt_poll(p[0], POLLIN), -ETIMEDOUT);
	char c;
	assert_int_equal(rlt_read(p[0], &c, 1, -1), -ETIMEDOUT);
	/* rlt_close: the listener below may get the number back, and the
	 * epoll policy must know this pipe is gone (docs/POLICIES.md). */
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rlt_test_assert_ok(lfd);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC), -ETIMEDOUT);
	/* The listener still accepts. */
	int c_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(rlt_connect(c_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int s_fd = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	rlt_test_assert_ok(s_fd);
	close(s_fd);
	close(c_fd);
	close(lfd);
	return NULL;
}

static void test_poll_read_and_accept_time_out(void **state)
{
	(void)state;
	rlt_test_run(poll_and_accept_time_out, NULL);
}

static atomic_int timed_out;

static void *one_waiter(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	assert_int_equal(rlt_set_io_timeout(10 * MS), 0);
	ssize_t r = rlt_recv(fd, &c, 1, 0);
	/* Fault mode: an injected error instead of the time-out. */
	if (r == -ETIMEDOUT || rlt_test_injected(r))
		atomic_fetch_add(&timed_out, 1);
	return NULL;
}

static void *many_waiters(void *arg)
{
	(void)arg;
	enum { N = 100 };
	int sv[N][2];
	rlt_task *ts[N];
	atomic_store(&timed_out, 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
		ts[i] = rlt_spawn(one_waiter, (void *)(intptr_t)sv[i][0], NULL);
		assert_non_null(ts[i]);
	}
	/* The spawned tasks do not inherit the limit. */
	for (int i = 0; i < N; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	assert_int_equal(atomic_load(&timed_out), N);
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return NULL;
}

static void test_many_tasks_time_out_on_their_own_workers(void **state)
{
	(void)state;
	rlt_test_run(many_waiters, NULL);
}

static void test_outside_a_task(void **state)
{
	(void)state;
	assert_int_equal(rlt_set_io_timeout(MS), -EPERM);
	assert_int_equal(rlt_io_timeout(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recv_times_out_and_the_socket_stays_usable),
	    cmocka_unit_test(test_an_operation_done_in_time_is_untouched),
	    cmocka_unit_test(test_poll_read_and_accept_time_out),
	    cmocka_unit_test(test_many_tasks_time_out_on_their_own_workers),
	    cmocka_unit_test(test_outside_a_task),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
