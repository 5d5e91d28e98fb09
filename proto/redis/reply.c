/*
 * Replies: hiredis's redisReader parses RESP; the object functions below
 * build ringlet's reply tree as it goes (no redisReply, no conversion), and
 * count its size against the connection's limit.
 *
 * A string-like reply is one allocation (the struct, then the bytes and a
 * NUL); an array is the struct plus its element vector.
 */
#include "redis_int.h"

#include <stdlib.h>
#include <string.h>

void rlt_redis_reply_free(rlt_redis_reply *r)
{
	if (!r)
		return;
	if (r->type == RLT_REDIS_REPLY_ARRAY && r->element) {
		for (size_t i = 0; i < r->elements; i++)
			rlt_redis_reply_free(r->element[i]);
		free(r->element);
	}
	free(r);
}

/* Charge n bytes to the reply being parsed; false (and too_big) past the
 * limit. privdata is the reader (hiredis copies the reader's privdata into
 * every read task). */
static bool charge(const redisReadTask *task, size_t n)
{
	rlt__redis_reader *rd = task->privdata;
	rd->bytes += n;
	if (rd->bytes > rd->max) {
		rd->too_big = true;
		return false;
	}
	return true;
}

/* Hook r into its parent array (hiredis has allocated the parent first). */
static void *attach(const redisReadTask *task, rlt_redis_reply *r)
{
	if (task->parent) {
		rlt_redis_reply *parent = task->parent->obj;
		parent->element[task->idx] = r;
	}
	return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	if (!charge(task, len))
		return NULL;
	rlt_redis_reply *r = malloc(sizeof(*r) + len + 1);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->type = task->type; /* STRING, STATUS or ERROR: hiredis's numbers are ours */
	r->str = (char *)(r + 1);
	r->len = len;
	memcpy(r->str, str, len);
	r->str[len] = '\0';
	return attach(task, r);
}

static void *create_array(const redisReadTask *task, int elements)
{
	size_t n = elements > 0 ? (size_t)elements : 0;
	if (!charge(task, n * sizeof(void *)))
		return NULL;
	rlt_redis_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->type = RLT_REDIS_REPLY_ARRAY;
	if (n && !(r->element = calloc(n, sizeof(*r->element)))) {
		free(r);
		return NULL;
	}
	r->elements = n;
	return attach(task, r);
}

static void *create_integer(const redisReadTask *task, long long value)
{
	rlt_redis_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->type = RLT_REDIS_REPLY_INTEGER;
	r->integer = value;
	return attach(task, r);
}

static void *create_nil(const redisReadTask *task)
{
	rlt_redis_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->type = RLT_REDIS_REPLY_NIL;
	return attach(task, r);
}

static void free_object(void *obj)
{
	rlt_redis_reply_free(obj);
}

static redisReplyObjectFunctions reply_functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
    .createNil = create_nil,
    .freeObject = free_object,
};

int rlt__redis_reader_init(rlt__redis_reader *rd, size_t max)
{
	memset(rd, 0, sizeof(*rd));
	rd->max = max ? max : RLT_REDIS_DEFAULT_MAX_REPLY;
	rd->r = redisReaderCreateWithFunctions(&reply_functions);
	if (!rd->r)
		return -ENOMEM;
	rd->r->privdata = rd;
	return 0;
}

void rlt__redis_reader_destroy(rlt__redis_reader *rd)
{
	if (rd->r)
		redisReaderFree(rd->r);
	rd->r = NULL;
}

int rlt__redis_reader_feed(rlt__redis_reader *rd, const char *buf, size_t len)
{
	if (redisReaderFeed(rd->r, buf, len) != REDIS_OK)
		return -ENOMEM;
	/* hiredis parses a bulk string only once all of it is buffered: bound
	 * the buffer, or one huge string would be read whole first. */
	if (rd->r->len - rd->r->pos > rd->max + 64) {
		rd->too_big = true;
		return -EMSGSIZE;
	}
	return 0;
}

int rlt__redis_reader_next(rlt__redis_reader *rd, rlt_redis_reply **out)
{
	void *obj = NULL;
	if (rd->too_big)
		return -EMSGSIZE;
	if (redisReaderGetReply(rd->r, &obj) != REDIS_OK) {
		if (rd->too_big)
			return -EMSGSIZE;
		return rd->r->err == REDIS_ERR_OOM ? -ENOMEM : -EPROTO;
	}
	if (!obj)
		return 0;
	rd->bytes = 0;
	*out = obj;
	return 1;
}
