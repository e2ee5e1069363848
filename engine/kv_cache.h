/* kv_cache.h: the paged KV cache's block pool and per-sequence block tables.
 *
 * The pool hands out fixed-size blocks (block_size token slots each) by int32
 * id, keeps a reference count per block and a free list; a sequence owns a
 * block table mapping its logical block i (positions i*block_size ..) to a
 * pool block. The K/V storage itself belongs to the model (one buffer per
 * layer, indexed by slot = block * block_size + offset). */
#ifndef TESSERA_KV_CACHE_H
#define TESSERA_KV_CACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kv_pool kv_pool;

kv_pool *kv_pool_create(int num_blocks, int block_size);
void kv_pool_destroy(kv_pool *p);
int kv_pool_num_blocks(const kv_pool *p);
int kv_pool_num_free(const kv_pool *p);
int kv_pool_block_size(const kv_pool *p);

/* One sequence's block table. Zero-initialise before use. */
struct kv_seq {
    int32_t *blocks;
    int n_blocks, cap;
};

/* Makes room for n_tokens positions; false (and nothing taken) when the pool
 * has too few free blocks. */
bool kv_seq_reserve(kv_pool *p, struct kv_seq *s, int n_tokens);
/* Returns every block of s to the pool. */
void kv_seq_release(kv_pool *p, struct kv_seq *s);
/* The cache slot of position pos (which must be reserved). */
int64_t kv_seq_slot(const kv_pool *p, const struct kv_seq *s, int pos);

#endif
