/* Loop policies: the registry, choosing one (config, environment,
 * fallback, strict), a user-written policy, and io_uring refused by a
 * seccomp filter. */
#include "tests/rlt_test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a little I/O, and which policy ran it ---- */

static char ran_policy[64];

static void *io_only(void *arg)
{
	(void)arg;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	char out[] = "policy", in[sizeof(out)] = {0};
	assert_int_equal(rlt_write(p[1], out, sizeof(out), -1), sizeof(out));
	assert_int_equal(rlt_poll(p[0], POLLIN) & POLLIN, POLLIN);
	assert_int_equal(rlt_read(p[0], in, sizeof(in), -1), sizeof(in));
	assert_string_equal(in, out);
	assert_int_equal(rlt_close(p[0]), 0);
	assert_int_equal(rlt_close(p[1]), 0);
	assert_int_equal(rlt_sleep(1000000), 0);
	return NULL;
}

/* The root task: which policy, then the I/O. */
static void *io_and_report(void *arg)
{
	snprintf(ran_policy, sizeof(ran_policy), "%s", rlt_runtime_policy(rlt_runtime_self()));
	return io_only(arg);
}

static int run_with(const char *policy, bool strict, unsigned workers)
{
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.policy = policy;
	cfg.policy_strict = strict;
	cfg.workers = workers;
	ran_policy[0] = '\0';
	return rlt_run(io_and_report, NULL, &cfg, NULL);
}

static void test_default_is_io_uring(void **state)
{
	(void)state;
	assert_int_equal(run_with(NULL, true, 1), 0);
	assert_string_equal(ran_policy, "io_uring");
}

static void test_config_selects_sqpoll_on_every_worker(void **state)
{
	(void)state;
	assert_int_equal(run_with("io_uring-sqpoll", true, 2), 0);
	assert_string_equal(ran_policy, "io_uring-sqpoll");
	assert_int_equal(run_with("io_uring-sqpoll:idle_ms=5", true, 2), 0);
	assert_string_equal(ran_policy, "io_uring-sqpoll:idle_ms=5");
}

static void test_environment_wins_over_config(void **state)
{
	(void)state;
	setenv("RINGLET_POLICY", "io_uring-sqpoll", 1);
	int rc = run_with("io_uring", true, 1);
	unsetenv("RINGLET_POLICY");
	assert_int_equal(rc, 0);
	assert_string_equal(ran_policy, "io_uring-sqpoll");
}

static void test_unknown_name_and_bad_options_fail_clearly(void **state)
{
	(void)state;
	assert_int_equal(run_with("no-such-policy", false, 1), -ENOENT);
	/* A bad option is the caller's error: no fallback, strict or not. */
	assert_int_equal(run_with("io_uring:bogus", false, 1), -EINVAL);
	assert_int_equal(run_with("io_uring-sqpoll:idle_ms=x", false, 1), -EINVAL);
}

static void test_registry(void **state)
{
	(void)state;
	assert_int_equal(rlt_policy_register(NULL), -EINVAL);
	rlt_policy bad = {.name = "a:b"};
	assert_int_equal(rlt_policy_register(&bad), -EINVAL);
	const rlt_policy *uring = rlt_policy_find("io_uring");
	assert_non_null(uring);
	assert_ptr_equal(rlt_policy_find("io_uring:whatever"), uring);
	assert_null(rlt_policy_find("io_urin"));
	assert_null(rlt_policy_find(NULL));
	assert_int_equal(rlt_policy_register(uring), -EEXIST);
	const rlt_policy *list[32];
	size_t n = rlt_policy_list(list, 32);
	assert_true(n >= 2);
	assert_string_equal(list[0]->name, "io_uring");
	assert_string_equal(list[1]->name, "io_uring-sqpoll");
	assert_int_equal(rlt_policy_probe("io_uring"), 0);
	assert_int_equal(rlt_policy_probe("nope"), -ENOENT);
	assert_int_equal(rlt_policy_probe("io_uring:bogus"), -EINVAL);
}

/* ---- a user policy: counts calls, delegates (the POLICIES.md example) ---- */

