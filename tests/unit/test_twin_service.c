/*
 * test_twin_service.c - the twin service over a real SQLite database and a
 * sink that records what it is given: the MQTT replies (topics, payloads,
 * QoS 1, never retained) for get and update, accepted and rejected with
 * each code, delta only when it changed, documents with previous and
 * current, the delta on reconnect, the "twin" events, the REST helpers,
 * persistence across close and reopen, the LRU cache, the token bucket
 * with a controlled clock, and a failing write (500) that changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "twin/twin.h"

#define MAXMSG 64

struct rec {
	char topic[256];
	char *payload;
	uint8_t qos;
	bool retain;
};

struct fx {
	sqlite3 *db;
	struct mote_sink sink;
	struct twin_service *ts;
	struct rec msgs[MAXMSG];
	int n;
	char events[MAXMSG][1024];
	char event_dev[MAXMSG][64];
	int nev;
};

static void on_publish(void *ctx, const char *topic, const void *payload, size_t len, uint8_t qos,
		       bool retain)
{
	struct fx *f = ctx;
	assert_true(f->n < MAXMSG);
	struct rec *r = &f->msgs[f->n++];
	snprintf(r->topic, sizeof r->topic, "%s", topic);
	r->payload = malloc(len + 1);
	memcpy(r->payload, payload, len);
	r->payload[len] = '\0';
	r->qos = qos;
	r->retain = retain;
}

static void on_event(void *ctx, const char *type, const char *dev, const char *json)
{
	struct fx *f = ctx;
	assert_string_equal(type, "twin");
	assert_true(f->nev < MAXMSG);
	snprintf(f->events[f->nev], sizeof f->events[0], "%s", json);
	snprintf(f->event_dev[f->nev++], sizeof f->event_dev[0], "%s", dev ? dev : "");
}

static void clear(struct fx *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->msgs[i].payload);
	f->n = 0;
	f->nev = 0;
}

static void open_ts(struct fx *f, const struct twin_limits *l)
{
	char err[256];
	assert_int_equal(twin_service_open(f->db, l, &f->sink, &f->ts, err, sizeof err), MOTE_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f || sqlite3_open(":memory:", &f->db) != SQLITE_OK)
		return -1;
	f->sink.ctx = f;
	f->sink.publish = on_publish;
	f->sink.event = on_event;
	open_ts(f, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	clear(f);
	twin_service_close(f->ts);
	sqlite3_close(f->db);
	free(f);
	return 0;
}

static void mqtt(struct fx *f, const char *id, bool exists, const char *op, bool device,
		 const char *payload, int64_t now)
{
	twin_service_mqtt(f->ts, id, exists, op, device ? TWIN_SOURCE_DEVICE : TWIN_SOURCE_OPERATOR,
			  (const uint8_t *)payload, strlen(payload), now);
}

/* The one message on topic (fails when there is none or more than one). */
static cJSON *only(struct fx *f, const char *topic)
{
	cJSON *found = NULL;
	int count = 0;
	for (int i = 0; i < f->n; i++) {
		if (strcmp(f->msgs[i].topic, topic) == 0) {
			count++;
			assert_int_equal(f->msgs[i].qos, 1);
			assert_false(f->msgs[i].retain);
			cJSON_Delete(found);
			found = cJSON_Parse(f->msgs[i].payload);
			assert_non_null(found);
		}
	}
	if (count != 1) {
		print_error("%d messages on %s; all:\n", count, topic);
		for (int i = 0; i < f->n; i++)
			print_error("  %s %s\n", f->msgs[i].topic, f->msgs[i].payload);
		fail();
	}
	return found;
}

static bool has(struct fx *f, const char *topic)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->msgs[i].topic, topic) == 0)
			return true;
	return false;
}

static void assert_json(const cJSON *got, const char *want)
{
	cJSON *w = cJSON_Parse(want);
	assert_non_null(w);
	if (!cJSON_Compare(got, w, 1)) {
		char *g = cJSON_PrintUnformatted(got);
		print_error("got  %s\nwant %s\n", g ? g : "(null)", want);
		cJSON_free(g);
		cJSON_Delete(w);
		fail();
	}
	cJSON_Delete(w);
}

