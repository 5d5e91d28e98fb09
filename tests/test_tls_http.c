/* HTTPS: ringlet's HTTP client against nginx with TLS, ringlet's HTTPS
 * server against curl --cacert and ringlet's client, tools/ringlet-http
 * --cert --key, and the failures seen through HTTP (an unknown CA, plain
 * HTTP to the HTTPS port). */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/tls_test.h"

#include <ringlet/http.h>
#include <ringlet/http_client.h>

static void check_big(const char *b, ssize_t n)
{
	assert_int_equal(n, 3 * 1024 * 1024);
	for (ssize_t i = 0; i < n; i++)
		if (b[i] != peer_byte(2, (size_t)i))
			fail_msg("big.bin: byte %zd differs", i);
}

static void *root_nginx(void *arg)
{
	peer *p = arg;
	char url[256];
	rlt_http_client *c = rlt_http_client_new(&(rlt_http_client_opts){.ca_file = certs.ca});
	assert_non_null(c);
	rlt_http_reply *r;
	const char *b;
	snprintf(url, sizeof(url), "https://localhost:%d/small.txt", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	assert_int_equal(rlt_http_reply_body(r, 1 << 20, &b), 12);
	assert_string_equal(b, "hello nginx\n");
	rlt_http_reply_free(r);
	/* 3 MiB, every byte. */
	snprintf(url, sizeof(url), "https://localhost:%d/big.bin", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	ssize_t n = rlt_http_reply_body(r, 8 << 20, &b);
	check_big(b, n);
	rlt_http_reply_free(r);
	/* Keep-alive: one TLS connection answers the next requests. */
	snprintf(url, sizeof(url), "https://localhost:%d/connreq", p->port);
	char first[64] = "";
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
		assert_true(rlt_http_reply_body(r, 1024, &b) > 0);
		char conn[32];
		int reqs;
		assert_int_equal(sscanf(b, "%31s %d", conn, &reqs), 2);
		if (i == 1)
			snprintf(first, sizeof(first), "%s", conn);
		assert_string_equal(conn, first);
		assert_int_equal(reqs, i + 2); /* small.txt and big.bin came first */
		rlt_http_reply_free(r);
	}
	assert_int_equal(rlt_http_client_open(c), 1);
	/* By IP address (the certificate has 127.0.0.1 too): a new host. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/small.txt", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	rlt_http_reply_free(r);
	/* The same port over plain http is another pool entry, and fails:
	 * nginx answers 400 to plain HTTP on an SSL port. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/small.txt", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 400);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* The system's CAs do not know the test CA. */
	c = rlt_http_client_new(NULL);
	assert_non_null(c);
	snprintf(url, sizeof(url), "https://localhost:%d/small.txt", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), -EKEYREJECTED);
	assert_null(r);
	assert_int_equal(rlt_http_client_free(c), 0);
	/* Unless told not to verify. */
	c = rlt_http_client_new(&(rlt_http_client_opts){.unsafe_no_verify = true});
	assert_non_null(c);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);
	/* A CA file that is not there. */
	assert_null(rlt_http_client_new(&(rlt_http_client_opts){.ca_file = "/nonexistent.pem"}));
	assert_int_equal(errno, ENOENT);
	/* One that holds no certificate: the first https request says so. */
	c = rlt_http_client_new(&(rlt_http_client_opts){.ca_file = certs.key});
	assert_non_null(c);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), -EKEYREJECTED);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

/* The peer of the running test, stopped by its teardown even when the
 * test ends early (a failure, or a fault in fault mode). */
static peer tp;

static int stop_peer(void **state)
{
	(void)state;
	peer_stop(&tp);
	memset(&tp, 0, sizeof(tp));
	return 0;
}

static void test_https_client_against_nginx(void **state)
{
	if (!peer_start_nginx_tls(&tp, certs.srv, certs.key))
		return;
	rlt_test_run(root_nginx, &tp);
}

/* ---- ringlet's HTTPS server ---- */

static int h_hello(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	return rlt_http_response_send(res, "Hello, TLS!", 11);
}

static int h_echo(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	const void *d;
	size_t n;
	int rc = rlt_http_request_body(req, &d, &n);
	if (rc < 0)
		return rc;
	return rlt_http_response_send(res, d, n);
}

static char big_path[400];
#define BIG_SIZE (1024 * 1024 + 17)

