/*
 * hub.c - runs the hub: data folder, event loop, broker, listeners, signals.
 *
 * Signals arrive through a signalfd watched by the loop, so handlers never
 * run asynchronously: SIGINT/SIGTERM begin a clean shutdown (a second one
 * stops at once), SIGHUP reloads the TLS revocation list, SIGPIPE is
 * ignored (a write to a closed socket is an error return, not a death).
 *
 * The revocation list (--tls-crl) is also watched: once a second (by default,
 * --tls-crl-check) the loop
 * compares the file's inode, size and modification time with the last
 * loaded, so `mote pki revoke` + `mote pki crl` (which rename a new file
 * into place) take effect without a signal. A new list goes to new
 * connections at once and every shard then closes its live connections
 * whose certificate it revokes; a list that does not load leaves the old one
 * in force.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "hub/hub.h"
#include "hub/outbox.h"
#include "provision/provision.h"
#include "tls/tls.h"

struct hub {
	const struct hub_config *cfg;
	struct loop *loop;
	struct broker *broker;
	struct audit *audit;
	struct auth *auth;
	struct provision *prov; /* NULL without --pki */
	struct loop_io sig_io;
	int sigfd;
	unsigned signals_seen;
	struct tls_server *tls;     /* --mqtts, and --wss when it requires certificates too */
	struct tls_server *wss_tls; /* --wss with optional client certificates, else NULL */
	struct loop_timer crl_timer;
	struct stat crl_st;   /* of the list in force (st_ino 0: unknown) */
	bool crl_missing;     /* logged once until it is back */
	/* The platform and its API (NULL when off). */
	struct platform *platform;
	struct api *api;            /* under api_mu: the pipeline's events read it */
	pthread_mutex_t api_mu;
	struct outbox outbox;       /* the platform's publishes -> broker_publish */
	bool outbox_ready;
	struct mote_sink sink;
	/* The broker's counters as of the last second, for /metrics (API threads). */
	pthread_mutex_t stats_mu;
	struct broker_stats stats;
	struct loop_timer stats_timer;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void crl_reload(struct hub *h, const char *why)
{
	const char *path = h->cfg->tls_crl;
	struct stat st;
	if (stat(path, &st) != 0) {
		MOTE_ERROR("hub", "event=crl_reload_failed file=%s trigger=%s why=\"%s\" "
				  "action=\"the list loaded before stays in force\"",
			   path, why, strerror(errno));
		return;
	}
	char msg[512];
	bool changed = false;
	h->crl_st = st; /* a broken file is reported once, not every second */
	struct tls_server *servers[2] = { h->tls, h->wss_tls };
	for (int i = 0; i < 2; i++) {
		bool ch = false;
		if (servers[i] &&
		    tls_server_reload_crl(servers[i], path, &ch, msg, sizeof msg) != MOTE_OK) {
			MOTE_ERROR("hub", "event=crl_reload_failed file=%s trigger=%s why=\"%s\" "
					  "action=\"the list loaded before stays in force\"",
				   path, why, msg);
			return;
		}
		changed |= ch;
	}
	MOTE_INFO("hub", "event=crl_reload file=%s trigger=%s changed=%s", path, why,
		  changed ? "yes" : "no");
	if (changed)
		broker_recheck_certs(h->broker);
}

static void on_crl_timer(struct loop *loop, struct loop_timer *t)
{
	struct hub *h = t->data;
	struct stat st;
	if (stat(h->cfg->tls_crl, &st) != 0) {
		if (!h->crl_missing)
			MOTE_ERROR("hub", "event=crl_missing file=%s why=\"%s\" action=\"the list "
					  "loaded before stays in force\"",
				   h->cfg->tls_crl, strerror(errno));
		h->crl_missing = true;
	} else {
		h->crl_missing = false;
		if (!same_file(&st, &h->crl_st))
			crl_reload(h, "file_changed");
	}
	loop_timer_start(loop, t, (uint64_t)h->cfg->tls_crl_check_s * 1000u);
}

