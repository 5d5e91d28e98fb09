/* gather, wait, wait_for and task groups: results and their order, the
 * first failure cancelling the rest, every outcome with SETTLE, the waiter
 * cancelled or out of time, done/pending partitions, group failure
 * reports; every task pinned on one of two workers. */
#include "tests/rlt_test.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define V(i)	((void *)(intptr_t)(i))
#define I(v)	((intptr_t)(v))
#define MS	RLT_NSEC_PER_MSEC
#define LONG_NS (10 * RLT_NSEC_PER_SEC) /* "forever": only a cancel ends it early */

/* Every wait that a cancel or a failure should cut short must end well
 * before LONG_NS, even under a sanitizer on a loaded two-core VM. */
#define QUICK_NS (3 * RLT_NSEC_PER_SEC)

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

static unsigned worker_of(unsigned i)
{
	return i % rlt_runtime_workers(rlt_runtime_self());
}

/* Until t waits, in a wait of kind what (NULL: any), for at most 10 s. */
static void wait_until_waiting(const rlt_task *t, const char *what)
{
	uint64_t end = rlt_now() + 10 * RLT_NSEC_PER_SEC;
	char buf[32];
	while (rlt_task_state(t, buf, sizeof(buf)) != RLT_TASK_WAITING ||
	       (what && strcmp(buf, what) != 0)) {
		assert_true(rlt_now() < end);
		assert_int_equal(rlt_yield(), 0);
	}
}

/* ---- a job: wait (sleep, or a gate), then return a value or fail ---- */

struct job {
	rlt_event *gate;   /* if not NULL: wait for it first */
	uint64_t sleep_ns; /* then sleep that long (0: just yield) */
	intptr_t value;
	int fail;	    /* rlt_fail(fail) after the wait, if not 0 */
	int fail_on_cancel; /* rlt_fail(it) when the wait was cancelled */
	atomic_int started;
	atomic_int wait_rc; /* what the wait returned (1: not yet) */
	atomic_int cleaned; /* the rlt_defer cleanup ran */
};

static void job_init(struct job *j, uint64_t sleep_ns, intptr_t value, int fail)
{
	memset(j, 0, sizeof(*j));
	j->sleep_ns = sleep_ns;
	j->value = value;
	j->fail = fail;
	atomic_init(&j->started, 0);
	atomic_init(&j->wait_rc, 1);
	atomic_init(&j->cleaned, 0);
}

static void job_cleanup(void *arg)
{
	struct job *j = arg;
	/* Cleanup may suspend: it runs shielded, so this sleep is not cut. */
	assert_int_equal(rlt_sleep(0), 0);
	atomic_fetch_add(&j->cleaned, 1);
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	atomic_store(&j->started, 1);
	assert_int_equal(rlt_defer(job_cleanup, j), 0);
	int rc = j->gate ? rlt_event_wait(j->gate) : 0;
	if (rc == 0)
		rc = rlt_sleep(j->sleep_ns);
	atomic_store(&j->wait_rc, rc);
	if (rc < 0)
		return j->fail_on_cancel ? rlt_fail(j->fail_on_cancel) : NULL;
	if (j->fail)
		return rlt_fail(j->fail);
	return V(j->value);
}

/* j ran, its wait was cut by a cancel, and its cleanup ran. */
static void assert_cancelled_job(struct job *j)
{
	assert_int_equal(atomic_load(&j->wait_rc), -ECANCELED);
	assert_int_equal(atomic_load(&j->cleaned), 1);
}

static uint64_t since(uint64_t t0)
{
	return rlt_now() - t0;
}

/* A task cancelled before it first ran never runs (and never cleans up):
 * tests that check a job's cleanup let it get to its wait first. */
static void cancel_and_join(rlt_task *t)
{
	wait_until_waiting(t, NULL);
	assert_int_equal(rlt_cancel(t), 0);
	assert_int_equal(rlt_join(t, NULL), -ECANCELED);
}

static rlt_event *event_new(void)
{
	rlt_event *e = rlt_event_new();
	assert_non_null(e);
	return e;
}

/* ==== rlt_gather ==== */

#define NG 8

