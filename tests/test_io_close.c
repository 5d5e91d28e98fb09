/* rlt_close(fd) while other tasks wait on fd: recv, send, accept,
 * connect, poll and a pipe read each resume with -EBADF, whichever worker
 * the waiter and the closer are on, under every loop policy (ctest runs
 * this file under each). A new file that gets the closed number is not
 * touched. Every wait is bounded: a waiter still blocked 3 s after the
 * close fails the test (it is cancelled, not left hanging). */
#include "tests/rlt_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { K_RECV, K_SEND, K_ACCEPT, K_CONNECT, K_POLL, K_READ, K_COUNT };
static const char *const kind_name[K_COUNT] = {"recv", "send", "accept", "connect", "poll", "read"};

typedef struct scene {
	enum kind kind;
	int fd;		       /* what the waiter waits on, and the closer closes */
	int keep[3];	       /* the other ends, closed at the end (-1: none) */
	struct sockaddr_in to; /* connect: the full listener */
	char buf[65536];
} scene;

static struct sockaddr_in loopback_any(void)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* A listening TCP socket on 127.0.0.1 (plain syscalls: setup); its address
 * in *a. */
static int listener(struct sockaddr_in *a, int backlog)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rlt_test_assert_ok(fd);
	*a = loopback_any();
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	socklen_t len = sizeof(*a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

/* A connected TCP pair: [0] accepted, [1] connecting side. */
static void tcp_pair(int sv[2])
{
	struct sockaddr_in a;
	int lfd = listener(&a, 4);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	rlt_test_assert_ok(s);
	close(lfd);
	sv[0] = s;
	sv[1] = c;
}

static void scene_setup(scene *s, enum kind k)
{
	memset(s, 0, sizeof(*s));
	s->kind = k;
	s->keep[0] = s->keep[1] = s->keep[2] = -1;
	int sv[2];
	switch (k) {
	case K_RECV:
	case K_POLL:
		tcp_pair(sv);
		s->fd = sv[0];
		s->keep[0] = sv[1];
		break;
	case K_SEND: {
		tcp_pair(sv);
		int small = 4096;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		/* Fill it: the waiter's send finds no room. */
		while (send(sv[0], s->buf, sizeof(s->buf), MSG_DONTWAIT) > 0)
			;
		s->fd = sv[0];
		s->keep[0] = sv[1];
		break;
	}
	case K_ACCEPT:
		s->fd = listener(&s->to, 4);
		break;
	case K_CONNECT: {
		/* A listener whose accept queue is full drops SYNs: a connect to
		 * it waits (the kernel retries for about two minutes). */
		int lfd = listener(&s->to, 0);
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(c, (struct sockaddr *)&s->to, sizeof(s->to)), 0);
		s->keep[0] = lfd;
		s->keep[1] = c;
		s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(s->fd >= 0);
		break;
	}
	case K_READ: {
		int p[2];
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		s->fd = p[0];
		s->keep[0] = p[1];
		break;
	}
	case K_COUNT:
		break;
	}
}

static void scene_teardown(scene *s)
{
	for (int i = 0; i < 3; i++)
		if (s->keep[i] >= 0)
			rlt_close(s->keep[i]);
}

