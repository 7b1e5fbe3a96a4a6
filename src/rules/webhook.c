/*
 * webhook.c - webhooks: the webhooks table and its REST operations, and
 * delivery of alert notifications by the module's own thread with libcurl.
 *
 * The pipeline thread writes a delivery row (status pending) and hands the
 * job to the thread through a bounded in-memory queue; when the queue is
 * full the row is marked dropped and counted. The thread POSTs, retries
 * with exponential backoff up to webhook_attempts, and reports each
 * outcome through a result list that the pipeline thread drains into the
 * delivery log (rules_tick, or a read of the log) - the thread never touches
 * SQLite, whose handle belongs to the pipeline. Pending rows survive a
 * restart: rules_open queues them again.
 *
 * Every request carries X-Mote-Signature: sha256=<hex HMAC-SHA256 of the
 * exact body with the webhook's secret> and X-Mote-Delivery: <delivery id>
 * (the same on every retry, so a receiver can drop duplicates).
 *
 * Locks: q.mu guards q (jobs, results, counters); never held during I/O.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/clock.h"
#include "base/log.h"
#include "rules/rules_int.h"

#define URL_MAX 2048
#define SECRET_MAX 256
#define BACKOFF_MAX_MS 300000
#define DELIVERIES_MAX 1000

static const char *const event_names[] = { "alert", "alert.raised", "alert.updated",
					   "alert.acknowledged", "alert.cleared" };

bool webhook_schema(struct rules *r)
{
	return rules_exec(r,
		"CREATE TABLE IF NOT EXISTS webhooks ("
		" id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, secret TEXT NOT NULL,"
		" events TEXT NOT NULL, created_ms INTEGER NOT NULL);"
		"CREATE TABLE IF NOT EXISTS webhook_deliveries ("
		" id INTEGER PRIMARY KEY AUTOINCREMENT, webhook INTEGER NOT NULL, alert INTEGER,"
		" event TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
		" http_code INTEGER, error TEXT, body TEXT, created_ms INTEGER NOT NULL,"
		" updated_ms INTEGER NOT NULL);"
		"CREATE INDEX IF NOT EXISTS webhook_deliveries_hook ON webhook_deliveries(webhook, id);"
		"CREATE INDEX IF NOT EXISTS webhook_deliveries_status ON webhook_deliveries(status);");
}

void webhook_sign(const char *key, const char *body, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, len, md, &mdlen);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

/* ---- the delivery thread ------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static int abort_on_stop(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	struct rules *r = ud;
	return atomic_load(&r->q.stop) ? 1 : 0;
}

/* One POST; the HTTP status (0: none) and an error sentence on failure. */
static bool post(struct rules *r, CURL *c, const struct whjob *j, int *code, char *err, size_t cap)
{
	char sig[65], h_sig[96], h_id[64], h_ev[64];
	webhook_sign(j->secret, j->body, strlen(j->body), sig);
	snprintf(h_sig, sizeof h_sig, "X-Mote-Signature: sha256=%s", sig);
	snprintf(h_id, sizeof h_id, "X-Mote-Delivery: %" PRId64, j->delivery);
	snprintf(h_ev, sizeof h_ev, "X-Mote-Event: %s", j->event);
	struct curl_slist *h = NULL, *t;
	const char *lines[] = { "Content-Type: application/json", h_sig, h_id, h_ev,
				"User-Agent: mote/" MOTE_VERSION, "Expect:" };
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		if (!(t = curl_slist_append(h, lines[i]))) {
			curl_slist_free_all(h);
			snprintf(err, cap, "out of memory");
			*code = 0;
			return false;
		}
		h = t;
	}
	char ebuf[CURL_ERROR_SIZE] = "";
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, j->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->cfg.webhook_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	CURLcode rc = curl_easy_perform(c);
	long http = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	curl_slist_free_all(h);
	*code = (int)http;
	if (rc != CURLE_OK) {
		snprintf(err, cap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
		return false;
	}
	if (http < 200 || http > 299) {
		snprintf(err, cap, "HTTP %ld", http);
		return false;
	}
	err[0] = '\0';
	return true;
}

