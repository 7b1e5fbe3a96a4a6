/*
 * props_enc.c - writing an MQTT 5.0 property block from struct mqtt_props.
 *
 * Order on the wire: the single-valued fields in ascending identifier
 * order, then the subscription identifiers, then `raw_extra` verbatim
 * (user properties and forwarded entries, already encoded). A fixed order
 * makes encode(decode(x)) reproduce x for anything mote itself wrote.
 *
 * The encoder refuses (MOTE_EINVAL) what the decoder would refuse and it
 * can see cheaply: a property not allowed in the packet, an unknown
 * `present` bit, numeric values out of range, binary data over 65535
 * bytes, authentication data without a method. It does not re-validate
 * UTF-8 or `raw_extra`: those are the caller's (see mqtt.h).
 *
 * The `present` bits of user properties and subscription identifiers are
 * not used: user properties come only from raw_extra, identifiers from
 * sub_ids. One exception keeps decoded packets re-encodable: with no
 * sub_ids, a set MQTT_PROP_SUBSCRIPTION_ID bit writes `sub_id` once.
 */
#include "mqtt/mqtt_int.h"

/* A field's value as number or bytes; false if id has no field. */
static bool field(const struct mqtt_props *p, uint8_t id, uint32_t *num, const uint8_t **bytes,
		  uint32_t *len)
{
	const struct mqtt_str *s = NULL;
	const struct mqtt_bin *b = NULL;
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT: *num = p->payload_format; break;
	case MQTT_PROP_MESSAGE_EXPIRY: *num = p->message_expiry; break;
	case MQTT_PROP_CONTENT_TYPE: s = &p->content_type; break;
	case MQTT_PROP_RESPONSE_TOPIC: s = &p->response_topic; break;
	case MQTT_PROP_CORRELATION_DATA: b = &p->correlation_data; break;
	case MQTT_PROP_SESSION_EXPIRY: *num = p->session_expiry; break;
	case MQTT_PROP_ASSIGNED_CLIENT_ID: s = &p->assigned_client_id; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: *num = p->server_keep_alive; break;
	case MQTT_PROP_AUTH_METHOD: s = &p->auth_method; break;
	case MQTT_PROP_AUTH_DATA: b = &p->auth_data; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFO: *num = p->request_problem_info; break;
	case MQTT_PROP_WILL_DELAY: *num = p->will_delay; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFO: *num = p->request_response_info; break;
	case MQTT_PROP_RESPONSE_INFO: s = &p->response_info; break;
	case MQTT_PROP_SERVER_REFERENCE: s = &p->server_reference; break;
	case MQTT_PROP_REASON_STRING: s = &p->reason_string; break;
	case MQTT_PROP_RECEIVE_MAX: *num = p->receive_max; break;
	case MQTT_PROP_TOPIC_ALIAS_MAX: *num = p->topic_alias_max; break;
	case MQTT_PROP_TOPIC_ALIAS: *num = p->topic_alias; break;
	case MQTT_PROP_MAX_QOS: *num = p->max_qos; break;
	case MQTT_PROP_RETAIN_AVAILABLE: *num = p->retain_available; break;
	case MQTT_PROP_MAX_PACKET_SIZE: *num = p->max_packet_size; break;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE: *num = p->wildcard_sub_available; break;
	case MQTT_PROP_SUB_ID_AVAILABLE: *num = p->sub_id_available; break;
	case MQTT_PROP_SHARED_SUB_AVAILABLE: *num = p->shared_sub_available; break;
	default:
		return false;
	}
	if (s) {
		*bytes = s->p;
		*len = s->len;
	} else if (b) {
		*bytes = b->p;
		*len = b->len;
	}
	return true;
}

