/* Memory after a burst: the stack cache's cap (RINGLET_STACK_CACHE,
 * rlt_config.stack_cache) and the pages of the stacks beyond it going back
 * to the kernel, so VmRSS falls back near the cap once the burst is over. */
#include "rlt_test.h"

#include <errno.h>

/* Tasks alive at once in the burst, and the stack each one touches. */
#ifndef BURST /* -DBURST=200000 -DTOUCH=1024 for docs/RELIABILITY.md's figure */
#if defined(__SANITIZE_THREAD__)
#define BURST 6000 /* TSan counts each live task as a thread: 8128 at most */
#else
#define BURST 30000
#endif
#endif
#ifndef TOUCH
#define TOUCH 8192
#endif
#define STACK_SIZE (32 * 1024)

typedef struct gate {
	int started;
	rlt_event *go;
} gate;

/* Touch the stack, then wait until every task of the burst is alive. */
static void *sleeper(void *arg)
{
	gate *g = arg;
	volatile char buf[TOUCH];
	for (size_t i = 0; i < sizeof(buf); i += 512)
		buf[i] = (char)i;
	__atomic_fetch_add(&g->started, 1, __ATOMIC_RELAXED);
	rlt_event_wait(g->go);
	return (void *)(intptr_t)buf[512];
}

typedef struct burst {
	long before, peak, after;
	unsigned workers, cap;
} burst;

/* What the cap may keep: cap stacks per worker, each touched over TOUCH
 * bytes and a page of frames; then 32 MiB for the allocator's caches (the
 * task structs). Under a sanitizer, whose allocator keeps freed memory
 * (ASan's quarantine) and whose shadow of the stacks stays, 60% of what
 * the burst added may stay too: without the trim, all of it stays. */
static long bound_kib(const burst *b)
{
	long kept = (long)b->workers * b->cap * (TOUCH + 8192) / 1024;
	long slack = 32 * 1024;
	if (rlt_test_sanitized() && b->peak > b->before)
		slack += (b->peak - b->before) * 6 / 10;
	return b->before + kept + slack;
}

static void *root(void *arg)
{
	burst *b = arg;
	b->workers = rlt_runtime_workers(rlt_runtime_self());
	rlt_task **ts = calloc(BURST, sizeof(*ts));
	if (!ts)
		return rlt_fail(ENOMEM);
	b->before = rlt_test_status_kib("VmRSS");
	rlt_spawn_opts o = {.stack_size = STACK_SIZE};
	gate g = {.go = rlt_event_new()};
	if (!g.go)
		return rlt_fail(errno);
	for (int i = 0; i < BURST; i++) {
		ts[i] = rlt_spawn(sleeper, &g, &o);
		if (!ts[i])
			return rlt_fail(errno);
	}
	/* All alive at once: each has touched its stack and waits. */
	while (__atomic_load_n(&g.started, __ATOMIC_RELAXED) < BURST)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	long mid = rlt_test_status_kib("VmRSS");
	rlt_event_set(g.go);
	for (int i = 0; i < BURST; i++)
		rlt_join(ts[i], NULL);
	free(ts);
	rlt_event_free(g.go);
	b->peak = rlt_test_status_kib("VmRSS");
	if (mid > b->peak)
		b->peak = mid;
	/* Every worker trims its cache as it goes idle: one madvise per
	 * stack, ~20k of them on a worker that ran most of the burst, which
	 * takes a while on a loaded machine. Wait for it, 3 s at most. */
	uint64_t give_up = rlt_now() + 3 * RLT_NSEC_PER_SEC;
	do {
		rlt_sleep(20 * RLT_NSEC_PER_MSEC);
		b->after = rlt_test_status_kib("VmRSS");
	} while (b->after > bound_kib(b) && rlt_now() < give_up);
	return NULL;
}

static void check(const burst *b)
{
	printf("# burst of %d tasks on %u workers, cap %u: VmRSS %ld KiB before, %ld at the "
	       "peak, %ld after (bound %ld)\n",
	       BURST, b->workers, b->cap, b->before, b->peak, b->after, bound_kib(b));
	assert_true(b->before > 0 && b->after > 0);
	/* The burst did cost memory (else this test proves nothing)... */
	assert_true(b->peak - b->before > (long)BURST * TOUCH / 1024 / 2);
	/* ...and it went back. */
	assert_true(b->after <= bound_kib(b));
}

static void test_rss_falls_back_after_a_burst(void **state)
{
	(void)state;
	rlt_config cfg;
	rlt_config_init(&cfg);
	burst b = {.cap = cfg.stack_cache};
	assert_int_equal(rlt_run(root, &b, &cfg, NULL), 0);
	check(&b);
}

static void test_stack_cache_from_environment(void **state)
{
	(void)state;
	burst b = {.cap = 16};
	setenv("RINGLET_STACK_CACHE", "16", 1);
	int rc = rlt_run(root, &b, NULL, NULL);
	unsetenv("RINGLET_STACK_CACHE");
	assert_int_equal(rc, 0);
	check(&b);

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
