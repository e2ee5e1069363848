/* avx512_quant.c: the quantized matmul with AVX-512 VNNI (kernels.h,
 * "Quantized weights"): weights as GGUF lays them out (no repacking), int8
 * activations from qact_quantize.
 *
 * Integer dot products with vpdpbusd (u8 x s8, 4 products a lane) or
 * vpmaddubsw + vpdpwssd (when an integer scale multiplies each group), one
 * int -> float conversion and FMA per block and (row, token) pair:
 *   Q8_0: 2 blocks a step; weights + 128 as u8 (xor 0x80), the 128 * sum(a)
 *         it adds taken off by starting the int sum at -128 * (sums of 4 a),
 *         computed once per token and step (vpdpbusd of 0x80 bytes with a);
 *   Q4_0: 2 blocks a step; nibbles as u8, -8 * sum(a) the same way;
 *   Q4_K: a super-block a step; 4 x (vpmaddubsw nibbles x a, vpdpwssd with
 *         the 6-bit scales as int16), the mins' sum_j m_j asum_j from sum16
 *         by one vpmaddwd, then da * (d * I - dmin * M) in floats;
 *   Q6_K: a super-block a step; the 6-bit q (0..63) rebuilt from ql/qh, then
 *         as Q4_K with the int8 scales; -32 * sum_i sc_i asum16_i folded into
 *         the same int sum by one vpdpwssd of -32 * sc with sum16.
 * Tiles of RN weight rows x RT tokens keep float (and int) sums in
 * registers; a single token reads K-quant rows one after another, each whole
 * (one sequential stream, as matmul_avx512's GEMV does), Q8_0/Q4_0 rows four
 * at a time (the token's side of a step shared by the four). Compiled with
 * per-function target attributes, like avx512.c. */
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "../quant.h"

#define QAVX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

// ---------------------------------------------------------------------------
// quantized activations

QAVX void qact_quantize_avx512(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1)
{
    int G = qact_group(wt);
    size_t rb = qact_row_bytes(wt, K);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * ldx;
        char *row = (char *)xq + (size_t)t * rb;
        float *d = (float *)(row + K);
        int16_t *s16 = (int16_t *)(row + K + sizeof(float) * (size_t)(K / G));
        for (int g = 0; g < K / G; g++) {
            const float *xg = xt + (size_t)g * G;
            __m512 m = _mm512_setzero_ps();
            for (int i = 0; i < G; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(xg + i)));
            float dg = _mm512_reduce_max_ps(m) / 127.0f;
            if (dg < FLT_MIN) dg = 0.0f;
            __m512 id = _mm512_set1_ps(dg > 0.0f ? 1.0f / dg : 0.0f);
            d[g] = dg;
            for (int i = 0; i < G; i += 16) {
                __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + i), id));
                _mm_storeu_si128((__m128i *)(row + g * G + i), _mm512_cvtsepi32_epi8(q));
                s16[(g * G + i) / 16] = (int16_t)_mm512_reduce_add_epi32(q);
            }
        }
        char *end = (char *)(s16 + K / 16);
        memset(end, 0, (size_t)(row + rb - end));
    }
}

// ---------------------------------------------------------------------------
// helpers

/* Two half floats at p and p + gap bytes -> [h0 x 8, h1 x 8] as floats. */
INLINE QAVX __m512 two_halves(const char *p, int gap)
{
    uint16_t h0, h1;
    memcpy(&h0, p, 2);
    memcpy(&h1, p + gap, 2);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)h0)),
                                        _mm_set1_epi16((short)h1), 1);
    return _mm512_cvtph_ps(v);
}

/* Two floats d[0], d[1] -> [d0 x 8, d1 x 8]. */
INLINE QAVX __m512 two_floats(const float *d)
{
    __m512 v = _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)d)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), v);
}

/* [sum(a), sum(b), sum(c), sum(d)] (avx512.c's reduce4) */
INLINE QAVX __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4e));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xb1));
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0, 0, 0), s));
}

