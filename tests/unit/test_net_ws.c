/* test_net_ws.c - the WebSocket wire format and the WebSocket stream over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tcp.h"
#include "net/ws.h"
#include "net/ws_proto.h"

#define GOOD_HEAD                                                                        \
	"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, "  \
	"Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                        \
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

static int parse(const char *text, struct ws_request *req)
{
	size_t used;
	enum mote_err e = ws_request_parse((const uint8_t *)text, strlen(text), req, &used);
	if (e == MOTE_EAGAIN)
		return 0;
	assert_int_equal(e, MOTE_OK);
	return req->status;
}

static void accept_key_matches_rfc_example(void **state)
{
	(void)state;
	char out[WS_ACCEPT_LEN + 1];
	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void request_verdicts(void **state)
{
	(void)state;
	struct ws_request r;
	assert_int_equal(parse(GOOD_HEAD, &r), 101);
	assert_int_equal(r.subproto, WS_PROTO_MQTT);
	char buf[512];
	size_t n = ws_response(&r, buf, sizeof buf);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_non_null(strstr(buf, "Sec-WebSocket-Protocol: mqtt\r\n"));

	/* incomplete but plausible: wait */
	assert_int_equal(parse("GET /mqtt HTTP/1.1\r\nHost: h\r\n", &r), 0);
	assert_int_equal(parse("GE", &r), 0);
	/* plain MQTT on the port: refused at once */
	assert_int_equal(parse("\x10\x0c\x00\x04MQTT", &r), 400);
	assert_int_equal(parse("POST /mqtt HTTP/1.1\r\n", &r), 405);
	assert_int_equal(parse("GET /other HTTP/1.1\r\n", &r), 404);
	assert_int_equal(parse("GET /?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", &r), 426);
	assert_int_equal(parse("GET /mqtt HTTP/1.0\r\n", &r), 400);
	assert_int_equal(parse("GET /mqtt HTTP/1.1\nHost: h\n\n", &r), 400);
	/* version 8 -> 426 naming 13 */
	char text[1024];
	snprintf(text, sizeof text, "%s", GOOD_HEAD);
	memcpy(strstr(text, "Version: 13") + 9, " 8", 2);
	assert_int_equal(parse(text, &r), 426);
	ws_response(&r, buf, sizeof buf);
	assert_non_null(strstr(buf, "Sec-WebSocket-Version: 13\r\n"));
	/* no key */
	assert_int_equal(parse("GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "
			       "Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
			       &r),
			 400);
	/* bad key */
	snprintf(text, sizeof text, "%s", GOOD_HEAD);
	memcpy(strstr(text, "dGhl"), "!!", 2);
	assert_int_equal(parse(text, &r), 400);
	/* only a foreign subprotocol */
	snprintf(text, sizeof text, "%s", GOOD_HEAD);
	memcpy(strstr(text, "Protocol: mqtt") + 10, "chat", 4);
	assert_int_equal(parse(text, &r), 400);
	/* mqttv3.1 tolerated */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: "
			       "upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqttv3.1\r\n\r\n",
			       &r),
			 101);
	assert_int_equal(r.subproto, WS_PROTO_MQTTV31);
	/* huge head */
	char *big = malloc(WS_HANDSHAKE_MAX + 100);
	strcpy(big, "GET /mqtt HTTP/1.1\r\nX: ");
	memset(big + strlen(big), 'a', WS_HANDSHAKE_MAX);
	big[WS_HANDSHAKE_MAX + 50] = '\0';
	assert_int_equal(parse(big, &r), 431);
	free(big);
}

/* A masked client frame into out; returns its length. */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *p, size_t n)
{
	static const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t h = 0;
	out[h++] = b0;
	if (n < 126) {
		out[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 0x80 | 127;
		for (int j = 0; j < 8; j++)
			out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * j));
	}
	memcpy(out + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		out[h + i] = p[i] ^ mask[i & 3];
	return h + n;
}

