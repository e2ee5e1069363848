/* test_kernels.c: every CPU kernel's fast path against its scalar reference
 * on random shapes (odd sizes included), and the paged attention reference
 * against dense attention over the same keys and values. */
#include <criterion/criterion.h>
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "test_util.h"

static void require_avx2(void)
{
    if (!kcpu_have_avx2()) cr_skip_test("this CPU has no AVX2/FMA/F16C: only the references run here");
}

/* Random weights of type dt, and their exact fp32 values. */
static void *make_weights(enum dtype dt, size_t n, float *exact, uint64_t *rng)
{
    fill_uniform(exact, n, -1.0f, 1.0f, rng);
    void *w = malloc(n * dtype_size(dt));
    for (size_t i = 0; i < n; i++) {
        dtype_set(w, dt, i, exact[i]);
        exact[i] = dtype_get(w, dt, i);
    }
    return w;
}

typedef void matmul_fn(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                       int T, int K, int n0, int n1, bool accumulate);

/* fn against matmul_ref over token counts and K that hit every tile size and
 * tail (the AVX-512 tiles: up to 6 tokens, 16-float steps); x rows longer
 * than K (their tails NaN, so reading one shows), then accumulating. */
static void check_matmul(matmul_fn *fn, const char *name)
{
    static const int Ts[] = {1, 2, 3, 4, 5, 7, 13, 16, 17};
    static const int Ks[] = {1, 7, 8, 9, 17, 36, 75, 64, 203, 288};
    static const int Ns[] = {1, 2, 3, 5, 17, 64};
    uint64_t rng = 1;
    for (int dt = 0; dt < 3; dt++)
        for (size_t a = 0; a < sizeof(Ts) / sizeof(*Ts); a++)
            for (size_t b = 0; b < sizeof(Ks) / sizeof(*Ks); b++)
                for (size_t c = 0; c < sizeof(Ns) / sizeof(*Ns); c++) {
                    int T = Ts[a], K = Ks[b], N = Ns[c], ldx = K + 5;
                    float *x = malloc(T * ldx * 4), *wf = malloc(N * K * 4);
                    float *y0 = malloc(T * N * 4), *y1 = malloc(T * N * 4);
                    for (int i = 0; i < T * ldx; i++) x[i] = NAN;
                    for (int t = 0; t < T; t++) fill_uniform(x + t * ldx, K, -1, 1, &rng);
                    void *w = make_weights((enum dtype)dt, (size_t)N * K, wf, &rng);
                    matmul_ref(y0, N, x, ldx, w, (enum dtype)dt, T, K, 0, N, false);
                    /* a sub-range of rows, as a thread computes it */
                    int mid = N / 2;
                    fn(y1, N, x, ldx, w, (enum dtype)dt, T, K, 0, mid, false);
                    fn(y1, N, x, ldx, w, (enum dtype)dt, T, K, mid, N, false);
                    char label[96];
                    snprintf(label, sizeof(label), "%s %s T=%d K=%d N=%d", name, dtype_name(dt), T, K, N);
                    cr_assert(all_close(y1, y0, T * N, 1e-5f * K, 1e-5f, label), "%s", label);
                    fn(y1, N, x, ldx, w, (enum dtype)dt, T, K, 0, N, true);
                    for (int i = 0; i < T * N; i++) y0[i] *= 2;
                    cr_assert(all_close(y1, y0, T * N, 2e-5f * K, 1e-5f, label), "%s, accumulating", label);
                    free(x), free(wf), free(y0), free(y1), free(w);
                }
}

Test(kernels, matmul_fast_matches_reference)
{
    require_avx2();
    check_matmul(matmul_avx2, "matmul_avx2");
}

Test(kernels, matmul_avx512_matches_reference)
{
    if (!kcpu_have_avx512()) cr_skip_test("this CPU has no AVX-512 F/BW/VL: matmul_avx512 not run here");
    check_matmul(matmul_avx512, "matmul_avx512");
}

