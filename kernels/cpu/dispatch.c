/* dispatch.c: picks the fastest path the CPU has per op (AVX-512 for the
 * matmul, AVX2 for the rest) or the scalar reference. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int have = -1, have512 = -1; /* -1: not probed yet */
static bool force_ref;

/* TESSERA_CPU=avx2 or =ref caps the instruction sets used below what the CPU
 * has (to compare paths on one machine). */
static bool capped(const char *to)
{
    const char *v = getenv("TESSERA_CPU");
    return v && strcmp(v, to) == 0;
}

bool kcpu_have_avx2(void)
{
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c") && !capped("ref");
    }
    return have;
}

bool kcpu_have_avx512(void)
{
    if (have512 < 0)
        have512 = kcpu_have_avx2() && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  !capped("avx2");
    return have512;
}

void kcpu_force_ref(bool on) { force_ref = on; }

static bool fast(void) { return !force_ref && kcpu_have_avx2(); }

void matmul(float *y, int ldy, const float *x, const void *w, enum dtype wt,
            int T, int K, int n0, int n1)
{
    (!fast() ? matmul_ref : kcpu_have_avx512() ? matmul_avx512 : matmul_avx2)(y, ldy, x, w, wt, T, K, n0, n1);
}

int matmul_row_align(void)
{
    return !fast() ? 1 : kcpu_have_avx512() ? 4 : 12;
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
