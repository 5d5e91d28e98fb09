/* Process pools: this test program is its own worker (rlt_procpool_child_main
 * at the top of main). Round trips of every size, job errors and unknown
 * names, a crash fails its job with -ECHILD and the process is replaced, a
 * cancelled or timed-out job has its process killed and replaced, a worker
 * killed while idle is replaced without failing a job, jobs run in
 * parallel on two processes, and nothing is left behind: no process, no
 * zombie. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC  RLT_NSEC_PER_SEC
#define MSEC RLT_NSEC_PER_MSEC

/* ---- the jobs (run in the workers) ---- */

static int job_echo(const void *in, size_t len, void **out, size_t *out_len)
{
	if (!len)
		return 0;
	*out = malloc(len);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, in, len);
	*out_len = len;
	return 0;
}

/* The worker's pid, as text. */
static int job_pid(const void *in, size_t len, void **out, size_t *out_len)
{
	char *s = malloc(16);
	*out_len = (size_t)snprintf(s, 16, "%d", (int)getpid());
	*out = s;
	return 0;
}

static int job_fail(const void *in, size_t len, void **out, size_t *out_len)
{
	return EDOM; /* positive: made negative */
}

static int job_crash(const void *in, size_t len, void **out, size_t *out_len)
{
	raise(SIGKILL); /* dies as a crash would, without a core or a sanitizer report */
	return 0;
}

/* Sleeps the milliseconds given as text, then answers "slept". */
static int job_sleep(const void *in, size_t len, void **out, size_t *out_len)
{
	char buf[32] = {0};
	memcpy(buf, in, len < sizeof(buf) - 1 ? len : sizeof(buf) - 1);
	usleep((useconds_t)atoi(buf) * 1000);
	*out = strdup("slept");
	*out_len = 5;
	return 0;
}

/* ---- helpers ---- */

static rlt_procpool *pool_of(unsigned n)
{
	rlt_procpool *p = rlt_procpool_create(&(rlt_procpool_config){.processes = n});
	if (!p)
		fail_msg("rlt_procpool_create: %s", strerror(errno));
	return p;
}

static int pid_of_a_worker(rlt_procpool *p)
{
	void *out;
	size_t len;
	assert_int_equal(rlt_procpool_run(p, "pid", "", 0, &out, &len), 0);
	char buf[16] = {0};
	memcpy(buf, out, len < 15 ? len : 15);
	free(out);
	return atoi(buf);
}

static void assert_no_children(void)
{
	siginfo_t si = {0};
	int rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
	if (rc == 0)
		fail_msg("a child is left: pid %d", si.si_pid);
	assert_int_equal(errno, ECHILD);
}

/* ---- round trips ---- */

