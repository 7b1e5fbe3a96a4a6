/*
 * alerts.c - the alert life cycle (docs/rules.md): one open alert per
 * (device, type), enforced by a partial unique index, so a repeat updates
 * the open alert (count, value, time; severity only rises) instead of
 * opening another; acknowledge and clear by people (who and when kept);
 * history in alert_events; notifications ($alerts/{device}, the "alert"
 * live event, webhooks) on every change.
 *
 * Threading: pipeline thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "rules/rules_int.h"

#define LIST_MAX 1000

bool alerts_schema(struct rules *r)
{
	return rules_exec(r,
		"CREATE TABLE IF NOT EXISTS alerts ("
		" id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, type TEXT NOT NULL,"
		" rule INTEGER, severity TEXT NOT NULL, state TEXT NOT NULL,"
		" acknowledged INTEGER NOT NULL DEFAULT 0, ack_by TEXT, ack_ms INTEGER,"
		" cleared_by TEXT, cleared_ms INTEGER, created_ms INTEGER NOT NULL,"
		" updated_ms INTEGER NOT NULL, count INTEGER NOT NULL DEFAULT 1, value REAL,"
		" details TEXT);"
		"CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(device, type)"
		" WHERE state = 'active';"
		"CREATE INDEX IF NOT EXISTS alerts_device ON alerts(device, id);"
		"CREATE INDEX IF NOT EXISTS alerts_cleared ON alerts(cleared_ms) WHERE state = 'cleared';"
		"CREATE TABLE IF NOT EXISTS alert_events ("
		" id INTEGER PRIMARY KEY AUTOINCREMENT, alert INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
		" event TEXT NOT NULL, who TEXT, severity TEXT, value REAL);"
		"CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events(alert, id);");
}

#define COLS "id, device, type, rule, severity, state, acknowledged, ack_by, ack_ms, " \
	     "cleared_by, cleared_ms, created_ms, updated_ms, count, value, details"

static void add_int_or_null(cJSON *o, const char *k, sqlite3_stmt *st, int c)
{
	if (sqlite3_column_type(st, c) == SQLITE_NULL)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, (double)sqlite3_column_int64(st, c));
}

static void add_text_or_null(cJSON *o, const char *k, sqlite3_stmt *st, int c)
{
	const char *t = (const char *)sqlite3_column_text(st, c);
	if (t)
		cJSON_AddStringToObject(o, k, t);
	else
		cJSON_AddNullToObject(o, k);
}

/* One row of COLS as the API's alert object. */
static cJSON *row_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
	add_text_or_null(o, "device", st, 1);
	add_text_or_null(o, "type", st, 2);
	add_int_or_null(o, "rule", st, 3);
	add_text_or_null(o, "severity", st, 4);
	add_text_or_null(o, "state", st, 5);
	cJSON_AddBoolToObject(o, "acknowledged", sqlite3_column_int(st, 6) != 0);
	add_text_or_null(o, "ack_by", st, 7);
	add_int_or_null(o, "ack_ms", st, 8);
	add_text_or_null(o, "cleared_by", st, 9);
	add_int_or_null(o, "cleared_ms", st, 10);
	add_int_or_null(o, "created_ms", st, 11);
	add_int_or_null(o, "updated_ms", st, 12);
	cJSON_AddNumberToObject(o, "count", (double)sqlite3_column_int64(st, 13));
	if (sqlite3_column_type(st, 14) == SQLITE_NULL)
		cJSON_AddNullToObject(o, "value");
	else
		cJSON_AddNumberToObject(o, "value", sqlite3_column_double(st, 14));
	const char *det = (const char *)sqlite3_column_text(st, 15);
	cJSON *d = det ? cJSON_Parse(det) : NULL;
	if (d)
		cJSON_AddItemToObject(o, "details", d);
	else
		cJSON_AddNullToObject(o, "details");
	return o;
}

