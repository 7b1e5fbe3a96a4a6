/*
 * forecast.h - online models of one device's own history, and what they say
 * about its future under a scenario ("what if the setpoint were 6 bar?").
 * Part of src/analytics/; the hub's simulate endpoint is built on it.
 *
 * Three models, each fitted sample by sample in constant memory by recursive
 * least squares with exponential forgetting (so a model follows slow drift):
 *
 *   first order  y settles at K*u + y0 with time constant tau after a change
 *                of the input u: temperature following load, the physics of
 *                most thermal assets. Samples are averaged into blocks of
 *                block_s seconds (irregular sampling is fine, and averaging
 *                keeps sensor noise out of the regressors); consecutive
 *                blocks fit the exact discrete form
 *                    y[k+1] = a*y[k] + b*u[k] + c(t),  a = exp(-block_s/tau),
 *                    K = b/(1-a), y0 = c(t)/(1-a).
 *                The offset is not constant in the field: it carries the
 *                ambient temperature, whose daily cycle often moves with
 *                the load (both peak by day). Fitted as a constant, the
 *                ambient passes for load and biases the gain; so c(t) has a
 *                daily harmonic, c0 + c1*sin(wt) + c2*cos(wt) (w: once per
 *                24 h, t: Unix time), fitted with the rest.
 *                A gap of a whole block restarts the chain (no fit across it).
 *   linear       y = g*u + h (a static relation, e.g. power against setpoint).
 *   trend        y(t) = exp(p + r*t), t in hours: slow wear such as vibration
 *                growing with bearing wear, fitted on log y of block means.
 *
 * Predictions run a fitted model forward and give a mean with a band: Monte
 * Carlo draws of the parameters from their estimated covariance (residual
 * variance times the RLS matrix) plus the one-step residual noise at each
 * step, so the band widens with the horizon and with how little the history
 * taught the model. A model that has not seen enough (fc_*_ready false)
 * predicts nothing: MOTE_EAGAIN.
 *
 * Bad input: NaN, infinities, time going backwards and values at or below 0
 * for the trend (log) are skipped and counted; they never reach the state.
 * A residual beyond 6 sigma after warm-up is counted and not learned from,
 * so one junk sample cannot bend a model.
 *
 * Ownership: every model is plain data owned by the caller (fixed size, no
 * allocation, so it can be copied or saved as bytes); the predictions borrow
 * the model, write into the caller's arrays and allocate only scratch space
 * for the draws, freed before they return. Threading: none; a model belongs
 * to one thread at a time (predicting from a copy is safe).
 */
#ifndef MOTE_ANALYTICS_FORECAST_H
#define MOTE_ANALYTICS_FORECAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define FC_RLS_MAX 5

/* Recursive least squares, n <= FC_RLS_MAX parameters. */
struct fc_rls {
	unsigned n;
	double lambda;               /* forgetting factor, (0, 1] */
	double theta[FC_RLS_MAX];
	double P[FC_RLS_MAX][FC_RLS_MAX];
	double var;                  /* residual variance (EWMA of a-priori errors^2) */
	uint64_t updates;            /* samples learned from */
	uint64_t outliers;           /* samples refused as > 6 sigma */
};

/* ---- first order ---- */

struct fc_first_order {
	double block_s;
	struct fc_rls rls;           /* theta = (a, b, c0, c1, c2) */
	/* the block being filled */
	double blk_start, blk_ysum, blk_usum;
	uint32_t blk_n;
	/* the previous complete block (valid when have_prev) */
	double prev_y, prev_u, prev_end;
	bool have_prev;
	bool started;
	double last_t;
	uint64_t fitted;             /* block pairs learned from */
	double u_lo, u_hi;           /* the input's range over those blocks: a
				      * scenario outside it extrapolates */
	unsigned streak;             /* outliers in a row */
	uint64_t skipped;            /* NaN, inf, time backwards */
};

/* block_s > 0; lambda in (0, 1] (0.999 forgets with a horizon of ~1000 blocks). */
void fc_first_order_init(struct fc_first_order *m, double block_s, double lambda);
/* One sample of output y and input u at t (seconds, any origin, rising). */
void fc_first_order_add(struct fc_first_order *m, double t_s, double y, double u);
/* Enough blocks, and a stable fit (0 < a < 1). */
bool fc_first_order_ready(const struct fc_first_order *m);
/* The physical parameters of the fit (MOTE_EAGAIN before ready); y0 is
 * the offset at the latest block (it follows the daily cycle). */
