/* reply.c - the platform's HTTP-style answers (see reply.h). */
#include "base/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mote_reply_word(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 406: return "not_acceptable";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 415: return "unsupported_media_type";
	case 429: return "too_many_requests";
	case 503: return "unavailable";
	default: return status >= 500 ? "internal" : "error";
	}
}

void mote_reply_json(struct mote_reply *r, int status, char *json)
{
	r->status = json || status == 204 ? status : 500;
	r->body = json;
	r->content_type = NULL;
}

/* JSON string escaping of the message: quotes, backslashes, control bytes. */
static size_t escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		char tmp[8];
		size_t n;
		if (*p == '"' || *p == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			n = 2;
		} else if (*p < 0x20) {
			n = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", *p);
		} else {
			tmp[0] = (char)*p;
			n = 1;
		}
		if (o + n >= cap)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

void mote_reply_error(struct mote_reply *r, int status, const char *fmt, ...)
{
	char msg[512], esc[1100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	escape(esc, sizeof esc, msg);
	size_t cap = strlen(esc) + 96;
	char *body = malloc(cap);
	if (body)
		snprintf(body, cap, "{\"status\":%d,\"error\":\"%s\",\"message\":\"%s\"}", status,
			 mote_reply_word(status), esc);
	r->status = body ? status : 500;
	r->body = body;
	r->content_type = NULL;
}

void mote_reply_clear(struct mote_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->status = 0;
	r->content_type = NULL;
}
