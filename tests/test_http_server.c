/* The HTTP server's semantics: requests and responses (and the headers a
 * handler may not set), keep-alive,
 * pipelining, HEAD, 100-continue, chunked both ways, HTTP/1.0, the router,
 * handler failures, client resets, graceful shutdown, serve_fd, and many
 * concurrent keep-alive connections. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "http_server_test.h"

#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int h_hello(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	rlt_http_response_header(res, "Content-Type", "text/plain");
	return rlt_http_response_send(res, "Hello, World!", 13);
}

/* The target, method and version, and a header if asked (?h=name). */
static int h_echo(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char out[1024];
	rlt_http_str t = rlt_http_request_target(req);
	rlt_http_str q = rlt_http_request_query(req);
	const char *hv = NULL;
	if (q.len > 2 && memcmp(q.p, "h=", 2) == 0) {
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)q.len - 2, q.p + 2);
		hv = rlt_http_request_header(req, name);
	}
	int n = snprintf(out, sizeof(out), "%s %.*s %d %s", rlt_http_request_method(req),
			 (int)t.len, t.p, rlt_http_request_version(req), hv ? hv : "-");
	return rlt_http_response_send(res, out, (size_t)n);
}

/* The body's length and a checksum, read whole (?whole) or in pieces. */
static int h_len(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	uint64_t sum = 0;
	size_t total = 0;
	rlt_http_str q = rlt_http_request_query(req);
	if (q.len == 5 && memcmp(q.p, "whole", 5) == 0) {
		const void *d;
		size_t n;
		int rc = rlt_http_request_body(req, &d, &n);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++)
			sum = sum * 31 + ((const unsigned char *)d)[i];
		total = n;
	} else {
		char buf[777];
		ssize_t n;
		while ((n = rlt_http_request_read(req, buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++)
				sum = sum * 31 + (unsigned char)buf[i];
			total += (size_t)n;
		}
		if (n < 0)
			return (int)n;
	}
	char out[64];
	int k = snprintf(out, sizeof(out), "%zu %llu", total, (unsigned long long)sum);
	return rlt_http_response_send(res, out, (size_t)k);
}

/* Reads a large body in pieces, then a header: the head stays valid
 * while the body moves through the read buffer. */
