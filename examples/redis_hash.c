/*
 * redis_hash: one connection, HMSET then HGETALL, print, close: the asyncio
 * tutorial's first aioredis case.
 *
 *	import asyncio
 *	import aioredis
 *
 *	async def main():
 *	    redis = await aioredis.create_redis('redis://localhost')
 *	    await redis.execute('hmset', 'car', 'key1', 1, 'key2', 2, 'key3', 3)
 *	    result = await redis.hgetall('car', encoding='utf-8')
 *	    print(result)
 *	    redis.close()
 *	    await redis.wait_closed()
 *
 *	asyncio.run(main())
 *
 * prints "{'key1': '1', 'key2': '2', 'key3': '3'}". Usage: redis_hash
 * [address] (default 127.0.0.1:6379; "unix:/path" works too). The mapping:
 *   aioredis.create_redis(url)   rlt_redis_connect(&(rlt_redis_opts){.address = ...})
 *   await redis.execute(...)     rlt_redis_command(c, &reply, "HMSET car key1 %d ...", ...):
 *                                suspends this task only; an error reply is a reply
 *   redis.close(); wait_closed   rlt_redis_close(c)
 */
#include <ringlet.h>
#include <ringlet/redis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *main_task(void *arg)
{
	rlt_redis *c = rlt_redis_connect(&(rlt_redis_opts){.address = arg});
	if (!c) {
		fprintf(stderr, "redis_hash: connect to %s: %s\n", (char *)arg,
			strerror(rlt_errno));
		return (void *)1; /* the exit status */
	}
	rlt_redis_reply *r = NULL;
	int rc = rlt_redis_command(c, &r, "HMSET car key1 %d key2 %d key3 %d", 1, 2, 3);
	if (rc == 0 && r->type != RLT_REDIS_REPLY_ERROR) {
		rlt_redis_reply_free(r);
		rc = rlt_redis_command(c, &r, "HGETALL %s", "car");
	}
	if (rc < 0 || r->type != RLT_REDIS_REPLY_ARRAY) {
		fprintf(stderr, "redis_hash: %s\n", rc < 0 ? strerror(-rc) : r->str);
		rlt_redis_reply_free(r);
		rlt_redis_close(c);
		return (void *)1;
	}
	/* print it as Python prints the dict */
	printf("{");
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		printf("%s'%s': '%s'", i ? ", " : "", r->element[i]->str, r->element[i + 1]->str);
	printf("}\n");
	rlt_redis_reply_free(r);
	rlt_redis_close(c);
	return NULL;
}

int main(int argc, char **argv)
{
	char *addr = argc > 1 ? argv[1] : "127.0.0.1:6379";
	rlt_config cfg = {.workers = 1};
	void *failed = NULL;
	int rc = rlt_run(main_task, addr, &cfg, &failed);
	return rc == 0 && !failed ? 0 : 1;
}
