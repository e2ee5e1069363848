/* fuzz_safetensors.c: safetensors header validation (engine/safetensors.c)
 * over a whole file image in memory (st_open_buffer).
 *
 * A file that validates must give tensors whose data lies inside the data
 * section, whose byte count is shape x dtype size, and that st_find finds. */
#include "../../base/err.h"
#include "../../engine/safetensors.h"
#include "fuzz.h"

static size_t dtype_bytes(const char *dt)
{
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64") || !strcmp(dt, "U64")) return 8;
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32") || !strcmp(dt, "U32")) return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16") || !strcmp(dt, "U16")) return 2;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so that ASan sees any read past the file's end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    if (size) memcpy(buf, data, size);
    safetensors *st = NULL;
    int rc = st_open_buffer(&st, buf, size, "fuzz.safetensors");
    if (rc) {
        FUZZ_ASSERT(rc < 0 && !st, "rc %d", rc);
        FUZZ_ASSERT(err_msg() && strstr(err_msg(), "fuzz.safetensors"), "message does not name the file: %s",
                    err_msg());
        free(buf);
        return 0;
    }
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    const uint8_t *lo = buf + 8 + hlen, *hi = buf + size;
    FUZZ_ASSERT(size >= 8 && hlen <= size - 8, "accepted a header of %llu bytes in %zu", (unsigned long long)hlen,
                size);
    for (int i = 0; i < st_count(st); i++) {
        const struct st_tensor *t = st_at(st, i);
        FUZZ_ASSERT(t->name && st_find(st, t->name) == t, "tensor %d not found by name", i);
        FUZZ_ASSERT(!strcmp(t->file, "fuzz.safetensors"), "file %s", t->file);
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "ndim %d", t->ndim);
        FUZZ_ASSERT(memchr(t->dtype_name, 0, sizeof(t->dtype_name)), "dtype name not terminated");
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_ASSERT(t->shape[d] >= 0, "negative dimension");
            count *= (uint64_t)t->shape[d];
        }
        FUZZ_ASSERT(count * dtype_bytes(t->dtype_name) == t->nbytes, "%s: %zu bytes for %llu x %s", t->name,
                    t->nbytes, (unsigned long long)count, t->dtype_name);
        const uint8_t *p = t->data;
        FUZZ_ASSERT(p >= lo && p <= hi && t->nbytes <= (size_t)(hi - p), "%s lies outside the data", t->name);
        /* touch the bytes: ASan checks they are the buffer's */
        volatile uint8_t sink = 0;
        for (size_t k = 0; k < t->nbytes; k += 4096) sink ^= p[k];
        if (t->nbytes) sink ^= p[t->nbytes - 1];
        (void)sink;
        st_release(st, t->data, t->nbytes); /* must leave borrowed memory alone */
    }
    st_close(st);
    free(buf);
    return 0;
}
