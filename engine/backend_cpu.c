/* backend_cpu.c: the op table over kernels/cpu, split across a thread pool.
 *
 * Each op cuts its outermost parallel index into tasks; tiny ops (a decode
 * step's norms and element-wise ops) run on the calling thread, where waking
 * the pool would cost more than the work. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comm.h"
#include "../base/err.h"
#include "threadpool.h"

/* Below this many elements an element-wise op stays on one thread. */
#define SERIAL_ELEMS 16384

struct backend_cpu {
    struct backend base;
    threadpool *pool;
    int n_threads, max_ctx;
    float *scratch; /* [n_threads, max_ctx] for attention scores, grown on demand */
    void *xq;       /* quantized activations of a matmul (kernels.h's qact rows), or its
                     * bf16 tiles for AMX */
    size_t xq_cap;
    void *panels;   /* AMX: [n_threads] bf16 panels of 16 weight rows */
    size_t panel_cap;
};

static struct backend_cpu *cpu(struct backend *b) { return (struct backend_cpu *)b; }

/* [lo, hi) of task i when n items are cut into n_tasks pieces aligned to align */
static void split(int64_t n, int n_tasks, int i, int64_t align, int64_t *lo, int64_t *hi)
{
    int64_t units = (n + align - 1) / align;
    int64_t u0 = units * i / n_tasks, u1 = units * (i + 1) / n_tasks;
    *lo = u0 * align < n ? u0 * align : n;
    *hi = u1 * align < n ? u1 * align : n;
}

static void *cpu_alloc(struct backend *b, size_t bytes)
{
    (void)b;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) return NULL;
    return p;
}

static void cpu_free(struct backend *b, void *p)
{
    (void)b;
    free(p);
}

static void cpu_copy(struct backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    memcpy(dst, src, bytes);
}

/* Column blocks for matmul weights. A one-token matmul reads every weight
 * row once against the whole activation row x. When x (K fp32) and the
 * weight row in flight no longer fit in L1 together, the streaming weights
 * evict x and it comes back from L2 for every row: on Zen 4, F16 rows of
 * K = 2048 read at 29-31 GB/s but K = 5632 (TinyLlama's down_proj) at
 * 24-26. Stored as blocks of at most MM_ROW_BYTES / (4 + weight bytes)
 * columns, each block's part of x stays in L1 and each block is still read as
 * one sequential stream: down_proj 20.3 -> 16.7 ms a token, the whole token's
 * matmuls 73.6 -> 69.6 ms (alternating per token in one process). Reading the
 * same columns out of whole rows (strided pieces) was slower than not
 * blocking at all, hence the copy. Columns per block, or 0: rows stay whole. */
#define MM_ROW_BYTES (12 << 10)

static int64_t block_cols(const struct tensor *w)
{
    if (dtype_is_quant(w->dtype)) return 0; /* rows of K int8 activations and ~K/2 weight bytes fit */
    int64_t per_col = 4 + (int64_t)dtype_size(w->dtype);
    if (w->cols * per_col <= MM_ROW_BYTES) return 0;
    int64_t n_blocks = (w->cols * per_col + MM_ROW_BYTES - 1) / MM_ROW_BYTES;
    return ((w->cols + n_blocks - 1) / n_blocks + 63) / 64 * 64; /* 64-byte aligned x and rows */
}

/* A quantized weight's packed copy for matmul_qp (the rows stay a view for
 * embedding lookups). */
struct pack_job {
    void *dst;
    const struct tensor *w;
    int64_t groups;
    int n_tasks;
};

static void pack_task(void *ctx, int i, int thread)
{
    (void)thread;
    struct pack_job *j = ctx;
    int64_t g0, g1;
    split(j->groups, j->n_tasks, i, 1, &g0, &g1);
    qpack(j->dst, j->w->data, j->w->dtype, (int)j->w->rows, (int)j->w->cols, (int)g0, (int)g1);
}

/* dev->packed: dev's rows in qpack's 16-row groups, packed by every thread. */
static void pack_quantized(struct backend *b, struct tensor *dev)
{
    int64_t groups = (dev->rows + QPACK_ROWS - 1) / QPACK_ROWS;
    size_t bytes = (size_t)groups * qpack_group_bytes(dev->dtype, (int)dev->cols);
    void *dst = cpu_alloc(b, bytes);
    CHECKF(dst, "cpu: cannot allocate %zu bytes for a weight", bytes);
    int n = 4 * cpu(b)->n_threads;
    struct pack_job j = {dst, dev, groups, groups < n ? (int)groups : n};
    threadpool_run(cpu(b)->pool, pack_task, &j, j.n_tasks);
    dev->packed = dst;
}

