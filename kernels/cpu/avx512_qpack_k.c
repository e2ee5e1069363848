/* avx512_qpack_k.c: packed Q4_K and Q6_K weights and their AVX-512 VNNI matmul
 * (kernels.h, "Packed quantized weights").
 *
 * A group of 16 rows is K / 256 chunks, one per super-block, each a multiple
 * of 64 bytes. Quant vectors are 64 bytes, lane r (int32) holding 4 bytes of
 * row r: every vpdpbusd multiplies 16 rows by one broadcast of 4 activation
 * bytes, and its lanes are the rows of y (no horizontal sums anywhere).
 *   Q4_K chunk (2368 B): qs [4 i][8 v][16 r][4] (ggml's qs bytes 32 i + 4 v
 *     .. + 3: packing is a transpose of 4-byte words), sc and m [8 j][16 r]
 *     u8 (unpacked 6-bit), d and dmin [16 r] f16. A vector's low nibbles
 *     (& 0x0f) are sub-block 2 i, its high nibbles (& 0xf0, i.e. 16 q: no
 *     shift) sub-block 2 i + 1. Per sub-block an exact int32 dot per row,
 *     times d sc_j (/ 16) in floats; M = sum_j m_j asum32_j by vpdpwssd of
 *     (m_j, m_j) with a sum16 pair; y += da * (sum - dmin * M).
 *   Q6_K chunk (3392 B): planes [2 h][8 v][3 p][16 r][4], sc [16 g][16 r]
 *     s8, d [16 r] f16, padding. ggml's 4 q of one (h, v, byte) sit at
 *     elements e, e + 32, e + 64, e + 96 (e = 128 h + 4 v + byte); planes 0..2
 *     hold the first three in their low 6 bits and the fourth's 2-bit pieces
 *     in their top 2 bits, so q0..q2 are one AND each and the fourth, read as
 *     4 q, two shifts and three bit ops (ql/qh as ggml stores them take 13
 *     ops for the four). Each group of 16's int dot starts at -32 sum16_g
 *     (the q - 32), then d sc_g (/ 4) in floats; y += da * sum.
 * Decoded weight vectors are reused by RT tokens (RT_Q4K, RT_Q6K).
 * Bounds: Q4_K |dot_j| <= 32 * 15 * 127 = 60960 (x16: 975360), |M| <= 8 * 63
 * * 4064; Q6_K |dot_g - 32 sum16_g| <= 16 * 63 * 127 + 32 * 2032 = 193040
 * (x4: 772160): int32, and exact as floats (< 2^24).
 * Rows past N are zero bytes (d = 0) and never stored. */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "../quant.h"

#define QAVX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

enum {
    Q4K_CHUNK = 2368, Q4K_SC = 2048, Q4K_M = 2176, Q4K_D = 2304, Q4K_DMIN = 2336,
    Q6K_CHUNK = 3392, Q6K_SC = 3072, Q6K_D = 3328,
};

size_t qpack_group_bytes_k(enum dtype wt, int K)
{
    size_t chunk = wt == DTYPE_Q4_K ? Q4K_CHUNK : wt == DTYPE_Q6_K ? Q6K_CHUNK : 0;
    return chunk * (size_t)(K / 256);
}

// ---------------------------------------------------------------------------
// packing (plain C, once at load)

static void pack_q4k(char *ch, const struct blk_q4_k *b, int r)
{
    for (int v = 0; v < 32; v++) memcpy(ch + (16 * v + r) * 4, b->qs + 4 * v, 4);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_scale_min(b->scales, j, &sc, &m);
        ch[Q4K_SC + 16 * j + r] = (char)sc;
        ch[Q4K_M + 16 * j + r] = (char)m;
    }
    memcpy(ch + Q4K_D + 2 * r, &b->d, 2);
    memcpy(ch + Q4K_DMIN + 2 * r, &b->dmin, 2);
}

/* Q6_K's q (0..63) of element e, as ggml's dequantize_row_q6_K. */
static int q6k_q(const struct blk_q6_k *b, int e)
{
    int h = e / 128, k = e % 128, l = k % 32, c = k / 32;
    int lo = (b->ql[64 * h + l + 32 * (c & 1)] >> (4 * (c >> 1))) & 15;
    int hi = (b->qh[32 * h + l] >> (2 * c)) & 3;
    return lo | hi << 4;
}

