/* selftest.cu: kernels that exercise the emulator itself (built only by the
 * host compiler, for tests/emu/test_emu.c). */
#include "../../kernels/cuda/common.cuh"

#include "selftest.h"

/* per lane: shfl from lane+3, xor 5, down 4, up 1, shfl within 8-lane
 * segments from segment lane 2, ballot of lane % 3 == 0 */
__global__ void shuffle_kernel(int *out)
{
    int lane = threadIdx.x % 32, v = threadIdx.x * 10;
    int *o = out + threadIdx.x * 6;
    o[0] = __shfl_sync(FULL_MASK, v, (lane + 3) % 32);
    o[1] = __shfl_xor_sync(FULL_MASK, v, 5);
    o[2] = __shfl_down_sync(FULL_MASK, v, 4);
    o[3] = __shfl_up_sync(FULL_MASK, v, 1);
    o[4] = __shfl_sync(FULL_MASK, v, 2, 8);
    o[5] = (int)__ballot_sync(FULL_MASK, lane % 3 == 0);
}

__global__ void block_sum_kernel(float *out, const float *in)
{
    float s = block_sum(in[blockIdx.x * blockDim.x + threadIdx.x]);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

/* Reads a neighbour's shared slot with or without a barrier in between. */
__global__ void neighbour_kernel(float *out, int sync)
{
    KSHARED(float, buf, [256]);
    int n = blockDim.x, t = threadIdx.x;
    buf[t] = (float)(t + 1);
    if (sync) __syncthreads();
    out[t] = buf[(t + 1) % n];
}

/* two barriers in divergent branches: a hang or worse on a GPU */
__global__ void divergent_barrier_kernel(float *out)
{
    if (threadIdx.x < 16) {
        out[threadIdx.x] = 1.0f;
        __syncthreads();
    } else {
        __syncthreads();
        out[threadIdx.x] = 2.0f;
    }
}

/* part of the block leaves while the rest waits at a barrier */
__global__ void early_exit_kernel(float *out)
{
    if (threadIdx.x >= 16) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

__global__ void divergent_shuffle_kernel(float *out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(FULL_MASK, v, 1);
    out[threadIdx.x] = v;
}

__global__ void unwritten_shared_kernel(float *out)
{
    KSHARED(float, buf, [64]);
    out[threadIdx.x] = buf[threadIdx.x];
}

/* atomics, dynamic shared memory and 3-D indices together */
__global__ void geometry_kernel(int *count, int *ids)
{
    KSHARED_DYNAMIC(int, tile);
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int n = blockDim.x * blockDim.y * blockDim.z;
    tile[t] = t;
    __syncthreads();
    ids[b * n + t] = tile[n - 1 - t] + 1000 * b;
    atomicAdd(count, 1);
}

extern "C" void emu_test_shuffle(int *out, int threads)
{
    KLAUNCH(shuffle_kernel, 1, threads, 0, 0, out);
}

extern "C" void emu_test_block_sum(float *out, const float *in, int blocks, int threads)
{
    KLAUNCH(block_sum_kernel, blocks, threads, 0, 0, out, in);
}

extern "C" void emu_test_neighbour(float *out, int threads, int sync)
{
    KLAUNCH(neighbour_kernel, 1, threads, 0, 0, out, sync);
}

extern "C" void emu_test_divergent_barrier(float *out) { KLAUNCH(divergent_barrier_kernel, 1, 64, 0, 0, out); }
extern "C" void emu_test_early_exit(float *out) { KLAUNCH(early_exit_kernel, 1, 64, 0, 0, out); }
extern "C" void emu_test_divergent_shuffle(float *out) { KLAUNCH(divergent_shuffle_kernel, 1, 64, 0, 0, out); }
extern "C" void emu_test_unwritten_shared(float *out) { KLAUNCH(unwritten_shared_kernel, 1, 64, 0, 0, out); }

extern "C" void emu_test_geometry(int *count, int *ids)
{
    KLAUNCH(geometry_kernel, dim3(2, 3, 1), dim3(4, 4, 2), 32 * sizeof(int), 0, count, ids);
}
