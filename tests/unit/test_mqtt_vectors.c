/*
 * test_mqtt_vectors.c - byte vectors written by hand from the examples in
 * the MQTT 3.1.1 and 5.0 specifications (and packets assembled from their
 * field layouts where the spec shows only a part): decoding them gives the
 * fields the spec describes, and encoding those fields gives the same
 * bytes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define V4 MQTT_V311
#define V5 MQTT_V5

static struct mqtt_str S(const char *s)
{
	return (struct mqtt_str){ (const uint8_t *)s, (uint16_t)strlen(s) };
}

static void str_is(struct mqtt_str s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void bin_is(struct mqtt_bin b, const char *want)
{
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
}

static void decode_ok(const uint8_t *b, size_t n, uint8_t v, bool from_client,
		      struct mqtt_packet *p)
{
	struct mqtt_fault f = { 0, NULL };
	struct mqtt_frame fr;
	assert_int_equal(mqtt_frame_parse(b, n, 0, &fr, &f), MOTE_OK);
	assert_int_equal(fr.total_len, n);
	if (mqtt_decode(b, n, v, from_client, p, &f) != MOTE_OK)
		fail_msg("decode refused a spec vector: %s", f.why);
}

static void encodes_to(const struct mqtt_packet *p, uint8_t v, const uint8_t *want, size_t n)
{
	uint8_t buf[512];
	size_t len = 0, size = 0;
	assert_int_equal(mqtt_encode(p, v, buf, sizeof buf, &len), MOTE_OK);
	assert_int_equal(mqtt_encoded_size(p, v, &size), MOTE_OK);
	assert_int_equal(len, n);
	assert_int_equal(size, n);
	assert_memory_equal(buf, want, n);
}

/*
 * 3.1.1 section 3.1.2.10, "Variable header non normative example":
 * protocol name "MQTT", level 4, flags 0xCE (user name, password, will
 * QoS 1, will, clean session), keep alive 10; with the payload fields in
 * the order of section 3.1.3.
 */
static const uint8_t connect4[] = {
	0x10, 34,                                  /* CONNECT, remaining length */
	0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xCE, 0x00, 0x0A, /* the example */
	0x00, 0x03, 'c', 'i', 'd',                 /* client id */
	0x00, 0x03, 'w', '/', 't',                 /* will topic */
	0x00, 0x02, 'h', 'i',                      /* will message */
	0x00, 0x04, 'u', 's', 'e', 'r',            /* user name */
	0x00, 0x02, 'p', 'w',                      /* password */
};

/*
 * 5.0 section 3.1.2.12, "Variable Header example": as above with level 5
 * and properties: length 5, Session Expiry Interval (17) = 10.
 */
static const uint8_t connect5[] = {
	0x10, 41,
	0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xCE, 0x00, 0x0A,
	0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,        /* properties */
	0x00, 0x03, 'c', 'i', 'd',
	0x00,                                      /* will properties: none */
	0x00, 0x03, 'w', '/', 't',
	0x00, 0x02, 'h', 'i',
	0x00, 0x04, 'u', 's', 'e', 'r',
	0x00, 0x02, 'p', 'w',
};

static void connect_fields(struct mqtt_packet *p, uint8_t v)
{
	*p = (struct mqtt_packet){ .type = MQTT_CONNECT };
	struct mqtt_connect *c = &p->u.connect;
	c->clean_start = true;
	c->will = true;
	c->will_qos = 1;
	c->has_username = true;
	c->has_password = true;
	c->keep_alive = 10;
	c->client_id = S("cid");
	c->will_topic = S("w/t");
	c->will_payload = (struct mqtt_bin){ (const uint8_t *)"hi", 2 };
	c->username = S("user");
	c->password = (struct mqtt_bin){ (const uint8_t *)"pw", 2 };
	if (v == V5) {
		c->props.session_expiry = 10;
		MQTT_SET(&c->props, MQTT_PROP_SESSION_EXPIRY);
	}
}

