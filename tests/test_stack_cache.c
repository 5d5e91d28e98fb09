/* Memory after a burst: the stack cache's cap (RINGLET_STACK_CACHE,
 * rlt_config.stack_cache) and the pages of the stacks beyond it going back
 * to the kernel, so VmRSS falls back near the cap once the burst is over. */
#include "rlt_test.h"

#include <errno.h>

/* Tasks alive at once in the burst, and the stack each one touches. */
#ifndef BURST /* -DBURST=200000 -DTOUCH=1024 for docs/RELIABILITY.md's figure */
#define BURST 30000
#endif
#ifndef TOUCH
#define TOUCH 8192
#endif
#define STACK_SIZE (32 * 1024)

static long vmrss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void *sleeper(void *arg)
{
	int *started = arg;
	volatile char buf[TOUCH];
	for (size_t i = 0; i < sizeof(buf); i += 512)
		buf[i] = (char)i;
	__atomic_fetch_add(started, 1, __ATOMIC_RELAXED);
	rlt_sleep(20 * RLT_NSEC_PER_MSEC);
	return (void *)(intptr_t)buf[512];
}

typedef struct burst {
	long before, peak, after;
	unsigned workers;
} burst;

static void *root(void *arg)
{
	burst *b = arg;
	b->workers = rlt_runtime_workers(rlt_runtime_self());
	rlt_task **ts = calloc(BURST, sizeof(*ts));
	if (!ts)
		return rlt_fail(ENOMEM);
	b->before = vmrss_kib();
	rlt_spawn_opts o = {.stack_size = STACK_SIZE};
	int started = 0;
	for (int i = 0; i < BURST; i++) {
		ts[i] = rlt_spawn(sleeper, &started, &o);
		if (!ts[i])
			return rlt_fail(errno);
	}
	/* All alive at once: each has touched its stack and sleeps. */
	while (__atomic_load_n(&started, __ATOMIC_RELAXED) < BURST)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	long mid = vmrss_kib();
	for (int i = 0; i < BURST; i++)
		rlt_join(ts[i], NULL);
	free(ts);
	b->peak = vmrss_kib();
	if (mid > b->peak)
		b->peak = mid;
	/* Let every worker go idle (where the stack cache is trimmed). */
	for (int i = 0; i < 10; i++)
		rlt_sleep(10 * RLT_NSEC_PER_MSEC);
	b->after = vmrss_kib();
	return NULL;
}

static void check(const burst *b, unsigned cap)
{
	/* What the cap may keep: cap stacks per worker, each touched over
	 * TOUCH bytes and a page of frames; then slack for the allocator's
	 * caches (the task structs) and, under ASan, its quarantine and the
	 * stacks' shadow memory. */
	long kept = (long)b->workers * cap * (TOUCH + 8192) / 1024;
	long slack = rlt_test_sanitized() ? 128 * 1024 : 32 * 1024;
	printf("# burst of %d tasks on %u workers, cap %u: VmRSS %ld KiB before, %ld at the "
	       "peak, %ld after (bound %ld)\n",
	       BURST, b->workers, cap, b->before, b->peak, b->after, b->before + kept + slack);
	assert_true(b->before > 0 && b->after > 0);
	/* The burst did cost memory (else this test proves nothing)... */
	assert_true(b->peak - b->before > (long)BURST * TOUCH / 1024 / 2);
	/* ...and it went back. */
	assert_true(b->after <= b->before + kept + slack);
}

static void test_rss_falls_back_after_a_burst(void **state)
{
	(void)state;
	burst b = {0};
	rlt_config cfg;
	rlt_config_init(&cfg);
	assert_int_equal(rlt_run(root, &b, &cfg, NULL), 0);
	check(&b, cfg.stack_cache);
}

static void test_stack_cache_from_environment(void **state)
{
	(void)state;
	burst b = {0};
	setenv("RINGLET_STACK_CACHE", "16", 1);
	int rc = rlt_run(root, &b, NULL, NULL);
	unsetenv("RINGLET_STACK_CACHE");
	assert_int_equal(rc, 0);
	check(&b, 16);

	setenv("RINGLET_STACK_CACHE", "many", 1);
	rc = rlt_run(root, &b, NULL, NULL);
	unsetenv("RINGLET_STACK_CACHE");
	assert_int_equal(rc, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rss_falls_back_after_a_burst),
	    cmocka_unit_test(test_stack_cache_from_environment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
