/*
 * The pool and failures against a real redis-server: exhaustion with
 * acquire timeouts and FIFO waiters; broken connections dropped; the health
 * check PING after idling; the server killed mid-pipeline (every waiter
 * fails within a second) and restarted (the pool recovers, with backoff);
 * a reply over the size limit fails cleanly.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/test_redis_server.h"

#include <ringlet/redis.h>

#include <stdatomic.h>

static redis_srv srv;

static rlt_redis_pool_opts pool_opts(unsigned min, unsigned max)
{
	return (rlt_redis_pool_opts){
	    .conn = {.address = srv.addr}, .min_size = min, .max_size = max};
}

/* ---- exhaustion, timeouts, FIFO ---- */

typedef struct waiter {
	rlt_redis_pool *p;
	int order; /* when it got its connection */
	int *clock;
} waiter;

static void *wait_task(void *arg)
{
	waiter *w = arg;
	rlt_redis *c = rlt_redis_pool_acquire(w->p, 5 * (int64_t)RLT_NSEC_PER_SEC);
	if (!c)
		return rlt_fail(-errno);
	w->order = ++*w->clock;
	rlt_redis_pool_release(w->p, c);
	return NULL;
}

/* Until t waits on the pool's semaphore (at most 10 s). */
static void wait_for_sem(rlt_task *t)
{
	char what[32] = "";
	for (int i = 0; i < 10000; i++) {
		if (rlt_task_state(t, what, sizeof(what)) == RLT_TASK_WAITING &&
		    strcmp(what, "semaphore") == 0)
			return;
		rlt_sleep(RLT_NSEC_PER_MSEC);
	}
	fail_msg("the waiter never queued (state: %s)", what);
}

static void *t_exhaust(void *arg)
{
	rlt_redis_pool_opts o = pool_opts(1, 2);
	rlt_redis_pool *p = rlt_redis_pool_new(&o);
	assert_non_null(p);
	assert_int_equal(rlt_redis_pool_size(p), 1);
	assert_int_equal(rlt_redis_pool_idle(p), 1);
	rlt_redis *a = rlt_redis_pool_acquire(p, -1);
	rlt_redis *b = rlt_redis_pool_acquire(p, -1); /* made lazily */
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(rlt_redis_pool_size(p), 2);
	uint64_t t0 = rlt_now();
	assert_null(rlt_redis_pool_acquire(p, 100 * RLT_NSEC_PER_MSEC));
	assert_int_equal(errno, ETIMEDOUT);
	uint64_t ms = (rlt_now() - t0) / RLT_NSEC_PER_MSEC;
	assert_true(ms >= 95 && ms < 2000);
	assert_int_equal(rlt_redis_pool_size(p), 2); /* never above max */
	/* FIFO: waiters are served in the order they came */
	enum { W = 4 };
	int clock = 0;
	waiter w[W];
	rlt_task *t[W];
	for (int i = 0; i < W; i++) {
		w[i] = (waiter){.p = p, .clock = &clock};
		t[i] = rlt_spawn(wait_task, &w[i], NULL);
		wait_for_sem(t[i]); /* each one queued before the next */
	}
	rlt_redis_pool_release(p, a);
	for (int i = 0; i < W; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(w[i].order, i + 1);
	}
	assert_int_equal(rlt_redis_pool_free(p), -EBUSY); /* b is out */
	rlt_redis_pool_release(p, b);
	assert_int_equal(rlt_redis_pool_size(p), 2);
	assert_int_equal(rlt_redis_pool_free(p), 0);
	return NULL;
}

static void test_redis_pool_exhaustion_timeouts_and_fifo_waiters(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_exhaust, NULL);
}

/* ---- many tasks on two workers through a small pool ---- */

typedef struct user {
	rlt_redis_pool *p;
	int id;
	int ok;
	atomic_int *out; /* connections out at once, never above max */
	int max_seen;
} user;

