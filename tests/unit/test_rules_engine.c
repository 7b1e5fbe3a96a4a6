/*
 * test_rules_engine.c - rules and alerts on an in-memory SQLite database
 * with a capturing sink and a test-controlled clock: threshold with
 * duration and hysteresis, rate of change, no-data, expressions, dedup of
 * the open alert per (device, type), escalation, ack and clear with who and
 * when, auto-clear on recovery, history retention, rule validation errors,
 * the rules REST operations, rules_raise/rules_resolve and persistence of
 * rules across a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "rules/rules.h"

#define CAP 256
#define S 1000  /* ms per second */

struct cap {
	int n;
	char topic[CAP][96];
	char *payload[CAP];
	int events;
};

static void cap_pub(void *ctx, const char *topic, const void *payload, size_t len, uint8_t qos,
		    bool retain)
{
	struct cap *c = ctx;
	assert_int_equal(qos, 1);
	assert_false(retain);
	assert_true(c->n < CAP);
	snprintf(c->topic[c->n], sizeof c->topic[0], "%s", topic);
	c->payload[c->n] = strndup(payload, len);
	c->n++;
}

static void cap_event(void *ctx, const char *type, const char *device_id, const char *json)
{
	struct cap *c = ctx;
	assert_string_equal(type, "alert");
	assert_non_null(device_id);
	assert_non_null(strstr(json, "\"event\""));
	c->events++;
}

static void cap_reset(struct cap *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->payload[i]);
	memset(c, 0, sizeof *c);
}

struct fix {
	sqlite3 *db;
	struct rules *r;
	struct cap cap;
	struct mote_sink sink;
};

static struct fix *fix_open(uint32_t history_days)
{
	struct fix *f = calloc(1, sizeof *f);
	assert_int_equal(sqlite3_open(":memory:", &f->db), SQLITE_OK);
	f->sink = (struct mote_sink){ .ctx = &f->cap, .publish = cap_pub, .event = cap_event };
	struct rules_config cfg;
	rules_config_defaults(&cfg);
	if (history_days)
		cfg.history_days = history_days;
	char err[256];
	assert_int_equal(rules_open(f->db, &cfg, &f->sink, &f->r, err, sizeof err), MOTE_OK);
	return f;
}

static void fix_close(struct fix *f)
{
	rules_close(f->r);
	sqlite3_close(f->db);
	cap_reset(&f->cap);
	free(f);
}

static int64_t create(struct fix *f, const char *json)
{
	struct mote_reply rep = { 0 };
	rules_create(f->r, json, strlen(json), &rep);
	if (rep.status != 201)
		fail_msg("create %s: %d %s", json, rep.status, rep.body ? rep.body : "");
	cJSON *j = cJSON_Parse(rep.body);
	int64_t id = (int64_t)cJSON_GetObjectItem(j, "id")->valuedouble;
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	return id;
}

static void point(struct fix *f, const char *dev, const char *model, const char *metric, double v,
		  int64_t ts, int64_t now)
{
	struct telemetry_point p = { metric, ts, v };
	rules_on_points(f->r, dev, model, &p, 1, now);
}

static cJSON *list(struct fix *f, const char *dev, const char *state)
{
	struct alerts_filter flt = { dev, state, NULL, -1, 0 };
	struct mote_reply rep = { 0 };
	alerts_list(f->r, &flt, &rep);
	assert_int_equal(rep.status, 200);
	cJSON *j = cJSON_Parse(rep.body);
	mote_reply_clear(&rep);
	cJSON *a = cJSON_DetachItemFromObject(j, "alerts");
	cJSON_Delete(j);
	return a;
}

static int count(struct fix *f, const char *dev, const char *state)
{
	cJSON *a = list(f, dev, state);
	int n = cJSON_GetArraySize(a);
	cJSON_Delete(a);
	return n;
}

