/*
 * test_twin_doc.c - the twin document rules (src/twin/doc.h): deep merge,
 * null deletes, whole arrays, empty objects removed, per-leaf metadata,
 * versions, the recursive delta, the request shapes and every way a request
 * is refused (400 malformed or out of shape, 413 too big), including
 * hostile input: deep nesting, huge and duplicate keys, bytes that are not
 * UTF-8, numbers out of range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "twin/doc.h"

static struct twin_limits lim(void)
{
	struct twin_limits l;
	twin_limits_defaults(&l);
	return l;
}

/* JSON equality, with a readable failure. */
static void assert_json(const cJSON *got, const char *want)
{
	cJSON *w = cJSON_Parse(want);
	assert_non_null(w);
	if (!cJSON_Compare(got, w, 1)) {
		char *g = cJSON_PrintUnformatted(got);
		print_error("got  %s\nwant %s\n", g ? g : "(null)", want);
		cJSON_free(g);
		cJSON_Delete(w);
		fail();
	}
	cJSON_Delete(w);
}

static int parse(enum twin_req kind, const char *s, const struct twin_limits *l, char *msg,
		 size_t cap)
{
	struct twin_request req;
	int st = twin_request_parse((const uint8_t *)s, strlen(s), kind, l, &req, msg, cap);
	twin_request_free(&req);
	return st;
}

static int status_of(const char *s)
{
	struct twin_limits l = lim();
	char msg[256] = "";
	int st = parse(TWIN_REQ_UPDATE, s, &l, msg, sizeof msg);
	if (st)
		assert_true(msg[0] != '\0'); /* every refusal says why */
	return st;
}

/* Parses an update and applies it; returns the status. */
static int apply(struct twin_doc *d, const char *s, int64_t now, const struct twin_limits *l)
{
	struct twin_request req;
	char msg[256] = "";
	int st = twin_request_parse((const uint8_t *)s, strlen(s), TWIN_REQ_UPDATE, l, &req, msg,
				    sizeof msg);
	if (!st)
		st = twin_doc_apply(d, &req, now, l, msg, sizeof msg);
	twin_request_free(&req);
	return st;
}

static void apply_ok(struct twin_doc *d, const char *s, int64_t now)
{
	struct twin_limits l = lim();
	assert_int_equal(apply(d, s, now, &l), 0);
}

static void test_merge(void **state)
{
	(void)state;
	struct twin_doc d;
	assert_true(twin_doc_init(&d, 1));
	assert_int_equal(d.version, 0);
	apply_ok(&d, "{\"state\":{\"desired\":{\"a\":1,\"b\":{\"c\":2}}}}", 10);
	apply_ok(&d, "{\"state\":{\"desired\":{\"b\":{\"d\":3},\"e\":\"x\"}}}", 20);
	assert_json(d.desired, "{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":\"x\"}");
	assert_json(d.reported, "{}");
	/* a scalar replaces an object and an object a scalar */
	apply_ok(&d, "{\"state\":{\"desired\":{\"b\":5,\"a\":{\"z\":true}}}}", 30);
	assert_json(d.desired, "{\"a\":{\"z\":true},\"b\":5,\"e\":\"x\"}");
	assert_json(d.meta_desired, "{\"a\":{\"z\":{\"timestamp\":30}},\"b\":{\"timestamp\":30},"
				    "\"e\":{\"timestamp\":20}}");
	assert_int_equal(d.version, 3);
	assert_int_equal(d.timestamp, 30);
	/* both sections in one update */
	apply_ok(&d, "{\"state\":{\"desired\":{\"e\":\"y\"},\"reported\":{\"e\":\"y\"}}}", 40);
	assert_json(d.reported, "{\"e\":\"y\"}");
	assert_int_equal(d.version, 4);
	twin_doc_free(&d);
}

