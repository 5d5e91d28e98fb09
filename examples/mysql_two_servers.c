/*
 * mysql_two_servers: the asyncio tutorial's second aiomysql case, in C: the
 * same query against two servers at once, the two tasks switching whenever
 * one waits for its server.
 *
 *	async def query(name, host, port):
 *	    conn = await aiomysql.connect(host=host, port=port, user='root',
 *	                                  password='', db='mysql')
 *	    cur = await conn.cursor()
 *	    await cur.execute("DO SLEEP(0.5)")            # a slow statement
 *	    await cur.execute("SELECT Host,User FROM user")
 *	    print(name, await cur.fetchall())
 *	    conn.close()
 *
 *	async def main():
 *	    await asyncio.gather(query("a", HOST_A, PORT_A), query("b", HOST_B, PORT_B))
 *
 * Usage: mysql_two_servers ADDR_A ADDR_B, each HOST:PORT or /path/to/socket,
 * with MYSQL_USER / MYSQL_PASSWORD from the environment (root, empty). Both
 * tasks run on one worker; each line says when (ms since the start) it
 * happened: the two slow statements overlap, so the whole takes about 0.5 s,
 * not 1 s.
 */
#include <ringlet.h>
#include <ringlet/mysql.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOW_SQL "DO SLEEP(0.5)"

struct job {
	const char *name, *addr;
	uint64_t t0;
	int rc;
};

static double ms(const struct job *j)
{
	return (double)(rlt_now() - j->t0) / 1e6;
}

static void *query(void *arg)
{
	struct job *j = arg;
	char host[256];
	rlt_mysql_config cfg = {.db = "mysql"};
	if (j->addr[0] == '/') {
		cfg.unix_socket = j->addr;
	} else {
		snprintf(host, sizeof(host), "%s", j->addr);
		char *colon = strrchr(host, ':');
		cfg.port = 3306;
		if (colon) {
			*colon = 0;
			cfg.port = (unsigned)atoi(colon + 1);
		}
		cfg.host = host;
	}
	cfg.user = getenv("MYSQL_USER") ? getenv("MYSQL_USER") : "root";
	cfg.password = getenv("MYSQL_PASSWORD") ? getenv("MYSQL_PASSWORD") : "";
	rlt_mysql *conn;
	char err[512];
	j->rc = rlt_mysql_connect(&cfg, &conn, err, sizeof(err));
	if (j->rc) {
		fprintf(stderr, "%s: connect: %s\n", j->name, err);
		return NULL;
	}
	printf("%s: connected          at %4.0f ms\n", j->name, ms(j));
	fflush(stdout);
	int64_t n = rlt_mysql_exec(conn, SLOW_SQL);
	printf("%s: %s done at %4.0f ms\n", j->name, SLOW_SQL, ms(j));
	fflush(stdout);
	rlt_mysql_result *cur;
	j->rc = n < 0 ? (int)n
		      : rlt_mysql_query_all(conn, "SELECT Host,User FROM user", (size_t)-1, &cur);
	if (j->rc) {
		fprintf(stderr, "%s: %s\n", j->name, rlt_mysql_error(conn));
		rlt_mysql_close(conn);
		return NULL;
	}
	printf("%s: (", j->name);
	for (int k = 0; rlt_mysql_next_row(cur) == 1; k++) {
		rlt_mysql_value h = rlt_mysql_col(cur, 0), u = rlt_mysql_col(cur, 1);
		printf("%s('%.*s', '%.*s')", k ? ", " : "", (int)h.len, h.ptr, (int)u.len, u.ptr);
	}
	printf(")\n");
	rlt_mysql_result_free(cur);
	rlt_mysql_close(conn);
	return NULL;
}

struct both {
	const char *a, *b;
	int failed;
};

static void *run_main(void *arg)
{
	struct both *b = arg;
	uint64_t t0 = rlt_now();
	struct job ja = {"a", b->a, t0, 0}, jb = {"b", b->b, t0, 0};
	rlt_task *ta = rlt_spawn(query, &ja, NULL), *tb = rlt_spawn(query, &jb, NULL);
	rlt_join(ta, NULL);
	rlt_join(tb, NULL);
	printf("both done in %.0f ms\n", (double)(rlt_now() - t0) / 1e6);
	b->failed = ja.rc || jb.rc;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ADDR_A ADDR_B (HOST:PORT or a socket path each)\n",
			argv[0]);
		return 2;
	}
	struct both b = {argv[1], argv[2], 0};
	rlt_config cfg = {.workers = 1}; /* one thread: the overlap is the tasks' */
	int r = rlt_run(run_main, &b, &cfg, NULL);
	return r == 0 && !b.failed ? 0 : 1;
}
