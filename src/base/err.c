/* err.c - descriptions for enum mote_err. */
#include "base/err.h"

const char *mote_strerror(enum mote_err err)
{
	static const char *const text[MOTE_ERR_COUNT_] = {
		[MOTE_OK] = "success",
		[MOTE_ENOMEM] = "out of memory",
		[MOTE_EINVAL] = "invalid argument",
		[MOTE_EAGAIN] = "try again (incomplete input or would block)",
		[MOTE_ENOSPC] = "buffer too small",
		[MOTE_EMALFORMED] = "malformed input",
		[MOTE_EPROTO] = "protocol error",
		[MOTE_ETOOBIG] = "exceeds a size limit",
		[MOTE_EIO] = "input/output error",
		[MOTE_ECLOSED] = "connection closed by peer",
		[MOTE_ETIMEDOUT] = "timed out",
		[MOTE_ENOTFOUND] = "not found",
		[MOTE_EEXIST] = "already exists",
		[MOTE_EDENIED] = "not authorized",
		[MOTE_EFULL] = "queue or table full",
	};
	if ((unsigned)err >= MOTE_ERR_COUNT_ || text[err] == 0)
		return "unknown error";
	return text[err];
}
