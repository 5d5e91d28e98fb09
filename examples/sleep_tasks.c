/*
 * sleep_tasks: two tasks sleep at the same time, so the program takes one sleep, not two.
 *
 *	import asyncio
 *
 *	async def task_a():
 *	    print(1)
 *	    await asyncio.sleep(1)
 *	    print(2)
 *
 *	async def task_b():
 *	    print(3)
 *	    await asyncio.sleep(1)
 *	    print(4)
 *
 *	async def main():
 *	    await asyncio.gather(task_a(), task_b())
 *
 *	asyncio.run(main())
 *
 * prints 1, 3, then after one sleep 2, 4; it runs for one second, not two.
 * The mapping:
 *   asyncio.gather(a(), b())   rlt_spawn() both, then rlt_join() both
 *   await asyncio.sleep(1)     rlt_sleep(SLEEP_MS * RLT_NSEC_PER_MSEC): suspends only the
 *                              calling task; the worker runs the other one meanwhile
 * A sleeps first, so its deadline is the earlier one and it wakes first: 2 before 4.
 * The sleep is shortened to SLEEP_MS so that the test (tests/test_examples.c) runs fast;
 * the test measures the time, so nothing about time is printed here.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLEEP_MS 200

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "sleep_tasks: %s: %s\n", what, strerror(-rc));
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
	check(rlt_sleep(SLEEP_MS * RLT_NSEC_PER_MSEC), "rlt_sleep");
	printf("2\n");
	return NULL;
}

static void *task_b(void *arg)
{
	printf("3\n");
	check(rlt_sleep(SLEEP_MS * RLT_NSEC_PER_MSEC), "rlt_sleep");
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
