/*
 * The loop policy under four loads. The policy is whatever RINGLET_POLICY
 * selects (io_uring by default): this program uses only the public API and
 * never names a policy, so bench/policies.sh can run the same binary under
 * each one and compare. Each workload is one rlt_run with the default
 * configuration, except that every workload runs on 1 worker
 * (rlt_config.workers = 1): the figures are then about the loop (its
 * submission, reaping, timers and parking), not about how stealing happened
 * to spread the tasks (with 2 workers, echo swung between ~90 and ~160
 * kreq/s from one run to the next depending on where the clients landed).
 *
 *   policy.switch    ns per rlt_yield(): two tasks yielding back and forth
 *                    (switch-heavy: one loop turn per two switches).
 *   policy.timer     10k tasks (16 KiB stacks), each calling rlt_sleep(0-1 ms,
 *                    random) in a loop: process CPU time per sleep
 *                    (CLOCK_PROCESS_CPUTIME_ID), spawn and join included, as
 *                    bench_timer's timer.task (timer-heavy). Each round
 *                    also pays for faulting in again the stacks whose pages
 *                    the worker gave back when it last parked (beyond
 *                    stack_cache), a cost spread over fewer sleeps with -q:
 *                    compare figures of the same mode only.
 *   policy.pingpong  a loopback TCP connection (127.0.0.1, rlt_accept and
 *                    rlt_connect), a client task and a server task passing
 *                    a 64-byte message back and forth with rlt_send and
 *                    rlt_recv: p50 round trip of the run, in us.
 *   policy.echo      an echo server (an rlt_accept loop, one task per
 *                    connection) and 32 client tasks, each on its own
 *                    connection sending 64-byte requests and waiting for the
 *                    echo, all in one process on 1 worker: thousands of
 *                    requests per second.
 *
 * Any failed call ends the program with exit status 1 and a line naming it,
 * so that a policy that cannot run a workload shows as n/a in policies.sh.
 */
#include "bench_rt.h"
#include "bench_sleepers.h"
#include <ringlet.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSEC	 1000000ull
#define MSG_SIZE 64

static void run_root(const char *name, unsigned workers, rlt_task_fn fn, void *arg)
{
	printf("# %s: running\n", name);
	bench_run(workers, fn, arg);
}

static rlt_task *spawn(rlt_task_fn fn, void *arg, const rlt_spawn_opts *opts)
{
	rlt_task *t = rlt_spawn(fn, arg, opts);
	if (!t)
		die("rlt_spawn", errno);
	return t;
}

static void join(rlt_task *t)
{
	int rc = rlt_join(t, NULL);
	if (rc < 0)
		die("rlt_join", -rc);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---- policy.switch ---- */

typedef struct switch_args {
	const bench_opts *o;
	long yields; /* per task */
} switch_args;

static void *yielder(void *arg)
{
	long n = *(const long *)arg;
	for (long i = 0; i < n; i++) {
		int rc = rlt_yield();
		if (rc < 0)
			die("rlt_yield", -rc);
	}
	return NULL;
}

static void *switch_root(void *arg)
{
	switch_args *a = arg;
	bench_series s;
	bench_series_init(&s, "policy.switch", "ns_per_op");
	for (int r = 0; r < a->o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		rlt_task *x = spawn(yielder, &a->yields, NULL);
		rlt_task *y = spawn(yielder, &a->yields, NULL);
		join(x);
		join(y);
		uint64_t dt = bench_wall_ns() - t0;
		bench_record(&s, (double)dt / (double)(2 * a->yields));
	}
	bench_print_median(&s);
	return NULL;
}

static void bench_switch(const bench_opts *o)
{
	switch_args a = {.o = o, .yields = o->quick ? 500000 : 2000000};
	printf("# policy.switch: 2 tasks x %ld yields per measurement, 1 worker\n", a.yields);
	run_root("policy.switch", 1, switch_root, &a);
}

/* ---- policy.timer ---- */

#define NSLEEPERS 10000u

static void *timer_root(void *arg)
{
	const bench_opts *o = arg;
	bench_sleepers_series(o, "policy.timer", NSLEEPERS, o->quick ? 10 : 30, 0, 1 * MSEC,
			      "0-1 ms, 1 worker");
	return NULL;
}

/* ---- sockets ---- */

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel. */
static int listen_loopback(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", errno);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr->sin_port = 0;
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0)
		die("bind", errno);
	if (listen(fd, 128) < 0)
		die("listen", errno);
	socklen_t len = sizeof(*addr);
	if (getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		die("getsockname", errno);
	return fd;
}

/* Small request/response messages: send each at once (no Nagle). */
static void no_delay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt(TCP_NODELAY)", errno);
}

static int connect_to(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", errno);
	no_delay(fd);
	int rc = rlt_connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (rc < 0)
		die("rlt_connect", -rc);
	return fd;
}

