/*
 * test_mqtt_roundtrip.c - every packet type in 3.1.1 and 5.0, with every
 * property each packet allows: encode -> frame -> decode -> compare every
 * field with the input; encode(decode(bytes)) == bytes; every prefix of
 * the bytes is refused (EAGAIN from framing, an error from decode) and
 * never read past (each prefix lives in its own exact-size allocation).
 *
 * With MQTT_CORPUS_DIR set, each packet is also written there as a seed
 * for fuzz/fuzz_mqtt_decode (first byte: bit 0 = 5.0, bit 1 = from client).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"
#include "mqtt_check.h"

#define V4 MQTT_V311
#define V5 MQTT_V5
#define CLIENT true
#define SERVER false

static struct mqtt_str S(const char *s)
{
	return (struct mqtt_str){ (const uint8_t *)s, (uint16_t)strlen(s) };
}

static const uint8_t blob[] = { 0x00, 0xff, 0x7f, 0x80, 0x00, 0x01 };
#define BLOB ((struct mqtt_bin){ blob, sizeof blob })

/* Distinct per-id values, so a value landing in the wrong field shows. */
static char strings[64][24];

static void set_field(struct mqtt_props *p, uint8_t id)
{
	uint32_t u16 = 0x1200u + id, u32 = 0x01020300u + id;
	snprintf(strings[id], sizeof strings[id], "v%02x-\xc3\xa9", id); /* "v<id>-é" */
	struct mqtt_str s = S(strings[id]);
	struct mqtt_bin b = { blob + (id % 3), (uint32_t)(sizeof blob - id % 3) };
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT: p->payload_format = 1; break;
	case MQTT_PROP_MESSAGE_EXPIRY: p->message_expiry = u32; break;
	case MQTT_PROP_CONTENT_TYPE: p->content_type = s; break;
	case MQTT_PROP_RESPONSE_TOPIC: p->response_topic = S("reply/to/\xc3\xa9"); break;
	case MQTT_PROP_CORRELATION_DATA: p->correlation_data = b; break;
	case MQTT_PROP_SESSION_EXPIRY: p->session_expiry = u32; break;
	case MQTT_PROP_ASSIGNED_CLIENT_ID: p->assigned_client_id = s; break;
	case MQTT_PROP_SERVER_KEEP_ALIVE: p->server_keep_alive = (uint16_t)u16; break;
	case MQTT_PROP_AUTH_METHOD: p->auth_method = s; break;
	case MQTT_PROP_AUTH_DATA: p->auth_data = b; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFO: p->request_problem_info = 1; break;
	case MQTT_PROP_WILL_DELAY: p->will_delay = u32; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFO: p->request_response_info = 1; break;
	case MQTT_PROP_RESPONSE_INFO: p->response_info = s; break;
	case MQTT_PROP_SERVER_REFERENCE: p->server_reference = s; break;
	case MQTT_PROP_REASON_STRING: p->reason_string = s; break;
	case MQTT_PROP_RECEIVE_MAX: p->receive_max = (uint16_t)u16; break;
	case MQTT_PROP_TOPIC_ALIAS_MAX: p->topic_alias_max = (uint16_t)u16; break;
	case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = (uint16_t)u16; break;
	case MQTT_PROP_MAX_QOS: p->max_qos = 1; break;
	case MQTT_PROP_RETAIN_AVAILABLE: p->retain_available = 1; break;
	case MQTT_PROP_MAX_PACKET_SIZE: p->max_packet_size = u32; break;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE: p->wildcard_sub_available = 1; break;
	case MQTT_PROP_SUB_ID_AVAILABLE: p->sub_id_available = 1; break;
	case MQTT_PROP_SHARED_SUB_AVAILABLE: p->shared_sub_available = 1; break;
	default: fail_msg("no field for property 0x%02x", id);
	}
	MQTT_SET(p, id);
}

/* User properties: a repeated key and a multi-byte one with empty value. */
static uint8_t user_buf[256];