static void push_result(struct rules *r, const struct whjob *j, const char *status, int code,
			const char *err)
{
	struct whres *res = calloc(1, sizeof *res);
	if (!res)
		return;
	res->delivery = j->delivery;
	res->attempts = j->attempts;
	res->http_code = code;
	snprintf(res->status, sizeof res->status, "%s", status);
	snprintf(res->error, sizeof res->error, "%s", err ? err : "");
	res->at_ms = (int64_t)mote_wall_ms();
	*r->q.res_tail = res;
	r->q.res_tail = &res->next;
}

static void job_free(struct whjob *j)
{
	if (!j)
		return;
	free(j->url);
	free(j->secret);
	free(j->body);
	free(j);
}

static void *run(void *arg)
{
	struct rules *r = arg;
	struct whq *q = &r->q;
	CURL *c = curl_easy_init();
	pthread_mutex_lock(&q->mu);
	while (!atomic_load(&q->stop)) {
		struct whjob **best = NULL;
		for (struct whjob **pp = &q->jobs; *pp; pp = &(*pp)->next)
			if (!best || (*pp)->due_mono < (*best)->due_mono ||
			    ((*pp)->due_mono == (*best)->due_mono && (*pp)->delivery < (*best)->delivery))
				best = pp; /* the earliest due, oldest first */
		uint64_t now = mote_mono_ms();
		if (!best || (*best)->due_mono > now) {
			if (!best) {
				pthread_cond_wait(&q->cv, &q->mu);
			} else {
				uint64_t wait = (*best)->due_mono - now;
				struct timespec ts = mote_mono_deadline(wait);
				pthread_cond_timedwait(&q->cv, &q->mu, &ts);
			}
			continue;
		}
		struct whjob *j = *best;
		*best = j->next; /* in flight: still counted in njobs */
		j->next = NULL;
		pthread_mutex_unlock(&q->mu);

		int code = 0;
		char err[160];
		bool ok = c ? post(r, c, j, &code, err, sizeof err) : false;
		if (!c)
			snprintf(err, sizeof err, "libcurl did not start");
		j->attempts++;

		pthread_mutex_lock(&q->mu);
		if (ok) {
			push_result(r, j, "delivered", code, NULL);
			q->delivered++;
		} else if (j->attempts >= r->cfg.webhook_attempts || atomic_load(&q->stop)) {
			if (atomic_load(&q->stop)) {
				push_result(r, j, "pending", code, err); /* stays in the log as waiting */
			} else {
				push_result(r, j, "failed", code, err);
				q->failed++;
				MOTE_WARN("rules", "event=webhook_failed delivery=%" PRId64 " attempts=%u error=\"%s\"",
					  j->delivery, j->attempts, err);
			}
		} else {
			uint64_t back = (uint64_t)r->cfg.webhook_backoff_ms << (j->attempts - 1 < 20 ? j->attempts - 1 : 20);
			if (back > BACKOFF_MAX_MS)
				back = BACKOFF_MAX_MS;
			j->due_mono = mote_mono_ms() + back;
			push_result(r, j, "pending", code, err);
			j->next = q->jobs;
			q->jobs = j;
			continue;
		}
		q->njobs--;
		job_free(j);
	}
	pthread_mutex_unlock(&q->mu);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

/* libcurl's global initialisation is process-wide by libcurl's design and
 * must run once before any handle: the one piece of process state here. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void enqueue(struct rules *r, int64_t delivery, const char *url, const char *secret,
		    const char *event, const char *body, uint32_t attempts);

/* Deliveries a previous run left waiting. */
static void requeue_pending(struct rules *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT d.id, w.url, w.secret, d.event, d.body, d.attempts FROM webhook_deliveries d"
			       " JOIN webhooks w ON w.id = d.webhook WHERE d.status='pending' ORDER BY d.id",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(st, 4);
		uint32_t att = (uint32_t)sqlite3_column_int(st, 5);
		enqueue(r, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			(const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
			body ? body : "{}", att < r->cfg.webhook_attempts ? att : r->cfg.webhook_attempts - 1);
	}
	sqlite3_finalize(st);
}

enum mote_err webhook_start(struct rules *r)
{
	pthread_once(&curl_once, curl_start);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&r->q.mu, NULL);
	pthread_cond_init(&r->q.cv, &ca);
	pthread_condattr_destroy(&ca);
	r->q.res_tail = &r->q.res;
	r->q_ready = true;
	requeue_pending(r);
	if (pthread_create(&r->thread, NULL, run, r) != 0)
		return MOTE_EIO;
	r->thread_started = true;
	return MOTE_OK;
}

