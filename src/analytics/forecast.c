/*
 * forecast.c - online first-order, linear and trend models (recursive least
 * squares with forgetting) and their Monte Carlo predictions. Contract and
 * model equations: forecast.h; why these models: docs/analytics.md.
 *
 * Invariants: theta and P only ever change through rls_update, which refuses
 * non-finite input and keeps P symmetric with a bounded trace (without
 * excitation, forgetting alone would let P grow without limit: "covariance
 * wind-up", after which one sample swings the parameters wildly).
 */
#include "analytics/forecast.h"
#include "analytics/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define P_INIT 1e4        /* initial covariance: "know nothing" */
#define P_TRACE_MAX 1e6   /* the wind-up bound */
#define WARMUP 20         /* updates before the outlier gate applies */
#define GATE_SIGMAS 6.0
#define GATE_STREAK 5     /* this many outliers in a row: a new regime, learn */
#define READY_FIRST 12    /* block pairs before a first-order fit is used */
#define READY_LINEAR 10
#define READY_TREND 8
#define DRAWS_DEFAULT 200
#define DRAWS_MAX 2000
#define THETA_SLOTS (FC_RLS_MAX + 1) /* a draw's parameters + its input deviate */

/* ---- recursive least squares ---- */

static void rls_init(struct fc_rls *r, unsigned n, double lambda)
{
	memset(r, 0, sizeof *r);
	r->n = n;
	r->lambda = lambda > 0 && lambda <= 1 ? lambda : 1;
	for (unsigned i = 0; i < n; i++)
		r->P[i][i] = P_INIT;
}

static bool all_finite(const double *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

/*
 * Learns y = theta . phi. Returns false when the sample was refused
 * (non-finite, degenerate, or an outlier).
 */
static bool rls_update(struct fc_rls *r, const double *phi, double y, unsigned *streak)
{
	unsigned n = r->n;
	if (!all_finite(phi, n) || !isfinite(y))
		return false;
	double Pphi[FC_RLS_MAX], den = r->lambda, pred = 0;
	for (unsigned i = 0; i < n; i++) {
		Pphi[i] = 0;
		for (unsigned j = 0; j < n; j++)
			Pphi[i] += r->P[i][j] * phi[j];
		den += phi[i] * Pphi[i];
		pred += r->theta[i] * phi[i];
	}
	if (!(den > 0) || !isfinite(den))
		return false;
	double e = y - pred;
	if (r->updates >= WARMUP && e * e > GATE_SIGMAS * GATE_SIGMAS * r->var) {
		if (++*streak < GATE_STREAK) {
			r->outliers++;
			return false;
		}
	}
	*streak = 0;
	for (unsigned i = 0; i < n; i++)
		r->theta[i] += Pphi[i] / den * e;
	double trace = 0;
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = i; j < n; j++) {
			double v = (r->P[i][j] - Pphi[i] * Pphi[j] / den) / r->lambda;
			r->P[i][j] = r->P[j][i] = v;
		}
		trace += r->P[i][i];
	}
	if (trace > P_TRACE_MAX)
		for (unsigned i = 0; i < n; i++)
			for (unsigned j = 0; j < n; j++)
				r->P[i][j] *= P_TRACE_MAX / trace;
	/* The residual variance, from the error after the update
	 * (e * lambda / den): the error before it is dominated, early on, by
	 * parameters that know nothing yet, and would inflate every band for
	 * a long time. It forgets like an average over the last ~50. */
	double ep = e * r->lambda / den;
	double alpha = r->updates < 50 ? 1.0 / (double)(r->updates + 1) : 0.02;
	r->var += alpha * (ep * ep - r->var);
	r->updates++;
	return true;
}

/* ---- first order ---- */

#define DAY_W (2 * M_PI / 86400.0)

void fc_first_order_init(struct fc_first_order *m, double block_s, double lambda)
{
	memset(m, 0, sizeof *m);
	m->block_s = block_s > 0 ? block_s : 60;
	rls_init(&m->rls, 5, lambda);
}

/* c(t) of theta at Unix time t. */
static double fo_offset(const double *theta, double t)
{
	return theta[2] + theta[3] * sin(DAY_W * t) + theta[4] * cos(DAY_W * t);
}