static enum mote_err put_sub_id(struct wr *w, uint32_t v, uint8_t type, bool will)
{
	if (!mqtt_prop_allowed(MQTT_PROP_SUBSCRIPTION_ID, (enum mqtt_type)type, will) ||
	    mqtt__prop_value_bad(MQTT_PROP_SUBSCRIPTION_ID, v))
		return MOTE_EINVAL;
	wr_u8(w, MQTT_PROP_SUBSCRIPTION_ID);
	wr_varint(w, v);
	return MOTE_OK;
}

/* The entries without the length prefix. */
static enum mote_err put_entries(struct wr *w, const struct mqtt_props *p, uint8_t type,
				 bool will)
{
	if (p->present & 1u)
		return MOTE_EINVAL; /* there is no property 0 */
	uint64_t bits = p->present & ~((1ull << MQTT_PROP_USER_PROPERTY) |
				       (1ull << MQTT_PROP_SUBSCRIPTION_ID));
	while (bits) { /* lowest set bit first: ascending ids */
		uint8_t id = (uint8_t)__builtin_ctzll(bits);
		bits &= bits - 1;
		uint32_t num = 0, len = 0;
		const uint8_t *bytes = NULL;
		if (!field(p, id, &num, &bytes, &len) ||
		    !mqtt_prop_allowed(id, (enum mqtt_type)type, will))
			return MOTE_EINVAL;
		wr_u8(w, id);
		switch (mqtt_prop_type_of(id)) {
		case MQTT_PT_BYTE:
			if (mqtt__prop_value_bad(id, num))
				return MOTE_EINVAL;
			wr_u8(w, (uint8_t)num);
			break;
		case MQTT_PT_U16:
			if (mqtt__prop_value_bad(id, num))
				return MOTE_EINVAL;
			wr_u16(w, (uint16_t)num);
			break;
		case MQTT_PT_U32:
			if (mqtt__prop_value_bad(id, num))
				return MOTE_EINVAL;
			wr_u32(w, num);
			break;
		default: /* string or binary */
			if (len > UINT16_MAX || (len && !bytes))
				return MOTE_EINVAL;
			wr_u16(w, (uint16_t)len);
			wr_bytes(w, bytes, len);
			break;
		}
	}
	if (MQTT_HAS(p, MQTT_PROP_AUTH_DATA) && !MQTT_HAS(p, MQTT_PROP_AUTH_METHOD))
		return MOTE_EINVAL;

	if (p->sub_id_count) {
		if (!p->sub_ids || (type == MQTT_SUBSCRIBE && p->sub_id_count > 1))
			return MOTE_EINVAL; /* SUBSCRIBE carries at most one */
		for (uint32_t i = 0; i < p->sub_id_count; i++)
			if (put_sub_id(w, p->sub_ids[i], type, will) != MOTE_OK)
				return MOTE_EINVAL;
	} else if (MQTT_HAS(p, MQTT_PROP_SUBSCRIPTION_ID)) {
		if (put_sub_id(w, p->sub_id, type, will) != MOTE_OK)
			return MOTE_EINVAL;
	}

	if (p->raw_extra.len && !p->raw_extra.p)
		return MOTE_EINVAL;
	wr_bytes(w, p->raw_extra.p, p->raw_extra.len);
	return MOTE_OK;
}

enum mote_err mqtt__props_size(const struct mqtt_props *p, uint8_t type, bool will,
			       size_t *out)
{
	struct wr w = { NULL, 0, 0 };
	enum mote_err err = put_entries(&w, p, type, will);
	if (err != MOTE_OK)
		return err;
	if (w.len > MQTT_MAX_REMAINING_LENGTH)
		return MOTE_EINVAL;
	*out = w.len;
	return MOTE_OK;
}

enum mote_err mqtt__props_encode(struct wr *w, const struct mqtt_props *p, uint8_t type,
				 bool will)
{
	size_t n;
	enum mote_err err = mqtt__props_size(p, type, will, &n);
	if (err != MOTE_OK)
		return err;
	wr_varint(w, (uint32_t)n);
	return put_entries(w, p, type, will);
}
