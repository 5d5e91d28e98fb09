/* Buffered streams (bufstream.h): lines, delimited records and exact reads
 * whatever the pieces the bytes arrive in (a writer sending a line a few
 * bytes at a time, the fault policy cutting every transfer short), the
 * limit (-EMSGSIZE, the stream still usable), end of stream in each call,
 * and the writer's buffering, flushing and sticky errors. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline unsigned char pat(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

/* Line k: printable, no '\n', of a length that varies with k. */
static size_t line_len(unsigned k)
{
	return (k * 37u) % 300u;
}
static char line_ch(unsigned k, size_t i)
{
	return (char)('a' + (k + i * 3) % 26);
}

static void socket_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* A connected TCP pair over loopback. */
static void tcp_pair(int sv[2])
{
	rlt_addr a;
	assert_int_equal(rlt_addr_parse(&a, "127.0.0.1:0"), 0);
	int lfd = rlt_net_listen(&a, 1, 0);
	rlt_test_assert_ok(lfd);
	assert_int_equal(rlt_net_local(lfd, &a), 0);
	sv[0] = rlt_net_connect(&a, 5 * RLT_NSEC_PER_SEC, RLT_NET_NODELAY);
	rlt_test_assert_ok(sv[0]);
	sv[1] = rlt_net_accept(lfd, NULL, RLT_NET_NODELAY);
	rlt_test_assert_ok(sv[1]);
	assert_int_equal(rlt_close(lfd), 0);
}

/* rlt_shutdown(fd, SHUT_WR), again while the fault policy says -EINTR
 * (it injects that into every op but close). */
static void shut_wr(int fd)
{
	int rc;
	while ((rc = rlt_shutdown(fd, SHUT_WR)) == -EINTR)
		;
	assert_int_equal(rc, 0);
}

/* ---- a writer that dribbles ---- */

enum { LINES = 200 };

typedef struct dribble {
	int fd;
	const unsigned char *data;
	size_t len;
	size_t fine; /* the first this many bytes go in small pieces */
} dribble;

/* Send the first d->fine bytes in pieces of 1..7 bytes, yielding between
 * them, the rest in 64 KiB pieces, then shut down the sending side.
 * (Every small piece is a round trip between the tasks: under
 * io_uring-sqpoll on two busy cores, one can cost milliseconds.) */
static void *dribbler(void *arg)
{
	dribble *d = arg;
	size_t off = 0;
	for (unsigned k = 0; off < d->len; k++) {
		size_t n = off < d->fine ? 1 + k % 7 : 65536;
		if (n > d->len - off)
			n = d->len - off;
		assert_int_equal(rlt_send_all(d->fd, d->data + off, n, 0), (ssize_t)n);
		off += n;
		rlt_yield();
	}
	assert_int_equal(rlt_shutdown(d->fd, SHUT_WR), 0);
	return NULL;
}

/* LINES lines, each ending in '\n' except the last. */
static char *make_lines(size_t *len)
{
	size_t total = 0;
	for (unsigned k = 0; k < LINES; k++)
		total += line_len(k) + 1;
	char *s = malloc(total);
	assert_non_null(s);
	size_t off = 0;
	for (unsigned k = 0; k < LINES; k++) {
		for (size_t i = 0; i < line_len(k); i++)
			s[off++] = line_ch(k, i);
		s[off++] = '\n';
	}
	*len = total - 1; /* the last line has no newline */
	return s;
}

static void check_line(unsigned k, const char *line, ssize_t n, bool last)
{
	size_t want = line_len(k) + (last ? 0 : 1);
	if (n != (ssize_t)want) {
		rlt_test_fault_ends(n);
		fail_msg("line %u: length %zd, want %zu", k, n, want);
	}
	for (size_t i = 0; i < line_len(k); i++)
		if (line[i] != line_ch(k, i))
			fail_msg("line %u byte %zu: '%c', want '%c'", k, i, line[i], line_ch(k, i));
	if (!last)
		assert_int_equal(line[n - 1], '\n');
}