static int h_body_then_header(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char buf[1000];
	ssize_t n;
	size_t total = 0;
	while ((n = rlt_http_request_read(req, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	if (n < 0)
		return (int)n;
	const char *tag = rlt_http_request_header(req, "X-Tag");
	rlt_http_str p = rlt_http_request_path(req);
	char out[128];
	int k = snprintf(out, sizeof(out), "%zu %s %.*s", total, tag ? tag : "-", (int)p.len, p.p);
	return rlt_http_response_send(res, out, (size_t)k);
}

static int h_stream(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	for (int i = 0; i < 3; i++) {
		char piece[16];
		int n = snprintf(piece, sizeof(piece), "piece%d;", i);
		int rc = rlt_http_response_write(res, piece, (size_t)n);
		if (rc < 0)
			return rc;
	}
	return 0; /* the server ends the body */
}

static int h_fail(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)res;
	(void)arg;
	return -EIO;
}

static int h_nocontent(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	rlt_http_response_status(res, 204);
	return 0;
}

/* Shared with the slow and reset handlers. */
static struct {
	rlt_sem *entered; /* one permit per slow handler that started */
	_Atomic int reset_err;
	rlt_event *reset_done;
} g;

static int h_slow(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	rlt_sem_release(g.entered);
	int sr = rlt_sleep(200 * RLT_NSEC_PER_MSEC);
	if (sr < 0)
		return sr;
	return rlt_http_response_send(res, "slow done", 9);
}

/* Streams until the client's reset makes a write fail. */
static int h_reset(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	static char blob[64 * 1024];
	int rc = 0;
	for (int i = 0; i < 100000 && rc == 0; i++)
		rc = rlt_http_response_write(res, blob, sizeof(blob));
	atomic_store(&g.reset_err, rc);
	rlt_event_set(g.reset_done);
	return rc;
}

/* rlt_http_response_header's refusals, one per bad input, in the body;
 * then two good headers, which must arrive as set. */
static int h_hdrcheck(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	static const char *const bad[][2] = {
	    {"", "v"},
	    {"X-A\r\nEvil", "v"},
	    {"X-A:", "v"},
	    {"X A", "v"},
	    {"X\tA", "v"},
	    {"X-A", "v\r\nSet-Cookie: x"},
	    {"X-A", "v\n"},
	    {"content-length", "5"},
	    {"Transfer-Encoding", "chunked"},
	    {"CONNECTION", "close"},
	    {"Date", "x"},
	    {"server", "x"},
	};
	char out[256];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%d,",
				      rlt_http_response_header(res, bad[i][0], bad[i][1]));
	if (rlt_http_response_header(res, NULL, "v") != -EINVAL ||
	    rlt_http_response_header(res, "X-A", NULL) != -EINVAL)
		return -EPROTO;
	int rc = rlt_http_response_header(res, "Content-Type", "text/plain");
	if (rc == 0)
		rc = rlt_http_response_header(res, "X-Long-Name-Of-A-Header",
					      "a value: with colons");
	if (rc < 0)
		return rc;
	return rlt_http_response_send(res, out, n);
}

static rlt_http_router *test_router(void)
{
	rlt_http_router *r = rlt_http_router_new();
	assert_non_null(r);
	assert_int_equal(rlt_http_router_add(r, "GET", "/hello", 0, h_hello, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, NULL, "/echo", RLT_HTTP_PREFIX, h_echo, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "POST", "/len", 0, h_len, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/stream", 0, h_stream, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "POST", "/bodyhdr", 0, h_body_then_header, NULL),
			 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/fail", 0, h_fail, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/nocontent", 0, h_nocontent, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/slow", 0, h_slow, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/reset", 0, h_reset, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "DELETE", "/hello", 0, h_hello, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "GET", "/hdrcheck", 0, h_hdrcheck, NULL), 0);
	return r;
}

/* Run body(port) against a fresh server with the test router. */
typedef void (*ht_body)(int port);
struct ht_run {
	ht_body body;
	rlt_http_server_opts opts;
};

static void *run_root(void *arg)
{
	struct ht_run *run = arg;
	rlt_http_router *r = test_router();
	run->opts.handler = rlt_http_router_handle;
	run->opts.arg = r;
	int port;
	rlt_http_server *s = ht_start(&run->opts, &port);
	run->body(port);
	ht_stop(s);
	rlt_http_router_free(r);
	return NULL;
}

static void run_with(ht_body body, const rlt_http_server_opts *o)
{
	struct ht_run run = {.body = body};
	if (o)
		run.opts = *o;
	rlt_test_run(run_root, &run);
}

/* The same under the fault policy: short transfers, EINTR and EAGAIN
 * injected into the server's and the client's I/O. */
static void run_with_faults(ht_body body)
{
	struct ht_run run = {.body = body};
	rlt_test_run_faults("seed=7,rate=0.3,errors=EINTR+EAGAIN,short=1", run_root, &run);
}

/* ---- the tests ---- */

static void basic_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "Hello, World!");
	char v[128];
	assert_true(ht_header(&r, "Content-Length", v, sizeof(v)));
	assert_string_equal(v, "13");
	assert_true(ht_header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain");
	assert_true(ht_header(&r, "Server", v, sizeof(v)));
	assert_string_equal(v, "ringlet");
	assert_true(ht_header(&r, "Date", v, sizeof(v)));
	assert_int_equal(strlen(v), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
	assert_string_equal(v + 25, " GMT");
	assert_false(ht_header(&r, "Connection", v, sizeof(v)));
	ht_resp_free(&r);
	ht_close(c);
}

static void test_get_basic(void **state)
{
	(void)state;
	run_with(basic_body, NULL);
}

static void echo_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "GET /echo/a%20b?h=X-Thing HTTP/1.1\r\nHost: x\r\n"
			"x-thing:   spaced value  \r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "GET /echo/a%20b?h=X-Thing 11 spaced value");
	ht_resp_free(&r);
	ht_close(c);
}

