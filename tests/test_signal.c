/* Signals: raise() and kill() to self reach a waiting task wherever it
 * runs, every watcher gets every signal, a signal that comes before
 * anyone waits is kept, timeouts and cancellation, the old disposition
 * comes back on close, refused signals, and the graceful-shutdown guard
 * (first signal cancels, second kills: checked in a child copy of this
 * program). */
#include "tests/rlt_test.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC  RLT_NSEC_PER_SEC
#define MSEC RLT_NSEC_PER_MSEC

static sigset_t set_of(int a, int b)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, a);
	if (b)
		sigaddset(&s, b);
	return s;
}

static rlt_signal *watch(int a, int b)
{
	sigset_t s = set_of(a, b);
	rlt_signal *w = rlt_signal_watch(&s);
	if (!w)
		fail_msg("rlt_signal_watch: %s", strerror(errno));
	return w;
}

/* ---- raise and kill, across workers ---- */

static void *raise_usr2(void *arg)
{
	raise(SIGUSR2); /* thread-directed: lands on this worker's thread */
	return NULL;
}

static void *kill_usr1(void *arg)
{
	kill(getpid(), SIGUSR1); /* process-directed: any thread may take it */
	return NULL;
}

static void *root_raise_and_kill(void *arg)
{
	rlt_signal *w = watch(SIGUSR1, SIGUSR2);
	for (int round = 0; round < 20; round++) {
		/* the raiser on the other worker than the waiter (worker 0) */
		rlt_task *t = rlt_test_spawn_on(round % 2 ? raise_usr2 : kill_usr1, NULL, 1);
		uint64_t t0 = rlt_now();
		int sig = rlt_signal_next(w, 10 * SEC);
		assert_int_equal(sig, round % 2 ? SIGUSR2 : SIGUSR1);
		assert_true(rlt_now() - t0 < 5 * SEC);
		assert_int_equal(rlt_join(t, NULL), 0);
	}
	assert_int_equal(rlt_signal_next(w, 0), -ETIMEDOUT);
	rlt_signal_close(w);
	return NULL;
}

static void test_raise_on_another_worker_and_kill_reach_the_waiter(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_raise_and_kill, NULL, &cfg, NULL), 0);
}

/* ---- several waiters ---- */

typedef struct waiter_arg {
	rlt_signal *w;
	rlt_event *ready;
	int got;
} waiter_arg;

static void *waiter(void *arg)
{
	waiter_arg *a = arg;
	rlt_event_set(a->ready);
	a->got = rlt_signal_next(a->w, 10 * SEC);
	return NULL;
}

static void *root_many_waiters(void *arg)
{
	enum { N = 4 };
	waiter_arg a[N];
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		a[i].w = watch(SIGUSR1, 0);
		a[i].ready = rlt_event_new();
		a[i].got = 0;
		t[i] = rlt_test_spawn_on(waiter, &a[i], (unsigned)i);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(rlt_event_wait_timeout(a[i].ready, 10 * SEC), 0);
	kill(getpid(), SIGUSR1); /* once: every watcher gets it */
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(a[i].got, SIGUSR1);
		assert_int_equal(rlt_signal_pending(a[i].w, SIGUSR1), 0);
		rlt_signal_close(a[i].w);
		rlt_event_free(a[i].ready);
	}
	return NULL;
}

static void test_every_watcher_of_a_signal_gets_it(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_many_waiters, NULL, &cfg, NULL), 0);
}

/* ---- nothing lost before the wait ---- */

static rlt_signal *early;

static void *root_early(void *arg)
{
	/* raised before rlt_run, outside any task: kept */
	assert_int_equal(rlt_signal_pending(early, SIGHUP), 1);
	assert_int_equal(rlt_signal_next(early, 0), SIGHUP);
	/* three raises before a wait, of two signals: counted, lowest first */
	raise(SIGUSR2);
	raise(SIGHUP);
	raise(SIGUSR2);
	assert_int_equal(rlt_signal_pending(early, SIGUSR2), 2);
	assert_int_equal(rlt_signal_next(early, -1), SIGHUP);
	assert_int_equal(rlt_signal_next(early, -1), SIGUSR2);
	assert_int_equal(rlt_signal_next(early, 5 * SEC), SIGUSR2);
	assert_int_equal(rlt_signal_next(early, 0), -ETIMEDOUT);
	return NULL;
}

static void test_a_signal_before_anyone_waits_is_kept(void **state)
{
	sigset_t s = set_of(SIGHUP, SIGUSR2);
	early = rlt_signal_watch(&s);
	assert_non_null(early);
	raise(SIGHUP);
	rlt_test_run1(root_early, NULL);
	rlt_signal_close(early);
}

