/*
 * wait: wait for some tasks with a timeout, then deal with the ones still pending.
 *
 *	import asyncio
 *
 *	async def work(delay):
 *	    await asyncio.sleep(delay)
 *	    return delay
 *
 *	async def main():
 *	    tasks = [asyncio.create_task(work(d), name=n)
 *	             for n, d in (("a", 0.01), ("b", 0.05), ("c", 2))]
 *	    done, pending = await asyncio.wait(tasks, timeout=0.2)
 *	    print(f"{len(done)} done, {len(pending)} pending")
 *	    for t in done:
 *	        print(f"{t.get_name()}: slept {int(t.result() * 1000)} ms")
 *	    for t in pending:
 *	        t.cancel()
 *	        try:
 *	            await t
 *	        except asyncio.CancelledError:
 *	            print(f"{t.get_name()}: cancelled")
 *
 *	asyncio.run(main())
 *
 * prints "2 done, 1 pending", then a and b with their sleeps, then "c: cancelled";
 * it takes the timeout (200 ms), not c's two seconds. The mapping:
 *   asyncio.wait(tasks, timeout=0.2)   rlt_wait(tasks, n, RLT_ALL_COMPLETED, 200 ms):
 *                                      returns how many are done and moves them to the
 *                                      front of the array (each part in its original
 *                                      order, where Python gives two unordered sets);
 *                                      a timeout is not an error
 *   t.result()                         rlt_join(t, &result) on a done task: no wait
 *   t.cancel(); await t                rlt_cancel(t); rlt_join(t) returns -ECANCELED
 *   name="a", t.get_name()             rlt_spawn_opts.name, rlt_task_name(t)
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 200
#define SLOW_MS	   2000 /* c: cancelled long before it would wake */

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "wait: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

static void *work(void *arg)
{
	intptr_t ms = (intptr_t)arg;
	int rc = rlt_sleep((uint64_t)ms * RLT_NSEC_PER_MSEC);
	if (rc == -ECANCELED)
		return NULL; /* asyncio: the CancelledError goes up to the awaiter */
	check(rc, "rlt_sleep");
	return arg;
}

static void *amain(void *arg)
{
	static const struct {
		const char *name;
		intptr_t ms;
	} jobs[] = {{"a", 10}, {"b", 50}, {"c", SLOW_MS}};
	enum { N = sizeof(jobs) / sizeof(jobs[0]) };
	rlt_task *tasks[N];
	for (int i = 0; i < N; i++) {
		rlt_spawn_opts opts = {.name = jobs[i].name};
		tasks[i] = rlt_spawn(work, (void *)jobs[i].ms, &opts);
		if (!tasks[i])
			check(-errno, "rlt_spawn");
	}
	int ndone = rlt_wait(tasks, N, RLT_ALL_COMPLETED, TIMEOUT_MS * RLT_NSEC_PER_MSEC);
	check(ndone, "rlt_wait");
	printf("%d done, %d pending\n", ndone, N - ndone);
	for (int i = 0; i < ndone; i++) {
		/* The name lives as long as the handle: print before joining. */
		printf("%s: ", rlt_task_name(tasks[i]));
		void *ms;
		check(rlt_join(tasks[i], &ms), "rlt_join");
		printf("slept %d ms\n", (int)(intptr_t)ms);
	}
	for (int i = ndone; i < N; i++) {
		printf("%s: ", rlt_task_name(tasks[i]));
		check(rlt_cancel(tasks[i]), "rlt_cancel");
		int rc = rlt_join(tasks[i], NULL);
		if (rc == -ECANCELED)
			printf("cancelled\n");
		else
			check(rc, "rlt_join");
	}
	return NULL;
}

int main(void)
{
	check(rlt_run(amain, NULL, NULL, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