static void test_request_fields_and_headers(void **state)
{
	(void)state;
	run_with(echo_body, NULL);
}

static void hdrcheck_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "GET /hdrcheck HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	char want[128];
	size_t n = 0;
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%d,", -EINVAL);
	assert_string_equal(r.body, want);
	char v[128];
	assert_true(ht_header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/plain");
	assert_true(ht_header(&r, "x-long-name-of-a-header", v, sizeof(v)));
	assert_string_equal(v, "a value: with colons");
	assert_false(ht_header(&r, "Set-Cookie", v, sizeof(v)));
	assert_true(ht_header(&r, "Content-Length", v, sizeof(v)));
	assert_int_equal(atoi(v), (int)n);
	ht_resp_free(&r);
	ht_close(c);
}

static void test_response_header_refuses_bad_names_and_values(void **state)
{
	(void)state;
	run_with(hdrcheck_body, NULL);
}

static void keepalive_body(int port)
{
	struct ht_conn *c = ht_open(port);
	for (int i = 0; i < 5; i++) {
		char req[128], want[128];
		snprintf(req, sizeof(req), "GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
		snprintf(want, sizeof(want), "GET /echo/%d 11 -", i);
		ht_sends(c->fd, req);
		struct ht_resp r;
		assert_true(ht_read_resp(c, &r, false));
		assert_string_equal(r.body, want);
		ht_resp_free(&r);
	}
	ht_close(c);
}

static void test_keepalive_serves_many_requests(void **state)
{
	(void)state;
	run_with(keepalive_body, NULL);
}

static void pipeline_body(int port)
{
	struct ht_conn *c = ht_open(port);
	char all[8192];
	size_t n = 0;
	for (int i = 0; i < 40; i++) {
		if (i == 7) /* one with a body in the middle */
			n += (size_t)snprintf(all + n, sizeof(all) - n,
					      "POST /len HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
		else
			n += (size_t)snprintf(all + n, sizeof(all) - n,
					      "GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
	}
	ht_send(c->fd, all, n);
	for (int i = 0; i < 40; i++) {
		struct ht_resp r;
		assert_true(ht_read_resp(c, &r, false));
		char want[64];
		if (i == 7)
			snprintf(want, sizeof(want), "3 %llu",
				 (unsigned long long)(('a' * 31ull + 'b') * 31 + 'c'));
		else
			snprintf(want, sizeof(want), "GET /echo/%d 11 -", i);
		assert_string_equal(r.body, want);
		ht_resp_free(&r);
	}
	ht_close(c);
}

static void test_pipelined_requests_answered_in_order(void **state)
{
	(void)state;
	run_with(pipeline_body, NULL);
}

static void head_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, true));
	assert_int_equal(r.status, 200);
	char v[32];
	assert_true(ht_header(&r, "Content-Length", v, sizeof(v)));
	assert_string_equal(v, "13");
	ht_resp_free(&r);
	/* No body bytes came: the next response starts right here. */
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "Hello, World!");
	ht_resp_free(&r);
	ht_close(c);
}

static void test_head_has_length_and_no_body(void **state)
{
	(void)state;
	run_with(head_body, NULL);
}

