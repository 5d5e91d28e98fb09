#ifndef RINGLET_SIGNAL_H
#define RINGLET_SIGNAL_H

#include "common.h"

#include <signal.h>
/* sigset_t is POSIX: <signal.h> declares it only with a feature macro
 * (_POSIX_C_SOURCE, _GNU_SOURCE...), which a strict C11 program (-std=c11)
 * does not define. glibc keeps it in a header of its own that needs none. */
#if defined(__has_include)
#if __has_include(<bits/types/sigset_t.h>)
#include <bits/types/sigset_t.h>
#endif
#endif
#include <stdint.h>

RLT_EXTERN_C_BEGIN

/*
 * Signals as something a task waits for: asyncio's loop.add_signal_handler,
 * tokio::signal.
 *
 *	sigset_t set;
 *	sigemptyset(&set);
 *	sigaddset(&set, SIGHUP);
 *	rlt_signal *w = rlt_signal_watch(&set);   // from now on nothing is lost
 *	while (rlt_signal_next(w, -1) == SIGHUP)  // suspends this task only
 *		reload_config();
 *	rlt_signal_close(w);
 *
 * How it works. The first watcher of a signal installs a process-wide
 * handler for it (sigaction, SA_RESTART | SA_ONSTACK) that counts the
 * signal in every watcher of it and writes to each one's eventfd; a task
 * in rlt_signal_next() reads its eventfd with ringlet's I/O, so it works
 * under every loop policy and suspends only that task. The last watcher's
 * close puts back the disposition that was there before (the default
 * action, SIG_IGN or your handler). A signal nobody watches is therefore
 * handled exactly as if ringlet were not there: an unwatched Ctrl-C still
 * ends the program.
 *
 * Why a handler and not signalfd(2): signalfd sees a signal only if it is
 * blocked in every thread of the process (worker, pool, and any thread a
 * library starts: one thread with it unblocked and the signal takes the
 * default action there), and a read of it sees only the reading thread's
 * own pending signals besides the process's: raise() in a task on worker 1
 * would never reach a watcher reading on worker 0. A handler catches the
 * signal on whichever thread it lands, with no mask to maintain. The cost
 * is that a watched signal may interrupt a blocking system call in some
 * thread; SA_RESTART restarts most of them, and ringlet's own waits retry
 * EINTR (epoll_wait, poll, nanosleep and a few others return EINTR even
 * with SA_RESTART: blocking code run by rlt_run_blocking should retry them,
 * as it must for any signal-using program).
 *
 * The delivery rule. A watcher receives every watched signal that arrives
 * after rlt_signal_watch() returned it and before rlt_signal_close(),
 * whether or not a task is waiting at that moment: signals are counted and
 * rlt_signal_next() returns them one by one. Before the first watcher of a
 * signal exists (and after the last is closed) the signal gets its old
 * disposition. Create the watcher early, before the work it should
 * interrupt. Every watcher of a signal gets every occurrence (a broadcast,
 * not a queue). As with any handler, the kernel merges occurrences of a
 * standard signal (not a real-time one) that arrive while it is pending
 * and not yet delivered: a burst of kill()s may count as fewer.
 *
 * Signals that cannot be watched: SIGKILL and SIGSTOP (the kernel does not
 * allow it), the synchronous fault signals SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP and SIGSYS (a handler that returns would fault again; ringlet's
 * stack-overflow report uses SIGSEGV/SIGBUS), and the C library's own
 * real-time signals below SIGRTMIN. Watching SIGQUIT replaces the
 * RINGLET_DEBUG=1 task dump while the watcher lives.
 *
 * A watcher belongs to one task at a time (one waiter); several tasks that
 * want the same signal each make their own watcher. Creating and closing
 * watchers is thread-safe and works outside a runtime. Child processes
 * started by ringlet get the default action back (execve resets caught
 * signals).
 */

typedef struct rlt_signal rlt_signal;

