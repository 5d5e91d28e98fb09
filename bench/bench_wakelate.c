/*
 * How late this machine wakes a sleeping thread: the floor under every
 * server's tail at a fixed rate (issue 17's latency breakdown).
 *
 *   bench_wakelate [-c CPU] [-u MICROSECONDS] [-n SLEEPS] [-s SECONDS] [-k SLACK_NS]
 *
 * No ringlet, no network. One thread pinned to CPU (default 1) sleeps until
 * an absolute deadline every MICROSECONDS (default 400: a connection's gap
 * at 50% of the echo suite's load), SLEEPS times (default 10,000), with
 * clock_nanosleep(TIMER_ABSTIME), and records how late each wake-up came.
 * Then it spins for SECONDS (default 2) reading the clock and records every
 * gap over 50 us: time the CPU was taken from a thread that never slept
 * (the hypervisor, interrupts, kernel threads). The thread's timer slack
 * is SLACK_NS (default 1000, what ringlet-load sets; Linux's default for
 * a thread is 50,000: a sleep may end that much later by design).
 *
 * A server that sleeps between events wakes no sooner than this; a load
 * generator that sleeps until a message is due sends it this late, and a
 * generator that measures from the scheduled send time (ringlet-load -R,
 * wrk2) charges the lateness to the server. On bare metal the lateness is
 * a few microseconds; on a VM whose idle vCPU halts, the host must run the
 * vCPU again first. Output: one line per measure, microseconds.
 */
#include "bench/hist.h"

#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long num(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "bench_wakelate: %s wants a number in [%ld, %ld], not '%s'\n", opt,
			lo, hi, s);
		exit(2);
	}
	return v;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

int main(int argc, char **argv)
{
	int cpu = 1;
	long period_us = 400, sleeps = 10000, spin_s = 2, slack = 1000;
	int c;
	while ((c = getopt(argc, argv, "c:u:n:s:k:")) != -1) {
		switch (c) {
		case 'c':
			cpu = (int)num("-c", optarg, 0, CPU_SETSIZE - 1);
			break;
		case 'u':
			period_us = num("-u", optarg, 1, 1000000);
			break;
		case 'n':
			sleeps = num("-n", optarg, 1, 100000000);
			break;
		case 's':
			spin_s = num("-s", optarg, 0, 3600);
			break;
		case 'k':
			slack = num("-k", optarg, 1, 1000000000);
			break;
		default:
			fprintf(stderr, "usage: bench_wakelate [-c CPU] [-u US] [-n SLEEPS] [-s "
					"SECONDS] [-k SLACK_NS]\n");
			return 2;
		}
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "bench_wakelate: CPU %d: %s\n", cpu, strerror(errno));
		return 1;
	}

	if (prctl(PR_SET_TIMERSLACK, (unsigned long)slack) < 0) {
		fprintf(stderr, "bench_wakelate: timer slack %ld: %s\n", slack, strerror(errno));
		return 1;
	}
	static hist h;
	hist_init(&h);
	uint64_t due = now_ns();
	for (long i = 0; i < sleeps; i++) {
		due += (uint64_t)period_us * 1000u;
		struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
				      .tv_nsec = (long)(due % 1000000000u)};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		uint64_t t = now_ns();
		hist_record(&h, t > due ? t - due : 0);
		if (t > due + (uint64_t)period_us * 1000u)
			due = t; /* a wake-up later than a period: no catching up in a burst */
	}
	printf("wakelate.sleep cpu %d, %ld us x %ld, slack %ld ns: late p50 %.1f p90 %.1f p99 %.1f "
	       "p99.9 %.1f "
	       "max %.1f us\n",
	       cpu, period_us, sleeps, slack, us(hist_percentile(&h, 50)),
	       us(hist_percentile(&h, 90)), us(hist_percentile(&h, 99)),
	       us(hist_percentile(&h, 99.9)), us(h.max));

	if (spin_s > 0) {
		uint64_t t0 = now_ns(), end = t0 + (uint64_t)spin_s * 1000000000u, last = t0;
		uint64_t stalled = 0, worst = 0, n = 0, n_ms = 0;
		for (;;) {
			uint64_t t = now_ns(), g = t - last;
			last = t;
			if (g > 50000) {
				n++;
				stalled += g;
				n_ms += g > 1000000;
				if (g > worst)
					worst = g;
			}
			if (t >= end)
				break;
		}
		printf("wakelate.spin cpu %d, %ld s: %llu stalls over 50 us (%llu over 1 ms), "
		       "%.2f%% of "
		       "the time, longest %.1f us\n",
		       cpu, spin_s, (unsigned long long)n, (unsigned long long)n_ms,
		       100.0 * (double)stalled / (double)(end - t0), us(worst));
	}
	return 0;
}
