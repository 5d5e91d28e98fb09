/* Shared helpers for the cmocka tests. */
#ifndef RLT_TEST_H
#define RLT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringlet.h>

/* Run fn(arg) as a root task with the default config and assert success. */
static inline void *rlt_test_run(rlt_task_fn fn, void *arg)
{
	void *res = NULL;
	int rc = rlt_run(fn, arg, NULL, &res);
	assert_int_equal(rc, 0);
	return res;
}

/* The same on a single worker: for tests whose expectations depend on the
 * order in which tasks run (asyncio's single-threaded semantics). */
static inline void *rlt_test_run1(rlt_task_fn fn, void *arg)
{
	void *res = NULL;
	rlt_config cfg = {.workers = 1};
	int rc = rlt_run(fn, arg, &cfg, &res);
	assert_int_equal(rc, 0);
	return res;
}

/* Options that start a task on worker w (modulo the workers there are:
 * RINGLET_WORKERS wins over rlt_config.workers) and keep it there. */
static inline rlt_spawn_opts rlt_test_on_worker(unsigned w)
{
	return (rlt_spawn_opts){.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
				.worker = w % rlt_runtime_workers(rlt_runtime_self())};
}

/* Spawn fn(arg) pinned on worker w (as above); asserts it was spawned. */
static inline rlt_task *rlt_test_spawn_on(rlt_task_fn fn, void *arg, unsigned w)
{
	rlt_spawn_opts o = rlt_test_on_worker(w);
	rlt_task *t = rlt_spawn(fn, arg, &o);
	assert_non_null(t);
	return t;
}

/* Run fn(arg) under "fault:<opts>,inner=<the policy this run was given>"
 * on two workers (the ctest matrix sets RINGLET_POLICY, which wins over
 * rlt_config, so it is swapped for the length of the run). */
static inline void rlt_test_run_faults(const char *opts, rlt_task_fn fn, void *arg)
{
	const char *env = getenv("RINGLET_POLICY");
	char *saved = env ? strdup(env) : NULL;
	const char *inner = env && env[0] && !strchr(env, ':') ? env : "io_uring";
	char spec[256];
	snprintf(spec, sizeof(spec), "fault:%s,inner=%s", opts, inner);
	setenv("RINGLET_POLICY", spec, 1);
	rlt_config cfg = {.workers = 2, .policy_strict = true};
	int rc = rlt_run(fn, arg, &cfg, NULL);
	if (saved)
		setenv("RINGLET_POLICY", saved, 1);
	else
		unsetenv("RINGLET_POLICY");
	free(saved);
	if (rc != 0)
		fail_msg("rlt_run under %s: %d", spec, rc);
}

/* Run body(arg) in a child process (forked between tests, when no runtime
 * thread is alive) that then exits 0; return its wait status, with its
 * stderr in err (NUL-terminated, truncated to errcap). The child has 20 s;
 * cmocka's SIGSEGV handler is reset in it, so that it dies of its faults
 * instead of reporting them. */
static inline int rlt_test_fork(void (*body)(void *arg), void *arg, char *err, size_t errcap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		alarm(20);
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		body(arg);
		fflush(NULL);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < errcap && (r = read(p[0], err + n, errcap - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = '\0';
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

typedef struct rlt_test_child_run {
	rlt_task_fn fn;
	void *arg;
	const rlt_config *cfg;
	const char *env;
} rlt_test_child_run;

static inline void rlt_test_child_run_body(void *arg)
{
	rlt_test_child_run *c = arg;
	if (c->env)
		putenv((char *)c->env);
	rlt_run(c->fn, c->arg, c->cfg, NULL);
}

/* Death tests: run fn(arg) as the root task of a runtime (with cfg, may be
 * NULL) in a child process (rlt_test_fork), with env ("NAME=value", or
 * NULL) added to its environment; its wait status, its stderr in err. */
static inline int rlt_test_run_child_cfg(rlt_task_fn fn, void *arg, const rlt_config *cfg,
					 const char *env, char *err, size_t errcap)
{
	rlt_test_child_run c = {fn, arg, cfg, env};
	return rlt_test_fork(rlt_test_child_run_body, &c, err, errcap);
}

static inline int rlt_test_run_child(rlt_task_fn fn, void *arg, char *err, size_t errcap)
{
	return rlt_test_run_child_cfg(fn, arg, NULL, NULL, err, errcap);
}

/* True when built with a sanitizer (timing bounds are looser there). */
static inline int rlt_test_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 1;
#else
	return 0;
#endif
}

/* Iteration counts: ThreadSanitizer makes every task a fiber (it caps live
 * fibers at 8128 and each costs tens of microseconds), so its build runs the
 * same tests on fewer tasks. */
#if defined(__SANITIZE_THREAD__)
#define RLT_TEST_SCALE(n) ((n) / 10 > 0 ? (n) / 10 : 1)
#else
#define RLT_TEST_SCALE(n) (n)
#endif

#endif
