/* Tasks: spawn, join, detach, yield, names, ordering, many tasks. */
#include "tests/rlt_test.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static void *return_arg_plus_one(void *arg)
{
	return (void *)((intptr_t)arg + 1);
}

static void *root_spawn_join(void *arg)
{
	rlt_task *t = rlt_spawn(return_arg_plus_one, (void *)41, NULL);
	assert_non_null(t);
	void *res = NULL;
	assert_int_equal(rlt_join(t, &res), 0);
	assert_int_equal((intptr_t)res, 42);
	return (void *)7;
}

static void test_spawn_join_returns_result(void **state)
{
	assert_int_equal((intptr_t)rlt_test_run(root_spawn_join, NULL), 7);
}

static void *root_join_after_exit(void *arg)
{
	rlt_task *t = rlt_spawn(return_arg_plus_one, (void *)1, NULL);
	/* Let t run to completion before joining. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(rlt_yield(), 0);
	void *res = NULL;
	assert_int_equal(rlt_join(t, &res), 0);
	assert_int_equal((intptr_t)res, 2);
	return NULL;
}

static void test_join_after_task_already_returned(void **state)
{
	rlt_test_run(root_join_after_exit, NULL);
}

static int order[16];
static int norder;

static void *log_yield(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < 3; i++) {
		order[norder++] = id * 10 + i;
		rlt_yield();
	}
	return NULL;
}

static void *root_yield_interleaves(void *arg)
{
	norder = 0;
	rlt_task *a = rlt_spawn(log_yield, (void *)1, NULL);
	rlt_task *b = rlt_spawn(log_yield, (void *)2, NULL);
	assert_int_equal(rlt_join(a, NULL), 0);
	assert_int_equal(rlt_join(b, NULL), 0);
	return NULL;
}

static void test_yield_round_robins_between_tasks(void **state)
{
	rlt_test_run1(root_yield_interleaves, NULL);
	int want[] = {10, 20, 11, 21, 12, 22};
	assert_int_equal(norder, 6);
	assert_memory_equal(order, want, sizeof(want));
}

static atomic_int detached_ran;

static void *mark(void *arg)
{
	rlt_yield();
	detached_ran++;
	return NULL;
}

static void *root_detach(void *arg)
{
	detached_ran = 0;
	rlt_task *t = rlt_spawn(mark, NULL, NULL);
	assert_int_equal(rlt_detach(t), 0);
	rlt_spawn_opts o = {.flags = RLT_SPAWN_DETACHED};
	assert_non_null(rlt_spawn(mark, NULL, &o));
	while (detached_ran < 2)
		rlt_yield();
	return NULL;
}

static void test_detached_tasks_run_and_are_freed(void **state)
{
	rlt_test_run(root_detach, NULL);
	assert_int_equal(detached_ran, 2);
}

static void *name_of_self(void *arg)
{
	return (void *)rlt_task_name(NULL);
}

/* Copies its own name out (the task's memory is freed once joined). */
static void *copy_own_name(void *buf)
{
	snprintf(buf, RLT_TASK_NAME_MAX + 1, "%s", rlt_task_name(NULL));
	return buf;
}

static void *a_task_function_with_a_name_longer_than_fits(void *arg)
{
	if (arg)
		rlt_event_wait(arg);
	return NULL;
}

/* Unnamed tasks are named after their function (issue 14): what
 * rlt_spawn's macro saw as fn, when it is an identifier. */
static void *root_default_names(void *arg)
{
	char want[64], got[RLT_TASK_NAME_MAX + 1], seen[6][RLT_TASK_NAME_MAX + 1];
	rlt_task *t[6];
	t[0] = rlt_spawn(copy_own_name, seen[0], NULL);
	t[1] = (rlt_spawn)(copy_own_name, seen[1], NULL); /* the function: no name */
	rlt_task_fn fns[1] = {copy_own_name};
	t[2] = rlt_spawn(fns[0], seen[2], NULL); /* not an identifier */
	t[3] = rlt_spawn(a_task_function_with_a_name_longer_than_fits, NULL, NULL);
	t[4] = rlt_spawn_named(copy_own_name, seen[4], NULL, "my_fn");
	t[5] = rlt_runtime_spawn(rlt_runtime_self(), copy_own_name, seen[5], NULL);
	const char *prefix[6] = {"copy_own_name", "task",
				 "task",	  "a_task_function_with_a_name_longer_than_fits",
				 "my_fn",	  "copy_own_name"};
	for (int i = 0; i < 6; i++) {
		assert_non_null(t[i]);
		snprintf(want, sizeof(want), "%s-%llu", prefix[i],
			 (unsigned long long)rlt_task_id(t[i]));
		if (strlen(want) > RLT_TASK_NAME_MAX) {
			/* The function's name is cut, the id kept whole. */
			char id[24];
			int n = snprintf(id, sizeof(id), "-%llu",
					 (unsigned long long)rlt_task_id(t[i]));
			snprintf(want, sizeof(want), "%.*s%s", RLT_TASK_NAME_MAX - n, prefix[i],
				 id);
		}
		assert_string_equal(rlt_task_name(t[i]), want);
		void *r;
		if (i != 3) {
			assert_int_equal(rlt_join(t[i], &r), 0);
			assert_ptr_equal(r, seen[i]);
			assert_string_equal(seen[i], want); /* the task sees it too */
		} else {
			assert_int_equal(rlt_join(t[i], NULL), 0);
		}
	}
	/* Group tasks, and what the dump shows. */
	rlt_group *g = rlt_group_new();
	assert_non_null(g);
	rlt_event *ev = rlt_event_new();
	rlt_task *gt = rlt_group_spawn(g, a_task_function_with_a_name_longer_than_fits, ev, NULL);
	assert_non_null(gt);
	snprintf(got, sizeof(got), "%s", rlt_task_name(gt));
	assert_true(strncmp(got, "a_task_function_with", 20) == 0);
	while (rlt_task_state(gt, NULL, 0) != RLT_TASK_WAITING)
		rlt_yield(); /* the dump lists tasks that have started */
	char *dump = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&dump, &len);
	assert_non_null(f);
	assert_int_equal(rlt_dump_tasks(f), 0);
	fclose(f);
	if (!strstr(dump, got))
		fail_msg("the dump does not show %s:\n%s", got, dump);
	free(dump);
	rlt_event_set(ev);
	assert_int_equal(rlt_group_wait(g, NULL), 0);
	rlt_event_free(ev);
	return NULL;
}

