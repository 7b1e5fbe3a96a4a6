/*
 * insight.c - per-device state (a hash table of struct idev), anomaly
 * scoring and its alert episodes, feeding the online models, the tick.
 *
 * A metric's score is the streaming detector's (src/analytics/anomaly.h,
 * tuned on NAB, where anomalies are episodes and an alarm a little late
 * inside the window still counts), or the extreme-deviation guard's if
 * higher: a value more than 10 mean absolute deviations from the EW mean
 * scores from 0 up to 1 at 20. The detector is tuned for NAB's scoring (one
 * early alarm per event, then a quiet period at a tenth of the score); an
 * alert must instead stay open while the readings stay extreme.
 *
 * An anomaly episode of a metric begins with a score at or above the
 * threshold (an alert "anomaly:METRIC" is raised, its severity from the
 * score), may grow more severe (the open alert is updated), and ends once
 * clear_after_s passed without such a score (the alert is resolved). A
 * device that goes silent keeps its episode open: silence is not recovery
 * (no-data rules watch silence).
 */
#include "insight/insight_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define SMOOTH_ALPHA 0.05
#define GUARD_WARMUP 60      /* values before the guard scores */
#define GUARD_ALPHA 0.01
#define GUARD_FROM 10.0      /* deviations where its score starts ... */
#define GUARD_FULL 20.0      /* ... and where it reaches 1 */
/* Samples before the models choose their block sizes from the interval. */
#define MODEL_START_SAMPLES 5

static const struct profile profiles[] = {
	{ "pump", "temperature", "power", false, true, "vibration", 7.1 },
	{ "motor", "temperature", "power", false, true, "vibration", 7.1 },
	{ "hvac", "room_temp", NULL, true, false, NULL, 0 },
};

const struct profile *insight_profile(const char *model)
{
	for (size_t i = 0; model && i < sizeof profiles / sizeof profiles[0]; i++)
		if (strcmp(profiles[i].model, model) == 0)
			return &profiles[i];
	return NULL;
}

void insight_set_model(struct idev *d, const char *model)
{
	const char *mdl = model ? model : "";
	if (strcmp(d->model, mdl) != 0 && strlen(mdl) <= INSIGHT_MODEL_MAX) {
		snprintf(d->model, sizeof d->model, "%s", mdl);
		d->prof = insight_profile(d->model);
	}
}

void insight_config_defaults(struct insight_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->anomaly_threshold = 0.51; /* the threshold NAB scoring swept for the detector */
	cfg->clear_after_s = 60;
	cfg->max_metrics = 16;
	cfg->save_every_s = 600;
	cfg->alerts = true;
}

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static enum mote_err grow_table(struct insight *in)
{
	size_t nb = in->nbuckets ? in->nbuckets * 2 : 256;
	struct idev **t = calloc(nb, sizeof *t);
	if (!t)
		return MOTE_ENOMEM;
	for (size_t i = 0; i < in->nbuckets; i++) {
		for (struct idev *d = in->table[i], *next; d; d = next) {
			next = d->next;
			d->next = t[d->hash & (nb - 1)];
			t[d->hash & (nb - 1)] = d;
		}
	}
	free(in->table);
	in->table = t;
	in->nbuckets = nb;
	return MOTE_OK;
}

struct idev *insight_dev(struct insight *in, const char *id, bool create)
{
	uint32_t h = hash_id(id);
	if (in->nbuckets)
		for (struct idev *d = in->table[h & (in->nbuckets - 1)]; d; d = d->next)
			if (d->hash == h && strcmp(d->id, id) == 0)
				return d;
	if (!create)
		return NULL;
	if (in->count + 1 > in->nbuckets && grow_table(in) != MOTE_OK)
		return NULL;
	struct idev *d = calloc(1, sizeof *d);
	if (d)
		d->id = strdup(id);
	if (!d || !d->id) {
		free(d);
		return NULL;
	}
	d->hash = h;
	d->next = in->table[h & (in->nbuckets - 1)];
	in->table[h & (in->nbuckets - 1)] = d;
	in->count++;
	in->st.devices = in->count;
	insight_persist_restore(in, d);
	return d;
}

static void dev_free(struct idev *d)
{
	free(d->m);
	free(d->id);
	free(d);
}

