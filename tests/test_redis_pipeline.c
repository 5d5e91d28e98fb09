/*
 * Pipelines and automatic pipelining against a real redis-server: a
 * pipeline of 10,000 commands; 200 tasks on two workers sharing one
 * connection, each checking it gets its own replies; cancellation and
 * deadlines in the middle of a pipeline, after which every later command
 * still gets its own reply.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/test_redis_server.h"

#include <ringlet/redis.h>

#include <stdatomic.h>

static redis_srv srv;

#define PIPE_N 10000

static void *t_pipeline_10k(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c);
	rlt_redis_pipeline *p = rlt_redis_pipeline_new();
	assert_non_null(p);
	for (int i = 0; i < PIPE_N; i++)
		assert_int_equal(rlt_redis_pipeline_append(p, "SET p:%d v%d", i, i * 7), 0);
	assert_int_equal(rlt_redis_pipeline_len(p), PIPE_N);
	rlt_redis_reply **rs = calloc(PIPE_N, sizeof(*rs));
	assert_int_equal(rlt_redis_pipeline_exec(c, p, rs), PIPE_N);
	for (int i = 0; i < PIPE_N; i++) {
		assert_int_equal(rs[i]->type, RLT_REDIS_REPLY_STATUS);
		rlt_redis_reply_free(rs[i]);
	}
	rlt_redis_pipeline_reset(p);
	assert_int_equal(rlt_redis_pipeline_len(p), 0);
	for (int i = 0; i < PIPE_N; i++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "p:%d", i);
		const char *argv[] = {"GET", key};
		size_t lens[] = {3, (size_t)n};
		assert_int_equal(rlt_redis_pipeline_append_argv(p, 2, argv, lens), 0);
	}
	assert_int_equal(rlt_redis_pipeline_exec(c, p, rs), PIPE_N);
	for (int i = 0; i < PIPE_N; i++) {
		char want[32];
		snprintf(want, sizeof(want), "v%d", i * 7);
		assert_int_equal(rs[i]->type, RLT_REDIS_REPLY_STRING);
		assert_string_equal(rs[i]->str, want);
		rlt_redis_reply_free(rs[i]);
	}
	free(rs);
	rlt_redis_pipeline_free(p);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_pipeline_of_10000_commands(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_pipeline_10k, NULL);
}

/* ---- 200 tasks, two workers, one connection ---- */

#define SHARERS 200
#define ROUNDS	RLT_TEST_SCALE(50)

typedef struct sharer {
	rlt_redis *c;
	int id;
	int ok;
} sharer;

static void *share_task(void *arg)
{
	sharer *s = arg;
	char key[32], val[64];
	snprintf(key, sizeof(key), "share:%d", s->id);
	for (int i = 0; i < ROUNDS; i++) {
		int n = snprintf(val, sizeof(val), "task %d round %d", s->id, i);
		rlt_redis_reply *r = NULL;
		if (rlt_redis_command(s->c, &r, "SET %s %b", key, val, (size_t)n) != 0)
			return NULL;
		bool good = r->type == RLT_REDIS_REPLY_STATUS;
		rlt_redis_reply_free(r);
		if (!good || rlt_redis_command(s->c, &r, "GET %s", key) != 0)
			return NULL;
		good = r->type == RLT_REDIS_REPLY_STRING && strcmp(r->str, val) == 0;
		rlt_redis_reply_free(r);
		if (!good || rlt_redis_command(s->c, &r, "INCR share:counter") != 0)
			return NULL;
		rlt_redis_reply_free(r);
		if (!good)
			return NULL;
		s->ok++;
	}
	return NULL;
}

static void *t_share(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c);
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "DEL share:counter"), 0);
	rlt_redis_reply_free(r);
	static sharer s[SHARERS];
	rlt_task *t[SHARERS];
	for (int i = 0; i < SHARERS; i++) {
		s[i] = (sharer){.c = c, .id = i};
		t[i] = rlt_test_spawn_on(share_task, &s[i], (unsigned)i % 2);
	}
	for (int i = 0; i < SHARERS; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(s[i].ok, ROUNDS);
	}
	assert_int_equal(rlt_redis_command(c, &r, "GET share:counter"), 0);
	assert_int_equal(atoi(r->str), SHARERS * ROUNDS);
	rlt_redis_reply_free(r);
	/* the commands of tasks issued together went out together */
	rlt_redis_stats st;
	assert_int_equal(rlt_redis_stats_get(c, &st), 0);
	assert_true(st.commands == (uint64_t)SHARERS * ROUNDS * 3 + 2);
	assert_true(st.replies == st.commands);
	print_message("200 tasks: %llu commands in %llu writes, %llu reads\n",
		      (unsigned long long)st.commands, (unsigned long long)st.writes,
		      (unsigned long long)st.reads);
	/* How much: about 90 commands per write under io_uring, where each
	 * sendmsg takes the writer a loop turn; about 2 under epoll, where a
	 * send completes at once and the writer is woken again by the next
	 * task of the other worker (docs/REDIS.md). */
	assert_true(st.writes < st.commands);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_200_tasks_on_two_workers_share_one_connection(void **state)
{
	REDIS_REQUIRE();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(t_share, NULL, &cfg, NULL), 0);
}

