/* The watchdog (sched/watchdog.c): a worker held by a task that does not
 * suspend is reported while it is held, by the task's name, and the
 * runnable tasks queued behind it, or woken into its inbox by other
 * threads, are taken by the other workers. */
#include "rlt_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define BLOCK_MS 1000

static void *blocker(void *arg)
{
	(void)arg;
	rlt_sleep(100 * RLT_NSEC_PER_MSEC); /* let the others settle first */
	usleep(BLOCK_MS * 1000);	    /* blocks the worker: the bug in a program */
	return NULL;
}

/* stderr, captured into a file for the length of a run. */
typedef struct capture {
	int fd, saved;
} capture;

static void capture_start(capture *c)
{
	char path[] = "/tmp/rlt-watchdog-XXXXXX";
	fflush(stderr);
	c->fd = mkstemp(path);
	assert_true(c->fd >= 0);
	unlink(path);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, 2), 2);
}

/* What was written so far, NUL-terminated, into buf. */
static void capture_read(capture *c, char *buf, size_t len)
{
	ssize_t n = pread(c->fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
}

static void capture_end(capture *c, char *buf, size_t len)
{
	fflush(stderr);
	capture_read(c, buf, len);
	dup2(c->saved, 2);
	close(c->saved);
	close(c->fd);
	fputs(buf, stderr); /* for whoever reads the test's log */
}

typedef struct report {
	capture cap;
	char seen[4096]; /* stderr while the blocker still held its worker */
	uint64_t t_block;
} report;

static void *root_report(void *arg)
{
	report *r = arg;
	rlt_spawn_opts o = rlt_test_on_worker(1);
	o.name = "blocker";
	rlt_task *b = rlt_spawn(blocker, NULL, &o);
	if (!b)
		return rlt_fail(errno);
	/* 100 ms until it blocks, then 100 ms (RINGLET_SLOW_MS) and a check
	 * period: by 500 ms it has been reported, 600 ms before it lets go. */
	rlt_sleep(500 * RLT_NSEC_PER_MSEC);
	capture_read(&r->cap, r->seen, sizeof(r->seen));
	rlt_join(b, NULL);
	rlt_sleep(300 * RLT_NSEC_PER_MSEC); /* for the watchdog's next look */
	return NULL;
}

static void test_stuck_worker_reported_while_stuck(void **state)
{
	(void)state;
	report r;
	memset(&r, 0, sizeof(r));
	setenv("RINGLET_SLOW_MS", "100ms", 1);
	capture_start(&r.cap);
	rlt_config cfg = {.workers = 2};
	int rc = rlt_run(root_report, &r, &cfg, NULL);
	char all[8192];
	capture_end(&r.cap, all, sizeof(all));
	unsetenv("RINGLET_SLOW_MS");
	assert_int_equal(rc, 0);
	assert_non_null(strstr(r.seen, "ringlet: worker 1 stuck for"));
	assert_non_null(strstr(r.seen, "in task \"blocker\""));
	/* ...and once it is over, that it runs again. */
	assert_non_null(strstr(all, "ringlet: worker 1 runs again after"));
}

/* A task that only yields, on the worker the blocker will hold: it
 * records the longest gap between two of its turns. */
typedef struct ticker {
	uint64_t spawned, until, max_gap;
	rlt_task *task;
} ticker;

static void *tick(void *arg)
{
	ticker *k = arg;
	uint64_t last = k->spawned;
	while (last < k->until) {
		rlt_yield();
		uint64_t now = rlt_now();
		if (now - last > k->max_gap)
			k->max_gap = now - last;
		last = now;
	}
	return NULL;
}

/* On worker 1: queue the ticker there (not pinned: stealable), then
 * block. The ticker is alone in the stealable queue, so queueing it woke
 * no other worker (one queued task is expected to run next, here). */
static void *blocker_with_ticker(void *arg)
{
	ticker *k = arg;
	rlt_sleep(100 * RLT_NSEC_PER_MSEC); /* worker 0 is asleep by now */
	k->spawned = rlt_now();
	k->until = k->spawned + (BLOCK_MS + 300) * RLT_NSEC_PER_MSEC;
	rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER, .worker = 1, .name = "ticker"};
	k->task = rlt_spawn(tick, k, &o);
	if (!k->task)
		return rlt_fail(errno);
	usleep(BLOCK_MS * 1000);
	return NULL;
}

static void *root_moved(void *arg)
{
	ticker *k = arg;
	rlt_spawn_opts ob = rlt_test_on_worker(1);
	ob.name = "blocker";
	rlt_task *b = rlt_spawn(blocker_with_ticker, k, &ob);
	if (!b)
		return rlt_fail(errno);
	/* A join, not a timer: worker 0 sleeps in the kernel with nothing to
	 * wake it but the watchdog. */
	int rc = rlt_join(b, NULL);
	if (rc < 0)
		return rlt_fail(-rc);
	rlt_join(k->task, NULL);
	return NULL;
}

