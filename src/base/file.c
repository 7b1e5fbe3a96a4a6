/*
 * file.c - reading a whole file (file.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/file.h"

enum mote_err mote_read_file(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? MOTE_ENOTFOUND : MOTE_EIO;
	enum mote_err err = MOTE_OK;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap); /* owned here until handed to *out */
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				err = MOTE_EIO;
			break;
		}
		if (n > max) {
			err = MOTE_ETOOBIG;
			break;
		}
		if (n + 1 == cap) {
			char *grown = realloc(buf, cap * 2);
			if (!grown) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = grown;
			cap *= 2;
		}
	}
	int saved = errno;
	fclose(f);
	errno = saved;
	if (!buf)
		return MOTE_ENOMEM;
	if (err != MOTE_OK) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return MOTE_OK;
}
