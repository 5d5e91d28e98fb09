/* Futures: set before and after the await, errors, timeouts, other threads. */
#include "tests/rlt_test.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static void *root_set_before_await(void *arg)
{
	rlt_future *f = rlt_future_new();
	assert_non_null(f);
	assert_false(rlt_future_done(f));
	assert_int_equal(rlt_future_set(f, (void *)666), 0);
	assert_true(rlt_future_done(f));
	void *v = NULL;
	assert_int_equal(rlt_future_await(f, &v, -1), 0);
	assert_int_equal((intptr_t)v, 666);
	/* Awaiting again returns the same value. */
	assert_int_equal(rlt_future_await(f, &v, 0), 0);
	assert_int_equal(rlt_future_set(f, NULL), -EALREADY);
	assert_int_equal(rlt_future_fail(f, -EIO), -EALREADY);
	rlt_future_release(f);
	return NULL;
}

static void test_set_before_await(void **state)
{
	rlt_test_run(root_set_before_await, NULL);
}

static void *set_later(void *arg)
{
	rlt_future *f = arg;
	rlt_sleep(1 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_future_set(f, (void *)777), 0);
	rlt_future_release(f);
	return NULL;
}

static void *root_set_after_await(void *arg)
{
	rlt_future *f = rlt_future_new();
	rlt_task *t = rlt_spawn(set_later, rlt_future_retain(f), NULL);
	void *v = NULL;
	assert_int_equal(rlt_future_await(f, &v, -1), 0);
	assert_int_equal((intptr_t)v, 777);
	rlt_future_release(f);
	assert_int_equal(rlt_join(t, NULL), 0);
	return NULL;
}

static void test_set_after_await_wakes_awaiter(void **state)
{
	rlt_test_run(root_set_after_await, NULL);
}

static void *fail_later(void *arg)
{
	rlt_yield();
	assert_int_equal(rlt_future_fail(arg, -ECONNRESET), 0);
	rlt_future_release(arg);
	return NULL;
}

static void *root_fail(void *arg)
{
	rlt_future *f = rlt_future_new();
	rlt_spawn(fail_later, rlt_future_retain(f), &(rlt_spawn_opts){.flags = RLT_SPAWN_DETACHED});
	void *v = (void *)1;
	assert_int_equal(rlt_future_await(f, &v, -1), -ECONNRESET);
	assert_ptr_equal(v, (void *)1); /* untouched on error */
	assert_int_equal(rlt_future_fail(f, 0), -EINVAL);
	rlt_future_release(f);
	return NULL;
}

static void test_failed_future_gives_its_error(void **state)
{
	rlt_test_run(root_fail, NULL);
}

/* One sign for errors across the API: rlt_future_fail takes a negative
 * errno, as rlt_fail does; the positive errno of 0.1.0 is still taken (and
 * normalised) for one release. */
static void *root_fail_sign(void *arg)
{
	rlt_future *neg = rlt_future_new(), *pos = rlt_future_new();
	assert_non_null(neg);
	assert_non_null(pos);
	assert_int_equal(rlt_future_fail(neg, -EPIPE), 0);
	assert_int_equal(rlt_future_fail(pos, EPIPE), 0); /* deprecated form */
	assert_int_equal(rlt_future_await(neg, NULL, 0), -EPIPE);
	assert_int_equal(rlt_future_await(pos, NULL, 0), -EPIPE);
	assert_int_equal(rlt_future_fail(neg, -EIO), -EALREADY);
	assert_int_equal(rlt_future_fail(NULL, -EIO), -EINVAL);
	rlt_future_release(neg);
	rlt_future_release(pos);
	return NULL;
}

static void test_future_fail_takes_a_negative_errno_like_rlt_fail(void **state)
{
	rlt_test_run(root_fail_sign, NULL);
}

static void *root_timeout_fires(void *arg)
{
	rlt_future *f = rlt_future_new();
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_future_await(f, NULL, 5 * RLT_NSEC_PER_MSEC), -ETIMEDOUT);
	uint64_t dt = rlt_now() - t0;
	assert_true(dt >= 5 * RLT_NSEC_PER_MSEC);
	assert_true(dt < 500 * RLT_NSEC_PER_MSEC);
	/* Zero timeout only checks. */
	assert_int_equal(rlt_future_await(f, NULL, 0), -ETIMEDOUT);
	/* Still usable after a timeout. */
	assert_int_equal(rlt_future_set(f, (void *)5), 0);
	void *v;
	assert_int_equal(rlt_future_await(f, &v, 1000), 0);
	assert_int_equal((intptr_t)v, 5);
	rlt_future_release(f);
	return NULL;
}

static void test_await_timeout_fires(void **state)
{
	rlt_test_run(root_timeout_fires, NULL);
}

