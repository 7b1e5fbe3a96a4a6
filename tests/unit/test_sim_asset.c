/*
 * test_sim_asset.c - the physics of src/sim/asset.c against closed forms:
 * the first-order thermal response reaches the steady state the equations
 * give with the model's time constant, exactly for any step size; on:false
 * decays to ambient; wear raises vibration; every fault does what docs/sim.md
 * says; the same seed gives the same run.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/asset.h"

#define T0 1796428800.0 /* 2026-12-05 00:00:00 UTC */

static void assert_near(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol))
		fail_msg("got %.9g, want %.9g +- %.3g", got, want, tol);
}

/* An asset whose drivers are constant: no daily cycles, no demand walk,
 * no wear growth, so its temperature is an exact first-order system. */
static void quiet_asset(struct sim_asset *a, enum sim_model m)
{
	sim_asset_init(a, m, 42, T0);
	a->p.ambient_amp = 0;
	a->p.demand_amp = 0;
	a->p.demand_sigma = 0;
	a->demand_noise = 0;
	a->p.wear_rate = 0;
	a->wear = 0;
	sim_asset_step(a, 20 * a->p.tau_s); /* settle */
}

static double metric(const struct sim_sample *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return s->value[i];
	fail_msg("no metric %s", name);
	return NAN;
}

static bool has_metric(const struct sim_sample *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return true;
	return false;
}

static void test_names(void **state)
{
	(void)state;
	size_t n;
	const char *const *m;

	assert_int_equal(sim_model_parse("pump", 4), SIM_PUMP);
	assert_int_equal(sim_model_parse("hvac", 4), SIM_HVAC);
	assert_int_equal(sim_model_parse("pumps", 5), SIM_MODEL_COUNT);
	assert_int_equal(sim_model_parse("pum", 3), SIM_MODEL_COUNT);
	assert_int_equal(sim_fault_parse("bearing", 7), SIM_FAULT_BEARING);
	assert_int_equal(sim_fault_parse("none", 4), SIM_FAULT_COUNT);
	assert_null(sim_fault_name(SIM_FAULT_NONE));
	assert_string_equal(sim_fault_name(SIM_FAULT_DROPOUT), "dropout");
	m = sim_model_metrics(SIM_PUMP, &n);
	assert_int_equal(n, 5);
	assert_string_equal(m[2], "pressure");
	m = sim_model_metrics(SIM_MOTOR, &n);
	assert_string_equal(m[2], "current");
	assert_string_equal(m[3], "rpm");
	m = sim_model_metrics(SIM_HVAC, &n);
	assert_int_equal(n, 4);
	assert_string_equal(m[0], "supply_temp");
	assert_string_equal(m[1], "room_temp");
	assert_string_equal(m[2], "humidity");
	assert_string_equal(m[3], "power");
}

/* Steady state = ambient + rise * power / rated (no wear), as documented. */
static void test_steady_state(void **state)
{
	(void)state;
	for (int m = SIM_PUMP; m <= SIM_MOTOR; m++) {
		struct sim_asset a;
		struct sim_sample e;
		quiet_asset(&a, (enum sim_model)m);
		sim_asset_expected(&a, &e);
		double load = metric(&e, "power") / a.p.rated_kw;
		assert_true(load > 0.1 && load < 1.0);
		assert_near(a.temp, sim_asset_ambient(&a) + a.p.rise * load, 1e-6);
		assert_near(sim_asset_temp_target(&a), a.temp, 1e-6);
	}
	/* the pump holds its pressure; its hydraulic power is p * Q / (36 eff) */
	struct sim_asset a;
	struct sim_sample e;
	quiet_asset(&a, SIM_PUMP);
	sim_asset_expected(&a, &e);
	assert_near(metric(&e, "pressure"), 4.0, 1e-9);
	assert_near(metric(&e, "power"), 4.0 * metric(&e, "flow") / (36.0 * 0.65), 1e-9);
	/* the motor holds its speed */
	quiet_asset(&a, SIM_MOTOR);
	sim_asset_expected(&a, &e);
	assert_near(metric(&e, "rpm"), 1500.0, 1e-9);
}

/* Overheat is a step of the equilibrium (cooling 1 -> 0.25, same load):
 * after one time constant the gap has shrunk to 1/e, whatever the step. */
static void test_time_constant(void **state)
{
	(void)state;
	for (int m = SIM_PUMP; m <= SIM_MOTOR; m++) {
		struct sim_asset a, b;
		quiet_asset(&a, (enum sim_model)m);
		double amb = sim_asset_ambient(&a), t_start = a.temp;
		sim_asset_set_fault(&a, SIM_FAULT_OVERHEAT);
		double t_eq = sim_asset_temp_target(&a);
		assert_near(t_eq - amb, (t_start - amb) / a.p.overheat_cooling, 1e-6);
		b = a;
		for (int i = 0; i < (int)a.p.tau_s; i++)
			sim_asset_step(&a, 1.0);
		sim_asset_step(&b, b.p.tau_s);
		double want = t_eq + (t_start - t_eq) * exp(-1.0);
		assert_near(a.temp, want, 1e-6);
		assert_near(b.temp, want, 1e-6);
		sim_asset_step(&a, 6 * a.p.tau_s);
		assert_near(a.temp, t_eq, 0.01 * (t_eq - amb));
	}
}

