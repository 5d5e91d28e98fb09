#ifndef RINGLET_MYSQL_H
#define RINGLET_MYSQL_H

/*
 * ringlet_mysql: a MySQL/MariaDB client for tasks (aiomysql for C).
 *
 * The protocol is MariaDB Connector/C's, driven through its non-blocking
 * API: every connector call that would block returns MYSQL_WAIT_READ/WRITE/
 * TIMEOUT, and the calling task then suspends on rlt_poll() of the
 * connector's socket (bounded by the connector's own timeout) while its
 * worker runs other tasks. No thread per query. docs/MYSQL.md has the
 * model, the pool, the cancellation rules and the figures.
 *
 * Threads. A connection (rlt_mysql) belongs to one task at a time; it may
 * move between tasks and workers between calls, never be used by two at
 * once. Every call marked "suspends" must be made from a task (-EPERM
 * otherwise) and is a cancellation point.
 *
 * Errors. Calls return 0 (or a count) on success, or a negative errno:
 *   -EREMOTEIO     the server refused the statement (bad SQL, duplicate
 *                  key, ...): rlt_mysql_errno/sqlstate/error say what
 *   -EACCES        the server refused the login or the database
 *                  (ER_ACCESS_DENIED_ERROR 1045, ER_DBACCESS_DENIED 1044)
 *   -ENOENT        unknown database at connect (ER_BAD_DB_ERROR 1049)
 *   -ECONNREFUSED  could not connect (CR_CONNECTION_ERROR 2002,
 *                  CR_CONN_HOST_ERROR 2003)
 *   -EHOSTUNREACH  the host name did not resolve (CR_UNKNOWN_HOST 2005)
 *   -ECONNRESET    the server went away mid-call (CR_SERVER_GONE_ERROR
 *                  2006, CR_SERVER_LOST 2013): the connection is broken
 *   -ETIMEDOUT     a connector timeout (connect/read/write_timeout_ms)
 *                  expired, or a deadline scope of the task expired
 *                  (rlt_scope_enter): the connection is broken (under
 *                  RLT_MYSQL_EXECUTOR, the blocking connector reports its
 *                  own read timeout as a lost connection: -ECONNRESET)
 *   -ECANCELED     the task was cancelled (rlt_cancel) mid-call: the
 *                  connection is broken
 *   -EPROTO        a malformed packet or TLS failure (CR_MALFORMED_PACKET,
 *                  CR_SSL_CONNECTION_ERROR, ...)
 *   -EBUSY         commands out of sync (CR_COMMANDS_OUT_OF_SYNC: a
 *                  streaming result not read to its end or freed)
 *   -ENOTCONN      the connection is broken (an earlier transport error,
 *                  cancellation or deadline) or closed
 *   -ENOMEM        out of memory (also CR_OUT_OF_MEMORY)
 *   -EIO           any other connector error (rlt_mysql_errno has it)
 *   -EINVAL        a bad argument
 * The server's (or connector's) code, SQLSTATE and message of the last
 * failed call stay readable with rlt_mysql_errno/_sqlstate/_error until the
 * next call on that connection.
 *
 * Broken connections. A transport error, a cancellation or a deadline in
 * the middle of a call leaves the connector mid-protocol: the connection
 * is then shut down at once (the task resumes without waiting for the
 * server), and every later call returns -ENOTCONN. Only rlt_mysql_close
 * (or releasing it to its pool) remains to be done. The server ends the
 * session when it notices, which is after a running statement ends: see
 * rlt_mysql_kill and rlt_mysql_pool_config.kill_on_abort. A poll that
 * fails with -EINTR or -EAGAIN is retried, not an abort.
 */

#include <ringlet.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

RLT_EXTERN_C_BEGIN

typedef struct rlt_mysql rlt_mysql;
typedef struct rlt_mysql_result rlt_mysql_result;
typedef struct rlt_mysql_stmt rlt_mysql_stmt;
typedef struct rlt_mysql_pool rlt_mysql_pool;

/* How a connection waits for the server (rlt_mysql_config.mode). */
#define RLT_MYSQL_NONBLOCK 0 /* the connector's non-blocking API + rlt_poll (default) */
#define RLT_MYSQL_EXECUTOR                                                                         \
	1 /* the blocking connector on an executor thread                                          \
	     (rlt_run_blocking): for comparison */

