/* jinja_parse_expr.c: expressions, with jinja2's precedence (loosest
 * first): x if c else y; or; and; not; comparisons (chained, in, not in);
 * + -; ~; * / // %; **; unary - +; then a primary with its postfixes
 * (.attr, [item], [a:b:c], (call)) and filters, tests and calls after them
 * (x|f(a), x is t, x|f()(...)). */
#include <string.h>

#include "jinja_internal.h"

static struct jnode *parse_or(struct jparser *p);
static struct jnode *parse_unary(struct jparser *p, bool with_filter);
static struct jnode *parse_compare(struct jparser *p);

static void push_name(struct jparser *p, struct jnode *n, const char *name)
{
    if ((n->nnames & (n->nnames - 1)) == 0) {
        const char **w = arena_alloc(p->lx->arena, sizeof(*w) * (size_t)(n->nnames ? n->nnames * 2 : 1));
        if (n->nnames)
            memcpy(w, n->names, sizeof(*w) * (size_t)n->nnames);
        n->names = w;
    }
    n->names[n->nnames++] = name;
}

static struct jnode *binop(struct jparser *p, int op, struct jnode *a, struct jnode *b, int line)
{
    struct jnode *n = jinja__node(p, N_BINOP, line);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

struct jnode *jinja__expr(struct jparser *p)
{
    if (++p->depth > JINJA_MAX_NEST)
        jinja__syntax(p->lx, jinja__peek(p)->line, "expression nested too deeply");
    struct jnode *x = parse_or(p);
    while (jinja__is_name(jinja__peek(p), "if")) {
        struct jnode *c = jinja__node(p, N_COND, jinja__next(p)->line);
        c->a = x;
        c->b = parse_or(p);
        if (jinja__is_name(jinja__peek(p), "else")) {
            jinja__next(p);
            c->c = jinja__expr(p);
        }
        x = c;
    }
    p->depth--;
    return x;
}

static struct jnode *parse_not(struct jparser *p)
{
    const struct jtok *t = jinja__peek(p);
    if (jinja__is_name(t, "not")) {
        jinja__next(p);
        if (++p->depth > JINJA_MAX_NEST)
            jinja__syntax(p->lx, t->line, "expression nested too deeply");
        struct jnode *n = jinja__node(p, N_UNARY, t->line);
        n->op = OP_NOT;
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static struct jnode *parse_and(struct jparser *p)
{
    struct jnode *x = parse_not(p);
    while (jinja__is_name(jinja__peek(p), "and")) {
        int line = jinja__next(p)->line;
        x = binop(p, OP_AND, x, parse_not(p), line);
    }
    return x;
}

static struct jnode *parse_or(struct jparser *p)
{
    struct jnode *x = parse_and(p);
    while (jinja__is_name(jinja__peek(p), "or")) {
        int line = jinja__next(p)->line;
        x = binop(p, OP_OR, x, parse_and(p), line);
    }
    return x;
}

static struct jnode *parse_concat(struct jparser *p);

static struct jnode *parse_math1(struct jparser *p)
{
    struct jnode *x = parse_concat(p);
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        int op = jinja__is_op(t, "+") ? OP_ADD : jinja__is_op(t, "-") ? OP_SUB : -1;
        if (op < 0)
            return x;
        jinja__next(p);
        x = binop(p, op, x, parse_concat(p), t->line);
    }
}

/* a < b < c is (a < b) and (b < c), b evaluated twice (no side effects). */
static struct jnode *parse_compare(struct jparser *p)
{
    static const char *ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const int codes[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    struct jnode *x = parse_math1(p), *left = x, *all = NULL;
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        int op = -1;
        for (int i = 0; i < 6 && op < 0; i++)
            if (jinja__is_op(t, ops[i]))
                op = codes[i];
        if (op < 0 && jinja__is_name(t, "in"))
            op = OP_IN;
        if (op < 0 && jinja__is_name(t, "not") && jinja__is_name(t + 1, "in")) {
            jinja__next(p);
            op = OP_NOTIN;
        }
        if (op < 0)
            return all ? all : x;
        jinja__next(p);
        struct jnode *right = parse_math1(p);
        struct jnode *cmp = binop(p, op, left, right, t->line);
        all = all ? binop(p, OP_AND, all, cmp, t->line) : cmp;
        left = right;
    }
}

static struct jnode *parse_math2(struct jparser *p);

static struct jnode *parse_concat(struct jparser *p)
{
    struct jnode *x = parse_math2(p);
    while (jinja__is_op(jinja__peek(p), "~")) {
        int line = jinja__next(p)->line;
        x = binop(p, OP_CONCAT, x, parse_math2(p), line);
    }
    return x;
}

static struct jnode *parse_pow(struct jparser *p)
{
    struct jnode *x = parse_unary(p, true);
    while (jinja__is_op(jinja__peek(p), "**")) {
        int line = jinja__next(p)->line;
        x = binop(p, OP_POW, x, parse_unary(p, true), line);
    }
    return x;
}

static struct jnode *parse_math2(struct jparser *p)
{
    static const char *ops[] = {"*", "/", "//", "%"};
    static const int codes[] = {OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD};
    struct jnode *x = parse_pow(p);
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        int op = -1;
        for (int i = 0; i < 4 && op < 0; i++)
            if (jinja__is_op(t, ops[i]))
                op = codes[i];
        if (op < 0)
            return x;
        jinja__next(p);
        x = binop(p, op, x, parse_pow(p), t->line);
    }
}

/* (args, name=value, ...) after the '(' has been seen; into call->kids
 * (positional) and call->names / kids2 (keywords). */
void jinja__call_args(struct jparser *p, struct jnode *call)
{
    jinja__expect_op(p, "(");
    while (!jinja__is_op(jinja__peek(p), ")")) {
        if (call->nkids || call->nnames)
            jinja__expect_op(p, ",");
        if (jinja__is_op(jinja__peek(p), ")"))
            break;
        const struct jtok *t = jinja__peek(p);
        if (t->kind == T_NAME && jinja__is_op(t + 1, "=")) {
            push_name(p, call, jinja__expect_name(p));
            jinja__next(p);
            jinja__push(p, &call->kids2, &call->nkids2, jinja__expr(p));
        } else {
            if (call->nnames)
                jinja__syntax(p->lx, t->line, "positional argument after keyword argument");
            jinja__push(p, &call->kids, &call->nkids, jinja__expr(p));
        }
    }
    jinja__next(p);
}

static struct jnode *parse_primary(struct jparser *p);

static struct jnode *parse_subscript_part(struct jparser *p)
{
    const struct jtok *t = jinja__peek(p);
    struct jnode *x = NULL;
    if (!jinja__is_op(t, ":")) {
        x = jinja__expr(p);
        if (!jinja__is_op(jinja__peek(p), ":"))
            return x;
    }
    struct jnode *s = jinja__node(p, N_SLICE, t->line);
    s->b = x;
    jinja__next(p);
    t = jinja__peek(p);
    if (!jinja__is_op(t, "]") && !jinja__is_op(t, ",") && !jinja__is_op(t, ":"))
        s->c = jinja__expr(p);
    if (jinja__is_op(jinja__peek(p), ":")) {
        jinja__next(p);
        t = jinja__peek(p);
        if (!jinja__is_op(t, "]") && !jinja__is_op(t, ","))
            s->d = jinja__expr(p);
    }
    return s;
}

static struct jnode *parse_subscript(struct jparser *p, struct jnode *obj)
{
    int line = jinja__next(p)->line; /* [ */
    struct jnode *key = parse_subscript_part(p);
    if (jinja__is_op(jinja__peek(p), ",")) { /* x[a, b]: a tuple key (slices not among them) */
        struct jnode *tup = jinja__node(p, N_TUPLE, line);
        jinja__push(p, &tup->kids, &tup->nkids, key);
        while (jinja__is_op(jinja__peek(p), ",")) {
            jinja__next(p);
            if (jinja__is_op(jinja__peek(p), "]"))
                break;
            jinja__push(p, &tup->kids, &tup->nkids, parse_subscript_part(p));
        }
        for (int i = 0; i < tup->nkids; i++)
            if (tup->kids[i]->kind == N_SLICE)
                jinja__syntax(p->lx, line, "slices inside a tuple subscript are not supported");
        key = tup;
    }
    jinja__expect_op(p, "]");
    if (key->kind == N_SLICE) {
        key->a = obj;
        return key;
    }
    struct jnode *n = jinja__node(p, N_ITEM, line);
    n->a = obj;
    n->b = key;
    return n;
}

static struct jnode *parse_postfix(struct jparser *p, struct jnode *x)
{
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        if (jinja__is_op(t, ".")) {
            jinja__next(p);
            const struct jtok *k = jinja__next(p);
            if (k->kind == T_INT) {
                struct jnode *n = jinja__node(p, N_ITEM, k->line), *c = jinja__node(p, N_CONST, k->line);
                c->val = jv_int(k->i);
                n->a = x;
                n->b = c;
                x = n;
                continue;
            }
            if (k->kind != T_NAME)
                jinja__syntax(p->lx, k->line, "expected name or number");
            struct jnode *n = jinja__node(p, N_ATTR, k->line);
            n->a = x;
            n->name = arena_strndup(p->lx->arena, k->s, k->n);
            n->nlen = k->n;
            x = n;
        } else if (jinja__is_op(t, "["))
            x = parse_subscript(p, x);
        else if (jinja__is_op(t, "(")) {
            struct jnode *c = jinja__node(p, N_CALL, t->line);
            c->a = x;
            jinja__call_args(p, c);
            x = c;
        } else
            return x;
    }
}

