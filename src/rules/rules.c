/*
 * rules.c - the rules object: its tables, the compiled rules, per-device
 * evaluation state, evaluation of telemetry (rules_on_points) and of time
 * (rules_tick), and the rules REST operations.
 *
 * Evaluation model: every (rule, device) pair has a struct rstate. A rule's
 * condition is checked per point of its metric (threshold, rate) or once per
 * batch (expression, over the latest value of each metric). A condition that
 * holds starts a timer (since_ms, arrival time, so device clock skew does
 * not matter); when it has held for_s the rule becomes active and raises its
 * alert. An active rule stays active until the value is back past the
 * hysteresis band; then it clears the alert, unless another rule of the same
 * alert type still holds it for that device. While active, each batch that
 * still meets the condition updates the open alert (count, value); if a
 * person cleared the alert meanwhile, the rule stays quiet until recovery
 * (a cleared alert is not reopened by the same episode).
 *
 * Threading: pipeline thread only (webhook.c has the one other thread).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "rules/rules_int.h"

#define MAX_RULES 10000

static const char *const sev_names[] = { "none", "warning", "minor", "major", "critical" };

const char *severity_name(enum severity s)
{
	return s <= SEV_CRITICAL ? sev_names[s] : "none";
}

enum severity severity_parse(const char *s)
{
	for (int i = SEV_WARNING; i <= SEV_CRITICAL; i++)
		if (strcmp(s, sev_names[i]) == 0)
			return (enum severity)i;
	return SEV_NONE;
}

int64_t rules_parse_id(const char *s)
{
	if (!s || !*s || strlen(s) > 18)
		return -1;
	int64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v > 0 ? v : -1;
}

bool rules_exec(struct rules *r, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		MOTE_ERROR("rules", "event=sql_error error=\"%s\"", msg ? msg : "?");
		sqlite3_free(msg);
		return false;
	}
	return true;
}

void rules_config_defaults(struct rules_config *cfg)
{
	cfg->webhook_timeout_ms = 5000;
	cfg->webhook_attempts = 5;
	cfg->webhook_backoff_ms = 1000;
	cfg->webhook_queue = 1000;
	cfg->history_days = 90;
}

/* ---- devices ---------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool grow_tab(struct rules *r)
{
	size_t cap = r->tabcap ? r->tabcap * 2 : 256;
	struct rdev **t = calloc(cap, sizeof *t);
	if (!t)
		return false;
	for (size_t i = 0; i < r->tabcap; i++) {
		for (struct rdev *d = r->tab[i], *n; d; d = n) {
			n = d->hnext;
			size_t b = hash_str(d->id) & (cap - 1);
			d->hnext = t[b];
			t[b] = d;
		}
	}
	free(r->tab);
	r->tab = t;
	r->tabcap = cap;
	return true;
}

struct rdev *rules_dev(struct rules *r, const char *id, bool create)
{
	if (r->tabcap) {
		for (struct rdev *d = r->tab[hash_str(id) & (r->tabcap - 1)]; d; d = d->hnext)
			if (strcmp(d->id, id) == 0)
				return d;
	}
	if (!create || strlen(id) > RULE_ID_MAX)
		return NULL;
	if ((r->ndev + 1) * 4 > r->tabcap * 3 && !grow_tab(r))
		return NULL;
	struct rdev *d = calloc(1, sizeof *d);
	if (!d || !(d->id = strdup(id))) {
		free(d);
		return NULL;
	}
	size_t b = hash_str(id) & (r->tabcap - 1);
	d->hnext = r->tab[b];
	r->tab[b] = d;
	r->ndev++;
	return d;
}

static void dev_free(struct rdev *d)
{
	for (size_t i = 0; i < d->nst; i++)
		free(d->st[i].samp);
	free(d->st);
	free(d->lat);
	free(d->id);
	free(d);
}

static struct rstate *dev_state(struct rdev *d, int64_t rule_id, bool create)
{
	for (size_t i = 0; i < d->nst; i++)
		if (d->st[i].rule_id == rule_id)
			return &d->st[i];
	if (!create)
		return NULL;
	if (d->nst == d->capst) {
		size_t cap = d->capst ? d->capst * 2 : 4;
		struct rstate *n = realloc(d->st, cap * sizeof *n);
		if (!n)
			return NULL;
		d->st = n;
		d->capst = cap;
	}
	struct rstate *s = &d->st[d->nst++];
	memset(s, 0, sizeof *s);
	s->rule_id = rule_id;
	return s;
}

/* A new state adopts an alert its rule opened before a restart, so recovery still clears it. */
static struct rstate *rule_state(struct rules *r, const struct rule *ru, struct rdev *d)
{
	struct rstate *s = dev_state(d, ru->id, false);
	if (s)
		return s;
	s = dev_state(d, ru->id, true);
	if (s)
		s->active = alert_open_by_rule(r, d->id, ru->type, ru->id);
	return s;
}

