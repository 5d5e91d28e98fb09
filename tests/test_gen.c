/* Generators: the producer runs only when asked (the 1 3 4 2 order), values
 * in order with I/O and yields between them, producer and consumer on
 * different workers, early close and the producer's cleanup, failure,
 * the consumer cancelled in next(), -EPIPE after the end. */
#include "tests/rlt_test.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define V(i)	 ((void *)(intptr_t)(i))
#define I(v)	 ((intptr_t)(v))
#define MS	 RLT_NSEC_PER_MSEC
#define LONG_NS	 (10 * RLT_NSEC_PER_SEC)
#define QUICK_NS (3 * RLT_NSEC_PER_SEC)

static void run1(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 1};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

static unsigned nworkers(void)
{
	return rlt_runtime_workers(rlt_runtime_self());
}

static rlt_gen *gen_on(rlt_gen_fn fn, void *arg, unsigned w)
{
	rlt_spawn_opts o = rlt_test_on_worker(w);
	rlt_gen *g = rlt_gen_new(fn, arg, &o);
	assert_non_null(g);
	return g;
}

static void wait_until_waiting(const rlt_task *t, const char *what)
{
	uint64_t end = rlt_now() + 10 * RLT_NSEC_PER_SEC;
	char buf[32];
	while (rlt_task_state(t, buf, sizeof(buf)) != RLT_TASK_WAITING || strcmp(buf, what) != 0) {
		assert_true(rlt_now() < end);
		assert_int_equal(rlt_yield(), 0);
	}
}

static uint64_t since(uint64_t t0)
{
	return rlt_now() - t0;
}

/* ---- 1 3 4 2 ---- */

/* Producer and consumer take turns (each hand-off is a release/acquire),
 * so plain fields are enough. */
struct trace {
	int ev[8];
	int n;
	int yield_rc;
	int producer_worker; /* -1: any */
};

static void *produce_3_yield_4(rlt_gen *g, void *arg)
{
	struct trace *tr = arg;
	if (tr->producer_worker >= 0)
		assert_int_equal(rlt_worker_index(), tr->producer_worker);
	tr->ev[tr->n++] = 3;
	tr->yield_rc = rlt_gen_yield(g, V(4));
	return NULL;
}