static void test_connect_examples(void **state)
{
	(void)state;
	struct mqtt_packet p, want;
	for (uint8_t v = V4; v <= V5; v++) {
		const uint8_t *b = v == V4 ? connect4 : connect5;
		size_t n = v == V4 ? sizeof connect4 : sizeof connect5;
		decode_ok(b, n, v, true, &p);
		const struct mqtt_connect *c = &p.u.connect;
		assert_int_equal(p.type, MQTT_CONNECT);
		assert_int_equal(c->version, v);
		assert_true(c->clean_start && c->will && c->has_username && c->has_password);
		assert_false(c->will_retain);
		assert_int_equal(c->will_qos, 1);
		assert_int_equal(c->keep_alive, 10);
		str_is(c->client_id, "cid");
		str_is(c->will_topic, "w/t");
		bin_is(c->will_payload, "hi");
		str_is(c->username, "user");
		bin_is(c->password, "pw");
		if (v == V5) {
			assert_int_equal(c->props.present, 1ull << MQTT_PROP_SESSION_EXPIRY);
			assert_int_equal(c->props.session_expiry, 10);
			assert_int_equal(c->props.raw.len, 5);
			assert_int_equal(c->will_props.present, 0);
		}
		connect_fields(&want, v);
		encodes_to(&want, v, b, n);
	}
}

/*
 * 3.1.1 section 3.3.2.3 / 5.0 section 3.3.2.3: PUBLISH variable header
 * example, Topic Name "a/b", Packet Identifier 10 (5.0 adds property
 * length 0); QoS 1, payload "hello".
 */
static const uint8_t publish4[] = { 0x32, 12, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A,
				    'h', 'e', 'l', 'l', 'o' };
static const uint8_t publish5[] = { 0x32, 13, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 0x00,
				    'h', 'e', 'l', 'l', 'o' };

static void test_publish_example(void **state)
{
	(void)state;
	struct mqtt_packet p;
	for (uint8_t v = V4; v <= V5; v++) {
		const uint8_t *b = v == V4 ? publish4 : publish5;
		size_t n = v == V4 ? sizeof publish4 : sizeof publish5;
		decode_ok(b, n, v, true, &p);
		assert_int_equal(p.type, MQTT_PUBLISH);
		assert_int_equal(p.u.publish.qos, 1);
		assert_false(p.u.publish.dup);
		assert_false(p.u.publish.retain);
		str_is(p.u.publish.topic, "a/b");
		assert_int_equal(p.u.publish.packet_id, 10);
		bin_is(p.u.publish.payload, "hello");
		assert_int_equal(p.u.publish.props.present, 0);

		struct mqtt_packet want = { .type = MQTT_PUBLISH };
		want.u.publish.qos = 1;
		want.u.publish.topic = S("a/b");
		want.u.publish.packet_id = 10;
		want.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)"hello", 5 };
		encodes_to(&want, v, b, n);

		/* the head alone: everything but the payload, same length field */
		uint8_t head[32];
		size_t hn;
		want.u.publish.payload.p = NULL;
		assert_int_equal(mqtt_encode_publish_head(&want.u.publish, v, head, sizeof head, &hn),
				 MOTE_OK);
		assert_int_equal(hn, n - 5);
		assert_memory_equal(head, b, hn);
	}
}

/*
 * 5.0 PUBLISH with properties, laid out per section 3.3.2.3: the encoder
 * writes them in ascending identifier order, user properties last.
 */
static const uint8_t publish5_props[] = {
	0x3B, 33,                                    /* DUP, QoS 1, RETAIN */
	0x00, 0x03, 'a', '/', 'b', 0x12, 0x34,       /* topic, packet id */
	24,                                          /* property length */
	0x01, 0x01,                                  /* payload format: UTF-8 */
	0x02, 0x00, 0x00, 0x00, 0x3C,                /* message expiry 60 */
	0x03, 0x00, 0x04, 't', 'e', 'x', 't',        /* content type */
	0x23, 0x00, 0x05,                            /* topic alias 5 */
	0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',      /* user property k=v */
	'p',                                         /* payload */
};

