/*
 * pubhead.h - encoded PUBLISH heads remembered across subscribers (private
 * to src/broker/).
 *
 * Fan-out sends one message to many subscribers, and for most of them the
 * head (fixed header, topic, packet id, properties) is the same bytes but
 * for the packet id. pubhead_encode() is mqtt_encode_publish_head() with a
 * memory: when every input that decides the bytes equals those of a head it
 * encoded before, it copies that head and writes the packet id into it.
 *
 * The key is everything the encoder reads for such a packet: version, QoS,
 * DUP, RETAIN, the topic bytes, the payload length, the message expiry
 * value and the pre-encoded property bytes (props.raw_extra). Keys are
 * compared by content, never by message pointer, so a freed and reused
 * struct msg can never match a stale entry. Packets with any other
 * property (a topic alias, subscription identifiers, ...) are encoded
 * directly and not remembered.
 *
 * Storage is inline, PUBHEAD_WAYS entries direct-mapped by (QoS, RETAIN,
 * 5.0 or not): nothing to allocate or free, and a zeroed struct is an empty
 * cache. Heads whose topic and properties exceed PUBHEAD_MAX bytes are not
 * kept (their encoding is then small next to the bytes they move anyway).
 *
 * Threading: one cache per broker, used on its loop thread only.
 */
#ifndef MOTE_BROKER_PUBHEAD_H
#define MOTE_BROKER_PUBHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "mqtt/mqtt.h"

#define PUBHEAD_MAX 256 /* longest topic + forwarded properties kept */
#define PUBHEAD_WAYS 12 /* QoS (3) x RETAIN (2) x version (2) */

struct pubhead {
	bool used;
	uint8_t version;
	uint8_t qos;
	bool dup;
	bool retain;
	bool has_expiry;
	uint16_t topic_len;
	uint16_t extra_len;     /* raw_extra bytes after the topic in key[] */
	uint16_t len;           /* head bytes */
	uint16_t id_off;        /* where the packet id sits in head[] (QoS > 0) */
	uint32_t expiry;
	uint32_t payload_len;
	uint8_t key[PUBHEAD_MAX];          /* topic then raw_extra */
	/* key bytes plus at most: fixed header 5, topic length 2, packet id 2,
	 * property length 4, message expiry 5 */
	uint8_t head[PUBHEAD_MAX + 18];
};

struct pubhead_cache {
	struct pubhead way[PUBHEAD_WAYS];
	uint64_t hits;          /* heads copied rather than encoded (for tests) */
};

/*
 * Same contract as mqtt_encode_publish_head(): writes pub's head for
 * `version` into buf[0..cap), *out_len gets its size, the same errors for
 * the same inputs. Reads nothing through pub after returning (the cache
 * keeps copies).
 */
enum mote_err pubhead_encode(struct pubhead_cache *pc, const struct mqtt_publish *pub,
			     uint8_t version, uint8_t *buf, size_t cap, size_t *out_len);

#endif
