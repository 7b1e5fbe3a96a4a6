/*
 * test_mqtt_topic.c - topic name and filter validity, shared subscription
 * splitting, and matching (5.0 sections 4.7 and 4.8.2, including the
 * non-normative examples of 4.7.1.2 and 4.7.1.3 and the '$' rule of 4.7.2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt/mqtt.h"

#define U(s) (const uint8_t *)(s), strlen(s)

static void test_names(void **state)
{
	(void)state;
	assert_true(mqtt_topic_name_valid(U("a")));
	assert_true(mqtt_topic_name_valid(U("/")));
	assert_true(mqtt_topic_name_valid(U("a//b/")));
	assert_true(mqtt_topic_name_valid(U("$SYS/broker")));
	assert_true(mqtt_topic_name_valid(U("sport/tennis/player1")));
	assert_true(mqtt_topic_name_valid(U(" ")));
	assert_false(mqtt_topic_name_valid(U("")));
	assert_false(mqtt_topic_name_valid(U("a/+")));
	assert_false(mqtt_topic_name_valid(U("a/#")));
	assert_false(mqtt_topic_name_valid(U("a+b")));
	assert_false(mqtt_topic_name_valid(U("\xC0\x80")));
	static const uint8_t nul[] = { 'a', 0 };
	assert_false(mqtt_topic_name_valid(nul, 2));

	/* 65535 bytes is the limit */
	uint8_t *big = malloc(65536);
	assert_non_null(big);
	memset(big, 'x', 65536);
	assert_true(mqtt_topic_name_valid(big, 65535));
	assert_false(mqtt_topic_name_valid(big, 65536));
	assert_true(mqtt_topic_filter_valid(big, 65535));
	assert_false(mqtt_topic_filter_valid(big, 65536));
	free(big);
}

static void test_filters(void **state)
{
	(void)state;
	static const char *const good[] = {
		"#", "+", "+/+", "/+", "+/", "sport/#", "sport/tennis/#", "sport/+/player1",
		"+/tennis/#", "a//b", "/", "$SYS/#", "$share/g/a/b", "$share/g/#",
		"$share/g/+/x", "$share/g//", "$share", "$sharex/y", "a/$share/g/x",
	};
	static const char *const bad[] = {
		"", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "a/+b", "+a", "##",
		"#/", "a/#b", "$share/", "$share/g", "$share/g/", "$share//a", "$share/g+/a",
		"$share/#/a", "$share/+/a", "$share/g/a+",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!mqtt_topic_filter_valid(U(good[i])))
			fail_msg("\"%s\" should be a valid filter", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (mqtt_topic_filter_valid(U(bad[i])))
			fail_msg("\"%s\" should be an invalid filter", bad[i]);
	assert_false(mqtt_topic_filter_valid(U("a/\xED\xA0\x80")));
}

static void test_shared_split(void **state)
{
	(void)state;
	struct mqtt_str g, f;
	const char *s = "$share/grp/a/+/c";
	assert_true(mqtt_shared_split(U(s), &g, &f));
	assert_int_equal(g.len, 3);
	assert_memory_equal(g.p, "grp", 3);
	assert_ptr_equal(g.p, (const uint8_t *)s + 7);
	assert_int_equal(f.len, 5);
	assert_memory_equal(f.p, "a/+/c", 5);
	assert_true(mqtt_shared_split(U("$share/g/#"), &g, &f));
	assert_int_equal(f.len, 1);
	assert_false(mqtt_shared_split(U("$share"), &g, &f));
	assert_false(mqtt_shared_split(U("$sharegrp/a"), &g, &f));
	assert_false(mqtt_shared_split(U("a/$share/g/x"), &g, &f));
	assert_false(mqtt_shared_split(U("$SYS/x"), &g, &f));
}

struct match {
	const char *filter, *name;
	bool want;
};

static const struct match matches[] = {
	/* 4.7.1.2 */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true },
	{ "sport/#", "sport", true },
	{ "#", "a", true },
	{ "#", "a/b/c", true },
	{ "#", "/", true },
	{ "a/#", "a", true },
	{ "a/#", "a/b/c", true },
	{ "a/#", "ab", false },
	{ "a/#", "b/a", false },
	/* 4.7.1.3 */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+/+", "/", true },
	{ "+", "a", true },
	{ "+", "", false },
	{ "a/+", "a/b/c", false },
	{ "a/+/c", "a/b/c", true },
	{ "a/+/c", "a//c", true },
	{ "a/+/#", "a/b", true },
	{ "a/+/#", "a", false },
	{ "+/#", "a", true },
	/* 4.7.2: the '$' rule */
	{ "#", "$SYS/x", false },
	{ "+/x", "$SYS/x", false },
	{ "+", "$SYS", false },
	{ "$SYS/#", "$SYS/x", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/+", "$SYS/x", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "a/#", "a/$x", true },
	/* literals */
	{ "a/b", "a/b", true },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b", false },
	{ "a/b", "a/bc", false },
	{ "a/bc", "a/b", false },
	{ "A/b", "a/b", false },
	{ "a//b", "a//b", true },
	{ "a//b", "a/b", false },
};

static void test_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
		const struct match *m = &matches[i];
		bool got = mqtt_topic_match(U(m->filter), U(m->name));
		if (got != m->want)
			fail_msg("match(\"%s\", \"%s\") = %d, want %d", m->filter, m->name, got,
				 m->want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_shared_split),
		cmocka_unit_test(test_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