static void *root_gather_in_order(void *arg)
{
	struct job j[NG];
	rlt_task *t[NG];
	/* The later the task, the sooner it finishes: order comes from the
	 * array, not from completion. */
	for (int i = 0; i < NG; i++) {
		job_init(&j[i], (uint64_t)(NG - i) * MS, i * i, 0);
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	void *res[NG];
	int errs[NG];
	memset(res, 0xff, sizeof(res));
	assert_int_equal(rlt_gather(t, NG, res, errs, 0), 0);
	for (int i = 0; i < NG; i++) {
		assert_int_equal(I(res[i]), i * i);
		assert_int_equal(atomic_load(&j[i].wait_rc), 0);
		assert_int_equal(atomic_load(&j[i].cleaned), 1);
	}
	/* Results may be NULL, and so may errs. */
	for (int i = 0; i < NG; i++) {
		job_init(&j[i], 0, i, 0);
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	assert_int_equal(rlt_gather(t, NG, NULL, NULL, 0), 0);
	for (int i = 0; i < NG; i++)
		assert_int_equal(atomic_load(&j[i].cleaned), 1);
	/* Nothing to wait for. */
	assert_int_equal(rlt_gather(NULL, 0, NULL, NULL, 0), 0);
	return NULL;
}

static void test_gather_returns_results_in_task_order(void **state)
{
	run2(root_gather_in_order, NULL);
}

static void *root_gather_first_failure(void *arg)
{
	struct job j[5];
	rlt_task *t[5];
	job_init(&j[0], LONG_NS, 0, 0);
	job_init(&j[1], 0, 11, 0); /* succeeds at once */
	job_init(&j[2], LONG_NS, 0, 0);
	job_init(&j[3], 5 * MS, 0, -EIO); /* the failure, once let go */
	j[3].gate = event_new();
	job_init(&j[4], LONG_NS, 0, 0);
	for (int i = 0; i < 5; i++)
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	for (int i = 0; i < 5; i += 2)
		wait_until_waiting(t[i], "sleep");
	void *res[5];
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_event_set(j[3].gate), 0);
	assert_int_equal(rlt_gather(t, 5, res, NULL, 0), -EIO);
	assert_true(since(t0) < QUICK_NS);
	/* The failure cancelled the others, and gather waited for their
	 * cleanup: nothing outlives the call. */
	assert_cancelled_job(&j[0]);
	assert_cancelled_job(&j[2]);
	assert_cancelled_job(&j[4]);
	assert_int_equal(atomic_load(&j[1].wait_rc), 0);
	assert_int_equal(I(res[1]), 11);
	assert_int_equal(atomic_load(&j[3].wait_rc), 0);
	assert_int_equal(atomic_load(&j[3].cleaned), 1);
	assert_int_equal(rlt_event_free(j[3].gate), 0);
	return NULL;
}

static void test_gather_first_failure_cancels_the_rest_and_returns_its_error(void **state)
{
	run2(root_gather_first_failure, NULL);
}

/* A task that has already failed when gather starts counts as well. */
static void *root_gather_failed_before_the_call(void *arg)
{
	struct job j[2];
	rlt_task *t[2];
	job_init(&j[0], 0, 0, -ENOENT);
	job_init(&j[1], LONG_NS, 0, 0);
	t[0] = rlt_test_spawn_on(job_main, &j[0], 1);
	t[1] = rlt_test_spawn_on(job_main, &j[1], 0);
	wait_until_waiting(t[1], "sleep");
	while (rlt_task_state(t[0], NULL, 0) != RLT_TASK_DONE)
		assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_gather(t, 2, NULL, NULL, 0), -ENOENT);
	assert_cancelled_job(&j[1]);
	return NULL;
}

static void test_gather_counts_a_task_that_failed_before_the_call(void **state)
{
	run2(root_gather_failed_before_the_call, NULL);
}

static void *root_gather_settle(void *arg)
{
	struct job j[6];
	rlt_task *t[6];
	job_init(&j[0], 0, 10, 0);
	job_init(&j[1], 2 * MS, 0, -EIO);
	job_init(&j[2], 0, 0, -ENOENT);
	job_init(&j[3], LONG_NS, 0, 0);	 /* cancelled by us: -ECANCELED */
	job_init(&j[4], 30 * MS, 14, 0); /* finishes after the failures */
	job_init(&j[5], LONG_NS, 0, 0);
	j[5].fail_on_cancel = -EPIPE; /* fails when cancelled */
	for (int i = 0; i < 6; i++)
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	wait_until_waiting(t[3], "sleep");
	wait_until_waiting(t[5], "sleep");
	assert_int_equal(rlt_cancel(t[3]), 0);
	assert_int_equal(rlt_cancel(t[5]), 0);
	void *res[6];
	int errs[6];
	memset(errs, 0x7f, sizeof(errs));
	assert_int_equal(rlt_gather(t, 6, res, errs, RLT_GATHER_SETTLE), 0);
	const int want[6] = {0, -EIO, -ENOENT, -ECANCELED, 0, -EPIPE};
	for (int i = 0; i < 6; i++)
		assert_int_equal(errs[i], want[i]);
	assert_int_equal(I(res[0]), 10);
	assert_int_equal(I(res[4]), 14);
	/* No failure cut the slow one short. */
	assert_int_equal(atomic_load(&j[4].wait_rc), 0);
	assert_cancelled_job(&j[3]);
	assert_cancelled_job(&j[5]);
	return NULL;
}

static void test_gather_settle_collects_every_outcome(void **state)
{
	run2(root_gather_settle, NULL);
}

/* The gatherer itself cancelled: everything it gathers is cancelled. */
struct gatherer {
	rlt_task **tasks;
	size_t n;
	unsigned flags;
	int64_t scope_ns; /* >= 0: gather inside a deadline scope */
	atomic_int rc;
	atomic_int leave_rc;
};

static void *gatherer_main(void *arg)
{
	struct gatherer *g = arg;
	rlt_scope sc;
	if (g->scope_ns >= 0)
		assert_int_equal(rlt_scope_enter(&sc, g->scope_ns), 0);
	atomic_store(&g->rc, rlt_gather(g->tasks, g->n, NULL, NULL, g->flags));
	if (g->scope_ns >= 0)
		atomic_store(&g->leave_rc, rlt_scope_leave(&sc));
	return NULL;
}

static void *root_gather_cancelled(void *arg)
{
	unsigned flags = (unsigned)I(arg);
	struct job j[4];
	rlt_task *t[4];
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], LONG_NS, 0, 0);
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	for (int i = 0; i < 4; i++)
		wait_until_waiting(t[i], "sleep");
	struct gatherer g = {.tasks = t, .n = 4, .flags = flags, .scope_ns = -1};
	atomic_init(&g.rc, 1);
	rlt_task *gt = rlt_test_spawn_on(gatherer_main, &g, 1);
	wait_until_waiting(gt, "tasks");
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(gt), 0);
	assert_int_equal(rlt_join(gt, NULL), -ECANCELED);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&g.rc), -ECANCELED);
	for (int i = 0; i < 4; i++)
		assert_cancelled_job(&j[i]);
	return NULL;
}

static void test_gather_cancelled_cancels_every_task(void **state)
{
	run2(root_gather_cancelled, V(0));
	run2(root_gather_cancelled, V(RLT_GATHER_SETTLE));
}

