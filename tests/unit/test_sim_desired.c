/*
 * test_sim_desired.c - a simulated device's twin handling (src/sim/desired.c):
 * valid desired keys are applied from a delta, a full document and an
 * operator's update; bad values are refused one by one with the documented
 * sentence and the old value kept; malformed, hostile and oversized
 * documents change nothing; the reported document is valid JSON that says
 * what the device does.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "sim/desired.h"

static struct sim_settings fresh(enum sim_model m)
{
	struct sim_settings s;
	sim_settings_default(m, 1000, &s);
	return s;
}

static enum mote_err apply(enum sim_model m, enum sim_twin_msg k, const char *json,
			   struct sim_settings *s, struct sim_desired_result *r)
{
	return sim_desired_apply(m, k, json, strlen(json), s, r);
}

static void test_defaults(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_PUMP);
	assert_true(s.on);
	assert_true(s.setpoint == 4.0);
	assert_int_equal(s.interval_ms, 1000);
	assert_int_equal(s.fault, SIM_FAULT_NONE);
	s = fresh(SIM_MOTOR);
	assert_true(s.setpoint == 1500.0);
	s = fresh(SIM_HVAC);
	assert_true(s.setpoint == 21.0);
}

static void test_delta_applies_every_key(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_PUMP);
	struct sim_desired_result r;
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_DELTA,
			       "{\"state\":{\"on\":false,\"setpoint\":6.5,\"interval_ms\":250,"
			       "\"fault\":\"bearing\",\"color\":\"red\"},\"metadata\":{},"
			       "\"version\":3,\"timestamp\":1}",
			       &s, &r),
			 MOTE_OK);
	assert_string_equal(r.error, "");
	assert_int_equal(r.touched, SIM_SET_ON | SIM_SET_SETPOINT | SIM_SET_INTERVAL | SIM_SET_FAULT);
	assert_int_equal(r.changed, r.touched);
	assert_false(s.on);
	assert_true(s.setpoint == 6.5);
	assert_int_equal(s.interval_ms, 250);
	assert_int_equal(s.fault, SIM_FAULT_BEARING);
	/* the same again: touched, nothing changed */
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_DELTA, "{\"state\":{\"setpoint\":6.5}}", &s, &r),
			 MOTE_OK);
	assert_int_equal(r.touched, SIM_SET_SETPOINT);
	assert_int_equal(r.changed, 0);
	/* bounds are inclusive */
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_DELTA,
			       "{\"state\":{\"setpoint\":10,\"interval_ms\":3600000}}", &s, &r),
			 MOTE_OK);
	assert_string_equal(r.error, "");
	assert_int_equal(s.interval_ms, 3600000);
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_DELTA,
			       "{\"state\":{\"setpoint\":1,\"interval_ms\":100}}", &s, &r),
			 MOTE_OK);
	assert_string_equal(r.error, "");
	assert_int_equal(s.interval_ms, 100);
	/* 1e2 is an integer */
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_DELTA, "{\"state\":{\"interval_ms\":1e3}}", &s,
			       &r),
			 MOTE_OK);
	assert_int_equal(s.interval_ms, 1000);
}

