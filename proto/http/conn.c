/*
 * The connection task: read a request head, run the handler, finish the
 * response, drain what the handler left of the body, and again.
 *
 * The read buffer holds, in order:
 *
 *   [msg_start, head_end)   the current request's head, parsed in place
 *   [head_end, dec_end)     its body, decoded in place (chunk framing
 *                           squeezed out), unread from body_rd on
 *   [parse_pos, rlen)       bytes llhttp has not seen yet (the rest of the
 *                           body, pipelined requests)
 *
 * Invariants: msg_start <= head_end <= body_rd <= dec_end <= parse_pos <=
 * rlen <= rsize. Decoded bytes never overtake the parser, so decoding in
 * place is a memmove down. Before the head is complete, the message may
 * move to the buffer's start (everything is stored relative to
 * msg_start); once complete, it stays put until the handler returns, and
 * body reads reclaim room only behind it.
 *
 * llhttp pauses at the end of the head (on_headers_complete) and at the end
 * of the message (on_message_complete), so a pipelined request is parsed
 * only when its turn comes.
 */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline struct conn *conn_of(llhttp_t *p)
{
	return p->data;
}

static inline uint32_t off_in_msg(struct conn *c, const char *at)
{
	return (uint32_t)(at - (c->rbuf + c->msg_start));
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	uint32_t off = off_in_msg(c, at);
	if (c->req.url_len == 0)
		c->req.url_off = off;
	c->req.url_len = off + (uint32_t)len - c->req.url_off;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	rlt_http_request *r = &c->req;
	if (r->head_done) /* a chunked body's trailers: not kept */
		return 0;
	uint32_t off = off_in_msg(c, at);
	if (r->hdr_state != 1) {
		if (r->nhdr == c->srv->o.max_headers) {
			r->too_many = true;
			return -1;
		}
		struct hdr *h = &c->hdrs[r->nhdr++];
		h->name_off = off;
		h->val_off = UINT32_MAX;
		h->val_len = 0;
		r->hdr_state = 1;
	}
	struct hdr *h = &c->hdrs[r->nhdr - 1];
	h->name_len = off + (uint32_t)len - h->name_off;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	rlt_http_request *r = &c->req;
	if (r->head_done)
		return 0;
	uint32_t off = off_in_msg(c, at);
	struct hdr *h = &c->hdrs[r->nhdr - 1];
	if (r->hdr_state != 2) {
		h->val_off = off;
		r->hdr_state = 2;
	} else if (off != r->hdr_end) {
		/* A second piece that does not continue the first: obsolete line
		 * folding (RFC 9112 5.2 lets a server reject it with 400). */
		llhttp_set_error_reason(p, "obsolete line folding");
		return -1;
	}
	r->hdr_end = off + (uint32_t)len;
	h->val_len = r->hdr_end - h->val_off;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = conn_of(p);
	c->req.head_done = true;
	c->req.content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
	return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	rlt_http_request *r = &c->req;
	if (r->body_total + len > c->srv->o.body_limit) {
		r->too_big = true;
		return -1;
	}
	memmove(c->rbuf + r->dec_end, at, len);
	r->dec_end += len;
	r->body_total += len;
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	conn_of(p)->req.msg_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Feed llhttp what it has not seen. 0 (parsed it all, or paused at a
 * message's head or end), or the status the request earns (400, 413, 431). */
static int parse(struct conn *c)
{
	const char *p = c->rbuf + c->parse_pos;
	llhttp_errno_t e = llhttp_execute(&c->parser, p, c->rlen - c->parse_pos);
	if (e == HPE_OK) {
		c->parse_pos = c->rlen;
		return 0;
	}
	if (e == HPE_PAUSED) {
		c->parse_pos = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
		llhttp_resume(&c->parser);
		return 0;
	}
	if (e == HPE_PAUSED_UPGRADE) { /* no protocol switch: answer, then close */
		c->parse_pos = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
		c->req.msg_done = true;
		c->close_after = true;
		return 0;
	}
	if (c->req.too_big)
		return 413;
	if (c->req.too_many)
		return 431;
	return 400;
}

/* recv into the free tail of the read buffer, within deadline (0: none).
 * idle: a response has just gone out and nothing is buffered, so the next
 * request has most likely not arrived (see http_recv). */
static ssize_t recv_more(struct conn *c, uint64_t deadline, bool idle)
{
	dl_arm_at(c, deadline);
	ssize_t n = conn_recv(c, c->rbuf + c->rlen, c->rsize - c->rlen, idle);
	if (deadline && dl_disarm(c) < 0)
		return -ETIMEDOUT;
	return n;
}

/* rlt_now(), read from the coarse clock (the last tick: no TSC read, a
 * few ns where CLOCK_MONOTONIC costs 20-50) plus one tick, so that it is
 * never behind rlt_now(): deadlines are taken twice per request, and the
 * reaper that enforces them is late by up to its period (>= 5 ms)
 * anyway, so one tick (1-10 ms) of lateness more is within its slack. */
static uint64_t now_coarse(void)
{
	static _Atomic uint64_t tick; /* the coarse clock's resolution; 0: unknown */
	uint64_t res = atomic_load_explicit(&tick, memory_order_relaxed);
	struct timespec ts;
	if (__builtin_expect(res == 0, 0)) {
		if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) < 0 || ts.tv_sec > 0)
			return rlt_now(); /* not usable: the precise clock */
		res = (uint64_t)ts.tv_nsec;
		atomic_store_explicit(&tick, res, memory_order_relaxed);
	}
	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return rlt_now();
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + res;
}

