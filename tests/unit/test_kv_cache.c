/* test_kv_cache.c: block pool accounting and slot mapping. */
#include <criterion/criterion.h>

#include "../../engine/kv_cache.h"

Test(kv_cache, reserve_release_and_slots)
{
    kv_pool *p = kv_pool_create(4, 16);
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
