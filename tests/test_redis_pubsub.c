/*
 * Pub/Sub against a real redis-server: SUBSCRIBE and PSUBSCRIBE on a
 * dedicated connection, messages (binary-safe) delivered in the order they
 * were published, UNSUBSCRIBE stops them, a dead server ends the stream
 * with an error.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/test_redis_server.h"

#include <ringlet/redis.h>

static redis_srv srv;

#define MSGS RLT_TEST_SCALE(2000)

static void *t_order(void *arg)
{
	rlt_redis_pubsub *ps = rlt_redis_pubsub_open(&(rlt_redis_opts){.address = srv.addr}, 64);
	assert_non_null(ps);
	const char *chans[] = {"news", "sport"};
	assert_int_equal(rlt_redis_subscribe(ps, chans, 2), 0);
	const char *pats[] = {"wx.*"};
	assert_int_equal(rlt_redis_psubscribe(ps, pats, 1), 0);
	rlt_redis *pub = rlt_redis_connect(&(rlt_redis_opts){.address = srv.uaddr});
	assert_non_null(pub);
	/* published from another task while we read: more than the backlog of
	 * 64, so the reader waits on a full channel and resumes in order */
	rlt_redis_pipeline *p = rlt_redis_pipeline_new();
	const char *dest[] = {"news", "sport", "wx.paris"};
	for (int i = 0; i < MSGS; i++)
		rlt_redis_pipeline_append(p, "PUBLISH %s m%d", dest[i % 3], i);
	rlt_redis_reply **rs = calloc(MSGS, sizeof(*rs));
	assert_int_equal(rlt_redis_pipeline_exec(pub, p, rs), MSGS);
	for (int i = 0; i < MSGS; i++) {
		assert_int_equal(rs[i]->type, RLT_REDIS_REPLY_INTEGER);
		assert_true(rs[i]->integer == 1); /* one subscriber got it */
		rlt_redis_reply_free(rs[i]);
	}
	free(rs);
	for (int i = 0; i < MSGS; i++) {
		rlt_redis_msg *m = NULL;
		assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), 0);
		char want[32];
		snprintf(want, sizeof(want), "m%d", i);
		assert_string_equal(m->payload, want);
		assert_string_equal(m->channel, dest[i % 3]);
		if (i % 3 == 2) {
			assert_int_equal(m->kind, RLT_REDIS_MSG_PMESSAGE);
			assert_string_equal(m->pattern, "wx.*");
		} else {
			assert_int_equal(m->kind, RLT_REDIS_MSG_MESSAGE);
			assert_null(m->pattern);
		}
		rlt_redis_msg_free(m);
	}
	/* binary payload */
	const char bin[] = {'a', 0, 'b'};
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(pub, &r, "PUBLISH news %b", bin, sizeof(bin)), 0);
	rlt_redis_reply_free(r);
	rlt_redis_msg *m = NULL;
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), 0);
	assert_int_equal(m->payload_len, 3);
	assert_memory_equal(m->payload, bin, 3);
	rlt_redis_msg_free(m);
	/* nothing more: next times out */
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 20 * RLT_NSEC_PER_MSEC), -ETIMEDOUT);
	/* unsubscribed: no more from news */
	const char *news[] = {"news"};
	assert_int_equal(rlt_redis_unsubscribe(ps, news, 1), 0);
	assert_int_equal(rlt_redis_punsubscribe(ps, pats, 1), 0);
	assert_int_equal(rlt_redis_command(pub, &r, "PUBLISH news x"), 0);
	assert_true(r->integer == 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(pub, &r, "PUBLISH sport last"), 0);
	assert_true(r->integer == 1);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), 0);
	assert_string_equal(m->payload, "last");
	rlt_redis_msg_free(m);
	/* messages left unread are freed by close, also with the channel full
	 * (backlog 64) and the reader waiting on it */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(rlt_redis_command(pub, &r, "PUBLISH sport unread%d", i), 0);
		rlt_redis_reply_free(r);
	}
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), 0);
	rlt_redis_msg_free(m);
	rlt_redis_pipeline_free(p);
	rlt_redis_close(pub);
	assert_int_equal(rlt_redis_pubsub_close(ps), 0);
	return NULL;
}

static void test_redis_pubsub_delivers_in_publish_order(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_order, NULL);
}

static void *t_dead(void *arg)
{
	rlt_redis_pubsub *ps = rlt_redis_pubsub_open(&(rlt_redis_opts){.address = srv.uaddr}, 0);
	assert_non_null(ps);
	const char *chans[] = {"c"};
	assert_int_equal(rlt_redis_subscribe(ps, chans, 1), 0);
	rlt_redis *admin = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(admin, &r, "PUBLISH c before"), 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(admin, &r, "CLIENT KILL TYPE pubsub"), 0);
	rlt_redis_reply_free(r);
	rlt_redis_msg *m = NULL;
	/* what came before the close is delivered, then the error */
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), 0);
	assert_string_equal(m->payload, "before");
	rlt_redis_msg_free(m);
	assert_int_equal(rlt_redis_pubsub_next(ps, &m, 5 * (int64_t)RLT_NSEC_PER_SEC), -ECONNRESET);
	assert_int_equal(rlt_redis_subscribe(ps, chans, 1), -ECONNRESET);
	rlt_redis_close(admin);
	assert_int_equal(rlt_redis_pubsub_close(ps), 0);
	return NULL;
}

static void test_redis_pubsub_ends_with_the_connection_error(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_dead, NULL);
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
	    cmocka_unit_test(test_redis_pubsub_delivers_in_publish_order),
	    cmocka_unit_test(test_redis_pubsub_ends_with_the_connection_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
