/*
 * mote_client.h - the device SDK's MQTT 3.1.1 / 5.0 client: the face of
 * src/sdk/.
 *
 * Built for microcontrollers: it allocates nothing, uses no stdio and no
 * POSIX, and depends only on the codec (src/mqtt/) and libc (memcpy,
 * memmove, memset, strlen). The caller supplies every buffer and state
 * array, a transport (struct mote_transport) and a millisecond clock
 * (struct mote_clock). A POSIX TCP transport lives in
 * src/sdk/port/posix/transport_tcp.h.
 *
 * Buffers the caller gives at init (sizes in docs/sdk.md):
 *   tx_buf     every packet the client sends is encoded here, except a
 *              PUBLISH payload, which is sent straight from the caller's
 *              memory: tx must hold CONNECT (with will, username, password
 *              and properties) and each PUBLISH *head* (topic and
 *              properties). User properties passed as pairs are encoded at
 *              the tail of tx first, so they need their size twice.
 *   rx_buf     one whole incoming packet must fit. With 5.0 the client
 *              announces Maximum Packet Size = rx_cap (or less if asked),
 *              so the server drops larger messages instead of sending
 *              them; with 3.1.1 a larger packet ends the connection with
 *              MOTE_ETOOBIG.
 *   inflight   one slot per outgoing QoS 1/2 PUBLISH awaiting its ack and
 *              per incoming QoS 2 PUBLISH awaiting its PUBREL.
 *   alias_mem  5.0 topic aliases the server may use towards the client:
 *              alias_max slots of (alias_mem_len / alias_max) bytes each,
 *              two of which hold the length (MOTE_CLIENT_ALIAS_MEM()).
 *              alias_max 0 disables them.
 *
 * Lifetime and ownership: the client borrows the buffers, the in-flight
 * array, the alias memory and the transport for its whole life; the caller
 * keeps them alive and untouched until it stops using the client. The
 * client never opens or closes the transport: the caller connects it
 * before mote_client_connect() and closes it after mote_client_disconnect()
 * or after any function returned an error that closed the session
 * (mote_client_state() == MOTE_CLIENT_CLOSED). Every pointer in an options
 * struct is borrowed for the duration of the call only. A decoded packet
 * handed to a callback points into rx_buf and is valid only during the
 * callback; copy what must outlive it.
 *
 * Errors: every function returns enum mote_err. MQTT reason codes are data:
 * they come back through out-parameters. A transport failure, a malformed
 * or illegal packet from the server, a keep-alive timeout or a server
 * DISCONNECT closes the session (state MOTE_CLIENT_CLOSED); the error is
 * sticky and every later call returns it until mote_client_connect() is
 * called again on a freshly connected transport.
 *
 * Threading: none inside. A client belongs to the thread that calls it;
 * callbacks run on that thread from inside mote_client_process() or a
 * blocking helper. A callback may call mote_client_publish_start() and
 * nothing else of this API (the others would re-enter the receive path
 * that is delivering to it).
 */
#ifndef MOTE_SDK_CLIENT_H
#define MOTE_SDK_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "mqtt/mqtt.h"

/* ---- sizes ------------------------------------------------------------- */

/* Smallest tx and rx buffers init accepts (a CONNACK, an ack, a ping). */
#define MOTE_CLIENT_MIN_BUF 16u

/* Bytes of alias memory for n aliases of topics up to topic_max bytes. */
#define MOTE_CLIENT_ALIAS_MEM(n, topic_max) ((size_t)(n) * ((size_t)(topic_max) + 2u))

/*
 * Bytes of tx a PUBLISH head needs: fixed header (5), topic (2 + len),
 * packet id (2), property length (4) and the encoded properties.
 */
#define MOTE_CLIENT_PUBLISH_HEAD(topic_len, props_len) \
	(5u + 2u + (size_t)(topic_len) + 2u + 4u + (size_t)(props_len))

/* Encoded size of one user property as a wire entry (id, key, value). */
#define MOTE_CLIENT_USER_PROP_SIZE(key_len, val_len) \
	(1u + 2u + (size_t)(key_len) + 2u + (size_t)(val_len))

/* ---- port layer -------------------------------------------------------- */

