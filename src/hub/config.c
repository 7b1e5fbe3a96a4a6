/*
 * config.c - hub options: one table drives the command-line flags, the
 * config file and --help, so the three cannot drift apart.
 *
 * Values are validated as they are read: a number out of range or a bad
 * boolean is an error that names the option and says what is allowed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "hub/hub.h"

enum opt_kind {
	OPT_BOOL, OPT_U32, OPT_U16, OPT_STR, OPT_LISTEN, OPT_LOGLEVEL, OPT_MS, OPT_WORD,
	OPT_LISTEN_TLS, OPT_LISTEN_WS, OPT_LISTEN_WSS, OPT_ORIGIN, OPT_SIZE,
	OPT_FRACTION, /* a double in (0, 1] */
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;      /* into struct hub_config */
	unsigned long max;  /* for numbers */
	const char *arg;
	const char *help;
	/* OPT_WORD: the accepted words, NULL-terminated; the index of the one
	 * given is stored in the one-byte field at offset (an enum's value). */
	const char *const *words;
};

static const char *const fsync_words[] = { "always", "batch", "none", NULL };
static const char *const queue_full_words[] = { "refuse-newest", "drop-oldest", NULL };
static const char *const client_cert_words[] = { "required", "optional", NULL };
static const char *const identity_words[] = { "cn", "uri", NULL };
_Static_assert(BROKER_FSYNC_ALWAYS == 0 && BROKER_FSYNC_BATCH == 1 && BROKER_FSYNC_NONE == 2,
	       "fsync_words follows enum broker_fsync");
_Static_assert(BROKER_QUEUE_REFUSE_NEWEST == 0 && BROKER_QUEUE_DROP_OLDEST == 1,
	       "queue_full_words follows enum broker_queue_full");
_Static_assert(HUB_TLS_IDENTITY_CN == 0 && HUB_TLS_IDENTITY_URI == 1,
	       "identity_words follows enum hub_tls_identity");

#define BOFF(field) offsetof(struct hub_config, broker.field)
#define HOFF(field) offsetof(struct hub_config, field)
#define POFF(field) offsetof(struct hub_config, platform.field)

