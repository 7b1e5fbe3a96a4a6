/* fuzz_rules_expr.c - the rule expression parser takes any bytes: it
 * refuses with a position inside the input and a sentence, or compiles a
 * program that evaluates (with variables cut from the same input) without
 * reading outside its stack. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rexpr *e = (struct rexpr *)&size;
	size_t pos = (size_t)-1;
	char err[200];
	enum mote_err rc = rexpr_parse((const char *)data, size, &e, &pos, err, sizeof err);
	if (rc != MOTE_OK) {
		if (e || pos > size + REXPR_MAX_LEN || strncmp(err, "position ", 9) != 0)
			__builtin_trap(); /* every refusal says where and why, nothing is kept */
		return 0;
	}
	if (!e || rexpr_nvars(e) > REXPR_MAX_VARS)
		__builtin_trap();
	double vars[REXPR_MAX_VARS];
	for (size_t i = 0; i < REXPR_MAX_VARS; i++) {
		int64_t bits = 0;
		if (size)
			memcpy(&bits, data + (i * 7) % size, size - (i * 7) % size < 8 ? size - (i * 7) % size : 8);
		vars[i] = (double)(bits % 2001) / 10.0 - 100.0;
	}
	for (size_t i = 0; i < rexpr_nvars(e); i++)
		if (!rexpr_var(e, i) || strlen(rexpr_var(e, i)) > REXPR_NAME_MAX)
			__builtin_trap();
	(void)rexpr_true(rexpr_eval(e, vars));
	rexpr_free(e);
	return 0;
}
