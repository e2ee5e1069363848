/* quant.h: ggml's quantized block formats, their exact dequantization and
 * the reference quantizers of Q8_0 and Q4_0 (for --quantization).
 *
 * The layouts are ggml's (ggml-common.h), so GGUF tensor data is used as it
 * lies in the file. `d` fields are IEEE half floats. Shared by every kernel
 * family and by the engine, like dtype.h. */
#ifndef TESSERA_QUANT_H
#define TESSERA_QUANT_H

#include <stdint.h>

#include "dtype.h"

/* x[i] = qs[i] * d */
struct blk_q8_0 {
    uint16_t d;
    int8_t qs[32];
};

/* x[j] = ((qs[j] & 15) - 8) * d, x[j + 16] = ((qs[j] >> 4) - 8) * d, j < 16 */
struct blk_q4_0 {
    uint16_t d;
    uint8_t qs[16];
};

/* 8 groups of 32: x = d * sc[g] * q - dmin * m[g] with 6-bit sc, m packed
 * in scales[12]; q: 4 bits, groups 2i and 2i+1 in the low and high nibbles
 * of qs[32 i .. 32 i + 32). */
struct blk_q4_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};

/* 16 groups of 16: x = d * scales[g] * (q - 32), q: 6 bits, the low 4 in
 * ql, the high 2 in qh. */
struct blk_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};

_Static_assert(sizeof(struct blk_q8_0) == 34, "Q8_0 block");
_Static_assert(sizeof(struct blk_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(struct blk_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(struct blk_q6_k) == 210, "Q6_K block");

/* Q4_K's 6-bit scale and min of group j (0..7), as ggml's get_scale_min_k4. */
static inline void q4k_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* y[0..n) = the first n elements (a multiple of the block) of a row stored
 * as t, any dtype; the same floats as ggml's dequantize_row_* and the gguf
 * package's dequantize. */
void dequantize_row(enum dtype t, const void *src, float *y, int64_t n);

/* Element i of a row stored as t, any dtype (one block decoded). */
float dequantize_one(enum dtype t, const void *src, int64_t i);

/* x[0..n) (n a multiple of 32) -> n / 32 blocks, bit for bit as ggml's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref (and the gguf package). */
void quantize_row_q8_0(const float *x, void *dst, int64_t n);
void quantize_row_q4_0(const float *x, void *dst, int64_t n);
/* x[0..n) -> one F8_ROWS row: scale = max |x| / 448 (1 for a row of zeros),
 * then each x / scale as e4m3, rounded to nearest even (also the rule of
 * the CUDA backend's activations before an FP8 GEMM, kc_quant_rows_f8). */
void quantize_row_f8_rows(const float *x, void *dst, int64_t n);

#endif
