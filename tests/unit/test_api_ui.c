/*
 * test_api_ui.c - the dashboard as the hub serves it (src/api/ui.c): the
 * embedded files byte for byte with their content types, the security and
 * cache headers, ETag revalidation (304), HEAD, the public routes next to
 * token-guarded API routes, ?token= accepted on "/" and other parameters
 * refused, 404 for unknown assets, 405 for other methods, and hostile
 * names (traversal, %-encoded slashes, NUL, control bytes, long and odd
 * names) refused without ever answering 200; the embedded bytes equal the
 * files they were made from. First through ui_answer
 * directly, then over a loopback socket against a real server (no
 * platform, no user store: the API routes answer 401).
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/ui.h"

/* ---- ui_answer ---- */

static const char *hdr(const struct ui_answer *u, const char *name)
{
	for (unsigned i = 0; i < u->nhdr; i++)
		if (strcasecmp(u->hdr[i][0], name) == 0)
			return u->hdr[i][1];
	return NULL;
}

static void test_table(void **state)
{
	(void)state;
	static const char *const want[] = { "index.html", "app.js", "app.css", "favicon.svg" };
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct ui_asset *a = ui_asset_find(want[i]);
		assert_non_null(a);
		assert_true(a->len > 0);
		assert_int_equal(a->data[a->len], 0);
		assert_int_equal(strlen(a->etag), 18); /* "16 hex digits" */
	}
	assert_null(ui_asset_find("nope.js"));
	/* the page loads the bundle from /assets, nothing from elsewhere */
	const struct ui_asset *idx = ui_asset_find("index.html");
	assert_non_null(strstr((const char *)idx->data, "src=\"/assets/app.js\""));
	assert_non_null(strstr((const char *)idx->data, "href=\"/assets/app.css\""));
	assert_null(strstr((const char *)idx->data, "http://"));
	assert_null(strstr((const char *)idx->data, "https://"));
	/* the selectors the browser test relies on are in the bundle */
	const char *js = (const char *)ui_asset_find("app.js")->data;
	assert_non_null(strstr(js, "fleet-table"));
	assert_non_null(strstr(js, "desired-editor"));
	assert_non_null(strstr(js, "/api/v1/events"));
}

/* The whole file at path, NUL-terminated; NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	unsigned char *b = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			unsigned char *nb = realloc(b, cap);
			assert_non_null(nb);
			b = nb;
		}
		got = fread(b + n, 1, cap - n - 1, fp);
		n += got;
	} while (got > 0);
	fclose(fp);
	b[n] = 0;
	*len = n;
	return b;
}

static void expect_same(const char *path, const char *name)
{
	size_t n;
	unsigned char *b = slurp(path, &n);
	if (!b)
		fail_msg("cannot read %s", path);
	const struct ui_asset *a = ui_asset_find(name);
	assert_non_null(a);
	assert_int_equal(a->len, n);
	assert_memory_equal(a->data, b, n);
	free(b);
}

/* embed.cmake's hex round trip is exact: the embedded bytes are the files,
 * the sources' (index.html, favicon.svg, next to this file's source) and
 * the bundle's (in this build folder: the test runs from BUILD/tests, the
 * bundle is BUILD/src/api/web). */
static void test_embedded_bytes(void **state)
{
	(void)state;
	char src[4096], exe[4096], path[4096 + 64];
	snprintf(src, sizeof src, "%s", __FILE__);
	char *cut = strstr(src, "/tests/unit/");
	assert_non_null(cut);
	*cut = '\0';
	snprintf(path, sizeof path, "%s/web/index.html", src);
	expect_same(path, "index.html");
	snprintf(path, sizeof path, "%s/web/favicon.svg", src);
	expect_same(path, "favicon.svg");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	assert_non_null(slash);
	*slash = '\0'; /* BUILD/tests */
	snprintf(path, sizeof path, "%s/../src/api/web/app.js", exe);
	expect_same(path, "app.js");
	snprintf(path, sizeof path, "%s/../src/api/web/app.css", exe);
	expect_same(path, "app.css");
}

