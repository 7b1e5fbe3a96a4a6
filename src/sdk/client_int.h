/*
 * client_int.h - what the SDK's own .c files share; nothing outside
 * src/sdk/ includes this.
 *
 * Names carry the `client_` prefix inside the module; file-static helpers
 * have none.
 */
#ifndef MOTE_SDK_CLIENT_INT_H
#define MOTE_SDK_CLIENT_INT_H

#include "sdk/mote_client.h"

/* struct mote_inflight.state */
enum slot_state {
	SLOT_FREE = 0,
	SLOT_OUT_PUBACK,  /* QoS 1 PUBLISH sent */
	SLOT_OUT_PUBREC,  /* QoS 2 PUBLISH sent */
	SLOT_OUT_PUBCOMP, /* PUBREL sent */
	SLOT_IN_PUBREL,   /* QoS 2 PUBLISH received and delivered, PUBREC sent */
};

static inline uint32_t client_now(const struct mote_client *c)
{
	return c->cfg.clock.now_ms(c->cfg.clock.ctx);
}

/* The error a call on a session that is not open returns. */
static inline enum mote_err client_closed_err(const struct mote_client *c)
{
	return c->error != MOTE_OK ? c->error : MOTE_ECLOSED;
}

/* ---- client.c ---------------------------------------------------------- */

/*
 * Closes the session with `err` (sticky). With 5.0, a connected session and
 * a nonzero `reason`, tells the server why in a DISCONNECT first (best
 * effort). Returns err so callers can `return client_close(...)`.
 */
enum mote_err client_close(struct mote_client *c, enum mote_err err, uint8_t reason);

/*
 * Encodes pkt into tx[0..tx_cap - tail) and sends it. MOTE_ENOSPC /
 * MOTE_EINVAL / MOTE_ETOOBIG (over the server's maximum packet size) send
 * nothing and leave the session open; a transport failure closes it.
 */
enum mote_err client_send_packet(struct mote_client *c, const struct mqtt_packet *pkt,
				 size_t tail);

/* The same for a PUBLISH: head from tx, payload from pub->payload. */
enum mote_err client_send_publish(struct mote_client *c, const struct mqtt_packet *pkt,
				  size_t tail);

/* PUBACK / PUBREC / PUBREL / PUBCOMP without properties. */
enum mote_err client_send_ack(struct mote_client *c, uint8_t type, uint16_t packet_id,
			      uint8_t reason);

/*
 * Encodes user property pairs at the tail of tx and points props->raw_extra
 * at them; *tail gets the bytes used. MOTE_EINVAL if props already has
 * raw_extra, MOTE_ENOSPC if they do not fit.
 */
enum mote_err client_user_props(struct mote_client *c, const struct mqtt_user_prop *pairs,
				size_t n, struct mqtt_props *props, size_t *tail);

/* Bytes the pairs take at the tail of tx (see client_user_props). */
size_t client_user_props_size(const struct mqtt_user_prop *pairs, size_t n);

/* A packet identifier no outgoing exchange uses; never 0. */
uint16_t client_next_id(struct mote_client *c);

/* The slot in `state` with `packet_id`, or NULL. */
struct mote_inflight *client_slot_find(struct mote_client *c, uint8_t state,
				       uint16_t packet_id);
/* A free slot, or NULL. */
struct mote_inflight *client_slot_free(struct mote_client *c);
/* Slots in use for outgoing (out true) or incoming exchanges. */
size_t client_slot_count(const struct mote_client *c, bool out);

/* ---- client_rx.c ------------------------------------------------------- */

/*
 * Handles incoming packets until c->wait.done, the session closes or
 * timeout_ms passes (MOTE_ETIMEDOUT).
 */
enum mote_err client_wait(struct mote_client *c, uint32_t timeout_ms);

/* ---- handlers called by client_rx.c's dispatch ------------------------- */

enum mote_err client_on_connack(struct mote_client *c, const struct mqtt_connack *ca);
enum mote_err client_on_ack(struct mote_client *c, uint8_t type, const struct mqtt_ack *ack);
enum mote_err client_on_suback(struct mote_client *c, uint8_t type,
			       const struct mqtt_suback *s);

#endif
