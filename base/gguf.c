/* gguf.c: GGUF parse and validation over a read-only mapping (gguf.h).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv;
 * n_kv x (string key, u32 type, value); n_tensors x (string name, u32
 * n_dims, u64 ne[n_dims], u32 type, u64 offset); padding to the alignment;
 * the data section. A string is u64 length + bytes; an array is u32 element
 * type + u64 count + elements. */
#include "gguf.h"

#include <string.h>
#include <sys/mman.h>

#include "err.h"
#include "mapfile.h"
#include "gguf_impl.h"

/* ggml's type traits (ggml.c type_traits: blck_size, type_size) */
static const struct ggml_type_info TYPES[GGML_TYPE_COUNT] = {
    [GGML_F32] = {"F32", 1, 4, false},         [GGML_F16] = {"F16", 1, 2, false},
    [GGML_Q4_0] = {"Q4_0", 32, 18, true},      [GGML_Q4_1] = {"Q4_1", 32, 20, true},
    [GGML_Q5_0] = {"Q5_0", 32, 22, true},      [GGML_Q5_1] = {"Q5_1", 32, 24, true},
    [GGML_Q8_0] = {"Q8_0", 32, 34, true},      [GGML_Q8_1] = {"Q8_1", 32, 36, true},
    [GGML_Q2_K] = {"Q2_K", 256, 84, true},     [GGML_Q3_K] = {"Q3_K", 256, 110, true},
    [GGML_Q4_K] = {"Q4_K", 256, 144, true},    [GGML_Q5_K] = {"Q5_K", 256, 176, true},
    [GGML_Q6_K] = {"Q6_K", 256, 210, true},    [GGML_Q8_K] = {"Q8_K", 256, 292, true},
    [GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66, true}, [GGML_IQ2_XS] = {"IQ2_XS", 256, 74, true},
    [GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98, true}, [GGML_IQ1_S] = {"IQ1_S", 256, 50, true},
    [GGML_IQ4_NL] = {"IQ4_NL", 32, 18, true},  [GGML_IQ3_S] = {"IQ3_S", 256, 110, true},
    [GGML_IQ2_S] = {"IQ2_S", 256, 82, true},   [GGML_IQ4_XS] = {"IQ4_XS", 256, 136, true},
    [GGML_I8] = {"I8", 1, 1, false},           [GGML_I16] = {"I16", 1, 2, false},
    [GGML_I32] = {"I32", 1, 4, false},         [GGML_I64] = {"I64", 1, 8, false},
    [GGML_F64] = {"F64", 1, 8, false},         [GGML_IQ1_M] = {"IQ1_M", 256, 56, true},
    [GGML_BF16] = {"BF16", 1, 2, false},       [GGML_TQ1_0] = {"TQ1_0", 256, 54, true},
    [GGML_TQ2_0] = {"TQ2_0", 256, 66, true},   [GGML_MXFP4] = {"MXFP4", 32, 17, true},
};

const struct ggml_type_info *ggml_type_get(uint32_t type)
{
    return type < GGML_TYPE_COUNT && TYPES[type].name ? &TYPES[type] : NULL;
}

/* Bytes of a scalar value type; 0 for STRING, ARRAY and unknown ids. */
size_t gguf__scalar_size(uint32_t t)
{
    static const unsigned char size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof(size) ? size[t] : 0;
}

/* ---- the cursor: every read checks the bytes left first ---- */

struct rd {
    gguf *g;
    size_t pos;
};

static size_t left(const struct rd *r) { return r->g->size - r->pos; }

static int truncated(const struct rd *r, uint64_t want, const char *what)
{
    return err_set(ERR_FORMAT, "%s: truncated: %s at byte %zu needs %llu bytes, %zu left", r->g->path, what,
                   r->pos, (unsigned long long)want, left(r));
}

static int rd_bytes(struct rd *r, void *out, size_t n, const char *what)
{
    if (n > left(r)) return truncated(r, n, what);
    memcpy(out, r->g->base + r->pos, n);
    r->pos += n;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what) { return rd_bytes(r, v, 4, what); }
static int rd_u64(struct rd *r, uint64_t *v, const char *what) { return rd_bytes(r, v, 8, what); }

static int rd_str(struct rd *r, struct gguf_str *s, const char *what)
{
    uint64_t len = 0;
    int rc = rd_u64(r, &len, what);
    if (rc) return rc;
    if (len > left(r)) return truncated(r, len, what);
    s->ptr = (const char *)r->g->base + r->pos;
    s->len = len;
    r->pos += len;
    return 0;
}

