/*
 * test_bench_histogram.c - the latency histogram of mote bench: bucket
 * layout, percentiles on known distributions (exact expected values within
 * the documented 1/128 relative error), merging and edge cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/bench.h"
#include "bench/histogram.h"

/* |got - want| <= want/128 (+1 for integer rounding of bucket middles). */
static void assert_close(uint64_t got, uint64_t want)
{
	uint64_t tol = want / 128 + 1;
	uint64_t diff = got > want ? got - want : want - got;
	if (diff > tol)
		fail_msg("got %llu, want %llu +- %llu", (unsigned long long)got,
			 (unsigned long long)want, (unsigned long long)tol);
}

static struct hist *new_hist(void)
{
	struct hist *h = malloc(sizeof *h);
	assert_non_null(h);
	hist_init(h);
	return h;
}

static void test_small_values_exact(void **state)
{
	(void)state;
	struct hist *h = new_hist();
	for (uint64_t v = 1; v <= 10; v++)
		hist_record(h, v);
	assert_int_equal(h->count, 10);
	assert_int_equal(hist_percentile(h, 50), 5);
	assert_int_equal(hist_percentile(h, 90), 9);
	assert_int_equal(hist_percentile(h, 99), 10);
	assert_int_equal(hist_percentile(h, 100), 10);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 10);
	assert_true(hist_mean(h) > 5.49 && hist_mean(h) < 5.51);
	free(h);
}

static void test_bucket_layout(void **state)
{
	(void)state;
	/* Every value lies inside its bucket and buckets are 1/64 wide at most. */
	uint64_t probes[] = { 0, 1, 63, 64, 65, 127, 128, 129, 1000, 4095, 4096, 123456789,
			      (1ull << 39) + 12345 };
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		uint64_t lo, hi;
		uint32_t idx = hist_index(probes[i]);
		assert_true(idx < HIST_BUCKETS);
		hist_bucket_range(idx, &lo, &hi);
		assert_true(lo <= probes[i] && probes[i] <= hi);
		assert_true((hi - lo + 1) * 64 <= (lo > 64 ? lo : 64));
	}
	/* Consecutive buckets tile the line with no gap. */
	for (uint32_t idx = 0; idx + 1 < HIST_BUCKETS; idx++) {
		uint64_t lo1, hi1, lo2, hi2;
		hist_bucket_range(idx, &lo1, &hi1);
		hist_bucket_range(idx + 1, &lo2, &hi2);
		assert_int_equal(hi1 + 1, lo2);
	}
	assert_int_equal(hist_index(64), 64);
	assert_int_equal(hist_index(128), 128);
	assert_int_equal(hist_index(130), 129);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
}

static void test_uniform(void **state)
{
	(void)state;
	struct hist *h = new_hist();
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	assert_close(hist_percentile(h, 50), 50000);
	assert_close(hist_percentile(h, 90), 90000);
	assert_close(hist_percentile(h, 99), 99000);
	assert_close(hist_percentile(h, 99.9), 99900);
	assert_int_equal(hist_percentile(h, 100), 100000);
	assert_int_equal(h->max, 100000);
	free(h);
}

static void test_bimodal(void **state)
{
	(void)state;
	/* 95% at 200 us, 5% at 50 ms: p50/p90 see the fast mode, p99 the slow one. */
	struct hist *h = new_hist();
	for (int i = 0; i < 9500; i++)
		hist_record(h, 200);
	for (int i = 0; i < 500; i++)
		hist_record(h, 50000);
	assert_close(hist_percentile(h, 50), 200);
	assert_close(hist_percentile(h, 90), 200);
	assert_close(hist_percentile(h, 95), 200);
	assert_close(hist_percentile(h, 95.01), 50000);
	assert_close(hist_percentile(h, 99), 50000);
	assert_int_equal(h->max, 50000);
	assert_int_equal(h->min, 200);
	free(h);
}

static void test_geometric(void **state)
{
	(void)state;
	/* Values 2^k, k = 0..19, 100 each: percentile q*20 % lands on 2^(q*20-1). */
	struct hist *h = new_hist();
	for (int k = 0; k < 20; k++)
		for (int i = 0; i < 100; i++)
			hist_record(h, 1ull << k);
	assert_close(hist_percentile(h, 50), 1ull << 9);
	assert_close(hist_percentile(h, 90), 1ull << 17);
	assert_close(hist_percentile(h, 99), 1ull << 19);
	free(h);
}

static void test_merge_and_empty(void **state)
{
	(void)state;
	struct hist *a = new_hist(), *b = new_hist();
	assert_int_equal(hist_percentile(a, 50), 0);
	assert_true(hist_mean(a) == 0.0);
	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(v <= 500 ? a : b, v * 10);
	hist_merge(a, b);
	assert_int_equal(a->count, 1000);
	assert_int_equal(a->min, 10);
	assert_int_equal(a->max, 10000);
	assert_close(hist_percentile(a, 50), 5000);
	assert_close(hist_percentile(a, 99), 9900);
	/* Huge values clamp to the last bucket but max stays exact. */
	hist_record(a, UINT64_MAX - 5);
	assert_int_equal(a->max, UINT64_MAX - 5);
	assert_int_equal(hist_percentile(a, 100), UINT64_MAX - 5);
	free(a);
	free(b);
}

static void test_topic_patterns(void **state)
{
	(void)state;
	char buf[64];
	size_t n = 0;
	assert_int_equal(bench_topic("bench/%i", 7, 2, buf, sizeof buf, &n), MOTE_OK);
	assert_string_equal(buf, "bench/7");
	assert_int_equal(n, 7);
	assert_int_equal(bench_topic("t%t/c%i/100%%", 12, 3, buf, sizeof buf, &n), MOTE_OK);
	assert_string_equal(buf, "t3/c12/100%");
	assert_int_equal(bench_topic("bench/%i", 7, 2, buf, 5, &n), MOTE_ENOSPC);
	assert_int_equal(bench_topic_filter("bench/%i", buf, sizeof buf, &n), MOTE_OK);
	assert_string_equal(buf, "bench/+");
	assert_int_equal(bench_topic_filter("a/t%t/x/c%i", buf, sizeof buf, &n), MOTE_OK);
	assert_string_equal(buf, "a/+/x/+");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_bucket_layout),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_bimodal),
		cmocka_unit_test(test_geometric),
		cmocka_unit_test(test_merge_and_empty),
		cmocka_unit_test(test_topic_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
