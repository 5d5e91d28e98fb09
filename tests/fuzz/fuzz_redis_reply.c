/* Fuzz target: ringlet_redis's reply path (hiredis's reader with ringlet's
 * object functions and size limit) on arbitrary bytes. The first byte picks
 * the size limit, the second the chunk size the bytes arrive in. Every reply
 * must be well formed (strings NUL-terminated at len, arrays complete), and
 * the replies and the outcome must not depend on how the bytes were cut. */
#include "proto/redis/redis_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of a reply tree (type, lengths, bytes), checking it on the way. */
static uint64_t digest(const rlt_redis_reply *r, uint64_t h)
{
	h = h * 1099511628211u ^ (uint64_t)r->type;
	switch (r->type) {
	case RLT_REDIS_REPLY_STRING:
	case RLT_REDIS_REPLY_STATUS:
	case RLT_REDIS_REPLY_ERROR:
		if (!r->str || r->str[r->len] != '\0')
			abort();
		for (size_t i = 0; i < r->len; i++)
			h = h * 1099511628211u ^ (uint8_t)r->str[i];
		break;
	case RLT_REDIS_REPLY_INTEGER:
		h = h * 1099511628211u ^ (uint64_t)r->integer;
		break;
	case RLT_REDIS_REPLY_NIL:
		break;
	case RLT_REDIS_REPLY_ARRAY:
		if (r->elements && !r->element)
			abort();
		for (size_t i = 0; i < r->elements; i++) {
			if (!r->element[i])
				abort();
			h = digest(r->element[i], h);
		}
		break;
	default:
		abort();
	}
	return h;
}

/* Parse data in chunks of `chunk`; returns the digest of every reply and
 * the final status (0: waiting for more, or the error). */
static uint64_t parse(const uint8_t *data, size_t size, size_t max, size_t chunk, int *status,
		      size_t *count)
{
	rlt__redis_reader rd;
	uint64_t h = 14695981039346656037u;
	*count = 0;
	if (rlt__redis_reader_init(&rd, max) < 0)
		abort();
	int rc = 0;
	for (size_t off = 0; off < size && rc >= 0; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		rc = rlt__redis_reader_feed(&rd, (const char *)data + off, n);
		rlt_redis_reply *r;
		while (rc >= 0 && (rc = rlt__redis_reader_next(&rd, &r)) == 1) {
			h = digest(r, h);
			(*count)++;
			rlt_redis_reply_free(r);
		}
	}
	rlt__redis_reader_destroy(&rd);
	*status = rc;
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max = data[0] < 128 ? (size_t)data[0] * 16 + 1 : 0; /* 0: the default */
	size_t chunk = (size_t)data[1] % 17 + 1;
	data += 2;
	size -= 2;
	int s1, s2;
	size_t n1, n2;
	uint64_t whole = parse(data, size, max, size ? size : 1, &s1, &n1);
	uint64_t cut = parse(data, size, max, chunk, &s2, &n2);
	/* The size limit on buffered bytes may trip earlier or later depending
	 * on the cut; parsing errors and replies must not. */
	if (s1 != -EMSGSIZE && s2 != -EMSGSIZE && (s1 != s2 || n1 != n2 || whole != cut))
		abort();
	return 0;
}
