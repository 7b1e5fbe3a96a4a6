/*
 * route.c - from an accepted PUBLISH to the sessions that should get it.
 *
 * route_message() asks the subscription tree for every matching
 * subscription, merges several matches of one session into one delivery
 * (highest QoS, every subscription identifier: [MQTT-3.3.4-2] and
 * [MQTT-3.3.4-4]), applies no-local and retain-as-published, and hands each
 * delivery to deliver(). Shared-subscription matches are never merged: each
 * group delivers its own copy.
 *
 * The merge uses a per-route epoch stamped on the session, so it costs O(1)
 * per match and allocates nothing once the scratch array has grown.
 *
 * Re-entrancy: deliver() never closes a connection synchronously, so nothing
 * frees a session while its pointer sits in the scratch array.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

/* Property ids forwarded unchanged to subscribers [MQTT-3.3.2-x]. */
static bool forwarded(uint8_t id)
{
	return id == MQTT_PROP_PAYLOAD_FORMAT || id == MQTT_PROP_CONTENT_TYPE ||
	       id == MQTT_PROP_RESPONSE_TOPIC || id == MQTT_PROP_CORRELATION_DATA ||
	       id == MQTT_PROP_USER_PROPERTY;
}

/* Size of one property entry's value on the wire, 0 if it cannot be sized. */
static uint32_t value_size(uint8_t id, const uint8_t *p, const uint8_t *end)
{
	size_t room = (size_t)(end - p);
	uint32_t v, used;
	switch (mqtt_prop_type_of(id)) {
	case MQTT_PT_BYTE:
		return 1;
	case MQTT_PT_U16:
		return 2;
	case MQTT_PT_U32:
		return 4;
	case MQTT_PT_VARINT:
		return mqtt_varint_decode(p, room, &v, &used) == MOTE_OK ? used : 0;
	case MQTT_PT_STRING:
	case MQTT_PT_BINARY:
		return room >= 2 ? 2u + ((uint32_t)p[0] << 8 | p[1]) : 0;
	case MQTT_PT_PAIR: {
		if (room < 2)
			return 0;
		uint32_t k = 2u + ((uint32_t)p[0] << 8 | p[1]);
		if (room < k + 2)
			return 0;
		return k + 2u + ((uint32_t)p[k] << 8 | p[k + 1]);
	}
	default:
		return 0;
	}
}

/*
 * Copies the forwarded entries of a decoded property block verbatim into dst
 * (which has room for raw.len bytes). The block was validated by the decoder,
 * so entries are well-formed; sizes are still bounds-checked.
 */
static uint32_t copy_forwarded(const struct mqtt_bin *raw, uint8_t *dst)
{
	const uint8_t *p = raw->p, *end = raw->p + raw->len;
	uint32_t out = 0;
	while (p < end) {
		uint8_t id = *p;
		uint32_t n = value_size(id, p + 1, end);
		if (n == 0 || n > (size_t)(end - p - 1))
			break;
		if (forwarded(id)) {
			memcpy(dst + out, p, 1 + n);
			out += 1 + n;
		}
		p += 1 + n;
	}
	return out;
}

enum mote_err route_msg_from_publish(struct broker *b, const struct mqtt_publish *p,
				     const uint8_t *topic, uint16_t topic_len, uint64_t origin,
				     struct msg **out)
{
	uint8_t small[256];
	uint8_t *props = small;
	uint32_t props_len = 0;
	if (p->props.raw.len > sizeof small) {
		props = malloc(p->props.raw.len);
		if (!props)
			return MOTE_ENOMEM;
	}
	if (p->props.raw.len)
		props_len = copy_forwarded(&p->props.raw, props);
	uint64_t expiry = 0;
	if (MQTT_HAS(&p->props, MQTT_PROP_MESSAGE_EXPIRY))
		expiry = loop_now(b->loop) + (uint64_t)p->props.message_expiry * 1000u;
	*out = msg_new(b->pool, topic, topic_len, props, props_len, p->payload.p, p->payload.len, p->qos,
		       p->retain, expiry, origin);
	if (props != small)
		free(props);
	return *out ? MOTE_OK : MOTE_ENOMEM;
}

