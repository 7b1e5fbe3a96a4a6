/*
 * expr.h - the expression language of "expression" rules: numbers, metric
 * names (bare: [A-Za-z_][A-Za-z0-9_.]*, or any name in single quotes),
 * true/false, + - * /, comparisons (< <= > >= == !=), && || !, parentheses
 * and abs(x), min(a, b, ...), max(a, b, ...). Booleans are the numbers 1 and
 * 0; anything non-zero (and not NaN) is true. Precedence, loosest first:
 * ||, &&, == !=, < <= > >=, + -, * /, unary ! and -.
 *
 * An expression compiles to a postfix program evaluated without recursion;
 * parsing recurses at most REXPR_MAX_DEPTH levels, so hostile input (100k
 * parentheses, endless unary minus) is refused with a position, never a
 * stack overflow.
 *
 * Ownership: rexpr_parse gives the caller a program freed by rexpr_free.
 * Pure: no globals, any thread.
 */
#ifndef MOTE_RULES_EXPR_H
#define MOTE_RULES_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define REXPR_MAX_LEN 4096   /* bytes of source */
#define REXPR_MAX_DEPTH 64   /* nesting of parentheses / operators */
#define REXPR_MAX_NODES 512  /* operands + operators */
#define REXPR_MAX_VARS 32    /* distinct metrics */
#define REXPR_NAME_MAX 64    /* bytes of a metric name (TELEMETRY_METRIC_MAX) */

struct rexpr;

/*
 * Compiles src[0..len). On error: MOTE_EINVAL (or MOTE_ETOOBIG, MOTE_ENOMEM),
 * *out NULL, *errpos the 0-based byte offset of the problem and err a
 * sentence "position 7: expected ')'".
 */
enum mote_err rexpr_parse(const char *src, size_t len, struct rexpr **out, size_t *errpos,
			  char *err, size_t errcap);
void rexpr_free(struct rexpr *e);

/* The distinct metric names the expression reads, in first-use order. */
size_t rexpr_nvars(const struct rexpr *e);
const char *rexpr_var(const struct rexpr *e, size_t i);

/* Evaluates with vars[i] the value of rexpr_var(e, i); the raw number. */
double rexpr_eval(const struct rexpr *e, const double *vars);
/* The truth of the result: non-zero and not NaN. */
bool rexpr_true(double v);

#endif
