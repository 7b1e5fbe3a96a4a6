/*
 * doc.c - the twin document rules (see doc.h and docs/twins.md).
 *
 * Invariants of a struct twin_doc:
 *  - desired and reported are objects; no object inside them is empty (an
 *    object that a delete leaves empty is removed with its key);
 *  - meta_X mirrors X: an object value has an object of the same keys, any
 *    other value (scalar or array, arrays being one leaf) has
 *    {"timestamp":ms};
 *  - no object has two members with the same key (requests with duplicate
 *    keys are refused, so cJSON's first-match lookups are unambiguous).
 *
 * Hostile input is bounded before it gets here: the payload cap (a function
 * of max_state_bytes), cJSON's own nesting limit while parsing, and then
 * max_depth, checked before any recursive merge, compare or print runs.
 */
#include "twin/doc.h"

#include "base/json_syntax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t twin_payload_cap(const struct twin_limits *lim)
{
	/* room for a request that deletes as much as it sets */
	return 2 * lim->max_state_bytes + 1024;
}

bool twin_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* A key for a message: at most 40 bytes, cut on a character boundary. */
static const char *short_key(const char *k, char *buf, size_t cap)
{
	size_t n = strlen(k);
	if (n >= cap)
		n = cap - 1;
	if (n > 40)
		n = 40;
	while (n > 0 && n < strlen(k) && ((unsigned char)k[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, k, n);
	buf[n] = '\0';
	return buf;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys among obj's members: 0 or 400 (500: out of memory). */
static int check_dups(const cJSON *obj, const char *where, char *msg, size_t cap)
{
	size_t n = 0, i = 0;
	int status = 0;
	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	if (n < 2)
		return 0;
	const char **names = malloc(n * sizeof *names);
	if (!names) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	for (const cJSON *c = obj->child; c; c = c->next)
		names[i++] = c->string ? c->string : "";
	qsort(names, n, sizeof *names, cmp_names);
	for (i = 1; i < n; i++) {
		if (strcmp(names[i - 1], names[i]) == 0) {
			char kb[48];
			snprintf(msg, cap, "duplicate key '%s' in %s",
				 short_key(names[i], kb, sizeof kb), where);
			status = 400;
			break;
		}
	}
	free(names);
	return status;
}

/*
 * A value inside a state section at nesting level `level` (the section
 * object itself is level 1): depth, key sizes, duplicates, numbers.
 * Recursion stops at max_depth, so it is bounded however deep the input.
 */
static int check_value(const cJSON *v, unsigned level, const char *section,
		       const struct twin_limits *lim, char *msg, size_t cap)
{
	int st;
	if (cJSON_IsNumber(v)) {
		if (!isfinite(v->valuedouble)) {
			snprintf(msg, cap, "a number in %s is out of range", section);
			return 400;
		}
		return 0;
	}
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return 0;
	if (level > lim->max_depth) {
		snprintf(msg, cap, "%s nests deeper than %u levels", section, lim->max_depth);
		return 400;
	}
	if (cJSON_IsObject(v)) {
		if ((st = check_dups(v, section, msg, cap)))
			return st;
		for (const cJSON *c = v->child; c; c = c->next) {
			if (c->string && strlen(c->string) > TWIN_KEY_MAX) {
				char kb[48];
				snprintf(msg, cap, "key '%s...' in %s is longer than %d bytes",
					 short_key(c->string, kb, sizeof kb), section, TWIN_KEY_MAX);
				return 400;
			}
		}
	}
	for (const cJSON *c = v->child; c; c = c->next)
		if ((st = check_value(c, level + 1, section, lim, msg, cap)))
			return st;
	return 0;
}


static bool all_space(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static bool key_in(const char *k, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(k, *allowed) == 0)
			return true;
	return false;
}

static int check_section(const cJSON *sec, const char *name, const struct twin_limits *lim,
			 char *msg, size_t cap)
{
	if (cJSON_IsNull(sec))
		return 0;
	if (!cJSON_IsObject(sec)) {
		snprintf(msg, cap, "%s must be an object or null", name);
		return 400;
	}
	return check_value(sec, 1, name, lim, msg, cap);
}

int twin_request_parse(const uint8_t *p, size_t len, enum twin_req kind,
		       const struct twin_limits *lim, struct twin_request *req, char *msg,
		       size_t cap)
{
	static const char *const get_keys[] = { "clientToken", NULL };
	static const char *const update_keys[] = { "state", "version", "clientToken", NULL };
	static const char *const patch_keys[] = { "desired", "version", "clientToken", NULL };
	static const char *const state_keys[] = { "desired", "reported", NULL };
	const char *const *allowed =
		kind == TWIN_REQ_GET ? get_keys : kind == TWIN_REQ_UPDATE ? update_keys : patch_keys;
	int st;

	memset(req, 0, sizeof *req);
	if (len > twin_payload_cap(lim)) {
		snprintf(msg, cap, "payload of %zu bytes is over the %zu-byte limit", len,
			 twin_payload_cap(lim));
		return 413;
	}
	if (kind == TWIN_REQ_GET && all_space(p, len))
		return 0;
	if (!twin_utf8_valid(p, len)) {
		snprintf(msg, cap, "payload is not valid UTF-8 (or holds a NUL byte)");
		return 400;
	}
	char *buf = malloc(len + 1);
	if (!buf) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	enum mote_json_syntax syn = mote_json_syntax(buf);
	if (syn != MOTE_JSON_OK) {
		free(buf);
		snprintf(msg, cap, syn == MOTE_JSON_DEEP ? "JSON nests deeper than %d levels"
						    : "malformed JSON",
			 CJSON_NESTING_LIMIT);
		return 400;
	}
	req->root = cJSON_ParseWithOpts(buf, NULL, 1);
	free(buf);
	if (!req->root) {
		/* the syntax is fine: cJSON ran out of memory */
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	const cJSON *root = req->root;
	if (!cJSON_IsObject(root)) {
		snprintf(msg, cap, "the payload must be a JSON object");
		return 400;
	}
	/* the token first, so that every later refusal can echo it */
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "clientToken");
	if (tok) {
		if (!cJSON_IsString(tok)) {
			snprintf(msg, cap, "clientToken must be a string");
			return 400;
		}
		if (strlen(tok->valuestring) > TWIN_TOKEN_MAX) {
			snprintf(msg, cap, "clientToken is longer than %d bytes", TWIN_TOKEN_MAX);
			return 400;
		}
		strcpy(req->token, tok->valuestring);
		req->has_token = true;
	}
	if ((st = check_dups(root, "the request", msg, cap)))
		return st;
	for (const cJSON *c = root->child; c; c = c->next) {
		if (!key_in(c->string, allowed)) {
			char kb[48];
			snprintf(msg, cap, "unknown key '%s'", short_key(c->string, kb, sizeof kb));
			return 400;
		}
	}
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
	if (ver) {
		double v = cJSON_IsNumber(ver) ? ver->valuedouble : -1;
		/* the range first: the cast is only defined within it */
		if (!cJSON_IsNumber(ver) || !isfinite(v) || v < 0 || v > 9007199254740992.0 ||
		    v != (double)(int64_t)v) {
			snprintf(msg, cap, "version must be a non-negative integer");
			return 400;
		}
		req->has_version = true;
		req->version = (int64_t)v;
	}
	if (kind == TWIN_REQ_GET)
		return 0;
	if (kind == TWIN_REQ_PATCH) {
		req->desired = cJSON_GetObjectItemCaseSensitive(root, "desired");
		if (!req->desired) {
			snprintf(msg, cap, "the body must hold desired");
			return 400;
		}
		return check_section(req->desired, "desired", lim, msg, cap);
	}
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");
	if (!cJSON_IsObject(state)) {
		snprintf(msg, cap, "state must be an object");
		return 400;
	}
	if ((st = check_dups(state, "state", msg, cap)))
		return st;
	for (const cJSON *c = state->child; c; c = c->next) {
		if (!key_in(c->string, state_keys)) {
			char kb[48];
			snprintf(msg, cap, "unknown key '%s' in state (desired or reported)",
				 short_key(c->string, kb, sizeof kb));
			return 400;
		}
	}
	req->desired = cJSON_GetObjectItemCaseSensitive(state, "desired");
	req->reported = cJSON_GetObjectItemCaseSensitive(state, "reported");
	if (!req->desired && !req->reported) {
		snprintf(msg, cap, "state must hold desired or reported");
		return 400;
	}
	if (req->desired && (st = check_section(req->desired, "state.desired", lim, msg, cap)))
		return st;
	if (req->reported && (st = check_section(req->reported, "state.reported", lim, msg, cap)))
		return st;
	return 0;
}

void twin_request_free(struct twin_request *req)
{
	cJSON_Delete(req->root);
	memset(req, 0, sizeof *req);
}

bool twin_doc_init(struct twin_doc *d, int64_t now_ms)
{
	d->desired = cJSON_CreateObject();
	d->reported = cJSON_CreateObject();
	d->meta_desired = cJSON_CreateObject();
	d->meta_reported = cJSON_CreateObject();
	d->version = 0;
	d->timestamp = now_ms;
	d->bytes = 4; /* {}{} */
	if (d->desired && d->reported && d->meta_desired && d->meta_reported)
		return true;
	twin_doc_free(d);
	return false;
}

bool twin_doc_copy(struct twin_doc *dst, const struct twin_doc *src)
{
	dst->desired = cJSON_Duplicate(src->desired, 1);
	dst->reported = cJSON_Duplicate(src->reported, 1);
	dst->meta_desired = cJSON_Duplicate(src->meta_desired, 1);
	dst->meta_reported = cJSON_Duplicate(src->meta_reported, 1);
	dst->version = src->version;
	dst->timestamp = src->timestamp;
	dst->bytes = src->bytes;
	if (dst->desired && dst->reported && dst->meta_desired && dst->meta_reported)
		return true;
	twin_doc_free(dst);
	return false;
}

void twin_doc_free(struct twin_doc *d)
{
	cJSON_Delete(d->desired);
	cJSON_Delete(d->reported);
	cJSON_Delete(d->meta_desired);
	cJSON_Delete(d->meta_reported);
	d->desired = d->reported = d->meta_desired = d->meta_reported = NULL;
}

static cJSON *leaf_meta(int64_t now_ms)
{
	cJSON *m = cJSON_CreateObject();
	if (m && !cJSON_AddNumberToObject(m, "timestamp", (double)now_ms)) {
		cJSON_Delete(m);
		m = NULL;
	}
	return m;
}

/*
 * Sets obj[key] = item, in place of the old member (keeping the order of
 * keys); takes item, also on failure. Not cJSON_ReplaceItemInObject: when
 * copying the key runs out of memory, it still replaces, with a NULL key.
 */
static bool set_item(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!old) {
		if (cJSON_AddItemToObject(obj, key, item))
			return true;
		cJSON_Delete(item);
		return false;
	}
	size_t n = strlen(key) + 1;
	char *k = cJSON_malloc(n); /* freed by cJSON_Delete with the item */
	if (!k) {
		cJSON_Delete(item);
		return false;
	}
	memcpy(k, key, n);
	if (item->string && !(item->type & cJSON_StringIsConst))
		cJSON_free(item->string);
	item->string = k;
	item->type &= ~cJSON_StringIsConst;
	return cJSON_ReplaceItemViaPointer(obj, old, item);
}

/* Deep merge of patch p into target t with its metadata m. */
static bool merge(cJSON *t, cJSON *m, const cJSON *p, int64_t now_ms)
{
	for (const cJSON *c = p->child; c; c = c->next) {
		const char *k = c->string;
		if (cJSON_IsNull(c)) {
			cJSON_DeleteItemFromObjectCaseSensitive(t, k);
			cJSON_DeleteItemFromObjectCaseSensitive(m, k);
			continue;
		}
		if (cJSON_IsObject(c)) {
			cJSON *tk = cJSON_GetObjectItemCaseSensitive(t, k);
			cJSON *mk = cJSON_GetObjectItemCaseSensitive(m, k);
			if (!cJSON_IsObject(tk) || !cJSON_IsObject(mk)) {
				/* a leaf (or nothing) becomes an object: its metadata too */
				if (!set_item(t, k, tk = cJSON_CreateObject()) ||
				    !set_item(m, k, mk = cJSON_CreateObject()))
					return false;
			}
			if (!merge(tk, mk, c, now_ms))
				return false;
			if (!tk->child) {
				cJSON_DeleteItemFromObjectCaseSensitive(t, k);
				cJSON_DeleteItemFromObjectCaseSensitive(m, k);
			}
			continue;
		}
		if (!set_item(t, k, cJSON_Duplicate(c, 1)) || !set_item(m, k, leaf_meta(now_ms)))
			return false;
	}
	return true;
}

static size_t printed_len(const cJSON *v, bool *ok)
{
	char *s = cJSON_PrintUnformatted(v);
	if (!s) {
		*ok = false;
		return 0;
	}
	size_t n = strlen(s);
	cJSON_free(s);
	return n;
}

size_t twin_doc_state_bytes(const struct twin_doc *d)
{
	bool ok = true;
	size_t n = printed_len(d->desired, &ok) + printed_len(d->reported, &ok);
	return ok ? n : SIZE_MAX;
}

static bool apply_section(cJSON **sec, cJSON **meta, const cJSON *p, int64_t now_ms)
{
	if (!p)
		return true;
	if (cJSON_IsNull(p)) {
		cJSON *s = cJSON_CreateObject(), *m = cJSON_CreateObject();
		if (!s || !m) {
			cJSON_Delete(s);
			cJSON_Delete(m);
			return false;
		}
		cJSON_Delete(*sec);
		cJSON_Delete(*meta);
		*sec = s;
		*meta = m;
		return true;
	}
	return merge(*sec, *meta, p, now_ms);
}

int twin_doc_apply(struct twin_doc *d, const struct twin_request *req, int64_t now_ms,
		   const struct twin_limits *lim, char *msg, size_t cap)
{
	size_t before = d->bytes;
	if (!apply_section(&d->desired, &d->meta_desired, req->desired, now_ms) ||
	    !apply_section(&d->reported, &d->meta_reported, req->reported, now_ms)) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	size_t after = twin_doc_state_bytes(d);
	if (after == SIZE_MAX) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	/* a document already over a lowered limit may still shrink */
	if (after > lim->max_state_bytes && after > before) {
		snprintf(msg, cap, "state would be %zu bytes, over the %zu-byte limit", after,
			 lim->max_state_bytes);
		return 413;
	}
	d->version++;
	d->timestamp = now_ms;
	d->bytes = after;
	return 0;
}

static cJSON *delta_of(const cJSON *des, const cJSON *rep)
{
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	for (const cJSON *c = des->child; c; c = c->next) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(rep, c->string);
		cJSON *add = NULL;
		if (cJSON_IsObject(c) && cJSON_IsObject(r)) {
			add = delta_of(c, r);
			if (!add)
				goto fail;
			if (!add->child) {
				cJSON_Delete(add);
				continue;
			}
		} else if (!r || !cJSON_Compare(c, r, 1)) {
			if (!(add = cJSON_Duplicate(c, 1)))
				goto fail;
		} else {
			continue;
		}
		if (!cJSON_AddItemToObject(out, c->string, add)) {
			cJSON_Delete(add);
			goto fail;
		}
	}
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}

cJSON *twin_doc_delta(const struct twin_doc *d)
{
	return delta_of(d->desired, d->reported);
}

/* The part of metadata m that covers the keys of delta (a subset of the
 * desired tree m mirrors). */
static cJSON *prune_meta(const cJSON *delta, const cJSON *m)
{
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	for (const cJSON *c = delta->child; c; c = c->next) {
		const cJSON *mk = cJSON_GetObjectItemCaseSensitive(m, c->string);
		if (!mk)
			continue;
		cJSON *add = cJSON_IsObject(c) ? prune_meta(c, mk) : cJSON_Duplicate(mk, 1);
		if (!add || !cJSON_AddItemToObject(out, c->string, add)) {
			cJSON_Delete(add);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

cJSON *twin_doc_delta_meta(const struct twin_doc *d, const cJSON *delta)
{
	return prune_meta(delta, d->meta_desired);
}

cJSON *twin_request_meta(const cJSON *section, int64_t now_ms)
{
	if (!cJSON_IsObject(section))
		return leaf_meta(now_ms);
	cJSON *out = cJSON_CreateObject();
	if (!out)
		return NULL;
	for (const cJSON *c = section->child; c; c = c->next) {
		cJSON *add = twin_request_meta(c, now_ms);
		if (!add || !cJSON_AddItemToObject(out, c->string, add)) {
			cJSON_Delete(add);
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

/* Adds a duplicate of v under key; false on failure. */
static bool add_dup(cJSON *obj, const char *key, const cJSON *v)
{
	cJSON *c = cJSON_Duplicate(v, 1);
	if (c && cJSON_AddItemToObject(obj, key, c))
		return true;
	cJSON_Delete(c);
	return false;
}

static cJSON *doc_json(const struct twin_doc *d, const cJSON *delta, bool with_delta,
		       bool with_ts)
{
	cJSON *out = cJSON_CreateObject();
	cJSON *state = cJSON_AddObjectToObject(out, "state");
	cJSON *meta = cJSON_AddObjectToObject(out, "metadata");
	bool ok = out && state && meta && add_dup(state, "desired", d->desired) &&
		  add_dup(state, "reported", d->reported);
	if (ok && with_delta) {
		cJSON *own = delta ? NULL : twin_doc_delta(d);
		ok = (delta || own) && add_dup(state, "delta", delta ? delta : own);
		cJSON_Delete(own);
	}
	ok = ok && add_dup(meta, "desired", d->meta_desired) &&
	     add_dup(meta, "reported", d->meta_reported) &&
	     cJSON_AddNumberToObject(out, "version", (double)d->version) &&
	     (!with_ts || cJSON_AddNumberToObject(out, "timestamp", (double)d->timestamp));
	if (!ok) {
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

cJSON *twin_doc_json(const struct twin_doc *d, const cJSON *delta)
{
	return doc_json(d, delta, true, true);
}

cJSON *twin_doc_history_json(const struct twin_doc *d)
{
	return doc_json(d, NULL, false, false);
}

char *twin_doc_store_text(const struct twin_doc *d)
{
	cJSON *j = doc_json(d, NULL, false, true);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return s;
}

/* Takes obj[key] out of obj if it is an object, else makes an empty one. */
static cJSON *take_object(cJSON *obj, const char *key)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (cJSON_IsObject(c))
		return cJSON_DetachItemViaPointer(obj, c);
	return cJSON_CreateObject();
}

bool twin_doc_load(struct twin_doc *d, const char *text, int64_t version)
{
	memset(d, 0, sizeof *d);
	cJSON *j = cJSON_Parse(text);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return false;
	}
	cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
	d->desired = take_object(state, "desired");
	d->reported = take_object(state, "reported");
	d->meta_desired = take_object(meta, "desired");
	d->meta_reported = take_object(meta, "reported");
	d->version = version;
	d->timestamp = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0;
	cJSON_Delete(j);
	if (d->desired && d->reported && d->meta_desired && d->meta_reported &&
	    (d->bytes = twin_doc_state_bytes(d)) != SIZE_MAX)
		return true;
	twin_doc_free(d);
	return false;
}