Test(kernels, matmul_reference_is_a_plain_dot_product)
{
    /* y = x W^T on a case worked by hand, in every dtype (values exact in all) */
    float x[2 * 3] = {1, 2, 3, -1, 0.5f, 2};
    float w[2 * 3] = {0.5f, -1, 2, 1, 1, 1};
    float want[4] = {1 * 0.5f - 2 + 6, 6, -0.5f - 0.5f + 4, 1.5f};
    for (int dt = 0; dt < 3; dt++) {
        uint16_t h[6];
        for (int i = 0; i < 6; i++) h[i] = dt == DTYPE_F16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
        float y[4];
        const void *wt = dt == DTYPE_F32 ? (void *)w : (void *)h;
        matmul_ref(y, 2, x, 3, wt, (enum dtype)dt, 2, 3, 0, 2, false);
        cr_assert(all_close(y, want, 4, 0, 0, "matmul_ref"));
        /* accumulating, K = 2 of x's 3 columns: w's first 4 values as [2, 2]
         * rows {0.5, -1}, {2, 1} */
        float part[4] = {1 * 0.5f - 2, 1 * 2 + 2 * 1, -1 * 0.5f - 0.5f, -1 * 2 + 0.5f};
        matmul_ref(y, 2, x, 3, wt, (enum dtype)dt, 2, 2, 0, 2, true);
        float sum[4];
        for (int i = 0; i < 4; i++) sum[i] = want[i] + part[i];
        cr_assert(all_close(y, sum, 4, 0, 0, "matmul_ref accumulating"));
    }
}

Test(kernels, rmsnorm_fast_matches_reference)
{
    require_avx2();
    static const int Hs[] = {1, 7, 8, 36, 64, 203, 2048};
    uint64_t rng = 2;
    for (size_t a = 0; a < sizeof(Hs) / sizeof(*Hs); a++) {
        int H = Hs[a], T = 5;
        float *x = malloc(T * H * 4), *w = malloc(H * 4), *o0 = malloc(T * H * 4), *o1 = malloc(T * H * 4);
        fill_uniform(x, T * H, -3, 3, &rng);
        fill_uniform(w, H, 0.5f, 1.5f, &rng);
        rmsnorm_ref(o0, x, w, H, 1e-5f, 0, T);
        rmsnorm_avx2(o1, x, w, H, 1e-5f, 0, T);
        cr_assert(all_close(o1, o0, T * H, 1e-6f, 1e-5f, "rmsnorm"), "H=%d", H);
        free(x), free(w), free(o0), free(o1);
    }
}

Test(kernels, rope_fast_matches_reference)
{
    require_avx2();
    static const int hds[] = {2, 8, 12, 16, 32, 64, 128};
    uint64_t rng = 3;
    for (size_t a = 0; a < sizeof(hds) / sizeof(*hds); a++) {
        int hd = hds[a], T = 3, nh = 3, half = hd / 2;
        float *x0 = malloc(T * nh * hd * 4), *x1 = malloc(T * nh * hd * 4);
        float *c = malloc(T * half * 4), *s = malloc(T * half * 4);
        fill_uniform(x0, T * nh * hd, -2, 2, &rng);
        memcpy(x1, x0, T * nh * hd * 4);
        for (int i = 0; i < T * half; i++) {
            c[i] = cosf(0.37f * i);
            s[i] = sinf(0.37f * i);
        }
        rope_ref(x0, nh, hd, c, s, 0, T);
        rope_avx2(x1, nh, hd, c, s, 0, T);
        cr_assert(all_close(x1, x0, T * nh * hd, 1e-6f, 1e-6f, "rope"), "hd=%d", hd);
        free(x0), free(x1), free(c), free(s);
    }
}

