/*
 * pipeline.c - the pipeline thread: what each queued item does.
 *
 *   connect     register on first connect (devices only, unless turned
 *               off), mark online, send the twin delta, event "connection"
 *   telemetry   decode -> store append -> rules; a payload that does not
 *               decode is counted, kept as the device's last error and
 *               logged at a limited rate; the pipeline goes on
 *   twin        $twin/{id}/get|update -> the twin service
 *   subscribe   a device subscribing to its delta gets the current one
 *   call        an API function, run here so services need no locks
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "pki/pki.h"
#include "platform/pipeline.h"

#define LOG_LINES_PER_S 5

static void services(struct platform *p, struct platform_services *s)
{
	s->registry = p->registry;
	s->twins = p->twins;
	s->rules = p->rules;
	s->insight = p->insight;
	s->store = p->store;
	s->db = p->db;
	s->pki_dir = p->cfg.pki_dir;
	s->now_ms = (int64_t)mote_wall_ms();
}

static void connection_event(struct platform *p, const char *id, bool online)
{
	char json[300];
	snprintf(json, sizeof json, "{\"device\":\"%s\",\"online\":%s}", id,
		 online ? "true" : "false");
	mote_sink_event(p->sink, "connection", id, json);
}

static void on_connect(struct platform *p, struct item *it, int64_t now)
{
	if (!registry_exists(p->registry, it->id) && it->is_device && p->cfg.auto_register) {
		char err[256];
		/* Only ids that are also valid topic levels and certificate names. */
		if (mote_pki_check_id(it->id, err, sizeof err) != MOTE_OK) {
			MOTE_DEBUG("platform", "event=not_registered device=\"%.128s\" why=\"%s\"",
				   it->id, err);
		} else if (registry_add(p->registry, it->id, NULL, NULL, NULL, now, err,
					sizeof err) == MOTE_OK) {
			twin_service_create(p->twins, it->id, now);
			MOTE_INFO("platform", "event=device_registered device=%s how=first_connect",
				  it->id);
			char json[300];
			snprintf(json, sizeof json, "{\"device\":\"%s\",\"registered\":true}", it->id);
			mote_sink_event(p->sink, "device", it->id, json);
		} else {
			MOTE_WARN("platform", "event=register_failed device=%s why=\"%s\"", it->id,
				  err);
		}
	}
	if (!registry_exists(p->registry, it->id))
		return;
	registry_set_online(p->registry, it->id, true, now, it->op);
	connection_event(p, it->id, true);
	twin_service_on_connect(p->twins, it->id);
}

static void on_disconnect(struct platform *p, struct item *it, int64_t now)
{
	if (!registry_exists(p->registry, it->id))
		return;
	registry_set_online(p->registry, it->id, false, now, NULL);
	connection_event(p, it->id, false);
}

/*
 * Whether one more line of a kind may be logged this second; the count of
 * those held back is logged when the next second begins.
 */
static bool log_budget_take(struct log_budget *b, uint64_t mono, const char *event)
{
	if (mono - b->window_ms >= 1000) {
		if (b->held)
			MOTE_WARN("platform", "event=%s_suppressed count=%u", event, b->held);
		b->window_ms = mono;
		b->logged = 0;
		b->held = 0;
	}
	if (b->logged++ < LOG_LINES_PER_S)
		return true;
	b->held++;
	return false;
}

static void log_invalid(struct platform *p, const char *id, const char *why, uint64_t mono)
{
	if (log_budget_take(&p->invalid_log, mono, "telemetry_invalid"))
		MOTE_WARN("platform", "event=telemetry_invalid device=%s why=\"%s\"", id, why);
}

