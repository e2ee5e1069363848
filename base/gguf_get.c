/* gguf_get.c: lookups and typed getters over a parsed GGUF file (gguf.h).
 * Everything here reads what gguf.c already validated, so bounds hold. */
#include <string.h>

#include "err.h"
#include "gguf_impl.h"

const char *gguf_path(const gguf *g) { return g->path; }
uint32_t gguf_version(const gguf *g) { return g->version; }
size_t gguf_alignment(const gguf *g) { return g->alignment; }
bool gguf_is_mapped(const gguf *g) { return g->mapped; }
int64_t gguf_kv_count(const gguf *g) { return g->n_kv; }
const char *gguf_key_at(const gguf *g, int64_t i) { return g->kv[i].key; }
enum gguf_vtype gguf_kv_type(const gguf *g, int64_t i) { return g->kv[i].type; }
int64_t gguf_tensor_count(const gguf *g) { return g->n_tensors; }
const struct gguf_tensor *gguf_tensor_at(const gguf *g, int64_t i) { return &g->tensors[i]; }

const void *gguf_base(const gguf *g, size_t *size)
{
    *size = g->size;
    return g->base;
}

const char *gguf_vtype_name(enum gguf_vtype t)
{
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown type";
}

/* Binary search of sorted indices into n names. */
static int64_t lookup(const int64_t *idx, int64_t n, const char *name, const char *(*name_at)(const gguf *, int64_t),
                      const gguf *g)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_at(g, idx[mid]), name);
        if (c == 0) return idx[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static const char *tensor_name(const gguf *g, int64_t i) { return g->tensors[i].name; }

int64_t gguf_find_key(const gguf *g, const char *key) { return lookup(g->kv_sorted, g->n_kv, key, gguf_key_at, g); }

const struct gguf_tensor *gguf_find_tensor(const gguf *g, const char *name)
{
    int64_t i = lookup(g->t_sorted, g->n_tensors, name, tensor_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* The entry of key, or a missing-key error. */
static int entry(const gguf *g, const char *key, const struct gguf__kv **out)
{
    int64_t i = gguf_find_key(g, key);
    if (i < 0) return err_set(ERR_MODEL, "%s: missing key \"%s\"", g->path, key);
    *out = &g->kv[i];
    return 0;
}

static int wrong_type(const gguf *g, const struct gguf__kv *kv, const char *want)
{
    return err_set(ERR_FORMAT, "%s: key \"%s\" is a %s, not %s", g->path, kv->key, gguf_vtype_name(kv->type), want);
}

/* A scalar integer of type t at p; false for a non-integer type. */
static bool read_int(enum gguf_vtype t, const unsigned char *p, int64_t *out)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    size_t n = gguf__scalar_size(t);
    if (t == GGUF_FLOAT32 || t == GGUF_FLOAT64 || n == 0) return false;
    memcpy(&v, p, n);
    switch (t) {
    case GGUF_UINT8: *out = v.u8; break;
    case GGUF_INT8: *out = v.i8; break;
    case GGUF_UINT16: *out = v.u16; break;
    case GGUF_INT16: *out = v.i16; break;
    case GGUF_UINT32: *out = v.u32; break;
    case GGUF_INT32: *out = v.i32; break;
    case GGUF_BOOL: *out = v.u8 != 0; break;
    case GGUF_UINT64: *out = (int64_t)v.u64; break;
    default: *out = v.i64; break;
    }
    return true;
}

int gguf_get_int(const gguf *g, const char *key, int64_t *out)
{
    const struct gguf__kv *kv;
    int rc = entry(g, key, &kv);
    if (rc) return rc;
    if (kv->type == GGUF_BOOL || !read_int(kv->type, kv->val, out)) return wrong_type(g, kv, "an integer");
    if (kv->type == GGUF_UINT64 && *out < 0)
        return err_set(ERR_FORMAT, "%s: key \"%s\" is out of range", g->path, key);
    return 0;
}

int gguf_get_float(const gguf *g, const char *key, double *out)
{
    const struct gguf__kv *kv;
    int rc = entry(g, key, &kv);
    if (rc) return rc;
    if (kv->type == GGUF_FLOAT32) {
        float f;
        memcpy(&f, kv->val, 4);
        *out = f;
    } else if (kv->type == GGUF_FLOAT64) {
        memcpy(out, kv->val, 8);
    } else {
        return wrong_type(g, kv, "a float");
    }
    return 0;
}

int gguf_get_bool(const gguf *g, const char *key, bool *out)
{
    const struct gguf__kv *kv;
    int rc = entry(g, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_BOOL) return wrong_type(g, kv, "a bool");
    *out = kv->val[0] != 0;
    return 0;
}

int gguf_get_str(const gguf *g, const char *key, struct gguf_str *out)
{
    const struct gguf__kv *kv;
    int rc = entry(g, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_STRING) return wrong_type(g, kv, "a string");
    memcpy(&out->len, kv->val, 8);
    out->ptr = (const char *)kv->val + 8;
    return 0;
}

int gguf_get_arr(const gguf *g, const char *key, struct gguf_arr *out)
{
    const struct gguf__kv *kv;
    int rc = entry(g, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_ARRAY) return wrong_type(g, kv, "an array");
    *out = kv->arr;
    return 0;
}

int64_t gguf_arr_int(const struct gguf_arr *a, uint64_t i)
{
    int64_t v = 0;
    size_t n = gguf__scalar_size(a->elem);
    CHECK(i < a->n && read_int(a->elem, a->data + i * n, &v));
    return v;
}

double gguf_arr_float(const struct gguf_arr *a, uint64_t i)
{
    CHECK(i < a->n && (a->elem == GGUF_FLOAT32 || a->elem == GGUF_FLOAT64));
    if (a->elem == GGUF_FLOAT64) {
        double d;
        memcpy(&d, a->data + i * 8, 8);
        return d;
    }
    float f;
    memcpy(&f, a->data + i * 4, 4);
    return f;
}

struct gguf_str gguf_arr_str(const struct gguf_arr *a, uint64_t i)
{
    CHECK(i < a->n && a->elem == GGUF_STRING && a->str_off);
    struct gguf_str s;
    memcpy(&s.len, a->data + a->str_off[i], 8);
    s.ptr = (const char *)a->data + a->str_off[i] + 8;
    return s;
}
