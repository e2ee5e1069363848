/* quant_tool.c: kernels/quant.c over stdin and stdout, for tests/quant.
 *
 *   build/quant-tool TYPE OP < input > output
 *
 * TYPE: F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K. OP: dequant (blocks of
 * TYPE in, float32 out, by dequantize_row), dequant-one (the same through
 * dequantize_one, element by element) or quant (float32 in, Q8_0 or Q4_0
 * blocks out). Exit 2 on bad arguments or input of a wrong size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/quant.h"

static unsigned char *read_all(size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
    }
    *n = len;
    return buf;
}

static int parse_type(const char *name)
{
    for (int t = 0; t < DTYPE_COUNT; t++)
        if (!strcmp(name, dtype_name((enum dtype)t))) return t;
    return -1;
}

static int run(enum dtype t, const char *op, const unsigned char *in, size_t len)
{
    if (!strcmp(op, "quant")) {
        if ((t != DTYPE_Q8_0 && t != DTYPE_Q4_0) || len % (32 * 4)) return 2;
        int64_t n = (int64_t)(len / 4);
        size_t outb = dtype_row_bytes(t, n);
        void *out = malloc(outb ? outb : 1);
        (t == DTYPE_Q8_0 ? quantize_row_q8_0 : quantize_row_q4_0)((const float *)in, out, n);
        fwrite(out, 1, outb, stdout);
        free(out);
        return 0;
    }
    bool one = !strcmp(op, "dequant-one");
    if ((!one && strcmp(op, "dequant")) || len % dtype_block_bytes(t)) return 2;
    int64_t n = (int64_t)(len / dtype_block_bytes(t)) * dtype_block(t);
    float *y = malloc(n ? (size_t)n * 4 : 1);
    if (one)
        for (int64_t i = 0; i < n; i++) y[i] = dequantize_one(t, in, i);
    else
        dequantize_row(t, in, y, n);
    fwrite(y, 4, (size_t)n, stdout);
    free(y);
    return 0;
}

int main(int argc, char **argv)
{
    int t = argc == 3 ? parse_type(argv[1]) : -1;
    if (t < 0) {
        fprintf(stderr, "usage: quant-tool F32|F16|BF16|Q8_0|Q4_0|Q4_K|Q6_K dequant|dequant-one|quant < in > out\n");
        return 2;
    }
    size_t len;
    unsigned char *in = read_all(&len);
    if (!in) return 1;
    int rc = run((enum dtype)t, argv[2], in, len);
    if (rc) fprintf(stderr, "quant-tool: bad op or input size (%zu bytes)\n", len);
    free(in);
    return fflush(stdout) ? 1 : rc;
}
