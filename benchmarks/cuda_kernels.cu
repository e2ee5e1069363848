/* cuda_kernels.cu: achieved memory bandwidth of the CUDA kernels against the
 * device's peak, on a machine with a GPU (make bench-cuda). Shapes: one
 * Llama-2-7B layer (32 heads, 32 KV heads of 128, hidden 4096), bf16 KV
 * cache in 16-token blocks. The paper bounds are in benchmarks/README.md.
 *
 * Also causal prefill attention (8,192 tokens as 16 x 512 or 4 x 2,048, and
 * 2 x 4,096) in TFLOP/s.
 *
 *   build/bench_cuda [--peak-gbs 3350]     (H100 SXM: 3350 GB/s) */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "../kernels/cuda/kernels.h"

#define OK(call)                                                                             \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess) {                                                             \
            fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                      \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static void *dalloc(size_t n)
{
    void *p;
    OK(cudaMalloc(&p, n));
    OK(cudaMemset(p, 0x3c, n)); /* not zeros: 0.0115 as float and as bf16 */
    return p;
}

/* Median-free but warm: the mean of iters launches after 3 warm-up runs. */
template <class F> static double time_us(F f, int iters)
{
    cudaEvent_t a, b;
    OK(cudaEventCreate(&a));
    OK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f();
    OK(cudaEventRecord(a));
    for (int i = 0; i < iters; i++) f();
    OK(cudaEventRecord(b));
    OK(cudaEventSynchronize(b));
    float ms;
    OK(cudaEventElapsedTime(&ms, a, b));
    return ms * 1000.0 / iters;
}

static void report(const char *name, double bytes, double us, double peak_gbs)
{
    double gbs = bytes / us / 1e3;
    printf("%-34s %10.1f MiB %10.2f us %8.0f GB/s %5.1f%% of peak\n", name, bytes / 1048576.0, us, gbs,
           100.0 * gbs / peak_gbs);
}

