/*
 * named_tasks: give tasks names, and ask the running task for its own.
 *
 *	import asyncio
 *
 *	async def worker(delay):
 *	    await asyncio.sleep(delay)
 *	    print(f"{asyncio.current_task().get_name()} finished")
 *
 *	async def main():
 *	    print(f"main task: {asyncio.current_task().get_name()}")
 *	    t1 = asyncio.create_task(worker(0.01), name="fetch-users")
 *	    t2 = asyncio.create_task(worker(0.02), name="fetch-orders")
 *	    t3 = asyncio.create_task(worker(0.03))
 *	    print(f"created {t1.get_name()}, {t2.get_name()} and {t3.get_name()}")
 *	    await asyncio.gather(t1, t2, t3)
 *
 *	asyncio.run(main())
 *
 * The mapping:
 *   create_task(coro, name="fetch-users")   rlt_spawn(fn, arg, &(rlt_spawn_opts){.name = ...})
 *                                           (the name is copied into the task)
 *   t.get_name()                            rlt_task_name(t)
 *   asyncio.current_task().get_name()       rlt_task_name(NULL): the calling task's
 *   asyncio.gather(t1, t2, t3)              rlt_gather(tasks, 3, NULL, NULL, 0)
 * Where Python names unnamed tasks "Task-<n>" (main is "Task-1"), ringlet's root task
 * is "main" and an unnamed task is named after its function and id, "worker-4", id
 * being rlt_task_id(): unique in the runtime, 1 for the root. (rlt_spawn is a macro
 * that passes the text of its fn argument: called from a helper taking the function
 * as a parameter `fn`, the name would be "fn-4"; such a helper calls rlt_spawn_named
 * with a name of its own.) On one worker the ids come in spawn order, so this prints
 *
 *	main task: main
 *	created fetch-users, fetch-orders and worker-4
 *	fetch-users finished
 *	fetch-orders finished
 *	worker-4 finished
 */
#include <ringlet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An example has nothing to undo on failure: report and exit, from any task. */
static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "named_tasks: %s: %s\n", what, strerror(-rc));
		exit(EXIT_FAILURE);
	}
}

static void *worker(void *arg)
{
	intptr_t ms = (intptr_t)arg;
	check(rlt_sleep((uint64_t)ms * RLT_NSEC_PER_MSEC), "rlt_sleep");
	printf("%s finished\n", rlt_task_name(NULL));
	return NULL;
}

static void *amain(void *arg)
{
	printf("main task: %s\n", rlt_task_name(NULL));
	rlt_task *t[3] = {
	    rlt_spawn(worker, (void *)10, &(rlt_spawn_opts){.name = "fetch-users"}),
	    rlt_spawn(worker, (void *)20, &(rlt_spawn_opts){.name = "fetch-orders"}),
	    rlt_spawn(worker, (void *)30, NULL), /* no name: "worker-<id>" */
	};
	for (int i = 0; i < 3; i++)
		if (!t[i])
			check(-errno, "rlt_spawn");
	printf("created %s, %s and %s\n", rlt_task_name(t[0]), rlt_task_name(t[1]),
	       rlt_task_name(t[2]));
	check(rlt_gather(t, 3, NULL, NULL, 0), "rlt_gather");
	return NULL;
}

int main(void)
{
	/* One worker, as asyncio's one thread: the ids (and so the default
	 * names) follow the spawn order. */
	rlt_config cfg = {.workers = 1};
	check(rlt_run(amain, NULL, &cfg, NULL), "rlt_run");
	return EXIT_SUCCESS;
}
