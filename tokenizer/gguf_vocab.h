/* gguf_vocab.h: internal to gguf_vocab.c and gguf_pre.c (the GGUF
 * tokenizer; hf.h declares its entry point). */
#ifndef TESSERA_GGUF_VOCAB_H
#define TESSERA_GGUF_VOCAB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What a byte-level vocabulary's family changes besides its splits. */
struct gguf_family {
    bool ignore_merges;    /* a word that is a token stays whole (Llama 3) */
    bool add_bos;          /* llama.cpp's default when add_bos_token is absent */
    bool added_normalized; /* plain added tokens match the normalized text */
};

/* Sets root's "pre_tokenizer" (and "normalizer", when the family has one)
 * for tokenizer.ggml.pre = pre[0..len). Returns 0, or -1 for a name not
 * supported. */
int gguf_pre_family(const char *pre, size_t len, json_t *root, struct gguf_family *out);

#endif
