/*
 * persist.h - the broker's durability (private to src/broker/): what each
 * shard writes to the journal, and holding acknowledgements until what they
 * promise is safe (docs/durability.md).
 *
 * Records are encoded by the shard that owns the state (precord.h) into the
 * shard's stage; the stage is handed to the committer (journal/committer.h)
 * when the loop runs dry, so one loop round costs one mutex round trip and
 * every client of the round shares one fdatasync. A "generation" is what
 * one hand-over carried: the shard remembers the last LSN of each, and an
 * operation that depends on records of generation g (route a message, send
 * a PUBACK, ...) waits in the shard's FIFO of held operations until the
 * committer says that LSN is safe. The FIFO keeps the order in which the
 * operations arose.
 *
 * A message is routed only once its record is safe: nothing reaches a
 * subscriber that a crash could take back, and after a crash replay
 * routes exactly the messages that were (or were about to be) routed.
 *
 * Threading: everything here runs on the shard's loop thread, except
 * persist_notify (committer thread) which only reads atomics and wakes
 * loops.
 * Ownership: struct persist_shard belongs to its shard (persist_shard_free);
 * the committer belongs to the shared state (persist_close).
 */
#ifndef MOTE_BROKER_PERSIST_H
#define MOTE_BROKER_PERSIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "broker/msg.h"
#include "broker/precord.h"
#include "journal/committer.h"
#include "net/loop.h"

struct broker;
struct conn;
struct session;

enum held_kind {
	HELD_ROUTE,   /* route m (if any), then ack the publisher (if ack_type) */
	HELD_ACK,     /* send an ack: PUBREL, PUBCOMP, a repeated PUBREC */
	HELD_SEND,    /* send the QoS 2 PUBLISH held for its packet id (deliver.c) */
	HELD_PACKET,  /* send encoded bytes (SUBACK, UNSUBACK) and what follows them */
};

struct held_op {
	uint64_t gen;
	struct msg *m;      /* HELD_ROUTE: one reference, owned; may be NULL */
	struct conn *c;     /* NULL once the connection closed */
	uint8_t kind;
	uint8_t ack_type;   /* enum mqtt_type, 0 = none */
	uint8_t reason;     /* for HELD_ACK */
	uint16_t packet_id;
	/* HELD_PACKET: owned; [0, split) the packet, [split, len) what the
	 * sender wants done after it (subscribe.c: retained messages) */
	uint8_t *data;
	uint32_t len, split;
};

struct gen_end {
	uint64_t gen, last_lsn;
};

struct persist_shard {
	struct jrec_buf stage;
	struct penc enc;         /* scratch for one record's payload */
	/* messages whose PR_MSG record is in the stage: plsn is set at hand-over */
	struct msg **stage_msgs;
	uint32_t *stage_idx;     /* their record index in the stage */
	uint32_t n_stage_msgs, cap_stage_msgs;
	uint64_t gen;            /* the generation being staged */
	uint64_t last_lsn;       /* last LSN handed over */
	struct gen_end *ends;    /* handed-over generations not yet safe (ring) */
	uint32_t ends_head, ends_count, ends_cap;
	uint64_t safe_gen;       /* every generation <= this is safe (0: none yet) */
	struct held_op *ops;     /* FIFO (ring) */
	uint32_t ops_head, ops_count, ops_cap;
	struct loop_defer idle;
	struct loop_timer retry;  /* hand-over refused (committer backlog): try again */
	_Atomic uint64_t wait_lsn; /* the committer wakes us when safe >= this; 0 none */
	bool failing_logged;
};

/* ---- lifetime (broker.c) ------------------------------------------------------ */

/*
 * Opens the journal in cfg.persist_dir, replays it into every shard (replay.c),
 * writes a fresh snapshot and drops the old log, then starts the committer.
 * Called by broker_new after the shards exist and before their threads run.
 */
enum mote_err persist_open(struct broker *b0);
/* A shard's part, before replay. MOTE_ENOMEM. */
enum mote_err persist_shard_new(struct broker *b);
/* Hands over what is staged (shutdown; every loop has stopped). */
void persist_shard_flush(struct broker *b);
void persist_shard_free(struct broker *b);
/* After every shard is freed: stops the committer, closes the journal. */
struct shared_state;
void persist_close(struct shared_state *sh);

/* ---- what the other files call --------------------------------------------------- */

/*
 * Whether an accepted message must be written before it is routed: QoS 1/2
 * while some persistent session has a subscription, or retained (not $SYS).
 */
bool persist_wants_msg(const struct broker *b, const struct msg *m);
/* Whether the committer is failing (refuse what needs a write). */
bool persist_failing(const struct broker *b);

/* Records, staged in the current generation. MOTE_ENOMEM. */
enum mote_err persist_msg(struct broker *b, struct msg *m, const struct session *origin);
void persist_session(struct broker *b, struct session *s);
void persist_session_end(struct broker *b, struct session *s);
void persist_offline(struct broker *b, struct session *s);
void persist_sub(struct broker *b, struct session *s, const uint8_t *group, uint16_t glen,
		 const uint8_t *filter, uint16_t flen, const struct precord *opts_rec);
void persist_unsub(struct broker *b, struct session *s, const uint8_t *group, uint16_t glen,
		   const uint8_t *filter, uint16_t flen);
void persist_enq(struct broker *b, struct session *s, const struct msg *m, uint8_t qos,
		 bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids);
void persist_ack(struct broker *b, struct session *s, const struct msg *m);
void persist_sent(struct broker *b, struct session *s, const struct msg *m, uint16_t pid);
void persist_rel(struct broker *b, struct session *s, const struct msg *m, uint16_t pid);
void persist_q2(struct broker *b, struct session *s, uint8_t type, uint16_t pid);
void persist_will(struct broker *b, struct session *s);
void persist_will_end(struct broker *b, struct session *s);

/*
 * Held operations, done in order once the current generation is safe.
 * They take over m's reference. Out of memory: done at once (the ack may then
 * come early; logged).
 */
void persist_hold(struct broker *b, const struct held_op *op);
/* The connection is going away: its held acks are dropped. */
void persist_forget_conn(struct broker *b, struct conn *c);
/* Does what became safe (loop wake, hand-over). */
void persist_poll(struct broker *b);

/* Shared by the live records and the snapshot (snapshot.c): a monotonic
 * deadline as wall-clock ms (0 stays 0), and a session's will as PR_WILL. */
uint64_t persist_wall_deadline(uint64_t mono_deadline, uint64_t now_mono);
void persist_encode_will(struct penc *e, const struct session *s, uint64_t now_mono);

/* Committer thread: wakes the shards whose wait is over. */
void persist_notify(void *ctx);

#endif
