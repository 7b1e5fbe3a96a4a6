/*
 * hub.h - the hub: its configuration (file + command-line flags) and the
 * composition of the event loop and the broker (later also store, twins,
 * rules, API). The face of src/hub/.
 *
 * Threading: hub_run() runs the loop on the calling thread until SIGINT or
 * SIGTERM; everything else is plain data handling.
 */
#ifndef MOTE_HUB_H
#define MOTE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/err.h"
#include "base/log.h"
#include "auth/auth.h"
#include "broker/broker.h"
#include "api/api.h"
#include "platform/platform.h"

#define HUB_MAX_LISTENERS 8
#define HUB_MAX_ORIGINS 16

struct hub_config {
	struct broker_config broker;
	const char *mqtt[HUB_MAX_LISTENERS]; /* "host:port"; borrowed from argv/file */
	unsigned mqtt_count;
	bool mqtt_off;                  /* --mqtt off: no plaintext listener */
	const char *mqtts[HUB_MAX_LISTENERS]; /* MQTT over TLS (mutual) */
	unsigned mqtts_count;
	const char *ws[HUB_MAX_LISTENERS];    /* MQTT over WebSocket */
	unsigned ws_count;
	const char *wss[HUB_MAX_LISTENERS];   /* MQTT over WebSocket over TLS */
	unsigned wss_count;
	bool wss_client_cert_optional;  /* --wss-client-cert optional */
	const char *ws_origins[HUB_MAX_ORIGINS]; /* --ws-origin: browser Origins allowed */
	unsigned ws_origin_count;
	/* TLS files (PEM), borrowed; crl may be NULL. */
	const char *tls_ca, *tls_cert, *tls_key, *tls_crl;
	uint8_t tls_identity;           /* enum hub_tls_identity */
	uint32_t tls_crl_check_s;       /* CRL file change check period, 0 = SIGHUP only */
	const char *data_dir;
	bool persistence;               /* journal in data_dir/journal (default on) */
	const char *pki_dir;            /* --pki: claim provisioning on (NULL: off) */
	enum mote_log_level log_level;
	/* Who may connect and what they may do (src/auth; data_dir,
	 * allow_anonymous and audit are filled in by hub_run). */
	struct auth_config auth;
	const char *audit_log;          /* default DATA/audit.log */
	/* The platform (registry, twins, telemetry, rules) and its HTTP API;
	 * platform.data_dir and pki_dir are filled in by hub_run. */
	bool platform_on;               /* --platform on|off (default on) */
	struct platform_config platform;
	const char *http;               /* --http HOST:PORT, NULL = no API */
	struct api_config api;
	/* Strings read from --config are owned here (freed by hub_config_free). */
	char *file_text;
	char *pki_files[4];             /* --pki defaults of --tls-ca/cert/key/crl, owned */
};

/* Which part of a verified client certificate names the device. */
enum hub_tls_identity {
	HUB_TLS_IDENTITY_CN,  /* subject CN */
	HUB_TLS_IDENTITY_URI, /* ID of a SAN URI urn:mote:dev:ID */
};

void hub_config_defaults(struct hub_config *cfg);
void hub_config_free(struct hub_config *cfg);

/*
 * Applies --config FILE (if given) and then every flag, so flags override the
 * file. MOTE_EINVAL with a sentence for the operator in errbuf.
 * *show_help is set when --help was asked for.
 */
enum mote_err hub_config_parse(struct hub_config *cfg, int argc, char **argv, bool *show_help,
			       char *errbuf, size_t errcap);

/*
 * Parses the text of a config file: `name = value` lines (or `name value`),
 * `#` comments, blank lines; names are the long flags without `--`. `text` is
 * modified in place and must outlive cfg (values point into it).
 */
enum mote_err hub_config_parse_text(struct hub_config *cfg, char *text, char *errbuf,
				    size_t errcap);

/* Prints every option with its default. */
void hub_config_usage(FILE *out);

/* Runs the hub until SIGINT/SIGTERM. MOTE_OK on a clean stop. */
enum mote_err hub_run(const struct hub_config *cfg);

#endif
