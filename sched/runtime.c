/* rlt_run(): build a runtime around the calling thread, run the root task,
 * tear everything down. */
#include "ringlet/runtime.h"

#include "runtime/alloc.h"
#include "runtime/stack.h"
#include "sched/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rlt_config_init(rlt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->stack_size = RLT_DEFAULT_STACK_SIZE;
	cfg->ring_entries = 256;
	cfg->workers = 1;
	cfg->stack_cache = 256;
}

/* Parse a size like "65536", "64k", "1m". 0 on error. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	return *end ? 0 : (size_t)v;
}

static int resolve_config(const rlt_config *in, rlt__runtime *rt)
{
	rlt_config cfg;
	rlt_config_init(&cfg);
	if (in) {
		if (in->stack_size)
			cfg.stack_size = in->stack_size;
		if (in->ring_entries)
			cfg.ring_entries = in->ring_entries;
		if (in->workers)
			cfg.workers = in->workers;
		if (in->stack_cache)
			cfg.stack_cache = in->stack_cache;
		cfg.no_stack_guard = in->no_stack_guard;
	}
	const char *env = getenv("RINGLET_STACK_SIZE");
	if (env && *env) {
		size_t v = parse_size(env);
		if (!v || !rlt__stack_round(v)) {
			fprintf(stderr, "ringlet: RINGLET_STACK_SIZE=%s is not a size in [8k, 1g]\n", env);
			return -EINVAL;
		}
		cfg.stack_size = v;
	}
	rt->stack_size = rlt__stack_round(cfg.stack_size);
	if (!rt->stack_size)
		return -EINVAL;
	if (cfg.ring_entries > 32768 || (cfg.ring_entries & (cfg.ring_entries - 1)))
		return -EINVAL;
	if (cfg.workers != 1)
		return -EINVAL; /* several workers: the work-stealing scheduler */
	rt->ring_entries = cfg.ring_entries;
	rt->nworkers = cfg.workers;
	rt->stack_cache = cfg.stack_cache;
	rt->stack_guard = !cfg.no_stack_guard;
	return 0;
}

int rlt_run(rlt_task_fn fn, void *arg, const rlt_config *cfg, void **result)
{
	if (!fn)
		return -EINVAL;
	if (rlt__worker_self())
		return -EBUSY;
	rlt__runtime rt;
	memset(&rt, 0, sizeof(rt));
	atomic_init(&rt.next_id, 1);
	int rc = resolve_config(cfg, &rt);
	if (rc < 0)
		return rc;
	rc = rlt__overflow_handler_install();
	if (rc < 0)
		return rc;
	rt.workers = rlt__calloc(rt.nworkers, sizeof(rlt__worker));
	if (!rt.workers)
		return -ENOMEM;
	rlt__worker *w = &rt.workers[0];
	rc = rlt__worker_init(w, &rt, 0);
	if (rc < 0) {
		rlt__free(rt.workers);
		return rc;
	}
	rlt_spawn_opts opts = {.name = "main"};
	rlt_task *root = rlt__task_create(w, fn, arg, &opts);
	if (!root) {
		rc = -errno;
		goto out;
	}
	rt.root = root;
	rlt__runq_push(w, root);

	/* Run until the root task has returned. */
	while (!rlt__oneshot_is_set(&root->done)) {
		w->stop = false;
		rlt__worker_loop(w);
	}
	if (result)
		*result = root->result;
	/* The root's struct (our handle keeps it) is freed with the rest. */
	unsigned dropped = rlt__worker_drop_tasks(w);
	if (dropped)
		fprintf(stderr,
			"ringlet: %u task%s still running when the root task returned %s abandoned\n",
			dropped, dropped == 1 ? "" : "s", dropped == 1 ? "was" : "were");
	rc = 0;
out:
	rlt__worker_fini(w);
	rlt__free(rt.workers);
	return rc;
}
