/* rlt_gatherv and rlt_waitv: tasks, futures and executor jobs awaited
 * together (asyncio.gather / asyncio.wait over any awaitables). Results
 * in order, failures of futures, futures left pending by an early end,
 * reordering, and the argument errors. */
#include "tests/rlt_test.h"

#include <stdatomic.h>
#include <time.h>

#define MS RLT_NSEC_PER_MSEC

static void *sleep_then(void *arg)
{
	intptr_t ms = (intptr_t)arg;
	int rc = rlt_sleep((int64_t)ms * MS);
	if (rc < 0)
		return rlt_fail(rc);
	return (void *)(ms + 1000);
}

static void *fail_after(void *arg)
{
	rlt_sleep((int64_t)(intptr_t)arg * MS);
	return rlt_fail(-EIO);
}

typedef struct setter {
	rlt_future *f;
	int64_t after_ms;
	void *value;
	int err; /* positive: fail with it */
} setter;

/* A task that completes a future later (it holds its own reference). */
static void *set_later(void *arg)
{
	setter *s = arg;
	rlt_sleep(s->after_ms * MS);
	if (s->err)
		rlt_future_fail(s->f, s->err);
	else
		rlt_future_set(s->f, s->value);
	rlt_future_release(s->f);
	free(s);
	return NULL;
}

static rlt_future *future_later(int64_t after_ms, void *value, int err)
{
	rlt_future *f = rlt_future_new();
	assert_non_null(f);
	setter *s = malloc(sizeof(*s));
	assert_non_null(s);
	*s = (setter){rlt_future_retain(f), after_ms, value, err};
	assert_non_null(rlt_spawn(set_later, s, &(rlt_spawn_opts){.flags = RLT_SPAWN_DETACHED}));
	return f;
}

static void *job(void *arg)
{
	/* A blocking call, on a pool thread. */
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return (void *)((intptr_t)arg * 2);
}

/* ---- gather: everything, in order ---- */

static void *root_gather_all(void *arg)
{
	rlt_future *f = future_later(10, (void *)77, 0);
	rlt_future *done = rlt_future_new();
	rlt_future_set(done, (void *)5); /* done before the call */
	rlt_future *j = rlt_pool_submit(NULL, job, (void *)21);
	assert_non_null(j);
	rlt_awaitable aws[] = {
	    rlt_aw_task(rlt_spawn(sleep_then, (void *)20, NULL)),
	    rlt_aw_future(f),
	    rlt_aw_future(j),
	    rlt_aw_task(rlt_spawn(sleep_then, (void *)1, NULL)),
	    rlt_aw_future(done),
	};
	void *res[5];
	int errs[5];
	assert_int_equal(rlt_gatherv(aws, 5, res, errs, 0), 0);
	assert_ptr_equal(res[0], (void *)1020);
	assert_ptr_equal(res[1], (void *)77);
	assert_ptr_equal(res[2], (void *)42);
	assert_ptr_equal(res[3], (void *)1001);
	assert_ptr_equal(res[4], (void *)5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(errs[i], 0);
	/* The futures are still ours, and still say the same. */
	void *v;
	assert_int_equal(rlt_future_await(f, &v, 0), 0);
	assert_ptr_equal(v, (void *)77);
	rlt_future_release(f);
	rlt_future_release(j);
	rlt_future_release(done);
	return NULL;
}

static void test_gatherv_collects_tasks_futures_and_jobs_in_order(void **state)
{
	rlt_test_run(root_gather_all, NULL);
}

/* ---- gather: a failed future ends it; the pending future is left ---- */

static void *root_gather_fail(void *arg)
{
	rlt_future *bad = future_later(5, NULL, EIO);
	rlt_future *never = rlt_future_new(); /* nobody sets it (yet) */
	rlt_task *slow = rlt_spawn(sleep_then, (void *)10000, NULL);
	rlt_awaitable aws[] = {rlt_aw_task(slow), rlt_aw_future(bad), rlt_aw_future(never)};
	void *res[3];
	int errs[3];
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_gatherv(aws, 3, res, errs, 0), -EIO);
	assert_true(rlt_now() - t0 < 2000 * MS); /* slow was cancelled, not waited out */
	assert_int_equal(errs[0], -ECANCELED);
	assert_int_equal(errs[1], -EIO);
	assert_int_equal(errs[2], -EINPROGRESS);
	assert_null(res[2]);
	/* never is still usable. */
	assert_int_equal(rlt_future_set(never, (void *)9), 0);
	void *v;
	assert_int_equal(rlt_future_await(never, &v, -1), 0);
	assert_ptr_equal(v, (void *)9);
	rlt_future_release(bad);
	rlt_future_release(never);
	return NULL;
}

