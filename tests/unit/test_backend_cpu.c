/* test_backend_cpu.c: the CPU backend's matmul on uploaded weights against
 * matmul_ref on the host weights: rows kept whole (a view) and long rows
 * stored as column blocks, through every kernel path the CPU has; and
 * st_release, which gives back the mapped pages of copied weights. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/backend.h"
#include "../../base/err.h"
#include "../../engine/safetensors.h"
#include "test_util.h"

/* Weights of type dt with random values. */
static void *random_weights(enum dtype dt, size_t n, uint64_t *rng)
{
    float *f = malloc(n * sizeof(float));
    fill_uniform(f, n, -1, 1, rng);
    void *w = malloc(n * dtype_size(dt));
    for (size_t i = 0; i < n; i++) dtype_set(w, dt, i, f[i]);
    free(f);
    return w;
}

/* backend matmul of T tokens through [N, K] weights of type dt vs the
 * reference; blocked: whether the upload must have cut the columns. */
static void check(struct backend *b, enum dtype dt, int N, int K, int T, bool blocked, uint64_t *rng)
{
    struct tensor host = {.dtype = dt, .rows = N, .cols = K, .data = random_weights(dt, (size_t)N * K, rng)}, dev;
    float *x = malloc((size_t)T * K * sizeof(float));
    float *want = malloc((size_t)T * N * sizeof(float)), *got = malloc((size_t)T * N * sizeof(float));
    fill_uniform(x, (size_t)T * K, -1, 1, rng);
    matmul_ref(want, N, x, K, host.data, dt, T, K, 0, N, false);

    b->ops->upload_weight(b, &host, &dev, WEIGHT_MATMUL);
    cr_assert_eq(dev.block_cols != 0, blocked, "%s K=%d: block_cols %ld", dtype_name(dt), K, (long)dev.block_cols);
    b->ops->matmul(b, got, x, &dev, T);
    char label[80];
    snprintf(label, sizeof(label), "%s N=%d K=%d T=%d block_cols=%ld", dtype_name(dt), N, K, T, (long)dev.block_cols);
    cr_assert(all_close(got, want, (size_t)T * N, 1e-5f * K, 1e-5f, label), "%s", label);
    if (dev.data != host.data) b->ops->free(b, (void *)dev.data);

    /* the embedding's use: rows stay whole, never copied */
    b->ops->upload_weight(b, &host, &dev, WEIGHT_ROWS);
    cr_assert(dev.data == host.data && dev.block_cols == 0, "%s", label);
    free((void *)host.data), free(x), free(want), free(got);
}

Test(backend_cpu, matmul_on_whole_and_column_blocked_weights)
{
    struct backend *b = backend_cpu_create(2);
    uint64_t rng = 7;
    static const enum kcpu_level levels[] = {KCPU_REF, KCPU_AVX2, KCPU_AVX512};
    for (int l = 0; l < 3; l++) {
        kcpu_cap(levels[l]);
        for (int dt = 0; dt < 3; dt++)
            for (int T = 1; T <= 17; T += 8) {
                check(b, (enum dtype)dt, 70, 300, T, false, &rng);
                /* 16-bit weights: rows of 5632 (TinyLlama's down_proj) in 3
                 * blocks; fp32 ones: 2049 in 2, the last block narrower and odd */
                if (dt == DTYPE_F32) check(b, DTYPE_F32, 70, 2049, T, true, &rng);
                else check(b, (enum dtype)dt, 70, 5632, T, true, &rng);
            }
    }
    kcpu_cap(KCPU_AMX);
    b->ops->destroy(b);
}

Test(backend_cpu, released_weight_pages_read_back_the_same)
{
    /* 40000 floats: pages wholly inside the tensor and parts of pages at its ends */
    enum { N = 40000 };
    float *v = malloc(N * sizeof(float));
    uint64_t rng = 3;
    fill_uniform(v, N, -1, 1, &rng);
    char *dir = make_tmpdir(), path[512];
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    struct test_tensor t = {"w", "F32", 1, {N}, v, N * sizeof(float)};
    write_safetensors(path, &t, 1);
    safetensors *st;
    cr_assert_eq(st_open_file(&st, path), 0, "%s", err_msg());
    const struct st_tensor *w = st_find(st, "w");
    cr_assert(w && memcmp(w->data, v, sizeof(float) * N) == 0);
    st_release(st, w->data, w->nbytes);
    cr_assert(memcmp(w->data, v, sizeof(float) * N) == 0, "the released pages read back differently");
    /* memory outside the mapping is not touched */
    float *copy = malloc(N * sizeof(float));
    memcpy(copy, v, N * sizeof(float));
    st_release(st, copy, N * sizeof(float));
    cr_assert(memcmp(copy, v, sizeof(float) * N) == 0);
    st_close(st);
    rm_rf(dir);
    free(dir), free(v), free(copy);
}
