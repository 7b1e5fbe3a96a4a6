/*
 * handlers.c - what each route does once the request is parsed,
 * authenticated and its body read (server.c): the registry, twin and rules
 * operations through platform_call (one closure struct, run on the pipeline
 * thread), the telemetry queries against the store directly, /metrics,
 * /healthz and the OpenAPI document.
 *
 * Query values are checked here, before anything reaches the pipeline: a
 * bad value is a 400 with a sentence, never a service call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "api/api_int.h"
#include "base/clock.h"

/* ---- the pipeline-thread closure ---- */

struct call {
	enum api_route_id id;
	const char *rid;
	const char *body;
	size_t len;
	const char *who;
	struct registry_filter dev_filter;
	struct alerts_filter alert_filter;
	uint32_t limit;
	bool exists;
	struct mote_reply r;
};

static void device_created(struct platform_services *s, struct call *c)
{
	/* A device registered over REST gets its (empty) twin at once, as
	 * one registered on first connect does. */
	cJSON *doc = c->r.body ? cJSON_Parse(c->r.body) : NULL;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "id");
	if (cJSON_IsString(id) && s->twins)
		twin_service_create(s->twins, id->valuestring, s->now_ms);
	cJSON_Delete(doc);
}

/*
 * PATCH /devices/{id}/twin: desired state, and the device's tags (which
 * live in the registry, like Azure's twin tags): {"desired":{..},
 * "version":N, "tags":{..}}. Tags are checked and written first; a body
 * with tags only answers the unchanged twin.
 */
static void twin_patch(struct platform_services *s, struct call *c, struct mote_reply *r)
{
	cJSON *o = cJSON_ParseWithLength(c->body, c->len);
	cJSON *tags = cJSON_IsObject(o) ? cJSON_DetachItemFromObjectCaseSensitive(o, "tags") : NULL;
	if (!tags) {
		cJSON_Delete(o);
		twin_service_patch(s->twins, c->rid, c->body, c->len, s->now_ms, r);
		return;
	}
	cJSON *upd = cJSON_CreateObject();
	char *text = NULL;
	if (upd) {
		cJSON_AddItemToObject(upd, "tags", tags);
		tags = NULL;
		text = cJSON_PrintUnformatted(upd);
	}
	cJSON_Delete(upd);
	cJSON_Delete(tags);
	if (!text) {
		cJSON_Delete(o);
		mote_reply_error(r, 500, "out of memory");
		return;
	}
	registry_update_json(s->registry, c->rid, text, strlen(text), r);
	free(text);
	if (r->status != 200) {
		cJSON_Delete(o);
		return;
	}
	mote_reply_clear(r);
	bool more = o->child != NULL;
	char *rest = more ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (rest)
		twin_service_patch(s->twins, c->rid, rest, strlen(rest), s->now_ms, r);
	else if (more)
		mote_reply_error(r, 500, "out of memory");
	else
		twin_service_get(s->twins, c->rid, r);
	free(rest);
}

/* The twin document as GET shows it: with the hub's "analytics" section. */
static void attach_analytics(struct platform_services *s, const char *id, struct mote_reply *r)
{
	if (r->status != 200 || !r->body)
		return;
	cJSON *sec = insight_section(s->insight, id, registry_model(s->registry, id), s->now_ms);
	if (!sec)
		return;
	cJSON *doc = cJSON_Parse(r->body);
	if (!doc || !cJSON_AddItemToObject(doc, "analytics", sec)) {
		cJSON_Delete(sec);
		cJSON_Delete(doc);
		return; /* the twin without the section beats no twin */
	}
	mote_reply_clear(r);
	mote_reply_cjson(r, 200, doc);
}

