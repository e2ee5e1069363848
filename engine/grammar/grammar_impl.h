/* grammar_impl.h: the compiled automaton, its builder, and what the stages
 * (schema, regex, match, mask) share. Not for use outside engine/grammar/. */
#ifndef TESSERA_GRAMMAR_IMPL_H
#define TESSERA_GRAMMAR_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "grammar.h"

#define GB_MAX_NODES 200000
#define GB_MAX_EDGES 1000000
#define GB_MAX_RULES 4000
#define GS_MAX_NESTING 64

/* Counter operations of an edge, on the frame's counter c. */
enum { COP_NONE, COP_LT /* c < arg */, COP_INC_LT /* c < arg, then c++ */, COP_GE /* c >= arg */ };
enum { EDGE_BYTE, EDGE_EPS, EDGE_CALL };
/* A node whose bytes are a bounded integer (the frame's counter holds the
 * digits so far): see grammar_match.c. */
enum { NODE_PLAIN, NODE_INT };

struct gedge {
    uint8_t kind, cop, lo, hi;
    int32_t from, to;  /* to: the next node (after the call returns, for a call) */
    int32_t callee;    /* EDGE_CALL: the rule */
    int32_t dep;       /* -1, or a node that must be productive for the edge to be (a counter guard's) */
    int64_t arg;
};

struct gnode {
    uint8_t kind;
    bool is_end;       /* reaching it returns from the rule */
    bool productive;
    int32_t bytes0, bytes1; /* byte edges [bytes0, bytes1) of g->edges (after finalize) */
    int32_t eps0, eps1;     /* epsilon and call edges */
    int32_t int_lo_idx;     /* NODE_INT: index into g->ints */
};

struct gint {
    bool has_lo, has_hi;
    int64_t lo, hi;
};

struct grule {
    int32_t start;
};

struct mask_cache;

struct grammar {
    struct gnode *nodes;
    struct gedge *edges;
    struct grule *rules;
    struct gint *ints;
    int n_nodes, n_edges, n_rules, n_ints;
    int cap_nodes, cap_edges, cap_rules, cap_ints;
    int root;              /* rule */
    int ws_rule;           /* -1: compact */
    int max_ws;
    int any_rule;          /* any JSON value, built on first use; -1 */
    int str_rule;          /* any JSON string, likewise */
    char *err;             /* while compiling */
    size_t err_cap;
    bool failed;
    size_t cache_bytes;
    struct mask_cache *cache;
    struct ninfo **ninfo;  /* per node, built on first use (grammar_mask.c) */
    size_t ninfo_bytes;
};