Test(kernels, rope_rotates_halves)
{
    /* hd 4, one head: pairs (0, 2) and (1, 3) rotate by the given angles */
    float x[4] = {1, 2, 3, 4}, c[2] = {0, 1}, s[2] = {1, 0};
    rope_ref(x, 1, 4, c, s, 0, 1);
    float want[4] = {1 * 0 - 3 * 1, 2, 3 * 0 + 1 * 1, 4};
    cr_assert(all_close(x, want, 4, 0, 0, "rope_ref"));
}

Test(kernels, silu_mul_and_add_fast_match_reference)
{
    require_avx2();
    static const int ns[] = {1, 7, 8, 9, 100, 5632};
    uint64_t rng = 4;
    for (size_t a = 0; a < sizeof(ns) / sizeof(*ns); a++) {
        int n = ns[a];
        float *g = malloc(n * 4), *u = malloc(n * 4), *o0 = malloc(n * 4), *o1 = malloc(n * 4);
        fill_uniform(g, n, -30, 30, &rng);
        fill_uniform(u, n, -2, 2, &rng);
        silu_mul_ref(o0, g, u, 0, n);
        silu_mul_avx2(o1, g, u, 0, n);
        cr_assert(all_close(o1, o0, n, 1e-6f, 1e-5f, "silu_mul"), "n=%d", n);
        memcpy(o0, g, n * 4);
        memcpy(o1, g, n * 4);
        add_ref(o0, u, 0, n);
        add_avx2(o1, u, 0, n);
        cr_assert(all_close(o1, o0, n, 0, 0, "add"), "n=%d", n);
        free(g), free(u), free(o0), free(o1);
    }
}

Test(kernels, embed_gathers_rows_in_every_dtype)
{
    uint64_t rng = 5;
    int V = 11, H = 13, T = 4;
    int32_t ids[4] = {3, 0, 10, 3};
    for (int dt = 0; dt < 3; dt++) {
        float *exact = malloc(V * H * 4), *out = malloc(T * H * 4);
        void *table = make_weights((enum dtype)dt, (size_t)V * H, exact, &rng);
        embed_ref(out, table, (enum dtype)dt, ids, H, 0, T);
        for (int t = 0; t < T; t++) cr_assert(all_close(out + t * H, exact + ids[t] * H, H, 0, 0, "embed"));
        free(exact), free(out), free(table);
    }
}

__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

Test(kernels, half_precision_conversions_match_the_hardware)
{
    require_avx2();
    for (uint32_t h = 0; h < 65536; h++) {
        float a = f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
        cr_assert(memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)), "f16 %04x: %g vs %g", h, a, b);
    }
    uint64_t rng = 6;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rng_next(&rng);
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        uint16_t mine = f32_to_f16(f), hw = hw_f32_to_f16(f);
        cr_assert_eq(mine, hw, "f32 %08x -> f16 %04x, hardware %04x", u, mine, hw);
    }
}

Test(kernels, bf16_round_trip)
{
    cr_assert_eq(f32_to_bf16(1.0f), 0x3f80);
    cr_assert_float_eq(bf16_to_f32(0x3f80), 1.0f, 0);
    cr_assert_eq(f32_to_bf16(1.00390625f), 0x3f80); /* tie to even */
    cr_assert_eq(f32_to_bf16(1.01171875f), 0x3f82); /* tie to even, upwards */
}

// ---------------------------------------------------------------------------
// paged attention

struct paged_case {
    int n_seqs, n_heads, n_kv, hd, bs;
    int seq_len[4];  /* tokens in the cache per sequence */
    int q_len[4];    /* trailing tokens of each sequence that are queries */
};

/* Builds a cache with shuffled block tables and NaN in every unused slot,
 * runs attention (ref and, when available, avx2) and compares both with
 * dense attention over the same K/V. */
