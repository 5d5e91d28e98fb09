/*
 * The pool: a semaphore of max_size permits (FIFO waiters, timeouts: every
 * worker), a stack of idle connections under a mutex held only for a push
 * or a pop (never across a suspension), and the reconnect backoff.
 *
 * Invariant: connections out (acquired, or being made) <= permits taken, so
 * idle + out <= max_size.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX	    10
#define DEFAULT_HEALTH_IDLE (30 * RLT_NSEC_PER_SEC)
#define DEFAULT_BACKOFF_MIN (10 * RLT_NSEC_PER_MSEC)
#define DEFAULT_BACKOFF_MAX (1 * RLT_NSEC_PER_SEC)

struct rlt_redis_pool {
	rlt_redis_pool_opts o; /* strings below are copies */
	char *address, *username, *password, *client_name;
	rlt_sem *permits;
	pthread_mutex_t lock; /* idle[], size, backoff, next_attempt, last_err */
	rlt_redis **idle;     /* most recently released last */
	unsigned nidle, size;
	int64_t backoff;
	uint64_t next_attempt;
	int last_err;
};

static char *dup_or_null(const char *s, bool *ok)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static void pool_destroy(rlt_redis_pool *p)
{
	free(p->address);
	free(p->username);
	free(p->password);
	free(p->client_name);
	free(p->idle);
	rlt_sem_free(p->permits);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

unsigned rlt_redis_pool_size(rlt_redis_pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->size;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned rlt_redis_pool_idle(rlt_redis_pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->nidle;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Drop a connection we hold (broken, or failed its PING). */
static void drop(rlt_redis_pool *p, rlt_redis *c)
{
	rlt_redis_close(c);
	pthread_mutex_lock(&p->lock);
	p->size--;
	pthread_mutex_unlock(&p->lock);
}

/* Make a connection, honouring the backoff. NULL with errno. */
static rlt_redis *make(rlt_redis_pool *p)
{
	pthread_mutex_lock(&p->lock);
	uint64_t at = p->next_attempt;
	pthread_mutex_unlock(&p->lock);
	if (at > rlt_now()) {
		int rc = rlt_sleep_until(at);
		if (rc < 0) {
			errno = -rc;
			return NULL;
		}
	}
	rlt_redis *c = rlt_redis_connect(&p->o.conn);
	int err = errno;
	pthread_mutex_lock(&p->lock);
	if (c) {
		p->size++;
		p->backoff = 0;
		p->next_attempt = 0;
	} else if (err != ETIMEDOUT && err != ECANCELED) {
		/* A deadline of the caller is not the server's failure. */
		p->last_err = err;
		p->backoff = p->backoff ? p->backoff * 2 : p->o.backoff_min_ns;
		if (p->backoff > p->o.backoff_max_ns)
			p->backoff = p->o.backoff_max_ns;
		p->next_attempt = rlt_now() + (uint64_t)p->backoff;
	}
	pthread_mutex_unlock(&p->lock);
	errno = err;
	return c;
}

/* PING a connection that sat idle: 0 if it answered PONG, 1 if it did not
 * (drop it), or the caller's -ETIMEDOUT / -ECANCELED (not the connection's
 * fault: it stays usable, its reply is discarded when it comes). */
static int check(rlt_redis *c)
{
	rlt_redis_reply *r = NULL;
	int rc = rlt_redis_command(c, &r, "PING");
	if (rc == -ETIMEDOUT || rc == -ECANCELED)
		return rlt_redis_broken(c) ? 1 : rc;
	if (rc < 0)
		return 1;
	rc = r->type == RLT_REDIS_REPLY_STATUS ? 0 : 1;
	rlt_redis_reply_free(r);
	return rc;
}

/* Put c back on the idle stack. */
static void put_idle(rlt_redis_pool *p, rlt_redis *c)
{
	c->idle_since = rlt_now();
	pthread_mutex_lock(&p->lock);
	p->idle[p->nidle++] = c;
	pthread_mutex_unlock(&p->lock);
}

rlt_redis_pool *rlt_redis_pool_new(const rlt_redis_pool_opts *o)
{
	if (!o || (o->max_size && o->min_size > o->max_size) ||
	    (!o->max_size && o->min_size > DEFAULT_MAX)) {
		errno = EINVAL;
		return NULL;
	}
	if (!rlt_current()) {
		errno = EPERM;
		return NULL;
	}
	rlt_redis_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->o = *o;
	if (!p->o.max_size)
		p->o.max_size = DEFAULT_MAX;
	if (!p->o.health_check_idle_ns)
		p->o.health_check_idle_ns = (int64_t)DEFAULT_HEALTH_IDLE;
	if (p->o.backoff_min_ns <= 0)
		p->o.backoff_min_ns = (int64_t)DEFAULT_BACKOFF_MIN;
	if (p->o.backoff_max_ns <= 0)
		p->o.backoff_max_ns = (int64_t)DEFAULT_BACKOFF_MAX;
	bool ok = true;
	p->o.conn.address = p->address = dup_or_null(o->conn.address, &ok);
	p->o.conn.username = p->username = dup_or_null(o->conn.username, &ok);
	p->o.conn.password = p->password = dup_or_null(o->conn.password, &ok);
	p->o.conn.client_name = p->client_name = dup_or_null(o->conn.client_name, &ok);
	p->idle = calloc(p->o.max_size, sizeof(*p->idle));
	p->permits = rlt_sem_new(p->o.max_size);
	if (!ok || !p->idle || !p->permits) {
		pool_destroy(p);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i < p->o.min_size; i++) {
		rlt_redis *c = rlt_redis_connect(&p->o.conn);
		if (!c) {
			int err = errno;
			rlt_redis_pool_free(p);
			errno = err;
			return NULL;
		}
		c->idle_since = rlt_now();
		p->idle[p->nidle++] = c;
		p->size++;
	}
	return p;
}

rlt_redis *rlt_redis_pool_acquire(rlt_redis_pool *p, int64_t timeout_ns)
{
	if (!p) {
		errno = EINVAL;
		return NULL;
	}
	if (!rlt_current()) {
		errno = EPERM;
		return NULL;
	}
	rlt_scope sc;
	rlt_scope_enter(&sc, timeout_ns);
	rlt_redis *c = NULL;
	int rc = rlt_sem_acquire(p->permits);
	int err = -rc;
	while (rc == 0) {
		pthread_mutex_lock(&p->lock);
		c = p->nidle ? p->idle[--p->nidle] : NULL;
		pthread_mutex_unlock(&p->lock);
		if (c) {
			bool stale =
			    p->o.health_check_idle_ns >= 0 &&
			    rlt_now() - c->idle_since > (uint64_t)p->o.health_check_idle_ns;
			int h = rlt_redis_broken(c) ? 1 : stale ? check(c) : 0;
			if (h == 0)
				break;
			if (h < 0) {
				/* Our deadline or cancellation, not the server's. */
				put_idle(p, c);
				c = NULL;
				err = -h;
				break;
			}
			drop(p, c);
			c = NULL;
			continue;
		}
		if ((c = make(p)))
			break;
		err = errno;
		if (rlt_scope_expired(&sc) || err == ECANCELED)
			break;
	}
	rlt_scope_leave(&sc);
	if (c)
		return c;
	if (rc == 0)
		rlt_sem_release(p->permits);
	if (err == ETIMEDOUT && rc == 0) {
		/* Out of time while the server kept failing: say why. */
		pthread_mutex_lock(&p->lock);
		if (p->next_attempt && p->last_err)
			err = p->last_err;
		pthread_mutex_unlock(&p->lock);
	}
	errno = err;
	return NULL;
}

int rlt_redis_pool_release(rlt_redis_pool *p, rlt_redis *c)
{
	if (!p || !c)
		return -EINVAL;
	if (rlt_redis_broken(c)) {
		drop(p, c);
	} else {
		put_idle(p, c);
	}
	rlt_sem_release(p->permits);
	return 0;
}

int rlt_redis_pool_free(rlt_redis_pool *p)
{
	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	bool busy = p->nidle != p->size;
	pthread_mutex_unlock(&p->lock);
	if (busy)
		return -EBUSY;
	for (unsigned i = 0; i < p->nidle; i++)
		rlt_redis_close(p->idle[i]);
	pool_destroy(p);
	return 0;
}
