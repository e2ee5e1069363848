/* test_qmatmul.c: the quantized matmul (kernels.h, "Quantized weights"):
 * qact_quantize's AVX-512 path byte for byte against the reference,
 * matmul_q_avx512 against matmul_q_ref on odd shapes of every block type,
 * and matmul_q_ref against a plain float dot product of weights and
 * activations decoded here (independently of kernels/quant.c and the ref). */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/cpu/kernels.h"
#include "../../kernels/quant.h"
#include "test_util.h"

static const enum dtype QTYPES[] = {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K};

static bool have_fast_q(void)
{
    __builtin_cpu_init();
    return kcpu_have_avx512() && __builtin_cpu_supports("avx512vnni");
}

static void require_fast_q(void)
{
    if (!have_fast_q()) cr_skip_test("this CPU has no AVX-512 VNNI: only the references run here");
}

// ---------------------------------------------------------------------------
// random weights, and their decoding (ggml's formats, written out here)

/* Q4_K's 6-bit scale and min of group j, from the bit layout as ggml packs it:
 * bytes 0..3 hold sc 0..3 (low 6 bits) and the top 2 bits of sc 4..7, bytes
 * 4..7 the same for the mins, bytes 8..11 the low 4 bits of sc 4..7 (low
 * nibble) and of m 4..7 (high nibble). */
static void q4k_unpack(const uint8_t s[12], int sc[8], int m[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 0x3f;
        m[j] = s[j + 4] & 0x3f;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
}

/* One block of type wt -> its dtype_block(wt) floats. */
static void decode_block(const void *blk, enum dtype wt, float *out)
{
    if (wt == DTYPE_Q8_0) {
        const struct blk_q8_0 *b = blk;
        for (int i = 0; i < 32; i++) out[i] = f16_to_f32(b->d) * b->qs[i];
    } else if (wt == DTYPE_Q4_0) {
        const struct blk_q4_0 *b = blk;
        for (int i = 0; i < 16; i++) {
            out[i] = f16_to_f32(b->d) * ((b->qs[i] & 15) - 8);
            out[i + 16] = f16_to_f32(b->d) * ((b->qs[i] >> 4) - 8);
        }
    } else if (wt == DTYPE_Q4_K) {
        const struct blk_q4_k *b = blk;
        int sc[8], m[8];
        q4k_unpack(b->scales, sc, m);
        for (int i = 0; i < 256; i++) {
            int g = i / 32, q = (b->qs[32 * (g / 2) + i % 32] >> (4 * (g % 2))) & 15;
            out[i] = f16_to_f32(b->d) * sc[g] * q - f16_to_f32(b->dmin) * m[g];
        }
    } else {
        const struct blk_q6_k *b = blk;
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 32; l++)
                for (int c = 0; c < 4; c++) {
                    int i = 128 * half + 32 * c + l;
                    int lo = (b->ql[64 * half + l + 32 * (c & 1)] >> (4 * (c / 2))) & 15;
                    int hi = (b->qh[32 * half + l] >> (2 * c)) & 3;
                    out[i] = f16_to_f32(b->d) * b->scales[i / 16] * ((lo | hi << 4) - 32);
                }
    }
}

// ---------------------------------------------------------------------------
// quantized activations

/* Rows with all-zero groups, huge and tiny (subnormal) values, exact ties. */
static void fill_special(float *x, int T, int ldx, uint64_t *rng)
{
    static const float specials[] = {0.0f, -0.0f, 3.0e38f, -3.0e38f, 1.0e30f, 1.0e-38f, 1.0e-40f,
                                     -1.0e-45f, 0.5f, -2.5f, 127.0f, FLT_MIN};
    fill_qacts(x, T, ldx, rng);
    for (int t = 0; t < T; t++) {
        float *xt = x + (size_t)t * ldx;
        int mode = t % 4;
        for (int k = 0; k < ldx; k++) {
            if (mode == 0 && k < 64) xt[k] = 0.0f;                                  /* zero groups */
            if (mode == 1 && k % 7 == 0) xt[k] = specials[rng_next(rng) % 12];
            if (mode == 2) xt[k] = (float)((int)(rng_next(rng) % 255) - 127) * 0.5f; /* ties */
            if (mode == 3 && k % 32 < 16) xt[k] *= 1.0e-39f;
        }
    }
}