static void *root_gather_in_deadline_scope(void *arg)
{
	struct job j[4];
	rlt_task *t[4];
	job_init(&j[0], 0, 1, 0);
	for (int i = 1; i < 4; i++)
		job_init(&j[i], LONG_NS, 0, 0);
	for (int i = 0; i < 4; i++)
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	for (int i = 1; i < 4; i++)
		wait_until_waiting(t[i], "sleep");
	struct gatherer g = {.tasks = t, .n = 4, .scope_ns = 20 * MS};
	atomic_init(&g.rc, 1);
	atomic_init(&g.leave_rc, 1);
	uint64_t t0 = rlt_now();
	rlt_task *gt = rlt_test_spawn_on(gatherer_main, &g, 1);
	assert_int_equal(rlt_join(gt, NULL), 0);
	assert_true(since(t0) >= 20 * MS);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&g.rc), -ETIMEDOUT);
	assert_int_equal(atomic_load(&g.leave_rc), -ETIMEDOUT);
	assert_int_equal(atomic_load(&j[0].wait_rc), 0);
	for (int i = 1; i < 4; i++)
		assert_cancelled_job(&j[i]);

	/* In time: the scope changes nothing. */
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], MS, i, 0);
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	g.scope_ns = 5 * RLT_NSEC_PER_SEC;
	gt = rlt_test_spawn_on(gatherer_main, &g, 0);
	assert_int_equal(rlt_join(gt, NULL), 0);
	assert_int_equal(atomic_load(&g.rc), 0);
	assert_int_equal(atomic_load(&g.leave_rc), 0);
	return NULL;
}

static void test_gather_in_a_deadline_scope_times_out_and_cancels_the_tasks(void **state)
{
	run2(root_gather_in_deadline_scope, NULL);
}

static void *ret_index(void *arg)
{
	intptr_t i = I(arg);
	if (i % 3 == 0)
		assert_int_equal(rlt_yield(), 0);
	return V(i + 1);
}

static void *root_gather_many(void *arg)
{
	size_t n = RLT_TEST_SCALE(10000);
	rlt_task **t = calloc(n, sizeof(*t));
	void **res = calloc(n, sizeof(*res));
	int *errs = calloc(n, sizeof(*errs));
	assert_non_null(t);
	assert_non_null(res);
	assert_non_null(errs);
	for (size_t i = 0; i < n; i++)
		t[i] = rlt_test_spawn_on(ret_index, V(i), (unsigned)i);
	assert_int_equal(rlt_gather(t, n, res, errs, 0), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(I(res[i]), (intptr_t)i + 1);
		assert_int_equal(errs[i], 0);
	}
	/* Unpinned, left to the scheduler (stealing), settled. */
	for (size_t i = 0; i < n; i++) {
		t[i] = rlt_spawn(ret_index, V(i), NULL);
		assert_non_null(t[i]);
	}
	assert_int_equal(rlt_gather(t, n, res, errs, RLT_GATHER_SETTLE), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(I(res[i]), (intptr_t)i + 1);
	free(t);
	free(res);
	free(errs);
	return NULL;
}

static void test_gather_10k_tasks_across_two_workers(void **state)
{
	run2(root_gather_many, NULL);
}

static void *join_it(void *arg)
{
	void *r = NULL;
	int rc = rlt_join(arg, &r);
	return rc ? V(rc) : r;
}

static void *root_gather_bad_arguments(void *arg)
{
	struct job j[2];
	rlt_task *t[3];
	job_init(&j[0], 0, 5, 0);
	job_init(&j[1], 0, 0, 0);
	j[1].gate = event_new();
	t[0] = rlt_test_spawn_on(job_main, &j[0], 0);
	t[1] = rlt_test_spawn_on(job_main, &j[1], 1);
	t[2] = NULL;
	assert_int_equal(rlt_gather(NULL, 1, NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_gather(t, 3, NULL, NULL, 0), -EINVAL);
	assert_int_equal(rlt_gather(t, 2, NULL, NULL, 0x80), -EINVAL);
	/* t[1] is joined by another task: -EBUSY, and no handle is
	 * consumed (t[0], registered first, is given back). */
	rlt_task *joiner = rlt_test_spawn_on(join_it, t[1], 0);
	wait_until_waiting(joiner, "join");
	assert_int_equal(rlt_gather(t, 2, NULL, NULL, 0), -EBUSY);
	assert_int_equal(rlt_wait(t, 2, RLT_ALL_COMPLETED, -1), -EBUSY);
	void *r;
	assert_int_equal(rlt_join(t[0], &r), 0);
	assert_int_equal(I(r), 5);
	assert_int_equal(rlt_event_set(j[1].gate), 0);
	assert_int_equal(rlt_join(joiner, &r), 0);
	assert_int_equal(I(r), 0);
	assert_int_equal(rlt_event_free(j[1].gate), 0);
	return NULL;
}

static void test_gather_argument_errors_consume_no_handle(void **state)
{
	run2(root_gather_bad_arguments, NULL);
	assert_int_equal(rlt_gather(NULL, 0, NULL, NULL, 0), -EPERM);
}

/* ==== rlt_wait ==== */

/* tasks[0..n) is a permutation of orig[0..n) with the first done ones in
 * their original order, then the others in theirs. */
static void assert_partition(rlt_task *const *orig, rlt_task *const *tasks, size_t n, int done)
{
	assert_true(done >= 0 && (size_t)done <= n);
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			size_t at;
			for (at = 0; at < n && tasks[at] != orig[i]; at++)
				;
			assert_true(at < n);
			if ((at < (size_t)done) == (pass == 0))
				assert_ptr_equal(tasks[k++], orig[i]);
		}
	assert_int_equal(k, n);
	for (int i = 0; i < done; i++)
		assert_int_equal(rlt_task_state(tasks[i], NULL, 0), RLT_TASK_DONE);
}

static void *root_wait_first_completed(void *arg)
{
	struct job j[3];
	rlt_task *orig[3], *t[3];
	job_init(&j[0], LONG_NS, 0, 0); /* pending, cancelled at the end */
	job_init(&j[1], MS, 1, 0);	/* the first */
	job_init(&j[2], 0, 2, 0);	/* pending, gated, then joined */
	j[2].gate = event_new();
	for (int i = 0; i < 3; i++)
		orig[i] = t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	int n = rlt_wait(t, 3, RLT_FIRST_COMPLETED, -1);
	assert_int_equal(n, 1);
	assert_partition(orig, t, 3, n);
	assert_ptr_equal(t[0], orig[1]);
	/* The pending ones keep running and stay ours. */
	assert_int_equal(atomic_load(&j[0].wait_rc), 1);
	assert_int_equal(atomic_load(&j[2].wait_rc), 1);
	void *r;
	assert_int_equal(rlt_join(t[0], &r), 0); /* done: does not suspend */
	assert_int_equal(I(r), 1);
	/* Waiting again for what is left: the gated one completes. */
	rlt_task *left[2] = {t[1], t[2]};
	assert_int_equal(rlt_event_set(j[2].gate), 0);
	n = rlt_wait(left, 2, RLT_FIRST_COMPLETED, -1);
	assert_int_equal(n, 1);
	assert_ptr_equal(left[0], orig[2]);
	assert_ptr_equal(left[1], orig[0]);
	assert_int_equal(rlt_join(left[0], &r), 0);
	assert_int_equal(I(r), 2);
	cancel_and_join(left[1]);
	assert_cancelled_job(&j[0]);
	assert_int_equal(rlt_event_free(j[2].gate), 0);
	/* Done before the call: returns at once. */
	job_init(&j[0], 0, 7, 0);
	t[0] = rlt_test_spawn_on(job_main, &j[0], 1);
	while (rlt_task_state(t[0], NULL, 0) != RLT_TASK_DONE)
		assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_wait(t, 1, RLT_FIRST_COMPLETED, -1), 1);
	assert_int_equal(rlt_join(t[0], &r), 0);
	assert_int_equal(I(r), 7);
	return NULL;
}