/* ---- timeouts, scopes, cancellation ---- */

typedef struct cancel_arg {
	rlt_signal *w;
	int got;
} cancel_arg;

static void *wait_forever(void *arg)
{
	cancel_arg *c = arg;
	c->got = rlt_signal_next(c->w, -1);
	return NULL;
}

static void *root_timeouts(void *arg)
{
	rlt_signal *w = watch(SIGUSR1, 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_signal_next(w, 30 * MSEC), -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 30 * MSEC);
	assert_true(took < 5 * SEC);

	/* a deadline scope bounds a wait without a timeout */
	rlt_scope sc;
	rlt_scope_enter(&sc, 20 * MSEC);
	assert_int_equal(rlt_signal_next(w, -1), -ETIMEDOUT);
	rlt_scope_leave(&sc);

	/* the task's I/O timeout does not apply, and is kept */
	rlt_set_io_timeout(10 * MSEC);
	raise(SIGUSR1);
	assert_int_equal(rlt_signal_next(w, 5 * SEC), SIGUSR1);
	assert_int_equal(rlt_io_timeout(), 10 * MSEC);
	rlt_set_io_timeout(0);

	/* cancelled: -ECANCELED, and a signal after it is still there */
	cancel_arg c = {.w = w};
	rlt_task *t = rlt_spawn(wait_forever, &c, NULL);
	rlt_sleep(10 * MSEC);
	rlt_cancel(t);
	rlt_join(t, NULL);
	assert_int_equal(c.got, -ECANCELED);
	raise(SIGUSR1);
	assert_int_equal(rlt_signal_next(w, 0), SIGUSR1);
	rlt_signal_close(w);
	return NULL;
}

static void test_timeout_scope_and_cancel_end_a_wait(void **state)
{
	rlt_test_run(root_timeouts, NULL);
}

static void test_outside_a_task_only_looking_is_allowed(void **state)
{
	rlt_signal *w = watch(SIGUSR1, 0);
	assert_int_equal(rlt_signal_next(w, -1), -EPERM);
	assert_int_equal(rlt_signal_next(w, 0), -ETIMEDOUT);
	raise(SIGUSR1);
	assert_int_equal(rlt_signal_next(w, 0), SIGUSR1);
	assert_int_equal(rlt_signal_next(NULL, 0), -EINVAL);
	rlt_signal_close(w);
	rlt_signal_close(NULL);
}

/* ---- injected faults ---- */

static void *root_faults(void *arg)
{
	rlt_signal *w = watch(SIGUSR2, 0);
	for (int round = 0; round < 40; round++) {
		rlt_task *t = rlt_test_spawn_on(raise_usr2, NULL, (unsigned)round);
		assert_int_equal(rlt_signal_next(w, 10 * SEC), SIGUSR2);
		assert_int_equal(rlt_join(t, NULL), 0);
	}
	assert_int_equal(rlt_signal_next(w, 0), -ETIMEDOUT);
	rlt_signal_close(w);
	return NULL;
}

static void test_failed_and_short_reads_lose_no_signal(void **state)
{
	/* every error the fault policy injects into a read, and short reads */
	rlt_test_run_faults("seed=11,rate=0.4", root_faults, NULL);
}

/* ---- dispositions ---- */

static volatile sig_atomic_t own_handler_ran;
static void own_handler(int sig)
{
	(void)sig;
	own_handler_ran++;
}

static void test_closing_the_last_watcher_restores_the_old_disposition(void **state)
{
	struct sigaction sa, now;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = own_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	own_handler_ran = 0;

	rlt_signal *a = watch(SIGUSR1, 0);
	rlt_signal *b = watch(SIGUSR1, 0);
	raise(SIGUSR1);
	assert_int_equal(own_handler_ran, 0); /* replaced while watched */
	assert_int_equal(rlt_signal_pending(a, SIGUSR1), 1);
	assert_int_equal(rlt_signal_pending(b, SIGUSR1), 1);
	rlt_signal_close(a);
	raise(SIGUSR1); /* b still watches */
	assert_int_equal(own_handler_ran, 0);
	assert_int_equal(rlt_signal_pending(b, SIGUSR1), 2);
	rlt_signal_close(b);
	sigaction(SIGUSR1, NULL, &now);
	assert_ptr_equal(now.sa_handler, own_handler);
	raise(SIGUSR1);
	assert_int_equal(own_handler_ran, 1);

	/* SIG_IGN comes back too */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGUSR1, &sa, NULL);
	rlt_signal_close(watch(SIGUSR1, SIGUSR2));
	sigaction(SIGUSR1, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_IGN);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGUSR1, &sa, NULL);
}

