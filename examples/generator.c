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
 * The mapping. The producer is a task of its own (stackful, so `yield` can be an
 * ordinary function call deep inside it), and each hand-off is a pair of one-shot
 * futures:
 *   resume   consumer -> producer: "run until your next yield"
 *   reply    producer -> consumer: the yielded value, or failed with ENODATA when the
 *            producer has returned (asyncio's StopAsyncIteration)
 *   async for v in producer()    gen_start(), then gen_next() until it returns 0
 *   yield v                      gen_yield(g, v)
 * Each side blocks on its own future while the other runs, so, like a Python
 * generator, the producer never runs ahead of its consumer.
 *
 * Futures are reference counted: the side that awaits a future creates it, hands a
 * retained reference to the side that will set it, and each releases its own.
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

static rlt_future *future_new(void)
{
	rlt_future *f = rlt_future_new();
	if (!f)
		check(-errno, "rlt_future_new");
	return f;
}

typedef struct gen gen;
typedef void (*gen_body)(gen *g);

struct gen {
	gen_body body;
	rlt_task *task;
	/* Each field holds the setting side's reference, taken by that side when it sets. */
	rlt_future *resume; /* set by the consumer */
	rlt_future *reply;  /* set by the producer */
	/* The producer's own reference to the resume future it awaits. */
	rlt_future *resume_wait;
};

/* Producer side: create the next resume future, then hand v over and wait for it. */
static void gen_yield(gen *g, intptr_t v)
{
	g->resume_wait = future_new();
	g->resume = rlt_future_retain(g->resume_wait);
	rlt_future *reply = g->reply;
	g->reply = NULL;
	check(rlt_future_set(reply, (void *)v), "rlt_future_set");
	rlt_future_release(reply);
	check(rlt_future_await(g->resume_wait, NULL, -1), "rlt_future_await");
	rlt_future_release(g->resume_wait);
	g->resume_wait = NULL;
}

static void *gen_task(void *arg)
{
	gen *g = arg;
	/* Like a Python generator, the body does not start before the first request. */
	check(rlt_future_await(g->resume_wait, NULL, -1), "rlt_future_await");
	rlt_future_release(g->resume_wait);
	g->resume_wait = NULL;
	g->body(g);
	/* Returning is the end of the stream: the pending request gets ENODATA. */
	rlt_future *reply = g->reply;
	g->reply = NULL;
	check(rlt_future_fail(reply, ENODATA), "rlt_future_fail");
	rlt_future_release(reply);
	return NULL;
}

static void gen_start(gen *g, gen_body body)
{
	g->body = body;
	g->reply = NULL;
	g->resume_wait = future_new();
	g->resume = rlt_future_retain(g->resume_wait);
	g->task = rlt_spawn(gen_task, g, NULL);
	if (!g->task)
		check(-errno, "rlt_spawn");
}

/* Consumer side (__anext__): 1 and the value in *v, or 0 once the producer returned. */
static int gen_next(gen *g, intptr_t *v)
{
	rlt_future *reply = future_new();
	g->reply = rlt_future_retain(reply);
	rlt_future *resume = g->resume;
	g->resume = NULL;
	check(rlt_future_set(resume, NULL), "rlt_future_set");
	rlt_future_release(resume);

	void *value;
	int rc = rlt_future_await(reply, &value, -1);
	rlt_future_release(reply);
	if (rc == -ENODATA)
		return 0;
	check(rc, "rlt_future_await");
	*v = (intptr_t)value;
	return 1;
}

/* The producer is written as straight-line code: the yield suspends it mid-body. */
static void producer(gen *g)
{
	printf("3\n");
	gen_yield(g, 4);
}

static void *amain(void *arg)
{
	printf("1\n");
	gen g;
	gen_start(&g, producer);
	intptr_t value;
	while (gen_next(&g, &value))
		printf("%d\n", (int)value);
	check(rlt_join(g.task, NULL), "rlt_join");
	printf("2\n");
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
