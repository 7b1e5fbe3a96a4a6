/*
 * test_rules_webhook.c - webhook delivery against a real HTTP receiver in
 * this process (a small listener thread on 127.0.0.1): a receiver that
 * answers 500 twice and then 200 gets three attempts of the same delivery
 * with a correct X-Mote-Signature (HMAC-SHA256 recomputed here with
 * OpenSSL), and the delivery log says so; a receiver that always fails
 * makes the delivery give up after webhook_attempts; a full queue drops
 * and marks the row; event filters; webhook validation and the secret that
 * is made when none is given.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <openssl/hmac.h>

#include "rules/rules.h"

#define MAXREQ 32

struct req {
	char headers[4096];
	char *body;
};

struct receiver {
	int fd;
	int port;
	pthread_t th;
	pthread_mutex_t mu;
	int fail_first;      /* answer 500 to this many requests, then 200 */
	int n;
	struct req reqs[MAXREQ];
	volatile int stop;
};

static void *serve(void *arg)
{
	struct receiver *rc = arg;
	for (;;) {
		int c = accept(rc->fd, NULL, NULL);
		if (c < 0 || rc->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		char buf[65536];
		size_t len = 0;
		char *end = NULL;
		ssize_t k;
		while (!end && len < sizeof buf - 1 && (k = read(c, buf + len, sizeof buf - 1 - len)) > 0) {
			len += (size_t)k;
			buf[len] = '\0';
			end = strstr(buf, "\r\n\r\n");
		}
		if (!end) {
			close(c);
			continue;
		}
		size_t hlen = (size_t)(end - buf) + 4;
		const char *cl = strcasestr(buf, "Content-Length:");
		size_t want = cl ? (size_t)atol(cl + 15) : 0;
		while (len - hlen < want && len < sizeof buf - 1 &&
		       (k = read(c, buf + len, sizeof buf - 1 - len)) > 0)
			len += (size_t)k;
		pthread_mutex_lock(&rc->mu);
		int i = rc->n < MAXREQ ? rc->n : MAXREQ - 1;
		snprintf(rc->reqs[i].headers, sizeof rc->reqs[i].headers, "%.*s", (int)hlen, buf);
		free(rc->reqs[i].body);
		rc->reqs[i].body = strndup(buf + hlen, want);
		int code = rc->n < rc->fail_first ? 500 : 200;
		rc->n++;
		pthread_mutex_unlock(&rc->mu);
		char resp[128];
		int rn = snprintf(resp, sizeof resp,
				  "HTTP/1.1 %d %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", code,
				  code == 200 ? "OK" : "Internal Server Error");
		(void)!write(c, resp, (size_t)rn);
		close(c);
	}
}

static struct receiver *receiver_start(int fail_first)
{
	struct receiver *rc = calloc(1, sizeof *rc);
	rc->fail_first = fail_first;
	pthread_mutex_init(&rc->mu, NULL);
	rc->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(rc->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(rc->fd, 16), 0);
	socklen_t al = sizeof a;
	getsockname(rc->fd, (struct sockaddr *)&a, &al);
	rc->port = ntohs(a.sin_port);
	pthread_create(&rc->th, NULL, serve, rc);
	return rc;
}

static void receiver_stop(struct receiver *rc)
{
	rc->stop = 1;
	int c = socket(AF_INET, SOCK_STREAM, 0); /* wake accept */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)rc->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	(void)!connect(c, (struct sockaddr *)&a, sizeof a);
	pthread_join(rc->th, NULL);
	close(c);
	close(rc->fd);
	for (int i = 0; i < MAXREQ; i++)
		free(rc->reqs[i].body);
	pthread_mutex_destroy(&rc->mu);
	free(rc);
}

static int received(struct receiver *rc)
{
	pthread_mutex_lock(&rc->mu);
	int n = rc->n;
	pthread_mutex_unlock(&rc->mu);
	return n;
}

static void header(const struct req *q, const char *name, char *out, size_t cap)
{
	const char *h = strcasestr(q->headers, name);
	out[0] = '\0';
	if (!h)
		return;
	h += strlen(name);
	while (*h == ' ' || *h == ':')
		h++;
	size_t n = strcspn(h, "\r\n");
	snprintf(out, cap, "%.*s", (int)n, h);
}

