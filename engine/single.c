/* single.c: a one-sequence step plan, chunked. */
#include "single.h"

#include <stdlib.h>

#include "../base/err.h"

int single_forward(model *m, kv_pool *pool, struct kv_seq *s, int n_past, const int32_t *ids,
                   int n, int chunk, bool all_logits, float *logits)
{
    const struct model_config *c = model_get_config(m);
    int max_blocks = model_max_blocks_per_seq(m);
    if (n_past + n > c->max_pos)
        return err_set(ERR_INVALID, "%d tokens exceed the context length %d", n_past + n, c->max_pos);
    if (!kv_seq_reserve(pool, s, n_past + n))
        return err_set(ERR_NOMEM, "KV cache: no free blocks for %d tokens", n_past + n);
    int32_t *pos = xmalloc(chunk * sizeof(int32_t)), *seq = xcalloc(chunk, sizeof(int32_t));
    int32_t *out = xmalloc(chunk * sizeof(int32_t)), *bt = xcalloc(max_blocks, sizeof(int32_t));
    int64_t *slots = xmalloc(chunk * sizeof(int64_t));
    for (int i = 0; i < s->n_blocks; i++) bt[i] = s->blocks[i];
    int rc = 0;
    for (int done = 0; done < n && !rc; done += chunk) {
        int T = n - done < chunk ? n - done : chunk;
        for (int t = 0; t < T; t++) {
            pos[t] = n_past + done + t;
            slots[t] = kv_seq_slot(pool, s, pos[t]);
            out[t] = t;
        }
        bool last = done + T == n;
        struct step_batch sb = {
            .n_tokens = T, .token_ids = ids + done, .positions = pos, .slots = slots,
            .tok_seq = seq, .n_seqs = 1, .block_tables = bt, .max_blocks = max_blocks,
            .n_outputs = all_logits ? T : last ? 1 : 0,
            .output_tokens = all_logits ? out : out + T - 1,
        };
        float *dst = all_logits ? logits + (size_t)done * c->vocab_size : logits;
        rc = model_forward(m, &sb, dst, NULL, NULL);
    }
    free(pos);
    free(seq);
    free(out);
    free(bt);
    free(slots);
    return rc;
}
