/* test_kv_cache.c: block pool accounting and slot mapping. */
#include <criterion/criterion.h>

#include "../../engine/kv_cache.h"

Test(kv_cache, reserve_release_and_slots)
{
    kv_pool *p = kv_pool_create(4, 16, false);
    struct kv_seq a = {0}, b = {0};
    cr_assert(kv_seq_reserve(p, &a, 17)); /* 2 blocks */
    cr_assert_eq(a.n_blocks, 2);
    cr_assert_eq(kv_pool_num_free(p), 2);
    cr_assert(kv_seq_reserve(p, &a, 32)); /* still 2 */
    cr_assert_eq(kv_pool_num_free(p), 2);
    cr_assert_not(kv_seq_reserve(p, &b, 3 * 16)); /* needs 3, has 2: nothing taken */
    cr_assert_eq(kv_pool_num_free(p), 2);
    cr_assert_eq(b.n_blocks, 0);
    cr_assert(kv_seq_reserve(p, &b, 1));
    cr_assert_eq(kv_seq_slot(p, &a, 0), (int64_t)a.blocks[0] * 16);
    cr_assert_eq(kv_seq_slot(p, &a, 17), (int64_t)a.blocks[1] * 16 + 1);
    cr_assert_neq(a.blocks[0], b.blocks[0]);
    kv_seq_release(p, &a);
    kv_seq_release(p, &b);
    cr_assert_eq(kv_pool_num_free(p), 4);
    kv_pool_destroy(p);
}

static void iota(int32_t *ids, int n, int start)
{
    for (int i = 0; i < n; i++) ids[i] = start + i;
}

Test(kv_cache, prefix_match_shares_full_blocks_only)
{
    kv_pool *p = kv_pool_create(8, 4, true);
    int32_t ids[10];
    iota(ids, 10, 100);
    struct kv_seq a = {0}, b = {0}, c = {0};
    cr_assert_eq(kv_seq_match_prefix(p, &a, ids, 10), 0); /* nothing cached yet */
    cr_assert(kv_seq_reserve(p, &a, 10));
    kv_seq_commit(p, &a, ids, 10); /* blocks 0 and 1 are full, block 2 is not */
    cr_assert_eq(a.n_hashed, 2);
    /* same 10 tokens: 8 cached; a 9-token prompt keeps its 9th token to compute */
    cr_assert_eq(kv_seq_match_prefix(p, &b, ids, 10), 8);
    cr_assert_eq(b.blocks[0], a.blocks[0]);
    cr_assert_eq(b.blocks[1], a.blocks[1]);
    cr_assert_eq(kv_seq_match_prefix(p, &c, ids, 8), 4, "the last token must stay uncached");
    cr_assert_eq(kv_pool_num_free(p), 5);
    struct kv_pool_stats st = kv_pool_stats(p);
    cr_assert_eq(st.queries, 28);
    cr_assert_eq(st.hits, 12);
    kv_seq_release(p, &c);
    kv_seq_release(p, &b);
    /* a different token in block 1 ends the match after block 0 */
    ids[5] = 7;
    cr_assert_eq(kv_seq_match_prefix(p, &b, ids, 10), 4);
    kv_seq_release(p, &b);
    kv_seq_release(p, &a);
    cr_assert_eq(kv_pool_num_used(p), 0);
    cr_assert_eq(kv_pool_num_free(p), 6);
    cr_assert_eq(kv_pool_num_cached(p), 2);
    kv_pool_destroy(p);
}

Test(kv_cache, plain_blocks_go_first_then_the_sequence_tail_is_evicted)
{
    kv_pool *p = kv_pool_create(4, 2, true);
    int32_t x[5] = {1, 2, 3, 4, 9};
    struct kv_seq a = {0}, b = {0}, c = {0}, d = {0};
    cr_assert(kv_seq_reserve(p, &a, 4));
    kv_seq_commit(p, &a, x, 4);
    int32_t head = a.blocks[0], tail = a.blocks[1];
    kv_seq_release(p, &a); /* x's two blocks stay cached; two plain blocks are free */
    cr_assert_eq(kv_pool_num_cached(p), 2);
    cr_assert(kv_seq_reserve(p, &b, 4)); /* the plain blocks go first */
    cr_assert_eq(kv_pool_num_cached(p), 2);
    cr_assert_eq(kv_pool_stats(p).evictions, 0);
    cr_assert_eq(kv_seq_match_prefix(p, &c, x, 5), 4);
    cr_assert_eq(kv_pool_num_free(p), 0);
    cr_assert_not(kv_seq_reserve(p, &d, 1), "referenced cached blocks are not free");
    kv_seq_release(p, &c);
    cr_assert(kv_seq_reserve(p, &d, 1)); /* evicts x's last block, not its first */
    cr_assert_eq(d.blocks[0], tail);
    cr_assert_eq(kv_pool_stats(p).evictions, 1);
    cr_assert_eq(kv_pool_num_cached(p), 1);
    kv_seq_release(p, &d);
    cr_assert_eq(kv_seq_match_prefix(p, &c, x, 5), 2);
    cr_assert_eq(c.blocks[0], head);
    kv_seq_release(p, &c);
    kv_seq_release(p, &b);
    cr_assert_eq(kv_pool_num_free(p) + kv_pool_num_cached(p), 4);
    kv_pool_destroy(p);
}

Test(kv_cache, duplicate_blocks_keep_the_first_key)
{
    kv_pool *p = kv_pool_create(6, 2, true);
    int32_t x[3] = {1, 2, 3};
    struct kv_seq a = {0}, b = {0}, c = {0};
    /* a and b compute the same block at once; only a's is keyed */
    cr_assert(kv_seq_reserve(p, &a, 3));
    cr_assert(kv_seq_reserve(p, &b, 3));
    kv_seq_commit(p, &a, x, 3);
    kv_seq_commit(p, &b, x, 3);
    cr_assert_eq(b.n_hashed, 1);
    kv_seq_release(p, &a);
    kv_seq_release(p, &b);
    cr_assert_eq(kv_pool_num_cached(p), 1);
    cr_assert_eq(kv_seq_match_prefix(p, &c, x, 3), 2);
    kv_seq_release(p, &c);
    kv_pool_destroy(p);
}