static struct rules *open_rules(sqlite3 **db, uint32_t attempts, uint32_t backoff, uint32_t queue)
{
	assert_int_equal(sqlite3_open(":memory:", db), SQLITE_OK);
	struct rules_config cfg;
	rules_config_defaults(&cfg);
	cfg.webhook_attempts = attempts;
	cfg.webhook_backoff_ms = backoff;
	cfg.webhook_queue = queue;
	cfg.webhook_timeout_ms = 3000;
	struct rules *r;
	char err[200];
	assert_int_equal(rules_open(*db, &cfg, NULL, &r, err, sizeof err), MOTE_OK);
	return r;
}

static int64_t make_hook(struct rules *r, const char *json, char *secret_out)
{
	struct mote_reply rep = { 0 };
	webhooks_create(r, json, strlen(json), &rep);
	if (rep.status != 201)
		fail_msg("webhook %s: %d %s", json, rep.status, rep.body);
	cJSON *j = cJSON_Parse(rep.body);
	int64_t id = (int64_t)cJSON_GetObjectItem(j, "id")->valuedouble;
	if (secret_out)
		strcpy(secret_out, cJSON_GetObjectItem(j, "secret")->valuestring);
	cJSON_Delete(j);
	mote_reply_clear(&rep);
	return id;
}

/* The deliveries of a webhook, newest first (the caller frees). */
static cJSON *deliveries(struct rules *r, int64_t hook)
{
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)hook);
	struct mote_reply rep = { 0 };
	webhooks_deliveries(r, id, 0, &rep);
	assert_int_equal(rep.status, 200);
	cJSON *j = cJSON_Parse(rep.body);
	mote_reply_clear(&rep);
	return j;
}

/* Polls the log until the newest delivery has status want (10 s at most). */
static cJSON *wait_status(struct rules *r, int64_t hook, const char *want)
{
	for (int i = 0; i < 1000; i++) {
		cJSON *j = deliveries(r, hook);
		cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 0);
		if (d && strcmp(cJSON_GetObjectItem(d, "status")->valuestring, want) == 0)
			return j;
		cJSON_Delete(j);
		usleep(10000);
	}
	fail_msg("no delivery reached status %s", want);
	return NULL;
}

static void test_retry_then_success_signed(void **state)
{
	(void)state;
	struct receiver *rc = receiver_start(2);
	sqlite3 *db;
	struct rules *r = open_rules(&db, 5, 50, 100);
	char json[256];
	snprintf(json, sizeof json, "{\"url\":\"http://127.0.0.1:%d/hook\",\"secret\":\"s3cret\"}", rc->port);
	int64_t hook = make_hook(r, json, NULL);
	assert_int_equal(rules_raise(r, "pump-7", "overheat", "critical", "{\"t\":91}", 1000), MOTE_OK);
	cJSON *j = wait_status(r, hook, "delivered");
	cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 0);
	assert_int_equal((int)cJSON_GetObjectItem(d, "attempts")->valuedouble, 3);
	assert_int_equal((int)cJSON_GetObjectItem(d, "http_code")->valuedouble, 200);
	assert_string_equal(cJSON_GetObjectItem(d, "event")->valuestring, "alert.raised");
	int64_t delivery = (int64_t)cJSON_GetObjectItem(d, "id")->valuedouble;
	cJSON_Delete(j);
	assert_int_equal(received(rc), 3);
	for (int i = 0; i < 3; i++) {
		struct req *q = &rc->reqs[i];
		char v[200], want[200];
		assert_non_null(strstr(q->headers, "POST /hook HTTP/1.1"));
		header(q, "Content-Type", v, sizeof v);
		assert_string_equal(v, "application/json");
		header(q, "X-Mote-Delivery", v, sizeof v);
		snprintf(want, sizeof want, "%lld", (long long)delivery);
		assert_string_equal(v, want); /* the same id on every retry */
		unsigned char md[32];
		unsigned mdlen;
		HMAC(EVP_sha256(), "s3cret", 6, (const unsigned char *)q->body, strlen(q->body), md, &mdlen);
		strcpy(want, "sha256=");
		for (int k = 0; k < 32; k++)
			snprintf(want + 7 + 2 * k, 3, "%02x", md[k]);
		header(q, "X-Mote-Signature", v, sizeof v);
		assert_string_equal(v, want);
		cJSON *b = cJSON_Parse(q->body);
		assert_string_equal(cJSON_GetObjectItem(b, "event")->valuestring, "raised");
		cJSON *a = cJSON_GetObjectItem(b, "alert");
		assert_string_equal(cJSON_GetObjectItem(a, "device")->valuestring, "pump-7");
		assert_string_equal(cJSON_GetObjectItem(a, "severity")->valuestring, "critical");
		cJSON_Delete(b);
	}
	struct rules_stats st;
	rules_get_stats(r, &st);
	assert_int_equal(st.webhook_delivered, 1);
	assert_int_equal(st.webhook_failed, 0);
	assert_int_equal(st.webhook_queued, 0);
	rules_close(r);
	sqlite3_close(db);
	receiver_stop(rc);
}

