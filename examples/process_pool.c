/*
 * The third part of asyncio's run_in_executor example, in C: a process pool.
 *
 *     def cpu_bound():
 *         return sum(i * i for i in range(10 ** 6))
 *
 *     async def main():
 *         loop = asyncio.get_running_loop()
 *         with concurrent.futures.ProcessPoolExecutor() as pool:
 *             result = await loop.run_in_executor(pool, cpu_bound)
 *             print('custom process pool', result)
 *
 *     if __name__ == '__main__':
 *         asyncio.run(main())
 *
 * Python's `if __name__ == '__main__':` is what keeps a spawned worker, which
 * imports the program again, from running main() too; here the workers are
 * this program started again, and rlt_procpool_child_main() at the top of
 * main() is that guard. A job is a plain C function on bytes, run in
 * another process: what a pool of processes adds over threads is that a job
 * that brings its process down (here, a library that calls exit() on bad
 * input) fails alone, and the pool replaces the process.
 *
 * Prints:
 *     custom process pool: 333332833333500000
 *     4 jobs on 2 processes: 41666541666750000 333332833333500000 1124998875000250000
 * 2666664666667000000 a job that exits: No child processes (the pool replaced its process) and the
 * pool goes on: 333332833333500000
 */
#include <ringlet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs in a worker process. The input is the count as text ("" for 10^6);
 * the output the sum of squares below it, as text. */
static int cpu_bound(const void *in, size_t len, void **out, size_t *out_len)
{
	char buf[24] = {0};
	memcpy(buf, in, len < sizeof(buf) - 1 ? len : sizeof(buf) - 1);
	unsigned long long n = len ? strtoull(buf, NULL, 10) : 1000000, sum = 0;
	for (unsigned long long i = 0; i < n; i++)
		sum += i * i;
	char *s = malloc(24);
	if (!s)
		return -ENOMEM;
	*out_len = (size_t)snprintf(s, 24, "%llu", sum);
	*out = s;
	return 0;
}

/* A library that gives up on bad input the hard way. */
static int picky(const void *in, size_t len, void **out, size_t *out_len)
{
	(void)in, (void)len, (void)out, (void)out_len;
	exit(3);
}

/* Run cpu_bound(n) in the pool and print "label: result". */
static int run_and_print(rlt_procpool *pool, const char *label, const char *n)
{
	void *out;
	size_t len;
	int rc = rlt_procpool_run(pool, "cpu_bound", n, strlen(n), &out, &len);
	if (rc < 0) {
		fprintf(stderr, "%s: %s\n", label, strerror(-rc));
		return rc;
	}
	printf("%s%.*s", label, (int)len, (char *)out);
	free(out);
	return 0;
}

typedef struct job {
	rlt_procpool *pool;
	char n[24];
	void *out;
	size_t len;
} job;

static void *one_job(void *arg)
{
	job *j = arg;
	int rc = rlt_procpool_run(j->pool, "cpu_bound", j->n, strlen(j->n), &j->out, &j->len);
	return rc < 0 ? rlt_fail(rc) : NULL;
}

static int failed; /* main()'s exit status */

static void *main_task(void *arg)
{
	(void)arg;
	/* the `with ProcessPoolExecutor() as pool:` block */
	rlt_procpool *pool = rlt_procpool_create(&(rlt_procpool_config){.processes = 2});
	if (!pool) {
		fprintf(stderr, "rlt_procpool_create: %s\n", strerror(errno));
		failed = 1;
		return NULL;
	}
	int rc = run_and_print(pool, "custom process pool: ", "");
	printf("\n");

	/* gather: four jobs from four tasks, two at a time on two processes */
	job jobs[4];
	rlt_task *tasks[4];
	for (int i = 0; i < 4 && rc == 0; i++) {
		jobs[i] = (job){.pool = pool};
		snprintf(jobs[i].n, sizeof(jobs[i].n), "%d", (i + 1) * 500000);
		tasks[i] = rlt_spawn(one_job, &jobs[i], NULL);
	}
	if (rc == 0) {
		int errs[4];
		rc = rlt_gather(tasks, 4, NULL, errs, RLT_GATHER_SETTLE);
		printf("4 jobs on 2 processes:");
		for (int i = 0; i < 4; i++) {
			if (errs[i] == 0)
				printf(" %.*s", (int)jobs[i].len, (char *)jobs[i].out);
			else
				printf(" (%s)", strerror(-errs[i]));
			free(jobs[i].out);
		}
		printf("\n");
	}

	if (rc == 0) {
		int crash = rlt_procpool_run(pool, "picky", "?", 1, NULL, NULL);
		printf("a job that exits: %s (the pool replaced its process)\n", strerror(-crash));
		rc = run_and_print(pool, "and the pool goes on: ", "");
		printf("\n");
	}
	rlt_procpool_free(pool); /* the `with` block's end */
	failed = rc < 0;
	return NULL;
}

int main(int argc, char **argv)
{
	rlt_procpool_register("cpu_bound", cpu_bound);
	rlt_procpool_register("picky", picky);
	/* if __name__ == '__main__': a worker stays in here */
	rlt_procpool_child_main(argc, argv);

	int rc = rlt_run(main_task, NULL, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return failed;
}
