/* test_cuda_kernels.c: every CUDA kernel (kernels/cuda) against its CPU
 * reference (kernels/cpu/ref.c), vLLM-style. Under `make test` the kernels
 * run in the emulator; `make test-cuda` runs the same file on a GPU.
 *
 * Tolerances: element-wise kernels compute what the reference computes in
 * the same fp32 order, so they are checked to 1e-6 (expf and sqrtf may
 * differ in the last bit on a GPU). Conversions to half and bf16 must be
 * exact (round to nearest even). Attention reads the same K/V values on both
 * sides (the reference's fp32 cache holds the cache type's values), so only
 * the summation order differs: 2e-5 absolute + 1e-4 relative. */
#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/cuda/kernels.h"
#include "../unit/test_util.h"
#include "cuda_test.h"

#ifdef TESSERA_NATIVE_CUDA
#define emu_set_seed(s) ((void)(s)) /* on a GPU the hardware picks the interleaving */
#else
#include "../../kernels/emu/emu.h"
#endif


/* Stores x as dt in dst[i] and returns the stored value as fp32. */
static float put(void *dst, enum dtype dt, size_t i, float x)
{
    dtype_set(dst, dt, i, x);
    return dtype_get(dst, dt, i);
}

static const enum dtype DTYPES[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16};
/* the KV cache's types: also fp8 (--kv-cache-dtype fp8) */
static const enum dtype KV_DTYPES[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_F8_E4M3};

Test(cuda_kernels, embed)
{
    uint64_t rng = 3;
    int V = 37, ids[] = {0, 36, 5, 5, 17};
    static const int Hs[] = {1, 31, 64, 300};
    int32_t *d_ids = dev_copy(ids, sizeof(ids));
    for (int d = 0; d < 3; d++)
        for (int hi = 0; hi < 4; hi++) {
            int H = Hs[hi], T = 5;
            float *vals = malloc(sizeof(float) * V * H), *ref = malloc(sizeof(float) * T * H);
            void *table = malloc(dtype_size(DTYPES[d]) * V * H);
            fill_uniform(vals, (size_t)V * H, -2, 2, &rng);
            for (int i = 0; i < V * H; i++) put(table, DTYPES[d], i, vals[i]);
            embed_ref(ref, table, DTYPES[d], ids, H, 0, T);
            void *d_table = dev_copy(table, dtype_size(DTYPES[d]) * V * H);
            float *d_out = dev_alloc(sizeof(float) * T * H);
            kc_embed(0, d_out, d_table, DTYPES[d], d_ids, T, H);
            float *out = host_copy(d_out, sizeof(float) * T * H);
            cr_assert(all_close(out, ref, (size_t)T * H, 0, 0, "embed"), "%s H=%d", dtype_name(DTYPES[d]), H);
            free(vals), free(ref), free(table), free(out);
            cudaFree(d_table), cudaFree(d_out);
        }
    cudaFree(d_ids);
}

Test(cuda_kernels, rmsnorm_with_and_without_residual)
{
    uint64_t rng = 5;
    static const int Hs[] = {8, 33, 64, 288, 2048};
    for (int hi = 0; hi < 5; hi++)
        for (int with_res = 0; with_res < 2; with_res++) {
            int H = Hs[hi], T = 3;
            size_t n = (size_t)T * H;
            float *x = malloc(n * 4), *r = malloc(n * 4), *w = malloc(H * 4), *ref = malloc(n * 4);
            fill_uniform(x, n, -3, 3, &rng);
            fill_uniform(r, n, -1, 1, &rng);
            fill_uniform(w, H, 0.5f, 1.5f, &rng);
            float *d_x = dev_copy(x, n * 4), *d_r = dev_copy(r, n * 4), *d_w = dev_copy(w, H * 4);
            float *d_out = dev_alloc(n * 4);
            if (with_res) add_ref(x, r, 0, (int64_t)n);
            rmsnorm_ref(ref, x, w, H, 1e-5f, 0, T);
            kc_rmsnorm(0, d_out, d_x, with_res ? d_r : NULL, d_w, T, H, 1e-5f);
            float *out = host_copy(d_out, n * 4), *xo = host_copy(d_x, n * 4);
            cr_assert(all_close(out, ref, n, 1e-6f, 1e-6f, "rmsnorm"), "H=%d residual=%d", H, with_res);
            cr_assert(all_close(xo, x, n, 0, 0, "rmsnorm x += residual"), "H=%d", H);
            free(x), free(r), free(w), free(ref), free(out), free(xo);
            cudaFree(d_x), cudaFree(d_r), cudaFree(d_w), cudaFree(d_out);
        }
}

