/* Buffered streams (include/ringlet/bufstream.h): rlt_reader, rlt_writer.
 *
 * The reader keeps the bytes not yet returned in buf[start, end). It reads
 * only when a call needs more than is buffered, one system call for as
 * much as fits. A delimiter search remembers how far it got (scanned), so
 * a record arriving in many small pieces is searched once, not once per
 * piece. The buffer is compacted (the live bytes moved to its front) only
 * when its tail is full, and grows by doubling, never beyond the limit: a
 * peer that never sends a newline costs limit bytes, not memory without
 * bound.
 *
 * Plain recv into the buffer, no provided-buffer rings or multishot recv:
 * 500k 64-byte lines through a default rlt_writer and rlt_reader_readline
 * over a socket pair, one worker, take 28-30 ms here (17M lines/s, 1.1
 * GB/s) under io_uring and epoll alike; the system calls are amortised
 * over 64 KiB refills, and a ring would pay off (if at all) in memory for
 * many idle connections, which was not measured. docs/NETWORKING.md has
 * the echo measurements of multishot recv with provided buffers. */
#include "ringlet/bufstream.h"

#include "ringlet/io.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define READER_INITIAL 8192
#define WRITER_DEFAULT (64 * 1024)

struct rlt_reader {
	int fd;
	bool sock; /* recv(2), not read(2): no per-call fstat under epoll */
	bool eof;  /* the fd said end of stream: never read again */
	size_t limit;
	unsigned char *buf;
	size_t cap, start, end;
	/* Positions start .. start+scanned-1 cannot begin the delimiter last
	 * searched for, sdelim (valid while nothing is consumed: reset by
	 * consume, and by a search for another delimiter). */
	size_t scanned;
	unsigned char sdelim[8];
	size_t sdlen; /* 0: none remembered (or longer than sdelim) */
};

struct rlt_writer {
	int fd;
	bool sock;
	int err; /* sticky: the first failed send */
	unsigned char *buf;
	size_t cap, len;
};

