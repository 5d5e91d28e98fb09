#ifndef RINGLET_HTTP_H
#define RINGLET_HTTP_H

#include "common.h"
#include "net.h"

#include <sys/types.h>
#include <sys/uio.h>

RLT_EXTERN_C_BEGIN

/*
 * HTTP/1.1 server (library ringlet_http, pkg-config ringlet-http, CMake
 * ringlet::http). Parsing is llhttp's; buffers, limits, timeouts and tasks
 * are ringlet's. docs/HTTP.md has the model and the figures.
 *
 *	static int hello(rlt_http_request *req, rlt_http_response *res, void *arg)
 *	{
 *		rlt_http_response_header(res, "Content-Type", "text/plain");
 *		return rlt_http_response_send(res, "Hello, World!", 13);
 *	}
 *	...in a task:
 *	rlt_addr a; rlt_addr_parse(&a, "0.0.0.0:8080");
 *	rlt_http_server *s = rlt_http_server_start(&(rlt_http_server_opts){
 *	    .addrs = &a, .naddrs = 1, .handler = hello});
 *	rlt_http_server_wait(s);        // until rlt_http_server_stop(s) (any thread)
 *	rlt_http_server_free(s);
 *
 * Model: one task per connection. The handler runs in it as straight-line
 * C and may suspend (sleep, do I/O, wait on the executor); the connection
 * reads the next request only when the handler has returned. Requests that
 * arrive pipelined are answered in order, and their responses leave in one
 * send where they fit the connection's write buffer (16 KiB).
 *
 * Memory: each connection owns one read buffer (header_limit + 8 KiB) and
 * one write buffer, reused for every request; headers are parsed in place.
 * Everything a request hands out (strings, the body from
 * rlt_http_request_body) lives until the handler returns.
 *
 * Threads: a request and its response belong to the connection's task;
 * call their functions only from the handler (the task that called it).
 */

/* A string that is not copied: p[0..len). */
typedef struct rlt_http_str {
	const char *p;
	size_t len;
} rlt_http_str;

typedef struct rlt_http_server rlt_http_server;
typedef struct rlt_http_request rlt_http_request;
typedef struct rlt_http_response rlt_http_response;

/*
 * A handler: answer req through res. Runs in the connection's task; may
 * suspend. Return 0, or a negative errno for a failure: if nothing of the
 * response was sent yet, the client gets 500 and the connection stays open
 * where the request's framing allows (its body could be drained); if the
 * response was under way, the connection is closed. A handler that returns
 * 0 without sending anything sends the status set (default 200) with an
 * empty body.
 */
typedef int (*rlt_http_handler)(rlt_http_request *req, rlt_http_response *res, void *arg);

/* Defaults of the limits and timeouts (rlt_http_server_opts: 0 = these). */
#define RLT_HTTP_HEADER_LIMIT	(8u * 1024u)		/* request line + headers: 431 beyond */
#define RLT_HTTP_MAX_HEADERS	100u			/* header lines: 431 beyond */
#define RLT_HTTP_BODY_LIMIT	(1024u * 1024u)		/* request body: 413 beyond */
#define RLT_HTTP_DRAIN_LIMIT	(64u * 1024u)		/* unread body drained, else close */
#define RLT_HTTP_HEADER_TIMEOUT (10 * RLT_NSEC_PER_SEC) /* first byte to end of headers: 408 */
#define RLT_HTTP_IDLE_TIMEOUT	(60 * RLT_NSEC_PER_SEC) /* keep-alive wait for a request: close */
#define RLT_HTTP_IO_TIMEOUT	(60 * RLT_NSEC_PER_SEC) /* one body read or response write */
#define RLT_HTTP_GRACE		(10 * RLT_NSEC_PER_SEC) /* shutdown: in-flight requests */