static void *consume_1_then_2(void *arg)
{
	struct trace *tr = arg;
	tr->ev[tr->n++] = 1;
	rlt_gen *g = tr->producer_worker >= 0 ? gen_on(produce_3_yield_4, tr, 1)
					      : rlt_gen_new(produce_3_yield_4, tr, NULL);
	assert_non_null(g);
	/* Nobody asked yet: the producer has not run. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(tr->n, 1);
	void *v;
	int rc;
	while ((rc = rlt_gen_next(g, &v)) == 0)
		tr->ev[tr->n++] = (int)I(v);
	assert_int_equal(rc, -EPIPE);
	tr->ev[tr->n++] = 2;
	assert_int_equal(rlt_gen_close(g), 0);
	return NULL;
}

static void *root_1342(void *arg)
{
	struct trace tr = {.producer_worker = (int)I(arg), .yield_rc = 1};
	if (tr.producer_worker >= (int)nworkers())
		tr.producer_worker = -1; /* RINGLET_WORKERS=1 */
	rlt_task *c = rlt_test_spawn_on(consume_1_then_2, &tr, 0);
	assert_int_equal(rlt_join(c, NULL), 0);
	const int want[4] = {1, 3, 4, 2};
	assert_int_equal(tr.n, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(tr.ev[i], want[i]);
	/* The second next() resumed the producer from its yield. */
	assert_int_equal(tr.yield_rc, 0);
	return NULL;
}

static void test_producer_runs_only_when_asked_1_3_4_2(void **state)
{
	run1(root_1342, V(-1));
	run2(root_1342, V(-1));
	run2(root_1342, V(1)); /* producer on the other worker */
}

/* ---- 100 values, with waits between them ---- */

enum between { BETWEEN_NOTHING, BETWEEN_YIELD, BETWEEN_SLEEP0, BETWEEN_IO };

static void *count_to_100(rlt_gen *g, void *arg)
{
	enum between how = (enum between)I(arg);
	int fds[2] = {-1, -1};
	if (how == BETWEEN_IO)
		assert_int_equal(pipe(fds), 0);
	for (intptr_t i = 0; i < 100; i++) {
		intptr_t v = i;
		switch (how) {
		case BETWEEN_NOTHING:
			break;
		case BETWEEN_YIELD:
			assert_int_equal(rlt_yield(), 0);
			break;
		case BETWEEN_SLEEP0:
			assert_int_equal(rlt_sleep(0), 0);
			break;
		case BETWEEN_IO: /* the value makes a round trip through a pipe */
			assert_int_equal(rlt_write(fds[1], &i, sizeof(i), -1), sizeof(i));
			v = -1;
			assert_int_equal(rlt_read(fds[0], &v, sizeof(v), -1), sizeof(v));
			break;
		}
		if (rlt_gen_yield(g, V(v)) < 0)
			break;
	}
	if (how == BETWEEN_IO) {
		close(fds[0]);
		close(fds[1]);
	}
	return NULL;
}

static void *root_100_values(void *arg)
{
	for (int how = BETWEEN_NOTHING; how <= BETWEEN_IO; how++) {
		for (unsigned w = 0; w < 2; w++) {
			rlt_gen *g = gen_on(count_to_100, V(how), w);
			void *v;
			intptr_t expect = 0;
			int rc;
			while ((rc = rlt_gen_next(g, &v)) == 0)
				assert_int_equal(I(v), expect++);
			assert_int_equal(rc, -EPIPE);
			assert_int_equal(expect, 100);
			/* After the end: -EPIPE for good, v untouched. */
			v = V(-7);
			assert_int_equal(rlt_gen_next(g, &v), -EPIPE);
			assert_int_equal(rlt_gen_next(g, NULL), -EPIPE);
			assert_ptr_equal(v, V(-7));
			assert_int_equal(rlt_gen_close(g), 0);
		}
	}
	return NULL;
}

static void test_100_values_in_order_with_io_and_yields_between(void **state)
{
	run1(root_100_values, NULL);
	run2(root_100_values, NULL);
}

/* ---- producer on another worker, many generators ---- */

static void *count_on_worker_1(rlt_gen *g, void *arg)
{
	intptr_t n = I(arg);
	/* Yields at once: the consumer may still be inside rlt_gen_next()'s
	 * spawn of us on the other worker. */
	for (intptr_t i = 0; i < n; i++) {
		assert_int_equal(rlt_worker_index(), 1);
		if (rlt_gen_yield(g, V(i)) < 0)
			break;
	}
	return NULL;
}

static void *consume_from_worker_1(void *arg)
{
	intptr_t gens = I(arg);
	for (intptr_t k = 0; k < gens; k++) {
		assert_int_equal(rlt_worker_index(), 0);
		intptr_t n = k % 5;
		rlt_gen *g = gen_on(count_on_worker_1, V(n), 1);
		void *v;
		intptr_t expect = 0;
		int rc;
		while ((rc = rlt_gen_next(g, &v)) == 0)
			assert_int_equal(I(v), expect++);
		assert_int_equal(rc, -EPIPE);
		assert_int_equal(expect, n);
		assert_int_equal(rlt_gen_close(g), 0);
	}
	return NULL;
}

static void *root_other_worker(void *arg)
{
	if (nworkers() < 2)
		return NULL; /* RINGLET_WORKERS=1: nothing to check */
	rlt_task *c = rlt_test_spawn_on(consume_from_worker_1, V(RLT_TEST_SCALE(2000)), 0);
	assert_int_equal(rlt_join(c, NULL), 0);
	return NULL;
}

static void test_producer_on_another_worker(void **state)
{
	run2(root_other_worker, NULL);
}

#define NCONS 8

static void *sum_gen(rlt_gen *g, void *arg)
{
	intptr_t n = I(arg);
	for (intptr_t i = 1; i <= n; i++) {
		if (i % 7 == 0)
			assert_int_equal(rlt_yield(), 0);
		if (rlt_gen_yield(g, V(i)) < 0)
			break;
	}
	return NULL;
}

static void *sum_consumer(void *arg)
{
	intptr_t n = RLT_TEST_SCALE(2000);
	rlt_gen *g = gen_on(sum_gen, V(n), (unsigned)I(arg) + 1);
	intptr_t sum = 0;
	void *v;
	while (rlt_gen_next(g, &v) == 0)
		sum += I(v);
	assert_int_equal(rlt_gen_close(g), 0);
	assert_int_equal(sum, n * (n + 1) / 2);
	return NULL;
}

static void *root_many_generators(void *arg)
{
	rlt_task *c[NCONS];
	for (int i = 0; i < NCONS; i++)
		c[i] = rlt_test_spawn_on(sum_consumer, V(i), (unsigned)i);
	for (int i = 0; i < NCONS; i++)
		assert_int_equal(rlt_join(c[i], NULL), 0);
	return NULL;
}

static void test_many_generators_across_two_workers(void **state)
{
	run2(root_many_generators, NULL);
}

/* ---- close ---- */

struct closing {
	atomic_int started;
	atomic_int yield_rc;  /* what the interrupted yield returned */
	atomic_int sleep_rc;  /* what the interrupted sleep returned */
	atomic_int cleaned;   /* the producer's rlt_defer cleanup finished */
	uint64_t first_sleep; /* before the first value */
};

static void closing_cleanup(void *arg)
{
	struct closing *c = arg;
	/* Cleanup may wait: close waits for it. */
	assert_int_equal(rlt_sleep(2 * MS), 0);
	atomic_store(&c->cleaned, 1);
}

static void *endless(rlt_gen *g, void *arg)
{
	struct closing *c = arg;
	atomic_store(&c->started, 1);
	assert_int_equal(rlt_defer(closing_cleanup, c), 0);
	if (c->first_sleep) {
		int rc = rlt_sleep(c->first_sleep);
		atomic_store(&c->sleep_rc, rc);
		if (rc < 0)
			return NULL;
	}
	for (intptr_t i = 0;; i++) {
		int rc = rlt_gen_yield(g, V(i));
		if (rc < 0) {
			atomic_store(&c->yield_rc, rc);
			return NULL;
		}
	}
}

static void closing_init(struct closing *c, uint64_t first_sleep)
{
	atomic_init(&c->started, 0);
	atomic_init(&c->yield_rc, 1);
	atomic_init(&c->sleep_rc, 1);
	atomic_init(&c->cleaned, 0);
	c->first_sleep = first_sleep;
}

static void *root_early_close(void *arg)
{
	for (unsigned w = 0; w < 2; w++) {
		struct closing c;
		closing_init(&c, 0);
		rlt_gen *g = gen_on(endless, &c, w);
		void *v;
		for (intptr_t i = 0; i < 3; i++) {
			assert_int_equal(rlt_gen_next(g, &v), 0);
			assert_int_equal(I(v), i);
		}
		uint64_t t0 = rlt_now();
		assert_int_equal(rlt_gen_close(g), 0);
		assert_true(since(t0) < QUICK_NS);
		/* The producer's yield said "closed", and its cleanup has run
		 * (waits included) by the time close returns. */
		assert_int_equal(atomic_load(&c.yield_rc), -ECANCELED);
		assert_int_equal(atomic_load(&c.cleaned), 1);
	}
	return NULL;
}

static void test_early_close_runs_the_producers_cleanup(void **state)
{
	run2(root_early_close, NULL);
}

static void *root_close_before_first_next(void *arg)
{
	struct closing c;
	closing_init(&c, 0);
	rlt_gen *g = gen_on(endless, &c, 1);
	assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_gen_close(g), 0);
	assert_int_equal(atomic_load(&c.started), 0);
	assert_int_equal(atomic_load(&c.cleaned), 0);
	return NULL;
}

