/* amx.c: prompt-sized matmuls of quantized weights on AMX (Sapphire Rapids
 * and later), in bf16.
 *
 * A quantized weight's 16-row group is dequantized into a bf16 panel (the A
 * tiles: 16 rows x 32 columns each), the activations are rounded to bf16
 * once per matmul in the B tiles' pair-interleaved order, and TDPBF16PS
 * accumulates 16 rows x 16 tokens x 32 columns in fp32 per instruction (the
 * block scales are applied when dequantizing, so no per-block work remains
 * in the inner loop). One group's panel serves every token, so its
 * dequantization is paid once per prompt, not per token. The integer VNNI
 * kernels need a convert and an FMA per block and (row, token); here the
 * tile unit does it all. Precision: bf16 activations (8 significant bits)
 * are about as coarse as the int8 ones of matmul_q, and the weights' own
 * values lose at most a bf16 rounding (2^-9 relative). */
#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels.h"
#include "../quant.h"

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,f16c")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,f16c")))
#define INLINE static inline __attribute__((always_inline))

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

bool amx_probe(void)
{
    unsigned a, b, c, d, a1, b1, c1, d1;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    __asm__("cpuid" : "=a"(a1), "=b"(b1), "=c"(c1), "=d"(d1) : "a"(7), "c"(1));
    bool tile = d >> 24 & 1, bf16 = d >> 22 & 1, avx512bf16 = a1 >> 5 & 1;
    if (!tile || !bf16 || !avx512bf16) return false;
    /* Linux hands out the tile state only on request (per process) */
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

// ---------------------------------------------------------------------------
// activations: x [T, K] fp32 -> bf16, token tiles of 16 (zero rows past T);
// in tile j, the pair (x[t][2p], x[t][2p + 1]) is at bf16 index
// j * 16 * K + p * 32 + (t % 16) * 2: each 32 columns of a tile are one
// B tile of 16 rows (pairs) x 64 bytes. Rows [t0, t1) per call, t0 a
// multiple of 16 and t1 too or T: threads convert whole tiles.

size_t amx_act_bytes(int T, int K) { return (size_t)(T + 15) / 16 * 16 * (size_t)K * 2; }

/* r[i] (dword p = element p of row i) -> r[p] (dword i = element p of row
 * i): unpacks gather element 4L + c of 4 rows in lane L of s[4b + c], then
 * a 4 x 4 transpose of 128-bit lanes per c. */
INLINE AVX512BF16 void transpose16(__m512i r[16])
{
    __m512i t[16], s[16];
    for (int a = 0; a < 8; a++) {
        t[2 * a] = _mm512_unpacklo_epi32(r[2 * a], r[2 * a + 1]);
        t[2 * a + 1] = _mm512_unpackhi_epi32(r[2 * a], r[2 * a + 1]);
    }
    for (int b = 0; b < 4; b++) {
        s[4 * b] = _mm512_unpacklo_epi64(t[4 * b], t[4 * b + 2]);
        s[4 * b + 1] = _mm512_unpackhi_epi64(t[4 * b], t[4 * b + 2]);
        s[4 * b + 2] = _mm512_unpacklo_epi64(t[4 * b + 1], t[4 * b + 3]);
        s[4 * b + 3] = _mm512_unpackhi_epi64(t[4 * b + 1], t[4 * b + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i u0 = _mm512_shuffle_i32x4(s[c], s[4 + c], 0x44), u1 = _mm512_shuffle_i32x4(s[c], s[4 + c], 0xee);
        __m512i u2 = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], 0x44);
        __m512i u3 = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], 0xee);
        r[c] = _mm512_shuffle_i32x4(u0, u2, 0x88);
        r[4 + c] = _mm512_shuffle_i32x4(u0, u2, 0xdd);
        r[8 + c] = _mm512_shuffle_i32x4(u1, u3, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(u1, u3, 0xdd);
    }
}

/* Each 16 tokens x 32 columns: the tokens' 16 bf16 pairs each, transposed
 * into the tile's 16 rows of one pair for every token. */
