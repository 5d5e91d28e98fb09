/* Stacks: guard pages catch overflows and name the task; pools reuse. */
#include "tests/rlt_test.h"

#include "runtime/stack.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int recurse(int depth)
{
	volatile char pad[1024];
	pad[0] = (char)depth;
	if (depth == 1 << 30)
		return pad[0];
	return recurse(depth + 1) + pad[0];
}

static void *overflow(void *arg)
{
	return (void *)(intptr_t)recurse(0);
}

static void *root_overflow(void *arg)
{
	rlt_spawn_opts o = {.name = "deep-diver", .stack_size = 16 * 1024};
	rlt_task *t = rlt_spawn(overflow, NULL, &o);
	rlt_join(t, NULL);
	return NULL;
}

static void test_stack_overflow_hits_guard_and_names_task(void **state)
{
	char err[4096];
	int status = rlt_test_run_child(root_overflow, NULL, err, sizeof(err));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(err, "task 'deep-diver' overflowed its stack of 16 KiB"));
}

/*
 * Frames larger than a page (issue 14, defect 1): a task whose one frame
 * is bigger than its whole stack, writing the far (low) end of its local
 * array first. Without probes and with a one-page guard, that write skips
 * the guard and lands in the stack below, another task's: it returns
 * normally and the other task dies later, nameless. Now every large frame
 * probes page by page (-fstack-clash-protection, which the library hands
 * to the programs it is linked into: this test is one) and the guard is
 * RLT_STACK_GUARD_SIZE wide, so the first touch hits the guard.
 */
struct big_frame {
	size_t local;	  /* bytes of the local array */
	size_t stack;	  /* the task's stack size */
	const char *name; /* the task's name */
	bool no_probes;	  /* as code built without -fstack-clash-protection */
};

static __attribute__((noinline)) int write_low_end(size_t len)
{
	volatile char a[len]; /* a VLA: one frame of len bytes */
	for (size_t i = 0; i < 1024; i++)
		a[i] = (char)i;
	return a[100];
}

/* The same, as a user's code compiled without the flag would be (gcc: a
 * per-function option; clang has no such attribute and probes anyway). */
#if defined(__GNUC__) && !defined(__clang__)
#define RLT_TEST_NO_PROBES __attribute__((noinline, optimize("no-stack-clash-protection")))
#else
#define RLT_TEST_NO_PROBES __attribute__((noinline))
#endif
static RLT_TEST_NO_PROBES int write_low_end_no_probes(size_t len)
{
	volatile char a[len];
	for (size_t i = 0; i < 1024; i++)
		a[i] = (char)i;
	return a[100];
}

static void *big_frame_task(void *arg)
{
	const struct big_frame *b = arg;
	if (b->no_probes)
		return (void *)(intptr_t)write_low_end_no_probes(b->local);
	return (void *)(intptr_t)write_low_end(b->local);
}

/* The stack below: a task of the same size spawned first (the pool hands
 * out the lowest stack of a slab first), waiting with a canary on it. */
static void *neighbour(void *arg)
{
	volatile char canary[512];
	memset((char *)canary, 0x5a, sizeof(canary));
	rlt_event *ev = arg;
	rlt_event_wait(ev);
	for (size_t i = 0; i < sizeof(canary); i++)
		if (canary[i] != 0x5a)
			return rlt_fail(-EFAULT);
	return NULL;
}

static void *root_big_frame(void *arg)
{
	struct big_frame *b = arg;
	rlt_event *ev = rlt_event_new();
	/* Both on worker 0, so that both stacks come from its pool. */
	unsigned on0 = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED;
	rlt_spawn_opts no = {.name = "neighbour", .stack_size = b->stack, .flags = on0};
	rlt_task *n = rlt_spawn(neighbour, ev, &no);
	while (rlt_task_state(n, NULL, 0) != RLT_TASK_WAITING)
		rlt_yield(); /* the neighbour takes its stack and waits */
	rlt_spawn_opts ao = {.name = b->name, .stack_size = b->stack, .flags = on0};
	rlt_task *t = rlt_spawn(big_frame_task, b, &ao);
	rlt_join(t, NULL);
	rlt_event_set(ev);
	int rc = rlt_join(n, NULL);
	rlt_event_free(ev);
	/* Reaching this is the defect: the overflow went unreported. */
	fprintf(stderr, "overflow not caught: the neighbour's join says %d\n", rc);
	return NULL;
}

