/* fuzz_sim_desired.c - any bytes as a twin message to a simulated device
 * (src/sim/desired.c). The first byte picks the model and the message kind;
 * the rest is the payload. Whatever comes, the settings stay valid (setpoint
 * within the model's range, interval within 100..3600000, a known fault), a
 * refused payload changes nothing, and the reported document the device
 * would send next is JSON that, read back as a delta, changes nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sim/desired.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const struct sim_settings *a, const struct sim_settings *b)
{
	return a->on == b->on && a->setpoint == b->setpoint && a->interval_ms == b->interval_ms &&
	       a->fault == b->fault;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum sim_model m = (enum sim_model)(data[0] % SIM_MODEL_COUNT);
	enum sim_twin_msg k = (enum sim_twin_msg)((data[0] / SIM_MODEL_COUNT) % 3);
	struct sim_settings s, before;
	struct sim_desired_result r;
	struct sim_params p;

	sim_params_default(m, &p);
	sim_settings_default(m, 1000, &s);
	before = s;
	enum mote_err e = sim_desired_apply(m, k, data + 1, size - 1, &s, &r);
	if (e != MOTE_OK && !same(&s, &before))
		__builtin_trap();
	if (e != MOTE_OK && e != MOTE_EMALFORMED && e != MOTE_ETOOBIG)
		__builtin_trap();
	if (!(s.setpoint >= p.sp_min && s.setpoint <= p.sp_max) ||
	    s.interval_ms < SIM_INTERVAL_MIN || s.interval_ms > SIM_INTERVAL_MAX ||
	    (unsigned)s.fault >= SIM_FAULT_COUNT)
		__builtin_trap();
	if (strlen(r.error) >= SIM_ERROR_MAX || (r.changed & ~r.touched))
		__builtin_trap();

	char rep[SIM_ERROR_MAX + 256];
	size_t n = sim_reported_json(m, &s, r.error, rep, sizeof rep);
	if (n == 0)
		__builtin_trap();
	cJSON *j = cJSON_ParseWithLength(rep, n);
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(j, "state"), "reported");
	if (!cJSON_IsObject(obj))
		__builtin_trap();
	/* The report as a delta: nothing changes, no error. */
	char *inner = cJSON_PrintUnformatted(obj);
	if (!inner)
		__builtin_trap();
	char delta[SIM_ERROR_MAX + 512];
	int dn = snprintf(delta, sizeof delta, "{\"state\":%s}", inner);
	struct sim_settings t = s;
	if (dn < 0 || (size_t)dn >= sizeof delta ||
	    sim_desired_apply(m, SIM_TWIN_DELTA, delta, (size_t)dn, &t, &r) != MOTE_OK ||
	    r.error[0] || !same(&t, &s))
		__builtin_trap();
	cJSON_free(inner);
	cJSON_Delete(j);
	return 0;
}