Test(qmatmul, qact_quantize_fast_is_bytewise_the_reference)
{
    if (!kcpu_have_avx512()) cr_skip_test("this CPU has no AVX-512: only the reference runs here");
    static const int Ks[] = {256, 512, 2048, 5632 / 256 * 256};
    uint64_t rng = 11;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++)
        for (size_t b = 0; b < sizeof(Ks) / sizeof(*Ks); b++) {
            enum dtype wt = QTYPES[a];
            int K = Ks[b], T = 9, ldx = K + 13;
            size_t rb = qact_row_bytes(wt, K);
            float *x = malloc(sizeof(float) * T * ldx);
            char *q0 = malloc(rb * T), *q1 = malloc(rb * T);
            fill_special(x, T, ldx, &rng);
            memset(q0, 0xab, rb * T);
            memset(q1, 0xab, rb * T);
            qact_quantize_ref(q0, x, ldx, wt, K, 1, T);
            qact_quantize_avx512(q1, x, ldx, wt, K, 1, T);
            cr_assert(memcmp(q0, q1, rb * T) == 0, "%s K=%d: bytes differ", dtype_name(wt), K);
            for (size_t i = 0; i < rb; i++) cr_assert(((unsigned char *)q1)[i] == 0xab, "row 0 written");
            free(x), free(q0), free(q1);
        }
}

Test(qmatmul, qact_quantize_reference_layout)
{
    uint64_t rng = 12;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        enum dtype wt = QTYPES[a];
        int K = 512, T = 4, G = qact_group(wt);
        size_t rb = qact_row_bytes(wt, K);
        cr_assert(rb % 64 == 0 && rb >= K + 4 * (size_t)(K / G) + 2 * (size_t)(K / 16));
        float *x = malloc(sizeof(float) * T * K);
        char *q = malloc(rb * T);
        fill_special(x, T, K, &rng);
        qact_quantize_ref(q, x, K, wt, K, 0, T);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * K;
            const char *row = q + rb * t;
            const int8_t *qs = (const int8_t *)row;
            const float *d = (const float *)(row + K);
            const int16_t *s16 = (const int16_t *)(row + K + 4 * (K / G));
            for (int g = 0; g < K / G; g++) {
                float amax = 0;
                for (int i = 0; i < G; i++) amax = fmaxf(amax, fabsf(xt[g * G + i]));
                float want = amax / 127.0f < FLT_MIN ? 0.0f : amax / 127.0f;
                cr_assert(d[g] == want, "d[%d] = %g, want %g", g, d[g], want);
                for (int i = 0; i < G; i++) {
                    int k = g * G + i;
                    cr_assert(qs[k] >= -127 && qs[k] <= 127);
                    if (d[g] > 0) cr_assert(fabsf(qs[k] * d[g] - xt[k]) <= 0.5001f * d[g], "k=%d", k);
                    else cr_assert(qs[k] == 0);
                }
            }
            for (int i = 0; i < K / 16; i++) {
                int s = 0;
                for (int j = 0; j < 16; j++) s += qs[16 * i + j];
                cr_assert(s16[i] == s, "sum16[%d]", i);
            }
            for (const char *p = (const char *)(s16 + K / 16); p < row + rb; p++) cr_assert(*p == 0, "padding");
        }
        free(x), free(q);
    }
}

// ---------------------------------------------------------------------------
// the matmul

/* A test case: N rows of random blocks, T rows of quantized activations. */
struct qcase {
    enum dtype wt;
    int T, K, N;
    void *w;     /* [N, K] in wt */
    char *xq;    /* T rows of qact_row_bytes */
    float *x;    /* [T, K] the floats quantized */
};

