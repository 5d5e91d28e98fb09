/*
 * The examples: each program prints exactly what its Python original prints, exits 0
 * with nothing on stderr (the runtime would complain there about tasks left unjoined),
 * and takes the time it should.
 *
 * Every example runs as a child process with its stdout and stderr on pipes; every
 * wait is bounded by RUN_TIMEOUT_MS, after which the child is killed.
 *
 * Timing bounds: a lower bound is what the program must sleep, so it holds in every
 * build. An upper bound is what proves that sleeps overlap; under a sanitizer,
 * startup and I/O are slower, so it widens, but never up to the time the sleeps
 * would take one after another (that would prove nothing).
 */
#include "tests/rlt_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUN_TIMEOUT_MS 10000
#define OUT_MAX	       4096

/* Keep in sync with the #defines of the examples. */
#define SLEEP_TASKS_SLEEP_MS 200 /* examples/sleep_tasks.c SLEEP_MS */
#define FUTURE_DELAY_MS	     100 /* examples/future.c DELAY_MS */
#define DOWNLOAD_CHUNKS	     16	 /* examples/downloads.c FILE_SIZE / CHUNK_SIZE */
#define DOWNLOAD_PACE_MS     20	 /* examples/downloads.c PACE_MS */
#define DOWNLOAD_MS	     (DOWNLOAD_CHUNKS * DOWNLOAD_PACE_MS)
#define BLOCKING_DELAY_MS    200  /* examples/blocking_downloads.c DELAY_MS */
#define WAIT_TIMEOUT_MS	     200  /* examples/wait.c TIMEOUT_MS */
#define WAIT_SLOW_MS	     2000 /* examples/wait.c SLOW_MS */

typedef struct run {
	char out[OUT_MAX + 1]; /* stdout, NUL-terminated */
	char err[OUT_MAX + 1]; /* stderr, NUL-terminated */
	size_t out_len, err_len;
	int status; /* from waitpid */
	bool timed_out;
	double ms; /* wall time from spawn to exit */
} run;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Append what fd has to buf; returns false at end of file. Keeps reading past OUT_MAX
 * (and drops it) so that a chatty child never blocks on a full pipe. */
static bool drain(int fd, char *buf, size_t *len)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	size_t take = (size_t)n < OUT_MAX - *len ? (size_t)n : OUT_MAX - *len;
	memcpy(buf + *len, tmp, take);
	*len += take;
	buf[*len] = '\0';
	return true;
}

