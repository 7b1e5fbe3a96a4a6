/*
 * outq.c - segment queue with a byte arena; see outq.h.
 *
 * Invariants: pending == sum of seg lengths; arena segments appear in arena
 * order, so arena_head is the offset of the first arena segment's unsent byte
 * (or arena_len when there is none). When outq_write drains the queue it
 * frees the arena and the segment array, so an idle connection holds no
 * output memory.
 */
#include "broker/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


void outq_init(struct outq *q)
{
	memset(q, 0, sizeof *q);
}

void outq_cache_drain(struct outq_cache *c)
{
	while (c->n_arenas)
		free(c->arenas[--c->n_arenas]);
	while (c->n_segs)
		free(c->segs[--c->n_segs]);
}

static void *cache_take(void **v, uint32_t *n, size_t size)
{
	if (*n > 0)
		return v[--*n];
	return malloc(size);
}

static void cache_give(void **v, uint32_t *n, void *p)
{
	if (*n < OUTQ_CACHE_KEEP)
		v[(*n)++] = p;
	else
		free(p);
}

void outq_free(struct outq *q, struct outq_cache *cache)
{
	for (uint32_t i = 0; i < q->seg_count; i++)
		msg_unref(q->segs[(q->seg_head + i) % q->seg_cap].m);
	if (cache && q->arena && q->arena_cap == OUTQ_BLOCK)
		cache_give(cache->arenas, &cache->n_arenas, q->arena);
	else
		free(q->arena);
	if (cache && q->segs && q->seg_cap == OUTQ_FIRST_SEGS)
		cache_give(cache->segs, &cache->n_segs, q->segs);
	else
		free(q->segs);
	outq_init(q);
}

static struct outq_seg *seg_at(struct outq *q, uint32_t i)
{
	return &q->segs[(q->seg_head + i) % q->seg_cap];
}

static enum mote_err seg_room(struct outq *q, struct outq_cache *cache)
{
	if (q->seg_count < q->seg_cap)
		return MOTE_OK;
	if (q->seg_cap == 0) {
		q->segs = cache ? cache_take(cache->segs, &cache->n_segs,
					     OUTQ_FIRST_SEGS * sizeof *q->segs)
				: malloc(OUTQ_FIRST_SEGS * sizeof *q->segs);
		if (!q->segs)
			return MOTE_ENOMEM;
		q->seg_cap = OUTQ_FIRST_SEGS;
		q->seg_head = 0;
		return MOTE_OK;
	}
	uint32_t cap = q->seg_cap * 2;
	struct outq_seg *s = malloc(cap * sizeof *s);
	if (!s)
		return MOTE_ENOMEM;
	for (uint32_t i = 0; i < q->seg_count; i++)
		s[i] = *seg_at(q, i);
	if (cache && q->seg_cap == OUTQ_FIRST_SEGS)
		cache_give(cache->segs, &cache->n_segs, q->segs);
	else
		free(q->segs);
	q->segs = s;
	q->seg_cap = cap;
	q->seg_head = 0;
	return MOTE_OK;
}

uint8_t *outq_reserve(struct outq *q, struct outq_cache *cache, size_t n)
{
	if (q->pending == 0) /* only reserved bytes were left: start over */
		q->arena_head = q->arena_len = 0;
	if (n > UINT32_MAX - q->arena_len)
		return NULL;
	if (q->arena_len + n > q->arena_cap) {
		/* Compact first: bytes before arena_head are already sent. */
		if (q->arena_head > 0 && q->arena_head >= q->arena_len / 2) {
			uint32_t live = q->arena_len - q->arena_head;
			memmove(q->arena, q->arena + q->arena_head, live);
			for (uint32_t i = 0; i < q->seg_count; i++) {
				struct outq_seg *sg = seg_at(q, i);
				if (!sg->m)
					sg->off -= q->arena_head;
			}
			q->arena_len = live;
			q->arena_head = 0;
		}
		if (q->arena_cap == 0 && n <= OUTQ_BLOCK) {
			q->arena = cache ? cache_take(cache->arenas, &cache->n_arenas, OUTQ_BLOCK)
					 : malloc(OUTQ_BLOCK);
			if (!q->arena)
				return NULL;
			q->arena_cap = OUTQ_BLOCK;
		}
		if (q->arena_len + n > q->arena_cap) {
			size_t cap = q->arena_cap ? q->arena_cap : OUTQ_BLOCK;
			while (cap < q->arena_len + n)
				cap *= 2;
			if (cap > UINT32_MAX)
				return NULL;
			uint8_t *a = realloc(q->arena, cap);
			if (!a)
				return NULL;
			q->arena = a;
			q->arena_cap = (uint32_t)cap;
		}
	}
	return q->arena + q->arena_len;
}

