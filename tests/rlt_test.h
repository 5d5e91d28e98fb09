/* rlt_test: shared helpers for the cmocka tests (tests/rlt_test.h). */
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

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ringlet.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>

/* ---- Fault mode ----
 *
 * Under the fault policy (RINGLET_POLICY=fault:..., io/policy_fault.c) an
 * I/O operation may fail with an injected -EINTR, -EAGAIN, -ENOMEM,
 * -ECONNRESET or -EIO, transfer less than asked, or be late. A test
 * consults rlt_test_faulty() to relax its exact expectations to what must
 * still hold: no hang, no crash, no leak, every error a negative errno
 * (rlt_test_injected, or a consequence such as -ECANCELED or -EPIPE), and
 * the data that was delivered correct. */
static inline int rlt_test_faulty(void)
{
	const char *p = getenv("RINGLET_POLICY");
	return p && strncmp(p, "fault", 5) == 0 && (p[5] == '\0' || p[5] == ':');
}

/* The environment for a peer process that is not what a test tests (a
 * ringlet-http server for the HTTP client's tests): in a faulty run its
 * RINGLET_POLICY is the fault policy's inner one, so that faults hit the
 * program under test only. Otherwise environ. */
static inline char **rlt_test_peer_environ(void)
{
	extern char **environ;
	static char *env[512];
	static char policy[128];
	const char *p = getenv("RINGLET_POLICY");
	if (!rlt_test_faulty())
		return environ;
	const char *in = strstr(p, "inner=");
	size_t n = in ? strcspn(in + 6, ",") : 0;
	snprintf(policy, sizeof(policy), "RINGLET_POLICY=%.*s", (int)n, n ? in + 6 : "io_uring");
	size_t k = 0;
	for (char **e = environ; *e && k + 2 < sizeof(env) / sizeof(env[0]); e++)
		if (strncmp(*e, "RINGLET_POLICY=", 15) != 0)
			env[k++] = *e;
	env[k++] = policy;
	env[k] = NULL;
	return env;
}

/* Set while rlt_test_run_faults runs a test's own fault scenario, whose
 * checks are its own: the fault matrix's leniency does not apply. */
static int rlt_test__own_faults __attribute__((unused));

/* Under the fault matrix (RINGLET_POLICY=fault:... for the whole run), not
 * in a test's own fault scenario (rlt_test_run_faults). */
static inline int rlt_test_matrix(void)
{
	return rlt_test_faulty() && !rlt_test__own_faults;
}

/* r (an I/O result) is an error the fault policy injects, in a faulty run. */
static inline int rlt_test_injected(long long r)
{
	return rlt_test_faulty() &&
	       (r == -EINTR || r == -EAGAIN || r == -ENOMEM || r == -ECONNRESET || r == -EIO);
}

/* ---- Failures inside tasks ----
 *
 * cmocka ends a failed test with a longjmp to the test's start, on the
 * thread that runs the test: from a task it would jump off the task's
 * stack (or, on another worker's thread, exit the program with the message
 * lost). So here the functions behind cmocka's assert macros, fail(),
 * fail_msg() and skip() are replaced (the macros below): outside a task
 * they are cmocka's own; inside one they print the failure at once (file,
 * line, message, the task), record it, cancel the root task (so the test
 * does not wait for what the failed task would have done) and end the
 * task where it is, as if it had returned rlt_fail(-ENOTRECOVERABLE) (its
 * defers run; its frames are abandoned, and what they held stays held).
 * rlt_run (a macro here too) then fails the test from the test's thread
 * with the first failure's message: "[  FAILED  ]" and the message, as for
 * a failure outside a task. A skip() in a task skips the test the same way
 * (unless a failure came first). A failure on a thread that is neither a
 * task nor the test's (a pool thread) prints its message and aborts. */

/* runtime/task.h and io/policy.h, for the harness only. */
void rlt__task_exit(void *result);
int rlt__task_cancel_root(void);
uint64_t rlt__fault_injected(void);

