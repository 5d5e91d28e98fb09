/* The HTTP client against a scripted server (tests/http_client_srv.h):
 * body framings (Content-Length, chunked in pieces, to the connection's
 * end, a head sent byte by byte, interim 1xx), responses cut short
 * (-EPIPE, never truncated data), malformed ones (-EBADMSG), limits
 * (-EMSGSIZE), time limits (-ETIMEDOUT), the retry of an idempotent request
 * on a pooled connection the server had closed, redirects, and what the
 * client refuses to send. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/http_client_srv.h"

#include <ringlet/http_client.h>

static void expect_status_body(rlt_http_client *c, const srv *s, const char *path, int status,
			       const char *body)
{
	char url[128], got[4096];
	int rc = fetch_text(c, srv_url(s, path, url, sizeof(url)), got, sizeof(got));
	if (rc != status)
		fail_msg("%s: %d, want %d", path, rc, status);
	if (strcmp(got, body) != 0)
		fail_msg("%s: body \"%s\", want \"%s\"", path, got, body);
}

static void expect_error(rlt_http_client *c, const srv *s, const char *path, int err)
{
	char url[128], got[4096];
	int rc = fetch_text(c, srv_url(s, path, url, sizeof(url)), got, sizeof(got));
	if (rc != err)
		fail_msg("%s: %d, want %d", path, rc, err);
}

/* ---- framing ---- */

