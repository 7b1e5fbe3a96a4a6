/*
 * acl.h - roles: ordered topic-pattern rules, the built-in roles and the
 * ACL file that adds more (format in docs/security.md, "Authentication and
 * authorization"). Part of src/auth; tests and fuzzers use it directly.
 *
 * A pattern is a topic filter whose levels may also be `%c` (the client id)
 * or `%u` (the username), substituted as one whole level. A substituted
 * value that is not a valid single level (empty, or holding `/`, `+`, `#`)
 * never widens access: allow rules with it do not match, deny rules do.
 *
 * PUBLISH to topic T: denied if any deny rule for write matches T, else
 * allowed if an allow rule for write matches T. SUBSCRIBE to filter F:
 * denied if F overlaps any deny rule for read (some topic matches both),
 * else allowed if an allow rule for read covers F (every topic F matches).
 * There is no check at delivery time, hence the stricter test for filters.
 *
 * Threading: an acl is immutable once parsed; any thread may check it.
 */
#ifndef MOTE_AUTH_ACL_H
#define MOTE_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

enum acl_access { ACL_READ = 1, ACL_WRITE = 2, ACL_READWRITE = 3 };

/* Built-in roles, always present at these indexes. */
enum acl_builtin {
	ACL_ROLE_ADMIN,  /* readwrite # */
	ACL_ROLE_WRITE,  /* readwrite # */
	ACL_ROLE_READ,   /* read # */
	ACL_ROLE_DEVICE, /* the device default ACL */
	ACL_ROLE_CLAIM,  /* $provision/%c/... only */
	ACL_ROLE_BUILTIN_COUNT_
};

#define ACL_NAME_MAX 64
#define ACL_MAX_ROLES 1024
#define ACL_MAX_RULES 256 /* per role */

struct acl;

/* Who is asking: the values %c and %u stand for (views). */
struct acl_subject {
	const uint8_t *client_id;
	size_t client_id_len;
	const uint8_t *username;
	size_t username_len;
};

/*
 * The built-in roles plus those of an ACL file's text (NULL / 0: built-ins
 * only). MOTE_EINVAL with "line N: ..." in err for a bad file;
 * MOTE_ENOMEM. Caller owns *out (acl_free).
 */
enum mote_err acl_parse(const char *text, size_t len, struct acl **out, char *err,
			size_t errcap);
void acl_free(struct acl *a);

/* Index of the role called name, or -1. */
int acl_role_find(const struct acl *a, const char *name, size_t len);
const char *acl_role_name(const struct acl *a, int role);
unsigned acl_role_count(const struct acl *a);

/* A role name: 1-64 of [A-Za-z0-9._-]. */
bool acl_name_valid(const char *s, size_t len);

/* The checks above. filter may carry a $share/GROUP/ prefix. */
bool acl_may_publish(const struct acl *a, int role, const struct acl_subject *who,
		     const uint8_t *topic, size_t len);
bool acl_may_subscribe(const struct acl *a, int role, const struct acl_subject *who,
		       const uint8_t *filter, size_t len);

/*
 * The three pattern relations (exposed for tests). pattern may hold %c/%u
 * (substituted from who, which may be NULL: then they match nothing).
 * *bad_subst is set when a substitution was not a valid level.
 */
bool acl_pattern_matches(const char *pattern, const struct acl_subject *who,
			 const uint8_t *topic, size_t len, bool *bad_subst);
bool acl_pattern_covers(const char *pattern, const struct acl_subject *who,
			const uint8_t *filter, size_t len, bool *bad_subst);
bool acl_pattern_overlaps(const char *pattern, const struct acl_subject *who,
			  const uint8_t *filter, size_t len, bool *bad_subst);

#endif