static void read_lines_from(int sv[2], size_t limit)
{
	size_t len;
	char *data = make_lines(&len);
	dribble d = {.fd = sv[1], .data = (unsigned char *)data, .len = len, .fine = 3000};
	rlt_task *t = rlt_spawn(dribbler, &d, NULL);
	assert_non_null(t);
	rlt_reader *r = rlt_reader_new(sv[0], limit);
	assert_non_null(r);
	for (unsigned k = 0; k < LINES; k++) {
		const char *line;
		ssize_t n = rlt_reader_readline(r, &line);
		check_line(k, line, n, k == LINES - 1);
		assert_true(rlt_reader_buffered(r) <= (limit ? limit : RLT_STREAM_LIMIT_DEFAULT));
	}
	const char *line;
	assert_int_equal(rlt_reader_readline(r, &line), 0);
	assert_true(rlt_reader_at_eof(r));
	assert_int_equal(rlt_reader_readline(r, &line), 0); /* and stays there */
	char c;
	assert_int_equal(rlt_reader_read(r, &c, 1), 0);
	assert_int_equal(rlt_reader_readexactly(r, &c, 1), 0);
	rlt_reader_free(r);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	free(data);
}

static void *root_lines(void *arg)
{
	int sv[2];
	socket_pair(sv);
	read_lines_from(sv, 0);
	tcp_pair(sv);
	read_lines_from(sv, 301); /* the longest line, newline included */
	/* A pipe: the reader uses read(2) there. */
	assert_int_equal(pipe2(sv, O_CLOEXEC), 0);
	size_t len;
	char *data = make_lines(&len);
	assert_int_equal(rlt_write_all(sv[1], data, len, -1), (ssize_t)len);
	assert_int_equal(rlt_close(sv[1]), 0);
	rlt_reader *r = rlt_reader_new(sv[0], 0);
	assert_non_null(r);
	for (unsigned k = 0; k < LINES; k++) {
		const char *line;
		check_line(k, line, rlt_reader_readline(r, &line), k == LINES - 1);
	}
	assert_true(rlt_reader_at_eof(r)); /* the last line ended at end of file */
	rlt_reader_free(r);
	assert_int_equal(rlt_close(sv[0]), 0);
	free(data);
	return NULL;
}

static void test_readline_reassembles_lines_sent_a_few_bytes_at_a_time(void **state)
{
	rlt_test_run1(root_lines, NULL); /* one worker: the pieces interleave with the reads */
	rlt_test_run(root_lines, NULL);
}

/* ---- exact reads and multi-byte delimiters ---- */

static void *root_exact_and_until(void *arg)
{
	int sv[2];
	socket_pair(sv);
	/* Records "<n bytes of pattern>\r\n\r\n", then a 100000-byte blob (more
	 * than the buffer: read straight into the caller's), then 3 bytes. */
	enum { RECS = 30, BLOB = 100000 };
	size_t cap = RECS * (400 + 4) + BLOB + 3, len = 0;
	unsigned char *data = malloc(cap);
	assert_non_null(data);
	for (unsigned k = 0; k < RECS; k++) {
		for (size_t i = 0; i < (k * 13u) % 400u; i++)
			data[len++] = (unsigned char)('A' + pat(k, i) % 26); /* no '\r' */
		memcpy(data + len, "\r\n\r\n", 4);
		len += 4;
	}
	size_t blob_at = len;
	for (size_t i = 0; i < BLOB; i++)
		data[len++] = pat(99, i);
	memcpy(data + len, "end", 3);
	len += 3;
	/* The records a few bytes at a time (delimiters split too); the blob
	 * and the tail in big pieces. */
	dribble d = {.fd = sv[1], .data = data, .len = len, .fine = blob_at};
	rlt_task *t = rlt_spawn(dribbler, &d, NULL);
	assert_non_null(t);

	rlt_reader *r = rlt_reader_new(sv[0], 1024);
	assert_non_null(r);
	size_t off = 0;
	for (unsigned k = 0; k < RECS; k++) {
		const char *rec;
		ssize_t n = rlt_reader_readuntil(r, "\r\n\r\n", 4, &rec);
		assert_int_equal(n, (ssize_t)((k * 13u) % 400u + 4));
		assert_memory_equal(rec, data + off, (size_t)n);
		off += (size_t)n;
	}
	assert_int_equal(off, blob_at);
	unsigned char *blob = malloc(BLOB);
	assert_non_null(blob);
	assert_int_equal(rlt_reader_readexactly(r, blob, BLOB), BLOB);
	assert_memory_equal(blob, data + blob_at, BLOB);
	/* Short at end of stream: the partial count, the bytes in buf. */
	memset(blob, 0, 10);
	assert_int_equal(rlt_reader_readexactly(r, blob, 10), 3);
	assert_memory_equal(blob, "end", 3);
	assert_true(rlt_reader_at_eof(r));
	assert_int_equal(rlt_reader_readexactly(r, blob, 10), 0);
	assert_int_equal(rlt_reader_readexactly(r, blob, 0), 0);
	rlt_reader_free(r);
	assert_int_equal(rlt_join(t, NULL), 0);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	free(blob);
	free(data);
	return NULL;
}

