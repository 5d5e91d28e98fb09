/*
 * Signals as something a task waits for (include/ringlet/signal.h says why
 * a handler and not signalfd).
 *
 * Each watcher has an eventfd and a count per signal. The handler, on
 * whichever thread the signal lands, walks the table of watchers, bumps
 * the count of every watcher of that signal and writes 1 to its eventfd; a
 * waiting task reads the eventfd with rlt_read (any loop policy), then
 * takes one count. The eventfd is only a wake-up: the counts are the truth,
 * so a wake-up that finds nothing (its count was taken by an earlier call)
 * just goes round, and a count bumped before the task reads is never lost
 * (the eventfd stays readable until read).
 *
 * The handler runs asynchronously, so it takes no lock: the table is an
 * array of atomic pointers. What keeps a watcher alive while a handler
 * looks at it is the in_handler counter: a handler increments it before it
 * loads a slot, and rlt_signal_close empties the slot and then waits for
 * in_handler to read 0 before it closes the eventfd and frees. Both sides
 * are sequentially consistent (a store then a load on each side, Dekker's
 * pattern): either the handler loaded the slot before it was emptied, and
 * then its increment is visible to the closer, which waits; or it loads
 * NULL. Without the wait, a handler could write to an fd number that was
 * closed and reused by something else.
 *
 * Installing and restoring dispositions is done under reg_lock, with a
 * reference count per signal: the first watcher of a signal saves the old
 * sigaction and installs ours, the last one puts the old one back. A slot
 * is published before the handler is installed, so the first occurrence
 * after rlt_signal_watch returns finds it.
 */
#include "ringlet/signal.h"

#include "ringlet/cancel.h"
#include "ringlet/io.h"
#include "ringlet/task.h"
#include "ringlet/time.h"

#include "io/fdgen.h"
#include "runtime/alloc.h"
#include "runtime/cancel.h"
#include "sched/sched.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_WATCHERS 128
#define NSIGNALS     65 /* signals 1..64 */

struct rlt_signal {
	uint64_t mask; /* bit signo-1: watched */
	int efd;
	int slot;
	atomic_uint hits[NSIGNALS]; /* arrived, not yet returned */
};

static _Atomic(rlt_signal *) slots[MAX_WATCHERS];
static atomic_int in_handler;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned refs[NSIGNALS];		    /* under reg_lock */
static struct sigaction previous[NSIGNALS]; /* under reg_lock: valid while refs > 0 */

static void on_signal(int sig)
{
	int saved = errno;
	atomic_fetch_add(&in_handler, 1); /* seq_cst: before any slot load (see top) */
	for (int i = 0; i < MAX_WATCHERS; i++) {
		rlt_signal *w = atomic_load(&slots[i]);
		if (!w || !(w->mask & (UINT64_C(1) << (sig - 1))))
			continue;
		/* the count first: a task woken by the write must find it */
		atomic_fetch_add_explicit(&w->hits[sig], 1, memory_order_release);
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof(one));
		(void)n; /* EAGAIN only at a count of 2^64-2: a wake-up is pending */
	}
	atomic_fetch_sub_explicit(&in_handler, 1, memory_order_release);
	errno = saved;
}

/* The signals a handler of ours may take. */
static bool watchable(int sig)
{
	switch (sig) {
	case SIGKILL:
	case SIGSTOP:
	case SIGSEGV:
	case SIGBUS:
	case SIGFPE:
	case SIGILL:
	case SIGTRAP:
	case SIGSYS:
		return false;
	}
	return sig >= 1 && sig < NSIGNALS && (sig < 32 || (sig >= SIGRTMIN && sig <= SIGRTMAX));
}

/* Drop w's references (signals of mask) and restore what they replaced. */
static void unref_signals(uint64_t mask)
{
	for (int sig = 1; sig < NSIGNALS; sig++)
		if ((mask & (UINT64_C(1) << (sig - 1))) && --refs[sig] == 0)
			sigaction(sig, &previous[sig], NULL);
}

