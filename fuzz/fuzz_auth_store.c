/* fuzz_auth_store.c - the user store parser takes any file text: it refuses
 * with a reason or yields entries whose fields hold what the format
 * promises (valid names, argon2id hashes, token ids that match their hash). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	struct store *s = NULL;
	char err[256] = "";
	enum mote_err e = store_parse((const char *)data, size, &s, err, sizeof err);
	if (e != MOTE_OK) {
		if (err[0] == '\0' || s)
			__builtin_trap();
		return 0;
	}
	for (unsigned i = 0; i < s->nusers; i++) {
		const struct store_user *u = &s->users[i];
		if (!store_name_valid(u->name, strlen(u->name)) ||
		    strncmp(u->hash, "$argon2id$", 10) != 0 ||
		    store_find_user(s, u->name, strlen(u->name)) != u)
			__builtin_trap();
	}
	for (unsigned i = 0; i < s->ntokens; i++) {
		const struct store_token *t = &s->tokens[i];
		char hex[9];
		snprintf(hex, sizeof hex, "%02x%02x%02x%02x", t->digest[0], t->digest[1],
			 t->digest[2], t->digest[3]);
		if (memcmp(hex, t->id, 8) != 0 || t->scope > STORE_SCOPE_READ ||
		    !store_find_token(s, t->digest))
			__builtin_trap();
	}
	store_free(s);
	return 0;
}