static void test_wait_first_completed_returns_the_first_and_leaves_the_rest(void **state)
{
	run2(root_wait_first_completed, NULL);
}

static void *root_wait_first_exception(void *arg)
{
	struct job j[4];
	rlt_task *orig[4], *t[4];
	job_init(&j[0], LONG_NS, 0, 0);
	job_init(&j[1], 0, 1, 0);
	job_init(&j[2], 10 * MS, 0, -EIO);
	job_init(&j[3], LONG_NS, 0, 0);
	for (int i = 0; i < 4; i++)
		orig[i] = t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	/* The success of t[1] does not end the wait; the failure does. */
	uint64_t t0 = rlt_now();
	int n = rlt_wait(t, 4, RLT_FIRST_EXCEPTION, -1);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(n, 2);
	assert_partition(orig, t, 4, n);
	assert_ptr_equal(t[0], orig[1]);
	assert_ptr_equal(t[1], orig[2]);
	assert_ptr_equal(t[2], orig[0]);
	assert_ptr_equal(t[3], orig[3]);
	void *r;
	assert_int_equal(rlt_join(t[0], &r), 0);
	assert_int_equal(I(r), 1);
	assert_int_equal(rlt_join(t[1], NULL), -EIO);
	/* wait does not cancel anything. */
	assert_int_equal(atomic_load(&j[0].wait_rc), 1);
	assert_int_equal(atomic_load(&j[3].wait_rc), 1);
	for (int i = 2; i < 4; i++)
		cancel_and_join(t[i]);
	assert_cancelled_job(&j[0]);
	assert_cancelled_job(&j[3]);

	/* No failure at all: the same as ALL_COMPLETED. */
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], (uint64_t)i * MS, i, 0);
		orig[i] = t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	assert_int_equal(rlt_wait(t, 4, RLT_FIRST_EXCEPTION, -1), 4);
	assert_partition(orig, t, 4, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(rlt_join(t[i], &r), 0);
		assert_int_equal(I(r), i);
	}
	return NULL;
}

static void test_wait_first_exception_stops_at_the_first_failure(void **state)
{
	run2(root_wait_first_exception, NULL);
}

static void *root_wait_all_completed(void *arg)
{
	struct job j[4];
	rlt_task *orig[4], *t[4];
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], (uint64_t)(4 - i) * 3 * MS, i, i == 2 ? -EIO : 0);
		orig[i] = t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	/* A failure does not end ALL_COMPLETED. */
	assert_int_equal(rlt_wait(t, 4, RLT_ALL_COMPLETED, -1), 4);
	assert_partition(orig, t, 4, 4);
	for (int i = 0; i < 4; i++) {
		void *r;
		assert_int_equal(rlt_join(t[i], &r), i == 2 ? -EIO : 0);
		if (i != 2)
			assert_int_equal(I(r), i);
	}
	assert_int_equal(rlt_wait(NULL, 0, RLT_ALL_COMPLETED, -1), 0);
	return NULL;
}

static void test_wait_all_completed_waits_for_every_task(void **state)
{
	run2(root_wait_all_completed, NULL);
}

