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
 * Threading: the broker is a group of shards (struct broker each), one per
 * event loop and thread (shard.c). A shard owns its connections, the
 * sessions whose client id hashes to it, its own subscription tree and its
 * own copy of the retained index; everything in a struct broker is touched
 * only by its own thread, except what is marked "cross-thread" below. Shards
 * talk through each other's inbox (shard.c).
 */
#ifndef MOTE_BROKER_INT_H
#define MOTE_BROKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/outq.h"
#include "broker/persist.h"
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
#define NOT_DIRTY UINT32_MAX

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
	DLV_SEND_HELD,         /* QoS 2: id given, PUBLISH waits for its record (persist.h) */
};

/* A FIFO of deliveries (ring buffer). */
struct dqueue {
	struct delivery *items;
	uint32_t head;
	uint32_t count;
	uint32_t cap;
	uint64_t bytes;        /* topic + payload bytes queued (max_queued_bytes) */
};

/* A subscription as the session remembers it (to remove it later). */
struct session_sub {
	struct session_sub *next;
	uint16_t group_len;    /* 0 = plain */
	uint16_t filter_len;
	struct sub_opts opts;  /* as granted (the snapshot writes them) */
	uint8_t text[];        /* group bytes then filter bytes */
};

struct session {
	struct broker *b;
	struct session *hnext;      /* session table chain (or stub table) */
	uint16_t stub_home;         /* stub for a shared-group member homed on shard
				     * stub_home - 1 (share.c); 0 = a real session */
	uint32_t stub_refs;         /* stub: its memberships in this shard's tree */
	uint8_t *client_id;         /* not NUL-terminated; sessions: stored right after
				     * the struct (one allocation); stubs: malloc'd */
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

	/* durability (persist.h) */
	bool persisted;             /* its state is in the journal (expiry > 0) */
	bool will_persisted;        /* its will is in the journal */
	uint16_t replay_shard;      /* replay: shard of the run that wrote it */
	uint64_t offline_wall_ms;   /* replay: when it went offline, 0 = online */
	uint64_t queue_drops;       /* dropped by queue bounds (log every 1000th) */

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
	struct loop_defer end_defer; /* the deferred close (conn_fail), then the free */
	struct session *session;
	uint64_t last_rx_ms;
	struct outq out;

	/* input: partial packet carried between reads; NULL when none */
	uint8_t *in;
	uint32_t in_len;
	uint32_t in_cap;
	uint32_t in_need;           /* its total size once its fixed header is whole, else 0 */

	uint32_t dirty_idx;         /* place in the shard's dirty list, or NOT_DIRTY */
	uint32_t window;            /* outbound in-flight limit for this connection */
	uint32_t qos2_inflight_in;  /* counted against our receive maximum */
	uint32_t held_ops;          /* its operations waiting in persist's FIFO */
	uint32_t client_max_packet; /* 0 = protocol maximum (5.0 CONNECT property) */
	uint16_t client_receive_max;
	uint16_t client_alias_max;
	uint16_t keepalive_s;       /* effective keep alive, 0 = none */
	uint16_t alias_out_used;
	uint16_t username_len;
	uint64_t principal;          /* set by the authenticate hook */
	uint8_t state;              /* enum conn_state */
	uint8_t version;
	bool failing;               /* a deferred close is pending */
	bool write_blocked;         /* waiting for LOOP_WRITE */
	bool will_on_close;         /* false after a normal DISCONNECT */
	bool connect_expiry_zero;   /* CONNECT had session expiry 0 [MQTT-3.14.2-2] */
	uint8_t transport;          /* enum broker_transport */
	struct net_peer peer;       /* formatted when logged (conn_peer) */

	/* inbound topic aliases: alias_in[1..topic_alias_max] */
	struct out_alias *alias_in;
	/* outbound topic aliases: alias_out[0..alias_out_used) use alias i+1 */
	struct out_alias *alias_out;

	/* what hooks see of this client */
	uint8_t *username;          /* owned */
};

