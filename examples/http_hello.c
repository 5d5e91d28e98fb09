/*
 * http_hello: the seed's FastAPI app, its `/` route, in C.
 *
 *	from fastapi import FastAPI
 *	app = FastAPI()
 *
 *	@app.get("/")
 *	async def root():
 *	    return {"message": "Hello world"}
 *
 *	# uvicorn main:app --port 8000
 *
 * Usage: http_hello [PORT] (default 8000; 0 picks a free one). Prints
 * "listening on 127.0.0.1:PORT", serves until SIGINT or SIGTERM, then shuts
 * down gracefully (requests in flight finish) and prints "bye".
 *
 * The mapping:
 *   @app.get("/")            rlt_http_router_add(r, "GET", "/", 0, root, NULL)
 *   async def root()         a handler: runs in the connection's task, may suspend
 *   return {...}             rlt_http_response_send() with Content-Type set
 *   uvicorn --port 8000      rlt_http_server_start(): one listener per worker
 *                            (SO_REUSEPORT), one task per connection
 *   Ctrl-C                   a task waits for SIGINT/SIGTERM (rlt_signal_next) and
 *                            calls rlt_http_server_stop(); rlt_http_server_wait()
 *                            returns once the server has shut down
 */
#include <ringlet.h>
#include <ringlet/http.h>
#include <ringlet/signal.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int root(rlt_http_request *req, rlt_http_response *res, void *arg)
{
	(void)req;
	(void)arg;
	static const char body[] = "{\"message\":\"Hello world\"}";
	rlt_http_response_header(res, "Content-Type", "application/json");
	return rlt_http_response_send(res, body, sizeof(body) - 1);
}

/* SIGINT/SIGTERM are blocked in every thread; this one takes them. */
/* Waits for SIGINT or SIGTERM, then asks the server to shut down. */
static void *signal_task(void *arg)
{
	void **a = arg;
	if (rlt_signal_next(a[0], -1) > 0)
		rlt_http_server_stop(a[1]);
	return NULL;
}

static void *amain(void *arg)
{
	int port = *(int *)arg;
	/* Watch before serving: a signal that comes early is not lost. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	rlt_signal *watch = rlt_signal_watch(&set);
	if (!watch) {
		perror("rlt_signal_watch");
		return (void *)1;
	}
	rlt_http_router *r = rlt_http_router_new();
	rlt_http_router_add(r, "GET", "/", 0, root, NULL);
	char hostport[32];
	snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", port);
	rlt_addr a;
	rlt_addr_parse(&a, hostport);
	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
	    .addrs = &a, .naddrs = 1, .handler = rlt_http_router_handle, .arg = r});
	if (!s) {
		perror("rlt_http_server_start");
		rlt_signal_close(watch);
		return (void *)1;
	}
	rlt_http_server_addr(s, 0, &a);
	printf("listening on 127.0.0.1:%d\n", rlt_addr_port(&a));
	fflush(stdout);
	void *sargs[2] = {watch, s};
	rlt_task *st = rlt_spawn(signal_task, sargs, NULL);
	rlt_http_server_wait(s);
	rlt_cancel(st);
	rlt_join(st, NULL);
	rlt_signal_close(watch);
	rlt_http_server_free(s);
	rlt_http_router_free(r);
	printf("bye\n");
	return NULL;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8000;
	void *res = NULL;
	int rc = rlt_run(amain, &port, NULL, &res);
	return rc == 0 && res == NULL ? 0 : 1;
}
