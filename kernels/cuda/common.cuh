/* common.cuh: what every kernel source includes. Under nvcc the real CUDA;
 * under the host compiler the emulator (kernels/emu). Kernels are written
 * against the macros below so that one source serves both:
 *   KLAUNCH(kernel, grid, block, smem, stream, args...)   a launch
 *   KSHARED(type, name, [dims])                           static shared memory
 *   KSHARED_DYNAMIC(type, name)                           dynamic shared memory
 * and use only full-warp collectives with explicit __syncwarp/__syncthreads
 * (no implicit warp synchrony), which is the style the emulator checks. */
#ifndef TESSERA_CUDA_COMMON_CUH
#define TESSERA_CUDA_COMMON_CUH

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#define KLAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define KSHARED(type, name, dims) __shared__ type name dims
#define KSHARED_DYNAMIC(type, name)                        \
    extern __shared__ __align__(16) unsigned char kdyn_[]; \
    type *name = (type *)kdyn_
#else
#include "../emu/cuda_emu.cuh"
#endif

#include "../dtype.h"

#define CEIL_DIV(a, b) (((a) + (b)-1) / (b))
#define FULL_MASK 0xffffffffu

/* Aborts with the file and line when a CUDA call or launch failed. */
#define KCHECK(call)                                                                        \
    do {                                                                                    \
        cudaError_t kerr_ = (call);                                                         \
        if (kerr_ != cudaSuccess) {                                                         \
            fprintf(stderr, "%s:%d: CUDA error: %s\n", __FILE__, __LINE__,                  \
                    cudaGetErrorString(kerr_));                                             \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* fp32 <-> the storage types the kernels are instantiated for */
static __device__ __forceinline__ float to_float(float v) { return v; }
static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
static __device__ __forceinline__ float to_float(__nv_fp8_e4m3 v) { return static_cast<float>(v); }
template <class T> static __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}
/* round to nearest even, saturating at +-448 (dtype.h's f32_to_f8e4m3) */
template <> __device__ __forceinline__ __nv_fp8_e4m3 from_float<__nv_fp8_e4m3>(float v)
{
    __nv_fp8_e4m3 r;
    r.__x = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
    return r;
}

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

/* v reduced over the block (blockDim.x a multiple of 32) by the warp
 * reduction WARP, whose identity is e; every thread gets it. */
template <float (*WARP)(float)> static __device__ __forceinline__ float block_reduce(float v, float e)
{
    KSHARED(float, partial, [32]);
    KSHARED(float, total, [1]);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = WARP(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < n_warps ? partial[lane] : e;
        t = WARP(t);
        if (lane == 0) total[0] = t;
    }
    __syncthreads();
    return total[0];
}

static __device__ __forceinline__ float block_sum(float v) { return block_reduce<warp_sum>(v, 0.0f); }
static __device__ __forceinline__ float block_max(float v) { return block_reduce<warp_max>(v, -INFINITY); }

/* Two 16-bit values in one register, lo in the low half (mma fragments). */
template <class E> static __device__ __forceinline__ uint32_t pack2(E lo, E hi)
{
    uint16_t a, b;
    memcpy(&a, &lo, 2);
    memcpy(&b, &hi, 2);
    return (uint32_t)a | (uint32_t)b << 16;
}

/* d += a b on tensor cores: PTX's mma.sync m16n8k16, A row-major 16x16 and
 * B column-major 16x8 of E (half or bf16) in its fragment layout (lane =
 * 4 group + t: a[0] rows g, cols 2t..2t+1; a[1] row g + 8; a[2], a[3] the
 * same at cols + 8; b[0] k 2t..2t+1, n g; b[1] k + 8; d[0..1] row g, cols
 * 2t..2t+1; d[2..3] row g + 8), fp32 accumulate. sm_80 and later. */
template <class E>
static __device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2])
{
#ifdef __CUDACC__
    if constexpr (sizeof(E) == 2 && std::is_same<E, __nv_bfloat16>::value)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    uint32_t A[32][4], B[32][2];
    emu_warp_gather(a, sizeof(A[0]), A);
    emu_warp_gather(b, sizeof(B[0]), B);
    auto half = [](uint32_t reg, int hi) {
        uint16_t bits = (uint16_t)(hi ? reg >> 16 : reg & 0xffff);
        E e;
        memcpy((void *)&e, &bits, 2);
        return to_float(e);
    };
    int g = emu_self->lane >> 2, t = emu_self->lane & 3;
    for (int i = 0; i < 4; i++) {
        int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float acc = d[i];
        for (int k = 0; k < 16; k++) {
            float x = half(A[(row % 8) * 4 + (k % 8) / 2][(k >= 8 ? 2 : 0) + (row >= 8 ? 1 : 0)], k & 1);
            float y = half(B[col * 4 + (k % 8) / 2][k >= 8 ? 1 : 0], k & 1);
            acc += x * y;
        }
        d[i] = acc;
    }
#endif
}

/* The same for the KV cache's types: also F8_E4M3 (--kv-cache-dtype fp8). */
#define DISPATCH_KV(dt, T, ...)                                              \
    switch (dt) {                                                            \
    case DTYPE_F32: { typedef float T; __VA_ARGS__; break; }                 \
    case DTYPE_F16: { typedef __half T; __VA_ARGS__; break; }                \
    case DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; break; }        \
    case DTYPE_F8_E4M3: { typedef __nv_fp8_e4m3 T; __VA_ARGS__; break; }     \
    default: break;                                                          \
    }

/* Runs the statements with T typedef'd to the storage type of dt. */
#define DISPATCH_DTYPE(dt, T, ...)                                   \
    switch (dt) {                                                    \
    case DTYPE_F32: { typedef float T; __VA_ARGS__; break; }         \
    case DTYPE_F16: { typedef __half T; __VA_ARGS__; break; }        \
    case DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; break; } \
    default: break; /* quantized weights are dequantized at upload */ \
    }

#endif
