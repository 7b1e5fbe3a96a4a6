/*
 * rul_features.c - normalisation and features of the RUL estimator
 * (rul_features.h).
 *
 * Operating conditions: leader clustering of the settings with a fixed
 * relative tolerance (cond_tol x max(1, largest |setting|) per setting). Real
 * regimes (C-MAPSS FD002/FD004: six altitude/Mach/throttle points) sit far
 * apart compared to the tolerance, the measurement noise within one regime
 * (FD001: +-0.009) well inside it, so no number of clusters is chosen per
 * data set.
 *
 * Sensors are z-scored per condition, then the health index (a ridge
 * regression of the capped RUL on the z-scores) adds one denoised channel.
 * For each channel the features at cycle t use prefix sums, so a whole
 * history costs O(cycles x channels): rolling means over 5/10/20/30 cycles,
 * the standard deviation over 10, least-squares slopes over 10/20/50, the
 * drift of the last 10 cycles from the machine's first 20 (its own healthy
 * baseline: engines start with different wear), and the mean of the whole
 * history. Windows longer than the history shrink to what exists. Plus the
 * cycle count. Nothing looks ahead of cycle t.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/rul_features.h"

static const int mean_w[] = {5, 10, 20, 30};
static const int slope_w[] = {10, 20, 50};
#define SD_W 10
#define DRIFT_W 10
#define BASE_W 20
#define NMEAN ((int)(sizeof mean_w / sizeof mean_w[0]))
#define NSLOPE ((int)(sizeof slope_w / sizeof slope_w[0]))

static int per_channel(const struct rul_params *p)
{
	int f = p->features;
	return NMEAN + !!(f & RUL_F_SPREAD) + ((f & RUL_F_SLOPE) ? NSLOPE : 0) +
	       !!(f & RUL_F_DRIFT) + !!(f & RUL_F_HISTORY);
}

static int channels(const struct rul_params *p)
{
	return p->nuse + !!(p->features & RUL_F_HEALTH);
}

int rul_nfeatures(const struct rul_params *p)
{
	return channels(p) * per_channel(p) + 1;
}

static double sensor(const struct rul_params *p, const struct rul_series *s, size_t i, int k)
{
	return s->data[i * s->stride + (size_t)p->nsettings + (size_t)p->use[k]];
}

int rul_condition(const struct rul_norm *nm, const struct rul_params *p, const double *settings)
{
	int best = 0;
	double best_d = INFINITY;
	for (int c = 0; c < nm->ncond; c++) {
		double d = 0;
		for (int j = 0; j < p->nsettings; j++) {
			double x = (settings[j] - nm->centroid[c][j]) / nm->tol[j];
			d += x * x;
		}
		if (d < best_d) {
			best_d = d;
			best = c;
		}
	}
	return best;
}

/* Solves the symmetric system a x = b (n unknowns) by Gaussian elimination
 * with partial pivoting; 0 when singular. */
static int solve(double *a, double *b, int n)
{
	for (int col = 0; col < n; col++) {
		int piv = col;
		for (int r = col + 1; r < n; r++)
			if (fabs(a[r * n + col]) > fabs(a[piv * n + col]))
				piv = r;
		if (fabs(a[piv * n + col]) < 1e-12)
			return 0;
		if (piv != col) {
			for (int k = 0; k < n; k++) {
				double t = a[col * n + k];
				a[col * n + k] = a[piv * n + k];
				a[piv * n + k] = t;
			}
			double t = b[col];
			b[col] = b[piv];
			b[piv] = t;
		}
		for (int r = col + 1; r < n; r++) {
			double f = a[r * n + col] / a[col * n + col];
			for (int k = col; k < n; k++)
				a[r * n + k] -= f * a[col * n + k];
			b[r] -= f * b[col];
		}
	}
	for (int r = n - 1; r >= 0; r--) {
		double v = b[r];
		for (int k = r + 1; k < n; k++)
			v -= a[r * n + k] * b[k];
		b[r] = v / a[r * n + r];
	}
	return 1;
}

static double zscore(const struct rul_norm *nm, const struct rul_params *p,
		     const struct rul_series *s, size_t i, int c, int k)
{
	return (sensor(p, s, i, k) - nm->mean[c][k]) / nm->sd[c][k];
}

