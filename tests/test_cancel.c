/* Cancellation: a task cancelled from another worker in the middle of
 * every kind of wait (each I/O operation with its buffer on the cancelled
 * task's stack, sleep, future, join, channel, mutex, event, semaphore,
 * condition, wait group, pool job, child process), before it started,
 * between waits, under a shield, from a plain thread; what its joiner
 * sees; and that no data is lost to a cancelled operation. */
#include "tests/rlt_test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS RLT_NSEC_PER_MSEC

/* Yield until t waits on something (what it waits on goes to what), at
 * most 5 s: the cancellation must hit a wait in progress. */
static void until_waiting(rlt_task *t, char *what, size_t len)
{
	uint64_t end = rlt_now() + 5000 * MS;
	while (rlt_task_state(t, what, len) != RLT_TASK_WAITING) {
		assert_true(rlt_now() < end);
		rlt_yield();
	}
}

static void run2(rlt_task_fn fn, void *arg)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(fn, arg, &cfg, NULL), 0);
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	rlt_test_assert_ok(fl);
	assert_int_equal(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

/* Fill fd (a pipe or a socket) until it would block; returns the bytes. */
static size_t fill(int fd)
{
	static char junk[65536];
	size_t total = 0;
	set_nonblock(fd, true);
	for (;;) {
		ssize_t n = write(fd, junk, sizeof(junk));
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
		total += (size_t)n;
	}
	set_nonblock(fd, false);
	return total;
}

/* Read everything there is from fd without blocking. */
static size_t drain(int fd)
{
	static char sink[65536];
	size_t total = 0;
	set_nonblock(fd, true);
	ssize_t n;
	while ((n = read(fd, sink, sizeof(sink))) > 0)
		total += (size_t)n;
	set_nonblock(fd, false);
	return total;
}

/* ---- every I/O operation, cancelled in flight ---- */

enum op {
	OP_READ,
	OP_READV,
	OP_RECV,
	OP_WRITE,
	OP_WRITEV,
	OP_SEND,
	OP_ACCEPT,
	OP_CONNECT,
	OP_POLL,
	OP_WAITID,
	OP_COUNT
};

static const char *const op_what[OP_COUNT] = {"io read",   "io readv", "io recv",   "io write",
					      "io writev", "io send",  "io accept", "io connect",
					      "io poll",   "io waitid"};

typedef struct victim {
	enum op op;
	int fd;
	const struct sockaddr *addr;
	socklen_t addrlen;
	pid_t pid;
	int rc; /* what the operation returned */
	/* Written by the victim after its op: proves the stack frame is live. */
	unsigned char canary;
} victim;

static void *victim_main(void *arg)
{
	victim *v = arg;
	/* The buffers live on this task's stack: ASan reports a write into
	 * them after this frame is gone. */
	unsigned char buf[4096];
	memset(buf, 0xab, sizeof(buf));
	struct iovec iov = {buf, sizeof(buf)};
	siginfo_t si;
	switch (v->op) {
	case OP_READ:
		v->rc = (int)rlt_read(v->fd, buf, sizeof(buf), -1);
		break;
	case OP_READV:
		v->rc = (int)rlt_readv(v->fd, &iov, 1, -1);
		break;
	case OP_RECV:
		v->rc = (int)rlt_recv(v->fd, buf, sizeof(buf), 0);
		break;
	case OP_WRITE:
		v->rc = (int)rlt_write(v->fd, buf, sizeof(buf), -1);
		break;
	case OP_WRITEV:
		v->rc = (int)rlt_writev(v->fd, &iov, 1, -1);
		break;
	case OP_SEND:
		v->rc = (int)rlt_send(v->fd, buf, sizeof(buf), 0);
		break;
	case OP_ACCEPT:
		v->rc = rlt_accept(v->fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case OP_CONNECT:
		v->rc = rlt_connect(v->fd, v->addr, v->addrlen);
		break;
	case OP_POLL:
		v->rc = rlt_poll(v->fd, POLLIN);
		break;
	case OP_WAITID:
		v->rc = rlt_waitid(P_PID, (unsigned)v->pid, &si, WEXITED);
		break;
	case OP_COUNT:
		break;
	}
	/* Read nothing into the buffer after a cancel: it is untouched. */
	if (v->rc == -ECANCELED && (v->op == OP_READ || v->op == OP_READV || v->op == OP_RECV))
		for (size_t i = 0; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xab);
	v->canary = 1;
	return NULL;
}

static int listener(struct sockaddr_in *sa, int backlog)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rlt_test_assert_ok(fd);
	sa->sin_family = AF_INET;
	sa->sin_port = 0;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	socklen_t len = sizeof(*sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
	return fd;
}

static void *cancel_each_op(void *arg)
{
	(void)arg;
	for (int op = 0; op < OP_COUNT; op++) {
		victim v = {.op = (enum op)op, .fd = -1};
		int p[2] = {-1, -1}, sv[2] = {-1, -1}, lfd = -1, filler[8];
		int nfill = 0;
		size_t prefilled = 0;
		struct sockaddr_in sa;
		switch (v.op) {
		case OP_READ:
		case OP_READV:
		case OP_POLL:
			assert_int_equal(pipe2(p, O_CLOEXEC), 0);
			v.fd = p[0];
			break;
		case OP_WRITE:
		case OP_WRITEV:
			assert_int_equal(pipe2(p, O_CLOEXEC), 0);
			prefilled = fill(p[1]);
			v.fd = p[1];
			break;
		case OP_RECV:
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			v.fd = sv[0];
			break;
		case OP_SEND:
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			prefilled = fill(sv[0]);
			v.fd = sv[0];
			break;
		case OP_ACCEPT:
			lfd = listener(&sa, 8);
			v.fd = lfd;
			break;
		case OP_CONNECT: {
			/* A listener whose accept queue is full drops SYNs: a
			 * connect to it waits (retransmitting) until cancelled. */
			lfd = listener(&sa, 0);
			for (; nfill < 8; nfill++) {
				filler[nfill] =
				    socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
				connect(filler[nfill], (struct sockaddr *)&sa, sizeof(sa));
			}
			v.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			v.addr = (struct sockaddr *)&sa;
			v.addrlen = sizeof(sa);
			break;
		}
		case OP_WAITID:
			v.pid = fork();
			assert_true(v.pid >= 0);
			if (v.pid == 0) {
				pause();
				_exit(0);
			}
			break;
		case OP_COUNT:
			break;
		}
		rlt_task *t = rlt_test_spawn_on(victim_main, &v, 1);
		char what[32];
		uint64_t end = rlt_now() + 5000 * MS;
		int st;
		while ((st = rlt_task_state(t, what, sizeof(what))) != RLT_TASK_WAITING &&
		       st != RLT_TASK_DONE) {
			assert_true(rlt_now() < end);
			rlt_yield();
		}
		if (st == RLT_TASK_DONE) {
			/* Only an operation the loop cannot wait for may finish:
			 * waitid under epoll is answered at once. */
			assert_int_equal(op, OP_WAITID);
			assert_int_equal(rlt_join(t, NULL), 0);
			assert_int_equal(v.rc, -EOPNOTSUPP);
		} else {
			assert_string_equal(what, op_what[op]);
			assert_int_equal(rlt_cancel(t), 0);
			/* The joiner learns the task was cancelled. */
			assert_int_equal(rlt_join(t, NULL), -ECANCELED);
			if (v.op == OP_CONNECT)
				assert_true(v.rc == -ECANCELED || v.rc == -ETIMEDOUT);
			else
				assert_int_equal(v.rc, -ECANCELED);
		}
		assert_int_equal(v.canary, 1);
		/* Nothing was lost to, or done by, the cancelled operation. */
		switch (v.op) {
		case OP_READ:
		case OP_READV:
		case OP_POLL: {
			assert_int_equal(write(p[1], "abc", 3), 3);
			char got[8];
			assert_int_equal(read(p[0], got, sizeof(got)), 3);
			assert_memory_equal(got, "abc", 3);
			break;
		}
		case OP_WRITE:
		case OP_WRITEV:
			assert_int_equal(drain(p[0]), prefilled);
			break;
		case OP_RECV: {
			assert_int_equal(send(sv[1], "xyz", 3, 0), 3);
			char got[8];
			assert_int_equal(recv(sv[0], got, sizeof(got), 0), 3);
			break;
		}
		case OP_SEND:
			assert_int_equal(drain(sv[1]), prefilled);
			break;
		case OP_ACCEPT: {
			/* The listener still works: a client gets accepted. */
			int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
			int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			rlt_test_assert_ok(a);
			close(a);
			close(c);
			break;
		}
		case OP_WAITID:
			kill(v.pid, SIGKILL);
			assert_int_equal(waitpid(v.pid, NULL, 0), v.pid);
			break;
		default:
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i] >= 0)
				close(p[i]);
			if (sv[i] >= 0)
				close(sv[i]);
		}
		for (int i = 0; i < nfill; i++)
			close(filler[i]);
		if (lfd >= 0)
			close(lfd);
		if (v.op == OP_CONNECT)
			close(v.fd);
	}
	return NULL;
}