static void *root_round_trips(void *arg)
{
	rlt_procpool *p = pool_of(1);
	size_t sizes[] = {0, 1, 100, 4096, 65537, 4u << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *in = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			in[k] = (unsigned char)(k * 131 + i);
		void *out = (void *)1;
		size_t out_len = 99;
		assert_int_equal(rlt_procpool_run(p, "echo", in, n, &out, &out_len), 0);
		assert_int_equal(out_len, n);
		if (n)
			assert_memory_equal(out, in, n);
		else
			assert_null(out);
		free(out);
		free(in);
	}
	/* the result may be dropped */
	assert_int_equal(rlt_procpool_run(p, "echo", "abc", 3, NULL, NULL), 0);
	rlt_procpool_stats st;
	assert_int_equal(rlt_procpool_get_stats(p, &st), 0);
	assert_int_equal(st.processes, 1);
	assert_int_equal(st.jobs, 7);
	assert_int_equal(st.spawned, 1);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_bytes_come_back_intact_at_every_size(void **state)
{
	rlt_test_run(root_round_trips, NULL);
	assert_no_children();
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	rlt_procpool *p = pool_of(1);
	void *out = (void *)1;
	size_t len = 1;
	assert_int_equal(rlt_procpool_run(p, "fail", "x", 1, &out, &len), -EDOM);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(rlt_procpool_run(p, "no-such-job", "x", 1, &out, &len), -ENOENT);
	assert_int_equal(rlt_procpool_run(NULL, "echo", "x", 1, &out, &len), -EINVAL);
	assert_int_equal(rlt_procpool_run(p, NULL, "x", 1, &out, &len), -EINVAL);
	assert_int_equal(rlt_procpool_run(p, "", "x", 1, &out, &len), -EINVAL);
	assert_int_equal(rlt_procpool_run(p, "echo", NULL, 1, &out, &len), -EINVAL);
	assert_int_equal(rlt_procpool_run(p, "echo", "x", 1, &out, NULL), -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(rlt_procpool_run(p, longname, "x", 1, &out, &len), -EMSGSIZE);
	/* the worker is the same one throughout: errors do not cost a process */
	rlt_procpool_stats st;
	rlt_procpool_get_stats(p, &st);
	assert_int_equal(st.spawned, 1);
	assert_int_equal(st.crashed + st.killed, 0);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

/* A helper program as the worker: here this test program again, by path,
 * with no arguments (it serves because of the marker, not its argv). */
static void *root_helper_program(void *arg)
{
	rlt_procpool *p = rlt_procpool_create(
	    &(rlt_procpool_config){.processes = 1, .program = "/proc/self/exe"});
	assert_non_null(p);
	void *out;
	size_t len;
	assert_int_equal(rlt_procpool_run(p, "echo", "helper", 6, &out, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "helper", 6);
	free(out);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_job_errors_and_unknown_names_come_back(void **state)
{
	rlt_test_run(root_errors, NULL);
	void *out;
	size_t len;
	rlt_procpool *p = pool_of(1);
	assert_int_equal(rlt_procpool_run(p, "echo", "x", 1, &out, &len), -EPERM);
	assert_int_equal(rlt_procpool_free(p), 0); /* outside a task too */
	assert_no_children();
	assert_int_equal(rlt_procpool_register("echo", job_echo), -EEXIST);
	assert_int_equal(rlt_procpool_register("", job_echo), -EINVAL);
	assert_int_equal(rlt_procpool_register("x", NULL), -EINVAL);
	errno = 0;
	assert_null(rlt_procpool_create(&(rlt_procpool_config){.program = "/nonexistent/worker"}));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(rlt_procpool_create(&(rlt_procpool_config){.processes = 2000}) == NULL &&
			     errno == EINVAL,
			 1);
	/* a worker (the marker set) that reached the parent's code makes no pool */
	setenv("RINGLET_PROCPOOL_WORKER", "3", 1);
	errno = 0;
	assert_null(rlt_procpool_create(NULL));
	assert_int_equal(errno, ENOEXEC);
	unsetenv("RINGLET_PROCPOOL_WORKER");
	rlt_test_run(root_helper_program, NULL);
	assert_no_children();
	errno = 0;
	assert_null(rlt_procpool_create(&(rlt_procpool_config){.program = "/nonexistent/worker"}));
	assert_int_equal(errno, ENOENT);
	assert_no_children();
}

/* ---- crashes ---- */

static void *root_crash(void *arg)
{
	rlt_procpool *p = pool_of(1);
	int before = pid_of_a_worker(p);
	assert_int_equal(rlt_procpool_run(p, "crash", "", 0, NULL, NULL), -ECHILD);
	int after = pid_of_a_worker(p);
	assert_true(after > 0);
	assert_int_not_equal(after, before);
	assert_int_equal(kill(before, 0), -1); /* gone and reaped */
	assert_int_equal(errno, ESRCH);
	/* the pool goes on */
	void *out;
	size_t len;
	assert_int_equal(rlt_procpool_run(p, "echo", "ok", 2, &out, &len), 0);
	assert_memory_equal(out, "ok", 2);
	free(out);
	rlt_procpool_stats st;
	rlt_procpool_get_stats(p, &st);
	assert_int_equal(st.crashed, 1);
	assert_int_equal(st.spawned, 2);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_a_crash_fails_its_job_and_the_process_is_replaced(void **state)
{
	rlt_test_run(root_crash, NULL);
	assert_no_children();
}

/* ---- killed while idle ---- */

static void *root_idle_death(void *arg)
{
	rlt_procpool *p = pool_of(1);
	int before = pid_of_a_worker(p);
	assert_int_equal(kill(before, SIGKILL), 0);
	/* not reaped (ours to reap): wait until it is a zombie */
	siginfo_t si;
	assert_int_equal(waitid(P_PID, (id_t)before, &si, WEXITED | WNOWAIT), 0);
	int after = pid_of_a_worker(p); /* succeeds on a new process */
	assert_int_not_equal(after, before);
	rlt_procpool_stats st;
	rlt_procpool_get_stats(p, &st);
	assert_int_equal(st.crashed, 0);
	assert_int_equal(st.spawned, 2);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_a_worker_killed_while_idle_is_replaced_without_failing_a_job(void **state)
{
	rlt_test_run(root_idle_death, NULL);
	assert_no_children();
}

/* ---- cancel and deadlines ---- */

typedef struct sleeper {
	rlt_procpool *p;
	int rc;
} sleeper;

static void *sleep_job(void *arg)
{
	sleeper *s = arg;
	s->rc = rlt_procpool_run(s->p, "sleep", "10000", 5, NULL, NULL);
	return NULL;
}

static void *root_cancel(void *arg)
{
	rlt_procpool *p = pool_of(1);
	int before = pid_of_a_worker(p);
	sleeper s = {.p = p};
	rlt_task *t = rlt_spawn(sleep_job, &s, NULL);
	rlt_sleep(50 * MSEC); /* let it reach the worker: either way it must end */
	uint64_t t0 = rlt_now();
	rlt_cancel(t);
	rlt_join(t, NULL);
	assert_int_equal(s.rc, -ECANCELED);
	assert_true(rlt_now() - t0 < 5 * SEC);
	int after = pid_of_a_worker(p);
	assert_int_not_equal(after, before);
	assert_int_equal(kill(before, 0), -1);

	/* a deadline scope bounds a job */
	rlt_scope sc;
	rlt_scope_enter(&sc, 100 * MSEC);
	t0 = rlt_now();
	assert_int_equal(rlt_procpool_run(p, "sleep", "10000", 5, NULL, NULL), -ETIMEDOUT);
	rlt_scope_leave(&sc);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 100 * MSEC);
	assert_true(took < 5 * SEC);
	assert_int_not_equal(pid_of_a_worker(p), after);

	/* a job that ends within its scope is untouched */
	rlt_scope_enter(&sc, 10 * SEC);
	void *out;
	size_t len;
	assert_int_equal(rlt_procpool_run(p, "sleep", "1", 1, &out, &len), 0);
	rlt_scope_leave(&sc);
	assert_int_equal(len, 5);
	free(out);

	/* cancelled before the call, or the scope already expired: nothing was
	 * sent, no process is harmed */
	rlt_procpool_stats st0, st1;
	rlt_procpool_get_stats(p, &st0);
	rlt_cancel(rlt_current());
	assert_int_equal(rlt_procpool_run(p, "echo", "x", 1, NULL, NULL), -ECANCELED);
	rlt_uncancel(); /* handled: the root does not end cancelled */
	rlt_scope_enter(&sc, 0);
	assert_int_equal(rlt_procpool_run(p, "echo", "x", 1, NULL, NULL), -ETIMEDOUT);
	rlt_scope_leave(&sc);
	rlt_procpool_get_stats(p, &st1);
	assert_int_equal(st1.killed, st0.killed);
	assert_int_equal(st1.spawned, st0.spawned);

	/* cancelled while waiting for a free worker: no process is harmed */
	sleeper busy = {.p = p}, queued = {.p = p};
	rlt_task *tb = rlt_spawn(sleep_job, &busy, NULL);
	rlt_sleep(20 * MSEC);
	rlt_task *tq = rlt_spawn(sleep_job, &queued, NULL);
	rlt_sleep(20 * MSEC);
	rlt_procpool_get_stats(p, &st0);
	rlt_cancel(tq);
	rlt_join(tq, NULL);
	assert_int_equal(queued.rc, -ECANCELED);
	rlt_procpool_get_stats(p, &st1);
	assert_int_equal(st1.killed, st0.killed);
	rlt_cancel(tb);
	rlt_join(tb, NULL);
	assert_int_equal(busy.rc, -ECANCELED);

	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_cancel_and_deadline_kill_the_job_and_replace_its_process(void **state)
{
	rlt_test_run(root_cancel, NULL);
	assert_no_children();
}

/* ---- parallel, from many tasks ---- */

typedef struct client {
	rlt_procpool *p;
	int id;
	int ok;
	int pids[2];
} client;

static void *client_task(void *arg)
{
	client *c = arg;
	for (int i = 0; i < 50; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "client %d job %d", c->id, i);
		void *out;
		size_t len;
		if (rlt_procpool_run(c->p, "echo", msg, (size_t)n, &out, &len) == 0 &&
		    len == (size_t)n && memcmp(out, msg, len) == 0)
			c->ok++;
		free(out);
	}
	return NULL;
}

static void *slow_pid(void *arg)
{
	client *c = arg;
	void *out;
	size_t len;
	/* both held busy at once: each must be on its own process */
	if (rlt_procpool_run(c->p, "sleep", "300", 3, NULL, NULL) == 0)
		c->ok = 1;
	if (rlt_procpool_run(c->p, "pid", "", 0, &out, &len) == 0) {
		char b[16] = {0};
		memcpy(b, out, len < 15 ? len : 15);
		c->pids[0] = atoi(b);
		free(out);
	}
	return NULL;
}

static void *root_parallel(void *arg)
{
	rlt_procpool *p = pool_of(2);
	enum { N = 8 };
	client c[N];
	rlt_task *t[N];
	for (int i = 0; i < N; i++) {
		c[i] = (client){.p = p, .id = i};
		t[i] = rlt_spawn(client_task, &c[i], NULL);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		assert_int_equal(c[i].ok, 50);
	}
	/* two slow jobs at once occupy both processes: they overlap */
	client a = {.p = p}, b = {.p = p};
	uint64_t t0 = rlt_now();
	rlt_task *ta = rlt_spawn(slow_pid, &a, NULL);
	rlt_task *tb = rlt_spawn(slow_pid, &b, NULL);
	rlt_join(ta, NULL);
	rlt_join(tb, NULL);
	uint64_t took = rlt_now() - t0;
	assert_int_equal(a.ok + b.ok, 2);
	if (!rlt_test_sanitized())
		assert_true(took < 590 * MSEC); /* one after the other: 600 ms */
	rlt_procpool_stats st;
	rlt_procpool_get_stats(p, &st);
	assert_int_equal(st.jobs, N * 50 + 4);
	assert_int_equal(st.spawned, 2);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_many_tasks_share_two_processes_in_parallel(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_parallel, NULL, &cfg, NULL), 0);
	assert_no_children();
}

/* ---- injected faults ---- */

static void *root_faults(void *arg)
{
	rlt_procpool *p = pool_of(2);
	int ok = 0;
	for (int i = 0; i < 200; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "job %d", i);
		void *out = NULL;
		size_t len = 0;
		int rc = rlt_procpool_run(p, "echo", msg, (size_t)n, &out, &len);
		if (rc == 0) {
			assert_int_equal(len, n);
			assert_memory_equal(out, msg, len);
			ok++;
		} else if (rc != -ENOMEM) {
			fail_msg("job %d: %s", i, strerror(-rc)); /* never -ECHILD, -EPROTO */
		}
		free(out);
	}
	assert_true(ok > 100);
	rlt_procpool_stats st;
	rlt_procpool_get_stats(p, &st);
	assert_int_equal(st.crashed, 0);
	assert_int_equal(rlt_procpool_free(p), 0);
	return NULL;
}

static void test_injected_io_faults_never_corrupt_a_result(void **state)
{
	/* short transfers, EINTR and EAGAIN are absorbed; ENOMEM fails the
	 * job (and costs the worker if part of the request had gone) */
	rlt_test_run_faults("seed=5,rate=0.2,errors=EINTR+EAGAIN+ENOMEM", root_faults, NULL);
	assert_no_children();
}

/* ---- shutdown ---- */

static void *root_free_busy(void *arg)
{
	rlt_procpool *p = pool_of(1);
	sleeper s = {.p = p};
	rlt_task *t = rlt_spawn(sleep_job, &s, NULL);
	rlt_sleep(20 * MSEC);
	int fr = rlt_procpool_free(p);
	if (fr == 0) /* (fault mode: the job failed at once, the pool was idle) */
		rlt_test_faulted("the job ended early: nothing busy to refuse");
	assert_int_equal(fr, -EBUSY);
	rlt_cancel(t);
	rlt_join(t, NULL);
	/* a worker stuck in a job is killed after the grace period */
	rlt_procpool *q = rlt_procpool_create(
	    &(rlt_procpool_config){.processes = 1, .shutdown_timeout_ns = 50 * MSEC});
	assert_non_null(q);
	assert_int_equal(rlt_procpool_free(p), 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_procpool_free(q), 0);
	assert_true(rlt_now() - t0 < 5 * SEC);
	return NULL;
}

static void test_free_refuses_while_busy_and_reaps_everything(void **state)
{
	rlt_test_run(root_free_busy, NULL);
	assert_no_children();
}

int main(int argc, char **argv)
{
	rlt_procpool_register("echo", job_echo);
	rlt_procpool_register("pid", job_pid);
	rlt_procpool_register("fail", job_fail);
	rlt_procpool_register("crash", job_crash);
	rlt_procpool_register("sleep", job_sleep);
	rlt_procpool_child_main(argc, argv); /* a worker stays in there */

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_come_back_intact_at_every_size),
	    cmocka_unit_test(test_job_errors_and_unknown_names_come_back),
	    cmocka_unit_test(test_a_crash_fails_its_job_and_the_process_is_replaced),
	    cmocka_unit_test(test_a_worker_killed_while_idle_is_replaced_without_failing_a_job),
	    cmocka_unit_test(test_cancel_and_deadline_kill_the_job_and_replace_its_process),
	    cmocka_unit_test(test_many_tasks_share_two_processes_in_parallel),
	    cmocka_unit_test(test_injected_io_faults_never_corrupt_a_result),
	    cmocka_unit_test(test_free_refuses_while_busy_and_reaps_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