static const struct opt opts[] = {
	{ "mqtt", OPT_LISTEN, 0, 0, "HOST:PORT|off",
	  "plaintext MQTT listener (repeatable; default 127.0.0.1:1883; off = none)", NULL },
	{ "mqtts", OPT_LISTEN_TLS, 0, 0, "HOST:PORT",
	  "MQTT over TLS listener, client certificate required (repeatable; needs --tls-ca, "
	  "--tls-cert, --tls-key; e.g. 0.0.0.0:8883)", NULL },
	{ "ws", OPT_LISTEN_WS, 0, 0, "HOST:PORT",
	  "MQTT over WebSocket listener for browsers, ws://HOST:PORT/mqtt (repeatable; e.g. "
	  "127.0.0.1:8080)", NULL },
	{ "wss", OPT_LISTEN_WSS, 0, 0, "HOST:PORT",
	  "MQTT over WebSocket over TLS, wss://HOST:PORT/mqtt (repeatable; uses the --tls-* "
	  "files; e.g. 0.0.0.0:8443)", NULL },
	{ "wss-client-cert", OPT_WORD, HOFF(wss_client_cert_optional), 0,
	  "required|optional",
	  "whether --wss clients must present a certificate of the fleet CA; optional lets "
	  "browsers in with a username and password (a certificate shown is still verified; "
	  "default required)", client_cert_words },
	{ "ws-origin", OPT_ORIGIN, 0, 0, "ORIGIN",
	  "a web origin allowed to open --ws/--wss connections, e.g. https://dash.example.com "
	  "(repeatable); browsers from other origins get 403, clients that send no Origin are "
	  "let through (default: any origin)", NULL },
	{ "tls-ca", OPT_STR, HOFF(tls_ca), 0, "FILE",
	  "CA certificate(s), PEM: client certificates must chain to it (e.g. DIR/ca.pem of "
	  "`mote pki init --dir DIR`)", NULL },
	{ "tls-cert", OPT_STR, HOFF(tls_cert), 0, "FILE",
	  "the hub's certificate, PEM, intermediates after it (e.g. DIR/hub.pem)", NULL },
	{ "tls-key", OPT_STR, HOFF(tls_key), 0, "FILE",
	  "the hub's private key, PEM, unencrypted (e.g. DIR/hub.key)", NULL },
	{ "tls-crl", OPT_STR, HOFF(tls_crl), 0, "FILE",
	  "certificate revocation list, PEM (e.g. DIR/crl.pem); reloaded on SIGHUP and when the "
	  "file changes, and live connections of revoked certificates are closed", NULL },
	{ "tls-crl-check", OPT_U32, HOFF(tls_crl_check_s), 3600, "SEC",
	  "look for a changed --tls-crl file every SEC seconds, 0 = only on SIGHUP (default 1)", NULL },
	{ "tls-identity", OPT_WORD, HOFF(tls_identity), 0, "cn|uri",
	  "what names a device in its certificate: the subject CN, or ID of a SAN URI "
	  "urn:mote:dev:ID (default cn)", identity_words },
	{ "pki", OPT_STR, HOFF(pki_dir), 0, "DIR",
	  "a `mote pki` folder: serves provisioning by claim ($provision/ID/csr) from its CA "
	  "and claims, and is the default for the --tls-* files (DIR/ca.pem, hub.pem, hub.key, "
	  "crl.pem)", NULL },
	{ "data", OPT_STR, HOFF(data_dir), 0, "DIR", "data folder (default ./data)", NULL },
	{ "persistence", OPT_BOOL, HOFF(persistence), 0, "on|off",
	  "keep sessions, queued and in-flight QoS 1/2 messages, retained messages and wills "
	  "in DIR/journal across restarts and crashes (default on)", NULL },
	{ "fsync", OPT_WORD, BOFF(fsync), 0, "POLICY",
	  "always: acknowledge QoS 1/2 only once on disk (fdatasync); batch: once written, "
	  "synced within --fsync-batch-ms; none: once written, never synced (default always)", fsync_words },
	{ "fsync-batch-ms", OPT_U32, BOFF(fsync_batch_ms), 60000, "MS",
	  "longest time a written record waits for fdatasync under --fsync batch (default 10)", NULL },
	{ "max-queued-bytes", OPT_U32, BOFF(max_queued_bytes), 0xFFFFFFFFul, "BYTES",
	  "topic + payload bytes queued per session (default 67108864)", NULL },
	{ "queue-full", OPT_WORD, BOFF(queue_full), 0, "POLICY",
	  "when a session's queue is full: refuse-newest or drop-oldest (default refuse-newest)", queue_full_words },
	{ "journal-fault-file", OPT_STR, BOFF(journal_fault_file), 0, "PATH",
	  "test hook: while PATH exists every journal write fails with ENOSPC (disk full)", NULL },
	{ "journal-segment-bytes", OPT_U32, BOFF(journal_segment_bytes), 0xFFFFFFFFul, "BYTES",
	  "size of one journal segment file (default 67108864)", NULL },
	{ "journal-compact-bytes", OPT_U32, BOFF(compact_min_bytes), 0xFFFFFFFFul, "BYTES",
	  "journal growth that starts a compacting snapshot, at least twice the last one "
	  "(default 67108864)", NULL },
	{ "allow-anonymous", OPT_BOOL, BOFF(allow_anonymous), 0, NULL,
	  "tests and development only: accept clients without credentials, and unknown usernames, "
	  "as anonymous (everything but publishing to $SYS; default off)", NULL },
	{ "log-level", OPT_LOGLEVEL, HOFF(log_level), 0, "LEVEL",
	  "debug, info, warn or error (default info)", NULL },
	{ "sys-interval", OPT_U32, BOFF(sys_interval_s), 86400, "SEC",
	  "publish $SYS statistics every SEC seconds, 0 = off (default 10)", NULL },
	{ "max-packet-size", OPT_U32, BOFF(max_packet_size), 268435455, "BYTES",
	  "largest packet accepted from a client (default 1048576)", NULL },
	{ "receive-max", OPT_U16, BOFF(receive_max), 65535, "N",
	  "QoS 1/2 messages a client may have in flight to the hub (default 64)", NULL },
	{ "topic-alias-max", OPT_U16, BOFF(topic_alias_max), 65535, "N",
	  "topic aliases a client may use towards the hub (default 16)", NULL },
	{ "max-keepalive", OPT_U16, BOFF(max_keepalive), 65535, "SEC",
	  "cap on the client keep alive, 0 = none (default 0)", NULL },
	{ "max-session-expiry", OPT_U32, BOFF(max_session_expiry), 0xFFFFFFFFul, "SEC",
	  "cap on session expiry, 0 = none (default 0)", NULL },
	{ "max-queued", OPT_U32, BOFF(max_queued), 10000000, "N",
	  "QoS 1/2 messages queued per session beyond the window (default 1000)", NULL },
	{ "threads", OPT_U32, BOFF(threads), 256, "N",
	  "event loops, each on its own thread; connections are spread over them (default 0 = one per CPU)", NULL },
	{ "max-inflight", OPT_U16, BOFF(max_inflight), 65535, "N",
	  "QoS 1/2 messages in flight to one client (default 64)", NULL },
	{ "connect-timeout", OPT_MS, BOFF(connect_timeout_ms), 3600, "SEC",
	  "seconds a new connection has to send CONNECT (default 10)", NULL },
	{ "max-connections", OPT_U32, BOFF(max_connections), 10000000, "N",
	  "connection limit, 0 = file descriptors only (default 0)", NULL },
	{ "max-client-outbuf", OPT_U32, BOFF(max_client_outbuf), 0xFFFFFFFFul, "BYTES",
	  "bytes waiting for one slow client before its QoS 0 messages are dropped "
	  "(default 4194304)", NULL },
	/* Authentication, authorization, audit, rate limits (docs/security.md). */
	{ "acl", OPT_STR, HOFF(auth.acl_file), 0, "FILE",
	  "roles for users and tokens: `role NAME` then `allow|deny read|write|readwrite PATTERN` "
	  "lines (default DATA/acl.conf when it exists; docs/security.md)", NULL },
	{ "audit-log", OPT_STR, HOFF(audit_log), 0, "FILE",
	  "append-only, hash-chained audit log; check it with `mote audit verify FILE` "
	  "(default DATA/audit.log)", NULL },
	{ "identity-match", OPT_BOOL, HOFF(auth.identity_must_match), 0, "on|off",
	  "a device certificate's identity must equal its client id, else CONNACK 0x85 "
	  "(default on)", NULL },
	{ "auth-fail-max", OPT_U32, HOFF(auth.fail_max), 1000000, "N",
	  "failed logins from one address within --auth-fail-window before it is refused "
	  "(CONNACK 0x9F; 3.1.1 rc 5) for --auth-block seconds (default 5, 0 = never)", NULL },
	{ "auth-fail-window", OPT_U32, HOFF(auth.fail_window_s), 86400, "SEC",
	  "the window of --auth-fail-max (default 60)", NULL },
	{ "auth-block", OPT_U32, HOFF(auth.block_s), 86400, "SEC",
	  "first refusal period of an address; each repeat doubles it (default 30)", NULL },
	{ "auth-block-max", OPT_U32, HOFF(auth.block_max_s), 604800, "SEC",
	  "longest refusal period (default 3600)", NULL },
	{ "auth-cache", OPT_U32, HOFF(auth.cache_s), 86400, "SEC",
	  "remember a verified username + password this long, so reconnects skip argon2id "
	  "(default 60, 0 = verify every login)", NULL },
	{ "auth-hash-rate", OPT_U32, HOFF(auth.hash_rate), 1000000, "N",
	  "password checks (argon2id, ~20 ms each) per second over all addresses; beyond it "
	  "logins get 0x89 server busy (default 10, 0 = unlimited)", NULL },
	{ "conn-rate", OPT_U32, HOFF(auth.conn_rate), 1000000, "N",
	  "new connections per second from one address, a token bucket of --conn-burst "
	  "(default 20, 0 = unlimited)", NULL },
	{ "conn-burst", OPT_U32, HOFF(auth.conn_burst), 1000000, "N",
	  "connections one address may open at once before --conn-rate applies (default 100)", NULL },
	{ "conn-rate-loopback", OPT_BOOL, HOFF(auth.conn_limit_loopback), 0, "on|off",
	  "apply --conn-rate to 127.0.0.0/8 and ::1 too (default off)", NULL },
	/* The platform: registry, twins, telemetry store, rules, API (docs/api.md). */
	{ "http", OPT_STR, HOFF(http), 0, "HOST:PORT",
	  "serve the HTTP API (REST, live events, /metrics, /healthz) on HOST:PORT, e.g. "
	  "127.0.0.1:8080; requests need an API token from `mote token create` (default off)", NULL },
	{ "metrics-public", OPT_BOOL, HOFF(api.metrics_public), 0, "on|off",
	  "serve /metrics without a token, for a Prometheus on a trusted network (default off: "
	  "a token of scope read)", NULL },
	{ "http-max-connections", OPT_U32, HOFF(api.max_connections), 100000, "N",
	  "HTTP connections at once, SSE streams included (default 256)", NULL },
	{ "health-max-lag", OPT_U32, HOFF(api.health_max_lag_ms), 86400000, "MS",
	  "/healthz answers 503 once a message has waited this long for the platform "
	  "(a stalled disk or database; default 30000)", NULL },
	{ "http-max-sse", OPT_U32, HOFF(api.max_sse_clients), 100000, "N",
	  "live event streams (/api/v1/events) at once; more get 503 (default 64)", NULL },
	{ "platform", OPT_BOOL, HOFF(platform_on), 0, "on|off",
	  "run the device registry, twins, telemetry store and rules in DATA/mote.db and "
	  "DATA/telemetry.db (default on; off = a plain broker)", NULL },
	{ "auto-register", OPT_BOOL, POFF(auto_register), 0, "on|off",
	  "register a device on its first connect: a verified device certificate, or the client "
	  "id on --allow-anonymous (default on; off = only `mote device add` and the API)", NULL },
	{ "anomaly-threshold", OPT_FRACTION, POFF(insight.anomaly_threshold), 0, "SCORE",
	  "an anomaly score at or above it makes a metric anomalous and raises an alert "
	  "anomaly:METRIC (default 0.51, the threshold NAB scoring chose for the detector; docs/analytics.md)", NULL },
	{ "anomaly-clear-after", OPT_U32, POFF(insight.clear_after_s), 86400, "SEC",
	  "an anomalous metric is normal again, and its alert cleared, after this long "
	  "without an anomalous score (default 60)", NULL },
	{ "anomaly-alerts", OPT_BOOL, POFF(insight.alerts), 0, "on|off",
	  "raise alerts for anomalies (default on; off: scores and states only)", NULL },
	{ "pipeline-queue-bytes", OPT_U32, POFF(queue_bytes), 0xFFFFFFFFul, "BYTES",
	  "messages waiting for the platform (telemetry, twin requests); beyond it telemetry is "
	  "dropped and counted in /metrics (default 67108864)", NULL },
	{ "twin-max-bytes", OPT_SIZE, POFF(twin.max_state_bytes), 1u << 20, "BYTES",
	  "largest twin state, desired + reported as JSON; bigger updates get 413 (default 8192)", NULL },
	{ "twin-max-depth", OPT_U32, POFF(twin.max_depth), 64, "N",
	  "deepest nesting of a twin's state objects (default 6)", NULL },
	{ "retention-raw-days", OPT_U32, POFF(store.raw_days), 36500, "DAYS",
	  "keep raw telemetry points this long (default 7)", NULL },
	{ "retention-minute-days", OPT_U32, POFF(store.minute_days), 36500, "DAYS",
	  "keep 1-minute telemetry rollups this long (default 90)", NULL },
	{ "retention-hour-days", OPT_U32, POFF(store.hour_days), 36500, "DAYS",
	  "keep 1-hour telemetry rollups this long (default 730)", NULL },
	{ "alert-history-days", OPT_U32, POFF(rules.history_days), 36500, "DAYS",
	  "keep cleared alerts and their events this long (default 90)", NULL },
	{ "webhook-attempts", OPT_U32, POFF(rules.webhook_attempts), 100, "N",
	  "tries per webhook delivery before it is marked failed (default 5)", NULL },
	{ "webhook-backoff-ms", OPT_U32, POFF(rules.webhook_backoff_ms), 3600000, "MS",
	  "wait before the first retry of a webhook delivery, doubling each time (default 1000)", NULL },
	{ "webhook-timeout-ms", OPT_U32, POFF(rules.webhook_timeout_ms), 600000, "MS",
	  "time one webhook POST may take (default 5000)", NULL },
	{ "webhook-queue", OPT_U32, POFF(rules.webhook_queue), 1000000, "N",
	  "webhook deliveries waiting at most; beyond it they are dropped and logged (default 1000)", NULL },
};