static void test_every_io_operation_cancelled_in_flight_from_another_worker(void **state)
{
	(void)state;
	run2(cancel_each_op, NULL);
}

/* ---- the other waits ---- */

enum wait {
	W_SLEEP,
	W_FUTURE,
	W_JOIN,
	W_CHAN,
	W_CHAN_SEND,
	W_MUTEX,
	W_EVENT,
	W_SEM,
	W_COND,
	W_WG,
	W_JOB,
	W_YIELD_LOOP,
	W_COUNT
};

typedef struct waits {
	rlt_future *f;
	rlt_task *sleeper;
	rlt_chan *ch;
	rlt_mutex *m;
	rlt_event *ev;
	rlt_sem *sem;
	rlt_cond *cond;
	rlt_waitgroup *wg;
	int job_pipe[2];
	atomic_int job_freed;
	atomic_bool spinning;
} waits;

static void *sleep_long(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)rlt_sleep(10000 * MS);
}

/* A blocking job: waits until its pipe has a byte. Its result is malloc'ed,
 * so a discarded result that is not freed shows under ASan. */
static void *job_blocks(void *arg)
{
	waits *w = arg;
	char c;
	assert_int_equal(read(w->job_pipe[0], &c, 1), 1);
	return malloc(32);
}

static void job_discard(void *arg, void *result)
{
	waits *w = arg;
	free(result);
	atomic_store(&w->job_freed, 1);
}