/* ---- Checks after a fault (opt-in) ----
 *
 * A test file that defines RLT_TEST_FAULT_LENIENT before including this
 * header tests something other than the I/O path itself (a protocol's
 * semantics, the console, an example program), through many operations
 * any of which the fault policy may break, and whose library may turn an
 * injected error into its own (-EPIPE, -EPROTO, a 502, a closed
 * connection). In a faulty run, once the fault policy has injected a
 * fault since the last rlt_run began, a failing condition check
 * (assert_true, assert_int_equal, assert_non_null, fail, ...) ends the
 * scenario as faulted instead of failing. A check of data
 * (assert_string_equal, assert_memory_equal) still fails: a fault may cut
 * what arrives short, never make it wrong. Before any fault, every check
 * is exact. What is left to fail in such a run: a hang, a crash, a
 * sanitizer report, wrong data, a check that fails with no fault. */
#ifdef RLT_TEST_FAULT_LENIENT
#define RLT_TEST__LENIENT 1
#else
#define RLT_TEST__LENIENT 0
#endif
static uint64_t rlt_test__fault_mark __attribute__((unused));	  /* at the last rlt_run's start */
static __thread int rlt_test__data_check __attribute__((unused)); /* the failing check is of data */

#define RLT_TEST_MSG_MAX 2048
static pthread_mutex_t rlt_test__mu __attribute__((unused)) = PTHREAD_MUTEX_INITIALIZER;
static int rlt_test__nfail __attribute__((unused));   /* failures in tasks, this rlt_run */
static int rlt_test__skipped __attribute__((unused)); /* the first event: 1 a skip, 2 a fault */
static char rlt_test__first[RLT_TEST_MSG_MAX] __attribute__((unused));
static const char *rlt_test__first_file __attribute__((unused)); /* __FILE__: static */
static int rlt_test__first_line __attribute__((unused));
static pthread_t rlt_test__main __attribute__((unused));
static int rlt_test__is_child __attribute__((unused)); /* in rlt_test_fork's child */
/* Text printed by print_error() (fail_msg's message) in a task, until
 * the fail() that follows: per thread, as a task prints and fails without
 * suspending in between. */
static __thread char rlt_test__pending[RLT_TEST_MSG_MAX] __attribute__((unused));
static __thread size_t rlt_test__pending_len __attribute__((unused));

__attribute__((constructor)) static void rlt_test__init(void)
{
	rlt_test__main = pthread_self();
}

static inline int rlt_test__in_task(void)
{
	return rlt_current() != NULL;
}

/* RLT_TEST_FAULT_LENIENT: a fault was injected since the last rlt_run
 * began, in a faulty run. */
static inline int rlt_test__after_fault(void)
{
	return RLT_TEST__LENIENT && rlt_test_matrix() &&
	       rlt__fault_injected() > rlt_test__fault_mark;
}

/* A failure on a thread that is not a task (nor the test's own): nothing
 * to end but the program. */
static inline int rlt_test__foreign(void)
{
	return !rlt_test__in_task() && !pthread_equal(pthread_self(), rlt_test__main);
}

