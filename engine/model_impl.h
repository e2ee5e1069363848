/* model_impl.h: the model's state, shared by its files (model.c: loading
 * and the forward; decode_graph.c: decode steps replayed as graphs). Not
 * for use outside engine/. */
#ifndef TESSERA_MODEL_IMPL_H
#define TESSERA_MODEL_IMPL_H

#include <stdbool.h>

#include "model.h"
#include "safetensors.h"
#include "weights.h"

struct model {
    struct model_config cfg;
    struct model_params p;
    struct backend *b;
    safetensors *st;
    struct weights host;         /* views into the mapping */
    struct weights dev;          /* the same, usable by the backend */
    struct kv_layer *kv;         /* [n_layers] */
    float *inv_freq;             /* host [hd/2] */
    int max_blocks;
    /* host staging for rope tables and sequence starts */
    float *h_cos, *h_sin;
    int32_t *h_seq_start;
    /* device activations, sized for max_step_tokens */
    float *x, *xn, *q, *k, *v, *att, *res, *gate, *up, *xo, *logits, *cos, *sin;
    float *qkv;                  /* stacked q/k/v projections (NULL: none); gate then holds gate|up */
    int32_t *d_ids, *d_pos, *d_tok_seq, *d_bt, *d_out, *d_seq_start, *d_argmax;
    int64_t *d_slots;
    unsigned char *plan_buf;     /* tensor parallelism: a step plan on the wire */
    size_t plan_cap;
    struct decode_graphs *graphs; /* NULL: the backend offers none */
};

/* Copies the step plan to the device, fills the rope tables and the
 * per-sequence part of ab. */
void model__upload_plan(model *m, const struct step_batch *sb, struct attn_batch *ab);
/* The ops of a step whose plan is on the device, through the LM head's
 * logits of n_outputs rows (rank 0): no copies to or from the host, so a
 * graph can record them. */
void model__step_ops(model *m, const struct attn_batch *ab, int T, int n_outputs);

/* decode_graph.c. graphs_create: NULL when the backend has no graph ops. */
struct decode_graphs *model__graphs_create(model *m);
void model__graphs_free(model *m);
/* Runs sb from its bucket's graph when every sequence decodes one token and
 * every token is an output; the logits rows are then on the device as
 * model__step_ops leaves them. false: run it eagerly. */
bool model__graph_step(model *m, const struct step_batch *sb, struct attn_batch *ab);

#endif