/*
 * Start watching the signals of set (any thread, in a task or not; never
 * suspends). Returns the watcher, or NULL with errno:
 *   EINVAL   set NULL or empty, or it holds a signal that cannot be watched
 *            (above)
 *   EMFILE   128 watchers already exist in the process, or no fd left
 *   ENOMEM
 */
RLT_API rlt_signal *rlt_signal_watch(const sigset_t *set);

/*
 * The next watched signal that arrived since the watcher was made and was
 * not yet returned: returns its number (> 0) at once if one is pending
 * (several pending: the lowest number first), else suspends the calling
 * task until one arrives, at most timeout_ns nanoseconds (negative: no
 * limit; 0: only look). The task's I/O timeout (rlt_set_io_timeout) does
 * not apply, and is left as it was.
 *
 * Returns the signal number, or
 *   -ETIMEDOUT  timeout_ns passed, or a deadline scope of the task expired
 *   -ECANCELED  the task was cancelled (nothing is consumed: a signal that
 *               came meanwhile is returned by the next call)
 *   -EPERM      outside a task (and timeout_ns is not 0)
 *   -EINVAL     w NULL
 */
RLT_API int rlt_signal_next(rlt_signal *w, int64_t timeout_ns);

/* How many signals of number signo are pending in w (counted, not yet
 * returned by rlt_signal_next); 0 for a signal w does not watch. Never
 * suspends, any thread. */
RLT_API unsigned rlt_signal_pending(const rlt_signal *w, int signo);

/*
 * Stop watching and free w; NULL is ignored. Pending signals are dropped.
 * If w was the last watcher of a signal, its previous disposition comes
 * back. Never suspends; any thread. No task may be waiting in
 * rlt_signal_next(w) (cancel and join it first).
 */
RLT_API void rlt_signal_close(rlt_signal *w);

/*
 * One signal of set, once: rlt_signal_watch + rlt_signal_next +
 * rlt_signal_close. Signals that arrived before the call are not seen
 * (keep a watcher for that). Returns what rlt_signal_next returns, or the
 * errors of rlt_signal_watch as negative errnos.
 */
RLT_API int rlt_signal_wait(const sigset_t *set, int64_t timeout_ns);

/*
 * Graceful shutdown, asyncio.run's Ctrl-C behaviour, in one call: from now
 * on, the first SIGINT or SIGTERM (or the first signal of set, if not
 * NULL) cancels the calling task. Called from the main task, that cancels
 * what the main task waits for (its task groups cancel their tasks, its
 * gather the gathered ones), and when it returns rlt_run cancels every
 * task left. A second such signal, while the cancelled task is still
 * cleaning up, ends the process by the signal's default action (exit
 * status 128 + signo in a shell): the way out of a clean-up that hangs.
 *
 *	static void *main_task(void *arg)
 *	{
 *		rlt_cancel_on_signal(NULL);          // Ctrl-C: -ECANCELED below
 *		int rc = serve_forever(...);         // returns -ECANCELED
 *		clean_up();                          // still runs: flush, close, log
 *		if (rc == -ECANCELED)
 *			rlt_uncancel();              // an orderly stop: rlt_run returns 0
 *		return rc == -ECANCELED ? NULL : rlt_fail(rc);
 *	}
 *
 * Without the rlt_uncancel(), rlt_run() returns -ECANCELED for a main task
 * stopped this way (what rlt_join would say of it), so main() can tell an
 * interrupted run from a finished one.
 *
 * A task named "signal-guard" waits for the signals; it is stopped (and
 * the signals' previous dispositions come back) when the calling task
 * returns, by a cleanup pushed on its rlt_defer() stack. So the guard
 * never outlives the task it cancels. Never suspends.
 * Returns 0, -EPERM outside a task, or the errors of rlt_signal_watch,
 * rlt_defer and rlt_spawn as negative errnos.
 */
RLT_API int rlt_cancel_on_signal(const sigset_t *set);

RLT_EXTERN_C_END

#endif