static const int32_t *upload(const std::vector<int32_t> &v)
{
    void *d = dalloc(v.size() * 4);
    OK(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    return (const int32_t *)d;
}

/* B sequences of q_len query tokens at positions ctx - q_len .. ctx - 1, their
 * 16-token blocks scattered over a cache of B * ctx / 16 blocks. */
static kc_attn make_batch(int B, int q_len, int ctx, int heads, int kv_heads, int dh)
{
    const int bs = 16, nb = ctx / bs, blocks = B * nb;
    std::vector<int32_t> bt((size_t)B * nb), start(B + 1), pos((size_t)B * q_len);
    for (size_t i = 0; i < bt.size(); i++) bt[i] = (int32_t)((i * 7919) % blocks);
    for (int s = 0; s <= B; s++) start[s] = s * q_len;
    for (size_t t = 0; t < pos.size(); t++) pos[t] = ctx - q_len + (int32_t)(t % q_len);
    return {B, heads, kv_heads, dh, bs, upload(start), upload(pos), upload(bt), nb, q_len, ctx, 0.0884f, 1.0f};
}

static void free_batch(const kc_attn &a)
{
    cudaFree((void *)a.seq_start), cudaFree((void *)a.positions), cudaFree((void *)a.block_tables);
}

int main(int argc, char **argv)
{
    double peak = 3350;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--peak-gbs")) peak = atof(argv[++i]);
    cudaDeviceProp prop;
    OK(cudaGetDeviceProperties(&prop, 0));
    printf("%s, %d SMs; peak taken as %.0f GB/s\n", prop.name, prop.multiProcessorCount, peak);

    const int H = 4096, heads = 32, hd = 128;
    for (int T : {1, 512}) { /* RMSNorm with the residual add */
        float *x = (float *)dalloc((size_t)T * H * 4), *r = (float *)dalloc((size_t)T * H * 4);
        float *o = (float *)dalloc((size_t)T * H * 4), *w = (float *)dalloc(H * 4);
        double us = time_us([&] { kc_rmsnorm(0, o, x, r, w, T, H, 1e-5f); }, 200);
        char name[64];
        snprintf(name, sizeof(name), "rmsnorm+residual T=%d", T);
        report(name, 16.0 * T * H + 4.0 * H, us, peak);
        cudaFree(x), cudaFree(r), cudaFree(o), cudaFree(w);
    }
    const int decode_shapes[][2] = {{32, 128}, {8, 128}, {4, 64}}; /* KV heads, head size: Llama-2-7B, Llama-3-8B,
                                                                       * TinyLlama (32 query heads each) */
    for (const auto &shape : decode_shapes)
    for (int B : {1, 32, 256})
        for (int ctx : {512, 4096}) { /* paged decode attention, one layer */
            int kv_heads = shape[0], dh = shape[1];
            size_t cache = (size_t)B * ctx * kv_heads * dh * 2;
            void *k = dalloc(cache), *v = dalloc(cache);
            kc_attn a = make_batch(B, 1, ctx, heads, kv_heads, dh);
            float *q = (float *)dalloc((size_t)B * heads * dh * 4), *out = (float *)dalloc((size_t)B * heads * dh * 4);
            int part = kc_decode_part_size(&a, prop.multiProcessorCount);
            float *tmp = (float *)dalloc(kc_decode_tmp_floats(&a, part) * 4 + 4);
            double us = time_us([&] { kc_attention_decode(0, out, q, k, v, DTYPE_BF16, &a, part, tmp); }, 20);
            char name[64];
            snprintf(name, sizeof(name), "decode kv=%d hd=%d B=%d ctx=%d p=%d", kv_heads, dh, B, ctx, part);
            report(name, (double)cache * 2, us, peak);
            cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(out), cudaFree(tmp);
            free_batch(a);
        }
    for (int kv_heads : {32, 8})
        for (int L : {512, 2048, 4096}) { /* causal prefill attention, one layer: B prompts of L tokens */
            int B = 8192 / L, T = B * L;
            size_t cache = (size_t)T * kv_heads * hd * 2;
            void *k = dalloc(cache), *v = dalloc(cache);
            kc_attn a = make_batch(B, L, L, heads, kv_heads, hd);
            float *q = (float *)dalloc((size_t)T * heads * hd * 4), *out = (float *)dalloc((size_t)T * heads * hd * 4);
            double us = time_us([&] { kc_attention_prefill(0, out, q, k, v, DTYPE_BF16, &a, 2); }, 5);
            double flops = 4.0 * hd * heads * B * (double)L * (L + 1) / 2;
            printf("prefill attn kv=%d %dx%d tokens      %10.2f us %8.1f TFLOP/s (%s; target at 4K: 150)\n", kv_heads,
                   B, L, us, flops / us / 1e6, kc_prefill_on_tensor_cores(DTYPE_BF16, hd) ? "tensor cores" : "CUDA cores");
            cudaFree(k), cudaFree(v), cudaFree(q), cudaFree(out);
            free_batch(a);
        }
    /* quantized weights, 4096 x 14336 */
    for (enum dtype dt : {DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K, DTYPE_F8_ROWS}) {
        const int N = 14336, K = 4096;
        size_t wb = (size_t)N * dtype_row_bytes(dt, K);
        void *w = dalloc(wb), *deq = dalloc((size_t)N * K * 2);
        float *x = (float *)dalloc((size_t)KC_QGEMV_MAX_T * K * 4), *y = (float *)dalloc((size_t)KC_QGEMV_MAX_T * N * 4);
        char name[64];
        for (int T : {1, KC_QGEMV_MAX_T}) {
            double us = time_us([&] { kc_qgemv(0, y, x, w, dt, N, K, T); }, 50);
            snprintf(name, sizeof(name), "qgemv %s T=%d %dx%d", dtype_name(dt), T, N, K);
            report(name, (double)wb, us, peak);
        }
        double us = time_us([&] { kc_dequant_bf16(0, deq, w, dt, N, K); }, 20);
        snprintf(name, sizeof(name), "dequant %s -> bf16 %dx%d", dtype_name(dt), N, K);
        report(name, (double)wb + 2.0 * N * K, us, peak);
        cudaFree(w), cudaFree(deq), cudaFree(x), cudaFree(y);
    }
    { /* an FP8 GEMM's activations: a 4,096-token prefill step's rows of 4,096 to e4m3 */
        const int T = 4096, K = 4096;
        float *x = (float *)dalloc((size_t)T * K * 4), *sc = (float *)dalloc((size_t)T * 4);
        void *q = dalloc((size_t)T * K);
        double us = time_us([&] { kc_quant_rows_f8(0, q, sc, x, T, K); }, 20);
        report("fp8 activation rows 4096x4096", 5.0 * T * K, us, peak);
        cudaFree(x), cudaFree(sc), cudaFree(q);
    }
    printf("the decode step at batch 1: build/tessera generate MODEL --device cuda reports decode tokens/s;\n"
           "compare with weights bytes / peak (benchmarks/README.md)\n");
    return 0;
}
