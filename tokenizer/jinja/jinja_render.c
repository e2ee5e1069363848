/* jinja_render.c: runs the statement tree. Scopes as jinja2 has them: the
 * template's (the context's keys, top-level sets, macros), one per for
 * loop iteration (sets inside a loop do not outlive the iteration; a
 * namespace() is how templates carry values out), one per macro call, whose
 * parent is the scope the macro was defined in. Output goes to arena
 * buffers; macros, block sets, filter blocks and call blocks capture theirs.
 * Work is bounded: loop iterations and calls (steps), nested calls
 * (depth), bytes written (output, captured text included), arena bytes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../base/err.h"
#include "jinja_internal.h"

struct scope {
    struct scope *parent;
    bool captured; /* a macro defined here keeps it: not reused by the next iteration */
    int n, cap;
    const char **names;
    size_t *lens;
    jv *vals;
};

struct jloop {
    jv items; /* JV_LIST / JV_TUPLE */
    size_t i;
};

void jinja__fail(struct jrender *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (r->err_cap)
        vsnprintf(r->err, r->err_cap, fmt, ap);
    va_end(ap);
    longjmp(r->fail, 1);
}

void jinja__step(struct jrender *r)
{
    if (++r->steps > r->step_limit)
        jinja__fail(r, "template too costly: more than %ld steps (loop iterations, calls, evaluations)",
                    r->step_limit);
}

void jinja__charge(struct jrender *r, size_t bytes)
{
    r->steps += (long)(bytes >> 8);
    jinja__step(r);
}

void jinja__enter_fail(struct jrender *r)
{
    if (r->nest > JINJA_MAX_RECURSION)
        jinja__fail(r, "maximum recursion depth exceeded");
    jinja__fail(r, "template too costly: more than %ld steps (loop iterations, calls, evaluations)", r->step_limit);
}

void jbuf_grow(struct jrender *r, struct jbuf *b, size_t n)
{
    if (n > r->out_limit - r->written)
        jinja__fail(r, "template output too long: more than %zu MiB written", r->out_limit >> 20);
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap * 2 > b->len + n + 1 ? b->cap * 2 : b->len + n + 64;
        char *s2 = arena_alloc(&r->arena, cap);
        if (b->len)
            memcpy(s2, b->s, b->len);
        b->s = s2;
        b->cap = cap;
    }
}

