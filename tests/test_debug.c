/* Debug mode: a task that holds its worker too long is reported on stderr
 * with its name, as asyncio's debug mode reports slow callbacks. */
#include "tests/rlt_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void spin_for(uint64_t ns)
{
	uint64_t until = rlt_now() + ns;
	while (rlt_now() < until)
		;
}

static void *hog(void *arg)
{
	spin_for((uint64_t)(uintptr_t)arg);
	rlt_yield();
	return NULL;
}

static void *root(void *arg)
{
	(void)arg;
	rlt_spawn_opts slow = {.name = "hog"}, quick = {.name = "polite"};
	rlt_task *a = rlt_spawn(hog, (void *)(uintptr_t)(150 * RLT_NSEC_PER_MSEC), &slow);
	rlt_task *b = rlt_spawn(hog, (void *)(uintptr_t)(5 * RLT_NSEC_PER_MSEC), &quick);
	assert_int_equal(rlt_join(a, NULL), 0);
	assert_int_equal(rlt_join(b, NULL), 0);
	return NULL;
}

/* Run root with stderr going to a pipe; return what was written. */
static void run_capturing(const rlt_config *cfg, char *out, size_t len)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(p[1], 2);
	close(p[1]);
	int rc = rlt_run(root, NULL, cfg, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(rc, 0);
	ssize_t n = read(p[0], out, len - 1); /* all of it fits the pipe */
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
}

static void test_a_task_holding_its_worker_is_reported_by_name(void **state)
{
	(void)state;
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	cfg.debug = true;
	cfg.slow_ms = 50;
	char err[4096];
	run_capturing(&cfg, err, sizeof(err));
	print_message("captured: %s", err);
	assert_non_null(strstr(err, "task \"hog\""));
	assert_non_null(strstr(err, "without suspending"));
	assert_null(strstr(err, "\"polite\""));
	/* The reported time is at least the threshold. */
	const char *ran = strstr(err, " ran ");
	assert_non_null(ran);
	assert_true(atof(ran + 5) >= 50.0);
}

static void test_off_by_default_and_on_by_environment(void **state)
{
	(void)state;
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	char err[4096];
	run_capturing(&cfg, err, sizeof(err));
	assert_null(strstr(err, "without suspending"));
	setenv("RINGLET_DEBUG", "1", 1);
	setenv("RINGLET_SLOW_MS", "100", 1);
	run_capturing(&cfg, err, sizeof(err));
	unsetenv("RINGLET_DEBUG");
	unsetenv("RINGLET_SLOW_MS");
	assert_non_null(strstr(err, "task \"hog\""));
	setenv("RINGLET_SLOW_MS", "zero", 1);
	assert_int_equal(rlt_run(root, NULL, &cfg, NULL), -EINVAL);
	unsetenv("RINGLET_SLOW_MS");
}

int main(void)
{
	unsetenv("RINGLET_DEBUG");
	unsetenv("RINGLET_SLOW_MS");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_task_holding_its_worker_is_reported_by_name),
	    cmocka_unit_test(test_off_by_default_and_on_by_environment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
