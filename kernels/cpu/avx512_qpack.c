/* avx512_qpack.c: packed Q8_0 and Q4_0 weights and their AVX-512 VNNI matmul
 * (kernels.h, "Packed quantized weights"). Not written yet: a group size of
 * 0 tells qpack_available that these types are not packed. */
#include <stdlib.h>

#include "kernels.h"

size_t qpack_group_bytes_q8q4(enum dtype wt, int K)
{
    (void)wt, (void)K;
    return 0;
}

void qpack_q8q4(void *dst, const void *w, enum dtype wt, int N, int K, int g0, int g1)
{
    (void)dst, (void)w, (void)wt, (void)N, (void)K, (void)g0, (void)g1;
    abort();
}

void matmul_qp_q8q4_avx512(float *y, int ldy, const void *xq, const void *wp, enum dtype wt,
                   int T, int K, int n0, int n1, bool accumulate)
{
    (void)y, (void)ldy, (void)xq, (void)wp, (void)wt, (void)T, (void)K, (void)n0, (void)n1, (void)accumulate;
    abort();
}
