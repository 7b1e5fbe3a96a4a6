/*
 * expr.c - the expression language of rules (see expr.h).
 *
 * A recursive-descent parser, one function per precedence level, emits a
 * postfix program; evaluation is a loop over it with a value stack whose
 * size the parser has already counted. Depth is counted on every entry into
 * a nested operand (parenthesis, function call, unary operator), which is
 * what bounds the C stack; the node limit bounds memory and evaluation time.
 */
#include "rules/expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op {
	OP_NUM, OP_VAR, OP_NEG, OP_NOT, OP_ADD, OP_SUB, OP_MUL, OP_DIV,
	OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_AND, OP_OR,
	OP_ABS, OP_MIN, OP_MAX
};

struct node {
	uint8_t op;
	uint16_t n;     /* OP_VAR: variable index; OP_MIN/OP_MAX: argument count */
	double num;     /* OP_NUM */
};

struct rexpr {
	struct node *prog;
	size_t nprog;
	size_t stack;   /* deepest value stack the program needs */
	char *vars[REXPR_MAX_VARS];
	size_t nvars;
};

struct parser {
	const char *s;
	size_t len, pos;
	int depth;
	struct rexpr *e;
	size_t cap;
	size_t sp, sp_max; /* simulated value stack while emitting */
	enum mote_err err;
	size_t errpos;
	char *msg;
	size_t msgcap;
};

static bool fail(struct parser *p, size_t at, enum mote_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool fail(struct parser *p, size_t at, enum mote_err code, const char *fmt, ...)
{
	if (p->err != MOTE_OK)
		return false; /* the first problem is the one to report */
	p->err = code;
	p->errpos = at;
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (p->msg && p->msgcap)
		snprintf(p->msg, p->msgcap, "position %zu: %s", at, what);
	return false;
}

/* Stack effect: how many values an operator takes and leaves one. */
static bool emit(struct parser *p, enum op op, uint16_t n, double num, int pops)
{
	if (p->e->nprog >= REXPR_MAX_NODES)
		return fail(p, p->pos, MOTE_ETOOBIG, "expression too long (more than %d operands and operators)",
			    REXPR_MAX_NODES);
	if (p->e->nprog == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct node *np = realloc(p->e->prog, cap * sizeof *np);
		if (!np)
			return fail(p, p->pos, MOTE_ENOMEM, "out of memory");
		p->e->prog = np;
		p->cap = cap;
	}
	p->e->prog[p->e->nprog++] = (struct node){ (uint8_t)op, n, num };
	p->sp = p->sp - (size_t)pops + 1;
	if (p->sp > p->sp_max)
		p->sp_max = p->sp;
	return true;
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

/* Consumes tok if it is next (and, for one-char operators, not the start of a longer one). */
static bool accept(struct parser *p, const char *tok)
{
	skip_space(p);
	size_t n = strlen(tok);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, tok, n) != 0)
		return false;
	if (n == 1 && p->pos + 1 < p->len && p->s[p->pos + 1] == '=' &&
	    (tok[0] == '<' || tok[0] == '>' || tok[0] == '!' || tok[0] == '='))
		return false;
	p->pos += n;
	return true;
}

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

static bool parse_or(struct parser *p);

static bool var_ref(struct parser *p, size_t at, const char *name, size_t n)
{
	if (n == 0)
		return fail(p, at, MOTE_EINVAL, "empty metric name");
	if (n > REXPR_NAME_MAX)
		return fail(p, at, MOTE_EINVAL, "metric name longer than %d bytes", REXPR_NAME_MAX);
	struct rexpr *e = p->e;
	size_t i;
	for (i = 0; i < e->nvars; i++)
		if (strlen(e->vars[i]) == n && memcmp(e->vars[i], name, n) == 0)
			break;
	if (i == e->nvars) {
		if (e->nvars == REXPR_MAX_VARS)
			return fail(p, at, MOTE_ETOOBIG, "more than %d distinct metrics", REXPR_MAX_VARS);
		e->vars[i] = strndup(name, n);
		if (!e->vars[i])
			return fail(p, at, MOTE_ENOMEM, "out of memory");
		e->nvars++;
	}
	return emit(p, OP_VAR, (uint16_t)i, 0, 0);
}