/* The operands of one tile: RN weight rows from n, RT tokens from t. */
struct qtile {
    const char *w;    /* row n */
    size_t wrow;      /* bytes of a weight row */
    const char *a;    /* token t's quantized row */
    size_t arow;      /* bytes of a quantized activation row */
    int K;
};

INLINE const float *act_d(const char *a, int K) { return (const float *)(a + K); }
INLINE const int16_t *act_s16(const char *a, int K, int G)
{
    return (const int16_t *)(a + K + sizeof(float) * (size_t)(K / G));
}

// ---------------------------------------------------------------------------
// Q8_0 and Q4_0: two blocks of 32 a step (one in a K tail of an odd count)

/* Row r's weights of blocks b, b+1 as u8 (Q8_0: + 128) and [dw_b x 8, dw_b+1 x 8]. */
INLINE QAVX void w_q8_0(const char *row, int b, bool two, __m512i *wu, __m512 *dw)
{
    const char *blk = row + 34 * (size_t)b;
    __m512i q = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2)));
    if (two) q = _mm512_inserti64x4(q, _mm256_loadu_si256((const __m256i *)(blk + 36)), 1);
    *wu = _mm512_maskz_xor_epi32(two ? 0xffff : 0x00ff, q, _mm512_set1_epi8((char)0x80));
    *dw = two_halves(blk, two ? 34 : 0);
}

/* Q4_0: [lo(qs_b), hi(qs_b), lo(qs_b+1), hi(qs_b+1)], 16 bytes each, in the
 * order of the block's elements. */
INLINE QAVX void w_q4_0(const char *row, int b, bool two, __m512i *wu, __m512 *dw)
{
    const char *blk = row + 18 * (size_t)b;
    __m128i q0 = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m128i q1 = two ? _mm_loadu_si128((const __m128i *)(blk + 20)) : _mm_setzero_si128();
    __m512i q = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1));
    q = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), q);
    q = _mm512_mask_srli_epi16(q, 0xff00ff00, q, 4);
    *wu = _mm512_and_si512(q, _mm512_set1_epi8(15));
    *dw = two_halves(blk, two ? 18 : 0);
}

/* Token's activations of blocks b, b+1, [da_b x 8, da_b+1 x 8], and the int
 * sums' start: -off * (sums of 4 activations), off the u8 bias of the weights. */
INLINE QAVX void a_b32(const char *a, const float *d, int b, bool two, char off, __m512i *av, __m512 *da,
                       __m512i *start)
{
    const char *p = a + 32 * (size_t)b;
    *av = two ? _mm512_loadu_si512(p) : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)p));
    *da = two ? two_floats(d + b) : _mm512_set1_ps(d[b]);
    __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(off), *av);
    *start = _mm512_sub_epi32(_mm512_setzero_si512(), c);
}

INLINE QAVX void step_b32(int RN, int RT, bool q8, const struct qtile *q, int b, bool two, __m512 acc[4][6])
{
    __m512i wu[4];
    __m512 dw[4];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        if (q8) w_q8_0(q->w + r * q->wrow, b, two, &wu[r], &dw[r]);
        else w_q4_0(q->w + r * q->wrow, b, two, &wu[r], &dw[r]);
    }
#pragma GCC unroll 6
    for (int c = 0; c < RT; c++) {
        const char *a = q->a + c * q->arow;
        __m512i av, start;
        __m512 da;
        a_b32(a, act_d(a, q->K), b, two, q8 ? (char)0x80 : 8, &av, &da, &start);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            __m512i i = _mm512_dpbusd_epi32(start, wu[r], av);
            acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(dw[r], da), acc[r][c]);
        }
    }
}

INLINE QAVX void tile_b32(int RN, int RT, bool q8, const struct qtile *q, __m512 acc[4][6])
{
    int nb = q->K / 32, b = 0;
    for (; b + 2 <= nb; b += 2) step_b32(RN, RT, q8, q, b, true, acc);
    if (b < nb) step_b32(RN, RT, q8, q, b, false, acc);
}

