/* Ready cleanups (include/ringlet/defer.h): `async with` in one line for
 * fds, readers and writers, mutexes, semaphores, futures, pools and heap
 * blocks; run at the block's end (rlt_defer_run), at the task's return,
 * and when the task is cancelled out of its function. Leaks would show in
 * the ASan build. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MS RLT_NSEC_PER_MSEC

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---- fds, and the block's end ---- */

static void *root_close(void *arg)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	size_t mark = rlt_defer_mark();
	assert_int_equal(rlt_defer_close(sv[0]), 0);
	char *heap = malloc(100);
	assert_int_equal(rlt_defer_free(heap), 0);
	assert_int_equal(rlt_defer_free(NULL), 0);
	assert_true(fd_open(sv[0]));
	assert_int_equal(rlt_defer_run(mark), 2);
	/* Closed: the peer sees the end. */
	char c;
	assert_int_equal(rlt_recv(sv[1], &c, 1, 0), 0);
	assert_int_equal(rlt_close(sv[1]), 0);
	return NULL;
}

static void test_defer_close_and_free_run_at_the_blocks_end(void **state)
{
	rlt_test_run(root_close, NULL);
}

/* ---- writer and reader: the writer's flush comes before the fd's close ---- */

static void *conversation(void *arg)
{
	int fd = (int)(intptr_t)arg;
	rlt_reader *r = rlt_reader_new(fd, 0);
	rlt_writer *w = rlt_writer_new(fd, 0);
	assert_non_null(r);
	assert_non_null(w);
	/* Deferred in this order, run in the reverse: flush+free w, free r,
	 * close fd. */
	assert_int_equal(rlt_defer_close(fd), 0);
	assert_int_equal(rlt_defer_reader_free(r), 0);
	assert_int_equal(rlt_defer_writer_close(w), 0);
	const char *line;
	assert_int_equal(rlt_reader_readline(r, &line), 6);
	assert_int_equal(rlt_writer_write(w, "world\n", 6), 6); /* buffered */
	return NULL;						/* the cleanup runs now */
}

static void *root_streams(void *arg)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	rlt_task *t = rlt_spawn(conversation, (void *)(intptr_t)sv[0], NULL);
	assert_int_equal(rlt_send_all(sv[1], "hello\n", 6, 0), 6);
	char buf[16];
	assert_int_equal(rlt_recv_exact(sv[1], buf, 6, 0), 6);
	assert_memory_equal(buf, "world\n", 6);
	assert_int_equal(rlt_recv(sv[1], buf, 1, 0), 0); /* then closed */
	assert_int_equal(rlt_join(t, NULL), 0);
	rlt_close(sv[1]);
	return NULL;
}

static void test_defer_writer_flushes_before_the_fd_closes_at_return(void **state)
{
	rlt_test_run(root_streams, NULL);
}

/* ---- lock and permit, given back when the holder is cancelled ---- */

typedef struct locks {
	rlt_mutex *m;
	rlt_sem *s;
	rlt_event *holding;
} locks;

static void *holder(void *arg)
{
	locks *l = arg;
	assert_int_equal(rlt_defer_lock(l->m), 0);
	assert_int_equal(rlt_defer_acquire(l->s), 0);
	rlt_event_set(l->holding);
	rlt_sleep(60 * RLT_NSEC_PER_SEC); /* cancelled here */
	return NULL;
}

static void *contender(void *arg)
{
	locks *l = arg;
	assert_int_equal(rlt_mutex_lock(l->m), 0);
	assert_int_equal(rlt_sem_acquire(l->s), 0);
	rlt_sem_release(l->s);
	rlt_mutex_unlock(l->m);
	return (void *)1;
}