static bool rule_matches(const struct rule *ru, const struct rdev *d)
{
	return ru->device[0] ? strcmp(ru->device, d->id) == 0 : strcmp(ru->model, d->model) == 0;
}

size_t rules_thresholds(struct rules *r, const char *device_id, const char *model,
			const char *metric, struct rules_threshold *out, size_t cap)
{
	static const char *const sev[] = { "none", "warning", "minor", "major", "critical" };
	size_t n = 0;
	for (const struct rule *ru = r->rules; ru; ru = ru->next) {
		if (!ru->enabled || ru->kind != RK_THRESHOLD || strcmp(ru->metric, metric) != 0)
			continue;
		if (ru->device[0] ? strcmp(ru->device, device_id) != 0
				  : !model || strcmp(ru->model, model) != 0)
			continue;
		bool rising = ru->op == CMP_GT || ru->op == CMP_GE;
		if (!rising && ru->op != CMP_LT && ru->op != CMP_LE)
			continue;
		if (n < cap) {
			out[n] = (struct rules_threshold){ .rule_id = ru->id, .value = ru->value,
							   .rising = rising };
			snprintf(out[n].severity, sizeof out[n].severity, "%s", sev[ru->severity]);
		}
		n++;
	}
	return n;
}

/* The metrics enabled expressions read, and the counts that let a batch skip work. */
void rules_recompute(struct rules *r)
{
	atomic_store(&r->st_rules, r->nrules);
	r->n_nodata = r->n_expr = 0;
	r->nwatched = 0;
	size_t cap = 0;
	for (struct rule *ru = r->rules; ru; ru = ru->next) {
		if (!ru->enabled)
			continue;
		r->n_nodata += ru->kind == RK_NODATA;
		if (ru->kind != RK_EXPR)
			continue;
		r->n_expr++;
		for (size_t i = 0; i < rexpr_nvars(ru->expr); i++) {
			const char *m = rexpr_var(ru->expr, i);
			size_t k;
			for (k = 0; k < r->nwatched; k++)
				if (strcmp(r->watched[k], m) == 0)
					break;
			if (k < r->nwatched)
				continue;
			if (r->nwatched == cap) {
				cap = cap ? cap * 2 : 16;
				void *n = realloc(r->watched, cap * sizeof *r->watched);
				if (!n)
					return;
				r->watched = n;
			}
			snprintf(r->watched[r->nwatched++], sizeof r->watched[0], "%s", m);
		}
	}
}

