/*
 * test_mqtt_invalid.c - every refusal the decoder owes, each with the
 * error, the reason code and the exact `why` text it must report; and next
 * to them near-misses that must be accepted, so no check is broader than
 * the rule it implements.
 *
 * Cases give the first byte and the body; the test puts the remaining
 * length between them, so the framing is always right and only the rule
 * under test is broken.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define V4 MQTT_V311
#define V5 MQTT_V5
#define C true  /* from client */
#define S false /* from server */
#define MAL MOTE_EMALFORMED
#define PRO MOTE_EPROTO

struct bad {
	uint8_t first;
	const uint8_t *body;
	size_t blen;
	uint8_t version;
	bool from_client;
	enum mote_err err;
	uint8_t reason;
	const char *why;
};

#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define NONE NULL, 0
/* CONNECT variable headers up to and including the keep alive. */
#define H4(flags) 0, 4, 'M', 'Q', 'T', 'T', 4, (flags), 0, 60
#define H5(flags) 0, 4, 'M', 'Q', 'T', 'T', 5, (flags), 0, 60

static const struct bad bads[] = {
	/* ---- fixed header ---- */
	{ 0x00, NONE, V4, C, MAL, 0x81, "packet type 0 is reserved" },
	{ 0xF0, NONE, V4, C, MAL, 0x81, "packet type 15 is reserved in MQTT 3.1.1" },
	{ 0x60, B(0, 1), V4, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0x80, B(0, 1, 0, 1, 'a', 0), V4, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0xA0, B(0, 1, 0, 1, 'a'), V5, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0x41, B(0, 1), V4, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0xC1, NONE, V4, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0x12, B(H4(0x02), 0, 0), V4, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0xE8, NONE, V5, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	{ 0xF1, NONE, V5, C, MAL, 0x81, "reserved fixed header flags are wrong" },
	/* ---- direction ---- */
	{ 0x20, B(0, 0), V4, C, PRO, 0x82, "CONNACK sent by a client" },
	{ 0x90, B(0, 1, 0), V4, C, PRO, 0x82, "SUBACK sent by a client" },
	{ 0xB0, B(0, 1), V4, C, PRO, 0x82, "UNSUBACK sent by a client" },
	{ 0xD0, NONE, V5, C, PRO, 0x82, "PINGRESP sent by a client" },
	{ 0x10, B(H4(0x02), 0, 0), V4, S, PRO, 0x82, "CONNECT sent by a server" },
	{ 0x82, B(0, 1, 0, 1, 'a', 0), V4, S, PRO, 0x82, "SUBSCRIBE sent by a server" },
	{ 0xA2, B(0, 1, 0, 1, 'a'), V4, S, PRO, 0x82, "UNSUBSCRIBE sent by a server" },
	{ 0xC0, NONE, V5, S, PRO, 0x82, "PINGREQ sent by a server" },
	/* ---- CONNECT ---- */
	{ 0x10, B(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 60, 0, 1, 'x'), V4, C, PRO,
	  0x84, "MQTT 3.1 (MQIsdp) is not supported" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'X', 4, 0x02, 0, 60, 0, 0), V4, C, PRO, 0x84,
	  "unknown protocol name" },
	{ 0x10, B(0, 4, 'm', 'q', 't', 't', 4, 0x02, 0, 60, 0, 0), V4, C, PRO, 0x84,
	  "unknown protocol name" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0), V4, C, PRO, 0x84,
	  "unsupported protocol level" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'T', 3, 0x02, 0, 60, 0, 0), V5, C, PRO, 0x84,
	  "unsupported protocol level" },
	{ 0x10, B(0, 4, 'M', 'Q'), V4, C, MAL, 0x81, "CONNECT protocol name missing or truncated" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'T'), V4, C, MAL, 0x81, "CONNECT protocol level missing" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'T', 4), V4, C, MAL, 0x81, "CONNECT flags missing" },
	{ 0x10, B(0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0), V4, C, MAL, 0x81,
	  "CONNECT keep alive missing" },
	{ 0x10, B(H4(0x03), 0, 0), V4, C, MAL, 0x81, "CONNECT reserved flag is not 0" },
	{ 0x10, B(H5(0x01), 0, 0, 0), V5, C, MAL, 0x81, "CONNECT reserved flag is not 0" },
	{ 0x10, B(H4(0x0A), 0, 0), V4, C, MAL, 0x81, "will QoS or will retain set without a will" },
	{ 0x10, B(H5(0x22), 0, 0, 0), V5, C, MAL, 0x81,
	  "will QoS or will retain set without a will" },
	{ 0x10, B(H4(0x1E), 0, 0, 0, 1, 't', 0, 0), V4, C, MAL, 0x81, "will QoS is 3" },
	{ 0x10, B(H4(0x18), 0, 0), V4, C, MAL, 0x81, "will QoS is 3" },
	{ 0x10, B(H4(0x42), 0, 0, 0, 1, 'p'), V4, C, MAL, 0x81,
	  "password flag set without the user name flag" },
	{ 0x10, B(H4(0x02)), V4, C, MAL, 0x81, "client identifier missing or truncated" },
	{ 0x10, B(H4(0x02), 0, 2, 0xC0, 0x80), V4, C, MAL, 0x81,
	  "client identifier is not valid UTF-8" },
	{ 0x10, B(H5(0x02), 0, 0, 1, 0), V5, C, MAL, 0x81, "client identifier is not valid UTF-8" },
	{ 0x10, B(H4(0x06), 0, 1, 'c', 0, 1, 0xFF, 0, 0), V4, C, MAL, 0x81,
	  "will topic is not valid UTF-8" },
	{ 0x10, B(H4(0x06), 0, 1, 'c', 0, 9), V4, C, MAL, 0x81, "will topic missing or truncated" },
	{ 0x10, B(H4(0x06), 0, 1, 'c', 0, 1, 't', 0, 5, 'x'), V4, C, MAL, 0x81,
	  "will payload missing or truncated" },
	{ 0x10, B(H4(0x82), 0, 0, 0, 4, 'a', 0xED, 0xA0, 0x80), V4, C, MAL, 0x81,
	  "user name is not valid UTF-8" },
	{ 0x10, B(H4(0x82), 0, 0), V4, C, MAL, 0x81, "user name missing or truncated" },
	{ 0x10, B(H4(0xC2), 0, 0, 0, 1, 'u', 0, 3, 'p'), V4, C, MAL, 0x81,
	  "password missing or truncated" },
	{ 0x10, B(H4(0x02), 0, 0, 0), V4, C, MAL, 0x81,
	  "bytes after the end of the CONNECT payload" },
	{ 0x10, B(H5(0x02), 0, 0, 0, 0), V5, C, MAL, 0x81,
	  "bytes after the end of the CONNECT payload" },
	{ 0x10, B(H5(0x02)), V5, C, MAL, 0x81, "property length missing or truncated" },
	{ 0x10, B(H5(0x02), 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), V5, C, MAL, 0x81,
	  "property length longer than 4 bytes" },
	{ 0x10, B(H5(0x02), 10, 0x11, 0), V5, C, MAL, 0x81, "property length exceeds the packet" },
	{ 0x10, B(H5(0x02), 3, 0x11, 0, 0, 0, 0), V5, C, MAL, 0x81,
	  "property value runs past the property length" },
	{ 0x10, B(H5(0x02), 2, 0x05, 0, 0, 0), V5, C, MAL, 0x81, "unknown property identifier" },
	{ 0x10, B(H5(0x02), 2, 0x80, 0x01, 0, 0), V5, C, MAL, 0x81, "unknown property identifier" },
	{ 0x10, B(H5(0x02), 1, 0x00, 0, 0), V5, C, MAL, 0x81, "unknown property identifier" },
	{ 0x10, B(H5(0x02), 3, 0x23, 0, 1, 0, 0), V5, C, MAL, 0x81,
	  "property not allowed in CONNECT" },
	{ 0x10, B(H5(0x02), 5, 0x18, 0, 0, 0, 1, 0, 0), V5, C, MAL, 0x81,
	  "property not allowed in CONNECT" },
	{ 0x10, B(H5(0x02), 3, 0x21, 0, 0, 0, 0), V5, C, PRO, 0x82, "receive maximum is 0" },
	{ 0x10, B(H5(0x02), 5, 0x27, 0, 0, 0, 0, 0, 0), V5, C, PRO, 0x82,
	  "maximum packet size is 0" },
	{ 0x10, B(H5(0x02), 2, 0x17, 2, 0, 0), V5, C, PRO, 0x82,
	  "request problem information is neither 0 nor 1" },
	{ 0x10, B(H5(0x02), 2, 0x19, 2, 0, 0), V5, C, PRO, 0x82,
	  "request response information is neither 0 nor 1" },
	{ 0x10, B(H5(0x02), 3, 0x16, 0, 0, 0, 0), V5, C, PRO, 0x82,
	  "authentication data without an authentication method" },
	{ 0x10, B(H5(0x02), 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 0), V5, C, PRO, 0x82,
	  "property appears twice" },
	{ 0x10, B(H5(0x02), 6, 0x15, 0, 1, 'a', 0x26, 0, 0, 0), V5, C, MAL, 0x81,
	  "property value runs past the property length" },
	{ 0x10, B(H5(0x02), 6, 0x26, 0, 1, 0xFF, 0, 0, 0, 0), V5, C, MAL, 0x81,
	  "user property name is not valid UTF-8" },
	{ 0x10, B(H5(0x02), 6, 0x26, 0, 0, 0, 1, 0xFF, 0, 0), V5, C, MAL, 0x81,
	  "user property value is not valid UTF-8" },
	{ 0x10, B(H5(0x02), 4, 0x15, 0, 1, 0xC3, 0, 0), V5, C, MAL, 0x81,
	  "property string is not valid UTF-8" },
	{ 0x10, B(H5(0x06), 0, 0, 0, 5, 0x11, 0, 0, 0, 1, 0, 1, 't', 0, 0), V5, C, MAL, 0x81,
	  "property not allowed in will properties" },
	{ 0x10, B(H5(0x06), 0, 0, 0, 2, 0x01, 2, 0, 1, 't', 0, 0), V5, C, PRO, 0x82,
	  "payload format indicator is neither 0 nor 1" },
	{ 0x10, B(H5(0x06), 0, 0, 0, 4, 0x03, 0, 1, 0xFF, 0, 1, 't', 0, 0), V5, C, MAL, 0x81,
	  "property string is not valid UTF-8" },
	{ 0x10, B(H5(0x06), 0, 0, 0, 10, 0x18, 0, 0, 0, 1, 0x18, 0, 0, 0, 1, 0, 1, 't', 0, 0), V5,
	  C, PRO, 0x82, "property appears twice" },
	/* ---- CONNACK ---- */
	{ 0x20, B(0), V4, S, MAL, 0x81, "CONNACK shorter than 2 bytes" },
	{ 0x20, B(0x02, 0), V4, S, MAL, 0x81, "CONNACK acknowledge flags reserved bits are not 0" },
	{ 0x20, B(0x80, 0, 0), V5, S, MAL, 0x81,
	  "CONNACK acknowledge flags reserved bits are not 0" },
	{ 0x20, B(0x01, 5), V4, S, PRO, 0x82,
	  "CONNACK refuses the connection but has session present set" },
	{ 0x20, B(0x01, 0x87, 0), V5, S, PRO, 0x82,
	  "CONNACK refuses the connection but has session present set" },
	{ 0x20, B(0, 6), V4, S, PRO, 0x82, "reason code not valid in CONNACK" },
	{ 0x20, B(0, 0x01, 0), V5, S, PRO, 0x82, "reason code not valid in CONNACK" },
	{ 0x20, B(0, 0x8E, 0), V5, S, PRO, 0x82, "reason code not valid in CONNACK" },
	{ 0x20, B(0, 0, 0), V4, S, MAL, 0x81, "bytes after the end of the CONNACK" },
	{ 0x20, B(0, 0, 0, 0), V5, S, MAL, 0x81, "bytes after the end of the CONNACK" },
	{ 0x20, B(0, 0), V5, S, MAL, 0x81, "property length missing or truncated" },
	{ 0x20, B(0, 0, 2, 0x24, 2), V5, S, PRO, 0x82, "maximum QoS is neither 0 nor 1" },
	{ 0x20, B(0, 0, 2, 0x25, 2), V5, S, PRO, 0x82, "retain available is neither 0 nor 1" },
	{ 0x20, B(0, 0, 2, 0x28, 2), V5, S, PRO, 0x82,
	  "wildcard subscription available is neither 0 nor 1" },
	{ 0x20, B(0, 0, 2, 0x29, 2), V5, S, PRO, 0x82,
	  "subscription identifiers available is neither 0 nor 1" },
	{ 0x20, B(0, 0, 2, 0x2A, 2), V5, S, PRO, 0x82,
	  "shared subscription available is neither 0 nor 1" },
	{ 0x20, B(0, 0, 3, 0x21, 0, 0), V5, S, PRO, 0x82, "receive maximum is 0" },
	{ 0x20, B(0, 0, 5, 0x27, 0, 0, 0, 0), V5, S, PRO, 0x82, "maximum packet size is 0" },
	{ 0x20, B(0, 0, 3, 0x23, 0, 1), V5, S, MAL, 0x81, "property not allowed in CONNACK" },
	{ 0x20, B(0, 0, 2, 0x17, 1), V5, S, MAL, 0x81, "property not allowed in CONNACK" },
	{ 0x20, B(0, 0, 6, 0x24, 0, 0x24, 1, 0x24, 0), V5, S, PRO, 0x82, "property appears twice" },
	/* ---- PUBLISH ---- */
	{ 0x36, B(0, 1, 't', 0, 1), V4, C, MAL, 0x81, "PUBLISH QoS is 3" },
	{ 0x38, B(0, 1, 't', 0), V5, C, MAL, 0x81, "PUBLISH has DUP set with QoS 0" },
	{ 0x30, B(0, 3, 'a', '/', '+'), V4, C, PRO, 0x90, "PUBLISH topic contains a wildcard" },
	{ 0x30, B(0, 1, '#', 0), V5, C, PRO, 0x90, "PUBLISH topic contains a wildcard" },
	{ 0x30, B(0, 3, 'a', '#', 'b'), V5, S, PRO, 0x90, "PUBLISH topic contains a wildcard" },
	{ 0x30, B(0, 2, 0xC3, 0x28), V4, C, MAL, 0x81, "PUBLISH topic is not valid UTF-8" },
	{ 0x30, B(0, 2, 'a', 0x00, 0), V5, C, MAL, 0x81, "PUBLISH topic is not valid UTF-8" },
	{ 0x30, B(0, 5, 'a'), V4, C, MAL, 0x81, "PUBLISH topic missing or truncated" },
	{ 0x30, B(0, 0, 'x'), V4, C, PRO, 0x82, "PUBLISH topic is empty" },
	{ 0x30, B(0, 0, 0), V5, C, PRO, 0x82, "PUBLISH topic is empty and has no topic alias" },
	{ 0x32, B(0, 1, 't', 0), V4, C, MAL, 0x81, "PUBLISH packet identifier missing" },
	{ 0x32, B(0, 1, 't', 0, 0), V4, C, PRO, 0x82,
	  "PUBLISH with QoS > 0 has packet identifier 0" },
	{ 0x34, B(0, 1, 't', 0, 0, 0), V5, S, PRO, 0x82,
	  "PUBLISH with QoS > 0 has packet identifier 0" },
	{ 0x30, B(0, 1, 't'), V5, C, MAL, 0x81, "property length missing or truncated" },
	{ 0x30, B(0, 1, 't', 2, 0x0B, 1), V5, C, PRO, 0x82,
	  "PUBLISH from a client has a subscription identifier" },
	{ 0x30, B(0, 1, 't', 2, 0x0B, 0), V5, S, PRO, 0x82, "subscription identifier is 0" },
	{ 0x30, B(0, 1, 't', 6, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), V5, S, MAL, 0x81,
	  "subscription identifier longer than 4 bytes" },
	{ 0x30, B(0, 1, 't', 2, 0x0B, 0x80), V5, S, MAL, 0x81,
	  "property value runs past the property length" },
	{ 0x30, B(0, 1, 't', 2, 0x01, 2), V5, C, PRO, 0x82,
	  "payload format indicator is neither 0 nor 1" },
	{ 0x30, B(0, 1, 't', 3, 0x23, 0, 0), V5, C, PRO, 0x94, "topic alias is 0" },
	{ 0x30, B(0, 0, 3, 0x23, 0, 0), V5, C, PRO, 0x94, "topic alias is 0" },
	{ 0x30, B(0, 1, 't', 6, 0x23, 0, 1, 0x23, 0, 2), V5, C, PRO, 0x82,
	  "property appears twice" },
	{ 0x30, B(0, 1, 't', 4, 0x08, 0, 1, '#'), V5, C, PRO, 0x82,
	  "response topic contains a wildcard" },
	{ 0x30, B(0, 1, 't', 3, 0x08, 0, 0), V5, C, PRO, 0x82, "response topic is empty" },
	{ 0x30, B(0, 1, 't', 4, 0x08, 0, 1, 0xFE), V5, C, MAL, 0x81,
	  "property string is not valid UTF-8" },
	{ 0x30, B(0, 1, 't', 5, 0x11, 0, 0, 0, 1), V5, C, MAL, 0x81,
	  "property not allowed in PUBLISH" },
	{ 0x30, B(0, 1, 't', 5, 0x18, 0, 0, 0, 1), V5, C, MAL, 0x81,
	  "property not allowed in PUBLISH" },
	{ 0x30, B(0, 1, 't', 3, 0x09, 0, 5), V5, C, MAL, 0x81,
	  "property value runs past the property length" },
	/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP ---- */
	{ 0x40, B(0), V4, C, MAL, 0x81, "PUBACK shorter than 2 bytes" },
	{ 0x40, NONE, V5, C, MAL, 0x81, "PUBACK shorter than 2 bytes" },
	{ 0x40, B(0, 1, 0), V4, C, MAL, 0x81, "PUBACK has a remaining length other than 2" },
	{ 0x50, B(0, 1, 0, 0), V4, S, MAL, 0x81, "PUBREC has a remaining length other than 2" },
	{ 0x62, B(0, 1, 0), V4, C, MAL, 0x81, "PUBREL has a remaining length other than 2" },
	{ 0x70, B(0, 1, 0), V4, S, MAL, 0x81, "PUBCOMP has a remaining length other than 2" },
	{ 0x40, B(0, 0), V4, C, PRO, 0x82, "PUBACK has packet identifier 0" },
	{ 0x50, B(0, 0), V5, C, PRO, 0x82, "PUBREC has packet identifier 0" },
	{ 0x62, B(0, 0, 0x92), V5, S, PRO, 0x82, "PUBREL has packet identifier 0" },
	{ 0x70, B(0, 0), V4, S, PRO, 0x82, "PUBCOMP has packet identifier 0" },
	{ 0x40, B(0, 1, 0x01), V5, C, PRO, 0x82, "reason code not valid in PUBACK" },
	{ 0x50, B(0, 1, 0x92), V5, C, PRO, 0x82, "reason code not valid in PUBREC" },
	{ 0x62, B(0, 1, 0x10), V5, C, PRO, 0x82, "reason code not valid in PUBREL" },
	{ 0x70, B(0, 1, 0x80, 0), V5, C, PRO, 0x82, "reason code not valid in PUBCOMP" },
	{ 0x70, B(0, 1, 0, 0, 0xAA), V5, C, MAL, 0x81, "bytes after the PUBCOMP properties" },
	{ 0x40, B(0, 1, 0, 3, 0x23, 0, 1), V5, C, MAL, 0x81, "property not allowed in PUBACK" },
	{ 0x50, B(0, 1, 0, 2, 0x01, 0), V5, C, MAL, 0x81, "property not allowed in PUBREC" },
	{ 0x62, B(0, 1, 0, 5, 0x11, 0, 0, 0, 0), V5, C, MAL, 0x81,
	  "property not allowed in PUBREL" },
	{ 0x40, B(0, 1, 0, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'), V5, C, PRO, 0x82,
	  "property appears twice" },
	{ 0x40, B(0, 1, 0, 9), V5, C, MAL, 0x81, "property length exceeds the packet" },
	/* ---- SUBSCRIBE ---- */
	{ 0x82, B(0), V4, C, MAL, 0x81, "SUBSCRIBE packet identifier missing" },
	{ 0x82, B(0, 1), V4, C, PRO, 0x82, "SUBSCRIBE has no topic filters" },
	{ 0x82, B(0, 1, 0), V5, C, PRO, 0x82, "SUBSCRIBE has no topic filters" },
	{ 0x82, B(0, 0, 0, 1, 'a', 0), V4, C, PRO, 0x82, "SUBSCRIBE has packet identifier 0" },
	{ 0x82, B(0, 1, 0x40), V5, C, MAL, 0x81, "property length exceeds the packet" },
	{ 0x82, B(0, 1, 0, 0, 1, 'a', 0x40), V5, C, MAL, 0x81,
	  "subscription options reserved bits are not 0" },
	{ 0x82, B(0, 1, 0, 0, 1, 'a', 0x80), V5, C, MAL, 0x81,
	  "subscription options reserved bits are not 0" },
	{ 0x82, B(0, 1, 0, 1, 'a', 0x04), V4, C, MAL, 0x81,
	  "subscription options upper 6 bits are not 0" },
	{ 0x82, B(0, 1, 0, 1, 'a', 0x01, 0, 1, 'b', 0x20), V4, C, MAL, 0x81,
	  "subscription options upper 6 bits are not 0" },
	{ 0x82, B(0, 1, 0, 1, 'a', 0x03), V4, C, MAL, 0x81, "subscription QoS is 3" },
	{ 0x82, B(0, 1, 0, 0, 1, 'a', 0x03), V5, C, MAL, 0x81, "subscription QoS is 3" },
	{ 0x82, B(0, 1, 0, 0, 1, 'a', 0x30), V5, C, PRO, 0x82, "subscription retain handling is 3" },
	{ 0x82, B(0, 1, 2, 0x0B, 0, 0, 1, 'a', 0), V5, C, PRO, 0x82,
	  "subscription identifier is 0" },
	{ 0x82, B(0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 'a', 0), V5, C, PRO, 0x82,
	  "property appears twice" },
	{ 0x82, B(0, 1, 4, 0x03, 0, 1, 'x', 0, 1, 'a', 0), V5, C, MAL, 0x81,
	  "property not allowed in SUBSCRIBE" },
	{ 0x82, B(0, 1, 0, 1, 0xFF, 0), V4, C, MAL, 0x81,
	  "SUBSCRIBE topic filter is not valid UTF-8" },
	{ 0x82, B(0, 1, 0, 5, 'a'), V4, C, MAL, 0x81, "SUBSCRIBE topic filter truncated" },
	{ 0x82, B(0, 1, 0, 1, 'a', 0, 0), V4, C, MAL, 0x81, "SUBSCRIBE topic filter truncated" },
	{ 0x82, B(0, 1, 0, 1, 'a'), V4, C, MAL, 0x81, "SUBSCRIBE subscription options missing" },
	/* ---- UNSUBSCRIBE ---- */
	{ 0xA2, B(0), V5, C, MAL, 0x81, "UNSUBSCRIBE packet identifier missing" },
	{ 0xA2, B(0, 1), V4, C, PRO, 0x82, "UNSUBSCRIBE has no topic filters" },
	{ 0xA2, B(0, 1, 0), V5, C, PRO, 0x82, "UNSUBSCRIBE has no topic filters" },
	{ 0xA2, B(0, 0, 0, 1, 'a'), V4, C, PRO, 0x82, "UNSUBSCRIBE has packet identifier 0" },
	{ 0xA2, B(0, 1, 0, 1, 0xC0), V4, C, MAL, 0x81,
	  "UNSUBSCRIBE topic filter is not valid UTF-8" },
	{ 0xA2, B(0, 1, 0, 1, 'a', 0), V4, C, MAL, 0x81, "UNSUBSCRIBE topic filter truncated" },
	{ 0xA2, B(0, 1, 2, 0x0B, 1, 0, 1, 'a'), V5, C, MAL, 0x81,
	  "property not allowed in UNSUBSCRIBE" },
	/* ---- SUBACK, UNSUBACK ---- */
	{ 0x90, B(0), V4, S, MAL, 0x81, "SUBACK packet identifier missing" },
	{ 0x90, B(0, 0, 0), V4, S, PRO, 0x82, "SUBACK has packet identifier 0" },
	{ 0x90, B(0, 1, 3), V4, S, PRO, 0x82, "reason code not valid in SUBACK" },
	{ 0x90, B(0, 1, 0x87), V4, S, PRO, 0x82, "reason code not valid in SUBACK" },
	{ 0x90, B(0, 1), V4, S, PRO, 0x82, "SUBACK has no reason codes" },
	{ 0x90, B(0, 1, 0), V5, S, PRO, 0x82, "SUBACK has no reason codes" },
	{ 0x90, B(0, 1, 0, 0, 0x11), V5, S, PRO, 0x82, "reason code not valid in SUBACK" },
	{ 0x90, B(0, 1, 2, 0x0B, 1, 0), V5, S, MAL, 0x81, "property not allowed in SUBACK" },
	{ 0xB0, B(0, 1, 0), V4, S, MAL, 0x81, "UNSUBACK has a remaining length other than 2" },
	{ 0xB0, B(0, 0), V4, S, PRO, 0x82, "UNSUBACK has packet identifier 0" },
	{ 0xB0, B(0, 1, 0, 1), V5, S, PRO, 0x82, "reason code not valid in UNSUBACK" },
	{ 0xB0, B(0, 1, 0), V5, S, PRO, 0x82, "UNSUBACK has no reason codes" },
	{ 0xB0, B(0, 1), V5, S, MAL, 0x81, "property length missing or truncated" },
	/* ---- PINGREQ, PINGRESP ---- */
	{ 0xC0, B(0), V4, C, MAL, 0x81, "PINGREQ has a remaining length other than 0" },
	{ 0xD0, B(0), V5, S, MAL, 0x81, "PINGRESP has a remaining length other than 0" },
	/* ---- DISCONNECT ---- */
	{ 0xE0, B(0), V4, C, MAL, 0x81, "DISCONNECT has a remaining length other than 0" },
	{ 0xE0, B(0x01), V5, C, PRO, 0x82, "reason code not valid in DISCONNECT" },
	{ 0xE0, B(0x18, 0), V5, C, PRO, 0x82, "reason code not valid in DISCONNECT" },
	{ 0xE0, B(0x8B, 5, 0x11, 0, 0, 0, 1), V5, S, PRO, 0x82,
	  "session expiry interval in a DISCONNECT from the server" },
	{ 0xE0, B(0, 3, 0x23, 0, 1), V5, C, MAL, 0x81, "property not allowed in DISCONNECT" },
	{ 0xE0, B(0, 0, 0xAA), V5, C, MAL, 0x81, "bytes after the DISCONNECT properties" },
	{ 0xE0, B(0, 4), V5, C, MAL, 0x81, "property length exceeds the packet" },
	/* ---- AUTH ---- */
	{ 0xF0, B(0x01), V5, C, PRO, 0x82, "reason code not valid in AUTH" },
	{ 0xF0, B(0x18, 3, 0x16, 0, 0), V5, S, PRO, 0x82,
	  "authentication data without an authentication method" },
	{ 0xF0, B(0x18, 2, 0x01, 0), V5, S, MAL, 0x81, "property not allowed in AUTH" },
	{ 0xF0, B(0x18, 0, 0), V5, C, MAL, 0x81, "bytes after the AUTH properties" },
};

