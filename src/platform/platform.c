/*
 * platform.c - the pipeline thread and its services (see platform.h).
 *
 * The thread takes everything queued at once (calls first, so an API
 * request never waits behind a telemetry backlog), handles it in order, and
 * once a second flushes the registry's connection state and lets the rules
 * check their timers.
 */
#include "platform/platform.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "pki/pki.h"
#include "platform/pipeline.h"
#include "platform/queue.h"

void platform_config_defaults(struct platform_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->auto_register = true;
	cfg->queue_bytes = 64u << 20;
	tstore_config_defaults(&cfg->store);
	twin_limits_defaults(&cfg->twin);
	rules_config_defaults(&cfg->rules);
	insight_config_defaults(&cfg->insight);
	telemetry_limits_defaults(&cfg->telemetry);
}

static enum mote_err open_db(const char *path, sqlite3 **out, char *err, size_t errcap)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					       SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errcap, "cannot open %s: %s", path,
			 db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return MOTE_EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			 &msg) != SQLITE_OK) {
		snprintf(err, errcap, "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_close(db);
		return MOTE_EIO;
	}
	chmod(path, 0600);
	*out = db;
	return MOTE_OK;
}

enum mote_err platform_open(const struct platform_config *cfg, const struct mote_sink *sink,
			    struct platform **out, char *err, size_t errcap)
{
	struct platform *p = calloc(1, sizeof *p);
	if (!p)
		return MOTE_ENOMEM;
	p->cfg = *cfg;
	p->sink = sink;
	enum mote_err e = queue_init(&p->q, cfg->queue_bytes);
	if (e != MOTE_OK) {
		free(p);
		return e;
	}
	p->q_ready = true;
	char path[4200];
	snprintf(path, sizeof path, "%s/mote.db", cfg->data_dir);
	if ((e = open_db(path, &p->db, err, errcap)) != MOTE_OK)
		goto fail;
	if ((e = registry_open(p->db, &p->registry, err, errcap)) != MOTE_OK)
		goto fail;
	registry_all_offline(p->registry);
	registry_on_removed(p->registry, pipeline_device_removed, p);
	if ((e = twin_service_open(p->db, &cfg->twin, sink, &p->twins, err, errcap)) != MOTE_OK)
		goto fail;
	if ((e = rules_open(p->db, &cfg->rules, sink, &p->rules, err, errcap)) != MOTE_OK)
		goto fail;
	if ((e = insight_open(p->db, &cfg->insight, p->rules, &p->insight, err, errcap)) !=
	    MOTE_OK)
		goto fail;
	char tpath[4200];
	snprintf(tpath, sizeof tpath, "%s/telemetry.db", cfg->data_dir);
	struct tstore_config sc = cfg->store;
	sc.path = tpath;
	if ((e = tstore_open(&sc, &p->store, err, errcap)) != MOTE_OK)
		goto fail;
	if (pthread_create(&p->thread, NULL, pipeline_main, p) != 0) {
		snprintf(err, errcap, "cannot start the pipeline thread");
		e = MOTE_ENOMEM;
		goto fail;
	}
	p->thread_started = true;
	*out = p;
	return MOTE_OK;
fail:
	platform_close(p);
	return e;
}

void platform_close(struct platform *p)
{
	if (!p)
		return;
	if (p->thread_started) {
		queue_close(&p->q);
		pthread_join(p->thread, NULL);
	}
	if (p->registry)
		registry_flush(p->registry);
	tstore_close(p->store);
	insight_close(p->insight); /* before rules: it saves state, raises nothing */
	rules_close(p->rules);
	twin_service_close(p->twins);
	registry_close(p->registry);
	if (p->db)
		sqlite3_close(p->db);
	if (p->q_ready)
		queue_destroy(&p->q);
	free(p);
}

struct tstore *platform_store(struct platform *p)
{
	return p->store;
}

struct rules *platform_rules(struct platform *p)
{
	return p->rules;
}

enum mote_err platform_call(struct platform *p, platform_fn fn, void *arg)
{
	return queue_call(&p->q, fn, arg);
}

/* ---- the broker's side: copy and return ---- */

/* "dev/{id}/telemetry" or "$twin/{id}/{get|update}": the id and op, or false. */
static bool match_topic(const uint8_t *t, size_t n, uint8_t *kind, const char **id,
			size_t *id_len, const char **op, size_t *op_len)
{
	const char *s = (const char *)t;
	const char *rest;
	size_t left;
	if (n > 4 && memcmp(s, "dev/", 4) == 0) {
		*kind = ITEM_TELEMETRY;
		rest = s + 4;
		left = n - 4;
		static const char suffix[] = "/telemetry";
		size_t sl = sizeof suffix - 1;
		if (left <= sl || memcmp(rest + left - sl, suffix, sl) != 0)
			return false;
		*id = rest;
		*id_len = left - sl;
		*op = NULL;
		*op_len = 0;
	} else if (n > 6 && memcmp(s, "$twin/", 6) == 0) {
		*kind = ITEM_TWIN;
		rest = s + 6;
		left = n - 6;
		const char *slash = memchr(rest, '/', left);
		if (!slash)
			return false;
		*id = rest;
		*id_len = (size_t)(slash - rest);
		*op = slash + 1;
		*op_len = left - *id_len - 1;
		if (!((*op_len == 3 && memcmp(*op, "get", 3) == 0) ||
		      (*op_len == 6 && memcmp(*op, "update", 6) == 0)))
			return false;
	} else {
		return false;
	}
	return *id_len > 0 && *id_len <= 128 && !memchr(*id, '/', *id_len);
}

