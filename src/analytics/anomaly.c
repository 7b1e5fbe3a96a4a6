/*
 * anomaly.c - the streaming anomaly detector (see anomaly.h, docs/analytics.md).
 *
 * Per point, in this order (every statistic is updated only after the point
 * has been scored with the old one, so nothing looks ahead):
 *   1. residual: |value - baseline| over an exponentially weighted mean
 *      absolute residual, capped at z_cap -> r_res in [0, 1];
 *   1b. the same against the EW mean of this slot of the season (hour of the
 *      week by default);
 *   2. context novelty: the value is quantized between a learned min and max
 *      (which expand at once and contract slowly); the last `order` levels form
 *      a context, counted in a small hashed table whose counts are halved every
 *      ctx_forget points. An unseen context scores 1, a familiar one ~0;
 *   3. raw = w_novel * novelty + (1 - w_novel) * (mix of the two residuals);
 *   4. likelihood: the mean raw score of the last short_len points against the
 *      long-run mean and variance of that mean (as NAB's "anomaly
 *      likelihood"): the Gaussian tail probability q, reported as
 *      log(q + 1e-10) / log(1e-10) so that rarer is higher and 1 is the max;
 *   5. a spike channel: a residual beyond spike_z scales scores >= 0.5 on its
 *      own, also while the likelihood is still warming up;
 *   6. bursts: damping below the recent peak of the short mean, division by
 *      1 + alarm_gain * (decayed count of recent alarms), and a quiet period
 *      after each alarm: one event gives one early alarm, not a burst of
 *      alarms that would all count as false positives.
 * Invariants: n counts accepted points; lo <= hi once n > 0; the state stays
 * finite because non-finite input never reaches it.
 */
#include "analytics/anomaly.h"

#include <math.h>
#include <string.h>

void mote_anomaly_params_default(struct mote_anomaly_params *p)
{
	*p = (struct mote_anomaly_params){
	    .warmup = 150,
	    .alpha_level = 0.02,
	    .alpha_scale = 0.002,
	    .z_cap = 8.0,
	    .bins = 6,
	    .order = 2,
	    .range_decay = 2e-05,
	    .ctx_forget = 1000000,
	    .w_novel = 0.6,
	    .season_slots = 168,
	    .season_ms = 3600000.0,
	    .alpha_season = 0.05,
	    .w_season = 0.5,
	    .peak_decay = 0.999,
	    .peak_exp = 0.5,
	    .short_len = 5,
	    .alpha_long = 0.005,
	    .sd_min = 0.03,
	    .novel_exp = 2.0,
	    .score_floor = 0.0,
	    .spike_z = 60.0,
	    .spike_warmup = 50,
	    .suppress_level = 0.5,
	    .suppress_len = 50,
	    .suppress_gain = 0.1,
	    .gap_factor = 4.0,
	    .alarm_decay = 0.9999,
	    .alarm_gain = 0.2,
	};
}

static int params_ok(const struct mote_anomaly_params *p)
{
	/* Written so that NaN fails every test. */
	return p->alpha_level > 0 && p->alpha_level <= 1 && p->alpha_scale > 0 &&
	       p->alpha_scale <= 1 && p->z_cap > 0 && p->z_cap < 1e12 && p->bins >= 1 &&
	       p->bins <= 1u << 20 && p->order >= 1 && p->order <= MOTE_ANOMALY_ORDER &&
	       p->range_decay >= 0 && p->range_decay <= 1 && p->ctx_forget >= 1 &&
	       p->w_novel >= 0 && p->season_slots <= MOTE_ANOMALY_SEASON && p->season_ms >= 1 &&
	       p->season_ms < 1e15 && p->alpha_season > 0 && p->alpha_season <= 1 &&
	       p->w_season >= 0 && p->w_season <= 1 && p->peak_decay >= 0 && p->peak_decay <= 1 &&
	       p->peak_exp >= 0 && p->peak_exp <= 64 && p->w_novel <= 1 && p->short_len >= 1 &&
	       p->short_len <= MOTE_ANOMALY_SHORT && p->alpha_long > 0 && p->alpha_long <= 1 &&
	       p->sd_min > 0 && p->sd_min <= 1 && p->novel_exp >= 0 && p->novel_exp <= 64 &&
	       p->score_floor >= 0 && p->score_floor <= 1 && p->spike_z >= 0 && p->spike_z < 1e12 &&
	       p->suppress_level >= 0 && p->suppress_level <= 1 && p->suppress_gain >= 0 &&
	       p->suppress_gain <= 1 && p->gap_factor >= 1 && p->gap_factor < 1e12 &&
	       p->alarm_decay >= 0 && p->alarm_decay <= 1 && p->alarm_gain >= 0 &&
	       p->alarm_gain < 1e6;
}

