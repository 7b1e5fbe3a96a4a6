/*
 * replay.c - start-up: open the journal, rebuild sessions, subscriptions,
 * queues, in-flight state, retained messages and wills from its records,
 * write a fresh snapshot and drop the old log (persist.h, precord.h).
 *
 * Records are first collected in memory (journal_open replays them once, in
 * order), because only the whole log says where to start: at the last
 * complete snapshot (PR_SNAP_BEGIN .. PR_SNAP_END), everything before it is
 * superseded. Then they are applied in LSN order to the shards, on this
 * thread, before any shard thread runs. Each session goes to its home shard
 * in this run, whatever --threads was before.
 *
 * A record that does not decode, or names a session or message that does
 * not exist, is skipped and counted: the log is trusted to be ours, but a
 * damaged one must not stop the hub (issue: recover what is intact).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker_int.h"

struct rec_ref {
	uint64_t lsn;
	size_t off;
	uint32_t len;
	uint8_t type;
};

struct replay_log {
	struct rec_ref *recs;
	size_t n, cap;
	uint8_t *bytes;
	size_t len, bcap;
	bool oom;
};

/* lsn -> message, appended in increasing LSN order: binary search. */
struct msg_map {
	uint64_t *lsn;
	struct msg **m;
	size_t n, cap;
};

struct will_ent {
	struct will_ent *next;
	struct msg *m;
	uint32_t delay_s;
	uint16_t id_len;
	uint8_t id[];
};

struct replay {
	struct broker *b0;
	struct msg_map msgs;
	struct will_ent *wills;
	uint64_t skipped;
};

static enum mote_err collect(void *arg, uint64_t lsn, uint8_t type, const void *payload,
			     size_t len)
{
	struct replay_log *log = arg;
	if (log->n == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 1024;
		struct rec_ref *r = realloc(log->recs, cap * sizeof *r);
		if (!r)
			return MOTE_ENOMEM;
		log->recs = r;
		log->cap = cap;
	}
	if (log->len + len > log->bcap) {
		size_t cap = log->bcap ? log->bcap : 65536;
		while (cap < log->len + len)
			cap *= 2;
		uint8_t *p = realloc(log->bytes, cap);
		if (!p)
			return MOTE_ENOMEM;
		log->bytes = p;
		log->bcap = cap;
	}
	if (len)
		memcpy(log->bytes + log->len, payload, len);
	log->recs[log->n++] = (struct rec_ref){ lsn, log->len, (uint32_t)len, type };
	log->len += len;
	return MOTE_OK;
}

static void log_free(struct replay_log *log)
{
	free(log->recs);
	free(log->bytes);
	memset(log, 0, sizeof *log);
}

static enum mote_err map_put(struct msg_map *mm, uint64_t lsn, struct msg *m)
{
	if (mm->n == mm->cap) {
		size_t cap = mm->cap ? mm->cap * 2 : 256;
		uint64_t *l = realloc(mm->lsn, cap * sizeof *l);
		if (!l)
			return MOTE_ENOMEM;
		mm->lsn = l;
		struct msg **p = realloc(mm->m, cap * sizeof *p);
		if (!p)
			return MOTE_ENOMEM;
		mm->m = p;
		mm->cap = cap;
	}
	mm->lsn[mm->n] = lsn;
	mm->m[mm->n++] = m; /* the map's reference */
	return MOTE_OK;
}

