/* test_quant.c: kernels/quant.c on its own: dequantize_one against
 * dequantize_row, the error of a quantize-dequantize round trip, zero
 * blocks, finite outputs. (Bit-exactness against the gguf package:
 * tests/quant, make test-quant.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/quant.h"
#include "test_util.h"

/* A finite half of sane magnitude (2^-20 .. 4, either sign). */
static uint16_t rand_scale(uint64_t *rng)
{
    float mag = ldexpf(1.0f + (float)(rng_next(rng) % 1024) / 1024.0f, (int)(rng_next(rng) % 23) - 20);
    return f32_to_f16(rng_next(rng) & 1 ? -mag : mag);
}

/* nb random blocks of t: random bytes, the f16 scale fields finite (an
 * F8_ROWS row: its scale finite, no NaN codes). */
static void *rand_blocks(enum dtype t, int nb, uint64_t *rng)
{
    size_t bytes = dtype_row_bytes(t, (int64_t)nb * dtype_block(t));
    uint8_t *p = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)rng_next(rng);
    if (t == DTYPE_F8_ROWS) {
        float d = f16_to_f32(rand_scale(rng));
        memcpy(p, &d, 4);
        for (size_t i = 4; i < bytes; i++) p[i] = (p[i] & 0x7f) == 0x7f ? 0 : p[i];
        return p;
    }
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = p + (size_t)b * dtype_block_bytes(t);
        uint16_t d = rand_scale(rng), dmin = rand_scale(rng);
        if (t == DTYPE_Q8_0 || t == DTYPE_Q4_0 || t == DTYPE_Q4_K) memcpy(blk, &d, 2);
        if (t == DTYPE_Q4_K) memcpy(blk + 2, &dmin, 2);
        if (t == DTYPE_Q6_K) memcpy(blk + 208, &d, 2);
    }
    return p;
}

Test(quant, dequantize_one_equals_dequantize_row)
{
    uint64_t rng = 11;
    for (int t = 0; t < DTYPE_COUNT; t++) {
        int nb = 37, n = nb * dtype_block((enum dtype)t);
        void *src = rand_blocks((enum dtype)t, nb, &rng);
        float *y = malloc((size_t)n * 4);
        dequantize_row((enum dtype)t, src, y, n);
        for (int i = 0; i < n; i++) {
            float one = dequantize_one((enum dtype)t, src, i);
            /* bit patterns: random F32/F16/BF16 bytes hold NaNs */
            cr_assert(!memcmp(&one, &y[i], 4), "%s [%d]: one %g row %g", dtype_name(t), i, one, y[i]);
        }
        if (dtype_is_quant((enum dtype)t))
            for (int i = 0; i < n; i++) cr_assert(isfinite(y[i]), "%s [%d] = %g", dtype_name(t), i, y[i]);
        free(src), free(y);
    }
}

/* Blocks of 32 of many magnitudes (2^-10 .. 2^10), some with one large
 * outlier, some all zero. */
static void rand_row(float *x, int nb, uint64_t *rng)
{
    for (int b = 0; b < nb; b++) {
        float *xb = x + 32 * b, s = ldexpf(1.0f, (int)(rng_next(rng) % 21) - 10);
        fill_uniform(xb, 32, -s, s, rng);
        if (b % 5 == 1) xb[rng_next(rng) % 32] *= 50.0f;
        if (b % 7 == 3) memset(xb, 0, 32 * 4);
    }
}

/* The round trip's bound, per element: with d the exact block scale (Q8_0
 * amax / 127, Q4_0 max / -8) and dh its stored half,
 *   |x - x'| <= B |d| + qmax |d - dh| + 1e-4 |d|,
 * B = 1/2 (round to nearest) but for Q4_0's elements with x / d > 7.5,
 * those of the sign opposite to max and |x| > 15/16 |max|: q - 8 is clamped
 * to 7, so B = 1 (x = -max: error exactly |d|). qmax |d - dh| (qmax = 127,
 * 8) is the half rounding of d; 1e-4 |d| the float rounding of x * (1/d). */