static void first_order_close_block(struct fc_first_order *m)
{
	double end = m->blk_start + m->block_s;
	if (m->blk_n > 0) {
		double y = m->blk_ysum / m->blk_n, u = m->blk_usum / m->blk_n;
		/* Consecutive blocks only: a whole empty block between is a gap. */
		if (m->have_prev && end - m->prev_end < 1.5 * m->block_s) {
			double mid = end - m->block_s / 2;
			double phi[5] = { m->prev_y, m->prev_u, 1, sin(DAY_W * mid),
					  cos(DAY_W * mid) };
			if (rls_update(&m->rls, phi, y, &m->streak)) {
				if (m->fitted == 0 || u < m->u_lo)
					m->u_lo = u;
				if (m->fitted == 0 || u > m->u_hi)
					m->u_hi = u;
				m->fitted++;
			}
		}
		m->prev_y = y;
		m->prev_u = u;
		m->prev_end = end;
		m->have_prev = true;
	}
	m->blk_ysum = m->blk_usum = 0;
	m->blk_n = 0;
}

void fc_first_order_add(struct fc_first_order *m, double t_s, double y, double u)
{
	if (!isfinite(t_s) || !isfinite(y) || !isfinite(u) || (m->started && t_s < m->last_t)) {
		m->skipped++;
		return;
	}
	if (!m->started) {
		m->started = true;
		m->blk_start = t_s;
	}
	m->last_t = t_s;
	if (t_s >= m->blk_start + m->block_s) {
		first_order_close_block(m);
		m->blk_start += floor((t_s - m->blk_start) / m->block_s) * m->block_s;
	}
	m->blk_ysum += y;
	m->blk_usum += u;
	m->blk_n++;
}

bool fc_first_order_ready(const struct fc_first_order *m)
{
	double a = m->rls.theta[0];
	return m->fitted >= READY_FIRST && a > 0 && a < 1;
}

enum mote_err fc_first_order_params(const struct fc_first_order *m, double *K, double *tau_s,
				    double *y0, double *sigma)
{
	if (!fc_first_order_ready(m))
		return MOTE_EAGAIN;
	double a = m->rls.theta[0], b = m->rls.theta[1];
	double c = fo_offset(m->rls.theta, m->prev_end - m->block_s / 2);
	*K = b / (1 - a);
	*tau_s = -m->block_s / log(a);
	*y0 = c / (1 - a);
	*sigma = sqrt(m->rls.var);
	return MOTE_OK;
}

bool fc_first_order_state(const struct fc_first_order *m, double *y, double *u, double *t_s)
{
	if (!m->have_prev)
		return false;
	*y = m->prev_y;
	*u = m->prev_u;
	*t_s = m->prev_end;
	return true;
}

/* ---- linear ---- */

void fc_linear_init(struct fc_linear *m, double lambda)
{
	memset(m, 0, sizeof *m);
	rls_init(&m->rls, 2, lambda);
}

void fc_linear_add(struct fc_linear *m, double u, double y)
{
	double phi[2] = { u, 1 };
	if (!isfinite(u) || !isfinite(y) || !rls_update(&m->rls, phi, y, &m->streak)) {
		m->skipped++;
		return;
	}
	if (m->rls.updates == 1 || u < m->u_lo)
		m->u_lo = u;
	if (m->rls.updates == 1 || u > m->u_hi)
		m->u_hi = u;
}

bool fc_linear_ready(const struct fc_linear *m)
{
	return m->rls.updates >= READY_LINEAR && m->u_hi > m->u_lo;
}

enum mote_err fc_linear_predict(const struct fc_linear *m, double u, double *y, double *sigma)
{
	if (!fc_linear_ready(m))
		return MOTE_EAGAIN;
	if (!isfinite(u))
		return MOTE_EINVAL;
	*y = m->rls.theta[0] * u + m->rls.theta[1];
	/* parameter variance along (u, 1) plus the residual noise */
	const double(*P)[FC_RLS_MAX] = m->rls.P;
	double pv = P[0][0] * u * u + 2 * P[0][1] * u + P[1][1];
	*sigma = sqrt(m->rls.var * (1 + (pv > 0 ? pv : 0)));
	return MOTE_OK;
}

/* ---- trend ---- */