static void http10_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "GET /hello HTTP/1.0\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "Hello, World!");
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);

	/* 1.0 with keep-alive asked stays open. */
	c = ht_open(port);
	ht_sends(c->fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	char v[32];
	assert_true(ht_header(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "keep-alive");
	ht_resp_free(&r);
	ht_sends(c->fd, "GET /hello HTTP/1.0\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);

	/* 1.1 with Connection: close. */
	c = ht_open(port);
	ht_sends(c->fd, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	assert_true(ht_header(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);
}

static void test_http10_and_connection_close(void **state)
{
	(void)state;
	run_with(http10_body, NULL);
}

static void chunked_body(int port)
{
	struct ht_conn *c = ht_open(port);
	/* Chunked upload, in pieces and with an extension and a trailer. */
	ht_sends(c->fd, "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
	rlt_sleep(5 * RLT_NSEC_PER_MSEC);
	ht_sends(c->fd, "2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	unsigned long long want = 0;
	for (const char *p = "abcde"; *p; p++)
		want = want * 31 + (unsigned char)*p;
	char ws[64];
	snprintf(ws, sizeof(ws), "5 %llu", want);
	assert_string_equal(r.body, ws);
	ht_resp_free(&r);

	/* A large chunked body, read whole. */
	size_t big = 300 * 1024;
	char *buf = malloc(big);
	want = 0;
	for (size_t i = 0; i < big; i++) {
		buf[i] = (char)('a' + i % 26);
		want = want * 31 + (unsigned char)buf[i];
	}
	ht_sends(c->fd, "POST /len?whole HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (size_t off = 0; off < big; off += 10000) {
		size_t n = big - off < 10000 ? big - off : 10000;
		char hdr[32];
		snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
		ht_sends(c->fd, hdr);
		ht_send(c->fd, buf + off, n);
		ht_sends(c->fd, "\r\n");
	}
	ht_sends(c->fd, "0\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	snprintf(ws, sizeof(ws), "%zu %llu", big, want);
	assert_string_equal(r.body, ws);
	ht_resp_free(&r);
	free(buf);

	/* A chunked response. */
	ht_sends(c->fd, "GET /stream HTTP/1.1\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	assert_true(r.chunked);
	assert_string_equal(r.body, "piece0;piece1;piece2;");
	ht_resp_free(&r);
	/* To HTTP/1.0: unframed, then close. */
	ht_sends(c->fd, "GET /stream HTTP/1.0\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	assert_false(r.chunked);
	assert_string_equal(r.body, "piece0;piece1;piece2;");
	ht_resp_free(&r);
	ht_close(c);
}

static void body_head_body(int port)
{
	struct ht_conn *c = ht_open(port);
	size_t big = 200 * 1024;
	char *b = malloc(big);
	memset(b, 'q', big);
	char head[256];
	/* Twice on one connection, the second pipelined right behind the
	 * first's body. */
	int n = snprintf(head, sizeof(head),
			 "POST /bodyhdr HTTP/1.1\r\nX-Tag: tag-one\r\nContent-Length: %zu\r\n\r\n",
			 big);
	ht_send(c->fd, head, (size_t)n);
	ht_send(c->fd, b, big);
	n = snprintf(
	    head, sizeof(head),
	    "POST /bodyhdr HTTP/1.1\r\nX-Tag: tag-two\r\nTransfer-Encoding: chunked\r\n\r\n");
	ht_send(c->fd, head, (size_t)n);
	for (int i = 0; i < 50; i++) {
		ht_sends(c->fd, "400\r\n");
		ht_send(c->fd, b, 1024);
		ht_sends(c->fd, "\r\n");
	}
	ht_sends(c->fd, "0\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	snprintf(head, sizeof(head), "%zu tag-one /bodyhdr", big);
	assert_string_equal(r.body, head);
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "51200 tag-two /bodyhdr");
	ht_resp_free(&r);
	free(b);
	ht_close(c);
}

static void test_head_stays_valid_while_body_is_read(void **state)
{
	(void)state;
	run_with(body_head_body, NULL);
}

/* A Unix socket listener (one listener; its path removed at shutdown). */
static char unix_path[128];
static void *unix_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = test_router();
	char as[160];
	snprintf(as, sizeof(as), "unix:%s", unix_path);
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, as), 0);
	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
	    .addrs = &a, .naddrs = 1, .handler = rlt_http_router_handle, .arg = rt});
	assert_non_null(s);
	for (int i = 0; i < 3; i++) {
		int fd = rlt_net_connect(&a, HT_STEP_NS, 0);
		assert_true(fd >= 0);
		struct ht_conn *c = malloc(sizeof(*c));
		c->fd = fd;
		c->len = 0;
		ht_sends(fd, "GET /hello HTTP/1.1\r\n\r\n");
		struct ht_resp r;
		assert_true(ht_read_resp(c, &r, false));
		assert_string_equal(r.body, "Hello, World!");
		ht_resp_free(&r);
		ht_close(c);
	}
	ht_stop(s);
	assert_int_equal(access(unix_path, F_OK), -1);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_unix_socket_listener(void **state)
{
	(void)state;
	char dir[] = "/tmp/rlt-http-unix-XXXXXX";
	assert_non_null(mkdtemp(dir));
	snprintf(unix_path, sizeof(unix_path), "%s/s", dir);
	rlt_test_run(unix_root, NULL);
	rmdir(dir);
}

static void test_chunked_both_ways(void **state)
{
	(void)state;
	run_with(chunked_body, NULL);
}

static void continue_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "POST /len HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
	char line[128];
	assert_true(ht_line(c, line, sizeof(line)));
	assert_string_equal(line, "HTTP/1.1 100 Continue");
	assert_true(ht_line(c, line, sizeof(line)));
	assert_string_equal(line, "");
	ht_sends(c->fd, "wxyz");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	assert_memory_equal(r.body, "4 ", 2);
	ht_resp_free(&r);

	/* A handler that does not read the body: no 100, a response, close. */
	ht_sends(c->fd, "GET /hello HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	char v[32];
	assert_true(ht_header(&r, "Connection", v, sizeof(v)));
	assert_string_equal(v, "close");
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);
}

static void test_expect_100_continue(void **state)
{
	(void)state;
	run_with(continue_body, NULL);
}

static void router_body(int port)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd,
		 "GET /nothing HTTP/1.1\r\n\r\nPUT /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
		 "DELETE /hello HTTP/1.1\r\n\r\nGET /nocontent HTTP/1.1\r\n\r\n"
		 "GET /hello HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 404);
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 405);
	char v[64];
	assert_true(ht_header(&r, "Allow", v, sizeof(v)));
	assert_string_equal(v, "GET, DELETE");
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 204);
	assert_false(ht_header(&r, "Content-Length", v, sizeof(v)));
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "Hello, World!");
	ht_resp_free(&r);
	ht_close(c);
}

