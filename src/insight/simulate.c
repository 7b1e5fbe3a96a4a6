/*
 * simulate.c - POST /api/v1/devices/{id}/simulate: runs the device's own
 * fitted models forward under a scenario and says when the prediction would
 * cross the thresholds of its rules.
 *
 * The request is checked whole before anything runs: an object with
 * horizon_s (1 s .. 30 days), optional step_s, metric and scenario
 * ({"setpoint":X} | {"power":X} | {"on":false|true}, optional "at_s"),
 * nothing else. The answer is deterministic for a given history (a fixed
 * Monte Carlo seed), so asking twice gives the same band.
 */
#include "insight/insight_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_syntax.h"

#define HORIZON_MAX_S (30.0 * 86400)
#define POINTS_MAX 2000
#define DRAWS 200
#define SEED 0x6d6f7465ull
#define THRESHOLDS_MAX 8

struct request {
	double horizon_s, step_s;
	const char *metric;        /* NULL: the profile's output metric */
	bool have_change;
	const char *input;         /* "setpoint", "power" or "on" */
	double value;              /* the input's new value (on: 0 / 1) */
	double at_s;
};

static bool number_in(const cJSON *j, double lo, double hi, double *out)
{
	if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < lo ||
	    j->valuedouble > hi)
		return false;
	*out = j->valuedouble;
	return true;
}

/* 0, or an HTTP status with the reply set. */
static int parse_request(const cJSON *doc, struct request *q, struct mote_reply *r)
{
	memset(q, 0, sizeof *q);
	if (!cJSON_IsObject(doc)) {
		mote_reply_error(r, 400, "the body must be a JSON object");
		return 400;
	}
	for (const cJSON *k = doc->child; k; k = k->next) {
		if (strcmp(k->string, "horizon_s") != 0 && strcmp(k->string, "step_s") != 0 &&
		    strcmp(k->string, "metric") != 0 && strcmp(k->string, "scenario") != 0) {
			mote_reply_error(r, 400,
					 "unknown member '%.64s' (horizon_s, step_s, metric, scenario)",
					 k->string);
			return 400;
		}
	}
	if (!number_in(cJSON_GetObjectItemCaseSensitive(doc, "horizon_s"), 1, HORIZON_MAX_S,
		       &q->horizon_s)) {
		mote_reply_error(r, 400, "horizon_s must be a number of seconds from 1 to %.0f",
				 HORIZON_MAX_S);
		return 400;
	}
	const cJSON *step = cJSON_GetObjectItemCaseSensitive(doc, "step_s");
	if (step && !number_in(step, 0, q->horizon_s, &q->step_s)) {
		mote_reply_error(r, 400, "step_s must be a number from 0 to horizon_s");
		return 400;
	}
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(doc, "metric");
	if (metric) {
		if (!cJSON_IsString(metric) || strlen(metric->valuestring) == 0 ||
		    strlen(metric->valuestring) > TELEMETRY_METRIC_MAX) {
			mote_reply_error(r, 400, "metric must be a metric name");
			return 400;
		}
		q->metric = metric->valuestring;
	}
	const cJSON *sc = cJSON_GetObjectItemCaseSensitive(doc, "scenario");
	if (!sc)
		return 0;
	if (!cJSON_IsObject(sc)) {
		mote_reply_error(r, 400, "scenario must be an object such as {\"setpoint\":6.5}");
		return 400;
	}
	for (const cJSON *k = sc->child; k; k = k->next) {
		if (strcmp(k->string, "at_s") == 0) {
			if (!number_in(k, 0, q->horizon_s, &q->at_s)) {
				mote_reply_error(r, 400, "scenario.at_s must be from 0 to horizon_s");
				return 400;
			}
			continue;
		}
		if (q->have_change) {
			mote_reply_error(r, 400, "a scenario changes one input: setpoint, power or on");
			return 400;
		}
		if (strcmp(k->string, "on") == 0) {
			if (!cJSON_IsBool(k)) {
				mote_reply_error(r, 400, "scenario.on must be true or false");
				return 400;
			}
			q->value = cJSON_IsTrue(k) ? 1 : 0;
		} else if (strcmp(k->string, "setpoint") == 0 || strcmp(k->string, "power") == 0) {
			if (!number_in(k, -1e9, 1e9, &q->value)) {
				mote_reply_error(r, 400, "scenario.%s must be a number", k->string);
				return 400;
			}
		} else {
			mote_reply_error(r, 400,
					 "unknown scenario member '%.64s' (setpoint, power, on, at_s)",
					 k->string);
			return 400;
		}
		q->input = k->string;
		q->have_change = true;
	}
	return 0;
}

