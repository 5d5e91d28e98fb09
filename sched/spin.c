/* The adaptive spin policy (sched/spin.h). */
#include "sched/spin.h"

/* Moving averages weigh the newest sample 1/8 (about the last 8-16 idle
 * periods count). */
#define EWMA_SHIFT 3
/* Backoff after this many failed spins in a row, doubling, at most this
 * many parks without spinning. */
#define FAILS_BEFORE_BACKOFF 4u
#define MAX_SKIP	     64u

void rlt__spinpol_init(rlt__spinpol *p, uint64_t cap_ns)
{
	*p = (rlt__spinpol){0};
	p->cap_ns = cap_ns;
	p->park_cost = RLT__SPIN_PARK_COST0;
	/* Start cold: no spinning until gaps have been seen to be short. */
	p->gap_avg = (uint32_t)(rlt__spinpol_ref(p) * 2u);
	p->hits = 0;
}

static inline void ewma(uint32_t *avg, uint64_t sample)
{
	int64_t d = (int64_t)sample - (int64_t)*avg;
	*avg = (uint32_t)((int64_t)*avg + d / (1 << EWMA_SHIFT));
}

uint64_t rlt__spinpol_window(rlt__spinpol *p)
{
	if (p->cap_ns == 0)
		return 0;
	if (p->skip) {
		p->skip--;
		return 0;
	}
	if (p->hits < 128u)
		return 0;
	uint64_t ref = rlt__spinpol_ref(p);
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
	if (found) {
		p->n_spin_hit++;
		p->fails = 0;
	} else {
		p->n_park++;
		if (park_cpu_ns) {
			/* One outlier (a preemption inside the system call) must
			 * not make spinning look cheap: clamp the sample. */
			uint64_t c = park_cpu_ns;
			uint64_t hi = 4u * (uint64_t)p->park_cost + 1000u;
			if (c > hi)
				c = hi;
			ewma(&p->park_cost, c);
		}
		/* The wake-up added about a park's cost to the gap. */
		gap_ns = gap_ns > p->park_cost ? gap_ns - p->park_cost : 0;
		if (spun_ns) {
			if (++p->fails >= FAILS_BEFORE_BACKOFF) {
				unsigned n = p->fails - FAILS_BEFORE_BACKOFF;
				p->skip = n >= 6 ? MAX_SKIP : 1u << n;
			}
		}
	}
	uint64_t ref = rlt__spinpol_ref(p);
	uint64_t clamp = 2u * ref;
	ewma(&p->gap_avg, gap_ns < clamp ? gap_ns : clamp);
	if (gap_ns <= ref)
		p->hits +=
		    (256u - p->hits) >> EWMA_SHIFT < 1u ? 1u : (256u - p->hits) >> EWMA_SHIFT;
	else
		p->hits -= (p->hits + (1u << EWMA_SHIFT) - 1) >> EWMA_SHIFT;
	if (p->hits > 256u)
		p->hits = 256u;
}