static void test_router_404_405_204(void **state)
{
	(void)state;
	run_with(router_body, NULL);
}

static void fail_body(int port)
{
	struct ht_conn *c = ht_open(port);
	/* 500, and the connection goes on; also with a body the handler
	 * left unread (drained). */
	ht_sends(c->fd, "GET /fail HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 500);
	ht_resp_free(&r);
	ht_sends(c->fd, "GET /fail HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345");
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 500);
	ht_resp_free(&r);
	ht_sends(c->fd, "GET /hello HTTP/1.1\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	ht_resp_free(&r);
	ht_close(c);
}

static void test_failing_handler_gets_500_and_keeps_connection(void **state)
{
	(void)state;
	run_with(fail_body, NULL);
}

static void reset_body(int port)
{
	int fd = ht_connect(port);
	ht_sends(fd, "GET /reset HTTP/1.1\r\n\r\n");
	char buf[4096];
	assert_true(rlt_recv(fd, buf, sizeof(buf), 0) > 0);
	struct linger lg = {1, 0}; /* close with a reset */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	rlt_close(fd);
	assert_int_equal(rlt_event_wait_timeout(g.reset_done, HT_STEP_NS), 0);
	int err = atomic_load(&g.reset_err);
	if (err != -ECONNRESET && err != -EPIPE)
		fail_msg("handler's write after the reset returned %d", err);
}

static void test_client_reset_fails_handler_write(void **state)
{
	(void)state;
	g.reset_done = rlt_event_new();
	run_with(reset_body, NULL);
	rlt_event_free(g.reset_done);
}

static void test_under_injected_faults(void **state)
{
	(void)state;
	run_with_faults(keepalive_body);
	run_with_faults(pipeline_body);
	run_with_faults(head_body);
	run_with_faults(chunked_body);
	run_with_faults(continue_body);
	run_with_faults(fail_body);
}

/* Shutdown with requests in flight: each gets its response (with
 * Connection: close); an idle keep-alive connection is closed. */
struct inflight {
	int port;
	int status;
	char conn_hdr[32];
	char body[32];
};

static void *inflight_client(void *arg)
{
	struct inflight *f = arg;
	struct ht_conn *c = ht_open(f->port);
	ht_sends(c->fd, "GET /slow HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	f->status = r.status;
	ht_header(&r, "Connection", f->conn_hdr, sizeof(f->conn_hdr));
	snprintf(f->body, sizeof(f->body), "%s", r.body);
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);
	return NULL;
}

static void *shutdown_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = test_router();
	int port;
	rlt_http_server *s =
	    ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = rt}, &port);
	struct ht_conn *idle = ht_open(port);
	ht_sends(idle->fd, "GET /hello HTTP/1.1\r\n\r\n");
	struct ht_resp r;
	assert_true(ht_read_resp(idle, &r, false));
	ht_resp_free(&r);

	enum { N = 20 };
	struct inflight f[N];
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		f[i] = (struct inflight){.port = port};
		t[i] = rlt_spawn(inflight_client, &f[i], NULL);
		assert_non_null(t[i]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(rlt_sem_acquire_timeout(g.entered, HT_STEP_NS), 0);
	uint64_t t0 = rlt_now();
	ht_stop(s);
	uint64_t took = rlt_now() - t0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(f[i].status, 200);
		assert_string_equal(f[i].body, "slow done");
		assert_string_equal(f[i].conn_hdr, "close");
	}
	assert_true(ht_eof(idle));
	ht_close(idle);
	/* Bounded by the handlers (200 ms), not by the grace period (10 s). */
	assert_true(took < 5 * RLT_NSEC_PER_SEC);
	/* Nothing listens any more. */
	rlt_addr a;
	char as[64];
	snprintf(as, sizeof(as), "127.0.0.1:%d", port);
	rlt_addr_parse(&a, as);
	assert_true(rlt_net_connect(&a, HT_STEP_NS, 0) < 0);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_shutdown_finishes_inflight_requests(void **state)
{
	(void)state;
	g.entered = rlt_sem_new(0);
	rlt_test_run(shutdown_root, NULL);
	rlt_sem_free(g.entered);
}

