/*
 * The HTTP client: the connection pool, a request's exchange (connect or
 * reuse, one sendmsg, the response head), redirects, and the reply calls.
 *
 * A reply is its connection: struct rlt_http_reply holds the socket, the
 * buffers (kept from request to request: no allocation per request on a
 * reused connection) and the parser. While a task has the reply, the
 * connection is busy and no list holds it; freeing the reply puts it on
 * its host's idle list (newest first, the one reused next) and on the
 * client's list of idle connections oldest first (the one closed first,
 * by the idle task or to make room), or closes it.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Body read-ahead after the head: one recv's worth for small bodies,
 * while a large read goes straight into the caller's buffer. */
#define READ_AHEAD    (16 * 1024)
#define DIRECT_MIN    4096	    /* reads this large bypass the read-ahead */
#define BODY_KEEP_MAX (1024 * 1024) /* a body buffer larger than this is not kept idle */
#define WRITE_CHUNK   (64 * 1024)   /* rlt_http_reply_write_to's pieces */
#define DRAIN_MAX     (64 * 1024)   /* a redirect's body read to keep its connection */
#define HOST_BUCKETS  64
#define URL_MAX	      8192

typedef struct host {
	struct host *next;	     /* hash chain */
	rlt_sem *sem;		     /* busy connections of this host (NULL: no limit) */
	struct rlt_http_reply *idle; /* idle connections, newest first */
	char key[RLT__HTTP_HOSTPORT_MAX];
} host;

struct rlt_http_reply {
	rlt_http_client *c;
	host *h;
	int fd;
	bool broken;			      /* an error happened: never reuse */
	unsigned uses;			      /* requests sent on it */
	uint64_t idle_since;		      /* rlt_now() when it went idle */
	struct rlt_http_reply *hprev, *hnext; /* the host's idle list */
	struct rlt_http_reply *lprev, *lnext; /* the client's idle list, oldest first */
	uint64_t deadline;		      /* the whole request's (0: none): body reads too */
	rlt__http_resp resp;		      /* the parser, over buf */
	char *wbuf;			      /* the request head */
	size_t wcap;
	char *body; /* rlt_http_reply_body's buffer */
	size_t body_cap;
	char *url; /* the URL that answered */
	size_t url_cap;
};

struct rlt_http_client {
	rlt_http_client_opts o; /* with the defaults filled in */
	char *user_agent;
	rlt_sem *total;
	rlt_task *idle_task;
	pthread_mutex_t lock;
	host *hosts[HOST_BUCKETS];
	struct rlt_http_reply *lru_head, *lru_tail; /* idle, oldest first */
	_Atomic unsigned open, idle;
};

/* ---- the pool ---- */

