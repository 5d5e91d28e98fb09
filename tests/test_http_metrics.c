/* rlt_http_metrics_handler: a scrape of /metrics through ringlet's HTTP
 * client (and curl, where installed) gets the runtime's counters in the
 * Prometheus text format, moving between scrapes. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "http_server_test.h"

#include <ringlet/http_client.h>
#include <ringlet/stats.h>

#include <errno.h>

/* The value of the sample `line` starts with (summed over its workers). */
static double sample_sum(const char *body, const char *name)
{
	double sum = 0;
	int found = 0;
	size_t nl = strlen(name);
	for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, nl) != 0 || (p[nl] != '{' && p[nl] != ' '))
			continue;
		const char *sp = strchr(p, ' ');
		assert_non_null(sp);
		char *end;
		double v = strtod(sp + 1, &end);
		assert_true(end > sp + 1 && (*end == '\n' || *end == '\0'));
		sum += v;
		found++;
	}
	assert_true(found > 0);
	return sum;
}

static char *scrape(rlt_http_client *c, const char *url, int *status, char *ctype, size_t cap)
{
	rlt_http_reply *r = NULL;
	int rc = rlt_http_fetch_url(c, url, &r);
	if (rc < 0)
		fail_msg("fetch %s: %s", url, strerror(-rc));
	*status = rlt_http_reply_status(r);
	const char *ct = rlt_http_reply_header(r, "Content-Type");
	snprintf(ctype, cap, "%s", ct ? ct : "");
	const char *body;
	ssize_t n = rlt_http_reply_body(r, 1 << 20, &body);
	assert_true(n >= 0);
	char *copy = strndup(body, (size_t)n);
	rlt_http_reply_free(r);
	return copy;
}

static void *nothing(void *arg)
{
	return arg;
}

typedef struct curl_job {
	char cmd[256];
	char out[1 << 16];
	int status;
} curl_job;

static void *curl_run(void *arg)
{
	curl_job *j = arg;
	FILE *p = popen(j->cmd, "r");
	if (!p) {
		j->status = -1;
		return NULL;
	}
	size_t n = fread(j->out, 1, sizeof(j->out) - 1, p);
	j->out[n] = '\0';
	j->status = pclose(p);
	return NULL;
}

static void *scrape_main(void *arg)
{
	(void)arg;
	rlt_http_router *rt = rlt_http_router_new();
	assert_non_null(rt);
	assert_int_equal(
	    rlt_http_router_add(rt, NULL, "/metrics", 0, rlt_http_metrics_handler, NULL), 0);
	int port;
	rlt_http_server *s =
	    ht_start(&(rlt_http_server_opts){.handler = rlt_http_router_handle, .arg = rt}, &port);
	rlt_http_client *c = rlt_http_client_new(NULL);
	assert_non_null(c);
	char url[128], ctype[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	int status;
	char *a = scrape(c, url, &status, ctype, sizeof(ctype));
	assert_int_equal(status, 200);
	assert_string_equal(ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(a, "# TYPE ringlet_worker_completed_total counter\n"));
	double done_a = sample_sum(a, "ringlet_worker_completed_total");
	double spawned_a = sample_sum(a, "ringlet_worker_spawned_total");
	double workers = sample_sum(a, "ringlet_workers");
	assert_true(workers == rlt_runtime_workers(rlt_runtime_self()));
	/* 100 tasks later, the counters say so. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(rlt_join(rlt_spawn(nothing, NULL, NULL), NULL), 0);
	char *b = scrape(c, url, &status, ctype, sizeof(ctype));
	assert_int_equal(status, 200);
	assert_true(sample_sum(b, "ringlet_worker_spawned_total") - spawned_a >= 100);
	assert_true(sample_sum(b, "ringlet_worker_completed_total") - done_a >= 100);
	/* Bytes moved by the scrape itself show too. */
	assert_true(sample_sum(b, "ringlet_worker_bytes_written_total") > 0);
	free(a);
	free(b);
	/* Another method: 405. */
	rlt_http_reply *r = NULL;
	rlt_http_client_request req = {.method = "DELETE", .url = url};
	assert_int_equal(rlt_http_fetch(c, &req, &r), 0);
	assert_int_equal(rlt_http_reply_status(r), 405);
	rlt_http_reply_free(r);
	/* A real scraper's client: curl. */
	if (access("/usr/bin/curl", X_OK) == 0) {
		static curl_job j;
		snprintf(j.cmd, sizeof(j.cmd), "/usr/bin/curl -sf %s", url);
		assert_int_equal(rlt_run_blocking(NULL, curl_run, &j, NULL), 0);
		assert_int_equal(j.status, 0);
		assert_non_null(strstr(j.out, "ringlet_worker_polled_total{worker=\"0\"} "));
	} else {
		print_message("no /usr/bin/curl: scraped with ringlet's client only\n");
	}
	rlt_http_client_free(c);
	ht_stop(s);
	rlt_http_router_free(rt);
	return NULL;
}

static void test_http_metrics_scrape(void **state)
{
	(void)state;
	rlt_test_run(scrape_main, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_metrics_scrape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
