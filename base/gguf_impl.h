/* gguf_impl.h: the parsed GGUF file, shared by gguf.c (parse) and
 * gguf_get.c (lookups). Not for use outside base/gguf*.c. */
#ifndef TESSERA_GGUF_IMPL_H
#define TESSERA_GGUF_IMPL_H

#include "gguf.h"

struct gguf__kv {
    char *key;
    enum gguf_vtype type;
    const unsigned char *val;  /* the value's first byte in the file */
    struct gguf_arr arr;       /* type ARRAY: its description (str_off owned) */
};

struct gguf {
    char *path;
    const unsigned char *base; /* the file: a mapping, or the caller's buffer */
    size_t size;
    bool mapped;
    uint32_t version;
    size_t alignment, data_start;
    struct gguf__kv *kv;
    int64_t n_kv, n_kv_read;   /* declared; parsed so far (what close frees) */
    struct gguf_tensor *tensors;
    int64_t n_tensors, n_tensors_read;
    int64_t *kv_sorted, *t_sorted; /* indices sorted by name, for bsearch */
};

size_t gguf__scalar_size(uint32_t t);

#endif
