/* jinja_parse.c: tokens -> the statement tree (S_* nodes): text, {{ }},
 * if/elif/else, for (tuple targets, `if` filter, else), set (also block set
 * and namespace attributes), macro, call, filter blocks, break/continue,
 * and transformers' generation block (kept as its plain body). Token helpers
 * shared with the expression parser (jinja_parse_expr.c) live here too. */
#include <stdio.h>
#include <string.h>

#include "../../base/err.h"
#include "jinja_internal.h"

const struct jtok *jinja__peek(struct jparser *p)
{
    return &p->lx->toks[p->pos];
}

const struct jtok *jinja__next(struct jparser *p)
{
    const struct jtok *t = &p->lx->toks[p->pos];
    if (t->kind != T_EOF)
        p->pos++;
    return t;
}

bool jinja__is_op(const struct jtok *t, const char *op)
{
    return t->kind == T_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}

bool jinja__is_name(const struct jtok *t, const char *name)
{
    return t->kind == T_NAME && t->n == strlen(name) && !memcmp(t->s, name, t->n);
}

const char *jinja__tok_desc(const struct jtok *t)
{
    switch (t->kind) {
    case T_BLOCK_END: return "end of statement block";
    case T_VAR_END: return "end of print statement";
    case T_EOF: return "end of template";
    case T_DATA: return "template data";
    default: return "token";
    }
}

void jinja__expect_op(struct jparser *p, const char *op)
{
    const struct jtok *t = jinja__peek(p);
    if (!jinja__is_op(t, op))
        jinja__syntax(p->lx, t->line, "expected token '%s', got %s '%.*s'", op, jinja__tok_desc(t), (int)t->n,
                      t->s ? t->s : "");
    jinja__next(p);
}

const char *jinja__expect_name(struct jparser *p)
{
    const struct jtok *t = jinja__peek(p);
    if (t->kind != T_NAME)
        jinja__syntax(p->lx, t->line, "expected a name, got %s", jinja__tok_desc(t));
    jinja__next(p);
    return arena_strndup(p->lx->arena, t->s, t->n);
}

struct jnode *jinja__node(struct jparser *p, int kind, int line)
{
    struct jnode *n = arena_alloc(p->lx->arena, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->kind = (uint8_t)kind;
    n->line = line;
    return n;
}

void jinja__push(struct jparser *p, struct jnode ***v, int *n, struct jnode *x)
{
    if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4...: grow to the next power of two */
        struct jnode **w = arena_alloc(p->lx->arena, sizeof(*w) * (size_t)(*n ? *n * 2 : 1));
        if (*n)
            memcpy(w, *v, sizeof(*w) * (size_t)*n);
        *v = w;
    }
    (*v)[(*n)++] = x;
}


static bool is_end(const struct jtok *t, const char *const *ends)
{
    for (; ends && *ends; ends++)
        if (jinja__is_name(t, *ends))
            return true;
    return false;
}

static struct jnode *parse_statement(struct jparser *p);

/* Nodes up to one of ends (a NULL-terminated list of tag names; NULL: the
 * end of the template). On return p is at that tag's name. */
static struct jnode *parse_body(struct jparser *p, const char *const *ends, const char *block)
{
    struct jnode *body = jinja__node(p, S_BODY, jinja__peek(p)->line);
    for (;;) {
        const struct jtok *t = jinja__peek(p);
        struct jnode *n = NULL;
        if (t->kind == T_EOF) {
            if (ends)
                jinja__syntax(p->lx, t->line,
                              "Unexpected end of template. Jinja was looking for the following tags: '%s'. The "
                              "innermost block that needs to be closed is '%s'.", ends[0], block);
            return body;
        }
        jinja__next(p);
        if (t->kind == T_DATA) {
            n = jinja__node(p, S_TEXT, t->line);
            n->name = t->s;
            n->nlen = t->n;
        } else if (t->kind == T_VAR_BEGIN) {
            n = jinja__node(p, S_OUTPUT, t->line);
            n->a = jinja__expr_tuple(p);
            if (jinja__peek(p)->kind != T_VAR_END)
                jinja__syntax(p->lx, t->line, "expected token 'end of print statement', got '%.*s'",
                              (int)jinja__peek(p)->n, jinja__peek(p)->s ? jinja__peek(p)->s : "");
            jinja__next(p);
        } else if (t->kind == T_BLOCK_BEGIN) {
            if (is_end(jinja__peek(p), ends))
                return body;
            n = parse_statement(p);
        } else
            jinja__syntax(p->lx, t->line, "unexpected %s", jinja__tok_desc(t));
        if (n)
            jinja__push(p, &body->kids, &body->nkids, n);
    }
}

static void block_end(struct jparser *p)
{
    const struct jtok *t = jinja__peek(p);
    if (t->kind != T_BLOCK_END)
        jinja__syntax(p->lx, t->line, "expected token 'end of statement block', got '%.*s'", (int)t->n,
                      t->s ? t->s : "");
    jinja__next(p);
}

/* The end tag's name (already seen by parse_body), then %}. */
static void end_tag(struct jparser *p)
{
    jinja__next(p);
    block_end(p);
}