static int h_file(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	int fd = open(big_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = rlt_http_response_sendfile(res, fd, 0, BIG_SIZE);
	close(fd);
	return rc;
}

/* 40 requests pipelined on one HTTPS connection, each in its own record,
 * all written before any answer is read (so several records reach the
 * server in one receive, and OpenSSL may read ahead past the first): the
 * 40 answers come back in order, then the server's close. */
static void pipelined_over_tls(int port)
{
	enum { N = 40 };
	rlt_tls_ctx *ctx = tls_client_ctx(&certs, 0);
	int fd = tls_dial(port);
	assert_true(fd >= 0);
	rlt_tls *t = rlt_tls_client(ctx, fd, "localhost", 5 * RLT_NSEC_PER_SEC);
	assert_non_null(t);
	static const char get[] = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
	static const char last[] =
	    "GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
	for (int i = 0; i < N; i++) {
		const char *q = i == N - 1 ? last : get;
		size_t len = i == N - 1 ? sizeof(last) - 1 : sizeof(get) - 1;
		assert_int_equal(rlt_tls_write(t, q, len), (ssize_t)len);
	}
	enum { CAP = 64 * 1024 };
	char *in = malloc(CAP);
	assert_non_null(in);
	size_t have = 0;
	rlt_scope sc; /* a server that sits on a buffered request: -ETIMEDOUT */
	assert_int_equal(rlt_scope_enter(&sc, 10 * RLT_NSEC_PER_SEC), 0);
	for (;;) {
		assert_true(have < CAP);
		ssize_t n = rlt_tls_read(t, in + have, CAP - have);
		if (n < 0)
			fail_msg("after %zu bytes of answers: %s", have, strerror((int)-n));
		if (n == 0)
			break;
		have += (size_t)n;
	}
	rlt_scope_leave(&sc);
	int answers = 0;
	const char *p = in, *end = in + have;
	while (p < end) {
		const char *hit = memmem(p, (size_t)(end - p), "\r\n\r\nHello, TLS!", 15);
		if (!hit)
			break;
		assert_memory_equal(p, "HTTP/1.1 200 OK\r\n", 17);
		answers++;
		p = hit + 15;
	}
	assert_int_equal(answers, N);
	assert_true(p == end);
	free(in);
	rlt_tls_free(t);
	rlt_close(fd);
	rlt_tls_ctx_free(ctx);
}

static void *root_server(void *arg)
{
	rlt_tls_ctx *tls = tls_server_ctx(&certs, certs.srv, 0);
	rlt_http_router *rt = rlt_http_router_new();
	rlt_http_router_add(rt, "GET", "/hello", 0, h_hello, NULL);
	rlt_http_router_add(rt, "POST", "/echo", 0, h_echo, NULL);
	rlt_http_router_add(rt, "GET", "/big", 0, h_file, NULL);
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
	    .addrs = &a, .naddrs = 1, .handler = rlt_http_router_handle, .arg = rt, .tls = tls});
	assert_non_null(s);
	assert_int_equal(rlt_http_server_addr(s, 0, &a), 0);
	int port = rlt_addr_port(&a);
	char url[256];

	/* curl, verifying against the test CA. */
	snprintf(url, sizeof(url), "https://localhost:%d/hello", port);
	const char *curl[] = {"curl", "-sS", "--cacert", certs.ca, url, NULL};
	enum { OUT_CAP = BIG_SIZE + 64 };
	char *out = malloc(OUT_CAP); /* not on the task's stack */
	assert_non_null(out);
	size_t outlen = OUT_CAP;
	int status;
	assert_int_equal(rlt_process_run(curl, out, &outlen, 20 * RLT_NSEC_PER_SEC, &status), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(outlen, 11);
	assert_memory_equal(out, "Hello, TLS!", 11);
	/* A file (the TLS sendfile path), every byte. */
	snprintf(url, sizeof(url), "https://localhost:%d/big", port);
	const char *curl_big[] = {"curl", "-sS", "--cacert", certs.ca, url, NULL};
	outlen = OUT_CAP;
	assert_int_equal(rlt_process_run(curl_big, out, &outlen, 20 * RLT_NSEC_PER_SEC, &status),
			 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(outlen, BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		if ((unsigned char)out[i] != (unsigned char)peer_byte(5, i))
			fail_msg("byte %zu of /big differs (curl)", i);
	free(out);
	/* curl with the system's CAs refuses the server. */
	const char *curl_untrusted[] = {"curl", "-s", url, NULL};
	outlen = 0;
	assert_int_equal(
	    rlt_process_run(curl_untrusted, NULL, NULL, 20 * RLT_NSEC_PER_SEC, &status), 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 60); /* peer cert not OK */

	/* ringlet's client: keep-alive, a POST, the file. */
	rlt_http_client *c = rlt_http_client_new(&(rlt_http_client_opts){.ca_file = certs.ca});
	assert_non_null(c);
	rlt_http_reply *r;
	const char *b;
	for (int i = 0; i < 3; i++) {
		snprintf(url, sizeof(url), "https://localhost:%d/hello", port);
		assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
		assert_int_equal(rlt_http_reply_body(r, 1024, &b), 11);
		assert_string_equal(b, "Hello, TLS!");
		rlt_http_reply_free(r);
	}
	assert_int_equal(rlt_http_client_open(c), 1);
	static char body[70000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	snprintf(url, sizeof(url), "https://localhost:%d/echo", port);
	rlt_http_client_request post = {
	    .method = "POST", .url = url, .body = body, .body_len = sizeof(body)};
	assert_int_equal(rlt_http_fetch(c, &post, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 1 << 20, &b), (ssize_t)sizeof(body));
	assert_memory_equal(b, body, sizeof(body));
	rlt_http_reply_free(r);
	snprintf(url, sizeof(url), "https://localhost:%d/big", port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 4 << 20, &b), BIG_SIZE);
	for (size_t i = 0; i < BIG_SIZE; i++)
		if ((unsigned char)b[i] != (unsigned char)peer_byte(5, i))
			fail_msg("byte %zu of /big differs (ringlet)", i);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_open(c), 1);
	/* Plain HTTP to the HTTPS port: closed without an answer. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", port);
	int rc = rlt_http_fetch_url(c, url, &r);
	if (rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("plain HTTP to the HTTPS port: %d", rc);
	assert_int_equal(rlt_http_client_free(c), 0);

	pipelined_over_tls(port);

	/* A graceful stop with an idle keep-alive HTTPS connection open: it
	 * is closed at once, not after the idle timeout. */
	c = rlt_http_client_new(&(rlt_http_client_opts){.ca_file = certs.ca});
	assert_non_null(c);
	snprintf(url, sizeof(url), "https://localhost:%d/hello", port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_idle(c), 1);
	uint64_t t0 = rlt_now();
	rlt_http_server_stop(s);
	assert_int_equal(rlt_http_server_wait(s), 0);
	assert_true(rlt_now() - t0 < 2 * RLT_NSEC_PER_SEC);
	assert_int_equal(rlt_http_client_free(c), 0);
	rlt_http_server_free(s);
	rlt_http_router_free(rt);
	rlt_tls_ctx_free(tls);
	return NULL;
}

static void test_https_server_against_curl_and_ringlet(void **state)
{
	if (!peer_installed("curl")) {
		fprintf(stderr, "SKIPPED: curl is not installed\n");
		return;
	}
	rlt_test_run(root_server, NULL);
}

/* tools/ringlet-http --cert --key, fetched by ringlet's client. */
static void *root_tool(void *arg)
{
	peer *p = arg;
	rlt_http_client *c = rlt_http_client_new(&(rlt_http_client_opts){.ca_file = certs.ca});
	assert_non_null(c);
	char url[128];
	snprintf(url, sizeof(url), "https://localhost:%d/plaintext", p->port);
	rlt_http_reply *r;
	const char *b;
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 1024, &b), 13);
	assert_string_equal(b, "Hello, World!");
	rlt_http_reply_free(r);
	snprintf(url, sizeof(url), "https://localhost:%d/big.bin", p->port);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	ssize_t n = rlt_http_reply_body(r, 8 << 20, &b);
	check_big(b, n);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