// ---------------------------------------------------------------------------
// Q4_K and Q6_K: a super-block of 256 a step, 4 chunks of 64

/* vpermw indices: lane p of chunk i takes int16 scale 2 i + p / 16 (Q4_K's
 * groups of 32) or 4 i + p / 8 (Q6_K's groups of 16). */
INLINE QAVX __m512i scale_idx(int i, int per)
{
    static const int16_t base[32] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const int16_t base8[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    __m512i v = _mm512_loadu_si512(per == 32 ? base : base8);
    return _mm512_add_epi16(v, _mm512_set1_epi16((short)(per == 32 ? 2 * i : 4 * i)));
}

/* One row's super-block, decoded for the integer steps: q[4] (u8, in element
 * order), sc[4] (int16 scale of each int16 lane of vpmaddubsw's output), and
 * for the sum16 term: Q4_K's m (int16 m_{p/2}, lanes 0..15), Q6_K's -32 sc. */
struct ksb {
    __m512i q[4], sc[4], corr;
    __m512 d, dmin;
};

INLINE QAVX void w_q4_k(const char *row, int s, struct ksb *k)
{
    const struct blk_q4_k *b = (const struct blk_q4_k *)(row + 144 * (size_t)s);
    uint32_t u[4];
    memcpy(u, b->scales, 12);
    /* ggml's unpacking: u[0..1] the 8 scales, u[2..3] the 8 mins, one byte each */
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    uint32_t mins_lo = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = mins_lo;
    u[0] &= m1;
    __m128i sm = _mm_loadu_si128((const __m128i *)u);
    __m512i sc16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(sm));        /* lanes 0..7 sc, 8..15 m */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * i)));
        v = _mm512_mask_srli_epi16(v, 0xffff0000, v, 4);
        k->q[i] = _mm512_and_si512(v, _mm512_set1_epi8(15));
        k->sc[i] = _mm512_permutexvar_epi16(scale_idx(i, 32), sc16);
    }
    /* lane p < 16: m_{p/2} (sum16[p] belongs to group p/2), the rest 0 */
    __m512i mi = _mm512_setr_epi32(0x00080008, 0x00090009, 0x000a000a, 0x000b000b, 0x000c000c, 0x000d000d,
                                   0x000e000e, 0x000f000f, 0, 0, 0, 0, 0, 0, 0, 0);
    k->corr = _mm512_maskz_permutexvar_epi16(0x0000ffff, mi, sc16);
    k->d = _mm512_set1_ps(_cvtsh_ss(b->d));
    k->dmin = _mm512_set1_ps(-_cvtsh_ss(b->dmin));
}

INLINE QAVX void w_q6_k(const char *row, int s, struct ksb *k)
{
    const struct blk_q6_k *b = (const struct blk_q6_k *)(row + 210 * (size_t)s);
    __m512i lo4 = _mm512_set1_epi8(15), hi2 = _mm512_set1_epi8(0x30);
    /* bits 4..5 of q: (qh << 4), (qh << 2), qh, (qh >> 2), masked 0x30, for the
     * four quarters of each half */
    __m512i sl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    __m512i sr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512(b->ql + 64 * h);
        __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
        __m512i h0 = _mm512_and_si512(_mm512_sllv_epi16(qh, sl), hi2);
        __m512i h1 = _mm512_and_si512(_mm512_srlv_epi16(qh, sr), hi2);
        k->q[2 * h] = _mm512_ternarylogic_epi32(l, lo4, h0, 0xea); /* (l & 15) | h0 */
        k->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(l, 4), lo4, h1, 0xea);
    }
    __m512i sc16 = _mm512_cvtepi8_epi16(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b->scales)));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) k->sc[i] = _mm512_permutexvar_epi16(scale_idx(i, 16), sc16);
    k->corr = _mm512_maskz_mullo_epi16(0x0000ffff, sc16, _mm512_set1_epi16(-32));
    k->d = _mm512_set1_ps(_cvtsh_ss(b->d));
}