/* The newest alert of dev (any state), as an object the caller frees. */
static cJSON *newest(struct fix *f, const char *dev)
{
	cJSON *a = list(f, dev, NULL);
	assert_true(cJSON_GetArraySize(a) > 0);
	cJSON *o = cJSON_DetachItemFromArray(a, 0);
	cJSON_Delete(a);
	return o;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static void test_threshold_duration_hysteresis(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	int64_t id = create(f, "{\"name\":\"overheat\",\"model\":\"pump\",\"kind\":\"threshold\",\"metric\":\"temp\","
			       "\"op\":\">\",\"value\":80,\"for_s\":10,\"hysteresis\":5,\"severity\":\"critical\"}");
	/* held for 10 s by telemetry */
	point(f, "p1", "pump", "temp", 85, 0, 0);
	point(f, "p1", "pump", "temp", 86, 5 * S, 5 * S);
	assert_int_equal(count(f, "p1", NULL), 0);
	point(f, "p1", "pump", "temp", 87, 10 * S, 10 * S);
	assert_int_equal(count(f, "p1", "active"), 1);
	cJSON *a = newest(f, "p1");
	assert_string_equal(str(a, "type"), "overheat");
	assert_string_equal(str(a, "severity"), "critical");
	assert_true(num(a, "value") == 87);
	assert_true(num(a, "rule") == (double)id);
	cJSON_Delete(a);
	/* inside the hysteresis band (75..80]: stays active */
	point(f, "p1", "pump", "temp", 78, 11 * S, 11 * S);
	point(f, "p1", "pump", "temp", 75, 12 * S, 12 * S);
	assert_int_equal(count(f, "p1", "active"), 1);
	/* past value - hysteresis: cleared by the rule */
	point(f, "p1", "pump", "temp", 74.9, 13 * S, 13 * S);
	assert_int_equal(count(f, "p1", "active"), 0);
	a = newest(f, "p1");
	assert_string_equal(str(a, "state"), "cleared");
	assert_string_equal(str(a, "cleared_by"), "rule:1");
	assert_true(num(a, "cleared_ms") == 13 * S);
	cJSON_Delete(a);

	/* held for 10 s with no new telemetry: the tick raises it */
	point(f, "p2", "pump", "temp", 90, 100 * S, 100 * S);
	rules_tick(f->r, 109 * S);
	assert_int_equal(count(f, "p2", NULL), 0);
	rules_tick(f->r, 110 * S);
	assert_int_equal(count(f, "p2", "active"), 1);

	/* a dip below the threshold restarts the duration */
	point(f, "p3", "pump", "temp", 85, 200 * S, 200 * S);
	point(f, "p3", "pump", "temp", 70, 205 * S, 205 * S);
	point(f, "p3", "pump", "temp", 85, 208 * S, 208 * S);
	rules_tick(f->r, 212 * S);
	assert_int_equal(count(f, "p3", NULL), 0);
	rules_tick(f->r, 218 * S);
	assert_int_equal(count(f, "p3", "active"), 1);

	/* another model is out of scope; an unknown model too */
	point(f, "f1", "fan", "temp", 200, 0, 300 * S);
	point(f, "x1", NULL, "temp", 200, 0, 300 * S);
	rules_tick(f->r, 400 * S);
	assert_int_equal(count(f, "f1", NULL), 0);
	assert_int_equal(count(f, "x1", NULL), 0);
	fix_close(f);
}

static void test_dedup_and_notifications(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"hot\",\"device\":\"d1\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">=\",\"value\":50}");
	point(f, "d1", NULL, "t", 50, 0, 1 * S);
	point(f, "d1", NULL, "t", 60, 0, 2 * S);
	point(f, "d1", NULL, "t", 70, 0, 3 * S);
	assert_int_equal(count(f, "d1", NULL), 1); /* one alert, updated */
	cJSON *a = newest(f, "d1");
	assert_true(num(a, "count") == 3);
	assert_true(num(a, "value") == 70);
	assert_true(num(a, "created_ms") == 1 * S);
	assert_true(num(a, "updated_ms") == 3 * S);
	assert_string_equal(str(a, "severity"), "major"); /* the default */
	cJSON_Delete(a);
	/* $alerts/d1: raised, updated, updated */
	assert_int_equal(f->cap.n, 3);
	assert_int_equal(f->cap.events, 3);
	assert_string_equal(f->cap.topic[0], "$alerts/d1");
	cJSON *m = cJSON_Parse(f->cap.payload[0]);
	assert_string_equal(str(m, "event"), "raised");
	assert_string_equal(str(cJSON_GetObjectItem(m, "alert"), "device"), "d1");
	cJSON_Delete(m);
	m = cJSON_Parse(f->cap.payload[2]);
	assert_string_equal(str(m, "event"), "updated");
	assert_true(num(cJSON_GetObjectItem(m, "alert"), "count") == 3);
	cJSON_Delete(m);
	/* a batch of several points updates once */
	struct telemetry_point pts[3] = { { "t", 0, 80 }, { "t", 1, 81 }, { "t", 2, 82 } };
	rules_on_points(f->r, "d1", NULL, pts, 3, 4 * S);
	a = newest(f, "d1");
	assert_true(num(a, "count") == 4);
	assert_true(num(a, "value") == 82);
	cJSON_Delete(a);
	/* recovery then a new breach: a second alert */
	point(f, "d1", NULL, "t", 10, 0, 5 * S);
	point(f, "d1", NULL, "t", 99, 0, 6 * S);
	assert_int_equal(count(f, "d1", NULL), 2);
	assert_int_equal(count(f, "d1", "active"), 1);
	m = cJSON_Parse(f->cap.payload[f->cap.n - 2]);
	assert_string_equal(str(m, "event"), "cleared");
	cJSON_Delete(m);
	fix_close(f);
}

