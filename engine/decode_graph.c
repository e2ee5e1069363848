/* decode_graph.c: decode steps replayed from recorded graphs.
 *
 * A step whose sequences all decode one token (most steps of a busy server)
 * runs the same ops every time; only the plan's contents change. On a
 * backend that offers graphs (CUDA), such a step's ops are recorded once
 * per batch-size bucket and replayed: one launch instead of ~15 per layer,
 * which is what a small model's batch-1 decode spends its time on.
 *
 * For that, the step takes its bucket's shape. A bucket is a batch size
 * (1, 2, 4, 8, then multiples of 8 up to 64 and of 16 up to
 * GRAPH_MAX_BATCH; larger steps run eagerly) and a context bound (CTX_MIN
 * tokens, doubling up to the model's longest): the plan is padded to the
 * batch size with dummy one-token sequences (token 0 at position 0, KV slot
 * -1: nothing is written, and their logits rows are never read), block
 * tables are laid out for the context bound and attention is sized for it
 * (the decode kernel skips what lies past each sequence's end), so the
 * split-K scratch and the empty partitions grow with the contexts in use,
 * not with the longest the model allows.
 *
 * A bucket's first step runs eagerly (which also grows the backend's
 * scratch buffers to the bucket's needs) and is then recorded; a recording
 * the backend calls stale (it reallocated a scratch buffer since, for a
 * longer eager step) is recorded again the same way. Every rank of a
 * tensor-parallel job takes the same decisions from the same plan, and a
 * step runs exactly once on each (eagerly or replayed), so their
 * all-reduces meet. */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "model_impl.h"

#define GRAPH_MAX_BATCH 256
#define CTX_MIN 64

struct decode_graphs {
    int max_batch;       /* the largest batch bucket */
    int n_ctx;           /* context bounds: CTX_MIN << i, the last one clipped to the model's */
    void **graph;        /* [(max_batch + 1) * n_ctx], by batch size and context bound */
    int64_t replays;
    /* the padded plan, host side */
    int32_t *ids, *pos, *tok_seq, *out, *bt;
    int64_t *slots;
};

struct decode_graphs *model__graphs_create(model *m)
{
    const struct backend_ops *o = m->b->ops;
    if (!o->graph_begin || !o->graph_end || !o->graph_launch || !o->graph_free) return NULL;
    int n = m->p.max_seqs < m->p.max_step_tokens ? m->p.max_seqs : m->p.max_step_tokens;
    if (n > GRAPH_MAX_BATCH) n = GRAPH_MAX_BATCH;
    if (n < 1) return NULL;
    struct decode_graphs *g = xcalloc(1, sizeof(*g));
    g->max_batch = n;
    g->n_ctx = 1;
    while ((int64_t)CTX_MIN << (g->n_ctx - 1) < (int64_t)m->max_blocks * m->p.block_size) g->n_ctx++;
    g->graph = xcalloc(((size_t)n + 1) * g->n_ctx, sizeof(void *));
    g->ids = xmalloc((size_t)n * sizeof(int32_t));
    g->pos = xmalloc((size_t)n * sizeof(int32_t));
    g->tok_seq = xmalloc((size_t)n * sizeof(int32_t));
    g->out = xmalloc((size_t)n * sizeof(int32_t));
    g->slots = xmalloc((size_t)n * sizeof(int64_t));
    g->bt = xcalloc((size_t)n * m->max_blocks, sizeof(int32_t));
    return g;
}

void model__graphs_free(model *m)
{
    struct decode_graphs *g = m->graphs;
    if (!g) return;
    for (int i = 0; i < (g->max_batch + 1) * g->n_ctx; i++)
        if (g->graph[i]) m->b->ops->graph_free(m->b, g->graph[i]);
    free(g->graph);
    free(g->ids);
    free(g->pos);
    free(g->tok_seq);
    free(g->out);
    free(g->slots);
    free(g->bt);
    free(g);
    m->graphs = NULL;
}

int64_t model_graph_replays(const model *m) { return m->graphs ? m->graphs->replays : 0; }

