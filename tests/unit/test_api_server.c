/*
 * test_api_server.c - the API server on a loopback port with no platform
 * behind it (service routes answer 503), for what a hub-level test cannot
 * steer: event streams fed by api_event directly. A client that stops
 * reading is dropped once its bounded buffer is full (and counted) while
 * another client keeps its events; streams beyond max_sse_clients get 503;
 * a quiet stream gets heartbeats; api_stop ends open streams at once; the
 * token of a request is checked against a real user store.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "auth/store.h"
#include "tmpdir.h"

struct fixture {
	char dir[64];
	char token[STORE_TOKEN_LEN + 1];
	struct auth *auth;
	struct api *api;
	uint16_t port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/mote-api-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	int lockfd;
	struct store *s;
	bool existed;
	char err[256];
	assert_int_equal(store_edit_begin(f->dir, &lockfd, &s, &existed, err, sizeof err), MOTE_OK);
	struct store_token t;
	assert_int_equal(store_token_new(f->token, &t), MOTE_OK);
	t.scope = STORE_SCOPE_READ;
	snprintf(t.name, sizeof t.name, "reader");
	assert_int_equal(store_add_token(s, &t), MOTE_OK);
	assert_int_equal(store_edit_end(f->dir, lockfd, s, true, err, sizeof err), MOTE_OK);
	store_free(s);
	struct auth_config ac;
	auth_config_defaults(&ac);
	ac.data_dir = f->dir;
	assert_int_equal(auth_new(&ac, &f->auth, err, sizeof err), MOTE_OK);
	struct api_config c;
	api_config_defaults(&c);
	c.addr = "127.0.0.1:0";
	c.max_sse_clients = 2;
	c.timeout_s = 1; /* heartbeats every 500 ms */
	assert_int_equal(api_start(&c, NULL, f->auth, &f->api, err, sizeof err), MOTE_OK);
	f->port = api_port(f->api);
	assert_true(f->port > 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	api_stop(f->api);
	auth_free(f->auth);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static int dial(struct fixture *f, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void send_get(struct fixture *f, int fd, const char *path, bool with_token)
{
	char req[512];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n%s%s%s\r\n", path,
			 with_token ? "Authorization: Bearer " : "", with_token ? f->token : "",
			 with_token ? "\r\n" : "");
	assert_int_equal(send(fd, req, (size_t)n, 0), n);
}

/* Reads until needle shows (true) or EOF / timeout (false). */
static bool read_until(int fd, const char *needle, char *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		if (len + 1 >= cap) { /* keep the tail */
			memmove(buf, buf + cap / 2, len - cap / 2);
			len -= cap / 2;
		}
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, needle))
			return true;
	}
}

