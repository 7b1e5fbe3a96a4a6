/*
 * registry.c - the device registry: the devices table and its in-memory
 * index (see registry.h).
 *
 * The index holds what the pipeline asks per message (does the device
 * exist, its model) and what changes per message (last seen, online, the
 * last error), so a telemetry message costs a hash look-up and no SQL.
 * Those changing fields are written back in one transaction per second
 * (registry_flush); everything else (name, tags) lives in the table only and
 * the REST calls read it there after a flush.
 */
#include "registry/registry.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "pki/pki.h"
#include "registry/registry_int.h"

#define ID_MAX 128
#define NAME_MAX_LEN 128
#define MODEL_MAX 64
#define TAGS_MAX 32
#define TAG_KEY_MAX 64
#define TAG_VALUE_MAX 256
#define ERROR_MAX 256
#define SERIAL_MAX 80

/*
 * One per registered device, kept for every device (a fleet can be
 * 100,000): strings are sized to what they hold, not to their maximum.
 */
struct dev {
	struct dev *next;       /* hash chain */
	char *model;            /* owned, NULL when none */
	char *serial;           /* owned, NULL when none */
	char *last_error;       /* owned, NULL when none */
	int64_t last_error_at;  /* ms; 0: none, or before the column existed */
	int64_t last_seen;      /* 0: never */
	uint64_t invalid;
	unsigned connections;   /* live connections (a takeover overlaps) */
	bool dirty;             /* runtime fields differ from the table */
	char id[];              /* NUL-terminated, at most ID_MAX */
};

struct registry {
	sqlite3 *db;            /* borrowed */
	struct dev **slots;
	size_t nslots, count, online;
	long long data_version; /* PRAGMA data_version at the last load */
	bool any_dirty;
	registry_removed_fn removed;
	void *removed_ctx;
};

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct dev *find(const struct registry *r, const char *id)
{
	for (struct dev *d = r->slots[hash_id(id) & (r->nslots - 1)]; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

static enum mote_err grow(struct registry *r)
{
	size_t n = r->nslots * 2;
	struct dev **s = calloc(n, sizeof *s);
	if (!s)
		return MOTE_ENOMEM;
	for (size_t i = 0; i < r->nslots; i++) {
		for (struct dev *d = r->slots[i], *next; d; d = next) {
			next = d->next;
			size_t k = hash_id(d->id) & (n - 1);
			d->next = s[k];
			s[k] = d;
		}
	}
	free(r->slots);
	r->slots = s;
	r->nslots = n;
	return MOTE_OK;
}

/*
 * Sets an owned string field to s (truncated to max bytes; NULL or "" clears
 * it). Unchanged when equal, so a reconnect with the same serial allocates
 * nothing. MOTE_ENOMEM leaves the old value.
 */
static enum mote_err set_field(char **field, const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : 0;
	if (*field && n && strncmp(*field, s, n) == 0 && (*field)[n] == '\0')
		return MOTE_OK;
	char *copy = NULL;
	if (n) {
		copy = malloc(n + 1);
		if (!copy)
			return MOTE_ENOMEM;
		memcpy(copy, s, n);
		copy[n] = '\0';
	}
	free(*field);
	*field = copy;
	return MOTE_OK;
}

static void dev_free(struct dev *d)
{
	free(d->model);
	free(d->serial);
	free(d->last_error);
	free(d);
}

static struct dev *insert(struct registry *r, const char *id, const char *model)
{
	if (r->count + 1 > r->nslots && grow(r) != MOTE_OK)
		return NULL;
	size_t idlen = strnlen(id, ID_MAX);
	struct dev *d = calloc(1, sizeof *d + idlen + 1);
	if (!d)
		return NULL;
	memcpy(d->id, id, idlen);
	if (set_field(&d->model, model, MODEL_MAX) != MOTE_OK) {
		free(d);
		return NULL;
	}
	size_t k = hash_id(id) & (r->nslots - 1);
	d->next = r->slots[k];
	r->slots[k] = d;
	r->count++;
	return d;
}

static void unlink_dev(struct registry *r, const char *id)
{
	struct dev **pp = &r->slots[hash_id(id) & (r->nslots - 1)];
	for (; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			struct dev *d = *pp;
			*pp = d->next;
			if (d->connections)
				r->online--;
			dev_free(d);
			r->count--;
			return;
		}
	}
}

static void clear_index(struct registry *r)
{
	for (size_t i = 0; i < r->nslots; i++) {
		for (struct dev *d = r->slots[i], *next; d; d = next) {
			next = d->next;
			dev_free(d);
		}
		r->slots[i] = NULL;
	}
	r->count = 0;
	r->online = 0;
}

static long long data_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	long long v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

/*
 * (Re)loads the index from the table. Live connection counts survive a
 * reload: they are facts about sockets, not about the table.
 */
static enum mote_err load(struct registry *r)
{
	struct conn_keep {
		char id[ID_MAX + 1];
		unsigned n;
	} *keep = NULL;
	size_t nkeep = 0;
	if (r->online) {
		keep = calloc(r->online, sizeof *keep);
		if (!keep)
			return MOTE_ENOMEM;
		for (size_t i = 0; i < r->nslots; i++)
			for (struct dev *d = r->slots[i]; d; d = d->next)
				if (d->connections && nkeep < r->online) {
					snprintf(keep[nkeep].id, sizeof keep[nkeep].id, "%s", d->id);
					keep[nkeep++].n = d->connections;
				}
	}
	clear_index(r);
	sqlite3_stmt *st;
	enum mote_err err = MOTE_OK;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT id, model, cert_serial, last_error, last_seen, "
			       "invalid_payloads, last_error_at FROM devices",
			       -1, &st, NULL) != SQLITE_OK) {
		free(keep);
		return MOTE_EIO;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct dev *d = insert(r, (const char *)sqlite3_column_text(st, 0),
				       (const char *)sqlite3_column_text(st, 1));
		if (!d) {
			err = MOTE_ENOMEM;
			break;
		}
		const unsigned char *s = sqlite3_column_text(st, 2);
		if (s && set_field(&d->serial, (const char *)s, SERIAL_MAX) != MOTE_OK) {
			err = MOTE_ENOMEM;
			break;
		}
		s = sqlite3_column_text(st, 3);
		if (s)
			d->last_error = strdup((const char *)s);
		d->last_seen = sqlite3_column_int64(st, 4);
		d->invalid = (uint64_t)sqlite3_column_int64(st, 5);
		d->last_error_at = sqlite3_column_int64(st, 6);
	}
	if (err == MOTE_OK && rc != SQLITE_DONE)
		err = MOTE_EIO;
	sqlite3_finalize(st);
	for (size_t i = 0; i < nkeep; i++) {
		struct dev *d = find(r, keep[i].id);
		if (d) {
			d->connections = keep[i].n;
			r->online++;
		}
	}
	free(keep);
	r->data_version = data_version(r->db);
	return err;
}

