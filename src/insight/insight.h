/*
 * insight.h - what the hub learns about each device from its own history:
 * a streaming anomaly score and state per metric (anomalies raise and clear
 * alerts through the rules module), a health index, a remaining-useful-life
 * estimate where the device's model has a wear signal, and "what if"
 * simulations from models fitted online to that device. The face of
 * src/insight/; the algorithms live in src/analytics/ (anomaly.h,
 * forecast.h); the methods and their validation in docs/analytics.md.
 *
 * What it knows of device models (the simulator's, docs/sim.md):
 *   pump, motor  temperature follows power (first order); power follows the
 *                reported setpoint (linear); vibration grows with wear
 *                (trend): the remaining useful life is the time until it
 *                reaches the vibration alert threshold.
 *   hvac         room_temp follows the reported setpoint (first order).
 * Every other device gets anomaly scores and the health index only.
 *
 * The twin's "analytics" section (GET .../twin, GET .../analytics) is
 * insight_section():
 *   {"updated":MS,"health":87,
 *    "metrics":{"temperature":{"score":0.02,"state":"normal","anomalies":3,
 *                              "since":MS}},
 *    "rul":{"hours":312.5,"low":250.1,"high":401.0,"metric":"vibration",
 *           "threshold":7.1,"method":"trend"},
 *    "models":{"temperature":{"input":"power","gain":..,"tau_s":..,...}}}
 *
 * Threading: the platform pipeline thread only (like twins and rules).
 * Ownership: the caller owns the insight object; db, rules and sink are
 * borrowed and outlive it. Replies and sections belong to the caller.
 */
#ifndef MOTE_INSIGHT_H
#define MOTE_INSIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "base/err.h"
#include "base/reply.h"
#include "base/sink.h"
#include "rules/rules.h"
#include "store/telemetry.h"

struct insight;

struct insight_config {
	double anomaly_threshold;  /* a score at or above it is an anomaly (default 0.5) */
	uint32_t clear_after_s;    /* an anomalous metric is normal again after this long
				    * without such a score (default 60) */
	uint32_t max_metrics;      /* metrics analysed per device (default 16) */
	uint32_t save_every_s;     /* detector and model state saved to the database this
				    * often, and at close (default 600) */
	bool alerts;               /* raise alerts "anomaly:METRIC" (default true) */
};

void insight_config_defaults(struct insight_config *cfg);

/* Creates its table in db if missing. MOTE_EIO / MOTE_EINVAL with a sentence in err. */
enum mote_err insight_open(sqlite3 *db, const struct insight_config *cfg, struct rules *rules,
			   struct insight **out, char *err, size_t errcap);
/* Saves what was learned and frees. NULL accepted. */
void insight_close(struct insight *in);

/* A device's new telemetry points (model may be NULL or ""). */
void insight_on_points(struct insight *in, const char *device_id, const char *model,
		       const struct telemetry_point *pts, size_t n, int64_t now_ms);
/* A twin update the device sent (its JSON): its reported setpoint is an input. */
void insight_on_report(struct insight *in, const char *device_id, const uint8_t *payload,
		       size_t len);
/* Once a second or so: clears anomalies that ended, saves state when due. */
void insight_tick(struct insight *in, int64_t now_ms);
/* The device was deleted: everything learned about it goes. */
void insight_device_deleted(struct insight *in, const char *device_id);

/* The device's "analytics" section, or NULL when nothing is known of it yet
 * (or out of memory). model: the registry's (NULL or "": none). The caller
 * owns it (cJSON_Delete). */
cJSON *insight_section(struct insight *in, const char *device_id, const char *model,
		       int64_t now_ms);

/*
 * POST /api/v1/devices/{id}/simulate (docs/api.md): body
 *   {"horizon_s":3600,"step_s":60,"metric":"temperature",
 *    "scenario":{"setpoint":6.5,"at_s":0}}   (or "power", or "on":false)
 * 200 with the predicted trajectory (mean and a 90 % band), the fitted
 * model, and when it would cross the thresholds of the device's rules;
 * 400 for a malformed or unknown request, 409 when the device's history
 * cannot answer it yet (too short, or an input it never saw vary), 422 for
 * a scenario its model does not have.
 */
void insight_simulate(struct insight *in, const char *device_id, const char *model,
		      const char *body, size_t len, int64_t now_ms, struct mote_reply *r);

struct insight_stats {
	uint64_t devices;          /* devices with state */
	uint64_t points;           /* points scored */
	uint64_t anomalies;        /* anomalous episodes begun */
	uint64_t simulations;
};
void insight_get_stats(const struct insight *in, struct insight_stats *out);

#endif