static void expect_overflow_report(struct big_frame *b)
{
	char err[4096], want[128];
	int status = rlt_test_run_child(root_big_frame, b, err, sizeof(err));
	snprintf(want, sizeof(want), "task '%s' overflowed its stack of %zu KiB", b->name,
		 b->stack / 1024);
	if (!strstr(err, want))
		fail_msg("wanted \"%s\" on stderr; the child's status %#x, stderr: %s", want,
			 (unsigned)status, err);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_frame_larger_than_stack_is_reported_not_written_below(void **state)
{
	/* The two cases: 21 KiB on 16 KiB, 261 KiB on 256 KiB. */
	expect_overflow_report(&(struct big_frame){21 * 1024, 16 * 1024, "frame-21k", false});
	expect_overflow_report(&(struct big_frame){261 * 1024, 256 * 1024, "frame-261k", false});
}

static void test_frame_within_the_guard_is_reported_without_probes(void **state)
{
	/* Code built without the flag: the guard's width alone catches a frame
	 * that overruns by less than RLT_STACK_GUARD_SIZE. */
	expect_overflow_report(&(struct big_frame){21 * 1024, 16 * 1024, "frame-21k-np", true});
	expect_overflow_report(&(struct big_frame){16 * 1024 + RLT_STACK_GUARD_SIZE - 8 * 1024,
						   16 * 1024, "frame-60k-np", true});
}

static void test_frame_larger_than_the_guard_is_caught_by_probes(void **state)
{
	/* Past the guard region altogether: only probing finds it. */
	size_t local = 16 * 1024 + RLT_STACK_GUARD_SIZE + 64 * 1024;
	expect_overflow_report(&(struct big_frame){local, 16 * 1024, "frame-past-guard", false});
}

static void *root_overflow_unnamed(void *arg)
{
	rlt_task *t = rlt_spawn(overflow, NULL, &(rlt_spawn_opts){.stack_size = 16 * 1024});
	rlt_join(t, NULL);
	return NULL;
}

static void test_overflow_report_names_an_unnamed_task_after_its_function(void **state)
{
	char err[4096];
	int status = rlt_test_run_child(root_overflow_unnamed, NULL, err, sizeof(err));
	assert_true(WIFSIGNALED(status));
	if (!strstr(err, "task 'overflow-"))
		fail_msg("no 'overflow-<id>' in: %s", err);
}

static void *null_deref(void *arg)
{
	volatile int *p = NULL;
	return (void *)(intptr_t)*p;
}

static void *root_null(void *arg)
{
	rlt_task *t = rlt_spawn(null_deref, NULL, NULL);
	rlt_join(t, NULL);
	return NULL;
}

static void test_other_segfaults_are_not_called_overflows(void **state)
{
	char err[4096];
	int status = rlt_test_run_child(root_null, NULL, err, sizeof(err));
	/* Killed by the signal, or (under ASan, whose own handler reports the
	 * fault) exited with an error: never reported as an overflow. */
	assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
	assert_null(strstr(err, "overflowed"));
}

/* ---- the pool ---- */

static void test_pool_reuses_most_recent_stack_first(void **state)
{
	rlt__stack_pool p;
	rlt__stack_pool_init(&p, 4, true);
	size_t sz = rlt__stack_round(16384);
	rlt__stack a, b, c;
	assert_int_equal(rlt__stack_get(&p, sz, &a), 0);
	assert_int_equal(rlt__stack_get(&p, sz, &b), 0);
	assert_ptr_not_equal(a.lo, b.lo);
	memset(a.lo, 0xab, a.size); /* usable end to end */
	rlt__stack_put(&p, &a);
	assert_int_equal(rlt__stack_get(&p, sz, &c), 0);
	assert_ptr_equal(c.lo, a.lo);
	rlt__stack_put(&p, &b);
	rlt__stack_put(&p, &c);
	rlt__stack_pool_destroy(&p);
}

/* A stack's guard is installed when it first runs a task, where the kernel
 * has madvise guards (with the slab otherwise); a guard installed late
 * still catches a write just below the stack. */
static void write_below(void *lo)
{
	*((volatile char *)lo - 1) = 1;
	_exit(0); /* reached only if nothing guards it */
}

static void test_guard_is_installed_at_the_first_run(void **state)
{
	rlt__stack_pool p;
	rlt__stack_pool_init(&p, 4, true);
	size_t sz = rlt__stack_round(16384);
	rlt__stack a, b;
	assert_int_equal(rlt__stack_get(&p, sz, &a), 0);
	assert_int_equal(rlt__stack_get(&p, sz, &b), 0);
	assert_true(a.flags & RLT__STACK_GUARDED); /* the slab's first: with it */
	assert_false(b.flags & RLT__STACK_DIRTY);
	if (b.flags & RLT__STACK_GUARDED)
		print_message("(no madvise guards here: every guard came with the slab)\n");
	assert_int_equal(rlt__stack_prepare(&p, &b), 0);
	assert_int_equal(b.flags, RLT__STACK_GUARDED | RLT__STACK_DIRTY);
	char err[1024];
	int status = rlt_test_fork((void (*)(void *))write_below, b.lo, err, sizeof(err));
	/* Killed, or (under ASan, whose handler reports it) exited with an
	 * error: never the clean exit after the write. */
	assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
	rlt__stack_put(&p, &a);
	rlt__stack_put(&p, &b);
	rlt__stack_pool_destroy(&p);
}

/* Spawns take cold stacks; the first run trades a cold one for the warm
 * stack the last task left on top of the free list. */
static void test_first_run_takes_the_warm_stack(void **state)
{
	rlt__stack_pool p;
	rlt__stack_pool_init(&p, 4, true);
	size_t sz = rlt__stack_round(16384);
	rlt__stack a, b, c;
	assert_int_equal(rlt__stack_get(&p, sz, &a), 0);
	assert_int_equal(rlt__stack_get(&p, sz, &b), 0);
	assert_int_equal(rlt__stack_prepare(&p, &a), 0);
	memset(a.lo, 0xab, a.size);
	void *warm = a.lo, *cold = b.lo;
	rlt__stack_put(&p, &a); /* a's task ended: its stack is on top */
	assert_int_equal(rlt__stack_prepare(&p, &b), 0);
	assert_ptr_equal(b.lo, warm);
	assert_int_equal(b.flags, RLT__STACK_GUARDED | RLT__STACK_DIRTY);
	/* The cold one took the warm one's place, still clean. */
	assert_int_equal(rlt__stack_get(&p, sz, &c), 0);
	assert_ptr_equal(c.lo, cold);
	assert_false(c.flags & RLT__STACK_DIRTY);
	rlt__stack_put(&p, &b);
	rlt__stack_put(&p, &c);
	rlt__stack_pool_destroy(&p);
}

static bool resident(const void *page)
{
	unsigned char v = 0;
	assert_int_equal(mincore((void *)page, rlt__page_size(), &v), 0);
	return v & 1;
}

/* A stolen task runs on a stack of the thief's pool; the cold stack it was
 * spawned with goes home untouched (no page, so no trim and no TLB
 * shootdown for it later), in a batch sent when the thief trims. */
static void test_stolen_task_runs_on_the_thiefs_stack(void **state)
{
	rlt__stack_pool home, thief;
	rlt__stack_pool_init(&home, 4, true);
	rlt__stack_pool_init(&thief, 4, true);
	size_t sz = rlt__stack_round(16384);
	rlt__stack s, back;
	assert_int_equal(rlt__stack_get(&home, sz, &s), 0);
	void *orig = s.lo;
	const char *top_page = (const char *)orig + sz - rlt__page_size();
	assert_int_equal(rlt__stack_prepare(&thief, &s), 0);
	assert_ptr_equal(s.home, &thief);
	assert_ptr_not_equal(s.lo, orig);
	assert_int_equal(s.flags, RLT__STACK_GUARDED | RLT__STACK_DIRTY);
	memset(s.lo, 0xcd, s.size); /* the task runs */
	rlt__stack_put(&thief, &s); /* and ends: the thief keeps its stack */
	rlt__stack_trim(&thief);    /* the batch goes home */
	rlt__stack_trim(&home);	    /* and is taken back */
	assert_int_equal(rlt__stack_get(&home, sz, &back), 0);
	assert_ptr_equal(back.lo, orig);
	assert_false(back.flags & RLT__STACK_DIRTY);
	assert_false(resident(top_page));
	rlt__stack_put(&home, &back);
	rlt__stack_pool_destroy(&home);
	rlt__stack_pool_destroy(&thief);
}

/* The kernel cannot install a stack's guard at its first run (no memory
 * for a page table; made to happen here by a seccomp filter on
 * madvise(MADV_GUARD_INSTALL)): the task does not run unguarded, its join
 * says -ENOMEM, and tasks on stacks that have run go on. One worker, so the
 * root's thread (where the filter goes) is the one that runs them all. */
#if defined(__x86_64__) || defined(__aarch64__)
static int fail_guard_installs(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 3),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 102 /* MADV_GUARD_INSTALL */, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOMEM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return -errno;
	return 0;
}
#define HAVE_FAIL_GUARD_INSTALLS 1
#else
static int fail_guard_installs(void)
{
	return -ENOSYS;
}
#define HAVE_FAIL_GUARD_INSTALLS 0
#endif