typedef struct rlt_mysql_config {
	/* TCP host (name or address; NULL: "127.0.0.1" unless unix_socket)
	 * and port (0: 3306); or a Unix socket path (wins over host). */
	const char *host;
	unsigned port;
	const char *unix_socket;
	const char *user;     /* NULL: the connector's default (the login) */
	const char *password; /* NULL: none */
	const char *db;	      /* NULL: no default database */
	/* Timeouts in ms, 0 for none: the connector's MYSQL_OPT_CONNECT_TIMEOUT,
	 * _READ_TIMEOUT and _WRITE_TIMEOUT. An expiry is -ETIMEDOUT and
	 * breaks the connection. Deadline scopes of the task apply as well. */
	unsigned connect_timeout_ms;
	unsigned read_timeout_ms;
	unsigned write_timeout_ms;
	/* Character set (NULL: utf8mb4). */
	const char *charset;
	/* TLS, passed through to the connector (mysql_optionsv MYSQL_OPT_SSL_*):
	 * any of key/cert/ca/capath/cipher set, or tls true, asks for TLS;
	 * tls_verify checks the server's certificate and name. */
	bool tls;
	bool tls_verify;
	const char *tls_key;
	const char *tls_cert;
	const char *tls_ca;
	const char *tls_capath;
	const char *tls_cipher;
	/* RLT_MYSQL_NONBLOCK or RLT_MYSQL_EXECUTOR. */
	int mode;
	/* RLT_MYSQL_EXECUTOR: the executor pool (NULL: the default pool). */
	rlt_pool *executor;
} rlt_mysql_config;

/* ---- connections ---- */

/*
 * Connect as cfg says; *out receives the connection on success. Suspends
 * (under RLT_MYSQL_NONBLOCK, the name lookup of a host name is the
 * connector's own and blocks: give an address or a Unix socket). cfg and
 * its strings are copied. Returns 0 or a negative errno (see the top);
 * on failure *out is NULL, and the server's code and message are lost with
 * the connection: pass err/errlen to keep the message (may be NULL/0).
 */
RLT_API int rlt_mysql_connect(const rlt_mysql_config *cfg, rlt_mysql **out, char *err,
			      size_t errlen);

/* Close c politely (COM_QUIT) and free it, with any statement of it still
 * open. A result of c must be freed first (a stored one may outlive it).
 * Suspends. Returns 0 (a broken connection is just freed). NULL is ignored. */
RLT_API int rlt_mysql_close(rlt_mysql *c);

/* Ask the server whether c is alive (COM_PING). Suspends. 0 or an errno. */
RLT_API int rlt_mysql_ping(rlt_mysql *c);

/* The last error on c: the server's or connector's code (0: none), the
 * SQLSTATE ("00000": none) and the message (""). Never suspend; strings
 * live until the next call on c. */
RLT_API unsigned rlt_mysql_errno(const rlt_mysql *c);
RLT_API const char *rlt_mysql_sqlstate(const rlt_mysql *c);
RLT_API const char *rlt_mysql_error(const rlt_mysql *c);

/* Rows changed by the last statement, and the AUTO_INCREMENT id it made. */
RLT_API uint64_t rlt_mysql_affected_rows(const rlt_mysql *c);
RLT_API uint64_t rlt_mysql_insert_id(const rlt_mysql *c);
/* The server's connection id (for KILL), 0 when broken. */
RLT_API unsigned long rlt_mysql_thread_id(const rlt_mysql *c);
/* Whether c is broken (see the top). */
RLT_API bool rlt_mysql_broken(const rlt_mysql *c);

/* ---- text queries ---- */

/*
 * Run sql (len bytes; len (size_t)-1: strlen) on c. For a statement that
 * returns rows, *out receives a streaming result: rows come from the
 * server as rlt_mysql_next_row() asks (the connection is busy until the
 * result is freed). For one that does not (INSERT, UPDATE, SET...), *out
 * is NULL and rlt_mysql_affected_rows/insert_id tell. out may be NULL: a
 * result set is then read and dropped. A statement that brings several
 * results (the CALL of a procedure that selects) gives its first result
 * set; the others are read and dropped once that one is read to its end
 * or freed. Suspends. 0 or a negative errno.
 */
RLT_API int rlt_mysql_query(rlt_mysql *c, const char *sql, size_t len, rlt_mysql_result **out);
/* The same, reading the whole result set into memory first (fetch all:
 * mysql_store_result): rlt_mysql_next_row() then never suspends, the
 * connection is free at once, and the result may outlive it. */
RLT_API int rlt_mysql_query_all(rlt_mysql *c, const char *sql, size_t len, rlt_mysql_result **out);
/* Run sql and discard any rows: returns the affected rows (>= 0) or an errno. */
RLT_API int64_t rlt_mysql_exec(rlt_mysql *c, const char *sql);

/* Transactions: START TRANSACTION, COMMIT, ROLLBACK. Suspend. 0 or errno.
 * A connection released to a pool inside a transaction is discarded. */
RLT_API int rlt_mysql_begin(rlt_mysql *c);
RLT_API int rlt_mysql_commit(rlt_mysql *c);
RLT_API int rlt_mysql_rollback(rlt_mysql *c);