static void check_round_trip(enum dtype t)
{
    enum { NB = 301 };
    uint64_t rng = 5 + t;
    float *x = malloc(NB * 32 * 4), *y = malloc(NB * 32 * 4);
    void *q = malloc(dtype_row_bytes(t, NB * 32));
    rand_row(x, NB, &rng);
    (t == DTYPE_Q8_0 ? quantize_row_q8_0 : quantize_row_q4_0)(x, q, NB * 32);
    dequantize_row(t, q, y, NB * 32);
    for (int b = 0; b < NB; b++) {
        const float *xb = x + 32 * b;
        int imax = 0;
        for (int j = 1; j < 32; j++)
            if (fabsf(xb[j]) > fabsf(xb[imax])) imax = j;
        uint16_t dbits;
        memcpy(&dbits, (const char *)q + b * dtype_block_bytes(t), 2);
        double d = t == DTYPE_Q8_0 ? fabs(xb[imax]) / 127.0 : xb[imax] / -8.0, dh = f16_to_f32(dbits);
        double qmax = t == DTYPE_Q8_0 ? 127 : 8;
        for (int j = 0; j < 32; j++) {
            double B = t == DTYPE_Q4_0 && d != 0 && xb[j] / d > 7.5 ? 1.0 : 0.5;
            double err = fabs((double)xb[j] - y[32 * b + j]);
            double lim = B * fabs(d) + qmax * fabs(d - dh) + 1e-4 * fabs(d);
            cr_assert(isfinite(y[32 * b + j]), "%s block %d [%d] not finite", dtype_name(t), b, j);
            cr_assert(err <= lim, "%s block %d [%d]: x %g x' %g err %g > %g (d %g)", dtype_name(t), b, j, xb[j],
                      y[32 * b + j], err, lim, d);
        }
    }
    free(x), free(y), free(q);
}

Test(quant, q8_0_round_trip_within_half_a_step) { check_round_trip(DTYPE_Q8_0); }

Test(quant, q4_0_round_trip_within_half_a_step) { check_round_trip(DTYPE_Q4_0); }

/* Q4_0's clamp: the element opposite to max, of the same magnitude, comes
 * back as 7 d rather than 8 d. */
Test(quant, q4_0_clamps_the_opposite_extreme)
{
    float x[32] = {0}, y[32];
    struct blk_q4_0 q;
    x[3] = -2.0f, x[9] = 2.0f; /* max = x[3], d = 0.25 */
    quantize_row_q4_0(x, &q, 32);
    dequantize_row(DTYPE_Q4_0, &q, y, 32);
    cr_assert_eq(f16_to_f32(q.d), 0.25f);
    cr_assert_eq(y[3], -2.0f);
    cr_assert_eq(y[9], 1.75f);
}

Test(quant, zero_blocks)
{
    float x[64] = {0}, y[256];
    struct blk_q8_0 q8[2];
    struct blk_q4_0 q4[2];
    quantize_row_q8_0(x, q8, 64);
    quantize_row_q4_0(x, q4, 64);
    for (int b = 0; b < 2; b++) {
        cr_assert_eq(f16_to_f32(q8[b].d), 0.0f);
        cr_assert_eq(f16_to_f32(q4[b].d), 0.0f);
        for (int j = 0; j < 32; j++) cr_assert_eq(q8[b].qs[j], 0);
        for (int j = 0; j < 16; j++) cr_assert_eq(q4[b].qs[j], 0x88);
    }
    dequantize_row(DTYPE_Q8_0, q8, y, 64);
    for (int i = 0; i < 64; i++) cr_assert_eq(y[i], 0.0f);
    dequantize_row(DTYPE_Q4_0, q4, y, 64);
    for (int i = 0; i < 64; i++) cr_assert_eq(y[i], 0.0f);
    /* all-zero bytes of every type decode to zeros */
    static const uint8_t zero[256 * 4];
    for (int t = 0; t < DTYPE_COUNT; t++) {
        int n = dtype_block((enum dtype)t) == 1 ? 64 : dtype_block((enum dtype)t);
        dequantize_row((enum dtype)t, zero, y, n);
        for (int i = 0; i < n; i++) {
            cr_assert_eq(y[i], 0.0f, "%s [%d]", dtype_name(t), i);
            cr_assert_eq(dequantize_one((enum dtype)t, zero, i), 0.0f);
        }
    }
}

