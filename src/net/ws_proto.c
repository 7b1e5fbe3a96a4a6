/*
 * ws_proto.c - the WebSocket wire format: the Upgrade request, the answers,
 * client frames, server frame headers (see ws_proto.h).
 *
 * The request parser is strict where leniency would only help an attacker
 * (bare LF, control bytes, obsolete line folding, a repeated Host or key)
 * and answers as soon as what it has seen is wrong, so a client speaking
 * plain MQTT or TLS to a WebSocket port gets a 400 at once rather than
 * waiting for the connect timeout.
 *
 * The frame decoder keeps no frame payload: data frames are unmasked
 * straight into the caller's buffer (in place when the caller reads into the
 * same memory), which is why a frame's size costs no memory and the frame
 * limit is only a sanity bound.
 */
#include "net/ws_proto.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- the Upgrade request --------------------------------------------------- */

static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool ieq(const uint8_t *a, size_t n, const char *b)
{
	size_t m = strlen(b);
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t x = a[i], y = (uint8_t)b[i];
		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}

/* Whether the comma-separated token list v[0..n) holds tok (any case). */
static bool list_has(const uint8_t *v, size_t n, const char *tok)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (e > s && ieq(v + s, e - s, tok))
			return true;
	}
	return false;
}

static enum mote_err refuse(struct ws_request *req, int status, const char *why)
{
	req->status = status;
	req->why = why;
	return MOTE_OK;
}

/* The request line "GET /mqtt HTTP/1.1" (without CRLF). 0 when fine. */
static int check_request_line(const uint8_t *l, size_t n, const char **why)
{
	size_t m = 0;
	while (m < n && is_tchar(l[m]))
		m++;
	if (m == 0 || m >= n || l[m] != ' ') {
		*why = "malformed request line";
		return 400;
	}
	size_t t = m + 1, te = t;
	while (te < n && l[te] != ' ')
		te++;
	if (te == t || te >= n || n - te - 1 != 8 || memcmp(l + te + 1, "HTTP/1.", 7) != 0 ||
	    l[te + 8] < '1' || l[te + 8] > '9') {
		*why = te < n && n - te - 1 == 8 && memcmp(l + te + 1, "HTTP/1.0", 8) == 0
			       ? "HTTP/1.1 is required for a WebSocket upgrade"
			       : "malformed request line";
		return 400;
	}
	if (!(m == 3 && memcmp(l, "GET", 3) == 0)) {
		*why = "only GET upgrades to a WebSocket";
		return 405;
	}
	size_t pe = t;
	while (pe < te && l[pe] != '?')
		pe++;
	if (!((pe - t == 5 && memcmp(l + t, "/mqtt", 5) == 0) || (pe - t == 1 && l[t] == '/'))) {
		*why = "no such path: MQTT over WebSocket is served at /mqtt and /";
		return 404;
	}
	return 0;
}

/*
 * Looks at an incomplete request head: 0 if it may still become a valid
 * request, else the status to answer with now.
 */
static int check_prefix(const uint8_t *buf, size_t len, const char **why)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f ||
		    (c == '\n' && (i == 0 || buf[i - 1] != '\r')) ||
		    (i > 0 && buf[i - 1] == '\r' && c != '\n')) {
			*why = "bad byte in the request head";
			return 400;
		}
	}
	const uint8_t *eol = memchr(buf, '\n', len);
	if (eol)
		return check_request_line(buf, (size_t)(eol - buf) - 1, why);
	size_t m = 0;
	while (m < len && is_tchar(buf[m]))
		m++;
	if ((m < len && buf[m] != ' ') || m > 16) {
		*why = "malformed request line";
		return 400;
	}
	return 0;
}

static bool key_valid(const uint8_t *v, size_t n)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (n != WS_KEY_LEN || v[22] != '=' || v[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++) {
		const char *p = v[i] ? strchr(b64, v[i]) : NULL;
		if (!p)
			return false;
		/* 16 bytes use 4 bits of the last character: the rest must be 0 */
		if (i == 21 && ((p - b64) & 0x0f) != 0)
			return false;
	}
	return true;
}

struct hdr_state {
	unsigned host, key, version, origin;
	bool upgrade, connection, version_ok, offered, mqtt, mqttv31;
};