static void test_null_delete(void **state)
{
	(void)state;
	struct twin_doc d;
	assert_true(twin_doc_init(&d, 1));
	apply_ok(&d, "{\"state\":{\"reported\":{\"a\":1,\"b\":{\"c\":{\"d\":2},\"e\":3}}}}", 10);
	apply_ok(&d, "{\"state\":{\"reported\":{\"b\":{\"e\":null}}}}", 20);
	assert_json(d.reported, "{\"a\":1,\"b\":{\"c\":{\"d\":2}}}");
	assert_json(d.meta_reported, "{\"a\":{\"timestamp\":10},\"b\":{\"c\":{\"d\":{\"timestamp\":10}}}}");
	/* deleting the last key removes the objects it leaves empty */
	apply_ok(&d, "{\"state\":{\"reported\":{\"b\":{\"c\":{\"d\":null}}}}}", 30);
	assert_json(d.reported, "{\"a\":1}");
	assert_json(d.meta_reported, "{\"a\":{\"timestamp\":10}}");
	/* deleting what is not there changes nothing but the version */
	apply_ok(&d, "{\"state\":{\"reported\":{\"zz\":null,\"q\":{\"r\":null}}}}", 40);
	assert_json(d.reported, "{\"a\":1}");
	assert_json(d.meta_reported, "{\"a\":{\"timestamp\":10}}");
	assert_int_equal(d.version, 4);
	/* an empty object sets nothing */
	apply_ok(&d, "{\"state\":{\"reported\":{\"e\":{}}}}", 50);
	assert_json(d.reported, "{\"a\":1}");
	/* null for a whole section clears it */
	apply_ok(&d, "{\"state\":{\"desired\":{\"x\":1},\"reported\":null}}", 60);
	assert_json(d.reported, "{}");
	assert_json(d.meta_reported, "{}");
	assert_json(d.desired, "{\"x\":1}");
	twin_doc_free(&d);
}

static void test_arrays(void **state)
{
	(void)state;
	struct twin_doc d;
	assert_true(twin_doc_init(&d, 1));
	apply_ok(&d, "{\"state\":{\"desired\":{\"l\":[1,2,3],\"o\":[{\"a\":1},{\"b\":2}]}}}", 10);
	apply_ok(&d, "{\"state\":{\"desired\":{\"l\":[4],\"o\":[{\"c\":null}]}}}", 20);
	/* replaced whole: no merge by index, nulls inside arrays are values */
	assert_json(d.desired, "{\"l\":[4],\"o\":[{\"c\":null}]}");
	/* an array is one leaf for metadata */
	assert_json(d.meta_desired, "{\"l\":{\"timestamp\":20},\"o\":{\"timestamp\":20}}");
	apply_ok(&d, "{\"state\":{\"desired\":{\"l\":[]}}}", 30);
	assert_json(d.desired, "{\"l\":[],\"o\":[{\"c\":null}]}");
	twin_doc_free(&d);
}

