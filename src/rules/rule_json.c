/*
 * rule_json.c - a rule's JSON form (docs/rules.md): validation with a
 * sentence that names the field and what is wrong, and the canonical form
 * kept in the rules_rules table and returned by the API.
 *
 * Every field is checked for type and range, unknown fields are refused
 * (a typo such as "for" instead of "for_s" would otherwise silently mean
 * "no duration"), and fields of another kind are refused too.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

#define MAX_SECONDS (30.0 * 86400)

static const char *const kind_names[] = { "threshold", "rate", "nodata", "expression" };
static const char *const cmp_names[] = { ">", ">=", "<", "<=", "==", "!=" };

/* Which kinds take which optional fields. */
struct field {
	const char *name;
	unsigned kinds; /* bit per kind; 0xf: all */
};

#define K(k) (1u << (k))
static const struct field fields[] = {
	{ "name", 0xf }, { "device", 0xf }, { "model", 0xf }, { "kind", 0xf },
	{ "severity", 0xf }, { "alert_type", 0xf }, { "enabled", 0xf },
	{ "metric", K(RK_THRESHOLD) | K(RK_RATE) },
	{ "op", K(RK_THRESHOLD) | K(RK_RATE) },
	{ "value", K(RK_THRESHOLD) | K(RK_RATE) },
	{ "hysteresis", K(RK_THRESHOLD) | K(RK_RATE) },
	{ "for_s", K(RK_THRESHOLD) | K(RK_RATE) | K(RK_EXPR) },
	{ "window_s", K(RK_RATE) },
	{ "timeout_s", K(RK_NODATA) },
	{ "expr", K(RK_EXPR) },
	/* read-only fields the API returns; accepted (and ignored) so a GET body can be PUT back */
	{ "id", 0xf }, { "created_ms", 0xf }, { "updated_ms", 0xf },
};

static bool bad(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool bad(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return false;
}

/* A printable name of 1..max bytes (no control characters). */
static bool get_name(const cJSON *j, const char *field, bool required, size_t max, char *out,
		     char *err, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
	if (!v) {
		if (required)
			return bad(err, cap, "field '%s' is required%s", field, "");
		out[0] = '\0';
		return true;
	}
	if (!cJSON_IsString(v))
		return bad(err, cap, "field '%s' must be a string%s", field, "");
	size_t n = strlen(v->valuestring);
	if (n == 0 || n > max) {
		char lim[32];
		snprintf(lim, sizeof lim, "%zu", max);
		return bad(err, cap, "field '%s' must be 1 to %s bytes long", field, lim);
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v->valuestring[i] < 0x20 || v->valuestring[i] == 0x7f)
			return bad(err, cap, "field '%s' contains a control character%s", field, "");
	memcpy(out, v->valuestring, n + 1);
	return true;
}

static bool get_number(const cJSON *j, const char *field, bool required, double def, double min,
		       double max, double *out, char *err, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
	if (!v) {
		if (required)
			return bad(err, cap, "field '%s' is required%s", field, "");
		*out = def;
		return true;
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return bad(err, cap, "field '%s' must be a number%s", field, "");
	if (v->valuedouble < min || v->valuedouble > max) {
		char range[96];
		snprintf(range, sizeof range, "between %g and %g", min, max);
		return bad(err, cap, "field '%s' must be %s", field, range);
	}
	*out = v->valuedouble;
	return true;
}

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

bool rule_from_json(const cJSON *j, struct rule *out, char *err, size_t cap)
{
	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(j))
		return bad(err, cap, "a rule is a JSON object%s%s", "", "");
	char kind[16];
	if (!get_name(j, "kind", true, sizeof kind - 1, kind, err, cap))
		return false;
	int k = lookup(kind, kind_names, 4);
	if (k < 0)
		return bad(err, cap, "field 'kind' must be threshold, rate, nodata or expression, not '%s'%s",
			   kind, "");
	out->kind = (enum rule_kind)k;
	for (const cJSON *f = j->child; f; f = f->next) {
		size_t i;
		for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
			if (strcmp(f->string, fields[i].name) == 0)
				break;
		if (i == sizeof fields / sizeof fields[0])
			return bad(err, cap, "unknown field '%.64s'%s", f->string, "");
		if (!(fields[i].kinds & K(k)))
			return bad(err, cap, "field '%s' does not apply to kind '%s'", f->string, kind);
	}
	if (!get_name(j, "name", true, RULE_NAME_MAX, out->name, err, cap) ||
	    !get_name(j, "device", false, RULE_ID_MAX, out->device, err, cap) ||
	    !get_name(j, "model", false, RULE_ID_MAX, out->model, err, cap) ||
	    !get_name(j, "alert_type", false, RULE_NAME_MAX, out->type, err, cap))
		return false;
	if (!out->device[0] == !out->model[0])
		return bad(err, cap, "give exactly one of the fields 'device' and 'model'%s%s", "", "");
	if (!out->type[0])
		memcpy(out->type, out->name, sizeof out->type);
	char sev[16];
	if (!get_name(j, "severity", false, sizeof sev - 1, sev, err, cap))
		return false;
	out->severity = sev[0] ? severity_parse(sev) : SEV_MAJOR;
	if (out->severity == SEV_NONE)
		return bad(err, cap, "field 'severity' must be critical, major, minor or warning, not '%s'%s",
			   sev, "");
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(j, "enabled");
	if (en && !cJSON_IsBool(en))
		return bad(err, cap, "field 'enabled' must be true or false%s%s", "", "");
	out->enabled = !en || cJSON_IsTrue(en);

	double d;
	if (k == RK_THRESHOLD || k == RK_RATE) {
		char op[8];
		if (!get_name(j, "metric", true, RULE_NAME_MAX, out->metric, err, cap) ||
		    !get_name(j, "op", true, sizeof op - 1, op, err, cap))
			return false;
		int c = lookup(op, cmp_names, 6);
		if (c < 0)
			return bad(err, cap, "field 'op' must be one of > >= < <= == !=, not '%s'%s", op, "");
		out->op = (enum rule_cmp)c;
		if (!get_number(j, "value", true, 0, -HUGE_VAL, HUGE_VAL, &out->value, err, cap) ||
		    !get_number(j, "hysteresis", false, 0, 0, HUGE_VAL, &out->hysteresis, err, cap))
			return false;
		if (out->hysteresis > 0 && (out->op == CMP_EQ || out->op == CMP_NE))
			return bad(err, cap, "field 'hysteresis' needs op > >= < or <=, not '%s'%s", op, "");
	}
	if (k == RK_RATE) {
		if (!get_number(j, "window_s", true, 0, 0.001, 86400, &d, err, cap))
			return false;
		out->window_ms = (int64_t)llround(d * 1000);
	}
	if (k == RK_NODATA) {
		if (!get_number(j, "timeout_s", true, 0, 1, MAX_SECONDS, &d, err, cap))
			return false;
		out->timeout_ms = (int64_t)llround(d * 1000);
	}
	if (k != RK_NODATA) {
		if (!get_number(j, "for_s", false, 0, 0, MAX_SECONDS, &d, err, cap))
			return false;
		out->for_ms = (int64_t)llround(d * 1000);
	}
	if (k == RK_EXPR) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expr");
		if (!e)
			return bad(err, cap, "field 'expr' is required for kind 'expression'%s%s", "", "");
		if (!cJSON_IsString(e))
			return bad(err, cap, "field 'expr' must be a string%s%s", "", "");
		char why[200];
		size_t pos;
		if (rexpr_parse(e->valuestring, strlen(e->valuestring), &out->expr, &pos, why,
				sizeof why) != MOTE_OK)
			return bad(err, cap, "field 'expr': %s%s", why, "");
		out->expr_src = strdup(e->valuestring);
		if (!out->expr_src)
			return bad(err, cap, "out of memory%s%s", "", "");
	}
	return true;
}

