/* The HTTP client's connection pool, counted on a scripted server
 * (tests/http_client_srv.h): keep-alive reuse, the per-host and total
 * limits (requests wait for a connection; open connections stay within
 * the total, idle ones closed to make room), idle connections closed after
 * the idle timeout, no reuse when asked, a client freed while a reply is
 * alive, and one client shared by tasks on both workers. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/http_client_srv.h"

#include <ringlet/http_client.h>

static void get_ok(rlt_http_client *c, const char *url, const char *want)
{
	char body[256];
	int rc = fetch_text(c, url, body, sizeof(body));
	if (rc != 200)
		fail_msg("%s: %d", url, rc);
	assert_string_equal(body, want);
}

static void *root_reuse(void *arg)
{
	srv s;
	srv_start(&s);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128];
	srv_url(&s, "/hello", url, sizeof(url));
	for (int i = 0; i < 20; i++)
		get_ok(c, url, "hello");
	assert_int_equal(atomic_load(&s.accepted), 1);
	assert_int_equal(atomic_load(&s.requests), 20);
	assert_int_equal(rlt_http_client_open(c), 1);
	assert_int_equal(rlt_http_client_idle(c), 1);

	/* A reply still alive: the client cannot go. */
	rlt_http_reply *r;
	char url_wait[128]; /* head and body in one send */
	assert_int_equal(
	    rlt_http_fetch_url(c, srv_url(&s, "/wait", url_wait, sizeof(url_wait)), &r), 0);
	assert_int_equal(rlt_http_client_idle(c), 0);
	assert_int_equal(rlt_http_client_free(c), -EBUSY);
	/* Freed unread, but whole in the buffer: still reused. */
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_idle(c), 1);
	get_ok(c, url, "hello");
	assert_int_equal(atomic_load(&s.accepted), 1);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* No reuse asked (idle_timeout_ns < 0): a connection per request. */
	c = rlt_http_client_new(&(rlt_http_client_opts){.idle_timeout_ns = -1});
	assert_non_null(c);
	for (int i = 0; i < 5; i++)
		get_ok(c, url, "hello");
	assert_int_equal(atomic_load(&s.accepted), 6);
	assert_int_equal(rlt_http_client_open(c), 0);
	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_reuses_keep_alive_connections(void **state)
{
	rlt_test_run(root_reuse, NULL);
}

typedef struct load {
	rlt_http_client *c;
	const char *url;
	int n;
	atomic_int ok;
} load;

static void *getter(void *arg)
{
	load *l = arg;
	for (int i = 0; i < l->n; i++) {
		char body[16];
		if (fetch_text(l->c, l->url, body, sizeof(body)) == 200 && !strcmp(body, "ok"))
			atomic_fetch_add(&l->ok, 1);
	}
	return NULL;
}

/* tasks tasks doing n GETs each of url, all at once; returns how many
 * succeeded. */
