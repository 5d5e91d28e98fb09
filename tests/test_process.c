/* Child processes: exit codes and signals, pipes both ways (line by line,
 * 1 MiB through cat with a writer and a reader task), stderr merged,
 * missing programs, wait timeouts, kill, many children at once,
 * rlt_process_run, and never a zombie left behind. */
#include "tests/rlt_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC  RLT_NSEC_PER_SEC
#define MSEC RLT_NSEC_PER_MSEC

/* Every test ends with this: no child left, running or zombie. With
 * WNOWAIT nothing is reaped here, so a leak fails the test that made it. */
/* Fault mode: SIGKILL to the children of this process's threads. */
static void kill_abandoned_children(void)
{
	pid_t c[256];
	int n = rlt_test__children(c, 256);
	for (int i = 0; i < n; i++)
		kill(c[i], SIGKILL);
}

static void assert_no_children(void)
{
	/* Fault mode: a scenario a fault ended abandoned its frames, and the
	 * handles of its children with them (docs/RELIABILITY.md): reap
	 * those that are gone, wait a little for the others. */
	for (int i = 0; rlt_test_faulty() && i < 200; i++) {
		kill_abandoned_children();
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		siginfo_t left = {0};
		if (waitid(P_ALL, 0, &left, WEXITED | WNOHANG | WNOWAIT) != 0)
			break;
		usleep(10000);
	}
	siginfo_t si = {0};
	int rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
	if (rc == 0)
		fail_msg("a child is left: pid %d%s", si.si_pid,
			 si.si_pid ? " (a zombie)" : " (running)");
	assert_int_equal(errno, ECHILD);
}

static rlt_process *spawn(const char *const *argv, rlt_proc_stdio in, rlt_proc_stdio out,
			  rlt_proc_stdio err)
{
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv, .stdin_mode = in, .stdout_mode = out, .stderr_mode = err});
	if (!p)
		fail_msg("spawn %s: %s", argv[0], strerror(errno));
	return p;
}

/* Spawn with everything inherited but stdout (to /dev/null), wait, free:
 * the status. */
static int status_of(const char *const *argv)
{
	rlt_process *p = spawn(argv, RLT_PROC_DEVNULL, RLT_PROC_DEVNULL, RLT_PROC_INHERIT);
	int st = -1;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	rlt_process_free(p);
	return st;
}

static void assert_exited(int st, int code)
{
	if (!WIFEXITED(st))
		fail_msg("status %#x: not an exit", st);
	assert_int_equal(WEXITSTATUS(st), code);
}

static void assert_signaled(int st, int sig)
{
	if (!WIFSIGNALED(st))
		fail_msg("status %#x: not a signal", st);
	assert_int_equal(WTERMSIG(st), sig);
}

/* ---- exit codes and signals ---- */

static void *root_exit_codes(void *arg)
{
	assert_exited(status_of((const char *[]){"true", NULL}), 0);
	assert_exited(status_of((const char *[]){"false", NULL}), 1);
	assert_exited(status_of((const char *[]){"sh", "-c", "exit 7", NULL}), 7);
	assert_exited(status_of((const char *[]){"/bin/sh", "-c", "exit 255", NULL}), 255);
	return NULL;
}

static void test_exit_codes_come_back_as_waitpid_status(void **state)
{
	rlt_test_run(root_exit_codes, NULL);
	assert_no_children();
}

static void *root_signals(void *arg)
{
	assert_signaled(status_of((const char *[]){"sh", "-c", "kill -TERM $$", NULL}), SIGTERM);

	rlt_process *p = spawn((const char *[]){"sleep", "10", NULL}, RLT_PROC_DEVNULL,
			       RLT_PROC_DEVNULL, RLT_PROC_DEVNULL);
	assert_true(rlt_process_pid(p) > 0);
	assert_int_equal(rlt_process_kill(p, 12345), -EINVAL);
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_process_kill(p, SIGKILL), 0);
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_signaled(st, SIGKILL);
	assert_true(rlt_now() - t0 < 5 * SEC);
	/* Reaped: the same status again, and no process left to signal. */
	st = 0;
	assert_int_equal(rlt_process_wait(p, 0, &st), 0);
	assert_signaled(st, SIGKILL);
	assert_int_equal(rlt_process_kill(p, SIGTERM), -ESRCH);
	rlt_process_free(p);
	return NULL;
}

