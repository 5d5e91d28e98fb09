/* Resources running out: the runtime says so with a clear error and keeps
 * running. */
#include "rlt_test.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#define BIG_STACK (4u << 20)
#define MAX_TRIES 256

static void *waiter(void *arg)
{
	rlt_event_wait(arg);
	return NULL;
}

typedef struct as_run {
	int spawned, ran, other;
	int spawn_errno;
	bool after_ok;
} as_run;

static void *root_as(void *arg)
{
	as_run *r = arg;
	rlt_event *go = rlt_event_new();
	rlt_task **ts = calloc(MAX_TRIES, sizeof(*ts));
	if (!go || !ts)
		return rlt_fail(ENOMEM);
	struct rlimit saved, rl;
	getrlimit(RLIMIT_AS, &saved);
	/* Room for some big stacks more than what is mapped now, no more
	 * (and for a new malloc arena some thread may map meanwhile, 64 MiB:
	 * with room for 8 stacks, that left none 1 run in 3 under
	 * io_uring-sqpoll). */
	rl = saved;
	rl.rlim_cur = (rlim_t)rlt_test_status_kib("VmSize") * 1024 + 24 * BIG_STACK;
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		return rlt_fail(errno);
	/* rlt_spawn takes the task's stack: the first spawn that cannot have
	 * one returns NULL with ENOMEM (EAGAIN allowed) at once. No yield: the
	 * tasks need not run for their stacks to be taken. */
	rlt_spawn_opts o = {.stack_size = BIG_STACK};
	for (r->spawned = 0; r->spawned < MAX_TRIES; r->spawned++) {
		errno = 0;
		ts[r->spawned] = rlt_spawn(waiter, go, &o);
		if (!ts[r->spawned]) {
			r->spawn_errno = errno;
			break;
		}
	}
	setrlimit(RLIMIT_AS, &saved);
	/* Still running: every task that was spawned runs and finishes, and a
	 * new one runs. */
	rlt_event_set(go);
	for (int i = 0; i < r->spawned; i++) {
		if (rlt_join(ts[i], NULL) == 0)
			r->ran++;
		else
			r->other++;
	}
	rlt_task *t = rlt_spawn(waiter, go, &o);
	r->after_ok = t && rlt_join(t, NULL) == 0;
	free(ts);
	rlt_event_free(go);
	return NULL;
}

static void test_stack_that_cannot_be_mapped_fails_the_spawn_with_enomem(void **state)
{
	(void)state;
	if (rlt_test_sanitized()) {
		/* The sanitizers' shadow memory reserves terabytes of address
		 * space and maps more as it goes: a tight RLIMIT_AS kills them. */
		printf("# skipped under a sanitizer: RLIMIT_AS would starve its shadow memory\n");
		skip();
	}
	as_run r = {0};
	rlt_config cfg = {.workers = 1};
	assert_int_equal(rlt_run(root_as, &r, &cfg, NULL), 0);
	printf("# RLIMIT_AS: %d tasks with 4 MiB stacks spawned, then rlt_spawn: NULL, %s; %d ran, "
	       "%d other; after: %s\n",
	       r.spawned, r.spawn_errno ? strerror(r.spawn_errno) : "(no failure)", r.ran, r.other,
	       r.after_ok ? "a new task ran" : "FAILED");
	assert_true(r.spawned > 0);
	assert_true(r.spawned < MAX_TRIES);
	assert_true(r.spawn_errno == ENOMEM || r.spawn_errno == EAGAIN);
	assert_int_equal(r.ran, r.spawned);
	assert_int_equal(r.other, 0);
	assert_true(r.after_ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stack_that_cannot_be_mapped_fails_the_spawn_with_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
