/*
 * share.c - shared subscriptions whose members live on several shards.
 *
 * A shared group "$share/g/f" is owned by one shard, shard_of_group(g, f)
 * (shard.c). Only the owner's subscription tree holds the group, so for each
 * message exactly one shard picks the member, round robin as in a single
 * loop. A member whose session lives on another shard (its home) is a stub
 * in the owner's tree: a struct session with stub_home set, no connection and
 * no queues, keyed by client id in the owner's stub table (an id_table like
 * the sessions'). When the owner
 * picks a stub it sends the message to the member's home shard, which
 * delivers it to the real session (IN_SHARE_DELIVER).
 *
 * Ordering: a member's SUBSCRIBE reaches the owner through the home shard's
 * FIFO to the owner before anything the member does afterwards, so a message
 * published after the SUBACK (by anyone who saw it) is routed by the owner
 * after the stub exists.
 *
 * Races, by design: a message the owner sent to a member whose session ended
 * (or unsubscribed) on the way is dropped, as it would be for a member that
 * unsubscribes at that instant on a single loop.
 *
 * Ownership: the owner's stub table owns the stubs; a stub lives while it has
 * memberships (stub_refs) in the owner's tree.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"

static struct session *stub_get(struct broker *b, uint16_t home, const uint8_t *id,
				uint16_t len)
{
	struct session *s = idtab_find(&b->stubs, id, len);
	if (s)
		return s;
	if (idtab_reserve(&b->stubs) != MOTE_OK)
		return NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->client_id = malloc(len ? len : 1);
	if (!s->client_id) {
		free(s);
		return NULL;
	}
	memcpy(s->client_id, id, len);
	s->client_id_len = len;
	s->b = b;
	s->stub_home = (uint16_t)(home + 1);
	idtab_insert(&b->stubs, s);
	return s;
}

static void stub_free(struct broker *b, struct session *stub)
{
	idtab_remove(&b->stubs, stub);
	free(stub->client_id);
	free(stub);
}

void share_free_stubs(struct broker *b)
{
	for (uint32_t i = 0; i < b->stubs.cap; i++) {
		while (b->stubs.slots[i]) {
			struct session *s = b->stubs.slots[i];
			b->stubs.slots[i] = s->hnext;
			subtree_remove_all(b->subs, s);
			free(s->client_id);
			free(s);
		}
	}
	idtab_free(&b->stubs);
}

/* data = client id | group | filter. */
static bool pack(struct inbox_item *it, const struct session *s, const uint8_t *group,
		 size_t glen, const uint8_t *filter, size_t flen)
{
	size_t n = s->client_id_len + glen + flen;
	it->data = malloc(n ? n : 1);
	if (!it->data)
		return false;
	memcpy(it->data, s->client_id, s->client_id_len);
	memcpy(it->data + s->client_id_len, group, glen);
	memcpy(it->data + s->client_id_len + glen, filter, flen);
	it->len = s->client_id_len;
	it->glen = (uint16_t)glen;
	it->flen = (uint16_t)flen;
	return true;
}

void share_remote_sub(struct session *s, const struct mqtt_str *group,
		      const struct mqtt_str *filter, const struct sub_opts *o)
{
	struct broker *b = s->b;
	struct inbox_item it = { .kind = IN_SHARE_SUB, .opts = *o,
				 .home = (uint16_t)b->shard_id };
	if (!pack(&it, s, group->p, group->len, filter->p, filter->len)) {
		MOTE_WARN("broker", "event=share_sub_failed why=\"out of memory\"");
		return;
	}
	shard_send(b, shard_of_group(b, group->p, group->len, filter->p, filter->len), &it);
}

void share_remote_unsub(struct session *s, const uint8_t *group, size_t glen,
			const uint8_t *filter, size_t flen)
{
	struct broker *b = s->b;
	struct inbox_item it = { .kind = IN_SHARE_UNSUB };
	if (!pack(&it, s, group, glen, filter, flen)) {
		MOTE_WARN("broker", "event=share_unsub_failed why=\"out of memory\"");
		return;
	}
	shard_send(b, shard_of_group(b, group, glen, filter, flen), &it);
}

void share_on_sub(struct broker *b, struct inbox_item *it)
{
	struct session *stub = stub_get(b, it->home, it->data, (uint16_t)it->len);
	const uint8_t *group = it->data + it->len, *filter = group + it->glen;
	bool existed = false;
	if (!stub || subtree_add(b->subs, group, it->glen, filter, it->flen, stub, &it->opts,
				 &existed) != MOTE_OK) {
		MOTE_WARN("broker", "event=share_sub_failed why=\"out of memory\"");
		if (stub && stub->stub_refs == 0)
			stub_free(b, stub);
		return;
	}
	if (!existed)
		stub->stub_refs++;
	shard_note_interest(b);
}

void share_on_unsub(struct broker *b, struct inbox_item *it)
{
	struct session *stub = idtab_find(&b->stubs, it->data, (uint16_t)it->len);
	if (!stub)
		return;
	const uint8_t *group = it->data + it->len, *filter = group + it->glen;
	if (subtree_remove(b->subs, group, it->glen, filter, it->flen, stub) == MOTE_OK &&
	    --stub->stub_refs == 0)
		stub_free(b, stub);
	shard_note_interest(b);
}

void share_send_to_stub(struct broker *b, struct session *stub, struct msg *m, uint8_t qos,
			bool retain, const uint32_t *sub_ids, uint8_t n_sub_ids)
{
	struct inbox_item it = { .kind = IN_SHARE_DELIVER, .qos = qos, .flag = retain };
	it.data = malloc(stub->client_id_len ? stub->client_id_len : 1);
	if (!it.data) {
		STAT_ADD(b, msgs_dropped, 1);
		return;
	}
	memcpy(it.data, stub->client_id, stub->client_id_len);
	it.len = stub->client_id_len;
	it.n_sub_ids = n_sub_ids > MAX_INLINE_SUB_IDS ? MAX_INLINE_SUB_IDS : n_sub_ids;
	memcpy(it.sub_ids, sub_ids, it.n_sub_ids * sizeof *sub_ids);
	it.m = msg_ref(m);
	shard_send(b, (uint32_t)stub->stub_home - 1u, &it);
}

void share_on_deliver(struct broker *b, struct inbox_item *it)
{
	struct session *s = session_find(b, it->data, (uint16_t)it->len);
	if (!s) {
		STAT_ADD(b, msgs_dropped, 1); /* the member ended on the way */
		return;
	}
	/* A group's pick is not replayed from the message: it gets a record. */
	persist_enq(b, s, it->m, it->qos, it->flag, it->sub_ids, it->n_sub_ids);
	deliver(s, it->m, it->qos, it->flag, it->sub_ids, it->n_sub_ids);
}