static void *root_timeout_not_fired(void *arg)
{
	rlt_future *f = rlt_future_new();
	rlt_task *t = rlt_spawn(set_later, rlt_future_retain(f), NULL);
	void *v = NULL;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_future_await(f, &v, 5 * RLT_NSEC_PER_SEC), 0);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC);
	assert_int_equal((intptr_t)v, 777);
	rlt_future_release(f);
	rlt_join(t, NULL);
	/* The disarmed timer must not fire into a stale stack frame: sleep past
	 * nothing, and spin a few loop turns with other timers around. */
	assert_int_equal(rlt_sleep(2 * RLT_NSEC_PER_MSEC), 0);
	return NULL;
}

static void test_await_timeout_not_fired_when_set_in_time(void **state)
{
	rlt_test_run(root_timeout_not_fired, NULL);
}

static void *await_forever(void *arg)
{
	return (void *)(intptr_t)rlt_future_await(arg, NULL, -1);
}

static void *root_second_awaiter(void *arg)
{
	rlt_future *f = rlt_future_new();
	rlt_task *t = rlt_spawn(await_forever, f, NULL);
	rlt_yield();
	assert_int_equal(rlt_future_await(f, NULL, -1), -EBUSY);
	rlt_future_set(f, NULL);
	void *r;
	rlt_join(t, &r);
	assert_int_equal((intptr_t)r, 0);
	rlt_future_release(f);
	assert_int_equal(rlt_future_await(NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_future_set(NULL, NULL), -EINVAL);
	return NULL;
}

static void test_second_awaiter_gets_ebusy(void **state)
{
	rlt_test_run1(root_second_awaiter, NULL);
}

static void test_await_outside_a_task_gives_eperm(void **state)
{
	rlt_future *f = rlt_future_new();
	assert_int_equal(rlt_future_await(f, NULL, -1), -EPERM);
	/* Setting is allowed from anywhere. */
	assert_int_equal(rlt_future_set(f, NULL), 0);
	rlt_future_release(f);
}

/* ---- from a thread that is not a ringlet worker ---- */

static void *foreign_setter(void *arg)
{
	rlt_future *f = arg;
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL); /* the awaiter is usually parked by now: either order must work */
	rlt_future_set(f, (void *)4242);
	rlt_future_release(f);
	return NULL;
}

static void *root_foreign(void *arg)
{
	for (int i = 0; i < 20; i++) {
		rlt_future *f = rlt_future_new();
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, foreign_setter, rlt_future_retain(f)),
				 0);
		void *v = NULL;
		assert_int_equal(rlt_future_await(f, &v, 10 * RLT_NSEC_PER_SEC), 0);
		assert_int_equal((intptr_t)v, 4242);
		rlt_future_release(f);
		pthread_join(th, NULL);
	}
	return NULL;
}

/* valgrind 3.19 holds its big lock while a thread sleeps in io_uring_enter,
 * so another thread cannot run to wake it: the valgrind run skips these. */
static int threads_unusable(void)
{
	return getenv("RLT_TEST_NO_FOREIGN_THREADS") != NULL;
}

static void test_future_set_from_foreign_thread_wakes_parked_worker(void **state)
{
	if (threads_unusable())
		skip();
	rlt_test_run(root_foreign, NULL);
}

static void *racing_setter(void *arg)
{
	rlt_future_set(arg, (void *)1);
	rlt_future_release(arg);
	return NULL;
}

static void *root_race(void *arg)
{
	/* A foreign set racing a short timeout: every await ends exactly once,
	 * either with the value or with -ETIMEDOUT (and then the value is there). */
	int got = 0, timed_out = 0;
	for (int i = 0; i < 300; i++) {
		rlt_future *f = rlt_future_new();
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, racing_setter, rlt_future_retain(f)), 0);
		void *v = NULL;
		int rc = rlt_future_await(f, &v, 20 * RLT_NSEC_PER_USEC);
		if (rc == 0) {
			assert_int_equal((intptr_t)v, 1);
			got++;
		} else {
			assert_int_equal(rc, -ETIMEDOUT);
			timed_out++;
		}
		pthread_join(th, NULL);
		assert_true(rlt_future_done(f));
		/* A loop turn in between, so that a stray second wake would show. */
		rlt_yield();
		rlt_future_release(f);
	}
	assert_int_equal(got + timed_out, 300);
	return NULL;
}

static void test_foreign_set_racing_timeout_wakes_once(void **state)
{
	if (threads_unusable())
		skip();
	rlt_test_run(root_race, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_before_await),
	    cmocka_unit_test(test_set_after_await_wakes_awaiter),
	    cmocka_unit_test(test_failed_future_gives_its_error),
	    cmocka_unit_test(test_future_fail_takes_a_negative_errno_like_rlt_fail),
	    cmocka_unit_test(test_await_timeout_fires),
	    cmocka_unit_test(test_await_timeout_not_fired_when_set_in_time),
	    cmocka_unit_test(test_second_awaiter_gets_ebusy),
	    cmocka_unit_test(test_await_outside_a_task_gives_eperm),
	    cmocka_unit_test(test_future_set_from_foreign_thread_wakes_parked_worker),
	    cmocka_unit_test(test_foreign_set_racing_timeout_wakes_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
