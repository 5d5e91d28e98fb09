/*
 * ringlet_mysql: MariaDB Connector/C driven from tasks.
 *
 * Every connector call that may wait on the server is an "op" (struct op):
 * the non-blocking variant runs its _start/_cont pair, suspending the task
 * on rlt_poll() of the connector's socket between them (run_nonblock); the
 * executor variant runs the blocking call on a pool thread and awaits it
 * (run_exec). Both end the same way: the op's own return values in the op,
 * and, if the task was cancelled or its deadline passed mid-op, the
 * connection shut down and broken (conn_break) before the task resumes.
 */
#include <ringlet/mysql.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

/* ---- types ---- */

enum res_kind { RES_STORED, RES_STREAM, RES_STMT };

struct rlt_mysql_result {
	enum res_kind kind;
	rlt_mysql *c;	    /* RES_STREAM: the busy connection (NULL once detached) */
	MYSQL_RES *res;	    /* RES_STORED/RES_STREAM (NULL once detached) */
	rlt_mysql_stmt *st; /* RES_STMT */
	MYSQL_ROW row;
	unsigned long *lens;
	unsigned ncols;
	uint64_t nrows;
	rlt_mysql_field *fields; /* filled on first rlt_mysql_result_field */
};

struct rlt_mysql_stmt {
	rlt_mysql *c;
	MYSQL_STMT *st;
	struct rlt_mysql_stmt *next, *prev; /* c's open statements */
	unsigned nparams, ncols;
	unsigned ncap;	   /* columns the arrays below have room for */
	bool cached;	   /* rlt_mysql_prepare_cached's: the connection's */
	char *sql;	   /* cached: the key */
	MYSQL_BIND *pbind; /* nparams */
	MYSQL_BIND *rbind; /* ncols */
	char **bufs;
	unsigned long *bufcap, *lens;
	my_bool *nulls, *errs;
	bool res_out; /* res handed out and not freed */
	rlt_mysql_result res;
};

struct rlt_mysql {
	MYSQL *m;
	int mode;
	rlt_pool *exec;
	int fd;
	unsigned long thread_id;
	bool broken;
	bool in_tx;
	bool timed_out; /* the connector's timeout fired in the current op */
	/* The server session of a statement cut short by a cancellation or
	 * deadline (it may still be running there), for the pool's KILL. */
	unsigned long abort_id;
	rlt_mysql_result *stream;
	rlt_mysql_stmt *stmts;
	struct xop *xop; /* the executor variant's op, reused */
	unsigned ncached;
	unsigned err_no;
	char sqlstate[SQLSTATE_LENGTH + 1];
	char errmsg[MYSQL_ERRMSG_SIZE];
	/* pool */
	uint64_t idle_since;
	struct rlt_mysql *pnext;
};

enum op_kind {
	OP_CONNECT,
	OP_QUERY,
	OP_STORE,
	OP_FETCH,
	OP_FREE_RESULT,
	OP_PING,
	OP_CLOSE,
	OP_COMMIT,
	OP_ROLLBACK,
	OP_PREPARE,
	OP_STMT_EXEC,
	OP_STMT_STORE,
	OP_STMT_CLOSE,
	OP_NEXT_RESULT,
};

struct op {
	enum op_kind kind;
	MYSQL *m;
	MYSQL_RES *res;
	MYSQL_STMT *st;
	const char *sql;
	unsigned long len;
	const rlt_mysql_config *cfg;
	int ret_i;
	my_bool ret_b;
	MYSQL *ret_m;
	MYSQL_RES *ret_res;
	MYSQL_ROW ret_row;
};

/* ---- the connector's calls, three ways ---- */

static const char *cfg_host(const rlt_mysql_config *cfg)
{
	if (cfg->unix_socket)
		return "localhost";
	return cfg->host ? cfg->host : "127.0.0.1";
}

static int op_start(struct op *o)
{
	switch (o->kind) {
	case OP_CONNECT:
		return mysql_real_connect_start(&o->ret_m, o->m, cfg_host(o->cfg), o->cfg->user,
						o->cfg->password, o->cfg->db, o->cfg->port,
						o->cfg->unix_socket, 0);
	case OP_QUERY:
		return mysql_real_query_start(&o->ret_i, o->m, o->sql, o->len);
	case OP_STORE:
		return mysql_store_result_start(&o->ret_res, o->m);
	case OP_FETCH:
		return mysql_fetch_row_start(&o->ret_row, o->res);
	case OP_FREE_RESULT:
		return mysql_free_result_start(o->res);
	case OP_PING:
		return mysql_ping_start(&o->ret_i, o->m);
	case OP_CLOSE:
		return mysql_close_start(o->m);
	case OP_COMMIT:
		return mysql_commit_start(&o->ret_b, o->m);
	case OP_ROLLBACK:
		return mysql_rollback_start(&o->ret_b, o->m);
	case OP_PREPARE:
		return mysql_stmt_prepare_start(&o->ret_i, o->st, o->sql, o->len);
	case OP_STMT_EXEC:
		return mysql_stmt_execute_start(&o->ret_i, o->st);
	case OP_STMT_STORE:
		return mysql_stmt_store_result_start(&o->ret_i, o->st);
	case OP_STMT_CLOSE:
		return mysql_stmt_close_start(&o->ret_b, o->st);
	case OP_NEXT_RESULT:
		return mysql_next_result_start(&o->ret_i, o->m);
	}
	return 0;
}

static int op_cont(struct op *o, int ev)
{
	switch (o->kind) {
	case OP_CONNECT:
		return mysql_real_connect_cont(&o->ret_m, o->m, ev);
	case OP_QUERY:
		return mysql_real_query_cont(&o->ret_i, o->m, ev);
	case OP_STORE:
		return mysql_store_result_cont(&o->ret_res, o->m, ev);
	case OP_FETCH:
		return mysql_fetch_row_cont(&o->ret_row, o->res, ev);
	case OP_FREE_RESULT:
		return mysql_free_result_cont(o->res, ev);
	case OP_PING:
		return mysql_ping_cont(&o->ret_i, o->m, ev);
	case OP_CLOSE:
		return mysql_close_cont(o->m, ev);
	case OP_COMMIT:
		return mysql_commit_cont(&o->ret_b, o->m, ev);
	case OP_ROLLBACK:
		return mysql_rollback_cont(&o->ret_b, o->m, ev);
	case OP_PREPARE:
		return mysql_stmt_prepare_cont(&o->ret_i, o->st, ev);
	case OP_STMT_EXEC:
		return mysql_stmt_execute_cont(&o->ret_i, o->st, ev);
	case OP_STMT_STORE:
		return mysql_stmt_store_result_cont(&o->ret_i, o->st, ev);
	case OP_STMT_CLOSE:
		return mysql_stmt_close_cont(&o->ret_b, o->st, ev);
	case OP_NEXT_RESULT:
		return mysql_next_result_cont(&o->ret_i, o->m, ev);
	}
	return 0;
}