static void *wait_event(void *arg)
{
	rlt_event_wait(arg);
	return NULL;
}

static void *seven(void *arg)
{
	volatile char b[4096];
	b[0] = 7;
	return (void *)(intptr_t)b[0];
}

#define CHILD_CHECK(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, __VA_ARGS__);                                              \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

static void *root_guard_fails(void *arg)
{
	rlt_event *ev = rlt_event_new();
	rlt_spawn_opts o = {.stack_size = 16384};
	rlt_task *b = rlt_spawn(wait_event, ev, &o); /* the slab's first: guarded */
	rlt_task *c = rlt_spawn(seven, NULL, &o);    /* guarded at its first run */
	CHILD_CHECK(b && c, "spawn: %s\n", strerror(errno));
	int rc = fail_guard_installs();
	CHILD_CHECK(rc == 0, "seccomp filter: %s\n", strerror(-rc));
	rc = rlt_join(c, NULL);
	CHILD_CHECK(rc == -ENOMEM, "the unguardable task's join: %d (%s), want -ENOMEM\n", rc,
		    strerror(-rc));
	rlt_event_set(ev);
	rc = rlt_join(b, NULL);
	CHILD_CHECK(rc == 0, "the guarded task's join: %d\n", rc);
	/* b's stack, which ran, is on top: the next task runs there. */
	void *r = NULL;
	rlt_task *e = rlt_spawn(seven, NULL, &o);
	CHILD_CHECK(e, "spawn after: %s\n", strerror(errno));
	rc = rlt_join(e, &r);
	CHILD_CHECK(rc == 0 && r == (void *)7, "a task on a warm stack: join %d, result %p\n", rc,
		    r);
	rlt_event_free(ev);
	_exit(0);
}