static void test_gatherv_first_failure_of_a_future_cancels_tasks_and_leaves_futures(void **state)
{
	rlt_test_run(root_gather_fail, NULL);
}

/* ---- gather, settle: every outcome ---- */

static void *root_gather_settle(void *arg)
{
	rlt_future *bad = future_later(5, NULL, ENOENT);
	rlt_future *cancelled = future_later(1, NULL, ECANCELED);
	rlt_future *good = future_later(2, (void *)3, 0);
	rlt_awaitable aws[] = {rlt_aw_task(rlt_spawn(fail_after, (void *)1, NULL)),
			       rlt_aw_future(bad), rlt_aw_future(cancelled), rlt_aw_future(good),
			       rlt_aw_task(rlt_spawn(sleep_then, (void *)15, NULL))};
	void *res[5];
	int errs[5];
	assert_int_equal(rlt_gatherv(aws, 5, res, errs, RLT_GATHER_SETTLE), 0);
	assert_int_equal(errs[0], -EIO);
	assert_int_equal(errs[1], -ENOENT);
	assert_int_equal(errs[2], -ECANCELED);
	assert_int_equal(errs[3], 0);
	assert_ptr_equal(res[3], (void *)3);
	assert_int_equal(errs[4], 0);
	assert_ptr_equal(res[4], (void *)1015);
	rlt_future_release(bad);
	rlt_future_release(cancelled);
	rlt_future_release(good);
	return NULL;
}

static void test_gatherv_settle_reports_each_outcome(void **state)
{
	rlt_test_run(root_gather_settle, NULL);
}

/* ---- gather, cancelled ---- */

typedef struct cancel_case {
	rlt_future *f;
	int rc;
	int errs[2];
} cancel_case;

static void *gatherer(void *arg)
{
	cancel_case *c = arg;
	rlt_awaitable aws[] = {rlt_aw_task(rlt_spawn(sleep_then, (void *)10000, NULL)),
			       rlt_aw_future(c->f)};
	c->rc = rlt_gatherv(aws, 2, NULL, c->errs, RLT_GATHER_SETTLE);
	return NULL;
}

static void *root_gather_cancelled(void *arg)
{
	cancel_case c = {.f = rlt_future_new()};
	rlt_task *g = rlt_spawn(gatherer, &c, NULL);
	rlt_sleep(10 * MS);
	assert_int_equal(rlt_cancel(g), 0);
	rlt_join(g, NULL);
	assert_int_equal(c.rc, -ECANCELED);
	assert_int_equal(c.errs[0], -ECANCELED);
	assert_int_equal(c.errs[1], -EINPROGRESS);
	/* The future was let go of: it can be awaited now. */
	rlt_future_set(c.f, NULL);
	assert_int_equal(rlt_future_await(c.f, NULL, 0), 0);
	rlt_future_release(c.f);
	return NULL;
}

static void test_gatherv_cancelled_cancels_tasks_and_lets_go_of_futures(void **state)
{
	rlt_test_run(root_gather_cancelled, NULL);
}

/* ---- wait ---- */