static void test_death_by_signal_is_reported_with_the_signal(void **state)
{
	rlt_test_run(root_signals, NULL);
	assert_no_children();
}

/* ---- stdout line by line ---- */

typedef struct line_reader {
	int fd;
	char buf[256];
	size_t len;
} line_reader;

/* The next line without its '\n' into line; returns its length, -1 at end
 * of file. */
static ssize_t read_line(line_reader *r, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->buf);
			assert_true(n < cap);
			memcpy(line, r->buf, n);
			line[n] = '\0';
			r->len -= n + 1;
			memmove(r->buf, nl + 1, r->len);
			return (ssize_t)n;
		}
		assert_true(r->len < sizeof(r->buf));
		ssize_t got = rlt_read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, -1);
		rlt_test_assert_ok(got);
		if (got == 0) {
			assert_int_equal(r->len, 0); /* no unterminated last line */
			return -1;
		}
		r->len += (size_t)got;
	}
}

static void *root_lines(void *arg)
{
	/* The shell writes each line with its own write(2): they arrive one
	 * by one or several at a time, and come out as lines either way. */
	rlt_process *p =
	    spawn((const char *[]){"sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done", NULL},
		  RLT_PROC_DEVNULL, RLT_PROC_PIPE, RLT_PROC_INHERIT);
	assert_int_equal(rlt_process_stdin_fd(p), -1);
	assert_int_equal(rlt_process_stderr_fd(p), -1);
	line_reader r = {.fd = rlt_process_stdout_fd(p)};
	assert_true(r.fd > 2);
	char line[64], want[64];
	int n = 0;
	while (read_line(&r, line, sizeof(line)) >= 0) {
		n++;
		snprintf(want, sizeof(want), "line %d", n);
		assert_string_equal(line, want);
	}
	assert_int_equal(n, 5);
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);
	return NULL;
}

static void test_stdout_is_read_line_by_line(void **state)
{
	rlt_test_run(root_lines, NULL);
	assert_no_children();
}

/* ---- stdin ---- */

static void *root_cat_small(void *arg)
{
	rlt_process *p =
	    spawn((const char *[]){"cat", NULL}, RLT_PROC_PIPE, RLT_PROC_PIPE, RLT_PROC_INHERIT);
	static const char msg[] = "hello, child\n";
	assert_int_equal(rlt_write_all(rlt_process_stdin_fd(p), msg, sizeof(msg) - 1, -1),
			 sizeof(msg) - 1);
	assert_int_equal(rlt_process_close_stdin(p), 0);
	assert_int_equal(rlt_process_stdin_fd(p), -1);
	assert_int_equal(rlt_process_close_stdin(p), 0); /* twice is fine */
	char buf[64];
	/* cat exits at end of its stdin, and so our read ends */
	assert_int_equal(rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf), -1),
			 sizeof(msg) - 1);
	assert_memory_equal(buf, msg, sizeof(msg) - 1);
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);

	/* stdin from /dev/null: cat sees end of file at once */
	p = spawn((const char *[]){"cat", NULL}, RLT_PROC_DEVNULL, RLT_PROC_PIPE, RLT_PROC_INHERIT);
	assert_int_equal(rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf), -1), 0);
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);
	return NULL;
}

static void test_stdin_written_then_closed_is_echoed_by_cat(void **state)
{
	rlt_test_run(root_cat_small, NULL);
	assert_no_children();
}

#define BIG (1024 * 1024)

static inline unsigned char pat(size_t i)
{
	return (unsigned char)((i * 131u + (i >> 11)) & 0xff);
}

typedef struct big_arg {
	rlt_process *p;
	unsigned char *buf;
	ssize_t res;
} big_arg;

