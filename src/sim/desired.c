/*
 * desired.c - desired properties in, reported properties out (desired.h).
 *
 * Invariants:
 *   - A key is applied only after its value passed every check; a failing
 *     key leaves its setting untouched and adds one sentence to r->error.
 *   - The error text is ours (fixed sentences and numbers), never an echo
 *     of the input, so a hostile document cannot inject into the report.
 *   - Payloads over SIM_DESIRED_MAX are refused before cJSON sees them, and
 *     so is a document with trailing bytes or an escaped NUL in a string.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sim/desired.h"

void sim_settings_default(enum sim_model m, uint32_t interval_ms, struct sim_settings *s)
{
	struct sim_params p;

	sim_params_default(m, &p);
	s->on = true;
	s->setpoint = p.sp_default;
	s->interval_ms = interval_ms;
	s->fault = SIM_FAULT_NONE;
}

static void add_error(struct sim_desired_result *r, const char *one)
{
	size_t n = strlen(r->error);

	if (n + (n ? 2 : 0) + strlen(one) >= sizeof r->error)
		return; /* the first sentences are the useful ones */
	if (n) {
		memcpy(r->error + n, "; ", 2);
		n += 2;
	}
	memcpy(r->error + n, one, strlen(one) + 1);
}

static void apply_on(const cJSON *v, struct sim_settings *s, struct sim_desired_result *r)
{
	r->touched |= SIM_SET_ON;
	if (!cJSON_IsBool(v)) {
		add_error(r, "on: must be true or false");
		return;
	}
	bool on = cJSON_IsTrue(v);
	if (on != s->on)
		r->changed |= SIM_SET_ON;
	s->on = on;
}

static void apply_setpoint(enum sim_model m, const cJSON *v, struct sim_settings *s,
			   struct sim_desired_result *r)
{
	struct sim_params p;

	sim_params_default(m, &p);
	r->touched |= SIM_SET_SETPOINT;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < p.sp_min ||
	    v->valuedouble > p.sp_max) {
		char one[96];
		snprintf(one, sizeof one, "setpoint: must be a number between %g and %g", p.sp_min,
			 p.sp_max);
		add_error(r, one);
		return;
	}
	if (v->valuedouble != s->setpoint)
		r->changed |= SIM_SET_SETPOINT;
	s->setpoint = v->valuedouble;
}

static void apply_interval(const cJSON *v, struct sim_settings *s, struct sim_desired_result *r)
{
	r->touched |= SIM_SET_INTERVAL;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble != floor(v->valuedouble) || v->valuedouble < SIM_INTERVAL_MIN ||
	    v->valuedouble > SIM_INTERVAL_MAX) {
		char one[96];
		snprintf(one, sizeof one, "interval_ms: must be an integer between %u and %u",
			 SIM_INTERVAL_MIN, SIM_INTERVAL_MAX);
		add_error(r, one);
		return;
	}
	uint32_t ms = (uint32_t)v->valuedouble;
	if (ms != s->interval_ms)
		r->changed |= SIM_SET_INTERVAL;
	s->interval_ms = ms;
}

static void apply_fault(const cJSON *v, struct sim_settings *s, struct sim_desired_result *r)
{
	enum sim_fault f = SIM_FAULT_COUNT;

	r->touched |= SIM_SET_FAULT;
	if (cJSON_IsNull(v))
		f = SIM_FAULT_NONE;
	else if (cJSON_IsString(v) && v->valuestring)
		f = sim_fault_parse(v->valuestring, strlen(v->valuestring));
	if (f == SIM_FAULT_COUNT) {
		add_error(r, "fault: must be null or one of overheat, bearing, stuck, dropout");
		return;
	}
	if (f != s->fault)
		r->changed |= SIM_SET_FAULT;
	s->fault = f;
}

/*
 * "\u0000" inside a string becomes a NUL that C string functions stop at
 * ("overheat\u0000x" would read as "overheat"). Refused whole, like the
 * hub's twin refuses a raw NUL.
 */
static bool has_nul_escape(const char *p, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++)
		if (p[i] == '\\' && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0)
			return true;
	return false;
}

/* cJSON stops after the first value: what follows must be whitespace. */
static bool only_space(const char *p, const char *end)
{
	if (!p)
		return false;
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	return true;
}

/* The object holding the desired keys in a message of kind msg, or NULL. */
static const cJSON *desired_of(const cJSON *root, enum sim_twin_msg msg, bool *shape_ok)
{
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");

	*shape_ok = false;
	if (!cJSON_IsObject(state))
		return NULL;
	if (msg == SIM_TWIN_DELTA) {
		*shape_ok = true;
		return state;
	}
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(state, "desired");
	/* A document without desired, or a device's own reported update. */
	*shape_ok = d == NULL || cJSON_IsObject(d) || cJSON_IsNull(d);
	return cJSON_IsObject(d) ? d : NULL;
}