static int accept_from(int lfd)
{
	int fd = rlt_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die("rlt_accept", -fd);
	no_delay(fd);
	return fd;
}

static void close_fd(int fd)
{
	int rc = rlt_close(fd);
	if (rc < 0)
		die("rlt_close", -rc);
}

/* Send all of buf: a send may take fewer bytes than offered. */
static void send_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = rlt_send(fd, p, len, 0);
		if (n < 0)
			die("rlt_send", (int)-n);
		if (n == 0)
			die("rlt_send", EPIPE);
		p += n;
		len -= (size_t)n;
	}
}

/* Receive exactly len bytes: a recv may return fewer than asked. Returns 0
 * on a clean end of stream before the first byte, 1 otherwise. */
static int recv_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = rlt_recv(fd, p + got, len - got, 0);
		if (n < 0)
			die("rlt_recv", (int)-n);
		if (n == 0) {
			if (got == 0)
				return 0;
			die("rlt_recv (end of stream inside a message)", EPROTO);
		}
		got += (size_t)n;
	}
	return 1;
}

/* A request: who sent it and its sequence number, so that the echo can be
 * checked (a policy that mixes up buffers shows as an error, not a figure). */
static void fill_msg(char *msg, uint32_t who, uint32_t seq)
{
	memset(msg, 'x', MSG_SIZE);
	memcpy(msg, &who, sizeof(who));
	memcpy(msg + sizeof(who), &seq, sizeof(seq));
}

static void check_echo(const char *sent, const char *got)
{
	if (memcmp(sent, got, MSG_SIZE) != 0) {
		fprintf(stderr, "bench_policy: rlt_recv: the echo differs from the request\n");
		exit(1);
	}
}

/* ---- policy.pingpong ---- */

typedef struct pingpong {
	const bench_opts *o;
	int rounds;
	int lfd;
	struct sockaddr_in addr;
	double *rtt_us;
} pingpong;

static void *pp_server(void *arg)
{
	pingpong *p = arg;
	int fd = accept_from(p->lfd);
	char buf[MSG_SIZE];
	while (recv_full(fd, buf, sizeof(buf)))
		send_full(fd, buf, sizeof(buf));
	close_fd(fd);
	return NULL;
}

static void *pp_client(void *arg)
{
	pingpong *p = arg;
	int fd = connect_to(&p->addr);
	char msg[MSG_SIZE], buf[MSG_SIZE];
	for (int i = 0; i < p->rounds; i++) {
		fill_msg(msg, 0, (uint32_t)i);
		uint64_t t0 = bench_wall_ns();
		send_full(fd, msg, sizeof(msg));
		if (!recv_full(fd, buf, sizeof(buf)))
			die("rlt_recv (server closed)", EPROTO);
		p->rtt_us[i] = (double)(bench_wall_ns() - t0) / 1e3;
		check_echo(msg, buf);
	}
	close_fd(fd); /* the server sees the end of stream and returns */
	return NULL;
}

static void *pp_root(void *arg)
{
	pingpong *p = arg;
	bench_series s;
	bench_series_init(&s, "policy.pingpong", "us_p50");
	p->lfd = listen_loopback(&p->addr);
	int skip = p->rounds / 20; /* warm-up rounds, left out of the p50 */
	for (int r = 0; r < p->o->reps; r++) {
		rlt_task *srv = spawn(pp_server, p, NULL);
		rlt_task *cli = spawn(pp_client, p, NULL);
		join(cli);
		join(srv);
		qsort(p->rtt_us + skip, (size_t)(p->rounds - skip), sizeof(double), cmp_d);
		bench_record(&s, p->rtt_us[skip + (p->rounds - skip) / 2]);
	}
	bench_print_median(&s);
	close_fd(p->lfd);
	return NULL;
}

static void bench_pingpong(const bench_opts *o)
{
	pingpong p = {.o = o, .rounds = o->quick ? 10000 : 40000};
	p.rtt_us = malloc((size_t)p.rounds * sizeof(double));
	if (!p.rtt_us)
		die("malloc", ENOMEM);
	printf("# policy.pingpong: %d round trips of %d bytes over loopback TCP per measurement, "
	       "1 worker, p50\n",
	       p.rounds, MSG_SIZE);
	run_root("policy.pingpong", 1, pp_root, &p);
	free(p.rtt_us);
}

/* ---- policy.echo ---- */

#define ECHO_CLIENTS 32

typedef struct echo {
	const bench_opts *o;
	int requests; /* per client */
	int lfd;
	struct sockaddr_in addr;
	atomic_int stopping; /* set by the root before its last connection */
	/* Where the clients of the last measurement ended (a diagnostic: the
	 * rate depends on how the tasks spread over the workers). */
	atomic_int on_worker[RLT_MAX_WORKERS];
} echo;

