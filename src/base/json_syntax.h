/*
 * json_syntax.h - a strict JSON syntax check (RFC 8259) that builds nothing,
 * run on untrusted bodies before cJSON: what cJSON lets through and JSON does
 * not is refused (numbers strtod takes such as 01, 1. and .5, raw control
 * characters in strings, text after the value), and where cJSON would fail
 * anyway it is stricter (lone UTF-16 surrogates in \u escapes, numbers over
 * 63 characters, nesting deeper than cJSON's limit), so that a cJSON failure
 * after it can only mean out of memory. Plus the duplicate-key check cJSON
 * does not make (it keeps both members and finds the first).
 *
 * Pure functions; no allocation except mote_json_dup_key's scratch array.
 */
#ifndef MOTE_BASE_JSON_SYNTAX_H
#define MOTE_BASE_JSON_SYNTAX_H

#include <stddef.h>

struct cJSON;

enum mote_json_syntax { MOTE_JSON_OK, MOTE_JSON_BAD, MOTE_JSON_DEEP };

/* s is NUL-terminated: a text with an embedded NUL must be refused by the
 * caller first (strlen(s) != length). */
enum mote_json_syntax mote_json_syntax(const char *s);

/*
 * The first key that appears twice in one object anywhere in v (recursing
 * at most depth levels), or NULL. *oom is set when the scratch array could
 * not be allocated (then NULL is returned).
 */
const char *mote_json_dup_key(const struct cJSON *v, unsigned depth, int *oom);

#endif
