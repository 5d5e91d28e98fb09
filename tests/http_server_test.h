/* Helpers for the HTTP server tests: a server on a free loopback port, and
 * a raw-socket client that checks responses byte by byte. */
#ifndef RLT_HTTP_SERVER_TEST_H
#define RLT_HTTP_SERVER_TEST_H

#include "rlt_test.h"

#include <ringlet/cancel.h>
#include <ringlet/http.h>
#include <ringlet/sync.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Every client step is bounded: a test that would hang fails instead. */
#define HT_STEP_NS (10 * RLT_NSEC_PER_SEC)

static inline rlt_http_server *ht_start(rlt_http_server_opts *o, int *port)
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	o->addrs = &a;
	o->naddrs = 1;
	rlt_http_server *s = rlt_http_server_start(o);
	if (!s)
		fail_msg("rlt_http_server_start: %s", strerror(errno));
	rlt_addr b;
	assert_int_equal(rlt_http_server_addr(s, 0, &b), 0);
	*port = rlt_addr_port(&b);
	assert_true(*port > 0);
	return s;
}

static inline void ht_stop(rlt_http_server *s)
{
	assert_int_equal(rlt_http_server_stop(s), 0);
	assert_int_equal(rlt_http_server_wait(s), 0);
	rlt_http_server_free(s);
}

static inline int ht_connect(int port)
{
	rlt_addr a;
	char buf[64];
	snprintf(buf, sizeof(buf), "127.0.0.1:%d", port);
	assert_int_equal(rlt_addr_parse(&a, buf), 0);
	int fd = rlt_net_connect(&a, HT_STEP_NS, RLT_NET_NODELAY);
	if (fd < 0)
		fail_msg("connect: %s", strerror(-fd));
	return fd;
}

static inline void ht_send(int fd, const void *p, size_t n)
{
	ssize_t w = rlt_send_all(fd, p, n, 0);
	if (w != (ssize_t)n)
		fail_msg("send: %zd (%s)", w, w < 0 ? strerror((int)-w) : "short");
}

static inline void ht_sends(int fd, const char *s)
{
	ht_send(fd, s, strlen(s));
}

/* A client connection's read side. */
struct ht_conn {
	int fd;
	size_t len; /* bytes in buf */
	char buf[256 * 1024];
};

/* A parsed response. */
struct ht_resp {
	int status;
	char head[8192]; /* the head, NUL-terminated */
	char *body;	 /* malloc'd, NUL-terminated */
	size_t body_len;
	bool chunked;
};

/* recv more into c->buf, within HT_STEP_NS: bytes read, 0 at EOF, < 0. */
static inline ssize_t ht_fill(struct ht_conn *c)
{
	if (c->len == sizeof(c->buf))
		return -ENOBUFS;
	rlt_scope sc;
	rlt_scope_enter(&sc, HT_STEP_NS);
	ssize_t n;
	do /* the fault policy injects these */
		n = rlt_recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (n == -EINTR || n == -EAGAIN);
	rlt_scope_leave(&sc);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

static inline void ht_consume(struct ht_conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Wait for n bytes in the buffer; false at EOF. */
static inline bool ht_need(struct ht_conn *c, size_t n)
{
	while (c->len < n) {
		ssize_t r = ht_fill(c);
		if (r == 0)
			return false;
		if (r < 0)
			fail_msg("recv: %s", strerror((int)-r));
	}
	return true;
}

/* A CRLF-terminated line (without it) into out; false at EOF. */
static inline bool ht_line(struct ht_conn *c, char *out, size_t cap)
{
	for (;;) {
		char *e = memmem(c->buf, c->len, "\r\n", 2);
		if (e) {
			size_t n = (size_t)(e - c->buf);
			assert_true(n < cap);
			memcpy(out, c->buf, n);
			out[n] = '\0';
			ht_consume(c, n + 2);
			return true;
		}
		if (!ht_need(c, c->len + 1))
			return false;
	}
}

/* The value of header name in a head, into out (empty if absent). */
static inline bool ht_header(const struct ht_resp *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			size_t n = e ? (size_t)(e - v) : strlen(v);
			if (n >= cap)
				n = cap - 1;
			memcpy(out, v, n);
			out[n] = '\0';
			return true;
		}
	}
	out[0] = '\0';
	return false;
}