static void test_unnamed_tasks_are_named_after_their_function(void **state)
{
	rlt_test_run(root_default_names, NULL);
}

static void *root_names(void *arg)
{
	assert_string_equal(rlt_task_name(NULL), "main");
	assert_int_equal(rlt_task_id(NULL), 1);
	rlt_spawn_opts o = {.name = "worker-bee"};
	rlt_task *t = rlt_spawn(name_of_self, NULL, &o);
	assert_string_equal(rlt_task_name(t), "worker-bee");
	assert_ptr_not_equal(rlt_current(), t);
	rlt_task *u = rlt_spawn(name_of_self, NULL, NULL);
	char want[32];
	snprintf(want, sizeof(want), "name_of_self-%llu", (unsigned long long)rlt_task_id(u));
	assert_string_equal(rlt_task_name(u), want);
	const char *long_name = "a-name-that-is-much-longer-than-thirty-one-characters";
	o.name = long_name;
	rlt_task *v = rlt_spawn(name_of_self, NULL, &o);
	assert_int_equal(strlen(rlt_task_name(v)), RLT_TASK_NAME_MAX);
	assert_memory_equal(rlt_task_name(v), long_name, RLT_TASK_NAME_MAX);
	void *r;
	assert_int_equal(rlt_join(t, &r), 0);
	assert_int_equal(rlt_join(u, NULL), 0);
	assert_int_equal(rlt_join(v, NULL), 0);
	return NULL;
}

static void test_task_names_and_ids(void **state)
{
	rlt_test_run(root_names, NULL);
}