static void test_close_before_the_first_next_never_runs_the_producer(void **state)
{
	run2(root_close_before_first_next, NULL);
}

/* Closing while the producer is busy between values (here: sleeping),
 * after the consumer gave up waiting for it. */
static void *root_close_while_producing(void *arg)
{
	struct closing c;
	closing_init(&c, LONG_NS);
	rlt_gen *g = gen_on(endless, &c, 1);
	rlt_scope sc;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 20 * MS), 0);
	void *v = V(-7);
	assert_int_equal(rlt_gen_next(g, &v), -ETIMEDOUT);
	assert_ptr_equal(v, V(-7));
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	assert_true(since(t0) >= 20 * MS);
	/* A producer cancelled before it first ran would not run at all:
	 * let it get going (it is asleep or about to be). */
	while (!atomic_load(&c.started)) {
		assert_true(since(t0) < QUICK_NS);
		assert_int_equal(rlt_sleep(MS), 0);
	}
	assert_int_equal(rlt_gen_close(g), 0);
	assert_true(since(t0) < QUICK_NS);
	assert_int_equal(atomic_load(&c.sleep_rc), -ECANCELED);
	assert_int_equal(atomic_load(&c.yield_rc), 1);
	assert_int_equal(atomic_load(&c.cleaned), 1);
	return NULL;
}

