/*
 * level_map.c - level splitting and the trie child table; see level_map.h.
 *
 * Shapes of a map:
 *  - cap == 0: empty, slots == NULL.
 *  - 0 < cap <= LM_SMALL: packed array, slots[0..len) non-NULL, any order.
 *    A node usually has 1-5 children; comparing lengths then bytes is
 *    cheaper than hashing, so small maps never compute a lookup hash.
 *  - cap > LM_SMALL: open addressing, linear probing, cap a power of two,
 *    len * 4 <= cap * 3 (so there is always an empty slot and every probe
 *    ends). Deletion shifts later entries of the cluster back instead of
 *    leaving tombstones, so the table is always exactly as if the removed
 *    entry had never been inserted and lookups never slow down with churn.
 *
 * Sizes: array 2 -> 4 -> 8, then a 16-slot table that doubles at 3/4 load.
 * lm_shrink turns a table back into an array at <= LM_SMALL / 2 entries, and
 * halves it down to a load of at most 3/8 once load falls under 1/8; an empty
 * map holds no memory. The gap between the grow and shrink points stops a map
 * that hovers at a boundary from resizing on every insert/remove pair.
 *
 * Iteration with removal (why lm_iter_remove is safe): a table walk starts
 * just past a slot that is empty at lm_iter_init and visits slots in probe
 * order once around. No entry is inserted during the walk, so that slot stays
 * empty and no cluster straddles the start of the walk. A backward-shift
 * deletion at the current slot only moves entries from later in their
 * cluster (later in the walk, not yet visited) into earlier holes that are
 * at or after the current slot, and the walk re-examines the current slot.
 * So nothing is skipped and nothing is seen twice. For the array, removal
 * moves the last (unvisited) entry into the current slot, which is
 * re-examined.
 */
#include "broker/level_map.h"

#include <assert.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

size_t lvl_count(const uint8_t *s, size_t len)
{
	size_t n = 1;
	for (size_t pos = 0; (pos = lvl_end(s, len, pos)) < len; pos++)
		n++;
	return n;
}

/* ---- SipHash-2-4 (Aumasson & Bernstein, 2012), written from the paper ---- */

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[2] += v[3];
	v[1] = rotl(v[1], 13);
	v[3] = rotl(v[3], 16);
	v[1] ^= v[0];
	v[3] ^= v[2];
	v[0] = rotl(v[0], 32);
	v[2] += v[1];
	v[0] += v[3];
	v[1] = rotl(v[1], 17);
	v[3] = rotl(v[3], 21);
	v[1] ^= v[2];
	v[3] ^= v[0];
	v[2] = rotl(v[2], 32);
}

static void sip_block(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
}