/* HVAC: the room follows a setpoint change with the room's time constant
 * when the unit has the capacity; the supply air leads it. */
static void test_hvac_setpoint(void **state)
{
	(void)state;
	struct sim_asset a;
	quiet_asset(&a, SIM_HVAC);
	assert_near(a.temp, 21.0, 1e-6);
	sim_asset_set_setpoint(&a, 24.0);
	sim_asset_step(&a, a.p.tau_s);
	assert_near(a.temp, 24.0 + (21.0 - 24.0) * exp(-1.0), 1e-6);
	sim_asset_step(&a, 10 * a.p.tau_s);
	assert_near(a.temp, 24.0, 1e-3);
	struct sim_sample e;
	sim_asset_expected(&a, &e);
	/* cooling: supply air below the room, power = fan + |q| / COP */
	assert_true(metric(&e, "supply_temp") < metric(&e, "room_temp") - 1.0);
	assert_true(metric(&e, "power") > 0.4);
	assert_true(metric(&e, "humidity") > 5 && metric(&e, "humidity") < 95);
	/* setpoints are clamped to the model's range */
	sim_asset_set_setpoint(&a, 99);
	assert_near(a.setpoint, a.p.sp_max, 0);
	sim_asset_set_setpoint(&a, NAN);
	assert_near(a.setpoint, a.p.sp_max, 0);
}

static void test_hvac_overheat(void **state)
{
	(void)state;
	struct sim_asset a;
	struct sim_sample e0, e1;
	quiet_asset(&a, SIM_HVAC);
	sim_asset_expected(&a, &e0);
	sim_asset_set_fault(&a, SIM_FAULT_OVERHEAT);
	sim_asset_step(&a, 3600);
	sim_asset_expected(&a, &e1);
	assert_true(metric(&e1, "room_temp") > metric(&e0, "room_temp") + 3.0);
	assert_true(metric(&e1, "supply_temp") > metric(&e0, "supply_temp") + 8.0);
}

static void test_off_decays_to_ambient(void **state)
{
	(void)state;
	for (int m = 0; m < SIM_MODEL_COUNT; m++) {
		struct sim_asset a;
		struct sim_sample e;
		quiet_asset(&a, (enum sim_model)m);
		sim_asset_set_on(&a, false);
		sim_asset_step(&a, 15 * a.p.tau_s);
		sim_asset_expected(&a, &e);
		double amb = sim_asset_ambient(&a);
		if (m == SIM_HVAC) {
			/* free-running room: ambient plus the internal gains */
			assert_near(metric(&e, "room_temp"), amb + 2.0 / 0.5, 0.01);
			assert_near(metric(&e, "power"), 0, 1e-9);
			continue;
		}
		assert_near(a.temp, amb, 0.01);
		assert_near(metric(&e, "power"), 0, 1e-6);
		assert_true(metric(&e, "vibration") < 0.11);
		if (m == SIM_PUMP) {
			assert_near(metric(&e, "pressure"), 0, 1e-6);
			assert_near(metric(&e, "flow"), 0, 1e-3);
		} else {
			assert_near(metric(&e, "rpm"), 0, 1e-6);
			assert_near(metric(&e, "current"), 0, 1e-3);
		}
		/* back on: it heats up again */
		sim_asset_set_on(&a, true);
		sim_asset_step(&a, 5 * a.p.tau_s);
		assert_true(a.temp > amb + 3.0);
	}
}

static void test_wear_raises_vibration(void **state)
{
	(void)state;
	struct sim_asset a;
	struct sim_sample e0, e1, e2;
	sim_asset_init(&a, SIM_MOTOR, 3, T0);
	a.p.demand_sigma = 0;
	a.demand_noise = 0;
	sim_asset_expected(&a, &e0);
	double w0 = a.wear;
	/* slow degradation: a month of running wears the bearing a little */
	sim_asset_step(&a, 30 * 86400.0);
	assert_true(a.wear > w0);
	assert_true(a.wear < w0 + 0.05);
	sim_asset_expected(&a, &e1);
	/* the bearing fault: hours, not years */
	sim_asset_set_fault(&a, SIM_FAULT_BEARING);
	double w1 = a.wear;
	sim_asset_step(&a, 3600);
	assert_true(a.wear > w1 + 0.2);
	sim_asset_expected(&a, &e2);
	assert_true(metric(&e2, "vibration") > metric(&e0, "vibration") + 2.0);
	/* compare at the same time of day to leave the demand cycle out */
	assert_true(a.temp > 0);
	/* vibration is monotonic in wear at a fixed operating point */
	struct sim_asset b = a;
	b.wear = 0.2;
	struct sim_asset c = a;
	c.wear = 0.9;
	sim_asset_expected(&b, &e0);
	sim_asset_expected(&c, &e1);
	assert_true(metric(&e1, "vibration") > metric(&e0, "vibration") + 3.0);
	/* a repair renews the bearing */
	sim_asset_set_fault(&a, SIM_FAULT_NONE);
	assert_true(a.wear < 0.05);
	/* wear never passes 1 */
	sim_asset_set_fault(&a, SIM_FAULT_BEARING);
	sim_asset_step(&a, 10 * 86400.0);
	assert_near(a.wear, 1.0, 0);
}

