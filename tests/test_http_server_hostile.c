/* Bad and hostile input: each malformed or oversized request gets its
 * documented status and a close (or just a close), timeouts trip with the
 * short values set through the options, and a good request on another
 * connection is served all along. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "http_server_test.h"

#include <sys/socket.h>

static int h_hello(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	return rlt_http_response_send(res, "Hello, World!", 13);
}

/* Reads the body, answers its length. */
static int h_len(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	const void *d;
	size_t n;
	int rc = rlt_http_request_body(req, &d, &n);
	if (rc < 0)
		return rc;
	char out[32];
	int k = snprintf(out, sizeof(out), "%zu", n);
	return rlt_http_response_send(res, out, (size_t)k);
}

static rlt_http_router *router(void)
{
	rlt_http_router *r = rlt_http_router_new();
	assert_non_null(r);
	assert_int_equal(rlt_http_router_add(r, "GET", "/hello", 0, h_hello, NULL), 0);
	assert_int_equal(rlt_http_router_add(r, "POST", "/len", 0, h_len, NULL), 0);
	return r;
}

/* Limits small enough to trip quickly. */
static rlt_http_server_opts small_opts(rlt_http_router *r)
{
	return (rlt_http_server_opts){
	    .handler = rlt_http_router_handle,
	    .arg = r,
	    .header_limit = 2048,
	    .max_headers = 20,
	    .body_limit = 4096,
	    .drain_limit = 1024,
	    .header_timeout = 200 * RLT_NSEC_PER_MSEC,
	    .idle_timeout = 200 * RLT_NSEC_PER_MSEC,
	    .io_timeout = 200 * RLT_NSEC_PER_MSEC,
	};
}

struct bad {
	const char *name;
	const char *req; /* NULL: built by the test */
	size_t len;	 /* 0: strlen */
	int status;	 /* 0: closed without a response */
	bool shut_wr;	 /* the client stops sending after req */
};

