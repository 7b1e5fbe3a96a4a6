/*
 * broker.h - the MQTT broker: the face of src/broker/.
 *
 * The broker routes messages between MQTT connections: sessions, QoS 0/1/2,
 * retained messages, wills, shared subscriptions, topic aliases, $SYS. It
 * knows nothing of twins, the API, OTA or storage engines; those attach
 * through struct broker_hooks (authenticate, authorize, message tap,
 * connect/disconnect events, persistence) and publish through
 * broker_publish() like any internal client.
 *
 * Threading: the broker runs cfg.threads event loops (0 = one per online
 * CPU). The first is the caller's `loop`, and every function here must be
 * called on that loop's thread; the others run on threads the broker starts
 * in broker_new and joins in broker_free. Connections and sessions are spread
 * over the loops (by client id), so hooks are called from any of the loop
 * threads, concurrently: they must be thread-safe.
 *
 * Ownership: the caller owns the loop and must keep it alive until
 * broker_free(). The broker copies the config; hooks are borrowed and must
 * outlive the broker.
 */
#ifndef MOTE_BROKER_H
#define MOTE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "mqtt/mqtt.h"
#include "net/loop.h"
#include "net/tcp.h"

struct broker;

struct broker_config {
	bool allow_anonymous;        /* accept CONNECT without username */
	uint32_t max_packet_size;    /* inbound limit, announced in CONNACK */
	uint16_t receive_max;        /* inbound QoS 1/2 window, announced */
	uint16_t topic_alias_max;    /* inbound aliases, announced */
	uint16_t max_keepalive;      /* seconds, 0 = no cap */
	uint32_t max_session_expiry; /* seconds, 0 = no cap */
	uint32_t max_queued;         /* queued messages per session */
	uint16_t max_inflight;       /* outbound QoS 1/2 window per client */
	uint32_t connect_timeout_ms; /* time to complete CONNECT */
	uint32_t max_connections;    /* 0 = limited by file descriptors */
	uint32_t sys_interval_s;     /* $SYS publish period, 0 = off */
	uint32_t max_client_outbuf;  /* bytes pending to one client before QoS 0 drops */
	uint32_t threads;            /* event loops; 0 = one per online CPU */

	/* Durability (docs/durability.md). persist_dir NULL: nothing is kept
	 * across restarts. Strings are borrowed for broker_new only. */
	const char *persist_dir;     /* the journal's folder */
	uint8_t fsync;               /* enum broker_fsync */
	uint32_t fsync_batch_ms;     /* BROKER_FSYNC_BATCH: longest wait for a sync */
	uint32_t max_queued_bytes;   /* queued payload+topic bytes per session */
	uint8_t queue_full;          /* enum broker_queue_full */
	const char *journal_fault_file; /* test hook: writes fail while it exists */
	uint32_t journal_segment_bytes; /* segment file size; 0 = 64 MiB */
	uint32_t compact_min_bytes;     /* log growth before a snapshot; 0 = 64 MiB */
};

enum broker_fsync {
	BROKER_FSYNC_ALWAYS, /* acks after fdatasync */
	BROKER_FSYNC_BATCH,  /* acks after write; fdatasync within fsync_batch_ms */
	BROKER_FSYNC_NONE,   /* acks after write; never fdatasync */
};

enum broker_queue_full {
	BROKER_QUEUE_REFUSE_NEWEST, /* the new message is dropped */
	BROKER_QUEUE_DROP_OLDEST,   /* the oldest queued message makes room */
};

/* Safe defaults (see docs/operations.md). */
void broker_config_defaults(struct broker_config *cfg);

