/*
 * broker_int.h - the broker's private structures and the functions its files
 * share. Nothing outside src/broker/ includes this.
 *
 * Objects and who owns them:
 *   struct broker   owns listeners, connections, sessions, the subscription
 *                   tree and the retained store.
 *   struct conn     one network connection. Owned by the broker's connection
 *                   list; freed by a deferred callback (never inside an event
 *                   batch, which may still point at it).
 *   struct session  MQTT session state, keyed by client id in the broker's
 *                   session table. Outlives its connection when the session
 *                   expiry interval says so. session->conn and conn->session
 *                   point at each other while attached.
 *   struct msg      shared by reference (see msg.h).
 *
 * Threading: everything runs on the broker's loop thread.
 */
#ifndef MOTE_BROKER_INT_H
#define MOTE_BROKER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/outq.h"
#include "broker/pidx.h"
#include "broker/pubhead.h"
#include "broker/retain.h"
#include "broker/subtree.h"
#include "mqtt/mqtt.h"
#include "net/loop.h"
#include "net/tcp.h"

#define SESSION_NEVER_EXPIRES 0xFFFFFFFFu
#define MAX_INLINE_SUB_IDS 4 /* sub ids carried in one delivery */
#define MAX_OUT_ALIASES 64   /* topic aliases the broker uses towards one client */
#define READ_CHUNK 65536     /* bytes read per readable event per connection */
#define FLUSH_NOW_BYTES 65536 /* queued output that is written without waiting */

/* One message waiting for, or in, delivery to one session. */
struct delivery {
	struct msg *m;
	uint8_t qos;           /* granted QoS of this delivery */
	bool retain;           /* RETAIN flag to send */
	uint8_t n_sub_ids;
	uint8_t state;         /* enum delivery_state, for in-flight ones */
	uint16_t packet_id;    /* in-flight ones */
	uint32_t sub_ids[MAX_INLINE_SUB_IDS];
	uint64_t seq;          /* send order, for in-order redelivery */
};

enum delivery_state {
	DLV_QUEUED = 0,
	DLV_PUBLISH_SENT,      /* waiting for PUBACK / PUBREC */
	DLV_PUBREL_SENT,       /* QoS 2: waiting for PUBCOMP */
};

/* A FIFO of deliveries (ring buffer). */
struct dqueue {
	struct delivery *items;
	uint32_t head;
	uint32_t count;
	uint32_t cap;
};

/* A subscription as the session remembers it (to remove it later). */
struct session_sub {
	struct session_sub *next;
	uint16_t group_len;    /* 0 = plain */
	uint16_t filter_len;
	uint8_t text[];        /* group bytes then filter bytes */
};

struct session {
	struct broker *b;
	struct session *hnext;      /* session table chain */
	uint8_t *client_id;         /* owned, not NUL-terminated */
	uint16_t client_id_len;
	uint64_t uid;               /* unique per session lifetime (no-local) */
	uint64_t route_epoch;       /* merge marker while routing one message */
	uint32_t route_slot;        /* its index in the routing scratch list */
	struct conn *conn;          /* NULL while offline */
	uint8_t version;
	uint32_t expiry_s;          /* session expiry interval in force */
	struct loop_timer expiry_timer;

	/* will of the last connection, published at close (or after its delay) */
	struct msg *will;
	uint32_t will_delay_s;
	struct loop_timer will_timer;

	struct session_sub *subs;

	/* outbound QoS 1/2 */
	struct delivery *inflight;  /* inflight_cap slots, [0, inflight_count) in use */
	uint32_t inflight_cap;
	uint32_t inflight_count;
	struct pidx ids;            /* packet id -> slot, for the ones in use */
	uint16_t next_packet_id;    /* where the next id search starts */
	uint64_t send_seq;
	struct dqueue queue;        /* waiting for a window slot or for the client */

	/* inbound QoS 2 ids received and not yet released (sorted) */
	uint16_t *qos2_in;
	uint32_t qos2_in_count;
	uint32_t qos2_in_cap;
};

