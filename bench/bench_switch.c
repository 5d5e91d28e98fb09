/*
 * Context switch cost.
 *
 *   switch.raw   two coroutines (rlt__coro_init on stacks mapped here)
 *                ping-ponging with rlt__coro_switch: ns per switch, one
 *                direction. Compare with bench_switch_boost (same N).
 *   switch.task  two ringlet tasks calling rlt_yield() in a loop inside
 *                rlt_run: ns per yield, i.e. task -> scheduler -> task,
 *                including the worker loop's per-turn bookkeeping (shared
 *                by the two tasks of each turn).
 */
#include "bench_common.h"
#include "runtime/coro.h"
#include <ringlet.h>

#include <sys/mman.h>

#define RAW_STACK (64u * 1024u)

/* ---- raw ---- */

static rlt__coro main_co, co_a, co_b;
static long raw_iters;
static uint64_t raw_elapsed;

static void raw_a(void *arg)
{
	(void)arg;
	rlt__coro_started(&co_a);
	uint64_t t0 = bench_wall_ns();
	for (long i = 0; i < raw_iters; i++)
		rlt__coro_switch(&co_a, &co_b, 0);
	raw_elapsed = bench_wall_ns() - t0;
	rlt__coro_switch(&co_a, &main_co, 1);
	__builtin_unreachable();
}

static void raw_b(void *arg)
{
	(void)arg;
	rlt__coro_started(&co_b);
	for (;;)
		rlt__coro_switch(&co_b, &co_a, 0);
}

static void *map_stack(void)
{
	void *p = mmap(NULL, RAW_STACK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void bench_raw(const bench_opts *o, long switches)
{
	void *sa = map_stack(), *sb = map_stack();
	bench_series s;
	bench_series_init(&s, "switch.raw", "ns_per_op");
	rlt__coro_init_thread(&main_co);
	raw_iters = switches / 2; /* each iteration is A->B then B->A */
	for (int r = 0; r < o->reps; r++) {
		rlt__coro_init(&co_a, sa, RAW_STACK, raw_a, NULL);
		rlt__coro_init(&co_b, sb, RAW_STACK, raw_b, NULL);
		rlt__coro_switch(&main_co, &co_a, 0);
		bench_record(&s, (double)raw_elapsed / (double)(2 * raw_iters));
		rlt__coro_fini(&co_a);
		rlt__coro_fini(&co_b);
	}
	bench_print_median(&s);
	munmap(sa, RAW_STACK);
	munmap(sb, RAW_STACK);
}

/* ---- task level ---- */

typedef struct task_args {
	const bench_opts *o;
	long yields; /* per task */
} task_args;

static void *yielder(void *arg)
{
	long n = *(const long *)arg;
	for (long i = 0; i < n; i++)
		rlt_yield();
	return NULL;
}

static void *task_root(void *arg)
{
	task_args *a = arg;
	bench_series s;
	bench_series_init(&s, "switch.task", "ns_per_op");
	for (int r = 0; r < a->o->reps; r++) {
		uint64_t t0 = bench_wall_ns();
		rlt_task *x = rlt_spawn(yielder, &a->yields, NULL);
		rlt_task *y = rlt_spawn(yielder, &a->yields, NULL);
		if (!x || !y) {
			fprintf(stderr, "bench_switch: rlt_spawn: %s\n", strerror(errno));
			exit(1);
		}
		rlt_join(x, NULL);
		rlt_join(y, NULL);
		uint64_t dt = bench_wall_ns() - t0;
		bench_record(&s, (double)dt / (double)(2 * a->yields));
	}
	bench_print_median(&s);
	return NULL;
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	long switches = o.quick ? 4000000 : 20000000;
	if (bench_want(&o, "switch.raw")) {
		printf("# switch.raw: %ld switches per measurement\n", switches);
		bench_raw(&o, switches);
	}
	if (!bench_want(&o, "switch.task"))
		return 0;

	task_args a = {.o = &o, .yields = o.quick ? 500000 : 2000000};
	printf("# switch.task: 2 tasks x %ld yields per measurement\n", a.yields);
	int rc = rlt_run(task_root, &a, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "bench_switch: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
