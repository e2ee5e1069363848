/* hf.h: the tokenizer.json pipeline, as Hugging Face's `tokenizers` runs it.
 * Internal to tokenizer/; tokenizer.c is the facade.
 *
 * encode: text -> split on added tokens (not normalized) -> normalize each
 * other piece -> split on added tokens (normalized) -> pre-tokenize ->
 * BPE model -> post-processor (BOS/EOS when special tokens are wanted).
 * decode: ids -> token strings (special ones skipped) -> decoder -> bytes.
 *
 * Every stage works on a `pieces` list: spans of one byte buffer, each either
 * text still to tokenize or a token id already decided. */
#ifndef TESSERA_HF_H
#define TESSERA_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/strbuf.h"

struct pcre2_real_code_8;

/* ---- small containers ---- */

struct ids {
    int32_t *v;
    int n, cap;
};
void ids_push(struct ids *a, int32_t id);

#define PIECE_FIRST 1 /* starts at offset 0 of the original text */

struct piece {
    size_t off, len;
    int32_t id; /* >= 0: already a token */
    int flags;
};

struct pieces {
    struct strbuf text;
    struct piece *v;
    int n, cap;
};
void pieces_add(struct pieces *p, const char *s, size_t len, int32_t id, int flags);
void pieces_reset(struct pieces *p);
void pieces_free(struct pieces *p);
static inline const char *piece_text(const struct pieces *p, int i) { return p->text.s + p->v[i].off; }

/* string -> id, open addressing over XXH3 */
struct strmap {
    struct strmap_slot {
        union { char b[8]; uint64_t off; } k; /* the key (len <= 8) or its offset in keys */
        uint32_t len;
        int32_t id;
    } *slots;
    size_t mask, n;
    struct strbuf keys;
};
void strmap_put(struct strmap *m, const char *s, size_t len, int32_t id);
int32_t strmap_get(const struct strmap *m, const char *s, size_t len); /* -1 if absent */
void strmap_reserve(struct strmap *m, size_t n); /* room for n keys */
const char *strmap_key(const struct strmap *m, const struct strmap_slot *e); /* not NUL-terminated */
void strmap_free(struct strmap *m);

/* ---- regular expressions (PCRE2, UTF + Unicode properties) ---- */

struct regex {
    struct pcre2_real_code_8 *code;
};
/* Returns 0, or -1 with *why set. */
int regex_compile(struct regex *r, const char *pattern, size_t len, char *why, size_t why_cap);
void regex_free(struct regex *r);

/* A split of a text into spans, each a match of the pattern or not. */
struct span {
    size_t start, end;
    bool match;
};
struct spans {
    struct span *v;
    int n, cap;
};
void spans_add(struct spans *s, size_t start, size_t end, bool match);
/* All matches of r in s[0..n) with the gaps between them, as tokenizers'
 * Pattern::find_matches. Returns 0, or -1 when the matcher fails. */
int regex_spans(const struct regex *r, const char *s, size_t n, struct spans *out);

/* ---- Unicode helpers (hf_unicode.c) ---- */

/* Decodes one character of valid UTF-8 at s (n > 0); *len gets its bytes. */
int32_t utf8_next(const char *s, size_t n, int *len);
int utf8_put(int32_t c, char *out); /* bytes written (1-4) */
bool uni_is_whitespace(int32_t c); /* Rust's char::is_whitespace */
bool uni_is_alnum(int32_t c);      /* char::is_alphanumeric */
bool uni_is_numeric(int32_t c);    /* char::is_numeric */
bool uni_is_punct(int32_t c);      /* ASCII punctuation or category P* */

/* ---- normalizers (hf_normalize.c) ---- */

enum norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_PREPEND, NORM_REPLACE, NORM_STRIP,
                 NORM_LOWERCASE, NORM_SEQUENCE };