static void op_block(struct op *o)
{
	switch (o->kind) {
	case OP_CONNECT:
		o->ret_m =
		    mysql_real_connect(o->m, cfg_host(o->cfg), o->cfg->user, o->cfg->password,
				       o->cfg->db, o->cfg->port, o->cfg->unix_socket, 0);
		break;
	case OP_QUERY:
		o->ret_i = mysql_real_query(o->m, o->sql, o->len);
		break;
	case OP_STORE:
		o->ret_res = mysql_store_result(o->m);
		break;
	case OP_FETCH:
		o->ret_row = mysql_fetch_row(o->res);
		break;
	case OP_FREE_RESULT:
		mysql_free_result(o->res);
		break;
	case OP_PING:
		o->ret_i = mysql_ping(o->m);
		break;
	case OP_CLOSE:
		mysql_close(o->m);
		break;
	case OP_COMMIT:
		o->ret_b = mysql_commit(o->m);
		break;
	case OP_ROLLBACK:
		o->ret_b = mysql_rollback(o->m);
		break;
	case OP_PREPARE:
		o->ret_i = mysql_stmt_prepare(o->st, o->sql, o->len);
		break;
	case OP_STMT_EXEC:
		o->ret_i = mysql_stmt_execute(o->st);
		break;
	case OP_STMT_STORE:
		o->ret_i = mysql_stmt_store_result(o->st);
		break;
	case OP_STMT_CLOSE:
		o->ret_b = mysql_stmt_close(o->st);
		break;
	case OP_NEXT_RESULT:
		o->ret_i = mysql_next_result(o->m);
		break;
	}
}

/* ---- errors ---- */

static bool code_breaks(unsigned code)
{
	switch (code) {
	case CR_SOCKET_CREATE_ERROR:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_IPSOCK_ERROR:
	case CR_UNKNOWN_HOST:
	case CR_SERVER_GONE_ERROR:
	case CR_OUT_OF_MEMORY:
	case CR_SERVER_HANDSHAKE_ERR:
	case CR_SERVER_LOST:
	case CR_NET_PACKET_TOO_LARGE:
	case CR_SSL_CONNECTION_ERROR:
	case CR_MALFORMED_PACKET:
	case CR_SERVER_LOST_EXTENDED:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
		return true;
	default:
		return false;
	}
}

static int code_errno(unsigned code)
{
	switch (code) {
	case 0:
		return -EIO;
	case ER_ACCESS_DENIED_ERROR:
	case ER_DBACCESS_DENIED_ERROR:
		return -EACCES;
	case ER_BAD_DB_ERROR:
		return -ENOENT;
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_SOCKET_CREATE_ERROR:
	case CR_IPSOCK_ERROR:
		return -ECONNREFUSED;
	case CR_UNKNOWN_HOST:
		return -EHOSTUNREACH;
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
		return -ECONNRESET;
	case CR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CR_COMMANDS_OUT_OF_SYNC:
		return -EBUSY;
	case CR_MALFORMED_PACKET:
	case CR_SSL_CONNECTION_ERROR:
	case CR_SERVER_HANDSHAKE_ERR:
	case CR_NET_PACKET_TOO_LARGE:
		return -EPROTO;
	default:
		break;
	}
	if (code >= CR_MIN_ERROR && code <= CR_MAX_ERROR)
		return -EIO;
	return -EREMOTEIO;
}

static void err_clear(rlt_mysql *c)
{
	if (c->err_no) {
		c->err_no = 0;
		memcpy(c->sqlstate, "00000", 6);
		c->errmsg[0] = 0;
	}
}

static void err_set(rlt_mysql *c, unsigned code, const char *state, const char *msg)
{
	c->err_no = code;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "HY000");
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", msg ? msg : "");
}

static void detach_stream(rlt_mysql *c)
{
	rlt_mysql_result *r = c->stream;
	if (!r)
		return;
	c->stream = NULL;
	r->c = NULL;
	if (r->res) {
		/* No drain: the connection is going. */
		r->res->handle = NULL;
		mysql_free_result(r->res);
		r->res = NULL;
	}
	r->row = NULL;
}

/* Shut c's connection down and free the connector's handle, without a
 * round trip: c is broken from now on. Statements stay (detached by
 * mysql_close) until freed. */
static void conn_break(rlt_mysql *c)
{
	c->broken = true;
	if (!c->m)
		return;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	detach_stream(c);
	mysql_close(c->m);
	c->m = NULL;
	c->fd = -1;
}

/* The result of a failed connector call on c: keep its error, break c if
 * the transport is gone, return the errno. */
static int conn_fail(rlt_mysql *c, MYSQL_STMT *st)
{
	unsigned code;
	const char *state, *msg;
	if (st) {
		code = mysql_stmt_errno(st);
		state = mysql_stmt_sqlstate(st);
		msg = mysql_stmt_error(st);
	} else {
		code = mysql_errno(c->m);
		state = mysql_sqlstate(c->m);
		msg = mysql_error(c->m);
	}
	err_set(c, code, state, msg);
	int e = code_errno(code);
	if (c->timed_out) {
		e = -ETIMEDOUT;
		conn_break(c);
	} else if (code_breaks(code)) {
		conn_break(c);
	}
	return e;
}

/* ---- waiting ---- */

static int wait_events(int status, int rev)
{
	int ev = 0;
	if ((status & MYSQL_WAIT_READ) && (rev & (POLLIN | POLLHUP | POLLERR)))
		ev |= MYSQL_WAIT_READ;
	if ((status & MYSQL_WAIT_WRITE) && (rev & (POLLOUT | POLLHUP | POLLERR)))
		ev |= MYSQL_WAIT_WRITE;
	if ((status & MYSQL_WAIT_EXCEPT) && (rev & POLLPRI))
		ev |= MYSQL_WAIT_EXCEPT;
	if (!ev)
		ev = status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
	return ev;
}

/* The task was cancelled, or a deadline passed, while the connector was
 * mid-op: shut the socket so that whatever the connector waits for fails
 * at once, let it run to its end, and break c. */
static bool op_runs_statement(enum op_kind k)
{
	return k != OP_CONNECT && k != OP_CLOSE && k != OP_STMT_CLOSE && k != OP_PING;
}

static void nb_abort(rlt_mysql *c, struct op *o, int status)
{
	if (op_runs_statement(o->kind))
		c->abort_id = mysql_thread_id(o->m);
	int fd = mysql_get_socket(o->m);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	for (int i = 0; status && i < 1000; i++)
		status = op_cont(o, status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE |
					      MYSQL_WAIT_EXCEPT | MYSQL_WAIT_TIMEOUT));
	if (o->kind == OP_CLOSE || o->kind == OP_CONNECT) {
		/* mysql_close_cont freed the handle; a connect is closed by
		 * its caller. */
		if (o->kind == OP_CLOSE) {
			c->m = NULL;
			c->fd = -1;
		}
		c->broken = true;
		return;
	}
	conn_break(c);
}

/* Run o on the connector's non-blocking API. 0 when the op ran to its end
 * (its results are in o), or -ECANCELED/-ETIMEDOUT/-ENOMEM/... when the
 * wait was cut short (c is then broken). */
