/*
 * gather_values: start two tasks, then collect both results.
 *
 *	import asyncio
 *
 *	async def square(x):
 *	    await asyncio.sleep(0)   # give the other task a turn
 *	    return x * x
 *
 *	async def main():
 *	    t1 = asyncio.create_task(square(3))
 *	    t2 = asyncio.create_task(square(4))
 *	    print(await t1, await t2)
 *
 *	asyncio.run(main())
 *
 * prints "9 16". The mapping:
 *   asyncio.create_task(square(3))   rlt_spawn(square, (void *)3, NULL): both tasks are
 *                                    runnable before either is awaited, so they run
 *                                    interleaved while main waits
 *   await t1                         rlt_join(t1, &result): a task's return value is the
 *                                    result; joining a task that already returned gives it
 *                                    at once, like awaiting a finished asyncio task
 *   await asyncio.sleep(0)           rlt_yield()
 * asyncio.gather(square(3), square(4)) is the same program in one call.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "gather_values: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

/* Small integers travel in the argument and result pointers themselves. */
static void *square(void *arg)
{
	intptr_t x = (intptr_t)arg;
	check(rlt_yield(), "rlt_yield");
	return (void *)(x * x);
}

/* rlt_spawn's result, checked. (rlt_spawn itself is called where the task
 * function is named: it names the task after it, "square-2".) */
static rlt_task *spawned(rlt_task *t)
{
	if (!t)
		check(-errno, "rlt_spawn");
	return t;
}

static void *amain(void *arg)
{
	rlt_task *t1 = spawned(rlt_spawn(square, (void *)3, NULL));
	rlt_task *t2 = spawned(rlt_spawn(square, (void *)4, NULL));
	void *r1, *r2;
	check(rlt_join(t1, &r1), "rlt_join");
	check(rlt_join(t2, &r2), "rlt_join");
	printf("%d %d\n", (int)(intptr_t)r1, (int)(intptr_t)r2);
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
