/*
 * test_mqtt_encode.c - the encoder's contract beyond round trips: what it
 * refuses (MOTE_EINVAL: not representable, or something the decoder would
 * refuse), MOTE_ENOSPC for every too-small buffer, the short forms, the
 * 3.1.1 downgrades, and mqtt_encode_publish_head / mqtt_encoded_size
 * agreeing with mqtt_encode across remaining-length boundaries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define V4 MQTT_V311
#define V5 MQTT_V5

static struct mqtt_str S(const char *s)
{
	return (struct mqtt_str){ (const uint8_t *)s, (uint16_t)strlen(s) };
}

static enum mote_err enc(const struct mqtt_packet *p, uint8_t v)
{
	uint8_t buf[256];
	size_t n, size;
	enum mote_err err = mqtt_encode(p, v, buf, sizeof buf, &n);
	/* size and encode always agree on refusing */
	enum mote_err serr = mqtt_encoded_size(p, v, &size);
	assert_int_equal(serr, err);
	if (err == MOTE_OK)
		assert_int_equal(size, n);
	return err;
}

static void test_refusals(void **state)
{
	(void)state;
	static const struct mqtt_sub_entry e_ok = { { (const uint8_t *)"a", 1 }, { .qos = 1 } };
	static const struct mqtt_sub_entry e_q3 = { { (const uint8_t *)"a", 1 }, { .qos = 3 } };
	static const struct mqtt_sub_entry e_rh3 = { { (const uint8_t *)"a", 1 },
						     { .retain_handling = 3 } };
	static const struct mqtt_sub_entry e_null = { { NULL, 1 }, { 0 } };
	static const struct mqtt_str f = { (const uint8_t *)"a", 1 };
	static const uint8_t r0 = 0, r_bad = 0x03;
	struct mqtt_packet p;

	/* types and versions */
	p = (struct mqtt_packet){ .type = (enum mqtt_type)0 };
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	p.type = (enum mqtt_type)16;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	p.type = MQTT_PINGREQ;
	assert_int_equal(enc(&p, 3), MOTE_EINVAL);
	assert_int_equal(enc(&p, 6), MOTE_EINVAL);
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.type = MQTT_AUTH;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	assert_int_equal(enc(&p, V5), MOTE_OK);

	/* PUBLISH */
	p = (struct mqtt_packet){ .type = MQTT_PUBLISH };
	p.u.publish.topic = S("t");
	p.u.publish.qos = 3;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	p.u.publish.qos = 1;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* packet id 0 */
	p.u.publish.packet_id = 1;
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.u.publish.qos = 0;
	p.u.publish.dup = true;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* [MQTT-3.3.1-2] */
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.u.publish.dup = false;
	p.u.publish.topic = S("");
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* no alias */
	p.u.publish.props.topic_alias = 1;
	MQTT_SET(&p.u.publish.props, MQTT_PROP_TOPIC_ALIAS);
	assert_int_equal(enc(&p, V5), MOTE_OK);
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* 3.1.1 has no aliases */
	p.u.publish.topic = (struct mqtt_str){ NULL, 1 };
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	p.u.publish.topic = S("t");
	p.u.publish.payload = (struct mqtt_bin){ NULL, 1 };
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);

	/* acks */
	p = (struct mqtt_packet){ .type = MQTT_PUBACK };
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* packet id 0 */
	p.u.ack.packet_id = 1;
	p.u.ack.reason = 0x92;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* not a PUBACK code */
	assert_int_equal(enc(&p, V4), MOTE_OK);     /* 3.1.1 does not write it */
	p.type = MQTT_PUBREL;
	assert_int_equal(enc(&p, V5), MOTE_OK);

	/* SUBSCRIBE / UNSUBSCRIBE */
	p = (struct mqtt_packet){ .type = MQTT_SUBSCRIBE };
	p.u.subscribe.packet_id = 1;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* no entries */
	p.u.subscribe.count = 1;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* entries NULL */
	p.u.subscribe.entries = &e_ok;
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.u.subscribe.packet_id = 0;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	p.u.subscribe.packet_id = 1;
	p.u.subscribe.entries = &e_q3;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	p.u.subscribe.entries = &e_rh3;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	assert_int_equal(enc(&p, V4), MOTE_OK); /* 3.1.1 has no retain handling */
	p.u.subscribe.entries = &e_null;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);

	p = (struct mqtt_packet){ .type = MQTT_UNSUBSCRIBE };
	p.u.unsubscribe.packet_id = 1;
	p.u.unsubscribe.filters = &f;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* count 0 */
	p.u.unsubscribe.count = 1;
	assert_int_equal(enc(&p, V5), MOTE_OK);
	p.u.unsubscribe.filters = NULL;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);

	/* SUBACK / UNSUBACK */
	p = (struct mqtt_packet){ .type = MQTT_SUBACK };
	p.u.suback.packet_id = 1;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* no reasons */
	p.u.suback.reasons = &r_bad;
	p.u.suback.count = 1;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	p.u.suback.reasons = &r0;
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.type = MQTT_UNSUBACK;
	p.u.suback.count = 0;
	assert_int_equal(enc(&p, V4), MOTE_OK); /* 3.1.1: no reasons at all */
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);

	/* CONNECT / CONNACK */
	p = (struct mqtt_packet){ .type = MQTT_CONNECT };
	p.u.connect.will = true;
	p.u.connect.will_qos = 3;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	p.u.connect.will_qos = 2;
	assert_int_equal(enc(&p, V4), MOTE_OK);
	p.u.connect.will_payload = (struct mqtt_bin){ (const uint8_t *)"x", 65536 };
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	p.u.connect.will_payload = (struct mqtt_bin){ NULL, 0 };
	p.u.connect.has_password = true;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL); /* 3.1.1 password needs a user name */
	assert_int_equal(enc(&p, V5), MOTE_OK);
	p.u.connect.password = (struct mqtt_bin){ NULL, 2 };
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);

	p = (struct mqtt_packet){ .type = MQTT_CONNACK };
	p.u.connack.reason = 6;
	assert_int_equal(enc(&p, V4), MOTE_EINVAL);
	p.u.connack.reason = 5;
	assert_int_equal(enc(&p, V4), MOTE_OK);
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* 5 is not a 5.0 code */
	p.u.connack.reason = MQTT_RC_NOT_AUTHORIZED;
	assert_int_equal(enc(&p, V5), MOTE_OK);
	p.u.connack.session_present = true;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL); /* [MQTT-3.2.2-6] */

	/* DISCONNECT / AUTH reasons */
	p = (struct mqtt_packet){ .type = MQTT_DISCONNECT };
	p.u.disconnect.reason = 0x01;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
	assert_int_equal(enc(&p, V4), MOTE_OK); /* 3.1.1 DISCONNECT is empty */
	p.type = MQTT_AUTH;
	p.u.auth.reason = 0x04;
	assert_int_equal(enc(&p, V5), MOTE_EINVAL);
}

