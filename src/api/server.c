/*
 * server.c - the HTTP server (libmicrohttpd): listening, the request life
 * (target, route, token, body), answers with the API's headers and the one
 * error shape, and the Server-Sent Events streams.
 *
 * Threading mode: one thread per connection (MHD_USE_THREAD_PER_CONNECTION,
 * with poll() in the listening thread so descriptors above FD_SETSIZE work
 * in a hub that holds thousands of MQTT sockets). Why: an SSE stream is a
 * response whose reader callback has nothing to give most of the time; in
 * thread-per-connection mode the callback can simply wait on its client's
 * condition variable (with a deadline for the 15 s heartbeat) and return
 * when api_event queued a frame. The alternative, suspend/resume on one
 * polling thread, needs every event to find and resume connections from
 * foreign threads and a reader that never blocks; more code and more
 * races for no gain at our scale. The cost, one thread per open
 * connection, is bounded by max_connections (and SSE clients by
 * max_sse_clients), and platform_call already blocks its caller, which is
 * only harmless when the caller is a connection's own thread.
 *
 * Request flow: the URI log callback allocates the request and keeps the
 * raw target; the first access-handler call parses it, routes it (404,
 * 405 + Allow), checks the token (401 + WWW-Authenticate, 403, 429 while
 * the address is refused), the content type (415) and Content-Length
 * (413); later calls collect the body up to max_body_bytes; the last one
 * runs the handler (handlers.c). Every answer carries nosniff and
 * no-store, and every error the stable JSON shape of base/reply.h.
 * libmicrohttpd's own refusals (a request line or headers over its memory
 * limit, broken HTTP) keep its short HTML text; docs/api.md says so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api_int.h"
#include "api/ui.h"
#include "auth/acl.h"
#include "base/clock.h"
#include "base/log.h"

#define SSE_BUF_MAX (256u * 1024u)   /* frames waiting per client before it is dropped */
#define HEARTBEAT_MS 15000u
#define TOKEN_MAX 512

void api_config_defaults(struct api_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->addr = "127.0.0.1:8080";
	cfg->max_connections = 256;
	cfg->max_sse_clients = 64;
	cfg->max_body_bytes = 65536;
	cfg->timeout_s = 30;
	cfg->health_max_lag_ms = 30000;
}

/* ---- answers ---- */

static void count_status(struct api *a, unsigned status)
{
	unsigned k = status / 100;
	if (k >= 1 && k <= 5)
		atomic_fetch_add_explicit(&a->by_class[k], 1, memory_order_relaxed);
}

static void common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