static void test_gives_up(void **state)
{
	(void)state;
	struct receiver *rc = receiver_start(1000);
	sqlite3 *db;
	struct rules *r = open_rules(&db, 2, 20, 100);
	char json[256];
	snprintf(json, sizeof json, "{\"url\":\"http://127.0.0.1:%d/x\",\"secret\":\"k\"}", rc->port);
	int64_t hook = make_hook(r, json, NULL);
	assert_int_equal(rules_raise(r, "d", "t", "minor", NULL, 1), MOTE_OK);
	cJSON *j = wait_status(r, hook, "failed");
	cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 0);
	assert_int_equal((int)cJSON_GetObjectItem(d, "attempts")->valuedouble, 2);
	assert_int_equal((int)cJSON_GetObjectItem(d, "http_code")->valuedouble, 500);
	assert_string_equal(cJSON_GetObjectItem(d, "error")->valuestring, "HTTP 500");
	cJSON_Delete(j);
	assert_int_equal(received(rc), 2);
	struct rules_stats st;
	rules_get_stats(r, &st);
	assert_int_equal(st.webhook_failed, 1);
	rules_close(r);
	sqlite3_close(db);
	receiver_stop(rc);
}

static void test_queue_full_and_close(void **state)
{
	(void)state;
	sqlite3 *db;
	/* port 1 refuses at once; a long backoff keeps the first job queued */
	struct rules *r = open_rules(&db, 3, 60000, 1);
	int64_t hook = make_hook(r, "{\"url\":\"http://127.0.0.1:1/\",\"secret\":\"k\"}", NULL);
	assert_int_equal(rules_raise(r, "d", "a", "minor", NULL, 1), MOTE_OK);
	cJSON *j = NULL;
	for (int i = 0; i < 500; i++) { /* the first attempt has failed */
		j = deliveries(r, hook);
		cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 0);
		if ((int)cJSON_GetObjectItem(d, "attempts")->valuedouble == 1)
			break;
		cJSON_Delete(j);
		j = NULL;
		usleep(10000);
	}
	assert_non_null(j);
	cJSON_Delete(j);
	assert_int_equal(rules_raise(r, "d", "b", "minor", NULL, 2), MOTE_OK);
	j = deliveries(r, hook);
	cJSON *arr = cJSON_GetObjectItem(j, "deliveries");
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	cJSON *d0 = cJSON_GetArrayItem(arr, 0), *d1 = cJSON_GetArrayItem(arr, 1);
	assert_string_equal(cJSON_GetObjectItem(d0, "status")->valuestring, "dropped");
	assert_string_equal(cJSON_GetObjectItem(d0, "error")->valuestring, "delivery queue full");
	assert_string_equal(cJSON_GetObjectItem(d1, "status")->valuestring, "pending");
	assert_non_null(strstr(cJSON_GetObjectItem(d1, "error")->valuestring, "onnect"));
	cJSON_Delete(j);
	struct rules_stats st;
	rules_get_stats(r, &st);
	assert_int_equal(st.webhook_queued, 1);
	/* closing does not wait for the minute-long backoff; the row stays pending */
	time_t t0 = time(NULL);
	rules_close(r);
	assert_true(time(NULL) - t0 < 5);
	sqlite3_stmt *s;
	sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_deliveries WHERE status='pending'", -1, &s, NULL);
	sqlite3_step(s);
	assert_int_equal(sqlite3_column_int(s, 0), 1);
	sqlite3_finalize(s);

	/* the next start sends what was left pending (the receiver now answers) */
	struct receiver *rc = receiver_start(0);
	char sql[128];
	snprintf(sql, sizeof sql, "UPDATE webhooks SET url='http://127.0.0.1:%d/late'", rc->port);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	struct rules_config cfg;
	rules_config_defaults(&cfg);
	char err[200];
	assert_int_equal(rules_open(db, &cfg, NULL, &r, err, sizeof err), MOTE_OK);
	j = NULL;
	for (int i = 0; i < 500 && !j; i++) {
		j = deliveries(r, hook);
		cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 1);
		if (strcmp(cJSON_GetObjectItem(d, "status")->valuestring, "delivered") != 0) {
			cJSON_Delete(j);
			j = NULL;
			usleep(10000);
		}
	}
	assert_non_null(j);
	cJSON *late = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 1);
	assert_int_equal((int)cJSON_GetObjectItem(late, "attempts")->valuedouble, 2);
	cJSON_Delete(j);
	assert_int_equal(received(rc), 1); /* the dropped one is not sent */
	assert_non_null(strstr(rc->reqs[0].headers, "POST /late"));
	rules_close(r);
	receiver_stop(rc);
	sqlite3_close(db);
}

