#ifndef RINGLET_HTTP_CLIENT_H
#define RINGLET_HTTP_CLIENT_H

#include <ringlet.h>

#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/*
 * HTTP/1.1 client: aiohttp's ClientSession for ringlet tasks (library
 * ringlet_http, `pkg-config ringlet-http`, CMake ringlet::http).
 *
 *	rlt_http_client *c = rlt_http_client_new(NULL);
 *	rlt_http_reply *r;
 *	int rc = rlt_http_fetch_url(c, "http://example.com/", &r);
 *	if (rc == 0) {
 *		const char *body;
 *		ssize_t n = rlt_http_reply_body(r, 1 << 20, &body);
 *		printf("%d %zd\n", rlt_http_reply_status(r), n);
 *		rlt_http_reply_free(r);
 *	}
 *	rlt_http_client_free(c);
 *
 * A client keeps a pool of connections per host:port: a connection whose
 * response was read to its end (and that neither side asked to close) goes
 * back to the pool when its reply is freed, and the next request to the
 * same host:port takes it (newest first). The pool is shared by every task
 * of the runtime, on any worker; its lock is held only for list
 * operations, never across a suspension. Limits (options below): busy
 * connections per host and in total (a request over a limit waits for a
 * connection to be given back), open connections in total (an idle one is
 * closed to make room), and how long a connection may stay idle (a task of
 * the client closes it then).
 *
 * Responses are parsed by llhttp, in place in the connection's buffer:
 * headers are not copied. Bodies framed by Content-Length, by chunked
 * transfer coding, or by the end of the connection are decoded; a body the
 * connection's end cut short is an error (-EPIPE), never data that merely
 * looks complete. A request goes out in one sendmsg (request line, headers
 * and body in one iovec array).
 *
 * https:// runs TLS (ringlet_tls, <ringlet/tls.h>) on the connection,
 * verified by default: the server's certificate chain against ca_file (or
 * the system's CAs) and its name against the URL's host, sent as SNI; ALPN
 * offers http/1.1. The handshake is part of connecting (connect_timeout_ns).
 * https and http connections to one host:port are pooled apart.
 *
 * Errors, for every call below that returns int or ssize_t: a negative
 * errno. The ones HTTP adds:
 *   -EINVAL           a malformed URL, a header name or value with CR, LF
 *                     or NUL (request smuggling), a NULL argument
 *   -EPROTONOSUPPORT  a scheme other than http and https
 *   -EKEYREJECTED, -EKEYEXPIRED, -EACCES, -EPROTO, -ECONNABORTED ...
 *                     https: the TLS handshake failed (an untrusted,
 *                     expired or wrong-host certificate, a server that
 *                     does not speak TLS: <ringlet/tls.h> lists them)
 *   -EBADMSG          a malformed response (llhttp refused it: bad status
 *                     line, bad chunk size, two different Content-Lengths...)
 *   -EMSGSIZE         a response head over max_header_size, or a body over
 *                     the limit given to rlt_http_reply_body
 *   -ETIMEDOUT        a time limit (connect, first byte, whole request, or
 *                     a deadline scope of the caller) passed
 *   -EPIPE, -ECONNRESET  the server closed or reset the connection before
 *                     the response was complete
 *   -ELOOP            more redirects than max_redirects
 *   -ECANCELED        the calling task was cancelled
 *   -ENOMEM           out of memory
 * plus what rlt_net_dial says (-ECONNREFUSED, -ENOENT for an unknown host,
 * -EAGAIN for a temporary DNS failure...). After an error the connection
 * involved is closed, never reused.
 *
 * Reused connections: a server may close an idle keep-alive connection
 * just as a request is sent on it. When a request on a connection taken
 * from the pool fails before any byte of a response arrived (send error,
 * end of stream, reset), the request is sent again once on a new
 * connection if its method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS,
 * TRACE), as aiohttp does; other methods get the error.
 */

typedef struct rlt_http_client rlt_http_client;
typedef struct rlt_http_reply rlt_http_reply;

/* Defaults of rlt_http_client_opts (0 in a field means its default). */
#define RLT_HTTP_CLIENT_MAX_TOTAL	   100 /* aiohttp's TCPConnector(limit=100) */
#define RLT_HTTP_CLIENT_IDLE_TIMEOUT_NS	   (15 * RLT_NSEC_PER_SEC) /* aiohttp's keepalive_timeout */
#define RLT_HTTP_CLIENT_CONNECT_TIMEOUT_NS (30 * RLT_NSEC_PER_SEC)
#define RLT_HTTP_CLIENT_TIMEOUT_NS	   (300 * RLT_NSEC_PER_SEC) /* aiohttp's total=300 */
#define RLT_HTTP_CLIENT_MAX_HEADER_SIZE	   (16 * 1024)		    /* status line + headers */
#define RLT_HTTP_CLIENT_MAX_HEADERS	   100 /* header lines in one response */

