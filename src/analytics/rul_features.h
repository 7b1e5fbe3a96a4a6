/*
 * rul_features.h - inside the RUL estimator (rul.h): operating-condition
 * normalisation, the linear health index, and the per-cycle feature vector.
 * Not for use outside src/analytics/rul*.c.
 */
#ifndef MOTE_ANALYTICS_RUL_FEATURES_H
#define MOTE_ANALYTICS_RUL_FEATURES_H

#include <stddef.h>

#include "analytics/rul.h"
#include "base/err.h"

#define RUL_IV_BINS 5

/* What training learns before the trees: fitted once, then fixed. */
struct rul_norm {
	int ncond;
	double tol[RUL_MAX_SETTINGS];
	double centroid[RUL_MAX_CONDITIONS][RUL_MAX_SETTINGS];
	double mean[RUL_MAX_CONDITIONS][RUL_MAX_SENSORS]; /* per condition, per used sensor */
	double sd[RUL_MAX_CONDITIONS][RUL_MAX_SENSORS];
	double hi_w[RUL_MAX_SENSORS + 1]; /* health index weights, intercept last */
	/* The interval: 10th and 90th percentiles of out-of-bag errors (truth
	 * - estimate) for estimates in each of iv_bins equal bins of [0, cap];
	 * iv_bins 0 when there is no out-of-bag data (bags == 1). */
	int iv_bins;
	double iv_lo[RUL_IV_BINS], iv_hi[RUL_IV_BINS];
};

/* Feature vector length for p. */
int rul_nfeatures(const struct rul_params *p);

/* Fits the conditions, per-condition sensor statistics and health index. */
enum mote_err rul_norm_fit(const struct rul_params *p, const struct rul_series *s, size_t n,
			   struct rul_norm *out, char *err, size_t errlen);

/* The condition a row of settings belongs to (nearest centroid). */
int rul_condition(const struct rul_norm *nm, const struct rul_params *p, const double *settings);

/*
 * Features of one history: at every cycle (out: cycles x nfeatures floats)
 * when all is set, else only at the last cycle (out: nfeatures floats).
 * MOTE_ENOMEM or MOTE_EINVAL (no cycles).
 */
enum mote_err rul_features(const struct rul_norm *nm, const struct rul_params *p,
			   const struct rul_series *s, int all, float *out);

#endif