static void test_escalation_two_rules_one_type(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"warm\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\","
		  "\"value\":70,\"severity\":\"warning\",\"alert_type\":\"temperature\"}");
	create(f, "{\"name\":\"burning\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\","
		  "\"value\":90,\"severity\":\"critical\",\"alert_type\":\"temperature\"}");
	point(f, "d", NULL, "t", 75, 0, 1 * S);
	cJSON *a = newest(f, "d");
	assert_string_equal(str(a, "severity"), "warning");
	cJSON_Delete(a);
	point(f, "d", NULL, "t", 95, 0, 2 * S);
	assert_int_equal(count(f, "d", NULL), 1);
	a = newest(f, "d");
	assert_string_equal(str(a, "severity"), "critical");
	assert_string_equal(str(a, "type"), "temperature");
	cJSON_Delete(a);
	/* the critical rule recovers, the warning rule still holds the alert */
	point(f, "d", NULL, "t", 80, 0, 3 * S);
	assert_int_equal(count(f, "d", "active"), 1);
	a = newest(f, "d");
	assert_string_equal(str(a, "severity"), "critical"); /* never lowered by an update */
	cJSON_Delete(a);
	point(f, "d", NULL, "t", 60, 0, 4 * S);
	assert_int_equal(count(f, "d", "active"), 0);
	/* history shows raised, escalated, cleared */
	char id[32];
	a = newest(f, "d");
	snprintf(id, sizeof id, "%d", (int)num(a, "id"));
	cJSON_Delete(a);
	struct mote_reply rep = { 0 };
	alerts_get(f->r, id, &rep);
	assert_int_equal(rep.status, 200);
	cJSON *j = cJSON_Parse(rep.body);
	cJSON *ev = cJSON_GetObjectItem(j, "events");
	assert_int_equal(cJSON_GetArraySize(ev), 3);
	assert_string_equal(str(cJSON_GetArrayItem(ev, 0), "event"), "raised");
	assert_string_equal(str(cJSON_GetArrayItem(ev, 1), "event"), "escalated");
	assert_string_equal(str(cJSON_GetArrayItem(ev, 1), "severity"), "critical");
	assert_string_equal(str(cJSON_GetArrayItem(ev, 2), "event"), "cleared");
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	fix_close(f);
}

