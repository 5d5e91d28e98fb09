/* Introspection: rlt_task_state() for each kind of wait, rlt_dump_tasks()
 * listing the tasks of every worker with their state and age, and the
 * SIGQUIT dump of debug mode (in a child process, whose stderr is read). */
#include "tests/rlt_test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS RLT_NSEC_PER_MSEC

static rlt_task *spawn_named(rlt_task_fn fn, void *arg, const char *name, unsigned worker)
{
	rlt_spawn_opts o = {.name = name,
			    .flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
			    .worker = worker % rlt_runtime_workers(rlt_runtime_self())};
	rlt_task *t = rlt_spawn(fn, arg, &o);
	assert_non_null(t);
	return t;
}

static void until_state(rlt_task *t, int state, const char *what)
{
	char got[48];
	uint64_t end = rlt_now() + 5000 * MS;
	while (rlt_task_state(t, got, sizeof(got)) != state || (what && strcmp(got, what))) {
		if (state != RLT_TASK_DONE && rlt_task_state(t, NULL, 0) == RLT_TASK_DONE)
			rlt_test_faulted("the task ended (on a fault) before it got there");
		assert_true(rlt_now() < end);
		rlt_yield();
	}
}

static void *sleeper(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)rlt_sleep(10000 * MS);
}

static void *reader(void *arg)
{
	int *fd = arg;
	char c;
	return (void *)(intptr_t)rlt_read(*fd, &c, 1, -1);
}

static void *lock_waiter(void *arg)
{
	int rc = rlt_mutex_lock(arg);
	if (rc == 0)
		rc = rlt_mutex_unlock(arg);
	return (void *)(intptr_t)rc;
}

static void *dump_root(void *arg)
{
	(void)arg;
	int p[2];
	assert_int_equal(pipe(p), 0);
	rlt_mutex *m = rlt_mutex_new();
	assert_int_equal(rlt_mutex_lock(m), 0);
	rlt_task *a = spawn_named(sleeper, NULL, "napper", 1);
	rlt_task *b = spawn_named(reader, &p[0], "pipe-reader", 0);
	rlt_task *c = spawn_named(lock_waiter, m, "locker", 1);
	until_state(a, RLT_TASK_WAITING, "sleep");
	until_state(b, RLT_TASK_WAITING, "io read");
	until_state(c, RLT_TASK_WAITING, "mutex");
	assert_int_equal(rlt_task_state(rlt_current(), NULL, 0), RLT_TASK_RUNNING);
	assert_int_equal(rlt_task_state(NULL, NULL, 0), -EINVAL);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(rlt_dump_tasks(f), 0);
	fclose(f);
	/* Every task, on the worker that first ran it, with what it waits on. */
	assert_non_null(strstr(buf, "worker 0:"));
	assert_non_null(strstr(buf, "worker 1:"));
	const char *lines[] = {"napper", "pipe-reader", "locker", "main"};
	const char *whats[] = {"waiting  sleep", "waiting  io read", "waiting  mutex", "running"};
	for (int i = 0; i < 4; i++) {
		char *l = strstr(buf, lines[i]);
		assert_non_null(l);
		char *eol = strchr(l, '\n');
		assert_non_null(eol);
		*eol = '\0';
		if (!strstr(l, whats[i]))
			fprintf(stderr, "dump line '%s' lacks '%s' in:\n%s\n", l, whats[i], buf);
		assert_non_null(strstr(l, whats[i]));
		assert_non_null(strstr(l, "age "));
		*eol = '\n';
	}
	free(buf);
	assert_int_equal(rlt_dump_tasks(NULL), -EINVAL);

	assert_int_equal(rlt_cancel(a), 0);
	assert_int_equal(rlt_join(a, NULL), -ECANCELED);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(rlt_join(b, NULL), 0);
	assert_int_equal(rlt_mutex_unlock(m), 0);
	assert_int_equal(rlt_join(c, NULL), 0);
	assert_int_equal(rlt_mutex_free(m), 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_state_and_dump_of_every_worker(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(dump_root, NULL, &cfg, NULL), 0);
	assert_int_equal(rlt_dump_tasks(stderr), -EPERM);
}

/* ---- SIGQUIT in debug mode ---- */

static void *wait_for_sigquit(void *arg)
{
	int *ready = arg;
	rlt_task *t = spawn_named(sleeper, NULL, "long-nap", 1);
	until_state(t, RLT_TASK_WAITING, "sleep");
	/* Tell the parent we are ready, then be dumped. */
	assert_int_equal(write(*ready, "r", 1), 1);
	rlt_sleep(300 * MS);
	rlt_cancel(t);
	rlt_join(t, NULL);
	return NULL;
}

static void test_sigquit_prints_the_tasks_in_debug_mode(void **state)
{
	(void)state;
	int err[2], ready[2];
	assert_int_equal(pipe(err), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(err[1], 2);
		close(err[0]);
		close(ready[0]);
		rlt_config cfg = {.workers = 2, .debug = true};
		_exit(rlt_run(wait_for_sigquit, &ready[1], &cfg, NULL) == 0 ? 0 : 1);
	}
	close(err[1]);
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(kill(pid, SIGQUIT), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char out[8192];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(out) - 1 && (r = read(err[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	assert_non_null(strstr(out, "SIGQUIT"));
	assert_non_null(strstr(out, "long-nap"));
	assert_non_null(strstr(out, "waiting  sleep"));
	close(err[0]);
	close(ready[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_and_dump_of_every_worker),
	    cmocka_unit_test(test_sigquit_prints_the_tasks_in_debug_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