void hub_config_defaults(struct hub_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	broker_config_defaults(&cfg->broker);
	cfg->broker.threads = 0; /* the hub: one loop per CPU unless --threads says */
	cfg->data_dir = "data";
	cfg->persistence = true;
	cfg->log_level = MOTE_LOG_INFO;
	cfg->tls_crl_check_s = 1;
	auth_config_defaults(&cfg->auth);
	cfg->platform_on = true;
	platform_config_defaults(&cfg->platform);
	api_config_defaults(&cfg->api);
}

void hub_config_free(struct hub_config *cfg)
{
	free(cfg->file_text);
	cfg->file_text = NULL;
	for (size_t i = 0; i < sizeof cfg->pki_files / sizeof cfg->pki_files[0]; i++) {
		free(cfg->pki_files[i]);
		cfg->pki_files[i] = NULL;
	}
}

void hub_config_usage(FILE *out)
{
	fprintf(out, "usage: mote hub [OPTIONS]\n\n"
		     "Runs the hub: an MQTT 3.1.1 / 5.0 broker. Flags override the config file.\n\n"
		     "  --config FILE              read options from FILE (`name = value` lines)\n"
		     "  --help                     show this help\n");
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
		char left[64];
		snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		fprintf(out, "  %-26s %s\n", left, opts[i].help);
	}
}