static void run(struct platform_services *s, void *arg)
{
	struct call *c = arg;
	struct mote_reply *r = &c->r;
	switch (c->id) {
	case API_R_DEVICES_LIST:
		registry_list_json(s->registry, &c->dev_filter, r);
		break;
	case API_R_DEVICES_CREATE:
		registry_create_json(s->registry, c->body, c->len, s->now_ms, r);
		if (r->status == 201)
			device_created(s, c);
		break;
	case API_R_DEVICE_GET:
		registry_get_json(s->registry, c->rid, r);
		break;
	case API_R_DEVICE_UPDATE:
		registry_update_json(s->registry, c->rid, c->body, c->len, r);
		break;
	case API_R_DEVICE_DELETE:
		platform_delete_device(s, c->rid, r);
		break;
	case API_R_TWIN_GET:
		if (!registry_exists(s->registry, c->rid)) {
			mote_reply_error(r, 404, "no device '%s'", c->rid);
		} else {
			twin_service_get(s->twins, c->rid, r);
			attach_analytics(s, c->rid, r);
		}
		break;
	case API_R_ANALYTICS:
		if (!registry_exists(s->registry, c->rid)) {
			mote_reply_error(r, 404, "no device '%s'", c->rid);
		} else {
			cJSON *sec = insight_section(s->insight, c->rid,
						     registry_model(s->registry, c->rid), s->now_ms);
			mote_reply_cjson(r, 200, sec ? sec : cJSON_CreateObject());
		}
		break;
	case API_R_SIMULATE:
		if (!registry_exists(s->registry, c->rid))
			mote_reply_error(r, 404, "no device '%s'", c->rid);
		else
			insight_simulate(s->insight, c->rid, registry_model(s->registry, c->rid),
					 c->body, c->len, s->now_ms, r);
		break;
	case API_R_TWIN_PATCH:
		if (!registry_exists(s->registry, c->rid))
			mote_reply_error(r, 404, "no device '%s'", c->rid);
		else
			twin_patch(s, c, r);
		break;
	case API_R_TELEMETRY:
	case API_R_TELEMETRY_LATEST:
		c->exists = registry_exists(s->registry, c->rid);
		break;
	case API_R_RULES_LIST:
		rules_list(s->rules, r);
		break;
	case API_R_RULES_CREATE:
		rules_create(s->rules, c->body, c->len, r);
		break;
	case API_R_RULE_GET:
		rules_get(s->rules, c->rid, r);
		break;
	case API_R_RULE_UPDATE:
		rules_update(s->rules, c->rid, c->body, c->len, r);
		break;
	case API_R_RULE_DELETE:
		rules_delete(s->rules, c->rid, r);
		break;
	case API_R_ALERTS_LIST:
		alerts_list(s->rules, &c->alert_filter, r);
		break;
	case API_R_ALERT_GET:
		alerts_get(s->rules, c->rid, r);
		break;
	case API_R_ALERT_ACK:
		alerts_ack(s->rules, c->rid, c->who, s->now_ms, r);
		break;
	case API_R_ALERT_CLEAR:
		alerts_clear(s->rules, c->rid, c->who, s->now_ms, r);
		break;
	case API_R_WEBHOOKS_LIST:
		webhooks_list(s->rules, r);
		break;
	case API_R_WEBHOOKS_CREATE:
		webhooks_create(s->rules, c->body, c->len, r);
		break;
	case API_R_WEBHOOK_DELETE:
		webhooks_delete(s->rules, c->rid, r);
		break;
	case API_R_WEBHOOK_DELIVERIES:
		webhooks_deliveries(s->rules, c->rid, c->limit, r);
		break;
	default:
		mote_reply_error(r, 500, "route %d has no pipeline operation", (int)c->id);
		break;
	}
}

/* Runs c on the pipeline thread; false (and a 503 in out) when closing. */
static bool call(struct api *a, struct call *c, struct mote_reply *out)
{
	if (!a->p || platform_call(a->p, run, c) != MOTE_OK) {
		mote_reply_clear(&c->r);
		mote_reply_error(out, 503, "the platform is shutting down");
		return false;
	}
	return true;
}

/* ---- query values of the list routes ---- */