void platform_tap(struct platform *p, const struct broker_client *c,
		  const struct broker_msg_view *m, bool is_device)
{
	uint8_t kind;
	const char *id, *op;
	size_t id_len, op_len;
	if (!match_topic(m->topic, m->topic_len, &kind, &id, &id_len, &op, &op_len))
		return;
	struct item *it = item_new(kind, id, id_len, op, op_len, m->payload, m->payload_len);
	if (!it) {
		atomic_fetch_add(&p->alloc_failed, 1);
		return;
	}
	/* A device speaks for itself only when the topic names it. */
	it->is_device = is_device && c && c->client_id_len == id_len &&
			memcmp(c->client_id, id, id_len) == 0;
	queue_push(&p->q, it);
}

static void push_event(struct platform *p, uint8_t kind, const struct broker_client *c,
		       bool is_device, const char *extra)
{
	if (!c->client_id_len || c->client_id_len > 128)
		return;
	struct item *it = item_new(kind, (const char *)c->client_id, c->client_id_len, extra,
				   extra ? strlen(extra) : 0, NULL, 0);
	if (!it) {
		atomic_fetch_add(&p->alloc_failed, 1);
		return;
	}
	it->is_device = is_device;
	queue_push(&p->q, it);
}

void platform_on_connect(struct platform *p, const struct broker_client *c, bool is_device,
			 const char *cert_serial)
{
	push_event(p, ITEM_CONNECT, c, is_device, cert_serial);
}

void platform_on_disconnect(struct platform *p, const struct broker_client *c, uint8_t reason)
{
	(void)reason;
	push_event(p, ITEM_DISCONNECT, c, false, NULL);
}

void platform_on_subscribe(struct platform *p, const struct broker_client *c,
			   const uint8_t *filter, size_t len)
{
	/* Only a device's own twin filters matter here (its delta on subscribe). */
	if (len < 7 || memcmp(filter, "$twin/", 6) != 0 || len > 512)
		return;
	struct item *it = item_new(ITEM_SUBSCRIBE, (const char *)c->client_id, c->client_id_len,
				   (const char *)filter, len, NULL, 0);
	if (it)
		queue_push(&p->q, it);
}

void platform_get_stats(struct platform *p, struct platform_stats *out)
{
	memset(out, 0, sizeof *out);
	uint64_t now = mote_mono_ms();
	queue_stats(&p->q, now, &out->queue_items, &out->queue_bytes, &out->queue_dropped,
		    &out->lag_ms);
	uint64_t inflight = atomic_load(&p->inflight_since_ms);
	if (inflight && now > inflight && now - inflight > out->lag_ms)
		out->lag_ms = now - inflight;
	out->telemetry_messages = atomic_load(&p->telemetry_messages);
	out->telemetry_points = atomic_load(&p->telemetry_points);
	out->telemetry_invalid = atomic_load(&p->telemetry_invalid);
	out->devices = atomic_load(&p->devices);
	out->devices_online = atomic_load(&p->devices_online);
}

/* ---- deleting a device everywhere ---- */

void platform_delete_device(struct platform_services *s, const char *device_id,
			    struct mote_reply *r)
{
	if (!registry_exists(s->registry, device_id)) {
		registry_refresh(s->registry);
		if (!registry_exists(s->registry, device_id)) {
			mote_reply_error(r, 404, "no device '%.128s'", device_id);
			return;
		}
	}
	char id[129];
	snprintf(id, sizeof id, "%s", device_id); /* device_id may point into the registry */
	if (registry_remove(s->registry, id) != MOTE_OK) {
		mote_reply_error(r, 500, "cannot delete device '%s': %s", id,
				 sqlite3_errmsg(s->db));
		return;
	}
	twin_service_delete(s->twins, id);
	rules_device_deleted(s->rules, id);
	insight_device_deleted(s->insight, id);
	enum mote_err e = tstore_delete_device(s->store, id);
	if (e != MOTE_OK)
		MOTE_WARN("platform", "event=telemetry_delete_failed device=%s why=\"%s\"", id,
			  mote_strerror(e));
	int revoked = 0;
	if (s->pki_dir) {
		char err[256];
		e = mote_pki_revoke(s->pki_dir, id, &revoked, err, sizeof err);
		if (e != MOTE_OK && e != MOTE_ENOTFOUND)
			MOTE_WARN("platform", "event=revoke_failed device=%s why=\"%s\"", id, err);
	}
	MOTE_INFO("platform", "event=device_deleted device=%s certificates_revoked=%d", id,
		  revoked);
	mote_reply_json(r, 204, NULL);
}
