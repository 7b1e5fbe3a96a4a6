/*
 * json_syntax.c - the strict JSON syntax check and the duplicate-key check
 * of json_syntax.h. Moved here from the twin module when a second module
 * (insight's simulate requests) needed the same strictness.
 */
#include "base/json_syntax.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/*
 * A JSON syntax check (RFC 8259) that builds nothing, run before cJSON so
 * that a cJSON failure afterwards can only mean out of memory (500), and so
 * that what cJSON lets through and JSON does not is refused: numbers that
 * strtod takes (01, 1., .5), raw control characters in strings. Stricter
 * than the RFC where cJSON would fail anyway: lone UTF-16 surrogates in
 * \u escapes, numbers over 63 characters, nesting over cJSON's limit.
 * Iterative, with one bit per open container.
 */
static const char *ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* s at the opening quote: the byte after the closing one, or NULL. */
static const char *json_string(const char *s)
{
	for (s++;; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s + 1;
		if (c < 0x20) /* the end of the text too */
			return NULL;
		if (c != '\\')
			continue;
		c = (unsigned char)*++s;
		if (c == 'u') {
			int u = hex4(s + 1);
			if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
				return NULL;
			s += 4;
			if (u >= 0xd800 && u <= 0xdbff) {
				int lo = s[1] == '\\' && s[2] == 'u' ? hex4(s + 3) : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return NULL;
				s += 6;
			}
		} else if (!c || !strchr("\"\\/bfnrt", c)) {
			return NULL;
		}
	}
}

static const char *json_number(const char *s)
{
	const char *start = s;
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return NULL;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return s - start > 63 ? NULL : s; /* cJSON reads at most 63 */
}

enum mote_json_syntax mote_json_syntax(const char *s)
{
	uint8_t is_obj[CJSON_NESTING_LIMIT / 8 + 1];
	unsigned depth = 0;

	s = ws(s);
value:
	switch (*s) {
	case '{':
	case '[':
		if (depth >= CJSON_NESTING_LIMIT)
			return MOTE_JSON_DEEP;
		if (*s == '{')
			is_obj[depth / 8] |= (uint8_t)(1u << (depth % 8));
		else
			is_obj[depth / 8] &= (uint8_t)~(1u << (depth % 8));
		depth++;
		s = ws(s + 1);
		if (*s == (is_obj[(depth - 1) / 8] & (1u << ((depth - 1) % 8)) ? '}' : ']')) {
			depth--;
			s++;
			goto after;
		}
		if (is_obj[(depth - 1) / 8] & (1u << ((depth - 1) % 8)))
			goto key;
		goto value;
	case '"':
		s = json_string(s);
		break;
	case 't':
		s = strncmp(s, "true", 4) == 0 ? s + 4 : NULL;
		break;
	case 'f':
		s = strncmp(s, "false", 5) == 0 ? s + 5 : NULL;
		break;
	case 'n':
		s = strncmp(s, "null", 4) == 0 ? s + 4 : NULL;
		break;
	default:
		s = json_number(s);
		break;
	}
	if (!s)
		return MOTE_JSON_BAD;
after:
	s = ws(s);
	if (depth == 0)
		return *s ? MOTE_JSON_BAD : MOTE_JSON_OK;
	bool obj = is_obj[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
	if (*s == ',') {
		s = ws(s + 1);
		if (obj)
			goto key;
		goto value;
	}
	if (*s != (obj ? '}' : ']'))
		return MOTE_JSON_BAD;
	depth--;
	s++;
	goto after;
key:
	if (*s != '"' || !(s = json_string(s)))
		return MOTE_JSON_BAD;
	s = ws(s);
	if (*s != ':')
		return MOTE_JSON_BAD;
	s = ws(s + 1);
	goto value;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *mote_json_dup_key(const struct cJSON *v, unsigned depth, int *oom)
{
	*oom = 0;
	if (!v || depth == 0)
		return NULL;
	size_t n = 0;
	for (const cJSON *c = v->child; c; c = c->next)
		n++;
	if (cJSON_IsObject(v) && n >= 2) {
		const char **names = malloc(n * sizeof *names);
		if (!names) {
			*oom = 1;
			return NULL;
		}
		size_t i = 0;
		for (const cJSON *c = v->child; c; c = c->next)
			names[i++] = c->string ? c->string : "";
		qsort(names, n, sizeof *names, cmp_names);
		const char *dup = NULL;
		for (i = 1; i < n && !dup; i++)
			if (strcmp(names[i - 1], names[i]) == 0)
				dup = names[i];
		free(names);
		if (dup)
			return dup;
	}
	for (const cJSON *c = v->child; c; c = c->next) {
		const char *dup = mote_json_dup_key(c, depth - 1, oom);
		if (dup || *oom)
			return dup;
	}
	return NULL;
}