static void on_signal(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)events;
	struct hub *h = io->data;
	struct signalfd_siginfo si;
	while (read(h->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			if ((h->tls || h->wss_tls) && h->cfg->tls_crl)
				crl_reload(h, "SIGHUP");
			else
				MOTE_INFO("hub", "event=signal signal=SIGHUP action=none why=\"no "
						 "--tls-crl to reload\"");
			continue;
		}
		if (si.ssi_signo != SIGINT && si.ssi_signo != SIGTERM)
			continue;
		if (h->signals_seen++ == 0) {
			MOTE_INFO("hub", "event=signal signal=%s action=shutdown",
				  si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			broker_shutdown(h->broker);
		} else {
			MOTE_WARN("hub", "event=signal action=stop_now");
			loop_stop(loop);
		}
	}
}

/* A device is a client that proved it is one (its certificate) or, on an
 * --allow-anonymous hub, any client: then its client id names it. */
static bool is_device(const struct broker_client *c)
{
	enum auth_kind k = auth_principal_kind(c->principal);
	return k == AUTH_KIND_DEVICE || k == AUTH_KIND_ANONYMOUS;
}

static void hook_tap(void *ctx, const struct broker_client *c, const struct broker_msg_view *m)
{
	struct hub *h = ctx;

	if (h->prov)
		provision_tap(h->prov, c, m);
	if (h->platform)
		platform_tap(h->platform, c, m, c && is_device(c));
}

/* What the tap's users read: $provision/... (provisioning), dev/... and
 * $twin/... (the platform). Everything else skips the tap. */
static bool hook_tap_wants(void *ctx, const uint8_t *topic, size_t len)
{
	(void)ctx;
	return (len > 4 && memcmp(topic, "dev/", 4) == 0) ||
	       (len > 6 && memcmp(topic, "$twin/", 6) == 0) ||
	       (len > 11 && memcmp(topic, "$provision/", 11) == 0);
}

static void hook_on_connect(void *ctx, const struct broker_client *c)
{
	struct hub *h = ctx;
	if (h->platform)
		platform_on_connect(h->platform, c, is_device(c), c->cert_serial);
}

static void hook_on_disconnect(void *ctx, const struct broker_client *c, uint8_t reason)
{
	struct hub *h = ctx;
	if (h->platform)
		platform_on_disconnect(h->platform, c, reason);
}

/* The platform's outputs: publishes via the loop, events to the API's SSE. */
static void sink_publish(void *ctx, const char *topic, const void *payload, size_t len,
			 uint8_t qos, bool retain)
{
	struct hub *h = ctx;
	outbox_publish(&h->outbox, topic, payload, len, qos, retain);
}

/* Under api_mu: the pipeline's events must not reach an API being stopped. */
static void sink_event(void *ctx, const char *type, const char *device_id, const char *json)
{
	struct hub *h = ctx;
	pthread_mutex_lock(&h->api_mu);
	if (h->api)
		api_event(h->api, type, device_id, json);
	pthread_mutex_unlock(&h->api_mu);
}

static bool sink_listening(void *ctx)
{
	struct hub *h = ctx;
	pthread_mutex_lock(&h->api_mu);
	bool yes = api_listening(h->api);
	pthread_mutex_unlock(&h->api_mu);
	return yes;
}

static void copy_stats(void *ctx, struct broker_stats *out)
{
	struct hub *h = ctx;
	pthread_mutex_lock(&h->stats_mu);
	*out = h->stats;
	pthread_mutex_unlock(&h->stats_mu);
}

static void on_stats_timer(struct loop *loop, struct loop_timer *t)
{
	struct hub *h = t->data;
	struct broker_stats st;
	broker_get_stats(h->broker, &st);
	pthread_mutex_lock(&h->stats_mu);
	h->stats = st;
	pthread_mutex_unlock(&h->stats_mu);
	loop_timer_start(loop, t, 1000);
}

/* The hooks: src/auth decides who connects and what they may do. */
static bool hook_accept(void *ctx, const struct net_peer *peer)
{
	return auth_accept(((struct hub *)ctx)->auth, peer);
}

static uint8_t hook_authenticate(void *ctx, const struct broker_client *c,
				 const struct mqtt_connect *pkt)
{
	return auth_authenticate(((struct hub *)ctx)->auth, c, pkt);
}

static bool hook_authorize(void *ctx, const struct broker_client *c, enum broker_access access,
			   const uint8_t *topic, size_t len)
{
	return auth_authorize(((struct hub *)ctx)->auth, c, access, topic, len);
}