static void *user_task(void *arg)
{
	user *u = arg;
	for (int i = 0; i < RLT_TEST_SCALE(50); i++) {
		rlt_redis *c = rlt_redis_pool_acquire(u->p, 10 * (int64_t)RLT_NSEC_PER_SEC);
		if (!c)
			return rlt_fail(-errno);
		int now = atomic_fetch_add(u->out, 1) + 1;
		if (now > u->max_seen)
			u->max_seen = now;
		rlt_redis_reply *r = NULL;
		if (rlt_redis_command(c, &r, "INCR pool:users:%d", u->id) == 0) {
			u->ok += r->type == RLT_REDIS_REPLY_INTEGER && r->integer == i + 1;
			rlt_redis_reply_free(r);
		}
		atomic_fetch_sub(u->out, 1);
		rlt_redis_pool_release(u->p, c);
	}
	return NULL;
}

static void *t_users(void *arg)
{
	rlt_redis_pool_opts o = pool_opts(0, 3);
	rlt_redis_pool *p = rlt_redis_pool_new(&o);
	assert_non_null(p);
	enum { N = 20 };
	static user u[N];
	atomic_int out = 0;
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		u[i] = (user){.p = p, .id = i, .out = &out};
		t[i] = rlt_test_spawn_on(user_task, &u[i], (unsigned)i % 2);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(u[i].ok, RLT_TEST_SCALE(50));
		assert_true(u[i].max_seen <= 3);
	}
	assert_true(rlt_redis_pool_size(p) <= 3);
	assert_int_equal(rlt_redis_pool_free(p), 0);
	return NULL;
}

static void test_redis_pool_shared_by_tasks_on_two_workers(void **state)
{
	REDIS_REQUIRE();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(t_users, NULL, &cfg, NULL), 0);
}

/* ---- broken connections, health check ---- */

static long long ping_calls(rlt_redis *c)
{
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "INFO commandstats"), 0);
	const char *s = strstr(r->str, "cmdstat_ping:calls=");
	long long n = s ? atoll(s + strlen("cmdstat_ping:calls=")) : 0;
	rlt_redis_reply_free(r);
	return n;
}

/* Long enough that no step of the test takes it by accident (TSan, a
 * loaded machine). */
#define HEALTH_MS 200

static void *t_health(void *arg)
{
	rlt_redis *admin = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(admin);
	rlt_redis_pool_opts o = pool_opts(0, 3);
	o.conn.client_name = "pooled";
	o.health_check_idle_ns = HEALTH_MS * RLT_NSEC_PER_MSEC;
	rlt_redis_pool *p = rlt_redis_pool_new(&o);
	assert_non_null(p);
	assert_int_equal(rlt_redis_pool_size(p), 0);
	rlt_redis *c = rlt_redis_pool_acquire(p, -1);
	assert_non_null(c);
	long long pings = ping_calls(admin);
	rlt_redis_pool_release(p, c);
	/* reused at once: no PING */
	rlt_redis *c2 = rlt_redis_pool_acquire(p, -1);
	assert_ptr_equal(c2, c);
	assert_true(ping_calls(admin) == pings);
	rlt_redis_pool_release(p, c2);
	/* idle longer than the setting: PINGed before it is handed out */
	rlt_sleep(2 * HEALTH_MS * RLT_NSEC_PER_MSEC);
	c2 = rlt_redis_pool_acquire(p, -1);
	assert_ptr_equal(c2, c);
	assert_true(ping_calls(admin) == pings + 1);
	rlt_redis_pool_release(p, c2);
	/* the PING cut short by the caller's deadline: the connection is not
	 * to blame and stays in the pool */
	rlt_sleep(2 * HEALTH_MS * RLT_NSEC_PER_MSEC);
	rlt_redis_reply *pr = NULL;
	assert_int_equal(rlt_redis_command(admin, &pr, "CLIENT PAUSE 300 ALL"), 0);
	rlt_redis_reply_free(pr);
	assert_null(rlt_redis_pool_acquire(p, 50 * RLT_NSEC_PER_MSEC));
	assert_int_equal(errno, ETIMEDOUT);
	assert_int_equal(rlt_redis_pool_size(p), 1);
	assert_int_equal(rlt_redis_pool_idle(p), 1);
	c2 = rlt_redis_pool_acquire(
	    p, 5 * (int64_t)RLT_NSEC_PER_SEC); /* PINGs again: after the pause */
	assert_ptr_equal(c2, c);
	rlt_redis_pool_release(p, c2);
	/* the server drops the idle connection: the pool drops it too */
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(admin, &r, "CLIENT KILL TYPE normal SKIPME yes"), 0);
	rlt_redis_reply_free(r);
	/* the reader sees the close at once; wait for it boundedly */
	for (int i = 0; i < 200 && !rlt_redis_broken(c); i++)
		rlt_sleep(5 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_redis_broken(c), -ECONNRESET);
	c2 = rlt_redis_pool_acquire(p, -1);
	assert_non_null(c2);
	assert_int_equal(rlt_redis_broken(c2), 0);
	assert_int_equal(rlt_redis_command(c2, &r, "PING"), 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_pool_size(p), 1);
	rlt_redis_pool_release(p, c2);
	assert_int_equal(rlt_redis_pool_free(p), 0);
	rlt_redis_close(admin);
	return NULL;
}