enum conn_state {
	CONN_NEW = 0,   /* waiting for CONNECT */
	CONN_ACTIVE,    /* CONNACK sent */
	CONN_CLOSED,    /* closed, waiting to be freed */
};

struct out_alias {
	uint8_t *topic; /* owned copy */
	uint16_t len;
};

struct conn {
	struct broker *b;
	struct conn *prev, *next;   /* broker's connection list */
	struct net_stream stream;
	struct loop_io io;
	struct loop_timer timer;    /* connect timeout, then keep-alive */
	struct loop_defer flush_defer; /* flush at the end of this batch (big output) */
	struct loop_idle flush_idle;   /* flush when the loop runs dry (coalesced) */
	struct loop_defer free_defer;
	struct loop_defer fail_defer;
	bool failing;               /* a deferred close is pending */
	enum conn_state state;
	uint8_t version;
	bool write_blocked;         /* waiting for LOOP_WRITE */
	bool will_on_close;         /* false after a normal DISCONNECT */
	char peer[64];
	struct session *session;

	uint16_t keepalive_s;       /* effective keep alive, 0 = none */
	uint32_t window;            /* outbound in-flight limit for this connection */
	bool connect_expiry_zero;   /* CONNECT had session expiry 0 [MQTT-3.14.2-2] */
	uint64_t last_rx_ms;

	/* input: partial packet carried between reads; NULL when none */
	uint8_t *in;                /* partial packet carried to the next read, or NULL */
	uint32_t in_len;
	uint32_t in_cap;
	uint32_t in_need;           /* its total size once its fixed header is whole, else 0 */

	struct outq out;

	/* the client's limits (5.0 CONNECT properties) */
	uint32_t client_max_packet;  /* 0 = protocol maximum */
	uint16_t client_receive_max;
	uint16_t client_alias_max;

	/* inbound topic aliases: alias_in[1..topic_alias_max] */
	struct out_alias *alias_in;
	/* outbound topic aliases: alias_out[0..alias_out_used) use alias i+1 */
	struct out_alias *alias_out;
	uint16_t alias_out_used;

	uint32_t qos2_inflight_in;  /* counted against our receive maximum */

	/* what hooks see of this client */
	uint8_t *username;          /* owned */
	uint16_t username_len;
};

struct listener {
	struct broker *b;
	struct listener *next;
	struct loop_io io;
	int fd;
	uint16_t port;
};

/* One merged match while routing a message. */
struct route_hit {
	struct session *s;
	uint8_t qos;
	bool retain_as_published;
	uint8_t n_sub_ids;
	bool many_sub_ids;     /* more ids than fit: deliver per subscription */
	uint32_t sub_ids[MAX_INLINE_SUB_IDS];
};

struct broker {
	struct broker_config cfg;
	struct broker_hooks hooks;
	struct loop *loop;
	struct listener *listeners;
	struct conn *conns;
	uint32_t conn_count;
	bool shutting_down;
	bool accept_paused;
	struct loop_timer accept_timer; /* retry accept after EMFILE */

	struct session **table;     /* session hash table (chained) */
	uint32_t table_cap;
	uint32_t session_count;
	uint64_t next_uid;
	uint64_t auto_id_counter;

	struct subtree *subs;
	struct retain *retained;

	/* routing scratch (reused, grows) */
	struct route_hit *hits;
	uint32_t hits_len;
	uint32_t hits_cap;
	uint64_t route_epoch;
	const struct msg *routing;  /* message being routed (for callbacks) */
	uint64_t origin_uid;
	bool route_oom;

	uint8_t *read_buf;          /* READ_CHUNK bytes shared by all connections */
	struct pubhead_cache heads; /* encoded PUBLISH heads, shared by fan-out */

	struct loop_timer sys_timer;
	uint64_t started_ms;
	uint16_t last_port;
	struct broker_stats stats;
};

/* ---- conn.c ------------------------------------------------------------ */
void conn_accept(struct broker *b, int fd, const char *peer);
/* Queues packet bytes encoded by mqtt_encode; on failure the connection is
 * closed by a deferred callback (never synchronously: see route.c). */
