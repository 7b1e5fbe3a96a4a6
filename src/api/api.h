/*
 * api.h - the HTTP API (libmicrohttpd): versioned REST under /api/v1,
 * Server-Sent Events at /api/v1/events, /metrics (Prometheus text),
 * /healthz and /api/v1/openapi.json. The face of src/api/; only the hub
 * includes it. Reference: docs/api.md.
 *
 * Every request except /healthz carries `Authorization: Bearer TOKEN`, a
 * token made by `mote token create` (scope read: GET; write: also changes
 * to devices, twins, alerts; admin: also rules, webhooks, tokens). Errors
 * use the stable shape of base/reply.h.
 *
 * Threading: the API runs its own threads (libmicrohttpd's); it reaches the
 * services only through platform_call and the thread-safe telemetry store.
 * api_event may be called from any thread.
 * Ownership: the caller owns the api (api_stop); platform and auth are
 * borrowed and must outlive it.
 */
#ifndef MOTE_API_H
#define MOTE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/err.h"
#include "broker/broker.h"
#include "platform/platform.h"

struct api;

struct api_config {
	const char *addr;            /* "host:port" (borrowed) */
	uint32_t max_connections;    /* default 256 */
	uint32_t max_sse_clients;    /* default 64 */
	uint32_t max_body_bytes;     /* request bodies (default 65536) */
	uint32_t timeout_s;          /* idle connection timeout (default 30) */
	bool metrics_public;         /* /metrics without a token (hub: --metrics-public) */
	/* /healthz answers 503 once the oldest message waiting for the
	 * pipeline is older than this (hub: --health-max-lag, default 30000). */
	uint32_t health_max_lag_ms;
	/* The broker's latest counters for /metrics (the hub copies them once
	 * a second on its loop; any thread). NULL: none. */
	void (*broker_stats)(void *ctx, struct broker_stats *out);
	void *stats_ctx;
};

void api_config_defaults(struct api_config *cfg);

/* Binds and starts serving. MOTE_EIO / MOTE_EINVAL with a sentence in err. */
enum mote_err api_start(const struct api_config *cfg, struct platform *p, struct auth *auth,
			struct api **out, char *err, size_t errcap);
/* The port bound (useful with port 0). */
uint16_t api_port(const struct api *a);
/* Whether any event stream is open (a hint: the caller may skip building an
 * event's JSON when none is). Any thread; NULL: false. */
bool api_listening(const struct api *a);
/* A live event for SSE clients (the platform sink's event function lands here). */
void api_event(struct api *a, const char *type, const char *device_id, const char *json);
/* Closes every connection (SSE streams end) and frees. NULL accepted. */
void api_stop(struct api *a);

#endif
