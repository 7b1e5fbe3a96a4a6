/*
 * rul.c - training, estimating, saving and cross-validating the RUL model
 * (rul.h); the features are in rul_features.c.
 *
 * XGBoost is used through its C API with every knob that affects the result
 * set explicitly (seed, nthread, tree method), so the same data and
 * parameters give the same model. nthread == 1 keeps XGBoost from starting
 * an OpenMP pool at all, which is what the sanitizer builds need (libgomp is
 * not instrumented, ThreadSanitizer would report its synchronisation).
 *
 * Model file: "MOTERUL1", the size of struct rul_params and struct rul_norm,
 * both as bytes, the number of boosters, each as (u64 length, XGBoost UBJSON
 * bytes), then an FNV-1a 64-bit checksum of everything before it. Load checks
 * the checksum and every field before XGBoost sees a byte.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#include "analytics/rul.h"
#include "analytics/rul_features.h"
#include "analytics/stats.h"
#include "base/file.h"

struct rul_model {
	struct rul_params p;
	struct rul_norm nm;
	int nf;
	int nbags;
	BoosterHandle bag[RUL_MAX_BAGS];
};

/* The 14 C-MAPSS sensors that change over an engine's life (sensors 2, 3,
 * 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21); the other seven are constant
 * or nearly so in every regime. */
static const int cmapss_use[] = {1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 19, 20};

void rul_params_default(struct rul_params *p)
{
	memset(p, 0, sizeof *p);
	p->nsettings = 3;
	p->nsensors = 21;
	p->nuse = (int)(sizeof cmapss_use / sizeof cmapss_use[0]);
	memcpy(p->use, cmapss_use, sizeof cmapss_use);
	p->cap = 125;
	p->cond_tol = 0.05;
	p->rounds = 150;
	p->depth = 4;
	p->eta = 0.1;
	p->subsample = 0.8;
	p->colsample = 0.5;
	p->min_child = 10;
	p->lambda = 1;
	p->bags = 3;
	p->seed = 1;
	p->threads = 1;
	p->features = RUL_F_ALL;
}

enum mote_err rul_params_set(struct rul_params *p, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return MOTE_EINVAL;
	size_t kl = (size_t)(eq - kv);
	char *end;
	double v = strtod(eq + 1, &end);
	if (end == eq + 1 || *end || !isfinite(v))
		return MOTE_EINVAL;
	struct {
		const char *name;
		double *d;
		int *i;
	} f[] = {
	    {"cap", &p->cap, NULL},
	    {"cond_tol", &p->cond_tol, NULL},
	    {"rounds", NULL, &p->rounds},
	    {"depth", NULL, &p->depth},
	    {"eta", &p->eta, NULL},
	    {"subsample", &p->subsample, NULL},
	    {"colsample", &p->colsample, NULL},
	    {"min_child", &p->min_child, NULL},
	    {"lambda", &p->lambda, NULL},
	    {"bags", NULL, &p->bags},
	    {"threads", NULL, &p->threads},
	    {"features", NULL, &p->features},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		if (strlen(f[i].name) != kl || strncmp(f[i].name, kv, kl) != 0)
			continue;
		if (f[i].d)
			*f[i].d = v;
		else if (v == floor(v) && fabs(v) < 1e6)
			*f[i].i = (int)v;
		else
			return MOTE_EINVAL;
		return MOTE_OK;
	}
	if (kl == 4 && strncmp(kv, "seed", 4) == 0 && v >= 0 && v == floor(v) && v < 4294967296.0) {
		p->seed = (unsigned)v;
		return MOTE_OK;
	}
	return MOTE_EINVAL;
}

