/*
 * decode_sub.c - SUBSCRIBE, UNSUBSCRIBE, SUBACK, UNSUBACK (5.0 sections
 * 3.8 - 3.11, 3.1.1 sections 3.8 - 3.11) and the iterator over a decoded
 * topic list.
 *
 * The decoder walks the whole topic list once to validate it (lengths,
 * UTF-8, option bits) and keeps it as a view; mqtt_topics_next() walks it
 * again for the caller without re-checking. Filter syntax ('+', '#',
 * $share) is not judged here: 5.0 answers a bad filter in its SUBACK slot
 * (0x8F), so the broker calls mqtt_topic_filter_valid() per entry.
 */
#include "mqtt/mqtt_int.h"

enum mote_err mqtt__decode_subscribe(struct rd *r, uint8_t version, struct mqtt_subscribe *s,
				     struct mqtt_fault *f)
{
	bool v5 = version == MQTT_V5;
	if (!rd_u16(r, &s->packet_id))
		return MALFORMED(f, "SUBSCRIBE packet identifier missing");
	if (s->packet_id == 0) /* [MQTT-2.2.1-3] */
		return PROTO(f, "SUBSCRIBE has packet identifier 0");
	if (v5) {
		enum mote_err err = mqtt__props_decode(r, MQTT_SUBSCRIBE, false, true, &s->props, f);
		if (err != MOTE_OK)
			return err;
	}
	s->list = (struct mqtt_bin){ r->p, (uint32_t)rd_left(r) };
	while (rd_left(r)) {
		const uint8_t *p;
		uint16_t n;
		uint8_t o;
		if (!rd_lenbytes(r, &p, &n))
			return MALFORMED(f, "SUBSCRIBE topic filter truncated");
		if (!mqtt_utf8_valid(p, n))
			return MALFORMED(f, "SUBSCRIBE topic filter is not valid UTF-8");
		if (!rd_u8(r, &o))
			return MALFORMED(f, "SUBSCRIBE subscription options missing");
		if (v5 && (o & 0xc0)) /* [MQTT-3.8.3-5] */
			return MALFORMED(f, "subscription options reserved bits are not 0");
		if (!v5 && (o & 0xfc)) /* 3.1.1 [MQTT-3-8.3-4] */
			return MALFORMED(f, "subscription options upper 6 bits are not 0");
		if ((o & 0x03) == 3)
			return MALFORMED(f, "subscription QoS is 3");
		if (v5 && ((o >> 4) & 0x03) == 3)
			return PROTO(f, "subscription retain handling is 3");
		s->count++;
	}
	if (s->count == 0) /* [MQTT-3.8.3-2], 3.1.1 [MQTT-3.8.3-3] */
		return PROTO(f, "SUBSCRIBE has no topic filters");
	return MOTE_OK;
}

enum mote_err mqtt__decode_unsubscribe(struct rd *r, uint8_t version,
				       struct mqtt_unsubscribe *u, struct mqtt_fault *f)
{
	if (!rd_u16(r, &u->packet_id))
		return MALFORMED(f, "UNSUBSCRIBE packet identifier missing");
	if (u->packet_id == 0) /* [MQTT-2.2.1-3] */
		return PROTO(f, "UNSUBSCRIBE has packet identifier 0");
	if (version == MQTT_V5) {
		enum mote_err err =
			mqtt__props_decode(r, MQTT_UNSUBSCRIBE, false, true, &u->props, f);
		if (err != MOTE_OK)
			return err;
	}
	u->list = (struct mqtt_bin){ r->p, (uint32_t)rd_left(r) };
	while (rd_left(r)) {
		const uint8_t *p;
		uint16_t n;
		if (!rd_lenbytes(r, &p, &n))
			return MALFORMED(f, "UNSUBSCRIBE topic filter truncated");
		if (!mqtt_utf8_valid(p, n))
			return MALFORMED(f, "UNSUBSCRIBE topic filter is not valid UTF-8");
		u->count++;
	}
	if (u->count == 0) /* [MQTT-3.10.3-2] */
		return PROTO(f, "UNSUBSCRIBE has no topic filters");
	return MOTE_OK;
}

enum mote_err mqtt__decode_suback(struct rd *r, uint8_t type, uint8_t version,
				  struct mqtt_suback *s, struct mqtt_fault *f)
{
	bool sub = type == MQTT_SUBACK;
	if (!rd_u16(r, &s->packet_id))
		return MALFORMED(f, sub ? "SUBACK packet identifier missing"
					: "UNSUBACK packet identifier missing");
	if (s->packet_id == 0)
		return PROTO(f, sub ? "SUBACK has packet identifier 0"
				    : "UNSUBACK has packet identifier 0");
	if (version != MQTT_V5 && !sub) /* 3.1.1 UNSUBACK: packet id only */
		return rd_left(r) ? MALFORMED(f, "UNSUBACK has a remaining length other than 2")
				  : MOTE_OK;
	if (version == MQTT_V5) {
		enum mote_err err = mqtt__props_decode(r, type, false, false, &s->props, f);
		if (err != MOTE_OK)
			return err;
	}
	s->reasons = r->p;
	s->count = (uint32_t)rd_left(r);
	for (uint32_t i = 0; i < s->count; i++)
		if (!mqtt__reason_valid(type, version, s->reasons[i]))
			return PROTO(f, sub ? "reason code not valid in SUBACK"
					    : "reason code not valid in UNSUBACK");
	r->p = r->end;
	/* One code per topic of the request, which had at least one. */
	if (s->count == 0)
		return PROTO(f, sub ? "SUBACK has no reason codes" : "UNSUBACK has no reason codes");
	return MOTE_OK;
}

void mqtt_subscribe_iter(struct mqtt_topic_iter *it, const struct mqtt_subscribe *s)
{
	it->p = s->list.p;
	it->end = s->list.p ? s->list.p + s->list.len : NULL;
	it->with_opts = true;
}

void mqtt_unsubscribe_iter(struct mqtt_topic_iter *it, const struct mqtt_unsubscribe *u)
{
	it->p = u->list.p;
	it->end = u->list.p ? u->list.p + u->list.len : NULL;
	it->with_opts = false;
}

bool mqtt_topics_next(struct mqtt_topic_iter *it, struct mqtt_sub_entry *out)
{
	if (!it->p || it->p >= it->end)
		return false;
	struct rd r = { it->p, it->end };
	uint8_t o = 0;
	memset(out, 0, sizeof *out);
	if (!rd_lenbytes(&r, &out->filter.p, &out->filter.len) ||
	    (it->with_opts && !rd_u8(&r, &o))) {
		it->p = it->end; /* not a validated list: stop rather than misread */
		return false;
	}
	out->opts.qos = o & 0x03;
	out->opts.no_local = o & 0x04;
	out->opts.retain_as_published = o & 0x08;
	out->opts.retain_handling = (o >> 4) & 0x03;
	it->p = r.p;
	return true;
}
