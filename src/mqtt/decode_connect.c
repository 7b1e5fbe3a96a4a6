/*
 * decode_connect.c - CONNECT and CONNACK (5.0 sections 3.1 and 3.2,
 * 3.1.1 sections 3.1 and 3.2).
 *
 * CONNECT states its own protocol version: c->version is set from the
 * protocol level byte before anything can fail on it, so a refused CONNECT
 * still says which CONNACK format the client reads. Unknown protocol names
 * and levels (MQIsdp / 3.1 included) are "unsupported protocol version"
 * (0x84), not malformed [MQTT-3.1.2-2]; the broker turns that into 3.1.1
 * return code 1 for clients that are not 5.0.
 */
#include "mqtt/mqtt_int.h"

static enum mote_err unsupported(struct mqtt_fault *f, const char *why)
{
	return mqtt__fail(f, MOTE_EPROTO, MQTT_RC_UNSUPPORTED_VERSION, why);
}

enum mote_err mqtt__decode_connect(struct rd *r, struct mqtt_connect *c, struct mqtt_fault *f)
{
	const uint8_t *name;
	uint16_t name_len;
	uint8_t flags;
	enum mote_err err;

	if (!rd_lenbytes(r, &name, &name_len))
		return MALFORMED(f, "CONNECT protocol name missing or truncated");
	if (!rd_u8(r, &c->version))
		return MALFORMED(f, "CONNECT protocol level missing");
	if (name_len == 6 && memcmp(name, "MQIsdp", 6) == 0)
		return unsupported(f, "MQTT 3.1 (MQIsdp) is not supported");
	if (name_len != 4 || memcmp(name, "MQTT", 4) != 0)
		return unsupported(f, "unknown protocol name"); /* [MQTT-3.1.2-1] */
	if (c->version != MQTT_V311 && c->version != MQTT_V5)
		return unsupported(f, "unsupported protocol level"); /* [MQTT-3.1.2-2] */
	bool v5 = c->version == MQTT_V5;

	if (!rd_u8(r, &flags))
		return MALFORMED(f, "CONNECT flags missing");
	if (flags & 0x01)
		return MALFORMED(f, "CONNECT reserved flag is not 0"); /* [MQTT-3.1.2-3] */
	c->clean_start = flags & 0x02;
	c->will = flags & 0x04;
	c->will_qos = (flags >> 3) & 0x03;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (c->will_qos == 3)
		return MALFORMED(f, "will QoS is 3"); /* [MQTT-3.1.2-12] */
	if (!c->will && (c->will_qos || c->will_retain)) /* [MQTT-3.1.2-11] [MQTT-3.1.2-13] */
		return MALFORMED(f, "will QoS or will retain set without a will");
	if (!v5 && c->has_password && !c->has_username) /* 3.1.1 [MQTT-3.1.2-22] */
		return MALFORMED(f, "password flag set without the user name flag");
	if (!rd_u16(r, &c->keep_alive))
		return MALFORMED(f, "CONNECT keep alive missing");
	if (v5) {
		err = mqtt__props_decode(r, MQTT_CONNECT, false, true, &c->props, f);
		if (err != MOTE_OK)
			return err;
	}

	/* Payload: client id, [will props, will topic, will payload],
	 * [user name], [password], in that order [MQTT-3.1.3-1]. */
	if (!rd_lenbytes(r, &c->client_id.p, &c->client_id.len))
		return MALFORMED(f, "client identifier missing or truncated");
	if (!mqtt_utf8_valid(c->client_id.p, c->client_id.len))
		return MALFORMED(f, "client identifier is not valid UTF-8");
	if (c->will) {
		if (v5) {
			err = mqtt__props_decode(r, MQTT_CONNECT, true, true, &c->will_props, f);
			if (err != MOTE_OK)
				return err;
		}
		if (!rd_lenbytes(r, &c->will_topic.p, &c->will_topic.len))
			return MALFORMED(f, "will topic missing or truncated");
		if (!mqtt_utf8_valid(c->will_topic.p, c->will_topic.len))
			return MALFORMED(f, "will topic is not valid UTF-8");
		uint16_t n;
		if (!rd_lenbytes(r, &c->will_payload.p, &n))
			return MALFORMED(f, "will payload missing or truncated");
		c->will_payload.len = n;
	}
	if (c->has_username) {
		if (!rd_lenbytes(r, &c->username.p, &c->username.len))
			return MALFORMED(f, "user name missing or truncated");
		if (!mqtt_utf8_valid(c->username.p, c->username.len))
			return MALFORMED(f, "user name is not valid UTF-8");
	}
	if (c->has_password) {
		uint16_t n;
		if (!rd_lenbytes(r, &c->password.p, &n))
			return MALFORMED(f, "password missing or truncated");
		c->password.len = n;
	}
	if (rd_left(r))
		return MALFORMED(f, "bytes after the end of the CONNECT payload");
	return MOTE_OK;
}

enum mote_err mqtt__decode_connack(struct rd *r, uint8_t version, struct mqtt_connack *c,
				   struct mqtt_fault *f)
{
	uint8_t flags;
	if (!rd_u8(r, &flags) || !rd_u8(r, &c->reason))
		return MALFORMED(f, "CONNACK shorter than 2 bytes");
	if (flags & 0xfe) /* [MQTT-3.2.2-1] */
		return MALFORMED(f, "CONNACK acknowledge flags reserved bits are not 0");
	c->session_present = flags & 0x01;
	if (!mqtt__reason_valid(MQTT_CONNACK, version, c->reason))
		return PROTO(f, "reason code not valid in CONNACK");
	if (c->session_present && c->reason) /* [MQTT-3.2.2-6], 3.1.1 [MQTT-3.2.2-4] */
		return PROTO(f, "CONNACK refuses the connection but has session present set");
	if (version == MQTT_V5) {
		enum mote_err err = mqtt__props_decode(r, MQTT_CONNACK, false, false, &c->props, f);
		if (err != MOTE_OK)
			return err;
	}
	if (rd_left(r))
		return MALFORMED(f, "bytes after the end of the CONNACK");
	return MOTE_OK;
}
