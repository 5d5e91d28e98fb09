/* Deadline scopes (asyncio.timeout), shields and cleanup (rlt_defer):
 * every kind of wait inside an expired scope fails with -ETIMEDOUT, scopes
 * nest, a shield hides the outer deadlines, cleanup runs at exit, on
 * cancellation and at a mark, and may itself wait. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS RLT_NSEC_PER_MSEC

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

/* Bounds for a 20 ms deadline: never early, late by scheduling only. */
static void assert_about(uint64_t t0, uint64_t ms)
{
	uint64_t dt = rlt_now() - t0;
	assert_true(dt >= ms * MS);
	assert_true(dt < (ms + (rlt_test_sanitized() ? 1000 : 400)) * MS);
}

static void *sleep_10s(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)rlt_sleep(10000 * MS);
}

static void *each_wait(void *arg)
{
	(void)arg;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	char buf[64];
	rlt_future *f = rlt_future_new();
	rlt_chan *ch = rlt_chan_new(1);
	for (int k = 0; k < 6; k++) {
		rlt_scope sc;
		uint64_t t0 = rlt_now();
		assert_int_equal(rlt_scope_enter(&sc, 20 * MS), 0);
		int rc = 0;
		void *v;
		switch (k) {
		case 0:
			/* Under io_uring a linked timeout, elsewhere a timer. */
			rc = (int)rlt_recv(sv[0], buf, sizeof(buf), 0);
			break;
		case 1:
			rc = rlt_sleep(10000 * MS);
			break;
		case 2:
			rc = rlt_future_await(f, &v, -1);
			break;
		case 3:
			rc = rlt_chan_recv(ch, &v);
			break;
		case 4: {
			/* A join cut by the deadline cancels the joined task. */
			rlt_task *t = rlt_spawn(sleep_10s, NULL, NULL);
			void *res;
			rc = rlt_join(t, &res);
			assert_int_equal((int)(intptr_t)res, -ECANCELED);
			break;
		}
		case 5:
			/* An explicit timeout longer than the scope's: the scope wins. */
			rc = rlt_future_await(f, &v, 5000 * MS);
			break;
		}
		assert_int_equal(rc, -ETIMEDOUT);
		assert_about(t0, 20);
		assert_true(rlt_scope_expired(&sc));
		/* Level-triggered: everything inside fails at once now. */
		assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), -ETIMEDOUT);
		assert_int_equal(rlt_sleep(MS), -ETIMEDOUT);
		assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	}
	/* Out of the scope, everything works again, and the socket lost nothing. */
	assert_int_equal(rlt_send(sv[1], "ok", 2, 0), 2);
	assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 2);
	assert_int_equal(rlt_sleep(MS), 0);
	rlt_future_release(f);
	assert_int_equal(rlt_chan_free(ch), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_every_wait_in_an_expired_scope_times_out(void **state)
{
	(void)state;
	run2(each_wait, NULL);
}

static void *in_time(void *arg)
{
	(void)arg;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 5000 * MS), 0);
	char buf[8];
	for (int i = 0; i < 100; i++) {
		assert_int_equal(rlt_send(sv[1], "x", 1, 0), 1);
		assert_int_equal(rlt_recv(sv[0], buf, sizeof(buf), 0), 1);
	}
	assert_int_equal(rlt_sleep(MS), 0);
	assert_false(rlt_scope_expired(&sc));
	assert_int_equal(rlt_scope_leave(&sc), 0);
	/* A scope with no deadline, and an absolute one. */
	assert_int_equal(rlt_scope_enter(&sc, -1), 0);
	assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_scope_leave(&sc), 0);
	assert_int_equal(rlt_scope_enter_at(&sc, rlt_now() + 10 * MS), 0);
	assert_int_equal(rlt_sleep(1000 * MS), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_work_done_in_time_is_untouched(void **state)
{
	(void)state;
	run2(in_time, NULL);
}

static void *nesting(void *arg)
{
	(void)arg;
	rlt_scope outer, inner;
	/* The nearest deadline wins, whichever scope holds it. */
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&outer, 20 * MS), 0);
	assert_int_equal(rlt_scope_enter(&inner, 5000 * MS), 0);
	assert_int_equal(rlt_sleep(10000 * MS), -ETIMEDOUT);
	assert_about(t0, 20);
	assert_int_equal(rlt_scope_leave(&inner), 0); /* its own deadline has not passed */
	assert_int_equal(rlt_scope_leave(&outer), -ETIMEDOUT);

	t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&outer, 5000 * MS), 0);
	assert_int_equal(rlt_scope_enter(&inner, 20 * MS), 0);
	assert_int_equal(rlt_sleep(10000 * MS), -ETIMEDOUT);
	assert_about(t0, 20);
	assert_int_equal(rlt_scope_leave(&inner), -ETIMEDOUT);
	/* Back in the outer scope: its deadline applies again. */
	assert_int_equal(rlt_sleep(MS), 0);
	/* Leaving out of order is refused. */
	assert_int_equal(rlt_scope_enter(&inner, 5000 * MS), 0);
	assert_int_equal(rlt_scope_leave(&outer), -EINVAL);
	assert_int_equal(rlt_scope_leave(&inner), 0);
	assert_int_equal(rlt_scope_leave(&outer), 0);
	assert_int_equal(rlt_scope_leave(&outer), -EINVAL);
	assert_int_equal(rlt_scope_leave(NULL), -EINVAL);
	assert_int_equal(rlt_scope_enter(NULL, 1), -EINVAL);
	return NULL;
}

