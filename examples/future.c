/*
 * future: one task awaits a value that another task sets later.
 *
 *	import asyncio
 *
 *	async def set_after(fut, delay, value):
 *	    await asyncio.sleep(delay)
 *	    fut.set_result(value)
 *
 *	async def main():
 *	    fut = asyncio.get_running_loop().create_future()
 *	    setter = asyncio.create_task(set_after(fut, 0.1, 666))
 *	    print(await fut)
 *	    await setter
 *
 *	asyncio.run(main())
 *
 * prints 666, after 100 ms. The mapping:
 *   loop.create_future()   rlt_future_new()
 *   fut.set_result(v)      rlt_future_set(fut, v): never suspends; wakes the awaiter
 *   await fut              rlt_future_await(fut, &v, -1): -1 waits without a timeout
 *   asyncio.sleep(0.1)     rlt_sleep(100 * RLT_NSEC_PER_MSEC)
 * C has no garbage collector, so the future is reference counted: main creates it and
 * awaits it, the setter gets a reference of its own (rlt_future_retain) and drops it
 * once it has set the value. Each side releases only its own reference, so neither
 * has to know whether the other is done with the future.
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_MS 100

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "future: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

struct set_after_args {
	rlt_future *fut; /* a reference owned by the setter */
	uint64_t delay_ns;
	intptr_t value;
};

static void *set_after(void *arg)
{
	struct set_after_args *a = arg;
	check(rlt_sleep(a->delay_ns), "rlt_sleep");
	check(rlt_future_set(a->fut, (void *)a->value), "rlt_future_set");
	rlt_future_release(a->fut);
	return NULL;
}

static void *amain(void *arg)
{
	rlt_future *fut = rlt_future_new();
	if (!fut)
		check(-errno, "rlt_future_new");
	struct set_after_args args = {
	    .fut = rlt_future_retain(fut),
	    .delay_ns = DELAY_MS * RLT_NSEC_PER_MSEC,
	    .value = 666,
	};
	rlt_task *setter = rlt_spawn(set_after, &args, NULL);
	if (!setter)
		check(-errno, "rlt_spawn");

	void *value;
	check(rlt_future_await(fut, &value, -1), "rlt_future_await");
	printf("%d\n", (int)(intptr_t)value);
	rlt_future_release(fut);
	check(rlt_join(setter, NULL), "rlt_join");
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