static void test_publish_properties(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_ok(publish5_props, sizeof publish5_props, V5, true, &p);
	const struct mqtt_props *pr = &p.u.publish.props;
	assert_true(p.u.publish.dup && p.u.publish.retain);
	assert_int_equal(p.u.publish.packet_id, 0x1234);
	assert_int_equal(pr->present, (1ull << 0x01) | (1ull << 0x02) | (1ull << 0x03) |
					      (1ull << 0x23) | (1ull << 0x26));
	assert_int_equal(pr->payload_format, 1);
	assert_int_equal(pr->message_expiry, 60);
	str_is(pr->content_type, "text");
	assert_int_equal(pr->topic_alias, 5);
	assert_int_equal(pr->user_count, 1);
	str_is(pr->user_first.key, "k");
	str_is(pr->user_first.val, "v");
	assert_ptr_equal(pr->raw.p, publish5_props + 10);
	assert_int_equal(pr->raw.len, 24);
	bin_is(p.u.publish.payload, "p");

	struct mqtt_packet want = { .type = MQTT_PUBLISH };
	struct mqtt_publish *w = &want.u.publish;
	w->dup = w->retain = true;
	w->qos = 1;
	w->packet_id = 0x1234;
	w->topic = S("a/b");
	w->payload = (struct mqtt_bin){ (const uint8_t *)"p", 1 };
	/* fields set in a different order than the wire: the encoder sorts */
	w->props.topic_alias = 5;
	MQTT_SET(&w->props, MQTT_PROP_TOPIC_ALIAS);
	w->props.content_type = S("text");
	MQTT_SET(&w->props, MQTT_PROP_CONTENT_TYPE);
	w->props.message_expiry = 60;
	MQTT_SET(&w->props, MQTT_PROP_MESSAGE_EXPIRY);
	w->props.payload_format = 1;
	MQTT_SET(&w->props, MQTT_PROP_PAYLOAD_FORMAT);
	w->props.raw_extra = (struct mqtt_bin){ publish5_props + 27, 7 };
	encodes_to(&want, V5, publish5_props, sizeof publish5_props);
}

/*
 * 3.1.1 section 3.8.2 (Packet Identifier 10) and 3.8.3 payload example:
 * "a/b" QoS 1, "c/d" QoS 2. 5.0 section 3.8.3 has the same payload with
 * options bytes, after a property length 0.
 */
static const uint8_t subscribe4[] = { 0x82, 14, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01,
				      0x00, 0x03, 'c', '/', 'd', 0x02 };
static const uint8_t subscribe5[] = { 0x82, 15, 0x00, 0x0A, 0x00, 0x00, 0x03, 'a', '/', 'b',
				      0x01, 0x00, 0x03, 'c', '/', 'd', 0x02 };

static void test_subscribe_example(void **state)
{
	(void)state;
	const struct mqtt_sub_entry entries[] = { { S("a/b"), { .qos = 1 } },
						  { S("c/d"), { .qos = 2 } } };
	for (uint8_t v = V4; v <= V5; v++) {
		const uint8_t *b = v == V4 ? subscribe4 : subscribe5;
		size_t n = v == V4 ? sizeof subscribe4 : sizeof subscribe5;
		struct mqtt_packet p;
		decode_ok(b, n, v, true, &p);
		assert_int_equal(p.u.subscribe.packet_id, 10);
		assert_int_equal(p.u.subscribe.count, 2);
		struct mqtt_topic_iter it;
		struct mqtt_sub_entry e;
		mqtt_subscribe_iter(&it, &p.u.subscribe);
		assert_true(mqtt_topics_next(&it, &e));
		str_is(e.filter, "a/b");
		assert_int_equal(e.opts.qos, 1);
		assert_true(mqtt_topics_next(&it, &e));
		str_is(e.filter, "c/d");
		assert_int_equal(e.opts.qos, 2);
		assert_false(e.opts.no_local || e.opts.retain_as_published);
		assert_int_equal(e.opts.retain_handling, 0);
		assert_false(mqtt_topics_next(&it, &e));

		struct mqtt_packet want = { .type = MQTT_SUBSCRIBE };
		want.u.subscribe.packet_id = 10;
		want.u.subscribe.entries = entries;
		want.u.subscribe.count = 2;
		encodes_to(&want, v, b, n);
	}
}