static const cJSON *at(const cJSON *j, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
	return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static double num(const cJSON *j, const char *k)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, k);
	assert_true(cJSON_IsNumber(x));
	return x->valuedouble;
}

/* The code of the one rejected reply on $twin/id/op/rejected. */
static int rejected(struct fx *f, const char *id, const char *op, const char *token)
{
	char topic[256];
	snprintf(topic, sizeof topic, "$twin/%s/%s/rejected", id, op);
	cJSON *j = only(f, topic);
	int code = (int)num(j, "code");
	assert_true(cJSON_IsString(at(j, "message", NULL)));
	if (token)
		assert_string_equal(at(j, "clientToken", NULL)->valuestring, token);
	else
		assert_null(at(j, "clientToken", NULL));
	cJSON_Delete(j);
	return code;
}

static void test_get(void **state)
{
	struct fx *f = *state;
	mqtt(f, "ghost", false, "get", true, "{\"clientToken\":\"g1\"}", 1000);
	assert_int_equal(rejected(f, "ghost", "get", "g1"), 404);
	clear(f);

	/* a registered device without a twin yet gets an empty one */
	mqtt(f, "d1", true, "get", true, "", 1000);
	cJSON *j = only(f, "$twin/d1/get/accepted");
	assert_json(j, "{\"state\":{\"desired\":{},\"reported\":{},\"delta\":{}},"
		       "\"metadata\":{\"desired\":{},\"reported\":{}},\"version\":0,"
		       "\"timestamp\":1000}");
	cJSON_Delete(j);
	assert_int_equal(f->n, 1);
	clear(f);

	mqtt(f, "d1", true, "get", true, "{\"clientToken\":\"tok\"}", 1001);
	j = only(f, "$twin/d1/get/accepted");
	assert_string_equal(at(j, "clientToken", NULL)->valuestring, "tok");
	cJSON_Delete(j);
	clear(f);

	mqtt(f, "d1", true, "get", true, "{\"clientToken\":\"tok\",\"x\":1}", 1002);
	assert_int_equal(rejected(f, "d1", "get", "tok"), 400);
	clear(f);

	/* replies and unknown ops are not requests */
	mqtt(f, "d1", true, "get/accepted", true, "{}", 1003);
	mqtt(f, "d1", true, "update/delta", true, "{}", 1003);
	mqtt(f, "d1", true, "delete", true, "{}", 1003);
	assert_int_equal(f->n, 0);
	struct twin_stats s;
	twin_service_stats(f->ts, &s);
	assert_int_equal(s.gets, 4);
}