static void add_common(cJSON *o, const struct rule *ru)
{
	cJSON_AddStringToObject(o, "name", ru->name);
	if (ru->device[0])
		cJSON_AddStringToObject(o, "device", ru->device);
	else
		cJSON_AddStringToObject(o, "model", ru->model);
	cJSON_AddStringToObject(o, "kind", kind_names[ru->kind]);
	cJSON_AddStringToObject(o, "severity", severity_name(ru->severity));
	cJSON_AddStringToObject(o, "alert_type", ru->type);
	cJSON_AddBoolToObject(o, "enabled", ru->enabled);
	if (ru->kind == RK_THRESHOLD || ru->kind == RK_RATE) {
		cJSON_AddStringToObject(o, "metric", ru->metric);
		cJSON_AddStringToObject(o, "op", cmp_names[ru->op]);
		cJSON_AddNumberToObject(o, "value", ru->value);
		cJSON_AddNumberToObject(o, "hysteresis", ru->hysteresis);
	}
	if (ru->kind == RK_RATE)
		cJSON_AddNumberToObject(o, "window_s", (double)ru->window_ms / 1000);
	if (ru->kind == RK_NODATA)
		cJSON_AddNumberToObject(o, "timeout_s", (double)ru->timeout_ms / 1000);
	if (ru->kind == RK_EXPR)
		cJSON_AddStringToObject(o, "expr", ru->expr_src ? ru->expr_src : "");
	if (ru->kind != RK_NODATA)
		cJSON_AddNumberToObject(o, "for_s", (double)ru->for_ms / 1000);
}

/* The API form (also what the rules_rules table keeps): id, the fields, times. */
char *rule_to_json(const struct rule *ru)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)ru->id);
	add_common(o, ru);
	cJSON_AddNumberToObject(o, "created_ms", (double)ru->created_ms);
	cJSON_AddNumberToObject(o, "updated_ms", (double)ru->updated_ms);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

void rule_free(struct rule *ru)
{
	if (!ru)
		return;
	rexpr_free(ru->expr);
	free(ru->expr_src);
	free(ru);
}
