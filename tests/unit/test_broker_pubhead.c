/*
 * test_broker_pubhead.c - the PUBLISH head cache gives byte for byte what
 * mqtt_encode_publish_head() gives, for every input that decides the bytes
 * (version, QoS, DUP, RETAIN, topic, payload length, message expiry,
 * forwarded properties, packet id), hits when the inputs repeat, keys by
 * content (not by pointer), and leaves per-subscriber packets (alias,
 * subscription ids) and oversized heads to the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/pubhead.h"

/* Encodes pub both ways and checks the bytes and the result agree. */
static void same_as_encoder(struct pubhead_cache *pc, const struct mqtt_publish *pub,
			    uint8_t version)
{
	uint8_t want[1024], got[1024];
	size_t wn = 0, gn = 0;
	enum mote_err we = mqtt_encode_publish_head(pub, version, want, sizeof want, &wn);
	enum mote_err ge = pubhead_encode(pc, pub, version, got, sizeof got, &gn);
	assert_int_equal(ge, we);
	if (we != MOTE_OK)
		return;
	assert_int_equal(gn, wn);
	assert_memory_equal(got, want, wn);
}

static struct mqtt_publish base_pub(const char *topic)
{
	struct mqtt_publish p = { 0 };
	p.topic = (struct mqtt_str){ (const uint8_t *)topic, (uint16_t)strlen(topic) };
	p.payload = (struct mqtt_bin){ NULL, 100 };
	return p;
}

/* user property "k"="v" and content type "t", as wire entries */
static const uint8_t extra[] = { 0x26, 0, 1, 'k', 0, 1, 'v', 0x03, 0, 1, 't' };

static void repeats_hit_and_match_every_input(void **state)
{
	(void)state;
	struct pubhead_cache *pc = calloc(1, sizeof *pc);
	const char *topics[] = { "a/b", "a/c", "sensors/room/1/temperature" };
	uint8_t versions[] = { MQTT_V311, MQTT_V5 };
	uint32_t payload_lens[] = { 0, 100, 200000 };
	uint32_t calls = 0;
	for (int round = 0; round < 2; round++)
		for (size_t t = 0; t < 3; t++)
			for (size_t v = 0; v < 2; v++)
				for (uint8_t qos = 0; qos <= 2; qos++)
					for (int flags = 0; flags < 16; flags++)
						for (size_t pl = 0; pl < 3; pl++) {
							struct mqtt_publish p = base_pub(topics[t]);
							p.qos = qos;
							p.retain = flags & 1;
							p.dup = (flags & 2) && qos;
							p.payload.len = payload_lens[pl];
							if (flags & 4) {
								p.props.message_expiry = 3600u + (uint32_t)round;
								MQTT_SET(&p.props, MQTT_PROP_MESSAGE_EXPIRY);
							}
							if (flags & 8)
								p.props.raw_extra = (struct mqtt_bin){ extra, sizeof extra };
							/* the same head twice, with other ids */
							for (uint16_t id = 1; id <= 2; id++) {
								p.packet_id = qos ? (uint16_t)(id * 257u + round) : 0;
								same_as_encoder(pc, &p, versions[v]);
								calls++;
							}
						}
	/* the second call of each pair must come from the cache */
	assert_int_equal(pc->hits, calls / 2);
	free(pc);
}

static void keyed_by_content_not_by_pointer(void **state)
{
	(void)state;
	struct pubhead_cache *pc = calloc(1, sizeof *pc);
	char topic[] = "home/kitchen";
	uint8_t props[sizeof extra];
	memcpy(props, extra, sizeof props);
	struct mqtt_publish p = base_pub(topic);
	p.props.raw_extra = (struct mqtt_bin){ props, sizeof props };
	same_as_encoder(pc, &p, MQTT_V5);
	topic[0] = 'H'; /* a new message in the same memory */
	same_as_encoder(pc, &p, MQTT_V5);
	p.topic.len = 4; /* "Home" */
	same_as_encoder(pc, &p, MQTT_V5);
	props[sizeof props - 1] = 'u';
	same_as_encoder(pc, &p, MQTT_V5);
	p.props.raw_extra.len = 7; /* the user property alone */
	same_as_encoder(pc, &p, MQTT_V5);
	p.payload.len++;
	same_as_encoder(pc, &p, MQTT_V5);
	p.props.message_expiry = 5;
	MQTT_SET(&p.props, MQTT_PROP_MESSAGE_EXPIRY);
	same_as_encoder(pc, &p, MQTT_V5);
	p.props.message_expiry = 4; /* one second later */
	same_as_encoder(pc, &p, MQTT_V5);
	p.qos = 1;
	p.packet_id = 9;
	same_as_encoder(pc, &p, MQTT_V5);
	p.dup = true; /* a redelivery of the same message */
	same_as_encoder(pc, &p, MQTT_V5);
	assert_int_equal(pc->hits, 0);
	same_as_encoder(pc, &p, MQTT_V5);
	assert_int_equal(pc->hits, 1);
	free(pc);
}

