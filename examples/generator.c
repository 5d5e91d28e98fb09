/*
 * generator: a producer that runs only when its consumer asks for the next value.
 *
 *	import asyncio
 *
 *	async def producer():
 *	    print(3)
 *	    yield 4
 *
 *	async def main():
 *	    print(1)
 *	    async for value in producer():
 *	        print(value)
 *	    print(2)
 *
 *	asyncio.run(main())
 *
 * prints 1, 3, 4, 2: main prints 1 and asks for a value; the producer starts, prints 3
 * and yields 4; main prints the 4 it received and asks again; the producer returns,
 * which ends the loop; main prints 2.
 *
 * The mapping (include/ringlet/gen.h):
 *   producer()                   rlt_gen_new(producer, arg, NULL): nothing runs yet
 *   async for value in ...       while (rlt_gen_next(g, &value) == 0): each call runs
 *                                the producer up to its next yield; -EPIPE when it has
 *                                returned (StopAsyncIteration)
 *   yield 4                      rlt_gen_yield(g, (void *)4): hands the value over and
 *                                waits to be asked again
 *   (the loop's end)             rlt_gen_close(g): frees the generator (and, had we left
 *                                the loop early, would stop the producer: aclose())
 * The producer is a task of its own, stackful, so the yield may be deep inside its
 * calls; like a Python generator, it never runs ahead of its consumer.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "generator: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

static void *producer(rlt_gen *g, void *arg)
{
	printf("3\n");
	/* < 0 only when the consumer closes us early: then just return. */
	rlt_gen_yield(g, (void *)(intptr_t)4);
	return NULL;
}

static void *amain(void *arg)
{
	printf("1\n");
	rlt_gen *g = rlt_gen_new(producer, NULL, NULL);
	if (!g)
		check(-errno, "rlt_gen_new");
	void *value;
	int rc;
	while ((rc = rlt_gen_next(g, &value)) == 0)
		printf("%d\n", (int)(intptr_t)value);
	if (rc != -EPIPE)
		check(rc, "rlt_gen_next");
	check(rlt_gen_close(g), "rlt_gen_close");
	printf("2\n");
	return NULL;
}

int main(void)
{
	/* asyncio runs every task on one thread; so does this example (the order
	 * of its output does not depend on it: the producer runs only when
	 * asked, on any worker). */
	rlt_config cfg = {.workers = 1};
	check(rlt_run(amain, NULL, &cfg, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
