/* fuzz_auth_acl.c - the ACL file parser takes any text: it refuses with a
 * line number or builds roles, and every role then answers publish and
 * subscribe checks for a topic and filter cut from the same input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "mqtt/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	/* input: ACL text, then NUL, then a topic/filter, then NUL, then a client id */
	const uint8_t *z = memchr(data, 0, size);
	size_t tlen = z ? (size_t)(z - data) : size;
	const uint8_t *rest = z ? z + 1 : data + size;
	size_t rlen = (size_t)(data + size - rest);
	const uint8_t *z2 = memchr(rest, 0, rlen);
	size_t topic_len = z2 ? (size_t)(z2 - rest) : rlen;
	const uint8_t *cid = z2 ? z2 + 1 : rest + rlen;
	size_t cid_len = (size_t)(data + size - cid);

	struct acl *a = NULL;
	char err[256] = "";
	enum mote_err e = acl_parse((const char *)data, tlen, &a, err, sizeof err);
	if (e != MOTE_OK) {
		if (e != MOTE_EINVAL || err[0] == '\0' || a)
			__builtin_trap(); /* every refusal says why, nothing is kept */
		return 0;
	}
	struct acl_subject who = { cid, cid_len, cid, cid_len };
	bool topic_ok = mqtt_topic_name_valid(rest, topic_len);
	bool filter_ok = mqtt_topic_filter_valid(rest, topic_len);
	for (unsigned r = 0; r < acl_role_count(a); r++) {
		if (topic_ok && acl_may_publish(a, (int)r, &who, rest, topic_len) &&
		    topic_len >= 4 && memcmp(rest, "$SYS", 4) == 0 &&
		    (topic_len == 4 || rest[4] == '/'))
			__builtin_trap(); /* no role may write $SYS */
		if (filter_ok)
			(void)acl_may_subscribe(a, (int)r, &who, rest, topic_len);
	}
	acl_free(a);
	return 0;
}