/* first byte + remaining length + body, in an allocation of exact size. */
static uint8_t *frame(uint8_t first, const uint8_t *body, size_t blen, size_t *len)
{
	uint8_t *b = malloc(blen + 5);
	assert_non_null(b);
	b[0] = first;
	uint32_t n = mqtt_varint_encode((uint32_t)blen, b + 1, 4);
	assert_true(n > 0);
	if (blen)
		memcpy(b + 1 + n, body, blen);
	*len = 1 + n + blen;
	uint8_t *exact = malloc(*len);
	assert_non_null(exact);
	memcpy(exact, b, *len);
	free(b);
	return exact;
}

static void test_bad_packets(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		const struct bad *c = &bads[i];
		size_t len;
		uint8_t *buf = frame(c->first, c->body, c->blen, &len);
		struct mqtt_packet p;
		struct mqtt_fault f = { 0xEE, "unset" };
		enum mote_err err = mqtt_decode(buf, len, c->version, c->from_client, &p, &f);
		if (err != c->err || f.reason != c->reason || strcmp(f.why, c->why) != 0)
			fail_msg("case %zu (first 0x%02X, v%u): got err %d reason 0x%02X \"%s\", "
				 "want err %d reason 0x%02X \"%s\"",
				 i, c->first, c->version, err, f.reason, f.why, c->err, c->reason,
				 c->why);
		/* and without a fault struct: same error, no crash */
		assert_int_equal(mqtt_decode(buf, len, c->version, c->from_client, &p, NULL),
				 c->err);
		free(buf);
	}
}

