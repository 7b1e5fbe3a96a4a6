/*
 * mqtt.h - the MQTT 3.1.1 and 5.0 codec: the face of src/mqtt/.
 *
 * A pure leaf module: encode, decode and validate, no I/O, no allocation.
 *
 * Decoding returns views (pointer + length) into the caller's input buffer;
 * the decoded structs are valid only while that buffer is unchanged. Nothing
 * here allocates. Encoding writes into a caller-supplied buffer and fails with
 * MOTE_ENOSPC (writing nothing useful) when it is too small.
 *
 * Decoding a packet is two steps:
 *   1. mqtt_frame() finds the packet boundary in a byte stream (fixed header
 *      + remaining length) and enforces the maximum packet size;
 *   2. mqtt_decode() parses and validates one whole packet.
 * On a decode failure, `struct mqtt_fault` says which reason code the spec
 * requires in the DISCONNECT / CONNACK (0x81 malformed, 0x82 protocol error,
 * 0x84 unsupported version, 0x90 topic name invalid, 0x95 packet too large,
 * ...) and a short static text for logs and reason strings.
 *
 * Ownership: every `const uint8_t *` in a decoded struct points into the
 * buffer given to mqtt_decode(); the caller owns both. Encode inputs are
 * borrowed for the duration of the call only.
 *
 * Threading: stateless; every function is safe from any thread.
 */
#ifndef MOTE_MQTT_H
#define MOTE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* ---- protocol constants ---------------------------------------------- */

enum mqtt_version {
	MQTT_V31 = 3,  /* MQIsdp: recognised only to refuse it with 0x01 */
	MQTT_V311 = 4,
	MQTT_V5 = 5,
};

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15, /* 5.0 only */
};

/* MQTT 5.0 reason codes (section 2.4) that mote uses by name. */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00, /* also: normal disconnection, granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTH = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED = 0x80,
	MQTT_RC_MALFORMED = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPL_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_INVALID = 0x85,
	MQTT_RC_BAD_USER_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTH_METHOD = 0x8C,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_ID_IN_USE = 0x91,
	MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMIN_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAX_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* MQTT 3.1.1 CONNACK return codes (section 3.2.2.3). */
enum mqtt311_connack {
	MQTT311_CONNACK_ACCEPTED = 0,
	MQTT311_CONNACK_BAD_VERSION = 1,
	MQTT311_CONNACK_ID_REJECTED = 2,
	MQTT311_CONNACK_UNAVAILABLE = 3,
	MQTT311_CONNACK_BAD_USER_OR_PASSWORD = 4,
	MQTT311_CONNACK_NOT_AUTHORIZED = 5,
};

/* 3.1.1 SUBACK failure return code. */
#define MQTT311_SUBACK_FAILURE 0x80

/* MQTT 5.0 property identifiers (section 2.2.2.2). */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,         /* byte */
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,         /* four-byte int */
	MQTT_PROP_CONTENT_TYPE = 0x03,           /* UTF-8 string */
	MQTT_PROP_RESPONSE_TOPIC = 0x08,         /* UTF-8 string */
	MQTT_PROP_CORRELATION_DATA = 0x09,       /* binary data */
	MQTT_PROP_SUBSCRIPTION_ID = 0x0B,        /* variable byte int */
	MQTT_PROP_SESSION_EXPIRY = 0x11,         /* four-byte int */
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,     /* UTF-8 string */
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,      /* two-byte int */
	MQTT_PROP_AUTH_METHOD = 0x15,            /* UTF-8 string */
	MQTT_PROP_AUTH_DATA = 0x16,              /* binary data */
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,   /* byte */
	MQTT_PROP_WILL_DELAY = 0x18,             /* four-byte int */
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,  /* byte */
	MQTT_PROP_RESPONSE_INFO = 0x1A,          /* UTF-8 string */
	MQTT_PROP_SERVER_REFERENCE = 0x1C,       /* UTF-8 string */
	MQTT_PROP_REASON_STRING = 0x1F,          /* UTF-8 string */
	MQTT_PROP_RECEIVE_MAX = 0x21,            /* two-byte int */
	MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,        /* two-byte int */
	MQTT_PROP_TOPIC_ALIAS = 0x23,            /* two-byte int */
	MQTT_PROP_MAX_QOS = 0x24,                /* byte */
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,       /* byte */
	MQTT_PROP_USER_PROPERTY = 0x26,          /* UTF-8 string pair */
	MQTT_PROP_MAX_PACKET_SIZE = 0x27,        /* four-byte int */
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28, /* byte */
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,       /* byte */
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,   /* byte */
};