static void test_bad_values_keep_the_old_ones(void **state)
{
	(void)state;
	struct {
		enum sim_model m;
		const char *json;
		const char *error;
	} cases[] = {
		{ SIM_PUMP, "{\"state\":{\"setpoint\":\"fast\"}}",
		  "setpoint: must be a number between 1 and 10" },
		{ SIM_PUMP, "{\"state\":{\"setpoint\":10.0001}}",
		  "setpoint: must be a number between 1 and 10" },
		{ SIM_MOTOR, "{\"state\":{\"setpoint\":-1}}",
		  "setpoint: must be a number between 300 and 3600" },
		{ SIM_HVAC, "{\"state\":{\"setpoint\":null}}",
		  "setpoint: must be a number between 16 and 30" },
		{ SIM_HVAC, "{\"state\":{\"setpoint\":1e999}}",
		  "setpoint: must be a number between 16 and 30" },
		{ SIM_HVAC, "{\"state\":{\"setpoint\":[21]}}",
		  "setpoint: must be a number between 16 and 30" },
		{ SIM_PUMP, "{\"state\":{\"on\":1}}", "on: must be true or false" },
		{ SIM_PUMP, "{\"state\":{\"on\":\"true\"}}", "on: must be true or false" },
		{ SIM_PUMP, "{\"state\":{\"interval_ms\":99}}",
		  "interval_ms: must be an integer between 100 and 3600000" },
		{ SIM_PUMP, "{\"state\":{\"interval_ms\":1000.5}}",
		  "interval_ms: must be an integer between 100 and 3600000" },
		{ SIM_PUMP, "{\"state\":{\"interval_ms\":3600001}}",
		  "interval_ms: must be an integer between 100 and 3600000" },
		{ SIM_PUMP, "{\"state\":{\"interval_ms\":{\"ms\":5}}}",
		  "interval_ms: must be an integer between 100 and 3600000" },
		{ SIM_PUMP, "{\"state\":{\"fault\":\"melted\"}}",
		  "fault: must be null or one of overheat, bearing, stuck, dropout" },
		{ SIM_PUMP, "{\"state\":{\"fault\":\"none\"}}",
		  "fault: must be null or one of overheat, bearing, stuck, dropout" },
		{ SIM_PUMP, "{\"state\":{\"fault\":\"Overheat\"}}",
		  "fault: must be null or one of overheat, bearing, stuck, dropout" },
		{ SIM_PUMP, "{\"state\":{\"fault\":true}}",
		  "fault: must be null or one of overheat, bearing, stuck, dropout" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sim_settings s = fresh(cases[i].m), before = s;
		struct sim_desired_result r;
		assert_int_equal(apply(cases[i].m, SIM_TWIN_DELTA, cases[i].json, &s, &r), MOTE_OK);
		if (strcmp(r.error, cases[i].error) != 0)
			fail_msg("%s: error '%s', want '%s'", cases[i].json, r.error, cases[i].error);
		assert_int_equal(r.changed, 0);
		assert_memory_equal(&s, &before, sizeof s);
	}
}

static void test_good_and_bad_together(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_MOTOR);
	struct sim_desired_result r;
	assert_int_equal(apply(SIM_MOTOR, SIM_TWIN_DELTA,
			       "{\"state\":{\"setpoint\":99999,\"on\":false,\"fault\":\"x\","
			       "\"interval_ms\":500}}",
			       &s, &r),
			 MOTE_OK);
	assert_string_equal(r.error, "setpoint: must be a number between 300 and 3600; fault: must "
				     "be null or one of overheat, bearing, stuck, dropout");
	assert_false(s.on);
	assert_int_equal(s.interval_ms, 500);
	assert_true(s.setpoint == 1500);
	assert_int_equal(r.changed, SIM_SET_ON | SIM_SET_INTERVAL);
	/* a key twice (JSON allows what cJSON keeps): the last valid one wins */
	assert_int_equal(apply(SIM_MOTOR, SIM_TWIN_DELTA,
			       "{\"state\":{\"setpoint\":1000,\"setpoint\":\"x\"}}", &s, &r),
			 MOTE_OK);
	assert_true(s.setpoint == 1000);
	assert_int_equal(r.changed, SIM_SET_SETPOINT);
}

/* get/accepted: the desired part counts, the delta and reported do not. */
static void test_get_uses_desired(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_HVAC);
	struct sim_desired_result r;
	assert_int_equal(apply(SIM_HVAC, SIM_TWIN_GET,
			       "{\"state\":{\"desired\":{\"setpoint\":23},\"reported\":{\"setpoint\":"
			       "25,\"on\":false},\"delta\":{\"setpoint\":23}},\"metadata\":{},"
			       "\"version\":9}",
			       &s, &r),
			 MOTE_OK);
	assert_true(s.setpoint == 23);
	assert_true(s.on);
	/* an empty twin */
	struct sim_settings before = s;
	assert_int_equal(apply(SIM_HVAC, SIM_TWIN_GET,
			       "{\"state\":{\"desired\":{},\"reported\":{},\"delta\":{}}}", &s, &r),
			 MOTE_OK);
	assert_int_equal(r.touched, 0);
	assert_memory_equal(&s, &before, sizeof s);
	/* no desired at all */
	assert_int_equal(apply(SIM_HVAC, SIM_TWIN_GET, "{\"state\":{}}", &s, &r), MOTE_OK);
	assert_int_equal(r.touched, 0);
}

/* update/accepted: an operator's null repairs; a device's own reported
 * update is nothing to act on. */
