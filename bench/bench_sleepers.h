/*
 * A timer-heavy task workload shared by bench_timer (timer.task) and
 * bench_policy (policy.timer): n tasks with 16 KiB stacks, each sleeping
 * `sleeps` times for min_ns plus a random part of span_ns; the figure is
 * process CPU time per sleep (CLOCK_PROCESS_CPUTIME_ID), spawn, switches,
 * timers, loop and join included. Call from a root task.
 */
#ifndef RLT_BENCH_SLEEPERS_H
#define RLT_BENCH_SLEEPERS_H

#include "bench_common.h"
#include <ringlet.h>

#include <errno.h>

typedef struct bench_sleeper {
	uint64_t rng;
	int sleeps;
	uint64_t min_ns, span_ns;
} bench_sleeper;

static void *bench_sleeper_fn(void *arg)
{
	bench_sleeper *a = arg;
	for (int i = 0; i < a->sleeps; i++) {
		int rc = rlt_sleep(a->min_ns + bench_rand(&a->rng) % (a->span_ns + 1));
		if (rc < 0) {
			fprintf(stderr, "bench: rlt_sleep: %s\n", strerror(-rc));
			exit(1);
		}
	}
	return NULL;
}

/* One round: process CPU ns, and the wall time in *wall. */
static uint64_t bench_sleepers_round(uint32_t n, int sleeps, uint64_t min_ns, uint64_t span_ns,
				     uint64_t *wall)
{
	rlt_task **tasks = malloc(n * sizeof(*tasks));
	bench_sleeper *args = malloc(n * sizeof(*args));
	if (!tasks || !args) {
		fprintf(stderr, "bench: out of memory\n");
		exit(1);
	}
	rlt_spawn_opts opts = {.stack_size = 16384};
	uint64_t c0 = bench_cpu_ns(), w0 = bench_wall_ns();
	for (uint32_t i = 0; i < n; i++) {
		args[i] = (bench_sleeper){0x9E3779B97F4A7C15ull * (i + 1), sleeps, min_ns, span_ns};
		tasks[i] = rlt_spawn(bench_sleeper_fn, &args[i], &opts);
		if (!tasks[i]) {
			fprintf(stderr, "bench: rlt_spawn #%u: %s\n", i, strerror(errno));
			exit(1);
		}
	}
	for (uint32_t i = 0; i < n; i++)
		rlt_join(tasks[i], NULL);
	*wall = bench_wall_ns() - w0;
	uint64_t cpu = bench_cpu_ns() - c0;
	free(tasks);
	free(args);
	return cpu;
}

/* The metric: a warm-up round (maps and touches the stacks), a round
 * without sleeps (what spawn+join alone cost, printed), then reps rounds. */
static void bench_sleepers_series(const bench_opts *o, const char *name, uint32_t n, int sleeps,
				  uint64_t min_ns, uint64_t span_ns, const char *what)
{
	uint64_t wall;
	bench_series s;
	bench_series_init(&s, name, "ns_per_op");
	bench_sleepers_round(n, sleeps ? 2 : 0, min_ns, span_ns, &wall);
	uint64_t base = bench_sleepers_round(n, 0, min_ns, span_ns, &wall);
	printf("# %s: %u tasks x %d sleeps of %s per measurement; spawn+join alone: %.0f ns CPU "
	       "per task\n",
	       name, n, sleeps, what, (double)base / n);
	for (int r = 0; r < o->reps; r++) {
		uint64_t cpu = bench_sleepers_round(n, sleeps, min_ns, span_ns, &wall);
		bench_record(&s, (double)cpu / ((double)n * sleeps));
		printf("# %s: wall %.1f ms, cpu %.1f ms\n", name, (double)wall / 1e6,
		       (double)cpu / 1e6);
	}
	bench_print_median(&s);
}

#endif