void webhook_stop(struct rules *r)
{
	if (!r->q_ready)
		return;
	if (r->thread_started) {
		pthread_mutex_lock(&r->q.mu);
		atomic_store(&r->q.stop, true);
		pthread_cond_broadcast(&r->q.cv);
		pthread_mutex_unlock(&r->q.mu);
		pthread_join(r->thread, NULL);
		r->thread_started = false;
	}
	webhook_drain(r);
	for (struct whjob *j = r->q.jobs, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	r->q.jobs = NULL;
	pthread_mutex_destroy(&r->q.mu);
	pthread_cond_destroy(&r->q.cv);
	r->q_ready = false;
}

/* ---- the pipeline side ----------------------------------------------------- */

static void set_status(struct rules *r, int64_t delivery, const char *status, uint32_t attempts,
		       int code, const char *err, int64_t at_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE webhook_deliveries SET status=?1, attempts=?2, http_code=?3, error=?4,"
			       " updated_ms=?5 WHERE id=?6", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)attempts);
	if (code)
		sqlite3_bind_int(st, 3, code);
	if (err && *err)
		sqlite3_bind_text(st, 4, err, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, at_ms);
	sqlite3_bind_int64(st, 6, delivery);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

void webhook_drain(struct rules *r)
{
	if (!r->q_ready)
		return;
	pthread_mutex_lock(&r->q.mu);
	struct whres *res = r->q.res;
	r->q.res = NULL;
	r->q.res_tail = &r->q.res;
	pthread_mutex_unlock(&r->q.mu);
	if (!res)
		return;
	rules_exec(r, "SAVEPOINT webhook_drain");
	for (struct whres *n; res; res = n) {
		n = res->next;
		set_status(r, res->delivery, res->status, res->attempts, res->http_code, res->error, res->at_ms);
		free(res);
	}
	rules_exec(r, "RELEASE webhook_drain");
}

static void enqueue(struct rules *r, int64_t delivery, const char *url, const char *secret,
		    const char *event, const char *body, uint32_t attempts)
{
	struct whjob *j = calloc(1, sizeof *j);
	bool ok = j && (j->url = strdup(url)) && (j->secret = strdup(secret)) && (j->body = strdup(body));
	if (ok) {
		j->delivery = delivery;
		j->attempts = attempts;
		snprintf(j->event, sizeof j->event, "%s", event ? event : "");
		pthread_mutex_lock(&r->q.mu);
		if (r->q.njobs >= r->cfg.webhook_queue) {
			ok = false;
		} else {
			j->due_mono = 0;
			j->next = r->q.jobs;
			r->q.jobs = j;
			r->q.njobs++;
			pthread_cond_signal(&r->q.cv);
		}
		pthread_mutex_unlock(&r->q.mu);
	}
	if (ok)
		return;
	job_free(j);
	r->dropped++;
	uint64_t now = mote_mono_ms();
	if (now - r->last_drop_log_ms >= 10000 || r->dropped == 1) {
		r->last_drop_log_ms = now;
		MOTE_WARN("rules", "event=webhook_dropped delivery=%" PRId64 " dropped_total=%" PRIu64
			  " reason=queue_full queue=%u", delivery, r->dropped, r->cfg.webhook_queue);
	}
	set_status(r, delivery, "dropped", attempts, 0, "delivery queue full", (int64_t)mote_wall_ms());
}