static void test_rate(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"filling\",\"device\":\"tank\",\"kind\":\"rate\",\"metric\":\"level\",\"op\":\">\","
		  "\"value\":1,\"window_s\":10}");
	point(f, "tank", NULL, "level", 0, 0, 1);
	point(f, "tank", NULL, "level", 0.5, 1 * S, 2);
	assert_int_equal(count(f, "tank", NULL), 0); /* 0.5/s */
	point(f, "tank", NULL, "level", 5, 2 * S, 3);
	assert_int_equal(count(f, "tank", "active"), 1); /* (5 - 0) / 2 s = 2.5/s */
	cJSON *a = newest(f, "tank");
	assert_true(num(a, "value") == 2.5);
	assert_true(num(cJSON_GetObjectItem(a, "details"), "rate_per_s") == 2.5);
	cJSON_Delete(a);
	/* an out-of-order point is ignored */
	point(f, "tank", NULL, "level", -100, 1500, 4);
	assert_int_equal(count(f, "tank", "active"), 1);
	/* ten seconds later the window holds only flat values: 0/s, cleared */
	point(f, "tank", NULL, "level", 5, 12 * S, 5);
	point(f, "tank", NULL, "level", 5, 13 * S, 6);
	assert_int_equal(count(f, "tank", "active"), 0);
	/* falling fast does not match op > */
	point(f, "tank", NULL, "level", -50, 14 * S, 7);
	assert_int_equal(count(f, "tank", "active"), 0);
	fix_close(f);
}

static void test_nodata(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"silent\",\"model\":\"pump\",\"kind\":\"nodata\",\"timeout_s\":30,\"severity\":\"minor\"}");
	create(f, "{\"name\":\"ghost-silent\",\"device\":\"ghost\",\"kind\":\"nodata\",\"timeout_s\":30}");
	point(f, "p1", "pump", "temp", 1, 0, 0);
	rules_tick(f->r, 29 * S);
	assert_int_equal(count(f, "p1", NULL), 0);
	rules_tick(f->r, 30 * S);
	assert_int_equal(count(f, "p1", "active"), 1);
	cJSON *a = newest(f, "p1");
	assert_string_equal(str(a, "type"), "silent");
	assert_string_equal(str(a, "severity"), "minor");
	assert_true(num(cJSON_GetObjectItem(a, "details"), "timeout_s") == 30);
	cJSON_Delete(a);
	rules_tick(f->r, 31 * S); /* still silent: no second alert, no update */
	assert_int_equal(count(f, "p1", NULL), 1);
	point(f, "p1", "pump", "temp", 1, 0, 32 * S);
	assert_int_equal(count(f, "p1", "active"), 0);
	/* silent again: a new alert */
	rules_tick(f->r, 62 * S);
	assert_int_equal(count(f, "p1", "active"), 1);
	assert_int_equal(count(f, "p1", NULL), 2);
	/* a device that never spoke: watched from the first tick (ticks so far: from 29 s) */
	assert_int_equal(count(f, "ghost", "active"), 1);
	fix_close(f);

	f = fix_open(0);
	create(f, "{\"name\":\"ghost-silent\",\"device\":\"ghost\",\"kind\":\"nodata\",\"timeout_s\":30}");
	rules_tick(f->r, 100 * S);
	rules_tick(f->r, 129 * S);
	assert_int_equal(count(f, "ghost", NULL), 0);
	rules_tick(f->r, 130 * S);
	assert_int_equal(count(f, "ghost", "active"), 1);
	cJSON *d = newest(f, "ghost");
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "details"), "last_seen_ms")));
	cJSON_Delete(d);
	fix_close(f);
}