static void decoder_split_anywhere(void **state)
{
	(void)state;
	uint8_t payload[300], wire[1024], out[600];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	/* a fragmented message with a ping between its pieces */
	size_t n = client_frame(wire, 0x02, payload, 100);
	n += client_frame(wire + n, 0x89, (const uint8_t *)"hi", 2);
	n += client_frame(wire + n, 0x80, payload + 100, 200);
	for (size_t step = 1; step <= n; step++) {
		struct ws_decoder d;
		ws_decoder_init(&d, 1000);
		size_t got = 0, pings = 0;
		for (size_t off = 0; off < n;) {
			size_t len = n - off < step ? n - off : step;
			size_t used, o;
			uint16_t code;
			enum ws_event ev =
				ws_decode(&d, wire + off, len, &used, out + got, sizeof out - got, &o, &code);
			assert_int_not_equal(ev, WS_EV_ERROR);
			if (ev == WS_EV_PING) {
				assert_int_equal(d.ctl_len, 2);
				assert_memory_equal(d.ctl, "hi", 2);
				pings++;
			}
			off += used;
			got += o;
		}
		assert_int_equal(pings, 1);
		assert_int_equal(got, 300);
		assert_memory_equal(out, payload, 300);
	}
}

static uint16_t decode_error(const uint8_t *wire, size_t n, uint64_t max)
{
	struct ws_decoder d;
	ws_decoder_init(&d, max);
	uint8_t out[256];
	size_t used, o;
	uint16_t code = 0;
	enum ws_event ev = ws_decode(&d, wire, n, &used, out, sizeof out, &o, &code);
	return ev == WS_EV_ERROR ? code : 0;
}

static void decoder_violations(void **state)
{
	(void)state;
	uint8_t w[64];
	size_t n;
	/* unmasked */
	const uint8_t unmasked[] = { 0x82, 0x01, 0x10 };
	assert_int_equal(decode_error(unmasked, 3, 100), WS_CLOSE_PROTOCOL);
	n = client_frame(w, 0x81, (const uint8_t *)"x", 1); /* text */
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_UNSUPPORTED);
	n = client_frame(w, 0xC2, (const uint8_t *)"x", 1); /* RSV1 */
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_PROTOCOL);
	n = client_frame(w, 0x83, (const uint8_t *)"x", 1); /* opcode 3 */
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_PROTOCOL);
	n = client_frame(w, 0x09, (const uint8_t *)"x", 1); /* fragmented ping */
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_PROTOCOL);
	n = client_frame(w, 0x80, (const uint8_t *)"x", 1); /* continuation first */
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_PROTOCOL);
	const uint8_t huge[] = { 0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0 }; /* 2^40 */
	assert_int_equal(decode_error(huge, sizeof huge, 1 << 20), WS_CLOSE_TOO_BIG);
	const uint8_t msb[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(decode_error(msb, sizeof msb, 0), WS_CLOSE_PROTOCOL);
	const uint8_t bigping[] = { 0x89, 0xfe, 0x01, 0x00 };
	assert_int_equal(decode_error(bigping, sizeof bigping, 0), WS_CLOSE_PROTOCOL);
	const uint8_t code1[] = { 0x03, 0xe8 }; /* close 1000 is fine */
	n = client_frame(w, 0x88, code1, 2);
	assert_int_equal(decode_error(w, n, 100), 0);
	const uint8_t code2[] = { 0x03, 0xed }; /* 1005 must not be sent */
	n = client_frame(w, 0x88, code2, 2);
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_PROTOCOL);
	const uint8_t badutf[] = { 0x03, 0xe8, 0xc0, 0x80 };
	n = client_frame(w, 0x88, badutf, 4);
	assert_int_equal(decode_error(w, n, 100), WS_CLOSE_INVALID_DATA);
}

/* ---- the stream over a socketpair ------------------------------------------- */

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