static void *root_wait_timeout(void *arg)
{
	int how = (int)I(arg);
	struct job j[5];
	rlt_task *orig[5], *t[5];
	job_init(&j[0], LONG_NS, 0, 0);
	job_init(&j[1], 0, 1, 0);
	job_init(&j[2], LONG_NS, 0, 0);
	job_init(&j[3], 2 * MS, 3, 0);
	job_init(&j[4], LONG_NS, 0, 0);
	for (int i = 0; i < 5; i++)
		orig[i] = t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	uint64_t t0 = rlt_now();
	/* A timeout is no error: it returns the count done. */
	int n = rlt_wait(t, 5, how, 100 * MS);
	assert_true(since(t0) >= 100 * MS);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(n, 2);
	assert_partition(orig, t, 5, n);
	const int order[5] = {1, 3, 0, 2, 4};
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(t[i], orig[order[i]]);
	/* Pending ones: still running, still joinable. */
	for (int i = 2; i < 5; i++)
		assert_int_not_equal(rlt_task_state(t[i], NULL, 0), RLT_TASK_DONE);
	/* Timeout 0: only a look. */
	assert_int_equal(rlt_wait(&t[2], 3, how, 0), 0);
	assert_int_equal(rlt_wait(t, 5, RLT_FIRST_COMPLETED, 0), 2);
	void *r;
	assert_int_equal(rlt_join(t[0], &r), 0);
	assert_int_equal(I(r), 1);
	assert_int_equal(rlt_join(t[1], &r), 0);
	assert_int_equal(I(r), 3);
	for (int i = 2; i < 5; i++)
		cancel_and_join(t[i]);
	assert_cancelled_job(&j[0]);
	assert_cancelled_job(&j[2]);
	assert_cancelled_job(&j[4]);
	return NULL;
}

static void test_wait_with_timeout_partitions_done_and_pending(void **state)
{
	run2(root_wait_timeout, V(RLT_ALL_COMPLETED));
	run2(root_wait_timeout, V(RLT_FIRST_EXCEPTION));
}

struct waiter {
	rlt_task **tasks;
	size_t n;
	int64_t scope_ns; /* >= 0: wait inside a deadline scope */
	atomic_int rc;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	rlt_scope sc;
	if (w->scope_ns >= 0)
		assert_int_equal(rlt_scope_enter(&sc, w->scope_ns), 0);
	atomic_store(&w->rc, rlt_wait(w->tasks, w->n, RLT_ALL_COMPLETED, LONG_NS));
	if (w->scope_ns >= 0)
		assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	return NULL;
}

static void *root_wait_cancelled(void *arg)
{
	bool scoped = I(arg);
	rlt_event *gate = event_new();
	struct job j[3];
	rlt_task *t[3];
	for (int i = 0; i < 3; i++) {
		job_init(&j[i], 0, 100 + i, 0);
		j[i].gate = gate;
		t[i] = rlt_test_spawn_on(job_main, &j[i], (unsigned)i);
	}
	struct waiter w = {.tasks = t, .n = 3, .scope_ns = scoped ? 20 * (int64_t)MS : -1};
	atomic_init(&w.rc, 1);
	rlt_task *wt = rlt_test_spawn_on(waiter_main, &w, 1);
	uint64_t t0 = rlt_now();
	if (!scoped) {
		wait_until_waiting(wt, "tasks");
		assert_int_equal(rlt_cancel(wt), 0);
	}
	assert_int_equal(rlt_join(wt, NULL), scoped ? 0 : -ECANCELED);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&w.rc), scoped ? -ETIMEDOUT : -ECANCELED);
	/* The tasks were left alone: they finish normally when let go. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&j[i].wait_rc), 1);
	assert_int_equal(rlt_event_set(gate), 0);
	for (int i = 0; i < 3; i++) {
		void *r;
		assert_int_equal(rlt_join(t[i], &r), 0);
		assert_int_equal(I(r), 100 + i);
	}
	assert_int_equal(rlt_event_free(gate), 0);
	return NULL;
}

static void test_wait_cancelled_returns_ecanceled_and_leaves_the_tasks_running(void **state)
{
	run2(root_wait_cancelled, V(0));
}

static void test_wait_in_an_expired_scope_returns_etimedout(void **state)
{
	run2(root_wait_cancelled, V(1));
}

static void *root_wait_bad_arguments(void *arg)
{
	struct job j;
	job_init(&j, 0, 1, 0);
	rlt_task *t[2] = {rlt_test_spawn_on(job_main, &j, 1), NULL};
	assert_int_equal(rlt_wait(t, 1, 7, -1), -EINVAL);
	assert_int_equal(rlt_wait(t, 2, RLT_ALL_COMPLETED, -1), -EINVAL);
	assert_int_equal(rlt_join(t[0], NULL), 0);
	return NULL;
}

static void test_wait_argument_errors(void **state)
{
	run2(root_wait_bad_arguments, NULL);
	assert_int_equal(rlt_wait(NULL, 0, RLT_ALL_COMPLETED, -1), -EPERM);
}

/* ==== rlt_wait_for ==== */

static void *root_wait_for(void *arg)
{
	struct job j;
	void *r = NULL;
	/* In time: the result. */
	job_init(&j, MS, 42, 0);
	assert_int_equal(rlt_wait_for(rlt_test_spawn_on(job_main, &j, 1), 5 * RLT_NSEC_PER_SEC, &r),
			 0);
	assert_int_equal(I(r), 42);
	/* No timeout at all. */
	job_init(&j, MS, 43, 0);
	assert_int_equal(rlt_wait_for(rlt_test_spawn_on(job_main, &j, 0), -1, &r), 0);
	assert_int_equal(I(r), 43);
	/* Failing in time: its error. */
	job_init(&j, MS, 0, -EIO);
	assert_int_equal(
	    rlt_wait_for(rlt_test_spawn_on(job_main, &j, 1), 5 * RLT_NSEC_PER_SEC, NULL), -EIO);
	/* Too slow: cancelled and waited for (its cleanup has run). */
	job_init(&j, LONG_NS, 0, 0);
	rlt_task *t = rlt_test_spawn_on(job_main, &j, 1);
	wait_until_waiting(t, "sleep");
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_wait_for(t, 20 * MS, &r), -ETIMEDOUT);
	assert_true(since(t0) >= 20 * MS);
	assert_true(since(t0) < QUICK_NS);
	assert_cancelled_job(&j);
	return NULL;
}