static void test_accepted_null_repairs(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_PUMP);
	struct sim_desired_result r;
	s.fault = SIM_FAULT_OVERHEAT;
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_ACCEPTED,
			       "{\"state\":{\"desired\":{\"fault\":null}},\"metadata\":{},"
			       "\"version\":4}",
			       &s, &r),
			 MOTE_OK);
	assert_int_equal(s.fault, SIM_FAULT_NONE);
	assert_int_equal(r.changed, SIM_SET_FAULT);
	struct sim_settings before = s;
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_ACCEPTED,
			       "{\"state\":{\"reported\":{\"setpoint\":9,\"on\":false}},"
			       "\"version\":5}",
			       &s, &r),
			 MOTE_OK);
	assert_int_equal(r.touched, 0);
	assert_memory_equal(&s, &before, sizeof s);
	/* "desired": null empties the desired state: nothing to apply */
	assert_int_equal(apply(SIM_PUMP, SIM_TWIN_ACCEPTED, "{\"state\":{\"desired\":null}}", &s,
			       &r),
			 MOTE_OK);
	assert_int_equal(r.touched, 0);
}

static void test_malformed_changes_nothing(void **state)
{
	(void)state;
	const char *bad[] = {
		"", "{", "null", "[]", "42", "\"state\"", "{\"state\":5}",
		"{\"state\":[{\"on\":false}]}", "{\"state\":{\"on\":false}", "{\"state\":{\"on\":fals}}",
		"{\"state\":{\"desired\":[]}}", "\xff\xfe{}", "{\"state\":{\"on\":false}}trailing",
		"{\"state\":{\"fault\":\"overheat\\u0000x\"}}", /* would read as "overheat" */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		for (int k = 0; k < 3; k++) {
			struct sim_settings s = fresh(SIM_PUMP), before = s;
			struct sim_desired_result r;
			enum mote_err e = apply(SIM_PUMP, (enum sim_twin_msg)k, bad[i], &s, &r);
			/* some shapes are a legal "nothing for me" for one kind */
			if (e == MOTE_OK)
				assert_int_equal(r.changed, 0);
			else
				assert_int_equal(e, MOTE_EMALFORMED);
			assert_memory_equal(&s, &before, sizeof s);
		}
	}
	/* NULL / zero length */
	struct sim_settings s = fresh(SIM_PUMP);
	struct sim_desired_result r;
	assert_int_equal(sim_desired_apply(SIM_PUMP, SIM_TWIN_DELTA, NULL, 0, &s, &r),
			 MOTE_EMALFORMED);
}

static void test_oversized_and_deep(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_PUMP), before = s;
	struct sim_desired_result r;
	size_t n = SIM_DESIRED_MAX + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	/* a valid document, only too long */
	memset(big, ' ', n);
	memcpy(big, "{\"state\":{\"on\":false}}", 22);
	big[n] = '\0';
	assert_int_equal(sim_desired_apply(SIM_PUMP, SIM_TWIN_DELTA, big, n, &s, &r), MOTE_ETOOBIG);
	assert_memory_equal(&s, &before, sizeof s);
	/* exactly at the limit it is read */
	assert_int_equal(sim_desired_apply(SIM_PUMP, SIM_TWIN_DELTA, big, n - 1, &s, &r), MOTE_OK);
	assert_false(s.on);
	/* deep nesting is refused by the parser, not by the stack */
	s = before;
	size_t depth = 20000, at = 0;
	char *deep = malloc(depth * 2 + 64);
	assert_non_null(deep);
	at += (size_t)sprintf(deep, "{\"state\":{\"x\":");
	for (size_t i = 0; i < depth; i++)
		deep[at++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[at++] = ']';
	at += (size_t)sprintf(deep + at, ",\"on\":false}}");
	enum mote_err e = sim_desired_apply(SIM_PUMP, SIM_TWIN_DELTA, deep, at, &s, &r);
	assert_int_equal(e, MOTE_EMALFORMED);
	assert_memory_equal(&s, &before, sizeof s);
	/* a huge string value and many keys */
	memset(big, 'a', n);
	memcpy(big, "{\"state\":{\"fault\":\"", 19);
	memcpy(big + 40000, "\"}}", 4);
	assert_int_equal(sim_desired_apply(SIM_PUMP, SIM_TWIN_DELTA, big, strlen(big), &s, &r),
			 MOTE_OK);
	assert_string_equal(r.error,
			    "fault: must be null or one of overheat, bearing, stuck, dropout");
	free(deep);
	free(big);
}