static const struct opt *find_opt(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return false;
	return true;
}

/* One of o->words into *out; else an error listing them ("a, b or c"). */
static enum mote_err apply_word(const struct opt *o, const char *v, uint8_t *out, char *errbuf,
				size_t errcap)
{
	size_t n = 0;
	for (; o->words[n]; n++)
		if (!strcmp(v, o->words[n])) {
			*out = (uint8_t)n;
			return MOTE_OK;
		}
	int w = snprintf(errbuf, errcap, "--%s: '%s' is not ", o->name, v);
	for (size_t i = 0; i < n && w >= 0 && (size_t)w < errcap; i++)
		w += snprintf(errbuf + w, errcap - (size_t)w, "%s%s", o->words[i],
			      i + 2 < n ? ", " : i + 2 == n ? " or " : "");
	return MOTE_EINVAL;
}

static enum mote_err apply(struct hub_config *cfg, const struct opt *o, const char *v,
			   char *errbuf, size_t errcap)
{
	char *base = (char *)cfg;
	switch (o->kind) {
	case OPT_BOOL: {
		bool b = true;
		if (v && !parse_bool(v, &b)) {
			snprintf(errbuf, errcap, "--%s: '%s' is not true or false", o->name, v);
			return MOTE_EINVAL;
		}
		*(bool *)(base + o->offset) = b;
		return MOTE_OK;
	}
	case OPT_STR:
		*(const char **)(base + o->offset) = v;
		return MOTE_OK;
	case OPT_WORD:
		return apply_word(o, v, (uint8_t *)(base + o->offset), errbuf, errcap);
	case OPT_LISTEN:
		if (!strcmp(v, "off")) {
			cfg->mqtt_off = true;
			cfg->mqtt_count = 0;
			return MOTE_OK;
		}
		cfg->mqtt_off = false;
		/* fall through */
	case OPT_LISTEN_TLS:
	case OPT_LISTEN_WS:
	case OPT_LISTEN_WSS: {
		const char **list = o->kind == OPT_LISTEN	? cfg->mqtt
				    : o->kind == OPT_LISTEN_TLS ? cfg->mqtts
				    : o->kind == OPT_LISTEN_WS	? cfg->ws
								: cfg->wss;
		unsigned *count = o->kind == OPT_LISTEN	      ? &cfg->mqtt_count
				  : o->kind == OPT_LISTEN_TLS ? &cfg->mqtts_count
				  : o->kind == OPT_LISTEN_WS  ? &cfg->ws_count
							      : &cfg->wss_count;
		if (*count == HUB_MAX_LISTENERS) {
			snprintf(errbuf, errcap, "--%s: at most %d listeners", o->name,
				 HUB_MAX_LISTENERS);
			return MOTE_EINVAL;
		}
		list[(*count)++] = v;
		return MOTE_OK;
	}
	case OPT_ORIGIN:
		if (cfg->ws_origin_count == HUB_MAX_ORIGINS) {
			snprintf(errbuf, errcap, "--%s: at most %d origins", o->name, HUB_MAX_ORIGINS);
			return MOTE_EINVAL;
		}
		if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
			snprintf(errbuf, errcap, "--%s: '%s' is not an origin like "
				 "https://dash.example.com", o->name, v);
			return MOTE_EINVAL;
		}
		cfg->ws_origins[cfg->ws_origin_count++] = v;
		return MOTE_OK;
	case OPT_LOGLEVEL:
		if (mote_log_level_parse(v, (enum mote_log_level *)(base + o->offset)) != 0) {
			snprintf(errbuf, errcap, "--%s: '%s' is not debug, info, warn or error",
				 o->name, v);
			return MOTE_EINVAL;
		}
		return MOTE_OK;
	case OPT_FRACTION: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (*v == '\0' || *end != '\0' || errno || !(d > 0 && d <= 1)) {
			snprintf(errbuf, errcap, "--%s: '%s' is not a number above 0 and at most 1",
				 o->name, v);
			return MOTE_EINVAL;
		}
		*(double *)(base + o->offset) = d;
		return MOTE_OK;
	}
	case OPT_U32:
	case OPT_U16:
	case OPT_SIZE:
	case OPT_MS: {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (*v == '\0' || *v == '-' || *end != '\0' || errno || n > o->max) {
			snprintf(errbuf, errcap, "--%s: '%s' is not a whole number from 0 to %lu",
				 o->name, v, o->max);
			return MOTE_EINVAL;
		}
		if (o->kind == OPT_U16)
			*(uint16_t *)(base + o->offset) = (uint16_t)n;
		else if (o->kind == OPT_SIZE)
			*(size_t *)(base + o->offset) = (size_t)n;
		else if (o->kind == OPT_MS)
			*(uint32_t *)(base + o->offset) = (uint32_t)n * 1000u;
		else
			*(uint32_t *)(base + o->offset) = (uint32_t)n;
		return MOTE_OK;
	}
	}
	return MOTE_EINVAL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

