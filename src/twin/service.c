/*
 * service.c - the twin service: a bounded LRU cache of documents in front
 * of the twin_documents table, the MQTT request/reply protocol, the REST
 * helpers and the per-device token bucket.
 *
 * Every accepted update is applied to a copy of the cached document,
 * written to SQLite (one autocommit statement), and only then swapped in,
 * so a failed write (500) leaves memory and disk as they were. The cache
 * holds at most cache_docs documents (least recently used evicted); a
 * device's token bucket lives in its cache entry, and a device that is
 * busy enough to be limited is never the least recently used one.
 *
 * Threading: one thread (the platform pipeline); no locks.
 */
#include "twin/doc.h"
#include "twin/twin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CACHE_DOCS 1024

struct entry {
	char *id;
	uint32_t hash;
	struct twin_doc doc;
	double tokens;
	int64_t bucket_ms;
	struct entry *hnext;
	struct entry *prev, *next; /* LRU: lru.next is the most recent */
};

struct twin_service {
	sqlite3 *db;
	sqlite3_stmt *sel, *put, *del;
	struct twin_limits lim;
	const struct mote_sink *sink;
	struct entry **table;
	size_t nbuckets, count, cap;
	struct entry lru;
	struct twin_stats stats;
};

void twin_limits_defaults(struct twin_limits *l)
{
	memset(l, 0, sizeof *l);
	l->max_state_bytes = 8192;
	l->max_depth = 6;
	l->updates_per_s = 10;
	l->updates_burst = 20;
	l->cache_docs = DEFAULT_CACHE_DOCS;
}

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void lru_unlink(struct entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_front(struct twin_service *ts, struct entry *e)
{
	e->next = ts->lru.next;
	e->prev = &ts->lru;
	ts->lru.next->prev = e;
	ts->lru.next = e;
}

static struct entry *cache_find(struct twin_service *ts, const char *id)
{
	uint32_t h = hash_id(id);
	for (struct entry *e = ts->table[h & (ts->nbuckets - 1)]; e; e = e->hnext) {
		if (e->hash == h && strcmp(e->id, id) == 0) {
			lru_unlink(e);
			lru_front(ts, e);
			return e;
		}
	}
	return NULL;
}

static void entry_free(struct entry *e)
{
	twin_doc_free(&e->doc);
	free(e->id);
	free(e);
}

static void cache_remove(struct twin_service *ts, struct entry *e)
{
	struct entry **pp = &ts->table[e->hash & (ts->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	ts->count--;
	entry_free(e);
}

/* Takes doc (also on failure: then it is freed and NULL returned). */
static struct entry *cache_add(struct twin_service *ts, const char *id, struct twin_doc *doc)
{
	struct entry *e = calloc(1, sizeof *e);
	if (e)
		e->id = strdup(id);
	if (!e || !e->id) {
		free(e);
		twin_doc_free(doc);
		return NULL;
	}
	if (ts->count >= ts->cap)
		cache_remove(ts, ts->lru.prev);
	e->hash = hash_id(id);
	e->doc = *doc;
	e->tokens = ts->lim.updates_burst;
	e->bucket_ms = INT64_MIN;
	size_t b = e->hash & (ts->nbuckets - 1);
	e->hnext = ts->table[b];
	ts->table[b] = e;
	lru_front(ts, e);
	ts->count++;
	return e;
}

static int persist(struct twin_service *ts, const char *id, const struct twin_doc *d)
{
	char *text = twin_doc_store_text(d);
	if (!text)
		return 500;
	sqlite3_reset(ts->put);
	int rc = sqlite3_bind_text(ts->put, 1, id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(ts->put, 2, text, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(ts->put, 3, d->version);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(ts->put, 4, d->timestamp);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(ts->put);
	sqlite3_reset(ts->put);
	sqlite3_clear_bindings(ts->put);
	cJSON_free(text);
	return rc == SQLITE_DONE ? 0 : 500;
}

/*
 * The entry of a device: from the cache, else from the table. *status:
 * 404 when there is no twin (and create is false), 500 on a failure.
 * create: make (and store) an empty twin when there is none.
 */
static struct entry *lookup(struct twin_service *ts, const char *id, bool create,
			    int64_t now_ms, int *status)
{
	struct entry *e = cache_find(ts, id);
	struct twin_doc doc;
	if (e)
		return e;
	*status = 500; /* left as is on success */
	sqlite3_reset(ts->sel);
	if (sqlite3_bind_text(ts->sel, 1, id, -1, SQLITE_STATIC) != SQLITE_OK)
		return NULL;
	int rc = sqlite3_step(ts->sel);
	if (rc == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(ts->sel, 0);
		bool ok = text && twin_doc_load(&doc, text, sqlite3_column_int64(ts->sel, 1));
		sqlite3_reset(ts->sel);
		sqlite3_clear_bindings(ts->sel);
		return ok ? cache_add(ts, id, &doc) : NULL;
	}
	sqlite3_reset(ts->sel);
	sqlite3_clear_bindings(ts->sel);
	if (rc != SQLITE_DONE)
		return NULL;
	if (!create) {
		*status = 404;
		return NULL;
	}
	if (!twin_doc_init(&doc, now_ms))
		return NULL;
	if (persist(ts, id, &doc)) {
		twin_doc_free(&doc);
		return NULL;
	}
	return cache_add(ts, id, &doc);
}

/* One token from the device's bucket; false: over the rate (429). */
static bool take_token(struct twin_service *ts, struct entry *e, int64_t now_ms)
{
	if (ts->lim.updates_per_s == 0)
		return true;
	if (e->bucket_ms != INT64_MIN && now_ms > e->bucket_ms) {
		e->tokens += (double)(now_ms - e->bucket_ms) * ts->lim.updates_per_s / 1000.0;
		if (e->tokens > ts->lim.updates_burst)
			e->tokens = ts->lim.updates_burst;
	}
	if (e->bucket_ms == INT64_MIN || now_ms > e->bucket_ms)
		e->bucket_ms = now_ms;
	if (e->tokens < 1.0)
		return false;
	e->tokens -= 1.0;
	return true;
}

enum mote_err twin_service_open(sqlite3 *db, const struct twin_limits *lim,
				const struct mote_sink *sink, struct twin_service **out, char *err,
				size_t errcap)
{
	static const char *const schema =
		"CREATE TABLE IF NOT EXISTS twin_documents ("
		" device_id TEXT PRIMARY KEY NOT NULL,"
		" doc TEXT NOT NULL,"
		" version INTEGER NOT NULL,"
		" updated_ms INTEGER NOT NULL)";
	struct twin_service *ts = calloc(1, sizeof *ts);
	char *emsg = NULL;

	*out = NULL;
	if (!ts) {
		snprintf(err, errcap, "twins: out of memory");
		return MOTE_ENOMEM;
	}
	if (lim)
		ts->lim = *lim;
	else
		twin_limits_defaults(&ts->lim);
	if (ts->lim.max_state_bytes == 0)
		ts->lim.max_state_bytes = 8192;
	if (ts->lim.max_depth == 0)
		ts->lim.max_depth = 6;
	if (ts->lim.updates_burst == 0)
		ts->lim.updates_burst = ts->lim.updates_per_s ? ts->lim.updates_per_s : 1;
	ts->cap = ts->lim.cache_docs ? ts->lim.cache_docs : DEFAULT_CACHE_DOCS;
	ts->nbuckets = 16;
	while (ts->nbuckets < ts->cap * 2)
		ts->nbuckets <<= 1;
	ts->table = calloc(ts->nbuckets, sizeof *ts->table);
	ts->lru.next = ts->lru.prev = &ts->lru;
	ts->db = db;
	ts->sink = sink;
	if (!ts->table) {
		snprintf(err, errcap, "twins: out of memory");
		twin_service_close(ts);
		return MOTE_ENOMEM;
	}
	if (sqlite3_exec(db, schema, NULL, NULL, &emsg) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT doc, version FROM twin_documents WHERE device_id = ?",
			       -1, &ts->sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT OR REPLACE INTO twin_documents"
			       " (device_id, doc, version, updated_ms) VALUES (?, ?, ?, ?)",
			       -1, &ts->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM twin_documents WHERE device_id = ?", -1, &ts->del,
			       NULL) != SQLITE_OK) {
		snprintf(err, errcap, "twins: %s", emsg ? emsg : sqlite3_errmsg(db));
		sqlite3_free(emsg);
		twin_service_close(ts);
		return MOTE_EIO;
	}
	*out = ts;
	return MOTE_OK;
}

void twin_service_close(struct twin_service *ts)
{
	if (!ts)
		return;
	while (ts->table && ts->lru.next != &ts->lru)
		cache_remove(ts, ts->lru.next);
	sqlite3_finalize(ts->sel);
	sqlite3_finalize(ts->put);
	sqlite3_finalize(ts->del);
	free(ts->table);
	free(ts);
}

void twin_service_stats(const struct twin_service *ts, struct twin_stats *out)
{
	*out = ts->stats;
}

/* ---- publishing ---- */

static void publish_json(struct twin_service *ts, const char *id, const char *suffix, cJSON *j)
{
	char *payload = j ? cJSON_PrintUnformatted(j) : NULL;
	size_t tlen = strlen(id) + strlen(suffix) + 8;
	char *topic = malloc(tlen);
	if (payload && topic) {
		snprintf(topic, tlen, "$twin/%s/%s", id, suffix);
		mote_sink_publish(ts->sink, topic, payload, strlen(payload), 1, false);
	}
	free(topic);
	cJSON_free(payload);
}

/* obj[key] = item, taking item (deleted on failure); false: it failed. */
static bool put(cJSON *obj, const char *key, cJSON *item)
{
	if (obj && item && cJSON_AddItemToObject(obj, key, item))
		return true;
	cJSON_Delete(item);
	return false;
}

static bool put_num(cJSON *obj, const char *key, int64_t v)
{
	return put(obj, key, cJSON_CreateNumber((double)v));
}

static bool put_token(cJSON *obj, const struct twin_request *req)
{
	return !req || !req->has_token || put(obj, "clientToken", cJSON_CreateString(req->token));
}

/*
 * Messages are built whole or not at all: a part that cannot be allocated
 * drops the message (the state change, if any, is already stored), never
 * a message without its version or token.
 */
static void publish_built(struct twin_service *ts, const char *id, const char *suffix, cJSON *j,
			  bool ok)
{
	if (ok)
		publish_json(ts, id, suffix, j);
	cJSON_Delete(j);
}

static void reject(struct twin_service *ts, const char *id, const char *op, int code,
		   const char *message, const struct twin_request *req)
{
	char suffix[32];
	cJSON *j = cJSON_CreateObject();
	bool ok = put_num(j, "code", code) && put(j, "message", cJSON_CreateString(message)) &&
		  put_token(j, req);
	snprintf(suffix, sizeof suffix, "%s/rejected", op);
	publish_built(ts, id, suffix, j, ok);
}

/* The request's sections as given (nulls included), and their metadata. */
static bool put_request_parts(cJSON *state, cJSON *meta, const struct twin_request *req,
			      int64_t now_ms)
{
	const cJSON *secs[2] = { req->desired, req->reported };
	static const char *const names[2] = { "desired", "reported" };
	for (int i = 0; i < 2; i++) {
		if (secs[i] && (!put(state, names[i], cJSON_Duplicate(secs[i], 1)) ||
				!put(meta, names[i], twin_request_meta(secs[i], now_ms))))
			return false;
	}
	return true;
}

static void publish_delta(struct twin_service *ts, const char *id, const struct twin_doc *d,
			  const cJSON *delta, int64_t ts_ms)
{
	cJSON *j = cJSON_CreateObject();
	bool ok = put(j, "state", cJSON_Duplicate(delta, 1)) &&
		  put(j, "metadata", twin_doc_delta_meta(d, delta)) &&
		  put_num(j, "version", d->version) && put_num(j, "timestamp", ts_ms);
	publish_built(ts, id, "update/delta", j, ok);
}

/* After an accepted update: accepted, delta (when it changed), documents
 * and the "twin" event. */
static void announce(struct twin_service *ts, const char *id, const struct twin_request *req,
		     const struct twin_doc *prev, const struct twin_doc *cur,
		     const cJSON *prev_delta, const cJSON *delta, int64_t now_ms, bool device)
{
	cJSON *acc = cJSON_CreateObject();
	cJSON *st = cJSON_CreateObject(), *md = cJSON_CreateObject();
	bool ok = put_request_parts(st, md, req, now_ms);
	bool listening = mote_sink_listening(ts->sink);
	cJSON *ev_state = ok && listening ? cJSON_Duplicate(st, 1) : NULL;
	/* Both puts run whatever the first returns: st and md exist already
	 * and each put must take (or free) its item. */
	bool put_state = put(acc, "state", st);
	bool put_meta = put(acc, "metadata", md);
	ok = put_state && put_meta && ok;
	ok = ok && put_num(acc, "version", cur->version) && put_num(acc, "timestamp", now_ms) &&
	     put_token(acc, req);
	publish_built(ts, id, "update/accepted", acc, ok);

	/* the event: who changed what, and the new version */
	cJSON *ev = listening ? cJSON_CreateObject() : NULL;
	ok = put(ev, "state", ev_state);
	ok = ok && put(ev, "device", cJSON_CreateString(id)) &&
	     put_num(ev, "version", cur->version) &&
	     put(ev, "source", cJSON_CreateString(device ? "device" : "operator")) &&
	     put_num(ev, "timestamp", now_ms);
	char *text = ok ? cJSON_PrintUnformatted(ev) : NULL;
	if (text)
		mote_sink_event(ts->sink, "twin", id, text);
	cJSON_free(text);
	cJSON_Delete(ev);

	if (delta->child && !cJSON_Compare(prev_delta, delta, 1))
		publish_delta(ts, id, cur, delta, now_ms);

	cJSON *docs = cJSON_CreateObject();
	ok = put(docs, "previous", twin_doc_history_json(prev)) &&
	     put(docs, "current", twin_doc_history_json(cur)) &&
	     put_num(docs, "timestamp", now_ms) && put_token(docs, req);
	publish_built(ts, id, "update/documents", docs, ok);
}

/*
 * Admits a request whose parse ended with parse_st: finds the twin (404
 * when there is none and create is false) and spends a token from its
 * bucket (429), before the parse result counts, so that malformed requests
 * are rate limited like good ones. 0 with *out, or a status with msg.
 */
static int admit(struct twin_service *ts, const char *id, bool create, int parse_st,
		 int64_t now_ms, struct entry **out, char *msg, size_t cap)
{
	int st = 0;
	struct entry *e = lookup(ts, id, create, now_ms, &st);
	if (!e) {
		if (st == 404)
			snprintf(msg, cap, "no twin for device '%s'", id);
		else
			snprintf(msg, cap, "twin storage failed");
		return st;
	}
	if (!take_token(ts, e, now_ms)) {
		snprintf(msg, cap, "more than %u requests per second", ts->lim.updates_per_s);
		return 429;
	}
	*out = e;
	return parse_st; /* msg still holds the parse's sentence */
}

/*
 * The checks and the write shared by MQTT updates and REST patches (the
 * request is parsed and admitted): 0, or an HTTP status with msg.
 */
static int update(struct twin_service *ts, const char *id, struct entry *e,
		  const struct twin_request *req, bool device, int64_t now_ms, char *msg,
		  size_t cap)
{
	int st = 0;
	struct twin_doc next;
	cJSON *prev_delta = NULL, *delta = NULL;

	if (device && req->desired) {
		snprintf(msg, cap, "a device may write reported state only");
		return 403;
	}
	if (req->has_version && req->version != e->doc.version) {
		snprintf(msg, cap, "version %lld does not match the current version %lld",
			 (long long)req->version, (long long)e->doc.version);
		return 409;
	}
	if (!twin_doc_copy(&next, &e->doc)) {
		snprintf(msg, cap, "out of memory");
		return 500;
	}
	if ((st = twin_doc_apply(&next, req, now_ms, &ts->lim, msg, cap)))
		goto out;
	prev_delta = twin_doc_delta(&e->doc);
	delta = twin_doc_delta(&next);
	if (!prev_delta || !delta) {
		snprintf(msg, cap, "out of memory");
		st = 500;
		goto out;
	}
	if (persist(ts, id, &next)) {
		snprintf(msg, cap, "twin storage failed: %s", sqlite3_errmsg(ts->db));
		st = 500;
		goto out;
	}
	announce(ts, id, req, &e->doc, &next, prev_delta, delta, now_ms, device);
	twin_doc_free(&e->doc);
	e->doc = next;
out:
	if (st)
		twin_doc_free(&next);
	cJSON_Delete(prev_delta);
	cJSON_Delete(delta);
	return st;
}

static void mqtt_get(struct twin_service *ts, const char *id, bool exists,
		     const uint8_t *payload, size_t len, int64_t now_ms)
{
	struct twin_request req;
	char msg[256];
	int st = twin_request_parse(payload, len, TWIN_REQ_GET, &ts->lim, &req, msg, sizeof msg);
	struct entry *e = NULL;

	ts->stats.gets++;
	if (!exists) {
		snprintf(msg, sizeof msg, "no device '%s'", id);
		st = 404;
	} else {
		st = admit(ts, id, true, st, now_ms, &e, msg, sizeof msg);
	}
	if (st) {
		reject(ts, id, "get", st, msg, &req);
	} else {
		cJSON *doc = twin_doc_json(&e->doc, NULL);
		if (doc && put_token(doc, &req))
			publish_json(ts, id, "get/accepted", doc);
		else
			reject(ts, id, "get", 500, "out of memory", &req);
		cJSON_Delete(doc);
	}
	twin_request_free(&req);
}

void twin_service_mqtt(struct twin_service *ts, const char *device_id, bool exists,
		       const char *op, enum twin_source src, const uint8_t *payload, size_t len,
		       int64_t now_ms)
{
	if (strcmp(op, "get") == 0) {
		mqtt_get(ts, device_id, exists, payload, len, now_ms);
		return;
	}
	if (strcmp(op, "update") != 0)
		return; /* our own replies, or nothing we answer */

	struct twin_request req;
	char msg[256];
	struct entry *e = NULL;
	int st = twin_request_parse(payload, len, TWIN_REQ_UPDATE, &ts->lim, &req, msg,
				    sizeof msg);
	if (!exists) {
		snprintf(msg, sizeof msg, "no device '%s'", device_id);
		st = 404;
	} else {
		st = admit(ts, device_id, true, st, now_ms, &e, msg, sizeof msg);
	}
	if (!st)
		st = update(ts, device_id, e, &req, src == TWIN_SOURCE_DEVICE, now_ms, msg,
			    sizeof msg);
	if (st) {
		ts->stats.updates_rejected++;
		reject(ts, device_id, "update", st, msg, &req);
	} else {
		ts->stats.updates_accepted++;
	}
	twin_request_free(&req);
}

void twin_service_on_connect(struct twin_service *ts, const char *device_id)
{
	int st;
	struct entry *e = lookup(ts, device_id, false, 0, &st);
	if (!e)
		return;
	cJSON *delta = twin_doc_delta(&e->doc);
	if (delta && delta->child)
		publish_delta(ts, device_id, &e->doc, delta, e->doc.timestamp);
	cJSON_Delete(delta);
}

static void reply_doc(struct mote_reply *r, const struct twin_doc *d)
{
	cJSON *j = twin_doc_json(d, NULL);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	/* cJSON allocates with malloc (no hooks are installed), so the reply
	 * may own the text and free it */
	mote_reply_json(r, 200, s);
}

void twin_service_get(struct twin_service *ts, const char *device_id, struct mote_reply *r)
{
	int st;
	struct twin_doc empty;
	struct entry *e = lookup(ts, device_id, false, 0, &st);
	if (e) {
		reply_doc(r, &e->doc);
	} else if (st == 404 && twin_doc_init(&empty, 0)) {
		/* a read creates nothing: the empty twin is shown, not stored */
		reply_doc(r, &empty);
		twin_doc_free(&empty);
	} else {
		mote_reply_error(r, 500, "twin storage failed");
	}
}

void twin_service_patch(struct twin_service *ts, const char *device_id, const char *body,
			size_t len, int64_t now_ms, struct mote_reply *r)
{
	struct twin_request req;
	char msg[256];
	struct entry *e = NULL;
	int st = twin_request_parse((const uint8_t *)body, len, TWIN_REQ_PATCH, &ts->lim, &req,
				    msg, sizeof msg);
	st = admit(ts, device_id, true, st, now_ms, &e, msg, sizeof msg);
	if (!st)
		st = update(ts, device_id, e, &req, false, now_ms, msg, sizeof msg);
	if (st) {
		ts->stats.updates_rejected++;
		mote_reply_error(r, st, "%s", msg);
	} else {
		ts->stats.updates_accepted++;
		reply_doc(r, &e->doc);
	}
	twin_request_free(&req);
}

enum mote_err twin_service_create(struct twin_service *ts, const char *device_id, int64_t now_ms)
{
	int st;
	if (lookup(ts, device_id, false, now_ms, &st))
		return MOTE_EEXIST;
	if (st != 404)
		return MOTE_EIO;
	return lookup(ts, device_id, true, now_ms, &st) ? MOTE_OK : MOTE_EIO;
}

enum mote_err twin_service_delete(struct twin_service *ts, const char *device_id)
{
	struct entry *e = cache_find(ts, device_id);
	if (e)
		cache_remove(ts, e);
	sqlite3_reset(ts->del);
	int rc = sqlite3_bind_text(ts->del, 1, device_id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(ts->del);
	sqlite3_reset(ts->del);
	sqlite3_clear_bindings(ts->del);
	if (rc != SQLITE_DONE)
		return MOTE_EIO;
	return sqlite3_changes(ts->db) > 0 || e ? MOTE_OK : MOTE_ENOTFOUND;
}
