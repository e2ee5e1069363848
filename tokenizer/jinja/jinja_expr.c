/* jinja_expr.c: evaluates expressions with Python's semantics as jinja2's
 * sandbox applies them. x.name and x[key] look in the data and then at the
 * safe methods (a dict's items/keys/values/get, a string's strip/split...);
 * what is missing is an Undefined that prints as "" and fails with jinja2's
 * message when used; mutating methods (list.append, dict.pop...) are
 * Undefined that fail as the sandbox's SecurityError does. Operators follow
 * Python: int/float/bool arithmetic, floor division and modulo for negative
 * numbers, + and * on strings and lists, `in` on strings, lists and dicts,
 * `and`/`or` returning an operand. */
#include <math.h>
#include <string.h>

#include "jinja_internal.h"

static jv unsafe(struct jrender *r, jv obj, const char *name, size_t n)
{
    struct jbuf msg = {0};
    jbuf_printf(r, &msg, "access to attribute '%.*s' of '%s' object is unsafe.", (int)n, name, jv_type_name(obj));
    return jv_undef(UND_HINT, 0, msg.s, msg.len);
}

jv jinja__getattr(struct jrender *r, jv obj, const char *name, size_t n)
{
    bool bad = false;
    if (obj.kind == JV_UNDEF)
        jv_fail_undef(r, obj);
    if (obj.kind == JV_LOOP)
        return jinja__loop_attr(r, obj, name, n);
    if (jinja__has_method(obj, name, n, &bad)) {
        if (bad)
            return unsafe(r, obj, name, n);
        struct jmethod *m = arena_alloc(&r->arena, sizeof(*m));
        m->self = obj;
        m->name = arena_strndup(&r->arena, name, n);
        return (jv){.kind = JV_METHOD, .u.bm = m};
    }
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        jv *v = jv_dict_get(obj, name, n);
        if (v)
            return *v;
    }
    return jv_undef(UND_ATTR, obj.kind, name, n);
}

static jv index_seq(struct jrender *r, jv obj, int64_t i)
{
    int64_t len = obj.kind == JV_STR ? (int64_t)u8_count(obj.u.s, obj.n) : (int64_t)obj.u.l->n;
    int64_t k = i < 0 ? i + len : i;
    if (k < 0 || k >= len) {
        struct jbuf name = {0};
        jbuf_printf(r, &name, "%lld", (long long)i);
        return jv_undef(UND_ELEM, obj.kind, name.s, name.len);
    }
    if (obj.kind != JV_STR)
        return obj.u.l->v[k];
    int64_t one = 1, end = k + 1;
    return str_slice_cp(r, obj, &k, &end, &one);
}

jv jinja__getitem(struct jrender *r, jv obj, jv key)
{
    if (obj.kind == JV_UNDEF)
        jv_fail_undef(r, obj);
    if (obj.kind == JV_DICT) {
        jv *v = jv_dict_find(obj, key);
        if (v)
            return *v;
    } else if (((obj.kind == JV_LIST && obj.sub != SUB_GEN) || obj.kind == JV_TUPLE || obj.kind == JV_STR) &&
               (key.kind == JV_INT || key.kind == JV_BOOL))
        return index_seq(r, obj, key.kind == JV_INT ? key.u.i : key.u.b);
    if (key.kind == JV_STR)
        return jinja__getattr(r, obj, key.u.s, key.n);
    struct jbuf name = {0};
    jv_repr(r, &name, key);
    return jv_undef(UND_ELEM, obj.kind, name.s, name.len);
}

static const int64_t *slice_arg(struct jrender *r, const struct jnode *n, int64_t *slot)
{
    if (!n)
        return NULL;
    jv v = jinja__eval(r, n);
    if (v.kind == JV_NONE)
        return NULL;
    if (v.kind != JV_INT && v.kind != JV_BOOL)
        jinja__fail(r, "slice indices must be integers or None or have an __index__ method");
    *slot = v.kind == JV_INT ? v.u.i : v.u.b;
    return slot;
}

static jv eval_slice(struct jrender *r, const struct jnode *n)
{
    jv obj = jinja__eval(r, n->a);
    int64_t s0, s1, s2;
    const int64_t *start = slice_arg(r, n->b, &s0), *stop = slice_arg(r, n->c, &s1), *step = slice_arg(r, n->d, &s2);
    if (obj.kind == JV_UNDEF)
        jv_fail_undef(r, obj);
    if (obj.kind == JV_STR)
        return str_slice_cp(r, obj, start, stop, step);
    if (obj.kind != JV_LIST && obj.kind != JV_TUPLE)
        return jv_undef(UND_ELEM, obj.kind, "slice", 5);
    int64_t a, e, st;
    jinja__slice_indices(r, (int64_t)obj.u.l->n, start, stop, step, &a, &e, &st);
    jv out = jv_list(r, 0);
    out.kind = obj.kind;
    for (int64_t i = a; st > 0 ? i < e : i > e; i += st)
        jv_push(r, out, obj.u.l->v[i]);
    return out;
}

