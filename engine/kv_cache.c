/* kv_cache.c: reference-counted blocks, a free queue that doubles as the
 * prefix cache's LRU list, and an open-addressing table from chain hash to
 * block. */
#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "../base/err.h"

#define NONE (-1)

struct kv_pool {
    int num_blocks, block_size;
    bool prefix_caching;
    int32_t *refcount;
    /* free queue: every unreferenced block; plain ones at the head (taken
     * first), cached ones appended at the tail (evicted oldest first) */
    int32_t *prev, *next;
    int32_t head, tail;
    int n_free, n_cached; /* n_free counts every unreferenced block, cached included */
    /* prefix cache: per block its key, and the table of keyed blocks */
    bool *hashed;
    uint64_t *hash, *parent;
    int32_t *tokens;    /* [num_blocks, block_size], to verify a hit */
    int32_t *table;     /* [table_mask + 1] block ids, NONE = empty */
    uint64_t table_mask;
    uint64_t seed;      /* of the chain hash: random per pool */
    struct kv_pool_stats stats;
};

// ---------------------------------------------------------------------------
// free queue

static void queue_remove(kv_pool *p, int32_t b)
{
    if (p->prev[b] != NONE) p->next[p->prev[b]] = p->next[b];
    else p->head = p->next[b];
    if (p->next[b] != NONE) p->prev[p->next[b]] = p->prev[b];
    else p->tail = p->prev[b];
    p->prev[b] = p->next[b] = NONE;
}

static void queue_push(kv_pool *p, int32_t b, bool at_tail)
{
    if (p->head == NONE) {
        p->head = p->tail = b;
        p->prev[b] = p->next[b] = NONE;
    } else if (at_tail) {
        p->prev[b] = p->tail;
        p->next[b] = NONE;
        p->next[p->tail] = b;
        p->tail = b;
    } else {
        p->prev[b] = NONE;
        p->next[b] = p->head;
        p->prev[p->head] = b;
        p->head = b;
    }
}

// ---------------------------------------------------------------------------
// hash table (linear probing, backward-shift deletion)

/* XXH3 of the block's tokens, seeded with the parent's key and the pool's
 * random seed: prompts cannot be crafted to collide in the table (long
 * probe chains) without knowing the seed, which differs on every start. */
static uint64_t chain_hash(const kv_pool *p, uint64_t parent, const int32_t *ids, int n)
{
    return XXH3_64bits_withSeed(ids, (size_t)n * sizeof(int32_t), parent ^ p->seed);
}

static int32_t table_find(const kv_pool *p, uint64_t h, uint64_t parent, const int32_t *ids)
{
    for (uint64_t i = h & p->table_mask;; i = (i + 1) & p->table_mask) {
        int32_t b = p->table[i];
        if (b == NONE) return NONE;
        if (p->hash[b] == h && p->parent[b] == parent &&
            !memcmp(p->tokens + (size_t)b * p->block_size, ids, p->block_size * sizeof(int32_t)))
            return b;
    }
}

static void table_insert(kv_pool *p, int32_t b)
{
    uint64_t i = p->hash[b] & p->table_mask;
    while (p->table[i] != NONE) i = (i + 1) & p->table_mask;
    p->table[i] = b;
}