void fc_trend_init(struct fc_trend *m, double block_s, double lambda)
{
	memset(m, 0, sizeof *m);
	m->block_s = block_s > 0 ? block_s : 3600;
	rls_init(&m->rls, 2, lambda);
}

static void trend_close_block(struct fc_trend *m)
{
	if (m->blk_n > 0) {
		double mid_h = (m->blk_start + m->block_s / 2 - m->t0) / 3600.0;
		double phi[2] = { 1, mid_h };
		if (rls_update(&m->rls, phi, log(m->blk_sum / m->blk_n), &m->streak)) {
			m->last_mid_h = mid_h;
			m->have_block = true;
		}
	}
	m->blk_sum = 0;
	m->blk_n = 0;
}

void fc_trend_add(struct fc_trend *m, double t_s, double y)
{
	if (!isfinite(t_s) || !isfinite(y) || y <= 0 || (m->started && t_s < m->last_t)) {
		m->skipped++;
		return;
	}
	if (!m->started) {
		m->started = true;
		m->t0 = m->blk_start = t_s;
	}
	m->last_t = t_s;
	if (t_s >= m->blk_start + m->block_s) {
		trend_close_block(m);
		m->blk_start += floor((t_s - m->blk_start) / m->block_s) * m->block_s;
	}
	m->blk_sum += y;
	m->blk_n++;
}

bool fc_trend_ready(const struct fc_trend *m)
{
	return m->rls.updates >= READY_TREND && m->have_block;
}

enum mote_err fc_trend_crossing(const struct fc_trend *m, double threshold, double *hours,
				double *lo_hours, double *hi_hours)
{
	if (!fc_trend_ready(m))
		return MOTE_EAGAIN;
	if (!(threshold > 0) || !isfinite(threshold))
		return MOTE_EINVAL;
	double p = m->rls.theta[0], r = m->rls.theta[1], L = log(threshold), now = m->last_mid_h;
	double level = p + r * now;
	bool rising = L > level;
	if (L == level) {
		*hours = *lo_hours = *hi_hours = 0;
		return MOTE_OK;
	}
	if (r == 0 || (r > 0) != rising)
		return MOTE_ENOTFOUND;
	/* h(theta) = (L - p) / r - now; gradient (-1/r, -(L - p)/r^2) */
	double h = (L - p) / r - now;
	double g0 = -1 / r, g1 = -(L - p) / (r * r);
	double var = m->rls.var * (g0 * g0 * m->rls.P[0][0] + 2 * g0 * g1 * m->rls.P[0][1] +
				   g1 * g1 * m->rls.P[1][1]);
	double sd = var > 0 ? sqrt(var) : 0;
	*hours = h;
	*lo_hours = fmax(0, h - 1.645 * sd);
	*hi_hours = h + 1.645 * sd;
	return MOTE_OK;
}

/* ---- prediction ---- */

/* splitmix64: a small, seedable generator; the state is the caller's. */
static uint64_t next_u64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
	/* Box-Muller; u1 in (0, 1] so log is finite. */
	double u1 = ((double)(next_u64(s) >> 11) + 1.0) / 9007199254740992.0;
	double u2 = (double)(next_u64(s) >> 11) / 9007199254740992.0;
	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* L with L L^T = var * P (n <= 3); a direction with no variance gets 0. */
static void cholesky(const struct fc_rls *r, double L[FC_RLS_MAX][FC_RLS_MAX])
{
	unsigned n = r->n;
	memset(L, 0, sizeof(double) * FC_RLS_MAX * FC_RLS_MAX);
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j <= i; j++) {
			double s = r->var * r->P[i][j];
			for (unsigned k = 0; k < j; k++)
				s -= L[i][k] * L[j][k];
			if (i == j)
				L[i][i] = s > 0 ? sqrt(s) : 0;
			else
				L[i][j] = L[j][j] > 0 ? s / L[j][j] : 0;
		}
	}
}

/*
 * One parameter draw. ok(theta) may refuse a draw (an unstable first-order
 * pole); after a few refusals the estimate itself is used, so a model whose
 * uncertainty straddles instability gives a narrow band rather than a
 * diverging one - the band then understates, and the caller says so
 * through the draws' spread of the stable ones.
 */