/* Wire types of property values. */
enum mqtt_prop_type {
	MQTT_PT_NONE = 0, /* not a valid property identifier */
	MQTT_PT_BYTE,
	MQTT_PT_U16,
	MQTT_PT_U32,
	MQTT_PT_VARINT,
	MQTT_PT_STRING,
	MQTT_PT_BINARY,
	MQTT_PT_PAIR,
};

/* Largest remaining length a variable byte integer can carry (256 MB). */
#define MQTT_MAX_REMAINING_LENGTH 268435455u
/* Largest subscription identifier (a variable byte integer). */
#define MQTT_MAX_SUB_ID 268435455u
/* Largest fixed header: 1 type byte + 4 length bytes. */
#define MQTT_MAX_FIXED_HEADER 5

/* ---- views ------------------------------------------------------------ */

/* A UTF-8 string view (validated when it comes out of mqtt_decode). */
struct mqtt_str {
	const uint8_t *p; /* NULL only when len == 0 */
	uint16_t len;
};

/* A binary view. */
struct mqtt_bin {
	const uint8_t *p;
	uint32_t len;
};

/* A user property as a pair of strings (for building encoder input). */
struct mqtt_user_prop {
	struct mqtt_str key;
	struct mqtt_str val;
};

/* ---- properties -------------------------------------------------------- */

/*
 * All MQTT 5.0 properties of one packet. `present` has bit (1ull << id) set
 * for each property that is present (ids are below 64). Fields of absent
 * properties are zero.
 *
 * Decoding: scalar and single-valued properties land in their fields; a
 * repeated property that may repeat (user property, subscription identifier)
 * keeps its first value in the field below, its count in *_count, and
 * all values can be walked with struct mqtt_prop_iter over `raw`, the whole
 * property block as received.
 *
 * Encoding: set `present` bits and fields; `raw_extra` holds further
 * properties already encoded as wire entries (id, value)*, appended verbatim
 * after the fields: user properties (the format of mqtt_user_props_encode()
 * and mqtt_props_copy_user()), or any properties a broker forwards
 * unchanged; the encoder does not re-validate them. Subscription
 * identifiers go in `sub_ids`/`sub_id_count` (the bit for
 * MQTT_PROP_SUBSCRIPTION_ID is then ignored; with sub_id_count 0 a set bit
 * writes `sub_id` once, so decoded SUBSCRIBE properties re-encode as they
 * are). `raw`, `user_first` and the user property bit are ignored by the
 * encoder: user properties travel in `raw_extra` only.
 */
struct mqtt_props {
	uint64_t present;

	uint8_t payload_format;
	uint8_t request_problem_info;
	uint8_t request_response_info;
	uint8_t max_qos;
	uint8_t retain_available;
	uint8_t wildcard_sub_available;
	uint8_t sub_id_available;
	uint8_t shared_sub_available;

	uint16_t server_keep_alive;
	uint16_t receive_max;
	uint16_t topic_alias_max;
	uint16_t topic_alias;

	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t max_packet_size;

	struct mqtt_str content_type;
	struct mqtt_str response_topic;
	struct mqtt_str assigned_client_id;
	struct mqtt_str auth_method;
	struct mqtt_str response_info;
	struct mqtt_str server_reference;
	struct mqtt_str reason_string;
	struct mqtt_bin correlation_data;
	struct mqtt_bin auth_data;

	/* decode: first subscription identifier and how many there were */
	uint32_t sub_id;
	uint32_t sub_id_count_decoded;
	/* encode: every subscription identifier to write */
	const uint32_t *sub_ids;
	uint32_t sub_id_count;

