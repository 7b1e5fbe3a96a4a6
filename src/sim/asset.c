/*
 * asset.c - the physics of pumps, motors and HVAC units (see asset.h and
 * docs/sim.md for the equations).
 *
 * Invariants:
 *   - Only sim_asset_init/_step/_set_fault/_sample draw random numbers, in
 *     a fixed order, so a run is a pure function of (seed, t0, calls).
 *   - First-order lags are solved exactly over each sub-step
 *     (x += (target - x) * (1 - exp(-h / tau))); a step is cut into
 *     sub-steps of at most MAX_SUBSTEP_S (or 1/MAX_SUBSTEPS of a step over
 *     10000 s) so that the daily cycles and the demand walk, which drive
 *     the targets, are followed closely whatever step the caller takes.
 *   - State stays finite and in range: wear in [0, 1], demand in
 *     [DEMAND_MIN, DEMAND_MAX], flows, speeds and powers >= 0.
 */
#include <math.h>
#include <string.h>

#include "sim/asset.h"

#define MAX_SUBSTEP_S 10.0
#define MAX_SUBSTEPS 1000.0  /* per sim_asset_step call */
#define DEMAND_MIN 0.05
#define DEMAND_MAX 1.0
#define DAY_S 86400.0
#define TWO_PI 6.283185307179586

/* pump */
#define PUMP_Q_MAX 60.0      /* m3/h through fully open valves at 10 bar */
#define PUMP_P_REF 10.0      /* bar */
#define PUMP_EFF 0.65
#define PUMP_P_SHUTOFF 12.0  /* bar: speed fraction reference */
/* motor */
#define MOTOR_RPM_RATED 3000.0
#define MOTOR_I_MAG 8.0      /* A, magnetising current at speed */
#define MOTOR_I_LOAD 20.0    /* A added at load 1 */
/* HVAC */
#define HVAC_UA 0.5          /* kW/K, envelope loss */
#define HVAC_GAINS 2.0       /* kW, people and equipment */
#define HVAC_Q_MAX 8.0       /* kW, heating or cooling capacity */
#define HVAC_MCP 0.4         /* kW/K, supply air flow times heat capacity */
#define HVAC_COP 3.0
#define HVAC_FAN_KW 0.4
#define HVAC_FAULT_HEAT 1.0  /* kW the failed unit adds (compressor, fan) */

static const char *const METRICS[SIM_MODEL_COUNT][SIM_METRICS_MAX] = {
	[SIM_PUMP] = { "temperature", "vibration", "pressure", "flow", "power" },
	[SIM_MOTOR] = { "temperature", "vibration", "current", "rpm", "power" },
	[SIM_HVAC] = { "supply_temp", "room_temp", "humidity", "power", NULL },
};
static const size_t NMETRICS[SIM_MODEL_COUNT] = { 5, 5, 4 };
static const char *const MODELS[SIM_MODEL_COUNT] = { "pump", "motor", "hvac" };
static const char *const FAULTS[SIM_FAULT_COUNT] = { NULL, "overheat", "bearing", "stuck",
						     "dropout" };

const char *sim_model_name(enum sim_model m)
{
	return (unsigned)m < SIM_MODEL_COUNT ? MODELS[m] : NULL;
}

enum sim_model sim_model_parse(const char *name, size_t len)
{
	for (int i = 0; i < SIM_MODEL_COUNT; i++)
		if (strlen(MODELS[i]) == len && memcmp(MODELS[i], name, len) == 0)
			return (enum sim_model)i;
	return SIM_MODEL_COUNT;
}

const char *sim_fault_name(enum sim_fault f)
{
	return (unsigned)f < SIM_FAULT_COUNT ? FAULTS[f] : NULL;
}

enum sim_fault sim_fault_parse(const char *name, size_t len)
{
	for (int i = 1; i < SIM_FAULT_COUNT; i++)
		if (strlen(FAULTS[i]) == len && memcmp(FAULTS[i], name, len) == 0)
			return (enum sim_fault)i;
	return SIM_FAULT_COUNT;
}

