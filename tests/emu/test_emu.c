/* test_emu.c: the emulator itself: shuffles, votes and reductions give the
 * CUDA results, a missing __syncthreads shows up as seed-dependent output,
 * divergent barriers and collectives (and barriers that part of the block
 * has exited past) abort, unwritten shared memory reads as
 * NaN, and 3-D geometry, dynamic shared memory and atomics behave. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "../../kernels/emu/emu.h"
#include "selftest.h"

Test(emu, shuffles_and_ballot)
{
    int threads = 64, out[64 * 6];
    emu_test_shuffle(out, threads);
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if (l % 3 == 0) ballot |= 1u << l;
    for (int t = 0; t < threads; t++) {
        int lane = t % 32, w0 = t - lane;
        int *o = out + t * 6;
        cr_assert_eq(o[0], (w0 + (lane + 3) % 32) * 10, "shfl t=%d", t);
        cr_assert_eq(o[1], (w0 + (lane ^ 5)) * 10, "xor t=%d", t);
        cr_assert_eq(o[2], (lane + 4 < 32 ? t + 4 : t) * 10, "down t=%d", t);
        cr_assert_eq(o[3], (lane >= 1 ? t - 1 : t) * 10, "up t=%d", t);
        cr_assert_eq(o[4], (w0 + (lane & ~7) + 2) * 10, "width 8 t=%d", t);
        cr_assert_eq((unsigned)o[5], ballot, "ballot t=%d", t);
    }
}

Test(emu, block_sum)
{
    int blocks = 3, threads = 96;
    float in[3 * 96], out[3];
    for (int i = 0; i < blocks * threads; i++) in[i] = (float)(i % 7);
    emu_test_block_sum(out, in, blocks, threads);
    for (int b = 0; b < blocks; b++) {
        float want = 0;
        for (int t = 0; t < threads; t++) want += in[b * threads + t];
        cr_assert_float_eq(out[b], want, 1e-4f, "block %d", b);
    }
}

/* Without the barrier a thread may read a slot before its owner writes it:
 * the result then depends on the interleaving seed. */
Test(emu, missing_barrier_shows_with_seeds)
{
    float ref[128], out[128];
    int differs = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        emu_set_seed(seed);
        emu_test_neighbour(out, 128, 1);
        for (int t = 0; t < 128; t++) cr_assert_eq(out[t], (float)((t + 1) % 128 + 1));
        emu_test_neighbour(out, 128, 0);
        if (seed == 1) memcpy(ref, out, sizeof(ref));
        else differs |= memcmp(ref, out, sizeof(ref)) != 0;
        for (int t = 0; t < 128; t++) differs |= isnan(out[t]);
    }
    emu_set_seed(1);
    cr_assert(differs, "a race on shared memory gave the same result under every seed");
}

Test(emu, divergent_syncthreads_aborts, .signal = SIGABRT)
{
    float out[64];
    emu_test_divergent_barrier(out);
}

Test(emu, barrier_with_exited_threads_aborts, .signal = SIGABRT)
{
    float out[64];
    emu_test_early_exit(out);
}

Test(emu, divergent_shuffle_aborts, .signal = SIGABRT)
{
    float out[64];
    emu_test_divergent_shuffle(out);
}

Test(emu, unwritten_shared_memory_is_nan)
{
    float out[64];
    emu_test_unwritten_shared(out);
    for (int t = 0; t < 64; t++) cr_assert(isnan(out[t]));
}

Test(emu, geometry_dynamic_shared_and_atomics)
{
    int count = 0, ids[6 * 32];
    emu_test_geometry(&count, ids);
    cr_assert_eq(count, 6 * 32);
    for (int b = 0; b < 6; b++)
        for (int t = 0; t < 32; t++) cr_assert_eq(ids[b * 32 + t], 31 - t + 1000 * b);
}

/* Stream capture: work on the stream is recorded, not run, and each graph
 * launch runs it again with the values the buffers hold then; an
 * allocation or a synchronisation during a capture fails and spoils it, as
 * in CUDA's global capture mode. */
Test(emu, stream_capture_records_and_replays)
{
    cudaStream_t s;
    cr_assert_eq(cudaStreamCreate(&s), cudaSuccess);
    float *src, *dst;
    cr_assert_eq(cudaMalloc((void **)&src, 4 * sizeof(float)), cudaSuccess);
    cr_assert_eq(cudaMalloc((void **)&dst, 4 * sizeof(float)), cudaSuccess);
    float h[4] = {1, 2, 3, 4};
    cr_assert_eq(cudaMemcpy(src, h, sizeof(h), cudaMemcpyHostToDevice), cudaSuccess);
    cr_assert_eq(cudaMemset(dst, 0, sizeof(h)), cudaSuccess);
    cr_assert_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    cr_assert_eq(cudaMemcpyAsync(dst, src, sizeof(h), cudaMemcpyDeviceToDevice, s), cudaSuccess);
    cudaGraph_t g;
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaSuccess);
    cr_assert_eq(dst[0], 0.0f, "a captured copy does not run");
    cudaGraphExec_t x;
    cr_assert_eq(cudaGraphInstantiate(&x, g, 0), cudaSuccess);
    cr_assert_eq(cudaGraphDestroy(g), cudaSuccess);
    cr_assert_eq(cudaGraphLaunch(x, s), cudaSuccess);
    cr_assert_eq(dst[3], 4.0f);
    src[3] = 40.0f;
    cr_assert_eq(cudaGraphLaunch(x, s), cudaSuccess);
    cr_assert_eq(dst[3], 40.0f, "a replay reads the buffers again");
    cr_assert_eq(cudaGraphExecDestroy(x), cudaSuccess);

    void *p;
    cr_assert_eq(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    cr_assert_eq(cudaMalloc(&p, 16), cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    cr_assert_eq(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    cr_assert_null(g);
    cr_assert_eq(cudaMalloc(&p, 16), cudaSuccess, "outside a capture it works again");
    cudaFree(p);
    cudaFree(src);
    cudaFree(dst);
    cudaStreamDestroy(s);
}