/* ---- open / close ----------------------------------------------------- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS rules_rules ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, spec TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS rules_devices ("
	" id TEXT PRIMARY KEY, model TEXT NOT NULL DEFAULT '', last_ms INTEGER NOT NULL);";

static bool load_rules(struct rules *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, spec, created_ms, updated_ms FROM rules_rules ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	struct rule **tail = &r->rules;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *spec = (const char *)sqlite3_column_text(st, 1);
		cJSON *j = cJSON_Parse(spec ? spec : "");
		struct rule *ru = calloc(1, sizeof *ru);
		char err[256];
		if (!ru || !rule_from_json(j, ru, err, sizeof err)) {
			MOTE_WARN("rules", "event=rule_skipped id=%" PRId64 " error=\"%s\"",
				  (int64_t)sqlite3_column_int64(st, 0), ru ? err : "out of memory");
			rule_free(ru);
			cJSON_Delete(j);
			continue;
		}
		cJSON_Delete(j);
		ru->id = sqlite3_column_int64(st, 0);
		ru->created_ms = sqlite3_column_int64(st, 2);
		ru->updated_ms = sqlite3_column_int64(st, 3);
		*tail = ru;
		tail = &ru->next;
		r->nrules++;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(r->db, "SELECT id, model, last_ms FROM rules_devices", -1, &st, NULL) !=
	    SQLITE_OK)
		return false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct rdev *d = rules_dev(r, (const char *)sqlite3_column_text(st, 0), true);
		if (!d)
			continue;
		snprintf(d->model, sizeof d->model, "%s", (const char *)sqlite3_column_text(st, 1));
		d->last_ms = sqlite3_column_int64(st, 2);
		d->seen = true;
	}
	sqlite3_finalize(st);
	rules_recompute(r);
	return true;
}

enum mote_err rules_open(sqlite3 *db, const struct rules_config *cfg, const struct mote_sink *sink,
			 struct rules **out, char *err, size_t errcap)
{
	*out = NULL;
	struct rules *r = calloc(1, sizeof *r);
	if (!r) {
		snprintf(err, errcap, "out of memory");
		return MOTE_ENOMEM;
	}
	r->db = db;
	if (cfg)
		r->cfg = *cfg;
	else
		rules_config_defaults(&r->cfg);
	if (!r->cfg.webhook_attempts)
		r->cfg.webhook_attempts = 1;
	if (!r->cfg.webhook_queue)
		r->cfg.webhook_queue = 1;
	if (!r->cfg.history_days)
		r->cfg.history_days = 90;
	if (sink)
		r->sink = *sink;
	if (!rules_exec(r, schema) || !alerts_schema(r) || !webhook_schema(r) || !load_rules(r)) {
		snprintf(err, errcap, "rules: cannot create or read tables: %s", sqlite3_errmsg(db));
		rules_close(r);
		return MOTE_EIO;
	}
	alerts_recount(r);
	enum mote_err e = webhook_start(r);
	if (e != MOTE_OK) {
		snprintf(err, errcap, "rules: cannot start the webhook thread");
		rules_close(r);
		return e;
	}
	*out = r;
	return MOTE_OK;
}

void rules_close(struct rules *r)
{
	if (!r)
		return;
	webhook_stop(r);
	for (struct rule *ru = r->rules, *n; ru; ru = n) {
		n = ru->next;
		rule_free(ru);
	}
	for (size_t i = 0; i < r->tabcap; i++)
		for (struct rdev *d = r->tab[i], *n; d; d = n) {
			n = d->hnext;
			dev_free(d);
		}
	free(r->tab);
	free(r->watched);
	free(r);
}

/* ---- evaluation ------------------------------------------------------- */

static bool cmp_true(enum rule_cmp op, double v, double x)
{
	switch (op) {
	case CMP_GT: return v > x;
	case CMP_GE: return v >= x;
	case CMP_LT: return v < x;
	case CMP_LE: return v <= x;
	case CMP_EQ: return v == x;
	case CMP_NE: return v != x;
	}
	return false;
}

/*
 * Back past the hysteresis band: with h = 0 simply "the condition is false";
 * with h > 0 strictly beyond value -/+ h (so "> 80, hysteresis 5" clears
 * below 75, and 75 itself still holds).
 */
static bool cmp_recovered(enum rule_cmp op, double v, double x, double h)
{
	if (h <= 0)
		return !cmp_true(op, v, x);
	switch (op) {
	case CMP_GT:
	case CMP_GE: return v < x - h;
	case CMP_LT:
	case CMP_LE: return v > x + h;
	case CMP_EQ: return v != x;
	case CMP_NE: return v == x;
	}
	return true;
}