enum mote_err fc_first_order_params(const struct fc_first_order *m, double *K, double *tau_s,
				    double *y0, double *sigma);
/* The latest block mean of y and u, and its end time: where a prediction starts. */
bool fc_first_order_state(const struct fc_first_order *m, double *y, double *u, double *t_s);

/* ---- linear ---- */

struct fc_linear {
	struct fc_rls rls;           /* theta = (g, h) */
	double u_lo, u_hi;           /* the input's range seen */
	unsigned streak;
	uint64_t skipped;
};

void fc_linear_init(struct fc_linear *m, double lambda);
void fc_linear_add(struct fc_linear *m, double u, double y);
/* Enough samples and an input that varied (else g is unknown). */
bool fc_linear_ready(const struct fc_linear *m);
enum mote_err fc_linear_predict(const struct fc_linear *m, double u, double *y, double *sigma);

/* ---- trend ---- */

struct fc_trend {
	double block_s;
	double t0;                   /* origin of t (first sample), seconds */
	struct fc_rls rls;           /* theta = (p, r), log y = p + r * hours */
	double blk_start, blk_sum;
	uint32_t blk_n;
	bool started;
	double last_t;
	double last_mid_h;           /* middle of the latest block learned, hours */
	bool have_block;
	unsigned streak;
	uint64_t skipped;
};

void fc_trend_init(struct fc_trend *m, double block_s, double lambda);
void fc_trend_add(struct fc_trend *m, double t_s, double y);
bool fc_trend_ready(const struct fc_trend *m);

/*
 * When the trend reaches threshold (hours from its latest block's middle),
 * in closed form with a band from the parameters' covariance (delta
 * method, +-1.645 sd: a 90 % interval). MOTE_EAGAIN before ready;
 * MOTE_ENOTFOUND when the trend is flat or heads away from the threshold
 * (it never crosses); *hours is 0 when it is already beyond it.
 */
enum mote_err fc_trend_crossing(const struct fc_trend *m, double threshold, double *hours,
				double *lo_hours, double *hi_hours);

/* ---- prediction ---- */

/* A step of the input: from t_s (seconds after the prediction starts) on,
 * u, known to +-u_sd (one standard deviation; 0: exactly). Each Monte Carlo
 * draw takes one normal deviate for all uncertain steps, so a draw's input
 * stays consistently high or low over the horizon. */
struct fc_step {
	double t_s;
	double u;
	double u_sd;
};

struct fc_point {
	double t_s;                  /* seconds after the start */
	double mean, lo, hi;         /* lo/hi: the band's 5 % and 95 % quantiles */
};

/* When a trajectory first crosses a threshold (upward if rising, else downward). */
struct fc_crossing {
	bool mean_crosses;
	double mean_t_s;             /* first crossing of the mean */
	double early_t_s, late_t_s;  /* 5 % / 95 % quantiles of the crossing time
				      * over the draws that cross; late is INFINITY
				      * when fewer than 95 % of them cross */
	double fraction;             /* draws that cross within the horizon */
};

struct fc_predict_opts {
	double horizon_s;            /* > 0 */
	double step_s;               /* output spacing; 0: the model's block */
	unsigned draws;              /* Monte Carlo draws (default 200, max 2000) */
	uint64_t seed;               /* the same seed gives the same band */
	bool have_threshold;
	double threshold;
	bool rising;                 /* crossing upward (true) or downward */
};

/*
 * Runs the first-order model forward from its latest state under the input
 * schedule steps[0..nsteps) (sorted by t_s; before the first step the input
 * stays at the latest observed u). out gets up to cap points (the count in
 * *n); cross (may be NULL) the threshold crossing. MOTE_EAGAIN before ready,
 * MOTE_EINVAL for bad options, MOTE_ENOSPC when cap is too small for
 * horizon/step + 1 points.
 */
enum mote_err fc_first_order_predict(const struct fc_first_order *m, const struct fc_step *steps,
				     size_t nsteps, const struct fc_predict_opts *o,
				     struct fc_point *out, size_t cap, size_t *n,
				     struct fc_crossing *cross);

/* The trend extrapolated from its latest block; same conventions. */
enum mote_err fc_trend_predict(const struct fc_trend *m, const struct fc_predict_opts *o,
			       struct fc_point *out, size_t cap, size_t *n,
			       struct fc_crossing *cross);

#endif