AVX512BF16 void amx_act_convert(void *xb, const float *x, int ldx, int T, int K, int t0, int t1)
{
    for (int ts = t0; ts < t1; ts += 16) {
        uint16_t *tile = (uint16_t *)xb + (size_t)(ts / 16) * 16 * K;
        int nt = T - ts < 16 ? T - ts : 16;
        for (int k = 0; k < K; k += 32) {
            __m512i v[16];
            for (int i = 0; i < 16; i++) {
                const float *xt = x + (size_t)(ts + i) * ldx + k;
                v[i] = i < nt ? (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(xt + 16), _mm512_loadu_ps(xt))
                              : _mm512_setzero_si512();
            }
            transpose16(v);
            for (int p = 0; p < 16; p++) _mm512_storeu_si512(tile + (size_t)k * 16 + p * 32, v[p]);
        }
    }
}

// ---------------------------------------------------------------------------
// weights: rows n0 .. n0 + rows (at most 16) of w [N, K] -> a bf16 panel
// [16][K] (zero rows past `rows`), dequantized with the block scales

INLINE AVX512BF16 void store32(uint16_t *dst, __m512 lo, __m512 hi)
{
    _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

INLINE AVX512BF16 __m512 bytes_to_ps(__m128i b, bool is_signed)
{
    return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}

AVX512BF16 static void panel_q8_0(uint16_t *dst, const struct blk_q8_0 *b, int nb)
{
    for (int i = 0; i < nb; i++, dst += 32) {
        __m512 d = _mm512_set1_ps(f16_to_f32(b[i].d));
        __m128i q0 = _mm_loadu_si128((const __m128i *)b[i].qs), q1 = _mm_loadu_si128((const __m128i *)(b[i].qs + 16));
        store32(dst, _mm512_mul_ps(bytes_to_ps(q0, true), d), _mm512_mul_ps(bytes_to_ps(q1, true), d));
    }
}

AVX512BF16 static void panel_q4_0(uint16_t *dst, const struct blk_q4_0 *b, int nb)
{
    __m128i low = _mm_set1_epi8(15);
    __m512 eight = _mm512_set1_ps(8.0f);
    for (int i = 0; i < nb; i++, dst += 32) {
        __m512 d = _mm512_set1_ps(f16_to_f32(b[i].d));
        __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        __m512 lo = _mm512_sub_ps(bytes_to_ps(_mm_and_si128(q, low), false), eight);
        __m512 hi = _mm512_sub_ps(bytes_to_ps(_mm_and_si128(_mm_srli_epi16(q, 4), low), false), eight);
        store32(dst, _mm512_mul_ps(lo, d), _mm512_mul_ps(hi, d));
    }
}

/* x = d * sc * q - dmin * m, computed as dequantize_row does (d * sc first) */
AVX512BF16 static void panel_q4_k(uint16_t *dst, const struct blk_q4_k *b, int nb)
{
    __m128i low = _mm_set1_epi8(15);
    for (int i = 0; i < nb; i++) {
        float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
        for (int j = 0; j < 8; j++, dst += 32) {
            int sc, m;
            q4k_scale_min(b[i].scales, j, &sc, &m);
            __m512 ds = _mm512_set1_ps(d * (float)sc), mn = _mm512_set1_ps(dmin * (float)m);
            const uint8_t *qs = b[i].qs + 32 * (j / 2);
            int shift = 4 * (j % 2);
            __m128i q0 = _mm_loadu_si128((const __m128i *)qs), q1 = _mm_loadu_si128((const __m128i *)(qs + 16));
            __m128i sh = _mm_cvtsi32_si128(shift);
            q0 = _mm_and_si128(_mm_srl_epi16(q0, sh), low);
            q1 = _mm_and_si128(_mm_srl_epi16(q1, sh), low);
            store32(dst, _mm512_fmsub_ps(ds, bytes_to_ps(q0, false), mn),
                    _mm512_fmsub_ps(ds, bytes_to_ps(q1, false), mn));
        }
    }
}

/* ggml's Q6_K order: in each half of 128, element 32 c + l (c < 4, l < 32)
 * takes ql[l + 32 (c & 1)] >> 4 (c >> 1) and qh[l] >> 2 c; scales by 16 */
AVX512BF16 static void panel_q6_k(uint16_t *dst, const struct blk_q6_k *b, int nb)
{
    __m128i low = _mm_set1_epi8(15), two = _mm_set1_epi8(3);
    for (int i = 0; i < nb; i++) {
        float d = f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            for (int c = 0; c < 4; c++, dst += 32) {
                __m512 v[2];
                for (int half = 0; half < 2; half++) {
                    int l = 16 * half;
                    __m128i lo = _mm_loadu_si128((const __m128i *)(ql + l + 32 * (c & 1)));
                    __m128i hi = _mm_loadu_si128((const __m128i *)(qh + l));
                    lo = _mm_and_si128(_mm_srl_epi16(lo, _mm_cvtsi32_si128(4 * (c >> 1))), low);
                    hi = _mm_and_si128(_mm_srl_epi16(hi, _mm_cvtsi32_si128(2 * c)), two);
                    __m128i q = _mm_or_si128(lo, _mm_slli_epi16(hi, 4));
                    __m512 qf = _mm512_sub_ps(bytes_to_ps(q, false), _mm512_set1_ps(32.0f));
                    v[half] = _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[2 * c + half]), qf);
                }
                store32(dst, v[0], v[1]);
            }
        }
    }
}

