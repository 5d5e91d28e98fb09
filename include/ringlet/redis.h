#ifndef RINGLET_REDIS_H
#define RINGLET_REDIS_H

#include "common.h"

#include <stdarg.h>
#include <sys/types.h>

RLT_EXTERN_C_BEGIN

/*
 * A Redis client: connections, typed replies, pipelines, automatic
 * pipelining, a connection pool and Pub/Sub. Link ringlet-redis
 * (`pkg-config ringlet-redis`, CMake ringlet::redis).
 *
 * Replies are parsed and commands encoded by hiredis (its redisReader and
 * redisFormatCommand*); the sockets, buffers, limits and tasks are
 * ringlet's: nothing here blocks a worker thread.
 *
 * Every connection is automatically pipelined. It owns two tasks, a writer
 * and a reader. A command is queued (a lock-free push, from any task on any
 * worker) and its task suspends; the writer sends everything queued since its
 * last write in one sendmsg (so the commands issued by all tasks during one
 * loop turn travel in one write), and the reader hands each reply to the
 * task whose command it answers, in the order the commands were queued. One
 * connection can therefore be shared by any number of tasks; commands of one
 * task run in the order it issued them, commands of different tasks in the
 * order they were queued.
 *
 * Errors. A call that returns int returns 0 (or a count) or a negative
 * errno for a transport failure; an error *reply* from the server (-ERR,
 * -WRONGTYPE, ...) is not a failure of the call: it is a reply of type
 * RLT_REDIS_REPLY_ERROR carrying the server's message.
 *
 * Cancellation and deadlines. Waiting for a reply is a suspension point: a
 * task cancelled (rlt_cancel) or whose deadline scope expires
 * (rlt_scope_enter) gets -ECANCELED / -ETIMEDOUT. A command the writer had
 * not yet taken is then never sent; one already taken has its reply read and
 * discarded by the reader, so the replies of later commands still reach
 * their tasks: the stream never goes out of step. (A cancelled command that
 * was sent may have run on the server.)
 *
 * Failure. When the server closes the connection or dies, when it sends
 * something that is not RESP, or when a reply exceeds max_reply, every
 * command queued or in flight fails at once: with -ECONNRESET (end of stream
 * or reset), the socket's errno, -EPROTO (protocol error) or -EMSGSIZE (the
 * command whose reply was too big; the others on the connection get
 * -ECONNABORTED). The connection is then broken (rlt_redis_broken) and every
 * later command fails with the same error at once; close it (a pool drops
 * it and makes a new one).
 *
 * Connections that must not be shared: MULTI/EXEC, WATCH, blocking commands
 * (BLPOP...) and SELECT change the connection's state for everyone on it;
 * give such work a connection of its own (from a pool). SUBSCRIBE and
 * friends belong to rlt_redis_pubsub.
 */

/* ---- replies ---- */

#define RLT_REDIS_REPLY_STRING	1 /* bulk string: str, len (binary-safe) */
#define RLT_REDIS_REPLY_ARRAY	2 /* element[0..elements) */
#define RLT_REDIS_REPLY_INTEGER 3 /* integer */
#define RLT_REDIS_REPLY_NIL	4 /* nil bulk string or nil array */
#define RLT_REDIS_REPLY_STATUS	5 /* +OK: str, len */
#define RLT_REDIS_REPLY_ERROR	6 /* -ERR ...: str, len (the server's message) */

/*
 * A reply, as one tree of allocations owned by whoever received it: free
 * the top one with rlt_redis_reply_free. str is NUL-terminated (also when
 * the string holds NULs: use len). Values are hiredis's reply types (the
 * numbers are the same), built directly by a custom set of hiredis object
 * functions, not converted from a redisReply.
 */
typedef struct rlt_redis_reply {
	int type;			  /* RLT_REDIS_REPLY_* */
	long long integer;		  /* INTEGER */
	size_t len;			  /* STRING, STATUS, ERROR */
	char *str;			  /* STRING, STATUS, ERROR; NULL otherwise */
	size_t elements;		  /* ARRAY */
	struct rlt_redis_reply **element; /* ARRAY */
} rlt_redis_reply;

/* Free r and everything in it. NULL is ignored. Any thread. */
RLT_API void rlt_redis_reply_free(rlt_redis_reply *r);

/* ---- connections ---- */

