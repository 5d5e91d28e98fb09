/*
 * Blocking work in the default pool.
 *
 *   exec.rtt.1w.p50/.p99  us for one empty job's round trip (submit, run on
 *   exec.rtt.2w.p50/.p99  a pool thread, resume the task), one job at a
 *                         time from one task, a pool thread idle and ready
 *                         (warmed first), on 1 and on 2 workers. Target
 *                         p50 <= 10 us.
 *   exec.tput             thousands of empty jobs per second: 1M jobs (200k
 *                         with -q) from 64 tasks on 2 workers, each task
 *                         awaiting its jobs one by one. Target >= 300.
 */
#include "bench_rt.h"
#include <ringlet.h>

#include <errno.h>
#include <stdatomic.h>

static void *empty(void *arg)
{
	return arg;
}

typedef struct rtt {
	int n;
	double *us;
} rtt;

static void *rtt_root(void *arg)
{
	rtt *r = arg;
	for (int i = 0; i < 1000; i++) /* warm: threads, caches */
		rlt_run_blocking(NULL, empty, NULL, NULL);
	for (int i = 0; i < r->n; i++) {
		uint64_t t0 = bench_wall_ns();
		int rc = rlt_run_blocking(NULL, empty, NULL, NULL);
		if (rc < 0)
			die("rlt_run_blocking", -rc);
		r->us[i] = (double)(bench_wall_ns() - t0) / 1e3;
	}
	qsort(r->us, (size_t)r->n, sizeof(double), bench_cmp_double);
	return NULL;
}

static void bench_rtt(const bench_opts *o, unsigned workers)
{
	char p50[32], p99[32];
	snprintf(p50, sizeof(p50), "exec.rtt.%uw.p50", workers);
	snprintf(p99, sizeof(p99), "exec.rtt.%uw.p99", workers);
	if (!bench_want(o, p50))
		return;
	rtt r = {.n = o->quick ? 5000 : 20000};
	r.us = calloc((size_t)r.n, sizeof(double));
	bench_series s50, s99;
	bench_series_init(&s50, p50, "us");
	bench_series_init(&s99, p99, "us");
	printf("# exec.rtt.%uw: %d empty jobs, one at a time, %u worker(s)\n", workers, r.n,
	       workers);
	for (int rep = 0; rep < o->reps; rep++) {
		bench_run(workers, rtt_root, &r);
		bench_record(&s50, r.us[r.n / 2]);
		bench_record(&s99, r.us[r.n * 99 / 100]);
	}
	bench_print_median(&s50);
	bench_print_median(&s99);
	free(r.us);
}

#define TPUT_TASKS 64

static void *tput_task(void *arg)
{
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++) {
		int rc = rlt_run_blocking(NULL, empty, NULL, NULL);
		if (rc < 0)
			die("rlt_run_blocking", -rc);
	}
	return NULL;
}

static void *tput_root(void *arg)
{
	long per = *(long *)arg;
	rlt_task *ts[TPUT_TASKS];
	for (int i = 0; i < TPUT_TASKS; i++)
		if (!(ts[i] = rlt_spawn(tput_task, (void *)(intptr_t)per, NULL)))
			die("rlt_spawn", errno);
	for (int i = 0; i < TPUT_TASKS; i++)
		rlt_join(ts[i], NULL);
	return NULL;
}

static void bench_tput(const bench_opts *o)
{
	if (!bench_want(o, "exec.tput"))
		return;
	long total = o->quick ? 200000 : 1000000;
	long per = total / TPUT_TASKS;
	bench_series s;
	bench_series_init(&s, "exec.tput", "kjobs_per_s");
	printf("# exec.tput: %ld empty jobs from %d tasks on 2 workers\n", per * TPUT_TASKS,
	       TPUT_TASKS);
	for (int rep = 0; rep < o->reps; rep++) {
		uint64_t t0 = bench_wall_ns();
		bench_run(2, tput_root, &per);
		double sec = (double)(bench_wall_ns() - t0) / 1e9;
		bench_record(&s, (double)(per * TPUT_TASKS) / sec / 1e3);
	}
	bench_print_median(&s);
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	bench_rtt(&o, 1);
	bench_rtt(&o, 2);
	bench_tput(&o);
	return 0;
}