const char *const *sim_model_metrics(enum sim_model m, size_t *n)
{
	*n = NMETRICS[m];
	return METRICS[m];
}

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double sim_rng_uniform(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Box-Muller; one draw per call keeps the sequence simple to reason about. */
double sim_rng_normal(struct sim_rng *r)
{
	double u1 = sim_rng_uniform(r), u2 = sim_rng_uniform(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

/* ---- parameters ---------------------------------------------------------- */

void sim_params_default(enum sim_model m, struct sim_params *p)
{
	memset(p, 0, sizeof *p);
	p->ambient_amp = 4.0;
	p->ambient_jitter = 1.5;
	p->overheat_cooling = 0.25;
	p->demand_amp = 0.15;
	p->demand_sigma = 0.06;
	p->demand_tau_s = 900.0;
	p->wear_rate = 2e-8;
	p->bearing_factor = 20000.0;
	p->wear_init_max = 0.3;
	switch (m) {
	case SIM_PUMP:
		p->ambient_mean = 18.0;
		p->tau_s = 300.0;
		p->rise = 30.0;
		p->wear_heat = 15.0;
		p->sp_min = 1.0, p->sp_max = 10.0, p->sp_default = 4.0;
		p->tau_mech_s = 5.0;
		p->demand_mean = 0.6;
		p->rated_kw = 15.0;
		p->vib_base = 2.0;
		p->vib_wear_gain = 12.0;
		p->noise[0] = 0.15, p->noise[1] = 0.08, p->noise[2] = 0.03;
		p->noise[3] = 0.3, p->noise[4] = 0.05;
		break;
	case SIM_MOTOR:
		p->ambient_mean = 22.0;
		p->tau_s = 600.0;
		p->rise = 45.0;
		p->wear_heat = 12.0;
		p->sp_min = 300.0, p->sp_max = 3600.0, p->sp_default = 1500.0;
		p->tau_mech_s = 3.0;
		p->demand_mean = 0.6;
		p->rated_kw = 15.0;
		p->vib_base = 1.8;
		p->vib_wear_gain = 10.0;
		p->noise[0] = 0.15, p->noise[1] = 0.06, p->noise[2] = 0.15;
		p->noise[3] = 3.0, p->noise[4] = 0.05;
		break;
	default: /* SIM_HVAC */
		p->ambient_mean = 24.0;
		p->ambient_amp = 6.0;
		p->tau_s = 1800.0;
		p->rise = 0.0; /* the room follows its heat balance instead */
		p->wear_heat = 0.0;
		p->sp_min = 16.0, p->sp_max = 30.0, p->sp_default = 21.0;
		p->tau_mech_s = 120.0;
		p->demand_mean = 0.5;
		p->rated_kw = HVAC_Q_MAX;
		p->vib_base = 0.0;
		p->vib_wear_gain = 0.0;
		p->noise[0] = 0.1, p->noise[1] = 0.05, p->noise[2] = 0.4;
		p->noise[3] = 0.03;
		break;
	}
}

/* ---- the model ------------------------------------------------------------ */

static double clampd(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

static double lag(double x, double target, double h, double tau)
{
	return x + (target - x) * (tau > 0 ? -expm1(-h / tau) : 1.0);
}

/* Hours into the UTC day, [0, 24). */
static double day_hours(double t)
{
	double s = fmod(t, DAY_S);

	if (s < 0)
		s += DAY_S;
	return s / 3600.0;
}

static double ambient_at(const struct sim_asset *a, double t)
{
	/* Peak at 15:00. */
	return a->p.ambient_mean + a->ambient_offset +
	       a->p.ambient_amp * sin(TWO_PI * (day_hours(t) - 9.0) / 24.0);
}

double sim_asset_ambient(const struct sim_asset *a)
{
	return ambient_at(a, a->t);
}

/* Process demand (pump valve opening, motor torque), peak at 14:00. */
static double demand_at(const struct sim_asset *a, double t)
{
	double d = a->p.demand_mean + a->p.demand_amp * sin(TWO_PI * (day_hours(t) - 8.0) / 24.0) +
		   a->demand_noise;
	return clampd(d, DEMAND_MIN, DEMAND_MAX);
}

static double cooling(const struct sim_asset *a)
{
	return a->fault == SIM_FAULT_OVERHEAT ? a->p.overheat_cooling : 1.0;
}

static double pump_flow(double pressure, double demand)
{
	return PUMP_Q_MAX * demand * sqrt(fmax(pressure, 0.0) / PUMP_P_REF);
}

/* Speed as a fraction of full speed: vibration and friction scale with it. */
static double speed_frac(const struct sim_asset *a)
{
	if (a->model == SIM_PUMP)
		return sqrt(clampd(a->mech / PUMP_P_SHUTOFF, 0.0, 1.0));
	if (a->model == SIM_MOTOR)
		return clampd(a->mech / MOTOR_RPM_RATED, 0.0, 1.2);
	return a->on ? 1.0 : 0.0;
}

/* Mechanical power drawn, kW, at time t. */
static double mech_power(const struct sim_asset *a, double t)
{
	double d = demand_at(a, t);

	if (a->model == SIM_PUMP) {
		double q = pump_flow(a->mech, d);
		return a->mech * q / (36.0 * PUMP_EFF);
	}
	return a->p.rated_kw * d * clampd(a->mech / MOTOR_RPM_RATED, 0.0, 1.2);
}

/* HVAC heat to the room (kW, positive heats) for the given room state. */
static double hvac_heat(const struct sim_asset *a, double amb)
{
	double cap = HVAC_Q_MAX * (1.0 - 0.5 * a->wear);
	double need = HVAC_UA * (a->setpoint - amb) - HVAC_GAINS;
	double q;

	if (!a->on)
		return 0.0;
	q = clampd(need, -cap, cap);
	if (a->fault == SIM_FAULT_OVERHEAT)
		q = fmax(q, 0.0) + HVAC_FAULT_HEAT; /* no cooling left */
	return q;
}

static double hvac_mcp(const struct sim_asset *a)
{
	return HVAC_MCP * (1.0 - 0.5 * a->wear);
}

/* Equilibrium temperature at time t for the current inputs and mech state. */
static double temp_target_at(const struct sim_asset *a, double t)
{
	double amb = ambient_at(a, t);

	if (a->model == SIM_HVAC)
		return amb + (HVAC_GAINS + hvac_heat(a, amb)) / HVAC_UA;
	double load = mech_power(a, t) / a->p.rated_kw;
	double rise = a->p.rise * load + a->p.wear_heat * a->wear * speed_frac(a);
	return amb + rise / cooling(a);
}

double sim_asset_temp_target(const struct sim_asset *a)
{
	return temp_target_at(a, a->t);
}

static double mech_target(const struct sim_asset *a)
{
	if (a->model == SIM_HVAC)
		return a->temp + a->hvac_q / hvac_mcp(a);
	return a->on ? a->setpoint : 0.0;
}

static void substep(struct sim_asset *a, double h)
{
	double tm = a->t + h / 2;
	double k = a->p.demand_tau_s > 0 ? exp(-h / a->p.demand_tau_s) : 0.0;
	double load;

	/* Ornstein-Uhlenbeck, exact for any h. */
	a->demand_noise = a->demand_noise * k +
			  a->p.demand_sigma * sqrt(fmax(0.0, 1.0 - k * k)) * sim_rng_normal(&a->rng);
	if (a->model == SIM_HVAC) {
		a->hvac_q = hvac_heat(a, ambient_at(a, tm));
		a->temp = lag(a->temp, temp_target_at(a, tm), h, a->p.tau_s);
		a->mech = lag(a->mech, mech_target(a), h, a->p.tau_mech_s);
		load = fabs(a->hvac_q) / HVAC_Q_MAX;
	} else {
		a->mech = lag(a->mech, mech_target(a), h, a->p.tau_mech_s);
		a->temp = lag(a->temp, temp_target_at(a, tm), h, a->p.tau_s);
		load = mech_power(a, tm) / a->p.rated_kw * (speed_frac(a) > 0.01 ? 1.0 : 0.0);
	}
	double rate = a->p.wear_rate * (0.1 + load) * (a->on ? 1.0 : 0.0);
	if (a->fault == SIM_FAULT_BEARING)
		rate *= a->p.bearing_factor;
	a->wear = clampd(a->wear + rate * h, 0.0, 1.0);
	a->t += h;
}

void sim_asset_step(struct sim_asset *a, double dt_s)
{
	if (!(dt_s > 0))
		return;
	/* Long steps (hours at a high --speed, or a forecast) get longer
	 * sub-steps instead of unbounded work. */
	double hmax = dt_s / MAX_SUBSTEPS > MAX_SUBSTEP_S ? dt_s / MAX_SUBSTEPS : MAX_SUBSTEP_S;
	while (dt_s > 0) {
		double h = dt_s > hmax ? hmax : dt_s;
		substep(a, h);
		dt_s -= h;
	}
}

void sim_asset_init(struct sim_asset *a, enum sim_model m, uint64_t seed, double t0_s)
{
	memset(a, 0, sizeof *a);
	a->model = (unsigned)m < SIM_MODEL_COUNT ? m : SIM_PUMP;
	sim_params_default(a->model, &a->p);
	sim_rng_seed(&a->rng, seed);
	a->t = t0_s;
	a->on = true;
	a->setpoint = a->p.sp_default;
	a->fault = SIM_FAULT_NONE;
	a->fault_metric = -1;
	a->ambient_offset = a->p.ambient_jitter * (2.0 * sim_rng_uniform(&a->rng) - 1.0);
	a->wear = a->p.wear_init_max * sim_rng_uniform(&a->rng);
	a->demand_noise = a->p.demand_sigma * sim_rng_normal(&a->rng);
	/* Start settled: running at the setpoint, temperatures at equilibrium. */
	if (a->model == SIM_HVAC) {
		a->temp = a->setpoint;
		a->hvac_q = hvac_heat(a, ambient_at(a, t0_s));
		a->temp = temp_target_at(a, t0_s);
		a->mech = mech_target(a);
	} else {
		a->mech = mech_target(a);
		a->temp = temp_target_at(a, t0_s);
	}
}

void sim_asset_set_on(struct sim_asset *a, bool on)
{
	a->on = on;
}

void sim_asset_set_setpoint(struct sim_asset *a, double sp)
{
	if (sp != sp) /* NaN keeps the old value */
		return;
	a->setpoint = clampd(sp, a->p.sp_min, a->p.sp_max);
}

void sim_asset_set_fault(struct sim_asset *a, enum sim_fault f)
{
	if ((unsigned)f >= SIM_FAULT_COUNT || f == a->fault)
		return;
	if (a->fault == SIM_FAULT_BEARING && f == SIM_FAULT_NONE)
		a->wear = 0.01; /* a new bearing */
	a->fault = f;
	a->fault_metric = -1;
	a->stuck_valid = false;
	if (f == SIM_FAULT_STUCK || f == SIM_FAULT_DROPOUT)
		a->fault_metric = (int)(sim_rng_next(&a->rng) % NMETRICS[a->model]);
}

void sim_asset_expected(const struct sim_asset *a, struct sim_sample *out)
{
	double s = speed_frac(a);
	double w15 = a->wear * sqrt(a->wear);
	double d = demand_at(a, a->t);

	out->n = NMETRICS[a->model];
	for (size_t i = 0; i < out->n; i++)
		out->name[i] = METRICS[a->model][i];
	switch (a->model) {
	case SIM_PUMP:
		out->value[0] = a->temp;
		out->value[1] = 0.1 + s * (a->p.vib_base + a->p.vib_wear_gain * w15);
		out->value[2] = a->mech;
		out->value[3] = pump_flow(a->mech, d);
		out->value[4] = mech_power(a, a->t);
		break;
	case SIM_MOTOR: {
		double load = mech_power(a, a->t) / a->p.rated_kw;
		out->value[0] = a->temp;
		out->value[1] = 0.1 + s * (a->p.vib_base + a->p.vib_wear_gain * w15);
		out->value[2] = MOTOR_I_MAG * clampd(a->mech / 150.0, 0.0, 1.0) + MOTOR_I_LOAD * load;
		out->value[3] = a->mech;
		out->value[4] = mech_power(a, a->t);
		break;
	}
	default: {
		double cool = fmax(0.0, -a->hvac_q) / HVAC_Q_MAX;
		out->value[0] = a->mech;
		out->value[1] = a->temp;
		out->value[2] = clampd(55.0 - 2.5 * (a->temp - 21.0) - 12.0 * cool, 5.0, 95.0);
		out->value[3] = a->on ? HVAC_FAN_KW * (1.0 + 2.0 * a->wear) +
						fabs(a->hvac_q) / HVAC_COP
				      : 0.0;
		break;
	}
	}
}

/* Metrics that cannot be negative (everything but temperatures). */
static bool nonnegative(enum sim_model m, size_t i)
{
	if (m == SIM_HVAC)
		return i >= 2;
	return i >= 1;
}

void sim_asset_sample(struct sim_asset *a, struct sim_sample *out)
{
	struct sim_sample e;
	size_t n = 0;

	sim_asset_expected(a, &e);
	for (size_t i = 0; i < e.n; i++) {
		double v = e.value[i] + a->p.noise[i] * sim_rng_normal(&a->rng);
		if (nonnegative(a->model, i) && v < 0)
			v = 0;
		if ((int)i == a->fault_metric && a->fault == SIM_FAULT_STUCK) {
			if (!a->stuck_valid) {
				a->stuck_value = v;
				a->stuck_valid = true;
			}
			v = a->stuck_value;
		}
		if ((int)i == a->fault_metric && a->fault == SIM_FAULT_DROPOUT)
			continue;
		out->name[n] = e.name[i];
		out->value[n] = v;
		n++;
	}
	out->n = n;
}
