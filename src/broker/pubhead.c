/*
 * pubhead.c - the PUBLISH head cache; see pubhead.h.
 *
 * Invariant: a used entry's head[0..len) is exactly what
 * mqtt_encode_publish_head() returned for an input equal to the entry's key,
 * with some packet id at head[id_off..id_off+2) when qos > 0. The packet id
 * is the only input left out of the key, and it sits at a place fixed by
 * the spec: after the fixed header and the length-prefixed topic
 * [MQTT-3.3.2], so writing a new one there gives the same bytes the encoder
 * would have written.
 *
 * A hit costs a few integer compares, one memcmp of the topic and
 * properties and one memcpy, where the encoder walks the property block
 * twice (sizing, then writing).
 */
#include "broker/pubhead.h"

#include <string.h>

/* Only packets whose bytes the key fully decides are remembered. */
static bool cacheable(const struct mqtt_publish *pub)
{
	const struct mqtt_props *pr = &pub->props;
	return pub->qos <= 2 && pub->topic.len > 0 && pub->topic.p &&
	       (pr->present & ~(1ull << MQTT_PROP_MESSAGE_EXPIRY)) == 0 &&
	       pr->sub_id_count == 0 && (pr->raw_extra.len == 0 || pr->raw_extra.p) &&
	       (size_t)pub->topic.len + pr->raw_extra.len <= PUBHEAD_MAX;
}

static struct pubhead *way_for(struct pubhead_cache *pc, const struct mqtt_publish *pub,
			       uint8_t version)
{
	unsigned i = (unsigned)pub->qos * 4u + (pub->retain ? 2u : 0u) + (version == MQTT_V5);
	return &pc->way[i];
}

static bool matches(const struct pubhead *h, const struct mqtt_publish *pub, uint8_t version)
{
	const struct mqtt_props *pr = &pub->props;
	bool has_expiry = MQTT_HAS(pr, MQTT_PROP_MESSAGE_EXPIRY);
	return h->used && h->version == version && h->qos == pub->qos && h->dup == pub->dup &&
	       h->retain == pub->retain && h->has_expiry == has_expiry &&
	       (!has_expiry || h->expiry == pr->message_expiry) &&
	       h->payload_len == pub->payload.len && h->topic_len == pub->topic.len &&
	       h->extra_len == pr->raw_extra.len &&
	       memcmp(h->key, pub->topic.p, h->topic_len) == 0 &&
	       (h->extra_len == 0 ||
		memcmp(h->key + h->topic_len, pr->raw_extra.p, h->extra_len) == 0);
}

static void remember(struct pubhead *h, const struct mqtt_publish *pub, uint8_t version,
		     const uint8_t *head, size_t len)
{
	const struct mqtt_props *pr = &pub->props;
	uint32_t rl, used;
	if (len > sizeof h->head ||
	    mqtt_varint_decode(head + 1, len - 1, &rl, &used) != MOTE_OK) {
		h->used = false; /* cannot happen for a head the encoder accepted */
		return;
	}
	h->used = true;
	h->version = version;
	h->qos = pub->qos;
	h->dup = pub->dup;
	h->retain = pub->retain;
	h->has_expiry = MQTT_HAS(pr, MQTT_PROP_MESSAGE_EXPIRY);
	h->expiry = h->has_expiry ? pr->message_expiry : 0;
	h->payload_len = pub->payload.len;
	h->topic_len = pub->topic.len;
	h->extra_len = (uint16_t)pr->raw_extra.len;
	h->len = (uint16_t)len;
	h->id_off = (uint16_t)(1 + used + 2 + pub->topic.len);
	memcpy(h->key, pub->topic.p, pub->topic.len);
	if (h->extra_len)
		memcpy(h->key + h->topic_len, pr->raw_extra.p, h->extra_len);
	memcpy(h->head, head, len);
}

enum mote_err pubhead_encode(struct pubhead_cache *pc, const struct mqtt_publish *pub,
			     uint8_t version, uint8_t *buf, size_t cap, size_t *out_len)
{
	if (!buf || !cacheable(pub))
		return mqtt_encode_publish_head(pub, version, buf, cap, out_len);
	struct pubhead *h = way_for(pc, pub, version);
	/* A zero packet id at QoS > 0 is refused by the encoder: let it say so. */
	if (matches(h, pub, version) && (pub->qos == 0 || pub->packet_id != 0)) {
		if (cap < h->len)
			return MOTE_ENOSPC;
		memcpy(buf, h->head, h->len);
		if (pub->qos) {
			buf[h->id_off] = (uint8_t)(pub->packet_id >> 8);
			buf[h->id_off + 1] = (uint8_t)pub->packet_id;
		}
		*out_len = h->len;
		pc->hits++;
		return MOTE_OK;
	}
	enum mote_err err = mqtt_encode_publish_head(pub, version, buf, cap, out_len);
	if (err == MOTE_OK)
		remember(h, pub, version, buf, *out_len);
	return err;
}