static uint64_t deadline_in(int64_t timeout)
{
	return timeout > 0 ? now_coarse() + (uint64_t)timeout : 0;
}

int rlt__http_dl_expired(struct conn *c)
{
	/* The reaper moved it to DL_FIRED and is about to call rlt_cancel:
	 * wait until it has, then forget that cancellation. */
	while (atomic_load_explicit(&c->deadline, memory_order_acquire) != DL_ISSUED)
		rlt_yield();
	atomic_store_explicit(&c->deadline, 0, memory_order_relaxed);
	rlt_uncancel();
	return -ETIMEDOUT;
}

/* Move the current message (and what follows) to the buffer's start. */
static void compact(struct conn *c)
{
	size_t d = c->msg_start;
	if (!d)
		return;
	memmove(c->rbuf, c->rbuf + d, c->rlen - d);
	c->msg_start = 0;
	c->parse_pos -= d;
	c->rlen -= d;
}

/*
 * Read and parse until the next request's head is complete. 0: it is;
 * 1: the connection is done (closed by the peer between requests, idle
 * timeout, shutdown); a negative errno: broken (an error status was sent
 * where one is due).
 */
static int read_head(struct conn *c)
{
	rlt_http_server *s = c->srv;
	if (c->parse_pos == c->rlen)
		c->parse_pos = c->rlen = 0;
	c->msg_start = c->parse_pos;
	bool idle = c->parse_pos == c->rlen;
	uint64_t deadline = idle ? 0 : deadline_in(s->o.header_timeout);
	for (;;) {
		if (c->parse_pos < c->rlen) {
			int st = parse(c);
			if (st) {
				rlt__http_send_error(c, st);
				return -EBADMSG;
			}
			size_t head = c->parse_pos - c->msg_start;
			if (c->req.head_done)
				return head > s->o.header_limit
					   ? (rlt__http_send_error(c, 431), -EMSGSIZE)
					   : 0;
			if (head > s->o.header_limit) {
				rlt__http_send_error(c, 431);
				return -EMSGSIZE;
			}
		}
		if (c->rlen == c->rsize) /* room for the rest of the head */
			compact(c);
		int rc = rlt__http_flush(c);
		if (rc < 0)
			return rc;
		if (idle) {
			atomic_store(&c->state, CONN_IDLE);
			if (atomic_load(&s->stopping))
				return 1;
			deadline = deadline_in(s->o.idle_timeout);
		}
		/* Idle after a response: the client has most likely not
		 * sent its next request yet (it waits for this one). */
		ssize_t n = recv_more(c, deadline, idle && c->answered);
		if (idle) {
			int busy = CONN_IDLE;
			if (!atomic_compare_exchange_strong(&c->state, &busy, CONN_BUSY))
				return 1; /* the server is shutting down */
		}
		if (n == -ETIMEDOUT) {
			if (idle)
				return 1;
			rlt__http_send_error(c, 408);
			return -ETIMEDOUT;
		}
		if (n <= 0)
			return n == 0 ? 1 : (int)n;
		if (idle) {
			idle = false;
			deadline = deadline_in(s->o.header_timeout);
		}
		c->rlen += (size_t)n;
	}
}

/* One recv and parse for the body. 0, -ENOBUFS (no room: the caller
 * reclaims what was read), or the body's error (also kept in body_err). */