typedef struct waiter_arg {
	enum wait kind;
	waits *w;
	int rc;
} waiter_arg;

static void *waiter_main(void *arg)
{
	waiter_arg *a = arg;
	waits *w = a->w;
	void *v;
	switch (a->kind) {
	case W_SLEEP:
		a->rc = rlt_sleep(10000 * MS);
		break;
	case W_FUTURE:
		a->rc = rlt_future_await(w->f, &v, -1);
		break;
	case W_JOIN:
		a->rc = rlt_join(w->sleeper, NULL);
		break;
	case W_CHAN:
		a->rc = rlt_chan_recv(w->ch, &v);
		break;
	case W_CHAN_SEND:
		a->rc = rlt_chan_send(w->ch, (void *)2); /* the channel is full */
		break;
	case W_MUTEX:
		a->rc = rlt_mutex_lock(w->m);
		break;
	case W_EVENT:
		a->rc = rlt_event_wait(w->ev);
		break;
	case W_SEM:
		a->rc = rlt_sem_acquire(w->sem);
		break;
	case W_COND:
		assert_int_equal(rlt_mutex_lock(w->m), 0);
		a->rc = rlt_cond_wait(w->cond, w->m);
		/* Whatever the outcome, the mutex is ours again. */
		assert_int_equal(rlt_mutex_unlock(w->m), 0);
		break;
	case W_WG:
		a->rc = rlt_waitgroup_wait(w->wg);
		break;
	case W_JOB:
		a->rc = rlt_run_blocking_timeout(NULL, job_blocks, w, &v, -1, job_discard);
		break;
	case W_YIELD_LOOP:
		/* A task that only yields is cancelled at a yield. */
		atomic_store(&w->spinning, true);
		for (;;) {
			int rc = rlt_yield();
			if (rc) {
				a->rc = rc;
				break;
			}
		}
		break;
	case W_COUNT:
		break;
	}
	return NULL;
}