/* Queues r (taking its body) with extra headers (name, value pairs, NULL-ended). */
static enum MHD_Result send_reply(struct api *a, struct MHD_Connection *conn, struct mote_reply *r,
				  ...)
{
	static const char oom[] =
		"{\"status\":500,\"error\":\"internal\",\"message\":\"out of memory\"}";
	int status = r->status ? r->status : 500;
	const char *ctype = r->content_type ? r->content_type : "application/json";
	struct MHD_Response *resp;
	if (r->body) {
		resp = MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			r->body = NULL;
	} else if (status == 204) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else {
		status = status >= 400 ? status : 500;
		resp = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
	}
	mote_reply_clear(r);
	if (!resp)
		return MHD_NO;
	common_headers(resp);
	if (status != 204)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	va_list ap;
	va_start(ap, r);
	for (;;) {
		const char *name = va_arg(ap, const char *);
		if (!name)
			break;
		const char *value = va_arg(ap, const char *);
		if (value)
			MHD_add_response_header(resp, name, value);
	}
	va_end(ap);
	count_status(a, (unsigned)status);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_error(struct api *a, struct MHD_Connection *conn, int status,
				  const char *hname, const char *hvalue, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static enum MHD_Result send_error(struct api *a, struct MHD_Connection *conn, int status,
				  const char *hname, const char *hvalue, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct mote_reply r = { 0 };
	mote_reply_error(&r, status, "%s", msg);
	return send_reply(a, conn, &r, hname, hvalue, (const char *)NULL);
}

/* ---- tokens ---- */

/* ACL_ROLE_ADMIN < WRITE < READ: a lower role number is a wider scope. */
static bool role_allows(int role, uint8_t need)
{
	switch (need) {
	case API_NEED_NONE: return true;
	case API_NEED_READ: return role == ACL_ROLE_ADMIN || role == ACL_ROLE_WRITE || role == ACL_ROLE_READ;
	case API_NEED_WRITE: return role == ACL_ROLE_ADMIN || role == ACL_ROLE_WRITE;
	default: return role == ACL_ROLE_ADMIN;
	}
}

static const char *need_name(uint8_t need)
{
	return need == API_NEED_ADMIN ? "admin" : need == API_NEED_WRITE ? "write" : "read";
}

static const char *role_scope(int role)
{
	return role == ACL_ROLE_ADMIN ? "admin" : role == ACL_ROLE_WRITE ? "write" : "read";
}

/* 0: authorized; otherwise the answer was queued (*ret). */
static int check_token(struct api *a, struct MHD_Connection *conn, struct req *q,
		       enum MHD_Result *ret)
{
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h) {
		atomic_fetch_add_explicit(&a->auth_failed, 1, memory_order_relaxed);
		*ret = send_error(a, conn, 401, "WWW-Authenticate", "Bearer realm=\"mote\"",
				  "this route needs 'Authorization: Bearer TOKEN' (mote token create)");
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0) {
		atomic_fetch_add_explicit(&a->auth_failed, 1, memory_order_relaxed);
		*ret = send_error(a, conn, 401, "WWW-Authenticate",
				  "Bearer realm=\"mote\", error=\"invalid_request\"",
				  "the Authorization header must use the Bearer scheme");
		return -1;
	}
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	int role = -1;
	uint64_t retry = 0;
	enum mote_err e = MOTE_EDENIED;
	if (n > 0 && n <= TOKEN_MAX && a->auth) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		e = auth_check_token_from(a->auth, ci ? ci->client_addr : NULL, tok, n, &role, q->who,
					  sizeof q->who, &retry);
	}
	if (e == MOTE_EAGAIN) {
		char secs[24];
		snprintf(secs, sizeof secs, "%" PRIu64, (retry + 999) / 1000);
		*ret = send_error(a, conn, 429, "Retry-After", secs,
				  "too many failed logins from this address; try again in %s s", secs);
		return -1;
	}
	if (e != MOTE_OK) {
		atomic_fetch_add_explicit(&a->auth_failed, 1, memory_order_relaxed);
		*ret = send_error(a, conn, 401, "WWW-Authenticate",
				  "Bearer realm=\"mote\", error=\"invalid_token\"",
				  "the token is unknown or revoked");
		return -1;
	}
	q->role = role;
	if (!role_allows(role, q->route->need)) {
		*ret = send_error(a, conn, 403, "WWW-Authenticate",
				  "Bearer realm=\"mote\", error=\"insufficient_scope\"",
				  "%s %s needs a token with scope %s or wider; this token has scope %s",
				  q->route->method, q->route->path, need_name(q->route->need),
				  role_scope(role));
		return -1;
	}
	return 0;
}

/* application/json or application/<x>+json, parameters allowed. */
static bool json_type(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	const char *end = ct + strcspn(ct, "; \t");
	size_t n = (size_t)(end - ct);
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	       strncasecmp(end - 5, "+json", 5) == 0;
}

/* ---- SSE ---- */

struct sse_client {
	struct api *api;
	struct sse_client *next, *prev;
	struct api_events_filter f;
	char *buf;
	size_t off, len, cap;
	bool dropped;
	int fd;              /* the connection's socket, to notice a hang-up */
	pthread_cond_t cv;
};

/* Appends under sse_mu; false when it would exceed the bound. */
static bool sse_append(struct sse_client *c, const char *s, size_t n)
{
	if (c->off && c->off == c->len)
		c->off = c->len = 0;
	if (c->len - c->off + n > SSE_BUF_MAX)
		return false;
	if (c->len + n > c->cap) {
		if (c->off) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len + n > c->cap) {
			size_t cap = c->cap ? c->cap : 4096;
			while (cap < c->len + n)
				cap *= 2;
			char *b = realloc(c->buf, cap);
			if (!b)
				return false;
			c->buf = b;
			c->cap = cap;
		}
	}
	memcpy(c->buf + c->len, s, n);
	c->len += n;
	return true;
}