static const struct bad corpus[] = {
    {"bad request line", "GARBAGE\r\n\r\n", 0, 400, false},
    {"no version", "GET /hello\r\n\r\n", 0, 400, false},
    {"bad version", "GET /hello HTTP/1.x\r\n\r\n", 0, 400, false},
    {"space in target", "GET /a b HTTP/1.1\r\n\r\n", 0, 400, false},
    {"bad method chars", "G@T /hello HTTP/1.1\r\n\r\n", 0, 400, false},
    {"header without colon", "GET /hello HTTP/1.1\r\nNoColon\r\n\r\n", 0, 400, false},
    {"space before colon", "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400, false},
    {"header folding", "GET /hello HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n", 0, 400, false},
    {"NUL in header value", "GET /hello HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 33, 400, false},
    {"NUL in target", "GET /he\0llo HTTP/1.1\r\n\r\n", 24, 400, false},
    {"bare LF line ends", "GET /hello HTTP/1.1\nX: a\n\n", 0, 400, false},
    {"duplicate Content-Length",
     "POST /len HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, 400, false},
    {"Content-Length with chunked",
     "POST /len HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: "
     "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
     0, 400, false},
    {"negative Content-Length", "POST /len HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0, 400, false},
    {"overflowing Content-Length",
     "POST /len HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 0, 400, false},
    {"bad chunk size",
     "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 0, 400,
     false},
    {"chunk longer than its size",
     "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n", 0, 400,
     false},
    {"chunked not last", "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 400,
     false},
    {"body over the limit (Content-Length)", "POST /len HTTP/1.1\r\nContent-Length: 5000\r\n\r\n",
     0, 413, false},
    {"pipeline cut in the middle", "GET /hello HTTP/1.1\r\n\r\nGET /hel", 0, 200, true},
    {"body cut short", "POST /len HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0, 500, true},
    {"empty connection", "", 0, 0, true},
    {"upgrade (not switched: answered, closed)",
     "GET /hello HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, 200, false},
    {"HTTP/2 version", "GET /hello HTTP/2.0\r\n\r\n", 0, 505, false},
};

struct ctx {
	int port;
};

/* A good request on a fresh connection: the server is still fine. */
static void still_serving(int port)
{
	ht_expect(port, "GET /hello HTTP/1.1\r\n\r\n", 200);
}

/* Send b, expect its status (or none) and then the close. */
static void expect_bad(int port, const char *name, const char *req, size_t len, int status,
		       bool shut_wr)
{
	struct ht_conn *c = ht_open(port);
	if (len)
		ht_send(c->fd, req, len);
	if (shut_wr)
		shutdown(c->fd, SHUT_WR);
	struct ht_resp r;
	bool got = ht_read_resp(c, &r, false);
	if (status == 0) {
		if (got)
			fail_msg("%s: got %d, want a close", name, r.status);
	} else {
		if (!got)
			fail_msg("%s: closed, want %d", name, status);
		if (r.status != status)
			fail_msg("%s: got %d, want %d", name, r.status, status);
		ht_resp_free(&r);
		if (!ht_eof(c))
			fail_msg("%s: not closed after %d", name, status);
	}
	ht_close(c);
	still_serving(port);
}

static void *corpus_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = router();
	rlt_http_server_opts o = small_opts(rt);
	int port;
	rlt_http_server *s = ht_start(&o, &port);
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		const struct bad *b = &corpus[i];
		expect_bad(port, b->name, b->req, b->len ? b->len : strlen(b->req), b->status,
			   b->shut_wr);
	}

	/* Built ones: a head over header_limit, too many headers, a chunked
	 * body over body_limit. */
	char big[8192];
	int n = snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', 3000);
	n += 3000;
	n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
	expect_bad(port, "head over the limit", big, (size_t)n, 431, false);
	/* The same without its end: 431 as soon as the limit passes. */
	expect_bad(port, "endless head", big, 2500, 431, false);

	n = snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\n");
	for (int i = 0; i < 25; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "X-%d: v\r\n", i);
	n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
	expect_bad(port, "too many headers", big, (size_t)n, 431, false);

	n = snprintf(big, sizeof(big), "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		n += snprintf(big + n, sizeof(big) - (size_t)n, "400\r\n");
		memset(big + n, 'b', 1024);
		n += 1024;
		n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
	}
	n += snprintf(big + n, sizeof(big) - (size_t)n, "0\r\n\r\n");
	expect_bad(port, "chunked body over the limit", big, (size_t)n, 413, false);

	/* A body the handler does not read and that is over drain_limit:
	 * the response, then the close. */
	n = snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nContent-Length: 3000\r\n\r\n");
	memset(big + n, 'c', 3000);
	expect_bad(port, "undrained body", big, (size_t)n + 3000, 200, false);

	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_malformed_and_oversized_requests(void **state)
{
	(void)state;
	rlt_test_run(corpus_root, NULL);
}

/* Slowloris: a head trickling in one byte at a time gets 408 and a close
 * after header_timeout, while another connection is served at once. */
static void *slowloris_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = router();
	rlt_http_server_opts o = small_opts(rt);
	int port;
	rlt_http_server *s = ht_start(&o, &port);
	struct ht_conn *c = ht_open(port);
	const char *head = "GET /hello HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	uint64_t t0 = rlt_now();
	ssize_t w = 0;
	for (size_t i = 0; head[i] && w >= 0; i++) {
		w = rlt_send(c->fd, head + i, 1, 0);
		still_serving(port);
		rlt_sleep(20 * RLT_NSEC_PER_MSEC);
		if (rlt_now() - t0 > RLT_NSEC_PER_SEC)
			break;
	}
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 408);
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 200 * RLT_NSEC_PER_MSEC);
	assert_true(took < 2 * RLT_NSEC_PER_SEC);
	ht_close(c);

	/* Idle keep-alive: closed without a response after idle_timeout. */
	c = ht_open(port);
	ht_sends(c->fd, "GET /hello HTTP/1.1\r\n\r\n");
	assert_true(ht_read_resp(c, &r, false));
	ht_resp_free(&r);
	t0 = rlt_now();
	assert_true(ht_eof(c));
	took = rlt_now() - t0;
	assert_true(took >= 150 * RLT_NSEC_PER_MSEC);
	assert_true(took < 2 * RLT_NSEC_PER_SEC);
	ht_close(c);

	/* A body that stops coming: the handler's read fails -ETIMEDOUT
	 * after io_timeout; it passes that on: 500 and close. */
	c = ht_open(port);
	ht_sends(c->fd, "POST /len HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 500);
	ht_resp_free(&r);
	assert_true(ht_eof(c));
	ht_close(c);

	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_slowloris_gets_408_idle_closes(void **state)
{
	(void)state;
	rlt_test_run(slowloris_root, NULL);
}

/* The default limits are the documented ones. */
static void *defaults_root(void *arg)
{
	(void)arg;
	rlt_http_router *rt = router();
	int port;
	rlt_http_server *s =
	    ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = rt}, &port);
	/* 8 KiB of head: served; 9 KiB: 431. */
	char *big = malloc(16384);
	int n = snprintf(big, 16384, "GET /hello HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', 8000);
	n += 8000;
	n += snprintf(big + n, 16384 - (size_t)n, "\r\n\r\n");
	struct ht_conn *c = ht_open(port);
	ht_send(c->fd, big, (size_t)n);
	struct ht_resp r;
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	ht_resp_free(&r);
	ht_close(c);
	n = snprintf(big, 16384, "GET /hello HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', 9000);
	n += 9000;
	n += snprintf(big + n, 16384 - (size_t)n, "\r\n\r\n");
	expect_bad(port, "9 KiB head", big, (size_t)n, 431, false);
	/* 1 MiB body: served; 1 MiB + 1: 413. */
	snprintf(big, 16384, "POST /len HTTP/1.1\r\nContent-Length: %u\r\n\r\n",
		 RLT_HTTP_BODY_LIMIT + 1);
	expect_bad(port, "1 MiB + 1 body", big, strlen(big), 413, false);
	size_t bl = RLT_HTTP_BODY_LIMIT;
	char *body = malloc(bl);
	memset(body, 'z', bl);
	c = ht_open(port);
	snprintf(big, 16384, "POST /len HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", bl);
	ht_sends(c->fd, big);
	ht_send(c->fd, body, bl);
	assert_true(ht_read_resp(c, &r, false));
	assert_int_equal(r.status, 200);
	snprintf(big, 16384, "%zu", bl);
	assert_string_equal(r.body, big);
	ht_resp_free(&r);
	ht_close(c);
	free(body);
	free(big);
	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_default_limits(void **state)
{
	(void)state;
	rlt_test_run(defaults_root, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malformed_and_oversized_requests),
	    cmocka_unit_test(test_slowloris_gets_408_idle_closes),
	    cmocka_unit_test(test_default_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
