/* io_uring-sqpoll in a process pinned to one CPU (sched_setaffinity):
 * refused with a clear message, since the kernel's SQ polling thread would
 * take turns with the worker on that CPU; accepted with sq_cpu=N, which
 * places the thread on another CPU, and then working. The policy under
 * test is set here (RINGLET_POLICY is swapped for the length of each run),
 * whatever the ctest matrix asked. */
#include "tests/rlt_test.h"

#include <sched.h>
#include <unistd.h>

static cpu_set_t saved_mask;
static char *saved_policy;

static int pin_to_one_cpu(void **state)
{
	assert_int_equal(sched_getaffinity(0, sizeof(saved_mask), &saved_mask), 0);
	const char *env = getenv("RINGLET_POLICY");
	saved_policy = env ? strdup(env) : NULL;
	return 0;
}

static int unpin(void **state)
{
	sched_setaffinity(0, sizeof(saved_mask), &saved_mask);
	if (saved_policy)
		setenv("RINGLET_POLICY", saved_policy, 1);
	else
		unsetenv("RINGLET_POLICY");
	free(saved_policy);
	return 0;
}

static int first_cpu(const cpu_set_t *s)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, s))
			return c;
	return -1;
}

static void pin(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
}

static void *round_trip(void *arg)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	for (int i = 0; i < 100; i++) {
		char c = (char)i, d = 0;
		assert_int_equal(rlt_write(p[1], &c, 1, -1), 1);
		assert_int_equal(rlt_read(p[0], &d, 1, -1), 1);
		assert_int_equal(d, c);
	}
	rlt_close(p[0]);
	rlt_close(p[1]);
	return (void *)1;
}

static int run_with(const char *spec)
{
	setenv("RINGLET_POLICY", spec, 1);
	rlt_config cfg = {.policy_strict = true};
	void *res = NULL;
	int rc = rlt_run(round_trip, NULL, &cfg, &res);
	if (rc == 0)
		assert_ptr_equal(res, (void *)1);
	return rc;
}

static void test_sqpoll_on_one_cpu_is_refused_with_a_reason(void **state)
{
	pin(first_cpu(&saved_mask));
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll"), -EBUSY);
	assert_int_equal(run_with("io_uring-sqpoll"), -EBUSY);
	/* The plain policy is the advice, and it works there. */
	assert_int_equal(run_with("io_uring"), 0);
}

static void test_sqpoll_on_one_cpu_with_sq_cpu_runs(void **state)
{
	int here = first_cpu(&saved_mask);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int other = -1;
	for (int c = 0; c < CPU_SETSIZE && c < online; c++)
		if (c != here && CPU_ISSET(c, &saved_mask)) {
			other = c;
			break;
		}
	if (other < 0) {
		fprintf(stderr, "test_policy_sqpoll: SKIP sq_cpu: this process has one CPU only\n");
		skip();
	}
	pin(here);
	char spec[64];
	snprintf(spec, sizeof(spec), "io_uring-sqpoll:sq_cpu=%d", other);
	assert_int_equal(rlt_policy_probe(spec), 0);
	assert_int_equal(run_with(spec), 0);
	snprintf(spec, sizeof(spec), "io_uring-sqpoll:idle_ms=1,sq_cpu=%d", other);
	assert_int_equal(run_with(spec), 0);
}

static void test_sqpoll_options_are_checked(void **state)
{
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:sq_cpu="), -EINVAL);
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:sq_cpu=-1"), -EINVAL);
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:sq_cpu=1x"), -EINVAL);
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:idle_ms=1,"), -EINVAL);
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:cpu=1"), -EINVAL);
	assert_int_equal(rlt_policy_probe("io_uring:sq_cpu=0"), -EINVAL);
	/* Not pinned: no objection. */
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll"), 0);
	assert_int_equal(rlt_policy_probe("io_uring-sqpoll:idle_ms=3"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sqpoll_on_one_cpu_is_refused_with_a_reason,
					    pin_to_one_cpu, unpin),
	    cmocka_unit_test_setup_teardown(test_sqpoll_on_one_cpu_with_sq_cpu_runs, pin_to_one_cpu,
					    unpin),
	    cmocka_unit_test_setup_teardown(test_sqpoll_options_are_checked, pin_to_one_cpu, unpin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