struct listener {
	struct broker *b;
	struct listener *next;
	struct loop_io io;
	int fd;
	uint16_t port;
	uint8_t transport;          /* enum broker_transport */
	struct tls_server *tls;     /* TLS listeners: borrowed from the caller */
	bool ws;                    /* MQTT over WebSocket (over TLS when tls) */
	const char *const *ws_origins; /* allowed browser Origins, borrowed; 0: any */
	unsigned ws_origin_count;
};

/* One merged match while routing a message. */
struct route_hit {
	struct session *s;
	uint8_t qos;
	bool retain_as_published;
	uint8_t n_sub_ids;
	bool many_sub_ids;     /* more ids than fit: deliver per subscription */
	bool shared;           /* picked by a shared group */
	uint32_t sub_ids[MAX_INLINE_SUB_IDS];
};

/*
 * Counters other shards read (broker_get_stats sums them). Each has one
 * writer, its shard's thread, so a relaxed load + store is enough: no locked
 * instruction on the hot path, and no data race for the readers.
 */
struct shard_stats {
	_Atomic uint64_t clients_connected, sessions, msgs_received, msgs_sent, msgs_dropped,
		bytes_received, bytes_sent, subscriptions, connections_refused, queue_dropped,
		persist_refused, tls_failed, revoked_disconnects, accept_refused;
};
#define STAT_ADD(b, f, n)                                                                  \
	atomic_store_explicit(&(b)->stats.f,                                               \
			      atomic_load_explicit(&(b)->stats.f, memory_order_relaxed) +   \
				      (uint64_t)(n),                                        \
			      memory_order_relaxed)
#define STAT_SUB(b, f, n)                                                                  \
	atomic_store_explicit(&(b)->stats.f,                                               \
			      atomic_load_explicit(&(b)->stats.f, memory_order_relaxed) -   \
				      (uint64_t)(n),                                        \
			      memory_order_relaxed)

/*
 * Sessions by client id (idtab.c): a chained hash table through
 * session->hnext, doubled when the load passes 1. It borrows the sessions.
 * idtab_reserve before idtab_insert.
 */
struct id_table {
	struct session **slots;
	uint32_t cap, count;
};
struct session *idtab_find(const struct id_table *t, const uint8_t *id, uint16_t len);
enum mote_err idtab_reserve(struct id_table *t);
void idtab_insert(struct id_table *t, struct session *s);
void idtab_remove(struct id_table *t, struct session *s);
void idtab_free(struct id_table *t);

/* What one shard asks of another (shard.c). */
enum inbox_kind {
	IN_ADOPT,         /* take over a connection: its stream, peer, bytes read so far */
	IN_ROUTE,         /* route a message published on another shard */
	IN_SHARE_SUB,     /* a member on another shard joined a shared group we own */
	IN_SHARE_UNSUB,   /* ... left it */
	IN_SHARE_DELIVER, /* deliver to our session, chosen by a group's owner */
	IN_SHUTDOWN,      /* close everything and stop */
	IN_STOPPED,       /* (to shard 0) a shard has stopped */
	IN_PAUSE,         /* park until shard 0 has written a snapshot (snapshot.c) */
	IN_RECHECK,       /* re-check live peer certificates (a new CRL was loaded) */
};

struct inbox_item {
	uint8_t kind;
	uint8_t qos;              /* SHARE_SUB: sub opts; SHARE_DELIVER: granted qos */
	bool flag;                /* SHARE_DELIVER: retain flag to send */
	uint8_t n_sub_ids;
	uint16_t home;            /* SHARE_SUB: the member's shard */
	uint8_t transport;        /* ADOPT: enum broker_transport */
	struct net_stream stream; /* ADOPT: owned (ops NULL: none) */
	struct net_peer peer;     /* ADOPT */
	struct msg *m;            /* ROUTE, SHARE_DELIVER: one reference, owned */
	uint8_t *data;            /* owned: ADOPT bytes; SHARE_*: client id|group|filter */
	uint32_t len;             /* ADOPT: bytes; SHARE_*: client id length */
	uint16_t glen, flen;      /* SHARE_SUB/UNSUB: group and filter lengths */
	struct sub_opts opts;     /* SHARE_SUB */
	uint32_t sub_ids[MAX_INLINE_SUB_IDS];
};