rlt_signal *rlt_signal_watch(const sigset_t *set)
{
	uint64_t mask = 0;
	if (set) {
		for (int sig = 1; sig < NSIGNALS; sig++) {
			if (sigismember(set, sig) != 1)
				continue;
			if (!watchable(sig)) {
				errno = EINVAL;
				return NULL;
			}
			mask |= UINT64_C(1) << (sig - 1);
		}
	}
	if (!mask) {
		errno = EINVAL;
		return NULL;
	}
	rlt_signal *w = rlt__calloc(1, sizeof(*w));
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	w->mask = mask;
	for (int i = 0; i < NSIGNALS; i++)
		atomic_init(&w->hits[i], 0);
	/* Blocking: rlt_read suspends the task, never the worker (the epoll
	 * policy tries it with RWF_NOWAIT/O_NONBLOCK first). */
	w->efd = rlt__fd_new(eventfd(0, EFD_CLOEXEC));
	if (w->efd < 0) {
		int e = errno;
		rlt__free(w);
		errno = e == ENFILE ? EMFILE : e;
		return NULL;
	}

	pthread_mutex_lock(&reg_lock);
	w->slot = -1;
	for (int i = 0; i < MAX_WATCHERS && w->slot < 0; i++)
		if (!atomic_load_explicit(&slots[i], memory_order_relaxed))
			w->slot = i;
	int err = EMFILE;
	if (w->slot >= 0) {
		atomic_store(&slots[w->slot], w);
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		/* SA_ONSTACK: workers have an alternate stack (for the overflow
		 * report), so a signal landing on a small task stack does not
		 * push the kernel's frame onto it. */
		sa.sa_flags = SA_RESTART | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		uint64_t done = 0;
		err = 0;
		for (int sig = 1; sig < NSIGNALS && !err; sig++) {
			uint64_t bit = UINT64_C(1) << (sig - 1);
			if (!(mask & bit))
				continue;
			if (refs[sig] == 0 && sigaction(sig, &sa, &previous[sig]) < 0) {
				err = errno;
				break;
			}
			refs[sig]++;
			done |= bit;
		}
		if (err) {
			unref_signals(done);
			atomic_store(&slots[w->slot], NULL);
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (err) {
		while (atomic_load(&in_handler))
			sched_yield();
		rlt__close_fd(w->efd);
		rlt__free(w);
		errno = err;
		return NULL;
	}
	return w;
}

unsigned rlt_signal_pending(const rlt_signal *w, int signo)
{
	if (!w || signo < 1 || signo >= NSIGNALS)
		return 0;
	return atomic_load_explicit(&((rlt_signal *)w)->hits[signo], memory_order_acquire);
}

/* Take one pending signal, the lowest number first; 0 if none. */
static int take(rlt_signal *w)
{
	for (int sig = 1; sig < NSIGNALS; sig++) {
		if (!(w->mask & (UINT64_C(1) << (sig - 1))))
			continue;
		unsigned n = atomic_load_explicit(&w->hits[sig], memory_order_acquire);
		while (n) {
			if (atomic_compare_exchange_weak_explicit(&w->hits[sig], &n, n - 1,
								  memory_order_acquire,
								  memory_order_acquire))
				return sig;
		}
	}
	return 0;
}

int rlt_signal_next(rlt_signal *w, int64_t timeout_ns)
{
	if (!w)
		return -EINVAL;
	int sig = take(w);
	if (sig)
		return sig;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	/* The limit rides on rlt_read's I/O timeout, set to what is left
	 * before each read; the task's own setting comes back afterwards. */
	uint64_t deadline = timeout_ns > 0 ? rlt_now() + (uint64_t)timeout_ns : 0;
	int64_t saved = rlt_io_timeout();
	int rc;
	for (;;) {
		int64_t left = 0; /* no limit */
		if (deadline) {
			uint64_t now = rlt_now();
			if (now >= deadline) {
				rc = -ETIMEDOUT;
				break;
			}
			left = (int64_t)(deadline - now);
		}
		rlt_set_io_timeout(left);
		uint64_t v;
		ssize_t n = rlt_read(w->efd, &v, sizeof(v), -1);
		if (n >= 0) {
			sig = take(w);
			if (sig) {
				rc = sig;
				break;
			}
			continue; /* a wake-up for a count an earlier call took */
		}
		/* The eventfd is only a wake-up and the counts are the truth:
		 * after a failed read (the fault policy's -EINTR, -EAGAIN,
		 * -ENOMEM, -EIO, or -EINVAL from a read it cut short), look at
		 * them again and read again. */
		if (n == -EINTR || n == -EAGAIN || n == -ENOMEM || n == -EIO || n == -EINVAL)
			continue;
		/* -ETIMEDOUT: ours (seen at the top) or a deadline scope's */
		if (n == -ETIMEDOUT && deadline && !rlt__scope_expired(rlt__task_self()))
			continue;
		rc = (int)n;
		break;
	}
	rlt_set_io_timeout(saved);
	return rc;
}

void rlt_signal_close(rlt_signal *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&reg_lock);
	atomic_store(&slots[w->slot], NULL); /* seq_cst: before the in_handler load */
	unref_signals(w->mask);
	pthread_mutex_unlock(&reg_lock);
	/* A handler that loaded w before the slot was emptied is still
	 * running: let it finish with w (it takes a few instructions). */
	while (atomic_load(&in_handler))
		sched_yield();
	rlt__close_fd(w->efd);
	rlt__free(w);
}

int rlt_signal_wait(const sigset_t *set, int64_t timeout_ns)
{
	if (!rlt__task_self() && timeout_ns != 0)
		return -EPERM;
	rlt_signal *w = rlt_signal_watch(set);
	if (!w)
		return -errno;
	int rc = rlt_signal_next(w, timeout_ns);
	rlt_signal_close(w);
	return rc;
}

/* ---- graceful shutdown ---- */

typedef struct guard {
	rlt_signal *w;
	rlt_task *target; /* the task to cancel: alive until it has joined the guard */
	rlt_task *task;	  /* the guard task, joined by stop_guard */
} guard;

/* The second signal: die of it, as if nobody had caught it. */
static void die_of(int sig)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);
	/* a signal whose default action is not to terminate */
	_exit(128 + sig);
}

