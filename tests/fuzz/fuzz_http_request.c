/* Fuzz target: arbitrary bytes from a client to the HTTP server's
 * connection handler (rlt_http_server_serve_fd over a socketpair), in a
 * runtime of its own per input. Whatever comes in, the server
 * must answer with well-formed status lines only, close the connection,
 * and neither crash nor hang (the client's write side is shut after the
 * input, so every wait ends). */
#include <ringlet.h>
#include <ringlet/http.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Globals, not the root task's locals: LeakSanitizer does not scan task
 * stacks; the router lives until the process ends. */
static rlt_http_server *srv;
static rlt_http_router *router;

static int h_body(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	const void *d;
	size_t n;
	int rc = rlt_http_request_body(req, &d, &n);
	if (rc < 0)
		return rc;
	return rlt_http_response_send(res, d, n);
}

static int h_read(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char buf[7];
	ssize_t n;
	while ((n = rlt_http_request_read(req, buf, sizeof(buf))) > 0) {
		int rc = rlt_http_response_write(res, buf, (size_t)n);
		if (rc < 0)
			return rc;
	}
	return (int)n;
}

static int h_head(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)arg;
	char out[256];
	const char *v = rlt_http_request_header(req, "x-a");
	rlt_http_str q = rlt_http_request_query(req);
	int n = snprintf(out, sizeof(out), "%s %zu %.*s", v ? v : "-",
			 rlt_http_request_header_count(req), (int)q.len, q.p);
	return rlt_http_response_send(res, out, (size_t)n);
}

static int h_fail(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)res;
	(void)arg;
	return -EIO;
}

struct input {
	const uint8_t *data;
	size_t size;
	int fd;
};

static void *writer(void *arg)
{
	struct input *in = arg;
	rlt_send_all(in->fd, in->data, in->size, 0); /* may fail: the server closed */
	shutdown(in->fd, SHUT_WR);
	return NULL;
}

static void *server(void *arg)
{
	rlt_http_server_serve_fd(srv, (int)(intptr_t)arg);
	return NULL;
}

/* One input in a runtime of its own, on the fuzzer's thread: when
 * LLVMFuzzerTestOneInput returns, no thread of ringlet's runs instrumented
 * code while libFuzzer collects coverage (a runtime kept running beside it,
 * with the server's reaper ticking, crashed libFuzzer's RunOne now and
 * then: it reads the counters as they change). */
static void *one(void *arg)
{
	struct input *in = arg;
	srv = rlt_http_server_start(&(rlt_http_server_opts){
	    .handler = rlt_http_router_handle,
	    .arg = router,
	    .header_limit = 1024,
	    .max_headers = 16,
	    .body_limit = 2048,
	    .drain_limit = 512,
	});
	if (!srv)
		abort();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	in->fd = sv[1];
	rlt_task *s = rlt_spawn(server, (void *)(intptr_t)sv[0], NULL);
	rlt_task *w = rlt_spawn(writer, in, NULL);
	static char out[1 << 20];
	size_t n = 0;
	for (;;) {
		ssize_t k = rlt_recv(sv[1], out + n, sizeof(out) - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n == sizeof(out))
			n = 0; /* only the start is checked */
	}
	rlt_join(w, NULL);
	rlt_join(s, NULL);
	rlt_close(sv[1]);
	/* Responses start with a status line (100 Continue included). */
	if (n && (n < 9 || memcmp(out, "HTTP/1.1 ", 9) != 0))
		abort();
	rlt_http_server_stop(srv);
	rlt_http_server_wait(srv);
	rlt_http_server_free(srv);
	srv = NULL;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!router) {
		router = rlt_http_router_new();
		rlt_http_router_add(router, "POST", "/body", 0, h_body, NULL);
		rlt_http_router_add(router, NULL, "/read", RLT_HTTP_PREFIX, h_read, NULL);
		rlt_http_router_add(router, "GET", "/h", RLT_HTTP_PREFIX, h_head, NULL);
		rlt_http_router_add(router, NULL, "/fail", 0, h_fail, NULL);
	}
	struct input in = {data, size, -1};
	rlt_config cfg = {.workers = 1};
	if (rlt_run(one, &in, &cfg, NULL) != 0)
		abort();
	return 0;
}