/* The subscription exists now: a delta sent for it cannot overtake it. */
static void hook_subscribed(void *ctx, const struct broker_client *c, const uint8_t *filter,
			    size_t len)
{
	struct hub *h = ctx;
	if (h->platform && is_device(c))
		platform_on_subscribe(h->platform, c, filter, len);
}

/* The registry, twins, telemetry store and rules, before the broker taps them. */
static enum mote_err start_platform(struct hub *h, const struct hub_config *cfg)
{
	char msg[512];
	enum mote_err e = outbox_init(&h->outbox, 16u << 20);
	if (e != MOTE_OK)
		return e;
	h->outbox_ready = true;
	h->sink = (struct mote_sink){ .ctx = h, .publish = sink_publish, .event = sink_event,
				      .listening = sink_listening };
	struct platform_config pc = cfg->platform;
	pc.data_dir = cfg->data_dir;
	pc.pki_dir = cfg->pki_dir;
	e = platform_open(&pc, &h->sink, &h->platform, msg, sizeof msg);
	if (e != MOTE_OK)
		MOTE_ERROR("hub", "event=start_failed why=\"platform: %s\" hint=\"--platform off runs "
				  "a plain broker\"", msg);
	return e;
}

static enum mote_err start_api(struct hub *h, const struct hub_config *cfg)
{
	char msg[512];
	struct api_config ac = cfg->api;
	ac.addr = cfg->http;
	ac.broker_stats = copy_stats;
	ac.stats_ctx = h;
	struct api *a = NULL;
	enum mote_err e = api_start(&ac, h->platform, h->auth, &a, msg, sizeof msg);
	if (e != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"--http %s: %s\"", cfg->http, msg);
		return e;
	}
	pthread_mutex_lock(&h->api_mu);
	h->api = a;
	pthread_mutex_unlock(&h->api_mu);
	MOTE_INFO("hub", "event=listening proto=http addr=%s port=%u", cfg->http,
		  (unsigned)api_port(a));
	return MOTE_OK;
}

/* auth's CONNECT check of a claim certificate, answered by provisioning. */
static bool hub_claim_check(void *ctx, const char *claim, const char *client_id, char *why,
			    size_t whycap)
{
	struct hub *h = ctx;
	return provision_claim_check(h->prov, claim, client_id, why, whycap) == MOTE_OK;
}

static void hub_audit(void *ctx, const char *event, const char *json_fields)
{
	struct hub *h = ctx;
	if (h->audit)
		audit_append(h->audit, event, json_fields);
}

/* --pki DIR: the CA must be there before devices are told to use it. */
static enum mote_err start_provision(struct hub *h, const char *dir)
{
	struct provision_config pc = { .pki_dir = dir, .audit = hub_audit, .audit_ctx = h };
	char path[4096];
	enum mote_err err;

	if (snprintf(path, sizeof path, "%s/ca.key", dir) >= (int)sizeof path ||
	    access(path, R_OK) != 0) {
		MOTE_ERROR("hub", "event=start_failed why=\"--pki %s: cannot read %s: %s\" "
				  "hint=\"run mote pki --dir %s init\"",
			   dir, path, strerror(errno), dir);
		return MOTE_EINVAL;
	}
	err = provision_new(&pc, &h->prov);
	if (err != MOTE_OK)
		MOTE_ERROR("hub", "event=start_failed why=\"provisioning: %s\"", mote_strerror(err));
	else if (h->cfg->mqtts_count == 0)
		MOTE_WARN("hub", "event=provisioning_unreachable why=\"--pki without --mqtts: claim "
				 "certificates are only seen over TLS\"");
	return err;
}

static enum mote_err make_dir(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return MOTE_EINVAL;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return MOTE_EIO;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return MOTE_EIO;
	return access(buf, W_OK) == 0 ? MOTE_OK : MOTE_EIO;
}

/*
 * The audit log and the auth hooks. The first start's admin secret is
 * printed here, on stdout, before the hub listens.
 */
