/*
 * client_opts.c - the part of `mote pub` and `mote sub` they share:
 * option parsing (mosquitto_pub/sub flags, -D properties), usage text,
 * reason code names, and a session that opens TCP, connects the SDK client,
 * prints -d packet traces and turns failures into sentences that say what
 * to do.
 *
 * Invariants:
 *   - Parsing never exits the process: it fills err and returns, and
 *     everything it allocated is released by client_opts_free().
 *   - Options are checked as a whole after the loop (one message source,
 *     topics valid for PUBLISH or SUBSCRIBE, -D only with MQTT 5, -c only
 *     with -i), so the order of flags does not matter.
 *   - The transmit buffer is sized from the total length of argv: every
 *     string that goes into a CONNECT, SUBSCRIBE or PUBLISH head comes from
 *     the command line (payloads from -f/-s/-l are sent from their own
 *     memory, not from tx).
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client_opts.h"

#define CONNECT_TIMEOUT_MS 10000u
#define SUB_RX_DEFAULT (16u * 1024u * 1024u)
#define PUB_RX_DEFAULT (64u * 1024u)
#define ALIAS_TOPIC_MAX 1024u

/* ---- the option table --------------------------------------------------- */

enum opt_id {
	O_HOST, O_PORT, O_TOPIC, O_MESSAGE, O_FILE, O_NULL, O_STDIN_ALL, O_STDIN_LINES, O_QOS,
	O_RETAIN, O_ID, O_ID_PREFIX, O_KEEPALIVE, O_VERSION, O_NOCLEAN, O_EXPIRY, O_COUNT,
	O_TIMEOUT, O_VERBOSE, O_NONEWLINE, O_SKIP_RETAINED, O_USER, O_PASS, O_PROP,
	O_WILL_TOPIC, O_WILL_PAYLOAD, O_WILL_QOS, O_WILL_RETAIN, O_DEBUG, O_HELP,
};

#define PUB 1u
#define SUB 2u
#define BOTH 3u

static const struct opt {
	char shrt;
	const char *lng;
	enum opt_id id;
	unsigned kinds;
	const char *arg; /* NULL: a switch */
	const char *help;
} table[] = {
	{ 'h', "host", O_HOST, BOTH, "HOST", "host to connect to (default localhost)" },
	{ 'p', "port", O_PORT, BOTH, "PORT", "port to connect to (default 1883)" },
	{ 't', "topic", O_TOPIC, BOTH, "TOPIC",
	  "topic to publish to (pub: once) / filter to subscribe to (sub: repeatable)" },
	{ 'm', "message", O_MESSAGE, PUB, "MSG", "message payload" },
	{ 'f', "file", O_FILE, PUB, "FILE", "send the contents of FILE as the message" },
	{ 'n', "null-message", O_NULL, PUB, NULL, "send an empty (zero-length) message" },
	{ 's', "stdin-file", O_STDIN_ALL, PUB, NULL, "send all of stdin as one message" },
	{ 'l', "stdin-line", O_STDIN_LINES, PUB, NULL, "send each line of stdin as a message" },
	{ 'q', "qos", O_QOS, BOTH, "QOS", "quality of service 0, 1 or 2 (default 0)" },
	{ 'r', "retain", O_RETAIN, PUB, NULL, "ask the server to retain the message" },
	{ 'i', "id", O_ID, BOTH, "ID", "client id (default: assigned by the server)" },
	{ 'I', "id-prefix", O_ID_PREFIX, BOTH, "PREFIX", "client id is PREFIX followed by the pid" },
	{ 'k', "keepalive", O_KEEPALIVE, BOTH, "SECS", "keep alive in seconds (default 60, 0 off)" },
	{ 'V', "protocol-version", O_VERSION, BOTH, "VER",
	  "MQTT version: 311 / mqttv311 (default) or 5 / mqttv5" },
	{ 'c', "disable-clean-session", O_NOCLEAN, BOTH, NULL,
	  "keep the session (clean start 0); needs -i" },
	{ 'x', "session-expiry", O_EXPIRY, BOTH, "SECS",
	  "MQTT 5 session expiry; -1 or inf never (default: 0, or never with -c)" },
	{ 'C', "count", O_COUNT, SUB, "N", "exit after N messages" },
	{ 'W', "timeout", O_TIMEOUT, SUB, "SECS", "exit after SECS seconds (status 27)" },
	{ 'v', "verbose", O_VERBOSE, SUB, NULL, "print \"topic payload\" instead of the payload" },
	{ 'N', "no-newline", O_NONEWLINE, SUB, NULL, "do not add a newline after each message" },
	{ 'R', "no-retained", O_SKIP_RETAINED, SUB, NULL,
	  "skip retained (stale) messages; they do not count for -C" },
	{ 'u', "username", O_USER, BOTH, "USER", "user name" },
	{ 'P', "pw", O_PASS, BOTH, "PASS", "password" },
	{ 'D', "property", O_PROP, BOTH, "CMD PROP VALUE",
	  "MQTT 5 property for a packet, e.g. -D publish user-property k v" },
	{ 0, "will-topic", O_WILL_TOPIC, BOTH, "TOPIC", "topic of the will message" },
	{ 0, "will-payload", O_WILL_PAYLOAD, BOTH, "MSG", "payload of the will message" },
	{ 0, "will-qos", O_WILL_QOS, BOTH, "QOS", "QoS of the will message" },
	{ 0, "will-retain", O_WILL_RETAIN, BOTH, NULL, "retain the will message" },
	{ 'd', "debug", O_DEBUG, BOTH, NULL, "print every packet sent and received to stderr" },
	{ 0, "help", O_HELP, BOTH, NULL, "show this help" },
};

