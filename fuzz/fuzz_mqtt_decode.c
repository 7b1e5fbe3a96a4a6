/*
 * fuzz_mqtt_decode.c - libFuzzer target for the MQTT codec's decoder.
 *
 * Input: one selector byte, then a byte stream of packets. Selector bit 0:
 * MQTT 5.0 (else 3.1.1); bit 1: the stream comes from a client (else from
 * a server); bit 2: a 64-byte maximum packet size.
 *
 * The stream is cut with mqtt_frame_parse() and every packet decoded from
 * its own exact-size allocation (so AddressSanitizer sees any overread).
 * Every packet that decodes is re-encoded, decoded again and compared
 * field by field with the first decoding (tests/unit/mqtt_check.h); any
 * difference, or a refusal without a proper fault, traps: this is the one
 * place where aborting is the right answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt.h"
#include "../tests/unit/mqtt_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_mqtt_decode: %s\n", what);
		__builtin_trap();
	}
}

static bool fault_ok(enum mote_err err, const struct mqtt_fault *f)
{
	if (!f->why)
		return false;
	switch (f->reason) {
	case MQTT_RC_MALFORMED:
		return err == MOTE_EMALFORMED;
	case MQTT_RC_PROTOCOL_ERROR:
	case MQTT_RC_UNSUPPORTED_VERSION:
	case MQTT_RC_TOPIC_NAME_INVALID:
	case MQTT_RC_TOPIC_ALIAS_INVALID:
		return err == MOTE_EPROTO;
	default:
		return false;
	}
}

/* Invariants a decoded packet must hold beyond the round trip. */
static void check_decoded(const struct mqtt_packet *p, uint8_t version)
{
	if (p->type == MQTT_PUBLISH) {
		const struct mqtt_publish *pub = &p->u.publish;
		check(pub->qos <= 2, "PUBLISH QoS above 2");
		check(pub->qos == 0 || pub->packet_id != 0, "PUBLISH packet id 0");
		check(pub->topic.len == 0 || mqtt_topic_name_valid(pub->topic.p, pub->topic.len),
		      "decoded PUBLISH topic is not a valid topic name");
		check(pub->topic.len || (version == MQTT_V5 &&
					 MQTT_HAS(&pub->props, MQTT_PROP_TOPIC_ALIAS)),
		      "empty topic without an alias");
	}
	if (p->type == MQTT_CONNECT)
		check(p->u.connect.version == MQTT_V311 || p->u.connect.version == MQTT_V5,
		      "CONNECT decoded with an unknown version");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t version = (data[0] & 1) ? MQTT_V5 : MQTT_V311;
	bool from_client = data[0] & 2;
	uint32_t max_packet = (data[0] & 4) ? 64 : 0;
	const uint8_t *p = data + 1;
	size_t left = size - 1;

	while (left) {
		struct mqtt_frame fr = { 0 };
		struct mqtt_fault f = { 0, NULL };
		struct mqtt_packet dec;
		enum mote_err err = mqtt_frame_parse(p, left, max_packet, &fr, &f);
		if (err == MOTE_ETOOBIG) {
			check(f.reason == MQTT_RC_PACKET_TOO_LARGE && fr.total_len > max_packet,
			      "ETOOBIG without 0x95 or under the limit");
			break;
		}
		if (err == MOTE_EMALFORMED) {
			check(f.reason == MQTT_RC_MALFORMED && f.why, "frame fault not 0x81");
			break;
		}
		if (err == MOTE_EAGAIN) {
			/* an incomplete packet never decodes */
			uint8_t *tail = malloc(left);
			if (!tail)
				break;
			memcpy(tail, p, left);
			check(mqtt_decode(tail, left, version, from_client, &dec, &f) != MOTE_OK,
			      "an incomplete packet decoded");
			free(tail);
			break;
		}
		check(err == MOTE_OK && fr.total_len <= left && fr.header_len >= 2 &&
			      fr.header_len <= MQTT_MAX_FIXED_HEADER,
		      "frame parse result out of range");

		uint8_t *pkt = malloc(fr.total_len);
		if (!pkt)
			break;
		memcpy(pkt, p, fr.total_len);
		f = (struct mqtt_fault){ 0, NULL };
		err = mqtt_decode(pkt, fr.total_len, version, from_client, &dec, &f);
		if (err == MOTE_OK) {
			check_decoded(&dec, version);
			const char *why = mc_reencode(&dec, fr.total_len, version, from_client,
						      NULL, NULL);
			if (why)
				fprintf(stderr, "round trip: %s\n", why);
			check(why == NULL, "decode -> encode -> decode is not the identity");
		} else {
			check(fault_ok(err, &f), "refusal without a matching fault");
			/* 0x84 for "MQTT" means the level was neither 4 nor 5 */
			bool mqtt_name = fr.total_len >= fr.header_len + 7 &&
					 memcmp(pkt + fr.header_len, "\x00\x04MQTT", 6) == 0;
			if (dec.type == MQTT_CONNECT && f.reason == MQTT_RC_UNSUPPORTED_VERSION &&
			    mqtt_name)
				check(dec.u.connect.version != MQTT_V311 &&
					      dec.u.connect.version != MQTT_V5,
				      "0x84 for a supported level");
		}
		free(pkt);
		p += fr.total_len;
		left -= fr.total_len;
	}
	return 0;
}
