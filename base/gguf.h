/* gguf.h: a read-only GGUF container (llama.cpp's model file format, v2/v3).
 *
 * gguf_open() maps a file and validates all of it before returning: the
 * header, every metadata key/value (nested arrays included), every tensor
 * info, and the data section (general.alignment, default 32; each tensor's
 * offset aligned and inside the data; its byte count = shape x its type's
 * size; no two tensors overlapping). Counts and lengths are checked against
 * the bytes left before anything is allocated, so a hostile file costs at
 * most memory proportional to its size. Any violation returns a negative
 * ERR_* with one line in err_msg() naming the file and the problem.
 *
 * This is a pure reader: it knows nothing of models or tokenizers. The
 * engine (engine/gguf_model.c) turns it into weights and a config, and the
 * tokenizer may read the tokenizer.ggml.* keys through the getters below.
 *
 * Lifetimes: every pointer the getters return (strings, arrays, tensor data)
 * points into the mapping or into the gguf object and stays valid until
 * gguf_close(). Strings from the file (struct gguf_str) are NOT
 * NUL-terminated: use .len. Key and tensor names are NUL-terminated copies.
 * All multi-byte values are little-endian and may be unaligned in the file;
 * the getters copy them out. */
#ifndef TESSERA_GGUF_H
#define TESSERA_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KV (1 << 16)          /* metadata entries in a file */
#define GGUF_MAX_TENSORS (1 << 20)     /* tensor infos in a file */
#define GGUF_MAX_NAME 256              /* bytes in a key or tensor name */
#define GGUF_MAX_ARRAY_DEPTH 4         /* arrays of arrays of ... */

/* Metadata value types, as the file numbers them. */
enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
};

/* Tensor types, numbered as ggml's enum ggml_type (gaps are retired ids). */
enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3,
    GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q8_0 = 8, GGML_Q8_1 = 9,
    GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_IQ2_XXS = 16, GGML_IQ2_XS = 17,
    GGML_IQ3_XXS = 18, GGML_IQ1_S = 19, GGML_IQ4_NL = 20, GGML_IQ3_S = 21,
    GGML_IQ2_S = 22, GGML_IQ4_XS = 23, GGML_I8 = 24, GGML_I16 = 25,
    GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_IQ1_M = 29,
    GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35, GGML_MXFP4 = 39,
    GGML_TYPE_COUNT = 40,
};

/* One tensor type: `block` elements take `bytes` bytes (1 and the element
 * size for plain types). name is NULL for an id ggml does not define. */
struct ggml_type_info {
    const char *name;
    int block, bytes;
    bool quantized;
};
/* NULL for an unknown id. */
const struct ggml_type_info *ggml_type_get(uint32_t type);

/* A string in the file: len bytes at ptr, not NUL-terminated. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

/* An array value. Elements of type elem; read them with gguf_arr_*(). */
struct gguf_arr {
    enum gguf_vtype elem;
    uint64_t n;
    const unsigned char *data;    /* the first element in the file */
    const uint64_t *str_off;      /* GGUF_STRING elements: each one's offset from data */
};

struct gguf_tensor {
    const char *name;
    enum ggml_type type;
    int n_dims;
    /* ggml order: ne[0] is the contiguous (innermost) dimension, so a
     * PyTorch [rows, cols] matrix has ne = {cols, rows}; unused ones are 1 */
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t offset;              /* from the data section's start */
    const void *data;             /* into the mapping */
    size_t nbytes;
};

typedef struct gguf gguf;

/* Maps and validates path. populate: read the whole file in now (loading
 * weights) rather than page by page (reading metadata). Returns 0 or a
 * negative ERR_* with err_msg() naming the file and the problem. */
int gguf_open(gguf **out, const char *path, bool populate);
/* The same over a file's bytes in memory (tests, fuzzing): buf must outlive
 * the result; name stands for the path in messages. */
int gguf_open_buffer(gguf **out, const void *buf, size_t size, const char *name);
void gguf_close(gguf *g);

const char *gguf_path(const gguf *g);
uint32_t gguf_version(const gguf *g);
size_t gguf_alignment(const gguf *g);
/* The whole mapped file (for giving pages back, see safetensors.h). */
const void *gguf_base(const gguf *g, size_t *size);
bool gguf_is_mapped(const gguf *g);   /* false for gguf_open_buffer */

/* Metadata. Keys are indexed 0..gguf_kv_count()-1 in file order. */
int64_t gguf_kv_count(const gguf *g);
int64_t gguf_find_key(const gguf *g, const char *key);    /* -1 when absent */
const char *gguf_key_at(const gguf *g, int64_t i);
enum gguf_vtype gguf_kv_type(const gguf *g, int64_t i);
const char *gguf_vtype_name(enum gguf_vtype t);

/* Typed getters by key. Each returns 0 and sets *out, or a negative ERR_*
 * with err_msg() naming the file and key: ERR_MODEL when the key is missing
 * (check gguf_find_key() first for optional keys), ERR_FORMAT when the value
 * has another type. gguf_get_int accepts any integer type whose value fits
 * int64_t; gguf_get_float accepts FLOAT32 and FLOAT64. */
int gguf_get_int(const gguf *g, const char *key, int64_t *out);
int gguf_get_float(const gguf *g, const char *key, double *out);
int gguf_get_bool(const gguf *g, const char *key, bool *out);
int gguf_get_str(const gguf *g, const char *key, struct gguf_str *out);
int gguf_get_arr(const gguf *g, const char *key, struct gguf_arr *out);

/* Element i < a->n of an array; the caller checks a->elem. arr_int takes
 * any integer element type (and BOOL; UINT64 above INT64_MAX comes back
 * negative), arr_float FLOAT32/FLOAT64, arr_str STRING. Arrays of arrays
 * are validated but their elements are not offered. */
int64_t gguf_arr_int(const struct gguf_arr *a, uint64_t i);
double gguf_arr_float(const struct gguf_arr *a, uint64_t i);
struct gguf_str gguf_arr_str(const struct gguf_arr *a, uint64_t i);

/* Tensors, in file order. */
int64_t gguf_tensor_count(const gguf *g);
const struct gguf_tensor *gguf_tensor_at(const gguf *g, int64_t i);
const struct gguf_tensor *gguf_find_tensor(const gguf *g, const char *name);  /* NULL when absent */

#endif