static void per_subscriber_properties_are_not_cached(void **state)
{
	(void)state;
	struct pubhead_cache *pc = calloc(1, sizeof *pc);
	uint32_t ids[2] = { 7, 300 };
	struct mqtt_publish p = base_pub("t/1");
	p.qos = 1;
	p.packet_id = 10;
	p.props.sub_ids = ids;
	p.props.sub_id_count = 2;
	for (int i = 0; i < 3; i++)
		same_as_encoder(pc, &p, MQTT_V5);
	p.props.sub_id_count = 0;
	p.props.topic_alias = 3;
	MQTT_SET(&p.props, MQTT_PROP_TOPIC_ALIAS);
	for (int i = 0; i < 3; i++)
		same_as_encoder(pc, &p, MQTT_V5);
	p.topic = (struct mqtt_str){ NULL, 0 }; /* alias alone */
	for (int i = 0; i < 3; i++)
		same_as_encoder(pc, &p, MQTT_V5);
	assert_int_equal(pc->hits, 0);
	/* and the plain head after them is still right, then cached */
	struct mqtt_publish q = base_pub("t/1");
	q.qos = 1;
	q.packet_id = 11;
	same_as_encoder(pc, &q, MQTT_V5);
	q.packet_id = 12;
	same_as_encoder(pc, &q, MQTT_V5);
	assert_int_equal(pc->hits, 1);
	free(pc);
}

static void long_heads_and_errors_behave_like_the_encoder(void **state)
{
	(void)state;
	struct pubhead_cache *pc = calloc(1, sizeof *pc);
	char *long_topic = malloc(PUBHEAD_MAX + 2);
	memset(long_topic, 'x', PUBHEAD_MAX + 1);
	long_topic[PUBHEAD_MAX + 1] = 0;
	struct mqtt_publish p = base_pub(long_topic);
	for (int i = 0; i < 3; i++)
		same_as_encoder(pc, &p, MQTT_V311);
	assert_int_equal(pc->hits, 0);

	/* a cached QoS 1 head does not hide a zero packet id */
	struct mqtt_publish q = base_pub("q/1");
	q.qos = 1;
	q.packet_id = 5;
	same_as_encoder(pc, &q, MQTT_V311);
	q.packet_id = 0;
	same_as_encoder(pc, &q, MQTT_V311);
	uint8_t buf[64];
	size_t n;
	assert_int_equal(pubhead_encode(pc, &q, MQTT_V311, buf, sizeof buf, &n), MOTE_EINVAL);

	/* nor a buffer too small for it */
	q.packet_id = 6;
	assert_int_equal(pubhead_encode(pc, &q, MQTT_V311, buf, sizeof buf, &n), MOTE_OK);
	assert_int_equal(pubhead_encode(pc, &q, MQTT_V311, buf, n - 1, &n), MOTE_ENOSPC);
	/* remaining length too large: refused with or without a cache */
	q.payload.len = MQTT_MAX_REMAINING_LENGTH;
	same_as_encoder(pc, &q, MQTT_V311);
	same_as_encoder(pc, &q, MQTT_V311);
	/* DUP at QoS 0 is refused in 5.0 */
	struct mqtt_publish d = base_pub("d");
	d.dup = true;
	same_as_encoder(pc, &d, MQTT_V5);
	same_as_encoder(pc, &d, MQTT_V5);
	free(long_topic);
	free(pc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(repeats_hit_and_match_every_input),
		cmocka_unit_test(keyed_by_content_not_by_pointer),
		cmocka_unit_test(per_subscriber_properties_are_not_cached),
		cmocka_unit_test(long_heads_and_errors_behave_like_the_encoder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