/* What hooks are told about a client. Views valid during the call only. */
struct broker_client {
	const uint8_t *client_id;
	uint16_t client_id_len;
	const uint8_t *username; /* NULL if none */
	uint16_t username_len;
	const char *peer;        /* "ip:port" (points into peer_text) */
	uint8_t version;         /* enum mqtt_version */
	uint8_t transport;       /* enum broker_transport: how it reached us */
	/*
	 * The client certificate the TLS handshake verified (mTLS listeners;
	 * NULL elsewhere): its subject CN and its first URI SAN, NUL-terminated.
	 * The broker only reports them: what they may do is the authenticate
	 * hook's decision (src/auth).
	 */
	const char *cert_cn;
	const char *cert_uri;
	const char *cert_serial; /* hex */
	/*
	 * What the authenticate hook decided the client is, in the hook's own
	 * encoding (src/auth: its role): the broker keeps it with the
	 * connection and reports it to the later hooks. 0 until set.
	 */
	uint64_t principal;
	uint64_t *principal_out;  /* authenticate only: where to store principal */
	char peer_text[56];      /* storage for peer */
};

enum broker_transport {
	BROKER_TRANSPORT_TCP,
	BROKER_TRANSPORT_TLS,
	BROKER_TRANSPORT_WS,
	BROKER_TRANSPORT_WSS,
};

enum broker_access {
	BROKER_ACCESS_PUBLISH,
	BROKER_ACCESS_SUBSCRIBE,
};

/* A routed message as the tap hook sees it (views valid during the call). */
struct broker_msg_view {
	const uint8_t *topic;
	uint16_t topic_len;
	const uint8_t *payload;
	uint32_t payload_len;
	uint8_t qos;
	bool retain;
};

/*
 * Every hook is optional (NULL). They run on the loop thread of the client's
 * shard (any of the broker's loop threads, concurrently) and must not block:
 * slow work goes to a queue of the hook's owner.
 */
struct broker_hooks {
	void *ctx;
	/*
	 * A new connection from peer (ip and port), before any TLS handshake or
	 * byte of MQTT. false closes it at once: per-address connection rate
	 * limits live behind this.
	 */
	bool (*accept)(void *ctx, const struct net_peer *peer);
	/*
	 * CONNECT after the broker's own checks. Returns MQTT_RC_SUCCESS to
	 * accept, or a 5.0 reason code to refuse (mapped to 3.1.1 return codes
	 * for old clients). When NULL: anonymous clients follow
	 * allow_anonymous; a client with a username is refused 0x86 unless
	 * allow_anonymous is set (there is no user store yet).
	 */
	uint8_t (*authenticate)(void *ctx, const struct broker_client *c,
				const struct mqtt_connect *pkt);
	/* PUBLISH and SUBSCRIBE (and a will's topic, at CONNECT: a refusal
	 * refuses the CONNECT with 0x87). true allows. When NULL everything is
	 * allowed except client publishes to $SYS/... */
	bool (*authorize)(void *ctx, const struct broker_client *c, enum broker_access access,
			  const uint8_t *topic, size_t len);
	/* Every message accepted for routing (clients and broker_publish);
	 * c is NULL for messages from inside the hub and for wills. */
	void (*tap)(void *ctx, const struct broker_client *c, const struct broker_msg_view *m);
	/* Optional, before tap: false skips tap for this topic, so messages
	 * nobody behind the tap wants cost no client description (hot path). */
	bool (*tap_wants)(void *ctx, const uint8_t *topic, size_t len);
	/* A subscription of c is in place (after SUBSCRIBE was authorized and
	 * the filter added): a message published from now on that matches it
	 * reaches the client. filter as the client sent it ($share/... too). */
	void (*subscribed)(void *ctx, const struct broker_client *c, const uint8_t *filter,
			   size_t len);
	/* A client completed CONNECT / its connection ended (reason sent or seen). */
	void (*on_connect)(void *ctx, const struct broker_client *c);
	void (*on_disconnect)(void *ctx, const struct broker_client *c, uint8_t reason);
	/*
	 * Persistence: called before a QoS 1/2 PUBLISH is acknowledged; a
	 * non-zero return refuses it (0x97 quota exceeded / 3.1.1: no ack, close)
	 * so nothing acknowledged is lost. The durable store implements it.
	 */
	enum mote_err (*persist_publish)(void *ctx, const struct broker_client *c,
					 const struct broker_msg_view *m);
};