static void test_events_filter_and_validation(void **state)
{
	(void)state;
	struct receiver *rc = receiver_start(0);
	sqlite3 *db;
	struct rules *r = open_rules(&db, 3, 20, 100);
	char json[256], secret[80];
	snprintf(json, sizeof json, "{\"url\":\"http://127.0.0.1:%d/c\",\"events\":[\"alert.cleared\"]}", rc->port);
	int64_t hook = make_hook(r, json, secret);
	assert_int_equal(strlen(secret), 64); /* made here, shown once */
	assert_int_equal(rules_raise(r, "d", "t", "minor", NULL, 1), MOTE_OK);
	assert_int_equal(rules_resolve(r, "d", "t", 2), MOTE_OK);
	cJSON *j = wait_status(r, hook, "delivered");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "deliveries")), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "deliveries"), 0),
						"event")->valuestring, "alert.cleared");
	cJSON_Delete(j);
	struct mote_reply rep = { 0 };
	webhooks_list(r, &rep);
	assert_int_equal(rep.status, 200);
	assert_null(strstr(rep.body, secret));
	assert_null(strstr(rep.body, "secret"));
	assert_non_null(strstr(rep.body, "alert.cleared"));
	mote_reply_clear(&rep);
	static const char *const bad[][2] = {
		{ "{}", "field 'url' is required" },
		{ "{\"url\":5}", "field 'url' must be a string" },
		{ "{\"url\":\"ftp://example.com/x\"}", "http:// or https://" },
		{ "{\"url\":\"http://a b.example/\"}", "space or control" },
		{ "{\"url\":\"http://example.com/\",\"secret\":\"\"}", "field 'secret'" },
		{ "{\"url\":\"http://example.com/\",\"events\":[]}", "non-empty array" },
		{ "{\"url\":\"http://example.com/\",\"events\":[\"alarm\"]}", "item 0 must be one of" },
		{ "{\"url\":\"http://example.com/\",\"hmac\":\"x\"}", "unknown field 'hmac'" },
		{ "[", "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		webhooks_create(r, bad[i][0], strlen(bad[i][0]), &rep);
		if (rep.status != 400 || !strstr(rep.body, bad[i][1]))
			fail_msg("%s: %d %s", bad[i][0], rep.status, rep.body);
		mote_reply_clear(&rep);
	}
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)hook);
	webhooks_delete(r, id, &rep);
	assert_int_equal(rep.status, 204);
	mote_reply_clear(&rep);
	webhooks_delete(r, id, &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	webhooks_deliveries(r, id, 10, &rep);
	assert_int_equal(rep.status, 404);
	mote_reply_clear(&rep);
	rules_close(r);
	sqlite3_close(db);
	receiver_stop(rc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_then_success_signed),
		cmocka_unit_test(test_gives_up),
		cmocka_unit_test(test_queue_full_and_close),
		cmocka_unit_test(test_events_filter_and_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
