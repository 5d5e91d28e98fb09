/*
 * The Redis examples run against real servers and print what their Python
 * originals print: redis_hash against a server this test starts,
 * redis_two_pools against the two it starts itself; web_redis (the FastAPI
 * app) answers / and /red, 20 requests at once through its pool of 10
 * taking two rounds of its sleep, and stops on SIGTERM. Each run is
 * bounded; stderr must stay empty.
 */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
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
		rlt_test_child_fault(st, err);
		assert_string_equal(err, "");
		assert_int_equal(st, 0);
		assert_string_equal(out, "{'key1': '1', 'key2': '2', 'key3': '3'}\n");
	}
	/* nobody there: an error on stderr and a failing status */
	int port = redis_free_port();
	snprintf(cmd, sizeof(cmd), "redis_hash 127.0.0.1:%d", port);
	int st = run_example(cmd, out, sizeof(out), err, sizeof(err));
	assert_int_not_equal(st, 0);
	if (!strstr(err, "refused"))
		rlt_test_child_fault(st, err);
	assert_non_null(strstr(err, "refused"));
}

static void test_redis_example_two_pools(void **state)
{
	REDIS_REQUIRE();
	char out[512], err[512];
	int st = run_example("redis_two_pools", out, sizeof(out), err, sizeof(err));
	rlt_test_child_fault(st, err);
	assert_string_equal(err, "");
	assert_int_equal(st, 0);
	assert_string_equal(out, "r1 {'key1': '1', 'key2': '2', 'key3': '3'}\n"
				 "r2 {'key1': '1', 'key2': '2', 'key3': '3'}\n");
}

/* ---- examples/web_redis: the FastAPI app on ringlet's HTTP server ---- */

#define WEB_SLEEP_MS 200

typedef struct web_get {
	const char *addr, *path;
	char body[512];
	int status;
} web_get;

/* GET path with Connection: close; the status and the body. */
static void *web_get_task(void *arg)
{
	web_get *g = arg;
	int fd = rlt_net_dial(g->addr, 5 * (int64_t)RLT_NSEC_PER_SEC, 0);
	if (fd < 0)
		return rlt_fail(fd);
	char req[256], resp[4096];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", g->path);
	if (rlt_send_all(fd, req, (size_t)n, 0) != n) {
		rlt_close(fd);
		return rlt_fail(-EIO);
	}
	ssize_t got = rlt_recv_exact(fd, resp, sizeof(resp) - 1, 0);
	rlt_close(fd);
	if (got <= 0) {
		rlt_test_faulted("web_redis closed without a response");
		return rlt_fail(-EIO);
	}
	resp[got] = '\0';
	sscanf(resp, "HTTP/1.1 %d", &g->status);
	const char *b = strstr(resp, "\r\n\r\n");
	snprintf(g->body, sizeof(g->body), "%s", b ? b + 4 : "");
	/* Under the fault policy the app (a process of its own, faulted too)
	 * may answer its documented 502 for a failed Redis call, or be cut
	 * off mid-response: the scenario ends as faulted. A complete 200
	 * with a wrong body still fails (checked by the caller). */
	static const char cl_name[] = "\r\ncontent-length:";
	const char *cl = strcasestr(resp, cl_name);
	if (g->status == 502)
		rlt_test_faulted("web_redis answered 502: its Redis call failed");
	if (!b || (cl && strlen(b + 4) < strtoul(cl + sizeof(cl_name) - 1, NULL, 10)))
		rlt_test_faulted("web_redis's response was cut short");
	return NULL;
}

typedef struct web_run {
	const char *addr;
	double ms;
} web_run;

static void *web_client(void *arg)
{
	web_run *w = arg;
	web_get root = {.addr = w->addr, .path = "/"};
	assert_int_equal(rlt_join(rlt_spawn(web_get_task, &root, NULL), NULL), 0);
	assert_int_equal(root.status, 200);
	assert_string_equal(root.body, "{\"message\":\"Hello World\"}");
	/* 20 at once through a pool of 10: two rounds of the sleep, not 20 */
	enum { N = 20 };
	web_get g[N];
	rlt_task *t[N];
	uint64_t t0 = rlt_now();
	for (int i = 0; i < N; i++) {
		g[i] = (web_get){.addr = w->addr, .path = "/red"};
		t[i] = rlt_spawn(web_get_task, &g[i], NULL);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(g[i].status, 200);
		assert_string_equal(g[i].body, "{\"key1\":\"1\",\"key2\":\"2\",\"key3\":\"3\"}");
	}
	w->ms = (double)(rlt_now() - t0) / 1e6;
	return NULL;
}

static void test_redis_example_web_app(void **state)
{
	REDIS_REQUIRE();
	char listen[64], path[512];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", redis_free_port());
	snprintf(path, sizeof(path), "%s/web_redis", RLT_EXAMPLES_DIR);
	int out[2], err[2];
	assert_int_equal(pipe(out), 0);
	assert_int_equal(pipe(err), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		setenv("WEB_REDIS_SLEEP_MS", "200", 1);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(path, path, listen, srv.addr, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* "listening on ..." once the server is up */
	char line[256] = {0};
	FILE *f = fdopen(out[0], "r");
	if (!fgets(line, sizeof(line), f)) {
		/* It ended before listening: under the fault policy, cleanly. */
		char e[512] = "";
		ssize_t k = read(err[0], e, sizeof(e) - 1);
		e[k > 0 ? k : 0] = '\0';
		int st = 0;
		waitpid(pid, &st, 0);
		fclose(f);
		close(err[0]);
		rlt_test_child_fault(st, e);
		fail_msg("web_redis ended (status %#x) before listening: %s", st, e);
	}
	assert_non_null(strstr(line, "listening on http://"));
	web_run w = {.addr = listen};
	rlt_test_run(web_client, &w);
	assert_true(w.ms >= 2 * WEB_SLEEP_MS - 20);
	assert_true(w.ms < 10 * WEB_SLEEP_MS);
	/* SIGTERM: a graceful stop, status 0, nothing on stderr */
	kill(pid, SIGTERM);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	char e[512];
	ssize_t m = read(err[0], e, sizeof(e) - 1);
	e[m > 0 ? m : 0] = '\0';
	assert_string_equal(e, "");
	fclose(f);
	close(err[0]);
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
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_redis_example_hash),
	    cmocka_unit_test(test_redis_example_two_pools),
	    cmocka_unit_test(test_redis_example_web_app),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
