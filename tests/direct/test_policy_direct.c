/* A RINGLET_POLICY_DIRECT build (the io_uring policy called without the
 * vtable, to measure what the vtable costs) is strict by construction: where
 * io_uring is refused, rlt_run fails with a message naming the cause instead
 * of falling back to an epoll loop it would drive through io_uring's
 * functions. Linked against ringlet_direct_static (tests/CMakeLists.txt). */
#include "tests/rlt_test.h"
#include "tests/rlt_seccomp.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void *ok(void *arg)
{
	(void)arg;
	return rlt_sleep(1000) == 0 ? (void *)1 : NULL;
}

static void test_direct_build_runs_on_io_uring(void **state)
{
	(void)state;
	void *r = NULL;
	assert_int_equal(rlt_run(ok, NULL, NULL, &r), 0);
	assert_ptr_equal(r, (void *)1);
	assert_string_equal(rlt_policy_find("io_uring")->name, "io_uring");
}

static void test_direct_build_refuses_other_policies(void **state)
{
	(void)state;
	rlt_config cfg = {.policy = "epoll"};
	assert_int_equal(rlt_run(ok, NULL, &cfg, NULL), -ENOTSUP);
}

#ifdef THIS_AUDIT_ARCH
static void forbidden_body(void *arg)
{
	int *shared = arg;
	shared[0] = forbid_io_uring();
	/* Not strict, by config or environment: the build must be. */
	shared[1] = rlt_run(ok, NULL, NULL, NULL);
}

static void test_direct_build_refuses_the_fallback_under_seccomp(void **state)
{
	(void)state;
	int *shared =
	    mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	char err[2048];
	int status = rlt_test_fork(forbidden_body, shared, err, sizeof(err));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the child died (status %#x): stderr: %s", status, err);
	assert_int_equal(shared[0], 0);
	if (shared[1] != -EPERM)
		fail_msg("rlt_run: %d, want -EPERM; stderr: %s", shared[1], err);
	assert_non_null(strstr(err, "directly"));
	assert_null(strstr(err, "falling back"));
	munmap(shared, 2 * sizeof(int));
}
#endif

int main(void)
{
	unsetenv("RINGLET_POLICY");
	unsetenv("RINGLET_POLICY_STRICT");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_direct_build_runs_on_io_uring),
	    cmocka_unit_test(test_direct_build_refuses_other_policies),
#ifdef THIS_AUDIT_ARCH
	    cmocka_unit_test(test_direct_build_refuses_the_fallback_under_seccomp),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