__attribute__((noreturn)) static inline void rlt_test__end(int skip, const char *file, int line,
							   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

__attribute__((noreturn)) static inline void rlt_test__end(int skip, const char *file, int line,
							   const char *fmt, ...)
{
	char what[RLT_TEST_MSG_MAX / 2];
	if (skip == 0 && !rlt_test__data_check && rlt_test__after_fault())
		skip = 2;
	rlt_test__data_check = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	char msg[RLT_TEST_MSG_MAX];
	int pl = (int)rlt_test__pending_len;
	while (pl > 0 && rlt_test__pending[pl - 1] == '\n')
		pl--;
	const char *pend = rlt_test__pending;
	if (pl >= 7 && strncmp(pend, "ERROR: ", 7) == 0) { /* fail_msg's prefix */
		pend += 7;
		pl -= 7;
	}
	rlt_task *t = rlt_current();
	if (t)
		snprintf(msg, sizeof(msg), "%s:%d: %s%s%.*s (in task \"%s\", id %" PRIu64 ")", file,
			 line, what, pl && what[0] ? ": " : "", pl, pend, rlt_task_name(t),
			 rlt_task_id(t));
	else
		snprintf(msg, sizeof(msg), "%s:%d: %s%s%.*s (on a thread that is not a task)", file,
			 line, what, pl && what[0] ? ": " : "", pl, pend);
	rlt_test__pending_len = 0;
	rlt_test__pending[0] = '\0';
	fprintf(stderr, "[ IN TASK  ] %s %s\n",
		skip == 2 ? "ended by an injected fault:"
		: skip	  ? "skipped:"
			  : "failure:",
		msg);
	fflush(stderr);
	if (!t) {
		/* A pool or foreign thread: cmocka would exit(-1) without the
		 * message; it is printed above. */
		abort();
	}
	pthread_mutex_lock(&rlt_test__mu);
	if (rlt_test__nfail == 0 && !rlt_test__skipped) {
		snprintf(rlt_test__first, sizeof(rlt_test__first), "%s", msg);
		rlt_test__first_file = file;
		rlt_test__first_line = line;
		rlt_test__skipped = skip;
	}
	if (!skip)
		rlt_test__nfail++;
	pthread_mutex_unlock(&rlt_test__mu);
	rlt__task_cancel_root();
	rlt__task_exit(rlt_fail(-ENOTRECOVERABLE));
	abort(); /* not reached */
}

/* Fault mode: a failure message (fail_msg's) that shows an injected
 * error as a number ("rlt_recv: -104 with 7 bytes to go") is taken for the
 * scenario ended by that fault. */
static inline int rlt_test__names_injected(const char *m, size_t len)
{
	if (!rlt_test_faulty())
		return 0;
	/* Or as its strerror text ("recv: Cannot allocate memory"). */
	static const int injected[] = {EINTR, EAGAIN, ENOMEM, ECONNRESET, EIO};
	for (size_t k = 0; k < sizeof(injected) / sizeof(injected[0]); k++) {
		const char *text = strerror(injected[k]);
		size_t tl = strlen(text);
		for (size_t i = 0; tl && i + tl <= len; i++)
			if (memcmp(m + i, text, tl) == 0)
				return 1;
	}
	for (size_t i = 0; i + 1 < len; i++) {
		if (m[i] != '-' || m[i + 1] < '0' || m[i + 1] > '9')
			continue;
		char prev = i > 0 ? m[i - 1] : ' ';
		if ((prev >= '0' && prev <= '9') || (prev >= 'a' && prev <= 'z') ||
		    (prev >= 'A' && prev <= 'Z'))
			continue;
		long long v = 0;
		size_t j = i + 1;
		while (j < len && m[j] >= '0' && m[j] <= '9' && v < 100000)
			v = v * 10 + (m[j++] - '0');
		if ((j == len || m[j] < '0' || m[j] > '9') && rlt_test_injected(-v))
			return 1;
	}
	return 0;
}

static inline void rlt_test__print_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline void rlt_test__print_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (rlt_test__in_task() || rlt_test__foreign()) {
		size_t n = rlt_test__pending_len;
		if (n + 1 < sizeof(rlt_test__pending)) {
			int k = vsnprintf(rlt_test__pending + n, sizeof(rlt_test__pending) - n, fmt,
					  ap);
			if (k > 0)
				rlt_test__pending_len = n + (size_t)k < sizeof(rlt_test__pending)
							    ? n + (size_t)k
							    : sizeof(rlt_test__pending) - 1;
		}
	} else {
		vprint_error(fmt, ap);
	}
	va_end(ap);
}

#define RLT_TEST__SPECIAL() (rlt_test__in_task() || rlt_test__foreign())

/* RLT_TEST_FAULT_LENIENT, on the test's thread: a failed condition check
 * after a fault ends the test case as faulted (cmocka: skipped). */
static inline void rlt_test__outside_after_fault(const char *file, int line, const char *what)
{
	if (RLT_TEST__SPECIAL() || !rlt_test__after_fault())
		return;
	print_message("[ FAULTED  ] %s:%d: %s, after %llu injected fault(s)\n", file, line, what,
		      (unsigned long long)(rlt__fault_injected() - rlt_test__fault_mark));
	(_skip)(file, line);
}