enum mote_err mote_anomaly_init(struct mote_anomaly *a, const struct mote_anomaly_params *params)
{
	struct mote_anomaly_params p;
	if (params)
		p = *params;
	else
		mote_anomaly_params_default(&p);
	if (!params_ok(&p))
		return MOTE_EINVAL;
	a->p = p;
	mote_anomaly_reset(a);
	return MOTE_OK;
}

void mote_anomaly_reset(struct mote_anomaly *a)
{
	struct mote_anomaly_params p = a->p;
	memset(a, 0, sizeof *a);
	a->p = p;
}

/* The table slot of the context: the current level and order - 1 before it. */
static uint32_t ctx_slot(const uint32_t *prev, uint32_t order, uint32_t bin)
{
	uint32_t h = bin * 0x9e3779b1u;
	for (uint32_t i = 0; i + 1 < order; i++)
		h = (h ^ prev[i]) * 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return (h ^ (h >> 16)) & (MOTE_ANOMALY_CTX_SLOTS - 1);
}

/* x^e for x in [0, 1]; whole exponents up to 8 without pow(), which would
 * cost more than the rest of a step. */
static double powi_or_pow(double x, double e)
{
	if (e == floor(e) && e <= 8) {
		double r = 1.0;
		for (int i = 0; i < (int)e; i++)
			r *= x;
		return r;
	}
	return pow(x, e);
}

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