/* The int sum of a pair over a super-block: sum over chunks of sc * maddubs(q, a). */
INLINE QAVX __m512i isum_k(const struct ksb *k, const __m512i av[4], __m512i start)
{
    __m512i i = start;
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) i = _mm512_dpwssd_epi32(i, _mm512_maddubs_epi16(k->q[c], av[c]), k->sc[c]);
    return i;
}

INLINE QAVX void step_k(int RN, int RT, bool q4k, const struct qtile *q, int s, __m512 acc[4][6])
{
    struct ksb k[4];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        if (q4k) w_q4_k(q->w + r * q->wrow, s, &k[r]);
        else w_q6_k(q->w + r * q->wrow, s, &k[r]);
    }
#pragma GCC unroll 6
    for (int c = 0; c < RT; c++) {
        const char *a = q->a + c * q->arow;
        const char *as = a + 256 * (size_t)s;
        __m512i av[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) av[i] = _mm512_loadu_si512(as + 64 * i);
        __m512i s16 = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(act_s16(a, q->K, 256) + 16 * s)));
        __m512 da = _mm512_set1_ps(act_d(a, q->K)[s]);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            if (q4k) {
                __m512 fi = _mm512_cvtepi32_ps(isum_k(&k[r], av, _mm512_setzero_si512()));
                __m512 fm = _mm512_cvtepi32_ps(_mm512_madd_epi16(k[r].corr, s16));
                __m512 v = _mm512_fmadd_ps(fi, k[r].d, _mm512_mul_ps(fm, k[r].dmin));
                acc[r][c] = _mm512_fmadd_ps(v, da, acc[r][c]);
            } else {
                __m512i i = isum_k(&k[r], av, _mm512_dpwssd_epi32(_mm512_setzero_si512(), k[r].corr, s16));
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(k[r].d, da), acc[r][c]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// tiles, rows, tokens

INLINE QAVX void tile_acc(int RN, int RT, enum dtype wt, const struct qtile *q, __m512 acc[4][6])
{
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 6
        for (int c = 0; c < RT; c++) acc[r][c] = _mm512_setzero_ps();
    switch (wt) {
    case DTYPE_Q8_0: tile_b32(RN, RT, true, q, acc); break;
    case DTYPE_Q4_0: tile_b32(RN, RT, false, q, acc); break;
    case DTYPE_Q4_K:
        for (int s = 0; s < q->K / 256; s++) step_k(RN, RT, true, q, s, acc);
        break;
    case DTYPE_Q6_K:
        for (int s = 0; s < q->K / 256; s++) step_k(RN, RT, false, q, s, acc);
        break;
    default: break;
    }
}

INLINE void store1(float *y, float v, bool accumulate) { *y = accumulate ? *y + v : v; }

/* y[t + c, n + r] for r < RN, c < RT. */
INLINE QAVX void tile(int RN, int RT, enum dtype wt, float *y, int ldy, const struct qtile *q, int n, int t,
                      bool accumulate)
{
    __m512 acc[4][6];
    tile_acc(RN, RT, wt, q, acc);
#pragma GCC unroll 6
    for (int c = 0; c < RT; c++) {
        float *yt = y + (size_t)(t + c) * ldy + n;
        if (RN == 4) {
            __m128 v = reduce4(acc[0][c], acc[1][c], acc[2][c], acc[3][c]);
            _mm_storeu_ps(yt, accumulate ? _mm_add_ps(v, _mm_loadu_ps(yt)) : v);
            continue;
        }
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) store1(yt + r, _mm512_reduce_add_ps(acc[r][c]), accumulate);
    }
}

/* The register tile of each type: rows x tokens (the float sums, and for the
 * K-quants the super-block's decoded rows, within 32 registers). */
enum { RN_B32 = 4, RT_B32 = 4, RN_K = 2, RT_K = 4 };