/* Qwen3's q/k norm: rows of head_dim (T x heads of them), in place. */
Test(cuda_kernels, rmsnorm_per_head_in_place)
{
    uint64_t rng = 15;
    static const int shapes[][2] = {{8, 5 * 2}, {16, 3 * 4}, {128, 7 * 8}, {12, 1}}; /* head_dim, rows */
    for (int si = 0; si < 4; si++) {
        int hd = shapes[si][0], rows = shapes[si][1];
        size_t n = (size_t)rows * hd;
        float *x = malloc(n * 4), *w = malloc(hd * 4), *ref = malloc(n * 4);
        fill_uniform(x, n, -3, 3, &rng);
        fill_uniform(w, hd, 0.5f, 1.5f, &rng);
        float *d_x = dev_copy(x, n * 4), *d_w = dev_copy(w, hd * 4);
        rmsnorm_ref(ref, x, w, hd, 1e-6f, 0, rows);
        kc_rmsnorm(0, d_x, d_x, NULL, d_w, rows, hd, 1e-6f);
        float *out = host_copy(d_x, n * 4);
        cr_assert(all_close(out, ref, n, 1e-6f, 1e-6f, "per-head rmsnorm"), "head_dim %d", hd);
        free(x), free(w), free(ref), free(out);
        cudaFree(d_x), cudaFree(d_w);
    }
}

/* q/k/v/o_proj biases: one fp32 add per element, so exact. */
Test(cuda_kernels, add_bias_rows)
{
    uint64_t rng = 17;
    static const int shapes[][2] = {{1, 64}, {5, 48}, {80, 16}, {3, 1031}, {700, 96}}; /* T, n */
    for (int si = 0; si < 5; si++) {
        int T = shapes[si][0], n = shapes[si][1];
        size_t total = (size_t)T * n;
        float *y = malloc(total * 4), *bias = malloc(n * 4);
        fill_uniform(y, total, -2, 2, &rng);
        fill_uniform(bias, n, -1, 1, &rng);
        float *d_y = dev_copy(y, total * 4), *d_b = dev_copy(bias, n * 4);
        add_bias_ref(y, bias, n, 0, T);
        kc_add_bias(0, d_y, d_b, T, n);
        float *out = host_copy(d_y, total * 4);
        cr_assert(all_close(out, y, total, 0, 0, "add_bias"), "T %d, n %d", T, n);
        free(y), free(bias), free(out);
        cudaFree(d_y), cudaFree(d_b);
    }
}

Test(cuda_kernels, rope_silu_mul_and_cast)
{
    uint64_t rng = 7;
    int T = 4, heads = 3;
    static const int HDs[] = {8, 64, 128};
    for (int i = 0; i < 3; i++) {
        int hd = HDs[i];
        size_t n = (size_t)T * heads * hd, nt = (size_t)T * hd / 2;
        float *x = malloc(n * 4), *c = malloc(nt * 4), *s = malloc(nt * 4);
        fill_uniform(x, n, -1, 1, &rng);
        for (size_t j = 0; j < nt; j++) {
            float a = (float)(j % 97) * 0.37f;
            c[j] = cosf(a), s[j] = sinf(a);
        }
        float *d_x = dev_copy(x, n * 4), *d_c = dev_copy(c, nt * 4), *d_s = dev_copy(s, nt * 4);
        rope_ref(x, heads, hd, c, s, 0, T);
        kc_rope(0, d_x, T, heads, hd, d_c, d_s);
        float *out = host_copy(d_x, n * 4);
        cr_assert(all_close(out, x, n, 1e-6f, 1e-6f, "rope"), "hd=%d", hd);
        free(x), free(c), free(s), free(out);
        cudaFree(d_x), cudaFree(d_c), cudaFree(d_s);
    }
    size_t n = 70001;
    float *g = malloc(n * 4), *u = malloc(n * 4), *ref = malloc(n * 4);
    fill_uniform(g, n, -8, 8, &rng);
    fill_uniform(u, n, -2, 2, &rng);
    silu_mul_ref(ref, g, u, 0, (int64_t)n);
    float *d_g = dev_copy(g, n * 4), *d_u = dev_copy(u, n * 4), *d_o = dev_alloc(n * 4);
    kc_silu_mul(0, d_o, d_g, d_u, (int64_t)n);
    float *out = host_copy(d_o, n * 4);
    cr_assert(all_close(out, ref, n, 1e-6f, 1e-6f, "silu_mul"));
    for (int d = 1; d < 3; d++) { /* casts: exact round to nearest even */
        uint16_t *dst = dev_alloc(n * 2);
        kc_cast(0, dst, DTYPES[d], d_g, (int64_t)n);
        uint16_t *h = host_copy(dst, n * 2);
        for (size_t j = 0; j < n; j++)
            cr_assert_eq(h[j], DTYPES[d] == DTYPE_F16 ? f32_to_f16(g[j]) : f32_to_bf16(g[j]), "cast %zu", j);
        free(h);
        cudaFree(dst);
    }
    free(g), free(u), free(ref), free(out);
    cudaFree(d_g), cudaFree(d_u), cudaFree(d_o);
}