static void test_unwatchable_signals_are_refused(void **state)
{
	int bad[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sigset_t s = set_of(SIGUSR1, bad[i]);
		errno = 0;
		assert_null(rlt_signal_watch(&s));
		assert_int_equal(errno, EINVAL);
	}
	sigset_t empty;
	sigemptyset(&empty);
	assert_null(rlt_signal_watch(&empty));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_signal_watch(NULL));
	assert_int_equal(errno, EINVAL);
	/* a refused set left nothing installed */
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_DFL);
	/* real-time signals are fine */
	rlt_signal *w = watch(SIGRTMIN + 1, 0);
	raise(SIGRTMIN + 1);
	raise(SIGRTMIN + 1); /* queued, not merged */
	assert_int_equal(rlt_signal_pending(w, SIGRTMIN + 1), 2);
	rlt_signal_close(w);
}

/* ---- rlt_signal_wait ---- */

static void *root_wait_once(void *arg)
{
	sigset_t s = set_of(SIGUSR2, 0);
	rlt_task *t = rlt_test_spawn_on(raise_usr2, NULL, 1);
	/* the raiser may run before the wait starts: then it is not seen,
	 * so raise until the wait reports it */
	int sig = -ETIMEDOUT;
	for (int i = 0; i < 50 && sig == -ETIMEDOUT; i++) {
		sig = rlt_signal_wait(&s, 100 * MSEC);
		if (sig == -ETIMEDOUT) {
			rlt_join(t, NULL);
			t = rlt_test_spawn_on(raise_usr2, NULL, 1);
		}
	}
	assert_int_equal(sig, SIGUSR2);
	rlt_join(t, NULL);
	return NULL;
}

static void test_wait_once_gets_one_signal(void **state)
{
	/* SIGUSR2 is left at SIG_IGN meanwhile: a raise outside the wait is
	 * dropped, not fatal */
	signal(SIGUSR2, SIG_IGN);
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_wait_once, NULL, &cfg, NULL), 0);
	signal(SIGUSR2, SIG_DFL);
}

/* ---- graceful shutdown ---- */

static void *send_usr1_later(void *arg)
{
	rlt_sleep(5 * MSEC);
	kill(getpid(), SIGUSR1);
	return NULL;
}

static void *root_shutdown(void *arg)
{
	sigset_t s = set_of(SIGUSR1, 0);
	assert_int_equal(rlt_cancel_on_signal(&s), 0);
	rlt_detach(rlt_spawn(send_usr1_later, NULL, NULL));
	uint64_t t0 = rlt_now();
	int rc = rlt_sleep(60 * SEC); /* serve forever */
	assert_int_equal(rc, -ECANCELED);
	assert_true(rlt_now() - t0 < 10 * SEC);
	return NULL; /* ends cancelled: rlt_run says -ECANCELED */
}

static void test_cancel_on_signal_cancels_the_main_task(void **state)
{
	rlt_config cfg = {.workers = 2};
	void *res;
	/* The main task ended cancelled: rlt_run says so, as asyncio.run does. */
	assert_int_equal(rlt_run(root_shutdown, NULL, &cfg, &res), -ECANCELED);
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_DFL); /* the guard is gone */
}

static atomic_int group_cancelled;

/* A member counts itself started before it waits: a task cancelled before
 * it first ran never runs its function (cancel.h), so the signal is raised
 * only once all four are inside rlt_sleep. */
static void *shutdown_member(void *arg)
{
	rlt_waitgroup_done(arg);
	if (rlt_sleep(60 * SEC) == -ECANCELED)
		atomic_fetch_add(&group_cancelled, 1);
	return NULL;
}

static void *raise_usr2_when_started(void *arg)
{
	if (rlt_waitgroup_wait_timeout(arg, 10 * SEC) != 0)
		return rlt_fail(-ETIMEDOUT);
	return raise_usr2(NULL);
}

/* The documented pattern: the main task waits on a group; the signal
 * cancels it, and the group cancels its tasks. */
