/*
 * props.c - MQTT 5.0 properties (section 2.2.2): the table of identifiers
 * (wire type, packets that may carry each), decoding a property block with
 * every check the receiver owes, the iterator, and user property copying.
 *
 * Invariants of a block that mqtt__props_decode() accepted, which the
 * iterator and mqtt_props_copy_user() rely on: every entry is a known id
 * with a complete value inside `raw`; strings are valid UTF-8; every
 * property but user properties (and subscription identifiers in PUBLISH)
 * appears at most once.
 */
#include "mqtt/mqtt_int.h"

/* Where a property may appear: bit (1 << packet type), bit 0 = will. */
#define WILL (1u << 0)
#define IN(t) (1u << (t))
#define ACKS (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))
#define PUBWILL (IN(MQTT_PUBLISH) | WILL)
#define CONN (IN(MQTT_CONNECT) | IN(MQTT_CONNACK))

struct prop_def {
	uint8_t type;   /* enum mqtt_prop_type */
	uint16_t where;
};

/* 5.0 section 2.2.2.2, table 2-4. */
static const struct prop_def defs[] = {
	[MQTT_PROP_PAYLOAD_FORMAT] = { MQTT_PT_BYTE, PUBWILL },
	[MQTT_PROP_MESSAGE_EXPIRY] = { MQTT_PT_U32, PUBWILL },
	[MQTT_PROP_CONTENT_TYPE] = { MQTT_PT_STRING, PUBWILL },
	[MQTT_PROP_RESPONSE_TOPIC] = { MQTT_PT_STRING, PUBWILL },
	[MQTT_PROP_CORRELATION_DATA] = { MQTT_PT_BINARY, PUBWILL },
	[MQTT_PROP_SUBSCRIPTION_ID] = { MQTT_PT_VARINT, IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE) },
	[MQTT_PROP_SESSION_EXPIRY] = { MQTT_PT_U32, CONN | IN(MQTT_DISCONNECT) },
	[MQTT_PROP_ASSIGNED_CLIENT_ID] = { MQTT_PT_STRING, IN(MQTT_CONNACK) },
	[MQTT_PROP_SERVER_KEEP_ALIVE] = { MQTT_PT_U16, IN(MQTT_CONNACK) },
	[MQTT_PROP_AUTH_METHOD] = { MQTT_PT_STRING, CONN | IN(MQTT_AUTH) },
	[MQTT_PROP_AUTH_DATA] = { MQTT_PT_BINARY, CONN | IN(MQTT_AUTH) },
	[MQTT_PROP_REQUEST_PROBLEM_INFO] = { MQTT_PT_BYTE, IN(MQTT_CONNECT) },
	[MQTT_PROP_WILL_DELAY] = { MQTT_PT_U32, WILL },
	[MQTT_PROP_REQUEST_RESPONSE_INFO] = { MQTT_PT_BYTE, IN(MQTT_CONNECT) },
	[MQTT_PROP_RESPONSE_INFO] = { MQTT_PT_STRING, IN(MQTT_CONNACK) },
	[MQTT_PROP_SERVER_REFERENCE] = { MQTT_PT_STRING, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT) },
	[MQTT_PROP_REASON_STRING] = { MQTT_PT_STRING, IN(MQTT_CONNACK) | ACKS | IN(MQTT_SUBACK) |
							      IN(MQTT_UNSUBACK) |
							      IN(MQTT_DISCONNECT) | IN(MQTT_AUTH) },
	[MQTT_PROP_RECEIVE_MAX] = { MQTT_PT_U16, CONN },
	[MQTT_PROP_TOPIC_ALIAS_MAX] = { MQTT_PT_U16, CONN },
	[MQTT_PROP_TOPIC_ALIAS] = { MQTT_PT_U16, IN(MQTT_PUBLISH) },
	[MQTT_PROP_MAX_QOS] = { MQTT_PT_BYTE, IN(MQTT_CONNACK) },
	[MQTT_PROP_RETAIN_AVAILABLE] = { MQTT_PT_BYTE, IN(MQTT_CONNACK) },
	[MQTT_PROP_USER_PROPERTY] = { MQTT_PT_PAIR, 0xfffe | WILL }, /* every packet */
	[MQTT_PROP_MAX_PACKET_SIZE] = { MQTT_PT_U32, CONN },
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = { MQTT_PT_BYTE, IN(MQTT_CONNACK) },
	[MQTT_PROP_SUB_ID_AVAILABLE] = { MQTT_PT_BYTE, IN(MQTT_CONNACK) },
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = { MQTT_PT_BYTE, IN(MQTT_CONNACK) },
};