/* Raises or updates the alert of ru for d, with optional details. */
static void raise_for(struct rules *r, const struct rule *ru, struct rdev *d, struct rstate *s,
		      bool update_only, int64_t now_ms)
{
	cJSON *o = cJSON_CreateObject();
	char *details = NULL;
	if (o) {
		cJSON_AddStringToObject(o, "rule_name", ru->name);
		if (ru->kind == RK_THRESHOLD || ru->kind == RK_RATE) {
			cJSON_AddStringToObject(o, "metric", ru->metric);
			cJSON_AddStringToObject(o, "op", (const char *[]){ ">", ">=", "<", "<=", "==", "!=" }[ru->op]);
			cJSON_AddNumberToObject(o, "threshold", ru->value);
		}
		if (ru->kind == RK_RATE)
			cJSON_AddNumberToObject(o, "rate_per_s", s->last);
		if (ru->kind == RK_EXPR)
			cJSON_AddStringToObject(o, "expr", ru->expr_src);
		if (ru->kind == RK_NODATA) {
			cJSON_AddNumberToObject(o, "timeout_s", (double)ru->timeout_ms / 1000);
			if (d->seen)
				cJSON_AddNumberToObject(o, "last_seen_ms", (double)d->last_ms);
			else
				cJSON_AddNullToObject(o, "last_seen_ms");
		}
		details = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
	}
	alert_raise(r, d->id, ru->type, ru->severity, ru->id, s->has_last ? &s->last : NULL, details,
		    update_only, now_ms);
	free(details);
}

/* Clears the alert of ru's type for d unless another active rule of that type holds it. */
static void recover(struct rules *r, const struct rule *ru, struct rdev *d, int64_t now_ms)
{
	for (struct rule *o = r->rules; o; o = o->next) {
		if (o == ru || strcmp(o->type, ru->type) != 0)
			continue;
		struct rstate *s = dev_state(d, o->id, false);
		if (s && s->active)
			return;
	}
	char who[96];
	snprintf(who, sizeof who, "rule:%" PRId64, ru->id);
	alert_resolve(r, d->id, ru->type, who, now_ms);
}

/* One evaluation of a condition (cond) with its recovery test (back). */
static void step(struct rules *r, const struct rule *ru, struct rdev *d, struct rstate *s, bool cond,
		 bool back, double v, int64_t now_ms)
{
	s->last = v;
	s->has_last = true;
	if (cond) {
		if (!s->holding) {
			s->holding = true;
			s->since_ms = now_ms;
		}
		if (s->active) {
			if (!s->fresh)
				s->repeat = true;
		} else if (now_ms - s->since_ms >= ru->for_ms) {
			s->active = true;
			s->fresh = true;
			s->repeat = false;
			raise_for(r, ru, d, s, false, now_ms);
		}
		return;
	}
	s->holding = false;
	if (s->active && back) {
		s->active = false;
		s->repeat = false;
		recover(r, ru, d, now_ms);
	}
}