	/* decode: first user property and how many there were */
	struct mqtt_user_prop user_first;
	uint32_t user_count;
	/* encode: extra properties already encoded as wire entries */
	struct mqtt_bin raw_extra;

	/* decode: the whole property block (without its length prefix) */
	struct mqtt_bin raw;
};

#define MQTT_HAS(props, id) (((props)->present >> (id)) & 1u)
#define MQTT_SET(props, id) ((props)->present |= (1ull << (id)))

/* One property as walked by the iterator. */
struct mqtt_prop {
	uint8_t id;
	enum mqtt_prop_type type;
	uint32_t u32;          /* byte, two-byte, four-byte and varint values */
	struct mqtt_str str;   /* string value, or the key of a pair */
	struct mqtt_str str2;  /* the value of a pair */
	struct mqtt_bin bin;   /* binary value */
};

struct mqtt_prop_iter {
	const uint8_t *p;
	const uint8_t *end;
};

/* Walk a property block that mqtt_decode() already validated. */
void mqtt_prop_iter_init(struct mqtt_prop_iter *it, const struct mqtt_props *props);
/* Returns true and fills *out while properties remain, false at the end. */
bool mqtt_prop_iter_next(struct mqtt_prop_iter *it, struct mqtt_prop *out);

/* The wire type of a property id, MQTT_PT_NONE if the id is unknown. */
enum mqtt_prop_type mqtt_prop_type_of(uint8_t id);
/* Whether property `id` may appear in packets of `type` (will properties:
 * pass MQTT_CONNECT with `will` true). */
bool mqtt_prop_allowed(uint8_t id, enum mqtt_type type, bool will);

/*
 * Copies every user property of a decoded block into dst as encoded entries
 * (the `raw_extra` encoder format). *out_len gets the byte count.
 * MOTE_ENOSPC if cap is too small.
 */
enum mote_err mqtt_props_copy_user(const struct mqtt_props *props, uint8_t *dst,
				   size_t cap, size_t *out_len);
/* Encodes user property pairs into the `raw_extra` format. */
enum mote_err mqtt_user_props_encode(const struct mqtt_user_prop *pairs, size_t n,
				     uint8_t *dst, size_t cap, size_t *out_len);

/* ---- packets ----------------------------------------------------------- */

struct mqtt_connect {
	uint8_t version;          /* enum mqtt_version from the protocol level */
	bool clean_start;         /* 3.1.1: clean session */
	bool will;
	uint8_t will_qos;
	bool will_retain;
	bool has_username;
	bool has_password;
	uint16_t keep_alive;      /* seconds */
	struct mqtt_props props;
	struct mqtt_str client_id;
	struct mqtt_props will_props;
	struct mqtt_str will_topic;
	struct mqtt_bin will_payload;
	struct mqtt_str username;
	struct mqtt_bin password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t reason;           /* 5.0 reason code or 3.1.1 return code */
	struct mqtt_props props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	struct mqtt_str topic;    /* may be empty in 5.0 when a topic alias is set */
	uint16_t packet_id;       /* 0 for QoS 0 */
	struct mqtt_props props;
	struct mqtt_bin payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason;           /* 5.0; 0 when absent on the wire */
	struct mqtt_props props;
};

/* Subscription options byte of one SUBSCRIBE entry. */
struct mqtt_sub_opts {
	uint8_t qos;
	bool no_local;            /* 5.0 */
	bool retain_as_published; /* 5.0 */
	uint8_t retain_handling;  /* 5.0: 0, 1 or 2 */
};

struct mqtt_sub_entry {
	struct mqtt_str filter;
	struct mqtt_sub_opts opts;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE keep their topic list as a validated view;
 * walk it with mqtt_topics_next(). For encoding, set `entries` (SUBSCRIBE) or
 * `filters` (UNSUBSCRIBE) and `count`.
 */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	uint32_t count;
	struct mqtt_bin list;                 /* decode */
	const struct mqtt_sub_entry *entries; /* encode */
};