/* Every cache type, fp8 included: the bytes dtype_set would store (so the
 * device's fp8 rounding and saturation are the host's), slot -1 skipped. */
Test(cuda_kernels, kv_write_into_paged_slots)
{
    uint64_t rng = 11;
    int T = 5, row = 2 * 64, n_slots = 64;
    int64_t slots[] = {17, 3, 63, -1, 40};
    float *k = malloc(sizeof(float) * T * row), *v = malloc(sizeof(float) * T * row);
    fill_uniform(k, (size_t)T * row, -1, 1, &rng);
    fill_uniform(v, (size_t)T * row, -1, 1, &rng);
    /* in token 0's row: rounding ties in fp8 (subnormal and normal), values past 448, infinities, -0 */
    static const float edge[] = {0x1p-10f, 1.5f * 0x1p-9f, 1.0625f, -1.1875f, 248.0f, 17.0f, 463.0f, 464.0f,
                                 1e9f, INFINITY, -INFINITY, -0.0f, 3.0f * 0x1p-10f, 0x1.2p-7f, 65519.0f, 1e-30f};
    memcpy(k, edge, sizeof(edge));
    float *d_k = dev_copy(k, sizeof(float) * T * row), *d_v = dev_copy(v, sizeof(float) * T * row);
    int64_t *d_slots = dev_copy(slots, sizeof(slots));
    for (int d = 0; d < 4; d++) {
        size_t es = dtype_size(KV_DTYPES[d]), bytes = es * n_slots * row;
        void *d_kc = dev_alloc(bytes), *d_vc = dev_alloc(bytes);
        CK(cudaMemset(d_kc, 0xff, bytes));
        CK(cudaMemset(d_vc, 0xff, bytes));
        kc_kv_write(0, d_kc, d_vc, KV_DTYPES[d], d_k, d_v, d_slots, T, row, 1.0f, 1.0f);
        unsigned char *kc = host_copy(d_kc, bytes), *vc = host_copy(d_vc, bytes);
        unsigned char *want = malloc(es * row);
        for (int s = 0; s < n_slots; s++) {
            int t = -1;
            for (int j = 0; j < T; j++)
                if (slots[j] == s) t = j;
            for (int pass = 0; pass < 2; pass++) {
                const float *src = pass ? v : k;
                const unsigned char *got = (pass ? vc : kc) + es * s * row;
                if (t < 0) memset(want, 0xff, es * row); /* untouched */
                else for (int i = 0; i < row; i++) put(want, KV_DTYPES[d], i, src[(size_t)t * row + i]);
                cr_assert(!memcmp(got, want, es * row), "%s slot %d", dtype_name(KV_DTYPES[d]), s);
            }
        }
        free(kc), free(vc), free(want);
        cudaFree(d_kc), cudaFree(d_vc);
    }
    free(k), free(v);
    cudaFree(d_k), cudaFree(d_v), cudaFree(d_slots);
}

/* Whether got[0..n) (stored as dt) is want[0..n) rounded to dt, exactly. */
static bool rounded_from(const void *got, enum dtype dt, const float *want, size_t n)
{
    unsigned char w[4];
    for (size_t i = 0; i < n; i++) {
        dtype_set(w, dt, 0, want[i]);
        if (memcmp((const unsigned char *)got + i * dtype_size(dt), w, dtype_size(dt))) return false;
    }
    return true;
}

