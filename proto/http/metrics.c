/* rlt_http_metrics_handler: the runtime's counters in the Prometheus text
 * format, for a scraper (include/ringlet/stats.h has the counters). */
#include "http_int.h"

#include <ringlet/stats.h>

#include <stdlib.h>
#include <string.h>

int rlt_http_metrics_handler(rlt_http_request *req, rlt_http_response *res, void *rt)
{
	const char *m = rlt_http_request_method(req);
	if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
		rlt_http_response_status(res, 405);
		rlt_http_response_header(res, "Allow", "GET, HEAD");
		return rlt_http_response_send(res, NULL, 0);
	}
	rlt_stats snap;
	int rc = rlt_runtime_stats(rt, &snap);
	if (rc < 0)
		return rc; /* the server answers 500 */
	/* Sized first (a few KiB per worker), then written. */
	ssize_t n = rlt_stats_format(&snap, RLT_STATS_PROMETHEUS, NULL, 0);
	char *body = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (!body) {
		rlt_stats_release(&snap);
		return -ENOMEM;
	}
	rlt_stats_format(&snap, RLT_STATS_PROMETHEUS, body, (size_t)n + 1);
	rlt_stats_release(&snap);
	rlt_http_response_status(res, 200);
	rlt_http_response_header(res, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = rlt_http_response_send(res, body, (size_t)n);
	free(body);
	return rc;
}
