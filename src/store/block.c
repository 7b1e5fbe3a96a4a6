/*
 * block.c - encoding and decoding the store's compressed blocks (format and
 * rationale in block.h). The decoder treats its input as hostile: a block
 * read from a damaged file gives MOTE_EMALFORMED, never a crash.
 */
#include "store/block.h"

#include <math.h>
#include <string.h>

static const double pow10_tab[7] = { 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0 };

static inline uint64_t zz_enc(uint64_t x)
{
	return (x << 1) ^ (uint64_t)(-(int64_t)(x >> 63));
}

static inline uint64_t zz_dec(uint64_t x)
{
	return (x >> 1) ^ (uint64_t)(-(int64_t)(x & 1));
}

static inline size_t put_varint(uint8_t *p, uint64_t x)
{
	size_t i = 0;
	while (x >= 0x80) {
		p[i++] = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	p[i++] = (uint8_t)x;
	return i;
}

/* false when truncated or longer than 10 bytes */
static inline int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t x = 0;
	for (unsigned shift = 0, i = 0; i < 10; i++, shift += 7) {
		if (*pos >= len)
			return 0;
		uint8_t b = p[(*pos)++];
		if (i == 9 && b > 1)
			return 0;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = x;
			return 1;
		}
	}
	return 0;
}

static inline uint64_t dbits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

/* The fewest decimals k (0..6) that represent every value exactly, or -1. */
static int decimal_digits(const double *v, size_t n)
{
	for (int k = 0; k <= 6; k++) {
		double p = pow10_tab[k];
		size_t i;
		for (i = 0; i < n; i++) {
			double s = v[i] * p;
			if (!(fabs(s) < 9007199254740992.0)) /* 2^53; also NaN */
				break;
			double r = (double)llround(s) / p;
			if (dbits(r) != dbits(v[i])) /* bitwise: -0.0 must stay -0.0 */
				break;
		}
		if (i == n)
			return k;
	}
	return -1;
}

size_t block_encode(const int64_t *ts, const double *v, size_t n, uint8_t *out)
{
	int k = decimal_digits(v, n);
	size_t o = 0;
	out[o++] = 1;
	out[o++] = (uint8_t)(k < 0 ? 0 : k + 1);
	o += put_varint(out + o, n);
	uint64_t pt = 0, pd = 0;          /* previous time, previous delta */
	uint64_t pv = 0, pvd = 0;         /* previous bits or integer, previous integer delta */
	for (size_t i = 0; i < n; i++) {
		uint64_t t = (uint64_t)ts[i];
		uint64_t d = t - pt;
		o += put_varint(out + o, zz_enc(d - pd));
		pt = t;
		pd = i ? d : 0; /* the second point's delta is its own, not relative to the first time */
		if (k < 0) {
			uint64_t b = dbits(v[i]);
			uint64_t x = b ^ pv;
			pv = b;
			unsigned lead = 0, trail = 0;
			if (x == 0) {
				lead = 8;
			} else {
				while (!(x >> (56 - 8 * lead) & 0xff))
					lead++;
				while (!(x >> (8 * trail) & 0xff))
					trail++;
			}
			out[o++] = (uint8_t)(lead << 4 | trail);
			for (int j = 7 - (int)lead; j >= (int)trail; j--)
				out[o++] = (uint8_t)(x >> (8 * j));
		} else {
			uint64_t iv = (uint64_t)llround(v[i] * pow10_tab[k]);
			uint64_t dv = iv - pv;
			o += put_varint(out + o, zz_enc(dv - pvd));
			pv = iv;
			pvd = i ? dv : 0;
		}
	}
	return o;
}

enum mote_err block_count(const uint8_t *in, size_t len, size_t *n)
{
	size_t pos = 2;
	uint64_t cnt;
	if (len < 3 || in[0] != 1 || in[1] > 7)
		return MOTE_EMALFORMED;
	if (!get_varint(in, len, &pos, &cnt))
		return MOTE_EMALFORMED;
	/* every point takes at least two bytes */
	if (cnt > 65536 || cnt * 2 > len - pos)
		return MOTE_EMALFORMED;
	*n = (size_t)cnt;
	return MOTE_OK;
}

enum mote_err block_decode(const uint8_t *in, size_t len, int64_t *ts, double *v, size_t cap,
			   size_t *n)
{
	size_t cnt, pos;
	enum mote_err e = block_count(in, len, &cnt);
	if (e)
		return e;
	if (cnt > cap)
		return MOTE_ENOSPC;
	int k = in[1] == 0 ? -1 : in[1] - 1;
	uint64_t tmp;
	pos = 2;
	get_varint(in, len, &pos, &tmp); /* checked by block_count */
	uint64_t pt = 0, pd = 0, pv = 0, pvd = 0;
	for (size_t i = 0; i < cnt; i++) {
		uint64_t dd;
		if (!get_varint(in, len, &pos, &dd))
			return MOTE_EMALFORMED;
		pd += zz_dec(dd);
		pt += pd;
		ts[i] = (int64_t)pt;
		if (i == 0)
			pd = 0;
		if (k < 0) {
			if (pos >= len)
				return MOTE_EMALFORMED;
			uint8_t c = in[pos++];
			unsigned lead = c >> 4, trail = c & 15;
			if (lead + trail > 8 || (lead + trail == 8 && lead != 8))
				return MOTE_EMALFORMED;
			unsigned mid = 8 - lead - trail;
			if (len - pos < mid)
				return MOTE_EMALFORMED;
			uint64_t x = 0;
			for (unsigned j = 0; j < mid; j++)
				x = x << 8 | in[pos++];
			x <<= 8 * trail;
			pv ^= x;
			memcpy(&v[i], &pv, sizeof pv);
		} else {
			uint64_t dd2;
			if (!get_varint(in, len, &pos, &dd2))
				return MOTE_EMALFORMED;
			pvd += zz_dec(dd2);
			pv += pvd;
			v[i] = (double)(int64_t)pv / pow10_tab[k];
			if (i == 0)
				pvd = 0;
		}
	}
	if (pos != len)
		return MOTE_EMALFORMED;
	*n = cnt;
	return MOTE_OK;
}
