/*
 * store.c - the files of a PKI directory: atomic writes, the lock, the index.
 *
 * DIR/index.txt has one line per certificate ever issued, fields separated by
 * one tab:
 *   STATUS SERIAL KIND ID NOT_AFTER REVOKED_AT [CLAIM]
 * STATUS is V (valid) or R (revoked); SERIAL uppercase hex as printed by
 * `openssl x509 -serial`; KIND hub, device or claim; ID the CN; NOT_AFTER and
 * REVOKED_AT unix seconds (REVOKED_AT is - while valid); CLAIM, only on the
 * lines of devices that provisioned themselves, names the claim they used.
 * Lines starting with '#' are comments. The file is rewritten whole
 * (temporary name + rename) under DIR/.lock, so readers never see a partial
 * line, and may read it without the lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "pki/pki_int.h"

void pki_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void pki_sslerrf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char ssl[256] = "unknown OpenSSL error";
	unsigned long e = ERR_get_error();
	size_t used;

	if (e)
		ERR_error_string_n(e, ssl, sizeof ssl);
	ERR_clear_error();
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	used = strlen(err);
	if (used < errlen)
		snprintf(err + used, errlen - used, ": %s", ssl);
}

enum mote_err pki_path(char *out, const char *dir, const char *a, const char *b,
		       char *err, size_t errlen)
{
	int n = b ? snprintf(out, PATH_MAX, "%s/%s/%s", dir, a, b)
		  : snprintf(out, PATH_MAX, "%s/%s", dir, a);

	if (n < 0 || n >= PATH_MAX) {
		pki_errf(err, errlen, "path too long under '%s'", dir);
		return MOTE_ETOOBIG;
	}
	return MOTE_OK;
}

enum mote_err pki_write_file(const char *path, const void *data, size_t len, int mode,
			     char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, n;

	n = snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp) {
		pki_errf(err, errlen, "path too long: %s", path);
		return MOTE_ETOOBIG;
	}
	/* O_EXCL: a stale temporary (or a planted link) is never reused. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		pki_errf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return MOTE_EIO;
	}
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		fd = -1;
		goto fail;
	}
	return MOTE_OK;
fail:
	pki_errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return MOTE_EIO;
}

enum mote_err pki_mkdir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return MOTE_OK;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return MOTE_OK;
	pki_errf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
	return MOTE_EIO;
}

enum mote_err pki_lock(const char *dir, int *fd, char *err, size_t errlen)
{
	char path[PATH_MAX];
	enum mote_err rc = pki_path(path, dir, ".lock", NULL, err, errlen);

	if (rc)
		return rc;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0 && errno == ENOENT) {
		pki_errf(err, errlen, "%s does not exist; check --dir or run 'mote pki --dir %s init'",
			 dir, dir);
		return MOTE_ENOTFOUND;
	}
	if (*fd < 0) {
		pki_errf(err, errlen, "cannot open %s: %s (is --dir right?)", path,
			 strerror(errno));
		return MOTE_EIO;
	}
	if (flock(*fd, LOCK_EX) != 0) {
		pki_errf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
		close(*fd);
		*fd = -1;
		return MOTE_EIO;
	}
	return MOTE_OK;
}

void pki_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

enum mote_err pki_index_add(struct pki_index *idx, const struct pki_entry *e, char *err,
			    size_t errlen)
{
	if (idx->n == idx->cap) {
		size_t cap = idx->cap ? idx->cap * 2 : 16;
		struct pki_entry *ne = realloc(idx->e, cap * sizeof *ne);

		if (!ne) {
			pki_errf(err, errlen, "out of memory reading the index");
			return MOTE_ENOMEM;
		}
		idx->e = ne;
		idx->cap = cap;
	}
	idx->e[idx->n++] = *e;
	return MOTE_OK;
}

void pki_index_free(struct pki_index *idx)
{
	free(idx->e);
	idx->e = NULL;
	idx->n = idx->cap = 0;
}

static int parse_line(char *line, struct pki_entry *e)
{
	char *f[8], *save = NULL, *end;
	int n = 0;

	for (char *t = strtok_r(line, "\t", &save); t && n < 8; t = strtok_r(NULL, "\t", &save))
		f[n++] = t;
	if (n < 6 || n > 7 || strlen(f[0]) != 1 || (f[0][0] != 'V' && f[0][0] != 'R') ||
	    strlen(f[1]) >= sizeof e->serial || strlen(f[2]) >= sizeof e->kind ||
	    strlen(f[3]) >= sizeof e->id)
		return -1;
	memset(e, 0, sizeof *e);
	e->status = f[0][0];
	strcpy(e->serial, f[1]);
	strcpy(e->kind, f[2]);
	strcpy(e->id, f[3]);
	if (n == 7) {
		if (strlen(f[6]) >= sizeof e->claim)
			return -1;
		strcpy(e->claim, f[6]);
	}
	e->not_after = strtoll(f[4], &end, 10);
	if (*end)
		return -1;
	if (strcmp(f[5], "-") == 0) {
		e->revoked_at = 0;
	} else {
		e->revoked_at = strtoll(f[5], &end, 10);
		if (*end)
			return -1;
	}
	return (e->status == 'R') == (e->revoked_at != 0) ? 0 : -1;
}

enum mote_err pki_index_load(const char *dir, struct pki_index *idx, char *err,
			     size_t errlen)
{
	char path[PATH_MAX], line[512];
	enum mote_err rc;
	FILE *f;
	int lineno = 0;

	memset(idx, 0, sizeof *idx);
	rc = pki_path(path, dir, "index.txt", NULL, err, errlen);
	if (rc)
		return rc;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return MOTE_OK;
		pki_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return MOTE_EIO;
	}
	while (fgets(line, sizeof line, f)) {
		struct pki_entry e;
		size_t len = strlen(line);

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		if (parse_line(line, &e) != 0) {
			pki_errf(err, errlen, "%s:%d: malformed line; fix or remove it", path,
				 lineno);
			rc = MOTE_EMALFORMED;
			break;
		}
		rc = pki_index_add(idx, &e, err, errlen);
		if (rc)
			break;
	}
	fclose(f);
	if (rc)
		pki_index_free(idx);
	return rc;
}

enum mote_err pki_index_save(const char *dir, const struct pki_index *idx, char *err,
			     size_t errlen)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	enum mote_err rc;
	FILE *m;

	rc = pki_path(path, dir, "index.txt", NULL, err, errlen);
	if (rc)
		return rc;
	m = open_memstream(&buf, &len);
	if (!m) {
		pki_errf(err, errlen, "out of memory writing the index");
		return MOTE_ENOMEM;
	}
	fputs("# mote pki index: STATUS SERIAL KIND ID NOT_AFTER REVOKED_AT [CLAIM] (docs/pki.md)\n",
	      m);
	for (size_t i = 0; i < idx->n; i++) {
		const struct pki_entry *e = &idx->e[i];

		fprintf(m, "%c\t%s\t%s\t%s\t%lld\t", e->status, e->serial, e->kind, e->id,
			e->not_after);
		if (e->revoked_at)
			fprintf(m, "%lld", e->revoked_at);
		else
			fputc('-', m);
		if (e->claim[0])
			fprintf(m, "\t%s", e->claim);
		fputc('\n', m);
	}
	if (fclose(m) != 0) {
		free(buf);
		pki_errf(err, errlen, "out of memory writing the index");
		return MOTE_ENOMEM;
	}
	rc = pki_write_file(path, buf, len, 0644, err, errlen);
	free(buf);
	return rc;
}