/* Reads from the WebSocket until want bytes came (or it ends). */
static size_t ws_read_some(struct net_stream *s, uint8_t *buf, size_t want)
{
	size_t got = 0;
	for (int spins = 0; got < want && spins < 100000; spins++) {
		ssize_t n = s->ops->read(s, buf + got, want - got);
		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EAGAIN)
			break;
	}
	return got;
}

static void stream_round_trip(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	struct net_stream tcp, ws;
	net_stream_tcp(&tcp, sv[0]);
	assert_int_equal(net_stream_ws(&ws, &tcp, &(struct ws_options){ .max_frame = 1 << 20 }), MOTE_OK);

	/* the request and a first frame in one write */
	uint8_t wire[4096];
	size_t hl = strlen(GOOD_HEAD);
	memcpy(wire, GOOD_HEAD, hl);
	size_t n = hl + client_frame(wire + hl, 0x82, (const uint8_t *)"hello", 5);
	n += client_frame(wire + n, 0x89, (const uint8_t *)"p", 1);
	write_all(sv[1], wire, n);
	uint8_t buf[256];
	assert_int_equal(ws_read_some(&ws, buf, 5), 5);
	assert_memory_equal(buf, "hello", 5);
	char answer[1024] = { 0 };
	ssize_t r = read(sv[1], answer, sizeof answer - 1);
	assert_true(r > 0);
	assert_memory_equal(answer, "HTTP/1.1 101 ", 13);
	char *end = strstr(answer, "\r\n\r\n");
	assert_non_null(end);
	const uint8_t *pong = (const uint8_t *)end + 4;
	assert_int_equal(pong[0], 0x8A);
	assert_int_equal(pong[1], 1);
	assert_int_equal(pong[2], 'p');

	/* a large write through a small socket buffer: frames stay whole */
	size_t big = 300000;
	uint8_t *src = malloc(big), *dst = malloc(big);
	for (size_t i = 0; i < big; i++)
		src[i] = (uint8_t)(i * 13 + 1);
	size_t sent = 0, recvd = 0, fpos = 0, fleft = 0;
	uint8_t hdr[10];
	size_t hgot = 0, hneed = 2;
	while (recvd < big) {
		if (sent < big) {
			struct iovec v[2] = { { src + sent, (big - sent) / 2 },
					      { src + sent + (big - sent) / 2, big - sent - (big - sent) / 2 } };
			ssize_t w = ws.ops->writev(&ws, v, 2);
			if (w > 0)
				sent += (size_t)w;
			else
				assert_int_equal(errno, EAGAIN);
		} else if (ws.want_write) {
			ws.ops->flush(&ws);
		}
		uint8_t chunk[3000];
		ssize_t got = read(sv[1], chunk, sizeof chunk);
		for (ssize_t i = 0; i < got; i++) {
			if (fleft == 0) {
				hdr[hgot++] = chunk[i];
				if (hgot == 2)
					hneed = 2 + ((hdr[1] & 0x7f) == 126 ? 2 : (hdr[1] & 0x7f) == 127 ? 8 : 0);
				if (hgot == hneed) {
					assert_int_equal(hdr[0], 0x82); /* unmasked binary, FIN */
					assert_int_equal(hdr[1] & 0x80, 0);
					fleft = hdr[1] & 0x7f;
					if (fleft == 126)
						fleft = (size_t)hdr[2] << 8 | hdr[3];
					assert_true(fleft > 0 && fleft <= 65535);
					hgot = 0;
					hneed = 2;
				}
				continue;
			}
			dst[fpos++] = chunk[i];
			fleft--;
			recvd++;
		}
	}
	assert_memory_equal(src, dst, big);
	free(src);
	free(dst);

	/* the client closes: the echo comes back and read says end of stream */
	const uint8_t code[] = { 0x03, 0xe9 };
	n = client_frame(wire, 0x88, code, 2);
	write_all(sv[1], wire, n);
	while ((r = ws.ops->read(&ws, buf, sizeof buf)) < 0 && errno == EAGAIN)
		;
	assert_int_equal(r, 0);
	uint8_t echo[4];
	assert_int_equal(read(sv[1], echo, 4), 4);
	assert_int_equal(echo[0], 0x88);
	assert_int_equal(echo[2] << 8 | echo[3], 1001);
	ws.ops->close(&ws);
	close(sv[1]);
}

