/*
 * precord.h - the records the broker writes to its journal to make sessions,
 * in-flight QoS state, retained messages and wills survive a restart or a
 * crash (private to src/broker/). docs/durability.md describes them for
 * people; this file is the truth.
 *
 * The log is logical: replaying the records in LSN order rebuilds the
 * state. A message record (PR_MSG with PR_MSG_ROUTE) is routed again at
 * replay against the subscriptions replayed so far, so delivering a
 * message to N persistent sessions costs one record, not N. Records name
 * sessions by client id (never by shard), so a restart with another
 * --threads puts every session on its new home shard. Messages are named by
 * the LSN of their PR_MSG record.
 *
 * Encoding: little-endian integers; str = u16 length + bytes; bin = u32
 * length + bytes. Decoding never reads outside the payload and fails with
 * MOTE_EMALFORMED on anything short, long or out of range (fuzzed by
 * fuzz/fuzz_broker_precord.c).
 *
 * Threading: stateless. Views in a decoded record point into the payload.
 */
#ifndef MOTE_BROKER_PRECORD_H
#define MOTE_BROKER_PRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "mqtt/mqtt.h"

enum precord_type {
	PR_MSG = 1,          /* flags, expiry, qos, topic, props, origin, payload */
	PR_SESSION = 2,      /* client, expiry, version, offline wall time, shard */
	PR_SESSION_END = 3,  /* client */
	PR_OFFLINE = 4,      /* client, wall time, expiry in force */
	PR_SUB = 5,          /* client, group, filter, options, sub id */
	PR_UNSUB = 6,        /* client, group, filter */
	PR_ENQ = 7,          /* client, msg, qos, retain, sub ids, packet id, state */
	PR_ACK = 8,          /* client, msg: the delivery ended (acked or dropped) */
	PR_SENT = 9,         /* client, msg, packet id: QoS 2 PUBLISH sent with it */
	PR_REL = 10,         /* client, msg, packet id: PUBREC in, PUBREL out */
	PR_Q2IN = 11,        /* client, packet id: inbound QoS 2 id held */
	PR_Q2REL = 12,       /* client, packet id: ... released by PUBREL */
	PR_WILL = 13,        /* client, delay, will message */
	PR_WILL_END = 14,    /* client */
	PR_SNAP_BEGIN = 15,  /* wall time: a snapshot of the whole state follows */
	PR_SNAP_END = 16,
	PR_ROUTE = 17,       /* msg, shard: route to the sessions of that shard
			      * (a snapshot's copy of a message in an inbox) */
	PR_TYPE_MAX = 17,
};

/* PR_MSG flags */
#define PR_MSG_ROUTE 1u    /* route to matching subscriptions at replay */
#define PR_MSG_RETAINED 2u /* (snapshot) put into the retained store */
#define PR_SHARD_ALL 0xFFFFu

/* A decoded record: only the fields of its type are set. */
struct precord {
	uint8_t type;
	struct mqtt_str client;
	uint64_t msg;          /* LSN of a PR_MSG record */
	uint64_t wall_ms;      /* OFFLINE, SESSION (0 = online), SNAP_BEGIN */
	uint32_t expiry_s;
	uint8_t version;
	uint16_t shard;        /* SESSION, ROUTE: shard of the writing run */
	struct mqtt_str group, filter;
	struct sub_opts_rec {
		uint8_t qos, no_local, rap, rh;
		uint32_t sub_id;
	} opts;
	uint8_t qos;
	bool retain;
	uint8_t n_sub_ids;
	uint32_t sub_ids[4];
	uint16_t packet_id;
	uint8_t state;
	uint32_t delay_s;
	/* message content: MSG, WILL */
	uint8_t flags;
	uint64_t expiry_wall_ms; /* 0 = never */
	struct mqtt_str topic;
	struct mqtt_bin props, origin, payload;
};

/* Decodes a record's payload. MOTE_EMALFORMED for anything wrong. */
enum mote_err precord_decode(uint8_t type, const uint8_t *p, size_t len, struct precord *out);

/* A growable encode buffer; oom is sticky. */
struct penc {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};
void penc_u8(struct penc *e, uint8_t v);
void penc_u16(struct penc *e, uint16_t v);
void penc_u32(struct penc *e, uint32_t v);
void penc_u64(struct penc *e, uint64_t v);
void penc_str(struct penc *e, const uint8_t *p, uint16_t len);
void penc_bin(struct penc *e, const uint8_t *p, uint32_t len);
void penc_free(struct penc *e);

/* Encoders: each resets e and writes one record's payload. */
void precord_msg(struct penc *e, uint8_t flags, uint64_t expiry_wall_ms, uint8_t qos, bool retain,
		 const uint8_t *topic, uint16_t topic_len, const uint8_t *props, uint32_t props_len,
		 const uint8_t *origin, uint16_t origin_len, const uint8_t *payload,
		 uint32_t payload_len);
void precord_session(struct penc *e, const uint8_t *id, uint16_t len, uint32_t expiry_s,
		     uint8_t version, uint64_t offline_wall_ms, uint16_t shard);
void precord_client(struct penc *e, const uint8_t *id, uint16_t len); /* SESSION_END, WILL_END */
void precord_offline(struct penc *e, const uint8_t *id, uint16_t len, uint64_t wall_ms,
		     uint32_t expiry_s);
void precord_sub(struct penc *e, const uint8_t *id, uint16_t len, const uint8_t *group,
		 uint16_t glen, const uint8_t *filter, uint16_t flen, const struct sub_opts_rec *o);
void precord_unsub(struct penc *e, const uint8_t *id, uint16_t len, const uint8_t *group,
		   uint16_t glen, const uint8_t *filter, uint16_t flen);
void precord_enq(struct penc *e, const uint8_t *id, uint16_t len, uint64_t msg, uint8_t qos,
		 bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids, uint16_t packet_id,
		 uint8_t state);
/* ACK (packet_id unused), SENT, REL */
void precord_msgref(struct penc *e, const uint8_t *id, uint16_t len, uint64_t msg,
		    uint16_t packet_id);
void precord_pid(struct penc *e, const uint8_t *id, uint16_t len, uint16_t packet_id);
void precord_will(struct penc *e, const uint8_t *id, uint16_t len, uint32_t delay_s,
		  uint64_t expiry_wall_ms, uint8_t qos, bool retain, const uint8_t *topic,
		  uint16_t topic_len, const uint8_t *props, uint32_t props_len,
		  const uint8_t *payload, uint32_t payload_len);
void precord_u64(struct penc *e, uint64_t v);               /* SNAP_BEGIN */
void precord_route(struct penc *e, uint64_t msg, uint16_t shard);

#endif
