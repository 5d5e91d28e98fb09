/* Limits that bind only an unprivileged process (root has CAP_IPC_LOCK and
 * CAP_SYS_RESOURCE): each case runs in a child that, when started as root,
 * becomes nobody (uid/gid 65534) first.
 *
 * - RLIMIT_MEMLOCK 0: io_uring_setup fails with -ENOMEM (Linux 6.18 still
 *   charges an unprivileged process's rings to RLIMIT_MEMLOCK, memcg or
 *   not). Strict, rlt_run fails with a message that names the limit; not
 *   strict, it falls back to epoll (saying so) and does its I/O.
 * - RLIMIT_NPROC: pool threads that cannot be created: rlt_run_blocking
 *   says so with an error (no hang), and with room again the next job
 *   runs. */
#include "rlt_test.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <ringlet/executor.h>

static int become_nobody(void)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return -errno;
	return 0;
}

/* ---- RLIMIT_MEMLOCK ---- */

static void *pipe_round_trip(void *arg)
{
	(void)arg;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return rlt_fail(-errno);
	ssize_t w = rlt_write(p[1], "memlock", 7, -1);
	char buf[8] = {0};
	ssize_t r = rlt_read(p[0], buf, sizeof(buf), -1);
	close(p[0]);
	close(p[1]);
	if (w != 7 || r != 7 || memcmp(buf, "memlock", 7) != 0)
		return rlt_fail(-EIO);
	return NULL;
}

typedef struct memlock_case {
	const char *policy;
	bool strict;
} memlock_case;

static void memlock_child(void *arg)
{
	const memlock_case *mc = arg;
	const char *policy = mc->policy;
	int rc = become_nobody();
	if (rc < 0) {
		fprintf(stderr, "SKIP: cannot become nobody: %s\n", strerror(-rc));
		_exit(77);
	}
	struct rlimit rl = {0, 0};
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		_exit(3);
	static char page[4096] __attribute__((aligned(4096)));
	/* (ASan's mlock does nothing and says 0: not a probe there.) */
	if (!rlt_test_sanitized() && mlock(page, sizeof(page)) == 0) {
		fprintf(stderr, "mlock succeeded: the limit does not bind\n");
		_exit(4);
	}
	rlt_config cfg = {.workers = 2, .policy = policy, .policy_strict = mc->strict};
	unsetenv("RINGLET_POLICY");
	unsetenv("RINGLET_POLICY_STRICT");
	rc = rlt_run(pipe_round_trip, NULL, &cfg, NULL);
	fprintf(stderr, "rlt_run under %s%s with RLIMIT_MEMLOCK 0: %d\n", policy,
		mc->strict ? " (strict)" : "", rc);
	_exit(rc == 0 ? 0 : 5);
}

static void test_rlimit_memlock_too_low_for_the_ring(void **state)
{
	(void)state;
	const char *policies[] = {"io_uring", "io_uring-sqpoll"};
	for (size_t i = 0; i < 2; i++) {
		for (int strict = 1; strict >= 0; strict--) {
			memlock_case mc = {policies[i], strict};
			char err[4096];
			int st = rlt_test_fork(memlock_child, &mc, err, sizeof(err));
			print_message("%s", err);
			assert_true(WIFEXITED(st));
			if (WEXITSTATUS(st) == 77)
				skip();
			/* The message names the call and the limit either way. */
			assert_non_null(strstr(err, "io_uring_setup: Cannot allocate memory"));
			assert_non_null(strstr(err, "RLIMIT_MEMLOCK is 0 KiB"));
			if (strict) {
				assert_int_equal(WEXITSTATUS(st), 5);
				assert_non_null(strstr(err, "strict: no fallback"));
				assert_non_null(strstr(err, "(strict) with RLIMIT_MEMLOCK 0: -12"));
			} else {
				assert_int_equal(WEXITSTATUS(st), 0);
				assert_non_null(strstr(err, "falling back to \"epoll\""));
				assert_non_null(strstr(err, "RLIMIT_MEMLOCK 0: 0"));
			}
		}
	}
}

/* ---- RLIMIT_NPROC ---- */

static void *job(void *arg)
{
	return arg;
}

static void *nproc_root(void *arg)
{
	int *out = arg;
	rlt_pool_config pc = {.max_threads = 4};
	rlt_pool *pool = rlt_pool_create(&pc);
	if (!pool)
		return rlt_fail(-ENOMEM);
	/* This user already runs this many threads: no new one. */
	struct rlimit saved, rl;
	getrlimit(RLIMIT_NPROC, &saved);
	rl = saved;
	rl.rlim_cur = 1;
	setrlimit(RLIMIT_NPROC, &rl);
	void *res = NULL;
	out[0] = rlt_run_blocking(pool, job, (void *)0x1, &res);
	setrlimit(RLIMIT_NPROC, &saved);
	/* Room again: jobs run (the pool starts its thread now). */
	res = NULL;
	out[1] = rlt_run_blocking(pool, job, (void *)0x2, &res);
	out[2] = res == (void *)0x2;
	rlt_pool_shutdown(pool, true);
	return NULL;
}

static void nproc_child(void *arg)
{
	(void)arg;
	int rc = become_nobody();
	if (rc < 0) {
		fprintf(stderr, "SKIP: cannot become nobody: %s\n", strerror(-rc));
		_exit(77);
	}
	int out[3] = {99, 99, 0};
	rlt_config cfg = {.workers = 1};
	rc = rlt_run(nproc_root, out, &cfg, NULL);
	fprintf(stderr,
		"rlt_run %d; a job with no thread to be had: %d (%s); after: %d, result %s\n", rc,
		out[0], out[0] < 0 ? strerror(-out[0]) : "ran", out[1], out[2] ? "right" : "wrong");
	_exit(rc == 0 && out[0] < 0 && out[1] == 0 && out[2] ? 0 : 5);
}

static void test_pool_threads_that_cannot_be_created_give_an_error(void **state)
{
	(void)state;
	char err[4096];
	int st = rlt_test_fork(nproc_child, NULL, err, sizeof(err));
	print_message("%s", err);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rlimit_memlock_too_low_for_the_ring),
	    cmocka_unit_test(test_pool_threads_that_cannot_be_created_give_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
