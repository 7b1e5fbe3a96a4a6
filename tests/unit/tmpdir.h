/*
 * tmpdir.h - removing a test's temporary folder tree (made with mkdtemp).
 * Needs _XOPEN_SOURCE 700 defined before the first include, for nftw.
 */
#ifndef MOTE_TEST_TMPDIR_H
#define MOTE_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int tmpdir_rm_one(const char *path, const struct stat *st, int flag,
				struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Deletes dir and everything under it (symlinks are removed, not followed). */
static inline void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
