/*
 * registry_json.c - the registry's REST shapes: list with filters, get,
 * create, update (see registry.h for the JSON of a device).
 *
 * Reads go to the table after registry_flush, so the answer includes the
 * latest connection state without a second source of truth.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"
#include "registry/registry_int.h"

#define COLUMNS "id, name, model, tags, created, last_seen, online, cert_serial, " \
		"last_error, invalid_payloads, last_error_at"

static cJSON *row_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 0));
	cJSON_AddStringToObject(o, "name", (const char *)sqlite3_column_text(st, 1));
	cJSON_AddStringToObject(o, "model", (const char *)sqlite3_column_text(st, 2));
	cJSON *tags = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
	cJSON_AddItemToObject(o, "tags", tags ? tags : cJSON_CreateObject());
	cJSON_AddNumberToObject(o, "created", (double)sqlite3_column_int64(st, 4));
	int64_t seen = sqlite3_column_int64(st, 5);
	if (seen)
		cJSON_AddNumberToObject(o, "last_seen", (double)seen);
	else
		cJSON_AddNullToObject(o, "last_seen");
	cJSON_AddBoolToObject(o, "online", sqlite3_column_int(st, 6) != 0);
	const unsigned char *s = sqlite3_column_text(st, 7);
	if (s)
		cJSON_AddStringToObject(o, "cert_serial", (const char *)s);
	else
		cJSON_AddNullToObject(o, "cert_serial");
	s = sqlite3_column_text(st, 8);
	if (s)
		cJSON_AddStringToObject(o, "last_error", (const char *)s);
	else
		cJSON_AddNullToObject(o, "last_error");
	cJSON_AddNumberToObject(o, "invalid_payloads", (double)sqlite3_column_int64(st, 9));
	int64_t err_at = sqlite3_column_int64(st, 10);
	if (err_at)
		cJSON_AddNumberToObject(o, "last_error_at", (double)err_at);
	else
		cJSON_AddNullToObject(o, "last_error_at");
	return o;
}

/* Splits "key:value" (or "key") into the two bind values. */
static void split_tag(const char *tag, char *key, size_t keycap, const char **value)
{
	const char *colon = strchr(tag, ':');
	size_t klen = colon ? (size_t)(colon - tag) : strlen(tag);
	if (klen >= keycap)
		klen = keycap - 1;
	memcpy(key, tag, klen);
	key[klen] = '\0';
	*value = colon ? colon + 1 : NULL;
}

void registry_list_json(struct registry *r, const struct registry_filter *f,
			struct mote_reply *out)
{
	registry_refresh(r);
	registry_flush(r);
	uint32_t limit = f->limit ? f->limit : 100;
	if (limit > 1000)
		limit = 1000;
	/* Every filter is a bound parameter; an absent one (NULL) matches all. */
	static const char where[] =
		" WHERE (?1 IS NULL OR model = ?1)"
		" AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(devices.tags)"
		"      WHERE key = ?2 AND (?3 IS NULL OR value = ?3)))"
		" AND (?4 IS NULL OR online = ?4)"
		" AND (?5 IS NULL OR instr(id, ?5) > 0 OR instr(name, ?5) > 0)";
	char sql[1024];
	snprintf(sql, sizeof sql, "SELECT " COLUMNS " FROM devices%s ORDER BY id LIMIT ?6 OFFSET ?7",
		 where);
	char count_sql[768];
	snprintf(count_sql, sizeof count_sql, "SELECT count(*) FROM devices%s", where);

	char key[128];
	const char *value = NULL;
	if (f->tag)
		split_tag(f->tag, key, sizeof key, &value);
	int online = -1;
	if (f->status) {
		if (strcmp(f->status, "online") == 0)
			online = 1;
		else if (strcmp(f->status, "offline") == 0)
			online = 0;
		else {
			mote_reply_error(out, 400, "status must be online or offline");
			return;
		}
	}
	sqlite3 *db = registry_db(r);
	sqlite3_stmt *st[2] = { NULL, NULL };
	const char *sqls[2] = { sql, count_sql };
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(o, "devices");
	long long total = 0;
	for (int i = 0; i < 2; i++) {
		if (sqlite3_prepare_v2(db, sqls[i], -1, &st[i], NULL) != SQLITE_OK) {
			cJSON_Delete(o);
			mote_reply_error(out, 500, "devices query: %s", sqlite3_errmsg(db));
			return;
		}
		sqlite3_stmt *s = st[i];
		if (f->model)
			sqlite3_bind_text(s, 1, f->model, -1, SQLITE_STATIC);
		if (f->tag)
			sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
		if (value)
			sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
		if (online >= 0)
			sqlite3_bind_int(s, 4, online);
		if (f->q)
			sqlite3_bind_text(s, 5, f->q, -1, SQLITE_STATIC);
		if (i == 0) {
			sqlite3_bind_int64(s, 6, limit);
			sqlite3_bind_int64(s, 7, f->offset);
			while (sqlite3_step(s) == SQLITE_ROW)
				cJSON_AddItemToArray(arr, row_json(s));
		} else if (sqlite3_step(s) == SQLITE_ROW) {
			total = sqlite3_column_int64(s, 0);
		}
		sqlite3_finalize(s);
	}
	cJSON_AddNumberToObject(o, "total", (double)total);
	mote_reply_cjson(out, 200, o);
}