enum mote_err hub_config_parse_text(struct hub_config *cfg, char *text, char *errbuf,
				    size_t errcap)
{
	unsigned lineno = 0;
	char *save = NULL;
	/* strtok_r would merge empty lines and lose the count: split by hand. */
	for (char *line = text; line; line = save) {
		lineno++;
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		line = trim(line);
		if (*line == '\0')
			continue;
		size_t klen = strcspn(line, " \t=");
		char *value = line + klen;
		while (*value == ' ' || *value == '\t')
			value++;
		if (*value == '=')
			value++;
		value = trim(value);
		const struct opt *o = find_opt(line, klen);
		if (!o) {
			snprintf(errbuf, errcap, "config line %u: unknown option '%.*s' (see mote hub --help)",
				 lineno, (int)klen, line);
			return MOTE_EINVAL;
		}
		if (*value == '\0' && o->kind != OPT_BOOL) {
			snprintf(errbuf, errcap, "config line %u: option '%s' needs a value", lineno,
				 o->name);
			return MOTE_EINVAL;
		}
		char msg[256];
		if (apply(cfg, o, *value ? value : NULL, msg, sizeof msg) != MOTE_OK) {
			snprintf(errbuf, errcap, "config line %u: %s", lineno, msg);
			return MOTE_EINVAL;
		}
	}
	return MOTE_OK;
}

