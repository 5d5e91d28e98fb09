/*
 * Memory per idle task.
 *
 *   rss.task  100k tasks with 16 KiB stacks, each sleeping 2 s: process RSS
 *             (/proc/self/statm) while all of them are asleep, minus RSS
 *             just before spawning them, divided by 100k, in KiB. All told:
 *             task structs, touched stack pages, the timer heap, the stack
 *             pool's bookkeeping.
 *
 * Each measurement runs in a forked child, so that neither the allocator
 * nor the stack pool starts warm from the previous one. Page tables are
 * not part of RSS; their growth (VmPTE) is printed as a comment.
 */
#include "bench_common.h"
#include <ringlet.h>

#include <sys/wait.h>
#include <unistd.h>

#define NTASKS 100000u

static long rss_kib(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A "Vm...:" field of /proc/self/status in KiB, or -1. */
static long status_kib(const char *field)
{
	char line[256];
	long v = -1;
	size_t len = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void *idle(void *arg)
{
	rlt_sleep(*(const uint64_t *)arg);
	return NULL;
}

typedef struct child_ctx {
	uint64_t sleep_ns;
	double kib_per_task; /* result, or negative: -errno of a failed spawn */
	unsigned spawned;
} child_ctx;

static rlt_task *tasks[NTASKS];

static void *root(void *arg)
{
	child_ctx *c = arg;
	rlt_spawn_opts opts = {.stack_size = 16384};
	long rss0 = rss_kib(), pte0 = status_kib("VmPTE");
	c->kib_per_task = 0;
	c->spawned = 0;
	for (unsigned i = 0; i < NTASKS; i++) {
		tasks[i] = rlt_spawn(idle, &c->sleep_ns, &opts);
		if (!tasks[i]) {
			c->kib_per_task = -(double)errno;
			break;
		}
		c->spawned++;
	}
	/* The spawned tasks are queued ahead of us: when this returns, every
	 * one of them has run up to its rlt_sleep and is asleep. */
	rlt_sleep(c->sleep_ns / 10);
	long rss1 = rss_kib(), pte1 = status_kib("VmPTE");
	if (c->kib_per_task == 0) {
		c->kib_per_task = (double)(rss1 - rss0) / NTASKS;
		printf("# rss.task: RSS %ld -> %ld KiB, page tables %ld -> %ld KiB (%.2f KiB per "
		       "task)\n",
		       rss0, rss1, pte0, pte1, (double)(pte1 - pte0) / NTASKS);
		fflush(stdout);
	}
	for (unsigned i = 0; i < c->spawned; i++)
		rlt_join(tasks[i], NULL);
	return NULL;
}

/* One measurement in a fresh child process: KiB per task, or -errno. */
static double measure(uint64_t sleep_ns)
{
	int fd[2];
	if (pipe(fd) < 0) {
		perror("pipe");
		exit(1);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		close(fd[0]);
		child_ctx c = {.sleep_ns = sleep_ns};
		int rc = rlt_run(root, &c, NULL, NULL);
		if (rc < 0)
			c.kib_per_task = rc;
		else if (c.kib_per_task < 0)
			fprintf(stderr,
				"bench_rss: rlt_spawn failed after %u tasks: %s (errno %d)\n",
				c.spawned, strerror((int)-c.kib_per_task), (int)-c.kib_per_task);
		ssize_t n = write(fd[1], &c.kib_per_task, sizeof(c.kib_per_task));
		_exit(n == (ssize_t)sizeof(c.kib_per_task) ? 0 : 1);
	}
	close(fd[1]);
	double v = -1;
	ssize_t n = read(fd[0], &v, sizeof(v));
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	if (n != (ssize_t)sizeof(v) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_rss: measurement child failed\n");
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	uint64_t sleep_ns = 2000000000ull;
	bench_series s;
	bench_series_init(&s, "rss.task", "KiB");
	printf("# rss.task: %u tasks, 16 KiB stacks, sleeping %.1f s\n", NTASKS, sleep_ns / 1e9);
	for (int r = 0; r < o.reps; r++) {
		double v = measure(sleep_ns);
		if (v < 0) {
			fprintf(stderr, "bench_rss: failed: %s (errno %d)\n", strerror((int)-v),
				(int)-v);
			return 1;
		}
		bench_record(&s, v);
	}
	bench_print_median(&s);
	return 0;
}
