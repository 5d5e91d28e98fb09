/*
 * Pipelines: commands encoded by hiredis into one buffer, queued on the
 * connection as one request that waits for as many replies. The writer sends
 * the buffer in one go, so no other task's command comes between them.
 */
#include "conn.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct rlt_redis_pipeline {
	char *buf;
	size_t len, cap;
	size_t count;
};

rlt_redis_pipeline *rlt_redis_pipeline_new(void)
{
	rlt_redis_pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		errno = ENOMEM;
	return p;
}

void rlt_redis_pipeline_free(rlt_redis_pipeline *p)
{
	if (!p)
		return;
	free(p->buf);
	free(p);
}

size_t rlt_redis_pipeline_len(const rlt_redis_pipeline *p)
{
	return p ? p->count : 0;
}

void rlt_redis_pipeline_reset(rlt_redis_pipeline *p)
{
	if (p)
		p->len = p->count = 0;
}

/* Append an encoded command (the caller frees it). */
static int append(rlt_redis_pipeline *p, const char *cmd, size_t len)
{
	if (p->count >= INT_MAX)
		return -E2BIG;
	if (p->len + len > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		while (cap < p->len + len)
			cap *= 2;
		char *b = realloc(p->buf, cap);
		if (!b)
			return -ENOMEM;
		p->buf = b;
		p->cap = cap;
	}
	memcpy(p->buf + p->len, cmd, len);
	p->len += len;
	p->count++;
	return 0;
}

int rlt_redis_pipeline_append(rlt_redis_pipeline *p, const char *fmt, ...)
{
	if (!p || !fmt)
		return -EINVAL;
	char *cmd;
	va_list ap;
	va_start(ap, fmt);
	int len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len == -2)
		return -ENOMEM;
	if (len < 0)
		return -EINVAL;
	int rc = append(p, cmd, (size_t)len);
	free(cmd); /* redisvFormatCommand's: malloc */
	return rc;
}

int rlt_redis_pipeline_append_argv(rlt_redis_pipeline *p, int argc, const char *const *argv,
				   const size_t *argvlen)
{
	if (!p)
		return -EINVAL;
	char *cmd;
	int len = rlt__redis_format_argv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return len;
	int rc = append(p, cmd, (size_t)len);
	sdsfree(cmd);
	return rc;
}

ssize_t rlt_redis_pipeline_exec(rlt_redis *c, rlt_redis_pipeline *p, rlt_redis_reply **replies)
{
	if (!c || !p || (!replies && p->count))
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	if (!p->count)
		return 0;
	/* A copy: the writer may still be sending it after a cancelled caller
	 * has returned and reused p. */
	sds cmd = sdsnewlen(p->buf, p->len);
	if (!cmd)
		return -ENOMEM;
	int rc = rlt__redis_run(c, cmd, p->len, p->count, replies);
	return rc < 0 ? rc : (ssize_t)p->count;
}