static bool wants(const char *events_json, const char *event)
{
	cJSON *a = cJSON_Parse(events_json ? events_json : "");
	bool yes = false;
	const cJSON *e;
	cJSON_ArrayForEach(e, a)
		if (cJSON_IsString(e) && (strcmp(e->valuestring, "alert") == 0 ||
					  strcmp(e->valuestring, event) == 0))
			yes = true;
	cJSON_Delete(a);
	return yes;
}

void webhook_notify(struct rules *r, const char *event, int64_t alert_id, const char *body,
		    int64_t now_ms)
{
	sqlite3_stmt *st, *ins;
	if (sqlite3_prepare_v2(r->db, "SELECT id, url, secret, events FROM webhooks ORDER BY id", -1, &st,
			       NULL) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO webhook_deliveries(webhook, alert, event, status, attempts, body,"
			       " created_ms, updated_ms) VALUES(?1,?2,?3,'pending',0,?4,?5,?5)",
			       -1, &ins, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (!wants((const char *)sqlite3_column_text(st, 3), event))
			continue;
		sqlite3_bind_int64(ins, 1, sqlite3_column_int64(st, 0));
		sqlite3_bind_int64(ins, 2, alert_id);
		sqlite3_bind_text(ins, 3, event, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, body, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 5, now_ms);
		bool ok = sqlite3_step(ins) == SQLITE_DONE;
		sqlite3_reset(ins);
		if (ok)
			enqueue(r, sqlite3_last_insert_rowid(r->db), (const char *)sqlite3_column_text(st, 1),
				(const char *)sqlite3_column_text(st, 2), event, body, 0);
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(st);
}

void webhook_retention(struct rules *r, int64_t now_ms)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_ms < ?",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, now_ms - (int64_t)r->cfg.history_days * 86400000);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

/* ---- REST ------------------------------------------------------------------ */

static cJSON *hook_obj(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
	cJSON_AddStringToObject(o, "url", (const char *)sqlite3_column_text(st, 1));
	cJSON *ev = cJSON_Parse((const char *)sqlite3_column_text(st, 2));
	if (ev)
		cJSON_AddItemToObject(o, "events", ev);
	cJSON_AddNumberToObject(o, "created_ms", (double)sqlite3_column_int64(st, 3));
	return o;
}

void webhooks_list(struct rules *r, struct mote_reply *out)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, url, events, created_ms FROM webhooks ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "webhooks: %s", sqlite3_errmsg(r->db));
		return;
	}
	rules_reply_rows(out, st, "webhooks", hook_obj);
}