/*
 * What an inbox holds: 16 bytes. A routed message (the bulk of the traffic)
 * is just its reference; anything else is a malloc'd struct inbox_item.
 */
struct inbox_slot {
	uint8_t kind;
	struct msg *m;              /* IN_ROUTE: one reference, owned */
	struct inbox_item *full;    /* other kinds: owned */
};

/* An array of slots: a shard's inbox, or what it has staged for another. */
struct item_vec {
	struct inbox_slot *v;
	uint32_t len, cap;
};

struct replay_log;

struct broker {
	struct broker_config cfg;
	/* the group: every shard points at the same array (shard.c) */
	uint32_t shard_id;
	uint32_t nshards;
	struct broker **shards;
	pthread_t thread;           /* shards other than 0 run on their own thread */
	bool thread_started;
	struct shared_state *shared; /* cross-thread: owned by shard 0 */
	/* cross-thread: the inbox, guarded by inbox_mu; any shard appends */
	pthread_mutex_t inbox_mu;
	struct item_vec inbox;
	_Atomic uint32_t inbox_len; /* inbox.len, for senders to see congestion */
	bool inbox_mu_ready;
	struct item_vec inbox_work; /* the batch being processed (this thread only) */
	bool draining;              /* inside inbox_drain, at inbox_work[inbox_pos] */
	uint32_t inbox_pos;
	/* this thread only: items for each other shard, sent at loop idle */
	struct item_vec *stage;
	struct loop_defer stage_idle;
	uint32_t next_adopt;        /* round robin over shards for accepted connections */
	/* cross-thread: subscriptions in this shard's tree (others skip routing here when 0) */
	_Atomic uint32_t route_interest;
	struct id_table stubs;      /* remote members of shared groups we own (share.c) */
	struct broker_hooks hooks;
	struct loop *loop;
	bool own_loop;              /* shards 1..N-1 own theirs; shard 0 borrows the caller's */
	struct listener *listeners;
	struct conn *conns;
	uint32_t conn_count;
	bool shutting_down;
	bool accept_paused;
	struct loop_timer accept_timer; /* retry accept after EMFILE */

	struct id_table sessions;   /* this shard's sessions by client id */
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
	/* connections with output waiting for the loop to run dry (conn.c): a
	 * list here costs 4 bytes per connection instead of a queue entry each */
	struct conn **dirty;
	uint32_t dirty_len, dirty_cap;
	struct loop_defer flush_idle;
	struct msg_pool *pool;      /* messages published here (owned by shared->pools) */
	struct pubhead_cache heads; /* encoded PUBLISH heads, shared by fan-out */
	struct outq_cache outbufs;  /* output buffers idle connections gave back */

	struct persist_shard *ps;   /* NULL: persistence off */
	struct loop_timer snap_timer; /* shard 0: compaction check (snapshot.c) */
	uint16_t replay_route_shard; /* replay of PR_ROUTE: only that shard's sessions */
	bool replaying;             /* replay.c is rebuilding state: write nothing */

	struct loop_timer sys_timer;
	uint64_t started_ms;
	uint16_t last_port;
	struct shard_stats stats;
};

/* State all shards share (shard.c). */
struct shared_state {
	_Atomic uint32_t conn_count;  /* all shards: for max_connections */
	_Atomic uint32_t running;     /* shards (other than 0) whose loop still runs */
	atomic_bool shutdown_asked;   /* broker_shutdown_async */
	struct jcommit *jc;           /* the journal, NULL when persistence is off */
	_Atomic uint32_t persist_subs; /* subscriptions of persistent sessions, all shards */
	/* snapshot.c: the stop-the-world pause of every shard */
	pthread_barrier_t pause_in, pause_out;
	bool pause_ready;
	uint64_t snap_epoch;
	uint64_t snap_release;        /* release the log below this once it is safe */
	uint64_t snap_end;            /* ... when this LSN is safe */
	uint64_t last_snap_bytes;
	struct msg_pool *pools[];     /* each shard's, freed after all shards */
};