/* Whether the client hung up (it never sends after its request, so
 * readable means EOF or junk: either way the stream is over). */
static bool peer_gone(int fd)
{
	if (fd < 0)
		return false;
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
	return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
}

static bool before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

#define PEER_CHECK_MS 1000u

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	(void)pos;
	struct sse_client *c = cls;
	struct api *a = c->api;
	bool gone = false;
	pthread_mutex_lock(&a->sse_mu);
	if (c->len == c->off && !c->dropped && !atomic_load(&a->closing)) {
		/* Wait for a frame until the heartbeat is due, looking once a
		 * second whether the client went away: libmicrohttpd does not
		 * watch the socket while we wait here, and a hung-up client
		 * would hold its stream slot until the next write. */
		struct timespec now, beat, slice;
		clock_gettime(CLOCK_MONOTONIC, &now);
		beat = now;
		mote_timespec_add_ms(&beat, a->heartbeat_ms);
		while (c->len == c->off && !c->dropped && !atomic_load(&a->closing)) {
			slice = now;
			mote_timespec_add_ms(&slice, PEER_CHECK_MS);
			if (before(&beat, &slice))
				slice = beat;
			if (pthread_cond_timedwait(&c->cv, &a->sse_mu, &slice) == ETIMEDOUT) {
				clock_gettime(CLOCK_MONOTONIC, &now);
				if (!before(&now, &beat)) {
					/* A comment line: keeps proxies and the idle
					 * timeout from closing a quiet stream. */
					sse_append(c, ": heartbeat\n\n", 13);
					break;
				}
				if (peer_gone(c->fd)) {
					gone = true;
					break;
				}
			}
		}
	}
	ssize_t ret;
	if (c->dropped || gone)
		ret = MHD_CONTENT_READER_END_WITH_ERROR;
	else if (c->len == c->off)
		ret = MHD_CONTENT_READER_END_OF_STREAM; /* closing */
	else {
		size_t n = c->len - c->off;
		if (n > max)
			n = max;
		memcpy(out, c->buf + c->off, n);
		c->off += n;
		ret = (ssize_t)n;
	}
	pthread_mutex_unlock(&a->sse_mu);
	return ret;
}