#define NDEFS (sizeof defs / sizeof defs[0])

enum mqtt_prop_type mqtt_prop_type_of(uint8_t id)
{
	return id < NDEFS ? (enum mqtt_prop_type)defs[id].type : MQTT_PT_NONE;
}

bool mqtt_prop_allowed(uint8_t id, enum mqtt_type type, bool will)
{
	if (mqtt_prop_type_of(id) == MQTT_PT_NONE)
		return false;
	/* PINGREQ/PINGRESP carry no properties at all. */
	if (type < MQTT_CONNECT || type > MQTT_AUTH || type == MQTT_PINGREQ ||
	    type == MQTT_PINGRESP)
		return false;
	if (will)
		return type == MQTT_CONNECT && (defs[id].where & WILL);
	return (defs[id].where & IN(type)) != 0;
}

const char *mqtt__prop_value_bad(uint8_t id, uint32_t v)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT:
		return v > 1 ? "payload format indicator is neither 0 nor 1" : NULL;
	case MQTT_PROP_REQUEST_PROBLEM_INFO:
		return v > 1 ? "request problem information is neither 0 nor 1" : NULL;
	case MQTT_PROP_REQUEST_RESPONSE_INFO:
		return v > 1 ? "request response information is neither 0 nor 1" : NULL;
	case MQTT_PROP_MAX_QOS:
		return v > 1 ? "maximum QoS is neither 0 nor 1" : NULL;
	case MQTT_PROP_RETAIN_AVAILABLE:
		return v > 1 ? "retain available is neither 0 nor 1" : NULL;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		return v > 1 ? "wildcard subscription available is neither 0 nor 1" : NULL;
	case MQTT_PROP_SUB_ID_AVAILABLE:
		return v > 1 ? "subscription identifiers available is neither 0 nor 1" : NULL;
	case MQTT_PROP_SHARED_SUB_AVAILABLE:
		return v > 1 ? "shared subscription available is neither 0 nor 1" : NULL;
	case MQTT_PROP_RECEIVE_MAX:
		return v == 0 ? "receive maximum is 0" : NULL;
	case MQTT_PROP_MAX_PACKET_SIZE:
		return v == 0 ? "maximum packet size is 0" : NULL;
	case MQTT_PROP_TOPIC_ALIAS:
		return v == 0 ? "topic alias is 0" : NULL; /* [MQTT-3.3.2-8] */
	case MQTT_PROP_SUBSCRIPTION_ID:
		if (v == 0)
			return "subscription identifier is 0";
		return v > MQTT_MAX_SUB_ID ? "subscription identifier too large" : NULL;
	default:
		return NULL;
	}
}

/* Reads the value of one entry (id already read). False if it runs past r. */
static bool read_value(struct rd *r, struct mqtt_prop *out)
{
	uint8_t b;
	uint16_t h;
	uint32_t used;
	switch (out->type) {
	case MQTT_PT_BYTE:
		if (!rd_u8(r, &b))
			return false;
		out->u32 = b;
		return true;
	case MQTT_PT_U16:
		if (!rd_u16(r, &h))
			return false;
		out->u32 = h;
		return true;
	case MQTT_PT_U32:
		return rd_u32(r, &out->u32);
	case MQTT_PT_VARINT:
		if (mqtt_varint_decode(r->p, rd_left(r), &out->u32, &used) != MOTE_OK)
			return false;
		r->p += used;
		return true;
	case MQTT_PT_STRING:
		return rd_lenbytes(r, &out->str.p, &out->str.len);
	case MQTT_PT_BINARY:
		if (!rd_lenbytes(r, &out->bin.p, &h))
			return false;
		out->bin.len = h;
		return true;
	case MQTT_PT_PAIR:
		return rd_lenbytes(r, &out->str.p, &out->str.len) &&
		       rd_lenbytes(r, &out->str2.p, &out->str2.len);
	default:
		return false;
	}
}