static void test_wait_for_returns_the_result_or_times_out_and_cancels(void **state)
{
	run2(root_wait_for, NULL);
}

struct wait_for_caller {
	rlt_task *t;
	atomic_int rc;
};

static void *wait_for_caller_main(void *arg)
{
	struct wait_for_caller *c = arg;
	atomic_store(&c->rc, rlt_wait_for(c->t, LONG_NS, NULL));
	return NULL;
}

static void *root_wait_for_cancelled(void *arg)
{
	struct job j;
	job_init(&j, LONG_NS, 0, 0);
	struct wait_for_caller c = {.t = rlt_test_spawn_on(job_main, &j, 0)};
	atomic_init(&c.rc, 1);
	wait_until_waiting(c.t, "sleep");
	rlt_task *ct = rlt_test_spawn_on(wait_for_caller_main, &c, 1);
	wait_until_waiting(ct, "join");
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(ct), 0);
	assert_int_equal(rlt_join(ct, NULL), -ECANCELED);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&c.rc), -ECANCELED);
	/* The task waited for was cancelled too, and waited for. */
	assert_cancelled_job(&j);
	return NULL;
}

static void test_wait_for_caller_cancelled_cancels_the_task(void **state)
{
	run2(root_wait_for_cancelled, NULL);
}

/* ==== task groups ==== */

struct gjob {
	rlt_group *g;
	atomic_int *count;
	int depth; /* tree: spawn two children into g down to 0 */
};

static void *tree_main(void *arg)
{
	struct gjob *gj = arg;
	atomic_fetch_add(gj->count, 1);
	/* Let the owner get into rlt_group_wait before the spawns. */
	assert_int_equal(rlt_sleep(0), 0);
	if (gj->depth > 0) {
		for (int i = 0; i < 2; i++) {
			struct gjob *c = malloc(sizeof(*c));
			assert_non_null(c);
			*c = (struct gjob){.g = gj->g, .count = gj->count, .depth = gj->depth - 1};
			rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
					    .worker = worker_of((unsigned)i)};
			assert_non_null(rlt_group_spawn(gj->g, tree_main, c, &o));
		}
	}
	free(gj);
	return NULL;
}

static rlt_task *group_spawn_on(rlt_group *g, rlt_task_fn fn, void *arg, unsigned worker,
				const char *name)
{
	rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
			    .worker = worker_of(worker),
			    .name = name};
	rlt_task *t = rlt_group_spawn(g, fn, arg, &o);
	assert_non_null(t);
	return t;
}

static void *root_group_all_succeed(void *arg)
{
	rlt_group *g = rlt_group_new();
	assert_non_null(g);
	struct job j[6];
	for (int i = 0; i < 6; i++) {
		job_init(&j[i], (uint64_t)i * MS, i, 0);
		group_spawn_on(g, job_main, &j[i], (unsigned)i, NULL);
	}
	rlt_group_report rep;
	memset(&rep, 0x55, sizeof(rep));
	assert_int_equal(rlt_group_wait(g, &rep), 0);
	assert_int_equal(rep.err, 0);
	assert_int_equal(rep.failed, 0);
	assert_int_equal(rep.tasks, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(atomic_load(&j[i].wait_rc), 0);
		assert_int_equal(atomic_load(&j[i].cleaned), 1);
	}
	/* An empty group, and no report wanted. */
	g = rlt_group_new();
	assert_non_null(g);
	assert_int_equal(rlt_group_wait(g, NULL), 0);
	return NULL;
}

static void test_group_all_succeed(void **state)
{
	run2(root_group_all_succeed, NULL);
}

struct owner {
	atomic_int sleep_rc;
	atomic_int wait_rc;
	rlt_group_report rep;
	uint64_t fail_id;
	int cancelled_after;
	struct job j[5];
};

static void *owner_with_failure(void *arg)
{
	struct owner *o = arg;
	rlt_group *g = rlt_group_new();
	assert_non_null(g);
	job_init(&o->j[0], LONG_NS, 0, 0);
	job_init(&o->j[1], 0, 1, 0);
	job_init(&o->j[2], 0, 0, -EIO); /* the first failure, once let go */
	o->j[2].gate = event_new();
	job_init(&o->j[3], LONG_NS, 0, 0);
	o->j[3].fail_on_cancel = -ENOENT; /* a second failure, when cancelled */
	job_init(&o->j[4], LONG_NS, 0, 0);
	rlt_task *t[5];
	t[0] = group_spawn_on(g, job_main, &o->j[0], 0, "sleeper-0");
	t[1] = group_spawn_on(g, job_main, &o->j[1], 1, "quick");
	t[2] = group_spawn_on(g, job_main, &o->j[2], 0, "the-failing-one");
	o->fail_id = rlt_task_id(t[2]);
	t[3] = group_spawn_on(g, job_main, &o->j[3], 1, "fails-when-cancelled");
	t[4] = group_spawn_on(g, job_main, &o->j[4], 1, "sleeper-4");
	assert_string_equal(rlt_task_name(t[2]), "the-failing-one");
	wait_until_waiting(t[0], "sleep");
	wait_until_waiting(t[3], "sleep");
	wait_until_waiting(t[4], "sleep");
	assert_int_equal(rlt_event_set(o->j[2].gate), 0);
	/* The body of the `async with`: an unrelated long wait that the
	 * failure cuts short. */
	atomic_store(&o->sleep_rc, rlt_sleep(LONG_NS));
	/* The group is shutting down: no new task. */
	errno = 0;
	assert_null(rlt_group_spawn(g, job_main, &o->j[1], NULL));
	assert_int_equal(errno, ECANCELED);
	atomic_store(&o->wait_rc, rlt_group_wait(g, &o->rep));
	/* The cancellation that brought us here is taken back. */
	o->cancelled_after = rlt_cancelled();
	assert_int_equal(rlt_event_free(o->j[2].gate), 0);
	return NULL;
}