static void test_delta(void **state)
{
	(void)state;
	struct twin_doc d;
	assert_true(twin_doc_init(&d, 1));
	apply_ok(&d,
		 "{\"state\":{\"desired\":{\"a\":1,\"b\":{\"c\":2,\"d\":3,\"x\":{\"y\":1}},"
		 "\"e\":[1,2],\"f\":{\"g\":1},\"h\":\"s\",\"n\":1.5},"
		 "\"reported\":{\"a\":1,\"b\":{\"c\":2,\"d\":4,\"x\":{\"y\":1}},\"e\":[1,3],"
		 "\"f\":7,\"n\":1.5,\"only\":true}}}",
		 10);
	cJSON *delta = twin_doc_delta(&d);
	/* recursive inside objects, whole arrays, whole objects against a
	 * scalar, keys missing from reported; reported-only keys never */
	assert_json(delta, "{\"b\":{\"d\":3},\"e\":[1,2],\"f\":{\"g\":1},\"h\":\"s\"}");
	cJSON *dm = twin_doc_delta_meta(&d, delta);
	assert_json(dm, "{\"b\":{\"d\":{\"timestamp\":10}},\"e\":{\"timestamp\":10},"
			"\"f\":{\"g\":{\"timestamp\":10}},\"h\":{\"timestamp\":10}}");
	cJSON_Delete(delta);
	cJSON_Delete(dm);

	/* the device catches up: no delta */
	apply_ok(&d,
		 "{\"state\":{\"reported\":{\"b\":{\"d\":3},\"e\":[1,2],\"f\":{\"g\":1},\"h\":\"s\"}}}",
		 20);
	delta = twin_doc_delta(&d);
	assert_json(delta, "{}");
	cJSON_Delete(delta);

	/* types matter: 1 is not "1", true is not 1 */
	apply_ok(&d, "{\"state\":{\"desired\":{\"t\":1,\"u\":true},\"reported\":{\"t\":\"1\",\"u\":1}}}",
		 30);
	delta = twin_doc_delta(&d);
	assert_json(delta, "{\"t\":1,\"u\":true}");
	cJSON *doc = twin_doc_json(&d, NULL);
	assert_json(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "state"), "delta"),
		    "{\"t\":1,\"u\":true}");
	assert_int_equal(cJSON_GetObjectItem(doc, "version")->valuedouble, 3);
	assert_int_equal(cJSON_GetObjectItem(doc, "timestamp")->valuedouble, 30);
	cJSON_Delete(doc);
	cJSON_Delete(delta);
	twin_doc_free(&d);
}

static void test_metadata_and_versions(void **state)
{
	(void)state;
	struct twin_doc d;
	assert_true(twin_doc_init(&d, 5));
	assert_int_equal(d.timestamp, 5);
	apply_ok(&d, "{\"state\":{\"reported\":{\"a\":1}}}", 100);
	apply_ok(&d, "{\"state\":{\"reported\":{\"b\":1}}}", 200);
	/* the same value written again is still a write: new timestamp */
	apply_ok(&d, "{\"state\":{\"reported\":{\"a\":1}}}", 300);
	assert_json(d.meta_reported, "{\"a\":{\"timestamp\":300},\"b\":{\"timestamp\":200}}");
	assert_int_equal(d.version, 3);
	/* a key called timestamp is state like any other */
	apply_ok(&d, "{\"state\":{\"reported\":{\"c\":{\"timestamp\":9}}}}", 400);
	assert_json(d.meta_reported, "{\"a\":{\"timestamp\":300},\"b\":{\"timestamp\":200},"
				     "\"c\":{\"timestamp\":{\"timestamp\":400}}}");
	/* the metadata of a request mirrors it, nulls included */
	cJSON *r = cJSON_Parse("{\"x\":{\"y\":null,\"z\":[1]},\"w\":2}");
	cJSON *m = twin_request_meta(r, 7);
	assert_json(m, "{\"x\":{\"y\":{\"timestamp\":7},\"z\":{\"timestamp\":7}},"
		       "\"w\":{\"timestamp\":7}}");
	cJSON_Delete(r);
	cJSON_Delete(m);
	twin_doc_free(&d);
}