/* --- builder (grammar_graph.c) --- */
bool gb_fail(grammar *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gb_node(grammar *g);
int gb_rule(grammar *g);            /* a rule with a fresh start node */
void gb_end(grammar *g, int node);  /* marks node as its rule's end */
void gb_byte(grammar *g, int from, int lo, int hi, int to, int cop, int64_t arg);
void gb_eps(grammar *g, int from, int to, int cop, int64_t arg);
void gb_call(grammar *g, int from, int rule, int to, int cop, int64_t arg);
/* The last edge added is productive only where node is. */
void gb_dep(grammar *g, int node);
/* A chain of byte edges spelling s[0..n) from from; returns its last node. */
int gb_lit(grammar *g, int from, const void *s, size_t n);
/* Literal alternatives from one node, sharing prefixes: each added string
 * leads to its to. */
struct gb_trie;
struct gb_trie *gb_trie_new(grammar *g, int from);
void gb_trie_add(struct gb_trie *t, const void *s, size_t n, int to);
void gb_trie_free(struct gb_trie *t);
/* Optional whitespace (a call of the ws rule) after from; returns the node after. */
int gb_ws(grammar *g, int from);

/* --- regex (grammar_regex.c) --- */
/* Compiles a regex into the graph between from and a fresh node it returns
 * (-1 after gb_fail). json: inside a JSON string (code points as their JSON
 * string bytes: '"' and '\\' escaped, control characters never); search:
 * JSON Schema's pattern semantics (unanchored unless ^ / $). */
int gr_regex(grammar *g, const char *re, int from, bool json, bool search, const char *where);
#define CP_MAX 0x10FFFFu
struct gr_range {
    uint32_t lo, hi;
};
/* grammar_utf8.c: code points [lo, hi] (surrogates left out) as UTF-8 byte
 * paths from from to to; a set of ranges likewise, or (json) as the bytes
 * of a JSON string's inside: '"' and '\\' escaped, \b \f \n \r \t for
 * those controls, the other controls left out. */
void gr_cp_range(grammar *g, int from, int to, uint32_t lo, uint32_t hi);
void gr_emit_set(grammar *g, int from, int to, const struct gr_range *r, int n, bool json);

/* --- schema (grammar_schema.c) --- */
/* The rule of a JSON Schema text; -1 after gb_fail. */
int gs_compile(grammar *g, const char *text);
/* grammar_json.c: a JSON string of [min, max] code points (max < 0: no
 * bound; the unbounded one is shared); a regex spelled raw or as the
 * content of a JSON string between quotes; any JSON value, any object. */
#define GS_INTEGER_RE "-?(0|[1-9][0-9]*)"
#define GS_NUMBER_RE "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?"
int gs_string(grammar *g, int64_t min, int64_t max);
int gs_regex_rule(grammar *g, const char *re, bool json, const char *where);
/* Schema helpers: the JSON pointer to show ("/" for the root); fails with
 * "<what> '<key>' at <path>"; a non-negative integer keyword. */
const char *gs_where(const char *path);
bool gs_fail_at(grammar *g, const char *path, const char *what, const char *key);
bool gs_count_kw(grammar *g, json_t *s, const char *key, int64_t dflt, int64_t *out, const char *path);
/* The rules of a schema's integer (bounds) and string (lengths, pattern,
 * format) keywords; 0 after gb_fail. */
int gs_integer(grammar *g, json_t *s, const char *path);
int gs_string_schema(grammar *g, json_t *s, const char *path);
/* '"', a key of printable ASCII but '"' and '\\' that is none of props's
 * names, '"', after from; returns the node after. */
int gs_free_key(grammar *g, int from, json_t *props);
int gs_any_value(grammar *g);
int gs_any_object(grammar *g);
/* The rule of GRAMMAR_CHOICE: text is a JSON array of strings. */
int gs_choice(grammar *g, const char *text);

/* --- matcher (grammar_match.c) --- */

/* One frame of a stack, in the matcher's arena; parent < the frame's own
 * index. hash covers the whole stack below (node, counter, parent's hash),
 * so that equal stacks have equal hashes. */
struct gframe {
    int32_t node, parent, depth, pad;
    uint64_t counter, hash;
};

/* The set of stacks after some bytes: their top frames (at nodes that read
 * bytes), and whether the whole output may end here. */
struct gstate {
    int n;
    bool end;
    int32_t top[GRAMMAR_MAX_STACKS];
    uint64_t h[GRAMMAR_MAX_STACKS];
};

#define GM_SEEN 1024

struct grammar_matcher {
    const grammar *g;
    struct gframe *fr; /* arena: frames of cur, and scratch past them */
    int n_fr, cap_fr, live_fr;
    struct gstate cur;
    bool terminated;
    bool dropped;      /* a step dropped stacks at the bounds */
    int32_t *work;
    int n_work, cap_work;
    uint64_t seen_h[GM_SEEN];
    uint32_t seen_gen[GM_SEEN];
    uint32_t gen;
    int n_seen;
    /* the mask walk's states by trie depth, and the arena top of each */
    struct gstate *wst;
    int32_t *wtop;
    int cap_wst;
};

/* out = in after byte b; false when no stack survives and the output cannot end there. */
bool gm__step(struct grammar_matcher *m, const struct gstate *in, uint8_t b, struct gstate *out);
/* The state's cache key (order-free), salted with seed. */
uint64_t gm__key(const struct gstate *s, uint64_t seed);
void gm__terminate(struct grammar_matcher *m);
/* out = the closure of one new frame (node, counter) over parent. */
void gm__start(struct grammar_matcher *m, int32_t node, uint64_t counter, int32_t parent, int32_t depth,
               struct gstate *out);

/* --- vocabulary (grammar_vocab.c) --- */

/* Token bytes in one blob, and the byte trie in preorder: node i has its
 * byte, its depth (1 for a first byte), the index just past its subtree and
 * the first token ending there (tsame chains tokens with equal bytes). */
struct grammar_vocab {
    int n;
    uint64_t serial;
    size_t words;
    uint8_t *blob;
    size_t *off;
    uint32_t *len;
    uint8_t *is_eos;
    int32_t *eos;
    int n_eos;
    /* trie, preorder */
    int n_nodes, max_depth;
    uint8_t *tb;
    uint16_t *tdepth;
    int32_t *tend, *ttok, *tsame;
};

/* --- mask cache (grammar_mask.c) --- */
void mask_cache_free(struct mask_cache *c);
void ninfo_free_all(grammar *g);

#endif