static void test_stuck_and_dropout(void **state)
{
	(void)state;
	struct sim_asset a;
	struct sim_sample s, s2;
	sim_asset_init(&a, SIM_PUMP, 9, T0);
	sim_asset_set_fault(&a, SIM_FAULT_STUCK);
	assert_true(a.fault_metric >= 0 && a.fault_metric < 5);
	sim_asset_sample(&a, &s);
	assert_int_equal(s.n, 5);
	for (int i = 0; i < 20; i++) {
		sim_asset_step(&a, 60);
		sim_asset_sample(&a, &s2);
		assert_int_equal(s2.n, 5);
		/* the stuck metric repeats exactly; noise moves the others */
		assert_true(s2.value[a.fault_metric] == s.value[a.fault_metric]);
	}
	int other = (a.fault_metric + 1) % 5;
	assert_true(s2.value[other] != s.value[other]);

	sim_asset_set_fault(&a, SIM_FAULT_DROPOUT);
	const char *gone = sim_model_metrics(SIM_PUMP, &s.n)[a.fault_metric];
	sim_asset_sample(&a, &s);
	assert_int_equal(s.n, 4);
	assert_false(has_metric(&s, gone));
	sim_asset_set_fault(&a, SIM_FAULT_NONE);
	sim_asset_sample(&a, &s);
	assert_int_equal(s.n, 5);
	assert_true(has_metric(&s, gone));
}

static void test_deterministic_by_seed(void **state)
{
	(void)state;
	for (int m = 0; m < SIM_MODEL_COUNT; m++) {
		struct sim_asset a, b, c;
		struct sim_sample sa, sb, sc;
		bool differ = false;
		sim_asset_init(&a, (enum sim_model)m, 1234, T0);
		sim_asset_init(&b, (enum sim_model)m, 1234, T0);
		sim_asset_init(&c, (enum sim_model)m, 1235, T0);
		for (int i = 0; i < 2000; i++) {
			if (i == 500) {
				sim_asset_set_setpoint(&a, a.p.sp_max * 0.8);
				sim_asset_set_setpoint(&b, b.p.sp_max * 0.8);
				sim_asset_set_fault(&a, SIM_FAULT_STUCK);
				sim_asset_set_fault(&b, SIM_FAULT_STUCK);
			}
			sim_asset_step(&a, 7.5);
			sim_asset_step(&b, 7.5);
			sim_asset_step(&c, 7.5);
			sim_asset_sample(&a, &sa);
			sim_asset_sample(&b, &sb);
			sim_asset_sample(&c, &sc);
			assert_int_equal(sa.n, sb.n);
			assert_memory_equal(sa.value, sb.value, sa.n * sizeof(double));
			if (memcmp(sa.value, sc.value, sa.n * sizeof(double)) != 0)
				differ = true;
			for (size_t k = 0; k < sa.n; k++)
				assert_true(isfinite(sa.value[k]));
		}
		assert_true(differ);
		assert_memory_equal(&a.rng, &b.rng, sizeof a.rng);
	}
}

/* Huge and odd steps keep everything finite and in range. */
static void test_robust_steps(void **state)
{
	(void)state;
	double steps[] = { 0, -5, NAN, 1e-9, 0.1, 86400 * 30.0, 3 };
	for (int m = 0; m < SIM_MODEL_COUNT; m++) {
		struct sim_asset a;
		struct sim_sample s;
		sim_asset_init(&a, (enum sim_model)m, 5, T0);
		for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
			sim_asset_step(&a, steps[i]);
			sim_asset_sample(&a, &s);
			for (size_t k = 0; k < s.n; k++)
				assert_true(isfinite(s.value[k]));
			assert_true(a.wear >= 0 && a.wear <= 1);
		}
		sim_asset_set_fault(&a, (enum sim_fault)99); /* ignored */
		assert_int_equal(a.fault, SIM_FAULT_NONE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_steady_state),
		cmocka_unit_test(test_time_constant),
		cmocka_unit_test(test_hvac_setpoint),
		cmocka_unit_test(test_hvac_overheat),
		cmocka_unit_test(test_off_decays_to_ambient),
		cmocka_unit_test(test_wear_raises_vibration),
		cmocka_unit_test(test_stuck_and_dropout),
		cmocka_unit_test(test_deterministic_by_seed),
		cmocka_unit_test(test_robust_steps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
