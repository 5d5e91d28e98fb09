/*
 * An echo server on ringlet: one task per connection (recv, then send it
 * all back), the benchmark suite's server (bench/suite.sh) and an example
 * of a ringlet network server written with the plain I/O calls.
 *
 *   ringlet-echo [-p PORT] [-w WORKERS] [-P POLICY] [-c CPULIST] [-1]
 *                [-s STACK]
 *
 *   -p PORT     TCP port (default 7000)
 *   -w WORKERS  worker threads (default: ringlet's, one per allowed CPU)
 *   -P POLICY   loop policy (io_uring, io_uring-sqpoll, epoll, ...); sets
 *               rlt_config.policy and RINGLET_POLICY, strictly: no fallback
 *   -c CPULIST  run on these CPUs, worker i pinned to the i-th
 *   -1          one listener, accepted on worker 0 (default: one
 *               SO_REUSEPORT listener per worker, each with its own
 *               accepting task pinned there, as a thread-per-core server
 *               would; connection tasks start on the worker that accepted
 *               them)
 *   -s STACK    connection task stack size in bytes (k/m suffix; default
 *               32k: the 16 KiB buffer and the I/O call chain below it)
 *
 * Memory per idle connection: bench/idle.sh (100,000 of them).
 *
 * Receives through a receive queue (rlt_rxq, include/ringlet/rxq.h: one
 * multishot receive per connection under io_uring); RINGLET_RXQ=0 in the
 * environment receives with rlt_recv instead, so that the two can be
 * measured against each other in one build (bench/echo_cpu.sh's
 * REF_ENV="RINGLET_RXQ=0").
 *
 * Runs until SIGINT or SIGTERM: the first one cancels the main task
 * (rlt_cancel_on_signal), which stops accepting and returns; rlt_run then
 * cancels the connections and the server exits 0. A second signal during
 * that ends it at once.
 */
#include "bench/echo_common.h"

#include <poll.h>
#include <ringlet.h>
#include <signal.h>
#include <stdint.h>

typedef struct server {
	int port;
	int one_listener;
	size_t conn_stack; /* -s */
} server;

/* The connection's receive side: a receive queue (rlt_recv underneath
 * under epoll or with RINGLET_RXQ=0), or rlt_recv on the fd when there was
 * no memory for one. */
typedef struct rx {
	int fd;
	rlt_rxq *q;
} rx;

static inline ssize_t rx_recv(rx *r, void *buf, size_t len)
{
	return r->q ? rlt_rxq_recv(r->q, buf, len) : rlt_recv(r->fd, buf, len, 0);
}

/* Echo until the peer is done, with the buffer on the task's stack (the
 * task holds it only while a recv or send is in flight). Not inlined: the
 * caller waits above this frame until the connection first sends. */
static __attribute__((noinline)) void echo_big(rx *r)
{
	char buf[ECHO_BUF];
	for (;;) {
		ssize_t n = rx_recv(r, buf, sizeof(buf));
		if (n <= 0 || rlt_send_all(r->fd, buf, (size_t)n, 0) < 0)
			return;
	}
}

/* Small messages first: with a buffer that fits in the stack page the call
 * chain uses anyway, a connection that served small messages and now idles
 * holds one stack page. A receive that fills it moves the connection to the
 * big buffer for good (after echoing what it got). */
#define ECHO_SMALL 1024
static __attribute__((noinline)) void echo_all(rx *r)
{
	char buf[ECHO_SMALL];
	for (;;) {
		ssize_t n = rx_recv(r, buf, sizeof(buf));
		if (n <= 0 || rlt_send_all(r->fd, buf, (size_t)n, 0) < 0)
			return;
		if (n == (ssize_t)sizeof(buf))
			break;
	}
	echo_big(r);
}

/* One connection. It first waits for the peer to send with rlt_poll: no
 * buffer, and the call chain runs in the stack's top page, so a connection
 * that stays idle holds that page, the task, and nothing else. One poll per
 * connection, not per message. */
static void *conn_task(void *arg)
{
	int fd = (int)(intptr_t)arg;
	if (rlt_poll(fd, POLLIN) > 0) {
		rx r = {fd, rlt_rxq_open(fd)};
		echo_all(&r);
		rlt_rxq_close(r.q); /* before the close: an armed receive holds the socket */
	}
	rlt_close(fd);
	return NULL;
}

static size_t conn_stack;

