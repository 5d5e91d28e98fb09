/* The MySQL examples against a real mariadbd started here: mysql_users
 * (the seed's case 1) prints the description and the rows of mysql.user,
 * the test user among them; mysql_two_servers runs its two tasks against
 * two addresses of that server (TCP and the Unix socket) on one worker, and
 * their 0.5 s statements overlap (under 1 s in all). */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"
#include "tests/test_mysql_server.h"

#include <poll.h>

extern char **environ;

/* Run an example with args; its stdout in out. Returns the exit status. */
static int run_example(const char *name, const char *a1, const char *a2, char *out, size_t cap,
		       double *ms)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", RLT_EXAMPLES_DIR, name);
	if (access(path, X_OK) != 0)
		fail_msg("%s is not built", path);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	char *argv[] = {path, (char *)a1, (char *)a2, NULL};
	setenv("MYSQL_USER", TMS_USER, 1);
	setenv("MYSQL_PASSWORD", TMS_PASS, 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, 20000) <= 0) {
			kill(pid, SIGKILL);
			fail_msg("%s: no output for 20 s", name);
		}
		ssize_t n = read(pfd[0], out + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = 0;
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	rlt_test_child_fault(st, "(its message is on stderr, above)");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_mysql_users(void **state)
{
	(void)state;
	TMS_REQUIRE();
	char out[8192], addr[64];
	double ms;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", tms.port);
	const char *addrs[] = {addr, tms.sock};
	for (int k = 0; k < 2; k++) {
		int st = run_example("mysql_users", addrs[k], NULL, out, sizeof(out), &ms);
		if (st != 0)
			fail_msg("mysql_users %s: exit %d: %s", addrs[k], st, out);
		/* The description: two string columns (MYSQL_TYPE_STRING 254). */
		assert_non_null(strstr(out, "(('Host', 254), ('User', 254))\n"));
		assert_non_null(strstr(out, "('%', '" TMS_USER "')"));
		assert_non_null(strstr(out, "('localhost', '" TMS_USER "')"));
		assert_non_null(strstr(out, "'root')"));
	}
}

static void test_mysql_two_servers(void **state)
{
	(void)state;
	TMS_REQUIRE();
	char out[8192], addr[64];
	double ms;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", tms.port);
	int st = run_example("mysql_two_servers", addr, tms.sock, out, sizeof(out), &ms);
	if (st != 0)
		fail_msg("mysql_two_servers: exit %d: %s", st, out);
	fprintf(stderr, "%s(%.0f ms)\n", out, ms);
	for (int k = 0; k < 2; k++) {
		char want[64];
		snprintf(want, sizeof(want), "%c: DO SLEEP(0.5) done at", 'a' + k);
		assert_non_null(strstr(out, want));
		snprintf(want, sizeof(want), "%c: (", 'a' + k);
		assert_non_null(strstr(out, want));
	}
	assert_non_null(strstr(out, "('%', '" TMS_USER "')"));
	/* The program's own total: both 0.5 s statements overlapped. */
	const char *both = strstr(out, "both done in ");
	assert_non_null(both);
	double total = atof(both + strlen("both done in "));
	assert_true(total >= 500);
	assert_true(total < (rlt_test_sanitized() ? 950 : 850));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mysql_users),
	    cmocka_unit_test(test_mysql_two_servers),
	};
	return cmocka_run_group_tests(tests, tms_group_setup, tms_group_teardown);
}