static void test_request_shapes(void **state)
{
	(void)state;
	struct twin_limits l = lim();
	char msg[256];
	struct twin_request req;
	const char *ok = "{\"state\":{\"reported\":{\"a\":1}},\"version\":3,\"clientToken\":\"t-1\"}";
	assert_int_equal(twin_request_parse((const uint8_t *)ok, strlen(ok), TWIN_REQ_UPDATE, &l,
					    &req, msg, sizeof msg),
			 0);
	assert_true(req.has_version);
	assert_int_equal(req.version, 3);
	assert_true(req.has_token);
	assert_string_equal(req.token, "t-1");
	assert_null(req.desired);
	assert_non_null(req.reported);
	twin_request_free(&req);

	/* get: empty, blank or a token only */
	assert_int_equal(parse(TWIN_REQ_GET, "", &l, msg, sizeof msg), 0);
	assert_int_equal(parse(TWIN_REQ_GET, " \r\n", &l, msg, sizeof msg), 0);
	assert_int_equal(parse(TWIN_REQ_GET, "{}", &l, msg, sizeof msg), 0);
	assert_int_equal(parse(TWIN_REQ_GET, "{\"clientToken\":\"x\"}", &l, msg, sizeof msg), 0);
	assert_int_equal(parse(TWIN_REQ_GET, "{\"state\":{}}", &l, msg, sizeof msg), 400);
	assert_int_equal(parse(TWIN_REQ_GET, "{", &l, msg, sizeof msg), 400);

	/* patch: desired (object or null), version, clientToken */
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"desired\":{\"a\":1},\"version\":0}", &l, msg,
			       sizeof msg),
			 0);
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"desired\":null}", &l, msg, sizeof msg), 0);
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"version\":1}", &l, msg, sizeof msg), 400);
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"desired\":{},\"reported\":{}}", &l, msg,
			       sizeof msg),
			 400);
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"state\":{\"desired\":{}}}", &l, msg, sizeof msg),
			 400);
	assert_int_equal(parse(TWIN_REQ_PATCH, "{\"desired\":[1]}", &l, msg, sizeof msg), 400);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"   ",
		"{",
		"{\"state\":",
		"{\"state\":{\"desired\":{\"a\":1}}",        /* truncated */
		"{\"state\":{\"desired\":{\"a\":1}}}}",      /* trailing garbage */
		"{\"state\":{\"desired\":{\"a\":1}}} x",
		"{'state':{}}",
		"{\"state\":{\"desired\":{\"a\":01}}}",
		"{\"state\":{\"desired\":{\"a\":1.}}}",
		"{\"state\":{\"desired\":{\"a\":-}}}",
		"{\"state\":{\"desired\":{\"a\":1e}}}",
		"{\"state\":{\"desired\":{\"a\":1e+}}}",
		"{\"state\":{\"desired\":{\"a\":+1}}}",
		"{\"state\":{\"desired\":{\"a\":.5}}}",
		"{\"state\":{\"desired\":{\"a\":0x10}}}",
		"{\"state\":{\"desired\":{\"a\":1-2}}}",
		"{\"state\":{\"desired\":{\"a\":\"x\" \"y\"}}}",
		"{\"state\":{\"desired\":{\"a\":tru}}}",
		"{\"state\":{\"desired\":{\"a\":\"\\x\"}}}",
		"{\"state\":{\"desired\":{\"a\":\"tab\there\"}}}",
		"{\"state\":{\"desired\":{\"a\":NaN}}}",
		"{\"state\":{\"desired\":{\"a\":\"\\ud800\"}}}", /* lone surrogate */
		"null",
		"[]",
		"42",
		"\"state\"",
		"{}",                                          /* no state */
		"{\"state\":null}",
		"{\"state\":[]}",
		"{\"state\":{}}",                              /* neither section */
		"{\"state\":{\"desired\":1}}",
		"{\"state\":{\"desired\":[]}}",
		"{\"state\":{\"desired\":\"x\"}}",
		"{\"state\":{\"delta\":{}}}",                  /* unknown key in state */
		"{\"state\":{\"reported\":{}},\"extra\":1}",   /* unknown top-level key */
		"{\"state\":{\"reported\":{}},\"metadata\":{}}",
		"{\"state\":{\"reported\":{}},\"version\":\"1\"}",
		"{\"state\":{\"reported\":{}},\"version\":-1}",
		"{\"state\":{\"reported\":{}},\"version\":1.5}",
		"{\"state\":{\"reported\":{}},\"version\":true}",
		"{\"state\":{\"reported\":{}},\"version\":null}",
		"{\"state\":{\"reported\":{}},\"version\":1e300}",
		"{\"state\":{\"reported\":{}},\"clientToken\":5}",
		"{\"state\":{\"reported\":{}},\"clientToken\":null}",
		"{\"state\":{\"reported\":{\"n\":1e999}}}",    /* not finite */
		"{\"state\":{\"reported\":{\"n\":[-1e999]}}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int st = status_of(bad[i]);
		if (st != 400)
			print_error("input %zu: %s -> %d\n", i, bad[i], st);
		assert_int_equal(st, 400);
	}
	assert_int_equal(status_of("{\"state\":{\"reported\":{}},\"version\":0}"), 0);
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"a\":-0.5e-3,\"b\":10E+2,"
				   "\"c\":0,\"d\":\"-01 .5 in a string\\\\\",\"e\":[-1,2]}}}"),
			 0);
	assert_int_equal(status_of("{\"state\":{\"reported\":{}},\"version\":9007199254740992}"), 0);
}

