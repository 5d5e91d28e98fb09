/* Runtime counters (include/ringlet/stats.h): they move as known workloads
 * say they must, and their formats parse. */
#include "rlt_test.h"

#include <ringlet/stats.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <time.h>

static void snap(rlt_stats *s)
{
	assert_int_equal(rlt_runtime_stats(NULL, s), 0);
	assert_int_equal(s->version, RLT_STATS_VERSION);
	assert_int_equal(s->size, sizeof(rlt_stats));
	assert_int_equal(s->worker_size, sizeof(rlt_worker_stats));
	assert_true(s->nworkers >= 1);
	assert_non_null(s->workers);
}

static rlt_worker_stats total(const rlt_stats *s)
{
	rlt_worker_stats t;
	rlt_stats_total(s, &t);
	return t;
}

/* ---- N spawns, N completed ---- */

static void *nothing(void *arg)
{
	return arg;
}

#define NSPAWN 1000

static void *spawn_n(void *arg)
{
	(void)arg;
	rlt_stats a, b;
	snap(&a);
	rlt_task *ts[NSPAWN];
	for (int i = 0; i < NSPAWN; i++) {
		ts[i] = rlt_spawn(nothing, NULL, NULL);
		assert_non_null(ts[i]);
	}
	for (int i = 0; i < NSPAWN; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	snap(&b);
	rlt_worker_stats ta = total(&a), tb = total(&b);
	assert_int_equal(tb.spawned - ta.spawned, NSPAWN);
	assert_int_equal(tb.completed - ta.completed, NSPAWN);
	/* Each ran at least once; the joiner was resumed too. */
	assert_true(tb.polled - ta.polled >= NSPAWN);
	assert_true(tb.turns > ta.turns);
	/* Stealing moves tasks between workers, never makes or loses one. */
	assert_int_equal(tb.stolen_in, tb.stolen_out);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	return NULL;
}

/* A spawn from a thread that is no worker (a pool thread) counts in the
 * runtime's spawned_foreign, the pool's counters move. */
static void *spawn_from_pool(void *arg)
{
	rlt_task *t = rlt_runtime_spawn(arg, nothing, NULL, NULL);
	return t;
}

static void *foreign(void *arg)
{
	(void)arg;
	rlt_stats a, b;
	snap(&a);
	void *t = NULL;
	assert_int_equal(rlt_run_blocking(NULL, spawn_from_pool, rlt_runtime_self(), &t), 0);
	assert_non_null(t);
	assert_int_equal(rlt_join(t, NULL), 0);
	snap(&b);
	assert_int_equal(b.spawned_foreign - a.spawned_foreign, 1);
	assert_int_equal(total(&b).completed - total(&a).completed, 1);
	/* The pool has its thread (alive for its keep-alive); its completed
	 * count may trail the wake-up it sent us. */
	assert_true(b.pool_threads >= 1);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	return NULL;
}

static void test_stats_foreign_spawn_and_pool(void **state)
{
	(void)state;
	rlt_test_run(foreign, NULL);
}

static void test_stats_n_spawns_n_completed(void **state)
{
	(void)state;
	rlt_test_run(spawn_n, NULL);
	rlt_test_run1(spawn_n, NULL);
}

/* ---- a forced steal ---- */

static atomic_int ran_on[2];

static void *note_worker(void *arg)
{
	(void)arg;
	int w = rlt_worker_index();
	if (w >= 0 && w < 2)
		atomic_fetch_add(&ran_on[w], 1);
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *force_steal(void *arg)
{
	(void)arg;
	assert_int_equal(rlt_worker_index(), 0); /* the root runs on worker 0 */
	rlt_stats a, b;
	snap(&a);
	atomic_store(&ran_on[0], 0);
	atomic_store(&ran_on[1], 0);
	enum { N = 16 };
	rlt_task *ts[N];
	for (int i = 0; i < N; i++)
		ts[i] = rlt_spawn(note_worker, NULL, NULL);
	/* Hold worker 0 without suspending: its queue can only run if worker
	 * 1 steals it (the spawns woke it). Bounded: 10 s. */
	uint64_t end = mono_ms() + 10000;
	while (atomic_load(&ran_on[1]) == 0 && mono_ms() < end)
		;
	assert_true(atomic_load(&ran_on[1]) > 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	snap(&b);
	assert_int_equal(b.nworkers, 2);
	uint64_t in1 = b.workers[1].stolen_in - a.workers[1].stolen_in;
	uint64_t out0 = b.workers[0].stolen_out - a.workers[0].stolen_out;
	assert_true(in1 >= 1);
	assert_true(b.workers[1].steals > a.workers[1].steals);
	/* Both sides of the same steals. */
	assert_int_equal(in1, out0);
	assert_int_equal(total(&b).stolen_in, total(&b).stolen_out);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	return NULL;
}

/* Run fn in a task pinned on worker 0 (the root itself may be stolen,
 * as any task queued where another worker can take it). */
static void *on_worker0(void *fn)
{
	rlt_task *t = rlt_test_spawn_on((rlt_task_fn)fn, NULL, 0);
	assert_int_equal(rlt_join(t, NULL), 0);
	return NULL;
}

static void test_stats_forced_steal_counts_both_sides(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(on_worker0, (void *)force_steal, &cfg, NULL), 0);
}

/* ---- the inbox's depth ---- */

#define NREMOTE 8
static rlt_future *futs[NREMOTE];
static atomic_int waiting, setter_done;

static void *await_fut(void *arg)
{
	rlt_future *f = arg;
	atomic_fetch_add(&waiting, 1);
	assert_int_equal(rlt_future_await(f, NULL, -1), 0);
	return NULL;
}

static void *set_all(void *arg)
{
	(void)arg;
	for (int i = 0; i < NREMOTE; i++)
		assert_int_equal(rlt_future_set(futs[i], NULL), 0);
	atomic_store_explicit(&setter_done, 1, memory_order_release);
	return NULL;
}

static void *remote_depth(void *arg)
{
	(void)arg;
	assert_int_equal(rlt_worker_index(), 0);
	atomic_store(&waiting, 0);
	atomic_store(&setter_done, 0);
	rlt_task *ts[NREMOTE];
	for (int i = 0; i < NREMOTE; i++) {
		futs[i] = rlt_future_new();
		ts[i] = rlt_test_spawn_on(await_fut, futs[i], 0);
	}
	while (atomic_load(&waiting) < NREMOTE)
		rlt_yield();
	rlt_yield(); /* the last one is suspended now */
	rlt_stats a, b, c;
	snap(&a);
	assert_int_equal(a.workers[0].remote_depth, 0);
	/* Worker 1 wakes all eight while we hold worker 0: they wait in its
	 * inbox, counted. Bounded: 10 s. */
	rlt_task *setter = rlt_test_spawn_on(set_all, NULL, 1);
	uint64_t end = mono_ms() + 10000;
	while (!atomic_load_explicit(&setter_done, memory_order_acquire) && mono_ms() < end)
		;
	assert_true(atomic_load(&setter_done));
	snap(&b);
	assert_int_equal(b.workers[0].remote_depth, NREMOTE);
	assert_int_equal(total(&b).remote_depth, NREMOTE);
	/* Let worker 0 take them. */
	for (int i = 0; i < NREMOTE; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	assert_int_equal(rlt_join(setter, NULL), 0);
	snap(&c);
	assert_int_equal(c.workers[0].remote_depth, 0);
	assert_true(c.workers[0].remote_in - a.workers[0].remote_in >= NREMOTE);
	for (int i = 0; i < NREMOTE; i++)
		rlt_future_release(futs[i]);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	rlt_stats_release(&c);
	return NULL;
}

static void test_stats_remote_depth_counts_the_inbox(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(on_worker0, (void *)remote_depth, &cfg, NULL), 0);
}

/* ---- a parked worker is not busy ---- */

static void *parked_not_busy(void *arg)
{
	(void)arg;
	rlt_stats a, b;
	/* Let worker 1 go to sleep (it spins 20 us at most first). */
	assert_int_equal(rlt_sleep(50 * RLT_NSEC_PER_MSEC), 0);
	snap(&a);
	assert_int_equal(rlt_sleep(300 * RLT_NSEC_PER_MSEC), 0);
	snap(&b);
	const rlt_worker_stats *w1a = &a.workers[1], *w1b = &b.workers[1];
	uint64_t up = w1b->uptime_ns - w1a->uptime_ns;
	uint64_t parked = w1b->parked_ns - w1a->parked_ns;
	uint64_t busy = w1b->busy_ns - w1a->busy_ns;
	print_message("worker 1 over %.1f ms: parked %.1f ms, busy %.3f ms, parks %llu\n",
		      (double)up / 1e6, (double)parked / 1e6, (double)busy / 1e6,
		      (unsigned long long)(w1b->parks - w1a->parks));
	assert_true(up >= 250 * RLT_NSEC_PER_MSEC);
	assert_true(parked >= 250 * RLT_NSEC_PER_MSEC);
	assert_true(busy < 20 * RLT_NSEC_PER_MSEC);
	/* Worker 0 slept too, in the root's sleep. */
	assert_true(b.workers[0].parked_ns - a.workers[0].parked_ns >= 250 * RLT_NSEC_PER_MSEC);
	assert_true(w1a->uptime_ns <= w1a->busy_ns + w1a->parked_ns + w1a->spin_ns + 1);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	return NULL;
}

static void test_stats_parked_worker_busy_time_does_not_grow(void **state)
{
	(void)state;
	rlt_config cfg = {.workers = 2};
	assert_int_equal(rlt_run(parked_not_busy, NULL, &cfg, NULL), 0);
}

/* ---- I/O and timers ---- */

static void *io_and_timers(void *arg)
{
	(void)arg;
	int p[2];
	assert_int_equal(pipe(p), 0);
	rlt_stats a, b;
	snap(&a);
	char buf[1000];
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(rlt_write_all(p[1], buf, sizeof(buf), -1), (ssize_t)sizeof(buf));
	assert_int_equal(rlt_read_full(p[0], buf, sizeof(buf), -1), (ssize_t)sizeof(buf));
	for (int i = 0; i < 5; i++)
		assert_int_equal(rlt_sleep(RLT_NSEC_PER_MSEC), 0);
	snap(&b);
	rlt_worker_stats ta = total(&a), tb = total(&b);
	assert_true(tb.bytes_written - ta.bytes_written == sizeof(buf));
	assert_true(tb.bytes_read - ta.bytes_read == sizeof(buf));
	assert_true(tb.io_ops - ta.io_ops >= 2);
	assert_true(tb.timers_armed - ta.timers_armed >= 5);
	assert_true(tb.timers_fired - ta.timers_fired >= 5);
	/* Five sleeps, with spinning off: the loop slept in the kernel,
	 * through its policy. (Not "five enters": a worker preempted for
	 * longer than a sleep finds its timer due, and its park polls without
	 * waiting, which under io_uring-sqpoll enters nothing; with spinning
	 * on, a loaded machine made that common.) */
	assert_true(tb.parks - ta.parks >= 1);
	assert_true(tb.enters - ta.enters >= 1);
	if (!strncmp(b.policy, "io_uring", 8)) {
		assert_true(tb.sqes - ta.sqes >= 2);
		assert_true(tb.cqes - ta.cqes >= 2);
	}
	assert_int_equal(tb.cq_overflows, 0);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_stats_io_bytes_timers_and_enters(void **state)
{
	(void)state;
	rlt_config cfg = {.spin_us = -1};
	assert_int_equal(rlt_run(io_and_timers, NULL, &cfg, NULL), 0);
}

/* ---- task timing: the histogram ---- */

static void *yielder(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		rlt_yield();
	return NULL;
}

static void *timing(void *arg)
{
	(void)arg;
	rlt_stats a, b;
	snap(&a);
	assert_int_equal(a.timing_on, 1);
	rlt_task *ts[100];
	for (int i = 0; i < 100; i++)
		ts[i] = rlt_spawn(yielder, NULL, NULL);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rlt_join(ts[i], NULL), 0);
	snap(&b);
	rlt_worker_stats ta = total(&a), tb = total(&b);
	uint64_t n = 0;
	for (unsigned k = 0; k < RLT_STATS_HIST_BUCKETS; k++)
		n += tb.poll_hist[k] - ta.poll_hist[k];
	/* Every resume is timed: 100 tasks x 11 runs, plus the root's. */
	assert_true(n >= 1100);
	assert_true(tb.poll_ns > ta.poll_ns);
	uint64_t p50 = rlt_stats_quantile(tb.poll_hist, 0.5);
	assert_true(p50 > 0 && p50 < RLT_NSEC_PER_SEC);
	rlt_stats_release(&a);
	rlt_stats_release(&b);
	return NULL;
}

static void test_stats_timing_fills_the_poll_histogram(void **state)
{
	(void)state;
	setenv("RINGLET_TIMING", "1", 1);
	rlt_test_run(timing, NULL);
	unsetenv("RINGLET_TIMING");
}

static void test_stats_histogram_buckets(void **state)
{
	(void)state;
	assert_int_equal(rlt_stats_bucket_upper(0), 64);
	assert_int_equal(rlt_stats_bucket_upper(1), 80);
	assert_int_equal(rlt_stats_bucket_upper(4), 128);
	/* Bounds grow, and every fourth is a power of two. */
	for (unsigned b = 1; b < RLT_STATS_HIST_BUCKETS; b++) {
		assert_true(rlt_stats_bucket_upper(b) > rlt_stats_bucket_upper(b - 1));
		if (b % 4 == 0)
			assert_int_equal(__builtin_popcountll(rlt_stats_bucket_upper(b)), 1);
	}
	uint64_t h[RLT_STATS_HIST_BUCKETS] = {0};
	assert_int_equal(rlt_stats_quantile(h, 0.5), 0);
	h[4] = 10; /* ten polls in [112, 128) ns */
	assert_int_equal(rlt_stats_quantile(h, 0.99), 128);
}

/* ---- formats ---- */

static rlt_stats fmt_snap;

static void *take_snap(void *arg)
{
	(void)arg;
	rlt_task *t = rlt_spawn(nothing, NULL, NULL);
	rlt_join(t, NULL);
	rlt_sleep(RLT_NSEC_PER_MSEC);
	snap(&fmt_snap);
	return NULL;
}

static char *format(const rlt_stats *s, int fmt)
{
	ssize_t n = rlt_stats_format(s, fmt, NULL, 0);
	assert_true(n > 0);
	char *buf = malloc((size_t)n + 1);
	assert_int_equal(rlt_stats_format(s, fmt, buf, (size_t)n + 1), n);
	assert_int_equal(strlen(buf), (size_t)n);
	/* Truncated: still NUL-terminated, still says the whole length. */
	char small[16];
	assert_int_equal(rlt_stats_format(s, fmt, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(memcmp(small, buf, sizeof(small) - 1), 0);
	return buf;
}

/* A small parser of the Prometheus text exposition format (0.0.4): every
 * line a comment (# HELP / # TYPE), or a sample `name{l="v",...} value`
 * whose family was typed first; a histogram's buckets cumulative, ending
 * at +Inf equal to _count. Returns the samples; *completed: the sum of
 * ringlet_worker_completed_total. */
static int prom_parse(char *text, double *completed)
{
	char typed[64][96];
	int ntyped = 0, samples = 0;
	double last_bucket = -1, inf = -1, count = -1;
	*completed = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#') {
			char kw[8], name[96], type[16];
			if (sscanf(line, "# %7s %95s", kw, name) != 2)
				fail_msg("bad comment: %s", line);
			if (!strcmp(kw, "TYPE")) {
				assert_int_equal(sscanf(line, "# TYPE %95s %15s", name, type), 2);
				assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
					    !strcmp(type, "histogram"));
				assert_true(ntyped < 64);
				strcpy(typed[ntyped++], name);
			} else if (strcmp(kw, "HELP") != 0) {
				fail_msg("bad comment: %s", line);
			}
			continue;
		}
		/* name */
		char *p = line;
		if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
			fail_msg("bad metric name: %s", line);
		while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
			p++;
		char name[96];
		size_t nl = (size_t)(p - line);
		assert_true(nl < sizeof(name));
		memcpy(name, line, nl);
		name[nl] = '\0';
		/* labels */
		char le[32] = "";
		if (*p == '{') {
			p++;
			while (*p != '}') {
				char *k = p;
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				assert_true(p > k);
				bool is_le = p - k == 2 && !strncmp(k, "le", 2);
				assert_int_equal(*p++, '=');
				assert_int_equal(*p++, '"');
				char *v = p;
				while (*p && *p != '"')
					p++;
				assert_int_equal(*p, '"');
				if (is_le)
					snprintf(le, sizeof(le), "%.*s", (int)(p - v), v);
				p++;
				if (*p == ',')
					p++;
				else
					assert_int_equal(*p, '}');
			}
			p++;
		}
		assert_int_equal(*p++, ' ');
		char *end;
		double v = strtod(p, &end);
		assert_true(end > p && *end == '\0');
		assert_false(isnan(v));
		/* its family was typed */
		bool found = false;
		for (int i = 0; i < ntyped && !found; i++) {
			size_t tl = strlen(typed[i]);
			found = !strcmp(name, typed[i]) ||
				(!strncmp(name, typed[i], tl) &&
				 (!strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
				  !strcmp(name + tl, "_count")));
		}
		if (!found)
			fail_msg("sample of an untyped family: %s", line);
		size_t L = strlen(name);
		if (L > 7 && !strcmp(name + L - 7, "_bucket")) {
			assert_true(le[0]);
			assert_true(v >= last_bucket); /* cumulative */
			last_bucket = v;
			if (!strcmp(le, "+Inf"))
				inf = v;
		} else if (L > 6 && !strcmp(name + L - 6, "_count")) {
			count = v;
		}
		if (!strcmp(name, "ringlet_worker_completed_total"))
			*completed += v;
		samples++;
	}
	if (last_bucket >= 0) {
		assert_true(inf >= 0);
		assert_true(inf == count);
	}
	return samples;
}

static void test_stats_prometheus_text_parses(void **state)
{
	(void)state;
	setenv("RINGLET_TIMING", "1", 1); /* the histogram too */
	rlt_test_run(take_snap, NULL);
	unsetenv("RINGLET_TIMING");
	char *text = format(&fmt_snap, RLT_STATS_PROMETHEUS);
	double completed;
	int n = prom_parse(text, &completed);
	assert_true(n > 30);
	assert_true(completed == (double)total(&fmt_snap).completed);
	assert_true(completed >= 1);
	free(text);
	rlt_stats_release(&fmt_snap);
}

static void test_stats_json_and_text(void **state)
{
	(void)state;
	rlt_test_run(take_snap, NULL);
	char *json = format(&fmt_snap, RLT_STATS_JSON);
	assert_non_null(strstr(json, "\"workers\":[{\"worker\":0,"));
	assert_null(strchr(json, '\n'));
	/* Python's json module judges it, where Python is. */
	if (access("/usr/bin/python3", X_OK) == 0) {
		char path[] = "/tmp/rlt-stats-XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
		close(fd);
		char cmd[256];
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			 "assert sum(w[\"completed\"] for w in d[\"workers\"]) >= 1' %s",
			 path);
		assert_int_equal(system(cmd), 0);
		unlink(path);
	} else {
		print_message("no /usr/bin/python3: the JSON is not parsed\n");
	}
	char *text = format(&fmt_snap, RLT_STATS_TEXT);
	assert_non_null(strstr(text, "completed"));
	assert_non_null(strstr(text, "worker 0"));
	assert_int_equal(rlt_stats_format(&fmt_snap, 99, NULL, 0), -EINVAL);
	assert_int_equal(rlt_stats_format(NULL, RLT_STATS_TEXT, NULL, 0), -EINVAL);
	free(json);
	free(text);
	rlt_stats_release(&fmt_snap);
}