static void test_scopes_nest_and_the_nearest_deadline_wins(void **state)
{
	(void)state;
	run2(nesting, NULL);
	rlt_scope sc;
	assert_int_equal(rlt_scope_enter(&sc, 1), -EPERM);
}

static void *shield_hides(void *arg)
{
	(void)arg;
	rlt_scope sc, sh, in;
	assert_int_equal(rlt_scope_enter(&sc, 10 * MS), 0);
	assert_int_equal(rlt_shield_enter(&sh), 0);
	/* The outer deadline passes during this sleep, which goes on. */
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_sleep(40 * MS), 0);
	assert_about(t0, 40);
	/* A scope inside the shield still applies. */
	assert_int_equal(rlt_scope_enter(&in, 10 * MS), 0);
	assert_int_equal(rlt_sleep(10000 * MS), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&in), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sh), 0);
	/* Outside the shield the expired outer scope is back in force. */
	assert_int_equal(rlt_sleep(MS), -ETIMEDOUT);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	return NULL;
}

static void test_a_shield_hides_outer_deadlines(void **state)
{
	(void)state;
	run2(shield_hides, NULL);
}

/* Child processes: the waits loop over I/O under their own time limit, and
 * must not take an expired scope's -ETIMEDOUT for theirs (and go round). */
static void *process_waits(void *arg)
{
	(void)arg;
	const char *argv[] = {"sleep", "5", NULL};
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv, .stdout_mode = RLT_PROC_DEVNULL, .stderr_mode = RLT_PROC_DEVNULL});
	assert_non_null(p);
	rlt_scope sc;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 20 * MS), 0);
	int st;
	assert_int_equal(rlt_process_wait(p, -1, &st), -ETIMEDOUT);
	assert_about(t0, 20);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	/* The child still runs, and can be killed and waited for. */
	assert_int_equal(rlt_process_kill(p, SIGKILL), 0);
	assert_int_equal(rlt_process_wait(p, -1, &st), 0);
	assert_true(WIFSIGNALED(st));
	rlt_process_free(p);

	/* rlt_process_run reads stdout in a loop: the same. */
	const char *sh[] = {"sh", "-c", "echo hi; exec sleep 5", NULL};
	char out[16];
	size_t len = sizeof(out);
	t0 = rlt_now();
	assert_int_equal(rlt_scope_enter(&sc, 20 * MS), 0);
	assert_int_equal(rlt_process_run(sh, out, &len, -1, &st), -ETIMEDOUT);
	assert_about(t0, 20);
	assert_int_equal(rlt_scope_leave(&sc), -ETIMEDOUT);
	/* (Fault mode: a fault in the wait after the kill leaves the status
	 * unknown, 0; rlt_process_free reaps the child then.) */
	if (!WIFSIGNALED(st) && st == 0)
		rlt_test_faulted("the wait after the kill got a fault");
	assert_true(WIFSIGNALED(st)); /* killed and reaped, not left behind */
	return NULL;
}