static enum mote_err read_file(const char *path, char **out, char *errbuf, size_t errcap)
{
	enum mote_err err = mote_read_file(path, 1u << 20, out, NULL);
	if (err == MOTE_ETOOBIG)
		snprintf(errbuf, errcap, "--config %s: larger than 1 MiB", path);
	else if (err != MOTE_OK)
		snprintf(errbuf, errcap, "--config %s: %s", path, strerror(errno));
	return err == MOTE_ENOTFOUND ? MOTE_EIO : err; /* a missing --config is an I/O error */
}

/* --pki DIR: the TLS files not given otherwise come from DIR, as `mote pki
 * init` names them. The paths are owned by cfg. */
static enum mote_err pki_defaults(struct hub_config *cfg, char *errbuf, size_t errcap)
{
	static const char *const names[] = { "ca.pem", "hub.pem", "hub.key", "crl.pem" };
	const char **slots[] = { &cfg->tls_ca, &cfg->tls_cert, &cfg->tls_key, &cfg->tls_crl };

	if (!*cfg->pki_dir) {
		snprintf(errbuf, errcap, "--pki needs a directory made by `mote pki --dir DIR init`");
		return MOTE_EINVAL;
	}
	for (size_t i = 0; i < 4; i++) {
		if (*slots[i])
			continue;
		free(cfg->pki_files[i]);
		if (asprintf(&cfg->pki_files[i], "%s/%s", cfg->pki_dir, names[i]) < 0) {
			cfg->pki_files[i] = NULL;
			snprintf(errbuf, errcap, "out of memory");
			return MOTE_ENOMEM;
		}
		*slots[i] = cfg->pki_files[i];
	}
	return MOTE_OK;
}

