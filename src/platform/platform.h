/*
 * platform.h - the hub's platform: the bounded pipeline between the broker
 * and the services (device registry, telemetry store, twins, rules), and the
 * one door through which the API reaches them. The face of src/platform/.
 *
 *   broker loop threads --tap/connect/disconnect (copy, never block)-->
 *     bounded queue --> pipeline thread: registry -> telemetry decode ->
 *     store append -> twins -> rules/alerts --> sink (publishes, events)
 *   API threads --platform_call(fn)--> the same thread runs fn, returns
 *
 * Every service object (registry, twins, rules) is used by the pipeline
 * thread only, so none of them needs a lock; the telemetry store is also
 * read by API threads directly (tstore.h is thread-safe for queries).
 * A full queue drops telemetry and counts it (platform_stats) rather than
 * stall routing.
 *
 * Ownership: the caller owns the platform (platform_close). The sink is
 * borrowed and must outlive it.
 */
#ifndef MOTE_PLATFORM_H
#define MOTE_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/sink.h"
#include "broker/broker.h"
#include "registry/registry.h"
#include "insight/insight.h"
#include "rules/rules.h"
#include "store/telemetry.h"
#include "store/tstore.h"
#include "twin/twin.h"

struct platform;

struct platform_config {
	const char *data_dir;       /* DATA/mote.db, DATA/telemetry.db (borrowed) */
	const char *pki_dir;        /* a device's certificate is revoked here when it is
				     * deleted (NULL: no revocation) */
	bool auto_register;         /* register a device on its first connect (default on) */
	uint32_t queue_bytes;       /* pipeline queue bound (default 64 MiB) */
	struct tstore_config store; /* store.path is filled in from data_dir */
	struct twin_limits twin;
	struct rules_config rules;
	struct insight_config insight;
	struct telemetry_limits telemetry;
};

void platform_config_defaults(struct platform_config *cfg);

/* Opens the databases and starts the pipeline thread. */
enum mote_err platform_open(const struct platform_config *cfg, const struct mote_sink *sink,
			    struct platform **out, char *err, size_t errcap);
/* Processes what is queued, stops the thread, closes the services. */
void platform_close(struct platform *p);

/*
 * The broker's hooks, called on its loop threads: they copy what the
 * pipeline needs and return at once. is_device: the client authenticated
 * as the device it names (src/auth principal), so twin updates from it are
 * TWIN_SOURCE_DEVICE. cert_serial: hex serial of its client certificate or
 * NULL.
 */
void platform_tap(struct platform *p, const struct broker_client *c,
		  const struct broker_msg_view *m, bool is_device);
void platform_on_connect(struct platform *p, const struct broker_client *c, bool is_device,
			 const char *cert_serial);
void platform_on_disconnect(struct platform *p, const struct broker_client *c, uint8_t reason);
/* A subscription the broker has put in place (its subscribed hook): a
 * device that subscribes to its own $twin/{id}/update/delta (or a filter
 * covering it) is sent its current delta, so a clean session gets it too. */
void platform_on_subscribe(struct platform *p, const struct broker_client *c,
			   const uint8_t *filter, size_t len);

/* What a platform_call function may use (the pipeline thread's view). */
struct platform_services {
	struct registry *registry;
	struct twin_service *twins;
	struct rules *rules;
	struct insight *insight;
	struct tstore *store;
	sqlite3 *db;                /* DATA/mote.db */
	const char *pki_dir;
	int64_t now_ms;
};

/*
 * Runs fn(services, arg) on the pipeline thread and waits for it to return
 * (ahead of queued telemetry). From any thread but the pipeline's own.
 * MOTE_ECLOSED once the platform is closing.
 */
typedef void (*platform_fn)(struct platform_services *s, void *arg);
enum mote_err platform_call(struct platform *p, platform_fn fn, void *arg);

/*
 * Deletes a device everywhere: registry, twin, telemetry, rule state and
 * alerts, and revokes its certificate in pki_dir (a new CRL is written; the
 * hub reloads it). Pipeline thread (inside a platform_call). r: 204 or 404.
 */
void platform_delete_device(struct platform_services *s, const char *device_id,
			    struct mote_reply *r);

/* The telemetry store, for queries from any thread. */
struct tstore *platform_store(struct platform *p);
/* The rules, for rules_get_stats from any thread (nothing else of it). */
struct rules *platform_rules(struct platform *p);

struct platform_stats {
	uint64_t queue_items;        /* waiting now */
	uint64_t queue_bytes;
	uint64_t queue_dropped;      /* telemetry dropped: queue full */
	uint64_t lag_ms;             /* age of the oldest waiting item */
	uint64_t telemetry_messages; /* decoded */
	uint64_t telemetry_points;
	uint64_t telemetry_invalid;  /* payloads that did not decode */
	uint64_t devices;
	uint64_t devices_online;
};
/* Any thread. */
void platform_get_stats(struct platform *p, struct platform_stats *out);

#endif