typedef struct rlt_http_client_opts {
	/* Busy connections (a request or reply in progress) in total, and
	 * the most connections open at once, idle ones included: a new one
	 * closes the oldest idle connection when the total is reached.
	 * 0: RLT_HTTP_CLIENT_MAX_TOTAL. */
	unsigned max_total;
	/* Busy connections per host:port. 0: no limit but max_total. */
	unsigned max_per_host;
	/* An idle pooled connection is closed after this long. 0: the
	 * default (15 s); negative: never reuse connections (each reply's
	 * connection is closed when it is freed). */
	int64_t idle_timeout_ns;
	/* Time limits of a request, each < 0 for none, 0 for the default:
	 * connect_timeout_ns covers resolving and connecting (default 30 s),
	 * first_byte_timeout_ns from the request's last byte sent to the
	 * response's first byte received (default: none), timeout_ns the
	 * whole request from the call to the reply's last body byte, reads
	 * of the body included (default 300 s). A limit that passes is
	 * -ETIMEDOUT. A deadline scope of the caller applies as well. */
	int64_t connect_timeout_ns;
	int64_t first_byte_timeout_ns;
	int64_t timeout_ns;
	/* Largest response head (status line and headers), and most header
	 * lines: over either, -EMSGSIZE. 0: the defaults above. Each
	 * connection's read buffer is max_header_size + 16 KiB. */
	size_t max_header_size;
	unsigned max_headers;
	/* Redirects (301, 302, 303, 307, 308 with a Location) followed per
	 * request; 0: none (the 3xx reply is returned, as it is). 303, and
	 * 301/302 of a method other than GET and HEAD, continue as a GET
	 * without a body; 307 and 308 repeat the method and body. One more
	 * than this is -ELOOP. Authorization is dropped when the host
	 * changes. */
	unsigned max_redirects;
	/* The User-Agent sent unless the request has one. NULL: "ringlet". */
	const char *user_agent;
	/* https://: the PEM bundle of CAs that server certificates are
	 * verified against (copied; read at the client's first https request,
	 * on the default executor pool). NULL: the system's (OpenSSL's default
	 * paths: Debian's /etc/ssl/certs). */
	const char *ca_file;
	/* https:// without verifying the server's certificate nor its name
	 * (aiohttp's verify_ssl=False): anyone on the path can then read and
	 * change the traffic. For tests and private networks only. */
	bool unsafe_no_verify;
} rlt_http_client_opts;

/*
 * A client with its (empty) pool. opts may be NULL (all defaults); it is
 * copied (user_agent too). From a task (the client starts a small task
 * that closes idle connections); does not suspend. Returns NULL with errno
 * EPERM (not in a task), EINVAL (an option out of range), ENOMEM, or
 * ENOENT / EACCES (ca_file missing or unreadable; one that is not a PEM
 * bundle fails the first https request with -EKEYREJECTED).
 */
RLT_API rlt_http_client *rlt_http_client_new(const rlt_http_client_opts *opts);

/*
 * Close the pool's idle connections, stop its task and free c. Every reply
 * of c must have been freed: else -EBUSY and nothing is freed. From a
 * task; suspends (it joins the idle-closing task). Returns 0, -EBUSY,
 * -EPERM. NULL: 0.
 */
RLT_API int rlt_http_client_free(rlt_http_client *c);

/* Connections of c open now, and how many of them are idle in the pool.
 * Any thread; a snapshot. */
RLT_API unsigned rlt_http_client_open(const rlt_http_client *c);
RLT_API unsigned rlt_http_client_idle(const rlt_http_client *c);

/* A request header. Neither string may contain CR, LF or NUL (-EINVAL). */
typedef struct rlt_http_client_header {
	const char *name;
	const char *value;
} rlt_http_client_header;

/* rlt_http_client_request.flags */
#define RLT_HTTP_CLIENT_NO_RETRY 1u /* never resend, even an idempotent method */

typedef struct rlt_http_client_request {
	const char *method; /* "GET", "POST", ... (a token); NULL: "GET" */
	const char *url;    /* http://host[:port][/path][?query][#fragment] */
	const rlt_http_client_header *headers;
	size_t nheaders;
	/* The body, sent with a Content-Length (also "Content-Length: 0"
	 * for POST, PUT and PATCH without one). The request's own headers
	 * may not frame it otherwise (Content-Length or Transfer-Encoding
	 * given here: -EINVAL). */
	const void *body;
	size_t body_len;
	/* Whole-request limit for this request: 0 the client's, < 0 none. */
	int64_t timeout_ns;
	unsigned flags; /* RLT_HTTP_CLIENT_* */
} rlt_http_client_request;

