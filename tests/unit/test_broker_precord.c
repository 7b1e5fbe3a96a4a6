/*
 * test_broker_precord.c - the broker's journal records (broker/precord.h):
 *   - every encoder's output decodes to exactly the fields it was given
 *     (all other fields zero), with values chosen so that a swapped,
 *     narrowed or misordered field shows: multi-byte integers with every
 *     byte different, ids with bytes >= 0x80 and NUL, a payload longer than
 *     64 KiB, empty and maximal optional parts;
 *   - every strict prefix of every record, and every record with one byte
 *     more, is MOTE_EMALFORMED; each is decoded from a heap copy of exactly
 *     its length, so under ASan a read past the end is caught;
 *   - values out of range (QoS 3, an empty client id, 5 subscription ids,
 *     message flags > 3, retain handling 3, ...) and unknown types are
 *     MOTE_EMALFORMED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/precord.h"

/* ---- samples ----------------------------------------------------------------------- */

static const uint8_t CLIENT[] = { 'd', 'e', 'v', 0xc3, 0xa9, 0x00, '-', '7' };
static const uint8_t CLIENT2[] = { 'x' };
static const uint8_t TOPIC[] = "plant/4/line/\xe2\x82\xac/temp";
static const uint8_t GROUP[] = "workers";
static const uint8_t FILTER[] = "plant/+/line/#";
/* a property block as the broker stores it (opaque here) */
static const uint8_t PROPS[] = { 0x01, 0x01, 0x02, 0x00, 0x00, 0x0e, 0x10, 0x08, 0x00, 0x03,
				 'a',  '/',  'b',  0x26, 0x00, 0x01, 'k',  0x00, 0x02, 'v',
				 'w' };

#define BIG_PAYLOAD 70001u /* needs the full u32 length */
#define EDGE 4096u          /* truncations tried one by one at each end */
#define STRIDE 61u          /* and this far apart in between */
static uint8_t big[BIG_PAYLOAD];

/* One encoded record; `want` is what it must decode to. */
struct sample {
	const char *name;
	uint8_t type;
	uint8_t *bytes;
	size_t len;
	struct precord want;
};

#define MAX_SAMPLES 64
static struct sample samples[MAX_SAMPLES];
static size_t n_samples;

static struct mqtt_str S(const uint8_t *p, size_t len)
{
	return (struct mqtt_str){ len ? p : NULL, (uint16_t)len };
}

static struct mqtt_bin B(const uint8_t *p, size_t len)
{
	return (struct mqtt_bin){ len ? p : NULL, (uint32_t)len };
}

/* Keeps a copy of e's bytes as a sample of `type`. */
static struct sample *keep(const char *name, uint8_t type, const struct penc *e)
{
	assert_true(n_samples < MAX_SAMPLES);
	assert_false(e->oom);
	struct sample *s = &samples[n_samples++];
	s->name = name;
	s->type = type;
	s->len = e->len;
	s->bytes = malloc(e->len ? e->len : 1);
	assert_non_null(s->bytes);
	if (e->len)
		memcpy(s->bytes, e->p, e->len);
	memset(&s->want, 0, sizeof s->want);
	s->want.type = type;
	return s;
}