static struct qcase make_case(enum dtype wt, int T, int K, int N, uint64_t *rng)
{
    struct qcase c = {wt, T, K, N, NULL, NULL, NULL};
    size_t nb = (size_t)N * K / dtype_block(wt);
    c.w = malloc(nb * dtype_block_bytes(wt));
    fill_qblocks(c.w, wt, nb, rng);
    c.x = malloc(sizeof(float) * T * K);
    fill_qacts(c.x, T, K, rng);
    c.xq = malloc(qact_row_bytes(wt, K) * T);
    qact_quantize_ref(c.xq, c.x, K, wt, K, 0, T);
    return c;
}

static void free_case(struct qcase *c) { free(c->w), free(c->xq), free(c->x); }

/* y[t, n] of a plain double dot product of the decoded weights and q * d, and
 * mag[t, n] = sum |w a|, the scale of float rounding errors. */
static void plain_dot(const struct qcase *c, float *y, float *mag)
{
    int G = qact_group(c->wt), B = dtype_block(c->wt);
    size_t rb = qact_row_bytes(c->wt, c->K), wrow = dtype_row_bytes(c->wt, c->K);
    float *wf = malloc(sizeof(float) * c->K), *af = malloc(sizeof(float) * c->K);
    for (int t = 0; t < c->T; t++) {
        const char *row = c->xq + rb * t;
        const float *d = (const float *)(row + c->K);
        for (int k = 0; k < c->K; k++) af[k] = ((const int8_t *)row)[k] * d[k / G];
        for (int n = 0; n < c->N; n++) {
            for (int b = 0; b < c->K / B; b++)
                decode_block((const char *)c->w + wrow * n + dtype_block_bytes(c->wt) * b, c->wt, wf + B * b);
            double s = 0, m = 0;
            for (int k = 0; k < c->K; k++) {
                s += (double)wf[k] * af[k];
                m += fabs((double)wf[k] * af[k]);
            }
            y[(size_t)t * c->N + n] = (float)s;
            mag[(size_t)t * c->N + n] = (float)m;
        }
    }
    free(wf), free(af);
}

/* |a - b| <= rel * mag + tiny everywhere; prints the first miss. */
static bool close_to_mag(const float *a, const float *b, const float *mag, size_t n, float rel, const char *label)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= rel * mag[i] + 1e-30f)) {
            fprintf(stderr, "%s: [%zu] %.9g vs %.9g (mag %g)\n", label, i, a[i], b[i], mag[i]);
            return false;
        }
    return true;
}

Test(qmatmul, reference_is_a_float_dot_of_decoded_blocks)
{
    uint64_t rng = 13;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        enum dtype wt = QTYPES[a];
        int B = dtype_block(wt);
        int Ks[] = {B, 3 * B, 2048};
        for (int kk = 0; kk < 3; kk++) {
            struct qcase c = make_case(wt, 3, Ks[kk], 5, &rng);
            size_t n = (size_t)c.T * c.N;
            float *want = malloc(4 * n), *mag = malloc(4 * n), *y = malloc(4 * n);
            plain_dot(&c, want, mag);
            matmul_q_ref(y, c.N, c.xq, c.w, wt, c.T, c.K, 0, c.N, false);
            char label[64];
            snprintf(label, sizeof(label), "matmul_q_ref %s K=%d", dtype_name(wt), c.K);
            cr_assert(close_to_mag(y, want, mag, n, 2e-6f, label), "%s", label);
            free(want), free(mag), free(y);
            free_case(&c);
        }
    }
}

/* matmul_q_avx512 against matmul_q_ref on rows [n0, N) (split at mid as two
 * threads would), then accumulating into what is there. */