AVX512BF16 void amx_panel(void *panel, const void *w, enum dtype wt, int K, int n0, int rows)
{
    size_t rb = dtype_row_bytes(wt, K);
    int nb = K / dtype_block(wt);
    for (int r = 0; r < 16; r++) {
        uint16_t *dst = (uint16_t *)panel + (size_t)r * K;
        const void *src = (const char *)w + (size_t)(n0 + r) * rb;
        if (r >= rows) {
            memset(dst, 0, (size_t)K * 2);
            continue;
        }
        switch (wt) {
        case DTYPE_Q8_0: panel_q8_0(dst, src, nb); break;
        case DTYPE_Q4_0: panel_q4_0(dst, src, nb); break;
        case DTYPE_Q4_K: panel_q4_k(dst, src, nb); break;
        case DTYPE_Q6_K: panel_q6_k(dst, src, nb); break;
        default: memset(dst, 0, (size_t)K * 2); break;
        }
    }
}

// ---------------------------------------------------------------------------
// the tile loop: tiles 0-3 accumulate 4 token tiles, 4 holds the panel's 32
// columns, 5 the activations'

struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

static __thread bool configured;

AMX static void configure(void)
{
    struct tile_config c;
    memset(&c, 0, sizeof(c));
    c.palette = 1;
    for (int i = 0; i < 6; i++) c.rows[i] = 16, c.colsb[i] = 64;
    _tile_loadconfig(&c);
    configured = true;
}

/* y[t, n0 + r] (+)= c[r][t - t0] for the valid rows and tokens */
static void store_tile(float *y, int ldy, const float c[16][16], int t0, int nt, int n0, int rows, bool accumulate)
{
    for (int t = 0; t < nt; t++) {
        float *yt = y + (size_t)(t0 + t) * ldy + n0;
        for (int r = 0; r < rows; r++) yt[r] = accumulate ? yt[r] + c[r][t] : c[r][t];
    }
}

#define DP(j)                                                                    \
    do {                                                                         \
        _tile_loadd(5, act + (size_t)(j0 + (j)) * 16 * K + (size_t)k * 16, 64); \
        _tile_dpbf16ps(j, 4, 5);                                                 \
    } while (0)

AMX void matmul_amx(float *y, int ldy, const void *xb, const void *panel, int T, int K, int n0, int rows,
                    bool accumulate)
{
    if (!configured) configure();
    const uint16_t *act = xb, *pw = panel;
    int n_tiles = (T + 15) / 16;
    float c[16][16];
    for (int j0 = 0; j0 < n_tiles; j0 += 4) {
        int nj = n_tiles - j0 < 4 ? n_tiles - j0 : 4;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int k = 0; k < K; k += 32) {
            _tile_loadd(4, pw + k, (size_t)K * 2);
            DP(0);
            if (nj > 1) DP(1);
            if (nj > 2) DP(2);
            if (nj > 3) DP(3);
        }
        for (int j = 0; j < nj; j++) {
            switch (j) {
            case 0: _tile_stored(0, c, 64); break;
            case 1: _tile_stored(1, c, 64); break;
            case 2: _tile_stored(2, c, 64); break;
            default: _tile_stored(3, c, 64); break;
            }
            int t0 = (j0 + j) * 16, nt = T - t0 < 16 ? T - t0 : 16;
            store_tile(y, ldy, (const float(*)[16])c, t0, nt, n0, rows, accumulate);
        }
    }
}