static enum mote_err hub_security(struct hub *h, const struct hub_config *cfg)
{
	char path[4200], err[512];
	const char *audit_path = cfg->audit_log;
	if (!audit_path) {
		if (snprintf(path, sizeof path, "%s/audit.log", cfg->data_dir) >= (int)sizeof path)
			return MOTE_EINVAL;
		audit_path = path;
	}
	if (audit_open(audit_path, &h->audit) != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"cannot open the audit log %s: %s\"",
			   audit_path, strerror(errno));
		return MOTE_EIO;
	}
	struct auth_config acfg = cfg->auth;
	acfg.data_dir = cfg->data_dir;
	acfg.allow_anonymous = cfg->broker.allow_anonymous;
	acfg.identity = cfg->tls_identity == HUB_TLS_IDENTITY_URI ? AUTH_IDENTITY_URI : AUTH_IDENTITY_CN;
	acfg.audit = h->audit;
	acfg.secret_out = stdout;
	enum mote_err e = auth_new(&acfg, &h->auth, err, sizeof err);
	if (e != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"%s\"", err);
		return e;
	}
	char fields[128];
	snprintf(fields, sizeof fields, "{\"anonymous\":%s}",
		 cfg->broker.allow_anonymous ? "true" : "false");
	audit_append(h->audit, "hub_started", fields);
	MOTE_INFO("hub", "event=audit_log path=%s", audit_path);
	return MOTE_OK;
}

enum mote_err hub_run(const struct hub_config *cfg)
{
	struct hub h = { .sigfd = -1, .cfg = cfg };
	pthread_mutex_init(&h.stats_mu, NULL);
	pthread_mutex_init(&h.api_mu, NULL);
	enum mote_err err;
	char msg[256];
	sigset_t mask;

	mote_log_setup(cfg->log_level, NULL);
	if (make_dir(cfg->data_dir) != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"cannot create or write data folder %s: %s\"",
			   cfg->data_dir, strerror(errno));
		return MOTE_EIO;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	h.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (h.sigfd < 0)
		return MOTE_EIO;

