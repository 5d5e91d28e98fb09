/* ringlet_mysql against a real mariadbd started here: the seed's query on
 * mysql.user (TCP and Unix socket, non-blocking and executor variants),
 * column types (ints, decimals, doubles, strings with NULs, 1 MiB blobs,
 * dates, NULLs) through text queries streamed and stored and through
 * prepared statements, affected rows and insert ids, transactions with
 * rollback, and errors (bad SQL, wrong password, unknown database) with the
 * server's code, SQLSTATE and message. */
/* Fault mode: checks after a fault end the scenario (tests/rlt_test.h). */
#define RLT_TEST_FAULT_LENIENT
#include "tests/rlt_test.h"
#include "tests/test_mysql_server.h"

static int modes[] = {RLT_MYSQL_NONBLOCK, RLT_MYSQL_EXECUTOR};

static rlt_mysql *conn(int mode, bool unix_sock)
{
	rlt_mysql_config cfg = tms_cfg(unix_sock);
	cfg.mode = mode;
	rlt_mysql *c = NULL;
	char err[256];
	int r = rlt_mysql_connect(&cfg, &c, err, sizeof(err));
	if (r)
		fail_msg("connect (mode %d, %s): %d %s", mode, unix_sock ? "unix" : "tcp", r, err);
	return c;
}

static void exec_ok(rlt_mysql *c, const char *sql)
{
	int64_t n = rlt_mysql_exec(c, sql);
	if (n < 0)
		fail_msg("%s: %d %u %s", sql, (int)n, rlt_mysql_errno(c), rlt_mysql_error(c));
}

/* ---- the seed's case ---- */

static void *seed_task(void *arg)
{
	(void)arg;
	for (unsigned m = 0; m < 2; m++) {
		for (int u = 0; u < 2; u++) {
			rlt_mysql *c = conn(modes[m], u);
			rlt_mysql_result *r = NULL;
			assert_int_equal(rlt_mysql_query_all(c, "SELECT Host,User FROM mysql.user",
							     (size_t)-1, &r),
					 0);
			assert_non_null(r);
			assert_int_equal(rlt_mysql_columns(r), 2);
			assert_string_equal(rlt_mysql_result_field(r, 0)->name, "Host");
			assert_string_equal(rlt_mysql_result_field(r, 1)->name, "User");
			int seen_rlt = 0, seen_root = 0, rows = 0;
			while (rlt_mysql_next_row(r) == 1) {
				rows++;
				rlt_mysql_value user = rlt_mysql_col(r, 1);
				seen_rlt += tms_val_is(user, TMS_USER);
				seen_root += tms_val_is(user, "root");
			}
			assert_int_equal((int)rlt_mysql_rows(r), rows);
			assert_int_equal(seen_rlt, 2); /* '%' and 'localhost' */
			assert_true(seen_root >= 1);
			rlt_mysql_result_free(r);

			/* The same streamed row by row. */
			assert_int_equal(
			    rlt_mysql_query(c, "SELECT Host,User FROM mysql.user", (size_t)-1, &r),
			    0);
			int srows = 0, nr;
			while ((nr = rlt_mysql_next_row(r)) == 1)
				srows++;
			assert_int_equal(nr, 0);
			assert_int_equal(srows, rows);
			rlt_mysql_result_free(r);
			assert_int_equal(rlt_mysql_ping(c), 0);
			assert_true(rlt_mysql_thread_id(c) > 0);
			assert_int_equal(rlt_mysql_close(c), 0);
		}
	}
	return NULL;
}

static void test_seed_query(void **state)
{
	(void)state;
	TMS_REQUIRE();
	rlt_test_run(seed_task, NULL);
}

/* ---- types ---- */