static void test_too_large(void **state)
{
	(void)state;
	/* counted, never copied: the payload pointer is not read for sizing */
	static const uint8_t one = 0;
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.topic = S("t");
	size_t size;
	p.u.publish.payload = (struct mqtt_bin){ &one, MQTT_MAX_REMAINING_LENGTH - 3 };
	assert_int_equal(mqtt_encoded_size(&p, V4, &size), MOTE_OK);
	assert_int_equal(size, 1 + 4 + MQTT_MAX_REMAINING_LENGTH);
	p.u.publish.payload.len++;
	assert_int_equal(mqtt_encoded_size(&p, V4, &size), MOTE_EINVAL);
	uint8_t head[16];
	assert_int_equal(mqtt_encode_publish_head(&p.u.publish, V4, head, sizeof head, &size),
			 MOTE_EINVAL);
	p.u.publish.payload.len--;
	assert_int_equal(mqtt_encode_publish_head(&p.u.publish, V4, head, sizeof head, &size),
			 MOTE_OK);
	assert_int_equal(size, 8);
	static const uint8_t want[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 't' };
	assert_memory_equal(head, want, sizeof want);
	/* a huge payload in a small buffer: head fits, full packet does not */
	uint8_t small[64];
	assert_int_equal(mqtt_encode(&p, V4, small, sizeof small, &size), MOTE_ENOSPC);
}

/* Every capacity below the size is ENOSPC; the bytes are identical at
 * the exact size and above. */
static void test_enospc(void **state)
{
	(void)state;
	static const uint32_t ids[] = { 5, 300 };
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	p.u.publish.qos = 2;
	p.u.publish.packet_id = 9;
	p.u.publish.topic = S("a/b");
	p.u.publish.payload = (struct mqtt_bin){ (const uint8_t *)"payload", 7 };
	p.u.publish.props.sub_ids = ids;
	p.u.publish.props.sub_id_count = 2;
	p.u.publish.props.content_type = S("x");
	MQTT_SET(&p.u.publish.props, MQTT_PROP_CONTENT_TYPE);
	size_t size, n;
	assert_int_equal(mqtt_encoded_size(&p, V5, &size), MOTE_OK);
	uint8_t ref[64], buf[64];
	assert_int_equal(mqtt_encode(&p, V5, ref, sizeof ref, &n), MOTE_OK);
	assert_int_equal(n, size);
	for (size_t cap = 0; cap < size; cap++) {
		memset(buf, 0xEE, sizeof buf);
		assert_int_equal(mqtt_encode(&p, V5, buf, cap, &n), MOTE_ENOSPC);
		assert_int_equal(buf[0], 0xEE); /* refused before writing */
	}
	assert_int_equal(mqtt_encode(&p, V5, NULL, 100, &n), MOTE_ENOSPC);
	assert_int_equal(mqtt_encode(&p, V5, buf, size, &n), MOTE_OK);
	assert_memory_equal(buf, ref, size);

	/* the head needs room for the head only */
	size_t head = size - 7;
	assert_int_equal(mqtt_encode_publish_head(&p.u.publish, V5, buf, head - 1, &n),
			 MOTE_ENOSPC);
	assert_int_equal(mqtt_encode_publish_head(&p.u.publish, V5, buf, head, &n), MOTE_OK);
	assert_int_equal(n, head);
	assert_memory_equal(buf, ref, head);
	assert_int_equal(mqtt_encode_publish_head(&p.u.publish, V5, NULL, 0, &n), MOTE_ENOSPC);
}