static void test_client_token(void **state)
{
	(void)state;
	struct twin_limits l = lim();
	char msg[256], body[256];
	struct twin_request req;
	char tok[80];
	memset(tok, 'k', 64);
	tok[64] = '\0';
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{}},\"clientToken\":\"%s\"}", tok);
	assert_int_equal(status_of(body), 0);
	strcat(tok, "k");
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{}},\"clientToken\":\"%s\"}", tok);
	assert_int_equal(status_of(body), 400);

	/* refused for another reason: the token is still there to echo */
	const char *s = "{\"clientToken\":\"abc\",\"state\":{\"desired\":7}}";
	assert_int_equal(twin_request_parse((const uint8_t *)s, strlen(s), TWIN_REQ_UPDATE, &l, &req,
					    msg, sizeof msg),
			 400);
	assert_true(req.has_token);
	assert_string_equal(req.token, "abc");
	twin_request_free(&req);
}

/* {"state":{"desired": + n times open + leaf + n times close + }} */
static void put(char **p, const char *s)
{
	size_t n = strlen(s);
	memcpy(*p, s, n);
	*p += n;
}

static char *nested(unsigned n, const char *open, const char *close, const char *leaf)
{
	size_t cap = 64 + n * (strlen(open) + strlen(close)) + strlen(leaf);
	char *s = malloc(cap), *p = s;
	if (!s)
		abort();
	put(&p, "{\"state\":{\"desired\":");
	for (unsigned i = 0; i < n; i++)
		put(&p, open);
	put(&p, leaf);
	for (unsigned i = 0; i < n; i++)
		put(&p, close);
	put(&p, "}}");
	*p = '\0';
	return s;
}

static void test_depth(void **state)
{
	(void)state;
	struct twin_limits l = lim();
	char *s;
	/* the desired object is level 1: six levels of objects are fine */
	s = nested(5, "{\"k\":", "}", "{\"v\":1}");
	assert_int_equal(status_of(s), 0);
	free(s);
	s = nested(6, "{\"k\":", "}", "{\"v\":1}");
	assert_int_equal(status_of(s), 400);
	free(s);
	/* arrays are levels too */
	s = nested(5, "{\"k\":", "}", "[1]");
	assert_int_equal(status_of(s), 0);
	free(s);
	s = nested(5, "{\"k\":", "}", "[[1]]");
	assert_int_equal(status_of(s), 400);
	free(s);
	/* hostile: 10,000 levels, of objects and of arrays, under a payload
	 * cap large enough to reach the parser */
	char msg[256];
	l.max_state_bytes = 100000;
	s = nested(10000, "{\"k\":", "}", "1");
	assert_int_equal(parse(TWIN_REQ_UPDATE, s, &l, msg, sizeof msg), 400);
	free(s);
	s = nested(10000, "[", "]", "1");
	assert_int_equal(parse(TWIN_REQ_UPDATE, s, &l, msg, sizeof msg), 400);
	free(s);
	/* and at the default limits: refused for size first */
	s = nested(10000, "{\"k\":", "}", "1");
	assert_int_equal(status_of(s), 413);
	free(s);
	/* the limit is configurable */
	l = lim();
	l.max_depth = 2;
	assert_int_equal(parse(TWIN_REQ_UPDATE, "{\"state\":{\"desired\":{\"a\":{\"b\":1}}}}", &l, msg,
			       sizeof msg),
			 0);
	assert_int_equal(parse(TWIN_REQ_UPDATE, "{\"state\":{\"desired\":{\"a\":{\"b\":{\"c\":1}}}}}",
			       &l, msg, sizeof msg),
			 400);
	assert_non_null(strstr(msg, "deeper"));
}