enum mote_err insight_open(sqlite3 *db, const struct insight_config *cfg, struct rules *rules,
			   struct insight **out, char *err, size_t errcap)
{
	*out = NULL;
	struct insight *in = calloc(1, sizeof *in);
	if (!in) {
		snprintf(err, errcap, "out of memory");
		return MOTE_ENOMEM;
	}
	if (cfg)
		in->cfg = *cfg;
	else
		insight_config_defaults(&in->cfg);
	if (!(in->cfg.anomaly_threshold > 0 && in->cfg.anomaly_threshold <= 1) ||
	    in->cfg.max_metrics == 0) {
		snprintf(err, errcap, "the anomaly threshold must be in (0, 1] and max_metrics > 0");
		free(in);
		return MOTE_EINVAL;
	}
	in->db = db;
	in->rules = rules;
	enum mote_err e = grow_table(in);
	if (e == MOTE_OK)
		e = insight_persist_open(in, err, errcap);
	if (e != MOTE_OK) {
		if (e == MOTE_ENOMEM)
			snprintf(err, errcap, "out of memory");
		free(in->table);
		free(in);
		return e;
	}
	*out = in;
	return MOTE_OK;
}

void insight_close(struct insight *in)
{
	if (!in)
		return;
	insight_persist_save(in);
	insight_persist_close(in);
	for (size_t i = 0; i < in->nbuckets; i++)
		for (struct idev *d = in->table[i], *next; d; d = next) {
			next = d->next;
			dev_free(d);
		}
	free(in->table);
	free(in);
}

/* ---- anomalies ---- */

/* Severity 1..4 (warning..critical) of a score at or above the threshold:
 * the span from the threshold to 1 split at 50 %, 80 % and 95 %. */
static int severity_of(const struct insight *in, double score)
{
	double thr = in->cfg.anomaly_threshold, x = (score - thr) / (1 - thr + 1e-12);
	return x >= 0.95 ? 4 : x >= 0.8 ? 3 : x >= 0.5 ? 2 : 1;
}

static const char *const severity_names[] = { "none", "warning", "minor", "major", "critical" };

static void raise_alert(struct insight *in, const struct idev *d, const struct imetric *m,
			int64_t now_ms)
{
	if (!in->cfg.alerts || !in->rules)
		return;
	char type[16 + TELEMETRY_METRIC_MAX], details[256];
	snprintf(type, sizeof type, "anomaly:%s", m->name);
	/* metric names are [A-Za-z0-9_.:/-] (the telemetry decoder's rule):
	 * nothing here needs JSON escaping */
	snprintf(details, sizeof details,
		 "{\"metric\":\"%s\",\"score\":%.4f,\"value\":%.17g,\"since\":%lld}", m->name,
		 m->peak, isfinite(m->value) ? m->value : 0.0, (long long)m->since_ms);
	if (rules_raise(in->rules, d->id, type, severity_names[m->severity], details, now_ms) !=
	    MOTE_OK)
		MOTE_WARN("insight", "event=alert_failed device=%s type=%s", d->id, type);
}

static void resolve_alert(struct insight *in, const struct idev *d, const struct imetric *m,
			  int64_t now_ms)
{
	if (!in->cfg.alerts || !in->rules)
		return;
	char type[16 + TELEMETRY_METRIC_MAX];
	snprintf(type, sizeof type, "anomaly:%s", m->name);
	rules_resolve(in->rules, d->id, type, now_ms);
}

struct imetric *insight_metric(struct insight *in, struct idev *d, const char *name)
{
	for (size_t i = 0; i < d->nm; i++)
		if (strcmp(d->m[i].name, name) == 0)
			return &d->m[i];
	if (d->nm >= in->cfg.max_metrics || strlen(name) > TELEMETRY_METRIC_MAX)
		return NULL;
	if (d->nm == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4;
		struct imetric *m = realloc(d->m, cap * sizeof *m);
		if (!m)
			return NULL;
		d->m = m;
		d->cap = cap;
	}
	struct imetric *m = &d->m[d->nm];
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	if (mote_anomaly_init(&m->det, NULL) != MOTE_OK)
		return NULL;
	d->nm++;
	insight_persist_restore_metric(in, d, m);
	return m;
}