#define NOPTS (sizeof table / sizeof table[0])

static const struct opt *find_opt(const char *a, unsigned kind_bit)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *t = &table[i];
		if (!(t->kinds & kind_bit))
			continue;
		if (a[0] == '-' && a[1] == '-' && strcmp(a + 2, t->lng) == 0)
			return t;
		if (a[0] == '-' && t->shrt && a[1] == t->shrt && a[2] == 0)
			return t;
	}
	return NULL;
}

void client_opts_usage(enum client_kind kind, FILE *out)
{
	unsigned bit = kind == CLIENT_PUB ? PUB : SUB;

	if (kind == CLIENT_PUB)
		fprintf(out, "usage: mote pub -t TOPIC (-m MSG | -f FILE | -n | -s | -l) [options]\n\n"
			     "Publish a message, like mosquitto_pub.\n\n");
	else
		fprintf(out, "usage: mote sub -t FILTER [-t FILTER ...] [options]\n\n"
			     "Subscribe and print messages, like mosquitto_sub. Ctrl-C stops.\n\n");
	fprintf(out, "options:\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *t = &table[i];
		char left[64];
		if (!(t->kinds & bit))
			continue;
		if (t->shrt)
			snprintf(left, sizeof left, "-%c, --%s%s%s", t->shrt, t->lng, t->arg ? " " : "",
				 t->arg ? t->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", t->lng, t->arg ? " " : "",
				 t->arg ? t->arg : "");
		fprintf(out, "  %-34s %s\n", left, t->help);
	}
	fprintf(out, "\n-D packets: connect, publish, subscribe, unsubscribe, disconnect, will.\n"
		     "-D properties: payload-format-indicator, message-expiry-interval, content-type,\n"
		     "  response-topic, correlation-data, subscription-identifier,\n"
		     "  session-expiry-interval, request-problem-information, will-delay-interval,\n"
		     "  request-response-information, receive-maximum, topic-alias-maximum,\n"
		     "  topic-alias, maximum-packet-size, user-property (two values: key value).\n"
		     "Exit status: 0 success, 1 connection or protocol failure, 2 usage error%s.\n",
		kind == CLIENT_SUB ? ", 27 -W timeout" : "");
}

/* ---- reason codes ------------------------------------------------------- */

const char *cli_reason_name(uint8_t rc)
{
	static const struct {
		uint8_t rc;
		const char *name;
	} names[] = {
		{ 0x00, "Success" }, { 0x01, "Granted QoS 1" }, { 0x02, "Granted QoS 2" },
		{ 0x04, "Disconnect with Will Message" }, { 0x10, "No matching subscribers" },
		{ 0x11, "No subscription existed" }, { 0x18, "Continue authentication" },
		{ 0x19, "Re-authenticate" }, { 0x80, "Unspecified error" },
		{ 0x81, "Malformed Packet" }, { 0x82, "Protocol Error" },
		{ 0x83, "Implementation specific error" }, { 0x84, "Unsupported Protocol Version" },
		{ 0x85, "Client Identifier not valid" }, { 0x86, "Bad User Name or Password" },
		{ 0x87, "Not authorized" }, { 0x88, "Server unavailable" }, { 0x89, "Server busy" },
		{ 0x8A, "Banned" }, { 0x8B, "Server shutting down" },
		{ 0x8C, "Bad authentication method" }, { 0x8D, "Keep Alive timeout" },
		{ 0x8E, "Session taken over" }, { 0x8F, "Topic Filter invalid" },
		{ 0x90, "Topic Name invalid" }, { 0x91, "Packet Identifier in use" },
		{ 0x92, "Packet Identifier not found" }, { 0x93, "Receive Maximum exceeded" },
		{ 0x94, "Topic Alias invalid" }, { 0x95, "Packet too large" },
		{ 0x96, "Message rate too high" }, { 0x97, "Quota exceeded" },
		{ 0x98, "Administrative action" }, { 0x99, "Payload format invalid" },
		{ 0x9A, "Retain not supported" }, { 0x9B, "QoS not supported" },
		{ 0x9C, "Use another server" }, { 0x9D, "Server moved" },
		{ 0x9E, "Shared Subscriptions not supported" }, { 0x9F, "Connection rate exceeded" },
		{ 0xA0, "Maximum connect time" }, { 0xA1, "Subscription Identifiers not supported" },
		{ 0xA2, "Wildcard Subscriptions not supported" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].rc == rc)
			return names[i].name;
	return "unknown reason code";
}

/* 3.1.1 CONNACK return codes have their own meanings. */
static const char *connack_name(uint8_t version, uint8_t rc)
{
	static const char *const v311[] = { "Connection accepted",
					    "unacceptable protocol version",
					    "identifier rejected",
					    "server unavailable",
					    "bad user name or password",
					    "not authorized" };
	if (version == MQTT_V5)
		return cli_reason_name(rc);
	return rc < sizeof v311 / sizeof v311[0] ? v311[rc] : "unknown return code";
}

/* ---- values ------------------------------------------------------------- */

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_version(const char *s, uint8_t *v)
{
	if (!strcmp(s, "311") || !strcmp(s, "mqttv311") || !strcmp(s, "4")) {
		*v = MQTT_V311;
		return true;
	}
	if (!strcmp(s, "5") || !strcmp(s, "mqttv5")) {
		*v = MQTT_V5;
		return true;
	}
	return false;
}

/* ---- -D properties ------------------------------------------------------ */