static void *root_framing(void *arg)
{
	srv s;
	srv_start(&s);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128];

	rlt_http_reply *r;
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/hello", url, sizeof(url)), &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	assert_string_equal(rlt_http_reply_reason(r), "OK");
	assert_int_equal(rlt_http_reply_version(r), 11);
	assert_string_equal(rlt_http_reply_url(r), url);
	assert_int_equal(rlt_http_reply_content_length(r), 5);
	assert_string_equal(rlt_http_reply_header(r, "x-test"), "spaced value");
	assert_string_equal(rlt_http_reply_header(r, "X-EMPTY"), "");
	assert_string_equal(rlt_http_reply_header(r, "content-length"), "5");
	assert_null(rlt_http_reply_header(r, "x-none"));
	assert_int_equal(rlt_http_reply_header_count(r), 3);
	const char *n, *v;
	assert_int_equal(rlt_http_reply_header_at(r, 1, &n, &v), 0);
	assert_string_equal(n, "X-Test");
	assert_string_equal(v, "spaced value");
	assert_int_equal(rlt_http_reply_header_at(r, 3, &n, &v), -ERANGE);
	char small[2];
	assert_int_equal(rlt_http_reply_read(r, small, 2), 2);
	assert_memory_equal(small, "he", 2);
	assert_int_equal(rlt_http_reply_read(r, small, 2), 2);
	assert_int_equal(rlt_http_reply_read(r, small, 2), 1);
	assert_int_equal(rlt_http_reply_read(r, small, 2), 0);
	assert_int_equal(rlt_http_reply_read(r, small, 2), 0);
	rlt_http_reply_free(r);

	expect_status_body(c, &s, "/chunked", 200, "hello world");
	expect_status_body(c, &s, "/bytewise", 201, "abc");
	expect_status_body(c, &s, "/interim", 200, "ok");
	expect_status_body(c, &s, "/204", 204, "");
	expect_status_body(c, &s, "/eof", 200, "until the end");
	expect_status_body(c, &s, "/nothing-here", 404, "not found");

	/* HEAD: no body is read, whatever Content-Length says, and the
	 * connection stays usable. */
	int before = atomic_load(&s.accepted);
	rlt_http_client_request head = {.method = "HEAD",
					.url = srv_url(&s, "/hello", url, sizeof(url))};
	assert_int_equal(rlt_http_fetch(c, &head, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	assert_int_equal(rlt_http_reply_content_length(r), 0);
	assert_int_equal(rlt_http_reply_read(r, small, 2), 0);
	rlt_http_reply_free(r);
	expect_status_body(c, &s, "/hello", 200, "hello");
	assert_int_equal(atomic_load(&s.accepted), before);

	/* A chunked body of 300 chunks read 7 bytes at a time. */
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/bigchunked", url, sizeof(url)), &r),
			 0);
	assert_int_equal(rlt_http_reply_content_length(r), -1);
	size_t total = 0;
	int k = 0, i = 0;
	char buf[7];
	ssize_t got;
	while ((got = rlt_http_reply_read(r, buf, sizeof(buf))) > 0) {
		for (ssize_t j = 0; j < got; j++) {
			int len = 1 + (k * 37) % 999;
			if (buf[j] != (char)('a' + (k + i) % 26))
				fail_msg("chunk %d byte %d", k, i);
			if (++i == len) {
				i = 0;
				k++;
			}
		}
		total += (size_t)got;
	}
	assert_int_equal(got, 0);
	assert_int_equal(k, 300);
	rlt_http_reply_free(r);

	/* 1 MiB + 1: whole under a 2 MiB limit, -EMSGSIZE under 1 MiB
	 * (from the Content-Length, before reading). */
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/big", url, sizeof(url)), &r), 0);
	const char *body;
	assert_int_equal(rlt_http_reply_body(r, 2 << 20, &body), (1 << 20) + 1);
	for (size_t j = 0; j < (1 << 20) + 1; j++)
		if (body[j] != (char)('a' + j % 26))
			fail_msg("big body byte %zu", j);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 1 << 20, &body), -EMSGSIZE);
	rlt_http_reply_free(r);
	/* A chunked body over the limit: known only while reading. */
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/bigchunked", url, sizeof(url)), &r),
			 0);
	assert_int_equal(rlt_http_reply_body(r, 1000, &body), -EMSGSIZE);
	rlt_http_reply_free(r);

	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_decodes_every_framing(void **state)
{
	rlt_test_run(root_framing, NULL);
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	srv s;
	srv_start(&s);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128];

	/* Cut short: never a short body that looks whole. */
	expect_error(c, &s, "/cut", -EPIPE);
	expect_error(c, &s, "/cutchunk", -EPIPE);
	expect_error(c, &s, "/cuthead", -EPIPE);
	rlt_http_reply *r;
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/cut", url, sizeof(url)), &r), 0);
	char buf[200];
	assert_int_equal(rlt_http_reply_read(r, buf, sizeof(buf)), 10);
	assert_int_equal(rlt_http_reply_read(r, buf, sizeof(buf)), -EPIPE);
	assert_int_equal(rlt_http_reply_read(r, buf, sizeof(buf)), -EPIPE); /* sticky */
	rlt_http_reply_free(r);

	/* Malformed. */
	expect_error(c, &s, "/badchunk", -EBADMSG);
	expect_error(c, &s, "/hugechunk", -EBADMSG);
	expect_error(c, &s, "/badstatus", -EBADMSG);
	expect_error(c, &s, "/dupcl", -EBADMSG);
	expect_error(c, &s, "/nul", -EBADMSG);

	/* Limits. */
	expect_error(c, &s, "/bighead", -EMSGSIZE);
	expect_error(c, &s, "/manyheaders", -EMSGSIZE);
	rlt_http_client *roomy = rlt_http_client_new(
	    &(rlt_http_client_opts){.max_headers = 200, .max_header_size = 64 * 1024});
	assert_non_null(roomy);
	expect_status_body(roomy, &s, "/manyheaders", 200, "");
	expect_status_body(roomy, &s, "/bighead", 200, "");
	assert_int_equal(rlt_http_client_free(roomy), 0);

	/* None of that hurt the client: a good request still works, and the
	 * broken connections were closed, not pooled. */
	expect_status_body(c, &s, "/hello", 200, "hello");
	assert_int_equal(rlt_http_client_open(c), 1);

	/* Responses after which a connection must not be reused. */
	int before = atomic_load(&s.accepted);
	expect_status_body(c, &s, "/extra", 200, "ok");	    /* bytes after the body */
	expect_status_body(c, &s, "/connclose", 200, "ok"); /* Connection: close */
	expect_status_body(c, &s, "/http10", 200, "ok");    /* HTTP/1.0 */
	expect_status_body(c, &s, "/hello", 200, "hello");
	assert_int_equal(atomic_load(&s.accepted), before + 3);

	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_cut_short_malformed_and_oversized_responses_fail(void **state)
{
	rlt_test_run(root_errors, NULL);
}

