/*
 * asset.h - the physics of one simulated machine (pump, motor, HVAC unit):
 * the face of src/sim/asset.c.
 *
 * Pure and deterministic: no I/O, no clock, no allocation, no globals. An
 * asset is a value (struct sim_asset) that moves forward only when
 * sim_asset_step() is called with a time step; every random number comes
 * from the asset's own generator, seeded at init. The same seed, start
 * time and sequence of calls give bit-identical results on any machine
 * with IEEE doubles. That is what lets an analytics module copy an asset
 * (a plain struct copy is a snapshot), run the copy forward under a
 * scenario (sim_asset_set_on / _set_setpoint / _set_fault between steps)
 * and compare its own predictions with sim_asset_expected() (the noiseless
 * truth) or sim_asset_sample() (what a device would send).
 *
 * The model (docs/sim.md has the equations and every parameter):
 *   - Ambient temperature: a daily sine (peak at 15:00 UTC) around a mean
 *     that differs a little per asset.
 *   - Load: pump and motor see a process demand (daily cycle plus a
 *     mean-reverting random walk); the pump holds its discharge pressure
 *     setpoint, the motor its speed setpoint; the HVAC unit pumps the heat
 *     needed to hold its room at the setpoint, within its capacity.
 *   - Temperature follows load through a first-order lag, solved exactly
 *     for any step: T += (T_eq - T) * (1 - exp(-dt / tau)), with
 *     T_eq = ambient + rise * load (pump, motor), or the room's heat balance
 *     (HVAC). A step of 10 s or ten steps of 1 s end at the same state
 *     (up to the random processes).
 *   - Bearing wear w in [0, 1] grows slowly with load (the bearing fault
 *     multiplies the rate); vibration = base(speed) + gain * w^1.5, and the
 *     friction adds heat.
 *   - Faults: overheat (cooling lost: the temperature rise is divided by
 *     the remaining cooling, so the temperature climbs to a high
 *     equilibrium with the same time constant), bearing (fast wear), stuck
 *     (one metric repeats the value it had when the fault began), dropout
 *     (one metric is no longer in the sample).
 *   - on = false: load 0, flows and speeds decay, power ~0, temperatures
 *     decay to ambient.
 *
 * Threading: an asset belongs to whoever holds it; no shared state.
 */
#ifndef MOTE_SIM_ASSET_H
#define MOTE_SIM_ASSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sim_model { SIM_PUMP = 0, SIM_MOTOR, SIM_HVAC, SIM_MODEL_COUNT };

enum sim_fault {
	SIM_FAULT_NONE = 0,
	SIM_FAULT_OVERHEAT,
	SIM_FAULT_BEARING,
	SIM_FAULT_STUCK,
	SIM_FAULT_DROPOUT,
	SIM_FAULT_COUNT
};

#define SIM_METRICS_MAX 5

/* "pump", "motor", "hvac"; NULL for an unknown value. */
const char *sim_model_name(enum sim_model m);
/* SIM_MODEL_COUNT when name is not a model. */
enum sim_model sim_model_parse(const char *name, size_t len);
/* "overheat", "bearing", "stuck", "dropout"; NULL for SIM_FAULT_NONE. */
const char *sim_fault_name(enum sim_fault f);
/* SIM_FAULT_COUNT when name is not a fault. */
enum sim_fault sim_fault_parse(const char *name, size_t len);

/*
 * The constants of a model. sim_asset_init() copies the model's defaults
 * into the asset (a->p); a test or an analytics module may change them
 * afterwards (e.g. ambient_amp = 0 for a constant ambient).
 */
