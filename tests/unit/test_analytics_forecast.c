/*
 * test_analytics_forecast.c - the online models of src/analytics/forecast.h
 * learn known systems from noisy samples, predict them under a new input
 * with a band that holds the truth, time threshold crossings, and stay sane
 * under junk: NaN, infinities, time going backwards, spikes and gaps.
 *
 * The "truth" is an exact first-order system / exponential trend computed
 * here in closed form, sampled with Gaussian noise from a fixed seed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "analytics/forecast.h"

/* ---- a seeded noise source for the synthetic data ---- */

static uint64_t rng_state;

static double uniform(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(double sd)
{
	return sd * sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* The true system: dy/dt = (K u + Y0 - y) / TAU. */
#define K_TRUE 0.5
#define TAU_TRUE 600.0
#define Y0_TRUE 20.0
#define NOISE 0.3

static double settle(double y, double u, double dt)
{
	double yss = K_TRUE * u + Y0_TRUE;
	return yss + (y - yss) * exp(-dt / TAU_TRUE);
}

/* The input of the history: a staircase between 10 and 60, a step every 40 min. */
static double history_u(double t)
{
	static const double levels[] = { 10, 60, 30, 50, 20, 40 };
	return levels[(size_t)(t / 2400) % 6];
}

/* 8 hours of 1 Hz samples into m; returns the true state at the end. */
static double learn_history(struct fc_first_order *m, double *t_end)
{
	double y = Y0_TRUE + K_TRUE * history_u(0), t = 0;
	rng_state = 42;
	for (; t < 8 * 3600; t += 1) {
		fc_first_order_add(m, t, y + gauss(NOISE), history_u(t));
		y = settle(y, history_u(t), 1);
	}
	*t_end = t;
	return y;
}

static void test_first_order_learns_the_system(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	double t_end;
	learn_history(&m, &t_end);
	assert_true(fc_first_order_ready(&m));
	double K, tau, y0, sigma;
	assert_int_equal(fc_first_order_params(&m, &K, &tau, &y0, &sigma), MOTE_OK);
	assert_true(fabs(K - K_TRUE) < 0.05 * K_TRUE);
	assert_true(fabs(tau - TAU_TRUE) < 0.15 * TAU_TRUE);
	assert_true(fabs(y0 - Y0_TRUE) < 1.0);
	/* block means of 30 samples: noise 0.3 / sqrt(30) plus model error */
	assert_true(sigma < 0.3);
	assert_int_equal(m.skipped, 0);
}

static void test_first_order_predicts_a_new_input(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	double t_end;
	learn_history(&m, &t_end);
	double y_start, u_start, t_start;
	assert_true(fc_first_order_state(&m, &y_start, &u_start, &t_start));

	/* What if the input went to 80 (beyond anything seen) ten minutes on? */
	struct fc_step steps[] = { { 600, 80, 0 } };
	struct fc_predict_opts o = { .horizon_s = 3600, .step_s = 60, .draws = 300, .seed = 7,
				     .have_threshold = true, .threshold = 55, .rising = true };
	struct fc_point pts[128];
	size_t n;
	struct fc_crossing cr;
	assert_int_equal(fc_first_order_predict(&m, steps, 1, &o, pts, 128, &n, &cr), MOTE_OK);
	assert_int_equal(n, 61);

	/* The truth from the block mean the prediction starts at: the system
	 * itself run forward under the same scenario. */
	double y = y_start, worst = 0;
	unsigned inside = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			for (int s = 0; s < 60; s++) {
				double t = pts[i - 1].t_s + s;
				y = settle(y, t < 600 ? u_start : 80, 1);
			}
		worst = fmax(worst, fabs(pts[i].mean - y));
		inside += pts[i].lo <= y && y <= pts[i].hi;
		assert_true(pts[i].lo <= pts[i].mean && pts[i].mean <= pts[i].hi);
	}
	assert_true(worst < 1.5);           /* degrees, on a 25-degree step */
	assert_true(inside >= n * 9 / 10);

	/* Crossing 55 from 20 + 0.5*u_start toward 60: closed form. */
	double yss = K_TRUE * 80 + Y0_TRUE;
	double y600 = settle(y_start, u_start, 600);
	double t_true = 600 + TAU_TRUE * log((y600 - yss) / (55 - yss));
	assert_true(cr.mean_crosses);
	assert_true(fabs(cr.mean_t_s - t_true) < 180);
	assert_true(cr.early_t_s <= cr.mean_t_s + 60);
	assert_true(cr.fraction > 0.5);
}

static void test_same_seed_same_band(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	double t_end;
	learn_history(&m, &t_end);
	struct fc_predict_opts o = { .horizon_s = 1800, .seed = 3 };
	struct fc_point a[128], b[128];
	size_t na, nb;
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, a, 128, &na, NULL), MOTE_OK);
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, b, 128, &nb, NULL), MOTE_OK);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na * sizeof a[0]);
	/* step_s 0: one point per block */
	assert_int_equal(na, 1800 / 30 + 1);
}