static host *host_get(rlt_http_client *c, const char *key)
{
	uint32_t hash = 2166136261u;
	for (const char *k = key; *k; k++)
		hash = (hash ^ (unsigned char)*k) * 16777619u;
	host **slot = &c->hosts[hash % HOST_BUCKETS];
	pthread_mutex_lock(&c->lock);
	host *h = *slot;
	while (h && strcmp(h->key, key) != 0)
		h = h->next;
	if (!h && (h = calloc(1, sizeof(*h)))) {
		snprintf(h->key, sizeof(h->key), "%s", key);
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

static void conn_free(struct rlt_http_reply *r)
{
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
		rlt_close(r->fd);
		conn_free(r);
		atomic_fetch_sub_explicit(&c->open, 1, memory_order_relaxed);
		r = next;
	}
	if (shielded)
		rlt_scope_leave(&sh);
}

static void permits_release(rlt_http_client *c, host *h)
{
	rlt_sem_release(c->total);
	if (h->sem)
		rlt_sem_release(h->sem);
}

static struct rlt_http_reply *conn_new(rlt_http_client *c, host *h)
{
	struct rlt_http_reply *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->resp.cap = c->o.max_header_size + READ_AHEAD;
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

/* A connection to h, idle or new, with its permits. */
static int conn_acquire(rlt_http_client *c, host *h, struct rlt_http_reply **out)
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
		if (now - r->idle_since < (uint64_t)c->o.idle_timeout_ns)
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
	int fd = r ? rlt_net_dial(h->key, c->o.connect_timeout_ns, RLT_NET_NODELAY) : -ENOMEM;
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
static void conn_release(struct rlt_http_reply *r, bool reuse)
{
	rlt_http_client *c = r->c;
	host *h = r->h;
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
		while ((r = c->lru_head) != NULL &&
		       now - r->idle_since >= (uint64_t)c->o.idle_timeout_ns) {
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
	rlt_http_client *c = calloc(1, sizeof(*c));
	if (!c || !(c->user_agent = strdup(ua)) || !(c->total = rlt_sem_new(o.max_total)))
		goto nomem;
	o.user_agent = c->user_agent;
	c->o = o;
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
	for (unsigned i = 0; i < HOST_BUCKETS; i++) {
		host *h = c->hosts[i];
		while (h) {
			host *next = h->next;
			rlt_sem_free(h->sem);
			free(h);
			h = next;
		}
	}
	pthread_mutex_destroy(&c->lock);
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

/* ---- a request ---- */

static bool token_ok(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!strchr("!#$%&'*+-.^_`|~", *s) &&
		    !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

static bool idempotent(const char *m)
{
	static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i]) == 0)
			return true;
	return false;
}

static bool has_header(const rlt_http_client_header *hd, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(hd[i].name, name) == 0)
			return true;
	return false;
}

/* What one exchange sends: the method, target and headers of the request
 * (the URL's part is parsed per hop). */
typedef struct exchange {
	const char *method;
	const rlt_http_client_header *headers;
	size_t nheaders;
	bool drop_auth; /* a redirect changed host: no Authorization */
	const void *body;
	size_t body_len;
	bool no_retry;
} exchange;

static int wbuf_reserve(struct rlt_http_reply *r, size_t need)
{
	if (need <= r->wcap)
		return 0;
	size_t cap = r->wcap ? r->wcap : 512;
	while (cap < need)
		cap *= 2;
	char *b = realloc(r->wbuf, cap);
	if (!b)
		return -ENOMEM;
	r->wbuf = b;
	r->wcap = cap;
	return 0;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUTS(p, lit) put(p, lit, sizeof(lit) - 1)

/* Write the request head into r->wbuf; returns its length or -ENOMEM. */
static ssize_t build_head(struct rlt_http_reply *r, const exchange *x, const rlt__http_url *u)
{
	const char *ua = r->c->user_agent;
	bool own_host = has_header(x->headers, x->nheaders, "host");
	bool own_ua = has_header(x->headers, x->nheaders, "user-agent");
	bool send_len = x->body_len > 0 || !strcmp(x->method, "POST") ||
			!strcmp(x->method, "PUT") || !strcmp(x->method, "PATCH");
	size_t need = strlen(x->method) + u->target_len + 64 + strlen(u->host_hdr) + strlen(ua);
	for (size_t i = 0; i < x->nheaders; i++)
		need += strlen(x->headers[i].name) + strlen(x->headers[i].value) + 4;
	if (wbuf_reserve(r, need) < 0)
		return -ENOMEM;
	char *p = r->wbuf;
	p = put(p, x->method, strlen(x->method));
	*p++ = ' ';
	p = u->target_len ? put(p, u->target, u->target_len) : PUTS(p, "/");
	p = PUTS(p, " HTTP/1.1\r\n");
	if (!own_host) {
		p = PUTS(p, "Host: ");
		p = put(p, u->host_hdr, strlen(u->host_hdr));
		p = PUTS(p, "\r\n");
	}
	if (!own_ua) {
		p = PUTS(p, "User-Agent: ");
		p = put(p, ua, strlen(ua));
		p = PUTS(p, "\r\n");
	}
	for (size_t i = 0; i < x->nheaders; i++) {
		const rlt_http_client_header *hd = &x->headers[i];
		if (x->drop_auth && strcasecmp(hd->name, "authorization") == 0)
			continue;
		p = put(p, hd->name, strlen(hd->name));
		p = PUTS(p, ": ");
		p = put(p, hd->value, strlen(hd->value));
		p = PUTS(p, "\r\n");
	}
	if (send_len)
		p += sprintf(p, "Content-Length: %zu\r\n", x->body_len);
	p = PUTS(p, "\r\n");
	return p - r->wbuf;
}

/* Head and body in one sendmsg (more only if the socket takes part). */
static int send_request(struct rlt_http_reply *r, size_t head_len, const exchange *x)
{
	struct iovec iov[2] = {{r->wbuf, head_len}, {(void *)x->body, x->body_len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = x->body_len ? 2 : 1};
	while (m.msg_iovlen > 0) {
		ssize_t n = rlt_sendmsg(r->fd, &m, 0);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		while (m.msg_iovlen > 0 && (size_t)n >= m.msg_iov->iov_len) {
			n -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + n;
			m.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Read until the response head is parsed. *nothing: no byte came. */
static int read_head(struct rlt_http_reply *r, bool head_req, bool *nothing)
{
	rlt__http_resp *p = &r->resp;
	int64_t fb = r->c->o.first_byte_timeout_ns;
	p->pos = p->end = 0;
	rlt__http_resp_begin(p, head_req);
	*nothing = true;
	for (;;) {
		int rc = rlt__http_resp_head(p);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		if (p->end == p->cap)
			return -EMSGSIZE;
		rlt_scope sc;
		bool scoped = *nothing && fb > 0 && rlt_scope_enter(&sc, fb) == 0;
		ssize_t n = rlt_recv(r->fd, p->buf + p->end, p->cap - p->end, 0);
		if (scoped)
			rlt_scope_leave(&sc);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return rlt__http_resp_eof(p) < 0 ? -EPIPE : -EBADMSG;
		*nothing = false;
		p->end += (size_t)n;
	}
}

/* One request on one connection (and once more on a new one, if a pooled
 * connection turns out dead before answering an idempotent request). */
static int exchange_once(rlt_http_client *c, const char *url, const exchange *x,
			 struct rlt_http_reply **out)
{
	rlt__http_url u;
	int rc = rlt__http_url_parse(&u, url);
	if (rc < 0)
		return rc;
	host *h = host_get(c, u.hostport);
	if (!h)
		return -ENOMEM;
	bool head_req = strcmp(x->method, "HEAD") == 0;
	for (int attempt = 0;; attempt++) {
		struct rlt_http_reply *r;
		if ((rc = conn_acquire(c, h, &r)) < 0)
			return rc;
		bool reused = r->uses > 0, nothing = true;
		ssize_t len = build_head(r, x, &u);
		rc = len < 0 ? (int)len : send_request(r, (size_t)len, x);
		r->uses++;
		if (rc == 0)
			rc = read_head(r, head_req, &nothing);
		if (rc == 0) {
			*out = r;
			return 0;
		}
		r->broken = true;
		conn_release(r, false);
		bool dead = rc == -EPIPE || rc == -ECONNRESET || rc == -ECONNABORTED;
		if (!(dead && reused && nothing && attempt == 0 && !x->no_retry &&
		      idempotent(x->method)))
			return rc;
	}
}

static bool is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static int set_url(struct rlt_http_reply *r, const char *url)
{
	size_t n = strlen(url) + 1;
	if (n > r->url_cap) {
		char *b = realloc(r->url, n);
		if (!b)
			return -ENOMEM;
		r->url = b;
		r->url_cap = n;
	}
	memcpy(r->url, url, n);
	return 0;
}

/* Read and drop a redirect's body, if short, so its connection is kept. */
static void drain(struct rlt_http_reply *r)
{
	char tmp[1024];
	size_t total = 0;
	if (r->resp.content_length > DRAIN_MAX)
		return;
	while (total <= DRAIN_MAX) {
		ssize_t n = rlt_http_reply_read(r, tmp, sizeof(tmp));
		if (n <= 0)
			return;
		total += (size_t)n;
	}
}

int rlt_http_fetch(rlt_http_client *c, const rlt_http_client_request *req, rlt_http_reply **out)
{
	if (out)
		*out = NULL;
	if (!c || !req || !req->url || !out || (req->body_len && !req->body))
		return -EINVAL;
	exchange x = {.method = req->method ? req->method : "GET",
		      .headers = req->headers,
		      .nheaders = req->nheaders,
		      .body = req->body,
		      .body_len = req->body_len,
		      .no_retry = req->flags & RLT_HTTP_CLIENT_NO_RETRY};
	if (!token_ok(x.method) || (req->nheaders && !req->headers))
		return -EINVAL;
	for (size_t i = 0; i < req->nheaders; i++) {
		const rlt_http_client_header *hd = &req->headers[i];
		if (!token_ok(hd->name) || !hd->value || strpbrk(hd->value, "\r\n") ||
		    strcasecmp(hd->name, "content-length") == 0 ||
		    strcasecmp(hd->name, "transfer-encoding") == 0)
			return -EINVAL;
	}
	if (!rlt_current())
		return -EPERM;
	int64_t t = req->timeout_ns ? req->timeout_ns : c->o.timeout_ns;
	uint64_t deadline = t > 0 ? rlt_now() + (uint64_t)t : 0;
	rlt_scope sc;
	bool scoped = deadline && rlt_scope_enter_at(&sc, deadline) == 0;

	const char *url = req->url;
	char *owned = NULL; /* the current redirect's URL */
	struct rlt_http_reply *r = NULL;
	int rc;
	for (unsigned hops = 0;; hops++) {
		if ((rc = exchange_once(c, url, &x, &r)) < 0)
			break;
		const char *loc;
		if (!c->o.max_redirects || !is_redirect(r->resp.status) ||
		    !(loc = rlt__http_resp_header(&r->resp, "location")) || !*loc)
			break;
		if (hops == c->o.max_redirects) {
			rc = -ELOOP;
			break;
		}
		char *next = malloc(URL_MAX);
		if (!next) {
			rc = -ENOMEM;
			break;
		}
		if ((rc = rlt__http_url_resolve(url, loc, next, URL_MAX)) < 0) {
			free(next);
			break;
		}
		rlt__http_url a, b;
		if (rlt__http_url_parse(&a, url) == 0 && rlt__http_url_parse(&b, next) == 0 &&
		    strcmp(a.hostport, b.hostport) != 0)
			x.drop_auth = true;
		int st = r->resp.status;
		if (st == 303 || ((st == 301 || st == 302) && strcmp(x.method, "GET") &&
				  strcmp(x.method, "HEAD"))) {
			x.method = "GET";
			x.body = NULL;
			x.body_len = 0;
		}
		drain(r);
		rlt_http_reply_free(r);
		r = NULL;
		free(owned);
		url = owned = next;
	}
	if (rc == 0 && (rc = set_url(r, url)) == 0)
		r->deadline = deadline;
	if (rc < 0 && r) {
		r->broken = true;
		rlt_http_reply_free(r);
		r = NULL;
	}
	free(owned);
	if (scoped)
		rlt_scope_leave(&sc);
	*out = r;
	return rc;
}

int rlt_http_fetch_url(rlt_http_client *c, const char *url, rlt_http_reply **out)
{
	rlt_http_client_request req = {.url = url};
	return rlt_http_fetch(c, &req, out);
}

/* ---- the reply ---- */

int rlt_http_reply_status(const rlt_http_reply *r)
{
	return r ? r->resp.status : -EINVAL;
}

const char *rlt_http_reply_reason(const rlt_http_reply *r)
{
	if (!r)
		return NULL;
	return r->resp.reason_len ? r->resp.buf + r->resp.reason : "";
}

int rlt_http_reply_version(const rlt_http_reply *r)
{
	return r ? r->resp.version : -EINVAL;
}

const char *rlt_http_reply_url(const rlt_http_reply *r)
{
	return r ? r->url : NULL;
}

const char *rlt_http_reply_header(const rlt_http_reply *r, const char *name)
{
	return r && name ? rlt__http_resp_header(&r->resp, name) : NULL;
}

size_t rlt_http_reply_header_count(const rlt_http_reply *r)
{
	return r ? r->resp.nhdrs : 0;
}

int rlt_http_reply_header_at(const rlt_http_reply *r, size_t i, const char **name,
			     const char **value)
{
	if (!r || i >= r->resp.nhdrs)
		return -ERANGE;
	if (name)
		*name = r->resp.buf + r->resp.hdrs[i].name;
	if (value)
		*value = r->resp.buf + r->resp.hdrs[i].value;
	return 0;
}

int64_t rlt_http_reply_content_length(const rlt_http_reply *r)
{
	return r ? r->resp.content_length : -1;
}

/* One piece of body: from the buffer, or from the socket (straight into
 * buf when it is large and the framing allows). */
static ssize_t read_some(rlt_http_reply *r, char *buf, size_t len)
{
	rlt__http_resp *p = &r->resp;
	for (;;) {
		ssize_t n = rlt__http_resp_take(p, buf, len);
		if (n != 0 || p->state == RLT__RESP_DONE)
			return n;
		bool direct = len >= DIRECT_MIN &&
			      (p->state == RLT__RESP_LENGTH || p->state == RLT__RESP_EOF);
		if (direct && p->state == RLT__RESP_LENGTH && len > p->remaining)
			len = (size_t)p->remaining;
		char *to = direct ? buf : p->buf + p->end;
		n = rlt_recv(r->fd, to, direct ? len : p->cap - p->end, 0);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (n == 0) {
			int rc = rlt__http_resp_eof(p);
			return rc < 0 ? rc : 0;
		}
		if (!direct) {
			p->end += (size_t)n;
			continue;
		}
		if (p->state == RLT__RESP_LENGTH && (p->remaining -= (uint64_t)n) == 0)
			p->state = RLT__RESP_DONE;
		return n;
	}
}

ssize_t rlt_http_reply_read(rlt_http_reply *r, void *buf, size_t len)
{
	if (!r || !buf || !len)
		return -EINVAL;
	if (r->resp.err)
		return r->resp.err;
	if (r->resp.state == RLT__RESP_DONE && r->resp.pos == r->resp.end)
		return 0;
	rlt_scope sc;
	bool scoped = r->deadline && rlt_scope_enter_at(&sc, r->deadline) == 0;
	ssize_t n = read_some(r, buf, len);
	if (scoped)
		rlt_scope_leave(&sc);
	if (n < 0) {
		r->resp.err = (int)n;
		r->broken = true;
	}
	return n;
}

static int body_reserve(rlt_http_reply *r, size_t need)
{
	if (need <= r->body_cap)
		return 0;
	size_t cap = r->body_cap ? r->body_cap : 4096;
	while (cap < need)
		cap *= 2;
	char *b = realloc(r->body, cap);
	if (!b)
		return -ENOMEM;
	r->body = b;
	r->body_cap = cap;
	return 0;
}

ssize_t rlt_http_reply_body(rlt_http_reply *r, size_t limit, const char **body)
{
	if (!r || !body || limit > SIZE_MAX / 4)
		return -EINVAL;
	int64_t cl = r->resp.content_length;
	if (cl >= 0 && r->resp.state != RLT__RESP_DONE && (uint64_t)cl > limit)
		return -EMSGSIZE;
	size_t want = cl >= 0 ? (size_t)cl + 1 : 16 * 1024;
	if (want > limit + 2)
		want = limit + 2;
	if (body_reserve(r, want) < 0)
		return -ENOMEM;
	size_t got = 0;
	for (;;) {
		if (got + 1 == r->body_cap) {
			if (got > limit)
				break;
			size_t grow = r->body_cap * 2;
			if (body_reserve(r, grow > limit + 2 ? limit + 2 : grow) < 0)
				return -ENOMEM;
		}
		ssize_t n = rlt_http_reply_read(r, r->body + got, r->body_cap - 1 - got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > limit) {
		r->broken = true;
		return -EMSGSIZE;
	}
	r->body[got] = '\0';
	*body = r->body;
	return (ssize_t)got;
}

ssize_t rlt_http_reply_write_to(rlt_http_reply *r, int fd, off_t offset)
{
	if (!r || fd < 0)
		return -EINVAL;
	if (body_reserve(r, WRITE_CHUNK) < 0)
		return -ENOMEM;
	size_t total = 0;
	for (;;) {
		ssize_t n = rlt_http_reply_read(r, r->body, WRITE_CHUNK);
		if (n <= 0)
			return n < 0 ? n : (ssize_t)total;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = rlt_write(fd, r->body + done, (size_t)(n - done), offset);
			if (w == -EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? w : -EIO;
			done += w;
			if (offset >= 0)
				offset += w;
		}
		total += (size_t)n;
	}
}

ssize_t rlt_http_download(rlt_http_client *c, const char *url, int fd, off_t offset, int *status)
{
	rlt_http_reply *r;
	int rc = rlt_http_fetch_url(c, url, &r);
	if (rc < 0)
		return rc;
	int st = rlt_http_reply_status(r);
	if (status)
		*status = st;
	ssize_t n = st >= 200 && st < 300 ? rlt_http_reply_write_to(r, fd, offset) : -EREMOTEIO;
	rlt_http_reply_free(r);
	return n;
}

void rlt_http_reply_free(rlt_http_reply *r)
{
	if (!r)
		return;
	rlt__http_resp *p = &r->resp;
	/* A Content-Length body that is all in the buffer is as good as read. */
	if (p->state == RLT__RESP_LENGTH && p->end - p->pos == p->remaining) {
		p->pos = p->end;
		p->state = RLT__RESP_DONE;
	}
	bool reuse = !r->broken && !p->err && p->keep_alive && p->state == RLT__RESP_DONE &&
		     p->pos == p->end;
	conn_release(r, reuse);
}
