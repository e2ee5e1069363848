/* test_gguf.c: the GGUF container (base/gguf.c) over files built here byte
 * by byte, and GGUF weights (engine/gguf_model.c) against the safetensors
 * folder they were written from, tensor-parallel slices included. The
 * golden logits of the GGUF copies are in test_golden.c; bad files through
 * the binary in tests/cli/test_gguf.py. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../base/err.h"
#include "../../base/gguf.h"
#include "../../base/strbuf.h"
#include "../../engine/gguf_model.h"
#include "../../engine/weights.h"

/* ---- a GGUF writer for the tests ---- */

static void put(struct strbuf *b, const void *p, size_t n) { strbuf_append(b, p, n); }
static void u32(struct strbuf *b, uint32_t v) { put(b, &v, 4); }
static void u64(struct strbuf *b, uint64_t v) { put(b, &v, 8); }
static void str(struct strbuf *b, const char *s)
{
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void key(struct strbuf *b, const char *k, enum gguf_vtype t)
{
    str(b, k);
    u32(b, t);
}
static void header(struct strbuf *b, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void tensor_info(struct strbuf *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(b, name);
    u32(b, (uint32_t)nd);
    for (int i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad(struct strbuf *b, size_t align)
{
    while (b->len % align) put(b, "", 1);
}

/* Eleven keys of every kind, an F32 [3, 2] and a Q8_0 [2, 32] tensor. */
static struct strbuf sample(void)
{
    struct strbuf b = {0};
    header(&b, 2, 11);
    key(&b, "general.architecture", GGUF_STRING), str(&b, "llama");
    key(&b, "a.u8", GGUF_UINT8), put(&b, "\xfe", 1);
    key(&b, "a.i32", GGUF_INT32), u32(&b, (uint32_t)-7);
    key(&b, "a.u64", GGUF_UINT64), u64(&b, 1ull << 40);
    float f = 0.25f;
    double d = -1.5;
    key(&b, "a.f32", GGUF_FLOAT32), put(&b, &f, 4);
    key(&b, "a.f64", GGUF_FLOAT64), put(&b, &d, 8);
    key(&b, "a.bool", GGUF_BOOL), put(&b, "\x01", 1);
    key(&b, "a.strs", GGUF_ARRAY), u32(&b, GGUF_STRING), u64(&b, 3), str(&b, "a"), str(&b, "bc"), str(&b, "");
    key(&b, "a.ints", GGUF_ARRAY), u32(&b, GGUF_INT32), u64(&b, 2), u32(&b, 5), u32(&b, (uint32_t)-6);
    key(&b, "a.floats", GGUF_ARRAY), u32(&b, GGUF_FLOAT32), u64(&b, 1), put(&b, &f, 4);
    key(&b, "a.nested", GGUF_ARRAY), u32(&b, GGUF_ARRAY), u64(&b, 2);
    u32(&b, GGUF_UINT8), u64(&b, 2), put(&b, "\x01\x02", 2);
    u32(&b, GGUF_STRING), u64(&b, 1), str(&b, "x");
    tensor_info(&b, "w", 2, (uint64_t[]){3, 2}, GGML_F32, 0);
    tensor_info(&b, "q", 2, (uint64_t[]){32, 2}, GGML_Q8_0, 32);
    pad(&b, 32);
    for (int i = 0; i < 6; i++) {
        float v = (float)i;
        put(&b, &v, 4);
    }
    pad(&b, 32);
    for (int i = 0; i < 2 * 34; i++) put(&b, "\x11", 1);
    return b;
}

Test(gguf, type_table_is_ggml_s)
{
    struct { uint32_t t; int block, bytes; } want[] = {
        {GGML_F32, 1, 4}, {GGML_F16, 1, 2}, {GGML_BF16, 1, 2}, {GGML_Q4_0, 32, 18}, {GGML_Q4_1, 32, 20},
        {GGML_Q5_0, 32, 22}, {GGML_Q5_1, 32, 24}, {GGML_Q8_0, 32, 34}, {GGML_Q2_K, 256, 84},
        {GGML_Q3_K, 256, 110}, {GGML_Q4_K, 256, 144}, {GGML_Q5_K, 256, 176}, {GGML_Q6_K, 256, 210},
        {GGML_Q8_K, 256, 292}, {GGML_IQ4_XS, 256, 136}, {GGML_MXFP4, 32, 17}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct ggml_type_info *ti = ggml_type_get(want[i].t);
        cr_assert(ti && ti->block == want[i].block && ti->bytes == want[i].bytes, "type %u", want[i].t);
    }
    cr_assert_null(ggml_type_get(4)); /* Q4_2: retired */
    cr_assert_null(ggml_type_get(31));
    cr_assert_null(ggml_type_get(1000));
}

Test(gguf, reads_every_value_kind)
{
    struct strbuf b = sample();
    gguf *g;
    cr_assert_eq(gguf_open_buffer(&g, b.s, b.len, "t.gguf"), 0, "%s", err_msg());
    int64_t i;
    double d;
    bool on;
    struct gguf_str s;
    struct gguf_arr a;
    cr_assert_eq(gguf_kv_count(g), 11);
    cr_assert(!gguf_get_str(g, "general.architecture", &s) && s.len == 5 && !memcmp(s.ptr, "llama", 5));
    cr_assert(!gguf_get_int(g, "a.u8", &i) && i == 254);
    cr_assert(!gguf_get_int(g, "a.i32", &i) && i == -7);
    cr_assert(!gguf_get_int(g, "a.u64", &i) && i == 1ll << 40);
    cr_assert(!gguf_get_float(g, "a.f32", &d) && d == 0.25);
    cr_assert(!gguf_get_float(g, "a.f64", &d) && d == -1.5);
    cr_assert(!gguf_get_bool(g, "a.bool", &on) && on);
    cr_assert(!gguf_get_arr(g, "a.strs", &a) && a.elem == GGUF_STRING && a.n == 3);
    s = gguf_arr_str(&a, 1);
    cr_assert(s.len == 2 && !memcmp(s.ptr, "bc", 2) && gguf_arr_str(&a, 2).len == 0);
    cr_assert(!gguf_get_arr(g, "a.ints", &a) && a.n == 2 && gguf_arr_int(&a, 1) == -6);
    cr_assert(!gguf_get_arr(g, "a.floats", &a) && gguf_arr_float(&a, 0) == 0.25);
    cr_assert(!gguf_get_arr(g, "a.nested", &a) && a.elem == GGUF_ARRAY && a.n == 2);
    /* wrong types and missing keys name the file and the key */
    cr_assert_eq(gguf_get_int(g, "a.f32", &i), ERR_FORMAT);
    cr_assert(strstr(err_msg(), "t.gguf") && strstr(err_msg(), "a.f32"), "%s", err_msg());
    cr_assert_eq(gguf_get_str(g, "no.such", &s), ERR_MODEL);
    cr_assert(strstr(err_msg(), "no.such"), "%s", err_msg());
    const struct gguf_tensor *w = gguf_find_tensor(g, "w"), *q = gguf_find_tensor(g, "q");
    cr_assert(w && q && !gguf_find_tensor(g, "x"));
    cr_assert(w->ne[0] == 3 && w->ne[1] == 2 && w->nbytes == 24 && ((const float *)w->data)[5] == 5.0f);
    cr_assert(q->type == GGML_Q8_0 && q->nbytes == 68 && (const char *)q->data - (const char *)w->data == 32);
    gguf_close(g);
    strbuf_free(&b);
}

/* Every prefix of a valid file is refused with a message, never read past. */
Test(gguf, every_truncation_is_an_error)
{
    struct strbuf b = sample();
    for (size_t n = 0; n < b.len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, b.s, n);
        gguf *g = NULL;
        int rc = gguf_open_buffer(&g, copy, n, "cut.gguf");
        cr_assert(rc < 0 && !g, "%zu bytes accepted", n);
        cr_assert(strstr(err_msg(), "cut.gguf"), "%s", err_msg());
        free(copy);
    }
    strbuf_free(&b);
}

/* One bad file: rc and a word of its message. */
static void expect_bad(struct strbuf *b, int rc, const char *word)
{
    gguf *g = NULL;
    int got = gguf_open_buffer(&g, b->s, b->len, "bad.gguf");
    cr_assert_eq(got, rc, "rc %d: %s", got, err_msg());
    cr_assert(strstr(err_msg(), word) && strstr(err_msg(), "bad.gguf"), "%s", err_msg());
    strbuf_free(b);
}

/* A file of one tensor info (and the kv given by a writer) */
static struct strbuf one_tensor(uint32_t type, uint64_t ne0, uint64_t off, size_t data)
{
    struct strbuf b = {0};
    header(&b, 1, 0);
    tensor_info(&b, "t", 1, (uint64_t[]){ne0}, type, off);
    pad(&b, 32);
    for (size_t i = 0; i < data; i++) put(&b, "", 1);
    return b;
}

Test(gguf, refuses_bad_files)
{
    struct strbuf b = one_tensor(GGML_F32, 8, 0, 32);
    b.s[0] = 'X';
    expect_bad(&b, ERR_FORMAT, "magic");
    b = one_tensor(GGML_F32, 8, 0, 32), b.s[4] = 1;
    expect_bad(&b, ERR_UNSUPPORTED, "version 1");
    b = one_tensor(77, 8, 0, 32);
    expect_bad(&b, ERR_FORMAT, "unknown type 77");
    b = one_tensor(GGML_Q8_0, 40, 0, 64);
    expect_bad(&b, ERR_FORMAT, "blocks of 32");
    b = one_tensor(GGML_F32, 8, 16, 64);
    expect_bad(&b, ERR_FORMAT, "not aligned");
    b = one_tensor(GGML_F32, 8, 32, 32);
    expect_bad(&b, ERR_FORMAT, "outside");
    b = one_tensor(GGML_F32, 1ull << 62, 0, 32);
    expect_bad(&b, ERR_FORMAT, "overflows");
    b = (struct strbuf){0};
    header(&b, 1ull << 40, 0);
    expect_bad(&b, ERR_FORMAT, "tensor count");
    b = (struct strbuf){0};
    header(&b, 0, 1);
    key(&b, "k", GGUF_ARRAY), u32(&b, GGUF_UINT32), u64(&b, 1ull << 60);
    expect_bad(&b, ERR_FORMAT, "cannot fit");
}

Test(gguf, refuses_bad_metadata)
{
    struct strbuf b = {0};
    header(&b, 0, 2);
    key(&b, "k", GGUF_UINT8), put(&b, "\x01", 1);
    key(&b, "k", GGUF_UINT8), put(&b, "\x01", 1);
    expect_bad(&b, ERR_FORMAT, "appears twice");
    b = (struct strbuf){0};
    header(&b, 0, 1);
    key(&b, "general.alignment", GGUF_UINT32), u32(&b, 48);
    expect_bad(&b, ERR_FORMAT, "power of two");
    b = (struct strbuf){0};
    header(&b, 0, 1);
    key(&b, "k", 13), u32(&b, 0);
    expect_bad(&b, ERR_FORMAT, "unknown value type");
    b = (struct strbuf){0};
    header(&b, 0, 1);
    key(&b, "deep", GGUF_ARRAY);
    for (int i = 0; i < 6; i++) u32(&b, GGUF_ARRAY), u64(&b, 1);
    expect_bad(&b, ERR_FORMAT, "nested deeper");
    b = (struct strbuf){0};
    header(&b, 2, 0);
    tensor_info(&b, "a", 1, (uint64_t[]){16}, GGML_F32, 0);
    tensor_info(&b, "b", 1, (uint64_t[]){16}, GGML_F32, 32);
    pad(&b, 32);
    for (int i = 0; i < 128; i++) put(&b, "", 1);
    expect_bad(&b, ERR_FORMAT, "overlap");
}

/* ---- GGUF weights = safetensors weights, on every tensor-parallel rank ---- */

static void same_tensor(const struct tensor *a, const struct tensor *b, const char *what)
{
    cr_assert(a->dtype == b->dtype && a->rows == b->rows && a->cols == b->cols, "%s: shape", what);
    cr_assert(!memcmp(a->data, b->data, (size_t)a->rows * a->cols * dtype_size(a->dtype)), "%s differs", what);
}

static void same_vec(const float *a, const float *b, size_t n, const char *what)
{
    cr_assert((a == NULL) == (b == NULL), "%s: presence", what);
    if (a) cr_assert(!memcmp(a, b, n * sizeof(float)), "%s differs", what);
}

static void check_slices(const char *name, int world)
{
    char dir[256], file[256];
    snprintf(dir, sizeof(dir), "tests/data/golden/%s", name);
    snprintf(file, sizeof(file), "build/gguf/golden/%s.gguf", name);
    struct model_config sc, gc;
    safetensors *s, *g;
    cr_assert_eq(model_config_load(&sc, dir), 0, "%s", err_msg());
    cr_assert_eq(model_config_load(&gc, file), 0, "%s", err_msg());
    cr_assert_eq(st_open(&s, dir), 0, "%s", err_msg());
    cr_assert_eq(gguf_model_open(&g, file, &gc), 0, "%s", err_msg());
    for (int r = 0; r < world; r++) {
        struct weights a, b;
        cr_assert_eq(weights_load(&a, &sc, s, r, world), 0, "%s", err_msg());
        cr_assert_eq(weights_load(&b, &gc, g, r, world), 0, "%s", err_msg());
        same_tensor(&a.embed, &b.embed, "embed");
        same_tensor(&a.lm_head, &b.lm_head, "lm_head");
        same_vec(a.final_norm, b.final_norm, sc.hidden_size, "final norm");
        size_t nq = (size_t)a.n_heads * sc.head_dim, nkv = (size_t)a.n_kv_heads * sc.head_dim;
        for (int l = 0; l < sc.n_layers; l++) {
            struct layer_weights *x = &a.layers[l], *y = &b.layers[l];
            same_tensor(&x->wq, &y->wq, "wq"), same_tensor(&x->wk, &y->wk, "wk"), same_tensor(&x->wv, &y->wv, "wv");
            same_tensor(&x->wo, &y->wo, "wo"), same_tensor(&x->w_down, &y->w_down, "w_down");
            same_tensor(&x->w_gate, &y->w_gate, "w_gate"), same_tensor(&x->w_up, &y->w_up, "w_up");
            same_vec(x->attn_norm, y->attn_norm, sc.hidden_size, "attn_norm");
            same_vec(x->bq, y->bq, nq, "bq"), same_vec(x->bk, y->bk, nkv, "bk"), same_vec(x->bv, y->bv, nkv, "bv");
            same_vec(x->q_norm, y->q_norm, sc.head_dim, "q_norm");
        }
        weights_free(&a);
        weights_free(&b);
    }
    st_close(s);
    st_close(g);
}

Test(gguf, tensor_parallel_slices_match_safetensors)
{
    check_slices("llama-gqa-f32", 1);
    check_slices("llama-gqa-f32", 2);
    check_slices("llama-gqa-f32", 4);
    check_slices("llama-bf16", 2);
    check_slices("qwen2-bias-f32", 2);
    check_slices("qwen3-qknorm-f32", 4);
}