static void eval_rate(struct rules *r, const struct rule *ru, struct rdev *d, struct rstate *s,
		      const struct telemetry_point *p, int64_t now_ms)
{
	if (s->n && p->ts_ms <= s->samp[(s->head + s->n - 1) % s->cap].ts)
		return; /* out of order or repeated: a rate needs time to move forward */
	if (s->n == s->cap) {
		if (s->cap < RATE_SAMPLES_MAX) {
			uint32_t cap = s->cap ? s->cap * 2 : 16;
			struct sample *n = malloc(cap * sizeof *n);
			if (!n)
				return;
			for (uint32_t i = 0; i < s->n; i++)
				n[i] = s->samp[(s->head + i) % s->cap];
			free(s->samp);
			s->samp = n;
			s->cap = cap;
			s->head = 0;
		} else {
			s->head = (s->head + 1) % s->cap; /* the window shrinks rather than memory grows */
			s->n--;
		}
	}
	s->samp[(s->head + s->n) % s->cap] = (struct sample){ p->ts_ms, p->value };
	s->n++;
	while (s->n > 1 && s->samp[s->head].ts < p->ts_ms - ru->window_ms) {
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	if (s->n < 2)
		return;
	const struct sample *a = &s->samp[s->head];
	double rate = (p->value - a->v) / ((double)(p->ts_ms - a->ts) / 1000.0);
	step(r, ru, d, s, cmp_true(ru->op, rate, ru->value),
	     cmp_recovered(ru->op, rate, ru->value, ru->hysteresis), rate, now_ms);
}

static void eval_expr(struct rules *r, const struct rule *ru, struct rdev *d, struct rstate *s,
		      int64_t now_ms)
{
	double vars[REXPR_MAX_VARS];
	size_t nv = rexpr_nvars(ru->expr);
	for (size_t i = 0; i < nv; i++) {
		const char *m = rexpr_var(ru->expr, i);
		size_t k;
		for (k = 0; k < d->nlat; k++)
			if (d->lat[k].has && strcmp(d->lat[k].name, m) == 0)
				break;
		if (k == d->nlat)
			return; /* a metric never seen: nothing to say yet */
		vars[i] = d->lat[k].v;
	}
	double v = rexpr_eval(ru->expr, vars);
	bool t = rexpr_true(v);
	step(r, ru, d, s, t, !t, v, now_ms);
}

static void note_latest(struct rules *r, struct rdev *d, const struct telemetry_point *p)
{
	size_t k;
	for (k = 0; k < r->nwatched; k++)
		if (strcmp(r->watched[k], p->metric) == 0)
			break;
	if (k == r->nwatched)
		return;
	for (k = 0; k < d->nlat; k++)
		if (strcmp(d->lat[k].name, p->metric) == 0)
			break;
	if (k == d->nlat) {
		struct latest *n = realloc(d->lat, (d->nlat + 1) * sizeof *n);
		if (!n)
			return;
		d->lat = n;
		snprintf(d->lat[k].name, sizeof d->lat[k].name, "%s", p->metric);
		d->lat[k].has = false;
		d->nlat++;
	}
	d->lat[k].v = p->value;
	d->lat[k].has = true;
}

static bool batch_has_var(const struct rule *ru, const struct telemetry_point *pts, size_t n)
{
	for (size_t i = 0; i < rexpr_nvars(ru->expr); i++)
		for (size_t k = 0; k < n; k++)
			if (strcmp(pts[k].metric, rexpr_var(ru->expr, i)) == 0)
				return true;
	return false;
}

void rules_on_points(struct rules *r, const char *device_id, const char *model,
		     const struct telemetry_point *pts, size_t n, int64_t now_ms)
{
	if (!r->nrules || !device_id)
		return;
	struct rdev *d = rules_dev(r, device_id, true);
	if (!d)
		return;
	if (model && model[0])
		/* a model longer than any rule can name matches no per-model rule */
		snprintf(d->model, sizeof d->model, "%s", strlen(model) <= RULE_ID_MAX ? model : "");
	d->last_ms = now_ms;
	d->seen = true;
	d->dirty = true;
	if (r->nwatched)
		for (size_t i = 0; i < n; i++)
			note_latest(r, d, &pts[i]);
	for (struct rule *ru = r->rules; ru; ru = ru->next) {
		if (!ru->enabled || !rule_matches(ru, d))
			continue;
		if (ru->kind == RK_NODATA) {
			struct rstate *s = rule_state(r, ru, d);
			if (s && s->active) {
				s->active = false;
				recover(r, ru, d, now_ms);
			}
			if (s)
				s->armed = false;
			continue;
		}
		if (ru->kind == RK_EXPR && !batch_has_var(ru, pts, n))
			continue;
		struct rstate *s = NULL;
		for (size_t i = 0; i < n && ru->kind != RK_EXPR; i++) {
			if (strcmp(pts[i].metric, ru->metric) != 0)
				continue;
			if (!s && !(s = rule_state(r, ru, d)))
				return;
			if (ru->kind == RK_THRESHOLD)
				step(r, ru, d, s, cmp_true(ru->op, pts[i].value, ru->value),
				     cmp_recovered(ru->op, pts[i].value, ru->value, ru->hysteresis),
				     pts[i].value, now_ms);
			else
				eval_rate(r, ru, d, s, &pts[i], now_ms);
		}
		if (ru->kind == RK_EXPR) {
			if (!(s = rule_state(r, ru, d)))
				return;
			eval_expr(r, ru, d, s, now_ms);
		}
		if (!s)
			continue;
		if (s->repeat && s->active)
			raise_for(r, ru, d, s, true, now_ms);
		s->repeat = s->fresh = false;
	}
}

/*
 * Last-seen times survive a restart for no-data rules; written at most once
 * a minute per device so that many chatty devices cost the pipeline little
 * (after a restart a no-data alert may open up to a minute early).
 */
static void persist_devices(struct rules *r, int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO rules_devices(id, model, last_ms) VALUES(?,?,?) "
			       "ON CONFLICT(id) DO UPDATE SET model=excluded.model, last_ms=excluded.last_ms",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	rules_exec(r, "SAVEPOINT rules_devices");
	for (size_t i = 0; i < r->tabcap; i++)
		for (struct rdev *d = r->tab[i]; d; d = d->hnext) {
			if (!d->dirty || (d->persisted_ms && now_ms - d->persisted_ms < 60000))
				continue;
			d->dirty = false;
			d->persisted_ms = now_ms;
			sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, d->model, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, d->last_ms);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
	rules_exec(r, "RELEASE rules_devices");
	sqlite3_finalize(st);
}

void rules_tick(struct rules *r, int64_t now_ms)
{
	webhook_drain(r);
	for (struct rule *ru = r->rules; ru; ru = ru->next) {
		if (!ru->enabled)
			continue;
		if (ru->kind == RK_NODATA && ru->device[0])
			rules_dev(r, ru->device, true); /* watch a device that never spoke */
		if (ru->kind != RK_NODATA && ru->for_ms == 0)
			continue;
		for (size_t i = 0; i < r->tabcap; i++)
			for (struct rdev *d = r->tab[i]; d; d = d->hnext) {
				if (!rule_matches(ru, d))
					continue;
				struct rstate *s = ru->kind == RK_NODATA ? rule_state(r, ru, d)
									 : dev_state(d, ru->id, false);
				if (!s || s->active)
					continue;
				if (ru->kind == RK_NODATA) {
					if (!d->seen && !s->armed) {
						s->armed = true;
						s->armed_ms = now_ms;
					}
					int64_t ref = d->seen ? d->last_ms : s->armed_ms;
					if (now_ms - ref >= ru->timeout_ms) {
						s->active = true;
						s->has_last = true;
						s->last = (double)(now_ms - ref) / 1000.0;
						raise_for(r, ru, d, s, false, now_ms);
					}
				} else if (s->holding && now_ms - s->since_ms >= ru->for_ms) {
					s->active = true;
					raise_for(r, ru, d, s, false, now_ms);
				}
			}
	}
	if (r->n_nodata)
		persist_devices(r, now_ms);
	if (now_ms - r->last_retention_ms >= 60000) {
		r->last_retention_ms = now_ms;
		alerts_retention(r, now_ms);
		webhook_retention(r, now_ms);
	}
}

void rules_device_deleted(struct rules *r, const char *device_id)
{
	for (size_t i = 0; i < r->tabcap; i++)
		for (struct rdev **pp = &r->tab[i]; *pp; pp = &(*pp)->hnext)
			if (strcmp((*pp)->id, device_id) == 0) {
				struct rdev *d = *pp;
				*pp = d->hnext;
				dev_free(d);
				r->ndev--;
				goto db;
			}
db:;
	static const char *const sql[] = {
		"DELETE FROM alert_events WHERE alert IN (SELECT id FROM alerts WHERE device=?1)",
		"DELETE FROM alerts WHERE device=?1",
		"DELETE FROM rules_devices WHERE id=?1",
	};
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(r->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			continue;
		sqlite3_bind_text(st, 1, device_id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	alerts_recount(r);
}

void rules_forget_rule(struct rules *r, int64_t rule_id, bool keep_active)
{
	for (size_t i = 0; i < r->tabcap; i++)
		for (struct rdev *d = r->tab[i]; d; d = d->hnext)
			for (size_t k = 0; k < d->nst; k++) {
				struct rstate *s = &d->st[k];
				if (s->rule_id != rule_id)
					continue;
				if (keep_active && s->active) {
					s->holding = s->armed = false;
					s->n = s->head = 0;
					continue;
				}
				free(s->samp);
				d->st[k] = d->st[--d->nst];
				k--;
			}
}

/* ---- raise / resolve for other modules --------------------------------- */

enum mote_err rules_raise(struct rules *r, const char *device_id, const char *type,
			  const char *severity, const char *details, int64_t now_ms)
{
	if (!device_id || !*device_id || strlen(device_id) > RULE_ID_MAX || !type || !*type ||
	    strlen(type) > RULE_NAME_MAX || !severity)
		return MOTE_EINVAL;
	enum severity sev = severity_parse(severity);
	if (sev == SEV_NONE)
		return MOTE_EINVAL;
	if (details) {
		cJSON *j = cJSON_Parse(details);
		bool ok = cJSON_IsObject(j);
		cJSON_Delete(j);
		if (!ok)
			return MOTE_EINVAL;
	}
	return alert_raise(r, device_id, type, sev, 0, NULL, details, false, now_ms) ? MOTE_OK : MOTE_EIO;
}

enum mote_err rules_resolve(struct rules *r, const char *device_id, const char *type, int64_t now_ms)
{
	if (!device_id || !type)
		return MOTE_EINVAL;
	return alert_resolve(r, device_id, type, "system", now_ms) ? MOTE_OK : MOTE_ENOTFOUND;
}

/* ---- REST: rules -------------------------------------------------------- */

static struct rule *find_rule(struct rules *r, const char *id)
{
	int64_t v = rules_parse_id(id);
	for (struct rule *ru = r->rules; ru && v > 0; ru = ru->next)
		if (ru->id == v)
			return ru;
	return NULL;
}

void rules_list(struct rules *r, struct mote_reply *out)
{
	size_t cap = 64, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		goto oom;
	len = (size_t)snprintf(buf, cap, "{\"rules\":[");
	for (struct rule *ru = r->rules; ru; ru = ru->next) {
		char *j = rule_to_json(ru);
		if (!j)
			goto oom;
		size_t n = strlen(j);
		if (len + n + 8 > cap) {
			while (len + n + 8 > cap)
				cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(j);
				goto oom;
			}
			buf = nb;
		}
		if (ru != r->rules)
			buf[len++] = ',';
		memcpy(buf + len, j, n);
		len += n;
		free(j);
	}
	memcpy(buf + len, "]}", 3);
	mote_reply_json(out, 200, buf);
	return;
oom:
	free(buf);
	mote_reply_error(out, 500, "out of memory");
}

void rules_get(struct rules *r, const char *rule_id, struct mote_reply *out)
{
	struct rule *ru = find_rule(r, rule_id);
	if (!ru) {
		mote_reply_error(out, 404, "no rule '%.64s'", rule_id ? rule_id : "");
		return;
	}
	mote_reply_json(out, 200, rule_to_json(ru));
}

/* Parses and validates body into a new rule; replies 400/413 itself on failure. */
static struct rule *parse_body(const char *body, size_t len, struct mote_reply *out)
{
	if (len > RULES_BODY_MAX) {
		mote_reply_error(out, 413, "a rule is at most %d bytes of JSON", RULES_BODY_MAX);
		return NULL;
	}
	cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
	if (!j) {
		mote_reply_error(out, 400, "the body is not valid JSON");
		return NULL;
	}
	struct rule *ru = calloc(1, sizeof *ru);
	char err[300];
	if (!ru) {
		mote_reply_error(out, 500, "out of memory");
	} else if (!rule_from_json(j, ru, err, sizeof err)) {
		mote_reply_error(out, 400, "%s", err);
		rule_free(ru);
		ru = NULL;
	}
	cJSON_Delete(j);
	return ru;
}

static bool save_rule(struct rules *r, struct rule *ru, bool insert)
{
	char *j = rule_to_json(ru);
	if (!j)
		return false;
	sqlite3_stmt *st;
	bool ok = false;
	const char *sql = insert ? "INSERT INTO rules_rules(spec, created_ms, updated_ms) VALUES(?1,?2,?3)"
				 : "UPDATE rules_rules SET spec=?1, created_ms=?2, updated_ms=?3 WHERE id=?4";
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, j, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ru->created_ms);
		sqlite3_bind_int64(st, 3, ru->updated_ms);
		if (!insert)
			sqlite3_bind_int64(st, 4, ru->id);
		ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_finalize(st);
	}
	free(j);
	if (ok && insert) {
		ru->id = sqlite3_last_insert_rowid(r->db);
		/* the stored spec should carry its id too */
		ok = save_rule(r, ru, false);
	}
	return ok;
}

