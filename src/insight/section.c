/*
 * section.c - the twin's "analytics" section: per-metric scores and states,
 * the health index, the remaining useful life and the fitted models.
 *
 * Health index (0..100): 100 x (1 - the worst metric's burden) x the RUL
 * factor. A metric's burden is the EWMA of its scores, or half its
 * episode's peak while an anomaly is open, whichever is larger; the RUL
 * factor is min(1, RUL hours / 168): a machine with less than a week left is
 * not healthy however calm its readings are.
 */
#include "insight/insight_int.h"

#include <math.h>
#include <stdio.h>

#define RUL_FULL_HEALTH_H 168.0
/* RUL beyond this is reported as "more than": ten years of extrapolation
 * says nothing. */
#define RUL_MAX_H 87600.0

static double round_to(double v, double unit)
{
	return round(v / unit) * unit;
}

/* The RUL (hours) into *out; false when there is none to give. */
static bool rul_of(struct insight *in, const struct idev *d, cJSON *sec, double *hours)
{
	if (!d->prof || !d->prof->wear_metric || !d->mod.init)
		return false;
	double lim = insight_wear_limit(in, d), h, lo, hi;
	enum mote_err e = fc_trend_crossing(&d->mod.wear, lim, &h, &lo, &hi);
	cJSON *r = cJSON_AddObjectToObject(sec, "rul");
	if (!r)
		return false;
	cJSON_AddStringToObject(r, "metric", d->prof->wear_metric);
	cJSON_AddNumberToObject(r, "threshold", lim);
	cJSON_AddStringToObject(r, "method", "trend");
	if (e == MOTE_EAGAIN) {
		cJSON_AddStringToObject(r, "status", "learning");
		return false;
	}
	if (e == MOTE_ENOTFOUND || (e == MOTE_OK && h > RUL_MAX_H)) {
		cJSON_AddStringToObject(r, "status", "no_wear_trend");
		cJSON_AddNumberToObject(r, "hours_over", RUL_MAX_H);
		*hours = RUL_MAX_H;
		return true;
	}
	if (e != MOTE_OK)
		return false;
	cJSON_AddStringToObject(r, "status", "estimated");
	cJSON_AddNumberToObject(r, "hours", round_to(h, 0.1));
	cJSON_AddNumberToObject(r, "low", round_to(lo, 0.1));
	cJSON_AddNumberToObject(r, "high", round_to(fmin(hi, RUL_MAX_H), 0.1));
	*hours = h;
	return true;
}

static void add_models(const struct idev *d, cJSON *sec)
{
	double K, tau, y0, sigma;
	if (!d->prof || !d->mod.init ||
	    fc_first_order_params(&d->mod.thermal, &K, &tau, &y0, &sigma) != MOTE_OK)
		return;
	cJSON *ms = cJSON_AddObjectToObject(sec, "models");
	cJSON *m = ms ? cJSON_AddObjectToObject(ms, d->prof->out_metric) : NULL;
	if (!m)
		return;
	cJSON_AddStringToObject(m, "kind", "first_order");
	cJSON_AddStringToObject(m, "input", d->prof->in_is_setpoint ? "setpoint"
								   : d->prof->in_metric);
	cJSON_AddNumberToObject(m, "gain", round_to(K, 1e-4));
	cJSON_AddNumberToObject(m, "tau_s", round_to(tau, 0.1));
	cJSON_AddNumberToObject(m, "offset", round_to(y0, 1e-3));
	cJSON_AddNumberToObject(m, "sigma", round_to(sigma, 1e-4));
	cJSON_AddNumberToObject(m, "blocks", (double)d->mod.thermal.fitted);
}

cJSON *insight_section(struct insight *in, const char *device_id, const char *model,
		       int64_t now_ms)
{
	(void)now_ms;
	/* create: after a restart, what was saved is loaded on first sight */
	struct idev *d = insight_dev(in, device_id, true);
	if (!d || d->nm == 0)
		return NULL;
	insight_set_model(d, model);
	cJSON *sec = cJSON_CreateObject();
	cJSON *mets = sec ? cJSON_AddObjectToObject(sec, "metrics") : NULL;
	if (!mets) {
		cJSON_Delete(sec);
		return NULL;
	}
	cJSON_AddNumberToObject(sec, "updated", (double)d->updated_ms);
	double burden = 0;
	for (size_t i = 0; i < d->nm; i++) {
		const struct imetric *m = &d->m[i];
		cJSON *o = cJSON_AddObjectToObject(mets, m->name);
		if (!o)
			continue;
		cJSON_AddNumberToObject(o, "score", round_to(m->score, 1e-4));
		cJSON_AddStringToObject(o, "state", m->anomalous ? "anomalous" : "normal");
		cJSON_AddNumberToObject(o, "anomalies", (double)m->episodes);
		if (m->anomalous) {
			cJSON_AddNumberToObject(o, "since", (double)m->since_ms);
			cJSON_AddNumberToObject(o, "peak", round_to(m->peak, 1e-4));
		}
		double b = fmax(m->smooth, m->anomalous ? m->peak / 2 : 0);
		burden = fmax(burden, fmin(1, b));
	}
	double rul_h = 0, factor = 1;
	if (rul_of(in, d, sec, &rul_h))
		factor = fmin(1, rul_h / RUL_FULL_HEALTH_H);
	cJSON_AddNumberToObject(sec, "health", round(100 * (1 - burden) * factor));
	add_models(d, sec);
	return sec;
}
