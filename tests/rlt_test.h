/* Shared helpers for the cmocka tests. */
#ifndef RLT_TEST_H
#define RLT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ringlet.h>

/* Run fn(arg) as a root task with the default config and assert success. */
static inline void *rlt_test_run(rlt_task_fn fn, void *arg)
{
	void *res = NULL;
	int rc = rlt_run(fn, arg, NULL, &res);
	assert_int_equal(rc, 0);
	return res;
}

/* The same on a single worker: for tests whose expectations depend on the
 * order in which tasks run (asyncio's single-threaded semantics). */
static inline void *rlt_test_run1(rlt_task_fn fn, void *arg)
{
	void *res = NULL;
	rlt_config cfg = {.workers = 1};
	int rc = rlt_run(fn, arg, &cfg, &res);
	assert_int_equal(rc, 0);
	return res;
}

/* True when built with a sanitizer (timing bounds are looser there). */
static inline int rlt_test_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 1;
#else
	return 0;
#endif
}

/* Iteration counts: ThreadSanitizer makes every task a fiber (it caps live
 * fibers at 8128 and each costs tens of microseconds), so its build runs the
 * same tests on fewer tasks. */
#if defined(__SANITIZE_THREAD__)
#define RLT_TEST_SCALE(n) ((n) / 10 > 0 ? (n) / 10 : 1)
#else
#define RLT_TEST_SCALE(n) (n)
#endif

#endif