static void test_answer(void **state)
{
	(void)state;
	struct ui_answer u;
	ui_answer(NULL, NULL, &u);
	assert_int_equal(u.status, 200);
	assert_string_equal(u.asset->name, "index.html");
	assert_string_equal(hdr(&u, "Content-Type"), "text/html; charset=utf-8");
	assert_string_equal(hdr(&u, "Cache-Control"), "no-store");
	assert_null(hdr(&u, "ETag"));
	const char *csp = hdr(&u, "Content-Security-Policy");
	assert_non_null(csp);
	assert_non_null(strstr(csp, "default-src 'none'"));
	assert_non_null(strstr(csp, "script-src 'self'"));
	assert_non_null(strstr(csp, "frame-ancestors 'none'"));
	assert_null(strstr(csp, "unsafe"));
	assert_string_equal(hdr(&u, "Referrer-Policy"), "no-referrer");
	assert_string_equal(hdr(&u, "X-Content-Type-Options"), "nosniff");
	/* the page is never answered 304: it is not cached at all */
	ui_answer(NULL, "*", &u);
	assert_int_equal(u.status, 200);

	ui_answer("app.js", NULL, &u);
	assert_int_equal(u.status, 200);
	assert_string_equal(hdr(&u, "Content-Type"), "text/javascript; charset=utf-8");
	assert_string_equal(hdr(&u, "Cache-Control"), "no-cache");
	const char *etag = hdr(&u, "ETag");
	assert_string_equal(etag, ui_asset_find("app.js")->etag);
	char inm[128];
	ui_answer("app.js", etag, &u);
	assert_int_equal(u.status, 304);
	snprintf(inm, sizeof inm, "\"x\", W/%s", etag);
	ui_answer("app.js", inm, &u);
	assert_int_equal(u.status, 304);
	ui_answer("app.js", "*", &u);
	assert_int_equal(u.status, 304);
	ui_answer("app.js", "\"0000000000000000\"", &u);
	assert_int_equal(u.status, 200);
	snprintf(inm, sizeof inm, "%.17s", etag); /* a prefix is not the tag */
	ui_answer("app.js", inm, &u);
	assert_int_equal(u.status, 200);
	ui_answer("app.css", NULL, &u);
	assert_string_equal(hdr(&u, "Content-Type"), "text/css; charset=utf-8");
	ui_answer("favicon.svg", NULL, &u);
	assert_string_equal(hdr(&u, "Content-Type"), "image/svg+xml");

	/* unknown: 404; the page only at "/" */
	ui_answer("nope.js", NULL, &u);
	assert_int_equal(u.status, 404);
	assert_int_equal(u.nhdr, 0);
	ui_answer("index.html", NULL, &u);
	assert_int_equal(u.status, 404);
	/* odd names: 400 */
	static const char *const odd[] = { "", ".", "..", "../app.js", "..%2Fapp.js", "a/b", ".env",
					   "app.js\\", "app js", "app.js?x", "\xc3\xa9.js", "a\tb" };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		ui_answer(odd[i], NULL, &u);
		if (u.status != 400)
			fail_msg("'%s' answered %u", odd[i], u.status);
		assert_null(u.asset);
	}
	char longname[80];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ui_answer(longname, NULL, &u);
	assert_int_equal(u.status, 400);
	longname[64] = '\0';
	ui_answer(longname, NULL, &u);
	assert_int_equal(u.status, 404);
}

/* ---- over HTTP ---- */

struct fixture {
	struct api *api;
	uint16_t port;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	struct api_config c;
	char err[256];
	api_config_defaults(&c);
	c.addr = "127.0.0.1:0";
	c.timeout_s = 5;
	assert_int_equal(api_start(&c, NULL, NULL, &f->api, err, sizeof err), MOTE_OK);
	f->port = api_port(f->api);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	api_stop(f->api);
	free(f);
	return 0;
}

struct resp {
	char *buf;      /* head + body, NUL-terminated */
	size_t len;
	unsigned status;
	const char *body;
	size_t body_len;
};

/* Sends the raw request (HTTP/1.0: the server closes) and reads it all. */
static struct resp request(struct fixture *f, const char *raw, size_t rawlen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(send(fd, raw, rawlen, 0), (ssize_t)rawlen);
	struct resp r = { 0 };
	size_t cap = 4096;
	r.buf = malloc(cap);
	assert_non_null(r.buf);
	ssize_t n;
	for (;;) {
		if (r.len + 1 >= cap) {
			cap *= 2;
			r.buf = realloc(r.buf, cap);
			assert_non_null(r.buf);
		}
		n = recv(fd, r.buf + r.len, cap - 1 - r.len, 0);
		if (n <= 0)
			break;
		r.len += (size_t)n;
	}
	r.buf[r.len] = '\0';
	close(fd);
	assert_true(r.len > 12);
	assert_int_equal(sscanf(r.buf, "HTTP/1.%*c %u", &r.status), 1);
	const char *e = strstr(r.buf, "\r\n\r\n");
	assert_non_null(e);
	r.body = e + 4;
	r.body_len = r.len - (size_t)(r.body - r.buf);
	return r;
}

static struct resp req(struct fixture *f, const char *method, const char *target, const char *extra)
{
	char raw[16384];
	int n = snprintf(raw, sizeof raw, "%s %s HTTP/1.0\r\n%s\r\n", method, target, extra ? extra : "");
	assert_true(n > 0 && (size_t)n < sizeof raw);
	return request(f, raw, (size_t)n);
}

/* The value of header name in r, copied into out ("" when absent). */
static const char *header(const struct resp *r, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	size_t n = strlen(name);
	const char *p = r->buf;
	while ((p = strstr(p, "\r\n")) && p < r->body - 2) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			size_t m = strcspn(v, "\r");
			snprintf(out, cap, "%.*s", (int)(m < cap - 1 ? m : cap - 1), v);
			break;
		}
	}
	return out;
}

static void done(struct resp *r)
{
	free(r->buf);
}

