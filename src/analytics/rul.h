/*
 * rul.h - remaining useful life (RUL) from run-to-failure histories.
 *
 * Train from the histories of machines that ran until they failed, then
 * estimate how many more cycles another machine has from its history so far.
 * Each cycle is a row of operating settings (the regime the machine runs in:
 * altitude, speed, load, setpoint) and sensor readings. The estimator:
 *  - sorts rows into operating conditions (clusters of the settings) and
 *    normalises every sensor per condition, so a change of regime is not
 *    mistaken for wear;
 *  - fits a linear health index (the normalised sensors -> capped RUL);
 *  - computes, at each cycle, rolling means, spread and slopes of the sensors
 *    and of the index over several windows, their drift from the machine's own
 *    first cycles, and the cycle count (rul_features.c);
 *  - trains XGBoost regressors (gradient-boosted trees) on the RUL capped at
 *    params.cap (piecewise linear: a healthy machine's RUL is not observable,
 *    so the target stays flat until degradation starts), each on a bootstrap
 *    resample of the machines; the estimate is their mean;
 *  - the interval: 10th to 90th percentile of the out-of-bag errors (each
 *    training row estimated by the boosters that did not see its machine),
 *    per bin of the estimate - a nominal 80 % interval (measured coverage in
 *    docs/analytics.md). With bags == 1, lo == hi == rul.
 *
 * Threading: no globals of ours; a model is used by one thread at a time
 * (distinct models are independent). params.threads is XGBoost's own OpenMP
 * pool size inside one call; 1 means no pool.
 */
#ifndef MOTE_ANALYTICS_RUL_H
#define MOTE_ANALYTICS_RUL_H

#include <stddef.h>

#include "base/err.h"

#define RUL_MAX_SETTINGS 8
#define RUL_MAX_SENSORS 32
#define RUL_MAX_CONDITIONS 16
#define RUL_MAX_BAGS 32

/* One machine's history, oldest cycle first: row i is data[i * stride ...],
 * nsettings settings followed by nsensors sensors (C-MAPSS rows as read by
 * cmapss.h fit as they are). */
struct rul_series {
	const double *data;
	size_t cycles;
	size_t stride;	/* doubles per row, >= nsettings + nsensors */
	double end_rul; /* training only: cycles left after the last row (0: it failed there) */
};

struct rul_params {
	int nsettings, nsensors;
	int nuse;		  /* sensors that carry information */
	int use[RUL_MAX_SENSORS]; /* their 0-based indices */
	double cap;		  /* training target min(RUL, cap); estimates lie in [0, cap] */
	double cond_tol;   /* condition clustering tolerance (fraction of max(1, |setting|)) */
	int rounds, depth; /* boosting rounds, tree depth */
	double eta, subsample, colsample, min_child, lambda;
	int bags;      /* boosters, each on a bootstrap resample of machines (1: no resample) */
	unsigned seed; /* XGBoost and bootstrap seed: same data + seed = same model */
	int threads;   /* XGBoost threads; 1 = no thread pool at all */
	int features;  /* RUL_F_* groups beyond the rolling means (ablation experiments) */
};

/* Feature groups (rul_features.c); the rolling means and the cycle count are always in. */
#define RUL_F_HEALTH 1	 /* the health-index channel */
#define RUL_F_SPREAD 2	 /* standard deviation over 10 cycles */
#define RUL_F_SLOPE 4	 /* least-squares slopes */
#define RUL_F_DRIFT 8	 /* last 10 cycles minus the machine's first 20 */
#define RUL_F_HISTORY 16 /* mean of the whole history */
#define RUL_F_ALL 31

/* The settings chosen for C-MAPSS by cross-validation on training engines
 * (docs/analytics.md): 3 settings, 21 sensors, the 14 informative sensors,
 * cap 125, threads 1. */
void rul_params_default(struct rul_params *p);

/* Sets one field by name ("depth=5"); for tuning experiments (--tune).
 * MOTE_EINVAL on an unknown name or a bad value. */
enum mote_err rul_params_set(struct rul_params *p, const char *kv);

struct rul_model;

struct rul_estimate {
	double rul;    /* mean of the boosters, clipped to [0, cap] */
	double lo, hi; /* nominal 80 % interval (out-of-bag errors), within [0, cap] */
};

/*
 * Trains on n histories. *out is the caller's (rul_free). On failure err
 * says why (errlen bytes): MOTE_EINVAL for bad parameters or empty input,
 * MOTE_ETOOBIG for too many operating conditions, MOTE_EIO when XGBoost fails.
 */
enum mote_err rul_train(const struct rul_params *p, const struct rul_series *s, size_t n,
			struct rul_model **out, char *err, size_t errlen);

/* Estimates after the last row of each of n histories (a batch is much
 * faster than one call per machine). Histories shorter than one cycle are
 * MOTE_EINVAL. Reads every row (the features look at the machine's first
 * cycles as its own baseline, and at up to the last 50). */
enum mote_err rul_predict(const struct rul_model *m, const struct rul_series *s, size_t n,
			  struct rul_estimate *out, char *err, size_t errlen);

const struct rul_params *rul_model_params(const struct rul_model *m);
int rul_model_conditions(const struct rul_model *m);
int rul_model_features(const struct rul_model *m);

/* Writes the model (params, normalisation, boosters) to path, replacing it
 * atomically; loads one back. The format is native-endian, versioned, and
 * checked on load (a corrupt file is MOTE_EMALFORMED, never a crash). */
enum mote_err rul_save(const struct rul_model *m, const char *path, char *err, size_t errlen);
enum mote_err rul_load(const char *path, struct rul_model **out, char *err, size_t errlen);

void rul_free(struct rul_model *m);

/*
 * K-fold cross-validation split by machine (fold of machine i: i mod k after a
 * seeded shuffle): trains on k-1 folds, scores the held-out machines at every
 * cycle against min(true RUL, cap) - every cycle is a possible truncation
 * point, as in the test sets. Fills RMSE and mean PHM08 score per estimate.
 */
struct rul_cv_result {
	double rmse, score_mean;
	double coverage; /* fraction of truths inside [lo, hi] */
	size_t points;
};
enum mote_err rul_cv(const struct rul_params *p, const struct rul_series *s, size_t n, int k,
		     struct rul_cv_result *out, char *err, size_t errlen);

/* PHM08 score of one estimate: d = predicted - true; exp(-d/13) - 1 when
 * early (d < 0), exp(d/10) - 1 when late. */
double rul_phm08(double predicted, double truth);

#endif
