/* The HTTP client against real servers (tests/http_client_peers.h): nginx
 * (one worker, a generated configuration: static files, a chunked SSI
 * page, redirects, keep-alive counted by $connection_requests),
 * python3 -m http.server (HTTP/1.0, a connection per request) and ringlet's
 * own tools/ringlet-http (when built: server and client together); every body
 * byte checked, downloads written to files and read back, 50 tasks on two
 * workers sharing one client. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/http_client_peers.h"

#include <ringlet/http_client.h>

#include <stdatomic.h>

static void check_bytes(const char *what, const char *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != peer_byte(seed, i))
			fail_msg("%s: byte %zu differs", what, i);
}

static const char *url_of(const peer *p, const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "http://127.0.0.1:%d%s", p->port, path);
	return buf;
}

/* GET url, check the status and length, return the body (the reply's). */
static const char *get(rlt_http_client *c, const char *url, int status, ssize_t len,
		       rlt_http_reply **r)
{
	int rc = rlt_http_fetch_url(c, url, r);
	if (rc != 0)
		fail_msg("%s: %d", url, rc);
	assert_int_equal(rlt_http_reply_status(*r), status);
	const char *body;
	ssize_t n = rlt_http_reply_body(*r, 8 << 20, &body);
	if (len >= 0 && n != len)
		fail_msg("%s: %zd bytes, want %zd", url, n, len);
	return body;
}

typedef struct many {
	rlt_http_client *c;
	const char *url;
	atomic_int ok;
} many;

static void *fetch_f4k(void *arg)
{
	many *m = arg;
	for (int i = 0; i < 10; i++) {
		rlt_http_reply *r;
		if (rlt_http_fetch_url(m->c, m->url, &r) < 0)
			continue;
		const char *b;
		if (rlt_http_reply_body(r, 8192, &b) == 4096) {
			check_bytes("f4k.bin", b, 4096, 1);
			atomic_fetch_add(&m->ok, 1);
		}
		rlt_http_reply_free(r);
	}
	return NULL;
}

static void *root_nginx(void *arg)
{
	peer *p = arg;
	char url[256], path[512];
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	rlt_http_reply *r;

	const char *b = get(c, url_of(p, "/small.txt", url, sizeof(url)), 200, 12, &r);
	assert_string_equal(b, "hello nginx\n");
	assert_int_equal(rlt_http_reply_content_length(r), 12);
	assert_non_null(strstr(rlt_http_reply_header(r, "server"), "nginx"));
	assert_string_equal(rlt_http_reply_header(r, "Content-Type"), "text/plain");
	rlt_http_reply_free(r);

	/* Keep-alive: the same nginx connection answers every request. */
	for (int i = 0; i < 100; i++) {
		b = get(c, url_of(p, "/f4k.bin", url, sizeof(url)), 200, 4096, &r);
		check_bytes("f4k.bin", b, 4096, 1);
		rlt_http_reply_free(r);
	}
	b = get(c, url_of(p, "/connreq", url, sizeof(url)), 200, -1, &r);
	long conn, reqs;
	assert_int_equal(sscanf(b, "%ld %ld", &conn, &reqs), 2);
	assert_int_equal(reqs, 102);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_open(c), 1);

	/* Chunked (SSI output has no length). */
	b = get(c, url_of(p, "/ssi.shtml", url, sizeof(url)), 200, -1, &r);
	assert_int_equal(rlt_http_reply_content_length(r), -1);
	assert_string_equal(rlt_http_reply_header(r, "transfer-encoding"), "chunked");
	assert_string_equal(b, "<p>hello nginx\n</p>\n");
	rlt_http_reply_free(r);

	get(c, url_of(p, "/missing", url, sizeof(url)), 404, -1, &r);
	rlt_http_reply_free(r);
	get(c, url_of(p, "/redir", url, sizeof(url)), 301, -1, &r);
	assert_non_null(strstr(rlt_http_reply_header(r, "location"), "/small.txt"));
	rlt_http_reply_free(r);

	/* HEAD: headers only. */
	rlt_http_client_request head = {.method = "HEAD",
					.url = url_of(p, "/big.bin", url, sizeof(url))};
	assert_int_equal(rlt_http_fetch(c, &head, &r), 0);
	assert_string_equal(rlt_http_reply_header(r, "content-length"), "3145728");
	char tmp[16];
	assert_int_equal(rlt_http_reply_read(r, tmp, sizeof(tmp)), 0);
	rlt_http_reply_free(r);

	/* 3 MiB to a file, read back. */
	snprintf(path, sizeof(path), "%s/big.out", p->dir);
	int fd = rlt_openat(AT_FDCWD, path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	int status = 0;
	assert_int_equal(
	    rlt_http_download(c, url_of(p, "/big.bin", url, sizeof(url)), fd, 0, &status), 3 << 20);
	assert_int_equal(status, 200);
	char *back = malloc(3 << 20);
	assert_int_equal(rlt_read_full(fd, back, 3 << 20, 0), 3 << 20);
	check_bytes("big.out", back, 3 << 20, 2);
	free(back);
	/* Not 2xx: nothing written. */
	assert_int_equal(
	    rlt_http_download(c, url_of(p, "/missing", url, sizeof(url)), fd, 0, &status),
	    -EREMOTEIO);
	assert_int_equal(status, 404);
	rlt_close(fd);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* Redirects, relative and absolute, followed. */
	c = rlt_http_client_new(&(rlt_http_client_opts){.max_redirects = 2});
	b = get(c, url_of(p, "/redir2", url, sizeof(url)), 200, 12, &r);
	assert_string_equal(b, "hello nginx\n");
	assert_string_equal(rlt_http_reply_url(r), url_of(p, "/small.txt", url, sizeof(url)));
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* 50 tasks on both workers, 10 fetches each, one pool. */
	c = rlt_http_client_new(NULL);
	many m = {.c = c, .url = url_of(p, "/f4k.bin", url, sizeof(url))};
	rlt_task *t[50];
	for (int i = 0; i < 50; i++)
		t[i] = rlt_test_spawn_on(fetch_f4k, &m, (unsigned)i);
	for (int i = 0; i < 50; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	assert_int_equal(atomic_load(&m.ok), 500);
	assert_true(rlt_http_client_open(c) <= 50);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

static peer nginx_peer, python_peer;

static void test_http_client_against_nginx(void **state)
{
	peer *p = *state;
	if (!peer_start_nginx(p))
		skip();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_nginx, p, &cfg, NULL), 0);
}

