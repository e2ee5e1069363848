/* cuda_test.h: device buffers for the CUDA kernel tests (emulated under
 * `make test`, native under `make test-cuda`); a failed call fails the test. */
#ifndef TESSERA_CUDA_TEST_H
#define TESSERA_CUDA_TEST_H

#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>

#define CK(call) cr_assert_eq((call), cudaSuccess, "%s", #call)

static inline void *dev_alloc(size_t n)
{
    void *d = NULL;
    CK(cudaMalloc(&d, n ? n : 1));
    return d;
}

/* a device copy of h[0..n) */
static inline void *dev_copy(const void *h, size_t n)
{
    void *d = dev_alloc(n);
    CK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

/* a malloc'd host copy of d[0..n) */
static inline void *host_copy(const void *d, size_t n)
{
    void *h = malloc(n ? n : 1);
    CK(cudaMemcpy(h, d, n, cudaMemcpyDeviceToHost));
    return h;
}

#endif
