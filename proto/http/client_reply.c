/*
 * The reply: a response as the client receives it, and the connection it
 * came on until it is freed. The head's accessors read the parser's
 * index; the body comes from the read-ahead after the head, or straight
 * from the socket into the caller's buffer when a read is large and the
 * body is framed by its length or the connection's end (chunked bodies go
 * through llhttp: client_parse.c).
 */
#include "client_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIRECT_MIN  4096	/* reads this large bypass the read-ahead */
#define WRITE_CHUNK (64 * 1024) /* rlt_http_reply_write_to's pieces */

int rlt_http_reply_status(const rlt_http_reply *r)
{
	return r ? r->resp.status : -EINVAL;
}

const char *rlt_http_reply_reason(const rlt_http_reply *r)
{
	if (!r)
		return NULL;
	return r->resp.reason_len ? r->resp.buf + r->resp.reason : "";
}

int rlt_http_reply_version(const rlt_http_reply *r)
{
	return r ? r->resp.version : -EINVAL;
}

const char *rlt_http_reply_url(const rlt_http_reply *r)
{
	return r ? r->url : NULL;
}

const char *rlt_http_reply_header(const rlt_http_reply *r, const char *name)
{
	return r && name ? rlt__http_resp_header(&r->resp, name) : NULL;
}

size_t rlt_http_reply_header_count(const rlt_http_reply *r)
{
	return r ? r->resp.nhdrs : 0;
}

int rlt_http_reply_header_at(const rlt_http_reply *r, size_t i, const char **name,
			     const char **value)
{
	if (!r || i >= r->resp.nhdrs)
		return -ERANGE;
	if (name)
		*name = r->resp.buf + r->resp.hdrs[i].name;
	if (value)
		*value = r->resp.buf + r->resp.hdrs[i].value;
	return 0;
}

int64_t rlt_http_reply_content_length(const rlt_http_reply *r)
{
	return r ? r->resp.content_length : -1;
}

/* One piece of body: from the buffer, or from the socket (straight into
 * buf when it is large and the framing allows). */
static ssize_t read_some(rlt_http_reply *r, char *buf, size_t len)
{
	rlt__http_resp *p = &r->resp;
	for (;;) {
		ssize_t n = rlt__http_resp_take(p, buf, len);
		if (n != 0 || p->state == RLT__RESP_DONE)
			return n;
		bool direct = len >= DIRECT_MIN &&
			      (p->state == RLT__RESP_LENGTH || p->state == RLT__RESP_EOF);
		if (direct && p->state == RLT__RESP_LENGTH && len > p->remaining)
			len = (size_t)p->remaining;
		char *to = direct ? buf : p->buf + p->end;
		n = rlt__http_conn_recv(r, to, direct ? len : p->cap - p->end);
		if (n < 0 && rlt__http_again(r->fd, &n, POLLIN))
			continue;
		if (n < 0)
			return n;
		if (n == 0) {
			int rc = rlt__http_resp_eof(p);
			return rc < 0 ? rc : 0;
		}
		if (!direct) {
			p->end += (size_t)n;
			continue;
		}
		if (p->state == RLT__RESP_LENGTH && (p->remaining -= (uint64_t)n) == 0)
			p->state = RLT__RESP_DONE;
		return n;
	}
}

ssize_t rlt_http_reply_read(rlt_http_reply *r, void *buf, size_t len)
{
	if (!r || !buf || !len)
		return -EINVAL;
	if (r->resp.err)
		return r->resp.err;
	if (r->resp.state == RLT__RESP_DONE && r->resp.pos == r->resp.end)
		return 0;
	rlt_scope sc;
	bool scoped = r->deadline && rlt_scope_enter_at(&sc, r->deadline) == 0;
	ssize_t n = read_some(r, buf, len);
	if (scoped)
		rlt_scope_leave(&sc);
	if (n < 0) {
		r->resp.err = (int)n;
		r->broken = true;
	}
	return n;
}

static int body_reserve(rlt_http_reply *r, size_t need)
{
	if (need <= r->body_cap)
		return 0;
	size_t cap = r->body_cap ? r->body_cap : 4096;
	while (cap < need)
		cap *= 2;
	char *b = realloc(r->body, cap);
	if (!b)
		return -ENOMEM;
	r->body = b;
	r->body_cap = cap;
	return 0;
}

ssize_t rlt_http_reply_body(rlt_http_reply *r, size_t limit, const char **body)
{
	if (!r || !body || limit > SIZE_MAX / 4)
		return -EINVAL;
	int64_t cl = r->resp.content_length;
	if (cl >= 0 && r->resp.state != RLT__RESP_DONE && (uint64_t)cl > limit)
		return -EMSGSIZE;
	size_t want = cl >= 0 ? (size_t)cl + 1 : 16 * 1024;
	if (want > limit + 2)
		want = limit + 2;
	if (body_reserve(r, want) < 0)
		return -ENOMEM;
	size_t got = 0;
	for (;;) {
		if (got + 1 == r->body_cap) {
			if (got > limit)
				break;
			size_t grow = r->body_cap * 2;
			if (body_reserve(r, grow > limit + 2 ? limit + 2 : grow) < 0)
				return -ENOMEM;
		}
		ssize_t n = rlt_http_reply_read(r, r->body + got, r->body_cap - 1 - got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > limit) {
		r->broken = true;
		return -EMSGSIZE;
	}
	r->body[got] = '\0';
	*body = r->body;
	return (ssize_t)got;
}

ssize_t rlt_http_reply_write_to(rlt_http_reply *r, int fd, off_t offset)
{
	if (!r || fd < 0)
		return -EINVAL;
	if (body_reserve(r, WRITE_CHUNK) < 0)
		return -ENOMEM;
	size_t total = 0;
	for (;;) {
		ssize_t n = rlt_http_reply_read(r, r->body, WRITE_CHUNK);
		if (n <= 0)
			return n < 0 ? n : (ssize_t)total;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = rlt_write(fd, r->body + done, (size_t)(n - done), offset);
			if (w < 0 && rlt__http_again(fd, &w, POLLOUT))
				continue;
			if (w <= 0)
				return w < 0 ? w : -EIO;
			done += w;
			if (offset >= 0)
				offset += w;
		}
		total += (size_t)n;
	}
}

ssize_t rlt_http_download(rlt_http_client *c, const char *url, int fd, off_t offset, int *status)
{
	rlt_http_reply *r;
	int rc = rlt_http_fetch_url(c, url, &r);
	if (rc < 0)
		return rc;
	int st = rlt_http_reply_status(r);
	if (status)
		*status = st;
	ssize_t n = st >= 200 && st < 300 ? rlt_http_reply_write_to(r, fd, offset) : -EREMOTEIO;
	rlt_http_reply_free(r);
	return n;
}

void rlt_http_reply_free(rlt_http_reply *r)
{
	if (!r)
		return;
	rlt__http_resp *p = &r->resp;
	/* A Content-Length body that is all in the buffer is as good as read. */
	if (p->state == RLT__RESP_LENGTH && p->end - p->pos == p->remaining) {
		p->pos = p->end;
		p->state = RLT__RESP_DONE;
	}
	bool reuse = !r->broken && !p->err && p->keep_alive && p->state == RLT__RESP_DONE &&
		     p->pos == p->end;
	rlt__http_conn_release(r, reuse);
}
