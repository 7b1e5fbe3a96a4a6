/*
 * idtab.c - sessions (and shared-group stubs) by client id: a chained hash
 * table on FNV-1a, doubled when the load passes 1. See broker_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

static uint32_t hash_id(const uint8_t *id, uint16_t len)
{
	uint32_t h = 2166136261u;
	for (uint16_t i = 0; i < len; i++) {
		h ^= id[i];
		h *= 16777619u;
	}
	return h;
}

static struct session **slot_of(const struct id_table *t, const uint8_t *id, uint16_t len)
{
	return &t->slots[hash_id(id, len) & (t->cap - 1)];
}

struct session *idtab_find(const struct id_table *t, const uint8_t *id, uint16_t len)
{
	if (t->cap == 0)
		return NULL;
	for (struct session *s = *slot_of(t, id, len); s; s = s->hnext)
		if (s->client_id_len == len && memcmp(s->client_id, id, len) == 0)
			return s;
	return NULL;
}

enum mote_err idtab_reserve(struct id_table *t)
{
	if (t->count < t->cap)
		return MOTE_OK;
	struct id_table n = { .cap = t->cap ? t->cap * 2 : 256, .count = t->count };
	n.slots = calloc(n.cap, sizeof *n.slots);
	if (!n.slots)
		return MOTE_ENOMEM;
	for (uint32_t i = 0; i < t->cap; i++) {
		while (t->slots[i]) {
			struct session *s = t->slots[i];
			t->slots[i] = s->hnext;
			struct session **head = slot_of(&n, s->client_id, s->client_id_len);
			s->hnext = *head;
			*head = s;
		}
	}
	free(t->slots);
	*t = n;
	return MOTE_OK;
}

void idtab_insert(struct id_table *t, struct session *s)
{
	struct session **head = slot_of(t, s->client_id, s->client_id_len);
	s->hnext = *head;
	*head = s;
	t->count++;
}

void idtab_remove(struct id_table *t, struct session *s)
{
	if (t->cap == 0)
		return;
	struct session **pp = slot_of(t, s->client_id, s->client_id_len);
	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = s->hnext;
		t->count--;
	}
}

void idtab_free(struct id_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof *t);
}