/*
 * The byte stream to the server. Both functions get `ctx` first.
 *
 * send: write some of buf[0..len), waiting at most timeout_ms for room.
 *   MOTE_OK with 1 <= *sent <= len; MOTE_ETIMEDOUT if nothing could be
 *   written in time; MOTE_EAGAIN if interrupted before writing anything
 *   (the client retries while its deadline allows); anything else is a
 *   broken connection.
 * recv: read up to cap bytes into buf, waiting at most timeout_ms (0: do
 *   not wait) for the first byte.
 *   MOTE_OK with 1 <= *got <= cap; MOTE_ETIMEDOUT if nothing arrived in
 *   time; MOTE_EAGAIN if interrupted (e.g. by a signal) before anything
 *   arrived: mote_client_process() then returns at once so the caller can
 *   look at its flags; MOTE_ECLOSED when the server closed the stream;
 *   anything else is a broken connection.
 */
struct mote_transport {
	void *ctx;
	enum mote_err (*send)(void *ctx, const uint8_t *buf, size_t len, uint32_t timeout_ms,
			      size_t *sent);
	enum mote_err (*recv)(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms,
			      size_t *got);
};

/*
 * A millisecond clock that never goes backwards except by wrapping around
 * 2^32 (the client only ever subtracts two readings). A SysTick counter
 * will do.
 */
struct mote_clock {
	void *ctx;
	uint32_t (*now_ms)(void *ctx);
};

/* ---- state the caller allocates ---------------------------------------- */

/* One in-flight QoS 1/2 exchange. Zero the array before init; then private. */
struct mote_inflight {
	uint16_t packet_id;
	uint8_t state;
	uint8_t reason;
};

struct mote_client;
struct mote_connack_info;

/*
 * Callbacks (all optional). `user` is mote_client_cfg.user.
 *
 * on_publish: a PUBLISH from the server, decoded, with a topic alias
 *   already resolved (pub->topic is never empty). Called once per message
 *   for QoS 0 and 1 (a QoS 1 duplicate is delivered again, as the protocol
 *   allows) and exactly once for QoS 2. The ack goes out after it returns.
 * on_pub_done: an outgoing QoS 1/2 PUBLISH finished (blocking or not):
 *   `reason` is the PUBACK, PUBCOMP or failing PUBREC reason (0 with
 *   3.1.1), or MQTT_RC_UNSPECIFIED when the message was lost with the
 *   session (see mote_client_connect()).
 * on_disconnect: the server sent DISCONNECT (5.0); its reason and
 *   properties (reason string, server reference) are in `d`.
 * on_packet: every packet sent (sent true, after encoding) and received
 *   (after decoding, before handling); for logs and for properties the
 *   client does not keep (CONNACK assigned client id, reason strings).
 */
struct mote_client_cb {
	void (*on_publish)(struct mote_client *c, const struct mqtt_publish *pub, void *user);
	void (*on_pub_done)(struct mote_client *c, uint16_t packet_id, uint8_t reason,
			    void *user);
	void (*on_disconnect)(struct mote_client *c, const struct mqtt_reason_only *d,
			      void *user);
	void (*on_packet)(struct mote_client *c, bool sent, const struct mqtt_packet *pkt,
			  void *user);
};

struct mote_client_cfg {
	struct mote_transport transport;
	struct mote_clock clock;
	uint8_t *tx_buf;
	size_t tx_cap;
	uint8_t *rx_buf;
	size_t rx_cap;
	struct mote_inflight *inflight; /* may be NULL when inflight_len is 0 */
	size_t inflight_len;
	uint8_t *alias_mem;             /* may be NULL when alias_max is 0 */
	size_t alias_mem_len;
	uint16_t alias_max;             /* Topic Alias Maximum announced (5.0) */
	uint32_t send_timeout_ms;       /* per packet; 0: 10000 */
	struct mote_client_cb cb;
	void *user;
};

enum mote_client_state {
	MOTE_CLIENT_IDLE = 0,   /* initialised, never connected */
	MOTE_CLIENT_CONNECTING, /* CONNECT sent, waiting for CONNACK */
	MOTE_CLIENT_CONNECTED,
	MOTE_CLIENT_CLOSED,     /* disconnected; see mote_client_error() */
};

/*
 * The client context. Allocate it anywhere (static, stack); every field is
 * private to the SDK.
 */
struct mote_client {
	struct mote_client_cfg cfg;
	uint8_t state;
	uint8_t version;
	uint8_t disconnect_reason; /* from a server DISCONNECT */
	enum mote_err error;       /* sticky, once CLOSED */
	size_t rx_len;
	uint16_t next_id;
	uint16_t recv_max;         /* announced: incoming QoS 2 window */
	uint16_t alias_topic_max;
	uint16_t keep_alive_s;
	uint32_t ping_timeout_ms;
	uint32_t last_tx_ms;
	uint32_t ping_sent_ms;
	bool ping_outstanding;
	bool in_rx;                /* delivering to a callback */
	/* what the server allowed in CONNACK */
	uint16_t srv_receive_max;
	uint16_t srv_alias_max;
	uint8_t srv_max_qos;
	bool srv_retain;
	uint32_t srv_max_packet;   /* 0: protocol limit */
	/* the one blocking helper waiting for an answer */
	struct {
		uint8_t type;      /* packet type awaited, 0 when none */
		bool done;
		uint16_t packet_id;
		uint8_t reason;
		uint8_t *reasons;  /* SUBACK / UNSUBACK reason codes go here */
		size_t count;
		struct mote_connack_info *connack;
	} wait;
};