static cJSON *alert_obj(struct rules *r, int64_t id, bool with_events)
{
	sqlite3_stmt *st;
	cJSON *o = NULL;
	if (sqlite3_prepare_v2(r->db, "SELECT " COLS " FROM alerts WHERE id=?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = row_json(st);
	sqlite3_finalize(st);
	if (!o || !with_events)
		return o;
	cJSON *ev = cJSON_AddArrayToObject(o, "events");
	if (ev && sqlite3_prepare_v2(r->db,
				     "SELECT ts_ms, event, who, severity, value FROM alert_events "
				     "WHERE alert=? ORDER BY id", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *e = cJSON_CreateObject();
			if (!e)
				break;
			cJSON_AddNumberToObject(e, "ts_ms", (double)sqlite3_column_int64(st, 0));
			add_text_or_null(e, "event", st, 1);
			add_text_or_null(e, "who", st, 2);
			add_text_or_null(e, "severity", st, 3);
			if (sqlite3_column_type(st, 4) == SQLITE_NULL)
				cJSON_AddNullToObject(e, "value");
			else
				cJSON_AddNumberToObject(e, "value", sqlite3_column_double(st, 4));
			cJSON_AddItemToArray(ev, e);
		}
		sqlite3_finalize(st);
	}
	return o;
}

/* $alerts/{device}, the "alert" live event, and webhooks: {"event":..., "alert":{...}}. */
static void notify(struct rules *r, const char *event, int64_t id, int64_t now_ms)
{
	cJSON *a = alert_obj(r, id, false);
	if (!a)
		return;
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(a, "device");
	char topic[RULE_ID_MAX + 16];
	snprintf(topic, sizeof topic, "$alerts/%s", cJSON_IsString(dev) ? dev->valuestring : "");
	char *devid = strdup(cJSON_IsString(dev) ? dev->valuestring : "");
	cJSON *o = cJSON_CreateObject();
	char *body = NULL;
	if (o && devid) {
		cJSON_AddStringToObject(o, "event", event);
		cJSON_AddItemToObject(o, "alert", a);
		a = NULL;
		body = cJSON_PrintUnformatted(o);
	}
	cJSON_Delete(o);
	cJSON_Delete(a);
	if (body) {
		mote_sink_publish(&r->sink, topic, body, strlen(body), 1, false);
		mote_sink_event(&r->sink, "alert", devid, body);
		char ev[32];
		snprintf(ev, sizeof ev, "alert.%s", event);
		webhook_notify(r, ev, id, body, now_ms);
	}
	free(body);
	free(devid);
}

static void add_event(struct rules *r, int64_t id, const char *event, const char *who,
		      const char *severity, const double *value, int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO alert_events(alert, ts_ms, event, who, severity, value) "
			       "VALUES(?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_text(st, 3, event, -1, SQLITE_STATIC);
	if (who)
		sqlite3_bind_text(st, 4, who, -1, SQLITE_STATIC);
	if (severity)
		sqlite3_bind_text(st, 5, severity, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_double(st, 6, *value);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

/* The open alert of (device, type): its id (0: none) and severity. */
static int64_t find_open(struct rules *r, const char *device, const char *type, enum severity *sev)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT id, severity FROM alerts WHERE device=? AND type=? AND state='active'",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (sev)
			*sev = severity_parse((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	return id;
}

bool alert_is_open(struct rules *r, const char *device, const char *type)
{
	return find_open(r, device, type, NULL) != 0;
}

bool alert_open_by_rule(struct rules *r, const char *device, const char *type, int64_t rule_id)
{
	sqlite3_stmt *st;
	bool yes = false;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT 1 FROM alerts WHERE device=? AND type=? AND state='active' AND rule=?",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rule_id);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

int64_t alert_raise(struct rules *r, const char *device, const char *type, enum severity sev,
		    int64_t rule_id, const double *value, const char *details, bool update_only,
		    int64_t now_ms)
{
	enum severity old = SEV_NONE;
	int64_t id = find_open(r, device, type, &old);
	sqlite3_stmt *st;
	if (id) {
		enum severity now_sev = sev > old ? sev : old;
		if (sqlite3_prepare_v2(r->db,
				       "UPDATE alerts SET count=count+1, value=COALESCE(?1, value), updated_ms=?2,"
				       " severity=?3, details=COALESCE(?4, details) WHERE id=?5",
				       -1, &st, NULL) != SQLITE_OK)
			return 0;
		if (value)
			sqlite3_bind_double(st, 1, *value);
		sqlite3_bind_int64(st, 2, now_ms);
		sqlite3_bind_text(st, 3, severity_name(now_sev), -1, SQLITE_STATIC);
		if (details)
			sqlite3_bind_text(st, 4, details, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, id);
		bool ok = sqlite3_step(st) == SQLITE_DONE;
		sqlite3_finalize(st);
		if (!ok)
			return 0;
		if (now_sev != old)
			add_event(r, id, "escalated", NULL, severity_name(now_sev), value, now_ms);
		notify(r, "updated", id, now_ms);
		return id;
	}
	if (update_only)
		return 0;
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO alerts(device, type, rule, severity, state, created_ms, updated_ms,"
			       " count, value, details) VALUES(?1,?2,?3,?4,'active',?5,?5,1,?6,?7)",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
	if (rule_id > 0)
		sqlite3_bind_int64(st, 3, rule_id);
	sqlite3_bind_text(st, 4, severity_name(sev), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	if (value)
		sqlite3_bind_double(st, 6, *value);
	if (details)
		sqlite3_bind_text(st, 7, details, -1, SQLITE_STATIC);
	bool ok = sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	if (!ok) {
		MOTE_ERROR("rules", "event=alert_insert_failed error=\"%s\"", sqlite3_errmsg(r->db));
		return 0;
	}
	id = sqlite3_last_insert_rowid(r->db);
	atomic_fetch_add(&r->st_raised, 1);
	alerts_recount(r);
	add_event(r, id, "raised", NULL, severity_name(sev), value, now_ms);
	notify(r, "raised", id, now_ms);
	return id;
}

static bool clear_id(struct rules *r, int64_t id, const char *who, int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE alerts SET state='cleared', cleared_by=?1, cleared_ms=?2, updated_ms=?2"
			       " WHERE id=?3 AND state='active'", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, id);
	bool ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(r->db) == 1;
	sqlite3_finalize(st);
	if (!ok)
		return false;
	add_event(r, id, "cleared", who, NULL, NULL, now_ms);
	alerts_recount(r);
	notify(r, "cleared", id, now_ms);
	return true;
}

bool alert_resolve(struct rules *r, const char *device, const char *type, const char *who,
		   int64_t now_ms)
{
	int64_t id = find_open(r, device, type, NULL);
	return id && clear_id(r, id, who, now_ms);
}


void alerts_clear_rule(struct rules *r, int64_t rule_id, int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id FROM alerts WHERE rule=? AND state='active'", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, rule_id);
	int64_t ids[256];
	size_t n = 0;
	while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	char who[64];
	snprintf(who, sizeof who, "rule:%" PRId64 " deleted", rule_id);
	for (size_t i = 0; i < n; i++)
		clear_id(r, ids[i], who, now_ms);
	if (n == 256)
		alerts_clear_rule(r, rule_id, now_ms); /* more than one batch */
}

void alerts_recount(struct rules *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM alerts WHERE state='active'", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		atomic_store(&r->st_active, (uint_fast64_t)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
}

void alerts_retention(struct rules *r, int64_t now_ms)
{
	int64_t cutoff = now_ms - (int64_t)r->cfg.history_days * 86400000;
	static const char *const sql[] = {
		"DELETE FROM alert_events WHERE alert IN"
		" (SELECT id FROM alerts WHERE state='cleared' AND cleared_ms < ?1)",
		"DELETE FROM alerts WHERE state='cleared' AND cleared_ms < ?1",
	};
	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(r->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return;
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
}

/* ---- REST ---------------------------------------------------------------- */

void alerts_list(struct rules *r, const struct alerts_filter *f, struct mote_reply *out)
{
	struct alerts_filter none = { .acknowledged = -1 };
	if (!f)
		f = &none;
	if (f->state && strcmp(f->state, "active") != 0 && strcmp(f->state, "cleared") != 0) {
		mote_reply_error(out, 400, "state must be active or cleared, not '%.32s'", f->state);
		return;
	}
	if (f->severity && severity_parse(f->severity) == SEV_NONE) {
		mote_reply_error(out, 400, "severity must be critical, major, minor or warning, not '%.32s'",
				 f->severity);
		return;
	}
	uint32_t limit = f->limit ? f->limit : 100;
	if (limit > LIST_MAX)
		limit = LIST_MAX;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT " COLS " FROM alerts WHERE (?1 IS NULL OR device=?1)"
			       " AND (?2 IS NULL OR state=?2) AND (?3 IS NULL OR severity=?3)"
			       " AND (?4 < 0 OR acknowledged=?4) ORDER BY id DESC LIMIT ?5",
			       -1, &st, NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "alerts: %s", sqlite3_errmsg(r->db));
		return;
	}
	if (f->device_id)
		sqlite3_bind_text(st, 1, f->device_id, -1, SQLITE_STATIC);
	if (f->state)
		sqlite3_bind_text(st, 2, f->state, -1, SQLITE_STATIC);
	if (f->severity)
		sqlite3_bind_text(st, 3, f->severity, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, f->acknowledged < 0 ? -1 : f->acknowledged ? 1 : 0);
	sqlite3_bind_int64(st, 5, limit);
	rules_reply_rows(out, st, "alerts", row_json);
}

static int64_t lookup_alert(struct rules *r, const char *alert_id, struct mote_reply *out)
{
	int64_t id = rules_parse_id(alert_id);
	sqlite3_stmt *st;
	bool found = false;
	if (id > 0 && sqlite3_prepare_v2(r->db, "SELECT 1 FROM alerts WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	if (!found) {
		mote_reply_error(out, 404, "no alert '%.64s'", alert_id ? alert_id : "");
		return 0;
	}
	return id;
}

void alerts_get(struct rules *r, const char *alert_id, struct mote_reply *out)
{
	int64_t id = lookup_alert(r, alert_id, out);
	if (id)
		mote_reply_cjson(out, 200, alert_obj(r, id, true));
}

void alerts_ack(struct rules *r, const char *alert_id, const char *who, int64_t now_ms,
		struct mote_reply *out)
{
	int64_t id = lookup_alert(r, alert_id, out);
	if (!id)
		return;
	if (!who || !*who)
		who = "api";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE alerts SET acknowledged=1, ack_by=?1, ack_ms=?2, updated_ms=?2"
			       " WHERE id=?3 AND acknowledged=0", -1, &st, NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "alerts: %s", sqlite3_errmsg(r->db));
		return;
	}
	sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	sqlite3_bind_int64(st, 3, id);
	bool changed = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(r->db) == 1;
	sqlite3_finalize(st);
	/* Acknowledging twice is not an error (a retried request): the first who and when stay. */
	if (changed) {
		add_event(r, id, "acknowledged", who, NULL, NULL, now_ms);
		notify(r, "acknowledged", id, now_ms);
	}
	mote_reply_cjson(out, 200, alert_obj(r, id, false));
}

void alerts_clear(struct rules *r, const char *alert_id, const char *who, int64_t now_ms,
		  struct mote_reply *out)
{
	int64_t id = lookup_alert(r, alert_id, out);
	if (!id)
		return;
	clear_id(r, id, who && *who ? who : "api", now_ms); /* already cleared: unchanged */
	mote_reply_cjson(out, 200, alert_obj(r, id, false));
}