static void run_paged(const struct paged_case *pc, uint64_t seed)
{
    uint64_t rng = seed;
    int max_blocks = 0, total_blocks = 0, T = 0;
    for (int s = 0; s < pc->n_seqs; s++) {
        int nb = (pc->seq_len[s] + pc->bs - 1) / pc->bs;
        max_blocks = nb > max_blocks ? nb : max_blocks;
        total_blocks += nb;
        T += pc->q_len[s];
    }
    int num_blocks = total_blocks + 3, row = pc->n_kv * pc->hd;
    size_t cache_n = (size_t)num_blocks * pc->bs * row;
    float *kc = malloc(cache_n * 4), *vc = malloc(cache_n * 4);
    for (size_t i = 0; i < cache_n; i++) kc[i] = vc[i] = NAN;
    /* a random permutation of block ids */
    int32_t *perm = malloc(num_blocks * 4);
    for (int i = 0; i < num_blocks; i++) perm[i] = i;
    for (int i = num_blocks - 1; i > 0; i--) {
        int j = (int)(rng_next(&rng) % (i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int32_t *bt = calloc(pc->n_seqs * max_blocks, 4);
    int32_t *tok_seq = malloc(T * 4), *pos = malloc(T * 4);
    float *q = malloc((size_t)T * pc->n_heads * pc->hd * 4);
    fill_uniform(q, (size_t)T * pc->n_heads * pc->hd, -1, 1, &rng);
    /* dense copies of each sequence's K/V: [seq][pos][row] */
    float *dk = malloc((size_t)pc->n_seqs * 512 * row * 4), *dv = malloc((size_t)pc->n_seqs * 512 * row * 4);
    int next = 0, t = 0;
    for (int s = 0; s < pc->n_seqs; s++) {
        int nb = (pc->seq_len[s] + pc->bs - 1) / pc->bs;
        for (int b = 0; b < nb; b++) bt[s * max_blocks + b] = perm[next++];
        float *sk = dk + (size_t)s * 512 * row, *sv = dv + (size_t)s * 512 * row;
        fill_uniform(sk, (size_t)pc->seq_len[s] * row, -1, 1, &rng);
        fill_uniform(sv, (size_t)pc->seq_len[s] * row, -1, 1, &rng);
        for (int p = 0; p < pc->seq_len[s]; p++) {
            int64_t slot = (int64_t)bt[s * max_blocks + p / pc->bs] * pc->bs + p % pc->bs;
            memcpy(kc + slot * row, sk + (size_t)p * row, row * 4);
            memcpy(vc + slot * row, sv + (size_t)p * row, row * 4);
        }
        for (int i = 0; i < pc->q_len[s]; i++, t++) {
            tok_seq[t] = s;
            pos[t] = pc->seq_len[s] - pc->q_len[s] + i;
        }
    }
    struct kv_layer kv = {kc, vc, pc->bs, pc->n_kv, pc->hd, NULL};
    struct attn_batch ab = {.n_tokens = T, .n_heads = pc->n_heads, .tok_seq = tok_seq, .positions = pos,
                            .block_tables = bt, .max_blocks = max_blocks, .scale = 1.0f / sqrtf((float)pc->hd)};
    size_t on = (size_t)T * pc->n_heads * pc->hd;
    float *o_ref = malloc(on * 4), *o_fast = malloc(on * 4), *o_dense = calloc(on, 4), *scratch = malloc(512 * 4);
    attention_ref(o_ref, q, &kv, &ab, scratch, 0, (int64_t)T * pc->n_heads);
    /* dense: softmax(q k^T * scale) v over positions 0..pos, in double */
    int group = pc->n_heads / pc->n_kv;
    for (int i = 0; i < T; i++)
        for (int h = 0; h < pc->n_heads; h++) {
            const float *qi = q + ((size_t)i * pc->n_heads + h) * pc->hd;
            const float *sk = dk + (size_t)tok_seq[i] * 512 * row + (h / group) * pc->hd;
            const float *sv = dv + (size_t)tok_seq[i] * 512 * row + (h / group) * pc->hd;
            double sc[512], mx = -INFINITY, sum = 0;
            for (int p = 0; p <= pos[i]; p++) {
                double d = 0;
                for (int e = 0; e < pc->hd; e++) d += (double)qi[e] * sk[(size_t)p * row + e];
                sc[p] = d / sqrt(pc->hd);
                mx = sc[p] > mx ? sc[p] : mx;
            }
            for (int p = 0; p <= pos[i]; p++) sum += (sc[p] = exp(sc[p] - mx));
            float *o = o_dense + ((size_t)i * pc->n_heads + h) * pc->hd;
            for (int e = 0; e < pc->hd; e++) {
                double acc = 0;
                for (int p = 0; p <= pos[i]; p++) acc += sc[p] / sum * sv[(size_t)p * row + e];
                o[e] = (float)acc;
            }
        }
    char label[128];
    snprintf(label, sizeof(label), "attention ref: seqs=%d heads=%d/%d hd=%d bs=%d", pc->n_seqs, pc->n_heads,
             pc->n_kv, pc->hd, pc->bs);
    cr_assert(all_close(o_ref, o_dense, on, 1e-5f, 1e-4f, label), "%s", label);
    if (kcpu_have_avx2()) {
        /* two halves, as two threads would split the work */
        int64_t items = (int64_t)T * pc->n_heads;
        attention_avx2(o_fast, q, &kv, &ab, scratch, 0, items / 2);
        attention_avx2(o_fast, q, &kv, &ab, scratch, items / 2, items);
        label[10] = '*';
        cr_assert(all_close(o_fast, o_ref, on, 1e-5f, 1e-4f, label), "%s", label);
    }
    free(kc), free(vc), free(perm), free(bt), free(tok_seq), free(pos), free(q), free(dk), free(dv);
    free(o_ref), free(o_fast), free(o_dense), free(scratch);
}

Test(kernels, paged_attention_matches_dense)
{
    static const struct paged_case cases[] = {
        {1, 4, 4, 8, 16, {1}, {1}},                              /* first token */
        {1, 8, 2, 8, 16, {37}, {37}},                            /* prefill, GQA 4 */
        {2, 8, 1, 12, 16, {16, 33}, {1, 1}},                     /* decodes at block edges, GQA 8 */
        {3, 4, 4, 64, 16, {100, 5, 17}, {3, 5, 1}},              /* mixed chunks and decodes */
        {4, 6, 3, 16, 32, {64, 65, 31, 200}, {64, 2, 31, 1}},    /* block size 32 */
        {2, 8, 8, 128, 16, {300, 48}, {1, 16}},                  /* long context, hd 128 */
        {2, 6, 6, 48, 16, {70, 9}, {2, 9}},                      /* hd 48: six vectors */
        {1, 2, 1, 20, 5, {23}, {23}},                            /* hd 20 (vector tail), block size 5 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) run_paged(&cases[i], 100 + i);
}

Test(kernels, kv_write_places_rows_in_slots)
{
    float kc[4 * 2 * 3], vc[4 * 2 * 3];
    for (int i = 0; i < 24; i++) kc[i] = vc[i] = NAN;
    struct kv_layer kv = {kc, vc, 2, 1, 3, NULL};
    float k[2 * 3] = {1, 2, 3, 4, 5, 6}, v[2 * 3] = {-1, -2, -3, -4, -5, -6};
    int64_t slots[2] = {5, 2};
    kv_write_ref(&kv, k, v, slots, 0, 2);
    cr_assert(all_close(kc + 15, k, 3, 0, 0, "k slot 5") && all_close(kc + 6, k + 3, 3, 0, 0, "k slot 2"));
    cr_assert(all_close(vc + 15, v, 3, 0, 0, "v slot 5") && all_close(vc + 6, v + 3, 3, 0, 0, "v slot 2"));
    cr_assert(isnan(kc[0]) && isnan(vc[23]));
}