/* 3.1.1 section 3.9.3 example: granted QoS 0, 1, 2 and Failure (0x80). */
static const uint8_t suback4[] = { 0x90, 6, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80 };

static void test_suback_example(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_ok(suback4, sizeof suback4, V4, false, &p);
	assert_int_equal(p.u.suback.packet_id, 10);
	assert_int_equal(p.u.suback.count, 4);
	assert_memory_equal(p.u.suback.reasons, suback4 + 4, 4);
	struct mqtt_packet want = { .type = MQTT_SUBACK };
	want.u.suback.packet_id = 10;
	want.u.suback.count = 4;
	want.u.suback.reasons = (const uint8_t[]){ 0x00, 0x01, 0x02, 0x80 };
	encodes_to(&want, V4, suback4, sizeof suback4);
}

/* 3.1.1 section 3.10.3 payload example: "a/b", "c/d". */
static const uint8_t unsubscribe4[] = { 0xA2, 12, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b',
					0x00, 0x03, 'c', '/', 'd' };

static void test_unsubscribe_example(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_ok(unsubscribe4, sizeof unsubscribe4, V4, true, &p);
	assert_int_equal(p.u.unsubscribe.count, 2);
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	mqtt_unsubscribe_iter(&it, &p.u.unsubscribe);
	assert_true(mqtt_topics_next(&it, &e));
	str_is(e.filter, "a/b");
	assert_true(mqtt_topics_next(&it, &e));
	str_is(e.filter, "c/d");
	assert_false(mqtt_topics_next(&it, &e));
	const struct mqtt_str filters[] = { S("a/b"), S("c/d") };
	struct mqtt_packet want = { .type = MQTT_UNSUBSCRIBE };
	want.u.unsubscribe.packet_id = 10;
	want.u.unsubscribe.filters = filters;
	want.u.unsubscribe.count = 2;
	encodes_to(&want, V4, unsubscribe4, sizeof unsubscribe4);
}

/*
 * 5.0 section 1.5.4 UTF-8 example: "A" + U+2A6D4 is 0x00 0x05 0x41 0xF0
 * 0xAA 0x9B 0x94; here as a topic name.
 */
static const uint8_t utf8_publish[] = { 0x30, 9, 0x00, 0x05, 0x41, 0xF0, 0xAA, 0x9B, 0x94,
					'x', 'y' };

static void test_utf8_example(void **state)
{
	(void)state;
	struct mqtt_packet p;
	decode_ok(utf8_publish, sizeof utf8_publish, V4, true, &p);
	assert_int_equal(p.u.publish.topic.len, 5);
	assert_memory_equal(p.u.publish.topic.p, "\x41\xF0\xAA\x9B\x94", 5);
	struct mqtt_packet want = { .type = MQTT_PUBLISH };
	want.u.publish.topic = S("A\xF0\xAA\x9B\x94");
	want.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)"xy", 2 };
	encodes_to(&want, V4, utf8_publish, sizeof utf8_publish);
}