static void *root_group_failure(void *arg)
{
	struct owner o;
	atomic_init(&o.sleep_rc, 1);
	atomic_init(&o.wait_rc, 1);
	uint64_t t0 = rlt_now();
	rlt_task *ot = rlt_test_spawn_on(owner_with_failure, &o, (unsigned)I(arg));
	/* Not cancelled, for its joiner. */
	assert_int_equal(rlt_join(ot, NULL), 0);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&o.sleep_rc), -ECANCELED);
	assert_int_equal(atomic_load(&o.wait_rc), -EIO);
	assert_int_equal(o.cancelled_after, 0);
	assert_int_equal(o.rep.err, -EIO);
	assert_int_equal(o.rep.failed, 2);
	assert_int_equal(o.rep.tasks, 5);
	assert_int_equal(o.rep.task_id, o.fail_id);
	assert_string_equal(o.rep.task_name, "the-failing-one");
	assert_cancelled_job(&o.j[0]);
	assert_cancelled_job(&o.j[3]);
	assert_cancelled_job(&o.j[4]);
	assert_int_equal(atomic_load(&o.j[1].wait_rc), 0);
	assert_int_equal(atomic_load(&o.j[2].cleaned), 1);
	return NULL;
}

static void test_group_failure_cancels_siblings_and_the_owner_and_reports_it(void **state)
{
	run2(root_group_failure, V(0));
	run2(root_group_failure, V(1));
}

/* A failure while the owner already waits in rlt_group_wait. */
static void *root_group_failure_while_waiting(void *arg)
{
	rlt_group *g = rlt_group_new();
	struct job j[3];
	job_init(&j[0], LONG_NS, 0, 0);
	job_init(&j[1], 10 * MS, 0, -EPROTO); /* fails 10 ms after the gate */
	j[1].gate = event_new();
	job_init(&j[2], LONG_NS, 0, 0);
	rlt_task *t[3];
	for (int i = 0; i < 3; i++)
		t[i] = group_spawn_on(g, job_main, &j[i], (unsigned)i, NULL);
	wait_until_waiting(t[0], "sleep");
	wait_until_waiting(t[2], "sleep");
	rlt_group_report rep;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_event_set(j[1].gate), 0);
	assert_int_equal(rlt_group_wait(g, &rep), -EPROTO);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(rep.err, -EPROTO);
	assert_int_equal(rep.failed, 1);
	assert_int_equal(rep.tasks, 3);
	assert_int_equal(rlt_cancelled(), 0);
	assert_cancelled_job(&j[0]);
	assert_cancelled_job(&j[2]);
	/* Not cancelled: a later wait runs its course. */
	assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_event_free(j[1].gate), 0);
	return NULL;
}

static void test_group_failure_while_the_owner_waits(void **state)
{
	run2(root_group_failure_while_waiting, NULL);
}

static void *cancel_group(void *arg)
{
	assert_int_equal(rlt_group_cancel(arg), 0);
	return NULL;
}

static void *root_group_cancel(void *arg)
{
	bool from_task = I(arg);
	rlt_group *g = rlt_group_new();
	struct job j[4];
	rlt_task *t[4];
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], LONG_NS, 0, 0);
		t[i] = group_spawn_on(g, job_main, &j[i], (unsigned)i, NULL);
	}
	for (int i = 0; i < 4; i++)
		wait_until_waiting(t[i], "sleep");
	if (from_task) {
		/* From a task of the group itself, on the other worker. */
		group_spawn_on(g, cancel_group, g, 1, NULL);
	} else {
		assert_int_equal(rlt_group_cancel(g), 0);
		errno = 0;
		assert_null(rlt_group_spawn(g, job_main, &j[0], NULL));
		assert_int_equal(errno, ECANCELED);
	}
	rlt_group_report rep;
	uint64_t t0 = rlt_now();
	/* Cancelled tasks are no failure. */
	assert_int_equal(rlt_group_wait(g, &rep), 0);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(rep.err, 0);
	assert_int_equal(rep.failed, 0);
	assert_int_equal(rep.tasks, from_task ? 5 : 4);
	for (int i = 0; i < 4; i++)
		assert_cancelled_job(&j[i]);
	assert_int_equal(rlt_group_cancel(NULL), -EINVAL);
	return NULL;
}

static void test_group_cancel_cancels_every_task(void **state)
{
	run2(root_group_cancel, V(0));
	run2(root_group_cancel, V(1));
}

struct group_owner {
	struct job j[4];
	int64_t scope_ns;
	atomic_int rc;
	rlt_group_report rep;
};

static void *owner_waits(void *arg)
{
	struct group_owner *o = arg;
	rlt_group *g = rlt_group_new();
	assert_non_null(g);
	rlt_task *t[4];
	for (int i = 0; i < 4; i++) {
		job_init(&o->j[i], LONG_NS, 0, 0);
		t[i] = group_spawn_on(g, job_main, &o->j[i], (unsigned)i, NULL);
	}
	for (int i = 0; i < 4; i++)
		wait_until_waiting(t[i], "sleep");
	rlt_scope sc;
	if (o->scope_ns >= 0)
		assert_int_equal(rlt_scope_enter(&sc, o->scope_ns), 0);
	atomic_store(&o->rc, rlt_group_wait(g, &o->rep));
	if (o->scope_ns >= 0)
		assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	return NULL;
}

