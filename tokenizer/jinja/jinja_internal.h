/* jinja_internal.h: what the stages of the Jinja renderer share (not part of
 * the public API, jinja.h).
 *
 * jinja_lex.c: text -> tokens (whitespace control applied there);
 * jinja_parse.c (statements) and jinja_parse_expr.c (expressions): tokens ->
 * a tree of struct jnode in the template's arena; jinja_render.c runs the
 * statements (scopes, loops, macros, output), jinja_expr.c the expressions,
 * with jinja_filters.c, jinja_sort.c, jinja_tests.c (tests and globals) and
 * jinja_methods.c; values (jinja_value.c: Python semantics; jinja_print.c:
 * str, repr, json.dumps; jinja_str.c: str methods on UTF-8) live in the
 * render's arena, freed all at once when the render ends. Errors unwind with
 * longjmp to jinja_render (or jinja_compile); nothing but the arena holds
 * memory, so nothing leaks. */
#ifndef TESSERA_JINJA_INTERNAL_H
#define TESSERA_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "jinja.h"

/* ---- arena ---- */

struct arena {
    struct arena_chunk *head;
    size_t used, limit; /* bytes taken from malloc; limit 0: none */
    jmp_buf *oom;       /* where to go when the limit is reached (NULL: abort), */
    char *err;          /* after writing the message here */
    size_t err_cap;
};

void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a);

/* ---- values ---- */

enum jv_kind {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_TUPLE, JV_DICT,
    JV_NS, JV_MACRO, JV_FUNC, JV_METHOD, JV_LOOP,
};

/* Why a value is undefined, for the message its use raises (jinja2's). */
/* jv.sub of a JV_STR / JV_LIST: */
enum { SUB_MARKUP = 1, /* a string from |safe or |escape: + escapes the other side (markupsafe.Markup) */
       SUB_GEN = 1,    /* a list that Python has as a generator (map, select..., items): truthy, no len() */
};

enum und_tag {
    UND_NAME,  /* 'x' is undefined */
    UND_ATTR,  /* 'dict object' has no attribute 'x' (sub: the object's kind) */
    UND_ELEM,  /* dict object has no element 0 */
    UND_HINT,  /* the name is the whole message */
};

