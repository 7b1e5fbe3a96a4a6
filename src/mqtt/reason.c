/*
 * reason.c - which reason codes each packet may carry (5.0 section 2.4 and
 * the Reason Code tables of sections 3.2.2.2 .. 3.15.2.1; 3.1.1 sections
 * 3.2.2.3 and 3.9.3).
 *
 * Decoder and encoder both consult this, so mote never sends a code it
 * would itself refuse. Direction (e.g. 0x04 only from clients) is not
 * judged: the receiver's reaction is the same either way.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

static const uint8_t connack5[] = { 0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
				    0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
				    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F };
static const uint8_t puback5[] = { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 };
static const uint8_t pubrel5[] = { 0x00, 0x92 };
static const uint8_t suback5[] = { 0x00, 0x01, 0x02, 0x80, 0x83, 0x87,
				   0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2 };
static const uint8_t unsuback5[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };
static const uint8_t disconnect5[] = { 0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89,
				       0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
				       0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
				       0x9E, 0x9F, 0xA0, 0xA1, 0xA2 };
static const uint8_t auth5[] = { 0x00, 0x18, 0x19 };
static const uint8_t suback311[] = { 0x00, 0x01, 0x02, MQTT311_SUBACK_FAILURE };

static bool in(const uint8_t *set, size_t n, uint8_t code)
{
	return memchr(set, code, n) != NULL;
}

#define IN(set, code) in((set), sizeof(set), (code))

bool mqtt__reason_valid(uint8_t type, uint8_t version, uint8_t code)
{
	if (version != MQTT_V5) {
		switch (type) {
		case MQTT_CONNACK:
			return code <= MQTT311_CONNACK_NOT_AUTHORIZED;
		case MQTT_SUBACK:
			return IN(suback311, code); /* [MQTT-3.9.3-2] */
		default:
			return code == 0; /* nothing else carries one in 3.1.1 */
		}
	}
	switch (type) {
	case MQTT_CONNACK:
		return IN(connack5, code);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
		return IN(puback5, code);
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return IN(pubrel5, code);
	case MQTT_SUBACK:
		return IN(suback5, code);
	case MQTT_UNSUBACK:
		return IN(unsuback5, code);
	case MQTT_DISCONNECT:
		return IN(disconnect5, code);
	case MQTT_AUTH:
		return IN(auth5, code);
	default:
		return false;
	}
}