static int params_ok(const struct rul_params *p, char *err, size_t errlen)
{
	const char *bad = NULL;
	if (p->nsettings < 0 || p->nsettings > RUL_MAX_SETTINGS)
		bad = "nsettings";
	else if (p->nsensors < 1 || p->nsensors > RUL_MAX_SENSORS)
		bad = "nsensors";
	else if (p->nuse < 1 || p->nuse > p->nsensors)
		bad = "nuse";
	else if (!(p->cap > 0 && p->cap < 1e6))
		bad = "cap";
	else if (!(p->cond_tol > 0 && p->cond_tol < 1e6))
		bad = "cond_tol";
	else if (p->rounds < 1 || p->rounds > 100000)
		bad = "rounds";
	else if (p->depth < 1 || p->depth > 20)
		bad = "depth";
	else if (!(p->eta > 0 && p->eta <= 1))
		bad = "eta";
	else if (!(p->subsample > 0 && p->subsample <= 1))
		bad = "subsample";
	else if (!(p->colsample > 0 && p->colsample <= 1))
		bad = "colsample";
	else if (!(p->min_child >= 0 && p->min_child < 1e9))
		bad = "min_child";
	else if (!(p->lambda >= 0 && p->lambda < 1e9))
		bad = "lambda";
	else if (p->bags < 1 || p->bags > RUL_MAX_BAGS)
		bad = "bags";
	else if (p->threads < 1 || p->threads > 1024)
		bad = "threads";
	else if (p->features < 0 || p->features > RUL_F_ALL)
		bad = "features";
	for (int k = 0; !bad && k < p->nuse; k++)
		if (p->use[k] < 0 || p->use[k] >= p->nsensors)
			bad = "use";
	if (bad)
		snprintf(err, errlen, "invalid parameter %s", bad);
	return !bad;
}

static int series_ok(const struct rul_params *p, const struct rul_series *s, size_t n, int training,
		     char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "no histories");
		return 0;
	}
	for (size_t e = 0; e < n; e++) {
		if (s[e].cycles == 0 || !s[e].data ||
		    s[e].stride < (size_t)(p->nsettings + p->nsensors) ||
		    (training && !(s[e].end_rul >= 0 && s[e].end_rul < 1e9))) {
			snprintf(err, errlen, "history %zu: empty or malformed", e + 1);
			return 0;
		}
		for (size_t i = 0; i < s[e].cycles * s[e].stride; i++)
			if (!isfinite(s[e].data[i]) &&
			    (i % s[e].stride) < (size_t)(p->nsettings + p->nsensors)) {
				snprintf(err, errlen, "history %zu, cycle %zu: not a finite number",
					 e + 1, i / s[e].stride + 1);
				return 0;
			}
	}
	return 1;
}

static enum mote_err xgb_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "xgboost: %s: %s", what, XGBGetLastError());
	return MOTE_EIO;
}

static int set_param(BoosterHandle b, const char *k, double v)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%.17g", v);
	return XGBoosterSetParam(b, k, buf);
}

static int configure(BoosterHandle b, const struct rul_params *p, unsigned seed)
{
	return XGBoosterSetParam(b, "verbosity", "0") ||
	       XGBoosterSetParam(b, "objective", "reg:squarederror") ||
	       XGBoosterSetParam(b, "tree_method", "hist") || set_param(b, "nthread", p->threads) ||
	       set_param(b, "seed", seed) || set_param(b, "max_depth", p->depth) ||
	       set_param(b, "eta", p->eta) || set_param(b, "subsample", p->subsample) ||
	       set_param(b, "colsample_bytree", p->colsample) ||
	       set_param(b, "min_child_weight", p->min_child) ||
	       set_param(b, "lambda", p->lambda) || set_param(b, "base_score", p->cap / 2);
}

#define PREDICT_CONFIG                                                                             \
	"{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,\"strict_"       \
	"shape\":false}"

/* splitmix64: a small, seedable generator for the bootstrap and the folds. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* From libgomp (XGBoost's OpenMP runtime), declared here rather than through
 * <omp.h>, which clang builds (fuzz) may not have. */
void omp_set_num_threads(int n);

/* Before any XGBoost call: quiet (it would print warnings on stderr), and at
 * most `threads` OpenMP threads even where XGBoost does not pass its nthread
 * (loading a model parses its trees in parallel before the booster is
 * configured). The OpenMP setting belongs to the calling thread only. */
static void xgb_enter(int threads)
{
	XGBSetGlobalConfig("{\"verbosity\":0}");
	omp_set_num_threads(threads);
}

