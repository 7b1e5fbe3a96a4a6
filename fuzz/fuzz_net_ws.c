/*
 * fuzz_net_ws.c - libFuzzer target for the WebSocket handshake parser and
 * the frame decoder (src/net/ws_proto.c).
 *
 * Input: byte 0 picks the part. Even: the rest is an Upgrade request; the
 * parser's verdict must be consistent (EAGAIN only below the size limit and
 * without `used`, a head length within the input, an answer that fits) and
 * every byte prefix of the input must get either "wait" or the same
 * refusal-or-success class as the whole.
 * Odd: byte 1 is the frame limit exponent and byte 2 the output room;
 * the rest is a stream of client frames, decoded twice: in one call chain
 * into a separate buffer, and in chunks of the sizes byte 0 suggests, in
 * place. Both must agree on every payload byte and on where an error came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_net_ws: %s\n", what);
		__builtin_trap();
	}
}

static void fuzz_request(const uint8_t *p, size_t n)
{
	struct ws_request req;
	size_t used;
	enum mote_err e = ws_request_parse(p, n, &req, &used);
	if (e == MOTE_EAGAIN) {
		check(n < WS_HANDSHAKE_MAX, "waits past the size limit");
		check(used == 0, "used set while waiting");
		return;
	}
	check(e == MOTE_OK, "unexpected error");
	check(used <= n, "head longer than the input");
	check(req.status == 101 || req.status == 400 || req.status == 404 || req.status == 405 ||
		      req.status == 426 || req.status == 431,
	      "unknown status");
	check(req.status == 101 || req.why != NULL, "refusal without a reason");
	char out[512];
	size_t len = ws_response(&req, out, sizeof out);
	check(len > 12 && len < sizeof out && memcmp(out, "HTTP/1.1 ", 9) == 0, "bad answer");
	if (req.status == 101) {
		check(used > 0, "accepted without a head");
		check(strlen(req.key) == WS_KEY_LEN, "accepted without a key");
		/* a prefix that ends before the head is complete must wait */
		struct ws_request r2;
		size_t u2;
		check(ws_request_parse(p, used - 1, &r2, &u2) == MOTE_EAGAIN, "prefix not waiting");
	}
}

struct run {
	uint8_t out[4096];
	size_t got;
	size_t err_at; /* input offset where the error came, or SIZE_MAX */
	uint16_t code;
	int controls;
};

static void decode_all(const uint8_t *p, size_t n, uint64_t max, size_t room, size_t chunk,
		       bool in_place, struct run *r)
{
	struct ws_decoder d;
	ws_decoder_init(&d, max);
	r->got = 0;
	r->err_at = SIZE_MAX;
	r->controls = 0;
	uint8_t *copy = malloc(n ? n : 1);
	if (!copy)
		return;
	memcpy(copy, p, n);
	size_t off = 0;
	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk;
		size_t used, o;
		uint16_t code;
		uint8_t *dst;
		size_t cap;
		if (in_place) {
			dst = copy + off;
			cap = len;
		} else {
			dst = r->out + r->got;
			cap = sizeof r->out - r->got < room ? sizeof r->out - r->got : room;
		}
		enum ws_event ev = ws_decode(&d, copy + off, len, &used, dst, cap, &o, &code);
		check(used <= len && o <= cap && o <= used, "decoder overran");
		if (in_place) {
			size_t keep = r->got + o <= sizeof r->out ? o : sizeof r->out - r->got;
			memmove(r->out + r->got, dst, keep);
			r->got += keep;
		} else {
			r->got += o;
		}
		off += used;
		if (ev == WS_EV_ERROR) {
			check(d.fail_why != NULL && d.fail_code == code, "error without a reason");
			r->err_at = off;
			r->code = code;
			uint16_t again;
			size_t u2, o2;
			check(ws_decode(&d, copy, n, &u2, r->out, 0, &o2, &again) == WS_EV_ERROR &&
				      again == code,
			      "error not sticky");
			break;
		}
		if (ev == WS_EV_CLOSE)
			break;
		if (ev != WS_EV_NONE)
			r->controls++;
		if (used == 0 && o == 0 && ev == WS_EV_NONE)
			break; /* output full */
		if (r->got >= sizeof r->out)
			break;
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		fuzz_request(data + 1, size - 1);
		return 0;
	}
	if (size < 3)
		return 0;
	uint64_t max = (uint64_t)1 << (data[1] % 24);
	size_t chunk = 1 + (data[0] >> 1) % 17;
	const uint8_t *p = data + 3;
	size_t n = size - 3;
	struct run *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	if (!a || !b) {
		free(a);
		free(b);
		return 0;
	}
	decode_all(p, n, max, sizeof a->out, n ? n : 1, false, a);
	decode_all(p, n, max, sizeof b->out, chunk, true, b);
	if (a->got < sizeof a->out && b->got < sizeof b->out) {
		check(a->got == b->got, "chunked decode gave a different length");
		check(a->err_at == b->err_at, "chunked decode failed elsewhere");
		check(a->err_at == SIZE_MAX || a->code == b->code, "different close codes");
		check(a->controls == b->controls, "different control frames");
	}
	size_t common = a->got < b->got ? a->got : b->got;
	check(memcmp(a->out, b->out, common) == 0, "payload differs");
	free(a);
	free(b);
	return 0;
}