enum mote_err conn_send_packet(struct conn *c, const struct mqtt_packet *p);
/* PUBACK, PUBREC, PUBREL or PUBCOMP with a 5.0 reason code. */
void conn_send_ack(struct conn *c, enum mqtt_type type, uint16_t id, uint8_t reason);
/* Asks for a flush at the end of this loop iteration. */
void conn_schedule_flush(struct conn *c);
/*
 * Closes the connection. reason >= 0: send a DISCONNECT with that reason
 * first (5.0, after CONNACK) with `why` as reason string. The will is
 * published unless the client disconnected normally.
 */
void conn_close(struct conn *c, int reason, const char *why);
/* Restarts the keep-alive timer from the effective keep alive. */
void conn_start_keepalive(struct conn *c);
/* Frees a connection's memory (not its fd or session: close first). */
void conn_release(struct conn *c);
/* Closes the connection after the current event batch (out of memory etc.). */
void conn_fail(struct conn *c);
void conn_fill_client(const struct conn *c, struct broker_client *out);
void conn_log_fault(const struct conn *c, const char *event, const char *why);

/* ---- connect.c --------------------------------------------------------- */
void handle_connect(struct conn *c, const struct mqtt_connect *p);
/* A CONNECT that failed to decode: CONNACK with the fault's reason, close. */
void handle_connect_fault(struct conn *c, const struct mqtt_packet *p,
			  const struct mqtt_fault *f);
void handle_disconnect(struct conn *c, const struct mqtt_reason_only *d);

/* ---- publish.c --------------------------------------------------------- */
void handle_publish(struct conn *c, struct mqtt_publish *p);
void handle_pubrel(struct conn *c, const struct mqtt_ack *a);

/* ---- subscribe.c ------------------------------------------------------- */
void handle_subscribe(struct conn *c, const struct mqtt_subscribe *p);
void handle_unsubscribe(struct conn *c, const struct mqtt_unsubscribe *p);
void session_drop_subs(struct session *s);

/* ---- route.c ----------------------------------------------------------- */
/* Routes m to every matching subscription; stores it if retained.
 * Returns the number of sessions it was given to. */
uint32_t route_message(struct broker *b, struct msg *m);
/* Builds the forwarded-properties block of a received PUBLISH. */
enum mote_err route_msg_from_publish(struct broker *b, const struct mqtt_publish *p,
				     const uint8_t *topic, uint16_t topic_len,
				     uint64_t origin, struct msg **out);

/* ---- deliver.c --------------------------------------------------------- */
/* Gives one message to one session (sends, or queues, or drops). */
void deliver(struct session *s, struct msg *m, uint8_t qos, bool retain,
	     const uint32_t *sub_ids, uint8_t n_sub_ids);
void handle_puback(struct conn *c, const struct mqtt_ack *a);
void handle_pubrec(struct conn *c, const struct mqtt_ack *a);
void handle_pubcomp(struct conn *c, const struct mqtt_ack *a);
/* After (re)attaching a connection: resend in-flight, then drain the queue. */
void deliver_resume(struct session *s);
/* Sends queued messages while the window has room. */
void deliver_pump(struct session *s);
void dqueue_free(struct dqueue *q);
void session_release_inflight(struct session *s);

/* ---- session.c --------------------------------------------------------- */
struct session *session_find(struct broker *b, const uint8_t *id, uint16_t len);
enum mote_err session_create(struct broker *b, const uint8_t *id, uint16_t len,
			     struct session **out);
/* Ends a session: its will (if any) goes out now, subscriptions and queues go. */
void session_destroy(struct session *s);
/* The connection went away: will, expiry timer or destroy. */
void session_detach(struct session *s, bool publish_will);
void session_set_will(struct session *s, struct msg *will, uint32_t delay_s);
void session_cancel_will(struct session *s);

/* ---- broker.c ---------------------------------------------------------- */
/* A connection was freed: finishes a shutdown when it was the last. */
void broker_conn_gone(struct broker *b);
bool broker_authorize(struct broker *b, const struct conn *c, enum broker_access a,
		      const uint8_t *topic, size_t len);

#endif
