/*
 * store.h - the user store DATA/users: users (argon2id password hashes)
 * and API tokens (SHA-256 of the token), never a plaintext secret. Part of
 * src/auth; `mote user`, `mote token` and the hub use it.
 *
 * The file (0600) holds one entry per line:
 *   user NAME ROLE $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
 *   token ID SCOPE SHA256HEX CREATED_UNIX NAME
 * `#` lines are comments. It is replaced atomically (write + rename) under
 * an flock on DATA/users.lock, so the CLI may edit it while the hub runs;
 * the hub notices the change (inode, size, mtime) on its next login.
 *
 * Threading: a struct store is plain data; callers synchronize.
 */
#ifndef MOTE_AUTH_STORE_H
#define MOTE_AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* argon2id cost: OWASP's first recommended set (19 MiB, 2 passes, 1 lane). */
#define STORE_ARGON2_M_KIB 19456u
#define STORE_ARGON2_T 2u
#define STORE_ARGON2_P 1u

#define STORE_TOKEN_PREFIX "mote_"
#define STORE_TOKEN_LEN (5 + 64) /* "mote_" + 256 random bits in hex */
#define STORE_NAME_MAX 64
#define STORE_MAX_ENTRIES 100000
/* The MQTT username of a token login (the password is the token). */
#define STORE_TOKEN_USERNAME "token"

enum store_scope { STORE_SCOPE_ADMIN, STORE_SCOPE_WRITE, STORE_SCOPE_READ };

struct store_user {
	char name[STORE_NAME_MAX + 1];
	char role[STORE_NAME_MAX + 1];
	char *hash; /* argon2id encoded string */
};

struct store_token {
	char id[9];          /* first 8 hex digits of the digest: names it in list/revoke */
	uint8_t scope;       /* enum store_scope */
	unsigned char digest[32];
	int64_t created;     /* unix seconds */
	char name[STORE_NAME_MAX + 1]; /* "-" when unnamed */
};

struct store {
	struct store_user *users;
	unsigned nusers, ucap;
	struct store_token *tokens;
	unsigned ntokens, tcap;
};

/* Parses the file's text. MOTE_EINVAL with "line N: ..." in err; MOTE_ENOMEM. */
enum mote_err store_parse(const char *text, size_t len, struct store **out, char *err,
			  size_t errcap);
void store_free(struct store *s);

/* Reads path: MOTE_ENOTFOUND when it does not exist, MOTE_EIO, MOTE_EINVAL. */
enum mote_err store_load(const char *path, struct store **out, char *err, size_t errcap);
/* Writes path atomically with mode 0600. */
enum mote_err store_save(const char *path, const struct store *s, char *err, size_t errcap);

const struct store_user *store_find_user(const struct store *s, const void *name, size_t len);
/* The token whose digest this is (every entry compared in constant time). */
const struct store_token *store_find_token(const struct store *s, const unsigned char digest[32]);

/* Edits. store_add_user takes a copy of hash. MOTE_EEXIST, MOTE_ENOMEM. */
enum mote_err store_add_user(struct store *s, const char *name, const char *role,
			     const char *hash);
bool store_del_user(struct store *s, const char *name);
enum mote_err store_add_token(struct store *s, const struct store_token *t);
/* Removes tokens whose id or name is `what`; returns how many. */
unsigned store_revoke_tokens(struct store *s, const char *what);

bool store_name_valid(const char *s, size_t len);
const char *store_scope_name(uint8_t scope);
int store_scope_parse(const char *s); /* -1 when not admin/write/read */

/* argon2id with the parameters above and a random salt; *encoded is the
 * caller's to free. MOTE_ENOMEM / MOTE_EIO (no randomness). */
enum mote_err store_hash_password(const void *pw, size_t len, char **encoded);
/*
 * The same, computed in a short-lived child process (fork), so the caller's
 * peak resident memory never holds argon2id's 19 MiB: for the hub's first
 * start, before its threads serve anyone. Falls back to store_hash_password
 * when fork fails.
 */
enum mote_err store_hash_password_apart(const void *pw, size_t len, char **encoded);
/* Whether pw matches encoded (libargon2 compares in constant time). */
bool store_verify_password(const char *encoded, const void *pw, size_t len);

/* A new token: text (NUL-terminated, STORE_TOKEN_LEN chars) and its entry. */
enum mote_err store_token_new(char text[STORE_TOKEN_LEN + 1], struct store_token *t);
void store_token_digest(const void *text, size_t len, unsigned char digest[32]);

/* Random printable secret of n characters (base64url alphabet). */
enum mote_err store_random_secret(char *out, size_t n);

/*
 * Read-modify-write of DATA/users under DATA/users.lock: store_edit_begin
 * locks and loads (an absent file gives an empty store, *existed false);
 * store_edit_end saves (when save) and unlocks. lockfd is the caller's.
 */
enum mote_err store_edit_begin(const char *data_dir, int *lockfd, struct store **s,
			       bool *existed, char *err, size_t errcap);
enum mote_err store_edit_end(const char *data_dir, int lockfd, struct store *s, bool save,
			     char *err, size_t errcap);

/* DATA/users into buf. */
bool store_path(const char *data_dir, char *buf, size_t cap);

#endif
