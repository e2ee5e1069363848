/* safetensors.c: mmap + header parse + validation; sharded index. */
#include "safetensors.h"

#include <jansson.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../base/err.h"
#include "../base/mapfile.h"

#define MAX_HEADER (100u << 20)

struct mapping {
    char *path;
    void *base;
    size_t size;
    bool borrowed;   /* st_open_buffer: the caller's memory, not a mapping */
    bool view;       /* st_table_new: another's mapping (released, never unmapped here) */
};

struct safetensors {
    struct mapping *maps;
    int n_maps;
    struct st_tensor *tensors;
    int n_tensors, cap_tensors;
    void **bufs;                 /* st_table_alloc */
    int n_bufs;
    void (*owner_free)(void *);  /* st_table_new: called at st_close */
    void *owner;
};

static int parse_dtype(struct st_tensor *t, const char *s)
{
    snprintf(t->dtype_name, sizeof(t->dtype_name), "%s", s);
    t->dtype_ok = true;
    if (!strcmp(s, "F32")) t->dtype = DTYPE_F32;
    else if (!strcmp(s, "F16")) t->dtype = DTYPE_F16;
    else if (!strcmp(s, "BF16")) t->dtype = DTYPE_BF16;
    else t->dtype_ok = false;
    static const char *known[] = {"F64", "I64", "I32", "I16", "I8", "U8", "BOOL",
                                  "F8_E4M3", "F8_E5M2", "U16", "U32", "U64", NULL};
    if (t->dtype_ok) return 0;
    for (int i = 0; known[i]; i++)
        if (!strcmp(s, known[i])) return 0;
    return -1;
}

static size_t elem_size(const char *dt)
{
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64") || !strcmp(dt, "U64")) return 8;
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32") || !strcmp(dt, "U32")) return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16") || !strcmp(dt, "U16")) return 2;
    return 1;
}

static struct st_tensor *push_tensor(safetensors *st)
{
    if (st->n_tensors == st->cap_tensors) {
        st->cap_tensors = st->cap_tensors ? 2 * st->cap_tensors : 256;
        st->tensors = xrealloc(st->tensors, st->cap_tensors * sizeof(*st->tensors));
    }
    struct st_tensor *t = &st->tensors[st->n_tensors++];
    memset(t, 0, sizeof(*t));
    return t;
}

/* Validates one header entry and appends the tensor. */
static int add_entry(safetensors *st, const struct mapping *m, const char *name,
                     json_t *e, const char *data, size_t data_size)
{
    const char *path = m->path;
    json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape");
    json_t *offs = json_object_get(e, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) ||
        json_array_size(offs) != 2)
        return err_set(ERR_FORMAT, "%s: header entry \"%s\" lacks dtype, shape or data_offsets", path, name);
    struct st_tensor *t = push_tensor(st);
    t->name = xstrdup(name);
    t->file = path;
    if (parse_dtype(t, json_string_value(dt)))
        return err_set(ERR_FORMAT, "%s: tensor \"%s\" has unknown dtype \"%s\"", path, name,
                       json_string_value(dt));
    if (json_array_size(shape) > ST_MAX_DIMS)
        return err_set(ERR_UNSUPPORTED, "%s: tensor \"%s\" has %zu dimensions (at most %d)", path,
                       name, json_array_size(shape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t count = 1;
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1LL << 40))
            return err_set(ERR_FORMAT, "%s: tensor \"%s\" has a bad shape", path, name);
        t->shape[i] = json_integer_value(d);
        count *= (uint64_t)t->shape[i];
        if (count > (1ULL << 40))
            return err_set(ERR_FORMAT, "%s: tensor \"%s\" has a bad shape", path, name);
    }
    json_t *b = json_array_get(offs, 0), *en = json_array_get(offs, 1);
    if (!json_is_integer(b) || !json_is_integer(en))
        return err_set(ERR_FORMAT, "%s: tensor \"%s\" has non-integer data_offsets", path, name);
    json_int_t begin = json_integer_value(b), end = json_integer_value(en);
    if (begin < 0 || end < begin || (uint64_t)end > data_size)
        return err_set(ERR_FORMAT,
                       "%s: tensor \"%s\" data_offsets [%lld, %lld] lie outside the %zu data bytes "
                       "(truncated file or lying header)",
                       path, name, (long long)begin, (long long)end, data_size);
    uint64_t want = count * elem_size(t->dtype_name);
    if ((uint64_t)(end - begin) != want)
        return err_set(ERR_FORMAT, "%s: tensor \"%s\" spans %lld bytes but its shape and dtype need %llu",
                       path, name, (long long)(end - begin), (unsigned long long)want);
    t->data = data + begin;
    t->nbytes = (size_t)want;
    return 0;
}

static int too_short(const struct mapping *m)
{
    return err_set(ERR_FORMAT, "%s: truncated: %zu bytes, too short for a safetensors header", m->path, m->size);
}

static int map_file(struct mapping *m, const char *path)
{
    m->path = xstrdup(path);
    const void *base;
    int rc = map_file_readonly(path, true, &base, &m->size);
    m->base = (void *)base;
    return rc ? rc : m->size < 8 ? too_short(m) : 0;
}

