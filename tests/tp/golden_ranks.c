/* golden_ranks.c: a golden model (tests/data/golden) over the ranks of a
 * tensor-parallel job, against transformers' logits.
 *
 *   mpirun -np N build/golden-ranks tests/data/golden/<name> [cpu|cuda]
 *
 * Every rank loads its slice (cuda: the CUDA backend, float32, emulated in
 * this build; NCCL's all-reduce goes over MPI); rank 0 runs the prompt in one
 * step, then in chunks of 7 with its last 6 tokens one a step, while the
 * others follow its plans; rank 0 prints "max abs logit error E" for each and
 * exits 0 when every logit is within 1e-4. tests/server/test_tensor_parallel.py
 * runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/backend.h"
#include "../../engine/comm.h"
#include "../../base/err.h"
#include "../../engine/kv_cache.h"
#include "../../engine/model.h"
#include "../../engine/single.h"
#include "../unit/test_util.h"

#define LOGIT_ATOL 1e-4f

static void fail(const char *what)
{
    fprintf(stderr, "golden-ranks: rank %d: %s\n", comm_rank(), what);
    comm_abort(1);
}

/* Rank 0: the prompt's logits, the first n_chunked tokens in steps of chunk,
 * the rest one a step; returns the max abs error over the kept rows. */
static float run_prompt(model *m, kv_pool *pool, const struct golden_ref *g, int chunk, int n_chunked)
{
    float *logits = malloc((size_t)g->n * g->vocab * sizeof(float));
    float *picked = malloc((size_t)g->n_rows * g->vocab * sizeof(float));
    struct kv_seq s = {0};
    int rc = single_forward(m, pool, &s, 0, g->ids, n_chunked, chunk, true, logits);
    for (int t = n_chunked; t < g->n && !rc; t++)
        rc = single_forward(m, pool, &s, t, g->ids + t, 1, 1, true, logits + (size_t)t * g->vocab);
    if (rc) fail(err_msg());
    kv_seq_release(pool, &s);
    golden_ref_pick(g, logits, picked);
    size_t n = (size_t)g->n_rows * g->vocab;
    float err = max_abs_diff(picked, g->logits, n);
    if (!all_close(picked, g->logits, n, LOGIT_ATOL, 0, "golden-ranks")) err = -err;
    free(logits);
    free(picked);
    return err;
}

int main(int argc, char **argv)
{
    if (comm_init(&argc, &argv)) fail(err_msg());
    if (argc < 2 || (argc > 2 && strcmp(argv[2], "cpu") && strcmp(argv[2], "cuda"))) {
        fprintf(stderr, "usage: mpirun -np N golden-ranks MODEL_DIR [cpu|cuda]\n");
        return 2;
    }
    bool cuda = argc > 2 && !strcmp(argv[2], "cuda");
    struct backend *b = cuda ? backend_cuda_create(comm_local_rank(), DTYPE_F32, DTYPE_F32, 0.9, false) : backend_cpu_create(1);
    if (!b) fail(err_msg());
    struct model_params mp = {.num_kv_blocks = 16, .block_size = 16, .max_step_tokens = 128, .max_seqs = 1,
                              .rank = comm_rank(), .world = comm_world()};
    model *m;
    if (model_load(&m, argv[1], b, &mp)) fail(err_msg());
    int rc = 0;
    if (comm_rank() == 0) {
        struct golden_ref g;
        char err[512];
        if (golden_ref_load(&g, argv[1], err, sizeof(err))) fail(err);
        kv_pool *pool = kv_pool_create(mp.num_kv_blocks, 16, false);
        float whole = run_prompt(m, pool, &g, 128, g.n), chunked = run_prompt(m, pool, &g, 7, g.n - 6);
        printf("%s over %d ranks (%s): max abs logit error %.3g whole prompt, %.3g in chunks and decodes\n",
               argv[1], comm_world(), cuda ? "cuda" : "cpu", fabsf(whole), fabsf(chunked));
        rc = whole < 0 || chunked < 0;
        kv_pool_destroy(pool);
        golden_ref_free(&g);
    } else {
        rc = model_serve_worker(m) != 0;
    }
    model_destroy(m); /* rank 0: tells the workers to stop */
    b->ops->destroy(b);
    comm_finalize();
    return rc;
}
