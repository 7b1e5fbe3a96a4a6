/*
 * histogram.h - a log-bucket latency histogram (HDR-like) for mote bench.
 *
 * Values below 64 have a bucket each (exact). Above, every power of two
 * [2^e, 2^(e+1)) is split into 64 equal sub-buckets, so a reported value is
 * within 1/128 (< 0.8%) of any value recorded in its bucket. Values at or
 * above HIST_MAX are counted in the last bucket; min and max are exact.
 *
 * The struct is plain data of fixed size: no allocation, one per thread,
 * merged with hist_merge at the end. Not thread-safe.
 */
#ifndef MOTE_BENCH_HISTOGRAM_H
#define MOTE_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 6u
#define HIST_SUB (1u << HIST_SUB_BITS)      /* 64 sub-buckets per power of two */
#define HIST_TOP_EXP 40u                    /* values up to 2^40 (us: ~12 days) */
#define HIST_MAX (1ull << HIST_TOP_EXP)
#define HIST_BUCKETS (HIST_SUB + (HIST_TOP_EXP - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum; /* for the mean; saturates instead of wrapping */
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* Adds every count of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/*
 * The value at percentile p (0 < p <= 100): the smallest bucket whose
 * cumulative count reaches ceil(p/100 * count), reported as the middle of
 * that bucket clamped to [min, max]. 0 when the histogram is empty.
 */
uint64_t hist_percentile(const struct hist *h, double p);
/* Mean of recorded values, 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket index of v and the bucket's [lo, hi] range (exposed for tests). */
uint32_t hist_index(uint64_t v);
void hist_bucket_range(uint32_t idx, uint64_t *lo, uint64_t *hi);

#endif