/* Validates a webhook object; NULL and a sentence in err, or the events array to store. */
static char *validate(const cJSON *j, const char **url, const char **secret, char *err, size_t cap)
{
	if (!cJSON_IsObject(j)) {
		snprintf(err, cap, "a webhook is a JSON object");
		return NULL;
	}
	for (const cJSON *f = j->child; f; f = f->next)
		if (strcmp(f->string, "url") != 0 && strcmp(f->string, "secret") != 0 &&
		    strcmp(f->string, "events") != 0) {
			snprintf(err, cap, "unknown field '%.64s' (url, secret, events)", f->string);
			return NULL;
		}
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "url");
	if (!u) {
		snprintf(err, cap, "field 'url' is required");
		return NULL;
	}
	if (!cJSON_IsString(u)) {
		snprintf(err, cap, "field 'url' must be a string");
		return NULL;
	}
	size_t n = strlen(u->valuestring);
	bool scheme = strncmp(u->valuestring, "http://", 7) == 0 || strncmp(u->valuestring, "https://", 8) == 0;
	if (!scheme || n > URL_MAX || n < 10) {
		snprintf(err, cap, "field 'url' must be an http:// or https:// URL of at most %d bytes", URL_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u->valuestring[i] <= 0x20 || u->valuestring[i] == 0x7f) {
			snprintf(err, cap, "field 'url' contains a space or control character");
			return NULL;
		}
	*url = u->valuestring;
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "secret");
	*secret = NULL;
	if (s) {
		if (!cJSON_IsString(s) || !s->valuestring[0] || strlen(s->valuestring) > SECRET_MAX) {
			snprintf(err, cap, "field 'secret' must be a string of 1 to %d bytes", SECRET_MAX);
			return NULL;
		}
		*secret = s->valuestring;
	}
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "events");
	if (!ev)
		return strdup("[\"alert\"]");
	if (!cJSON_IsArray(ev) || !ev->child) {
		snprintf(err, cap, "field 'events' must be a non-empty array of event names");
		return NULL;
	}
	const cJSON *e;
	int count = 0;
	cJSON_ArrayForEach(e, ev) {
		size_t k = 0;
		if (cJSON_IsString(e))
			for (k = 0; k < sizeof event_names / sizeof event_names[0]; k++)
				if (strcmp(e->valuestring, event_names[k]) == 0)
					break;
		if (!cJSON_IsString(e) || k == sizeof event_names / sizeof event_names[0]) {
			snprintf(err, cap, "field 'events': item %d must be one of alert, alert.raised, "
				 "alert.updated, alert.acknowledged, alert.cleared", count);
			return NULL;
		}
		if (++count > 16) {
			snprintf(err, cap, "field 'events' has more than 16 items");
			return NULL;
		}
	}
	return cJSON_PrintUnformatted(ev);
}

void webhooks_create(struct rules *r, const char *body, size_t len, struct mote_reply *out)
{
	if (len > RULES_BODY_MAX) {
		mote_reply_error(out, 413, "a webhook is at most %d bytes of JSON", RULES_BODY_MAX);
		return;
	}
	cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
	if (!j) {
		mote_reply_error(out, 400, "the body is not valid JSON");
		return;
	}
	const char *url = NULL, *secret = NULL;
	char err[256], gen[65];
	char *events = validate(j, &url, &secret, err, sizeof err);
	sqlite3_stmt *st = NULL;
	if (!events) {
		mote_reply_error(out, 400, "%s", err);
		goto out;
	}
	if (!secret) {
		/* No secret given: make one, shown once in this reply. */
		unsigned char raw[32];
		if (RAND_bytes(raw, sizeof raw) != 1) {
			mote_reply_error(out, 500, "no random bytes for a secret");
			goto out;
		}
		for (int i = 0; i < 32; i++)
			snprintf(gen + 2 * i, 3, "%02x", raw[i]);
		secret = gen;
	}
	int64_t now = (int64_t)mote_wall_ms();
	if (sqlite3_prepare_v2(r->db, "INSERT INTO webhooks(url, secret, events, created_ms) VALUES(?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "webhooks: %s", sqlite3_errmsg(r->db));
		goto out;
	}
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, secret, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, events, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		mote_reply_error(out, 500, "webhooks: %s", sqlite3_errmsg(r->db));
		goto out;
	}
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddNumberToObject(o, "id", (double)sqlite3_last_insert_rowid(r->db));
		cJSON_AddStringToObject(o, "url", url);
		cJSON_AddItemToObject(o, "events", cJSON_Parse(events));
		cJSON_AddStringToObject(o, "secret", secret);
		cJSON_AddNumberToObject(o, "created_ms", (double)now);
	}
	mote_reply_cjson(out, 201, o);
out:
	sqlite3_finalize(st);
	free(events);
	cJSON_Delete(j);
}

