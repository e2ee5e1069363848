/* single.h: runs one sequence through the model, chunk by chunk.
 *
 * The simplest client of the step plan: every step holds tokens of a single
 * sequence. `tessera generate` and the golden tests use it. */
#ifndef TESSERA_SINGLE_H
#define TESSERA_SINGLE_H

#include <stdbool.h>

#include "kv_cache.h"
#include "model.h"

/* Feeds ids[0..n) at positions n_past..n_past+n-1, in steps of at most
 * `chunk` tokens, reserving KV blocks in s as it goes. logits receives
 * [n, vocab] when all_logits, else the [vocab] logits of the last token.
 * Returns 0, ERR_NOMEM when the pool runs out of blocks, or ERR_INVALID
 * past the context length. */
int single_forward(model *m, kv_pool *pool, struct kv_seq *s, int n_past, const int32_t *ids,
                   int n, int chunk, bool all_logits, float *logits);

#endif
