/* Channels: order, many producers and consumers, close, timeouts and their
 * race with hand-offs, feeding from a plain thread, the `async for` loop. */
#include "tests/rlt_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define V(i) ((void *)(uintptr_t)(i))
#define I(v) ((uintptr_t)(v))

static void *join_res(rlt_task *t)
{
	void *res = NULL;
	assert_int_equal(rlt_join(t, &res), 0);
	return res;
}

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

/* ---- FIFO order, one producer, one consumer ---- */

struct seq {
	rlt_chan *ch;
	uintptr_t n;
};

static void *send_seq_then_close(void *arg)
{
	struct seq *s = arg;
	for (uintptr_t i = 1; i <= s->n; i++)
		assert_int_equal(rlt_chan_send(s->ch, V(i)), 0);
	assert_int_equal(rlt_chan_close(s->ch), 0);
	return NULL;
}

static void *root_fifo(void *arg)
{
	size_t cap = (size_t)I(arg);
	struct seq s = {rlt_chan_new(cap), RLT_TEST_SCALE(20000)};
	assert_non_null(s.ch);
	assert_int_equal(rlt_chan_cap(s.ch), cap);
	rlt_task *p = rlt_spawn(send_seq_then_close, &s, NULL);
	uintptr_t expect = 1;
	void *v;
	int rc;
	while ((rc = rlt_chan_recv(s.ch, &v)) == 0) {
		assert_int_equal(I(v), expect);
		expect++;
		assert_true(rlt_chan_len(s.ch) <= cap);
	}
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(expect, s.n + 1);
	join_res(p);
	assert_int_equal(rlt_chan_free(s.ch), 0);
	return NULL;
}

static void test_fifo_order_one_producer_one_consumer_buffered(void **state)
{
	rlt_test_run(root_fifo, V(8));
	rlt_test_run1(root_fifo, V(8));
	rlt_test_run1(root_fifo, V(1));
}

static void test_fifo_order_one_producer_one_consumer_rendezvous(void **state)
{
	rlt_test_run(root_fifo, V(0));
	rlt_test_run1(root_fifo, V(0));
}

/* Blocked senders are served in arrival order, after the buffer. */
static void *send_one(void *arg)
{
	void **a = arg;
	return V(rlt_chan_send(a[0], a[1]));
}

static void *root_blocked_senders_in_order(void *arg)
{
	size_t cap = (size_t)I(arg);
	rlt_chan *ch = rlt_chan_new(cap);
	for (uintptr_t i = 0; i < cap; i++)
		assert_int_equal(rlt_chan_try_send(ch, V(100 + i)), 0);
	assert_int_equal(rlt_chan_try_send(ch, V(1)), -EAGAIN);
	void *args[3][2];
	rlt_task *t[3];
	for (int i = 0; i < 3; i++) {
		args[i][0] = ch;
		args[i][1] = V(i + 1);
		t[i] = rlt_spawn(send_one, args[i], NULL);
		rlt_yield(); /* on one worker: t[i] now waits in its send */
	}
	assert_int_equal(rlt_chan_free(ch), -EBUSY);
	void *v;
	for (uintptr_t i = 0; i < cap; i++) {
		assert_int_equal(rlt_chan_recv(ch, &v), 0);
		assert_int_equal(I(v), 100 + i);
	}
	for (uintptr_t i = 1; i <= 3; i++) {
		assert_int_equal(rlt_chan_recv(ch, &v), 0);
		assert_int_equal(I(v), i);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(I(join_res(t[i])), 0);
	assert_int_equal(rlt_chan_try_recv(ch, &v), -EAGAIN);
	assert_int_equal(rlt_chan_free(ch), 0);
	return NULL;
}

static void test_blocked_senders_are_served_in_order_after_the_buffer(void **state)
{
	rlt_test_run1(root_blocked_senders_in_order, V(2));
	rlt_test_run1(root_blocked_senders_in_order, V(0));
}

/* ---- 4 producers x 4 consumers on 2 workers ---- */

#define MP 4
#define MC 4

struct mpmc {
	rlt_chan *ch;
	uintptr_t n; /* values in all; producer p sends [p*n/MP, (p+1)*n/MP) */
	_Atomic uint8_t *seen;
	atomic_uint_fast64_t sum, count;
};

struct mpmc_arg {
	struct mpmc *m;
	uintptr_t p;
};

static void *mpmc_producer(void *arg)
{
	struct mpmc_arg *a = arg;
	struct mpmc *m = a->m;
	for (uintptr_t i = a->p * m->n / MP; i < (a->p + 1) * m->n / MP; i++)
		assert_int_equal(rlt_chan_send(m->ch, V(i + 1)), 0);
	return NULL;
}

static void *mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	uint64_t sum = 0, count = 0;
	void *v;
	int rc;
	while ((rc = rlt_chan_recv(m->ch, &v)) == 0) {
		uintptr_t i = I(v) - 1;
		assert_true(i < m->n);
		atomic_fetch_add_explicit(&m->seen[i], 1, memory_order_relaxed);
		sum += I(v);
		count++;
	}
	assert_int_equal(rc, -EPIPE);
	atomic_fetch_add(&m->sum, sum);
	atomic_fetch_add(&m->count, count);
	return NULL;
}

