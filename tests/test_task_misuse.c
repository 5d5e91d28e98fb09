/* Handle misuse (issue 14, defect 10): joining a task twice, joining after
 * detaching it, cancelling after joining it, detaching twice. In debug mode
 * (RINGLET_DEBUG=1, rlt_config.debug, debug builds) each aborts with a
 * report naming the task and the call; the legitimate uses do not. Each
 * misuse runs in a child process (a death test). */
#include "tests/rlt_test.h"

static void *quick(void *arg)
{
	return arg;
}

static void *waits(void *arg)
{
	rlt_event_wait(arg);
	return NULL;
}

static void *root_join_twice(void *arg)
{
	rlt_task *t = rlt_spawn(quick, NULL, NULL);
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_join(t, NULL);
	fprintf(stderr, "survived\n");
	return NULL;
}

static void *root_cancel_after_join(void *arg)
{
	rlt_task *t = rlt_spawn(quick, NULL, &(rlt_spawn_opts){.name = "joined-then-cancelled"});
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_cancel(t);
	fprintf(stderr, "survived\n");
	return NULL;
}

/* Detached while it still runs (its memory is alive): the join is caught
 * at once, not when it would read freed memory. */
static void *root_join_after_detach(void *arg)
{
	rlt_event *ev = rlt_event_new();
	rlt_task *t = rlt_spawn(waits, ev, NULL);
	assert_int_equal(rlt_detach(t), 0);
	rlt_join(t, NULL);
	fprintf(stderr, "survived\n");
	return NULL;
}

/* Detached and finished (its memory freed, kept in quarantine). */
static void *root_join_after_detached_task_ended(void *arg)
{
	rlt_task *t = rlt_spawn(quick, NULL, &(rlt_spawn_opts){.flags = RLT_SPAWN_DETACHED});
	for (int i = 0; i < 100; i++)
		rlt_sleep(RLT_NSEC_PER_MSEC / 10);
	rlt_join(t, NULL);
	fprintf(stderr, "survived\n");
	return NULL;
}

static void *root_cancel_after_detached_task_ended(void *arg)
{
	rlt_task *t = rlt_spawn(quick, NULL, NULL);
	assert_int_equal(rlt_detach(t), 0);
	for (int i = 0; i < 100; i++)
		rlt_sleep(RLT_NSEC_PER_MSEC / 10);
	rlt_cancel(t);
	fprintf(stderr, "survived\n");
	return NULL;
}

static void *root_detach_twice(void *arg)
{
	rlt_task *t = rlt_spawn(quick, NULL, NULL);
	assert_int_equal(rlt_detach(t), 0);
	rlt_detach(t);
	fprintf(stderr, "survived\n");
	return NULL;
}

static void *root_join_group_task(void *arg)
{
	rlt_group *g = rlt_group_new();
	rlt_task *t = rlt_group_spawn(g, quick, NULL, NULL);
	assert_int_equal(rlt_group_wait(g, NULL), 0);
	rlt_join(t, NULL); /* the group joined it */
	fprintf(stderr, "survived\n");
	return NULL;
}