static int run_nonblock(rlt_mysql *c, struct op *o)
{
	c->timed_out = false;
	int status = op_start(o);
	while (status) {
		int fd = mysql_get_socket(o->m);
		unsigned mask = 0;
		if (status & MYSQL_WAIT_READ)
			mask |= POLLIN;
		if (status & MYSQL_WAIT_WRITE)
			mask |= POLLOUT;
		if (status & MYSQL_WAIT_EXCEPT)
			mask |= POLLPRI;
		int r, ev;
		if (status & MYSQL_WAIT_TIMEOUT) {
			/* The connector's own timeout: a deadline scope of
			 * ours, told apart from the task's. */
			rlt_scope sc;
			int64_t tmo = (int64_t)mysql_get_timeout_value_ms(o->m) * 1000000;
			r = rlt_scope_enter(&sc, tmo);
			if (r == 0) {
				bool slept = !(mask && fd >= 0);
				r = slept ? rlt_sleep((uint64_t)tmo) : rlt_poll(fd, mask);
				bool mine = (slept && r == 0) ||
					    (r == -ETIMEDOUT && rlt_scope_expired(&sc));
				rlt_scope_leave(&sc);
				if (mine) {
					c->timed_out = true;
					status = op_cont(o, MYSQL_WAIT_TIMEOUT);
					continue;
				}
			}
		} else {
			r = rlt_poll(fd, mask);
		}
		if (r == -EINTR || r == -EAGAIN)
			continue; /* nothing happened: wait again */
		if (r < 0) {
			nb_abort(c, o, status);
			err_set(c, 0, "HY000",
				r == -ECANCELED	  ? "cancelled mid-call: connection closed"
				: r == -ETIMEDOUT ? "deadline passed mid-call: connection closed"
						  : "wait failed: connection closed");
			return r;
		}
		ev = wait_events(status, r);
		status = op_cont(o, ev);
	}
	return 0;
}

static void *exec_job(void *arg)
{
	op_block(arg);
	return NULL;
}

/*
 * The executor variant's op, on the heap: a job cut short by a
 * cancellation or deadline goes on to its end on its thread, and then owns
 * the connector's objects of the connection (the task has moved on).
 * Whichever of the two lets go last (the task handing them over, the job's
 * discard) closes them.
 */
struct xop {
	struct op op;
	int exits; /* atomic: the task's and the discard's */
	MYSQL *m;
	MYSQL_RES *res;
	MYSQL_STMT **stmts;
	unsigned nstmts;
};

static void xop_cleanup(struct xop *x)
{
	for (unsigned i = 0; i < x->nstmts; i++)
		mysql_stmt_close(x->stmts[i]); /* the socket is shut: no waiting */
	free(x->stmts);
	if (x->res) {
		x->res->handle = NULL;
		mysql_free_result(x->res);
	}
	if (x->m)
		mysql_close(x->m);
	free(x);
}

static void xop_discard(void *arg, void *result)
{
	(void)result;
	struct xop *x = arg;
	if (__atomic_fetch_add(&x->exits, 1, __ATOMIC_ACQ_REL) == 1)
		xop_cleanup(x);
}

/* Run o's blocking call on c's executor pool and await it
 * (rlt_run_blocking_timeout: cancellable). On a cancellation or deadline
 * the task resumes at once: the socket is shut down so that the call ends
 * promptly, and the connector's handle, streaming result and statements
 * are handed to the job, which frees them when it ends; c is broken. */
static int run_exec(rlt_mysql *c, struct op *o)
{
	struct xop *x = c->xop;
	if (!x) {
		x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		c->xop = x;
	}
	x->op = *o;
	int r = rlt_run_blocking_timeout(c->exec, exec_job, x, NULL, -1, xop_discard);
	if (r == 0) {
		*o = x->op;
		return 0;
	}
	if (r != -ECANCELED && r != -ETIMEDOUT)
		return r; /* the job never ran (-EAGAIN, -ENOMEM...) */
	c->xop = NULL;
	if (o->kind != OP_CONNECT && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (op_runs_statement(o->kind))
		c->abort_id = c->thread_id; /* read at connect: no race with the job */
	/* Hand over what the job may still be using. */
	if (o->kind != OP_CLOSE)
		x->m = o->m; /* (mysql_close frees it itself) */
	if (c->stream) {
		rlt_mysql_result *sr = c->stream;
		c->stream = NULL;
		sr->c = NULL;
		if (o->kind != OP_FREE_RESULT)
			x->res = sr->res;
		sr->res = NULL;
		sr->row = NULL;
	}
	unsigned n = 0;
	for (rlt_mysql_stmt *st = c->stmts; st; st = st->next)
		n += st->st != NULL;
	if (n && o->kind != OP_CLOSE) {
		x->stmts = calloc(n, sizeof(*x->stmts));
		for (rlt_mysql_stmt *st = c->stmts; st && x->stmts; st = st->next)
			if (st->st) {
				x->stmts[x->nstmts++] = st->st;
				st->st = NULL;
			}
	}
	c->m = NULL;
	c->fd = -1;
	c->broken = true;
	err_set(c, 0, "HY000",
		r == -ECANCELED ? "cancelled mid-call: connection closed"
				: "deadline passed mid-call: connection closed");
	if (__atomic_fetch_add(&x->exits, 1, __ATOMIC_ACQ_REL) == 1)
		xop_cleanup(x);
	return r;
}

static int run_op(rlt_mysql *c, struct op *o)
{
	return c->mode == RLT_MYSQL_EXECUTOR ? run_exec(c, o) : run_nonblock(c, o);
}

static int conn_check(rlt_mysql *c)
{
	if (!c)
		return -EINVAL;
	if (c->broken || !c->m)
		return -ENOTCONN;
	if (!rlt_current())
		return -EPERM;
	err_clear(c);
	return 0;
}

/* ---- connections ---- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rc;

static void lib_init(void)
{
	lib_rc = mysql_library_init(0, NULL, NULL);
}

static void set_options(MYSQL *m, const rlt_mysql_config *cfg)
{
	if (cfg->mode != RLT_MYSQL_EXECUTOR)
		mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
	if (cfg->connect_timeout_ms) {
		unsigned s = (cfg->connect_timeout_ms + 999) / 1000;
		mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &s);
	}
	if (cfg->read_timeout_ms) {
		unsigned s = (cfg->read_timeout_ms + 999) / 1000;
		mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &s);
	}
	if (cfg->write_timeout_ms) {
		unsigned s = (cfg->write_timeout_ms + 999) / 1000;
		mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &s);
	}
	mysql_options(m, MYSQL_SET_CHARSET_NAME, cfg->charset ? cfg->charset : "utf8mb4");
	if (cfg->unix_socket) {
		unsigned proto = MYSQL_PROTOCOL_SOCKET;
		mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
	} else {
		unsigned proto = MYSQL_PROTOCOL_TCP;
		mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
	}
	if (cfg->tls || cfg->tls_key || cfg->tls_cert || cfg->tls_ca || cfg->tls_capath ||
	    cfg->tls_cipher) {
		mysql_ssl_set(m, cfg->tls_key, cfg->tls_cert, cfg->tls_ca, cfg->tls_capath,
			      cfg->tls_cipher);
		my_bool on = 1;
		mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
		my_bool verify = cfg->tls_verify ? 1 : 0;
		mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
	}
}

int rlt_mysql_connect(const rlt_mysql_config *cfg, rlt_mysql **out, char *err, size_t errlen)
{
	if (out)
		*out = NULL;
	if (err && errlen)
		err[0] = 0;
	if (!cfg || !out || (cfg->mode != RLT_MYSQL_NONBLOCK && cfg->mode != RLT_MYSQL_EXECUTOR))
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	pthread_once(&lib_once, lib_init);
	if (lib_rc)
		return -ENOMEM;
	rlt_mysql *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->mode = cfg->mode;
	c->exec = cfg->executor;
	c->fd = -1;
	memcpy(c->sqlstate, "00000", 6);
	c->m = mysql_init(NULL);
	if (!c->m) {
		free(c);
		return -ENOMEM;
	}
	set_options(c->m, cfg);
	struct op o = {.kind = OP_CONNECT, .m = c->m, .cfg = cfg};
	int r = run_op(c, &o);
	if (r == 0 && !o.ret_m) {
		r = code_errno(mysql_errno(c->m));
		if (c->timed_out)
			r = -ETIMEDOUT;
		if (err && errlen)
			snprintf(err, errlen, "%u (%s): %s", mysql_errno(c->m),
				 mysql_sqlstate(c->m), mysql_error(c->m));
	} else if (r < 0 && err && errlen) {
		snprintf(err, errlen, "%s", c->errmsg);
	}
	if (r < 0) {
		if (c->m) { /* (NULL: handed to an executor job cut short) */
			int fd = mysql_get_socket(c->m);
			if (fd >= 0)
				shutdown(fd, SHUT_RDWR);
			mysql_close(c->m);
		}
		free(c->xop);
		free(c);
		return r;
	}
	c->fd = mysql_get_socket(c->m);
	c->thread_id = mysql_thread_id(c->m);
	*out = c;
	return 0;
}

