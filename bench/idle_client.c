/*
 * Opens many idle TCP connections to an echo server and holds them, for
 * bench/idle.sh (memory per idle connection).
 *
 *   idle_client -p PORT -n CONNS [-s SOURCES] [-e]
 *
 * Connections come from SOURCES loopback addresses (127.0.0.2, .3, ...;
 * default 8), the port picked per 4-tuple (IP_BIND_ADDRESS_NO_PORT), so the
 * ephemeral range is not the limit. Non-blocking connects, at most 512 in
 * flight. -e: then send one byte on every connection and wait for its echo
 * (a connection that has been used, then idles). Prints "ready N" on stdout
 * once all are established (and echoed), then holds them until stdin
 * closes or a signal ends it. Exits 1 when a connection fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define INFLIGHT 512

static int open_one(int port, unsigned src)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002u + src)};
	struct sockaddr_in d = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(0x7f000001u)};
	if (bind(fd, (struct sockaddr *)&s, sizeof(s)) < 0 ||
	    (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0 && errno != EINPROGRESS)) {
		int err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* Wait for every fd in fds[0..n) to have ev; checks SO_ERROR when a
 * connect is what is awaited. */
static int wait_all(int *fds, unsigned n, short ev, int check_connect)
{
	struct pollfd p[INFLIGHT];
	unsigned left = n;
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = fds[i], .events = ev};
	while (left) {
		int r = poll(p, n, 10000);
		if (r == 0) {
			fprintf(stderr, "idle_client: timed out waiting for %u connections\n",
				left);
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (unsigned i = 0; i < n; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			if (check_connect) {
				int err = 0;
				socklen_t l = sizeof(err);
				getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err) {
					fprintf(stderr, "idle_client: connect: %s\n",
						strerror(err));
					return -1;
				}
			} else if (p[i].revents & POLLIN) {
				char c;
				if (recv(p[i].fd, &c, 1, 0) != 1 || c != 'x') {
					fprintf(stderr, "idle_client: echo missing\n");
					return -1;
				}
			} else {
				fprintf(stderr, "idle_client: connection closed\n");
				return -1;
			}
			p[i].fd = -1;
			left--;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int port = 0, echo = 0;
	unsigned n = 0, sources = 8;
	int opt;
	while ((opt = getopt(argc, argv, "p:n:s:e")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			sources = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			echo = 1;
			break;
		default:
			fprintf(stderr, "usage: idle_client -p PORT -n CONNS [-s SOURCES] [-e]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || !n || !sources || sources > 250) {
		fprintf(stderr, "usage: idle_client -p PORT -n CONNS [-s SOURCES] [-e]\n");
		return 2;
	}
	int *fds = calloc(n, sizeof(int));
	if (!fds)
		return 1;
	for (unsigned i = 0; i < n; i += INFLIGHT) {
		unsigned k = n - i < INFLIGHT ? n - i : INFLIGHT;
		for (unsigned j = 0; j < k; j++) {
			fds[i + j] = open_one(port, (i + j) % sources);
			if (fds[i + j] < 0) {
				fprintf(stderr, "idle_client: connection %u: %s\n", i + j,
					strerror(-fds[i + j]));
				return 1;
			}
		}
		if (wait_all(fds + i, k, POLLOUT, 1) < 0)
			return 1;
	}
	if (echo) {
		for (unsigned i = 0; i < n; i += INFLIGHT) {
			unsigned k = n - i < INFLIGHT ? n - i : INFLIGHT;
			for (unsigned j = 0; j < k; j++)
				if (send(fds[i + j], "x", 1, 0) != 1) {
					perror("idle_client: send");
					return 1;
				}
			if (wait_all(fds + i, k, POLLIN, 0) < 0)
				return 1;
		}
	}
	printf("ready %u\n", n);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