static void pack_q6k(char *ch, const struct blk_q6_k *b, int r)
{
    for (int h = 0; h < 2; h++)
        for (int v = 0; v < 8; v++)
            for (int i = 0; i < 4; i++) {
                int e = 128 * h + 4 * v + i, q3 = q6k_q(b, e + 96);
                char *p = ch + 192 * (8 * h + v) + 4 * r + i;
                p[0] = (char)(q6k_q(b, e) | (q3 >> 4) << 6);
                p[64] = (char)(q6k_q(b, e + 32) | ((q3 >> 2) & 3) << 6);
                p[128] = (char)(q6k_q(b, e + 64) | (q3 & 3) << 6);
            }
    for (int g = 0; g < 16; g++) ch[Q6K_SC + 16 * g + r] = (char)b->scales[g];
    memcpy(ch + Q6K_D + 2 * r, &b->d, 2);
}

void qpack_k(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1)
{
    int nsb = K / 256;
    size_t gb = qpack_group_bytes_k(wt, K), rowb = dtype_row_bytes(wt, K);
    size_t chunk = gb / (size_t)nsb;
    for (int g = g0; g < g1; g++) {
        char *grp = (char *)dst + (size_t)g * gb;
        memset(grp, 0, gb);
        for (int r = 0; r < QPACK_ROWS && QPACK_ROWS * g + r < N; r++) {
            const char *row = (const char *)w + (size_t)(QPACK_ROWS * g + r) * rowb;
            for (int s = 0; s < nsb; s++) {
                if (wt == DTYPE_Q4_K) pack_q4k(grp + s * chunk, (const struct blk_q4_k *)row + s, r);
                else pack_q6k(grp + s * chunk, (const struct blk_q6_k *)row + s, r);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// kernels: one group of 16 rows against RT tokens, float sums in registers

/* The operands of a tile: group gp, RT token rows from a (arow apart);
 * pf: prefetch the weights PREFETCH bytes ahead (the first tile of a group,
 * which reads it from DRAM). */
struct ktile {
    const char *gp;
    const char *a;
    size_t arow;
    int K;
    bool pf;
};

/* As avx512_qpack.c's: the hardware prefetcher alone left T = 1 at 73-78%
 * of the bandwidth */
#define PREFETCH 4096

INLINE void prefetch_lines(const struct ktile *q, const char *p, int lines)
{
    if (q->pf)
        for (int l = 0; l < lines; l++) _mm_prefetch(p + PREFETCH + 64 * l, _MM_HINT_T0);
}

INLINE const float *act_d(const char *a, int K) { return (const float *)(a + K); }
INLINE const int16_t *act_s16(const char *a, int K) { return (const int16_t *)(a + K + 4 * (size_t)(K / 256)); }
INLINE QAVX __m512i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* y += da * (F - dmin * M), M = sum_j m_j asum32_j for each token. */
INLINE QAVX void q4k_mins(int RT, const struct ktile *q, const char *ch, int s, const __m512 F[8], __m512 facc[8])
{
    /* vpshufb control: row r's min byte (16 bytes broadcast to each 128-bit
     * lane) into both int16 halves of lane r: (m, m) pairs for vpdpwssd */
    const __m512i mctl = _mm512_setr_epi32(
        (int)0x80008000, (int)0x80018001, (int)0x80028002, (int)0x80038003, (int)0x80048004, (int)0x80058005,
        (int)0x80068006, (int)0x80078007, (int)0x80088008, (int)0x80098009, (int)0x800a800a, (int)0x800b800b,
        (int)0x800c800c, (int)0x800d800d, (int)0x800e800e, (int)0x800f800f);
    __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + Q4K_DMIN)));
    __m512i mp[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        mp[j] = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(ch + Q4K_M + 16 * j))),
                                    mctl);
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) {
        const char *a = q->a + c * q->arow;
        const int16_t *s16 = act_s16(a, q->K) + 16 * s;
        __m512i M = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) M = _mm512_dpwssd_epi32(M, mp[j], bcast4(s16 + 2 * j));
        __m512 v = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M), dmin, F[c]);
        facc[c] = _mm512_fmadd_ps(v, _mm512_set1_ps(act_d(a, q->K)[s]), facc[c]);
    }
}

INLINE QAVX void q4k_tile(int RT, const struct ktile *q, __m512 facc[8])
{
    const __m512i lo4 = _mm512_set1_epi8(0x0f), hi4 = _mm512_set1_epi8((char)0xf0);
    int nsb = q->K / 256;
    for (int s = 0; s < nsb; s++) {
        const char *ch = q->gp + (size_t)s * Q4K_CHUNK;
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + Q4K_D)));
        __m512 d16 = _mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16));
        __m512 F[8];
#pragma GCC unroll 8
        for (int c = 0; c < RT; c++) F[c] = _mm512_setzero_ps();
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            prefetch_lines(q, ch + 512 * i, 8);
            __m512i lo[8], hi[8], lo1 = _mm512_setzero_si512(), hi1 = lo1;