static struct mqtt_bin user_props(void)
{
	static const struct mqtt_user_prop pairs[] = {
		{ { (const uint8_t *)"k1", 2 }, { (const uint8_t *)"v1", 2 } },
		{ { (const uint8_t *)"\xd0\xba\xd0\xbb", 4 }, { NULL, 0 } },
		{ { (const uint8_t *)"k1", 2 }, { (const uint8_t *)"again", 5 } },
	};
	size_t n;
	assert_int_equal(mqtt_user_props_encode(pairs, 3, user_buf, sizeof user_buf, &n), MOTE_OK);
	assert_int_equal(n, (1 + 2 + 2 + 2 + 2) + (1 + 2 + 4 + 2 + 0) + (1 + 2 + 2 + 2 + 5));
	return (struct mqtt_bin){ user_buf, (uint32_t)n };
}

/* Every property `type` allows (except subscription ids), plus users. */
static struct mqtt_props all_props(uint8_t type, bool will)
{
	struct mqtt_props p = { 0 };
	for (uint8_t id = 1; id < 64; id++)
		if (mqtt_prop_allowed(id, (enum mqtt_type)type, will) &&
		    id != MQTT_PROP_USER_PROPERTY && id != MQTT_PROP_SUBSCRIPTION_ID)
			set_field(&p, id);
	p.raw_extra = user_props();
	return p;
}

