/*
 * histogram.c - log-bucket histogram; see histogram.h.
 *
 * Index layout: [0, 64) holds the values 0..63 exactly. For v >= 64 with
 * e = floor(log2 v) (e >= 6) the bucket is 64 + (e - 6) * 64 + the six bits
 * below the leading one. Bucket width is 2^(e-6), so width / lower bound is
 * at most 1/64 and the midpoint is within 1/128 of every value in it.
 */
#include "bench/histogram.h"

#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

uint32_t hist_index(uint64_t v)
{
	if (v >= HIST_MAX)
		return HIST_BUCKETS - 1;
	if (v < HIST_SUB)
		return (uint32_t)v;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(v);
	uint32_t shift = e - HIST_SUB_BITS;
	uint32_t mant = (uint32_t)(v >> shift) - HIST_SUB;
	return HIST_SUB + shift * HIST_SUB + mant;
}

void hist_bucket_range(uint32_t idx, uint64_t *lo, uint64_t *hi)
{
	if (idx < HIST_SUB) {
		*lo = *hi = idx;
		return;
	}
	uint32_t shift = (idx - HIST_SUB) / HIST_SUB;
	uint64_t mant = (idx - HIST_SUB) % HIST_SUB;
	*lo = (HIST_SUB + mant) << shift;
	*hi = *lo + (1ull << shift) - 1;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum = h->sum + v < h->sum ? UINT64_MAX : h->sum + v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->count == 0)
		return;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->sum = dst->sum + src->sum < dst->sum ? UINT64_MAX : dst->sum + src->sum;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	double want = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++; /* ceil without libm */
	if (rank == 0)
		rank = 1;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t lo, hi;
			hist_bucket_range(i, &lo, &hi);
			uint64_t mid = lo + (hi - lo) / 2;
			if (mid < h->min)
				mid = h->min;
			if (mid > h->max)
				mid = h->max;
			return mid;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}
