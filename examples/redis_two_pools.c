/*
 * redis_two_pools: two servers, a pool each, two tasks interleaving: the
 * asyncio tutorial's second aioredis case.
 *
 *	import asyncio
 *	import aioredis
 *
 *	async def redis_pool(name, address):
 *	    pool = await aioredis.create_pool(address, minsize=5, maxsize=10)
 *	    with await pool as conn:
 *	        await conn.execute('hmset', 'car', 'key1', 1, 'key2', 2, 'key3', 3)
 *	        val = await conn.execute('hgetall', 'car', encoding='utf-8')
 *	    pool.close()
 *	    await pool.wait_closed()
 *	    return name, val
 *
 *	async def main():
 *	    for name, val in await asyncio.gather(
 *	            redis_pool('r1', 'redis://localhost:6379'),
 *	            redis_pool('r2', 'redis://localhost:6380')):
 *	        print(name, val)
 *
 *	asyncio.run(main())
 *
 * Usage: redis_two_pools [address1 address2]. Without addresses it starts two
 * private redis-servers of its own (Unix sockets in a temporary directory,
 * no persistence) and stops them at the end, so the demo needs no setup.
 * Each task's connect, HMSET and HGETALL suspend only that task: while r1
 * waits on its server, r2 runs, on the same worker. The mapping:
 *   aioredis.create_pool(addr, minsize=5, maxsize=10)
 *                                rlt_redis_pool_new(&(rlt_redis_pool_opts){...})
 *   with await pool as conn:     c = rlt_redis_pool_acquire(pool, timeout); ...;
 *                                rlt_redis_pool_release(pool, c)
 *   pool.close(); wait_closed()  rlt_redis_pool_free(pool)
 *   asyncio.gather(...)          rlt_gather(tasks, 2, results, NULL, 0)
 */
#include <ringlet.h>
#include <ringlet/redis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
	const char *name;
	const char *address;
	char out[256]; /* the result, as Python prints it */
} job;

static void *redis_pool(void *arg)
{
	job *j = arg;
	rlt_redis_pool *pool = rlt_redis_pool_new(
	    &(rlt_redis_pool_opts){.conn = {.address = j->address}, .min_size = 5, .max_size = 10});
	if (!pool) {
		fprintf(stderr, "redis_two_pools: %s: pool: %s\n", j->name, strerror(rlt_errno));
		return rlt_fail(-rlt_errno);
	}
	rlt_redis *c = rlt_redis_pool_acquire(pool, 5 * (int64_t)RLT_NSEC_PER_SEC);
	int rc = c ? 0 : -rlt_errno;
	rlt_redis_reply *r = NULL;
	if (!rc)
		rc = rlt_redis_command(c, &r, "HMSET car key1 %d key2 %d key3 %d", 1, 2, 3);
	if (!rc) {
		rlt_redis_reply_free(r);
		rc = rlt_redis_command(c, &r, "HGETALL car");
	}
	if (!rc && r->type == RLT_REDIS_REPLY_ARRAY) {
		size_t n = (size_t)snprintf(j->out, sizeof(j->out), "{");
		for (size_t i = 0; i + 1 < r->elements && n < sizeof(j->out); i += 2)
			n += (size_t)snprintf(j->out + n, sizeof(j->out) - n, "%s'%s': '%s'",
					      i ? ", " : "", r->element[i]->str,
					      r->element[i + 1]->str);
		if (n < sizeof(j->out))
			snprintf(j->out + n, sizeof(j->out) - n, "}");
	} else if (!rc) {
		rc = -EPROTO;
	}
	rlt_redis_reply_free(r);
	if (c)
		rlt_redis_pool_release(pool, c);
	rlt_redis_pool_free(pool);
	if (rc < 0) {
		fprintf(stderr, "redis_two_pools: %s: %s\n", j->name, strerror(-rc));
		return rlt_fail(rc);
	}
	return NULL;
}

/* ---- the demo's own servers ---- */

typedef struct server {
	char sock[128];
	char address[140];
	rlt_process *proc;
} server;

static int server_start(server *s, const char *dir, int i)
{
	int n = snprintf(s->sock, sizeof(s->sock), "%s/r%d.sock", dir, i);
	if (n < 0 || (size_t)n >= sizeof(s->sock))
		return -ENAMETOOLONG;
	memcpy(s->address, "unix:", 5);
	memcpy(s->address + 5, s->sock, (size_t)n + 1);
	const char *argv[] = {"redis-server", "--port", "0", "--unixsocket",
			      s->sock,	      "--save", "",  "--appendonly",
			      "no",	      "--dir",	dir, NULL};
	s->proc = rlt_process_spawn(&(rlt_process_opts){
	    .argv = argv, .stdout_mode = RLT_PROC_DEVNULL, .stderr_mode = RLT_PROC_DEVNULL});
	if (!s->proc)
		return -errno;
	/* Ready when it answers (at most 5 s). */
	for (int tries = 0; tries < 500; tries++) {
		rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = s->address});
		if (c) {
			rlt_redis_close(c);
			return 0;
		}
		rlt_sleep(10 * RLT_NSEC_PER_MSEC);
	}
	return -ETIMEDOUT;
}

static void server_stop(server *s)
{
	if (!s->proc)
		return;
	rlt_process_kill(s->proc, SIGTERM);
	rlt_process_wait(s->proc, -1, NULL);
	rlt_process_free(s->proc);
	unlink(s->sock);
}

typedef struct args {
	int argc;
	char **argv;
} args;

static void *main_task(void *arg)
{
	args *a = arg;
	char dir[] = "/tmp/redis_two_pools-XXXXXX";
	server srv[2] = {0};
	job jobs[2] = {{.name = "r1"}, {.name = "r2"}};
	bool own = a->argc < 3;
	int rc = 0;
	if (own) {
		if (!mkdtemp(dir)) {
			perror("redis_two_pools: mkdtemp");
			return (void *)1;
		}
		for (int i = 0; i < 2 && rc == 0; i++)
			if ((rc = server_start(&srv[i], dir, i + 1)) < 0)
				fprintf(stderr, "redis_two_pools: redis-server: %s\n",
					strerror(-rc));
		jobs[0].address = srv[0].address;
		jobs[1].address = srv[1].address;
	} else {
		jobs[0].address = a->argv[1];
		jobs[1].address = a->argv[2];
	}
	if (rc == 0) {
		rlt_task *t[2] = {rlt_spawn(redis_pool, &jobs[0], NULL),
				  rlt_spawn(redis_pool, &jobs[1], NULL)};
		rc = rlt_gather(t, 2, NULL, NULL, 0);
		if (rc == 0)
			for (int i = 0; i < 2; i++)
				printf("%s %s\n", jobs[i].name, jobs[i].out);
	}
	if (own) {
		server_stop(&srv[0]);
		server_stop(&srv[1]);
		rmdir(dir);
	}
	return rc < 0 ? (void *)1 : NULL; /* the exit status */
}

int main(int argc, char **argv)
{
	args a = {argc, argv};
	rlt_config cfg = {.workers = 1};
	void *res = NULL;
	int rc = rlt_run(main_task, &a, &cfg, &res);
	return rc == 0 && !res ? 0 : 1;
}
