/*
 * test_mqtt_utf8.c - mqtt_utf8_valid against the example of 5.0 section
 * 1.5.4 (3.1.1 section 1.5.3) and the edges of RFC 3629: every length's
 * first and last code point, overlong forms, surrogates, U+0000, values
 * above U+10FFFF, truncated and stray continuation bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define OK(s) assert_true(mqtt_utf8_valid((const uint8_t *)(s), sizeof(s) - 1))
#define BAD(s) assert_false(mqtt_utf8_valid((const uint8_t *)(s), sizeof(s) - 1))

static void test_spec_example(void **state)
{
	(void)state;
	/* "A" followed by U+2A6D4 (CJK ideograph extension B): the spec
	 * encodes it as 0x00 0x05 0x41 0xF0 0xAA 0x9B 0x94. */
	static const uint8_t s[] = { 0x41, 0xF0, 0xAA, 0x9B, 0x94 };
	assert_true(mqtt_utf8_valid(s, sizeof s));
	/* any truncation of the 4-byte sequence is ill-formed */
	for (size_t k = 2; k < sizeof s; k++)
		assert_false(mqtt_utf8_valid(s, k));
	/* as does dropping the lead byte */
	assert_false(mqtt_utf8_valid(s + 2, 3));
}

static void test_boundaries(void **state)
{
	(void)state;
	OK("");
	OK("\x01");              /* U+0001: legal, only "SHOULD NOT" */
	OK("\x7F");              /* U+007F */
	OK("\xC2\x80");          /* U+0080 */
	OK("\xDF\xBF");          /* U+07FF */
	OK("\xE0\xA0\x80");      /* U+0800 */
	OK("\xED\x9F\xBF");      /* U+D7FF, last before the surrogates */
	OK("\xEE\x80\x80");      /* U+E000, first after them */
	OK("\xEF\xBF\xBF");      /* U+FFFF (a non-character, still legal) */
	OK("\xEF\xBB\xBF");      /* U+FEFF BOM: [MQTT-1.5.4-3] must not be skipped */
	OK("\xF0\x90\x80\x80");  /* U+10000 */
	OK("\xF4\x8F\xBF\xBF");  /* U+10FFFF */
	OK("a/b/\xC3\xA9t\xC3\xA9");
}

static void test_invalid(void **state)
{
	(void)state;
	static const uint8_t nul[] = { 'a', 0x00, 'b' };
	assert_false(mqtt_utf8_valid(nul, sizeof nul)); /* [MQTT-1.5.4-2] */
	BAD("\xC0\x80");         /* overlong U+0000 */
	BAD("\xC1\xBF");         /* overlong U+007F */
	BAD("\xE0\x9F\xBF");     /* overlong U+07FF */
	BAD("\xF0\x8F\xBF\xBF"); /* overlong U+FFFF */
	BAD("\xED\xA0\x80");     /* U+D800 [MQTT-1.5.4-1] */
	BAD("\xED\xBF\xBF");     /* U+DFFF */
	BAD("\xF4\x90\x80\x80"); /* U+110000 */
	BAD("\xF5\x80\x80\x80");
	BAD("\xFF");
	BAD("\x80");             /* stray continuation */
	BAD("a\xBF");
	BAD("\xC3");             /* truncated */
	BAD("\xE2\x82");
	BAD("\xC3\x28");         /* continuation missing */
	BAD("\xE2\x28\xA1");
	BAD("\xE2\x82\x28");
	BAD("\xF0\x90\x28\xBC");
	BAD("\xF0\x90\x80\x28");
}

/* Every 2-byte lead against every second byte, checked by arithmetic. */
static void test_two_byte_space(void **state)
{
	(void)state;
	for (unsigned a = 0x80; a <= 0xFF; a++) {
		for (unsigned b = 0; b <= 0xFF; b++) {
			uint8_t s[2] = { (uint8_t)a, (uint8_t)b };
			bool want = a >= 0xC2 && a <= 0xDF && b >= 0x80 && b <= 0xBF;
			if (a >= 0xE0)
				want = false; /* leads of longer forms, truncated */
			assert_int_equal(mqtt_utf8_valid(s, 2), want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_two_byte_space),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
