/*
 * rules.h - rules and alerts: rules over a device's telemetry (threshold
 * with duration and hysteresis, rate of change, no-data, expressions over
 * several metrics), the alert life cycle (severity; active or cleared;
 * acknowledged or not; one open alert per device and type, a repeat updates
 * it), and notifications: MQTT $alerts/{device} through the sink and
 * webhooks (HTTP POST, retries with backoff, X-Mote-Signature HMAC-SHA256,
 * a delivery log). The face of src/rules/. Reference: docs/api.md.
 *
 * Threading: everything here is called from one thread (the platform
 * pipeline), except that webhooks are delivered by the module's own thread.
 * Ownership: the caller owns the rules object and the sqlite3 handle (which
 * must outlive it). Replies belong to the caller.
 */
#ifndef MOTE_RULES_H
#define MOTE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/reply.h"
#include "base/sink.h"
#include "store/telemetry.h"

struct rules;

struct rules_config {
	uint32_t webhook_timeout_ms;  /* per attempt (default 5000) */
	uint32_t webhook_attempts;    /* tries per delivery (default 5) */
	uint32_t webhook_backoff_ms;  /* first retry delay, doubling (default 1000) */
	uint32_t webhook_queue;       /* deliveries waiting at most (default 1000) */
	uint32_t history_days;        /* cleared alerts kept (default 90) */
};

void rules_config_defaults(struct rules_config *cfg);

/* Creates its tables in db if missing and starts the webhook thread. */
enum mote_err rules_open(sqlite3 *db, const struct rules_config *cfg,
			 const struct mote_sink *sink, struct rules **out, char *err,
			 size_t errcap);
/* Stops the webhook thread (waiting deliveries stay in the table). */
void rules_close(struct rules *r);

/* New telemetry of a device (model may be NULL or ""). */
void rules_on_points(struct rules *r, const char *device_id, const char *model,
		     const struct telemetry_point *pts, size_t n, int64_t now_ms);
/* Once a second or so: no-data rules, durations that ran out. */
void rules_tick(struct rules *r, int64_t now_ms);
/* The device was deleted: its alerts and rule state go. */
void rules_device_deleted(struct rules *r, const char *device_id);

/*
 * An alert raised by another part of the hub (analytics): opens or updates
 * the one open alert of (device, type); severity "critical", "major",
 * "minor" or "warning"; details a JSON object text or NULL.
 */
enum mote_err rules_raise(struct rules *r, const char *device_id, const char *type,
			  const char *severity, const char *details, int64_t now_ms);
/* Clears the open alert of (device, type), if any. */
enum mote_err rules_resolve(struct rules *r, const char *device_id, const char *type,
			    int64_t now_ms);

/* A threshold that would raise an alert on one metric of a device. */
struct rules_threshold {
	int64_t rule_id;
	double value;
	bool rising;               /* the alert is for values above (>, >=) */
	char severity[12];         /* "critical", "major", "minor", "warning" */
};

/*
 * The enabled threshold rules (kind threshold, operator >, >=, < or <=)
 * on `metric` that apply to the device (by id, or by model when model is
 * not NULL or ""): up to cap of them into out; returns how many there are.
 * What-if simulations use them to say when a prediction would alert.
 */
size_t rules_thresholds(struct rules *r, const char *device_id, const char *model,
			const char *metric, struct rules_threshold *out, size_t cap);

/* REST: JSON in, struct mote_reply out (docs/api.md has the shapes). */
void rules_list(struct rules *r, struct mote_reply *out);
void rules_get(struct rules *r, const char *rule_id, struct mote_reply *out);
void rules_create(struct rules *r, const char *body, size_t len, struct mote_reply *out);
void rules_update(struct rules *r, const char *rule_id, const char *body, size_t len,
		  struct mote_reply *out);
void rules_delete(struct rules *r, const char *rule_id, struct mote_reply *out);

struct alerts_filter {
	const char *device_id;  /* NULL: all */
	const char *state;      /* "active", "cleared" or NULL: all */
	const char *severity;   /* NULL: all */
	int acknowledged;       /* -1 any, 0 no, 1 yes */
	uint32_t limit;         /* 0: 100 */
};

void alerts_list(struct rules *r, const struct alerts_filter *f, struct mote_reply *out);
void alerts_get(struct rules *r, const char *alert_id, struct mote_reply *out);
/* who: the API token's name or user, kept in the alert's history. */
void alerts_ack(struct rules *r, const char *alert_id, const char *who, int64_t now_ms,
		struct mote_reply *out);
void alerts_clear(struct rules *r, const char *alert_id, const char *who, int64_t now_ms,
		  struct mote_reply *out);

void webhooks_list(struct rules *r, struct mote_reply *out);
void webhooks_create(struct rules *r, const char *body, size_t len, struct mote_reply *out);
void webhooks_delete(struct rules *r, const char *webhook_id, struct mote_reply *out);
void webhooks_deliveries(struct rules *r, const char *webhook_id, uint32_t limit,
			 struct mote_reply *out);

struct rules_stats {
	uint64_t rules;
	uint64_t alerts_active;
	uint64_t alerts_raised;       /* since start */
	uint64_t webhook_delivered;
	uint64_t webhook_failed;      /* gave up after every attempt */
	uint64_t webhook_queued;      /* waiting now */
};
/* Any thread (counters kept for it; /metrics may read them directly). */
void rules_get_stats(struct rules *r, struct rules_stats *out);

#endif