double mote_anomaly_step(struct mote_anomaly *a, int64_t ts_ms, double value)
{
	const struct mote_anomaly_params *p = &a->p;
	if (!isfinite(value) || (a->n > 0 && ts_ms <= a->last_ts)) {
		a->ignored++;
		return 0.0;
	}
	/* Far beyond any sensor's range; clamping keeps every difference and
	 * product below overflow, so the state stays finite. */
	if (value > MOTE_ANOMALY_VALUE_MAX)
		value = MOTE_ANOMALY_VALUE_MAX;
	else if (value < -MOTE_ANOMALY_VALUE_MAX)
		value = -MOTE_ANOMALY_VALUE_MAX;
	if (a->n == 0) {
		a->n = 1;
		a->last_ts = ts_ms;
		a->level = a->lo = a->hi = value;
		return 0.0;
	}
	/* Intervals: a gap breaks the context; the typical interval adapts, so a
	 * lasting change of rate stops counting as gaps after a few points. */
	double gap = (double)ts_ms - (double)a->last_ts;
	if (a->n >= 2 && gap > p->gap_factor * a->dt) {
		a->gaps++;
		a->ctx_valid = 0;
	}
	a->dt = a->n == 1 ? gap : a->dt + 0.05 * (gap - a->dt);
	a->last_ts = ts_ms;
	a->n++;

	/* 1. residual against the baseline */
	double e = value - a->level;
	double tiny = 1e-9 * (fabs(a->level) + 1e-9);
	double z_res = fabs(e) / (a->scale + tiny);
	double r_res = clamp01(z_res / p->z_cap);
	/* Early on, a plain mean (weight 1/n) instead of an EW one: an EW average
	 * started at 0 would take 1/alpha points to stop being biased. */
	double wn = 1.0 / (double)(a->n - 1);
	a->level += p->alpha_level * e;
	a->scale += (wn > p->alpha_scale ? wn : p->alpha_scale) * (fabs(e) - a->scale);

	/* 1b. residual against the same slot of the season (hour of the week) */
	double r_season = 0.0;
	if (p->season_slots) {
		double slot_f = fmod(floor((double)ts_ms / p->season_ms), (double)p->season_slots);
		uint32_t slot = (uint32_t)(slot_f < 0 ? slot_f + p->season_slots : slot_f);
		if (slot >= p->season_slots)
			slot = 0;
		if (a->sseen[slot]) {
			double es = value - a->sprof[slot];
			r_season = clamp01(fabs(es) / ((a->sscale + tiny) * p->z_cap));
			a->sscale +=
			    (wn > p->alpha_scale ? wn : p->alpha_scale) * (fabs(es) - a->sscale);
			a->sprof[slot] += (float)(p->alpha_season * es);
			if (a->sseen[slot] < UINT16_MAX)
				a->sseen[slot]++;
		} else {
			/* first visit: no expectation yet, the residual stands in */
			r_season = r_res;
			a->sprof[slot] = (float)value;
			a->sseen[slot] = 1;
		}
	}

	/* 2. context novelty */
	if (value < a->lo)
		a->lo = value;
	if (value > a->hi)
		a->hi = value;
	double width = (a->hi - a->lo) / p->bins;
	uint32_t bin = 0;
	if (width > 0) {
		double b = floor((value - a->lo) / width);
		bin = b >= p->bins ? p->bins - 1 : b < 0 ? 0 : (uint32_t)b;
	}
	a->lo += p->range_decay * (a->level - a->lo);
	a->hi += p->range_decay * (a->level - a->hi);
	double novelty = 0.0;
	if (a->ctx_valid + 1 >= p->order) {
		uint32_t s = ctx_slot(a->prev_bin, p->order, bin);
		novelty = powi_or_pow(1.0 / (1.0 + a->ctx[s]), p->novel_exp);
		if (a->ctx[s] < 255)
			a->ctx[s]++;
	}
	memmove(a->prev_bin + 1, a->prev_bin, sizeof a->prev_bin - sizeof a->prev_bin[0]);
	a->prev_bin[0] = bin;
	if (a->ctx_valid < MOTE_ANOMALY_ORDER)
		a->ctx_valid++;
	if (a->n % p->ctx_forget == 0)
		for (size_t i = 0; i < MOTE_ANOMALY_CTX_SLOTS; i++)
			a->ctx[i] >>= 1;

	/* 3.-4. raw score and its likelihood */
	double resid = (1.0 - p->w_season) * r_res + p->w_season * r_season;
	double raw = p->w_novel * novelty + (1.0 - p->w_novel) * resid;
	a->short_sum += raw - a->short_buf[a->short_pos];
	a->short_buf[a->short_pos] = raw;
	a->short_pos = (a->short_pos + 1) % p->short_len;
	uint64_t have = a->n - 1 < p->short_len ? a->n - 1 : p->short_len;
	/* The running sum drifts by rounding and can end a hair below 0 once
	 * the window holds only zeros: a negative mean would make the damping's
	 * sqrt(sm / peak) NaN (found by fuzz_analytics_anomaly). */
	double sm = fmax(0.0, a->short_sum / (double)have);
	double sd = sqrt(a->lvar);
	if (sd < p->sd_min)
		sd = p->sd_min;
	double q = 0.5 * erfc((sm - a->lmean) / sd * M_SQRT1_2);
	/* at or below the usual raw score there is nothing to report */
	double score = sm <= a->lmean ? 0.0 : clamp01(log(q + 1e-10) / log(1e-10));
	double d = sm - a->lmean, al = wn > p->alpha_long ? wn : p->alpha_long;
	a->lmean += al * d;
	a->lvar = (1.0 - al) * (a->lvar + al * d * d);
	/* Scores below the remembered peak of the short mean are damped: in a
	 * bursty series only a burst beyond the recent ones is news. */
	if (p->peak_exp > 0 && sm < a->peak && a->peak > 0)
		score *= p->peak_exp == 0.5 ? sqrt(sm / a->peak)
					    : powi_or_pow(sm / a->peak, p->peak_exp);
	a->peak = sm > a->peak * p->peak_decay ? sm : a->peak * p->peak_decay;
	/* A residual far beyond any seen needs no likelihood to be news: this
	 * channel also works before the likelihood has warmed up. */
	double spike = p->spike_z > 0 && a->n > p->spike_warmup && z_res >= p->spike_z
			   ? clamp01(0.5 * z_res / p->spike_z)
			   : 0.0;
	if (a->n <= p->warmup)
		score = 0.0;
	if (spike > score)
		score = spike;
	if (a->n <= p->warmup && score == 0.0)
		return 0.0;

	/* 5. quiet period after an alarm; a series that alarms often (a bursty
	 * one) needs more to alarm again */
	a->alarms *= p->alarm_decay;
	if (p->alarm_gain > 0)
		score /= 1.0 + p->alarm_gain * a->alarms;
	if (score < p->score_floor)
		score = 0.0;
	if (a->last_alarm && a->n - a->last_alarm < p->suppress_len)
		return score * p->suppress_gain;
	if (score >= p->suppress_level) {
		a->last_alarm = a->n;
		a->alarms += 1.0;
	}
	return score;
}

