/*
 * A connection: the socket, a writer task and a reader task, and the two
 * queues between them and the tasks issuing commands.
 *
 *   issuing tasks --(submit: lock-free stack)--> writer --sendmsg--> server
 *   server --recv--> reader --(in-flight FIFO, under lock)--> each task's future
 *
 * A request is queued with a push on `submit` (any worker, no lock); the push
 * that finds the stack empty wakes the writer (an rlt_event). The writer takes
 * the whole stack at once, restores its order, appends the requests to the
 * in-flight FIFO *before* writing them (a reply can come back before sendmsg
 * returns), and sends them in one sendmsg. The reader parses replies with
 * hiredis and completes the oldest in-flight request with each. Both tasks
 * belong to the connection, not to any caller: a caller's cancellation or
 * deadline never cuts a write or a read short, so the byte stream stays
 * whole; a request whose task went away is completed all the same and freed.
 *
 * Requests are reference counted (the issuing task and the connection): the
 * last to let go frees it with any reply it still holds.
 */
#include "conn.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The reader's receive buffer. 64 KiB holds the replies to a few thousand
 * small commands: one recv per batch under automatic pipelining. */
#define READ_BUF (64 * 1024)
/* iovecs per sendmsg (the kernel's UIO_MAXIOV is 1024). */
#define IOV_BATCH 1024
/* Stacks of the connection's tasks: their frames are small (buffers are on
 * the heap); hiredis's parser does not recurse. */
#define IO_STACK (64 * 1024)
/* The reader completes a read's replies in about CHUNK_PARTS chunks of at
 * least CHUNK_MIN (see reader_main). */
#define CHUNK_PARTS 6
#define CHUNK_MIN   8

static void req_destroy(rlt__redis_req *q)
{
	for (size_t i = 0; i < q->got; i++)
		rlt_redis_reply_free(q->replies[i]);
	if (q->replies != &q->one)
		free(q->replies);
	sdsfree(q->cmd);
	rlt_future_release(q->fut);
	free(q);
}

void rlt__redis_req_put(rlt__redis_req *q)
{
	/* acq_rel: the last one sees everything the other wrote before. */
	if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) == 1)
		req_destroy(q);
}

rlt__redis_req *rlt__redis_req_new(char *cmd, size_t len, size_t nreplies)
{
	rlt__redis_req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->fut = rlt_future_new();
	if (!q->fut) {
		free(q);
		return NULL;
	}
	if (nreplies > 1) {
		q->replies = malloc(nreplies * sizeof(*q->replies));
		if (!q->replies) {
			rlt_future_release(q->fut);
			free(q);
			return NULL;
		}
	} else {
		q->replies = &q->one;
	}
	q->cmd = cmd;
	q->cmd_len = len;
	q->n = nreplies;
	atomic_init(&q->refs, 2);
	atomic_init(&q->abandoned, false);
	return q;
}

/* The connection's side of q is done: hand the outcome to the task. */
static void req_complete(rlt__redis_req *q, int err)
{
	q->err = err;
	rlt_future_set(q->fut, NULL); /* publishes replies[] and err */
	rlt__redis_req_put(q);
}

static void fail_list(rlt__redis_req *q, int err)
{
	while (q) {
		rlt__redis_req *next = q->next;
		req_complete(q, err);
		q = next;
	}
}

/*
 * The connection is broken: remember why (the first cause wins), shut the
 * socket (so that the other task's pending recv or send returns) and fail
 * everything in flight: the oldest request with first_err, the rest with err.
 * Any task; idempotent.
 */
void rlt__redis_break(rlt_redis *c, int err, int first_err)
{
	int expect = 0;
	atomic_compare_exchange_strong(&c->err, &expect, err);
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->lock);
	rlt__redis_req *q = c->in_head;
	c->in_head = c->in_tail = NULL;
	pthread_mutex_unlock(&c->lock);
	if (q) {
		rlt__redis_req *next = q->next;
		req_complete(q, first_err);
		fail_list(next, err);
	}
	if (c->msgs)
		rlt_chan_close(c->msgs);
}

int rlt__redis_submit(rlt_redis *c, rlt__redis_req *q)
{
	int err = atomic_load(&c->err);
	if (err)
		return err;
	rlt__redis_req *head = atomic_load_explicit(&c->submit, memory_order_relaxed);
	do
		q->next = head;
	while (!atomic_compare_exchange_weak_explicit(&c->submit, &head, q, memory_order_acq_rel,
						      memory_order_relaxed));
	/* Only the push onto an empty stack wakes the writer: it drains the
	 * whole stack when it runs, and re-checks it after clearing the event. */
	if (!head)
		rlt_event_set(c->wake);
	return 0;
}