/* Run RLT_EXAMPLES_DIR/name with envp (NULL: ours), collect its output and status. */
static void run_example(const char *name, char *const envp[], run *r)
{
	memset(r, 0, sizeof(*r));
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", RLT_EXAMPLES_DIR, name);
	char *const argv[] = {path, NULL};

	/* O_CLOEXEC: the child keeps only the dup2'ed copies. */
	int out[2], err[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out[1], 1), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, err[1], 2), 0);

	/* A process group of its own, so that a kill reaches anything it started too. */
	posix_spawnattr_t attr;
	assert_int_equal(posix_spawnattr_init(&attr), 0);
	assert_int_equal(posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP), 0);
	assert_int_equal(posix_spawnattr_setpgroup(&attr, 0), 0);

	double start = now_ms();
	double deadline = start + RUN_TIMEOUT_MS;
	pid_t pid;
	int rc = posix_spawn(&pid, path, &fa, &attr, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(out[1]);
	close(err[1]);
	if (rc != 0) {
		close(out[0]);
		close(err[0]);
		/* ctest does not build the examples for us: say so. */
		fail_msg("posix_spawn %s: %s%s", path, strerror(rc),
			 rc == ENOENT ? " (build the examples first)" : "");
	}

	struct pollfd pfd[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		double left = deadline - now_ms();
		if (left <= 0) {
			r->timed_out = true;
			break;
		}
		int n = poll(pfd, 2, (int)left + 1);
		if (n < 0 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
		for (int i = 0; n > 0 && i < 2; i++) {
			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			bool more = i == 0 ? drain(pfd[i].fd, r->out, &r->out_len)
					   : drain(pfd[i].fd, r->err, &r->err_len);
			if (!more) {
				close(pfd[i].fd);
				pfd[i].fd = -1; /* poll ignores negative fds */
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);

	/* The pipes close at exit, so this wait is short; it is bounded all the same. */
	for (;;) {
		pid_t w = waitpid(pid, &r->status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
		if (r->timed_out || now_ms() >= deadline) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		struct timespec ms = {.tv_nsec = 1000000};
		nanosleep(&ms, NULL);
	}
	r->ms = now_ms() - start;
	/* Fault mode: an example that fails cleanly (an exit status and a
	 * message) ends the test case; a signal or a hang still fails it. */
	if (!r->timed_out) {
		rlt_test_child_fault(r->status, r->err);
		if (WIFEXITED(r->status)) {
			rlt_test_output_fault(r->err);
			rlt_test_output_fault(r->out);
		}
	}
}

/* Exit status 0 within the time limit, nothing on stderr. */
static void assert_clean_exit(const char *name, const run *r)
{
	if (r->err_len)
		print_message("%s wrote to stderr:\n%s", name, r->err);
	if (r->timed_out)
		fail_msg("%s was killed after %d ms", name, RUN_TIMEOUT_MS);
	if (WIFSIGNALED(r->status))
		fail_msg("%s died of signal %d", name, WTERMSIG(r->status));
	assert_true(WIFEXITED(r->status));
	assert_int_equal(WEXITSTATUS(r->status), 0);
	assert_int_equal(r->err_len, 0);
}

static void assert_ms_between(const char *name, double ms, double lo, double hi)
{
	print_message("%s: %.1f ms (want [%.0f, %.0f))\n", name, ms, lo, hi);
	if (ms < lo || ms >= hi)
		fail_msg("%s took %.1f ms, want [%.0f, %.0f)", name, ms, lo, hi);
}

/* The upper bound of a timing check: tight normally, wider under a sanitizer. */
static double upper(double plain, double sanitized)
{
	return rlt_test_sanitized() ? sanitized : plain;
}

static void test_switch_interleaves_tasks_at_each_yield(void **state)
{
	run r;
	run_example("switch", NULL, &r);
	assert_clean_exit("switch", &r);
	assert_string_equal(r.out, "1\n3\n2\n4\n");
}

static void test_generator_hands_values_back_and_forth(void **state)
{
	run r;
	run_example("generator", NULL, &r);
	assert_clean_exit("generator", &r);
	assert_string_equal(r.out, "1\n3\n4\n2\n");
}

static void test_async_iter_counts_to_99_awaiting_between_values(void **state)
{
	run r;
	run_example("async_iter", NULL, &r);
	assert_clean_exit("async_iter", &r);
	char want[400], *p = want;
	for (int i = 0; i < 100; i++)
		p += sprintf(p, "%d\n", i);
	assert_string_equal(r.out, want);
}

static void test_sleep_tasks_run_concurrently(void **state)
{
	run r;
	run_example("sleep_tasks", NULL, &r);
	assert_clean_exit("sleep_tasks", &r);
	assert_string_equal(r.out, "1\n3\n2\n4\n");
	/* Sleeping one after the other would take at least 2 sleeps: even the sanitizer
	 * bound proves they overlapped. */
	const double one = SLEEP_TASKS_SLEEP_MS;
	assert_ms_between("sleep_tasks", r.ms, one, upper(1.5 * one, 2.0 * one));
}

static void test_return_value_comes_back_from_join(void **state)
{
	run r;
	run_example("return_value", NULL, &r);
	assert_clean_exit("return_value", &r);
	assert_string_equal(r.out, "3\n");
}

static void test_gather_values_collects_both_results(void **state)
{
	run r;
	run_example("gather_values", NULL, &r);
	assert_clean_exit("gather_values", &r);
	assert_string_equal(r.out, "9 16\n");
}

static void test_named_tasks_print_their_names(void **state)
{
	run r;
	run_example("named_tasks", NULL, &r);
	assert_clean_exit("named_tasks", &r);
	assert_string_equal(r.out, "main task: main\n"
				   "created fetch-users, fetch-orders and worker-4\n"
				   "fetch-users finished\n"
				   "fetch-orders finished\n"
				   "worker-4 finished\n");
}

static void test_wait_times_out_then_cancels_the_pending_task(void **state)
{
	run r;
	run_example("wait", NULL, &r);
	assert_clean_exit("wait", &r);
	assert_string_equal(r.out, "2 done, 1 pending\n"
				   "a: slept 10 ms\n"
				   "b: slept 50 ms\n"
				   "c: cancelled\n");
	/* The wait lasts its timeout; below the slow task's sleep, even under a
	 * sanitizer, proves that the pending task was cancelled, not awaited. */
	assert_ms_between("wait", r.ms, WAIT_TIMEOUT_MS,
			  upper(WAIT_TIMEOUT_MS + 400, WAIT_SLOW_MS - 100));
}

static void test_context_manager_closes_the_connection_politely(void **state)
{
	run r;
	run_example("context_manager", NULL, &r);
	assert_clean_exit("context_manager", &r);
	assert_string_equal(r.out, "connected\n"
				   "server says: echo: hello\n"
				   "server says: goodbye\n"
				   "closed\n");
}

static void test_future_wakes_awaiter_with_value_after_delay(void **state)
{
	run r;
	run_example("future", NULL, &r);
	assert_clean_exit("future", &r);
	assert_string_equal(r.out, "666\n");
	assert_ms_between("future", r.ms, FUTURE_DELAY_MS,
			  upper(FUTURE_DELAY_MS + 400, FUTURE_DELAY_MS + 2000));
}

/* Our environment with TMPDIR replaced by dir; free with free(). */
static char **env_with_tmpdir(const char *dir, char *buf, size_t bufsize)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	assert_non_null(env);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "TMPDIR=", 7) != 0)
			env[k++] = environ[i];
	snprintf(buf, bufsize, "TMPDIR=%s", dir);
	env[k++] = buf;
	env[k] = NULL;
	return env;
}

/* Entries of dir other than . and .., written into names (for a failure message). */
static int count_entries(const char *dir, char *names, size_t size)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	names[0] = '\0';
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		strncat(names, e->d_name, size - strlen(names) - 1);
		strncat(names, " ", size - strlen(names) - 1);
	}
	closedir(d);
	return n;
}

