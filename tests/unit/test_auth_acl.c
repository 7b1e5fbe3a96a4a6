/*
 * test_auth_acl.c - the ACL engine: the three pattern relations (match,
 * cover, overlap) against a brute-force oracle built on mqtt_topic_match,
 * %c/%u substitution and its failure modes, deny-first evaluation, the
 * built-in roles, and the ACL file parser's refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/acl.h"
#include "mqtt/mqtt.h"

#define U(s) (const uint8_t *)(s), strlen(s)

static struct acl_subject who(const char *cid, const char *user)
{
	struct acl_subject w = { (const uint8_t *)cid, cid ? strlen(cid) : 0,
				 (const uint8_t *)user, user ? strlen(user) : 0 };
	return w;
}

static void test_match_substitution(void **state)
{
	(void)state;
	bool bad;
	struct acl_subject p1 = who("p1", "alice");
	assert_true(acl_pattern_matches("dev/%c/#", &p1, U("dev/p1/t"), &bad));
	assert_true(acl_pattern_matches("dev/%c/#", &p1, U("dev/p1"), &bad));
	assert_false(acl_pattern_matches("dev/%c/#", &p1, U("dev/p2/t"), &bad));
	assert_false(acl_pattern_matches("dev/%c/#", &p1, U("dev/p1x/t"), &bad));
	assert_false(bad);
	assert_true(acl_pattern_matches("u/%u/+", &p1, U("u/alice/x"), &bad));
	assert_false(acl_pattern_matches("u/%u/+", &p1, U("u/alice/x/y"), &bad));
	/* a client id that is not one level never widens access */
	struct acl_subject slash = who("a/b", NULL), plus = who("+", NULL), hash = who("#", NULL);
	assert_false(acl_pattern_matches("dev/%c/#", &slash, U("dev/a/b/t"), &bad));
	assert_true(bad);
	assert_false(acl_pattern_matches("dev/%c/#", &plus, U("dev/+/t"), &bad));
	assert_true(bad);
	assert_false(acl_pattern_covers("dev/%c/#", &hash, U("dev/#/x"), &bad));
	assert_false(acl_pattern_covers("dev/%c/#", &hash, U("dev/x/y"), &bad));
	assert_true(bad);
	assert_false(acl_pattern_overlaps("dev/%c/#", &hash, U("dev/+/y"), &bad));
	assert_true(bad);
	/* %u without a username */
	struct acl_subject nouser = who("c", NULL);
	assert_false(acl_pattern_matches("u/%u/#", &nouser, U("u//x"), &bad));
	assert_true(bad);
	/* a level that only contains %c is not substituted */
	assert_false(acl_pattern_matches("dev/x%c/#", &p1, U("dev/xp1/t"), &bad));
}

static void test_cover_overlap_examples(void **state)
{
	(void)state;
	bool bad;
	assert_true(acl_pattern_covers("a/#", NULL, U("a/+/c"), &bad));
	assert_true(acl_pattern_covers("a/#", NULL, U("a"), &bad));
	assert_true(acl_pattern_covers("#", NULL, U("#"), &bad));
	assert_true(acl_pattern_covers("a/+", NULL, U("a/b"), &bad));
	assert_false(acl_pattern_covers("a/+", NULL, U("a/#"), &bad));
	assert_false(acl_pattern_covers("a/b", NULL, U("a/+"), &bad));
	assert_false(acl_pattern_covers("a/b/#", NULL, U("#"), &bad));
	assert_true(acl_pattern_overlaps("a/private/#", NULL, U("a/#"), &bad));
	assert_true(acl_pattern_overlaps("a/private/#", NULL, U("a/+/x"), &bad));
	assert_false(acl_pattern_overlaps("a/private/#", NULL, U("b/#"), &bad));
	assert_true(acl_pattern_overlaps("a/#", NULL, U("a"), &bad));
	assert_false(acl_pattern_overlaps("a/b", NULL, U("a/b/c"), &bad));
}

/* ---- the oracle: every topic of up to 4 levels over {a, b, c, ""} ---- */

static const char *const level_words[] = { "a", "b", "c", "" };