/* Defaults of rlt_redis_opts (0 in a field means the default). */
#define RLT_REDIS_DEFAULT_MAX_REPLY	  (512u * 1024 * 1024) /* Redis's own proto-max-bulk-len */
#define RLT_REDIS_DEFAULT_CONNECT_TIMEOUT (5 * RLT_NSEC_PER_SEC)

typedef struct rlt_redis_opts {
	/* "host:port" ("127.0.0.1:6379", "localhost:6379", "[::1]:6379") or
	 * "unix:/path/redis.sock". NULL: "127.0.0.1:6379". */
	const char *address;
	/* Connecting and the handshake below together take at most this long
	 * (ns), else -ETIMEDOUT. 0: RLT_REDIS_DEFAULT_CONNECT_TIMEOUT;
	 * negative: no limit. */
	int64_t connect_timeout_ns;
	/* AUTH password, or AUTH username password (Redis 6 ACLs) when
	 * username is set too. NULL: no AUTH. */
	const char *username;
	const char *password;
	/* SELECT db when > 0. */
	int db;
	/* CLIENT SETNAME name when not NULL. */
	const char *client_name;
	/* Largest reply accepted, in bytes as they arrive on the wire (for an
	 * array: all of it). Larger: -EMSGSIZE (see Failure above). 0:
	 * RLT_REDIS_DEFAULT_MAX_REPLY. */
	size_t max_reply;
} rlt_redis_opts;

typedef struct rlt_redis rlt_redis;

/*
 * Connect (TCP_NODELAY on TCP), then AUTH, SELECT and CLIENT SETNAME as
 * asked, and start the connection's reader and writer tasks (spawned on the
 * calling worker; they may run anywhere). opts may be NULL (all defaults).
 * Suspends. Returns the connection, or NULL with errno:
 *   ETIMEDOUT      connect_timeout_ns passed
 *   ECONNREFUSED, ENOENT (no such Unix socket), ... what rlt_net_dial says
 *   EACCES         AUTH was refused (wrong password, unknown user), or the
 *                  server wants AUTH and none was given (NOAUTH)
 *   EINVAL         SELECT was refused (no such db), a bad address
 *   EPROTO         CLIENT SETNAME was refused, or not RESP
 *   EPERM          not called from a task
 *   ENOMEM
 */
RLT_API rlt_redis *rlt_redis_connect(const rlt_redis_opts *opts);

/*
 * Close c: commands still queued or in flight fail with -ESHUTDOWN, the
 * reader and writer tasks are stopped and waited for, the socket is closed
 * and c is freed. Call it once no other task can still issue a command on
 * c. Suspends (shielded: a cancellation does not cut it short). NULL is
 * ignored. Returns 0 or -EPERM (not in a task: nothing done).
 */
RLT_API int rlt_redis_close(rlt_redis *c);

/* 0 while c works; once it broke (see Failure above), the negative errno
 * every command on it now gets. Any thread; never suspends. */
RLT_API int rlt_redis_broken(const rlt_redis *c);

/* What a connection has done so far: how well automatic pipelining batches
 * (commands / writes), and what cancellations cost. */
typedef struct rlt_redis_stats {
	uint64_t commands;  /* commands written (a pipeline counts each of its own) */
	uint64_t writes;    /* batches written (one sendmsg each, more past 1024 requests) */
	uint64_t reads;	    /* recv calls that brought bytes */
	uint64_t replies;   /* replies parsed (Pub/Sub messages included) */
	uint64_t discarded; /* requests whose task had gone when their replies came */
	uint64_t dropped;   /* requests never sent: their task had gone first */
} rlt_redis_stats;

/* A snapshot of c's counters (each read atomically, not all at one
 * instant). Any thread; never suspends. 0 or -EINVAL. */
RLT_API int rlt_redis_stats_get(const rlt_redis *c, rlt_redis_stats *out);

/*
 * Run one command and wait for its reply: printf-like (hiredis's format:
 * %s a C string, %b a binary-safe pointer and size_t length, %d %lld...,
 * %% a percent sign; the format is split into arguments at spaces: not
 * printf's format, so the compiler cannot check it), e.g.
 *
 *     rlt_redis_command(c, &r, "SET %s %b", key, val, (size_t)len);
 *
 * Suspends until the reply comes. From any task on any worker, any number
 * at once. On success stores the reply in *reply (the caller frees it with
 * rlt_redis_reply_free) and returns 0: also for an error reply. On failure
 * *reply is set to NULL (freeing it is always safe). Returns:
 *   -ECANCELED / -ETIMEDOUT  the task was cancelled or its deadline scope
 *                            expired while waiting (see Cancellation)
 *   -ECONNRESET, -EPROTO, -EMSGSIZE, -ECONNABORTED, -ESHUTDOWN, ...
 *                            the connection failed or is broken (Failure)
 *   -EINVAL                  a NULL argument, a bad format
 *   -EPERM                   not called from a task
 *   -ENOMEM
 */
