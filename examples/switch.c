/*
 * switch: two tasks hand the worker back and forth explicitly.
 *
 *	import asyncio
 *
 *	async def task_a():
 *	    print(1)
 *	    await asyncio.sleep(0)   # let the other tasks run
 *	    print(2)
 *
 *	async def task_b():
 *	    print(3)
 *	    await asyncio.sleep(0)
 *	    print(4)
 *
 *	async def main():
 *	    a = asyncio.create_task(task_a())
 *	    b = asyncio.create_task(task_b())
 *	    await a
 *	    await b
 *
 *	asyncio.run(main())
 *
 * prints 1, 3, 2, 4. The mapping:
 *   asyncio.run(main())       rlt_run(amain, ...): amain becomes the root task
 *   asyncio.create_task(c)    rlt_spawn(fn, arg, NULL): runnable, but it first runs only
 *                             when the creator suspends, as in asyncio
 *   await asyncio.sleep(0)    rlt_yield(): every other runnable task runs once first
 *   await task                rlt_join(task, NULL)
 * Tasks run in the order they became runnable, so A prints 1 and yields, B prints 3
 * and yields, then A prints 2 and B prints 4.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "switch: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

/* rlt_spawn's result, checked. (rlt_spawn itself is called where the task
 * function is named: it names the task after it, "task_a-2".) */
static rlt_task *spawned(rlt_task *t)
{
	if (!t)
		check(-errno, "rlt_spawn");
	return t;
}

static void *task_a(void *arg)
{
	printf("1\n");
	check(rlt_yield(), "rlt_yield");
	printf("2\n");
	return NULL;
}

static void *task_b(void *arg)
{
	printf("3\n");
	check(rlt_yield(), "rlt_yield");
	printf("4\n");
	return NULL;
}

static void *amain(void *arg)
{
	rlt_task *a = spawned(rlt_spawn(task_a, NULL, NULL));
	rlt_task *b = spawned(rlt_spawn(task_b, NULL, NULL));
	check(rlt_join(a, NULL), "rlt_join");
	check(rlt_join(b, NULL), "rlt_join");
	return NULL;
}

int main(void)
{
	/* asyncio runs every task on one thread, and the order of this output
	 * depends on it; so this example asks for one worker (the default is one
	 * per CPU, with tasks running in parallel). */
	rlt_config cfg = {.workers = 1};
	check(rlt_run(amain, NULL, &cfg, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
