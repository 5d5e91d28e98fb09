/*
 * The HTTP client's response parser: llhttp in HTTP_RESPONSE mode over the
 * connection's buffer, with no I/O (client.c reads; the fuzz target feeds
 * bytes straight in).
 *
 * The head is parsed in place: llhttp's spans become offsets into the
 * buffer (a span split across two reads is extended, the bytes being
 * contiguous), and once the head is complete each name, value and the
 * reason phrase is NUL-terminated where its delimiter was (':' or the
 * line's CR/LF, or trailing blanks), bytes llhttp has already passed. The
 * head stays at the buffer's start until the reply is freed; the body's
 * read-ahead lives after it.
 *
 * llhttp stops (HPE_PAUSED from on_headers_complete) at the head's end.
 * A Content-Length body or one that runs to the connection's end is then
 * copied (or read straight into the caller's buffer, by client.c) without
 * llhttp; a chunked one goes through llhttp, fed at most as many raw bytes
 * as the caller has room for (decoded bytes never outnumber raw ones, so
 * on_body always fits), and it stops again at the message's end, leaving
 * anything after it unparsed (such a connection is not reused).
 */
#include "client_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NO_VALUE UINT32_MAX

static rlt__http_resp *resp_of(llhttp_t *p)
{
	return p->data;
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
	rlt__http_resp *r = resp_of(p);
	if (r->reason_len == 0)
		r->reason = (uint32_t)(at - r->buf);
	r->reason_len += (uint32_t)n;
	return 0;
}

/* A field span: a new header, or more of the current one's name (its span
 * split across reads: the bytes follow each other in the buffer). */
static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	rlt__http_resp *r = resp_of(p);
	if (r->state != RLT__RESP_HEAD)
		return 0; /* a chunked body's trailers: not kept */
	if (r->nhdrs > 0 && !r->in_value && r->hdrs[r->nhdrs - 1].value == NO_VALUE) {
		r->hdrs[r->nhdrs - 1].name_len += (uint32_t)n;
		return 0;
	}
	if (r->nhdrs == r->max_headers) {
		r->err = -EMSGSIZE;
		return -1;
	}
	if (r->nhdrs == r->hdrs_cap) {
		unsigned cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
		rlt__http_hdr *h = realloc(r->hdrs, cap * sizeof(*h));
		if (!h) {
			r->err = -ENOMEM;
			return -1;
		}
		r->hdrs = h;
		r->hdrs_cap = cap;
	}
	r->hdrs[r->nhdrs++] = (rlt__http_hdr){(uint32_t)(at - r->buf), (uint32_t)n, NO_VALUE, 0};
	r->in_value = false;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	rlt__http_resp *r = resp_of(p);
	if (r->state != RLT__RESP_HEAD || r->nhdrs == 0)
		return 0;
	rlt__http_hdr *h = &r->hdrs[r->nhdrs - 1];
	if (h->value == NO_VALUE)
		h->value = (uint32_t)(at - r->buf);
	h->value_len += (uint32_t)n;
	return 0;
}

/* The header line is over: the next field span starts a new header (an
 * empty value may have had no span at all). */