static void check_types_row(rlt_mysql_result *r, const unsigned char *blob, size_t bloblen)
{
	assert_int_equal(rlt_mysql_next_row(r), 1);
	int64_t i;
	assert_int_equal(rlt_mysql_col_int(r, 0, &i), 0);
	assert_true(i == INT64_MIN);
	assert_true(tms_val_is(rlt_mysql_col(r, 1), "18446744073709551615"));
	assert_true(rlt_mysql_result_field(r, 1)->is_unsigned);
	assert_true(tms_val_is(rlt_mysql_col(r, 2), "12345.6789"));
	assert_int_equal(rlt_mysql_result_field(r, 2)->type, 246); /* NEWDECIMAL */
	double d;
	assert_int_equal(rlt_mysql_col_double(r, 3, &d), 0);
	assert_true(d == 0.125);
	rlt_mysql_value s = rlt_mysql_col(r, 4);
	assert_false(s.is_null);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.ptr, "a\0b\0c", 5);
	rlt_mysql_value b = rlt_mysql_col(r, 5);
	assert_int_equal(b.len, bloblen);
	assert_memory_equal(b.ptr, blob, bloblen);
	assert_true(rlt_mysql_result_field(r, 5)->is_binary);
	assert_true(tms_val_is(rlt_mysql_col(r, 6), "2024-02-29"));
	assert_int_equal(rlt_mysql_result_field(r, 6)->type, 10); /* DATE */
	assert_true(tms_val_is(rlt_mysql_col(r, 7), "2024-02-29 23:59:58"));
	rlt_mysql_value n = rlt_mysql_col(r, 8);
	assert_true(n.is_null);
	assert_null(n.ptr);
	assert_int_equal(rlt_mysql_col_int(r, 8, &i), -ENODATA);
	assert_string_equal(rlt_mysql_result_field(r, 8)->name, "n");
}