#define SNAP_MAGIC 0x6d616e6fu /* "mano" */
#define SNAP_VERSION 1u

enum mote_err mote_anomaly_save(const struct mote_anomaly *a, void *buf, size_t cap, size_t *len)
{
	if (cap < MOTE_ANOMALY_SNAPSHOT_SIZE)
		return MOTE_ENOSPC;
	uint32_t hdr[4] = {SNAP_MAGIC, SNAP_VERSION, (uint32_t)sizeof *a, 0};
	memcpy(buf, hdr, sizeof hdr);
	memcpy((char *)buf + sizeof hdr, a, sizeof *a);
	if (len)
		*len = MOTE_ANOMALY_SNAPSHOT_SIZE;
	return MOTE_OK;
}

enum mote_err mote_anomaly_restore(struct mote_anomaly *a, const void *buf, size_t len)
{
	uint32_t hdr[4];
	struct mote_anomaly tmp;
	if (len != MOTE_ANOMALY_SNAPSHOT_SIZE)
		return MOTE_EMALFORMED;
	memcpy(hdr, buf, sizeof hdr);
	if (hdr[0] != SNAP_MAGIC || hdr[1] != SNAP_VERSION || hdr[2] != sizeof tmp)
		return MOTE_EMALFORMED;
	memcpy(&tmp, (const char *)buf + sizeof hdr, sizeof tmp);
	if (!params_ok(&tmp.p))
		return MOTE_EINVAL;
	/* A snapshot is trusted no further than the network: every number that
	 * step() divides by or indexes with is checked. */
	if (!isfinite(tmp.dt) || !isfinite(tmp.level) || !isfinite(tmp.scale) ||
	    !isfinite(tmp.lo) || !isfinite(tmp.hi) || !isfinite(tmp.lmean) || !isfinite(tmp.lvar) ||
	    !isfinite(tmp.short_sum) || !isfinite(tmp.peak) || tmp.peak < 0 ||
	    !isfinite(tmp.alarms) || tmp.alarms < 0 || !isfinite(tmp.sscale) || tmp.sscale < 0 ||
	    tmp.lo > tmp.hi || tmp.scale < 0 || tmp.lvar < 0 || tmp.short_pos >= tmp.p.short_len ||
	    tmp.ctx_valid > MOTE_ANOMALY_ORDER)
		return MOTE_EMALFORMED;
	for (size_t i = 0; i < MOTE_ANOMALY_SHORT; i++)
		if (!isfinite(tmp.short_buf[i]))
			return MOTE_EMALFORMED;
	for (size_t i = 0; i < MOTE_ANOMALY_SEASON; i++)
		if (!isfinite(tmp.sprof[i]))
			return MOTE_EMALFORMED;
	*a = tmp;
	return MOTE_OK;
}
