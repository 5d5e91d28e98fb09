/* The work-stealing scheduler: many workers, stealing, pinning, parking,
 * wake-ups across workers and from foreign threads, shutdown. */
#include "tests/rlt_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *run_on(unsigned workers, rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = workers};
	void *res = NULL;
	assert_int_equal(rlt_run(fn, arg, &cfg, &res), 0);
	return res;
}

/* Burn about `us` microseconds of CPU without suspending. */
static void spin_us(unsigned us)
{
	uint64_t end = rlt_now() + us * RLT_NSEC_PER_USEC;
	while (rlt_now() < end)
		;
}

/* ---- fan-out ---- */

#define FANOUT RLT_TEST_SCALE(100000)

static void *times_three(void *arg)
{
	if (((intptr_t)arg & 63) == 0)
		rlt_yield();
	return (void *)((intptr_t)arg * 3);
}

static void *root_fanout(void *arg)
{
	rlt_task **ts = malloc(FANOUT * sizeof(*ts));
	assert_non_null(ts);
	rlt_spawn_opts o = {.stack_size = 16384};
	for (intptr_t i = 0; i < FANOUT; i++) {
		ts[i] = rlt_spawn(times_three, (void *)i, &o);
		assert_non_null(ts[i]);
	}
	for (intptr_t i = 0; i < FANOUT; i++) {
		void *r;
		assert_int_equal(rlt_join(ts[i], &r), 0);
		assert_int_equal((intptr_t)r, i * 3);
	}
	free(ts);
	return NULL;
}

static void test_fanout_of_100k_tasks_across_workers(void **state)
{
	run_on(2, root_fanout, NULL);
}

/* ---- ping-pong between pinned tasks on different workers ---- */

#define ROUNDS RLT_TEST_SCALE(2000)

typedef struct pingpong {
	rlt_future *to_b[ROUNDS + 1];
	rlt_future *to_a[ROUNDS + 1];
	int worker_a, worker_b;
	atomic_int moved;
} pingpong;

static void *player_a(void *arg)
{
	pingpong *pp = arg;
	pp->worker_a = rlt_worker_index();
	for (intptr_t i = 0; i < ROUNDS; i++) {
		assert_int_equal(rlt_future_set(pp->to_b[i], (void *)i), 0);
		void *v;
		assert_int_equal(rlt_future_await(pp->to_a[i], &v, 10 * RLT_NSEC_PER_SEC), 0);
		assert_int_equal((intptr_t)v, i + 1);
		if (rlt_worker_index() != pp->worker_a)
			pp->moved++;
	}
	return NULL;
}

static void *player_b(void *arg)
{
	pingpong *pp = arg;
	pp->worker_b = rlt_worker_index();
	for (intptr_t i = 0; i < ROUNDS; i++) {
		void *v;
		assert_int_equal(rlt_future_await(pp->to_b[i], &v, 10 * RLT_NSEC_PER_SEC), 0);
		assert_int_equal((intptr_t)v, i);
		if (rlt_worker_index() != pp->worker_b)
			pp->moved++;
		assert_int_equal(rlt_future_set(pp->to_a[i], (void *)(i + 1)), 0);
	}
	return NULL;
}

static void *root_pingpong(void *arg)
{
	pingpong *pp = calloc(1, sizeof(*pp));
	for (int i = 0; i < ROUNDS; i++) {
		pp->to_a[i] = rlt_future_new();
		pp->to_b[i] = rlt_future_new();
	}
	rlt_spawn_opts oa = {
	    .name = "a", .flags = RLT_SPAWN_PINNED | RLT_SPAWN_ON_WORKER, .worker = 0};
	rlt_spawn_opts ob = {
	    .name = "b", .flags = RLT_SPAWN_PINNED | RLT_SPAWN_ON_WORKER, .worker = 1};
	rlt_task *b = rlt_spawn(player_b, pp, &ob);
	rlt_task *a = rlt_spawn(player_a, pp, &oa);
	assert_int_equal(rlt_join(a, NULL), 0);
	assert_int_equal(rlt_join(b, NULL), 0);
	assert_int_equal(pp->worker_a, 0);
	assert_int_equal(pp->worker_b, 1);
	assert_int_equal(pp->moved, 0); /* pinned tasks never move */
	for (int i = 0; i < ROUNDS; i++) {
		rlt_future_release(pp->to_a[i]);
		rlt_future_release(pp->to_b[i]);
	}
	free(pp);
	return NULL;
}

