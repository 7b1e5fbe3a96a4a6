/*
 * decode.c - framing (fixed header + remaining length) and the front door
 * of packet decoding: checks common to every packet (type, reserved flags,
 * direction, protocol version), then the per-packet decoder. The small
 * packets (PINGREQ/PINGRESP, DISCONNECT, AUTH) are decoded here too.
 *
 * Every path out of mqtt_decode() with an error has filled the fault; the
 * packet struct is zeroed first so a refused packet never carries stale
 * views, and for CONNECT the protocol level is filled as soon as it is
 * read so that the caller can answer in the client's own format.
 */
#include "mqtt/mqtt_int.h"

enum mote_err mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_packet,
			       struct mqtt_frame *out, struct mqtt_fault *fault)
{
	uint32_t rl, used;
	if (len < 2)
		return MOTE_EAGAIN;
	enum mote_err err = mqtt_varint_decode(buf + 1, len - 1, &rl, &used);
	if (err == MOTE_EAGAIN)
		return MOTE_EAGAIN;
	if (err != MOTE_OK)
		return MALFORMED(fault, "remaining length longer than 4 bytes");
	out->type = buf[0] >> 4;
	out->flags = buf[0] & 0x0f;
	out->header_len = 1 + used;
	out->remaining_len = rl;
	out->total_len = out->header_len + rl;
	/* Judged on the header alone, so nobody buffers an oversized body. */
	if (max_packet && out->total_len > max_packet)
		return mqtt__fail(fault, MOTE_ETOOBIG, MQTT_RC_PACKET_TOO_LARGE,
				  "packet larger than the maximum packet size");
	if (len < out->total_len)
		return MOTE_EAGAIN;
	return MOTE_OK;
}

/* [MQTT-2.2.2-2]: PUBREL, SUBSCRIBE and UNSUBSCRIBE have flags 0010, every
 * other type but PUBLISH 0000. */
static bool flags_ok(uint8_t type, uint8_t flags)
{
	switch (type) {
	case MQTT_PUBLISH:
		return true; /* DUP/QoS/RETAIN: judged by the PUBLISH decoder */
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return flags == 0x2;
	default:
		return flags == 0x0;
	}
}

/* Why a packet cannot travel this way, or NULL when it can. */
static const char *wrong_direction(uint8_t type, bool from_client)
{
	if (from_client) {
		switch (type) {
		case MQTT_CONNACK: return "CONNACK sent by a client";
		case MQTT_SUBACK: return "SUBACK sent by a client";
		case MQTT_UNSUBACK: return "UNSUBACK sent by a client";
		case MQTT_PINGRESP: return "PINGRESP sent by a client";
		default: return NULL;
		}
	}
	switch (type) {
	case MQTT_CONNECT: return "CONNECT sent by a server";
	case MQTT_SUBSCRIBE: return "SUBSCRIBE sent by a server";
	case MQTT_UNSUBSCRIBE: return "UNSUBSCRIBE sent by a server";
	case MQTT_PINGREQ: return "PINGREQ sent by a server";
	default: return NULL;
	}
}

/* DISCONNECT and AUTH (5.0 sections 3.14.2 and 3.15.2; 3.1.1 3.14). */
static enum mote_err decode_reason_only(struct rd *r, uint8_t type, uint8_t version,
					bool from_client, struct mqtt_reason_only *o,
					struct mqtt_fault *f)
{
	bool disc = type == MQTT_DISCONNECT;
	if (version != MQTT_V5) {
		/* 3.1.1 DISCONNECT has no variable header (AUTH never gets here). */
		return rd_left(r) ? MALFORMED(f, "DISCONNECT has a remaining length other than 0")
				  : MOTE_OK;
	}
	/* Remaining length 0 means reason 0 and no properties; 1 means no
	 * properties (3.14.2.1 / 3.15.2.1). */
	if (!rd_u8(r, &o->reason))
		return MOTE_OK;
	if (!mqtt__reason_valid(type, version, o->reason))
		return PROTO(f, disc ? "reason code not valid in DISCONNECT"
				     : "reason code not valid in AUTH");
	if (!rd_left(r))
		return MOTE_OK;
	enum mote_err err = mqtt__props_decode(r, type, false, from_client, &o->props, f);
	if (err != MOTE_OK)
		return err;
	if (rd_left(r))
		return MALFORMED(f, disc ? "bytes after the DISCONNECT properties"
					 : "bytes after the AUTH properties");
	return MOTE_OK;
}

enum mote_err mqtt_decode(const uint8_t *buf, size_t len, uint8_t version, bool from_client,
			  struct mqtt_packet *out, struct mqtt_fault *fault)
{
	struct mqtt_frame fr = { 0 }; /* total_len stays 0 until the header is whole */
	memset(out, 0, sizeof *out);
	if (!buf)
		return MALFORMED(fault, "packet shorter than its fixed header");
	enum mote_err err = mqtt_frame_parse(buf, len, 0, &fr, fault);
	if (err == MOTE_EAGAIN)
		return MALFORMED(fault, fr.total_len ? "packet shorter than its remaining length"
						     : "packet shorter than its fixed header");
	if (err != MOTE_OK)
		return err;
	if (len > fr.total_len)
		return MALFORMED(fault, "bytes after the end of the packet");

	uint8_t type = fr.type;
	out->type = (enum mqtt_type)type;
	if (type == 0)
		return MALFORMED(fault, "packet type 0 is reserved");
	if (type != MQTT_CONNECT && version != MQTT_V311 && version != MQTT_V5)
		return mqtt__fail(fault, MOTE_EINVAL, MQTT_RC_UNSPECIFIED,
				  "decode called with an unknown protocol version");
	if (type == MQTT_AUTH && version != MQTT_V5)
		return MALFORMED(fault, "packet type 15 is reserved in MQTT 3.1.1");
	if (!flags_ok(type, fr.flags))
		return MALFORMED(fault, "reserved fixed header flags are wrong");
	const char *dir = wrong_direction(type, from_client);
	if (dir)
		return PROTO(fault, dir);

	struct rd r = { buf + fr.header_len, buf + fr.total_len };
	switch (type) {
	case MQTT_CONNECT:
		return mqtt__decode_connect(&r, &out->u.connect, fault);
	case MQTT_CONNACK:
		return mqtt__decode_connack(&r, version, &out->u.connack, fault);
	case MQTT_PUBLISH:
		return mqtt__decode_publish(&r, fr.flags, version, from_client, &out->u.publish,
					    fault);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return mqtt__decode_ack(&r, type, version, &out->u.ack, fault);
	case MQTT_SUBSCRIBE:
		return mqtt__decode_subscribe(&r, version, &out->u.subscribe, fault);
	case MQTT_UNSUBSCRIBE:
		return mqtt__decode_unsubscribe(&r, version, &out->u.unsubscribe, fault);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return mqtt__decode_suback(&r, type, version, &out->u.suback, fault);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		if (rd_left(&r))
			return MALFORMED(fault, type == MQTT_PINGREQ
							? "PINGREQ has a remaining length other than 0"
							: "PINGRESP has a remaining length other than 0");
		return MOTE_OK;
	case MQTT_DISCONNECT:
		return decode_reason_only(&r, type, version, from_client, &out->u.disconnect,
					  fault);
	default: /* MQTT_AUTH */
		return decode_reason_only(&r, type, version, from_client, &out->u.auth, fault);
	}
}
