/* runtime.c: the CUDA runtime calls Tessera makes, over host memory.
 *
 * Device memory is malloc'd and filled with 0xff bytes (NaN in every float
 * type) so that reading memory nobody wrote shows up. Launches and copies
 * run at once, in program order, so every stream is always synchronised.
 * One emulated device with EMU_DEVICE_MEMORY bytes (default 4 GiB) that
 * cudaMemGetInfo accounts against.
 *
 * Graphs. Between cudaStreamBeginCapture and cudaStreamEndCapture a
 * stream's work (emu_stream_work: launches, async copies and sets, cuBLAS
 * GEMMs, NCCL all-reduces) is recorded instead of run; cudaGraphLaunch runs
 * the recorded list in order. As in cudaStreamCaptureModeGlobal, the calls
 * that are unsafe during a capture (allocating, freeing, synchronising, a
 * synchronous copy) fail with cudaErrorStreamCaptureUnsupported and
 * invalidate the capture, so code that would break under a real capture
 * breaks here too. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

/* One piece of recorded stream work. */
struct node {
    void (*run)(void *);
    void *obj;
    size_t bytes;                 /* obj is plain bytes (clone NULL) */
    void *(*clone)(const void *);
    void (*drop)(void *);
};

struct CUgraph_st {
    struct node *nodes;
    int n, cap;
};

struct CUgraphExec_st {
    struct CUgraph_st g;
};

struct CUstream_st {
    struct CUgraph_st *capture;   /* non-NULL while capturing */
    int invalidated;              /* an unsafe call happened during the capture */
};

#define MAX_CAPTURES 16
static cudaStream_t capturing_streams[MAX_CAPTURES];
static int capturing;             /* streams capturing now */

/* An unsafe call while any stream captures: refused, the captures spoilt. */
static int capture_unsafe(void);

static void *node_copy(const struct node *n)
{
    if (n->clone) return n->clone(n->obj);
    void *p = malloc(n->bytes ? n->bytes : 1);
    if (p) memcpy(p, n->obj, n->bytes);
    return p;
}

static void node_free(struct node *n)
{
    if (n->drop) n->drop(n->obj);
    else free(n->obj);
}

static void graph_add(struct CUgraph_st *g, const struct node *n)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->nodes = realloc(g->nodes, (size_t)g->cap * sizeof(*g->nodes));
        if (!g->nodes) abort();
    }
    g->nodes[g->n] = *n;
    g->nodes[g->n].obj = node_copy(n);
    if (!g->nodes[g->n].obj) abort();
    g->n++;
}

static void graph_clear(struct CUgraph_st *g)
{
    for (int i = 0; i < g->n; i++) node_free(&g->nodes[i]);
    free(g->nodes);
    *g = (struct CUgraph_st){0};
}

void emu_stream_work(cudaStream_t s, void (*run)(void *), const void *arg, size_t bytes,
                     void *(*clone)(const void *), void (*drop)(void *))
{
    if (s && s->capture) {
        struct node n = {run, (void *)arg, bytes, clone, drop};
        graph_add(s->capture, &n);
    } else {
        run((void *)arg);
    }
}

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
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
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
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
    if (!p) return cudaSuccess;
    struct alloc_head *h = (struct alloc_head *)p - 1;
    allocated -= h->bytes;
    free(h);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *p)
{
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
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
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}

struct copy_work {
    void *dst;
    const void *src;
    size_t n;
    int value; /* a set: the byte; a copy: -1 */
};

static void run_copy(void *arg)
{
    struct copy_work *w = arg;
    if (!w->n) return;
    if (w->value < 0) memmove(w->dst, w->src, w->n);
    else memset(w->dst, w->value, w->n);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s)
{
    (void)kind;
    struct copy_work w = {dst, src, n, -1};
    emu_stream_work(s, run_copy, &w, sizeof(w), NULL, NULL);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t n)
{
    if (capture_unsafe()) return cudaErrorStreamCaptureUnsupported;
    if (n) memset(p, value, n);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s)
{
    struct copy_work w = {p, NULL, n, value & 0xff};
    emu_stream_work(s, run_copy, &w, sizeof(w), NULL, NULL);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
    *s = calloc(1, sizeof(**s));
    return *s ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (s && s->capture) return cudaErrorIllegalState;
    free(s);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    (void)s;
    return capture_unsafe() ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}

static int capture_unsafe(void)
{
    for (int i = 0; i < capturing; i++) capturing_streams[i]->invalidated = 1;
    return capturing > 0;
}

cudaError_t cudaDeviceSynchronize(void)
{
    return capture_unsafe() ? cudaErrorStreamCaptureUnsupported : cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode)
{
    if (!s || s->capture) return cudaErrorIllegalState; /* the legacy stream cannot capture */
    if (mode != cudaStreamCaptureModeGlobal) return cudaErrorInvalidValue;
    if (capturing == MAX_CAPTURES || !(s->capture = calloc(1, sizeof(*s->capture))))
        return cudaErrorMemoryAllocation;
    s->invalidated = 0;
    capturing_streams[capturing++] = s;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    *graph = NULL;
    if (!s || !s->capture) return cudaErrorIllegalState;
    for (int i = 0; i < capturing; i++)
        if (capturing_streams[i] == s) capturing_streams[i] = capturing_streams[--capturing];
    struct CUgraph_st *g = s->capture;
    s->capture = NULL;
    if (s->invalidated) {
        graph_clear(g);
        free(g);
        return cudaErrorStreamCaptureInvalidated;
    }
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status)
{
    *status = !s || !s->capture ? cudaStreamCaptureStatusNone
              : s->invalidated  ? cudaStreamCaptureStatusInvalidated
                                : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    *exec = calloc(1, sizeof(**exec));
    if (!*exec) return cudaErrorMemoryAllocation;
    for (int i = 0; i < graph->n; i++) graph_add(&(*exec)->g, &graph->nodes[i]);
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    for (int i = 0; i < exec->g.n; i++) {
        const struct node *n = &exec->g.nodes[i];
        emu_stream_work(s, n->run, n->obj, n->bytes, n->clone, n->drop);
    }
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    if (exec) graph_clear(&exec->g);
    free(exec);
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    if (graph) graph_clear(graph);
    free(graph);
    return cudaSuccess;
}

/* As many emulated devices as a node has GPUs, so that tensor-parallel
 * ranks on one machine each pick their own (all of them the host). */
#define EMU_DEVICES 8

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = EMU_DEVICES;
    return cudaSuccess;
}

/* The emulated device reports an H100's 132 multiprocessors and compute
 * capability 9.0, so launch shapes chosen from them (split-K attention at
 * small batches) and paths (cuBLASLt's FP8 GEMM) are the ones a real GPU
 * gets. */
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    if (device < 0 || device >= EMU_DEVICES) return cudaErrorInvalidDevice;
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    default: *value = 0;
    }
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
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing (emulated)";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture (emulated)";
    default: return "error (emulated)";
    }
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    (void)func, (void)attr, (void)value;
    return cudaSuccess;
}