static void table_erase(kv_pool *p, int32_t b)
{
    uint64_t i = p->hash[b] & p->table_mask;
    while (p->table[i] != b) i = (i + 1) & p->table_mask;
    /* shift later entries of the probe run back into the hole */
    for (uint64_t j = (i + 1) & p->table_mask; p->table[j] != NONE; j = (j + 1) & p->table_mask) {
        uint64_t home = p->hash[p->table[j]] & p->table_mask;
        /* the entry at j may move to i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            p->table[i] = p->table[j];
            i = j;
        }
    }
    p->table[i] = NONE;
}

// ---------------------------------------------------------------------------
// pool

kv_pool *kv_pool_create(int num_blocks, int block_size, bool prefix_caching)
{
    CHECK(num_blocks > 0 && block_size > 0);
    kv_pool *p = xcalloc(1, sizeof(*p));
    p->num_blocks = num_blocks;
    p->block_size = block_size;
    p->prefix_caching = prefix_caching;
    if (getrandom(&p->seed, sizeof(p->seed), 0) != sizeof(p->seed)) p->seed = (uint64_t)mono_seconds() * 1e9;
    p->refcount = xcalloc(num_blocks, sizeof(int32_t));
    p->prev = xmalloc(num_blocks * sizeof(int32_t));
    p->next = xmalloc(num_blocks * sizeof(int32_t));
    p->head = p->tail = NONE;
    for (int b = 0; b < num_blocks; b++) queue_push(p, b, true); /* block 0 is taken first */
    p->n_free = num_blocks;
    p->hashed = xcalloc(num_blocks, sizeof(bool));
    p->hash = xcalloc(num_blocks, sizeof(uint64_t));
    p->parent = xcalloc(num_blocks, sizeof(uint64_t));
    if (prefix_caching) {
        p->tokens = xmalloc((size_t)num_blocks * block_size * sizeof(int32_t));
        uint64_t cap = 16;
        while (cap < 2 * (uint64_t)num_blocks) cap *= 2;
        p->table_mask = cap - 1;
        p->table = xmalloc(cap * sizeof(int32_t));
        for (uint64_t i = 0; i < cap; i++) p->table[i] = NONE;
    }
    return p;
}

void kv_pool_destroy(kv_pool *p)
{
    if (!p) return;
    free(p->refcount);
    free(p->prev);
    free(p->next);
    free(p->hashed);
    free(p->hash);
    free(p->parent);
    free(p->tokens);
    free(p->table);
    free(p);
}

int kv_pool_num_blocks(const kv_pool *p) { return p->num_blocks; }
int kv_pool_block_size(const kv_pool *p) { return p->block_size; }
int kv_pool_num_used(const kv_pool *p) { return p->num_blocks - p->n_free; }
int kv_pool_num_free(const kv_pool *p) { return p->n_free - p->n_cached; }
int kv_pool_num_cached(const kv_pool *p) { return p->n_cached; }
struct kv_pool_stats kv_pool_stats(const kv_pool *p) { return p->stats; }

static void seq_append(struct kv_seq *s, int32_t b)
{
    if (s->n_blocks == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->blocks = xrealloc(s->blocks, s->cap * sizeof(int32_t));
    }
    s->blocks[s->n_blocks++] = b;
}

/* Takes a reference on b, pulling it off the free queue if it was there. */
static void ref(kv_pool *p, int32_t b)
{
    if (p->refcount[b]++ == 0) {
        queue_remove(p, b);
        p->n_free--;
        if (p->hashed[b]) p->n_cached--;
    }
}

int kv_seq_match_prefix(kv_pool *p, struct kv_seq *s, const int32_t *ids, int n)
{
    CHECK(s->n_blocks == 0);
    if (!p->prefix_caching || n <= 0) return 0;
    int bs = p->block_size, max_blocks = (n - 1) / bs;
    uint64_t parent = 0;
    int i = 0;
    for (; i < max_blocks; i++) {
        uint64_t h = chain_hash(p, parent, ids + (size_t)i * bs, bs);
        int32_t b = table_find(p, h, parent, ids + (size_t)i * bs);
        if (b == NONE) break;
        ref(p, b);
        seq_append(s, b);
        parent = h;
    }
    s->n_hashed = i;
    s->last_hash = parent;
    p->stats.queries += n;
    p->stats.hits += (int64_t)i * bs;
    return i * bs;
}

bool kv_seq_reserve(kv_pool *p, struct kv_seq *s, int n_tokens)
{
    int need = (n_tokens + p->block_size - 1) / p->block_size - s->n_blocks;
    if (need <= 0) return true;
    if (need > p->n_free) return false;
    for (int i = 0; i < need; i++) {
        int32_t b = p->head;
        if (p->hashed[b]) { /* evict: the cached prefix it held is gone */
            table_erase(p, b);
            p->hashed[b] = false;
            p->n_cached--;
            p->stats.evictions++;
        }
        ref(p, b);
        seq_append(s, b);
    }
    return true;
}

void kv_seq_commit(kv_pool *p, struct kv_seq *s, const int32_t *ids, int n_computed)
{
    if (!p->prefix_caching) return;
    int bs = p->block_size, full = n_computed / bs;
    if (full > s->n_blocks) full = s->n_blocks;
    for (; s->n_hashed < full; s->n_hashed++) {
        const int32_t *blk = ids + (size_t)s->n_hashed * bs;
        uint64_t parent = s->last_hash, h = chain_hash(p, parent, blk, bs);
        int32_t b = s->blocks[s->n_hashed];
        /* an identical block computed by another sequence keeps the key */
        if (!p->hashed[b] && table_find(p, h, parent, blk) == NONE) {
            p->hashed[b] = true;
            p->hash[b] = h;
            p->parent[b] = parent;
            memcpy(p->tokens + (size_t)b * bs, blk, bs * sizeof(int32_t));
            table_insert(p, b);
        }
        s->last_hash = h;
    }
}

void kv_seq_release(kv_pool *p, struct kv_seq *s)
{
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        int32_t b = s->blocks[i];
        CHECK(p->refcount[b] > 0);
        if (--p->refcount[b] == 0) {
            queue_push(p, b, p->hashed[b]);
            p->n_free++;
            if (p->hashed[b]) p->n_cached++;
        }
    }
    free(s->blocks);
    memset(s, 0, sizeof(*s));
}

int64_t kv_seq_slot(const kv_pool *p, const struct kv_seq *s, int pos)
{
    int i = pos / p->block_size;
    CHECK(i < s->n_blocks);
    return (int64_t)s->blocks[i] * p->block_size + pos % p->block_size;
}
