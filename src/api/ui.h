/*
 * ui.h - the dashboard's files as the hub serves them (private to src/api):
 * the table of embedded assets (generated at build time from web/ by
 * web/embed.cmake) and the answer to GET/HEAD / and /assets/<name>.
 *
 * Threading: stateless; the table is const. Ownership: every pointer is
 * into static storage.
 */
#ifndef MOTE_API_UI_H
#define MOTE_API_UI_H

#include <stddef.h>

struct ui_asset {
	const char *name;          /* "app.js" */
	const char *content_type;  /* "text/javascript; charset=utf-8" */
	const unsigned char *data; /* len bytes (and a NUL after them) */
	size_t len;
	const char *etag;          /* "\"0123456789abcdef\"", from the bytes' SHA-256 */
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_nassets;

/* The asset called name, or NULL. */
const struct ui_asset *ui_asset_find(const char *name);

#define UI_MAX_HEADERS 12

struct ui_answer {
	unsigned status;                 /* 200, 304, 400 or 404 */
	const struct ui_asset *asset;    /* 200 and 304: what is sent */
	const char *hdr[UI_MAX_HEADERS][2];
	unsigned nhdr;                   /* 200 and 304 only */
	char message[160];               /* 400/404: the sentence of the error */
};

/*
 * The answer to the dashboard's routes. index: "/" (asset NULL) or
 * "/assets/{name}" (asset = the decoded name). if_none_match: the request's
 * If-None-Match header or NULL. A name that is not a plain file name
 * (letters, digits, '.', '_', '-', no leading '.', at most 64 bytes) is a
 * 400; a plain one that is not embedded is a 404.
 */
void ui_answer(const char *asset, const char *if_none_match, struct ui_answer *out);

#endif
