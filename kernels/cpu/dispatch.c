/* dispatch.c: picks the fastest path the CPU has per op (AVX-512 for the
 * matmul, AVX2 for the rest) or the scalar reference. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int level = -1;          /* what the CPU has, capped by TESSERA_CPU; -1: not probed */
static int cap = KCPU_AMX;      /* kcpu_cap: tests run the lower paths too */

/* TESSERA_CPU=avx2 or =ref caps the instruction sets used below what the CPU
 * has (to compare paths on one machine). */
static int probe(void)
{
    __builtin_cpu_init();
    int l = KCPU_REF;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        l = KCPU_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl"))
            l = KCPU_AVX512;
    }
    const char *v = getenv("TESSERA_CPU");
    if (l == KCPU_AVX512 && !(v && !strcmp(v, "avx512")) && amx_probe()) l = KCPU_AMX;
    int want = !v ? l : strcmp(v, "ref") == 0 ? KCPU_REF : strcmp(v, "avx2") == 0 ? KCPU_AVX2 : l;
    return want < l ? want : l;
}

static int available(void)
{
    if (level < 0) level = probe();
    return level;
}

bool kcpu_have_avx2(void) { return available() >= KCPU_AVX2; }
bool kcpu_have_avx512(void) { return available() >= KCPU_AVX512; }
void kcpu_cap(enum kcpu_level l) { cap = l; }

static int in_use(void) { return available() < cap ? available() : cap; }
static bool fast(void) { return in_use() >= KCPU_AVX2; }
bool kcpu_have_amx(void) { return in_use() >= KCPU_AMX; }

void matmul(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
            int T, int K, int n0, int n1, bool accumulate)
{
    int l = in_use();
    (l >= KCPU_AVX512 ? matmul_avx512 : l == KCPU_AVX2 ? matmul_avx2 : matmul_ref)(y, ldy, x, ldx, w, wt, T, K,
                                                                                   n0, n1, accumulate);
}

/* The quantized matmul's AVX-512 kernels need VNNI (vpdpbusd, vpdpwssd) on
 * top of F/BW/VL; without it, the AVX2 ones (avx2_quant.c), else the
 * references. */
static bool vnni(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx512vnni") ? 1 : 0;
    return v;
}

static bool fast_q(void) { return in_use() >= KCPU_AVX512 && vnni(); }

void qact_quantize(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1)
{
    int l = in_use();
    (l >= KCPU_AVX512 ? qact_quantize_avx512 : l == KCPU_AVX2 ? qact_quantize_avx2 : qact_quantize_ref)(
        xq, x, ldx, wt, K, t0, t1);
}

void matmul_q(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
              int T, int K, int n0, int n1, bool accumulate)
{
    (fast_q() ? matmul_q_avx512 : fast() ? matmul_q_avx2 : matmul_q_ref)(y, ldy, xq, w, wt, T, K, n0, n1,
                                                                        accumulate);
}

int matmul_q_row_align(void) { return fast() ? 4 : 1; } /* both fast paths decode in tiles of 4 rows */

static bool is_k(enum dtype wt) { return wt == DTYPE_Q4_K || wt == DTYPE_Q6_K; }

bool qpack_available(enum dtype wt) { return fast_q() && dtype_is_quant(wt) && qpack_group_bytes(wt, 256) > 0; }

size_t qpack_group_bytes(enum dtype wt, int K)
{
    return is_k(wt) ? qpack_group_bytes_k(wt, K) : qpack_group_bytes_q8q4(wt, K);
}

void qpack(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1)
{
    (is_k(wt) ? qpack_k : qpack_q8q4)(dst, w, wt, N, K, g0, g1);
}

void matmul_qp(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
               int T, int K, int n0, int n1, bool accumulate)
{
    (is_k(wt) ? matmul_qp_k_avx512 : matmul_qp_q8q4_avx512)(y, ldy, xq, wp, wt, T, K, n0, n1, accumulate);
}

int matmul_row_align(void)
{
    int l = in_use();
    return l >= KCPU_AVX512 ? 4 : l == KCPU_AVX2 ? 12 : 1;
}

void rmsnorm(float *out, const float *x, const float *w, int H, float eps, int t0, int t1)
{
    (fast() ? rmsnorm_avx2 : rmsnorm_ref)(out, x, w, H, eps, t0, t1);
}

void rope(float *x, int n_heads, int hd, const float *cos, const float *sin, int t0, int t1)
{
    (fast() ? rope_avx2 : rope_ref)(x, n_heads, hd, cos, sin, t0, t1);
}

void silu_mul(float *out, const float *gate, const float *up, int64_t i0, int64_t i1)
{
    (fast() ? silu_mul_avx2 : silu_mul_ref)(out, gate, up, i0, i1);
}

void add(float *x, const float *y, int64_t i0, int64_t i1)
{
    (fast() ? add_avx2 : add_ref)(x, y, i0, i1);
}

void attention(float *out, const float *q, const struct kv_layer *kv,
               const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1)
{
    (fast() ? attention_avx2 : attention_ref)(out, q, kv, b, scratch, i0, i1);
}
