/* The test harness itself (rlt_test.h): a cmocka assertion that fails
 * inside a task is reported from the test's thread with its message, the
 * task ends there, and the test program goes on to its next test.
 *
 * Expected-failure style: this program runs itself again (RLT_HARNESS_CHILD
 * set) as a child whose tests fail on purpose, and checks the child's
 * output and exit status. */
#include "rlt_test.h"

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <time.h>

/* ---- the child: tests that fail inside tasks on purpose ---- */

static atomic_int defer_ran;
static atomic_int after_fail; /* code after a failed assertion ran: a bug */

static void set_flag(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
}

static void *root_fails(void *arg)
{
	(void)arg;
	rlt_yield(); /* on the task's stack, after a suspension */
	assert_int_equal(1 + 1, 3);
	atomic_store(&after_fail, 1);
	return NULL;
}

static void child_root_task_fails(void **state)
{
	(void)state;
	rlt_test_run(root_fails, NULL);
}

/* Deep in a task on another worker, with a defer registered: the task
 * ends there, its defer runs, the root (waiting for 30 s) is cancelled. */
static volatile int fail_now = 1;

static void deep(int n)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "depth %d", n);
	if (n == 0) {
		if (fail_now)
			fail_msg("boom %d in %s", 42, buf);
		return;
	}
	deep(n - 1);
	atomic_store(&after_fail, 1);
}

static void *child_fails_deep(void *arg)
{
	(void)arg;
	rlt_defer(set_flag, &defer_ran);
	rlt_sleep(1000000); /* suspended once */
	deep(8);
	atomic_store(&after_fail, 1);
	return NULL;
}

static void *root_waits(void *arg)
{
	(void)arg;
	rlt_task *t = rlt_test_spawn_on(child_fails_deep, NULL, 1);
	rlt_sleep(30 * 1000000000LL);
	rlt_join(t, NULL);
	return NULL;
}

static void child_task_on_other_worker_fails(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	rlt_run(root_waits, NULL, &cfg, NULL);
}

static void *string_fails(void *arg)
{
	(void)arg;
	const char *got = "pong";
	assert_string_equal(got, "PONG");
	atomic_store(&after_fail, 1);
	return NULL;
}

static void *root_joins(void *arg)
{
	(void)arg;
	rlt_task *t = rlt_spawn(string_fails, NULL, NULL);
	assert_non_null(t);
	/* The child's failure cancels us: either way, no hang. */
	rlt_join(t, NULL);
	return NULL;
}

static void child_string_in_spawned_task(void **state)
{
	(void)state;
	rlt_test_run(root_joins, NULL);
}

static void *skips(void *arg)
{
	(void)arg;
	skip();
	atomic_store(&after_fail, 1);
	return NULL;
}

static void child_skip_in_task(void **state)
{
	(void)state;
	rlt_test_run(skips, NULL);
}

/* Fault mode: an assertion that sees an error the fault policy injects
 * ends the scenario as "faulted" (reported, skipped), not failed. */
static void *io_fails(void *arg)
{
	(void)arg;
	assert_int_equal(-EIO, 0); /* as if an injected -EIO came back */
	atomic_store(&after_fail, 1);
	return NULL;
}

static void child_injected_fault_in_task(void **state)
{
	(void)state;
	setenv("RINGLET_POLICY", "fault:rate=0,inner=epoll", 1);
	rlt_config cfg = {.workers = 1};
	rlt_run(io_fails, NULL, &cfg, NULL);
}

/* After the failures: the runtime runs normally, on the stacks the failed
 * tasks left (under ASan: no stale redzone trips a new task), and what the
 * failed tasks were expected to do (their defers) was done. */
static void *touch_stack(void *arg)
{
	volatile char buf[2048];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)i;
	rlt_yield();
	*(int *)arg += buf[100] == 100;
	return NULL;
}

