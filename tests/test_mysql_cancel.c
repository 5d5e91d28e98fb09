/* Cancellation, deadlines and failures in the middle of a query, against a
 * real mariadbd started here: a deadline scope and rlt_cancel() in the
 * middle of SELECT SLEEP(5) resume the task promptly, break the connection
 * and keep the pool clean (both variants); the connector's read timeout;
 * KILL QUERY from another connection (measured: the victim's call ends, its
 * connection stays usable); and the server killed mid-query (an error, not
 * a hang; last, it takes the server down). */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"
#include "tests/test_mysql_server.h"

static int modes[] = {RLT_MYSQL_NONBLOCK, RLT_MYSQL_EXECUTOR};

static const char *mode_name(int mode)
{
	return mode == RLT_MYSQL_NONBLOCK ? "non-blocking" : "executor";
}

static rlt_mysql_pool *pool_open_kill(int mode, unsigned max, bool kill_on_abort)
{
	rlt_mysql_pool_config pc = {.conn = tms_cfg(false),
				    .max = max,
				    .health_idle_ns = -1,
				    .kill_on_abort = kill_on_abort};
	pc.conn.mode = mode;
	rlt_mysql_pool *p = NULL;
	int r = rlt_mysql_pool_open(&pc, &p);
	if (r)
		fail_msg("pool_open: %d", r);
	return p;
}

static void select_one_ok(rlt_mysql *c)
{
	rlt_mysql_result *r;
	int e = rlt_mysql_query_all(c, "SELECT 1", (size_t)-1, &r);
	if (e)
		fail_msg("SELECT 1: %d %s", e, rlt_mysql_error(c));
	assert_int_equal(rlt_mysql_next_row(r), 1);
	assert_true(tms_val_is(rlt_mysql_col(r, 0), "1"));
	rlt_mysql_result_free(r);
}

static rlt_mysql_pool *pool_open(int mode, unsigned max)
{
	return pool_open_kill(mode, max, false);
}

/* Whether connection id is still in the server's process list. */
static bool session_alive(rlt_mysql *admin, unsigned long id)
{
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %lu", id);
	rlt_mysql_result *r;
	assert_int_equal(rlt_mysql_query_all(admin, sql, (size_t)-1, &r), 0);
	assert_int_equal(rlt_mysql_next_row(r), 1);
	bool alive = !tms_val_is(rlt_mysql_col(r, 0), "0");
	rlt_mysql_result_free(r);
	return alive;
}

/* ---- a deadline in the middle of SLEEP(5) ---- */

struct dl_case {
	int mode;
	bool kill;
};

