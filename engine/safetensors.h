/* safetensors.h: memory-mapped safetensors files, single or sharded.
 *
 * st_open() maps model.safetensors, or every shard that
 * model.safetensors.index.json names, validates each header against the file
 * (dtype, shape, offsets inside the data, no overlap with the header) and
 * exposes read-only tensor views that point into the mappings. */
#ifndef TESSERA_SAFETENSORS_H
#define TESSERA_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels/dtype.h"

#define ST_MAX_DIMS 4

struct st_tensor {
    const char *name;
    const char *file;        /* path of the file holding it */
    bool dtype_ok;           /* false: a dtype we cannot compute with */
    char dtype_name[8];      /* as written in the header, e.g. "BF16" */
    enum dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;        /* into the mapping; valid until st_close() */
    size_t nbytes;
    const char *orig_name;   /* its name in the file where that differs (GGUF's), for messages */
};

typedef struct safetensors safetensors;

/* Opens the weights of model folder dir. Returns 0, or a negative ERR_* with
 * err_msg() naming the file and the problem. */
int st_open(safetensors **out, const char *dir);
void st_close(safetensors *st);

/* Gives back the mapped pages wholly inside [p, p + bytes) once a copy has
 * replaced them (they stay in the page cache; reading them again maps them
 * again). Memory outside the mappings is left alone. */
void st_release(const safetensors *st, const void *p, size_t bytes);

/* NULL when absent. */
const struct st_tensor *st_find(const safetensors *st, const char *name);
int st_count(const safetensors *st);
const struct st_tensor *st_at(const safetensors *st, int i);

/* Parses one file; exposed for tests of header validation. */
int st_open_file(safetensors **out, const char *path);
/* The same parse and validation over a file's bytes already in memory
 * (buf[0..size): the 8-byte length, the JSON header, the data), for tests
 * and fuzzing. Tensor data points into buf, which must outlive the result;
 * name stands for the path in messages and st_tensor.file. st_release
 * leaves buf alone. */
int st_open_buffer(safetensors **out, const void *buf, size_t size, const char *name);

/* A table that another container's loader fills (engine/gguf_model.c):
 * tensors under Hugging Face names, pointing into that container's memory
 * base[0..size) (mapped: an mmap whose pages st_release may give back; it
 * is never unmapped here) or into buffers from st_table_alloc. st_close
 * frees the table and its buffers, then calls owner_free(owner). */
safetensors *st_table_new(const char *path, const void *base, size_t size, bool mapped,
                          void (*owner_free)(void *), void *owner);
/* A zeroed entry named name (copied), its file the table's path. */
struct st_tensor *st_table_add(safetensors *st, const char *name);
/* n bytes that live as long as the table. */
void *st_table_alloc(safetensors *st, size_t n);

#endif
