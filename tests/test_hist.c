/* The benchmarks' latency histogram (bench/hist.h): exact small values,
 * bounded relative error everywhere else, percentiles, merging. */
#include "tests/rlt_test.h"

#include "bench/hist.h"

#include <stdlib.h>

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static hist *new_hist(void)
{
	hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	hist_init(h);
	return h;
}

static void test_buckets_are_contiguous_and_cover_every_value(void **state)
{
	/* Each bucket starts one past the end of the one before it. */
	assert_int_equal(hist_lowest(0), 0);
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		assert_true(hist_lowest(i) == hist_highest(i - 1) + 1);
	assert_true(hist_highest(HIST_BUCKETS - 1) == UINT64_MAX);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		assert_int_equal(hist_index(hist_lowest(i)), i);
		assert_int_equal(hist_index(hist_highest(i)), i);
	}
}

static void test_values_below_256_are_exact(void **state)
{
	for (uint64_t v = 0; v < 256; v++) {
		unsigned i = hist_index(v);
		assert_true(hist_lowest(i) == v && hist_highest(i) == v);
	}
}

static void test_every_value_is_kept_within_the_precision(void **state)
{
	uint64_t seed = 42;
	for (int k = 0; k < 200000; k++) {
		/* Every magnitude: a random number shifted by a random amount. */
		uint64_t v = xorshift(&seed);
		v >>= xorshift(&seed) % 64;
		unsigned i = hist_index(v);
		assert_true(i < HIST_BUCKETS);
		assert_true(hist_lowest(i) <= v && v <= hist_highest(i));
		double width = (double)(hist_highest(i) - hist_lowest(i));
		assert_true(width <= (double)v * HIST_PRECISION);
	}
}

static void test_percentiles_of_1_to_100000_are_within_the_precision(void **state)
{
	hist *h = new_hist();
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	assert_true(h->count == 100000);
	assert_true(h->min == 1 && h->max == 100000);
	assert_true(hist_mean(h) > 50000.4 && hist_mean(h) < 50000.6);
	static const double ps[] = {0.1, 1, 10, 50, 90, 99, 99.9, 99.99};
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		double exact = ps[k] * 1000.0; /* the value at rank p% of 100000 */
		double got = (double)hist_percentile(h, ps[k]);
		/* Never below the exact value, at most one bucket above it. */
		assert_true(got >= exact - 0.5);
		assert_true(got <= exact * (1.0 + HIST_PRECISION) + 1.0);
	}
	assert_true(hist_percentile(h, 0) == 1);
	assert_true(hist_percentile(h, 100) == 100000);
	free(h);
}

static void test_percentile_of_a_lone_outlier_is_clamped_to_max(void **state)
{
	hist *h = new_hist();
	hist_record_n(h, 1000, 999);
	hist_record(h, 123456789);
	/* 1000 is reported as the top of its bucket, [1000, 1003]. */
	uint64_t top = hist_highest(hist_index(1000));
	assert_true(top >= 1000 && top <= 1000 + 1000 * HIST_PRECISION);
	assert_true(hist_percentile(h, 50) == top);
	assert_true(hist_percentile(h, 99.9) == top);
	/* The last value's bucket ends above it: report the value itself. */
	assert_true(hist_percentile(h, 99.95) == 123456789);
	assert_true(hist_percentile(h, 100) == 123456789);
	free(h);
}

static void test_empty_histogram_reports_zero(void **state)
{
	hist *h = new_hist();
	assert_true(hist_percentile(h, 50) == 0);
	assert_true(hist_mean(h) == 0.0);
	hist_record_n(h, 7, 0);
	assert_true(h->count == 0);
	free(h);
}

static void test_merge_equals_recording_everything_in_one(void **state)
{
	hist *a = new_hist(), *b = new_hist(), *all = new_hist();
	uint64_t seed = 7;
	for (int k = 0; k < 50000; k++) {
		uint64_t v = xorshift(&seed) >> (xorshift(&seed) % 64);
		hist_record(k % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_merge(a, b);
	assert_true(a->count == all->count);
	assert_true(a->min == all->min && a->max == all->max);
	assert_memory_equal(a->counts, all->counts, sizeof(a->counts));
	for (double p = 0; p <= 100; p += 0.5)
		assert_true(hist_percentile(a, p) == hist_percentile(all, p));
	free(a);
	free(b);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets_are_contiguous_and_cover_every_value),
	    cmocka_unit_test(test_values_below_256_are_exact),
	    cmocka_unit_test(test_every_value_is_kept_within_the_precision),
	    cmocka_unit_test(test_percentiles_of_1_to_100000_are_within_the_precision),
	    cmocka_unit_test(test_percentile_of_a_lone_outlier_is_clamped_to_max),
	    cmocka_unit_test(test_empty_histogram_reports_zero),
	    cmocka_unit_test(test_merge_equals_recording_everything_in_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