static void *accept_task(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	/* Multishot accept where the policy has it: one armed accept, a
	 * completion per connection. */
	rlt_acceptor *acc = rlt_acceptor_open(lfd, RLT_NET_NODELAY);
	if (!acc) {
		fprintf(stderr, "ringlet-echo: acceptor: %s\n", strerror(errno));
		exit(1);
	}
	for (;;) {
		int fd = rlt_acceptor_next(acc, NULL);
		if (fd < 0) {
			/* Out of descriptors: rlt_acceptor_next paused (up to
			 * 64 ms) before saying so; try again. */
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS)
				continue;
			if (fd == -ECONNABORTED || fd == -EINTR)
				continue;
			if (fd == -ECANCELED)
				break; /* shutting down */
			fprintf(stderr, "ringlet-echo: accept: %s\n", strerror(-fd));
			exit(1);
		}
		rlt_spawn_opts o = {
		    .name = "conn", .flags = RLT_SPAWN_DETACHED, .stack_size = conn_stack};
		if (!rlt_spawn(conn_task, (void *)(intptr_t)fd, &o))
			rlt_close(fd);
	}
	rlt_acceptor_close(acc);
	rlt_close(lfd);
	return NULL;
}

static void *root(void *arg)
{
	server *s = arg;
	/* Ctrl-C: the joins below return -ECANCELED, and cancel what they join */
	int rc = rlt_cancel_on_signal(NULL);
	if (rc < 0) {
		fprintf(stderr, "ringlet-echo: signals: %s\n", strerror(-rc));
		exit(1);
	}
	unsigned n = s->one_listener ? 1 : rlt_runtime_workers(rlt_runtime_self());
	rlt_task *acc[RLT_MAX_WORKERS];
	for (unsigned i = 0; i < n; i++) {
		int lfd = echo_listen(s->port, !s->one_listener, 0);
		if (lfd < 0) {
			fprintf(stderr, "ringlet-echo: listen on port %d: %s\n", s->port,
				strerror(-lfd));
			exit(1);
		}
		rlt_spawn_opts o = {
		    .name = "accept", .flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = i};
		acc[i] = rlt_spawn(accept_task, (void *)(intptr_t)lfd, &o);
		if (!acc[i]) {
			fprintf(stderr, "ringlet-echo: spawn: %s\n", strerror(errno));
			exit(1);
		}
	}
	for (unsigned i = 0; i < n; i++) {
		/* cancelled (Ctrl-C): this join cancelled acc[i]; the others too */
		if (rlt_join(acc[i], NULL) == -ECANCELED)
			for (unsigned j = i + 1; j < n; j++)
				rlt_cancel(acc[j]);
	}
	/* Stopped by a signal: an orderly stop, not a failure (rlt_run 0). */
	rlt_uncancel();
	fprintf(stderr, "ringlet-echo: stopped\n");
	return NULL;
}

int main(int argc, char **argv)
{
	server s = {.port = 7000, .conn_stack = 32 * 1024};
	rlt_config cfg;
	rlt_config_init(&cfg);
	cpulist cpus = {0};
	int opt;
	while ((opt = getopt(argc, argv, "p:w:P:c:1s:i")) != -1) {
		switch (opt) {
		case 'p':
			s.port = (int)echo_num("-p", optarg, 1, 65535);
			break;
		case 'w':
			cfg.workers = (unsigned)echo_num("-w", optarg, 1, RLT_MAX_WORKERS);
			break;
		case 'P':
			cfg.policy = optarg;
			cfg.policy_strict = true;
			setenv("RINGLET_POLICY", optarg, 1); /* the variable would win over cfg */
			break;
		case 'c':
			if (cpulist_parse(optarg, &cpus) < 0 || cpulist_apply(&cpus) < 0) {
				fprintf(stderr, "ringlet-echo: bad CPU list '%s'\n", optarg);
				return 2;
			}
			cfg.pin = true; /* worker i on the i-th CPU of the list */
			break;
		case '1':
			s.one_listener = 1;
			break;
		case 's': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (*end == 'k' || *end == 'K')
				v <<= 10, end++;
			else if (*end == 'm' || *end == 'M')
				v <<= 20, end++;
			if (*end || v < RLT_MIN_STACK_SIZE || v > RLT_MAX_STACK_SIZE) {
				fprintf(stderr, "ringlet-echo: bad stack size '%s'\n", optarg);
				return 2;
			}
			s.conn_stack = (size_t)v;
			break;
		}

		default:
			fprintf(stderr, "usage: ringlet-echo [-p PORT] [-w WORKERS] [-P POLICY] "
					"[-c CPULIST] [-1] [-s STACK]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	conn_stack = s.conn_stack;
	int rc = rlt_run(root, &s, &cfg, NULL);
	if (rc < 0) {
		fprintf(stderr, "ringlet-echo: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
