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

/*
 * The economy check above the policy: does spinning save CPU per unit of
 * work, measured, not modelled?
 *
 * The policy compares one gap with one park's cost, as if every park
 * served one event. Under many connections it does not: while a worker
 * sleeps and wakes, several events gather and one turn serves them all,
 * so a park's cost is shared, where a spinning worker meets each event
 * alone (and pays a turn, a submit and the spin for each). Measured on the
 * echo server at 25% and 50% of its peak over 50 connections: spinning
 * cost 2.2x and 1.5x the CPU per message of not spinning, at the same
 * throughput.
 *
 * So the worker runs in epochs (4 ms of wall time or more, until they
 * hold RLT__ECO_MIN_RUNS runs or reach 64 ms, ended at an idle point),
 * each either with spinning allowed (the policy decides) or with no
 * spinning at all, and measures each epoch's thread CPU time per task run
 * (the unit of work both modes share). It keeps the mode that costs less
 * per run, trying the other one for one epoch now and then: after 1
 * epoch, then 2, 4 ... 64 while the kept mode keeps winning (a trial every
 * ~quarter of a second at most when stable). Ties go to spinning (it buys
 * latency): parking must be cheaper by 1/16 to win. An epoch with little
 * work (fewer than RLT__ECO_MIN_RUNS runs) or, with spinning allowed,
 * little spinning (under 1/16 of its time) teaches nothing: there spinning
 * is not what the CPU goes to (a trial of parking without a verdict is
 * tried again after the usual hold, not at once).
 *
 * Pure arithmetic like the policy: the worker reads the clocks and counts.
 */
typedef struct rlt__spineco {
	uint64_t cost[2];  /* ns of CPU per run: [0] no spinning, [1] spinning (0: unknown) */
	uint32_t hold;	   /* epochs between trials of the other mode */
	uint32_t left;	   /* epochs left before the next trial */
	bool prefer;	   /* the mode kept: true = spinning allowed */
	bool spin;	   /* this epoch's mode */
	uint64_t n_epochs; /* stats: epochs judged */
	uint64_t n_switch; /* stats: times the kept mode changed */
} rlt__spineco;

#define RLT__ECO_EPOCH_NS     4000000u	/* an epoch: at least 4 ms of wall time, */
#define RLT__ECO_EPOCH_MAX_NS 64000000u /* and RLT__ECO_MIN_RUNS runs or 64 ms */
#define RLT__ECO_MIN_RUNS     64u	/* fewer runs in an epoch: not judged */
#define RLT__ECO_HOLD_MAX     64u

void rlt__spineco_init(rlt__spineco *e);

/* An epoch ended: wall_ns long, cpu_ns of this thread's CPU time, runs
 * tasks run, spun_ns of it spinning. Sets e->spin, the next epoch's mode. */
void rlt__spineco_epoch(rlt__spineco *e, uint64_t wall_ns, uint64_t cpu_ns, uint64_t runs,
			uint64_t spun_ns);

/* May a worker spin at all, CPU-wise? Not with more workers than CPUs (a
 * worker being woken is not yet counted awake and may be queued behind
 * the spinner), nor when the workers not parked (the caller included) and
 * the pool jobs running would want more CPUs than there are: a spinner
 * would take the CPU from one of them. */
static inline bool rlt__spin_cpus_ok(unsigned nworkers, unsigned awake, unsigned jobs,
				     unsigned ncpus)
{
	return nworkers <= ncpus && awake + jobs <= ncpus;
}

#endif