static void *guard_main(void *arg)
{
	guard *g = arg;
	int sig = rlt_signal_next(g->w, -1);
	if (sig <= 0)
		return NULL; /* stopped: the target returned */
	rlt_cancel(g->target);
	sig = rlt_signal_next(g->w, -1);
	if (sig > 0)
		die_of(sig);
	return NULL;
}

/* The target's cleanup: stop the guard, wait for it, stop watching. */
static void stop_guard(void *arg)
{
	guard *g = arg;
	if (g->task) {
		rlt_cancel(g->task);
		rlt_join(g->task, NULL);
	}
	rlt_signal_close(g->w);
	rlt__free(g);
}

int rlt_cancel_on_signal(const sigset_t *set)
{
	rlt_task *self = rlt__task_self();
	if (!self)
		return -EPERM;
	sigset_t dflt;
	if (!set) {
		sigemptyset(&dflt);
		sigaddset(&dflt, SIGINT);
		sigaddset(&dflt, SIGTERM);
		set = &dflt;
	}
	guard *g = rlt__calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->target = self;
	g->w = rlt_signal_watch(set);
	if (!g->w) {
		int e = errno;
		rlt__free(g);
		return -e;
	}
	size_t mark = rlt_defer_mark();
	int rc = rlt_defer(stop_guard, g);
	if (rc < 0) {
		rlt_signal_close(g->w);
		rlt__free(g);
		return rc;
	}
	g->task = rlt_spawn(guard_main, g, &(rlt_spawn_opts){.name = "signal-guard"});
	if (!g->task) {
		rc = -errno;
		rlt_defer_run(mark); /* stop_guard without a task: does not suspend */
		return rc;
	}
	return 0;
}