static void expect_abort(rlt_task_fn root, const rlt_config *cfg, const char *env,
			 const char *want1, const char *want2)
{
	char err[4096];
	int status = rlt_test_run_child_cfg(root, NULL, cfg, env, err, sizeof(err));
	if (!strstr(err, want1) || !strstr(err, want2))
		fail_msg("wanted \"%s\" and \"%s\" on stderr; status %#x, stderr: %s", want1, want2,
			 (unsigned)status, err);
	assert_null(strstr(err, "survived"));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_join_twice_aborts_naming_task_and_call(void **state)
{
	expect_abort(root_join_twice, NULL, "RINGLET_DEBUG=1", "rlt_join(task 'quick-",
		     "the task was already joined");
}

static void test_cancel_after_join_aborts(void **state)
{
	expect_abort(root_cancel_after_join, NULL, "RINGLET_DEBUG=1",
		     "rlt_cancel(task 'joined-then-cancelled'", "the task was already joined");
}

static void test_join_after_detach_aborts(void **state)
{
	expect_abort(root_join_after_detach, NULL, "RINGLET_DEBUG=1", "rlt_join(task 'waits-",
		     "the task was detached");
	expect_abort(root_join_after_detached_task_ended, NULL, "RINGLET_DEBUG=1",
		     "rlt_join(task 'quick-", "the task was detached");
	expect_abort(root_cancel_after_detached_task_ended, NULL, "RINGLET_DEBUG=1",
		     "rlt_cancel(task 'quick-", "the task was detached and has ended");
}

static void test_detach_twice_and_joining_a_group_task_abort(void **state)
{
	/* Debug mode from the configuration this time. */
	rlt_config cfg = {.debug = true};
	expect_abort(root_detach_twice, &cfg, NULL, "rlt_detach(task 'quick-",
		     "the task was detached");
	expect_abort(root_join_group_task, &cfg, NULL, "rlt_join(task 'quick-",
		     "the task was already joined");
}

/* A debug build checks without being asked (RLT_DEBUG_BUILD); the other
 * builds only in debug mode, so there the misuse would be undefined. */
static void test_debug_build_checks_without_the_setting(void **state)
{
	if (strcmp(RLT_BUILD_TYPE, "debug") != 0) {
		printf("skipped: a %s build checks handles only with RINGLET_DEBUG=1 "
		       "(tools/ringlet build debug runs this)\n",
		       RLT_BUILD_TYPE);
		skip();
	}
	unsetenv("RINGLET_DEBUG");
	expect_abort(root_join_twice, NULL, NULL, "rlt_join(task 'quick-",
		     "the task was already joined");
}

/* What is allowed, in debug mode: join once, detach once (after a cancel),
 * gather, groups, wait_for; many tasks (the quarantine recycles its oldest
 * entries). */
static void *root_legal(void *arg)
{
	for (int i = 0; i < RLT_TEST_SCALE(6000); i++) {
		rlt_task *t = rlt_spawn(quick, (void *)(intptr_t)i, NULL);
		void *r;
		assert_int_equal(rlt_join(t, &r), 0);
		assert_int_equal((intptr_t)r, i);
	}
	rlt_event *ev = rlt_event_new();
	rlt_task *d = rlt_spawn(waits, ev, NULL);
	assert_int_equal(rlt_cancel(d), 0);
	assert_int_equal(rlt_detach(d), 0);
	rlt_task *g[3];
	for (int i = 0; i < 3; i++)
		g[i] = rlt_spawn(quick, NULL, NULL);
	assert_int_equal(rlt_gather(g, 3, NULL, NULL, 0), 0);
	rlt_task *w = rlt_spawn(waits, ev, NULL);
	assert_int_equal(rlt_wait_for(w, RLT_NSEC_PER_MSEC, NULL), -ETIMEDOUT);
	rlt_event_set(ev);
	rlt_sleep(RLT_NSEC_PER_MSEC);
	rlt_event_free(ev);
	return NULL;
}

static void test_legal_handle_uses_run_in_debug_mode(void **state)
{
	setenv("RINGLET_DEBUG", "1", 1);
	void *res = NULL;
	int rc = rlt_run(root_legal, NULL, NULL, &res);
	unsetenv("RINGLET_DEBUG");
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_join_twice_aborts_naming_task_and_call),
	    cmocka_unit_test(test_cancel_after_join_aborts),
	    cmocka_unit_test(test_join_after_detach_aborts),
	    cmocka_unit_test(test_detach_twice_and_joining_a_group_task_abort),
	    cmocka_unit_test(test_debug_build_checks_without_the_setting),
	    cmocka_unit_test(test_legal_handle_uses_run_in_debug_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