static const struct {
	const char *name;
	uint8_t id;
} prop_names[] = {
	{ "payload-format-indicator", MQTT_PROP_PAYLOAD_FORMAT },
	{ "message-expiry-interval", MQTT_PROP_MESSAGE_EXPIRY },
	{ "content-type", MQTT_PROP_CONTENT_TYPE },
	{ "response-topic", MQTT_PROP_RESPONSE_TOPIC },
	{ "correlation-data", MQTT_PROP_CORRELATION_DATA },
	{ "subscription-identifier", MQTT_PROP_SUBSCRIPTION_ID },
	{ "session-expiry-interval", MQTT_PROP_SESSION_EXPIRY },
	{ "authentication-method", MQTT_PROP_AUTH_METHOD },
	{ "authentication-data", MQTT_PROP_AUTH_DATA },
	{ "request-problem-information", MQTT_PROP_REQUEST_PROBLEM_INFO },
	{ "will-delay-interval", MQTT_PROP_WILL_DELAY },
	{ "request-response-information", MQTT_PROP_REQUEST_RESPONSE_INFO },
	{ "receive-maximum", MQTT_PROP_RECEIVE_MAX },
	{ "topic-alias-maximum", MQTT_PROP_TOPIC_ALIAS_MAX },
	{ "topic-alias", MQTT_PROP_TOPIC_ALIAS },
	{ "maximum-packet-size", MQTT_PROP_MAX_PACKET_SIZE },
	{ "user-property", MQTT_PROP_USER_PROPERTY },
};

static const struct {
	const char *name;
	enum prop_cmd cmd;
	enum mqtt_type type;
} prop_cmds[] = {
	{ "connect", CMD_CONNECT, MQTT_CONNECT },
	{ "publish", CMD_PUBLISH, MQTT_PUBLISH },
	{ "subscribe", CMD_SUBSCRIBE, MQTT_SUBSCRIBE },
	{ "unsubscribe", CMD_UNSUBSCRIBE, MQTT_UNSUBSCRIBE },
	{ "disconnect", CMD_DISCONNECT, MQTT_DISCONNECT },
	{ "will", CMD_WILL, MQTT_CONNECT },
};

static struct mqtt_str str_of(const char *s)
{
	size_t n = strlen(s);
	struct mqtt_str v = { n ? (const uint8_t *)s : NULL, (uint16_t)n };
	return v;
}

/* The numeric properties a byte / u16 / u32 / varint value goes into. */
static void set_number(struct mqtt_props *p, uint8_t id, uint32_t v)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT: p->payload_format = (uint8_t)v; break;
	case MQTT_PROP_MESSAGE_EXPIRY: p->message_expiry = v; break;
	case MQTT_PROP_REQUEST_PROBLEM_INFO: p->request_problem_info = (uint8_t)v; break;
	case MQTT_PROP_WILL_DELAY: p->will_delay = v; break;
	case MQTT_PROP_REQUEST_RESPONSE_INFO: p->request_response_info = (uint8_t)v; break;
	case MQTT_PROP_TOPIC_ALIAS: p->topic_alias = (uint16_t)v; break;
	default: break;
	}
}

/*
 * -D CMD NAME VALUE [VALUE2]: argv[*i] is "-D"; advances *i past the values.
 */