static void test_https_ringlet_http_tool(void **state)
{
	const char *bin = RLT_EXAMPLES_DIR "/../tools/ringlet-http";
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "SKIPPED: %s is not built\n", bin);
		return;
	}
	peer *p = &tp;
	peer_make_dir(p);
	bool up = false;
	for (int attempt = 0; attempt < 5 && !up; attempt++) {
		p->port = peer_free_port();
		char port[16], www[300];
		snprintf(port, sizeof(port), "%d", p->port);
		snprintf(www, sizeof(www), "%s/www", p->dir);
		char *argv[] = {(char *)bin, "-p",     port,	  "-w",	   "1",	      "-q", "-d",
				www,	     "--cert", certs.srv, "--key", certs.key, NULL};
		peer_spawn(p, argv, true);
		up = peer_wait_ready(p);
	}
	if (!up)
		fail_msg("ringlet-http --cert did not start (see %s/server.log)", p->dir);
	rlt_test_run(root_tool, p);
}

static int setup(void **state)
{
	if (tls_group_setup(state))
		return -1;
	snprintf(big_path, sizeof(big_path), "%s/big5.bin", certs.dir);
	FILE *f = fopen(big_path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < BIG_SIZE; i++)
		fputc(peer_byte(5, i), f);
	fclose(f);
	return 0;
}

int main(void)
{
	if (!peer_installed("openssl")) {
		fprintf(stderr, "SKIPPED: openssl(1) is not installed\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_https_client_against_nginx, stop_peer),
	    cmocka_unit_test(test_https_server_against_curl_and_ringlet),
	    cmocka_unit_test_teardown(test_https_ringlet_http_tool, stop_peer),
	};
	return cmocka_run_group_tests(tests, setup, tls_group_teardown);
}