/* A mote.db from before last_error_at (session 6 and older) gets the column;
 * its old errors have no time (0) and count as old ones. */
static int add_missing_columns(sqlite3 *db, char **msg)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('devices') "
					"WHERE name = 'last_error_at'",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return SQLITE_OK;
	if (rc != SQLITE_DONE)
		return rc;
	return sqlite3_exec(db, "ALTER TABLE devices ADD COLUMN last_error_at INTEGER NOT NULL "
				"DEFAULT 0",
			    NULL, NULL, msg);
}

enum mote_err registry_open(sqlite3 *db, struct registry **out, char *err, size_t errcap)
{
	static const char schema[] =
		"CREATE TABLE IF NOT EXISTS devices ("
		" id TEXT PRIMARY KEY,"
		" name TEXT NOT NULL DEFAULT '',"
		" model TEXT NOT NULL DEFAULT '',"
		" tags TEXT NOT NULL DEFAULT '{}',"
		" created INTEGER NOT NULL,"
		" last_seen INTEGER NOT NULL DEFAULT 0,"
		" online INTEGER NOT NULL DEFAULT 0,"
		" cert_serial TEXT,"
		" last_error TEXT,"
		" invalid_payloads INTEGER NOT NULL DEFAULT 0,"
		" last_error_at INTEGER NOT NULL DEFAULT 0"
		") WITHOUT ROWID";
	char *msg = NULL;
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK ||
	    add_missing_columns(db, &msg) != SQLITE_OK) {
		snprintf(err, errcap, "cannot create the devices table: %s",
			 msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return MOTE_EIO;
	}
	struct registry *r = calloc(1, sizeof *r);
	if (!r)
		return MOTE_ENOMEM;
	r->db = db;
	r->nslots = 64;
	r->slots = calloc(r->nslots, sizeof *r->slots);
	if (!r->slots) {
		free(r);
		return MOTE_ENOMEM;
	}
	enum mote_err e = load(r);
	if (e != MOTE_OK) {
		snprintf(err, errcap, "cannot read the devices table: %s", sqlite3_errmsg(db));
		registry_close(r);
		return e;
	}
	*out = r;
	return MOTE_OK;
}

void registry_close(struct registry *r)
{
	if (!r)
		return;
	clear_index(r);
	free(r->slots);
	free(r);
}

void registry_on_removed(struct registry *r, registry_removed_fn fn, void *ctx)
{
	r->removed = fn;
	r->removed_ctx = ctx;
}

