/* kv_cache.h: the paged KV cache's block pool, block tables and prefix cache.
 *
 * The pool hands out fixed-size blocks (block_size token slots each) by int32
 * id and keeps a reference count per block. A sequence owns a block table
 * mapping its logical block i (positions i*block_size ..) to a pool block. The
 * K/V storage itself belongs to the model (one buffer per layer, indexed by
 * slot = block * block_size + offset).
 *
 * Prefix caching (vLLM's automatic prefix caching): once a block is full of
 * computed tokens it is keyed by a chain hash of its tokens and its parent
 * block's hash. A new sequence takes a reference on every cached block of its
 * longest cached prefix instead of computing it again. Blocks whose count
 * drops to zero stay cached in an LRU queue of free blocks: allocation takes
 * plain free blocks first and evicts the least recently freed cached block
 * only when none is left. Lookups compare the stored tokens too, so a hash
 * collision can cost a cache hit but never a wrong one. */
#ifndef TESSERA_KV_CACHE_H
#define TESSERA_KV_CACHE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kv_pool kv_pool;

kv_pool *kv_pool_create(int num_blocks, int block_size, bool prefix_caching);
void kv_pool_destroy(kv_pool *p);
int kv_pool_num_blocks(const kv_pool *p);
int kv_pool_block_size(const kv_pool *p);
/* Every block is exactly one of: used (referenced by a sequence), cached
 * (unreferenced, still holding a prefix) or free (unreferenced, empty). Both
 * cached and free blocks can be taken by kv_seq_reserve(). */
int kv_pool_num_used(const kv_pool *p);
int kv_pool_num_cached(const kv_pool *p);
int kv_pool_num_free(const kv_pool *p);

struct kv_pool_stats {
    int64_t queries;     /* tokens looked up in the prefix cache */
    int64_t hits;        /* of which found cached */
    int64_t evictions;   /* cached blocks reused for other tokens */
};
struct kv_pool_stats kv_pool_stats(const kv_pool *p);

/* One sequence's block table. Zero-initialise before use. */
struct kv_seq {
    int32_t *blocks;
    int n_blocks, cap;
    int n_hashed;       /* leading blocks already keyed (cached or not) */
    uint64_t last_hash; /* hash of block n_hashed - 1 */
};

/* For an empty s: references the cached blocks holding the longest prefix of
 * ids[0..n) in whole blocks, leaving at least the last token uncached (its
 * logits must be computed). Returns the number of tokens found (a multiple of
 * block_size); 0 when prefix caching is off. */
int kv_seq_match_prefix(kv_pool *p, struct kv_seq *s, const int32_t *ids, int n);
/* Makes room for n_tokens positions; false (and nothing taken) when the pool
 * has too few free blocks. */
bool kv_seq_reserve(kv_pool *p, struct kv_seq *s, int n_tokens);
/* Keys every block of s that ids[0..n_computed) fills completely, so other
 * sequences can share it. */
void kv_seq_commit(kv_pool *p, struct kv_seq *s, const int32_t *ids, int n_computed);
/* Drops s's references (last block first, so a sequence's tail is evicted
 * before its head) and empties s. */
void kv_seq_release(kv_pool *p, struct kv_seq *s);
/* The cache slot of position pos (which must be reserved). */
int64_t kv_seq_slot(const kv_pool *p, const struct kv_seq *s, int pos);

#endif