struct good {
	uint8_t first;
	const uint8_t *body;
	size_t blen;
	uint8_t version;
	bool from_client;
};

/* Near-misses of the cases above that the spec allows. */
static const struct good goods[] = {
	{ 0x38, B(0, 1, 't', 'x'), V4, C },                 /* DUP on QoS 0: 3.1.1 only */
	{ 0x10, B(H5(0x42), 0, 0, 0, 0, 1, 'p'), V5, C },    /* 5.0 password alone */
	{ 0x10, B(H4(0x02), 0, 0), V4, C },                 /* empty client id */
	{ 0x10, B(H5(0x2C), 0, 0, 0, 0, 0, 1, 't', 0, 0), V5, C }, /* will QoS 1 + retain */
	{ 0x30, B(0, 1, 't', 2, 0x01, 1, 0xFF, 0xFE), V5, C }, /* format 1, payload not UTF-8 */
	{ 0x30, B(0, 0, 3, 0x23, 0, 1), V5, C },             /* empty topic + alias */
	{ 0x30, B(0, 1, 't', 4, 0x0B, 1, 0x0B, 2), V5, S },  /* several sub ids from server */
	{ 0x30, B(0, 1, 't', 0x0C, 0x26, 0, 1, 'k', 0, 0, 0x26, 0, 1, 'k', 0, 0), V5, C },
	{ 0x30, B(0, 1, 't', 5, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F), V5, S }, /* largest sub id */
	{ 0x40, B(0, 1), V5, C },                            /* short PUBACK */
	{ 0x40, B(0, 1, 0x10), V5, S },                      /* reason, no props */
	{ 0xE0, NONE, V5, C },
	{ 0xE0, B(0x04), V5, C },
	{ 0xE0, B(0x8B, 0), V5, S },
	{ 0xE0, B(0, 5, 0x11, 0, 0, 0, 1), V5, C },          /* session expiry from client */
	{ 0xF0, NONE, V5, S },
	{ 0xF0, B(0x19), V5, C },
	{ 0x82, B(0, 1, 0, 1, 'a', 0x02), V4, C },
	{ 0x82, B(0, 1, 0, 0, 1, 'a', 0x2E), V5, C },        /* rh 2, rap, nl, QoS 2 */
	{ 0x82, B(0, 1, 0, 0, 0, 0), V5, C },                /* empty filter: SUBACK's job */
	{ 0x20, B(0, 0x80, 0), V5, S },
	{ 0x20, B(1, 0), V4, S },
	{ 0x90, B(0, 1, 0x80), V4, S },
	{ 0xB0, B(0, 1, 0, 0x11), V5, S },
	{ 0x62, B(0, 1), V4, C },
	{ 0x62, B(0, 1, 0x92), V5, C },
};