/* Known values: one block of each K type, decoded by hand. */
Test(quant, k_blocks_known_values)
{
    struct blk_q4_k k4 = {.d = f32_to_f16(0.5f), .dmin = f32_to_f16(0.25f)};
    k4.scales[1] = 3;     /* sc of group 1 */
    k4.scales[5] = 2;     /* m of group 1 */
    k4.scales[8] = 0x45;  /* group 4: sc low 5, m low 4 */
    k4.scales[0] = 0x40;  /* group 4: sc high bits 01 -> 16 + 5 = 21 */
    k4.qs[7] = 0x9c;      /* group 0 [7] = 12, group 1 [7] = 9 */
    k4.qs[64 + 2] = 0x0a; /* group 4 [2] = 10 */
    cr_assert_eq(dequantize_one(DTYPE_Q4_K, &k4, 32 + 7), 0.5f * 3 * 9 - 0.25f * 2);
    cr_assert_eq(dequantize_one(DTYPE_Q4_K, &k4, 128 + 2), 0.5f * 21 * 10 - 0.25f * 4);
    cr_assert_eq(dequantize_one(DTYPE_Q4_K, &k4, 7), 0.0f); /* group 0: sc 0, m 0 */

    struct blk_q6_k k6 = {.d = f32_to_f16(0.125f)};
    for (int g = 0; g < 16; g++) k6.scales[g] = (int8_t)(g - 8);
    /* element 128 + 64 + 5: half 1, quarter 2, l 5: high nibble of
     * ql[64 + 5], bits 4-5 of qh[32 + 5]; scale 12 - 8 */
    k6.ql[64 + 5] = 0x70;
    k6.qh[32 + 5] = 0x20;
    cr_assert_eq(dequantize_one(DTYPE_Q6_K, &k6, 197), 0.125f * 4 * ((7 | (2 << 4)) - 32));
    float y[256];
    dequantize_row(DTYPE_Q6_K, &k6, y, 256);
    cr_assert_eq(y[197], 0.125f * 4 * 7);
}

/* The fp8 KV cache's byte (e4m3fn): every code decodes and encodes back;
 * rounding to nearest even at ties (subnormal and normal), saturation at
 * 448, signed zero, NaN. The CUDA conversion is checked against these in
 * tests/emu (kv_write). */
Test(quant, f8_e4m3_conversions)
{
    for (int c = 0; c < 256; c++) {
        float f = f8e4m3_to_f32((uint8_t)c);
        if ((c & 0x7f) == 0x7f) {
            cr_assert(isnan(f), "code %02x", c);
            continue;
        }
        cr_assert_eq(f32_to_f8e4m3(f), c, "code %02x (%g)", c, f);
    }
    cr_assert_eq(f8e4m3_to_f32(0x7e), 448.0f);
    cr_assert_eq(f8e4m3_to_f32(0x01), 0x1p-9f);
    static const float in[] = {0x1p-10f, 1.5f * 0x1p-9f, 1.0625f, 1.1875f, 248.0f, 17.0f, 463.0f, 464.0f, 1e9f,
                               INFINITY, -0.0f, -3.3f};
    static const float want[] = {0.0f, 0x1p-8f, 1.0f, 1.25f, 256.0f, 16.0f, 448.0f, 448.0f, 448.0f, 448.0f, -0.0f,
                                 -3.25f};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        float got = f8e4m3_to_f32(f32_to_f8e4m3(in[i]));
        cr_assert(got == want[i] && signbit(got) == signbit(want[i]), "%g -> %g, want %g", in[i], got, want[i]);
    }
    cr_assert_eq(f32_to_f8e4m3(NAN) & 0x7f, 0x7f);
}

/* --quantization fp8's rows: the scale is max |x| / 448, and every value
 * comes back within half a step of e4m3 (2^-4 relative, 2^-10 of the scale
 * below the normal range). */
Test(quant, f8_rows_round_trip)
{
    enum { N = 256 };
    uint64_t rng = 9;
    float x[N], y[N];
    uint8_t q[F8_ROWS_HEAD + N];
    fill_uniform(x, N, -3, 3, &rng);
    x[7] = 1e-4f, x[8] = -250.0f; /* a tiny value, and the row's largest */
    quantize_row_f8_rows(x, q, N);
    float d;
    memcpy(&d, q, 4);
    cr_assert_eq(d, 250.0f / 448.0f);
    cr_assert_eq(dtype_row_bytes(DTYPE_F8_ROWS, N), sizeof(q));
    for (int i = 4; i < F8_ROWS_HEAD; i++) cr_assert_eq(q[i], 0, "the head after the scale is zeros");
    dequantize_row(DTYPE_F8_ROWS, q, y, N);
    for (int i = 0; i < N; i++) {
        double lim = fmax(fabs(x[i]) * 0x1p-4, d * 0x1p-10) * (1 + 1e-6);
        cr_assert_leq(fabs((double)x[i] - y[i]), lim, "[%d] %g -> %g", i, x[i], y[i]);
        cr_assert_eq(dequantize_one(DTYPE_F8_ROWS, q, i), y[i]);
    }
    cr_assert_eq(y[8], -250.0f);
    float zeros[32] = {0}, back[32];
    quantize_row_f8_rows(zeros, q, 32);
    dequantize_row(DTYPE_F8_ROWS, q, back, 32);
    for (int i = 0; i < 32; i++) cr_assert_eq(back[i], 0.0f);
}
