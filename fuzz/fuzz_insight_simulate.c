/*
 * fuzz_insight_simulate.c - hostile what-if requests and twin reports
 * against a device whose models have learned (so every path through
 * parsing, scenario, prediction and thresholds is reachable).
 *
 * Input: first byte even -> the bytes are a POST .../simulate body; odd ->
 * a twin update the device sent (insight_on_report), followed by a request
 * that uses whatever setpoint it left behind.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "insight/insight.h"

/* The harness's one context: built once, reused by every input. */
static struct fuzz_ctx {
	sqlite3 *db;
	struct insight *in;
} ctx;

static void learn(void)
{
	char err[256];
	if (sqlite3_open(":memory:", &ctx.db) != SQLITE_OK ||
	    insight_open(ctx.db, NULL, NULL, &ctx.in, err, sizeof err) != MOTE_OK)
		abort(); /* the harness itself is broken, not the input */
	double y = 40, t0 = 1796400000;
	for (int k = 0; k < 3600; k++) {
		if (k % 600 == 0) {
			char rep[80];
			int n = snprintf(rep, sizeof rep, "{\"state\":{\"reported\":{\"setpoint\":%d}}}",
					 3 + (k / 600) % 4);
			insight_on_report(ctx.in, "p", (const uint8_t *)rep, (size_t)n);
		}
		double power = 6 + 3 * sin(k / 300.0) + (k / 600) % 4;
		y += (20 + 2 * power - y) * (1 - exp(-1 / 120.0));
		int64_t ms = (int64_t)((t0 + k) * 1000);
		struct telemetry_point pts[3] = { { "temperature", ms, y },
						  { "power", ms, power },
						  { "vibration", ms, 2 + k * 1e-5 } };
		insight_on_points(ctx.in, "p", "pump", pts, 3, ms);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ctx.in)
		learn();
	if (size < 1 || size > 65536)
		return 0;
	char *body = malloc(size); /* NUL-terminated, as the API hands bodies over */
	if (!body)
		return 0;
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	struct mote_reply r = { 0 };
	if (data[0] & 1) {
		insight_on_report(ctx.in, "p", (const uint8_t *)body, size - 1);
		const char *q = "{\"horizon_s\":600,\"scenario\":{\"setpoint\":5}}";
		insight_simulate(ctx.in, "p", "pump", q, strlen(q), 0, &r);
	} else {
		insight_simulate(ctx.in, "p", "pump", body, size - 1, 0, &r);
	}
	mote_reply_clear(&r);
	free(body);
	return 0;
}