void rules_create(struct rules *r, const char *body, size_t len, struct mote_reply *out)
{
	if (r->nrules >= MAX_RULES) {
		mote_reply_error(out, 409, "at most %d rules", MAX_RULES);
		return;
	}
	struct rule *ru = parse_body(body, len, out);
	if (!ru)
		return;
	ru->created_ms = ru->updated_ms = (int64_t)mote_wall_ms();
	if (!save_rule(r, ru, true)) {
		mote_reply_error(out, 500, "cannot store the rule: %s", sqlite3_errmsg(r->db));
		rule_free(ru);
		return;
	}
	struct rule **tail = &r->rules;
	while (*tail)
		tail = &(*tail)->next;
	*tail = ru;
	r->nrules++;
	rules_recompute(r);
	mote_reply_json(out, 201, rule_to_json(ru));
}

void rules_update(struct rules *r, const char *rule_id, const char *body, size_t len,
		  struct mote_reply *out)
{
	struct rule *old = find_rule(r, rule_id);
	if (!old) {
		mote_reply_error(out, 404, "no rule '%.64s'", rule_id ? rule_id : "");
		return;
	}
	struct rule *ru = parse_body(body, len, out);
	if (!ru)
		return;
	ru->id = old->id;
	ru->created_ms = old->created_ms;
	ru->updated_ms = (int64_t)mote_wall_ms();
	if (!save_rule(r, ru, false)) {
		mote_reply_error(out, 500, "cannot store the rule: %s", sqlite3_errmsg(r->db));
		rule_free(ru);
		return;
	}
	struct rule **pp = &r->rules;
	while (*pp != old)
		pp = &(*pp)->next;
	ru->next = old->next;
	*pp = ru;
	rule_free(old);
	/* Open alerts stay with their rule (it can still clear them); timers and samples restart. */
	rules_forget_rule(r, ru->id, true);
	rules_recompute(r);
	mote_reply_json(out, 200, rule_to_json(ru));
}