static void test_junk_does_not_reach_the_state(void **st)
{
	(void)st;
	struct fc_first_order clean, junk;
	fc_first_order_init(&clean, 30, 0.999);
	fc_first_order_init(&junk, 30, 0.999);
	double y = 45;
	rng_state = 9;
	for (double t = 0; t < 4 * 3600; t += 1) {
		double u = history_u(t), v = y + gauss(NOISE);
		fc_first_order_add(&clean, t, v, u);
		fc_first_order_add(&junk, t, v, u);
		if ((long)t % 97 == 0) {
			fc_first_order_add(&junk, t, NAN, u);
			fc_first_order_add(&junk, t, INFINITY, u);
			fc_first_order_add(&junk, t, v, -INFINITY);
			fc_first_order_add(&junk, t - 50, v, u); /* time backwards */
			fc_first_order_add(&junk, NAN, v, u);
		}
		y = settle(y, u, 1);
	}
	assert_true(junk.skipped > 0);
	assert_memory_equal(&clean.rls, &junk.rls, sizeof clean.rls);
}

static void test_spike_is_not_learned(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	double t_end;
	double y = learn_history(&m, &t_end);
	double K0, tau0, y00, s0;
	assert_int_equal(fc_first_order_params(&m, &K0, &tau0, &y00, &s0), MOTE_OK);
	/* One block of a stuck-high sensor: every sample 1e6. */
	for (double t = t_end; t < t_end + 30; t += 1)
		fc_first_order_add(&m, t, 1e6, history_u(t));
	for (double t = t_end + 30; t < t_end + 120; t += 1) {
		fc_first_order_add(&m, t, y + gauss(NOISE), history_u(t));
		y = settle(y, history_u(t), 1);
	}
	assert_true(m.rls.outliers >= 1);
	double K, tau, y0, s;
	assert_int_equal(fc_first_order_params(&m, &K, &tau, &y0, &s), MOTE_OK);
	assert_true(fabs(K - K0) < 0.01 && fabs(tau - tau0) < 10);
}

static void test_no_fit_across_a_gap(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	for (double t = 0; t < 300; t += 1)
		fc_first_order_add(&m, t, 40, 30);
	uint64_t before = m.fitted;
	/* Six hours of silence, then a very different value: not one pair
	 * straddles the gap. */
	for (double t = 6 * 3600; t < 6 * 3600 + 61; t += 1)
		fc_first_order_add(&m, t, 90, 30);
	/* +2: the block still open before the gap (closed by the first sample
	 * after it) and the one pair of blocks after it; the pair that would
	 * straddle the gap is not learned. */
	assert_int_equal(m.fitted, before + 2);
}

static void test_errors(void **st)
{
	(void)st;
	struct fc_first_order m;
	fc_first_order_init(&m, 30, 0.999);
	struct fc_point pts[8];
	size_t n = 99;
	struct fc_predict_opts o = { .horizon_s = 600 };
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_EAGAIN);
	assert_int_equal(n, 0);
	double K, tau, y0, s;
	assert_int_equal(fc_first_order_params(&m, &K, &tau, &y0, &s), MOTE_EAGAIN);
	double t_end;
	learn_history(&m, &t_end);
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_ENOSPC);
	o.horizon_s = -1;
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_EINVAL);
	o.horizon_s = NAN;
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_EINVAL);
	o.horizon_s = 60;
	o.draws = 1000000;
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_EINVAL);
	o.draws = 0;
	struct fc_step bad[] = { { 100, 1, 0 }, { 50, 2, 0 } };
	assert_int_equal(fc_first_order_predict(&m, bad, 2, &o, pts, 8, &n, NULL), MOTE_EINVAL);
	struct fc_step nan_step[] = { { 10, NAN, 0 } };
	assert_int_equal(fc_first_order_predict(&m, nan_step, 1, &o, pts, 8, &n, NULL),
			 MOTE_EINVAL);
	o.horizon_s = 1e12; /* a million steps and more */
	assert_int_equal(fc_first_order_predict(&m, NULL, 0, &o, pts, 8, &n, NULL), MOTE_EINVAL);
}