/* Whether fd is a socket (0/1), or a negative errno. */
static int is_socket(int fd)
{
	struct stat st;
	if (fd < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	return S_ISSOCK(st.st_mode);
}

/* One read of at most len bytes: > 0, 0 at end of stream, or a negative
 * errno. -EINTR is retried, -EAGAIN waits for readability. */
static ssize_t read_some(rlt_reader *r, void *p, size_t len)
{
	for (;;) {
		ssize_t n = r->sock ? rlt_recv(r->fd, p, len, 0) : rlt_read(r->fd, p, len, -1);
		if (n == 0)
			r->eof = true;
		if (n >= 0 || (n != -EINTR && n != -EAGAIN))
			return n;
		if (n == -EAGAIN) {
			int ev = rlt_poll(r->fd, POLLIN);
			if (ev < 0 && ev != -EINTR && ev != -EAGAIN)
				return ev;
		}
	}
}

static inline size_t avail(const rlt_reader *r)
{
	return r->end - r->start;
}

static inline void consume(rlt_reader *r, size_t n)
{
	r->start += n;
	r->scanned = 0;
	if (r->start == r->end)
		r->start = r->end = 0;
}

/* Read once into the buffer's free tail, making room first (compacting,
 * else growing up to the limit). > 0, 0 at end of stream, -ENOBUFS when
 * the buffer is full at the limit, or a negative errno. */
static ssize_t fill(rlt_reader *r)
{
	if (r->end == r->cap && r->start > 0) {
		memmove(r->buf, r->buf + r->start, avail(r));
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		if (r->cap >= r->limit)
			return -ENOBUFS;
		size_t cap = r->cap * 2 < r->limit ? r->cap * 2 : r->limit;
		unsigned char *b = rlt__realloc(r->buf, cap);
		if (!b)
			return -ENOMEM;
		r->buf = b;
		r->cap = cap;
	}
	ssize_t n = read_some(r, r->buf + r->end, r->cap - r->end);
	if (n > 0)
		r->end += (size_t)n;
	return n;
}

rlt_reader *rlt_reader_new(int fd, size_t limit)
{
	int sock = is_socket(fd);
	if (sock < 0) {
		errno = -sock;
		return NULL;
	}
	if (!limit)
		limit = RLT_STREAM_LIMIT_DEFAULT;
	rlt_reader *r = rlt__calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->cap = limit < READER_INITIAL ? limit : READER_INITIAL;
	r->buf = rlt__malloc(r->cap);
	if (!r->buf) {
		rlt__free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->fd = fd;
	r->sock = sock;
	r->limit = limit;
	return r;
}

void rlt_reader_free(rlt_reader *r)
{
	if (!r)
		return;
	rlt__free(r->buf);
	rlt__free(r);
}

size_t rlt_reader_buffered(const rlt_reader *r)
{
	return r ? avail(r) : 0;
}

bool rlt_reader_at_eof(const rlt_reader *r)
{
	return r && r->eof && !avail(r);
}

ssize_t rlt_reader_readuntil(rlt_reader *r, const void *delim, size_t dlen, const char **out)
{
	if (!r || !delim || !out || !dlen || dlen > r->limit)
		return -EINVAL;
	/* What was scanned for another delimiter says nothing of this one
	 * (found by fuzz_bufreader: a readline's -EMSGSIZE, then a
	 * readuntil missed its delimiter in the bytes readline had seen). */
	if (r->scanned && (dlen != r->sdlen || memcmp(delim, r->sdelim, dlen) != 0))
		r->scanned = 0;
	if (dlen <= sizeof(r->sdelim)) {
		memcpy(r->sdelim, delim, dlen);
		r->sdlen = dlen;
	} else {
		r->sdlen = 0;
	}
	for (;;) {
		size_t have = avail(r);
		if (have >= dlen) {
			const unsigned char *base = r->buf + r->start;
			const unsigned char *hit =
			    memmem(base + r->scanned, have - r->scanned, delim, dlen);
			if (hit) {
				size_t len = (size_t)(hit - base) + dlen;
				if (len > r->limit)
					return -EMSGSIZE;
				*out = (const char *)base;
				consume(r, len);
				return (ssize_t)len;
			}
			/* A match may still begin in the last dlen-1 bytes. */
			r->scanned = have - dlen + 1;
		}
		if (have >= r->limit)
			return -EMSGSIZE; /* the record would be longer than the limit */
		if (r->eof)
			return have ? -EPIPE : 0;
		ssize_t n = fill(r);
		if (n < 0)
			return n == -ENOBUFS ? -EMSGSIZE : n;
	}
}

ssize_t rlt_reader_readline(rlt_reader *r, const char **out)
{
	ssize_t n = rlt_reader_readuntil(r, "\n", 1, out);
	if (n != -EPIPE)
		return n;
	/* The last line, without its newline. */
	n = (ssize_t)avail(r);
	*out = (const char *)r->buf + r->start;
	consume(r, (size_t)n);
	return n;
}

ssize_t rlt_reader_readexactly(rlt_reader *r, void *buf, size_t n)
{
	if (!r || (!buf && n) || n > SSIZE_MAX)
		return -EINVAL;
	unsigned char *p = buf;
	size_t got = 0;
	while (got < n) {
		size_t have = avail(r);
		if (have) {
			size_t k = have < n - got ? have : n - got;
			memcpy(p + got, r->buf + r->start, k);
			consume(r, k);
			got += k;
			continue;
		}
		if (r->eof)
			break;
		/* A buffer's worth or more to go: straight into the caller's
		 * buffer, no copy. Less: fill ours, which may read ahead. */
		ssize_t k = n - got >= r->cap ? read_some(r, p + got, n - got) : fill(r);
		if (k < 0)
			return k;
		if (k > 0 && n - got >= r->cap)
			got += (size_t)k;
	}
	return (ssize_t)got;
}

ssize_t rlt_reader_read(rlt_reader *r, void *buf, size_t len)
{
	if (!r || (!buf && len))
		return -EINVAL;
	if (!len)
		return 0;
	if (!avail(r)) {
		if (r->eof)
			return 0;
		if (len >= r->cap)
			return read_some(r, buf, len > SSIZE_MAX ? SSIZE_MAX : len);
		ssize_t n = fill(r);
		if (n <= 0)
			return n;
	}
	size_t k = avail(r) < len ? avail(r) : len;
	memcpy(buf, r->buf + r->start, k);
	consume(r, k);
	return (ssize_t)k;
}

/* ---- the writer ---- */

rlt_writer *rlt_writer_new(int fd, size_t bufsize)
{
	int sock = is_socket(fd);
	if (sock < 0) {
		errno = -sock;
		return NULL;
	}
	rlt_writer *w = rlt__calloc(1, sizeof(*w));
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	w->cap = bufsize ? bufsize : WRITER_DEFAULT;
	w->buf = rlt__malloc(w->cap);
	if (!w->buf) {
		rlt__free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->fd = fd;
	w->sock = sock;
	return w;
}

/* Send all of p, or break the writer. */
static int send_out(rlt_writer *w, const void *p, size_t len)
{
	ssize_t n = w->sock ? rlt_send_all(w->fd, p, len, 0) : rlt_write_all(w->fd, p, len, -1);
	if (n < 0) {
		/* -EPERM outside a task is the caller's mistake, not the
		 * stream's: it does not break the writer. */
		if (n != -EPERM)
			w->err = (int)n;
		return (int)n;
	}
	return 0;
}

int rlt_writer_flush(rlt_writer *w)
{
	if (!w)
		return -EINVAL;
	if (w->err)
		return w->err;
	if (!w->len)
		return 0;
	int rc = send_out(w, w->buf, w->len);
	if (rc == 0)
		w->len = 0;
	return rc;
}

ssize_t rlt_writer_write(rlt_writer *w, const void *buf, size_t len)
{
	if (!w || (!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	if (w->err)
		return w->err;
	if (len <= w->cap - w->len) {
		memcpy(w->buf + w->len, buf, len);
		w->len += len;
		return (ssize_t)len;
	}
	int rc = rlt_writer_flush(w);
	if (rc < 0)
		return rc;
	if (len >= w->cap) {
		rc = send_out(w, buf, len);
		return rc < 0 ? rc : (ssize_t)len;
	}
	memcpy(w->buf, buf, len);
	w->len = len;
	return (ssize_t)len;
}

size_t rlt_writer_buffered(const rlt_writer *w)
{
	return w ? w->len : 0;
}

int rlt_writer_close(rlt_writer *w)
{
	if (!w)
		return -EINVAL;
	int rc = rlt_writer_flush(w);
	rlt_writer_free(w);
	return rc;
}

void rlt_writer_free(rlt_writer *w)
{
	if (!w)
		return;
	rlt__free(w->buf);
	rlt__free(w);
}