static bool parse_number(struct parser *p)
{
	size_t at = p->pos, i = p->pos;
	const char *s = p->s;
	while (i < p->len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i < p->len && s[i] == '.') {
		i++;
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i == at + 1 && s[at] == '.')
		return fail(p, at, MOTE_EINVAL, "'.' is not a number");
	if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < p->len && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j >= p->len || s[j] < '0' || s[j] > '9')
			return fail(p, i, MOTE_EINVAL, "exponent without digits");
		while (j < p->len && s[j] >= '0' && s[j] <= '9')
			j++;
		i = j;
	}
	if (i < p->len && is_name_char(s[i]))
		return fail(p, i, MOTE_EINVAL, "unexpected '%c' after a number", s[i]);
	char buf[64];
	if (i - at >= sizeof buf)
		return fail(p, at, MOTE_EINVAL, "number longer than %zu characters", sizeof buf - 1);
	memcpy(buf, s + at, i - at);
	buf[i - at] = '\0';
	double v = strtod(buf, NULL);
	if (!isfinite(v))
		return fail(p, at, MOTE_EINVAL, "number out of range");
	p->pos = i;
	return emit(p, OP_NUM, 0, v, 0);
}

static bool parse_call(struct parser *p, size_t at, const char *name, size_t n)
{
	enum op op;
	if (n == 3 && memcmp(name, "abs", 3) == 0)
		op = OP_ABS;
	else if (n == 3 && memcmp(name, "min", 3) == 0)
		op = OP_MIN;
	else if (n == 3 && memcmp(name, "max", 3) == 0)
		op = OP_MAX;
	else
		return fail(p, at, MOTE_EINVAL, "unknown function '%.*s' (abs, min, max)", (int)(n > 32 ? 32 : n),
			    name);
	unsigned args = 0;
	skip_space(p);
	if (!accept(p, ")")) {
		do {
			if (!parse_or(p))
				return false;
			args++;
		} while (accept(p, ","));
		if (!accept(p, ")"))
			return fail(p, p->pos, MOTE_EINVAL, "expected ',' or ')' in call of %.*s", (int)n, name);
	}
	if (op == OP_ABS && args != 1)
		return fail(p, at, MOTE_EINVAL, "abs takes one argument, not %u", args);
	if (op != OP_ABS && args < 1)
		return fail(p, at, MOTE_EINVAL, "%.*s needs at least one argument", (int)n, name);
	return emit(p, op, (uint16_t)args, 0, (int)args);
}

static bool parse_unary(struct parser *p);

static bool parse_primary(struct parser *p)
{
	skip_space(p);
	if (p->pos >= p->len)
		return fail(p, p->pos, MOTE_EINVAL, "unexpected end of expression");
	size_t at = p->pos;
	char c = p->s[at];
	if (c == '(') {
		p->pos++;
		if (!parse_or(p))
			return false;
		if (!accept(p, ")"))
			return fail(p, p->pos, MOTE_EINVAL, "expected ')' to close '(' at position %zu", at);
		return true;
	}
	if ((c >= '0' && c <= '9') || c == '.')
		return parse_number(p);
	if (c == '\'') {
		const char *end = memchr(p->s + at + 1, '\'', p->len - at - 1);
		if (!end)
			return fail(p, at, MOTE_EINVAL, "unterminated quoted metric name");
		size_t n = (size_t)(end - (p->s + at + 1));
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p->s[at + 1 + i] < 0x20)
				return fail(p, at + 1 + i, MOTE_EINVAL, "control character in a metric name");
		p->pos = at + n + 2;
		return var_ref(p, at, p->s + at + 1, n);
	}
	if (is_name_start(c)) {
		size_t i = at;
		while (i < p->len && is_name_char(p->s[i]))
			i++;
		const char *name = p->s + at;
		size_t n = i - at;
		p->pos = i;
		if (n == 4 && memcmp(name, "true", 4) == 0)
			return emit(p, OP_NUM, 0, 1, 0);
		if (n == 5 && memcmp(name, "false", 5) == 0)
			return emit(p, OP_NUM, 0, 0, 0);
		if (accept(p, "("))
			return parse_call(p, at, name, n);
		return var_ref(p, at, name, n);
	}
	if (c >= 0x21 && c <= 0x7e)
		return fail(p, at, MOTE_EINVAL, "unexpected '%c'", c);
	return fail(p, at, MOTE_EINVAL, "unexpected byte 0x%02x", (unsigned char)c);
}

