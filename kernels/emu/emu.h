/* emu.h: the CPU runtime that runs kernels/cuda sources compiled by the host
 * compiler (C API; kernels see it through cuda_emu.cuh).
 *
 * A launch runs its blocks one after another on the calling thread. A block's
 * threads are fibers (64 KiB stacks; a register-and-stack switch on x86-64,
 * ucontext elsewhere) in one of four states: ready,
 * waiting at a warp barrier, waiting at a block barrier, done. The scheduler
 * runs every ready fiber, in a seeded random order, until it blocks; then
 *   - a warp barrier opens when every lane of that warp waits at one;
 *   - otherwise a block barrier opens when every thread of the block waits
 *     at the same __syncthreads (the same call site);
 *   - otherwise the block is stuck (a divergent __syncthreads or warp
 *     collective): the emulator prints the kernel and block and aborts.
 * This is stricter than the hardware, which lets exited threads count as
 * arrived: a kernel here exits with the whole block or not at all while a
 * barrier or collective is pending.
 * Shared memory is a per-block arena filled with NaN bytes (0xff) at each
 * block's start, so a read of shared memory nobody wrote shows up.
 *
 * What emulation cannot catch: data races between blocks and in global
 * memory (blocks never overlap here), memory-model and ordering bugs (fences,
 * volatile, visibility), timing, occupancy and performance, and reliance on
 * implicit warp synchrony is reported as a stall only where a collective is
 * involved. Within a block, a race on shared memory shows up as results that
 * change with the seed (EMU_SEED or emu_set_seed), so tests run several. */
#ifndef TESSERA_EMU_H
#define TESSERA_EMU_H

#include <cuda_runtime_api.h>
#include <library_types.h>
#include <stddef.h>
#include <stdint.h>

#include "../dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

struct emu_dim { unsigned x, y, z; };

/* One thread of the running block. */
struct emu_fiber {
    struct emu_dim idx;   /* threadIdx */
    int tid, lane, warp;  /* linear id in the block, lane and warp */
    int state;
    uint64_t slot[2];     /* what this lane offers a warp collective */
    const void *site;     /* the __syncthreads it waits at */
};

/* The calling fiber and the running block's geometry (plain globals: one
 * launch runs at a time in the whole process). */
extern struct emu_fiber *emu_self;
extern struct emu_dim emu_block_idx, emu_block_dim, emu_grid_dim;

/* Runs fn(arg) on every thread of every block of the grid. dyn_smem bytes of
 * dynamic shared memory per block. Aborts, naming the kernel, on a stuck
 * block or a bad geometry. Launches are serialised across OS threads. */
void emu_launch(const char *name, struct emu_dim grid, struct emu_dim block, size_t dyn_smem,
                void (*fn)(void *), void *arg);

/* site: the call's address, which tells one __syncthreads from another */
void emu_syncthreads(const void *site);
/* Waits until every live lane of the caller's warp arrives. */
void emu_syncwarp(void);
/* The slot of lane `lane` of the caller's warp (NULL past the block's end). */
const uint64_t *emu_lane_slot(int lane);
/* Live lanes of the caller's warp as a bit mask. */
unsigned emu_live_mask(void);

/* Static shared memory: n bytes carved for the running block, the same
 * pointer for every thread that asks with the same gen and ptr. */
void *emu_shared_static(void **ptr, unsigned long *gen, size_t n, size_t align);
void *emu_shared_dynamic(void);

/* Seed of the in-block interleaving (default: EMU_SEED or 1). */
void emu_set_seed(uint64_t seed);

/* Work on stream s (a launch, a copy, a GEMM, an all-reduce): run(arg) at
 * once, or, while s is captured into a graph, a copy of arg kept for each
 * replay of the graph: clone(arg) (freed with drop), or with clone NULL its
 * `bytes` plain bytes. So a captured launch keeps its argument values, as
 * CUDA's does, and pointers are read again at each replay. */
void emu_stream_work(cudaStream_t s, void (*run)(void *), const void *arg, size_t bytes,
                     void *(*clone)(const void *), void (*drop)(void *));

#ifdef __cplusplus
}
#endif

/* The stand-in NCCL's all-reduce (kernels/emu/nccl.c): a host sum over the
 * ranks, which the CUDA backend registers before creating a communicator
 * (build/emu objects are compiled with TESSERA_EMU). */
void emu_nccl_set_all_reduce(void (*sum)(float *buf, int64_t n));

/* The cuBLAS data type t as a dtype (F32, F16, BF16: what the emulated
 * GEMMs read and write); false for others (kernels/emu/cublas.c). */
bool emu_blas_dtype(cudaDataType t, enum dtype *out);

#endif
