/* rlt_run: configuration errors, nesting, shutdown with live tasks, leaks. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <stdatomic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *ret_arg(void *arg)
{
	return arg;
}

static void test_run_returns_root_result(void **state)
{
	void *r = NULL;
	assert_int_equal(rlt_run(ret_arg, (void *)99, NULL, &r), 0);
	assert_int_equal((intptr_t)r, 99);
	/* Twice in a row on the same thread, and with no result pointer. */
	assert_int_equal(rlt_run(ret_arg, (void *)1, NULL, NULL), 0);
}

static void *root_fails(void *arg)
{
	(void)arg;
	return rlt_fail(-ECONNREFUSED);
}

static void *root_cancels_itself(void *arg)
{
	(void)arg;
	rlt_cancel(rlt_current());
	rlt_sleep(10 * RLT_NSEC_PER_SEC); /* -ECANCELED at once */
	return (void *)7;
}

/* asyncio.run re-raises: rlt_run reports the main task's failure. */
static void test_run_reports_the_root_tasks_failure(void **state)
{
	void *r = (void *)1;
	assert_int_equal(rlt_run(root_fails, NULL, NULL, &r), -ECONNREFUSED);
	assert_null(r); /* rlt_fail's return value */
	assert_int_equal(rlt_run(root_cancels_itself, NULL, NULL, &r), -ECANCELED);
	assert_int_equal((intptr_t)r, 7);
}

static void test_bad_config_gives_einval(void **state)
{
	assert_int_equal(rlt_run(NULL, NULL, NULL, NULL), -EINVAL);
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.ring_entries = 100; /* not a power of two */
	assert_int_equal(rlt_run(ret_arg, NULL, &cfg, NULL), -EINVAL);
	rlt_config_init(&cfg);
	cfg.stack_size = 1000;
	assert_int_equal(rlt_run(ret_arg, NULL, &cfg, NULL), -EINVAL);
	rlt_config_init(&cfg);
	cfg.workers = RLT_MAX_WORKERS + 1;
	assert_int_equal(rlt_run(ret_arg, NULL, &cfg, NULL), -EINVAL);
	rlt_config zero = {0};
	assert_int_equal(rlt_run(ret_arg, NULL, &zero, NULL), 0);
}

static void *nested(void *arg)
{
	return (void *)(intptr_t)rlt_run(ret_arg, NULL, NULL, NULL);
}

static void test_nested_run_gives_ebusy(void **state)
{
	void *r;
	assert_int_equal(rlt_run(nested, NULL, NULL, &r), 0);
	assert_int_equal((intptr_t)r, -EBUSY);
}

/* ---- shutdown with tasks still alive ---- */

/* Tasks of the shutdown test report that they got going. */
static atomic_int got_going;

static void *join_arg(void *arg)
{
	atomic_fetch_add(&got_going, 1);
	return (void *)(intptr_t)rlt_join(arg, NULL);
}

static void *read_forever(void *arg)
{
	atomic_fetch_add(&got_going, 1);
	int *p = arg;
	char buf[16]; /* on this task's stack: the kernel must let go first */
	rlt_read(p[0], buf, sizeof(buf), -1);
	return NULL;
}

static void *sleep_long(void *arg)
{
	atomic_fetch_add(&got_going, 1);
	rlt_sleep(3600 * RLT_NSEC_PER_SEC);
	return NULL;
}

static int pipe_fds[2];

static void *ret_and_count(void *arg)
{
	atomic_fetch_add(&got_going, 1);
	return arg;
}

