/* errno in a task that migrates: a function that touched errno on one
 * worker's thread, suspends, resumes on another worker and then fails must
 * see the failure's errno, not the first thread's (include/ringlet/common.h:
 * compilers keep errno's address across calls; this file, like all of
 * ringlet's, is built with RLT_TASK_ERRNO). */
#include "tests/rlt_test.h"

#include <stdatomic.h>

#define SEC RLT_NSEC_PER_SEC

static atomic_int moved; /* the task under test reached the other worker */

/* Holds its worker's thread (it never suspends) until the task it shares
 * the worker with has been taken by the other worker, or 5 s have passed
 * (the watchdog hands a held worker's runnable tasks over after
 * RINGLET_SLOW_MS, 100 ms, if no idle worker stole them before). */
static void *hold_worker(void *arg)
{
	uint64_t end = rlt_now() + 5 * SEC;
	while (!atomic_load(&moved) && rlt_now() < end)
		__asm__ volatile("" ::: "memory");
	return NULL;
}

/* Move the calling task off its worker: it yields behind a task that
 * holds the worker, and the other worker takes it. Returns its worker
 * after. */
static __attribute__((noinline)) int migrate_from(int from)
{
	rlt_spawn_opts o = {.flags = RLT_SPAWN_PINNED | RLT_SPAWN_DETACHED};
	if (!rlt_spawn(hold_worker, NULL, &o))
		return -1;
	uint64_t end = rlt_now() + 10 * SEC;
	while (rlt_worker_index() == from && rlt_now() < end)
		rlt_yield();
	atomic_store(&moved, 1);
	return rlt_worker_index();
}

/* errno is written before the suspension (its address computed on one
 * worker's thread) and set again by a failing call after it, on the
 * other's. */
static void *errno_after_migration(void *arg)
{
	atomic_store(&moved, 0);
	int from = rlt_worker_index();
	errno = 0;
	int *before = &errno;
	int w = migrate_from(from);
	assert_true(w >= 0 && w != from);
	/* A call that fails on this thread, with an errno unlike the old one. */
	rlt_spawn_opts bad = {.stack_size = 1};
	assert_null(rlt_spawn(hold_worker, NULL, &bad));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rlt_errno, EINVAL);
	/* The address was computed again on this thread. */
	assert_ptr_not_equal(&errno, before);
	assert_ptr_equal(&errno, rlt_errno_location());
	return NULL;
}

static void *root(void *arg)
{
	rlt_task *t = rlt_spawn(errno_after_migration, NULL, NULL);
	assert_non_null(t);
	assert_int_equal(rlt_join(t, NULL), 0);
	return NULL;
}

static void test_errno_after_a_migration_is_this_threads(void **state)
{
	rlt_config cfg = {.workers = 2};
	for (int i = 0; i < 5; i++)
		assert_int_equal(rlt_run(root, NULL, &cfg, NULL), 0);
}

/* rlt_errno without RLT_TASK_ERRNO's macro: reads and writes this
 * thread's errno. */
static void test_rlt_errno_is_errno(void **state)
{
	rlt_errno = ENOENT;
	assert_int_equal(*__errno_location(), ENOENT);
	*__errno_location() = EAGAIN;
	assert_int_equal(rlt_errno, EAGAIN);
	assert_ptr_equal(rlt_errno_location(), __errno_location());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errno_after_a_migration_is_this_threads),
	    cmocka_unit_test(test_rlt_errno_is_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