typedef struct jv {
    uint8_t kind, tag, sub; /* tag: undefined's und_tag, builtin id of a JV_FUNC */
    size_t n;               /* JV_STR, undefined's name: bytes */
    union {
        bool b;
        int64_t i;
        double f;
        const char *s;
        struct jlist *l;
        struct jdict *d;
        struct jmacro *m;
        struct jmethod *bm;
        struct jloop *lp;
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
};

struct jdict { /* insertion order, linear lookup (chat data is small) */
    size_t n, cap;
    jv *k, *v;
};

struct scope;

struct jmacro {
    const char *name;
    const struct jnode *def; /* S_MACRO, or the S_CALLBLOCK of a caller() */
    struct scope *closure;   /* where it was defined */
};

struct jmethod {
    jv self;
    const char *name;
};

/* ---- tree ---- */

enum jnode_kind {
    /* expressions */
    N_CONST, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER,
    N_TEST, N_BINOP, N_UNARY, N_COND,
    /* statements */
    S_BODY, S_TEXT, S_OUTPUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_CALLBLOCK,
    S_FILTERBLOCK, S_BREAK, S_CONTINUE,
};

enum jop {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT, OP_EQ, OP_NE,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN, OP_AND, OP_OR, OP_NOT, OP_NEG, OP_POS,
};

struct jnode {
    uint8_t kind, op;
    bool flag;        /* test: negated; for: tuple target; call block: has params */
    int line;
    const char *name; /* NAME, ATTR, FILTER, TEST, MACRO, SET target; TEXT: the text */
    size_t nlen;
    jv val;           /* CONST */
    struct jnode *a, *b, *c, *d;
    struct jnode **kids;   /* items, args, body */
    int nkids;
    struct jnode **kids2;  /* dict values, kwarg values, else body, macro defaults */
    int nkids2;
    const char **names;    /* kwarg names, macro params, for targets */
    int nnames;
};

struct jinja_template {
    struct arena arena;
    struct jnode *root; /* S_BODY */
};

/* ---- lexer ---- */

enum jtok_kind {
    T_DATA, T_BLOCK_BEGIN, T_BLOCK_END, T_VAR_BEGIN, T_VAR_END, T_NAME, T_STRING, T_INT,
    T_FLOAT, T_OP, T_EOF,
};

struct jtok {
    uint8_t kind;
    int line;
    const char *s; /* DATA, NAME, OP: into the source; STRING: decoded, in the arena */
    size_t n;
    int64_t i;
    double f;
};

struct jlexer {
    struct arena *arena;
    jmp_buf *fail;
    char *err;
    size_t err_cap;
    struct jtok *toks;
    size_t ntoks, cap;
};

/* Source (newlines already normalised) -> lx->toks, ending with T_EOF. */
void jinja__lex(struct jlexer *lx, const char *src, size_t len);
void jinja__syntax(struct jlexer *lx, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

/* ---- parser ---- */

struct jparser {
    struct jlexer *lx;
    size_t pos;
    int depth;
};

struct jnode *jinja__parse(struct jparser *p);
struct jnode *jinja__expr(struct jparser *p);          /* conditional expression */
struct jnode *jinja__expr_tuple(struct jparser *p);    /* a, b  -> tuple */
struct jnode *jinja__node(struct jparser *p, int kind, int line);
const char *jinja__tok_desc(const struct jtok *t);
const struct jtok *jinja__peek(struct jparser *p);
const struct jtok *jinja__next(struct jparser *p);
bool jinja__is_op(const struct jtok *t, const char *op);
bool jinja__is_name(const struct jtok *t, const char *name);
void jinja__expect_op(struct jparser *p, const char *op);
const char *jinja__expect_name(struct jparser *p);
void jinja__push(struct jparser *p, struct jnode ***v, int *n, struct jnode *x);
void jinja__call_args(struct jparser *p, struct jnode *call);

/* ---- rendering ---- */

struct jbuf { /* output in the render arena */
    char *s;
    size_t len, cap;
};

struct scope;

struct jrender {
    struct arena arena;
    jmp_buf fail;
    char *err;
    size_t err_cap;
    struct jbuf *out;
    size_t written, out_limit;
    long steps, step_limit;
    int depth, depth_limit;
    int nest; /* C recursion: expressions, statements, printing */
    time_t now;
    struct scope *root, *scope;
    int brk; /* 1: break, 2: continue pending */
};

#define JINJA_MAX_OUTPUT ((size_t)64 << 20)   /* bytes written, captured text included */
#define JINJA_MAX_ARENA ((size_t)512 << 20)
#define JINJA_MAX_STEPS 20000000L             /* loop iterations, calls, evaluations, scans (per 256 bytes) */
#define JINJA_MAX_DEPTH 200                   /* nested macro calls */
#define JINJA_MAX_NEST 200                    /* parser nesting */
#define JINJA_MAX_RECURSION 4000              /* nested evaluations in C (the stack) */

void jinja__fail(struct jrender *r, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
void jinja__step(struct jrender *r);
void jinja__charge(struct jrender *r, size_t bytes); /* steps for scanning long strings */
void jinja__enter_fail(struct jrender *r) __attribute__((noreturn));

/* One more level of C recursion (r->nest, undone by the caller) and one step. */
static inline void jinja__enter(struct jrender *r)
{
    if (++r->nest > JINJA_MAX_RECURSION || ++r->steps > r->step_limit)
        jinja__enter_fail(r);
}

/* Room for n more bytes and a NUL, failing when the render has written too
 * much (jbuf_put's slow path). */
void jbuf_grow(struct jrender *r, struct jbuf *b, size_t n);

/* Appends (keeping b NUL-terminated) and counts the bytes as written. */
static inline void jbuf_put(struct jrender *r, struct jbuf *b, const char *s, size_t n)
{
    if (!n)
        return;
    if (b->cap - b->len <= n || n > r->out_limit - r->written)
        jbuf_grow(r, b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    r->written += n;
}

static inline void jbuf_putc(struct jrender *r, struct jbuf *b, char c)
{
    jbuf_put(r, b, &c, 1);
}
void jbuf_printf(struct jrender *r, struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* values (jinja_value.c) */
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *s, size_t n);        /* borrowed: s must outlive the render */
jv jv_strdup(struct jrender *r, const char *s, size_t n);
jv jv_cstr(const char *s);
jv jv_buf(struct jbuf *b);
jv jv_undef(uint8_t tag, uint8_t sub, const char *name, size_t n);
jv jv_list(struct jrender *r, size_t cap);
jv jv_dict(struct jrender *r, size_t cap);
void jv_push(struct jrender *r, jv list, jv x);
void jv_dict_set(struct jrender *r, jv d, jv k, jv v);
jv *jv_dict_get(jv d, const char *key, size_t n);
jv *jv_dict_find(jv d, jv key);
jv jv_from_json(struct jrender *r, const json_t *j);
bool jv_is_str(jv v);
bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
int jv_compare(struct jrender *r, jv a, jv b, const char *op); /* <0, 0, >0; TypeError when unordered */
const char *jv_type_name(jv v);               /* Python's: str, int, dict, NoneType... */
void jv_fail_undef(struct jrender *r, jv u) __attribute__((noreturn));
void jv_write(struct jrender *r, struct jbuf *b, jv v); /* str(v) */
void jv_repr(struct jrender *r, struct jbuf *b, jv v);  /* repr(v) */
jv jv_to_str(struct jrender *r, jv v);
void jv_fmt_float(double f, char *buf, size_t cap);     /* Python's repr(float) */
size_t jv_len(struct jrender *r, jv v);                 /* len(); TypeError when none */
jv jv_iter_list(struct jrender *r, jv v);               /* list(v) as JV_LIST/TUPLE */

/* tojson (jinja_json.c) */
struct json_opts {
    int indent;                    /* < 0: None (one line) */
    jv indent_str;                 /* a string indent (JV_STR), else indent spaces */
    bool sort_keys, ascii;         /* ascii: ensure_ascii (\uXXXX escapes) */
    jv item_sep, key_sep;          /* separators */
};
void jv_dump_json(struct jrender *r, struct jbuf *b, jv v, const struct json_opts *o, int level);

/* expressions (jinja_expr.c) */
jv jinja__eval(struct jrender *r, const struct jnode *n);
jv jinja__apply_filter(struct jrender *r, const struct jnode *f, jv x); /* f: N_FILTER chain; x for the innermost operand when it has none */
jv jinja__getattr(struct jrender *r, jv obj, const char *name, size_t n);
jv jinja__getitem(struct jrender *r, jv obj, jv key);
jv jinja__binop(struct jrender *r, int op, jv a, jv b);
jv jinja__call(struct jrender *r, jv f, jv *args, int nargs, const char **kwn, jv *kwv, int nkw);
jv jinja__lookup(struct jrender *r, const char *name, size_t n);

/* statements (jinja_render.c) */
void jinja__exec_body(struct jrender *r, struct jnode **body, int n);
jv jinja__call_macro(struct jrender *r, struct jmacro *m, jv *args, int nargs, const char **kwn, jv *kwv,
                     int nkw);

/* filters, tests, methods, globals */
jv jinja__filter(struct jrender *r, const char *name, jv x, jv *args, int nargs, const char **kwn, jv *kwv,
                 int nkw);
bool jinja__test(struct jrender *r, const char *name, jv x, jv *args, int nargs);
jv jinja__method(struct jrender *r, jv self, const char *name, jv *args, int nargs, const char **kwn, jv *kwv,
                 int nkw);
bool jinja__has_method(jv self, const char *name, size_t n, bool *unsafe);
jv jinja__escape(struct jrender *r, jv x); /* markupsafe.escape: a SUB_MARKUP string */
jv jinja__builtin(struct jrender *r, int id, jv *args, int nargs, const char **kwn, jv *kwv, int nkw);
int jinja__builtin_id(const char *name, size_t n); /* -1: none */
jv jinja__loop_attr(struct jrender *r, jv loop, const char *name, size_t n);

/* ordering filters (jinja_sort.c) */
jv jinja__sort(struct jrender *r, jv x, bool reverse, bool case_sensitive, const jv *attr);
jv jinja__dictsort(struct jrender *r, jv x, bool case_sensitive, bool by_value, bool reverse);
jv jinja__unique(struct jrender *r, jv x, bool case_sensitive, const jv *attr);
jv jinja__minmax(struct jrender *r, jv x, bool case_sensitive, const jv *attr, bool max);

/* strings (jinja_str.c) */
size_t u8_count(const char *s, size_t n);                 /* code points */
size_t u8_decode(const char *s, size_t n, uint32_t *cp); /* bytes taken (1 on bad input) */
size_t u8_encode(uint32_t cp, char *out);
bool py_isspace(uint32_t cp);
jv str_strip(struct jrender *r, jv s, const char *chars, size_t nchars, int which); /* 1 left 2 right 3 both */
jv str_case(struct jrender *r, jv s, int mode); /* 0 lower 1 upper 2 title 3 capitalize */
jv str_replace(struct jrender *r, jv s, jv old, jv new_, int64_t count);
jv str_split(struct jrender *r, jv s, const jv *sep, int64_t maxsplit);
/* End of the line starting at s[i] (str.splitlines' breaks); *next: the next line's start, n + 1 after the last. */
size_t str_line_end(const char *s, size_t n, size_t i, size_t *next);
void jinja__slice_indices(struct jrender *r, int64_t len, const int64_t *start, const int64_t *stop,
                          const int64_t *step, int64_t *a, int64_t *e, int64_t *st);
jv str_slice_cp(struct jrender *r, jv s, const int64_t *start, const int64_t *stop, const int64_t *step);
jv str_format(struct jrender *r, jv fmt, jv *args, int nargs, const char **kwn, jv *kwv, int nkw);
jv str_percent(struct jrender *r, jv fmt, jv args);

#endif
