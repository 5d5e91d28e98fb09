/*
 * Baseline: a hand-written epoll echo server, as lean as we know how to
 * make one, to hold ringlet's echo server (tools/ringlet-echo.c, under the
 * "epoll" policy) against.
 *
 *   echo_epoll [-p PORT] [-t THREADS] [-c CPULIST]
 *
 * One thread per core, each with its own SO_REUSEPORT listener and epoll
 * instance (the kernel spreads connections over the listeners; threads
 * share nothing). Level-triggered: a readable connection gets one recv into
 * the thread's buffer and the bytes go straight back with one send; only
 * when the socket buffer is full does the rest wait in a per-connection
 * copy, with the interest switched to EPOLLOUT until it drains. Thread i
 * runs on the i-th CPU of -c. Runs until killed.
 */
#include "bench/echo_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct conn {
	int fd;
	size_t len, off; /* bytes of pend not sent yet: pend[off, len) */
	char *pend;
} conn;

typedef struct server {
	int port, cpu;
} server;

static void close_conn(int ep, conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pend);
	free(c);
}

/* Send what is pending; returns 1 when it all went, 0 when the socket is
 * full, -1 on error. */
static int flush(conn *c)
{
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->pend + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->off += (size_t)w;
	}
	return 1;
}

static void on_readable(int ep, conn *c, char *buf)
{
	ssize_t r = recv(c->fd, buf, ECHO_BUF, 0);
	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		close_conn(ep, c);
		return;
	}
	ssize_t w = send(c->fd, buf, (size_t)r, MSG_NOSIGNAL);
	if (w == r)
		return;
	if (w < 0) {
		if (errno != EAGAIN) {
			close_conn(ep, c);
			return;
		}
		w = 0;
	}
	/* The socket is full: keep the rest and stop reading until it drains. */
	c->pend = malloc((size_t)(r - w));
	if (!c->pend) {
		close_conn(ep, c);
		return;
	}
	memcpy(c->pend, buf + w, (size_t)(r - w));
	c->len = (size_t)(r - w);
	c->off = 0;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_writable(int ep, conn *c)
{
	int rc = flush(c);
	if (rc < 0) {
		close_conn(ep, c);
	} else if (rc > 0) {
		free(c->pend);
		c->pend = NULL;
		c->len = c->off = 0;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a connection gone before we took it */
		echo_nodelay(fd);
		conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

static void *serve(void *arg)
{
	server *s = arg;
	if (s->cpu >= 0 && pin_cpu(s->cpu) < 0)
		fprintf(stderr, "echo_epoll: cannot pin to CPU %d\n", s->cpu);
	int lfd = echo_listen(s->port, 1, 1);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0) {
		fprintf(stderr, "echo_epoll: listen on port %d: %s\n", s->port,
			strerror(lfd < 0 ? -lfd : errno));
		exit(1);
	}
	/* The listener's data.ptr is NULL; connections have theirs. */
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static _Thread_local char buf[ECHO_BUF];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			conn *c = evs[i].data.ptr;
			if (!c)
				accept_all(ep, lfd);
			else if (evs[i].events & EPOLLOUT)
				on_writable(ep, c);
			else
				on_readable(ep, c, buf);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int port = 7000, threads = 1, opt;
	cpulist cpus = {0};
	while ((opt = getopt(argc, argv, "p:t:c:")) != -1) {
		switch (opt) {
		case 'p':
			port = (int)echo_num("-p", optarg, 1, 65535);
			break;
		case 't':
			threads = (int)echo_num("-t", optarg, 1, 1024);
			break;
		case 'c':
			if (cpulist_parse(optarg, &cpus) < 0) {
				fprintf(stderr, "echo_epoll: bad CPU list '%s'\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: echo_epoll [-p PORT] [-t THREADS] [-c CPULIST]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	server *srv = calloc((size_t)threads, sizeof(*srv));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	for (int i = 0; i < threads; i++) {
		srv[i] = (server){.port = port, .cpu = cpus.n ? cpus.cpu[i % cpus.n] : -1};
		if (i > 0 && pthread_create(&tid[i], NULL, serve, &srv[i]) != 0) {
			fprintf(stderr, "echo_epoll: pthread_create failed\n");
			return 1;
		}
	}
	serve(&srv[0]); /* the main thread is thread 0 */
	return 0;
}