static void *root_bad_args(void *arg)
{
	errno = 0;
	assert_null(rlt_spawn(NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	rlt_spawn_opts o = {.stack_size = 100};
	assert_null(rlt_spawn(return_arg_plus_one, NULL, &o));
	assert_int_equal(errno, EINVAL);
	o.stack_size = (size_t)4 << 30;
	assert_null(rlt_spawn(return_arg_plus_one, NULL, &o));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rlt_join(NULL, NULL), -EINVAL);
	assert_int_equal(rlt_join(rlt_current(), NULL), -EDEADLK);
	assert_int_equal(rlt_detach(NULL), -EINVAL);
	return NULL;
}

static void test_bad_arguments_give_errors(void **state)
{
	rlt_test_run(root_bad_args, NULL);
}

static void test_calls_outside_a_task_give_eperm(void **state)
{
	errno = 0;
	assert_null(rlt_spawn(return_arg_plus_one, NULL, NULL));
	assert_int_equal(errno, EPERM);
	assert_int_equal(rlt_yield(), -EPERM);
	assert_null(rlt_current());
	assert_null(rlt_task_name(NULL));
}

static void *joiner_of(void *arg)
{
	return (void *)(intptr_t)rlt_join((rlt_task *)arg, NULL);
}

static void *sleepy(void *arg)
{
	rlt_sleep(2 * RLT_NSEC_PER_MSEC);
	return NULL;
}

static void *root_double_join(void *arg)
{
	rlt_task *t = rlt_spawn(sleepy, NULL, NULL);
	rlt_task *j = rlt_spawn(joiner_of, t, NULL);
	rlt_yield(); /* j is now waiting on t */
	assert_int_equal(rlt_join(t, NULL), -EBUSY);
	void *r;
	assert_int_equal(rlt_join(j, &r), 0);
	assert_int_equal((intptr_t)r, 0);
	return NULL;
}

static void test_second_joiner_gets_ebusy(void **state)
{
	rlt_test_run1(root_double_join, NULL);
}

#define MANY RLT_TEST_SCALE(5000)

static void *square(void *arg)
{
	intptr_t v = (intptr_t)arg;
	rlt_yield();
	rlt_yield();
	return (void *)(v * v);
}

static void *root_many(void *arg)
{
	static rlt_task *ts[5000];
	for (intptr_t i = 0; i < MANY; i++) {
		ts[i] = rlt_spawn(square, (void *)i, NULL);
		assert_non_null(ts[i]);
	}
	for (intptr_t i = 0; i < MANY; i++) {
		void *r;
		assert_int_equal(rlt_join(ts[i], &r), 0);
		assert_int_equal((intptr_t)r, i * i);
	}
	return NULL;
}

static void test_thousands_of_tasks_interleave(void **state)
{
	rlt_test_run(root_many, NULL);
}

static void *spawn_tree(void *arg)
{
	intptr_t depth = (intptr_t)arg;
	if (depth == 0)
		return (void *)1;
	rlt_task *l = rlt_spawn(spawn_tree, (void *)(depth - 1), NULL);
	rlt_task *r = rlt_spawn(spawn_tree, (void *)(depth - 1), NULL);
	void *a, *b;
	assert_int_equal(rlt_join(l, &a), 0);
	assert_int_equal(rlt_join(r, &b), 0);
	return (void *)((intptr_t)a + (intptr_t)b);
}

static void test_tasks_spawned_by_tasks(void **state)
{
	assert_int_equal((intptr_t)rlt_test_run(spawn_tree, (void *)10), 1024);
}

static void *big_stack_user(void *arg)
{
	volatile char buf[512 * 1024];
	for (size_t i = 0; i < sizeof(buf); i += 4096)
		buf[i] = (char)i;
	return (void *)(intptr_t)buf[4096];
}

static void *root_stack_sizes(void *arg)
{
	rlt_spawn_opts o = {.stack_size = 1024 * 1024};
	rlt_task *t = rlt_spawn(big_stack_user, NULL, &o);
	assert_non_null(t);
	assert_int_equal(rlt_join(t, NULL), 0);
	/* Nine distinct sizes: more than the pool's size classes. */
	for (size_t k = 1; k <= 9; k++) {
		rlt_spawn_opts s = {.stack_size = 16384 + k * 4096};
		rlt_task *u = rlt_spawn(return_arg_plus_one, (void *)k, &s);
		assert_non_null(u);
		void *r;
		assert_int_equal(rlt_join(u, &r), 0);
		assert_int_equal((intptr_t)r, (intptr_t)k + 1);
	}
	return NULL;
}

static void test_per_task_stack_sizes(void **state)
{
	rlt_test_run(root_stack_sizes, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spawn_join_returns_result),
	    cmocka_unit_test(test_join_after_task_already_returned),
	    cmocka_unit_test(test_yield_round_robins_between_tasks),
	    cmocka_unit_test(test_detached_tasks_run_and_are_freed),
	    cmocka_unit_test(test_task_names_and_ids),
	    cmocka_unit_test(test_unnamed_tasks_are_named_after_their_function),
	    cmocka_unit_test(test_bad_arguments_give_errors),
	    cmocka_unit_test(test_calls_outside_a_task_give_eperm),
	    cmocka_unit_test(test_second_joiner_gets_ebusy),
	    cmocka_unit_test(test_thousands_of_tasks_interleave),
	    cmocka_unit_test(test_tasks_spawned_by_tasks),
	    cmocka_unit_test(test_per_task_stack_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