/* ---- options ----------------------------------------------------------- */

struct mote_will {
	const char *topic;
	const void *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
	const struct mqtt_props *props; /* 5.0 will properties, or NULL */
};

struct mote_connect_opts {
	uint8_t version;            /* MQTT_V311 or MQTT_V5; 0 means MQTT_V5 */
	const char *client_id;      /* "" asks the server to assign one */
	bool clean_start;           /* 3.1.1: clean session */
	uint16_t keep_alive_s;      /* 0 disables keep-alive */
	uint32_t ping_timeout_ms;   /* PINGRESP deadline; 0: keep alive, max 30 s */
	const char *username;       /* NULL: none */
	const void *password;       /* NULL: none (3.1.1 needs a username too) */
	size_t password_len;
	const struct mote_will *will; /* NULL: none */
	/* 5.0 only (ignored for 3.1.1): */
	uint32_t session_expiry;    /* seconds, 0xFFFFFFFF never */
	uint16_t receive_max;       /* 0: inflight_len (at least 1) */
	uint32_t max_packet_size;   /* 0 or above rx_cap: rx_cap */
	const struct mqtt_props *props; /* other CONNECT properties, or NULL */
	const struct mqtt_user_prop *user_props; /* or props->raw_extra, not both */
	size_t user_prop_count;
};

/* What the CONNACK said, copied out of the receive buffer. */
struct mote_connack_info {
	bool session_present;
	uint8_t reason;             /* 5.0 reason or 3.1.1 return code */
	uint16_t keep_alive_s;      /* in force (Server Keep Alive wins) */
	uint16_t server_receive_max;
	uint8_t max_qos;
	bool retain_available;
	uint32_t max_packet_size;   /* 0: no limit announced */
	uint16_t topic_alias_max;   /* aliases the server accepts from us */
};

struct mote_publish {
	const char *topic;          /* "" only with a 5.0 topic alias in props */
	const void *payload;        /* sent from here, not copied into tx */
	size_t payload_len;
	uint8_t qos;
	bool retain;
	const struct mqtt_props *props; /* 5.0 properties, or NULL */
	const struct mqtt_user_prop *user_props; /* or props->raw_extra, not both */
	size_t user_prop_count;
};

/* ---- API --------------------------------------------------------------- */

/*
 * Prepares *c. Copies cfg (whose buffers stay borrowed). MOTE_EINVAL for a
 * missing function or buffer, MOTE_ENOSPC if tx or rx is below
 * MOTE_CLIENT_MIN_BUF or alias_mem is too small for alias_max topics of
 * at least one byte.
 */
enum mote_err mote_client_init(struct mote_client *c, const struct mote_client_cfg *cfg);

/*
 * Sends CONNECT on the (already connected) transport and waits up to
 * timeout_ms for CONNACK. *info (may be NULL) gets what the server said.
 *   MOTE_OK       accepted: state CONNECTED
 *   MOTE_EDENIED  refused: info->reason says why; state CLOSED
 *   MOTE_ENOSPC   CONNECT does not fit tx (nothing was sent)
 *   MOTE_EINVAL   bad options (nothing was sent)
 *   MOTE_ETIMEDOUT, MOTE_ECLOSED, MOTE_EMALFORMED, MOTE_EPROTO, transport
 *                 errors: state CLOSED
 * Sessions: unless the server reports a session present, every in-flight
 * slot is dropped (outgoing ones reported to on_pub_done as
 * MQTT_RC_UNSPECIFIED). With a session present, PUBRELs are sent again and
 * incoming QoS 2 state is kept; outgoing PUBLISHes still awaiting PUBACK /
 * PUBREC cannot be resent (the client keeps no payload copies), so they
 * are reported to on_pub_done as MQTT_RC_UNSPECIFIED for the application
 * to publish again.
 */
enum mote_err mote_client_connect(struct mote_client *c, const struct mote_connect_opts *o,
				  struct mote_connack_info *info, uint32_t timeout_ms);

