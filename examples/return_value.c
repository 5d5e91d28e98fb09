/*
 * return_value: await a coroutine and use what it returns.
 *
 *	import asyncio
 *
 *	async def add(a, b):
 *	    return a + b
 *
 *	async def main():
 *	    print(await add(1, 2))
 *
 *	asyncio.run(main())
 *
 * prints 3. The mapping:
 *   async def add(a, b)   void *add(void *arg): a task body takes one pointer and returns
 *                         one. Several arguments travel in a struct; the caller keeps it
 *                         alive until the join. A small integer result travels in the
 *                         returned pointer itself, as an intptr_t.
 *   await add(1, 2)       rlt_spawn() + rlt_join(): the coroutine runs as a task of its own
 *                         and rlt_join() waits for it to return and hands back its result.
 * (Tasks are stackful, so any C function can suspend and a plain call add(&args) would
 * do too; spawning is what gives the coroutine a life of its own, as asyncio's
 * await asyncio.create_task(add(1, 2)) does, with the same output.)
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "return_value: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

struct add_args {
	int a, b;
};

static void *add(void *arg)
{
	const struct add_args *args = arg;
	return (void *)(intptr_t)(args->a + args->b);
}

static void *amain(void *arg)
{
	struct add_args args = {.a = 1, .b = 2}; /* on our stack: we outlive the join */
	rlt_task *t = rlt_spawn(add, &args, NULL);
	if (!t)
		check(-errno, "rlt_spawn");
	void *sum;
	check(rlt_join(t, &sum), "rlt_join");
	printf("%d\n", (int)(intptr_t)sum);
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
