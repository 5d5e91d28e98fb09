/* Out of descriptors at accept (issue 19): rlt_acceptor_next and
 * rlt_net_accept say -EMFILE after a pause that doubles (1 ms up to 64 ms)
 * instead of letting an accept loop spin, and nothing is lost: once there
 * is room, the waiting connection is accepted. */
#include "rlt_test.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#define LOOP_MS 300

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct run {
	bool acceptor; /* rlt_acceptor_next, else rlt_net_accept */
	int calls, emfile, other;
	double cpu;
	int fd_after;
} run;

static void *root(void *arg)
{
	run *r = arg;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	rlt_acceptor *a = NULL;
	if (r->acceptor) {
		a = rlt_acceptor_open(lfd, 0);
		assert_non_null(a);
	}
	/* A client waits in the backlog; then no descriptor can be made. */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	int next_fd = dup(0);
	assert_true(next_fd >= 0);
	close(next_fd);
	low = old;
	low.rlim_cur = (rlim_t)next_fd;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	/* An accept loop that just retries, for LOOP_MS. */
	double c0 = cpu_s();
	uint64_t end = now_ns() + LOOP_MS * 1000000ull;
	while (now_ns() < end) {
		int fd = r->acceptor ? rlt_acceptor_next(a, NULL) : rlt_net_accept(lfd, NULL, 0);
		r->calls++;
		if (fd == -EMFILE)
			r->emfile++;
		else if (fd >= 0) {
			close(fd);
			r->other++;
			break;
		} else if (!rlt_test_injected(fd)) {
			r->other++;
			break;
		}
	}
	r->cpu = cpu_s() - c0;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* Room again: the connection that waited is accepted. */
	int fd;
	do
		fd = r->acceptor ? rlt_acceptor_next(a, NULL) : rlt_net_accept(lfd, NULL, 0);
	while (rlt_test_injected(fd));
	r->fd_after = fd;
	if (fd >= 0)
		assert_int_equal(rlt_close(fd), 0);
	assert_int_equal(rlt_close(c), 0);
	if (a)
		assert_int_equal(rlt_acceptor_close(a), 0);
	assert_int_equal(rlt_close(lfd), 0);
	return NULL;
}

static void check(run *r, const char *what)
{
	print_message("%s at the fd limit for %d ms: %d calls (%d -EMFILE), %.1f ms of CPU\n", what,
		      LOOP_MS, r->calls, r->emfile, r->cpu * 1e3);
	assert_int_equal(r->other, 0);
	assert_true(r->emfile >= 3);
	/* 1+2+4+8+16+32+64+64+... ms: 9 calls in 300 ms, a few more when a
	 * fault (under the fault policy) or a late wake-up cuts a pause. A
	 * loop without the pause makes thousands. */
	assert_true(r->calls <= (rlt_test_faulty() ? 60 : 20));
	assert_true(r->fd_after >= 0);
}

static void test_acceptor_backs_off_at_emfile_and_loses_nothing(void **state)
{
	(void)state;
	run r = {.acceptor = true};
	rlt_test_run1(root, &r);
	check(&r, "rlt_acceptor_next");
}

static void test_net_accept_backs_off_at_emfile_and_loses_nothing(void **state)
{
	(void)state;
	run r = {.acceptor = false};
	rlt_test_run1(root, &r);
	check(&r, "rlt_net_accept");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acceptor_backs_off_at_emfile_and_loses_nothing),
	    cmocka_unit_test(test_net_accept_backs_off_at_emfile_and_loses_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