static void draw_params(const struct fc_rls *r, double L[FC_RLS_MAX][FC_RLS_MAX], uint64_t *rng,
			bool (*ok)(const double *theta), double *theta)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		double z[FC_RLS_MAX];
		for (unsigned i = 0; i < r->n; i++)
			z[i] = normal(rng);
		for (unsigned i = 0; i < r->n; i++) {
			theta[i] = r->theta[i];
			for (unsigned j = 0; j <= i; j++)
				theta[i] += L[i][j] * z[j];
		}
		if (!ok || ok(theta))
			return;
	}
	memcpy(theta, r->theta, sizeof(double) * r->n);
}

static bool crossed(double v, double thr, bool rising)
{
	return rising ? v >= thr : v <= thr;
}

/*
 * The shared Monte Carlo loop. step(theta, k, y) advances one model step k
 * (y in/out: the draw's noiseless state); the observation adds noise of
 * sd obs_sd (in log space when logscale). ctx carries the model.
 */
struct mc {
	const struct fc_rls *rls;
	double dt_s;                 /* one model step */
	double y0;                   /* the state at t = 0 */
	bool logscale;               /* trend: state is log y */
	void (*step)(const void *ctx, const double *theta, size_t k, double *y);
	bool (*ok)(const double *theta);  /* a draw the model can use, or NULL */
	const void *ctx;
};

static enum mote_err run_mc(const struct mc *mc, const struct fc_predict_opts *o,
			    struct fc_point *out, size_t cap, size_t *n, struct fc_crossing *cross)
{
	if (!o || !(o->horizon_s > 0) || !isfinite(o->horizon_s) || o->step_s < 0 ||
	    !isfinite(o->step_s) || o->draws > DRAWS_MAX ||
	    (o->have_threshold && !isfinite(o->threshold)))
		return MOTE_EINVAL;
	size_t stride = o->step_s > mc->dt_s ? (size_t)llround(o->step_s / mc->dt_s) : 1;
	size_t steps = (size_t)ceil(o->horizon_s / mc->dt_s);
	if (steps > 1000000)
		return MOTE_EINVAL;
	size_t npts = steps / stride + 1;
	if (npts > cap)
		return MOTE_ENOSPC;
	unsigned draws = o->draws ? o->draws : DRAWS_DEFAULT;
	/* per draw: the parameters and, in the last slot, the draw's input
	 * deviate (struct fc_step.u_sd) */
	double *theta = malloc(sizeof(double) * THETA_SLOTS * draws);
	double *state = malloc(sizeof(double) * draws);
	double *obs = malloc(sizeof(double) * draws);
	double *tcross = malloc(sizeof(double) * draws);
	enum mote_err err = MOTE_OK;
	if (!theta || !state || !obs || !tcross) {
		err = MOTE_ENOMEM;
		goto out;
	}
	uint64_t rng = o->seed;
	double L[FC_RLS_MAX][FC_RLS_MAX];
	cholesky(mc->rls, L);
	for (unsigned d = 0; d < draws; d++) {
		draw_params(mc->rls, L, &rng, mc->ok, theta + (size_t)d * THETA_SLOTS);
		theta[(size_t)d * THETA_SLOTS + FC_RLS_MAX] = normal(&rng);
		state[d] = mc->y0;
		tcross[d] = INFINITY;
	}
	double sd = sqrt(mc->rls->var), mean = mc->y0, mean_cross = INFINITY;
	double mtheta[THETA_SLOTS] = { 0 }; /* the estimate, input deviate 0 */
	memcpy(mtheta, mc->rls->theta, sizeof(double) * mc->rls->n);
	for (size_t k = 0, p = 0; k <= steps; k++) {
		if (k > 0) {
			mc->step(mc->ctx, mtheta, k - 1, &mean);
			for (unsigned d = 0; d < draws; d++)
				mc->step(mc->ctx, theta + (size_t)d * THETA_SLOTS, k - 1, &state[d]);
		}
		double t = (double)k * mc->dt_s;
		double mean_v = mc->logscale ? exp(mean) : mean;
		if (o->have_threshold) {
			if (mean_cross == INFINITY && crossed(mean_v, o->threshold, o->rising))
				mean_cross = t;
			for (unsigned d = 0; d < draws; d++) {
				double v = mc->logscale ? exp(state[d]) : state[d];
				if (tcross[d] == INFINITY && crossed(v, o->threshold, o->rising))
					tcross[d] = t;
			}
		}
		if (k % stride != 0)
			continue;
		for (unsigned d = 0; d < draws; d++) {
			double v = state[d] + sd * normal(&rng);
			obs[d] = mc->logscale ? exp(v) : v;
		}
		stats_sort(obs, draws);
		out[p] = (struct fc_point){ .t_s = t, .mean = mean_v,
					    .lo = stats_quantile(obs, draws, 0.05),
					    .hi = stats_quantile(obs, draws, 0.95) };
		*n = ++p;
	}
	if (cross) {
		memset(cross, 0, sizeof *cross);
		cross->mean_t_s = mean_cross;
		cross->mean_crosses = isfinite(mean_cross);
		cross->early_t_s = cross->late_t_s = INFINITY;
		if (o->have_threshold) {
			stats_sort(tcross, draws);
			size_t hit = 0;
			while (hit < draws && isfinite(tcross[hit]))
				hit++;
			cross->fraction = (double)hit / draws;
			if (hit > 0) {
				cross->early_t_s = stats_quantile(tcross, hit, 0.05);
				if (cross->fraction >= 0.95)
					cross->late_t_s = stats_quantile(tcross, draws, 0.95);
			}
		}
	}
out:
	free(theta);
	free(state);
	free(obs);
	free(tcross);
	return err;
}