static bool contains(struct jrender *r, jv c, jv x)
{
    switch (c.kind) {
    case JV_UNDEF: return false;
    case JV_STR:
        jinja__charge(r, c.n);
        if (x.kind == JV_UNDEF)
            jv_fail_undef(r, x);
        if (x.kind != JV_STR)
            jinja__fail(r, "'in <string>' requires string as left operand, not %s", jv_type_name(x));
        return x.n == 0 || memmem(c.u.s, c.n, x.u.s, x.n) != NULL;
    case JV_LIST:
    case JV_TUPLE:
        for (size_t i = 0; i < c.u.l->n; i++)
            if (jv_equal(c.u.l->v[i], x))
                return true;
        return false;
    case JV_DICT: return jv_dict_find(c, x) != NULL;
    default: jinja__fail(r, "argument of type '%s' is not iterable", jv_type_name(c));
    }
}

static const char *op_sym(int op)
{
    static const char *s[] = {"+", "-", "*", "/", "//", "%", "**"};
    return op <= OP_POW ? s[op] : "?";
}

static jv seq_concat(struct jrender *r, jv a, jv b)
{
    if (a.kind == JV_STR) { /* one exact allocation */
        struct jbuf buf = {arena_alloc(&r->arena, a.n + b.n + 1), 0, a.n + b.n + 1};
        jbuf_put(r, &buf, a.u.s, a.n);
        jbuf_put(r, &buf, b.u.s, b.n);
        return jv_buf(&buf);
    }
    jv out = jv_list(r, a.u.l->n + b.u.l->n);
    out.kind = a.kind;
    for (size_t i = 0; i < a.u.l->n; i++)
        jv_push(r, out, a.u.l->v[i]);
    for (size_t i = 0; i < b.u.l->n; i++)
        jv_push(r, out, b.u.l->v[i]);
    return out;
}

static jv seq_repeat(struct jrender *r, jv s, int64_t k)
{
    size_t unit = s.kind == JV_STR ? s.n : s.u.l->n * sizeof(jv);
    if (k > 0 && unit && (uint64_t)k > (uint64_t)(r->out_limit / unit))
        jinja__fail(r, "template output too long: more than %zu MiB written", r->out_limit >> 20);
    if (s.kind == JV_STR) {
        struct jbuf buf = {0};
        for (int64_t i = 0; i < k; i++)
            jbuf_put(r, &buf, s.u.s, s.n);
        return jv_buf(&buf);
    }
    jv out = jv_list(r, k > 0 ? (size_t)k * s.u.l->n : 0);
    out.kind = s.kind;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < s.u.l->n; j++)
            jv_push(r, out, s.u.l->v[j]);
    return out;
}

static bool is_num(jv v)
{
    return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL;
}

static double as_f(jv v)
{
    return v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : (double)v.u.b;
}

static int64_t as_i(jv v)
{
    return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b;
}

static jv int_op(struct jrender *r, int op, int64_t x, int64_t y)
{
    int64_t z;
    switch (op) {
    case OP_ADD: if (__builtin_add_overflow(x, y, &z)) break; return jv_int(z);
    case OP_SUB: if (__builtin_sub_overflow(x, y, &z)) break; return jv_int(z);
    case OP_MUL: if (__builtin_mul_overflow(x, y, &z)) break; return jv_int(z);
    case OP_DIV:
        if (!y)
            jinja__fail(r, "division by zero");
        return jv_float((double)x / (double)y);
    case OP_FLOORDIV:
    case OP_MOD:
        if (!y)
            jinja__fail(r, op == OP_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1)
            break;
        z = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0)))
            z--;
        return jv_int(op == OP_FLOORDIV ? z : x - z * y);
    case OP_POW:
        if (y < 0)
            return jv_float(pow((double)x, (double)y));
        z = 1;
        for (int64_t i = 0; i < y; i++)
            if (__builtin_mul_overflow(z, x, &z))
                jinja__fail(r, "integer overflow");
        return jv_int(z);
    }
    jinja__fail(r, "integer overflow");
}