static void sse_free(void *cls)
{
	struct sse_client *c = cls;
	struct api *a = c->api;
	pthread_mutex_lock(&a->sse_mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(&a->nclients, 1);
	pthread_mutex_unlock(&a->sse_mu);
	api_events_filter_free(&c->f);
	pthread_cond_destroy(&c->cv);
	free(c->buf);
	free(c);
}

static enum MHD_Result sse_start(struct api *a, struct MHD_Connection *conn, struct req *q)
{
	char err[300];
	struct sse_client *c = calloc(1, sizeof *c);
	if (!c)
		return send_error(a, conn, 500, NULL, NULL, "out of memory");
	if (!api_events_filter_parse(&q->uri, &c->f, err, sizeof err)) {
		free(c);
		return send_error(a, conn, 400, NULL, NULL, "%s", err);
	}
	c->api = a;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	c->fd = ci ? ci->connect_fd : -1;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	static const char hello[] = "retry: 3000\n: connected\n\n";
	pthread_mutex_lock(&a->sse_mu);
	bool full = atomic_load(&a->nclients) >= a->cfg.max_sse_clients;
	if (!full && sse_append(c, hello, sizeof hello - 1)) {
		c->next = a->clients;
		if (a->clients)
			a->clients->prev = c;
		a->clients = c;
		atomic_fetch_add(&a->nclients, 1);
	} else {
		full = true;
	}
	pthread_mutex_unlock(&a->sse_mu);
	if (full) {
		atomic_fetch_add_explicit(&a->sse_refused, 1, memory_order_relaxed);
		api_events_filter_free(&c->f);
		pthread_cond_destroy(&c->cv);
		free(c->buf);
		free(c);
		return send_error(a, conn, 503, "Retry-After", "10",
				  "too many event streams open (max %u)", a->cfg.max_sse_clients);
	}
	struct MHD_Response *resp =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, c, sse_free);
	if (!resp) {
		sse_free(c);
		return MHD_NO;
	}
	common_headers(resp);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	count_status(a, 200);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

bool api_listening(const struct api *a)
{
	return a && atomic_load_explicit(&a->nclients, memory_order_relaxed) > 0;
}

void api_event(struct api *a, const char *type, const char *device_id, const char *json)
{
	if (!a || !type || !json || atomic_load_explicit(&a->nclients, memory_order_relaxed) == 0)
		return;
	unsigned bit = api_event_type_bit(type);
	if (!bit)
		return;
	/* One frame for everyone. A raw line break can only be whitespace
	 * in JSON (inside strings it is escaped), so it becomes a space and
	 * the data stays on one data: line. */
	size_t tl = strlen(type), jl = strlen(json);
	size_t n = 7 + tl + 7 + jl + 2;
	char *frame = malloc(n + 1);
	if (!frame)
		return;
	int k = snprintf(frame, n + 1, "event: %s\ndata: ", type);
	char *w = frame + k;
	for (size_t i = 0; i < jl; i++)
		*w++ = json[i] == '\n' || json[i] == '\r' ? ' ' : json[i];
	*w++ = '\n';
	*w++ = '\n';
	size_t len = (size_t)(w - frame);
	pthread_mutex_lock(&a->sse_mu);
	for (struct sse_client *c = a->clients; c; c = c->next) {
		if (c->dropped || !api_events_filter_match(&c->f, bit, device_id))
			continue;
		if (!sse_append(c, frame, len)) {
			/* Its memory goes now; the connection ends when its
			 * thread next asks for data (or the idle timeout). */
			c->dropped = true;
			free(c->buf);
			c->buf = NULL;
			c->off = c->len = c->cap = 0;
			atomic_fetch_add_explicit(&a->sse_dropped, 1, memory_order_relaxed);
			MOTE_WARN("api", "event=sse_client_dropped why=\"reads too slowly (%u KiB waiting)\"",
				  SSE_BUF_MAX / 1024);
		} else {
			atomic_fetch_add_explicit(&a->sse_events, 1, memory_order_relaxed);
		}
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&a->sse_mu);
	free(frame);
}

/* ---- the dashboard ---- */

/* GET/HEAD / and /assets/{name}: ui.c decides, this sends (libmicrohttpd
 * leaves the body out of a HEAD answer by itself). */
static enum MHD_Result ui_send(struct api *a, struct MHD_Connection *conn, struct req *q)
{
	const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	struct ui_answer u;
	ui_answer(q->route->id == API_R_UI_ASSET ? q->id : NULL, inm, &u);
	if (u.status >= 400)
		return send_error(a, conn, (int)u.status, NULL, NULL, "%s", u.message);
	size_t len = u.status == 304 ? 0 : u.asset->len;
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)u.asset->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	for (unsigned i = 0; i < u.nhdr; i++)
		MHD_add_response_header(resp, u.hdr[i][0], u.hdr[i][1]);
	count_status(a, u.status);
	enum MHD_Result ret = MHD_queue_response(conn, u.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- the request life ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)conn;
	struct req *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->api = cls;
	q->raw = strdup(uri ? uri : "");
	return q;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req *q = *con_cls;
	if (!q)
		return;
	api_uri_free(&q->uri);
	free(q->raw);
	free(q->body);
	free(q);
	*con_cls = NULL;
}

/* The first call: everything that can be decided from the head. 1: go on
 * (wait for the body or run); 0: an answer was queued (*ret). */