typedef struct rlt_http_server_opts {
	/* Addresses to listen on (TCP or Unix; port 0 picks a free port:
	 * rlt_http_server_addr tells which). naddrs 0: no listener, only
	 * rlt_http_server_serve_fd. Copied. */
	const rlt_addr *addrs;
	size_t naddrs;
	rlt_http_handler handler; /* required */
	void *arg;		  /* the handler's */
	/* false (default): one listener per worker and address, SO_REUSEPORT,
	 * each with its own accept loop pinned on its worker (the kernel
	 * spreads the connections). true: one listener and accept loop per
	 * address, on the starting task's worker, handing connections to the
	 * workers in turn. Unix addresses always use one listener. */
	bool shared_acceptor;
	/* The Server header's value: NULL "ringlet", "" none. Copied. */
	const char *server_name;
	size_t header_limit;  /* RLT_HTTP_HEADER_LIMIT: larger heads get 431 and close */
	unsigned max_headers; /* RLT_HTTP_MAX_HEADERS: more header lines get 431 and close */
	size_t body_limit;    /* RLT_HTTP_BODY_LIMIT: a larger body gets 413 and close */
	size_t drain_limit;   /* RLT_HTTP_DRAIN_LIMIT: body left unread beyond it: close */
	/* Timeouts in ns (0: the default; negative: none). A reaper task of
	 * the server checks them every eighth of the shortest, within
	 * [5 ms, 250 ms]: they trip up to that much late. */
	int64_t header_timeout; /* RLT_HTTP_HEADER_TIMEOUT: 408 and close */
	int64_t idle_timeout;	/* RLT_HTTP_IDLE_TIMEOUT: close, no response */
	int64_t io_timeout;	/* RLT_HTTP_IO_TIMEOUT: the call fails -ETIMEDOUT, close */
	int64_t grace;		/* RLT_HTTP_GRACE: then remaining handlers are cancelled */
	int backlog;		/* listen(2) backlog; 0: SOMAXCONN */
	size_t stack_size;	/* connection tasks' stacks; 0: the runtime's default */
	/* HTTPS: a server context of <ringlet/tls.h> (rlt_tls_ctx_new with
	 * RLT_TLS_SERVER, a certificate and its key). Each connection's task
	 * runs the TLS handshake first, within header_timeout; a client that
	 * fails it (plain HTTP to this port, a bad hello, silence) is closed
	 * without a response. Files go out encrypted in user space
	 * (rlt_tls_sendfile). NULL: plain HTTP. Not copied: keep it until
	 * rlt_http_server_wait has returned. */
	struct rlt_tls_ctx *tls;
} rlt_http_server_opts;

/*
 * Start a server: bind its listeners and start its accept loops. From a
 * task; does not suspend. Returns the server, or NULL with errno: EPERM
 * (not a task), EINVAL (no handler, NULL addrs with naddrs > 0,
 * header_limit over 1 MiB, max_headers over 65536, a server_name with CR
 * or LF), ENAMETOOLONG (server_name over 100 bytes), ENOMEM, or
 * rlt_net_listen's errno (EADDRINUSE, EACCES, ...): nothing is left open
 * then.
 */
RLT_API rlt_http_server *rlt_http_server_start(const rlt_http_server_opts *opts);

/* The address listener i (0 .. naddrs-1) is bound to (its real port when
 * 0 was asked). Does not suspend. 0, or -EINVAL (NULL, i out of range). */
RLT_API int rlt_http_server_addr(const rlt_http_server *s, size_t i, rlt_addr *out);

/*
 * Ask for a graceful shutdown: stop accepting, close idle keep-alive
 * connections, let in-flight requests finish (their responses say
 * Connection: close) within the grace period, then cancel the handlers
 * still running. The work is done by rlt_http_server_wait. Any thread,
 * including a signal-waiting thread; never suspends; idempotent. 0 or
 * -EINVAL (NULL).
 */
RLT_API int rlt_http_server_stop(rlt_http_server *s);

/*
 * Suspend until rlt_http_server_stop was called and the shutdown is
 * complete: listeners closed, every connection closed. One task at a
 * time. 0, -EINVAL (NULL), -EPERM (not a task), -EBUSY (another task
 * waits), -ECANCELED (the waiting task was cancelled: the shutdown still
 * completes, in its own shield).
 */
RLT_API int rlt_http_server_wait(rlt_http_server *s);

/* Free a server after rlt_http_server_wait returned (or one that serves
 * no listener and no connection). NULL is ignored. */
RLT_API void rlt_http_server_free(rlt_http_server *s);

/*
 * Serve HTTP on an already connected stream socket fd in the calling task
 * (socket activation, a socketpair, tests), with s's handler and limits,
 * until the peer closes, a limit or error closes it, or s shuts down.
 * Closes fd. Suspends. Returns 0 (closed normally) or the negative errno
 * that ended the connection; -EPERM (not a task), -EINVAL (NULL s), -ENOMEM.
 */