static int parse_file(safetensors *st, struct mapping *m)
{
    uint64_t hlen;
    memcpy(&hlen, m->base, 8);
    if (hlen > MAX_HEADER || hlen > m->size - 8)
        return err_set(ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors",
                       m->path, (unsigned long long)hlen, m->size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)m->base + 8, hlen, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return err_set(ERR_FORMAT, "%s: header is not a JSON object (%s at byte %d)", m->path,
                       root ? "wrong type" : jerr.text, jerr.position);
    }
    const char *data = (const char *)m->base + 8 + hlen;
    size_t data_size = m->size - 8 - hlen;
    const char *key;
    json_t *e;
    int rc = 0;
    json_object_foreach(root, key, e) {
        if (!strcmp(key, "__metadata__")) continue;
        if (!json_is_object(e)) {
            rc = err_set(ERR_FORMAT, "%s: header entry \"%s\" is not an object", m->path, key);
            break;
        }
        if ((rc = add_entry(st, m, key, e, data, data_size))) break;
    }
    json_decref(root);
    return rc;
}

static safetensors *st_new(int n_maps)
{
    safetensors *st = xcalloc(1, sizeof(*st));
    st->maps = xcalloc(n_maps, sizeof(*st->maps));
    return st;
}

int st_open_file(safetensors **out, const char *path)
{
    safetensors *st = st_new(1);
    st->n_maps = 1;
    int rc = map_file(&st->maps[0], path);
    if (!rc) rc = parse_file(st, &st->maps[0]);
    if (rc) {
        st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int st_open_buffer(safetensors **out, const void *buf, size_t size, const char *name)
{
    safetensors *st = st_new(1);
    st->n_maps = 1;
    struct mapping *m = &st->maps[0];
    m->path = xstrdup(name);
    m->base = (void *)buf;
    m->size = size;
    m->borrowed = true;
    int rc = size < 8 ? too_short(m) : parse_file(st, m);
    if (rc) {
        st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

/* model.safetensors.index.json: {"weight_map": {"tensor": "shard file", ...}} */
static int open_sharded(safetensors **out, const char *dir, const char *index_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(index_path, 0, &jerr);
    if (!root)
        return err_set(ERR_FORMAT, "%s: bad JSON: %s (line %d, column %d)", index_path, jerr.text,
                       jerr.line, jerr.column);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return err_set(ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    /* distinct shard names, in first-seen order */
    const char **files = xcalloc(json_object_size(wm), sizeof(char *));
    int n = 0, rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v) || strchr(json_string_value(v), '/')) {
            rc = err_set(ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name in the folder", index_path, key);
            goto done;
        }
        int seen = 0;
        for (int i = 0; i < n && !seen; i++) seen = !strcmp(files[i], json_string_value(v));
        if (!seen) files[n++] = json_string_value(v);
    }
    safetensors *st = st_new(n);
    for (int i = 0; i < n && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        st->n_maps++;
        rc = map_file(&st->maps[i], path);
        if (!rc) rc = parse_file(st, &st->maps[i]);
    }
    json_object_foreach(wm, key, v) {
        if (rc) break;
        const struct st_tensor *t = st_find(st, key);
        if (!t || strcmp(strrchr(t->file, '/') + 1, json_string_value(v)))
            rc = err_set(ERR_MODEL, "%s: names tensor \"%s\" in %s, but that file does not hold it",
                         index_path, key, json_string_value(v));
    }
    if (rc) st_close(st);
    else *out = st;
done:
    free(files);
    json_decref(root);
    return rc;
}

int st_open(safetensors **out, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) return open_sharded(out, dir, path);
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    if (access(path, F_OK) != 0)
        return err_set(ERR_IO, "%s: missing (no model.safetensors or model.safetensors.index.json in the folder)", path);
    return st_open_file(out, path);
}

void st_close(safetensors *st)
{
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
    for (int i = 0; i < st->n_maps; i++) {
        const struct mapping *m = &st->maps[i];
        if (m->base && !m->borrowed && !m->view) munmap(m->base, m->size);
        free(st->maps[i].path);
    }
    for (int i = 0; i < st->n_bufs; i++) free(st->bufs[i]);
    free(st->bufs);
    if (st->owner_free) st->owner_free(st->owner);
    free(st->tensors);
    free(st->maps);
    free(st);
}

const struct st_tensor *st_find(const safetensors *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

void st_release(const safetensors *st, const void *p, size_t bytes)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;
    for (int i = 0; i < st->n_maps; i++) {
        uintptr_t base = (uintptr_t)st->maps[i].base, end = base + st->maps[i].size;
        if (st->maps[i].base && !st->maps[i].borrowed && lo >= base && hi <= end && lo < hi)
            madvise((void *)lo, hi - lo, MADV_DONTNEED); /* a read-only private mapping: pages come back from the file */
    }
}

int st_count(const safetensors *st) { return st->n_tensors; }
const struct st_tensor *st_at(const safetensors *st, int i) { return &st->tensors[i]; }

safetensors *st_table_new(const char *path, const void *base, size_t size, bool mapped,
                          void (*owner_free)(void *), void *owner)
{
    safetensors *st = st_new(1);
    st->n_maps = 1;
    st->maps[0] = (struct mapping){xstrdup(path), (void *)base, size, !mapped, mapped};
    st->owner_free = owner_free;
    st->owner = owner;
    return st;
}

struct st_tensor *st_table_add(safetensors *st, const char *name)
{
    struct st_tensor *t = push_tensor(st);
    t->name = xstrdup(name);
    t->file = st->maps[0].path;
    return t;
}

void *st_table_alloc(safetensors *st, size_t n)
{
    st->bufs = xrealloc(st->bufs, (st->n_bufs + 1) * sizeof(void *));
    return st->bufs[st->n_bufs++] = xmalloc(n ? n : 1);
}