static void *waiter(void *arg)
{
	scene *s = arg;
	intptr_t r = 0;
	switch (s->kind) {
	case K_RECV:
		r = rlt_recv(s->fd, s->buf, sizeof(s->buf), 0);
		break;
	case K_SEND:
		r = rlt_send(s->fd, s->buf, sizeof(s->buf), 0);
		break;
	case K_ACCEPT:
		r = rlt_accept(s->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case K_CONNECT:
		r = rlt_connect(s->fd, (struct sockaddr *)&s->to, sizeof(s->to));
		break;
	case K_POLL:
		r = rlt_poll(s->fd, POLLIN);
		break;
	case K_READ:
		r = rlt_read(s->fd, s->buf, sizeof(s->buf), -1);
		break;
	case K_COUNT:
		break;
	}
	return (void *)r;
}

/* Until t waits in an I/O operation (bounded). */
static void wait_until_blocked(rlt_task *t, enum kind k)
{
	char what[32];
	for (int i = 0; i < 2000; i++) {
		if (rlt_task_state(t, what, sizeof(what)) == RLT_TASK_WAITING &&
		    strncmp(what, "io ", 3) == 0)
			return;
		if (rlt_test_faulty() && rlt_task_state(t, NULL, 0) == RLT_TASK_DONE)
			rlt_test_faulted("the waiter ended before it blocked");
		assert_int_not_equal(rlt_task_state(t, NULL, 0), RLT_TASK_DONE);
		rlt_sleep(RLT_NSEC_PER_MSEC);
	}
	fail_msg("%s: the waiter never blocked", kind_name[k]);
}

static void *closer(void *arg)
{
	scene *s = arg;
	return (void *)(intptr_t)rlt_close(s->fd);
}

typedef struct layout {
	unsigned waiter_on, closer_on;
} layout;

static void *root_close_each(void *arg)
{
	const layout *l = arg;
	for (enum kind k = 0; k < K_COUNT; k++) {
		scene *s = malloc(sizeof(*s));
		assert_non_null(s);
		scene_setup(s, k);
		rlt_task *w = rlt_test_spawn_on(waiter, s, l->waiter_on);
		wait_until_blocked(w, k);
		rlt_task *c = rlt_test_spawn_on(closer, s, l->closer_on);
		void *cr;
		assert_int_equal(rlt_join(c, &cr), 0);
		assert_int_equal((intptr_t)cr, 0);
		void *res = NULL;
		int rc = rlt_wait_for(w, 3 * RLT_NSEC_PER_SEC, &res);
		if (rc != 0)
			fail_msg("%s: the waiter did not end after the close (%d)", kind_name[k],
				 rc);
		if ((intptr_t)res != -EBADF)
			fail_msg("%s: the waiter got %ld, want -EBADF", kind_name[k],
				 (long)(intptr_t)res);
		scene_teardown(s);
		free(s);
	}
	return NULL;
}

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	void *res;
	assert_int_equal(rlt_run(fn, arg, &cfg, &res), 0);
}

static void test_close_ends_waits_of_a_task_on_the_same_worker(void **state)
{
	layout l = {0, 0};
	run2(root_close_each, &l);
}

static void test_close_ends_waits_of_a_task_on_another_worker(void **state)
{
	layout l = {1, 0};
	run2(root_close_each, &l);
}

/* ---- several waiters at once, and the number's next file ---- */

static void *root_many_and_reuse(void *arg)
{
	int sv[2];
	tcp_pair(sv);
	scene *s = calloc(5, sizeof(*s)); /* 64 KiB buffers: not on a task's stack */
	assert_non_null(s);
	rlt_task *w[4];
	for (int i = 0; i < 4; i++) {
		s[i].kind = i % 2 ? K_POLL : K_RECV;
		s[i].fd = sv[0];
		w[i] = rlt_test_spawn_on(waiter, &s[i], (unsigned)i);
		wait_until_blocked(w[i], s[i].kind);
	}
	assert_int_equal(rlt_close(sv[0]), 0);
	/* The number comes back at once, as another file, with a waiter. */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	scene *again = &s[4];
	again->kind = K_READ;
	again->fd = p[0];
	rlt_task *r = rlt_test_spawn_on(waiter, again, 1);
	for (int i = 0; i < 4; i++) {
		void *res = NULL;
		assert_int_equal(rlt_wait_for(w[i], 3 * RLT_NSEC_PER_SEC, &res), 0);
		assert_int_equal((intptr_t)res, -EBADF);
	}
	wait_until_blocked(r, K_READ);
	/* The new file's reader waits on until there is something to read. */
	rlt_sleep(20 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_task_state(r, NULL, 0), RLT_TASK_WAITING);
	assert_int_equal(rlt_write(p[1], "x", 1, -1), 1);
	void *res = NULL;
	assert_int_equal(rlt_wait_for(r, 3 * RLT_NSEC_PER_SEC, &res), 0);
	assert_int_equal((intptr_t)res, 1);
	rlt_close(p[0]);
	rlt_close(p[1]);
	rlt_close(sv[1]);
	free(s);
	return NULL;
}

static void test_close_ends_four_waits_on_both_workers_and_spares_the_next_file(void **state)
{
	run2(root_many_and_reuse, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_ends_waits_of_a_task_on_the_same_worker),
	    cmocka_unit_test(test_close_ends_waits_of_a_task_on_another_worker),
	    cmocka_unit_test(test_close_ends_four_waits_on_both_workers_and_spares_the_next_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