#pragma GCC unroll 8
            for (int c = 0; c < RT; c++) lo[c] = hi[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                __m512i V = _mm512_loadu_si512(ch + 64 * (8 * i + v));
                __m512i wl = _mm512_and_si512(V, lo4), wh = _mm512_and_si512(V, hi4);
                if (RT == 1 && (v & 1)) { /* one token: two chains each, not one of 8 dependent vpdpbusd */
                    const char *a = q->a + 256 * (size_t)s + 64 * i + 4 * v;
                    lo1 = _mm512_dpbusd_epi32(lo1, wl, bcast4(a));
                    hi1 = _mm512_dpbusd_epi32(hi1, wh, bcast4(a + 32));
                    continue;
                }
#pragma GCC unroll 8
                for (int c = 0; c < RT; c++) {
                    const char *a = q->a + c * q->arow + 256 * (size_t)s + 64 * i + 4 * v;
                    lo[c] = _mm512_dpbusd_epi32(lo[c], wl, bcast4(a));
                    hi[c] = _mm512_dpbusd_epi32(hi[c], wh, bcast4(a + 32));
                }
            }
            if (RT == 1) {
                lo[0] = _mm512_add_epi32(lo[0], lo1);
                hi[0] = _mm512_add_epi32(hi[0], hi1);
            }
            /* d sc_2i, and d / 16 sc_2i+1 for the high nibbles' 16 q */
            __m512i se = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ch + Q4K_SC + 32 * i)));
            __m512i so = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ch + Q4K_SC + 32 * i + 16)));
            __m512 fe = _mm512_mul_ps(_mm512_cvtepi32_ps(se), d), fo = _mm512_mul_ps(_mm512_cvtepi32_ps(so), d16);
#pragma GCC unroll 8
            for (int c = 0; c < RT; c++) {
                F[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[c]), fe, F[c]);
                F[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[c]), fo, F[c]);
            }
        }
        prefetch_lines(q, ch + Q4K_SC, 5);
        q4k_mins(RT, q, ch, s, F, facc);
    }
}

INLINE QAVX __m512i blend(__m512i a, __m512i b, int mask) /* mask bits from a, the rest from b */
{
    return _mm512_ternarylogic_epi32(a, b, _mm512_set1_epi8((char)mask), 0xe4);
}

/* Group g's float scale d * sc_g (/ 4 for the slot read as 4 q). */
INLINE QAVX __m512 q6k_fscale(const char *ch, int g, __m512 d)
{
    __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(ch + Q6K_SC + 16 * g)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(sc), d);
}

/* Pass p's two slots of planes pl as u8: p = 0: q0, q1; p = 1: q2, and q3
 * read as 4 q (bits 6..7 in place in plane 0, 4..5 from plane 1's top, 2..3
 * from plane 2's). */
INLINE QAVX void q6k_decode(const char *pl, int p, __m512i *wa, __m512i *wb)
{
    const __m512i m6 = _mm512_set1_epi8(0x3f);
    if (!p) {
        *wa = _mm512_and_si512(_mm512_loadu_si512(pl), m6);
        *wb = _mm512_and_si512(_mm512_loadu_si512(pl + 64), m6);
        return;
    }
    __m512i A0 = _mm512_loadu_si512(pl), A1 = _mm512_loadu_si512(pl + 64), A2 = _mm512_loadu_si512(pl + 128);
    *wa = _mm512_and_si512(A2, m6);
    __m512i lo = _mm512_and_si512(_mm512_srli_epi16(A2, 4), _mm512_set1_epi8(0x0c));
    *wb = blend(blend(A0, _mm512_srli_epi16(A1, 2), 0xc0), lo, 0xf0);
}

INLINE QAVX void q6k_tile(int RT, const struct ktile *q, __m512 facc[8])
{
    int nsb = q->K / 256;
    for (int s = 0; s < nsb; s++) {
        const char *ch = q->gp + (size_t)s * Q6K_CHUNK;
        const int16_t *s16[8];
        __m512 F[8];
#pragma GCC unroll 8
        for (int c = 0; c < RT; c++) {
            s16[c] = act_s16(q->a + c * q->arow, q->K) + 16 * s;
            F[c] = _mm512_setzero_ps();
        }
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ch + Q6K_D)));
        /* quarter (h, u), pass p: planes of ql vectors v = 4 u .. 4 u + 3;
         * p = 0: slots 0, 1 (groups 8 h + u, + 2), p = 1: slots 2, 3 (+ 4, + 6) */