static void *root_locks(void *arg)
{
	locks l = {rlt_mutex_new(), rlt_sem_new(1), rlt_event_new()};
	rlt_task *h = rlt_spawn(holder, &l, NULL);
	assert_int_equal(rlt_event_wait(l.holding), 0);
	assert_int_equal(rlt_sem_value(l.s), 0);
	rlt_task *c = rlt_spawn(contender, &l, NULL);
	for (int i = 0; i < 3000 && rlt_task_state(c, NULL, 0) != RLT_TASK_WAITING; i++)
		rlt_sleep(MS); /* until it waits for the lock (bounded) */
	assert_int_equal(rlt_task_state(c, NULL, 0), RLT_TASK_WAITING);
	assert_int_equal(rlt_cancel(h), 0);
	assert_int_equal(rlt_join(h, NULL), -ECANCELED);
	void *res;
	assert_int_equal(rlt_wait_for(c, 3 * RLT_NSEC_PER_SEC, &res), 0);
	assert_ptr_equal(res, (void *)1);
	assert_int_equal(rlt_sem_value(l.s), 1);
	assert_int_equal(rlt_mutex_free(l.m), 0);
	assert_int_equal(rlt_sem_free(l.s), 0);
	rlt_event_free(l.holding);

	/* Already held: only the release is deferred. */
	rlt_mutex *m = rlt_mutex_new();
	rlt_sem *s = rlt_sem_new(1);
	size_t mark = rlt_defer_mark();
	assert_int_equal(rlt_mutex_lock(m), 0);
	assert_int_equal(rlt_defer_unlock(m), 0);
	assert_int_equal(rlt_sem_acquire(s), 0);
	assert_int_equal(rlt_defer_release(s), 0);
	assert_int_equal(rlt_mutex_trylock(m), -EBUSY);
	assert_int_equal(rlt_defer_run(mark), 2);
	assert_int_equal(rlt_mutex_trylock(m), 0);
	rlt_mutex_unlock(m);
	assert_int_equal(rlt_sem_value(s), 1);
	rlt_mutex_free(m);
	rlt_sem_free(s);
	return NULL;
}

static void test_defer_lock_and_acquire_are_given_back_when_the_holder_is_cancelled(void **state)
{
	rlt_test_run(root_locks, NULL);
}

/* ---- a pool and its jobs ---- */

static void *slow_job(void *arg)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return arg;
}

static void *root_pool(void *arg)
{
	rlt_pool *p = rlt_pool_create(&(rlt_pool_config){.max_threads = 2});
	assert_non_null(p);
	rlt_future *f[4];
	size_t mark = rlt_defer_mark();
	assert_int_equal(rlt_defer_pool_shutdown(p), 0);
	for (int i = 0; i < 4; i++) {
		f[i] = rlt_pool_submit(p, slow_job, (void *)(intptr_t)i);
		assert_non_null(f[i]);
		/* Kept past the block: retained for the check below. */
		rlt_future_retain(f[i]);
		assert_int_equal(rlt_defer_future_release(f[i]), 0);
	}
	/* The block ends: the futures are released, the pool shut down once
	 * its queued jobs have run. */
	assert_int_equal(rlt_defer_run(mark), 5);
	for (int i = 0; i < 4; i++) {
		assert_true(rlt_future_done(f[i]));
		void *v;
		assert_int_equal(rlt_future_await(f[i], &v, 0), 0);
		assert_ptr_equal(v, (void *)(intptr_t)i);
		rlt_future_release(f[i]);
	}
	return NULL;
}

static void test_defer_pool_shutdown_waits_for_the_queued_jobs(void **state)
{
	rlt_test_run(root_pool, NULL);
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	assert_int_equal(rlt_defer_close(-1), -EINVAL);
	assert_int_equal(rlt_defer_reader_free(NULL), -EINVAL);
	assert_int_equal(rlt_defer_writer_close(NULL), -EINVAL);
	assert_int_equal(rlt_defer_lock(NULL), -EINVAL);
	assert_int_equal(rlt_defer_unlock(NULL), -EINVAL);
	assert_int_equal(rlt_defer_acquire(NULL), -EINVAL);
	assert_int_equal(rlt_defer_release(NULL), -EINVAL);
	assert_int_equal(rlt_defer_future_release(NULL), -EINVAL);
	assert_int_equal(rlt_defer_pool_shutdown(NULL), -EINVAL);
	/* A lock the task holds already: the error, nothing deferred. */
	rlt_mutex *m = rlt_mutex_new();
	size_t mark = rlt_defer_mark();
	assert_int_equal(rlt_defer_lock(m), 0);
	assert_int_equal(rlt_defer_lock(m), -EDEADLK);
	assert_int_equal(rlt_defer_run(mark), 1);
	assert_int_equal(rlt_mutex_free(m), 0);
	return NULL;
}

static void test_defer_ready_cleanups_check_their_arguments(void **state)
{
	rlt_test_run(root_errors, NULL);
	assert_int_equal(rlt_defer_close(0), -EPERM);
	assert_int_equal(rlt_defer_free(NULL), -EPERM);
	assert_int_equal(rlt_defer_lock(NULL), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defer_close_and_free_run_at_the_blocks_end),
	    cmocka_unit_test(test_defer_writer_flushes_before_the_fd_closes_at_return),
	    cmocka_unit_test(
		test_defer_lock_and_acquire_are_given_back_when_the_holder_is_cancelled),
	    cmocka_unit_test(test_defer_pool_shutdown_waits_for_the_queued_jobs),
	    cmocka_unit_test(test_defer_ready_cleanups_check_their_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
