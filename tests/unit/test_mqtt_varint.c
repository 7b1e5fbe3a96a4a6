/*
 * test_mqtt_varint.c - the variable byte integer against the table of
 * 5.0 section 1.5.5 (3.1.1 section 2.2.3), plus the edges: truncation,
 * a fifth byte, non-minimal forms, values too large, small buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

struct vec {
	uint32_t value;
	uint8_t bytes[4];
	uint32_t len;
};

/* The boundaries of each length, as the spec's table lists them. */
static const struct vec table[] = {
	{ 0, { 0x00 }, 1 },
	{ 127, { 0x7F }, 1 },
	{ 128, { 0x80, 0x01 }, 2 },
	{ 16383, { 0xFF, 0x7F }, 2 },
	{ 16384, { 0x80, 0x80, 0x01 }, 3 },
	{ 2097151, { 0xFF, 0xFF, 0x7F }, 3 },
	{ 2097152, { 0x80, 0x80, 0x80, 0x01 }, 4 },
	{ 268435455, { 0xFF, 0xFF, 0xFF, 0x7F }, 4 },
	/* not in the table: a value with every group distinct */
	{ 321, { 0xC1, 0x02 }, 2 },
};

static void test_spec_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		const struct vec *v = &table[i];
		uint8_t buf[8];
		memset(buf, 0xAA, sizeof buf);
		assert_int_equal(mqtt_varint_size(v->value), v->len);
		assert_int_equal(mqtt_varint_encode(v->value, buf, sizeof buf), v->len);
		assert_memory_equal(buf, v->bytes, v->len);
		assert_int_equal(buf[v->len], 0xAA); /* nothing written past */

		uint32_t value = 0, used = 0;
		assert_int_equal(mqtt_varint_decode(v->bytes, v->len, &value, &used), MOTE_OK);
		assert_int_equal(value, v->value);
		assert_int_equal(used, v->len);
		/* every shorter prefix asks for more */
		for (uint32_t k = 0; k < v->len; k++)
			assert_int_equal(mqtt_varint_decode(v->bytes, k, &value, &used),
					 MOTE_EAGAIN);
		/* too small a buffer writes nothing useful and says 0 */
		assert_int_equal(mqtt_varint_encode(v->value, buf, v->len - 1), 0);
	}
}

static void test_too_large(void **state)
{
	(void)state;
	uint8_t buf[8];
	assert_int_equal(mqtt_varint_size(MQTT_MAX_REMAINING_LENGTH + 1), 0);
	assert_int_equal(mqtt_varint_encode(MQTT_MAX_REMAINING_LENGTH + 1, buf, sizeof buf), 0);
	assert_int_equal(mqtt_varint_encode(UINT32_MAX, buf, sizeof buf), 0);

	/* a fifth byte would be needed: malformed, not "need more" */
	static const uint8_t five[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x01 };
	uint32_t value, used;
	assert_int_equal(mqtt_varint_decode(five, sizeof five, &value, &used), MOTE_EMALFORMED);
	assert_int_equal(mqtt_varint_decode(five, 4, &value, &used), MOTE_EMALFORMED);
}

static void test_non_minimal_and_trailing(void **state)
{
	(void)state;
	uint32_t value, used;
	/* 0 in two bytes: decodable (see varint.c), never produced */
	static const uint8_t zero2[] = { 0x80, 0x00 };
	assert_int_equal(mqtt_varint_decode(zero2, 2, &value, &used), MOTE_OK);
	assert_int_equal(value, 0);
	assert_int_equal(used, 2);
	/* bytes after the last one are not consumed */
	static const uint8_t more[] = { 0x05, 0xFF, 0xFF };
	assert_int_equal(mqtt_varint_decode(more, 3, &value, &used), MOTE_OK);
	assert_int_equal(value, 5);
	assert_int_equal(used, 1);
}

/* encode/decode agree for every value around each power of 128. */
static void test_all_boundaries(void **state)
{
	(void)state;
	for (uint32_t shift = 0; shift <= 28; shift += 7) {
		uint32_t base = shift == 28 ? MQTT_MAX_REMAINING_LENGTH : (1u << shift);
		for (uint32_t v = base - 1; v <= base + 1 && v <= MQTT_MAX_REMAINING_LENGTH; v++) {
			uint8_t buf[4];
			uint32_t n = mqtt_varint_encode(v, buf, sizeof buf), got, used;
			assert_true(n >= 1 && n <= 4);
			assert_int_equal(mqtt_varint_decode(buf, n, &got, &used), MOTE_OK);
			assert_int_equal(got, v);
			assert_int_equal(used, n);
			assert_int_equal(n, mqtt_varint_size(v));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_table),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_non_minimal_and_trailing),
		cmocka_unit_test(test_all_boundaries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