/* The fused launches: RMSNorm that also stores its output rounded to the
 * next GEMM's type (exactly kc_cast of that output); SiLU-and-mul from
 * stacked gate|up rows (with the cast too); RoPE from stacked q|k|v rows
 * fused with the KV write. References: rmsnorm_ref, silu_mul_ref, rope_ref
 * and kv_write_ref's rounding. */
Test(cuda_kernels, fused_norm_silu_casts_and_rope_kv_write)
{
    uint64_t rng = 23;
    int T = 5, H = 288, I = 72, heads = 8, kv_heads = 2, hd = 64, n_slots = 32, row = kv_heads * hd;
    size_t n = (size_t)T * H, ni = (size_t)T * I;
    float *x = malloc(n * 4), *r = malloc(n * 4), *w = malloc(H * 4), *ref = malloc(n * 4);
    float *gu = malloc(ni * 8), *g = malloc(ni * 4), *u = malloc(ni * 4);
    fill_uniform(x, n, -3, 3, &rng);
    fill_uniform(r, n, -1, 1, &rng);
    fill_uniform(w, H, 0.5f, 1.5f, &rng);
    fill_uniform(gu, ni * 2, -6, 6, &rng);
    for (size_t t = 0; t < (size_t)T; t++) /* rows of gate, then up */
        memcpy(g + t * I, gu + t * 2 * I, I * 4), memcpy(u + t * I, gu + t * 2 * I + I, I * 4);
    for (int d = 1; d < 3; d++) {
        enum dtype dt = DTYPES[d];
        float *d_x = dev_copy(x, n * 4), *d_r = dev_copy(r, n * 4), *d_w = dev_copy(w, H * 4), *d_o = dev_alloc(n * 4);
        void *d_c = dev_alloc(n * 2);
        memcpy(ref, x, n * 4);
        add_ref(ref, r, 0, (int64_t)n);
        rmsnorm_ref(ref, ref, w, H, 1e-5f, 0, T);
        kc_rmsnorm_cast(0, d_o, d_c, dt, d_x, d_r, d_w, T, H, 1e-5f);
        float *out = host_copy(d_o, n * 4);
        void *cast = host_copy(d_c, n * 2);
        cr_assert(all_close(out, ref, n, 1e-6f, 1e-6f, "rmsnorm_cast"), "%s", dtype_name(dt));
        cr_assert(rounded_from(cast, dt, out, n), "rmsnorm_cast: %s cast", dtype_name(dt));
        free(out), free(cast);
        float *d_gu = dev_copy(gu, ni * 8);
        silu_mul_ref(ref, g, u, 0, (int64_t)ni);
        kc_silu_mul_stacked(0, d_o, d_c, dt, d_gu, T, I);
        out = host_copy(d_o, ni * 4), cast = host_copy(d_c, ni * 2);
        cr_assert(all_close(out, ref, ni, 1e-6f, 1e-6f, "silu_mul_stacked"), "%s", dtype_name(dt));
        cr_assert(rounded_from(cast, dt, out, ni), "silu_mul_stacked: %s cast", dtype_name(dt));
        free(out), free(cast);
        cudaFree(d_x), cudaFree(d_r), cudaFree(d_w), cudaFree(d_o), cudaFree(d_c), cudaFree(d_gu);
    }
    int ld = (heads + 2 * kv_heads) * hd;
    size_t nq = (size_t)T * heads * hd, nk = (size_t)T * row, nt = (size_t)T * hd / 2;
    float *qkv = malloc((size_t)T * ld * 4), *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
    float *c = malloc(nt * 4), *sn = malloc(nt * 4);
    int64_t slots[] = {9, -1, 31, 0, 17};
    fill_uniform(qkv, (size_t)T * ld, -1, 1, &rng);
    for (int t = 0; t < T; t++) {
        const float *src = qkv + (size_t)t * ld;
        memcpy(q + (size_t)t * heads * hd, src, heads * hd * 4);
        memcpy(k + (size_t)t * row, src + heads * hd, row * 4);
        memcpy(v + (size_t)t * row, src + heads * hd + row, row * 4);
    }
    for (size_t j = 0; j < nt; j++) c[j] = cosf((float)j * 0.21f), sn[j] = sinf((float)j * 0.21f);
    rope_ref(q, heads, hd, c, sn, 0, T);
    rope_ref(k, kv_heads, hd, c, sn, 0, T);
    float *d_qkv = dev_copy(qkv, (size_t)T * ld * 4), *d_c = dev_copy(c, nt * 4), *d_s = dev_copy(sn, nt * 4);
    int64_t *d_slots = dev_copy(slots, sizeof(slots));
    for (int d = 0; d < 3; d++) {
        enum dtype dt = DTYPES[d];
        size_t es = dtype_size(dt), bytes = es * n_slots * row;
        float *d_q = dev_alloc(nq * 4);
        void *d_kc = dev_alloc(bytes), *d_vc = dev_alloc(bytes);
        CK(cudaMemset(d_kc, 0xff, bytes));
        CK(cudaMemset(d_vc, 0xff, bytes));
        kc_rope_kv_write(0, d_q, d_qkv, T, heads, kv_heads, hd, d_c, d_s, d_kc, d_vc, dt, d_slots, 1.0f, 1.0f);
        float *gq = host_copy(d_q, nq * 4);
        unsigned char *kc = host_copy(d_kc, bytes), *vc = host_copy(d_vc, bytes);
        cr_assert(all_close(gq, q, nq, 1e-6f, 1e-6f, "rope_kv_write q"), "%s", dtype_name(dt));
        int written = 0;
        for (int t = 0; t < T; t++) {
            if (slots[t] < 0) continue;
            written++;
            /* the rotated k, rounded: within half a unit in the last place of the type */
            float *kt = malloc(row * 4), rtol = dt == DTYPE_F32 ? 1e-6f : dt == DTYPE_F16 ? 1e-3f : 4e-3f;
            for (int i = 0; i < row; i++) kt[i] = dtype_get(kc + es * slots[t] * row, dt, i);
            cr_assert(all_close(kt, k + (size_t)t * row, row, 1e-6f, rtol, "k"), "%s t %d", dtype_name(dt), t);
            cr_assert(rounded_from(vc + es * slots[t] * row, dt, v + (size_t)t * row, row), "v row %d", t);
            free(kt);
        }
        for (int sl = 0; sl < n_slots; sl++) { /* slots no token names stay untouched */
            bool named = false;
            for (int t = 0; t < T; t++) named |= slots[t] == sl;
            for (size_t i = 0; !named && i < es * row; i++) cr_assert_eq(kc[es * sl * row + i], 0xff, "slot %d", sl);
        }
        cr_assert_eq(written, 4);
        free(gq), free(kc), free(vc);
        cudaFree(d_q), cudaFree(d_kc), cudaFree(d_vc);
    }
    free(x), free(r), free(w), free(ref), free(gu), free(g), free(u), free(qkv), free(q), free(k), free(v), free(c),
        free(sn);
    cudaFree(d_qkv), cudaFree(d_c), cudaFree(d_s), cudaFree(d_slots);
}