RLT_API int rlt_http_server_serve_fd(rlt_http_server *s, int fd);

/* ---- the request (valid until the handler returns) ---- */

/* "GET", "POST", ... (a static string). */
RLT_API const char *rlt_http_request_method(const rlt_http_request *r);
/* The request target as sent ("/a/b?x=1"), NUL-terminated, and its parts:
 * the path ("/a/b") and the query ("x=1", empty if none), not terminated.
 * Not percent-decoded. */
RLT_API rlt_http_str rlt_http_request_target(const rlt_http_request *r);
RLT_API rlt_http_str rlt_http_request_path(const rlt_http_request *r);
RLT_API rlt_http_str rlt_http_request_query(const rlt_http_request *r);
/* The HTTP version: 10 for 1.0, 11 for 1.1. */
RLT_API int rlt_http_request_version(const rlt_http_request *r);
/* The value of the first header named name (ASCII case-insensitive), with
 * surrounding white space removed, NUL-terminated; NULL if absent. */
RLT_API const char *rlt_http_request_header(const rlt_http_request *r, const char *name);
/* Header lines in order: how many, and the i-th name and value
 * (NUL-terminated). 0, or -EINVAL (i out of range). Trailers of a chunked
 * body are not kept. */
RLT_API size_t rlt_http_request_header_count(const rlt_http_request *r);
RLT_API int rlt_http_request_header_at(const rlt_http_request *r, size_t i, const char **name,
				       const char **value);
/* The declared Content-Length, or -1 (chunked, or none). */
RLT_API int64_t rlt_http_request_content_length(const rlt_http_request *r);
/* The peer's address (getpeername of the connection). 0 or a negative errno. */
RLT_API int rlt_http_request_peer(const rlt_http_request *r, rlt_addr *out);

/*
 * Read the next bytes of the body (Content-Length or chunked framing
 * removed) into buf. The first read of a request that asked
 * "Expect: 100-continue" sends "100 Continue". Suspends until some bytes
 * come. Returns how many (> 0), 0 at the end of the body, or:
 *   -EMSGSIZE   the body passed body_limit (the client gets 413 and the
 *               connection closes, if the response has not started)
 *   -EPIPE      the client closed before the end of the body
 *   -EBADMSG    bad chunked framing (400 and close)
 *   -ETIMEDOUT  io_timeout passed with no byte; -ECANCELED; recv's errno
 * After an error every later read returns it again.
 */
RLT_API ssize_t rlt_http_request_read(rlt_http_request *r, void *buf, size_t len);

/*
 * The whole body, at most body_limit bytes: *data and *len. *data is
 * valid until the handler returns and is not NUL-terminated (it is read
 * in place when the message fits the read buffer: the next pipelined
 * request may follow it). Suspends. 0, or the errors
 * of rlt_http_request_read (-EMSGSIZE for a body over the limit), or
 * -ENOMEM. Mixing with earlier rlt_http_request_read calls gives what
 * they left.
 */
RLT_API int rlt_http_request_body(rlt_http_request *r, const void **data, size_t *len);

/* ---- the response ---- */

/* Set the status (100..999 except 1xx, which the server sends itself;
 * default 200) before anything is sent. 0, -EINVAL (out of range),
 * -EALREADY (the response has started). Never suspends. */
RLT_API int rlt_http_response_status(rlt_http_response *res, int status);

/*
 * Add a header (copied) before anything is sent. Content-Length,
 * Transfer-Encoding, Connection, Date and Server are the server's: adding
 * them gives -EINVAL. Names and values must not hold CR or LF (-EINVAL).
 * -EALREADY (the response has started), -ENOSPC (more than 4 KiB of
 * headers in all). Never suspends.
 */
RLT_API int rlt_http_response_header(rlt_http_response *res, const char *name, const char *value);

/*
 * Send the whole response with body[0..len) (Content-Length framing; no
 * body bytes for HEAD). Small responses are copied into the connection's
 * write buffer and leave with the others of a pipelined batch; larger
 * ones are sent at once, without a copy. May suspend. 0, or -EALREADY
 * (already sent), or the send's negative errno (-EPIPE, -ECONNRESET when
 * the client went away; -ETIMEDOUT after io_timeout).
 */