static void *types_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql *c = conn(mode, false);
	exec_ok(c, "DROP TABLE IF EXISTS types");
	exec_ok(c, "CREATE TABLE types (id INT AUTO_INCREMENT PRIMARY KEY, i BIGINT, u BIGINT "
		   "UNSIGNED, dec_ DECIMAL(10,4), d DOUBLE, s VARBINARY(16), b LONGBLOB, dt DATE, "
		   "ts DATETIME, n INT NULL)");
	size_t bloblen = 1u << 20;
	unsigned char *blob = malloc(bloblen);
	assert_non_null(blob);
	for (size_t k = 0; k < bloblen; k++)
		blob[k] = (unsigned char)(k * 131 + (k >> 9));

	/* Inserted through a prepared statement (binary protocol)... */
	rlt_mysql_stmt *st;
	assert_int_equal(rlt_mysql_prepare(c,
					   "INSERT INTO types (i,u,dec_,d,s,b,dt,ts,n) VALUES "
					   "(?,?,?,?,?,?,?,?,?)",
					   &st),
			 0);
	assert_int_equal(rlt_mysql_stmt_params(st), 9);
	rlt_mysql_param p[9] = {RLT_MYSQL_INT(INT64_MIN),
				RLT_MYSQL_UINT(UINT64_MAX),
				RLT_MYSQL_TEXT("12345.6789"),
				RLT_MYSQL_DOUBLE(0.125),
				RLT_MYSQL_BLOB("a\0b\0c", 5),
				RLT_MYSQL_BLOB(blob, bloblen),
				RLT_MYSQL_TEXT("2024-02-29"),
				RLT_MYSQL_TEXT("2024-02-29 23:59:58"),
				RLT_MYSQL_NULLP()};
	rlt_mysql_result *r = (void *)1;
	assert_int_equal(rlt_mysql_stmt_execute(st, p, 9, &r), 0);
	assert_null(r);
	assert_int_equal(rlt_mysql_affected_rows(c), 1);
	uint64_t id1 = rlt_mysql_insert_id(c);
	assert_true(id1 >= 1);
	rlt_mysql_stmt_close(st);

	/* ...and through a text query with escaping. */
	char *sql = malloc(2 * bloblen + 512), *w = sql;
	w += sprintf(w,
		     "INSERT INTO types (i,u,dec_,d,s,b,dt,ts,n) VALUES (%lld, "
		     "18446744073709551615, 12345.6789, 0.125, '",
		     (long long)INT64_MIN);
	w += rlt_mysql_escape(c, w, "a\0b\0c", 5);
	w += sprintf(w, "', '");
	w += rlt_mysql_escape(c, w, (const char *)blob, bloblen);
	w += sprintf(w, "', '2024-02-29', '2024-02-29 23:59:58', NULL)");
	assert_int_equal(rlt_mysql_query(c, sql, (size_t)(w - sql), NULL), 0);
	assert_int_equal(rlt_mysql_affected_rows(c), 1);
	assert_int_equal(rlt_mysql_insert_id(c), id1 + 1);
	free(sql);

	const char *q = "SELECT i,u,dec_,d,s,b,dt,ts,n FROM types ORDER BY id";
	/* Stored text result. */
	assert_int_equal(rlt_mysql_query_all(c, q, (size_t)-1, &r), 0);
	assert_int_equal(rlt_mysql_rows(r), 2);
	check_types_row(r, blob, bloblen);
	check_types_row(r, blob, bloblen);
	assert_int_equal(rlt_mysql_next_row(r), 0);
	rlt_mysql_result_free(r);

	/* Streaming text result, one row per id. */
	for (uint64_t id = id1; id <= id1 + 1; id++) {
		char one[128];
		snprintf(one, sizeof(one), "%s", q);
		char *order = strstr(one, " ORDER BY");
		sprintf(order, " WHERE id = %llu", (unsigned long long)id);
		assert_int_equal(rlt_mysql_query(c, one, (size_t)-1, &r), 0);
		check_types_row(r, blob, bloblen);
		assert_int_equal(rlt_mysql_next_row(r), 0);
		rlt_mysql_result_free(r);
	}

	/* Prepared statement results (binary rows converted to text). */
	assert_int_equal(
	    rlt_mysql_prepare(c, "SELECT i,u,dec_,d,s,b,dt,ts,n FROM types WHERE id = ?", &st), 0);
	for (uint64_t id = id1; id <= id1 + 1; id++) {
		rlt_mysql_param k = RLT_MYSQL_UINT(id);
		assert_int_equal(rlt_mysql_stmt_execute(st, &k, 1, &r), 0);
		assert_non_null(r);
		assert_int_equal(rlt_mysql_rows(r), 1);
		check_types_row(r, blob, bloblen);
		assert_int_equal(rlt_mysql_next_row(r), 0);
		/* Running it again before the free is refused. */
		assert_int_equal(rlt_mysql_stmt_execute(st, &k, 1, NULL), -EBUSY);
		rlt_mysql_result_free(r);
	}
	/* Wrong parameter count. */
	assert_int_equal(rlt_mysql_stmt_execute(st, NULL, 0, NULL), -EINVAL);
	rlt_mysql_stmt_close(st);

	/* Affected rows of an UPDATE. */
	assert_int_equal(rlt_mysql_exec(c, "UPDATE types SET n = 7"), 2);
	exec_ok(c, "DROP TABLE types");
	free(blob);
	rlt_mysql_close(c);
	return NULL;
}

static void test_types(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(types_task, &modes[m]);
}

/* ---- transactions ---- */

static int64_t count_rows(rlt_mysql *c, const char *table)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	rlt_mysql_result *r;
	assert_int_equal(rlt_mysql_query_all(c, sql, (size_t)-1, &r), 0);
	assert_int_equal(rlt_mysql_next_row(r), 1);
	int64_t n = -1;
	assert_int_equal(rlt_mysql_col_int(r, 0, &n), 0);
	rlt_mysql_result_free(r);
	return n;
}