static void test_downloads_overlap_and_write_every_byte(void **state)
{
	/* The example makes its temporary directory under $TMPDIR: point that at a
	 * directory of our own, to check that it cleans up after itself. */
	char tmpdir[] = "/tmp/rlt-test-examples-XXXXXX";
	assert_non_null(mkdtemp(tmpdir));
	char envbuf[64];
	char **env = env_with_tmpdir(tmpdir, envbuf, sizeof(envbuf));
	run r;
	run_example("downloads", env, &r);
	free(env);
	char left[1024];
	int nleft = count_entries(tmpdir, left, sizeof(left));
	if (nleft == 0)
		rmdir(tmpdir);

	assert_clean_exit("downloads", &r);
	if (nleft)
		fail_msg("downloads left %s in %s", left, tmpdir);

	/* Started in spawn order; finished in whatever order the I/O ends. */
	static const char *const finished[] = {
	    "a.bin: finished (1048576 bytes)",
	    "b.bin: finished (1048576 bytes)",
	    "c.bin: finished (1048576 bytes)",
	};
	char *lines[8];
	int nlines = 0;
	char *save;
	for (char *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (nlines == 8)
			fail_msg("downloads printed more than 7 lines");
		lines[nlines++] = l;
	}
	assert_int_equal(nlines, 7);
	assert_string_equal(lines[0], "a.bin: started");
	assert_string_equal(lines[1], "b.bin: started");
	assert_string_equal(lines[2], "c.bin: started");
	for (int i = 0; i < 3; i++) {
		int seen = 0;
		for (int j = 3; j < 6; j++)
			seen += strcmp(lines[j], finished[i]) == 0;
		if (seen != 1)
			fail_msg("\"%s\" printed %d times, want once", finished[i], seen);
	}
	assert_string_equal(lines[6], "3 downloads, 3145728 bytes");

	/* One after the other, the three would take at least 3 downloads' time. */
	assert_ms_between("downloads", r.ms, DOWNLOAD_MS,
			  upper(1.75 * DOWNLOAD_MS, 2.5 * DOWNLOAD_MS));
}