static void stream_refuses_and_answers(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	struct net_stream tcp, ws;
	net_stream_tcp(&tcp, sv[0]);
	assert_int_equal(net_stream_ws(&ws, &tcp, &(struct ws_options){ .max_frame = 1 << 20 }), MOTE_OK);
	const char *req = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
	write_all(sv[1], req, strlen(req));
	uint8_t buf[64];
	assert_int_equal(ws.ops->read(&ws, buf, sizeof buf), -1);
	assert_int_equal(errno, EPROTO);
	assert_non_null(ws.fault);
	assert_non_null(strstr(ws.fault, "404"));
	ws.ops->close(&ws);
	char answer[1024] = { 0 };
	assert_true(read(sv[1], answer, sizeof answer - 1) > 0);
	assert_memory_equal(answer, "HTTP/1.1 404 Not Found\r\n", 24);
	close(sv[1]);
}

/*
 * An inner stream that serves `in` to reads, takes at most `quota` bytes per
 * writev and refuses every other call (EAGAIN), so frames are cut at every
 * possible place, headers included. What it takes is appended to `out`.
 */
struct trickle {
	const uint8_t *in;
	size_t in_len, in_pos;
	uint8_t *out;
	size_t len, cap;
	size_t quota;
	unsigned calls;
};

static ssize_t trickle_read(struct net_stream *s, void *buf, size_t len)
{
	struct trickle *t = s->impl;
	size_t n = t->in_len - t->in_pos < len ? t->in_len - t->in_pos : len;
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, t->in + t->in_pos, n);
	t->in_pos += n;
	return (ssize_t)n;
}

static ssize_t trickle_writev(struct net_stream *s, const struct iovec *iov, int n)
{
	struct trickle *t = s->impl;
	if (t->calls++ % 2 == 1) {
		errno = EAGAIN;
		return -1;
	}
	size_t took = 0;
	for (int i = 0; i < n && took < t->quota; i++) {
		size_t k = iov[i].iov_len < t->quota - took ? iov[i].iov_len : t->quota - took;
		assert_true(t->len + k <= t->cap);
		memcpy(t->out + t->len, iov[i].iov_base, k);
		t->len += k;
		took += k;
	}
	if (took == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)took;
}

static void trickle_close(struct net_stream *s)
{
	s->fd = -1;
}

static const struct net_stream_ops trickle_ops = { .read = trickle_read,
						   .writev = trickle_writev,
						   .close = trickle_close };

