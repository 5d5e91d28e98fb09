/*
 * What the C benchmarks share beyond bench_common.h (which the C++ baseline
 * uses too): dying with a message that names the call, and running a root
 * task on a given number of workers.
 */
#ifndef RLT_BENCH_RT_H
#define RLT_BENCH_RT_H

#include "bench_common.h"
#include <ringlet.h>

#include <errno.h>

/* "<program>: <what>: <strerror(err)>", exit 1. */
static inline void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(err));
	exit(1);
}

/* rlt_run(fn, arg) on `workers` workers (0: the default, one per CPU);
 * returns the root task's result, dies on failure. */
static inline void *bench_run(unsigned workers, rlt_task_fn fn, void *arg)
{
	rlt_config cfg;
	rlt_config_init(&cfg);
	cfg.workers = workers;
	void *res = NULL;
	int rc = rlt_run(fn, arg, &cfg, &res);
	if (rc < 0)
		die("rlt_run", -rc);
	return res;
}

#endif