static void *tx_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql *c = conn(mode, true), *other = conn(mode, false);
	exec_ok(c, "DROP TABLE IF EXISTS tx");
	exec_ok(c, "CREATE TABLE tx (k INT PRIMARY KEY) ENGINE=InnoDB");
	assert_int_equal(rlt_mysql_begin(c), 0);
	exec_ok(c, "INSERT INTO tx VALUES (1), (2), (3)");
	assert_int_equal(count_rows(c, "tx"), 3);
	assert_int_equal(count_rows(other, "tx"), 0); /* not committed */
	assert_int_equal(rlt_mysql_rollback(c), 0);
	assert_int_equal(count_rows(c, "tx"), 0);

	assert_int_equal(rlt_mysql_begin(c), 0);
	exec_ok(c, "INSERT INTO tx VALUES (4)");
	assert_int_equal(rlt_mysql_commit(c), 0);
	assert_int_equal(count_rows(other, "tx"), 1);

	/* A failed statement inside a transaction leaves it open. */
	assert_int_equal(rlt_mysql_begin(c), 0);
	exec_ok(c, "INSERT INTO tx VALUES (5)");
	assert_int_equal(rlt_mysql_exec(c, "INSERT INTO tx VALUES (4)"), -EREMOTEIO);
	assert_int_equal(rlt_mysql_errno(c), 1062); /* ER_DUP_ENTRY */
	assert_string_equal(rlt_mysql_sqlstate(c), "23000");
	assert_int_equal(rlt_mysql_rollback(c), 0);
	assert_int_equal(count_rows(other, "tx"), 1);
	exec_ok(c, "DROP TABLE tx");
	rlt_mysql_close(c);
	rlt_mysql_close(other);
	return NULL;
}

static void test_transactions(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(tx_task, &modes[m]);
}

/* ---- errors ---- */

static void *errors_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql *c = conn(mode, false);
	rlt_mysql_result *r = (void *)1;
	assert_int_equal(rlt_mysql_query(c, "SELEKT 1", (size_t)-1, &r), -EREMOTEIO);
	assert_null(r);
	assert_int_equal(rlt_mysql_errno(c), 1064); /* ER_PARSE_ERROR */
	assert_string_equal(rlt_mysql_sqlstate(c), "42000");
	assert_non_null(strstr(rlt_mysql_error(c), "SQL syntax"));
	/* The connection is still good. */
	assert_false(rlt_mysql_broken(c));
	assert_int_equal(rlt_mysql_query_all(c, "SELECT 41+1", (size_t)-1, &r), 0);
	assert_int_equal(rlt_mysql_next_row(r), 1);
	assert_true(tms_val_is(rlt_mysql_col(r, 0), "42"));
	rlt_mysql_result_free(r);
	assert_int_equal(rlt_mysql_errno(c), 0);
	assert_string_equal(rlt_mysql_sqlstate(c), "00000");

	/* Unknown table; a prepare error. */
	assert_int_equal(rlt_mysql_exec(c, "SELECT * FROM no_such_table"), -EREMOTEIO);
	assert_int_equal(rlt_mysql_errno(c), 1146);
	assert_string_equal(rlt_mysql_sqlstate(c), "42S02");
	rlt_mysql_stmt *st = (void *)1;
	assert_int_equal(rlt_mysql_prepare(c, "SELECT FROM WHERE ?", &st), -EREMOTEIO);
	assert_null(st);
	assert_int_equal(rlt_mysql_errno(c), 1064);

	/* A streaming result must be finished before the next query. */
	assert_int_equal(rlt_mysql_query(c, "SELECT 1 UNION SELECT 2", (size_t)-1, &r), 0);
	assert_int_equal(rlt_mysql_exec(c, "SELECT 3"), -EBUSY);
	rlt_mysql_result_free(r); /* drains */
	assert_int_equal(rlt_mysql_exec(c, "DO 1"), 0);
	rlt_mysql_close(c);

	/* Wrong password. */
	rlt_mysql_config cfg = tms_cfg(false);
	cfg.mode = mode;
	cfg.password = "wrong";
	char err[256];
	rlt_mysql *bad = (void *)1;
	assert_int_equal(rlt_mysql_connect(&cfg, &bad, err, sizeof(err)), -EACCES);
	assert_null(bad);
	assert_non_null(strstr(err, "1045"));
	assert_non_null(strstr(err, "28000"));
	assert_non_null(strstr(err, "Access denied"));

	/* Unknown database. */
	cfg = tms_cfg(true);
	cfg.mode = mode;
	cfg.db = "no_such_db";
	assert_int_equal(rlt_mysql_connect(&cfg, &bad, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "1049"));
	assert_non_null(strstr(err, "Unknown database"));

	/* Nobody listening. */
	cfg = tms_cfg(false);
	cfg.mode = mode;
	cfg.port = tms_free_port();
	assert_int_equal(rlt_mysql_connect(&cfg, &bad, err, sizeof(err)), -ECONNREFUSED);
	return NULL;
}

