/* test_analytics_anomaly.c - the streaming anomaly detector: scores, bad input, snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/anomaly.h"

#define STEP_MS 300000 /* NAB's usual 5-minute interval */

/* A deterministic noisy daily cycle (288 points a day) from a small LCG. */
static double series(uint32_t *seed, int i)
{
	*seed = *seed * 1664525u + 1013904223u;
	double noise = ((double)(*seed >> 8) / (double)(1u << 24) - 0.5) * 2.0;
	return 50.0 + 20.0 * sin(2 * M_PI * i / 288.0) + noise;
}

static void defaults_are_valid_and_bad_settings_refused(void **state)
{
	(void)state;
	struct mote_anomaly a;
	struct mote_anomaly_params p;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	mote_anomaly_params_default(&p);
	assert_int_equal(mote_anomaly_init(&a, &p), MOTE_OK);
	p.alpha_level = NAN;
	assert_int_equal(mote_anomaly_init(&a, &p), MOTE_EINVAL);
	mote_anomaly_params_default(&p);
	p.short_len = 0;
	assert_int_equal(mote_anomaly_init(&a, &p), MOTE_EINVAL);
	p.short_len = MOTE_ANOMALY_SHORT + 1;
	assert_int_equal(mote_anomaly_init(&a, &p), MOTE_EINVAL);
	mote_anomaly_params_default(&p);
	p.bins = 0;
	assert_int_equal(mote_anomaly_init(&a, &p), MOTE_EINVAL);
}

/* Scores stay in [0, 1], warm-up scores 0, and a spike after a long normal
 * stretch scores higher than every normal point did. */
static void spike_scores_above_normal(void **state)
{
	(void)state;
	struct mote_anomaly a;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	uint32_t seed = 1;
	double max_normal = 0;
	int i;
	for (i = 0; i < 4000; i++) {
		double s = mote_anomaly_step(&a, (int64_t)i * STEP_MS, series(&seed, i));
		assert_true(s >= 0.0 && s <= 1.0);
		if ((uint32_t)i < a.p.warmup)
			assert_true(s == 0.0);
		else if (i > 1000 && s > max_normal)
			max_normal = s;
	}
	double spike = 0;
	for (int k = 0; k < 5; k++, i++) {
		double s = mote_anomaly_step(&a, (int64_t)i * STEP_MS,
					     series(&seed, i) + (k == 0 ? 200.0 : 0.0));
		if (s > spike)
			spike = s;
	}
	/* the tuned NAB threshold is ~0.48 (docs/analytics.md) */
	assert_true(spike > max_normal + 0.2);
	assert_true(spike >= 0.6);
	assert_int_equal(a.n, (uint64_t)i);
	assert_int_equal(a.ignored, 0);
}

/* NaN, infinities, duplicate and older timestamps leave the state as it was
 * (only the `ignored` counter moves) and score 0. */
static void junk_leaves_state_untouched(void **state)
{
	(void)state;
	static struct mote_anomaly a, before;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	uint32_t seed = 7;
	int i;
	for (i = 0; i < 600; i++)
		mote_anomaly_step(&a, (int64_t)i * STEP_MS, series(&seed, i));
	int64_t last = (int64_t)(i - 1) * STEP_MS;
	struct {
		int64_t ts;
		double v;
	} junk[] = {{last + STEP_MS, NAN}, {last + STEP_MS, INFINITY}, {last + STEP_MS, -INFINITY},
		    {last, 42.0},	   {last - STEP_MS, 42.0},     {INT64_MIN, 1.0},
		    {last + STEP_MS, -NAN}};
	for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++) {
		before = a;
		assert_true(mote_anomaly_step(&a, junk[k].ts, junk[k].v) == 0.0);
		assert_int_equal(a.ignored, before.ignored + 1);
		before.ignored = a.ignored;
		assert_memory_equal(&a, &before, sizeof a);
	}
	/* and it goes on normally */
	double s = mote_anomaly_step(&a, last + STEP_MS, series(&seed, i));
	assert_true(s >= 0.0 && s <= 1.0);
	assert_int_equal(a.n, 601);
}

/* A gap breaks the context but keeps what was learned; a lasting change of
 * rate stops counting as gaps after a few points. */
static void gaps_keep_state_sane(void **state)
{
	(void)state;
	struct mote_anomaly a;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	uint32_t seed = 3;
	int64_t ts = 0;
	int i;
	for (i = 0; i < 2000; i++, ts += STEP_MS)
		mote_anomaly_step(&a, ts, series(&seed, i));
	ts += 1000LL * STEP_MS; /* ~3.5 days of silence */
	double s = mote_anomaly_step(&a, ts, series(&seed, i++));
	assert_true(s >= 0.0 && s <= 1.0);
	assert_int_equal(a.gaps, 1);
	assert_true(a.ctx_valid <= 1);
	/* now every 50 minutes instead of 5: a few gaps, then the new normal */
	uint64_t g0 = a.gaps;
	for (int k = 0; k < 200; k++, i++) {
		ts += 10 * STEP_MS;
		s = mote_anomaly_step(&a, ts, series(&seed, i));
		assert_true(s >= 0.0 && s <= 1.0);
	}
	assert_true(a.gaps - g0 < 20);
	assert_true(isfinite(a.level) && isfinite(a.scale) && isfinite(a.lvar) && isfinite(a.dt));
}