static bool hook_exists(struct rules *r, int64_t id)
{
	sqlite3_stmt *st;
	bool found = false;
	if (id > 0 && sqlite3_prepare_v2(r->db, "SELECT 1 FROM webhooks WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	return found;
}

void webhooks_delete(struct rules *r, const char *webhook_id, struct mote_reply *out)
{
	int64_t id = rules_parse_id(webhook_id);
	if (!hook_exists(r, id)) {
		mote_reply_error(out, 404, "no webhook '%.64s'", webhook_id ? webhook_id : "");
		return;
	}
	/* Waiting retries of a deleted webhook stop; their rows say so. */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id FROM webhook_deliveries WHERE webhook=? AND status='pending'",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			int64_t d = sqlite3_column_int64(st, 0);
			pthread_mutex_lock(&r->q.mu);
			for (struct whjob **pp = &r->q.jobs; *pp; pp = &(*pp)->next)
				if ((*pp)->delivery == d) {
					struct whjob *j = *pp;
					*pp = j->next;
					r->q.njobs--;
					job_free(j);
					break;
				}
			pthread_mutex_unlock(&r->q.mu);
		}
		sqlite3_finalize(st);
	}
	webhook_drain(r);
	if (sqlite3_prepare_v2(r->db, "UPDATE webhook_deliveries SET status='cancelled', error='webhook deleted'"
			       " WHERE webhook=? AND status='pending'", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(r->db, "DELETE FROM webhooks WHERE id=?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	mote_reply_json(out, 204, NULL);
}

static cJSON *delivery_obj(sqlite3_stmt *st)
{
	cJSON *d = cJSON_CreateObject();
	if (!d)
		return NULL;
	cJSON_AddNumberToObject(d, "id", (double)sqlite3_column_int64(st, 0));
	cJSON_AddNumberToObject(d, "webhook", (double)sqlite3_column_int64(st, 1));
	cJSON_AddNumberToObject(d, "alert", (double)sqlite3_column_int64(st, 2));
	cJSON_AddStringToObject(d, "event", (const char *)sqlite3_column_text(st, 3));
	cJSON_AddStringToObject(d, "status", (const char *)sqlite3_column_text(st, 4));
	cJSON_AddNumberToObject(d, "attempts", sqlite3_column_int(st, 5));
	if (sqlite3_column_type(st, 6) == SQLITE_NULL)
		cJSON_AddNullToObject(d, "http_code");
	else
		cJSON_AddNumberToObject(d, "http_code", sqlite3_column_int(st, 6));
	const char *e = (const char *)sqlite3_column_text(st, 7);
	if (e)
		cJSON_AddStringToObject(d, "error", e);
	else
		cJSON_AddNullToObject(d, "error");
	cJSON_AddNumberToObject(d, "created_ms", (double)sqlite3_column_int64(st, 8));
	cJSON_AddNumberToObject(d, "updated_ms", (double)sqlite3_column_int64(st, 9));
	return d;
}

void webhooks_deliveries(struct rules *r, const char *webhook_id, uint32_t limit,
			 struct mote_reply *out)
{
	int64_t id = rules_parse_id(webhook_id);
	if (!hook_exists(r, id)) {
		mote_reply_error(out, 404, "no webhook '%.64s'", webhook_id ? webhook_id : "");
		return;
	}
	webhook_drain(r);
	if (!limit)
		limit = 100;
	if (limit > DELIVERIES_MAX)
		limit = DELIVERIES_MAX;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			       "SELECT id, webhook, alert, event, status, attempts, http_code, error, created_ms,"
			       " updated_ms FROM webhook_deliveries WHERE webhook=? ORDER BY id DESC LIMIT ?",
			       -1, &st, NULL) != SQLITE_OK) {
		mote_reply_error(out, 500, "webhooks: %s", sqlite3_errmsg(r->db));
		return;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, limit);
	rules_reply_rows(out, st, "deliveries", delivery_obj);
}