static int head(struct api *a, struct MHD_Connection *conn, struct req *q, const char *method,
		enum MHD_Result *ret)
{
	char err[300], allow[64];
	if (atomic_load(&a->closing)) {
		*ret = send_error(a, conn, 503, "Connection", "close", "the hub is shutting down");
		return 0;
	}
	if (!q->raw) {
		*ret = send_error(a, conn, 500, NULL, NULL, "out of memory");
		return 0;
	}
	enum mote_err e = api_uri_parse(q->raw, strlen(q->raw), &q->uri, err, sizeof err);
	if (e != MOTE_OK) {
		if (e == MOTE_ENOMEM)
			*ret = send_error(a, conn, 500, NULL, NULL, "out of memory");
		else
			*ret = send_error(a, conn, 400, NULL, NULL, "%s", err);
		return 0;
	}
	switch (api_route_find(method, &q->uri, &q->route, &q->id, allow, sizeof allow)) {
	case API_MATCH_NO_PATH:
		*ret = send_error(a, conn, 404, NULL, NULL, "no route for %.*s (see /api/v1/openapi.json)",
				  (int)(strcspn(q->raw, "?") > 200 ? 200 : strcspn(q->raw, "?")), q->raw);
		return 0;
	case API_MATCH_NO_METHOD:
		*ret = send_error(a, conn, 405, "Allow", allow, "%.20s is not allowed here; allowed: %s",
				  method, allow);
		return 0;
	case API_MATCH_OK:
		break;
	}
	bool public_route = q->route->need == API_NEED_NONE ||
			    (q->route->id == API_R_METRICS && a->cfg.metrics_public);
	if (!public_route && check_token(a, conn, q, ret) != 0)
		return 0;
	if (!api_query_check(q->route, &q->uri, err, sizeof err)) {
		*ret = send_error(a, conn, 400, NULL, NULL, "%s", err);
		return 0;
	}
	if (q->route->json_body) {
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_TYPE);
		if (!json_type(ct)) {
			*ret = send_error(a, conn, 415, NULL, NULL,
					  "the body must be JSON (Content-Type: application/json), not %.60s",
					  ct ? ct : "nothing");
			return 0;
		}
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > a->cfg.max_body_bytes) {
			*ret = send_error(a, conn, 413, "Connection", "close",
					  "the body is larger than %u bytes", a->cfg.max_body_bytes);
			return 0;
		}
	}
	return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)url;
	(void)version;
	struct api *a = cls;
	struct req *q = *con_cls;
	enum MHD_Result ret = MHD_NO;
	if (!q) {
		q = on_uri(a, "", conn);
		if (!q)
			return MHD_NO;
		*con_cls = q;
	}
	if (!q->started) {
		q->started = true;
		if (!head(a, conn, q, method, &ret))
			return ret;
		/* Answering in the first call makes libmicrohttpd close the
		 * connection (it cannot know the request was read); the answer
		 * comes in the next call, after any body. */
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (!q->route->json_body || q->too_big)
			return MHD_YES;
		if (q->len + n > a->cfg.max_body_bytes) {
			q->too_big = true;
			free(q->body);
			q->body = NULL;
			q->len = 0;
			return MHD_YES;
		}
		char *b = realloc(q->body, q->len + n + 1);
		if (!b)
			return MHD_NO;
		memcpy(b + q->len, upload_data, n);
		q->body = b;
		q->len += n;
		q->body[q->len] = '\0';
		return MHD_YES;
	}
	if (q->too_big)
		return send_error(a, conn, 413, "Connection", "close", "the body is larger than %u bytes",
				  a->cfg.max_body_bytes);
	if (q->route->json_body && q->len == 0)
		return send_error(a, conn, 400, NULL, NULL, "this route needs a JSON body");
	if (q->route->id == API_R_EVENTS)
		return sse_start(a, conn, q);
	if (q->route->ui)
		return ui_send(a, conn, q);
	struct mote_reply r = { 0 };
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	api_handle(a, q, accept, &r);
	const char *www = r.status == 401 ? "Bearer realm=\"mote\"" : NULL;
	return send_reply(a, conn, &r, "WWW-Authenticate", www, (const char *)NULL);
}

/* libmicrohttpd hands its own format strings. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* Junk from the network makes libmicrohttpd talk: at most 10 lines
	 * per 10 s, the rest counted in the next line. */
	struct api *a = cls;
	uint64_t win = mote_mono_ms() / 10000;
	pthread_mutex_lock(&a->log_mu);
	if (win != a->log_window) {
		a->log_window = win;
		a->log_lines = 0;
	}
	bool say = a->log_lines++ < 10;
	uint64_t hidden = a->log_hidden;
	if (say)
		a->log_hidden = 0;
	else
		a->log_hidden++;
	pthread_mutex_unlock(&a->log_mu);
	if (!say)
		return;
	char msg[400], quoted[460];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	MOTE_WARN("api", "event=http_server msg=%s unreported_before=%" PRIu64,
		  mote_log_quote(quoted, sizeof quoted, msg, n), hidden);
}

/* ---- life ---- */

