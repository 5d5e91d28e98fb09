/*
 * web_redis: the asyncio tutorial's FastAPI app on ringlet's HTTP server,
 * with a Redis pool of 1 to 10 connections.
 *
 *	app = FastAPI()
 *
 *	@app.on_event("startup")
 *	async def startup():
 *	    app.state.redis = await aioredis.create_redis_pool(
 *	        'redis://localhost', minsize=1, maxsize=10)
 *
 *	@app.get("/")
 *	async def root():
 *	    return {"message": "Hello World"}
 *
 *	@app.get("/red")
 *	async def red():
 *	    with await app.state.redis as conn:
 *	        await asyncio.sleep(3)
 *	        await conn.execute('hmset', 'car', 'key1', 1, 'key2', 2, 'key3', 3)
 *	        return await conn.hgetall('car', encoding='utf-8')
 *
 * Usage: web_redis [listen-address [redis-address]] (defaults
 * 127.0.0.1:8000 and 127.0.0.1:6379); SIGINT or SIGTERM stops it
 * gracefully. WEB_REDIS_SLEEP_MS replaces /red's 3 s (the tests use less).
 * Each request runs in its connection's task: /red's sleep suspends that
 * task only, so requests overlap; the pool lets 10 hold a Redis connection
 * at once, and an 11th waits for one (FIFO). The mapping:
 *   create_redis_pool(minsize=1, maxsize=10)  rlt_redis_pool_new(.min_size = 1, .max_size = 10)
 *   with await pool as conn:                  rlt_redis_pool_acquire / rlt_redis_pool_release
 *   await asyncio.sleep(3)                    rlt_sleep(3 * RLT_NSEC_PER_SEC)
 *   @app.get("/red")                          rlt_http_router_add(r, "GET", "/red", 0, red, pool)
 */
#include <ringlet.h>
#include <ringlet/http.h>
#include <ringlet/redis.h>
#include <ringlet/signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t sleep_ns = 3 * RLT_NSEC_PER_SEC;

static int json(rlt_http_response *res, int status, const char *body)
{
	rlt_http_response_status(res, status);
	rlt_http_response_header(res, "Content-Type", "application/json");
	return rlt_http_response_send(res, body, strlen(body));
}

static int root(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	return json(res, 200, "{\"message\":\"Hello World\"}");
}

static int red(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	rlt_redis_pool *pool = arg;
	rlt_redis *c = rlt_redis_pool_acquire(pool, 30 * (int64_t)RLT_NSEC_PER_SEC);
	if (!c)
		return json(res, 503, "{\"detail\":\"no redis connection\"}");
	char body[512];
	int rc = rlt_sleep(sleep_ns);
	rlt_redis_reply *r = NULL;
	if (!rc)
		rc = rlt_redis_command(c, &r, "HMSET car key1 %d key2 %d key3 %d", 1, 2, 3);
	rlt_redis_reply_free(r);
	if (!rc)
		rc = rlt_redis_command(c, &r, "HGETALL car");
	rlt_redis_pool_release(pool, c);
	if (rc < 0 || r->type != RLT_REDIS_REPLY_ARRAY) {
		rlt_redis_reply_free(r);
		return json(res, 502, "{\"detail\":\"redis failed\"}");
	}
	/* HGETALL's flat list as the dict aioredis's hgetall makes of it, which
	 * FastAPI returns as a JSON object. */
	size_t n = (size_t)snprintf(body, sizeof(body), "{");
	for (size_t i = 0; i + 1 < r->elements && n < sizeof(body); i += 2)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%s\":\"%s\"", i ? "," : "",
				      r->element[i]->str, r->element[i + 1]->str);
	if (n < sizeof(body))
		snprintf(body + n, sizeof(body) - n, "}");
	rlt_redis_reply_free(r);
	return json(res, 200, body);
}

typedef struct args {
	const char *listen, *redis;
} args;

static void *main_task(void *arg)
{
	args *a = arg;
	rlt_addr la;
	if (rlt_addr_parse(&la, a->listen) < 0) {
		fprintf(stderr, "web_redis: bad listen address %s\n", a->listen);
		return (void *)1;
	}
	rlt_redis_pool *pool = rlt_redis_pool_new(
	    &(rlt_redis_pool_opts){.conn = {.address = a->redis}, .min_size = 1, .max_size = 10});
	if (!pool) {
		fprintf(stderr, "web_redis: redis %s: %s\n", a->redis, strerror(rlt_errno));
		return (void *)1;
	}
	rlt_http_router *router = rlt_http_router_new();
	rlt_http_router_add(router, "GET", "/", 0, root, NULL);
	rlt_http_router_add(router, "GET", "/red", 0, red, pool);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	rlt_signal *sig = rlt_signal_watch(&set);
	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
	    .addrs = &la, .naddrs = 1, .handler = rlt_http_router_handle, .arg = router});
	if (!s || !sig) {
		fprintf(stderr, "web_redis: listen %s: %s\n", a->listen, strerror(errno));
		return (void *)1;
	}
	rlt_addr bound;
	char text[128];
	rlt_http_server_addr(s, 0, &bound);
	rlt_addr_format(&bound, text, sizeof(text));
	printf("listening on http://%s\n", text);
	fflush(stdout);
	rlt_signal_next(sig, -1);
	rlt_http_server_stop(s);
	rlt_http_server_wait(s);
	rlt_http_server_free(s);
	rlt_signal_close(sig);
	rlt_http_router_free(router);
	rlt_redis_pool_free(pool);
	return NULL;
}

int main(int argc, char **argv)
{
	args a = {argc > 1 ? argv[1] : "127.0.0.1:8000", argc > 2 ? argv[2] : "127.0.0.1:6379"};
	const char *ms = getenv("WEB_REDIS_SLEEP_MS");
	if (ms)
		sleep_ns = (uint64_t)atol(ms) * RLT_NSEC_PER_MSEC;
	void *failed = NULL;
	int rc = rlt_run(main_task, &a, NULL, &failed);
	return rc == 0 && !failed ? 0 : 1;
}
