/* test_amx.c: the AMX path for quantized prompts (kernels/cpu/amx.c):
 * panels are the bf16 rounding of dequantize_row, bit for bit; the tile
 * loop is a float dot of the bf16 values; activations are the bf16 rounding
 * of x. Skipped (and said so) on CPUs without AMX. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/quant.h"
#include "test_util.h"

static const enum dtype TYPES[] = {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K};

static void need_amx(void)
{
    if (!kcpu_have_amx()) cr_skip_test("this CPU has no AMX (or the OS refused it): nothing to test");
}

/* n rows of K random blocks of type t whose f16 scales are finite and small */
static void *random_blocks(enum dtype t, int n, int K, uint64_t *st)
{
    size_t bytes = (size_t)n * dtype_row_bytes(t, K);
    unsigned char *b = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) b[i] = (unsigned char)rng_next(st);
    size_t bb = dtype_block_bytes(t);
    for (size_t off = 0; off < bytes; off += bb) {
        uint16_t d = f32_to_f16(0.001f + 0.01f * (float)(rng_next(st) % 100) / 100.0f);
        switch (t) {
        case DTYPE_Q4_K: memcpy(b + off, &d, 2), memcpy(b + off + 2, &d, 2); break;
        case DTYPE_Q6_K: memcpy(b + off + 208, &d, 2); break;
        default: memcpy(b + off, &d, 2); break;
        }
    }
    return b;
}

Test(amx, panels_are_the_bf16_of_dequantize_row)
{
    need_amx();
    uint64_t st = 7;
    const int K = 512;
    uint16_t *panel = aligned_alloc(64, 16 * K * 2);
    float *row = malloc(K * sizeof(float));
    for (size_t ti = 0; ti < sizeof(TYPES) / sizeof(TYPES[0]); ti++) {
        enum dtype t = TYPES[ti];
        void *w = random_blocks(t, 20, K, &st);
        for (int rows = 16; rows >= 3; rows -= 13) {
            amx_panel(panel, w, t, K, 4, rows);
            for (int r = 0; r < 16; r++) {
                if (r < rows) dequantize_row(t, (const char *)w + (size_t)(4 + r) * dtype_row_bytes(t, K), row, K);
                for (int k = 0; k < K; k++) {
                    uint16_t want = r < rows ? f32_to_bf16(row[k]) : 0;
                    cr_assert_eq(panel[(size_t)r * K + k], want, "%s row %d col %d: %04x != %04x", dtype_name(t),
                                 r, k, panel[(size_t)r * K + k], want);
                }
            }
        }
        free(w);
    }
    free(row);
    free(panel);
}

/* y = x w^T through the tiles, against double sums of the same bf16 values */
static void check_matmul(int T, int K, int rows, bool accumulate, uint64_t *st)
{
    float *x = malloc((size_t)T * K * sizeof(float));
    fill_uniform(x, (size_t)T * K, -2.0f, 2.0f, st);
    void *w = random_blocks(DTYPE_Q4_K, rows, K, st);
    uint16_t *panel = aligned_alloc(64, (size_t)16 * K * 2);
    void *xb = aligned_alloc(64, amx_act_bytes(T, K));
    amx_panel(panel, w, DTYPE_Q4_K, K, 0, rows);
    /* converted in two parts at a tile edge, as two threads would */
    int half = T / 32 * 16;
    amx_act_convert(xb, x, K, T, K, 0, half);
    amx_act_convert(xb, x, K, T, K, half, T);
    int ldy = rows + 3;
    float *y = malloc((size_t)T * ldy * sizeof(float));
    for (int i = 0; i < T * ldy; i++) y[i] = accumulate ? 0.5f : NAN;
    matmul_amx(y, ldy, xb, panel, T, K, 0, rows, accumulate);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)bf16_to_f32(f32_to_bf16(x[(size_t)t * K + k])) * bf16_to_f32(panel[(size_t)r * K + k]);
                s += p, mag += fabs(p);
            }
            if (accumulate) s += 0.5;
            float got = y[(size_t)t * ldy + r];
            cr_assert(fabs(got - s) <= 1e-5 * mag + 1e-6, "T=%d K=%d row %d token %d: %g vs %g", T, K, r, t, got, s);
        }
    free(y), free(xb), free(panel), free(w), free(x);
}

Test(amx, matmul_is_a_dot_of_the_bf16_values)
{
    need_amx();
    uint64_t st = 11;
    const int Ts[] = {1, 15, 16, 17, 33, 64, 70};
    for (size_t i = 0; i < sizeof(Ts) / sizeof(Ts[0]); i++) {
        check_matmul(Ts[i], 256, 16, false, &st);
        check_matmul(Ts[i], 512, 5, true, &st);
    }
}
