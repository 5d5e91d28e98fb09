/* Stacks: guard pages catch overflows and name the task; pools reuse. */
#include "tests/rlt_test.h"

#include "runtime/stack.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int recurse(int depth)
{
	volatile char pad[1024];
	pad[0] = (char)depth;
	if (depth == 1 << 30)
		return pad[0];
	return recurse(depth + 1) + pad[0];
}

static void *overflow(void *arg)
{
	return (void *)(intptr_t)recurse(0);
}

static void *root_overflow(void *arg)
{
	rlt_spawn_opts o = {.name = "deep-diver", .stack_size = 16 * 1024};
	rlt_task *t = rlt_spawn(overflow, NULL, &o);
	rlt_join(t, NULL);
	return NULL;
}

/* Run fn in a child process; return its wait status and its stderr. */
static int run_child(rlt_task_fn fn, char *err, size_t errcap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		alarm(20);
		/* cmocka catches SIGSEGV to report a failure and carry on; the
		 * child must die of its fault instead. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		rlt_run(fn, NULL, NULL, NULL);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < errcap && (r = read(p[0], err + n, errcap - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_stack_overflow_hits_guard_and_names_task(void **state)
{
	char err[4096];
	int status = run_child(root_overflow, err, sizeof(err));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(err, "task 'deep-diver' overflowed its stack of 16 KiB"));
}

static void *null_deref(void *arg)
{
	volatile int *p = NULL;
	return (void *)(intptr_t)*p;
}

static void *root_null(void *arg)
{
	rlt_task *t = rlt_spawn(null_deref, NULL, NULL);
	rlt_join(t, NULL);
	return NULL;
}

static void test_other_segfaults_are_not_called_overflows(void **state)
{
	char err[4096];
	int status = run_child(root_null, err, sizeof(err));
	/* Killed by the signal, or (under ASan, whose own handler reports the
	 * fault) exited with an error: never reported as an overflow. */
	assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
	assert_null(strstr(err, "overflowed"));
}

/* ---- the pool ---- */

static void test_pool_reuses_most_recent_stack_first(void **state)
{
	rlt__stack_pool p;
	rlt__stack_pool_init(&p, 4, true);
	size_t sz = rlt__stack_round(16384);
	rlt__stack a, b, c;
	assert_int_equal(rlt__stack_get(&p, sz, &a), 0);
	assert_int_equal(rlt__stack_get(&p, sz, &b), 0);
	assert_ptr_not_equal(a.lo, b.lo);
	memset(a.lo, 0xab, a.size); /* usable end to end */
	rlt__stack_put(&p, &a);
	assert_int_equal(rlt__stack_get(&p, sz, &c), 0);
	assert_ptr_equal(c.lo, a.lo);
	rlt__stack_put(&p, &b);
	rlt__stack_put(&p, &c);
	rlt__stack_pool_destroy(&p);
}

static void test_stack_sizes_are_rounded_and_bounded(void **state)
{
	size_t pg = rlt__page_size();
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE), RLT_MIN_STACK_SIZE);
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE + 1), RLT_MIN_STACK_SIZE + pg);
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE - 1), 0);
	assert_int_equal(rlt__stack_round((size_t)RLT_MAX_STACK_SIZE + 1), 0);
}

static void *touch(void *arg)
{
	volatile char buf[8000];
	buf[0] = 1;
	return (void *)(intptr_t)buf[0];
}

static void *root_no_guard(void *arg)
{
	rlt_spawn_opts o = {.stack_size = 16384};
	for (int i = 0; i < RLT_TEST_SCALE(1000); i++) {
		rlt_task *t = rlt_spawn(touch, NULL, &o);
		assert_non_null(t);
		assert_int_equal(rlt_join(t, NULL), 0);
	}
	return NULL;
}

static void test_runtime_without_guard_pages_runs_tasks(void **state)
{
	rlt_config cfg = {.no_stack_guard = true, .stack_cache = 8};
	assert_int_equal(rlt_run(root_no_guard, NULL, &cfg, NULL), 0);
}

static void test_stack_size_from_environment(void **state)
{
	setenv("RINGLET_STACK_SIZE", "64k", 1);
	assert_int_equal(rlt_run(root_no_guard, NULL, NULL, NULL), 0);
	setenv("RINGLET_STACK_SIZE", "lots", 1);
	assert_int_equal(rlt_run(root_no_guard, NULL, NULL, NULL), -EINVAL);
	unsetenv("RINGLET_STACK_SIZE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stack_overflow_hits_guard_and_names_task),
	    cmocka_unit_test(test_other_segfaults_are_not_called_overflows),
	    cmocka_unit_test(test_pool_reuses_most_recent_stack_first),
	    cmocka_unit_test(test_stack_sizes_are_rounded_and_bounded),
	    cmocka_unit_test(test_runtime_without_guard_pages_runs_tasks),
	    cmocka_unit_test(test_stack_size_from_environment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