/* Features and labels of every cycle of every history (rows x nf, rows). */
static enum mote_err build_matrix(const struct rul_model *m, const struct rul_series *s, size_t n,
				  float **xo, float **yo, size_t **starto, size_t *rowso)
{
	size_t rows = 0;
	for (size_t e = 0; e < n; e++)
		rows += s[e].cycles;
	float *x = malloc(sizeof(float) * rows * (size_t)m->nf);
	float *y = malloc(sizeof(float) * rows);
	size_t *start = malloc(sizeof(size_t) * (n + 1));
	if (!x || !y || !start) {
		free(x);
		free(y);
		free(start);
		return MOTE_ENOMEM;
	}
	size_t r = 0;
	for (size_t e = 0; e < n; e++) {
		start[e] = r;
		enum mote_err rc = rul_features(&m->nm, &m->p, &s[e], 1, x + r * (size_t)m->nf);
		if (rc != MOTE_OK) {
			free(x);
			free(y);
			free(start);
			return rc;
		}
		for (size_t i = 0; i < s[e].cycles; i++)
			y[r + i] =
			    (float)fmin((double)(s[e].cycles - 1 - i) + s[e].end_rul, m->p.cap);
		r += s[e].cycles;
	}
	start[n] = r;
	*xo = x;
	*yo = y;
	*starto = start;
	*rowso = rows;
	return MOTE_OK;
}

static int iv_bin(const struct rul_model *m, double est)
{
	int b = (int)(est / m->p.cap * RUL_IV_BINS);
	return b < 0 ? 0 : b >= RUL_IV_BINS ? RUL_IV_BINS - 1 : b;
}

/*
 * The interval from out-of-bag errors: each training row is estimated by the
 * boosters whose bootstrap did not draw its engine (about a third of them),
 * and the 10th/90th percentiles of truth - estimate, per bin of the
 * estimate (errors grow with the RUL), become the offsets of an 80 %
 * interval. A bin with fewer than 50 rows uses the percentiles of all rows.
 */
static enum mote_err fit_interval(struct rul_model *m, const float *x, const float *y,
				  const size_t *start, size_t n, const unsigned char *drawn,
				  char *err, size_t errlen)
{
	size_t rows = start[n], nb = (size_t)m->p.bags;
	double *sum = calloc(rows, sizeof *sum), *res = malloc(sizeof(double) * rows);
	unsigned *cnt = calloc(rows, sizeof *cnt);
	int *bin = malloc(sizeof(int) * rows);
	DMatrixHandle dm = NULL;
	enum mote_err rc = MOTE_OK;
	if (!sum || !res || !cnt || !bin) {
		snprintf(err, errlen, "out of memory");
		rc = MOTE_ENOMEM;
		goto out;
	}
	if (XGDMatrixCreateFromMat_omp(x, rows, (bst_ulong)m->nf, NAN, &dm, m->p.threads)) {
		rc = xgb_fail(err, errlen, "matrix");
		goto out;
	}
	for (size_t b = 0; b < nb; b++) {
		const bst_ulong *shape;
		bst_ulong dim;
		const float *out;
		if (XGBoosterPredictFromDMatrix(m->bag[b], dm, PREDICT_CONFIG, &shape, &dim,
						&out)) {
			rc = xgb_fail(err, errlen, "predict");
			goto out;
		}
		for (size_t e = 0; e < n; e++) {
			if (drawn[e * nb + b])
				continue;
			for (size_t r = start[e]; r < start[e + 1]; r++) {
				sum[r] += fmin(fmax(out[r], 0), m->p.cap);
				cnt[r]++;
			}
		}
	}
	size_t k = 0;
	for (size_t r = 0; r < rows; r++)
		if (cnt[r]) {
			double est = sum[r] / cnt[r];
			res[k] = y[r] - est;
			bin[k++] = iv_bin(m, est);
		}
	m->nm.iv_bins = 0;
	if (k < 50)
		goto out; /* too few: the spread of the boosters instead */
	/* Sort (bin, residual) pairs by bin, then each bin's residuals. */
	double *all = malloc(sizeof(double) * k), *one = malloc(sizeof(double) * k);
	if (!all || !one) {
		free(all);
		free(one);
		snprintf(err, errlen, "out of memory");
		rc = MOTE_ENOMEM;
		goto out;
	}
	memcpy(all, res, sizeof(double) * k);
	stats_sort(all, k);
	for (int b = 0; b < RUL_IV_BINS; b++) {
		size_t c = 0;
		for (size_t i = 0; i < k; i++)
			if (bin[i] == b)
				one[c++] = res[i];
		const double *q = all;
		if (c >= 50) {
			stats_sort(one, c);
			q = one;
		} else {
			c = k;
		}
		m->nm.iv_lo[b] = stats_quantile(q, c, 0.1);
		m->nm.iv_hi[b] = stats_quantile(q, c, 0.9);
	}
	m->nm.iv_bins = RUL_IV_BINS;
	free(all);
	free(one);
out:
	if (dm)
		XGDMatrixFree(dm);
	free(sum);
	free(res);
	free(cnt);
	free(bin);
	return rc;
}