/* Puts a single-valued property into its field of *out. */
static void store(struct mqtt_props *o, const struct mqtt_prop *v)
{
	struct mqtt_str s = v->str;
	switch (v->id) {
	case MQTT_PROP_PAYLOAD_FORMAT: o->payload_format = (uint8_t)v->u32; break;
	case MQTT_PROP_MESSAGE_EXPIRY: o->message_expiry = v->u32; break;
	case MQTT_PROP_CONTENT_TYPE: o->content_type = s; break;
	case MQTT_PROP_RESPONSE_TOPIC: o->response_topic = s; break;
	case MQTT_PROP_CORRELATION_DATA: o->correlation_data = v->bin; break;
	case MQTT_PROP_SESSION_EXPIRY: o->session_expiry = v->u32; break;
	case MQTT_PROP_ASSIGNED_CLIENT_ID: o->assigned_client_id = s; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: o->server_keep_alive = (uint16_t)v->u32; break;
	case MQTT_PROP_AUTH_METHOD: o->auth_method = s; break;
	case MQTT_PROP_AUTH_DATA: o->auth_data = v->bin; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFO: o->request_problem_info = (uint8_t)v->u32; break;
	case MQTT_PROP_WILL_DELAY: o->will_delay = v->u32; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFO: o->request_response_info = (uint8_t)v->u32; break;
	case MQTT_PROP_RESPONSE_INFO: o->response_info = s; break;
	case MQTT_PROP_SERVER_REFERENCE: o->server_reference = s; break;
	case MQTT_PROP_REASON_STRING: o->reason_string = s; break;
	case MQTT_PROP_RECEIVE_MAX: o->receive_max = (uint16_t)v->u32; break;
	case MQTT_PROP_TOPIC_ALIAS_MAX: o->topic_alias_max = (uint16_t)v->u32; break;
	case MQTT_PROP_TOPIC_ALIAS: o->topic_alias = (uint16_t)v->u32; break;
	case MQTT_PROP_MAX_QOS: o->max_qos = (uint8_t)v->u32; break;
	case MQTT_PROP_RETAIN_AVAILABLE: o->retain_available = (uint8_t)v->u32; break;
	case MQTT_PROP_MAX_PACKET_SIZE: o->max_packet_size = v->u32; break;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE: o->wildcard_sub_available = (uint8_t)v->u32; break;
	case MQTT_PROP_SUB_ID_AVAILABLE: o->sub_id_available = (uint8_t)v->u32; break;
	case MQTT_PROP_SHARED_SUB_AVAILABLE: o->shared_sub_available = (uint8_t)v->u32; break;
	case MQTT_PROP_SUBSCRIPTION_ID:
		if (o->sub_id_count_decoded++ == 0)
			o->sub_id = v->u32;
		break;
	case MQTT_PROP_USER_PROPERTY:
		if (o->user_count++ == 0) {
			o->user_first.key = v->str;
			o->user_first.val = v->str2;
		}
		break;
	default:
		break;
	}
}

