/*
 * Shared scaffolding of the micro-benchmarks (C and C++): argument parsing,
 * clocks, and the output format that bench/run.sh reads.
 *
 * Output, one line per measurement and one median per metric at the end:
 *
 *     <metric> <unit> <value>
 *     median <metric> <unit> <value>
 *
 * Lines starting with '#' are informational (ignored by run.sh).
 *
 * Flags of every benchmark program:
 *     -r N   repetitions per metric (default 7)
 *     -q     quick: smaller iteration counts (for bench/run.sh --quick)
 *     -m M   only metric M, or the metrics under M ("spawn" = "spawn.*"),
 *            for profiling one: perf record ./bench_spawn -r 1 -m spawn.batch
 */
#ifndef RLT_BENCH_COMMON_H
#define RLT_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_REPS 64

typedef struct bench_opts {
	int reps;
	int quick;
	const char *only; /* -m: name prefix, or NULL for all */
} bench_opts;

static inline void bench_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-r REPS] [-q] [-m METRIC_PREFIX]\n", prog);
	exit(2);
}

static inline bench_opts bench_parse(int argc, char **argv)
{
	bench_opts o;
	o.reps = 7;
	o.quick = 0;
	o.only = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) {
			o.reps = atoi(argv[++i]);
			if (o.reps < 1 || o.reps > BENCH_MAX_REPS)
				bench_usage(argv[0]);
		} else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc) {
			o.only = argv[++i];
		} else if (strcmp(argv[i], "-q") == 0) {
			o.quick = 1;
		} else {
			bench_usage(argv[0]);
		}
	}
	return o;
}

/* Whether metric `name` was asked for: -m gave its name or a dotted
 * prefix of it ("spawn" selects spawn.single and spawn.batch). */
static inline int bench_want(const bench_opts *o, const char *name)
{
	if (!o->only)
		return 1;
	size_t n = strlen(o->only);
	return strncmp(name, o->only, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

static inline uint64_t bench_clock(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_wall_ns(void)
{
	return bench_clock(CLOCK_MONOTONIC);
}
static inline uint64_t bench_cpu_ns(void)
{
	return bench_clock(CLOCK_PROCESS_CPUTIME_ID);
}

/* Results of one metric over the repetitions. */
typedef struct bench_series {
	const char *name;
	const char *unit;
	int n;
	double v[BENCH_MAX_REPS];
} bench_series;

static inline void bench_series_init(bench_series *s, const char *name, const char *unit)
{
	s->name = name;
	s->unit = unit;
	s->n = 0;
}

static inline void bench_record(bench_series *s, double value)
{
	if (s->n < BENCH_MAX_REPS)
		s->v[s->n++] = value;
	printf("%s %s %.2f\n", s->name, s->unit, value);
	fflush(stdout);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static inline double bench_median(const bench_series *s)
{
	double tmp[BENCH_MAX_REPS];
	if (s->n == 0)
		return 0.0;
	memcpy(tmp, s->v, (size_t)s->n * sizeof(double));
	qsort(tmp, (size_t)s->n, sizeof(double), bench_cmp_double);
	if (s->n % 2)
		return tmp[s->n / 2];
	return (tmp[s->n / 2 - 1] + tmp[s->n / 2]) / 2.0;
}

static inline void bench_print_median(const bench_series *s)
{
	if (s->n == 0)
		return;
	printf("median %s %s %.2f\n", s->name, s->unit, bench_median(s));
	fflush(stdout);
}

/* A fast, reproducible PRNG (xorshift64*). */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Keep the compiler from optimizing a value away. */
#define BENCH_KEEP(v) __asm__ volatile("" : : "r"(v) : "memory")

#endif