static void test_expression(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"stall\",\"model\":\"pump\",\"kind\":\"expression\","
		  "\"expr\":\"temp > 80 && rpm < 100\",\"for_s\":0}");
	point(f, "p", "pump", "temp", 85, 0, 1);
	assert_int_equal(count(f, "p", NULL), 0); /* rpm never seen */
	point(f, "p", "pump", "rpm", 50, 0, 2);
	assert_int_equal(count(f, "p", "active"), 1);
	cJSON *a = newest(f, "p");
	assert_string_equal(str(cJSON_GetObjectItem(a, "details"), "expr"), "temp > 80 && rpm < 100");
	cJSON_Delete(a);
	/* both in one batch */
	struct telemetry_point pts[2] = { { "temp", 0, 60 }, { "rpm", 0, 10 } };
	rules_on_points(f->r, "p", "pump", pts, 2, 3);
	assert_int_equal(count(f, "p", "active"), 0);
	/* unrelated metrics do not evaluate */
	point(f, "p", "pump", "voltage", 1, 0, 4);
	assert_int_equal(count(f, "p", NULL), 1);
	/* duration */
	struct fix *g = fix_open(0);
	create(g, "{\"name\":\"e\",\"device\":\"q\",\"kind\":\"expression\",\"expr\":\"max(a, b) - min(a, b) > 10\","
		  "\"for_s\":5}");
	struct telemetry_point q[2] = { { "a", 0, 1 }, { "b", 0, 20 } };
	rules_on_points(g->r, "q", NULL, q, 2, 0);
	rules_tick(g->r, 4 * S);
	assert_int_equal(count(g, "q", NULL), 0);
	rules_tick(g->r, 5 * S);
	assert_int_equal(count(g, "q", "active"), 1);
	fix_close(g);
	fix_close(f);
}