static void test_update_flow(void **state)
{
	struct fx *f = *state;
	assert_int_equal(twin_service_create(f->ts, "d1", 500), MOTE_OK);
	assert_int_equal(twin_service_create(f->ts, "d1", 600), MOTE_EEXIST);

	/* the operator sets desired: accepted, delta, documents, event */
	mqtt(f, "d1", true, "update", false,
	     "{\"state\":{\"desired\":{\"temp\":21,\"mode\":{\"fan\":\"auto\"}}},\"clientToken\":\"c1\"}",
	     1000);
	assert_int_equal(f->n, 3);
	cJSON *j = only(f, "$twin/d1/update/accepted");
	assert_json(j, "{\"state\":{\"desired\":{\"temp\":21,\"mode\":{\"fan\":\"auto\"}}},"
		       "\"metadata\":{\"desired\":{\"temp\":{\"timestamp\":1000},"
		       "\"mode\":{\"fan\":{\"timestamp\":1000}}}},"
		       "\"version\":1,\"timestamp\":1000,\"clientToken\":\"c1\"}");
	cJSON_Delete(j);
	j = only(f, "$twin/d1/update/delta");
	assert_json(j, "{\"state\":{\"temp\":21,\"mode\":{\"fan\":\"auto\"}},"
		       "\"metadata\":{\"temp\":{\"timestamp\":1000},"
		       "\"mode\":{\"fan\":{\"timestamp\":1000}}},\"version\":1,\"timestamp\":1000}");
	cJSON_Delete(j);
	j = only(f, "$twin/d1/update/documents");
	assert_json(j, "{\"previous\":{\"state\":{\"desired\":{},\"reported\":{}},"
		       "\"metadata\":{\"desired\":{},\"reported\":{}},\"version\":0},"
		       "\"current\":{\"state\":{\"desired\":{\"temp\":21,\"mode\":{\"fan\":\"auto\"}},"
		       "\"reported\":{}},\"metadata\":{\"desired\":{\"temp\":{\"timestamp\":1000},"
		       "\"mode\":{\"fan\":{\"timestamp\":1000}}},\"reported\":{}},\"version\":1},"
		       "\"timestamp\":1000,\"clientToken\":\"c1\"}");
	cJSON_Delete(j);
	assert_int_equal(f->nev, 1);
	assert_string_equal(f->event_dev[0], "d1");
	j = cJSON_Parse(f->events[0]);
	assert_json(j, "{\"device\":\"d1\",\"version\":1,\"state\":{\"desired\":{\"temp\":21,"
		       "\"mode\":{\"fan\":\"auto\"}}},\"source\":\"operator\",\"timestamp\":1000}");
	cJSON_Delete(j);
	clear(f);

	/* the device reports part of it: the delta shrinks, so it is sent */
	mqtt(f, "d1", true, "update", true, "{\"state\":{\"reported\":{\"temp\":21}}}", 2000);
	j = only(f, "$twin/d1/update/delta");
	assert_json(at(j, "state", NULL), "{\"mode\":{\"fan\":\"auto\"}}");
	assert_int_equal(num(j, "version"), 2);
	cJSON_Delete(j);
	j = only(f, "$twin/d1/update/accepted");
	assert_null(at(j, "clientToken", NULL));
	cJSON_Delete(j);
	clear(f);

	/* a change that leaves the delta as it was: no delta message */
	mqtt(f, "d1", true, "update", true, "{\"state\":{\"reported\":{\"rssi\":-70}}}", 3000);
	assert_true(has(f, "$twin/d1/update/accepted"));
	assert_true(has(f, "$twin/d1/update/documents"));
	assert_false(has(f, "$twin/d1/update/delta"));
	clear(f);

	/* caught up: the delta is empty, none is sent */
	mqtt(f, "d1", true, "update", true, "{\"state\":{\"reported\":{\"mode\":{\"fan\":\"auto\"}}}}",
	     4000);
	assert_false(has(f, "$twin/d1/update/delta"));
	assert_int_equal(f->n, 2);
	clear(f);

	/* the device may not write desired */
	mqtt(f, "d1", true, "update", true,
	     "{\"state\":{\"desired\":{\"temp\":30}},\"clientToken\":\"evil\"}", 5000);
	assert_int_equal(rejected(f, "d1", "update", "evil"), 403);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->nev, 0);
	clear(f);

	/* unknown device */
	mqtt(f, "nobody", false, "update", false, "{\"state\":{\"desired\":{\"a\":1}}}", 5000);
	assert_int_equal(rejected(f, "nobody", "update", NULL), 404);
	clear(f);

	struct twin_stats s;
	twin_service_stats(f->ts, &s);
	assert_int_equal(s.updates_accepted, 4);
	assert_int_equal(s.updates_rejected, 2);
}

