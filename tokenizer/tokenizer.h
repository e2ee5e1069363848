/* tokenizer.h: the tokenizer C API and the streaming detokenizer.
 *
 * tok_load() reads dir/tokenizer.json (Hugging Face tokenizers' format, as
 * transformers prefers it) or else dir/tokenizer.model (SentencePiece), and,
 * when present, dir/tokenizer_config.json (bos/eos/unk tokens; for
 * SentencePiece and Llama tokenizer classes add_bos_token/add_eos_token).
 * Without either file it takes the folder's one *.gguf file; a path to a
 * GGUF file works too. A GGUF tokenizer is built from the file's
 * tokenizer.ggml.* metadata (the "llama" SentencePiece and "gpt2"
 * byte-level vocabularies; the pre-tokenizer of tokenizer.ggml.pre), with
 * its add_bos_token/add_eos_token, special ids and tokenizer.chat_template
 * (and .tool_use); it gives llama.cpp's ids. */
#ifndef TESSERA_TOKENIZER_H
#define TESSERA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/utf8.h"

typedef struct tokenizer tokenizer;

/* Which implementation tok_load_as() uses: TOK_AUTO picks tokenizer.json
 * when the folder has one (as transformers does), else tokenizer.model,
 * else the .gguf file (a path that is not a folder: GGUF). */
enum tok_impl { TOK_AUTO, TOK_HF_JSON, TOK_SENTENCEPIECE, TOK_GGUF };

/* Returns 0 or a negative error code; *err gets one line naming the file and
 * the problem. tok_load() is tok_load_as(..., TOK_AUTO, ...). */
int tok_load(tokenizer **out, const char *dir, char *err, size_t err_cap);
int tok_load_as(tokenizer **out, const char *dir, enum tok_impl impl, char *err, size_t err_cap);
void tok_free(tokenizer *t);

/* Token ids of text into ids[cap], with the special tokens when add_bos (BOS
 * for SentencePiece; tokenizer.json: its post-processor's). Returns the
 * count, -(count needed) when cap is too small, or INT_MIN when the
 * tokenizer fails (a pattern's matcher gave up). */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t *ids, int cap);
/* The same, into a buffer of the right size: *ids is malloc'd (NULL on
 * failure). Returns the count, or -1 when the tokenizer fails. */
int tok_encode_all(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids);
/* Text of ids into out[cap] (not NUL-terminated); control tokens give no
 * text, ids outside the vocabulary give none either. Returns the byte
 * count, or -(count needed) when cap is too small. */
long tok_decode(const tokenizer *t, const int32_t *ids, int n, char *out, size_t cap);

int tok_vocab_size(const tokenizer *t);
/* Borrowed, valid while t lives; NULL outside the vocabulary. */
const char *tok_id_to_piece(const tokenizer *t, int id);
/* -1 when the piece is not in the vocabulary. */
int tok_piece_to_id(const tokenizer *t, const char *piece);
int tok_bos_id(const tokenizer *t);
int tok_eos_id(const tokenizer *t);
int tok_unk_id(const tokenizer *t);
/* tokenizer_config.json's add_bos_token (default true). */
bool tok_add_bos(const tokenizer *t);
/* The model's Jinja chat template, as transformers finds it:
 * chat_template.jinja, else tokenizer_config.json's "chat_template" (a
 * string, or the "default" of a list of named ones; with tools, its
 * "tool_use" one when there is one). NULL when the folder has none. */
const char *tok_chat_template(const tokenizer *t, bool tools);

/* The bytes token id adds to a text when it follows other output tokens,
 * for constrained decoding:
 *   SentencePiece: the piece with each U+2581 as a space, a byte piece
 *     <0xNN> as that one byte, the unknown piece as Decode shows it (by
 *     default " \u2047 ");
 *   tokenizer.json: its decoder run on the token alone, as on a token in
 *     the middle of a decode: ByteLevel's byte map, ByteFallback, Replace,
 *     Metaspace's replacement as a space (whatever its prepend_scheme), a
 *     Strip before the tokens are joined (by Fuse or ByteLevel); left out are
 *     the steps that touch only the ends of the whole text, such as Llama
 *     2's Strip of one leading space after Fuse. Without a decoder tokens are
 *     joined by spaces: " " + the token.
 * These are bytes, not text: byte tokens give a part of a character, and
 * byte-level tokens can hold parts of characters.
 *
 * So for the ids of a text, tok_decode(ids) is the concatenation of their
 * bytes, except at the start: SentencePiece (add_dummy_prefix), Metaspace
 * (prepend_scheme "first" or "always") and a Strip of the whole text's start
 * drop the first token's leading space there. The streaming detokenizer,
 * given a prompt's ids as context, keeps it: these bytes are what a
 * generated token adds to the output.
 *
 * Writes min(count, cap) bytes to out (not NUL-terminated) and returns the
 * count, as snprintf does; -1 for an id that never adds text: a control or
 * special token (those tok_decode skips) or an id outside the vocabulary.
 * Other tokens give at least one byte in every vocabulary we test; 0 would
 * take a decoder that empties a token, as a Strip of each token's space
 * does to "\u2581". */
long tok_token_bytes(const tokenizer *t, int32_t id, char *out, size_t cap);

/* Every id's bytes at once, in one pass over the vocabulary (Llama 3's 128K
 * ids: about 15 ms). Id i's bytes are data[off[i] .. off[i] + len[i]); len[i]
 * is -1 where tok_token_bytes gives -1 (off[i] is then where the next id's
 * bytes start). */
struct tok_vocab_bytes {
    int n;          /* tok_vocab_size() */
    int32_t *len;   /* [n] */
    uint32_t *off;  /* [n] */
    char *data;     /* [size] every id's bytes, back to back */
    size_t size;
};
void tok_vocab_bytes_init(struct tok_vocab_bytes *vb, const tokenizer *t);
void tok_vocab_bytes_deinit(struct tok_vocab_bytes *vb);

/* Streaming detokenizer: turns a growing list of ids into text pieces that
 * never end inside a UTF-8 character and keep the leading space SentencePiece
 * drops from the first piece of a decode. It decodes a short window of ids
 * (the vLLM/TGI offsets method) so each step costs O(window). */
struct detok {
    const tokenizer *tok;
    int32_t *ids;
    int n, cap;
    int prefix_off, read_off;
    char *a, *b;      /* decode buffers */
    size_t a_cap, b_cap;
    char tail[4];     /* bytes of a character cut by a forced piece */
    int tail_len;
};

/* context: ids already shown (the prompt), used only to get spacing right. */
void detok_init(struct detok *d, const tokenizer *t, const int32_t *context, int n_context);
void detok_deinit(struct detok *d);
/* Adds id; *text gets the new complete text (borrowed until the next call)
 * and the return value is its length (0 when held back). */
long detok_push(struct detok *d, int32_t id, const char **text);
/* At the end of a stream: whatever is still held back, even if incomplete. */
long detok_flush(struct detok *d, const char **text);

/* Length of the longest prefix of s[0..n) that ends on a UTF-8 character
 * boundary (drops a trailing incomplete sequence only). */
size_t utf8_complete_prefix(const char *s, size_t n);

#endif