static void *big_writer(void *arg)
{
	big_arg *a = arg;
	/* in uneven pieces, so that writes and reads do not line up */
	size_t off = 0, piece = 1000;
	while (off < BIG) {
		size_t n = BIG - off < piece ? BIG - off : piece;
		ssize_t w = rlt_write_all(rlt_process_stdin_fd(a->p), a->buf + off, n, -1);
		if (w < 0) {
			a->res = w;
			rlt_process_close_stdin(a->p); /* the reader sees the end */
			return rlt_fail((int)w);
		}
		off += n;
		piece = piece * 3 % 70001 + 1;
	}
	a->res = (ssize_t)off;
	rlt_process_close_stdin(a->p);
	return NULL;
}

static void *big_reader(void *arg)
{
	big_arg *a = arg;
	a->res = rlt_read_full(rlt_process_stdout_fd(a->p), a->buf, BIG + 1, -1);
	return a->res < 0 ? rlt_fail((int)a->res) : NULL;
}

static uint64_t checksum(const unsigned char *b, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static void *root_cat_big(void *arg)
{
	unsigned char *in = malloc(BIG), *out = malloc(BIG + 1);
	assert_non_null(in);
	assert_non_null(out);
	for (size_t i = 0; i < BIG; i++)
		in[i] = pat(i);
	/* A single task writing all then reading all would deadlock once both
	 * pipes are full: a writer task and a reader task, as asyncio's
	 * communicate() does. */
	rlt_process *p =
	    spawn((const char *[]){"cat", NULL}, RLT_PROC_PIPE, RLT_PROC_PIPE, RLT_PROC_INHERIT);
	big_arg w = {.p = p, .buf = in}, r = {.p = p, .buf = out};
	rlt_task *tw = rlt_spawn(big_writer, &w, NULL);
	rlt_task *tr = rlt_spawn(big_reader, &r, NULL);
	assert_non_null(tw);
	assert_non_null(tr);
	/* A side that fails (fault mode) makes rlt_gather cancel the other. */
	int rc = rlt_gather((rlt_task *[]){tw, tr}, 2, NULL, NULL, 0);
	if (rlt_test_faulty() && (rc < 0 || w.res != BIG || r.res != BIG)) {
		assert_true(rc == 0 || rlt_test_injected(rc) || rc == -ECANCELED);
		if (r.res > 0) /* what came through is right */
			assert_memory_equal(in, out, (size_t)r.res < BIG ? (size_t)r.res : BIG);
		rlt_process_kill(p, SIGKILL);
		int st;
		rlt_process_wait(p, 10 * SEC, &st);
		rlt_process_free(p);
		free(in);
		free(out);
		rlt_test_faulted("a side of the transfer got a fault");
	}
	assert_int_equal(rc, 0);
	assert_int_equal(w.res, BIG);
	assert_int_equal(r.res, BIG);
	assert_true(checksum(in, BIG) == checksum(out, BIG));
	assert_memory_equal(in, out, BIG);
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);
	free(in);
	free(out);
	return NULL;
}

static void test_one_mib_through_cat_with_concurrent_writer_and_reader(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_cat_big, NULL, &cfg, NULL), 0);
	assert_no_children();
}

/* ---- stderr, environment, cwd, signal dispositions ---- */

static void *root_merge(void *arg)
{
	rlt_process *p =
	    spawn((const char *[]){"sh", "-c", "echo out; echo err >&2; echo out2", NULL},
		  RLT_PROC_DEVNULL, RLT_PROC_PIPE, RLT_PROC_STDOUT);
	assert_int_equal(rlt_process_stderr_fd(p), -1);
	char buf[64] = {0};
	assert_int_equal(rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf) - 1, -1), 13);
	assert_string_equal(buf, "out\nerr\nout2\n");
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);

	/* and kept apart */
	p = spawn((const char *[]){"sh", "-c", "echo out; echo err >&2", NULL}, RLT_PROC_DEVNULL,
		  RLT_PROC_PIPE, RLT_PROC_PIPE);
	char o[16] = {0}, e[16] = {0};
	assert_int_equal(rlt_read_full(rlt_process_stdout_fd(p), o, sizeof(o) - 1, -1), 4);
	assert_int_equal(rlt_read_full(rlt_process_stderr_fd(p), e, sizeof(e) - 1, -1), 4);
	assert_string_equal(o, "out\n");
	assert_string_equal(e, "err\n");
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	rlt_process_free(p);
	return NULL;
}

