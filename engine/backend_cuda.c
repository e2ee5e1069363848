/* backend_cuda.c: the op table on an NVIDIA GPU: kernels/cuda for
 * everything but the GEMMs, cuBLAS for those, NCCL for the tensor-parallel
 * all-reduce.
 *
 * Float weights and the KV cache are stored in the backend's dtype
 * (float32, float16 or bfloat16); activations between ops are fp32. A GEMM
 * with half or bf16 weights first rounds its input to the same type
 * (kc_cast), then multiplies with fp32 accumulation and fp32 output, so the
 * residual stream, norms, softmax and logits stay fp32. Quantized GGUF
 * weights (Q8_0, Q4_0, Q4_K, Q6_K) and fp8's F8_ROWS stay in their blocks:
 * steps of up to KC_QGEMV_MAX_T tokens use the dequantizing GEMV, longer
 * ones dequantize DEQ_CHUNK weights at a time to bf16 for cuBLAS, except
 * F8_ROWS on cuBLASLt's FP8 GEMM where the GPU has one (backend_cuda_fp8.c;
 * an F8_ROWS weight keeps its rows' scales after its rows). One stream;
 * host<->device copies go through a pinned staging buffer; steps bring
 * back one token a row, sampled on the device (kc_sample: penalties,
 * logit_bias, temperature, top-k/p, min-p; logprobs when asked), or the
 * logits when the host must see them (grammars). Graphs (backend_cuda_graph.c) are stream captures
 * (cudaStreamCaptureModeGlobal) instantiated once and replayed; cuBLAS
 * gets a workspace of its own so that it allocates nothing while captured.
 * Built with nvcc for a GPU (make CUDA=1) or against kernels/emu for tests
 * (make emu). */
#include <math.h>
#include <string.h>

#include "../kernels/cuda/kernels.h"
#ifdef TESSERA_EMU
#include "../kernels/emu/emu.h"
#define DEQ_CHUNK ((int64_t)1 << 12) /* small: the tests cross chunk boundaries */
#else
#define DEQ_CHUNK ((int64_t)1 << 24) /* weights dequantized per GEMM: 32 MiB of bf16 */
#endif
#include "backend_cuda_impl.h"
#include "comm.h"

static cudaDataType cuda_type(enum dtype t)
{
    return t == DTYPE_F32 ? CUDA_R_32F : t == DTYPE_F16 ? CUDA_R_16F : CUDA_R_16BF;
}

static void *cuda_alloc(struct backend *b, size_t bytes)
{
    (void)b;
    void *p = NULL;
    return cudaMalloc(&p, bytes ? bytes : 1) == cudaSuccess ? p : NULL;
}

static void cuda_free(struct backend *b, void *p)
{
    (void)b;
    if (p) CUDA_OK(cudaFree(p));
}

/* Makes *buf (of *cap bytes) a device buffer of at least bytes. */
static void *grow(struct backend *b, void **buf, size_t *cap, size_t bytes, const char *what)
{
    if (bytes > *cap) {
        cuda_free(b, *buf);
        *buf = cuda_alloc(b, bytes);
        CHECKF(*buf, "cuda: cannot allocate %zu bytes for %s", bytes, what);
        *cap = bytes;
    }
    return *buf;
}

void *cuda_scratch(struct backend *b, void **buf, size_t *cap, size_t bytes, const char *what)
{
    if (bytes > *cap) cu(b)->buffers_gen++;
    return grow(b, buf, cap, bytes, what);
}

/* Room for n more bytes in the staging buffer; waits for the stream first
 * when the buffer must be reused or grown. */
static unsigned char *stage(struct backend_cuda *c, size_t n)
{
    n = (n + 255) & ~(size_t)255;
    if (c->staging_used + n > c->staging_cap) {
        CUDA_OK(cudaStreamSynchronize(c->stream));
        c->staging_used = 0;
        if (n > c->staging_cap) {
            if (c->staging) CUDA_OK(cudaFreeHost(c->staging));
            c->staging_cap = n > ((size_t)4 << 20) ? n : (size_t)4 << 20;
            CUDA_OK(cudaMallocHost((void **)&c->staging, c->staging_cap));
        }
    }
    unsigned char *p = c->staging + c->staging_used;
    c->staging_used += n;
    return p;
}