/* ---- a pipeline on a shared connection stays together ---- */

typedef struct meddler {
	rlt_redis *c;
	atomic_bool *stop;
	int n;
} meddler;

static void *meddle_task(void *arg)
{
	meddler *m = arg;
	while (!atomic_load(m->stop)) {
		rlt_redis_reply *r = NULL;
		if (rlt_redis_command(m->c, &r, "SET together 100") != 0)
			return NULL;
		rlt_redis_reply_free(r);
		m->n++;
	}
	return NULL;
}

static void *t_together(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c);
	atomic_bool stop = false;
	enum { M = 8 };
	meddler m[M];
	rlt_task *t[M];
	for (int i = 0; i < M; i++) {
		m[i] = (meddler){.c = c, .stop = &stop};
		t[i] = rlt_test_spawn_on(meddle_task, &m[i], (unsigned)i % 2);
	}
	rlt_redis_pipeline *p = rlt_redis_pipeline_new();
	rlt_redis_pipeline_append(p, "SET together 1");
	rlt_redis_pipeline_append(p, "INCR together");
	rlt_redis_pipeline_append(p, "INCR together");
	rlt_redis_pipeline_append(p, "GET together");
	for (int i = 0; i < RLT_TEST_SCALE(500); i++) {
		rlt_redis_reply *rs[4];
		assert_int_equal(rlt_redis_pipeline_exec(c, p, rs), 4);
		/* no meddler's SET between the pipeline's commands */
		assert_true(rs[2]->integer == 3);
		assert_string_equal(rs[3]->str, "3");
		for (int k = 0; k < 4; k++)
			rlt_redis_reply_free(rs[k]);
	}
	atomic_store(&stop, true);
	int total = 0;
	for (int i = 0; i < M; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		total += m[i].n;
	}
	assert_true(total > 0); /* they did run alongside */
	rlt_redis_pipeline_free(p);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_pipeline_on_a_shared_connection_stays_together(void **state)
{
	REDIS_REQUIRE();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(t_together, NULL, &cfg, NULL), 0);
}

/* ---- cancellation and deadlines mid-pipeline ---- */

typedef struct after {
	rlt_redis *c;
	int id;
	int ok;
} after;

/* A command queued behind the slow one: must get its own reply. */
static void *after_task(void *arg)
{
	after *a = arg;
	rlt_redis_reply *r = NULL;
	if (rlt_redis_command(a->c, &r, "ECHO after-%d", a->id) == 0) {
		char want[32];
		snprintf(want, sizeof(want), "after-%d", a->id);
		a->ok = r->type == RLT_REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
		rlt_redis_reply_free(r);
	}
	return NULL;
}

static void *slow_task(void *arg)
{
	rlt_redis *c = arg;
	rlt_redis_reply *r = NULL;
	/* BLPOP blocks the connection on the server for 1.5 s: every command
	 * queued after it waits in the pipeline behind it. */
	int rc = rlt_redis_command(c, &r, "BLPOP cancel:nolist 1.5");
	if (rc == 0)
		rlt_redis_reply_free(r);
	return (void *)(intptr_t)rc;
}

/* Until c has written n commands (at most 10 s). */
static void wait_written(rlt_redis *c, uint64_t n)
{
	rlt_redis_stats st = {0};
	for (int i = 0; i < 10000; i++) {
		rlt_redis_stats_get(c, &st);
		if (st.commands >= n)
			return;
		rlt_sleep(RLT_NSEC_PER_MSEC);
	}
	fail_msg("only %llu of %llu commands written", (unsigned long long)st.commands,
		 (unsigned long long)n);
}