static void *root_group_shutdown(void *arg)
{
	sigset_t s = set_of(SIGUSR2, 0);
	assert_int_equal(rlt_cancel_on_signal(&s), 0);
	rlt_waitgroup *started = rlt_waitgroup_new();
	assert_non_null(started);
	assert_int_equal(rlt_waitgroup_add(started, 4), 0);
	rlt_group *g = rlt_group_new();
	for (int i = 0; i < 4; i++)
		assert_non_null(rlt_group_spawn(g, shutdown_member, started, NULL));
	rlt_task *raiser = rlt_test_spawn_on(raise_usr2_when_started, started, 1);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_group_wait(g, NULL), -ECANCELED);
	assert_true(rlt_now() - t0 < 10 * SEC);
	assert_int_equal(atomic_load(&group_cancelled), 4);
	rlt_uncancel(); /* a clean stop */
	assert_int_equal(rlt_join(raiser, NULL), 0);
	rlt_waitgroup_free(started);
	return NULL;
}

static void test_cancel_on_signal_cancels_the_main_tasks_group(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_group_shutdown, NULL, &cfg, NULL), 0);
}

static void *root_guard_only(void *arg)
{
	/* returns at once: the guard is stopped by the cleanup */
	return rlt_cancel_on_signal(NULL) == 0 ? NULL : rlt_fail(-EIO);
}

static void test_cancel_on_signal_ends_with_its_task(void **state)
{
	for (int i = 0; i < 20; i++)
		rlt_test_run(root_guard_only, NULL);
	struct sigaction now;
	sigaction(SIGINT, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_DFL);
	sigaction(SIGTERM, NULL, &now);
	assert_ptr_equal(now.sa_handler, SIG_DFL);
}

/* The child: cancel on SIGINT, then a clean-up that hangs. */
static void *child_main(void *arg)
{
	rlt_cancel_on_signal(NULL);
	printf("ready\n");
	fflush(stdout);
	int rc = rlt_sleep(60 * SEC);
	printf("cancelled %d\n", rc == -ECANCELED);
	fflush(stdout);
	rlt_scope sh;
	rlt_shield_enter(&sh);
	rlt_sleep(60 * SEC); /* stuck in clean-up: only a second signal helps */
	rlt_scope_leave(&sh);
	return NULL;
}

static ssize_t read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = rlt_read(fd, buf + n, 1, -1);
		if (r <= 0)
			return r < 0 ? r : (ssize_t)n;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = 0;
	return (ssize_t)n;
}

/* The task's cleanup, also when a fault ends it early (fault mode): no
 * child is left running. */
static void kill_and_free(void *arg)
{
	rlt_process_kill(arg, SIGKILL);
	rlt_process_free(arg);
}

static void *root_second_signal(void *arg)
{
	const char *argv[] = {"/proc/self/exe", "--signal-child", NULL};
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv, .stdin_mode = RLT_PROC_DEVNULL, .stdout_mode = RLT_PROC_PIPE});
	assert_non_null(p);
	assert_int_equal(rlt_defer(kill_and_free, p), 0);
	rlt_set_io_timeout(20 * SEC);
	char line[64];
	rlt_test_assert_pos(read_line(rlt_process_stdout_fd(p), line, sizeof(line)));
	assert_string_equal(line, "ready\n");
	assert_int_equal(rlt_process_kill(p, SIGINT), 0);
	rlt_test_assert_pos(read_line(rlt_process_stdout_fd(p), line, sizeof(line)));
	assert_string_equal(line, "cancelled 1\n");
	assert_int_equal(rlt_process_kill(p, SIGINT), 0);
	int st = 0;
	assert_int_equal(rlt_process_wait(p, 20 * SEC, &st), 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGINT);
	return NULL; /* kill_and_free frees p */
}

static void test_first_sigint_cancels_second_one_kills(void **state)
{
	rlt_test_run(root_second_signal, NULL);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--signal-child") == 0)
		return rlt_run(child_main, NULL, NULL, NULL) == 0 ? 0 : 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_raise_on_another_worker_and_kill_reach_the_waiter),
	    cmocka_unit_test(test_every_watcher_of_a_signal_gets_it),
	    cmocka_unit_test(test_a_signal_before_anyone_waits_is_kept),
	    cmocka_unit_test(test_timeout_scope_and_cancel_end_a_wait),
	    cmocka_unit_test(test_outside_a_task_only_looking_is_allowed),
	    cmocka_unit_test(test_failed_and_short_reads_lose_no_signal),
	    cmocka_unit_test(test_closing_the_last_watcher_restores_the_old_disposition),
	    cmocka_unit_test(test_unwatchable_signals_are_refused),
	    cmocka_unit_test(test_wait_once_gets_one_signal),
	    cmocka_unit_test(test_cancel_on_signal_cancels_the_main_task),
	    cmocka_unit_test(test_cancel_on_signal_cancels_the_main_tasks_group),
	    cmocka_unit_test(test_cancel_on_signal_ends_with_its_task),
	    cmocka_unit_test(test_first_sigint_cancels_second_one_kills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