static void test_redis_pool_drops_broken_and_pings_idle_connections(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_health, NULL);
}

/* ---- the server killed mid-pipeline, then restarted ---- */

typedef struct victim {
	rlt_redis *c;
	int rc;
	uint64_t done;
} victim;

static void *victim_task(void *arg)
{
	victim *v = arg;
	rlt_redis_reply *r = NULL;
	v->rc = rlt_redis_command(v->c, &r, "BLPOP kill:nolist 30");
	v->done = rlt_now();
	if (v->rc == 0)
		rlt_redis_reply_free(r);
	return NULL;
}

static void *restart_blocking(void *arg)
{
	return (void *)(intptr_t)redis_srv_spawn(arg);
}

static void *t_kill(void *arg)
{
	rlt_redis_pool_opts o = pool_opts(2, 4);
	/* PING every connection handed out: the idle one broke with the
	 * server too, and its reader may not have seen it yet */
	o.health_check_idle_ns = 1;
	o.backoff_min_ns = 5 * RLT_NSEC_PER_MSEC;
	o.backoff_max_ns = 50 * RLT_NSEC_PER_MSEC;
	rlt_redis_pool *p = rlt_redis_pool_new(&o);
	assert_non_null(p);
	rlt_redis *c = rlt_redis_pool_acquire(p, -1);
	assert_non_null(c);
	enum { N = 50 };
	static victim v[N];
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		v[i] = (victim){.c = c};
		t[i] = rlt_test_spawn_on(victim_task, &v[i], (unsigned)i % 2);
	}
	/* all of them written (the first BLPOP blocks the rest behind it),
	 * after the health check's PING */
	rlt_redis_stats st = {0};
	for (int i = 0; i < 10000 && st.commands < N + 1; i++) {
		rlt_sleep(RLT_NSEC_PER_MSEC);
		rlt_redis_stats_get(c, &st);
	}
	assert_true(st.commands == N + 1);
	uint64_t t0 = rlt_now();
	redis_srv_kill(&srv);
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_true(v[i].rc < 0);
		assert_true(v[i].done - t0 < RLT_NSEC_PER_SEC);
	}
	/* later commands fail at once with the same error */
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "PING"), rlt_redis_broken(c));
	assert_true(rlt_redis_broken(c) < 0);
	rlt_redis_pool_release(p, c); /* dropped */
	/* the server is down: acquire fails within its timeout with the
	 * connect error (the idle one is broken too, and dropped) */
	assert_null(rlt_redis_pool_acquire(p, 100 * RLT_NSEC_PER_MSEC));
	assert_int_equal(errno, ECONNREFUSED);
	/* restarted: the pool recovers */
	void *up = NULL;
	assert_int_equal(rlt_run_blocking(NULL, restart_blocking, &srv, &up), 0);
	assert_true(up != NULL);
	c = rlt_redis_pool_acquire(p, 5 * (int64_t)RLT_NSEC_PER_SEC);
	assert_non_null(c);
	assert_int_equal(rlt_redis_command(c, &r, "ECHO %s", "back"), 0);
	assert_string_equal(r->str, "back");
	rlt_redis_reply_free(r);
	rlt_redis_pool_release(p, c);
	assert_int_equal(rlt_redis_pool_free(p), 0);
	return NULL;
}