struct mqtt_unsubscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	uint32_t count;
	struct mqtt_bin list;                 /* decode */
	const struct mqtt_str *filters;       /* encode */
};

/* SUBACK and UNSUBACK (3.1.1 UNSUBACK has no reasons: count 0). */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	uint32_t count;
	const uint8_t *reasons;   /* one byte per topic, view or encode input */
};

/* DISCONNECT and AUTH. */
struct mqtt_reason_only {
	uint8_t reason;
	struct mqtt_props props;
};

struct mqtt_packet {
	enum mqtt_type type;
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;               /* PUBACK..PUBCOMP */
		struct mqtt_subscribe subscribe;
		struct mqtt_unsubscribe unsubscribe;
		struct mqtt_suback suback;         /* SUBACK, UNSUBACK */
		struct mqtt_reason_only disconnect;
		struct mqtt_reason_only auth;
	} u;
};

/* Why a packet was refused, in the words the spec wants on the wire. */
struct mqtt_fault {
	uint8_t reason;   /* enum mqtt_rc to put in DISCONNECT/CONNACK */
	const char *why;  /* static text for logs and reason strings */
};

/* Iterator over a decoded SUBSCRIBE / UNSUBSCRIBE topic list. */
struct mqtt_topic_iter {
	const uint8_t *p;
	const uint8_t *end;
	bool with_opts; /* SUBSCRIBE entries carry an options byte */
};
void mqtt_subscribe_iter(struct mqtt_topic_iter *it, const struct mqtt_subscribe *s);
void mqtt_unsubscribe_iter(struct mqtt_topic_iter *it, const struct mqtt_unsubscribe *u);
/* Fills *out (opts zero for UNSUBSCRIBE); false at the end. */
bool mqtt_topics_next(struct mqtt_topic_iter *it, struct mqtt_sub_entry *out);

/* ---- framing and decoding --------------------------------------------- */

struct mqtt_frame {
	uint8_t type;              /* high nibble of the first byte */
	uint8_t flags;             /* low nibble of the first byte */
	uint32_t header_len;       /* 2..5 */
	uint32_t remaining_len;
	uint32_t total_len;        /* header_len + remaining_len */
};

/*
 * Finds one packet at the start of buf[0..len).
 *   MOTE_OK:         *out describes a whole packet of out->total_len bytes
 *                    (all of them are in buf)
 *   MOTE_EAGAIN:     need more bytes; once the fixed header is complete,
 *                    *out is filled too, so total_len says how much to buffer
 *   MOTE_EMALFORMED: bad variable byte integer (fault->reason 0x81)
 *   MOTE_ETOOBIG:    total_len would exceed max_packet (0 = no limit beyond
 *                    the protocol's); fault->reason 0x95. out is filled so the
 *                    caller knows how much it would be.
 * `fault` may be NULL.
 */
enum mote_err mqtt_frame_parse(const uint8_t *buf, size_t len, uint32_t max_packet,
			       struct mqtt_frame *out, struct mqtt_fault *fault);

/*
 * Decodes one whole packet buf[0..len) (len == frame total_len) as sent by a
 * peer speaking `version` (ignored for CONNECT, which states it). `from_client`
 * selects the direction: packets a client may not send (CONNACK, SUBACK,
 * PINGRESP, ...) are refused when it is true, and those a server may not send
 * when false.
 *
 * Validates everything the spec makes the receiver check in the packet itself:
 * reserved flags, QoS 3, packet identifiers nonzero where required, UTF-8
 * strings (well-formed, no U+0000, no surrogates), topic names (no wildcards,
 * non-empty unless a 5.0 topic alias is present), subscription options
 * (reserved bits, retain handling 3), non-empty topic lists, property ids,
 * types, duplicates and the packets they may appear in, property value ranges
 * (e.g. receive maximum 0, topic alias 0, maximum packet size 0, payload
 * format > 1), trailing bytes. Topic FILTER syntax in SUBSCRIBE is not judged
 * here (5.0 answers it per filter in the SUBACK): use mqtt_topic_filter_valid.
 *
 * Returns MOTE_OK, MOTE_EMALFORMED or MOTE_EPROTO (fault says which reason
 * code); for CONNECT with an unknown protocol name or level, MOTE_EPROTO with
 * fault->reason MQTT_RC_UNSUPPORTED_VERSION (and out->u.connect.version set
 * to what was seen, so the CONNACK can use the right format).
 */
