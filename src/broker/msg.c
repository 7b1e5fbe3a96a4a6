/* msg.c - reference-counted application messages; see msg.h. */
#include "broker/msg.h"

#include <stdlib.h>
#include <string.h>

struct msg *msg_new(const uint8_t *topic, uint16_t topic_len, const uint8_t *props,
		    uint32_t props_len, const uint8_t *payload, uint32_t payload_len,
		    uint8_t qos, bool retain, uint64_t expiry_ms, uint64_t origin)
{
	size_t n = (size_t)topic_len + props_len + payload_len;
	struct msg *m = malloc(sizeof *m + n);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = topic_len;
	m->props_len = props_len;
	m->payload_len = payload_len;
	m->expiry_ms = expiry_ms;
	m->origin = origin;
	if (topic_len)
		memcpy(m->data, topic, topic_len);
	if (props_len)
		memcpy(m->data + topic_len, props, props_len);
	if (payload_len)
		memcpy(m->data + topic_len + props_len, payload, payload_len);
	return m;
}

void msg_unref(struct msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}