/* Fixed-header-only and two-byte packets, 3.1.1 sections 3.2 - 3.14. */
static void test_small_packets(void **state)
{
	(void)state;
	static const struct {
		uint8_t bytes[6];
		size_t n;
		uint8_t v;
		bool from_client;
		struct mqtt_packet pkt;
	} cases[] = {
		{ { 0x20, 0x02, 0x00, 0x00 }, 4, V4, false, { .type = MQTT_CONNACK } },
		{ { 0x20, 0x02, 0x01, 0x00 }, 4, V4, false,
		  { .type = MQTT_CONNACK, .u.connack = { .session_present = true } } },
		{ { 0x20, 0x02, 0x00, 0x04 }, 4, V4, false,
		  { .type = MQTT_CONNACK, .u.connack = { .reason = 4 } } },
		{ { 0x20, 0x03, 0x01, 0x00, 0x00 }, 5, V5, false,
		  { .type = MQTT_CONNACK, .u.connack = { .session_present = true } } },
		{ { 0x40, 0x02, 0x00, 0x0A }, 4, V4, true,
		  { .type = MQTT_PUBACK, .u.ack = { .packet_id = 10 } } },
		{ { 0x50, 0x02, 0x00, 0x0A }, 4, V5, false,
		  { .type = MQTT_PUBREC, .u.ack = { .packet_id = 10 } } },
		{ { 0x62, 0x02, 0x00, 0x0A }, 4, V4, true,
		  { .type = MQTT_PUBREL, .u.ack = { .packet_id = 10 } } },
		{ { 0x70, 0x03, 0x00, 0x0A, 0x92 }, 5, V5, false,
		  { .type = MQTT_PUBCOMP, .u.ack = { .packet_id = 10, .reason = 0x92 } } },
		{ { 0xB0, 0x02, 0x00, 0x0A }, 4, V4, false,
		  { .type = MQTT_UNSUBACK, .u.suback = { .packet_id = 10 } } },
		{ { 0xC0, 0x00 }, 2, V4, true, { .type = MQTT_PINGREQ } },
		{ { 0xD0, 0x00 }, 2, V4, false, { .type = MQTT_PINGRESP } },
		{ { 0xE0, 0x00 }, 2, V4, true, { .type = MQTT_DISCONNECT } },
		{ { 0xE0, 0x01, 0x8E }, 3, V5, false,
		  { .type = MQTT_DISCONNECT, .u.disconnect = { .reason = 0x8E } } },
		{ { 0xF0, 0x00 }, 2, V5, true, { .type = MQTT_AUTH } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mqtt_packet p;
		decode_ok(cases[i].bytes, cases[i].n, cases[i].v, cases[i].from_client, &p);
		assert_int_equal(p.type, cases[i].pkt.type);
		encodes_to(&cases[i].pkt, cases[i].v, cases[i].bytes, cases[i].n);
	}
}

/* Remaining length past one byte: 200 bytes of payload -> 203 = CB 01. */
static void test_two_byte_length(void **state)
{
	(void)state;
	uint8_t buf[256], payload[200];
	memset(payload, 'z', sizeof payload);
	struct mqtt_packet want = { .type = MQTT_PUBLISH };
	want.u.publish.topic = S("t");
	want.u.publish.payload = (struct mqtt_bin){ payload, sizeof payload };
	size_t n;
	assert_int_equal(mqtt_encode(&want, V4, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(n, 206);
	static const uint8_t head[] = { 0x30, 0xCB, 0x01, 0x00, 0x01, 't' };
	assert_memory_equal(buf, head, sizeof head);
	struct mqtt_packet p;
	decode_ok(buf, n, V4, true, &p);
	assert_int_equal(p.u.publish.payload.len, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_examples),
		cmocka_unit_test(test_publish_example),
		cmocka_unit_test(test_publish_properties),
		cmocka_unit_test(test_subscribe_example),
		cmocka_unit_test(test_suback_example),
		cmocka_unit_test(test_unsubscribe_example),
		cmocka_unit_test(test_utf8_example),
		cmocka_unit_test(test_small_packets),
		cmocka_unit_test(test_two_byte_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