static void *root_waitv(void *arg)
{
	rlt_future *f = future_later(5, (void *)1, 0);
	rlt_task *slow = rlt_spawn(sleep_then, (void *)10000, NULL);
	rlt_awaitable aws[] = {rlt_aw_task(slow), rlt_aw_future(f)};
	/* The future finishes first: it comes first, the task is pending. */
	assert_int_equal(rlt_waitv(aws, 2, RLT_FIRST_COMPLETED, -1), 1);
	assert_ptr_equal(aws[0].future, f);
	assert_ptr_equal(aws[1].task, slow);
	/* A timeout is not an error. */
	assert_int_equal(rlt_waitv(&aws[1], 1, RLT_ALL_COMPLETED, 5 * MS), 0);
	rlt_cancel(slow);
	assert_int_equal(rlt_join(slow, NULL), -ECANCELED);
	rlt_future_release(f);

	/* FIRST_EXCEPTION: a failing future ends the wait. */
	rlt_future *bad = future_later(5, NULL, EPIPE);
	slow = rlt_spawn(sleep_then, (void *)10000, NULL);
	rlt_awaitable aws2[] = {rlt_aw_task(slow), rlt_aw_future(bad)};
	assert_int_equal(rlt_waitv(aws2, 2, RLT_FIRST_EXCEPTION, -1), 1);
	assert_ptr_equal(aws2[0].future, bad);
	assert_int_equal(rlt_future_await(bad, NULL, 0), -EPIPE);
	rlt_cancel(slow);
	rlt_join(slow, NULL);
	rlt_future_release(bad);
	return NULL;
}

static void test_waitv_reorders_done_futures_first(void **state)
{
	rlt_test_run(root_waitv, NULL);
}

/* ---- argument errors ---- */

static void *await_it(void *arg)
{
	return (void *)(intptr_t)rlt_future_await(arg, NULL, -1);
}

static void *root_errors(void *arg)
{
	rlt_future *f = rlt_future_new();
	rlt_task *t = rlt_spawn(sleep_then, (void *)1, NULL);
	rlt_awaitable both = {t, f}, none = {NULL, NULL};
	assert_int_equal(rlt_gatherv(&both, 1, NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_gatherv(&none, 1, NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_waitv(&none, 1, RLT_ALL_COMPLETED, -1), -EINVAL);
	assert_int_equal(rlt_gatherv(NULL, 1, NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_gatherv(NULL, 0, NULL, NULL, 0), 0);
	rlt_awaitable me = rlt_aw_task(rlt_current());
	assert_int_equal(rlt_gatherv(&me, 1, NULL, NULL, 0), -EDEADLK);
	rlt_awaitable ok[] = {rlt_aw_task(t), rlt_aw_future(f)};
	assert_int_equal(rlt_waitv(ok, 2, 99, -1), -EINVAL);
	/* A future another task awaits. */
	rlt_task *a = rlt_spawn(await_it, f, NULL);
	while (rlt_task_state(a, NULL, 0) != RLT_TASK_WAITING)
		rlt_sleep(MS);
	rlt_awaitable busy = rlt_aw_future(f);
	assert_int_equal(rlt_gatherv(&busy, 1, NULL, NULL, 0), -EBUSY);
	rlt_future_set(f, NULL);
	assert_int_equal(rlt_join(a, NULL), 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_future_release(f);
	return NULL;
}

static void test_gatherv_and_waitv_argument_errors(void **state)
{
	rlt_test_run(root_errors, NULL);
	rlt_awaitable none = {NULL, NULL};
	assert_int_equal(rlt_gatherv(&none, 1, NULL, NULL, 0), -EPERM);
	assert_int_equal(rlt_waitv(&none, 1, RLT_ALL_COMPLETED, -1), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gatherv_collects_tasks_futures_and_jobs_in_order),
	    cmocka_unit_test(
		test_gatherv_first_failure_of_a_future_cancels_tasks_and_leaves_futures),
	    cmocka_unit_test(test_gatherv_settle_reports_each_outcome),
	    cmocka_unit_test(test_gatherv_cancelled_cancels_tasks_and_lets_go_of_futures),
	    cmocka_unit_test(test_waitv_reorders_done_futures_first),
	    cmocka_unit_test(test_gatherv_and_waitv_argument_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