static enum mote_err parse_prop(struct client_opts *o, int argc, char **argv, int *i,
				char *err, size_t errcap)
{
	const char *cmdname, *name, *value;
	size_t c, n;
	uint8_t id = 0;
	unsigned long v;

	if (*i + 3 >= argc) {
		snprintf(err, errcap, "-D needs a packet, a property and a value, e.g. "
				      "-D publish content-type text/plain");
		return MOTE_EINVAL;
	}
	cmdname = argv[*i + 1];
	name = argv[*i + 2];
	value = argv[*i + 3];
	for (c = 0; c < sizeof prop_cmds / sizeof prop_cmds[0]; c++)
		if (!strcmp(prop_cmds[c].name, cmdname))
			break;
	if (c == sizeof prop_cmds / sizeof prop_cmds[0]) {
		snprintf(err, errcap, "-D: unknown packet '%s'; use connect, publish, subscribe, "
				      "unsubscribe, disconnect or will", cmdname);
		return MOTE_EINVAL;
	}
	for (n = 0; n < sizeof prop_names / sizeof prop_names[0]; n++)
		if (!strcmp(prop_names[n].name, name))
			id = prop_names[n].id;
	if (!id) {
		snprintf(err, errcap, "-D: unknown property '%s' (see --help for the list)", name);
		return MOTE_EINVAL;
	}
	if (id == MQTT_PROP_AUTH_METHOD || id == MQTT_PROP_AUTH_DATA) {
		snprintf(err, errcap, "-D %s: enhanced authentication is not supported; "
				      "use -u/-P", name);
		return MOTE_EINVAL;
	}
	if (!mqtt_prop_allowed(id, prop_cmds[c].type, prop_cmds[c].cmd == CMD_WILL)) {
		snprintf(err, errcap, "-D: property '%s' is not allowed in %s", name, cmdname);
		return MOTE_EINVAL;
	}

	struct cli_props *cp = &o->props[prop_cmds[c].cmd];
	struct mqtt_props *p = &cp->props;
	enum mqtt_prop_type type = mqtt_prop_type_of(id);
	*i += 3;
	o->any_props = true;

	if (type == MQTT_PT_PAIR) {
		struct mqtt_user_prop *grown;
		if (*i + 1 >= argc) {
			snprintf(err, errcap, "-D %s user-property needs a key and a value", cmdname);
			return MOTE_EINVAL;
		}
		grown = realloc(cp->users, (cp->nusers + 1) * sizeof *grown);
		if (!grown) {
			snprintf(err, errcap, "out of memory");
			return MOTE_ENOMEM;
		}
		cp->users = grown;
		cp->users[cp->nusers].key = str_of(value);
		cp->users[cp->nusers].val = str_of(argv[*i + 1]);
		cp->nusers++;
		*i += 1;
		return MOTE_OK;
	}
	if (MQTT_HAS(p, id)) {
		snprintf(err, errcap, "-D %s %s given twice", cmdname, name);
		return MOTE_EINVAL;
	}
	if (type == MQTT_PT_STRING || type == MQTT_PT_BINARY) {
		if (strlen(value) > 0xFFFF) {
			snprintf(err, errcap, "-D %s %s: value longer than 65535 bytes", cmdname, name);
			return MOTE_EINVAL;
		}
		MQTT_SET(p, id);
		if (id == MQTT_PROP_CONTENT_TYPE)
			p->content_type = str_of(value);
		else if (id == MQTT_PROP_RESPONSE_TOPIC)
			p->response_topic = str_of(value);
		else if (id == MQTT_PROP_CORRELATION_DATA) {
			p->correlation_data.p = (const uint8_t *)value;
			p->correlation_data.len = (uint32_t)strlen(value);
		}
		return MOTE_OK;
	}
	unsigned long max = type == MQTT_PT_BYTE ? 1 : type == MQTT_PT_U16 ? 0xFFFF
			  : type == MQTT_PT_VARINT ? MQTT_MAX_SUB_ID : 0xFFFFFFFFul;
	if (!parse_ulong(value, max, &v) ||
	    ((id == MQTT_PROP_SUBSCRIPTION_ID || id == MQTT_PROP_RECEIVE_MAX ||
	      id == MQTT_PROP_TOPIC_ALIAS || id == MQTT_PROP_MAX_PACKET_SIZE) && v == 0)) {
		snprintf(err, errcap, "-D %s %s: '%s' is not a valid value (%s..%lu)", cmdname, name,
			 value, max == 1 ? "0" : "1", max);
		return MOTE_EINVAL;
	}
	/* The connect properties the SDK derives from its own options. */
	if (prop_cmds[c].cmd == CMD_CONNECT) {
		switch (id) {
		case MQTT_PROP_SESSION_EXPIRY:
			o->have_expiry = true;
			o->session_expiry = (uint32_t)v;
			return MOTE_OK;
		case MQTT_PROP_RECEIVE_MAX:
			o->receive_max = (uint16_t)v;
			return MOTE_OK;
		case MQTT_PROP_MAX_PACKET_SIZE:
			o->max_packet = (uint32_t)v;
			return MOTE_OK;
		case MQTT_PROP_TOPIC_ALIAS_MAX:
			o->alias_max = (uint16_t)v;
			return MOTE_OK;
		default:
			break;
		}
	}
	if (id == MQTT_PROP_SUBSCRIPTION_ID) {
		cp->sub_id = (uint32_t)v;
		p->sub_ids = &cp->sub_id;
		p->sub_id_count = 1;
		return MOTE_OK;
	}
	if (id == MQTT_PROP_SESSION_EXPIRY)
		p->session_expiry = (uint32_t)v;
	MQTT_SET(p, id);
	set_number(p, id, (uint32_t)v);
	return MOTE_OK;
}

/* Encodes each packet's user properties into its raw_extra. */
static enum mote_err encode_user_props(struct client_opts *o, char *err, size_t errcap)
{
	for (int c = 0; c < CMD_COUNT; c++) {
		struct cli_props *cp = &o->props[c];
		size_t need = 0, used = 0;
		if (!cp->nusers)
			continue;
		for (size_t k = 0; k < cp->nusers; k++)
			need += MOTE_CLIENT_USER_PROP_SIZE(cp->users[k].key.len, cp->users[k].val.len);
		cp->user_raw = malloc(need);
		if (!cp->user_raw) {
			snprintf(err, errcap, "out of memory");
			return MOTE_ENOMEM;
		}
		if (mqtt_user_props_encode(cp->users, cp->nusers, cp->user_raw, need, &used) !=
		    MOTE_OK) {
			snprintf(err, errcap, "-D user-property: keys and values must be UTF-8 "
					      "without NUL characters");
			return MOTE_EINVAL;
		}
		cp->props.raw_extra.p = cp->user_raw;
		cp->props.raw_extra.len = (uint32_t)used;
	}
	return MOTE_OK;
}

/* ---- parsing ------------------------------------------------------------ */

static enum mote_err set_source(struct client_opts *o, enum msg_source src, const char *msg,
				char *err, size_t errcap)
{
	if (o->source != MSG_NONE) {
		snprintf(err, errcap, "give only one of -m, -f, -n, -s and -l");
		return MOTE_EINVAL;
	}
	o->source = src;
	o->message = msg;
	return MOTE_OK;
}

static enum mote_err add_topic(struct client_opts *o, const char *t, char *err, size_t errcap)
{
	const char **grown = realloc(o->topics, (o->ntopics + 1) * sizeof *grown);

	if (!grown) {
		snprintf(err, errcap, "out of memory");
		return MOTE_ENOMEM;
	}
	o->topics = grown;
	o->topics[o->ntopics++] = t;
	return MOTE_OK;
}

