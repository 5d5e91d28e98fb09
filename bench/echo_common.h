/*
 * What the echo servers (the two baselines in bench/baselines/ and
 * tools/ringlet-echo.c) and the load generator share: CPU lists for
 * pinning, the listening socket, and flag parsing helpers. Plain libc; no
 * ringlet here, so the baselines stay free of it.
 */
#ifndef RLT_BENCH_ECHO_COMMON_H
#define RLT_BENCH_ECHO_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The buffer each connection reads into, in every server. */
#define ECHO_BUF      16384
#define ECHO_MAX_CPUS 256

typedef struct cpulist {
	int n;
	int cpu[ECHO_MAX_CPUS];
} cpulist;

/* Parse "0", "0,2", "1-3,6" into l; returns 0, or -1 on a malformed list. */
static inline int cpulist_parse(const char *s, cpulist *l)
{
	l->n = 0;
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b;
		if (end == s || a < 0 || a >= 4096)
			return -1;
		b = a;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			if (end == s + 1 || b < a || b >= 4096)
				return -1;
			s = end;
		}
		for (long c = a; c <= b; c++) {
			if (l->n == ECHO_MAX_CPUS)
				return -1;
			l->cpu[l->n++] = (int)c;
		}
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return l->n > 0 ? 0 : -1;
}

/* Restrict the calling thread (and the threads it creates from now on) to
 * the CPUs of l; returns 0 or a negative errno. */
static inline int cpulist_apply(const cpulist *l)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < l->n; i++)
		CPU_SET(l->cpu[i], &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

/* Pin the calling thread to one CPU. */
static inline int pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

/* A TCP listener on INADDR_ANY:port, SO_REUSEADDR and,
 * with reuseport, SO_REUSEPORT (one listener per thread, the kernel
 * spreading connections over them). Returns the fd or a negative errno. */
static inline int echo_listen(int port, int reuseport, int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0)
		goto fail;
	return fd;
fail:;
	int err = errno;
	close(fd);
	return -err;
}

/* Small messages must not wait for Nagle. */
static inline void echo_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A decimal flag value in [lo, hi], or exit 2 naming the flag. */
static inline long echo_num(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: bad value '%s' for %s (%ld..%ld)\n",
			program_invocation_short_name, s, flag, lo, hi);
		exit(2);
	}
	return v;
}

#endif