static void test_near_misses_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
		const struct good *c = &goods[i];
		size_t len;
		uint8_t *buf = frame(c->first, c->body, c->blen, &len);
		struct mqtt_packet p;
		struct mqtt_fault f = { 0, NULL };
		enum mote_err err = mqtt_decode(buf, len, c->version, c->from_client, &p, &f);
		if (err != MOTE_OK)
			fail_msg("good case %zu (first 0x%02X) refused: %s", i, c->first, f.why);
		assert_int_equal(p.type, c->first >> 4);
		free(buf);
	}
}

/* The values the near-misses must decode to. */
static void test_near_miss_values(void **state)
{
	(void)state;
	size_t len;
	struct mqtt_packet p;
	uint8_t *buf = frame(goods[8].first, goods[8].body, goods[8].blen, &len);
	assert_int_equal(mqtt_decode(buf, len, V5, S, &p, NULL), MOTE_OK);
	assert_int_equal(p.u.publish.props.sub_id, MQTT_MAX_SUB_ID);
	free(buf);
	buf = frame(goods[6].first, goods[6].body, goods[6].blen, &len);
	assert_int_equal(mqtt_decode(buf, len, V5, S, &p, NULL), MOTE_OK);
	assert_int_equal(p.u.publish.props.sub_id, 1);
	assert_int_equal(p.u.publish.props.sub_id_count_decoded, 2);
	free(buf);
	buf = frame(goods[3].first, goods[3].body, goods[3].blen, &len);
	assert_int_equal(mqtt_decode(buf, len, V5, C, &p, NULL), MOTE_OK);
	assert_int_equal(p.u.connect.will_qos, 1);
	assert_true(p.u.connect.will_retain);
	free(buf);
	buf = frame(goods[18].first, goods[18].body, goods[18].blen, &len);
	assert_int_equal(mqtt_decode(buf, len, V5, C, &p, NULL), MOTE_OK);
	struct mqtt_topic_iter it;
	struct mqtt_sub_entry e;
	mqtt_subscribe_iter(&it, &p.u.subscribe);
	assert_true(mqtt_topics_next(&it, &e));
	assert_int_equal(e.opts.qos, 2);
	assert_true(e.opts.no_local);
	assert_true(e.opts.retain_as_published);
	assert_int_equal(e.opts.retain_handling, 2);
	assert_false(mqtt_topics_next(&it, &e));
	free(buf);
}