static void check_fast(enum dtype wt, int T, int K, int N, int n0, uint64_t *rng)
{
    struct qcase c = make_case(wt, T, K, N, rng);
    size_t n = (size_t)T * N;
    float *y0 = malloc(4 * n), *y1 = malloc(4 * n), *want = malloc(4 * n), *mag = malloc(4 * n);
    plain_dot(&c, want, mag);
    for (size_t i = 0; i < n; i++) y0[i] = y1[i] = (float)i;
    int mid = n0 + (N - n0) / 2;
    matmul_q_ref(y0, N, c.xq, c.w, wt, T, K, n0, N, false);
    matmul_q_avx512(y1, N, c.xq, c.w, wt, T, K, n0, mid, false);
    matmul_q_avx512(y1, N, c.xq, c.w, wt, T, K, mid, N, false);
    char label[96];
    snprintf(label, sizeof(label), "matmul_q_avx512 %s T=%d K=%d N=%d n0=%d", dtype_name(wt), T, K, N, n0);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < n0; j++) cr_assert(y1[(size_t)t * N + j] == (float)((size_t)t * N + j), "%s: wrote row", label);
    cr_assert(close_to_mag(y1, y0, mag, n, 1e-5f, label), "%s", label);
    matmul_q_ref(y0, N, c.xq, c.w, wt, T, K, n0, N, true);
    matmul_q_avx512(y1, N, c.xq, c.w, wt, T, K, n0, N, true);
    for (size_t i = 0; i < n; i++) mag[i] *= 2;
    cr_assert(close_to_mag(y1, y0, mag, n, 1e-5f, label), "%s, accumulating", label);
    free(y0), free(y1), free(want), free(mag);
    free_case(&c);
}

Test(qmatmul, fast_matches_reference)
{
    require_fast_q();
    static const int Ts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 33};
    static const int Ns[] = {1, 4, 5, 7, 13};
    uint64_t rng = 14;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        int B = dtype_block(QTYPES[a]);
        int Ks[] = {B, 2 * B, 3 * B, B == 32 ? 15 * B : 5 * B};
        for (size_t i = 0; i < sizeof(Ts) / sizeof(*Ts); i++)
            for (int k = 0; k < 4; k++)
                for (size_t j = 0; j < sizeof(Ns) / sizeof(*Ns); j++)
                    check_fast(QTYPES[a], Ts[i], Ks[k], Ns[j], Ns[j] > 4 ? 2 : 0, &rng);
    }
}

Test(qmatmul, fast_matches_reference_on_model_rows)
{
    require_fast_q();
    uint64_t rng = 15;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        check_fast(QTYPES[a], 1, 2048, 37, 4, &rng);
        check_fast(QTYPES[a], 16, 5632 / 256 * 256, 9, 0, &rng);
    }
}

Test(qmatmul, dispatch_respects_the_cap)
{
    uint64_t rng = 16;
    for (size_t a = 0; a < sizeof(QTYPES) / sizeof(*QTYPES); a++) {
        struct qcase c = make_case(QTYPES[a], 5, 512, 9, &rng);
        size_t n = (size_t)c.T * c.N, rb = qact_row_bytes(c.wt, c.K);
        float *y0 = malloc(4 * n), *y1 = malloc(4 * n);
        char *xq = malloc(rb * c.T);
        kcpu_cap(KCPU_REF);
        cr_assert(matmul_q_row_align() == 1);
        qact_quantize(xq, c.x, c.K, c.wt, c.K, 0, c.T);
        cr_assert(memcmp(xq, c.xq, rb * c.T) == 0);
        matmul_q(y1, c.N, xq, c.w, c.wt, c.T, c.K, 0, c.N, false);
        matmul_q_ref(y0, c.N, xq, c.w, c.wt, c.T, c.K, 0, c.N, false);
        cr_assert(memcmp(y0, y1, 4 * n) == 0, "capped at ref: the reference");
        kcpu_cap(KCPU_AMX);
        if (have_fast_q()) {
            matmul_q(y1, c.N, xq, c.w, c.wt, c.T, c.K, 0, c.N, false);
            matmul_q_avx512(y0, c.N, xq, c.w, c.wt, c.T, c.K, 0, c.N, false);
            cr_assert(memcmp(y0, y1, 4 * n) == 0, "uncapped: the AVX-512 path");
            cr_assert(matmul_q_row_align() % 4 == 0);
        }
        free(y0), free(y1), free(xq);
        free_case(&c);
    }
}