static struct msg *map_get(const struct msg_map *mm, uint64_t lsn)
{
	size_t lo = 0, hi = mm->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (mm->lsn[mid] < lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mm->n && mm->lsn[lo] == lsn ? mm->m[lo] : NULL;
}

static struct broker *home(struct replay *rp, const struct mqtt_str *id)
{
	struct broker *b0 = rp->b0;
	return b0->shards[shard_of_id(b0, id->p, id->len)];
}

static struct session *find(struct replay *rp, const struct mqtt_str *id)
{
	return session_find(home(rp, id), id->p, id->len);
}

static uint64_t mono_expiry(uint64_t wall)
{
	if (!wall)
		return 0;
	uint64_t now = mote_wall_ms(), mono = mote_mono_ms();
	return wall > now ? mono + (wall - now) : 1; /* 1: expired already */
}

static struct msg *make_msg(struct replay *rp, const struct precord *r)
{
	uint64_t origin = 0;
	if (r->origin.len) {
		struct mqtt_str o = { r->origin.p, (uint16_t)r->origin.len };
		struct session *s = find(rp, &o);
		if (s)
			origin = s->uid;
	}
	return msg_new(NULL, r->topic.p, r->topic.len, r->props.p, r->props.len, r->payload.p,
		       r->payload.len, r->qos, r->retain, mono_expiry(r->expiry_wall_ms), origin);
}

static void route_all(struct replay *rp, struct msg *m, uint16_t only_shard)
{
	struct broker *b0 = rp->b0;
	for (uint32_t k = 0; k < b0->nshards; k++) {
		struct broker *b = b0->shards[k];
		b->replay_route_shard = only_shard;
		route_local(b, m);
		b->replay_route_shard = PR_SHARD_ALL;
	}
}

static void will_drop(struct replay *rp, const struct mqtt_str *id)
{
	for (struct will_ent **pp = &rp->wills; *pp; pp = &(*pp)->next) {
		struct will_ent *w = *pp;
		if (w->id_len == id->len && memcmp(w->id, id->p, id->len) == 0) {
			*pp = w->next;
			msg_unref(w->m);
			free(w);
			return;
		}
	}
}

static enum mote_err apply(struct replay *rp, uint64_t lsn, const struct precord *r)
{
	struct session *s = NULL;
	if (r->client.len && r->type != PR_SESSION && r->type != PR_WILL &&
	    r->type != PR_WILL_END) {
		s = find(rp, &r->client);
		if (!s) {
			rp->skipped++;
			return MOTE_OK;
		}
	}
	if ((r->type == PR_MSG || r->type == PR_WILL) &&
	    !mqtt_topic_name_valid(r->topic.p, r->topic.len)) {
		rp->skipped++; /* a record we did not write: never route it */
		return MOTE_OK;
	}
	switch (r->type) {
	case PR_MSG: {
		struct msg *m = make_msg(rp, r);
		if (!m)
			return MOTE_ENOMEM;
		m->plsn = lsn;
		if (map_put(&rp->msgs, lsn, m) != MOTE_OK) {
			msg_unref(m);
			return MOTE_ENOMEM;
		}
		if (r->flags & PR_MSG_ROUTE) {
			route_all(rp, m, PR_SHARD_ALL);
		} else if (r->flags & PR_MSG_RETAINED) {
			for (uint32_t k = 0; k < rp->b0->nshards; k++)
				if (retain_set(rp->b0->shards[k]->retained, m) != MOTE_OK)
					return MOTE_ENOMEM;
		}
		return MOTE_OK;
	}
	case PR_SESSION: {
		struct broker *b = home(rp, &r->client);
		s = session_find(b, r->client.p, r->client.len);
		if (!s && session_create(b, r->client.p, r->client.len, &s) != MOTE_OK)
			return MOTE_ENOMEM;
		s->expiry_s = r->expiry_s;
		s->version = r->version;
		s->offline_wall_ms = r->wall_ms;
		s->replay_shard = r->shard;
		s->persisted = true; /* its replayed subscriptions count as persistent */
		return MOTE_OK;
	}
	case PR_SESSION_END:
		session_destroy(s);
		return MOTE_OK;
	case PR_OFFLINE:
		s->offline_wall_ms = r->wall_ms;
		s->expiry_s = r->expiry_s;
		return MOTE_OK;
	case PR_SUB: {
		struct sub_opts o = { r->opts.qos, r->opts.no_local, r->opts.rap, r->opts.rh,
				      r->opts.sub_id };
		bool existed;
		if (!mqtt_topic_filter_valid(r->filter.p, r->filter.len)) {
			rp->skipped++;
			return MOTE_OK;
		}
		return session_subscribe(s, &r->group, &r->filter, &o, &existed);
	}
	case PR_UNSUB:
		session_unsubscribe(s, &r->group, &r->filter);
		return MOTE_OK;
	case PR_ENQ: {
		struct msg *m = map_get(&rp->msgs, r->msg);
		if (!m) {
			rp->skipped++;
			return MOTE_OK;
		}
		deliver_restore(s, m, r->qos, r->retain, r->sub_ids, r->n_sub_ids, r->packet_id,
				r->state);
		return MOTE_OK;
	}
	case PR_ACK:
		deliver_forget(s, r->msg);
		return MOTE_OK;
	case PR_SENT:
		deliver_mark(s, r->msg, r->packet_id, DLV_PUBLISH_SENT);
		return MOTE_OK;
	case PR_REL:
		deliver_mark(s, r->msg, r->packet_id, DLV_PUBREL_SENT);
		return MOTE_OK;
	case PR_Q2IN:
		return session_qos2_hold(s, r->packet_id);
	case PR_Q2REL:
		session_qos2_release(s, r->packet_id);
		return MOTE_OK;
	case PR_WILL: {
		will_drop(rp, &r->client);
		struct msg *m = make_msg(rp, r);
		struct will_ent *w = malloc(sizeof *w + r->client.len);
		if (!m || !w) {
			msg_unref(m);
			free(w);
			return MOTE_ENOMEM;
		}
		w->m = m;
		w->delay_s = r->delay_s;
		w->id_len = r->client.len;
		memcpy(w->id, r->client.p, r->client.len);
		w->next = rp->wills;
		rp->wills = w;
		return MOTE_OK;
	}
	case PR_WILL_END:
		will_drop(rp, &r->client);
		return MOTE_OK;
	case PR_ROUTE: {
		struct msg *m = map_get(&rp->msgs, r->msg);
		if (m)
			route_all(rp, m, r->shard);
		else
			rp->skipped++;
		return MOTE_OK;
	}
	default: /* SNAP_BEGIN, SNAP_END */
		return MOTE_OK;
	}
}

/* Expiry as of now, the wills, the windows: what replay cannot do record by
 * record. */
static void finish_sessions(struct replay *rp, uint64_t *sessions, uint64_t *queued)
{
	struct broker *b0 = rp->b0;
	uint64_t now = mote_wall_ms();
	for (uint32_t k = 0; k < b0->nshards; k++) {
		struct broker *b = b0->shards[k];
		for (uint32_t i = 0; i < b->sessions.cap; i++) {
			struct session *s = b->sessions.slots[i];
			while (s) {
				struct session *next = s->hnext;
				uint64_t off = s->offline_wall_ms ? s->offline_wall_ms : now;
				/* In ms: whole seconds would give each restart up
				 * to a second more of life. */
				uint64_t gone_ms = now > off ? now - off : 0;
				uint64_t life_ms = (uint64_t)s->expiry_s * 1000u;
				if (s->expiry_s == 0 ||
				    (s->expiry_s != SESSION_NEVER_EXPIRES && gone_ms >= life_ms)) {
					session_destroy(s); /* expired while we were down */
				} else {
					deliver_restore_finish(s);
					s->offline_wall_ms = off;
					if (s->expiry_s != SESSION_NEVER_EXPIRES)
						loop_timer_start(b->loop, &s->expiry_timer,
								 life_ms - gone_ms);
					(*sessions)++;
					*queued += s->queue.count + s->inflight_count;
				}
				s = next;
			}
		}
	}
	/* Wills of connections the crash (or shutdown) ended: a session that
	 * lives on gets its will back with the delay; otherwise it goes now. */
	while (rp->wills) {
		struct will_ent *w = rp->wills;
		rp->wills = w->next;
		struct mqtt_str id = { w->id, w->id_len };
		struct session *s = find(rp, &id);
		if (s && w->delay_s) {
			s->will = w->m;
			s->will_delay_s = w->delay_s;
			s->will_persisted = true;
			loop_timer_start(home(rp, &id)->loop, &s->will_timer,
					 (uint64_t)w->delay_s * 1000u);
		} else {
			route_all(rp, w->m, PR_SHARD_ALL);
			msg_unref(w->m);
		}
		free(w);
	}
}

enum mote_err replay_apply(struct broker *b0, struct replay_log *log, uint64_t *sessions,
			   uint64_t *queued)
{
	struct replay rp = { .b0 = b0 };
	/* Start at the last complete snapshot. */
	size_t start = 0, begin = SIZE_MAX;
	for (size_t i = 0; i < log->n; i++) {
		if (log->recs[i].type == PR_SNAP_BEGIN)
			begin = i;
		else if (log->recs[i].type == PR_SNAP_END && begin != SIZE_MAX)
			start = begin;
	}
	enum mote_err err = MOTE_OK;
	bool in_broken_snapshot = false;
	for (size_t i = start; i < log->n && err == MOTE_OK; i++) {
		const struct rec_ref *rr = &log->recs[i];
		if (rr->type == PR_SNAP_BEGIN)
			in_broken_snapshot = i != start; /* a later one never ended */
		if (in_broken_snapshot) {
			rp.skipped++;
			continue;
		}
		struct precord r;
		/* Only empty payloads so far: no buffer (and no pointer sum on NULL). */
		const uint8_t *payload = log->bytes ? log->bytes + rr->off : (const uint8_t *)"";
		if (precord_decode(rr->type, payload, rr->len, &r) != MOTE_OK) {
			rp.skipped++;
			continue;
		}
		err = apply(&rp, rr->lsn, &r);
	}
	if (err == MOTE_OK)
		finish_sessions(&rp, sessions, queued);
	while (rp.wills) {
		struct will_ent *w = rp.wills;
		rp.wills = w->next;
		msg_unref(w->m);
		free(w);
	}
	for (size_t i = 0; i < rp.msgs.n; i++)
		msg_unref(rp.msgs.m[i]);
	free(rp.msgs.lsn);
	free(rp.msgs.m);
	if (rp.skipped)
		MOTE_WARN("broker", "event=journal_records_skipped count=%llu why=\"damaged or "
				    "naming a session that is gone\"",
			  (unsigned long long)rp.skipped);
	return err;
}

/* ---- lifetime ------------------------------------------------------------------------ */

enum mote_err persist_open(struct broker *b0)
{
	struct shared_state *sh = b0->shared;
	const struct broker_config *cfg = &b0->cfg;
	char dir[4096];
	if (snprintf(dir, sizeof dir, "%s", cfg->persist_dir) >= (int)sizeof dir)
		return MOTE_EINVAL;
	for (uint32_t k = 0; k < b0->nshards; k++) {
		enum mote_err err = persist_shard_new(b0->shards[k]);
		if (err != MOTE_OK)
			return err;
		b0->shards[k]->replaying = true;
		b0->shards[k]->replay_route_shard = PR_SHARD_ALL;
	}
	struct jcommit_opts o = {
		.journal = { .dir = dir,
			     .sync = cfg->fsync == BROKER_FSYNC_ALWAYS  ? JOURNAL_SYNC_ALWAYS
				     : cfg->fsync == BROKER_FSYNC_BATCH ? JOURNAL_SYNC_BATCH
									: JOURNAL_SYNC_NONE,
			     .batch_ms = cfg->fsync_batch_ms ? cfg->fsync_batch_ms : 1,
			     .segment_bytes = cfg->journal_segment_bytes },
		.fault_file = cfg->journal_fault_file,
	};
	struct replay_log log = { 0 };
	struct journal_recovery rec = { 0 };
	uint64_t t0 = mote_mono_ms();
	enum mote_err err = jcommit_open(&o, collect, &log, &rec, &sh->jc);
	if (err != MOTE_OK) {
		log_free(&log);
		MOTE_ERROR("broker", "event=journal_open_failed dir=%s why=\"%s\"", dir,
			   mote_strerror(err));
		return err;
	}
	uint64_t sessions = 0, queued = 0;
	err = replay_apply(b0, &log, &sessions, &queued);
	log_free(&log);
	if (err != MOTE_OK)
		return err;
	if (pthread_barrier_init(&sh->pause_in, NULL, b0->nshards) != 0)
		return MOTE_ENOMEM;
	if (pthread_barrier_init(&sh->pause_out, NULL, b0->nshards) != 0) {
		pthread_barrier_destroy(&sh->pause_in);
		return MOTE_ENOMEM;
	}
	sh->pause_ready = true;
	for (uint32_t k = 0; k < b0->nshards; k++) {
		b0->shards[k]->replaying = false;
		/* Other shards route to this one only if it says it has subscribers. */
		shard_note_interest(b0->shards[k]);
	}