static void test_ack_clear(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	create(f, "{\"name\":\"hot\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":50}");
	point(f, "d", NULL, "t", 60, 0, 1 * S);
	cJSON *a = newest(f, "d");
	char id[32];
	snprintf(id, sizeof id, "%d", (int)num(a, "id"));
	cJSON_Delete(a);
	struct mote_reply rep = { 0 };
	alerts_ack(f->r, id, "alice", 2 * S, &rep);
	assert_int_equal(rep.status, 200);
	cJSON *j = cJSON_Parse(rep.body);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "acknowledged")));
	assert_string_equal(str(j, "ack_by"), "alice");
	assert_true(num(j, "ack_ms") == 2 * S);
	assert_string_equal(str(j, "state"), "active");
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	cJSON *m = cJSON_Parse(f->cap.payload[f->cap.n - 1]);
	assert_string_equal(str(m, "event"), "acknowledged");
	cJSON_Delete(m);
	/* a second ack keeps the first who and when */
	int before = f->cap.n;
	alerts_ack(f->r, id, "bob", 3 * S, &rep);
	assert_int_equal(rep.status, 200);
	j = cJSON_Parse(rep.body);
	assert_string_equal(str(j, "ack_by"), "alice");
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	assert_int_equal(f->cap.n, before);
	/* filters */
	struct alerts_filter flt = { NULL, NULL, NULL, 1, 0 };
	alerts_list(f->r, &flt, &rep);
	assert_non_null(strstr(rep.body, "\"ack_by\":\"alice\""));
	mote_reply_clear(&rep);
	flt.acknowledged = 0;
	alerts_list(f->r, &flt, &rep);
	assert_string_equal(rep.body, "{\"alerts\":[]}");
	mote_reply_clear(&rep);
	flt = (struct alerts_filter){ NULL, NULL, "critical", -1, 0 };
	alerts_list(f->r, &flt, &rep);
	assert_string_equal(rep.body, "{\"alerts\":[]}");
	mote_reply_clear(&rep);
	flt = (struct alerts_filter){ NULL, "bogus", NULL, -1, 0 };
	alerts_list(f->r, &flt, &rep);
	assert_int_equal(rep.status, 400);
	mote_reply_clear(&rep);
	flt = (struct alerts_filter){ NULL, NULL, "huge", -1, 0 };
	alerts_list(f->r, &flt, &rep);
	assert_int_equal(rep.status, 400);
	mote_reply_clear(&rep);
	/* a person clears it while the condition still holds */
	alerts_clear(f->r, id, "bob", 4 * S, &rep);
	assert_int_equal(rep.status, 200);
	j = cJSON_Parse(rep.body);
	assert_string_equal(str(j, "state"), "cleared");
	assert_string_equal(str(j, "cleared_by"), "bob");
	assert_true(num(j, "cleared_ms") == 4 * S);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "acknowledged")));
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	/* clearing again: unchanged, not an error */
	alerts_clear(f->r, id, "carol", 5 * S, &rep);
	assert_int_equal(rep.status, 200);
	assert_non_null(strstr(rep.body, "\"cleared_by\":\"bob\""));
	mote_reply_clear(&rep);
	/* the same episode does not reopen it... */
	point(f, "d", NULL, "t", 70, 0, 6 * S);
	assert_int_equal(count(f, "d", "active"), 0);
	/* ...but after recovery a new breach does */
	point(f, "d", NULL, "t", 10, 0, 7 * S);
	point(f, "d", NULL, "t", 70, 0, 8 * S);
	assert_int_equal(count(f, "d", "active"), 1);
	assert_int_equal(count(f, "d", NULL), 2);
	/* unknown ids */
	alerts_ack(f->r, "999", "x", 0, &rep);
	assert_int_equal(rep.status, 404);
	assert_non_null(strstr(rep.body, "\"error\":\"not_found\""));
	mote_reply_clear(&rep);
	alerts_clear(f->r, "abc", "x", 0, &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	alerts_get(f->r, "-1", &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	alerts_get(f->r, id, &rep);
	j = cJSON_Parse(rep.body);
	cJSON *ev = cJSON_GetObjectItem(j, "events");
	assert_int_equal(cJSON_GetArraySize(ev), 3);
	assert_string_equal(str(cJSON_GetArrayItem(ev, 1), "event"), "acknowledged");
	assert_string_equal(str(cJSON_GetArrayItem(ev, 1), "who"), "alice");
	assert_string_equal(str(cJSON_GetArrayItem(ev, 2), "who"), "bob");
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	struct rules_stats stt;
	rules_get_stats(f->r, &stt);
	assert_int_equal(stt.rules, 1);
	assert_int_equal(stt.alerts_active, 1);
	assert_int_equal(stt.alerts_raised, 2);
	fix_close(f);
}

static void test_history_retention(void **state)
{
	(void)state;
	struct fix *f = fix_open(1);
	const int64_t day = 86400 * (int64_t)S;
	assert_int_equal(rules_raise(f->r, "d", "old", "minor", NULL, 0), MOTE_OK);
	assert_int_equal(rules_resolve(f->r, "d", "old", 1 * S), MOTE_OK);
	assert_int_equal(rules_raise(f->r, "d", "open", "minor", NULL, 0), MOTE_OK);
	rules_tick(f->r, day); /* younger than a day */
	assert_int_equal(count(f, "d", NULL), 2);
	rules_tick(f->r, day + 61 * S); /* retention runs once a minute */
	assert_int_equal(count(f, "d", "cleared"), 0);
	assert_int_equal(count(f, "d", "active"), 1); /* open alerts are never removed */
	int n = -1;
	sqlite3_stmt *st;
	sqlite3_prepare_v2(f->db, "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert"
				  " WHERE a.type='old'", -1, &st, NULL);
	sqlite3_step(st);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(n, 0);
	sqlite3_prepare_v2(f->db, "SELECT count(*) FROM alert_events", -1, &st, NULL);
	sqlite3_step(st);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(n, 1); /* the open alert's "raised" */
	fix_close(f);
}

static void test_raise_resolve_api(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	assert_int_equal(rules_raise(f->r, "d", "anomaly", "warning", "{\"score\":0.93}", 10), MOTE_OK);
	assert_int_equal(rules_raise(f->r, "d", "anomaly", "major", NULL, 20), MOTE_OK);
	cJSON *a = newest(f, "d");
	assert_true(num(a, "count") == 2);
	assert_string_equal(str(a, "severity"), "major");
	assert_true(num(cJSON_GetObjectItem(a, "details"), "score") == 0.93);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(a, "rule")));
	cJSON_Delete(a);
	assert_int_equal(rules_raise(f->r, "d", "anomaly", "fatal", NULL, 30), MOTE_EINVAL);
	assert_int_equal(rules_raise(f->r, "d", "anomaly", "minor", "[1]", 30), MOTE_EINVAL);
	assert_int_equal(rules_raise(f->r, "", "anomaly", "minor", NULL, 30), MOTE_EINVAL);
	assert_int_equal(rules_resolve(f->r, "d", "anomaly", 40), MOTE_OK);
	assert_int_equal(rules_resolve(f->r, "d", "anomaly", 50), MOTE_ENOTFOUND);
	a = newest(f, "d");
	assert_string_equal(str(a, "cleared_by"), "system");
	cJSON_Delete(a);
	/* deleting the device removes its alerts */
	rules_device_deleted(f->r, "d");
	assert_int_equal(count(f, "d", NULL), 0);
	fix_close(f);
}