static bool parse_unary(struct parser *p)
{
	enum op op;
	if (accept(p, "!"))
		op = OP_NOT;
	else if (accept(p, "-"))
		op = OP_NEG;
	else if (accept(p, "+"))
		op = OP_ADD; /* unary plus: nothing to emit */
	else
		return parse_primary(p);
	if (++p->depth > REXPR_MAX_DEPTH)
		return fail(p, p->pos, MOTE_ETOOBIG, "nested deeper than %d levels", REXPR_MAX_DEPTH);
	bool ok = parse_unary(p) && (op == OP_ADD || emit(p, op, 0, 0, 1));
	p->depth--;
	return ok;
}

/* One left-associative binary level: ops[i] maps to codes[i]. */
static bool parse_binary(struct parser *p, bool (*next)(struct parser *), const char *const *ops,
			 const enum op *codes, size_t nops)
{
	if (!next(p))
		return false;
	for (;;) {
		size_t i;
		for (i = 0; i < nops; i++)
			if (accept(p, ops[i]))
				break;
		if (i == nops)
			return true;
		if (!next(p) || !emit(p, codes[i], 0, 0, 2))
			return false;
	}
}

static bool parse_mul(struct parser *p)
{
	static const char *const ops[] = { "*", "/" };
	static const enum op codes[] = { OP_MUL, OP_DIV };
	return parse_binary(p, parse_unary, ops, codes, 2);
}

static bool parse_add(struct parser *p)
{
	static const char *const ops[] = { "+", "-" };
	static const enum op codes[] = { OP_ADD, OP_SUB };
	return parse_binary(p, parse_mul, ops, codes, 2);
}

static bool parse_rel(struct parser *p)
{
	static const char *const ops[] = { "<=", ">=", "<", ">" };
	static const enum op codes[] = { OP_LE, OP_GE, OP_LT, OP_GT };
	return parse_binary(p, parse_add, ops, codes, 4);
}

static bool parse_eq(struct parser *p)
{
	static const char *const ops[] = { "==", "!=" };
	static const enum op codes[] = { OP_EQ, OP_NE };
	return parse_binary(p, parse_rel, ops, codes, 2);
}

static bool parse_and(struct parser *p)
{
	static const char *const ops[] = { "&&" };
	static const enum op codes[] = { OP_AND };
	return parse_binary(p, parse_eq, ops, codes, 1);
}

static bool parse_or(struct parser *p)
{
	static const char *const ops[] = { "||" };
	static const enum op codes[] = { OP_OR };
	if (++p->depth > REXPR_MAX_DEPTH)
		return fail(p, p->pos, MOTE_ETOOBIG, "nested deeper than %d levels", REXPR_MAX_DEPTH);
	bool ok = parse_binary(p, parse_and, ops, codes, 1);
	p->depth--;
	return ok;
}

void rexpr_free(struct rexpr *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nvars; i++)
		free(e->vars[i]);
	free(e->prog);
	free(e);
}