/* Rows of several lengths with repeated maxima, NaN (also in front) and a
 * row with nothing above -inf: the same index as argmax_ref, exactly. */
Test(cuda_kernels, argmax_rows)
{
    static const int NS[] = {1, 31, 1000, 32000};
    uint64_t rng = 11;
    for (int c = 0; c < 4; c++) {
        int n = NS[c], rows = 6;
        float *x = malloc(sizeof(float) * rows * n);
        fill_uniform(x, (size_t)rows * n, -4, 4, &rng);
        for (int r = 0; r < rows; r++) {
            float *row = x + (size_t)r * n;
            int i = (int)(rng_next(&rng) % n), j = (int)(rng_next(&rng) % n);
            if (r == 1) row[i] = row[j] = 9; /* a tie: the earlier wins */
            if (r == 2) row[0] = NAN, row[i] = NAN;
            if (r == 3)
                for (int k = 0; k < n; k++) row[k] = k % 7 ? -INFINITY : NAN;
            if (r == 4) row[n - 1] = 100;
        }
        float *d_x = dev_copy(x, sizeof(float) * rows * n);
        int32_t *d_out = dev_alloc(sizeof(int32_t) * rows);
        kc_argmax(0, d_out, d_x, rows, n);
        int32_t *out = host_copy(d_out, sizeof(int32_t) * rows);
        for (int r = 0; r < rows; r++)
            cr_expect_eq(out[r], argmax_ref(x + (size_t)r * n, n), "n=%d row %d", n, r);
        cudaFree(d_x), cudaFree(d_out);
        free(x), free(out);
    }
}