static jv float_op(struct jrender *r, int op, double x, double y)
{
    switch (op) {
    case OP_ADD: return jv_float(x + y);
    case OP_SUB: return jv_float(x - y);
    case OP_MUL: return jv_float(x * y);
    case OP_DIV:
        if (y == 0)
            jinja__fail(r, "float division by zero");
        return jv_float(x / y);
    case OP_FLOORDIV:
        if (y == 0)
            jinja__fail(r, "float floor division by zero");
        return jv_float(floor(x / y));
    case OP_MOD: {
        if (y == 0)
            jinja__fail(r, "float modulo");
        double m = fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0)))
            m += y;
        return jv_float(m);
    }
    default: return jv_float(pow(x, y));
    }
}

static jv arith(struct jrender *r, int op, jv a, jv b)
{
    if (a.kind == JV_UNDEF)
        jv_fail_undef(r, a);
    if (b.kind == JV_UNDEF)
        jv_fail_undef(r, b);
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT)
            return float_op(r, op, as_f(a), as_f(b));
        return int_op(r, op, as_i(a), as_i(b));
    }
    if (op == OP_ADD && ((a.kind == JV_STR && a.sub == SUB_MARKUP && b.kind == JV_STR) ||
                         (b.kind == JV_STR && b.sub == SUB_MARKUP && a.kind == JV_STR))) {
        jv m = seq_concat(r, jinja__escape(r, a), jinja__escape(r, b)); /* Markup + str escapes the str */
        m.sub = SUB_MARKUP;
        return m;
    }
    bool seq_a = a.kind == JV_STR || a.kind == JV_TUPLE || (a.kind == JV_LIST && a.sub != SUB_GEN);
    if (op == OP_ADD && seq_a && a.kind == b.kind && b.sub != SUB_GEN)
        return seq_concat(r, a, b);
    if (op == OP_ADD && seq_a)
        jinja__fail(r, "can only concatenate %s (not \"%s\") to %s", jv_type_name(a), jv_type_name(b),
                    jv_type_name(a));
    if (op == OP_MUL && seq_a && (b.kind == JV_INT || b.kind == JV_BOOL))
        return seq_repeat(r, a, as_i(b));
    bool seq_b = b.kind == JV_STR || b.kind == JV_TUPLE || (b.kind == JV_LIST && b.sub != SUB_GEN);
    if (op == OP_MUL && seq_b && (a.kind == JV_INT || a.kind == JV_BOOL))
        return seq_repeat(r, b, as_i(a));
    if (op == OP_MOD && a.kind == JV_STR)
        return str_percent(r, a, b);
    if (op == OP_MUL && (seq_a || seq_b))
        jinja__fail(r, "can't multiply sequence by non-int of type '%s'", jv_type_name(seq_a ? b : a));
    jinja__fail(r, "unsupported operand type(s) for %s: '%s' and '%s'", op == OP_POW ? "** or pow()" : op_sym(op),
                jv_type_name(a), jv_type_name(b));
}

jv jinja__binop(struct jrender *r, int op, jv a, jv b)
{
    switch (op) {
    case OP_CONCAT: {
        struct jbuf buf = {0};
        jv_write(r, &buf, a);
        jv_write(r, &buf, b);
        return jv_buf(&buf);
    }
    case OP_EQ: return jv_bool(jv_equal(a, b));
    case OP_NE: return jv_bool(!jv_equal(a, b));
    case OP_LT: return jv_bool(jv_compare(r, a, b, "<") < 0);
    case OP_LE: return jv_bool(jv_compare(r, a, b, "<=") <= 0);
    case OP_GT: return jv_bool(jv_compare(r, a, b, ">") > 0);
    case OP_GE: return jv_bool(jv_compare(r, a, b, ">=") >= 0);
    case OP_IN: return jv_bool(contains(r, b, a));
    case OP_NOTIN: return jv_bool(!contains(r, b, a));
    default: return arith(r, op, a, b);
    }
}

jv jinja__call(struct jrender *r, jv f, jv *args, int nargs, const char **kwn, jv *kwv, int nkw)
{
    switch (f.kind) {
    case JV_MACRO: return jinja__call_macro(r, f.u.m, args, nargs, kwn, kwv, nkw);
    case JV_FUNC: return jinja__builtin(r, f.tag, args, nargs, kwn, kwv, nkw);
    case JV_METHOD: return jinja__method(r, f.u.bm->self, f.u.bm->name, args, nargs, kwn, kwv, nkw);
    case JV_UNDEF: jv_fail_undef(r, f);
    default: jinja__fail(r, "'%s' object is not callable", jv_type_name(f));
    }
}

/* The arguments of a call, filter or test node: positional, then keyword. */
static int eval_args(struct jrender *r, const struct jnode *n, jv **args, jv **kwv)
{
    static jv none[1];
    if (!n->nkids && !n->nkids2) {
        *args = *kwv = none; /* nothing to allocate */
        return 0;
    }
    *args = arena_alloc(&r->arena, sizeof(jv) * (size_t)(n->nkids + n->nkids2 + 1));
    *kwv = *args + n->nkids;
    for (int i = 0; i < n->nkids; i++)
        (*args)[i] = jinja__eval(r, n->kids[i]);
    for (int i = 0; i < n->nkids2; i++)
        (*kwv)[i] = jinja__eval(r, n->kids2[i]);
    return n->nkids;
}