uint64_t lm_siphash(const struct lm_key *k, const uint8_t *s, size_t n)
{
	uint64_t v[4] = { k->k0 ^ 0x736f6d6570736575ull, k->k1 ^ 0x646f72616e646f6dull,
			  k->k0 ^ 0x6c7967656e657261ull, k->k1 ^ 0x7465646279746573ull };
	size_t whole = n & ~(size_t)7;
	for (size_t i = 0; i < whole; i += 8)
		sip_block(v, load_le64(s + i));
	/* Last block: the 0-7 remaining bytes, and the length mod 256 on top. */
	uint64_t last = (uint64_t)(n & 0xff) << 56;
	for (size_t i = whole; i < n; i++)
		last |= (uint64_t)s[i] << (8 * (i - whole));
	sip_block(v, last);
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* splitmix64 finaliser: spreads the fallback seed material over all bits. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void lm_key_init(struct lm_key *k)
{
	uint8_t b[16];
	if (getrandom(b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b) {
		k->k0 = load_le64(b);
		k->k1 = load_le64(b + 8);
		return;
	}
	/* No entropy yet (early boot): weaker, but still not guessable offline. */
	struct timespec ts = { 0, 0 };
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	k->k0 = mix64(t ^ (uint64_t)(uintptr_t)k);
	k->k1 = mix64(k->k0 ^ (uint64_t)(uintptr_t)&ts);
}

void lm_link_init(struct lm_link *l, const struct lm_key *k, const uint8_t *key, uint32_t klen)
{
	l->key = key;
	l->klen = klen;
	l->hash = (uint32_t)lm_siphash(k, key, klen);
}

/* ---- the map ---- */

static bool is_table(const struct level_map *m)
{
	return m->cap > LM_SMALL;
}

static bool same_key(const struct lm_link *l, const uint8_t *key, size_t klen)
{
	return l->klen == klen && (klen == 0 || memcmp(l->key, key, klen) == 0);
}

struct lm_link *lm_find(const struct level_map *m, const struct lm_key *k, const uint8_t *key,
			size_t klen)
{
	if (!is_table(m)) {
		for (uint32_t i = 0; i < m->len; i++)
			if (same_key(m->slots[i], key, klen))
				return m->slots[i];
		return NULL;
	}
	uint32_t h = (uint32_t)lm_siphash(k, key, klen);
	uint32_t mask = m->cap - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		struct lm_link *l = m->slots[i];
		if (!l)
			return NULL;
		if (l->hash == h && same_key(l, key, klen))
			return l;
	}
}

static void table_put(struct lm_link **slots, uint32_t cap, struct lm_link *l)
{
	uint32_t mask = cap - 1;
	uint32_t i = l->hash & mask;
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = l;
}

/* Moves every entry into a fresh slot array of ncap (array or table shape). */
static enum mote_err resize(struct level_map *m, uint32_t ncap)
{
	assert(ncap >= m->len && (ncap <= LM_SMALL || (ncap & (ncap - 1)) == 0));
	struct lm_link **ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return MOTE_ENOMEM;
	uint32_t n = 0;
	uint32_t used = is_table(m) ? m->cap : m->len;
	for (uint32_t i = 0; i < used; i++) {
		struct lm_link *l = m->slots[i];
		if (!l)
			continue;
		if (ncap > LM_SMALL)
			table_put(ns, ncap, l);
		else
			ns[n++] = l;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return MOTE_OK;
}

enum mote_err lm_insert(struct level_map *m, struct lm_link *l)
{
	enum mote_err err = MOTE_OK;
	if (!is_table(m)) {
		if (m->len == m->cap) {
			uint32_t ncap = m->cap == 0 ? 2 : m->cap < LM_SMALL ? m->cap * 2 : 2 * LM_SMALL;
			if ((err = resize(m, ncap)) != MOTE_OK)
				goto out;
		}
	} else if (((uint64_t)m->len + 1) * 4 > (uint64_t)m->cap * 3) {
		if (m->cap > UINT32_MAX / 2) {
			err = MOTE_ENOMEM;
			goto out;
		}
		if ((err = resize(m, m->cap * 2)) != MOTE_OK)
			goto out;
	}
	if (is_table(m))
		table_put(m->slots, m->cap, l);
	else
		m->slots[m->len] = l;
	m->len++;
out:
	return err;
}

/* Empties slot i; never resizes (lm_iter_remove relies on that). */
static void remove_at(struct level_map *m, uint32_t i)
{
	assert(m->len > 0);
	if (!is_table(m)) {
		m->slots[i] = m->slots[m->len - 1];
		m->slots[m->len - 1] = NULL;
		m->len--;
		return;
	}
	uint32_t mask = m->cap - 1;
	uint32_t hole = i;
	for (uint32_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
		uint32_t home = m->slots[j]->hash & mask;
		/* j's entry may fill the hole unless its home lies in (hole, j]. */
		bool home_between = hole <= j ? (home > hole && home <= j)
					      : (home > hole || home <= j);
		if (!home_between) {
			m->slots[hole] = m->slots[j];
			hole = j;
		}
	}
	m->slots[hole] = NULL;
	m->len--;
}

void lm_remove(struct level_map *m, struct lm_link *l)
{
	uint32_t i;
	if (!is_table(m)) {
		for (i = 0; m->slots[i] != l; i++)
			assert(i + 1 < m->len);
	} else {
		uint32_t mask = m->cap - 1;
		for (i = l->hash & mask; m->slots[i] != l; i = (i + 1) & mask)
			assert(m->slots[i]);
	}
	remove_at(m, i);
	lm_shrink(m);
}

void lm_shrink(struct level_map *m)
{
	if (m->len == 0) {
		lm_release(m);
		return;
	}
	if (!is_table(m))
		return; /* at most LM_SMALL pointers: not worth a reallocation */
	if (m->len <= LM_SMALL / 2) {
		(void)resize(m, LM_SMALL);
	} else if ((uint64_t)m->len * 8 < m->cap) {
		uint32_t ncap = 2 * LM_SMALL;
		while ((uint64_t)ncap * 3 < (uint64_t)m->len * 8)
			ncap *= 2;
		(void)resize(m, ncap);
	}
}

void lm_release(struct level_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->len = 0;
	m->cap = 0;
}

void lm_iter_init(const struct level_map *m, struct lm_iter *it)
{
	it->start = 0;
	it->step = 0;
	it->slot = 0;
	if (is_table(m)) {
		uint32_t e = 0;
		while (m->slots[e])
			e++; /* load <= 3/4 guarantees one */
		it->start = (e + 1) & (m->cap - 1);
	}
}

struct lm_link *lm_iter_next(const struct level_map *m, struct lm_iter *it)
{
	if (!is_table(m)) {
		if (it->step >= m->len)
			return NULL;
		it->slot = it->step++;
		return m->slots[it->slot];
	}
	while (it->step < m->cap) {
		uint32_t i = (it->start + it->step++) & (m->cap - 1);
		if (m->slots[i]) {
			it->slot = i;
			return m->slots[i];
		}
	}
	return NULL;
}

void lm_iter_remove(struct level_map *m, struct lm_iter *it)
{
	remove_at(m, it->slot);
	it->step--; /* look at this slot again: something may have moved in */
}