/* Read one response (head_only: for a HEAD request, no body follows).
 * Returns false at a clean EOF before any byte; fails the test on a
 * malformed or truncated response. Free r->body with ht_resp_free. */
static inline bool ht_read_resp(struct ht_conn *c, struct ht_resp *r, bool head_only)
{
	memset(r, 0, sizeof(*r));
	char *e;
	for (;;) {
		e = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (e)
			break;
		if (!ht_need(c, c->len + 1)) {
			if (c->len == 0)
				return false;
			fail_msg("EOF inside a response head: %.*s", (int)c->len, c->buf);
		}
	}
	size_t hl = (size_t)(e - c->buf) + 2;
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, c->buf, hl);
	r->head[hl] = '\0';
	ht_consume(c, hl + 2);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		fail_msg("bad status line: %s", r->head);
	/* The fault matrix: a handler whose I/O got an injected error answers
	 * 500 (or the server 503): the scenario ends there. */
	if (r->status >= 500 && rlt_test_matrix())
		rlt_test_faulted("the server answered 5xx after a fault");
	char v[64];
	size_t cap = 1024, len = 0;
	char *body = malloc(cap);
	assert_non_null(body);
	if (head_only || r->status == 204 || r->status == 304 ||
	    (r->status >= 100 && r->status < 200)) {
		/* no body */
	} else if (ht_header(r, "Content-Length", v, sizeof(v))) {
		len = strtoull(v, NULL, 10);
		body = realloc(body, len + 1);
		if (!ht_need(c, len))
			fail_msg("EOF inside a body: %zu of %zu", c->len, len);
		memcpy(body, c->buf, len);
		ht_consume(c, len);
	} else if (ht_header(r, "Transfer-Encoding", v, sizeof(v))) {
		assert_string_equal(v, "chunked");
		r->chunked = true;
		for (;;) {
			char line[64];
			if (!ht_line(c, line, sizeof(line)))
				fail_msg("EOF inside a chunked body");
			size_t n = strtoul(line, NULL, 16);
			if (n == 0) {
				assert_true(ht_line(c, line, sizeof(line)));
				assert_string_equal(line, "");
				break;
			}
			if (!ht_need(c, n + 2))
				fail_msg("EOF inside a chunk");
			while (len + n + 1 > cap)
				body = realloc(body, cap *= 2);
			memcpy(body + len, c->buf, n);
			len += n;
			assert_memory_equal(c->buf + n, "\r\n", 2);
			ht_consume(c, n + 2);
		}
	} else { /* until EOF */
		while (ht_fill(c) > 0) {
		}
		len = c->len;
		body = realloc(body, len + 1);
		memcpy(body, c->buf, len);
		ht_consume(c, len);
	}
	body[len] = '\0';
	r->body = body;
	r->body_len = len;
	return true;
}

static inline void ht_resp_free(struct ht_resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* Whether the server closed: EOF with nothing more, within HT_STEP_NS. */
static inline bool ht_eof(struct ht_conn *c)
{
	ssize_t n;
	while ((n = ht_fill(c)) > 0) {
	}
	return n == 0 && c->len == 0;
}

static inline struct ht_conn *ht_open(int port)
{
	struct ht_conn *c = malloc(sizeof(*c));
	assert_non_null(c);
	c->fd = ht_connect(port);
	c->len = 0;
	return c;
}

static inline void ht_close(struct ht_conn *c)
{
	rlt_close(c->fd);
	free(c);
}

/* Send req on a new connection, read one response, expect status. */
static inline void ht_expect(int port, const char *req, int status)
{
	struct ht_conn *c = ht_open(port);
	ht_sends(c->fd, req);
	struct ht_resp r;
	if (!ht_read_resp(c, &r, false))
		fail_msg("no response to %s", req);
	if (r.status != status)
		fail_msg("status %d (want %d) for %s", r.status, status, req);
	ht_resp_free(&r);
	ht_close(c);
}

#endif