static const char *const not_allowed[] = {
	[MQTT_CONNECT] = "property not allowed in CONNECT",
	[MQTT_CONNACK] = "property not allowed in CONNACK",
	[MQTT_PUBLISH] = "property not allowed in PUBLISH",
	[MQTT_PUBACK] = "property not allowed in PUBACK",
	[MQTT_PUBREC] = "property not allowed in PUBREC",
	[MQTT_PUBREL] = "property not allowed in PUBREL",
	[MQTT_PUBCOMP] = "property not allowed in PUBCOMP",
	[MQTT_SUBSCRIBE] = "property not allowed in SUBSCRIBE",
	[MQTT_SUBACK] = "property not allowed in SUBACK",
	[MQTT_UNSUBSCRIBE] = "property not allowed in UNSUBSCRIBE",
	[MQTT_UNSUBACK] = "property not allowed in UNSUBACK",
	[MQTT_PINGREQ] = "property not allowed in PINGREQ",
	[MQTT_PINGRESP] = "property not allowed in PINGRESP",
	[MQTT_DISCONNECT] = "property not allowed in DISCONNECT",
	[MQTT_AUTH] = "property not allowed in AUTH",
};

/* Checks one decoded entry's value beyond its wire type. */
static enum mote_err check_value(const struct mqtt_prop *v, struct mqtt_fault *f)
{
	switch (v->type) {
	case MQTT_PT_STRING:
		if (!mqtt_utf8_valid(v->str.p, v->str.len))
			return MALFORMED(f, "property string is not valid UTF-8");
		if (v->id == MQTT_PROP_RESPONSE_TOPIC &&
		    !mqtt_topic_name_valid(v->str.p, v->str.len)) /* [MQTT-3.3.2-14] */
			return PROTO(f, v->str.len ? "response topic contains a wildcard"
						   : "response topic is empty");
		return MOTE_OK;
	case MQTT_PT_PAIR:
		if (!mqtt_utf8_valid(v->str.p, v->str.len))
			return MALFORMED(f, "user property name is not valid UTF-8");
		if (!mqtt_utf8_valid(v->str2.p, v->str2.len))
			return MALFORMED(f, "user property value is not valid UTF-8");
		return MOTE_OK;
	case MQTT_PT_BINARY:
		return MOTE_OK;
	default: {
		const char *bad = mqtt__prop_value_bad(v->id, v->u32);
		if (bad && v->id == MQTT_PROP_TOPIC_ALIAS) /* 3.3.2.3.4: 0x94 */
			return mqtt__fail(f, MOTE_EPROTO, MQTT_RC_TOPIC_ALIAS_INVALID, bad);
		return bad ? PROTO(f, bad) : MOTE_OK;
	}
	}
}

enum mote_err mqtt__props_decode(struct rd *r, uint8_t type, bool will, bool from_client,
				 struct mqtt_props *out, struct mqtt_fault *f)
{
	uint32_t blen, used;
	enum mote_err err = mqtt_varint_decode(r->p, rd_left(r), &blen, &used);
	if (err == MOTE_EAGAIN)
		return MALFORMED(f, "property length missing or truncated");
	if (err != MOTE_OK)
		return MALFORMED(f, "property length longer than 4 bytes");
	r->p += used;
	if (blen > rd_left(r))
		return MALFORMED(f, "property length exceeds the packet");
	struct rd b = { r->p, r->p + blen };
	out->raw = (struct mqtt_bin){ r->p, blen };
	r->p += blen;