/* ---- attention -------------------------------------------------------- */

struct attn_case {
    enum dtype dt;
    int hd, bs, n_kv, group;
    int n_seqs;
    const int *ctx;   /* context length of each sequence after this step */
    const int *q_len; /* query tokens of each sequence in this step */
    int part_size;    /* 0: the prefill kernel for all; else decode kernel (this
                         partition) for one-token sequences, prefill for the rest */
};

/* Builds a random paged cache and queries, runs the CUDA kernel and the CPU
 * reference, and compares. Unused cache slots hold NaN, and unused block
 * table entries point at an unused (NaN) block, so any read beyond a
 * context poisons the output. */
static void run_attention(const struct attn_case *c, uint64_t seed)
{
    uint64_t rng = seed;
    int n_heads = c->n_kv * c->group, hd = c->hd, bs = c->bs, row = c->n_kv * hd;
    int T = 0, max_blocks = 1, used = 0, max_q = 0, max_ctx = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int nb = (c->ctx[s] + bs - 1) / bs;
        used += nb;
        T += c->q_len[s];
        max_blocks = nb > max_blocks ? nb : max_blocks;
        max_q = c->q_len[s] > max_q ? c->q_len[s] : max_q;
        max_ctx = c->ctx[s] > max_ctx ? c->ctx[s] : max_ctx;
    }
    int n_blocks = used + 2, spare = used; /* block `spare` is never written */
    int *perm = malloc(sizeof(int) * n_blocks);
    for (int i = 0; i < n_blocks; i++) perm[i] = i;
    for (int i = n_blocks - 1; i > 0; i--) {
        int j = (int)(rng_next(&rng) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    spare = perm[spare];
    int32_t *bt = malloc(sizeof(int32_t) * c->n_seqs * max_blocks);
    size_t n_cache = (size_t)n_blocks * bs * row, es = dtype_size(c->dt);
    void *kc = malloc(n_cache * es), *vc = malloc(n_cache * es);
    float *kref = malloc(n_cache * 4), *vref = malloc(n_cache * 4);
    memset(kc, 0xff, n_cache * es), memset(vc, 0xff, n_cache * es);
    memset(kref, 0xff, n_cache * 4), memset(vref, 0xff, n_cache * 4);
    int32_t *positions = malloc(sizeof(int32_t) * T), *tok_seq = malloc(sizeof(int32_t) * T);
    int32_t *seq_start = malloc(sizeof(int32_t) * (c->n_seqs + 1));
    int next = 0, t = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int nb = (c->ctx[s] + bs - 1) / bs;
        for (int b = 0; b < max_blocks; b++) bt[s * max_blocks + b] = b < nb ? perm[next++] : spare;
        for (int p = 0; p < c->ctx[s]; p++) {
            size_t slot = (size_t)bt[s * max_blocks + p / bs] * bs + p % bs;
            for (int i = 0; i < row; i++) {
                float a = (float)(rng_next(&rng) % 20001) / 10000.0f - 1.0f;
                float b = (float)(rng_next(&rng) % 20001) / 10000.0f - 1.0f;
                kref[slot * row + i] = put(kc, c->dt, slot * row + i, a);
                vref[slot * row + i] = put(vc, c->dt, slot * row + i, b);
            }
        }
        seq_start[s] = t;
        for (int j = 0; j < c->q_len[s]; j++, t++) {
            positions[t] = c->ctx[s] - c->q_len[s] + j;
            tok_seq[t] = s;
        }
    }
    seq_start[c->n_seqs] = T;
    size_t nq = (size_t)T * n_heads * hd;
    float *q = malloc(nq * 4), *ref = malloc(nq * 4), *scratch = malloc(sizeof(float) * (max_ctx + 1));
    fill_uniform(q, nq, -1, 1, &rng);
    struct kv_layer kv = {kref, vref, bs, c->n_kv, hd, NULL};
    struct attn_batch ab = {.n_tokens = T, .n_heads = n_heads, .tok_seq = tok_seq, .positions = positions,
                            .block_tables = bt, .max_blocks = max_blocks, .scale = 1.0f / sqrtf((float)hd)};
    attention_ref(ref, q, &kv, &ab, scratch, 0, (int64_t)T * n_heads);

    float *d_q = dev_copy(q, nq * 4), *d_out = dev_alloc(nq * 4);
    void *d_kc = dev_copy(kc, n_cache * es), *d_vc = dev_copy(vc, n_cache * es);
    struct kc_attn a = {c->n_seqs, n_heads, c->n_kv, hd, bs, dev_copy(seq_start, sizeof(int32_t) * (c->n_seqs + 1)),
                        dev_copy(positions, sizeof(int32_t) * T),
                        dev_copy(bt, sizeof(int32_t) * c->n_seqs * max_blocks), max_blocks, max_q, max_ctx, ab.scale,
                        1.0f};
    float *d_tmp = NULL;
    if (c->part_size) {
        d_tmp = dev_alloc(sizeof(float) * kc_decode_tmp_floats(&a, c->part_size));
        kc_attention_decode(0, d_out, d_q, d_kc, d_vc, c->dt, &a, c->part_size, d_tmp);
        if (max_q > 1) kc_attention_prefill(0, d_out, d_q, d_kc, d_vc, c->dt, &a, 2);
    } else {
        kc_attention_prefill(0, d_out, d_q, d_kc, d_vc, c->dt, &a, 1);
    }
    float *out = host_copy(d_out, nq * 4);
    char label[160];
    snprintf(label, sizeof(label), "%s %s hd=%d bs=%d kv=%d group=%d part=%d seed=%llu",
             !c->part_size ? "prefill" : max_q > 1 ? "prefill+decode" : "decode", dtype_name(c->dt), hd, bs, c->n_kv, c->group, c->part_size,
             (unsigned long long)seed);
    /* on tensor cores Q and the softmax weights are rounded to the cache type */
    bool tc = (max_q > 1 || !c->part_size) && kc_prefill_on_tensor_cores(c->dt, hd);
    float tol = !tc ? 1e-4f : c->dt == DTYPE_BF16 ? 5e-3f : 6e-4f; /* 2.3x and 2.6x the largest seen */
    if (tc) {
        float worst = 0;
        for (size_t i = 0; i < nq; i++) worst = fmaxf(worst, fabsf(out[i] - ref[i]));
        cr_log_info("%s: tensor cores, largest difference %.2e", label, worst);
    }
    cr_assert(all_close(out, ref, nq, tc ? tol : 2e-5f, tol, label), "%s", label);
    cudaFree(d_q), cudaFree(d_out), cudaFree(d_kc), cudaFree(d_vc), cudaFree(d_tmp);
    cudaFree((void *)a.seq_start), cudaFree((void *)a.positions), cudaFree((void *)a.block_tables);
    free(perm), free(bt), free(kc), free(vc), free(kref), free(vref), free(positions), free(tok_seq);
    free(seq_start), free(q), free(ref), free(scratch), free(out);
}

