/* kv_cache.c: free list of blocks with reference counts. */
#include "kv_cache.h"

#include <stdlib.h>

#include "err.h"

struct kv_pool {
    int num_blocks, block_size;
    int32_t *free_list; /* stack of free block ids */
    int n_free;
    int32_t *refcount;
};

kv_pool *kv_pool_create(int num_blocks, int block_size)
{
    CHECK(num_blocks > 0 && block_size > 0);
    kv_pool *p = xcalloc(1, sizeof(*p));
    p->num_blocks = num_blocks;
    p->block_size = block_size;
    p->free_list = xmalloc(num_blocks * sizeof(int32_t));
    p->refcount = xcalloc(num_blocks, sizeof(int32_t));
    for (int i = 0; i < num_blocks; i++) p->free_list[i] = num_blocks - 1 - i; /* pop 0 first */
    p->n_free = num_blocks;
    return p;
}

void kv_pool_destroy(kv_pool *p)
{
    if (!p) return;
    free(p->free_list);
    free(p->refcount);
    free(p);
}

int kv_pool_num_blocks(const kv_pool *p) { return p->num_blocks; }
int kv_pool_num_free(const kv_pool *p) { return p->n_free; }
int kv_pool_block_size(const kv_pool *p) { return p->block_size; }

bool kv_seq_reserve(kv_pool *p, struct kv_seq *s, int n_tokens)
{
    int need = (n_tokens + p->block_size - 1) / p->block_size - s->n_blocks;
    if (need <= 0) return true;
    if (need > p->n_free) return false;
    if (s->n_blocks + need > s->cap) {
        s->cap = (s->n_blocks + need) * 2;
        s->blocks = xrealloc(s->blocks, s->cap * sizeof(int32_t));
    }
    for (int i = 0; i < need; i++) {
        int32_t b = p->free_list[--p->n_free];
        CHECK(p->refcount[b] == 0);
        p->refcount[b] = 1;
        s->blocks[s->n_blocks++] = b;
    }
    return true;
}

void kv_seq_release(kv_pool *p, struct kv_seq *s)
{
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        int32_t b = s->blocks[i];
        CHECK(p->refcount[b] > 0);
        if (--p->refcount[b] == 0) p->free_list[p->n_free++] = b;
    }
    free(s->blocks);
    s->blocks = NULL;
    s->n_blocks = s->cap = 0;
}

int64_t kv_seq_slot(const kv_pool *p, const struct kv_seq *s, int pos)
{
    int i = pos / p->block_size;
    CHECK(i < s->n_blocks);
    return (int64_t)s->blocks[i] * p->block_size + pos % p->block_size;
}