static int on_header_value_complete(llhttp_t *p)
{
	resp_of(p)->in_value = true;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	rlt__http_resp *r = resp_of(p);
	if (n > r->dst_len - r->dst_got) { /* cannot happen: raw bytes >= decoded ones */
		r->err = -EBADMSG;
		return -1;
	}
	memcpy(r->dst + r->dst_got, at, n);
	r->dst_got += n;
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	resp_of(p)->state = RLT__RESP_DONE;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void parser_init(rlt__http_resp *r)
{
	llhttp_init(&r->p, HTTP_RESPONSE, &settings);
	r->p.data = r;
	r->nhdrs = 0;
	r->reason = 0;
	r->reason_len = 0;
	r->in_value = false;
}

void rlt__http_resp_begin(rlt__http_resp *r, bool head_request)
{
	parser_init(r);
	r->head_request = head_request;
	r->state = RLT__RESP_HEAD;
	r->err = 0;
	r->status = 0;
	r->version = 0;
	r->keep_alive = false;
	r->remaining = 0;
	r->content_length = -1;
	r->head_end = r->pos;
	r->dst = NULL;
	r->dst_len = r->dst_got = 0;
}

static int parse_error(rlt__http_resp *r)
{
	return r->err ? r->err : -EBADMSG;
}

/* NUL-terminate the head's strings where their delimiters were, trimming
 * the blanks llhttp leaves at a value's end. */
static void terminate_strings(rlt__http_resp *r)
{
	for (unsigned i = 0; i < r->nhdrs; i++) {
		rlt__http_hdr *h = &r->hdrs[i];
		r->buf[h->name + h->name_len] = '\0';
		while (h->value != NO_VALUE && h->value_len > 0 &&
		       (r->buf[h->value + h->value_len - 1] == ' ' ||
			r->buf[h->value + h->value_len - 1] == '\t'))
			h->value_len--;
		if (h->value == NO_VALUE || h->value_len == 0) {
			/* Empty: point at the name's NUL. (llhttp may report an
			 * empty value's span where the next line starts: writing
			 * there would cut the next name short.) */
			h->value = h->name + h->name_len;
			h->value_len = 0;
			continue;
		}
		r->buf[h->value + h->value_len] = '\0';
	}
	if (r->reason_len > 0)
		r->buf[r->reason + r->reason_len] = '\0';
}

int rlt__http_resp_head(rlt__http_resp *r)
{
	for (;;) {
		if (r->state != RLT__RESP_HEAD)
			return 1;
		size_t avail = r->end - r->pos;
		if (avail == 0)
			return 0;
		const char *at = r->buf + r->pos;
		llhttp_errno_t e = llhttp_execute(&r->p, at, avail);
		if (e == HPE_OK) {
			r->pos = r->end;
			return r->end - r->head_end > r->max_header_size ? -EMSGSIZE : 0;
		}
		if (e != HPE_PAUSED)
			return parse_error(r);
		r->pos = (size_t)(llhttp_get_error_pos(&r->p) - r->buf);
		if (r->pos - r->head_end > r->max_header_size)
			return -EMSGSIZE;
		r->status = r->p.status_code;
		r->version = r->p.http_major * 10 + r->p.http_minor;
		if (r->status == 101)
			return -EBADMSG; /* never asked for: an upgrade would leave HTTP */
		if (r->status < 200) {
			/* An interim response (100 Continue, 103 Early Hints):
			 * skip it, the real one follows. */
			parser_init(r);
			r->head_end = r->pos;
			continue;
		}
		terminate_strings(r);
		r->keep_alive = llhttp_should_keep_alive(&r->p);
		r->head_end = r->pos;
		if (r->head_request || r->status == 204 || r->status == 304) {
			r->content_length = 0;
			r->state = RLT__RESP_DONE;
		} else if (r->p.flags & F_CHUNKED) {
			r->state = RLT__RESP_CHUNKED;
			llhttp_resume(&r->p);
		} else if (r->p.flags & F_CONTENT_LENGTH) {
			r->content_length = (int64_t)r->p.content_length;
			r->remaining = r->p.content_length;
			r->state = r->remaining ? RLT__RESP_LENGTH : RLT__RESP_DONE;
		} else {
			r->state = RLT__RESP_EOF;
			r->keep_alive = false;
		}
		return 1;
	}
}

ssize_t rlt__http_resp_take(rlt__http_resp *r, char *dst, size_t len)
{
	if (r->err)
		return r->err;
	size_t got = 0;
	switch (r->state) {
	case RLT__RESP_LENGTH:
	case RLT__RESP_EOF:
		got = r->end - r->pos;
		if (got > len)
			got = len;
		if (r->state == RLT__RESP_LENGTH && got > r->remaining)
			got = (size_t)r->remaining;
		memcpy(dst, r->buf + r->pos, got);
		r->pos += got;
		if (r->state == RLT__RESP_LENGTH && (r->remaining -= got) == 0)
			r->state = RLT__RESP_DONE;
		break;
	case RLT__RESP_CHUNKED:
		r->dst = dst;
		r->dst_len = len;
		r->dst_got = 0;
		/* Each pass consumes at least one raw byte, or stops. */
		while (r->state == RLT__RESP_CHUNKED && r->pos < r->end && r->dst_got < len) {
			size_t feed = r->end - r->pos;
			if (feed > len - r->dst_got)
				feed = len - r->dst_got;
			llhttp_errno_t e = llhttp_execute(&r->p, r->buf + r->pos, feed);
			if (e == HPE_OK) {
				r->pos += feed;
			} else if (e == HPE_PAUSED && r->state == RLT__RESP_DONE) {
				r->pos = (size_t)(llhttp_get_error_pos(&r->p) - r->buf);
			} else {
				r->err = parse_error(r);
				return r->err;
			}
		}
		got = r->dst_got;
		r->dst = NULL;
		break;
	default:
		break;
	}
	/* Everything buffered is consumed: reading resumes after the head. */
	if (r->pos == r->end && r->state != RLT__RESP_HEAD)
		r->pos = r->end = r->head_end;
	return (ssize_t)got;
}

int rlt__http_resp_eof(rlt__http_resp *r)
{
	if (r->state == RLT__RESP_EOF) {
		r->state = RLT__RESP_DONE;
		return 0;
	}
	return r->state == RLT__RESP_DONE ? 0 : -EPIPE;
}

const char *rlt__http_resp_header(const rlt__http_resp *r, const char *name)
{
	for (unsigned i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->buf + r->hdrs[i].name, name) == 0)
			return r->buf + r->hdrs[i].value;
	return NULL;
}

