/*
 * What the client does with a server that does not speak RESP properly: a
 * fake server (a task on a loopback listener) answers each command with
 * canned bytes. Garbage, nesting deeper than hiredis takes, a reply nobody
 * asked for, a reply cut by a close, and an announced bulk string over the
 * size limit each fail the command with a clear negative errno and break
 * the connection; nothing hangs and nothing crashes.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"

#include <ringlet/redis.h>

typedef struct fake {
	int lfd;
	char addr[64];
	const char *answer; /* sent after the first command arrives */
	size_t len;
	bool close_after; /* close right after the answer */
	rlt_task *task;
} fake;

static void *fake_main(void *arg)
{
	fake *f = arg;
	int fd = rlt_net_accept(f->lfd, NULL, 0);
	if (fd < 0) {
		/* (Fault mode: an injected error.) Closing the listener resets
		 * the client's queued connection: its command fails instead of
		 * waiting for an answer nobody will send. */
		rlt_close(f->lfd);
		f->lfd = -1;
		return NULL;
	}
	char buf[4096];
	/* (Fault mode: a receive or send that fails closes at once, so that
	 * the client sees the end instead of waiting for the answer.) */
	bool ok = rlt_recv(fd, buf, sizeof(buf), 0) > 0 &&
		  rlt_send_all(fd, f->answer, f->len, 0) == (ssize_t)f->len;
	if (ok && !f->close_after)
		while (rlt_recv(fd, buf, sizeof(buf), 0) > 0) /* until the client closes */
			;
	rlt_close(fd);
	return NULL;
}

static void fake_start(fake *f, const char *answer, size_t len, bool close_after)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	f->lfd = rlt_net_listen(&a, 4, 0);
	assert_true(f->lfd >= 0);
	rlt_addr b;
	rlt_net_local(f->lfd, &b);
	rlt_addr_format(&b, f->addr, sizeof(f->addr));
	f->answer = answer;
	f->len = len;
	f->close_after = close_after;
	f->task = rlt_spawn(fake_main, f, NULL);
	assert_non_null(f->task);
}

static void fake_stop(fake *f)
{
	rlt_join(f->task, NULL);
	if (f->lfd >= 0)
		rlt_close(f->lfd);
}

/* One command against a fake answering `answer`: its result; the
 * connection's state after it in *broken. */
static int one(const char *answer, size_t len, bool close_after, size_t max_reply, int *broken)
{
	fake f;
	fake_start(&f, answer, len, close_after);
	rlt_redis *c =
	    rlt_redis_connect(&(rlt_redis_opts){.address = f.addr, .max_reply = max_reply});
	assert_non_null(c);
	rlt_redis_reply *r = NULL;
	int rc = rlt_redis_command(c, &r, "GET k");
	if (rc == 0)
		rlt_redis_reply_free(r);
	else
		assert_null(r);
	/* a second command fails at once with the connection's error */
	*broken = rlt_redis_broken(c);
	if (*broken) {
		assert_int_equal(rlt_redis_command(c, &r, "PING"), *broken);
		assert_null(r);
	}
	rlt_redis_close(c); /* the fake sees the close */
	fake_stop(&f);
	return rc;
}

static void *t_garbage(void *arg)
{
	int broken;
	assert_int_equal(one("!what\r\n", 7, false, 0, &broken), -EPROTO);
	assert_int_equal(broken, -EPROTO);
	/* an integer that is not one */
	assert_int_equal(one(":12x\r\n", 6, false, 0, &broken), -EPROTO);
	/* a bulk length that is not one */
	assert_int_equal(one("$-5\r\n", 5, false, 0, &broken), -EPROTO);
	return NULL;
}

static void test_redis_garbage_is_a_protocol_error(void **state)
{
	rlt_test_run(t_garbage, NULL);
}

static void *t_deep(void *arg)
{
	char deep[64] = "";
	for (int i = 0; i < 12; i++)
		strcat(deep, "*1\r\n");
	strcat(deep, ":1\r\n");
	int broken;
	assert_int_equal(one(deep, strlen(deep), false, 0, &broken), -EPROTO);
	return NULL;
}

static void test_redis_nesting_deeper_than_hiredis_takes_is_a_protocol_error(void **state)
{
	rlt_test_run(t_deep, NULL);
}

static void *t_unsolicited(void *arg)
{
	fake f;
	fake_start(&f, "+OK\r\n+EXTRA\r\n", 13, false);
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = f.addr});
	assert_non_null(c);
	/* the command gets its own reply... */
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "GET k"), 0);
	assert_string_equal(r->str, "OK");
	rlt_redis_reply_free(r);
	/* ...and the extra one, which answers nothing, breaks the connection
	 * (it came in the same read, or comes just after: wait boundedly) */
	for (int i = 0; i < 5000 && !rlt_redis_broken(c); i++)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	assert_int_equal(rlt_redis_broken(c), -EPROTO);
	assert_int_equal(rlt_redis_command(c, &r, "PING"), -EPROTO);
	rlt_redis_close(c);
	fake_stop(&f);
	return NULL;
}

static void test_redis_a_reply_nobody_asked_for_breaks_the_connection(void **state)
{
	rlt_test_run(t_unsolicited, NULL);
}

static void *t_cut(void *arg)
{
	int broken;
	uint64_t t0 = rlt_now();
	assert_int_equal(one("$10\r\nabc", 8, true, 0, &broken), -ECONNRESET);
	assert_int_equal(broken, -ECONNRESET);
	assert_true(rlt_now() - t0 < RLT_NSEC_PER_SEC);
	return NULL;
}

static void test_redis_reply_cut_by_a_close_fails_at_once(void **state)
{
	rlt_test_run(t_cut, NULL);
}

static void *t_huge(void *arg)
{
	/* a bulk string announced far over the limit, its first 4 KiB sent */
	static char big[4096 + 32];
	int n = snprintf(big, sizeof(big), "$100000000\r\n");
	memset(big + n, 'x', sizeof(big) - (size_t)n);
	int broken;
	assert_int_equal(one(big, sizeof(big), false, 1000, &broken), -EMSGSIZE);
	assert_int_equal(broken, -ECONNABORTED);
	return NULL;
}

static void test_redis_announced_bulk_over_the_limit_fails_before_it_arrives(void **state)
{
	rlt_test_run(t_huge, NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_garbage_is_a_protocol_error),
	    cmocka_unit_test(test_redis_nesting_deeper_than_hiredis_takes_is_a_protocol_error),
	    cmocka_unit_test(test_redis_a_reply_nobody_asked_for_breaks_the_connection),
	    cmocka_unit_test(test_redis_reply_cut_by_a_close_fails_at_once),
	    cmocka_unit_test(test_redis_announced_bulk_over_the_limit_fails_before_it_arrives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