/* ---- time limits ---- */

static void *root_timeouts(void *arg)
{
	srv s;
	srv_start(&s);
	char url[128];
	const uint64_t bound =
	    (rlt_test_sanitized() ? 1500 : 1000) * RLT_NSEC_PER_MSEC; /* the server waits 2 s */

	rlt_http_client *c = rlt_http_client_new(
	    &(rlt_http_client_opts){.first_byte_timeout_ns = 100 * RLT_NSEC_PER_MSEC});
	assert_non_null(c);
	uint64_t t0 = rlt_now();
	rlt_http_reply *r;
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/slow", url, sizeof(url)), &r),
			 -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 100 * RLT_NSEC_PER_MSEC && took < bound);
	/* The first-byte limit does not cover the body. */
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/hello", url, sizeof(url)), &r), 0);
	rlt_http_reply_free(r);
	assert_int_equal(rlt_http_client_free(c), 0);

	/* The whole request's limit covers the body's reads. */
	c = rlt_http_client_new(NULL);
	assert_non_null(c);
	rlt_http_client_request req = {.url = srv_url(&s, "/slowbody", url, sizeof(url)),
				       .timeout_ns = 150 * RLT_NSEC_PER_MSEC};
	t0 = rlt_now();
	assert_int_equal(rlt_http_fetch(c, &req, &r), 0);
	char buf[16];
	assert_int_equal(rlt_http_reply_read(r, buf, sizeof(buf)), 4);
	assert_int_equal(rlt_http_reply_read(r, buf, sizeof(buf)), -ETIMEDOUT);
	took = rlt_now() - t0;
	assert_true(took >= 150 * RLT_NSEC_PER_MSEC && took < bound);
	rlt_http_reply_free(r);

	/* A deadline scope of the caller applies too. */
	rlt_scope sc;
	t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 100 * RLT_NSEC_PER_MSEC), 0);
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/slow", url, sizeof(url)), &r),
			 -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	took = rlt_now() - t0;
	assert_true(took < bound);
	assert_int_equal(rlt_http_client_open(c), 0); /* timed out connections are closed */
	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_time_limits_give_etimedout(void **state)
{
	rlt_test_run(root_timeouts, NULL);
}

/* ---- a pooled connection the server closed ---- */

