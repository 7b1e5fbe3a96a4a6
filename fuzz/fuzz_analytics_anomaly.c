/* fuzz_analytics_anomaly.c - the detector fed arbitrary points (any double,
 * any timestamp, NaN, infinities, reordering) and arbitrary snapshots: every
 * score is in [0, 1], the state stays finite, and a restore either refuses
 * the bytes or yields a state that steps safely. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "analytics/anomaly.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct mote_anomaly *a)
{
	if (!isfinite(a->level) || !isfinite(a->scale) || !isfinite(a->lo) || !isfinite(a->hi) ||
	    !isfinite(a->lmean) || !isfinite(a->lvar) || !isfinite(a->short_sum) || !isfinite(a->dt) ||
	    a->lo > a->hi)
		__builtin_trap();
}

static void feed(struct mote_anomaly *a, const uint8_t *data, size_t size)
{
	/* 16 bytes per point: a timestamp delta and a raw double */
	int64_t ts = 0;
	for (size_t off = 0; off + 16 <= size; off += 16) {
		int64_t dts;
		double v;
		memcpy(&dts, data + off, 8);
		memcpy(&v, data + off + 8, 8);
		/* mostly small forward steps, sometimes anything (backwards, huge) */
		/* unsigned arithmetic: the harness itself must not overflow */
		uint64_t step = (dts & 1) ? (uint64_t)dts : (uint64_t)dts % 600000u;
		ts = (int64_t)((uint64_t)ts + step);
		double s = mote_anomaly_step(a, ts, v);
		if (!(s >= 0.0 && s <= 1.0))
			__builtin_trap();
	}
	check(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mote_anomaly a;
	if (size > 1 << 16)
		return 0;
	if (size >= MOTE_ANOMALY_SNAPSHOT_SIZE && data[0] == 'S') {
		/* a snapshot: the input bytes after the first, with a valid header
		 * so that the checks behind it are reached */
		static unsigned char blob[MOTE_ANOMALY_SNAPSHOT_SIZE];
		struct mote_anomaly good;
		size_t len;
		mote_anomaly_init(&good, NULL);
		mote_anomaly_save(&good, blob, sizeof blob, &len);
		memcpy(blob + 16, data + 1, MOTE_ANOMALY_SNAPSHOT_SIZE - 17);
		if (mote_anomaly_restore(&a, blob, len) == MOTE_OK)
			feed(&a, data + MOTE_ANOMALY_SNAPSHOT_SIZE, size - MOTE_ANOMALY_SNAPSHOT_SIZE);
		if (mote_anomaly_restore(&a, data, size) == MOTE_OK) /* raw bytes too */
			check(&a);
		return 0;
	}
	mote_anomaly_init(&a, NULL);
	feed(&a, data, size);
	return 0;
}
