/*
 * An echo server on ringlet: one task per connection (recv, then send it
 * all back), the benchmark suite's server (bench/suite.sh) and an example
 * of a ringlet network server written with the plain I/O calls.
 *
 *   ringlet-echo [-p PORT] [-w WORKERS] [-P POLICY] [-c CPULIST] [-1]
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
 *
 * Runs until SIGINT or SIGTERM: the first one cancels the main task
 * (rlt_cancel_on_signal), which stops accepting and returns; rlt_run then
 * cancels the connections and the server exits 0. A second signal during
 * that ends it at once.
 */
#include "bench/echo_common.h"

#include <ringlet.h>
#include <signal.h>
#include <stdint.h>

typedef struct server {
	int port;
	int one_listener;
} server;

/* One connection: echo until the peer is done. The buffer lives on the
 * task's stack; the task holds it only while a recv or send is in flight. */
static void *conn_task(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[ECHO_BUF];
	for (;;) {
		ssize_t n = rlt_recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || rlt_send_all(fd, buf, (size_t)n, 0) < 0)
			break;
	}
	rlt_close(fd);
	return NULL;
}

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
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
				rlt_sleep(RLT_NSEC_PER_MSEC); /* let connections go */
				continue;
			}
			if (fd == -ECONNABORTED || fd == -EINTR)
				continue;
			if (fd == -ECANCELED)
				break; /* shutting down */
			fprintf(stderr, "ringlet-echo: accept: %s\n", strerror(-fd));
			exit(1);
		}
		rlt_spawn_opts o = {.name = "conn", .flags = RLT_SPAWN_DETACHED};
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
	server s = {.port = 7000};
	rlt_config cfg;
	rlt_config_init(&cfg);
	cpulist cpus = {0};
	int opt;
	while ((opt = getopt(argc, argv, "p:w:P:c:1")) != -1) {
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
		default:
			fprintf(stderr, "usage: ringlet-echo [-p PORT] [-w WORKERS] [-P POLICY] "
					"[-c CPULIST] [-1]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	int rc = rlt_run(root, &s, &cfg, NULL);
	if (rc < 0) {
		fprintf(stderr, "ringlet-echo: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
