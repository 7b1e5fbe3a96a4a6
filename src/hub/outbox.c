/* outbox.c - publishes from any thread onto the hub's loop (see outbox.h). */
#include "hub/outbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"

struct outbox_msg {
	struct outbox_msg *next;
	size_t topic_len, len;
	uint8_t qos;
	bool retain;
	uint8_t data[]; /* topic, then payload */
};

enum mote_err outbox_init(struct outbox *o, size_t max_bytes)
{
	memset(o, 0, sizeof *o);
	o->max_bytes = max_bytes;
	o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->efd < 0)
		return MOTE_EIO;
	if (pthread_mutex_init(&o->mu, NULL) != 0) {
		close(o->efd);
		o->efd = -1;
		return MOTE_ENOMEM;
	}
	return MOTE_OK;
}

static void drain(struct loop *loop, struct loop_io *io, uint32_t events)
{
	(void)loop;
	(void)events;
	struct outbox *o = io->data;
	uint64_t n;
	if (read(o->efd, &n, sizeof n) < 0) {
		/* EAGAIN: nothing new; the list is drained below anyway. */
	}
	pthread_mutex_lock(&o->mu);
	struct outbox_msg *m = o->head;
	o->head = o->tail = NULL;
	o->bytes = 0;
	pthread_mutex_unlock(&o->mu);
	while (m) {
		struct outbox_msg *next = m->next;
		enum mote_err e = broker_publish(o->broker, m->data, m->topic_len,
						 m->data + m->topic_len, m->len, m->qos, m->retain);
		if (e != MOTE_OK)
			MOTE_WARN("hub", "event=internal_publish_failed topic=\"%.*s\" why=\"%s\"",
				  (int)(m->topic_len > 120 ? 120 : m->topic_len), (const char *)m->data,
				  mote_strerror(e));
		free(m);
		m = next;
	}
}

enum mote_err outbox_start(struct outbox *o, struct loop *loop, struct broker *b)
{
	o->loop = loop;
	o->broker = b;
	enum mote_err e = loop_io_start(loop, &o->io, o->efd, LOOP_READ, drain, o);
	if (e == MOTE_OK) {
		uint64_t one = 1;
		/* Whatever was published before the loop ran. */
		if (write(o->efd, &one, sizeof one) < 0) {
		}
	}
	return e;
}

void outbox_stop(struct outbox *o)
{
	if (o->loop && o->io.active)
		loop_io_stop(o->loop, &o->io);
	o->loop = NULL;
}

void outbox_destroy(struct outbox *o)
{
	if (o->efd < 0)
		return;
	struct outbox_msg *m = o->head;
	while (m) {
		struct outbox_msg *next = m->next;
		free(m);
		m = next;
	}
	pthread_mutex_destroy(&o->mu);
	close(o->efd);
	o->efd = -1;
}

bool outbox_publish(struct outbox *o, const char *topic, const void *payload, size_t len,
		    uint8_t qos, bool retain)
{
	size_t tl = strlen(topic);
	size_t bytes = sizeof(struct outbox_msg) + tl + len;
	pthread_mutex_lock(&o->mu);
	if (o->bytes + bytes > o->max_bytes) {
		o->dropped++;
		pthread_mutex_unlock(&o->mu);
		return false;
	}
	pthread_mutex_unlock(&o->mu);
	struct outbox_msg *m = malloc(bytes);
	if (!m)
		return false;
	m->next = NULL;
	m->topic_len = tl;
	m->len = len;
	m->qos = qos;
	m->retain = retain;
	memcpy(m->data, topic, tl);
	if (len)
		memcpy(m->data + tl, payload, len);
	pthread_mutex_lock(&o->mu);
	bool was_empty = !o->head;
	if (o->tail)
		o->tail->next = m;
	else
		o->head = m;
	o->tail = m;
	o->bytes += bytes;
	pthread_mutex_unlock(&o->mu);
	if (was_empty) {
		uint64_t one = 1;
		if (write(o->efd, &one, sizeof one) < 0) {
			/* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
		}
	}
	return true;
}
