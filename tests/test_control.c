/* The console's control socket (RINGLET_CONTROL, runtime/control.c): a live
 * program answers `tools/ringlet top` and `tasks`, refuses other users,
 * and survives garbage, silent and too many clients. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "rlt_test.h"

#include <ringlet/stats.h>

#include <errno.h>
#include <libgen.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* tools/ringlet-console, from this file's path (cmake compiles with it
 * absolute). */
static char console[1024];

static bool have_console(void)
{
	char src[1024];
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(console, sizeof(console), "%s/../tools/ringlet-console", dirname(src));
	if (access("/usr/bin/python3", X_OK) != 0 || access(console, R_OK) != 0) {
		print_message("SKIP: no /usr/bin/python3 or %s: the console tool is not run\n",
			      console);
		return false;
	}
	return true;
}

static void set_addr(struct sockaddr_un *sa, socklen_t *len, const char *spec)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (spec[0] == '@') {
		char name[100];
		if (spec[1])
			snprintf(name, sizeof(name), "%s", spec + 1);
		else
			snprintf(name, sizeof(name), "ringlet-%ld", (long)getpid());
		memcpy(sa->sun_path + 1, name, strlen(name));
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", spec);
		*len = (socklen_t)sizeof(*sa);
	}
}

static int dial(const char *spec)
{
	struct sockaddr_un sa;
	socklen_t len;
	set_addr(&sa, &len, spec);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	int rc = rlt_connect(fd, (struct sockaddr *)&sa, len);
	if (rc < 0)
		fail_msg("connect to %s: %s", spec, strerror(-rc));
	return fd;
}

/* Read to the end of stream (bounded by the I/O timeout the caller set). */
static char *read_all(int fd, size_t *n)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = rlt_recv(fd, buf + len, cap - 1 - len, 0);
		/* The server closed with our unread bytes in its queue: what it
		 * said came first, then this. */
		if (r == -ECONNRESET)
			break;
		if (r < 0)
			fail_msg("recv: %s", strerror((int)-r));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (n)
		*n = len;
	return buf;
}

static char *ask(const char *spec, const char *cmd)
{
	int fd = dial(spec);
	assert_int_equal(rlt_send_all(fd, cmd, strlen(cmd), 0), (ssize_t)strlen(cmd));
	char *out = read_all(fd, NULL);
	rlt_close(fd);
	return out;
}

/* A task that keeps a worker busy in short runs: something for top. */
static atomic_bool stop_spinning;

static void *spinner(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_spinning)) {
		volatile unsigned x = 0;
		for (unsigned i = 0; i < 20000; i++)
			x += i;
		rlt_yield();
	}
	return NULL;
}

typedef struct shell {
	const char *cmd;
	int status;
	char out[65536];
} shell;

static void *shell_run(void *arg)
{
	shell *s = arg;
	FILE *p = popen(s->cmd, "r");
	if (!p) {
		s->status = -1;
		return NULL;
	}
	size_t n = fread(s->out, 1, sizeof(s->out) - 1, p);
	s->out[n] = '\0';
	s->status = pclose(p);
	return NULL;
}

/* Run a shell command on the blocking pool (the runtime keeps answering
 * meanwhile); its exit status, its stdout in s->out. */
static int sh(shell *s, const char *cmd)
{
	s->cmd = cmd;
	assert_int_equal(rlt_run_blocking(NULL, shell_run, s, NULL), 0);
	return s->status;
}

/* ---- top and tasks ---- */