enum mote_err sim_desired_apply(enum sim_model m, enum sim_twin_msg msg, const void *payload,
				size_t len, struct sim_settings *s, struct sim_desired_result *r)
{
	enum mote_err err = MOTE_OK;
	cJSON *root = NULL;
	const char *end = NULL;
	const cJSON *d;
	bool shape_ok;

	memset(r, 0, sizeof *r);
	if (len > SIM_DESIRED_MAX)
		return MOTE_ETOOBIG;
	if (!payload || len == 0)
		return MOTE_EMALFORMED;
	if (has_nul_escape((const char *)payload, len)) {
		err = MOTE_EMALFORMED;
		goto out;
	}
	root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
	if (!cJSON_IsObject(root) || !only_space(end, (const char *)payload + len)) {
		err = MOTE_EMALFORMED;
		goto out;
	}
	d = desired_of(root, msg, &shape_ok);
	if (!shape_ok) {
		err = MOTE_EMALFORMED;
		goto out;
	}
	if (!d)
		goto out;
	/* Work on a copy so that a document is applied whole or key by key,
	 * never half of one key. */
	struct sim_settings next = *s;
	for (const cJSON *v = d->child; v; v = v->next) {
		if (!v->string)
			continue;
		if (strcmp(v->string, "on") == 0)
			apply_on(v, &next, r);
		else if (strcmp(v->string, "setpoint") == 0)
			apply_setpoint(m, v, &next, r);
		else if (strcmp(v->string, "interval_ms") == 0)
			apply_interval(v, &next, r);
		else if (strcmp(v->string, "fault") == 0)
			apply_fault(v, &next, r);
	}
	/* A key given twice counts once, with its last valid value. */
	r->changed = 0;
	if (next.on != s->on)
		r->changed |= SIM_SET_ON;
	if (next.setpoint != s->setpoint)
		r->changed |= SIM_SET_SETPOINT;
	if (next.interval_ms != s->interval_ms)
		r->changed |= SIM_SET_INTERVAL;
	if (next.fault != s->fault)
		r->changed |= SIM_SET_FAULT;
	*s = next;
out:
	cJSON_Delete(root);
	return err;
}

/* A JSON string of our own text (escapes what JSON requires). */
static size_t put_str(char *buf, size_t cap, size_t at, const char *s)
{
	if (at >= cap)
		return at;
	buf[at++] = '"';
	for (; *s && at + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[at++] = '\\';
			buf[at++] = (char)c;
		} else if (c < 0x20) {
			at += (size_t)snprintf(buf + at, cap - at, "\\u%04x", c);
		} else {
			buf[at++] = (char)c;
		}
	}
	if (at + 1 < cap)
		buf[at++] = '"';
	else
		at = cap;
	return at;
}

size_t sim_reported_json(enum sim_model m, const struct sim_settings *s, const char *last_error,
			 char *buf, size_t cap)
{
	const char *fault = sim_fault_name(s->fault);
	size_t at;
	int n;

	if (cap == 0)
		return 0;
	char sp[32];
	/* The shortest text that reads back as the same double: a setpoint
	 * reported rounded would differ from the desired one forever. */
	snprintf(sp, sizeof sp, "%.15g", s->setpoint);
	if (strtod(sp, NULL) != s->setpoint)
		snprintf(sp, sizeof sp, "%.17g", s->setpoint);
	n = snprintf(buf, cap,
		     "{\"state\":{\"reported\":{\"model\":\"%s\",\"firmware\":\"%s\",\"on\":%s,"
		     "\"setpoint\":%s,\"interval_ms\":%u,\"fault\":",
		     sim_model_name(m), SIM_FIRMWARE, s->on ? "true" : "false", sp,
		     (unsigned)s->interval_ms);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	at = (size_t)n;
	at = fault ? put_str(buf, cap, at, fault)
		   : at + (size_t)snprintf(buf + at, cap - at, "null");
	if (at >= cap)
		return 0;
	n = snprintf(buf + at, cap - at, ",\"last_error\":");
	if (n < 0 || at + (size_t)n >= cap)
		return 0;
	at += (size_t)n;
	at = last_error && *last_error ? put_str(buf, cap, at, last_error)
				       : at + (size_t)snprintf(buf + at, cap - at, "null");
	if (at >= cap)
		return 0;
	n = snprintf(buf + at, cap - at, "}}}");
	if (n < 0 || at + (size_t)n >= cap)
		return 0;
	return at + (size_t)n;
}