static int header_line(struct hdr_state *h, struct ws_request *req, const uint8_t *l, size_t n,
		       const char **why)
{
	if (n > 0 && is_ows(l[0])) {
		*why = "folded header lines are not accepted";
		return 400;
	}
	size_t c = 0;
	while (c < n && is_tchar(l[c]))
		c++;
	if (c == 0 || c >= n || l[c] != ':') {
		*why = "malformed header line";
		return 400;
	}
	const uint8_t *v = l + c + 1;
	size_t vn = n - c - 1;
	while (vn > 0 && is_ows(v[0]))
		v++, vn--;
	while (vn > 0 && is_ows(v[vn - 1]))
		vn--;
	if (ieq(l, c, "host")) {
		h->host++;
	} else if (ieq(l, c, "upgrade")) {
		h->upgrade |= list_has(v, vn, "websocket");
	} else if (ieq(l, c, "connection")) {
		h->connection |= list_has(v, vn, "upgrade");
	} else if (ieq(l, c, "sec-websocket-key")) {
		if (h->key++ == 0 && key_valid(v, vn)) {
			memcpy(req->key, v, WS_KEY_LEN);
			req->key[WS_KEY_LEN] = '\0';
		}
	} else if (ieq(l, c, "sec-websocket-version")) {
		h->version++;
		h->version_ok = vn == 2 && v[0] == '1' && v[1] == '3';
	} else if (ieq(l, c, "origin")) {
		h->origin++;
		req->origin = v;
		req->origin_len = vn;
	} else if (ieq(l, c, "sec-websocket-protocol")) {
		h->offered = true;
		h->mqtt |= list_has(v, vn, "mqtt");
		h->mqttv31 |= list_has(v, vn, "mqttv3.1");
	}
	return 0;
}