static void *live_main(void *arg)
{
	const char *spec = arg;
	atomic_store(&stop_spinning, false);
	rlt_spawn_opts o = {.name = "spinner"};
	rlt_task *sp = rlt_spawn(spinner, NULL, &o);
	assert_non_null(sp);
	rlt_set_io_timeout(10 * RLT_NSEC_PER_SEC);

	/* The protocol itself. */
	char *stats = ask(spec, "stats\n");
	assert_true(!strncmp(stats, "{\"version\":1,", 13));
	/* Task timing costs nothing until somebody looks... */
	assert_non_null(strstr(stats, "\"timing\":false"));
	free(stats);
	char *top = ask(spec, "top 3\n");
	const char *pre = "{\"stats\":{\"version\":1,";
	assert_true(!strncmp(top, pre, strlen(pre)));
	assert_non_null(strstr(top, "\"ntasks\":"));
	free(top);
	/* ...and is on from the first top. */
	stats = ask(spec, "stats\n");
	assert_non_null(strstr(stats, "\"timing\":true"));
	free(stats);
	char *help = ask(spec, "help\n");
	assert_non_null(strstr(help, "top [N]"));
	free(help);
	char *prom = ask(spec, "prometheus\n");
	assert_non_null(strstr(prom, "# TYPE ringlet_worker_polled_total counter"));
	free(prom);

	if (have_console()) {
		static shell s;
		char cmd[2048];
		/* By PID when the socket is the default abstract one. */
		char target[128];
		if (!strcmp(spec, "@"))
			snprintf(target, sizeof(target), "%ld", (long)getpid());
		else
			snprintf(target, sizeof(target), "%s", spec);
		/* top, not on a terminal: one JSON line per tick. The checker
		 * asserts three ticks, per-worker rates that moved, and the
		 * spinner among the tasks that held a worker. */
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 %s top '%s' --count 3 --interval 0.2 --tasks 5 | "
			 "/usr/bin/python3 -c 'import json,sys\n"
			 "L=[json.loads(l) for l in sys.stdin]\n"
			 "assert len(L)==3, len(L)\n"
			 "v=L[-1]\n"
			 "assert v[\"workers\"][0][\"worker\"]==0\n"
			 "assert sum(w[\"polls_s\"] for w in v[\"workers\"])>0\n"
			 "assert any(t[\"name\"]==\"spinner\" and t[\"held_pct\"]>0 for t in "
			 "v[\"tasks\"]), v[\"tasks\"]\n"
			 "print(\"ok\", len(v[\"workers\"]))'",
			 console, target);
		int st = sh(&s, cmd);
		if (st != 0)
			fail_msg("top: status %d, output: %s", st, s.out);
		assert_true(!strncmp(s.out, "ok ", 3));
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s tasks '%s'", console, target);
		st = sh(&s, cmd);
		if (st != 0)
			fail_msg("tasks: status %d, output: %s", st, s.out);
		assert_non_null(strstr(s.out, "worker 0:"));
		assert_non_null(strstr(s.out, "spinner"));
		assert_non_null(strstr(s.out, "ringlet-control"));
		assert_non_null(strstr(s.out, "main"));
	}
	atomic_store(&stop_spinning, true);
	assert_int_equal(rlt_join(sp, NULL), 0);
	return NULL;
}

static void run_with_control(const char *spec, rlt_task_fn fn, unsigned workers)
{
	setenv("RINGLET_CONTROL", spec, 1);
	rlt_config cfg = {.workers = workers};
	int rc = rlt_run(fn, (void *)spec, &cfg, NULL);
	unsetenv("RINGLET_CONTROL");
	assert_int_equal(rc, 0);
}

static void test_control_answers_top_and_tasks_abstract_by_pid(void **state)
{
	(void)state;
	run_with_control("@", live_main, 2);
}

static void test_control_answers_top_and_tasks_on_a_path(void **state)
{
	(void)state;
	char dir[] = "/tmp/rlt-control-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	/* A stale socket file (nobody listening) is replaced. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	socklen_t len;
	set_addr(&sa, &len, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	close(fd);
	run_with_control(path, live_main, 1);
	/* Unlinked at the end. */
	struct stat st;
	assert_int_equal(lstat(path, &st), -1);
	rmdir(dir);
}

/* RINGLET_TIMING=0: the console answers top without turning timing on. */
static void *no_timing_main(void *arg)
{
	const char *spec = arg;
	rlt_set_io_timeout(10 * RLT_NSEC_PER_SEC);
	char *top = ask(spec, "top\n");
	assert_non_null(strstr(top, "\"timing\":false"));
	assert_non_null(strstr(top, "\"held_ns\":0,"));
	free(top);
	char *stats = ask(spec, "stats\n");
	assert_non_null(strstr(stats, "\"timing\":false"));
	free(stats);
	return NULL;
}

static void test_control_timing_refused_stays_off(void **state)
{
	(void)state;
	char spec[64];
	snprintf(spec, sizeof(spec), "@rlt-test-notiming-%ld", (long)getpid());
	setenv("RINGLET_TIMING", "0", 1);
	run_with_control(spec, no_timing_main, 1);
	unsetenv("RINGLET_TIMING");
}

/* ---- hostile clients ---- */

static void *hostile_main(void *arg)
{
	const char *spec = arg;
	rlt_set_io_timeout(10 * RLT_NSEC_PER_SEC);
	/* A line longer than the limit: refused, connection closed. */
	int fd = dial(spec);
	char junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 1) == '\n' ? 'x' : (char)(i * 7 + 1);
	rlt_send_all(fd, junk, sizeof(junk), 0); /* may fail: it closes early */
	char *out = read_all(fd, NULL);
	assert_true(!strncmp(out, "error: command line too long", 28));
	free(out);
	rlt_close(fd);
	/* Binary garbage on one line: an error, not a crash. */
	out = ask(spec, "\x01\xff\xfe garbage \x7f\n");
	assert_true(!strncmp(out, "error: unknown command", 22));
	free(out);
	/* A client that ends mid-line: nothing to say, nothing broken. */
	fd = dial(spec);
	rlt_send_all(fd, "sta", 3, 0);
	rlt_shutdown(fd, SHUT_WR);
	out = read_all(fd, NULL);
	assert_string_equal(out, "");
	free(out);
	rlt_close(fd);

	/* Silent clients: MAX_CLIENTS (16) of them hold every slot; the next
	 * is closed at once; each silent one is cut off at the 2 s deadline,
	 * and then the console answers again. */
	int idle[16];
	uint64_t dialed = rlt_now();
	for (int i = 0; i < 16; i++)
		idle[i] = dial(spec);
	/* The server accepts in order, so by the time it takes the next one
	 * the 16 hold every slot: it is closed without a word, while the
	 * silent ones are still connected (no wall-clock bound: on a loaded
	 * machine "at once" can take a while, the order cannot change). */
	uint64_t t0 = rlt_now();
	fd = dial(spec);
	out = read_all(fd, NULL);
	assert_string_equal(out, ""); /* closed without a word */
	free(out);
	rlt_close(fd);
	char b;
	/* not cut off before its deadline: nothing to read and no end of
	 * stream yet, or (a slow machine: the refusal took 2 s) an end that
	 * came at least 2 s after it was dialed */
	ssize_t k = recv(idle[15], &b, 1, MSG_DONTWAIT);
	if (k == 0)
		assert_true(rlt_now() - dialed >= 2 * RLT_NSEC_PER_SEC);
	else {
		assert_int_equal(k, -1);
		assert_int_equal(errno, EAGAIN);
	}
	for (int i = 0; i < 16; i++) {
		out = read_all(idle[i], NULL);
		assert_string_equal(out, "");
		free(out);
		rlt_close(idle[i]);
	}
	/* cut off by their deadline: not before it (from the dials), not
	 * long after the refusal */
	uint64_t now = rlt_now();
	assert_true(now - dialed >= RLT_NSEC_PER_SEC && now - t0 < 6 * RLT_NSEC_PER_SEC);
	out = ask(spec, "stats\n");
	assert_true(!strncmp(out, "{\"version\":1,", 13));
	free(out);
	return NULL;
}

