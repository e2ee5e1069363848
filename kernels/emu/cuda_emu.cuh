/* cuda_emu.cuh: what a kernel source needs from the device side of CUDA,
 * defined over the emulator (emu.h) for the host compiler.
 *
 * The real cuda_runtime.h, cuda_fp16.h and cuda_bf16.h come first: __half,
 * __nv_bfloat16, float4, dim3 and their conversions are the toolkit's own.
 * Here: threadIdx and friends, __syncthreads/__syncwarp, warp shuffles and
 * votes (every live lane of the warp must take part: partial masks are not
 * emulated), atomics (blocks never run concurrently, so plain read-modify-
 * write is atomic), device math the host lacks, and the launch and shared-
 * memory macros kernels/cuda/common.cuh maps onto nvcc's syntax. */
#ifndef TESSERA_CUDA_EMU_CUH
#define TESSERA_CUDA_EMU_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#include <tuple>

#include "emu.h"

#undef __launch_bounds__
#define __launch_bounds__(...)
#undef __shared__
#define __shared__ use_KSHARED_for_shared_memory_under_emulation

#define threadIdx (emu_self->idx)
#define blockIdx emu_block_idx
#define blockDim emu_block_dim
#define gridDim emu_grid_dim
#define warpSize 32

/* a macro whose static marks the call site: each is a barrier of its own */
#define __syncthreads()                      \
    do {                                     \
        static const char emu_site_ = 0;     \
        emu_syncthreads(&emu_site_);         \
    } while (0)
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; emu_syncwarp(); }

/* A collective: offer v, wait for the warp, read lane src's offer, wait again
 * so that nobody overwrites an offer before every lane has read it. */
template <class T> static inline T emu_exchange(T v, int src)
{
    static_assert(sizeof(T) <= sizeof(emu_self->slot), "shuffle of a type over 16 bytes");
    memcpy(emu_self->slot, &v, sizeof(T));
    emu_syncwarp();
    const uint64_t *s = emu_lane_slot(src);
    T r = v;
    if (s) memcpy(&r, s, sizeof(T));
    emu_syncwarp();
    return r;
}

/* CUDA's rule: the lane index wraps within segments of `width` lanes. */
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32)
{
    (void)mask;
    int base = emu_self->lane & ~(width - 1);
    return emu_exchange(v, base + (src & (width - 1)));
}

template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    (void)mask;
    int lane = emu_self->lane, src = lane ^ lane_mask;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return emu_exchange(v, src);
}

template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    (void)mask;
    int lane = emu_self->lane, src = lane + (int)delta;
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
    return emu_exchange(v, src);
}

template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32)
{
    (void)mask;
    int lane = emu_self->lane, src = lane - (int)delta;
    if (src < (lane & ~(width - 1))) src = lane;
    return emu_exchange(v, src);
}

/* Every lane's `bytes` (at most 16) into all[32][bytes], in lane order:
 * what an emulated warp-wide matrix instruction needs (mma_16816). */
static inline void emu_warp_gather(const void *mine, size_t bytes, void *all)
{
    memcpy(emu_self->slot, mine, bytes);
    emu_syncwarp();
    for (int l = 0; l < 32; l++) {
        const uint64_t *s = emu_lane_slot(l);
        if (s) memcpy((char *)all + l * bytes, s, bytes);
        else memset((char *)all + l * bytes, 0, bytes);
    }
    emu_syncwarp();
}

static inline unsigned __ballot_sync(unsigned mask, int pred)
{
    memcpy(emu_self->slot, &pred, sizeof(pred));
    emu_syncwarp();
    unsigned live = emu_live_mask() | (1u << emu_self->lane), r = 0;
    for (int l = 0; l < 32; l++) {
        const uint64_t *s = emu_lane_slot(l);
        int p;
        if (!s || !(live >> l & 1)) continue;
        memcpy(&p, s, sizeof(p));
        if (p) r |= 1u << l;
    }
    emu_syncwarp();
    return r & mask;
}

static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred)
{
    unsigned live = emu_live_mask() | (1u << emu_self->lane);
    return __ballot_sync(mask, pred) == (live & mask);
}

template <class T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <class T> static inline T atomicMax(T *p, T v)
{
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <class T> static inline T atomicMin(T *p, T v)
{
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <class T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <class T> static inline T atomicCAS(T *p, T cmp, T v)
{
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

/* __expf and __logf: glibc has them; the _rn operations round each
 * result (the host compiler, in ISO C++ mode, never fuses them) */
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
template <class T> static inline T __ldg(const T *p) { return *p; }

static inline struct emu_dim emu_dim_of(dim3 d) { return emu_dim{d.x, d.y, d.z}; }
template <class F> static void emu_call(void *f) { (*(F *)f)(); }

/* A launch as stream work: the kernel and its arguments by value. */
template <class K, class Args> struct emu_launch_rec {
    const char *name;
    struct emu_dim grid, block;
    size_t smem;
    K kernel;
    Args args;
};
template <class R> static void emu_run_launch(void *p)
{
    R *r = (R *)p;
    auto body = [r] { std::apply(r->kernel, r->args); };
    emu_launch(r->name, r->grid, r->block, r->smem, emu_call<decltype(body)>, &body);
}
template <class R> static void *emu_clone(const void *p) { return new R(*(const R *)p); }
template <class R> static void emu_drop(void *p) { delete (R *)p; }

/* KLAUNCH(kernel, grid, block, smem_bytes, stream, args...): the arguments
 * are evaluated and copied here, as <<<>>> does */
#define KLAUNCH(kernel, grid, block, smem, stream, ...)                                    \
    do {                                                                                   \
        auto emu_k_ = kernel;                                                              \
        auto emu_args_ = std::make_tuple(__VA_ARGS__);                                     \
        emu_launch_rec<decltype(emu_k_), decltype(emu_args_)> emu_r_ = {                   \
            __func__, emu_dim_of(dim3(grid)), emu_dim_of(dim3(block)), (size_t)(smem), emu_k_, emu_args_}; \
        emu_stream_work((cudaStream_t)(stream), emu_run_launch<decltype(emu_r_)>, &emu_r_, 0,            \
                        emu_clone<decltype(emu_r_)>, emu_drop<decltype(emu_r_)>);          \
    } while (0)

/* KSHARED(float, red, [32]) declares the block's float red[32]. */
#define KSHARED(type, name, dims)                                                           \
    static void *name##_emu_p;                                                              \
    static unsigned long name##_emu_gen;                                                    \
    type(&name) dims = *(type(*) dims)emu_shared_static(&name##_emu_p, &name##_emu_gen,     \
                                                        sizeof(type dims), alignof(type))
/* KSHARED_DYNAMIC(float, buf) points buf at the launch's dynamic shared memory. */
#define KSHARED_DYNAMIC(type, name) type *name = (type *)emu_shared_dynamic()

#endif