void registry_get_json(struct registry *r, const char *id, struct mote_reply *out)
{
	registry_refresh(r);
	registry_flush(r);
	sqlite3 *db = registry_db(r);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT " COLUMNS " FROM devices WHERE id = ?1", -1, &st,
			       NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "devices query: %s", sqlite3_errmsg(db));
		return;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		mote_reply_cjson(out, 200, row_json(st));
	else
		mote_reply_error(out, 404, "no device '%.128s'", id);
	sqlite3_finalize(st);
}

/* A string member or NULL; false when present with another type. */
static bool opt_string(const cJSON *o, const char *name, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return true;
	if (!cJSON_IsString(v))
		return false;
	*out = v->valuestring;
	return true;
}

/* Members other than the known ones are refused: a typo should not pass silently. */
static const char *unknown_member(const cJSON *o, const char *const *known)
{
	for (const cJSON *m = o->child; m; m = m->next) {
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok = ok || strcmp(m->string, *k) == 0;
		if (!ok)
			return m->string;
	}
	return NULL;
}

void registry_create_json(struct registry *r, const char *body, size_t len, int64_t now_ms,
			  struct mote_reply *out)
{
	static const char *const known[] = { "id", "name", "model", "tags", NULL };
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		mote_reply_error(out, 400, "the body must be a JSON object such as "
					   "{\"id\":\"pump-7\",\"model\":\"pump\"}");
		return;
	}
	const char *id, *name, *model, *bad = unknown_member(o, known);
	if (bad) {
		mote_reply_error(out, 400, "unknown member \"%.64s\" (known: id, name, model, tags)",
				 bad);
		cJSON_Delete(o);
		return;
	}
	if (!opt_string(o, "id", &id) || !id || !opt_string(o, "name", &name) ||
	    !opt_string(o, "model", &model)) {
		mote_reply_error(out, 400, "\"id\" (required), \"name\" and \"model\" are strings");
		cJSON_Delete(o);
		return;
	}
	char *tags = NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tags");
	if (t && !cJSON_IsNull(t) && !(tags = cJSON_PrintUnformatted(t))) {
		cJSON_Delete(o);
		mote_reply_error(out, 500, "out of memory");
		return;
	}
	char err[256];
	enum mote_err e = registry_add(r, id, name, model, tags, now_ms, err, sizeof err);
	free(tags);
	if (e == MOTE_OK)
		registry_get_json(r, id, out);
	else
		mote_reply_error(out, e == MOTE_EEXIST ? 409 : e == MOTE_EINVAL ? 400 : 500, "%s",
				 e == MOTE_ENOMEM ? "out of memory" : err);
	if (e == MOTE_OK && out->status == 200)
		out->status = 201;
	cJSON_Delete(o);
}

void registry_update_json(struct registry *r, const char *id, const char *body, size_t len,
			  struct mote_reply *out)
{
	static const char *const known[] = { "name", "model", "tags", NULL };
	registry_refresh(r);
	if (!registry_exists(r, id)) {
		mote_reply_error(out, 404, "no device '%.128s'", id);
		return;
	}
	cJSON *o = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		mote_reply_error(out, 400, "the body must be a JSON object with name, model or tags");
		return;
	}
	const char *name, *model, *bad = unknown_member(o, known);
	char err[256];
	if (bad) {
		mote_reply_error(out, 400, "unknown member \"%.64s\" (known: name, model, tags)", bad);
		cJSON_Delete(o);
		return;
	}
	if (!opt_string(o, "name", &name) || !opt_string(o, "model", &model)) {
		mote_reply_error(out, 400, "\"name\" and \"model\" are strings");
		cJSON_Delete(o);
		return;
	}
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tags");
	if (registry_check_fields(name, model, t, err, sizeof err) != MOTE_OK) {
		mote_reply_error(out, 400, "%s", err);
		cJSON_Delete(o);
		return;
	}
	char *tags = t ? cJSON_PrintUnformatted(t) : NULL;
	enum mote_err e = registry_update(r, id, name, model, tags, err, sizeof err);
	free(tags);
	cJSON_Delete(o);
	if (e != MOTE_OK) {
		mote_reply_error(out, e == MOTE_ENOTFOUND ? 404 : 500, "%s", err);
		return;
	}
	registry_get_json(r, id, out);
}
