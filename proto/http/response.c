/*
 * Responses: the head is built in the connection's write buffer, small
 * bodies are copied after it, and the buffer goes out when the connection
 * next needs to read (so a pipelined batch leaves in one send) or when a
 * body too large for it goes out with it in one sendmsg.
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

void rlt__http_response_reset(struct conn *c)
{
	rlt_http_response *res = &c->res;
	int err = res->err; /* a broken connection stays broken */
	res->c = c;
	res->status = 200;
	res->started = res->done = res->chunked = res->close_delim = res->head_only = false;
	res->hlen = 0;
	res->err = err;
}

/* sendmsg until iov[0..n) has gone, within io_timeout. The first error
 * sticks to the connection. */
static int send_iov(struct conn *c, struct iovec *iov, int n)
{
	rlt_http_response *res = &c->res;
	if (res->err)
		return res->err;
	dl_arm(c, c->srv->o.io_timeout);
	int rc = 0;
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = conn_sendmsg(c, &m, 0);
		if (w <= 0) {
			rc = w < 0 ? (int)w : -EIO;
			break;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	if (dl_disarm(c) < 0)
		rc = -ETIMEDOUT;
	if (rc < 0) {
		res->err = rc;
		c->close_after = true;
	}
	return rc;
}

int rlt__http_flush(struct conn *c)
{
	if (!c->wlen)
		return c->res.err;
	struct iovec iov = {c->wbuf, c->wlen};
	c->wlen = 0;
	return send_iov(c, &iov, 1);
}

const char *rlt_http_status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static char *put(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}
#define PUTS(o, lit) put(o, lit, sizeof(lit) - 1)

static char *put_u64(char *o, uint64_t v)
{
	char tmp[24];
	int i = 0;
	do
		tmp[i++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (i)
		*o++ = tmp[--i];
	return o;
}

static bool no_body_status(int st)
{
	return st == 204 || st == 304;
}

/* Queue the head. len: the body's length, or -1 for a streamed body. */
static int head_begin(struct conn *c, int64_t len)
{
	rlt_http_response *res = &c->res;
	rlt_http_request *req = &c->req;
	rlt_http_server *s = c->srv;
	if (res->err)
		return res->err;
	res->started = true;
	res->head_only = c->parser.method == HTTP_HEAD || no_body_status(res->status);
	bool close = c->close_after || !req->keep_alive ||
		     atomic_load_explicit(&s->stopping, memory_order_relaxed) ||
		     (req->expect_continue && !req->continue_sent && !req->msg_done);
	if (len < 0) {
		if (req->version < 11)
			res->close_delim = close = true;
		else
			res->chunked = true;
	}
	c->close_after = close;
	const char *reason = rlt_http_status_reason(res->status);
	size_t rlen = strlen(reason);
	size_t need = 16 + rlen + HTTP_DATE_LINE_LEN + s->server_hdr_len + res->hlen + 48 + 26 + 2;
	if (c->wlen + need > HTTP_WBUF_SIZE) {
		int rc = rlt__http_flush(c);
		if (rc < 0)
			return rc;
	}
	char *o = c->wbuf + c->wlen;
	o = PUTS(o, "HTTP/1.1 ");
	o = put_u64(o, (uint64_t)res->status);
	*o++ = ' ';
	o = put(o, reason, rlen);
	o = PUTS(o, "\r\n");
	rlt__http_date(o);
	o += HTTP_DATE_LINE_LEN;
	o = put(o, s->server_hdr, s->server_hdr_len);
	o = put(o, res->hbuf, res->hlen);
	if (close && req->version >= 11)
		o = PUTS(o, "Connection: close\r\n");
	else if (!close && req->version < 11)
		o = PUTS(o, "Connection: keep-alive\r\n");
	if (res->status == 204) {
		/* no framing at all */
	} else if (len >= 0) {
		o = PUTS(o, "Content-Length: ");
		o = put_u64(o, (uint64_t)len);
		o = PUTS(o, "\r\n");
	} else if (res->chunked) {
		o = PUTS(o, "Transfer-Encoding: chunked\r\n");
	}
	o = PUTS(o, "\r\n");
	c->wlen = (size_t)(o - c->wbuf);
	return 0;
}

int rlt_http_response_status(rlt_http_response *res, int status)
{
	if (!res || status < 200 || status > 999)
		return -EINVAL;
	if (res->started)
		return -EALREADY;
	res->status = status;
	return 0;
}

/* Whether a name of length len is one the library writes itself. */
static bool reserved_header(const char *n, size_t len)
{
	switch (n[0] | 0x20) { /* most names are not: one look at the first letter */
	case 'c':
	case 't':
	case 'd':
	case 's':
		break;
	default:
		return false;
	}
	static const struct {
		const char *s;
		size_t len;
	} names[] = {{"content-length", 14},
		     {"transfer-encoding", 17},
		     {"connection", 10},
		     {"date", 4},
		     {"server", 6}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == names[i].len && strcasecmp(n, names[i].s) == 0)
			return true;
	return false;
}

int rlt_http_response_header(rlt_http_response *res, const char *name, const char *value)
{
	if (!res || !name || !value || !name[0])
		return -EINVAL;
	/* One pass each: the length up to the first byte that would break
	 * the head (CR, LF, ':', space, tab in a name; CR, LF in a value). */
	size_t nl = strcspn(name, "\r\n: \t"), vl = strcspn(value, "\r\n");
	if (name[nl] || value[vl] || reserved_header(name, nl))
		return -EINVAL;
	if (res->started)
		return -EALREADY;
	if (res->hlen + nl + vl + 4 > HTTP_HBUF_SIZE)
		return -ENOSPC;
	char *o = res->hbuf + res->hlen;
	o = put(o, name, nl);
	o = PUTS(o, ": ");
	o = put(o, value, vl);
	o = PUTS(o, "\r\n");
	res->hlen = (size_t)(o - res->hbuf);
	return 0;
}

int rlt_http_response_sendv(rlt_http_response *res, const struct iovec *iov, int iovcnt)
{
	if (!res || iovcnt < 0 || iovcnt > 64 || (!iov && iovcnt))
		return -EINVAL;
	if (res->started)
		return -EALREADY;
	struct conn *c = res->c;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	int rc = head_begin(c, (int64_t)total);
	if (rc < 0)
		return rc;
	res->done = true;
	if (res->head_only || total == 0)
		return 0;
	if (total <= HTTP_WBUF_SIZE - c->wlen) {
		for (int i = 0; i < iovcnt; i++) {
			memcpy(c->wbuf + c->wlen, iov[i].iov_base, iov[i].iov_len);
			c->wlen += iov[i].iov_len;
		}
		return 0;
	}
	struct iovec v[65];
	v[0] = (struct iovec){c->wbuf, c->wlen};
	memcpy(v + 1, iov, sizeof(*iov) * (size_t)iovcnt);
	c->wlen = 0;
	return send_iov(c, v, iovcnt + 1);
}

int rlt_http_response_send(rlt_http_response *res, const void *body, size_t len)
{
	if (!body && len)
		return -EINVAL;
	struct iovec iov = {(void *)body, len};
	return rlt_http_response_sendv(res, &iov, len ? 1 : 0);
}

/*
 * A large file body with rlt_sendfile: page cache to socket without a copy
 * through user space (a splice through a pipe under io_uring, sendfile(2)
 * under epoll). The head goes first, marked as more to come (under
 * TCP_NODELAY it then shares a segment with the file's start). -ENOSYS:
 * the file cannot be sent so (not a regular file: a pipe, a /proc file);
 * use the copying path; nothing of the body was sent then.
 */
static int send_file_direct(struct conn *c, int fd, off_t offset, size_t len)
{
	rlt_http_response *res = &c->res;
	struct stat st;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return -ENOSYS;
	dl_arm(c, c->srv->o.io_timeout);
	int rc = 0;
	while (c->wlen && rc == 0) {
		struct iovec v = {c->wbuf, c->wlen};
		struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
		ssize_t w = conn_sendmsg(c, &m, MSG_MORE);
		if (w <= 0) {
			rc = w < 0 ? (int)w : -EIO;
			break;
		}
		memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
		c->wlen -= (size_t)w;
	}
	if (rc == 0) {
		ssize_t n = c->tls ? rlt_tls_sendfile(c->tls, fd, offset, len)
				   : rlt_sendfile(c->fd, fd, offset, len);
		rc = n < 0 ? (int)n : (size_t)n < len ? -EIO : 0;
	}
	if (dl_disarm(c) < 0)
		rc = -ETIMEDOUT;
	if (rc < 0) {
		c->wlen = 0;
		res->err = rc;
		c->close_after = true;
	}
	return rc;
}

int rlt_http_response_sendfile(rlt_http_response *res, int fd, off_t offset, size_t len)
{
	if (!res || fd < 0 || offset < 0)
		return -EINVAL;
	if (res->started)
		return -EALREADY;
	struct conn *c = res->c;
	int rc = head_begin(c, (int64_t)len);
	if (rc < 0)
		return rc;
	res->done = true;
	if (res->head_only || len == 0)
		return 0;
	if (len <= HTTP_WBUF_SIZE - c->wlen) {
		/* Small: read after the head, and leave with the batch. */
		ssize_t n = rlt_read_full(fd, c->wbuf + c->wlen, len, offset);
		if (n != (ssize_t)len) {
			c->close_after = true;
			res->err = n < 0 ? (int)n : -EIO;
			return res->err;
		}
		c->wlen += len;
		return 0;
	}
	rc = send_file_direct(c, fd, offset, len);
	if (rc != -ENOSYS)
		return rc;
	if (!c->filebuf && !(c->filebuf = malloc(HTTP_FILE_CHUNK))) {
		c->close_after = true;
		return res->err = -ENOMEM;
	}
	while (len) {
		size_t chunk = len < HTTP_FILE_CHUNK ? len : HTTP_FILE_CHUNK;
		ssize_t n = rlt_read_full(fd, c->filebuf, chunk, offset);
		if (n != (ssize_t)chunk) {
			c->close_after = true;
			return res->err = n < 0 ? (int)n : -EIO;
		}
		struct iovec v[2] = {{c->wbuf, c->wlen}, {c->filebuf, chunk}};
		int i = c->wlen ? 0 : 1;
		c->wlen = 0;
		if ((rc = send_iov(c, v + i, 2 - i)) < 0)
			return rc;
		len -= chunk;
		offset += (off_t)chunk;
	}
	return 0;
}

int rlt_http_response_write(rlt_http_response *res, const void *data, size_t len)
{
	if (!res || (!data && len))
		return -EINVAL;
	struct conn *c = res->c;
	if (!res->started) {
		int rc = head_begin(c, -1);
		if (rc < 0)
			return rc;
	} else if (!res->chunked && !res->close_delim) {
		return -EALREADY;
	}
	if (res->done)
		return -EALREADY;
	if (res->err)
		return res->err;
	if (res->head_only || len == 0)
		return 0;
	char size[24];
	struct iovec v[4];
	int n = 0;
	if (c->wlen)
		v[n++] = (struct iovec){c->wbuf, c->wlen};
	if (res->chunked)
		v[n++] = (struct iovec){size, (size_t)snprintf(size, sizeof(size), "%zx\r\n", len)};
	v[n++] = (struct iovec){(void *)data, len};
	if (res->chunked)
		v[n++] = (struct iovec){(void *)"\r\n", 2};
	c->wlen = 0;
	return send_iov(c, v, n);
}

int rlt_http_response_end(rlt_http_response *res)
{
	if (!res)
		return -EINVAL;
	struct conn *c = res->c;
	if (!res->started || (!res->chunked && !res->close_delim))
		return -EINVAL;
	if (res->done)
		return res->err;
	res->done = true;
	if (res->err)
		return res->err;
	if (res->chunked && !res->head_only) {
		if (c->wlen + 5 > HTTP_WBUF_SIZE) {
			int rc = rlt__http_flush(c);
			if (rc < 0)
				return rc;
		}
		memcpy(c->wbuf + c->wlen, "0\r\n\r\n", 5);
		c->wlen += 5;
	}
	return 0;
}

bool rlt_http_response_started(const rlt_http_response *res)
{
	return res && res->started;
}

/* A short error response that closes the connection (bad input, limits,
 * timeouts), if nothing of a response was sent yet. */
int rlt__http_send_error(struct conn *c, int status)
{
	rlt_http_response *res = &c->res;
	c->close_after = true;
	if (res->started)
		return 0;
	res->status = status;
	res->hlen = 0;
	rlt_http_response_header(res, "Content-Type", "text/plain");
	const char *reason = rlt_http_status_reason(status);
	struct iovec v[2] = {{(void *)reason, strlen(reason)}, {(void *)"\n", 1}};
	return rlt_http_response_sendv(res, v, 2);
}

int rlt__http_response_finish(struct conn *c, int handler_rc)
{
	rlt_http_response *res = &c->res;
	rlt_http_request *req = &c->req;
	if (res->err)
		return res->err;
	if (!res->started) {
		if (handler_rc >= 0)
			return rlt_http_response_send(res, NULL, 0);
		if (req->body_err == -EMSGSIZE)
			return rlt__http_send_error(c, 413);
		if (req->body_err == -EBADMSG)
			return rlt__http_send_error(c, 400);
		res->status = 500;
		res->hlen = 0;
		rlt_http_response_header(res, "Content-Type", "text/plain");
		return rlt_http_response_send(res, "Internal Server Error\n", 22);
	}
	if (!res->done) {
		if (handler_rc < 0) { /* the body is cut short: only a close says so */
			c->close_after = true;
			return -ECONNABORTED;
		}
		return rlt_http_response_end(res);
	}
	return res->err;
}