static const rlt_policy *inner;
static atomic_ulong n_init, n_fini, n_submit, n_poll, n_wake, n_cancel_all;

typedef struct counting {
	rlt_loop inner; /* the wrapped policy's loop */
} counting;

static int counting_probe(const char *options)
{
	if (options[0])
		return -EINVAL;
	return inner->probe ? inner->probe("") : 0;
}

static int counting_init(rlt_loop *loop)
{
	counting *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->inner = *loop;	 /* same worker, same sizes... */
	c->inner.policy = inner; /* ...the wrapped policy, with its own state */
	c->inner.options = "";
	c->inner.state = NULL;
	int rc = inner->init(&c->inner);
	if (rc < 0) {
		free(c);
		return rc;
	}
	loop->state = c;
	atomic_fetch_add(&n_init, 1);
	return 0;
}

static void counting_fini(rlt_loop *loop)
{
	counting *c = loop->state;
	inner->fini(&c->inner);
	free(c);
	atomic_fetch_add(&n_fini, 1);
}

static void counting_submit(rlt_loop *loop, rlt_op *op)
{
	atomic_fetch_add_explicit(&n_submit, 1, memory_order_relaxed);
	inner->submit(&((counting *)loop->state)->inner, op);
}

static int counting_poll(rlt_loop *loop, int64_t timeout_ns)
{
	atomic_fetch_add_explicit(&n_poll, 1, memory_order_relaxed);
	return inner->poll(&((counting *)loop->state)->inner, timeout_ns);
}

static void counting_wake(rlt_loop *target, rlt_loop *from)
{
	atomic_fetch_add_explicit(&n_wake, 1, memory_order_relaxed);
	inner->wake(&((counting *)target->state)->inner,
		    from ? &((counting *)from->state)->inner : NULL);
}

static int counting_cancel(rlt_loop *loop, rlt_op *op)
{
	return inner->cancel(&((counting *)loop->state)->inner, op);
}

static void counting_cancel_all(rlt_loop *loop)
{
	atomic_fetch_add(&n_cancel_all, 1);
	inner->cancel_all(&((counting *)loop->state)->inner);
}

static const rlt_policy counting_policy = {
    .name = "counting",
    .summary = "counts calls, then hands them to epoll",
    .native_ops = 0, /* set from the inner policy in the test */
    .probe = counting_probe,
    .init = counting_init,
    .fini = counting_fini,
    .submit = counting_submit,
    .poll = counting_poll,
    .wake = counting_wake,
    .cancel = counting_cancel,
    .cancel_all = counting_cancel_all,
};