/* A ringlet program run by a test (an example) under the fault policy:
 * status (waitpid's) is a clean failure, an exit with a non-zero status
 * and a message on its stderr (err, its text), which ends the test case
 * as faulted. A signal, a silent failure or a success return: nothing
 * here (the test checks the status and output as usual). On the test's
 * thread only. */
static inline void rlt_test_child_fault(int status, const char *err, const char *file, int line)
{
	if (!rlt_test_faulty() || !WIFEXITED(status) || WEXITSTATUS(status) == 0 || !err || !err[0])
		return;
	print_message("[ FAULTED  ] %s:%d: the program exited %d under the fault policy: %.*s\n",
		      file, line, WEXITSTATUS(status), (int)strcspn(err, "\n"), err);
	(_skip)(file, line);
}
#define rlt_test_child_fault(status, err) rlt_test_child_fault((status), (err), __FILE__, __LINE__)

/* A ringlet program's output (stdout or stderr) under the fault policy
 * that names an injected error ("job 2: Connection reset by peer"): the
 * program reported the fault and went on; the test case ends as faulted
 * (its exact output cannot be expected). On the test's thread only. */
static inline void rlt_test__output_fault(const char *text, const char *file, int line)
{
	if (!text || !rlt_test__names_injected(text, strlen(text)))
		return;
	print_message("[ FAULTED  ] %s:%d: the program reported an injected fault: %.*s\n", file,
		      line, (int)strcspn(text, "\n"), text);
	(_skip)(file, line);
}
#define rlt_test_output_fault(text) rlt_test__output_fault((text), __FILE__, __LINE__)

/* cmocka's _fail and _skip do not return (a longjmp, or exit). */
__attribute__((noreturn)) static inline void rlt_test__fail(const char *file, int line)
{
	if (RLT_TEST__SPECIAL())
		rlt_test__end(
		    rlt_test__names_injected(rlt_test__pending, rlt_test__pending_len) ? 2 : 0,
		    file, line, "%s", rlt_test__pending_len ? "" : "Failure!");
	rlt_test__outside_after_fault(file, line, "fail()");
	(_fail)(file, line);
	abort();
}

__attribute__((noreturn)) static inline void rlt_test__skip(const char *file, int line)
{
	if (RLT_TEST__SPECIAL())
		rlt_test__end(1, file, line, "skip()");
	(_skip)(file, line);
	abort();
}

static inline void rlt_test__assert_true(LargestIntegralType r, const char *expr, const char *file,
					 int line)
{
	if (!r)
		rlt_test__outside_after_fault(file, line, expr);
	if (r || !RLT_TEST__SPECIAL()) {
		(_assert_true)(r, expr, file, line);
		return;
	}
	rlt_test__end(0, file, line, "%s", expr);
}

static inline void rlt_test__assert_int_equal(LargestIntegralType a, LargestIntegralType b,
					      const char *file, int line)
{
	if (a != b)
		rlt_test__outside_after_fault(file, line, "values differ");
	if (a == b || !RLT_TEST__SPECIAL()) {
		(_assert_int_equal)(a, b, file, line);
		return;
	}
	/* Fault mode: an operation that got an injected error where the test
	 * expected another result ends the test's scenario there: the test
	 * is reported as ended by the fault (cmocka: skipped), not failed.
	 * (The value the test expected may be either side.) */
	if (rlt_test_injected((long long)a) || rlt_test_injected((long long)b))
		rlt_test__end(2, file, line, "%lld != %lld", (long long)a, (long long)b);
	/* So does a count short of the one expected (the policy cuts
	 * transfers short): what came was less than the test can check. */
	if (rlt_test_faulty() && (long long)a >= 0 && (long long)a < (long long)b)
		rlt_test__end(2, file, line, "%lld != %lld (short)", (long long)a, (long long)b);
	rlt_test__end(0, file, line, "%lld (%#llx) != %lld (%#llx)", (long long)a,
		      (unsigned long long)a, (long long)b, (unsigned long long)b);
}