enum mote_err rexpr_parse(const char *src, size_t len, struct rexpr **out, size_t *errpos,
			  char *err, size_t errcap)
{
	struct parser p = { .s = src, .len = len, .msg = err, .msgcap = errcap };
	*out = NULL;
	if (errpos)
		*errpos = 0;
	if (err && errcap)
		err[0] = '\0';
	if (len > REXPR_MAX_LEN) {
		fail(&p, REXPR_MAX_LEN, MOTE_ETOOBIG, "expression longer than %d bytes", REXPR_MAX_LEN);
		goto out;
	}
	p.e = calloc(1, sizeof *p.e);
	if (!p.e) {
		fail(&p, 0, MOTE_ENOMEM, "out of memory");
		goto out;
	}
	skip_space(&p);
	if (p.pos == len) {
		fail(&p, p.pos, MOTE_EINVAL, "empty expression");
		goto out;
	}
	if (parse_or(&p)) {
		skip_space(&p);
		unsigned char c = p.pos < len ? (unsigned char)src[p.pos] : 0;
		if (p.pos < len && c > 0x20 && c < 0x7f)
			fail(&p, p.pos, MOTE_EINVAL, "unexpected '%c' after the expression", c);
		else if (p.pos < len)
			fail(&p, p.pos, MOTE_EINVAL, "unexpected byte 0x%02x after the expression", c);
	}
out:
	if (p.err != MOTE_OK) {
		rexpr_free(p.e);
		if (errpos)
			*errpos = p.errpos;
		return p.err;
	}
	p.e->stack = p.sp_max;
	*out = p.e;
	return MOTE_OK;
}

size_t rexpr_nvars(const struct rexpr *e)
{
	return e->nvars;
}

const char *rexpr_var(const struct rexpr *e, size_t i)
{
	return i < e->nvars ? e->vars[i] : NULL;
}

bool rexpr_true(double v)
{
	return v != 0 && !isnan(v);
}

double rexpr_eval(const struct rexpr *e, const double *vars)
{
	/* The parser bounds the stack by REXPR_MAX_NODES. */
	double st[REXPR_MAX_NODES];
	size_t sp = 0;
	for (size_t i = 0; i < e->nprog; i++) {
		const struct node *n = &e->prog[i];
		double a, b;
		switch ((enum op)n->op) {
		case OP_NUM: st[sp++] = n->num; continue;
		case OP_VAR: st[sp++] = vars[n->n]; continue;
		case OP_NEG: st[sp - 1] = -st[sp - 1]; continue;
		case OP_NOT: st[sp - 1] = rexpr_true(st[sp - 1]) ? 0 : 1; continue;
		case OP_ABS: st[sp - 1] = fabs(st[sp - 1]); continue;
		case OP_MIN:
		case OP_MAX: {
			double m = st[sp - n->n];
			for (size_t k = sp - n->n + 1; k < sp; k++)
				if (n->op == OP_MIN ? st[k] < m : st[k] > m)
					m = st[k];
			sp -= n->n;
			st[sp++] = m;
			continue;
		}
		default: break;
		}
		b = st[--sp];
		a = st[sp - 1];
		double r;
		switch ((enum op)n->op) {
		case OP_ADD: r = a + b; break;
		case OP_SUB: r = a - b; break;
		case OP_MUL: r = a * b; break;
		case OP_DIV: r = a / b; break;
		case OP_LT: r = a < b; break;
		case OP_LE: r = a <= b; break;
		case OP_GT: r = a > b; break;
		case OP_GE: r = a >= b; break;
		case OP_EQ: r = a == b; break;
		case OP_NE: r = a != b; break;
		case OP_AND: r = rexpr_true(a) && rexpr_true(b); break;
		case OP_OR: r = rexpr_true(a) || rexpr_true(b); break;
		default: r = NAN; break;
		}
		st[sp - 1] = r;
	}
	return sp ? st[sp - 1] : NAN;
}