/*
 * The first-order model's input under the scenario, into *u. 0 or a status
 * with the reply set. *from_setpoint tells that the input was derived.
 */
static int scenario_input(const struct idev *d, const struct request *q, double *u,
			  double *u_sd, bool *derived, struct mote_reply *r)
{
	*u_sd = 0;
	const struct profile *pf = d->prof;
	*derived = false;
	if (strcmp(q->input, "setpoint") == 0) {
		if (pf->in_is_setpoint) {
			*u = q->value;
			return 0;
		}
		double sigma, now_l, new_l;
		if (!pf->power_by_setpoint || !d->have_setpoint || d->setpoint <= 0 ||
		    q->value <= 0 ||
		    fc_linear_predict(&d->mod.power, log(d->setpoint), &now_l, &sigma) != MOTE_OK ||
		    fc_linear_predict(&d->mod.power, log(q->value), &new_l, &sigma) != MOTE_OK) {
			mote_reply_error(r, 409,
					 "the history of %s never saw its setpoint change, so how %s "
					 "follows the setpoint is unknown: give the scenario as "
					 "{\"%s\":X}",
					 d->id, pf->in_metric, pf->in_metric);
			return 409;
		}
		/* the demand of the moment carries over (insight_int.h); what
		 * the demand does next is the fit's residual spread */
		*u = d->mod.thermal.prev_u * exp(new_l - now_l);
		*u_sd = *u * sqrt(d->mod.power.rls.var);
		*derived = true;
		return 0;
	}
	if (strcmp(q->input, "on") == 0) {
		if (pf->in_is_setpoint) {
			mote_reply_error(r, 422, "switching a %s off is not modelled (its room "
						 "drifts with the weather); change its setpoint",
					 pf->model);
			return 422;
		}
		/* off: no power; on: the power it has now */
		*u = q->value == 0 ? 0 : d->mod.thermal.prev_u;
		return 0;
	}
	if (pf->in_is_setpoint || strcmp(pf->in_metric, q->input) != 0) {
		mote_reply_error(r, 422, "a %s's %s does not follow %s; its input is %s",
				 pf->model, pf->out_metric, q->input,
				 pf->in_is_setpoint ? "the setpoint" : pf->in_metric);
		return 422;
	}
	*u = q->value;
	return 0;
}

static cJSON *points_json(const struct fc_point *pts, size_t n, int64_t start_ms)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		if (!o)
			break;
		cJSON_AddNumberToObject(o, "t", (double)(start_ms + llround(pts[i].t_s * 1000)));
		cJSON_AddNumberToObject(o, "mean", round(pts[i].mean * 1e4) / 1e4);
		cJSON_AddNumberToObject(o, "lo", round(pts[i].lo * 1e4) / 1e4);
		cJSON_AddNumberToObject(o, "hi", round(pts[i].hi * 1e4) / 1e4);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static void add_time(cJSON *o, const char *name, double t_s, int64_t start_ms)
{
	if (isfinite(t_s))
		cJSON_AddNumberToObject(o, name, (double)(start_ms + llround(t_s * 1000)));
	else
		cJSON_AddNullToObject(o, name);
}

/* The trajectory against each threshold of the device's rules on metric. */
static void add_thresholds(struct insight *in, const struct idev *d, const char *metric,
			   cJSON *out, int64_t start_ms,
			   enum mote_err (*run)(const void *ctx, const struct fc_predict_opts *o,
						struct fc_point *pts, size_t cap, size_t *n,
						struct fc_crossing *cr),
			   const void *ctx, const struct fc_predict_opts *base, struct fc_point *pts)
{
	struct rules_threshold th[THRESHOLDS_MAX];
	size_t n = in->rules ? rules_thresholds(in->rules, d->id, d->model, metric, th,
						    THRESHOLDS_MAX)
			     : 0;
	cJSON *arr = cJSON_AddArrayToObject(out, "thresholds");
	for (size_t i = 0; arr && i < n && i < THRESHOLDS_MAX; i++) {
		struct fc_predict_opts o = *base;
		o.have_threshold = true;
		o.threshold = th[i].value;
		o.rising = th[i].rising;
		struct fc_crossing cr;
		size_t np;
		if (run(ctx, &o, pts, POINTS_MAX, &np, &cr) != MOTE_OK)
			continue;
		cJSON *t = cJSON_CreateObject();
		if (!t)
			break;
		cJSON_AddNumberToObject(t, "rule", (double)th[i].rule_id);
		cJSON_AddNumberToObject(t, "value", th[i].value);
		cJSON_AddStringToObject(t, "direction", th[i].rising ? "above" : "below");
		cJSON_AddStringToObject(t, "severity", th[i].severity);
		cJSON_AddBoolToObject(t, "crosses", cr.mean_crosses);
		add_time(t, "at", cr.mean_crosses ? cr.mean_t_s : INFINITY, start_ms);
		add_time(t, "earliest", cr.early_t_s, start_ms);
		add_time(t, "latest", cr.late_t_s, start_ms);
		cJSON_AddNumberToObject(t, "probability", round(cr.fraction * 1000) / 1000);
		cJSON_AddItemToArray(arr, t);
	}
}