static void test_errors(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(errors_task, &modes[m]);
}

/* ---- many streamed rows, with interleaved tasks on one worker ---- */

static void *rows_one(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql *c = conn(mode, false);
	rlt_mysql_result *r;
	assert_int_equal(rlt_mysql_query(c,
					 "SELECT seq, REPEAT('x', seq % 300) FROM seq_1_to_20000",
					 (size_t)-1, &r),
			 0);
	int64_t want = 1, got;
	while (rlt_mysql_next_row(r) == 1) {
		assert_int_equal(rlt_mysql_col_int(r, 0, &got), 0);
		assert_true(got == want);
		assert_int_equal(rlt_mysql_col(r, 1).len, (size_t)(want % 300));
		want++;
	}
	assert_true(want == 20001);
	rlt_mysql_result_free(r);
	/* Freed half-way: drained, and the connection goes on. */
	assert_int_equal(rlt_mysql_query(c, "SELECT seq FROM seq_1_to_20000", (size_t)-1, &r), 0);
	for (int k = 0; k < 10; k++)
		assert_int_equal(rlt_mysql_next_row(r), 1);
	rlt_mysql_result_free(r);
	assert_int_equal(rlt_mysql_exec(c, "DO 1"), 0);
	rlt_mysql_close(c);
	return NULL;
}

static void *rows_task(void *arg)
{
	rlt_task *t[4];
	for (int k = 0; k < 4; k++)
		t[k] = rlt_spawn(rows_one, arg, NULL);
	for (int k = 0; k < 4; k++)
		assert_int_equal(rlt_join(t[k], NULL), 0);
	return NULL;
}

static void test_streaming(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run1(rows_task, &modes[m]);
}

/* ---- a CALL that brings several results ---- */

static void *multi_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql *c = conn(mode, false);
	exec_ok(c, "DROP PROCEDURE IF EXISTS two_selects");
	exec_ok(c,
		"CREATE PROCEDURE two_selects() BEGIN SELECT 1 AS a; SELECT 2 AS b, 3 AS c; END");
	for (int how = 0; how < 3; how++) {
		rlt_mysql_result *r = NULL;
		if (how == 0) {
			assert_int_equal(
			    rlt_mysql_query_all(c, "CALL two_selects()", (size_t)-1, &r), 0);
		} else if (how == 1) {
			assert_int_equal(rlt_mysql_query(c, "CALL two_selects()", (size_t)-1, &r),
					 0);
		} else {
			assert_int_equal(rlt_mysql_exec(c, "CALL two_selects()"), 0);
		}
		if (r) {
			/* The first result set; the others are read and dropped. */
			assert_int_equal(rlt_mysql_columns(r), 1);
			assert_int_equal(rlt_mysql_next_row(r), 1);
			assert_true(tms_val_is(rlt_mysql_col(r, 0), "1"));
			assert_int_equal(rlt_mysql_next_row(r), 0);
			rlt_mysql_result_free(r);
		}
		/* In sync for the next statement. */
		assert_int_equal(rlt_mysql_query_all(c, "SELECT 4", (size_t)-1, &r), 0);
		assert_int_equal(rlt_mysql_next_row(r), 1);
		assert_true(tms_val_is(rlt_mysql_col(r, 0), "4"));
		rlt_mysql_result_free(r);
	}
	/* Freed before its end: drained, then the rest dropped. */
	rlt_mysql_result *r;
	assert_int_equal(rlt_mysql_query(c, "CALL two_selects()", (size_t)-1, &r), 0);
	rlt_mysql_result_free(r);
	assert_int_equal(rlt_mysql_exec(c, "DO 5"), 0);
	exec_ok(c, "DROP PROCEDURE two_selects");
	rlt_mysql_close(c);
	return NULL;
}

static void test_multi_results(void **state)
{
	(void)state;
	TMS_REQUIRE();
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(multi_task, &modes[m]);
}

/* ---- the fault policy: polls that fail with EINTR/EAGAIN or come late ---- */