/* ---- conn.c ------------------------------------------------------------ */
/* A new connection over stream (owned from here on, closed on failure). */
void conn_accept(struct broker *b, struct net_stream *stream, const struct net_peer *peer,
		 uint8_t transport);
/* A connection handed over by another shard, with the bytes it had read. */
void conn_adopt(struct broker *b, struct net_stream *stream, const struct net_peer *peer,
		uint8_t transport, const uint8_t *bytes, size_t len);
/* Closes this shard's connections whose peer certificate is now revoked. */
void conn_recheck_all(struct broker *b);
/* The peer as text, in buf (NET_PEER_TEXT bytes). */
const char *conn_peer(const struct conn *c, char *buf);

/* ---- shard.c ----------------------------------------------------------- */
/* The shard a client id lives on (its sessions, its connection). */
uint32_t shard_of_id(const struct broker *b, const uint8_t *id, size_t len);
/* The shard that owns a shared group (group, filter): it picks the member. */
uint32_t shard_of_group(const struct broker *b, const uint8_t *group, size_t glen,
			const uint8_t *filter, size_t flen);
/* Queues an item for shard `to` (sent when this loop runs dry). Takes
 * ownership of the item's m, data and fd; on failure frees them itself. */
void shard_send(struct broker *b, uint32_t to, struct inbox_item *it);
/* Sends a message to every other shard that may route it. Returns whether
 * any of them has subscriptions. */
bool shard_forward(struct broker *b, struct msg *m);
/* Frees what an item owns (unsent items at shutdown). */
void inbox_item_free(struct inbox_item *it);
/* Lifetime (broker.c): set up a shard's inbox and loop (its own when loop is
 * NULL); start shards 1..N-1; ask them to shut down; join and free. */
enum mote_err shard_init(struct broker *b, struct loop *loop);
enum mote_err shard_start_threads(struct broker *b0);
void shard_shutdown_others(struct broker *b0);
bool shard_all_stopped(const struct broker *b0);
void shard_join_and_free(struct broker *b);
/* Hands everything staged to the other shards now. */
void shard_flush_stage(struct broker *b);
/* Subscription count changed: tells other shards whether to send us messages. */
void shard_note_interest(struct broker *b);

/* ---- share.c ----------------------------------------------------------- */
/* SUBSCRIBE/UNSUBSCRIBE of a shared group owned by another shard. */
void share_remote_sub(struct session *s, const struct mqtt_str *group,
		      const struct mqtt_str *filter, const struct sub_opts *o);
void share_remote_unsub(struct session *s, const uint8_t *group, size_t glen,
			const uint8_t *filter, size_t flen);
/* The owner side of those, and of a delivery chosen by the owner. */
void share_on_sub(struct broker *b, struct inbox_item *it);
void share_on_unsub(struct broker *b, struct inbox_item *it);
void share_on_deliver(struct broker *b, struct inbox_item *it);
/* A stub member was chosen for m: send it to the member's home shard. */
void share_send_to_stub(struct broker *b, struct session *stub, struct msg *m, uint8_t qos,
			bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids);
void share_free_stubs(struct broker *b);
/* Queues packet bytes encoded by mqtt_encode; on failure the connection is
 * closed by a deferred callback (never synchronously: see route.c). */
enum mote_err conn_send_packet(struct conn *c, const struct mqtt_packet *p);
/* subscribe.c: the held SUBACK / UNSUBACK goes out, then its retained messages. */
void subscribe_release_held(struct conn *c, const uint8_t *data, uint32_t len, uint32_t split);
/* deliver.c: sends the QoS 2 PUBLISH that waited for its PR_SENT record. */
void deliver_send_held(struct conn *c, uint16_t packet_id);
/* Queues bytes already encoded (a held SUBACK). Failure closes, deferred. */
enum mote_err conn_send_bytes(struct conn *c, const uint8_t *bytes, size_t len);
/* PUBACK, PUBREC, PUBREL or PUBCOMP with a 5.0 reason code. */
void conn_send_ack(struct conn *c, enum mqtt_type type, uint16_t id, uint8_t reason);
/* Asks for a flush when the loop runs dry (or now, when much is queued). */
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
/* Inbound QoS 2 ids awaiting PUBREL: hold one (MOTE_ENOMEM; an id held
 * already is fine), release one (false: it was not held). */
