/*
 * The Redis client under the "fault" loop policy (injected errors, short
 * reads and writes) against a real redis-server: with retryable errors
 * (EINTR, EAGAIN) and short transfers every command still gets its own
 * reply; with connection errors (ECONNRESET, EIO) commands fail with a
 * negative errno, nothing hangs, and no task ever gets another's reply.
 */
#include "tests/test_redis_server.h"

#include <ringlet/redis.h>

#include <stdatomic.h>

static redis_srv srv;

enum { TASKS = 16, PER_TASK = 100 };

typedef struct gen {
	rlt_redis *c;
	atomic_int ok, failed, wrong;
} gen;

typedef struct user {
	gen *g;
	int id;
} user;

static void *echo_task(void *arg)
{
	user *u = arg;
	/* a long payload: a short write or read cuts it somewhere */
	char payload[300];
	for (int i = 0; i < PER_TASK; i++) {
		int n = snprintf(payload, sizeof(payload), "task %d echo %d ", u->id, i);
		memset(payload + n, 'a' + u->id % 26, sizeof(payload) - (size_t)n);
		rlt_redis_reply *r = NULL;
		int rc = rlt_redis_command(u->g->c, &r, "ECHO %b", payload, sizeof(payload));
		if (rc < 0) {
			atomic_fetch_add(&u->g->failed, 1);
			return NULL; /* the connection is broken: its generation ends */
		}
		if (r->type == RLT_REDIS_REPLY_STRING && r->len == sizeof(payload) &&
		    memcmp(r->str, payload, sizeof(payload)) == 0)
			atomic_fetch_add(&u->g->ok, 1);
		else
			atomic_fetch_add(&u->g->wrong, 1);
		rlt_redis_reply_free(r);
	}
	return NULL;
}

typedef struct outcome {
	int ok, failed, wrong, gens;
} outcome;

static void *t_faults(void *arg)
{
	outcome *o = arg;
	while (o->gens < 40 && o->ok < 2 * TASKS * PER_TASK) {
		gen g = {0};
		for (int tries = 0; !g.c && tries < 100; tries++)
			g.c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
		assert_non_null(g.c);
		o->gens++;
		user u[TASKS];
		rlt_task *t[TASKS];
		for (int i = 0; i < TASKS; i++) {
			u[i] = (user){.g = &g, .id = i};
			t[i] = rlt_test_spawn_on(echo_task, &u[i], (unsigned)i % 2);
		}
		for (int i = 0; i < TASKS; i++)
			rlt_join(t[i], NULL);
		rlt_redis_close(g.c);
		o->ok += g.ok;
		o->failed += g.failed;
		o->wrong += g.wrong;
	}
	return NULL;
}

/* The fault seed: REDIS_FAULT_SEED=n runs the tests with another one. */
static const char *faults(char *buf, size_t len, int seed, const char *rest)
{
	const char *env = getenv("REDIS_FAULT_SEED");
	snprintf(buf, len, "seed=%d,%s", env ? atoi(env) : seed, rest);
	return buf;
}

static void test_redis_short_transfers_and_retryable_errors_change_nothing(void **state)
{
	REDIS_REQUIRE();
	outcome o = {0};
	char spec[128];
	rlt_test_run_faults(faults(spec, sizeof(spec), 3, "rate=0.2,errors=EINTR+EAGAIN"), t_faults,
			    &o);
	assert_int_equal(o.wrong, 0);
	assert_int_equal(o.failed, 0);
	assert_int_equal(o.ok, 2 * TASKS * PER_TASK);
}

static void test_redis_connection_errors_fail_commands_never_mismatch(void **state)
{
	REDIS_REQUIRE();
	outcome o = {0};
	char spec[128];
	rlt_test_run_faults(faults(spec, sizeof(spec), 11, "rate=0.02,errors=ECONNRESET+EIO+EINTR"),
			    t_faults, &o);
	assert_int_equal(o.wrong, 0);
	assert_true(o.ok > 0);
	assert_true(o.failed > 0); /* the faults did hit */
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
	    cmocka_unit_test(test_redis_short_transfers_and_retryable_errors_change_nothing),
	    cmocka_unit_test(test_redis_connection_errors_fail_commands_never_mismatch),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