jv jinja__apply_filter(struct jrender *r, const struct jnode *f, jv x)
{
    jv operand = !f->a ? x : f->a->kind == N_FILTER ? jinja__apply_filter(r, f->a, x) : jinja__eval(r, f->a);
    jv *args, *kwv;
    int nargs = eval_args(r, f, &args, &kwv);
    return jinja__filter(r, f->name, operand, args, nargs, f->names, kwv, f->nkids2);
}

static jv eval_unary(struct jrender *r, const struct jnode *n)
{
    jv x = jinja__eval(r, n->a);
    if (n->op == OP_NOT)
        return jv_bool(!jv_truthy(x));
    if (x.kind == JV_UNDEF)
        jv_fail_undef(r, x);
    if (x.kind == JV_FLOAT)
        return jv_float(n->op == OP_NEG ? -x.u.f : x.u.f);
    if (x.kind == JV_INT || x.kind == JV_BOOL) {
        int64_t i = x.kind == JV_INT ? x.u.i : x.u.b;
        if (n->op == OP_NEG && i == INT64_MIN)
            jinja__fail(r, "integer overflow");
        return jv_int(n->op == OP_NEG ? -i : i);
    }
    jinja__fail(r, "bad operand type for unary %c: '%s'", n->op == OP_NEG ? '-' : '+', jv_type_name(x));
}

static jv eval_seq(struct jrender *r, const struct jnode *n)
{
    if (n->kind == N_DICT) {
        jv d = jv_dict(r, (size_t)n->nkids);
        for (int i = 0; i < n->nkids; i++)
            jv_dict_set(r, d, jinja__eval(r, n->kids[i]), jinja__eval(r, n->kids2[i]));
        return d;
    }
    jv l = jv_list(r, (size_t)n->nkids);
    for (int i = 0; i < n->nkids; i++)
        jv_push(r, l, jinja__eval(r, n->kids[i]));
    l.kind = n->kind == N_TUPLE ? JV_TUPLE : JV_LIST;
    return l;
}

static jv eval_cond(struct jrender *r, const struct jnode *n)
{
    if (jv_truthy(jinja__eval(r, n->b)))
        return jinja__eval(r, n->a);
    if (n->c)
        return jinja__eval(r, n->c);
    struct jbuf msg = {0};
    jbuf_printf(r, &msg, "the inline if-expression on line %d evaluated to false and no else section was defined.",
                n->line);
    return jv_undef(UND_HINT, 0, msg.s, msg.len);
}

static jv eval_node(struct jrender *r, const struct jnode *n)
{
    jv *args, *kwv, x;
    switch (n->kind) {
    case N_CONST: return n->val;
    case N_NAME: return jinja__lookup(r, n->name, n->nlen);
    case N_LIST: case N_TUPLE: case N_DICT: return eval_seq(r, n);
    case N_ATTR: return jinja__getattr(r, jinja__eval(r, n->a), n->name, n->nlen);
    case N_ITEM:
        x = jinja__eval(r, n->a);
        return jinja__getitem(r, x, jinja__eval(r, n->b));
    case N_SLICE: return eval_slice(r, n);
    case N_CALL: {
        jv f = jinja__eval(r, n->a);
        int nargs = eval_args(r, n, &args, &kwv);
        return jinja__call(r, f, args, nargs, n->names, kwv, n->nkids2);
    }
    case N_FILTER: return jinja__apply_filter(r, n, jv_none());
    case N_TEST: {
        x = jinja__eval(r, n->a);
        int nargs = eval_args(r, n, &args, &kwv);
        return jv_bool(jinja__test(r, n->name, x, args, nargs) != n->flag);
    }
    case N_BINOP:
        x = jinja__eval(r, n->a);
        if (n->op == OP_AND)
            return jv_truthy(x) ? jinja__eval(r, n->b) : x;
        if (n->op == OP_OR)
            return jv_truthy(x) ? x : jinja__eval(r, n->b);
        return jinja__binop(r, n->op, x, jinja__eval(r, n->b));
    case N_UNARY: return eval_unary(r, n);
    case N_COND: return eval_cond(r, n);
    default: jinja__fail(r, "line %d: not an expression", n->line);
    }
}

jv jinja__eval(struct jrender *r, const struct jnode *n)
{
    jinja__enter(r);
    jv v = eval_node(r, n);
    r->nest--;
    return v;
}