/* A refused CONNECT still reports the protocol level it saw. */
static void test_connect_version_on_refusal(void **state)
{
	(void)state;
	const struct {
		struct good g;
		uint8_t version;
	} cases[] = {
		{ { 0x10, B(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 60, 0, 0), V4, C }, 3 },
		{ { 0x10, B(0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0), V5, C }, 6 },
		{ { 0x10, B(H5(0x01), 0, 0, 0), V4, C }, 5 },        /* malformed after level */
		{ { 0x10, B(H5(0x02), 3, 0x21, 0, 0, 0, 0), V4, C }, 5 },
		{ { 0x10, B(H4(0x03), 0, 0), V5, C }, 4 },
		{ { 0x10, B(0, 4, 'M', 'Q'), V5, C }, 0 },           /* never reached it */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len;
		uint8_t *buf = frame(cases[i].g.first, cases[i].g.body, cases[i].g.blen, &len);
		struct mqtt_packet p;
		memset(&p, 0xA5, sizeof p);
		assert_int_not_equal(mqtt_decode(buf, len, cases[i].g.version, C, &p, NULL),
				     MOTE_OK);
		assert_int_equal(p.type, MQTT_CONNECT);
		assert_int_equal(p.u.connect.version, cases[i].version);
		free(buf);
	}
}

