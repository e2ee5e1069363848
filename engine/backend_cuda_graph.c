/* backend_cuda_graph.c: the CUDA backend's graph ops: a stream capture
 * (cudaStreamCaptureModeGlobal) of the ops between graph_begin and
 * graph_end, instantiated once and replayed on the backend's stream; a
 * recording made before one of the scratch buffers was reallocated is
 * refused (the model records it again). */
#include "backend_cuda_impl.h"

/* A graph: the instantiated capture and the buffers it was recorded on. */
struct cuda_graph {
    cudaGraphExec_t exec;
    unsigned buffers_gen;
};

void cuda_graph_begin(struct backend *b)
{
    CUDA_OK(cudaStreamBeginCapture(cu_write(b)->stream, cudaStreamCaptureModeGlobal));
}

void *cuda_graph_end(struct backend *b)
{
    struct backend_cuda *c = cu_write(b);
    cudaGraph_t g;
    CUDA_OK(cudaStreamEndCapture(c->stream, &g));
    struct cuda_graph *h = xmalloc(sizeof(*h));
    CUDA_OK(cudaGraphInstantiate(&h->exec, g, 0));
    CUDA_OK(cudaGraphDestroy(g));
    h->buffers_gen = c->buffers_gen;
    return h;
}

bool cuda_graph_launch(struct backend *b, void *graph)
{
    struct backend_cuda *c = cu_write(b);
    struct cuda_graph *h = graph;
    if (h->buffers_gen != c->buffers_gen) return false;
    CUDA_OK(cudaGraphLaunch(h->exec, c->stream));
    return true;
}

void cuda_graph_free(struct backend *b, void *graph)
{
    (void)b;
    struct cuda_graph *h = graph;
    if (!h) return;
    CUDA_OK(cudaGraphExecDestroy(h->exec));
    free(h);
}