/* One option with its argument (NULL for switches). */
static enum mote_err apply(struct client_opts *o, const struct opt *t, const char *a,
			   char *err, size_t errcap)
{
	unsigned long v;

	switch (t->id) {
	case O_HOST: o->host = a; break;
	case O_PORT:
		if (!parse_ulong(a, 65535, &v) || v == 0)
			goto bad;
		o->port = (uint16_t)v;
		break;
	case O_TOPIC: return add_topic(o, a, err, errcap);
	case O_MESSAGE: return set_source(o, MSG_ARG, a, err, errcap);
	case O_FILE: return set_source(o, MSG_FILE, a, err, errcap);
	case O_NULL: return set_source(o, MSG_NULL, NULL, err, errcap);
	case O_STDIN_ALL: return set_source(o, MSG_STDIN_ALL, NULL, err, errcap);
	case O_STDIN_LINES: return set_source(o, MSG_STDIN_LINES, NULL, err, errcap);
	case O_QOS:
		if (!parse_ulong(a, 2, &v))
			goto bad;
		o->qos = (uint8_t)v;
		break;
	case O_RETAIN: o->retain = true; break;
	case O_ID: o->id = a; break;
	case O_ID_PREFIX: o->id_prefix = a; break;
	case O_KEEPALIVE:
		if (!parse_ulong(a, 65535, &v))
			goto bad;
		o->keepalive = (uint16_t)v;
		break;
	case O_VERSION:
		if (!strcmp(a, "31") || !strcmp(a, "mqttv31")) {
			snprintf(err, errcap, "MQTT 3.1 is not supported; use -V 311 or -V 5");
			return MOTE_EINVAL;
		}
		if (!parse_version(a, &o->version))
			goto bad;
		break;
	case O_NOCLEAN: o->clean = false; break;
	case O_EXPIRY:
		if (!strcmp(a, "-1") || !strcmp(a, "inf") || !strcmp(a, "\xe2\x88\x9e"))
			v = 0xFFFFFFFFul;
		else if (!parse_ulong(a, 0xFFFFFFFFul, &v))
			goto bad;
		o->have_expiry = true;
		o->session_expiry = (uint32_t)v;
		break;
	case O_COUNT:
		if (!parse_ulong(a, 0xFFFFFFFFul, &v) || v == 0)
			goto bad;
		o->count = v;
		break;
	case O_TIMEOUT:
		if (!parse_ulong(a, 86400ul * 365, &v) || v == 0)
			goto bad;
		o->timeout_s = v;
		break;
	case O_VERBOSE: o->verbose = true; break;
	case O_NONEWLINE: o->no_newline = true; break;
	case O_SKIP_RETAINED: o->skip_retained = true; break;
	case O_USER: o->username = a; break;
	case O_PASS: o->password = a; break;
	case O_WILL_TOPIC: o->will_topic = a; break;
	case O_WILL_PAYLOAD: o->will_payload = a; break;
	case O_WILL_QOS:
		if (!parse_ulong(a, 2, &v))
			goto bad;
		o->will_qos = (uint8_t)v;
		break;
	case O_WILL_RETAIN: o->will_retain = true; break;
	case O_DEBUG: o->debug = true; break;
	case O_HELP: o->help = true; break;
	case O_PROP: break; /* handled by the caller: it takes 3 or 4 words */
	}
	return MOTE_OK;
bad:
	if (t->shrt)
		snprintf(err, errcap, "-%c: '%s' is not a valid %s", t->shrt, a, t->arg);
	else
		snprintf(err, errcap, "--%s: '%s' is not a valid %s", t->lng, a, t->arg);
	return MOTE_EINVAL;
}

/* The checks that need every option: see the invariants at the top. */
static enum mote_err check_whole(struct client_opts *o, char *err, size_t errcap)
{
	bool pub = o->kind == CLIENT_PUB;

	if (o->ntopics == 0) {
		snprintf(err, errcap, pub ? "give the topic to publish to with -t TOPIC"
					  : "give at least one filter with -t, e.g. -t 'dev/#'");
		return MOTE_EINVAL;
	}
	if (pub && o->ntopics > 1) {
		snprintf(err, errcap, "give only one -t: a message goes to one topic");
		return MOTE_EINVAL;
	}
	for (size_t k = 0; k < o->ntopics; k++) {
		const uint8_t *t = (const uint8_t *)o->topics[k];
		size_t n = strlen(o->topics[k]);
		if (pub ? !mqtt_topic_name_valid(t, n) : !mqtt_topic_filter_valid(t, n)) {
			snprintf(err, errcap,
				 pub ? "invalid topic '%s': it must not be empty or contain '+' or '#'"
				     : "invalid filter '%s': '+' must be a whole level and '#' the "
				       "whole last level",
				 o->topics[k]);
			return MOTE_EINVAL;
		}
	}
	if (pub && o->source == MSG_NONE) {
		snprintf(err, errcap, "nothing to publish: give -m MSG, -f FILE, -n, -s or -l");
		return MOTE_EINVAL;
	}
	if (o->id && o->id_prefix) {
		snprintf(err, errcap, "give -i or -I, not both");
		return MOTE_EINVAL;
	}
	if (!o->clean && !o->id) {
		snprintf(err, errcap, "-c keeps a session, which needs a fixed client id: add -i ID");
		return MOTE_EINVAL;
	}
	if (o->id_prefix) {
		snprintf(o->id_buf, sizeof o->id_buf, "%.64s%ld", o->id_prefix, (long)getpid());
		o->id = o->id_buf;
	}
	if (o->id && !mqtt_utf8_valid((const uint8_t *)o->id, strlen(o->id))) {
		snprintf(err, errcap, "-i: the client id must be valid UTF-8");
		return MOTE_EINVAL;
	}
	if (o->version != MQTT_V5 && (o->any_props || o->have_expiry)) {
		snprintf(err, errcap, "%s sets MQTT 5 properties: add -V 5",
			 o->any_props ? "-D" : "-x");
		return MOTE_EINVAL;
	}
	if (o->version == MQTT_V311 && o->password && !o->username) {
		snprintf(err, errcap, "MQTT 3.1.1 sends a password only with a user name: add -u USER "
				      "(or use -V 5)");
		return MOTE_EINVAL;
	}
	if (!o->will_topic && (o->will_payload || o->will_qos || o->will_retain)) {
		snprintf(err, errcap, "the will options need --will-topic TOPIC");
		return MOTE_EINVAL;
	}
	if (o->will_topic &&
	    !mqtt_topic_name_valid((const uint8_t *)o->will_topic, strlen(o->will_topic))) {
		snprintf(err, errcap, "invalid --will-topic '%s': no '+' or '#', not empty",
			 o->will_topic);
		return MOTE_EINVAL;
	}
	if (o->will_payload && strlen(o->will_payload) > 0xFFFF) {
		snprintf(err, errcap, "--will-payload is longer than 65535 bytes");
		return MOTE_EINVAL;
	}
	return encode_user_props(o, err, errcap);
}