static bool starts_arg(const struct jtok *t)
{
    static const char *stop[] = {"else", "or", "and", "not", "if", "in", "is"};
    if (t->kind == T_NAME) {
        for (size_t i = 0; i < sizeof(stop) / sizeof(*stop); i++)
            if (jinja__is_name(t, stop[i]))
                return false;
        return true;
    }
    return t->kind == T_STRING || t->kind == T_INT || t->kind == T_FLOAT || jinja__is_op(t, "[") ||
           jinja__is_op(t, "{") || jinja__is_op(t, "-");
}

static struct jnode *parse_filter_or_test(struct jparser *p, struct jnode *x, bool test)
{
    const struct jtok *t = jinja__next(p); /* | or is */
    struct jnode *n = jinja__node(p, test ? N_TEST : N_FILTER, t->line);
    if (test && jinja__is_name(jinja__peek(p), "not")) {
        jinja__next(p);
        n->flag = true;
    }
    n->a = x;
    n->name = jinja__expect_name(p);
    n->nlen = strlen(n->name);
    if (jinja__is_op(jinja__peek(p), "("))
        jinja__call_args(p, n);
    else if (test && starts_arg(jinja__peek(p)) && !jinja__is_op(jinja__peek(p), "-")) {
        struct jnode *arg = parse_postfix(p, parse_primary(p));
        jinja__push(p, &n->kids, &n->nkids, arg);
    }
    return n;
}