static void *spawn_from_thread_then_join(void *arg)
{
	/* A second worker and cross-worker traffic, so wake is exercised. */
	rlt_task *ts[64];
	for (int i = 0; i < 64; i++)
		ts[i] = rlt_spawn(io_only, arg, NULL);
	for (int i = 0; i < 64; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	return io_and_report(arg);
}

static void test_user_policy_is_selected_by_name_and_used(void **state)
{
	(void)state;
	inner = rlt_policy_find("epoll");
	if (!inner) {
		print_message(
		    "no epoll policy in this build: the counting policy wraps io_uring\n");
		inner = rlt_policy_find("io_uring");
	}
	assert_int_equal(rlt_policy_register(&counting_policy), 0);
	assert_int_equal(rlt_policy_register(&counting_policy), -EEXIST);
	assert_ptr_equal(rlt_policy_find("counting"), &counting_policy);

	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.policy = "counting";
	cfg.policy_strict = true;
	cfg.workers = 2;
	ran_policy[0] = '\0';
	assert_int_equal(rlt_run(spawn_from_thread_then_join, NULL, &cfg, NULL), 0);
	assert_string_equal(ran_policy, "counting");
	assert_int_equal(atomic_load(&n_init), 2);
	assert_int_equal(atomic_load(&n_fini), 2);
	assert_int_equal(atomic_load(&n_cancel_all), 2);
	/* 65 tasks x (write, poll, read, 2 closes) went through it. */
	assert_true(atomic_load(&n_submit) >= 65 * 5);
	assert_true(atomic_load(&n_poll) > 0);
	assert_true(atomic_load(&n_wake) > 0); /* at least the stop */
	print_message("counting: %lu submits, %lu polls, %lu wakes\n", atomic_load(&n_submit),
		      atomic_load(&n_poll), atomic_load(&n_wake));
	/* And the environment selects it the same way. */
	setenv("RINGLET_POLICY", "counting", 1);
	unsigned long before = atomic_load(&n_submit);
	int rc = run_with(NULL, true, 1);
	unsetenv("RINGLET_POLICY");
	assert_int_equal(rc, 0);
	assert_string_equal(ran_policy, "counting");
	assert_true(atomic_load(&n_submit) > before);
}

/* ---- io_uring refused by seccomp, in a child process ---- */

#include "rlt_seccomp.h"

#ifdef THIS_AUDIT_ARCH
typedef struct child_result {
	int rc[2]; /* of two rlt_run calls */
	char policy[2][64];
	int filter_rc;
} child_result;

/* Fork; in the child, forbid io_uring, run twice; collect the results and
 * everything written to stderr. */
typedef struct forbidden_run {
	const char *policy;
	bool strict;
	child_result *shared;
} forbidden_run;

static void forbidden_body(void *arg)
{
	forbidden_run *f = arg;
	f->shared->filter_rc = forbid_io_uring();
	for (int i = 0; i < 2; i++) {
		f->shared->rc[i] = run_with(f->policy, f->strict, 2);
		snprintf(f->shared->policy[i], sizeof(f->shared->policy[i]), "%s", ran_policy);
	}
}

static void run_forbidden(const char *policy, bool strict, child_result *out, char *err,
			  size_t errlen)
{
	child_result *shared =
	    mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, sizeof(*shared));
	forbidden_run f = {policy, strict, shared};
	int status = rlt_test_fork(forbidden_body, &f, err, errlen);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	*out = *shared;
	munmap(shared, sizeof(*shared));
	assert_int_equal(out->filter_rc, 0);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_seccomp_forbidden_io_uring_falls_back_to_epoll(void **state)
{
	(void)state;
	if (!rlt_policy_find("epoll")) {
		print_message("no epoll policy in this build: nothing to fall back to\n");
		skip();
	}
	child_result r;
	char err[2048];
	run_forbidden(NULL, false, &r, err, sizeof(err));
	print_message("child stderr: %s", err);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.rc[i], 0);
		assert_string_equal(r.policy[i], "epoll");
	}
	/* Said once, naming the cause. */
	assert_int_equal(count(err, "falling back"), 1);
	assert_non_null(strstr(err, "io_uring"));
	assert_non_null(strstr(err, strerror(EPERM)));
}

static void test_seccomp_forbidden_io_uring_strict_fails_naming_the_cause(void **state)
{
	(void)state;
	child_result r;
	char err[2048];
	run_forbidden("io_uring", true, &r, err, sizeof(err));
	print_message("child stderr: %s", err);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r.rc[i], -EPERM);
		assert_string_equal(r.policy[i], "");
	}
	assert_non_null(strstr(err, "\"io_uring\" cannot start"));
	assert_non_null(strstr(err, strerror(EPERM)));
	assert_non_null(strstr(err, "strict"));
	/* The sqpoll variant is refused the same way. */
	run_forbidden("io_uring-sqpoll", true, &r, err, sizeof(err));
	assert_int_equal(r.rc[0], -EPERM);
}
#endif

int main(void)
{
	/* These tests choose their policies: an inherited choice would win. */
	unsetenv("RINGLET_POLICY");
	unsetenv("RINGLET_POLICY_STRICT");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_is_io_uring),
	    cmocka_unit_test(test_config_selects_sqpoll_on_every_worker),
	    cmocka_unit_test(test_environment_wins_over_config),
	    cmocka_unit_test(test_unknown_name_and_bad_options_fail_clearly),
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_user_policy_is_selected_by_name_and_used),
#ifdef THIS_AUDIT_ARCH
	    cmocka_unit_test(test_seccomp_forbidden_io_uring_falls_back_to_epoll),
	    cmocka_unit_test(test_seccomp_forbidden_io_uring_strict_fails_naming_the_cause),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