RLT_API int rlt_redis_command(rlt_redis *c, rlt_redis_reply **reply, const char *fmt, ...);
RLT_API int rlt_redis_commandv(rlt_redis *c, rlt_redis_reply **reply, const char *fmt, va_list ap);

/* The same with the arguments as pointers and lengths (binary-safe: keys and
 * values may hold NULs). argvlen NULL: each argv[i] is a C string. */
RLT_API int rlt_redis_command_argv(rlt_redis *c, rlt_redis_reply **reply, int argc,
				   const char *const *argv, const size_t *argvlen);

/* ---- pipelines: append N commands, one write, N replies ---- */

typedef struct rlt_redis_pipeline rlt_redis_pipeline;

/* An empty pipeline, or NULL with errno ENOMEM. Any thread. A pipeline is a
 * buffer of encoded commands: it belongs to no connection and may be
 * executed on any, again and again. */
RLT_API rlt_redis_pipeline *rlt_redis_pipeline_new(void);
/* Free p. NULL is ignored. */
RLT_API void rlt_redis_pipeline_free(rlt_redis_pipeline *p);
/* Append a command (printf-like, as rlt_redis_command; or argv). Never
 * suspends. Returns 0, -EINVAL (bad format, NULL), -ENOMEM, -E2BIG (more
 * than INT_MAX commands). */
RLT_API int rlt_redis_pipeline_append(rlt_redis_pipeline *p, const char *fmt, ...);
RLT_API int rlt_redis_pipeline_append_argv(rlt_redis_pipeline *p, int argc, const char *const *argv,
					   const size_t *argvlen);
/* Commands appended since the last reset. */
RLT_API size_t rlt_redis_pipeline_len(const rlt_redis_pipeline *p);
/* Forget the commands appended (keeps the buffer for reuse). */
RLT_API void rlt_redis_pipeline_reset(rlt_redis_pipeline *p);

/*
 * Send p's commands in one write (they stay together on the connection, no
 * other task's command between them) and wait for all their replies, which
 * are stored in replies[0..rlt_redis_pipeline_len(p)) in order (the caller
 * frees each). p is left as it was. Suspends. Returns the number of replies
 * (error replies included), or the errors of rlt_redis_command; on an error
 * no reply is stored.
 */
RLT_API ssize_t rlt_redis_pipeline_exec(rlt_redis *c, rlt_redis_pipeline *p,
					rlt_redis_reply **replies);

/* ---- pool (aioredis's ConnectionPool(minsize, maxsize)) ---- */

typedef struct rlt_redis_pool_opts {
	rlt_redis_opts conn; /* how each connection is made (copied, strings too) */
	unsigned min_size;   /* made by rlt_redis_pool_new (default 0); not refilled */
	unsigned max_size;   /* at most this many exist at once (0: 10) */
	/* A connection idle longer than this is checked with PING before it is
	 * handed out (and replaced if it fails). 0: 30 s; negative: never. */
	int64_t health_check_idle_ns;
	/* After a failed connect, the next attempt waits this long, doubling
	 * on each failure up to backoff_max_ns, and back to nothing after a
	 * success. 0: 10 ms and 1 s. */
	int64_t backoff_min_ns;
	int64_t backoff_max_ns;
} rlt_redis_pool_opts;

typedef struct rlt_redis_pool rlt_redis_pool;

/*
 * A pool, with min_size connections made now. Suspends (when min_size > 0).
 * Returns NULL with errno: rlt_redis_connect's errors (making the first
 * connections), EINVAL (min_size > max_size, NULL opts), ENOMEM, EPERM.
 */
RLT_API rlt_redis_pool *rlt_redis_pool_new(const rlt_redis_pool_opts *opts);

