/*
 * sink.h - where the platform's services send what they produce: internal
 * MQTT publishes (twin replies and deltas, alerts) and live events for the
 * API's Server-Sent Events stream. The hub implements it; services only see
 * this struct, so none of them depends on the broker or the API.
 *
 * Threading: both functions may be called from any thread; they copy what
 * they are given and never block (a full outbox drops and counts).
 */
#ifndef MOTE_BASE_SINK_H
#define MOTE_BASE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mote_sink {
	void *ctx;
	/* An internal publish (topic NUL-terminated). Copied. */
	void (*publish)(void *ctx, const char *topic, const void *payload, size_t len,
			uint8_t qos, bool retain);
	/*
	 * A live event: type is one of "telemetry", "twin", "alert",
	 * "connection", "device"; device_id may be NULL; json is one JSON object
	 * (the SSE data line). Copied.
	 */
	void (*event)(void *ctx, const char *type, const char *device_id, const char *json);
	/* Optional: false when nobody would see an event now, so a producer of
	 * many (telemetry) can skip building them. NULL: always true. */
	bool (*listening)(void *ctx);
};

static inline bool mote_sink_listening(const struct mote_sink *s)
{
	return s && s->event && (!s->listening || s->listening(s->ctx));
}

/* Calls that tolerate a NULL sink or NULL functions. */
static inline void mote_sink_publish(const struct mote_sink *s, const char *topic,
				     const void *payload, size_t len, uint8_t qos, bool retain)
{
	if (s && s->publish)
		s->publish(s->ctx, topic, payload, len, qos, retain);
}

static inline void mote_sink_event(const struct mote_sink *s, const char *type,
				   const char *device_id, const char *json)
{
	if (s && s->event)
		s->event(s->ctx, type, device_id, json);
}

#endif
