/*
 * twin.h - digital twins: one JSON document per device with desired and
 * reported state, the computed delta, per-leaf metadata timestamps, a
 * version that rises by one per update, and the MQTT protocol around it
 * ($twin/{id}/get, $twin/{id}/update and their replies). The face of
 * src/twin/. Document rules: docs/twins.md.
 *
 * The document, as GET and `.../get/accepted` return it:
 *   {"state":{"desired":{...},"reported":{...},"delta":{...}},
 *    "metadata":{"desired":{"temp":{"timestamp":1733380000000}},"reported":{...}},
 *    "version":7,"timestamp":1733380000123}
 * Updates are deep merges, null deletes a key, arrays replace whole.
 *
 * Threading: a twin_service is used from one thread only (the platform
 * pipeline). Ownership: the caller owns the service and the sqlite3 handle
 * (which must outlive it); replies are owned by the caller.
 */
#ifndef MOTE_TWIN_H
#define MOTE_TWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/reply.h"
#include "base/sink.h"

struct twin_service;

struct twin_limits {
	size_t max_state_bytes;  /* desired + reported, serialized (default 8192) */
	unsigned max_depth;      /* nesting of state objects (default 6) */
	uint32_t updates_per_s;  /* per device, token bucket rate (default 10) ... */
	uint32_t updates_burst;  /* ... and size (default 20); beyond: 429.
				  * updates_per_s 0: no rate limit. The bucket also
				  * counts MQTT gets and REST patches. */
	size_t cache_docs;       /* documents kept in memory, LRU (default 1024;
				  * 0: the default) */
};

void twin_limits_defaults(struct twin_limits *l);

/*
 * Creates the twins table in db if missing. Publishes replies through sink
 * (borrowed, outlives the service). MOTE_EIO with a sentence in err.
 */
enum mote_err twin_service_open(sqlite3 *db, const struct twin_limits *lim,
				const struct mote_sink *sink, struct twin_service **out, char *err,
				size_t errcap);
void twin_service_close(struct twin_service *ts);

/* Who sends an update: the device itself may write only `reported` (desired
 * from a device: 403); operators (users, tokens, the API) may write both. */
enum twin_source {
	TWIN_SOURCE_DEVICE,
	TWIN_SOURCE_OPERATOR,
};

/*
 * An MQTT request on $twin/{device_id}/{op}: op is "get" or "update" (other
 * ops are ignored: they are the replies). Answers on .../accepted or
 * .../rejected ({"code":404,"message":"...","clientToken":"..."}), and after
 * an accepted update publishes .../update/delta (when the delta changed) and
 * .../update/documents. `exists` says whether the device is in the registry
 * (false: 404). now_ms is the server time used for metadata.
 */
void twin_service_mqtt(struct twin_service *ts, const char *device_id, bool exists,
		       const char *op, enum twin_source src, const uint8_t *payload, size_t len,
		       int64_t now_ms);

/* The device (re)connected: publishes $twin/{id}/update/delta when desired
 * and reported differ. */
void twin_service_on_connect(struct twin_service *ts, const char *device_id);

/*
 * REST: the whole document (200). The caller has checked that the device
 * is registered (404 is its answer); a registered device without a stored
 * twin yet (registered before it had one) gets the empty twin, version 0,
 * timestamp 0, which is not stored until something is written.
 */
void twin_service_get(struct twin_service *ts, const char *device_id, struct mote_reply *r);
/*
 * REST: PATCH with body {"desired":{...},"version":N} (version optional;
 * mismatch: 409) of a registered device (checked by the caller, as for
 * get; a missing twin is created). The reply is the new document (200), or
 * 400 / 409 / 413 / 429 / 500 in the stable error shape. Publishes
 * accepted, delta and documents as an MQTT update does.
 */
void twin_service_patch(struct twin_service *ts, const char *device_id, const char *body,
			size_t len, int64_t now_ms, struct mote_reply *r);
/* Creates an empty twin (version 0) when the device is registered; removes
 * it when the device is deleted. */
enum mote_err twin_service_create(struct twin_service *ts, const char *device_id, int64_t now_ms);
enum mote_err twin_service_delete(struct twin_service *ts, const char *device_id);

struct twin_stats {
	uint64_t updates_accepted;
	uint64_t updates_rejected;
	uint64_t gets;
};
void twin_service_stats(const struct twin_service *ts, struct twin_stats *out);

#endif
