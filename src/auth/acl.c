/*
 * acl.c - roles and their topic rules (see acl.h for the semantics).
 *
 * The built-in roles are written in the ACL file format and read by the same
 * parser as an operator's file, so what docs/security.md shows is exactly
 * what runs. Matching walks pattern and topic level by level without copying
 * or allocating: hooks call it on every PUBLISH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "mqtt/mqtt.h"

static const char builtin_text[] =
	"role admin\n"
	"deny write $provision/#\n" /* only the hub answers provisioning */
	"allow readwrite #\n"
	"role write\n"
	"deny write $provision/#\n"
	"allow readwrite #\n"
	"role read\n"
	"allow read #\n"
	"role device\n"
	"allow write dev/%c/#\n"
	"allow readwrite $twin/%c/#\n"
	"allow readwrite $ota/%c/#\n"
	"allow read cmd/%c/#\n"
	"role claim\n"
	"allow write $provision/%c/csr\n"
	"allow read $provision/%c/#\n";

struct rule {
	bool deny;
	uint8_t access; /* enum acl_access */
	char *pattern;
};

struct role {
	char name[ACL_NAME_MAX + 1];
	struct rule *rules;
	unsigned n, cap;
};

struct acl {
	struct role *roles;
	unsigned n, cap;
};

/* ---- matching ---- */

struct levels {
	const uint8_t *s;
	size_t len, pos;
	bool done;
};

static void levels_init(struct levels *it, const void *s, size_t len)
{
	*it = (struct levels){ .s = s, .len = len };
}

static bool levels_next(struct levels *it, const uint8_t **lv, size_t *n)
{
	if (it->done)
		return false;
	const uint8_t *start = it->s + it->pos;
	const uint8_t *slash = memchr(start, '/', it->len - it->pos);
	if (slash) {
		*n = (size_t)(slash - start);
		it->pos += *n + 1;
	} else {
		*n = it->len - it->pos;
		it->pos = it->len;
		it->done = true;
	}
	*lv = start;
	return true;
}

static bool is(const uint8_t *lv, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && memcmp(lv, lit, l) == 0;
}

static bool level_value_ok(const uint8_t *v, size_t n)
{
	if (!v || n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] == '/' || v[i] == '+' || v[i] == '#' || v[i] == 0)
			return false;
	return true;
}

/* A pattern level as the literal it stands for; false for a substitution
 * that cannot be a level (the caller fails the match). */
static bool resolve(const uint8_t **lv, size_t *n, const struct acl_subject *who, bool *bad)
{
	const uint8_t *v = NULL;
	size_t vn = 0;
	if (is(*lv, *n, "%c")) {
		if (who) {
			v = who->client_id;
			vn = who->client_id_len;
		}
	} else if (is(*lv, *n, "%u")) {
		if (who) {
			v = who->username;
			vn = who->username_len;
		}
	} else {
		return true;
	}
	if (!level_value_ok(v, vn)) {
		*bad = true;
		return false;
	}
	*lv = v;
	*n = vn;
	return true;
}

static bool same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return an == bn && memcmp(a, b, an) == 0;
}

bool acl_pattern_matches(const char *pattern, const struct acl_subject *who,
			 const uint8_t *topic, size_t len, bool *bad_subst)
{
	struct levels P, T;
	const uint8_t *p, *t;
	size_t pn, tn;
	*bad_subst = false;
	levels_init(&P, pattern, strlen(pattern));
	levels_init(&T, topic, len);
	for (;;) {
		bool hp = levels_next(&P, &p, &pn);
		bool ht = levels_next(&T, &t, &tn);
		if (!hp)
			return !ht;
		if (is(p, pn, "#"))
			return true;
		if (!ht)
			return false;
		if (is(p, pn, "+"))
			continue;
		if (!resolve(&p, &pn, who, bad_subst) || !same(p, pn, t, tn))
			return false;
	}
}

bool acl_pattern_covers(const char *pattern, const struct acl_subject *who,
			const uint8_t *filter, size_t len, bool *bad_subst)
{
	struct levels P, F;
	const uint8_t *p, *f;
	size_t pn, fn;
	bool first = true;
	*bad_subst = false;
	levels_init(&P, pattern, strlen(pattern));
	levels_init(&F, filter, len);
	for (;;) {
		bool hp = levels_next(&P, &p, &pn);
		bool hf = levels_next(&F, &f, &fn);
		if (!hp)
			return !hf;
		if (is(p, pn, "#"))
			return true;
		if (hf && is(f, fn, "#") && first && is(p, pn, "+")) {
			/* "+/#" is "#" at the root: no topic has zero levels, so
			 * the parent match of "#" adds nothing there. */
			const uint8_t *p2;
			size_t pn2;
			return levels_next(&P, &p2, &pn2) && is(p2, pn2, "#") && P.done;
		}
		first = false;
		if (!hf || is(f, fn, "#"))
			return false;
		if (is(p, pn, "+"))
			continue;
		if (!resolve(&p, &pn, who, bad_subst) || is(f, fn, "+") || !same(p, pn, f, fn))
			return false;
	}
}

