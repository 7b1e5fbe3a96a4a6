/*
 * ui.c - the dashboard (web/) served by the API's listener: GET and HEAD
 * of / (index.html) and /assets/<name> (the esbuild bundle, its CSS, the
 * icon), all embedded in the binary at build time (web/web.cmake), so the
 * hub needs no files and no internet access to show it.
 *
 * The routes are public: the page is the same for everyone and holds no
 * data; every API call it makes carries the token. "/" accepts ?token=
 * (route.c) and ignores it; the page's script moves it to localStorage and
 * out of the address bar.
 *
 * Headers, and why:
 * - Content-Security-Policy: scripts, styles, images and fetch() from this
 *   origin only, no inline script or style, no <base>, no framing. The
 *   page shows device-supplied strings (names, tags, twin JSON); should one
 *   ever reach the DOM unescaped, no script can run from it.
 * - Referrer-Policy: no-referrer - the first load's URL can carry the token.
 * - X-Content-Type-Options: nosniff, X-Frame-Options: DENY (older browsers'
 *   frame-ancestors), Cross-Origin-Opener-Policy / -Resource-Policy:
 *   same-origin.
 * - Cache-Control: the page itself no-store (its URL may hold the token,
 *   which must not land in a disk cache); the assets no-cache with an ETag
 *   from their bytes: a browser keeps them and revalidates (304), and a new
 *   build is picked up at once without hashed file names.
 */
#include "api/ui.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define UI_CSP                                                                              \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "         \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const struct ui_asset *ui_asset_find(const char *name)
{
	for (size_t i = 0; i < ui_nassets; i++)
		if (strcmp(ui_assets[i].name, name) == 0)
			return &ui_assets[i];
	return NULL;
}

static bool plain_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* Whether the If-None-Match list holds etag (or is "*"). Weak tags match
 * too: a GET may use the weak comparison (RFC 9110 13.1.2). */
static bool etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' ||
						  p[n] == '\t'))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static void add(struct ui_answer *out, const char *name, const char *value)
{
	if (out->nhdr < UI_MAX_HEADERS) {
		out->hdr[out->nhdr][0] = name;
		out->hdr[out->nhdr][1] = value;
		out->nhdr++;
	}
}

void ui_answer(const char *asset, const char *if_none_match, struct ui_answer *out)
{
	memset(out, 0, sizeof *out);
	const struct ui_asset *a;
	if (!asset) {
		a = ui_asset_find("index.html");
	} else if (!plain_name(asset)) {
		out->status = 400;
		snprintf(out->message, sizeof out->message,
			 "an asset name is a plain file name: letters, digits, '.', '_', '-'");
		return;
	} else {
		a = ui_asset_find(asset);
		/* The page has one address, "/", where it is never cached. */
		if (a && strcmp(a->name, "index.html") == 0)
			a = NULL;
	}
	if (!a) {
		out->status = 404;
		snprintf(out->message, sizeof out->message, "no asset '%.64s'", asset ? asset : "index.html");
		return;
	}
	out->asset = a;
	out->status = asset && if_none_match && etag_matches(if_none_match, a->etag) ? 304 : 200;
	add(out, "Content-Type", a->content_type);
	add(out, "Cache-Control", asset ? "no-cache" : "no-store");
	if (asset)
		add(out, "ETag", a->etag);
	add(out, "Content-Security-Policy", UI_CSP);
	add(out, "X-Content-Type-Options", "nosniff");
	add(out, "X-Frame-Options", "DENY");
	add(out, "Referrer-Policy", "no-referrer");
	add(out, "Cross-Origin-Opener-Policy", "same-origin");
	add(out, "Cross-Origin-Resource-Policy", "same-origin");
}