static void test_stderr_merged_into_stdout_or_kept_apart(void **state)
{
	rlt_test_run(root_merge, NULL);
	assert_no_children();
}

static void *root_env_cwd(void *arg)
{
	const char *const env[] = {"RLT_GREETING=hi there", NULL};
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = (const char *[]){"/bin/sh", "-c", "echo \"$RLT_GREETING\"; pwd", NULL},
	    .envp = env,
	    .cwd = "/",
	    .stdout_mode = RLT_PROC_PIPE});
	assert_non_null(p);
	char buf[64] = {0};
	rlt_test_assert_pos(rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf) - 1, -1));
	assert_string_equal(buf, "hi there\n/\n");
	int st;
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);

	/* We ignore SIGPIPE (main does); the child must not: a child that
	 * writes into a closed pipe should die as it would from a shell. */
	p = spawn((const char *[]){"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL},
		  RLT_PROC_DEVNULL, RLT_PROC_PIPE, RLT_PROC_INHERIT);
	memset(buf, 0, sizeof(buf));
	rlt_test_assert_pos(rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf) - 1, -1));
	unsigned long long blk = ~0ull, ign = ~0ull;
	assert_int_equal(sscanf(buf, "SigBlk: %llx SigIgn: %llx", &blk, &ign), 2);
	assert_true(blk == 0);
	assert_true((ign & (1ull << (SIGPIPE - 1))) == 0);
	assert_int_equal(rlt_process_wait(p, 10 * SEC, &st), 0);
	assert_exited(st, 0);
	rlt_process_free(p);
	return NULL;
}

static void test_env_cwd_and_default_sigpipe_reach_the_child(void **state)
{
	rlt_test_run(root_env_cwd, NULL);
	assert_no_children();
}

/* ---- errors ---- */

static void *root_errors(void *arg)
{
	errno = 0;
	assert_null(rlt_process_spawn(
	    &(rlt_process_opts){.argv = (const char *[]){"rlt-no-such-program-here", NULL}}));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(rlt_process_spawn(
	    &(rlt_process_opts){.argv = (const char *[]){"/nonexistent/prog", NULL}}));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(rlt_process_spawn(&(rlt_process_opts){.argv = (const char *[]){"true", NULL},
							  .cwd = "/nonexistent-dir-rlt"}));
	assert_int_equal(errno, ENOENT);
	/* a program that is not executable */
	errno = 0;
	assert_null(
	    rlt_process_spawn(&(rlt_process_opts){.argv = (const char *[]){"/etc/passwd", NULL}}));
	assert_int_equal(errno, EACCES);

	errno = 0;
	assert_null(rlt_process_spawn(NULL));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_process_spawn(&(rlt_process_opts){.argv = (const char *[]){NULL}}));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_process_spawn(&(rlt_process_opts){.argv = (const char *[]){"true", NULL},
							  .stdout_mode = RLT_PROC_STDOUT}));
	assert_int_equal(errno, EINVAL);
	assert_null(rlt_process_spawn(&(rlt_process_opts){.argv = (const char *[]){"true", NULL},
							  .stdin_mode = (rlt_proc_stdio)42}));
	assert_int_equal(errno, EINVAL);

	assert_int_equal(rlt_process_wait(NULL, 0, NULL), -EINVAL);
	assert_int_equal(rlt_process_kill(NULL, SIGKILL), -EINVAL);
	rlt_process_free(NULL);

	char out[8];
	size_t len = sizeof(out);
	int st;
	assert_int_equal(rlt_process_run((const char *[]){"rlt-no-such-program-here", NULL}, out,
					 &len, SEC, &st),
			 -ENOENT);
	assert_int_equal(rlt_process_run((const char *[]){NULL}, out, &len, SEC, &st), -EINVAL);
	assert_int_equal(rlt_process_run((const char *[]){"true", NULL}, out, NULL, SEC, &st),
			 -EINVAL);
	return NULL;
}

static void test_missing_program_and_bad_arguments_are_refused(void **state)
{
	rlt_test_run(root_errors, NULL);
	assert_no_children();
}

/* ---- timeouts, kill, free ---- */