/* Escape len bytes of from into to (room for 2*len+1 bytes), for the
 * connection's character set; returns the escaped length. */
RLT_API size_t rlt_mysql_escape(rlt_mysql *c, char *to, const char *from, size_t len);

/* ---- results (of queries and of prepared statements) ---- */

/* A column of the current row: NULL has is_null true and ptr NULL. The
 * bytes are the text form (as the text protocol sends it; prepared
 * statements' values are converted to it), not NUL-terminated in
 * general (ptr[len] is a NUL for text queries), and may hold NULs. They
 * live until the next rlt_mysql_next_row() or the free. */
typedef struct rlt_mysql_value {
	const char *ptr;
	size_t len;
	bool is_null;
} rlt_mysql_value;

/* Field types: the connector's enum_field_types values (MYSQL_TYPE_LONG
 * 3, MYSQL_TYPE_DOUBLE 5, MYSQL_TYPE_NEWDECIMAL 246, MYSQL_TYPE_BLOB 252,
 * MYSQL_TYPE_VAR_STRING 253, MYSQL_TYPE_DATE 10, MYSQL_TYPE_DATETIME 12...). */
typedef struct rlt_mysql_field {
	const char *name;
	int type;
	bool is_unsigned;
	bool is_binary; /* binary charset: BLOB / BINARY, not text */
} rlt_mysql_field;

/* Move to the next row: 1 (a row), 0 (no more rows), or a negative errno.
 * Suspends for a streaming result (when the connector must read); never
 * for a stored one or a statement's. */
RLT_API int rlt_mysql_next_row(rlt_mysql_result *r);
/* Column i of the current row (i < columns). */
RLT_API rlt_mysql_value rlt_mysql_col(const rlt_mysql_result *r, unsigned i);
RLT_API unsigned rlt_mysql_columns(const rlt_mysql_result *r);
RLT_API const rlt_mysql_field *rlt_mysql_result_field(const rlt_mysql_result *r, unsigned i);
/* Rows of a stored result (rlt_mysql_query_all, statements); for a
 * streaming one, the rows read so far. */
RLT_API uint64_t rlt_mysql_rows(const rlt_mysql_result *r);
/* Column i as a number: 0, -ERANGE, -EINVAL (not a number), -ENODATA (NULL). */
RLT_API int rlt_mysql_col_int(const rlt_mysql_result *r, unsigned i, int64_t *v);
RLT_API int rlt_mysql_col_double(const rlt_mysql_result *r, unsigned i, double *v);
/* Free r. A streaming result not read to its end is drained (suspends);
 * on a broken connection, just freed. NULL is ignored. */
RLT_API void rlt_mysql_result_free(rlt_mysql_result *r);

/* ---- prepared statements ---- */

/* A bound parameter (rlt_mysql_stmt_execute): use the RLT_MYSQL_P_* makers. */
#define RLT_MYSQL_P_NULL   0
#define RLT_MYSQL_P_INT	   1
#define RLT_MYSQL_P_UINT   2
#define RLT_MYSQL_P_DOUBLE 3
#define RLT_MYSQL_P_TEXT   4
#define RLT_MYSQL_P_BLOB   5
typedef struct rlt_mysql_param {
	int kind;
	int64_t i;
	double d;
	const void *ptr;
	size_t len;
} rlt_mysql_param;
#define RLT_MYSQL_NULLP()   ((rlt_mysql_param){.kind = RLT_MYSQL_P_NULL})
#define RLT_MYSQL_INT(v)    ((rlt_mysql_param){.kind = RLT_MYSQL_P_INT, .i = (int64_t)(v)})
#define RLT_MYSQL_UINT(v)   ((rlt_mysql_param){.kind = RLT_MYSQL_P_UINT, .i = (int64_t)(v)})
#define RLT_MYSQL_DOUBLE(v) ((rlt_mysql_param){.kind = RLT_MYSQL_P_DOUBLE, .d = (v)})
#define RLT_MYSQL_TEXT(s)                                                                          \
	((rlt_mysql_param){.kind = RLT_MYSQL_P_TEXT, .ptr = (s), .len = strlen(s)})
#define RLT_MYSQL_BLOB(p, n) ((rlt_mysql_param){.kind = RLT_MYSQL_P_BLOB, .ptr = (p), .len = (n)})

/* Prepare sql on c; *out receives the statement. Suspends. 0 or errno
 * (a syntax error is -EREMOTEIO with the server's message on c). */
RLT_API int rlt_mysql_prepare(rlt_mysql *c, const char *sql, rlt_mysql_stmt **out);
/*
 * The connection's own statement for this exact sql, prepared on first use
 * and kept: a pooled connection keeps its cached statements across
 * release and acquire, so a task that takes a connection for one lookup
 * prepares once per connection, not once per lookup. Do not close it (the
 * call does nothing): it goes with the connection. At most
 * RLT_MYSQL_STMT_CACHE_MAX per connection (-ENOSPC beyond). Suspends on
 * first use only. 0 or errno as rlt_mysql_prepare.
 */