static void *root_many(void *arg)
{
	int *ok = arg;
	enum { N = 200 };
	int counts[N] = {0};
	rlt_task *ts[N];
	for (int i = 0; i < N; i++)
		ts[i] = rlt_spawn(touch_stack, &counts[i], NULL);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(ts[i], NULL), 0);
		*ok += counts[i];
	}
	return NULL;
}

static void child_then_a_test_passes(void **state)
{
	(void)state;
	unsetenv("RINGLET_POLICY");
	int ok = 0;
	rlt_test_run(root_many, &ok);
	assert_int_equal(ok, 200);
	assert_int_equal(atomic_load(&defer_ran), 1);
	assert_int_equal(atomic_load(&after_fail), 0);
	print_message("harness child: defer ran, nothing ran after a failure\n");
}

static int child_main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(child_root_task_fails),
	    cmocka_unit_test(child_task_on_other_worker_fails),
	    cmocka_unit_test(child_string_in_spawned_task),
	    cmocka_unit_test(child_skip_in_task),
	    cmocka_unit_test(child_injected_fault_in_task),
	    cmocka_unit_test(child_then_a_test_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ---- the parent: run the child, read what it said ---- */

static char out[1 << 16];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_failures_in_tasks_are_reported_with_their_messages(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	double t0 = now_s();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		setenv("RLT_HARNESS_CHILD", "1", 1);
		/* Under the fault matrix the child reports failures that the
		 * harness would take for faults (a short count, an injected
		 * errno): what this test checks is the harness's reporting in
		 * each mode, and child_injected_fault_in_task sets the fault
		 * policy itself. */
		if (rlt_test_faulty())
			unsetenv("RINGLET_POLICY");
		execl("/proc/self/exe", "test_harness", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	while (n + 1 < sizeof(out)) {
		int r = poll(&pf, 1, 60000);
		assert_true(r > 0); /* the child hangs: the harness failed */
		ssize_t k = read(p[0], out + n, sizeof(out) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	out[n] = '\0';
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	double took = now_s() - t0;
	printf("---- the child's output (%.2f s) ----\n%s---- end ----\n", took, out);
	fflush(stdout);

	/* cmocka's exit status: the number of failed tests. */
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	/* Each failure, from the test's thread, with its message, file and
	 * line, and the task it happened in. */
	assert_non_null(strstr(out, "in a task: "));
	assert_non_null(strstr(out, "test_harness.c:"));
	assert_non_null(strstr(out, "2 (0x2) != 3 (0x3)"));
	assert_non_null(strstr(out, "boom 42 in depth 0"));
	assert_non_null(strstr(out, "child_fails_deep"));
	assert_non_null(strstr(out, "\"pong\" != \"PONG\""));
	assert_non_null(strstr(out, "[  FAILED  ] child_root_task_fails"));
	assert_non_null(strstr(out, "[  FAILED  ] child_task_on_other_worker_fails"));
	assert_non_null(strstr(out, "[  FAILED  ] child_string_in_spawned_task"));
	assert_non_null(strstr(out, "[  SKIPPED ] child_skip_in_task"));
	assert_non_null(strstr(out, "[ FAULTED  ] ended by an injected fault in a task"));
	assert_non_null(strstr(out, "[  SKIPPED ] child_injected_fault_in_task"));
	assert_non_null(strstr(out, "[       OK ] child_then_a_test_passes"));
	assert_non_null(strstr(out, "defer ran, nothing ran after a failure"));
	/* Nothing from a sanitizer about the harness (a jump off a stack, a
	 * stale redzone), no crash. */
	assert_null(strstr(out, "AddressSanitizer"));
	assert_null(strstr(out, "ThreadSanitizer"));
	assert_null(strstr(out, "runtime error"));
	/* The root waiting 30 s was cancelled by its child's failure. */
	assert_true(took < 25);
}

int main(void)
{
	if (getenv("RLT_HARNESS_CHILD"))
		return child_main();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failures_in_tasks_are_reported_with_their_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
