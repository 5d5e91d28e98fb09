/* examples/crawler.c and examples/download.c against python3 -m http.server
 * (started here on a free port over generated files): the crawler prints
 * "sending request: URL" and "got result: URL LENGTH" for every URL, the
 * downloader writes every body to its file, byte for byte, and both report
 * a failing URL and exit 1. Every run is bounded in time. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/http_client_peers.h"

#include <poll.h>

#define RUN_TIMEOUT_MS 20000
#define OUT_MAX	       16384

typedef struct run {
	char out[OUT_MAX + 1], err[OUT_MAX + 1];
	size_t out_len, err_len;
	int status;
} run;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool drain_fd(int fd, char *buf, size_t *len)
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

static void run_example(char *const argv[], run *r)
{
	memset(r, 0, sizeof(*r));
	int out[2], err[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	if (rc != 0)
		fail_msg("posix_spawn %s: %s (build the examples first)", argv[0], strerror(rc));
	double deadline = now_ms() + RUN_TIMEOUT_MS;
	struct pollfd pfd[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		double left = deadline - now_ms();
		if (left <= 0 || poll(pfd, 2, (int)left) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("%s did not finish in %d ms; stdout so far:\n%s", argv[0],
				 RUN_TIMEOUT_MS, r->out);
		}
		if (pfd[0].revents && !drain_fd(out[0], r->out, &r->out_len))
			pfd[0].fd = -1;
		if (pfd[1].revents && !drain_fd(err[0], r->err, &r->err_len))
			pfd[1].fd = -1;
	}
	close(out[0]);
	close(err[0]);
	waitpid(pid, &r->status, 0);
}

static void expect_line(const run *r, const char *line)
{
	char want[512];
	snprintf(want, sizeof(want), "%s\n", line);
	if (!strstr(r->out, want))
		fail_msg("no line \"%s\" in:\n%s", line, r->out);
}

static peer py;

static int teardown(void **state)
{
	peer_stop(&py);
	return 0;
}

static void test_http_client_crawler_and_download_examples(void **state)
{
	if (!peer_start_python(&py))
		skip();
	char ex_crawler[512], ex_download[512], u[4][128], line[1024];
	snprintf(ex_crawler, sizeof(ex_crawler), "%s/crawler", RLT_EXAMPLES_DIR);
	snprintf(ex_download, sizeof(ex_download), "%s/download", RLT_EXAMPLES_DIR);
	const char *paths[] = {"/small.txt", "/f4k.bin", "/big.bin", "/missing"};
	for (int i = 0; i < 4; i++)
		snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%d%s", py.port, paths[i]);
	const long sizes[] = {12, 4096, 3 << 20};

	/* The crawler: a line as each request goes out and as each ends. */
	run r;
	char *argv[] = {ex_crawler, u[0], u[1], u[2], NULL};
	run_example(argv, &r);
	rlt_test_child_fault(r.status, r.err);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	for (int i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "sending request: %s", u[i]);
		expect_line(&r, line);
		snprintf(line, sizeof(line), "got result: %s %ld", u[i], sizes[i]);
		expect_line(&r, line);
		/* Each result comes after its request. */
		char req[1024], res[1024];
		snprintf(req, sizeof(req), "sending request: %s\n", u[i]);
		snprintf(res, sizeof(res), "got result: %s ", u[i]);
		assert_true(strstr(r.out, req) < strstr(r.out, res));
	}
	assert_int_equal(r.err_len, 0);

	/* Quiet, with a concurrency of 2 and a URL nobody answers. */
	char dead[64];
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/", peer_free_port());
	char *argv_q[] = {ex_crawler, "-q", "-c", "2", u[0], u[1], dead, NULL};
	run_example(argv_q, &r);
	if (!strstr(r.out, "3 urls, 4108 bytes, 1 failed\n"))
		rlt_test_child_fault(r.status, r.err);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
	expect_line(&r, "3 urls, 4108 bytes, 1 failed");
	snprintf(line, sizeof(line), "failed: %s: %s", dead, strerror(ECONNREFUSED));
	/* Under the fault policy the dead URL may fail with an injected error
	 * before the refusal (fault seed 19 once did): faulted, not failed. */
	if (!strstr(r.err, line)) {
		rlt_test_output_fault(r.err);
		fail_msg("no \"%s\" in the crawler's stderr:\n%s", line, r.err);
	}

	/* The downloader: every file whole; the 404 leaves no file. */
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/out", py.dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	char *argv_d[] = {ex_download, dir, u[0], u[1], u[2], NULL};
	run_example(argv_d, &r);
	rlt_test_child_fault(r.status, r.err);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
	const char *names[] = {"small.txt", "f4k.bin", "big.bin"};
	for (int i = 0; i < 3; i++) {
		snprintf(line, sizeof(line), "downloaded %s -> %s (%ld bytes)", u[i], names[i],
			 sizes[i]);
		expect_line(&r, line);
		char a[512], b[512];
		snprintf(a, sizeof(a), "%s/%s", dir, names[i]);
		snprintf(b, sizeof(b), "%s/www/%s", py.dir, names[i]);
		FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
		assert_non_null(fa);
		assert_non_null(fb);
		long n = 0;
		int ca, cb;
		do {
			ca = fgetc(fa);
			cb = fgetc(fb);
			if (ca != cb)
				fail_msg("%s differs at byte %ld", a, n);
			n++;
		} while (ca != EOF);
		assert_int_equal(n - 1, sizes[i]);
		fclose(fa);
		fclose(fb);
	}
	expect_line(&r, "3 files, 3149836 bytes");

	char *argv_404[] = {ex_download, dir, u[3], NULL};
	run_example(argv_404, &r);
	if (!strstr(r.err, ": status 404"))
		rlt_test_child_fault(r.status, r.err);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
	snprintf(line, sizeof(line), "failed: %s: status 404", u[3]);
	assert_non_null(strstr(r.err, line));
	snprintf(line, sizeof(line), "%s/missing", dir);
	assert_int_equal(access(line, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_http_client_crawler_and_download_examples, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