static void test_size_limits(void **state)
{
	(void)state;
	struct twin_limits l = lim();
	struct twin_doc d;
	char msg[256];
	l.max_state_bytes = 100;
	assert_true(twin_doc_init(&d, 1));
	/* {} + {"a":"xxx..."}: 2 + 8 + n bytes */
	char body[400], val[200];
	memset(val, 'x', 90);
	val[90] = '\0';
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{\"a\":\"%s\"}}}", val);
	assert_int_equal(apply(&d, body, 10, &l), 0);
	assert_int_equal(twin_doc_state_bytes(&d), 100);
	assert_int_equal(d.bytes, 100);
	assert_int_equal(apply(&d, "{\"state\":{\"desired\":{\"b\":1}}}", 20, &l), 413);

	/* a document over a lowered limit may shrink, not grow */
	struct twin_doc c;
	l.max_state_bytes = 50;
	assert_true(twin_doc_copy(&c, &d));
	assert_int_equal(apply(&c, "{\"state\":{\"reported\":{\"z\":1}}}", 30, &l), 413);
	twin_doc_free(&c);
	assert_true(twin_doc_copy(&c, &d));
	assert_int_equal(apply(&c, "{\"state\":{\"reported\":{\"a\":\"short\"}}}", 30, &l), 0);
	twin_doc_free(&c);
	twin_doc_free(&d);

	/* payloads over the cap are refused before parsing */
	l = lim();
	size_t n = twin_payload_cap(&l) + 1;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\0';
	assert_int_equal(parse(TWIN_REQ_UPDATE, big, &l, msg, sizeof msg), 413);
	free(big);
}

static void test_hostile_keys(void **state)
{
	(void)state;
	char key[400], body[600];
	memset(key, 'k', 256);
	key[256] = '\0';
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{\"%s\":1}}}", key);
	assert_int_equal(status_of(body), 0);
	strcat(key, "k");
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{\"%s\":1}}}", key);
	assert_int_equal(status_of(body), 400);
	snprintf(body, sizeof body, "{\"state\":{\"reported\":{\"a\":{\"%s\":1}}}}", key);
	assert_int_equal(status_of(body), 400);

	/* a key of 100 kB: over the payload cap */
	size_t n = 100000;
	char *huge = malloc(n + 64);
	char *p = huge + sprintf(huge, "{\"state\":{\"reported\":{\"");
	memset(p, 'h', n);
	strcpy(p + n, "\":1}}}");
	struct twin_limits l = lim();
	char msg[256];
	assert_int_equal(parse(TWIN_REQ_UPDATE, huge, &l, msg, sizeof msg), 413);
	free(huge);

	/* duplicate keys anywhere are refused, never silently picked */
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"a\":1,\"a\":2}}}"), 400);
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"x\":{\"b\":1,\"c\":0,\"b\":2}}}}"), 400);
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"x\":[{\"b\":1,\"b\":2}]}}}"), 400);
	assert_int_equal(status_of("{\"state\":{\"reported\":{}},\"state\":{\"desired\":{}}}"), 400);
	assert_int_equal(status_of("{\"state\":{\"reported\":{},\"reported\":{\"a\":1}}}"), 400);
	assert_int_equal(status_of("{\"state\":{\"reported\":{}},\"version\":1,\"version\":2}"), 400);
	/* \u0000 ends a key in cJSON: "a\u0000x" and "a\u0000y" collide */
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"a\\u0000x\":1,\"a\\u0000y\":2}}}"),
			 400);
	/* unicode keys and escapes are fine */
	assert_int_equal(status_of("{\"state\":{\"reported\":{\"t\xc3\xa9mp\":1,\"\\u00e9\":2,"
				   "\"\xf0\x9f\x98\x80\":\"\\ud83d\\ude00\"}}}"),
			 0);
	/* many keys in one object */
	size_t cap = 8000;
	char *many = malloc(cap), *q = many;
	q += sprintf(q, "{\"state\":{\"reported\":{");
	for (int i = 0; i < 600; i++)
		q += sprintf(q, "%s\"k%d\":%d", i ? "," : "", i, i);
	sprintf(q, "}}}");
	assert_int_equal(status_of(many), 0);
	free(many);
}