/* Past the grace period, handlers are cancelled and wait returns. */
static void *grace_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = test_router();
	int port;
	rlt_http_server *s = ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle,
							      .arg = rt,
							      .grace = 50 * RLT_NSEC_PER_MSEC},
				      &port);
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, "GET /slow HTTP/1.1\r\n\r\n");
	assert_int_equal(rlt_sem_acquire_timeout(g.entered, HT_STEP_NS), 0);
	uint64_t t0 = rlt_now();
	ht_stop(s);
	assert_true(rlt_now() - t0 < 190 * RLT_NSEC_PER_MSEC);
	/* The cancelled handler's response never completes. */
	struct ht_resp r;
	if (ht_read_resp(c, &r, false)) {
		assert_int_not_equal(r.status, 200);
		ht_resp_free(&r);
	}
	ht_close(c);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_shutdown_cancels_after_grace(void **state)
{
	(void)state;
	g.entered = rlt_sem_new(0);
	rlt_test_run(grace_root, NULL);
	rlt_sem_free(g.entered);
}

/* serve_fd over a socketpair, no listener. */
static void *servefd_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = test_router();
	rlt_http_server *s = rlt_http_server_start(
	    &(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = rt});
	assert_non_null(s);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	const char req[] = "GET /hello HTTP/1.1\r\n\r\nGET /echo/x HTTP/1.1\r\n\r\n";
	assert_int_equal(write(sv[1], req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(rlt_http_server_serve_fd(s, sv[0]), 0);
	struct ht_conn *c = malloc(sizeof(*c));
	c->fd = sv[1];
	c->len = 0;
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "Hello, World!");
	ht_resp_free(&r);
	assert_true(ht_read_resp(c, &r, false));
	assert_string_equal(r.body, "GET /echo/x 11 -");
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);
	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_serve_fd_over_socketpair(void **state)
{
	(void)state;
	rlt_test_run(servefd_root, NULL);
}