enum mote_err client_opts_parse(struct client_opts *o, enum client_kind kind, int argc,
				char **argv, char *err, size_t errcap)
{
	unsigned bit = kind == CLIENT_PUB ? PUB : SUB;
	enum mote_err e;

	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->prog = kind == CLIENT_PUB ? "mote pub" : "mote sub";
	o->host = "localhost";
	o->port = 1883;
	o->keepalive = 60;
	o->version = MQTT_V311;
	o->clean = true;
	err[0] = 0;
	for (int i = 0; i < argc; i++)
		o->argv_bytes += strlen(argv[i]) + 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *t = find_opt(a, bit);
		if (!t) {
			if (a[0] == '-' && find_opt(a, BOTH))
				snprintf(err, errcap, "%s is a %s option, not a %s one", a,
					 kind == CLIENT_PUB ? "mote sub" : "mote pub",
					 kind == CLIENT_PUB ? "mote pub" : "mote sub");
			else
				snprintf(err, errcap, "unknown option '%s'; see %s --help", a, o->prog);
			return MOTE_EINVAL;
		}
		if (t->id == O_PROP) {
			if ((e = parse_prop(o, argc, argv, &i, err, errcap)) != MOTE_OK)
				return e;
			continue;
		}
		if (t->id == O_HELP) {
			o->help = true;
			return MOTE_OK;
		}
		if (t->arg && i + 1 >= argc) {
			snprintf(err, errcap, "%s needs a value (%s)", a, t->arg);
			return MOTE_EINVAL;
		}
		if ((e = apply(o, t, t->arg ? argv[++i] : NULL, err, errcap)) != MOTE_OK)
			return e;
	}
	return check_whole(o, err, errcap);
}

void client_opts_free(struct client_opts *o)
{
	free(o->topics);
	o->topics = NULL;
	for (int c = 0; c < CMD_COUNT; c++) {
		free(o->props[c].users);
		free(o->props[c].user_raw);
		o->props[c].users = NULL;
		o->props[c].user_raw = NULL;
	}
}

/* ---- -d packet traces --------------------------------------------------- */

static void trace(struct client_session *s, bool sent, const struct mqtt_packet *p)
{
	const char *dir = sent ? "sending" : "received";
	const char *id = s->shown_id;

	switch (p->type) {
	case MQTT_CONNACK:
		fprintf(stderr, "Client %s received CONNACK (%u)\n", id, p->u.connack.reason);
		break;
	case MQTT_PUBLISH: {
		const struct mqtt_publish *q = &p->u.publish;
		fprintf(stderr, "Client %s %s PUBLISH (d%d, q%u, r%d, m%u, '%.*s', ... (%lu bytes))\n",
			id, dir, q->dup, q->qos, q->retain, q->packet_id, (int)q->topic.len,
			q->topic.p ? (const char *)q->topic.p : "", (unsigned long)q->payload.len);
		break;
	}
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		fprintf(stderr, "Client %s %s %s (Mid: %u, RC:%u)\n", id, dir, mqtt_type_name(p->type),
			p->u.ack.packet_id, p->u.ack.reason);
		break;
	case MQTT_SUBSCRIBE:
		for (uint32_t k = 0; k < p->u.subscribe.count; k++) {
			const struct mqtt_sub_entry *e = &p->u.subscribe.entries[k];
			unsigned optbyte = (unsigned)(e->opts.no_local << 2 |
						      e->opts.retain_as_published << 3 |
						      e->opts.retain_handling << 4);
			fprintf(stderr,
				"Client %s sending SUBSCRIBE (Mid: %u, Topic: %.*s, QoS: %u, Options: "
				"0x%02x)\n",
				id, p->u.subscribe.packet_id, (int)e->filter.len,
				(const char *)e->filter.p, e->opts.qos, optbyte);
		}
		break;
	case MQTT_UNSUBSCRIBE:
		for (uint32_t k = 0; k < p->u.unsubscribe.count; k++)
			fprintf(stderr, "Client %s sending UNSUBSCRIBE (Mid: %u, Topic: %.*s)\n", id,
				p->u.unsubscribe.packet_id, (int)p->u.unsubscribe.filters[k].len,
				(const char *)p->u.unsubscribe.filters[k].p);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		fprintf(stderr, "Client %s received %s (Mid: %u)\n", id, mqtt_type_name(p->type),
			p->u.suback.packet_id);
		break;
	case MQTT_DISCONNECT:
		if (s->o->version == MQTT_V5)
			fprintf(stderr, "Client %s %s DISCONNECT (%u)\n", id, dir,
				p->u.disconnect.reason);
		else
			fprintf(stderr, "Client %s %s DISCONNECT\n", id, dir);
		break;
	default:
		fprintf(stderr, "Client %s %s %s\n", id, dir, mqtt_type_name(p->type));
		break;
	}
}