bool acl_pattern_overlaps(const char *pattern, const struct acl_subject *who,
			  const uint8_t *filter, size_t len, bool *bad_subst)
{
	struct levels P, F;
	const uint8_t *p, *f;
	size_t pn, fn;
	*bad_subst = false;
	levels_init(&P, pattern, strlen(pattern));
	levels_init(&F, filter, len);
	for (;;) {
		bool hp = levels_next(&P, &p, &pn);
		bool hf = levels_next(&F, &f, &fn);
		if (!hp && !hf)
			return true;
		if ((hp && is(p, pn, "#")) || (hf && is(f, fn, "#")))
			return true;
		if (!hp || !hf)
			return false;
		if (!resolve(&p, &pn, who, bad_subst))
			return false;
		if (is(p, pn, "+") || is(f, fn, "+"))
			continue;
		if (!same(p, pn, f, fn))
			return false;
	}
}

static const struct role *role_at(const struct acl *a, int role)
{
	if (!a || role < 0 || (unsigned)role >= a->n)
		return NULL;
	return &a->roles[role];
}

bool acl_may_publish(const struct acl *a, int role, const struct acl_subject *who,
		     const uint8_t *topic, size_t len)
{
	const struct role *r = role_at(a, role);
	bool bad;
	if (!r)
		return false;
	/* $SYS belongs to the broker whatever a role says. */
	if (len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/'))
		return false;
	for (unsigned i = 0; i < r->n; i++) {
		const struct rule *u = &r->rules[i];
		if (u->deny && (u->access & ACL_WRITE) &&
		    (acl_pattern_matches(u->pattern, who, topic, len, &bad) || bad))
			return false;
	}
	for (unsigned i = 0; i < r->n; i++) {
		const struct rule *u = &r->rules[i];
		if (!u->deny && (u->access & ACL_WRITE) &&
		    acl_pattern_matches(u->pattern, who, topic, len, &bad))
			return true;
	}
	return false;
}

bool acl_may_subscribe(const struct acl *a, int role, const struct acl_subject *who,
		       const uint8_t *filter, size_t len)
{
	const struct role *r = role_at(a, role);
	struct mqtt_str group, f = { filter, (uint16_t)len };
	bool bad;
	if (!r || len > UINT16_MAX)
		return false;
	if (mqtt_shared_split(filter, len, &group, &f)) {
		filter = f.p;
		len = f.len;
	}
	for (unsigned i = 0; i < r->n; i++) {
		const struct rule *u = &r->rules[i];
		if (u->deny && (u->access & ACL_READ) &&
		    (acl_pattern_overlaps(u->pattern, who, filter, len, &bad) || bad))
			return false;
	}
	for (unsigned i = 0; i < r->n; i++) {
		const struct rule *u = &r->rules[i];
		if (!u->deny && (u->access & ACL_READ) &&
		    acl_pattern_covers(u->pattern, who, filter, len, &bad))
			return true;
	}
	return false;
}

/* ---- roles and the file ---- */

bool acl_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > ACL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int acl_role_find(const struct acl *a, const char *name, size_t len)
{
	for (unsigned i = 0; i < a->n; i++)
		if (strlen(a->roles[i].name) == len && memcmp(a->roles[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

const char *acl_role_name(const struct acl *a, int role)
{
	const struct role *r = role_at(a, role);
	return r ? r->name : "?";
}

unsigned acl_role_count(const struct acl *a)
{
	return a->n;
}

void acl_free(struct acl *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n; i++) {
		for (unsigned j = 0; j < a->roles[i].n; j++)
			free(a->roles[i].rules[j].pattern);
		free(a->roles[i].rules);
	}
	free(a->roles);
	free(a);
}

/* A pattern is a valid topic filter whose `%` appear only as %c or %u levels. */
static bool pattern_valid(const char *s, size_t n)
{
	if (n == 0 || n > 1024 || !mqtt_topic_filter_valid((const uint8_t *)s, n))
		return false;
	struct levels it;
	const uint8_t *lv;
	size_t ln;
	levels_init(&it, s, n);
	while (levels_next(&it, &lv, &ln))
		if (memchr(lv, '%', ln) && !is(lv, ln, "%c") && !is(lv, ln, "%u"))
			return false;
	return true;
}

/* The next whitespace-separated word of [*p, end). */
static bool word(const char **p, const char *end, const char **w, size_t *n)
{
	while (*p < end && (**p == ' ' || **p == '\t'))
		(*p)++;
	if (*p == end)
		return false;
	*w = *p;
	while (*p < end && **p != ' ' && **p != '\t')
		(*p)++;
	*n = (size_t)(*p - *w);
	return true;
}

static enum mote_err parse_into(struct acl *a, const char *text, size_t len, bool builtin,
				char *err, size_t errcap)
{
	struct role *cur = NULL;
	unsigned lineno = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		lineno++;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		/* '#' starts a comment only at a line's start (after blanks):
		 * it is also the multi-level wildcard. */
		const char *q = p;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		const char *line_end = le;
		if (line_end > q && line_end[-1] == '\r')
			line_end--;
		const char *w1, *w2, *w3, *w4;
		size_t n1, n2, n3, n4;
		const char *c = q;
		if (q == line_end || *q == '#' || !word(&c, line_end, &w1, &n1))
			goto next;
		if (is((const uint8_t *)w1, n1, "role")) {
			if (!word(&c, line_end, &w2, &n2) || word(&c, line_end, &w3, &n3)) {
				snprintf(err, errcap, "line %u: want 'role NAME'", lineno);
				return MOTE_EINVAL;
			}
			if (!acl_name_valid(w2, n2)) {
				snprintf(err, errcap,
					 "line %u: role name '%.*s' is not 1-64 of A-Z a-z 0-9 . _ -",
					 lineno, (int)(n2 > 64 ? 64 : n2), w2);
				return MOTE_EINVAL;
			}
			int dup = acl_role_find(a, w2, n2);
			if (dup >= 0) {
				snprintf(err, errcap, "line %u: role '%.*s' is %s", lineno, (int)n2, w2,
					 !builtin && dup < ACL_ROLE_BUILTIN_COUNT_
						 ? "built in (admin, write, read, device, claim)"
						 : "defined twice");
				return MOTE_EINVAL;
			}
			if (a->n == ACL_MAX_ROLES) {
				snprintf(err, errcap, "line %u: more than %d roles", lineno,
					 ACL_MAX_ROLES);
				return MOTE_EINVAL;
			}
			if (a->n == a->cap) {
				unsigned nc = a->cap ? a->cap * 2 : 8;
				struct role *nr = realloc(a->roles, nc * sizeof *nr);
				if (!nr)
					return MOTE_ENOMEM;
				a->roles = nr;
				a->cap = nc;
			}
			cur = &a->roles[a->n++];
			memset(cur, 0, sizeof *cur);
			memcpy(cur->name, w2, n2);
			goto next;
		}
		bool deny = is((const uint8_t *)w1, n1, "deny");
		if (!deny && !is((const uint8_t *)w1, n1, "allow")) {
			snprintf(err, errcap, "line %u: '%.*s' is not role, allow or deny", lineno,
				 (int)(n1 > 32 ? 32 : n1), w1);
			return MOTE_EINVAL;
		}
		if (!cur) {
			snprintf(err, errcap, "line %u: a rule before any 'role NAME' line", lineno);
			return MOTE_EINVAL;
		}
		if (!word(&c, line_end, &w2, &n2) || !word(&c, line_end, &w3, &n3) ||
		    word(&c, line_end, &w4, &n4)) {
			snprintf(err, errcap, "line %u: want '%s read|write|readwrite PATTERN'", lineno,
				 deny ? "deny" : "allow");
			return MOTE_EINVAL;
		}
		uint8_t access;
		if (is((const uint8_t *)w2, n2, "read"))
			access = ACL_READ;
		else if (is((const uint8_t *)w2, n2, "write"))
			access = ACL_WRITE;
		else if (is((const uint8_t *)w2, n2, "readwrite"))
			access = ACL_READWRITE;
		else {
			snprintf(err, errcap, "line %u: access '%.*s' is not read, write or readwrite",
				 lineno, (int)(n2 > 32 ? 32 : n2), w2);
			return MOTE_EINVAL;
		}
		if (!pattern_valid(w3, n3)) {
			snprintf(err, errcap,
				 "line %u: '%.*s' is not a topic filter (levels may be %%c or %%u)",
				 lineno, (int)(n3 > 64 ? 64 : n3), w3);
			return MOTE_EINVAL;
		}
		if (cur->n == ACL_MAX_RULES) {
			snprintf(err, errcap, "line %u: more than %d rules in role %s", lineno,
				 ACL_MAX_RULES, cur->name);
			return MOTE_EINVAL;
		}
		if (cur->n == cur->cap) {
			unsigned nc = cur->cap ? cur->cap * 2 : 4;
			struct rule *nr = realloc(cur->rules, nc * sizeof *nr);
			if (!nr)
				return MOTE_ENOMEM;
			cur->rules = nr;
			cur->cap = nc;
		}
		char *pat = malloc(n3 + 1);
		if (!pat)
			return MOTE_ENOMEM;
		memcpy(pat, w3, n3);
		pat[n3] = '\0';
		cur->rules[cur->n++] = (struct rule){ .deny = deny, .access = access, .pattern = pat };
next:
		p = nl ? nl + 1 : end;
	}
	return MOTE_OK;
}

enum mote_err acl_parse(const char *text, size_t len, struct acl **out, char *err,
			size_t errcap)
{
	struct acl *a = calloc(1, sizeof *a);
	if (!a)
		return MOTE_ENOMEM;
	enum mote_err e = parse_into(a, builtin_text, sizeof builtin_text - 1, true, err, errcap);
	if (e == MOTE_OK && text)
		e = parse_into(a, text, len, false, err, errcap);
	if (e != MOTE_OK) {
		if (e == MOTE_ENOMEM)
			snprintf(err, errcap, "out of memory");
		acl_free(a);
		return e;
	}
	*out = a;
	return MOTE_OK;
}