static void test_close_while_the_producer_is_between_values(void **state)
{
	run2(root_close_while_producing, NULL);
}

/* ---- failure ---- */

static void *yield_two_then_fail(rlt_gen *g, void *arg)
{
	intptr_t before = I(arg);
	for (intptr_t i = 0; i < before; i++)
		if (rlt_gen_yield(g, V(i + 1)) < 0)
			return NULL;
	return rlt_fail(-EIO);
}

static void *root_failure(void *arg)
{
	for (intptr_t before = 0; before <= 2; before += 2) {
		rlt_gen *g = gen_on(yield_two_then_fail, V(before), (unsigned)before / 2);
		void *v;
		for (intptr_t i = 0; i < before; i++) {
			assert_int_equal(rlt_gen_next(g, &v), 0);
			assert_int_equal(I(v), i + 1);
		}
		assert_int_equal(rlt_gen_next(g, &v), -EIO);
		assert_int_equal(rlt_gen_next(g, &v), -EIO);
		assert_int_equal(rlt_gen_close(g), -EIO);
	}
	return NULL;
}

static void test_producer_failure_is_returned_by_next_and_close(void **state)
{
	run2(root_failure, NULL);
}

/* ---- the consumer cancelled in next() ---- */

struct gated {
	rlt_event *gate;
	rlt_gen *g;
	atomic_int first_rc;
};

static void *gated_7_8(rlt_gen *g, void *arg)
{
	struct gated *gt = arg;
	assert_int_equal(rlt_event_wait(gt->gate), 0);
	if (rlt_gen_yield(g, V(7)) == 0)
		rlt_gen_yield(g, V(8));
	return NULL;
}

static void *gated_consumer(void *arg)
{
	struct gated *gt = arg;
	void *v = V(-7);
	int rc = rlt_gen_next(gt->g, &v);
	atomic_store(&gt->first_rc, rc);
	assert_int_equal(rc, -ECANCELED);
	assert_ptr_equal(v, V(-7));
	/* We handled it and go on. */
	assert_int_equal(rlt_uncancel(), 1);
	assert_int_equal(rlt_event_set(gt->gate), 0);
	/* The value that was on its way is this call's. */
	assert_int_equal(rlt_gen_next(gt->g, &v), 0);
	assert_int_equal(I(v), 7);
	assert_int_equal(rlt_gen_next(gt->g, &v), 0);
	assert_int_equal(I(v), 8);
	assert_int_equal(rlt_gen_next(gt->g, &v), -EPIPE);
	return NULL;
}

static void *root_consumer_cancelled(void *arg)
{
	struct gated gt;
	gt.gate = rlt_event_new();
	assert_non_null(gt.gate);
	atomic_init(&gt.first_rc, 1);
	gt.g = gen_on(gated_7_8, &gt, 1);
	rlt_task *c = rlt_test_spawn_on(gated_consumer, &gt, 0);
	wait_until_waiting(c, "generator");
	assert_int_equal(rlt_cancel(c), 0);
	assert_int_equal(rlt_join(c, NULL), 0); /* uncancelled */
	assert_int_equal(atomic_load(&gt.first_rc), -ECANCELED);
	assert_int_equal(rlt_gen_close(gt.g), 0);
	assert_int_equal(rlt_event_free(gt.gate), 0);
	return NULL;
}