static const int HDS[] = {64, 128}, BSS[] = {16, 32}, GROUPS[] = {1, 4, 8};

/* Contexts across block (16/32) and partition (64) boundaries. */
Test(cuda_kernels, paged_decode_attention)
{
    static const int ctx[] = {1, 15, 16, 17, 33, 64, 65, 200}, q1[] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int d = 1; d < 3; d++)
        for (int h = 0; h < 2; h++)
            for (int b = 0; b < 2; b++)
                for (int g = 0; g < 3; g++) {
                    struct attn_case c = {DTYPES[d], HDS[h], BSS[b], 2, GROUPS[g], 8, ctx, q1, 64};
                    run_attention(&c, 100 + d * 10 + h * 5 + b * 3 + g);
                }
    for (int h = 0; h < 2; h++) { /* fp8 caches: 16 values a vector (hd 128), the scalar layout (hd 64) */
        struct attn_case c = {DTYPE_F8_E4M3, HDS[h], 16, 2, 4, 8, ctx, q1, 64};
        run_attention(&c, 190 + h);
    }
}

/* The default partition (512) and contexts around it; a single partition;
 * fp32 caches; head sizes that are not a multiple of 32 (stories260K's 8). */
Test(cuda_kernels, paged_decode_attention_split_k_and_odd_shapes)
{
    static const int ctx[] = {511, 512, 513, 1100}, q1[] = {1, 1, 1, 1};
    struct attn_case c = {DTYPE_BF16, 128, 16, 1, 8, 4, ctx, q1, KC_MAX_PART};
    run_attention(&c, 1);
    static const int short_ctx[] = {3, 40, 90}, q3[] = {1, 1, 1};
    static const int odd_hd[] = {8, 80, 256};
    for (int i = 0; i < 3; i++) {
        struct attn_case o = {DTYPE_F32, odd_hd[i], 16, 2, 2, 3, short_ctx, q3, 96};
        run_attention(&o, 2 + i);
    }
    struct attn_case wide = {DTYPE_F16, 64, 16, 1, 12, 3, short_ctx, q3, 512}; /* 12 heads: two head chunks */
    run_attention(&wide, 9);
    struct attn_case hd256 = {DTYPE_BF16, 256, 16, 2, 1, 3, short_ctx, q3, 64}; /* 32 lanes a row, one head */
    run_attention(&hd256, 10);
    struct attn_case f32 = {DTYPE_F32, 32, 16, 1, 4, 3, short_ctx, q3, 32}; /* fp32: 8 lanes a row */
    run_attention(&f32, 11);
}