static const char *const wait_what[W_COUNT] = {
    "sleep", "future",	  "join",      "channel recv", "channel send", "mutex",
    "event", "semaphore", "condition", "waitgroup",    "pool job",     ""};

static void *cancel_each_wait(void *arg)
{
	(void)arg;
	for (int k = 0; k < W_COUNT; k++) {
		waits w;
		memset(&w, 0, sizeof(w));
		w.f = rlt_future_new();
		w.ch = rlt_chan_new(1);
		w.m = rlt_mutex_new();
		w.ev = rlt_event_new();
		w.sem = rlt_sem_new(0);
		w.cond = rlt_cond_new();
		w.wg = rlt_waitgroup_new();
		assert_int_equal(pipe2(w.job_pipe, O_CLOEXEC), 0);
		assert_int_equal(rlt_waitgroup_add(w.wg, 1), 0);
		if (k == W_MUTEX)
			assert_int_equal(rlt_mutex_lock(w.m), 0); /* held by us */
		if (k == W_CHAN_SEND)
			assert_int_equal(rlt_chan_send(w.ch, (void *)1), 0); /* full */
		if (k == W_JOIN)
			w.sleeper = rlt_test_spawn_on(sleep_long, NULL, 0);
		waiter_arg a = {.kind = (enum wait)k, .w = &w, .rc = 1};
		rlt_task *t = rlt_test_spawn_on(waiter_main, &a, 1);
		if (k == W_YIELD_LOOP) {
			while (!atomic_load(&w.spinning))
				rlt_yield();
		} else {
			char what[32];
			until_waiting(t, what, sizeof(what));
			assert_string_equal(what, wait_what[k]);
		}
		assert_int_equal(rlt_cancel(t), 0);
		assert_int_equal(rlt_join(t, NULL), -ECANCELED);
		assert_int_equal(a.rc, -ECANCELED);
		/* Each primitive still works after a waiter left it. */
		switch (k) {
		case W_JOIN: {
			/* Joining was cancelled: as in asyncio, the joined task
			 * was cancelled with its joiner, and the handle is gone. */
			break;
		}
		case W_FUTURE: {
			void *v;
			assert_int_equal(rlt_future_set(w.f, (void *)7), 0);
			assert_int_equal(rlt_future_await(w.f, &v, -1), 0);
			assert_ptr_equal(v, (void *)7);
			break;
		}
		case W_CHAN: {
			void *v;
			assert_int_equal(rlt_chan_send(w.ch, (void *)5), 0);
			assert_int_equal(rlt_chan_recv(w.ch, &v), 0);
			assert_ptr_equal(v, (void *)5);
			break;
		}
		case W_CHAN_SEND: {
			/* The cancelled send left nothing behind: only our value. */
			void *v;
			assert_int_equal(rlt_chan_len(w.ch), 1);
			assert_int_equal(rlt_chan_recv(w.ch, &v), 0);
			assert_ptr_equal(v, (void *)1);
			break;
		}
		case W_MUTEX:
			assert_int_equal(rlt_mutex_unlock(w.m), 0);
			assert_int_equal(rlt_mutex_lock(w.m), 0);
			assert_int_equal(rlt_mutex_unlock(w.m), 0);
			break;
		case W_SEM:
			assert_int_equal(rlt_sem_release(w.sem), 0);
			assert_int_equal(rlt_sem_acquire(w.sem), 0);
			break;
		case W_JOB: {
			/* The job still runs: let it finish; its late result is
			 * handed to the discard callback (freed: no leak). */
			assert_int_equal(write(w.job_pipe[1], "x", 1), 1);
			uint64_t end = rlt_now() + 5000 * MS;
			while (!atomic_load(&w.job_freed)) {
				assert_true(rlt_now() < end);
				rlt_sleep(MS);
			}
			break;
		}
		default:
			break;
		}
		rlt_future_release(w.f);
		assert_int_equal(rlt_chan_free(w.ch), 0);
		assert_int_equal(rlt_mutex_free(w.m), 0);
		assert_int_equal(rlt_event_free(w.ev), 0);
		assert_int_equal(rlt_sem_free(w.sem), 0);
		assert_int_equal(rlt_cond_free(w.cond), 0);
		assert_int_equal(rlt_waitgroup_done(w.wg), 0);
		assert_int_equal(rlt_waitgroup_free(w.wg), 0);
		close(w.job_pipe[0]);
		close(w.job_pipe[1]);
	}
	return NULL;
}