struct bad_case {
	const char *json;
	const char *message;
};

static void test_validation(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	static const struct bad_case cases[] = {
		{ "not json", "not valid JSON" },
		{ "[1,2]", "a rule is a JSON object" },
		{ "{\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5}", "field 'name' is required" },
		{ "{\"name\":\"x\",\"kind\":\"nodata\",\"timeout_s\":5}", "exactly one of the fields 'device' and 'model'" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"model\":\"m\",\"kind\":\"nodata\",\"timeout_s\":5}", "exactly one" },
		{ "{\"name\":\"x\",\"device\":\"d\"}", "field 'kind' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"magic\"}", "field 'kind' must be threshold, rate, nodata or expression, not 'magic'" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\"=>\",\"value\":1}", "field 'op' must be one of" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":\"1\"}", "field 'value' must be a number" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\"}", "field 'value' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"op\":\">\",\"value\":1}", "field 'metric' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":1,\"for_s\":-1}", "field 'for_s' must be between 0 and" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\"==\",\"value\":1,\"hysteresis\":2}", "field 'hysteresis' needs op" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":1,\"hysteresis\":-2}", "field 'hysteresis' must be between" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":1,\"for\":3}", "unknown field 'for'" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":1,\"timeout_s\":3}", "field 'timeout_s' does not apply to kind 'threshold'" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"rate\",\"metric\":\"t\",\"op\":\">\",\"value\":1}", "field 'window_s' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"nodata\"}", "field 'timeout_s' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":0}", "field 'timeout_s' must be between 1 and" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"expression\"}", "field 'expr' is required" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"expression\",\"expr\":7}", "field 'expr' must be a string" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"expression\",\"expr\":\"temp > (1\"}", "field 'expr': position 9: expected ')'" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5,\"severity\":\"fatal\"}", "field 'severity' must be critical, major, minor or warning" },
		{ "{\"name\":\"x\",\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5,\"enabled\":1}", "field 'enabled' must be true or false" },
		{ "{\"name\":\"\",\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5}", "field 'name' must be 1 to 64 bytes" },
		{ "{\"name\":\"a\\u0001b\",\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5}", "field 'name' contains a control character" },
		{ "{\"name\":7,\"device\":\"d\",\"kind\":\"nodata\",\"timeout_s\":5}", "field 'name' must be a string" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mote_reply rep = { 0 };
		rules_create(f->r, cases[i].json, strlen(cases[i].json), &rep);
		if (rep.status != 400 || !strstr(rep.body, cases[i].message))
			fail_msg("case %zu %s: %d %s (want '%s')", i, cases[i].json, rep.status, rep.body,
				 cases[i].message);
		assert_non_null(strstr(rep.body, "\"error\":\"bad_request\""));
		mote_reply_clear(&rep);
	}
	/* too big */
	size_t n = 70000;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\0';
	struct mote_reply rep = { 0 };
	rules_create(f->r, big, n, &rep);
	assert_int_equal(rep.status, 413);
	mote_reply_clear(&rep);
	free(big);
	/* nothing was stored */
	rules_list(f->r, &rep);
	assert_string_equal(rep.body, "{\"rules\":[]}");
	mote_reply_clear(&rep);
	fix_close(f);
}

