/*
 * store.c - the user store file: parse, format, atomic save, edits under
 * an flock, argon2id password hashes and API tokens (see store.h).
 *
 * Secrets (passwords, tokens) pass through here only as caller buffers;
 * what is kept and written is their hash. Temporary copies of secrets are
 * wiped with OPENSSL_cleanse before they are freed.
 */
#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/store.h"

#define MAX_FILE (64u << 20)

bool store_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@'))
			return false;
	}
	return true;
}

const char *store_scope_name(uint8_t scope)
{
	switch (scope) {
	case STORE_SCOPE_ADMIN: return "admin";
	case STORE_SCOPE_WRITE: return "write";
	case STORE_SCOPE_READ: return "read";
	}
	return "?";
}

int store_scope_parse(const char *s)
{
	for (int i = 0; i <= STORE_SCOPE_READ; i++)
		if (strcmp(s, store_scope_name((uint8_t)i)) == 0)
			return i;
	return -1;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nusers; i++)
		free(s->users[i].hash);
	free(s->users);
	free(s->tokens);
	free(s);
}

static bool hex_decode(const char *h, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = h[2 * i + (size_t)k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return true;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Up to max whitespace-separated words of one line. */
static unsigned split(char *line, char **w, unsigned max)
{
	unsigned n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

static bool argon2_encoded_ok(const char *h)
{
	size_t n = strlen(h);
	if (n < 20 || n > 512 || strncmp(h, "$argon2id$", 10) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || strchr("$=,+/", h[i])))
			return false;
	return true;
}

enum mote_err store_add_user(struct store *s, const char *name, const char *role,
			     const char *hash)
{
	if (store_find_user(s, name, strlen(name)))
		return MOTE_EEXIST;
	if (s->nusers + s->ntokens >= STORE_MAX_ENTRIES)
		return MOTE_EFULL;
	if (s->nusers == s->ucap) {
		unsigned nc = s->ucap ? s->ucap * 2 : 8;
		struct store_user *nu = realloc(s->users, nc * sizeof *nu);
		if (!nu)
			return MOTE_ENOMEM;
		s->users = nu;
		s->ucap = nc;
	}
	char *h = strdup(hash);
	if (!h)
		return MOTE_ENOMEM;
	struct store_user *u = &s->users[s->nusers++];
	memset(u, 0, sizeof *u);
	snprintf(u->name, sizeof u->name, "%s", name);
	snprintf(u->role, sizeof u->role, "%s", role);
	u->hash = h;
	return MOTE_OK;
}

bool store_del_user(struct store *s, const char *name)
{
	for (unsigned i = 0; i < s->nusers; i++) {
		if (strcmp(s->users[i].name, name) != 0)
			continue;
		free(s->users[i].hash);
		s->users[i] = s->users[--s->nusers];
		return true;
	}
	return false;
}

enum mote_err store_add_token(struct store *s, const struct store_token *t)
{
	if (s->nusers + s->ntokens >= STORE_MAX_ENTRIES)
		return MOTE_EFULL;
	if (s->ntokens == s->tcap) {
		unsigned nc = s->tcap ? s->tcap * 2 : 8;
		struct store_token *nt = realloc(s->tokens, nc * sizeof *nt);
		if (!nt)
			return MOTE_ENOMEM;
		s->tokens = nt;
		s->tcap = nc;
	}
	s->tokens[s->ntokens++] = *t;
	return MOTE_OK;
}

unsigned store_revoke_tokens(struct store *s, const char *what)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->ntokens;) {
		if (strcmp(s->tokens[i].id, what) == 0 || strcmp(s->tokens[i].name, what) == 0) {
			s->tokens[i] = s->tokens[--s->ntokens];
			n++;
		} else {
			i++;
		}
	}
	return n;
}

const struct store_user *store_find_user(const struct store *s, const void *name, size_t len)
{
	for (unsigned i = 0; i < s->nusers; i++)
		if (strlen(s->users[i].name) == len && memcmp(s->users[i].name, name, len) == 0)
			return &s->users[i];
	return NULL;
}

const struct store_token *store_find_token(const struct store *s, const unsigned char digest[32])
{
	const struct store_token *found = NULL;
	/* No early exit: the time taken does not depend on which entry matched. */
	for (unsigned i = 0; i < s->ntokens; i++)
		if (CRYPTO_memcmp(s->tokens[i].digest, digest, 32) == 0)
			found = &s->tokens[i];
	return found;
}