static void test_every_wait_cancelled_from_another_worker(void **state)
{
	(void)state;
	run2(cancel_each_wait, NULL);
}

/* ---- when it comes, and what the joiner sees ---- */

static atomic_int ran;

static void *mark_ran(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return (void *)1;
}

static void *edge_triggered(void *arg)
{
	(void)arg;
	/* The pending cancel is taken by the first suspension point only. */
	assert_int_equal(rlt_cancel(rlt_current()), 0);
	assert_int_equal(rlt_cancelled(), 1);
	assert_int_equal(rlt_sleep(MS), -ECANCELED);
	assert_int_equal(rlt_sleep(MS), 0);
	assert_int_equal(rlt_yield(), 0);
	return (void *)9;
}

static void *uncancelled(void *arg)
{
	(void)arg;
	assert_int_equal(rlt_sleep(10000 * MS), -ECANCELED);
	assert_int_equal(rlt_uncancel(), 1);
	assert_int_equal(rlt_cancelled(), 0);
	return (void *)3;
}

static void *failing(void *arg)
{
	(void)arg;
	return rlt_fail(-EIO);
}

static void *timing(void *arg)
{
	(void)arg;
	/* Cancelled before it ever runs: it never does. */
	atomic_store(&ran, 0);
	rlt_task *t = rlt_spawn(mark_ran, NULL, NULL);
	assert_int_equal(rlt_cancel(t), 0);
	void *res = (void *)77;
	assert_int_equal(rlt_join(t, &res), -ECANCELED);
	assert_null(res);
	assert_int_equal(atomic_load(&ran), 0);
	/* Cancelling a finished task says so. */
	t = rlt_spawn(mark_ran, NULL, NULL);
	while (rlt_task_state(t, NULL, 0) != RLT_TASK_DONE)
		rlt_yield();
	assert_int_equal(rlt_cancel(t), -EALREADY);
	assert_int_equal(rlt_join(t, &res), 0);
	assert_ptr_equal(res, (void *)1);
	assert_int_equal(rlt_cancel(NULL), -EINVAL);
	/* Edge-triggered; a joiner sees a task that got a cancellation. */
	t = rlt_spawn(edge_triggered, NULL, NULL);
	assert_int_equal(rlt_join(t, &res), -ECANCELED);
	assert_ptr_equal(res, (void *)9);
	/* ... unless it took it back. */
	t = rlt_test_spawn_on(uncancelled, NULL, 1);
	until_waiting(t, NULL, 0);
	rlt_cancel(t);
	assert_int_equal(rlt_join(t, &res), 0);
	assert_ptr_equal(res, (void *)3);
	/* rlt_fail reaches the joiner. */
	t = rlt_spawn(failing, NULL, NULL);
	assert_int_equal(rlt_join(t, NULL), -EIO);
	/* Outside a task. */
	return NULL;
}