/* Hostile values: huge, tiny, alternating extremes, a constant series. */
static void extreme_values_stay_finite(void **state)
{
	(void)state;
	struct mote_anomaly a;
	const double vals[] = {
	    1e308, -1e308, 5e-324, 0.0, -0.0, 1e100, -1e300, 1.7976931348623157e308, 3.0};
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	for (int i = 0; i < 5000; i++) {
		double s = mote_anomaly_step(&a, i, vals[i % (sizeof vals / sizeof vals[0])]);
		assert_true(s >= 0.0 && s <= 1.0);
	}
	assert_true(isfinite(a.level) && isfinite(a.scale) && isfinite(a.lvar) && isfinite(a.lo) &&
		    isfinite(a.hi) && isfinite(a.short_sum));
	/* constant: never anomalous */
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	for (int i = 0; i < 3000; i++)
		assert_true(mote_anomaly_step(&a, (int64_t)i * 1000, 20.0) == 0.0 || i < 3);
}

/* A restored snapshot continues exactly where the saved state was. */
static void snapshot_round_trip(void **state)
{
	(void)state;
	static struct mote_anomaly a, b;
	static unsigned char blob[MOTE_ANOMALY_SNAPSHOT_SIZE];
	size_t len = 0;
	uint32_t seed = 11;
	int i;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	for (i = 0; i < 1500; i++)
		mote_anomaly_step(&a, (int64_t)i * STEP_MS, series(&seed, i));
	assert_int_equal(mote_anomaly_save(&a, blob, sizeof blob - 1, &len), MOTE_ENOSPC);
	assert_int_equal(mote_anomaly_save(&a, blob, sizeof blob, &len), MOTE_OK);
	assert_int_equal(len, sizeof blob);
	memset(&b, 0xa5, sizeof b);
	assert_int_equal(mote_anomaly_restore(&b, blob, len), MOTE_OK);
	uint32_t seed_b = seed;
	for (int k = 0; k < 1000; k++, i++) {
		double v = series(&seed, i);
		(void)series(&seed_b, i);
		double extra = k == 500 ? 100.0 : 0.0;
		assert_true(mote_anomaly_step(&a, (int64_t)i * STEP_MS, v + extra) ==
			    mote_anomaly_step(&b, (int64_t)i * STEP_MS, v + extra));
	}
	/* damaged snapshots are refused and leave the target alone */
	struct mote_anomaly c = b;
	assert_int_equal(mote_anomaly_restore(&c, blob, len - 1), MOTE_EMALFORMED);
	blob[0] ^= 1;
	assert_int_equal(mote_anomaly_restore(&c, blob, len), MOTE_EMALFORMED);
	blob[0] ^= 1;
	struct mote_anomaly bad = a;
	bad.level = NAN;
	assert_int_equal(mote_anomaly_save(&bad, blob, sizeof blob, &len), MOTE_OK);
	assert_int_equal(mote_anomaly_restore(&c, blob, len), MOTE_EMALFORMED);
	bad = a;
	bad.short_pos = MOTE_ANOMALY_SHORT;
	assert_int_equal(mote_anomaly_save(&bad, blob, sizeof blob, &len), MOTE_OK);
	assert_int_equal(mote_anomaly_restore(&c, blob, len), MOTE_EMALFORMED);
	bad = a;
	bad.p.alpha_long = 2.0;
	assert_int_equal(mote_anomaly_save(&bad, blob, sizeof blob, &len), MOTE_OK);
	assert_int_equal(mote_anomaly_restore(&c, blob, len), MOTE_EINVAL);
	assert_memory_equal(&c, &b, sizeof c);
}

static void reset_forgets(void **state)
{
	(void)state;
	static struct mote_anomaly a, fresh;
	uint32_t seed = 5;
	assert_int_equal(mote_anomaly_init(&a, NULL), MOTE_OK);
	assert_int_equal(mote_anomaly_init(&fresh, NULL), MOTE_OK);
	for (int i = 0; i < 700; i++)
		mote_anomaly_step(&a, (int64_t)i * STEP_MS, series(&seed, i));
	mote_anomaly_reset(&a);
	assert_memory_equal(&a, &fresh, sizeof a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_are_valid_and_bad_settings_refused),
	    cmocka_unit_test(spike_scores_above_normal),
	    cmocka_unit_test(junk_leaves_state_untouched),
	    cmocka_unit_test(gaps_keep_state_sane),
	    cmocka_unit_test(extreme_values_stay_finite),
	    cmocka_unit_test(snapshot_round_trip),
	    cmocka_unit_test(reset_forgets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
