/*
 * Pub/Sub: a connection whose reader sorts what arrives. A "message" or
 * "pmessage" array goes into a channel (rlt_chan: the consumer's `async for`),
 * anything else answers the oldest (P)(UN)SUBSCRIBE in flight, one reply per
 * name, as on any connection. While the channel is full the reader waits, so
 * the socket is not read: the server holds the backlog.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_BACKLOG 1024

struct rlt_redis_pubsub {
	rlt_redis *c;
};

void rlt_redis_msg_free(rlt_redis_msg *m)
{
	free(m);
}

static bool is_str(const rlt_redis_reply *r, const char *s)
{
	return r->type == RLT_REDIS_REPLY_STRING && r->len == strlen(s) &&
	       memcmp(r->str, s, r->len) == 0;
}

static char *put(char **at, const rlt_redis_reply *r, size_t *len)
{
	char *s = *at;
	memcpy(s, r->str, r->len);
	s[r->len] = '\0';
	*len = r->len;
	*at += r->len + 1;
	return s;
}

int rlt__redis_pubsub_push(rlt_redis *c, rlt_redis_reply *r)
{
	if (r->type != RLT_REDIS_REPLY_ARRAY || r->elements < 3)
		return 1;
	rlt_redis_reply **e = r->element;
	bool pm = r->elements == 4 && is_str(e[0], "pmessage");
	if (!pm && !(r->elements == 3 && is_str(e[0], "message")))
		return 1;
	for (size_t i = 1; i < r->elements; i++)
		if (e[i]->type != RLT_REDIS_REPLY_STRING) {
			rlt_redis_reply_free(r);
			return -EPROTO;
		}
	size_t total = sizeof(rlt_redis_msg);
	for (size_t i = 1; i < r->elements; i++)
		total += e[i]->len + 1;
	rlt_redis_msg *m = calloc(1, total);
	if (!m) {
		rlt_redis_reply_free(r);
		return -ENOMEM;
	}
	char *at = (char *)(m + 1);
	m->kind = pm ? RLT_REDIS_MSG_PMESSAGE : RLT_REDIS_MSG_MESSAGE;
	size_t i = 1;
	if (pm)
		m->pattern = put(&at, e[i++], &m->pattern_len);
	m->channel = put(&at, e[i++], &m->channel_len);
	m->payload = put(&at, e[i], &m->payload_len);
	rlt_redis_reply_free(r);
	int rc = rlt_chan_send(c->msgs, m);
	if (rc < 0) {
		free(m);
		return rc == -EPIPE ? atomic_load(&c->err) ? atomic_load(&c->err) : -ESHUTDOWN : rc;
	}
	return 0;
}

rlt_redis_pubsub *rlt_redis_pubsub_open(const rlt_redis_opts *opts, size_t backlog)
{
	rlt_redis_pubsub *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		errno = ENOMEM;
		return NULL;
	}
	ps->c = rlt__redis_open(opts, backlog ? backlog : DEFAULT_BACKLOG);
	if (!ps->c) {
		int err = errno;
		free(ps);
		errno = err;
		return NULL;
	}
	return ps;
}

/* One command for n names, n confirmations. */
static int sub(rlt_redis_pubsub *ps, const char *verb, const char *const *names, size_t n)
{
	if (!ps || !names || n == 0 || n > 1024 * 1024)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	const char **argv = malloc((n + 1) * sizeof(*argv));
	rlt_redis_reply **replies = malloc(n * sizeof(*replies));
	if (!argv || !replies) {
		free(argv);
		free(replies);
		return -ENOMEM;
	}
	argv[0] = verb;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = names[i];
	char *cmd;
	int rc = rlt__redis_format_argv(&cmd, (int)n + 1, argv, NULL);
	free(argv);
	if (rc >= 0)
		rc = rlt__redis_run(ps->c, cmd, (size_t)rc, n, replies);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			if (replies[i]->type != RLT_REDIS_REPLY_ARRAY)
				rc = -EPROTO;
			rlt_redis_reply_free(replies[i]);
		}
	}
	free(replies);
	return rc;
}

int rlt_redis_subscribe(rlt_redis_pubsub *ps, const char *const *names, size_t n)
{
	return sub(ps, "SUBSCRIBE", names, n);
}

int rlt_redis_psubscribe(rlt_redis_pubsub *ps, const char *const *patterns, size_t n)
{
	return sub(ps, "PSUBSCRIBE", patterns, n);
}

int rlt_redis_unsubscribe(rlt_redis_pubsub *ps, const char *const *names, size_t n)
{
	return sub(ps, "UNSUBSCRIBE", names, n);
}

int rlt_redis_punsubscribe(rlt_redis_pubsub *ps, const char *const *patterns, size_t n)
{
	return sub(ps, "PUNSUBSCRIBE", patterns, n);
}

int rlt_redis_pubsub_next(rlt_redis_pubsub *ps, rlt_redis_msg **msg, int64_t timeout_ns)
{
	if (!ps || !msg)
		return -EINVAL;
	void *v;
	int rc = rlt_chan_recv_timeout(ps->c->msgs, &v, timeout_ns);
	if (rc == 0) {
		*msg = v;
		return 0;
	}
	if (rc == -EPIPE) {
		int err = atomic_load(&ps->c->err);
		return err ? err : -ESHUTDOWN;
	}
	return rc;
}

int rlt_redis_pubsub_close(rlt_redis_pubsub *ps)
{
	if (!ps)
		return 0;
	int rc = rlt_redis_close(ps->c); /* frees the messages not taken */
	if (rc < 0)
		return rc;
	free(ps);
	return 0;
}