static struct jnode *parse_filter_expr(struct jparser *p, struct jnode *x)
{
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        if (jinja__is_op(t, "|"))
            x = parse_filter_or_test(p, x, false);
        else if (jinja__is_name(t, "is"))
            x = parse_filter_or_test(p, x, true);
        else if (jinja__is_op(t, "(")) {
            struct jnode *c = jinja__node(p, N_CALL, t->line);
            c->a = x;
            jinja__call_args(p, c);
            x = c;
        } else
            return x;
    }
}

static struct jnode *parse_unary(struct jparser *p, bool with_filter)
{
    const struct jtok *t = jinja__peek(p);
    struct jnode *x;
    if (++p->depth > JINJA_MAX_NEST)
        jinja__syntax(p->lx, t->line, "expression nested too deeply");
    if (jinja__is_op(t, "-") || jinja__is_op(t, "+")) {
        jinja__next(p);
        x = jinja__node(p, N_UNARY, t->line);
        x->op = jinja__is_op(t, "-") ? OP_NEG : OP_POS;
        x->a = parse_unary(p, false);
    } else
        x = parse_postfix(p, parse_primary(p));
    p->depth--;
    return with_filter ? parse_filter_expr(p, x) : x;
}

/* (a, b), [a, b], {k: v}: items up to the closing bracket. */
static struct jnode *parse_seq(struct jparser *p, int kind, const char *close, int line)
{
    struct jnode *n = jinja__node(p, kind, line);
    while (!jinja__is_op(jinja__peek(p), close)) {
        if (n->nkids)
            jinja__expect_op(p, ",");
        if (jinja__is_op(jinja__peek(p), close))
            break;
        jinja__push(p, &n->kids, &n->nkids, jinja__expr(p));
        if (kind == N_DICT) {
            jinja__expect_op(p, ":");
            jinja__push(p, &n->kids2, &n->nkids2, jinja__expr(p));
        } else if (kind == N_TUPLE && n->nkids == 1 && jinja__is_op(jinja__peek(p), close)) {
            jinja__next(p);
            return n->kids[0]; /* (x): not a tuple */
        }
    }
    jinja__next(p);
    return n;
}

