/*
 * encode_connect.c - CONNECT and CONNACK bodies.
 *
 * CONNECT is written for the `version` argument (protocol level 4 or 5);
 * c->version is not consulted. Will QoS and will retain are written only
 * when there is a will, so a CONNECT without one always has them 0
 * [MQTT-3.1.2-11] [MQTT-3.1.2-13]. The 3.1.1 CONNACK is the fixed 4 bytes.
 */
#include "mqtt/mqtt_int.h"

/* A two-byte length and the bytes; EINVAL if it cannot be represented. */
static enum mote_err put_lenbytes(struct wr *w, const uint8_t *p, size_t len)
{
	if (len > UINT16_MAX || (len && !p))
		return MOTE_EINVAL;
	wr_u16(w, (uint16_t)len);
	wr_bytes(w, p, len);
	return MOTE_OK;
}

enum mote_err mqtt__put_connect(struct wr *w, const struct mqtt_connect *c, uint8_t version)
{
	bool v5 = version == MQTT_V5;
	enum mote_err err;
	if (c->will && c->will_qos > 2)
		return MOTE_EINVAL;
	if (!v5 && c->has_password && !c->has_username)
		return MOTE_EINVAL; /* 3.1.1 [MQTT-3.1.2-22] */

	uint8_t flags = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->has_password ? 0x40 : 0) |
				  (c->has_username ? 0x80 : 0));
	if (c->will)
		flags |= (uint8_t)(0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
	put_lenbytes(w, (const uint8_t *)"MQTT", 4);
	wr_u8(w, version);
	wr_u8(w, flags);
	wr_u16(w, c->keep_alive);
	if (v5 && (err = mqtt__props_encode(w, &c->props, MQTT_CONNECT, false)) != MOTE_OK)
		return err;
	if ((err = put_lenbytes(w, c->client_id.p, c->client_id.len)) != MOTE_OK)
		return err;
	if (c->will) {
		if (v5 &&
		    (err = mqtt__props_encode(w, &c->will_props, MQTT_CONNECT, true)) != MOTE_OK)
			return err;
		if ((err = put_lenbytes(w, c->will_topic.p, c->will_topic.len)) != MOTE_OK ||
		    (err = put_lenbytes(w, c->will_payload.p, c->will_payload.len)) != MOTE_OK)
			return err;
	}
	if (c->has_username &&
	    (err = put_lenbytes(w, c->username.p, c->username.len)) != MOTE_OK)
		return err;
	if (c->has_password &&
	    (err = put_lenbytes(w, c->password.p, c->password.len)) != MOTE_OK)
		return err;
	return MOTE_OK;
}

enum mote_err mqtt__put_connack(struct wr *w, const struct mqtt_connack *c, uint8_t version)
{
	if (!mqtt__reason_valid(MQTT_CONNACK, version, c->reason))
		return MOTE_EINVAL;
	if (c->session_present && c->reason)
		return MOTE_EINVAL; /* [MQTT-3.2.2-6] */
	wr_u8(w, c->session_present ? 0x01 : 0x00);
	wr_u8(w, c->reason);
	if (version == MQTT_V5)
		return mqtt__props_encode(w, &c->props, MQTT_CONNACK, false);
	return MOTE_OK;
}