static void *root_python(void *arg)
{
	peer *p = arg;
	char url[256];
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	rlt_http_reply *r;
	for (int i = 0; i < 5; i++) {
		const char *b = get(c, url_of(p, "/f4k.bin", url, sizeof(url)), 200, 4096, &r);
		check_bytes("f4k.bin", b, 4096, 1);
		assert_int_equal(rlt_http_reply_version(r), 10); /* http.server speaks HTTP/1.0 */
		rlt_http_reply_free(r);
		assert_int_equal(rlt_http_client_open(c), 0); /* so no connection is kept */
	}
	const char *b = get(c, url_of(p, "/big.bin", url, sizeof(url)), 200, 3 << 20, &r);
	check_bytes("big.bin", b, 3 << 20, 2);
	rlt_http_reply_free(r);
	b = get(c, url_of(p, "/", url, sizeof(url)), 200, -1, &r);
	assert_non_null(strstr(b, "small.txt"));
	assert_non_null(strstr(rlt_http_reply_header(r, "content-type"), "text/html"));
	rlt_http_reply_free(r);
	get(c, url_of(p, "/missing", url, sizeof(url)), 404, -1, &r);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

static void test_http_client_against_python_http_server(void **state)
{
	peer *p = *state;
	if (!peer_start_python(p))
		skip();
	assert_int_equal(rlt_run(root_python, p, NULL, NULL), 0);
}

/* ringlet's client against ringlet's server. */
static void *root_ringlet_http(void *arg)
{
	peer *p = arg;
	char url[256];
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	rlt_http_reply *r;
	for (int i = 0; i < 50; i++) {
		const char *b = get(c, url_of(p, "/f4k.bin", url, sizeof(url)), 200, 4096, &r);
		check_bytes("f4k.bin", b, 4096, 1);
		rlt_http_reply_free(r);
	}
	assert_int_equal(rlt_http_client_open(c), 1); /* one keep-alive connection */
	const char *b = get(c, url_of(p, "/big.bin", url, sizeof(url)), 200, 3 << 20, &r);
	check_bytes("big.bin", b, 3 << 20, 2);
	rlt_http_reply_free(r);
	b = get(c, url_of(p, "/plaintext", url, sizeof(url)), 200, 13, &r);
	assert_string_equal(b, "Hello, World!");
	rlt_http_reply_free(r);
	b = get(c, url_of(p, "/json", url, sizeof(url)), 200, -1, &r);
	assert_string_equal(b, "{\"message\":\"Hello world\"}");
	rlt_http_reply_free(r);
	get(c, url_of(p, "/missing", url, sizeof(url)), 404, -1, &r);
	rlt_http_reply_free(r);
	rlt_http_client_request head = {.method = "HEAD",
					.url = url_of(p, "/small.txt", url, sizeof(url))};
	assert_int_equal(rlt_http_fetch(c, &head, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	assert_string_equal(rlt_http_reply_header(r, "content-length"), "12");
	rlt_http_reply_free(r);
	/* Still the one connection: every response ended where it said. */
	assert_int_equal(rlt_http_client_open(c), 1);

	/* 50 tasks on both workers. */
	many m = {.c = c, .url = url_of(p, "/f4k.bin", url, sizeof(url))};
	rlt_task *t[50];
	for (int i = 0; i < 50; i++)
		t[i] = rlt_test_spawn_on(fetch_f4k, &m, (unsigned)i);
	for (int i = 0; i < 50; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	assert_int_equal(atomic_load(&m.ok), 500);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

static peer ringlet_peer;

static void test_http_client_against_ringlet_http(void **state)
{
	peer *p = *state;
	if (!peer_start_ringlet_http(p, RLT_EXAMPLES_DIR "/../tools/ringlet-http"))
		skip();
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_ringlet_http, p, &cfg, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate_setup_teardown(test_http_client_against_nginx, NULL,
						     peer_teardown, &nginx_peer),
	    cmocka_unit_test_prestate_setup_teardown(test_http_client_against_python_http_server,
						     NULL, peer_teardown, &python_peer),
	    cmocka_unit_test_prestate_setup_teardown(test_http_client_against_ringlet_http, NULL,
						     peer_teardown, &ringlet_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