/* A key or tensor name: bounded, no NUL inside, copied NUL-terminated. */
static int rd_name(struct rd *r, char **out, const char *what)
{
    struct gguf_str s;
    int rc = rd_str(r, &s, what);
    if (rc) return rc;
    bool ctrl = false; /* names go into one-line messages: no NUL, newline or other control byte */
    for (uint64_t i = 0; i < s.len && !ctrl; i++) ctrl = (unsigned char)s.ptr[i] < 0x20 || s.ptr[i] == 0x7f;
    if (s.len == 0 || s.len > GGUF_MAX_NAME || ctrl)
        return err_set(ERR_FORMAT, "%s: %s at byte %zu is empty, longer than %d bytes or holds a control character",
                       r->g->path, what, r->pos - s.len, GGUF_MAX_NAME);
    *out = strndup(s.ptr, s.len);
    if (!*out) abort();
    return 0;
}

/* ---- metadata ---- */

static int rd_value(struct rd *r, uint32_t type, int depth, struct gguf_arr *arr, const char *key);

/* An array's elements; arr (top level only) gets the string offsets. */
static int rd_array(struct rd *r, int depth, struct gguf_arr *arr, const char *key)
{
    uint32_t elem;
    uint64_t n;
    int rc;
    if ((rc = rd_u32(r, &elem, "array type")) || (rc = rd_u64(r, &n, "array length"))) return rc;
    if (elem > GGUF_FLOAT64)
        return err_set(ERR_FORMAT, "%s: key \"%s\": array of unknown type %u", r->g->path, key, elem);
    if (elem == GGUF_ARRAY && depth >= GGUF_MAX_ARRAY_DEPTH)
        return err_set(ERR_FORMAT, "%s: key \"%s\": arrays nested deeper than %d", r->g->path, key,
                       GGUF_MAX_ARRAY_DEPTH);
    /* the least an element takes: a scalar, a string's length, an array's type + length */
    size_t min = elem == GGUF_STRING ? 8 : elem == GGUF_ARRAY ? 12 : gguf__scalar_size(elem);
    if (n > left(r) / min)
        return err_set(ERR_FORMAT, "%s: key \"%s\": an array of %llu %s cannot fit in the %zu bytes left",
                       r->g->path, key, (unsigned long long)n, gguf_vtype_name(elem), left(r));
    if (arr) *arr = (struct gguf_arr){.elem = elem, .n = n, .data = r->g->base + r->pos};
    if (elem != GGUF_STRING && elem != GGUF_ARRAY) {
        r->pos += n * min;
        return 0;
    }
    uint64_t *off = arr && elem == GGUF_STRING ? xmalloc((n ? n : 1) * sizeof(uint64_t)) : NULL;
    if (arr) arr->str_off = off;
    size_t start = r->pos;
    for (uint64_t i = 0; i < n; i++) {
        if (off) off[i] = r->pos - start;
        if ((rc = rd_value(r, elem, depth + 1, NULL, key))) return rc;
    }
    return 0;
}

static int rd_value(struct rd *r, uint32_t type, int depth, struct gguf_arr *arr, const char *key)
{
    if (type == GGUF_STRING) {
        struct gguf_str s;
        return rd_str(r, &s, "string value");
    }
    if (type == GGUF_ARRAY) return rd_array(r, depth, arr, key);
    size_t n = gguf__scalar_size(type);
    if (!n) return err_set(ERR_FORMAT, "%s: key \"%s\" has unknown value type %u", r->g->path, key, type);
    if (n > left(r)) return truncated(r, n, "value");
    r->pos += n;
    return 0;
}

static int rd_kv(struct rd *r, struct gguf__kv *kv)
{
    uint32_t type;
    int rc = rd_name(r, &kv->key, "metadata key");
    if (!rc) rc = rd_u32(r, &type, "value type");
    if (rc) return rc;
    kv->type = type;
    kv->val = r->g->base + r->pos;
    return rd_value(r, type, 0, &kv->arr, kv->key);
}

/* ---- tensor infos ---- */

