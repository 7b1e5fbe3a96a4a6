/*
 * test_journal_util.h - helpers shared by the test_journal_* tests: a
 * scratch directory, deterministic records (size, type and bytes follow
 * from the LSN and a seed, so a replayed record can be checked without
 * keeping a copy), and a replay callback that checks every record and the
 * order of LSNs.
 */
#ifndef TEST_JOURNAL_UTIL_H
#define TEST_JOURNAL_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal.h"

static inline uint64_t tj_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Size of record lsn: mostly small, about one in four up to max_big bytes. */
static inline size_t tj_size(uint64_t seed, uint64_t lsn, size_t max_big)
{
	uint64_t h = tj_mix(seed * 31 + lsn);
	if (max_big && (h & 3) == 0)
		return (size_t)((h >> 8) % (max_big + 1));
	return (size_t)((h >> 8) % 300);
}

static inline uint8_t tj_type(uint64_t seed, uint64_t lsn)
{
	return (uint8_t)(1 + tj_mix(seed ^ (lsn << 7)) % 255);
}

static inline void tj_fill(uint64_t seed, uint64_t lsn, uint8_t *p, size_t len)
{
	uint64_t s = tj_mix(seed + lsn * 0x9e3779b97f4a7c15ull) | 1;
	for (size_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
}

/* What a replay saw; records are checked against tj_* as they arrive. */
struct tj_seen {
	uint64_t seed;
	size_t max_big;
	uint64_t count;
	uint64_t first, last; /* LSNs; 0 before the first record */
	uint64_t gaps;        /* times an LSN was not last + 1 */
	uint64_t bad;         /* records whose size, type or bytes were wrong */
	uint8_t *scratch;
	size_t scratch_len;
};

static inline enum mote_err tj_replay(void *arg, uint64_t lsn, uint8_t type, const void *payload,
				      size_t len)
{
	struct tj_seen *s = arg;
	size_t want = tj_size(s->seed, lsn, s->max_big);
	if (s->last && lsn != s->last + 1)
		s->gaps++;
	if (s->last && lsn <= s->last)
		s->bad++; /* LSNs must grow */
	if (!s->first)
		s->first = lsn;
	s->last = lsn;
	s->count++;
	if (len != want || type != tj_type(s->seed, lsn)) {
		s->bad++;
		return MOTE_OK;
	}
	if (s->scratch_len < len) {
		free(s->scratch);
		s->scratch = malloc(len);
		s->scratch_len = len;
	}
	tj_fill(s->seed, lsn, s->scratch, len);
	if (len && memcmp(s->scratch, payload, len) != 0)
		s->bad++;
	return MOTE_OK;
}

static inline void tj_seen_init(struct tj_seen *s, uint64_t seed, size_t max_big)
{
	memset(s, 0, sizeof *s);
	s->seed = seed;
	s->max_big = max_big;
}

static inline void tj_seen_free(struct tj_seen *s)
{
	free(s->scratch);
	s->scratch = NULL;
	s->scratch_len = 0;
}

/* Appends the deterministic record for the next LSN; returns the LSN. */
static inline enum mote_err tj_append(struct journal *j, uint64_t seed, size_t max_big,
				      uint64_t *lsn)
{
	uint64_t next = journal_last_lsn(j) + 1;
	size_t len = tj_size(seed, next, max_big);
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		return MOTE_ENOMEM;
	tj_fill(seed, next, p, len);
	enum mote_err err = journal_append(j, tj_type(seed, next), p, len, lsn);
	free(p);
	return err;
}

static inline char *tj_mkdtemp(void)
{
	const char *t = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof path, "%s/mote-journal-XXXXXX", t && *t ? t : "/tmp");
	char *d = mkdtemp(path);
	return d ? strdup(d) : NULL;
}

/* The journal directory inside a scratch dir (so open creates it). */
static inline char *tj_subdir(const char *root)
{
	size_t n = strlen(root) + 8;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/j", root);
	return p;
}

static inline void tj_rmrf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		size_t n = strlen(dir) + strlen(e->d_name) + 2;
		char *path = malloc(n);
		if (!path)
			break;
		snprintf(path, n, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			tj_rmrf(path);
		else
			unlink(path);
		free(path);
	}
	closedir(d);
	rmdir(dir);
}

static inline void tj_seg_path(char *out, size_t cap, const char *dir, unsigned segno)
{
	snprintf(out, cap, "%s/%08u.log", dir, segno);
}

static inline off_t tj_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

#endif
