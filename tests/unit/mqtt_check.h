/*
 * mqtt_check.h - packet comparison and re-encoding helpers shared by the
 * codec's unit tests (tests/unit/test_mqtt_*.c) and its fuzz target
 * (fuzz/fuzz_mqtt_decode.c). Header-only so each test stays one file.
 *
 * Two forms of struct mqtt_packet exist: what mqtt_decode() returns (views,
 * topic lists as `list`, repeated properties walked through `raw`) and what
 * mqtt_encode() reads (arrays: `entries`, `filters`, `sub_ids`, and user
 * properties as `raw_extra`). mc_to_input() turns the first into the second;
 * mc_packet_eq() compares two decoded packets field by field;
 * mc_input_eq() compares an encoder input with what decoding its bytes gave.
 * Each comparison returns NULL when equal, else a text naming the field.
 *
 * Allocation: mc_to_input() takes memory from a caller-owned arena;
 * mc_reencode() mallocs and frees its own.
 */
#ifndef MOTE_TESTS_MQTT_CHECK_H
#define MOTE_TESTS_MQTT_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"

static inline bool mc_str_eq(struct mqtt_str a, struct mqtt_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool mc_bin_eq(struct mqtt_bin a, struct mqtt_bin b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The single-valued fields (everything but sub ids, user props, raw). */
static inline const char *mc_fields_eq(const struct mqtt_props *a, const struct mqtt_props *b)
{
#define MC_NUM(f)                                                                          \
	if (a->f != b->f)                                                                  \
		return "props." #f " differs";
#define MC_STR(f)                                                                          \
	if (!mc_str_eq(a->f, b->f))                                                        \
		return "props." #f " differs";
#define MC_BIN(f)                                                                          \
	if (!mc_bin_eq(a->f, b->f))                                                        \
		return "props." #f " differs";
	MC_NUM(payload_format)
	MC_NUM(request_problem_info)
	MC_NUM(request_response_info)
	MC_NUM(max_qos)
	MC_NUM(retain_available)
	MC_NUM(wildcard_sub_available)
	MC_NUM(sub_id_available)
	MC_NUM(shared_sub_available)
	MC_NUM(server_keep_alive)
	MC_NUM(receive_max)
	MC_NUM(topic_alias_max)
	MC_NUM(topic_alias)
	MC_NUM(message_expiry)
	MC_NUM(session_expiry)
	MC_NUM(will_delay)
	MC_NUM(max_packet_size)
	MC_STR(content_type)
	MC_STR(response_topic)
	MC_STR(assigned_client_id)
	MC_STR(auth_method)
	MC_STR(response_info)
	MC_STR(server_reference)
	MC_STR(reason_string)
	MC_BIN(correlation_data)
	MC_BIN(auth_data)
#undef MC_NUM
#undef MC_STR
#undef MC_BIN
	return NULL;
}

/* Next entry with this id, or false at the end. */
static inline bool mc_next_of(struct mqtt_prop_iter *it, uint8_t id, struct mqtt_prop *out)
{
	while (mqtt_prop_iter_next(it, out))
		if (out->id == id)
			return true;
	return false;
}

/* Do the blocks of a and b hold the same sequence of entries `id`? */
static inline bool mc_seq_eq(const struct mqtt_props *a, const struct mqtt_props *b, uint8_t id)
{
	struct mqtt_prop_iter ia, ib;
	struct mqtt_prop pa, pb;
	mqtt_prop_iter_init(&ia, a);
	mqtt_prop_iter_init(&ib, b);
	for (;;) {
		bool ha = mc_next_of(&ia, id, &pa), hb = mc_next_of(&ib, id, &pb);
		if (ha != hb)
			return false;
		if (!ha)
			return true;
		if (pa.u32 != pb.u32 || !mc_str_eq(pa.str, pb.str) ||
		    !mc_str_eq(pa.str2, pb.str2) || !mc_bin_eq(pa.bin, pb.bin))
			return false;
	}
}

/* Two decoded property sets. */
static inline const char *mc_props_eq(const struct mqtt_props *a, const struct mqtt_props *b)
{
	if (a->present != b->present)
		return "props.present differs";
	const char *why = mc_fields_eq(a, b);
	if (why)
		return why;
	if (a->sub_id != b->sub_id || a->sub_id_count_decoded != b->sub_id_count_decoded)
		return "props.sub_id differs";
	if (a->user_count != b->user_count || !mc_str_eq(a->user_first.key, b->user_first.key) ||
	    !mc_str_eq(a->user_first.val, b->user_first.val))
		return "props.user_first differs";
	if (!mc_seq_eq(a, b, MQTT_PROP_SUBSCRIPTION_ID))
		return "subscription identifiers differ";
	if (!mc_seq_eq(a, b, MQTT_PROP_USER_PROPERTY))
		return "user properties differ";
	return NULL;
}

/* Encoder input `in` (user properties only in raw_extra) against decoded. */
static inline const char *mc_props_vs_input(const struct mqtt_props *in,
					    const struct mqtt_props *dec)
{
	const uint64_t user_bit = 1ull << MQTT_PROP_USER_PROPERTY;
	const uint64_t sub_bit = 1ull << MQTT_PROP_SUBSCRIPTION_ID;
	struct mqtt_props extra = { .raw = in->raw_extra };
	struct mqtt_prop_iter it;
	struct mqtt_prop p;
	uint32_t users = 0;
	mqtt_prop_iter_init(&it, &extra);
	while (mc_next_of(&it, MQTT_PROP_USER_PROPERTY, &p))
		users++;
	uint32_t nsub = in->sub_id_count;
	const uint32_t *subs = in->sub_ids;
	if (nsub == 0 && (in->present & sub_bit)) {
		nsub = 1;
		subs = &in->sub_id;
	}
	uint64_t want = in->present & ~(user_bit | sub_bit);
	if (users)
		want |= user_bit;
	if (nsub)
		want |= sub_bit;
	if (dec->present != want)
		return "props.present differs from the input";
	const char *why = mc_fields_eq(in, dec);
	if (why)
		return why;
	if (dec->sub_id_count_decoded != nsub || (nsub && dec->sub_id != subs[0]))
		return "decoded sub_id / count differ from the input";
	mqtt_prop_iter_init(&it, dec);
	for (uint32_t i = 0; i < nsub; i++)
		if (!mc_next_of(&it, MQTT_PROP_SUBSCRIPTION_ID, &p) || p.u32 != subs[i])
			return "subscription identifier sequence differs from the input";
	if (mc_next_of(&it, MQTT_PROP_SUBSCRIPTION_ID, &p))
		return "more subscription identifiers than the input";
	if (dec->user_count != users)
		return "user_count differs from the input";
	if (!mc_seq_eq(&extra, dec, MQTT_PROP_USER_PROPERTY))
		return "user properties differ from the input";
	if (users) {
		mqtt_prop_iter_init(&it, &extra);
		mc_next_of(&it, MQTT_PROP_USER_PROPERTY, &p);
		if (!mc_str_eq(p.str, dec->user_first.key) || !mc_str_eq(p.str2, dec->user_first.val))
			return "user_first differs from the input";
	}
	return NULL;
}

static inline const char *mc_connect_eq(const struct mqtt_connect *a,
					const struct mqtt_connect *b, bool a_is_input)
{
	if (a->clean_start != b->clean_start || a->will != b->will ||
	    a->has_username != b->has_username || a->has_password != b->has_password ||
	    a->keep_alive != b->keep_alive)
		return "CONNECT flags or keep alive differ";
	if (a->will && (a->will_qos != b->will_qos || a->will_retain != b->will_retain))
		return "CONNECT will QoS / retain differ";
	if (!mc_str_eq(a->client_id, b->client_id))
		return "CONNECT client id differs";
	if (a->will && (!mc_str_eq(a->will_topic, b->will_topic) ||
			!mc_bin_eq(a->will_payload, b->will_payload)))
		return "CONNECT will topic / payload differ";
	if (a->has_username && !mc_str_eq(a->username, b->username))
		return "CONNECT user name differs";
	if (a->has_password && !mc_bin_eq(a->password, b->password))
		return "CONNECT password differs";
	const char *why = a_is_input ? mc_props_vs_input(&a->props, &b->props)
				     : mc_props_eq(&a->props, &b->props);
	if (why)
		return why;
	if (a->will)
		return a_is_input ? mc_props_vs_input(&a->will_props, &b->will_props)
				  : mc_props_eq(&a->will_props, &b->will_props);
	return NULL;
}

/*
 * Compares a (decoded, or encoder input when a_is_input) with decoded b.
 * version: what both were encoded for (3.1.1 drops props, ack reasons,
 * SUBSCRIBE option bits, UNSUBACK reasons).
 */
static inline const char *mc_compare(const struct mqtt_packet *a, const struct mqtt_packet *b,
				     uint8_t version, bool a_is_input)
{
	bool v5 = version == MQTT_V5;
	if (a->type != b->type)
		return "packet type differs";
#define MC_PROPS(x, y)                                                                     \
	(!v5 ? NULL : a_is_input ? mc_props_vs_input((x), (y)) : mc_props_eq((x), (y)))
	switch (a->type) {
	case MQTT_CONNECT:
		if (!a_is_input && a->u.connect.version != b->u.connect.version)
			return "CONNECT version differs";
		if (b->u.connect.version != version)
			return "decoded CONNECT version is not the encoded one";
		if (!v5 && !a_is_input)
			return mc_connect_eq(&a->u.connect, &b->u.connect, false);
		if (!v5) {
			/* 3.1.1 input: properties are not written at all. */
			struct mqtt_connect c = a->u.connect;
			c.props = b->u.connect.props;
			c.will_props = b->u.connect.will_props;
			return mc_connect_eq(&c, &b->u.connect, false);
		}
		return mc_connect_eq(&a->u.connect, &b->u.connect, a_is_input);
	case MQTT_CONNACK:
		if (a->u.connack.session_present != b->u.connack.session_present ||
		    a->u.connack.reason != b->u.connack.reason)
			return "CONNACK flags / reason differ";
		return MC_PROPS(&a->u.connack.props, &b->u.connack.props);
	case MQTT_PUBLISH: {
		const struct mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
		if (x->qos != y->qos || x->dup != y->dup || x->retain != y->retain)
			return "PUBLISH flags differ";
		if (!mc_str_eq(x->topic, y->topic))
			return "PUBLISH topic differs";
		if ((x->qos ? x->packet_id : 0) != y->packet_id)
			return "PUBLISH packet id differs";
		if (!mc_bin_eq(x->payload, y->payload))
			return "PUBLISH payload differs";
		return MC_PROPS(&x->props, &y->props);
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		if (a->u.ack.packet_id != b->u.ack.packet_id)
			return "ack packet id differs";
		if ((v5 ? a->u.ack.reason : 0) != b->u.ack.reason)
			return "ack reason differs";
		return MC_PROPS(&a->u.ack.props, &b->u.ack.props);
	case MQTT_SUBSCRIBE: {
		const struct mqtt_subscribe *x = &a->u.subscribe, *y = &b->u.subscribe;
		struct mqtt_topic_iter ix, iy;
		struct mqtt_sub_entry ex, ey;
		if (x->packet_id != y->packet_id || x->count != y->count)
			return "SUBSCRIBE packet id / count differ";
		mqtt_subscribe_iter(&ix, x);
		mqtt_subscribe_iter(&iy, y);
		for (uint32_t i = 0; i < x->count; i++) {
			if (a_is_input)
				ex = x->entries[i];
			else if (!mqtt_topics_next(&ix, &ex))
				return "SUBSCRIBE list shorter than count";
			if (!mqtt_topics_next(&iy, &ey))
				return "decoded SUBSCRIBE list shorter than count";
			if (!v5)
				ex.opts = (struct mqtt_sub_opts){ .qos = ex.opts.qos };
			if (!mc_str_eq(ex.filter, ey.filter) || ex.opts.qos != ey.opts.qos ||
			    ex.opts.no_local != ey.opts.no_local ||
			    ex.opts.retain_as_published != ey.opts.retain_as_published ||
			    ex.opts.retain_handling != ey.opts.retain_handling)
				return "SUBSCRIBE entry differs";
		}
		if (mqtt_topics_next(&iy, &ey))
			return "decoded SUBSCRIBE list longer than count";
		return MC_PROPS(&x->props, &y->props);
	}
	case MQTT_UNSUBSCRIBE: {
		const struct mqtt_unsubscribe *x = &a->u.unsubscribe, *y = &b->u.unsubscribe;
		struct mqtt_topic_iter ix, iy;
		struct mqtt_sub_entry ex, ey;
		if (x->packet_id != y->packet_id || x->count != y->count)
			return "UNSUBSCRIBE packet id / count differ";
		mqtt_unsubscribe_iter(&ix, x);
		mqtt_unsubscribe_iter(&iy, y);
		for (uint32_t i = 0; i < x->count; i++) {
			if (a_is_input)
				ex.filter = x->filters[i];
			else if (!mqtt_topics_next(&ix, &ex))
				return "UNSUBSCRIBE list shorter than count";
			if (!mqtt_topics_next(&iy, &ey))
				return "decoded UNSUBSCRIBE list shorter than count";
			if (!mc_str_eq(ex.filter, ey.filter) || ey.opts.qos || ey.opts.no_local)
				return "UNSUBSCRIBE filter differs";
		}
		if (mqtt_topics_next(&iy, &ey))
			return "decoded UNSUBSCRIBE list longer than count";
		return MC_PROPS(&x->props, &y->props);
	}
	case MQTT_SUBACK:
	case MQTT_UNSUBACK: {
		const struct mqtt_suback *x = &a->u.suback, *y = &b->u.suback;
		if (x->packet_id != y->packet_id)
			return "SUBACK/UNSUBACK packet id differs";
		if (!v5 && a->type == MQTT_UNSUBACK)
			return y->count == 0 ? NULL : "3.1.1 UNSUBACK decoded with reasons";
		if (x->count != y->count || memcmp(x->reasons, y->reasons, x->count) != 0)
			return "SUBACK/UNSUBACK reasons differ";
		return MC_PROPS(&x->props, &y->props);
	}
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		if ((v5 ? a->u.disconnect.reason : 0) != b->u.disconnect.reason)
			return "reason differs";
		return MC_PROPS(&a->u.disconnect.props, &b->u.disconnect.props);
	default:
		return NULL;
	}
#undef MC_PROPS
}

static inline const char *mc_packet_eq(const struct mqtt_packet *a, const struct mqtt_packet *b,
				       uint8_t version)
{
	return mc_compare(a, b, version, false);
}

static inline const char *mc_input_eq(const struct mqtt_packet *in, const struct mqtt_packet *dec,
				      uint8_t version)
{
	return mc_compare(in, dec, version, true);
}

/* ---- decoded form -> encoder input ------------------------------------- */

struct mc_arena {
	uint8_t *base;
	size_t cap;
	size_t used;
};

static inline void *mc_take(struct mc_arena *a, size_t n)
{
	size_t at = (a->used + 7u) & ~(size_t)7u;
	if (at > a->cap || n > a->cap - at)
		return NULL;
	a->used = at + n;
	return a->base + at;
}

static inline bool mc_props_to_input(struct mqtt_props *p, struct mc_arena *a)
{
	size_t n = 0;
	if (mqtt_props_copy_user(p, NULL, 0, &n) == MOTE_ENOSPC) {
		uint8_t *dst = mc_take(a, n);
		if (!dst || mqtt_props_copy_user(p, dst, n, &n) != MOTE_OK)
			return false;
		p->raw_extra = (struct mqtt_bin){ dst, (uint32_t)n };
	}
	struct mqtt_prop_iter it;
	struct mqtt_prop v;
	uint32_t count = 0;
	mqtt_prop_iter_init(&it, p);
	while (mc_next_of(&it, MQTT_PROP_SUBSCRIPTION_ID, &v))
		count++;
	if (count) {
		uint32_t *ids = mc_take(a, count * sizeof *ids);
		if (!ids)
			return false;
		mqtt_prop_iter_init(&it, p);
		for (uint32_t i = 0; i < count && mc_next_of(&it, MQTT_PROP_SUBSCRIPTION_ID, &v); i++)
			ids[i] = v.u32;
		p->sub_ids = ids;
		p->sub_id_count = count;
	}
	return true;
}

/* Turns decoded *pkt into an encoder input in place. */
static inline bool mc_to_input(struct mqtt_packet *pkt, struct mc_arena *a)
{
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	switch (pkt->type) {
	case MQTT_CONNECT:
		return mc_props_to_input(&pkt->u.connect.props, a) &&
		       mc_props_to_input(&pkt->u.connect.will_props, a);
	case MQTT_CONNACK:
		return mc_props_to_input(&pkt->u.connack.props, a);
	case MQTT_PUBLISH:
		return mc_props_to_input(&pkt->u.publish.props, a);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return mc_props_to_input(&pkt->u.ack.props, a);
	case MQTT_SUBSCRIBE: {
		struct mqtt_subscribe *s = &pkt->u.subscribe;
		struct mqtt_sub_entry *arr = mc_take(a, (size_t)s->count * sizeof *arr);
		if (!arr)
			return false;
		mqtt_subscribe_iter(&it, s);
		for (uint32_t i = 0; i < s->count; i++)
			if (!mqtt_topics_next(&it, &arr[i]))
				return false;
		s->entries = arr;
		return mc_props_to_input(&s->props, a);
	}
	case MQTT_UNSUBSCRIBE: {
		struct mqtt_unsubscribe *u = &pkt->u.unsubscribe;
		struct mqtt_str *arr = mc_take(a, (size_t)u->count * sizeof *arr);
		if (!arr)
			return false;
		mqtt_unsubscribe_iter(&it, u);
		for (uint32_t i = 0; i < u->count; i++) {
			if (!mqtt_topics_next(&it, &e))
				return false;
			arr[i] = e.filter;
		}
		u->filters = arr;
		return mc_props_to_input(&u->props, a);
	}
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return mc_props_to_input(&pkt->u.suback.props, a);
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return mc_props_to_input(&pkt->u.disconnect.props, a);
	default:
		return true;
	}
}

/*
 * Re-encodes decoded `dec` (which came from src_len bytes) for `version`,
 * checks that encoded_size, encode, encode_publish_head and frame parse
 * agree, decodes the result and compares it with `dec`. On success
 * *out and *out_len get the bytes (free() them; out may be NULL). Returns NULL
 * when everything holds, else what did not.
 */
static inline const char *mc_reencode(const struct mqtt_packet *dec, size_t src_len,
				      uint8_t version, bool from_client, uint8_t **out,
				      size_t *out_len)
{
	const char *why = NULL;
	struct mqtt_packet in = *dec, again;
	struct mqtt_fault fault;
	struct mqtt_frame fr;
	size_t size = 0, n = 0;
	uint8_t *buf = NULL, *head = NULL;
	if (dec->type == MQTT_CONNECT)
		version = dec->u.connect.version;
	/* Room for the arrays: every 2 source bytes hold at most one filter,
	 * sub id or user property, each needing at most 32 bytes here. */
	size_t arena_cap = 64 + 16 * src_len + src_len;
	struct mc_arena arena = { malloc(arena_cap), arena_cap, 0 };
	if (!arena.base) {
		why = "out of memory";
		goto out;
	}
	if (!mc_to_input(&in, &arena)) {
		why = "could not convert the decoded packet to encoder input";
		goto out;
	}
	if (mqtt_encoded_size(&in, version, &size) != MOTE_OK) {
		why = "mqtt_encoded_size refused a decoded packet";
		goto out;
	}
	buf = malloc(size);
	if (!buf) {
		why = "out of memory";
		goto out;
	}
	if (size > 0 && mqtt_encode(&in, version, buf, size - 1, &n) != MOTE_ENOSPC) {
		why = "mqtt_encode did not report ENOSPC one byte short";
		goto out;
	}
	if (mqtt_encode(&in, version, buf, size, &n) != MOTE_OK || n != size) {
		why = "mqtt_encode failed or disagrees with mqtt_encoded_size";
		goto out;
	}
	if (mqtt_frame_parse(buf, n, 0, &fr, NULL) != MOTE_OK || fr.total_len != n) {
		why = "frame parse of the re-encoded packet disagrees";
		goto out;
	}
	if (in.type == MQTT_PUBLISH) {
		size_t hn = 0;
		head = malloc(size);
		if (!head) {
			why = "out of memory";
			goto out;
		}
		if (mqtt_encode_publish_head(&in.u.publish, version, head, size, &hn) != MOTE_OK ||
		    hn + in.u.publish.payload.len != size || memcmp(head, buf, hn) != 0) {
			why = "mqtt_encode_publish_head disagrees with mqtt_encode";
			goto out;
		}
	}
	if (mqtt_decode(buf, n, version, from_client, &again, &fault) != MOTE_OK) {
		why = "the re-encoded packet does not decode";
		goto out;
	}
	why = mc_packet_eq(dec, &again, version);
out:
	free(arena.base);
	free(head);
	if (!why && out) {
		*out = buf;
		*out_len = n;
	} else {
		free(buf);
	}
	return why;
}

#endif