static struct route_hit *push_hit(struct broker *b, struct session *s)
{
	if (b->hits_len == b->hits_cap) {
		uint32_t cap = b->hits_cap ? b->hits_cap * 2 : 64;
		struct route_hit *h = realloc(b->hits, cap * sizeof *h);
		if (!h) {
			b->route_oom = true;
			return NULL;
		}
		b->hits = h;
		b->hits_cap = cap;
	}
	struct route_hit *h = &b->hits[b->hits_len++];
	memset(h, 0, sizeof *h);
	h->s = s;
	return h;
}

static void on_match(void *ctx, struct session *s, const struct sub_opts *o, bool shared)
{
	struct broker *b = ctx;
	const struct msg *m = b->routing;
	if (o->no_local && s->uid == m->origin)
		return; /* [MQTT-3.8.3-3] */
	if (b->replaying) {
		if (shared)
			return; /* a group's picks come back as PR_ENQ records (persist.h) */
		if (b->replay_route_shard != PR_SHARD_ALL && s->replay_shard != b->replay_route_shard)
			return; /* PR_ROUTE: for the sessions of one shard of the last run */
	}
	uint8_t qos = o->qos < m->qos ? o->qos : m->qos;

	struct route_hit *h = NULL;
	if (!shared && s->route_epoch == b->route_epoch) {
		h = &b->hits[s->route_slot];
		if (o->sub_id && h->n_sub_ids == MAX_INLINE_SUB_IDS)
			h = NULL; /* full: this subscription gets its own copy */
	}
	if (!h) {
		h = push_hit(b, s);
		if (!h)
			return;
		if (!shared) {
			s->route_epoch = b->route_epoch;
			s->route_slot = b->hits_len - 1;
		}
		h->shared = shared;
	}
	if (qos > h->qos)
		h->qos = qos;
	h->retain_as_published |= o->retain_as_published;
	if (o->sub_id)
		h->sub_ids[h->n_sub_ids++] = o->sub_id;
}

static bool online(void *ctx, struct session *s)
{
	(void)ctx;
	return s->conn != NULL || s->stub_home; /* a stub's session: assume online */
}

uint32_t route_message(struct broker *b, struct msg *m, const struct conn *from)
{
	if (b->hooks.tap &&
	    (!b->hooks.tap_wants || b->hooks.tap_wants(b->hooks.ctx, msg_topic(m), m->topic_len))) {
		struct broker_msg_view v = { msg_topic(m), m->topic_len, msg_payload(m),
					     m->payload_len, m->qos, m->retain };
		struct broker_client info;

		/* The publisher, as broker.h promises: services behind the tap
		 * (provisioning) decide by its verified identity. */
		if (from)
			conn_fill_client(from, &info);
		b->hooks.tap(b->hooks.ctx, from ? &info : NULL, &v);
	}
	uint32_t n = route_local(b, m);
	if (b->nshards > 1 && shard_forward(b, m))
		n++;
	return n;
}

uint32_t route_local(struct broker *b, struct msg *m)
{
	if (m->retain && retain_set(b->retained, m) != MOTE_OK)
		MOTE_WARN("broker", "event=retain_failed why=\"out of memory\"");

	/* Scratch state is not re-entrant; deliver() never routes. */
	b->route_epoch++;
	b->hits_len = 0;
	b->routing = m;
	b->route_oom = false;
	subtree_match(b->subs, msg_topic(m), m->topic_len, on_match, online, b);
	uint32_t n = b->hits_len;
	for (uint32_t i = 0; i < n; i++) {
		struct route_hit *h = &b->hits[i];
		if (h->s->stub_home) {
			share_send_to_stub(b, h->s, m, h->qos,
					   h->retain_as_published ? m->retain : false, h->sub_ids,
					   h->n_sub_ids);
			continue;
		}
		bool retain = h->retain_as_published ? m->retain : false;
		if (h->shared)
			persist_enq(b, h->s, m, h->qos, retain, h->sub_ids, h->n_sub_ids);
		deliver(h->s, m, h->qos, retain, h->sub_ids, h->n_sub_ids);
	}
	if (b->route_oom)
		STAT_ADD(b, msgs_dropped, 1);
	b->routing = NULL;
	b->hits_len = 0;
	return n;
}