static void test_versions_and_errors(void **state)
{
	struct fx *f = *state;
	mqtt(f, "d2", true, "update", true, "{\"state\":{\"reported\":{\"a\":1}},\"version\":0}", 10);
	assert_true(has(f, "$twin/d2/update/accepted"));
	clear(f);
	/* stale version: 409 and nothing changes */
	mqtt(f, "d2", true, "update", true,
	     "{\"state\":{\"reported\":{\"a\":2}},\"version\":0,\"clientToken\":\"v\"}", 20);
	assert_int_equal(rejected(f, "d2", "update", "v"), 409);
	clear(f);
	mqtt(f, "d2", true, "update", true, "{\"state\":{\"reported\":{\"a\":3}},\"version\":1}", 30);
	cJSON *j = only(f, "$twin/d2/update/accepted");
	assert_int_equal(num(j, "version"), 2);
	cJSON_Delete(j);
	clear(f);

	/* malformed, too deep, too big, bad token: rejected with the reason */
	mqtt(f, "d2", true, "update", true, "{\"state\":", 40);
	assert_int_equal(rejected(f, "d2", "update", NULL), 400);
	clear(f);
	mqtt(f, "d2", true, "update", true,
	     "{\"clientToken\":\"deep\",\"state\":{\"reported\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":"
	     "{\"f\":{\"g\":1}}}}}}}}}",
	     40);
	assert_int_equal(rejected(f, "d2", "update", "deep"), 400);
	clear(f);
	char big[9000];
	memset(big, 0, sizeof big);
	strcpy(big, "{\"clientToken\":\"big\",\"state\":{\"reported\":{\"blob\":\"");
	memset(big + strlen(big), 'x', 8200);
	strcat(big, "\"}}}");
	mqtt(f, "d2", true, "update", true, big, 40);
	assert_int_equal(rejected(f, "d2", "update", "big"), 413);
	clear(f);
	mqtt(f, "d2", true, "update", true, "{\"state\":{\"reported\":{}},\"version\":\"2\"}", 40);
	assert_int_equal(rejected(f, "d2", "update", NULL), 400);
	clear(f);

	/* none of that changed the twin */
	struct mote_reply r = { 0 };
	twin_service_get(f->ts, "d2", &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 2);
	assert_json(at(j, "state", "reported"), "{\"a\":3}");
	cJSON_Delete(j);
	mote_reply_clear(&r);
}

static void test_on_connect(void **state)
{
	struct fx *f = *state;
	twin_service_on_connect(f->ts, "nobody");
	assert_int_equal(f->n, 0);
	mqtt(f, "d3", true, "update", false, "{\"state\":{\"desired\":{\"led\":\"on\"}}}", 100);
	clear(f);
	twin_service_on_connect(f->ts, "d3");
	cJSON *j = only(f, "$twin/d3/update/delta");
	assert_json(j, "{\"state\":{\"led\":\"on\"},\"metadata\":{\"led\":{\"timestamp\":100}},"
		       "\"version\":1,\"timestamp\":100}");
	cJSON_Delete(j);
	clear(f);
	mqtt(f, "d3", true, "update", true, "{\"state\":{\"reported\":{\"led\":\"on\"}}}", 200);
	clear(f);
	twin_service_on_connect(f->ts, "d3");
	assert_int_equal(f->n, 0);
}