static void test_redis_server_killed_mid_pipeline_then_restarted(void **state)
{
	REDIS_REQUIRE();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(t_kill, NULL, &cfg, NULL), 0);
}

/* The server was killed, then restarted from a worker thread: own it from
 * this thread again. A teardown, so that it also runs when the scenario
 * ended early (a failure, or a fault under the fault matrix) with the
 * server down: the tests after it need it. */
static int restart_server(void **state)
{
	(void)state;
	if (!srv.dir[0])
		return 0; /* not started: the tests skip */
	redis_srv_kill(&srv);
	return redis_srv_spawn(&srv) ? 0 : -1;
}

/* ---- reply size limit ---- */

typedef struct bystander {
	rlt_redis *c;
	int rc;
} bystander;

static void *bystander_task(void *arg)
{
	bystander *b = arg;
	rlt_redis_reply *r = NULL;
	b->rc = rlt_redis_command(b->c, &r, "ECHO %s", "small");
	if (b->rc == 0)
		rlt_redis_reply_free(r);
	return NULL;
}

static void *t_limit(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr, .max_reply = 1000});
	assert_non_null(c);
	rlt_redis_reply *r = NULL;
	char big[4000];
	memset(big, 'x', sizeof(big));
	assert_int_equal(rlt_redis_command(c, &r, "SET %s %b", "limit:big", big, sizeof(big)), 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(c, &r, "SET %s %b", "limit:ok", big, (size_t)900), 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(c, &r, "GET limit:ok"), 0); /* under the limit */
	assert_int_equal(r->len, 900);
	rlt_redis_reply_free(r);
	/* an array whose elements are each small but together too big */
	rlt_redis_pipeline *p = rlt_redis_pipeline_new();
	for (int i = 0; i < 100; i++)
		rlt_redis_pipeline_append(p, "RPUSH limit:list %s", "0123456789abcdef");
	rlt_redis_reply *rs[100];
	assert_int_equal(rlt_redis_pipeline_exec(c, p, rs), 100);
	for (int i = 0; i < 100; i++)
		rlt_redis_reply_free(rs[i]);
	rlt_redis_pipeline_free(p);
	/* a big bulk string: this command fails, the one behind it too */
	bystander b = {.c = c};
	rlt_redis_pipeline *p2 = rlt_redis_pipeline_new();
	rlt_redis_pipeline_append(p2, "GET limit:big");
	rlt_task *t = rlt_spawn(bystander_task, &b, NULL);
	assert_int_equal(rlt_redis_command(c, &r, "GET limit:big"), -EMSGSIZE);
	rlt_join(t, NULL);
	assert_true(b.rc == -ECONNABORTED || b.rc == -EMSGSIZE);
	assert_int_equal(rlt_redis_broken(c), -ECONNABORTED);
	rlt_redis_pipeline_free(p2);
	rlt_redis_close(c);
	/* a fresh connection and the too-big array */
	c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr, .max_reply = 1000});
	assert_non_null(c);
	assert_int_equal(rlt_redis_command(c, &r, "LRANGE limit:list 0 -1"), -EMSGSIZE);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_reply_over_the_limit_fails_cleanly(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_limit, NULL);
}

static int setup(void **state)
{
	return redis_srv_group_setup(&srv);
}

static int teardown(void **state)
{
	return redis_srv_group_teardown(&srv);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_pool_exhaustion_timeouts_and_fifo_waiters),
	    cmocka_unit_test(test_redis_pool_shared_by_tasks_on_two_workers),
	    cmocka_unit_test(test_redis_pool_drops_broken_and_pings_idle_connections),
	    cmocka_unit_test_teardown(test_redis_server_killed_mid_pipeline_then_restarted,
				      restart_server),
	    cmocka_unit_test(test_redis_reply_over_the_limit_fails_cleanly),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