void rules_delete(struct rules *r, const char *rule_id, struct mote_reply *out)
{
	struct rule *ru = find_rule(r, rule_id);
	if (!ru) {
		mote_reply_error(out, 404, "no rule '%.64s'", rule_id ? rule_id : "");
		return;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "DELETE FROM rules_rules WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, ru->id);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	/* Nothing would ever clear the alerts this rule opened: clear them now. */
	alerts_clear_rule(r, ru->id, (int64_t)mote_wall_ms());
	struct rule **pp = &r->rules;
	while (*pp != ru)
		pp = &(*pp)->next;
	*pp = ru->next;
	r->nrules--;
	rules_forget_rule(r, ru->id, false);
	rule_free(ru);
	rules_recompute(r);
	mote_reply_json(out, 204, NULL);
}

void rules_get_stats(struct rules *r, struct rules_stats *out)
{
	memset(out, 0, sizeof *out);
	out->rules = atomic_load(&r->st_rules);
	out->alerts_active = atomic_load(&r->st_active);
	out->alerts_raised = atomic_load(&r->st_raised);
	pthread_mutex_lock(&r->q.mu);
	out->webhook_delivered = r->q.delivered;
	out->webhook_failed = r->q.failed;
	out->webhook_queued = r->q.njobs;
	pthread_mutex_unlock(&r->q.mu);
}

void rules_reply_rows(struct mote_reply *out, sqlite3_stmt *st, const char *name,
		      cJSON *(*row)(sqlite3_stmt *st))
{
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = o ? cJSON_AddArrayToObject(o, name) : NULL;
	while (arr && sqlite3_step(st) == SQLITE_ROW) {
		cJSON *item = row(st);
		if (item)
			cJSON_AddItemToArray(arr, item);
	}
	sqlite3_finalize(st);
	mote_reply_cjson(out, 200, o);
}