static void test_consumer_cancelled_in_next_gets_the_value_next_time(void **state)
{
	run2(root_consumer_cancelled, NULL);
}

/* ---- stackful: yield from deep inside the producer's calls ---- */

static int walk(rlt_gen *g, intptr_t lo, intptr_t hi)
{
	if (lo > hi)
		return 0;
	intptr_t mid = lo + (hi - lo) / 2;
	if (walk(g, lo, mid - 1) < 0 || rlt_gen_yield(g, V(mid)) < 0)
		return -1;
	return walk(g, mid + 1, hi);
}

static void *inorder(rlt_gen *g, void *arg)
{
	walk(g, 1, I(arg));
	return NULL;
}

static void *root_nested(void *arg)
{
	rlt_gen *g = gen_on(inorder, V(1000), 1);
	void *v;
	for (intptr_t i = 1; i <= 1000; i++) {
		assert_int_equal(rlt_gen_next(g, &v), 0);
		assert_int_equal(I(v), i);
	}
	assert_int_equal(rlt_gen_next(g, &v), -EPIPE);
	assert_int_equal(rlt_gen_close(g), 0);
	/* Closed half-way: the producer unwinds its recursion. */
	g = gen_on(inorder, V(1000), 0);
	for (intptr_t i = 1; i <= 10; i++)
		assert_int_equal(rlt_gen_next(g, &v), 0);
	assert_int_equal(rlt_gen_close(g), 0);
	return NULL;
}

static void test_producer_yields_from_nested_calls(void **state)
{
	run2(root_nested, NULL);
}

/* ---- errors ---- */

static void *root_bad_arguments(void *arg)
{
	errno = 0;
	assert_null(rlt_gen_new(NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	rlt_spawn_opts det = {.flags = RLT_SPAWN_DETACHED};
	errno = 0;
	assert_null(rlt_gen_new(count_to_100, NULL, &det));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(rlt_gen_next(NULL, NULL), -EINVAL);
	assert_int_equal(rlt_gen_close(NULL), -EINVAL);
	assert_int_equal(rlt_gen_yield(NULL, NULL), -EINVAL);
	rlt_gen *g = rlt_gen_new(count_to_100, V(BETWEEN_NOTHING), NULL);
	assert_non_null(g);
	/* Only the producer yields. */
	assert_int_equal(rlt_gen_yield(g, V(1)), -EPERM);
	void *v;
	assert_int_equal(rlt_gen_next(g, &v), 0);
	assert_int_equal(rlt_gen_yield(g, V(1)), -EPERM);
	assert_int_equal(rlt_gen_close(g), 0);
	return NULL;
}

static void test_argument_errors(void **state)
{
	run2(root_bad_arguments, NULL);
	errno = 0;
	assert_null(rlt_gen_new(count_to_100, NULL, NULL));
	assert_int_equal(errno, EPERM);
	assert_int_equal(rlt_gen_next(NULL, NULL), -EPERM);
	assert_int_equal(rlt_gen_close(NULL), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_producer_runs_only_when_asked_1_3_4_2),
	    cmocka_unit_test(test_100_values_in_order_with_io_and_yields_between),
	    cmocka_unit_test(test_producer_on_another_worker),
	    cmocka_unit_test(test_many_generators_across_two_workers),
	    cmocka_unit_test(test_early_close_runs_the_producers_cleanup),
	    cmocka_unit_test(test_close_before_the_first_next_never_runs_the_producer),
	    cmocka_unit_test(test_close_while_the_producer_is_between_values),
	    cmocka_unit_test(test_producer_failure_is_returned_by_next_and_close),
	    cmocka_unit_test(test_consumer_cancelled_in_next_gets_the_value_next_time),
	    cmocka_unit_test(test_producer_yields_from_nested_calls),
	    cmocka_unit_test(test_argument_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