void rul_free(struct rul_model *m)
{
	if (!m)
		return;
	for (int b = 0; b < m->nbags; b++)
		XGBoosterFree(m->bag[b]);
	free(m);
}

enum mote_err rul_train(const struct rul_params *p, const struct rul_series *s, size_t n,
			struct rul_model **out, char *err, size_t errlen)
{
	enum mote_err rc;
	float *x = NULL, *y = NULL, *w = NULL, *bx = NULL, *by = NULL;
	unsigned *count = NULL;
	unsigned char *drawn = NULL; /* n x bags: engine e in bag b */
	size_t *start = NULL, rows = 0;
	DMatrixHandle dm = NULL;
	struct rul_model *m = NULL;

	*out = NULL;
	if (!params_ok(p, err, errlen) || !series_ok(p, s, n, 1, err, errlen))
		return MOTE_EINVAL;
	xgb_enter(p->threads);
	m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	m->p = *p;
	m->nf = rul_nfeatures(p);
	rc = rul_norm_fit(p, s, n, &m->nm, err, errlen);
	if (rc != MOTE_OK)
		goto out;
	rc = build_matrix(m, s, n, &x, &y, &start, &rows);
	if (rc == MOTE_OK &&
	    (!(w = malloc(sizeof(float) * rows)) ||
	     !(bx = malloc(sizeof(float) * rows * (size_t)m->nf)) ||
	     !(by = malloc(sizeof(float) * rows)) || !(count = malloc(sizeof(unsigned) * n)) ||
	     !(drawn = malloc(n * (size_t)p->bags))))
		rc = MOTE_ENOMEM;
	if (rc != MOTE_OK) {
		snprintf(err, errlen, "%s", mote_strerror(rc));
		goto out;
	}
	uint64_t rng = p->seed;
	for (int b = 0; b < p->bags; b++) {
		/* Bootstrap over machines, not rows: rows of one machine are not
		 * independent, and the spread should say how much the model
		 * depends on which machines it saw. A machine drawn k times is
		 * in the matrix once with weight k; one not drawn is left out
		 * (not weighted 0: a third of the rows would cost time for
		 * nothing). */
		for (size_t e = 0; e < n; e++)
			count[e] = p->bags == 1;
		if (p->bags > 1)
			for (size_t e = 0; e < n; e++)
				count[(size_t)(mix(&rng) % n)]++;
		size_t br = 0;
		for (size_t e = 0; e < n; e++) {
			drawn[e * (size_t)p->bags + (size_t)b] = count[e] > 0;
			if (!count[e])
				continue;
			size_t len = start[e + 1] - start[e];
			memcpy(bx + br * (size_t)m->nf, x + start[e] * (size_t)m->nf,
			       sizeof(float) * len * (size_t)m->nf);
			memcpy(by + br, y + start[e], sizeof(float) * len);
			for (size_t r = 0; r < len; r++)
				w[br + r] = (float)count[e];
			br += len;
		}
		BoosterHandle bh;
		if (dm)
			XGDMatrixFree(dm);
		dm = NULL;
		if (XGDMatrixCreateFromMat_omp(bx, br, (bst_ulong)m->nf, NAN, &dm, p->threads) ||
		    XGDMatrixSetFloatInfo(dm, "label", by, br) ||
		    XGDMatrixSetFloatInfo(dm, "weight", w, br) || XGBoosterCreate(&dm, 1, &bh)) {
			rc = xgb_fail(err, errlen, "training matrix");
			goto out;
		}
		m->bag[m->nbags++] = bh;
		if (configure(bh, p, p->seed + (unsigned)b)) {
			rc = xgb_fail(err, errlen, "parameters");
			goto out;
		}
		for (int it = 0; it < p->rounds; it++)
			if (XGBoosterUpdateOneIter(bh, it, dm)) {
				rc = xgb_fail(err, errlen, "training");
				goto out;
			}
	}
	if (p->bags > 1 && (rc = fit_interval(m, x, y, start, n, drawn, err, errlen)) != MOTE_OK)
		goto out;
	*out = m;
	m = NULL;
out:
	if (dm)
		XGDMatrixFree(dm);
	free(x);
	free(y);
	free(w);
	free(bx);
	free(by);
	free(count);
	free(drawn);
	free(start);
	rul_free(m);
	return rc;
}

