/* runtime.c: the CUDA runtime calls Tessera makes, over host memory.
 *
 * Device memory is malloc'd and filled with 0xff bytes (NaN in every float
 * type) so that reading memory nobody wrote shows up. Streams are tokens:
 * launches and copies run at once, in program order, so every stream is
 * always synchronised. One emulated device with EMU_DEVICE_MEMORY bytes
 * (default 4 GiB) that cudaMemGetInfo accounts against. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

struct alloc_head {
    size_t bytes;
    size_t pad[7]; /* keeps the payload 64-byte aligned */
};

static size_t allocated;

static size_t device_bytes(void)
{
    const char *s = getenv("EMU_DEVICE_MEMORY");
    return s ? strtoull(s, NULL, 10) : (size_t)4 << 30;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    *p = NULL;
    struct alloc_head *h;
    if (bytes > device_bytes() - allocated || posix_memalign((void **)&h, 64, sizeof(*h) + bytes))
        return cudaErrorMemoryAllocation;
    h->bytes = bytes;
    allocated += bytes;
    memset(h + 1, 0xff, bytes);
    *p = h + 1;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    struct alloc_head *h = (struct alloc_head *)p - 1;
    allocated -= h->bytes;
    free(h);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *p)
{
    free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
    *total = device_bytes();
    *free_bytes = *total - allocated;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind)
{
    (void)kind;
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s)
{
    (void)s;
    return cudaMemcpy(dst, src, n, kind);
}

cudaError_t cudaMemset(void *p, int value, size_t n)
{
    if (n) memset(p, value, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s)
{
    (void)s;
    return cudaMemset(p, value, n);
}

static int stream_token;

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    *s = (cudaStream_t)&stream_token;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    (void)s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    (void)s;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

/* As many emulated devices as a node has GPUs, so that tensor-parallel
 * ranks on one machine each pick their own (all of them the host). */
#define EMU_DEVICES 8

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = EMU_DEVICES;
    return cudaSuccess;
}

/* The emulated device reports an H100's 132 multiprocessors, so launch
 * shapes chosen from it (split-K attention at small batches) are the ones a
 * real GPU gets. */
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    if (device < 0 || device >= EMU_DEVICES) return cudaErrorInvalidDevice;
    *value = attr == cudaDevAttrMultiProcessorCount ? 132 : 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d) { return d >= 0 && d < EMU_DEVICES ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaGetLastError(void) { return cudaSuccess; }

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error (emulated)";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    case cudaErrorInvalidDevice: return "invalid device ordinal (emulated: 8 devices)";
    default: return "error (emulated)";
    }
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    (void)func, (void)attr, (void)value;
    return cudaSuccess;
}
