/*
 * Redis connections against a real redis-server: TCP and Unix, AUTH
 * (password, ACL user), SELECT, CLIENT SETNAME, connect and handshake
 * timeouts, every reply type, binary-safe arguments, error replies as
 * replies.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/test_redis_server.h"

#include <ringlet/redis.h>

static redis_srv srv;	   /* plain */
static redis_srv srv_auth; /* requirepass + an ACL user */

static void *expect_str(rlt_redis *c, const char *want, const char *fmt, const char *arg)
{
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, fmt, arg), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_STRING);
	assert_string_equal(r->str, want);
	rlt_redis_reply_free(r);
	return NULL;
}

static void *t_tcp_and_unix(void *arg)
{
	char byname[64];
	snprintf(byname, sizeof(byname), "localhost:%d", srv.port); /* resolved */
	const char *addrs[] = {srv.addr, srv.uaddr, byname};
	for (int i = 0; i < 3; i++) {
		rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = addrs[i]});
		assert_non_null(c);
		rlt_redis_reply *r = NULL;
		assert_int_equal(rlt_redis_command(c, &r, "PING"), 0);
		assert_int_equal(r->type, RLT_REDIS_REPLY_STATUS);
		assert_string_equal(r->str, "PONG");
		rlt_redis_reply_free(r);
		assert_int_equal(rlt_redis_broken(c), 0);
		assert_int_equal(rlt_redis_close(c), 0);
	}
	return NULL;
}

static void test_redis_connects_over_tcp_and_unix(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_tcp_and_unix, NULL);
}

static void *t_reply_types(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c);
	rlt_redis_reply *r = NULL;
	/* status */
	assert_int_equal(rlt_redis_command(c, &r, "SET %s %s", "rt:k", "hello"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_STATUS);
	assert_string_equal(r->str, "OK");
	rlt_redis_reply_free(r);
	/* bulk string */
	expect_str(c, "hello", "GET %s", "rt:k");
	/* nil */
	assert_int_equal(rlt_redis_command(c, &r, "GET %s", "rt:missing"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_NIL);
	rlt_redis_reply_free(r);
	/* integer, negative too */
	assert_int_equal(rlt_redis_command(c, &r, "INCRBY %s %d", "rt:n", -42), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_INTEGER);
	assert_true(r->integer == -42);
	rlt_redis_reply_free(r);
	/* an error reply is a reply, not a failure; the connection goes on */
	assert_int_equal(rlt_redis_command(c, &r, "INCR %s", "rt:k"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ERROR);
	assert_non_null(strstr(r->str, "not an integer"));
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(c, &r, "NOSUCHCOMMAND"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ERROR);
	assert_memory_equal(r->str, "ERR", 3);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_broken(c), 0);
	/* arrays, nested, with every element type inside */
	assert_int_equal(rlt_redis_command(c, &r, "EVAL %s 0",
					   "return {1, 'two', {3, {'four'}}, false, "
					   "redis.status_reply('ST'), redis.error_reply('E1')}"),
			 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 6);
	assert_int_equal(r->element[0]->type, RLT_REDIS_REPLY_INTEGER);
	assert_true(r->element[0]->integer == 1);
	assert_int_equal(r->element[1]->type, RLT_REDIS_REPLY_STRING);
	assert_string_equal(r->element[1]->str, "two");
	assert_int_equal(r->element[2]->type, RLT_REDIS_REPLY_ARRAY);
	assert_int_equal(r->element[2]->elements, 2);
	assert_int_equal(r->element[2]->element[1]->type, RLT_REDIS_REPLY_ARRAY);
	assert_string_equal(r->element[2]->element[1]->element[0]->str, "four");
	assert_int_equal(r->element[3]->type, RLT_REDIS_REPLY_NIL);
	assert_int_equal(r->element[4]->type, RLT_REDIS_REPLY_STATUS);
	assert_string_equal(r->element[4]->str, "ST");
	assert_int_equal(r->element[5]->type, RLT_REDIS_REPLY_ERROR);
	assert_non_null(strstr(r->element[5]->str, "E1"));
	rlt_redis_reply_free(r);
	/* empty array, and a nil array */
	assert_int_equal(rlt_redis_command(c, &r, "LRANGE %s 0 -1", "rt:nolist"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ARRAY);
	assert_int_equal(r->elements, 0);
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command(c, &r, "BLPOP %s 0.01", "rt:nolist"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_NIL);
	rlt_redis_reply_free(r);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_every_reply_type(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_reply_types, NULL);
}

static void *t_binary(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv.uaddr});
	assert_non_null(c);
	const char key[] = {'b', 0, 'k', '\r', '\n', 0};
	const char val[] = {0, 1, 2, '\r', '\n', '$', '3', 0, (char)0xff};
	const char *argv[] = {"SET", key, val};
	size_t lens[] = {3, sizeof(key), sizeof(val)};
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command_argv(c, &r, 3, argv, lens), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_STATUS);
	rlt_redis_reply_free(r);
	/* read it back through the printf-like form's %b */
	assert_int_equal(rlt_redis_command(c, &r, "GET %b", key, sizeof(key)), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_STRING);
	assert_int_equal(r->len, sizeof(val));
	assert_memory_equal(r->str, val, sizeof(val));
	assert_int_equal(r->str[r->len], 0);
	rlt_redis_reply_free(r);
	/* the key without its NULs is another key */
	assert_int_equal(rlt_redis_command(c, &r, "EXISTS %s", "b"), 0);
	assert_true(r->integer == 0);
	rlt_redis_reply_free(r);
	/* argv of C strings (argvlen NULL) */
	const char *argv2[] = {"ECHO", "plain"};
	assert_int_equal(rlt_redis_command_argv(c, &r, 2, argv2, NULL), 0);
	assert_string_equal(r->str, "plain");
	rlt_redis_reply_free(r);
	assert_int_equal(rlt_redis_command_argv(c, &r, 0, argv2, NULL), -EINVAL);
	rlt_redis_close(c);
	return NULL;
}

