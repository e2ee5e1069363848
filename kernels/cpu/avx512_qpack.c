/* avx512_qpack.c: packed Q8_0 and Q4_0 weights and their AVX-512 VNNI matmul
 * (kernels.h, "Packed quantized weights").
 *
 * A group of 16 rows is nb = K / 32 blocks of quants, then the blocks' scales:
 *   quants, block b: Q8_0 8 x 64 bytes, vector j lane r = row r's
 *            qs[4j .. 4j+3] + 128 (as u8, for vpdpbusd's u8 x s8);
 *            Q4_0 4 x 64 bytes, vector j lane r = row r's qs[4j .. 4j+3] as
 *            ggml stores them: the low nibbles are elements 4j.., the high
 *            ones 16 + 4j.., so one load gives two vectors (and, shift+and);
 *   scales, block b: the 16 rows' f16 d (32 bytes; f32 would add 6% / 11% to
 *            the bytes streamed at T = 1, one vcvtph2ps a block is cheaper).
 * Each int32 lane of vpdpbusd is one row, against 4 activation bytes
 * broadcast (vpbroadcastd from memory: a load, no ALU uop), so nothing is
 * reduced across lanes. The
 * u8 bias (128 or 8 per weight) times the block's activation sum is taken
 * off by starting each block's int sum at -bias * asum, precomputed per
 * token and block from qact's sum16. Per block and token: 8 vpdpbusd, one
 * cvtdq2ps, one mul (row scales x activation scale) and one FMA; a tile of
 * RT tokens reuses each loaded (Q4_0: unpacked) weight vector RT times.
 * Measured, one thread, weights in L2, K = 2048: T >= 8 about 170 G
 * MACs/s (unpacked: 54), 90% of what those 11 uops allow at two vpdpbusd
 * a cycle; T = 1 Q8_0 70-100 GB/s (it moves with the loop's alignment),
 * Q4_0 50. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "../quant.h"

#define QAVX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

_Static_assert(QPACK_ROWS == 16, "a group is one zmm of int32 lanes");

/* Bytes of a group's quants per block. */
static size_t quant_bytes(enum dtype wt) { return wt == DTYPE_Q8_0 ? 512 : 256; }

size_t qpack_group_bytes_q8q4(enum dtype wt, int K)
{
    if (wt != DTYPE_Q8_0 && wt != DTYPE_Q4_0) return 0;
    size_t nb = (size_t)K / 32;
    return (nb * (quant_bytes(wt) + 2 * QPACK_ROWS) + 63) / 64 * 64; /* groups stay 64-byte aligned */
}