static void stmt_free_local(rlt_mysql_stmt *s);

static void conn_free(rlt_mysql *c)
{
	free(c->xop);
	while (c->stmts) {
		rlt_mysql_stmt *s = c->stmts;
		c->stmts = s->next;
		if (s->st)
			mysql_stmt_close(s->st); /* detached by mysql_close: no I/O */
		stmt_free_local(s);
	}
	free(c);
}

int rlt_mysql_close(rlt_mysql *c)
{
	if (!c)
		return 0;
	if (c->stream)
		detach_stream(c);
	if (c->m && !c->broken && rlt_current()) {
		/* Statements first, while the handle can still tell the server. */
		for (rlt_mysql_stmt *s = c->stmts; s && c->m && !c->broken; s = s->next) {
			struct op o = {.kind = OP_STMT_CLOSE, .m = c->m, .st = s->st};
			if (run_op(c, &o) == 0)
				s->st = NULL;
		}
		if (c->m && !c->broken) {
			struct op o = {.kind = OP_CLOSE, .m = c->m};
			if (run_op(c, &o) == 0) {
				c->m = NULL;
				c->fd = -1;
			}
		}
	}
	conn_break(c);
	conn_free(c);
	return 0;
}

int rlt_mysql_ping(rlt_mysql *c)
{
	int r = conn_check(c);
	if (r)
		return r;
	struct op o = {.kind = OP_PING, .m = c->m};
	r = run_op(c, &o);
	if (r)
		return r;
	return o.ret_i ? conn_fail(c, NULL) : 0;
}

unsigned rlt_mysql_errno(const rlt_mysql *c)
{
	return c ? c->err_no : 0;
}

const char *rlt_mysql_sqlstate(const rlt_mysql *c)
{
	return c ? c->sqlstate : "00000";
}

const char *rlt_mysql_error(const rlt_mysql *c)
{
	return c ? c->errmsg : "";
}

uint64_t rlt_mysql_affected_rows(const rlt_mysql *c)
{
	if (!c || !c->m)
		return 0;
	my_ulonglong n = mysql_affected_rows(c->m);
	return n == (my_ulonglong)-1 ? 0 : n;
}

uint64_t rlt_mysql_insert_id(const rlt_mysql *c)
{
	return c && c->m ? mysql_insert_id(c->m) : 0;
}

unsigned long rlt_mysql_thread_id(const rlt_mysql *c)
{
	return c && c->m ? mysql_thread_id(c->m) : 0;
}

bool rlt_mysql_broken(const rlt_mysql *c)
{
	return !c || c->broken || !c->m;
}

size_t rlt_mysql_escape(rlt_mysql *c, char *to, const char *from, size_t len)
{
	if (!c || !c->m) {
		/* No connection: escape as for utf8mb4 (the default). */
		return mysql_escape_string(to, from, len);
	}
	return mysql_real_escape_string(c->m, to, from, len);
}

/* ---- text queries ---- */

static int do_query(rlt_mysql *c, const char *sql, size_t len)
{
	int r = conn_check(c);
	if (r)
		return r;
	if (!sql)
		return -EINVAL;
	if (c->stream)
		return -EBUSY;
	if (len == (size_t)-1)
		len = strlen(sql);
	if (len > ULONG_MAX)
		return -EINVAL;
	struct op o = {.kind = OP_QUERY, .m = c->m, .sql = sql, .len = (unsigned long)len};
	r = run_op(c, &o);
	if (r)
		return r;
	if (o.ret_i)
		return conn_fail(c, NULL);
	return 0;
}

/* A statement may bring more results than its first (CALL of a procedure
 * that selects: its result sets, then the CALL's own status): read and
 * drop them, so that the connection is ready for the next statement. */
static int drain_more(rlt_mysql *c)
{
	while (c->m && mysql_more_results(c->m)) {
		struct op o = {.kind = OP_NEXT_RESULT, .m = c->m};
		int r = run_op(c, &o);
		if (r)
			return r;
		if (o.ret_i > 0)
			return conn_fail(c, NULL);
		if (o.ret_i < 0)
			break;
		if (mysql_field_count(c->m) == 0)
			continue;
		o = (struct op){.kind = OP_STORE, .m = c->m};
		r = run_op(c, &o);
		if (r)
			return r;
		if (!o.ret_res)
			return conn_fail(c, NULL);
		mysql_free_result(o.ret_res);
	}
	return 0;
}