static void topics_of(int depth, char (*out)[16], int *n)
{
	/* all topics with exactly `depth` levels */
	int total = 1;
	for (int i = 0; i < depth; i++)
		total *= 4;
	for (int k = 0; k < total; k++) {
		char t[16] = "";
		int x = k;
		for (int i = 0; i < depth; i++) {
			if (i)
				strcat(t, "/");
			strcat(t, level_words[x % 4]);
			x /= 4;
		}
		strcpy(out[(*n)++], t);
	}
}

static void test_relations_against_oracle(void **state)
{
	(void)state;
	static char topics[400][16];
	int nt = 0;
	for (int d = 1; d <= 4; d++)
		topics_of(d, topics, &nt);
	int valid = 0; /* the zero-length name is not a topic */
	for (int j = 0; j < nt; j++)
		if (mqtt_topic_name_valid(U(topics[j])))
			memmove(topics[valid++], topics[j], sizeof topics[j]);
	nt = valid;
	/* filters of up to 3 levels over {a, b, +, #} (valid ones only) */
	static const char *const fw[] = { "a", "b", "+", "#" };
	char filters[100][16];
	int nf = 0;
	for (int d = 1; d <= 3; d++) {
		int total = d == 1 ? 4 : d == 2 ? 16 : 64;
		for (int k = 0; k < total; k++) {
			char f[16] = "";
			int x = k;
			for (int i = 0; i < d; i++) {
				if (i)
					strcat(f, "/");
				strcat(f, fw[x % 4]);
				x /= 4;
			}
			if (mqtt_topic_filter_valid(U(f)))
				strcpy(filters[nf++], f);
		}
	}
	bool bad;
	for (int i = 0; i < nf; i++) {
		for (int j = 0; j < nt; j++)
			if (acl_pattern_matches(filters[i], NULL, U(topics[j]), &bad) !=
			    mqtt_topic_match(U(filters[i]), U(topics[j])))
				fail_msg("pattern %s topic '%s': matches %d", filters[i], topics[j],
					 mqtt_topic_match(U(filters[i]), U(topics[j])));
		for (int k = 0; k < nf; k++) {
			bool covers = true, overlaps = false;
			for (int j = 0; j < nt; j++) {
				bool in_f = mqtt_topic_match(U(filters[k]), U(topics[j]));
				bool in_p = mqtt_topic_match(U(filters[i]), U(topics[j]));
				if (in_f && !in_p)
					covers = false;
				if (in_f && in_p)
					overlaps = true;
			}
			if (acl_pattern_covers(filters[i], NULL, U(filters[k]), &bad) != covers ||
			    acl_pattern_overlaps(filters[i], NULL, U(filters[k]), &bad) != overlaps)
				fail_msg("pattern %s filter %s: covers %d overlaps %d", filters[i],
					 filters[k], covers, overlaps);
		}
	}
}

static void test_builtin_roles(void **state)
{
	(void)state;
	struct acl *a;
	char err[200];
	assert_int_equal(acl_parse(NULL, 0, &a, err, sizeof err), MOTE_OK);
	struct acl_subject d = who("pump1", NULL);
	int dev = ACL_ROLE_DEVICE;
	assert_int_equal(acl_role_find(a, "device", strlen("device")), dev);
	assert_true(acl_may_publish(a, dev, &d, U("dev/pump1/telemetry")));
	assert_true(acl_may_publish(a, dev, &d, U("$twin/pump1/update")));
	assert_true(acl_may_publish(a, dev, &d, U("$ota/pump1/status")));
	assert_false(acl_may_publish(a, dev, &d, U("dev/pump2/telemetry")));
	assert_false(acl_may_publish(a, dev, &d, U("cmd/pump1/x")));
	assert_true(acl_may_subscribe(a, dev, &d, U("cmd/pump1/#")));
	assert_true(acl_may_subscribe(a, dev, &d, U("$twin/pump1/update/delta")));
	assert_false(acl_may_subscribe(a, dev, &d, U("#")));
	assert_false(acl_may_subscribe(a, dev, &d, U("cmd/+/#")));
	assert_false(acl_may_subscribe(a, dev, &d, U("dev/pump1/#")));
	assert_false(acl_may_subscribe(a, dev, &d, U("$share/g/cmd/pump2/#")));
	assert_true(acl_may_subscribe(a, dev, &d, U("$share/g/cmd/pump1/#")));
	/* claim: only its own CSR topic */
	assert_true(acl_may_publish(a, ACL_ROLE_CLAIM, &d, U("$provision/pump1/csr")));
	assert_false(acl_may_publish(a, ACL_ROLE_CLAIM, &d, U("dev/pump1/telemetry")));
	assert_false(acl_may_publish(a, ACL_ROLE_CLAIM, &d, U("$provision/pump2/csr")));
	assert_true(acl_may_subscribe(a, ACL_ROLE_CLAIM, &d, U("$provision/pump1/#")));
	/* admin: anything but $SYS and the hub's provisioning answers */
	assert_true(acl_may_publish(a, ACL_ROLE_ADMIN, &d, U("cmd/pump1/reboot")));
	assert_false(acl_may_publish(a, ACL_ROLE_ADMIN, &d, U("$SYS/broker/x")));
	assert_false(acl_may_publish(a, ACL_ROLE_ADMIN, &d, U("$provision/pump1/cert")));
	assert_true(acl_may_subscribe(a, ACL_ROLE_ADMIN, &d, U("#")));
	assert_true(acl_may_subscribe(a, ACL_ROLE_READ, &d, U("$SYS/#")));
	assert_false(acl_may_publish(a, ACL_ROLE_READ, &d, U("a")));
	assert_false(acl_may_publish(a, 99, &d, U("a")));
	acl_free(a);
}