static void cpu_upload_weight(struct backend *b, const struct tensor *host, struct tensor *dev,
                              enum weight_use use)
{
    *dev = *host;
    if (dtype_is_quant(host->dtype)) {
        if (use == WEIGHT_ROWS || !qpack_available(host->dtype)) return;
        pack_quantized(b, dev);
        /* the mapped rows are not read again, unless AMX prefill panels
         * dequantize them (then they stay mapped beside the packed copy) */
        if (use == WEIGHT_MATMUL && !kcpu_have_amx()) dev->data = NULL;
        return;
    }
    int64_t bc = use == WEIGHT_MATMUL ? block_cols(host) : 0;
    if (!bc) return; /* the same view: no copy */
    size_t es = dtype_size(host->dtype);
    char *dst = cpu_alloc(b, (size_t)host->rows * host->cols * es);
    CHECKF(dst, "cpu: cannot allocate %zu bytes for a weight", (size_t)host->rows * host->cols * es);
    for (int64_t c0 = 0; c0 < host->cols; c0 += bc) {
        int64_t width = host->cols - c0 < bc ? host->cols - c0 : bc;
        char *block = dst + (size_t)host->rows * c0 * es;
        for (int64_t r = 0; r < host->rows; r++)
            memcpy(block + (size_t)(r * width) * es, (const char *)host->data + (size_t)(r * host->cols + c0) * es,
                   (size_t)width * es);
    }
    dev->data = dst;
    dev->block_cols = bc;
}

static void cpu_embed(struct backend *b, float *out, const struct tensor *table, const int32_t *ids, int T)
{
    (void)b;
    embed_ref(out, table->data, table->dtype, ids, (int)table->cols, 0, T);
}

struct rms_job {
    float *out, *x;
    const float *residual, *w;
    int T, H, n_tasks;
    float eps;
};

static void rms_task(void *ctx, int i, int thread)
{
    (void)thread;
    struct rms_job *j = ctx;
    int64_t t0, t1;
    split(j->T, j->n_tasks, i, 1, &t0, &t1);
    if (j->residual) add(j->x, j->residual, t0 * j->H, t1 * j->H);
    rmsnorm(j->out, j->x, j->w, j->H, j->eps, (int)t0, (int)t1);
}

static void cpu_rmsnorm(struct backend *b, float *out, float *x, const float *residual,
                        const float *w, int T, int H, float eps)
{
    struct rms_job j = {out, x, residual, w, T, H, 1, eps};
    if ((int64_t)T * H >= SERIAL_ELEMS) j.n_tasks = T < cpu(b)->n_threads ? T : cpu(b)->n_threads;
    threadpool_run(cpu(b)->pool, rms_task, &j, j.n_tasks);
}

/* A matmul's rows go out in tasks that shrink as the work runs out (guided
 * self-scheduling, OpenMP's schedule(guided)): each takes 1 / (2 x threads)
 * of the rows left, at least MM_MIN_ROWS, claimed by whichever thread is
 * free. Big first tasks are few sequential streams; small last ones let the
 * threads finish together. Against chunks of 64 rows (which beat one half a
 * thread by 2-6%), TinyLlama's matmuls of one token took 4-8% less time when
 * memory was fast and 1% when it was slow, 2% less at 4 and 16 tokens, the
 * same at 128 (alternating per token in one process). */
#define MM_MIN_ROWS 16
#define MM_MAX_TASKS 1024

struct mm_job {
    struct backend_cpu *c;
    float *y;
    const float *x;
    const void *xq;                  /* quantized weights: x as qact rows */
    const void *xb;                  /* or for AMX: x as bf16 tiles */
    const struct tensor *w;
    int T;
    int64_t start[MM_MAX_TASKS + 1]; /* task i: rows [start[i], start[i + 1]) */
};

