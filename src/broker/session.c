/*
 * session.c - the session table, session lifetime, expiry and wills.
 *
 * A session lives from the CONNECT that creates it until: its connection
 * closes with session expiry 0; its expiry timer fires while offline; a new
 * CONNECT with clean start replaces it. When it ends, a pending will is
 * published at once ([MQTT-3.1.3-9]: the will goes out at the earlier of the
 * will delay and the end of the session).
 *
 * Sessions are found by client id in the shard's id table (idtab.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

struct session *session_find(struct broker *b, const uint8_t *id, uint16_t len)
{
	return idtab_find(&b->sessions, id, len);
}

static void on_expiry(struct loop *loop, struct loop_timer *t);
static void on_will_delay(struct loop *loop, struct loop_timer *t);

enum mote_err session_create(struct broker *b, const uint8_t *id, uint16_t len,
			     struct session **out)
{
	if (idtab_reserve(&b->sessions) != MOTE_OK)
		return MOTE_ENOMEM;
	/* One allocation: the client id follows the struct (less per session). */
	struct session *s = calloc(1, sizeof *s + len);
	if (!s)
		return MOTE_ENOMEM;
	s->client_id = (uint8_t *)(s + 1);
	memcpy(s->client_id, id, len);
	s->client_id_len = len;
	s->b = b;
	b->next_uid += b->nshards; /* starts at the shard id: unique over shards */
	s->uid = b->next_uid;
	s->next_packet_id = 1;
	loop_timer_init(&s->expiry_timer, on_expiry, s);
	loop_timer_init(&s->will_timer, on_will_delay, s);
	idtab_insert(&b->sessions, s);
	STAT_ADD(b, sessions, 1);
	*out = s;
	return MOTE_OK;
}

static void publish_will(struct session *s)
{
	struct msg *will = s->will;
	if (!will)
		return;
	s->will = NULL;
	loop_timer_stop(s->b->loop, &s->will_timer);
	struct broker *b = s->b;
	/* The will's topic was authorized at CONNECT, when the client's
	 * identity was known (connect.c); $SYS stays the broker's whatever a
	 * journal from an older version holds. */
	bool ok = !(will->topic_len >= 4 && memcmp(msg_topic(will), "$SYS", 4) == 0);
	persist_will_end(b, s);
	if (ok) {
		char idq[96];
		MOTE_DEBUG("broker", "event=will client=%s",
			   mote_log_quote(idq, sizeof idq, s->client_id, s->client_id_len));
		publish_internal(b, will, s);
	}
	msg_unref(will);
}

void session_set_will(struct session *s, struct msg *will, uint32_t delay_s)
{
	session_cancel_will(s);
	s->will = will;
	s->will_delay_s = delay_s;
}

void session_cancel_will(struct session *s)
{
	if (s->will)
		persist_will_end(s->b, s);
	loop_timer_stop(s->b->loop, &s->will_timer);
	msg_unref(s->will);
	s->will = NULL;
}

static void on_will_delay(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	publish_will(t->data);
}

void session_destroy(struct session *s)
{
	struct broker *b = s->b;
	publish_will(s);
	persist_session_end(b, s);
	loop_timer_stop(b->loop, &s->expiry_timer);
	session_drop_subs(s);
	session_release_inflight(s);
	dqueue_free(&s->queue);
	free(s->qos2_in);

	idtab_remove(&b->sessions, s);
	STAT_SUB(b, sessions, 1);
	free(s->inflight);
	free(s); /* the client id is part of it */
}

static void on_expiry(struct loop *loop, struct loop_timer *t)
{
	(void)loop;
	struct session *s = t->data;
	char idq[96];
	MOTE_DEBUG("broker", "event=session_expired client=%s",
		   mote_log_quote(idq, sizeof idq, s->client_id, s->client_id_len));
	session_destroy(s);
}

void session_detach(struct session *s, bool publish)
{
	struct broker *b = s->b;
	if (!publish)
		session_cancel_will(s);
	if (s->expiry_s == 0 || b->shutting_down) {
		/* Shutting down frees every session: no will is sent to nobody
		 * now; a journaled one goes out after the restart. */
		if (b->shutting_down) {
			session_cancel_will(s);
			if (s->expiry_s)
				persist_offline(b, s); /* its expiry runs from now */
		}
		session_destroy(s);
		return;
	}
	persist_offline(b, s);
	if (s->will) {
		if (s->will_delay_s == 0)
			publish_will(s);
		else
			loop_timer_start(b->loop, &s->will_timer, (uint64_t)s->will_delay_s * 1000u);
	}
	if (s->expiry_s != SESSION_NEVER_EXPIRES)
		loop_timer_start(b->loop, &s->expiry_timer, (uint64_t)s->expiry_s * 1000u);
}
