/* proto/http's private declarations: the server, its connections, and the
 * request and response they carry. */
#ifndef RLT_HTTP_INT_H
#define RLT_HTTP_INT_H

#include <ringlet.h>
#include <ringlet/cancel.h>
#include <ringlet/http.h>
#include <ringlet/sync.h>
#include <ringlet/tls.h>

#include <llhttp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

/* The write buffer: a pipelined batch of small responses leaves in one
 * send. 16 KiB holds a 4 KiB file's response with room for the next ones. */
#define HTTP_WBUF_SIZE (16u * 1024u)
/* Room a body read is sure to have after the head in the read buffer. */
#define HTTP_BODY_ROOM (8u * 1024u)
/* The handler's response headers, all together. */
#define HTTP_HBUF_SIZE 4096u
/* File bodies too large for the write buffer go through this buffer. */
#define HTTP_FILE_CHUNK (128u * 1024u)

struct hdr {
	uint32_t name_off, name_len; /* relative to the message's first byte */
	uint32_t val_off, val_len;   /* val_off UINT32_MAX: empty value */
};

struct conn;

struct rlt_http_request {
	struct conn *c;
	uint32_t url_off, url_len;
	unsigned nhdr;
	int hdr_state;	  /* 0 none, 1 in a name, 2 in a value */
	uint32_t hdr_end; /* where the last value piece ended (folding check) */
	bool head_done, msg_done, expect_continue, continue_sent, keep_alive;
	bool too_big, too_many;
	int version;
	const char *method;
	int64_t content_length;
	char *head; /* the message's first byte, once the head is complete */
	rlt_http_str target, path, query;
	size_t body_total;	 /* decoded body bytes so far */
	size_t body_rd, dec_end; /* unread decoded body: rbuf[body_rd..dec_end) */
	int body_err;
};

struct rlt_http_response {
	struct conn *c;
	int status;
	bool started, done, chunked, close_delim, head_only;
	int err; /* the first send error: every later call returns it */
	size_t hlen;
	char hbuf[HTTP_HBUF_SIZE];
};

enum { CONN_BUSY, CONN_IDLE, CONN_CLOSING };

struct conn {
	rlt_http_server *srv;
	int fd;
	rlt_tls *tls; /* HTTPS: the TLS stream over fd (NULL: plain) */
	rlt_rxq *rxq; /* the socket's receive side, under TLS too (NULL: rlt_recv) */
	_Atomic int state;
	/* The deadline of the I/O the task waits in (rlt_now() time; 0:
	 * none; DL_FIRED / DL_ISSUED: the reaper is cancelling the task). */
	_Atomic uint64_t deadline;
	rlt_task *task;		  /* to cancel after the grace period */
	struct conn *prev, *next; /* the server's list, under srv->lock */
	bool close_after;
	bool answered; /* a response went out: the client waits for them */
	llhttp_t parser;
	char *rbuf;
	size_t rsize, msg_start, parse_pos, rlen, head_end;
	char *wbuf;
	size_t wlen;
	char *filebuf;
	char *bodybuf;
	size_t bodycap;
	struct hdr *hdrs;
	rlt_http_request req;
	rlt_http_response res;
};

struct listener {
	rlt_http_server *srv;
	int fd;
	unsigned worker;
	rlt_task *task;
};

struct rlt_http_server {
	rlt_http_server_opts o; /* defaults applied */
	rlt_addr *addrs;	/* the bound addresses */
	size_t naddrs;
	char server_hdr[128]; /* "Server: ringlet\r\n" or "" */
	size_t server_hdr_len;
	struct listener *ls;
	size_t nls;
	unsigned workers;
	_Atomic unsigned rr; /* shared acceptor: the next worker */
	_Atomic int stopping;
	rlt_task *reaper; /* expires connection deadlines */
	uint64_t tick;	  /* its period (ns) */
	_Atomic int waiting;
	rlt_event *stop_ev;
	rlt_event *done_ev; /* set when stopping and no connection is left */
	pthread_mutex_t lock;
	struct conn *conns;
	size_t nconns;
};

/* conn.c: a connection on fd, registered with s (NULL: out of memory);
 * serve it in the calling task until it closes (closes fd, frees c); or
 * drop it unserved. */
struct conn *rlt__http_conn_new(rlt_http_server *s, int fd);
int rlt__http_conn_run(struct conn *c);
void rlt__http_conn_abort(struct conn *c);
/* response.c */
void rlt__http_response_reset(struct conn *c);
int rlt__http_flush(struct conn *c);
int rlt__http_send_error(struct conn *c, int status);
int rlt__http_response_finish(struct conn *c, int handler_rc);
/* date.c: "Date: <IMF-fixdate>\r\n" (37 bytes) into out; cached per thread
 * and second. */