bool registry_refresh(struct registry *r)
{
	long long v = data_version(r->db);
	if (v == r->data_version)
		return false;
	/* Our own unflushed fields would be lost by a reload: write them first. */
	registry_flush(r);
	char (*before)[ID_MAX + 1] = NULL;
	size_t n = 0;
	if (r->removed && r->count && (before = malloc(r->count * sizeof *before))) {
		for (size_t i = 0; i < r->nslots; i++)
			for (struct dev *d = r->slots[i]; d; d = d->next)
				snprintf(before[n++], sizeof *before, "%s", d->id);
	}
	if (load(r) != MOTE_OK)
		MOTE_WARN("registry", "event=reload_failed why=\"%s\"", sqlite3_errmsg(r->db));
	for (size_t i = 0; i < n; i++)
		if (!find(r, before[i]))
			r->removed(r->removed_ctx, before[i]);
	free(before);
	return true;
}

bool registry_exists(struct registry *r, const char *id)
{
	return find(r, id) != NULL;
}

const char *registry_model(struct registry *r, const char *id)
{
	struct dev *d = find(r, id);
	return d ? (d->model ? d->model : "") : NULL;
}

const char *registry_cert_serial(struct registry *r, const char *id)
{
	struct dev *d = find(r, id);
	return d ? d->serial : NULL;
}

uint64_t registry_count(struct registry *r)
{
	return r->count;
}

uint64_t registry_online_count(struct registry *r)
{
	return r->online;
}

/* ---- validation of what people type ---- */

static bool model_ok(const char *m)
{
	size_t n = strlen(m);
	if (n > MODEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = m[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* tags: an object of at most TAGS_MAX string values. */
static bool tags_ok(const cJSON *tags, char *err, size_t errcap)
{
	if (!cJSON_IsObject(tags)) {
		snprintf(err, errcap, "\"tags\" must be an object of strings, e.g. {\"site\":\"north\"}");
		return false;
	}
	int n = 0;
	for (const cJSON *t = tags->child; t; t = t->next) {
		if (++n > TAGS_MAX) {
			snprintf(err, errcap, "at most %d tags", TAGS_MAX);
			return false;
		}
		size_t klen = strlen(t->string);
		if (klen == 0 || klen > TAG_KEY_MAX || strchr(t->string, ':')) {
			snprintf(err, errcap, "tag names are 1..%d bytes without ':'", TAG_KEY_MAX);
			return false;
		}
		if (!cJSON_IsString(t) || strlen(t->valuestring) > TAG_VALUE_MAX) {
			snprintf(err, errcap, "tag \"%.64s\" must be a string of at most %d bytes",
				 t->string, TAG_VALUE_MAX);
			return false;
		}
	}
	return true;
}

enum mote_err registry_add(struct registry *r, const char *id, const char *name,
			   const char *model, const char *tags_json, int64_t now_ms, char *err,
			   size_t errcap)
{
	if (mote_pki_check_id(id, err, errcap) != MOTE_OK)
		return MOTE_EINVAL;
	if (strlen(id) > ID_MAX) {
		snprintf(err, errcap, "device ids are at most %d bytes", ID_MAX);
		return MOTE_EINVAL;
	}
	cJSON *t = NULL;
	if (tags_json && !(t = cJSON_Parse(tags_json))) {
		snprintf(err, errcap, "\"tags\" is not valid JSON");
		return MOTE_EINVAL;
	}
	enum mote_err e = registry_check_fields(name, model, t, err, errcap);
	cJSON_Delete(t);
	if (e != MOTE_OK)
		return e;
	registry_refresh(r);
	if (find(r, id)) {
		snprintf(err, errcap, "device '%s' already exists", id);
		return MOTE_EEXIST;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO devices(id, name, model, tags, created) "
			       "VALUES(?1, ?2, ?3, ?4, ?5)",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errcap, "%s", sqlite3_errmsg(r->db));
		return MOTE_EIO;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, name ? name : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, model ? model : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, tags_json ? tags_json : "{}", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 5, now_ms);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		snprintf(err, errcap, "device '%s' already exists", id);
		return MOTE_EEXIST;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errcap, "%s", sqlite3_errmsg(r->db));
		return MOTE_EIO;
	}
	if (!insert(r, id, model))
		return MOTE_ENOMEM;
	r->data_version = data_version(r->db);
	return MOTE_OK;
}

enum mote_err registry_remove(struct registry *r, const char *id)
{
	registry_refresh(r);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "DELETE FROM devices WHERE id = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return MOTE_EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return MOTE_EIO;
	bool had = sqlite3_changes(r->db) > 0 || find(r, id);
	unlink_dev(r, id);
	r->data_version = data_version(r->db);
	return had ? MOTE_OK : MOTE_ENOTFOUND;
}

sqlite3 *registry_db(struct registry *r)
{
	return r->db;
}

