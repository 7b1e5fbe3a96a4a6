/*
 * audit.c - the hash-chained audit log (see audit.h for the record format).
 *
 * Callers format only their record's event part ("time", "event",
 * "fields") and queue it; the writer thread owns everything that touches
 * the file. Chaining needs the hash of the file's last record, and several
 * processes append to one file, so each batch is written under an exclusive
 * flock, and the writer re-reads the last line whenever the file's size is
 * not where its own last write left it. A torn last line (a crash mid-write)
 * is ended with a newline and left as it is: `mote audit verify` reports it,
 * and the chain goes on from the last complete record.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "base/clock.h"
#include "base/log.h"

#define QUEUE_MAX 4096
#define HEX_LEN 64
/* ,"prev":"<64>" then ,"hash":"<64>"} */
#define PREV_PART (9 + HEX_LEN + 1)
#define HASH_PART (9 + HEX_LEN + 2)
#define TAIL_READ 16384

static const char zero_hash[HEX_LEN + 1] =
	"0000000000000000000000000000000000000000000000000000000000000000";

struct audit {
	int fd;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;  /* writer: work or stop */
	pthread_cond_t done;  /* flushers: written moved */
	char *queue[QUEUE_MAX];
	unsigned head, count;
	uint64_t queued, written; /* records ever queued / handled */
	uint64_t dropped;         /* dropped since the last record */
	bool stop;
	bool io_failed;
	/* Writer thread only: */
	off_t known_end;          /* file size after our last write; -1 unknown */
	uint64_t last_seq;
	char last_hash[HEX_LEN + 1];
};

static void to_hex(const unsigned char *md, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[HEX_LEN] = '\0';
}

