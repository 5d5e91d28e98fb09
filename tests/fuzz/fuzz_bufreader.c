/* Fuzz target: the buffered reader's framing (rlt_reader_readline,
 * _readuntil, _readexactly, _read) over arbitrary chunkings of an
 * arbitrary stream. The input is a script and a stream:
 *
 *   byte 0     the limit: bit 6 set: (bits 0-5) + 1 bytes, else the default
 *   byte 1     the number of operations (low 4 bits), each 2 bytes:
 *              kind (line, until, exactly, read) and a parameter
 *   2 bytes    the seed of the chunking (sizes 1 B .. 4 KiB, a yield or
 *              not between chunks)
 *   the rest   the stream, written to a socketpair by a second task in
 *              those chunks, then shut down
 *
 * Every result is checked against the stream itself: records end at the
 * first delimiter, -EMSGSIZE only when the limit holds no delimiter,
 * -EPIPE / 0 only at the end, every byte returned is the stream's next
 * byte, and what the operations leave is then read whole. */
#include <ringlet.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
	const uint8_t *ops;
	size_t nops;
	size_t limit; /* as given (0: default) */
	uint32_t seed;
	const uint8_t *stream;
	size_t len;
	int sv[2];
} fz;

static void *writer(void *arg)
{
	fz *f = arg;
	uint32_t x = f->seed * 2654435761u + 1;
	size_t off = 0;
	while (off < f->len) {
		x = x * 1103515245u + 12345u;
		size_t n = 1 + ((x >> 8) % 4096);
		if (n > f->len - off)
			n = f->len - off;
		if (rlt_write_all(f->sv[1], f->stream + off, n, -1) != (ssize_t)n)
			break; /* the reader is gone */
		off += n;
		if (x & 0x10000)
			rlt_yield();
	}
	rlt_shutdown(f->sv[1], SHUT_WR);
	return NULL;
}

/* The end of the first occurrence of delim in s[from, len), or 0. */
static size_t find_end(const uint8_t *s, size_t from, size_t len, const uint8_t *d, size_t dl)
{
	for (size_t i = from; i + dl <= len; i++)
		if (memcmp(s + i, d, dl) == 0)
			return i + dl;
	return 0;
}

static void *reader(void *arg)
{
	fz *f = arg;
	rlt_reader *r = rlt_reader_new(f->sv[0], f->limit);
	if (!r)
		abort();
	size_t lim = f->limit ? f->limit : RLT_STREAM_LIMIT_DEFAULT;
	size_t pos = 0;
	static uint8_t buf[1 << 16];
	for (size_t k = 0; k < f->nops; k++) {
		uint8_t kind = f->ops[2 * k] & 3, p = f->ops[2 * k + 1];
		const char *out;
		ssize_t n;
		if (kind == 0 || kind == 1) {
			uint8_t delim[3];
			size_t dl = 1;
			if (kind == 0) {
				delim[0] = '\n';
				n = rlt_reader_readline(r, &out);
			} else {
				dl = 1 + (p % 3);
				for (size_t i = 0; i < dl; i++)
					delim[i] = (uint8_t)(p >> 2 & 1 ? "\r\n\n"[i]
									: 'a' + (p >> 3) % 4);
				n = rlt_reader_readuntil(r, delim, dl, &out);
			}
			size_t end = find_end(f->stream, pos, f->len, delim, dl);
			if (dl > lim) {
				if (n != -EINVAL)
					abort(); /* a delimiter longer than the limit */
			} else if (n > 0) {
				if (memcmp(out, f->stream + pos, (size_t)n) != 0)
					abort();
				if (end) {
					if (pos + (size_t)n != end)
						abort();
				} else if (kind == 1 || pos + (size_t)n != f->len) {
					abort(); /* no delimiter: only readline's last line */
				}
				pos += (size_t)n;
			} else if (n == 0) {
				if (pos != f->len)
					abort();
			} else if (n == -EMSGSIZE) {
				if (end && end - pos <= lim)
					abort(); /* the delimiter was within the limit */
				if (!end && f->len - pos < lim)
					abort(); /* the end of stream came within the limit */
			} else if (n == -EPIPE) {
				if (kind != 1 || end || pos == f->len)
					abort();
				break; /* the partial record stays buffered: drained below */
			} else {
				abort();
			}
		} else if (kind == 2) {
			size_t want = (size_t)p * (p & 1 ? 67 : 1);
			n = rlt_reader_readexactly(r, buf, want);
			size_t can = f->len - pos < want ? f->len - pos : want;
			if (n != (ssize_t)can || memcmp(buf, f->stream + pos, can) != 0)
				abort();
			pos += can;
		} else {
			size_t want = 1 + (size_t)p * 16;
			n = rlt_reader_read(r, buf, want);
			if (n < 0 || (size_t)n > want || (n == 0) != (pos == f->len))
				abort();
			if (memcmp(buf, f->stream + pos, (size_t)n) != 0)
				abort();
			pos += (size_t)n;
		}
	}
	/* The rest, whole. */
	for (;;) {
		ssize_t n = rlt_reader_read(r, buf, sizeof(buf));
		if (n < 0)
			abort();
		if (n == 0)
			break;
		if (pos + (size_t)n > f->len || memcmp(buf, f->stream + pos, (size_t)n) != 0)
			abort();
		pos += (size_t)n;
	}
	if (pos != f->len || !rlt_reader_at_eof(r))
		abort();
	rlt_reader_free(r);
	return NULL;
}

static void *root(void *arg)
{
	fz *f = arg;
	rlt_task *w = rlt_spawn(writer, f, NULL);
	rlt_task *rd = rlt_spawn(reader, f, NULL);
	if (!w || !rd)
		abort();
	rlt_join(rd, NULL);
	rlt_join(w, NULL);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	fz f = {0};
	f.limit = data[0] & 0x40 ? (size_t)(data[0] & 0x3f) + 1 : 0;
	f.nops = data[1] & 15;
	if (size < 4 + 2 * f.nops)
		return 0;
	f.ops = data + 2;
	f.seed = (uint32_t)data[2 + 2 * f.nops] | (uint32_t)data[3 + 2 * f.nops] << 8;
	f.stream = data + 4 + 2 * f.nops;
	f.len = size - 4 - 2 * f.nops;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.sv) < 0)
		abort();
	static int once;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		once = 1;
	}
	rlt_config cfg = {.workers = 1, .policy = "epoll", .policy_strict = true};
	if (rlt_run(root, &f, &cfg, NULL) != 0)
		abort();
	close(f.sv[0]);
	close(f.sv[1]);
	return 0;
}