/* Live telemetry for SSE: the decoded points as one JSON object. */
static void telemetry_event(struct platform *p, const char *id, const struct telemetry_batch *b)
{
	size_t cap = 96 + strlen(id) + b->n * (TELEMETRY_METRIC_MAX + 64);
	char *json = malloc(cap);
	if (!json)
		return;
	size_t o = (size_t)snprintf(json, cap, "{\"device\":\"%s\",\"points\":[", id);
	for (size_t i = 0; i < b->n && o < cap; i++)
		o += (size_t)snprintf(json + o, cap - o, "%s{\"metric\":\"%s\",\"ts\":%" PRId64
							",\"value\":%.17g}",
				      i ? "," : "", b->pts[i].metric, b->pts[i].ts_ms,
				      b->pts[i].value);
	if (o + 3 <= cap) {
		memcpy(json + o, "]}", 3);
		mote_sink_event(p->sink, "telemetry", id, json);
	}
	free(json);
}

/*
 * SenML names a sensor by base name + name, and devices often use their own
 * id as the base name ("bn":"pump-7/"). The topic already says which device
 * it is, so "pump-7/temp" is stored as metric "temp" of pump-7 (also with
 * ':' or '.' after the id, as in "urn:dev:pump-7:temp"-style names that end
 * with the id).
 */
static void strip_device_prefix(struct telemetry_batch *b, const char *id)
{
	size_t n = strlen(id);
	for (size_t i = 0; i < b->n; i++) {
		const char *m = b->pts[i].metric;
		const char *at = strstr(m, id);
		if (!at)
			continue;
		if (at != m && at[-1] != ':' && at[-1] != '/')
			continue;
		char sep = at[n];
		if ((sep == '/' || sep == ':' || sep == '.') && at[n + 1])
			b->pts[i].metric = at + n + 1;
	}
}

static void on_telemetry(struct platform *p, struct item *it, int64_t now, uint64_t mono)
{
	if (!registry_exists(p->registry, it->id)) {
		/* Nothing is stored for a device nobody registered. */
		atomic_fetch_add(&p->telemetry_invalid, 1);
		log_invalid(p, it->id, "unknown device (register it, or let it connect once)", mono);
		return;
	}
	char err[256];
	enum mote_err e = telemetry_decode(it->payload, it->len, now, &p->cfg.telemetry, &p->batch,
					   err, sizeof err);
	registry_seen(p->registry, it->id, now);
	if (e != MOTE_OK) {
		atomic_fetch_add(&p->telemetry_invalid, 1);
		registry_set_error(p->registry, it->id, err, now);
		log_invalid(p, it->id, err, mono);
		return;
	}
	strip_device_prefix(&p->batch, it->id);
	atomic_fetch_add(&p->telemetry_messages, 1);
	atomic_fetch_add(&p->telemetry_points, p->batch.n);
	e = tstore_append(p->store, it->id, p->batch.pts, p->batch.n);
	if (e != MOTE_OK && log_budget_take(&p->append_log, mono, "store_append_failed"))
		MOTE_WARN("platform", "event=store_append_failed device=%s why=\"%s\"", it->id,
			  e == MOTE_EFULL ? "too many points wait for the disk" : mote_strerror(e));
	const char *model = registry_model(p->registry, it->id);
	/* analytics first: an anomaly alert and a threshold alert of the same
	 * batch then come out in that order */
	insight_on_points(p->insight, it->id, model, p->batch.pts, p->batch.n, now);
	rules_on_points(p->rules, it->id, model, p->batch.pts, p->batch.n, now);
	if (mote_sink_listening(p->sink))
		telemetry_event(p, it->id, &p->batch);
}

/* Does an MQTT filter (with + and #) cover topic? */
static bool filter_covers(const char *f, const char *t)
{
	for (;;) {
		if (f[0] == '#' && f[1] == '\0')
			return true;
		const char *fe = strchr(f, '/'), *te = strchr(t, '/');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		size_t tl = te ? (size_t)(te - t) : strlen(t);
		if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
			return false;
		if (!fe || !te)
			return !fe && !te;
		f = fe + 1;
		t = te + 1;
	}
}