static void hash_hex(const void *data, size_t len, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	to_hex(md, out);
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * The parts of one record line (without its newline): seq and the declared
 * prev/hash. false when the line does not have the record shape.
 */
static bool parse_record(const char *line, size_t len, uint64_t *seq, const char **prev,
			 const char **hash)
{
	static const char head[] = "{\"seq\":";
	if (len < sizeof head - 1 + 1 + PREV_PART + HASH_PART ||
	    memcmp(line, head, sizeof head - 1) != 0)
		return false;
	const char *p = line + sizeof head - 1;
	uint64_t v = 0;
	size_t digits = 0;
	while (p < line + len && *p >= '0' && *p <= '9' && digits < 19) {
		v = v * 10 + (uint64_t)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || *p != ',')
		return false;
	const char *t = line + len - PREV_PART - HASH_PART;
	if (memcmp(t, ",\"prev\":\"", 9) != 0 || !is_hex(t + 9, HEX_LEN) ||
	    memcmp(t + 9 + HEX_LEN, "\",\"hash\":\"", 10) != 0 ||
	    !is_hex(t + PREV_PART + 9, HEX_LEN) || memcmp(line + len - 2, "\"}", 2) != 0)
		return false;
	*seq = v;
	*prev = t + 9;
	*hash = t + PREV_PART + 9;
	return true;
}

/* Where the chain goes on: the last complete line of the file. */
static enum mote_err read_tail(struct audit *a, off_t size)
{
	char buf[TAIL_READ];
	a->last_seq = 0;
	memcpy(a->last_hash, zero_hash, sizeof zero_hash);
	if (size == 0)
		return MOTE_OK;
	off_t from = size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0;
	ssize_t n = pread(a->fd, buf, (size_t)(size - from), from);
	if (n != size - from)
		return MOTE_EIO;
	size_t end = (size_t)n;
	if (buf[end - 1] != '\n') {
		/* Torn tail: close the line so our records start on their own. */
		if (write(a->fd, "\n", 1) != 1)
			return MOTE_EIO;
		size++;
		while (end > 0 && buf[end - 1] != '\n')
			end--;
	}
	if (end == 0) {
		a->known_end = size;
		return MOTE_OK;
	}
	size_t start = end - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	uint64_t seq;
	const char *prev, *hash;
	size_t len = end - 1 - start;
	if (parse_record(buf + start, len, &seq, &prev, &hash)) {
		a->last_seq = seq;
		memcpy(a->last_hash, hash, HEX_LEN);
		a->last_hash[HEX_LEN] = '\0';
	} else {
		/* Not a record (edited, or longer than the read): chain on from
		 * its bytes; verify names the line either way. */
		hash_hex(buf + start, len, a->last_hash);
	}
	a->known_end = size;
	return MOTE_OK;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Appends one chained record for body to out (grown as needed). */
static bool chain_one(struct audit *a, const char *body, char **out, size_t *len, size_t *cap)
{
	size_t need = *len + strlen(body) + 32 + PREV_PART + HASH_PART + 2;
	if (need > *cap) {
		size_t nc = *cap ? *cap : 8192;
		while (nc < need)
			nc *= 2;
		char *nb = realloc(*out, nc);
		if (!nb)
			return false;
		*out = nb;
		*cap = nc;
	}
	char *line = *out + *len;
	int n = snprintf(line, *cap - *len, "{\"seq\":%" PRIu64 ",%s,\"prev\":\"%s\"",
			 a->last_seq + 1, body, a->last_hash);
	char h[HEX_LEN + 1];
	hash_hex(line, (size_t)n, h);
	n += snprintf(line + n, *cap - *len - (size_t)n, ",\"hash\":\"%s\"}\n", h);
	*len += (size_t)n;
	a->last_seq++;
	memcpy(a->last_hash, h, sizeof h);
	return true;
}

static void format_time(uint64_t ms, char *out, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
}

static char *make_body(const char *event, const char *fields)
{
	char when[96];
	format_time(mote_wall_ms(), when, sizeof when);
	size_t n = strlen(when) + strlen(event) + strlen(fields) + 48;
	char *body = malloc(n);
	if (body)
		snprintf(body, n, "\"time\":\"%s\",\"event\":\"%s\",\"fields\":%s", when, event,
			 fields);
	return body;
}

/* One batch: lock the file, find the chain's end, write, sync, unlock. */
static bool write_batch(struct audit *a, char **items, unsigned n, uint64_t dropped)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	bool ok = false;
	while (flock(a->fd, LOCK_EX) != 0)
		if (errno != EINTR)
			goto out_nolock;
	struct stat st;
	if (fstat(a->fd, &st) != 0)
		goto out;
	if (st.st_size != a->known_end && read_tail(a, st.st_size) != MOTE_OK)
		goto out;
	if (dropped) {
		char fields[64];
		snprintf(fields, sizeof fields, "{\"count\":%" PRIu64 "}", dropped);
		char *body = make_body("audit_dropped", fields);
		bool fine = body && chain_one(a, body, &out, &len, &cap);
		free(body);
		if (!fine)
			goto out;
	}
	for (unsigned i = 0; i < n; i++)
		if (!chain_one(a, items[i], &out, &len, &cap))
			goto out;
	if (!write_all(a->fd, out, len) || fdatasync(a->fd) != 0) {
		a->known_end = -1; /* re-read: a part may be on disk */
		goto out;
	}
	a->known_end = st.st_size + (off_t)len;
	ok = true;
out:
	flock(a->fd, LOCK_UN);
out_nolock:
	if (!ok) {
		a->known_end = -1;
		MOTE_ERROR("audit", "event=audit_write_failed errno=%d records=%u", errno, n);
	}
	free(out);
	return ok;
}

static void *writer_main(void *arg)
{
	struct audit *a = arg;
	char *batch[QUEUE_MAX];
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->count == 0 && a->dropped == 0 && !a->stop)
			pthread_cond_wait(&a->wake, &a->mu);
		if (a->count == 0 && a->dropped == 0 && a->stop)
			break;
		unsigned n = a->count;
		for (unsigned i = 0; i < n; i++)
			batch[i] = a->queue[(a->head + i) % QUEUE_MAX];
		a->head = (a->head + n) % QUEUE_MAX;
		a->count = 0;
		uint64_t dropped = a->dropped;
		a->dropped = 0;
		pthread_mutex_unlock(&a->mu);

		bool ok = write_batch(a, batch, n, dropped);
		for (unsigned i = 0; i < n; i++)
			free(batch[i]);

		pthread_mutex_lock(&a->mu);
		if (!ok)
			a->io_failed = true;
		a->written += n;
		pthread_cond_broadcast(&a->done);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

enum mote_err audit_open(const char *path, struct audit **out)
{
	struct audit *a = calloc(1, sizeof *a);
	if (!a)
		return MOTE_ENOMEM;
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		free(a);
		return MOTE_EIO;
	}
	a->known_end = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->wake, NULL);
	pthread_cond_init(&a->done, NULL);
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		close(a->fd);
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->wake);
		pthread_cond_destroy(&a->done);
		free(a);
		return MOTE_ENOMEM;
	}
	*out = a;
	return MOTE_OK;
}

static bool event_name_ok(const char *e)
{
	size_t n = strlen(e);
	if (n == 0 || n > 48)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9') || e[i] == '_' ||
		      e[i] == '.'))
			return false;
	return true;
}