static void test_cancel_before_start_after_end_edge_triggered_and_uncancel(void **state)
{
	(void)state;
	run2(timing, NULL);
	assert_int_equal(rlt_uncancel(), -EPERM);
	assert_int_equal(rlt_cancelled(), -EPERM);
}

/* ---- shields ---- */

static void *shielded(void *arg)
{
	int *stage = arg;
	rlt_scope sh;
	assert_int_equal(rlt_shield_enter(&sh), 0);
	*stage = 1;
	/* Cancelled during this sleep, which goes on regardless. */
	assert_int_equal(rlt_sleep(30 * MS), 0);
	*stage = 2;
	assert_int_equal(rlt_scope_leave(&sh), 0);
	/* The deferred cancellation arrives at the next suspension point. */
	assert_int_equal(rlt_sleep(10000 * MS), -ECANCELED);
	*stage = 3;
	return NULL;
}

static void *shield_root(void *arg)
{
	(void)arg;
	int stage = 0;
	rlt_task *t = rlt_test_spawn_on(shielded, &stage, 1);
	until_waiting(t, NULL, 0);
	assert_int_equal(rlt_cancel(t), 0);
	assert_int_equal(rlt_join(t, NULL), -ECANCELED);
	assert_int_equal(stage, 3);
	return NULL;
}

static void test_a_shield_defers_cancellation_to_its_end(void **state)
{
	(void)state;
	run2(shield_root, NULL);
}

/* ---- a joiner cancelled while joining takes the joined task with it ---- */

static void *join_forever(void *arg)
{
	rlt_task *sleeper = arg;
	return (void *)(intptr_t)rlt_join(sleeper, NULL);
}

static void *joiner_root(void *arg)
{
	(void)arg;
	rlt_task *s = rlt_test_spawn_on(sleep_long, NULL, 0);
	rlt_task *j = rlt_test_spawn_on(join_forever, s, 1);
	until_waiting(j, NULL, 0);
	until_waiting(s, NULL, 0);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_cancel(j), 0);
	void *res;
	assert_int_equal(rlt_join(j, &res), -ECANCELED);
	assert_int_equal((int)(intptr_t)res, -ECANCELED);
	assert_true(rlt_now() - t0 < 5000 * MS); /* the sleeper did not sleep on */
	return NULL;
}

static void test_cancelling_a_joiner_cancels_the_joined_task(void **state)
{
	(void)state;
	run2(joiner_root, NULL);
}

/* ---- a joined task that is at a yield ----
 *
 * The fault matrix's intermittent hang (docs/RELIABILITY.md): the root,
 * cancelled by the harness after a fault, cancelled the client it was
 * joining; the client was runnable at an rlt_yield() between two sends,
 * and that yield returned the cancellation. The test ignored the return
 * value, so the client went on into a recv its server never answered,
 * and the root's join waited for ever. No cancellation was lost by the
 * runtime: it is edge-triggered (asyncio's), one rlt_cancel() makes one
 * suspension point return -ECANCELED, and rlt_yield() is one. This pins
 * the contract down, one worker, deterministically: the join's cancel
 * reaches a task at a yield as that yield's -ECANCELED, once; a later wait
 * is not cancelled (ignoring the yield's result drops the cancellation). */
typedef struct at_yield {
	int yields;	 /* rlt_yield() calls that returned 0 */
	int yield_rc;	 /* the one that did not */
	int later_wait;	 /* a wait after it */
	int middle_join; /* the joiner's rlt_join */
} at_yield;

static void *yielder(void *arg)
{
	at_yield *y = arg;
	int rc;
	while ((rc = rlt_yield()) == 0)
		y->yields++;
	y->yield_rc = rc;
	rlt_event *never = rlt_event_new();
	assert_non_null(never);
	y->later_wait = rlt_event_wait_timeout(never, 20 * MS);
	rlt_event_free(never);
	return NULL;
}