static void *deadline_task(void *arg)
{
	struct dl_case *dc = arg;
	int mode = dc->mode;
	rlt_mysql_pool *p = pool_open_kill(mode, 2, dc->kill);
	rlt_mysql *c, *admin;
	assert_int_equal(rlt_mysql_pool_acquire(p, -1, &admin), 0);
	assert_int_equal(rlt_mysql_pool_acquire(p, -1, &c), 0);
	unsigned long id = rlt_mysql_thread_id(c);
	rlt_scope sc;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 200 * (int64_t)RLT_NSEC_PER_MSEC), 0);
	rlt_mysql_result *r = (void *)1;
	int e = rlt_mysql_query_all(c, "SELECT SLEEP(5)", (size_t)-1, &r);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	uint64_t dt = rlt_now() - t0;
	assert_int_equal(e, -ETIMEDOUT);
	assert_null(r);
	assert_true(dt < 700 * RLT_NSEC_PER_MSEC);
	assert_true(rlt_mysql_broken(c));
	assert_int_equal(rlt_mysql_exec(c, "DO 1"), -ENOTCONN);
	rlt_mysql_pool_release(p, c);
	rlt_mysql_pool_stats s;
	rlt_mysql_pool_get_stats(p, &s);
	assert_int_equal(s.discarded, 1);
	assert_int_equal(s.in_use, 1);
	assert_int_equal(s.idle, 0);
	/* The next connection is a fresh one, and works. */
	assert_int_equal(rlt_mysql_pool_acquire(p, -1, &c), 0);
	assert_int_not_equal(rlt_mysql_thread_id(c), id);
	select_one_ok(c);
	/* The server ends the closed session (measured). */
	uint64_t t1 = rlt_now();
	while (session_alive(admin, id) && rlt_now() - t1 < 10 * RLT_NSEC_PER_SEC)
		rlt_sleep(10 * RLT_NSEC_PER_MSEC);
	uint64_t gone = rlt_now() - t1;
	fprintf(stderr,
		"deadline (%s, %s): task resumed after %.1f ms; server session gone %.0f ms after "
		"the close\n",
		mode_name(mode), dc->kill ? "kill_on_abort" : "close only", (double)dt / 1e6,
		(double)gone / 1e6);
	assert_false(session_alive(admin, id));
	if (dc->kill) {
		assert_true(gone < 1000 * RLT_NSEC_PER_MSEC);
		for (int k = 0; k < 200 && s.killed == 0; k++) {
			rlt_sleep(10 * RLT_NSEC_PER_MSEC);
			rlt_mysql_pool_get_stats(p, &s);
		}
		assert_int_equal(s.killed, 1);
	} else {
		/* SLEEP(5) ran on to its end there. */
		assert_true(gone > 3000 * RLT_NSEC_PER_MSEC);
	}
	rlt_mysql_pool_release(p, c);
	rlt_mysql_pool_release(p, admin);
	assert_int_equal(rlt_mysql_pool_close(p), 0);
	return NULL;
}

static void test_deadline(void **state)
{
	(void)state;
	TMS_REQUIRE();
	struct dl_case cases[] = {
	    {RLT_MYSQL_NONBLOCK, false}, {RLT_MYSQL_NONBLOCK, true}, {RLT_MYSQL_EXECUTOR, true}};
	for (unsigned k = 0; k < 3; k++)
		rlt_test_run(deadline_task, &cases[k]);
}

/* ---- rlt_cancel in the middle of SLEEP(5), streaming ---- */

struct victim {
	rlt_mysql_pool *p;
	rlt_mysql *c;
	int rc;
	rlt_event *started;
};

static void *victim_task(void *arg)
{
	struct victim *v = arg;
	rlt_mysql_result *r = NULL;
	rlt_event_set(v->started);
	v->rc = rlt_mysql_query(v->c, "SELECT 1 UNION ALL SELECT SLEEP(5)", (size_t)-1, &r);
	if (v->rc == 0) {
		/* The first row comes, the second is 5 s away. */
		v->rc = rlt_mysql_next_row(r);
		if (v->rc == 1)
			v->rc = rlt_mysql_next_row(r);
		rlt_mysql_result_free(r);
	}
	rlt_mysql_pool_release(v->p, v->c);
	return NULL;
}

static void *cancel_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql_pool *p = pool_open(mode, 1);
	struct victim v = {.p = p, .started = rlt_event_new()};
	assert_int_equal(rlt_mysql_pool_acquire(p, -1, &v.c), 0);
	rlt_task *t = rlt_spawn(victim_task, &v, NULL);
	assert_int_equal(rlt_event_wait(v.started), 0);
	rlt_sleep(200 * RLT_NSEC_PER_MSEC);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(t), 0);
	assert_int_equal(rlt_join(t, NULL), -ECANCELED);
	uint64_t dt = rlt_now() - t0;
	fprintf(stderr, "cancel (%s): task ended %.2f ms after rlt_cancel\n", mode_name(mode),
		(double)dt / 1e6);
	assert_int_equal(v.rc, -ECANCELED);
	assert_true(dt < 500 * RLT_NSEC_PER_MSEC);
	rlt_mysql_pool_stats s;
	rlt_mysql_pool_get_stats(p, &s);
	assert_int_equal(s.discarded, 1);
	assert_int_equal(s.in_use, 0);
	/* The pool hands out a clean connection. */
	rlt_mysql *c;
	assert_int_equal(rlt_mysql_pool_acquire(p, 2 * (int64_t)RLT_NSEC_PER_SEC, &c), 0);
	select_one_ok(c);
	rlt_mysql_pool_release(p, c);
	assert_int_equal(rlt_mysql_pool_close(p), 0);
	rlt_event_free(v.started);
	return NULL;
}