static void test_futures_ping_pong_between_pinned_tasks_on_two_workers(void **state)
{
	run_on(2, root_pingpong, NULL);
}

/* ---- foreign threads: spawns and completions ---- */

#define FOREIGN_TASKS RLT_TEST_SCALE(2000)

typedef struct foreign {
	rlt_runtime *rt;
	rlt_future *done[FOREIGN_TASKS];
	rlt_future *ask[FOREIGN_TASKS];
	atomic_int ran;
} foreign;

typedef struct ftask_arg {
	foreign *fs;
	int i;
} ftask_arg;

static ftask_arg fargs[FOREIGN_TASKS];

static void *spawned_from_foreign(void *arg)
{
	ftask_arg *fa = arg;
	fa->fs->ran++;
	/* Wait for the foreign thread's answer, then report to the root. */
	void *v;
	assert_int_equal(rlt_future_await(fa->fs->ask[fa->i], &v, 10 * RLT_NSEC_PER_SEC), 0);
	assert_int_equal((intptr_t)v, fa->i);
	assert_int_equal(rlt_future_set(fa->fs->done[fa->i], (void *)(intptr_t)(fa->i + 1)), 0);
	return NULL;
}

static void *foreign_thread(void *arg)
{
	foreign *fs = arg;
	rlt_spawn_opts o = {.stack_size = 16384, .flags = RLT_SPAWN_DETACHED};
	for (int i = 0; i < FOREIGN_TASKS; i++) {
		fargs[i] = (ftask_arg){.fs = fs, .i = i};
		assert_non_null(rlt_runtime_spawn(fs->rt, spawned_from_foreign, &fargs[i], &o));
	}
	/* Complete what the tasks wait on, from this thread too. */
	for (int i = 0; i < FOREIGN_TASKS; i++)
		assert_int_equal(rlt_future_set(fs->ask[i], (void *)(intptr_t)i), 0);
	return NULL;
}

static void *root_foreign(void *arg)
{
	foreign *fs = calloc(1, sizeof(*fs));
	fs->rt = rlt_runtime_self();
	assert_non_null(fs->rt);
	for (int i = 0; i < FOREIGN_TASKS; i++) {
		fs->done[i] = rlt_future_new();
		fs->ask[i] = rlt_future_new();
	}
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, foreign_thread, fs), 0);
	for (int i = 0; i < FOREIGN_TASKS; i++) {
		void *v;
		assert_int_equal(rlt_future_await(fs->done[i], &v, 20 * RLT_NSEC_PER_SEC), 0);
		assert_int_equal((intptr_t)v, i + 1);
	}
	pthread_join(th, NULL);
	assert_int_equal(fs->ran, FOREIGN_TASKS);
	for (int i = 0; i < FOREIGN_TASKS; i++) {
		rlt_future_release(fs->done[i]);
		rlt_future_release(fs->ask[i]);
	}
	free(fs);
	return NULL;
}

static void test_spawns_and_completions_from_a_foreign_thread(void **state)
{
	run_on(2, root_foreign, NULL);
	run_on(1, root_foreign, NULL);
}