/* Mean of the boosters for each of rows feature rows, with the out-of-bag
 * interval (or, without one, the lowest and highest booster). */
static enum mote_err predict_rows(const struct rul_model *m, const float *x, size_t rows,
				  struct rul_estimate *out, char *err, size_t errlen)
{
	DMatrixHandle dm;
	xgb_enter(m->p.threads);
	if (XGDMatrixCreateFromMat_omp(x, rows, (bst_ulong)m->nf, NAN, &dm, m->p.threads))
		return xgb_fail(err, errlen, "matrix");
	for (size_t r = 0; r < rows; r++) {
		out[r].rul = 0;
		out[r].lo = INFINITY;
		out[r].hi = -INFINITY;
	}
	enum mote_err rc = MOTE_OK;
	for (int b = 0; b < m->nbags; b++) {
		const bst_ulong *shape;
		bst_ulong dim;
		const float *res;
		if (XGBoosterPredictFromDMatrix(m->bag[b], dm, PREDICT_CONFIG, &shape, &dim,
						&res)) {
			rc = xgb_fail(err, errlen, "predict");
			break;
		}
		for (size_t r = 0; r < rows; r++) {
			double v = fmin(fmax(res[r], 0), m->p.cap);
			out[r].rul += v / m->nbags;
			out[r].lo = fmin(out[r].lo, v);
			out[r].hi = fmax(out[r].hi, v);
		}
	}
	XGDMatrixFree(dm);
	for (size_t r = 0; rc == MOTE_OK && m->nm.iv_bins && r < rows; r++) {
		int b = iv_bin(m, out[r].rul);
		out[r].lo = fmin(out[r].rul, fmax(out[r].rul + m->nm.iv_lo[b], 0));
		out[r].hi = fmax(out[r].rul, fmin(out[r].rul + m->nm.iv_hi[b], m->p.cap));
	}
	return rc;
}