static void test_rest(void **state)
{
	struct fx *f = *state;
	struct mote_reply r = { 0 };
	const char *body;
	cJSON *j;
	/* a registered device (the caller checks) without a stored twin: the
	 * empty one is shown, and not stored by a read */
	twin_service_get(f->ts, "p0", &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_json(j, "{\"state\":{\"desired\":{},\"reported\":{},\"delta\":{}},"
		       "\"metadata\":{\"desired\":{},\"reported\":{}},\"version\":0,\"timestamp\":0}");
	cJSON_Delete(j);
	mote_reply_clear(&r);
	assert_int_equal(twin_service_delete(f->ts, "p0"), MOTE_ENOTFOUND);
	/* a patch creates it */
	body = "{\"desired\":{\"a\":1},\"version\":0}";
	twin_service_patch(f->ts, "p0", body, strlen(body), 10, &r);
	assert_int_equal(r.status, 200);
	mote_reply_clear(&r);
	assert_true(has(f, "$twin/p0/update/delta"));
	assert_int_equal(twin_service_create(f->ts, "p0", 5), MOTE_EEXIST);
	clear(f);

	assert_int_equal(twin_service_create(f->ts, "p1", 5), MOTE_OK);
	twin_service_get(f->ts, "p1", &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 0);
	assert_int_equal(num(j, "timestamp"), 5);
	cJSON_Delete(j);
	mote_reply_clear(&r);

	body = "{\"desired\":{\"a\":1,\"b\":[1,2]},\"version\":0}";
	twin_service_patch(f->ts, "p1", body, strlen(body), 10, &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_json(j, "{\"state\":{\"desired\":{\"a\":1,\"b\":[1,2]},\"reported\":{},"
		       "\"delta\":{\"a\":1,\"b\":[1,2]}},\"metadata\":{\"desired\":{"
		       "\"a\":{\"timestamp\":10},\"b\":{\"timestamp\":10}},\"reported\":{}},"
		       "\"version\":1,\"timestamp\":10}");
	cJSON_Delete(j);
	mote_reply_clear(&r);
	/* a patch is published like an MQTT update */
	j = only(f, "$twin/p1/update/delta");
	cJSON_Delete(j);
	j = only(f, "$twin/p1/update/documents");
	cJSON_Delete(j);
	j = only(f, "$twin/p1/update/accepted");
	assert_json(at(j, "state", NULL), "{\"desired\":{\"a\":1,\"b\":[1,2]}}");
	cJSON_Delete(j);
	clear(f);

	static const struct {
		const char *body;
		int status;
	} bad[] = {
		{ "{\"desired\":{\"a\":2},\"version\":0}", 409 },
		{ "{\"desired\":", 400 },
		{ "{\"reported\":{\"a\":1}}", 400 },
		{ "{\"desired\":5}", 400 },
		{ "{\"desired\":{\"a\":1},\"tags\":{}}", 400 },
		{ "", 400 },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		twin_service_patch(f->ts, "p1", bad[i].body, strlen(bad[i].body), 20, &r);
		assert_int_equal(r.status, bad[i].status);
		j = cJSON_Parse(r.body);
		assert_int_equal(num(j, "status"), bad[i].status);
		cJSON_Delete(j);
		mote_reply_clear(&r);
	}
	char big[20000];
	strcpy(big, "{\"desired\":{\"blob\":\"");
	memset(big + strlen(big), 'y', 9000);
	strcpy(big + 20 + 9000, "\"}}");
	twin_service_patch(f->ts, "p1", big, strlen(big), 20, &r);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(r.body, "payload_too_large"));
	mote_reply_clear(&r);
	assert_int_equal(f->n, 0);

	/* null deletes through REST too */
	body = "{\"desired\":{\"a\":null}}";
	twin_service_patch(f->ts, "p1", body, strlen(body), 30, &r);
	assert_int_equal(r.status, 200);
	j = cJSON_Parse(r.body);
	assert_json(at(j, "state", "desired"), "{\"b\":[1,2]}");
	assert_int_equal(num(j, "version"), 2);
	cJSON_Delete(j);
	mote_reply_clear(&r);

	assert_int_equal(twin_service_delete(f->ts, "p1"), MOTE_OK);
	assert_int_equal(twin_service_delete(f->ts, "p1"), MOTE_ENOTFOUND);
	twin_service_get(f->ts, "p1", &r);
	j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 0);
	cJSON_Delete(j);
	mote_reply_clear(&r);
	/* registered again: a fresh twin */
	assert_int_equal(twin_service_create(f->ts, "p1", 40), MOTE_OK);
	twin_service_get(f->ts, "p1", &r);
	j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 0);
	cJSON_Delete(j);
	mote_reply_clear(&r);
}