static void *root_abandons(void *arg)
{
	atomic_store(&got_going, 0);
	rlt_task *sleeper = rlt_spawn(sleep_long, NULL, NULL);
	rlt_spawn(join_arg, sleeper, NULL); /* handle never joined */
	rlt_detach(rlt_spawn(read_forever, pipe_fds, NULL));
	rlt_spawn(ret_and_count, NULL, NULL); /* finishes, never joined */
	/* Let all four get going (on whichever worker): three then block
	 * for good, one is over. */
	uint64_t deadline = rlt_now() + 5 * RLT_NSEC_PER_SEC;
	while (atomic_load(&got_going) < 4 && rlt_now() < deadline)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	assert_int_equal(atomic_load(&got_going), 4);
	rlt_sleep(RLT_NSEC_PER_MSEC); /* and reach their waits */
	return (void *)5;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Run root with stderr captured into buf. */
static int run_captured(rlt_task_fn root, const rlt_config *cfg, void **r, char *buf, size_t len)
{
	int errp[2];
	assert_int_equal(pipe(errp), 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(errp[1], STDERR_FILENO);
	int rc = rlt_run(root, NULL, cfg, r);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(errp[1]);
	memset(buf, 0, len);
	set_nonblock(errp[0]);
	ssize_t n = read(errp[0], buf, len - 1);
	(void)n;
	close(errp[0]);
	return rc;
}

/* With no grace period (shutdown_ms < 0), live tasks are abandoned at once. */
static void test_shutdown_abandons_live_tasks_and_reports_them(void **state)
{
	assert_int_equal(pipe(pipe_fds), 0);
	int errp[2];
	assert_int_equal(pipe(errp), 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(errp[1], STDERR_FILENO);
	void *r = NULL;
	uint64_t t0 = rlt_now();
	rlt_config cfg = {.shutdown_ms = -1};
	int rc = rlt_run(root_abandons, NULL, &cfg, &r);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(errp[1]);
	char buf[512] = {0};
	ssize_t n = read(errp[0], buf, sizeof(buf) - 1);
	close(errp[0]);
	assert_int_equal(rc, 0);
	assert_int_equal((intptr_t)r, 5);
	assert_true(n > 0);
	/* (Fault mode: a fault may end the blocked read early: fewer.) */
	if (rlt_test_faulty())
		assert_non_null(
		    strstr(buf, "still running when the root task returned were abandoned"));
	else
		assert_non_null(strstr(
		    buf, "3 tasks still running when the root task returned were abandoned"));
	/* Did not wait for the hour-long sleep or the blocked read. */
	assert_true(rlt_now() - t0 < 5 * RLT_NSEC_PER_SEC);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

/* By default they are cancelled, their cleanup runs, and nothing is left. */
static atomic_int cleaned;

static void count_cleanup(void *arg)
{
	(void)arg;
	/* Cleanup may wait, even at shutdown. */
	assert_int_equal(rlt_sleep(RLT_NSEC_PER_MSEC), 0);
	atomic_fetch_add(&cleaned, 1);
}

static void *sleep_with_cleanup(void *arg)
{
	rlt_defer(count_cleanup, arg);
	atomic_fetch_add(&got_going, 1);
	int rc = rlt_sleep(3600 * RLT_NSEC_PER_SEC);
	assert_int_equal(rc, -ECANCELED);
	return NULL;
}

static void *read_with_cleanup(void *arg)
{
	rlt_defer(count_cleanup, NULL);
	atomic_fetch_add(&got_going, 1);
	int *p = arg;
	char buf[16];
	assert_int_equal(rlt_read(p[0], buf, sizeof(buf), -1), -ECANCELED);
	return NULL;
}

static void *root_leaves_tasks(void *arg)
{
	(void)arg;
	atomic_store(&got_going, 0);
	atomic_store(&cleaned, 0);
	rlt_detach(rlt_spawn(sleep_with_cleanup, NULL, NULL));
	rlt_spawn(sleep_with_cleanup, NULL, NULL); /* handle never joined */
	rlt_detach(rlt_spawn(read_with_cleanup, pipe_fds, NULL));
	uint64_t deadline = rlt_now() + 5 * RLT_NSEC_PER_SEC;
	while (atomic_load(&got_going) < 3 && rlt_now() < deadline)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	assert_int_equal(atomic_load(&got_going), 3);
	return (void *)6;
}

static void test_shutdown_cancels_live_tasks_and_runs_their_cleanup(void **state)
{
	(void)state;
	assert_int_equal(pipe(pipe_fds), 0);
	char buf[512];
	void *r = NULL;
	uint64_t t0 = rlt_now();
	assert_int_equal(run_captured(root_leaves_tasks, NULL, &r, buf, sizeof(buf)), 0);
	assert_int_equal((intptr_t)r, 6);
	assert_int_equal(atomic_load(&cleaned), 3);
	assert_null(strstr(buf, "abandoned"));
	assert_true(rlt_now() - t0 < 1 * RLT_NSEC_PER_SEC); /* not the grace period */
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

/* A task that ignores its cancellation is abandoned after the grace period. */
static void *stubborn(void *arg)
{
	(void)arg;
	rlt_scope sh;
	rlt_shield_enter(&sh);
	atomic_fetch_add(&got_going, 1);
	rlt_sleep(3600 * RLT_NSEC_PER_SEC);
	rlt_scope_leave(&sh);
	return NULL;
}

static void *root_leaves_stubborn(void *arg)
{
	(void)arg;
	atomic_store(&got_going, 0);
	rlt_detach(rlt_spawn(stubborn, NULL, NULL));
	while (atomic_load(&got_going) < 1)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	return NULL;
}

static void test_shutdown_abandons_a_task_that_outlives_the_grace_period(void **state)
{
	(void)state;
	char buf[512];
	rlt_config cfg = {.shutdown_ms = 50};
	uint64_t t0 = rlt_now();
	assert_int_equal(run_captured(root_leaves_stubborn, &cfg, NULL, buf, sizeof(buf)), 0);
	uint64_t dt = rlt_now() - t0;
	assert_true(dt >= 50 * RLT_NSEC_PER_MSEC);
	assert_true(dt < 5 * RLT_NSEC_PER_SEC);
	assert_non_null(
	    strstr(buf, "1 task still running when the root task returned was abandoned"));
}

/* ---- spawn/exit cycles: nothing grows (ASan's leak check runs at exit) ---- */

static void *nop(void *arg)
{
	return arg;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, resident = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *root_cycles(void *arg)
{
	long *growth = arg;
	rlt_spawn_opts det = {.flags = RLT_SPAWN_DETACHED};
	for (int round = 0; round < 2; round++) {
		long before = rss_kib();
		for (int i = 0; i < RLT_TEST_SCALE(50000); i++) {
			rlt_task *t = rlt_spawn(nop, NULL, NULL);
			assert_non_null(t);
			assert_int_equal(rlt_join(t, NULL), 0);
			assert_non_null(rlt_spawn(nop, NULL, &det));
			if (i % 64 == 0)
				rlt_yield();
			if (i % 1000 == 0) {
				rlt_future *f = rlt_future_new();
				rlt_future_set(f, NULL);
				rlt_future_release(f);
			}
		}
		rlt_yield();
		if (round == 1)
			*growth = rss_kib() - before;
	}
	return NULL;
}

static void test_many_spawn_exit_cycles_leak_nothing(void **state)
{
	long growth = 0;
	rlt_test_run(root_cycles, &growth);
	/* The second round reuses the first round's stacks and task memory. */
	print_message("RSS growth over the second round of tasks: %ld KiB\n", growth);
	/* Sanitizers hold freed memory in quarantine: there, LSan's exit-time
	 * leak check is the assertion. */
	if (!rlt_test_sanitized())
		assert_true(growth < 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_returns_root_result),
	    cmocka_unit_test(test_run_reports_the_root_tasks_failure),
	    cmocka_unit_test(test_bad_config_gives_einval),
	    cmocka_unit_test(test_nested_run_gives_ebusy),
	    cmocka_unit_test(test_shutdown_abandons_live_tasks_and_reports_them),
	    cmocka_unit_test(test_shutdown_cancels_live_tasks_and_runs_their_cleanup),
	    cmocka_unit_test(test_shutdown_abandons_a_task_that_outlives_the_grace_period),
	    cmocka_unit_test(test_many_spawn_exit_cycles_leak_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