static void test_process_waits_end_with_their_scope(void **state)
{
	(void)state;
	run2(process_waits, NULL);
}

/* ---- cleanup ---- */

typedef struct log {
	char s[64];
	int n;
} log_t;

typedef struct entry {
	log_t *log;
	char c;
} entry;

static void note(void *arg)
{
	entry *e = arg;
	e->log->s[e->log->n++] = e->c;
}

/* Cleanup that waits: a polite close. */
static void slow_note(void *arg)
{
	entry *e = arg;
	/* Shielded: neither the cancellation nor an expired scope cuts it. */
	assert_int_equal(rlt_sleep(5 * MS), 0);
	e->log->s[e->log->n++] = e->c;
}

static void *with_cleanup(void *arg)
{
	log_t *log = arg;
	static entry a, b, c, d;
	a = (entry){log, 'a'};
	b = (entry){log, 'b'};
	c = (entry){log, 'c'};
	d = (entry){log, 'd'};
	assert_int_equal(rlt_defer(note, &a), 0);
	size_t mark = rlt_defer_mark();
	assert_int_equal(mark, 1);
	assert_int_equal(rlt_defer(note, &b), 0);
	assert_int_equal(rlt_defer(slow_note, &c), 0);
	/* Leaving the block: c then b, not a. */
	assert_int_equal(rlt_defer_run(mark), 2);
	assert_int_equal(rlt_defer_mark(), 1);
	assert_int_equal(rlt_defer(slow_note, &d), 0);
	assert_int_equal(rlt_defer(NULL, NULL), -EINVAL);
	/* Cancelled here: the task returns, and d, a run on the way out. */
	return (void *)(intptr_t)rlt_sleep(10000 * MS);
}

static void *cleanup_root(void *arg)
{
	(void)arg;
	log_t log = {0};
	rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = 1};
	rlt_task *t = rlt_spawn(with_cleanup, &log, &o);
	uint64_t end = rlt_now() + 5000 * MS;
	char what[32];
	while (rlt_task_state(t, what, sizeof(what)) != RLT_TASK_WAITING || strcmp(what, "sleep")) {
		assert_true(rlt_now() < end);
		rlt_yield();
	}
	assert_int_equal(rlt_cancel(t), 0);
	void *res;
	assert_int_equal(rlt_join(t, &res), -ECANCELED);
	assert_int_equal((int)(intptr_t)res, -ECANCELED);
	log.s[log.n] = '\0';
	assert_string_equal(log.s, "cbda");
	return NULL;
}

static void test_cleanup_runs_at_a_mark_and_at_exit_after_a_cancel(void **state)
{
	(void)state;
	run2(cleanup_root, NULL);
	assert_int_equal(rlt_defer(note, NULL), -EPERM);
	assert_int_equal(rlt_defer_run(0), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_wait_in_an_expired_scope_times_out),
	    cmocka_unit_test(test_work_done_in_time_is_untouched),
	    cmocka_unit_test(test_scopes_nest_and_the_nearest_deadline_wins),
	    cmocka_unit_test(test_a_shield_hides_outer_deadlines),
	    cmocka_unit_test(test_process_waits_end_with_their_scope),
	    cmocka_unit_test(test_cleanup_runs_at_a_mark_and_at_exit_after_a_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
