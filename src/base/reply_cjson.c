/* reply_cjson.c - a cJSON tree as a platform answer (see reply.h). */
#include <cjson/cJSON.h>

#include "base/reply.h"

void mote_reply_cjson(struct mote_reply *r, int status, struct cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!text)
		mote_reply_error(r, 500, "out of memory");
	else
		mote_reply_json(r, status, text);
}