static void test_stuck_workers_runnable_tasks_move(void **state)
{
	(void)state;
	ticker k = {0};
	capture cap;
	setenv("RINGLET_SLOW_MS", "100ms", 1);
	capture_start(&cap);
	rlt_config cfg = {.workers = 2};
	int rc = rlt_run(root_moved, &k, &cfg, NULL);
	char all[8192];
	capture_end(&cap, all, sizeof(all));
	unsetenv("RINGLET_SLOW_MS");
	assert_int_equal(rc, 0);
	printf("# ticker on the blocked worker: longest gap %.1f ms (blocked %d ms)\n",
	       (double)k.max_gap / 1e6, BLOCK_MS);
	assert_non_null(strstr(all, "in task \"blocker\""));
	assert_non_null(strstr(all, "1 runnable task handed to the other workers"));
	/* Without the watchdog the ticker waits the whole BLOCK_MS; with it,
	 * RINGLET_SLOW_MS and a check period or two. */
	assert_true(k.max_gap < (uint64_t)BLOCK_MS / 2 * RLT_NSEC_PER_MSEC);
}

/* A task woken from another thread while its worker is stuck: the wake
 * goes into the stuck worker's inbox (remote wakes do), and the watchdog
 * moves it to the other workers (sched/worker.c rlt__worker_move_inbox).
 * Its lateness is measured from the moment the plain thread set the
 * event; without the move it waits for the whole rest of the block. */
#define SET_AFTER_MS 200

typedef struct inboxed {
	rlt_event *ev;
	atomic_int waiting;
	int waited_on, ran_on; /* worker indexes */
	uint64_t set_at, woke_at;
	rlt_task *waiter;
} inboxed;

static void *waiter(void *arg)
{
	inboxed *x = arg;
	x->waited_on = rlt_worker_index();
	atomic_store(&x->waiting, 1);
	int rc = rlt_event_wait(x->ev);
	x->woke_at = rlt_now();
	x->ran_on = rlt_worker_index();
	return rc < 0 ? rlt_fail(rc) : NULL;
}

static void *setter_thread(void *arg)
{
	inboxed *x = arg;
	usleep(SET_AFTER_MS * 1000);
	x->set_at = rlt_now();
	rlt_event_set(x->ev); /* not a worker: into the waiter's worker's inbox */
	return NULL;
}

/* On worker 1 (pinned): the waiter (stealable) waits on the event here,
 * then a plain thread sets it while this task blocks the worker. */
static void *blocker_with_waiter(void *arg)
{
	inboxed *x = arg;
	rlt_sleep(100 * RLT_NSEC_PER_MSEC); /* worker 0 is asleep by now */
	rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER, .worker = 1, .name = "waiter"};
	x->waiter = rlt_spawn(waiter, x, &o);
	if (!x->waiter)
		return rlt_fail(errno);
	while (!atomic_load(&x->waiting)) /* it runs until it waits */
		rlt_yield();
	pthread_t th;
	if (pthread_create(&th, NULL, setter_thread, x) != 0)
		return rlt_fail(EAGAIN);
	usleep(BLOCK_MS * 1000);
	pthread_join(th, NULL);
	return NULL;
}

static void *root_inbox(void *arg)
{
	inboxed *x = arg;
	rlt_spawn_opts ob = rlt_test_on_worker(1);
	ob.name = "blocker";
	rlt_task *b = rlt_spawn(blocker_with_waiter, x, &ob);
	if (!b)
		return rlt_fail(errno);
	int rc = rlt_join(b, NULL);
	if (rc < 0)
		return rlt_fail(rc);
	rc = rlt_join(x->waiter, NULL);
	return rc < 0 ? rlt_fail(rc) : NULL;
}

static void test_task_woken_into_stuck_workers_inbox_moves(void **state)
{
	(void)state;
	inboxed x;
	memset(&x, 0, sizeof(x));
	x.ev = rlt_event_new();
	assert_non_null(x.ev);
	capture cap;
	setenv("RINGLET_SLOW_MS", "100ms", 1);
	capture_start(&cap);
	rlt_config cfg = {.workers = 2};
	int rc = rlt_run(root_inbox, &x, &cfg, NULL);
	char all[8192];
	capture_end(&cap, all, sizeof(all));
	unsetenv("RINGLET_SLOW_MS");
	rlt_event_free(x.ev);
	assert_int_equal(rc, 0);
	double late_ms = (double)(x.woke_at - x.set_at) / 1e6;
	printf("# task woken from a plain thread into the blocked worker's inbox: ran %.1f ms "
	       "after the wake, on worker %d (waited on worker %d; blocked %d ms, woken %d ms "
	       "in)\n",
	       late_ms, x.ran_on, x.waited_on, BLOCK_MS, SET_AFTER_MS);
	assert_non_null(strstr(all, "in task \"blocker\""));
	assert_int_equal(x.waited_on, 1); /* the premise: it waited on the stuck worker */
	assert_true(x.woke_at > x.set_at);
	/* Without the move: the rest of the block (~800 ms), on worker 1.
	 * With it: the next check of the watchdog (<= ~100 ms), elsewhere. */
	assert_int_equal(x.ran_on, 0);
	assert_true(late_ms < (BLOCK_MS - SET_AFTER_MS) / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stuck_worker_reported_while_stuck),
	    cmocka_unit_test(test_stuck_workers_runnable_tasks_move),
	    cmocka_unit_test(test_task_woken_into_stuck_workers_inbox_moves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
