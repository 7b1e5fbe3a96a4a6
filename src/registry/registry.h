/*
 * registry.h - the device registry: id, name, model, tags, created, last
 * seen, online/offline, certificate serial, the last telemetry error. A
 * table in DATA/mote.db with an in-memory index for the pipeline's per-
 * message lookups. The face of src/registry/; `mote device` and the
 * platform use it.
 *
 * A device as the API shows it:
 *   {"id":"pump-7","name":"Pump 7","model":"pump","tags":{"site":"north"},
 *    "created":1733380000000,"last_seen":1733380100000,"online":true,
 *    "cert_serial":"3A9F...","last_error":null,"invalid_payloads":0,
 *    "last_error_at":null}
 * last_error_at: when last_error was set (ms), null when never (or before
 * the hub kept the time).
 * tags is an object of string values (filter: tag=site:north or tag=site).
 *
 * Threading: one thread per registry object (the pipeline, or the CLI).
 * Another process may change the table (`mote device` while the hub runs):
 * registry_refresh notices it (SQLite's data_version) and reloads.
 * Ownership: the caller owns the registry and the sqlite3 handle.
 */
#ifndef MOTE_REGISTRY_H
#define MOTE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/reply.h"

struct registry;

/* Creates the devices table in db if missing and loads the index. */
enum mote_err registry_open(sqlite3 *db, struct registry **out, char *err, size_t errcap);
void registry_close(struct registry *r);

/* Reloads the index when another connection changed the table; true if it
 * did. Devices that vanished (`mote device rm` in another process) are
 * reported to the removed callback, so the hub drops their twin, telemetry
 * and rule state too. */
bool registry_refresh(struct registry *r);
typedef void (*registry_removed_fn)(void *ctx, const char *id);
void registry_on_removed(struct registry *r, registry_removed_fn fn, void *ctx);

bool registry_exists(struct registry *r, const char *id);
/* The device's model ("" when none), or NULL for an unknown device. Valid
 * until the next call that changes the registry. */
const char *registry_model(struct registry *r, const char *id);

/* MOTE_EEXIST / MOTE_EINVAL (bad id, with a sentence in err) / MOTE_EIO.
 * name, model, tags_json may be NULL. */
enum mote_err registry_add(struct registry *r, const char *id, const char *name,
			   const char *model, const char *tags_json, int64_t now_ms, char *err,
			   size_t errcap);
enum mote_err registry_remove(struct registry *r, const char *id); /* MOTE_ENOTFOUND */

/* Connection state: kept in memory at once, written to the table in batches
 * (registry_flush). cert_serial may be NULL. */
void registry_set_online(struct registry *r, const char *id, bool online, int64_t now_ms,
			 const char *cert_serial);
void registry_seen(struct registry *r, const char *id, int64_t now_ms);
/* A payload from the device did not decode: counted, message remembered. */
void registry_set_error(struct registry *r, const char *id, const char *msg, int64_t now_ms);
/* Writes changed last_seen/online/error fields (the pipeline calls it once a second). */
enum mote_err registry_flush(struct registry *r);
/* At start: every device offline (the hub was down). */
enum mote_err registry_all_offline(struct registry *r);

uint64_t registry_count(struct registry *r);
uint64_t registry_online_count(struct registry *r);
/* The device's certificate serial (hex), or NULL. Valid until the next call
 * that changes the registry. */
const char *registry_cert_serial(struct registry *r, const char *id);

struct registry_filter {
	const char *model;     /* exact */
	const char *tag;       /* "key" or "key:value" */
	const char *status;    /* "online" / "offline" */
	const char *q;         /* substring of id or name */
	uint32_t limit;        /* 0: 100, at most 1000 */
	uint32_t offset;
};

/* REST shapes (see the comment at the top). */
void registry_list_json(struct registry *r, const struct registry_filter *f,
			struct mote_reply *out);          /* {"devices":[...],"total":N} */
void registry_get_json(struct registry *r, const char *id, struct mote_reply *out);
/* POST body {"id":..,"name":..,"model":..,"tags":{..}}: 201 / 400 / 409. */
void registry_create_json(struct registry *r, const char *body, size_t len, int64_t now_ms,
			  struct mote_reply *out);
/* PATCH body with any of name, model, tags (tags replace whole): 200 / 400 / 404. */
void registry_update_json(struct registry *r, const char *id, const char *body, size_t len,
			  struct mote_reply *out);

#endif