static void writes_cut_anywhere_keep_frames_whole(void **state)
{
	(void)state;
	size_t big = 150000;
	uint8_t *src = malloc(big), *got = malloc(big);
	for (size_t i = 0; i < big; i++)
		src[i] = (uint8_t)(i * 31 + 7);
	const size_t quotas[] = { 1, 2, 3, 4, 5, 7, 9, 13, 100, 65539, 1 << 20 };
	for (size_t q = 0; q < sizeof quotas / sizeof quotas[0]; q++) {
		struct trickle t = { .in = (const uint8_t *)GOOD_HEAD, .in_len = strlen(GOOD_HEAD),
				     .cap = big * 2, .quota = quotas[q] };
		t.out = malloc(t.cap);
		struct net_stream inner = { .ops = &trickle_ops, .fd = -1, .impl = &t }, ws;
		assert_int_equal(net_stream_ws(&ws, &inner, &(struct ws_options){ .max_frame = 1 << 20 }), MOTE_OK);
		uint8_t buf[64];
		assert_int_equal(ws.ops->read(&ws, buf, sizeof buf), -1); /* 101 queued, no data */
		assert_int_equal(errno, EAGAIN);
		/* the caller's bytes in uneven pieces; what is accepted is never offered again */
		size_t sent = 0;
		for (int spins = 0; sent < big || ws.want_write; spins++) {
			assert_true(spins < 10000000);
			if (sent == big) {
				ws.ops->flush(&ws);
				continue;
			}
			size_t a = (big - sent) / 3, b = big - sent - a;
			struct iovec v[2] = { { src + sent, a }, { src + sent + a, b } };
			ssize_t w = ws.ops->writev(&ws, v, 2);
			if (w < 0) {
				assert_int_equal(errno, EAGAIN);
				continue;
			}
			assert_true((size_t)w <= big - sent);
			sent += (size_t)w;
		}
		/* 101 head, then whole unmasked binary frames holding exactly src */
		uint8_t *end = memmem(t.out, t.len, "\r\n\r\n", 4);
		assert_non_null(end);
		assert_memory_equal(t.out, "HTTP/1.1 101 ", 13);
		size_t i = (size_t)(end - t.out) + 4, n = 0;
		while (i < t.len) {
			assert_int_equal(t.out[i], 0x82);
			size_t len = t.out[i + 1];
			i += 2;
			if (len == 126) {
				len = (size_t)t.out[i] << 8 | t.out[i + 1];
				i += 2;
			}
			assert_true(len > 0 && len <= 65535 && i + len <= t.len);
			memcpy(got + n, t.out + i, len);
			n += len;
			i += len;
		}
		assert_int_equal(n, big);
		assert_memory_equal(got, src, big);
		ws.ops->close(&ws);
		free(t.out);
	}
	free(src);
	free(got);
}

/* The request of GOOD_HEAD with an Origin header; returns the answer's status. */
static int origin_status(const char *origin, const struct ws_options *o)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nonblock(sv[0]);
	struct net_stream tcp, ws;
	net_stream_tcp(&tcp, sv[0]);
	assert_int_equal(net_stream_ws(&ws, &tcp, o), MOTE_OK);
	char req[1024];
	size_t hl = strlen(GOOD_HEAD) - 2; /* before the empty line */
	memcpy(req, GOOD_HEAD, hl);
	int n = origin ? snprintf(req + hl, sizeof req - hl, "Origin: %s\r\n\r\n", origin)
		       : snprintf(req + hl, sizeof req - hl, "\r\n");
	write_all(sv[1], req, hl + (size_t)n);
	uint8_t buf[16];
	ws.ops->read(&ws, buf, sizeof buf);
	ws.ops->close(&ws);
	char answer[1024] = { 0 };
	assert_true(read(sv[1], answer, sizeof answer - 1) > 12);
	close(sv[1]);
	return atoi(answer + 9);
}

static void origins_are_checked_when_listed(void **state)
{
	(void)state;
	const char *const allowed[] = { "https://dash.example.com", "http://localhost:3000" };
	struct ws_options any = { .max_frame = 1 << 20 };
	struct ws_options some = { .max_frame = 1 << 20, .origins = allowed, .n_origins = 2 };
	assert_int_equal(origin_status("https://evil.example", &any), 101);
	assert_int_equal(origin_status("https://dash.example.com", &some), 101);
	assert_int_equal(origin_status("HTTPS://Dash.Example.com", &some), 101);
	assert_int_equal(origin_status("http://localhost:3000", &some), 101);
	assert_int_equal(origin_status("https://evil.example", &some), 403);
	assert_int_equal(origin_status("https://dash.example.com.evil.example", &some), 403);
	assert_int_equal(origin_status("null", &some), 403);
	assert_int_equal(origin_status(NULL, &some), 101); /* not a browser */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_key_matches_rfc_example),
		cmocka_unit_test(request_verdicts),
		cmocka_unit_test(decoder_split_anywhere),
		cmocka_unit_test(decoder_violations),
		cmocka_unit_test(stream_round_trip),
		cmocka_unit_test(stream_refuses_and_answers),
		cmocka_unit_test(writes_cut_anywhere_keep_frames_whole),
		cmocka_unit_test(origins_are_checked_when_listed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
