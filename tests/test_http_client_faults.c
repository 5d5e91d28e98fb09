/* The HTTP client under the fault policy (injected errors, short reads and
 * writes, on the client's and the scripted server's I/O alike): every
 * fetch either returns the whole, right body or a negative errno (never
 * a short or wrong body that looks whole, never a hang), the pool ends
 * with no connection lost, and the client can be freed. The close-
 * delimited body (/eof) is left out: a connection's end is its framing,
 * so a server that fails mid-body and closes cannot be told from one that
 * finished. */
#include "tests/http_client_srv.h"

#include <ringlet/http_client.h>

#define TASKS  6
#define ROUNDS 12

typedef struct fault_run {
	srv *s;
	rlt_http_client *c;
	atomic_int ok, failed, wrong;
	atomic_int unexpected; /* an errno outside the expected set */
	atomic_int last_unexpected;
} fault_run;

static bool body_ok(const char *path, const char *b, ssize_t n)
{
	if (!strcmp(path, "/hello"))
		return n == 5 && !memcmp(b, "hello", 5);
	if (!strcmp(path, "/chunked"))
		return n == 11 && !memcmp(b, "hello world", 11);
	if (!strcmp(path, "/big")) {
		if (n != (1 << 20) + 1)
			return false;
		for (ssize_t i = 0; i < n; i++)
			if (b[i] != (char)('a' + i % 26))
				return false;
		return true;
	}
	if (!strcmp(path, "/bigchunked")) {
		ssize_t at = 0;
		for (int k = 0; k < 300; k++) {
			int len = 1 + (k * 37) % 999;
			for (int i = 0; i < len; i++, at++)
				if (at >= n || b[at] != (char)('a' + (k + i) % 26))
					return false;
		}
		return at == n;
	}
	return false;
}

static bool expected_error(int e)
{
	return e == -EPIPE || e == -ECONNRESET || e == -EIO || e == -ENOMEM || e == -EBADMSG ||
	       e == -ECONNREFUSED || e == -ECONNABORTED;
}

static void *fetcher(void *arg)
{
	fault_run *f = arg;
	static const char *const paths[] = {"/hello", "/chunked", "/bigchunked", "/big"};
	for (int i = 0; i < ROUNDS; i++) {
		const char *path = paths[(i + rlt_task_id(NULL)) % 4];
		char url[128];
		srv_url(f->s, path, url, sizeof(url));
		rlt_http_reply *r;
		int rc = rlt_http_fetch_url(f->c, url, &r);
		ssize_t n = rc;
		const char *b = NULL;
		if (rc == 0) {
			n = rlt_http_reply_body(r, 2 << 20, &b);
			if (n >= 0 && rlt_http_reply_status(r) != 200)
				n = -EPROTO;
		}
		if (n >= 0) {
			if (body_ok(path, b, n))
				atomic_fetch_add(&f->ok, 1);
			else
				atomic_fetch_add(&f->wrong, 1);
		} else {
			atomic_fetch_add(&f->failed, 1);
			if (!expected_error((int)n)) {
				atomic_fetch_add(&f->unexpected, 1);
				atomic_store(&f->last_unexpected, (int)n);
			}
		}
		if (rc == 0)
			rlt_http_reply_free(r);
	}
	return NULL;
}

static void *root_faults(void *arg)
{
	srv s;
	srv_start(&s);
	fault_run f = {.s = &s};
	/* A hang would show as -ETIMEDOUT (unexpected), well within ctest's bound;
	 * queueing for a connection counts, and sanitizers are slow. */
	f.c = rlt_http_client_new(
	    &(rlt_http_client_opts){.max_total = 4, .timeout_ns = 60 * RLT_NSEC_PER_SEC});
	assert_non_null(f.c);
	rlt_task *t[TASKS];
	for (int i = 0; i < TASKS; i++)
		t[i] = rlt_test_spawn_on(fetcher, &f, (unsigned)i);
	for (int i = 0; i < TASKS; i++)
		assert_int_equal(rlt_join(t[i], NULL), 0);
	if (atomic_load(&f.wrong) || atomic_load(&f.unexpected))
		fail_msg("%d right, %d failed, %d WRONG bodies, %d unexpected errors (last %d)",
			 atomic_load(&f.ok), atomic_load(&f.failed), atomic_load(&f.wrong),
			 atomic_load(&f.unexpected), atomic_load(&f.last_unexpected));
	if (getenv("RLT_TEST_VERBOSE"))
		fprintf(stderr, "faults: %d right, %d failed\n", atomic_load(&f.ok),
			atomic_load(&f.failed));
	assert_int_equal(atomic_load(&f.ok) + atomic_load(&f.failed), TASKS * ROUNDS);
	assert_true(atomic_load(&f.ok) > 0);
	/* Every connection given back: idle or closed, none lost. */
	assert_int_equal(rlt_http_client_open(f.c), rlt_http_client_idle(f.c));
	assert_true(rlt_http_client_open(f.c) <= 4);
	assert_int_equal(rlt_http_client_free(f.c), 0);
	srv_stop(&s);
	return NULL;
}

static void test_http_client_under_injected_faults_returns_whole_bodies_or_errors(void **state)
{
	rlt_test_run_faults("seed=7,rate=0.02", root_faults, NULL);
	rlt_test_run_faults("seed=11,rate=0.05,errors=ECONNRESET+EIO+EAGAIN+EINTR", root_faults,
			    NULL);
	rlt_test_run_faults("seed=3,rate=0.3,errors=none", root_faults,
			    NULL); /* short transfers only */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_client_under_injected_faults_returns_whole_bodies_or_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
