/*
 * fuzz_broker_precord.c - libFuzzer target for the decoder of the broker's
 * journal records (broker/precord.h), which replay runs over whatever a
 * damaged journal holds.
 *
 * Input: one type byte, then the record's payload. The payload is copied
 * to a buffer of exactly its size, so ASan catches any read outside it.
 * For a record that decodes, checked: every view lies inside the payload;
 * the values are in the ranges the decoder promises (QoS, client id, filter,
 * topic, subscription ids, options, state, flags); and encoding the decoded
 * fields again with the record's encoder gives a payload of the same length
 * that decodes to the same fields (nothing read is lost or misplaced).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/precord.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_broker_precord: %s\n", what);
		__builtin_trap();
	}
}

static void inside(const uint8_t *p, size_t len, const uint8_t *buf, size_t size,
		   const char *what)
{
	if (len == 0)
		return;
	check(p != NULL && p >= buf && len <= size && p <= buf + size - len, what);
}

static bool names_client(uint8_t type)
{
	return type != PR_MSG && type != PR_SNAP_BEGIN && type != PR_SNAP_END &&
	       type != PR_ROUTE;
}

static void check_ranges(const struct precord *r, const uint8_t *buf, size_t size)
{
	inside(r->client.p, r->client.len, buf, size, "client outside the payload");
	inside(r->group.p, r->group.len, buf, size, "group outside the payload");
	inside(r->filter.p, r->filter.len, buf, size, "filter outside the payload");
	inside(r->topic.p, r->topic.len, buf, size, "topic outside the payload");
	inside(r->props.p, r->props.len, buf, size, "props outside the payload");
	inside(r->origin.p, r->origin.len, buf, size, "origin outside the payload");
	inside(r->payload.p, r->payload.len, buf, size, "payload outside the payload");
	check(!names_client(r->type) || r->client.len > 0, "empty client id accepted");
	switch (r->type) {
	case PR_MSG:
		check(r->qos <= 2 && r->flags <= 3 && r->topic.len > 0, "bad message accepted");
		break;
	case PR_WILL:
		check(r->qos <= 2 && r->topic.len > 0, "bad will accepted");
		break;
	case PR_SUB:
		check(r->opts.qos <= 2 && r->opts.rh <= 2 && r->opts.no_local <= 1 &&
			      r->opts.rap <= 1,
		      "bad subscription options accepted");
		/* fall through */
	case PR_UNSUB:
		check(r->filter.len > 0, "empty filter accepted");
		break;
	case PR_ENQ:
		check(r->qos >= 1 && r->qos <= 2 && r->state <= 2 && r->n_sub_ids <= 4,
		      "bad delivery accepted");
		for (unsigned i = r->n_sub_ids; i < 4; i++)
			check(r->sub_ids[i] == 0, "subscription id past the count");
		break;
	default:
		break;
	}
}