static bool devices_filter(const struct api_uri *u, struct registry_filter *f, char *err,
			   size_t cap)
{
	memset(f, 0, sizeof *f);
	f->model = api_query_get(u, "model");
	f->tag = api_query_get(u, "tag");
	f->q = api_query_get(u, "q");
	f->status = api_query_get(u, "status");
	if (f->status && strcmp(f->status, "online") != 0 && strcmp(f->status, "offline") != 0) {
		snprintf(err, cap, "status must be online or offline");
		return false;
	}
	const char *v;
	if ((v = api_query_get(u, "limit")) && !api_parse_u32(v, 1, 1000, &f->limit)) {
		snprintf(err, cap, "limit must be a whole number from 1 to 1000");
		return false;
	}
	if ((v = api_query_get(u, "offset")) && !api_parse_u32(v, 0, 100000000, &f->offset)) {
		snprintf(err, cap, "offset must be a whole number from 0 to 100000000");
		return false;
	}
	return true;
}

static bool alerts_filter(const struct api_uri *u, struct alerts_filter *f, char *err,
			  size_t cap)
{
	memset(f, 0, sizeof *f);
	f->acknowledged = -1;
	f->device_id = api_query_get(u, "device");
	f->state = api_query_get(u, "state");
	if (f->state && strcmp(f->state, "active") != 0 && strcmp(f->state, "cleared") != 0) {
		snprintf(err, cap, "state must be active or cleared");
		return false;
	}
	f->severity = api_query_get(u, "severity");
	if (f->severity && strcmp(f->severity, "critical") != 0 &&
	    strcmp(f->severity, "major") != 0 && strcmp(f->severity, "minor") != 0 &&
	    strcmp(f->severity, "warning") != 0) {
		snprintf(err, cap, "severity must be critical, major, minor or warning");
		return false;
	}
	const char *v;
	if ((v = api_query_get(u, "acknowledged"))) {
		bool b;
		if (!api_parse_bool(v, &b)) {
			snprintf(err, cap, "acknowledged must be true or false");
			return false;
		}
		f->acknowledged = b ? 1 : 0;
	}
	if ((v = api_query_get(u, "limit")) && !api_parse_u32(v, 1, 1000, &f->limit)) {
		snprintf(err, cap, "limit must be a whole number from 1 to 1000");
		return false;
	}
	return true;
}

/* ---- telemetry ---- */

static bool wants_csv(const struct api_tquery *tq, const char *accept)
{
	if (tq->format >= 0)
		return tq->format == 1;
	/* The first of text/csv and application/json in Accept wins; a client
	 * that names only csv gets csv. */
	if (!accept)
		return false;
	const char *csv = strcasestr(accept, "text/csv");
	const char *json = strcasestr(accept, "application/json");
	return csv && (!json || csv < json);
}

static bool device_exists(struct api *a, struct req *q, struct mote_reply *r)
{
	struct call c = { .id = q->route->id, .rid = q->id };
	if (!call(a, &c, r))
		return false;
	mote_reply_clear(&c.r);
	if (!c.exists) {
		mote_reply_error(r, 404, "no device '%s'", q->id);
		return false;
	}
	return true;
}

/* decimal text of x without printf (a day of rows is 86,400 of them); returns the length */
static int i64_text(int64_t x, char *out)
{
	char tmp[24];
	int n = 0, o = 0;
	uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (x < 0)
		out[o++] = '-';
	while (n)
		out[o++] = tmp[--n];
	out[o] = 0;
	return o;
}