struct normalizer {
    enum norm_kind kind;
    char *text;        /* Prepend: what; Replace: content */
    char *literal;     /* Replace: a String pattern ... */
    struct regex re;   /* ... or a Regex one */
    bool left, right;  /* Strip */
    struct normalizer *kids;
    int n_kids;
};
/* s[0..n) normalized into out (appended). Returns 0 or -1. */
int normalize(const struct normalizer *z, const char *s, size_t n, struct strbuf *out);
void normalizer_free(struct normalizer *z);

/* ---- pre-tokenizers (hf_pretok.c) ---- */

enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum pretok_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_DIGITS, PRE_METASPACE, PRE_PUNCTUATION, PRE_WHITESPACE,
                   PRE_WHITESPACE_SPLIT, PRE_SEQUENCE };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct pretokenizer {
    enum pretok_kind kind;
    enum split_behavior behavior; /* Split, Punctuation */
    bool invert;                  /* Split */
    char *literal;                /* Split with a String pattern ... */
    struct regex re;              /* ... or a Regex one; ByteLevel's and Whitespace's own */
    bool flag;                    /* ByteLevel add_prefix_space, Digits individual_digits, Metaspace split */
    bool use_regex;               /* ByteLevel */
    char replacement[8];          /* Metaspace, UTF-8 */
    enum prepend_scheme prepend;  /* Metaspace */
    struct pretokenizer *kids;
    int n_kids;
};
/* Splits every text piece of in into out (ids pass through). 0 or -1. */
int pretokenize(const struct pretokenizer *p, const struct pieces *in, struct pieces *out);
void pretokenizer_free(struct pretokenizer *p);
/* The byte-level alphabet: byte b is shown as bytelevel_char[b] (UTF-8). */
extern char bytelevel_char[256][3];
void bytelevel_init(void);     /* builds the tables, once */
int bytelevel_byte(int32_t c); /* the byte shown as c, or -1 */

/* ---- the BPE model (hf_bpe.c) ---- */

struct pairmap {
    struct pair_slot { uint64_t key, val; } *slots;
    size_t mask, n;
};

struct bpe {
    struct strmap vocab;
    struct pairmap merges; /* a << 32 | b -> rank << 32 | merged id */
    int32_t unk;           /* -1: none */
    bool byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix */
    int32_t byte_ids[256]; /* <0xXX>, -1 when absent */
};
/* Room for about so many tokens and merges (saves rehashing). */
void bpe_reserve(struct bpe *m, size_t n_vocab, size_t n_merges);
/* Adds a merge; -1 when a part or the result is not in the vocabulary. */
int bpe_add_merge(struct bpe *m, const char *a, size_t na, const char *b, size_t nb, uint32_t rank);
void bpe_finish(struct bpe *m);
void bpe_encode(const struct bpe *m, const char *s, size_t n, struct ids *out);
void bpe_free(struct bpe *m);

/* model.vocab and model.merges of the tokenizer.json text[0..n) read into m
 * (and model.continuing_subword_prefix, which the merges need); *rest gets
 * the text without them, for a JSON parser. Returns 0, or -1 with *why. */
int hf_json_model(const char *text, size_t n, struct bpe *m, struct strbuf *rest, char *why, size_t why_cap);

/* ---- added tokens (hf_added.c) ---- */

struct added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
};

/* A byte trie of the tokens' texts, for leftmost-longest matching. */
struct trie {
    struct trie_node { int32_t child, sibling, token; uint8_t byte; } *v;
    int n, cap;
};

struct added {
    struct added_token *tok;
    int n;
    struct trie raw, norm; /* contents as written / normalized */
    char **norm_text;      /* normalized contents (NULL for raw ones) */
};
int added_build(struct added *a, const struct normalizer *z);
/* Splits text pieces of in on the added tokens of trie t into out. */
void added_split(const struct added *a, bool normalized, const struct pieces *in, struct pieces *out);
void added_free(struct added *a);