/* Random bytes and random mutations of a valid document: never a crash,
 * never an invalid setting. */
static void test_random_input(void **state)
{
	(void)state;
	const char *seed = "{\"state\":{\"on\":false,\"setpoint\":5,\"interval_ms\":300,"
			   "\"fault\":\"stuck\",\"desired\":{\"on\":true}}}";
	size_t sl = strlen(seed);
	uint64_t x = 88172645463325252ull;
	char buf[256];
	for (int i = 0; i < 50000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = sl;
		memcpy(buf, seed, sl);
		for (int k = 0; k < 1 + (int)(x % 4); k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[x % n] = (char)(x >> 32);
		}
		struct sim_settings s = fresh((enum sim_model)(i % 3));
		struct sim_desired_result r;
		(void)sim_desired_apply((enum sim_model)(i % 3), (enum sim_twin_msg)(i % 3 == 0 ? 0 : i % 3),
					buf, n, &s, &r);
		assert_true(s.interval_ms >= SIM_INTERVAL_MIN && s.interval_ms <= SIM_INTERVAL_MAX);
		assert_true(isfinite(s.setpoint));
		assert_true((unsigned)s.fault < SIM_FAULT_COUNT);
		assert_true(strlen(r.error) < SIM_ERROR_MAX);
	}
}

static void test_reported_json(void **state)
{
	(void)state;
	struct sim_settings s = fresh(SIM_MOTOR);
	char buf[512];
	size_t n = sim_reported_json(SIM_MOTOR, &s, NULL, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "{\"state\":{\"reported\":{\"model\":\"motor\",\"firmware\":"
				 "\"sim-1\",\"on\":true,\"setpoint\":1500,\"interval_ms\":1000,"
				 "\"fault\":null,\"last_error\":null}}}");
	s.fault = SIM_FAULT_DROPOUT;
	s.setpoint = 1234.5;
	s.on = false;
	n = sim_reported_json(SIM_MOTOR, &s, "say \"no\"\\\n", buf, sizeof buf);
	cJSON *j = cJSON_ParseWithLength(buf, n);
	assert_non_null(j);
	cJSON *rep = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "state"), "reported");
	assert_string_equal(cJSON_GetObjectItem(rep, "fault")->valuestring, "dropout");
	assert_string_equal(cJSON_GetObjectItem(rep, "last_error")->valuestring, "say \"no\"\\\n");
	assert_true(cJSON_GetObjectItem(rep, "setpoint")->valuedouble == 1234.5);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(rep, "on")));
	cJSON_Delete(j);
	/* a report applied back as a delta is accepted unchanged */
	struct sim_settings t = s;
	struct sim_desired_result r;
	char delta[600];
	snprintf(delta, sizeof delta, "{\"state\":%s}",
		 strstr(buf, "{\"model\"")); /* the reported object, braces balanced below */
	delta[strlen(delta) - 2] = '\0';
	assert_int_equal(apply(SIM_MOTOR, SIM_TWIN_DELTA, delta, &t, &r), MOTE_OK);
	assert_string_equal(r.error, "");
	assert_memory_equal(&t, &s, sizeof s);
	/* too small a buffer: 0, never a truncated document */
	for (size_t cap = 0; cap < 120; cap++)
		assert_int_equal(sim_reported_json(SIM_MOTOR, &s, "e", buf, cap), 0);
	/* the longest error still fits the documented buffer */
	char err[SIM_ERROR_MAX];
	memset(err, 'x', sizeof err - 1);
	err[sizeof err - 1] = '\0';
	char big[SIM_ERROR_MAX + 256];
	assert_true(sim_reported_json(SIM_MOTOR, &s, err, big, sizeof big) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_delta_applies_every_key),
		cmocka_unit_test(test_bad_values_keep_the_old_ones),
		cmocka_unit_test(test_good_and_bad_together),
		cmocka_unit_test(test_get_uses_desired),
		cmocka_unit_test(test_accepted_null_repairs),
		cmocka_unit_test(test_malformed_changes_nothing),
		cmocka_unit_test(test_oversized_and_deep),
		cmocka_unit_test(test_random_input),
		cmocka_unit_test(test_reported_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