static void test_file_deny_first(void **state)
{
	(void)state;
	static const char text[] = "# tenants\n"
				   "role tenant\n"
				   "  allow readwrite tenants/%u/#\n"
				   "  deny write tenants/%u/private/#\r\n"
				   "\n"
				   "role ops\n"
				   "allow read #\n";
	struct acl *a;
	char err[200];
	assert_int_equal(acl_parse(text, strlen(text), &a, err, sizeof err), MOTE_OK);
	int t = acl_role_find(a, "tenant", strlen("tenant"));
	assert_true(t >= ACL_ROLE_BUILTIN_COUNT_);
	struct acl_subject al = who("c1", "alice"), evil = who("c2", "a/b");
	assert_true(acl_may_publish(a, t, &al, U("tenants/alice/x")));
	/* the deny rule wins although an allow rule comes first */
	assert_false(acl_may_publish(a, t, &al, U("tenants/alice/private/x")));
	assert_true(acl_may_subscribe(a, t, &al, U("tenants/alice/private/x")));
	assert_false(acl_may_publish(a, t, &al, U("tenants/bob/x")));
	/* a username that is not one level: allow rules fail, deny rules hold */
	assert_false(acl_may_publish(a, t, &evil, U("tenants/a/b/x")));
	int ops = acl_role_find(a, "ops", strlen("ops"));
	assert_true(acl_may_subscribe(a, ops, &al, U("#")));
	assert_false(acl_may_publish(a, ops, &al, U("x")));
	acl_free(a);
}

static void test_file_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *says;
	} bad[] = {
		{ "allow read a\n", "line 1: a rule before" },
		{ "role r\nallow sometimes a\n", "line 2: access" },
		{ "role r\nallow read a/#/b\n", "line 2:" },
		{ "role r\nallow read a/%x\n", "line 2:" },
		{ "role r\nallow read a/b%c\n", "line 2:" },
		{ "role r\nallow read\n", "line 2: want" },
		{ "role r\nallow read a b\n", "line 2: want" },
		{ "role admin\n", "built in" },
		{ "role r\nrole r\n", "defined twice" },
		{ "role bad/name\n", "role name" },
		{ "permit read a\n", "line 1:" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct acl *a = NULL;
		char err[200] = "";
		assert_int_equal(acl_parse(bad[i].text, strlen(bad[i].text), &a, err, sizeof err),
				 MOTE_EINVAL);
		if (!strstr(err, bad[i].says))
			fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err, bad[i].says);
		assert_null(a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_substitution),
		cmocka_unit_test(test_cover_overlap_examples),
		cmocka_unit_test(test_relations_against_oracle),
		cmocka_unit_test(test_builtin_roles),
		cmocka_unit_test(test_file_deny_first),
		cmocka_unit_test(test_file_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
