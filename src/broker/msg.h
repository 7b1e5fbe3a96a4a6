/*
 * msg.h - an application message inside the broker (private to src/broker/).
 *
 * One struct msg per accepted PUBLISH, shared by reference by every queue it
 * sits in (subscriber queues, in-flight windows, the retained store): fan-out
 * never copies the payload. Immutable after msg_new() except `refs`.
 *
 * Layout: one allocation; topic, forwarded properties and payload follow the
 * header in `data`.
 *
 * Forwarded properties (`props`) are the 5.0 properties a subscriber must
 * receive unchanged, pre-encoded as wire entries: payload format indicator,
 * content type, response topic, correlation data, user properties (in the
 * order received). Message expiry is kept as a deadline and re-encoded per
 * delivery; topic alias and subscription identifiers are per subscriber.
 *
 * Threading: a message is handed between loops (one per shard) by
 * reference, so refs is atomic; everything else is immutable once created.
 */
#ifndef MOTE_BROKER_MSG_H
#define MOTE_BROKER_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct msg {
	_Atomic uint32_t refs;
	uint8_t qos;            /* QoS it was published with */
	bool retain;            /* RETAIN flag as published */
	uint16_t topic_len;
	uint32_t props_len;
	uint32_t payload_len;
	uint64_t expiry_ms;     /* monotonic deadline; 0 = never expires */
	uint64_t origin;        /* id of the publishing session (no-local), 0 = internal */
	uint8_t data[];         /* topic | props | payload */
};

static inline const uint8_t *msg_topic(const struct msg *m) { return m->data; }
static inline const uint8_t *msg_props(const struct msg *m) { return m->data + m->topic_len; }
static inline const uint8_t *msg_payload(const struct msg *m)
{
	return m->data + m->topic_len + m->props_len;
}

/*
 * Creates a message with refs = 1, copying topic, props and payload.
 * Returns NULL on allocation failure. The caller owns the reference.
 */
struct msg *msg_new(const uint8_t *topic, uint16_t topic_len, const uint8_t *props,
		    uint32_t props_len, const uint8_t *payload, uint32_t payload_len,
		    uint8_t qos, bool retain, uint64_t expiry_ms, uint64_t origin);

static inline struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
/* Drops one reference; frees at zero. NULL is accepted. */
void msg_unref(struct msg *m);

/* Whether the message has expired at monotonic time now_ms. */
static inline bool msg_expired(const struct msg *m, uint64_t now_ms)
{
	return m->expiry_ms != 0 && now_ms >= m->expiry_ms;
}

#endif