static void test_runtime_spawn_checks_its_arguments(void **state)
{
	errno = 0;
	assert_null(rlt_runtime_spawn(NULL, times_three, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_runtime_self());
	assert_int_equal(rlt_worker_index(), -1);
}

/* ---- fairness: a task yielding in a loop does not starve the others ---- */

static atomic_bool stop_spinning;
static atomic_int finished;

static void *yield_forever(void *arg)
{
	while (!stop_spinning)
		rlt_yield();
	return NULL;
}

static void *short_job(void *arg)
{
	rlt_yield();
	rlt_sleep(RLT_NSEC_PER_MSEC);
	spin_us(50);
	finished++;
	return NULL;
}

static void *root_fair(void *arg)
{
	stop_spinning = false;
	finished = 0;
	rlt_task *spinners[4];
	for (int i = 0; i < 4; i++)
		spinners[i] = rlt_spawn(yield_forever, NULL, NULL);
	rlt_task *jobs[100];
	for (int i = 0; i < 100; i++)
		jobs[i] = rlt_spawn(short_job, NULL, NULL);
	uint64_t t0 = rlt_now();
	for (int i = 0; i < 100; i++)
		assert_int_equal(rlt_join(jobs[i], NULL), 0);
	assert_int_equal(finished, 100);
	assert_true(rlt_now() - t0 < 5 * RLT_NSEC_PER_SEC);
	stop_spinning = true;
	for (int i = 0; i < 4; i++)
		rlt_join(spinners[i], NULL);
	return NULL;
}

static void test_yield_loops_do_not_starve_other_tasks(void **state)
{
	run_on(1, root_fair, NULL);
	run_on(2, root_fair, NULL);
}

/* ---- parking: an idle runtime sleeps ---- */

static long cpu_ticks(void)
{
	/* utime + stime of the whole process, fields 14 and 15 of stat. */
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	/* after ") " : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
	 * stime */
	sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	return (long)(ut + st);
}

static void *root_idle(void *arg)
{
	long *used = arg;
	/* Let every worker reach its park first. */
	rlt_sleep(50 * RLT_NSEC_PER_MSEC);
	long t0 = cpu_ticks();
	rlt_sleep(RLT_NSEC_PER_SEC);
	*used = cpu_ticks() - t0;
	return NULL;
}

static void test_idle_runtime_uses_no_cpu(void **state)
{
	long used = 0;
	run_on(2, root_idle, &used);
	long hz = sysconf(_SC_CLK_TCK);
	print_message("CPU used by an idle 2-worker runtime over 1 s: %ld ticks of 1/%ld s\n", used,
		      hz);
	/* ~0%: at most 2% of one second (ticks are coarse: 1/100 s). */
	assert_true(used * 50 <= hz);
}

/* ---- stealing: work spawned on worker 0 runs on both workers ---- */

#define STEAL_TASKS 400

static atomic_int ran_on[2];

static void *cpu_work(void *arg)
{
	int w = rlt_worker_index();
	assert_true(w == 0 || w == 1);
	ran_on[w]++;
	spin_us(200);
	return NULL;
}

/* Spawn n cpu_work tasks (stealable) from here, and join them all. */
static void spawn_cpu_work(int n)
{
	rlt_task *ts[STEAL_TASKS];
	assert_true(n <= STEAL_TASKS);
	for (int i = 0; i < n; i++)
		ts[i] = rlt_spawn(cpu_work, NULL, &(rlt_spawn_opts){.stack_size = 16384});
	for (int i = 0; i < n; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
}

static void *spawner(void *arg)
{
	assert_int_equal(rlt_worker_index(), 0);
	spawn_cpu_work(STEAL_TASKS);
	return NULL;
}

static void *root_steal(void *arg)
{
	ran_on[0] = ran_on[1] = 0;
	rlt_spawn_opts o = {.flags = RLT_SPAWN_PINNED | RLT_SPAWN_ON_WORKER, .worker = 0};
	rlt_task *s = rlt_spawn(spawner, NULL, &o);
	assert_int_equal(rlt_join(s, NULL), 0);
	return NULL;
}

static void test_tasks_spawned_on_one_worker_are_stolen_by_the_other(void **state)
{
	run_on(2, root_steal, NULL);
	print_message("ran on worker 0: %d, worker 1: %d\n", ran_on[0], ran_on[1]);
	assert_int_equal(ran_on[0] + ran_on[1], STEAL_TASKS);
	assert_true(ran_on[0] > STEAL_TASKS / 10);
	assert_true(ran_on[1] > STEAL_TASKS / 10);
}

/* A worker woken to search (a notifier picked it) that then finds work of its
 * own must stop counting as a searcher: while it counts, nobody else may
 * search and new work wakes nobody, so the other worker sleeps through all
 * of it. The scenario: worker 0 asleep; a task on worker 1 spawns two small
 * tasks there (which picks worker 0 to search) and a pinned one on worker 0.
 * Worker 1 runs the small ones long before worker 0 is awake, so worker 0
 * finds only its pinned task, which spawns the real work. */
#define SEARCH_TASKS 100

static void *nothing(void *arg)
{
	return arg;
}

static void *pinned_spawner(void *arg)
{
	spawn_cpu_work(SEARCH_TASKS);
	return NULL;
}

static void *root_searcher(void *arg)
{
	int *low = arg;
	for (int round = 0; round < 5; round++) {
		ran_on[0] = ran_on[1] = 0;
		/* Let worker 0 go to sleep (a scenario's setup, not a wait for
		 * a result: if it is still awake, the round proves less). */
		rlt_sleep(5 * RLT_NSEC_PER_MSEC);
		rlt_task *x = rlt_spawn(nothing, NULL, NULL);
		rlt_task *y = rlt_spawn(nothing, NULL, NULL);
		rlt_task *p = rlt_test_spawn_on(pinned_spawner, NULL, 0);
		assert_int_equal(rlt_join(x, NULL), 0);
		assert_int_equal(rlt_join(y, NULL), 0);
		assert_int_equal(rlt_join(p, NULL), 0);
		assert_int_equal(ran_on[0] + ran_on[1], SEARCH_TASKS);
		if (ran_on[1] <= SEARCH_TASKS / 10)
			++*low;
	}
	return NULL;
}

static void *root_searcher_on_1(void *arg)
{
	assert_int_equal(rlt_join(rlt_test_spawn_on(root_searcher, arg, 1), NULL), 0);
	return NULL;
}

static void test_a_woken_searcher_that_finds_its_own_work_stops_searching(void **state)
{
	int low = 0;
	run_on(2, root_searcher_on_1, &low);
	print_message("rounds where worker 1 ran at most 10%% of the tasks: %d of 5\n", low);
	assert_int_equal(low, 0);
}

static void test_no_steal_keeps_tasks_on_their_worker(void **state)
{
	rlt_config cfg = {.workers = 2, .no_steal = true};
	assert_int_equal(rlt_run(root_steal, NULL, &cfg, NULL), 0);
	assert_int_equal(ran_on[0], STEAL_TASKS);
	assert_int_equal(ran_on[1], 0);
	setenv("RINGLET_STEAL", "0", 1);
	cfg.no_steal = false;
	assert_int_equal(rlt_run(root_steal, NULL, &cfg, NULL), 0);
	assert_int_equal(ran_on[1], 0);
	unsetenv("RINGLET_STEAL");
}

/* ---- spawning onto a worker, joining across workers ---- */

static void *where_am_i(void *arg)
{
	return (void *)(intptr_t)rlt_worker_index();
}

static void *root_on_worker(void *arg)
{
	rlt_runtime *rt = rlt_runtime_self();
	unsigned n = rlt_runtime_workers(rt);
	assert_int_equal(n, 3);
	for (unsigned w = 0; w < n; w++) {
		rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED, .worker = w};
		void *r;
		assert_int_equal(rlt_join(rlt_spawn(where_am_i, NULL, &o), &r), 0);
		assert_int_equal((intptr_t)r, (intptr_t)w);
	}
	rlt_spawn_opts bad = {.flags = RLT_SPAWN_ON_WORKER, .worker = n};
	errno = 0;
	assert_null(rlt_spawn(where_am_i, NULL, &bad));
	assert_int_equal(errno, EINVAL);
	return NULL;
}

static void test_spawn_on_a_given_worker_and_workers_from_environment(void **state)
{
	setenv("RINGLET_WORKERS", "3", 1);
	assert_int_equal(rlt_run(root_on_worker, NULL, NULL, NULL), 0);
	setenv("RINGLET_WORKERS", "0", 1);
	assert_int_equal(rlt_run(root_on_worker, NULL, NULL, NULL), -EINVAL);
	setenv("RINGLET_WORKERS", "many", 1);
	assert_int_equal(rlt_run(root_on_worker, NULL, NULL, NULL), -EINVAL);
	unsetenv("RINGLET_WORKERS");
	setenv("RINGLET_PIN", "maybe", 1);
	assert_int_equal(rlt_run(root_on_worker, NULL, NULL, NULL), -EINVAL);
	unsetenv("RINGLET_PIN");
}

static void *root_pinned_workers(void *arg)
{
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	return (void *)(intptr_t)CPU_COUNT(&set);
}

static void test_pinning_binds_each_worker_to_one_cpu(void **state)
{
	rlt_config cfg = {.workers = 1, .pin = true};
	void *r;
	cpu_set_t before, after;
	sched_getaffinity(0, sizeof(before), &before);
	assert_int_equal(rlt_run(root_pinned_workers, NULL, &cfg, &r), 0);
	assert_int_equal((intptr_t)r, 1);
	sched_getaffinity(0, sizeof(after), &after);
	assert_true(CPU_EQUAL(&before, &after)); /* restored afterwards */
}

/* ---- shutdown with tasks still pending on several workers ---- */

static atomic_int sd_started, sd_cancelled;

static void *sleep_an_hour(void *arg)
{
	atomic_fetch_add(&sd_started, 1);
	if (rlt_sleep(3600 * RLT_NSEC_PER_SEC) == -ECANCELED)
		atomic_fetch_add(&sd_cancelled, 1);
	return NULL;
}

static void *root_shutdown(void *arg)
{
	atomic_store(&sd_started, 0);
	atomic_store(&sd_cancelled, 0);
	for (unsigned w = 0; w < 2; w++) {
		rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_DETACHED, .worker = w};
		for (int i = 0; i < 10; i++)
			rlt_spawn(sleep_an_hour, NULL, &o);
	}
	/* The 20 get going (bounded: a loaded machine is slow, not stuck)... */
	uint64_t end = rlt_now() + 5 * RLT_NSEC_PER_SEC;
	while (atomic_load(&sd_started) < 20 && rlt_now() < end)
		rlt_sleep(RLT_NSEC_PER_MSEC);
	/* ...and some may never get to start. */
	for (int i = 0; i < 5; i++)
		rlt_spawn(sleep_an_hour, NULL, &(rlt_spawn_opts){.flags = RLT_SPAWN_DETACHED});
	return (void *)1;
}