static void score_point(struct insight *in, struct idev *d, const struct telemetry_point *p,
			int64_t now_ms)
{
	struct imetric *m = insight_metric(in, d, p->metric);
	if (!m)
		return;
	double s = mote_anomaly_step(&m->det, p->ts_ms, p->value);
	double v = p->value;
	if (isfinite(v)) {
		double z = 0, dv = v - m->ew_mean;
		if (m->seen >= GUARD_WARMUP) {
			double scale = fmax(m->ew_dev, 1e-9 * fmax(1, fabs(m->ew_mean)));
			z = fabs(dv) / scale;
			s = fmax(s, fmin(1, fmax(0, (z - GUARD_FROM) / (GUARD_FULL - GUARD_FROM))));
		}
		if (m->seen == 0) {
			m->ew_mean = v;
		} else {
			/* an extreme value moves the baseline ten times slower */
			double a = z > GUARD_FROM ? GUARD_ALPHA / 10 : GUARD_ALPHA;
			m->ew_mean += a * dv;
			m->ew_dev += a * (fabs(dv) - m->ew_dev);
		}
		m->seen++;
	}
	in->st.points++;
	m->score = s;
	m->value = p->value;
	m->smooth += SMOOTH_ALPHA * (s - m->smooth);
	m->dirty = true;
	if (s < in->cfg.anomaly_threshold)
		return;
	m->last_high_ms = now_ms;
	if (!m->anomalous) {
		m->anomalous = true;
		m->since_ms = now_ms;
		m->peak = s;
		m->episodes++;
		in->st.anomalies++;
		m->severity = severity_of(in, s);
		raise_alert(in, d, m, now_ms);
		return;
	}
	if (s > m->peak) {
		m->peak = s;
		int sev = severity_of(in, s);
		if (sev > m->severity) {
			m->severity = sev;
			raise_alert(in, d, m, now_ms);
		}
	}
}

/* ---- models ---- */

/* The first point of metric among pts[0..n), or NULL. */
static const struct telemetry_point *find_point(const struct telemetry_point *pts, size_t n,
						const char *metric)
{
	for (size_t i = 0; metric && i < n; i++)
		if (strcmp(pts[i].metric, metric) == 0)
			return &pts[i];
	return NULL;
}

/*
 * The models learn from the samples that carry their metrics together: a
 * run of consecutive points with one timestamp (a JSON object, or SenML
 * records at one time) is one sample, looked through once, so a pack costs
 * linear time on the pipeline thread.
 */
static void feed_models(struct idev *d, const struct telemetry_point *pts, size_t n)
{
	const struct profile *pf = d->prof;
	struct imodels *mo = &d->mod;
	for (size_t i = 0, j; i < n; i = j) {
		int64_t ts = pts[i].ts_ms;
		for (j = i + 1; j < n && pts[j].ts_ms == ts; j++)
			;
		double t = (double)ts / 1000.0;
		if (mo->samples > 0) {
			double dt = t - mo->last_t;
			if (dt <= 0)
				continue; /* duplicate or reordered: the models want rising time */
			mo->dt_s = mo->samples == 1 ? dt : mo->dt_s + 0.1 * (dt - mo->dt_s);
		}
		mo->last_t = t;
		mo->samples++;
		if (!mo->init && mo->samples >= MODEL_START_SAMPLES) {
			/* blocks of ~10 samples for the lag, ~60 for the trend */
			double blk = fmin(600, fmax(1, 10 * mo->dt_s));
			fc_first_order_init(&mo->thermal, blk, 0.999);
			fc_linear_init(&mo->power, 1.0);
			fc_trend_init(&mo->wear, fmin(3600, fmax(10, 60 * mo->dt_s)), 0.9995);
			mo->init = true;
		}
		if (!mo->init)
			continue;
		const struct telemetry_point *y = find_point(pts + i, j - i, pf->out_metric);
		const struct telemetry_point *u = find_point(pts + i, j - i, pf->in_metric);
		if (y && pf->in_is_setpoint && d->have_setpoint)
			fc_first_order_add(&mo->thermal, t, y->value, d->setpoint);
		else if (y && u)
			fc_first_order_add(&mo->thermal, t, y->value, u->value);
		/* after a setpoint change the input needs a while to follow
		 * (pressure and speed have their own lag): not learned from */
		if (u && pf->power_by_setpoint && d->have_setpoint && d->setpoint > 0 &&
		    u->value > 0 && t - d->setpoint_t > 3 * mo->thermal.block_s)
			fc_linear_add(&mo->power, log(d->setpoint), log(u->value));
		const struct telemetry_point *w = find_point(pts + i, j - i, pf->wear_metric);
		if (w)
			fc_trend_add(&mo->wear, t, w->value);
		d->models_dirty = true;
	}
}

