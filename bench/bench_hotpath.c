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
 */
#include <ringlet.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *op;
static long n;

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
	if (argc != 3) {
		fprintf(stderr, "usage: bench_hotpath spawn|yield|read|timer N\n");
		return 2;
	}
	op = argv[1];
	n = atol(argv[2]);
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = 1;
	void *res = NULL;
	int rc = rlt_run(root, NULL, &cfg, &res);
	if (rc != 0 || res != NULL) {
		fprintf(stderr, "bench_hotpath %s: rc %d, result %p\n", op, rc, res);
		return 1;
	}
	return 0;
}