/* n_dims, ne[], the type and the byte count (checked multiplication). */
static int rd_shape(struct rd *r, struct gguf_tensor *t)
{
    const char *path = r->g->path;
    uint32_t nd = 0, type = 0;
    int rc = rd_u32(r, &nd, "tensor dimension count");
    if (rc) return rc;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return err_set(ERR_FORMAT, "%s: tensor \"%s\" has %u dimensions (1 to %d)", path, t->name, nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    uint64_t count = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) {
        uint64_t ne = 1;
        if (i < t->n_dims && (rc = rd_u64(r, &ne, "tensor dimension"))) return rc;
        if (ne > INT64_MAX || __builtin_mul_overflow(count, ne, &count) || count > INT64_MAX)
            return err_set(ERR_FORMAT, "%s: tensor \"%s\" has a shape whose size overflows", path, t->name);
        t->ne[i] = (int64_t)ne;
    }
    if ((rc = rd_u32(r, &type, "tensor type")) || (rc = rd_u64(r, &t->offset, "tensor offset"))) return rc;
    const struct ggml_type_info *ti = ggml_type_get(type);
    if (!ti) return err_set(ERR_FORMAT, "%s: tensor \"%s\" has unknown type %u", path, t->name, type);
    t->type = (enum ggml_type)type;
    if (t->ne[0] % ti->block)
        return err_set(ERR_FORMAT, "%s: tensor \"%s\": rows of %lld elements are not whole %s blocks of %d",
                       path, t->name, (long long)t->ne[0], ti->name, ti->block);
    uint64_t bytes;
    if (__builtin_mul_overflow(count / ti->block, (uint64_t)ti->bytes, &bytes) || bytes > SIZE_MAX)
        return err_set(ERR_FORMAT, "%s: tensor \"%s\" has a shape whose size overflows", path, t->name);
    t->nbytes = (size_t)bytes;
    return 0;
}

static int cmp_name(const void *a, const void *b, void *names)
{
    const char *const *n = names;
    return strcmp(n[*(const int64_t *)a], n[*(const int64_t *)b]);
}