/* Encodes r with its type's encoder; false for a type without one. */
static bool encode(struct penc *e, const struct precord *r)
{
	switch (r->type) {
	case PR_MSG:
		precord_msg(e, r->flags, r->expiry_wall_ms, r->qos, r->retain, r->topic.p,
			    r->topic.len, r->props.p, r->props.len, r->origin.p,
			    (uint16_t)r->origin.len, r->payload.p, r->payload.len);
		break;
	case PR_SESSION:
		precord_session(e, r->client.p, r->client.len, r->expiry_s, r->version, r->wall_ms,
				r->shard);
		break;
	case PR_SESSION_END:
	case PR_WILL_END:
		precord_client(e, r->client.p, r->client.len);
		break;
	case PR_OFFLINE:
		precord_offline(e, r->client.p, r->client.len, r->wall_ms, r->expiry_s);
		break;
	case PR_SUB:
		precord_sub(e, r->client.p, r->client.len, r->group.p, r->group.len, r->filter.p,
			    r->filter.len, &r->opts);
		break;
	case PR_UNSUB:
		precord_unsub(e, r->client.p, r->client.len, r->group.p, r->group.len, r->filter.p,
			      r->filter.len);
		break;
	case PR_ENQ:
		precord_enq(e, r->client.p, r->client.len, r->msg, r->qos, r->retain, r->sub_ids,
			    r->n_sub_ids, r->packet_id, r->state);
		break;
	case PR_ACK:
	case PR_SENT:
	case PR_REL:
		precord_msgref(e, r->client.p, r->client.len, r->msg, r->packet_id);
		break;
	case PR_Q2IN:
	case PR_Q2REL:
		precord_pid(e, r->client.p, r->client.len, r->packet_id);
		break;
	case PR_WILL:
		precord_will(e, r->client.p, r->client.len, r->delay_s, r->expiry_wall_ms, r->qos,
			     r->retain, r->topic.p, r->topic.len, r->props.p, r->props.len,
			     r->payload.p, r->payload.len);
		break;
	case PR_SNAP_BEGIN:
		precord_u64(e, r->wall_ms);
		break;
	case PR_SNAP_END:
		e->len = 0;
		break;
	case PR_ROUTE:
		precord_route(e, r->msg, r->shard);
		break;
	default:
		return false;
	}
	return true;
}

static bool same_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void check_same(const struct precord *a, const struct precord *b)
{
	check(a->type == b->type && a->msg == b->msg && a->wall_ms == b->wall_ms &&
		      a->expiry_s == b->expiry_s && a->version == b->version &&
		      a->shard == b->shard && a->qos == b->qos && a->retain == b->retain &&
		      a->n_sub_ids == b->n_sub_ids && a->packet_id == b->packet_id &&
		      a->state == b->state && a->delay_s == b->delay_s && a->flags == b->flags &&
		      a->expiry_wall_ms == b->expiry_wall_ms,
	      "re-encoded record decodes to other numbers");
	check(a->opts.qos == b->opts.qos && a->opts.no_local == b->opts.no_local &&
		      a->opts.rap == b->opts.rap && a->opts.rh == b->opts.rh &&
		      a->opts.sub_id == b->opts.sub_id,
	      "re-encoded record decodes to other options");
	check(memcmp(a->sub_ids, b->sub_ids, sizeof a->sub_ids) == 0,
	      "re-encoded record decodes to other subscription ids");
	check(same_bytes(a->client.p, a->client.len, b->client.p, b->client.len) &&
		      same_bytes(a->group.p, a->group.len, b->group.p, b->group.len) &&
		      same_bytes(a->filter.p, a->filter.len, b->filter.p, b->filter.len) &&
		      same_bytes(a->topic.p, a->topic.len, b->topic.p, b->topic.len) &&
		      same_bytes(a->props.p, a->props.len, b->props.p, b->props.len) &&
		      same_bytes(a->origin.p, a->origin.len, b->origin.p, b->origin.len) &&
		      same_bytes(a->payload.p, a->payload.len, b->payload.p, b->payload.len),
	      "re-encoded record decodes to other bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t type = data[0];
	size_t len = size - 1;
	uint8_t *buf = malloc(len); /* exactly: not a byte more for ASan to miss */
	if (!buf && len)
		return 0;
	if (len)
		memcpy(buf, data + 1, len);
	struct precord r;
	enum mote_err err = precord_decode(type, buf, len, &r);
	check(err == MOTE_OK || err == MOTE_EMALFORMED, "unexpected error");
	if (err == MOTE_OK) {
		check(r.type == type, "type not kept");
		check_ranges(&r, buf, len);
		struct penc e = { 0 };
		check(encode(&e, &r), "decoded a type without an encoder");
		check(!e.oom, "out of memory");
		check(e.len == len, "re-encoded length differs");
		struct precord again;
		check(precord_decode(type, e.p, e.len, &again) == MOTE_OK,
		      "re-encoded record does not decode");
		check_same(&r, &again);
		penc_free(&e);
	}
	free(buf);
	return 0;
}
