/*
 * test_mqtt_props.c - the property table (types and where each property
 * may appear, written out again by hand from 5.0 section 2.2.2.2), the
 * iterator, user property copying, and what the property encoder refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

/* ---- the table, from the spec ------------------------------------------ */

#define P(t) (1u << (t))
#define WILL (1u << 16)

struct spec_prop {
	uint8_t id;
	enum mqtt_prop_type type;
	uint32_t where;
};

/* 5.0 table 2-4, one row per identifier. */
static const struct spec_prop spec[] = {
	{ 0x01, MQTT_PT_BYTE, P(MQTT_PUBLISH) | WILL },
	{ 0x02, MQTT_PT_U32, P(MQTT_PUBLISH) | WILL },
	{ 0x03, MQTT_PT_STRING, P(MQTT_PUBLISH) | WILL },
	{ 0x08, MQTT_PT_STRING, P(MQTT_PUBLISH) | WILL },
	{ 0x09, MQTT_PT_BINARY, P(MQTT_PUBLISH) | WILL },
	{ 0x0B, MQTT_PT_VARINT, P(MQTT_PUBLISH) | P(MQTT_SUBSCRIBE) },
	{ 0x11, MQTT_PT_U32, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_DISCONNECT) },
	{ 0x12, MQTT_PT_STRING, P(MQTT_CONNACK) },
	{ 0x13, MQTT_PT_U16, P(MQTT_CONNACK) },
	{ 0x15, MQTT_PT_STRING, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH) },
	{ 0x16, MQTT_PT_BINARY, P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_AUTH) },
	{ 0x17, MQTT_PT_BYTE, P(MQTT_CONNECT) },
	{ 0x18, MQTT_PT_U32, WILL },
	{ 0x19, MQTT_PT_BYTE, P(MQTT_CONNECT) },
	{ 0x1A, MQTT_PT_STRING, P(MQTT_CONNACK) },
	{ 0x1C, MQTT_PT_STRING, P(MQTT_CONNACK) | P(MQTT_DISCONNECT) },
	{ 0x1F, MQTT_PT_STRING,
	  P(MQTT_CONNACK) | P(MQTT_PUBACK) | P(MQTT_PUBREC) | P(MQTT_PUBREL) | P(MQTT_PUBCOMP) |
		  P(MQTT_SUBACK) | P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) | P(MQTT_AUTH) },
	{ 0x21, MQTT_PT_U16, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	{ 0x22, MQTT_PT_U16, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	{ 0x23, MQTT_PT_U16, P(MQTT_PUBLISH) },
	{ 0x24, MQTT_PT_BYTE, P(MQTT_CONNACK) },
	{ 0x25, MQTT_PT_BYTE, P(MQTT_CONNACK) },
	{ 0x26, MQTT_PT_PAIR,
	  P(MQTT_CONNECT) | P(MQTT_CONNACK) | P(MQTT_PUBLISH) | P(MQTT_PUBACK) | P(MQTT_PUBREC) |
		  P(MQTT_PUBREL) | P(MQTT_PUBCOMP) | P(MQTT_SUBSCRIBE) | P(MQTT_SUBACK) |
		  P(MQTT_UNSUBSCRIBE) | P(MQTT_UNSUBACK) | P(MQTT_DISCONNECT) | P(MQTT_AUTH) |
		  WILL },
	{ 0x27, MQTT_PT_U32, P(MQTT_CONNECT) | P(MQTT_CONNACK) },
	{ 0x28, MQTT_PT_BYTE, P(MQTT_CONNACK) },
	{ 0x29, MQTT_PT_BYTE, P(MQTT_CONNACK) },
	{ 0x2A, MQTT_PT_BYTE, P(MQTT_CONNACK) },
};

static const struct spec_prop *find(unsigned id)
{
	for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
		if (spec[i].id == id)
			return &spec[i];
	return NULL;
}

static void test_table(void **state)
{
	(void)state;
	for (unsigned id = 0; id < 256; id++) {
		const struct spec_prop *sp = find(id);
		enum mqtt_prop_type want = sp ? sp->type : MQTT_PT_NONE;
		if (mqtt_prop_type_of((uint8_t)id) != want)
			fail_msg("type of 0x%02X: got %d want %d", id,
				 mqtt_prop_type_of((uint8_t)id), want);
		for (unsigned t = 0; t <= 16; t++) {
			bool in = sp && t <= 15 && (sp->where & P(t));
			if (mqtt_prop_allowed((uint8_t)id, (enum mqtt_type)t, false) != in)
				fail_msg("0x%02X in type %u: want %d", id, t, in);
			bool will = sp && t == MQTT_CONNECT && (sp->where & WILL);
			if (mqtt_prop_allowed((uint8_t)id, (enum mqtt_type)t, true) != will)
				fail_msg("0x%02X in will of type %u: want %d", id, t, will);
		}
	}
}

/* ---- iterator ---------------------------------------------------------- */

/* A CONNACK whose block has one entry of each wire type. */
static const uint8_t connack[] = {
	0x20, 32, 0x00, 0x00, 29,
	0x24, 0x01,                               /* byte */
	0x13, 0x01, 0x02,                         /* two-byte */
	0x11, 0x00, 0x01, 0x00, 0x02,             /* four-byte */
	0x12, 0x00, 0x02, 'i', 'd',               /* string */
	0x16, 0x00, 0x01, 0x00,                   /* binary (with method below) */
	0x15, 0x00, 0x01, 'm',
	0x26, 0x00, 0x01, 'k', 0x00, 0x00,        /* pair, empty value */
};

static void test_iterator(void **state)
{
	(void)state;
	struct mqtt_packet p;
	struct mqtt_fault f;
	assert_int_equal(mqtt_decode(connack, sizeof connack, MQTT_V5, false, &p, &f), MOTE_OK);
	struct mqtt_prop_iter it;
	struct mqtt_prop v;
	mqtt_prop_iter_init(&it, &p.u.connack.props);

	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.id, 0x24);
	assert_int_equal(v.type, MQTT_PT_BYTE);
	assert_int_equal(v.u32, 1);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.id, 0x13);
	assert_int_equal(v.u32, 0x0102);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.id, 0x11);
	assert_int_equal(v.type, MQTT_PT_U32);
	assert_int_equal(v.u32, 0x00010002);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.type, MQTT_PT_STRING);
	assert_int_equal(v.str.len, 2);
	assert_memory_equal(v.str.p, "id", 2);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.type, MQTT_PT_BINARY);
	assert_int_equal(v.bin.len, 1);
	assert_int_equal(v.bin.p[0], 0);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.id, 0x15);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_int_equal(v.type, MQTT_PT_PAIR);
	assert_int_equal(v.str.len, 1);
	assert_int_equal(v.str2.len, 0);
	assert_false(mqtt_prop_iter_next(&it, &v));
	assert_false(mqtt_prop_iter_next(&it, &v));

	/* an empty or encoder-built set walks nothing */
	struct mqtt_props none = { 0 };
	mqtt_prop_iter_init(&it, &none);
	assert_false(mqtt_prop_iter_next(&it, &v));

	/* a block the decoder never saw stops at the first bad entry */
	static const uint8_t junk[] = { 0x24, 0x01, 0x12, 0x00, 0x09, 'x' };
	struct mqtt_props raw = { .raw = { junk, sizeof junk } };
	mqtt_prop_iter_init(&it, &raw);
	assert_true(mqtt_prop_iter_next(&it, &v));
	assert_false(mqtt_prop_iter_next(&it, &v));
	assert_false(mqtt_prop_iter_next(&it, &v));
}