static void copy_view(char *dst, size_t cap, struct mqtt_str v)
{
	size_t n = v.len < cap - 1 ? v.len : cap - 1;
	if (n)
		memcpy(dst, v.p, n);
	dst[n] = 0;
}

static void on_packet(struct mote_client *c, bool sent, const struct mqtt_packet *p, void *user)
{
	struct client_session *s = user;
	(void)c;

	if (!sent && p->type == MQTT_CONNACK) {
		const struct mqtt_props *pr = &p->u.connack.props;
		if (MQTT_HAS(pr, MQTT_PROP_ASSIGNED_CLIENT_ID))
			copy_view(s->shown_id, sizeof s->shown_id, pr->assigned_client_id);
		if (MQTT_HAS(pr, MQTT_PROP_REASON_STRING))
			copy_view(s->reason_string, sizeof s->reason_string, pr->reason_string);
	}
	if (!sent && p->type == MQTT_DISCONNECT &&
	    MQTT_HAS(&p->u.disconnect.props, MQTT_PROP_REASON_STRING))
		copy_view(s->reason_string, sizeof s->reason_string,
			  p->u.disconnect.props.reason_string);
	if (!sent && (p->type == MQTT_PUBACK || p->type == MQTT_PUBREC || p->type == MQTT_PUBCOMP)) {
		s->reason_string[0] = 0;
		if (MQTT_HAS(&p->u.ack.props, MQTT_PROP_REASON_STRING))
			copy_view(s->reason_string, sizeof s->reason_string,
				  p->u.ack.props.reason_string);
	}
	if (s->o->debug)
		trace(s, sent, p);
}

static void on_publish(struct mote_client *c, const struct mqtt_publish *p, void *user)
{
	struct client_session *s = user;
	(void)c;
	if (s->on_message)
		s->on_message(s, p);
}

/* ---- the session -------------------------------------------------------- */

static int connect_failed(struct client_session *s, enum mote_err err)
{
	const struct client_opts *o = s->o;

	switch (err) {
	case MOTE_ENOTFOUND:
		fprintf(stderr, "%s: cannot resolve host '%s' (%s): check -h\n", o->prog, o->host,
			gai_strerror(s->tcp.gai_error));
		break;
	case MOTE_ETIMEDOUT:
		fprintf(stderr, "%s: no answer from %s:%u within %u s: check -h/-p and firewalls\n",
			o->prog, o->host, o->port, CONNECT_TIMEOUT_MS / 1000);
		break;
	default:
		if (s->tcp.last_errno == ECONNREFUSED)
			fprintf(stderr,
				"%s: connection refused by %s:%u: is the hub running? (start it with "
				"`make run`)\n",
				o->prog, o->host, o->port);
		else
			fprintf(stderr, "%s: cannot connect to %s:%u: %s\n", o->prog, o->host, o->port,
				s->tcp.last_errno ? strerror(s->tcp.last_errno) : mote_strerror(err));
		break;
	}
	return 1;
}

static const char *refusal_hint(uint8_t version, uint8_t rc)
{
	if (version == MQTT_V311) {
		switch (rc) {
		case MQTT311_CONNACK_BAD_VERSION: return "try -V 5";
		case MQTT311_CONNACK_ID_REJECTED: return "choose another client id with -i";
		case MQTT311_CONNACK_BAD_USER_OR_PASSWORD: return "check -u and -P";
		case MQTT311_CONNACK_NOT_AUTHORIZED: return "check -u/-P and the server's access rules";
		default: return "try again later";
		}
	}
	switch (rc) {
	case MQTT_RC_UNSUPPORTED_VERSION: return "try -V 311";
	case MQTT_RC_CLIENT_ID_INVALID: return "choose another client id with -i";
	case MQTT_RC_BAD_USER_OR_PASSWORD: return "check -u and -P";
	case MQTT_RC_NOT_AUTHORIZED: return "check -u/-P and the server's access rules";
	case MQTT_RC_BANNED: return "ask the server's operator";
	default: return "see the server's log";
	}
}

int client_session_fail(struct client_session *s, const char *doing, enum mote_err err)
{
	const struct client_opts *o = s->o;
	uint8_t rc = mote_client_disconnect_reason(&s->c);

	if (err == MOTE_ECLOSED && rc) {
		fprintf(stderr, "%s: the server ended the session while %s: %s (0x%02x)%s%s\n",
			o->prog, doing, cli_reason_name(rc), rc, s->reason_string[0] ? ": " : "",
			s->reason_string);
		if (rc == MQTT_RC_SESSION_TAKEN_OVER)
			fprintf(stderr, "%s: another client connected with the same id; use a "
					"different -i\n", o->prog);
	} else if (err == MOTE_ECLOSED) {
		fprintf(stderr, "%s: the server closed the connection while %s%s\n", o->prog, doing,
			o->id && o->id[0] ? " (did another client connect with the same -i?)"
			: o->version == MQTT_V311
				? " (MQTT 3.1.1 servers close the connection to refuse an action)"
				: "");
	} else if (err == MOTE_ETIMEDOUT) {
		fprintf(stderr, "%s: the server did not answer in time while %s\n", o->prog, doing);
	} else if (err == MOTE_EMALFORMED || err == MOTE_EPROTO) {
		fprintf(stderr, "%s: the server sent an invalid packet while %s (%s); connection "
				"closed\n", o->prog, doing, mote_strerror(err));
	} else if (err == MOTE_ETOOBIG && mote_client_state(&s->c) == MOTE_CLIENT_CLOSED) {
		fprintf(stderr, "%s: a packet from the server is larger than the receive buffer "
				"while %s: raise it with -V 5 -D connect maximum-packet-size BYTES\n",
			o->prog, doing);
	} else {
		fprintf(stderr, "%s: %s failed: %s\n", o->prog, doing, mote_strerror(err));
	}
	return 1;
}

