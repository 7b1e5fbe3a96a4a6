/*
 * register.c - registering the fleet through the hub's REST API
 * (POST /api/v1/devices) before the devices connect, so that they carry a
 * name, a model and tags from the start.
 *
 * One libcurl easy handle for the whole fleet keeps one HTTP connection
 * alive for every request. A hub that is still starting (connection
 * refused) is waited for, up to cfg->api_wait_ms (--api-wait); 409 (already registered) is
 * success; 401/403 end the run with what to do about the token.
 *
 * Threading: runs on the thread that calls sim_fleet_new(), before any
 * worker exists. curl_global_init() is the caller's (the CLI does it at
 * start, while it is single-threaded).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "base/clock.h"
#include "base/log.h"
#include "sim/sim_int.h"

#define REQUEST_TIMEOUT_MS 10000L
#define BODY_MAX 1024u

struct body {
	char buf[BODY_MAX];
	size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t len = size * n, room = sizeof b->buf - 1 - b->len;

	if (len < room)
		room = len;
	memcpy(b->buf + b->len, p, room);
	b->len += room;
	b->buf[b->len] = '\0';
	return len; /* the rest is dropped: only the start is ever shown */
}

static const char *display_model(enum sim_model m)
{
	switch (m) {
	case SIM_PUMP: return "Pump";
	case SIM_MOTOR: return "Motor";
	default: return "HVAC";
	}
}

/* The request body of device i: only our own characters go into it (ids
 * are checked to be [A-Za-z0-9._-] by the CLI), so no escaping is needed. */
static void body_of(const struct sim_fleet *f, const struct sim_dev *d, char *buf, size_t cap)
{
	const char *num = strrchr(d->id, '-');
	unsigned i = d->index;

	snprintf(buf, cap,
		 "{\"id\":\"%s\",\"name\":\"%s %s\",\"model\":\"%s\","
		 "\"tags\":{\"site\":\"%s\",\"line\":\"%u\"}}",
		 d->id, display_model(d->model), num ? num + 1 : d->id, sim_model_name(d->model),
		 i % 2 == 0 ? "north" : "south", (i / 2) % 4 + 1);
	(void)f;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

enum mote_err sim_register(struct sim_fleet *f, char *err, size_t errcap)
{
	const struct sim_config *cfg = &f->cfg;
	char url[1024], auth[1200], json[512];
	struct curl_slist *h = NULL;
	struct body b;
	enum mote_err rc = MOTE_OK;
	unsigned created = 0;
	uint64_t waited_since = 0;
	CURL *c = curl_easy_init();

	if (!c) {
		snprintf(err, errcap, "cannot start libcurl");
		return MOTE_ENOMEM;
	}
	size_t ul = strlen(cfg->api_url);
	while (ul > 0 && cfg->api_url[ul - 1] == '/')
		ul--;
	snprintf(url, sizeof url, "%.*s/api/v1/devices", (int)ul, cfg->api_url);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->token ? cfg->token : "");
	h = curl_slist_append(h, "Content-Type: application/json");
	if (h)
		h = curl_slist_append(h, auth);
	if (!h) {
		rc = MOTE_ENOMEM;
		snprintf(err, errcap, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");

	for (unsigned i = 0; i < cfg->devices; i++) {
		struct sim_dev *d = &f->devs[i];
		long status = 0;

		if (cfg->cancelled && cfg->cancelled(cfg->cancel_ctx)) {
			snprintf(err, errcap, "stopped while registering devices");
			rc = MOTE_EAGAIN;
			goto out;
		}
		body_of(f, d, json, sizeof json);
		b.len = 0;
		b.buf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
		CURLcode cc = curl_easy_perform(c);
		if (cc == CURLE_COULDNT_CONNECT) {
			/* The hub may still be starting (make run starts both). */
			uint64_t now = mote_mono_ms();
			if (!waited_since) {
				waited_since = now;
				MOTE_INFO("sim", "event=waiting_for_api url=%s", url);
			}
			if (now - waited_since < cfg->api_wait_ms) {
				sleep_ms(500);
				i--;
				continue;
			}
		}
		if (cc != CURLE_OK) {
			snprintf(err, errcap, "registering %s at %s: %s: check --api URL and that "
				 "the hub runs with --http", d->id, url, curl_easy_strerror(cc));
			rc = MOTE_EIO;
			goto out;
		}
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200 || status == 201) {
			created++;
			continue;
		}
		if (status == 409)
			continue;
		if (status == 401 || status == 403) {
			snprintf(err, errcap, "the API refused the token (HTTP %ld): pass --token with "
				 "a token of scope write (mote token create --scope write)", status);
			rc = MOTE_EDENIED;
			goto out;
		}
		snprintf(err, errcap, "registering %s: HTTP %ld: %.300s", d->id, status, b.buf);
		rc = MOTE_EIO;
		goto out;
	}
	MOTE_INFO("sim", "event=registered created=%u existing=%u", created,
		  cfg->devices - created);
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}