static void test_linear(void **st)
{
	(void)st;
	struct fc_linear m;
	fc_linear_init(&m, 1.0);
	double y, s;
	assert_int_equal(fc_linear_predict(&m, 1, &y, &s), MOTE_EAGAIN);
	rng_state = 5;
	/* a constant input teaches no slope */
	for (int i = 0; i < 50; i++)
		fc_linear_add(&m, 4, 2 * 4 + 3 + gauss(0.1));
	assert_false(fc_linear_ready(&m));
	for (int i = 0; i < 500; i++) {
		double u = 10 * uniform();
		fc_linear_add(&m, u, 2 * u + 3 + gauss(0.1));
	}
	fc_linear_add(&m, NAN, 1);
	fc_linear_add(&m, 1, INFINITY);
	assert_int_equal(m.skipped, 2);
	assert_int_equal(fc_linear_predict(&m, 6, &y, &s), MOTE_OK);
	assert_true(fabs(y - 15) < 0.05);
	assert_true(s > 0.05 && s < 0.2);
	assert_int_equal(fc_linear_predict(&m, NAN, &y, &s), MOTE_EINVAL);
}

static void test_trend_and_crossing(void **st)
{
	(void)st;
	/* vibration 2 mm/s growing 1 % per hour, sampled every minute, 5 %
	 * multiplicative noise; 4 days of history, hourly blocks */
	struct fc_trend m;
	fc_trend_init(&m, 3600, 1.0);
	rng_state = 11;
	double t;
	for (t = 0; t < 96 * 3600; t += 60)
		fc_trend_add(&m, t, 2 * exp(0.01 * t / 3600) * (1 + gauss(0.05)));
	fc_trend_add(&m, t, -1);   /* not loggable */
	fc_trend_add(&m, t, NAN);
	assert_int_equal(m.skipped, 2);
	assert_true(fc_trend_ready(&m));
	assert_true(fabs(m.rls.theta[1] - 0.01) < 0.001);

	/* When does it reach 7.1 mm/s (ISO 10816 zone D for such machines)?
	 * Truth from the latest full block's middle: */
	double now_h = m.last_mid_h, v_now = 2 * exp(0.01 * now_h);
	double t_true_h = log(7.1 / v_now) / 0.01;
	struct fc_predict_opts o = { .horizon_s = 200 * 3600.0, .step_s = 3600, .seed = 1,
				     .have_threshold = true, .threshold = 7.1, .rising = true };
	struct fc_point pts[256];
	size_t n;
	struct fc_crossing cr;
	assert_int_equal(fc_trend_predict(&m, &o, pts, 256, &n, &cr), MOTE_OK);
	assert_int_equal(n, 201);
	assert_true(cr.mean_crosses);
	assert_true(fabs(cr.mean_t_s / 3600 - t_true_h) < 0.1 * t_true_h);
	assert_true(cr.early_t_s <= cr.mean_t_s && cr.mean_t_s <= cr.late_t_s);
	assert_true(cr.fraction > 0.95);
	/* the closed form agrees with the Monte Carlo run */
	double h, lo, hi;
	assert_int_equal(fc_trend_crossing(&m, 7.1, &h, &lo, &hi), MOTE_OK);
	assert_true(fabs(h * 3600 - cr.mean_t_s) < 3600 * 1.01);
	assert_true(lo <= h && h <= hi && hi - lo < 0.5 * h);
	assert_int_equal(fc_trend_crossing(&m, 1.0, &h, &lo, &hi), MOTE_ENOTFOUND);
	assert_int_equal(fc_trend_crossing(&m, -1, &h, &lo, &hi), MOTE_EINVAL);

	/* a threshold never reached inside the horizon */
	o.threshold = 1e9;
	assert_int_equal(fc_trend_predict(&m, &o, pts, 256, &n, &cr), MOTE_OK);
	assert_false(cr.mean_crosses);
	assert_true(cr.fraction == 0 && isinf(cr.early_t_s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_order_learns_the_system),
		cmocka_unit_test(test_first_order_predicts_a_new_input),
		cmocka_unit_test(test_same_seed_same_band),
		cmocka_unit_test(test_junk_does_not_reach_the_state),
		cmocka_unit_test(test_spike_is_not_learned),
		cmocka_unit_test(test_no_fit_across_a_gap),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_linear),
		cmocka_unit_test(test_trend_and_crossing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