static void *root_mpmc(void *arg)
{
	struct mpmc m;
	m.ch = rlt_chan_new((size_t)I(arg));
	m.n = (size_t)I(arg) ? RLT_TEST_SCALE(100000) : RLT_TEST_SCALE(20000);
	m.seen = calloc(m.n, 1);
	atomic_init(&m.sum, 0);
	atomic_init(&m.count, 0);
	struct mpmc_arg pa[MP];
	rlt_task *prod[MP], *cons[MC];
	for (unsigned i = 0; i < MC; i++)
		cons[i] = rlt_test_spawn_on(mpmc_consumer, &m, i % 2);
	for (unsigned i = 0; i < MP; i++) {
		pa[i] = (struct mpmc_arg){&m, i};
		prod[i] = rlt_test_spawn_on(mpmc_producer, &pa[i], (i + 1) % 2);
	}
	for (unsigned i = 0; i < MP; i++)
		join_res(prod[i]);
	assert_int_equal(rlt_chan_close(m.ch), 0);
	for (unsigned i = 0; i < MC; i++)
		join_res(cons[i]);
	assert_int_equal(atomic_load(&m.count), m.n);
	assert_int_equal(atomic_load(&m.sum), (uint64_t)m.n * (m.n + 1) / 2);
	for (uintptr_t i = 0; i < m.n; i++)
		assert_int_equal(atomic_load(&m.seen[i]), 1);
	free((void *)m.seen);
	assert_int_equal(rlt_chan_free(m.ch), 0);
	return NULL;
}

static void test_mpmc_4x4_on_2_workers_delivers_every_value_once(void **state)
{
	run2(root_mpmc, V(16));
	run2(root_mpmc, V(0));
}

/* ---- close ---- */

static void *recv_one(void *arg)
{
	void *v = V(7);
	int rc = rlt_chan_recv(arg, &v);
	assert_ptr_equal(v, V(7)); /* untouched on error */
	return V(rc);
}