/* ---- user properties --------------------------------------------------- */

static void test_user_props(void **state)
{
	(void)state;
	const struct mqtt_user_prop pairs[] = {
		{ { (const uint8_t *)"a", 1 }, { (const uint8_t *)"bc", 2 } },
		{ { (const uint8_t *)"", 0 }, { (const uint8_t *)"d", 1 } },
	};
	static const uint8_t want[] = { 0x26, 0, 1, 'a', 0, 2, 'b', 'c', 0x26, 0, 0, 0, 1, 'd' };
	uint8_t buf[64];
	size_t n = 0;
	assert_int_equal(mqtt_user_props_encode(pairs, 2, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(n, sizeof want);
	assert_memory_equal(buf, want, n);
	memset(buf, 0x55, sizeof buf);
	assert_int_equal(mqtt_user_props_encode(pairs, 2, buf, sizeof want - 1, &n), MOTE_ENOSPC);
	assert_int_equal(n, sizeof want); /* what it would need */
	assert_int_equal(buf[0], 0x55);   /* nothing written */
	assert_int_equal(mqtt_user_props_encode(pairs, 0, NULL, 0, &n), MOTE_OK);
	assert_int_equal(n, 0);
	const struct mqtt_user_prop bad = { { NULL, 3 }, { NULL, 0 } };
	assert_int_equal(mqtt_user_props_encode(&bad, 1, buf, sizeof buf, &n), MOTE_EINVAL);

	/* copy_user takes exactly the user entries of a decoded block */
	struct mqtt_packet p;
	static const uint8_t pub2[] = {
		0x30, 24, 0x00, 0x01, 't', 19,
		0x26, 0, 1, 'a', 0, 2, 'b', 'c',
		0x01, 0x00,
		0x26, 0, 0, 0, 1, 'd',
		0x23, 0x00, 0x02,
		'X',
	};
	assert_int_equal(mqtt_decode(pub2, sizeof pub2, MQTT_V5, true, &p, NULL), MOTE_OK);
	assert_int_equal(p.u.publish.props.user_count, 2);
	assert_int_equal(p.u.publish.props.topic_alias, 2);
	assert_int_equal(p.u.publish.payload.len, 1);
	memset(buf, 0, sizeof buf);
	assert_int_equal(mqtt_props_copy_user(&p.u.publish.props, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(n, sizeof want);
	assert_memory_equal(buf, want, n);
	assert_int_equal(mqtt_props_copy_user(&p.u.publish.props, buf, 5, &n), MOTE_ENOSPC);
	assert_int_equal(n, sizeof want);
	struct mqtt_props none = { 0 };
	assert_int_equal(mqtt_props_copy_user(&none, NULL, 0, &n), MOTE_OK);
	assert_int_equal(n, 0);
}

/* ---- encoder refusals -------------------------------------------------- */

static enum mote_err enc_props(uint8_t type, const struct mqtt_props *pr)
{
	uint8_t buf[256];
	size_t n;
	struct mqtt_packet p = { .type = (enum mqtt_type)type };
	static const struct mqtt_sub_entry e = { { (const uint8_t *)"a", 1 }, { 0 } };
	static const struct mqtt_str f = { (const uint8_t *)"a", 1 };
	static const uint8_t r = 0;
	switch (type) {
	case MQTT_PUBLISH:
		p.u.publish.topic = f;
		p.u.publish.props = *pr;
		break;
	case MQTT_SUBSCRIBE:
		p.u.subscribe = (struct mqtt_subscribe){ .packet_id = 1, .props = *pr, .count = 1,
							 .entries = &e };
		break;
	case MQTT_UNSUBSCRIBE:
		p.u.unsubscribe = (struct mqtt_unsubscribe){ .packet_id = 1, .props = *pr,
							     .count = 1, .filters = &f };
		break;
	case MQTT_SUBACK:
		p.u.suback = (struct mqtt_suback){ .packet_id = 1, .props = *pr, .count = 1,
						   .reasons = &r };
		break;
	case MQTT_PUBACK:
		p.u.ack = (struct mqtt_ack){ .packet_id = 1, .props = *pr };
		break;
	case MQTT_CONNECT:
		p.u.connect.props = *pr;
		break;
	case MQTT_CONNACK:
		p.u.connack.props = *pr;
		break;
	default:
		p.u.disconnect.props = *pr;
		break;
	}
	enum mote_err err = mqtt_encode(&p, MQTT_V5, buf, sizeof buf, &n);
	size_t size;
	assert_int_equal(mqtt_encoded_size(&p, MQTT_V5, &size), err);
	if (err == MOTE_OK) {
		/* and whatever it wrote, the decoder takes */
		struct mqtt_packet d;
		struct mqtt_fault fault = { 0, NULL };
		bool from_client = type != MQTT_CONNACK && type != MQTT_SUBACK &&
				   type != MQTT_PUBLISH;
		if (mqtt_decode(buf, n, MQTT_V5, from_client, &d, &fault) != MOTE_OK)
			fail_msg("encoder wrote what the decoder refuses: %s", fault.why);
	}
	return err;
}

static void test_encoder_refusals(void **state)
{
	(void)state;
	struct mqtt_props pr;
	static const uint32_t two[] = { 1, 2 }, zero = 0, big = MQTT_MAX_SUB_ID + 1;

#define TRY(type, setup, want)                                                             \
	do {                                                                               \
		pr = (struct mqtt_props){ 0 };                                             \
		setup;                                                                     \
		assert_int_equal(enc_props((type), &pr), (want));                          \
	} while (0)

	TRY(MQTT_PUBLISH, (void)0, MOTE_OK);
	/* not allowed in the packet */
	TRY(MQTT_PUBLISH, MQTT_SET(&pr, MQTT_PROP_SESSION_EXPIRY), MOTE_EINVAL);
	TRY(MQTT_CONNECT, MQTT_SET(&pr, MQTT_PROP_WILL_DELAY), MOTE_EINVAL);
	TRY(MQTT_PUBACK, (pr.topic_alias = 1, MQTT_SET(&pr, MQTT_PROP_TOPIC_ALIAS)), MOTE_EINVAL);
	TRY(MQTT_DISCONNECT, (pr.max_qos = 1, MQTT_SET(&pr, MQTT_PROP_MAX_QOS)), MOTE_EINVAL);
	/* no such property */
	TRY(MQTT_PUBLISH, pr.present = 1ull << 4, MOTE_EINVAL);
	TRY(MQTT_PUBLISH, pr.present = 1ull, MOTE_EINVAL);
	TRY(MQTT_PUBLISH, pr.present = 1ull << 63, MOTE_EINVAL);
	/* values out of range */
	TRY(MQTT_PUBLISH, (pr.payload_format = 2, MQTT_SET(&pr, MQTT_PROP_PAYLOAD_FORMAT)),
	    MOTE_EINVAL);
	TRY(MQTT_PUBLISH, (pr.payload_format = 1, MQTT_SET(&pr, MQTT_PROP_PAYLOAD_FORMAT)),
	    MOTE_OK);
	TRY(MQTT_PUBLISH, MQTT_SET(&pr, MQTT_PROP_TOPIC_ALIAS), MOTE_EINVAL); /* alias 0 */
	TRY(MQTT_CONNECT, MQTT_SET(&pr, MQTT_PROP_RECEIVE_MAX), MOTE_EINVAL);
	TRY(MQTT_CONNECT, MQTT_SET(&pr, MQTT_PROP_MAX_PACKET_SIZE), MOTE_EINVAL);
	TRY(MQTT_CONNECT, (pr.request_problem_info = 2, MQTT_SET(&pr, MQTT_PROP_REQUEST_PROBLEM_INFO)),
	    MOTE_EINVAL);
	TRY(MQTT_CONNACK, (pr.max_qos = 2, MQTT_SET(&pr, MQTT_PROP_MAX_QOS)), MOTE_EINVAL);
	TRY(MQTT_CONNACK, (pr.shared_sub_available = 7, MQTT_SET(&pr, MQTT_PROP_SHARED_SUB_AVAILABLE)),
	    MOTE_EINVAL);
	TRY(MQTT_CONNACK, MQTT_SET(&pr, MQTT_PROP_TOPIC_ALIAS_MAX), MOTE_OK); /* 0 is fine */
	/* authentication data needs a method */
	TRY(MQTT_CONNECT, MQTT_SET(&pr, MQTT_PROP_AUTH_DATA), MOTE_EINVAL);
	TRY(MQTT_CONNECT,
	    (MQTT_SET(&pr, MQTT_PROP_AUTH_DATA), MQTT_SET(&pr, MQTT_PROP_AUTH_METHOD)), MOTE_OK);
	/* binary over 65535 bytes, a view without bytes */
	TRY(MQTT_PUBLISH,
	    (pr.correlation_data = (struct mqtt_bin){ (const uint8_t *)"x", 65536 },
	     MQTT_SET(&pr, MQTT_PROP_CORRELATION_DATA)),
	    MOTE_EINVAL);
	TRY(MQTT_PUBLISH,
	    (pr.content_type = (struct mqtt_str){ NULL, 2 }, MQTT_SET(&pr, MQTT_PROP_CONTENT_TYPE)),
	    MOTE_EINVAL);
	TRY(MQTT_PUBLISH, (pr.raw_extra.p = NULL, pr.raw_extra.len = 3), MOTE_EINVAL);
	/* subscription identifiers */
	TRY(MQTT_PUBLISH, (pr.sub_ids = two, pr.sub_id_count = 2), MOTE_OK);
	TRY(MQTT_SUBSCRIBE, (pr.sub_ids = two, pr.sub_id_count = 2), MOTE_EINVAL);
	TRY(MQTT_SUBSCRIBE, (pr.sub_ids = two, pr.sub_id_count = 1), MOTE_OK);
	TRY(MQTT_SUBSCRIBE, (pr.sub_ids = &zero, pr.sub_id_count = 1), MOTE_EINVAL);
	TRY(MQTT_SUBSCRIBE, (pr.sub_ids = &big, pr.sub_id_count = 1), MOTE_EINVAL);
	TRY(MQTT_SUBSCRIBE, (pr.sub_ids = NULL, pr.sub_id_count = 1), MOTE_EINVAL);
	TRY(MQTT_CONNECT, (pr.sub_ids = two, pr.sub_id_count = 1), MOTE_EINVAL);
	TRY(MQTT_UNSUBSCRIBE, (pr.sub_id = 3, MQTT_SET(&pr, MQTT_PROP_SUBSCRIPTION_ID)),
	    MOTE_EINVAL);
	TRY(MQTT_SUBSCRIBE, MQTT_SET(&pr, MQTT_PROP_SUBSCRIPTION_ID), MOTE_EINVAL); /* id 0 */
	/* user property bit alone writes nothing and is fine */
	TRY(MQTT_SUBACK, MQTT_SET(&pr, MQTT_PROP_USER_PROPERTY), MOTE_OK);
#undef TRY
}

/* Properties are a 5.0 thing: 3.1.1 encodes as if there were none. */
static void test_v311_ignores_props(void **state)
{
	(void)state;
	uint8_t a[64], b[64];
	size_t na, nb;
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.topic = (struct mqtt_str){ (const uint8_t *)"t", 1 };
	assert_int_equal(mqtt_encode(&p, MQTT_V311, a, sizeof a, &na), MOTE_OK);
	p.u.publish.props.message_expiry = 9;
	MQTT_SET(&p.u.publish.props, MQTT_PROP_MESSAGE_EXPIRY);
	MQTT_SET(&p.u.publish.props, MQTT_PROP_SESSION_EXPIRY); /* even a bad one */
	assert_int_equal(mqtt_encode(&p, MQTT_V311, b, sizeof b, &nb), MOTE_OK);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_iterator),
		cmocka_unit_test(test_user_props),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_v311_ignores_props),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
