/* grammar.h: constrained decoding. A spec (JSON Schema, any JSON object, a
 * regex, or a list of choices) compiles to a grammar: a pushdown automaton
 * over bytes. A matcher follows one sequence's output through it and says
 * which vocabulary tokens may come next (a bitmask), so that the sampler can
 * drop the others before drawing.
 *
 * The automaton. Every JSON value, string, array... is a rule: a small graph
 * of nodes joined by byte-range edges, epsilon edges and call edges (which
 * push a frame for the called rule; the rule's end pops it). A frame is a
 * node plus one 64-bit counter (items in an array, code points in a string,
 * the integer read so far, copies of a repeated body), so that maxItems or
 * maxLength cost a counter, not an unrolled chain. The graph is
 * nondeterministic (anyOf, optional properties, regex alternatives): the
 * matcher keeps the set of stacks that the bytes so far allow, merged when
 * equal (hashed), at most GRAMMAR_MAX_STACKS of them and GRAMMAR_MAX_DEPTH
 * frames each. Stacks past those bounds are dropped, which can only remove
 * outputs, never admit a wrong one. Every edge that cannot lead to the end
 * of its rule is removed at compile time, so a live stack always has a
 * completion: a matcher never gets stuck (except past the bounds above).
 * Literal alternatives (enum, const, choice) share prefixes, so that they
 * cost one stack, not one each.
 *
 * Masks are computed stack by stack (a token is allowed when one stack
 * accepts it), from per-node tables of the tokens that stay inside a rule
 * (grammar_mask.c), which equals stepping all stacks together as
 * gm_accept_token does; where a step has to drop stacks at the bounds
 * (more than 64 live parses at once), gm_accept_bytes steps them one by one
 * too, so that a token is accepted exactly when the mask allows it.
 *
 * Output. JSON values come out with the members of an object in the order
 * the schema lists them (optional ones may be skipped), additional members
 * (where additionalProperties allows them; when it is absent, only objects
 * that list no properties have them) after those, with keys of
 * printable ASCII other than '"' and '\\' that are not listed property
 * names. Between JSON tokens (after '{', '[', ',', ':', a key and a value)
 * comes a run of at most spec.max_ws bytes of ' ', '\n', '\t' (0: compact
 * JSON); none before or after the whole value. Strings are valid UTF-8 with
 * JSON escapes (no raw control characters; no \u escapes of surrogates).
 *
 * Threads: a grammar, its mask cache and its matchers are used by one thread
 * (the engine's); nothing here locks. A vocabulary is read-only once built
 * and may be shared. */
#ifndef TESSERA_GRAMMAR_H
#define TESSERA_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAMMAR_MAX_STACKS 64   /* stacks a matcher keeps at once */
#define GRAMMAR_MAX_DEPTH 160   /* frames in a stack: about 50 levels of JSON nesting */

enum grammar_kind {
    GRAMMAR_JSON_SCHEMA, /* text: a JSON Schema (see grammar_schema.c for the keywords) */
    GRAMMAR_JSON_OBJECT, /* any JSON object (OpenAI's json_object mode); text unused */
    GRAMMAR_REGEX,       /* text: a regex the whole output matches (grammar_regex.c's subset) */
    GRAMMAR_CHOICE,      /* text: a JSON array of strings: the output is exactly one of them */
};

struct grammar_spec {
    enum grammar_kind kind;
    const char *text;
    /* Literal text around the body (NULL: none): prefix body suffix. */
    const char *prefix, *suffix;
    /* repeat: one or more copies of prefix+body+suffix joined by separator
     * (NULL: none), at most max_repeat of them (0: no limit). For forced
     * tool calls: "<tool_call>\n" {...} "\n</tool_call>", separator "\n". */
    bool repeat;
    const char *separator;
    int max_repeat;
    int max_ws;         /* bytes of whitespace between JSON tokens, 0..64 */
    size_t cache_bytes; /* bound of the mask cache; 0: GRAMMAR_CACHE_DEFAULT */
};
#define GRAMMAR_CACHE_DEFAULT ((size_t)64 << 20)

/* A spec of kind and text with the defaults: no prefix, suffix or repeat,
 * max_ws 16, the default cache. */
struct grammar_spec grammar_spec_default(enum grammar_kind kind, const char *text);

typedef struct grammar grammar;

/* Compiles spec. NULL on error with a one-line message in err (the server
 * answers 400 with it), e.g. "unsupported JSON Schema keyword 'not' at
 * /properties/x". Refuses schemas past its bounds (nesting 64 deep, 200,000
 * nodes, 4,000 rules) with an error too. */
grammar *grammar_compile(const struct grammar_spec *spec, char *err, size_t err_cap);
void grammar_free(grammar *g);
/* Nodes and edges of the compiled automaton (for logs and benchmarks). */
void grammar_stats(const grammar *g, int *nodes, int *edges, int *rules);
/* Masks cached now, their bytes, hits and misses since compile. */
void grammar_cache_stats(const grammar *g, size_t *entries, size_t *bytes, uint64_t *hits, uint64_t *misses);

/* A vocabulary: for each token id the exact bytes it adds to the output
 * (the tokenizer's business: byte-level BPE, SentencePiece '▁' -> ' ',
 * <0xNN> -> that byte). Tokens with no bytes (control tokens) are never
 * allowed, except the EOS ids, which are allowed exactly where the grammar
 * may end. The bytes are copied. */
struct grammar_vocab;
struct grammar_vocab *grammar_vocab_new(int n_tokens, const uint8_t *const *bytes, const uint32_t *lens,
                                        const int32_t *eos_ids, int n_eos);
void grammar_vocab_free(struct grammar_vocab *v);
int grammar_vocab_size(const struct grammar_vocab *v);
/* Words of a mask: (n_tokens + 31) / 32. */
size_t grammar_vocab_mask_words(const struct grammar_vocab *v);

/* A matcher: where one output stands in the grammar. It borrows g, which
 * must outlive it. */
struct grammar_matcher;
struct grammar_matcher *gm_new(const grammar *g);
void gm_free(struct grammar_matcher *m);
/* Back to the start (no output yet). */
void gm_reset(struct grammar_matcher *m);
/* A copy in the same state (for n > 1, or to try something). */
struct grammar_matcher *gm_clone(const struct grammar_matcher *m);

/* Feeds n output bytes: true when the grammar allows all of them, and the
 * matcher moved past them; false, and the state is unchanged, otherwise. */
bool gm_accept_bytes(struct grammar_matcher *m, const uint8_t *b, size_t n);
/* Feeds token id's bytes. An EOS id is accepted iff gm_can_end, and then
 * terminates the matcher (it accepts nothing more until gm_reset). A token
 * with no bytes that is not EOS is refused. */
bool gm_accept_token(struct grammar_matcher *m, const struct grammar_vocab *v, int32_t id);
/* The output so far is complete: EOS is allowed now. */
bool gm_can_end(const struct grammar_matcher *m);
/* Complete and no byte can follow: the engine forces EOS. */
bool gm_must_end(const struct grammar_matcher *m);
bool gm_terminated(const struct grammar_matcher *m);
/* bits[i / 32] bit i % 32 is set iff token i is allowed now (its bytes are
 * accepted; an EOS id iff gm_can_end); grammar_vocab_mask_words(v) words.
 * Cached on the grammar by state: a hit is a copy, a miss walks the
 * vocabulary's byte trie. All zero once terminated. */
void gm_fill_mask(struct grammar_matcher *m, const struct grammar_vocab *v, uint32_t *bits);

#endif