enum mote_err audit_append(struct audit *a, const char *event, const char *fields_json)
{
	const char *fields = fields_json ? fields_json : "{}";
	size_t flen = strlen(fields);
	if (!event_name_ok(event) || flen < 2 || fields[0] != '{' || fields[flen - 1] != '}')
		return MOTE_EINVAL;
	for (size_t i = 0; i < flen; i++)
		if ((unsigned char)fields[i] < 0x20) /* a newline would split the record */
			return MOTE_EINVAL;
	if (flen > AUDIT_MAX_FIELDS)
		fields = "{\"truncated\":true}";
	char *body = make_body(event, fields);
	if (!body)
		return MOTE_ENOMEM;
	enum mote_err err = MOTE_OK;
	pthread_mutex_lock(&a->mu);
	if (a->count == QUEUE_MAX || a->stop) {
		a->dropped++;
		err = MOTE_EFULL;
	} else {
		a->queue[(a->head + a->count) % QUEUE_MAX] = body;
		a->count++;
		a->queued++;
		body = NULL;
		pthread_cond_signal(&a->wake);
	}
	pthread_mutex_unlock(&a->mu);
	free(body);
	return err;
}

enum mote_err audit_flush(struct audit *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t target = a->queued;
	pthread_cond_signal(&a->wake);
	while (a->written < target)
		pthread_cond_wait(&a->done, &a->mu);
	bool failed = a->io_failed;
	a->io_failed = false;
	pthread_mutex_unlock(&a->mu);
	return failed ? MOTE_EIO : MOTE_OK;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	close(a->fd);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->wake);
	pthread_cond_destroy(&a->done);
	free(a);
}

size_t audit_json_str(char *buf, size_t cap, const void *s, size_t len)
{
	const unsigned char *p = s;
	size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) buf[n] = (char)(ch); n++; } while (0)
	PUT('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			PUT('\\');
			PUT(c);
		} else if (c < 0x20 || c >= 0x7f) {
			/* Bytes, not code points: every value stays valid JSON
			 * whatever the client sent. */
			static const char digits[] = "0123456789abcdef";
			PUT('\\');
			PUT('u');
			PUT('0');
			PUT('0');
			PUT(digits[c >> 4]);
			PUT(digits[c & 15]);
		} else {
			PUT(c);
		}
	}
	PUT('"');
#undef PUT
	if (cap)
		buf[n < cap ? n : cap - 1] = '\0';
	return n;
}

enum mote_err audit_verify(const char *path, struct audit_verify_result *r)
{
	memset(r, 0, sizeof *r);
	memcpy(r->last_hash, zero_hash, sizeof zero_hash);
	FILE *f = fopen(path, "rb");
	if (!f)
		return MOTE_EIO;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t got;
	uint64_t lineno = 0, last_seq = 0;
	enum mote_err err = MOTE_OK;
	while ((got = getline(&line, &lcap, f)) > 0) {
		lineno++;
		size_t len = (size_t)got;
		uint64_t seq;
		const char *prev, *hash;
		char h[HEX_LEN + 1];
		err = MOTE_EMALFORMED;
		r->bad_line = lineno;
		if (line[len - 1] != '\n') {
			snprintf(r->why, sizeof r->why, "the last line is cut short (no newline)");
			goto out;
		}
		len--;
		if (!parse_record(line, len, &seq, &prev, &hash)) {
			snprintf(r->why, sizeof r->why, "not an audit record (edited or damaged)");
			goto out;
		}
		hash_hex(line, len - HASH_PART, h);
		if (CRYPTO_memcmp(h, hash, HEX_LEN) != 0) {
			snprintf(r->why, sizeof r->why,
				 "record seq %" PRIu64 " was edited: its hash does not match its contents",
				 seq);
			goto out;
		}
		if (memcmp(prev, r->last_hash, HEX_LEN) != 0 || seq != last_seq + 1) {
			if (seq > last_seq + 1)
				snprintf(r->why, sizeof r->why,
					 "records removed before seq %" PRIu64 " (the previous record is "
					 "seq %" PRIu64 ")",
					 seq, last_seq);
			else
				snprintf(r->why, sizeof r->why,
					 "record seq %" PRIu64 " does not follow the record before it "
					 "(removed, reordered or replaced records)",
					 seq);
			goto out;
		}
		last_seq = seq;
		memcpy(r->last_hash, hash, HEX_LEN);
		r->records++;
		err = MOTE_OK;
		r->bad_line = 0;
	}
	if (ferror(f))
		err = MOTE_EIO;
out:
	free(line);
	fclose(f);
	return err;
}
