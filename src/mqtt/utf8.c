/*
 * utf8.c - UTF-8 validity with the MQTT rules (5.0 section 1.5.4, 3.1.1
 * section 1.5.3): well-formed per RFC 3629 (no overlong forms, nothing
 * above U+10FFFF, no surrogates U+D800..U+DFFF [MQTT-1.5.4-1]) and no
 * U+0000 [MQTT-1.5.4-2].
 *
 * The table of well-formed byte sequences is the one in RFC 3629 section 4;
 * the second byte's range depends on the first, which is what excludes
 * overlong forms (E0, F0), surrogates (ED) and values above U+10FFFF (F4).
 * Control characters and non-characters are legal here: the spec only says
 * senders SHOULD NOT use them.
 */
#include "mqtt/mqtt.h"

static bool cont(uint8_t b)
{
	return (b & 0xc0) == 0x80;
}

bool mqtt_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c >= 0x01 && c < 0x80) {
			i++;
			continue;
		}
		if (c == 0x00 || c < 0xc2 || c > 0xf4)
			return false; /* NUL, stray continuation, C0/C1 overlong, > U+10FFFF */
		size_t need = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
		if (len - i - 1 < need)
			return false;
		uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
		if (c == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
		else if (c == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (!cont(s[i + k]))
				return false;
		i += need + 1;
	}
	return true;
}