enum mote_err rul_predict(const struct rul_model *m, const struct rul_series *s, size_t n,
			  struct rul_estimate *out, char *err, size_t errlen)
{
	if (!series_ok(&m->p, s, n, 0, err, errlen))
		return MOTE_EINVAL;
	float *x = malloc(sizeof(float) * n * (size_t)m->nf);
	if (!x) {
		snprintf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	enum mote_err rc = MOTE_OK;
	for (size_t e = 0; e < n && rc == MOTE_OK; e++)
		rc = rul_features(&m->nm, &m->p, &s[e], 0, x + e * (size_t)m->nf);
	if (rc != MOTE_OK)
		snprintf(err, errlen, "%s", mote_strerror(rc));
	else
		rc = predict_rows(m, x, n, out, err, errlen);
	free(x);
	return rc;
}

const struct rul_params *rul_model_params(const struct rul_model *m)
{
	return &m->p;
}

int rul_model_conditions(const struct rul_model *m)
{
	return m->nm.ncond;
}

int rul_model_features(const struct rul_model *m)
{
	return m->nf;
}

double rul_phm08(double predicted, double truth)
{
	double d = predicted - truth;
	return d < 0 ? exp(-d / 13) - 1 : exp(d / 10) - 1;
}

enum mote_err rul_cv(const struct rul_params *p, const struct rul_series *s, size_t n, int k,
		     struct rul_cv_result *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (k < 2 || (size_t)k > n) {
		snprintf(err, errlen, "need 2 <= folds <= histories (%zu)", n);
		return MOTE_EINVAL;
	}
	size_t *order = malloc(sizeof(size_t) * n);
	struct rul_series *tr = malloc(sizeof *tr * n), *te = malloc(sizeof *te * n);
	enum mote_err rc = MOTE_OK;
	double se = 0, sc = 0, inside = 0;
	if (!order || !tr || !te) {
		rc = MOTE_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	uint64_t rng = p->seed ^ 0x5eedf01dull;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(mix(&rng) % (i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int f = 0; f < k && rc == MOTE_OK; f++) {
		size_t ntr = 0, nte = 0;
		for (size_t i = 0; i < n; i++) {
			if ((int)(i % (size_t)k) == f)
				te[nte++] = s[order[i]];
			else
				tr[ntr++] = s[order[i]];
		}
		struct rul_model *m;
		rc = rul_train(p, tr, ntr, &m, err, errlen);
		if (rc != MOTE_OK)
			break;
		float *x = NULL, *y = NULL;
		size_t *start = NULL, rows = 0;
		struct rul_estimate *est = NULL;
		rc = build_matrix(m, te, nte, &x, &y, &start, &rows);
		if (rc == MOTE_OK && !(est = malloc(sizeof *est * rows)))
			rc = MOTE_ENOMEM;
		if (rc != MOTE_OK)
			snprintf(err, errlen, "%s", mote_strerror(rc));
		else
			rc = predict_rows(m, x, rows, est, err, errlen);
		for (size_t r = 0; rc == MOTE_OK && r < rows; r++) {
			double d = est[r].rul - y[r];
			se += d * d;
			sc += rul_phm08(est[r].rul, y[r]);
			inside += est[r].lo <= y[r] && y[r] <= est[r].hi;
			out->points++;
		}
		free(x);
		free(y);
		free(start);
		free(est);
		rul_free(m);
	}
	if (rc == MOTE_OK && out->points) {
		out->rmse = sqrt(se / (double)out->points);
		out->score_mean = sc / (double)out->points;
		out->coverage = inside / (double)out->points;
	}
out:
	free(order);
	free(tr);
	free(te);
	return rc;
}

/* ---- model file ---- */

static const char magic[8] = {'M', 'O', 'T', 'E', 'R', 'U', 'L', '1'};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

struct wbuf {
	FILE *f;
	uint64_t h;
	int bad;
};

static void put(struct wbuf *w, const void *p, size_t n)
{
	if (fwrite(p, 1, n, w->f) != n)
		w->bad = 1;
	w->h = fnv(w->h, p, n);
}

enum mote_err rul_save(const struct rul_model *m, const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		snprintf(err, errlen, "%s: path too long", path);
		return MOTE_EINVAL;
	}
	struct wbuf w = {fopen(tmp, "wb"), 0xcbf29ce484222325ull, 0};
	if (!w.f) {
		snprintf(err, errlen, "%s: cannot write", tmp);
		return MOTE_EIO;
	}
	uint32_t sizes[2] = {sizeof m->p, sizeof m->nm}, nb = (uint32_t)m->nbags;
	xgb_enter(m->p.threads);
	put(&w, magic, sizeof magic);
	put(&w, sizes, sizeof sizes);
	put(&w, &m->p, sizeof m->p);
	put(&w, &m->nm, sizeof m->nm);
	put(&w, &nb, sizeof nb);
	enum mote_err rc = MOTE_OK;
	for (int b = 0; b < m->nbags && rc == MOTE_OK; b++) {
		bst_ulong len;
		const char *buf;
		if (XGBoosterSaveModelToBuffer(m->bag[b], "{\"format\":\"ubj\"}", &len, &buf)) {
			rc = xgb_fail(err, errlen, "save");
			break;
		}
		uint64_t l = len;
		put(&w, &l, sizeof l);
		put(&w, buf, (size_t)len);
	}
	uint64_t h = w.h;
	if (fwrite(&h, 1, sizeof h, w.f) != sizeof h)
		w.bad = 1;
	if (fclose(w.f) != 0)
		w.bad = 1;
	if (rc == MOTE_OK && w.bad) {
		snprintf(err, errlen, "%s: write failed", tmp);
		rc = MOTE_EIO;
	}
	if (rc == MOTE_OK && rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: cannot rename to %s", tmp, path);
		rc = MOTE_EIO;
	}
	if (rc != MOTE_OK)
		remove(tmp);
	return rc;
}

struct rbuf {
	const char *p;
	size_t left;
};

static int take(struct rbuf *r, void *dst, size_t n)
{
	if (r->left < n)
		return 0;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return 1;
}

static int norm_ok(const struct rul_norm *nm, const struct rul_params *p)
{
	if (nm->ncond < 1 || nm->ncond > RUL_MAX_CONDITIONS)
		return 0;
	for (int j = 0; j < p->nsettings; j++)
		if (!(nm->tol[j] > 0 && isfinite(nm->tol[j])))
			return 0;
	for (int c = 0; c < nm->ncond; c++) {
		for (int j = 0; j < p->nsettings; j++)
			if (!isfinite(nm->centroid[c][j]))
				return 0;
		for (int k = 0; k < p->nuse; k++)
			if (!isfinite(nm->mean[c][k]) ||
			    !(nm->sd[c][k] > 0 && isfinite(nm->sd[c][k])))
				return 0;
	}
	for (int k = 0; k <= p->nuse; k++)
		if (!isfinite(nm->hi_w[k]))
			return 0;
	if (nm->iv_bins != 0 && nm->iv_bins != RUL_IV_BINS)
		return 0;
	for (int b = 0; b < nm->iv_bins; b++)
		if (!isfinite(nm->iv_lo[b]) || !isfinite(nm->iv_hi[b]) ||
		    nm->iv_lo[b] > nm->iv_hi[b])
			return 0;
	return 1;
}

enum mote_err rul_load(const char *path, struct rul_model **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	struct rul_model *m = NULL;
	*out = NULL;
	enum mote_err rc = mote_read_file(path, 1u << 30, &text, &len);
	if (rc != MOTE_OK) {
		snprintf(err, errlen, "%s: cannot read: %s", path, mote_strerror(rc));
		return rc;
	}
	rc = MOTE_EMALFORMED;
	uint64_t h;
	if (len < sizeof magic + sizeof h || memcmp(text, magic, sizeof magic) != 0) {
		snprintf(err, errlen, "%s: not a mote RUL model", path);
		goto out;
	}
	memcpy(&h, text + len - sizeof h, sizeof h);
	if (fnv(0xcbf29ce484222325ull, text, len - sizeof h) != h) {
		snprintf(err, errlen, "%s: checksum mismatch (corrupt or truncated)", path);
		goto out;
	}
	struct rbuf r = {text + sizeof magic, len - sizeof magic - sizeof h};
	uint32_t sizes[2], nb;
	m = calloc(1, sizeof *m);
	if (!m) {
		rc = MOTE_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!take(&r, sizes, sizeof sizes) || sizes[0] != sizeof m->p || sizes[1] != sizeof m->nm ||
	    !take(&r, &m->p, sizeof m->p) || !take(&r, &m->nm, sizeof m->nm) ||
	    !take(&r, &nb, sizeof nb)) {
		snprintf(err, errlen, "%s: header does not match this build", path);
		goto out;
	}
	char perr[128];
	if (!params_ok(&m->p, perr, sizeof perr) || !norm_ok(&m->nm, &m->p) ||
	    nb != (uint32_t)m->p.bags) {
		snprintf(err, errlen, "%s: inconsistent model parameters", path);
		goto out;
	}
	m->nf = rul_nfeatures(&m->p);
	xgb_enter(m->p.threads);
	for (uint32_t b = 0; b < nb; b++) {
		uint64_t l;
		if (!take(&r, &l, sizeof l) || l > r.left) {
			snprintf(err, errlen, "%s: truncated booster %u", path, b + 1);
			goto out;
		}
		BoosterHandle bh;
		if (XGBoosterCreate(NULL, 0, &bh)) {
			rc = xgb_fail(err, errlen, "booster");
			goto out;
		}
		m->bag[m->nbags++] = bh;
		bst_ulong nfeat = 0;
		/* nthread before the load: parsing the model is parallel too. */
		if (set_param(bh, "nthread", m->p.threads) ||
		    XGBoosterLoadModelFromBuffer(bh, r.p, (bst_ulong)l) ||
		    set_param(bh, "nthread", m->p.threads) || XGBoosterGetNumFeature(bh, &nfeat)) {
			snprintf(err, errlen, "%s: booster %u: %s", path, b + 1, XGBGetLastError());
			goto out;
		}
		if (nfeat != (bst_ulong)m->nf) {
			snprintf(err, errlen, "%s: booster %u: %lu features, expected %d", path,
				 b + 1, (unsigned long)nfeat, m->nf);
			goto out;
		}
		r.p += l;
		r.left -= l;
	}
	if (r.left != 0) {
		snprintf(err, errlen, "%s: trailing bytes", path);
		goto out;
	}
	*out = m;
	m = NULL;
	rc = MOTE_OK;
out:
	free(text);
	rul_free(m);
	return rc;
}