static void *root_retry(void *arg)
{
	srv s;
	srv_start(&s);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128], body[64];

	/* GET: sent on the dead connection, then once more on a new one. */
	expect_status_body(c, &s, "/close-after", 200, "ok");
	expect_status_body(c, &s, "/hello", 200, "hello");
	assert_int_equal(atomic_load(&s.accepted), 2);

	/* POST is not idempotent: the error is the caller's. */
	rlt_http_client_request post = {.method = "POST",
					.url = srv_url(&s, "/close-after", url, sizeof(url))};
	rlt_http_reply *r;
	assert_int_equal(rlt_http_fetch(c, &post, &r), 0);
	rlt_http_reply_free(r);
	post.url = srv_url(&s, "/echo", url, sizeof(url));
	post.body = "abc";
	post.body_len = 3;
	int rc = rlt_http_fetch(c, &post, &r);
	if (rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("POST on a dead pooled connection: %d, want -EPIPE or -ECONNRESET", rc);
	/* ...and then works on a new connection. */
	assert_int_equal(rlt_http_fetch(c, &post, &r), 0);
	const char *b;
	assert_int_equal(rlt_http_reply_body(r, 64, &b), 8);
	assert_string_equal(b, "POST abc");
	rlt_http_reply_free(r);

	/* RLT_HTTP_CLIENT_NO_RETRY: not even a GET. */
	expect_status_body(c, &s, "/close-after", 200, "ok");
	rlt_http_client_request get = {.url = srv_url(&s, "/hello", url, sizeof(url)),
				       .flags = RLT_HTTP_CLIENT_NO_RETRY};
	rc = rlt_http_fetch(c, &get, &r);
	if (rc != -EPIPE && rc != -ECONNRESET)
		fail_msg("GET with NO_RETRY on a dead pooled connection: %d", rc);
	(void)body;

	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_retries_idempotent_request_once_on_dead_pooled_connection(void **state)
{
	rlt_test_run(root_retry, NULL);
}

/* ---- redirects ---- */

static void *root_redirects(void *arg)
{
	srv s;
	srv_start(&s);
	char url[128], want[160];

	/* Off by default: the 3xx is the reply. */
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	expect_status_body(c, &s, "/redirect", 302, "moved");
	assert_int_equal(rlt_http_client_free(c), 0);

	c = rlt_http_client_new(&(rlt_http_client_opts){.max_redirects = 3});
	assert_non_null(c);
	int before = atomic_load(&s.accepted);
	rlt_http_reply *r;
	assert_int_equal(rlt_http_fetch_url(c, srv_url(&s, "/redirect-rel", url, sizeof(url)), &r),
			 0);
	assert_int_equal(rlt_http_reply_status(r), 200);
	assert_string_equal(rlt_http_reply_url(r), srv_url(&s, "/hello", want, sizeof(want)));
	rlt_http_reply_free(r);
	assert_int_equal(atomic_load(&s.accepted), before + 1); /* three requests, one connection */

	expect_error(c, &s, "/loop", -ELOOP);
	/* To https on port 443, where nothing listens here (TLS: test_tls_http). */
	expect_error(c, &s, "/to-https", -ECONNREFUSED);

	/* 303 turns a POST into a GET without a body; 307 keeps both. */
	rlt_http_client_request post = {.method = "POST",
					.url = srv_url(&s, "/see-other", url, sizeof(url)),
					.body = "abc",
					.body_len = 3};
	assert_int_equal(rlt_http_fetch(c, &post, &r), 0);
	const char *b;
	assert_int_equal(rlt_http_reply_body(r, 64, &b), 4);
	assert_string_equal(b, "GET ");
	rlt_http_reply_free(r);
	post.url = srv_url(&s, "/keep-method", url, sizeof(url));
	assert_int_equal(rlt_http_fetch(c, &post, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 64, &b), 8);
	assert_string_equal(b, "POST abc");
	rlt_http_reply_free(r);

	assert_int_equal(rlt_http_client_free(c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_follows_redirects_up_to_the_limit(void **state)
{
	rlt_test_run(root_redirects, NULL);
}

/* ---- requests ---- */

static void *root_requests(void *arg)
{
	srv s;
	srv_start(&s);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128], want[128];
	rlt_http_reply *r;

	/* The headers that go out. */
	rlt_http_client_header hd[] = {{"X-Custom", "one two"}, {"Accept", "text/plain"}};
	rlt_http_client_request req = {
	    .url = srv_url(&s, "/headers", url, sizeof(url)), .headers = hd, .nheaders = 2};
	assert_int_equal(rlt_http_fetch(c, &req, &r), 0);
	const char *b;
	assert_true(rlt_http_reply_body(r, 4096, &b) > 0);
	snprintf(want, sizeof(want), "Host: 127.0.0.1:%d\r\n", s.port);
	assert_non_null(strstr(b, want));
	assert_non_null(strstr(b, "User-Agent: ringlet\r\n"));
	assert_non_null(strstr(b, "X-Custom: one two\r\n"));
	assert_non_null(strstr(b, "Accept: text/plain\r\n"));
	assert_null(strstr(b, "Content-Length"));
	rlt_http_reply_free(r);

	/* A body goes with its Content-Length. */
	static char big[100000];
	memset(big, 'z', sizeof(big));
	req = (rlt_http_client_request){.method = "PUT",
					.url = srv_url(&s, "/echo", url, sizeof(url)),
					.body = big,
					.body_len = sizeof(big)};
	assert_int_equal(rlt_http_fetch(c, &req, &r), 0);
	assert_int_equal(rlt_http_reply_body(r, 200000, &b), 4 + sizeof(big));
	assert_memory_equal(b, "PUT ", 4);
	assert_memory_equal(b + 4, big, sizeof(big));
	rlt_http_reply_free(r);

	/* Refused before anything is sent. */
	int before = atomic_load(&s.accepted);
	const char *bad_urls[] = {"",
				  "127.0.0.1/",
				  "http://",
				  "http:///x",
				  "http://h:99999/",
				  "http://h:0/",
				  "http://user@h/",
				  "http://h/a b",
				  "http://h/\x7f",
				  "://h/",
				  "http://h:8x/"};
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		int rc = rlt_http_fetch_url(c, bad_urls[i], &r);
		if (rc != -EINVAL)
			fail_msg("\"%s\": %d, want -EINVAL", bad_urls[i], rc);
		assert_null(r);
	}
	/* https is spoken (test_tls_http): here, on ports where nothing listens. */
	assert_int_equal(rlt_http_fetch_url(c, "https://127.0.0.1/", &r), -ECONNREFUSED);
	assert_int_equal(rlt_http_fetch_url(c, "HTTPS://127.0.0.1:1/", &r), -ECONNREFUSED);
	assert_int_equal(rlt_http_fetch_url(c, "ftp://example.com/", &r), -EPROTONOSUPPORT);
	rlt_http_client_header crlf[] = {{"X-Evil", "a\r\nInjected: 1"}};
	req = (rlt_http_client_request){
	    .url = srv_url(&s, "/hello", url, sizeof(url)), .headers = crlf, .nheaders = 1};
	assert_int_equal(rlt_http_fetch(c, &req, &r), -EINVAL);
	rlt_http_client_header badname[] = {{"X Evil", "a"}};
	req.headers = badname;
	assert_int_equal(rlt_http_fetch(c, &req, &r), -EINVAL);
	rlt_http_client_header framing[] = {{"Content-Length", "3"}};
	req.headers = framing;
	assert_int_equal(rlt_http_fetch(c, &req, &r), -EINVAL);
	req = (rlt_http_client_request){.method = "GE T", .url = url};
	assert_int_equal(rlt_http_fetch(c, &req, &r), -EINVAL);
	assert_int_equal(atomic_load(&s.accepted), before);

	/* Uppercase scheme, no path, a fragment: all fine. */
	snprintf(url, sizeof(url), "HTTP://127.0.0.1:%d", s.port);
	expect_status_body(c, &s, "/hello#frag", 200, "hello");
	assert_int_equal(rlt_http_fetch_url(c, url, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 404);
	rlt_http_reply_free(r);

	/* Nobody listening: the dial's error. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	srv_stop(&s);
	assert_int_equal(rlt_http_client_free(c), 0);
	c = rlt_http_client_new(NULL);
	assert_int_equal(rlt_http_fetch_url(c, url, &r), -ECONNREFUSED);
	assert_int_equal(rlt_http_client_free(c), 0);
	return NULL;
}

static void test_http_client_sends_valid_requests_and_refuses_bad_ones(void **state)
{
	rlt_test_run(root_requests, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_client_decodes_every_framing),
	    cmocka_unit_test(test_http_client_cut_short_malformed_and_oversized_responses_fail),
	    cmocka_unit_test(test_http_client_time_limits_give_etimedout),
	    cmocka_unit_test(
		test_http_client_retries_idempotent_request_once_on_dead_pooled_connection),
	    cmocka_unit_test(test_http_client_follows_redirects_up_to_the_limit),
	    cmocka_unit_test(test_http_client_sends_valid_requests_and_refuses_bad_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