static void test_persistence(void **state)
{
	struct fx *f = *state;
	char path[] = "/tmp/mote-twin-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	/* same handle, new service: read back from the table */
	mqtt(f, "d4", true, "update", false,
	     "{\"state\":{\"desired\":{\"x\":{\"y\":[1,\"two\"]}},\"reported\":{\"z\":true}}}", 77);
	twin_service_close(f->ts);
	open_ts(f, NULL);
	struct mote_reply r = { 0 };
	twin_service_get(f->ts, "d4", &r);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	assert_json(j, "{\"state\":{\"desired\":{\"x\":{\"y\":[1,\"two\"]}},\"reported\":{\"z\":true},"
		       "\"delta\":{\"x\":{\"y\":[1,\"two\"]}}},\"metadata\":{\"desired\":{\"x\":{\"y\":"
		       "{\"timestamp\":77}}},\"reported\":{\"z\":{\"timestamp\":77}}},"
		       "\"version\":1,\"timestamp\":77}");
	cJSON_Delete(j);
	mote_reply_clear(&r);

	/* a database file, closed and opened again */
	struct twin_service *ts2;
	sqlite3 *db;
	char err[256];
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(twin_service_open(db, NULL, NULL, &ts2, err, sizeof err), MOTE_OK);
	twin_service_mqtt(ts2, "d5", true, "update", TWIN_SOURCE_DEVICE,
			  (const uint8_t *)"{\"state\":{\"reported\":{\"v\":1}}}", 30, 1);
	twin_service_mqtt(ts2, "d5", true, "update", TWIN_SOURCE_DEVICE,
			  (const uint8_t *)"{\"state\":{\"reported\":{\"v\":2}}}", 30, 2);
	twin_service_close(ts2);
	sqlite3_close(db);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(twin_service_open(db, NULL, NULL, &ts2, err, sizeof err), MOTE_OK);
	twin_service_get(ts2, "d5", &r);
	j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 2);
	assert_json(at(j, "state", "reported"), "{\"v\":2}");
	cJSON_Delete(j);
	mote_reply_clear(&r);
	twin_service_close(ts2);
	sqlite3_close(db);
	unlink(path);
}

static void test_cache_eviction(void **state)
{
	struct fx *f = *state;
	struct twin_limits l;
	twin_limits_defaults(&l);
	l.cache_docs = 2;
	twin_service_close(f->ts);
	open_ts(f, &l);
	char id[16], body[64];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 5; i++) {
			snprintf(id, sizeof id, "e%d", i);
			snprintf(body, sizeof body, "{\"state\":{\"reported\":{\"n\":%d}},\"version\":%d}",
				 round * 10 + i, round);
			mqtt(f, id, true, "update", true, body, 1000 * (round + 1));
			snprintf(body, sizeof body, "$twin/%s/update/accepted", id);
			assert_true(has(f, body));
			clear(f);
		}
	}
	struct mote_reply r = { 0 };
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "e%d", i);
		twin_service_get(f->ts, id, &r);
		cJSON *j = cJSON_Parse(r.body);
		assert_int_equal(num(j, "version"), 3);
		assert_int_equal(num(at(j, "state", "reported"), "n"), 20 + i);
		cJSON_Delete(j);
		mote_reply_clear(&r);
	}
}

static void test_rate_limit(void **state)
{
	struct fx *f = *state;
	struct twin_limits l;
	twin_limits_defaults(&l);
	l.updates_per_s = 2;
	l.updates_burst = 3;
	twin_service_close(f->ts);
	open_ts(f, &l);
	const char *u = "{\"state\":{\"reported\":{\"a\":1}},\"clientToken\":\"r\"}";
	for (int i = 0; i < 3; i++)
		mqtt(f, "d6", true, "update", true, u, 10000);
	assert_int_equal(f->n, 6); /* accepted + documents, three times */
	clear(f);
	mqtt(f, "d6", true, "update", true, u, 10000);
	assert_int_equal(rejected(f, "d6", "update", "r"), 429);
	clear(f);
	/* gets count too */
	mqtt(f, "d6", true, "get", true, "", 10100);
	assert_int_equal(rejected(f, "d6", "get", NULL), 429);
	clear(f);
	/* half a second later: one token back (2/s) */
	mqtt(f, "d6", true, "update", true, u, 10500);
	assert_true(has(f, "$twin/d6/update/accepted"));
	clear(f);
	mqtt(f, "d6", true, "update", true, u, 10500);
	assert_int_equal(rejected(f, "d6", "update", "r"), 429);
	clear(f);
	/* other devices have their own bucket */
	mqtt(f, "d7", true, "update", true, u, 10500);
	assert_true(has(f, "$twin/d7/update/accepted"));
	clear(f);
	/* a clock that steps back neither refills nor breaks the bucket */
	mqtt(f, "d6", true, "update", true, u, 5000);
	assert_int_equal(rejected(f, "d6", "update", "r"), 429);
	clear(f);
	/* long idle: back to the burst, not beyond */
	for (int i = 0; i < 4; i++)
		mqtt(f, "d6", true, "update", true, u, 100000);
	assert_int_equal(rejected(f, "d6", "update", "r"), 429);
	struct mote_reply r = { 0 };
	const char *body = "{\"desired\":{\"a\":1}}";
	twin_service_patch(f->ts, "d6", body, strlen(body), 100000, &r);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.body, "too_many_requests"));
	mote_reply_clear(&r);
	clear(f);

	/* malformed requests spend the budget too: a flood of them is
	 * answered with 429 before it is parsed into 400s */
	mqtt(f, "d6", true, "update", true, "{", 200000);
	mqtt(f, "d6", true, "update", true, "{", 200000);
	mqtt(f, "d6", true, "update", true, "{", 200000);
	assert_int_equal(f->n, 3);
	for (int i = 0; i < 3; i++)
		assert_non_null(strstr(f->msgs[i].payload, "\"code\":400"));
	clear(f);
	mqtt(f, "d6", true, "update", true, "{", 200000);
	assert_int_equal(rejected(f, "d6", "update", NULL), 429);
}