static struct jnode *parse_if(struct jparser *p, int line)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const endif[] = {"endif", NULL};
    struct jnode *n = jinja__node(p, S_IF, line);
    if (++p->depth > JINJA_MAX_NEST)
        jinja__syntax(p->lx, line, "blocks nested too deeply");
    n->a = jinja__expr_tuple(p);
    block_end(p);
    n->b = parse_body(p, ends, "if");
    const struct jtok *t = jinja__peek(p);
    if (jinja__is_name(t, "elif")) {
        jinja__next(p);
        n->c = parse_if(p, t->line); /* takes the endif */
        p->depth--;
        return n;
    }
    if (jinja__is_name(t, "else")) {
        end_tag(p);
        n->c = parse_body(p, endif, "if");
    }
    end_tag(p);
    p->depth--;
    return n;
}

/* name or name, name (optionally in parentheses): n->names. */
static void parse_targets(struct jparser *p, struct jnode *n)
{
    bool paren = jinja__is_op(jinja__peek(p), "(");
    if (paren)
        jinja__next(p);
    do {
        if (n->nnames)
            jinja__next(p); /* , */
        const char *name = jinja__expect_name(p);
        if ((n->nnames & (n->nnames - 1)) == 0) {
            const char **w = arena_alloc(p->lx->arena, sizeof(*w) * (size_t)(n->nnames ? n->nnames * 2 : 1));
            if (n->nnames)
                memcpy(w, n->names, sizeof(*w) * (size_t)n->nnames);
            n->names = w;
        }
        n->names[n->nnames++] = name;
    } while (jinja__is_op(jinja__peek(p), ","));
    n->flag = n->nnames > 1 || paren;
    if (paren)
        jinja__expect_op(p, ")");
}

static struct jnode *parse_for(struct jparser *p, int line)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const endfor[] = {"endfor", NULL};
    struct jnode *n = jinja__node(p, S_FOR, line);
    parse_targets(p, n);
    if (!jinja__is_name(jinja__peek(p), "in"))
        jinja__syntax(p->lx, line, "expected token 'in', got '%.*s'", (int)jinja__peek(p)->n,
                      jinja__peek(p)->s ? jinja__peek(p)->s : "");
    jinja__next(p);
    /* the iterable takes no conditional expression: its `if` filters */
    int line2 = jinja__peek(p)->line;
    struct jnode *it = jinja__expr(p);
    if (it->kind == N_COND && !it->c) { /* x if c: the loop's filter */
        n->c = it->b;
        it = it->a;
    }
    if (jinja__is_op(jinja__peek(p), ",")) {
        struct jnode *tup = jinja__node(p, N_TUPLE, line2);
        jinja__push(p, &tup->kids, &tup->nkids, it);
        while (jinja__is_op(jinja__peek(p), ",") && jinja__next(p))
            jinja__push(p, &tup->kids, &tup->nkids, jinja__expr(p));
        it = tup;
    }
    if (jinja__is_name(jinja__peek(p), "recursive"))
        jinja__syntax(p->lx, line, "recursive loops are not supported");
    n->a = it;
    block_end(p);
    n->b = parse_body(p, ends, "for");
    if (jinja__is_name(jinja__peek(p), "else")) {
        end_tag(p);
        n->d = parse_body(p, endfor, "for");
    }
    end_tag(p);
    return n;
}

/* name(a, b=default, ...) parameters into n->names and n->kids2. */
static void parse_params(struct jparser *p, struct jnode *n)
{
    jinja__expect_op(p, "(");
    while (!jinja__is_op(jinja__peek(p), ")")) {
        if (n->nnames)
            jinja__expect_op(p, ",");
        const char *name = jinja__expect_name(p);
        if ((n->nnames & (n->nnames - 1)) == 0) {
            const char **w = arena_alloc(p->lx->arena, sizeof(*w) * (size_t)(n->nnames ? n->nnames * 2 : 1));
            if (n->nnames)
                memcpy(w, n->names, sizeof(*w) * (size_t)n->nnames);
            n->names = w;
        }
        n->names[n->nnames++] = name;
        struct jnode *def = NULL;
        if (jinja__is_op(jinja__peek(p), "=")) {
            jinja__next(p);
            def = jinja__expr(p);
        }
        jinja__push(p, &n->kids2, &n->nkids2, def);
    }
    jinja__next(p);
}

static struct jnode *parse_macro(struct jparser *p, int line)
{
    static const char *const ends[] = {"endmacro", NULL};
    struct jnode *n = jinja__node(p, S_MACRO, line);
    n->name = jinja__expect_name(p);
    n->nlen = strlen(n->name);
    parse_params(p, n);
    block_end(p);
    n->b = parse_body(p, ends, "macro");
    end_tag(p);
    return n;
}

static struct jnode *parse_call_block(struct jparser *p, int line)
{
    static const char *const ends[] = {"endcall", NULL};
    struct jnode *n = jinja__node(p, S_CALLBLOCK, line);
    if (jinja__is_op(jinja__peek(p), "(")) {
        parse_params(p, n);
        n->flag = true;
    }
    n->a = jinja__expr(p);
    if (n->a->kind != N_CALL)
        jinja__syntax(p->lx, line, "expected call");
    block_end(p);
    n->b = parse_body(p, ends, "call");
    end_tag(p);
    return n;
}