void insight_on_points(struct insight *in, const char *device_id, const char *model,
		       const struct telemetry_point *pts, size_t n, int64_t now_ms)
{
	if (!device_id || n == 0)
		return;
	struct idev *d = insight_dev(in, device_id, true);
	if (!d)
		return;
	insight_set_model(d, model);
	for (size_t i = 0; i < n; i++)
		score_point(in, d, &pts[i], now_ms);
	if (d->prof)
		feed_models(d, pts, n);
	d->updated_ms = now_ms;
}

void insight_on_report(struct insight *in, const char *device_id, const uint8_t *payload,
		       size_t len)
{
	/* Cheap before parsing: most reports do not name a setpoint. */
	if (!device_id || !payload || len == 0 || len > 65536 ||
	    !memmem(payload, len, "\"setpoint\"", 10))
		return;
	cJSON *doc = cJSON_ParseWithLength((const char *)payload, len);
	const cJSON *sp = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "state"),
						 "reported"),
		"setpoint");
	if (cJSON_IsNumber(sp) && isfinite(sp->valuedouble)) {
		struct idev *d = insight_dev(in, device_id, true);
		if (d && (!d->have_setpoint || d->setpoint != sp->valuedouble)) {
			d->setpoint = sp->valuedouble;
			d->setpoint_t = d->mod.last_t;
			d->have_setpoint = true;
		}
	}
	cJSON_Delete(doc);
}

void insight_tick(struct insight *in, int64_t now_ms)
{
	int64_t clear_ms = (int64_t)in->cfg.clear_after_s * 1000;
	for (size_t i = 0; i < in->nbuckets; i++)
		for (struct idev *d = in->table[i]; d; d = d->next)
			for (size_t k = 0; k < d->nm; k++) {
				struct imetric *m = &d->m[k];
				/* the episode ends once the device has been scored
				 * calm for clear_after_s (not merely silent) */
				if (m->anomalous && now_ms - m->last_high_ms >= clear_ms &&
				    d->updated_ms > m->last_high_ms + clear_ms / 2) {
					m->anomalous = false;
					m->severity = 0;
					m->dirty = true;
					resolve_alert(in, d, m, now_ms);
				}
			}
	if (in->saved_ms == 0)
		in->saved_ms = now_ms;
	if (now_ms - in->saved_ms >= (int64_t)in->cfg.save_every_s * 1000) {
		insight_persist_save(in);
		in->saved_ms = now_ms;
	}
}

void insight_device_deleted(struct insight *in, const char *device_id)
{
	insight_persist_drop(in, device_id);
	if (!in->nbuckets)
		return;
	uint32_t h = hash_id(device_id);
	for (struct idev **pp = &in->table[h & (in->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
		struct idev *d = *pp;
		if (d->hash == h && strcmp(d->id, device_id) == 0) {
			*pp = d->next;
			dev_free(d);
			in->count--;
			in->st.devices = in->count;
			return;
		}
	}
}

double insight_wear_limit(struct insight *in, const struct idev *d)
{
	struct rules_threshold th[4];
	size_t n = in->rules ? rules_thresholds(in->rules, d->id, d->model, d->prof->wear_metric,
						    th, 4)
			     : 0;
	double lim = INFINITY;
	for (size_t i = 0; i < n && i < 4; i++)
		if (th[i].rising && th[i].value > 0 && th[i].value < lim)
			lim = th[i].value;
	return isfinite(lim) ? lim : d->prof->wear_limit;
}

void insight_get_stats(const struct insight *in, struct insight_stats *out)
{
	*out = in->st;
}
