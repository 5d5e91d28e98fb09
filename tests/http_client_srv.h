/*
 * A scripted HTTP server for the client's tests: a ringlet task on a
 * loopback listener, one task per connection, that reads each request
 * (request line, headers, a Content-Length body) and answers with canned
 * bytes chosen by the path: the responses real servers will not produce
 * (cut short, malformed, oversized, slow, closing between keep-alive
 * requests). It counts accepted connections, requests and connections the
 * client closed, for the pool's tests.
 */
#ifndef RLT_TEST_HTTP_CLIENT_SRV_H
#define RLT_TEST_HTTP_CLIENT_SRV_H

#include "tests/rlt_test.h"

#include <ringlet/http_client.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct srv {
	int lfd;
	int port;
	char base[64]; /* "http://127.0.0.1:PORT" */
	rlt_acceptor *acc;
	rlt_task *task;
	atomic_int accepted; /* connections accepted */
	atomic_int requests; /* requests read */
	atomic_int closed;   /* connections the client ended (EOF seen) */
	atomic_int max_busy; /* most requests being answered at once */
	atomic_int busy;
	rlt_task **conns; /* every connection\'s task, joined by srv_stop */
	size_t nconns, conns_cap;
} srv;

typedef struct srv_conn {
	srv *s;
	int fd;
} srv_conn;

/* A send that failed (the fault policy injects errors) leaves a hole in
 * the stream: end the connection then, so the client sees it cut short
 * rather than waiting for bytes that will never come. */
static inline void srv_send_bytes(int fd, const void *b, size_t n)
{
	if (rlt_send_all(fd, b, n, 0) != (ssize_t)n)
		shutdown(fd, SHUT_RDWR);
}

static inline void srv_send(int fd, const char *s)
{
	srv_send_bytes(fd, s, strlen(s));
}

