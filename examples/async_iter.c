/*
 * async_iter: an asynchronous iterator that awaits between the values it hands out.
 *
 *	import asyncio
 *
 *	class Counter:
 *	    def __init__(self, stop):
 *	        self.i = 0
 *	        self.stop = stop
 *
 *	    def __aiter__(self):
 *	        return self
 *
 *	    async def __anext__(self):
 *	        if self.i == self.stop:
 *	            raise StopAsyncIteration
 *	        await asyncio.sleep(0)   # something to wait for: I/O, a timer
 *	        self.i += 1
 *	        return self.i - 1
 *
 *	async def main():
 *	    async for n in Counter(100):
 *	        print(n)
 *
 *	asyncio.run(main())
 *
 * prints 0 to 99, one per line. The mapping:
 *   Counter(100)             rlt_gen_new(counter, (void *)100, NULL): the iterator's
 *                            state (i) lives in the producer's own frame
 *   __anext__ / async for    rlt_gen_next(g, &n) until it returns -EPIPE
 *                            (StopAsyncIteration: the producer returned)
 *   return self.i - 1        rlt_gen_yield(g, n)
 *   await asyncio.sleep(0)   rlt_sleep(0): the producer may suspend between values,
 *                            and its consumer waits in rlt_gen_next meanwhile
 * Written as a loop, the producer is what Python calls an async generator; the
 * iterator class is the same thing with its loop turned inside out.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "async_iter: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

static void *counter(rlt_gen *g, void *arg)
{
	intptr_t stop = (intptr_t)arg;
	for (intptr_t i = 0; i < stop; i++) {
		check(rlt_sleep(0), "rlt_sleep");
		if (rlt_gen_yield(g, (void *)i) < 0)
			break; /* closed early */
	}
	return NULL;
}

static void *amain(void *arg)
{
	rlt_gen *g = rlt_gen_new(counter, (void *)(intptr_t)100, NULL);
	if (!g)
		check(-errno, "rlt_gen_new");
	void *n;
	int rc;
	while ((rc = rlt_gen_next(g, &n)) == 0)
		printf("%d\n", (int)(intptr_t)n);
	if (rc != -EPIPE)
		check(rc, "rlt_gen_next");
	check(rlt_gen_close(g), "rlt_gen_close");
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
