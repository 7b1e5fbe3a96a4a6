/*
 * client_opts.h - what `mote pub` and `mote sub` share: their command-line
 * options (the flags of mosquitto_pub / mosquitto_sub), and a session that
 * connects the SDK client over TCP and explains failures in words a person
 * can act on.
 *
 * Ownership: struct client_opts borrows the argv strings and owns what
 * parsing allocates (topic list, encoded user properties); release it with
 * client_opts_free() whether parsing succeeded or not. struct
 * client_session owns its socket and buffers from client_session_open()
 * (successful or not) until client_session_close().
 *
 * Threading: single-threaded, like the commands themselves.
 */
#ifndef MOTE_CLI_CLIENT_OPTS_H
#define MOTE_CLI_CLIENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sdk/mote_client.h"
#include "sdk/port/posix/transport_tcp.h"

enum client_kind { CLIENT_PUB, CLIENT_SUB };

/* Where `mote pub` takes its message from. */
enum msg_source { MSG_NONE, MSG_ARG, MSG_FILE, MSG_NULL, MSG_STDIN_ALL, MSG_STDIN_LINES };

/* The packets -D can add properties to. */
enum prop_cmd { CMD_CONNECT, CMD_PUBLISH, CMD_SUBSCRIBE, CMD_UNSUBSCRIBE, CMD_DISCONNECT,
		CMD_WILL, CMD_COUNT };

/* -D properties for one packet; props.raw_extra holds the user properties. */
struct cli_props {
	struct mqtt_props props;
	struct mqtt_user_prop *users; /* owned */
	size_t nusers;
	uint8_t *user_raw;            /* owned: users encoded */
	uint32_t sub_id;              /* props.sub_ids points here */
};

struct client_opts {
	enum client_kind kind;
	const char *prog;             /* "mote pub" / "mote sub", for messages */
	const char *host;
	uint16_t port;
	const char **topics;          /* owned array of borrowed strings */
	size_t ntopics;
	enum msg_source source;
	const char *message;          /* -m text or -f path */
	uint8_t qos;
	bool retain;
	const char *id;
	const char *id_prefix;
	char id_buf[96];              /* prefix + pid */
	uint16_t keepalive;
	uint8_t version;              /* MQTT_V311 or MQTT_V5 */
	bool clean;                   /* false with -c */
	bool have_expiry;
	uint32_t session_expiry;
	unsigned long count;          /* sub -C, 0: unlimited */
	unsigned long timeout_s;      /* sub -W, 0: none */
	bool verbose, no_newline, skip_retained, debug, help;
	const char *username, *password;
	const char *will_topic, *will_payload;
	uint8_t will_qos;
	bool will_retain;
	/* -D connect values the SDK takes as options, not as properties */
	uint16_t receive_max;
	uint32_t max_packet;
	uint16_t alias_max;
	struct cli_props props[CMD_COUNT];
	bool any_props;
	size_t argv_bytes;            /* sizes the transmit buffer */
};

/*
 * Parses argv (argv[0] is the subcommand). On failure writes a one-line
 * message that says what to do into err and returns MOTE_EINVAL.
 */
enum mote_err client_opts_parse(struct client_opts *o, enum client_kind kind, int argc,
				char **argv, char *err, size_t errcap);
void client_opts_usage(enum client_kind kind, FILE *out);
void client_opts_free(struct client_opts *o);

/* The name the spec gives an MQTT 5.0 reason code ("Not authorized"). */
const char *cli_reason_name(uint8_t rc);

/* ---- a connected session ----------------------------------------------- */

struct client_session {
	struct client_opts *o;
	struct mote_tcp tcp;
	struct mote_client c;
	uint8_t *tx, *rx, *alias;
	struct mote_inflight slots[32];
	char shown_id[128];           /* for -d lines: assigned id once known */
	char reason_string[256];      /* from the last CONNACK, ack or DISCONNECT */
	struct mote_connack_info info; /* what the server allowed */
	void (*on_message)(struct client_session *s, const struct mqtt_publish *p);
	void *user;
};

/*
 * Connects to o->host:o->port and sends CONNECT. Returns 0 when connected,
 * else the exit status after printing why to stderr. on_message (may be
 * NULL) gets every PUBLISH.
 */
int client_session_open(struct client_session *s, struct client_opts *o,
			void (*on_message)(struct client_session *, const struct mqtt_publish *),
			void *user);

/* Sends DISCONNECT if still connected (with -D disconnect properties),
 * closes the socket and frees the buffers. Safe after a failed open. */
void client_session_close(struct client_session *s);

/* Prints to stderr what a failed SDK call means; returns exit status 1. */
int client_session_fail(struct client_session *s, const char *doing, enum mote_err err);

#endif
