/*
 * The server: listeners and their accept loops, the registry of live
 * connections, and the graceful shutdown.
 *
 * Shutdown protocol. A connection waiting for its next request is IDLE;
 * it stores IDLE and then reads `stopping`; the shutdown stores `stopping`
 * and then looks at every connection's state (both sequentially
 * consistent: one of the two sees the other). The shutdown moves IDLE
 * connections to CLOSING and shuts their read side, which ends their recv
 * with 0; a connection that got a request moves IDLE -> BUSY first, and
 * the one CAS that wins decides. BUSY connections finish their request
 * (its response says Connection: close) and close.
 */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void rlt__http_conn_register(struct conn *c)
{
	rlt_http_server *s = c->srv;
	pthread_mutex_lock(&s->lock);
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	pthread_mutex_unlock(&s->lock);
}

void rlt__http_conn_unregister(struct conn *c)
{
	rlt_http_server *s = c->srv;
	pthread_mutex_lock(&s->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	bool last = --s->nconns == 0 && atomic_load(&s->stopping);
	/* Set under the lock: the waiter frees the server once it sees it. */
	if (last)
		rlt_event_set(s->done_ev);
	pthread_mutex_unlock(&s->lock);
}

static void *conn_task(void *arg)
{
	struct conn *c = arg;
	rlt__http_conn_run(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct listener *l = arg;
	rlt_http_server *s = l->srv;
	rlt_acceptor *a = rlt_acceptor_open(l->fd, RLT_NET_NODELAY);
	if (!a)
		return rlt_fail(-errno);
	rlt_spawn_opts so = {
	    .name = "http-conn", .stack_size = s->o.stack_size, .flags = RLT_SPAWN_DETACHED};
	for (;;) {
		int fd = rlt_acceptor_next(a, NULL);
		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			/* Out of descriptors or memory: the connection waits in
			 * the backlog; try again a little later. */
			if (rlt_sleep(10 * RLT_NSEC_PER_MSEC) == -ECANCELED)
				break;
			continue;
		}
		struct conn *c = rlt__http_conn_new(s, fd);
		if (!c) {
			rlt_close(fd);
			continue;
		}
		if (s->o.shared_acceptor && s->workers > 1) {
			so.flags = RLT_SPAWN_DETACHED | RLT_SPAWN_ON_WORKER;
			so.worker =
			    atomic_fetch_add_explicit(&s->rr, 1, memory_order_relaxed) % s->workers;
		}
		if (!rlt_spawn(conn_task, c, &so))
			rlt__http_conn_abort(c);
	}
	rlt_acceptor_close(a);
	return NULL;
}

/* Cancel the connections whose wait passed its deadline (see dl_arm). */
static void *reaper(void *arg)
{
	rlt_http_server *s = arg;
	while (rlt_sleep(s->tick) == 0) {
		uint64_t now = rlt_now();
		pthread_mutex_lock(&s->lock);
		for (struct conn *c = s->conns; c; c = c->next) {
			uint64_t d = atomic_load_explicit(&c->deadline, memory_order_relaxed);
			if (d <= DL_ISSUED || d > now)
				continue;
			if (!atomic_compare_exchange_strong(&c->deadline, &d, DL_FIRED))
				continue;
			rlt_cancel(c->task); /* armed: the task has started */
			atomic_store_explicit(&c->deadline, DL_ISSUED, memory_order_release);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* The reaper's period: an eighth of the shortest timeout, within
 * [5 ms, 250 ms] (timeouts are late by up to that much). */
static uint64_t reaper_tick(const rlt_http_server_opts *o)
{
	int64_t t[] = {o->header_timeout, o->idle_timeout, o->io_timeout};
	uint64_t m = 250 * RLT_NSEC_PER_MSEC;
	for (size_t i = 0; i < 3; i++)
		if (t[i] > 0 && (uint64_t)t[i] / 8 < m)
			m = (uint64_t)t[i] / 8;
	return m < 5 * RLT_NSEC_PER_MSEC ? 5 * RLT_NSEC_PER_MSEC : m;
}

static int set_server_name(rlt_http_server *s, const char *name)
{
	if (!name)
		name = "ringlet";
	if (!name[0]) {
		s->server_hdr_len = 0;
		return 0;
	}
	if (strpbrk(name, "\r\n"))
		return -EINVAL;
	int n = snprintf(s->server_hdr, sizeof(s->server_hdr), "Server: %s\r\n", name);
	if (n < 0 || (size_t)n >= sizeof(s->server_hdr))
		return -ENAMETOOLONG;
	s->server_hdr_len = (size_t)n;
	return 0;
}

static void unlink_unix(const rlt_addr *a)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	if (a->ss.ss_family == AF_UNIX && a->len > offsetof(struct sockaddr_un, sun_path) &&
	    un->sun_path[0])
		unlink(un->sun_path);
}

static void close_listeners(rlt_http_server *s)
{
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
	for (size_t i = 0; i < s->naddrs; i++)
		unlink_unix(&s->addrs[i]);
	s->nls = 0;
}

void rlt_http_server_free(rlt_http_server *s)
{
	if (!s)
		return;
	close_listeners(s);
	free(s->ls);
	free(s->addrs);
	rlt_event_free(s->stop_ev);
	rlt_event_free(s->done_ev);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int listen_all(rlt_http_server *s, const rlt_http_server_opts *o)
{
	int w0 = rlt_worker_index();
	for (size_t i = 0; i < o->naddrs; i++) {
		bool one =
		    o->shared_acceptor || o->addrs[i].ss.ss_family == AF_UNIX || s->workers == 1;
		unsigned per = one ? 1 : s->workers;
		s->addrs[i] = o->addrs[i];
		for (unsigned w = 0; w < per; w++) {
			/* -1, not 0: rlt_net_listen passes 0 on to listen(2)
			 * (a backlog of one), though net.h says "<= 0". */
			int fd = rlt_net_listen(&s->addrs[i], o->backlog > 0 ? o->backlog : -1,
						one ? 0 : RLT_NET_REUSEPORT);
			if (fd < 0)
				return fd;
			struct listener *l = &s->ls[s->nls++];
			l->srv = s;
			l->fd = fd;
			l->worker = one ? (unsigned)(w0 < 0 ? 0 : w0) : w;
			l->task = NULL;
			/* The others bind the port the first one got. */
			if (w == 0 && rlt_net_local(fd, &s->addrs[i]) < 0)
				return -EINVAL;
		}
	}
	return 0;
}

rlt_http_server *rlt_http_server_start(const rlt_http_server_opts *o)
{
	int err = 0;
	if (!rlt_current()) {
		errno = EPERM;
		return NULL;
	}
	if (!o || !o->handler || (o->naddrs && !o->addrs)) {
		errno = EINVAL;
		return NULL;
	}
	rlt_http_server *s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->o = *o;
	s->o.addrs = NULL;
	if (!s->o.header_limit)
		s->o.header_limit = RLT_HTTP_HEADER_LIMIT;
	if (!s->o.max_headers)
		s->o.max_headers = RLT_HTTP_MAX_HEADERS;
	if (!s->o.body_limit)
		s->o.body_limit = RLT_HTTP_BODY_LIMIT;
	if (!s->o.drain_limit)
		s->o.drain_limit = RLT_HTTP_DRAIN_LIMIT;
	s->o.header_timeout = http_timeout(o->header_timeout, RLT_HTTP_HEADER_TIMEOUT);
	s->o.idle_timeout = http_timeout(o->idle_timeout, RLT_HTTP_IDLE_TIMEOUT);
	s->o.io_timeout = http_timeout(o->io_timeout, RLT_HTTP_IO_TIMEOUT);
	s->o.grace = http_timeout(o->grace, RLT_HTTP_GRACE);
	if (s->o.header_limit > 1024 * 1024 || s->o.max_headers > 65536) {
		err = EINVAL;
		goto fail;
	}
	int rc = set_server_name(s, o->server_name);
	if (rc < 0) {
		err = -rc;
		goto fail;
	}
	s->workers = rlt_runtime_workers(rlt_runtime_self());
	s->naddrs = o->naddrs;
	s->stop_ev = rlt_event_new();
	s->done_ev = rlt_event_new();
	s->addrs = calloc(o->naddrs ? o->naddrs : 1, sizeof(*s->addrs));
	s->ls = calloc(o->naddrs ? o->naddrs * s->workers : 1, sizeof(*s->ls));
	if (!s->stop_ev || !s->done_ev || !s->addrs || !s->ls) {
		err = ENOMEM;
		goto fail;
	}
	s->tick = reaper_tick(&s->o);
	s->reaper =
	    rlt_spawn(reaper, s, &(rlt_spawn_opts){.name = "http-reaper", .stack_size = 16384});
	if (!s->reaper) {
		err = errno;
		goto fail;
	}
	rc = listen_all(s, o);
	if (rc < 0) {
		err = -rc;
		goto fail;
	}
	for (size_t i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];
		rlt_spawn_opts so = {.name = "http-accept",
				     .flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
				     .worker = l->worker};
		l->task = rlt_spawn(accept_loop, l, &so);
		if (!l->task) {
			err = errno;
			for (size_t j = 0; j < i; j++) {
				rlt_cancel(s->ls[j].task);
				rlt_join(s->ls[j].task, NULL);
			}
			goto fail;
		}
	}
	return s;
fail:
	if (s->reaper) {
		rlt_cancel(s->reaper);
		rlt_join(s->reaper, NULL);
	}
	rlt_http_server_free(s);
	errno = err;
	return NULL;
}

int rlt_http_server_addr(const rlt_http_server *s, size_t i, rlt_addr *out)
{
	if (!s || !out || i >= s->naddrs)
		return -EINVAL;
	*out = s->addrs[i];
	return 0;
}

int rlt_http_server_stop(rlt_http_server *s)
{
	if (!s)
		return -EINVAL;
	atomic_store(&s->stopping, 1);
	rlt_event_set(s->stop_ev);
	return 0;
}

/* Close every connection waiting for a request (see the protocol above). */
static void close_idle(rlt_http_server *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct conn *c = s->conns; c; c = c->next) {
		int idle = CONN_IDLE;
		if (atomic_compare_exchange_strong(&c->state, &idle, CONN_CLOSING))
			shutdown(c->fd, SHUT_RD);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Past the grace period: cancel the handlers still running, and end the
 * reads of connections whose task has not started. */
static void cancel_all(rlt_http_server *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->task)
			rlt_cancel(c->task);
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&s->lock);
}

int rlt_http_server_wait(rlt_http_server *s)
{
	if (!s)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	int busy = 0;
	if (!atomic_compare_exchange_strong(&s->waiting, &busy, 1))
		return -EBUSY;
	int rc = rlt_event_wait(s->stop_ev);
	rlt_scope shield;
	rlt_shield_enter(&shield);
	rlt_http_server_stop(s);
	for (size_t i = 0; i < s->nls; i++) {
		rlt_cancel(s->ls[i].task);
		rlt_join(s->ls[i].task, NULL);
	}
	close_listeners(s);
	pthread_mutex_lock(&s->lock);
	if (s->nconns == 0)
		rlt_event_set(s->done_ev);
	pthread_mutex_unlock(&s->lock);
	close_idle(s);
	if (rlt_event_wait_timeout(s->done_ev, s->o.grace > 0 ? s->o.grace : -1) == -ETIMEDOUT) {
		cancel_all(s);
		rlt_event_wait(s->done_ev);
	}
	/* The last connection set done_ev under the lock: taking it once
	 * more means it has let go of the server. */
	pthread_mutex_lock(&s->lock);
	pthread_mutex_unlock(&s->lock);
	rlt_cancel(s->reaper);
	rlt_join(s->reaper, NULL);
	s->reaper = NULL;
	rlt_scope_leave(&shield);
	atomic_store(&s->waiting, 0);
	return rc == -ECANCELED ? -ECANCELED : 0;
}

int rlt_http_server_serve_fd(rlt_http_server *s, int fd)
{
	if (!s || fd < 0)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	struct conn *c = rlt__http_conn_new(s, fd);
	if (!c) {
		rlt_close(fd);
		return -ENOMEM;
	}
	return rlt__http_conn_run(c);
}