static void *root_close(void *arg)
{
	rlt_chan *ch = rlt_chan_new(2);
	void *v;
	assert_int_equal(rlt_chan_send(ch, V(1)), 0);
	assert_int_equal(rlt_chan_send(ch, V(2)), 0);
	/* A sender blocked on the full channel gets -EPIPE at close. */
	void *a[2] = {ch, V(3)};
	rlt_task *s = rlt_spawn(send_one, a, NULL);
	rlt_yield();
	assert_int_equal(rlt_chan_close(ch), 0);
	assert_int_equal(rlt_chan_close(ch), -EALREADY);
	assert_true(rlt_chan_closed(ch));
	assert_int_equal((int)(intptr_t)join_res(s), -EPIPE);
	assert_int_equal(rlt_chan_send(ch, V(4)), -EPIPE);
	assert_int_equal(rlt_chan_try_send(ch, V(4)), -EPIPE);
	assert_int_equal(rlt_chan_send_timeout(ch, V(4), 1000), -EPIPE);
	/* Buffered values are still delivered, then -EPIPE for good. */
	assert_int_equal(rlt_chan_len(ch), 2);
	assert_int_equal(rlt_chan_recv(ch, &v), 0);
	assert_int_equal(I(v), 1);
	assert_int_equal(rlt_chan_try_recv(ch, &v), 0);
	assert_int_equal(I(v), 2);
	assert_int_equal(rlt_chan_recv(ch, &v), -EPIPE);
	assert_int_equal(rlt_chan_try_recv(ch, &v), -EPIPE);
	assert_int_equal(rlt_chan_recv_timeout(ch, &v, 1000), -EPIPE);
	assert_int_equal(rlt_chan_free(ch), 0);

	/* Receivers blocked on an empty channel get -EPIPE at close. */
	ch = rlt_chan_new(0);
	rlt_task *r[3];
	for (int i = 0; i < 3; i++)
		r[i] = rlt_spawn(recv_one, ch, NULL);
	rlt_yield();
	assert_int_equal(rlt_chan_close(ch), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal((int)(intptr_t)join_res(r[i]), -EPIPE);
	assert_int_equal(rlt_chan_free(ch), 0);
	return NULL;
}

static void test_close_drains_then_epipe_and_wakes_blocked_senders(void **state)
{
	rlt_test_run1(root_close, NULL);
}

/* Across workers: a close from worker 0 races a rendezvous on worker 1 and a
 * sender on worker 0. Returns 7 for the value 1 received, else the error. */
static void *recv_one_value(void *arg)
{
	void *v = NULL;
	int rc = rlt_chan_recv(arg, &v);
	if (rc == 0) {
		assert_int_equal(I(v), 1);
		return V(7);
	}
	return V(rc);
}

static void *root_close_2w(void *arg)
{
	for (int round = 0; round < RLT_TEST_SCALE(200); round++) {
		rlt_chan *ch = rlt_chan_new(0);
		rlt_task *r = rlt_test_spawn_on(recv_one_value, ch, 1);
		void *a[2] = {ch, V(1)};
		rlt_task *s = rlt_test_spawn_on(send_one, a, 1);
		rlt_task *s2 = rlt_test_spawn_on(send_one, a, 0);
		rlt_yield();
		assert_int_equal(rlt_chan_close(ch), 0);
		int rs = (int)(intptr_t)join_res(s), rs2 = (int)(intptr_t)join_res(s2);
		int rr = (int)(intptr_t)join_res(r);
		/* One receiver: at most one send met it; the others see the
		 * close. The receiver got a value exactly when a send succeeded. */
		assert_true(rs == 0 || rs == -EPIPE);
		assert_true(rs2 == 0 || rs2 == -EPIPE);
		assert_false(rs == 0 && rs2 == 0);
		assert_int_equal(rr, (rs == 0 || rs2 == 0) ? 7 : -EPIPE);
		assert_int_equal(rlt_chan_free(ch), 0);
	}
	return NULL;
}

static void test_close_from_another_worker_races_hand_offs_cleanly(void **state)
{
	run2(root_close_2w, NULL);
}

/* ---- timeouts ---- */

static void *send_later(void *arg)
{
	rlt_sleep(1 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_chan_send(arg, V(42)), 0);
	return NULL;
}

static void *root_timeouts(void *arg)
{
	rlt_chan *ch = rlt_chan_new((size_t)I(arg));
	void *v = V(9);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_chan_recv_timeout(ch, &v, 5 * RLT_NSEC_PER_MSEC), -ETIMEDOUT);
	uint64_t dt = rlt_now() - t0;
	assert_true(dt >= 5 * RLT_NSEC_PER_MSEC);
	assert_true(dt < 2 * RLT_NSEC_PER_SEC);
	assert_ptr_equal(v, V(9));
	assert_int_equal(rlt_chan_recv_timeout(ch, &v, 0), -ETIMEDOUT);
	/* The receiver that left is not in the queue any more: a value sent
	 * now stays in the channel (or, for capacity 0, is not taken). */
	if (rlt_chan_cap(ch)) {
		assert_int_equal(rlt_chan_try_send(ch, V(1)), 0);
		assert_int_equal(rlt_chan_len(ch), 1);
		assert_int_equal(rlt_chan_recv(ch, &v), 0);
		assert_int_equal(I(v), 1);
	} else {
		assert_int_equal(rlt_chan_try_send(ch, V(1)), -EAGAIN);
	}

	/* A send on a full channel times out and its value is not sent. */
	for (size_t i = 0; i < rlt_chan_cap(ch); i++)
		assert_int_equal(rlt_chan_try_send(ch, V(100 + i)), 0);
	t0 = rlt_now();
	assert_int_equal(rlt_chan_send_timeout(ch, V(5), 5 * RLT_NSEC_PER_MSEC), -ETIMEDOUT);
	assert_true(rlt_now() - t0 >= 5 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_chan_send_timeout(ch, V(5), 0), -ETIMEDOUT);
	for (size_t i = 0; i < rlt_chan_cap(ch); i++) {
		assert_int_equal(rlt_chan_try_recv(ch, &v), 0);
		assert_int_equal(I(v), 100 + i);
	}
	assert_int_equal(rlt_chan_try_recv(ch, &v), -EAGAIN);

	/* A timeout that does not fire: the value comes in time. */
	rlt_task *t = rlt_spawn(send_later, ch, NULL);
	t0 = rlt_now();
	assert_int_equal(rlt_chan_recv_timeout(ch, &v, 5 * RLT_NSEC_PER_SEC), 0);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC);
	assert_int_equal(I(v), 42);
	join_res(t);
	/* The disarmed timer must not fire into a stale frame. */
	assert_int_equal(rlt_sleep(2 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_chan_free(ch), 0);
	return NULL;
}