	/* A fresh snapshot, then the old log can go. */
	uint64_t begin, end, bytes;
	err = snapshot_write(b0, &begin, &end, &bytes);
	if (err == MOTE_OK)
		err = jcommit_flush_sync(sh->jc);
	if (err == MOTE_OK && begin > 1)
		jcommit_release_now(sh->jc, begin - 1);
	if (err != MOTE_OK) {
		MOTE_ERROR("broker", "event=journal_open_failed dir=%s why=\"cannot write the "
				     "start-up snapshot: %s\"",
			   dir, mote_strerror(err));
		return err;
	}
	sh->last_snap_bytes = bytes;
	MOTE_INFO("broker",
		  "event=journal_recovered dir=%s segments=%u records=%llu dropped_bytes=%llu "
		  "damaged_segments=%u sessions=%llu retained=%zu queued=%llu ms=%llu",
		  dir, rec.segments, (unsigned long long)rec.records,
		  (unsigned long long)rec.dropped_bytes, rec.damaged_segments,
		  (unsigned long long)sessions, retain_count(b0->retained),
		  (unsigned long long)queued, (unsigned long long)(mote_mono_ms() - t0));
	err = jcommit_start(sh->jc, persist_notify, b0);
	if (err == MOTE_OK)
		snapshot_start_timer(b0);
	return err;
}

void persist_close(struct shared_state *sh)
{
	if (!sh->jc)
		return;
	jcommit_close(sh->jc); /* writes what the shards handed over */
	sh->jc = NULL;
	if (sh->pause_ready) {
		pthread_barrier_destroy(&sh->pause_in);
		pthread_barrier_destroy(&sh->pause_out);
		sh->pause_ready = false;
	}
}