/*
 * A connection for the caller alone until it gives it back with
 * rlt_redis_pool_release. Waits (FIFO: the first to wait is served first)
 * while max_size connections are out; reuses an idle connection (most
 * recently used first; PING first if it was idle longer than
 * health_check_idle_ns; a broken one is dropped) or makes a new one,
 * honouring the reconnect backoff. All within timeout_ns (negative: no
 * limit). From any task on any worker. Suspends. Returns NULL with errno:
 *   ETIMEDOUT   no connection within timeout_ns (or a deadline scope expired)
 *   ECONNREFUSED, EACCES, ... the last connect attempt's error, when the
 *               time ran out while connecting failed
 *   ECANCELED, EPERM, EINVAL, ENOMEM
 */
RLT_API rlt_redis *rlt_redis_pool_acquire(rlt_redis_pool *p, int64_t timeout_ns);

/* Give c back to p (a broken connection is closed and its place freed).
 * Suspends only to close a broken connection. Returns 0 or -EINVAL. */
RLT_API int rlt_redis_pool_release(rlt_redis_pool *p, rlt_redis *c);

/* Connections now: made (idle or out) and idle. Any thread. */
RLT_API unsigned rlt_redis_pool_size(rlt_redis_pool *p);
RLT_API unsigned rlt_redis_pool_idle(rlt_redis_pool *p);

/* Close every idle connection and free p. Every connection must have been
 * released: else -EBUSY and nothing is freed. Suspends. NULL: 0. */
RLT_API int rlt_redis_pool_free(rlt_redis_pool *p);

/* ---- Pub/Sub, on a connection of its own ---- */

#define RLT_REDIS_MSG_MESSAGE  1 /* from SUBSCRIBE: channel, payload */
#define RLT_REDIS_MSG_PMESSAGE 2 /* from PSUBSCRIBE: pattern, channel, payload */

/* A message; one allocation: free with free(3) or rlt_redis_msg_free. The
 * strings are NUL-terminated and binary-safe (use the lengths). */
typedef struct rlt_redis_msg {
	int kind; /* RLT_REDIS_MSG_* */
	char *pattern;
	size_t pattern_len; /* PMESSAGE */
	char *channel;
	size_t channel_len;
	char *payload;
	size_t payload_len;
} rlt_redis_msg;

RLT_API void rlt_redis_msg_free(rlt_redis_msg *m);

typedef struct rlt_redis_pubsub rlt_redis_pubsub;

/*
 * A Pub/Sub connection (rlt_redis_connect's options and errors). Messages
 * are queued, in the order the server sent them, in a channel of `backlog`
 * messages (0: 1024); while it is full the connection is not read (the
 * server buffers, up to its client-output-buffer-limit for pubsub).
 * Suspends.
 */
RLT_API rlt_redis_pubsub *rlt_redis_pubsub_open(const rlt_redis_opts *opts, size_t backlog);

/*
 * SUBSCRIBE / PSUBSCRIBE / UNSUBSCRIBE / PUNSUBSCRIBE the n names, and wait
 * until the server has confirmed each (messages published after that are
 * delivered). n >= 1. Suspends. Any task. Returns 0, -EINVAL, the
 * connection's errors, -EPROTO when the server refused (an error reply).
 */
RLT_API int rlt_redis_subscribe(rlt_redis_pubsub *ps, const char *const *names, size_t n);
RLT_API int rlt_redis_psubscribe(rlt_redis_pubsub *ps, const char *const *patterns, size_t n);
RLT_API int rlt_redis_unsubscribe(rlt_redis_pubsub *ps, const char *const *names, size_t n);
RLT_API int rlt_redis_punsubscribe(rlt_redis_pubsub *ps, const char *const *patterns, size_t n);

/*
 * The next message (`async for message in pubsub`), waiting at most
 * timeout_ns (negative: no limit). Suspends. One consumer at a time is the
 * sane use (any number works; each message goes to one of them). Returns 0
 * and *msg (the caller's to free), or -ETIMEDOUT, -ECANCELED, or the
 * connection's error once it broke and every message received before was
 * taken, -ESHUTDOWN once closed.
 */
RLT_API int rlt_redis_pubsub_next(rlt_redis_pubsub *ps, rlt_redis_msg **msg, int64_t timeout_ns);

/* Close the connection and free ps with the messages not taken. No task
 * may be inside a call on ps. Suspends. NULL: 0. */
RLT_API int rlt_redis_pubsub_close(rlt_redis_pubsub *ps);

RLT_EXTERN_C_END

#endif