static void test_shutdown_with_pending_tasks_on_every_worker(void **state)
{
	int errp[2];
	assert_int_equal(pipe(errp), 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(errp[1], STDERR_FILENO);
	uint64_t t0 = rlt_now();
	rlt_config cfg = {.workers = 2};
	void *r = NULL;
	int rc = rlt_run(root_shutdown, NULL, &cfg, &r);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(errp[1]);
	char buf[512] = {0};
	ssize_t n = read(errp[0], buf, sizeof(buf) - 1);
	close(errp[0]);
	assert_int_equal(rc, 0);
	assert_int_equal((intptr_t)r, 1);
	(void)n;
	/* Every task that started was cancelled out of its sleep and finished;
	 * the others never started; nothing was abandoned. */
	assert_true(atomic_load(&sd_started) >= 20);
	assert_int_equal(atomic_load(&sd_cancelled), atomic_load(&sd_started));
	assert_null(strstr(buf, "abandoned"));
	assert_true(rlt_now() - t0 < 7 * RLT_NSEC_PER_SEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fanout_of_100k_tasks_across_workers),
	    cmocka_unit_test(test_futures_ping_pong_between_pinned_tasks_on_two_workers),
	    cmocka_unit_test(test_spawns_and_completions_from_a_foreign_thread),
	    cmocka_unit_test(test_runtime_spawn_checks_its_arguments),
	    cmocka_unit_test(test_yield_loops_do_not_starve_other_tasks),
	    cmocka_unit_test(test_idle_runtime_uses_no_cpu),
	    cmocka_unit_test(test_tasks_spawned_on_one_worker_are_stolen_by_the_other),
	    cmocka_unit_test(test_a_woken_searcher_that_finds_its_own_work_stops_searching),
	    cmocka_unit_test(test_no_steal_keeps_tasks_on_their_worker),
	    cmocka_unit_test(test_spawn_on_a_given_worker_and_workers_from_environment),
	    cmocka_unit_test(test_pinning_binds_each_worker_to_one_cpu),
	    cmocka_unit_test(test_shutdown_with_pending_tasks_on_every_worker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