/* Mixed steps: whole prompts, chunks continuing a cached prefix, decodes. */
Test(cuda_kernels, varlen_prefill_attention)
{
    static const int ctx[] = {1, 17, 40, 70, 33}, q_len[] = {1, 17, 8, 70, 1};
    for (int d = 1; d < 3; d++)
        for (int h = 0; h < 2; h++)
            for (int b = 0; b < 2; b++)
                for (int g = 0; g < 3; g++) {
                    struct attn_case c = {DTYPES[d], HDS[h], BSS[b], 2, GROUPS[g], 5, ctx, q_len, 0};
                    run_attention(&c, 200 + d * 10 + h * 5 + b * 3 + g);
                    c.part_size = 32; /* the backend's split: chunks to prefill, decodes to decode */
                    run_attention(&c, 250 + d * 10 + h * 5 + b * 3 + g);
                }
    static const int odd_hd[] = {8, 80, 256};
    for (int i = 0; i < 3; i++) {
        struct attn_case o = {DTYPE_F32, odd_hd[i], 16, 2, 2, 5, ctx, q_len, 0};
        run_attention(&o, 300 + i);
    }
    for (int h = 0; h < 2; h++) { /* fp8 caches: the CUDA-core prefill kernel, with and without decodes */
        struct attn_case c = {DTYPE_F8_E4M3, HDS[h], 16, 2, 4, 5, ctx, q_len, 0};
        run_attention(&c, 310 + h);
        c.part_size = 32;
        run_attention(&c, 320 + h);
    }
}

/* About two blocks per multiprocessor: short partitions for a lone
 * sequence, whole ones for a big batch, never past the 32..512 bounds. */
Test(cuda_kernels, decode_partition_size)
{
    struct kc_attn a = {.n_seqs = 1, .n_heads = 32, .n_kv_heads = 4, .head_dim = 64, .max_ctx = 140};
    cr_expect_eq(kc_decode_part_size(&a, 132), 32); /* 4 blocks a partition: as many as 5 partitions */
    a.n_kv_heads = 32, a.max_ctx = 4096;
    cr_expect_eq(kc_decode_part_size(&a, 132), 480); /* 32 blocks: 9 partitions */
    a.n_seqs = 32;
    cr_expect_eq(kc_decode_part_size(&a, 132), KC_MAX_PART); /* 1024 blocks fill the GPU */
    a.n_seqs = 1, a.n_heads = 64, a.n_kv_heads = 1, a.max_ctx = 100000;
    cr_expect_eq(kc_decode_part_size(&a, 132), KC_MAX_PART);
}

/* The same kernels under other interleavings of a block's threads: a race on
 * shared memory would change the result. */
Test(cuda_kernels, attention_under_several_seeds)
{
    static const int ctx[] = {37, 70}, q_dec[] = {1, 1}, q_pf[] = {37, 5};
    for (uint64_t seed = 2; seed <= 4; seed++) {
        emu_set_seed(seed);
        struct attn_case dec = {DTYPE_BF16, 64, 16, 2, 4, 2, ctx, q_dec, 32};
        struct attn_case pf = {DTYPE_BF16, 64, 16, 2, 4, 2, ctx, q_pf, 0};
        run_attention(&dec, 7);
        run_attention(&pf, 7);
    }
    emu_set_seed(1);
}