static void test_guard_that_cannot_be_installed_fails_the_task(void **state)
{
	/* Only where guards wait for the first run (madvise guards). */
	size_t pg = rlt__page_size();
	char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	int have = madvise(m, pg, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(m, 2 * pg);
	if (!have || !HAVE_FAIL_GUARD_INSTALLS) {
		print_message("SKIPPED: no MADV_GUARD_INSTALL here (guards come with the slab), "
			      "or no seccomp filter for this architecture\n");
		return;
	}
	rlt_config cfg = {.workers = 1};
	char err[4096];
	int status = rlt_test_run_child_cfg(root_guard_fails, NULL, &cfg, NULL, err, sizeof(err));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child status %#x, stderr: %s", (unsigned)status, err);
}

static void test_stack_sizes_are_rounded_and_bounded(void **state)
{
	size_t pg = rlt__page_size();
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE), RLT_MIN_STACK_SIZE);
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE + 1), RLT_MIN_STACK_SIZE + pg);
	assert_int_equal(rlt__stack_round(RLT_MIN_STACK_SIZE - 1), 0);
	assert_int_equal(rlt__stack_round((size_t)RLT_MAX_STACK_SIZE + 1), 0);
}

static void *touch(void *arg)
{
	volatile char buf[8000];
	buf[0] = 1;
	return (void *)(intptr_t)buf[0];
}