static enum mote_err parse_line(struct store *s, char *line, unsigned lineno, char *err,
				size_t errcap)
{
	char *w[7];
	unsigned n = split(line, w, 6);
	if (n == 0 || w[0][0] == '#')
		return MOTE_OK;
	if (strcmp(w[0], "user") == 0) {
		if (n != 4) {
			snprintf(err, errcap, "line %u: want 'user NAME ROLE HASH'", lineno);
			return MOTE_EINVAL;
		}
		if (!store_name_valid(w[1], strlen(w[1])) || !store_name_valid(w[2], strlen(w[2])) ||
		    !argon2_encoded_ok(w[3])) {
			snprintf(err, errcap, "line %u: bad user name, role or argon2id hash", lineno);
			return MOTE_EINVAL;
		}
		enum mote_err e = store_add_user(s, w[1], w[2], w[3]);
		if (e == MOTE_EEXIST)
			snprintf(err, errcap, "line %u: user '%s' twice", lineno, w[1]);
		else if (e == MOTE_EFULL)
			snprintf(err, errcap, "line %u: more than %d entries", lineno,
				 STORE_MAX_ENTRIES);
		return e == MOTE_EEXIST || e == MOTE_EFULL ? MOTE_EINVAL : e;
	}
	if (strcmp(w[0], "token") == 0) {
		struct store_token t;
		memset(&t, 0, sizeof t);
		char *end;
		if (n != 6 || strlen(w[1]) != 8 || strlen(w[3]) != 64 ||
		    !hex_decode(w[3], 64, t.digest) || store_scope_parse(w[2]) < 0 ||
		    (strcmp(w[5], "-") != 0 && !store_name_valid(w[5], strlen(w[5])))) {
			snprintf(err, errcap, "line %u: want 'token ID SCOPE SHA256 CREATED NAME'",
				 lineno);
			return MOTE_EINVAL;
		}
		errno = 0;
		long long created = strtoll(w[4], &end, 10);
		if (*end || errno || created < 0) {
			snprintf(err, errcap, "line %u: bad creation time", lineno);
			return MOTE_EINVAL;
		}
		char idhex[65];
		hex_encode(t.digest, 32, idhex);
		if (memcmp(idhex, w[1], 8) != 0) {
			snprintf(err, errcap, "line %u: token id does not match its hash", lineno);
			return MOTE_EINVAL;
		}
		memcpy(t.id, w[1], 8);
		t.scope = (uint8_t)store_scope_parse(w[2]);
		t.created = created;
		snprintf(t.name, sizeof t.name, "%s", w[5]);
		enum mote_err e = store_add_token(s, &t);
		if (e == MOTE_EFULL) {
			snprintf(err, errcap, "line %u: more than %d entries", lineno,
				 STORE_MAX_ENTRIES);
			return MOTE_EINVAL;
		}
		return e;
	}
	snprintf(err, errcap, "line %u: '%.16s' is not user or token", lineno, w[0]);
	return MOTE_EINVAL;
}

enum mote_err store_parse(const char *text, size_t len, struct store **out, char *err,
			  size_t errcap)
{
	struct store *s = calloc(1, sizeof *s);
	char line[1024];
	unsigned lineno = 0;
	enum mote_err e = MOTE_OK;
	if (!s)
		return MOTE_ENOMEM;
	for (size_t pos = 0; pos < len && e == MOTE_OK;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (n >= sizeof line || memchr(text + pos, '\0', n)) {
			snprintf(err, errcap, "line %u: too long or holds a NUL byte", lineno);
			e = MOTE_EINVAL;
			break;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		e = parse_line(s, line, lineno, err, errcap);
		pos += n + 1;
	}
	if (e != MOTE_OK) {
		if (e == MOTE_ENOMEM)
			snprintf(err, errcap, "out of memory");
		store_free(s);
		return e;
	}
	*out = s;
	return MOTE_OK;
}

bool store_path(const char *data_dir, char *buf, size_t cap)
{
	return snprintf(buf, cap, "%s/users", data_dir) < (int)cap;
}

enum mote_err store_load(const char *path, struct store **out, char *err, size_t errcap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return MOTE_ENOTFOUND;
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return MOTE_EIO;
	}
	struct stat st;
	enum mote_err e = MOTE_EIO;
	char *buf = NULL;
	if (fstat(fd, &st) != 0 || st.st_size > (off_t)MAX_FILE) {
		snprintf(err, errcap, "%s: unreadable or larger than 64 MiB", path);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		e = MOTE_ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	char perr[256] = "";
	e = store_parse(buf, got, out, perr, sizeof perr);
	if (e != MOTE_OK)
		snprintf(err, errcap, "%s: %s", path, perr);
out:
	free(buf);
	close(fd);
	return e;
}

enum mote_err store_save(const char *path, const struct store *s, char *err, size_t errcap)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return MOTE_EINVAL;
	FILE *f = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errcap, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MOTE_EIO;
	}
	fprintf(f, "# mote user store: hashes only, never a password or token.\n"
		   "# Managed by 'mote user' and 'mote token' (docs/security.md).\n");
	for (unsigned i = 0; i < s->nusers; i++)
		fprintf(f, "user %s %s %s\n", s->users[i].name, s->users[i].role, s->users[i].hash);
	for (unsigned i = 0; i < s->ntokens; i++) {
		char hex[65];
		hex_encode(s->tokens[i].digest, 32, hex);
		fprintf(f, "token %s %s %s %" PRId64 " %s\n", s->tokens[i].id,
			store_scope_name(s->tokens[i].scope), hex, s->tokens[i].created,
			s->tokens[i].name);
	}
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return MOTE_EIO;
	}
	return MOTE_OK;
}