/* The bucket a step of n decodes runs in; 0: none (too large). */
static int bucket_of(const struct decode_graphs *g, int n)
{
    int b = n <= 2 ? n : n <= 4 ? 4 : n <= 64 ? (n + 7) / 8 * 8 : (n + 15) / 16 * 16;
    if (n > g->max_batch) return 0;
    return b < g->max_batch ? b : g->max_batch;
}

/* The context bound for contexts up to ctx tokens, in blocks; *index: its
 * place among the bounds. */
static int ctx_blocks(const model *m, int ctx, int *index)
{
    int64_t bound = CTX_MIN;
    for (*index = 0; bound < ctx; (*index)++) bound *= 2;
    int blocks = (int)((bound + m->p.block_size - 1) / m->p.block_size);
    return blocks < m->max_blocks ? blocks : m->max_blocks;
}

/* sb padded to B one-token sequences, block tables at a stride of mb. */
static struct step_batch pad_plan(model *m, const struct step_batch *sb, int B, int mb)
{
    struct decode_graphs *g = m->graphs;
    int n = sb->n_tokens;
    memcpy(g->ids, sb->token_ids, n * sizeof(int32_t));
    memcpy(g->pos, sb->positions, n * sizeof(int32_t));
    memcpy(g->slots, sb->slots, n * sizeof(int64_t));
    memcpy(g->out, sb->output_tokens, n * sizeof(int32_t));
    for (int t = 0; t < n; t++) {
        g->tok_seq[t] = t;
        int32_t *row = g->bt + (size_t)t * mb;
        memcpy(row, sb->block_tables + (size_t)t * sb->max_blocks, sb->max_blocks * sizeof(int32_t));
        memset(row + sb->max_blocks, 0, (size_t)(mb - sb->max_blocks) * sizeof(int32_t));
    }
    for (int t = n; t < B; t++) {
        g->ids[t] = 0, g->pos[t] = 0, g->slots[t] = -1, g->out[t] = t, g->tok_seq[t] = t;
        memset(g->bt + (size_t)t * mb, 0, (size_t)mb * sizeof(int32_t));
    }
    return (struct step_batch){.n_tokens = B, .token_ids = g->ids, .positions = g->pos, .slots = g->slots,
                               .tok_seq = g->tok_seq, .n_seqs = B, .block_tables = g->bt, .max_blocks = mb,
                               .n_outputs = B, .output_tokens = g->out};
}

bool model__graph_step(model *m, const struct step_batch *sb, struct attn_batch *ab)
{
    struct decode_graphs *g = m->graphs;
    if (!g || sb->n_seqs != sb->n_tokens || sb->n_outputs != sb->n_tokens) return false;
    for (int t = 0; t < sb->n_tokens; t++)
        if (sb->tok_seq[t] != t) return false;
    int B = bucket_of(g, sb->n_tokens), max_ctx = 0, ci;
    if (!B) return false;
    for (int t = 0; t < sb->n_tokens; t++)
        if (sb->positions[t] + 1 > max_ctx) max_ctx = sb->positions[t] + 1;
    int mb = ctx_blocks(m, max_ctx, &ci);
    if (sb->max_blocks > mb) return false; /* a table wider than its contexts need */
    struct step_batch padded = pad_plan(m, sb, B, mb);
    ab->n_tokens = B;
    ab->max_blocks = mb;
    model__upload_plan(m, &padded, ab);
    ab->max_ctx = mb * m->p.block_size; /* every replay's bound */
    struct backend *b = m->b;
    void **slot = &g->graph[B * g->n_ctx + ci];
    if (*slot && b->ops->graph_launch(b, *slot)) {
        g->replays++;
        return true;
    }
    if (*slot) b->ops->graph_free(b, *slot);
    model__step_ops(m, ab, B, B); /* this step, eagerly; sizes the scratch buffers */
    b->ops->graph_begin(b);
    model__step_ops(m, ab, B, B);
    *slot = b->ops->graph_end(b);
    return true;
}