static void test_cancel(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(cancel_task, &modes[m]);
}

/* ---- the connector's read timeout ---- */

static void *read_timeout_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql_config cfg = tms_cfg(false);
	cfg.mode = mode;
	cfg.read_timeout_ms = 1000;
	rlt_mysql *c;
	assert_int_equal(rlt_mysql_connect(&cfg, &c, NULL, 0), 0);
	select_one_ok(c);
	uint64_t t0 = rlt_now();
	int e = rlt_mysql_exec(c, "SELECT SLEEP(5)");
	uint64_t dt = rlt_now() - t0;
	fprintf(stderr, "read timeout 1 s (%s): %d after %.0f ms: %s\n", mode_name(mode), e,
		(double)dt / 1e6, rlt_mysql_error(c));
	/* The connector retries a timed-out read (up to 3 times). */
	assert_true(dt >= 900 * RLT_NSEC_PER_MSEC && dt < 4500 * RLT_NSEC_PER_MSEC);
	if (mode == RLT_MYSQL_NONBLOCK)
		assert_int_equal(e, -ETIMEDOUT);
	else
		assert_true(e == -ETIMEDOUT || e == -ECONNRESET);
	assert_true(rlt_mysql_broken(c));
	rlt_mysql_close(c);
	return NULL;
}

static void test_read_timeout(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(read_timeout_task, &modes[m]);
}

/* ---- KILL QUERY from another connection ---- */

struct killed {
	rlt_mysql *c;
	int rc;
	uint64_t end;
	rlt_event *started;
};

static void *killed_task(void *arg)
{
	struct killed *k = arg;
	rlt_event_set(k->started);
	rlt_mysql_result *r = NULL;
	k->rc = rlt_mysql_query_all(k->c, "SELECT SLEEP(5)", (size_t)-1, &r);
	if (k->rc == 0) {
		/* SLEEP interrupted returns 1 (MariaDB) rather than an error. */
		k->rc = rlt_mysql_next_row(r) == 1 && tms_val_is(rlt_mysql_col(r, 0), "1") ? 1 : -1;
		rlt_mysql_result_free(r);
	}
	k->end = rlt_now();
	return NULL;
}

static void *kill_query_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql_config cfg = tms_cfg(false);
	cfg.mode = mode;
	rlt_mysql *admin;
	struct killed k = {.started = rlt_event_new()};
	assert_int_equal(rlt_mysql_connect(&cfg, &k.c, NULL, 0), 0);
	assert_int_equal(rlt_mysql_connect(&cfg, &admin, NULL, 0), 0);
	rlt_task *t = rlt_spawn(killed_task, &k, NULL);
	assert_int_equal(rlt_event_wait(k.started), 0);
	rlt_sleep(200 * RLT_NSEC_PER_MSEC);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_mysql_kill(admin, rlt_mysql_thread_id(k.c), true), 0);
	uint64_t t1 = rlt_now();
	assert_int_equal(rlt_join(t, NULL), 0);
	fprintf(stderr,
		"KILL QUERY (%s): the KILL took %.2f ms, the victim's call ended %.2f ms after "
		"it was sent (%s)\n",
		mode_name(mode), (double)(t1 - t0) / 1e6, (double)(k.end - t0) / 1e6,
		k.rc == 1 ? "SLEEP returned 1" : rlt_mysql_error(k.c));
	assert_true(k.rc == 1 || (k.rc == -EREMOTEIO && rlt_mysql_errno(k.c) == 1317));
	assert_true(k.end - t0 < 1000 * RLT_NSEC_PER_MSEC);
	/* The connection is usable afterwards. */
	assert_false(rlt_mysql_broken(k.c));
	select_one_ok(k.c);
	rlt_mysql_close(k.c);
	rlt_mysql_close(admin);
	rlt_event_free(k.started);
	return NULL;
}