static void cuda_to_device(struct backend *b, void *dst, const void *src, size_t bytes)
{
    struct backend_cuda *c = cu_write(b);
    /* the current device is per host thread: a forward (which starts with
     * this copy) may run on another thread than the one that made c */
    static _Thread_local int thread_device = -1;
    if (thread_device != c->device) {
        CUDA_OK(cudaSetDevice(c->device));
        thread_device = c->device;
    }
    if (!bytes) return;
    unsigned char *p = stage(c, bytes);
    memcpy(p, src, bytes);
    CUDA_OK(cudaMemcpyAsync(dst, p, bytes, cudaMemcpyHostToDevice, c->stream));
}

static void cuda_to_host(struct backend *b, void *dst, const void *src, size_t bytes)
{
    struct backend_cuda *c = cu(b);
    if (!bytes) return;
    unsigned char *p = stage(c, bytes);
    CUDA_OK(cudaMemcpyAsync(p, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_OK(cudaStreamSynchronize(c->stream));
    memcpy(dst, p, bytes);
    c->staging_used = 0;
}

/* The type a host weight is stored in on the device: quantized ones as
 * they are, float ones in the backend's dtype. */
static enum dtype stored_type(struct backend *b, const struct tensor *host)
{
    return dtype_is_quant(host->dtype) ? host->dtype : b->weight_dtype;
}

/* host's rows to device memory at d, as dt (converted on the host first). */
static void copy_rows(void *d, const struct tensor *host, enum dtype dt)
{
    size_t bytes = (size_t)host->rows * dtype_row_bytes(dt, host->cols);
    const void *src = host->data;
    void *conv = NULL;
    if (host->dtype != dt) {
        conv = xmalloc(bytes);
        size_t n = (size_t)host->rows * host->cols;
        for (size_t i = 0; i < n; i++) dtype_set(conv, dt, i, dtype_get(host->data, host->dtype, i));
        src = conv;
    }
    CUDA_OK(cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice));
    free(conv);
}

/* The rows of hosts[0..n) (one type, one width), one under the other. */
static void cuda_upload_stacked(struct backend *b, const struct tensor *const *hosts, int n, struct tensor *dev)
{
    enum dtype dt = stored_type(b, hosts[0]);
    int64_t rows = 0, cols = hosts[0]->cols;
    for (int i = 0; i < n; i++) {
        CHECKF(hosts[i]->cols == cols && stored_type(b, hosts[i]) == dt, "cuda: weights of different types or "
               "widths cannot be stacked");
        rows += hosts[i]->rows;
    }
    size_t row_bytes = dtype_row_bytes(dt, cols), bytes = (size_t)rows * row_bytes;
    size_t scales = dt == DTYPE_F8_ROWS ? sizeof(float) * (size_t)rows : 0;
    unsigned char *d = cuda_alloc(b, bytes + scales);
    CHECKF(d, "cuda: cannot allocate %zu bytes for a weight", bytes + scales);
    *dev = (struct tensor){.dtype = dt, .rows = rows, .cols = cols, .data = d};
    if (scales) cuda_fp8_scales((float *)(d + bytes), hosts, n, rows);
    for (int i = 0; i < n; i++) {
        copy_rows(d, hosts[i], dt);
        d += (size_t)hosts[i]->rows * row_bytes;
    }
}

/* Quantized weights go as they are; float ones are converted to the
 * backend's dtype on the host first. One copy. */
static void cuda_upload_weight(struct backend *b, const struct tensor *host, struct tensor *dev,
                               enum weight_use use)
{
    (void)use; /* one layout for both */
    cuda_upload_stacked(b, &host, 1, dev);
}

static void cuda_embed(struct backend *b, float *out, const struct tensor *table, const int32_t *ids, int T)
{
    cudaStream_t s = cu_write(b)->stream;
    if (dtype_is_quant(table->dtype)) kc_qembed(s, out, table->data, table->dtype, ids, T, (int)table->cols);
    else kc_embed(s, out, table->data, table->dtype, ids, T, (int)table->cols);
}

/* The rounded copy of out[0..n) that the next GEMM on out reads, made by
 * the op that writes out (NULL with fp32 weights: GEMMs read out itself). */
static void *cast_for(struct backend_cuda *c, const float *out, int64_t n)
{
    enum dtype dt = c->base.weight_dtype;
    if (dt == DTYPE_F32) return NULL;
    cuda_scratch(&c->base, &c->cast, &c->cast_bytes, (size_t)n * dtype_size(dt), "a GEMM input");
    c->cast_of = out, c->cast_n = n, c->cast_dt = dt;
    return c->cast;
}

static void cuda_rmsnorm(struct backend *b, float *out, float *x, const float *residual, const float *w, int T,
                         int H, float eps)
{
    struct backend_cuda *c = cu_write(b);
    void *cast = cast_for(c, out, (int64_t)T * H);
    kc_rmsnorm_cast(c->stream, out, cast, b->weight_dtype, x, residual, w, T, H, eps);
}

/* x[T, K] rounded to dt (F32: x itself), kept for the next GEMM on x. */
static const void *gemm_input(struct backend_cuda *c, const float *x, int T, int K, enum dtype dt)
{
    int64_t n = (int64_t)T * K;
    if (dt == DTYPE_F32) return x;
    if (c->cast_of != x || c->cast_n != n || c->cast_dt != dt) {
        cuda_scratch(&c->base, &c->cast, &c->cast_bytes, (size_t)n * dtype_size(dt), "a GEMM input");
        kc_cast(c->stream, c->cast, dt, x, n);
        c->cast_of = x, c->cast_n = n, c->cast_dt = dt;
    }
    return c->cast;
}

/* Row-major y[T, N] (row stride ldy) = x[T, K] W[N, K]^T: in cuBLAS's
 * column-major terms y^T = W^T' x^T, with inputs of type dt. */
static void gemm(struct backend_cuda *c, float *y, int ldy, const void *w, const void *in, enum dtype dt, int N,
                 int K, int T)
{
    const float one = 1.0f, zero = 0.0f;
    BLAS_OK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, w, cuda_type(dt), K, in, cuda_type(dt),
                         K, &zero, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* y[T, N] = x W^T for a quantized W: DEQ_CHUNK weights at a time
 * dequantized to bf16 for cuBLAS, with x rounded to bf16 once. */
static void dequant_gemm(struct backend_cuda *c, float *y, const float *x, const struct tensor *w, int T)
{
    int N = (int)w->rows, K = (int)w->cols;
    const void *in = gemm_input(c, x, T, K, DTYPE_BF16);
    int64_t rows = DEQ_CHUNK / K > 0 ? DEQ_CHUNK / K : 1;
    if (rows > N) rows = N;
    cuda_scratch(&c->base, &c->deq, &c->deq_bytes, (size_t)(rows * K) * dtype_size(DTYPE_BF16),
                 "dequantized weights");
    for (int r0 = 0; r0 < N; r0 += (int)rows) {
        int n = N - r0 < rows ? N - r0 : (int)rows;
        kc_dequant_bf16(c->stream, c->deq, (const char *)w->data + (size_t)r0 * dtype_row_bytes(w->dtype, K),
                        w->dtype, n, K);
        gemm(c, y + r0, N, c->deq, in, DTYPE_BF16, n, K, T);
    }
}

static void cuda_matmul(struct backend *b, float *y, const float *x, const struct tensor *w, int T)
{
    struct backend_cuda *c = cu(b);
    int N = (int)w->rows, K = (int)w->cols;
    if (T <= 0) return;
    if (dtype_is_quant(w->dtype) && T <= KC_QGEMV_MAX_T) {
        kc_qgemv(c->stream, y, x, w->data, w->dtype, N, K, T);
    } else if (dtype_is_quant(w->dtype)) {
        if (w->dtype != DTYPE_F8_ROWS || !cuda_fp8_gemm(c, y, x, w, T)) dequant_gemm(c, y, x, w, T);
    } else {
        gemm(c, y, N, w->data, gemm_input(c, x, T, K, w->dtype), w->dtype, N, K, T);
    }
    if (c->cast_of == y) c->cast_of = NULL;
}

static void cuda_add_bias(struct backend *b, float *y, const float *bias, int T, int n)
{
    kc_add_bias(cu_write(b)->stream, y, bias, T, n);
}

static void cuda_rope(struct backend *b, float *x, int T, int n_heads, int hd, const float *cos, const float *sin)
{
    kc_rope(cu_write(b)->stream, x, T, n_heads, hd, cos, sin);
}

/* The multipliers of a KV write: 1, or an fp8 cache's 1 / scale. Its
 * per-tensor scales are set from the first step's K and V (k, v: T rows of
 * the layer's width, ld apart) as vLLM's --calculate-kv-scales does, max
 * |K| / 200 and max |V| / 100, so that later values up to 2.2x and 4.5x
 * the first step's largest still fit e4m3's 448; k_bound bounds max |K|
 * after RoPE by k's (sqrt 2 when k is not rotated yet). That step runs
 * eagerly (a graph's first step is, before it is recorded:
 * model__graph_step), so the scales are fixed before any graph records
 * them; the wait for the two maxima happens once a layer. */
static void kv_muls(struct backend_cuda *c, const struct kv_layer *kv, const float *k, const float *v, int T,
                    int64_t ld, float k_bound, float *k_mul, float *v_mul)
{
    *k_mul = *v_mul = 1.0f;
    if (!kv->scales) return;
    if (kv->scales[0] == 0.0f) {
        float amax[2], *d = grow(&c->base, &c->kv_amax, &c->kv_amax_bytes, sizeof(amax), "KV maxima");
        kc_kv_amax(c->stream, d, k, v, T, kv->n_kv_heads * kv->head_dim, ld);
        cuda_to_host(&c->base, amax, d, sizeof(amax));
        kv->scales[0] = amax[0] > 0.0f ? amax[0] * k_bound / 200.0f : 1.0f;
        kv->scales[1] = amax[1] > 0.0f ? amax[1] / 100.0f : 1.0f;
    }
    *k_mul = 1.0f / kv->scales[0], *v_mul = 1.0f / kv->scales[1];
}

static void cuda_kv_write(struct backend *b, const struct kv_layer *kv, const float *k, const float *v,
                          const int64_t *slots, int T)
{
    struct backend_cuda *c = cu_write(b);
    int row = kv->n_kv_heads * kv->head_dim;
    float km, vm;
    kv_muls(c, kv, k, v, T, row, 1.0f, &km, &vm);
    kc_kv_write(c->stream, kv->k, kv->v, b->kv_dtype, k, v, slots, T, row, km, vm);
}

static void cuda_rope_kv_write(struct backend *b, float *q, const float *qkv, int T, int n_heads,
                               const float *cos, const float *sin, const struct kv_layer *kv, const int64_t *slots)
{
    struct backend_cuda *c = cu_write(b);
    int row = kv->n_kv_heads * kv->head_dim;
    const float *k = qkv + n_heads * kv->head_dim;
    float km, vm;
    kv_muls(c, kv, k, k + row, T, n_heads * kv->head_dim + 2 * row, sqrtf(2.0f), &km, &vm);
    kc_rope_kv_write(c->stream, q, qkv, T, n_heads, kv->n_kv_heads, kv->head_dim, cos, sin, kv->k, kv->v,
                     b->kv_dtype, slots, km, vm);
}

/* Prompt chunks go to the prefill kernel, single-token steps (decodes) to
 * the decode kernel, split over enough partitions to fill the GPU. */
static void cuda_attention(struct backend *b, float *out, const float *q, const struct kv_layer *kv,
                           const struct attn_batch *ab)
{
    struct backend_cuda *c = cu_write(b);
    struct kc_attn a = {ab->n_seqs, ab->n_heads, kv->n_kv_heads, kv->head_dim, kv->block_size, ab->seq_start,
                        ab->positions, ab->block_tables, ab->max_blocks, ab->max_q_len, ab->max_ctx,
                        ab->scale * (kv->scales ? kv->scales[0] : 1.0f), kv->scales ? kv->scales[1] : 1.0f};
    if (a.max_q_len > 1) kc_attention_prefill(c->stream, out, q, kv->k, kv->v, b->kv_dtype, &a, 2);
    if (ab->n_single == 0) return;
    int part = kc_decode_part_size(&a, c->n_sm);
    float *tmp = cuda_scratch(b, &c->attn_tmp, &c->attn_tmp_bytes, kc_decode_tmp_floats(&a, part) * sizeof(float),
                              "split-K attention");
    kc_attention_decode(c->stream, out, q, kv->k, kv->v, b->kv_dtype, &a, part, tmp);
}

static void cuda_silu_mul(struct backend *b, float *out, const float *gate, const float *up, int64_t n)
{
    kc_silu_mul(cu_write(b)->stream, out, gate, up, n);
}

/* Also rounds out for the down projection that reads it next. */
static void cuda_silu_mul_stacked(struct backend *b, float *out, const float *gate_up, int T, int inter)
{
    struct backend_cuda *c = cu_write(b);
    kc_silu_mul_stacked(c->stream, out, cast_for(c, out, (int64_t)T * inter), b->weight_dtype, gate_up, T, inter);
}

static void cuda_argmax(struct backend *b, int32_t *out, const float *x, int rows, int n)
{
    kc_argmax(cu_write(b)->stream, out, x, rows, n);
}

/* The parameters and lists go up in one copy (through the staging buffer),
 * 16-byte aligned each; with logprobs asked, the kernel's records (and its
 * copies of the values it edits) sit after them and come back before the
 * op returns. */
static void cuda_sample(struct backend *b, int32_t *out, float *logits, int rows, int n, const struct sample_batch *sb)
{
    struct backend_cuda *c = cu_write(b);
    const struct sample_lists *l = &sb->lists;
    size_t lp = sb->logprobs ? 1 : 0, sz[8] = {(size_t)rows * sizeof(*sb->rows), (size_t)sb->n_pen * 4,
                                                (size_t)sb->n_pen * 4, (size_t)sb->n_bias * 4, (size_t)sb->n_bias * 4,
                                                lp * sb->n_pen * 4, lp * sb->n_bias * 4,
                                                lp * rows * sizeof(struct sample_logprobs)};
    const void *src[5] = {sb->rows, l->pen_ids, l->pen_counts, l->bias_ids, l->bias};
    size_t off[9] = {0};
    for (int i = 0; i < 8; i++) off[i + 1] = off[i] + ((sz[i] + 15) & ~(size_t)15);
    unsigned char *d = grow(b, &c->samp, &c->samp_bytes, off[8], "sampling parameters");
    unsigned char *h = stage(c, off[5]);
    for (int i = 0; i < 5; i++)
        if (sz[i]) memcpy(h + off[i], src[i], sz[i]);
    CUDA_OK(cudaMemcpyAsync(d, h, off[5], cudaMemcpyHostToDevice, c->stream));
    struct sample_lists dl = {(const int32_t *)(d + off[1]), (const int32_t *)(d + off[2]),
                              (const int32_t *)(d + off[3]), (const float *)(d + off[4])};
    struct sample_logprobs *dlp = lp ? (struct sample_logprobs *)(d + off[7]) : NULL;
    kc_sample(c->stream, out, logits, rows, n, (const struct sample_row *)d, dl, dlp, (float *)(d + off[5]),
              (float *)(d + off[6]));
    if (lp) cuda_to_host(b, sb->logprobs, dlp, sz[7]);
}

/* In place on the device, on the backend's stream: NCCL picks NVLink,
 * PCIe or the network between the ranks' GPUs. */
static void cuda_all_reduce(struct backend *b, float *buf, int64_t n)
{
    struct backend_cuda *c = cu_write(b);
    if (!c->nccl || n <= 0) return;
    ncclResult_t r = ncclAllReduce(buf, buf, (size_t)n, ncclFloat32, ncclSum, c->nccl, c->stream);
    CHECKF(r == ncclSuccess, "ncclAllReduce: %s", ncclGetErrorString(r));
}

/* What the KV cache may take: the --gpu-memory-utilization share of the
 * device, less what is in use, the weights and a margin for activations. */
static int64_t cuda_kv_budget(struct backend *b, int64_t weight_bytes)
{
    size_t free_b = 0, total = 0;
    CUDA_OK(cudaMemGetInfo(&free_b, &total));
    int64_t budget = (int64_t)(cu(b)->mem_util * (double)total) - (int64_t)(total - free_b) - weight_bytes -
                     ((int64_t)256 << 20);
    return budget > 0 ? budget : 0;
}

static void cuda_destroy(struct backend *b)
{
    struct backend_cuda *c = cu(b);
    if (!c) return;
    if (c->nccl) ncclCommAbort(c->nccl); /* destroy would wait for the other ranks: a rank that fails hangs */
    cuda_free(b, c->cast);
    cuda_free(b, c->deq);
    cuda_free(b, c->attn_tmp);
    cuda_free(b, c->f8_act);
    cuda_free(b, c->kv_amax);
    cuda_free(b, c->blas_ws);
    cuda_free(b, c->samp);
    if (c->staging) cudaFreeHost(c->staging);
    cublasDestroy(c->blas);
    if (c->lt) cublasLtDestroy(c->lt);
    cudaStreamDestroy(c->stream);
    free(c);
}

static const struct backend_ops cuda_ops = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .to_device = cuda_to_device,
    .to_host = cuda_to_host,
    .upload_weight = cuda_upload_weight,
    .embed = cuda_embed,
    .rmsnorm = cuda_rmsnorm,
    .matmul = cuda_matmul,
    .add_bias = cuda_add_bias,
    .rope = cuda_rope,
    .kv_write = cuda_kv_write,
    .upload_stacked = cuda_upload_stacked,
    .rope_kv_write = cuda_rope_kv_write,
    .silu_mul_stacked = cuda_silu_mul_stacked,
    .attention = cuda_attention,
    .argmax = cuda_argmax,
    .sample = cuda_sample,
    .silu_mul = cuda_silu_mul,
    .all_reduce = cuda_all_reduce,
    .kv_budget = cuda_kv_budget,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .destroy = cuda_destroy,
};

struct backend *backend_cuda_create(int device, enum dtype dt, enum dtype kv_dt, double gpu_mem_util,
                                    bool enforce_eager)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        err_set(ERR_UNSUPPORTED, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return NULL;
    }
    if (device < 0 || device >= n || (e = cudaSetDevice(device)) != cudaSuccess) {
        err_set(ERR_INVALID, "CUDA device %d: %s", device,
                device < 0 || device >= n ? "no such device" : cudaGetErrorString(e));
        return NULL;
    }
    struct backend_cuda *c = xcalloc(1, sizeof(*c));
    c->ops = cuda_ops;
    if (enforce_eager) c->ops.graph_begin = NULL, c->ops.graph_end = NULL, c->ops.graph_launch = NULL,
                       c->ops.graph_free = NULL;
    c->base.ops = &c->ops;
    c->base.kv_dtype = kv_dt;
    c->base.weight_dtype = dt;
    c->mem_util = gpu_mem_util;
    CUDA_OK(cudaStreamCreate(&c->stream));
    BLAS_OK(cublasCreate(&c->blas));
    BLAS_OK(cublasSetStream(c->blas, c->stream));
    c->blas_ws = cuda_alloc(&c->base, BLAS_WORKSPACE);
    CHECKF(c->blas_ws, "cuda: cannot allocate cuBLAS's workspace");
    BLAS_OK(cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WORKSPACE));
    c->device = device;
    CUDA_OK(cudaDeviceGetAttribute(&c->n_sm, cudaDevAttrMultiProcessorCount, device));
    int major, minor;
    CUDA_OK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_OK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    if (10 * major + minor >= 89) BLAS_OK(cublasLtCreate(&c->lt)); /* FP8 tensor cores: Ada and later */
    if (comm_world() > 1) { /* rank 0 makes the NCCL id, MPI carries it */
        ncclUniqueId id;
#ifdef TESSERA_EMU
        emu_nccl_set_all_reduce(comm_all_reduce_sum); /* the stand-in NCCL sums on the host, over MPI */
#endif
        ncclResult_t r = comm_rank() == 0 ? ncclGetUniqueId(&id) : ncclSuccess;
        comm_bcast(&id, sizeof(id));
        if (r == ncclSuccess) r = ncclCommInitRank(&c->nccl, comm_world(), id, comm_rank());
        if (r != ncclSuccess) {
            err_set(ERR_UNSUPPORTED, "NCCL on rank %d (device %d): %s", comm_rank(), device, ncclGetErrorString(r));
            cuda_destroy(&c->base);
            return NULL;
        }
    }
    return &c->base;
}
