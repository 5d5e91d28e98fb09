/* Traces (RINGLET_TRACE, sched/trace.c): the file is valid Chrome trace
 * JSON, every B has its E on the same worker, the events of a known
 * workload are there, and the ring bounds its size. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "rlt_test.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/rlt-trace-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/trace.json", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

/* The checker: JSON that parses, a traceEvents array, per tid B/E
 * balanced and never closing what was not opened, timestamps that do not
 * go back on a thread; then the caller's own assertions on `ev`. */
static int check(const char *file, const char *extra)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		print_message("SKIP: no /usr/bin/python3: the trace is not parsed\n");
		return 0;
	}
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys\n"
		 "d=json.load(open(sys.argv[1]))\n"
		 "ev=d[\"traceEvents\"]\n"
		 "depth={}; last={}\n"
		 "for e in ev:\n"
		 "  if e[\"ph\"]==\"M\": continue\n"
		 "  t=e[\"tid\"]; assert e[\"ts\"]>=last.get(t,0), e; last[t]=e[\"ts\"]\n"
		 "  if e[\"ph\"]==\"B\": depth[t]=depth.get(t,0)+1\n"
		 "  if e[\"ph\"]==\"E\": depth[t]=depth.get(t,0)-1; assert depth[t]>=0, e\n"
		 "assert all(v==0 for v in depth.values()), depth\n"
		 "%s\n"
		 "' %s",
		 extra, file);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void *worker_fn(void *arg)
{
	int *p = arg;
	char c = 'x';
	assert_int_equal(rlt_write(p[1], &c, 1, -1), 1);
	assert_int_equal(rlt_read(p[0], &c, 1, -1), 1);
	rlt_sleep(RLT_NSEC_PER_MSEC);
	for (int i = 0; i < 3; i++)
		rlt_yield();
	return NULL;
}

static void *workload(void *arg)
{
	(void)arg;
	int p[2];
	assert_int_equal(pipe(p), 0);
	rlt_task *ts[50];
	for (int i = 0; i < 50; i++)
		ts[i] = rlt_spawn(worker_fn, p, NULL);
	for (int i = 0; i < 50; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	close(p[0]);
	close(p[1]);
	/* Nothing to do for 20 ms: every worker sleeps in the kernel. */
	rlt_sleep(20 * RLT_NSEC_PER_MSEC);
	return NULL;
}

static void test_trace_file_is_valid_and_balanced(void **state)
{
	(void)state;
	setenv("RINGLET_TRACE", path, 1);
	rlt_config cfg = {.workers = 2};
	int rc = rlt_run(workload, NULL, &cfg, NULL);
	unsetenv("RINGLET_TRACE");
	assert_int_equal(rc, 0);
	/* The workload's events: 50 spawns of worker_fn, its runs, the I/O
	 * (a write and a read each, submitted and done), the main task, a
	 * park, the worker names. */
	assert_int_equal(
	    check(path,
		  "n=lambda f: sum(1 for e in ev if f(e))\n"
		  "assert n(lambda e: e.get(\"name\")==\"spawn\" and "
		  "e[\"args\"][\"fn\"]==\"worker_fn\")==50\n"
		  "assert n(lambda e: e[\"ph\"]==\"B\" and e[\"name\"]==\"worker_fn\")>=50*5\n"
		  "assert n(lambda e: e[\"ph\"]==\"B\" and e[\"name\"]==\"main\")>=1\n"
		  "assert n(lambda e: e.get(\"name\")==\"submit write\")>=50\n"
		  "assert n(lambda e: e.get(\"name\")==\"done read\" and "
		  "e[\"args\"][\"res\"]==1)>=50\n"
		  "assert n(lambda e: e.get(\"name\")==\"park\")>=1\n"
		  "assert n(lambda e: e.get(\"name\")==\"thread_name\")==2\n"
		  "assert n(lambda e: e[\"ph\"]==\"E\" and "
		  "e.get(\"args\",{}).get(\"left\")==\"done\")>=50"),
	    0);
}

static void *many_yields(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++)
		rlt_yield();
	return NULL;
}

static void test_trace_ring_keeps_the_last_events(void **state)
{
	(void)state;
	setenv("RINGLET_TRACE", path, 1);
	setenv("RINGLET_TRACE_SIZE", "64k", 1); /* 2048 events of 32 bytes */
	rlt_config cfg = {.workers = 1};
	int rc = rlt_run(many_yields, NULL, &cfg, NULL);
	unsetenv("RINGLET_TRACE");
	unsetenv("RINGLET_TRACE_SIZE");
	assert_int_equal(rc, 0);
	/* 40000 events made; the last 2048 kept (plus a closing E, the
	 * metadata), and the file ends with the task's end. */
	assert_int_equal(check(path, "x=[e for e in ev if e[\"ph\"]!=\"M\"]\n"
				     "assert 1000 < len(x) <= 2049, len(x)\n"
				     "assert x[-1][\"ph\"]==\"E\""),
			 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < 400 * 1024);
}

/* The console's `trace` command writes the file while the program runs. */
static void *flush_main(void *arg)
{
	(void)arg;
	char name[64];
	snprintf(name, sizeof(name), "rlt-test-trace-%ld", (long)getpid());
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path + 1, name, strlen(name));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	rlt_task *t = rlt_spawn(many_yields, NULL, NULL);
	rlt_set_io_timeout(10 * RLT_NSEC_PER_SEC);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(rlt_connect(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(rlt_send_all(fd, "trace\n", 6, 0), 6);
	char buf[512];
	ssize_t n = rlt_recv_exact(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	rlt_close(fd);
	assert_true(!strncmp(buf, "{\"trace\":", 9));
	assert_non_null(strstr(buf, path));
	assert_int_equal(rlt_join(t, NULL), 0);
	/* Written while running: valid and balanced too. */
	assert_int_equal(check(path, "assert any(e.get(\"name\")==\"many_yields\" for e in ev)"),
			 0);
	return NULL;
}

static void test_trace_written_on_console_request(void **state)
{
	(void)state;
	char ctl[64];
	snprintf(ctl, sizeof(ctl), "@rlt-test-trace-%ld", (long)getpid());
	setenv("RINGLET_TRACE", path, 1);
	setenv("RINGLET_CONTROL", ctl, 1);
	rlt_config cfg = {.workers = 2};
	int rc = rlt_run(flush_main, NULL, &cfg, NULL);
	unsetenv("RINGLET_TRACE");
	unsetenv("RINGLET_CONTROL");
	assert_int_equal(rc, 0);
}

static void test_trace_bad_path_is_reported(void **state)
{
	(void)state;
	char err[4096];
	int st =
	    rlt_test_run_child_cfg(many_yields, NULL, NULL,
				   "RINGLET_TRACE=/nonexistent-dir/x/trace.json", err, sizeof(err));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_non_null(strstr(err, "RINGLET_TRACE=/nonexistent-dir/x/trace.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: it forks, which ThreadSanitizer refuses once threads (the
	     * pool's, kept alive) exist. */
	    cmocka_unit_test(test_trace_bad_path_is_reported),
	    cmocka_unit_test_setup_teardown(test_trace_file_is_valid_and_balanced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_ring_keeps_the_last_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trace_written_on_console_request, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
