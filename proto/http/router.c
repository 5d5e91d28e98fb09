/* The router: exact paths, then the longest prefix; 405 when only the
 * method differs, 404 when nothing matches. Routes are few and read-only
 * once serving starts, so a linear scan over an array is the structure. */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>

struct route {
	char *method; /* NULL: any */
	char *path;
	size_t plen;
	bool prefix;
	rlt_http_handler h;
	void *arg;
};

struct rlt_http_router {
	struct route *r;
	size_t n, cap;
};

rlt_http_router *rlt_http_router_new(void)
{
	rlt_http_router *r = calloc(1, sizeof(*r));
	if (!r)
		errno = ENOMEM;
	return r;
}

int rlt_http_router_add(rlt_http_router *r, const char *method, const char *path, unsigned flags,
			rlt_http_handler h, void *arg)
{
	if (!r || !path || path[0] != '/' || !h || (flags & ~RLT_HTTP_PREFIX))
		return -EINVAL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 8;
		struct route *nr = realloc(r->r, cap * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		r->r = nr;
		r->cap = cap;
	}
	struct route *e = &r->r[r->n];
	e->path = strdup(path);
	e->method = method ? strdup(method) : NULL;
	if (!e->path || (method && !e->method)) {
		free(e->path);
		free(e->method);
		return -ENOMEM;
	}
	e->plen = strlen(path);
	e->prefix = flags & RLT_HTTP_PREFIX;
	e->h = h;
	e->arg = arg;
	r->n++;
	return 0;
}

void rlt_http_router_free(rlt_http_router *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->r[i].path);
		free(r->r[i].method);
	}
	free(r->r);
	free(r);
}

static bool method_ok(const struct route *e, const char *m)
{
	if (!e->method)
		return true;
	if (strcmp(e->method, m) == 0)
		return true;
	return strcmp(m, "HEAD") == 0 && strcmp(e->method, "GET") == 0;
}

int rlt_http_router_handle(rlt_http_request *req, rlt_http_response *res, void *router)
{
	rlt_http_router *r = router;
	rlt_http_str p = rlt_http_request_path(req);
	const char *m = rlt_http_request_method(req);
	const struct route *best = NULL;
	bool path_seen = false;
	for (int pass = 0; pass < 2 && !best; pass++) {
		for (size_t i = 0; i < r->n; i++) {
			const struct route *e = &r->r[i];
			bool match = pass == 0 ? !e->prefix && e->plen == p.len &&
						     memcmp(e->path, p.p, p.len) == 0
					       : e->prefix && e->plen <= p.len &&
						     memcmp(e->path, p.p, e->plen) == 0;
			if (!match)
				continue;
			path_seen = true;
			if (method_ok(e, m) && (!best || e->plen > best->plen))
				best = e;
		}
	}
	if (best)
		return best->h(req, res, best->arg);
	if (!path_seen) {
		rlt_http_response_status(res, 404);
		rlt_http_response_header(res, "Content-Type", "text/plain");
		return rlt_http_response_send(res, "Not Found\n", 10);
	}
	/* 405 with the methods the path takes. */
	char allow[256];
	size_t n = 0;
	allow[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		const struct route *e = &r->r[i];
		bool match = e->prefix ? e->plen <= p.len && memcmp(e->path, p.p, e->plen) == 0
				       : e->plen == p.len && memcmp(e->path, p.p, p.len) == 0;
		if (!match || !e->method || strstr(allow, e->method))
			continue;
		size_t ml = strlen(e->method);
		if (n + ml + 3 >= sizeof(allow))
			break;
		if (n) {
			memcpy(allow + n, ", ", 2);
			n += 2;
		}
		memcpy(allow + n, e->method, ml + 1);
		n += ml;
	}
	rlt_http_response_status(res, 405);
	rlt_http_response_header(res, "Allow", allow);
	rlt_http_response_header(res, "Content-Type", "text/plain");
	return rlt_http_response_send(res, "Method Not Allowed\n", 19);
}