/* f1(args)|f2... without an operand (filter blocks, block sets). */
static struct jnode *parse_filter_chain(struct jparser *p)
{
    struct jnode *prev = NULL;
    for (;;) {
        struct jnode *n = jinja__node(p, N_FILTER, jinja__peek(p)->line);
        n->a = prev;
        n->name = jinja__expect_name(p);
        n->nlen = strlen(n->name);
        if (jinja__is_op(jinja__peek(p), "("))
            jinja__call_args(p, n);
        prev = n;
        if (!jinja__is_op(jinja__peek(p), "|"))
            return prev;
        jinja__next(p);
    }
}

static struct jnode *parse_set(struct jparser *p, int line)
{
    static const char *const ends[] = {"endset", NULL};
    struct jnode *n = jinja__node(p, S_SET, line);
    const struct jtok *t = jinja__peek(p);
    if (t->kind == T_NAME && jinja__is_op(t + 1, ".")) {
        parse_targets(p, n); /* just the namespace's name */
        jinja__next(p);
        n->name = jinja__expect_name(p);
        n->nlen = strlen(n->name);
    } else
        parse_targets(p, n);
    if (jinja__is_op(jinja__peek(p), "=")) {
        jinja__next(p);
        n->b = jinja__expr_tuple(p);
        block_end(p);
        return n;
    }
    if (n->name || n->nnames != 1)
        jinja__syntax(p->lx, line, "expected token '='");
    n->kind = S_SETBLOCK;
    if (jinja__is_op(jinja__peek(p), "|")) {
        jinja__next(p);
        n->c = parse_filter_chain(p);
    }
    block_end(p);
    n->b = parse_body(p, ends, "set");
    end_tag(p);
    return n;
}

static struct jnode *parse_tag(struct jparser *p, const struct jtok *t);

static struct jnode *parse_statement(struct jparser *p)
{
    const struct jtok *t = jinja__next(p);
    if (++p->depth > JINJA_MAX_NEST)
        jinja__syntax(p->lx, t->line, "blocks nested too deeply");
    struct jnode *n = parse_tag(p, t);
    p->depth--;
    return n;
}

static struct jnode *parse_tag(struct jparser *p, const struct jtok *t)
{
    if (t->kind != T_NAME)
        jinja__syntax(p->lx, t->line, "tag name expected");
    if (jinja__is_name(t, "if"))
        return parse_if(p, t->line);
    if (jinja__is_name(t, "for"))
        return parse_for(p, t->line);
    if (jinja__is_name(t, "set"))
        return parse_set(p, t->line);
    if (jinja__is_name(t, "macro"))
        return parse_macro(p, t->line);
    if (jinja__is_name(t, "call"))
        return parse_call_block(p, t->line);
    if (jinja__is_name(t, "break") || jinja__is_name(t, "continue")) {
        block_end(p);
        return jinja__node(p, jinja__is_name(t, "break") ? S_BREAK : S_CONTINUE, t->line);
    }
    if (jinja__is_name(t, "filter")) {
        static const char *const ends[] = {"endfilter", NULL};
        struct jnode *n = jinja__node(p, S_FILTERBLOCK, t->line);
        n->a = parse_filter_chain(p);
        block_end(p);
        n->b = parse_body(p, ends, "filter");
        end_tag(p);
        return n;
    }
    if (jinja__is_name(t, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        block_end(p);
        struct jnode *body = parse_body(p, ends, "generation");
        end_tag(p);
        return body;
    }
    jinja__syntax(p->lx, t->line, "Encountered unknown tag '%.*s'.", (int)t->n, t->s);
}

struct jnode *jinja__parse(struct jparser *p)
{
    return parse_body(p, NULL, NULL);
}

jinja_template *jinja_compile(const char *text, size_t len, char *err, size_t err_cap)
{
    jinja_template *t = xcalloc(1, sizeof(*t));
    jmp_buf fail;
    struct jlexer lx = {.arena = &t->arena, .fail = &fail, .err = err, .err_cap = err_cap};
    struct jparser p = {.lx = &lx};
    t->arena.limit = JINJA_MAX_ARENA;
    t->arena.oom = &fail;
    if (err_cap)
        err[0] = 0;
    if (setjmp(fail)) {
        if (err_cap && !err[0])
            snprintf(err, err_cap, "template too large");
        jinja_free(t);
        return NULL;
    }
    /* newlines: \r\n and \r become \n; one trailing newline is dropped */
    char *src = arena_alloc(&t->arena, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
            continue;
        src[n++] = text[i] == '\r' ? '\n' : text[i];
    }
    if (n && src[n - 1] == '\n')
        n--;
    src[n] = 0;
    jinja__lex(&lx, src, n);
    t->root = jinja__parse(&p);
    t->arena.oom = NULL;
    return t;
}

void jinja_free(jinja_template *t)
{
    if (!t)
        return;
    arena_free(&t->arena);
    free(t);
}