static void test_redis_binary_safe_keys_and_values(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_binary, NULL);
}

static void *t_auth(void *arg)
{
	/* no password: commands get NOAUTH error replies */
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = srv_auth.addr});
	assert_non_null(c);
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c, &r, "GET x"), 0);
	assert_int_equal(r->type, RLT_REDIS_REPLY_ERROR);
	assert_memory_equal(r->str, "NOAUTH", 6);
	rlt_redis_reply_free(r);
	rlt_redis_close(c);
	/* wrong password */
	c = rlt_redis_connect(&(rlt_redis_opts){.address = srv_auth.addr, .password = "nope"});
	assert_null(c);
	assert_int_equal(errno, EACCES);
	/* the default user's password */
	c = rlt_redis_connect(&(rlt_redis_opts){.address = srv_auth.uaddr, .password = "s3cret"});
	assert_non_null(c);
	expect_str(c, "hi", "ECHO %s", "hi");
	rlt_redis_close(c);
	/* an ACL user */
	c = rlt_redis_connect(
	    &(rlt_redis_opts){.address = srv_auth.addr, .username = "alice", .password = "apw"});
	assert_non_null(c);
	assert_int_equal(rlt_redis_command(c, &r, "ACL WHOAMI"), 0);
	assert_string_equal(r->str, "alice");
	rlt_redis_reply_free(r);
	rlt_redis_close(c);
	c = rlt_redis_connect(
	    &(rlt_redis_opts){.address = srv_auth.addr, .username = "alice", .password = "bad"});
	assert_null(c);
	assert_int_equal(errno, EACCES);
	return NULL;
}

static void test_redis_auth_password_and_acl_user(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_auth, NULL);
}

static void *t_select_name(void *arg)
{
	rlt_redis *c3 = rlt_redis_connect(
	    &(rlt_redis_opts){.address = srv.addr, .db = 3, .client_name = "rlt-test"});
	assert_non_null(c3);
	rlt_redis_reply *r = NULL;
	assert_int_equal(rlt_redis_command(c3, &r, "SET %s %s", "sel:k", "in3"), 0);
	rlt_redis_reply_free(r);
	expect_str(c3, "rlt-test", "CLIENT %s", "GETNAME");
	rlt_redis *c0 = rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr});
	assert_non_null(c0);
	assert_int_equal(rlt_redis_command(c0, &r, "EXISTS %s", "sel:k"), 0);
	assert_true(r->integer == 0);
	rlt_redis_reply_free(r);
	rlt_redis_close(c0);
	rlt_redis_close(c3);
	/* no such db */
	assert_null(rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr, .db = 999}));
	assert_int_equal(errno, EINVAL);
	/* a name with a space is refused by the server */
	assert_null(
	    rlt_redis_connect(&(rlt_redis_opts){.address = srv.addr, .client_name = "a b"}));
	assert_int_equal(errno, EPROTO);
	return NULL;
}

static void test_redis_select_and_client_name(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_select_name, NULL);
}

static void *t_timeouts(void *arg)
{
	/* A listener that never answers: the TCP connect succeeds (the kernel
	 * completes it), the handshake never does. */
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(&a, 8, 0);
	assert_true(lfd >= 0);
	rlt_addr bound;
	assert_int_equal(rlt_net_local(lfd, &bound), 0);
	char addr[64];
	rlt_addr_format(&bound, addr, sizeof(addr));
	uint64_t t0 = rlt_now();
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){
	    .address = addr, .client_name = "x", .connect_timeout_ns = 200 * RLT_NSEC_PER_MSEC});
	uint64_t ms = (rlt_now() - t0) / RLT_NSEC_PER_MSEC;
	assert_null(c);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(ms >= 190 && ms < 3000);
	rlt_close(lfd);
	/* nobody listening */
	assert_null(rlt_redis_connect(&(rlt_redis_opts){.address = addr}));
	assert_int_equal(errno, ECONNREFUSED);
	assert_null(
	    rlt_redis_connect(&(rlt_redis_opts){.address = "unix:/nonexistent/redis.sock"}));
	assert_int_equal(errno, ENOENT);
	return NULL;
}

static void test_redis_connect_and_handshake_timeouts(void **state)
{
	REDIS_REQUIRE();
	rlt_test_run(t_timeouts, NULL);
}

static int setup(void **state)
{
	if (!redis_srv_installed())
		return 0;
	redis_srv_start(&srv, NULL);
	static const char *const auth[] = {"--requirepass", "s3cret", "--user", "alice", "on",
					   ">apw",	    "~*",     "&*",	"+@all", NULL};
	redis_srv_start(&srv_auth, auth);
	return 0;
}

static int teardown(void **state)
{
	if (srv.pid)
		redis_srv_stop(&srv);
	if (srv_auth.pid)
		redis_srv_stop(&srv_auth);
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_connects_over_tcp_and_unix),
	    cmocka_unit_test(test_redis_every_reply_type),
	    cmocka_unit_test(test_redis_binary_safe_keys_and_values),
	    cmocka_unit_test(test_redis_auth_password_and_acl_user),
	    cmocka_unit_test(test_redis_select_and_client_name),
	    cmocka_unit_test(test_redis_connect_and_handshake_timeouts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
