/*
 * test_twin_oom.c - the twin service when memory runs out: every
 * allocation of an update (the service's own and cJSON's, through its
 * hooks) is made to fail in turn, once and from there on. Each time the
 * request is answered with 500 or not at all, never half applied: the
 * document in memory is the one in SQLite (a fresh service reading the
 * table sees the same), its version is the old one or the old one + 1, and
 * nothing leaks (the sanitizer build checks that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oom_inject.h"
#include "twin/doc.c"
#include "twin/service.c"
#undef malloc
#undef calloc
#undef realloc

static int published;
static char last_topic[128];
static char last_payload[4096];

static void on_publish(void *ctx, const char *topic, const void *payload, size_t len,
		       uint8_t qos, bool retain)
{
	(void)ctx;
	(void)qos;
	(void)retain;
	published++;
	snprintf(last_topic, sizeof last_topic, "%s", topic);
	snprintf(last_payload, sizeof last_payload, "%.*s", (int)len, (const char *)payload);
}

static const struct mote_sink sink = { .publish = on_publish };

/* The document of id as service ts shows it, parsed (caller deletes). */
static cJSON *doc_of(struct twin_service *ts, const char *id)
{
	struct mote_reply r = { 0 };
	twin_service_get(ts, id, &r);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	mote_reply_clear(&r);
	assert_non_null(j);
	return j;
}

static void check_same_as_disk(sqlite3 *db, struct twin_service *ts, const char *id)
{
	struct twin_service *fresh;
	char err[128];
	assert_int_equal(twin_service_open(db, NULL, NULL, &fresh, err, sizeof err), MOTE_OK);
	cJSON *a = doc_of(ts, id), *b = doc_of(fresh, id);
	assert_true(cJSON_Compare(a, b, 1));
	cJSON_Delete(a);
	cJSON_Delete(b);
	twin_service_close(fresh);
}

static void run(bool persist, bool patch)
{
	cJSON_Hooks hooks = { t_malloc, free };
	struct twin_limits lim;
	struct twin_service *ts;
	sqlite3 *db;
	char err[128];
	const char *mq = "{\"state\":{\"reported\":{\"a\":{\"b\":[1,2],\"c\":null},\"d\":\"x\"},"
			 "\"desired\":{\"a\":{\"b\":[3]}}},\"clientToken\":\"t\"}";
	const char *rest = "{\"desired\":{\"a\":{\"b\":[4],\"e\":null},\"f\":1.5},\"clientToken\":\"p\"}";

	twin_limits_defaults(&lim);
	lim.updates_per_s = 0;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(twin_service_open(db, &lim, &sink, &ts, err, sizeof err), MOTE_OK);
	twin_service_mqtt(ts, "d", true, "update", TWIN_SOURCE_OPERATOR, (const uint8_t *)mq,
			  strlen(mq), 1);
	cJSON_InitHooks(&hooks);

	bool done = false;
	for (long n = 0; !done; n++) {
		cJSON *before = doc_of(ts, "d");
		double v0 = cJSON_GetObjectItem(before, "version")->valuedouble;
		cJSON_Delete(before);
		published = 0;
		last_topic[0] = '\0';
		int status = 0;

		arm(n, persist);
		if (patch) {
			struct mote_reply r = { 0 };
			twin_service_patch(ts, "d", rest, strlen(rest), 100 + n, &r);
			status = r.status;
			mote_reply_clear(&r);
		} else {
			twin_service_mqtt(ts, "d", true, "update", TWIN_SOURCE_OPERATOR,
					  (const uint8_t *)mq, strlen(mq), 100 + n);
		}
		disarm();
		done = fault.calls <= n; /* allocation n was never reached */

		cJSON *after = doc_of(ts, "d");
		double v1 = cJSON_GetObjectItem(after, "version")->valuedouble;
		cJSON_Delete(after);
		assert_true(v1 == v0 || v1 == v0 + 1);
		if (patch) {
			/* 500 may also be a reply that could not be built after the
			 * write: the state is consistent either way */
			assert_true(status == 200 || status == 500);
			if (status == 200)
				assert_true(v1 == v0 + 1);
		} else if (v1 == v0 && published) {
			/* refused: the one reply is a 500 */
			assert_string_equal(last_topic, "$twin/d/update/rejected");
			assert_non_null(strstr(last_payload, "\"code\":500"));
		}
		if (done)
			assert_true(v1 == v0 + 1);
		check_same_as_disk(db, ts, "d");
	}
	cJSON_InitHooks(NULL);
	twin_service_close(ts);
	sqlite3_close(db);
}

static void test_update_once(void **state)
{
	(void)state;
	run(false, false);
}

static void test_update_persist(void **state)
{
	(void)state;
	run(true, false);
}

static void test_patch_once(void **state)
{
	(void)state;
	run(false, true);
}

static void test_patch_persist(void **state)
{
	(void)state;
	run(true, true);
}

/* A get on a cold cache: loading from the table, caching, the reply. */
static void test_cold_get(void **state)
{
	(void)state;
	cJSON_Hooks hooks = { t_malloc, free };
	struct twin_service *ts;
	sqlite3 *db;
	char err[128];
	const char *mq = "{\"state\":{\"reported\":{\"a\":{\"b\":[1,2]}},\"desired\":{\"a\":1}}}";

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(twin_service_open(db, NULL, &sink, &ts, err, sizeof err), MOTE_OK);
	twin_service_mqtt(ts, "g", true, "update", TWIN_SOURCE_OPERATOR, (const uint8_t *)mq,
			  strlen(mq), 1);
	twin_service_close(ts);
	cJSON_InitHooks(&hooks);
	bool done = false;
	for (long n = 0; !done; n++) {
		assert_int_equal(twin_service_open(db, NULL, &sink, &ts, err, sizeof err), MOTE_OK);
		published = 0;
		arm(n, n % 2);
		twin_service_mqtt(ts, "g", true, "get", TWIN_SOURCE_DEVICE, (const uint8_t *)"", 0, 2);
		twin_service_on_connect(ts, "g");
		disarm();
		done = fault.calls <= n;
		if (done)
			assert_int_equal(published, 2); /* get/accepted and the delta */
		cJSON *j = doc_of(ts, "g"); /* whatever failed, the twin is intact */
		assert_int_equal(cJSON_GetObjectItem(j, "version")->valuedouble, 1);
		cJSON_Delete(j);
		twin_service_close(ts);
	}
	cJSON_InitHooks(NULL);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_once),
		cmocka_unit_test(test_update_persist),
		cmocka_unit_test(test_patch_once),
		cmocka_unit_test(test_patch_persist),
		cmocka_unit_test(test_cold_get),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
