/*
 * A log-linear latency histogram, after HdrHistogram: values (nanoseconds,
 * or any uint64_t) are counted in buckets whose width grows with the value,
 * so that every value is kept to within HIST_PRECISION of itself
 * (1/128 = 0.8%) across the whole 64-bit range, in a fixed 58 KiB array.
 *
 * Layout. With S = HIST_SUB_BITS (8) and H = 2^(S-1) (128):
 *   - values below 2^S get a bucket each (index = value: exact);
 *   - a larger value v with highest set bit m (2^m <= v < 2^(m+1)) is
 *     shifted right by b = m - S + 1, which leaves a sub-bucket
 *     v >> b in [H, 2H); its index is b*H + (v >> b).
 * Indices are contiguous and increase with the value; bucket i covers
 * [hist_lowest(i), hist_highest(i)], of width 2^b, and 2^b / (H << b) is
 * the precision.
 *
 * Not thread-safe: give each thread (or each ringlet worker) its own and
 * merge them at the end. Recording is a count increment and a few
 * instructions, no allocation.
 */
#ifndef RLT_BENCH_HIST_H
#define RLT_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS  8
#define HIST_HALF      (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS   ((64u - HIST_SUB_BITS + 1u) * HIST_HALF + HIST_HALF)
#define HIST_PRECISION (1.0 / HIST_HALF)

typedef struct hist {
	uint64_t count; /* values recorded */
	uint64_t min, max;
	double sum; /* for the mean; a double does not overflow */
	uint64_t counts[HIST_BUCKETS];
} hist;

static inline void hist_init(hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline unsigned hist_index(uint64_t v)
{
	if (v < (1u << HIST_SUB_BITS))
		return (unsigned)v;
	unsigned b = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS + 1;
	return b * HIST_HALF + (unsigned)(v >> b);
}

/* The smallest and largest value that land in bucket i. */
static inline uint64_t hist_lowest(unsigned i)
{
	if (i < (1u << HIST_SUB_BITS))
		return i;
	unsigned b = i / HIST_HALF - 1, sub = i % HIST_HALF + HIST_HALF;
	return (uint64_t)sub << b;
}

static inline uint64_t hist_highest(unsigned i)
{
	if (i < (1u << HIST_SUB_BITS))
		return i;
	unsigned b = i / HIST_HALF - 1;
	return hist_lowest(i) + (((uint64_t)1 << b) - 1);
}

static inline void hist_record_n(hist *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	h->counts[hist_index(v)] += n;
	h->count += n;
	h->sum += (double)v * (double)n;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void hist_record(hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

/* dst += src. */
static inline void hist_merge(hist *dst, const hist *src)
{
	if (src->count == 0)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/*
 * The value at percentile p (0..100): the smallest recorded value such that
 * p% of the values (rounded to a whole count) are at or below it, reported as the highest
 * value of its bucket (as HdrHistogram does, so a percentile never
 * understates), clamped to [min, max]. 0 for an empty histogram.
 */
static inline uint64_t hist_percentile(const hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p < 0.0)
		p = 0.0;
	if (p > 100.0)
		p = 100.0;
	/* The rank of the value wanted, 1-based, rounded to the nearest as
	 * HdrHistogram does (a ceiling would turn 99.9% of 1000, computed
	 * as 999.0000000000001, into rank 1000); at least 1. */
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.5);
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = hist_highest(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

static inline double hist_mean(const hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

#endif