/* ---- decoders (hf_decode.c) ---- */

enum dec_kind { DEC_BYTELEVEL, DEC_METASPACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE, DEC_SEQUENCE };

struct decoder {
    enum dec_kind kind;
    char replacement[8];           /* Metaspace */
    enum prepend_scheme prepend;   /* Metaspace */
    char *content, *literal;       /* Strip (content), Replace */
    struct regex re;               /* Replace with a Regex */
    int start, stop;               /* Strip */
    struct decoder *kids;
    int n_kids;
};
/* Token strings (pieces) -> text appended to out; NULL decoder joins them
 * with spaces, as tokenizers does. */
int decode_tokens(const struct decoder *d, struct pieces *toks, struct strbuf *out);
void decoder_free(struct decoder *d);

/* ---- the whole pipeline (hf.c, hf_load.c) ---- */

struct hf {
    struct normalizer *norm;
    struct pretokenizer *pre;
    struct bpe bpe;
    struct added added;
    struct decoder *dec;
    int32_t *post_pre, *post_post; /* ids the post-processor puts before / after */
    int n_post_pre, n_post_post;
    const char **id_piece;         /* id -> token text, NULL in gaps */
    bool *id_special;
    int n_ids;
    char *arena;                   /* the texts id_piece points to */
    struct strmap added_ids;       /* added token text -> id */
};

/* Loads path (a tokenizer.json). Returns NULL with *err = one line naming
 * the file and the problem (an unsupported component: its name). */
struct hf *hf_load(const char *path, char *err, size_t err_cap);
/* The same from text[0..len) (path only names it in messages). */
struct hf *hf_load_text(const char *text, size_t len, const char *path, char *err, size_t err_cap);
/* The same with h->bpe's vocabulary and merges filled in already (by
 * hf_json_model or gguf_vocab.c) and the rest of a tokenizer.json in
 * rest[0..len) (NULL: "{}"). Takes h: frees it on failure. */
struct hf *hf_load_rest(struct hf *h, const char *rest, size_t len, const char *path, char *err, size_t err_cap);
void hf_free(struct hf *h);
/* text must be valid UTF-8. Returns 0, or -1 when a matcher fails. */
int hf_encode(const struct hf *h, const char *text, size_t len, bool add_special, struct ids *out);
/* Skips special tokens and ids outside the vocabulary. */
void hf_decode(const struct hf *h, const int32_t *ids, int n, struct strbuf *out);
int32_t hf_token_id(const struct hf *h, const char *piece, size_t len);
/* The bytes id adds in the middle of a decode (tokenizer.h's
 * tok_token_bytes) into b[0], b[1] being scratch (both kept between calls
 * to save allocations; b[0].s may stay NULL when it is empty). Returns 0, or
 * -1 for an id that hf_decode skips. */
int hf_token_bytes(const struct hf *h, int32_t id, struct strbuf b[2]);

/* ---- GGUF vocabularies (gguf_vocab.c) ---- */

/* What a GGUF file's tokenizer.ggml.* and tokenizer.chat_template* keys
 * describe: the pipeline and what tokenizer_config.json would say. */
struct gguf_vocab {
    struct hf *hf;
    int bos, eos, unk;                   /* -1: none */
    bool add_bos;
    char *chat_template, *tool_template; /* NULL when none */
};
/* Loads path (a .gguf). Returns 0, or a negative ERR_* with *err = one
 * line naming the file and the problem (an unsupported tokenizer.ggml.model
 * or tokenizer.ggml.pre: its name). */
int gguf_vocab_load(struct gguf_vocab *v, const char *path, char *err, size_t err_cap);
/* The same from an open file (path names it in messages); the fuzz target's way in. */
typedef struct gguf gguf;
int gguf_vocab_from(struct gguf_vocab *v, const gguf *g, const char *path, char *err, size_t err_cap);
void gguf_vocab_free(struct gguf_vocab *v);

#endif