static void test_storage_failure(void **state)
{
	struct fx *f = *state;
	mqtt(f, "d8", true, "update", true, "{\"state\":{\"reported\":{\"a\":1}}}", 10);
	clear(f);
	assert_int_equal(sqlite3_exec(f->db,
				      "CREATE TRIGGER twin_fail BEFORE INSERT ON twin_documents "
				      "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	mqtt(f, "d8", true, "update", true,
	     "{\"state\":{\"reported\":{\"a\":2}},\"clientToken\":\"f\"}", 20);
	assert_int_equal(rejected(f, "d8", "update", "f"), 500);
	assert_int_equal(f->n, 1);
	assert_int_equal(f->nev, 0);
	clear(f);
	struct mote_reply r = { 0 };
	const char *body = "{\"desired\":{\"a\":1}}";
	twin_service_patch(f->ts, "d8", body, strlen(body), 30, &r);
	assert_int_equal(r.status, 500);
	mote_reply_clear(&r);
	assert_int_equal(twin_service_create(f->ts, "d9", 30), MOTE_EIO);

	/* memory still holds what the disk holds */
	twin_service_get(f->ts, "d8", &r);
	cJSON *j = cJSON_Parse(r.body);
	assert_int_equal(num(j, "version"), 1);
	assert_json(at(j, "state", "reported"), "{\"a\":1}");
	cJSON_Delete(j);
	mote_reply_clear(&r);
	assert_int_equal(sqlite3_exec(f->db, "DROP TRIGGER twin_fail", NULL, NULL, NULL), SQLITE_OK);
	mqtt(f, "d8", true, "update", true, "{\"state\":{\"reported\":{\"a\":2}},\"version\":1}", 40);
	assert_true(has(f, "$twin/d8/update/accepted"));

	/* a table of that name that is not ours: open fails with a sentence */
	sqlite3 *ro;
	struct twin_service *ts2 = NULL;
	char err[256] = "";
	assert_int_equal(sqlite3_open(":memory:", &ro), SQLITE_OK);
	assert_int_equal(sqlite3_exec(ro, "CREATE TABLE twin_documents (x)", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(twin_service_open(ro, NULL, NULL, &ts2, err, sizeof err), MOTE_EIO);
	assert_null(ts2);
	assert_non_null(strstr(err, "twins:"));
	sqlite3_close(ro);
}

static bool nobody(void *ctx)
{
	(void)ctx;
	return false;
}

/* With nobody listening on the event stream, no event is built or sent;
 * the MQTT replies are. */
static void test_no_listener(void **state)
{
	struct fx *f = *state;
	f->sink.listening = nobody;
	mqtt(f, "d10", true, "update", true, "{\"state\":{\"reported\":{\"a\":1}}}", 10);
	assert_true(has(f, "$twin/d10/update/accepted"));
	assert_int_equal(f->nev, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_listener, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
