/*
 * desired.h - what a simulated device does with its twin: reading the
 * desired properties out of the hub's twin messages, checking and applying
 * them, and writing the reported document. The face of src/sim/desired.c.
 *
 * Pure: no I/O, no clock; cJSON allocations are freed before each call
 * returns. Input comes from the network, so nothing in it can make these
 * functions fail other than by returning an error: hostile, malformed or
 * oversized documents change nothing.
 *
 * The keys a device obeys (docs/sim.md):
 *   on           true | false
 *   setpoint     a number within the model's range (pump: discharge
 *                pressure bar, motor: rpm, hvac: room temperature C)
 *   interval_ms  an integer 100..3600000
 *   fault        "overheat" | "bearing" | "stuck" | "dropout" | null (repair)
 * Other keys are left alone (the twin may carry desired state for others).
 * A bad value is not applied; the device keeps the old value and reports
 * "last_error": "<key>: must be ..." (several joined by "; ").
 *
 * Threading: none; call from any thread.
 */
#ifndef MOTE_SIM_DESIRED_H
#define MOTE_SIM_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sim/asset.h"

#define SIM_INTERVAL_MIN 100u
#define SIM_INTERVAL_MAX 3600000u
#define SIM_DESIRED_MAX 65536u  /* larger payloads are refused unread */
#define SIM_ERROR_MAX 256u
#define SIM_FIRMWARE "sim-1"

/* What a device obeys and reports. */
struct sim_settings {
	bool on;
	double setpoint;
	uint32_t interval_ms;
	enum sim_fault fault;
};

/* Which twin message the payload came from. */
enum sim_twin_msg {
	SIM_TWIN_DELTA,    /* $twin/ID/update/delta: state = the delta */
	SIM_TWIN_GET,      /* $twin/ID/get/accepted: state.desired = all desired */
	SIM_TWIN_ACCEPTED, /* $twin/ID/update/accepted: state.desired = what an
			    * operator wrote, nulls included (fault: null repairs) */
};

/* Bits of struct sim_desired_result.changed / .touched */
#define SIM_SET_ON 1u
#define SIM_SET_SETPOINT 2u
#define SIM_SET_INTERVAL 4u
#define SIM_SET_FAULT 8u

struct sim_desired_result {
	unsigned touched;  /* keys present (valid or not) */
	unsigned changed;  /* keys applied with a new value */
	char error[SIM_ERROR_MAX]; /* "" when every present key was valid */
};

/*
 * Reads the desired part of a twin message of kind `msg` and applies every
 * valid known key to *s; *r says what happened. s->setpoint bounds come
 * from model m.
 *   MOTE_OK         parsed (r->error may still name bad values)
 *   MOTE_ETOOBIG    len > SIM_DESIRED_MAX: not parsed, nothing changed
 *   MOTE_EMALFORMED not a JSON object of the expected shape: nothing changed
 */
enum mote_err sim_desired_apply(enum sim_model m, enum sim_twin_msg msg, const void *payload,
				size_t len, struct sim_settings *s, struct sim_desired_result *r);

/*
 * The reported update for $twin/ID/update:
 * {"state":{"reported":{"model":..,"firmware":"sim-1","on":..,"setpoint":..,
 * "interval_ms":..,"fault":null|"..","last_error":null|".."}}}
 * last_error NULL or "" reports null (removes it). Returns the length
 * written (NUL-terminated), or 0 if cap is too small.
 */
size_t sim_reported_json(enum sim_model m, const struct sim_settings *s, const char *last_error,
			 char *buf, size_t cap);

/* The default settings of model m with interval_ms. */
void sim_settings_default(enum sim_model m, uint32_t interval_ms, struct sim_settings *s);

#endif
