/*
 * api_int.h - what the API's files share (private to src/api): the server
 * object, the per-request state and the handlers' entry points.
 *
 * Locks: sse_mu guards the SSE client list and every client's buffer;
 * nothing else is held with it. Counters are atomics.
 */
#ifndef MOTE_API_INT_H
#define MOTE_API_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "api/api.h"
#include "api/buf.h"
#include "api/route.h"
#include "base/reply.h"

struct sse_client;

struct api {
	struct api_config cfg;
	char addr[256];
	struct platform *p;
	struct auth *auth;
	struct MHD_Daemon *d;
	uint16_t port;
	atomic_bool closing;
	/* SSE */
	pthread_mutex_t sse_mu;
	struct sse_client *clients;
	atomic_uint nclients;
	uint32_t heartbeat_ms;
	/* counters for /metrics */
	atomic_uint_fast64_t by_class[6];   /* [1]..[5]: 1xx..5xx answers */
	atomic_uint_fast64_t auth_failed;
	atomic_uint_fast64_t sse_events;    /* frames queued to clients */
	atomic_uint_fast64_t sse_dropped;   /* clients dropped: too slow */
	atomic_uint_fast64_t sse_refused;   /* over max_sse_clients */
	/* the server's own log lines, rate-limited */
	pthread_mutex_t log_mu;
	uint64_t log_window, log_lines, log_hidden;
};

/* A request: made by the URI log callback, freed when it completes. */
struct req {
	struct api *api;
	char *raw;               /* the request target as sent */
	struct api_uri uri;
	bool started;
	const struct api_route *route;
	const char *id;          /* {id} (points into uri) */
	int role;                /* the token's ACL_ROLE_* */
	char who[80];            /* the token's name */
	char *body;
	size_t len;
	bool too_big;
};

/*
 * A route's answer, computed: fills r (status, body, content_type). For
 * routes that run on the pipeline thread this goes through platform_call.
 * accept: the request's Accept header or NULL.
 */
void api_handle(struct api *a, struct req *q, const char *accept, struct mote_reply *r);
/* /metrics text. */
void api_metrics(struct api *a, struct mote_reply *r);

#endif
