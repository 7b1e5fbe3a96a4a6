/*
 * decode_pub.c - PUBLISH and its acknowledgements PUBACK, PUBREC, PUBREL,
 * PUBCOMP (5.0 sections 3.3 - 3.7, 3.1.1 sections 3.3 - 3.7).
 *
 * Topic names: bad UTF-8 is malformed (0x81) like every string
 * [MQTT-1.5.4-1]; a wildcard is "topic name invalid" (0x90)
 * [MQTT-3.3.2-2]; an empty name is a protocol error unless a 5.0 topic
 * alias stands in for it. Whether the alias is known is connection state,
 * so the broker judges that. Payload format 1 with a non-UTF-8 payload is
 * the broker's to answer (0x99), not the decoder's.
 */
#include "mqtt/mqtt_int.h"

enum mote_err mqtt__decode_publish(struct rd *r, uint8_t flags, uint8_t version,
				   bool from_client, struct mqtt_publish *p,
				   struct mqtt_fault *f)
{
	bool v5 = version == MQTT_V5;
	p->retain = flags & 0x01;
	p->qos = (flags >> 1) & 0x03;
	p->dup = flags & 0x08;
	if (p->qos == 3)
		return MALFORMED(f, "PUBLISH QoS is 3"); /* [MQTT-3.3.1-4] */
	if (v5 && p->dup && p->qos == 0)
		return MALFORMED(f, "PUBLISH has DUP set with QoS 0"); /* [MQTT-3.3.1-2] */

	if (!rd_lenbytes(r, &p->topic.p, &p->topic.len))
		return MALFORMED(f, "PUBLISH topic missing or truncated");
	if (!mqtt_utf8_valid(p->topic.p, p->topic.len))
		return MALFORMED(f, "PUBLISH topic is not valid UTF-8");
	if (p->topic.len && (memchr(p->topic.p, '+', p->topic.len) ||
			     memchr(p->topic.p, '#', p->topic.len)))
		return mqtt__fail(f, MOTE_EPROTO, MQTT_RC_TOPIC_NAME_INVALID,
				  "PUBLISH topic contains a wildcard");
	if (p->qos) {
		if (!rd_u16(r, &p->packet_id))
			return MALFORMED(f, "PUBLISH packet identifier missing");
		if (p->packet_id == 0) /* [MQTT-2.2.1-3] */
			return PROTO(f, "PUBLISH with QoS > 0 has packet identifier 0");
	}
	if (v5) {
		enum mote_err err =
			mqtt__props_decode(r, MQTT_PUBLISH, false, from_client, &p->props, f);
		if (err != MOTE_OK)
			return err;
	}
	if (p->topic.len == 0 && !(v5 && MQTT_HAS(&p->props, MQTT_PROP_TOPIC_ALIAS)))
		return PROTO(f, v5 ? "PUBLISH topic is empty and has no topic alias"
				   : "PUBLISH topic is empty"); /* [MQTT-4.7.3-1] */
	p->payload = (struct mqtt_bin){ r->p, (uint32_t)rd_left(r) };
	r->p = r->end;
	return MOTE_OK;
}

struct ack_text {
	const char *short_;
	const char *id0;
	const char *len311;
	const char *reason;
	const char *trailing;
};

#define ACK_TEXT(n)                                                                        \
	{                                                                                  \
		n " shorter than 2 bytes", n " has packet identifier 0",                   \
			n " has a remaining length other than 2",                          \
			"reason code not valid in " n, "bytes after the " n " properties"  \
	}

static const struct ack_text ack_texts[4] = {
	ACK_TEXT("PUBACK"), ACK_TEXT("PUBREC"), ACK_TEXT("PUBREL"), ACK_TEXT("PUBCOMP"),
};

enum mote_err mqtt__decode_ack(struct rd *r, uint8_t type, uint8_t version, struct mqtt_ack *a,
			       struct mqtt_fault *f)
{
	const struct ack_text *t = &ack_texts[type - MQTT_PUBACK];
	if (!rd_u16(r, &a->packet_id))
		return MALFORMED(f, t->short_);
	if (a->packet_id == 0) /* [MQTT-2.2.1-3] */
		return PROTO(f, t->id0);
	if (version != MQTT_V5)
		return rd_left(r) ? MALFORMED(f, t->len311) : MOTE_OK;
	/* 5.0: remaining length 2 means reason 0 and no properties, 3 means no
	 * properties (3.4.2.1, 3.4.2.2.1 and the same for the others). */
	if (!rd_u8(r, &a->reason))
		return MOTE_OK;
	if (!mqtt__reason_valid(type, version, a->reason))
		return PROTO(f, t->reason);
	if (!rd_left(r))
		return MOTE_OK;
	enum mote_err err = mqtt__props_decode(r, type, false, false, &a->props, f);
	if (err != MOTE_OK)
		return err;
	if (rd_left(r))
		return MALFORMED(f, t->trailing);
	return MOTE_OK;
}