static int query_result(rlt_mysql *c, bool all, rlt_mysql_result **out)
{
	if (mysql_field_count(c->m) == 0)
		return drain_more(c);
	MYSQL_RES *res;
	if (all || !out) {
		struct op o = {.kind = OP_STORE, .m = c->m};
		int r = run_op(c, &o);
		if (r)
			return r;
		if (!o.ret_res)
			return conn_fail(c, NULL);
		res = o.ret_res;
		if (!out) {
			mysql_free_result(res);
			return drain_more(c);
		}
		r = drain_more(c);
		if (r) {
			mysql_free_result(res);
			return r;
		}
	} else {
		res = mysql_use_result(c->m);
		if (!res)
			return conn_fail(c, NULL);
	}
	rlt_mysql_result *rr = calloc(1, sizeof(*rr));
	if (!rr) {
		if (all) {
			mysql_free_result(res);
		} else {
			conn_break(c); /* rows still coming: no way back */
			res->handle = NULL;
			mysql_free_result(res);
		}
		return -ENOMEM;
	}
	rr->kind = all ? RES_STORED : RES_STREAM;
	rr->res = res;
	rr->ncols = mysql_num_fields(res);
	if (!all) {
		rr->c = c;
		c->stream = rr;
	}
	*out = rr;
	return 0;
}

int rlt_mysql_query(rlt_mysql *c, const char *sql, size_t len, rlt_mysql_result **out)
{
	if (out)
		*out = NULL;
	int r = do_query(c, sql, len);
	if (r)
		return r;
	return query_result(c, false, out);
}

int rlt_mysql_query_all(rlt_mysql *c, const char *sql, size_t len, rlt_mysql_result **out)
{
	if (out)
		*out = NULL;
	int r = do_query(c, sql, len);
	if (r)
		return r;
	return query_result(c, true, out);
}

int64_t rlt_mysql_exec(rlt_mysql *c, const char *sql)
{
	int r = rlt_mysql_query(c, sql, (size_t)-1, NULL);
	if (r)
		return r;
	return (int64_t)rlt_mysql_affected_rows(c);
}

int rlt_mysql_begin(rlt_mysql *c)
{
	int64_t r = rlt_mysql_exec(c, "START TRANSACTION");
	if (r < 0)
		return (int)r;
	c->in_tx = true;
	return 0;
}

static int end_tx(rlt_mysql *c, enum op_kind kind)
{
	int r = conn_check(c);
	if (r)
		return r;
	if (c->stream)
		return -EBUSY;
	struct op o = {.kind = kind, .m = c->m};
	r = run_op(c, &o);
	if (r)
		return r;
	if (o.ret_b)
		return conn_fail(c, NULL);
	c->in_tx = false;
	return 0;
}

int rlt_mysql_commit(rlt_mysql *c)
{
	return end_tx(c, OP_COMMIT);
}

int rlt_mysql_rollback(rlt_mysql *c)
{
	return end_tx(c, OP_ROLLBACK);
}

/* ---- results ---- */

int rlt_mysql_next_row(rlt_mysql_result *r)
{
	if (!r)
		return -EINVAL;
	switch (r->kind) {
	case RES_STORED:
		r->row = mysql_fetch_row(r->res);
		if (!r->row)
			return 0;
		r->lens = mysql_fetch_lengths(r->res);
		r->nrows++;
		return 1;
	case RES_STREAM: {
		rlt_mysql *c = r->c;
		if (!r->res || !c)
			return r->res ? 0 : -ENOTCONN;
		if (!rlt_current())
			return -EPERM;
		struct op o = {.kind = OP_FETCH, .m = c->m, .res = r->res};
		int e = run_op(c, &o);
		if (e)
			return e; /* c broke: r was detached */
		r->row = o.ret_row;
		if (!r->row) {
			if (mysql_errno(c->m))
				return conn_fail(c, NULL);
			/* All read: the connection is free again. */
			c->stream = NULL;
			r->c = NULL;
			return drain_more(c);
		}
		r->lens = mysql_fetch_lengths(r->res);
		r->nrows++;
		return 1;
	}
	case RES_STMT: {
		rlt_mysql_stmt *s = r->st;
		if (!s->st)
			return -ENOTCONN;
		int f = mysql_stmt_fetch(s->st);
		if (f == MYSQL_NO_DATA)
			return 0;
		if (f == 1) {
			if (s->c)
				err_set(s->c, mysql_stmt_errno(s->st), mysql_stmt_sqlstate(s->st),
					mysql_stmt_error(s->st));
			return -EIO;
		}
		if (f == MYSQL_DATA_TRUNCATED) {
			for (unsigned i = 0; i < s->ncols; i++) {
				if (s->nulls[i] || s->lens[i] < s->bufcap[i])
					continue;
				char *nb = realloc(s->bufs[i], s->lens[i] + 1);
				if (!nb)
					return -ENOMEM;
				s->bufs[i] = nb;
				s->bufcap[i] = s->lens[i] + 1;
				s->rbind[i].buffer = nb;
				s->rbind[i].buffer_length = s->bufcap[i];
				if (mysql_stmt_fetch_column(s->st, &s->rbind[i], i, 0))
					return -EIO;
			}
		}
		r->nrows++;
		return 1;
	}
	}
	return -EINVAL;
}

rlt_mysql_value rlt_mysql_col(const rlt_mysql_result *r, unsigned i)
{
	rlt_mysql_value v = {NULL, 0, true};
	if (!r || i >= r->ncols)
		return v;
	if (r->kind == RES_STMT) {
		const rlt_mysql_stmt *s = r->st;
		if (s->nulls[i])
			return v;
		v.ptr = s->bufs[i];
		v.len = s->lens[i];
		v.is_null = false;
		return v;
	}
	if (!r->row || !r->row[i])
		return v;
	v.ptr = r->row[i];
	v.len = r->lens[i];
	v.is_null = false;
	return v;
}

unsigned rlt_mysql_columns(const rlt_mysql_result *r)
{
	return r ? r->ncols : 0;
}

const rlt_mysql_field *rlt_mysql_result_field(const rlt_mysql_result *cr, unsigned i)
{
	rlt_mysql_result *r = (rlt_mysql_result *)cr;
	if (!r || i >= r->ncols)
		return NULL;
	if (!r->fields) {
		MYSQL_FIELD *f = NULL;
		if (r->kind == RES_STMT)
			f = r->st->st ? r->st->st->fields : NULL;
		else if (r->res)
			f = mysql_fetch_fields(r->res);
		if (!f)
			return NULL;
		r->fields = calloc(r->ncols, sizeof(*r->fields));
		if (!r->fields)
			return NULL;
		for (unsigned k = 0; k < r->ncols; k++) {
			r->fields[k].name = f[k].name;
			r->fields[k].type = (int)f[k].type;
			r->fields[k].is_unsigned = (f[k].flags & UNSIGNED_FLAG) != 0;
			r->fields[k].is_binary = f[k].charsetnr == 63;
		}
	}
	return &r->fields[i];
}

uint64_t rlt_mysql_rows(const rlt_mysql_result *r)
{
	if (!r)
		return 0;
	if (r->kind == RES_STORED && r->res)
		return mysql_num_rows(r->res);
	if (r->kind == RES_STMT && r->st->st)
		return mysql_stmt_num_rows(r->st->st);
	return r->nrows;
}

/* Column i as a NUL-terminated copy in buf (size bytes): 0, -ENODATA
 * (NULL), -EINVAL (empty, or too long for buf). */
static int col_text(const rlt_mysql_result *r, unsigned i, char *buf, size_t size)
{
	rlt_mysql_value v = rlt_mysql_col(r, i);
	if (v.is_null)
		return -ENODATA;
	if (v.len == 0 || v.len >= size)
		return -EINVAL;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = 0;
	return 0;
}