static void *root_wait_timeout(void *arg)
{
	rlt_process *p = spawn((const char *[]){"sleep", "10", NULL}, RLT_PROC_DEVNULL,
			       RLT_PROC_DEVNULL, RLT_PROC_INHERIT);
	/* The task's own I/O timeout is left as it was. */
	assert_int_equal(rlt_set_io_timeout(7 * SEC), 0);
	int st = 12345;
	uint64_t t0 = rlt_now();
	assert_int_equal(rlt_process_wait(p, 50 * MSEC, &st), -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 50 * MSEC);
	assert_true(took < 5 * SEC);
	assert_int_equal(st, 12345); /* untouched */
	assert_int_equal(rlt_io_timeout(), 7 * SEC);
	assert_int_equal(rlt_process_wait(p, 0, &st), -ETIMEDOUT); /* still running */

	assert_int_equal(rlt_process_kill(p, SIGKILL), 0);
	assert_int_equal(rlt_process_wait(p, -1, &st), 0);
	assert_signaled(st, SIGKILL);
	assert_int_equal(rlt_io_timeout(), 7 * SEC);
	rlt_process_free(p);

	/* Free a running child from a task: killed and reaped, no zombie. */
	p = spawn((const char *[]){"sleep", "10", NULL}, RLT_PROC_PIPE, RLT_PROC_PIPE,
		  RLT_PROC_INHERIT);
	t0 = rlt_now();
	rlt_process_free(p);
	assert_true(rlt_now() - t0 < 5 * SEC);
	assert_int_equal(rlt_io_timeout(), 7 * SEC);
	return NULL;
}

static void test_wait_timeout_leaves_child_running_then_kill_and_wait_reap_it(void **state)
{
	rlt_test_run(root_wait_timeout, NULL);
	assert_no_children();
}

static void test_spawn_wait_and_free_work_outside_a_task(void **state)
{
	rlt_process *p = spawn((const char *[]){"sleep", "10", NULL}, RLT_PROC_DEVNULL,
			       RLT_PROC_DEVNULL, RLT_PROC_INHERIT);
	int st;
	assert_int_equal(rlt_process_wait(p, 0, &st), -ETIMEDOUT);
	assert_int_equal(rlt_process_wait(p, SEC, &st), -EPERM); /* would suspend */
	rlt_process_free(p); /* SIGKILL, then a blocking reap of the dying child */
	assert_no_children();

	p = spawn((const char *[]){"true", NULL}, RLT_PROC_DEVNULL, RLT_PROC_DEVNULL,
		  RLT_PROC_INHERIT);
	rlt_process_free(p); /* exited or not, reaped */
	assert_no_children();
}

/* ---- many at once ---- */

#define NCHILD 50

typedef struct child_arg {
	int id;
	int ok;
} child_arg;

/* Each child reads a number and prints it twice, then exits id % 5: both
 * pipes in use, 50 children at once, on two workers. */
static void *one_child(void *arg)
{
	child_arg *a = arg;
	rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
	    .argv = (const char *[]){"sh", "-c", "read x; echo $x$x; exit $((x % 5))", NULL},
	    .stdin_mode = RLT_PROC_PIPE,
	    .stdout_mode = RLT_PROC_PIPE});
	if (!p)
		return NULL;
	char msg[16], want[32], buf[32] = {0};
	int n = snprintf(msg, sizeof(msg), "%d\n", a->id);
	snprintf(want, sizeof(want), "%d%d\n", a->id, a->id);
	int st = -1;
	if (rlt_write_all(rlt_process_stdin_fd(p), msg, (size_t)n, -1) == n &&
	    rlt_process_close_stdin(p) == 0 &&
	    rlt_read_full(rlt_process_stdout_fd(p), buf, sizeof(buf) - 1, -1) ==
		(ssize_t)strlen(want) &&
	    strcmp(buf, want) == 0 && rlt_process_wait(p, 30 * SEC, &st) == 0 && WIFEXITED(st) &&
	    WEXITSTATUS(st) == a->id % 5)
		a->ok = 1;
	rlt_process_free(p);
	return NULL;
}

