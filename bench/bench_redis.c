/*
 * bench_redis: the load side of bench/redis.sh. TASKS tasks run SET then
 * GET of VALUE-byte values, back to back, for WARM + SECONDS seconds, on
 * either one connection each ("conns": no pipelining, redis-benchmark -P 1's
 * shape) or all sharing one auto-pipelined connection ("shared"). Prints,
 * for the SECONDS after the warm-up:
 *
 *   rps=<commands/s> cmds=<n> secs=<s> cpu_us_per_cmd=<client CPU per command>
 *   client_cpu=<client CPU seconds per second>
 *   cmds_per_write=<commands per write, from rlt_redis_stats_get>
 *
 * Usage: bench_redis ADDRESS conns|shared TASKS SECONDS [VALUE_BYTES [WARM]]
 */
#include <ringlet.h>
#include <ringlet/redis.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct cfg {
	const char *addr;
	bool shared;
	int tasks;
	double secs, warm;
	size_t vlen;
} cfg;

typedef struct worker {
	rlt_redis *c;
	int id;
	const char *val;
	size_t vlen;
	atomic_ulong done; /* commands completed (the counter sampled by main) */
	int err;
} worker;

static atomic_bool stop;

static void *load(void *arg)
{
	worker *w = arg;
	char key[32];
	int klen = snprintf(key, sizeof(key), "key:%06d", w->id);
	const char *set[] = {"SET", key, w->val};
	size_t setl[] = {3, (size_t)klen, w->vlen};
	const char *get[] = {"GET", key};
	size_t getl[] = {3, (size_t)klen};
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		rlt_redis_reply *r = NULL;
		int rc = rlt_redis_command_argv(w->c, &r, 3, set, setl);
		if (rc == 0) {
			rlt_redis_reply_free(r);
			rc = rlt_redis_command_argv(w->c, &r, 2, get, getl);
		}
		if (rc < 0 || r->type != RLT_REDIS_REPLY_STRING || r->len != w->vlen) {
			w->err = rc < 0 ? rc : -EPROTO;
			rlt_redis_reply_free(r);
			return NULL;
		}
		rlt_redis_reply_free(r);
		atomic_fetch_add_explicit(&w->done, 2, memory_order_relaxed);
	}
	return NULL;
}

static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static unsigned long total(worker *w, int n)
{
	unsigned long s = 0;
	for (int i = 0; i < n; i++)
		s += atomic_load_explicit(&w[i].done, memory_order_relaxed);
	return s;
}

static void *main_task(void *arg)
{
	cfg *k = arg;
	worker *w = calloc((size_t)k->tasks, sizeof(*w));
	rlt_task **t = calloc((size_t)k->tasks, sizeof(*t));
	char *val = malloc(k->vlen);
	memset(val, 'x', k->vlen);
	rlt_redis *shared = NULL;
	for (int i = 0; i < k->tasks; i++) {
		rlt_redis *c = shared;
		if (!c) {
			c = rlt_redis_connect(&(rlt_redis_opts){.address = k->addr});
			if (!c) {
				fprintf(stderr, "bench_redis: connect %s: %s\n", k->addr,
					strerror(errno));
				exit(1);
			}
			if (k->shared)
				shared = c;
		}
		w[i] = (worker){.c = c, .id = i, .val = val, .vlen = k->vlen};
	}
	for (int i = 0; i < k->tasks; i++)
		t[i] = rlt_spawn(load, &w[i], NULL);
	rlt_sleep((uint64_t)(k->warm * 1e9));
	unsigned long n0 = total(w, k->tasks);
	double c0 = cpu_now();
	uint64_t t0 = rlt_now();
	rlt_sleep((uint64_t)(k->secs * 1e9));
	unsigned long n1 = total(w, k->tasks);
	double c1 = cpu_now();
	uint64_t t1 = rlt_now();
	atomic_store(&stop, true);
	int err = 0;
	double cmds_all = 0, writes_all = 0;
	for (int i = 0; i < k->tasks; i++) {
		rlt_join(t[i], NULL);
		if (w[i].err)
			err = w[i].err;
		if (!k->shared || i == 0) {
			rlt_redis_stats st;
			rlt_redis_stats_get(w[i].c, &st);
			cmds_all += (double)st.commands;
			writes_all += (double)st.writes;
		}
		if (!k->shared)
			rlt_redis_close(w[i].c);
	}
	if (shared)
		rlt_redis_close(shared);
	if (err) {
		fprintf(stderr, "bench_redis: %s\n", strerror(-err));
		exit(1);
	}
	double secs = (double)(t1 - t0) / 1e9, cmds = (double)(n1 - n0);
	printf("rps=%.0f cmds=%.0f secs=%.3f cpu_us_per_cmd=%.3f client_cpu=%.3f "
	       "cmds_per_write=%.1f\n",
	       cmds / secs, cmds, secs, (c1 - c0) * 1e6 / cmds, (c1 - c0) / secs,
	       writes_all > 0 ? cmds_all / writes_all : 0);
	free(w);
	free(t);
	free(val);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr,
			"usage: %s ADDRESS conns|shared TASKS SECONDS [VALUE_BYTES [WARM]]\n",
			argv[0]);
		return 2;
	}
	cfg k = {.addr = argv[1],
		 .shared = strcmp(argv[2], "shared") == 0,
		 .tasks = atoi(argv[3]),
		 .secs = atof(argv[4]),
		 .vlen = argc > 5 ? (size_t)atol(argv[5]) : 64,
		 .warm = argc > 6 ? atof(argv[6]) : 0.5};
	if (k.tasks <= 0 || k.secs <= 0)
		return 2;
	return rlt_run(main_task, &k, NULL, NULL) == 0 ? 0 : 1;
}