static void test_stats_outside_a_runtime(void **state)
{
	(void)state;
	rlt_stats s;
	assert_int_equal(rlt_runtime_stats(NULL, &s), -EINVAL);
	rlt_stats_release(NULL);
}

/* RINGLET_STATS=1: the table on stderr as rlt_run returns. */
static void *short_main(void *arg)
{
	(void)arg;
	rlt_task *t = rlt_spawn(nothing, NULL, NULL);
	rlt_join(t, NULL);
	return NULL;
}

static void test_stats_env_prints_at_exit(void **state)
{
	(void)state;
	char err[16384];
	int st =
	    rlt_test_run_child_cfg(short_main, NULL, NULL, "RINGLET_STATS=1", err, sizeof(err));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("child status %#x, stderr:\n%s", st, err);
	assert_non_null(strstr(err, "ringlet stats: pid"));
	assert_non_null(strstr(err, "task timing on"));
	assert_non_null(strstr(err, "completed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    /* First: it forks, which ThreadSanitizer refuses once threads (the
	     * pool's, kept alive) exist. */
	    cmocka_unit_test(test_stats_env_prints_at_exit),
	    cmocka_unit_test(test_stats_n_spawns_n_completed),
	    cmocka_unit_test(test_stats_foreign_spawn_and_pool),
	    cmocka_unit_test(test_stats_forced_steal_counts_both_sides),
	    cmocka_unit_test(test_stats_parked_worker_busy_time_does_not_grow),
	    cmocka_unit_test(test_stats_remote_depth_counts_the_inbox),
	    cmocka_unit_test(test_stats_io_bytes_timers_and_enters),
	    cmocka_unit_test(test_stats_timing_fills_the_poll_histogram),
	    cmocka_unit_test(test_stats_histogram_buckets),
	    cmocka_unit_test(test_stats_prometheus_text_parses),
	    cmocka_unit_test(test_stats_json_and_text),
	    cmocka_unit_test(test_stats_outside_a_runtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