/* Binds host:port ("[::1]:0", "0.0.0.0:8080", "localhost:80"). -1 with err. */
static int listen_on(const char *addr, uint16_t *port, char *err, size_t errcap)
{
	char host[256], serv[16];
	const char *colon;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof host) {
			snprintf(err, errcap, "--http %s: expected [IPv6]:PORT", addr);
			return -1;
		}
		memcpy(host, addr + 1, (size_t)(close - addr - 1));
		host[close - addr - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host) {
			snprintf(err, errcap, "--http %s: expected HOST:PORT", addr);
			return -1;
		}
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
	}
	uint32_t p;
	if (!api_parse_u32(colon + 1, 0, 65535, &p)) {
		snprintf(err, errcap, "--http %s: the port must be 0..65535", addr);
		return -1;
	}
	snprintf(serv, sizeof serv, "%u", p);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, serv, &hints, &res);
	if (gai != 0) {
		snprintf(err, errcap, "--http %s: %s", addr, gai_strerror(gai));
		return -1;
	}
	int fd = -1, last = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof ss;
			getsockname(fd, (struct sockaddr *)&ss, &sl);
			*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							       : ((struct sockaddr_in *)&ss)->sin_port);
			break;
		}
		last = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errcap, "--http %s: %s", addr, strerror(last ? last : EADDRNOTAVAIL));
	return fd;
}

enum mote_err api_start(const struct api_config *cfg, struct platform *p, struct auth *auth,
			struct api **out, char *err, size_t errcap)
{
	err[0] = '\0';
	struct api *a = calloc(1, sizeof *a);
	if (!a)
		return MOTE_ENOMEM;
	a->cfg = *cfg;
	snprintf(a->addr, sizeof a->addr, "%s", cfg->addr ? cfg->addr : "127.0.0.1:8080");
	a->cfg.addr = a->addr;
	if (!a->cfg.max_connections)
		a->cfg.max_connections = 256;
	if (!a->cfg.max_sse_clients)
		a->cfg.max_sse_clients = 64;
	if (!a->cfg.max_body_bytes)
		a->cfg.max_body_bytes = 65536;
	if (!a->cfg.timeout_s)
		a->cfg.timeout_s = 30;
	a->p = p;
	a->auth = auth;
	/* The heartbeat must beat the idle timeout on a quiet stream. */
	a->heartbeat_ms = HEARTBEAT_MS;
	if (a->heartbeat_ms > a->cfg.timeout_s * 500u)
		a->heartbeat_ms = a->cfg.timeout_s * 500u;
	if (a->heartbeat_ms < 100)
		a->heartbeat_ms = 100;
	pthread_mutex_init(&a->sse_mu, NULL);
	pthread_mutex_init(&a->log_mu, NULL);
	int fd = listen_on(a->addr, &a->port, err, errcap);
	if (fd < 0) {
		pthread_mutex_destroy(&a->sse_mu);
		pthread_mutex_destroy(&a->log_mu);
		free(a);
		return MOTE_EIO;
	}
	a->d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)a->cfg.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)a->cfg.timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, a, MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
		MHD_OPTION_END);
	if (!a->d) {
		close(fd);
		snprintf(err, errcap, "--http %s: the HTTP server did not start", a->addr);
		pthread_mutex_destroy(&a->sse_mu);
		pthread_mutex_destroy(&a->log_mu);
		free(a);
		return MOTE_EIO;
	}
	MOTE_INFO("api", "event=http_listening addr=%s port=%u max_connections=%u max_sse_clients=%u "
			 "metrics_public=%s",
		  a->addr, a->port, a->cfg.max_connections, a->cfg.max_sse_clients,
		  a->cfg.metrics_public ? "yes" : "no");
	*out = a;
	return MOTE_OK;
}

uint16_t api_port(const struct api *a)
{
	return a ? a->port : 0;
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	/* Streams end first (their readers return), then the daemon joins
	 * every connection thread. */
	atomic_store(&a->closing, true);
	pthread_mutex_lock(&a->sse_mu);
	for (struct sse_client *c = a->clients; c; c = c->next)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&a->sse_mu);
	MHD_stop_daemon(a->d);
	pthread_mutex_destroy(&a->sse_mu);
	pthread_mutex_destroy(&a->log_mu);
	free(a);
}