static void fill_connect(const struct client_session *s, struct mote_connect_opts *co,
			 struct mote_will *will)
{
	const struct client_opts *o = s->o;

	memset(co, 0, sizeof *co);
	co->version = o->version;
	co->client_id = o->id ? o->id : "";
	co->clean_start = o->clean;
	co->keep_alive_s = o->keepalive;
	co->username = o->username;
	if (o->password) {
		co->password = o->password;
		co->password_len = strlen(o->password);
	}
	if (o->will_topic) {
		memset(will, 0, sizeof *will);
		will->topic = o->will_topic;
		will->payload = o->will_payload;
		will->payload_len = o->will_payload ? strlen(o->will_payload) : 0;
		will->qos = o->will_qos;
		will->retain = o->will_retain;
		will->props = &o->props[CMD_WILL].props;
		co->will = will;
	}
	/* Like mosquitto: -c alone keeps the session forever. */
	co->session_expiry = o->have_expiry ? o->session_expiry : o->clean ? 0 : 0xFFFFFFFFu;
	co->receive_max = o->receive_max;
	co->max_packet_size = o->max_packet;
	co->props = &o->props[CMD_CONNECT].props;
}

int client_session_open(struct client_session *s, struct client_opts *o,
			void (*on_message)(struct client_session *, const struct mqtt_publish *),
			void *user)
{
	struct mote_client_cfg cfg;
	struct mote_connect_opts co;
	struct mote_connack_info *info = &s->info;
	struct mote_will will;
	size_t tx_cap = 1024 + 2 * o->argv_bytes;
	size_t rx_cap = o->max_packet ? o->max_packet
				      : o->kind == CLIENT_SUB ? SUB_RX_DEFAULT : PUB_RX_DEFAULT;
	enum mote_err err;

	memset(s, 0, sizeof *s);
	s->o = o;
	s->on_message = on_message;
	s->user = user;
	mote_tcp_init(&s->tcp);
	snprintf(s->shown_id, sizeof s->shown_id, "%s", o->id && o->id[0] ? o->id : "(null)");
	if (rx_cap < 256)
		rx_cap = 256;
	s->tx = malloc(tx_cap);
	s->rx = malloc(rx_cap);
	if (o->alias_max)
		s->alias = malloc(MOTE_CLIENT_ALIAS_MEM(o->alias_max, ALIAS_TOPIC_MAX));
	if (!s->tx || !s->rx || (o->alias_max && !s->alias)) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		return 1;
	}

	memset(&cfg, 0, sizeof cfg);
	cfg.transport = mote_tcp_transport(&s->tcp);
	cfg.clock = mote_posix_clock();
	cfg.tx_buf = s->tx;
	cfg.tx_cap = tx_cap;
	cfg.rx_buf = s->rx;
	cfg.rx_cap = rx_cap;
	cfg.inflight = s->slots;
	cfg.inflight_len = sizeof s->slots / sizeof s->slots[0];
	cfg.alias_mem = s->alias;
	cfg.alias_mem_len = o->alias_max ? MOTE_CLIENT_ALIAS_MEM(o->alias_max, ALIAS_TOPIC_MAX) : 0;
	cfg.alias_max = o->alias_max;
	cfg.cb.on_publish = on_publish;
	cfg.cb.on_packet = on_packet;
	cfg.user = s;
	if ((err = mote_client_init(&s->c, &cfg)) != MOTE_OK) {
		fprintf(stderr, "%s: cannot set up the client: %s\n", o->prog, mote_strerror(err));
		return 1;
	}
	if ((err = mote_tcp_connect(&s->tcp, o->host, o->port, CONNECT_TIMEOUT_MS)) != MOTE_OK)
		return connect_failed(s, err);

	fill_connect(s, &co, &will);
	err = mote_client_connect(&s->c, &co, info, CONNECT_TIMEOUT_MS);
	if (err == MOTE_EDENIED) {
		fprintf(stderr, "%s: %s:%u refused the connection: %s (0x%02x)%s%s: %s\n", o->prog,
			o->host, o->port, connack_name(o->version, info->reason), info->reason,
			s->reason_string[0] ? ": " : "", s->reason_string,
			refusal_hint(o->version, info->reason));
		return 1;
	}
	if (err == MOTE_ECLOSED && mote_client_disconnect_reason(&s->c) == 0) {
		fprintf(stderr, "%s: %s:%u closed the connection before answering CONNECT: is it "
				"an MQTT server? (check -p%s)\n",
			o->prog, o->host, o->port, o->version == MQTT_V5 ? ", or try -V 311" : "");
		return 1;
	}
	if (err != MOTE_OK)
		return client_session_fail(s, "connecting", err);
	return 0;
}

void client_session_close(struct client_session *s)
{
	if (s->o && mote_client_state(&s->c) == MOTE_CLIENT_CONNECTED)
		(void)mote_client_disconnect(&s->c, MQTT_RC_SUCCESS,
					     &s->o->props[CMD_DISCONNECT].props);
	mote_tcp_close(&s->tcp);
	free(s->tx);
	free(s->rx);
	free(s->alias);
	s->tx = s->rx = s->alias = NULL;
}
