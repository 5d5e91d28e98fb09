/*
 * The HTTP client's requests: one exchange (a pooled or new connection,
 * the request in one sendmsg, the response head), the retry of an
 * idempotent request on a pooled connection found dead, and redirects.
 * The pool is client_pool.c's; the reply calls are client_reply.c's.
 */
#include "client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DRAIN_MAX (64 * 1024) /* a redirect's body read to keep its connection */
#define URL_MAX	  8192

static bool token_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!strchr("!#$%&'*+-.^_`|~", *s) &&
		    !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

static bool idempotent(const char *m)
{
	static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i]) == 0)
			return true;
	return false;
}

static bool has_header(const rlt_http_client_header *hd, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(hd[i].name, name) == 0)
			return true;
	return false;
}

/* What one exchange sends: the method, target and headers of the request
 * (the URL's part is parsed per hop). */
typedef struct exchange {
	const char *method;
	const rlt_http_client_header *headers;
	size_t nheaders;
	bool drop_auth; /* a redirect changed host: no Authorization */
	const void *body;
	size_t body_len;
	bool no_retry;
} exchange;

static int wbuf_reserve(struct rlt_http_reply *r, size_t need)
{
	if (need <= r->wcap)
		return 0;
	size_t cap = r->wcap ? r->wcap : 512;
	while (cap < need)
		cap *= 2;
	char *b = realloc(r->wbuf, cap);
	if (!b)
		return -ENOMEM;
	r->wbuf = b;
	r->wcap = cap;
	return 0;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUTS(p, lit) put(p, lit, sizeof(lit) - 1)

/* Write the request head into r->wbuf; returns its length or -ENOMEM. */
static ssize_t build_head(struct rlt_http_reply *r, const exchange *x, const rlt__http_url *u)
{
	const char *ua = r->c->user_agent;
	bool own_host = has_header(x->headers, x->nheaders, "host");
	bool own_ua = has_header(x->headers, x->nheaders, "user-agent");
	bool send_len = x->body_len > 0 || !strcmp(x->method, "POST") ||
			!strcmp(x->method, "PUT") || !strcmp(x->method, "PATCH");
	size_t need = strlen(x->method) + u->target_len + 64 + strlen(u->host_hdr) + strlen(ua);
	for (size_t i = 0; i < x->nheaders; i++)
		need += strlen(x->headers[i].name) + strlen(x->headers[i].value) + 4;
	if (wbuf_reserve(r, need) < 0)
		return -ENOMEM;
	char *p = r->wbuf;
	p = put(p, x->method, strlen(x->method));
	*p++ = ' ';
	p = u->target_len ? put(p, u->target, u->target_len) : PUTS(p, "/");
	p = PUTS(p, " HTTP/1.1\r\n");
	if (!own_host) {
		p = PUTS(p, "Host: ");
		p = put(p, u->host_hdr, strlen(u->host_hdr));
		p = PUTS(p, "\r\n");
	}
	if (!own_ua) {
		p = PUTS(p, "User-Agent: ");
		p = put(p, ua, strlen(ua));
		p = PUTS(p, "\r\n");
	}
	for (size_t i = 0; i < x->nheaders; i++) {
		const rlt_http_client_header *hd = &x->headers[i];
		if (x->drop_auth && strcasecmp(hd->name, "authorization") == 0)
			continue;
		p = put(p, hd->name, strlen(hd->name));
		p = PUTS(p, ": ");
		p = put(p, hd->value, strlen(hd->value));
		p = PUTS(p, "\r\n");
	}
	if (send_len)
		p += sprintf(p, "Content-Length: %zu\r\n", x->body_len);
	p = PUTS(p, "\r\n");
	return p - r->wbuf;
}

/* Head and body in one sendmsg (more only if the socket takes part). */
static int send_request(struct rlt_http_reply *r, size_t head_len, const exchange *x)
{
	struct iovec iov[2] = {{r->wbuf, head_len}, {(void *)x->body, x->body_len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = x->body_len ? 2 : 1};
	if (r->tls) {
		ssize_t n = rlt_tls_writev(r->tls, iov, (int)m.msg_iovlen);
		return n < 0 ? (int)n : 0;
	}
	while (m.msg_iovlen > 0) {
		ssize_t n = rlt_sendmsg(r->fd, &m, 0);
		if (n < 0 && rlt__http_again(r->fd, &n, POLLOUT))
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		while (m.msg_iovlen > 0 && (size_t)n >= m.msg_iov->iov_len) {
			n -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + n;
			m.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Read until the response head is parsed. *nothing: no byte came. */
static int read_head(struct rlt_http_reply *r, bool head_req, bool *nothing)
{
	rlt__http_resp *p = &r->resp;
	int64_t fb = r->c->o.first_byte_timeout_ns;
	p->pos = p->end = 0;
	rlt__http_resp_begin(p, head_req);
	*nothing = true;
	for (;;) {
		int rc = rlt__http_resp_head(p);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		if (p->end == p->cap)
			return -EMSGSIZE;
		rlt_scope sc;
		bool scoped = *nothing && fb > 0 && rlt_scope_enter(&sc, fb) == 0;
		ssize_t n = rlt__http_conn_recv(r, p->buf + p->end, p->cap - p->end);
		if (scoped)
			rlt_scope_leave(&sc);
		if (n < 0 && rlt__http_again(r->fd, &n, POLLIN))
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return rlt__http_resp_eof(p) < 0 ? -EPIPE : -EBADMSG;
		*nothing = false;
		p->end += (size_t)n;
	}
}

/* One request on one connection (and once more on a new one, if a pooled
 * connection turns out dead before answering an idempotent request). */
static int exchange_once(rlt_http_client *c, const char *url, const exchange *x,
			 struct rlt_http_reply **out)
{
	rlt__http_url u;
	int rc = rlt__http_url_parse(&u, url);
	if (rc < 0)
		return rc;
	rlt__http_host *h = rlt__http_host_get(c, &u);
	if (!h)
		return -ENOMEM;
	bool head_req = strcmp(x->method, "HEAD") == 0;
	for (int attempt = 0;; attempt++) {
		struct rlt_http_reply *r;
		if ((rc = rlt__http_conn_acquire(c, h, &r)) < 0)
			return rc;
		bool reused = r->uses > 0, nothing = true;
		ssize_t len = build_head(r, x, &u);
		rc = len < 0 ? (int)len : send_request(r, (size_t)len, x);
		r->uses++;
		if (rc == 0)
			rc = read_head(r, head_req, &nothing);
		if (rc == 0) {
			*out = r;
			return 0;
		}
		r->broken = true;
		rlt__http_conn_release(r, false);
		bool dead = rc == -EPIPE || rc == -ECONNRESET || rc == -ECONNABORTED;
		if (!(dead && reused && nothing && attempt == 0 && !x->no_retry &&
		      idempotent(x->method)))
			return rc;
	}
}

static bool is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int set_url(struct rlt_http_reply *r, const char *url)
{
	size_t n = strlen(url) + 1;
	if (n > r->url_cap) {
		char *b = realloc(r->url, n);
		if (!b)
			return -ENOMEM;
		r->url = b;
		r->url_cap = n;
	}
	memcpy(r->url, url, n);
	return 0;
}

/* Read and drop a redirect's body, if short, so its connection is kept. */
static void drain(struct rlt_http_reply *r)
{
	char tmp[1024];
	size_t total = 0;
	if (r->resp.content_length > DRAIN_MAX)
		return;
	while (total <= DRAIN_MAX) {
		ssize_t n = rlt_http_reply_read(r, tmp, sizeof(tmp));
		if (n <= 0)
			return;
		total += (size_t)n;
	}
}

int rlt_http_fetch(rlt_http_client *c, const rlt_http_client_request *req, rlt_http_reply **out)
{
	if (out)
		*out = NULL;
	if (!c || !req || !req->url || !out || (req->body_len && !req->body))
		return -EINVAL;
	exchange x = {.method = req->method ? req->method : "GET",
		      .headers = req->headers,
		      .nheaders = req->nheaders,
		      .body = req->body,
		      .body_len = req->body_len,
		      .no_retry = req->flags & RLT_HTTP_CLIENT_NO_RETRY};
	if (!token_ok(x.method) || (req->nheaders && !req->headers))
		return -EINVAL;
	for (size_t i = 0; i < req->nheaders; i++) {
		const rlt_http_client_header *hd = &req->headers[i];
		if (!token_ok(hd->name) || !hd->value || strpbrk(hd->value, "\r\n") ||
		    strcasecmp(hd->name, "content-length") == 0 ||
		    strcasecmp(hd->name, "transfer-encoding") == 0)
			return -EINVAL;
	}
	if (!rlt_current())
		return -EPERM;
	int64_t t = req->timeout_ns ? req->timeout_ns : c->o.timeout_ns;
	uint64_t deadline = t > 0 ? rlt_now() + (uint64_t)t : 0;
	rlt_scope sc;
	bool scoped = deadline && rlt_scope_enter_at(&sc, deadline) == 0;

	const char *url = req->url;
	char *owned = NULL; /* the current redirect's URL */
	struct rlt_http_reply *r = NULL;
	int rc;
	for (unsigned hops = 0;; hops++) {
		if ((rc = exchange_once(c, url, &x, &r)) < 0)
			break;
		const char *loc;
		if (!c->o.max_redirects || !is_redirect(r->resp.status) ||
		    !(loc = rlt__http_resp_header(&r->resp, "location")) || !*loc)
			break;
		if (hops == c->o.max_redirects) {
			rc = -ELOOP;
			break;
		}
		char *next = malloc(URL_MAX);
		if (!next) {
			rc = -ENOMEM;
			break;
		}
		if ((rc = rlt__http_url_resolve(url, loc, next, URL_MAX)) < 0) {
			free(next);
			break;
		}
		rlt__http_url a, b;
		if (rlt__http_url_parse(&a, url) == 0 && rlt__http_url_parse(&b, next) == 0 &&
		    (strcmp(a.hostport, b.hostport) != 0 || a.tls != b.tls))
			x.drop_auth = true;
		int st = r->resp.status;
		if (st == 303 || ((st == 301 || st == 302) && strcmp(x.method, "GET") &&
				  strcmp(x.method, "HEAD"))) {
			x.method = "GET";
			x.body = NULL;
			x.body_len = 0;
		}
		drain(r);
		rlt_http_reply_free(r);
		r = NULL;
		free(owned);
		url = owned = next;
	}
	if (rc == 0 && (rc = set_url(r, url)) == 0)
		r->deadline = deadline;
	if (rc < 0 && r) {
		r->broken = true;
		rlt_http_reply_free(r);
		r = NULL;
	}
	free(owned);
	if (scoped)
		rlt_scope_leave(&sc);
	*out = r;
	return rc;
}

int rlt_http_fetch_url(rlt_http_client *c, const char *url, rlt_http_reply **out)
{
	rlt_http_client_request req = {.url = url};
	return rlt_http_fetch(c, &req, out);
}