static int body_fill(struct conn *c)
{
	rlt_http_request *r = &c->req;
	if (r->body_err)
		return r->body_err;
	if (c->parse_pos == c->rlen) {
		if (c->rlen == c->rsize)
			return -ENOBUFS;
		if (r->expect_continue && !r->continue_sent && r->body_total == 0 &&
		    !c->res.started) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (c->wlen + sizeof(cont) > HTTP_WBUF_SIZE) {
				int rc = rlt__http_flush(c);
				if (rc < 0)
					return r->body_err = rc;
			}
			memcpy(c->wbuf + c->wlen, cont, sizeof(cont) - 1);
			c->wlen += sizeof(cont) - 1;
			r->continue_sent = true;
		}
		int rc = rlt__http_flush(c);
		if (rc < 0)
			return r->body_err = rc;
		ssize_t n = recv_more(c, deadline_in(c->srv->o.io_timeout), false);
		if (n <= 0) {
			c->close_after = true;
			return r->body_err = n == 0 ? -EPIPE : (int)n;
		}
		c->rlen += (size_t)n;
	}
	int st = parse(c);
	if (st) {
		c->close_after = true;
		return r->body_err = st == 413 ? -EMSGSIZE : -EBADMSG;
	}
	return 0;
}

/* Make unread decoded bytes available (or reach the end). 0 or an error. */
static int body_more(struct conn *c)
{
	rlt_http_request *r = &c->req;
	while (r->body_rd == r->dec_end && !r->msg_done) {
		/* All decoded bytes were read: their room is free again. */
		size_t gap = c->parse_pos - c->head_end;
		if (gap) {
			memmove(c->rbuf + c->head_end, c->rbuf + c->parse_pos,
				c->rlen - c->parse_pos);
			c->parse_pos -= gap;
			c->rlen -= gap;
		}
		r->body_rd = r->dec_end = c->head_end;
		int rc = body_fill(c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

ssize_t rlt_http_request_read(rlt_http_request *r, void *buf, size_t len)
{
	if (!r || (!buf && len))
		return -EINVAL;
	struct conn *c = r->c;
	int rc = body_more(c);
	if (rc < 0)
		return rc;
	size_t n = r->dec_end - r->body_rd;
	if (n > len)
		n = len;
	memcpy(buf, c->rbuf + r->body_rd, n);
	r->body_rd += n;
	return (ssize_t)n;
}

int rlt_http_request_body(rlt_http_request *r, const void **data, size_t *len)
{
	if (!r || !data || !len)
		return -EINVAL;
	struct conn *c = r->c;
	/* In place while the message fits the read buffer. */
	while (!r->msg_done) {
		int rc = body_fill(c);
		if (rc == -ENOBUFS)
			break;
		if (rc < 0)
			return rc;
	}
	if (r->msg_done) {
		*data = c->rbuf + r->body_rd;
		*len = r->dec_end - r->body_rd;
		r->body_rd = r->dec_end;
		return 0;
	}
	/* Larger: copied into the connection's body buffer (kept for the
	 * next large body, up to body_limit). */
	size_t have = 0;
	for (;;) {
		if (have == c->bodycap) {
			size_t cap = c->bodycap ? c->bodycap * 2 : 64 * 1024;
			if (cap > c->srv->o.body_limit + 1)
				cap = c->srv->o.body_limit + 1;
			if (cap <= have)
				return -EMSGSIZE;
			char *nb = realloc(c->bodybuf, cap);
			if (!nb)
				return -ENOMEM;
			c->bodybuf = nb;
			c->bodycap = cap;
		}
		ssize_t n = rlt_http_request_read(r, c->bodybuf + have, c->bodycap - have);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	*data = c->bodybuf;
	*len = have;
	return 0;
}

/* Read and drop what the handler left of the body, up to drain_limit.
 * 0 (the message is over), or < 0: the connection must close. */
static int drain(struct conn *c)
{
	rlt_http_request *r = &c->req;
	if (r->expect_continue && !r->continue_sent)
		return -ECONNABORTED; /* the client may never send it */
	if (r->content_length >= 0 &&
	    (uint64_t)r->content_length - r->body_total > c->srv->o.drain_limit)
		return -EMSGSIZE;
	size_t start = r->body_total;
	while (!r->msg_done) {
		r->body_rd = r->dec_end;
		if (r->body_total - start > c->srv->o.drain_limit)
			return -EMSGSIZE;
		int rc = body_more(c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Turn the recorded offsets into the strings the handler sees. */
static int head_finish(struct conn *c)
{
	rlt_http_request *r = &c->req;
	rlt_http_server *s = c->srv;
	/* Keep HTTP_BODY_ROOM behind the head for body reads. */
	if (c->rsize - c->parse_pos < HTTP_BODY_ROOM)
		compact(c);
	c->head_end = c->parse_pos;
	r->body_rd = r->dec_end = c->head_end;
	char *h = c->rbuf + c->msg_start;
	r->head = h;
	/* The byte after each span is a delimiter llhttp has consumed (' '
	 * after the target, ':' after a name, CR or white space after a
	 * value): room for the NUL. */
	r->target = (rlt_http_str){h + r->url_off, r->url_len};
	h[r->url_off + r->url_len] = '\0';
	const char *q = memchr(r->target.p, '?', r->target.len);
	size_t plen = q ? (size_t)(q - r->target.p) : r->target.len;
	r->path = (rlt_http_str){r->target.p, plen};
	r->query = q ? (rlt_http_str){q + 1, r->target.len - plen - 1} : (rlt_http_str){"", 0};
	for (unsigned i = 0; i < r->nhdr; i++) {
		struct hdr *hd = &c->hdrs[i];
		/* llhttp (not built strict) lets "Name : v" through; RFC 9112
		 * 5.1 says 400 (a proxy could read the name otherwise). */
		if (h[hd->name_off + hd->name_len] != ':' || hd->name_len == 0 ||
		    memchr(h + hd->name_off, ' ', hd->name_len) ||
		    memchr(h + hd->name_off, '\t', hd->name_len))
			return 400;
		h[hd->name_off + hd->name_len] = '\0';
		if (hd->val_off == UINT32_MAX)
			continue;
		while (hd->val_len && (h[hd->val_off + hd->val_len - 1] == ' ' ||
				       h[hd->val_off + hd->val_len - 1] == '\t'))
			hd->val_len--;
		h[hd->val_off + hd->val_len] = '\0';
	}
	r->method = llhttp_method_name((llhttp_method_t)c->parser.method);
	r->version = c->parser.http_major * 10 + c->parser.http_minor;
	r->keep_alive = llhttp_should_keep_alive(&c->parser) && !c->parser.upgrade;
	if (r->version >= 11) {
		const char *e = rlt_http_request_header(r, "expect");
		r->expect_continue = e && strcasecmp(e, "100-continue") == 0;
	}
	if (atomic_load_explicit(&s->stopping, memory_order_relaxed))
		c->close_after = true;
	return 0;
}

/* One request: 0 to go on with the next, else close. */
static int handle(struct conn *c)
{
	rlt_http_request *r = &c->req;
	rlt_http_server *s = c->srv;
	int st = head_finish(c);
	if (st) {
		rlt__http_send_error(c, st);
		return -EBADMSG;
	}
	if (c->parser.http_major != 1) {
		/* HTTP/0.9 (no version) is not HTTP/1; 2.0 and up do not come
		 * this way. */
		rlt__http_send_error(c, c->parser.http_major == 0 ? 400 : 505);
		return -EPROTONOSUPPORT;
	}
	if (r->content_length > (int64_t)s->o.body_limit) {
		rlt__http_send_error(c, 413);
		return -EMSGSIZE;
	}
	/* Decode what is already here: for most requests, the end of the
	 * message (no body, or a small one that came with the head). */
	if (!r->msg_done) {
		st = parse(c);
		if (st) {
			rlt__http_send_error(c, st);
			return -EBADMSG;
		}
	}
	int rc = s->o.handler(r, &c->res, s->o.arg);
	rc = rlt__http_response_finish(c, rc);
	c->answered = true;
	if (rc < 0)
		return rc;
	if (!r->msg_done && drain(c) < 0)
		return -ECONNABORTED;
	return c->close_after ? 1 : 0;
}

static void conn_free(struct conn *c)
{
	free(c->filebuf);
	free(c->bodybuf);
	free(c);
}

struct conn *rlt__http_conn_new(rlt_http_server *s, int fd)
{
	size_t rsize = s->o.header_limit + HTTP_BODY_ROOM;
	size_t hdrs = s->o.max_headers * sizeof(struct hdr);
	struct conn *c = malloc(sizeof(*c) + hdrs + rsize + HTTP_WBUF_SIZE);
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->srv = s;
	c->fd = fd;
	c->hdrs = (struct hdr *)(c + 1);
	c->rbuf = (char *)c->hdrs + hdrs;
	c->rsize = rsize;
	c->wbuf = c->rbuf + rsize;
	atomic_init(&c->state, CONN_BUSY);
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	c->parser.data = c;
	rlt__http_conn_register(c);
	return c;
}

void rlt__http_conn_abort(struct conn *c)
{
	int fd = c->fd;
	rlt__http_conn_unregister(c);
	conn_free(c);
	close(fd);
}

int rlt__http_conn_run(struct conn *c)
{
	rlt_http_server *s = c->srv;
	int fd = c->fd;
	pthread_mutex_lock(&s->lock);
	c->task = rlt_current();
	pthread_mutex_unlock(&s->lock);
	int rc;
	if (s->o.tls) {
		/* HTTPS: the handshake first, within the header timeout (a
		 * client that connects and says nothing is dropped as one that
		 * sends no request would be). */
		c->tls = rlt_tls_server(s->o.tls, fd, s->o.header_timeout);
		if (!c->tls) {
			rc = -errno;
			rlt__http_conn_unregister(c);
			rlt_close(fd);
			conn_free(c);
			return rc;
		}
	}
	/* Connections receive through a receive queue: one multishot receive
	 * for the connection's life under io_uring (no submission per
	 * request). Where it would be rlt_recv (other policies,
	 * RINGLET_RXQ=0), the socket is read as before (rlt_recv_idle between
	 * requests). Under TLS, from the end of the handshake on. */
	c->rxq = rlt_rxq_open(fd); /* NULL (no memory): rlt_recv */
	if (c->rxq && !rlt_rxq_multishot(c->rxq)) {
		rlt_rxq_close(c->rxq);
		c->rxq = NULL;
	}
	if (c->tls && c->rxq)
		rlt_tls_use_rxq(c->tls, c->rxq);
	for (;;) {
		memset(&c->req, 0, sizeof(c->req));
		c->req.c = c;
		c->req.content_length = -1;
		rlt__http_response_reset(c);
		rc = read_head(c);
		if (rc)
			break;
		rc = handle(c);
		if (rc)
			break;
	}
	if (!c->res.err)
		rlt__http_flush(c);
	/* Close politely: shut the write side first, so that a client still
	 * sending does not get a reset that destroys the response it has not
	 * read yet (RFC 9112 9.6). */
	if (c->tls && !c->res.err && rc >= 0)
		rlt_tls_shutdown(c->tls); /* close_notify: a clean end, not a truncation */
	if (rc != 1 || c->close_after)
		rlt_shutdown(fd, SHUT_WR);
	rlt__http_conn_unregister(c);
	rlt_tls_free(c->tls);
	rlt_rxq_close(c->rxq); /* before the close: an armed receive holds the socket */
	rlt_close(fd);
	conn_free(c);
	return rc > 0 ? 0 : rc;
}

/* ---- request accessors ---- */

const char *rlt_http_request_method(const rlt_http_request *r)
{
	return r->method;
}

rlt_http_str rlt_http_request_target(const rlt_http_request *r)
{
	return r->target;
}

rlt_http_str rlt_http_request_path(const rlt_http_request *r)
{
	return r->path;
}

rlt_http_str rlt_http_request_query(const rlt_http_request *r)
{
	return r->query;
}

int rlt_http_request_version(const rlt_http_request *r)
{
	return r->version;
}

int64_t rlt_http_request_content_length(const rlt_http_request *r)
{
	return r->content_length;
}

static const char *hdr_value(const rlt_http_request *r, const struct hdr *h)
{
	return h->val_off == UINT32_MAX ? "" : r->head + h->val_off;
}

const char *rlt_http_request_header(const rlt_http_request *r, const char *name)
{
	const struct hdr *h = r->c->hdrs;
	for (unsigned i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->head + h[i].name_off, name) == 0)
			return hdr_value(r, &h[i]);
	return NULL;
}

size_t rlt_http_request_header_count(const rlt_http_request *r)
{
	return r->nhdr;
}

int rlt_http_request_header_at(const rlt_http_request *r, size_t i, const char **name,
			       const char **value)
{
	if (i >= r->nhdr)
		return -EINVAL;
	const struct hdr *h = &r->c->hdrs[i];
	if (name)
		*name = r->head + h->name_off;
	if (value)
		*value = hdr_value(r, h);
	return 0;
}

int rlt_http_request_peer(const rlt_http_request *r, rlt_addr *out)
{
	return rlt_net_peer(r->c->fd, out);
}