static void test_subprocess_prints_child_lines_then_exit_status(void **state)
{
	run r;
	run_example("subprocess", NULL, &r);
	assert_clean_exit("subprocess", &r);
	assert_string_equal(r.out, "child: line 1\nchild: line 2\nchild: line 3\nexit status 0\n");
}

static void test_run_in_executor_uses_default_and_custom_pools(void **state)
{
	run r;
	run_example("run_in_executor", NULL, &r);
	assert_clean_exit("run_in_executor", &r);
	assert_string_equal(r.out, "default thread pool: 100 bytes from /dev/urandom\n"
				   "custom thread pool: 333332833333500000\n");
}

static void test_blocking_downloads_overlap_in_the_pool(void **state)
{
	run r;
	run_example("blocking_downloads", NULL, &r);
	assert_clean_exit("blocking_downloads", &r);
	assert_string_equal(r.out, "download 1: 65536 bytes\ndownload 2: 65536 bytes\n"
				   "download 3: 65536 bytes\nall three in one go\n");
	/* Three blocking downloads one after another: 3 x 200 ms. The program
	 * times the downloads itself ("all three in one go" proves they
	 * overlapped); the wall bound adds process start-up, which under TSan
	 * (threads, getaddrinfo loading NSS) takes about a second. */
	const double one = BLOCKING_DELAY_MS;
	assert_ms_between("blocking_downloads", r.ms, one, upper(1.8 * one, 15 * one));
}

static void test_process_pool_runs_jobs_in_processes_and_survives_one_that_exits(void **state)
{
	run r;
	run_example("process_pool", NULL, &r);
	assert_clean_exit("process_pool", &r);
	assert_string_equal(r.out,
			    "custom process pool: 333332833333500000\n"
			    "4 jobs on 2 processes: 41666541666750000 333332833333500000 "
			    "1124998875000250000 2666664666667000000\n"
			    "a job that exits: No child processes (the pool replaced its process)\n"
			    "and the pool goes on: 333332833333500000\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_switch_interleaves_tasks_at_each_yield),
	    cmocka_unit_test(test_generator_hands_values_back_and_forth),
	    cmocka_unit_test(test_async_iter_counts_to_99_awaiting_between_values),
	    cmocka_unit_test(test_sleep_tasks_run_concurrently),
	    cmocka_unit_test(test_return_value_comes_back_from_join),
	    cmocka_unit_test(test_gather_values_collects_both_results),
	    cmocka_unit_test(test_named_tasks_print_their_names),
	    cmocka_unit_test(test_wait_times_out_then_cancels_the_pending_task),
	    cmocka_unit_test(test_context_manager_closes_the_connection_politely),
	    cmocka_unit_test(test_future_wakes_awaiter_with_value_after_delay),
	    cmocka_unit_test(test_downloads_overlap_and_write_every_byte),
	    cmocka_unit_test(test_subprocess_prints_child_lines_then_exit_status),
	    cmocka_unit_test(test_run_in_executor_uses_default_and_custom_pools),
	    cmocka_unit_test(test_blocking_downloads_overlap_in_the_pool),
	    cmocka_unit_test(test_process_pool_runs_jobs_in_processes_and_survives_one_that_exits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
