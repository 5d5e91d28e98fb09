/* The server against real clients run as child processes: curl
 * (keep-alive, chunked upload, HEAD, 100-continue) and Python's
 * http.client; and the example and tools/ringlet-http, started as
 * programs, queried with curl and stopped with SIGTERM. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "http_server_test.h"

#include <ringlet/process.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CURL   "/usr/bin/curl"
#define PYTHON "/usr/bin/python3"
#define RUN_NS (20 * RLT_NSEC_PER_SEC)

static bool have(const char *prog)
{
	if (access(prog, X_OK) == 0)
		return true;
	printf("SKIP: %s is not installed\n", prog);
	return false;
}

static int h_hello(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	rlt_http_response_header(res, "Content-Type", "text/plain");
	return rlt_http_response_send(res, "Hello, World!", 13);
}

/* The client's port: two requests that say the same came on one
 * connection. */
static int h_peer(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	rlt_addr a;
	int rc = rlt_http_request_peer(req, &a);
	if (rc < 0)
		return rc;
	char out[32];
	int n = snprintf(out, sizeof(out), "%d\n", rlt_addr_port(&a));
	return rlt_http_response_send(res, out, (size_t)n);
}

/* "<length> <sum of bytes> <chunked?>\n" of the body, read in pieces. */
static int h_len(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char buf[4096];
	ssize_t n;
	size_t total = 0;
	unsigned long long sum = 0;
	while ((n = rlt_http_request_read(req, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			sum += (unsigned char)buf[i];
		total += (size_t)n;
	}
	if (n < 0)
		return (int)n;
	char out[96];
	int k = snprintf(out, sizeof(out), "%zu %llu %s\n", total, sum,
			 rlt_http_request_content_length(req) < 0 ? "chunked" : "length");
	return rlt_http_response_send(res, out, (size_t)k);
}

static int port;
static char tmpdir[64];

/* Run argv; its stdout (NUL-terminated) into out. Returns the exit code. */
static int run(const char *const argv[], char *out, size_t cap)
{
	size_t len = cap - 1;
	int status = 0;
	int rc = rlt_process_run(argv, out, &len, RUN_NS, &status);
	if (rc < 0)
		fail_msg("%s: %s", argv[0], strerror(-rc));
	out[len] = '\0';
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* Fault mode: the server under test (here, or a program run by the
	 * test) may fail a request with a 500 or drop the connection (curl
	 * exits 52, 56...): the scenario ends there. What must still hold:
	 * no hang, no crash, nothing wrong in an answer that came whole. */
	if (rlt_test_faulty() &&
	    (code != 0 || strstr(out, "Internal Server Error") || strstr(out, "500 ")))
		rlt_test_faulted("a client of the server under test saw a fault's effect");
	return code;
}

static void url(char *out, size_t cap, const char *path)
{
	snprintf(out, cap, "http://127.0.0.1:%d%s", port, path);
}

/* A file of n bytes (i*7 mod 251) in tmpdir; returns its byte sum. */
static unsigned long long make_file(const char *name, size_t n, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	unsigned long long sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)(i * 7 % 251);
		fputc(b, f);
		sum += b;
	}
	fclose(f);
	return sum;
}