	while (rd_left(&b)) {
		struct mqtt_prop v = { 0 };
		v.id = *b.p++;
		v.type = mqtt_prop_type_of(v.id);
		if (v.type == MQTT_PT_NONE)
			return MALFORMED(f, "unknown property identifier");
		/* 2.2.2.2: an identifier not valid for the packet type makes it
		 * a Malformed Packet */
		if (!mqtt_prop_allowed(v.id, (enum mqtt_type)type, will))
			return MALFORMED(f, will ? "property not allowed in will properties"
						 : not_allowed[type]);
		if (v.id == MQTT_PROP_SUBSCRIPTION_ID && type == MQTT_PUBLISH && from_client)
			return PROTO(f, "PUBLISH from a client has a subscription identifier");
		/* [MQTT-3.3.4-6] lets a server send several subscription
		 * identifiers in one PUBLISH; nothing else repeats but user
		 * properties. */
		bool repeats = v.id == MQTT_PROP_USER_PROPERTY ||
			       (v.id == MQTT_PROP_SUBSCRIPTION_ID && type == MQTT_PUBLISH);
		if (MQTT_HAS(out, v.id) && !repeats)
			return PROTO(f, "property appears twice");
		if (!read_value(&b, &v)) {
			if (v.type == MQTT_PT_VARINT && rd_left(&b) >= 4)
				return MALFORMED(f, "subscription identifier longer than 4 bytes");
			return MALFORMED(f, "property value runs past the property length");
		}
		err = check_value(&v, f);
		if (err != MOTE_OK)
			return err;
		store(out, &v);
		MQTT_SET(out, v.id);
	}
	if (MQTT_HAS(out, MQTT_PROP_AUTH_DATA) && !MQTT_HAS(out, MQTT_PROP_AUTH_METHOD))
		return PROTO(f, "authentication data without an authentication method");
	if (type == MQTT_DISCONNECT && !from_client && MQTT_HAS(out, MQTT_PROP_SESSION_EXPIRY))
		return PROTO(f, "session expiry interval in a DISCONNECT from the server");
	return MOTE_OK; /* [MQTT-3.14.2-2] above */
}

/* ---- iterator and user properties ------------------------------------- */

void mqtt_prop_iter_init(struct mqtt_prop_iter *it, const struct mqtt_props *props)
{
	it->p = props->raw.p;
	it->end = props->raw.p ? props->raw.p + props->raw.len : NULL;
}

bool mqtt_prop_iter_next(struct mqtt_prop_iter *it, struct mqtt_prop *out)
{
	if (!it->p || it->p >= it->end)
		return false;
	struct rd r = { it->p, it->end };
	memset(out, 0, sizeof *out);
	if (!rd_u8(&r, &out->id))
		return false;
	out->type = mqtt_prop_type_of(out->id);
	if (!read_value(&r, out)) {
		it->p = it->end; /* not a validated block: stop rather than misread */
		return false;
	}
	it->p = r.p;
	return true;
}

static void put_pair(struct wr *w, struct mqtt_str k, struct mqtt_str v)
{
	wr_u8(w, MQTT_PROP_USER_PROPERTY);
	wr_u16(w, k.len);
	wr_bytes(w, k.p, k.len);
	wr_u16(w, v.len);
	wr_bytes(w, v.p, v.len);
}

/* Both functions below count first so that ENOSPC writes nothing and
 * *out_len tells the caller how much room it needs. */
enum mote_err mqtt_props_copy_user(const struct mqtt_props *props, uint8_t *dst, size_t cap,
				   size_t *out_len)
{
	struct wr w = { NULL, 0, 0 };
	struct mqtt_prop_iter it;
	struct mqtt_prop v;
	for (int pass = 0; pass < 2; pass++) {
		mqtt_prop_iter_init(&it, props);
		while (mqtt_prop_iter_next(&it, &v))
			if (v.id == MQTT_PROP_USER_PROPERTY)
				put_pair(&w, v.str, v.str2);
		*out_len = w.len;
		if (pass == 0) {
			if (w.len > cap)
				return MOTE_ENOSPC;
			w = (struct wr){ dst, cap, 0 };
		}
	}
	return MOTE_OK;
}

enum mote_err mqtt_user_props_encode(const struct mqtt_user_prop *pairs, size_t n, uint8_t *dst,
				     size_t cap, size_t *out_len)
{
	struct wr w = { NULL, 0, 0 };
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			if ((pairs[i].key.len && !pairs[i].key.p) ||
			    (pairs[i].val.len && !pairs[i].val.p))
				return MOTE_EINVAL;
			put_pair(&w, pairs[i].key, pairs[i].val);
		}
		*out_len = w.len;
		if (pass == 0) {
			if (w.len > cap)
				return MOTE_ENOSPC;
			w = (struct wr){ dst, cap, 0 };
		}
	}
	return MOTE_OK;
}