enum mote_err rul_norm_fit(const struct rul_params *p, const struct rul_series *s, size_t n,
			   struct rul_norm *out, char *err, size_t errlen)
{
	struct rul_norm nm;
	memset(&nm, 0, sizeof nm);
	for (int j = 0; j < p->nsettings; j++) {
		double big = 1;
		for (size_t e = 0; e < n; e++)
			for (size_t i = 0; i < s[e].cycles; i++)
				big = fmax(big, fabs(s[e].data[i * s[e].stride + (size_t)j]));
		nm.tol[j] = p->cond_tol * big;
	}
	/* Leader clustering, then centroids as member means. */
	double sum[RUL_MAX_CONDITIONS][RUL_MAX_SETTINGS] = {{0}};
	double cnt[RUL_MAX_CONDITIONS] = {0};
	for (size_t e = 0; e < n; e++) {
		for (size_t i = 0; i < s[e].cycles; i++) {
			const double *set = &s[e].data[i * s[e].stride];
			int c = -1;
			for (int k = 0; k < nm.ncond && c < 0; k++) {
				int in = 1;
				for (int j = 0; j < p->nsettings; j++)
					if (fabs(set[j] - nm.centroid[k][j]) > nm.tol[j])
						in = 0;
				if (in)
					c = k;
			}
			if (c < 0) {
				if (nm.ncond == RUL_MAX_CONDITIONS) {
					snprintf(
					    err, errlen,
					    "more than %d operating conditions in the settings",
					    RUL_MAX_CONDITIONS);
					return MOTE_ETOOBIG;
				}
				c = nm.ncond++;
				memcpy(nm.centroid[c], set, sizeof(double) * (size_t)p->nsettings);
			}
			for (int j = 0; j < p->nsettings; j++)
				sum[c][j] += set[j];
			cnt[c]++;
		}
	}
	if (p->nsettings == 0)
		nm.ncond = 1;
	for (int c = 0; c < nm.ncond && p->nsettings > 0; c++)
		for (int j = 0; j < p->nsettings; j++)
			nm.centroid[c][j] = sum[c][j] / cnt[c];

	/* Per-condition mean and standard deviation of each used sensor. */
	double m1[RUL_MAX_CONDITIONS][RUL_MAX_SENSORS] = {{0}},
	       m2[RUL_MAX_CONDITIONS][RUL_MAX_SENSORS] = {{0}};
	double nc[RUL_MAX_CONDITIONS] = {0};
	for (size_t e = 0; e < n; e++)
		for (size_t i = 0; i < s[e].cycles; i++) {
			int c = rul_condition(&nm, p, &s[e].data[i * s[e].stride]);
			nc[c]++;
			for (int k = 0; k < p->nuse; k++) {
				double x = sensor(p, &s[e], i, k);
				m1[c][k] += x;
				m2[c][k] += x * x;
			}
		}
	for (int c = 0; c < nm.ncond; c++)
		for (int k = 0; k < p->nuse; k++) {
			double mu = nc[c] > 0 ? m1[c][k] / nc[c] : 0;
			double var = nc[c] > 1 ? (m2[c][k] - nc[c] * mu * mu) / (nc[c] - 1) : 0;
			double sd = var > 0 ? sqrt(var) : 0;
			nm.mean[c][k] = mu;
			nm.sd[c][k] =
			    sd > 1e-9 * fmax(1, fabs(mu)) ? sd : 1; /* a constant sensor stays ~0 */
		}

	/* Health index: ridge regression of min(RUL, cap) / cap on the z-scores. */
	int d = p->nuse + 1;
	double *a = calloc((size_t)d * (size_t)d, sizeof *a);
	double b[RUL_MAX_SENSORS + 1] = {0}, x[RUL_MAX_SENSORS + 1];
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return MOTE_ENOMEM;
	}
	double rows = 0;
	for (size_t e = 0; e < n; e++)
		for (size_t i = 0; i < s[e].cycles; i++) {
			int c = rul_condition(&nm, p, &s[e].data[i * s[e].stride]);
			for (int k = 0; k < p->nuse; k++)
				x[k] = zscore(&nm, p, &s[e], i, c, k);
			x[p->nuse] = 1;
			double rul = (double)(s[e].cycles - 1 - i) + s[e].end_rul;
			double y = fmin(rul, p->cap) / p->cap;
			for (int r = 0; r < d; r++) {
				b[r] += x[r] * y;
				for (int k = 0; k < d; k++)
					a[r * d + k] += x[r] * x[k];
			}
			rows++;
		}
	for (int r = 0; r < p->nuse; r++)
		a[r * d + r] += 1e-3 * rows; /* ridge, not on the intercept */
	int ok = solve(a, b, d);
	free(a);
	if (!ok) {
		snprintf(err, errlen, "health index: singular system (no training rows?)");
		return MOTE_EINVAL;
	}
	memcpy(nm.hi_w, b, sizeof(double) * (size_t)d);
	*out = nm;
	return MOTE_OK;
}

