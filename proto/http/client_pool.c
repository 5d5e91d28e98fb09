/*
 * The HTTP client's connection pool and the client itself.
 *
 * While a task has a reply, its connection is busy and no list holds it;
 * freeing the reply puts it on its host's idle list (newest first, the one
 * reused next) and on the client's list of idle connections oldest first
 * (the one closed first, by the idle task or to make room), or closes it.
 *
 * Limits: a busy connection holds a permit of its host's semaphore (when
 * max_per_host is set) and one of the client's (max_total), taken before a
 * connection is looked for and given back after it is idle again or
 * closed, so a task waiting for a permit finds the connection it was
 * waiting for. Open connections (busy + idle) never exceed max_total
 * either: a new one closes the oldest idle one first; busy <= max_total
 * means one exists.
 *
 * Locking: c->lock (a pthread mutex) guards the host table, the idle lists
 * and the counters; it is held for list operations and never across a
 * suspension (closing and connecting happen after it is released).
 */
#include "client_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_KEEP_MAX (1024 * 1024) /* a body buffer larger than this is not kept idle */

rlt__http_host *rlt__http_host_get(rlt_http_client *c, const rlt__http_url *u)
{
	/* https and http to the same host:port are two hosts. */
	char key[RLT__HTTP_HOSTPORT_MAX + 8];
	snprintf(key, sizeof(key), "%s%s", u->tls ? "https:" : "", u->hostport);
	uint32_t hash = 2166136261u;
	for (const char *k = key; *k; k++)
		hash = (hash ^ (unsigned char)*k) * 16777619u;
	rlt__http_host **slot = &c->hosts[hash % RLT__HTTP_HOST_BUCKETS];
	pthread_mutex_lock(&c->lock);
	rlt__http_host *h = *slot;
	while (h && strcmp(h->key, key) != 0)
		h = h->next;
	if (!h && (h = calloc(1, sizeof(*h)))) {
		snprintf(h->key, sizeof(h->key), "%s", key);
		snprintf(h->dial, sizeof(h->dial), "%s", u->hostport);
		snprintf(h->name, sizeof(h->name), "%s", u->host);
		h->tls = u->tls;
		if (c->o.max_per_host && !(h->sem = rlt_sem_new(c->o.max_per_host))) {
			free(h);
			h = NULL;
		} else {
			h->next = *slot;
			*slot = h;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return h;
}

/* Take conn off both idle lists. Under c->lock. */
static void idle_unlink(rlt_http_client *c, struct rlt_http_reply *r)
{
	if (r->hprev)
		r->hprev->hnext = r->hnext;
	else
		r->h->idle = r->hnext;
	if (r->hnext)
		r->hnext->hprev = r->hprev;
	if (r->lprev)
		r->lprev->lnext = r->lnext;
	else
		c->lru_head = r->lnext;
	if (r->lnext)
		r->lnext->lprev = r->lprev;
	else
		c->lru_tail = r->lprev;
	r->hprev = r->hnext = r->lprev = r->lnext = NULL;
	atomic_fetch_sub_explicit(&c->idle, 1, memory_order_relaxed);
}

/* Whether r, idle, has been so for the idle timeout at time now. now is
 * read before the lock is taken, so a connection another worker gave back
 * since may look idle from the future: signed, that is fresh (unsigned, it
 * wrapped around and was closed as stale). */
static bool idle_expired(const rlt_http_client *c, const struct rlt_http_reply *r, uint64_t now)
{
	return (int64_t)(now - r->idle_since) >= c->o.idle_timeout_ns;
}

static void conn_free(struct rlt_http_reply *r)
{
	rlt_tls_free(r->tls);
	rlt__http_resp_free(&r->resp);
	free(r->resp.buf);
	free(r->wbuf);
	free(r->body);
	free(r->url);
	free(r);
}

/* Close connections taken off the lists (chained by lnext), shielded: a
 * cancellation must not leave an fd open. */
static void close_chain(rlt_http_client *c, struct rlt_http_reply *r)
{
	if (!r)
		return;
	rlt_scope sh;
	int shielded = rlt_shield_enter(&sh) == 0;
	while (r) {
		struct rlt_http_reply *next = r->lnext;
		/* Counted out before the close, which suspends: once the peer
		 * sees the connection end, rlt_http_client_open says so too. */
		atomic_fetch_sub_explicit(&c->open, 1, memory_order_relaxed);
		if (r->tls && !r->broken)
			rlt_tls_shutdown(r->tls); /* close_notify, best effort */
		rlt_close(r->fd);
		conn_free(r);
		r = next;
	}
	if (shielded)
		rlt_scope_leave(&sh);
}

static void permits_release(rlt_http_client *c, rlt__http_host *h)
{
	rlt_sem_release(c->total);
	if (h->sem)
		rlt_sem_release(h->sem);
}

static struct rlt_http_reply *conn_new(rlt_http_client *c, rlt__http_host *h)
{
	struct rlt_http_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->resp.cap = c->o.max_header_size + RLT__HTTP_READ_AHEAD;
	r->resp.buf = malloc(r->resp.cap);
	if (!r->resp.buf) {
		free(r);
		return NULL;
	}
	r->resp.max_header_size = c->o.max_header_size;
	r->resp.max_headers = c->o.max_headers;
	r->c = c;
	r->h = h;
	r->fd = -1;
	return r;
}

struct ctx_job {
	const char *ca_file;
	bool unsafe;
	int err;
};

static void *make_tls_ctx(void *arg)
{
	struct ctx_job *j = arg;
	rlt_tls_ctx_opts o = {.flags = j->unsafe ? RLT_TLS_UNSAFE_NO_VERIFY : 0,
			      .ca_file = j->ca_file,
			      .alpn = "http/1.1"};
	rlt_tls_ctx *ctx = rlt_tls_ctx_new(&o);
	if (!ctx)
		j->err = errno;
	return ctx;
}

/* The client's TLS context, made on its first https request and kept: a
 * process's first OpenSSL context loads OpenSSL's configuration and
 * providers, and ca_file is read and parsed (milliseconds; 100 ms under
 * ThreadSanitizer): on the default executor pool, not on the worker, and
 * never for a client that speaks only http. Two tasks may race to make
 * it: one context is kept, the other freed. */
static int client_tls_ctx(rlt_http_client *c, rlt_tls_ctx **out)
{
	rlt_tls_ctx *ctx = atomic_load_explicit(&c->tls_ctx, memory_order_acquire);
	if (!ctx) {
		struct ctx_job j = {c->ca_file, c->o.unsafe_no_verify, 0};
		void *made = NULL;
		int rc = rlt_run_blocking(NULL, make_tls_ctx, &j, &made);
		if (rc < 0)
			return rc;
		if (!made)
			return -(j.err ? j.err : ENOMEM);
		rlt_tls_ctx *none = NULL;
		if (atomic_compare_exchange_strong_explicit(
			&c->tls_ctx, &none, made, memory_order_acq_rel, memory_order_acquire)) {
			ctx = made;
		} else {
			rlt_tls_ctx_free(made);
			ctx = none;
		}
	}
	*out = ctx;
	return 0;
}

/* A connection to h, idle or new, with its permits. */
int rlt__http_conn_acquire(rlt_http_client *c, rlt__http_host *h, struct rlt_http_reply **out)
{
	int rc;
	if (h->sem && (rc = rlt_sem_acquire(h->sem)) < 0)
		return rc;
	if ((rc = rlt_sem_acquire(c->total)) < 0) {
		if (h->sem)
			rlt_sem_release(h->sem);
		return rc;
	}
	uint64_t now = rlt_now();
	struct rlt_http_reply *r, *stale = NULL;
	pthread_mutex_lock(&c->lock);
	while ((r = h->idle) != NULL) {
		idle_unlink(c, r);
		if (!idle_expired(c, r, now))
			break;
		r->lnext = stale; /* expired, not reaped yet */
		stale = r;
	}
	if (!r) {
		if (atomic_load_explicit(&c->open, memory_order_relaxed) >= c->o.max_total &&
		    c->lru_head) {
			struct rlt_http_reply *old = c->lru_head;
			idle_unlink(c, old);
			old->lnext = stale;
			stale = old;
		}
		atomic_fetch_add_explicit(&c->open, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&c->lock);
	close_chain(c, stale);
	if (r) {
		*out = r;
		return 0;
	}
	r = conn_new(c, h);
	int fd = r ? -EINTR : -ENOMEM;
	while (fd == -EINTR) /* nothing was tried: try (deadlines still apply) */
		fd = rlt_net_dial(h->dial, c->o.connect_timeout_ns, RLT_NET_NODELAY);
	if (fd >= 0 && h->tls) {
		/* The handshake within the connect timeout. */
		rlt_tls_ctx *ctx = NULL;
		rc = client_tls_ctx(c, &ctx);
		if (rc == 0) {
			r->tls = rlt_tls_client(ctx, fd, h->name, c->o.connect_timeout_ns);
			rc = r->tls ? 0 : -errno;
		}
		if (rc < 0) {
			rlt_close(fd);
			fd = rc;
		}
	}
	if (fd < 0) {
		if (r)
			conn_free(r);
		atomic_fetch_sub_explicit(&c->open, 1, memory_order_relaxed);
		permits_release(c, h);
		return fd;
	}
	r->fd = fd;
	*out = r;
	return 0;
}

/* Give the connection back: idle if it may be reused, else closed. */
void rlt__http_conn_release(struct rlt_http_reply *r, bool reuse)
{
	rlt_http_client *c = r->c;
	rlt__http_host *h = r->h;
	if (reuse && c->o.idle_timeout_ns > 0) {
		if (r->body_cap > BODY_KEEP_MAX) {
			free(r->body);
			r->body = NULL;
			r->body_cap = 0;
		}
		r->idle_since = rlt_now();
		pthread_mutex_lock(&c->lock);
		r->hnext = h->idle;
		if (h->idle)
			h->idle->hprev = r;
		h->idle = r;
		r->lprev = c->lru_tail;
		if (c->lru_tail)
			c->lru_tail->lnext = r;
		else
			c->lru_head = r;
		c->lru_tail = r;
		atomic_fetch_add_explicit(&c->idle, 1, memory_order_relaxed);
		pthread_mutex_unlock(&c->lock);
	} else {
		r->lnext = NULL;
		close_chain(c, r);
	}
	permits_release(c, h);
}

/* The client's task: close connections idle for longer than the timeout,
 * checking a few times per timeout. */
static void *idle_closer(void *arg)
{
	rlt_http_client *c = arg;
	uint64_t period = (uint64_t)c->o.idle_timeout_ns / 4;
	if (period < RLT_NSEC_PER_MSEC)
		period = RLT_NSEC_PER_MSEC;
	if (period > RLT_NSEC_PER_SEC)
		period = RLT_NSEC_PER_SEC;
	while (rlt_sleep(period) == 0) {
		uint64_t now = rlt_now();
		struct rlt_http_reply *stale = NULL, *r;
		pthread_mutex_lock(&c->lock);
		while ((r = c->lru_head) != NULL && idle_expired(c, r, now)) {
			idle_unlink(c, r);
			r->lnext = stale;
			stale = r;
		}
		pthread_mutex_unlock(&c->lock);
		close_chain(c, stale);
	}
	return NULL;
}

rlt_http_client *rlt_http_client_new(const rlt_http_client_opts *opts)
{
	if (!rlt_current()) {
		errno = EPERM;
		return NULL;
	}
	rlt_http_client_opts o = opts ? *opts : (rlt_http_client_opts){0};
	if (!o.max_total)
		o.max_total = RLT_HTTP_CLIENT_MAX_TOTAL;
	if (o.max_per_host > o.max_total)
		o.max_per_host = 0;
	if (!o.idle_timeout_ns)
		o.idle_timeout_ns = (int64_t)RLT_HTTP_CLIENT_IDLE_TIMEOUT_NS;
	if (!o.connect_timeout_ns)
		o.connect_timeout_ns = (int64_t)RLT_HTTP_CLIENT_CONNECT_TIMEOUT_NS;
	if (!o.first_byte_timeout_ns)
		o.first_byte_timeout_ns = -1;
	if (!o.timeout_ns)
		o.timeout_ns = (int64_t)RLT_HTTP_CLIENT_TIMEOUT_NS;
	if (!o.max_header_size)
		o.max_header_size = RLT_HTTP_CLIENT_MAX_HEADER_SIZE;
	if (!o.max_headers)
		o.max_headers = RLT_HTTP_CLIENT_MAX_HEADERS;
	if (o.max_header_size > (64u << 20) || o.max_total > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	const char *ua = o.user_agent ? o.user_agent : "ringlet";
	if (strpbrk(ua, "\r\n")) {
		errno = EINVAL;
		return NULL;
	}
	if (o.ca_file && access(o.ca_file, R_OK) != 0)
		return NULL; /* errno: ENOENT, EACCES (a bad bundle: the first https request) */
	rlt_http_client *c = calloc(1, sizeof(*c));
	if (!c || !(c->user_agent = strdup(ua)) || !(c->total = rlt_sem_new(o.max_total)))
		goto nomem;
	o.user_agent = c->user_agent;
	if (o.ca_file && !(c->ca_file = strdup(o.ca_file)))
		goto nomem;
	o.ca_file = c->ca_file;
	c->o = o;
	atomic_init(&c->tls_ctx, NULL);
	pthread_mutex_init(&c->lock, NULL);
	if (o.idle_timeout_ns > 0) {
		rlt_spawn_opts so = {.name = "http-client-idle"};
		if (!(c->idle_task = rlt_spawn(idle_closer, c, &so))) {
			pthread_mutex_destroy(&c->lock);
			goto nomem;
		}
	}
	return c;
nomem:
	if (c) {
		rlt_sem_free(c->total);
		free(c->user_agent);
		free(c->ca_file);
		free(c);
	}
	errno = ENOMEM;
	return NULL;
}

int rlt_http_client_free(rlt_http_client *c)
{
	if (!c)
		return 0;
	if (!rlt_current())
		return -EPERM;
	if (atomic_load(&c->open) != atomic_load(&c->idle))
		return -EBUSY;
	if (c->idle_task) {
		rlt_cancel(c->idle_task);
		rlt_join(c->idle_task, NULL);
	}
	pthread_mutex_lock(&c->lock);
	struct rlt_http_reply *all = NULL, *r;
	while ((r = c->lru_head) != NULL) {
		idle_unlink(c, r);
		r->lnext = all;
		all = r;
	}
	pthread_mutex_unlock(&c->lock);
	close_chain(c, all);
	for (unsigned i = 0; i < RLT__HTTP_HOST_BUCKETS; i++) {
		rlt__http_host *h = c->hosts[i];
		while (h) {
			rlt__http_host *next = h->next;
			rlt_sem_free(h->sem);
			free(h);
			h = next;
		}
	}
	pthread_mutex_destroy(&c->lock);
	rlt_tls_ctx_free(atomic_load(&c->tls_ctx));
	free(c->ca_file);
	rlt_sem_free(c->total);
	free(c->user_agent);
	free(c);
	return 0;
}

unsigned rlt_http_client_open(const rlt_http_client *c)
{
	return c ? atomic_load_explicit(&c->open, memory_order_relaxed) : 0;
}

unsigned rlt_http_client_idle(const rlt_http_client *c)
{
	return c ? atomic_load_explicit(&c->idle, memory_order_relaxed) : 0;
}