static void test_rules_crud_and_reopen(void **state)
{
	(void)state;
	struct fix *f = fix_open(0);
	int64_t a = create(f, "{\"name\":\"hot\",\"model\":\"pump\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":50}");
	int64_t b = create(f, "{\"name\":\"e\",\"device\":\"d\",\"kind\":\"expression\",\"expr\":\"a+b>1\",\"enabled\":false}");
	assert_true(b == a + 1);
	char ida[32], idb[32];
	snprintf(ida, sizeof ida, "%lld", (long long)a);
	snprintf(idb, sizeof idb, "%lld", (long long)b);
	struct mote_reply rep = { 0 };
	rules_get(f->r, ida, &rep);
	assert_int_equal(rep.status, 200);
	cJSON *j = cJSON_Parse(rep.body);
	assert_string_equal(str(j, "alert_type"), "hot");
	assert_string_equal(str(j, "severity"), "major");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
	assert_true(num(j, "for_s") == 0);
	cJSON_Delete(j);
	/* a GET body can be PUT back with a change */
	char *body = strdup(rep.body);
	mote_reply_clear(&rep);
	char *p = strstr(body, "\"value\":50");
	assert_non_null(p);
	memcpy(p, "\"value\":60", 10);
	rules_update(f->r, ida, body, strlen(body), &rep);
	assert_int_equal(rep.status, 200);
	assert_non_null(strstr(rep.body, "\"value\":60"));
	mote_reply_clear(&rep);
	free(body);
	rules_update(f->r, ida, "{}", 2, &rep);
	assert_int_equal(rep.status, 400);
	mote_reply_clear(&rep);
	rules_update(f->r, "77", "{}", 2, &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	rules_get(f->r, "x", &rep);
	assert_int_equal(rep.status, 404);
	assert_non_null(strstr(rep.body, "no rule 'x'"));
	mote_reply_clear(&rep);
	/* the disabled expression rule does not fire */
	struct telemetry_point pts[2] = { { "a", 0, 5 }, { "b", 0, 5 } };
	rules_on_points(f->r, "d", NULL, pts, 2, 1);
	assert_int_equal(count(f, "d", NULL), 0);
	point(f, "p", "pump", "t", 55, 0, 2);
	assert_int_equal(count(f, "p", NULL), 0); /* the updated threshold is 60 */
	point(f, "p", "pump", "t", 65, 0, 3);
	assert_int_equal(count(f, "p", "active"), 1);

	/* a reopen on the same database keeps the rules */
	rules_close(f->r);
	char err[256];
	assert_int_equal(rules_open(f->db, NULL, &f->sink, &f->r, err, sizeof err), MOTE_OK);
	rules_list(f->r, &rep);
	j = cJSON_Parse(rep.body);
	cJSON *arr = cJSON_GetObjectItem(j, "rules");
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	assert_true(num(cJSON_GetArrayItem(arr, 0), "value") == 60);
	assert_string_equal(str(cJSON_GetArrayItem(arr, 1), "expr"), "a+b>1");
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	/* deleting the rule clears the alert it held */
	rules_delete(f->r, ida, &rep);
	assert_int_equal(rep.status, 204);
	assert_null(rep.body);
	mote_reply_clear(&rep);
	rules_delete(f->r, ida, &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	fix_close(f);

	/* deleting a rule that holds an alert in the same run clears it */
	f = fix_open(0);
	a = create(f, "{\"name\":\"hot\",\"device\":\"d\",\"kind\":\"threshold\",\"metric\":\"t\",\"op\":\">\",\"value\":50}");
	point(f, "d", NULL, "t", 55, 0, 1);
	assert_int_equal(count(f, "d", "active"), 1);
	snprintf(ida, sizeof ida, "%lld", (long long)a);
	rules_delete(f->r, ida, &rep);
	mote_reply_clear(&rep);
	assert_int_equal(count(f, "d", "active"), 0);
	fix_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_duration_hysteresis),
		cmocka_unit_test(test_dedup_and_notifications),
		cmocka_unit_test(test_escalation_two_rules_one_type),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_nodata),
		cmocka_unit_test(test_expression),
		cmocka_unit_test(test_ack_clear),
		cmocka_unit_test(test_history_retention),
		cmocka_unit_test(test_raise_resolve_api),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_rules_crud_and_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