enum mote_err hub_config_parse(struct hub_config *cfg, int argc, char **argv, bool *show_help,
			       char *errbuf, size_t errcap)
{
	*show_help = false;
	/* The file first, so that flags override it. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
			const char *path = argv[i][8] == '=' ? argv[i] + 9 : argv[i + 1];
			if (!path) {
				snprintf(errbuf, errcap, "--config needs a file name");
				return MOTE_EINVAL;
			}
			enum mote_err err = read_file(path, &cfg->file_text, errbuf, errcap);
			if (err == MOTE_OK)
				err = hub_config_parse_text(cfg, cfg->file_text, errbuf, errcap);
			if (err != MOTE_OK)
				return err;
			break;
		}
	}
	bool flag_listener = false, flag_tls_listener = false, flag_ws = false, flag_wss = false,
	     flag_origin = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*show_help = true;
			return MOTE_OK;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(errbuf, errcap, "unexpected argument '%s' (see mote hub --help)", a);
			return MOTE_EINVAL;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		if (nlen == 6 && strncmp(name, "config", 6) == 0) {
			if (!eq)
				i++;
			continue;
		}
		const struct opt *o = find_opt(name, nlen);
		if (!o) {
			snprintf(errbuf, errcap, "unknown option '%s' (see mote hub --help)", a);
			return MOTE_EINVAL;
		}
		const char *value = eq ? eq + 1 : NULL;
		bool ignored;
		if (!value && o->kind == OPT_BOOL && o->arg && i + 1 < argc &&
		    parse_bool(argv[i + 1], &ignored))
			value = argv[++i]; /* "--persistence off" as well as "--persistence=off" */
		if (!value && o->kind != OPT_BOOL) {
			if (i + 1 >= argc) {
				snprintf(errbuf, errcap, "--%s needs a value: --%s %s", o->name, o->name,
					 o->arg);
				return MOTE_EINVAL;
			}
			value = argv[++i];
		}
		if (o->kind == OPT_LISTEN && !flag_listener) {
			/* Listeners on the command line replace those of the file. */
			flag_listener = true;
			cfg->mqtt_count = 0;
		}
		if (o->kind == OPT_LISTEN_TLS && !flag_tls_listener) {
			flag_tls_listener = true;
			cfg->mqtts_count = 0;
		}
		if (o->kind == OPT_ORIGIN && !flag_origin) {
			flag_origin = true;
			cfg->ws_origin_count = 0;
		}
		if (o->kind == OPT_LISTEN_WS && !flag_ws) {
			flag_ws = true;
			cfg->ws_count = 0;
		}
		if (o->kind == OPT_LISTEN_WSS && !flag_wss) {
			flag_wss = true;
			cfg->wss_count = 0;
		}
		enum mote_err err = apply(cfg, o, value, errbuf, errcap);
		if (err != MOTE_OK)
			return err;
	}
	if (cfg->mqtt_count == 0 && !cfg->mqtt_off)
		cfg->mqtt[cfg->mqtt_count++] = "127.0.0.1:1883";
	if (cfg->pki_dir) {
		enum mote_err err = pki_defaults(cfg, errbuf, errcap);
		if (err != MOTE_OK)
			return err;
	}
	if ((cfg->mqtts_count > 0 || cfg->wss_count > 0) &&
	    (!cfg->tls_ca || !cfg->tls_cert || !cfg->tls_key)) {
		snprintf(errbuf, errcap, "%s needs --tls-ca, --tls-cert and --tls-key (missing: "
			 "%s%s%s); `mote pki init --dir DIR` makes DIR/ca.pem, DIR/hub.pem and "
			 "DIR/hub.key", cfg->mqtts_count > 0 ? "--mqtts" : "--wss",
			 cfg->tls_ca ? "" : "--tls-ca ",
			 cfg->tls_cert ? "" : "--tls-cert ", cfg->tls_key ? "" : "--tls-key");
		return MOTE_EINVAL;
	}
	if (cfg->mqtt_count == 0 && cfg->mqtts_count == 0 && cfg->ws_count == 0 &&
	    cfg->wss_count == 0) {
		snprintf(errbuf, errcap, "--mqtt off and no --mqtts, --ws or --wss: the hub would "
			 "have no listener");
		return MOTE_EINVAL;
	}
	return MOTE_OK;
}