static void build_samples(void)
{
	struct penc e = { 0 };
	struct sample *s;
	for (size_t i = 0; i < BIG_PAYLOAD; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 8));

	/* PR_MSG: everything set, as published live */
	precord_msg(&e, PR_MSG_ROUTE, 0x0123456789abcdefull, 2, true, TOPIC, sizeof TOPIC - 1,
		    PROPS, sizeof PROPS, CLIENT, sizeof CLIENT, big, BIG_PAYLOAD);
	s = keep("msg full", PR_MSG, &e);
	s->want.flags = PR_MSG_ROUTE;
	s->want.expiry_wall_ms = 0x0123456789abcdefull;
	s->want.qos = 2;
	s->want.retain = true;
	s->want.topic = S(TOPIC, sizeof TOPIC - 1);
	s->want.props = B(PROPS, sizeof PROPS);
	s->want.origin = B(CLIENT, sizeof CLIENT);
	s->want.payload = B(big, BIG_PAYLOAD);
	/* PR_MSG: a snapshot's retained copy, nothing optional */
	precord_msg(&e, PR_MSG_RETAINED | PR_MSG_ROUTE, 0, 0, false, (const uint8_t *)"a", 1,
		    NULL, 0, NULL, 0, NULL, 0);
	s = keep("msg minimal", PR_MSG, &e);
	s->want.flags = PR_MSG_RETAINED | PR_MSG_ROUTE;
	s->want.topic = S((const uint8_t *)"a", 1);
	precord_msg(&e, PR_MSG_RETAINED, UINT64_MAX, 1, true, TOPIC, sizeof TOPIC - 1, NULL, 0,
		    CLIENT2, 1, (const uint8_t *)"\x00\xff", 2);
	s = keep("msg retained", PR_MSG, &e);
	s->want.flags = PR_MSG_RETAINED;
	s->want.expiry_wall_ms = UINT64_MAX;
	s->want.qos = 1;
	s->want.retain = true;
	s->want.topic = S(TOPIC, sizeof TOPIC - 1);
	s->want.origin = B(CLIENT2, 1);
	s->want.payload = B((const uint8_t *)"\x00\xff", 2);

	/* PR_SESSION */
	precord_session(&e, CLIENT, sizeof CLIENT, 0xfedcba98u, 5, 0x1122334455667788ull, 0xbeef);
	s = keep("session offline", PR_SESSION, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.expiry_s = 0xfedcba98u;
	s->want.version = 5;
	s->want.wall_ms = 0x1122334455667788ull;
	s->want.shard = 0xbeef;
	precord_session(&e, CLIENT2, 1, UINT32_MAX, 4, 0, PR_SHARD_ALL);
	s = keep("session online", PR_SESSION, &e);
	s->want.client = S(CLIENT2, 1);
	s->want.expiry_s = UINT32_MAX;
	s->want.version = 4;
	s->want.shard = PR_SHARD_ALL;

	/* PR_SESSION_END, PR_WILL_END */
	precord_client(&e, CLIENT, sizeof CLIENT);
	s = keep("session end", PR_SESSION_END, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	precord_client(&e, CLIENT, sizeof CLIENT);
	s = keep("will end", PR_WILL_END, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);

	/* PR_OFFLINE */
	precord_offline(&e, CLIENT, sizeof CLIENT, 0x0102030405060708ull, 0x0a0b0c0du);
	s = keep("offline", PR_OFFLINE, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.wall_ms = 0x0102030405060708ull;
	s->want.expiry_s = 0x0a0b0c0du;

	/* PR_SUB: shared with every option set, then plain with none */
	struct sub_opts_rec o = { 2, 1, 1, 2, 268435455u };
	precord_sub(&e, CLIENT, sizeof CLIENT, GROUP, sizeof GROUP - 1, FILTER, sizeof FILTER - 1,
		    &o);
	s = keep("sub shared", PR_SUB, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.group = S(GROUP, sizeof GROUP - 1);
	s->want.filter = S(FILTER, sizeof FILTER - 1);
	s->want.opts = o;
	struct sub_opts_rec o2 = { 0, 0, 0, 0, 0 };
	precord_sub(&e, CLIENT2, 1, NULL, 0, (const uint8_t *)"#", 1, &o2);
	s = keep("sub plain", PR_SUB, &e);
	s->want.client = S(CLIENT2, 1);
	s->want.filter = S((const uint8_t *)"#", 1);
	struct sub_opts_rec o3 = { 1, 0, 1, 1, 0x00010203u };
	precord_sub(&e, CLIENT, sizeof CLIENT, NULL, 0, FILTER, sizeof FILTER - 1, &o3);
	s = keep("sub rap rh1", PR_SUB, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.filter = S(FILTER, sizeof FILTER - 1);
	s->want.opts = o3;

	/* PR_UNSUB */
	precord_unsub(&e, CLIENT, sizeof CLIENT, GROUP, sizeof GROUP - 1, FILTER,
		      sizeof FILTER - 1);
	s = keep("unsub shared", PR_UNSUB, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.group = S(GROUP, sizeof GROUP - 1);
	s->want.filter = S(FILTER, sizeof FILTER - 1);
	precord_unsub(&e, CLIENT2, 1, NULL, 0, (const uint8_t *)"a/b", 3);
	s = keep("unsub plain", PR_UNSUB, &e);
	s->want.client = S(CLIENT2, 1);
	s->want.filter = S((const uint8_t *)"a/b", 3);

	/* PR_ENQ with 0 .. 4 subscription ids */
	static const uint32_t ids[4] = { 0x0fffffffu, 1, 0x00abcdefu, 0x01020304u };
	static const char *enq_names[5] = { "enq 0 ids", "enq 1 id", "enq 2 ids", "enq 3 ids",
					    "enq 4 ids" };
	for (uint8_t n = 0; n <= 4; n++) {
		uint8_t qos = (uint8_t)(1 + n % 2), state = (uint8_t)(n % 3);
		precord_enq(&e, CLIENT, sizeof CLIENT, 0x8877665544332211ull + n, qos, n & 1, ids,
			    n, (uint16_t)(0xfedc + n), state);
		s = keep(enq_names[n], PR_ENQ, &e);
		s->want.client = S(CLIENT, sizeof CLIENT);
		s->want.msg = 0x8877665544332211ull + n;
		s->want.qos = qos;
		s->want.retain = n & 1;
		s->want.n_sub_ids = n;
		for (uint8_t i = 0; i < n; i++)
			s->want.sub_ids[i] = ids[i];
		s->want.packet_id = (uint16_t)(0xfedc + n);
		s->want.state = state;
	}

	/* PR_ACK, PR_SENT, PR_REL */
	const uint8_t ref_types[3] = { PR_ACK, PR_SENT, PR_REL };
	static const char *ref_names[3] = { "ack", "sent", "rel" };
	for (int i = 0; i < 3; i++) {
		precord_msgref(&e, CLIENT, sizeof CLIENT, 0xa1b2c3d4e5f60718ull + (uint64_t)i,
			       (uint16_t)(0x8001 + i));
		s = keep(ref_names[i], ref_types[i], &e);
		s->want.client = S(CLIENT, sizeof CLIENT);
		s->want.msg = 0xa1b2c3d4e5f60718ull + (uint64_t)i;
		s->want.packet_id = (uint16_t)(0x8001 + i);
	}

	/* PR_Q2IN, PR_Q2REL */
	precord_pid(&e, CLIENT, sizeof CLIENT, 0xabcd);
	s = keep("q2in", PR_Q2IN, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.packet_id = 0xabcd;
	precord_pid(&e, CLIENT2, 1, 65535);
	s = keep("q2rel", PR_Q2REL, &e);
	s->want.client = S(CLIENT2, 1);
	s->want.packet_id = 65535;

	/* PR_WILL */
	precord_will(&e, CLIENT, sizeof CLIENT, 0x01000203u, 0x0f1e2d3c4b5a6978ull, 2, true, TOPIC,
		     sizeof TOPIC - 1, PROPS, sizeof PROPS, big, BIG_PAYLOAD);
	s = keep("will full", PR_WILL, &e);
	s->want.client = S(CLIENT, sizeof CLIENT);
	s->want.delay_s = 0x01000203u;
	s->want.expiry_wall_ms = 0x0f1e2d3c4b5a6978ull;
	s->want.qos = 2;
	s->want.retain = true;
	s->want.topic = S(TOPIC, sizeof TOPIC - 1);
	s->want.props = B(PROPS, sizeof PROPS);
	s->want.payload = B(big, BIG_PAYLOAD);
	precord_will(&e, CLIENT2, 1, 0, 0, 0, false, (const uint8_t *)"w", 1, NULL, 0, NULL, 0);
	s = keep("will minimal", PR_WILL, &e);
	s->want.client = S(CLIENT2, 1);
	s->want.topic = S((const uint8_t *)"w", 1);

	/* PR_SNAP_BEGIN, PR_SNAP_END (empty, as snapshot.c writes it), PR_ROUTE */
	precord_u64(&e, 0x7766554433221100ull);
	s = keep("snap begin", PR_SNAP_BEGIN, &e);
	s->want.wall_ms = 0x7766554433221100ull;
	precord_u64(&e, 0);
	e.len = 0;
	keep("snap end", PR_SNAP_END, &e);
	precord_route(&e, 0x1029384756afbecdull, 0x0203);
	s = keep("route", PR_ROUTE, &e);
	s->want.msg = 0x1029384756afbecdull;
	s->want.shard = 0x0203;
	precord_route(&e, 1, PR_SHARD_ALL);
	s = keep("route all", PR_ROUTE, &e);
	s->want.msg = 1;
	s->want.shard = PR_SHARD_ALL;

	penc_free(&e);
}

static int setup_samples(void **state)
{
	(void)state;
	n_samples = 0;
	build_samples();
	return 0;
}

static int free_samples(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_samples; i++)
		free(samples[i].bytes);
	n_samples = 0;
	return 0;
}

/* ---- checks ------------------------------------------------------------------------ */

/* A view must hold the wanted bytes and point inside the decoded buffer. */
static void same_view(const char *what, const char *field, const uint8_t *wp, size_t wlen,
		      const uint8_t *gp, size_t glen, const uint8_t *buf, size_t len)
{
	if (glen != wlen)
		fail_msg("%s: %s has length %zu, want %zu", what, field, glen, wlen);
	if (!wlen)
		return;
	if (!gp || gp < buf || gp + glen > buf + len)
		fail_msg("%s: %s does not point into the record", what, field);
	if (memcmp(gp, wp, wlen) != 0)
		fail_msg("%s: %s differs", what, field);
}

static void same_record(const char *what, const struct precord *w, const struct precord *g,
			const uint8_t *buf, size_t len)
{
#define SAME_INT(f)                                                                           \
	do {                                                                                  \
		if ((uint64_t)(g->f) != (uint64_t)(w->f))                                     \
			fail_msg("%s: " #f " is %llu, want %llu", what,                       \
				 (unsigned long long)(g->f), (unsigned long long)(w->f));     \
	} while (0)
	SAME_INT(type);
	SAME_INT(msg);
	SAME_INT(wall_ms);
	SAME_INT(expiry_s);
	SAME_INT(version);
	SAME_INT(shard);
	SAME_INT(opts.qos);
	SAME_INT(opts.no_local);
	SAME_INT(opts.rap);
	SAME_INT(opts.rh);
	SAME_INT(opts.sub_id);
	SAME_INT(qos);
	SAME_INT(retain);
	SAME_INT(n_sub_ids);
	for (int i = 0; i < 4; i++)
		SAME_INT(sub_ids[i]);
	SAME_INT(packet_id);
	SAME_INT(state);
	SAME_INT(delay_s);
	SAME_INT(flags);
	SAME_INT(expiry_wall_ms);
#undef SAME_INT
	same_view(what, "client", w->client.p, w->client.len, g->client.p, g->client.len, buf,
		  len);
	same_view(what, "group", w->group.p, w->group.len, g->group.p, g->group.len, buf, len);
	same_view(what, "filter", w->filter.p, w->filter.len, g->filter.p, g->filter.len, buf,
		  len);
	same_view(what, "topic", w->topic.p, w->topic.len, g->topic.p, g->topic.len, buf, len);
	same_view(what, "props", w->props.p, w->props.len, g->props.p, g->props.len, buf, len);
	same_view(what, "origin", w->origin.p, w->origin.len, g->origin.p, g->origin.len, buf,
		  len);
	same_view(what, "payload", w->payload.p, w->payload.len, g->payload.p, g->payload.len,
		  buf, len);
}

/* Decodes from a heap copy of exactly len bytes (ASan sees the bounds). */
static enum mote_err decode_exact(uint8_t type, const uint8_t *src, size_t len,
				  struct precord *r, uint8_t **copy)
{
	uint8_t *buf = malloc(len); /* malloc(0) too: no byte of it may be read */
	assert_true(buf != NULL || len == 0);
	if (len)
		memcpy(buf, src, len);
	enum mote_err err = precord_decode(type, buf, len, r);
	if (copy)
		*copy = buf;
	else
		free(buf);
	return err;
}

/* ---- tests --------------------------------------------------------------------------- */

static void every_encoder_round_trips(void **state)
{
	(void)state;
	bool type_seen[PR_TYPE_MAX + 1] = { false };
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		struct precord r;
		uint8_t *buf;
		enum mote_err err = decode_exact(s->type, s->bytes, s->len, &r, &buf);
		if (err != MOTE_OK)
			fail_msg("%s: decode says %s", s->name, mote_strerror(err));
		same_record(s->name, &s->want, &r, buf, s->len);
		free(buf);
		type_seen[s->type] = true;
	}
	for (unsigned t = 1; t <= PR_TYPE_MAX; t++)
		if (!type_seen[t])
			fail_msg("no sample of type %u", t);
}

/* Re-encoding a decoded record gives the same bytes (nothing is lost). */
static void decoded_records_encode_to_the_same_bytes(void **state)
{
	(void)state;
	struct penc e = { 0 };
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		struct precord r;
		assert_int_equal(precord_decode(s->type, s->bytes, s->len, &r), MOTE_OK);
		switch (r.type) {
		case PR_MSG:
			precord_msg(&e, r.flags, r.expiry_wall_ms, r.qos, r.retain, r.topic.p,
				    r.topic.len, r.props.p, r.props.len, r.origin.p,
				    (uint16_t)r.origin.len, r.payload.p, r.payload.len);
			break;
		case PR_SESSION:
			precord_session(&e, r.client.p, r.client.len, r.expiry_s, r.version,
					r.wall_ms, r.shard);
			break;
		case PR_SESSION_END:
		case PR_WILL_END:
			precord_client(&e, r.client.p, r.client.len);
			break;
		case PR_OFFLINE:
			precord_offline(&e, r.client.p, r.client.len, r.wall_ms, r.expiry_s);
			break;
		case PR_SUB:
			precord_sub(&e, r.client.p, r.client.len, r.group.p, r.group.len, r.filter.p,
				    r.filter.len, &r.opts);
			break;
		case PR_UNSUB:
			precord_unsub(&e, r.client.p, r.client.len, r.group.p, r.group.len,
				      r.filter.p, r.filter.len);
			break;
		case PR_ENQ:
			precord_enq(&e, r.client.p, r.client.len, r.msg, r.qos, r.retain, r.sub_ids,
				    r.n_sub_ids, r.packet_id, r.state);
			break;
		case PR_ACK:
		case PR_SENT:
		case PR_REL:
			precord_msgref(&e, r.client.p, r.client.len, r.msg, r.packet_id);
			break;
		case PR_Q2IN:
		case PR_Q2REL:
			precord_pid(&e, r.client.p, r.client.len, r.packet_id);
			break;
		case PR_WILL:
			precord_will(&e, r.client.p, r.client.len, r.delay_s, r.expiry_wall_ms, r.qos,
				     r.retain, r.topic.p, r.topic.len, r.props.p, r.props.len,
				     r.payload.p, r.payload.len);
			break;
		case PR_SNAP_BEGIN:
			precord_u64(&e, r.wall_ms);
			break;
		case PR_SNAP_END:
			e.len = 0;
			break;
		case PR_ROUTE:
			precord_route(&e, r.msg, r.shard);
			break;
		default:
			fail_msg("%s: type %u", s->name, r.type);
		}
		assert_false(e.oom);
		if (e.len != s->len || (s->len && memcmp(e.p, s->bytes, s->len) != 0))
			fail_msg("%s: re-encoded bytes differ", s->name);
	}
	penc_free(&e);
}

static void every_truncation_and_extension_is_malformed(void **state)
{
	(void)state;
	uint64_t decodes = 0;
	for (size_t i = 0; i < n_samples; i++) {
		const struct sample *s = &samples[i];
		struct precord r;
		/* Every cut of a record up to 4 KiB; of a longer one (the 70 KB
		 * payload) every cut within 4 KiB of either end and every 61st
		 * in between: those are all the same cut of an opaque body,
		 * and each costs an exact-size copy (slow under the sanitizers). */
		for (size_t cut = 0; cut < s->len;
		     cut += (cut < EDGE || s->len - cut <= EDGE) ? 1 : STRIDE) {
			enum mote_err err = decode_exact(s->type, s->bytes, cut, &r, NULL);
			if (err != MOTE_EMALFORMED)
				fail_msg("%s cut to %zu of %zu bytes: %s", s->name, cut, s->len,
					 mote_strerror(err));
			decodes++;
		}
		uint8_t *longer = malloc(s->len + 1);
		if (s->len)
			memcpy(longer, s->bytes, s->len);
		for (unsigned extra = 0; extra < 256; extra += 85) {
			longer[s->len] = (uint8_t)extra;
			enum mote_err err = decode_exact(s->type, longer, s->len + 1, &r, NULL);
			if (err != MOTE_EMALFORMED)
				fail_msg("%s with one byte more (%u): %s", s->name, extra,
					 mote_strerror(err));
		}
		free(longer);
	}
	/* The sweep did reach into the big payload's body. */
	assert_true(decodes > 2 * EDGE + BIG_PAYLOAD / STRIDE);
}

/* Each case is a record the encoders can write but the decoder must refuse. */
static void expect_malformed(const char *what, uint8_t type, const struct penc *e)
{
	assert_false(e->oom);
	struct precord r;
	enum mote_err err = decode_exact(type, e->p, e->len, &r, NULL);
	if (err != MOTE_EMALFORMED)
		fail_msg("%s: decode says %s", what, mote_strerror(err));
}

static void out_of_range_values_are_malformed(void **state)
{
	(void)state;
	struct penc e = { 0 };
	const uint8_t *c = CLIENT;
	const uint16_t cl = sizeof CLIENT;
	const uint8_t *t = TOPIC;
	const uint16_t tl = sizeof TOPIC - 1;

	/* messages */
	precord_msg(&e, 0, 0, 3, false, t, tl, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("msg qos 3", PR_MSG, &e);
	precord_msg(&e, 0, 0, 0xff, false, t, tl, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("msg qos 255", PR_MSG, &e);
	precord_msg(&e, 4, 0, 1, false, t, tl, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("msg flags 4", PR_MSG, &e);
	precord_msg(&e, 0x80, 0, 1, false, t, tl, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("msg flags 0x80", PR_MSG, &e);
	precord_msg(&e, 0, 0, 1, false, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("msg empty topic", PR_MSG, &e);

	/* empty client ids, in every record that names a client */
	precord_session(&e, NULL, 0, 10, 5, 0, 0);
	expect_malformed("session empty client", PR_SESSION, &e);
	precord_client(&e, NULL, 0);
	expect_malformed("session end empty client", PR_SESSION_END, &e);
	expect_malformed("will end empty client", PR_WILL_END, &e);
	precord_offline(&e, NULL, 0, 1, 1);
	expect_malformed("offline empty client", PR_OFFLINE, &e);
	struct sub_opts_rec o = { 1, 0, 0, 0, 0 };
	precord_sub(&e, NULL, 0, NULL, 0, (const uint8_t *)"a", 1, &o);
	expect_malformed("sub empty client", PR_SUB, &e);
	precord_unsub(&e, NULL, 0, NULL, 0, (const uint8_t *)"a", 1);
	expect_malformed("unsub empty client", PR_UNSUB, &e);
	precord_enq(&e, NULL, 0, 1, 1, false, NULL, 0, 0, 0);
	expect_malformed("enq empty client", PR_ENQ, &e);
	const uint8_t ref_types[3] = { PR_ACK, PR_SENT, PR_REL };
	for (int i = 0; i < 3; i++) {
		precord_msgref(&e, NULL, 0, 1, 1);
		expect_malformed("msgref empty client", ref_types[i], &e);
	}
	precord_pid(&e, NULL, 0, 1);
	expect_malformed("q2in empty client", PR_Q2IN, &e);
	expect_malformed("q2rel empty client", PR_Q2REL, &e);
	precord_will(&e, NULL, 0, 0, 0, 1, false, t, tl, NULL, 0, NULL, 0);
	expect_malformed("will empty client", PR_WILL, &e);

	/* subscriptions */
	o = (struct sub_opts_rec){ 3, 0, 0, 0, 0 };
	precord_sub(&e, c, cl, NULL, 0, FILTER, sizeof FILTER - 1, &o);
	expect_malformed("sub qos 3", PR_SUB, &e);
	o = (struct sub_opts_rec){ 1, 0, 0, 3, 0 };
	precord_sub(&e, c, cl, NULL, 0, FILTER, sizeof FILTER - 1, &o);
	expect_malformed("sub retain handling 3", PR_SUB, &e);
	o = (struct sub_opts_rec){ 1, 1, 1, 60, 0 }; /* option byte 0xf3 */
	precord_sub(&e, c, cl, NULL, 0, FILTER, sizeof FILTER - 1, &o);
	expect_malformed("sub high option bits", PR_SUB, &e);
	o = (struct sub_opts_rec){ 1, 0, 0, 0, 0 };
	precord_sub(&e, c, cl, GROUP, sizeof GROUP - 1, NULL, 0, &o);
	expect_malformed("sub empty filter", PR_SUB, &e);
	precord_unsub(&e, c, cl, GROUP, sizeof GROUP - 1, NULL, 0);
	expect_malformed("unsub empty filter", PR_UNSUB, &e);

	/* queued deliveries */
	const uint32_t five[5] = { 1, 2, 3, 4, 5 };
	precord_enq(&e, c, cl, 7, 1, false, five, 5, 0, 0);
	expect_malformed("enq 5 sub ids", PR_ENQ, &e);
	precord_enq(&e, c, cl, 7, 1, false, five, 0, 0, 0);
	e.p[2 + cl + 8 + 2] = 0xff; /* the count byte: 255 ids, none there */
	expect_malformed("enq 255 sub ids", PR_ENQ, &e);
	precord_enq(&e, c, cl, 7, 0, false, NULL, 0, 0, 0);
	expect_malformed("enq qos 0", PR_ENQ, &e);
	precord_enq(&e, c, cl, 7, 3, false, NULL, 0, 0, 0);
	expect_malformed("enq qos 3", PR_ENQ, &e);
	precord_enq(&e, c, cl, 7, 2, false, NULL, 0, 0, 3);
	expect_malformed("enq state 3", PR_ENQ, &e);

	/* wills */
	precord_will(&e, c, cl, 0, 0, 3, false, t, tl, NULL, 0, NULL, 0);
	expect_malformed("will qos 3", PR_WILL, &e);
	precord_will(&e, c, cl, 0, 0, 1, false, NULL, 0, NULL, 0, NULL, 0);
	expect_malformed("will empty topic", PR_WILL, &e);

	/* types nobody writes */
	precord_client(&e, c, cl);
	const uint8_t bad_types[] = { 0, PR_TYPE_MAX + 1, 100, 255 };
	for (size_t i = 0; i < sizeof bad_types; i++)
		expect_malformed("unknown type", bad_types[i], &e);
	e.len = 0;
	expect_malformed("unknown type, empty", 0, &e);

	/* lengths that point past the end */
	precord_client(&e, c, cl);
	e.p[0] = (uint8_t)(cl + 1);
	expect_malformed("client length one too long", PR_SESSION_END, &e);
	precord_msg(&e, 0, 0, 1, false, t, tl, NULL, 0, NULL, 0, (const uint8_t *)"xy", 2);
	e.p[e.len - 3] = 0x80; /* payload length 0x80000002 */
	expect_malformed("payload length 2 GiB", PR_MSG, &e);
	penc_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_encoder_round_trips),
		cmocka_unit_test(decoded_records_encode_to_the_same_bytes),
		cmocka_unit_test(every_truncation_and_extension_is_malformed),
		cmocka_unit_test(out_of_range_values_are_malformed),
	};
	return cmocka_run_group_tests(tests, setup_samples, free_samples);
}