static void *joins_yielder(void *arg)
{
	at_yield *y = arg;
	rlt_task *t = rlt_spawn(yielder, y, NULL);
	assert_non_null(t);
	y->middle_join = rlt_join(t, NULL);
	return NULL;
}

static void *at_yield_root(void *arg)
{
	at_yield *y = arg;
	rlt_task *m = rlt_spawn(joins_yielder, y, NULL);
	assert_non_null(m);
	/* One worker: the joiner is in its join and the yielder queued at a
	 * yield once it has yielded a few times. */
	while (y->yields < 3)
		assert_int_equal(rlt_yield(), 0);
	assert_int_equal(rlt_cancel(m), 0);
	/* It returned, having received a cancellation: -ECANCELED. */
	assert_int_equal(rlt_join(m, NULL), -ECANCELED);
	return NULL;
}

static void test_a_joiners_cancel_reaches_a_task_at_a_yield_once(void **state)
{
	(void)state;
	at_yield y = {0};
	rlt_test_run1(at_yield_root, &y);
	assert_true(y.yields >= 3);
	assert_int_equal(y.yield_rc, -ECANCELED);
	assert_int_equal(y.later_wait, -ETIMEDOUT); /* edge-triggered: delivered once */
	/* The join was cancelled, cancelled the yielder, waited for it. */
	assert_int_equal(y.middle_join, -ECANCELED);
}

/* ---- from a plain thread ---- */

static rlt_event *thread_done; /* set by the thread (any thread may set it) */

static void *cancel_from_thread(void *arg)
{
	rlt_task *t = arg;
	/* The thread does not know when the task waits: it keeps asking
	 * until the task has finished (cancelling a finished task is
	 * -EALREADY; the root keeps the handle until we are done). */
	while (rlt_cancel(t) == 0 && rlt_task_state(t, NULL, 0) != RLT_TASK_DONE)
		sched_yield();
	rlt_event_set(thread_done);
	return NULL;
}

static void *thread_root(void *arg)
{
	(void)arg;
	rlt_task *t = rlt_test_spawn_on(sleep_long, NULL, 1);
	pthread_t th;
	thread_done = rlt_event_new();
	assert_non_null(thread_done);
	assert_int_equal(pthread_create(&th, NULL, cancel_from_thread, t), 0);
	/* Waiting, not spinning: under valgrind, which runs one thread at a
	 * time, a root that yields in a loop kept the thread from running
	 * past the 5 s bound. */
	assert_int_equal(rlt_event_wait_timeout(thread_done, 5000 * MS), 0);
	void *res = (void *)1;
	assert_int_equal(rlt_join(t, &res), -ECANCELED);
	/* Cancelled in its sleep, or before it ever ran (result NULL). */
	assert_true((int)(intptr_t)res == -ECANCELED || res == NULL);
	pthread_join(th, NULL);
	assert_int_equal(rlt_event_free(thread_done), 0);
	return NULL;
}

static void test_cancel_from_a_plain_thread(void **state)
{
	(void)state;
	run2(thread_root, NULL);
}

/* ---- no data lost: cancels at random points of a stream ---- */

typedef struct stream {
	int fd;
	size_t got;
	int cancels;
} stream;

static void *reader(void *arg)
{
	stream *s = arg;
	char buf[512];
	for (;;) {
		ssize_t n = rlt_recv(s->fd, buf, sizeof(buf), 0);
		if (n == -ECANCELED) {
			s->cancels++;
			continue; /* handled: keep reading */
		}
		rlt_test_assert_ok(n);
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal((unsigned char)buf[i],
					 (unsigned char)((s->got + (size_t)i) % 251));
		s->got += (size_t)n;
	}
	rlt_uncancel();
	return NULL;
}