static void test_timeouts_fire_and_leave_nothing_behind(void **state)
{
	rlt_test_run(root_timeouts, V(2));
	rlt_test_run(root_timeouts, V(0));
}

/* ---- timeouts racing hand-offs ---- */

struct race {
	rlt_chan *ch;
	uintptr_t n;
	uint64_t send_to, recv_to; /* timeouts in ns */
	unsigned long timeouts;
};

static void *race_producer(void *arg)
{
	struct race *r = arg;
	unsigned long to = 0;
	for (uintptr_t i = 1; i <= r->n; i++) {
		int rc;
		while ((rc = rlt_chan_send_timeout(r->ch, V(i), (int64_t)r->send_to)) == -ETIMEDOUT)
			to++;
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rlt_chan_close(r->ch), 0);
	return V(to);
}

static void *race_consumer(void *arg)
{
	struct race *r = arg;
	unsigned long to = 0;
	uintptr_t expect = 1;
	void *v;
	int rc;
	for (;;) {
		rc = rlt_chan_recv_timeout(r->ch, &v, (int64_t)r->recv_to);
		if (rc == -ETIMEDOUT) {
			to++;
			continue;
		}
		if (rc != 0)
			break;
		/* One producer: exactly the next value, none lost or twice. */
		assert_int_equal(I(v), expect);
		expect++;
	}
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(expect, r->n + 1);
	return V(to);
}

static void *root_race(void *arg)
{
	unsigned workers = (unsigned)I(arg);
	/* (send, receive) timeouts, ns: even, lopsided, and 1 ns against a
	 * wait long enough that the two always meet in the end. */
	static const uint64_t tos[][2] = {
	    {1000, 1000}, {500, 3000}, {3000, 500}, {1, 5000}, {5000, 1}};
	unsigned long total = 0;
	for (size_t cap = 0; cap <= 1; cap++) {
		for (size_t k = 0; k < sizeof(tos) / sizeof(tos[0]); k++) {
			struct race r = {rlt_chan_new(cap), RLT_TEST_SCALE(3000), tos[k][0],
					 tos[k][1], 0};
			rlt_task *c = rlt_test_spawn_on(race_consumer, &r, workers - 1);
			rlt_task *p = rlt_test_spawn_on(race_producer, &r, 0);
			total += (unsigned long)I(join_res(p));
			total += (unsigned long)I(join_res(c));
			assert_int_equal(rlt_chan_free(r.ch), 0);
		}
	}
	print_message("  %u worker(s): %lu waits timed out amid the hand-offs\n", workers, total);
	return NULL;
}

static void test_timeouts_racing_hand_offs_lose_and_double_nothing(void **state)
{
	rlt_test_run1(root_race, V(1));
	run2(root_race, V(2));
}

/* ---- a plain thread feeds a task ---- */

struct feed {
	rlt_chan *ch;
	uintptr_t n;
};

static void *feeder_thread(void *arg)
{
	struct feed *f = arg;
	for (uintptr_t i = 1; i <= f->n; i++) {
		int rc;
		while ((rc = rlt_chan_try_send(f->ch, V(i))) == -EAGAIN)
			sched_yield();
		assert_int_equal(rc, 0);
	}
	assert_int_equal(rlt_chan_send(f->ch, V(0)), -EPERM); /* not a task */
	assert_int_equal(rlt_chan_close(f->ch), 0);
	return NULL;
}