static int cmp_offset(const void *a, const void *b, void *tensors)
{
    const struct gguf_tensor *t = tensors;
    uint64_t x = t[*(const int64_t *)a].offset, y = t[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

static int rd_tensors(struct rd *r)
{
    gguf *g = r->g;
    g->tensors = xcalloc(g->n_tensors ? g->n_tensors : 1, sizeof(*g->tensors));
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        int rc = rd_name(r, (char **)&t->name, "tensor name");
        if (!rc) rc = rd_shape(r, t);
        g->n_tensors_read = i + 1;
        if (rc) return rc;
    }
    return 0;
}

/* ---- the data section ---- */

static int check_alignment(gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t k = gguf_find_key(g, "general.alignment");
    if (k < 0) return 0;
    uint32_t a;
    if (g->kv[k].type != GGUF_UINT32)
        return err_set(ERR_FORMAT, "%s: general.alignment is a %s, not a uint32", g->path,
                       gguf_vtype_name(g->kv[k].type));
    memcpy(&a, g->kv[k].val, 4);
    if (a == 0 || (a & (a - 1)) || a > (1u << 30))
        return err_set(ERR_FORMAT, "%s: general.alignment %u is not a power of two up to 2^30", g->path, a);
    g->alignment = a;
    return 0;
}

/* Every tensor aligned, inside the data section, and none overlapping. */
static int check_data(gguf *g, size_t info_end)
{
    size_t start = (info_end + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && start > g->size)
        return err_set(ERR_FORMAT, "%s: truncated: the data section would start at byte %zu of %zu", g->path,
                       start, g->size);
    size_t data_size = start <= g->size ? g->size - start : 0;
    g->data_start = start;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return err_set(ERR_FORMAT, "%s: tensor \"%s\" at offset %llu is not aligned to %zu bytes", g->path,
                           t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return err_set(ERR_FORMAT, "%s: tensor \"%s\": bytes [%llu, %llu) lie outside the %zu data bytes "
                           "(truncated file or lying offset)", g->path, t->name, (unsigned long long)t->offset,
                           (unsigned long long)t->offset + t->nbytes, data_size);
        t->data = g->base + start + t->offset;
    }
    int64_t *by_off = xmalloc((g->n_tensors ? g->n_tensors : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < g->n_tensors; i++) by_off[i] = i;
    qsort_r(by_off, g->n_tensors, sizeof(int64_t), cmp_offset, g->tensors);
    const struct gguf_tensor *prev = NULL;
    int rc = 0;
    for (int64_t i = 0; i < g->n_tensors && !rc; i++) {
        const struct gguf_tensor *t = &g->tensors[by_off[i]];
        if (!t->nbytes) continue;
        if (prev && t->offset < prev->offset + prev->nbytes)
            rc = err_set(ERR_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap", g->path, prev->name, t->name);
        prev = t;
    }
    free(by_off);
    return rc;
}

/* Sorted indices by name for lookups; a name twice is an error. */
static int index_names(gguf *g, const char **names, int64_t n, int64_t **out, const char *what)
{
    int64_t *idx = xmalloc((n ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof(int64_t), cmp_name, (void *)names);
    *out = idx;
    for (int64_t i = 1; i < n; i++)
        if (!strcmp(names[idx[i - 1]], names[idx[i]]))
            return err_set(ERR_FORMAT, "%s: %s \"%s\" appears twice", g->path, what, names[idx[i]]);
    return 0;
}

static int rd_header(struct rd *r)
{
    gguf *g = r->g;
    if (g->size < 24)
        return err_set(ERR_FORMAT, "%s: truncated: %zu bytes, too short for a GGUF header", g->path, g->size);
    if (memcmp(g->base, "GGUF", 4))
        return err_set(ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", g->path);
    r->pos = 4;
    uint64_t nt, nkv;
    rd_u32(r, &g->version, "version");
    rd_u64(r, &nt, "tensor count");
    rd_u64(r, &nkv, "metadata count");
    if (g->version == 0x02000000 || g->version == 0x03000000)
        return err_set(ERR_UNSUPPORTED, "%s: a big-endian GGUF file: not supported", g->path);
    if (g->version != 2 && g->version != 3)
        return err_set(ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (2, 3)", g->path, g->version);
    if (nt > GGUF_MAX_TENSORS || nt > left(r) / 24)
        return err_set(ERR_FORMAT, "%s: tensor count %llu is impossible (at most %d, and each needs 24 bytes of "
                       "the %zu left)", g->path, (unsigned long long)nt, GGUF_MAX_TENSORS, left(r));
    if (nkv > GGUF_MAX_KV || nkv > left(r) / 13)
        return err_set(ERR_FORMAT, "%s: metadata count %llu is impossible (at most %d, and each needs 13 bytes "
                       "of the %zu left)", g->path, (unsigned long long)nkv, GGUF_MAX_KV, left(r));
    g->n_tensors = (int64_t)nt;
    g->n_kv = (int64_t)nkv;
    return 0;
}

static int parse(gguf *g)
{
    struct rd r = {g, 0};
    int rc = rd_header(&r);
    if (rc) return rc;
    g->kv = xcalloc(g->n_kv ? g->n_kv : 1, sizeof(*g->kv));
    for (int64_t i = 0; i < g->n_kv; i++) {
        rc = rd_kv(&r, &g->kv[i]);
        g->n_kv_read = i + 1;
        if (rc) return rc;
    }
    const char **names = xmalloc((g->n_kv ? g->n_kv : 1) * sizeof(char *));
    for (int64_t i = 0; i < g->n_kv; i++) names[i] = g->kv[i].key;
    rc = index_names(g, names, g->n_kv, &g->kv_sorted, "metadata key");
    free(names);
    if (rc || (rc = check_alignment(g)) || (rc = rd_tensors(&r))) return rc;
    names = xmalloc((g->n_tensors ? g->n_tensors : 1) * sizeof(char *));
    for (int64_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
    rc = index_names(g, names, g->n_tensors, &g->t_sorted, "tensor");
    free(names);
    return rc ? rc : check_data(g, r.pos);
}

static int finish(gguf **out, gguf *g)
{
    int rc = parse(g);
    if (rc) {
        gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int gguf_open_buffer(gguf **out, const void *buf, size_t size, const char *name)
{
    gguf *g = xcalloc(1, sizeof(*g));
    g->path = xstrdup(name);
    g->base = buf;
    g->size = size;
    return finish(out, g);
}

int gguf_open(gguf **out, const char *path, bool populate)
{
    const void *base;
    size_t size;
    int rc = map_file_readonly(path, populate, &base, &size); /* populate when loading weights */
    if (rc) return rc;
    gguf *g = xcalloc(1, sizeof(*g));
    g->path = xstrdup(path);
    g->base = base;
    g->size = size;
    g->mapped = base != NULL;
    return finish(out, g);
}

void gguf_close(gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv_read; i++) {
        free(g->kv[i].key);
        free((void *)g->kv[i].arr.str_off);
    }
    for (int64_t i = 0; i < g->n_tensors_read; i++) free((char *)g->tensors[i].name);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g->kv);
    free(g->tensors);
    free(g->kv_sorted);
    free(g->t_sorted);
    free(g->path);
    free(g);
}