/* All T tokens against rows n .. n + RN, in evenly sized tiles of at most RTM. */
INLINE QAVX void tokens(int RN, int RTM, enum dtype wt, float *y, int ldy, struct qtile q, int T, int n,
                        bool accumulate)
{
    int n_tiles = (T + RTM - 1) / RTM;
    const char *a0 = q.a;
    for (int i = 0, t = 0; i < n_tiles; i++) {
        int rt = (T - t) / (n_tiles - i);
        q.a = a0 + (size_t)t * q.arow;
        switch (rt) {
        case 6: tile(RN, 6, wt, y, ldy, &q, n, t, accumulate); break;
        case 5: tile(RN, 5, wt, y, ldy, &q, n, t, accumulate); break;
        case 4: tile(RN, 4, wt, y, ldy, &q, n, t, accumulate); break;
        case 3: tile(RN, 3, wt, y, ldy, &q, n, t, accumulate); break;
        case 2: tile(RN, 2, wt, y, ldy, &q, n, t, accumulate); break;
        default: tile(RN, 1, wt, y, ldy, &q, n, t, accumulate); break;
        }
        t += rt;
    }
}

/* One token: rows n .. n + 4 one after another, each read whole. */
INLINE QAVX void gemv4(enum dtype wt, float *y, const struct qtile *q0, int n, bool accumulate)
{
    __m512 acc[4][6], sum[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        struct qtile q = *q0;
        q.w += (size_t)r * q.wrow;
        tile_acc(1, 1, wt, &q, acc);
        sum[r] = acc[0][0];
    }
    __m128 v = reduce4(sum[0], sum[1], sum[2], sum[3]);
    _mm_storeu_ps(y + n, accumulate ? _mm_add_ps(v, _mm_loadu_ps(y + n)) : v);
}

INLINE QAVX void matmul_q_typed(enum dtype wt, float *y, int ldy, const void *xq, const void *w, int T, int K,
                                int n0, int n1, bool accumulate)
{
    struct qtile q = {NULL, dtype_row_bytes(wt, K), xq, qact_row_bytes(wt, K), K};
    bool b32 = wt == DTYPE_Q8_0 || wt == DTYPE_Q4_0;
    int n = n0;
    /* one token: K-quant rows one after another; Q8_0/Q4_0 rows in fours,
     * sharing the token's side (a, da, the offsets' sums): measured in L2,
     * one thread, K = 2048: Q8_0 26.6 -> 32.9 GB/s, Q4_0 12.7 -> 15.2, while
     * Q4_K and Q6_K lose 5-8% interleaved */
    if (T == 1 && !b32)
        for (; n + 4 <= n1; n += 4) {
            q.w = (const char *)w + (size_t)n * q.wrow;
            gemv4(wt, y, &q, n, accumulate);
        }
    if (b32)
        for (; n + RN_B32 <= n1; n += RN_B32) {
            q.w = (const char *)w + (size_t)n * q.wrow;
            tokens(RN_B32, RT_B32, wt, y, ldy, q, T, n, accumulate);
        }
    else
        for (; n + RN_K <= n1; n += RN_K) {
            q.w = (const char *)w + (size_t)n * q.wrow;
            tokens(RN_K, RT_K, wt, y, ldy, q, T, n, accumulate);
        }
    for (; n < n1; n++) {
        q.w = (const char *)w + (size_t)n * q.wrow;
        tokens(1, 4, wt, y, ldy, q, T, n, accumulate);
    }
}

QAVX void matmul_q_avx512(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                          int T, int K, int n0, int n1, bool accumulate)
{
    switch (wt) {
    case DTYPE_Q8_0: matmul_q_typed(DTYPE_Q8_0, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q4_0: matmul_q_typed(DTYPE_Q4_0, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q4_K: matmul_q_typed(DTYPE_Q4_K, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q6_K: matmul_q_typed(DTYPE_Q6_K, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    default: matmul_q_ref(y, ldy, xq, w, wt, T, K, n0, n1, accumulate); break;
    }
}