static void expect_asset(struct fixture *f, const char *target, const char *name)
{
	const struct ui_asset *a = ui_asset_find(name);
	char v[512];
	struct resp r = req(f, "GET", target, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, a->len);
	assert_memory_equal(r.body, a->data, a->len);
	assert_string_equal(header(&r, "Content-Type", v, sizeof v), a->content_type);
	assert_non_null(strstr(header(&r, "Content-Security-Policy", v, sizeof v),
			       "frame-ancestors 'none'"));
	assert_string_equal(header(&r, "X-Content-Type-Options", v, sizeof v), "nosniff");
	assert_string_equal(header(&r, "Referrer-Policy", v, sizeof v), "no-referrer");
	assert_string_equal(header(&r, "X-Frame-Options", v, sizeof v), "DENY");
	done(&r);
}

static void test_serve(void **state)
{
	struct fixture *f = *state;
	char v[512], extra[256];
	expect_asset(f, "/", "index.html");
	expect_asset(f, "/?token=mote_0123456789abcdef", "index.html");
	expect_asset(f, "/?token=", "index.html");
	expect_asset(f, "/assets/app.js", "app.js");
	expect_asset(f, "/assets/app.css", "app.css");
	expect_asset(f, "/assets/favicon.svg", "favicon.svg");
	expect_asset(f, "/assets/app%2Ejs", "app.js"); /* %-escapes are decoded once */

	struct resp r = req(f, "GET", "/", NULL);
	assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-store");
	done(&r);
	r = req(f, "GET", "/assets/app.js", NULL);
	assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-cache");
	char etag[64];
	header(&r, "ETag", etag, sizeof etag);
	assert_string_equal(etag, ui_asset_find("app.js")->etag);
	done(&r);

	/* revalidation */
	snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
	r = req(f, "GET", "/assets/app.js", extra);
	assert_int_equal(r.status, 304);
	assert_int_equal(r.body_len, 0);
	assert_string_equal(header(&r, "ETag", v, sizeof v), etag);
	done(&r);
	r = req(f, "GET", "/assets/app.js", "If-None-Match: \"stale\"\r\n");
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, ui_asset_find("app.js")->len);
	done(&r);

	/* HEAD: the head of GET, no body */
	r = req(f, "HEAD", "/", NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
	done(&r);
	r = req(f, "HEAD", "/assets/app.css", NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	char len[32];
	snprintf(len, sizeof len, "%zu", ui_asset_find("app.css")->len);
	assert_string_equal(header(&r, "Content-Length", v, sizeof v), len);
	done(&r);

	/* the dashboard is public, the API behind it is not */
	r = req(f, "GET", "/api/v1/devices", NULL);
	assert_int_equal(r.status, 401);
	done(&r);
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	char v[256];
	struct resp r;

	/* unknown assets and pages: 404 in the API's error shape */
	static const char *const missing[] = { "/assets/nope.js", "/assets/index.html", "/index.html",
					       "/assets", "/assets/", "/favicon.ico", "/app.js",
					       "/assets/app.js/x", "/assets/../../etc/passwd",
					       "/assets/./app.js", "/%2E%2E/etc/passwd" };
	for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
		r = req(f, "GET", missing[i], NULL);
		if (r.status != 404)
			fail_msg("GET %s answered %u", missing[i], r.status);
		assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
		assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
		done(&r);
	}
	/* odd names and bad targets: 400 */
	static const char *const bad[] = { "/assets/..%2F..%2Fetc%2Fpasswd", "/assets/%2E%2E",
					   "/assets/.hidden", "/assets/app.js%00.png", "/assets/a%0Ab",
					   "/assets/%ZZ", "/assets/%", "/assets/a%5Cb", "/?token=a&x=1",
					   "/?token=a&token=b", "/?x", "/assets/app.js?v=1",
					   "/assets/%C3%A9.js" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = req(f, "GET", bad[i], NULL);
		if (r.status != 400)
			fail_msg("GET %s answered %u", bad[i], r.status);
		assert_non_null(strstr(r.body, "\"error\":\"bad_request\""));
		done(&r);
	}
	/* long names and targets */
	char *target = malloc(9000 + 16);
	assert_non_null(target);
	strcpy(target, "/assets/");
	memset(target + 8, 'a', 200);
	target[208] = '\0';
	r = req(f, "GET", target, NULL);
	assert_int_equal(r.status, 400);
	done(&r);
	memset(target + 8, 'a', 9000);
	target[9008] = '\0';
	r = req(f, "GET", target, NULL);
	assert_int_equal(r.status, 400);
	done(&r);
	free(target);

	/* other methods: 405 with Allow */
	static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		r = req(f, methods[i], "/", "Content-Length: 0\r\n");
		if (r.status != 405)
			fail_msg("%s / answered %u", methods[i], r.status);
		assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, HEAD");
		done(&r);
		r = req(f, methods[i], "/assets/app.js", "Content-Length: 0\r\n");
		assert_int_equal(r.status, 405);
		done(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_embedded_bytes),
		cmocka_unit_test(test_answer),
		cmocka_unit_test_setup_teardown(test_serve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