enum mote_err session_qos2_hold(struct session *s, uint16_t id);
bool session_qos2_release(struct session *s, uint16_t id);
/* A message from inside the broker (will, broker_publish): written first when
 * it must be kept, then routed. Takes its own reference. */
void publish_internal(struct broker *b, struct msg *m, const struct session *origin);

/* ---- subscribe.c ------------------------------------------------------- */
void handle_subscribe(struct conn *c, const struct mqtt_subscribe *p);
void handle_unsubscribe(struct conn *c, const struct mqtt_unsubscribe *p);
void session_drop_subs(struct session *s);
/* Adds / removes one subscription of a session (client request or replay):
 * tree or remote group owner, statistics, journal record. */
enum mote_err session_subscribe(struct session *s, const struct mqtt_str *group,
				const struct mqtt_str *filter, const struct sub_opts *o, bool *existed);
bool session_unsubscribe(struct session *s, const struct mqtt_str *group,
			 const struct mqtt_str *filter);

/* ---- route.c ----------------------------------------------------------- */
/* Routes m to every matching subscription on every shard; stores it if
 * retained. Returns the number of local sessions it was given to, plus one
 * if another shard with subscriptions got it. */
/* from: the connection that published m, for the tap hook (NULL: the hub
 * itself, a will, or a publisher gone while its message waited). */
uint32_t route_message(struct broker *b, struct msg *m, const struct conn *from);
/* This shard's part of routing (no tap, no forwarding): inbox ROUTE items. */
uint32_t route_local(struct broker *b, struct msg *m);
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
/* Replay: a delivery as the journal says (queued, or in flight with its id
 * and state); the one for journal LSN plsn ended / changed state; and, at
 * the end, in-flight ones back into the window. */
void deliver_restore(struct session *s, struct msg *m, uint8_t qos, bool retain,
		     const uint32_t *sub_ids, uint8_t n_sub_ids, uint16_t packet_id,
		     uint8_t state);
void deliver_forget(struct session *s, uint64_t plsn);
void deliver_mark(struct session *s, uint64_t plsn, uint16_t packet_id, uint8_t state);
void deliver_restore_finish(struct session *s);
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

/* ---- snapshot.c / replay.c ---------------------------------------------- */
/* Writes the whole state (every other shard parked or not running) and
 * submits it. *begin / *end: its first and last LSN; *bytes: its size. */
enum mote_err snapshot_write(struct broker *b0, uint64_t *begin, uint64_t *end,
			     uint64_t *bytes);
/* IN_PAUSE: hand everything over and wait while shard 0 writes a snapshot. */
void snapshot_park(struct broker *b);
void snapshot_start_timer(struct broker *b0);
/* Rebuilds the state from the journal records collected at open. */
enum mote_err replay_apply(struct broker *b0, struct replay_log *log, uint64_t *sessions,
			   uint64_t *queued);

/* ---- broker.c ---------------------------------------------------------- */
/* A connection was freed: finishes a shutdown when it was the last. */
void broker_conn_gone(struct broker *b);
/* Closes this shard's connections and stops its loop when they are gone. */
void broker_shutdown_shard(struct broker *b);
/* A will's topic at CONNECT: publish access for the client with this id
 * (the session is not attached yet). */
bool broker_authorize_id(struct broker *b, const struct conn *c, const uint8_t *id,
			 uint16_t id_len, const uint8_t *topic, size_t len);
bool broker_authorize(struct broker *b, const struct conn *c, enum broker_access a,
		      const uint8_t *topic, size_t len);

#endif
