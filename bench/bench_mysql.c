/*
 * bench_mysql: N tasks run one query over and over through a pool of M
 * connections (acquire, query, fetch all, release: the seed's aiomysql
 * shape), on one worker, for a fixed time; prints the queries done.
 *
 *   bench_mysql [--socket PATH | --host H --port P] --user U [--password PW]
 *               [--db DB] [--mode nonblock|executor] [--tasks 16] [--pool 16]
 *               [--seconds 5] [--prepared 1] --query SQL
 *
 * Output, one line: "queries=Q seconds=S qps=R errors=E". The client's CPU
 * is measured by the caller (bench/mysql.sh, from the child's rusage), so
 * that every contender is measured the same way.
 */
#include <ringlet.h>
#include <ringlet/mysql.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
	rlt_mysql_pool_config pc;
	rlt_mysql_pool *pool;
	unsigned tasks;
	double seconds;
	const char *query;
	bool prepared; /* the query through rlt_mysql_prepare_cached, no parameters */
	uint64_t deadline;
	uint64_t queries, errors;
	int setup_rc;
};

static void *worker(void *arg)
{
	struct opts *o = arg;
	rlt_mysql_pool *p = o->pool;
	uint64_t n = 0, err = 0;
	while (rlt_now() < o->deadline) {
		rlt_mysql *c;
		if (rlt_mysql_pool_acquire(p, -1, &c)) {
			err++;
			continue;
		}
		rlt_mysql_result *r;
		rlt_mysql_stmt *st;
		int e = o->prepared ? rlt_mysql_prepare_cached(c, o->query, &st) : 0;
		if (e == 0)
			e = o->prepared ? rlt_mysql_stmt_execute(st, NULL, 0, &r)
					: rlt_mysql_query_all(c, o->query, (size_t)-1, &r);
		if (e == 0) {
			while (rlt_mysql_next_row(r) == 1)
				(void)rlt_mysql_col(r, 0);
			rlt_mysql_result_free(r);
			n++;
		} else {
			err++;
		}
		rlt_mysql_pool_release(p, c);
	}
	/* One worker: no atomics needed. */
	o->queries += n;
	o->errors += err;
	return NULL;
}

static void *run(void *arg)
{
	struct opts *o = arg;
	rlt_mysql_pool *p;
	o->pc.min = o->pc.max;
	o->setup_rc = rlt_mysql_pool_open(&o->pc, &p);
	if (o->setup_rc) {
		fprintf(stderr, "bench_mysql: pool: %d\n", o->setup_rc);
		return NULL;
	}
	o->pool = p;
	rlt_task **t = calloc(o->tasks, sizeof(*t));
	uint64_t t0 = rlt_now();
	o->deadline = t0 + (uint64_t)(o->seconds * 1e9);
	for (unsigned k = 0; k < o->tasks; k++)
		t[k] = rlt_spawn(worker, o, NULL);
	for (unsigned k = 0; k < o->tasks; k++)
		rlt_join(t[k], NULL);
	double secs = (double)(rlt_now() - t0) / 1e9;
	printf("queries=%llu seconds=%.3f qps=%.0f errors=%llu\n", (unsigned long long)o->queries,
	       secs, (double)o->queries / secs, (unsigned long long)o->errors);
	free(t);
	rlt_mysql_pool_close(p);
	return NULL;
}

int main(int argc, char **argv)
{
	struct opts o = {.tasks = 16, .seconds = 5};
	o.pc.max = 16;
	o.pc.health_idle_ns = -1;
	o.pc.conn.host = "127.0.0.1";
	o.pc.conn.port = 3306;
	o.pc.conn.user = "root";
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--socket"))
			o.pc.conn.unix_socket = v;
		else if (!strcmp(k, "--host"))
			o.pc.conn.host = v;
		else if (!strcmp(k, "--port"))
			o.pc.conn.port = (unsigned)atoi(v);
		else if (!strcmp(k, "--user"))
			o.pc.conn.user = v;
		else if (!strcmp(k, "--password"))
			o.pc.conn.password = v;
		else if (!strcmp(k, "--db"))
			o.pc.conn.db = v;
		else if (!strcmp(k, "--mode"))
			o.pc.conn.mode =
			    !strcmp(v, "executor") ? RLT_MYSQL_EXECUTOR : RLT_MYSQL_NONBLOCK;
		else if (!strcmp(k, "--tasks"))
			o.tasks = (unsigned)atoi(v);
		else if (!strcmp(k, "--pool"))
			o.pc.max = (unsigned)atoi(v);
		else if (!strcmp(k, "--seconds"))
			o.seconds = atof(v);
		else if (!strcmp(k, "--query"))
			o.query = v;
		else if (!strcmp(k, "--prepared"))
			o.prepared = atoi(v) != 0;
		else {
			fprintf(stderr, "bench_mysql: unknown option %s\n", k);
			return 2;
		}
	}
	if (!o.query || !o.tasks || !o.pc.max) {
		fprintf(stderr, "usage: see the comment at the top of bench/bench_mysql.c\n");
		return 2;
	}
	rlt_config cfg = {.workers = 1};
	int r = rlt_run(run, &o, &cfg, NULL);
	return r == 0 && o.setup_rc == 0 && o.errors == 0 ? 0 : 1;
}