static void *root_feed(void *arg)
{
	struct feed f = {rlt_chan_new((size_t)I(arg)), RLT_TEST_SCALE(20000)};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, feeder_thread, &f), 0);
	uintptr_t expect = 1;
	void *v;
	int rc;
	while ((rc = rlt_chan_recv(f.ch, &v)) == 0)
		assert_int_equal(I(v), expect++);
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(expect, f.n + 1);
	pthread_join(th, NULL);
	assert_int_equal(rlt_chan_free(f.ch), 0);
	return NULL;
}

static int threads_unusable(void)
{
	return getenv("RLT_TEST_NO_FOREIGN_THREADS") != NULL;
}

static void test_try_send_from_a_plain_thread_feeds_a_task(void **state)
{
	if (threads_unusable())
		skip();
	rlt_test_run(root_feed, V(4));
	rlt_test_run(root_feed, V(0)); /* only ever to a waiting receiver */
}

/* ---- the `async for` loop ---- */

static void *generator(void *arg)
{
	rlt_chan *ch = arg;
	for (uintptr_t i = 0; i < 100; i++)
		rlt_chan_send(ch, V(i));
	rlt_chan_close(ch);
	return NULL;
}

static void *root_async_for(void *arg)
{
	rlt_chan *ch = rlt_chan_new(0);
	rlt_task *gen = rlt_spawn(generator, ch, NULL);
	uintptr_t sum = 0, n = 0;
	void *v;
	while (rlt_chan_recv(ch, &v) == 0) { /* async for i in gen(): */
		sum += I(v);
		n++;
	}
	rlt_join(gen, NULL);
	rlt_chan_free(ch);
	assert_int_equal(n, 100);
	assert_int_equal(sum, 99 * 100 / 2);
	return NULL;
}

static void test_async_for_over_a_generator_task_sums_0_to_99(void **state)
{
	rlt_test_run(root_async_for, NULL);
}

/* ---- misuse ---- */

static void test_errors_outside_a_task_and_bad_arguments(void **state)
{
	rlt_chan *ch = rlt_chan_new(1);
	void *v;
	assert_non_null(ch);
	assert_int_equal(rlt_chan_send(ch, V(1)), -EPERM);
	assert_int_equal(rlt_chan_recv(ch, &v), -EPERM);
	assert_int_equal(rlt_chan_try_send(ch, V(1)), 0);
	assert_int_equal(rlt_chan_try_send(ch, V(2)), -EAGAIN);
	assert_int_equal(rlt_chan_try_recv(ch, &v), 0);
	assert_int_equal(I(v), 1);
	assert_int_equal(rlt_chan_try_recv(ch, NULL), -EINVAL);
	assert_int_equal(rlt_chan_try_send(NULL, V(1)), -EINVAL);
	assert_int_equal(rlt_chan_try_recv(NULL, &v), -EINVAL);
	assert_int_equal(rlt_chan_close(NULL), -EINVAL);
	assert_int_equal(rlt_chan_len(NULL), 0);
	assert_int_equal(rlt_chan_cap(NULL), 0);
	assert_int_equal(rlt_chan_free(NULL), 0);
	assert_int_equal(rlt_chan_free(ch), 0);
	errno = 0;
	assert_null(rlt_chan_new(SIZE_MAX / 2));
	assert_int_equal(errno, ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_order_one_producer_one_consumer_buffered),
	    cmocka_unit_test(test_fifo_order_one_producer_one_consumer_rendezvous),
	    cmocka_unit_test(test_blocked_senders_are_served_in_order_after_the_buffer),
	    cmocka_unit_test(test_mpmc_4x4_on_2_workers_delivers_every_value_once),
	    cmocka_unit_test(test_close_drains_then_epipe_and_wakes_blocked_senders),
	    cmocka_unit_test(test_close_from_another_worker_races_hand_offs_cleanly),
	    cmocka_unit_test(test_timeouts_fire_and_leave_nothing_behind),
	    cmocka_unit_test(test_timeouts_racing_hand_offs_lose_and_double_nothing),
	    cmocka_unit_test(test_try_send_from_a_plain_thread_feeds_a_task),
	    cmocka_unit_test(test_async_for_over_a_generator_task_sums_0_to_99),
	    cmocka_unit_test(test_errors_outside_a_task_and_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