enum mote_err store_random_secret(char *out, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[128];
	if (n > sizeof r || RAND_bytes(r, (int)n) != 1)
		return MOTE_EIO;
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[r[i] & 63];
	out[n] = '\0';
	OPENSSL_cleanse(r, sizeof r);
	return MOTE_OK;
}

enum mote_err store_hash_password(const void *pw, size_t len, char **encoded)
{
	unsigned char salt[16];
	if (RAND_bytes(salt, sizeof salt) != 1)
		return MOTE_EIO;
	size_t cap = argon2_encodedlen(STORE_ARGON2_T, STORE_ARGON2_M_KIB, STORE_ARGON2_P,
				       sizeof salt, 32, Argon2_id);
	char *out = malloc(cap);
	if (!out)
		return MOTE_ENOMEM;
	int rc = argon2id_hash_encoded(STORE_ARGON2_T, STORE_ARGON2_M_KIB, STORE_ARGON2_P, pw, len,
				       salt, sizeof salt, 32, out, cap);
	if (rc != ARGON2_OK) {
		free(out);
		return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? MOTE_ENOMEM : MOTE_EINVAL;
	}
	*encoded = out;
	return MOTE_OK;
}

enum mote_err store_hash_password_apart(const void *pw, size_t len, char **encoded)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return store_hash_password(pw, len, encoded);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return store_hash_password(pw, len, encoded);
	}
	if (pid == 0) {
		/* The child: hash, hand the text over, leave without cleanup
		 * (its memory, secrets included, goes with it). */
		char *enc = NULL;
		close(fds[0]);
		if (store_hash_password(pw, len, &enc) == MOTE_OK) {
			size_t n = strlen(enc), off = 0;
			while (off < n) {
				ssize_t w = write(fds[1], enc + off, n - off);
				if (w <= 0)
					_exit(1);
				off += (size_t)w;
			}
		}
		_exit(0);
	}
	close(fds[1]);
	char buf[600];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (got += (size_t)r) == sizeof buf - 1)
			break;
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[got] = '\0';
	if (!argon2_encoded_ok(buf) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return store_hash_password(pw, len, encoded);
	*encoded = strdup(buf);
	return *encoded ? MOTE_OK : MOTE_ENOMEM;
}

bool store_verify_password(const char *encoded, const void *pw, size_t len)
{
	return argon2id_verify(encoded, pw, len) == ARGON2_OK;
}

void store_token_digest(const void *text, size_t len, unsigned char digest[32])
{
	SHA256(text, len, digest);
}

enum mote_err store_token_new(char text[STORE_TOKEN_LEN + 1], struct store_token *t)
{
	unsigned char r[32];
	char hex[65];
	if (RAND_bytes(r, sizeof r) != 1)
		return MOTE_EIO;
	hex_encode(r, sizeof r, text + 5);
	memcpy(text, STORE_TOKEN_PREFIX, 5);
	OPENSSL_cleanse(r, sizeof r);
	memset(t, 0, sizeof *t);
	store_token_digest(text, STORE_TOKEN_LEN, t->digest);
	hex_encode(t->digest, 32, hex);
	memcpy(t->id, hex, 8);
	t->created = (int64_t)time(NULL);
	snprintf(t->name, sizeof t->name, "-");
	return MOTE_OK;
}

enum mote_err store_edit_begin(const char *data_dir, int *lockfd, struct store **s,
			       bool *existed, char *err, size_t errcap)
{
	char path[4096], lock[4096];
	if (!store_path(data_dir, path, sizeof path) ||
	    snprintf(lock, sizeof lock, "%s/users.lock", data_dir) >= (int)sizeof lock)
		return MOTE_EINVAL;
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errcap, "cannot create %s: %s", data_dir, strerror(errno));
		return MOTE_EIO;
	}
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errcap, "%s: %s", lock, strerror(errno));
		return MOTE_EIO;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			snprintf(err, errcap, "%s: %s", lock, strerror(errno));
			close(fd);
			return MOTE_EIO;
		}
	}
	enum mote_err e = store_load(path, s, err, errcap);
	*existed = e == MOTE_OK;
	if (e == MOTE_ENOTFOUND) {
		*s = calloc(1, sizeof **s);
		e = *s ? MOTE_OK : MOTE_ENOMEM;
	}
	if (e != MOTE_OK) {
		close(fd);
		return e;
	}
	*lockfd = fd;
	return MOTE_OK;
}

enum mote_err store_edit_end(const char *data_dir, int lockfd, struct store *s, bool save,
			     char *err, size_t errcap)
{
	char path[4096];
	enum mote_err e = MOTE_OK;
	if (save)
		e = store_path(data_dir, path, sizeof path) ? store_save(path, s, err, errcap)
							     : MOTE_EINVAL;
	close(lockfd); /* drops the flock */
	return e;
}