static void telemetry(struct api *a, struct req *q, const char *accept, struct mote_reply *r)
{
	char err[300];
	struct api_tquery tq;
	if (!api_tquery_parse(&q->uri, (int64_t)mote_wall_ms(), &tq, err, sizeof err)) {
		mote_reply_error(r, 400, "%s", err);
		return;
	}
	if (!device_exists(a, q, r))
		return;
	struct tstore_query sq = { .device_id = q->id,
				   .metric = tq.metric,
				   .from_ms = tq.from_ms,
				   .to_ms = tq.to_ms,
				   .agg = tq.agg,
				   .interval_ms = tq.interval_ms,
				   .max_points = tq.limit };
	struct tstore_result res = { 0 };
	err[0] = '\0';
	enum mote_err e = tstore_query(platform_store(a->p), &sq, &res, err, sizeof err);
	if (e == MOTE_EINVAL) {
		mote_reply_error(r, 400, "%s", err[0] ? err : "the query is not valid");
		return;
	}
	if (e != MOTE_OK) {
		mote_reply_error(r, 500, "the telemetry store failed: %s",
				 err[0] ? err : mote_strerror(e));
		return;
	}
	struct sbuf b = { 0 };
	bool csv = wants_csv(&tq, accept);
	if (csv) {
		sb_puts(&b, "timestamp,value\n");
		for (size_t i = 0; i < res.n; i++) {
			char ts[40];
			if (tq.csv_ms)
				snprintf(ts, sizeof ts, "%" PRId64, res.rows[i].ts_ms);
			else
				api_format_time(res.rows[i].ts_ms, ts, sizeof ts);
			sb_puts(&b, ts);
			sb_put(&b, ",", 1);
			if (res.rows[i].value == res.rows[i].value)
				sb_json_num(&b, res.rows[i].value);
			sb_put(&b, "\n", 1);
		}
	} else {
		sb_puts(&b, "{\"device\":");
		sb_json_str(&b, q->id);
		sb_puts(&b, ",\"metric\":");
		sb_json_str(&b, tq.metric);
		sb_printf(&b, ",\"agg\":\"%s\",\"interval\":%" PRId64 ",\"from\":%" PRId64
			      ",\"to\":%" PRId64 ",\"points\":[",
			  api_agg_name(tq.agg), tq.interval_ms, tq.from_ms, tq.to_ms);
		for (size_t i = 0; i < res.n; i++) {
			char tb[24];
			int tl = i64_text(res.rows[i].ts_ms, tb);
			sb_put(&b, i ? ",[" : "[", i ? 2 : 1);
			sb_put(&b, tb, (size_t)tl);
			sb_put(&b, ",", 1);
			sb_json_num(&b, res.rows[i].value);
			sb_put(&b, "]", 1);
		}
		sb_printf(&b, "],\"truncated\":%s}", res.truncated ? "true" : "false");
	}
	tstore_result_free(&res);
	char *text = sb_take(&b);
	mote_reply_json(r, 200, text);
	if (text && csv)
		r->content_type = "text/csv; charset=utf-8";
}

static void latest(struct api *a, struct req *q, struct mote_reply *r)
{
	if (!device_exists(a, q, r))
		return;
	struct tstore_latest *l = NULL;
	size_t n = 0;
	enum mote_err e = tstore_latest(platform_store(a->p), q->id, &l, &n);
	if (e != MOTE_OK) {
		mote_reply_error(r, 500, "the telemetry store failed: %s", mote_strerror(e));
		return;
	}
	struct sbuf b = { 0 };
	sb_puts(&b, "{\"device\":");
	sb_json_str(&b, q->id);
	sb_puts(&b, ",\"latest\":[");
	for (size_t i = 0; i < n; i++) {
		sb_puts(&b, i ? ",{\"metric\":" : "{\"metric\":");
		sb_json_str(&b, l[i].metric);
		sb_printf(&b, ",\"ts\":%" PRId64 ",\"value\":", l[i].ts_ms);
		sb_json_num(&b, l[i].value);
		sb_put(&b, "}", 1);
	}
	sb_puts(&b, "]}");
	free(l);
	mote_reply_json(r, 200, sb_take(&b));
}

/* ---- /healthz, /metrics ---- */

static void healthz(struct api *a, struct mote_reply *r)
{
	struct platform_stats ps = { 0 };
	if (a->p)
		platform_get_stats(a->p, &ps);
	char *body = malloc(160);
	if (!body) {
		mote_reply_json(r, 500, NULL);
		return;
	}
	bool closing = atomic_load(&a->closing);
	bool stuck = ps.lag_ms > a->cfg.health_max_lag_ms;
	snprintf(body, 160, "{\"status\":\"%s\",\"lag_ms\":%" PRIu64 ",\"queue_items\":%" PRIu64 "}",
		 closing ? "closing" : stuck ? "stuck" : "ok", ps.lag_ms, ps.queue_items);
	mote_reply_json(r, closing || stuck ? 503 : 200, body);
}