typedef struct echo_client {
	echo *e;
	uint32_t id;
} echo_client;

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG_SIZE];
	while (recv_full(fd, buf, sizeof(buf)))
		send_full(fd, buf, sizeof(buf));
	close_fd(fd);
	return NULL;
}

/* Accepts until the root's last connection, which arrives after
 * `stopping` is set; then joins every connection's task (each ends when
 * its client closes). */
static void *echo_server(void *arg)
{
	echo *e = arg;
	size_t n = 0, cap = 0;
	rlt_task **conns = NULL;
	for (;;) {
		int fd = accept_from(e->lfd);
		if (atomic_load_explicit(&e->stopping, memory_order_acquire)) {
			close_fd(fd);
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			conns = realloc(conns, cap * sizeof(*conns));
			if (!conns)
				die("realloc", ENOMEM);
		}
		conns[n++] = spawn(echo_conn, (void *)(intptr_t)fd, NULL);
	}
	for (size_t i = 0; i < n; i++)
		join(conns[i]);
	free(conns);
	return NULL;
}

static void *echo_client_task(void *arg)
{
	echo_client *c = arg;
	int fd = connect_to(&c->e->addr);
	char msg[MSG_SIZE], buf[MSG_SIZE];
	for (int i = 0; i < c->e->requests; i++) {
		fill_msg(msg, c->id, (uint32_t)i);
		send_full(fd, msg, sizeof(msg));
		if (!recv_full(fd, buf, sizeof(buf)))
			die("rlt_recv (server closed)", EPROTO);
		check_echo(msg, buf);
	}
	close_fd(fd);
	int w = rlt_worker_index();
	if (w >= 0 && w < RLT_MAX_WORKERS)
		atomic_fetch_add_explicit(&c->e->on_worker[w], 1, memory_order_relaxed);
	return NULL;
}

/* One measurement: ECHO_CLIENTS clients connect and make their requests.
 * Returns the wall time, connections included (32 connects are noise next
 * to the requests). */
static uint64_t echo_round(echo *e)
{
	echo_client cl[ECHO_CLIENTS];
	rlt_task *t[ECHO_CLIENTS];
	for (int w = 0; w < RLT_MAX_WORKERS; w++)
		atomic_store_explicit(&e->on_worker[w], 0, memory_order_relaxed);
	uint64_t t0 = bench_wall_ns();
	for (uint32_t i = 0; i < ECHO_CLIENTS; i++) {
		cl[i] = (echo_client){.e = e, .id = i};
		t[i] = spawn(echo_client_task, &cl[i], NULL);
	}
	for (uint32_t i = 0; i < ECHO_CLIENTS; i++)
		join(t[i]);
	return bench_wall_ns() - t0;
}

static void *echo_root(void *arg)
{
	echo *e = arg;
	bench_series s;
	bench_series_init(&s, "policy.echo", "kreq_per_s");
	e->lfd = listen_loopback(&e->addr);
	atomic_store(&e->stopping, 0);
	rlt_task *srv = spawn(echo_server, e, NULL);
	int requests = e->requests;
	e->requests = requests / 10; /* warm-up */
	echo_round(e);
	e->requests = requests;
	for (int r = 0; r < e->o->reps; r++) {
		uint64_t dt = echo_round(e);
		bench_record(&s, (double)ECHO_CLIENTS * e->requests / ((double)dt / 1e9) / 1e3);
		unsigned nw = rlt_runtime_workers(rlt_runtime_self());
		printf("# policy.echo: clients that ended on each worker:");
		for (unsigned w = 0; w < nw && w < RLT_MAX_WORKERS; w++)
			printf(" %d", atomic_load_explicit(&e->on_worker[w], memory_order_relaxed));
		printf("\n");
	}
	bench_print_median(&s);
	atomic_store_explicit(&e->stopping, 1, memory_order_release);
	close_fd(connect_to(&e->addr));
	join(srv);
	close_fd(e->lfd);
	return NULL;
}

static void bench_echo(const bench_opts *o)
{
	echo e = {.o = o, .requests = o->quick ? 2000 : 8000};
	printf("# policy.echo: %d clients x %d requests of %d bytes per measurement, "
	       "1 worker\n",
	       ECHO_CLIENTS, e.requests, MSG_SIZE);
	run_root("policy.echo", 1, echo_root, &e);
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	const char *policy = getenv("RINGLET_POLICY");
	printf("# bench_policy: RINGLET_POLICY=%s\n", policy ? policy : "(unset)");
	if (bench_want(&o, "policy.switch"))
		bench_switch(&o);
	if (bench_want(&o, "policy.timer"))
		run_root("policy.timer", 1, timer_root, &o);
	if (bench_want(&o, "policy.pingpong"))
		bench_pingpong(&o);
	if (bench_want(&o, "policy.echo"))
		bench_echo(&o);
	return 0;
}