struct sim_params {
	/* ambient (outdoor air for HVAC), C */
	double ambient_mean;  /* daily mean */
	double ambient_amp;   /* half the daily swing */
	double ambient_jitter;/* per-asset offset of the mean: uniform +-this */
	/* thermal */
	double tau_s;         /* time constant of the temperature (room for HVAC), s */
	double rise;          /* temperature rise over ambient at load 1, C */
	double wear_heat;     /* extra rise at wear 1 (bearing friction), C */
	double overheat_cooling; /* cooling left under the overheat fault (0..1) */
	/* setpoint */
	double sp_min, sp_max, sp_default;
	/* mechanics and process */
	double tau_mech_s;    /* pressure / speed / supply-air response, s */
	double demand_mean;   /* process demand, 0..1 */
	double demand_amp;    /* daily swing of the demand */
	double demand_sigma;  /* std of the demand's random walk (stationary) */
	double demand_tau_s;  /* its correlation time, s */
	double rated_kw;      /* power at load 1 */
	/* vibration and wear */
	double vib_base;      /* mm/s at full speed with a new bearing */
	double vib_wear_gain; /* mm/s added at wear 1 (times w^1.5) */
	double wear_rate;     /* wear per second at load 1 */
	double bearing_factor;/* the bearing fault multiplies wear_rate by this */
	double wear_init_max; /* initial wear: uniform 0..this */
	/* measurement noise (standard deviations) per metric, in metric order */
	double noise[SIM_METRICS_MAX];
};

/* The defaults of model m (docs/sim.md lists them). */
void sim_params_default(enum sim_model m, struct sim_params *p);

/* Random generator state (xoshiro256**, seeded through splitmix64). */
struct sim_rng {
	uint64_t s[4];
};
void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_uniform(struct sim_rng *r); /* [0, 1) */
double sim_rng_normal(struct sim_rng *r);  /* mean 0, std 1 */

/*
 * One asset. Every field may be read; write only through the functions
 * below (or a->p, see struct sim_params).
 */
struct sim_asset {
	enum sim_model model;
	struct sim_params p;
	struct sim_rng rng;
	double t;            /* simulated time, Unix seconds */
	/* inputs */
	bool on;
	double setpoint;
	enum sim_fault fault;
	/* state */
	double ambient_offset;
	double demand_noise; /* the random part of the demand */
	double temp;         /* C: machine temperature; HVAC: room temperature */
	double mech;         /* pump: pressure bar; motor: rpm; HVAC: supply air C */
	double wear;         /* 0..1 */
	double hvac_q;       /* HVAC: heat delivered to the room, kW (+ heats) */
	/* stuck / dropout: which metric, and the stuck value */
	int fault_metric;
	double stuck_value;
	bool stuck_valid;
};

/* A set of metric values (names are static strings). */
struct sim_sample {
	size_t n;
	const char *name[SIM_METRICS_MAX];
	double value[SIM_METRICS_MAX];
};

/*
 * A new asset of model m at Unix time t0_s, on, at the default setpoint,
 * without fault, its temperatures settled at their equilibrium for t0.
 * Per-asset variation (ambient offset, initial wear, demand) comes from seed.
 */
void sim_asset_init(struct sim_asset *a, enum sim_model m, uint64_t seed, double t0_s);

/* Advances the asset by dt_s seconds of simulated time (dt_s <= 0: nothing). */
void sim_asset_step(struct sim_asset *a, double dt_s);

/* Inputs; they take effect from the next step. A setpoint is clamped to
 * [sp_min, sp_max]. Setting a fault draws the metric it affects (stuck,
 * dropout); SIM_FAULT_NONE repairs: the bearing is renewed (wear back to
 * its initial range) after a bearing fault. */
void sim_asset_set_on(struct sim_asset *a, bool on);
void sim_asset_set_setpoint(struct sim_asset *a, double sp);
void sim_asset_set_fault(struct sim_asset *a, enum sim_fault f);

/* The metric names of model m, in order (count in *n). */
const char *const *sim_model_metrics(enum sim_model m, size_t *n);

/* The ambient temperature at the asset's current time. */
double sim_asset_ambient(const struct sim_asset *a);

/* The equilibrium temperature the asset is heading for now (what temp
 * would reach if inputs and ambient stayed as they are). */
double sim_asset_temp_target(const struct sim_asset *a);

/* The true metric values, no noise, no stuck or dropout. */
void sim_asset_expected(const struct sim_asset *a, struct sim_sample *out);

/*
 * What the device reports now: expected values plus measurement noise, with
 * the stuck metric repeating its value and the dropout metric left out.
 * Draws from the asset's generator (so it is part of the deterministic
 * sequence).
 */
void sim_asset_sample(struct sim_asset *a, struct sim_sample *out);

#endif