static void test_readuntil_and_readexactly_across_piece_boundaries(void **state)
{
	rlt_test_run1(root_exact_and_until, NULL);
	rlt_test_run(root_exact_and_until, NULL);
}

/* ---- the limit ---- */

static void *root_limit(void *arg)
{
	int sv[2];
	socket_pair(sv);
	enum { LIMIT = 64 };
	rlt_reader *r = rlt_reader_new(sv[0], LIMIT);
	assert_non_null(r);
	/* A line of exactly the limit, newline included: fine. */
	char line[LIMIT + 40];
	memset(line, 'x', sizeof(line));
	line[LIMIT - 1] = '\n';
	assert_int_equal(rlt_send_all(sv[1], line, LIMIT, 0), LIMIT);
	const char *got;
	assert_int_equal(rlt_reader_readline(r, &got), LIMIT);
	/* One byte more: -EMSGSIZE, nothing consumed, nothing grown past it. */
	memset(line, 'y', sizeof(line));
	line[LIMIT] = '\n';
	assert_int_equal(rlt_send_all(sv[1], line, LIMIT + 1, 0), LIMIT + 1);
	assert_int_equal(rlt_send_all(sv[1], "next\n", 5, 0), 5);
	assert_int_equal(rlt_reader_readline(r, &got), -EMSGSIZE);
	assert_int_equal(rlt_reader_buffered(r), LIMIT);
	assert_int_equal(rlt_reader_readline(r, &got), -EMSGSIZE); /* the same again */
	assert_int_equal(rlt_reader_readuntil(r, "yy\n", 3, &got), -EMSGSIZE);
	/* The stream is usable: take the long line's bytes, then go on. */
	char sink[LIMIT + 1];
	size_t drained = 0;
	while (drained < LIMIT + 1) {
		ssize_t n = rlt_reader_read(r, sink, LIMIT + 1 - drained);
		rlt_test_assert_pos(n);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(sink[i], drained + (size_t)i == LIMIT ? '\n' : 'y');
		drained += (size_t)n;
	}
	assert_int_equal(rlt_reader_readline(r, &got), 5);
	assert_memory_equal(got, "next\n", 5);
	/* Another delimiter after a readline's -EMSGSIZE: what readline
	 * scanned says nothing of it (found by fuzz_bufreader). */
	memset(line, 'w', sizeof(line));
	line[10] = ';';
	line[LIMIT + 5] = '\n';
	assert_int_equal(rlt_send_all(sv[1], line, LIMIT + 6, 0), LIMIT + 6);
	assert_int_equal(rlt_reader_readline(r, &got), -EMSGSIZE);
	assert_int_equal(rlt_reader_readuntil(r, ";", 1, &got), 11);
	assert_memory_equal(got, line, 11);
	assert_int_equal(rlt_reader_readline(r, &got), LIMIT - 5);
	assert_memory_equal(got, line + 11, LIMIT - 5);
	/* A delimiter longer than the limit cannot be found: -EINVAL. */
	char big[LIMIT + 1];
	memset(big, '-', sizeof(big));
	assert_int_equal(rlt_reader_readuntil(r, big, sizeof(big), &got), -EINVAL);
	/* A peer that never sends a newline costs the limit, no more. */
	memset(line, 'z', sizeof(line));
	for (int i = 0; i < 10; i++)
		assert_int_equal(rlt_send_all(sv[1], line, sizeof(line), 0), (ssize_t)sizeof(line));
	assert_int_equal(rlt_reader_readline(r, &got), -EMSGSIZE);
	assert_int_equal(rlt_reader_buffered(r), LIMIT);
	rlt_reader_free(r);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void
test_records_longer_than_the_limit_give_emsgsize_and_leave_the_stream_usable(void **state)
{
	rlt_test_run(root_limit, NULL);
}

/* ---- end of stream ---- */

static void *root_eof(void *arg)
{
	int sv[2];
	socket_pair(sv);
	rlt_reader *r = rlt_reader_new(sv[0], 0);
	assert_non_null(r);
	assert_int_equal(rlt_send_all(sv[1], "one\ntwo;three", 13, 0), 13);
	assert_int_equal(rlt_shutdown(sv[1], SHUT_WR), 0);
	const char *got;
	assert_int_equal(rlt_reader_readuntil(r, ";", 1, &got), 8);
	assert_memory_equal(got, "one\ntwo;", 8);
	/* "three" has no ';' and no more is coming: -EPIPE, left buffered. */
	assert_int_equal(rlt_reader_readuntil(r, ";", 1, &got), -EPIPE);
	assert_int_equal(rlt_reader_buffered(r), 5);
	assert_false(rlt_reader_at_eof(r));
	/* readline hands over the last, unterminated line, then 0. */
	assert_int_equal(rlt_reader_readline(r, &got), 5);
	assert_memory_equal(got, "three", 5);
	assert_true(rlt_reader_at_eof(r));
	assert_int_equal(rlt_reader_readline(r, &got), 0);
	assert_int_equal(rlt_reader_readuntil(r, ";", 1, &got), 0);
	rlt_reader_free(r);
	assert_int_equal(rlt_close(sv[0]), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_end_of_stream_is_zero_and_a_cut_record_is_epipe(void **state)
{
	rlt_test_run(root_eof, NULL);
}

/* ---- the writer ---- */

static bool nothing_to_read(int fd)
{
	char c;
	return recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void *root_writer(void *arg)
{
	int sv[2];
	socket_pair(sv);
	rlt_writer *w = rlt_writer_new(sv[0], 100);
	assert_non_null(w);
	/* Small writes are buffered: nothing reaches the peer. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(rlt_writer_write(w, "0123456789", 10), 10);
	assert_int_equal(rlt_writer_buffered(w), 100);
	assert_true(nothing_to_read(sv[1]));
	/* The 101st byte does not fit: the 100 go out, it stays. */
	assert_int_equal(rlt_writer_write(w, "!", 1), 1);
	assert_int_equal(rlt_writer_buffered(w), 1);
	char buf[400];
	assert_int_equal(rlt_recv_exact(sv[1], buf, 100, 0), 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf[i], '0' + i % 10);
	assert_true(nothing_to_read(sv[1]));
	/* A write of a buffer's worth or more goes out at once, after what
	 * was buffered, in order. */
	memset(buf, 'B', 250);
	assert_int_equal(rlt_writer_write(w, buf, 250), 250);
	assert_int_equal(rlt_writer_buffered(w), 0);
	assert_int_equal(rlt_recv_exact(sv[1], buf, 251, 0), 251);
	assert_int_equal(buf[0], '!');
	for (int i = 1; i < 251; i++)
		assert_int_equal(buf[i], 'B');
	/* flush, then close flushes too. */
	assert_int_equal(rlt_writer_write(w, "abc", 3), 3);
	assert_int_equal(rlt_writer_flush(w), 0);
	assert_int_equal(rlt_writer_flush(w), 0); /* nothing: no-op */
	assert_int_equal(rlt_recv_exact(sv[1], buf, 3, 0), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(rlt_writer_write(w, "xyz", 3), 3);
	assert_int_equal(rlt_writer_close(w), 0);
	assert_int_equal(rlt_recv_exact(sv[1], buf, 3, 0), 3);
	assert_memory_equal(buf, "xyz", 3);
	assert_true(nothing_to_read(sv[1])); /* the fd is still open */

	/* A peer gone: the error, and the same error ever after. */
	w = rlt_writer_new(sv[0], 100);
	assert_non_null(w);
	assert_int_equal(rlt_close(sv[1]), 0);
	assert_int_equal(rlt_writer_write(w, "x", 1), 1); /* buffered: no error yet */
	int err = rlt_writer_flush(w);
	assert_true(err == -EPIPE || err == -ECONNRESET);
	assert_int_equal(rlt_writer_write(w, "x", 1), err);
	assert_int_equal(rlt_writer_flush(w), err);
	assert_int_equal(rlt_writer_close(w), err);
	/* Dropping a writer drops what it held, and nothing is sent. */
	w = rlt_writer_new(sv[0], 0);
	assert_non_null(w);
	assert_int_equal(rlt_writer_write(w, "lost", 4), 4);
	rlt_writer_free(w);
	assert_int_equal(rlt_close(sv[0]), 0);
	return NULL;
}

static void test_writer_buffers_small_writes_and_flushes_in_order(void **state)
{
	rlt_test_run(root_writer, NULL);
}

/* ---- bad input ---- */

static void test_bad_arguments_give_einval(void **state)
{
	errno = 0;
	assert_null(rlt_reader_new(-1, 0));
	assert_int_equal(errno, EINVAL);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	errno = 0;
	assert_null(rlt_reader_new(p[0], 0));
	assert_int_equal(errno, EBADF);
	assert_null(rlt_writer_new(-1, 0));
	assert_int_equal(errno, EINVAL);

	const char *out;
	char c;
	assert_int_equal(rlt_reader_readline(NULL, &out), -EINVAL);
	assert_int_equal(rlt_reader_readuntil(NULL, "x", 1, &out), -EINVAL);
	assert_int_equal(rlt_reader_readexactly(NULL, &c, 1), -EINVAL);
	assert_int_equal(rlt_reader_read(NULL, &c, 1), -EINVAL);
	assert_int_equal(rlt_reader_buffered(NULL), 0);
	assert_false(rlt_reader_at_eof(NULL));
	rlt_reader_free(NULL);
	assert_int_equal(rlt_writer_write(NULL, "x", 1), -EINVAL);
	assert_int_equal(rlt_writer_flush(NULL), -EINVAL);
	assert_int_equal(rlt_writer_close(NULL), -EINVAL);
	rlt_writer_free(NULL);

	int sv[2];
	socket_pair(sv);
	rlt_reader *r = rlt_reader_new(sv[0], 0);
	assert_non_null(r);
	assert_int_equal(rlt_reader_readuntil(r, NULL, 1, &out), -EINVAL);
	assert_int_equal(rlt_reader_readuntil(r, "x", 0, &out), -EINVAL);
	assert_int_equal(rlt_reader_readuntil(r, "x", 1, NULL), -EINVAL);
	assert_int_equal(rlt_reader_readexactly(r, NULL, 1), -EINVAL);
	assert_int_equal(rlt_reader_read(r, NULL, 1), -EINVAL);
	/* Outside a task: -EPERM, and the reader is none the worse. */
	assert_int_equal(rlt_reader_readline(r, &out), -EPERM);
	rlt_reader_free(r);
	rlt_writer *w = rlt_writer_new(sv[1], 0);
	assert_non_null(w);
	assert_int_equal(rlt_writer_write(w, NULL, 1), -EINVAL);
	assert_int_equal(rlt_writer_write(w, "x", 1), 1);
	assert_int_equal(rlt_writer_flush(w), -EPERM);
	assert_int_equal(rlt_writer_buffered(w), 1); /* not lost, not broken */
	rlt_writer_free(w);
	close(sv[0]);
	close(sv[1]);
}

/* ---- under the fault policy: short transfers, EINTR, EAGAIN ---- */

typedef struct echo_arg {
	int fd;
} echo_arg;

/* Echo line by line through a reader and a writer, until end of stream. */
static void *line_echo(void *arg)
{
	echo_arg *e = arg;
	rlt_reader *r = rlt_reader_new(e->fd, 512);
	rlt_writer *w = rlt_writer_new(e->fd, 1000);
	assert_non_null(r);
	assert_non_null(w);
	const char *line;
	ssize_t n;
	while ((n = rlt_reader_readline(r, &line)) > 0)
		assert_int_equal(rlt_writer_write(w, line, (size_t)n), n);
	assert_int_equal(n, 0);
	assert_int_equal(rlt_writer_close(w), 0);
	shut_wr(e->fd);
	rlt_reader_free(r);
	return NULL;
}

typedef struct feed {
	int fd;
	const char *data;
	size_t len;
} feed;

/* Send data through a small-buffered writer in pieces of 1..7 bytes, then
 * shut down the sending side. */
static void *feeder(void *arg)
{
	feed *f = arg;
	rlt_writer *w = rlt_writer_new(f->fd, 37);
	assert_non_null(w);
	for (size_t off = 0, k = 0; off < f->len; k++) {
		size_t n = 1 + k % 7;
		if (n > f->len - off)
			n = f->len - off;
		assert_int_equal(rlt_writer_write(w, f->data + off, n), (ssize_t)n);
		off += n;
	}
	assert_int_equal(rlt_writer_close(w), 0);
	shut_wr(f->fd);
	return NULL;
}

static void *root_faults(void *arg)
{
	int sv[2];
	tcp_pair(sv);
	echo_arg e = {.fd = sv[1]};
	rlt_task *t = rlt_spawn(line_echo, &e, NULL);
	assert_non_null(t);
	size_t len;
	char *data = make_lines(&len);
	/* Feeding and reading the echo at once: tiny segments cost the
	 * socket buffers far more than their bytes, so neither side may wait
	 * for the other to finish. */
	feed f = {.fd = sv[0], .data = data, .len = len};
	rlt_task *ft = rlt_spawn(feeder, &f, NULL);
	assert_non_null(ft);
	rlt_reader *r = rlt_reader_new(sv[0], 512);
	assert_non_null(r);
	for (unsigned k = 0; k < LINES; k++) {
		const char *line;
		check_line(k, line, rlt_reader_readline(r, &line), k == LINES - 1);
	}
	const char *line;
	assert_int_equal(rlt_reader_readline(r, &line), 0);
	rlt_reader_free(r);
	assert_int_equal(rlt_join(ft, NULL), 0);
	assert_int_equal(rlt_join(t, NULL), 0);

	/* Exact reads of a blob cut short at random. */
	int sp[2];
	socket_pair(sp);
	enum { BLOB = 300000 };
	unsigned char *blob = malloc(BLOB), *back = malloc(BLOB);
	assert_non_null(blob);
	assert_non_null(back);
	for (size_t i = 0; i < BLOB; i++)
		blob[i] = pat(5, i);
	rlt_writer *bw = rlt_writer_new(sp[1], 4096);
	assert_non_null(bw);
	rlt_reader *br = rlt_reader_new(sp[0], 4096);
	assert_non_null(br);
	/* Write and read in turns, at most 20000 bytes ahead, so that the
	 * writer never waits on a full socket (this task is the reader). */
	size_t wr = 0, rd = 0;
	while (rd < BLOB) {
		if (wr < BLOB && wr - rd < 20000) {
			size_t n = BLOB - wr < 10000 ? BLOB - wr : 10000;
			assert_int_equal(rlt_writer_write(bw, blob + wr, n), (ssize_t)n);
			assert_int_equal(rlt_writer_flush(bw), 0);
			wr += n;
		}
		size_t n = (rd * 7 + 1) % 9000 + 1;
		if (n > wr - rd)
			n = wr - rd;
		assert_int_equal(rlt_reader_readexactly(br, back + rd, n), (ssize_t)n);
		rd += n;
	}
	assert_memory_equal(back, blob, BLOB);
	assert_int_equal(rlt_writer_close(bw), 0);
	rlt_reader_free(br);
	free(blob);
	free(back);
	free(data);
	int fds[] = {sv[0], sv[1], sp[0], sp[1]};
	for (int i = 0; i < 4; i++)
		assert_int_equal(rlt_close(fds[i]), 0);
	return NULL;
}

static void test_streams_survive_short_transfers_eintr_and_eagain(void **state)
{
	/* Every transfer cut short. */
	rlt_test_run_faults("seed=3,rate=1,errors=none,short=1", root_faults, NULL);
	/* A mix, delays included. */
	rlt_test_run_faults("seed=4,rate=0.4,errors=EINTR+EAGAIN,short=1,delay_us=20", root_faults,
			    NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_readline_reassembles_lines_sent_a_few_bytes_at_a_time),
	    cmocka_unit_test(test_readuntil_and_readexactly_across_piece_boundaries),
	    cmocka_unit_test(
		test_records_longer_than_the_limit_give_emsgsize_and_leave_the_stream_usable),
	    cmocka_unit_test(test_end_of_stream_is_zero_and_a_cut_record_is_epipe),
	    cmocka_unit_test(test_writer_buffers_small_writes_and_flushes_in_order),
	    cmocka_unit_test(test_bad_arguments_give_einval),
	    cmocka_unit_test(test_streams_survive_short_transfers_eintr_and_eagain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
