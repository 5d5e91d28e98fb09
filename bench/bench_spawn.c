/*
 * Task creation cost, in steady state (the stack pool and the allocator are
 * warmed by one unrecorded pass first).
 *
 *   spawn.single  ns per rlt_spawn(empty) + run + rlt_join, one at a time
 *                 from the root task: the task's whole life, both switches.
 *   spawn.named   spawn.single with opts.name set, so no "task-<id>" is
 *                 formatted: the difference is what snprintf costs.
 *                 Informational.
 *   spawn.batch   spawn 1000 empty tasks, then join the 1000: ns per task.
 *                 1000 is beyond the default stack cache (256), so this
 *                 also shows what returning a stack past the cache costs.
 *
 * Except for spawn.named, tasks get the default options (NULL): the default
 * stack size and the generated name "task-<id>".
 */
#include "bench_common.h"
#include <ringlet.h>

#define BATCH 1000

static void *empty(void *arg)
{
	return arg;
}

static void die_spawn(void)
{
	fprintf(stderr, "bench_spawn: rlt_spawn: %s\n", strerror(errno));
	exit(1);
}

static void run_single(long n, const rlt_spawn_opts *opts)
{
	for (long i = 0; i < n; i++) {
		rlt_task *t = rlt_spawn(empty, NULL, opts);
		if (!t)
			die_spawn();
		rlt_join(t, NULL);
	}
}

static void run_batch(long rounds)
{
	static rlt_task *tasks[BATCH];
	for (long r = 0; r < rounds; r++) {
		for (int i = 0; i < BATCH; i++) {
			tasks[i] = rlt_spawn(empty, NULL, NULL);
			if (!tasks[i])
				die_spawn();
		}
		for (int i = 0; i < BATCH; i++)
			rlt_join(tasks[i], NULL);
	}
}

static void bench_single(const bench_opts *o, bench_series *s, long n, const rlt_spawn_opts *opts)
{
	if (!bench_want(o, s->name))
		return;
	run_single(n / 10, opts);
	for (int r = 0; r < o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		run_single(n, opts);
		bench_record(s, (double)(bench_wall_ns() - t0) / (double)n);
	}
	bench_print_median(s);
}

static void *root(void *arg)
{
	const bench_opts *o = arg;
	long n = o->quick ? 200000 : 1000000;
	long rounds = (o->quick ? 100000 : 300000) / BATCH;
	bench_series single, named, batch;
	bench_series_init(&single, "spawn.single", "ns_per_op");
	bench_series_init(&named, "spawn.named", "ns_per_op");
	bench_series_init(&batch, "spawn.batch", "ns_per_op");
	printf("# spawn.single, spawn.named: %ld tasks per measurement; spawn.batch: %ld x %d\n", n,
	       rounds, BATCH);

	bench_single(o, &single, n, NULL);
	rlt_spawn_opts named_opts = {.name = "t"};
	bench_single(o, &named, n, &named_opts);

	if (bench_want(o, batch.name)) {
		run_batch(rounds / 10 + 1);
		for (int r = 0; r < o->reps; r++) {
			uint64_t t0 = bench_wall_ns();
			run_batch(rounds);
			bench_record(&batch,
				     (double)(bench_wall_ns() - t0) / (double)(rounds * BATCH));
		}
		bench_print_median(&batch);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	int rc = rlt_run(root, &o, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "bench_spawn: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