static void *root_no_guard(void *arg)
{
	rlt_spawn_opts o = {.stack_size = 16384};
	for (int i = 0; i < RLT_TEST_SCALE(1000); i++) {
		rlt_task *t = rlt_spawn(touch, NULL, &o);
		assert_non_null(t);
		assert_int_equal(rlt_join(t, NULL), 0);
	}
	return NULL;
}

static void test_runtime_without_guard_pages_runs_tasks(void **state)
{
	rlt_config cfg = {.no_stack_guard = true, .stack_cache = 8};
	assert_int_equal(rlt_run(root_no_guard, NULL, &cfg, NULL), 0);
}

/* More stack sizes than a worker's pool has classes (RLT__STACK_CLASSES):
 * the others get a mapping each (stack_map_single), which valgrind must be
 * told about like the slabs' stacks (VALGRIND_STACK_REGISTER), or it warns
 * "client switching stacks?" and checks their frames wrongly. The ctest
 * valgrind_test_stack runs this under memcheck and fails on that warning. */
static void *use_stack(void *arg)
{
	size_t len = (size_t)(uintptr_t)arg;
	volatile char buf[len];
	for (size_t i = 0; i < len; i += 512)
		buf[i] = (char)i;
	rlt_yield(); /* switch away and back on this stack */
	return (void *)(uintptr_t)(unsigned char)buf[len / 2 & ~(size_t)511];
}

static void *root_many_sizes(void *arg)
{
	enum { N = RLT__STACK_CLASSES + 4 };
	rlt_task *t[N];
	for (unsigned i = 0; i < N; i++) {
		size_t size = (size_t)(20 + 4 * i) * 1024;
		rlt_spawn_opts o = rlt_test_on_worker(0);
		o.stack_size = size;
		t[i] = rlt_spawn(use_stack, (void *)(uintptr_t)(size / 2), &o);
		assert_non_null(t[i]);
	}
	for (unsigned i = 0; i < N; i++) {
		void *r;
		assert_int_equal(rlt_join(t[i], &r), 0);
		size_t len = (size_t)(20 + 4 * i) * 1024 / 2;
		assert_int_equal((uintptr_t)r, (unsigned char)(len / 2 & ~(size_t)511));
	}
	return NULL;
}

static void test_stacks_of_more_sizes_than_pool_classes(void **state)
{
	rlt_test_run(root_many_sizes, NULL);
}

static void test_stack_size_from_environment(void **state)
{
	setenv("RINGLET_STACK_SIZE", "64k", 1);
	assert_int_equal(rlt_run(root_no_guard, NULL, NULL, NULL), 0);
	setenv("RINGLET_STACK_SIZE", "lots", 1);
	assert_int_equal(rlt_run(root_no_guard, NULL, NULL, NULL), -EINVAL);
	unsetenv("RINGLET_STACK_SIZE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stack_overflow_hits_guard_and_names_task),
	    cmocka_unit_test(test_other_segfaults_are_not_called_overflows),
	    cmocka_unit_test(test_overflow_report_names_an_unnamed_task_after_its_function),
	    cmocka_unit_test(test_frame_larger_than_stack_is_reported_not_written_below),
	    cmocka_unit_test(test_frame_within_the_guard_is_reported_without_probes),
	    cmocka_unit_test(test_frame_larger_than_the_guard_is_caught_by_probes),
	    cmocka_unit_test(test_pool_reuses_most_recent_stack_first),
	    cmocka_unit_test(test_guard_is_installed_at_the_first_run),
	    cmocka_unit_test(test_first_run_takes_the_warm_stack),
	    cmocka_unit_test(test_stolen_task_runs_on_the_thiefs_stack),
	    cmocka_unit_test(test_guard_that_cannot_be_installed_fails_the_task),
	    cmocka_unit_test(test_stack_sizes_are_rounded_and_bounded),
	    cmocka_unit_test(test_runtime_without_guard_pages_runs_tasks),
	    cmocka_unit_test(test_stack_size_from_environment),
	    cmocka_unit_test(test_stacks_of_more_sizes_than_pool_classes),
	};
	/* RLT_TEST_FILTER=name runs one test (the valgrind run of ctest). */
	if (getenv("RLT_TEST_FILTER"))
		cmocka_set_test_filter(getenv("RLT_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
