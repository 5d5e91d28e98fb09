/* The HTTP client's insides, shared by client_pool.c (the connection
 * pool, the client), client.c (a request's exchange, redirects),
 * client_reply.c (the reply calls), client_parse.c (the response parser
 * over a buffer: no I/O, so the fuzz target drives it) and client_url.c
 * (URLs). */
#ifndef RLT_HTTP_CLIENT_INTERNAL_H
#define RLT_HTTP_CLIENT_INTERNAL_H

#include <ringlet/http_client.h>
#include <ringlet/tls.h>

#include <llhttp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- URLs (client_url.c) ---- */

/* Longest host name (RFC 1035: 253) plus brackets, ':' and a port. */
#define RLT__HTTP_HOSTPORT_MAX 272

typedef struct rlt__http_url {
	char hostport[RLT__HTTP_HOSTPORT_MAX]; /* "host:port", "[v6]:port": the pool's key and dial
						  string */
	char host_hdr[RLT__HTTP_HOSTPORT_MAX]; /* the Host header: port omitted when 80 */
	const char *target;		       /* path and query, inside the parsed string */
	size_t target_len;		       /* 0: "/" */
	int port;
	bool tls;	/* https:// */
	char host[256]; /* the bare host (no brackets, no port): SNI and verification */
} rlt__http_url;

/* Parse an absolute http:// or https:// URL. 0, -EINVAL,
 * -EPROTONOSUPPORT (another scheme). u->target points into url. */
int rlt__http_url_parse(rlt__http_url *u, const char *url);

/* Resolve a Location value against the URL base into out (size bytes):
 * absolute, scheme-relative ("//h/p"), absolute-path ("/p") or relative
 * ("p", "../p" is kept as the server's business). 0, -EINVAL, -ENAMETOOLONG. */
int rlt__http_url_resolve(const char *base, const char *loc, char *out, size_t size);

/* ---- the response parser (client_parse.c) ---- */

/* One header line: offsets into the buffer, NUL-terminated in place once
 * the head is complete. */
typedef struct rlt__http_hdr {
	uint32_t name, name_len, value, value_len;
} rlt__http_hdr;

enum {
	RLT__RESP_HEAD,	   /* reading the status line and headers */
	RLT__RESP_LENGTH,  /* a Content-Length body: remaining bytes to go */
	RLT__RESP_CHUNKED, /* a chunked body, decoded by llhttp */
	RLT__RESP_EOF,	   /* a body that runs to the connection's end */
	RLT__RESP_DONE,	   /* the body's end was seen */
};

typedef struct rlt__http_resp {
	llhttp_t p;
	char *buf;	 /* the connection's buffer: head at [0, head_end), then read-ahead */
	size_t cap;	 /* its size */
	size_t pos, end; /* unparsed bytes: [pos, end) */
	size_t head_end; /* where the head ended (body read-ahead starts there) */
	rlt__http_hdr *hdrs;
	unsigned nhdrs, hdrs_cap, max_headers;
	size_t max_header_size;
	uint32_t reason, reason_len;
	int status, version;
	int state;		/* RLT__RESP_* */
	bool head_request;	/* the request was HEAD: no body whatever the headers say */
	bool keep_alive;	/* llhttp_should_keep_alive at the head's end */
	bool in_value;		/* the last header span seen was a value */
	int err;		/* sticky error of the body (negative errno) */
	uint64_t remaining;	/* RLT__RESP_LENGTH: body bytes still to come */
	int64_t content_length; /* as rlt_http_reply_content_length */
	char *dst;		/* RLT__RESP_CHUNKED: where on_body copies to */
	size_t dst_len, dst_got;
} rlt__http_resp;

/* Start parsing a new response whose first bytes (if any) are at
 * buf[pos, end). head_request: the request was HEAD. */
void rlt__http_resp_begin(rlt__http_resp *r, bool head_request);

/* Parse what is buffered of the head. Returns 1 when the head is complete
 * (r->state says how the body is framed; pos is past the head; 1xx
 * interim responses are skipped), 0 when more bytes are needed (the caller
 * reads into buf[end, cap) and calls again), -EBADMSG (malformed),
 * -EMSGSIZE (over max_header_size or max_headers). */
int rlt__http_resp_head(rlt__http_resp *r);

/* Move buffered body bytes into dst (at most len): the count (0: nothing
 * buffered, or the body ended: r->state is RLT__RESP_DONE then), or
 * -EBADMSG. Never reads. */
ssize_t rlt__http_resp_take(rlt__http_resp *r, char *dst, size_t len);

/* The connection ended: 0 if that ends the body (RLT__RESP_EOF, or the
 * body was done), else -EPIPE. */
int rlt__http_resp_eof(rlt__http_resp *r);