static void test_control_survives_garbage_silent_and_too_many_clients(void **state)
{
	(void)state;
	char spec[64];
	snprintf(spec, sizeof(spec), "@rlt-test-control-%ld", (long)getpid());
	run_with_control(spec, hostile_main, 2);
}

/* ---- another user ---- */

typedef struct other_user {
	const char *spec;
	char out[256];
	int status;
} other_user;

static void *as_nobody(void *arg)
{
	other_user *u = arg;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		/* The refusal may come (and the server close) before our
		 * command goes out: the write may fail, the answer is there. */
		signal(SIGPIPE, SIG_IGN);
		struct sockaddr_un sa;
		socklen_t len;
		set_addr(&sa, &len, u->spec);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0)
			_exit(4);
		ssize_t w = write(fd, "tasks\n", 6);
		(void)w;
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		if (n < 0)
			_exit(6);
		buf[n] = '\0';
		_exit(strncmp(buf, "error: permission denied", 24) == 0 ? 0 : 7);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	u->status = st;
	return NULL;
}

static void *refuse_main(void *arg)
{
	other_user u = {.spec = arg};
	rlt_set_io_timeout(10 * RLT_NSEC_PER_SEC);
	assert_int_equal(rlt_run_blocking(NULL, as_nobody, &u, NULL), 0);
	if (!WIFEXITED(u.status) || WEXITSTATUS(u.status) != 0)
		fail_msg("the other user's client: status %#x (7: not refused)", u.status);
	/* We, the same user, are answered. */
	char *out = ask(arg, "stats\n");
	assert_true(!strncmp(out, "{\"version\":1,", 13));
	free(out);
	return NULL;
}

static void test_control_refuses_another_user(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("SKIP: not root: cannot make a client of another uid\n");
		skip();
	}
	char spec[64];
	/* Abstract: no file permission stands in the way, only the check. */
	snprintf(spec, sizeof(spec), "@rlt-test-refuse-%ld", (long)getpid());
	run_with_control(spec, refuse_main, 1);
}

/* A console already answering on a path is not taken over: the runtime
 * runs without one, and says so. */
static void *quick_main(void *arg)
{
	(void)arg;
	rlt_stats s;
	assert_int_equal(rlt_runtime_stats(NULL, &s), 0);
	rlt_stats_release(&s);
	return NULL;
}

static void test_control_live_path_is_not_taken_over(void **state)
{
	(void)state;
	char dir[] = "/tmp/rlt-control-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[256], env[300];
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	snprintf(env, sizeof(env), "RINGLET_CONTROL=%s", path);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	socklen_t len;
	set_addr(&sa, &len, path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(listen(lfd, 4), 0);
	char err[4096];
	int st = rlt_test_run_child_cfg(quick_main, NULL, NULL, env, err, sizeof(err));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_non_null(strstr(err, "Address already in use"));
	/* Still ours. */
	struct stat sb;
	assert_int_equal(lstat(path, &sb), 0);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: it forks, which ThreadSanitizer refuses once threads (the
	     * pool's, kept alive) exist. */
	    cmocka_unit_test(test_control_live_path_is_not_taken_over),
	    cmocka_unit_test(test_control_answers_top_and_tasks_abstract_by_pid),
	    cmocka_unit_test(test_control_answers_top_and_tasks_on_a_path),
	    cmocka_unit_test(test_control_survives_garbage_silent_and_too_many_clients),
	    cmocka_unit_test(test_control_timing_refused_stays_off),
	    cmocka_unit_test(test_control_refuses_another_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