static void mm_task(void *ctx, int i, int thread)
{
    struct mm_job *j = ctx;
    const struct tensor *w = j->w;
    int n0 = (int)j->start[i], n1 = (int)j->start[i + 1];
    if (j->xb) {
        void *panel = (char *)j->c->panels + (size_t)thread * 32 * w->cols;
        for (int n = n0; n < n1; n += 16) {
            int rows = n1 - n < 16 ? n1 - n : 16;
            amx_panel(panel, w->data, w->dtype, (int)w->cols, n, rows);
            matmul_amx(j->y, (int)w->rows, j->xb, panel, j->T, (int)w->cols, n, rows, false);
        }
        return;
    }
    if (w->packed) {
        matmul_qp(j->y, (int)w->rows, j->xq, w->packed, w->dtype, j->T, (int)w->cols, n0, n1, false);
        return;
    }
    if (j->xq) {
        matmul_q(j->y, (int)w->rows, j->xq, w->data, w->dtype, j->T, (int)w->cols, n0, n1, false);
        return;
    }
    /* the task's rows block by block (one block when rows are whole),
     * adding each block's partial sums to the previous ones */
    int64_t bc = w->block_cols ? w->block_cols : w->cols;
    for (int64_t c0 = 0; c0 < w->cols; c0 += bc) {
        int64_t width = w->cols - c0 < bc ? w->cols - c0 : bc;
        const char *block = (const char *)w->data + (size_t)w->rows * c0 * dtype_size(w->dtype);
        matmul(j->y, (int)w->rows, j->x + c0, (int)w->cols, block, w->dtype, j->T, (int)width, n0, n1, c0 > 0);
    }
}

struct qact_job {
    void *xq;
    const float *x;
    const struct tensor *w;
    int T, n_tasks;
    bool amx;
};

static void qact_task(void *ctx, int i, int thread)
{
    (void)thread;
    struct qact_job *j = ctx;
    int64_t t0, t1;
    split(j->T, j->n_tasks, i, j->amx ? 16 : 1, &t0, &t1); /* AMX converts whole tiles of 16 tokens */
    int K = (int)j->w->cols;
    if (j->amx) amx_act_convert(j->xq, j->x, K, j->T, K, (int)t0, (int)t1);
    else qact_quantize(j->xq, j->x, K, j->w->dtype, K, (int)t0, (int)t1);
}

static void *grow(struct backend_cpu *c, void **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        free(*buf);
        *buf = cpu_alloc(&c->base, need);
        CHECKF(*buf, "cpu: cannot allocate %zu bytes of matmul scratch", need);
        *cap = need;
    }
    return *buf;
}

/* x quantized (or, for AMX, rounded to bf16 tiles) once for every task of a
 * matmul with quantized weights. */
static const void *quantize_input(struct backend_cpu *c, const float *x, const struct tensor *w, int T, bool amx)
{
    size_t need = amx ? amx_act_bytes(T, (int)w->cols) : (size_t)T * qact_row_bytes(w->dtype, (int)w->cols);
    struct qact_job j = {grow(c, &c->xq, &c->xq_cap, need), x, w, T, 1, amx};
    if ((int64_t)T * w->cols >= SERIAL_ELEMS) j.n_tasks = T < c->n_threads ? T : c->n_threads;
    threadpool_run(c->pool, qact_task, &j, j.n_tasks);
    return c->xq;
}

/* Steps of at least this many tokens take the AMX path (its panels cost a
 * dequantization of the weights per matmul, paid back over the tokens).
 * TinyLlama Q4_0, 2 threads, run alone, 2 alternating pairs: 16 decoding
 * sequences ran 120-127 tok/s with AMX from 16 tokens against 176-181 on the
 * packed VNNI kernels; a 128-token prompt 346-391 on AMX against 202-252. */
#define AMX_MIN_TOKENS 32

static void cpu_matmul(struct backend *b, float *y, const float *x, const struct tensor *w, int T)
{
    struct mm_job j; /* start[] is filled below, not zeroed: 8 KB */
    struct backend_cpu *c = cpu(b);
    bool quant = dtype_is_quant(w->dtype), amx = quant && T >= AMX_MIN_TOKENS && w->data && kcpu_have_amx();
    j.c = c;
    j.y = y;
    j.x = x;
    j.xq = quant && !amx ? quantize_input(c, x, w, T, false) : NULL;
    j.xb = amx ? quantize_input(c, x, w, T, true) : NULL;
    if (amx) grow(c, &c->panels, &c->panel_cap, (size_t)c->n_threads * 32 * w->cols);
    j.w = w;
    j.T = T;
    /* task boundaries stay multiples of the register tiles' rows */
    int64_t align = amx || w->packed ? QPACK_ROWS : j.xq ? matmul_q_row_align() : matmul_row_align();
    int64_t min_rows = (MM_MIN_ROWS + align - 1) / align * align;
    int64_t share = 2 * (int64_t)cpu(b)->n_threads, at = 0;
    bool serial = (int64_t)w->rows * w->cols * T < SERIAL_ELEMS;
    int n_tasks = 0;
    j.start[0] = 0;
    while (at < w->rows) {
        int64_t n = (w->rows - at) / share;
        n = n < min_rows ? min_rows : (n + align - 1) / align * align;
        at = serial || n_tasks == MM_MAX_TASKS - 1 || at + n > w->rows ? w->rows : at + n;
        j.start[++n_tasks] = at;
    }
    threadpool_run(cpu(b)->pool, mm_task, &j, n_tasks);
}