struct fo_run {
	const struct fc_first_order *m;
	const struct fc_step *steps;
	size_t nsteps;
};

static enum mote_err run_first_order(const void *ctx, const struct fc_predict_opts *o,
				     struct fc_point *pts, size_t cap, size_t *n,
				     struct fc_crossing *cr)
{
	const struct fo_run *f = ctx;
	return fc_first_order_predict(f->m, f->steps, f->nsteps, o, pts, cap, n, cr);
}

static enum mote_err run_trend(const void *ctx, const struct fc_predict_opts *o,
			       struct fc_point *pts, size_t cap, size_t *n, struct fc_crossing *cr)
{
	return fc_trend_predict(ctx, o, pts, cap, n, cr);
}

static const char *learn_hint(enum mote_err e)
{
	return e == MOTE_EAGAIN ? "not enough history yet" : "the request does not fit";
}

void insight_simulate(struct insight *in, const char *device_id, const char *model,
		      const char *body, size_t len, int64_t now_ms, struct mote_reply *r)
{
	cJSON *doc = NULL, *out = NULL;
	struct fc_point *pts = NULL;
	struct request q;
	/* body is NUL-terminated at len (the API's buffer): strict JSON, one
	 * value, no NUL inside, no key twice */
	int oom = 0;
	const char *dup = NULL;
	if (!body || strlen(body) != len || mote_json_syntax(body) != MOTE_JSON_OK) {
		mote_reply_error(r, 400, "the body is not valid JSON (RFC 8259)");
		goto done;
	}
	doc = cJSON_ParseWithLength(body, len);
	if (!doc || (dup = mote_json_dup_key(doc, 4, &oom)) != NULL || oom) {
		if (!doc || oom)
			mote_reply_error(r, 500, "out of memory");
		else
			mote_reply_error(r, 400, "the key '%.64s' appears twice", dup);
		goto done;
	}
	if (parse_request(doc, &q, r) != 0)
		goto done;
	struct idev *d = insight_dev(in, device_id, true);
	if (d)
		insight_set_model(d, model);
	const struct profile *pf = d ? d->prof : insight_profile(model);
	if (!pf) {
		mote_reply_error(r, 422,
				 "no model of %s's physics: what-if simulation knows the models "
				 "pump, motor and hvac (its model is '%s')",
				 device_id, model && model[0] ? model : "none");
		goto done;
	}
	const char *metric = q.metric ? q.metric : pf->out_metric;
	bool wear = pf->wear_metric && strcmp(metric, pf->wear_metric) == 0;
	if (!wear && strcmp(metric, pf->out_metric) != 0) {
		mote_reply_error(r, 422, "a %s's simulation covers %s%s%s, not %s", pf->model,
				 pf->out_metric, pf->wear_metric ? " and " : "",
				 pf->wear_metric ? pf->wear_metric : "", metric);
		goto done;
	}
	if (wear && q.have_change) {
		mote_reply_error(r, 422, "the %s trend follows wear, not a scenario input: ask "
					 "without a scenario",
				 metric);
		goto done;
	}
	if (!d || !d->mod.init) {
		mote_reply_error(r, 409, "%s has no history to learn from yet", device_id);
		goto done;
	}
	pts = malloc(sizeof *pts * POINTS_MAX);
	out = cJSON_CreateObject();
	if (!pts || !out) {
		mote_reply_error(r, 500, "out of memory");
		goto done;
	}
	struct fc_predict_opts o = { .horizon_s = q.horizon_s, .step_s = q.step_s,
				     .draws = DRAWS, .seed = SEED };
	cJSON_AddStringToObject(out, "device", device_id);
	cJSON_AddStringToObject(out, "metric", metric);
	cJSON_AddNumberToObject(out, "horizon_s", q.horizon_s);
	size_t n = 0;
	enum mote_err e;
	int64_t start_ms;
	if (wear) {
		start_ms = llround((d->mod.wear.t0 + d->mod.wear.last_mid_h * 3600) * 1000);
		e = fc_trend_predict(&d->mod.wear, &o, pts, POINTS_MAX, &n, NULL);
		if (e == MOTE_ENOSPC) {
			mote_reply_error(r, 400, "more than %d points: raise step_s", POINTS_MAX);
			goto done;
		}
		if (e != MOTE_OK) {
			mote_reply_error(r, 409, "%s's %s trend: %s", device_id, metric,
					 learn_hint(e));
			goto done;
		}
		cJSON *m = cJSON_AddObjectToObject(out, "model");
		cJSON_AddStringToObject(m, "kind", "trend");
		cJSON_AddNumberToObject(m, "growth_per_hour", d->mod.wear.rls.theta[1]);
		cJSON_AddNumberToObject(m, "blocks", (double)d->mod.wear.rls.updates);
		cJSON_AddItemToObject(out, "points", points_json(pts, n, start_ms));
		add_thresholds(in, d, metric, out, start_ms, run_trend, &d->mod.wear, &o, pts);
	} else {
		double y0, u0, t0;
		if (!fc_first_order_state(&d->mod.thermal, &y0, &u0, &t0)) {
			mote_reply_error(r, 409, "%s has no history to learn from yet", device_id);
			goto done;
		}
		start_ms = llround(t0 * 1000);
		/* Without a change the input holds, but a measured input such as
		 * power moves with the process demand: as uncertain as the
		 * spread of its fit against the setpoint, when there is one. */
		double hold_sd = 0;
		if (!pf->in_is_setpoint && fc_linear_ready(&d->mod.power))
			hold_sd = u0 * sqrt(d->mod.power.rls.var);
		struct fc_step step = { q.have_change ? q.at_s : 0, u0, hold_sd };
		bool derived = false;
		if (q.have_change && scenario_input(d, &q, &step.u, &step.u_sd, &derived, r) != 0)
			goto done;
		struct fo_run run = { &d->mod.thermal, &step, 1 };
		e = run_first_order(&run, &o, pts, POINTS_MAX, &n, NULL);
		if (e != MOTE_OK) {
			if (e == MOTE_ENOSPC)
				mote_reply_error(r, 400, "more than %d points: raise step_s",
						 POINTS_MAX);
			else
				mote_reply_error(r, 409, "%s's %s model: %s", device_id, metric,
						 learn_hint(e));
			goto done;
		}
		double K, tau, off, sigma;
		fc_first_order_params(&d->mod.thermal, &K, &tau, &off, &sigma);
		cJSON *m = cJSON_AddObjectToObject(out, "model");
		const char *input = pf->in_is_setpoint ? "setpoint" : pf->in_metric;
		cJSON_AddStringToObject(m, "kind", "first_order");
		cJSON_AddStringToObject(m, "input", input);
		cJSON_AddNumberToObject(m, "gain", K);
		cJSON_AddNumberToObject(m, "tau_s", tau);
		cJSON_AddNumberToObject(m, "offset", off);
		cJSON_AddNumberToObject(m, "sigma", sigma);
		cJSON_AddNumberToObject(m, "blocks", (double)d->mod.thermal.fitted);
		cJSON *range = cJSON_AddArrayToObject(m, "input_seen");
		cJSON_AddItemToArray(range, cJSON_CreateNumber(d->mod.thermal.u_lo));
		cJSON_AddItemToArray(range, cJSON_CreateNumber(d->mod.thermal.u_hi));
		cJSON *s = cJSON_AddObjectToObject(out, "scenario");
		cJSON_AddStringToObject(s, "input", input);
		cJSON_AddNumberToObject(s, "from", u0);
		cJSON_AddNumberToObject(s, "to", step.u);
		cJSON_AddNumberToObject(s, "to_sd", step.u_sd);
		cJSON_AddNumberToObject(s, "at_s", q.at_s);
		if (derived)
			cJSON_AddNumberToObject(s, "setpoint", q.value);
		/* outside what the history showed, the gain is extrapolated */
		double span = d->mod.thermal.u_hi - d->mod.thermal.u_lo;
		cJSON_AddBoolToObject(s, "extrapolating",
				      step.u < d->mod.thermal.u_lo - 0.1 * span ||
					      step.u > d->mod.thermal.u_hi + 0.1 * span);
		cJSON_AddItemToObject(out, "points", points_json(pts, n, start_ms));
		add_thresholds(in, d, metric, out, start_ms, run_first_order, &run, &o, pts);
	}
	cJSON_AddNumberToObject(out, "start", (double)start_ms);
	(void)now_ms;
	in->st.simulations++;
	mote_reply_cjson(r, 200, out);
	out = NULL;
done:
	cJSON_Delete(out);
	cJSON_Delete(doc);
	free(pts);
}