static inline void rlt_test__assert_int_not_equal(LargestIntegralType a, LargestIntegralType b,
						  const char *file, int line)
{
	if (a == b)
		rlt_test__outside_after_fault(file, line, "values equal");
	if (a != b || !RLT_TEST__SPECIAL()) {
		(_assert_int_not_equal)(a, b, file, line);
		return;
	}
	rlt_test__end(0, file, line, "%lld (%#llx) == %lld (%#llx)", (long long)a,
		      (unsigned long long)a, (long long)b, (unsigned long long)b);
}

static inline int rlt_test__str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static inline void rlt_test__assert_string_equal(const char *a, const char *b, const char *file,
						 int line)
{
	if (rlt_test__str_eq(a, b) || !RLT_TEST__SPECIAL()) {
		(_assert_string_equal)(a, b, file, line);
		return;
	}
	rlt_test__data_check = 1;
	rlt_test__end(0, file, line, "\"%s\" != \"%s\"", a ? a : "(null)", b ? b : "(null)");
}

static inline void rlt_test__assert_string_not_equal(const char *a, const char *b, const char *file,
						     int line)
{
	if (!rlt_test__str_eq(a, b) || !RLT_TEST__SPECIAL()) {
		(_assert_string_not_equal)(a, b, file, line);
		return;
	}
	rlt_test__end(0, file, line, "\"%s\" == \"%s\"", a ? a : "(null)", b ? b : "(null)");
}

static inline void rlt_test__assert_memory_equal(const void *a, const void *b, size_t size,
						 const char *file, int line)
{
	if (!RLT_TEST__SPECIAL() || !a || !b) {
		(_assert_memory_equal)(a, b, size, file, line);
		return;
	}
	const unsigned char *x = a, *y = b;
	size_t first = size, ndiff = 0;
	for (size_t i = 0; i < size; i++)
		if (x[i] != y[i]) {
			if (first == size)
				first = i;
			ndiff++;
		}
	if (ndiff) {
		rlt_test__data_check = 1;
		rlt_test__end(0, file, line,
			      "%zu of %zu bytes differ, the first at offset %zu: 0x%02x != 0x%02x",
			      ndiff, size, first, x[first], y[first]);
	}
}

static inline void rlt_test__assert_memory_not_equal(const void *a, const void *b, size_t size,
						     const char *file, int line)
{
	if (!RLT_TEST__SPECIAL() || !a || !b || memcmp(a, b, size) != 0) {
		(_assert_memory_not_equal)(a, b, size, file, line);
		return;
	}
	rlt_test__end(0, file, line, "%zu bytes are equal", size);
}

