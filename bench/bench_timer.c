/*
 * Timer cost with 100k live timers.
 *
 *   timer.heap         the internal 4-ary heap alone (rlt__timer_heap):
 *                      100k timers armed at random deadlines, then over and
 *                      over: fire the earliest (rlt__timer_run) and re-arm
 *                      it 1-20 ms later. ns per insert+fire, amortized.
 *                      The timers sit in one array (the best case for the
 *                      cache).
 *   timer.heap_sparse  the same with each timer on its own 4 KiB page, as
 *                      in the runtime, where a sleeping task's timer lives
 *                      on its stack: every comparison in the heap reads a
 *                      different page (cache and TLB misses). Informational.
 *   timer.task         100k tasks (16 KiB stacks) each calling
 *                      rlt_sleep(1-20 ms, random) a few times: process CPU
 *                      time (CLOCK_PROCESS_CPUTIME_ID) per sleep, everything
 *                      included (spawn, switches, heap, loop, join).
 */
#include "bench_common.h"
#include "bench_sleepers.h"
#include "sched/timer.h"
#include <ringlet.h>

#include <sys/mman.h>

#define NTIMERS 100000u
#define MSEC	1000000ull

/* ---- heap level ---- */

static rlt__timer_heap heap;
static uint64_t heap_now, heap_rng = 0x9E3779B97F4A7C15ull;
static uint64_t fired;

static uint64_t later(void)
{
	return heap_now + 1 * MSEC + bench_rand(&heap_rng) % (19 * MSEC);
}

/* Fired: arm again 1-20 ms from now, like a task sleeping in a loop. */
static void rearm(rlt__timer *tm)
{
	fired++;
	tm->deadline = later();
	if (rlt__timer_add(&heap, tm) < 0)
		abort();
}

/* stride: bytes between consecutive timers (sizeof(rlt__timer) or a page). */
static double heap_round(char *mem, size_t stride, long ops)
{
	rlt__timer_heap_init(&heap);
	heap_now = 0;
	for (uint32_t i = 0; i < NTIMERS; i++) {
		rlt__timer *tm = (rlt__timer *)(mem + (size_t)i * stride);
		rlt__timer_init(tm, rearm);
		tm->deadline = bench_rand(&heap_rng) % (20 * MSEC);
		if (rlt__timer_add(&heap, tm) < 0)
			abort();
	}
	fired = 0;
	uint64_t t0 = bench_wall_ns();
	while (fired < (uint64_t)ops) {
		heap_now = rlt__timer_next(&heap);
		rlt__timer_run(&heap, heap_now);
	}
	uint64_t dt = bench_wall_ns() - t0;
	if (rlt__timer_count(&heap) != NTIMERS)
		abort();
	rlt__timer_heap_destroy(&heap);
	return (double)dt / (double)fired;
}

static void bench_heap(const bench_opts *o, const char *name, size_t stride, long ops)
{
	size_t len = (size_t)NTIMERS * stride;
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	bench_series s;
	bench_series_init(&s, name, "ns_per_op");
	printf("# %s: %u live timers, %ld insert+fire per measurement, stride %zu B\n", name,
	       NTIMERS, ops, stride);
	for (int r = 0; r < o->reps; r++)
		bench_record(&s, heap_round(mem, stride, ops));
	bench_print_median(&s);
	munmap(mem, len);
}

/* ---- task level ---- */

static void *task_root(void *arg)
{
	const bench_opts *o = arg;
	bench_sleepers_series(o, "timer.task", NTIMERS, o->quick ? 2 : 3, 1 * MSEC, 19 * MSEC,
			      "1-20 ms");
	return NULL;
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	if (bench_want(&o, "timer.heap"))
		bench_heap(&o, "timer.heap", sizeof(rlt__timer), o.quick ? 300000 : 1000000);
	if (bench_want(&o, "timer.heap_sparse"))
		bench_heap(&o, "timer.heap_sparse", 4096, o.quick ? 100000 : 300000);
	if (!bench_want(&o, "timer.task"))
		return 0;
	int rc = rlt_run(task_root, &o, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "bench_timer: rlt_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
