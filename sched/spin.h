/*
 * When a worker that ran out of work should spin before it sleeps, and for
 * how long (RINGLET_SPIN=adaptive, the default).
 *
 * Spinning buys latency (a wake-up that arrives while we spin costs no
 * kernel sleep and wake, ~5-30 us on a VM) and costs CPU (every ns spun).
 * It pays when the next event usually comes within about the CPU cost of
 * one park (the system call that sleeps, the wake-up, the context
 * switches): then the spin costs no more CPU than the park it saves, and
 * the wake-up latency is gone. Go and tokio do not spin on a clock at all
 * (Go's spinning Ms make a few steal rounds, at most half the busy Ps spin;
 * tokio searches once, then parks in its driver); ringlet's workers sleep
 * in the ring, where a poll costs nothing, so a short, measured spin is
 * worth keeping where events are dense, and only there.
 *
 * The policy is per worker, fed one record per idle period:
 *   - a spin that found work: a hit, and its gap (running dry to work);
 *   - a spin that ended in a park: a miss (the gap exceeded the window);
 *   - a park without a spin: a miss only when the gap was far beyond the
 *     reference window (8x); otherwise it says nothing, since a parked gap
 *     is the event's plus the wake-up's latency, which on a loaded machine
 *     is many times the event's own;
 *   - the park's CPU cost (thread CPU time across the sleeping poll: the
 *     system call, the scheduler in and out), averaged.
 * The reference window is min(cap, 2 x park cost): a spin that short costs
 * no more CPU than the park it saves. The policy spins while its moving hit
 * rate is at least 1/2, for about twice the recent typical gap (never longer
 * than the reference window). While it does not spin it probes: one spin
 * of the reference window after 8 idle periods, then after 16, 32, 64 as
 * probes keep failing (at most one in 64 idle periods, each at most the
 * reference window: well under 0.1% of a CPU when events are a millisecond
 * apart); a probe that finds work starts spinning again. Spins that keep
 * ending in a park back off exponentially (a skip count of idle periods
 * that park at once).
 *
 * Pure arithmetic, no clock, no atomics: the worker supplies the times
 * (tests/test_sched_spin.c feeds it gaps directly).
 */
#ifndef RLT_SCHED_SPIN_H
#define RLT_SCHED_SPIN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rlt__spinpol {
	uint64_t cap_ns;      /* never spin longer (RINGLET_SPIN_US) */
	uint32_t park_cost;   /* ns: moving average of a park's CPU cost */
	uint32_t gap_avg;     /* ns: moving average of gaps, clamped */
	uint32_t hits;	      /* 0..256: moving rate of gaps within the reference window */
	uint32_t fails;	      /* spins in a row that ended in a park */
	uint32_t skip;	      /* idle periods left that park without spinning */
	uint32_t probe_every; /* while not spinning: idle periods between probes */
	uint32_t probe_in;    /* idle periods left until the next probe */
	bool probing;	      /* the window just given is a probe */
	uint64_t n_spin;      /* stats: spins started */
	uint64_t n_spin_hit;  /* spins that found work */
	uint64_t n_park;      /* parks */
} rlt__spinpol;

/* Initial park cost before any is measured: a sleep and wake on a VM. */
#define RLT__SPIN_PARK_COST0 5000u
/* Shortest window worth starting a spin for. */
#define RLT__SPIN_MIN_NS 500u

void rlt__spinpol_init(rlt__spinpol *p, uint64_t cap_ns);

/* Reference window: a gap within it is a hit. */
static inline uint64_t rlt__spinpol_ref(const rlt__spinpol *p)
{
	uint64_t ref = 2u * (uint64_t)p->park_cost;
	return ref < p->cap_ns ? ref : p->cap_ns;
}

/* The worker ran dry: how long to spin before parking (0: park now). */
uint64_t rlt__spinpol_window(rlt__spinpol *p);

/* The idle period ended. spun_ns: time spent spinning (0: none); found:
 * the spin found work (no park); gap_ns: from running dry to work found
 * (for a park: to the wake-up); park_cpu_ns: the park's CPU cost as
 * measured (0: not measured, or no park). */
void rlt__spinpol_record(rlt__spinpol *p, uint64_t spun_ns, bool found, uint64_t gap_ns,
			 uint64_t park_cpu_ns);

#endif
