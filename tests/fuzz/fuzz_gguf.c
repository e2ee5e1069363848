/* fuzz_gguf.c: the GGUF container (base/gguf.c) over a whole file image in
 * memory (gguf_open_buffer).
 *
 * A file that validates must give: keys and tensors that lookups find again;
 * values the getters read for their type (every array element too, strings
 * inside the file); tensors aligned, inside the data, of shape x type size
 * bytes, none overlapping. */
#include "../../base/err.h"
#include "../../base/gguf.h"
#include "../../base/strbuf.h"
#include "../../tokenizer/hf.h"
#include "fuzz.h"

static void check_value(const gguf *g, int64_t i, const uint8_t *lo, const uint8_t *hi)
{
    const char *k = gguf_key_at(g, i);
    FUZZ_ASSERT(gguf_find_key(g, k) == i, "key %s not found again", k);
    int64_t v;
    double d;
    bool b;
    struct gguf_str s;
    struct gguf_arr a;
    switch (gguf_kv_type(g, i)) {
    case GGUF_STRING:
        FUZZ_ASSERT(!gguf_get_str(g, k, &s), "%s", err_msg());
        FUZZ_ASSERT((const uint8_t *)s.ptr >= lo && s.len <= (size_t)(hi - (const uint8_t *)s.ptr), "string out");
        break;
    case GGUF_FLOAT32: case GGUF_FLOAT64:
        FUZZ_ASSERT(!gguf_get_float(g, k, &d), "%s", err_msg());
        break;
    case GGUF_BOOL:
        FUZZ_ASSERT(!gguf_get_bool(g, k, &b), "%s", err_msg());
        break;
    case GGUF_ARRAY:
        FUZZ_ASSERT(!gguf_get_arr(g, k, &a), "%s", err_msg());
        for (uint64_t j = 0; j < a.n; j++) {
            if (a.elem == GGUF_STRING) {
                s = gguf_arr_str(&a, j);
                FUZZ_ASSERT((const uint8_t *)s.ptr >= lo && s.len <= (size_t)(hi - (const uint8_t *)s.ptr), "out");
            } else if (a.elem == GGUF_FLOAT32 || a.elem == GGUF_FLOAT64) {
                (void)gguf_arr_float(&a, j);
            } else if (a.elem != GGUF_ARRAY) {
                (void)gguf_arr_int(&a, j);
            }
        }
        break;
    default:
        FUZZ_ASSERT(gguf_get_int(g, k, &v) == 0 || gguf_kv_type(g, i) == GGUF_UINT64, "%s", err_msg());
    }
}

static void check_tensors(const gguf *g, const uint8_t *lo, const uint8_t *hi)
{
    for (int64_t i = 0; i < gguf_tensor_count(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        FUZZ_ASSERT(gguf_find_tensor(g, t->name) == t, "tensor %s not found again", t->name);
        const struct ggml_type_info *ti = ggml_type_get(t->type);
        FUZZ_ASSERT(ti && t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS, "%s: type or dims", t->name);
        unsigned __int128 n = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) n *= (uint64_t)t->ne[d];
        FUZZ_ASSERT(n / ti->block * ti->bytes == t->nbytes, "%s: %zu bytes", t->name, t->nbytes);
        FUZZ_ASSERT(t->offset % gguf_alignment(g) == 0, "%s: misaligned", t->name);
        const uint8_t *p = t->data;
        FUZZ_ASSERT(p >= lo && p <= hi && t->nbytes <= (size_t)(hi - p), "%s lies outside the data", t->name);
        volatile uint8_t sink = 0; /* ASan checks the bytes are the buffer's */
        for (size_t k = 0; k < t->nbytes; k += 4096) sink ^= p[k];
        if (t->nbytes) sink ^= p[t->nbytes - 1];
        (void)sink;
        for (int64_t j = 0; j < i; j++) {
            const struct gguf_tensor *u = gguf_tensor_at(g, j);
            FUZZ_ASSERT(!t->nbytes || !u->nbytes || t->offset >= u->offset + u->nbytes ||
                        u->offset >= t->offset + t->nbytes, "%s and %s overlap", t->name, u->name);
        }
    }
}

/* The tokenizer built from the file's tokenizer.ggml.* keys (tokenizer/
 * gguf_vocab.c): built or refused with one line; built, it encodes and
 * decodes a text with ids inside its vocabulary. */
static void check_vocab(const gguf *g)
{
    struct gguf_vocab v;
    char err[512];
    if (gguf_vocab_from(&v, g, "fuzz.gguf", err, sizeof(err))) {
        FUZZ_ASSERT(strstr(err, "fuzz.gguf") && one_utf8_line(err), "vocab message: %s", err);
        return;
    }
    static const char text[] = "Hello world! 12 caf\xc3\xa9 <s> \xe2\x96\x81x";
    struct ids ids = {0};
    if (!hf_encode(v.hf, text, sizeof(text) - 1, true, &ids))
        for (int i = 0; i < ids.n; i++) FUZZ_ASSERT(ids.v[i] >= 0 && ids.v[i] < v.hf->n_ids, "id %d", ids.v[i]);
    struct strbuf out = {0};
    hf_decode(v.hf, ids.v, ids.n, &out);
    strbuf_free(&out);
    free(ids.v);
    gguf_vocab_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so that ASan sees any read past the file's end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    if (size) memcpy(buf, data, size);
    gguf *g = NULL;
    int rc = gguf_open_buffer(&g, buf, size, "fuzz.gguf");
    if (rc) {
        FUZZ_ASSERT(rc < 0 && !g, "rc %d", rc);
        FUZZ_ASSERT(strstr(err_msg(), "fuzz.gguf") && one_utf8_line(err_msg()), "message: %s", err_msg());
    } else {
        for (int64_t i = 0; i < gguf_kv_count(g); i++) check_value(g, i, buf, buf + size);
        check_tensors(g, buf, buf + size);
        check_vocab(g);
        gguf_close(g);
    }
    free(buf);
    return 0;
}