#define RLT_MYSQL_STMT_CACHE_MAX 256
RLT_API int rlt_mysql_prepare_cached(rlt_mysql *c, const char *sql, rlt_mysql_stmt **out);
/* How many ? placeholders st has. */
RLT_API unsigned rlt_mysql_stmt_params(const rlt_mysql_stmt *st);
/*
 * Execute st with nparams parameters (exactly rlt_mysql_stmt_params; the
 * values are sent before it returns, they need not outlive it). For a
 * statement returning rows, *out receives its whole result set (read at
 * once: the binary protocol's rows, converted to text by the connector),
 * to be iterated and freed like a query's, before st runs again; else
 * *out is NULL. out may be NULL (rows dropped). Suspends. 0 or errno.
 */
RLT_API int rlt_mysql_stmt_execute(rlt_mysql_stmt *st, const rlt_mysql_param *params,
				   unsigned nparams, rlt_mysql_result **out);
/* Close st on the server and free it (its result, if not freed yet, goes
 * with it). Suspends. NULL is ignored. */
RLT_API void rlt_mysql_stmt_close(rlt_mysql_stmt *st);

/* ---- KILL ---- */

/* KILL [QUERY] id through admin (another connection with the privilege):
 * query true stops the running statement of connection id and leaves the
 * connection usable (its call returns -EREMOTEIO, ER_QUERY_INTERRUPTED
 * 1317); false ends the connection. Suspends. 0 or errno. */
RLT_API int rlt_mysql_kill(rlt_mysql *admin, unsigned long id, bool query);

/* ---- pool ---- */

typedef struct rlt_mysql_pool_config {
	rlt_mysql_config conn; /* how to connect (mode chooses the variant) */
	unsigned min;	       /* opened by rlt_mysql_pool_open (default 0) */
	unsigned max;	       /* connections at most, in use or idle (0: 10) */
	/* An idle connection unused for longer than this is pinged before it
	 * is handed out, and replaced if the ping fails (0: 1000 ms;
	 * negative: never). */
	int64_t health_idle_ns;
	/* A connection broken by a cancellation or deadline in the middle of
	 * a statement is closed at once; the server notices only when the
	 * statement ends (SELECT SLEEP(5) runs on for its 5 s). With
	 * kill_on_abort, releasing it also starts a detached task that ends
	 * that server session with KILL on a connection of its own (not
	 * counted in max; they keep what they need of the pool alive after
	 * rlt_mysql_pool_close). */
	bool kill_on_abort;
} rlt_mysql_pool_config;

typedef struct rlt_mysql_pool_stats {
	unsigned idle, in_use;
	uint64_t opened;    /* connections made */
	uint64_t discarded; /* dirty or broken connections closed instead of kept */
	uint64_t pinged, replaced;
	uint64_t killed; /* server sessions ended by kill_on_abort */
} rlt_mysql_pool_stats;

/* Make a pool and open cfg->min connections. Suspends. 0 or the first
 * connection's errno (nothing is then left open). cfg is copied. */
RLT_API int rlt_mysql_pool_open(const rlt_mysql_pool_config *cfg, rlt_mysql_pool **out);
/*
 * Take a connection: an idle one (pinged first if idle longer than
 * health_idle_ns; replaced if broken), or a new one below max; else wait
 * at most timeout_ns (< 0: no limit) for a release. Suspends. 0, or
 * -ETIMEDOUT (none came), or a connect errno, -ECANCELED.
 */
RLT_API int rlt_mysql_pool_acquire(rlt_mysql_pool *p, int64_t timeout_ns, rlt_mysql **out);
/*
 * Give c back. Kept for reuse only if clean: not broken, no result of it
 * unfreed (a streaming result mid-rows), no prepared statement of it
 * still open (but those of rlt_mysql_prepare_cached, whose results were
 * freed), no transaction begun and not ended. Otherwise it is
 * discarded (shut down and freed without a round trip). Never suspends;
 * any task. c must not be used afterwards.
 */
RLT_API void rlt_mysql_pool_release(rlt_mysql_pool *p, rlt_mysql *c);
/* Close the idle connections and free p; every connection must have been
 * released. Suspends. 0 or -EBUSY
 * (connections still out: nothing done). */
RLT_API int rlt_mysql_pool_close(rlt_mysql_pool *p);
RLT_API void rlt_mysql_pool_get_stats(rlt_mysql_pool *p, rlt_mysql_pool_stats *out);

RLT_EXTERN_C_END

#endif
