/*
 * The Redis examples run against real servers and print what their Python
 * originals print: redis_hash against a server this test starts,
 * redis_two_pools against the two it starts itself. Each run is bounded by
 * timeout(1); stderr must stay empty.
 */
#include "tests/test_redis_server.h"

static redis_srv srv;

/* Run an example with its arguments; its stdout in out, stderr in err. */
static int run_example(const char *cmdline, char *out, size_t outlen, char *err, size_t errlen)
{
	char errfile[] = "/tmp/rlt-redis-ex-XXXXXX";
	int efd = mkstemp(errfile);
	assert_true(efd >= 0);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "timeout 20 %s/%s 2>%s", RLT_EXAMPLES_DIR, cmdline, errfile);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	int status = pclose(f);
	ssize_t m = read(efd, err, errlen - 1);
	err[m > 0 ? m : 0] = '\0';
	close(efd);
	unlink(errfile);
	return status;
}

static void test_redis_example_hash(void **state)
{
	REDIS_REQUIRE();
	char cmd[256], out[512], err[512];
	const char *addrs[] = {srv.addr, srv.uaddr};
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "redis_hash %s", addrs[i]);
		int st = run_example(cmd, out, sizeof(out), err, sizeof(err));
		assert_string_equal(err, "");
		assert_int_equal(st, 0);
		assert_string_equal(out, "{'key1': '1', 'key2': '2', 'key3': '3'}\n");
	}
	/* nobody there: an error on stderr and a failing status */
	int port = redis_free_port();
	snprintf(cmd, sizeof(cmd), "redis_hash 127.0.0.1:%d", port);
	int st = run_example(cmd, out, sizeof(out), err, sizeof(err));
	assert_int_not_equal(st, 0);
	assert_non_null(strstr(err, "refused"));
}

static void test_redis_example_two_pools(void **state)
{
	REDIS_REQUIRE();
	char out[512], err[512];
	int st = run_example("redis_two_pools", out, sizeof(out), err, sizeof(err));
	assert_string_equal(err, "");
	assert_int_equal(st, 0);
	assert_string_equal(out, "r1 {'key1': '1', 'key2': '2', 'key3': '3'}\n"
				 "r2 {'key1': '1', 'key2': '2', 'key3': '3'}\n");
}

static int setup(void **state)
{
	if (redis_srv_installed())
		redis_srv_start(&srv, NULL);
	return 0;
}

static int teardown(void **state)
{
	if (srv.dir[0])
		redis_srv_stop(&srv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_example_hash),
	    cmocka_unit_test(test_redis_example_two_pools),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