static void test_not_utf8(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"state\":{\"reported\":{\"a\":\"\xff\"}}}",
		"{\"state\":{\"reported\":{\"\xc0\x80\":1}}}",         /* overlong NUL */
		"{\"state\":{\"reported\":{\"a\":\"\xe0\x80\xaf\"}}}", /* overlong */
		"{\"state\":{\"reported\":{\"a\":\"\xed\xa0\x80\"}}}", /* surrogate */
		"{\"state\":{\"reported\":{\"a\":\"\xf4\x90\x80\x80\"}}}", /* > U+10FFFF */
		"{\"state\":{\"reported\":{\"a\":\"\xe2\x82\"}}}",     /* truncated */
		"{\"state\":{\"reported\":{\"a\":\"\x80\"}}}",         /* lone continuation */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(status_of(bad[i]), 400);
	/* an embedded NUL byte */
	const char nul[] = "{\"state\":{\"reported\":{\"a\":\"x\0y\"}}}";
	struct twin_limits l = lim();
	struct twin_request req;
	char msg[256];
	assert_int_equal(twin_request_parse((const uint8_t *)nul, sizeof nul - 1, TWIN_REQ_UPDATE, &l,
					    &req, msg, sizeof msg),
			 400);
	twin_request_free(&req);

	assert_true(twin_utf8_valid((const uint8_t *)"\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7));
	assert_false(twin_utf8_valid((const uint8_t *)"\xf8\x88\x80\x80\x80", 5));
	assert_false(twin_utf8_valid((const uint8_t *)"\xf0\x8f\xbf\xbf", 4)); /* overlong */
}

static void test_store_roundtrip(void **state)
{
	(void)state;
	struct twin_doc d, e;
	assert_true(twin_doc_init(&d, 1));
	apply_ok(&d, "{\"state\":{\"desired\":{\"a\":{\"b\":[1,{\"c\":null}]},\"s\":\"\\\"q\\\"\"},"
		     "\"reported\":{\"a\":{\"b\":2}}}}",
		 1733380000123);
	char *text = twin_doc_store_text(&d);
	assert_non_null(text);
	assert_true(twin_doc_load(&e, text, d.version));
	cJSON_free(text);
	assert_true(cJSON_Compare(d.desired, e.desired, 1));
	assert_true(cJSON_Compare(d.reported, e.reported, 1));
	assert_true(cJSON_Compare(d.meta_desired, e.meta_desired, 1));
	assert_true(cJSON_Compare(d.meta_reported, e.meta_reported, 1));
	assert_int_equal(e.version, 1);
	assert_int_equal(e.timestamp, 1733380000123);
	twin_doc_free(&e);
	assert_false(twin_doc_load(&e, "not json", 1));
	assert_false(twin_doc_load(&e, "[1]", 1));
	/* a document missing its parts loads as empty parts */
	assert_true(twin_doc_load(&e, "{}", 4));
	assert_json(e.desired, "{}");
	assert_int_equal(e.version, 4);
	twin_doc_free(&e);

	cJSON *h = twin_doc_history_json(&d);
	assert_null(cJSON_GetObjectItem(h, "timestamp"));
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(h, "state"), "delta"));
	assert_int_equal(cJSON_GetObjectItem(h, "version")->valuedouble, 1);
	cJSON_Delete(h);
	twin_doc_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_null_delete),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_metadata_and_versions),
		cmocka_unit_test(test_request_shapes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_client_token),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_hostile_keys),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_store_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