static void dump_corpus(const char *name, uint8_t version, bool from_client, const uint8_t *b,
			size_t n)
{
	const char *dir = getenv("MQTT_CORPUS_DIR");
	if (!dir)
		return;
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	uint8_t sel = (uint8_t)((version == V5 ? 1 : 0) | (from_client ? 2 : 0));
	assert_int_equal(fwrite(&sel, 1, 1, f), 1);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* The bytes of the last roundtrip(): decoded views point into them. */
static uint8_t *keep;

static int free_keep(void **state)
{
	(void)state;
	free(keep);
	keep = NULL;
	return 0;
}

/*
 * The whole check for one packet. Returns the encoded size; *dec gets the
 * decoded packet (its views point into storage that stays valid until
 * the next call).
 */
static size_t roundtrip(const char *name, const struct mqtt_packet *in, uint8_t version,
			bool from_client, struct mqtt_packet *dec)
{
	struct mqtt_fault fault = { 0, NULL };
	struct mqtt_frame fr;
	size_t size = 0, n = 0;

	free(keep);
	keep = NULL;
	assert_int_equal(mqtt_encoded_size(in, version, &size), MOTE_OK);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(mqtt_encode(in, version, buf, size - 1, &n), MOTE_ENOSPC);
	assert_int_equal(mqtt_encode(in, version, buf, size, &n), MOTE_OK);
	assert_int_equal(n, size);
	dump_corpus(name, version, from_client, buf, n);

	assert_int_equal(mqtt_frame_parse(buf, n, 0, &fr, &fault), MOTE_OK);
	assert_int_equal(fr.total_len, n);
	assert_int_equal(fr.type, in->type);
	assert_int_equal(fr.header_len + fr.remaining_len, n);
	assert_int_equal(mqtt_frame_parse(buf, n, (uint32_t)n, &fr, &fault), MOTE_OK);

	enum mote_err err = mqtt_decode(buf, n, version, from_client, dec, &fault);
	if (err != MOTE_OK)
		fail_msg("%s: decode failed: %s", name, fault.why);
	const char *why = mc_input_eq(in, dec, version);
	if (why)
		fail_msg("%s: decoded differs from input: %s", name, why);

	uint8_t *again = NULL;
	size_t again_len = 0;
	why = mc_reencode(dec, n, version, from_client, &again, &again_len);
	if (why)
		fail_msg("%s: re-encode: %s", name, why);
	assert_int_equal(again_len, n);
	assert_memory_equal(again, buf, n);
	free(again);

	/* Every prefix: framing wants more, decode refuses, nothing overreads. */
	for (size_t k = 0; k < n; k++) {
		uint8_t *pre = malloc(k ? k : 1);
		struct mqtt_packet p;
		assert_non_null(pre);
		memcpy(pre, buf, k);
		assert_int_equal(mqtt_frame_parse(pre, k, 0, &fr, NULL), MOTE_EAGAIN);
		err = mqtt_decode(pre, k, version, from_client, &p, &fault);
		if (err == MOTE_OK)
			fail_msg("%s: prefix of %zu bytes decoded", name, k);
		assert_int_equal(err, MOTE_EMALFORMED);
		free(pre);
	}
	keep = buf;
	return n;
}

/* ---- CONNECT / CONNACK ------------------------------------------------ */

static void connect_full(uint8_t version, struct mqtt_packet *p)
{
	*p = (struct mqtt_packet){ .type = MQTT_CONNECT };
	struct mqtt_connect *c = &p->u.connect;
	c->clean_start = true;
	c->will = true;
	c->will_qos = 2;
	c->will_retain = true;
	c->has_username = true;
	c->has_password = true;
	c->keep_alive = 0xbeef;
	c->client_id = S("client-\xf0\xaa\x9b\x94");
	c->will_topic = S("will/topic");
	c->will_payload = BLOB;
	c->username = S("user");
	c->password = (struct mqtt_bin){ blob + 1, 3 };
	if (version == V5) {
		c->props = all_props(MQTT_CONNECT, false);
		c->will_props = all_props(MQTT_CONNECT, true);
	}
}

static void test_connect_full(void **state)
{
	(void)state;
	struct mqtt_packet in, dec;
	for (uint8_t v = V4; v <= V5; v++) {
		connect_full(v, &in);
		roundtrip(v == V5 ? "connect_full_v5" : "connect_full_v4", &in, v, CLIENT, &dec);
		assert_int_equal(dec.u.connect.version, v);
		assert_int_equal(dec.u.connect.will_qos, 2);
		assert_int_equal(dec.u.connect.keep_alive, 0xbeef);
		assert_true(mc_str_eq(dec.u.connect.username, S("user")));
		if (v == V5) {
			assert_int_equal(dec.u.connect.props.user_count, 3);
			assert_int_equal(dec.u.connect.will_props.will_delay, 0x01020300u + 0x18);
			/* the comparison helper must notice a changed field */
			dec.u.connect.props.receive_max++;
			assert_non_null(mc_input_eq(&in, &dec, v));
		}
	}
}

static void test_connect_minimal(void **state)
{
	(void)state;
	struct mqtt_packet in = { .type = MQTT_CONNECT }, dec;
	size_t n = roundtrip("connect_min_v4", &in, V4, CLIENT, &dec);
	assert_int_equal(n, 2 + 10 + 2); /* header, variable header, empty id */
	assert_int_equal(dec.u.connect.client_id.len, 0);
	n = roundtrip("connect_min_v5", &in, V5, CLIENT, &dec);
	assert_int_equal(n, 2 + 11 + 2);
	/* 5.0 allows a password without a user name */
	in.u.connect.has_password = true;
	in.u.connect.password = BLOB;
	roundtrip("connect_pw_only_v5", &in, V5, CLIENT, &dec);
	assert_true(dec.u.connect.has_password);
	assert_false(dec.u.connect.has_username);
}

static void test_connack(void **state)
{
	(void)state;
	struct mqtt_packet in = { .type = MQTT_CONNACK }, dec;
	in.u.connack.session_present = true;
	size_t n = roundtrip("connack_v4", &in, V4, SERVER, &dec);
	assert_int_equal(n, 4); /* 3.1.1 CONNACK is always 4 bytes */
	assert_true(dec.u.connack.session_present);

	in.u.connack = (struct mqtt_connack){ .reason = MQTT311_CONNACK_NOT_AUTHORIZED };
	roundtrip("connack_refused_v4", &in, V4, SERVER, &dec);
	assert_int_equal(dec.u.connack.reason, 5);

	in.u.connack = (struct mqtt_connack){ .session_present = true };
	in.u.connack.props = all_props(MQTT_CONNACK, false);
	roundtrip("connack_full_v5", &in, V5, SERVER, &dec);

	in.u.connack = (struct mqtt_connack){ .reason = MQTT_RC_BANNED };
	n = roundtrip("connack_banned_v5", &in, V5, SERVER, &dec);
	assert_int_equal(n, 5); /* flags, reason, empty property length */
}

/* ---- PUBLISH and acks --------------------------------------------------- */

static void test_publish(void **state)
{
	(void)state;
	struct mqtt_packet in, dec;
	static const uint32_t ids[] = { 1, 127, 128, 16383, 16384, 2097151, 2097152,
					MQTT_MAX_SUB_ID };
	for (uint8_t v = V4; v <= V5; v++) {
		for (uint8_t qos = 0; qos <= 2; qos++) {
			in = (struct mqtt_packet){ .type = MQTT_PUBLISH };
			struct mqtt_publish *p = &in.u.publish;
			p->qos = qos;
			p->retain = qos != 1;
			p->dup = qos != 0;
			p->packet_id = qos ? (uint16_t)(0xfff0 + qos) : 0;
			p->topic = S("sensors/\xc3\xa9t\xc3\xa9/temp");
			p->payload = BLOB;
			if (v == V5)
				p->props = all_props(MQTT_PUBLISH, false);
			char name[64];
			snprintf(name, sizeof name, "publish_q%u_client_v%u", qos, v);
			roundtrip(name, &in, v, CLIENT, &dec);
			assert_int_equal(dec.u.publish.packet_id, p->packet_id);
			assert_int_equal(dec.u.publish.payload.len, sizeof blob);

			/* server to client: several subscription identifiers */
			if (v == V5) {
				p->props.sub_ids = ids;
				p->props.sub_id_count = sizeof ids / sizeof ids[0];
			}
			snprintf(name, sizeof name, "publish_q%u_server_v%u", qos, v);
			roundtrip(name, &in, v, SERVER, &dec);
			if (v == V5) {
				assert_int_equal(dec.u.publish.props.sub_id_count_decoded, 8);
				assert_int_equal(dec.u.publish.props.sub_id, 1);
			}
		}
	}
	/* 5.0: empty topic with a topic alias, empty payload */
	in = (struct mqtt_packet){ .type = MQTT_PUBLISH };
	in.u.publish.props.topic_alias = 7;
	MQTT_SET(&in.u.publish.props, MQTT_PROP_TOPIC_ALIAS);
	size_t n = roundtrip("publish_alias_v5", &in, V5, CLIENT, &dec);
	assert_int_equal(n, 2 + 2 + 1 + 3);
	assert_int_equal(dec.u.publish.topic.len, 0);
	assert_int_equal(dec.u.publish.props.topic_alias, 7);
	/* 3.1.1: smallest PUBLISH */
	in = (struct mqtt_packet){ .type = MQTT_PUBLISH };
	in.u.publish.topic = S("t");
	n = roundtrip("publish_tiny_v4", &in, V4, CLIENT, &dec);
	assert_int_equal(n, 5);
}

static void test_acks(void **state)
{
	(void)state;
	static const uint8_t types[] = { MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP };
	static const uint8_t reasons[] = { MQTT_RC_NO_MATCHING_SUBSCRIBERS,
					   MQTT_RC_QUOTA_EXCEEDED, MQTT_RC_PACKET_ID_NOT_FOUND,
					   MQTT_RC_PACKET_ID_NOT_FOUND };
	struct mqtt_packet in, dec;
	char name[64];
	for (int i = 0; i < 4; i++) {
		const char *tn = mqtt_type_name(types[i]);
		in = (struct mqtt_packet){ .type = (enum mqtt_type)types[i] };
		in.u.ack.packet_id = (uint16_t)(0x8001 + i);
		snprintf(name, sizeof name, "%s_v4", tn);
		assert_int_equal(roundtrip(name, &in, V4, CLIENT, &dec), 4);
		snprintf(name, sizeof name, "%s_short_v5", tn);
		assert_int_equal(roundtrip(name, &in, V5, CLIENT, &dec), 4);

		in.u.ack.reason = reasons[i];
		snprintf(name, sizeof name, "%s_reason_v5", tn);
		assert_int_equal(roundtrip(name, &in, V5, SERVER, &dec), 5);
		assert_int_equal(dec.u.ack.reason, reasons[i]);

		in.u.ack.props = all_props(types[i], false);
		snprintf(name, sizeof name, "%s_full_v5", tn);
		roundtrip(name, &in, V5, SERVER, &dec);
		assert_int_equal(dec.u.ack.props.user_count, 3);

		/* reason 0 with properties keeps the reason byte */
		in.u.ack.reason = 0;
		snprintf(name, sizeof name, "%s_props_v5", tn);
		roundtrip(name, &in, V5, CLIENT, &dec);
	}
}

/* ---- SUBSCRIBE family ------------------------------------------------- */

static void test_subscribe(void **state)
{
	(void)state;
	static const uint32_t id = MQTT_MAX_SUB_ID;
	const struct mqtt_sub_entry entries[] = {
		{ S("a/+/c"), { .qos = 0, .no_local = true, .retain_as_published = true } },
		{ S("#"), { .qos = 1, .retain_handling = 1 } },
		{ S("$share/grp/x/#"), { .qos = 2, .retain_handling = 2 } },
		{ S(""), { .qos = 1 } }, /* filter syntax is the broker's call */
		{ S("x/y"), { .qos = 1, .retain_as_published = true } },
		{ S("x/z"), { .qos = 2, .no_local = true, .retain_handling = 1 } },
	};
	struct mqtt_packet in = { .type = MQTT_SUBSCRIBE }, dec;
	in.u.subscribe.packet_id = 1;
	in.u.subscribe.entries = entries;
	in.u.subscribe.count = 6;
	roundtrip("subscribe_v4", &in, V4, CLIENT, &dec);
	assert_int_equal(dec.u.subscribe.count, 6);
	in.u.subscribe.props = all_props(MQTT_SUBSCRIBE, false);
	in.u.subscribe.props.sub_ids = &id;
	in.u.subscribe.props.sub_id_count = 1;
	roundtrip("subscribe_v5", &in, V5, CLIENT, &dec);
	assert_int_equal(dec.u.subscribe.props.sub_id, MQTT_MAX_SUB_ID);
	assert_true(MQTT_HAS(&dec.u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID));

	/* The decoded form (bit + sub_id, no sub_ids) encodes too. */
	in.u.subscribe.props.sub_ids = NULL;
	in.u.subscribe.props.sub_id_count = 0;
	in.u.subscribe.props.sub_id = 5;
	MQTT_SET(&in.u.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID);
	roundtrip("subscribe_subid_bit_v5", &in, V5, CLIENT, &dec);
	assert_int_equal(dec.u.subscribe.props.sub_id, 5);
}

static void test_unsubscribe(void **state)
{
	(void)state;
	const struct mqtt_str filters[] = { S("a/b"), S("c/#"), S("$share/g/+") };
	struct mqtt_packet in = { .type = MQTT_UNSUBSCRIBE }, dec;
	in.u.unsubscribe.packet_id = 0xffff;
	in.u.unsubscribe.filters = filters;
	in.u.unsubscribe.count = 3;
	roundtrip("unsubscribe_v4", &in, V4, CLIENT, &dec);
	in.u.unsubscribe.props = all_props(MQTT_UNSUBSCRIBE, false);
	roundtrip("unsubscribe_v5", &in, V5, CLIENT, &dec);
	assert_int_equal(dec.u.unsubscribe.count, 3);
}

static void test_suback_unsuback(void **state)
{
	(void)state;
	static const uint8_t r4[] = { 0, 1, 2, MQTT311_SUBACK_FAILURE };
	static const uint8_t r5[] = { 0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2 };
	static const uint8_t u5[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
	struct mqtt_packet in = { .type = MQTT_SUBACK }, dec;
	in.u.suback.packet_id = 10;
	in.u.suback.reasons = r4;
	in.u.suback.count = sizeof r4;
	assert_int_equal(roundtrip("suback_v4", &in, V4, SERVER, &dec), 2 + 2 + 4);
	in.u.suback.reasons = r5;
	in.u.suback.count = sizeof r5;
	in.u.suback.props = all_props(MQTT_SUBACK, false);
	roundtrip("suback_v5", &in, V5, SERVER, &dec);
	assert_memory_equal(dec.u.suback.reasons, r5, sizeof r5);

	in = (struct mqtt_packet){ .type = MQTT_UNSUBACK };
	in.u.suback.packet_id = 11;
	assert_int_equal(roundtrip("unsuback_v4", &in, V4, SERVER, &dec), 4);
	assert_int_equal(dec.u.suback.count, 0);
	in.u.suback.reasons = u5;
	in.u.suback.count = sizeof u5;
	in.u.suback.props = all_props(MQTT_UNSUBACK, false);
	roundtrip("unsuback_v5", &in, V5, SERVER, &dec);
}

/* ---- PINGREQ, PINGRESP, DISCONNECT, AUTH ------------------------------ */

static void test_ping(void **state)
{
	(void)state;
	struct mqtt_packet in = { .type = MQTT_PINGREQ }, dec;
	for (uint8_t v = V4; v <= V5; v++) {
		in.type = MQTT_PINGREQ;
		assert_int_equal(roundtrip(v == V5 ? "pingreq_v5" : "pingreq_v4", &in, v, CLIENT,
					   &dec),
				 2);
		in.type = MQTT_PINGRESP;
		assert_int_equal(roundtrip(v == V5 ? "pingresp_v5" : "pingresp_v4", &in, v, SERVER,
					   &dec),
				 2);
	}
}

static void test_disconnect(void **state)
{
	(void)state;
	struct mqtt_packet in = { .type = MQTT_DISCONNECT }, dec;
	assert_int_equal(roundtrip("disconnect_v4", &in, V4, CLIENT, &dec), 2);
	assert_int_equal(roundtrip("disconnect_short_v5", &in, V5, CLIENT, &dec), 2);
	in.u.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	assert_int_equal(roundtrip("disconnect_reason_v5", &in, V5, CLIENT, &dec), 3);
	assert_int_equal(dec.u.disconnect.reason, 4);
	in.u.disconnect.props = all_props(MQTT_DISCONNECT, false);
	roundtrip("disconnect_full_client_v5", &in, V5, CLIENT, &dec);
	/* [MQTT-3.14.2-2] a server never sends the session expiry */
	in.u.disconnect.reason = MQTT_RC_SERVER_MOVED;
	in.u.disconnect.props.present &= ~(1ull << MQTT_PROP_SESSION_EXPIRY);
	in.u.disconnect.props.session_expiry = 0;
	roundtrip("disconnect_full_server_v5", &in, V5, SERVER, &dec);
}

static void test_auth(void **state)
{
	(void)state;
	struct mqtt_packet in = { .type = MQTT_AUTH }, dec;
	assert_int_equal(roundtrip("auth_short_v5", &in, V5, CLIENT, &dec), 2);
	in.u.auth.reason = MQTT_RC_CONTINUE_AUTH;
	/* AUTH with a reason keeps its property length (3.15.2.2.1) */
	assert_int_equal(roundtrip("auth_reason_v5", &in, V5, SERVER, &dec), 4);
	in.u.auth.props = all_props(MQTT_AUTH, false);
	roundtrip("auth_full_v5", &in, V5, SERVER, &dec);
	assert_true(MQTT_HAS(&dec.u.auth.props, MQTT_PROP_AUTH_METHOD));
	in.u.auth.reason = MQTT_RC_REAUTHENTICATE;
	roundtrip("auth_full_client_v5", &in, V5, CLIENT, &dec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_full),
		cmocka_unit_test(test_connect_minimal),
		cmocka_unit_test(test_connack),
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_acks),
		cmocka_unit_test(test_subscribe),
		cmocka_unit_test(test_unsubscribe),
		cmocka_unit_test(test_suback_unsuback),
		cmocka_unit_test(test_ping),
		cmocka_unit_test(test_disconnect),
		cmocka_unit_test(test_auth),
	};
	return cmocka_run_group_tests(tests, NULL, free_keep);
}