static void on_subscribe(struct platform *p, struct item *it)
{
	char topic[200];
	snprintf(topic, sizeof topic, "$twin/%s/update/delta", it->id);
	bool covers = filter_covers(it->op, topic);
	MOTE_DEBUG("platform", "event=subscribed device=%s filter=\"%s\" delta=%s", it->id, it->op,
		   covers && registry_exists(p->registry, it->id) ? "sent" : "no");
	if (covers && registry_exists(p->registry, it->id))
		twin_service_on_connect(p->twins, it->id);
}

static void handle(struct platform *p, struct item *it, int64_t now, uint64_t mono)
{
	switch (it->kind) {
	case ITEM_CONNECT:
		on_connect(p, it, now);
		break;
	case ITEM_DISCONNECT:
		on_disconnect(p, it, now);
		break;
	case ITEM_TELEMETRY:
		on_telemetry(p, it, now, mono);
		break;
	case ITEM_TWIN:
		twin_service_mqtt(p->twins, it->id, registry_exists(p->registry, it->id), it->op,
				  it->is_device ? TWIN_SOURCE_DEVICE : TWIN_SOURCE_OPERATOR,
				  it->payload, it->len, now);
		/* the reported setpoint is an input of the device's models */
		if (it->is_device && strcmp(it->op, "update") == 0 &&
		    registry_exists(p->registry, it->id))
			insight_on_report(p->insight, it->id, it->payload, it->len);
		break;
	case ITEM_SUBSCRIBE:
		on_subscribe(p, it);
		break;
	default:
		break;
	}
}

/* `mote device rm` in another process removed a device: the rest of it goes too. */
void pipeline_device_removed(void *ctx, const char *id)
{
	struct platform *p = ctx;
	twin_service_delete(p->twins, id);
	rules_device_deleted(p->rules, id);
	insight_device_deleted(p->insight, id);
	tstore_delete_device(p->store, id);
	MOTE_INFO("platform", "event=device_deleted device=%s by=another_process", id);
}

static void tick(struct platform *p, int64_t now)
{
	registry_refresh(p->registry);
	if (registry_flush(p->registry) != MOTE_OK)
		MOTE_WARN("platform", "event=registry_flush_failed why=\"%s\"", sqlite3_errmsg(p->db));
	rules_tick(p->rules, now);
	insight_tick(p->insight, now);
	atomic_store(&p->devices, registry_count(p->registry));
	atomic_store(&p->devices_online, registry_online_count(p->registry));
}

void *pipeline_main(void *arg)
{
	struct platform *p = arg;
	uint64_t last_tick = 0;
	struct item *calls, *msgs;
	bool more = true;
	while (more) {
		more = queue_take(&p->q, 200, &calls, &msgs);
		if (calls) {
			struct platform_services s;
			services(p, &s);
			for (struct item *c = calls; c; c = c->next)
				c->fn(&s, c->arg);
			queue_calls_done(&p->q, calls);
		}
		if (msgs)
			atomic_store(&p->inflight_since_ms, msgs->enqueued_ms);
		int64_t now = (int64_t)mote_wall_ms();
		uint64_t mono = mote_mono_ms();
		unsigned n = 0;
		while (msgs) {
			struct item *next = msgs->next;
			handle(p, msgs, now, mono);
			if (next)
				atomic_store(&p->inflight_since_ms, next->enqueued_ms);
			free(msgs);
			msgs = next;
			if (++n % 256 == 0) {
				now = (int64_t)mote_wall_ms();
				mono = mote_mono_ms();
			}
		}
		atomic_store(&p->inflight_since_ms, 0);
		mono = mote_mono_ms();
		if (mono - last_tick >= 1000) {
			tick(p, (int64_t)mote_wall_ms());
			last_tick = mono;
		}
	}
	telemetry_batch_clear(&p->batch);
	return NULL;
}