void qpack_q8q4(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1)
{
    bool q8 = wt == DTYPE_Q8_0;
    int nb = K / 32, nv = q8 ? 8 : 4; /* 4-byte pieces of a row's block */
    size_t gb = qpack_group_bytes_q8q4(wt, K), qb = quant_bytes(wt), wrow = dtype_row_bytes(wt, K);
    size_t bb = dtype_block_bytes(wt);
    uint32_t bias = q8 ? 0x80808080u : 0, zero = q8 ? 0x80808080u : 0x88888888u; /* u8 encodings of 0 */
    for (int g = g0; g < g1; g++) {
        uint8_t *q = (uint8_t *)dst + (size_t)g * gb;
        uint8_t *sc = q + (size_t)nb * qb;
        memset(sc, 0, gb - (size_t)nb * qb); /* rows past N: scale 0; the padding */
        for (int r = 0; r < QPACK_ROWS; r++) {
            int n = g * QPACK_ROWS + r;
            const uint8_t *row = (const uint8_t *)w + (size_t)n * wrow;
            for (int b = 0; b < nb; b++) {
                uint8_t *qd = q + (size_t)b * qb + 4 * r;
                for (int j = 0; j < nv; j++) {
                    uint32_t v = zero;
                    if (n < N) {
                        memcpy(&v, row + (size_t)b * bb + 2 + 4 * j, 4);
                        v ^= bias;
                    }
                    memcpy(qd + 64 * j, &v, 4);
                }
                if (n < N) memcpy(sc + (size_t)b * 2 * QPACK_ROWS + 2 * r, row + (size_t)b * bb, 2);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// the matmul

/* The token side: qact rows, and each token's per-block int sum starts. */
struct qp_act {
    const char *a;     /* token 0's qact row */
    size_t arow;       /* bytes of a qact row */
    const int32_t *s0; /* [T][nb]: -bias * (sum of the block's 32 activations) */
    int nb, K;
};

/* The largest token tile: 8 float sums beside 8 weight vectors and the
 * scales (12 and 16 measured the same). */
enum { RT_MAX = 8 };

/* Bytes ahead of the quants read to prefetch (4096 beat 1024, 2048, 8192). */
#define PREFETCH 4096

/* Block b's 8 weight vectors (u8), vector j against activations 4j .. 4j+3. */
INLINE QAVX void load_w(bool q8, const char *q, __m512i w[8])
{
    if (q8) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) w[j] = _mm512_loadu_si512(q + 64 * j);
        return;
    }
    const __m512i m = _mm512_set1_epi8(15);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512i v = _mm512_loadu_si512(q + 64 * j);
        w[j] = _mm512_and_si512(v, m);
        w[j + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m);
    }
}

INLINE int32_t load_i32(const char *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Block b of the group at gq (scales at gs) times tokens t0 .. t0+RT, into acc. */
INLINE QAVX void block_tile(int RT, bool q8, const char *gq, const char *gs, const struct qp_act *p, int t0, int b,
                            __m512 *acc)
{
    size_t qb = q8 ? 512 : 256;
    __m512i w[8];
    /* the first tile reads the group from DRAM, where the hardware
     * prefetcher alone left 10-40% (T = 1 and 16, one thread); past the
     * end it is harmless */
    if (t0 == 0)
        for (size_t l = 0; l < qb; l += 64) _mm_prefetch(gq + (size_t)b * qb + PREFETCH + l, _MM_HINT_T0);
    load_w(q8, gq + (size_t)b * qb, w);
    __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(gs + (size_t)b * 32)));
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) {
        const char *a = p->a + (size_t)(t0 + c) * p->arow;
        const char *ab = a + (size_t)b * 32;
        __m512i s = _mm512_set1_epi32(p->s0[(size_t)(t0 + c) * p->nb + b]);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) s = _mm512_dpbusd_epi32(s, w[j], _mm512_set1_epi32(load_i32(ab + 4 * j)));
        __m512 da = _mm512_set1_ps(((const float *)(a + p->K))[b]);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, da), acc[c]);
    }
}

/* y[t0 .. t0+RT, n .. n+rows) (+)= the group at gq (scales at gs) times
 * tokens t0 .. t0+RT. */
INLINE QAVX void group_tile(int RT, bool q8, float *y, int ldy, const char *gq, const char *gs,
                            const struct qp_act *p, int t0, int n, int rows, bool accumulate)
{
    __m512 acc[RT_MAX], acc1[1] = {_mm512_setzero_ps()};
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) acc[c] = _mm512_setzero_ps();
    int b = 0;
    /* one token: two blocks a step, two sums (a chain of FMAs a block was
     * as long as the block's work) */
    if (RT == 1)
        for (; b + 2 <= p->nb; b += 2) {
            block_tile(1, q8, gq, gs, p, t0, b, acc);
            block_tile(1, q8, gq, gs, p, t0, b + 1, acc1);
        }
    for (; b < p->nb; b++) block_tile(RT, q8, gq, gs, p, t0, b, acc);
    acc[0] = _mm512_add_ps(acc[0], acc1[0]);
    __mmask16 m = (__mmask16)((1u << rows) - 1);
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) {
        float *yt = y + (size_t)(t0 + c) * ldy + n;
        __m512 v = accumulate ? _mm512_add_ps(acc[c], _mm512_maskz_loadu_ps(m, yt)) : acc[c];
        _mm512_mask_storeu_ps(yt, m, v);
    }
}

