/*
 * gather: what waiting for many tasks at once costs.
 *
 *   gather.10k.1w       us to spawn 10k empty tasks and rlt_gather() them
 *                       (results in order), on one worker.
 *   gather.10k.2w       the same on two workers: the tasks are spawned on
 *                       the root's worker and the other one steals.
 *   gather.join.10k.1w  the in-run baseline: spawn 10k, then rlt_join()
 *   gather.join.10k.2w  them one by one. gather registers one watch with
 *                       every task where a join suspends on each unfinished
 *                       one: the difference is what the watch costs.
 *
 * One rlt_run() per metric: a warm-up round (the stack pool and the
 * allocator), then one timed round per repetition. Informational: no
 * target yet.
 */
#include "bench_rt.h"

#define N 10000

static void *empty(void *arg)
{
	return arg;
}

struct job {
	const bench_opts *o;
	bench_series *s;
	int gather; /* else join one by one */
	rlt_task **tasks;
	void **results;
};

static void spawn_all(struct job *j)
{
	for (size_t i = 0; i < N; i++) {
		j->tasks[i] = rlt_spawn(empty, (void *)(uintptr_t)i, NULL);
		if (!j->tasks[i])
			die("rlt_spawn", errno);
	}
}

static void round_once(struct job *j)
{
	spawn_all(j);
	if (j->gather) {
		int rc = rlt_gather(j->tasks, N, j->results, NULL, 0);
		if (rc < 0)
			die("rlt_gather", -rc);
	} else {
		for (size_t i = 0; i < N; i++) {
			int rc = rlt_join(j->tasks[i], &j->results[i]);
			if (rc < 0)
				die("rlt_join", -rc);
		}
	}
	if (j->results[N - 1] != (void *)(uintptr_t)(N - 1))
		die("results out of order", EINVAL);
}

static void *root(void *arg)
{
	struct job *j = arg;
	round_once(j); /* warm-up */
	for (int r = 0; r < j->o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		round_once(j);
		bench_record(j->s, (double)(bench_wall_ns() - t0) / 1e3);
	}
	return NULL;
}

static void measure(const bench_opts *o, const char *name, unsigned workers, int gather)
{
	if (!bench_want(o, name))
		return;
	bench_series s;
	bench_series_init(&s, name, "us");
	struct job j = {o, &s, gather, calloc(N, sizeof(rlt_task *)), calloc(N, sizeof(void *))};
	if (!j.tasks || !j.results)
		die("calloc", ENOMEM);
	bench_run(workers, root, &j);
	bench_print_median(&s);
	free(j.tasks);
	free(j.results);
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	printf("# gather: %d empty tasks per round, spawn included\n", N);
	measure(&o, "gather.10k.1w", 1, 1);
	measure(&o, "gather.10k.2w", 2, 1);
	measure(&o, "gather.join.10k.1w", 1, 0);
	measure(&o, "gather.join.10k.2w", 2, 0);
	return 0;
}