enum mote_err registry_check_fields(const char *name, const char *model, const cJSON *tags,
				    char *err, size_t errcap)
{
	if (name && strlen(name) > NAME_MAX_LEN) {
		snprintf(err, errcap, "names are at most %d bytes", NAME_MAX_LEN);
		return MOTE_EINVAL;
	}
	if (model && !model_ok(model)) {
		snprintf(err, errcap, "a model is at most %d of letters, digits, '.', '_', '-'",
			 MODEL_MAX);
		return MOTE_EINVAL;
	}
	if (tags && !tags_ok(tags, err, errcap))
		return MOTE_EINVAL;
	return MOTE_OK;
}

enum mote_err registry_update(struct registry *r, const char *id, const char *name,
			      const char *model, const char *tags_json, char *err, size_t errcap)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE devices SET name = COALESCE(?2, name), model = COALESCE(?3, "
			       "model), tags = COALESCE(?4, tags) WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errcap, "%s", sqlite3_errmsg(r->db));
		return MOTE_EIO;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (name)
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (model)
		sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
	if (tags_json)
		sqlite3_bind_text(st, 4, tags_json, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errcap, "%s", sqlite3_errmsg(r->db));
		return MOTE_EIO;
	}
	if (sqlite3_changes(r->db) == 0) {
		snprintf(err, errcap, "no device '%.128s'", id);
		return MOTE_ENOTFOUND;
	}
	struct dev *d = find(r, id);
	if (d && model && set_field(&d->model, model, MODEL_MAX) != MOTE_OK)
		MOTE_WARN("registry", "event=index_stale device=%s why=\"out of memory\"", id);
	r->data_version = data_version(r->db);
	return MOTE_OK;
}

/* ---- connection state, batched ---- */

void registry_set_online(struct registry *r, const char *id, bool online, int64_t now_ms,
			 const char *cert_serial)
{
	struct dev *d = find(r, id);
	if (!d)
		return;
	if (online) {
		if (d->connections++ == 0)
			r->online++;
		if (cert_serial && set_field(&d->serial, cert_serial, SERIAL_MAX) != MOTE_OK)
			MOTE_WARN("registry", "event=serial_not_kept device=%s why=\"out of memory\"",
				  id);
	} else if (d->connections > 0 && --d->connections == 0) {
		r->online--;
	}
	d->last_seen = now_ms;
	d->dirty = true;
	r->any_dirty = true;
}

void registry_seen(struct registry *r, const char *id, int64_t now_ms)
{
	struct dev *d = find(r, id);
	if (!d)
		return;
	d->last_seen = now_ms;
	d->dirty = true;
	r->any_dirty = true;
}

void registry_set_error(struct registry *r, const char *id, const char *msg, int64_t now_ms)
{
	struct dev *d = find(r, id);
	if (!d)
		return;
	char *copy = strndup(msg, ERROR_MAX);
	if (copy) {
		free(d->last_error);
		d->last_error = copy;
	}
	d->invalid++;
	d->last_error_at = now_ms;
	d->last_seen = now_ms;
	d->dirty = true;
	r->any_dirty = true;
}

enum mote_err registry_flush(struct registry *r)
{
	if (!r->any_dirty)
		return MOTE_OK;
	sqlite3_stmt *st;
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return MOTE_EIO;
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE devices SET last_seen = ?2, online = ?3, cert_serial = "
			       "COALESCE(?4, cert_serial), last_error = ?5, invalid_payloads = ?6, "
			       "last_error_at = ?7 WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
		return MOTE_EIO;
	}
	enum mote_err err = MOTE_OK;
	for (size_t i = 0; i < r->nslots && err == MOTE_OK; i++) {
		for (struct dev *d = r->slots[i]; d; d = d->next) {
			if (!d->dirty)
				continue;
			sqlite3_bind_text(st, 1, d->id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, d->last_seen);
			sqlite3_bind_int(st, 3, d->connections > 0);
			if (d->serial)
				sqlite3_bind_text(st, 4, d->serial, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 4);
			if (d->last_error)
				sqlite3_bind_text(st, 5, d->last_error, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 5);
			sqlite3_bind_int64(st, 6, (sqlite3_int64)d->invalid);
			sqlite3_bind_int64(st, 7, d->last_error_at);
			if (sqlite3_step(st) != SQLITE_DONE) {
				err = MOTE_EIO;
				break;
			}
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			d->dirty = false;
		}
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(r->db, err == MOTE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) !=
	    SQLITE_OK)
		err = MOTE_EIO;
	if (err == MOTE_OK)
		r->any_dirty = false;
	r->data_version = data_version(r->db);
	return err;
}

enum mote_err registry_all_offline(struct registry *r)
{
	if (sqlite3_exec(r->db, "UPDATE devices SET online = 0 WHERE online != 0", NULL, NULL,
			 NULL) != SQLITE_OK)
		return MOTE_EIO;
	r->data_version = data_version(r->db);
	return MOTE_OK;
}
