/*
 * ws_proto.h - the WebSocket wire format (RFC 6455), server side: the
 * HTTP/1.1 Upgrade request parser and the answers to it, the decoder of
 * client frames, the header of server frames. No I/O and no allocation, so
 * the WebSocket stream (ws.c), the unit tests and the fuzz target share it.
 *
 * Threading: stateless functions; a struct ws_decoder belongs to its caller.
 */
#ifndef MOTE_NET_WS_PROTO_H
#define MOTE_NET_WS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define WS_HANDSHAKE_MAX 8192 /* request line + headers; larger gets 431 */
#define WS_HEADERS_MAX 64     /* header lines; more gets 431 */
#define WS_CONTROL_MAX 125    /* control frame payload (RFC 6455 5.5) */
#define WS_KEY_LEN 24         /* base64 of 16 bytes */
#define WS_ACCEPT_LEN 28      /* base64 of a SHA-1 */

enum ws_subproto {
	WS_PROTO_NONE,    /* the client offered none: answer without the header */
	WS_PROTO_MQTT,    /* "mqtt" (MQTT 3.1.1 and 5.0) */
	WS_PROTO_MQTTV31, /* "mqttv3.1", what old clients offer */
};

/* What the parser made of an Upgrade request. */
struct ws_request {
	int status;      /* 101 to switch, else the HTTP status of the refusal */
	const char *why; /* refusals: a short static sentence, also the body */
	uint8_t subproto;
	bool version_hint; /* 426 for the version: the answer names 13 */
	const uint8_t *origin; /* the Origin header's value (a view into the input), or NULL */
	size_t origin_len;
	char key[WS_KEY_LEN + 1]; /* Sec-WebSocket-Key, NUL-terminated (101 only) */
};

/*
 * Parses the request at the start of buf[0..len). MOTE_EAGAIN: it is not
 * complete and nothing seen so far is wrong (read more). MOTE_OK: *req has
 * the verdict (status 101, or 400/404/405/426/431 with why) and *used the
 * length of the request head; bytes after it are the client's first frames.
 * A request head of WS_HANDSHAKE_MAX bytes or more is refused with 431
 * without waiting for its end. Accepted paths: "/mqtt" and "/" (a query
 * string is ignored).
 */
enum mote_err ws_request_parse(const uint8_t *buf, size_t len, struct ws_request *req,
			       size_t *used);

/*
 * Writes the HTTP answer to req into out: 101 Switching Protocols with
 * Sec-WebSocket-Accept (and the chosen subprotocol), or the refusal with a
 * text body and Connection: close. Returns its length (the text is always
 * shorter than 512 bytes; cap must be at least that).
 */
size_t ws_response(const struct ws_request *req, char *out, size_t cap);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + RFC GUID)), NUL-terminated. */
void ws_accept_key(const char key[WS_KEY_LEN], char out[WS_ACCEPT_LEN + 1]);

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 7.4.1) the server sends. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

/*
 * The decoder of client frames: a byte-at-a-time state machine, so frames
 * may arrive in any pieces and frame payloads are never buffered (only
 * control frames, up to 125 bytes, are gathered in ctl).
 */
struct ws_decoder {
	uint64_t max_frame;  /* largest data frame payload; more gets 1009 */
	uint64_t left;       /* payload bytes still to come in this frame */
	uint8_t hdr[14];     /* the header gathered so far */
	uint8_t hdr_len;
	uint8_t mask_pos;    /* where in the mask key the next payload byte is */
	uint8_t opcode;      /* of the current frame */
	bool fin;
	bool in_payload;     /* header complete, payload (left bytes) follows */
	bool in_message;     /* a fragmented binary message awaits continuations */
	uint16_t fail_code;  /* non-zero after an error: the close code */
	const char *fail_why; /* and why, a static sentence for the log */
	uint8_t mask[4];
	uint8_t ctl_len;
	uint8_t ctl[WS_CONTROL_MAX]; /* payload of the control frame being read */
};

enum ws_event {
	WS_EV_NONE,  /* input used up, or output full */
	WS_EV_PING,  /* a whole ping: payload in d->ctl[0..ctl_len) */
	WS_EV_PONG,  /* a whole pong */
	WS_EV_CLOSE, /* a whole close frame: *code is the close code to echo */
	WS_EV_ERROR, /* a protocol violation: *code is the close code to send */
};

/* A decoder in its first state; max_frame 0 means no limit but 2^63. */
void ws_decoder_init(struct ws_decoder *d, uint64_t max_frame);

/*
 * Decodes client bytes in[0..in_len). The payload of binary and
 * continuation frames goes, unmasked, to out[0..out_cap); out may be the
 * same memory as in, or before it (decoding in place). Returns after a whole
 * control frame, at an error, or when the input is used up or the output is
 * full; *in_used and *out_len say how far it got. After WS_EV_ERROR every
 * further call returns it again.
 */
enum ws_event ws_decode(struct ws_decoder *d, const uint8_t *in, size_t in_len, size_t *in_used,
			uint8_t *out, size_t out_cap, size_t *out_len, uint16_t *code);

/* The header of an unmasked server frame. Returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len);

#endif