static void *root_group_owner_cancelled(void *arg)
{
	bool scoped = I(arg);
	struct group_owner o = {.scope_ns = scoped ? 20 * (int64_t)MS : -1};
	atomic_init(&o.rc, 1);
	rlt_task *ot = rlt_test_spawn_on(owner_waits, &o, 1);
	uint64_t t0 = rlt_now();
	if (!scoped) {
		wait_until_waiting(ot, "tasks");
		assert_int_equal(rlt_cancel(ot), 0);
	}
	assert_int_equal(rlt_join(ot, NULL), scoped ? 0 : -ECANCELED);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&o.rc), scoped ? -ETIMEDOUT : -ECANCELED);
	assert_int_equal(o.rep.err, 0);
	assert_int_equal(o.rep.failed, 0);
	assert_int_equal(o.rep.tasks, 4);
	for (int i = 0; i < 4; i++)
		assert_cancelled_job(&o.j[i]);
	return NULL;
}

static void test_group_owner_cancelled_in_group_wait_cancels_the_tasks(void **state)
{
	run2(root_group_owner_cancelled, V(0));
}

static void test_group_wait_in_an_expired_scope_times_out(void **state)
{
	run2(root_group_owner_cancelled, V(1));
}

static void *root_group_tree(void *arg)
{
	const int depth = 6; /* 127 tasks */
	atomic_int count;
	atomic_init(&count, 0);
	rlt_group *g = rlt_group_new();
	struct gjob *root = malloc(sizeof(*root));
	assert_non_null(root);
	*root = (struct gjob){.g = g, .count = &count, .depth = depth};
	group_spawn_on(g, tree_main, root, 1, NULL);
	rlt_group_report rep;
	assert_int_equal(rlt_group_wait(g, &rep), 0);
	assert_int_equal(atomic_load(&count), (1 << (depth + 1)) - 1);
	assert_int_equal(rep.tasks, (size_t)(1 << (depth + 1)) - 1);
	assert_int_equal(rep.failed, 0);
	return NULL;
}

static void test_group_tasks_spawn_more_tasks_into_the_group(void **state)
{
	run2(root_group_tree, NULL);
}

static void *wait_foreign_group(void *arg)
{
	return V(rlt_group_wait(arg, NULL));
}

static void *root_group_bad_arguments(void *arg)
{
	rlt_group *g = rlt_group_new();
	assert_non_null(g);
	rlt_spawn_opts det = {.flags = RLT_SPAWN_DETACHED};
	errno = 0;
	assert_null(rlt_group_spawn(g, job_main, NULL, &det));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(rlt_group_spawn(g, NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(rlt_group_spawn(NULL, job_main, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	/* Only the owner waits. */
	void *r;
	rlt_task *t = rlt_test_spawn_on(wait_foreign_group, g, 1);
	assert_int_equal(rlt_join(t, &r), 0);
	assert_int_equal(I(r), -EINVAL);
	assert_int_equal(rlt_group_wait(NULL, NULL), -EINVAL);
	assert_int_equal(rlt_group_wait(g, NULL), 0);
	return NULL;
}

static void test_group_argument_errors(void **state)
{
	run2(root_group_bad_arguments, NULL);
	errno = 0;
	assert_null(rlt_group_new());
	assert_int_equal(errno, EPERM);
	assert_int_equal(rlt_group_wait(NULL, NULL), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gather_returns_results_in_task_order),
	    cmocka_unit_test(test_gather_first_failure_cancels_the_rest_and_returns_its_error),
	    cmocka_unit_test(test_gather_counts_a_task_that_failed_before_the_call),
	    cmocka_unit_test(test_gather_settle_collects_every_outcome),
	    cmocka_unit_test(test_gather_cancelled_cancels_every_task),
	    cmocka_unit_test(test_gather_in_a_deadline_scope_times_out_and_cancels_the_tasks),
	    cmocka_unit_test(test_gather_10k_tasks_across_two_workers),
	    cmocka_unit_test(test_gather_argument_errors_consume_no_handle),
	    cmocka_unit_test(test_wait_first_completed_returns_the_first_and_leaves_the_rest),
	    cmocka_unit_test(test_wait_first_exception_stops_at_the_first_failure),
	    cmocka_unit_test(test_wait_all_completed_waits_for_every_task),
	    cmocka_unit_test(test_wait_with_timeout_partitions_done_and_pending),
	    cmocka_unit_test(test_wait_cancelled_returns_ecanceled_and_leaves_the_tasks_running),
	    cmocka_unit_test(test_wait_in_an_expired_scope_returns_etimedout),
	    cmocka_unit_test(test_wait_argument_errors),
	    cmocka_unit_test(test_wait_for_returns_the_result_or_times_out_and_cancels),
	    cmocka_unit_test(test_wait_for_caller_cancelled_cancels_the_task),
	    cmocka_unit_test(test_group_all_succeed),
	    cmocka_unit_test(test_group_failure_cancels_siblings_and_the_owner_and_reports_it),
	    cmocka_unit_test(test_group_failure_while_the_owner_waits),
	    cmocka_unit_test(test_group_cancel_cancels_every_task),
	    cmocka_unit_test(test_group_owner_cancelled_in_group_wait_cancels_the_tasks),
	    cmocka_unit_test(test_group_wait_in_an_expired_scope_times_out),
	    cmocka_unit_test(test_group_tasks_spawn_more_tasks_into_the_group),
	    cmocka_unit_test(test_group_argument_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