static int run_load(rlt_http_client *c, const char *url, int tasks, int n)
{
	load l = {.c = c, .url = url, .n = n};
	rlt_task *t[64];
	for (int i = 0; i < tasks; i++)
		t[i] = rlt_test_spawn_on(getter, &l, (unsigned)i);
	for (int i = 0; i < tasks; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	return atomic_load(&l.ok);
}

static void *root_limits(void *arg)
{
	srv s;
	srv_start(&s);
	char url[128];
	srv_url(&s, "/wait", url, sizeof(url));

	/* Per host: 10 tasks, 2 connections; the rest wait their turn. */
	rlt_http_client *c = rlt_http_client_new(&(rlt_http_client_opts){.max_per_host = 2});
	assert_non_null(c);
	assert_int_equal(run_load(c, url, 10, 3), 30);
	assert_true(atomic_load(&s.max_busy) <= 2);
	assert_true(atomic_load(&s.accepted) <= 2);
	assert_true(rlt_http_client_open(c) <= 2);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* In total. */
	atomic_store(&s.max_busy, 0);
	int before = atomic_load(&s.accepted);
	c = rlt_http_client_new(&(rlt_http_client_opts){.max_total = 3});
	assert_non_null(c);
	assert_int_equal(run_load(c, url, 10, 3), 30);
	assert_true(atomic_load(&s.max_busy) <= 3);
	assert_true(atomic_load(&s.max_busy) >= 2); /* they did overlap */
	assert_true(atomic_load(&s.accepted) - before <= 3);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* Open connections within the total: a second host's request closes
	 * the first host's idle connection. */
	srv s2;
	srv_start(&s2);
	char url2[128];
	c = rlt_http_client_new(&(rlt_http_client_opts){.max_total = 1});
	assert_non_null(c);
	/* The connections of the clients freed above end first. */
	for (int i = 0; i < 3000 && atomic_load(&s.closed) < atomic_load(&s.accepted); i++)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	int closed = atomic_load(&s.closed);
	assert_int_equal(closed, atomic_load(&s.accepted));
	get_ok(c, srv_url(&s, "/hello", url, sizeof(url)), "hello");
	get_ok(c, srv_url(&s2, "/hello", url2, sizeof(url2)), "hello");
	assert_int_equal(rlt_http_client_open(c), 1);
	/* The server sees the end of the first connection. */
	for (int i = 0; i < 3000 && atomic_load(&s.closed) == closed; i++)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	assert_int_equal(atomic_load(&s.closed), closed + 1);
	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s2);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_limits_connections_per_host_and_in_total(void **state)
{
	rlt_test_run(root_limits, NULL);
}

static void *root_idle(void *arg)
{
	srv s;
	srv_start(&s);
	char url[128];
	const uint64_t timeout = 100 * RLT_NSEC_PER_MSEC;
	rlt_http_client *c =
	    rlt_http_client_new(&(rlt_http_client_opts){.idle_timeout_ns = (int64_t)timeout});
	assert_non_null(c);
	get_ok(c, srv_url(&s, "/hello", url, sizeof(url)), "hello");
	uint64_t idle_at = rlt_now();
	assert_int_equal(rlt_http_client_idle(c), 1);
	/* Wait (bounded) for the server to see the client close it. */
	for (int i = 0; i < 3000 && atomic_load(&s.closed) == 0; i++)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	uint64_t took = rlt_now() - idle_at;
	assert_int_equal(atomic_load(&s.closed), 1);
	assert_true(took >= timeout);
	assert_true(took < 20 * timeout);
	assert_int_equal(rlt_http_client_open(c), 0);
	assert_int_equal(rlt_http_client_idle(c), 0);
	/* The next request connects again. */
	get_ok(c, url, "hello");
	assert_int_equal(atomic_load(&s.accepted), 2);
	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_closes_idle_connections_after_the_timeout(void **state)
{
	rlt_test_run(root_idle, NULL);
}

static void *root_workers(void *arg)
{
	srv s;
	srv_start(&s);
	char url[128];
	srv_url(&s, "/wait", url, sizeof(url));
	rlt_http_client *c = rlt_http_client_new(&(rlt_http_client_opts){.max_total = 4});
	assert_non_null(c);
	/* Tasks pinned alternately on worker 0 and 1 share one pool. */
	const int tasks = 8, n = RLT_TEST_SCALE(20) > 5 ? 20 : 5;
	assert_int_equal(run_load(c, url, tasks, n), tasks * n);
	assert_true(atomic_load(&s.accepted) <= 4);
	assert_int_equal(atomic_load(&s.requests), tasks * n);
	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_pool_is_shared_by_tasks_on_both_workers(void **state)
{
	void *res;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_workers, NULL, &cfg, &res), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_client_reuses_keep_alive_connections),
	    cmocka_unit_test(test_http_client_limits_connections_per_host_and_in_total),
	    cmocka_unit_test(test_http_client_closes_idle_connections_after_the_timeout),
	    cmocka_unit_test(test_http_client_pool_is_shared_by_tasks_on_both_workers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