enum mote_err ws_request_parse(const uint8_t *buf, size_t len, struct ws_request *req,
			       size_t *used)
{
	memset(req, 0, sizeof *req);
	*used = 0;
	const char *why = NULL;
	size_t scan = len < WS_HANDSHAKE_MAX ? len : WS_HANDSHAKE_MAX;
	size_t end = 0;
	for (size_t i = 3; i < scan && end == 0; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n')
			end = i + 1;
	int st = check_prefix(buf, end ? end : scan, &why);
	if (st)
		return refuse(req, st, why);
	if (end == 0) {
		if (len >= WS_HANDSHAKE_MAX)
			return refuse(req, 431, "request head too large");
		return MOTE_EAGAIN;
	}
	*used = end;

	struct hdr_state h = { 0 };
	unsigned lines = 0;
	const uint8_t *p = memchr(buf, '\n', end) + 1; /* after the request line */
	for (;;) {
		const uint8_t *eol = memchr(p, '\n', (size_t)(buf + end - p));
		size_t n = (size_t)(eol - p) - 1;
		if (n == 0)
			break; /* the empty line */
		if (++lines > WS_HEADERS_MAX)
			return refuse(req, 431, "too many header lines");
		st = header_line(&h, req, p, n, &why);
		if (st)
			return refuse(req, st, why);
		p = eol + 1;
	}
	if (h.host != 1)
		return refuse(req, 400, "exactly one Host header is required");
	if (h.origin > 1)
		return refuse(req, 400, "more than one Origin header");
	if (!h.upgrade || !h.connection)
		return refuse(req, 426, "this is an MQTT over WebSocket endpoint: send a "
					"WebSocket upgrade request");
	if (h.version == 0)
		return refuse(req, 400, "Sec-WebSocket-Version is missing");
	if (h.version != 1 || !h.version_ok) {
		req->version_hint = true;
		return refuse(req, 426, "only WebSocket version 13 is supported");
	}
	if (h.key != 1 || req->key[0] == '\0') {
		req->key[0] = '\0';
		return refuse(req, 400, "one valid Sec-WebSocket-Key (base64 of 16 bytes) is required");
	}
	if (h.offered && !h.mqtt && !h.mqttv31)
		return refuse(req, 400, "no supported subprotocol: offer mqtt");
	req->subproto = h.mqtt ? WS_PROTO_MQTT : h.mqttv31 ? WS_PROTO_MQTTV31 : WS_PROTO_NONE;
	req->status = 101;
	return MOTE_OK;
}

void ws_accept_key(const char key[WS_KEY_LEN], char out[WS_ACCEPT_LEN + 1])
{
	uint8_t in[WS_KEY_LEN + sizeof ws_guid - 1];
	memcpy(in, key, WS_KEY_LEN);
	memcpy(in + WS_KEY_LEN, ws_guid, sizeof ws_guid - 1);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!EVP_Digest(in, sizeof in, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20) {
		/* SHA-1 is always there in OpenSSL 3's default provider; a
		 * broken install answers with an accept no client will take. */
		memset(out, 'A', WS_ACCEPT_LEN);
		out[WS_ACCEPT_LEN] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars and a NUL */
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Bad Request";
	}
}

size_t ws_response(const struct ws_request *req, char *out, size_t cap)
{
	int n;
	if (req->status == 101) {
		char accept[WS_ACCEPT_LEN + 1];
		ws_accept_key(req->key, accept);
		const char *proto = req->subproto == WS_PROTO_MQTT	   ? "Sec-WebSocket-Protocol: mqtt\r\n"
				    : req->subproto == WS_PROTO_MQTTV31 ? "Sec-WebSocket-Protocol: mqttv3.1\r\n"
									  : "";
		n = snprintf(out, cap,
			     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			     accept, proto);
	} else {
		const char *extra = req->status == 405		      ? "Allow: GET\r\n"
				    : req->version_hint		      ? "Sec-WebSocket-Version: 13\r\n"
				    : req->status == 426 ? "Upgrade: websocket\r\n"
							 : "";
		const char *why = req->why ? req->why : "bad request";
		n = snprintf(out, cap,
			     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			     "Connection: close\r\n%s\r\n%s\n",
			     req->status, reason_phrase(req->status), strlen(why) + 1, extra, why);
	}
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- frames ------------------------------------------------------------------ */

void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame)
{
	memset(d, 0, sizeof *d);
	d->max_frame = max_frame ? max_frame : UINT64_MAX >> 1;
}

static enum ws_event fail(struct ws_decoder *d, uint16_t code, const char *why, uint16_t *out)
{
	d->fail_code = code;
	d->fail_why = why;
	*out = code;
	return WS_EV_ERROR;
}

/* Checks the first two header bytes. 0, or the close code and *why. */
static uint16_t check_start(const struct ws_decoder *d, const char **why)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	if (b0 & 0x70) {
		*why = "reserved bits set (no extension was agreed)";
		return WS_CLOSE_PROTOCOL;
	}
	if (!(b1 & 0x80)) {
		*why = "unmasked frame (client frames must be masked)";
		return WS_CLOSE_PROTOCOL;
	}
	*why = "continuation without a message, or a new message inside a fragmented one";
	switch (b0 & 0x0f) {
	case WS_OP_CONT:
		return d->in_message ? 0 : WS_CLOSE_PROTOCOL;
	case WS_OP_BINARY:
		return d->in_message ? WS_CLOSE_PROTOCOL : 0;
	case WS_OP_TEXT:
		if (d->in_message)
			return WS_CLOSE_PROTOCOL;
		*why = "text frame: MQTT travels in binary frames";
		return WS_CLOSE_UNSUPPORTED;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		/* control frames are whole and short (5.5) */
		*why = "control frame fragmented or longer than 125 bytes";
		return (b0 & 0x80) && (b1 & 0x7f) <= WS_CONTROL_MAX ? 0 : WS_CLOSE_PROTOCOL;
	default:
		*why = "unknown opcode";
		return WS_CLOSE_PROTOCOL;
	}
}

static size_t header_size(uint8_t b1)
{
	uint8_t l7 = b1 & 0x7f;
	return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
}

/* The payload length in the header, whose length field ends at `at`. */
static uint64_t frame_len(const struct ws_decoder *d, size_t at)
{
	uint64_t len = d->hdr[1] & 0x7f;
	if (at > 2) {
		len = 0;
		for (size_t j = 2; j < at; j++)
			len = len << 8 | d->hdr[j];
	}
	return len;
}

