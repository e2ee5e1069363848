/* dtype.h: the storage types weights come in, and exact scalar conversions.
 * Shared by every kernel family (cpu, cuda) and by the engine. */
#ifndef TESSERA_DTYPE_H
#define TESSERA_DTYPE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* F32/F16/BF16 and F8_E4M3 (the OCP "e4m3fn" byte: no infinities, 448 at
 * most; the CUDA KV cache's --kv-cache-dtype fp8) store one element each;
 * the quantized types store blocks of elements as ggml lays them out
 * (kernels/quant.h): Q8_0 and Q4_0 blocks of 32, Q4_K and Q6_K blocks of
 * 256. A row of a quantized type is a whole number of blocks. F8_ROWS
 * (--quantization fp8, ours) is a weight row as a 16-byte head (its fp32
 * scale, then zeros), then its elements as F8_E4M3 bytes, x = e4m3 * scale
 * (a scale per output channel); its rows too are multiples of 32. The
 * head is 16 bytes so that every row's bytes start 16-byte aligned, as
 * cuBLASLt's FP8 GEMM wants them (engine/backend_cuda_fp8.c). */
enum dtype {
    DTYPE_F32 = 0, DTYPE_F16 = 1, DTYPE_BF16 = 2,
    DTYPE_Q8_0 = 3, DTYPE_Q4_0 = 4, DTYPE_Q4_K = 5, DTYPE_Q6_K = 6,
    DTYPE_F8_E4M3 = 7, DTYPE_F8_ROWS = 8,
};
#define DTYPE_COUNT 9
#define F8_ROWS_HEAD 16 /* bytes before an F8_ROWS row's elements; its scale is the first 4 */

static inline bool dtype_is_quant(enum dtype t) { return (t >= DTYPE_Q8_0 && t <= DTYPE_Q6_K) || t == DTYPE_F8_ROWS; }

/* Bytes of one element of an unquantized type (dtype_row_bytes for any). */
static inline size_t dtype_size(enum dtype t) { return t == DTYPE_F32 ? 4 : t == DTYPE_F8_E4M3 ? 1 : 2; }

/* Elements per block: 1 for F32/F16/BF16. */
static inline int dtype_block(enum dtype t)
{
    if (t == DTYPE_Q8_0 || t == DTYPE_Q4_0 || t == DTYPE_F8_ROWS) return 32;
    return t == DTYPE_Q4_K || t == DTYPE_Q6_K ? 256 : 1;
}

static inline size_t dtype_block_bytes(enum dtype t)
{
    /* F8_ROWS: + F8_ROWS_HEAD a row */
    static const unsigned char bytes[DTYPE_COUNT] = {4, 2, 2, 34, 18, 144, 210, 1, 32};
    return bytes[t];
}

/* Bytes of a row of n elements (n a multiple of the block). */
static inline size_t dtype_row_bytes(enum dtype t, int64_t n)
{
    return (size_t)(n / dtype_block(t)) * dtype_block_bytes(t) + (t == DTYPE_F8_ROWS ? F8_ROWS_HEAD : 0);
}

static inline const char *dtype_name(enum dtype t)
{
    static const char *const names[DTYPE_COUNT] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K",
                                                   "F8_E4M3", "F8_ROWS"};
    return names[t];
}

static inline float bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even, overflow to infinity. */
static inline uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 */
    if (a < 0x38800000u) { /* subnormal or zero in f16 */
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1) - 0x38000000u;
    return (uint16_t)(sign | (r >> 13));
}

static inline float f8e4m3_to_f32(uint8_t b)
{
    int e = (b >> 3) & 15, m = b & 7;
    float v = e == 15 && m == 7 ? NAN : e ? ldexpf((float)(8 + m), e - 10) : ldexpf((float)m, -9);
    return b & 0x80 ? -v : v;
}

/* Round to nearest even, finite values past 448 saturate to +-448 (what
 * CUDA's __NV_SATFINITE conversion does); NaN stays NaN. */
static inline uint8_t f32_to_f8e4m3(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t sign = (uint8_t)(u >> 24 & 0x80);
    float a = fabsf(f);
    if (a != a) return 0x7f;
    if (a == 0.0f) return sign;
    if (a >= 464.0f) return sign | 0x7e; /* rounds past 448 (and inf): saturate */
    /* the spacing of e4m3 values around a: 2^(exponent - 3), 2^-9 below 2^-6 */
    int e;
    frexpf(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    int q = e - 1 < -6 ? -9 : e - 1 - 3;
    float steps = ldexpf(a, -q), r = rintf(steps); /* rintf: nearest even under the default mode */
    int n = (int)r;
    if (q == -9) return sign | (uint8_t)n; /* below 2^-5 the code is the count of 2^-9 steps */
    int exp = q + 3 + 7, mant = n - 8; /* n in 8..16 */
    if (mant == 8) exp++, mant = 0;
    if (exp > 15 || (exp == 15 && mant == 7)) return sign | 0x7e;
    return sign | (uint8_t)(exp << 3 | mant);
}

/* Element i of a row stored as t (F32, F16, BF16 or F8_E4M3), as float. */
static inline float dtype_get(const void *p, enum dtype t, size_t i)
{
    switch (t) {
    case DTYPE_F32: return ((const float *)p)[i];
    case DTYPE_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    case DTYPE_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case DTYPE_F8_E4M3: return f8e4m3_to_f32(((const uint8_t *)p)[i]);
    default: break;
    }
    return 0.0f;
}

/* Stores v as element i of a row of type t (rounded to nearest even). */
static inline void dtype_set(void *p, enum dtype t, size_t i, float v)
{
    switch (t) {
    case DTYPE_F32: ((float *)p)[i] = v; break;
    case DTYPE_F16: ((uint16_t *)p)[i] = f32_to_f16(v); break;
    case DTYPE_BF16: ((uint16_t *)p)[i] = f32_to_bf16(v); break;
    case DTYPE_F8_E4M3: ((uint8_t *)p)[i] = f32_to_f8e4m3(v); break;
    default: break;
    }
}

#endif