/* Many concurrent keep-alive connections, every response byte checked. */
struct many {
	int port, id;
	int ok;
};

static void *many_client(void *arg)
{
	struct many *m = arg;
	struct ht_conn *c = ht_open(m->port);
	for (int k = 0; k < 3; k++) {
		char req[128], want[128];
		snprintf(req, sizeof(req), "GET /echo/%d-%d HTTP/1.1\r\nHost: x\r\n\r\n", m->id, k);
		snprintf(want, sizeof(want), "GET /echo/%d-%d 11 -", m->id, k);
		ht_sends(c->fd, req);
		struct ht_resp r;
		assert_true(ht_read_resp(c, &r, false));
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body_len, strlen(want));
		assert_memory_equal(r.body, want, r.body_len);
		ht_resp_free(&r);
		/* All connections are open together before the next round. */
		if (k == 0)
			rlt_sleep(50 * RLT_NSEC_PER_MSEC);
	}
	ht_close(c);
	m->ok = 1;
	return NULL;
}

static void *many_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = test_router();
	int port;
	rlt_http_server *s =
	    ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = rt}, &port);
	int n = RLT_TEST_SCALE(1000);
	struct many *m = calloc((size_t)n, sizeof(*m));
	rlt_task **t = calloc((size_t)n, sizeof(*t));
	for (int i = 0; i < n; i++) {
		m[i] = (struct many){.port = port, .id = i};
		rlt_spawn_opts so = {.stack_size = 64 * 1024};
		t[i] = rlt_spawn(many_client, &m[i], &so);
		assert_non_null(t[i]);
	}
	int ok = 0;
	for (int i = 0; i < n; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		ok += m[i].ok;
	}
	assert_int_equal(ok, n);
	free(m);
	free(t);
	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_1000_concurrent_keepalive_connections(void **state)
{
	(void)state;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2200 && rl.rlim_max >= 2200) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rlt_test_run(many_root, NULL);
}

/* The shared acceptor spreads connections over the workers too. */
static void shared_body(int port)
{
	for (int i = 0; i < 8; i++)
		ht_expect(port, "GET /hello HTTP/1.1\r\n\r\n", 200);
}

static void test_shared_acceptor(void **state)
{
	(void)state;
	run_with(shared_body, &(rlt_http_server_opts){.shared_acceptor = true, .server_name = ""});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_basic),
	    cmocka_unit_test(test_request_fields_and_headers),
	    cmocka_unit_test(test_response_header_refuses_bad_names_and_values),
	    cmocka_unit_test(test_keepalive_serves_many_requests),
	    cmocka_unit_test(test_pipelined_requests_answered_in_order),
	    cmocka_unit_test(test_head_has_length_and_no_body),
	    cmocka_unit_test(test_http10_and_connection_close),
	    cmocka_unit_test(test_chunked_both_ways),
	    cmocka_unit_test(test_head_stays_valid_while_body_is_read),
	    cmocka_unit_test(test_unix_socket_listener),
	    cmocka_unit_test(test_expect_100_continue),
	    cmocka_unit_test(test_router_404_405_204),
	    cmocka_unit_test(test_failing_handler_gets_500_and_keeps_connection),
	    cmocka_unit_test(test_client_reset_fails_handler_write),
	    cmocka_unit_test(test_under_injected_faults),
	    cmocka_unit_test(test_shutdown_finishes_inflight_requests),
	    cmocka_unit_test(test_shutdown_cancels_after_grace),
	    cmocka_unit_test(test_serve_fd_over_socketpair),
	    cmocka_unit_test(test_1000_concurrent_keepalive_connections),
	    cmocka_unit_test(test_shared_acceptor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
