/* ringlet_redis's insides, shared by its files (and the fuzz target). */
#ifndef RLT_REDIS_INT_H
#define RLT_REDIS_INT_H

#include <ringlet.h>
#include <ringlet/redis.h>

#include <hiredis/read.h>

/*
 * A reply reader: hiredis's redisReader with object functions that build
 * rlt_redis_reply trees directly, and a size limit. `bytes` counts what the
 * reply being parsed has taken so far (strings, plus a pointer per array
 * element); past `max` the object functions refuse (return NULL, which
 * hiredis reports as an OOM error) and `too_big` says why.
 */
typedef struct rlt__redis_reader {
	redisReader *r;
	size_t max;
	size_t bytes;
	bool too_big;
} rlt__redis_reader;

int rlt__redis_reader_init(rlt__redis_reader *rd, size_t max);
void rlt__redis_reader_destroy(rlt__redis_reader *rd);
/* Feed len bytes. 0 or -ENOMEM, -EMSGSIZE (more than max bytes buffered
 * without a complete reply). */
int rlt__redis_reader_feed(rlt__redis_reader *rd, const char *buf, size_t len);
/* The next complete reply: 1 and *out, 0 (need more bytes), or -EPROTO /
 * -EMSGSIZE / -ENOMEM (the reader is then unusable). */
int rlt__redis_reader_next(rlt__redis_reader *rd, rlt_redis_reply **out);

#endif