static uint16_t check_length(const struct ws_decoder *d, size_t at, const char **why)
{
	uint64_t len = frame_len(d, at);
	if (len >> 63) {
		*why = "64-bit length with the top bit set";
		return WS_CLOSE_PROTOCOL; /* 5.2: the most significant bit is 0 */
	}
	if ((d->hdr[0] & 0x0f) < WS_OP_CLOSE && len > d->max_frame) {
		*why = "frame longer than the limit (max packet size + 64 KiB)";
		return WS_CLOSE_TOO_BIG;
	}
	return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool close_code_valid(uint16_t c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* A whole control frame is in d->ctl: what to tell the caller. */
static enum ws_event control_done(struct ws_decoder *d, uint16_t *code)
{
	if (d->opcode == WS_OP_PING)
		return WS_EV_PING;
	if (d->opcode == WS_OP_PONG)
		return WS_EV_PONG;
	if (d->ctl_len == 0) {
		*code = WS_CLOSE_NORMAL;
		return WS_EV_CLOSE;
	}
	if (d->ctl_len == 1)
		return fail(d, WS_CLOSE_PROTOCOL, "close frame of 1 byte", code);
	uint16_t c = (uint16_t)(d->ctl[0] << 8 | d->ctl[1]);
	if (!close_code_valid(c))
		return fail(d, WS_CLOSE_PROTOCOL, "close code that must not be sent", code);
	if (!utf8_valid(d->ctl + 2, d->ctl_len - 2u))
		return fail(d, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8", code);
	*code = c;
	return WS_EV_CLOSE;
}

/*
 * Unmasks n bytes from src to dst (dst == src or before it). Eight bytes at
 * a time: each block is loaded whole before it is stored, and the store
 * never reaches past the block just loaded, so the overlap is harmless.
 */
static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint8_t pos)
{
	uint8_t m8[8];
	for (int i = 0; i < 8; i++)
		m8[i] = mask[(pos + i) & 3];
	uint64_t m;
	memcpy(&m, m8, 8);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v ^= m;
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ m8[i & 7];
}

enum ws_event ws_decode(struct ws_decoder *d, const uint8_t *in, size_t in_len, size_t *in_used,
			uint8_t *out, size_t out_cap, size_t *out_len, uint16_t *code)
{
	size_t i = 0, o = 0;
	enum ws_event ev = WS_EV_NONE;
	*code = 0;
	if (d->fail_code) {
		ev = fail(d, d->fail_code, d->fail_why, code);
		goto out;
	}
	while (i < in_len) {
		if (!d->in_payload) {
			d->hdr[d->hdr_len++] = in[i++];
			if (d->hdr_len < 2)
				continue;
			if (d->hdr_len == 2) {
				const char *why;
				uint16_t bad = check_start(d, &why);
				if (bad) {
					ev = fail(d, bad, why, code);
					goto out;
				}
			}
			size_t at = header_size(d->hdr[1]) - 4; /* where the mask key starts */
			if (d->hdr_len == at) {
				/* the length is whole: judge it before the rest arrives */
				const char *why;
				uint16_t bad = check_length(d, at, &why);
				if (bad) {
					ev = fail(d, bad, why, code);
					goto out;
				}
			}
			if (d->hdr_len < at + 4)
				continue;
			d->opcode = d->hdr[0] & 0x0f;
			d->fin = (d->hdr[0] & 0x80) != 0;
			d->left = frame_len(d, at);
			memcpy(d->mask, d->hdr + at, 4);
			d->mask_pos = 0;
			d->ctl_len = 0;
			d->hdr_len = 0;
			d->in_payload = true;
			if (d->opcode < WS_OP_CLOSE)
				d->in_message = !d->fin;
		} else if (d->opcode >= WS_OP_CLOSE) {
			size_t n = in_len - i < d->left ? in_len - i : (size_t)d->left;
			unmask(d->ctl + d->ctl_len, in + i, n, d->mask, d->mask_pos);
			d->ctl_len = (uint8_t)(d->ctl_len + n);
			d->mask_pos = (uint8_t)((d->mask_pos + n) & 3);
			d->left -= n;
			i += n;
		} else {
			size_t n = in_len - i;
			if (n > d->left)
				n = (size_t)d->left;
			if (n > out_cap - o)
				n = out_cap - o;
			if (n == 0)
				break; /* output full */
			unmask(out + o, in + i, n, d->mask, d->mask_pos);
			d->mask_pos = (uint8_t)((d->mask_pos + n) & 3);
			d->left -= n;
			i += n;
			o += n;
		}
		if (d->in_payload && d->left == 0) {
			d->in_payload = false;
			if (d->opcode >= WS_OP_CLOSE) {
				ev = control_done(d, code);
				goto out;
			}
		}
	}
out:
	*in_used = i;
	*out_len = o;
	return ev;
}

size_t ws_frame_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len)
{
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int j = 0; j < 8; j++)
		out[2 + j] = (uint8_t)(len >> (56 - 8 * j));
	return 10;
}