static void metric(struct sbuf *b, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

void api_metrics(struct api *a, struct mote_reply *r)
{
	struct sbuf b = { 0 };
	if (a->cfg.broker_stats) {
		struct broker_stats bs = { 0 };
		a->cfg.broker_stats(a->cfg.stats_ctx, &bs);
		metric(&b, "mote_broker_clients_connected", "gauge", "MQTT clients connected now.",
		       bs.clients_connected);
		metric(&b, "mote_broker_sessions", "gauge",
		       "Sessions: connected plus offline persistent ones.", bs.sessions);
		metric(&b, "mote_broker_messages_received_total", "counter",
		       "PUBLISH packets received from clients.", bs.msgs_received);
		metric(&b, "mote_broker_messages_sent_total", "counter",
		       "PUBLISH packets sent to clients.", bs.msgs_sent);
		metric(&b, "mote_broker_messages_dropped_total", "counter",
		       "Messages dropped (queue full, too large, expired).", bs.msgs_dropped);
		metric(&b, "mote_broker_bytes_received_total", "counter", "Bytes read from clients.",
		       bs.bytes_received);
		metric(&b, "mote_broker_bytes_sent_total", "counter", "Bytes written to clients.",
		       bs.bytes_sent);
		metric(&b, "mote_broker_subscriptions", "gauge", "Subscriptions now.",
		       bs.subscriptions);
		metric(&b, "mote_broker_retained_messages", "gauge", "Retained messages now.",
		       bs.retained);
		metric(&b, "mote_broker_connections_refused_total", "counter",
		       "Connections refused over limits or out of memory.", bs.connections_refused);
		metric(&b, "mote_broker_queue_dropped_total", "counter",
		       "Messages dropped by per-session queue bounds.", bs.queue_dropped);
		metric(&b, "mote_broker_tls_failed_total", "counter", "TLS handshakes that failed.",
		       bs.tls_failed);
		metric(&b, "mote_broker_uptime_seconds", "gauge", "Seconds since the broker started.",
		       bs.uptime_s);
	}
	if (a->p) {
		struct platform_stats ps = { 0 };
		platform_get_stats(a->p, &ps);
		metric(&b, "mote_pipeline_queue_items", "gauge",
		       "Items waiting in the platform pipeline queue.", ps.queue_items);
		metric(&b, "mote_pipeline_queue_bytes", "gauge",
		       "Bytes waiting in the platform pipeline queue.", ps.queue_bytes);
		metric(&b, "mote_pipeline_dropped_total", "counter",
		       "Telemetry messages dropped because the pipeline queue was full.",
		       ps.queue_dropped);
		metric(&b, "mote_pipeline_lag_milliseconds", "gauge",
		       "Age of the oldest item waiting in the pipeline queue.", ps.lag_ms);
		metric(&b, "mote_telemetry_messages_total", "counter", "Telemetry messages decoded.",
		       ps.telemetry_messages);
		metric(&b, "mote_telemetry_points_total", "counter", "Telemetry points decoded.",
		       ps.telemetry_points);
		metric(&b, "mote_telemetry_invalid_total", "counter",
		       "Telemetry payloads that did not decode.", ps.telemetry_invalid);
		metric(&b, "mote_devices", "gauge", "Devices in the registry.", ps.devices);
		metric(&b, "mote_devices_online", "gauge", "Devices connected now.", ps.devices_online);
		struct tstore *ts = platform_store(a->p);
		if (ts) {
			struct tstore_stats ss = { 0 };
			tstore_get_stats(ts, &ss);
			metric(&b, "mote_store_points_appended_total", "counter",
			       "Points appended to the telemetry store.", ss.points_appended);
			metric(&b, "mote_store_points_flushed_total", "counter",
			       "Points durable in the telemetry store.", ss.points_flushed);
			metric(&b, "mote_store_points_pending", "gauge",
			       "Points in memory, not yet on disk.", ss.points_pending);
			metric(&b, "mote_store_series", "gauge", "Series (device, metric).", ss.series);
			metric(&b, "mote_store_blocks", "gauge", "Compressed blocks on disk.", ss.blocks);
			metric(&b, "mote_store_bytes", "gauge",
			       "Size of the telemetry database and its WAL in bytes.", ss.bytes_on_disk);
			metric(&b, "mote_store_flush_errors_total", "counter",
			       "Failed flushes of the telemetry store.", ss.flush_errors);
			metric(&b, "mote_store_points_refused_total", "counter",
			       "Points refused because too many waited for the disk.",
			       ss.points_refused);
		}
		/* rules_get_stats reads atomics: safe here, and no pipeline wait. */
		struct rules *rl = platform_rules(a->p);
		if (rl) {
			struct rules_stats rs = { 0 };
			rules_get_stats(rl, &rs);
			metric(&b, "mote_rules", "gauge", "Rules defined.", rs.rules);
			metric(&b, "mote_alerts_active", "gauge", "Alerts active now.", rs.alerts_active);
			metric(&b, "mote_alerts_raised_total", "counter", "Alerts raised since start.",
			       rs.alerts_raised);
			metric(&b, "mote_webhook_delivered_total", "counter",
			       "Webhook deliveries answered with 2xx.", rs.webhook_delivered);
			metric(&b, "mote_webhook_failed_total", "counter",
			       "Webhook deliveries given up after every attempt.", rs.webhook_failed);
			metric(&b, "mote_webhook_queued", "gauge", "Webhook deliveries waiting now.",
			       rs.webhook_queued);
		}
	}
	metric(&b, "mote_http_sse_clients", "gauge", "Server-Sent Events clients connected now.",
	       atomic_load(&a->nclients));
	metric(&b, "mote_http_sse_events_total", "counter", "Events queued to SSE clients.",
	       atomic_load(&a->sse_events));
	metric(&b, "mote_http_sse_dropped_total", "counter",
	       "SSE clients dropped because they read too slowly.", atomic_load(&a->sse_dropped));
	metric(&b, "mote_http_sse_refused_total", "counter",
	       "SSE clients refused over the limit.", atomic_load(&a->sse_refused));
	metric(&b, "mote_http_auth_failed_total", "counter",
	       "HTTP requests with a missing, unknown or revoked token.",
	       atomic_load(&a->auth_failed));
	sb_puts(&b, "# HELP mote_http_responses_total HTTP responses by status class.\n"
		    "# TYPE mote_http_responses_total counter\n");
	for (int k = 1; k <= 5; k++)
		sb_printf(&b, "mote_http_responses_total{code=\"%dxx\"} %" PRIu64 "\n", k,
			  (uint64_t)atomic_load(&a->by_class[k]));
	char *text = sb_take(&b);
	mote_reply_json(r, 200, text);
	if (text)
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- the dispatch ---- */

void api_handle(struct api *a, struct req *q, const char *accept, struct mote_reply *r)
{
	char err[300];
	struct call c = { .id = q->route->id, .rid = q->id, .body = q->body, .len = q->len,
			  .who = q->who };
	switch (q->route->id) {
	case API_R_HEALTHZ:
		healthz(a, r);
		return;
	case API_R_METRICS:
		api_metrics(a, r);
		return;
	case API_R_OPENAPI: {
		char *doc = strdup(api_openapi_json);
		mote_reply_json(r, 200, doc);
		return;
	}
	case API_R_TELEMETRY:
		telemetry(a, q, accept, r);
		return;
	case API_R_TELEMETRY_LATEST:
		latest(a, q, r);
		return;
	case API_R_DEVICES_LIST:
		if (!devices_filter(&q->uri, &c.dev_filter, err, sizeof err)) {
			mote_reply_error(r, 400, "%s", err);
			return;
		}
		break;
	case API_R_ALERTS_LIST:
		if (!alerts_filter(&q->uri, &c.alert_filter, err, sizeof err)) {
			mote_reply_error(r, 400, "%s", err);
			return;
		}
		break;
	case API_R_WEBHOOK_DELIVERIES: {
		const char *v = api_query_get(&q->uri, "limit");
		c.limit = 100;
		if (v && !api_parse_u32(v, 1, 1000, &c.limit)) {
			mote_reply_error(r, 400, "limit must be a whole number from 1 to 1000");
			return;
		}
		break;
	}
	default:
		break;
	}
	if (!call(a, &c, r))
		return;
	*r = c.r;
	if (r->status == 0)
		mote_reply_error(r, 500, "the operation gave no answer");
}