static void *root_many(void *arg)
{
	child_arg args[NCHILD];
	rlt_task *t[NCHILD];
	for (int i = 0; i < NCHILD; i++) {
		args[i] = (child_arg){.id = i};
		t[i] = rlt_spawn(one_child, &args[i], NULL);
		assert_non_null(t[i]);
	}
	int ok = 0;
	for (int i = 0; i < NCHILD; i++) {
		assert_int_equal(rlt_join(t[i], NULL), 0);
		ok += args[i].ok;
	}
	assert_int_equal(ok, NCHILD);
	return NULL;
}

static void test_fifty_concurrent_children_from_tasks_on_two_workers(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_many, NULL, &cfg, NULL), 0);
	assert_no_children();
}

/* ---- rlt_process_run ---- */

static void *root_run(void *arg)
{
	char out[64];
	size_t len = sizeof(out);
	int st = -1;
	assert_int_equal(
	    rlt_process_run((const char *[]){"echo", "hello", NULL}, out, &len, 10 * SEC, &st), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "hello\n", 6);
	assert_exited(st, 0);

	/* Truncated: 10 bytes kept, the rest (588895 bytes) drained, so seq
	 * is not stuck on a full pipe and exits 0 (not by SIGPIPE). */
	len = 10;
	assert_int_equal(
	    rlt_process_run((const char *[]){"seq", "1", "100000", NULL}, out, &len, 10 * SEC, &st),
	    0);
	assert_int_equal(len, 10);
	assert_memory_equal(out, "1\n2\n3\n4\n5\n", 10);
	assert_exited(st, 0);

	/* No output wanted; the exit code is not an error of the call */
	assert_int_equal(rlt_process_run((const char *[]){"sh", "-c", "echo x; exit 4", NULL}, NULL,
					 NULL, -1, &st),
			 0);
	assert_exited(st, 4);

	/* Timeout: what came before, then the child killed and reaped */
	len = sizeof(out);
	uint64_t t0 = rlt_now();
	assert_int_equal(
	    rlt_process_run((const char *[]){"sh", "-c", "echo early; exec sleep 10", NULL}, out,
			    &len, 200 * MSEC, &st),
	    -ETIMEDOUT);
	uint64_t took = rlt_now() - t0;
	assert_true(took >= 200 * MSEC);
	assert_true(took < 5 * SEC);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "early\n", 6);
	assert_signaled(st, SIGKILL);

	/* Timeout with no output: the wait, not the read, times out */
	assert_int_equal(
	    rlt_process_run((const char *[]){"sleep", "10", NULL}, NULL, NULL, 50 * MSEC, &st),
	    -ETIMEDOUT);
	assert_signaled(st, SIGKILL);
	return NULL;
}

static void test_run_collects_truncates_and_times_out(void **state)
{
	rlt_test_run(root_run, NULL);
	assert_no_children();
}

static void test_run_outside_a_task_gives_eperm(void **state)
{
	assert_int_equal(rlt_process_run((const char *[]){"true", NULL}, NULL, NULL, -1, NULL),
			 -EPERM);
	assert_no_children();
}

/* rlt_waitid: the loop waits for the child (IORING_OP_WAITID), or says it
 * cannot (epoll), and rlt_process_wait works either way. */