	err = loop_new(&h.loop);
	if (err != MOTE_OK)
		goto out;
	struct broker_config bcfg = cfg->broker;
	char journal_dir[4096];
	if (cfg->persistence) {
		if (snprintf(journal_dir, sizeof journal_dir, "%s/journal", cfg->data_dir) >=
		    (int)sizeof journal_dir) {
			err = MOTE_EINVAL;
			goto out;
		}
		bcfg.persist_dir = journal_dir;
	}
	bool wss_own = cfg->wss_count > 0 && cfg->wss_client_cert_optional;
	if (cfg->mqtts_count > 0 || (cfg->wss_count > 0 && !wss_own)) {
		/* Before the broker, so a file problem stops the start at once. */
		if (cfg->tls_crl && stat(cfg->tls_crl, &h.crl_st) != 0)
			memset(&h.crl_st, 0, sizeof h.crl_st);
		err = tls_server_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, cfg->tls_crl, NULL,
				     &h.tls, msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	err = hub_security(&h, cfg);
	if (err != MOTE_OK)
		goto out;
	if (wss_own) {
		/* Browsers with passwords: the certificate policy is the
		 * server context's, so wss gets one of its own. */
		if (cfg->tls_crl && stat(cfg->tls_crl, &h.crl_st) != 0)
			memset(&h.crl_st, 0, sizeof h.crl_st);
		struct tls_server_opts o = { .client_cert_optional = true };
		err = tls_server_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, cfg->tls_crl, &o,
				     &h.wss_tls, msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	if (cfg->pki_dir && (err = start_provision(&h, cfg->pki_dir)) != MOTE_OK)
		goto out;
	if (h.prov)
		auth_set_claim_check(h.auth, hub_claim_check, &h);
	if (cfg->platform_on && (err = start_platform(&h, cfg)) != MOTE_OK)
		goto out;
	if (cfg->http && !h.platform) {
		MOTE_ERROR("hub", "event=start_failed why=\"--http needs the platform\" "
				  "hint=\"drop --platform off\"");
		err = MOTE_EINVAL;
		goto out;
	}
	struct broker_hooks hooks = {
		.ctx = &h,
		.accept = hook_accept,
		.authenticate = hook_authenticate,
		.authorize = hook_authorize,
		.tap = h.prov || h.platform ? hook_tap : NULL,
		.tap_wants = hook_tap_wants,
		.on_connect = h.platform ? hook_on_connect : NULL,
		.subscribed = h.platform ? hook_subscribed : NULL,
		.on_disconnect = h.platform ? hook_on_disconnect : NULL,
	};
	err = broker_new(&bcfg, &hooks, h.loop, &h.broker);
	if (err != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"broker: %s\" hint=\"see the lines above; "
				  "--persistence off starts without the journal\"",
			   mote_strerror(err));
		goto out;
	}
	if (h.prov && (err = provision_start(h.prov, h.loop, h.broker)) != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"provisioning: %s\"", mote_strerror(err));
		goto out;
	}
	for (unsigned i = 0; i < cfg->mqtt_count; i++) {
		err = broker_listen_tcp(h.broker, cfg->mqtt[i], msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	for (unsigned i = 0; i < cfg->mqtts_count; i++) {
		err = broker_listen_tls(h.broker, cfg->mqtts[i], h.tls, msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	for (unsigned i = 0; i < cfg->ws_count; i++) {
		err = broker_listen_ws(h.broker, cfg->ws[i], NULL, cfg->ws_origins,
				       cfg->ws_origin_count, msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	for (unsigned i = 0; i < cfg->wss_count; i++) {
		err = broker_listen_ws(h.broker, cfg->wss[i], wss_own ? h.wss_tls : h.tls,
				       cfg->ws_origins, cfg->ws_origin_count, msg, sizeof msg);
		if (err != MOTE_OK) {
			MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
			goto out;
		}
	}
	if (h.platform && (err = outbox_start(&h.outbox, h.loop, h.broker)) != MOTE_OK)
		goto out;
	loop_timer_init(&h.stats_timer, on_stats_timer, &h);
	broker_get_stats(h.broker, &h.stats);
	if (cfg->http && ((err = loop_timer_start(h.loop, &h.stats_timer, 1000)) != MOTE_OK ||
			  (err = start_api(&h, cfg)) != MOTE_OK))
		goto out;
	err = loop_io_start(h.loop, &h.sig_io, h.sigfd, LOOP_READ, on_signal, &h);
	if (err != MOTE_OK)
		goto out;
	loop_timer_init(&h.crl_timer, on_crl_timer, &h);
	if ((h.tls || h.wss_tls) && cfg->tls_crl && cfg->tls_crl_check_s) {
		err = loop_timer_start(h.loop, &h.crl_timer, (uint64_t)cfg->tls_crl_check_s * 1000u);
		if (err != MOTE_OK)
			goto out;
	}
	/* After the listeners: the ports are held while argon2id runs. */
	err = auth_first_start(h.auth, msg, sizeof msg);
	if (err != MOTE_OK) {
		MOTE_ERROR("hub", "event=start_failed why=\"%s\"", msg);
		goto out;
	}
	MOTE_INFO("hub", "event=ready version=%s data=%s anonymous=%s provisioning=%s platform=%s "
			 "http=%s",
		  MOTE_VERSION, cfg->data_dir, cfg->broker.allow_anonymous ? "allowed" : "refused",
		  h.prov ? "on" : "off", h.platform ? "on" : "off", h.api ? cfg->http : "off");
	err = loop_run(h.loop);
	MOTE_INFO("hub", "event=stopped");
out:
	if (h.loop && h.sig_io.active)
		loop_io_stop(h.loop, &h.sig_io);
	if (h.loop) {
		loop_timer_stop(h.loop, &h.crl_timer);
		loop_timer_stop(h.loop, &h.stats_timer);
	}
	/* The API first: its requests run on the platform. */
	pthread_mutex_lock(&h.api_mu);
	struct api *api = h.api;
	h.api = NULL;
	pthread_mutex_unlock(&h.api_mu);
	api_stop(api);
	if (h.outbox_ready)
		outbox_stop(&h.outbox);
	/* The worker stops before the broker it publishes through; the
	 * services are freed after the broker, whose loop threads tap into
	 * them. The platform's last publishes stay in the outbox. */
	provision_stop(h.prov);
	broker_free(h.broker);
	platform_close(h.platform);
	if (h.outbox_ready)
		outbox_destroy(&h.outbox);
	provision_free(h.prov);
	tls_server_free(h.tls); /* after every connection made with it */
	tls_server_free(h.wss_tls);
	auth_free(h.auth); /* after the broker: its hooks use it */
	if (h.audit) {
		audit_append(h.audit, "hub_stopped", NULL);
		audit_close(h.audit);
	}
	loop_free(h.loop);
	if (h.sigfd >= 0)
		close(h.sigfd);
	pthread_mutex_destroy(&h.stats_mu);
	pthread_mutex_destroy(&h.api_mu);
	return err;
}