/* ---- first-order forward run ---- */

struct fo_ctx {
	const struct fc_first_order *m;
	const struct fc_step *steps;
	size_t nsteps;
	double u0;
};

/* The input during model step k (from k*block to (k+1)*block), for a draw
 * whose input deviate is z. */
static double fo_input(const struct fo_ctx *c, size_t k, double z)
{
	double t = (double)k * c->m->block_s, u = c->u0;
	for (size_t i = 0; i < c->nsteps && c->steps[i].t_s <= t; i++)
		u = c->steps[i].u + z * c->steps[i].u_sd;
	return u;
}

static void fo_step(const void *ctx, const double *theta, size_t k, double *y)
{
	const struct fo_ctx *c = ctx;
	double mid = c->m->prev_end + ((double)k + 0.5) * c->m->block_s;
	*y = theta[0] * *y + theta[1] * fo_input(c, k, theta[FC_RLS_MAX]) + fo_offset(theta, mid);
}

/* A first-order lag: 0 < a < 1 (a >= 1 diverges, a <= 0 oscillates). */
static bool fo_stable(const double *theta)
{
	return theta[0] > 0 && theta[0] < 1;
}

enum mote_err fc_first_order_predict(const struct fc_first_order *m, const struct fc_step *steps,
				     size_t nsteps, const struct fc_predict_opts *o,
				     struct fc_point *out, size_t cap, size_t *n,
				     struct fc_crossing *cross)
{
	*n = 0;
	if (!fc_first_order_ready(m))
		return MOTE_EAGAIN;
	for (size_t i = 0; i < nsteps; i++)
		if (!isfinite(steps[i].t_s) || !isfinite(steps[i].u) || !isfinite(steps[i].u_sd) ||
		    steps[i].u_sd < 0 ||
		    (i > 0 && steps[i].t_s < steps[i - 1].t_s))
			return MOTE_EINVAL;
	struct fo_ctx c = { m, steps, nsteps, m->prev_u };
	struct mc mc = { &m->rls, m->block_s, m->prev_y, false, fo_step, fo_stable, &c };
	return run_mc(&mc, o, out, cap, n, cross);
}

/* ---- trend forward run ---- */

static void trend_step(const void *ctx, const double *theta, size_t k, double *y)
{
	const struct fc_trend *m = ctx;
	(void)k;
	*y += theta[1] * m->block_s / 3600.0;
}

enum mote_err fc_trend_predict(const struct fc_trend *m, const struct fc_predict_opts *o,
			       struct fc_point *out, size_t cap, size_t *n,
			       struct fc_crossing *cross)
{
	*n = 0;
	if (!fc_trend_ready(m))
		return MOTE_EAGAIN;
	double y0 = m->rls.theta[0] + m->rls.theta[1] * m->last_mid_h;
	struct mc mc = { &m->rls, m->block_s, y0, true, trend_step, NULL, m };
	return run_mc(&mc, o, out, cap, n, cross);
}
