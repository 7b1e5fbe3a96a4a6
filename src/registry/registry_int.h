/* registry_int.h - what registry_json.c needs of registry.c (private). */
#ifndef MOTE_REGISTRY_INT_H
#define MOTE_REGISTRY_INT_H

#include "registry/registry.h"

#include <cjson/cJSON.h>

sqlite3 *registry_db(struct registry *r);
/* name, model, tags may each be NULL (not given). MOTE_EINVAL + sentence. */
enum mote_err registry_check_fields(const char *name, const char *model, const cJSON *tags,
				    char *err, size_t errcap);
/* Changes the given fields (NULL: unchanged). MOTE_ENOTFOUND / MOTE_EIO. */
enum mote_err registry_update(struct registry *r, const char *id, const char *name,
			      const char *model, const char *tags_json, char *err, size_t errcap);

#endif