int rlt_mysql_col_int(const rlt_mysql_result *r, unsigned i, int64_t *out)
{
	char buf[32];
	int rc = col_text(r, i, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = x;
	return 0;
}

int rlt_mysql_col_double(const rlt_mysql_result *r, unsigned i, double *out)
{
	char buf[400];
	int rc = col_text(r, i, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	char *end;
	errno = 0;
	double x = strtod(buf, &end);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE)
		return -ERANGE;
	*out = x;
	return 0;
}

void rlt_mysql_result_free(rlt_mysql_result *r)
{
	if (!r)
		return;
	if (r->kind == RES_STMT) {
		rlt_mysql_stmt *s = r->st;
		if (s->st)
			mysql_stmt_free_result(s->st); /* stored rows: no I/O */
		free(r->fields);
		r->fields = NULL;
		s->res_out = false;
		return;
	}
	rlt_mysql *c = r->c;
	if (r->kind == RES_STREAM && c && r->res) {
		/* Rows still coming: read them to the end (suspends). */
		c->stream = NULL;
		r->c = NULL;
		if (!c->broken && c->m && rlt_current()) {
			struct op o = {.kind = OP_FREE_RESULT, .m = c->m, .res = r->res};
			int e = run_op(c, &o);
			/* Run to its end either way (an abort drains it): the
			 * connector has freed the result. */
			r->res = NULL;
			if (e == 0 && code_breaks(mysql_errno(c->m)))
				conn_fail(c, NULL);
			else if (e == 0)
				drain_more(c); /* an error stays readable on c */
		}
	}
	if (r->res) {
		r->res->handle = NULL; /* never drain from here */
		mysql_free_result(r->res);
	}
	free(r->fields);
	free(r);
}

/* ---- prepared statements ---- */

static void stmt_free_local(rlt_mysql_stmt *s)
{
	for (unsigned i = 0; s->bufs && i < s->ncap; i++)
		free(s->bufs[i]);
	free(s->sql);
	free(s->bufs);
	free(s->bufcap);
	free(s->lens);
	free(s->nulls);
	free(s->errs);
	free(s->pbind);
	free(s->rbind);
	free(s->res.fields);
	free(s);
}

static void stmt_unlink(rlt_mysql_stmt *s)
{
	rlt_mysql *c = s->c;
	if (!c)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		c->stmts = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->c = NULL;
}

/* Room for n result columns in s's arrays (a statement's column count
 * can change when the tables under it do). */
static int stmt_reserve(rlt_mysql_stmt *s, unsigned n)
{
	if (n <= s->ncap && s->rbind)
		return 0;
	if (n < 1)
		n = 1;
	MYSQL_BIND *rb = realloc(s->rbind, n * sizeof(*rb));
	if (rb)
		s->rbind = rb;
	char **bufs = realloc(s->bufs, n * sizeof(*bufs));
	if (bufs)
		s->bufs = bufs;
	unsigned long *cap = realloc(s->bufcap, n * sizeof(*cap));
	if (cap)
		s->bufcap = cap;
	unsigned long *lens = realloc(s->lens, n * sizeof(*lens));
	if (lens)
		s->lens = lens;
	my_bool *nulls = realloc(s->nulls, n * sizeof(*nulls));
	if (nulls)
		s->nulls = nulls;
	my_bool *errs = realloc(s->errs, n * sizeof(*errs));
	if (errs)
		s->errs = errs;
	if (!rb || !bufs || !cap || !lens || !nulls || !errs)
		return -ENOMEM;
	for (unsigned i = s->ncap; i < n; i++) {
		s->bufs[i] = NULL;
		s->bufcap[i] = 0;
		s->lens[i] = 0;
		s->nulls[i] = 0;
		s->errs[i] = 0;
	}
	memset(s->rbind, 0, n * sizeof(*rb));
	s->ncap = n;
	return 0;
}

int rlt_mysql_prepare(rlt_mysql *c, const char *sql, rlt_mysql_stmt **out)
{
	if (out)
		*out = NULL;
	int r = conn_check(c);
	if (r)
		return r;
	if (!sql || !out)
		return -EINVAL;
	if (c->stream)
		return -EBUSY;
	rlt_mysql_stmt *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->st = mysql_stmt_init(c->m);
	if (!s->st) {
		free(s);
		return -ENOMEM;
	}
	my_bool on = 1;
	mysql_stmt_attr_set(s->st, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
	s->c = c;
	s->next = c->stmts;
	if (c->stmts)
		c->stmts->prev = s;
	c->stmts = s;
	struct op o = {.kind = OP_PREPARE, .m = c->m, .st = s->st, .sql = sql, .len = strlen(sql)};
	r = run_op(c, &o);
	if (r == 0 && o.ret_i)
		r = conn_fail(c, s->st);
	if (r) {
		stmt_unlink(s);
		mysql_stmt_close(s->st); /* local only: failed or detached */
		s->st = NULL;
		stmt_free_local(s);
		return r;
	}
	s->nparams = (unsigned)mysql_stmt_param_count(s->st);
	s->ncols = mysql_stmt_field_count(s->st);
	s->pbind = calloc(s->nparams ? s->nparams : 1, sizeof(MYSQL_BIND));
	if (!s->pbind || stmt_reserve(s, s->ncols)) {
		rlt_mysql_stmt_close(s);
		return -ENOMEM;
	}
	s->res.kind = RES_STMT;
	s->res.st = s;
	*out = s;
	return 0;
}

int rlt_mysql_prepare_cached(rlt_mysql *c, const char *sql, rlt_mysql_stmt **out)
{
	if (out)
		*out = NULL;
	if (!c || !sql || !out)
		return -EINVAL;
	for (rlt_mysql_stmt *s = c->stmts; s; s = s->next)
		if (s->cached && s->st && strcmp(s->sql, sql) == 0) {
			if (c->broken || !c->m)
				return -ENOTCONN;
			*out = s;
			return 0;
		}
	if (c->ncached >= RLT_MYSQL_STMT_CACHE_MAX)
		return -ENOSPC;
	char *key = strdup(sql);
	if (!key)
		return -ENOMEM;
	rlt_mysql_stmt *s;
	int r = rlt_mysql_prepare(c, sql, &s);
	if (r) {
		free(key);
		return r;
	}
	s->cached = true;
	s->sql = key;
	c->ncached++;
	*out = s;
	return 0;
}

unsigned rlt_mysql_stmt_params(const rlt_mysql_stmt *st)
{
	return st ? st->nparams : 0;
}

static int bind_params(rlt_mysql_stmt *s, const rlt_mysql_param *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		MYSQL_BIND *b = &s->pbind[i];
		memset(b, 0, sizeof(*b));
		switch (p[i].kind) {
		case RLT_MYSQL_P_NULL:
			b->buffer_type = MYSQL_TYPE_NULL;
			break;
		case RLT_MYSQL_P_INT:
		case RLT_MYSQL_P_UINT:
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = (void *)&p[i].i;
			b->is_unsigned = p[i].kind == RLT_MYSQL_P_UINT;
			break;
		case RLT_MYSQL_P_DOUBLE:
			b->buffer_type = MYSQL_TYPE_DOUBLE;
			b->buffer = (void *)&p[i].d;
			break;
		case RLT_MYSQL_P_TEXT:
		case RLT_MYSQL_P_BLOB:
			if (!p[i].ptr && p[i].len)
				return -EINVAL;
			if (p[i].len > ULONG_MAX)
				return -EINVAL;
			b->buffer_type =
			    p[i].kind == RLT_MYSQL_P_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
			b->buffer = (void *)(p[i].ptr ? p[i].ptr : "");
			b->buffer_length = (unsigned long)p[i].len;
			break;
		default:
			return -EINVAL;
		}
	}
	if (n && mysql_stmt_bind_param(s->st, s->pbind))
		return -EINVAL;
	return 0;
}

static int bind_results(rlt_mysql_stmt *s)
{
	MYSQL_FIELD *f = s->st->fields;
	for (unsigned i = 0; i < s->ncols; i++) {
		unsigned long want = f ? f[i].max_length + 1 : 64;
		if (want < 64)
			want = 64;
		if (s->bufcap[i] < want) {
			char *nb = realloc(s->bufs[i], want);
			if (!nb)
				return -ENOMEM;
			s->bufs[i] = nb;
			s->bufcap[i] = want;
		}
		MYSQL_BIND *b = &s->rbind[i];
		memset(b, 0, sizeof(*b));
		b->buffer_type = MYSQL_TYPE_STRING;
		b->buffer = s->bufs[i];
		b->buffer_length = s->bufcap[i];
		b->length = &s->lens[i];
		b->is_null = &s->nulls[i];
		b->error = &s->errs[i];
	}
	if (mysql_stmt_bind_result(s->st, s->rbind))
		return -EIO;
	return 0;
}

int rlt_mysql_stmt_execute(rlt_mysql_stmt *s, const rlt_mysql_param *params, unsigned nparams,
			   rlt_mysql_result **out)
{
	if (out)
		*out = NULL;
	if (!s || (nparams && !params))
		return -EINVAL;
	if (!s->c || !s->st)
		return -ENOTCONN;
	rlt_mysql *c = s->c;
	int r = conn_check(c);
	if (r)
		return r;
	if (nparams != s->nparams)
		return -EINVAL;
	if (c->stream || s->res_out)
		return -EBUSY;
	r = bind_params(s, params, nparams);
	if (r)
		return r;
	struct op o = {.kind = OP_STMT_EXEC, .m = c->m, .st = s->st};
	r = run_op(c, &o);
	if (r)
		return r;
	if (o.ret_i)
		return conn_fail(c, s->st);
	s->ncols = mysql_stmt_field_count(s->st);
	if (s->ncols == 0)
		return 0;
	if (stmt_reserve(s, s->ncols)) {
		/* The rows are on their way: no way to skip them without
		 * storing; the connection goes. */
		conn_break(c);
		return -ENOMEM;
	}
	o = (struct op){.kind = OP_STMT_STORE, .m = c->m, .st = s->st};
	r = run_op(c, &o);
	if (r)
		return r;
	if (o.ret_i)
		return conn_fail(c, s->st);
	if (!out) {
		mysql_stmt_free_result(s->st);
		return 0;
	}
	r = bind_results(s);
	if (r) {
		mysql_stmt_free_result(s->st);
		return r;
	}
	free(s->res.fields);
	s->res = (rlt_mysql_result){.kind = RES_STMT, .st = s, .ncols = s->ncols};
	s->res_out = true;
	*out = &s->res;
	return 0;
}

void rlt_mysql_stmt_close(rlt_mysql_stmt *s)
{
	if (!s || s->cached)
		return; /* the connection's: closed with it */
	rlt_mysql *c = s->c;
	if (s->st) {
		if (c && c->m && !c->broken && rlt_current()) {
			struct op o = {.kind = OP_STMT_CLOSE, .m = c->m, .st = s->st};
			if (run_op(c, &o) == 0)
				s->st = NULL;
			/* else c broke: the statement was detached, freed below */
		}
		if (s->st)
			mysql_stmt_close(s->st);
		s->st = NULL;
	}
	stmt_unlink(s);
	stmt_free_local(s);
}

/* ---- KILL ---- */

int rlt_mysql_kill(rlt_mysql *admin, unsigned long id, bool query)
{
	char sql[64];
	snprintf(sql, sizeof(sql), "KILL %s%lu", query ? "QUERY " : "", id);
	int64_t r = rlt_mysql_exec(admin, sql);
	return r < 0 ? (int)r : 0;
}

/* ---- pool ---- */

struct rlt_mysql_pool {
	rlt_mysql_pool_config cfg;
	char *strs; /* the copied strings of cfg.conn */
	pthread_mutex_t mu;
	rlt_mysql *idle;
	unsigned nidle, nout;
	rlt_sem *slots;
	int refs; /* the owner's, and one per KILL task still running */
	rlt_mysql_pool_stats st;
};

static void pool_free(rlt_mysql_pool *p);

static void pool_unref(rlt_mysql_pool *p)
{
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		pool_free(p);
}

struct killer {
	rlt_mysql_pool *p;
	unsigned long id;
};

/* Ends the server session of a statement cut short (kill_on_abort): on a
 * connection of its own, so the pool's limit and the caller's deadline do
 * not apply. */
static void *killer_task(void *arg)
{
	struct killer *k = arg;
	rlt_mysql *c;
	rlt_mysql_config cfg = k->p->cfg.conn;
	if (!cfg.connect_timeout_ms)
		cfg.connect_timeout_ms = 5000;
	if (rlt_mysql_connect(&cfg, &c, NULL, 0) == 0) {
		if (rlt_mysql_kill(c, k->id, false) == 0)
			__atomic_fetch_add(&k->p->st.killed, 1, __ATOMIC_RELAXED);
		rlt_mysql_close(c);
	}
	pool_unref(k->p);
	free(k);
	return NULL;
}

static void pool_kill(rlt_mysql_pool *p, unsigned long id)
{
	struct killer *k = malloc(sizeof(*k));
	if (!k)
		return;
	*k = (struct killer){p, id};
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	rlt_spawn_opts o = {.name = "mysql-kill", .flags = RLT_SPAWN_DETACHED};
	if (!rlt_spawn(killer_task, k, &o)) {
		__atomic_sub_fetch(&p->refs, 1, __ATOMIC_RELAXED);
		free(k);
	}
}

static char *dup_into(char **dst, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	memcpy(*dst, s, n);
	char *r = *dst;
	*dst += n;
	return r;
}

static int pool_copy_cfg(rlt_mysql_pool *p, const rlt_mysql_pool_config *cfg)
{
	p->cfg = *cfg;
	const char *const *fs[] = {
	    &cfg->conn.host,   &cfg->conn.unix_socket, &cfg->conn.user,	     &cfg->conn.password,
	    &cfg->conn.db,     &cfg->conn.charset,     &cfg->conn.tls_key,   &cfg->conn.tls_cert,
	    &cfg->conn.tls_ca, &cfg->conn.tls_capath,  &cfg->conn.tls_cipher};
	const char **ts[] = {
	    &p->cfg.conn.host,	     &p->cfg.conn.unix_socket, &p->cfg.conn.user,
	    &p->cfg.conn.password,   &p->cfg.conn.db,	       &p->cfg.conn.charset,
	    &p->cfg.conn.tls_key,    &p->cfg.conn.tls_cert,    &p->cfg.conn.tls_ca,
	    &p->cfg.conn.tls_capath, &p->cfg.conn.tls_cipher};
	size_t total = 1;
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		total += *fs[i] ? strlen(*fs[i]) + 1 : 0;
	p->strs = malloc(total);
	if (!p->strs)
		return -ENOMEM;
	char *w = p->strs;
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		*ts[i] = dup_into(&w, *fs[i]);
	if (!p->cfg.max)
		p->cfg.max = 10;
	if (p->cfg.min > p->cfg.max)
		p->cfg.min = p->cfg.max;
	if (p->cfg.health_idle_ns == 0)
		p->cfg.health_idle_ns = 1000 * 1000000LL;
	return 0;
}

static void pool_free(rlt_mysql_pool *p)
{
	rlt_sem_free(p->slots);
	pthread_mutex_destroy(&p->mu);
	free(p->strs);
	free(p);
}

int rlt_mysql_pool_open(const rlt_mysql_pool_config *cfg, rlt_mysql_pool **out)
{
	if (out)
		*out = NULL;
	if (!cfg || !out)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	rlt_mysql_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (pool_copy_cfg(p, cfg)) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->slots = rlt_sem_new(p->cfg.max);
	p->refs = 1;
	if (!p->slots) {
		pool_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < p->cfg.min; i++) {
		rlt_mysql *c;
		int r = rlt_mysql_connect(&p->cfg.conn, &c, NULL, 0);
		if (r) {
			while (p->idle) {
				rlt_mysql *x = p->idle;
				p->idle = x->pnext;
				rlt_mysql_close(x);
			}
			pool_free(p);
			return r;
		}
		p->st.opened++;
		c->idle_since = rlt_now();
		c->pnext = p->idle;
		p->idle = c;
		p->nidle++;
	}
	*out = p;
	return 0;
}

static bool conn_clean(rlt_mysql *c)
{
	if (c->broken || !c->m || c->stream || c->in_tx)
		return false;
	for (rlt_mysql_stmt *s = c->stmts; s; s = s->next)
		if (!s->cached || s->res_out)
			return false;
	if (c->m->server_status & SERVER_STATUS_IN_TRANS)
		return false;
	return true;
}

int rlt_mysql_pool_acquire(rlt_mysql_pool *p, int64_t timeout_ns, rlt_mysql **out)
{
	if (out)
		*out = NULL;
	if (!p || !out)
		return -EINVAL;
	if (!rlt_current())
		return -EPERM;
	int r = timeout_ns < 0 ? rlt_sem_acquire(p->slots)
			       : rlt_sem_acquire_timeout(p->slots, timeout_ns);
	if (r)
		return r;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		rlt_mysql *c = p->idle;
		if (c) {
			p->idle = c->pnext;
			p->nidle--;
		}
		p->nout++;
		pthread_mutex_unlock(&p->mu);
		if (!c)
			break;
		c->pnext = NULL;
		if (p->cfg.health_idle_ns >= 0 &&
		    rlt_now() - c->idle_since > (uint64_t)p->cfg.health_idle_ns) {
			__atomic_fetch_add(&p->st.pinged, 1, __ATOMIC_RELAXED);
			r = rlt_mysql_ping(c);
			if (r) {
				bool own = r == -ECANCELED || (r == -ETIMEDOUT && !c->timed_out);
				__atomic_fetch_add(&p->st.discarded, 1, __ATOMIC_RELAXED);
				conn_break(c);
				conn_free(c);
				pthread_mutex_lock(&p->mu);
				p->nout--;
				pthread_mutex_unlock(&p->mu);
				if (own) {
					/* The caller's cancellation or deadline. */
					rlt_sem_release(p->slots);
					return r;
				}
				__atomic_fetch_add(&p->st.replaced, 1, __ATOMIC_RELAXED);
				continue;
			}
		}
		*out = c;
		return 0;
	}
	rlt_mysql *c;
	r = rlt_mysql_connect(&p->cfg.conn, &c, NULL, 0);
	if (r) {
		pthread_mutex_lock(&p->mu);
		p->nout--;
		pthread_mutex_unlock(&p->mu);
		rlt_sem_release(p->slots);
		return r;
	}
	__atomic_fetch_add(&p->st.opened, 1, __ATOMIC_RELAXED);
	*out = c;
	return 0;
}