/* One group against all T tokens, in evenly sized tiles of at most RT_MAX. */
INLINE QAVX void group_tokens(bool q8, float *y, int ldy, const char *gq, const char *gs, const struct qp_act *p,
                              int T, int n, int rows, bool accumulate)
{
    int n_tiles = (T + RT_MAX - 1) / RT_MAX;
    for (int i = 0, t = 0; i < n_tiles; i++) {
        int rt = (T - t) / (n_tiles - i);
        switch (rt) {
#define CASE(R) case R: group_tile(R, q8, y, ldy, gq, gs, p, t, n, rows, accumulate); break;
        CASE(8) CASE(7) CASE(6) CASE(5) CASE(4) CASE(3) CASE(2)
#undef CASE
        default: group_tile(1, q8, y, ldy, gq, gs, p, t, n, rows, accumulate); break;
        }
        t += rt;
    }
}

/* s0[t][b] = -bias * (sum of token t's activations in block b), from the
 * sum16 pairs by one vpmaddwd per 16 blocks (the tasks of a matmul each
 * redo this: scalar, it cost up to 10% of a 16-row task at T = 128). */
INLINE QAVX void block_starts(int32_t *s0, const char *xq, size_t arow, int T, int K, int bias)
{
    int nb = K / 32;
    const __m512i m = _mm512_set1_epi16((short)-bias);
    for (int t = 0; t < T; t++) {
        const char *s16 = xq + (size_t)t * arow + K + sizeof(float) * (size_t)nb;
        for (int b = 0; b < nb; b += 16) {
            int n = nb - b < 16 ? nb - b : 16;
            __m512i v = _mm512_maskz_loadu_epi16((__mmask32)(((uint64_t)1 << (2 * n)) - 1), s16 + 4 * (size_t)b);
            _mm512_mask_storeu_epi32(s0 + (size_t)t * nb + b, (__mmask16)((1u << n) - 1), _mm512_madd_epi16(v, m));
        }
    }
}

INLINE QAVX void matmul_qp_typed(bool q8, float *y, int ldy, const void *xq, const void *wp, int T, int K,
                                 int n0, int n1, bool accumulate)
{
    enum dtype wt = q8 ? DTYPE_Q8_0 : DTYPE_Q4_0;
    int nb = K / 32;
    size_t gb = qpack_group_bytes_q8q4(wt, K), arow = qact_row_bytes(wt, K);
    int32_t *s0 = malloc(sizeof(int32_t) * (size_t)T * (size_t)nb);
    if (!s0) abort(); /* a kernel has no error path; a few KiB */
    block_starts(s0, xq, arow, T, K, q8 ? 128 : 8);
    struct qp_act p = {xq, arow, s0, nb, K};
    for (int n = n0; n < n1; n += QPACK_ROWS) {
        const char *gq = (const char *)wp + (size_t)(n / QPACK_ROWS) * gb;
        int rows = n1 - n < QPACK_ROWS ? n1 - n : QPACK_ROWS;
        group_tokens(q8, y, ldy, gq, gq + (size_t)nb * quant_bytes(wt), &p, T, n, rows, accumulate);
    }
    free(s0);
}

QAVX void matmul_qp_q8q4_avx512(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
                                int T, int K, int n0, int n1, bool accumulate)
{
    if (T <= 0 || n0 >= n1) return;
    if (wt == DTYPE_Q8_0) matmul_qp_typed(true, y, ldy, xq, wp, T, K, n0, n1, accumulate);
    else if (wt == DTYPE_Q4_0) matmul_qp_typed(false, y, ldy, xq, wp, T, K, n0, n1, accumulate);
    else abort();
}