/*
 * Send req and wait for the response's head: *out gets a reply whose
 * status and headers are known and whose body is still to be read (with
 * the calls below), on a connection that is the reply's until
 * rlt_http_reply_free. Redirects are followed as the client's options say.
 * The request's strings may be freed once the call returns. From a task;
 * suspends (connecting, sending, receiving). Returns 0 or a negative errno
 * (the list above); *out is NULL then.
 */
RLT_API int rlt_http_fetch(rlt_http_client *c, const rlt_http_client_request *req,
			   rlt_http_reply **out);

/* rlt_http_fetch of a GET of url with no extra headers. */
RLT_API int rlt_http_fetch_url(rlt_http_client *c, const char *url, rlt_http_reply **out);

/*
 * GET url and write its body to fd (a file: at offset, advancing; offset
 * -1: at the fd's position, as for a pipe or socket), with rlt_write as it
 * arrives (the image downloader). The status is stored in *status (may be
 * NULL). Only a 2xx body is written: any other status writes nothing and
 * returns -EREMOTEIO. From a task; suspends. Returns the body's length
 * (bytes written), or a negative errno: those of rlt_http_fetch, of the
 * body's reading, of rlt_write (-ENOSPC, -EBADF...), -EREMOTEIO.
 */
RLT_API ssize_t rlt_http_download(rlt_http_client *c, const char *url, int fd, off_t offset,
				  int *status);

/* ---- the reply: a response as the client receives it ----
 *
 * A reply belongs to one task at a time (no locking); it may be handed to
 * another task between calls. Strings it returns live until it is freed. */

/* The status code (100..999). */
RLT_API int rlt_http_reply_status(const rlt_http_reply *r);

/* The reason phrase ("OK"; "" if the server sent none), NUL-terminated. */
RLT_API const char *rlt_http_reply_reason(const rlt_http_reply *r);

/* The HTTP version as 10 * major + minor: 11 or 10. */
RLT_API int rlt_http_reply_version(const rlt_http_reply *r);

/* The URL that answered: the request's, or the last redirect's. */
RLT_API const char *rlt_http_reply_url(const rlt_http_reply *r);

/*
 * The value of the first header named name (case-insensitive), without
 * leading and trailing blanks, NUL-terminated in place; NULL if there is
 * none. Does not suspend.
 */
RLT_API const char *rlt_http_reply_header(const rlt_http_reply *r, const char *name);

/* How many header lines the response has, and the i-th (in the order
 * received; name and value NUL-terminated, the value trimmed as above).
 * rlt_http_reply_header_at returns 0, or -ERANGE (i too large: *name and
 * *value untouched). */
RLT_API size_t rlt_http_reply_header_count(const rlt_http_reply *r);
RLT_API int rlt_http_reply_header_at(const rlt_http_reply *r, size_t i, const char **name,
				     const char **value);

/* The body's length from Content-Length, or -1 when it is chunked or runs
 * to the connection's end. 0 for a response that has no body (HEAD, 204,
 * 304). */
RLT_API int64_t rlt_http_reply_content_length(const rlt_http_reply *r);

/*
 * Read up to len bytes of the body into buf (chunked framing decoded).
 * Suspends when nothing is buffered. Returns the count (> 0), 0 at the
 * body's end (every later call too), or -EBADMSG, -EPIPE/-ECONNRESET (cut
 * short), -ETIMEDOUT, -ECANCELED, -EINVAL (r or buf NULL, len 0). After an
 * error, every later call returns the same error.
 */
RLT_API ssize_t rlt_http_reply_read(rlt_http_reply *r, void *buf, size_t len);

/*
 * Read the rest of the body, whole, into a buffer of the reply's: *body
 * points at it (NUL-terminated after its length, for text) until the reply
 * is freed or read again. Suspends. Returns the length, or -EMSGSIZE (the
 * body is longer than limit: a Content-Length over it fails before
 * reading anything), or the errors of rlt_http_reply_read.
 */
RLT_API ssize_t rlt_http_reply_body(rlt_http_reply *r, size_t limit, const char **body);

/*
 * Write the rest of the body to fd at offset (-1: the fd's position) with
 * rlt_write, whatever the status. Suspends. Returns the bytes written, or
 * the errors of rlt_http_reply_read and rlt_write.
 */
RLT_API ssize_t rlt_http_reply_write_to(rlt_http_reply *r, int fd, off_t offset);

/*
 * Free r. Its connection goes back to the pool if the body was read to its
 * end (or is already whole in the buffer) and the connection may be kept
 * alive; otherwise it is closed. From a task (closing suspends). NULL is
 * ignored.
 */
RLT_API void rlt_http_reply_free(rlt_http_reply *r);

RLT_EXTERN_C_END

#endif