enum mote_err mqtt_decode(const uint8_t *buf, size_t len, uint8_t version,
			  bool from_client, struct mqtt_packet *out,
			  struct mqtt_fault *fault);

/* ---- encoding ---------------------------------------------------------- */

/*
 * Encodes `pkt` for a peer speaking `version` into buf[0..cap).
 * *out_len gets the byte count. Properties are written only for 5.0. Returns
 * MOTE_ENOSPC if cap is too small, MOTE_EINVAL if the packet cannot be
 * represented (e.g. remaining length over 256 MB, a string over 65535 bytes).
 */
enum mote_err mqtt_encode(const struct mqtt_packet *pkt, uint8_t version,
			  uint8_t *buf, size_t cap, size_t *out_len);

/* The number of bytes mqtt_encode() would write. */
enum mote_err mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t version,
				size_t *out_size);

/*
 * Encodes a PUBLISH without its payload bytes: the fixed header (with the
 * remaining length counting the payload), topic, packet id and properties.
 * The caller sends head then payload (writev), so one payload can be shared
 * by every subscriber. pub->payload.len must be set; pub->payload.p is not
 * read.
 */
enum mote_err mqtt_encode_publish_head(const struct mqtt_publish *pub, uint8_t version,
				       uint8_t *buf, size_t cap, size_t *out_len);

/* ---- primitives -------------------------------------------------------- */

/*
 * Variable byte integer. decode: MOTE_EAGAIN if buf ends before the last
 * byte, MOTE_EMALFORMED if a fifth byte would be needed. *used gets the
 * number of bytes read.
 */
enum mote_err mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value,
				 uint32_t *used);
/* Returns bytes written (1..4), 0 if value > MQTT_MAX_REMAINING_LENGTH or
 * cap too small. */
uint32_t mqtt_varint_encode(uint32_t value, uint8_t *buf, size_t cap);
/* Bytes needed for value (1..4), 0 if too large. */
uint32_t mqtt_varint_size(uint32_t value);

/* Well-formed UTF-8 per RFC 3629 with the MQTT rules: no U+0000, no
 * surrogates (U+D800..U+DFFF), no overlong forms, nothing above U+10FFFF. */
bool mqtt_utf8_valid(const uint8_t *s, size_t len);

/* ---- topics ------------------------------------------------------------ */

/* A topic name for PUBLISH: 1..65535 bytes, no '+' or '#', valid UTF-8. */
bool mqtt_topic_name_valid(const uint8_t *s, size_t len);

/*
 * A topic filter for SUBSCRIBE: 1..65535 bytes, valid UTF-8, '+' only as a
 * whole level, '#' only as the whole last level. A shared subscription
 * "$share/{group}/{filter}" is valid when group is non-empty without
 * '+', '#' or '/', and filter is itself valid.
 */
bool mqtt_topic_filter_valid(const uint8_t *s, size_t len);

/*
 * Splits "$share/{group}/{filter}". Returns true for a shared subscription
 * (filling group and filter views into s), false otherwise. Call after
 * mqtt_topic_filter_valid().
 */
bool mqtt_shared_split(const uint8_t *s, size_t len, struct mqtt_str *group,
		       struct mqtt_str *filter);

/*
 * Does topic `name` match `filter`? Implements '+', '#' (which also matches
 * the parent level: "a/#" matches "a"), and the '$' rule: a filter starting
 * with a wildcard never matches a name starting with '$'. Both must be valid.
 */
bool mqtt_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name,
		      size_t nlen);

/* Human-readable name of a packet type ("PUBLISH"), "?" if unknown. */
const char *mqtt_type_name(uint8_t type);

#endif
