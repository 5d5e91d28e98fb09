/* The adaptive spin policy (sched/spin.h). */
#include "sched/spin.h"

/* Moving averages weigh the newest sample 1/8 (about the last 8-16 idle
 * periods count). */
#define EWMA_SHIFT 3
/* Backoff after this many failed spins in a row, doubling, at most this
 * many parks without spinning. */
#define FAILS_BEFORE_BACKOFF 4u
#define MAX_SKIP	     64u
/* While not spinning, probe (spin one reference window) after this many
 * idle periods, doubling after each failed probe up to the most. */
#define PROBE_FIRST 8u
#define PROBE_MOST  64u
/* A park whose gap exceeds this many reference windows was a miss for
 * sure, whatever the wake-up latency added to it; a shorter one says
 * nothing (its gap is the event's plus an unknown wake-up latency). */
#define SURE_MISS 8u

void rlt__spinpol_init(rlt__spinpol *p, uint64_t cap_ns)
{
	*p = (rlt__spinpol){0};
	p->cap_ns = cap_ns;
	p->park_cost = RLT__SPIN_PARK_COST0;
	/* Start cold: no spinning until a probe has seen a short gap. */
	p->gap_avg = (uint32_t)(rlt__spinpol_ref(p) * 2u);
	p->hits = 0;
	p->probe_every = PROBE_FIRST;
	p->probe_in = PROBE_FIRST;
}

static inline void ewma(uint32_t *avg, uint64_t sample)
{
	int64_t d = (int64_t)sample - (int64_t)*avg;
	*avg = (uint32_t)((int64_t)*avg + d / (1 << EWMA_SHIFT));
}

static inline void hit(rlt__spinpol *p)
{
	uint32_t up = (256u - p->hits) >> EWMA_SHIFT;
	p->hits += up ? up : 1u;
	if (p->hits > 256u)
		p->hits = 256u;
}

static inline void miss(rlt__spinpol *p)
{
	p->hits -= (p->hits + (1u << EWMA_SHIFT) - 1) >> EWMA_SHIFT;
}

uint64_t rlt__spinpol_window(rlt__spinpol *p)
{
	p->probing = false;
	if (p->cap_ns == 0)
		return 0;
	if (p->skip) {
		p->skip--;
		return 0;
	}
	uint64_t ref = rlt__spinpol_ref(p);
	if (p->hits < 128u) {
		/* Not spinning: a parked gap cannot tell a short event from a
		 * slow wake-up, so look now and then, for one reference window. */
		if (p->probe_in > 1) {
			p->probe_in--;
			return 0;
		}
		p->probing = true;
		p->n_spin++;
		return ref;
	}
	uint64_t w = 2u * (uint64_t)p->gap_avg + RLT__SPIN_MIN_NS;
	if (w > ref)
		w = ref;
	if (w < RLT__SPIN_MIN_NS)
		return 0;
	p->n_spin++;
	return w;
}

void rlt__spinpol_record(rlt__spinpol *p, uint64_t spun_ns, bool found, uint64_t gap_ns,
			 uint64_t park_cpu_ns)
{
	uint64_t ref = rlt__spinpol_ref(p);
	uint64_t clamp = 2u * ref;
	bool probe = p->probing;
	p->probing = false;
	if (park_cpu_ns) {
		/* One outlier (a preemption inside the system call) must not
		 * make spinning look cheap: clamp the sample. */
		uint64_t c = park_cpu_ns;
		uint64_t hi = 4u * (uint64_t)p->park_cost + 1000u;
		if (c > hi)
			c = hi;
		ewma(&p->park_cost, c);
	}
	if (found) {
		/* A spin found work after gap_ns: a hit. */
		p->n_spin_hit++;
		p->fails = 0;
		ewma(&p->gap_avg, gap_ns < clamp ? gap_ns : clamp);
		hit(p);
		if (probe) {
			/* Events are dense again: one probe is enough to start. */
			if (p->hits < 160u)
				p->hits = 160u;
			p->probe_every = PROBE_FIRST;
		}
	} else {
		p->n_park++;
		if (spun_ns) {
			/* The gap was longer than the spin: a miss. */
			ewma(&p->gap_avg, clamp);
			miss(p);
			if (probe) {
				if (p->probe_every < PROBE_MOST)
					p->probe_every *= 2u;
			} else if (++p->fails >= FAILS_BEFORE_BACKOFF) {
				unsigned n = p->fails - FAILS_BEFORE_BACKOFF;
				p->skip = n >= 6 ? MAX_SKIP : 1u << n;
			}
		} else if (gap_ns > SURE_MISS * ref) {
			ewma(&p->gap_avg, clamp);
			miss(p);
		}
	}
	if (probe)
		p->probe_in = p->probe_every;
}

void rlt__spineco_init(rlt__spineco *e)
{
	*e = (rlt__spineco){0};
	e->prefer = e->spin = true;
	e->hold = e->left = 1;
}

/* Fold an epoch's cost in: half weight, so a trial moves the estimate
 * well but one odd epoch does not own it. */
static void eco_fold(uint64_t *avg, uint64_t c)
{
	*avg = *avg ? (*avg + c) / 2u : c;
}

void rlt__spineco_epoch(rlt__spineco *e, uint64_t wall_ns, uint64_t cpu_ns, uint64_t runs,
			uint64_t spun_ns)
{
	bool was = e->spin;
	bool trial = was != e->prefer;
	if (runs < RLT__ECO_MIN_RUNS || (was && spun_ns < wall_ns / 16u)) {
		/* Nothing to learn. A spinning trial that hardly spun: spinning
		 * is not where the CPU goes, so allowing it costs nothing. */
		if (trial && was) {
			e->prefer = true;
			e->n_switch++;
			e->hold = e->left = 1;
		}
		e->spin = e->prefer;
		return;
	}
	e->n_epochs++;
	eco_fold(&e->cost[was], cpu_ns / runs);
	if (trial || !e->cost[!was]) {
		/* Judge: the kept mode against the other, both measured. */
		if (e->cost[0] && e->cost[1]) {
			bool spin_wins = e->cost[0] + e->cost[0] / 16u >= e->cost[1];
			if (spin_wins != e->prefer) {
				e->prefer = spin_wins;
				e->n_switch++;
				e->hold = 1;
			} else if (e->hold < RLT__ECO_HOLD_MAX) {
				e->hold *= 2u;
			}
			e->left = e->hold;
		} else if (!e->cost[!was]) {
			/* The other mode was never measured: try it next. */
			e->spin = !was;
			return;
		}
		e->spin = e->prefer;
		return;
	}
	if (e->left > 1) {
		e->left--;
		e->spin = e->prefer;
	} else {
		e->spin = !e->prefer; /* a trial of the other mode */
	}
}