void rlt_mysql_pool_release(rlt_mysql_pool *p, rlt_mysql *c)
{
	if (!p || !c)
		return;
	if (!conn_clean(c)) {
		__atomic_fetch_add(&p->st.discarded, 1, __ATOMIC_RELAXED);
		if (p->cfg.kill_on_abort && c->abort_id && rlt_current())
			pool_kill(p, c->abort_id);
		conn_break(c);
		conn_free(c);
		pthread_mutex_lock(&p->mu);
		p->nout--;
		pthread_mutex_unlock(&p->mu);
	} else {
		c->idle_since = rlt_now();
		err_clear(c);
		pthread_mutex_lock(&p->mu);
		c->pnext = p->idle;
		p->idle = c;
		p->nidle++;
		p->nout--;
		pthread_mutex_unlock(&p->mu);
	}
	rlt_sem_release(p->slots);
}

int rlt_mysql_pool_close(rlt_mysql_pool *p)
{
	if (!p)
		return 0;
	pthread_mutex_lock(&p->mu);
	unsigned out = p->nout;
	rlt_mysql *list = out ? NULL : p->idle;
	if (!out) {
		p->idle = NULL;
		p->nidle = 0;
	}
	pthread_mutex_unlock(&p->mu);
	if (out)
		return -EBUSY;
	while (list) {
		rlt_mysql *c = list;
		list = c->pnext;
		rlt_mysql_close(c);
	}
	pool_unref(p);
	return 0;
}

void rlt_mysql_pool_get_stats(rlt_mysql_pool *p, rlt_mysql_pool_stats *out)
{
	if (!p || !out)
		return;
	pthread_mutex_lock(&p->mu);
	out->idle = p->nidle;
	out->in_use = p->nout;
	pthread_mutex_unlock(&p->mu);
	out->opened = __atomic_load_n(&p->st.opened, __ATOMIC_RELAXED);
	out->discarded = __atomic_load_n(&p->st.discarded, __ATOMIC_RELAXED);
	out->pinged = __atomic_load_n(&p->st.pinged, __ATOMIC_RELAXED);
	out->replaced = __atomic_load_n(&p->st.replaced, __ATOMIC_RELAXED);
	out->killed = __atomic_load_n(&p->st.killed, __ATOMIC_RELAXED);
}