/*
 * The remaining length's own size changes at 128, 16384, 2097152: the
 * head, the full encoding and encoded_size must all follow it.
 */
static void test_length_boundaries(void **state)
{
	(void)state;
	static const uint32_t rls[] = { 126, 127, 128, 129, 16383, 16384, 16385 };
	size_t cap = 16400;
	uint8_t *payload = calloc(1, cap), *buf = malloc(cap), *head = malloc(64);
	assert_non_null(payload);
	assert_non_null(buf);
	assert_non_null(head);
	for (uint8_t v = V4; v <= V5; v++) {
		for (size_t i = 0; i < sizeof rls / sizeof rls[0]; i++) {
			struct mqtt_packet p = { .type = MQTT_PUBLISH };
			p.u.publish.topic = S("t");
			uint32_t fixed = 3 + (v == V5 ? 1 : 0); /* topic, property length */
			p.u.publish.payload = (struct mqtt_bin){ payload, rls[i] - fixed };
			size_t size, n, hn;
			assert_int_equal(mqtt_encoded_size(&p, v, &size), MOTE_OK);
			assert_int_equal(mqtt_encode(&p, v, buf, cap, &n), MOTE_OK);
			assert_int_equal(n, size);
			size_t want_hdr = 1 + mqtt_varint_size(rls[i]);
			assert_int_equal(n, want_hdr + rls[i]);
			struct mqtt_frame fr;
			assert_int_equal(mqtt_frame_parse(buf, n, 0, &fr, NULL), MOTE_OK);
			assert_int_equal(fr.remaining_len, rls[i]);
			assert_int_equal(fr.header_len, want_hdr);
			assert_int_equal(mqtt_encode_publish_head(&p.u.publish, v, head, 64, &hn),
					 MOTE_OK);
			assert_int_equal(hn, want_hdr + fixed);
			assert_memory_equal(head, buf, hn);
		}
	}
	free(payload);
	free(buf);
	free(head);
}

/* 3.1.1 has no place for 5.0-only fields: they are left out. */
static void test_v311_downgrade(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t n;
	const struct mqtt_sub_entry e = { S("a"), { .qos = 1, .no_local = true,
						    .retain_as_published = true,
						    .retain_handling = 2 } };
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	p.u.subscribe.packet_id = 2;
	p.u.subscribe.entries = &e;
	p.u.subscribe.count = 1;
	assert_int_equal(mqtt_encode(&p, V4, buf, sizeof buf, &n), MOTE_OK);
	static const uint8_t sub4[] = { 0x82, 6, 0, 2, 0, 1, 'a', 0x01 };
	assert_int_equal(n, sizeof sub4);
	assert_memory_equal(buf, sub4, n);
	assert_int_equal(mqtt_encode(&p, V5, buf, sizeof buf, &n), MOTE_OK);
	static const uint8_t sub5[] = { 0x82, 7, 0, 2, 0, 0, 1, 'a', 0x2D };
	assert_int_equal(n, sizeof sub5);
	assert_memory_equal(buf, sub5, n);

	p = (struct mqtt_packet){ .type = MQTT_PUBCOMP };
	p.u.ack.packet_id = 3;
	p.u.ack.reason = 0x92;
	assert_int_equal(mqtt_encode(&p, V4, buf, sizeof buf, &n), MOTE_OK);
	static const uint8_t comp4[] = { 0x70, 2, 0, 3 };
	assert_memory_equal(buf, comp4, sizeof comp4);
	assert_int_equal(n, 4);

	p = (struct mqtt_packet){ .type = MQTT_CONNECT };
	p.u.connect.will = false;
	p.u.connect.will_qos = 2;      /* ignored without a will */
	p.u.connect.will_retain = true;
	assert_int_equal(mqtt_encode(&p, V4, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(buf[9], 0x00); /* connect flags */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_length_boundaries),
		cmocka_unit_test(test_v311_downgrade),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