enum mote_err outq_commit(struct outq *q, struct outq_cache *cache, size_t used)
{
	if (used == 0)
		return MOTE_OK;
	/* Extend the last segment when it is the arena bytes just before. */
	if (q->seg_count > 0) {
		struct outq_seg *last = seg_at(q, q->seg_count - 1);
		if (!last->m && last->off + last->len == q->arena_len) {
			last->len += (uint32_t)used;
			q->arena_len += (uint32_t)used;
			q->pending += used;
			return MOTE_OK;
		}
	}
	if (seg_room(q, cache) != MOTE_OK)
		return MOTE_ENOMEM;
	*seg_at(q, q->seg_count++) = (struct outq_seg){ NULL, q->arena_len, (uint32_t)used };
	q->arena_len += (uint32_t)used;
	q->pending += used;
	return MOTE_OK;
}

enum mote_err outq_push_payload(struct outq *q, struct outq_cache *cache, struct msg *m,
				uint32_t off, uint32_t len)
{
	if (len == 0)
		return MOTE_OK;
	if (len <= OUTQ_COPY_MAX) {
		uint8_t *dst = outq_reserve(q, cache, len);
		if (!dst)
			return MOTE_ENOMEM;
		memcpy(dst, msg_payload(m) + off, len);
		return outq_commit(q, cache, len);
	}
	if (seg_room(q, cache) != MOTE_OK)
		return MOTE_ENOMEM;
	*seg_at(q, q->seg_count++) = (struct outq_seg){ msg_ref(m), off, len };
	q->pending += len;
	return MOTE_OK;
}

enum mote_err outq_write(struct outq *q, struct outq_cache *cache, struct net_stream *s,
			 size_t *written)
{
	*written = 0;
	while (q->seg_count > 0) {
		struct iovec iov[OUTQ_IOV];
		int n = 0;
		size_t total = 0;
		for (uint32_t i = 0; i < q->seg_count && n < OUTQ_IOV; i++) {
			struct outq_seg *sg = seg_at(q, i);
			const uint8_t *base = sg->m ? msg_payload(sg->m) : q->arena;
			iov[n].iov_base = (void *)(base + sg->off);
			iov[n].iov_len = sg->len;
			total += sg->len;
			n++;
		}
		ssize_t w = s->ops->writev(s, iov, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return MOTE_EAGAIN;
			if (errno == EINTR)
				continue;
			return errno == EPIPE || errno == ECONNRESET ? MOTE_ECLOSED : MOTE_EIO;
		}
		size_t left = (size_t)w;
		*written += left;
		q->pending -= left;
		while (left > 0) {
			struct outq_seg *sg = seg_at(q, 0);
			if (left < sg->len) {
				sg->off += (uint32_t)left;
				sg->len -= (uint32_t)left;
				if (!sg->m)
					q->arena_head += (uint32_t)left;
				left = 0;
				break;
			}
			left -= sg->len;
			if (sg->m)
				msg_unref(sg->m);
			else
				q->arena_head = sg->off + sg->len;
			q->seg_head = (q->seg_head + 1) % q->seg_cap;
			q->seg_count--;
		}
		if ((size_t)w < total)
			return MOTE_EAGAIN; /* short write: the socket buffer is full */
	}
	/* Drained: give the buffers back (to the shard's cache), so idle
	 * connections hold nothing and busy ones do not call malloc. */
	outq_free(q, cache);
	return MOTE_OK;
}
