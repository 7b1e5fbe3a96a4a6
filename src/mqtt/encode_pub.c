/*
 * encode_pub.c - bodies of PUBLISH, PUBACK/PUBREC/PUBREL/PUBCOMP,
 * SUBSCRIBE, UNSUBSCRIBE, SUBACK and UNSUBACK.
 *
 * The structural rules the decoder enforces are enforced here too (QoS
 * range, packet identifiers non-zero where required, non-empty topic
 * lists, an empty topic only with a 5.0 topic alias, reason codes the
 * packet may carry), so mote never emits what it would refuse. String
 * contents (UTF-8, wildcards) are the caller's: re-checking every topic
 * for every subscriber would be paid on the hottest path.
 *
 * 5.0 acks take the shortest form the spec allows: packet id alone for
 * reason 0 without properties, packet id + reason without properties.
 */
#include "mqtt/mqtt_int.h"

static enum mote_err put_str(struct wr *w, struct mqtt_str s)
{
	if (s.len && !s.p)
		return MOTE_EINVAL;
	wr_u16(w, s.len);
	wr_bytes(w, s.p, s.len);
	return MOTE_OK;
}

enum mote_err mqtt__put_publish(struct wr *w, const struct mqtt_publish *p, uint8_t version,
				bool with_payload)
{
	bool v5 = version == MQTT_V5;
	enum mote_err err;
	if (p->qos > 2 || (v5 && p->dup && p->qos == 0) || (p->qos && p->packet_id == 0))
		return MOTE_EINVAL;
	if (p->topic.len == 0 && !(v5 && MQTT_HAS(&p->props, MQTT_PROP_TOPIC_ALIAS)))
		return MOTE_EINVAL;
	if ((err = put_str(w, p->topic)) != MOTE_OK)
		return err;
	if (p->qos)
		wr_u16(w, p->packet_id);
	if (v5 && (err = mqtt__props_encode(w, &p->props, MQTT_PUBLISH, false)) != MOTE_OK)
		return err;
	if (with_payload) {
		if (p->payload.len && !p->payload.p)
			return MOTE_EINVAL;
		wr_bytes(w, p->payload.p, p->payload.len);
	}
	return MOTE_OK;
}

enum mote_err mqtt__put_ack(struct wr *w, uint8_t type, const struct mqtt_ack *a,
			    uint8_t version)
{
	if (a->packet_id == 0)
		return MOTE_EINVAL;
	wr_u16(w, a->packet_id);
	if (version != MQTT_V5)
		return MOTE_OK;
	size_t n;
	enum mote_err err = mqtt__props_size(&a->props, type, false, &n);
	if (err != MOTE_OK)
		return err;
	if (!mqtt__reason_valid(type, version, a->reason))
		return MOTE_EINVAL;
	if (n == 0 && a->reason == 0)
		return MOTE_OK;
	wr_u8(w, a->reason);
	if (n == 0)
		return MOTE_OK;
	return mqtt__props_encode(w, &a->props, type, false);
}

enum mote_err mqtt__put_subscribe(struct wr *w, const struct mqtt_subscribe *s, uint8_t version)
{
	bool v5 = version == MQTT_V5;
	enum mote_err err;
	if (s->packet_id == 0 || s->count == 0 || !s->entries)
		return MOTE_EINVAL;
	wr_u16(w, s->packet_id);
	if (v5 && (err = mqtt__props_encode(w, &s->props, MQTT_SUBSCRIBE, false)) != MOTE_OK)
		return err;
	for (uint32_t i = 0; i < s->count; i++) {
		const struct mqtt_sub_opts *o = &s->entries[i].opts;
		if (o->qos > 2 || (v5 && o->retain_handling > 2))
			return MOTE_EINVAL;
		if ((err = put_str(w, s->entries[i].filter)) != MOTE_OK)
			return err;
		uint8_t b = o->qos;
		if (v5) /* 3.1.1 has only the QoS bits */
			b |= (uint8_t)((o->no_local ? 0x04 : 0) | (o->retain_as_published ? 0x08 : 0) |
				       o->retain_handling << 4);
		wr_u8(w, b);
	}
	return MOTE_OK;
}

enum mote_err mqtt__put_unsubscribe(struct wr *w, const struct mqtt_unsubscribe *u,
				    uint8_t version)
{
	enum mote_err err;
	if (u->packet_id == 0 || u->count == 0 || !u->filters)
		return MOTE_EINVAL;
	wr_u16(w, u->packet_id);
	if (version == MQTT_V5 &&
	    (err = mqtt__props_encode(w, &u->props, MQTT_UNSUBSCRIBE, false)) != MOTE_OK)
		return err;
	for (uint32_t i = 0; i < u->count; i++)
		if ((err = put_str(w, u->filters[i])) != MOTE_OK)
			return err;
	return MOTE_OK;
}

enum mote_err mqtt__put_suback(struct wr *w, uint8_t type, const struct mqtt_suback *s,
			       uint8_t version)
{
	if (s->packet_id == 0)
		return MOTE_EINVAL;
	wr_u16(w, s->packet_id);
	if (version != MQTT_V5 && type == MQTT_UNSUBACK)
		return MOTE_OK; /* 3.1.1 UNSUBACK is the packet id alone */
	if (s->count == 0 || !s->reasons)
		return MOTE_EINVAL;
	for (uint32_t i = 0; i < s->count; i++)
		if (!mqtt__reason_valid(type, version, s->reasons[i]))
			return MOTE_EINVAL;
	if (version == MQTT_V5) {
		enum mote_err err = mqtt__props_encode(w, &s->props, type, false);
		if (err != MOTE_OK)
			return err;
	}
	wr_bytes(w, s->reasons, s->count);
	return MOTE_OK;
}