void rlt__http_resp_free(rlt__http_resp *r)
{
	free(r->hdrs);
	r->hdrs = NULL;
	r->nhdrs = r->hdrs_cap = 0;
}

/* The fuzz target's driver: the bytes arrive in pieces whose sizes come
 * from the first byte, as recv would hand them over; the head, then the
 * body into a small buffer, then the end of the connection. Returns the
 * body's length or a negative errno; aborts if an invariant breaks. */
int rlt__http_client_fuzz(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 97) + 1;
	bool head_req = data[0] & 0x80;
	data++;
	size--;
	rlt__http_resp r = {0};
	r.max_header_size = 4096;
	r.max_headers = 32;
	r.cap = 8192;
	r.buf = malloc(r.cap);
	if (!r.buf)
		return -ENOMEM;
	rlt__http_resp_begin(&r, head_req);
	char out[777];
	size_t off = 0, body = 0;
	int rc = 0;
	for (;;) {
		if (r.state == RLT__RESP_HEAD) {
			rc = rlt__http_resp_head(&r);
			if (rc < 0)
				break;
			if (rc == 1) {
				/* Every header is a NUL-terminated string in the buffer. */
				for (unsigned i = 0; i < r.nhdrs; i++)
					if (strlen(r.buf + r.hdrs[i].name) != r.hdrs[i].name_len ||
					    strlen(r.buf + r.hdrs[i].value) != r.hdrs[i].value_len)
						abort();
				continue;
			}
		} else {
			ssize_t n = rlt__http_resp_take(&r, out, sizeof(out));
			if (n < 0) {
				rc = (int)n;
				break;
			}
			body += (size_t)n;
			if (body > size)
				abort(); /* more body than input */
			if (r.state == RLT__RESP_DONE) {
				rc = 0;
				break;
			}
			if (n > 0)
				continue;
		}
		if (off == size) { /* the connection ends */
			rc = rlt__http_resp_eof(&r);
			break;
		}
		if (r.end == r.cap) {
			rc = -EMSGSIZE;
			break;
		}
		size_t n = size - off;
		if (n > step)
			n = step;
		if (n > r.cap - r.end)
			n = r.cap - r.end;
		memcpy(r.buf + r.end, data + off, n);
		r.end += n;
		off += n;
	}
	rlt__http_resp_free(&r);
	free(r.buf);
	return rc < 0 ? rc : (int)body;
}
