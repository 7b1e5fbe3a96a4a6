/*
 * encode.c - the front door of encoding: fixed header, remaining length,
 * and the three entry points (mqtt_encode, mqtt_encoded_size,
 * mqtt_encode_publish_head). DISCONNECT and AUTH bodies are written here.
 *
 * Every entry point runs the same per-packet writer twice: once counting
 * (which also validates), once writing into a buffer known to be large
 * enough. So the three can never disagree about sizes, and a too-small
 * buffer gets MOTE_ENOSPC before a byte is written.
 */
#include "mqtt/mqtt_int.h"

enum mote_err mqtt__put_reason_only(struct wr *w, uint8_t type, const struct mqtt_reason_only *r,
				    uint8_t version)
{
	if (version != MQTT_V5)
		return type == MQTT_AUTH ? MOTE_EINVAL : MOTE_OK; /* 3.1.1: empty body */
	if (!mqtt__reason_valid(type, version, r->reason))
		return MOTE_EINVAL;
	size_t n;
	enum mote_err err = mqtt__props_size(&r->props, type, false, &n);
	if (err != MOTE_OK)
		return err;
	/* Short forms (3.14.2.1, 3.15.2.1): nothing for reason 0 without
	 * properties; a lone reason byte for DISCONNECT. AUTH keeps its
	 * property length, since the spec only names the empty short form. */
	if (n == 0 && r->reason == 0)
		return MOTE_OK;
	wr_u8(w, r->reason);
	if (n == 0 && type == MQTT_DISCONNECT)
		return MOTE_OK;
	return mqtt__props_encode(w, &r->props, type, false);
}

static uint8_t first_byte(const struct mqtt_packet *pkt)
{
	uint8_t b = (uint8_t)(pkt->type << 4);
	switch (pkt->type) {
	case MQTT_PUBLISH: {
		const struct mqtt_publish *p = &pkt->u.publish;
		return (uint8_t)(b | (p->dup ? 0x08 : 0) | (p->qos & 0x03) << 1 |
				 (p->retain ? 0x01 : 0));
	}
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return b | 0x02; /* [MQTT-2.2.2-2] */
	default:
		return b;
	}
}

static enum mote_err put_body(struct wr *w, const struct mqtt_packet *pkt, uint8_t version,
			      bool with_payload)
{
	switch (pkt->type) {
	case MQTT_CONNECT:
		return mqtt__put_connect(w, &pkt->u.connect, version);
	case MQTT_CONNACK:
		return mqtt__put_connack(w, &pkt->u.connack, version);
	case MQTT_PUBLISH:
		return mqtt__put_publish(w, &pkt->u.publish, version, with_payload);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return mqtt__put_ack(w, (uint8_t)pkt->type, &pkt->u.ack, version);
	case MQTT_SUBSCRIBE:
		return mqtt__put_subscribe(w, &pkt->u.subscribe, version);
	case MQTT_UNSUBSCRIBE:
		return mqtt__put_unsubscribe(w, &pkt->u.unsubscribe, version);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return mqtt__put_suback(w, (uint8_t)pkt->type, &pkt->u.suback, version);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return MOTE_OK;
	case MQTT_DISCONNECT:
		return mqtt__put_reason_only(w, MQTT_DISCONNECT, &pkt->u.disconnect, version);
	case MQTT_AUTH:
		return mqtt__put_reason_only(w, MQTT_AUTH, &pkt->u.auth, version);
	default:
		return MOTE_EINVAL;
	}
}

/*
 * head_only: leave the PUBLISH payload out of the bytes written but count
 * it in the remaining length. buf NULL: only report the full packet size.
 */
static enum mote_err encode(const struct mqtt_packet *pkt, uint8_t version, bool head_only,
			    uint8_t *buf, size_t cap, size_t *out_len)
{
	if (version != MQTT_V311 && version != MQTT_V5)
		return MOTE_EINVAL;
	struct wr count = { NULL, 0, 0 };
	enum mote_err err = put_body(&count, pkt, version, !head_only);
	if (err != MOTE_OK)
		return err;
	uint64_t payload = head_only ? pkt->u.publish.payload.len : 0;
	uint64_t rl = (uint64_t)count.len + payload;
	if (rl > MQTT_MAX_REMAINING_LENGTH)
		return MOTE_EINVAL;
	size_t head = 1 + mqtt_varint_size((uint32_t)rl);
	if (!buf) {
		*out_len = head + (size_t)rl;
		return MOTE_OK;
	}
	if (cap < head + count.len)
		return MOTE_ENOSPC;
	struct wr w = { buf, cap, 0 };
	wr_u8(&w, first_byte(pkt));
	wr_varint(&w, (uint32_t)rl);
	err = put_body(&w, pkt, version, !head_only);
	if (err != MOTE_OK)
		return err; /* cannot happen: the counting pass took the same path */
	*out_len = w.len;
	return MOTE_OK;
}

enum mote_err mqtt_encode(const struct mqtt_packet *pkt, uint8_t version, uint8_t *buf,
			  size_t cap, size_t *out_len)
{
	if (!buf)
		return MOTE_ENOSPC;
	return encode(pkt, version, false, buf, cap, out_len);
}

enum mote_err mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version,
				size_t *out_size)
{
	return encode(pkt, version, false, NULL, 0, out_size);
}

enum mote_err mqtt_encode_publish_head(const struct mqtt_publish *pub, uint8_t version,
				       uint8_t *buf, size_t cap, size_t *out_len)
{
	if (!buf)
		return MOTE_ENOSPC;
	struct mqtt_packet pkt = { .type = MQTT_PUBLISH, .u.publish = *pub };
	return encode(&pkt, version, true, buf, cap, out_len);
}