static struct jnode *constant(struct jparser *p, int line, jv v)
{
    struct jnode *n = jinja__node(p, N_CONST, line);
    n->val = v;
    return n;
}

static struct jnode *parse_primary(struct jparser *p)
{
    const struct jtok *t = jinja__next(p);
    switch (t->kind) {
    case T_NAME:
        if (jinja__is_name(t, "true") || jinja__is_name(t, "True"))
            return constant(p, t->line, jv_bool(true));
        if (jinja__is_name(t, "false") || jinja__is_name(t, "False"))
            return constant(p, t->line, jv_bool(false));
        if (jinja__is_name(t, "none") || jinja__is_name(t, "None"))
            return constant(p, t->line, jv_none());
        struct jnode *n = jinja__node(p, N_NAME, t->line);
        n->name = arena_strndup(p->lx->arena, t->s, t->n);
        n->nlen = t->n;
        return n;
    case T_STRING: { /* adjacent strings join: "a" "b" */
        const struct jtok *u;
        size_t len = 0, k = 0;
        for (u = t; u->kind == T_STRING; u++)
            len += u->n;
        char *s = arena_alloc(p->lx->arena, len + 1);
        for (u = t; u->kind == T_STRING; u++, k += u[-1].n)
            memcpy(s + k, u->s, u->n);
        s[k] = 0;
        p->pos += (size_t)(u - t) - 1;
        return constant(p, t->line, jv_str(s, k));
    }
    case T_INT: return constant(p, t->line, jv_int(t->i));
    case T_FLOAT: return constant(p, t->line, jv_float(t->f));
    default: break;
    }
    if (jinja__is_op(t, "("))
        return parse_seq(p, N_TUPLE, ")", t->line);
    if (jinja__is_op(t, "["))
        return parse_seq(p, N_LIST, "]", t->line);
    if (jinja__is_op(t, "{"))
        return parse_seq(p, N_DICT, "}", t->line);
    jinja__syntax(p->lx, t->line, "unexpected %s%s%.*s%s", t->kind == T_OP ? "'" : "",
                  t->kind == T_OP ? "" : jinja__tok_desc(t), t->kind == T_OP ? (int)t->n : 0, t->kind == T_OP ? t->s : "",
                  t->kind == T_OP ? "'" : "");
}

/* An expression, or several separated by commas: a tuple (the value of
 * {{ a, b }}, a for loop's iterable, a set's value). */
struct jnode *jinja__expr_tuple(struct jparser *p)
{
    int line = jinja__peek(p)->line;
    struct jnode *x = jinja__expr(p);
    if (!jinja__is_op(jinja__peek(p), ","))
        return x;
    struct jnode *tup = jinja__node(p, N_TUPLE, line);
    jinja__push(p, &tup->kids, &tup->nkids, x);
    while (jinja__is_op(jinja__peek(p), ",")) {
        jinja__next(p);
        const struct jtok *t = jinja__peek(p);
        if (t->kind == T_BLOCK_END || t->kind == T_VAR_END || jinja__is_name(t, "if") || jinja__is_op(t, ")"))
            break;
        jinja__push(p, &tup->kids, &tup->nkids, jinja__expr(p));
    }
    return tup;
}