static void *waitid_through_the_loop(void *arg)
{
	(void)arg;
	const char *argv[] = {"sh", "-c", "exit 5", NULL};
	rlt_process_opts o = {.argv = argv};
	rlt_process *p = rlt_process_spawn(&o);
	assert_non_null(p);
	int pidfd = -1;
	{
		/* a pidfd of our own for the raw call */
		pidfd = (int)syscall(SYS_pidfd_open, rlt_process_pid(p), 0);
		rlt_test_assert_ok(pidfd);
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	assert_int_equal(rlt_waitid(P_PIDFD, (unsigned)pidfd, &si, WEXITED | WNOHANG), -EINVAL);
	assert_int_equal(rlt_waitid(P_PIDFD, (unsigned)pidfd, NULL, WEXITED), -EINVAL);
	int rc = rlt_waitid(P_PIDFD, (unsigned)pidfd, &si, WEXITED | WNOWAIT);
	const char *pol = rlt_runtime_policy(rlt_runtime_self());
	if (strncmp(pol, "epoll", 5) == 0) {
		assert_int_equal(rc, -EOPNOTSUPP);
	} else if (strncmp(pol, "io_uring", 8) == 0) {
		/* Linux >= 6.7 (this machine's kernel is newer) */
		assert_int_equal(rc, 0);
		assert_int_equal(si.si_pid, rlt_process_pid(p));
		assert_int_equal(si.si_code, CLD_EXITED);
		assert_int_equal(si.si_status, 5);
	}
	close(pidfd);
	/* WNOWAIT left it waitable: the handle reaps it. */
	int status;
	assert_int_equal(rlt_process_wait(p, -1, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 5);
	rlt_process_free(p);
	return NULL;
}

static void test_waitid_through_the_loop_or_a_clear_no(void **state)
{
	(void)state;
	rlt_test_run(waitid_through_the_loop, NULL);
	assert_no_children();
}

/* ---- several tasks waiting for one child ---- */

typedef struct multi_wait {
	rlt_process *p;
	int status;
} multi_wait;

static void *wait_child(void *arg)
{
	multi_wait *m = arg;
	return (void *)(intptr_t)rlt_process_wait(m->p, 5 * RLT_NSEC_PER_SEC, &m->status);
}

/* Every waiter gets 0 and the exit status, whichever reaps, on one worker
 * or several, under every policy (io_uring's IORING_OP_WAITID used to reap
 * for the first and answer -ECHILD to the rest). */
static void *root_multi_wait(void *arg)
{
	for (int round = 0; round < 10; round++) {
		rlt_process *p = rlt_process_spawn(&(rlt_process_opts){
		    .argv = (const char *[]){"sh", "-c", "sleep 0.02; exit 3", NULL}});
		assert_non_null(p);
		multi_wait m[4];
		rlt_task *t[4];
		for (int i = 0; i < 4; i++) {
			m[i] = (multi_wait){p, -1};
			t[i] = rlt_test_spawn_on(wait_child, &m[i], (unsigned)i);
		}
		for (int i = 0; i < 4; i++) {
			void *res;
			assert_int_equal(rlt_join(t[i], &res), 0);
			if ((intptr_t)res != 0)
				fail_msg("round %d waiter %d: %ld", round, i, (long)(intptr_t)res);
			assert_exited(m[i].status, 3);
		}
		/* And a wait after the reap gets the same. */
		int st = -1;
		assert_int_equal(rlt_process_wait(p, 0, &st), 0);
		assert_exited(st, 3);
		rlt_process_free(p);
	}
	return NULL;
}

static void test_four_tasks_waiting_for_one_child_all_get_its_status(void **state)
{
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(root_multi_wait, NULL, &cfg, NULL), 0);
	assert_no_children();
}

int main(void)
{
	/* As many servers do; the children get SIGPIPE back (tested). */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_codes_come_back_as_waitpid_status),
	    cmocka_unit_test(test_death_by_signal_is_reported_with_the_signal),
	    cmocka_unit_test(test_stdout_is_read_line_by_line),
	    cmocka_unit_test(test_stdin_written_then_closed_is_echoed_by_cat),
	    cmocka_unit_test(test_one_mib_through_cat_with_concurrent_writer_and_reader),
	    cmocka_unit_test(test_stderr_merged_into_stdout_or_kept_apart),
	    cmocka_unit_test(test_env_cwd_and_default_sigpipe_reach_the_child),
	    cmocka_unit_test(test_missing_program_and_bad_arguments_are_refused),
	    cmocka_unit_test(test_wait_timeout_leaves_child_running_then_kill_and_wait_reap_it),
	    cmocka_unit_test(test_spawn_wait_and_free_work_outside_a_task),
	    cmocka_unit_test(test_fifty_concurrent_children_from_tasks_on_two_workers),
	    cmocka_unit_test(test_run_collects_truncates_and_times_out),
	    cmocka_unit_test(test_run_outside_a_task_gives_eperm),
	    cmocka_unit_test(test_waitid_through_the_loop_or_a_clear_no),
	    cmocka_unit_test(test_four_tasks_waiting_for_one_child_all_get_its_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