/* Rows of a few hundred floats at most: the calling thread, AVX2 add per row. */
static void cpu_add_bias(struct backend *b, float *y, const float *bias, int T, int n)
{
    (void)b;
    for (int t = 0; t < T; t++) add(y + (size_t)t * n, bias, 0, n);
}

static void cpu_rope(struct backend *b, float *x, int T, int n_heads, int hd, const float *cos,
                     const float *sin)
{
    (void)b;
    rope(x, n_heads, hd, cos, sin, 0, T);
}

static void cpu_kv_write(struct backend *b, const struct kv_layer *kv, const float *k,
                         const float *v, const int64_t *slots, int T)
{
    (void)b;
    kv_write_ref(kv, k, v, slots, 0, T);
}

struct attn_job {
    struct backend_cpu *b;
    float *out;
    const float *q;
    const struct kv_layer *kv;
    const struct attn_batch *ab;
    int n_tasks;
};

static void attn_task(void *ctx, int i, int thread)
{
    struct attn_job *j = ctx;
    int64_t i0, i1;
    split((int64_t)j->ab->n_tokens * j->ab->n_heads, j->n_tasks, i, 1, &i0, &i1);
    attention(j->out, j->q, j->kv, j->ab, j->b->scratch + (size_t)thread * j->b->max_ctx, i0, i1);
}

static void cpu_attention(struct backend *b, float *out, const float *q, const struct kv_layer *kv,
                          const struct attn_batch *ab)
{
    struct backend_cpu *c = cpu(b);
    int ctx = ab->max_ctx; /* scores scratch: the longest context in the batch */
    if (ctx > c->max_ctx) {
        free(c->scratch);
        c->scratch = xmalloc((size_t)c->n_threads * ctx * sizeof(float));
        c->max_ctx = ctx;
    }
    int64_t items = (int64_t)ab->n_tokens * ab->n_heads;
    /* causal work grows along the sequence: more tasks than threads balance it */
    int n_tasks = c->n_threads * 4;
    if (n_tasks > items) n_tasks = (int)items;
    struct attn_job j = {c, out, q, kv, ab, n_tasks};
    threadpool_run(c->pool, attn_task, &j, n_tasks);
}

struct ew_job {
    float *out;
    const float *a, *c;
    int64_t n;
    int n_tasks;
};

static void silu_task(void *ctx, int i, int thread)
{
    (void)thread;
    struct ew_job *j = ctx;
    int64_t i0, i1;
    split(j->n, j->n_tasks, i, 8, &i0, &i1);
    silu_mul(j->out, j->a, j->c, i0, i1);
}

static void cpu_silu_mul(struct backend *b, float *out, const float *gate, const float *up, int64_t n)
{
    struct ew_job j = {out, gate, up, n, n >= SERIAL_ELEMS ? cpu(b)->n_threads : 1};
    threadpool_run(cpu(b)->pool, silu_task, &j, j.n_tasks);
}

static void cpu_argmax(struct backend *b, int32_t *out, const float *x, int rows, int n)
{
    (void)b;
    for (int r = 0; r < rows; r++) out[r] = argmax_ref(x + (size_t)r * n, n);
}

static void cpu_all_reduce(struct backend *b, float *buf, int64_t n)
{
    (void)b;
    comm_all_reduce_sum(buf, n);
}

static void cpu_destroy(struct backend *b)
{
    if (!b) return;
    threadpool_destroy(cpu(b)->pool);
    free(cpu(b)->scratch);
    free(cpu(b)->xq);
    free(cpu(b)->panels);
    free(b);
}

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .upload_weight = cpu_upload_weight,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .rope = cpu_rope,
    .kv_write = cpu_kv_write,
    .attention = cpu_attention,
    .argmax = cpu_argmax,
    .silu_mul = cpu_silu_mul,
    .all_reduce = cpu_all_reduce,
    .destroy = cpu_destroy,
};

struct backend *backend_cpu_create(int n_threads)
{
    struct backend_cpu *b = xcalloc(1, sizeof(*b));
    b->base.ops = &cpu_ops;
    b->base.kv_dtype = DTYPE_F32;
    b->base.weight_dtype = DTYPE_F32;
    b->n_threads = n_threads < 1 ? threadpool_default_threads() : n_threads;
    b->pool = threadpool_create(b->n_threads);
    return &b->base;
}