struct broker_stats {
	uint64_t clients_connected;
	uint64_t sessions;          /* connected + offline persistent sessions */
	uint64_t msgs_received;     /* PUBLISH packets from clients */
	uint64_t msgs_sent;         /* PUBLISH packets to clients */
	uint64_t msgs_dropped;      /* queue full, too large for the client, expired */
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t subscriptions;
	uint64_t retained;
	uint64_t connections_refused; /* over limits or out of memory */
	uint64_t queue_dropped;     /* dropped by the per-session queue bounds */
	uint64_t persist_refused;   /* QoS 1/2 publishes refused: journal failing */
	uint64_t tls_failed;        /* TLS handshakes that failed (bad certificate, not TLS, ...) */
	uint64_t revoked_disconnects; /* live connections closed: certificate revoked */
	uint64_t accept_refused;    /* connections the accept hook refused */
	uint64_t journal_safe_lsn;  /* last LSN that may be acknowledged */
	uint64_t journal_failing;   /* 1 while journal writes fail */
	uint64_t uptime_s;
};

/* Creates a broker on `loop`. MOTE_ENOMEM / MOTE_EIO. Caller owns *out. */
enum mote_err broker_new(const struct broker_config *cfg, const struct broker_hooks *hooks,
			 struct loop *loop, struct broker **out);

/*
 * Listens for plain MQTT on "host:port". On failure, errbuf says why in
 * words for the operator.
 */
enum mote_err broker_listen_tcp(struct broker *b, const char *addr, char *errbuf, size_t errcap);
/*
 * Listens for MQTT over TLS (mutual: the client certificate is required and
 * verified, see src/tls/tls.h) on "host:port". tls is borrowed and must
 * outlive the broker. Verified certificates show in broker_client.cert_cn /
 * cert_uri; transport is BROKER_TRANSPORT_TLS.
 */
struct tls_server;
enum mote_err broker_listen_tls(struct broker *b, const char *addr, struct tls_server *tls,
				char *errbuf, size_t errcap);
/*
 * Listens for MQTT over WebSocket (RFC 6455, subprotocol "mqtt", paths
 * "/mqtt" and "/"; see net/ws.h) on "host:port": ws:// when tls is NULL,
 * wss:// over that TLS server context otherwise (borrowed, must outlive the
 * broker; its client-certificate policy applies). origins[0..n_origins)
 * are the browser Origins allowed (others get 403; n_origins 0 allows any);
 * borrowed, they must outlive the broker. transport is
 * BROKER_TRANSPORT_WS / _WSS. The accept hook runs before any byte is read.
 */
enum mote_err broker_listen_ws(struct broker *b, const char *addr, struct tls_server *tls,
			       const char *const *origins, unsigned n_origins, char *errbuf,
			       size_t errcap);
/*
 * Checks every live connection's peer certificate again (after a new CRL was
 * loaded into the tls_server) and closes the revoked ones: DISCONNECT 0x98
 * (administrative action) to 5.0 clients, a plain close for 3.1.1. Any
 * thread of the broker's first loop; the other shards do their part on
 * their own threads.
 */
void broker_recheck_certs(struct broker *b);
/* The port actually bound by the most recent listener (useful with port 0). */
uint16_t broker_last_port(const struct broker *b);

/*
 * Begins a clean shutdown: stops accepting, sends DISCONNECT 0x8B to 5.0
 * clients, flushes what it can and closes every connection. The loop is
 * stopped once all connections are closed.
 */
void broker_shutdown(struct broker *b);

/*
 * broker_shutdown() from any thread: asks the broker's first loop to begin
 * the same clean shutdown (its loop_run then returns). The broker owns the
 * loop's wake callback (loop_set_wake_fn): embedders use this instead.
 */
void broker_shutdown_async(struct broker *b);

/* Frees everything. Call after loop_run() returned. NULL is accepted. */
void broker_free(struct broker *b);

/*
 * Publishes a message from inside the hub (twins, rules, $SYS). Copies what
 * it needs. MOTE_ENOMEM, MOTE_EINVAL for an invalid topic.
 */
enum mote_err broker_publish(struct broker *b, const uint8_t *topic, size_t topic_len,
			     const uint8_t *payload, size_t payload_len, uint8_t qos,
			     bool retain);

void broker_get_stats(const struct broker *b, struct broker_stats *out);

#endif
