/*
 * mysql_users: the asyncio tutorial's aiomysql case, in C.
 *
 *	import asyncio, aiomysql
 *
 *	async def test_example():
 *	    conn = await aiomysql.connect(host='127.0.0.1', port=3306, user='root',
 *	                                  password='', db='mysql')
 *	    cur = await conn.cursor()
 *	    await cur.execute("SELECT Host,User FROM user")
 *	    print(cur.description)
 *	    r = await cur.fetchall()
 *	    print(r)
 *	    await cur.close()
 *	    conn.close()
 *
 *	asyncio.run(test_example())
 *
 * Usage: mysql_users [HOST:PORT | /path/to/socket]   (default 127.0.0.1:3306)
 * with MYSQL_USER (default root) and MYSQL_PASSWORD (default empty) from the
 * environment. Every call that waits for the server suspends only the task:
 * the connector's non-blocking API under rlt_poll (include/ringlet/mysql.h).
 */
#include <ringlet.h>
#include <ringlet/mysql.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void where(const char *addr, rlt_mysql_config *cfg, char *host, size_t hostlen)
{
	if (!addr) {
		cfg->host = "127.0.0.1";
		cfg->port = 3306;
	} else if (addr[0] == '/') {
		cfg->unix_socket = addr;
	} else {
		snprintf(host, hostlen, "%s", addr);
		char *colon = strrchr(host, ':');
		cfg->port = 3306;
		if (colon) {
			*colon = 0;
			cfg->port = (unsigned)atoi(colon + 1);
		}
		cfg->host = host;
	}
	cfg->user = getenv("MYSQL_USER") ? getenv("MYSQL_USER") : "root";
	cfg->password = getenv("MYSQL_PASSWORD") ? getenv("MYSQL_PASSWORD") : "";
	cfg->db = "mysql";
}

static void *test_example(void *arg)
{
	rlt_mysql_config cfg = {0};
	char host[256];
	where(arg, &cfg, host, sizeof(host));
	rlt_mysql *conn;
	char err[512];
	int r = rlt_mysql_connect(&cfg, &conn, err, sizeof(err));
	if (r) {
		fprintf(stderr, "connect: %s (%s)\n", err, strerror(-r));
		return (void *)1;
	}
	rlt_mysql_result *cur;
	r = rlt_mysql_query_all(conn, "SELECT Host,User FROM user", (size_t)-1, &cur);
	if (r) {
		fprintf(stderr, "query: %u %s\n", rlt_mysql_errno(conn), rlt_mysql_error(conn));
		rlt_mysql_close(conn);
		return (void *)1;
	}
	/* cur.description: name and type of each column. */
	printf("(");
	for (unsigned i = 0; i < rlt_mysql_columns(cur); i++) {
		const rlt_mysql_field *f = rlt_mysql_result_field(cur, i);
		printf("%s('%s', %d)", i ? ", " : "", f->name, f->type);
	}
	printf(")\n");
	/* fetchall(): the rows as tuples. */
	printf("(");
	for (int n = 0; rlt_mysql_next_row(cur) == 1; n++) {
		printf("%s(", n ? ", " : "");
		for (unsigned i = 0; i < rlt_mysql_columns(cur); i++) {
			rlt_mysql_value v = rlt_mysql_col(cur, i);
			if (v.is_null)
				printf("%sNone", i ? ", " : "");
			else
				printf("%s'%.*s'", i ? ", " : "", (int)v.len, v.ptr);
		}
		printf(")");
	}
	printf(")\n");
	rlt_mysql_result_free(cur);
	rlt_mysql_close(conn);
	return NULL;
}

int main(int argc, char **argv)
{
	void *failed = NULL;
	int r = rlt_run(test_example, argc > 1 ? argv[1] : NULL, NULL, &failed);
	return r == 0 && !failed ? 0 : 1;
}