/* Mean of prefix-summed channel over rows [a, b). */
static double wmean(const double *ps, size_t a, size_t b)
{
	return (ps[b] - ps[a]) / (double)(b - a);
}

enum mote_err rul_features(const struct rul_norm *nm, const struct rul_params *p,
			   const struct rul_series *s, int all, float *out)
{
	size_t T = s->cycles;
	int ch = p->nuse + 1, nf = rul_nfeatures(p), fl = p->features;
	if (T == 0)
		return MOTE_EINVAL;
	/* Prefix sums per channel: sum z, sum z^2, sum i*z (i = row index). */
	size_t stride = T + 1;
	double *ps = malloc(sizeof(double) * stride * 3 * (size_t)ch);
	if (!ps)
		return MOTE_ENOMEM;
	for (int k = 0; k < ch; k++) {
		double *s1 = ps + (size_t)(3 * k) * stride, *s2 = s1 + stride, *s3 = s2 + stride;
		s1[0] = s2[0] = s3[0] = 0;
	}
	for (size_t i = 0; i < T; i++) {
		int c = rul_condition(nm, p, &s->data[i * s->stride]);
		double hi = nm->hi_w[p->nuse];
		for (int k = 0; k < ch; k++) {
			double z;
			if (k < p->nuse) {
				z = zscore(nm, p, s, i, c, k);
				hi += nm->hi_w[k] * z;
			} else {
				z = hi;
			}
			double *s1 = ps + (size_t)(3 * k) * stride, *s2 = s1 + stride,
			       *s3 = s2 + stride;
			s1[i + 1] = s1[i] + z;
			s2[i + 1] = s2[i] + z * z;
			s3[i + 1] = s3[i] + (double)i * z;
		}
	}
	size_t from = all ? 1 : T;
	for (size_t t = from; t <= T; t++) {
		float *f = out + (all ? (t - 1) * (size_t)nf : 0);
		int o = 0;
		for (int k = 0; k < channels(p); k++) {
			const double *s1 = ps + (size_t)(3 * k) * stride, *s2 = s1 + stride,
				     *s3 = s2 + stride;
			for (int w = 0; w < NMEAN; w++) {
				size_t a = t > (size_t)mean_w[w] ? t - (size_t)mean_w[w] : 0;
				f[o++] = (float)wmean(s1, a, t);
			}
			if (fl & RUL_F_SPREAD) {
				size_t a = t > SD_W ? t - SD_W : 0;
				double nn = (double)(t - a), mu = wmean(s1, a, t);
				double var =
				    nn > 1 ? ((s2[t] - s2[a]) - nn * mu * mu) / (nn - 1) : 0;
				f[o++] = (float)(var > 0 ? sqrt(var) : 0);
			}
			for (int w = 0; (fl & RUL_F_SLOPE) && w < NSLOPE; w++) {
				size_t a = t > (size_t)slope_w[w] ? t - (size_t)slope_w[w] : 0;
				double nn = (double)(t - a);
				double slope = 0;
				if (nn >= 2) {
					/* x = row index over [a, t): mean xm, Sxx = n(n^2-1)/12 */
					double xm = (double)(a + t - 1) / 2;
					double sy = s1[t] - s1[a], sxy = s3[t] - s3[a];
					slope = (sxy - xm * sy) / (nn * (nn * nn - 1) / 12);
				}
				f[o++] = (float)slope;
			}
			if (fl & RUL_F_DRIFT) {
				size_t b = t < BASE_W ? t : BASE_W;
				size_t a = t > DRIFT_W ? t - DRIFT_W : 0;
				f[o++] = (float)(wmean(s1, a, t) - wmean(s1, 0, b));
			}
			if (fl & RUL_F_HISTORY)
				f[o++] = (float)wmean(s1, 0, t);
		}
		f[o++] = (float)t;
	}
	free(ps);
	return MOTE_OK;
}