#define HTTP_DATE_LINE_LEN 37u
void rlt__http_date(char *out);
/* server.c: the connection registry. */
void rlt__http_conn_register(struct conn *c);
void rlt__http_conn_unregister(struct conn *c);

/*
 * Connection deadlines, without a timer per operation: the task stores the
 * deadline of the wait it enters (a relaxed store), and the server's
 * reaper task, every `tick`, cancels the tasks whose deadline has passed:
 * it moves the deadline to DL_FIRED (CAS), calls rlt_cancel, then stores
 * DL_ISSUED. The task clears its deadline when the wait ends; if the CAS
 * finds the reaper came first, the wait timed out: the task waits for
 * DL_ISSUED (so the cancellation cannot land later, in a handler) and
 * forgets it with rlt_uncancel. Timeouts are late by up to one tick. (A
 * deadline scope per recv and send, a linked timeout under io_uring, cost
 * 8% of the plaintext requests per CPU-second.)
 */
#define DL_FIRED  1u
#define DL_ISSUED 2u

static inline void dl_arm(struct conn *c, int64_t timeout)
{
	if (timeout > 0)
		atomic_store_explicit(&c->deadline, rlt_now() + (uint64_t)timeout,
				      memory_order_relaxed);
}

static inline void dl_arm_at(struct conn *c, uint64_t deadline)
{
	atomic_store_explicit(&c->deadline, deadline, memory_order_relaxed);
}

/* End the wait's deadline: 0, or -ETIMEDOUT if it expired. */
int rlt__http_dl_expired(struct conn *c);
static inline int dl_disarm(struct conn *c)
{
	uint64_t d = atomic_load_explicit(&c->deadline, memory_order_relaxed);
	if (d == 0)
		return 0;
	if (d > DL_ISSUED && atomic_compare_exchange_strong_explicit(
				 &c->deadline, &d, 0, memory_order_relaxed, memory_order_relaxed))
		return 0;
	return rlt__http_dl_expired(c);
}

/* rlt_recv / rlt_sendmsg, retrying what the stream helpers retry:
 * -EINTR at once, -EAGAIN once rlt_poll says the socket is ready.
 * q: the connection's receive queue (NULL: none; a queue whose loop could
 * not set up its buffers is rlt_recv underneath, hence the same retries).
 * idle: the socket most likely holds nothing yet (a response has just
 * gone out and nothing pipelined is buffered): rlt_recv_idle. */
static inline ssize_t http_recv(int fd, rlt_rxq *q, void *buf, size_t len, bool idle)
{
	for (;;) {
		ssize_t n = q	   ? rlt_rxq_recv(q, buf, len)
			    : idle ? rlt_recv_idle(fd, buf, len, 0)
				   : rlt_recv(fd, buf, len, 0);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN) {
			int p = rlt_poll(fd, POLLIN);
			if (p < 0 && p != -EINTR)
				return p;
			continue;
		}
		return n;
	}
}

static inline ssize_t http_sendmsg(int fd, const struct msghdr *m, int flags)
{
	for (;;) {
		/* One piece (the usual flush): send(2), which skips sendmsg's
		 * copy of the header and the iovec in the kernel. */
		ssize_t n = m->msg_iovlen == 1
				? rlt_send(fd, m->msg_iov[0].iov_base, m->msg_iov[0].iov_len, flags)
				: rlt_sendmsg(fd, m, flags);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN) {
			int p = rlt_poll(fd, POLLOUT);
			if (p < 0 && p != -EINTR)
				return p;
			continue;
		}
		return n;
	}
}

/* The connection's transport: TLS when c->tls, else the socket. A branch
 * on a pointer, no indirect call: the plain path is what it was. */
static inline ssize_t conn_recv(struct conn *c, void *buf, size_t len, bool idle)
{
	if (c->tls)
		return rlt_tls_read(c->tls, buf, len);
	return http_recv(c->fd, c->rxq, buf, len, idle);
}

/* rlt_tls_writev sends everything or fails: a short count never comes. */
static inline ssize_t conn_sendmsg(struct conn *c, const struct msghdr *m, int flags)
{
	if (c->tls)
		return rlt_tls_writev(c->tls, m->msg_iov, (int)m->msg_iovlen);
	return http_sendmsg(c->fd, m, flags);
}

static inline int64_t http_timeout(int64_t v, int64_t def)
{
	return v == 0 ? def : v;
}

#endif