static inline void rlt_test__assert_in_range(LargestIntegralType v, LargestIntegralType lo,
					     LargestIntegralType hi, const char *file, int line)
{
	if ((v >= lo && v <= hi) || !RLT_TEST__SPECIAL()) {
		(_assert_in_range)(v, lo, hi, file, line);
		return;
	}
	rlt_test__end(0, file, line, "%llu is not within the range [%llu, %llu]",
		      (unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
}

static inline void rlt_test__assert_not_in_range(LargestIntegralType v, LargestIntegralType lo,
						 LargestIntegralType hi, const char *file, int line)
{
	if (v < lo || v > hi || !RLT_TEST__SPECIAL()) {
		(_assert_not_in_range)(v, lo, hi, file, line);
		return;
	}
	rlt_test__end(0, file, line, "%llu is within the range [%llu, %llu]", (unsigned long long)v,
		      (unsigned long long)lo, (unsigned long long)hi);
}

#define print_error(...)		     rlt_test__print_error(__VA_ARGS__)
#define _fail(f, l)			     rlt_test__fail((f), (l))
#define _skip(f, l)			     rlt_test__skip((f), (l))
#define _assert_true(r, e, f, l)	     rlt_test__assert_true((r), (e), (f), (l))
#define _assert_int_equal(a, b, f, l)	     rlt_test__assert_int_equal((a), (b), (f), (l))
#define _assert_int_not_equal(a, b, f, l)    rlt_test__assert_int_not_equal((a), (b), (f), (l))
#define _assert_string_equal(a, b, f, l)     rlt_test__assert_string_equal((a), (b), (f), (l))
#define _assert_string_not_equal(a, b, f, l) rlt_test__assert_string_not_equal((a), (b), (f), (l))
#define _assert_memory_equal(a, b, n, f, l)  rlt_test__assert_memory_equal((a), (b), (n), (f), (l))
#define _assert_memory_not_equal(a, b, n, f, l)                                                    \
	rlt_test__assert_memory_not_equal((a), (b), (n), (f), (l))
#define _assert_in_range(v, a, b, f, l)	    rlt_test__assert_in_range((v), (a), (b), (f), (l))
#define _assert_not_in_range(v, a, b, f, l) rlt_test__assert_not_in_range((v), (a), (b), (f), (l))

/* The children of this process's threads (/proc/self/task/N/children),
 * up to max; their count. */
static inline int rlt_test__children(pid_t *out, int max)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		int pid;
		while (n < max && fscanf(f, "%d", &pid) == 1)
			out[n++] = pid;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* A scenario that failed or was ended (by a fault, a skip) abandons its
 * frames, and with them the peers it started (a server, curl, openssl):
 * stop the children that were not there when its rlt_run began (SIGTERM,
 * then SIGKILL after 3 s), and reap them, so none keeps the test's output
 * open (ctest would wait for it) or outlives the test. */
static inline void rlt_test__stop_new_children(const pid_t *before, int nbefore)
{
	pid_t now[256];
	int n = rlt_test__children(now, 256), left = 0;
	pid_t stop[256];
	for (int i = 0; i < n; i++) {
		int old = 0;
		for (int j = 0; j < nbefore && !old; j++)
			old = now[i] == before[j];
		if (!old) {
			stop[left++] = now[i];
			kill(now[i], SIGTERM);
		}
	}
	for (int i = 0; i < left; i++) {
		int reaped = 0;
		for (int t = 0; t < 300 && !reaped; t++) {
			if (waitpid(stop[i], NULL, WNOHANG) != 0)
				reaped = 1;
			else
				usleep(10000);
		}
		if (!reaped) {
			kill(stop[i], SIGKILL);
			waitpid(stop[i], NULL, 0);
		}
		fprintf(stderr, "[ CLEANUP  ] stopped child %d, left by the scenario\n",
			(int)stop[i]);
	}
}

/* rlt_run, then the failures its tasks recorded, from the calling thread:
 * the test fails (or is skipped) here, with the first one's message. */
static inline int rlt_test__run(rlt_task_fn fn, void *arg, const rlt_config *cfg, void **result)
{
	pid_t before[256];
	int nbefore = rlt_test__children(before, 256);
	rlt_test__fault_mark = rlt__fault_injected();
	int rc = (rlt_run)(fn, arg, cfg, result);
	pthread_mutex_lock(&rlt_test__mu);
	int nfail = rlt_test__nfail, skipped = rlt_test__skipped;
	char first[RLT_TEST_MSG_MAX];
	memcpy(first, rlt_test__first, sizeof(first));
	const char *file = rlt_test__first_file;
	int line = rlt_test__first_line;
	rlt_test__nfail = 0;
	rlt_test__skipped = 0;
	rlt_test__first[0] = '\0';
	pthread_mutex_unlock(&rlt_test__mu);
	if (!nfail && !skipped)
		return rc;
	rlt_test__stop_new_children(before, nbefore);
	if (rlt_test__is_child) {
		/* A death test's child (rlt_test_fork): no test to fail here. */
		fprintf(stderr, "[  FAILED  ] in a child process: %s\n", first);
		fflush(NULL);
		_exit(1);
	}
	if (skipped == 2) {
		print_message("[ FAULTED  ] ended by an injected fault in a task: %s\n", first);
		(_skip)(file, line);
	}
	if (skipped) {
		print_message("[ SKIPPED  ] in a task: %s\n", first);
		(_skip)(file, line);
	}
	print_error("ERROR: in a task: %s%s\n", first,
		    nfail > 1 ? " (and later failures, printed above)" : "");
	(_fail)(file, line);
	return rc;
}

#define rlt_run(fn, arg, cfg, res) rlt_test__run((fn), (arg), (cfg), (res))

/* In a task of a faulty run, an injected error r ends the scenario there
 * (the test is reported as ended by the fault, not failed); otherwise
 * nothing: for the checks that print their own message (fail_msg). */
#define rlt_test_fault_ends(r)                                                                     \
	do {                                                                                       \
		long long rlt_r_ = (long long)(r);                                                 \
		if (rlt_test_injected(rlt_r_) && rlt_test__in_task())                              \
			rlt_test__end(2, __FILE__, __LINE__, "%s: %lld", #r, rlt_r_);              \
	} while (0)

/* In a task of a faulty run, end the scenario: what it tests could not
 * happen because of a fault (why: a string). */
#define rlt_test_faulted(why)                                                                      \
	do {                                                                                       \
		if (rlt_test_faulty() && rlt_test__in_task())                                      \
			rlt_test__end(2, __FILE__, __LINE__, "%s", (why));                         \
	} while (0)

/* r (an I/O result) >= 0; in a faulty run an injected error ends the
 * scenario (rlt_test_fault_ends). The failure names r's value. */
#define rlt_test_assert_ok(r)                                                                      \
	do {                                                                                       \
		long long rlt_ok_ = (long long)(r);                                                \
		if (rlt_ok_ < 0) {                                                                 \
			rlt_test_fault_ends(rlt_ok_);                                              \
			fail_msg("%s >= 0: got %lld", #r, rlt_ok_);                                \
		}                                                                                  \
	} while (0)

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

/* Spawn fn(arg) pinned on worker w (as above); asserts it was spawned.
 * The task's default name is fn's. */
static inline rlt_task *rlt_test__spawn_on(rlt_task_fn fn, void *arg, unsigned w, const char *name)
{
	rlt_spawn_opts o = rlt_test_on_worker(w);
	rlt_task *t = rlt_spawn_named(fn, arg, &o, name);
	assert_non_null(t);
	return t;
}
#define rlt_test_spawn_on(fn, arg, w) rlt_test__spawn_on((fn), (arg), (w), #fn)

/* Run fn(arg) under "fault:<opts>,inner=<the policy this run was given>"
 * on two workers (the ctest matrix sets RINGLET_POLICY, which wins over
 * rlt_config, so it is swapped for the length of the run). */
static inline void rlt_test_run_faults(const char *opts, rlt_task_fn fn, void *arg)
{
	rlt_test__own_faults = 1;
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
	rlt_test__own_faults = 0;
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
		rlt_test__is_child = 1;
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

/* In a faulty run, an injected error r ends the scenario: goto label (its
 * cleanup). Otherwise r is checked as the test says next. */
#define rlt_test_on_fault(r, label)                                                                \
	do {                                                                                       \
		if (rlt_test_injected(r))                                                          \
			goto label;                                                                \
	} while (0)

/* r (an I/O result) is want, or in a faulty run an injected error. */
#define rlt_test_assert_io(r, want)                                                                \
	do {                                                                                       \
		long long rlt_r_ = (long long)(r);                                                 \
		if (!rlt_test_injected(rlt_r_))                                                    \
			assert_int_equal(rlt_r_, (want));                                          \
	} while (0)

/* A "Name: N kB" field of /proc/self/status ("VmRSS", "VmSize"), in KiB;
 * -1 when it cannot be read. */
static inline long rlt_test_status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(field);
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':' &&
		    sscanf(line + n + 1, "%ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* A connected TCP pair on loopback (port chosen by the kernel), both ends
 * TCP_NODELAY, made with plain blocking calls (no ringlet operation: the
 * fault policy injects nothing here). */
static inline void rlt_test_tcp_pair(int sv[2])
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv[0] >= 0);
	assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sv[1] >= 0);
	int one = 1;
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
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

/* r (an I/O result) > 0; in a faulty run an injected error ends the
 * scenario. */
#define rlt_test_assert_pos(r)                                                                     \
	do {                                                                                       \
		long long rlt_pos_ = (long long)(r);                                               \
		if (rlt_pos_ <= 0) {                                                               \
			rlt_test_fault_ends(rlt_pos_);                                             \
			fail_msg("%s > 0: got %lld", #r, rlt_pos_);                                \
		}                                                                                  \
	} while (0)

#endif
