/*
 * varint.c - the MQTT variable byte integer (5.0 section 1.5.5, 3.1.1
 * section 2.2.3): 7 bits per byte, least significant group first, the top
 * bit saying "more follows", at most four bytes (so at most 268435455).
 *
 * The decoder accepts any form of 1..4 bytes, including the non-minimal
 * ones that [MQTT-1.5.5-1] forbids senders to produce: refusing them buys
 * nothing and would reject peers that pad the remaining length. The encoder
 * always writes the minimal form.
 */
#include "mqtt/mqtt.h"

enum mote_err mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value,
				 uint32_t *used)
{
	uint32_t v = 0;
	for (uint32_t i = 0; i < 4; i++) {
		if (i >= len)
			return MOTE_EAGAIN;
		v |= (uint32_t)(buf[i] & 0x7f) << (7 * i);
		if (!(buf[i] & 0x80)) {
			*value = v;
			*used = i + 1;
			return MOTE_OK;
		}
	}
	return MOTE_EMALFORMED; /* a fifth byte would be needed */
}

uint32_t mqtt_varint_size(uint32_t value)
{
	if (value < 128u)
		return 1;
	if (value < 16384u)
		return 2;
	if (value < 2097152u)
		return 3;
	if (value <= MQTT_MAX_REMAINING_LENGTH)
		return 4;
	return 0;
}

uint32_t mqtt_varint_encode(uint32_t value, uint8_t *buf, size_t cap)
{
	uint32_t n = mqtt_varint_size(value);
	if (n == 0 || cap < n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)(value & 0x7f);
		value >>= 7;
		buf[i] = (uint8_t)(i + 1 < n ? (b | 0x80) : b);
	}
	return n;
}