static void *t_cancel(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c);
	enum { N = 20 };
	static after a[N];
	rlt_task *t[N];
	/* 1. rlt_cancel while in flight */
	rlt_task *slow = rlt_spawn(slow_task, c, NULL);
	wait_written(c, 1); /* what is cancelled must be in flight */
	for (int i = 0; i < N; i++) {
		a[i] = (after){.c = c, .id = i};
		t[i] = rlt_spawn(after_task, &a[i], NULL);
	}
	rlt_yield();
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(slow), 0);
	void *res;
	assert_int_equal(rlt_join(slow, &res), -ECANCELED);
	assert_int_equal((int)(intptr_t)res, -ECANCELED);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC); /* not the 1.5 s of the BLPOP */
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_true(a[i].ok);
	}
	rlt_redis_stats st;
	assert_int_equal(rlt_redis_stats_get(c, &st), 0);
	assert_true(st.discarded == 1); /* the BLPOP's nil, read and dropped */
	assert_true(st.dropped == 0);
	/* 2. a deadline scope expiring while in flight, then the same
	 * connection goes on in step */
	rlt_scope sc;
	rlt_scope_enter(&sc, 50 * RLT_NSEC_PER_MSEC);
	rlt_redis_reply *r = NULL;
	t0 = rlt_now();
	assert_int_equal(rlt_redis_command(c, &r, "BLPOP cancel:nolist 1.5"), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC);
	assert_int_equal(rlt_redis_command(c, &r, "ECHO %s", "in-step"), 0);
	assert_string_equal(r->str, "in-step");
	rlt_redis_reply_free(r);
	/* 3. a pipeline cut by a deadline in its middle */
	rlt_redis_pipeline *p = rlt_redis_pipeline_new();
	rlt_redis_pipeline_append(p, "SET %s %s", "cancel:a", "1");
	rlt_redis_pipeline_append(p, "BLPOP %s 0.3", "cancel:nolist");
	rlt_redis_pipeline_append(p, "SET %s %s", "cancel:b", "2");
	rlt_redis_reply *rs[3];
	rlt_scope_enter(&sc, 50 * RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_redis_pipeline_exec(c, p, rs), -ETIMEDOUT);
	rlt_scope_leave(&sc);
	assert_int_equal(rlt_redis_command(c, &r, "MGET cancel:a cancel:b"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ARRAY); /* in step: the MGET's own reply */
	assert_string_equal(r->element[0]->str, "1");
	assert_string_equal(r->element[1]->str, "2");
	rlt_redis_reply_free(r);
	/* 4. a command cancelled before it was written is never sent */
	rlt_task *slow2 = rlt_spawn(slow_task, c, NULL);
	rlt_cancel(slow2); /* cancelled before it first runs: never issues */
	assert_int_equal(rlt_join(slow2, NULL), -ECANCELED);
	assert_int_equal(rlt_redis_broken(c), 0);
	rlt_redis_pipeline_free(p);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_cancel_and_deadline_mid_pipeline_keep_the_stream_in_step(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_cancel, NULL);
}

/* Many tasks cancelled at random points of a busy shared connection: every
 * one that completes has its own reply. */
typedef struct churn {
	rlt_redis *c;
	int id;
	int bad;
} churn;

static void *churn_task(void *arg)
{
	churn *ch = arg;
	for (int i = 0;; i++) {
		rlt_redis_reply *r = NULL;
		int rc = rlt_redis_command(ch->c, &r, "ECHO c%d-%d", ch->id, i);
		if (rc == -ECANCELED)
			return NULL;
		if (rc != 0) {
			ch->bad++;
			return NULL;
		}
		char want[32];
		snprintf(want, sizeof(want), "c%d-%d", ch->id, i);
		if (strcmp(r->str, want) != 0)
			ch->bad++;
		rlt_redis_reply_free(r);
	}
}

static void *t_churn(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.uaddr});
	assert_non_null(c);
	enum { N = 64 };
	static churn ch[N];
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		ch[i] = (churn){.c = c, .id = i};
		t[i] = rlt_test_spawn_on(churn_task, &ch[i], (unsigned)i % 2);
	}
	for (int i = 0; i < N; i++) {
		rlt_sleep((uint64_t)(i % 5) * 100 * RLT_NSEC_PER_USEC);
		rlt_cancel(t[i]);
	}
	for (int i = 0; i < N; i++) {
		rlt_join(t[i], NULL);
		assert_int_equal(ch[i].bad, 0);
	}
	/* each cancellation left a request behind: dropped unsent, or its
	 * reply read and discarded (unless the reply won the race) */
	rlt_redis_stats st;
	assert_int_equal(rlt_redis_stats_get(c, &st), 0);
	assert_true(st.dropped + st.discarded >= 1 && st.dropped + st.discarded <= N);
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "ECHO last"), 0);
	assert_string_equal(r->str, "last");
	rlt_redis_reply_free(r);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_tasks_cancelled_at_random_never_get_another_reply(void **state)
{
	REDIS_REQUIRE();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(t_churn, NULL, &cfg, NULL), 0);
}

static int setup(void **state)
{
	if (redis_srv_installed())
		redis_srv_start(&srv, NULL);
	return 0;
}

static int teardown(void **state)
{
	if (srv.pid)
		redis_srv_stop(&srv);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_pipeline_of_10000_commands),
	    cmocka_unit_test(test_redis_200_tasks_on_two_workers_share_one_connection),
	    cmocka_unit_test(test_redis_pipeline_on_a_shared_connection_stays_together),
	    cmocka_unit_test(test_redis_cancel_and_deadline_mid_pipeline_keep_the_stream_in_step),
	    cmocka_unit_test(test_redis_tasks_cancelled_at_random_never_get_another_reply),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