RLT_API int rlt_http_response_send(rlt_http_response *res, const void *body, size_t len);

/* The same with the body in pieces (writev-style), without copying them
 * together. iovcnt <= 64 (-EINVAL beyond). */
RLT_API int rlt_http_response_sendv(rlt_http_response *res, const struct iovec *iov, int iovcnt);

/*
 * The response body from file fd, len bytes from offset (Content-Length
 * framing). A body that fits the write buffer is read (rlt_read) after
 * the head and leaves with the pipelined batch; a larger one goes with
 * rlt_sendfile (io.h: no copy through user space), or, if fd is not a
 * regular file (a pipe), is read into a 128 KiB buffer of the connection
 * and sent. A file shorter than offset + len fails -EIO and closes the
 * connection. May suspend. 0, -EALREADY, or a negative errno (the head
 * may be sent by then: the connection closes).
 */
RLT_API int rlt_http_response_sendfile(rlt_http_response *res, int fd, off_t offset, size_t len);

/*
 * Stream the body in pieces when its length is not known: the first call
 * sends the head with Transfer-Encoding: chunked (to an HTTP/1.0 client:
 * no framing, and the connection closes after the body), each call sends
 * one chunk at once. len 0 sends nothing. May suspend. 0 or a negative
 * errno (-EPIPE, -ECONNRESET: the client went away; later calls fail the
 * same way).
 */
RLT_API int rlt_http_response_write(rlt_http_response *res, const void *data, size_t len);

/* End a streamed body (the last chunk). The server ends it itself when
 * the handler returns 0 without doing so. May suspend. 0 or a negative
 * errno; -EINVAL if rlt_http_response_write was not called. */
RLT_API int rlt_http_response_end(rlt_http_response *res);

/* Whether the response has started (its head was queued or sent). */
RLT_API bool rlt_http_response_started(const rlt_http_response *res);

/* The standard reason phrase of status ("OK", "Not Found"), or "Unknown". */
RLT_API const char *rlt_http_status_reason(int status);

/* ---- the router ---- */

/*
 * A router is itself a handler (rlt_http_router_handle, with the router
 * as arg): it picks a route by method and path, exact paths first, then
 * the longest matching prefix. A path that matches with another method
 * gets 405 with an Allow header; no match 404. HEAD requests use GET
 * routes (the body is left out). Build it before the server starts; it is
 * read-only afterwards (any worker).
 */
typedef struct rlt_http_router rlt_http_router;

#define RLT_HTTP_PREFIX 1u /* rlt_http_router_add: path is a prefix */

/* A new empty router, or NULL (errno ENOMEM). */
RLT_API rlt_http_router *rlt_http_router_new(void);
/* Route method (NULL: any) and path (copied) to h(req, res, arg). flags:
 * RLT_HTTP_PREFIX. 0, -EINVAL (NULL path or h, path not starting with
 * '/'), -ENOMEM. */
RLT_API int rlt_http_router_add(rlt_http_router *r, const char *method, const char *path,
				unsigned flags, rlt_http_handler h, void *arg);
/* The handler to give rlt_http_server_opts, with the router as arg. */
RLT_API int rlt_http_router_handle(rlt_http_request *req, rlt_http_response *res, void *router);
/* Free r (once no server uses it). NULL is ignored. */
RLT_API void rlt_http_router_free(rlt_http_router *r);

/* ---- metrics ---- */

/*
 * A handler that serves the runtime's counters (include/ringlet/stats.h) in
 * the Prometheus text format 0.0.4 (Content-Type text/plain;
 * version=0.0.4), for a scraper: route it, e.g.
 *   rlt_http_router_add(r, "GET", "/metrics", 0, rlt_http_metrics_handler, NULL);
 * arg: the runtime (an rlt_runtime *), or NULL for the one serving the
 * request. GET and HEAD; another method gets 405. Suspends while the
 * response is sent. 0 or a negative errno (the server then answers 500):
 * -ENOMEM.
 */
RLT_API int rlt_http_metrics_handler(rlt_http_request *req, rlt_http_response *res, void *rt);

RLT_EXTERN_C_END

/* The client (aiohttp's ClientSession): its own header, part of this one. */
#include "http_client.h"

#endif