#pragma GCC unroll 8
        for (int hup = 0; hup < 8; hup++) {
            int h = hup / 4, u = hup / 2 % 2, p = hup % 2;
            int ga = 8 * h + u + 4 * p, gb = ga + 2;
            if (!p) prefetch_lines(q, ch + 192 * (8 * h + 4 * u), 12);
            __m512i acc[8][2];
#pragma GCC unroll 8
            for (int c = 0; c < RT; c++) {
                /* a group's int sum starts at -32 sum16_g (slot 3: 4 times) */
                acc[c][0] = _mm512_set1_epi32(-32 * s16[c][ga]);
                acc[c][1] = _mm512_set1_epi32((p ? -128 : -32) * s16[c][gb]);
            }
#pragma GCC unroll 4
            for (int vv = 0; vv < 4; vv++) {
                int v = 4 * u + vv;
                const char *pl = ch + 192 * (8 * h + v);
                __m512i wa, wb;
                q6k_decode(pl, p, &wa, &wb);
#pragma GCC unroll 8
                for (int c = 0; c < RT; c++) {
                    const char *a = q->a + c * q->arow + 256 * (size_t)s + 128 * h + 4 * v + 64 * p;
                    acc[c][0] = _mm512_dpbusd_epi32(acc[c][0], wa, bcast4(a));
                    acc[c][1] = _mm512_dpbusd_epi32(acc[c][1], wb, bcast4(a + 32));
                }
            }
            __m512 fa = q6k_fscale(ch, ga, d);
            __m512 fb = q6k_fscale(ch, gb, p ? _mm512_mul_ps(d, _mm512_set1_ps(0.25f)) : d);
#pragma GCC unroll 8
            for (int c = 0; c < RT; c++) {
                F[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[c][0]), fa, F[c]);
                F[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[c][1]), fb, F[c]);
            }
        }
        prefetch_lines(q, ch + Q6K_SC, 5);
#pragma GCC unroll 8
        for (int c = 0; c < RT; c++)
            facc[c] = _mm512_fmadd_ps(F[c], _mm512_set1_ps(act_d(q->a + c * q->arow, q->K)[s]), facc[c]);
    }
}

/* y[t + c, n .. n + rows) for c < RT. */
INLINE QAVX void ktile(int RT, bool q4k, float *y, int ldy, const struct ktile *q, int t, int n, int rows,
                       bool accumulate)
{
    __m512 facc[8];
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) facc[c] = _mm512_setzero_ps();
    if (q4k) q4k_tile(RT, q, facc);
    else q6k_tile(RT, q, facc);
    __mmask16 mk = rows >= 16 ? 0xffff : (__mmask16)((1u << rows) - 1);
#pragma GCC unroll 8
    for (int c = 0; c < RT; c++) {
        float *yt = y + (size_t)(t + c) * ldy + n;
        __m512 v = accumulate ? _mm512_add_ps(facc[c], _mm512_maskz_loadu_ps(mk, yt)) : facc[c];
        _mm512_mask_storeu_ps(yt, mk, v);
    }
}

/* Tokens per tile, the most: 4 vectors a token (2 int dots, 2 float sums)
 * plus the decoded weights, Q6_K's with more temporaries; measured in L2, one
 * thread, T = 128: Q4_K 4 -> 8 tokens 174 -> 200 G/s, Q6_K 4 -> 6 144 -> 160,
 * 8 no better. */
enum { RT_Q4K = 8, RT_Q6K = 6 };

INLINE QAVX void kgroup(bool q4k, float *y, int ldy, struct ktile q, int T, int n, int rows, bool accumulate)
{
    int rtm = q4k ? RT_Q4K : RT_Q6K;
    int n_tiles = (T + rtm - 1) / rtm;
    const char *a0 = q.a;
    for (int i = 0, t = 0; i < n_tiles; i++) {
        int rt = (T - t) / (n_tiles - i);
        q.a = a0 + (size_t)t * q.arow;
        q.pf = i == 0;
        switch (rt) {
        case 8: ktile(8, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 7: ktile(7, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 6: ktile(6, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 5: ktile(5, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 4: ktile(4, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 3: ktile(3, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        case 2: ktile(2, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        default: ktile(1, q4k, y, ldy, &q, t, n, rows, accumulate); break;
        }
        t += rt;
    }
}

QAVX void matmul_qp_k_avx512(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
                             int T, int K, int n0, int n1, bool accumulate)
{
    size_t gb = qpack_group_bytes_k(wt, K);
    struct ktile q = {NULL, xq, qact_row_bytes(wt, K), K, false};
    for (int n = n0; n < n1; n += QPACK_ROWS) {
        q.gp = (const char *)wp + (size_t)(n / QPACK_ROWS) * gb;
        int rows = n1 - n < QPACK_ROWS ? n1 - n : QPACK_ROWS;
        if (wt == DTYPE_Q4_K) kgroup(true, y, ldy, q, T, n, rows, accumulate);
        else kgroup(false, y, ldy, q, T, n, rows, accumulate);
    }
}
