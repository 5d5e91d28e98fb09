/*
 * Where a message waits on its way through a sleeping worker (issue 17's
 * latency breakdown).
 *
 *   bench_wake [-r RATE] [-n MESSAGES] [-S SERVER_CPU] [-L CLIENT_CPU]
 *
 * One ringlet worker (on SERVER_CPU, default 0) runs an echo task on one
 * TCP connection over loopback; a plain thread (on CLIENT_CPU, default 1)
 * sends it a 32-byte message every 1/RATE s (default 20,000/s: the worker
 * runs dry between messages), stamped with CLOCK_MONOTONIC just before
 * send(2). The server task stamps when its rlt_recv returned, and reads
 * when its worker last came back from a sleep in the kernel
 * (rlt__worker.woke_ns); it sends the stamps back with the message. Stages
 * of each round trip:
 *
 *   wire+wake   client send -> the worker's sleep ends (kernel: loopback,
 *               softirq, the wake-up and the switch to the worker thread)
 *   loop        the sleep ends -> the task runs (reap the CQE or event,
 *               queue the task, switch to it)
 *   back        the task runs -> the client has the echo (submit the send
 *               at the end of the turn, kernel, the client's wake-up)
 *
 * Only round trips on which the worker slept for the message (woke after
 * the client sent) have the first two stages; the share of those is
 * printed ("slept"). The policy and spinning come from RINGLET_POLICY,
 * RINGLET_SPIN, RINGLET_SPIN_US. Output: p50, p90, p99 and p99.9 per stage
 * in microseconds, one line each; and the server worker's CPU time (this
 * thread's, RUSAGE_THREAD: the worker runs on it) per message, warm-up
 * included.
 */
#include "bench/hist.h"
#include "sched/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <ringlet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct msg {
	uint64_t sent, woke, ran, seq;
} msg;

static double rate = 20000;
static unsigned nmsg = 40000;
static int srv_cpu = 0, cli_cpu = 1;
static int sv[2];
static hist h_total, h_wake, h_loop, h_back;
static uint64_t slept;
static rlt__spinpol spin_end; /* the worker's spin policy at the end */
static uint64_t spins, idles;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = recv(fd, (char *)buf + off, len - off, 0);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static void *client(void *arg)
{
	(void)arg;
	pin(cli_cpu);
	int fd = sv[1];
	uint64_t period = (uint64_t)(1e9 / rate);
	uint64_t t0 = now_ns() + 1000000;
	unsigned warm = nmsg / 10;
	for (unsigned i = 0; i < nmsg + warm; i++) {
		uint64_t due = t0 + (uint64_t)i * period;
		struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		msg m = {.sent = now_ns(), .seq = i};
		if (send(fd, &m, sizeof(m), 0) != (ssize_t)sizeof(m) ||
		    read_full(fd, &m, sizeof(m)))
			return (void *)1;
		uint64_t back = now_ns();
		if (i < warm)
			continue;
		hist_record(&h_total, back - m.sent);
		hist_record(&h_back, back - m.ran);
		if (m.woke > m.sent) {
			slept++;
			hist_record(&h_wake, m.woke - m.sent);
			hist_record(&h_loop, m.ran - m.woke);
		}
	}
	shutdown(fd, SHUT_WR);
	return NULL;
}

static void *server(void *arg)
{
	(void)arg;
	int fd = sv[0];
	msg m;
	for (;;) {
		rlt__worker *w = rlt__worker_self();
		spin_end = w->spin;
		spins = w->spins;
		idles = w->idles;
		size_t off = 0;
		while (off < sizeof(m)) {
			ssize_t n = rlt_recv(fd, (char *)&m + off, sizeof(m) - off, 0);
			if (n <= 0)
				return NULL;
			off += (size_t)n;
		}
		m.ran = now_ns();
		m.woke = rlt__worker_self()->woke_ns;
		if (rlt_send_all(fd, &m, sizeof(m), 0) < 0)
			return NULL;
	}
}

static void *root_async(void *arg)
{
	(void)arg;
	rlt_task *s = rlt_spawn(server, NULL, NULL);
	if (!s)
		return (void *)1;
	rlt_join(s, NULL);
	return NULL;
}

static void line(const char *what, const hist *h)
{
	printf("%-10s n=%-7llu p50 %7.1f  p90 %7.1f  p99 %7.1f  p99.9 %7.1f us\n", what,
	       (unsigned long long)h->count, hist_percentile(h, 50) / 1e3,
	       hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3,
	       hist_percentile(h, 99.9) / 1e3);
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "r:n:S:L:")) != -1) {
		switch (opt) {
		case 'r':
			rate = atof(optarg);
			break;
		case 'n':
			nmsg = (unsigned)atoi(optarg);
			break;
		case 'S':
			srv_cpu = atoi(optarg);
			break;
		case 'L':
			cli_cpu = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: bench_wake [-r RATE] [-n MESSAGES] [-S CPU] [-L CPU]\n");
			return 2;
		}
	}
	if (rate <= 0 || !nmsg)
		return 2;
	/* A TCP connection over loopback, made before the runtime starts. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u)};
	socklen_t al = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		return 1;
	sv[1] = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(sv[1], (struct sockaddr *)&a, sizeof(a)))
		return 1;
	sv[0] = accept(l, NULL, NULL);
	close(l);
	int one = 1;
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	hist_init(&h_total);
	hist_init(&h_wake);
	hist_init(&h_loop);
	hist_init(&h_back);
	/* The client is a plain thread, started before the runtime (so it does
	 * not inherit the server's CPU); the runtime runs on this thread. */
	pthread_t th;
	if (pthread_create(&th, NULL, client, NULL))
		return 1;
	pin(srv_cpu);
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	void *res = NULL;
	struct rusage ru0, ru1;
	uint64_t w0 = now_ns();
	getrusage(RUSAGE_THREAD, &ru0);
	int rc = rlt_run(root_async, NULL, &cfg, &res);
	getrusage(RUSAGE_THREAD, &ru1);
	double wall_s = (double)(now_ns() - w0) / 1e9;
	double cpu_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		       (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
		       (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	void *crc;
	pthread_join(th, &crc);
	if (rc < 0 || crc) {
		fprintf(stderr, "bench_wake: failed (rlt_run %d)\n", rc);
		return 1;
	}
	const char *pol = getenv("RINGLET_POLICY"), *spin = getenv("RINGLET_SPIN"),
		   *spin_us = getenv("RINGLET_SPIN_US");
	printf("# %u msgs at %.0f/s, policy %s, spin %s/%s us; slept for %.1f%% of messages\n",
	       nmsg, rate, pol ? pol : "default", spin ? spin : "adaptive",
	       spin_us ? spin_us : "20", 100.0 * (double)slept / (double)nmsg);
	printf("server cpu %.0f ns/msg (%.1f%% of one CPU)\n", cpu_s * 1e9 / (nmsg + nmsg / 10),
	       100.0 * cpu_s / wall_s);
	printf("worker: %llu idle periods, %llu spun; policy: park cost %.1f us, gap avg %.1f "
	       "us, hit rate %.2f, window now %.1f us\n",
	       (unsigned long long)idles, (unsigned long long)spins, spin_end.park_cost / 1e3,
	       spin_end.gap_avg / 1e3, spin_end.hits / 256.0,
	       (double)rlt__spinpol_window(&spin_end) / 1e3);
	line("total", &h_total);
	line("wire+wake", &h_wake);
	line("loop", &h_loop);
	line("back", &h_back);
	return 0;
}
