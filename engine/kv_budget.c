/* kv_budget.c: how many KV blocks the pool gets. With --kv-cache-memory,
 * that; else enough for max_num_seqs full contexts, at most what the
 * backend's budget allows (CUDA: what --gpu-memory-utilization leaves after
 * the weights; CPU: a quarter of the available memory, shared by the
 * tensor-parallel ranks). */
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "gguf_model.h"

#include "comm.h"
#include "engine_impl.h"
#include "../base/err.h"

/* MemAvailable from /proc/meminfo in bytes; 0 when unknown. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

/* What the weights of this rank take on b: params (its share) at the
 * backend's dtype, less where they stay quantized there: a GGUF file's
 * bytes per parameter, or --quantization's for the layers (the embedding
 * and LM head counted at the dtype). */
static int64_t weight_bytes(int64_t params, int64_t shared, const char *dir, struct backend *b,
                            const struct engine_config *c, int64_t total)
{
    double bpp = (double)dtype_size(b->weight_dtype);
    char file[4096];
    struct stat st;
    if (gguf_model_path(dir, file, sizeof(file)) == 1 && !stat(file, &st) && total > 0 &&
        (double)st.st_size / (double)total < bpp)
        bpp = (double)st.st_size / (double)total;
    if (c->quantization != DTYPE_F32 && (double)dtype_block_bytes(c->quantization) / 32 < bpp)
        return (int64_t)((double)(params - shared) * dtype_block_bytes(c->quantization) / 32 + (double)shared * bpp);
    return (int64_t)((double)params * bpp);
}

int kv_budget(struct kv_budget *kb, const struct model_config *cfg, const char *dir, struct backend *b,
              const struct engine_config *c, int max_len)
{
    /* K and V, every layer, in the backend's cache type, of this rank's KV heads */
    int world = comm_world(), kv_heads = cfg->n_kv_heads >= world ? cfg->n_kv_heads / world : 1;
    int64_t per_block = 2LL * cfg->n_layers * kv_heads * cfg->head_dim * (int64_t)dtype_size(b->kv_dtype) *
                        c->block_size;
    int64_t blocks_per_seq = (max_len + c->block_size - 1) / c->block_size;
    int64_t want = c->kv_cache_memory;
    if (!want) {
        want = blocks_per_seq * c->max_num_seqs * per_block;
        /* this rank's weights: a slice of the layers, the whole embedding and LM head */
        int64_t shared = (int64_t)cfg->vocab_size * cfg->hidden_size * (cfg->tie_word_embeddings ? 1 : 2);
        int64_t total = model_config_num_params(cfg), params = (total - shared) / world + shared;
        /* CPU: the ranks may share the machine's memory */
        int64_t avail = b->ops->kv_budget ? b->ops->kv_budget(b, weight_bytes(params, shared, dir, b, c, total))
                                          : mem_available() / 4 / world;
        if (avail > 0 && want > avail) want = avail;
        if (b->ops->kv_budget && avail <= 0) want = 0;
    }
    int64_t num_blocks = want / per_block;
    if (num_blocks < 1)
        return err_set(ERR_INVALID, "KV cache memory of %lld bytes holds no block (one block: %lld bytes)",
                       (long long)want, (long long)per_block);
    if (num_blocks > INT32_MAX / c->block_size) num_blocks = INT32_MAX / c->block_size;

    kb->per_block = per_block;
    kb->blocks_per_seq = blocks_per_seq;
    kb->num_blocks = num_blocks;
    return 0;
}