void jbuf_printf(struct jrender *r, struct jbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    if ((size_t)k < sizeof(tmp)) {
        jbuf_put(r, b, tmp, (size_t)k);
        return;
    }
    char *big = arena_alloc(&r->arena, (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    jbuf_put(r, b, big, (size_t)k);
}

/* ---- scopes ---- */

static struct scope *scope_new(struct jrender *r, struct scope *parent)
{
    struct scope *s = arena_alloc(&r->arena, sizeof(*s));
    memset(s, 0, sizeof(*s));
    s->parent = parent;
    return s;
}

static void scope_set(struct jrender *r, struct scope *s, const char *name, size_t n, jv v)
{
    for (int i = 0; i < s->n; i++)
        if (s->lens[i] == n && !memcmp(s->names[i], name, n)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        const char **names = arena_alloc(&r->arena, sizeof(*names) * (size_t)cap);
        size_t *lens = arena_alloc(&r->arena, sizeof(*lens) * (size_t)cap);
        jv *vals = arena_alloc(&r->arena, sizeof(*vals) * (size_t)cap);
        if (s->n) {
            memcpy(names, s->names, sizeof(*names) * (size_t)s->n);
            memcpy(lens, s->lens, sizeof(*lens) * (size_t)s->n);
            memcpy(vals, s->vals, sizeof(*vals) * (size_t)s->n);
        }
        s->names = names;
        s->lens = lens;
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->lens[s->n] = n;
    s->vals[s->n++] = v;
}

jv jinja__lookup(struct jrender *r, const char *name, size_t n)
{
    for (struct scope *s = r->scope; s; s = s->parent)
        for (int i = s->n - 1; i >= 0; i--)
            if (s->lens[i] == n && s->names[i][0] == name[0] && !memcmp(s->names[i], name, n))
                return s->vals[i];
    int id = jinja__builtin_id(name, n);
    if (id >= 0)
        return (jv){.kind = JV_FUNC, .tag = (uint8_t)id};
    return jv_undef(UND_NAME, 0, name, n);
}

/* name = v, or a, b = v (unpacking a sequence). */
static void bind(struct jrender *r, struct scope *s, const struct jnode *n, jv v)
{
    if (!n->flag) {
        scope_set(r, s, n->names[0], strlen(n->names[0]), v);
        return;
    }
    if (v.kind != JV_LIST && v.kind != JV_TUPLE && v.kind != JV_STR && v.kind != JV_DICT && v.kind != JV_UNDEF)
        jinja__fail(r, "cannot unpack non-iterable %s object", jv_type_name(v));
    jv items = jv_iter_list(r, v);
    size_t k = items.u.l->n;
    if (k < (size_t)n->nnames)
        jinja__fail(r, "not enough values to unpack (expected %d, got %zu)", n->nnames, k);
    if (k > (size_t)n->nnames)
        jinja__fail(r, "too many values to unpack (expected %d)", n->nnames);
    for (int i = 0; i < n->nnames; i++)
        scope_set(r, s, n->names[i], strlen(n->names[i]), items.u.l->v[i]);
}

/* ---- loops ---- */

jv jinja__loop_attr(struct jrender *r, jv loop, const char *name, size_t n)
{
    struct jloop *l = loop.u.lp;
    size_t len = l->items.u.l->n;
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
    if (IS("index"))
        return jv_int((int64_t)l->i + 1);
    if (IS("index0"))
        return jv_int((int64_t)l->i);
    if (IS("revindex"))
        return jv_int((int64_t)(len - l->i));
    if (IS("revindex0"))
        return jv_int((int64_t)(len - l->i - 1));
    if (IS("first"))
        return jv_bool(l->i == 0);
    if (IS("last"))
        return jv_bool(l->i + 1 == len);
    if (IS("length"))
        return jv_int((int64_t)len);
    if (IS("depth"))
        return jv_int(1);
    if (IS("depth0"))
        return jv_int(0);
    if (IS("previtem"))
        return l->i ? l->items.u.l->v[l->i - 1] : jv_undef(UND_HINT, 0, "there is no previous item", 25);
    if (IS("nextitem"))
        return l->i + 1 < len ? l->items.u.l->v[l->i + 1] : jv_undef(UND_HINT, 0, "there is no next item", 21);
    if (IS("cycle")) {
        struct jmethod *m = arena_alloc(&r->arena, sizeof(*m));
        m->self = loop;
        m->name = "cycle";
        return (jv){.kind = JV_METHOD, .u.bm = m};
    }
#undef IS
    return jv_undef(UND_ATTR, JV_LOOP, name, n);
}

static jv loop_items(struct jrender *r, const struct jnode *n)
{
    jv items = jv_iter_list(r, jinja__eval(r, n->a));
    if (!n->c)
        return items;
    jv kept = jv_list(r, items.u.l->n);
    struct scope *saved = r->scope;
    r->scope = scope_new(r, saved);
    for (size_t i = 0; i < items.u.l->n; i++) {
        jinja__step(r);
        bind(r, r->scope, n, items.u.l->v[i]);
        if (jv_truthy(jinja__eval(r, n->c)))
            jv_push(r, kept, items.u.l->v[i]);
    }
    r->scope = saved;
    return kept;
}

static void exec_for(struct jrender *r, const struct jnode *n)
{
    jv items = loop_items(r, n);
    struct jloop *l = arena_alloc(&r->arena, sizeof(*l));
    l->items = items;
    struct scope *saved = r->scope, *s = NULL;
    for (l->i = 0; l->i < items.u.l->n; l->i++) {
        jinja__step(r);
        if (!s || s->captured)
            s = scope_new(r, saved);
        s->n = 0;
        r->scope = s;
        bind(r, r->scope, n, items.u.l->v[l->i]);
        scope_set(r, r->scope, "loop", 4, (jv){.kind = JV_LOOP, .u.lp = l});
        jinja__exec_body(r, n->b->kids, n->b->nkids);
        r->scope = saved;
        int brk = r->brk;
        r->brk = 0;
        if (brk == 1)
            break;
    }
    if (!items.u.l->n && n->d)
        jinja__exec_body(r, n->d->kids, n->d->nkids);
}

/* ---- macros ---- */

static jv capture(struct jrender *r, const struct jnode *body, struct scope *scope)
{
    struct jbuf buf = {0}, *saved_out = r->out;
    struct scope *saved_scope = r->scope;
    r->out = &buf;
    r->scope = scope;
    jinja__exec_body(r, body->kids, body->nkids);
    r->out = saved_out;
    r->scope = saved_scope;
    r->brk = 0;
    return jv_buf(&buf);
}

static int find_kw(const char *name, const char **kwn, int nkw)
{
    for (int k = 0; k < nkw; k++)
        if (!strcmp(kwn[k], name))
            return k;
    return -1;
}

static jv call_macro(struct jrender *r, struct jmacro *m, jv caller, jv *args, int nargs, const char **kwn,
                     jv *kwv, int nkw)
{
    const struct jnode *def = m->def;
    jinja__step(r);
    if (++r->depth > r->depth_limit)
        jinja__fail(r, "maximum recursion depth exceeded"); /* Python's RecursionError */
    if (nargs > def->nnames)
        jinja__fail(r, "macro '%s' takes not more than %d argument(s)", m->name, def->nnames);
    for (int k = 0; k < nkw; k++) {
        int i = 0;
        while (i < def->nnames && strcmp(def->names[i], kwn[k]))
            i++;
        if (i == def->nnames)
            jinja__fail(r, "macro '%s' takes no keyword argument '%s'", m->name, kwn[k]);
        if (i < nargs)
            jinja__fail(r, "macro '%s' got multiple values for argument '%s'", m->name, kwn[k]);
    }
    struct scope *s = scope_new(r, m->closure), *saved = r->scope;
    r->scope = s;
    for (int i = 0; i < def->nnames; i++) {
        int k = find_kw(def->names[i], kwn, nkw);
        jv v;
        if (i < nargs)
            v = args[i];
        else if (k >= 0)
            v = kwv[k];
        else if (def->kids2[i])
            v = jinja__eval(r, def->kids2[i]);
        else {
            struct jbuf msg = {0};
            jbuf_printf(r, &msg, "parameter '%s' was not provided", def->names[i]);
            v = jv_undef(UND_HINT, 0, msg.s, msg.len);
        }
        scope_set(r, s, def->names[i], strlen(def->names[i]), v);
    }
    scope_set(r, s, "caller", 6, caller.kind != JV_UNDEF ? caller : jv_undef(UND_HINT, 0, "No caller defined", 17));
    r->scope = saved;
    jv out = capture(r, def->b, s);
    r->depth--;
    return out;
}

jv jinja__call_macro(struct jrender *r, struct jmacro *m, jv *args, int nargs, const char **kwn, jv *kwv, int nkw)
{
    return call_macro(r, m, jv_undef(UND_NAME, 0, "caller", 6), args, nargs, kwn, kwv, nkw);
}

static struct jmacro *new_macro(struct jrender *r, const char *name, const struct jnode *def)
{
    struct jmacro *m = arena_alloc(&r->arena, sizeof(*m));
    m->name = name;
    m->def = def;
    m->closure = r->scope;
    r->scope->captured = true;
    return m;
}

static void exec_call_block(struct jrender *r, const struct jnode *n)
{
    const struct jnode *call = n->a;
    jv f = jinja__eval(r, call->a);
    if (f.kind != JV_MACRO)
        jinja__fail(r, "call blocks need a macro, not %s", jv_type_name(f));
    jv *args = arena_alloc(&r->arena, sizeof(jv) * (size_t)(call->nkids + call->nkids2 + 1));
    jv *kwv = args + call->nkids;
    for (int i = 0; i < call->nkids; i++)
        args[i] = jinja__eval(r, call->kids[i]);
    for (int i = 0; i < call->nkids2; i++)
        kwv[i] = jinja__eval(r, call->kids2[i]);
    jv caller = {.kind = JV_MACRO, .u.m = new_macro(r, "caller", n)};
    jv out = call_macro(r, f.u.m, caller, args, call->nkids, call->names, kwv, call->nkids2);
    jbuf_put(r, r->out, out.u.s, out.n);
}

/* ---- statements ---- */

static void exec_set(struct jrender *r, const struct jnode *n)
{
    jv v;
    if (n->kind == S_SETBLOCK) {
        v = capture(r, n->b, r->scope);
        if (n->c)
            v = jinja__apply_filter(r, n->c, v);
    } else
        v = jinja__eval(r, n->b);
    if (!n->name) {
        bind(r, r->scope, n, v);
        return;
    }
    jv ns = jinja__lookup(r, n->names[0], strlen(n->names[0]));
    if (ns.kind != JV_NS)
        jinja__fail(r, "cannot assign attribute on non-namespace object");
    if (n->nlen && n->name[0] == '_')
        jinja__fail(r,
                    "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'. "
                    "Please rename the attribute.", n->name);
    jv_dict_set(r, (jv){.kind = JV_DICT, .u.d = ns.u.d}, jv_str(n->name, n->nlen), v);
}

/* {{ a + b + c }} and {{ a ~ b ~ c }}: string pieces go straight to the
 * output instead of building the concatenation. Same text, same errors: the
 * pieces are evaluated left to right, and from the first piece that is not
 * a plain string on, + folds with the operator as usual. */
static void write_output(struct jrender *r, const struct jnode *n)
{
    const struct jnode *leaves[32], *x = n;
    int k = 0, op = n->kind == N_BINOP && (n->op == OP_ADD || n->op == OP_CONCAT) ? n->op : -1;
    for (; op >= 0 && x->kind == N_BINOP && x->op == op && k < 31; x = x->a)
        leaves[k++] = x->b;
    leaves[k++] = x; /* leaves[k - 1] is the leftmost */
    size_t mark = r->out->len;
    bool streaming = true;
    jv acc = jv_none();
    for (int i = k - 1; i >= 0; i--) {
        jv v = jinja__eval(r, leaves[i]);
        if (op == OP_CONCAT || (streaming && v.kind == JV_STR && v.sub != SUB_MARKUP)) {
            jv_write(r, r->out, v);
            continue;
        }
        if (streaming) {
            streaming = false;
            if (i == k - 1) {
                acc = v;
                continue;
            }
            acc = jv_strdup(r, r->out->s ? r->out->s + mark : "", r->out->len - mark);
            r->out->len = mark;
            if (r->out->s)
                r->out->s[mark] = 0;
        }
        acc = jinja__binop(r, OP_ADD, acc, v);
    }
    if (!streaming)
        jv_write(r, r->out, acc);
}

static void exec(struct jrender *r, const struct jnode *n)
{
    switch (n->kind) {
    case S_BODY: jinja__exec_body(r, n->kids, n->nkids); return;
    case S_TEXT: jbuf_put(r, r->out, n->name, n->nlen); return;
    case S_OUTPUT: write_output(r, n->a); return;
    case S_IF:
        if (jv_truthy(jinja__eval(r, n->a)))
            jinja__exec_body(r, n->b->kids, n->b->nkids);
        else if (n->c)
            exec(r, n->c);
        return;
    case S_FOR: exec_for(r, n); return;
    case S_SET:
    case S_SETBLOCK: exec_set(r, n); return;
    case S_MACRO:
        scope_set(r, r->scope, n->name, n->nlen, (jv){.kind = JV_MACRO, .u.m = new_macro(r, n->name, n)});
        return;
    case S_CALLBLOCK: exec_call_block(r, n); return;
    case S_FILTERBLOCK: {
        jv v = jinja__apply_filter(r, n->a, capture(r, n->b, r->scope));
        jv_write(r, r->out, v);
        return;
    }
    case S_BREAK: r->brk = 1; return;
    case S_CONTINUE: r->brk = 2; return;
    default: jinja__fail(r, "line %d: not a statement", n->line);
    }
}

void jinja__exec_body(struct jrender *r, struct jnode **body, int n)
{
    jinja__enter(r);
    for (int i = 0; i < n && !r->brk; i++)
        exec(r, body[i]);
    r->nest--;
}

int jinja_render(const jinja_template *t, const json_t *ctx, time_t now, struct strbuf *out, char *err,
                 size_t err_cap)
{
    struct jrender *r = xcalloc(1, sizeof(*r));
    struct jbuf buf = {0};
    r->err = err;
    r->err_cap = err_cap;
    r->arena.limit = JINJA_MAX_ARENA;
    r->arena.oom = &r->fail;
    r->arena.err = err;
    r->arena.err_cap = err_cap;
    r->out = &buf;
    r->out_limit = JINJA_MAX_OUTPUT;
    r->step_limit = JINJA_MAX_STEPS;
    r->depth_limit = JINJA_MAX_DEPTH;
    r->now = now;
    int rc = -1;
    if (setjmp(r->fail))
        goto done;
    if (!json_is_object(ctx))
        jinja__fail(r, "the context must be a JSON object");
    r->root = r->scope = scope_new(r, NULL);
    const char *k;
    size_t kn;
    json_t *v;
    json_object_keylen_foreach((json_t *)ctx, k, kn, v) scope_set(r, r->root, k, kn, jv_from_json(r, v));
    jinja__exec_body(r, t->root->kids, t->root->nkids);
    strbuf_append(out, r->out->s ? r->out->s : "", r->out->len);
    rc = 0;
done:
    arena_free(&r->arena);
    free(r);
    return rc;
}
