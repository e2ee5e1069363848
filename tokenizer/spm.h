/* spm.h: the C face of SentencePiece (spm.cc is the tree's only C++).
 * Internal to tokenizer/; everything else uses tokenizer.h. */
#ifndef TESSERA_SPM_H
#define TESSERA_SPM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm spm;

/* NULL on failure, with the reason in err (cap bytes). */
spm *spm_load(const char *path, char *err, size_t cap);
void spm_free(spm *s);
/* Ids of text into ids[cap]; returns the count, or -count when cap is short. */
int spm_encode(const spm *s, const char *text, size_t len, int32_t *ids, int cap);
/* Text of ids into out[cap] (not NUL-terminated); returns the byte count,
 * or -count when cap is short. */
long spm_decode(const spm *s, const int32_t *ids, int n, char *out, size_t cap);
int spm_vocab_size(const spm *s);
/* Borrowed; valid while s lives. */
const char *spm_id_to_piece(const spm *s, int id);
int spm_piece_to_id(const spm *s, const char *piece); /* unk id when absent */
int spm_bos_id(const spm *s);
int spm_eos_id(const spm *s);
int spm_unk_id(const spm *s);
int spm_is_control(const spm *s, int id);
int spm_is_byte(const spm *s, int id);
/* The bytes id adds after other pieces (tokenizer.h's tok_token_bytes):
 * min(count, cap) of them into out; returns the count, or -1 for a control
 * piece or an id outside the vocabulary. */
long spm_token_bytes(const spm *s, int id, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