static void *stream_root(void *arg)
{
	(void)arg;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	stream s = {.fd = sv[0]};
	rlt_task *r = rlt_test_spawn_on(reader, &s, 1);
	until_waiting(r, NULL, 0); /* cancelled before it started, it would not run */
	size_t total = (size_t)RLT_TEST_SCALE(2000) * 256;
	unsigned char chunk[256];
	uint32_t rng = 12345;
	int asked = 0;
	for (size_t off = 0; off < total; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (unsigned char)((off + i) % 251);
		assert_int_equal(rlt_send(sv[1], chunk, sizeof(chunk), 0), (ssize_t)sizeof(chunk));
		rng = rng * 1103515245u + 12345u;
		if ((rng >> 16) % 4 == 0) {
			rlt_cancel(r);
			asked++;
		}
		if ((rng >> 20) % 8 == 0)
			rlt_yield();
	}
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(rlt_join(r, NULL), 0);
	/* Every byte arrived, in order, whatever was cancelled. */
	assert_int_equal(s.got, total);
	assert_true(s.cancels <= asked);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void test_random_cancels_lose_no_byte_of_a_stream(void **state)
{
	(void)state;
	run2(stream_root, NULL);
}

/* ---- file operations: a pending cancel stops them before they start ---- */

static void *file_ops(void *arg)
{
	(void)arg;
	char path[] = "/tmp/ringlet-cancel-XXXXXX";
	int fd = mkstemp(path);
	rlt_test_assert_ok(fd);
	unlink(path);
	char dir[] = "/tmp/ringlet-cancel-dir-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rlt_test_assert_ok(dfd);
	struct statx stx;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	for (int i = 0; i < 5; i++) {
		rlt_cancel(rlt_current());
		int rc = 0;
		switch (i) {
		case 0:
			rc = rlt_openat(dfd, "created", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
			break;
		case 1:
			rc = rlt_fsync(fd, 0);
			break;
		case 2:
			rc = rlt_statx(dfd, "", AT_EMPTY_PATH, STATX_SIZE, &stx);
			break;
		case 3:
			rc = (int)rlt_write(fd, "data", 4, 0);
			break;
		case 4:
			rc = rlt_shutdown(sv[0], SHUT_WR);
			break;
		}
		assert_int_equal(rc, -ECANCELED);
	}
	/* Nothing was done: no file created, nothing written. */
	struct stat st;
	assert_int_equal(fstatat(dfd, "created", &st, 0), -1);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* Not shut down either: the peer can still read what we send. */
	assert_int_equal(send(sv[0], "k", 1, 0), 1);
	char k;
	assert_int_equal(recv(sv[1], &k, 1, 0), 1);
	close(sv[0]);
	close(sv[1]);
	/* rlt_close is a suspension point too; the fd stays open then. */
	rlt_cancel(rlt_current());
	assert_int_equal(rlt_close(fd), -ECANCELED);
	assert_int_equal(rlt_close(fd), 0);
	close(dfd);
	rmdir(dir);
	rlt_uncancel();
	return NULL;
}

static void test_a_pending_cancel_stops_file_operations_before_they_start(void **state)
{
	(void)state;
	run2(file_ops, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_io_operation_cancelled_in_flight_from_another_worker),
	    cmocka_unit_test(test_every_wait_cancelled_from_another_worker),
	    cmocka_unit_test(test_cancel_before_start_after_end_edge_triggered_and_uncancel),
	    cmocka_unit_test(test_a_shield_defers_cancellation_to_its_end),
	    cmocka_unit_test(test_cancelling_a_joiner_cancels_the_joined_task),
	    cmocka_unit_test(test_a_joiners_cancel_reaches_a_task_at_a_yield_once),
	    cmocka_unit_test(test_cancel_from_a_plain_thread),
	    cmocka_unit_test(test_random_cancels_lose_no_byte_of_a_stream),
	    cmocka_unit_test(test_a_pending_cancel_stops_file_operations_before_they_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
