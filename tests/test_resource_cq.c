/* A completion queue that overflows (issue 19): a tiny ring
 * (rlt_config.ring_entries = 4: a CQ of 8) and a burst of completions many
 * times that, all at once: none is lost, nothing hangs. */
#include "rlt_test.h"

#include <errno.h>
#include <sys/socket.h>
#include <time.h>

#define N 1000

typedef struct slot {
	int sv[2];
	ssize_t res;
	char got;
} slot;

static slot slots[N];
static int ready;

static void *reader(void *arg)
{
	slot *s = arg;
	ready++;
	s->res = rlt_recv(s->sv[0], &s->got, 1, 0);
	return NULL;
}

static void *root(void *arg)
{
	(void)arg;
	rlt_task *ts[N];
	ready = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, slots[i].sv),
				 0);
		slots[i].res = -1;
		ts[i] = rlt_spawn(reader, &slots[i], NULL);
		assert_non_null(ts[i]);
	}
	/* All of them started and (most likely) wait in their recv. */
	while (ready < N)
		rlt_yield();
	for (int i = 0; i < 3; i++)
		rlt_yield();
	/* The burst: a write to every pair from this thread, not suspending
	 * in between, so the kernel posts N completions to a CQ of 8. */
	for (int i = 0; i < N; i++) {
		char c = (char)('a' + i % 26);
		assert_int_equal(write(slots[i].sv[1], &c, 1), 1);
	}
	for (int i = 0; i < N; i++) {
		int rc = rlt_join(ts[i], NULL);
		assert_int_equal(rc, 0);
		if (rlt_test_injected(slots[i].res))
			continue;
		assert_int_equal(slots[i].res, 1);
		assert_int_equal(slots[i].got, (char)('a' + i % 26));
	}
	for (int i = 0; i < N; i++) {
		close(slots[i].sv[0]);
		close(slots[i].sv[1]);
	}
	return NULL;
}

static void test_cq_overflow_loses_no_completion(void **state)
{
	(void)state;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	rlt_config cfg = {.workers = 1, .ring_entries = 4};
	assert_int_equal(rlt_run(root, NULL, &cfg, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("%d completions through a ring of 4 entries: %.3f s\n", N, s);
	assert_true(s < 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cq_overflow_loses_no_completion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