int rlt__redis_wait(rlt__redis_req *q)
{
	int rc = rlt_future_await(q->fut, NULL, -1);
	if (rc == 0)
		return q->err;
	/* Cancelled or timed out: the connection still owns its reference and
	 * completes q when the reply comes (or drops q unsent); we just leave. */
	atomic_store_explicit(&q->abandoned, true, memory_order_release);
	return rc;
}

/* A counter only one task writes: no read-modify-write needed. */
static inline void bump(_Atomic uint64_t *ctr, uint64_t n)
{
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* ---- the writer ---- */

/* Send iov[0..n) completely (sendmsg may take part). 0 or a negative errno. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = rlt_sendmsg(fd, &mh, 0);
		if (w == -EINTR || w == -EAGAIN)
			continue;
		if (w < 0)
			return (int)w;
		if (w == 0)
			return -EIO;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Room for n iovecs and buffers in the writer's arrays. */
static int reserve(rlt_redis *c, size_t n)
{
	if (n <= c->cap)
		return 0;
	size_t cap = c->cap ? c->cap : 64;
	while (cap < n)
		cap *= 2;
	struct iovec *iov = realloc(c->iov, cap * sizeof(*iov));
	if (iov)
		c->iov = iov;
	char **bases = realloc(c->bases, cap * sizeof(*bases));
	if (bases)
		c->bases = bases;
	if (!iov || !bases)
		return -ENOMEM;
	c->cap = cap;
	return 0;
}

/*
 * Write the requests of one batch (FIFO order, linked by next). Their
 * buffers are taken first: once a request is in flight the reader may
 * complete it and its task free it, so after the append below the writer
 * touches no request, only the buffers it now owns.
 */
static void write_batch(rlt_redis *c, rlt__redis_req *head, rlt__redis_req *tail, size_t n)
{
	if (reserve(c, n) < 0) {
		fail_list(head, -ENOMEM);
		return;
	}
	size_t i = 0, cmds = 0;
	for (rlt__redis_req *q = head; i < n; q = q->next, i++) {
		cmds += q->n;
		c->iov[i].iov_base = q->cmd;
		c->iov[i].iov_len = q->cmd_len;
		c->bases[i] = q->cmd;
		q->cmd = NULL;
	}
	pthread_mutex_lock(&c->lock);
	int err = atomic_load(&c->err);
	if (!err) {
		if (c->in_tail)
			c->in_tail->next = head;
		else
			c->in_head = head;
		c->in_tail = tail;
	}
	pthread_mutex_unlock(&c->lock);
	if (err)
		fail_list(head, err);
	if (!err) {
		bump(&c->st_writes, 1);
		bump(&c->st_commands, cmds);
	}
	int rc = 0;
	for (size_t off = 0; !err && !rc && off < n; off += IOV_BATCH) {
		size_t k = n - off < IOV_BATCH ? n - off : IOV_BATCH;
		rc = send_iov(c->fd, c->iov + off, (int)k);
	}
	/* send_iov advances the iov_base of a partly sent entry: free the
	 * buffers through the bases kept aside. */
	for (size_t j = 0; j < n; j++)
		sdsfree(c->bases[j]);
	if (rc)
		rlt__redis_break(c, rc, rc);
}

static void *writer_main(void *arg)
{
	rlt_redis *c = arg;
	for (;;) {
		rlt__redis_req *s = atomic_exchange(&c->submit, NULL);
		if (!s) {
			if (atomic_load(&c->closing))
				break;
			rlt_event_clear(c->wake);
			/* The clear must precede the re-check (a push after the
			 * re-check sees an empty stack and sets the event). */
			atomic_thread_fence(memory_order_seq_cst);
			s = atomic_exchange(&c->submit, NULL);
			if (!s) {
				if (atomic_load(&c->closing))
					break;
				/* Woken by the first command of a burst (a wake-up
				 * may run us right after its sender): let the other
				 * runnable tasks issue theirs first (the yield), so
				 * the burst goes out as one write per loop turn. */
				if (rlt_event_wait(c->wake) == -ECANCELED ||
				    rlt_yield() == -ECANCELED) {
					/* The runtime is shutting down (the connection
					 * was not closed): fail everything from now on. */
					rlt__redis_break(c, -ECANCELED, -ECANCELED);
					atomic_store(&c->closing, true);
				}
				continue;
			}
		}
		/* s is newest first: reverse it, and drop the requests whose task
		 * has gone before they were sent (never sent, nothing to discard). */
		rlt__redis_req *head = NULL, *tail = NULL;
		size_t n = 0;
		while (s) {
			rlt__redis_req *next = s->next;
			if (atomic_load_explicit(&s->abandoned, memory_order_acquire)) {
				bump(&c->st_dropped, 1);
				req_complete(s, -ECANCELED);
			} else {
				s->next = head;
				head = s;
				if (!tail)
					tail = s;
				n++;
			}
			s = next;
		}
		if (head)
			write_batch(c, head, tail, n);
	}
	/* Closing: fail whatever was queued after the last look. */
	fail_list(atomic_exchange(&c->submit, NULL), atomic_load(&c->err));
	return NULL;
}

/* ---- the reader ---- */

/* A reply has come: it answers the oldest request in flight. */
static int dispatch(rlt_redis *c, rlt_redis_reply *r)
{
	bump(&c->st_replies, 1);
	if (c->msgs) {
		int rc = rlt__redis_pubsub_push(c, r);
		if (rc != 1)
			return rc; /* 0: it was a message; < 0: broken */
	}
	pthread_mutex_lock(&c->lock);
	rlt__redis_req *q = c->in_head;
	bool done = false;
	if (q) {
		/* Only the reader touches got and replies[] before completion. */
		q->replies[q->got++] = r;
		if (q->got == q->n) {
			done = true;
			c->in_head = q->next;
			if (!c->in_head)
				c->in_tail = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!q) {
		/* A reply nobody asked for: the stream is out of step. */
		rlt_redis_reply_free(r);
		return -EPROTO;
	}
	if (done) {
		if (atomic_load_explicit(&q->abandoned, memory_order_relaxed))
			bump(&c->st_discarded, 1);
		req_complete(q, 0);
	}
	return 0;
}

static void *reader_main(void *arg)
{
	rlt_redis *c = arg;
	int err;
	for (;;) {
		ssize_t n = rlt_recv(c->fd, c->rbuf, READ_BUF, 0);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n <= 0) {
			err = n == 0 ? -ECONNRESET : (int)n;
			break;
		}
		bump(&c->st_reads, 1);
		err = rlt__redis_reader_feed(&c->rd, c->rbuf, (size_t)n);
		if (err)
			break;
		/* A deep pipeline's replies arrive many to a read. Completing
		 * them all before the woken tasks run would leave the server
		 * idle until every task has issued its next command and the
		 * writer has sent the lot: one batch in flight at a time, a
		 * round trip per batch. Yielding every `chunk` replies lets the
		 * first tasks issue theirs and the writer send them while the
		 * rest are completed, so a few writes are in flight and both
		 * sides work at once (50 tasks on one connection: about 1.5-2x
		 * the commands per second at the same CPU per command; one
		 * write per ~7 commands instead of 50). A shallow pipeline
		 * (fewer than 2 * CHUNK_MIN in flight) is completed in one go. */
		uint64_t inflight = atomic_load_explicit(&c->st_commands, memory_order_relaxed) -
				    atomic_load_explicit(&c->st_replies, memory_order_relaxed);
		uint64_t chunk = inflight / CHUNK_PARTS;
		if (chunk < CHUNK_MIN)
			chunk = inflight >= 2 * CHUNK_MIN ? CHUNK_MIN : UINT64_MAX;
		uint64_t k = 0;
		rlt_redis_reply *r;
		while ((err = rlt__redis_reader_next(&c->rd, &r)) == 1) {
			if ((err = dispatch(c, r)) < 0)
				break;
			if (++k == chunk) {
				k = 0;
				/* Cancelled (the connection closes): a cancellation
				 * is delivered once, so it ends the reader here. */
				if (rlt_yield() == -ECANCELED) {
					err = -ECANCELED;
					break;
				}
			}
		}
		if (err < 0)
			break;
	}
	if (atomic_load(&c->closing))
		rlt__redis_break(c, -ESHUTDOWN, -ESHUTDOWN);
	else if (err == -EMSGSIZE)
		rlt__redis_break(c, -ECONNABORTED, -EMSGSIZE);
	else
		rlt__redis_break(c, err, err);
	return NULL;
}

/* ---- connections ---- */

static void conn_free(rlt_redis *c)
{
	if (c->msgs) {
		void *m;
		while (rlt_chan_try_recv(c->msgs, &m) == 0)
			free(m); /* rlt_redis_msg: one allocation */
		rlt_chan_free(c->msgs);
	}
	if (c->fd >= 0)
		rlt_close(c->fd);
	rlt__redis_reader_destroy(&c->rd);
	rlt_event_free(c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c->rbuf);
	free(c->iov);
	free(c->bases);
	free(c);
}

int rlt_redis_broken(const rlt_redis *c)
{
	return c ? atomic_load(&((rlt_redis *)c)->err) : -EINVAL;
}

int rlt_redis_stats_get(const rlt_redis *c, rlt_redis_stats *out)
{
	if (!c || !out)
		return -EINVAL;
	rlt_redis *m = (rlt_redis *)c;
	*out = (rlt_redis_stats){
	    .commands = atomic_load_explicit(&m->st_commands, memory_order_relaxed),
	    .writes = atomic_load_explicit(&m->st_writes, memory_order_relaxed),
	    .reads = atomic_load_explicit(&m->st_reads, memory_order_relaxed),
	    .replies = atomic_load_explicit(&m->st_replies, memory_order_relaxed),
	    .discarded = atomic_load_explicit(&m->st_discarded, memory_order_relaxed),
	    .dropped = atomic_load_explicit(&m->st_dropped, memory_order_relaxed),
	};
	return 0;
}

int rlt_redis_close(rlt_redis *c)
{
	if (!c)
		return 0;
	if (!rlt_current())
		return -EPERM;
	rlt_scope sh;
	rlt_shield_enter(&sh);
	atomic_store(&c->closing, true);
	int expect = 0;
	atomic_compare_exchange_strong(&c->err, &expect, -ESHUTDOWN);
	shutdown(c->fd, SHUT_RDWR); /* the reader's recv ends */
	if (c->msgs)
		rlt_chan_close(c->msgs); /* so does its send to a full channel */
	rlt_event_set(c->wake);		 /* the writer sees closing */
	if (c->writer)
		rlt_join(c->writer, NULL);
	if (c->reader)
		rlt_join(c->reader, NULL);
	rlt_scope_leave(&sh);
	conn_free(c);
	return 0;
}

/* Run one handshake command; 0, or the errno for `refused` when the server
 * answers with an error (NOAUTH asks for a password: EACCES as well). */
static int handshake(rlt_redis *c, int refused, int argc, const char **argv)
{
	rlt_redis_reply *r = NULL;
	int rc = rlt_redis_command_argv(c, &r, argc, argv, NULL);
	if (rc < 0)
		return -rc;
	int err = 0;
	if (r->type == RLT_REDIS_REPLY_ERROR)
		err = strncmp(r->str, "NOAUTH", 6) == 0 || strncmp(r->str, "WRONGPASS", 9) == 0
			  ? EACCES
			  : refused;
	rlt_redis_reply_free(r);
	return err;
}

rlt_redis *rlt__redis_open(const rlt_redis_opts *o, size_t pubsub_backlog)
{
	static const rlt_redis_opts defaults = {0};
	if (!o)
		o = &defaults;
	if (!rlt_current()) {
		errno = EPERM;
		return NULL;
	}
	int64_t timeout = o->connect_timeout_ns == 0 ? (int64_t)RLT_REDIS_DEFAULT_CONNECT_TIMEOUT
						     : o->connect_timeout_ns;
	uint64_t start = rlt_now();
	int fd = rlt_net_dial(o->address ? o->address : "127.0.0.1:6379", timeout, RLT_NET_NODELAY);
	if (fd < 0) {
		errno = fd == -EINVAL ? EINVAL : -fd;
		return NULL;
	}
	rlt_redis *c = calloc(1, sizeof(*c));
	int err = ENOMEM;
	if (!c) {
		rlt_close(fd);
		errno = ENOMEM;
		return NULL;
	}
	c->fd = fd;
	pthread_mutex_init(&c->lock, NULL);
	c->rbuf = malloc(READ_BUF);
	c->wake = rlt_event_new();
	if (!c->rbuf || !c->wake || reserve(c, 64) < 0 ||
	    rlt__redis_reader_init(&c->rd, o->max_reply) < 0)
		goto fail;
	if (pubsub_backlog && !(c->msgs = rlt_chan_new(pubsub_backlog)))
		goto fail;
	rlt_spawn_opts so = {.name = "redis-writer", .stack_size = IO_STACK};
	if (!(c->writer = rlt_spawn(writer_main, c, &so)))
		goto fail;
	so.name = "redis-reader";
	if (!(c->reader = rlt_spawn(reader_main, c, &so))) {
		err = errno;
		rlt_redis_close(c); /* fd closed there */
		errno = err;
		return NULL;
	}

	/* The handshake, within what is left of the connect timeout. */
	rlt_scope sc;
	if (timeout > 0)
		rlt_scope_enter_at(&sc, start + (uint64_t)timeout);
	else
		rlt_scope_enter(&sc, -1);
	err = 0;
	if (o->password) {
		const char *a[] = {"AUTH", o->username ? o->username : o->password, o->password};
		err = handshake(c, EACCES, o->username ? 3 : 2, a);
	}
	if (!err && o->db > 0) {
		char db[16];
		snprintf(db, sizeof(db), "%d", o->db);
		const char *a[] = {"SELECT", db};
		err = handshake(c, EINVAL, 2, a);
	}
	if (!err && o->client_name) {
		const char *a[] = {"CLIENT", "SETNAME", o->client_name};
		err = handshake(c, EPROTO, 3, a);
	}
	rlt_scope_leave(&sc);
	if (err) {
		rlt_redis_close(c);
		errno = err;
		return NULL;
	}
	return c;
fail:
	conn_free(c);
	errno = err;
	return NULL;
}

rlt_redis *rlt_redis_connect(const rlt_redis_opts *o)
{
	return rlt__redis_open(o, 0);
}

/* ---- commands ---- */

/* Queue cmd (ours now) for nreplies replies and wait for them. */
static int run(rlt_redis *c, char *cmd, size_t len, size_t nreplies, rlt_redis_reply **out)
{
	rlt__redis_req *q = rlt__redis_req_new(cmd, len, nreplies);
	if (!q) {
		sdsfree(cmd);
		return -ENOMEM;
	}
	int rc = rlt__redis_submit(c, q);
	if (rc) {
		atomic_store(&q->refs, 1); /* never queued: ours alone */
		rlt__redis_req_put(q);
		return rc;
	}
	rc = rlt__redis_wait(q);
	if (rc == 0) {
		memcpy(out, q->replies, nreplies * sizeof(*out));
		q->got = 0; /* the caller's now */
	}
	rlt__redis_req_put(q);
	return rc;
}

int rlt_redis_commandv(rlt_redis *c, rlt_redis_reply **reply, const char *fmt, va_list ap)
{
	if (!reply)
		return -EINVAL;
	*reply = NULL;
	if (!c || !fmt)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	char *cmd;
	int len = redisvFormatCommand(&cmd, fmt, ap);
	if (len == -2)
		return -ENOMEM;
	if (len < 0)
		return -EINVAL;
	/* Every queued buffer is an sds (see rlt__redis_format_argv). */
	sds s = sdsnewlen(cmd, (size_t)len);
	free(cmd);
	if (!s)
		return -ENOMEM;
	return run(c, s, (size_t)len, 1, reply);
}

int rlt_redis_command(rlt_redis *c, rlt_redis_reply **reply, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = rlt_redis_commandv(c, reply, fmt, ap);
	va_end(ap);
	return rc;
}

/* hiredis wants argvlen; make one for C strings. The sds variant of
 * hiredis's encoder: its own number formatting, where redisFormatCommandArgv
 * calls sprintf per argument (14% of the client's CPU at 50 tasks on one
 * connection, perf). */
int rlt__redis_format_argv(char **cmd, int argc, const char *const *argv, const size_t *argvlen)
{
	if (argc <= 0 || !argv)
		return -EINVAL;
	size_t small[16], *lens = small;
	if (!argvlen) {
		if (argc > 16 && !(lens = malloc((size_t)argc * sizeof(*lens))))
			return -ENOMEM;
		for (int i = 0; i < argc; i++)
			lens[i] = argv[i] ? strlen(argv[i]) : 0;
		argvlen = lens;
	}
	sds out = NULL;
	int len = redisFormatSdsCommandArgv(&out, argc, (const char **)argv, argvlen);
	*cmd = out;
	if (lens != small)
		free(lens);
	return len < 0 ? -ENOMEM : len;
}

int rlt_redis_command_argv(rlt_redis *c, rlt_redis_reply **reply, int argc, const char *const *argv,
			   const size_t *argvlen)
{
	if (!reply)
		return -EINVAL;
	*reply = NULL;
	if (!c)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	char *cmd;
	int len = rlt__redis_format_argv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return len;
	return run(c, cmd, (size_t)len, 1, reply);
}

int rlt__redis_run(rlt_redis *c, char *cmd, size_t len, size_t nreplies, rlt_redis_reply **out)
{
	return run(c, cmd, len, nreplies, out);
}