/* One whole answer (HTTP/1.0: the server closes). */
static void get(struct fixture *f, const char *path, bool with_token, char *buf, size_t cap)
{
	int fd = dial(f, 0);
	send_get(f, fd, path, with_token);
	size_t len = 0;
	ssize_t n;
	while (len + 1 < cap && (n = recv(fd, buf + len, cap - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
}

static long metric(struct fixture *f, const char *name)
{
	char buf[16384], line[128];
	get(f, "/metrics", true, buf, sizeof buf);
	snprintf(line, sizeof line, "\n%s ", name);
	const char *p = strstr(buf, line);
	return p ? atol(p + strlen(line)) : -1;
}

static void test_tokens_and_no_platform(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	get(f, "/api/v1/devices", false, buf, sizeof buf);
	assert_non_null(strstr(buf, " 401 "));
	assert_non_null(strstr(buf, "WWW-Authenticate: Bearer"));
	get(f, "/api/v1/devices", true, buf, sizeof buf);
	assert_non_null(strstr(buf, " 503 "));
	assert_non_null(strstr(buf, "\"error\":\"unavailable\""));
	get(f, "/healthz", false, buf, sizeof buf);
	assert_non_null(strstr(buf, " 200 "));
	get(f, "/api/v1/openapi.json", true, buf, sizeof buf);
	assert_non_null(strstr(buf, "\"openapi\""));
}

static void test_slow_client_dropped(void **state)
{
	struct fixture *f = *state;
	char buf[8192];
	int slow = dial(f, 4096);
	send_get(f, slow, "/api/v1/events", true);
	assert_true(read_until(slow, ": connected", buf, sizeof buf));
	int fast = dial(f, 0);
	send_get(f, fast, "/api/v1/events?device=d1", true);
	assert_true(read_until(fast, ": connected", buf, sizeof buf));
	/* 1 KiB events until the slow client's buffer (256 KiB) and the
	 * socket buffers are full; the slow one never reads again */
	char json[1100];
	memset(json, 'x', sizeof json);
	memcpy(json, "{\"pad\":\"", 8);
	memcpy(json + 1024 - 2, "\"}", 3);
	long dropped = 0;
	for (int i = 0; i < 40000 && dropped < 1; i++) {
		api_event(f->api, "telemetry", "d2", json);
		if (i % 1000 == 999)
			dropped = metric(f, "mote_http_sse_dropped_total");
	}
	assert_int_equal(dropped, 1);
	/* the other client (filtered to d1) still gets its events */
	api_event(f->api, "telemetry", "d1", "{\"n\":1}");
	assert_true(read_until(fast, "data: {\"n\":1}", buf, sizeof buf));
	/* the dropped stream ends after what the socket already held */
	ssize_t n;
	while ((n = recv(slow, buf, sizeof buf, 0)) > 0)
		;
	assert_int_equal(n, 0);
	for (int i = 0; i < 250 && metric(f, "mote_http_sse_clients") != 1; i++)
		usleep(20000);
	assert_int_equal(metric(f, "mote_http_sse_clients"), 1);
	close(slow);
	close(fast);
}

static void test_limit_heartbeat_stop(void **state)
{
	struct fixture *f = *state;
	char buf[4096];
	assert_false(api_listening(f->api));
	int a = dial(f, 0), b = dial(f, 0);
	send_get(f, a, "/api/v1/events", true);
	send_get(f, b, "/api/v1/events?types=alert", true);
	assert_true(read_until(a, ": connected", buf, sizeof buf));
	assert_true(read_until(b, ": connected", buf, sizeof buf));
	assert_true(api_listening(f->api));
	/* a third is refused while two are open */
	get(f, "/api/v1/events", true, buf, sizeof buf);
	assert_non_null(strstr(buf, " 503 "));
	assert_non_null(strstr(buf, "too many event streams"));
	/* a filter: b (alerts only) does not get telemetry, then gets an alert */
	api_event(f->api, "telemetry", "d1", "{\"t\":1}");
	api_event(f->api, "alert", "d1", "{\"a\":1}");
	assert_true(read_until(b, "event: alert\ndata: {\"a\":1}\n\n", buf, sizeof buf));
	assert_null(strstr(buf, "event: telemetry"));
	/* line breaks in the JSON cannot split the data line */
	api_event(f->api, "twin", NULL, "{\"x\":\n1}");
	assert_true(read_until(a, "data: {\"x\": 1}\n\n", buf, sizeof buf));
	/* a client that hangs up frees its slot without waiting for a write */
	close(b);
	int i = 0;
	while (i++ < 150 && metric(f, "mote_http_sse_clients") != 1)
		usleep(20000);
	assert_int_equal(metric(f, "mote_http_sse_clients"), 1);
	b = dial(f, 0);
	send_get(f, b, "/api/v1/events", true);
	assert_true(read_until(b, ": connected", buf, sizeof buf));
	/* quiet: heartbeats (every 500 ms with a 1 s idle timeout) */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(read_until(a, ": heartbeat", buf, sizeof buf));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	/* stop with both open: it returns and both streams end */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	api_stop(f->api);
	f->api = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	ssize_t n;
	while ((n = recv(a, buf, sizeof buf, 0)) > 0)
		;
	assert_int_equal(n, 0);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tokens_and_no_platform, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_heartbeat_stop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