static void *faults_task(void *arg)
{
	(void)arg;
	for (unsigned m = 0; m < 2; m++) {
		rlt_mysql *c = conn(modes[m], m == 0);
		for (int k = 0; k < 50; k++) {
			char sql[64];
			snprintf(sql, sizeof(sql), "SELECT %d, REPEAT('f', %d)", k, k * 1000);
			rlt_mysql_result *r;
			int e = rlt_mysql_query(c, sql, (size_t)-1, &r);
			if (e)
				fail_msg("%s: %d %s", sql, e, rlt_mysql_error(c));
			assert_int_equal(rlt_mysql_next_row(r), 1);
			int64_t v;
			assert_int_equal(rlt_mysql_col_int(r, 0, &v), 0);
			assert_true(v == k);
			assert_int_equal(rlt_mysql_col(r, 1).len, (size_t)k * 1000);
			assert_int_equal(rlt_mysql_next_row(r), 0);
			rlt_mysql_result_free(r);
		}
		assert_false(rlt_mysql_broken(c));
		rlt_mysql_close(c);
	}
	return NULL;
}

static void test_faults(void **state)
{
	(void)state;
	TMS_REQUIRE();
	rlt_test_run_faults("seed=11,rate=0.3,errors=EINTR+EAGAIN,delay_us=50", faults_task, NULL);
}

/* ---- TLS, passed through to the connector ---- */

static void *tls_task(void *arg)
{
	int mode = *(int *)arg;
	rlt_mysql_config cfg = tms_cfg(false);
	cfg.mode = mode;
	cfg.tls = true;
	cfg.tls_ca = tms.cert;
	cfg.tls_verify = true;
	/* The handshake's RSA work on both ends: under ThreadSanitizer on a
	 * loaded 2-core machine it once took more than the default 5 s. */
	cfg.connect_timeout_ms = 30000;
	rlt_mysql *c;
	char err[256];
	int r = rlt_mysql_connect(&cfg, &c, err, sizeof(err));
	if (r)
		fail_msg("TLS connect: %d %s", r, err);
	rlt_mysql_result *res;
	assert_int_equal(
	    rlt_mysql_query_all(c, "SHOW SESSION STATUS LIKE 'Ssl_version'", (size_t)-1, &res), 0);
	assert_int_equal(rlt_mysql_next_row(res), 1);
	rlt_mysql_value v = rlt_mysql_col(res, 1);
	assert_false(v.is_null);
	assert_true(v.len >= 4 && memcmp(v.ptr, "TLS", 3) == 0);
	rlt_mysql_result_free(res);
	/* A 1 MiB round trip through the TLS layer, in pieces. */
	assert_int_equal(rlt_mysql_query_all(c, "SELECT REPEAT('t', 1048576)", (size_t)-1, &res),
			 0);
	assert_int_equal(rlt_mysql_next_row(res), 1);
	assert_int_equal(rlt_mysql_col(res, 0).len, 1048576);
	rlt_mysql_result_free(res);
	rlt_mysql_close(c);

	/* Verification against the wrong authority fails the connect. */
	cfg.tls_ca = "/etc/ssl/certs/ca-certificates.crt";
	rlt_mysql *bad = (void *)1;
	r = rlt_mysql_connect(&cfg, &bad, err, sizeof(err));
	assert_int_equal(r, -EPROTO); /* CR_SSL_CONNECTION_ERROR */
	assert_null(bad);
	fprintf(stderr, "TLS with the wrong CA (%s): %d %s\n",
		mode == RLT_MYSQL_NONBLOCK ? "non-blocking" : "executor", r, err);
	return NULL;
}

static void test_tls(void **state)
{
	(void)state;
	TMS_REQUIRE();
	if (!tms.cert[0]) {
		fprintf(stderr, "SKIP: no openssl to make a certificate\n");
		skip();
	}
	for (unsigned m = 0; m < 2; m++)
		rlt_test_run(tls_task, &modes[m]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed_query),	 cmocka_unit_test(test_types),
	    cmocka_unit_test(test_transactions), cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_streaming),	 cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_faults),	 cmocka_unit_test(test_multi_results),
	};
	return cmocka_run_group_tests(tests, tms_group_setup, tms_group_teardown);
}
