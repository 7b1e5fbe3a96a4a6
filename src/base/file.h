/*
 * file.h - reading a whole (small) file: configuration, ACLs, stores.
 */
#ifndef MOTE_BASE_FILE_H
#define MOTE_BASE_FILE_H

#include <stddef.h>

#include "base/err.h"

/*
 * Reads all of path into a new buffer with a NUL after the last byte, so
 * text parsers can use it directly. *out is the caller's to free; *len (may
 * be NULL) is the byte count without the NUL.
 * MOTE_ENOTFOUND: no such file; MOTE_EIO: another open or read error
 * (errno says which); MOTE_ETOOBIG: longer than max bytes; MOTE_ENOMEM.
 */
enum mote_err mote_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