/*
 * How many bytes of tx mote_client_connect() / mote_client_publish_start()
 * need for these options: exact without user property pairs, an upper
 * bound (at most 6 bytes over) with them. The publish size depends on the
 * protocol version, so ask after connecting. The rx buffer needs to hold
 * the largest packet the server will send: with 5.0 that is at most rx_cap
 * (announced), with 3.1.1 the largest message on the subscribed topics
 * plus its topic and 9 bytes.
 */
enum mote_err mote_client_connect_size(const struct mote_client *c,
				       const struct mote_connect_opts *o, size_t *tx_bytes);
enum mote_err mote_client_publish_size(const struct mote_client *c,
				       const struct mote_publish *pub, size_t *tx_bytes);

/*
 * Sends a PUBLISH and returns without waiting. For QoS 1/2 *packet_id (may
 * be NULL) gets the identifier that on_pub_done will report; 0 for QoS 0.
 *   MOTE_EFULL    no free in-flight slot, or the server's Receive Maximum
 *                 is reached: process incoming packets and try again
 *   MOTE_EINVAL   bad topic, QoS above what the server allows, retain when
 *                 the server has none, both user_props and raw_extra
 *   MOTE_ETOOBIG  larger than the server's Maximum Packet Size
 *   MOTE_ENOSPC   the head (topic + properties) does not fit tx
 * (nothing was sent in those cases); transport errors close the session.
 */
enum mote_err mote_client_publish_start(struct mote_client *c, const struct mote_publish *pub,
					uint16_t *packet_id);

/*
 * Sends a PUBLISH and, for QoS 1/2, handles incoming packets until its
 * PUBACK / PUBCOMP (or a failing PUBREC) arrives, at most timeout_ms.
 * *reason (may be NULL) gets the ack's reason code (0 for QoS 0 and 3.1.1).
 * Errors as mote_client_publish_start(), plus MOTE_ETIMEDOUT (the exchange
 * stays in flight and completes through on_pub_done if the ack comes
 * later).
 */
enum mote_err mote_client_publish(struct mote_client *c, const struct mote_publish *pub,
				  uint8_t *reason, uint32_t timeout_ms);

/*
 * Subscribes to n filters in one SUBSCRIBE and waits for the SUBACK.
 * reasons[0..n) gets one reason code per filter: the granted QoS (0..2) or
 * a failure >= 0x80. props (may be NULL) may carry a subscription
 * identifier (sub_ids) and user properties (raw_extra).
 * MOTE_EINVAL for an invalid filter or n == 0, MOTE_ENOSPC if it does not
 * fit tx, MOTE_EPROTO if the SUBACK does not have n codes.
 */
enum mote_err mote_client_subscribe(struct mote_client *c, const struct mqtt_sub_entry *subs,
				    size_t n, const struct mqtt_props *props, uint8_t *reasons,
				    uint32_t timeout_ms);

/*
 * Unsubscribes from n filters and waits for the UNSUBACK. reasons[0..n)
 * gets the 5.0 reason codes; 3.1.1 has none, so they are set to 0.
 */
enum mote_err mote_client_unsubscribe(struct mote_client *c, const struct mqtt_str *filters,
				      size_t n, const struct mqtt_props *props,
				      uint8_t *reasons, uint32_t timeout_ms);

/*
 * Sends DISCONNECT (5.0: with `reason`, e.g. MQTT_RC_SUCCESS or
 * MQTT_RC_DISCONNECT_WITH_WILL, and props, which may be NULL; 3.1.1 ignores
 * both) and closes the session. The caller then closes the transport.
 * Returns the send result; the session is closed either way.
 */
enum mote_err mote_client_disconnect(struct mote_client *c, uint8_t reason,
				     const struct mqtt_props *props);

/*
 * Waits up to timeout_ms (0: only what is already there) for packets and
 * handles them: delivers PUBLISHes, answers the QoS handshakes, completes
 * acks, sends PINGREQ when keep alive is due and closes the session with
 * MOTE_ETIMEDOUT when a PINGRESP is overdue. Returns once at least one
 * packet was handled, when the time is up, or when the transport reports
 * an interruption; all three are MOTE_OK. Call it at least every keep
 * alive period.
 */
enum mote_err mote_client_process(struct mote_client *c, uint32_t timeout_ms);

enum mote_client_state mote_client_state(const struct mote_client *c);
/* Why the session closed (MOTE_OK while it is open or never was). */
enum mote_err mote_client_error(const struct mote_client *c);
/* The reason code of the server's DISCONNECT, 0 if none came. */
uint8_t mote_client_disconnect_reason(const struct mote_client *c);
/* Outgoing exchanges and incoming QoS 2 messages in flight. */
size_t mote_client_inflight(const struct mote_client *c);

#endif