/* The header named name (case-insensitive), or NULL. */
const char *rlt__http_resp_header(const rlt__http_resp *r, const char *name);

/* Free what the parser allocated (the header array). */
void rlt__http_resp_free(rlt__http_resp *r);

/* For the fuzz target: run the parser over data, read in pieces. */
int rlt__http_client_fuzz(const uint8_t *data, size_t size);

/* After a socket call returned *n < 0: whether to call again. -EINTR:
 * yes. -EAGAIN (ringlet's sockets are blocking-mode, but a loop policy may
 * say it, as the fault policy does): yes once rlt_poll says fd is ready
 * for events, else *n becomes the poll's error. Anything else: no. */
static inline bool rlt__http_again(int fd, ssize_t *n, unsigned events)
{
	if (*n == -EINTR)
		return true;
	if (*n != -EAGAIN)
		return false;
	int rc;
	while ((rc = rlt_poll(fd, events)) == -EINTR)
		;
	if (rc > 0)
		return true;
	*n = rc < 0 ? rc : -EIO;
	return false;
}

/* ---- the pool (client_pool.c) ---- */

#define RLT__HTTP_READ_AHEAD (16 * 1024) /* body read-ahead after the head, per connection */

typedef struct rlt__http_host {
	struct rlt__http_host *next;	      /* hash chain */
	bool tls;			      /* https: connections run TLS to name */
	char dial[RLT__HTTP_HOSTPORT_MAX];    /* "host:port" for rlt_net_dial */
	char name[256];			      /* the bare host, for SNI and verification */
	rlt_sem *sem;			      /* busy connections of this host (NULL: no limit) */
	struct rlt_http_reply *idle;	      /* idle connections, newest first */
	char key[RLT__HTTP_HOSTPORT_MAX + 8]; /* "host:port", "https:host:port" */
} rlt__http_host;

/* A reply is its connection: the socket, the buffers (kept from request
 * to request) and the parser. Busy (a task has the reply) or on its
 * host's idle list and the client's. */
struct rlt_http_reply {
	rlt_http_client *c;
	rlt__http_host *h;
	int fd;
	rlt_tls *tls;			      /* https: the TLS stream over fd */
	bool broken;			      /* an error happened: never reuse */
	unsigned uses;			      /* requests sent on it */
	uint64_t idle_since;		      /* rlt_now() when it went idle */
	struct rlt_http_reply *hprev, *hnext; /* the host's idle list */
	struct rlt_http_reply *lprev, *lnext; /* the client's idle list, oldest first */
	uint64_t deadline;		      /* the whole request's (0: none): body reads too */
	rlt__http_resp resp;		      /* the parser, over its buffer */
	char *wbuf;			      /* the request head */
	size_t wcap;
	char *body; /* rlt_http_reply_body's and write_to's buffer */
	size_t body_cap;
	char *url; /* the URL that answered */
	size_t url_cap;
};

#define RLT__HTTP_HOST_BUCKETS 64

struct rlt_http_client {
	rlt_http_client_opts o; /* with the defaults filled in */
	char *user_agent;
	rlt_sem *total;
	rlt_task *idle_task;
	pthread_mutex_t lock; /* the host table, the idle lists, open/idle changes */
	rlt__http_host *hosts[RLT__HTTP_HOST_BUCKETS];
	_Atomic(rlt_tls_ctx *) tls_ctx;		    /* https's, made on the first https request */
	char *ca_file;				    /* its CA bundle (NULL: the system's) */
	struct rlt_http_reply *lru_head, *lru_tail; /* idle, oldest first */
	_Atomic unsigned open, idle;
};

/* The host entry of u's scheme, host and port (made on first use; lives
 * as long as c), or NULL (out of memory). Does not suspend. */
rlt__http_host *rlt__http_host_get(rlt_http_client *c, const rlt__http_url *u);

/* A connection to h, idle or new (rlt_net_dial), with its permits (waits
 * for them). Suspends. 0, or the wait's or the dial's negative errno. */
int rlt__http_conn_acquire(rlt_http_client *c, rlt__http_host *h, struct rlt_http_reply **out);

/* Give a connection back: to the idle lists if reuse (and the client
 * keeps connections), else closed; then its permits. May suspend. */
void rlt__http_conn_release(struct rlt_http_reply *r, bool reuse);

/* The connection's transport: TLS when r->tls, else the socket (a branch
 * on a pointer; the plain path is what it was). */
static inline ssize_t rlt__http_conn_recv(struct rlt_http_reply *r, void *buf, size_t len)
{
	if (r->tls)
		return rlt_tls_read(r->tls, buf, len);
	return rlt_recv(r->fd, buf, len, 0);
}

#endif
