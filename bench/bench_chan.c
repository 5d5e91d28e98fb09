/*
 * Channels: what a value costs to pass from one task to another.
 *
 *   chan.handoff.1w.cap0   ns per value, a sender and a receiver task on one
 *                          worker, capacity 0: every value is a rendezvous,
 *                          the receiver runs next (the LIFO slot).
 *   chan.handoff.1w.cap64  the same with capacity 64: the sender fills the
 *                          buffer, then the receiver drains it.
 *   chan.handoff.1w        the better of the two (the target).
 *   chan.handoff.2w.cap0   ns per value, sender and receiver pinned to two
 *   chan.handoff.2w.cap64  different workers (wakes cross threads).
 *   chan.handoff.2w        the better of the two.
 *   chan.mpmc              values per second, 4 senders and 4 receivers on
 *                          2 workers, capacity 64.
 *
 * Each measurement is one rlt_run() with a fresh channel; the runtime's
 * start is outside the timed part.
 */
#include "bench_common.h"
#include <ringlet.h>

#define MPMC_N 4

struct job {
	rlt_chan *ch;
	long n;		/* values per sender */
	unsigned nsend; /* senders (= receivers) */
	unsigned workers;
	double result; /* ns per value, or values per second */
};

static void *sender(void *arg)
{
	struct job *j = arg;
	for (long i = 0; i < j->n; i++)
		if (rlt_chan_send(j->ch, (void *)(uintptr_t)(i + 1)) < 0)
			abort();
	return NULL;
}

static void *receiver(void *arg)
{
	struct job *j = arg;
	uintptr_t sum = 0;
	void *v;
	while (rlt_chan_recv(j->ch, &v) == 0)
		sum += (uintptr_t)v;
	BENCH_KEEP(sum);
	return NULL;
}

static rlt_task *spawn_on(rlt_task_fn fn, void *arg, unsigned worker)
{
	/* RINGLET_WORKERS wins over rlt_config.workers. */
	rlt_spawn_opts o = {.flags = RLT_SPAWN_ON_WORKER | RLT_SPAWN_PINNED,
			    .worker = worker % rlt_runtime_workers(rlt_runtime_self())};
	rlt_task *t = rlt_spawn(fn, arg, &o);
	if (!t) {
		fprintf(stderr, "bench_chan: rlt_spawn: %s\n", strerror(errno));
		exit(1);
	}
	return t;
}

static void *root(void *arg)
{
	struct job *j = arg;
	rlt_task *s[MPMC_N], *r[MPMC_N];
	uint64_t t0 = bench_wall_ns();
	/* Receivers first, senders on the other worker (if there is one). */
	for (unsigned i = 0; i < j->nsend; i++)
		r[i] = spawn_on(receiver, j, i % j->workers);
	for (unsigned i = 0; i < j->nsend; i++)
		s[i] = spawn_on(sender, j, (i + 1) % j->workers);
	for (unsigned i = 0; i < j->nsend; i++)
		rlt_join(s[i], NULL);
	rlt_chan_close(j->ch);
	for (unsigned i = 0; i < j->nsend; i++)
		rlt_join(r[i], NULL);
	uint64_t dt = bench_wall_ns() - t0;
	double values = (double)j->n * j->nsend;
	j->result = j->nsend > 1 ? values / ((double)dt / 1e9) : (double)dt / values;
	return NULL;
}

static double measure(size_t cap, long n, unsigned nsend, unsigned workers)
{
	struct job j = {rlt_chan_new(cap), n, nsend, workers, 0};
	rlt_config cfg = {.workers = workers};
	if (!j.ch) {
		perror("bench_chan: rlt_chan_new");
		exit(1);
	}
	int rc = rlt_run(root, &j, &cfg, NULL);
	if (rc < 0) {
		fprintf(stderr, "bench_chan: rlt_run: %s\n", strerror(-rc));
		exit(1);
	}
	rlt_chan_free(j.ch);
	return j.result;
}

/* The cap0 and cap64 series of a hand-off metric, then their better median
 * under the metric's own name. */
static void bench_handoff(const bench_opts *o, const char *name, const char *n0, const char *n64,
			  unsigned workers, long n)
{
	if (!bench_want(o, name) && !bench_want(o, n0) && !bench_want(o, n64))
		return;
	bench_series s0, s64, best;
	bench_series_init(&s0, n0, "ns_per_value");
	bench_series_init(&s64, n64, "ns_per_value");
	bench_series_init(&best, name, "ns_per_value");
	measure(0, n / 10, 1, workers); /* warm-up */
	for (int r = 0; r < o->reps; r++) {
		bench_record(&s0, measure(0, n, 1, workers));
		bench_record(&s64, measure(64, n, 1, workers));
	}
	bench_print_median(&s0);
	bench_print_median(&s64);
	double m0 = bench_median(&s0), m64 = bench_median(&s64);
	best.v[0] = m0 < m64 ? m0 : m64;
	best.n = 1;
	bench_print_median(&best);
}

int main(int argc, char **argv)
{
	bench_opts o = bench_parse(argc, argv);
	long n1 = o.quick ? 500000 : 2000000;
	long n2 = o.quick ? 100000 : 500000;
	long nm = o.quick ? 100000 : 400000; /* per sender */
	printf("# chan.handoff.1w: %ld values; chan.handoff.2w: %ld; chan.mpmc: %d x %ld\n", n1, n2,
	       MPMC_N, nm);
	bench_handoff(&o, "chan.handoff.1w", "chan.handoff.1w.cap0", "chan.handoff.1w.cap64", 1,
		      n1);
	bench_handoff(&o, "chan.handoff.2w", "chan.handoff.2w.cap0", "chan.handoff.2w.cap64", 2,
		      n2);
	if (bench_want(&o, "chan.mpmc")) {
		bench_series s;
		bench_series_init(&s, "chan.mpmc", "values_per_s");
		measure(64, nm / 10, MPMC_N, 2);
		for (int r = 0; r < o.reps; r++)
			bench_record(&s, measure(64, nm, MPMC_N, 2));
		bench_print_median(&s);
	}
	return 0;
}