static void curl_cases(void)
{
	char out[65536], u1[128], u2[128], want[256], file[128], data[160];

	/* Keep-alive: two URLs, one connection (the same client port). */
	url(u1, sizeof(u1), "/peer");
	const char *ka[] = {CURL, "-s", u1, u1, NULL};
	assert_int_equal(run(ka, out, sizeof(out)), 0);
	int p1 = 0, p2 = 0;
	assert_int_equal(sscanf(out, "%d\n%d\n", &p1, &p2), 2);
	assert_true(p1 > 0);
	assert_int_equal(p1, p2);

	/* HEAD. */
	url(u1, sizeof(u1), "/hello");
	const char *head[] = {CURL, "-s", "-I", u1, NULL};
	assert_int_equal(run(head, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(out, "Content-Length: 13\r\n"));

	/* Chunked upload. */
	unsigned long long sum = make_file("up.bin", 200000, file, sizeof(file));
	snprintf(data, sizeof(data), "@%s", file);
	url(u1, sizeof(u1), "/len");
	const char *chunked[] = {CURL, "-s", "-H", "Transfer-Encoding: chunked", "--data-binary",
				 data, u1,   NULL};
	assert_int_equal(run(chunked, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "200000 %llu chunked\n", sum);
	assert_string_equal(out, want);

	/* 100-continue: curl waits for it (up to 1 s) before the body. */
	const char *cont[] = {CURL,
			      "-s",
			      "-v",
			      "--stderr",
			      "-",
			      "-H",
			      "Expect: 100-continue",
			      "--expect100-timeout",
			      "5",
			      "--data-binary",
			      data,
			      u1,
			      NULL};
	uint64_t t0 = rlt_now();
	assert_int_equal(run(cont, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "HTTP/1.1 100 Continue"));
	snprintf(want, sizeof(want), "200000 %llu length\n", sum);
	assert_non_null(strstr(out, want));
	assert_true(rlt_now() - t0 < 4 * RLT_NSEC_PER_SEC); /* did not sit out the timeout */

	/* A 404, then a good request on the same connection. */
	url(u2, sizeof(u2), "/nothing");
	url(u1, sizeof(u1), "/hello");
	const char *nf[] = {CURL,
			    "-s",
			    "-o",
			    "/dev/null",
			    "-w",
			    "%{http_code} %{num_connects};",
			    u2,
			    "-o",
			    "/dev/null",
			    "-w",
			    "%{http_code} %{num_connects};",
			    u1,
			    NULL};
	assert_int_equal(run(nf, out, sizeof(out)), 0);
	/* (A condition, not data: under the fault matrix, a server that
	 * closed the connection after a fault makes curl connect again.) */
	if (strcmp(out, "404 1;200 0;") != 0)
		fail_msg("curl: \"%s\", want \"404 1;200 0;\" (the 200 on the 404's connection)",
			 out);
}

static const char py_client[] =
    "import http.client, sys\n"
    "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)\n"
    "for i in range(3):\n"
    "    c.request('GET', '/hello')\n"
    "    r = c.getresponse()\n"
    "    print(r.status, r.read().decode(), r.getheader('Server'))\n"
    "c.request('GET', '/peer'); a = c.getresponse().read()\n"
    "c.request('GET', '/peer'); b = c.getresponse().read()\n"
    "print('same connection', a == b)\n"
    "c.request('POST', '/len', body=b'x' * 100000)\n"
    "print(c.getresponse().read().decode().strip())\n"
    "c.request('POST', '/len', body=iter([b'ab', b'cd']), encode_chunked=True,\n"
    "          headers={'Transfer-Encoding': 'chunked'})\n"
    "print(c.getresponse().read().decode().strip())\n"
    "c.request('HEAD', '/hello')\n"
    "r = c.getresponse(); print(r.status, r.getheader('Content-Length'), r.read())\n"
    "c.request('GET', '/missing')\n"
    "r = c.getresponse(); print(r.status, r.read().decode().strip())\n";

static void python_cases(void)
{
	char out[4096], ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	const char *argv[] = {PYTHON, "-c", py_client, ps, NULL};
	assert_int_equal(run(argv, out, sizeof(out)), 0);
	assert_string_equal(out, "200 Hello, World! ringlet\n"
				 "200 Hello, World! ringlet\n"
				 "200 Hello, World! ringlet\n"
				 "same connection True\n"
				 "100000 12000000 length\n"
				 "4 394 chunked\n"
				 "200 13 b''\n"
				 "404 Not Found\n");
}

static void *peers_root(void *arg)
{
	(void)arg;
	rlt_http_router *r = rlt_http_router_new();
	rlt_http_router_add(r, "GET", "/hello", 0, h_hello, NULL);
	rlt_http_router_add(r, "GET", "/peer", 0, h_peer, NULL);
	rlt_http_router_add(r, "POST", "/len", 0, h_len, NULL);
	rlt_http_server *s =
	    ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = r}, &port);
	if (have(CURL))
		curl_cases();
	if (have(PYTHON))
		python_cases();
	ht_stop(s);
	rlt_http_router_free(r);
	return NULL;
}

static void test_curl_and_python_http_client(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rlt-http-peers-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	rlt_test_run(peers_root, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* A program that prints its port on its first line: start it, find the
 * port, query it with curl, stop it with SIGTERM, expect exit 0. */
static void *program_root(void *arg)
{
	const char *const *argv = arg;
	if (access(argv[0], X_OK) != 0) {
		printf("SKIP: %s is not built\n", argv[0]);
		return NULL;
	}
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv, .stdout_mode = RLT_PROC_PIPE, .stdin_mode = RLT_PROC_DEVNULL});
	assert_non_null(p);
	char line[512];
	size_t n = 0;
	rlt_scope sc;
	rlt_scope_enter(&sc, HT_STEP_NS);
	while (n < sizeof(line) - 1 && !memchr(line, '\n', n)) {
		ssize_t k = rlt_read(rlt_process_stdout_fd(p), line + n, sizeof(line) - 1 - n, -1);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	rlt_scope_leave(&sc);
	line[n] = '\0';
	char *colon = strstr(line, "127.0.0.1:");
	if (!colon)
		fail_msg("%s printed: %s", argv[0], line);
	port = atoi(colon + 10);
	assert_true(port > 0);
	char out[4096], u[128];
	if (have(CURL)) {
		const char *path = argv[2] ? "/json" : "/";
		url(u, sizeof(u), path);
		const char *c[] = {CURL, "-s", u, NULL};
		assert_int_equal(run(c, out, sizeof(out)), 0);
		assert_string_equal(out, "{\"message\":\"Hello world\"}");
	}
	assert_int_equal(rlt_process_kill(p, SIGTERM), 0);
	int status;
	assert_int_equal(rlt_process_wait(p, HT_STEP_NS, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	rlt_process_free(p);
	return NULL;
}

static void test_example_http_hello(void **state)
{
	(void)state;
	const char *argv[] = {RLT_EXAMPLES_DIR "/http_hello", "0", NULL};
	rlt_test_run(program_root, argv);
}

static void test_tool_ringlet_http(void **state)
{
	(void)state;
	const char *argv[] = {RLT_EXAMPLES_DIR "/../tools/ringlet-http", "-p0", "-d/", NULL};
	rlt_test_run(program_root, argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_curl_and_python_http_client),
	    cmocka_unit_test(test_example_http_hello),
	    cmocka_unit_test(test_tool_ringlet_http),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