static void test_framing(void **state)
{
	(void)state;
	struct mqtt_frame fr;
	struct mqtt_fault f = { 0, NULL };
	/* a fifth remaining-length byte */
	static const uint8_t five[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	assert_int_equal(mqtt_frame_parse(five, sizeof five, 0, &fr, &f), MOTE_EMALFORMED);
	assert_int_equal(f.reason, MQTT_RC_MALFORMED);
	assert_string_equal(f.why, "remaining length longer than 4 bytes");
	assert_int_equal(mqtt_frame_parse(five, sizeof five, 0, &fr, NULL), MOTE_EMALFORMED);
	assert_int_equal(mqtt_decode(five, sizeof five, V4, C, &(struct mqtt_packet){ 0 }, &f),
			 MOTE_EMALFORMED);

	/* too big: judged from the header alone, out filled */
	static const uint8_t big[] = { 0x30, 0x80, 0x80, 0x01 }; /* 16384 bytes of body */
	f = (struct mqtt_fault){ 0, NULL };
	assert_int_equal(mqtt_frame_parse(big, sizeof big, 1000, &fr, &f), MOTE_ETOOBIG);
	assert_int_equal(f.reason, MQTT_RC_PACKET_TOO_LARGE);
	assert_int_equal(fr.total_len, 4 + 16384);
	assert_int_equal(fr.header_len, 4);
	assert_int_equal(fr.remaining_len, 16384);
	assert_int_equal(fr.type, MQTT_PUBLISH);
	/* exactly the limit is fine (needs more bytes) */
	assert_int_equal(mqtt_frame_parse(big, sizeof big, 16388, &fr, &f), MOTE_EAGAIN);
	assert_int_equal(mqtt_frame_parse(big, sizeof big, 16387, &fr, &f), MOTE_ETOOBIG);
	/* header complete, body not: EAGAIN but the sizes are known */
	memset(&fr, 0, sizeof fr);
	assert_int_equal(mqtt_frame_parse(big, sizeof big, 0, &fr, &f), MOTE_EAGAIN);
	assert_int_equal(fr.total_len, 16388);
	/* the largest remaining length */
	static const uint8_t max[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F };
	assert_int_equal(mqtt_frame_parse(max, sizeof max, 0, &fr, &f), MOTE_EAGAIN);
	assert_int_equal(fr.total_len, 5 + MQTT_MAX_REMAINING_LENGTH);

	/* flags and type come from the first byte */
	static const uint8_t pub[] = { 0x3B, 0x05, 0, 1, 't', 0, 7, 0x99 };
	assert_int_equal(mqtt_frame_parse(pub, sizeof pub, 0, &fr, &f), MOTE_OK);
	assert_int_equal(fr.type, 3);
	assert_int_equal(fr.flags, 0xB);
	assert_int_equal(fr.total_len, 7);

	/* decode: bytes past the frame, or the frame cut short */
	struct mqtt_packet p;
	assert_int_equal(mqtt_decode(pub, sizeof pub, V4, C, &p, &f), MOTE_EMALFORMED);
	assert_string_equal(f.why, "bytes after the end of the packet");
	assert_int_equal(mqtt_decode(pub, 7, V4, C, &p, &f), MOTE_OK);
	assert_true(p.u.publish.dup && p.u.publish.retain);
	assert_int_equal(p.u.publish.qos, 1);
	assert_int_equal(p.u.publish.packet_id, 7);
	assert_int_equal(mqtt_decode(pub, 6, V4, C, &p, &f), MOTE_EMALFORMED);
	assert_string_equal(f.why, "packet shorter than its remaining length");
	assert_int_equal(mqtt_decode(pub, 1, V4, C, &p, &f), MOTE_EMALFORMED);
	assert_string_equal(f.why, "packet shorter than its fixed header");
	assert_int_equal(mqtt_decode(NULL, 0, V4, C, &p, &f), MOTE_EMALFORMED);

	/* a version the caller should never pass */
	static const uint8_t ping[] = { 0xC0, 0x00 };
	assert_int_equal(mqtt_decode(ping, 2, 3, C, &p, &f), MOTE_EINVAL);
	assert_int_equal(mqtt_decode(ping, 2, 0, C, &p, &f), MOTE_EINVAL);
	assert_int_equal(mqtt_decode(ping, 2, V5, C, &p, &f), MOTE_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_near_misses_accepted),
		cmocka_unit_test(test_near_miss_values),
		cmocka_unit_test(test_connect_version_on_refusal),
		cmocka_unit_test(test_framing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
