/*
 * precord.c - encoding and decoding of the broker's journal records (see
 * precord.h for the layout of each).
 */
#include "broker/precord.h"

#include <stdlib.h>
#include <string.h>

/* ---- encoding ---------------------------------------------------------------- */

static uint8_t *room(struct penc *e, size_t n)
{
	if (e->oom)
		return NULL;
	if (e->len + n > e->cap) {
		size_t cap = e->cap ? e->cap : 256;
		while (cap < e->len + n)
			cap *= 2;
		uint8_t *p = realloc(e->p, cap);
		if (!p) {
			e->oom = true;
			return NULL;
		}
		e->p = p;
		e->cap = cap;
	}
	uint8_t *at = e->p + e->len;
	e->len += n;
	return at;
}

static void put_le(struct penc *e, uint64_t v, unsigned n)
{
	uint8_t *p = room(e, n);
	if (!p)
		return;
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void penc_u8(struct penc *e, uint8_t v) { put_le(e, v, 1); }
void penc_u16(struct penc *e, uint16_t v) { put_le(e, v, 2); }
void penc_u32(struct penc *e, uint32_t v) { put_le(e, v, 4); }
void penc_u64(struct penc *e, uint64_t v) { put_le(e, v, 8); }

void penc_str(struct penc *e, const uint8_t *s, uint16_t len)
{
	penc_u16(e, len);
	uint8_t *p = room(e, len);
	if (p && len)
		memcpy(p, s, len);
}

void penc_bin(struct penc *e, const uint8_t *s, uint32_t len)
{
	penc_u32(e, len);
	uint8_t *p = room(e, len);
	if (p && len)
		memcpy(p, s, len);
}

void penc_free(struct penc *e)
{
	free(e->p);
	memset(e, 0, sizeof *e);
}

static void reset(struct penc *e)
{
	e->len = 0;
}

void precord_msg(struct penc *e, uint8_t flags, uint64_t expiry_wall_ms, uint8_t qos, bool retain,
		 const uint8_t *topic, uint16_t topic_len, const uint8_t *props, uint32_t props_len,
		 const uint8_t *origin, uint16_t origin_len, const uint8_t *payload,
		 uint32_t payload_len)
{
	reset(e);
	penc_u8(e, flags);
	penc_u64(e, expiry_wall_ms);
	penc_u8(e, qos);
	penc_u8(e, retain);
	penc_str(e, topic, topic_len);
	penc_bin(e, props, props_len);
	penc_str(e, origin, origin_len);
	penc_bin(e, payload, payload_len);
}

void precord_session(struct penc *e, const uint8_t *id, uint16_t len, uint32_t expiry_s,
		     uint8_t version, uint64_t offline_wall_ms, uint16_t shard)
{
	reset(e);
	penc_str(e, id, len);
	penc_u32(e, expiry_s);
	penc_u8(e, version);
	penc_u64(e, offline_wall_ms);
	penc_u16(e, shard);
}

void precord_client(struct penc *e, const uint8_t *id, uint16_t len)
{
	reset(e);
	penc_str(e, id, len);
}

void precord_offline(struct penc *e, const uint8_t *id, uint16_t len, uint64_t wall_ms,
		     uint32_t expiry_s)
{
	reset(e);
	penc_str(e, id, len);
	penc_u64(e, wall_ms);
	penc_u32(e, expiry_s);
}

void precord_sub(struct penc *e, const uint8_t *id, uint16_t len, const uint8_t *group,
		 uint16_t glen, const uint8_t *filter, uint16_t flen, const struct sub_opts_rec *o)
{
	reset(e);
	penc_str(e, id, len);
	penc_str(e, group, glen);
	penc_str(e, filter, flen);
	penc_u8(e, o->qos);
	penc_u8(e, (uint8_t)(o->no_local | o->rap << 1 | o->rh << 2));
	penc_u32(e, o->sub_id);
}

void precord_unsub(struct penc *e, const uint8_t *id, uint16_t len, const uint8_t *group,
		   uint16_t glen, const uint8_t *filter, uint16_t flen)
{
	reset(e);
	penc_str(e, id, len);
	penc_str(e, group, glen);
	penc_str(e, filter, flen);
}

void precord_enq(struct penc *e, const uint8_t *id, uint16_t len, uint64_t msg, uint8_t qos,
		 bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids, uint16_t packet_id,
		 uint8_t state)
{
	reset(e);
	penc_str(e, id, len);
	penc_u64(e, msg);
	penc_u8(e, qos);
	penc_u8(e, retain);
	penc_u8(e, n_sub_ids);
	for (uint8_t i = 0; i < n_sub_ids; i++)
		penc_u32(e, sub_ids[i]);
	penc_u16(e, packet_id);
	penc_u8(e, state);
}

void precord_msgref(struct penc *e, const uint8_t *id, uint16_t len, uint64_t msg,
		    uint16_t packet_id)
{
	reset(e);
	penc_str(e, id, len);
	penc_u64(e, msg);
	penc_u16(e, packet_id);
}

void precord_pid(struct penc *e, const uint8_t *id, uint16_t len, uint16_t packet_id)
{
	reset(e);
	penc_str(e, id, len);
	penc_u16(e, packet_id);
}

void precord_will(struct penc *e, const uint8_t *id, uint16_t len, uint32_t delay_s,
		  uint64_t expiry_wall_ms, uint8_t qos, bool retain, const uint8_t *topic,
		  uint16_t topic_len, const uint8_t *props, uint32_t props_len,
		  const uint8_t *payload, uint32_t payload_len)
{
	reset(e);
	penc_str(e, id, len);
	penc_u32(e, delay_s);
	penc_u64(e, expiry_wall_ms);
	penc_u8(e, qos);
	penc_u8(e, retain);
	penc_str(e, topic, topic_len);
	penc_bin(e, props, props_len);
	penc_bin(e, payload, payload_len);
}

void precord_u64(struct penc *e, uint64_t v)
{
	reset(e);
	penc_u64(e, v);
}

void precord_route(struct penc *e, uint64_t msg, uint16_t shard)
{
	reset(e);
	penc_u64(e, msg);
	penc_u16(e, shard);
}

/* ---- decoding ---------------------------------------------------------------- */

struct pdec {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint64_t get_le(struct pdec *d, unsigned n)
{
	if (d->bad || d->left < n) {
		d->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)d->p[i] << (8 * i);
	d->p += n;
	d->left -= n;
	return v;
}

static uint8_t get_u8(struct pdec *d) { return (uint8_t)get_le(d, 1); }
static uint16_t get_u16(struct pdec *d) { return (uint16_t)get_le(d, 2); }
static uint32_t get_u32(struct pdec *d) { return (uint32_t)get_le(d, 4); }
static uint64_t get_u64(struct pdec *d) { return get_le(d, 8); }

static struct mqtt_str get_str(struct pdec *d)
{
	uint16_t n = get_u16(d);
	struct mqtt_str s = { NULL, 0 };
	if (d->bad || d->left < n) {
		d->bad = true;
		return s;
	}
	s.p = d->p;
	s.len = n;
	d->p += n;
	d->left -= n;
	return s;
}

static struct mqtt_bin get_bin(struct pdec *d)
{
	uint32_t n = get_u32(d);
	struct mqtt_bin b = { NULL, 0 };
	if (d->bad || d->left < n) {
		d->bad = true;
		return b;
	}
	b.p = d->p;
	b.len = n;
	d->p += n;
	d->left -= n;
	return b;
}

/* Client ids are never empty in a record: an empty one means damage. */
static void get_client(struct pdec *d, struct precord *r)
{
	r->client = get_str(d);
	if (r->client.len == 0)
		d->bad = true;
}

enum mote_err precord_decode(uint8_t type, const uint8_t *p, size_t len, struct precord *r)
{
	struct pdec d = { p, len, false };
	memset(r, 0, sizeof *r);
	r->type = type;
	switch (type) {
	case PR_MSG:
		r->flags = get_u8(&d);
		r->expiry_wall_ms = get_u64(&d);
		r->qos = get_u8(&d);
		r->retain = get_u8(&d) != 0;
		r->topic = get_str(&d);
		r->props = get_bin(&d);
		r->origin.len = 0;
		{
			struct mqtt_str o = get_str(&d);
			r->origin = (struct mqtt_bin){ o.p, o.len };
		}
		r->payload = get_bin(&d);
		if (r->qos > 2 || r->topic.len == 0 || r->flags > 3)
			d.bad = true;
		break;
	case PR_SESSION:
		get_client(&d, r);
		r->expiry_s = get_u32(&d);
		r->version = get_u8(&d);
		r->wall_ms = get_u64(&d);
		r->shard = get_u16(&d);
		break;
	case PR_SESSION_END:
	case PR_WILL_END:
		get_client(&d, r);
		break;
	case PR_OFFLINE:
		get_client(&d, r);
		r->wall_ms = get_u64(&d);
		r->expiry_s = get_u32(&d);
		break;
	case PR_SUB:
	case PR_UNSUB:
		get_client(&d, r);
		r->group = get_str(&d);
		r->filter = get_str(&d);
		if (type == PR_SUB) {
			r->opts.qos = get_u8(&d);
			uint8_t f = get_u8(&d);
			r->opts.no_local = f & 1;
			r->opts.rap = (f >> 1) & 1;
			r->opts.rh = (uint8_t)(f >> 2);
			r->opts.sub_id = get_u32(&d);
			if (r->opts.qos > 2 || r->opts.rh > 2)
				d.bad = true;
		}
		if (r->filter.len == 0)
			d.bad = true;
		break;
	case PR_ENQ:
		get_client(&d, r);
		r->msg = get_u64(&d);
		r->qos = get_u8(&d);
		r->retain = get_u8(&d) != 0;
		r->n_sub_ids = get_u8(&d);
		if (r->n_sub_ids > 4)
			d.bad = true;
		for (uint8_t i = 0; i < r->n_sub_ids && !d.bad; i++)
			r->sub_ids[i] = get_u32(&d);
		r->packet_id = get_u16(&d);
		r->state = get_u8(&d);
		if (r->qos == 0 || r->qos > 2 || r->state > 2)
			d.bad = true;
		break;
	case PR_ACK:
	case PR_SENT:
	case PR_REL:
		get_client(&d, r);
		r->msg = get_u64(&d);
		r->packet_id = get_u16(&d);
		break;
	case PR_Q2IN:
	case PR_Q2REL:
		get_client(&d, r);
		r->packet_id = get_u16(&d);
		break;
	case PR_WILL:
		get_client(&d, r);
		r->delay_s = get_u32(&d);
		r->expiry_wall_ms = get_u64(&d);
		r->qos = get_u8(&d);
		r->retain = get_u8(&d) != 0;
		r->topic = get_str(&d);
		r->props = get_bin(&d);
		r->payload = get_bin(&d);
		if (r->qos > 2 || r->topic.len == 0)
			d.bad = true;
		break;
	case PR_SNAP_BEGIN:
		r->wall_ms = get_u64(&d);
		break;
	case PR_SNAP_END:
		break;
	case PR_ROUTE:
		r->msg = get_u64(&d);
		r->shard = get_u16(&d);
		break;
	default:
		return MOTE_EMALFORMED;
	}
	if (d.bad || d.left != 0)
		return MOTE_EMALFORMED;
	return MOTE_OK;
}