/* Answer one request for path; returns false to close the connection. */
static inline bool srv_answer(srv *s, int fd, const char *method, const char *path,
			      const char *hdrs, const char *body, size_t blen)
{
	char buf[512];
	if (!strcmp(path, "/hello")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test:  spaced value  \r\n"
			     "X-Empty:\r\n\r\n");
		if (strcmp(method, "HEAD") != 0)
			srv_send(fd, "hello");
	} else if (!strcmp(path, "/chunked")) {
		/* In pieces, the chunk framing split across sends. */
		const char *p[] = {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r",
				   "\nhello\r\n6\r\n world\r\n", "0\r\nX-Trailer: t\r\n\r\n"};
		for (int i = 0; i < 3; i++) {
			srv_send(fd, p[i]);
			rlt_sleep(RLT_NSEC_PER_MSEC);
		}
	} else if (!strcmp(path, "/bytewise")) {
		/* One byte per send: every span of the head split. */
		const char *r =
		    "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Long-Name: a value\r\n"
		    "Content-Length: 3\r\n\r\nabc";
		for (const char *c = r; *c; c++) {
			srv_send_bytes(fd, c, 1);
			rlt_yield();
		}
	} else if (!strcmp(path, "/eof")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\n\r\nuntil the end");
		return false;
	} else if (!strcmp(path, "/cut")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
		return false;
	} else if (!strcmp(path, "/cutchunk")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123");
		return false;
	} else if (!strcmp(path, "/cuthead")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Le");
		return false;
	} else if (!strcmp(path, "/badchunk")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
			     "chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
	} else if (!strcmp(path, "/hugechunk")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			     "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n");
	} else if (!strcmp(path, "/badstatus")) {
		srv_send(fd, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/dupcl")) {
		srv_send(fd,
			 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
	} else if (!strcmp(path, "/nul")) {
		static const char r[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n";
		srv_send_bytes(fd, r, sizeof(r) - 1);
	} else if (!strcmp(path, "/bighead")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nX-Big: ");
		memset(buf, 'x', sizeof(buf));
		for (int i = 0; i < 40; i++)
			srv_send_bytes(fd, buf, sizeof(buf));
		srv_send(fd, "\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/manyheaders")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\n");
		for (int i = 0; i < 150; i++) {
			snprintf(buf, sizeof(buf), "X-H%d: %d\r\n", i, i);
			srv_send(fd, buf);
		}
		srv_send(fd, "Content-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/big")) {
		/* 1 MiB + 1 of a pattern. */
		size_t n = 1024 * 1024 + 1;
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
		srv_send(fd, buf);
		char *b = malloc(n);
		for (size_t i = 0; i < n; i++)
			b[i] = (char)('a' + i % 26);
		srv_send_bytes(fd, b, n);
		free(b);
	} else if (!strcmp(path, "/bigchunked")) {
		/* 300 chunks (with extensions) in one send: where the reads cut
		 * them is the kernel's (and the fault policy's) business. */
		size_t cap = 400 * 1024, n = 0;
		char *b = malloc(cap);
		n += (size_t)snprintf(b, cap,
				      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int k = 0; k < 300; k++) {
			int len = 1 + (k * 37) % 999;
			n += (size_t)snprintf(b + n, cap - n, "%x;ext=1\r\n", len);
			for (int i = 0; i < len; i++)
				b[n++] = (char)('a' + (k + i) % 26);
			b[n++] = '\r';
			b[n++] = '\n';
		}
		n += (size_t)snprintf(b + n, cap - n, "0\r\n\r\n");
		srv_send_bytes(fd, b, n);
		free(b);
	} else if (!strcmp(path, "/slow")) {
		if (rlt_sleep(2 * RLT_NSEC_PER_SEC) < 0)
			return false;
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
	} else if (!strcmp(path, "/slowbody")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhalf");
		if (rlt_sleep(2 * RLT_NSEC_PER_SEC) < 0)
			return false;
		srv_send(fd, "half");
	} else if (!strcmp(path, "/wait")) {
		/* Holds the request a moment: concurrent requests overlap here. */
		rlt_sleep(20 * RLT_NSEC_PER_MSEC);
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	} else if (!strcmp(path, "/close-after")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return false; /* no Connection: close: the client pools a dead connection */
	} else if (!strcmp(path, "/connclose")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
		return false;
	} else if (!strcmp(path, "/http10")) {
		srv_send(fd, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return false;
	} else if (!strcmp(path, "/interim")) {
		srv_send(
		    fd,
		    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	} else if (!strcmp(path, "/204")) {
		srv_send(fd, "HTTP/1.1 204 No Content\r\n\r\n");
	} else if (!strcmp(path, "/extra")) {
		srv_send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE");
	} else if (!strcmp(path, "/redirect")) {
		srv_send(
		    fd, "HTTP/1.1 302 Found\r\nLocation: /hello\r\nContent-Length: 5\r\n\r\nmoved");
	} else if (!strcmp(path, "/redirect-rel")) {
		srv_send(fd,
			 "HTTP/1.1 301 Moved\r\nLocation: redirect\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/see-other")) {
		srv_send(fd,
			 "HTTP/1.1 303 See Other\r\nLocation: /echo\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/keep-method")) {
		srv_send(fd,
			 "HTTP/1.1 307 Temporary\r\nLocation: /echo\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/loop")) {
		srv_send(fd, "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/to-https")) {
		srv_send(fd, "HTTP/1.1 302 Found\r\nLocation: "
			     "https://127.0.0.1/\r\nContent-Length: 0\r\n\r\n");
	} else if (!strcmp(path, "/echo")) {
		/* The method, then the body. */
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s ",
			 strlen(method) + 1 + blen, method);
		srv_send(fd, buf);
		srv_send_bytes(fd, body, blen);
	} else if (!strcmp(path, "/headers")) {
		/* The request's headers, as received. */
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
			 strlen(hdrs));
		srv_send(fd, buf);
		srv_send(fd, hdrs);
	} else {
		srv_send(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
	}
	return true;
}

static inline void *srv_conn_task(void *arg)
{
	srv_conn *sc = arg;
	srv *s = sc->s;
	int fd = sc->fd;
	free(sc);
	rlt_reader *rd = rlt_reader_new(fd, 64 * 1024);
	char hdrs[2048], method[32], path[256];
	for (;;) {
		const char *line;
		ssize_t n = rlt_reader_readline(rd, &line);
		if (n <= 0) {
			if (n == 0)
				atomic_fetch_add(&s->closed, 1);
			break;
		}
		if (sscanf(line, "%31s %255s", method, path) != 2)
			break;
		size_t hl = 0, clen = 0;
		hdrs[0] = '\0';
		while ((n = rlt_reader_readline(rd, &line)) > 2) {
			if (!strncasecmp(line, "content-length:", 15))
				clen = strtoul(line + 15, NULL, 10);
			if (hl + (size_t)n < sizeof(hdrs)) {
				memcpy(hdrs + hl, line, (size_t)n);
				hl += (size_t)n;
				hdrs[hl] = '\0';
			}
		}
		if (n <= 0)
			break;
		char *body = malloc(clen + 1);
		if (clen && rlt_reader_readexactly(rd, body, clen) != (ssize_t)clen) {
			free(body);
			break;
		}
		body[clen] = '\0';
		atomic_fetch_add(&s->requests, 1);
		int b = atomic_fetch_add(&s->busy, 1) + 1;
		int m = atomic_load(&s->max_busy);
		while (b > m && !atomic_compare_exchange_weak(&s->max_busy, &m, b))
			;
		bool keep = srv_answer(s, fd, method, path, hdrs, body, clen);
		atomic_fetch_sub(&s->busy, 1);
		free(body);
		if (!keep)
			break;
	}
	rlt_reader_free(rd);
	rlt_close(fd);
	return NULL;
}

static inline void *srv_accept_task(void *arg)
{
	srv *s = arg;
	int fd;
	/* Until cancelled: an error (the fault policy injects them) is said
	 * once, and accepting goes on. */
	while ((fd = rlt_acceptor_next(s->acc, NULL)) != -ECANCELED) {
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->accepted, 1);
		srv_conn *sc = malloc(sizeof(*sc));
		sc->s = s;
		sc->fd = fd;
		if (s->nconns == s->conns_cap) {
			s->conns_cap = s->conns_cap ? s->conns_cap * 2 : 64;
			s->conns = realloc(s->conns, s->conns_cap * sizeof(*s->conns));
		}
		s->conns[s->nconns++] = rlt_spawn(srv_conn_task, sc, NULL);
	}
	return NULL;
}

/* Start s on a free loopback port. From a task. */
static inline void srv_start(srv *s)
{
	memset(s, 0, sizeof(*s));
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	s->lfd = rlt_net_listen(&a, -1, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(rlt_net_local(s->lfd, &a), 0);
	s->port = rlt_addr_port(&a);
	snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
	s->acc = rlt_acceptor_open(s->lfd, RLT_NET_NODELAY);
	assert_non_null(s->acc);
	s->task = rlt_spawn(srv_accept_task, s, NULL);
	assert_non_null(s->task);
}

/* Stop accepting, then end every connection's task (cancelled if it
 * still runs: s lives on the caller's stack). */
static inline void srv_stop(srv *s)
{
	rlt_cancel(s->task);
	rlt_join(s->task, NULL);
	rlt_acceptor_close(s->acc);
	rlt_close(s->lfd);
	for (size_t i = 0; i < s->nconns; i++) {
		rlt_cancel(s->conns[i]);
		rlt_join(s->conns[i], NULL);
	}
	free(s->conns);
}

/* s->base + path into buf. */
static inline const char *srv_url(const srv *s, const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", s->base, path);
	return buf;
}

/* GET url; returns the status, the body in body (NUL-terminated, at most
 * size - 1 bytes), or a negative errno from the fetch or the body. */
static inline int fetch_text(rlt_http_client *c, const char *url, char *body, size_t size)
{
	rlt_http_reply *r;
	int rc = rlt_http_fetch_url(c, url, &r);
	if (rc < 0)
		return rc;
	const char *b;
	ssize_t n = rlt_http_reply_body(r, size - 1, &b);
	int st = rlt_http_reply_status(r);
	if (n >= 0)
		memcpy(body, b, (size_t)n + 1);
	rlt_http_reply_free(r);
	return n < 0 ? (int)n : st;
}

#endif
