/*
 * mqtt_int.h - what the codec's own .c files share; nothing outside
 * src/mqtt/ includes this.
 *
 * A reader (`struct rd`) walks an input range and never reads past its end:
 * every getter returns false instead. A writer (`struct wr`) either counts
 * (p == NULL) or writes into a buffer the caller already sized by counting
 * first, so size and encode always agree: both run the same code.
 *
 * Internal names carry the `mqtt__` prefix (libuv's `uv__` habit) so they
 * cannot collide with another module's symbols in the final link.
 */
#ifndef MOTE_MQTT_INT_H
#define MOTE_MQTT_INT_H

#include <string.h>

#include "mqtt/mqtt.h"

/* ---- reader ------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static inline bool rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_left(r) < 1)
		return false;
	*v = *r->p++;
	return true;
}

static inline bool rd_u16(struct rd *r, uint16_t *v)
{
	if (rd_left(r) < 2)
		return false;
	*v = (uint16_t)((uint16_t)r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return true;
}

static inline bool rd_u32(struct rd *r, uint32_t *v)
{
	if (rd_left(r) < 4)
		return false;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
	     r->p[3];
	r->p += 4;
	return true;
}

/* A two-byte length prefix and that many bytes (string or binary data). */
static inline bool rd_lenbytes(struct rd *r, const uint8_t **p, uint16_t *len)
{
	uint16_t n;
	if (!rd_u16(r, &n) || rd_left(r) < n)
		return false;
	*p = r->p;
	*len = n;
	r->p += n;
	return true;
}

/* ---- writer ------------------------------------------------------------ */

struct wr {
	uint8_t *p;  /* NULL: only count */
	size_t cap;
	size_t len;  /* bytes written (or that would have been) */
};

static inline void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (w->p && n && w->len + n <= w->cap)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static inline void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	wr_bytes(w, b, 2);
}

static inline void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	wr_bytes(w, b, 4);
}

/* value must be <= MQTT_MAX_REMAINING_LENGTH (checked by the caller). */
static inline void wr_varint(struct wr *w, uint32_t v)
{
	uint8_t b[4];
	uint32_t n = mqtt_varint_encode(v, b, sizeof b);
	wr_bytes(w, b, n);
}

/* ---- faults ------------------------------------------------------------ */

/* Fills *f (which may be NULL) and returns err: `return fail(...)`. */
static inline enum mote_err mqtt__fail(struct mqtt_fault *f, enum mote_err err, uint8_t reason,
				       const char *why)
{
	if (f) {
		f->reason = reason;
		f->why = why;
	}
	return err;
}

#define MALFORMED(f, why) mqtt__fail((f), MOTE_EMALFORMED, MQTT_RC_MALFORMED, (why))
#define PROTO(f, why) mqtt__fail((f), MOTE_EPROTO, MQTT_RC_PROTOCOL_ERROR, (why))

/* ---- properties (props.c, props_enc.c) --------------------------------- */

/*
 * Decodes a property length and block at r into *out (which the caller
 * zeroed), for a packet of `type` (will: the will properties of CONNECT)
 * travelling in direction from_client. Advances r past the block.
 */
enum mote_err mqtt__props_decode(struct rd *r, uint8_t type, bool will, bool from_client,
				 struct mqtt_props *out, struct mqtt_fault *f);

/*
 * Writes the property length and block for packet `type`. MOTE_EINVAL when
 * a property is not allowed there or its value is out of range.
 */
enum mote_err mqtt__props_encode(struct wr *w, const struct mqtt_props *p, uint8_t type,
				 bool will);

/* Byte count of the block alone (without its length prefix). */
enum mote_err mqtt__props_size(const struct mqtt_props *p, uint8_t type, bool will,
			       size_t *out);

/*
 * NULL when a numeric property value is in range, else why not
 * (receive maximum 0, a boolean byte above 1, ...).
 */
const char *mqtt__prop_value_bad(uint8_t id, uint32_t v);

/* ---- reason codes (reason.c) ------------------------------------------ */

/* Is `code` a reason (5.0) or return code (3.1.1) that `type` may carry? */
bool mqtt__reason_valid(uint8_t type, uint8_t version, uint8_t code);

/* ---- per-packet decoders (decode_*.c), called by mqtt_decode ----------- */

/* Each gets the body (after the fixed header) and checks it to its end. */
enum mote_err mqtt__decode_connect(struct rd *r, struct mqtt_connect *c, struct mqtt_fault *f);
enum mote_err mqtt__decode_connack(struct rd *r, uint8_t version, struct mqtt_connack *c,
				   struct mqtt_fault *f);
enum mote_err mqtt__decode_publish(struct rd *r, uint8_t flags, uint8_t version,
				   bool from_client, struct mqtt_publish *p,
				   struct mqtt_fault *f);
enum mote_err mqtt__decode_ack(struct rd *r, uint8_t type, uint8_t version, struct mqtt_ack *a,
			       struct mqtt_fault *f);
enum mote_err mqtt__decode_subscribe(struct rd *r, uint8_t version, struct mqtt_subscribe *s,
				     struct mqtt_fault *f);
enum mote_err mqtt__decode_unsubscribe(struct rd *r, uint8_t version,
				       struct mqtt_unsubscribe *u, struct mqtt_fault *f);
enum mote_err mqtt__decode_suback(struct rd *r, uint8_t type, uint8_t version,
				  struct mqtt_suback *s, struct mqtt_fault *f);

/* ---- per-packet encoders (encode_*.c), called by encode.c ------------- */

/*
 * Each writes the variable header and payload (not the fixed header) and
 * validates what it writes; with_payload false leaves out PUBLISH payload
 * bytes (for mqtt_encode_publish_head).
 */
enum mote_err mqtt__put_connect(struct wr *w, const struct mqtt_connect *c, uint8_t version);
enum mote_err mqtt__put_connack(struct wr *w, const struct mqtt_connack *c, uint8_t version);
enum mote_err mqtt__put_publish(struct wr *w, const struct mqtt_publish *p, uint8_t version,
				bool with_payload);
enum mote_err mqtt__put_ack(struct wr *w, uint8_t type, const struct mqtt_ack *a,
			    uint8_t version);
enum mote_err mqtt__put_subscribe(struct wr *w, const struct mqtt_subscribe *s,
				  uint8_t version);
enum mote_err mqtt__put_unsubscribe(struct wr *w, const struct mqtt_unsubscribe *u,
				    uint8_t version);
enum mote_err mqtt__put_suback(struct wr *w, uint8_t type, const struct mqtt_suback *s,
			       uint8_t version);
enum mote_err mqtt__put_reason_only(struct wr *w, uint8_t type, const struct mqtt_reason_only *r,
				    uint8_t version);

#endif