static void test_kill_query(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(kill_query_task, &modes[m]);
}

/* ---- the server killed mid-query (last: the server is gone after) ---- */

struct doomed {
	rlt_mysql *c[2];
	int rc[2];
	rlt_event *started;
};

static void *doomed_task(void *arg)
{
	struct doomed *d = arg;
	rlt_event_set(d->started);
	rlt_mysql_result *r;
	d->rc[0] = rlt_mysql_query_all(d->c[0], "SELECT SLEEP(5)", (size_t)-1, &r);
	if (d->rc[0] == 0)
		rlt_mysql_result_free(r);
	return NULL;
}

static void *doomed_exec_task(void *arg)
{
	struct doomed *d = arg;
	rlt_mysql_result *r;
	d->rc[1] = rlt_mysql_query_all(d->c[1], "SELECT SLEEP(5)", (size_t)-1, &r);
	if (d->rc[1] == 0)
		rlt_mysql_result_free(r);
	return NULL;
}

static void *server_killed_task(void *arg)
{
	(void)arg;
	struct doomed d = {.started = rlt_event_new()};
	for (int m = 0; m < 2; m++) {
		rlt_mysql_config cfg = tms_cfg(m == 1);
		cfg.mode = modes[m];
		assert_int_equal(rlt_mysql_connect(&cfg, &d.c[m], NULL, 0), 0);
	}
	rlt_task *t[2] = {rlt_spawn(doomed_task, &d, NULL), rlt_spawn(doomed_exec_task, &d, NULL)};
	assert_int_equal(rlt_event_wait(d.started), 0);
	rlt_sleep(200 * RLT_NSEC_PER_MSEC);
	uint64_t t0 = rlt_now();
	kill(tms.pid, SIGKILL);
	for (int m = 0; m < 2; m++)
		assert_int_equal(rlt_join(t[m], NULL), 0);
	uint64_t dt = rlt_now() - t0;
	fprintf(stderr, "server killed: calls failed with %d / %d after %.2f ms\n", d.rc[0],
		d.rc[1], (double)dt / 1e6);
	for (int m = 0; m < 2; m++) {
		assert_int_equal(d.rc[m], -ECONNRESET);
		assert_int_equal(rlt_mysql_errno(d.c[m]), 2013); /* CR_SERVER_LOST */
		assert_true(rlt_mysql_broken(d.c[m]));
		assert_int_equal(rlt_mysql_ping(d.c[m]), -ENOTCONN);
		rlt_mysql_close(d.c[m]);
	}
	assert_true(dt < 2 * RLT_NSEC_PER_SEC);
	/* Once the process is gone (its listening socket with it: before
	 * that, a connect may still be queued and then reset), connecting
	 * fails at once. */
	waitpid(tms.pid, NULL, 0);
	tms.pid = 0;
	rlt_mysql_config cfg = tms_cfg(false);
	rlt_mysql *c = (void *)1;
	assert_int_equal(rlt_mysql_connect(&cfg, &c, NULL, 0), -ECONNREFUSED);
	rlt_event_free(d.started);
	return NULL;
}

static void test_server_killed(void **state)
{
	(void)state;
	TMS_REQUIRE();
	rlt_test_run(server_killed_task, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deadline),	  cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_read_timeout),  cmocka_unit_test(test_kill_query),
	    cmocka_unit_test(test_server_killed),
	};
	return cmocka_run_group_tests(tests, tms_group_setup, tms_group_teardown);
}
