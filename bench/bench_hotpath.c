/*
 * The hot paths one at a time, for instruction counts under callgrind
 * (bench/hotpath.sh): `bench_hotpath OP N` runs N of OP on one worker.
 * Run with N and 2N, the difference over N is the cost of one OP without
 * the start-up: callgrind counts instructions, so the figure does not move
 * with the machine's load.
 *   spawn  rlt_spawn + rlt_join of an empty task
 *   yield  rlt_yield with no other task
 *   read   rlt_read of 64 bytes from /dev/zero (a completed I/O op)
 *   timer  rlt_sleep(1 us) (arm, park, fire, disarm)
 *   echo   one 64 B echo over loopback TCP as ringlet-echo serves it (a
 *          receive queue, rlt_send_all), the worker parking between
 *          messages. The client, which sends each message and waits for
 *          its echo, is another process (this binary, exec'd: valgrind
 *          follows no exec by default, and a thread of ours would wait
 *          forever for valgrind's lock while the worker sleeps in
 *          io_uring_enter), so the count is the server's alone.
 */
#include <ringlet.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *op;
static long n;
static int echo_fd = -1; /* the server's end of the echo connection */
extern char **environ;

/* The echo's client (`bench_hotpath echo-client PORT N`): one message in
 * flight; closes at the end, which the server's next receive sees. */
static int echo_client(int port, long count)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char msg[64] = {0}, got[64];
	for (long i = 0; i < count; i++) {
		if (write(fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			return 1;
		size_t have = 0;
		while (have < sizeof(got)) {
			ssize_t r = read(fd, got + have, sizeof(got) - have);
			if (r <= 0)
				return 1;
			have += (size_t)r;
		}
	}
	close(fd);
	return 0;
}

/* Starts the client process and accepts its connection: the server's end
 * (non-blocking, for the runtime) in *srv, the client's pid returned; -1 on
 * failure. */
static pid_t echo_start(const char *self, int *srv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -1;
	char port[16], count[32];
	char *argv[] = {(char *)self, "echo-client", port, count, NULL};
	pid_t pid = -1;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		goto fail;
	snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
	snprintf(count, sizeof(count), "%ld", n);
	if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) {
		pid = -1;
		goto fail;
	}
	*srv = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (*srv < 0)
		goto fail;
	close(l);
	setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return pid;
fail:
	close(l);
	if (pid > 0) {
		/* A client that connected would wait for its echo for ever. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static void *empty(void *arg)
{
	return arg;
}

static void *root(void *arg)
{
	(void)arg;
	if (!strcmp(op, "spawn")) {
		for (long i = 0; i < n; i++) {
			rlt_task *t = rlt_spawn(empty, NULL, NULL);
			if (!t || rlt_join(t, NULL) != 0)
				return (void *)1;
		}
	} else if (!strcmp(op, "yield")) {
		for (long i = 0; i < n; i++)
			rlt_yield();
	} else if (!strcmp(op, "read")) {
		int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		char buf[64];
		for (long i = 0; i < n; i++)
			if (rlt_read(fd, buf, sizeof(buf), -1) != (ssize_t)sizeof(buf))
				return (void *)1;
		close(fd);
	} else if (!strcmp(op, "echo")) {
		rlt_rxq *q = rlt_rxq_open(echo_fd);
		if (!q)
			return (void *)1;
		char buf[1024];
		ssize_t got;
		while ((got = rlt_rxq_recv(q, buf, sizeof(buf))) > 0)
			if (rlt_send_all(echo_fd, buf, (size_t)got, 0) < 0)
				break;
		rlt_rxq_close(q);
		if (got != 0) /* an error, or a send that failed */
			return (void *)1;
	} else if (!strcmp(op, "timer")) {
		for (long i = 0; i < n; i++)
			if (rlt_sleep(1000) != 0)
				return (void *)1;
	} else {
		return (void *)2;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "echo-client"))
		return echo_client(atoi(argv[2]), atol(argv[3]));
	if (argc != 3) {
		fprintf(stderr, "usage: bench_hotpath spawn|yield|read|timer|echo N\n");
		return 2;
	}
	op = argv[1];
	n = atol(argv[2]);
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	void *res = NULL;
	pid_t client = -1;
	if (!strcmp(op, "echo") && (client = echo_start(argv[0], &echo_fd)) < 0) {
		perror("bench_hotpath echo");
		return 1;
	}
	int rc = rlt_run(root, NULL, &cfg, &res);
	if (client > 0) {
		int st = 0;
		close(echo_fd);
		if (waitpid(client, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = rc ? rc : -EIO;
	}
	if (rc != 0 || res != NULL) {
		fprintf(stderr, "bench_hotpath %s: rc %d, result %p\n", op, rc, res);
		return 1;
	}
	return 0;
}
